# -*- test-case-name: tests.mail.smtp.test_client -*-
"""
Tests for L{cgpro.mail.smtp.client}: the outbound ESMTP client protocol,
against a scripted server on a L{StringTransport} (every reply path,
pipelining, STARTTLS, timeouts on a L{Clock}) and, for STARTTLS, against a
real SMTP sink on loopback.

L{SinkFactory} (a small hand-written SMTP server that records what it
receives) is shared with C{tests.mail.smtp.test_relay}.
"""

import os
import shutil
import tempfile

from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import ITLSTransport
from twisted.internet.protocol import ServerFactory
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer

from cgpro.core.tls import ServerTLS
from cgpro.mail.smtp import client as clientModule
from cgpro.mail.smtp.client import (
    TIMEOUTS,
    TLS_NO,
    TLS_REQUIRE,
    ConnectionClosed,
    ESMTPClient,
    OutboundMessage,
    OutboundRecipient,
    Reply,
    SessionRefused,
    StaleConnection,
    TLSNegotiationFailed,
    parseCapabilities,
    xtext,
)

#: Timeouts small enough to see in tests, distinct to tell them apart.
SMALL = {"greeting": 5, "command": 6, "mail": 7, "rcpt": 8, "data": 9, "block": 10, "end": 11}


# -- a real SMTP sink ----------------------------------------------------------


class SinkMessage:
    """
    One message the sink accepted.
    """

    def __init__(self, sender, recipients, data, secure, connection, mailParams, rcptParams):
        self.sender = sender
        self.recipients = recipients
        self.data = data
        self.secure = secure
        self.connection = connection
        self.mailParams = mailParams
        self.rcptParams = rcptParams


class SinkProtocol(LineReceiver):
    """
    A minimal ESMTP server: enough of RFC 5321 to receive mail, with
    STARTTLS when its factory has TLS options.
    """

    def connectionMade(self):
        self.factory.connections += 1
        self.number = self.factory.connections
        self.secure = False
        self.inData = False
        self._reset()
        self.closed = defer.Deferred()
        self.factory.closed.append(self.closed)
        self.sendLine(b"220 sink.test ESMTP")

    def connectionLost(self, reason):
        self.closed.callback(None)

    def _reset(self):
        self.sender = None
        self.recipients = []
        self.mailParams = ""
        self.rcptParams = []
        self.lines = []

    def lineReceived(self, line):
        if self.inData:
            if line == b".":
                self.inData = False
                self.factory.messages.append(SinkMessage(
                    self.sender, self.recipients, b"".join(l + b"\r\n" for l in self.lines),
                    self.secure, self.number, self.mailParams, self.rcptParams,
                ))
                self._reset()
                self.sendLine(b"250 2.0.0 queued as %d" % (len(self.factory.messages),))
            else:
                self.lines.append(line[1:] if line.startswith(b".") else line)
            return
        self.factory.commands.append(line)
        verb = line.split(b" ", 1)[0].upper()
        arg = line[len(verb) + 1:].decode("utf-8")
        override = self.factory.overrides.get(verb)
        if override is not None:
            if callable(override):
                override(self)
            else:
                self.sendLine(override)
            return
        if verb == b"EHLO":
            extensions = list(self.factory.extensions)
            if self.factory.tlsOptions is not None and not self.secure:
                extensions.append("STARTTLS")
            lines = ["sink.test hello"] + extensions
            for text in lines[:-1]:
                self.sendLine(b"250-" + text.encode())
            self.sendLine(b"250 " + lines[-1].encode())
        elif verb == b"HELO":
            self.sendLine(b"250 sink.test")
        elif verb == b"STARTTLS":
            self.sendLine(b"220 2.0.0 go ahead")
            self.transport.startTLS(self.factory.tlsOptions)
            self.secure = True
        elif verb == b"MAIL":
            address, _, params = arg[5:].partition(">")
            self.sender = address.lstrip("<")
            self.mailParams = params.strip()
            self.sendLine(b"250 2.1.0 ok")
        elif verb == b"RCPT":
            address, _, params = arg[3:].partition(">")
            address = address.lstrip("<")
            if address in self.factory.reject:
                self.sendLine(self.factory.reject[address])
            elif len(self.recipients) >= self.factory.maxRecipients:
                self.sendLine(b"452 4.5.3 too many recipients")
            else:
                self.recipients.append(address)
                self.rcptParams.append(params.strip())
                self.sendLine(b"250 2.1.5 ok")
        elif verb == b"DATA":
            if not self.recipients:
                self.sendLine(b"554 5.5.1 no valid recipients")
            else:
                self.inData = True
                self.sendLine(b"354 go ahead")
        elif verb == b"RSET":
            self._reset()
            self.sendLine(b"250 2.0.0 ok")
        elif verb == b"NOOP":
            self.sendLine(b"250 2.0.0 ok")
        elif verb == b"QUIT":
            self.sendLine(b"221 2.0.0 bye")
            self.transport.loseConnection()
        else:
            self.sendLine(b"500 5.5.2 what?")


