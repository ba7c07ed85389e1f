# -*- test-case-name: tests.mail.smtp.test_policy -*-
"""
Who may send what: the receiving checks of the SMTP server, apart from the
protocol so each can be tested alone.

  - trust: a client address in Client IPs or LAN IPs, or an authenticated
    user, may relay (L{Policy.isClient}); everyone else may only send to
    local domains, unless the Router grants relaying for the address
    (C{Relay:} records, Forwarders), which L{Policy.checkRecipient} reads
    off the L{cgpro.core.router.Route};
  - per-address rates: connections and messages per client address and
    minute (L{SlidingWindow}), untrusted clients only;
  - sender checks on MAIL FROM, each a module setting, all DNS with a
    deadline: DNS blocklists, the return-path domain, SPF (which also
    gives the C{Received-SPF} header);
  - the domain setting C{ForceSMTPAUTH}: a local sender address needs AUTH.

Every refusal is an L{SMTPError} carrying its reply; a DNS failure where a
check would reject is a 451, so the sender retries rather than bounces.
"""

import ipaddress
from collections import OrderedDict, deque

from twisted.internet import defer
from twisted.logger import Logger

from cgpro.core.iplists import isClient
from cgpro.mail.smtp import spf
from cgpro.mail.smtp.dnsquery import DNSTemporaryError, defaultResolver, lookup, reverseName
from cgpro.mail.smtp.wire import SMTPError

log = Logger()

#: Router ERROR texts -> the RCPT reply.
ROUTE_ERRORS = {
    "unknown user": (550, "5.1.1", "unknown user account"),
    "unknown telnum": (550, "5.1.1", "unknown user account"),
    "relaying prohibited": (550, "5.7.1", "relaying prohibited"),
    "invalid address": (553, "5.1.3", "invalid address"),
    "routing loop": (554, "5.4.6", "routing loop"),
}


class SlidingWindow:
    """
    Events per key within the last C{period} seconds, e.g. connections per
    client address and minute.

    Memory is bounded: at most C{maxKeys} keys are kept (the least recently
    used go first), and each key holds at most C{limit} times.
    """

    def __init__(self, clock, period=60.0, maxKeys=100000):
        self.clock = clock
        self.period = period
        self.maxKeys = maxKeys
        self._events = OrderedDict()

    def hit(self, key, limit):
        """
        Count one event unless the key already had C{limit} in the window.

        @param limit: events allowed per period; 0 means no limit (nothing
            is recorded).
        @return: C{True} if the event is allowed (and counted).
        """
        if not limit:
            return True
        now = self.clock.seconds()
        times = self._events.get(key)
        if times is None:
            times = self._events[key] = deque()
        else:
            self._events.move_to_end(key)
        horizon = now - self.period
        while times and times[0] <= horizon:
            times.popleft()
        if len(times) >= limit:
            return False
        times.append(now)
        while len(self._events) > self.maxKeys:
            self._events.popitem(last=False)
        return True


class SenderVerdict:
    """
    The outcome of the MAIL FROM checks.

    @ivar error: C{None}, or the L{SMTPError} MAIL is refused with.
    @ivar headers: header bytes to prepend to the message (Received-SPF).
    @ivar reason: why, for the log.
    """

    def __init__(self, error=None, headers=b"", reason=None):
        self.error = error
        self.headers = headers
        self.reason = reason


#: Nothing to check, nothing to add.
ACCEPT = SenderVerdict()


