# -*- test-case-name: tests.mail.smtp.test_client -*-
"""
The sending side of one SMTP connection: an ESMTP client protocol that
the relay (L{cgpro.mail.smtp.relay}) drives one message at a time.

Why not C{twisted.mail.smtp.ESMTPClient}: it is built around one message
per connection pulled from C{getMailFrom}/C{getMailTo} callbacks, reports
recipients only through C{sentMail}, and has no pipelining, no RSET, no
DSN parameters and no per-command timeouts.  A queue needs the opposite:
several messages on one cached connection, a reply for every recipient
(so that one refused recipient is bounced, one deferred recipient is
retried and the others are done), and failures that say whether they are
permanent.  So this protocol is small and explicit:

  - L{ESMTPClient.ready} fires once the greeting, EHLO (HELO when EHLO is
    refused) and, when offered, STARTTLS with a second EHLO are through;
  - L{ESMTPClient.sendMessage} runs one transaction and fires with one
    L{Reply} per recipient: the RCPT reply for a refused recipient, the
    final reply after the data for an accepted one, or a local reply when
    the message cannot go to this server at all (too big for its SIZE, or
    needing 8BITMIME/SMTPUTF8 it does not offer);
  - L{ESMTPClient.reset} (RSET) checks that a cached connection still works
    before it carries another message; L{ESMTPClient.quit} ends politely.

Every reply is awaited with the timeouts of RFC 5321 section 4.5.3.2
(L{TIMEOUTS}; tests pass smaller ones) on an injected clock.  A timeout or
a lost connection fails what is pending with a 421 reply, so recipients
not yet answered are deferred, never lost and never bounced.

TLS is opportunistic by default, as in most MTAs: the server's certificate
is not verified (a verifying client would have to fall back to plain text
for the many servers with self-signed certificates anyway, which gives an
attacker nothing more).  C{useTLS=REQUIRE} refuses servers that do not
offer STARTTLS; C{NO} never starts TLS.

The values this protocol exchanges (L{Reply}, the errors, L{OutboundMessage}
and L{OutboundRecipient}) and their wire encodings (xtext, EHLO keywords,
the dot-stuffed data) are in L{cgpro.mail.smtp._clientmessage}.  This
module re-exports them and keeps only the session: handshake, pipelined
transactions and timeouts.
"""

import collections

from twisted.internet import defer
from twisted.internet.interfaces import ITLSTransport
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure

from cgpro.mail.smtp._clientmessage import (
    ConnectionClosed,
    OutboundMessage,
    OutboundRecipient,
    Reply,
    SMTPClientError,
    SessionRefused,
    StaleConnection,
    TLSNegotiationFailed,
    _DataSender,
    _orcpt,
    parseCapabilities,
    xtext,
)

__all__ = [
    "ConnectionClosed",
    "ESMTPClient",
    "OutboundMessage",
    "OutboundRecipient",
    "Reply",
    "SMTPClientError",
    "SessionRefused",
    "StaleConnection",
    "TIMEOUTS",
    "TLSNegotiationFailed",
    "TLS_NO",
    "TLS_REQUIRE",
    "TLS_YES",
    "parseCapabilities",
    "xtext",
]

#: C{useTLS} values (the C{UseSTARTTLS} setting).
TLS_NO = "NO"
TLS_YES = "YES"
TLS_REQUIRE = "REQUIRE"

#: Seconds to wait, per RFC 5321 4.5.3.2: for the greeting, after MAIL,
#: after each RCPT, for the 354 after DATA, between two writes of the data
#: (C{block}), for the reply after the final dot (C{end}), and for EHLO,
#: HELO, STARTTLS, RSET and QUIT (C{command}, which the RFC leaves open).
TIMEOUTS = {
    "greeting": 300,
    "command": 300,
    "mail": 300,
    "rcpt": 300,
    "data": 120,
    "block": 180,
    "end": 600,
}