class SinkFactory(ServerFactory):
    """
    Builds L{SinkProtocol}s and keeps what they received.

    @ivar messages: the accepted L{SinkMessage}s.
    @ivar commands: every command line, in order, over all connections.
    @ivar connections: how many connections were made.
    @ivar reject: address -> the reply line that refuses it at RCPT.
    @ivar overrides: command verb -> the reply line to give instead, or a
        callable taking the protocol.
    @ivar maxRecipients: more RCPTs in one transaction get 452.
    """

    protocol = SinkProtocol

    def __init__(self, extensions=("PIPELINING", "8BITMIME", "SIZE 1000000"), tlsOptions=None):
        self.extensions = list(extensions)
        self.tlsOptions = tlsOptions
        self.messages = []
        self.commands = []
        self.connections = 0
        self.reject = {}
        self.overrides = {}
        self.maxRecipients = 1000
        self.closed = []

    def allClosed(self):
        """
        @return: L{Deferred} firing once every connection made so far is closed.
        """
        return defer.gatherResults(list(self.closed))


# -- a scripted server on a StringTransport ---------------------------------------


@implementer(ITLSTransport)
class TLSStringTransport(StringTransport):
    """
    A L{StringTransport} that records L{startTLS}.
    """

    tlsOptions = None

    def startTLS(self, contextFactory, normal=True):
        self.tlsOptions = contextFactory


class RecordingTransport(StringTransport):
    """
    A L{StringTransport} that keeps each write apart (pipelining is one write).
    """

    def __init__(self):
        StringTransport.__init__(self)
        self.writes = []

    def write(self, data):
        self.writes.append(data)
        StringTransport.write(self, data)


def message(data=b"Subject: hi\r\n\r\nbody\r\n", recipients=("a@remote.test",), sender="s@here.test",
            **kwargs):
    return OutboundMessage(
        sender, [OutboundRecipient(i, r) if isinstance(r, str) else r for i, r in enumerate(recipients)],
        data=data, **kwargs
    )


class ScriptedMixin:
    """
    A client connected to a L{StringTransport}; the test plays the server.
    """

    transportFactory = StringTransport

    def connect(self, useTLS=TLS_NO, **kwargs):
        self.clock = Clock()
        self.client = ESMTPClient("client.test", useTLS=useTLS, clock=self.clock, timeouts=SMALL,
                                  host="mx.remote.test", tlsOptions=kwargs.pop("tlsOptions", object()),
                                  **kwargs)
        self.transport = self.transportFactory()
        self.readyResult = []
        self.client.ready.addBoth(self.readyResult.append)
        self.client.makeConnection(self.transport)
        return self.client

    def server(self, *lines):
        """
        Feed server lines (CRLF added).
        """
        self.client.dataReceived(b"".join(line + b"\r\n" for line in lines))

    def sent(self):
        """
        @return: what the client wrote since the last call.
        """
        value = self.transport.value()
        self.transport.clear()
        return value

    def greet(self, *extensions, **kwargs):
        """
        Connect, greet and answer EHLO with C{extensions}.
        """
        self.connect(**kwargs)
        self.server(b"220 mx.remote.test ESMTP")
        self.assertEqual(self.sent(), b"EHLO client.test\r\n")
        lines = [b"mx.remote.test"] + list(extensions)
        self.server(*([b"250-" + line for line in lines[:-1]] + [b"250 " + lines[-1]]))
        self.assertEqual(self.readyResult, [self.client])
        return self.client

    def send(self, msg):
        results = []
        self.client.sendMessage(msg).addBoth(results.append)
        return results

    def replies(self, results):
        """
        @return: C{[(code, text)]} of a finished sendMessage.
        """
        self.assertEqual(len(results), 1, "sendMessage has not finished")
        return [(reply.code, reply.text) for _recipient, reply in results[0]]


