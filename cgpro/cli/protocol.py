# -*- test-case-name: tests.cli.test_protocol -*-
"""
The CLI/API protocol on TCP port 106 (the PWD module), as CommuniGate Pro's
administration clients speak it (cli.md).

One command per line, one response per command, strictly in order: lines
that arrive while a command is still running (pipelining) wait in a bounded
queue; past that the transport is paused, so a flood costs memory only up
to the bound.  Before login only session commands are accepted.  Every
command is looked up in the shared L{cgpro.core.commands.TABLE}; refusals
become C{501 <text>}, anything unexpected is logged with its traceback and
the client sees only C{501 internal error}.

Logins: C{USER}/C{PASS}, C{APOP} (the secure login the reference clients use
by default, against the greeting's C{<pid.time.random@domain>} token), and
C{AUTH PLAIN} / C{AUTH WEBUSER}.  Failed logins are throttled per client
address (L{cgpro.core.throttle.LoginThrottle}) and each failure is answered
only after a short delay.
"""

import base64
import hashlib
import hmac
import os
from collections import deque

from twisted.internet import defer, protocol
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin
from zope.interface import implementer

from cgpro.core import dataformat
from cgpro.core.commands import TABLE, Arguments
from cgpro.core.errors import CLIError
from cgpro.core.interfaces import ICommandContext
from cgpro.core.stats import ListenerFigures

log = Logger()

MAX_QUEUED_LINES = 256
PRE_AUTH = frozenset(["USER", "PASS", "APOP", "AUTH", "INLINE", "QUIT", "NOOP"])


@implementer(ICommandContext)
class CLISession:
    """
    What a command runs with: the logged-in account and the server.
    """

    def __init__(self, context):
        self.context = context
        self.server = context
        self.directory = context.directory
        self.user = None
        self.domain = None

    @property
    def rights(self):
        if self.user is None:
            return frozenset()
        return self.directory.rightsOf(self.user)


