# -*- test-case-name: tests.mail.pop3.test_server -*-
"""
The POP3 server: one session's state machine (RFC 1939 with CAPA,
RESP-CODES, AUTH-RESP-CODE and PIPELINING of RFC 2449, SASL AUTH of RFC
5034, STLS of RFC 2595).

States: C{AUTHORIZATION} (C{auth_<VERB>} handlers), C{TRANSACTION}
(C{trans_<VERB>}), C{UPDATE} (after QUIT, while deletions are applied);
C{any_<VERB>} handlers run in both of the first two.

The maildrop is the account's INBOX in the store, opened at login and held
under the mailbox's exclusive session lock (L{Mailbox.tryLock}), so a
second POP session gets C{-ERR [IN-USE]}; IMAP sessions may still use it.
The session works on a snapshot of the messages taken at login: DELE only
marks a message in the session, and the store removes the marked messages
only when QUIT enters the UPDATE state, so a dropped connection keeps
everything.  RETR sets C{\\Seen}.

Framing is as in the SMTP server: bytes go into one buffer, complete lines
are taken in order, and a command that waits (a password check, opening
the maildrop, a large RETR being streamed, the expunge at QUIT) makes the
session busy so pipelined commands behind it wait their turn.  Command
lines are limited to 255 octets (RFC 2449), SASL responses to 8 KB.
Protocol errors are counted and the session closed past C{MaxErrors};
failed logins are answered after a delay and counted in the server's shared
L{cgpro.core.throttle.LoginThrottle}.  Anything unexpected is logged with
its traceback and answered C{-ERR [SYS/TEMP] internal error}: no traceback
ever reaches a client.
"""

import base64
import hashlib
import hmac
import os

from twisted.internet import defer, protocol
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin

from cgpro.core.lines import TOO_LONG, takeLine
from cgpro.mail.pop3.message import CHUNK, MessageReader, MessageSender
from cgpro.mail.smtp import auth as sasl
from cgpro.store.errors import MessageExpunged
from cgpro.store.mailbox import ADD

log = Logger()

AUTHORIZATION = "AUTHORIZATION"
TRANSACTION = "TRANSACTION"
UPDATE = "UPDATE"

#: Longest command line, without its CRLF (RFC 2449 section 4: 255 octets).
MAX_LINE = 255

#: Longest SASL response line (RFC 5034 lets responses exceed 255).
MAX_SASL_LINE = 8192

#: A client that sends this much while the session is busy is paused.
MAX_BUFFERED = 1 << 20

_PREFIX = {AUTHORIZATION: "auth_", TRANSACTION: "trans_"}

_TOO_LONG = TOO_LONG


class POP3Error(Exception):
    """
    A refused command: its C{-ERR} line.

    @ivar code: the RFC 2449 response code (C{"IN-USE"}, C{"AUTH"},
        C{"SYS/TEMP"}, ...) or C{None}.
    @ivar counts: whether it counts towards C{MaxErrors}.
    """

    def __init__(self, text, code=None, counts=True):
        Exception.__init__(self, text, code)
        self.text = text
        self.code = code
        self.counts = counts

    def line(self):
        """
        @return: the response line (C{bytes}, CRLF included).
        """
        code = "[%s] " % (self.code,) if self.code else ""
        return ("-ERR %s%s\r\n" % (code, self.text)).encode("utf-8", "replace")


def printable(text, limit=64):
    """
    @return: C{text} made safe for a log line.
    """
    text = "".join(c if " " <= c < "\x7f" else "?" for c in str(text))
    return text if len(text) <= limit else text[:limit] + "..."


def uniqueId(uidValidity, uid):
    """
    The UIDL of a message: stable across sessions and restarts, and never
    reused (a new UIDVALIDITY changes every id).

    @return: C{str} of printable ASCII (RFC 1939: 1 to 70 characters).
    """
    return "%d.%d" % (uidValidity, uid)


def popAllowed(directory, account):
    """
    Whether the account may use POP (CommuniGate's C{AccessModes}: C{All}
    or a list naming C{POP}).

    @return: C{bool}.
    """
    modes = directory.effectiveAccountSettings(account).get("AccessModes", "All")
    if isinstance(modes, str):
        return modes.strip().lower() == "all"
    return any(str(mode).strip().upper() == "POP" for mode in modes)


def _messageNumber(text):
    """
    @return: the C{int} of a decimal argument.
    @raise POP3Error: not a number.
    """
    text = text.strip()
    if not text or len(text) > 10 or not text.isdigit() or not text.isascii():
        raise POP3Error("invalid message number")
    return int(text)


