# -*- test-case-name: tests.mail.imap.test_factory -*-
"""
Builds the IMAP listeners' factories from port-table rows:
C{"imap": "cgpro.mail.imap.factory.build"} in
L{cgpro.core.ports.PROTOCOLS} serves both rows, C{imap} (143,
C{tls = starttls}: STARTTLS offered with C{context.tls.options}) and
C{imaps} (993, C{tls = implicit}: already wrapped by the listener manager,
so sessions start secure).

Settings are the IMAP module's (C{UPDATEMODULE IMAP {...}}), read for each
new session so changes apply to the next connection:

  - C{AllowCleartextAuth} (C{NO}): allow LOGIN/AUTHENTICATE without TLS;
    otherwise LOGINDISABLED is advertised until STARTTLS.
  - C{MaxLiteralSize} (C{50M}): the largest APPEND literal.
  - C{MaxCommandLiteral} (C{64K}): the largest literal of other commands.
  - C{MaxLineLength} (C{64K}): the longest command line without literals.
  - C{IdleTimeout} (C{30m}): autologout of silent sessions (RFC 3501
    asks for at least 30 minutes).
  - C{LoginTimeout} (C{3m}): how long a silent session may stay
    unauthenticated, so idle connections cannot pile up before login.

Failed logins share the server's L{LoginThrottle} (C{context.loginThrottle},
made here on first use as the other modules do).
"""

from twisted.internet import protocol

from cgpro.core import dataformat
from cgpro.core.stats import ListenerFigures
from cgpro.core.throttle import LoginThrottle

DEFAULTS = {
    "AllowCleartextAuth": "NO",
    "MaxLiteralSize": "50M",
    "MaxCommandLiteral": "64K",
    "MaxLineLength": "64K",
    "IdleTimeout": "30m",
    "LoginTimeout": "3m",
}


class IMAPSettings:
    """
    The IMAP module settings one session runs with.
    """

    def __init__(self, values):
        merged = dict(DEFAULTS)
        merged.update(values or {})
        self.allowCleartext = str(merged["AllowCleartextAuth"]).strip().upper() in ("YES", "1",
                                                                                     "TRUE")
        self.maxLiteral = _size(merged["MaxLiteralSize"], DEFAULTS["MaxLiteralSize"])
        self.maxSmallLiteral = _size(merged["MaxCommandLiteral"], DEFAULTS["MaxCommandLiteral"])
        self.maxLine = max(1024, _size(merged["MaxLineLength"], DEFAULTS["MaxLineLength"]))
        try:
            self.idleTimeout = dataformat.parseDuration(merged["IdleTimeout"])
        except ValueError:
            self.idleTimeout = 1800
        try:
            self.loginTimeout = dataformat.parseDuration(merged["LoginTimeout"])
        except ValueError:
            self.loginTimeout = 180


def _size(value, default):
    try:
        size = dataformat.parseSize(value)
    except ValueError:
        size = dataformat.parseSize(default)
    return size if size is not None else 1 << 40


def loadSettings(directory):
    try:
        values = directory.getServerDict("Modules").get("IMAP") or {}
    except Exception:
        values = {}
    return IMAPSettings(values if isinstance(values, dict) else {})


class IMAPFactory(protocol.Factory):
    """
    Makes the sessions of one listener.

    @ivar implicitTLS: sessions start under TLS (the imaps row).
    @ivar tlsOptions: the STARTTLS context factory, or C{None}.
    @ivar throttle: the shared L{LoginThrottle}.
    @ivar sessions: sessions started; C{authFailures}: failed logins.
    @ivar figures: the L{ListenerFigures} the sessions report to
        (C{context.stats}, module C{imap}).
    """

    def __init__(self, context, spec=None, clock=None, throttle=None):
        from cgpro.mail.imap.server import IMAPServer

        self.protocol = IMAPServer
        self.context = context
        self.clock = clock if clock is not None else context.reactor
        tlsMode = spec.tls if spec is not None else "no"
        self.implicitTLS = tlsMode == "implicit"
        tls = getattr(context, "tls", None)
        self.tlsOptions = tls.options if tls is not None and tlsMode == "starttls" else None
        self.throttle = throttle if throttle is not None else _throttle(context)
        self.sessions = 0
        self.figures = ListenerFigures(context.stats, getattr(spec, "module", None) or "imap")
        self._authFailures = 0

    @property
    def authFailures(self):
        """
        Failed logins.  The login commands only add to this number; the
        setter passes each addition on to C{cgpro_auth_failures_total}, so
        the commands need not know the catalog.
        """
        return self._authFailures

    @authFailures.setter
    def authFailures(self, value):
        if value > self._authFailures:
            self.figures.authFailures.inc(value - self._authFailures)
        self._authFailures = value

    def settings(self):
        return loadSettings(self.context.directory)

    def hostname(self):
        return getattr(self.context.directory, "mainDomain", None) or "localhost"

    def buildProtocol(self, addr):
        return self.protocol(self)


def _throttle(context):
    throttle = getattr(context, "loginThrottle", None)
    if throttle is None:
        server = context.directory.effectiveServerSettings()
        try:
            period = dataformat.parseDuration(server.get("LoginFailurePeriod", "1m")) or 60
        except ValueError:
            period = 60
        throttle = context.loginThrottle = LoginThrottle(
            context.reactor, limit=int(server.get("LoginFailureLimit", 10)), period=period)
    return throttle


def build(spec, context):
    """
    The imap (143) and imaps (993) listeners.

    @param spec: the L{cgpro.core.ports.ListenerSpec} of the row.
    @param context: the L{cgpro.core.interfaces.IServerContext}.
    @return: an L{IMAPFactory}.
    """
    return IMAPFactory(context, spec)
