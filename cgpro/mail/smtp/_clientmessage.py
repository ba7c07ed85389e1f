# -*- test-case-name: tests.mail.smtp.test_client -*-
"""
What the outbound SMTP client sends and receives, and how each is put on
the wire.

This module holds the values: a L{Reply} and the L{SMTPClientError}s built
from one, and the L{OutboundMessage} with its L{OutboundRecipient}s.  It
also holds their encodings: L{xtext} and ORCPT for DSN parameters,
L{parseCapabilities} for the EHLO keywords, and C{_DataSender}, which
dot-stuffs the message and streams it after 354.  None of this depends on
the state of a session, so it is kept apart from the protocol state machine
in L{cgpro.mail.smtp.client}.

This is a private module: L{cgpro.mail.smtp.client} re-exports every name
here, so import them from there.  The classes set C{__module__} to that
module (see the end of this one), so reprs, tracebacks and log lines name
it as they did before the split.
"""

import io
import os
import re
from dataclasses import dataclass

from twisted.internet import defer
from twisted.internet.interfaces import IPushProducer
from twisted.python.failure import Failure
from zope.interface import implementer

__all__ = [
    "ConnectionClosed",
    "OutboundMessage",
    "OutboundRecipient",
    "Reply",
    "SMTPClientError",
    "SessionRefused",
    "StaleConnection",
    "TLSNegotiationFailed",
    "parseCapabilities",
    "xtext",
]

_BARE_LF = re.compile(rb"(?<!\r)\n")
_XTEXT_OK = re.compile(r"\+[0-9A-F]{2}|[!-*,-<>-~]")


class Reply:
    """
    One complete (possibly multi-line) SMTP reply.

    @ivar code: the three-digit code (C{int}).
    @ivar lines: the text of every line, without code and separator.
    """

    __slots__ = ("code", "lines")

    def __init__(self, code, lines):
        self.code = code
        self.lines = list(lines)

    @property
    def text(self):
        """
        The lines joined by spaces: what goes into a result and a DSN.
        """
        return " ".join(line for line in self.lines if line)

    @property
    def positive(self):
        return 200 <= self.code < 300

    def __eq__(self, other):
        if not isinstance(other, Reply):
            return NotImplemented
        return (self.code, self.lines) == (other.code, other.lines)

    def __repr__(self):
        return "Reply(%d, %r)" % (self.code, self.lines)


class SMTPClientError(Exception):
    """
    A failure of the connection or the session, as the reply the affected
    recipients get (local replies use 421 and 451 so they are retried).

    @ivar reply: the L{Reply}.
    """

    def __init__(self, code, text=None):
        if isinstance(code, Reply):
            reply = code
        else:
            reply = Reply(code, [text or ""])
        Exception.__init__(self, reply.code, reply.text)
        self.reply = reply

    def __str__(self):
        return "%d %s" % (self.reply.code, self.reply.text)


class SessionRefused(SMTPClientError):
    """
    The server refused the session: greeting, EHLO and HELO, or a STARTTLS
    that was required.  The relay tries the next candidate.
    """


class ConnectionClosed(SMTPClientError):
    """
    The connection was lost, timed out or sent garbage.
    """


class TLSNegotiationFailed(ConnectionClosed):
    """
    The server said yes to STARTTLS but the handshake (or the EHLO after it)
    failed.  An opportunistic sender tries the same server again in plain
    text.
    """


class StaleConnection(SMTPClientError):
    """
    The RSET that checks a reused connection failed: open a new one.
    """


@dataclass
class OutboundRecipient:
    """
    One recipient of an outgoing transaction.

    @ivar index: the envelope index (what the result reports).
    @ivar address: the address for RCPT TO.
    @ivar notify: DSN NOTIFY values or C{None}.
    @ivar orcpt: DSN ORCPT (C{addr-type;xtext}, or a bare address taken
        as C{rfc822}) or C{None}.
    """

    index: int
    address: str
    notify: tuple = None
    orcpt: str = None


