# -*- test-case-name: tests.mail.smtp.test_factory -*-
"""
Builds the receiving listeners' factories from port-table rows and the
server context: the C{build(spec, context)} entry points named in
L{cgpro.core.ports.PROTOCOLS}::

    "smtp": "cgpro.mail.smtp.factory.buildSMTP",          # 25, and 465 (tls implicit)
    "submission": "cgpro.mail.smtp.factory.buildSubmission",  # 587: AUTH before MAIL
    "lmtp": "cgpro.mail.smtp.factory.buildLMTP",          # 24

A row with C{tls = implicit} is wrapped in TLS by the listener manager;
the factory only needs to know (C{spec.tls}) that its sessions start
secure, so it offers AUTH and not STARTTLS.  A C{tls = starttls} row offers
STARTTLS with the server certificate (C{context.tls.options}).

Every SMTP listener of a server shares one failed-login throttle (the
CLI's too, C{context.loginThrottle}) and one set of per-address rate
counters, so a client cannot multiply its allowance by switching ports.
"""

from twisted.internet import protocol

from cgpro.core import dataformat
from cgpro.core.stats import ListenerFigures
from cgpro.core.throttle import LoginThrottle
from cgpro.mail.smtp.lmtp import LMTPServer
from cgpro.mail.smtp.policy import Policy, SlidingWindow
from cgpro.mail.smtp.server import SMTPServer
from cgpro.mail.smtp.settings import loadSettings


class SMTPFactory(protocol.Factory):
    """
    Makes the sessions of one listener.

    @ivar implicitTLS: sessions start under TLS (the smtps row).
    @ivar tlsOptions: the STARTTLS context factory, or C{None} when
        STARTTLS is not offered.
    @ivar requireAuth: MAIL needs AUTH first (submission).
    @ivar authEnabled: whether AUTH exists at all (not in LMTP).
    @ivar module: the module whose settings apply (C{SMTP} or C{LMTP}).
    @ivar sessions: sessions started; C{accepted}, C{rejected},
        C{authFailures}: counters for statistics.
    @ivar figures: the L{ListenerFigures} the sessions report to
        (C{context.stats}, labelled with the port table's module name).
    @ivar acceptedFigure: this listener's child of
        C{cgpro_mail_accepted_total}.
    """

    protocol = SMTPServer

    def __init__(self, context, spec=None, requireAuth=False, module="SMTP", serverClass=None,
                 clock=None, resolver=None, throttle=None, rates=None):
        """
        @param spec: the L{cgpro.core.ports.ListenerSpec}, or C{None} (no
            TLS).
        @param clock: the L{IReactorTime} for timeouts and rates (default
            C{context.reactor}).
        @param resolver: a DNS resolver for the sender checks (default: the
            system resolver, made on first use).
        @param throttle: the L{LoginThrottle} of failed AUTH.
        @param rates: C{(connections, messages)} L{SlidingWindow}s.
        """
        self.context = context
        self.clock = clock if clock is not None else context.reactor
        self.module = module
        if serverClass is not None:
            self.protocol = serverClass
        tlsMode = spec.tls if spec is not None else "no"
        self.implicitTLS = tlsMode == "implicit"
        tls = getattr(context, "tls", None)
        self.tlsOptions = tls.options if tls is not None and tlsMode == "starttls" else None
        self.requireAuth = requireAuth
        self.authEnabled = module != "LMTP"
        self.throttle = throttle if throttle is not None else LoginThrottle(self.clock)
        self.policy = Policy(context, self.clock, resolver, rates)
        self.sessions = 0
        self.accepted = 0
        self.rejected = 0
        self.authFailures = 0
        label = getattr(spec, "module", None) or module.lower()
        self.figures = ListenerFigures(context.stats, label)
        self.acceptedFigure = context.stats.counter("cgpro_mail_accepted_total").labels(label)

    def settings(self):
        """
        @return: the module's current L{SMTPSettings} (read per session,
            so CLI changes apply to the next connection).
        """
        return loadSettings(self.context.directory, self.module)

    def hostname(self):
        """
        @return: the name the server greets with: the Main Domain.
        """
        return self.context.directory.mainDomain or "localhost"

    def buildProtocol(self, addr):
        return self.protocol(self)


def _shared(context):
    """
    The state every SMTP listener of one server shares, made on first use
    and kept on the context (as the CLI keeps its login throttle there).
    """
    shared = getattr(context, "smtpShared", None)
    if shared is None:
        throttle = getattr(context, "loginThrottle", None)
        if throttle is None:
            server = context.directory.effectiveServerSettings()
            throttle = context.loginThrottle = LoginThrottle(
                context.reactor,
                limit=int(server.get("LoginFailureLimit", 10)),
                period=dataformat.parseDuration(server.get("LoginFailurePeriod", "1m")) or 60,
            )
        rates = (SlidingWindow(context.reactor), SlidingWindow(context.reactor))
        shared = context.smtpShared = {"throttle": throttle, "rates": rates}
        # The queue keeps its own figures; the first listener that feeds
        # it shows them to the server's catalog (once: reportTo is
        # idempotent, so the service tree may do it too).
        queue = getattr(context, "queue", None)
        if queue is not None and hasattr(queue, "reportTo"):
            queue.reportTo(context.stats)
    return shared


def _build(spec, context, **kw):
    shared = _shared(context)
    return SMTPFactory(context, spec, throttle=shared["throttle"], rates=shared["rates"],
                       resolver=getattr(context, "resolver", None), **kw)


def buildSMTP(spec, context):
    """
    The MX listener (port 25) and SMTPS (465, C{tls = implicit}).

    @param spec: the L{cgpro.core.ports.ListenerSpec} of the row.
    @param context: the L{cgpro.core.interfaces.IServerContext}.
    @return: an L{SMTPFactory}.
    """
    return _build(spec, context)


def buildSubmission(spec, context):
    """
    The submission listener (587): like SMTP, but MAIL needs AUTH.
    """
    return _build(spec, context, requireAuth=True)


def buildLMTP(spec, context):
    """
    The LMTP listener (24): LHLO, per-recipient replies, no AUTH, module
    C{LMTP} settings.
    """
    return _build(spec, context, module="LMTP", serverClass=LMTPServer)