class SessionTests(ScriptedMixin, SynchronousTestCase):
    """
    Greeting, EHLO, HELO and the end of a session.
    """

    def test_capabilities(self):
        """EHLO's keywords and parameters become the capabilities; ready fires."""
        client = self.greet(b"PIPELINING", b"SIZE 1000", b"8bitmime", b"DSN")
        self.assertTrue(client.esmtp)
        self.assertEqual(client.capabilities,
                         {"PIPELINING": [], "SIZE": ["1000"], "8BITMIME": [], "DSN": []})
        self.assertTrue(client.usable)

    def test_parseCapabilities(self):
        """Blank lines are ignored and keywords are upper-cased."""
        self.assertEqual(parseCapabilities(["auth PLAIN LOGIN", "", "x"]),
                         {"AUTH": ["PLAIN", "LOGIN"], "X": []})

    def test_heloFallback(self):
        """A 5xx to EHLO falls back to HELO: no extensions."""
        self.connect()
        self.server(b"220 old.server")
        self.sent()
        self.server(b"502 5.5.1 what is EHLO")
        self.assertEqual(self.sent(), b"HELO client.test\r\n")
        self.server(b"250 old.server")
        self.assertEqual(self.readyResult, [self.client])
        self.assertFalse(self.client.esmtp)
        self.assertEqual(self.client.capabilities, {})

    def test_heloRefused(self):
        """A refused HELO refuses the session."""
        self.connect()
        self.server(b"220 x", b"500 no", b"550 5.7.1 go away")
        [failure] = self.readyResult
        failure.trap(SessionRefused)
        self.assertEqual(failure.value.reply, Reply(550, ["5.7.1 go away"]))

    def test_ehlo4xx(self):
        """A 4xx to EHLO refuses the session without trying HELO."""
        self.connect()
        self.server(b"220 x", b"421 4.3.2 busy")
        [failure] = self.readyResult
        failure.trap(SessionRefused)
        self.assertEqual(self.sent(), b"EHLO client.test\r\n")

    def test_greetingRefused(self):
        """A 554 greeting refuses the session; the client says QUIT."""
        self.connect()
        self.server(b"554 5.7.1 no mail from you")
        [failure] = self.readyResult
        failure.trap(SessionRefused)
        self.assertEqual(failure.value.reply.code, 554)
        self.assertEqual(self.sent(), b"")
        self.assertTrue(self.transport.disconnecting)
        self.assertFalse(self.client.usable)

    def test_multilineReply(self):
        """Continuation lines are joined into one reply; LF alone ends a line too."""
        self.connect()
        self.client.dataReceived(b"220-first\n220-second\r\n220 third\r\n")
        self.assertEqual(self.sent(), b"EHLO client.test\r\n")

    def test_malformedReply(self):
        """A line that is no reply aborts the connection with a 421 error."""
        self.connect()
        self.server(b"hello there")
        [failure] = self.readyResult
        failure.trap(ConnectionClosed)
        self.assertEqual(failure.value.reply.code, 421)
        self.assertTrue(self.transport.disconnecting)

    def test_longLine(self):
        """An endless reply line aborts the connection."""
        self.connect()
        self.client.dataReceived(b"220 " + b"x" * (ESMTPClient.MAX_LENGTH + 10))
        [failure] = self.readyResult
        failure.trap(ConnectionClosed)

    def test_quit(self):
        """QUIT is sent and the connection closed after 221; the Deferred fires when it is lost."""
        self.greet()
        done = []
        self.client.quit().addBoth(done.append)
        self.assertEqual(self.sent(), b"QUIT\r\n")
        self.assertFalse(self.client.usable)
        self.server(b"221 bye")
        self.assertTrue(self.transport.disconnecting)
        self.assertEqual(done, [])
        self.client.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(done, [None])

    def test_unsolicited421(self):
        """A 421 while idle (server shutting down) makes the connection unusable."""
        self.greet()
        self.server(b"421 4.3.2 shutting down")
        self.assertFalse(self.client.usable)
        self.assertTrue(self.transport.disconnecting)

    def test_lostDuringGreeting(self):
        """A connection lost before the session is up fails ready with a 421 error."""
        self.connect()
        self.client.connectionLost(Failure(ConnectionLost()))
        [failure] = self.readyResult
        failure.trap(ConnectionClosed)
        self.assertIn("4.4.2", failure.value.reply.text)


