# -*- test-case-name: tests.mail.smtp.test_policy -*-
"""
DNS queries for the receiving checks (SPF, DNS blocklists, the return-path
domain), with a deadline and one error model.

Every query goes through L{lookup}: the answer comes back as plain values
(C{str} addresses, text strings, C{(preference, host)} pairs); a name that
does not exist or has no records of the type is an empty list (RFC 7208
calls these void lookups); anything else (SERVFAIL, refused, no answer
before the deadline) is a L{DNSTemporaryError}, which the checks turn into
a 451 when they would reject.

The resolver is any object with the lookup methods of
L{twisted.names.common.ResolverBase} (C{lookupText}, C{lookupAddress},
C{lookupIPV6Address}, C{lookupMailExchange}, C{lookupPointer}), so tests
pass a dictionary-backed fake and the server passes
L{twisted.names.client}'s.
"""

import ipaddress

from twisted.internet import defer
from twisted.names import dns, error

#: Query kind -> (resolver method, record type).
_KINDS = {
    "TXT": ("lookupText", dns.TXT),
    "A": ("lookupAddress", dns.A),
    "AAAA": ("lookupIPV6Address", dns.AAAA),
    "MX": ("lookupMailExchange", dns.MX),
    "PTR": ("lookupPointer", dns.PTR),
}


class DNSTemporaryError(Exception):
    """
    A DNS query failed for a reason that may go away (timeout, SERVFAIL).
    """


def _value(kind, payload):
    if kind == "TXT":
        return b"".join(payload.data).decode("utf-8", "replace")
    if kind == "A":
        return payload.dottedQuad()
    if kind == "AAAA":
        return str(ipaddress.IPv6Address(payload.address))
    if kind == "MX":
        return (payload.preference, payload.name.name.decode("ascii", "replace").rstrip("."))
    return payload.name.name.decode("ascii", "replace").rstrip(".")


def _isVoid(failure):
    """
    NXDOMAIN (and an authority's "no such name") is an answer, not an
    error.
    """
    if failure.check(error.DNSNameError, error.AuthoritativeDomainError):
        return True
    return type(failure.value) is error.DomainError


def lookup(resolver, kind, name, timeout, clock):
    """
    Query one name.

    @param kind: C{"TXT"}, C{"A"}, C{"AAAA"}, C{"MX"} or C{"PTR"}.
    @param timeout: seconds before the query counts as failed.
    @param clock: an L{IReactorTime} for the deadline.
    @return: L{Deferred} firing with a C{list} of values, or failing with
        L{DNSTemporaryError}.
    """
    method, rrtype = _KINDS[kind]
    # twisted.names retries a UDP query once per element: a lost packet
    # should not cost the whole deadline.
    attempts = (1, 3, timeout - 4) if timeout >= 5 else (timeout,)
    try:
        d = getattr(resolver, method)(name, timeout=attempts)
    except Exception as e:
        return defer.fail(DNSTemporaryError("%s %s: %s" % (kind, name, e)))
    d.addTimeout(timeout, clock)

    def answered(result):
        answers = result[0] if isinstance(result, tuple) else result
        return [_value(kind, rr.payload) for rr in answers if rr.type == rrtype]

    def failed(failure):
        if _isVoid(failure):
            return []
        if failure.check(defer.TimeoutError, defer.CancelledError):
            raise DNSTemporaryError("%s %s: no answer within %ss" % (kind, name, timeout))
        raise DNSTemporaryError("%s %s: %s" % (kind, name, failure.getErrorMessage()))

    return d.addCallbacks(answered, failed)


def reverseName(ip, zone):
    """
    The name to query for C{ip} in a DNS blocklist (or, with zone
    C{in-addr.arpa}/C{ip6.arpa}, a PTR name).

    @return: C{4.3.2.1.zone} for IPv4, 32 reversed nibbles for IPv6.
    """
    address = ipaddress.ip_address(ip)
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.version == 4:
        labels = str(address).split(".")
    else:
        labels = list(address.exploded.replace(":", ""))
    return ".".join(reversed(labels)) + "." + zone


def defaultResolver():
    """
    The system resolver of L{twisted.names.client}, made on first use (so
    a server with every DNS check off never reads C{resolv.conf}).
    """
    from twisted.names import client

    return client.getResolver()