class CLIProtocol(protocol.Protocol, TimeoutMixin):
    """
    One CLI connection.

    @ivar inline: whether data responses use the one-line C{201} form.
    """

    delimiter = b"\r\n"

    def __init__(self, factory):
        self.factory = factory
        self.session = CLISession(factory.context)
        self.inline = False
        self._buffer = b""
        self._discarding = False
        self._queue = deque()
        self._busy = False
        self._paused = False
        self._looping = False
        self._pendingUser = None
        self._counted = False
        self.token = None
        self.peer = "?"

    # -- connection -------------------------------------------------------

    def connectionMade(self):
        self.factory.figures.opened()
        peer = self.transport.getPeer()
        self.peer = getattr(peer, "host", "?")
        self.setTimeout(self.factory.idleTimeout)
        context = self.factory.context
        main = context.directory.mainDomain or "localhost"
        self.token = "<%d.%d.%s@%s>" % (
            os.getpid(),
            int(self.factory.clock.seconds()),
            os.urandom(6).hex(),
            main,
        )
        self.sendLine(
            "200 CommuniGate Pro at %s PWD Server %s ready %s"
            % (main, context.version, self.token)
        )

    def connectionLost(self, reason=protocol.connectionDone):
        self.factory.figures.closed()
        self.setTimeout(None)
        self._queue.clear()

    def timeoutConnection(self):
        self.factory.figures.error("timeout")
        self.sendLine("500 idle timeout, closing the connection")
        self.transport.loseConnection()

    def sendLine(self, text):
        self.transport.write(text.encode("utf-8", "surrogateescape") + self.delimiter)

    # -- framing ----------------------------------------------------------

    def dataReceived(self, data):
        self.resetTimeout()
        self._buffer += data
        maxLength = self.factory.maxLineLength
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > maxLength:
                    self._buffer = b""
                    self._discarding = True
                break
            line, self._buffer = self._buffer[:end], self._buffer[end + 1 :]
            if self._discarding or len(line) > maxLength:
                self._discarding = False
                self._queue.append(None)
            else:
                self._queue.append(line.rstrip(b"\r"))
        if len(self._queue) > MAX_QUEUED_LINES and not self._paused:
            self._paused = True
            self.transport.pauseProducing()
        self._next()

    def _next(self):
        if self._looping:
            return
        self._looping = True
        try:
            while self._queue and not self._busy and self.transport is not None:
                line = self._queue.popleft()
                if line is None:
                    log.warn("CLI {peer}: line too long, refused", peer=self.peer)
                    self.factory.figures.error("protocol")
                    self.sendLine("501 line too long")
                    continue
                self._busy = True
                d = defer.maybeDeferred(self._dispatch, line.decode("utf-8", "surrogateescape"))
                d.addCallbacks(self._respond, self._failed)
                d.addBoth(self._done)
        finally:
            self._looping = False
        if self._paused and len(self._queue) < MAX_QUEUED_LINES // 2:
            self._paused = False
            self.transport.resumeProducing()

    def _done(self, _):
        self._busy = False
        self._counted = False
        self._next()

    def _respond(self, result):
        if result is _SENT or result is None:
            self._count(True)
            if result is None:
                self.sendLine("200 OK")
            return
        try:
            text = dataformat.dumps(result)
        except (TypeError, ValueError):
            log.failure("CLI {peer}: result cannot be written", peer=self.peer)
            self._count(False)
            self.factory.figures.error("internal")
            self.sendLine("501 internal error")
            return
        self._count(True)
        if self.inline:
            self.sendLine("201 " + text)
        else:
            self.sendLine("200 data follow")
            self.sendLine(text)

    def _failed(self, failure):
        self._count(False)
        if failure.check(CLIError):
            error = failure.value
            self.sendLine("%d %s" % (error.code, _oneLine(error.text)))
            return
        log.failure("CLI {peer}: command failed", failure, peer=self.peer)
        self.factory.figures.error("internal")
        self.sendLine("501 internal error")

    def _count(self, ok):
        """
        Count an administrative command by the outcome the client sees;
        session commands (logins, C{NOOP}, C{QUIT} ...) are not counted.
        """
        if self._counted:
            (self.factory.commandsOk if ok else self.factory.commandsFailed).inc()

    # -- dispatch -----------------------------------------------------------

    def _dispatch(self, line):
        stripped = line.strip()
        if not stripped:
            raise CLIError("empty command", 500)
        word, _, rest = stripped.partition(" ")
        name = word.upper()
        if name in PRE_AUTH:
            return getattr(self, "cmd_" + name)(rest.strip())
        if self.session.user is None:
            if TABLE.lookup(name) is None:
                raise CLIError("unknown command", 500)
            raise CLIError("please log in first", 500)
        # From here on the command is counted, by the outcome the client
        # sees (an unknown one as failed), in _respond or _failed.
        self._counted = True
        command = TABLE.lookup(name)
        if command is None:
            raise CLIError("unknown command", 500)
        self.factory.commandsRun += 1
        return command.handler(self.session, Arguments(rest))

    # -- session commands -------------------------------------------------

    def cmd_QUIT(self, rest):
        self.sendLine("200 CommuniGate Pro PWD connection closed")
        self.transport.loseConnection()
        return _SENT

    def cmd_NOOP(self, rest):
        return None

    def cmd_INLINE(self, rest):
        self.inline = True
        return None

    def cmd_USER(self, rest):
        name = _unquote(rest)
        if not name:
            raise CLIError("syntax error: USER name", 500)
        self._pendingUser = name
        self.sendLine("300 please send the PASS")
        return _SENT

    def cmd_PASS(self, rest):
        if self._pendingUser is None:
            raise CLIError("send USER first", 500)
        user, self._pendingUser = self._pendingUser, None
        return self._plainLogin(user, _unquote(rest))

    def cmd_AUTH(self, rest):
        parts = rest.split()
        if not parts:
            raise CLIError("syntax error: AUTH mechanism ...", 500)
        mechanism = parts[0].upper()
        if mechanism == "WEBUSER" and len(parts) == 3:
            return self._plainLogin(_unquote(parts[1]), _unquote(parts[2]))
        if mechanism == "PLAIN" and len(parts) == 2:
            try:
                _, user, password = (
                    base64.b64decode(parts[1], validate=True).decode("utf-8").split("\0")
                )
            except (ValueError, UnicodeDecodeError):
                raise CLIError("malformed AUTH PLAIN data", 500)
            return self._plainLogin(user, password)
        raise CLIError("unsupported authentication mechanism", 500)

    def cmd_APOP(self, rest):
        parts = rest.split()
        if len(parts) != 2:
            raise CLIError("syntax error: APOP name digest", 500)
        user, digest = _unquote(parts[0]), parts[1].lower()
        if self._throttled():
            return self._refuse(user, "too many failed logins")
        directory = self.session.directory
        full = directory.resolveLogin(user)
        password = directory.getPassword(full) if full else None
        if password is None:
            return self._refuse(user, "APOP not possible (unknown user or one-way password)")
        expected = hashlib.md5((self.token + password).encode("utf-8")).hexdigest()
        if not hmac.compare_digest(expected, digest):
            return self._refuse(user, "wrong APOP digest")
        return self._loggedIn(full)

    # -- login helpers ------------------------------------------------------

    def _throttled(self):
        return self.factory.throttle.blocked(self.peer)

    def _plainLogin(self, user, password):
        if self._throttled():
            return self._refuse(user, "too many failed logins")
        d = self.session.directory.checkPassword(user, password)

        def checked(full):
            if full is None:
                return self._refuse(user, "wrong password or unknown user")
            return self._loggedIn(full)

        return d.addCallback(checked)

    def _loggedIn(self, full):
        modes = self.session.directory.effectiveAccountSettings(full).get("AccessModes", "All")
        if modes != "All" and not (isinstance(modes, list) and "PWD" in modes):
            return self._refuse(full, "PWD access is not enabled for this account")
        self.factory.throttle.succeeded(self.peer)
        self.session.user = full
        self.session.domain = full.partition("@")[2]
        log.info("CLI {peer}: {user} logged in", peer=self.peer, user=full)
        self.sendLine("200 login OK")
        return _SENT

    def _refuse(self, user, reason):
        """
        Record a failed login and answer after the failure delay, so that
        guessing is slow even below the throttle limit.
        """
        self.factory.throttle.failed(self.peer)
        self.factory.loginFailures += 1
        self.factory.figures.authFailures.inc()
        log.warn("CLI {peer}: login failed for {user}: {reason}", peer=self.peer, user=user,
                 reason=reason)
        d = defer.Deferred()
        self.factory.clock.callLater(self.factory.failureDelay, d.errback,
                                     CLIError("incorrect login or password", 500))
        return d