class STARTTLSTests(ScriptedMixin, SynchronousTestCase):
    """
    STARTTLS: opportunistic, required, or off.
    """

    transportFactory = TLSStringTransport

    def test_startTLS(self):
        """Offered STARTTLS is used: STARTTLS, 220, startTLS on the transport, a new EHLO."""
        options = object()
        self.connect(useTLS="YES", tlsOptions=options)
        self.server(b"220 x", b"250-x", b"250-PIPELINING", b"250 STARTTLS")
        self.assertEqual(self.sent(), b"EHLO client.test\r\nSTARTTLS\r\n")
        self.assertEqual(self.readyResult, [])
        self.server(b"220 2.0.0 ready")
        self.assertIs(self.transport.tlsOptions, options)
        self.assertEqual(self.sent(), b"EHLO client.test\r\n")
        self.server(b"250-x", b"250 SIZE 10")
        self.assertEqual(self.readyResult, [self.client])
        self.assertTrue(self.client.secure)
        self.assertEqual(self.client.capabilities, {"SIZE": ["10"]})

    def test_injectionDropped(self):
        """Lines that came with the 220 to STARTTLS (before TLS) are thrown away."""
        self.connect(useTLS="YES")
        self.server(b"220 x", b"250-x", b"250 STARTTLS")
        self.sent()
        self.server(b"220 go", b"250 injected")
        self.assertEqual(self.readyResult, [])
        self.assertEqual(self.sent(), b"EHLO client.test\r\n")

    def test_defaultOptions(self):
        """Without options, the client builds non-verifying TLS options."""
        client = ESMTPClient("c", clock=Clock())
        from twisted.internet.ssl import CertificateOptions

        self.assertIsInstance(client.tlsOptions, CertificateOptions)
        self.assertFalse(client.tlsOptions.verify)

    def test_notOffered(self):
        """Opportunistic TLS goes on in plain text when STARTTLS is not offered."""
        self.connect(useTLS="YES")
        self.server(b"220 x", b"250 x")
        self.assertEqual(self.readyResult, [self.client])
        self.assertFalse(self.client.secure)
        self.assertIsNone(self.transport.tlsOptions)

    def test_refusedOpportunistic(self):
        """A refused STARTTLS is not fatal when TLS is opportunistic."""
        self.connect(useTLS="YES")
        self.server(b"220 x", b"250-x", b"250 STARTTLS", b"454 4.7.0 TLS not available")
        self.assertEqual(self.readyResult, [self.client])
        self.assertFalse(self.client.secure)

    def test_refusedRequired(self):
        """A refused STARTTLS refuses the session when TLS is required."""
        self.connect(useTLS=TLS_REQUIRE)
        self.server(b"220 x", b"250-x", b"250 STARTTLS", b"454 4.7.0 TLS not available")
        [failure] = self.readyResult
        failure.trap(SessionRefused)
        self.assertEqual(failure.value.reply.code, 454)
        self.assertIn("4.7.10", failure.value.reply.text)

    def test_requiredNotOffered(self):
        """A server without STARTTLS is refused when TLS is required."""
        self.connect(useTLS=TLS_REQUIRE)
        self.server(b"220 x", b"250 x")
        [failure] = self.readyResult
        failure.trap(SessionRefused)
        self.assertEqual(failure.value.reply.code, 451)
        self.assertIn("not offered", failure.value.reply.text)

    def test_disabled(self):
        """UseSTARTTLS NO ignores an offered STARTTLS."""
        self.connect(useTLS=TLS_NO)
        self.server(b"220 x", b"250-x", b"250 STARTTLS")
        self.assertEqual(self.readyResult, [self.client])
        self.assertEqual(self.sent(), b"EHLO client.test\r\n")

    def test_noTLSTransport(self):
        """A transport that cannot start TLS means no STARTTLS."""
        self.transportFactory = StringTransport
        self.connect(useTLS="YES")
        self.server(b"220 x", b"250-x", b"250 STARTTLS")
        self.assertEqual(self.readyResult, [self.client])
        self.assertEqual(self.sent(), b"EHLO client.test\r\n")

    def test_handshakeFailed(self):
        """A connection lost after STARTTLS is a TLS failure (so the relay can retry in plain text)."""
        self.connect(useTLS="YES")
        self.server(b"220 x", b"250-x", b"250 STARTTLS", b"220 go")
        self.client.connectionLost(Failure(ConnectionLost("handshake failure")))
        [failure] = self.readyResult
        failure.trap(TLSNegotiationFailed)
        self.assertIn("4.7.0", failure.value.reply.text)