class POP3Server(protocol.Protocol, TimeoutMixin):
    """
    One POP3 session.

    @ivar state: L{AUTHORIZATION}, L{TRANSACTION} or L{UPDATE}.
    @ivar secure: whether the connection is under TLS.
    @ivar clientAddress: the client's IP address (C{str}).
    @ivar timestamp: the APOP timestamp of the greeting (C{str}).
    @ivar account: the logged-in C{name@domain}, or C{None}.
    @ivar mailbox: the locked INBOX (L{cgpro.store.mailbox.Mailbox}) or
        C{None}.
    @ivar messages: the snapshot taken at login: C{[(uid, size)]}; message
        number M is C{messages[M - 1]}.
    @ivar deleted: rows (message number minus one) marked by DELE.
    @ivar errors: protocol errors so far.
    """

    def __init__(self, factory):
        self.factory = factory
        self.context = factory.context
        self.clock = factory.clock
        self.callLater = self.clock.callLater
        self.settings = None
        self.state = AUTHORIZATION
        self.secure = factory.implicitTLS
        self.clientAddress = ""
        self.hostname = "localhost"
        self.timestamp = ""
        self.user = None
        self.account = None
        self.mailbox = None
        self.messages = []
        self.deleted = set()
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
        self._updating = False
        self._delayed = None

    # -- connection ------------------------------------------------------

    def connectionMade(self):
        self.factory.figures.opened()
        try:
            self.settings = self.factory.settings()
            self.hostname = self.factory.hostname()
            self.clientAddress = getattr(self.transport.getPeer(), "host", "") or ""
            self.timestamp = "<%d.%s.%d@%s>" % (
                os.getpid(), os.urandom(6).hex(), int(self.clock.seconds()), self.hostname)
            self.factory.sessions += 1
            self.setTimeout(self.settings.idleTimeout or None)
            self.ok("CommuniGate Pro POP3 server %s ready %s" % (
                self.context.version, self.timestamp))
        except Exception:
            log.failure("POP3: cannot start a session")
            self._out = [POP3Error("internal error, try later", "SYS/TEMP").line()]
            self._close()
            return
        self._flush()

    def connectionLost(self, reason=protocol.connectionDone):
        self.factory.figures.closed()
        self._closed = True
        self.setTimeout(None)
        self._sasl = None
        if self._delayed is not None and self._delayed.active():
            self._delayed.cancel()
        self._delayed = None
        if not self._updating:
            self._release()

    def timeoutConnection(self):
        # RFC 1939 section 3: the autologout timer closes the connection
        # without entering UPDATE (nothing is deleted) and without reply.
        self._log("idle timeout")
        self.factory.figures.error("timeout")
        self._close()

    def _release(self):
        """
        Unlock and close the maildrop (idempotent).
        """
        mailbox, self.mailbox = self.mailbox, None
        if mailbox is not None:
            mailbox.unlock(self)
            mailbox.close()

    # -- output ------------------------------------------------------------

    def ok(self, text=""):
        """
        Queue a C{+OK} line; it is written at the end of the current pass.
        """
        self._out.append(("+OK %s\r\n" % (text,) if text else "+OK\r\n").encode("utf-8"))

    def multiline(self, text, lines):
        """
        Queue a C{+OK} line followed by the lines of a multi-line response
        (dot-stuffed) and its terminator.
        """
        self.ok(text)
        out = self._out
        for line in lines:
            if line[:1] == ".":
                line = "." + line
            out.append(line.encode("utf-8") + b"\r\n")
        out.append(b".\r\n")

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
        if self.transport is not None:
            self.transport.loseConnection()

    def _log(self, text, **kw):
        log.info("POP3 {client}: " + text, client=self.clientAddress, **kw)

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
        @return: the next complete line (C{bytes}, without its line end),
            L{_TOO_LONG}, or C{None} when none is complete.
        """
        limit = MAX_SASL_LINE if self._sasl is not None else MAX_LINE
        line, self._pos, self._discarding = takeLine(
            self._buffer, self._pos, limit, self._discarding)
        return line

    def _lineReceived(self, line):
        if line is _TOO_LONG:
            self._sasl = None
            self._refuse(POP3Error("line too long"), "command")
            return
        if self._sasl is not None:
            self._run("AUTH", self._saslResponse, line)
            return
        if b"\0" in line:
            self._refuse(POP3Error("NUL character in command"), "command")
            return
        text = line.decode("utf-8", "replace")
        verb, _, argument = text.partition(" ")
        verb = verb.upper()
        if not verb.isalpha() or not verb.isascii() or len(verb) > 8:
            self._refuse(POP3Error("unknown command"), "command")
            return
        handler = None
        prefix = _PREFIX.get(self.state)
        if prefix is not None:
            handler = getattr(self, prefix + verb, None) or getattr(self, "any_" + verb, None)
        if handler is None:
            if any(hasattr(self, p + verb) for p in _PREFIX.values()):
                error = POP3Error("%s not valid in this state" % (verb,))
            else:
                error = POP3Error("unknown command: %s" % (printable(verb, 16),))
            self._refuse(error, verb)
            return
        self._run(verb, handler, argument)

    def _run(self, verb, handler, *args):
        """
        Run one command handler: a refusal becomes its C{-ERR}, anything
        unexpected a logged internal error, and a L{Deferred} makes the
        session busy until it fires.
        """
        try:
            result = handler(*args)
        except POP3Error as e:
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
            if not failure.check(POP3Error):
                log.failure("POP3 {client}: {verb} failed after the client left", failure,
                            client=self.clientAddress, verb=verb)
            return None
        if failure.check(POP3Error):
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
        Answer a refused command; close the session past C{MaxErrors}.
        """
        self._out.append(error.line())
        if error.counts:
            self.errors += 1
            self.factory.figures.error("protocol")
            limit = self.settings.maxErrors
            if limit and self.errors >= limit:
                self._log("too many errors ({n}); closing", n=self.errors)
                self._close()

    def _internalError(self, verb, failure=None):
        log.failure("POP3 {client}: {verb} failed", failure, client=self.clientAddress, verb=verb)
        self.factory.figures.error("internal")
        self._out.append(POP3Error("internal error", "SYS/TEMP").line())

    # -- any state ---------------------------------------------------------

    def _authOffered(self):
        return self.secure or self.settings.allowCleartextAuth

    def _tlsOffered(self):
        return not self.secure and self.factory.tlsOptions is not None

    def any_CAPA(self, argument):
        lines = ["TOP", "UIDL", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE"]
        if self.state == AUTHORIZATION:
            if self._authOffered():
                lines.append("USER")
                lines.append("SASL " + " ".join(sasl.MECHANISMS))
            if self._tlsOffered():
                lines.append("STLS")
        lines.append("IMPLEMENTATION CommuniGate Pro (cgpro %s)" % (self.context.version,))
        self.multiline("Capability list follows", lines)

    def any_QUIT(self, argument):
        if self.state == TRANSACTION:
            return self._update()
        self.ok("%s POP3 server signing off" % (self.hostname,))
        self._close()
        return None

    # -- AUTHORIZATION -------------------------------------------------------

    def _requireAuth(self):
        if not self._authOffered():
            raise POP3Error("cleartext authentication disallowed; use STLS first", "AUTH")

    def auth_STLS(self, argument):
        if argument.strip():
            raise POP3Error("STLS takes no arguments")
        if self.secure:
            raise POP3Error("TLS is already active")
        if self.factory.tlsOptions is None:
            raise POP3Error("TLS not available", counts=False)
        self.ok("begin TLS negotiation")
        self._flush()
        # Whatever the client pipelined after STLS in the clear is dropped,
        # so nobody can inject commands into the protected session.
        del self._buffer[:]
        self._pos = 0
        self.transport.startTLS(self.factory.tlsOptions)
        self.secure = True
        self.user = None

    def auth_USER(self, argument):
        self._requireAuth()
        name = argument.strip()
        if not name:
            raise POP3Error("USER needs a name")
        self.user = name
        return self.ok("send your password")

    def auth_PASS(self, argument):
        self._requireAuth()
        user, self.user = self.user, None
        if user is None:
            raise POP3Error("send USER first")
        self._checkThrottle()
        d = defer.maybeDeferred(self.context.directory.checkPassword, user, argument)
        d.addCallback(lambda full: self._checked(
            full, None if full else "wrong password or unknown user", user, "USER"))
        return d

    def auth_APOP(self, argument):
        self._requireAuth()
        parts = argument.split()
        if len(parts) != 2 or len(parts[1]) != 32:
            raise POP3Error("syntax: APOP name digest")
        user, digest = parts[0], parts[1].lower()
        self._checkThrottle()
        directory = self.context.directory
        full = directory.resolveLogin(user)
        password = directory.getPassword(full) if full else None
        if password is None:
            return self._failed("APOP", user, "APOP not possible (unknown user or one-way"
                                " password)")
        expected = hashlib.md5((self.timestamp + password).encode("utf-8")).hexdigest()
        if not hmac.compare_digest(expected, digest):
            return self._failed("APOP", user, "wrong APOP digest")
        return self._checked(full, None, user, "APOP")

    def auth_AUTH(self, argument):
        argument = argument.strip()
        if not argument:
            # Not in RFC 5034, but old clients list mechanisms this way.
            if not self._authOffered():
                return self.multiline("no mechanisms before STLS", [])
            return self.multiline("SASL mechanisms follow", list(sasl.MECHANISMS))
        self._requireAuth()
        name, _, initial = argument.partition(" ")
        mechanism = sasl.mechanism(name, self.hostname)
        if mechanism is None:
            raise POP3Error("unrecognized authentication mechanism")
        self._checkThrottle()
        initial = initial.strip()
        self._sasl = mechanism
        if initial:
            if mechanism.name == "CRAM-MD5":
                self._sasl = None
                raise POP3Error("CRAM-MD5 takes no initial response")
            return self._saslResponse(initial.encode("ascii", "replace"))
        self._challenge(mechanism.start())
        return None

    def _challenge(self, data):
        self._out.append(b"+ " + base64.b64encode(data) + b"\r\n")

    def _saslResponse(self, line):
        """
        Feed one client response to the SASL mechanism; once it has the
        credentials, check them.
        """
        mechanism = self._sasl
        try:
            challenge, credentials = mechanism.respond(sasl.decode(line))
        except sasl.SASLError as e:
            self._sasl = None
            if e.code == 535:
                return self._failed(mechanism.name, "?", e.text)
            raise POP3Error(e.text)
        if challenge is not None:
            self._challenge(challenge)
            return None
        self._sasl = None
        d = sasl.checkCredentials(self.context.directory, credentials)
        d.addCallback(lambda outcome: self._checked(
            outcome[0], outcome[1], credentials.user, mechanism.name))
        return d

    def _checkThrottle(self):
        if self.factory.throttle.blocked(self.clientAddress):
            self._log("login refused: too many failed logins")
            raise POP3Error("too many failed logins, try later", "SYS/TEMP")

    def _checked(self, account, reason, user, method):
        """
        The credentials were checked: refuse, or open the maildrop.
        """
        if account is not None and not popAllowed(self.context.directory, account):
            account, reason = None, "POP access is not enabled for this account"
        if account is None:
            return self._failed(method, user, reason)
        self.factory.throttle.succeeded(self.clientAddress)
        return self._openMaildrop(account, method)

    def _failed(self, method, user, reason):
        """
        Record a failed login and answer C{-ERR [AUTH]} only after the
        failure delay, so guessing is slow even below the throttle limit.
        """
        self.factory.throttle.failed(self.clientAddress)
        self.factory.loginFailures += 1
        self.factory.figures.authFailures.inc()
        self._log("{method} login failed for {user}: {reason}", method=method,
                  user=printable(user), reason=reason)
        error = POP3Error("authentication failed", "AUTH")
        delay = self.settings.authFailureDelay
        if not delay:
            raise error
        d = defer.Deferred()
        self._delayed = self.clock.callLater(delay, d.errback, error)

        def fired(result):
            self._delayed = None
            return result

        return d.addBoth(fired)

    def _openMaildrop(self, account, method):
        d = self.context.mailStore.openMailbox(account, "INBOX")

        def opened(mailbox):
            if self._closed:
                mailbox.close()
                return None
            if not mailbox.tryLock(self):
                mailbox.close()
                self._log("{user}: maildrop in use", user=account)
                raise POP3Error("maildrop already locked by another session", "IN-USE",
                                counts=False)
            self.mailbox = mailbox
            self.account = account
            self.messages = [(uid, mailbox.size(uid)) for uid in mailbox.uids]
            self.deleted = set()
            self.state = TRANSACTION
            self.factory.logins += 1
            self._log("{user} logged in ({method}), {n} messages", user=account,
                      method=method, n=len(self.messages))
            self.ok("%s has %d messages (%d octets)" % (account, *self._stat()))
            return None

        def failed(failure):
            if failure.check(POP3Error):
                return failure
            log.failure("POP3 {client}: cannot open the maildrop of {user}", failure,
                        client=self.clientAddress, user=account)
            raise POP3Error("cannot open the maildrop, try later", "SYS/TEMP", counts=False)

        return d.addCallbacks(opened, failed)

    # -- TRANSACTION -----------------------------------------------------------

    def _stat(self):
        count = size = 0
        for row, (uid, octets) in enumerate(self.messages):
            if row not in self.deleted:
                count += 1
                size += octets
        return count, size

    def _row(self, text):
        """
        @return: the row of a message-number argument.
        @raise POP3Error: no such message, or marked deleted.
        """
        number = _messageNumber(text)
        if not 1 <= number <= len(self.messages):
            raise POP3Error("no such message")
        if number - 1 in self.deleted:
            raise POP3Error("message %d already deleted" % (number,))
        return number - 1

    def _alive(self):
        return [row for row in range(len(self.messages)) if row not in self.deleted]

    def trans_STAT(self, argument):
        self.ok("%d %d" % self._stat())

    def trans_LIST(self, argument):
        if argument.strip():
            row = self._row(argument)
            self.ok("%d %d" % (row + 1, self.messages[row][1]))
            return
        self.multiline("%d messages (%d octets)" % self._stat(),
                       ["%d %d" % (row + 1, self.messages[row][1]) for row in self._alive()])

    def trans_UIDL(self, argument):
        validity = self.mailbox.uidValidity
        if argument.strip():
            row = self._row(argument)
            self.ok("%d %s" % (row + 1, uniqueId(validity, self.messages[row][0])))
            return
        self.multiline("unique-id listing follows", [
            "%d %s" % (row + 1, uniqueId(validity, self.messages[row][0]))
            for row in self._alive()])

    def trans_DELE(self, argument):
        row = self._row(argument)
        self.deleted.add(row)
        self.ok("message %d deleted" % (row + 1,))

    def trans_RSET(self, argument):
        self.deleted.clear()
        self.ok("maildrop has %d messages (%d octets)" % self._stat())

    def trans_NOOP(self, argument):
        self.ok()

    def trans_RETR(self, argument):
        row = self._row(argument)
        return self._sendMessage(row, None, "%d octets" % (self.messages[row][1],))

    def trans_TOP(self, argument):
        parts = argument.split()
        if len(parts) != 2:
            raise POP3Error("syntax: TOP message lines")
        row = self._row(parts[0])
        lines = _messageNumber(parts[1])
        return self._sendMessage(row, lines, "top of message follows")

    def _sendMessage(self, row, bodyLines, text):
        """
        Send a message or its top: small ones in this pass, large ones
        streamed by a L{MessageSender} while the session is busy.
        """
        uid, size = self.messages[row]
        try:
            file = self.mailbox.openMessage(uid)
        except MessageExpunged:
            raise POP3Error("message %d was removed by another session" % (row + 1,))
        reader = MessageReader(file, bodyLines)
        markSeen = bodyLines is None and self.settings.markSeen
        if size <= CHUNK:
            try:
                body = reader.readAll()
            finally:
                reader.close()
            self.ok(text)
            self._out.append(body)
            if markSeen:
                self._markSeen(uid)
            return None
        self.ok(text)
        self._flush()
        d = MessageSender(reader, self.transport).start()

        def sent(complete):
            if complete and markSeen:
                self._markSeen(uid)

        return d.addCallback(sent)

    def _markSeen(self, uid):
        mailbox = self.mailbox
        if mailbox is None:
            return
        d = mailbox.setFlags([uid], ["\\Seen"], ADD, origin=self)
        d.addErrback(lambda f: log.failure("POP3 {client}: cannot set \\Seen", f,
                                           client=self.clientAddress))

    # -- UPDATE ----------------------------------------------------------------

    def _update(self):
        """
        QUIT in TRANSACTION: remove the messages marked deleted, then say
        goodbye and close.
        """
        self.state = UPDATE
        uids = [self.messages[row][0] for row in sorted(self.deleted)]
        if not uids:
            self._release()
            self.ok("%s POP3 server signing off" % (self.hostname,))
            self._close()
            return None
        self._updating = True
        d = self.mailbox.expunge(uids, origin=self)

        def done(gone):
            self._updating = False
            self._release()
            self._log("{user}: {n} messages deleted", user=self.account, n=len(gone))
            self.ok("%s POP3 server signing off (%d messages deleted)" % (
                self.hostname, len(gone)))
            self._close()

        def failed(failure):
            self._updating = False
            self._release()
            log.failure("POP3 {client}: deleting messages of {user} failed", failure,
                        client=self.clientAddress, user=self.account)
            self._out.append(POP3Error("some deleted messages not removed",
                                       "SYS/TEMP").line())
            self._close()

        return d.addCallbacks(done, failed)