class Policy:
    """
    The checks, over the server's directory, Router and a resolver.

    @ivar rates: the L{SlidingWindow} of connections and messages, shared
        by every SMTP listener of the server.
    """

    def __init__(self, context, clock, resolver=None, rates=None):
        self.context = context
        self.directory = context.directory
        self.router = context.router
        self.clock = clock
        self._resolver = resolver
        self.connections = rates[0] if rates else SlidingWindow(clock)
        self.messages = rates[1] if rates else SlidingWindow(clock)

    @property
    def resolver(self):
        if self._resolver is None:
            self._resolver = defaultResolver()
        return self._resolver

    # -- trust and rates ---------------------------------------------------

    def isClient(self, ip):
        """
        @return: whether C{ip} is in the Client IPs or LAN IPs list.
        """
        return isClient(self.directory, ip)

    def connectionAllowed(self, ip, settings):
        """
        Count a connection of an untrusted client.

        @raise SMTPError: 421 4.7.0 past the per-minute limit.
        """
        if not self.connections.hit(ip, settings.maxConnectionsPerMinute):
            raise SMTPError(421, "4.7.0", "too many connections from your address, try later")

    def messageAllowed(self, ip, settings):
        """
        Count a message (a MAIL command) of an untrusted client.

        @raise SMTPError: 421 4.7.0 past the per-minute limit.
        """
        if not self.messages.hit(ip, settings.maxMessagesPerMinute):
            raise SMTPError(421, "4.7.0", "too many messages from your address, try later")

    # -- recipients ------------------------------------------------------------

    def checkRecipient(self, address, trusted):
        """
        Route one recipient and decide about it.

        @param trusted: whether the sender may relay anywhere.
        @return: the L{cgpro.core.router.Route}.
        @raise SMTPError: for an unknown user (550 5.1.1), relaying denied
            (550 5.7.1), and the other Router errors.
        """
        route = self.router.route(address, "MAIL", trusted)
        if route.module == "ERROR":
            code, enhanced, text = ROUTE_ERRORS.get(route.address, (550, "5.1.1", None))
            raise SMTPError(code, enhanced, text or _oneLine(route.address) or "address rejected")
        return route

    # -- the sender -------------------------------------------------------------

    def checkForcedAuth(self, sender, authenticated):
        """
        CommuniGate's domain setting C{ForceSMTPAUTH}: mail from an address
        in such a local domain is accepted only from authenticated users.

        @raise SMTPError: 530 5.7.0.
        """
        if authenticated or "@" not in sender:
            return
        domain = self.directory.domainFor(sender.rpartition("@")[2])
        if domain is None:
            return
        settings = self.directory.effectiveDomainSettings(domain) or {}
        if str(settings.get("ForceSMTPAUTH", "NO")).upper() == "YES":
            raise SMTPError(530, "5.7.0", "authentication required to send as %s" % (domain,))

    def checkSender(self, ip, helo, sender, settings, receiver):
        """
        The DNS checks of MAIL FROM for an untrusted client.

        @param receiver: our host name (for the Received-SPF comment).
        @return: L{ACCEPT} at once when every check is off, else a
            L{Deferred} firing with a L{SenderVerdict}.
        """
        checks = []
        if settings.dnsbl:
            checks.append(self._dnsbl(ip, settings))
        if settings.checkReturnPath and sender:
            checks.append(self._returnPath(sender, settings))
        if settings.spfCheck != "NO":
            checks.append(self._spf(ip, helo, sender, settings, receiver))
        if not checks:
            return ACCEPT
        d = defer.gatherResults(checks, consumeErrors=True)

        def combine(verdicts):
            headers = b"".join(v.headers for v in verdicts)
            # The first refusal in check order; a permanent one wins over a
            # temporary one (a listed client is listed whatever DNS says).
            errors = [v for v in verdicts if v.error is not None]
            errors.sort(key=lambda v: v.error.code < 500)
            if errors:
                return SenderVerdict(errors[0].error, headers, errors[0].reason)
            return SenderVerdict(None, headers)

        def unwrap(failure):
            failure.trap(defer.FirstError)
            return failure.value.subFailure

        return d.addCallbacks(combine, unwrap)

    def _dns(self, kind, name, settings):
        return lookup(self.resolver, kind, name, settings.dnsTimeout, self.clock)

    @defer.inlineCallbacks
    def _dnsbl(self, ip, settings):
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return ACCEPT
        if address.is_loopback:
            return ACCEPT
        zones = list(settings.dnsbl)
        results = yield defer.DeferredList(
            [self._dns("A", reverseName(ip, zone), settings) for zone in zones],
            consumeErrors=True)
        failed = None
        for zone, (ok, answers) in zip(zones, results):
            if not ok:
                failed = failed or (zone, answers.getErrorMessage())
                continue
            if any(_listing(a) for a in answers):
                return SenderVerdict(
                    SMTPError(554, "5.7.1", "client address %s is listed in %s" % (ip, zone)),
                    reason="listed in DNSBL %s" % (zone,))
        if failed is not None:
            return SenderVerdict(
                SMTPError(451, "4.4.3", "DNS blocklist lookup failed, try again later"),
                reason="DNSBL %s: %s" % failed)
        return ACCEPT

    @defer.inlineCallbacks
    def _returnPath(self, sender, settings):
        domain = sender.rpartition("@")[2]
        if domain.startswith("[") or self.directory.domainFor(domain) is not None:
            return ACCEPT
        try:
            exchanges = yield self._dns("MX", domain, settings)
            if exchanges == [(0, "")]:
                return SenderVerdict(
                    SMTPError(550, "5.7.27",
                              "sender domain %s accepts no mail (null MX)" % (domain,)),
                    reason="null MX for %s" % (domain,))
            if not exchanges:
                addresses = yield self._dns("A", domain, settings)
                if not addresses:
                    addresses = yield self._dns("AAAA", domain, settings)
                if not addresses:
                    return SenderVerdict(
                        SMTPError(553, "5.1.8", "sender domain %s does not exist" % (domain,)),
                        reason="no MX or address records for %s" % (domain,))
        except DNSTemporaryError as e:
            return SenderVerdict(
                SMTPError(451, "4.1.8", "cannot verify the sender domain now, try again later"),
                reason=str(e))
        return ACCEPT

    @defer.inlineCallbacks
    def _spf(self, ip, helo, sender, settings, receiver):
        checker = spf.SPFChecker(self.resolver, self.clock, settings.dnsTimeout, receiver)
        result = yield checker.check(ip, sender, helo or "unknown")
        header = spf.receivedSPF(result, ip, sender, helo or "unknown", receiver)
        if settings.spfCheck == "REJECT":
            if result.result == spf.FAIL:
                return SenderVerdict(
                    SMTPError(550, "5.7.23",
                              "SPF check failed: %s does not permit %s to send for %s"
                              % (result.domain, ip, sender or helo)),
                    header, "SPF fail (%s)" % (result.reason,))
            if result.result == spf.TEMPERROR:
                return SenderVerdict(
                    SMTPError(451, "4.7.24", "SPF check failed temporarily, try again later"),
                    header, "SPF temperror (%s)" % (result.reason,))
        return SenderVerdict(None, header)


def _listing(answer):
    """
    A blocklist answer in 127.0.0.0/8 lists the client, except the
    127.255.255.0/24 codes some lists use to report query errors.
    """
    try:
        address = ipaddress.IPv4Address(answer)
    except ValueError:
        return False
    return address in _LOOPBACK and address not in _ERROR_CODES


_LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
_ERROR_CODES = ipaddress.IPv4Network("127.255.255.0/24")


def _oneLine(text):
    return " ".join(str(text).split())