class TransactionTests(ScriptedMixin, SynchronousTestCase):
    """
    MAIL, RCPT, DATA and the per-recipient replies.
    """

    def test_sequential(self):
        """Without PIPELINING each command waits for its reply; replies are per recipient."""
        self.greet()
        results = self.send(message(recipients=("a@r.test", "b@r.test")))
        self.assertEqual(self.sent(), b"MAIL FROM:<s@here.test>\r\n")
        self.server(b"250 ok")
        self.assertEqual(self.sent(), b"RCPT TO:<a@r.test>\r\n")
        self.server(b"550 5.1.1 no such user")
        self.assertEqual(self.sent(), b"RCPT TO:<b@r.test>\r\n")
        self.server(b"250 ok")
        self.assertEqual(self.sent(), b"DATA\r\n")
        self.server(b"354 go")
        self.assertEqual(self.sent(), b"Subject: hi\r\n\r\nbody\r\n.\r\n")
        self.assertEqual(results, [])
        self.server(b"250 2.0.0 queued")
        self.assertEqual(self.replies(results), [(550, "5.1.1 no such user"), (250, "2.0.0 queued")])
        self.assertEqual(self.client.messagesSent, 1)
        self.assertTrue(self.client.usable)

    def test_pipelining(self):
        """With PIPELINING, MAIL and every RCPT go in one write; DATA follows the replies."""
        self.transport = None
        self.transportFactory = RecordingTransport
        self.greet(b"PIPELINING")
        self.transport.writes[:] = []
        results = self.send(message(recipients=("a@r.test", "b@r.test")))
        self.assertEqual(self.transport.writes,
                         [b"MAIL FROM:<s@here.test>\r\nRCPT TO:<a@r.test>\r\nRCPT TO:<b@r.test>\r\n"])
        self.server(b"250 ok", b"250 ok")
        self.assertEqual(len(self.transport.writes), 1)
        self.server(b"451 4.2.1 try later")
        self.assertEqual(self.transport.writes[1], b"DATA\r\n")
        self.server(b"354 go", b"250 done")
        self.assertEqual(self.replies(results), [(250, "done"), (451, "4.2.1 try later")])

    def test_pipelinedMailRefused(self):
        """A refused MAIL in a pipelined group gives every recipient the MAIL reply."""
        self.greet(b"PIPELINING")
        self.sent()
        results = self.send(message(recipients=("a@r.test", "b@r.test")))
        self.sent()
        self.server(b"553 5.1.8 bad sender", b"503 need MAIL", b"503 need MAIL")
        self.assertEqual(self.replies(results), [(553, "5.1.8 bad sender")] * 2)
        self.assertEqual(self.sent(), b"")
        self.assertTrue(self.client.usable)

    def test_mailRefused(self):
        """Without pipelining a refused MAIL sends no RCPT."""
        self.greet()
        results = self.send(message(recipients=("a@r.test", "b@r.test")))
        self.sent()
        self.server(b"451 4.3.0 later")
        self.assertEqual(self.sent(), b"")
        self.assertEqual(self.replies(results), [(451, "4.3.0 later")] * 2)

    def test_allRecipientsRefused(self):
        """No accepted recipient: no DATA; the next transaction starts with RSET."""
        self.greet()
        results = self.send(message())
        self.server(b"250 ok", b"550 5.1.1 unknown")
        self.assertEqual(self.sent(), b"MAIL FROM:<s@here.test>\r\nRCPT TO:<a@remote.test>\r\n")
        self.assertEqual(self.replies(results), [(550, "5.1.1 unknown")])
        second = self.send(message())
        self.assertEqual(self.sent(), b"RSET\r\n")
        self.server(b"250 ok")
        self.assertEqual(self.sent(), b"MAIL FROM:<s@here.test>\r\n")
        self.server(b"250 ok", b"250 ok", b"354 go", b"250 yes")
        self.assertEqual(self.replies(second), [(250, "yes")])

    def test_dataRefused(self):
        """A refused DATA is the reply of every accepted recipient."""
        self.greet()
        results = self.send(message(recipients=("a@r.test", "b@r.test")))
        self.server(b"250 ok", b"550 no", b"250 ok", b"554 5.3.0 no data today")
        self.assertEqual(self.replies(results), [(550, "no"), (554, "5.3.0 no data today")])

    def test_finalReplyTemporary(self):
        """A 4xx after the data is every accepted recipient's reply."""
        self.greet()
        results = self.send(message(recipients=("a@r.test", "b@r.test")))
        self.server(b"250 ok", b"250 ok", b"250 ok", b"354 go", b"452 4.3.1 disk full")
        self.assertEqual(self.replies(results), [(452, "4.3.1 disk full")] * 2)
        self.assertTrue(self.client.usable)

    def test_nullSender(self):
        """The null sender is MAIL FROM:<>."""
        self.greet()
        self.send(message(sender=""))
        self.assertEqual(self.sent(), b"MAIL FROM:<>\r\n")

    def test_reset(self):
        """reset() sends RSET and fires with the client: a second message on one connection."""
        self.greet()
        first = self.send(message())
        self.server(b"250 ok", b"250 ok", b"354 go", b"250 one")
        self.assertEqual(self.replies(first), [(250, "one")])
        self.sent()
        done = []
        self.client.reset().addBoth(done.append)
        self.assertEqual(self.sent(), b"RSET\r\n")
        self.server(b"250 ok")
        self.assertEqual(done, [self.client])
        second = self.send(message(recipients=("c@r.test",)))
        self.assertEqual(self.sent(), b"MAIL FROM:<s@here.test>\r\n")
        self.server(b"250 ok", b"250 ok", b"354 go", b"250 two")
        self.assertEqual(self.replies(second), [(250, "two")])
        self.assertEqual(self.client.messagesSent, 2)

    def test_resetFails(self):
        """A connection that cannot RSET is stale."""
        self.greet()
        done = []
        self.client.reset().addBoth(done.append)
        self.client.connectionLost(Failure(ConnectionLost()))
        [failure] = done
        failure.trap(StaleConnection)

    def test_resetRefused(self):
        """An RSET refused is stale too, and the connection is closed."""
        self.greet()
        done = []
        self.client.reset().addBoth(done.append)
        self.server(b"500 what")
        [failure] = done
        failure.trap(StaleConnection)
        self.assertFalse(self.client.usable)

    def test_busy(self):
        """Only one transaction at a time."""
        self.greet()
        self.send(message())
        self.assertRaises(RuntimeError, self.client.sendMessage, message())

    def test_lostMidTransaction(self):
        """A lost connection defers (421) every recipient not yet answered; refused ones keep their reply."""
        self.greet()
        results = self.send(message(recipients=("a@r.test", "b@r.test")))
        self.server(b"250 ok", b"550 5.1.1 no")
        self.client.connectionLost(Failure(ConnectionLost()))
        replies = self.replies(results)
        self.assertEqual(replies[0], (550, "5.1.1 no"))
        self.assertEqual(replies[1][0], 421)
        self.assertIn("4.4.2", replies[1][1])
        self.assertFalse(self.client.usable)

    def test_lostPipelined(self):
        """Lost in the middle of a pipelined group: replies that came are kept."""
        self.greet(b"PIPELINING")
        results = self.send(message(recipients=("a@r.test", "b@r.test", "c@r.test")))
        self.server(b"250 ok", b"550 5.1.1 no", b"250 ok")
        self.client.connectionLost(Failure(ConnectionLost()))
        self.assertEqual([code for code, _ in self.replies(results)], [550, 421, 421])

    def test_lostAfterDot(self):
        """Lost before the reply to the final dot: deferred, not delivered and not failed."""
        self.greet()
        results = self.send(message())
        self.server(b"250 ok", b"250 ok", b"354 go")
        self.client.connectionLost(Failure(ConnectionLost()))
        self.assertEqual(self.replies(results)[0][0], 421)

    def test_brokenClient(self):
        """sendMessage on a dead connection answers 421 for everyone."""
        self.greet()
        self.client.connectionLost(Failure(ConnectionLost()))
        results = self.send(message(recipients=("a@r.test", "b@r.test")))
        self.assertEqual([code for code, _ in self.replies(results)], [421, 421])