_SENT = object()


def _oneLine(text):
    return " ".join(str(text).split())


def _unquote(text):
    """
    Login arguments may be atoms or quoted strings.
    """
    text = text.strip()
    if text.startswith('"'):
        try:
            value = dataformat.loads(text, multiline=False)
        except dataformat.DataFormatError:
            return text
        return value if isinstance(value, str) else text
    return text


class CLIFactory(protocol.Factory):
    """
    @ivar throttle: the L{LoginThrottle} shared by the listener's sessions.
    @ivar commandsRun: commands executed (for statistics).
    @ivar figures: the L{ListenerFigures} of module C{cli}.
    @ivar commandsOk: the C{result="ok"} child of
        C{cgpro_cli_commands_total}; C{commandsFailed} the C{"error"} one.
    """

    def __init__(self, context, throttle, clock, idleTimeout=300, maxLineLength=16 << 20,
                 failureDelay=0.5):
        self.context = context
        self.throttle = throttle
        self.clock = clock
        self.idleTimeout = idleTimeout
        self.maxLineLength = maxLineLength
        self.failureDelay = failureDelay
        self.commandsRun = 0
        self.loginFailures = 0
        stats = context.stats
        self.figures = ListenerFigures(stats, "cli")
        commands = stats.counter("cgpro_cli_commands_total")
        self.commandsOk = commands.labels("ok")
        self.commandsFailed = commands.labels("error")

    def buildProtocol(self, addr):
        p = CLIProtocol(self)
        p.callLater = self.clock.callLater
        return p
