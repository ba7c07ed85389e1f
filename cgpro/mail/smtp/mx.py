# -*- test-case-name: tests.mail.smtp.test_relay -*-
"""
Where mail for a destination goes: MX records, then their addresses
(RFC 5321 section 5.1).

L{MXResolver.resolve} turns a destination (a domain, an address literal
C{[192.0.2.1]} / C{[IPv6:2001:db8::1]}, or an explicit C{host:port}) into
the ordered list of L{Candidate} addresses the relay tries one after the
other.  The outcome of a failed lookup matters as much as the answer: a
domain that does not exist (NXDOMAIN), that says it takes no mail (the
null MX of RFC 7505) or whose MX hosts have no address is a I{permanent}
failure, so the queue bounces at once; a timeout or a server failure is
I{temporary}, so the queue retries.  Both are raised as L{DNSFailure},
which carries the SMTP code and enhanced status text that go into the
recipients' results and the DSN.

Answers are cached for their TTL (bounded in time and in entries) on top
of whatever caching the resolver does itself, because a busy queue looks
up the same few big domains over and over.  Temporary failures are never
cached.

Everything runs on an injected resolver (anything with C{lookupMailExchange},
C{lookupAddress} and C{lookupIPV6Address}, as L{twisted.names} resolvers
have) and clock, so tests need no network.

Not done: dropping MX hosts that are this server itself (RFC 5321 5.1
loop detection); the relay's loop protection is the C{Received:} count of
the receiving side.
"""

import collections
import ipaddress
import random as _random
import socket

from twisted.internet import defer
from twisted.names import dns
from twisted.names.error import DNSNameError

__all__ = [
    "Candidate",
    "DNSFailure",
    "MXResolver",
    "parseDestination",
]

#: The SMTP port.
DEFAULT_PORT = 25


class DNSFailure(Exception):
    """
    A destination could not be resolved.

    @ivar code: the SMTP reply code for the recipients' results: 5xx when
        the failure is permanent, 4xx when a later attempt may succeed.
    @ivar text: the reply text, starting with an enhanced status code.
    """

    def __init__(self, code, text):
        Exception.__init__(self, code, text)
        self.code = code
        self.text = text

    @property
    def permanent(self):
        """
        Whether retrying cannot help.
        """
        return self.code >= 500

    def __str__(self):
        return "%d %s" % (self.code, self.text)


class _NameNotFound(DNSFailure):
    """
    NXDOMAIN: the name does not exist.
    """


class Candidate(tuple):
    """
    One address to try: a C{(address, port)} tuple (so it compares equal to
    a plain tuple) that also remembers the host name it came from, which is
    what a DSN names as the remote MTA.

    @ivar host: the MX host (or the destination) name, or the address for
        an address literal.
    """

    def __new__(cls, address, port, host=None):
        self = tuple.__new__(cls, (address, port))
        self.host = host or address
        return self

    @property
    def address(self):
        return self[0]

    @property
    def port(self):
        return self[1]

    def __repr__(self):
        return "Candidate(%r, %r, host=%r)" % (self[0], self[1], self.host)


def _ipLiteral(text):
    """
    @return: the canonical text of an IPv4 or IPv6 address, or C{None} if
        C{text} is not one.
    """
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def parseDestination(destination, defaultPort=DEFAULT_PORT):
    """
    Split a relay destination.

    Forms: C{domain} (MX lookup), C{host:port} and C{[host]} (address lookup
    only: an explicit host is not a mail domain), C{[192.0.2.1]},
    C{[IPv6:2001:db8::1]}, a bare address, each optionally followed by
    C{:port} (after the brackets for literals).

    @return: C{(name, port, address, useMX)}; C{address} is the canonical
        address of a literal (no lookup at all) or C{None}.
    @raise ValueError: if the destination is malformed.
    """
    text = destination.strip()
    if not text:
        raise ValueError("empty destination")
    port = defaultPort
    useMX = True
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise ValueError("unbalanced [ in %r" % (destination,))
        rest = text[close + 1:]
        inner = text[1:close]
        if rest:
            if not rest.startswith(":"):
                raise ValueError("junk after ] in %r" % (destination,))
            port = _port(rest[1:], destination)
        if inner[:5].lower() == "ipv6:":
            address = _ipLiteral(inner[5:])
            if address is None or ":" not in address:
                raise ValueError("bad IPv6 literal %r" % (destination,))
            return address, port, address, False
        address = _ipLiteral(inner)
        if address is not None:
            return address, port, address, False
        text = inner
        useMX = False
    else:
        address = _ipLiteral(text)
        if address is not None:
            return address, port, address, False
        if text.count(":") == 1:
            text, portText = text.split(":")
            port = _port(portText, destination)
            address = _ipLiteral(text)
            if address is not None:
                return address, port, address, False
            useMX = False
    name = text.rstrip(".").lower()
    if not name or any(not label for label in name.split(".")) or " " in name:
        raise ValueError("bad destination %r" % (destination,))
    return name, port, None, useMX


