# -*- test-case-name: tests.mail.smtp.test_server -*-
"""
The ESMTP server: one session's state machine (RFC 5321 with PIPELINING,
SIZE, 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES, DSN, STARTTLS and AUTH).

Framing: bytes go into one buffer; in command mode complete lines are
taken from it one at a time, in data mode L{wire.DataReader} consumes it.
Commands run strictly in order: a command that waits for something (a
password check, the DNS checks of MAIL, the commit of a message) makes the
session busy and the lines behind it wait in the buffer, so pipelined
groups are answered in order; replies of one pass are written in one go.
Buffer positions rather than slices are advanced, so a 10,000-RCPT
pipelined group costs linear time, and a client that floods while the
session is busy is paused.

What a session may do is decided elsewhere: L{cgpro.mail.smtp.policy}
(trust, relaying, rates, DNS checks), L{cgpro.mail.smtp.auth} (SASL) and
the queue, which gets the message through an
L{cgpro.core.interfaces.IIncomingMessage} and is committed before the 250.
Anything unexpected is logged with its traceback and answered
C{451 4.3.0 internal error}: no traceback ever reaches a client.
"""

import datetime

from twisted.internet import defer, protocol
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin

from cgpro.core.lines import TOO_LONG, takeLine
from cgpro.mail.smtp import auth
from cgpro.mail.smtp.policy import ACCEPT
from cgpro.mail.smtp.transaction import Transaction, addressLiteral, receivedHeader
from cgpro.mail.smtp.wire import (
    MAX_LINE,
    DataReader,
    SMTPError,
    checkMailbox,
    formatReply,
    parseMailFrom,
    parseNotify,
    parseOrcpt,
    parseRcptTo,
    printable,
    splitCommand,
    xtextDecode,
)

log = Logger()

#: A client that sends this much while the session is busy is paused.
MAX_BUFFERED = 1 << 20

#: Replies that count as protocol errors towards C{MaxErrors}.
ERROR_CODES = frozenset([500, 501, 502, 503, 504, 535, 538, 555])

#: First words of HTTP requests: a web proxy abused to reach port 25.
HTTP_VERBS = frozenset(["GET", "POST", "HEAD", "PUT", "CONNECT", "OPTIONS"])

_TOO_LONG = TOO_LONG


