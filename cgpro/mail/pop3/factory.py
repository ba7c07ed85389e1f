# -*- test-case-name: tests.mail.pop3.test_server -*-
"""
Builds the POP3 listeners' factory from a port-table row and the server
context: the C{build(spec, context)} entry point named in
L{cgpro.core.ports.PROTOCOLS} (C{"pop": "cgpro.mail.pop3.factory.build"}).

The rows C{pop3} (110, C{tls = starttls}: STLS with the server
certificate, C{context.tls.options}) and C{pop3s} (995, C{tls = implicit}:
the listener manager wraps the factory in TLS; the sessions only need to
know they start secure) share this builder.  Every password-taking
listener of a server shares one failed-login throttle
(C{context.loginThrottle}, made by whichever module is built first), so a
client cannot multiply its allowance by switching protocols.
"""

from twisted.internet import protocol

from cgpro.core import dataformat
from cgpro.core.stats import ListenerFigures
from cgpro.core.throttle import LoginThrottle
from cgpro.mail.pop3.server import POP3Server
from cgpro.mail.pop3.settings import loadSettings


class POP3Factory(protocol.Factory):
    """
    Makes the sessions of one POP3 listener.

    @ivar implicitTLS: sessions start under TLS (the pop3s row).
    @ivar tlsOptions: the STLS context factory, or C{None} when STLS is not
        offered.
    @ivar throttle: the L{LoginThrottle} of failed logins.
    @ivar sessions: sessions started; C{logins}, C{loginFailures}:
        counters for statistics.
    @ivar figures: the L{ListenerFigures} the sessions report to
        (C{context.stats}, module C{pop}).
    """

    protocol = POP3Server

    def __init__(self, context, spec=None, clock=None, throttle=None):
        """
        @param spec: the L{cgpro.core.ports.ListenerSpec}, or C{None} (no
            TLS).
        @param clock: the L{IReactorTime} for timeouts and delays (default
            C{context.reactor}).
        """
        self.context = context
        self.clock = clock if clock is not None else context.reactor
        tlsMode = getattr(spec, "tls", "no") if spec is not None else "no"
        self.implicitTLS = tlsMode == "implicit"
        tls = getattr(context, "tls", None)
        self.tlsOptions = tls.options if tls is not None and tlsMode == "starttls" else None
        self.throttle = throttle if throttle is not None else LoginThrottle(self.clock)
        self.sessions = 0
        self.logins = 0
        self.loginFailures = 0
        self.figures = ListenerFigures(context.stats, getattr(spec, "module", None) or "pop")

    def settings(self):
        """
        @return: the module's current L{cgpro.mail.pop3.settings.POPSettings}
            (read per session, so CLI changes apply to the next connection).
        """
        return loadSettings(self.context.directory)

    def hostname(self):
        """
        @return: the name the server greets with: the Main Domain.
        """
        return getattr(self.context.directory, "mainDomain", None) or "localhost"

    def buildProtocol(self, addr):
        return self.protocol(self)


def sharedThrottle(context):
    """
    @return: the server's failed-login throttle, made on first use from the
        C{LoginFailureLimit}/C{LoginFailurePeriod} server settings and kept on
        the context (as the CLI and SMTP modules do).
    """
    throttle = getattr(context, "loginThrottle", None)
    if throttle is None:
        server = context.directory.effectiveServerSettings()
        throttle = context.loginThrottle = LoginThrottle(
            context.reactor,
            limit=int(server.get("LoginFailureLimit", 10)),
            period=dataformat.parseDuration(server.get("LoginFailurePeriod", "1m")) or 60,
        )
    return throttle


def build(spec, context):
    """
    The pop3 (110, STLS) and pop3s (995, implicit TLS) listeners.

    @param spec: the L{cgpro.core.ports.ListenerSpec} of the row.
    @param context: the L{cgpro.core.interfaces.IServerContext}.
    @return: a L{POP3Factory}.
    """
    return POP3Factory(context, spec, throttle=sharedThrottle(context))