class DataTests(ScriptedMixin, SynchronousTestCase):
    """
    The message bytes on the wire.
    """

    def wire(self, data, chunkSize=None):
        if chunkSize is not None:
            self.patch(clientModule._DataSender, "chunkSize", chunkSize)
        self.greet()
        results = self.send(message(data=data))
        self.server(b"250 ok", b"250 ok")
        self.sent()
        self.server(b"354 go")
        wire = self.sent()
        self.server(b"250 ok")
        self.assertEqual(self.replies(results), [(250, "ok")])
        return wire

    def test_dotStuffing(self):
        """Lines starting with a dot get another; the end is CRLF.CRLF."""
        self.assertEqual(self.wire(b".first\r\nx\r\n..two\r\n.\r\n"),
                         b"..first\r\nx\r\n...two\r\n..\r\n.\r\n")

    def test_bareLF(self):
        """Bare LFs become CRLF and a missing final line end is added."""
        self.assertEqual(self.wire(b"a\nb\r\nc"), b"a\r\nb\r\nc\r\n.\r\n")

    def test_empty(self):
        """An empty message is just the final dot."""
        self.assertEqual(self.wire(b""), b".\r\n")

    def test_chunkBoundaries(self):
        """Chunks of any size give the same bytes (dots and CRLF split across reads)."""
        data = b"H: v\r\n\r\n.a\r\n\n.b\r\r\n..\r\nend.\r\n.\n"
        expected = b"H: v\r\n\r\n..a\r\n\r\n..b\r\r\n...\r\nend.\r\n..\r\n.\r\n"
        for size in (1, 2, 3, 5, 7, 64):
            self.assertEqual(clientModule._DataSender(None, None).encode(data), expected[:-3])
            transport = StringTransport()

            class P:
                pass

            p = P()
            p.transport = transport
            p._armTimer = lambda kind: None
            sender = clientModule._DataSender(p, OutboundMessage("", [], data=data).open())
            sender.chunkSize = size
            done = []
            sender.start().addBoth(done.append)
            self.assertEqual(done, [None])
            self.assertEqual(transport.value(), expected, size)

    def test_fromFile(self):
        """A message is streamed from its queue file at an offset, with its size from the file."""
        base = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, base)
        path = os.path.join(base, "1.msg")
        with open(path, "wb") as f:
            f.write(b"{envelope}\r\nSubject: x\r\n\r\n.dot\r\n")
        msg = OutboundMessage("s@h.test", [OutboundRecipient(0, "a@r.test")], path=path, offset=12)
        self.assertEqual(msg.size, 20)
        self.greet(b"SIZE")
        results = self.send(msg)
        self.assertEqual(self.sent(), b"MAIL FROM:<s@h.test> SIZE=20\r\n")
        self.server(b"250 ok", b"250 ok", b"354 go")
        self.assertEqual(self.sent(), b"RCPT TO:<a@r.test>\r\nDATA\r\nSubject: x\r\n\r\n..dot\r\n.\r\n")
        self.server(b"250 ok")
        self.assertEqual(self.replies(results), [(250, "ok")])

    def test_pausedProducer(self):
        """The sender stops while the transport is paused and goes on when resumed."""
        self.patch(clientModule._DataSender, "chunkSize", 4)
        self.greet()
        self.send(message(data=b"0123456789"))
        self.server(b"250 ok", b"250 ok")
        self.sent()
        original = self.transport.write
        calls = []

        def write(data):
            calls.append(data)
            original(data)
            if len(calls) == 1:
                self.transport.producer.pauseProducing()

        self.transport.write = write
        self.server(b"354 go")
        self.assertEqual(self.sent(), b"0123")
        self.transport.producer.resumeProducing()
        self.assertEqual(self.sent(), b"456789\r\n.\r\n")