class SMTPServer(auth.AuthCommands, protocol.Protocol, TimeoutMixin):
    """
    One ESMTP session.

    @ivar clientAddress: the client's IP address (C{str}).
    @ivar helo: the HELO/EHLO/LHLO argument, or C{None} before it.
    @ivar esmtp: whether the client said EHLO (or LHLO).
    @ivar secure: whether the connection is under TLS.
    @ivar authUser: the authenticated account, or C{None}.
    @ivar isClient: whether the address is in Client IPs or LAN IPs.
    @ivar txn: the current L{Transaction}, or C{None}.
    @ivar errors: protocol errors so far.
    """

    #: How this protocol names itself in greetings and Received fields.
    serviceName = "SMTP"
    greetingWord = "ESMTP"

    def __init__(self, factory):
        self.factory = factory
        self.context = factory.context
        self.policy = factory.policy
        self.clock = factory.clock
        self.callLater = self.clock.callLater
        self.settings = None
        self.clientAddress = ""
        self.hostname = "localhost"
        self.helo = None
        self.esmtp = False
        self.secure = factory.implicitTLS
        self.authUser = None
        self.isClient = False
        self.txn = None
        self.errors = 0
        self._buffer = bytearray()
        self._pos = 0
        self._out = []
        self._busy = False
        self._looping = False
        self._discarding = False
        self._paused = False
        self._closed = False
        self._sasl = None

    # -- connection ------------------------------------------------------

    @property
    def trusted(self):
        """
        Whether this session may relay: authenticated, or a client address.
        """
        return self.authUser is not None or self.isClient

    def connectionMade(self):
        self.factory.figures.opened()
        try:
            self._start()
        except Exception:
            log.failure("{service}: cannot start a session", service=self.serviceName)
            self._closed = True
            self.transport.write(formatReply(421, "4.3.0", "internal error, try later"))
            self.transport.loseConnection()

    def _start(self):
        self.settings = self.factory.settings()
        self.hostname = self.factory.hostname()
        self.clientAddress = getattr(self.transport.getPeer(), "host", "") or ""
        self.isClient = self.policy.isClient(self.clientAddress)
        self.factory.sessions += 1
        if not self.isClient:
            try:
                self.policy.connectionAllowed(self.clientAddress, self.settings)
            except SMTPError as e:
                self._log("connection refused: {reply}", reply=_text(e))
                self.factory.figures.error("refused")
                self._out.append(e.reply())
                self._close()
                return
        self.setTimeout(self.settings.idleTimeout or None)
        self._out.append(formatReply(220, None, "%s %s CommuniGate Pro %s ready" % (
            self.hostname, self.greetingWord, self.context.version)))
        self._flush()

    def connectionLost(self, reason=protocol.connectionDone):
        self.factory.figures.closed()
        self._closed = True
        self.setTimeout(None)
        if self.txn is not None:
            if self.txn.reader is not None:
                self._log("client vanished during DATA; message dropped")
            self.txn.abort()
            self.txn = None
        self._sasl = None

    def timeoutConnection(self):
        self._log("idle timeout")
        self.factory.figures.error("timeout")
        if self.txn is not None:
            self.txn.abort()
            self.txn = None
        self.reply(421, "4.4.2", "%s idle timeout, closing connection" % (self.hostname,))
        self._close()

    # -- output ------------------------------------------------------------

    def reply(self, code, enhanced, text):
        """
        Queue a reply; it is written at the end of the current pass.
        """
        self._out.append(formatReply(code, enhanced, text))

    def _flush(self):
        if self._out:
            data = b"".join(self._out)
            self._out = []
            if self.transport is not None:
                self.transport.write(data)

    def _close(self):
        self._flush()
        self._closed = True
        self.setTimeout(None)
        self.transport.loseConnection()

    def _log(self, text, **kw):
        log.info("{service} {client}: " + text, service=self.serviceName,
                 client=self.clientAddress, **kw)

    # -- framing -----------------------------------------------------------

    def dataReceived(self, data):
        if self._closed:
            return
        self.resetTimeout()
        self._buffer += data
        self._process()

    def _process(self):
        if self._looping:
            return
        self._looping = True
        try:
            while not self._busy and not self._closed:
                txn = self.txn
                if txn is not None and txn.reader is not None:
                    if not self._dataPhase(txn):
                        break
                    continue
                line = self._nextLine()
                if line is None:
                    break
                try:
                    self._lineReceived(line)
                except Exception:
                    self._internalError("command")
        finally:
            self._looping = False
        if self._pos:
            del self._buffer[:self._pos]
            self._pos = 0
        if self._busy and not self._paused and len(self._buffer) > MAX_BUFFERED:
            self._paused = True
            self.transport.pauseProducing()
        self._flush()

    def _nextLine(self):
        """
        @return: the next complete command line (C{bytes}, without its
            line end), L{_TOO_LONG}, or C{None} when none is complete.
        """
        line, self._pos, self._discarding = takeLine(
            self._buffer, self._pos, MAX_LINE, self._discarding)
        return line

    def _lineReceived(self, line):
        if line is _TOO_LONG:
            self._sasl = None
            self._refuse(SMTPError(500, "5.5.2", "line too long"), "command")
            return
        if self._sasl is not None:
            self._run("AUTH", self._saslResponse, line)
            return
        if b"\0" in line:
            self._refuse(SMTPError(500, "5.5.2", "NUL character in command"), "command")
            return
        text = line.decode("utf-8", "surrogateescape")
        verb, argument = splitCommand(text)
        handler = getattr(self, "do_" + verb, None) if verb else None
        if handler is None:
            if verb in HTTP_VERBS and self.helo is None:
                self._log("HTTP request on the SMTP port; closing")
                self.reply(421, "4.7.0", "this is an SMTP server, closing connection")
                self._close()
                return
            self._refuse(SMTPError(500, "5.5.1", "command not recognized: %s"
                                   % (printable(verb or text, 16),)), "command")
            return
        self._run(verb, handler, argument)

    def _run(self, verb, handler, *args):
        """
        Run one command handler: a refusal becomes its reply, anything
        unexpected a logged 451, and a L{Deferred} makes the session busy
        until it fires.
        """
        try:
            result = handler(*args)
        except SMTPError as e:
            self._refuse(e, verb)
            return
        except Exception:
            self._internalError(verb)
            return
        if isinstance(result, defer.Deferred):
            self._busy = True
            self.setTimeout(None)
            result.addErrback(self._asyncFailed, verb)
            result.addBoth(self._resume)

    def _asyncFailed(self, failure, verb):
        if self._closed:
            if not failure.check(SMTPError):
                log.failure("{service} {client}: {verb} failed after the client left",
                            failure, service=self.serviceName, client=self.clientAddress,
                            verb=verb)
            return None
        if failure.check(SMTPError):
            self._refuse(failure.value, verb)
        else:
            self._internalError(verb, failure)
        return None

    def _resume(self, _):
        self._busy = False
        if self._closed:
            return
        self.setTimeout(self.settings.idleTimeout or None)
        if self._paused:
            self._paused = False
            self.transport.resumeProducing()
        if not self._looping:
            self._process()

    def _refuse(self, error, verb):
        """
        Answer a refused command; count protocol errors and close the
        session past C{MaxErrors}; a 421 closes it at once.
        """
        self._out.append(error.reply())
        if not error.quiet:
            self._log("{verb} refused: {reply}", verb=verb, reply=_text(error))
        if error.code == 421:
            if self.txn is not None:
                self.txn.abort()
                self.txn = None
            self._close()
            return
        if error.code in ERROR_CODES:
            self.errors += 1
            self.factory.figures.error("protocol")
            limit = self.settings.maxErrors
            if limit and self.errors >= limit:
                self._log("too many errors ({count}); closing", count=self.errors)
                self.reply(421, "4.7.0", "too many errors, closing connection")
                if self.txn is not None:
                    self.txn.abort()
                    self.txn = None
                self._close()

    def _internalError(self, verb, failure=None):
        log.failure("{service} {client}: {verb} failed", failure,
                    service=self.serviceName, client=self.clientAddress, verb=verb)
        self.factory.figures.error("internal")
        self._sasl = None
        if self.txn is not None:
            self.txn.abort()
            self.txn = None
        self.reply(451, "4.3.0", "internal error")

    # -- session commands ---------------------------------------------------

    def do_EHLO(self, argument):
        self._hello("EHLO", argument, True)
        lines = ["%s hello %s" % (self.hostname, addressLiteral(self.clientAddress))]
        self._out.append(formatReply(250, None, lines + self.extensions()))

    def do_HELO(self, argument):
        self._hello("HELO", argument, False)
        self.reply(250, None, "%s hello %s" % (self.hostname, addressLiteral(self.clientAddress)))

    def _hello(self, verb, argument, esmtp):
        if not argument:
            raise SMTPError(501, "5.5.4", "%s requires a domain or address literal" % (verb,))
        self._resetTransaction()
        self.helo = argument.split()[0][:255]
        self.esmtp = esmtp

    def extensions(self):
        """
        @return: the EHLO keywords this session offers right now.
        """
        size = self.settings.maxMessageSize
        keywords = ["PIPELINING", "SIZE %d" % (size,) if size else "SIZE", "8BITMIME",
                    "SMTPUTF8", "ENHANCEDSTATUSCODES", "DSN"]
        if self._tlsOffered():
            keywords.append("STARTTLS")
        if self._authOffered():
            keywords.append("AUTH " + " ".join(auth.MECHANISMS))
        keywords.append("HELP")
        return keywords

    def _tlsOffered(self):
        return not self.secure and self.factory.tlsOptions is not None

    def _authOffered(self):
        return self.factory.authEnabled and (self.secure or self.settings.allowCleartextAuth)

    def _resetTransaction(self):
        if self.txn is not None:
            self.txn.abort()
            self.txn = None

    def do_RSET(self, argument):
        self._resetTransaction()
        self.reply(250, "2.0.0", "OK")

    def do_NOOP(self, argument):
        self.reply(250, "2.0.0", "OK")

    def do_QUIT(self, argument):
        self._resetTransaction()
        self.reply(221, "2.0.0", "%s closing connection" % (self.hostname,))
        self._close()

    def do_VRFY(self, argument):
        if not argument:
            raise SMTPError(501, "5.5.4", "VRFY needs an address")
        self.reply(252, "2.5.2", "cannot VRFY the user; send RCPT to attempt delivery")

    def do_EXPN(self, argument):
        raise SMTPError(502, "5.5.1", "EXPN not available")

    def do_HELP(self, argument):
        self.reply(214, "2.0.0", "commands: %s" % (" ".join(self.commandNames()),))

    def commandNames(self):
        return ["EHLO", "HELO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", "RSET", "NOOP",
                "VRFY", "HELP", "QUIT"]

    # -- STARTTLS (RFC 3207) ---------------------------------------------------

    def do_STARTTLS(self, argument):
        if argument:
            raise SMTPError(501, "5.5.4", "STARTTLS takes no parameters")
        if self.secure:
            raise SMTPError(503, "5.5.1", "TLS is already active")
        if not self._tlsOffered():
            raise SMTPError(454, "4.7.0", "TLS not available")
        self.reply(220, "2.0.0", "ready to start TLS")
        self._flush()
        # Whatever the client sent after STARTTLS in the clear is dropped,
        # so nobody can inject commands into the protected session.
        del self._buffer[:]
        self._pos = 0
        self.transport.startTLS(self.factory.tlsOptions)
        self.secure = True
        # RFC 3207 4.2: forget everything learnt before TLS.
        self._resetTransaction()
        self.helo = None
        self.esmtp = False
        self.authUser = None

    def tlsDescription(self):
        """
        @return: C{"TLSv1.3 TLS_AES_256_GCM_SHA384"} for the Received
            field, C{"TLS"} when the details are unknown, C{None} in clear.
        """
        if not self.secure:
            return None
        try:
            connection = self.transport.getHandle()
            version = connection.get_protocol_version_name()
            cipher = connection.get_cipher_name()
        except Exception:
            return "TLS"
        return " ".join(str(part) for part in (version, cipher) if part) or "TLS"

    # -- the mail transaction ---------------------------------------------------

    def do_MAIL(self, argument):
        if self.helo is None:
            raise SMTPError(503, "5.5.1", "send %s first" % (self.helloName(),))
        if self.txn is not None:
            raise SMTPError(503, "5.5.1", "nested MAIL command")
        if self.factory.requireAuth and self.authUser is None:
            if self._tlsOffered() and not self.settings.allowCleartextAuth:
                raise SMTPError(530, "5.7.0", "must issue a STARTTLS command first")
            raise SMTPError(530, "5.7.0", "authentication required")
        sender, params = parseMailFrom(argument)
        if params and not self.esmtp:
            raise SMTPError(555, "5.5.4", "MAIL parameters need EHLO")
        options = self._mailParameters(params)
        if sender:
            if "@" not in sender:
                raise SMTPError(553, "5.1.3", "sender address must include a domain")
            checkMailbox(sender, options["smtputf8"])
        self.policy.checkForcedAuth(sender, self.authUser is not None)
        verdict = ACCEPT
        if not self.trusted:
            self.policy.messageAllowed(self.clientAddress, self.settings)
            verdict = self.policy.checkSender(self.clientAddress, self.helo, sender,
                                              self.settings, self.hostname)
        if isinstance(verdict, defer.Deferred):
            return verdict.addCallback(self._senderChecked, sender, options)
        return self._senderChecked(verdict, sender, options)

    def _mailParameters(self, params):
        options = {"smtputf8": False, "bodyType": None, "ret": None, "envid": None}
        for key, value in params.items():
            if key == "SIZE":
                if value is None or not value.isdigit():
                    raise SMTPError(501, "5.5.4", "SIZE needs a number")
                limit = self.settings.maxMessageSize
                if limit is not None and int(value) > limit:
                    raise SMTPError(552, "5.3.4", "message size exceeds fixed maximum message size")
            elif key == "BODY":
                if value is None or value.upper() not in ("7BIT", "8BITMIME"):
                    raise SMTPError(555, "5.5.4", "BODY is 7BIT or 8BITMIME")
                options["bodyType"] = value.upper()
            elif key == "SMTPUTF8":
                if value is not None:
                    raise SMTPError(501, "5.5.4", "SMTPUTF8 takes no value")
                options["smtputf8"] = True
            elif key == "RET":
                if value is None or value.upper() not in ("FULL", "HDRS"):
                    raise SMTPError(501, "5.5.4", "RET is FULL or HDRS")
                options["ret"] = value.upper()
            elif key == "ENVID":
                envid = xtextDecode(value or "")
                if not envid or len(envid) > 100:
                    raise SMTPError(501, "5.5.4", "ENVID must be 1 to 100 characters")
                options["envid"] = envid
            elif key == "AUTH":
                # RFC 4954 5: accepted and not passed on (we do not relay
                # an identity we did not check ourselves).
                xtextDecode(value or "<>")
            else:
                raise SMTPError(555, "5.5.4", "unsupported parameter %s" % (printable(key),))
        return options

    def _senderChecked(self, verdict, sender, options):
        if verdict.error is not None:
            self._log("MAIL FROM <{sender}> refused ({reason})", sender=printable(sender, 256),
                      reason=verdict.reason)
            error = verdict.error
            raise SMTPError(error.code, error.enhanced, error.text, quiet=True)
        self.txn = Transaction(sender, bodyType=options["bodyType"], smtputf8=options["smtputf8"],
                               ret=options["ret"], envid=options["envid"],
                               headers=verdict.headers)
        self.reply(250, "2.1.0", "sender <%s> OK" % (sender,))
        return None

    def do_RCPT(self, argument):
        txn = self.txn
        if txn is None:
            raise SMTPError(503, "5.5.1", "need MAIL before RCPT")
        address, params = parseRcptTo(argument)
        if params and not self.esmtp:
            raise SMTPError(555, "5.5.4", "RCPT parameters need EHLO")
        notify = orcpt = None
        for key, value in params.items():
            if key == "NOTIFY":
                notify = parseNotify(value)
            elif key == "ORCPT":
                orcpt = parseOrcpt(value)
            else:
                raise SMTPError(555, "5.5.4", "unsupported parameter %s" % (printable(key),))
        if "@" in address:
            checkMailbox(address, txn.envelope.smtputf8)
        elif address.lower() != "postmaster":
            raise SMTPError(553, "5.1.3", "recipient address must include a domain")
        limit = self.settings.maxRecipients
        if limit and len(txn.accepted) >= limit:
            quiet, txn.tooMany = txn.tooMany, True
            raise SMTPError(452, "4.5.3", "too many recipients", quiet=quiet)
        try:
            self.policy.checkRecipient(address, self.trusted)
        except SMTPError as e:
            self._log("RCPT TO <{rcpt}> from <{sender}> refused: {reply}",
                      rcpt=printable(address, 256), sender=printable(txn.sender, 256),
                      reply=_text(e))
            e.quiet = True
            raise
        txn.addRecipient(address, notify, orcpt)
        self.reply(250, "2.1.5", "<%s> OK" % (address,))

    def do_DATA(self, argument):
        txn = self.txn
        if txn is None:
            raise SMTPError(503, "5.5.1", "need MAIL command")
        if not txn.accepted:
            raise SMTPError(554, "5.5.1", "no valid recipients")
        if argument:
            raise SMTPError(501, "5.5.4", "DATA takes no parameters")
        incoming = self.context.queue.receive()
        recipients = txn.envelope.recipients
        trace = txn.headers + receivedHeader(
            self.helo, self.clientAddress, self.hostname,
            "CommuniGate Pro %s %s" % (self.serviceName, self.context.version),
            self.protocolTag(), incoming.id, self.clock.seconds(), self.tlsDescription(),
            self.authUser, recipients[0].address if len(recipients) == 1 else None)
        txn.start(incoming, trace)
        txn.traceSize = len(trace)
        settings = self.settings
        txn.reader = DataReader(incoming.write, settings.maxMessageSize, settings.bareLF,
                                settings.nulBytes)
        self.reply(354, None, "enter message, end with <CRLF>.<CRLF>")

    def _dataPhase(self, txn):
        """
        Feed the buffer to the data reader.

        @return: whether the session can go on with the buffer (the data
            ended), C{False} when more bytes are needed.
        """
        reader = txn.reader
        try:
            self._pos = reader.feed(self._buffer, self._pos)
        except Exception:
            self._internalError("DATA")
            self._close()
            return False
        if reader.error is not None:
            txn.dropSpool()
            if reader.fatal:
                self._log("message refused during DATA: {reply}", reply=_text(reader.error))
                self.txn = None
                txn.abort()
                self._out.append(reader.error.reply())
                self._close()
                return False
        if not reader.done:
            return False
        txn.reader = None
        if reader.error is not None:
            self.txn = None
            txn.abort()
            self.factory.rejected += 1
            self._log("message from <{sender}> refused: {reply}",
                      sender=printable(txn.sender, 256), reply=_text(reader.error))
            self.dataRefused(txn, reader.error)
            return True
        self._run("DATA", self._commit, txn, reader.size)
        return True

    def protocolTag(self):
        """
        @return: the RFC 3848 protocol name: C{SMTP}, C{ESMTP},
            C{ESMTPS}, C{ESMTPA}, C{ESMTPSA} (C{LMTP...} for LMTP).
        """
        if not self.esmtp:
            return "SMTP"
        base = "LMTP" if self.serviceName == "LMTP" else "ESMTP"
        return base + ("S" if self.secure else "") + ("A" if self.authUser else "")

    def helloName(self):
        return "EHLO or HELO"

    def _commit(self, txn, bodySize):
        envelope = txn.envelope
        incoming = txn.incoming
        envelope.id = incoming.id
        envelope.clientAddress = self.clientAddress
        envelope.clientName = self.helo or ""
        envelope.protocol = self.protocolTag()
        envelope.authUser = self.authUser
        envelope.trusted = self.trusted
        now = self.clock.seconds()
        envelope.received = datetime.datetime.fromtimestamp(
            now, datetime.timezone.utc).replace(tzinfo=None)
        envelope.size = txn.traceSize + bodySize
        txn.committing = True
        self.txn = None
        d = defer.maybeDeferred(incoming.commit, envelope)
        d.addCallbacks(self._committed, self._commitFailed, callbackArgs=(txn,),
                       errbackArgs=(txn,))
        return d

    def _committed(self, queueId, txn):
        envelope = txn.envelope
        self.factory.accepted += 1
        self.factory.acceptedFigure.inc()
        self._log("{id} accepted from <{sender}> for {count} recipient(s), {size} bytes",
                  id=queueId, sender=printable(envelope.sender, 256),
                  count=len(envelope.recipients), size=envelope.size)
        if self._closed:
            self._log("{id}: client left before the 250; it may send again", id=queueId)
            return None
        return self.messageAccepted(queueId, txn)

    def dataRefused(self, txn, error):
        """
        Answer a message refused after its data (LMTP answers per
        recipient).
        """
        self._out.append(error.reply())

    def messageAccepted(self, queueId, txn):
        """
        Answer a committed message (LMTP answers per recipient).
        """
        self.reply(250, "2.0.0", "%s message accepted for delivery" % (queueId,))

    def _commitFailed(self, failure, txn):
        log.failure("{service} {client}: cannot queue the message from <{sender}>", failure,
                    service=self.serviceName, client=self.clientAddress,
                    sender=txn.envelope.sender)
        self.factory.figures.error("queue")
        if not self._closed:
            self.messageFailed(txn)
        return None

    def messageFailed(self, txn):
        """
        Answer a message the queue could not take.
        """
        self.reply(451, "4.3.0", "internal error")


def _text(error):
    return "%d %s %s" % (error.code, error.enhanced, error.text)