class ESMTPClient(LineReceiver):
    """
    One outbound SMTP connection.

    @ivar heloName: the name this server gives in EHLO/HELO.
    @ivar useTLS: L{TLS_YES} (STARTTLS when offered), L{TLS_REQUIRE} or
        L{TLS_NO}.
    @ivar host: how to name the server in texts (its MX name).
    @ivar ready: L{Deferred} firing with this protocol once the session is
        set up, or failing with L{SessionRefused} or L{ConnectionClosed}.
    @ivar capabilities: the last EHLO reply's keywords.
    @ivar esmtp: EHLO was accepted.
    @ivar secure: TLS is on.
    @ivar messagesSent: completed transactions on this connection.
    @ivar onLost: called with this protocol when the connection goes (the
        relay drops it from its pool).
    """

    delimiter = b"\n"
    MAX_LENGTH = 8192

    def __init__(self, heloName, useTLS=TLS_YES, tlsOptions=None, clock=None, timeouts=None,
                 host=None):
        if clock is None:
            from twisted.internet import reactor as clock
        self.heloName = heloName or "localhost"
        self.useTLS = (useTLS or TLS_YES).upper()
        self._tlsOptions = tlsOptions
        self.clock = clock
        self.timeouts = dict(TIMEOUTS)
        self.timeouts.update(timeouts or {})
        self.host = host or "remote server"
        self.ready = defer.Deferred()
        self.capabilities = {}
        self.esmtp = False
        self.secure = False
        self.connected = False
        self.messagesSent = 0
        self.onLost = None
        self._pending = collections.deque()
        self._lines = []
        self._timer = None
        self._broken = None
        self._isReady = False
        self._busy = False
        self._quitting = False
        self._inTransaction = False
        self._sender = None
        self._tlsStarting = False
        self._whenLost = []

    @property
    def tlsOptions(self):
        """
        Client TLS options: no certificate verification (see the module
        docstring).
        """
        if self._tlsOptions is None:
            from twisted.internet.ssl import CertificateOptions

            self._tlsOptions = CertificateOptions()
        return self._tlsOptions

    @property
    def usable(self):
        """
        Whether this connection can take another message now.
        """
        return (self.connected and self._isReady and self._broken is None
                and not self._quitting and not self._busy)

    # -- connection ---------------------------------------------------------

    def connectionMade(self):
        self.connected = True
        d = self._handshake()
        d.addCallbacks(self._handshakeDone, self._handshakeFailed)

    def _handshakeDone(self, _):
        self._isReady = True
        self.ready.callback(self)

    def _handshakeFailed(self, failure):
        if failure.check(SessionRefused) and self.connected and self._broken is None:
            self.quit()
        elif self.connected:
            self._abort()
        self.ready.errback(failure)

    @defer.inlineCallbacks
    def _handshake(self):
        greeting = yield self._expect("greeting")
        if greeting.code != 220:
            raise SessionRefused(greeting)
        yield self._hello()
        if self.useTLS == TLS_NO:
            return
        if "STARTTLS" in self.capabilities and ITLSTransport.providedBy(self.transport):
            reply = yield self._command(b"STARTTLS")
            if reply.code == 220:
                # Anything after the 220 came before TLS: never trust it.
                self.clearLineBuffer()
                self._tlsStarting = True
                self.transport.startTLS(self.tlsOptions)
                self.secure = True
                yield self._hello()
                self._tlsStarting = False
                return
            if self.useTLS == TLS_REQUIRE:
                raise SessionRefused(reply.code if reply.code >= 400 else 451,
                                     "4.7.10 STARTTLS required but refused by %s: %s"
                                     % (self.host, reply.text))
        elif self.useTLS == TLS_REQUIRE:
            raise SessionRefused(451, "4.7.10 STARTTLS required but not offered by %s" % (self.host,))

    @defer.inlineCallbacks
    def _hello(self):
        helo = self.heloName.encode("idna" if not self.heloName.isascii() else "ascii")
        reply = yield self._command(b"EHLO " + helo)
        if reply.positive:
            self.esmtp = True
            self.capabilities = parseCapabilities(reply.lines[1:])
            return
        if reply.code < 500:
            raise SessionRefused(reply)
        reply = yield self._command(b"HELO " + helo)
        if not reply.positive:
            raise SessionRefused(reply)
        self.esmtp = False
        self.capabilities = {}

    def connectionLost(self, reason):
        self.connected = False
        if self._broken is None:
            if self._tlsStarting:
                error = TLSNegotiationFailed(
                    421, "4.7.0 TLS negotiation with %s failed: %s" % (self.host, reason.getErrorMessage())
                )
            else:
                error = ConnectionClosed(
                    421, "4.4.2 connection with %s lost: %s" % (self.host, reason.getErrorMessage())
                )
            self._fail(error)
        else:
            self._fail(self._broken)
        if self.onLost is not None:
            self.onLost(self)
        waiting, self._whenLost = self._whenLost, []
        for d in waiting:
            d.callback(None)

    def _fail(self, error):
        """
        Make the connection unusable and fail everything that waits.
        """
        if self._broken is None:
            self._broken = error
        self._cancelTimer()
        pending, self._pending = self._pending, collections.deque()
        if self._sender is not None:
            sender, self._sender = self._sender, None
            sender.stop(Failure(self._broken))
        for d, _kind in pending:
            d.errback(Failure(self._broken))

    def _abort(self):
        transport = self.transport
        if transport is None:
            return
        abort = getattr(transport, "abortConnection", None)
        if abort is not None:
            abort()
        else:
            transport.loseConnection()

    def abort(self):
        """
        Drop the connection at once (the relay gives up on it).
        """
        self._fail(ConnectionClosed(421, "4.4.2 connection with %s aborted" % (self.host,)))
        if self.connected:
            self._abort()

    def quit(self):
        """
        Say QUIT and close.

        @return: L{Deferred} firing once the connection is closed.
        """
        if not self.connected:
            return defer.succeed(None)
        d = defer.Deferred()
        self._whenLost.append(d)
        if self._quitting:
            return d
        self._quitting = True
        if self._broken is not None or not self._isReady or self._busy:
            self.transport.loseConnection()
            return d
        q = self._command(b"QUIT")
        q.addErrback(lambda f: None)
        q.addBoth(lambda _: self.connected and self.transport.loseConnection())
        return d

    # -- replies ------------------------------------------------------------

    def lineReceived(self, line):
        if line.endswith(b"\r"):
            line = line[:-1]
        code, separator = line[:3], line[3:4]
        if len(code) < 3 or not code.isdigit() or separator not in (b"", b" ", b"-"):
            self._protocolError("malformed reply %r" % (line[:80],))
            return
        self._lines.append(line[4:].decode("utf-8", "replace"))
        if separator == b"-":
            return
        reply = Reply(int(code), self._lines)
        self._lines = []
        self._replyReceived(reply)

    def lineLengthExceeded(self, line):
        self._protocolError("reply line too long")

    def _protocolError(self, why):
        self._fail(ConnectionClosed(421, "4.5.0 protocol error from %s: %s" % (self.host, why)))
        self._abort()

    def _replyReceived(self, reply):
        if not self._pending:
            # Unsolicited: a server shutting down says 421 and closes.
            if reply.code == 421:
                self._fail(ConnectionClosed(reply))
                self.transport.loseConnection()
            return
        d, _kind = self._pending.popleft()
        if self._pending:
            self._armTimer(self._pending[0][1])
        else:
            self._cancelTimer()
        d.callback(reply)

    def _expect(self, kind):
        """
        @return: L{Deferred} firing with the next unclaimed reply.
        """
        if self._broken is not None:
            return defer.fail(self._broken)
        d = defer.Deferred()
        if not self._pending:
            self._armTimer(kind)
        self._pending.append((d, kind))
        return d

    def _command(self, line, kind="command"):
        return self._commands([line], [kind])[0]

    def _commands(self, lines, kinds):
        """
        Write commands in one write (a pipelined group when several).

        @return: a L{Deferred} per command for its reply.
        """
        if self._broken is not None:
            return [defer.fail(self._broken) for _ in lines]
        self.transport.write(b"".join(line + b"\r\n" for line in lines))
        return [self._expect(kind) for kind in kinds]

    # -- timers -------------------------------------------------------------

    def _armTimer(self, kind):
        self._cancelTimer()
        self._timer = self.clock.callLater(self.timeouts[kind], self._timedOut, kind)

    def _cancelTimer(self):
        if self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None

    def _timedOut(self, kind):
        self._timer = None
        what = "data to be accepted" if kind == "block" else "reply (%s)" % (kind,)
        self._fail(ConnectionClosed(421, "4.4.2 timeout waiting for %s from %s" % (what, self.host)))
        self._abort()

    # -- transactions -------------------------------------------------------

    def reset(self):
        """
        RSET: end any transaction and check that the connection still works
        before it carries another message.

        @return: L{Deferred} firing with this protocol, or failing with
            L{StaleConnection}.
        """
        if not self.usable:
            return defer.fail(StaleConnection(self._broken.reply if self._broken else
                                               Reply(421, ["4.4.2 connection not usable"])))
        d = self._command(b"RSET")

        def checked(reply):
            if not reply.positive:
                self._fail(StaleConnection(reply))
                self.quit()
                raise StaleConnection(reply)
            self._inTransaction = False
            return self

        def failed(failure):
            failure.trap(SMTPClientError)
            raise StaleConnection(failure.value.reply)

        d.addCallbacks(checked, failed)
        return d

    def sendMessage(self, message):
        """
        Run one mail transaction.

        @param message: an L{OutboundMessage}.
        @return: L{Deferred} firing with a C{list} of
            C{(OutboundRecipient, Reply)}, one per recipient, in order.
            It does not fail: connection trouble becomes the reply of every
            recipient still waiting (and makes the connection unusable).
        """
        if self._busy:
            raise RuntimeError("a transaction is already running")
        self._busy = True
        replies = {}
        d = self._transaction(message, replies)

        def done(result):
            self._busy = False
            if isinstance(result, Failure):
                if result.check(SMTPClientError):
                    error = result.value.reply
                else:
                    error = Reply(451, ["4.3.0 local error: %s" % (result.getErrorMessage(),)])
                    self.abort()
                for i in range(len(message.recipients)):
                    replies.setdefault(i, error)
            return [(r, replies[i]) for i, r in enumerate(message.recipients)]

        d.addBoth(done)
        return d

    @defer.inlineCallbacks
    def _transaction(self, message, replies):
        if self._broken is not None:
            raise self._broken
        recipients = message.recipients
        caps = self.capabilities

        def everyone(code, text):
            for i in range(len(recipients)):
                replies.setdefault(i, Reply(code, [text]))

        limit = caps.get("SIZE", [None])
        limit = int(limit[0]) if limit and limit[0] and limit[0].isdigit() else 0
        if limit and message.size > limit:
            everyone(552, "5.3.4 message size %d exceeds the limit %d of %s"
                     % (message.size, limit, self.host))
            return

        useUTF8 = False
        needsUTF8 = (message.smtputf8 or not message.sender.isascii()
                     or not all(r.address.isascii() for r in recipients))
        if needsUTF8:
            if "SMTPUTF8" in caps:
                useUTF8 = True
            elif not message.sender.isascii():
                everyone(553, "5.6.7 %s does not support SMTPUTF8 for a non-ASCII sender" % (self.host,))
                return
            else:
                for i, r in enumerate(recipients):
                    if not r.address.isascii():
                        replies[i] = Reply(553, ["5.6.7 %s does not support SMTPUTF8 (non-ASCII address)"
                                                 % (self.host,)])
                if message.smtputf8 and not message.headersAscii():
                    everyone(554, "5.6.9 %s does not support SMTPUTF8 (UTF-8 headers)" % (self.host,))
                    return

        body = (message.bodyType or "").upper() or None
        if "8BITMIME" not in caps:
            if (body in ("8BITMIME", "BINARYMIME") or message.smtputf8) and message.has8bit():
                everyone(554, "5.6.3 %s does not support 8BITMIME; conversion not supported"
                         % (self.host,))
                return
            body = None
        elif body == "BINARYMIME":
            body = "8BITMIME"

        active = [i for i in range(len(recipients)) if i not in replies]
        if not active:
            return

        if self._inTransaction:
            reply = yield self._command(b"RSET")
            if not reply.positive:
                error = ConnectionClosed(reply)
                self._fail(error)
                self.quit()
                raise error
            self._inTransaction = False

        encoding = "utf-8" if useUTF8 else "ascii"
        params = []
        if "SIZE" in caps:
            params.append("SIZE=%d" % (message.size,))
        if body in ("7BIT", "8BITMIME"):
            params.append("BODY=" + body)
        if useUTF8:
            params.append("SMTPUTF8")
        dsn = "DSN" in caps
        if dsn and message.ret:
            params.append("RET=" + message.ret.upper())
        if dsn and message.envid:
            params.append("ENVID=" + xtext(message.envid))
        mail = ("MAIL FROM:<%s>%s" % (message.sender, "".join(" " + p for p in params))).encode(encoding)
        rcpts = []
        for i in active:
            r = recipients[i]
            params = []
            if dsn and r.notify:
                params.append("NOTIFY=" + ",".join(n.upper() for n in r.notify))
            if dsn and r.orcpt:
                params.append("ORCPT=" + _orcpt(r.orcpt))
            rcpts.append(("RCPT TO:<%s>%s" % (r.address, "".join(" " + p for p in params))).encode(encoding))

        accepted = []
        if "PIPELINING" in caps:
            ds = self._commands([mail] + rcpts, ["mail"] + ["rcpt"] * len(rcpts))
            answers = yield defer.DeferredList(ds, consumeErrors=True)
            ok, mailReply = answers[0]
            if not ok:
                mailReply.raiseException()
            self._inTransaction = mailReply.positive
            if mailReply.positive:
                for i, (ok, reply) in zip(active, answers[1:]):
                    if not ok:
                        reply.raiseException()
                    if reply.positive:
                        accepted.append(i)
                    else:
                        replies[i] = reply
        else:
            mailReply = yield self._command(mail, "mail")
            if mailReply.positive:
                self._inTransaction = True
                for i, line in zip(active, rcpts):
                    reply = yield self._command(line, "rcpt")
                    if reply.positive:
                        accepted.append(i)
                    else:
                        replies[i] = reply

        if not mailReply.positive:
            for i in active:
                replies[i] = mailReply
            return
        if not accepted:
            return

        reply = yield self._command(b"DATA", "data")
        if reply.code != 354:
            for i in accepted:
                replies[i] = reply
            return
        self._sender = _DataSender(self, message.open())
        yield self._sender.start()
        self._sender = None
        final = yield self._expect("end")
        self._inTransaction = False
        self.messagesSent += 1
        for i in accepted:
            replies[i] = final