class ExtensionTests(ScriptedMixin, SynchronousTestCase):
    """
    SIZE, 8BITMIME, SMTPUTF8 and DSN.
    """

    def test_sizeParameter(self):
        """SIZE is declared on MAIL when offered."""
        self.greet(b"SIZE 1000")
        self.send(message(data=b"x" * 10))
        self.assertEqual(self.sent(), b"MAIL FROM:<s@here.test> SIZE=10\r\n")

    def test_tooBig(self):
        """A message over the advertised SIZE fails locally (552 5.3.4) without a command."""
        self.greet(b"SIZE 5")
        results = self.send(message(data=b"x" * 10, recipients=("a@r.test", "b@r.test")))
        self.assertEqual(self.sent(), b"")
        replies = self.replies(results)
        self.assertEqual([code for code, _ in replies], [552, 552])
        self.assertTrue(replies[0][1].startswith("5.3.4"))

    def test_sizeZero(self):
        """SIZE 0 (or none) means no limit."""
        self.greet(b"SIZE 0")
        self.send(message(data=b"x" * 10))
        self.assertEqual(self.sent(), b"MAIL FROM:<s@here.test> SIZE=10\r\n")

    def test_8bitNotOffered(self):
        """An 8-bit message to a server without 8BITMIME fails with 5.6.3."""
        self.greet()
        results = self.send(message(data=b"Subject: \xe9t\xe9\r\n\r\n", bodyType="8BITMIME"))
        self.assertEqual(self.sent(), b"")
        [(code, text)] = self.replies(results)
        self.assertEqual(code, 554)
        self.assertTrue(text.startswith("5.6.3"))

    def test_8bitDeclaredButClean(self):
        """A message declared 8BITMIME but 7-bit clean goes out, without BODY."""
        self.greet()
        self.send(message(bodyType="8BITMIME"))
        self.assertEqual(self.sent(), b"MAIL FROM:<s@here.test>\r\n")

    def test_8bitOffered(self):
        """BODY=8BITMIME is passed on when offered."""
        self.greet(b"8BITMIME")
        self.send(message(data=b"\xe9\r\n", bodyType="8bitmime"))
        self.assertEqual(self.sent(), b"MAIL FROM:<s@here.test> BODY=8BITMIME\r\n")

    def test_utf8Offered(self):
        """Non-ASCII addresses go out in UTF-8 with SMTPUTF8 when offered."""
        self.greet(b"SMTPUTF8", b"8BITMIME")
        self.send(message(recipients=("j\u00f6rg@r.test",), smtputf8=True))
        self.assertEqual(self.sent(), "MAIL FROM:<s@here.test> SMTPUTF8\r\n".encode())
        self.server(b"250 ok")
        self.assertEqual(self.sent(), "RCPT TO:<j\u00f6rg@r.test>\r\n".encode("utf-8"))

    def test_utf8RecipientNotOffered(self):
        """Without SMTPUTF8 only the non-ASCII recipient fails (5.6.7); the others go."""
        self.greet()
        results = self.send(message(recipients=("j\u00f6rg@r.test", "b@r.test")))
        self.assertEqual(self.sent(), b"MAIL FROM:<s@here.test>\r\n")
        self.server(b"250 ok")
        self.assertEqual(self.sent(), b"RCPT TO:<b@r.test>\r\n")
        self.server(b"250 ok", b"354 go", b"250 ok")
        replies = self.replies(results)
        self.assertEqual(replies[0][0], 553)
        self.assertTrue(replies[0][1].startswith("5.6.7"))
        self.assertEqual(replies[1], (250, "ok"))

    def test_utf8SenderNotOffered(self):
        """A non-ASCII sender fails everyone when SMTPUTF8 is not offered."""
        self.greet()
        results = self.send(message(sender="j\u00f6rg@h.test"))
        self.assertEqual(self.sent(), b"")
        self.assertEqual(self.replies(results)[0][0], 553)

    def test_utf8HeadersNotOffered(self):
        """An SMTPUTF8 message with UTF-8 headers fails (5.6.9) without SMTPUTF8."""
        self.greet(b"8BITMIME")
        results = self.send(message(data="Subject: \u00e9\r\n\r\n".encode(), smtputf8=True))
        [(code, text)] = self.replies(results)
        self.assertEqual(code, 554)
        self.assertTrue(text.startswith("5.6.9"))

    def test_utf8AsciiGoesPlain(self):
        """An SMTPUTF8 message that is all ASCII goes out without SMTPUTF8."""
        self.greet()
        self.send(message(smtputf8=True))
        self.assertEqual(self.sent(), b"MAIL FROM:<s@here.test>\r\n")

    def test_dsnParameters(self):
        """RET, ENVID, NOTIFY and ORCPT are passed on (as xtext) when DSN is offered."""
        self.greet(b"DSN", b"PIPELINING")
        recipients = [
            OutboundRecipient(0, "a@r.test", ("SUCCESS", "delay"), "rfc822;a+2Bx@r.test"),
            OutboundRecipient(1, "b@r.test", ("NEVER",), "b+c=d@r.test"),
            OutboundRecipient(2, "c@r.test"),
        ]
        self.send(message(recipients=recipients, ret="hdrs", envid="id 1"))
        self.assertEqual(self.sent(), (
            b"MAIL FROM:<s@here.test> RET=HDRS ENVID=id+201\r\n"
            b"RCPT TO:<a@r.test> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;a+2Bx@r.test\r\n"
            b"RCPT TO:<b@r.test> NOTIFY=NEVER ORCPT=rfc822;b+2Bc+3Dd@r.test\r\n"
            b"RCPT TO:<c@r.test>\r\n"
        ))

    def test_dsnNotOffered(self):
        """DSN parameters are dropped when the server has no DSN."""
        self.greet(b"PIPELINING")
        recipients = [OutboundRecipient(0, "a@r.test", ("SUCCESS",), "rfc822;a@r.test")]
        self.send(message(recipients=recipients, ret="FULL", envid="x"))
        self.assertEqual(self.sent(), b"MAIL FROM:<s@here.test>\r\nRCPT TO:<a@r.test>\r\n")

    def test_xtext(self):
        """xtext encodes +, = and non-printables, and leaves encoded values alone."""
        self.assertEqual(xtext("a+b=c d"), "a+2Bb+3Dc+20d")
        self.assertEqual(xtext("a+2Bb"), "a+2Bb")
        self.assertEqual(xtext("\u00e9"), "+C3+A9")