def _port(text, destination):
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError("bad port in %r" % (destination,))
    return int(text)


class MXResolver:
    """
    Turn destinations into ordered candidate addresses.

    @ivar resolver: the DNS resolver (an L{twisted.names} C{IResolver});
        by default C{twisted.names.client.createResolver()} (which reads
        C{/etc/resolv.conf} and C{/etc/hosts}), made on first use so that
        merely building a relay schedules nothing on the reactor.
    @ivar clock: for cache expiry and lookup timeouts.
    @ivar timeout: seconds one lookup may take before it counts as a
        temporary failure.
    @ivar maxTTL: longest time an answer is cached, whatever its TTL.
    @ivar negativeTTL: how long "no such domain" and "no records" are
        cached when the answer carries no SOA to say.
    @ivar maxEntries: bound of the cache (least recently used go first).
    @ivar maxHosts: MX hosts looked up at most (the best ones).
    @ivar preferIPv6: try a host's IPv6 addresses before its IPv4 ones.
    """

    def __init__(self, resolver=None, clock=None, timeout=30, maxTTL=3600,
                 negativeTTL=300, maxEntries=2048, maxHosts=10, preferIPv6=False,
                 random=None):
        if clock is None:
            from twisted.internet import reactor as clock
        self._resolver = resolver
        self.clock = clock
        self.timeout = timeout
        self.maxTTL = maxTTL
        self.negativeTTL = negativeTTL
        self.maxEntries = maxEntries
        self.maxHosts = maxHosts
        self.preferIPv6 = preferIPv6
        self.random = random if random is not None else _random.Random()
        self._cache = collections.OrderedDict()

    @property
    def resolver(self):
        if self._resolver is None:
            from twisted.names.client import createResolver

            self._resolver = createResolver()
        return self._resolver

    # -- public -------------------------------------------------------------

    def resolve(self, destination, port=DEFAULT_PORT):
        """
        Find where to send mail for C{destination}.

        @param port: the port for candidates unless the destination names
            one.
        @return: L{Deferred} firing with a non-empty C{list} of
            L{Candidate}s in the order to try them, or failing with
            L{DNSFailure}.
        """
        try:
            name, port, address, useMX = parseDestination(destination, port)
        except ValueError as e:
            return defer.fail(DNSFailure(550, "5.1.2 bad destination: %s" % (e,)))
        if address is not None:
            return defer.succeed([Candidate(address, port, address)])
        if useMX:
            d = self._lookup("MX", name)
            d.addCallback(self._gotMX, name, port)
        else:
            d = self._hostCandidates(name, port)
            d.addCallback(self._requireAddress, name)
        return d

    def clearCache(self):
        """
        Forget every cached answer.
        """
        self._cache.clear()

    # -- composing ----------------------------------------------------------

    def _gotMX(self, records, domain, port):
        """
        Order the MX hosts and look up their addresses; with no MX, the
        domain itself is the implicit MX (RFC 5321 5.1).
        """
        if not records:
            d = self._hostCandidates(domain, port)
            d.addCallback(self._requireAddress, domain)
            return d
        real = [(pref, host) for pref, host in records if host]
        if not real:
            return defer.fail(DNSFailure(556, "5.1.10 %s accepts no mail (null MX)" % (domain,)))
        byPreference = collections.defaultdict(list)
        for pref, host in real:
            if host not in byPreference[pref]:
                byPreference[pref].append(host)
        hosts = []
        for pref in sorted(byPreference):
            group = byPreference[pref]
            self.random.shuffle(group)
            hosts.extend(h for h in group if h not in hosts)
        hosts = hosts[:self.maxHosts]
        lookups = [self._hostCandidates(host, port) for host in hosts]
        d = defer.DeferredList(lookups, consumeErrors=True)
        d.addCallback(self._mergeHosts, domain)
        return d

    def _mergeHosts(self, results, domain):
        """
        Join the MX hosts' addresses in MX order, keeping only the first
        occurrence of an address.
        """
        candidates = []
        seen = set()
        temporary = None
        for ok, value in results:
            if not ok:
                error = value.value
                if isinstance(error, DNSFailure) and not error.permanent:
                    temporary = error
                continue
            for candidate in value:
                if candidate not in seen:
                    seen.add(candidate)
                    candidates.append(candidate)
        if candidates:
            return candidates
        if temporary is not None:
            raise temporary
        raise DNSFailure(550, "5.4.4 no MX host of %s has an address" % (domain,))

    def _hostCandidates(self, host, port):
        """
        Look up the A and AAAA records of one host.

        @return: L{Deferred} firing with the host's candidates (possibly
            empty) or failing with L{DNSFailure} if neither lookup gave an
            address and one of them failed.
        """
        d = defer.DeferredList(
            [self._lookup("A", host), self._lookup("AAAA", host)], consumeErrors=True
        )

        def merged(results):
            (okA, a), (okAAAA, aaaa) = results
            v4 = a if okA else []
            v6 = aaaa if okAAAA else []
            addresses = v6 + v4 if self.preferIPv6 else v4 + v6
            if addresses:
                return [Candidate(address, port, host) for address in addresses]
            failures = [r.value for ok, r in results if not ok]
            for error in failures:
                if isinstance(error, DNSFailure) and not error.permanent:
                    raise error
            if failures and len(failures) == 2:
                raise failures[0]
            return []

        d.addCallback(merged)
        return d

    def _requireAddress(self, candidates, name):
        """
        The destination host itself had to answer; no address is final.
        """
        if not candidates:
            raise DNSFailure(550, "5.4.4 no MX or address record for %s" % (name,))
        return candidates

    # -- one lookup, cached -------------------------------------------------

    def _lookup(self, kind, name):
        """
        @return: L{Deferred} firing with C{[(preference, host)]} for C{MX},
            C{[address]} for C{A}/C{AAAA}, or failing with L{DNSFailure}.
        """
        key = (kind, name)
        now = self.clock.seconds()
        entry = self._cache.get(key)
        if entry is not None:
            expires, value = entry
            if expires > now:
                self._cache.move_to_end(key)
                if isinstance(value, DNSFailure):
                    return defer.fail(value)
                return defer.succeed(list(value))
            del self._cache[key]
        method = {
            "MX": self.resolver.lookupMailExchange,
            "A": self.resolver.lookupAddress,
            "AAAA": self.resolver.lookupIPV6Address,
        }[kind]
        d = defer.maybeDeferred(method, name)
        d.addTimeout(self.timeout, self.clock)
        d.addCallbacks(self._answered, self._failed, (kind, name), None, (kind, name), None)
        return d

    def _store(self, key, value, ttl):
        ttl = max(0, min(ttl, self.maxTTL))
        if ttl <= 0:
            return
        self._cache[key] = (self.clock.seconds() + ttl, value)
        self._cache.move_to_end(key)
        while len(self._cache) > self.maxEntries:
            self._cache.popitem(last=False)

    def _negativeTTL(self, authority):
        for rr in authority or ():
            if rr.type == dns.SOA:
                return min(rr.ttl, rr.payload.minimum)
        return self.negativeTTL

    def _answered(self, result, kind, name):
        answers, authority, _additional = result
        values = []
        ttls = []
        for rr in answers:
            if kind == "MX" and rr.type == dns.MX:
                values.append((rr.payload.preference, str(rr.payload.name).rstrip(".").lower()))
            elif kind == "A" and rr.type == dns.A:
                values.append(rr.payload.dottedQuad())
            elif kind == "AAAA" and rr.type == dns.AAAA:
                values.append(socket.inet_ntop(socket.AF_INET6, rr.payload.address))
            else:
                continue
            ttls.append(rr.ttl)
        ttl = min(ttls) if ttls else self._negativeTTL(authority)
        self._store((kind, name), tuple(values), ttl)
        return values

    def _failed(self, failure, kind, name):
        if failure.check(DNSNameError):
            error = _NameNotFound(550, "5.1.2 %s: no such domain" % (name,))
            authority = ()
            message = getattr(failure.value, "message", None)
            if message is None and failure.value.args:
                message = failure.value.args[0]
            if isinstance(message, dns.Message):
                authority = message.authority
            self._store((kind, name), error, self._negativeTTL(authority))
            raise error
        if failure.check(defer.TimeoutError):
            reason = "timed out"
        else:
            reason = failure.getErrorMessage() or failure.type.__name__
        raise DNSFailure(451, "4.4.3 DNS lookup of %s %s failed: %s" % (kind, name, reason))