class OutboundMessage:
    """
    One message to send: the envelope parts the wire needs and where the
    bytes are.  The bytes are read anew for every attempt, from memory or
    from the queue file at an offset, so a big message is streamed and
    never held in memory.

    @ivar sender: MAIL FROM (C{""} for the null sender).
    @ivar recipients: C{list} of L{OutboundRecipient}.
    @ivar size: the message size in bytes (for SIZE).
    @ivar bodyType: C{None}, C{7BIT}, C{8BITMIME} or C{BINARYMIME}, as
        declared when the message was received.
    @ivar smtputf8: the message was received with SMTPUTF8.
    @ivar ret: DSN RET; C{envid}: DSN ENVID.
    """

    def __init__(self, sender, recipients, data=None, path=None, offset=0, size=None,
                 bodyType=None, smtputf8=False, ret=None, envid=None):
        if (data is None) == (path is None):
            raise ValueError("give either data or path")
        self.sender = sender or ""
        self.recipients = list(recipients)
        self.data = data
        self.path = path
        self.offset = offset
        if size is None:
            if data is not None:
                size = len(data)
            else:
                size = max(0, os.path.getsize(path) - offset)
        self.size = size
        self.bodyType = bodyType
        self.smtputf8 = smtputf8
        self.ret = ret
        self.envid = envid

    def withRecipients(self, recipients):
        """
        @return: a copy for other recipients (one transaction each).
        """
        copy = OutboundMessage.__new__(OutboundMessage)
        copy.__dict__.update(self.__dict__)
        copy.recipients = list(recipients)
        return copy

    def open(self):
        """
        @return: a binary file object at the start of the message.
        """
        if self.data is not None:
            return io.BytesIO(self.data)
        f = open(self.path, "rb")
        f.seek(self.offset)
        return f

    def has8bit(self):
        """
        @return: whether any byte of the message is above 127.
        """
        with self.open() as f:
            while True:
                chunk = f.read(65536)
                if not chunk:
                    return False
                if not chunk.isascii():
                    return True

    def headersAscii(self, limit=1 << 20):
        """
        @return: whether the header section (up to C{limit} bytes) is ASCII.
        """
        with self.open() as f:
            head = f.read(limit)
        end = head.find(b"\r\n\r\n")
        if end < 0:
            end = head.find(b"\n\n")
        return (head if end < 0 else head[:end]).isascii()


def xtext(value):
    """
    Encode a DSN parameter value as xtext (RFC 3461 4), leaving a value
    that already is xtext unchanged, so that a value stored either way
    goes out right (a decoded value would need its "+" encoded; an encoded
    one must not be encoded twice).
    """
    out = []
    i = 0
    while i < len(value):
        m = _XTEXT_OK.match(value, i)
        if m is not None:
            out.append(m.group())
            i = m.end()
            continue
        for byte in value[i].encode("utf-8"):
            out.append("+%02X" % byte)
        i += 1
    return "".join(out)


def _orcpt(value):
    if ";" in value:
        addrType, _, address = value.partition(";")
        return "%s;%s" % (addrType.strip(), xtext(address.strip()))
    return "rfc822;" + xtext(value)


def parseCapabilities(lines):
    """
    @param lines: the EHLO reply lines after the first.
    @return: C{dict} of upper-case keyword -> C{list} of parameters.
    """
    capabilities = {}
    for line in lines:
        words = line.split()
        if words:
            capabilities[words[0].upper()] = words[1:]
    return capabilities


@implementer(IPushProducer)
class _DataSender:
    """
    Write the message after 354: dot-stuffed, bare LFs turned into CRLF,
    then the final dot; paced by the transport (a push producer), so a big
    message never fills memory, and reading C{chunkSize} at a time from the
    source.

    @ivar done: fires once the final dot is written, fails if the
        connection is lost first.
    """

    chunkSize = 65536

    def __init__(self, protocol, source):
        self.protocol = protocol
        self.source = source
        self.done = defer.Deferred()
        self._paused = False
        self._producing = False
        self._finished = False
        self._last = b"\n"

    def start(self):
        self.protocol.transport.registerProducer(self, True)
        self._produce()
        return self.done

    def _produce(self):
        if self._producing:
            return
        self._producing = True
        try:
            while not self._paused and not self._finished:
                chunk = self.source.read(self.chunkSize)
                if not chunk:
                    self._finish()
                    break
                self.protocol._armTimer("block")
                self.protocol.transport.write(self.encode(chunk))
        except Exception:
            self.stop(Failure())
        finally:
            self._producing = False

    def encode(self, chunk):
        """
        Turn one chunk into wire form, remembering across chunks whether a
        line starts and whether a CR was pending.
        """
        data = _BARE_LF.sub(b"\r\n", chunk)
        if chunk[:1] == b"\n" and self._last == b"\r":
            data = data[1:]
        if self._last == b"\n" and data[:1] == b".":
            data = b"." + data
        data = data.replace(b"\n.", b"\n..")
        self._last = chunk[-1:]
        return data

    def _finish(self):
        self._finished = True
        tail = b"" if self._last == b"\n" else b"\r\n"
        self.protocol.transport.write(tail + b".\r\n")
        self.protocol.transport.unregisterProducer()
        self.source.close()
        self.done.callback(None)

    def stop(self, reason):
        if self._finished:
            return
        self._finished = True
        self.source.close()
        self.done.errback(reason)

    def pauseProducing(self):
        self._paused = True

    def resumeProducing(self):
        self._paused = False
        self._produce()

    def stopProducing(self):
        self.stop(self.protocol._broken or ConnectionClosed(421, "4.4.2 connection lost while sending data"))


# Name the public module, where callers import these from.
for _cls in (Reply, SMTPClientError, SessionRefused, ConnectionClosed, TLSNegotiationFailed,
             StaleConnection, OutboundRecipient, OutboundMessage, _DataSender):
    _cls.__module__ = "cgpro.mail.smtp.client"
del _cls