class TimeoutTests(ScriptedMixin, SynchronousTestCase):
    """
    RFC 5321 4.5.3.2 timeouts on the injected clock.
    """

    def test_defaults(self):
        """The default timeouts are the RFC's minutes."""
        self.assertEqual(TIMEOUTS, {"greeting": 300, "command": 300, "mail": 300, "rcpt": 300,
                                    "data": 120, "block": 180, "end": 600})

    def test_greeting(self):
        """No greeting in time: ready fails with a temporary error and the connection is aborted."""
        self.connect()
        self.clock.advance(SMALL["greeting"] - 0.1)
        self.assertEqual(self.readyResult, [])
        self.clock.advance(0.2)
        [failure] = self.readyResult
        failure.trap(ConnectionClosed)
        self.assertEqual(failure.value.reply.code, 421)
        self.assertTrue(self.transport.disconnecting)

    def test_rcpt(self):
        """A RCPT unanswered for the RCPT timeout defers every waiting recipient."""
        self.greet()
        results = self.send(message(recipients=("a@r.test", "b@r.test")))
        self.server(b"250 ok")
        self.clock.advance(SMALL["rcpt"] - 0.1)
        self.server(b"250 ok")
        self.clock.advance(SMALL["rcpt"] + 0.1)
        replies = self.replies(results)
        self.assertEqual([code for code, _ in replies], [421, 421])
        self.assertIn("timeout", replies[0][1])

    def test_dataEnd(self):
        """The reply to the final dot gets the long 'end' timeout, not the RCPT one."""
        self.greet()
        results = self.send(message())
        self.server(b"250 ok", b"250 ok", b"354 go")
        self.clock.advance(SMALL["end"] - 0.1)
        self.assertEqual(results, [])
        self.clock.advance(0.2)
        self.assertEqual(self.replies(results)[0][0], 421)

    def test_dataInitiation(self):
        """The 354 is awaited for the DATA timeout."""
        self.greet()
        results = self.send(message())
        self.server(b"250 ok", b"250 ok")
        self.clock.advance(SMALL["data"] + 0.1)
        self.assertEqual(self.replies(results)[0][0], 421)

    def test_block(self):
        """A transport paused longer than the block timeout ends the transaction."""
        self.patch(clientModule._DataSender, "chunkSize", 4)
        self.greet()
        results = self.send(message(data=b"0123456789"))
        self.server(b"250 ok", b"250 ok")
        original = self.transport.write

        def write(data):
            original(data)
            if self.transport.producer is not None:
                self.transport.producer.pauseProducing()

        self.transport.write = write
        self.server(b"354 go")
        self.clock.advance(SMALL["block"] + 0.1)
        self.assertEqual(self.replies(results)[0][0], 421)
        self.assertTrue(self.transport.disconnecting)

    def test_noTimerWhenIdle(self):
        """An idle connection has no timer running (the relay's idle timeout rules)."""
        self.greet()
        self.assertEqual(self.clock.getDelayedCalls(), [])


class LoopbackTests(TestCase):
    """
    Against a real SMTP sink on 127.0.0.1 with the server certificate.
    """

    def setUp(self):
        base = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, base, True)
        self.sink = SinkFactory(tlsOptions=ServerTLS(base, "localhost").options)
        self.port = reactor.listenTCP(0, self.sink, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)

    @defer.inlineCallbacks
    def test_startTLS(self):
        """STARTTLS is negotiated for real, then a message goes over TLS."""
        client = ESMTPClient("client.test", useTLS="YES", host="localhost")
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.port.getHost().port)
        yield connectProtocol(endpoint, client)
        yield client.ready
        self.assertTrue(client.secure)
        self.assertNotIn("STARTTLS", client.capabilities)
        results = yield client.sendMessage(message(data=b"Subject: tls\r\n\r\n.hidden\r\n"))
        self.assertEqual([r.code for _, r in results], [250])
        yield client.quit()
        yield self.sink.allClosed()
        [received] = self.sink.messages
        self.assertTrue(received.secure)
        self.assertEqual(received.data, b"Subject: tls\r\n\r\n.hidden\r\n")
        self.assertEqual(received.recipients, ["a@remote.test"])
