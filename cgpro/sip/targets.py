# -*- test-case-name: tests.sip.test_proxy -*-
"""
Targets of the proxy: where a branch goes (L{Target}, a L{Peer} or a host
name still to resolve), and the small message surgeries every branch and
every response needs (our Via off, a NATed Contact fixed, our
Record-Route written).

Kept apart from the routing decisions (L{cgpro.sip.proxy}) and from the
response context (L{cgpro.sip.forking}) that both use them.
"""

import ipaddress

from cgpro.sip.address import DEFAULT_PORTS, Peer
from cgpro.sip.headers import splitQuoted
from cgpro.sip.uri import SIPParseError, SIPURI, parseURI


class RoutingFailed(Exception):
    """No target: the code and reason to answer with."""

    def __init__(self, code, reason=None):
        Exception.__init__(self, code, reason)
        self.code = code
        self.reason = reason


class Target:
    """
    One place to send a branch.

    @ivar uri: the Request-URI for the branch (a L{SIPURI}).
    @ivar destination: the L{Peer} to send to, or L{None} to derive it
        from the URI (after resolving a host name).
    @ivar route: Route header values to put on the branch (a
        registration's Path).
    @ivar q: the q-value (ordering only).
    """

    __slots__ = ("uri", "destination", "route", "q", "nat")

    def __init__(self, uri, destination=None, route=(), q=1.0, nat=False):
        self.uri = uri
        self.destination = destination
        self.route = list(route)
        self.q = q
        self.nat = nat

    def key(self):
        return str(self.uri).lower()


def peerForURI(uri, transport=None):
    """
    @return: the L{Peer} a SIP URI with an IP literal host points to, or
        L{None} if its host is a name (to be resolved).
    """
    if transport is None:
        param = uri.getParam("transport")
        if uri.scheme == "sips":
            transport = "TLS"
        elif param:
            transport = {"udp": "UDP", "tcp": "TCP", "tls": "TLS"}.get(param.lower(), "UDP")
        else:
            transport = "UDP"
    host = uri.host.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return Peer(transport, host, uri.port or DEFAULT_PORTS[transport])


def popVia(message):
    """Remove the topmost Via (ours) from a response about to go upstream."""
    headers = message.headers
    for i, (name, value) in enumerate(headers):
        if name == "Via":
            parts = splitQuoted(value, ",")
            if len(parts) > 1:
                headers[i] = ["Via", ",".join(parts[1:]).strip()]
            else:
                del headers[i]
            break
    message._cache.clear()


def addressOf(uri):
    """@return: C{user@host} of a SIP URI (the Router's input)."""
    if uri.user:
        return "%s@%s" % (uri.user, uri.host)
    return uri.host


class Unresolved:
    """A destination still to be found by resolving a host name."""

    __slots__ = ("uri",)

    def __init__(self, uri):
        self.uri = uri


def transportOf(uri):
    if uri.scheme == "sips":
        return "TLS"
    param = uri.getParam("transport")
    return param.upper() if param else "UDP"


def withHost(uri, host):
    return SIPURI(uri.scheme, uri.user, host, uri.port, uri.params, uri.headers,
                  uri.password)


def targetURI(address, request):
    """The Request-URI for a remote target C{user@host[:port]} of the Router."""
    original = request.requestURI
    text = address if address.lower().startswith(("sip:", "sips:")) else "sip:" + address
    try:
        uri = parseURI(text)
    except SIPParseError:
        raise RoutingFailed(404, "Bad target %s" % (address,))
    if isinstance(original, SIPURI) and original.getParam("user") == "phone":
        uri.params.append(("user", "phone"))
    return uri


def recordRouteURI(hostport, transport, token):
    host, port = hostport
    if ":" in host:
        host = "[%s]" % (host,)
    suffix = "" if transport == "UDP" else ";transport=%s" % (transport.lower(),)
    return "<sip:%s:%d%s;lr;cgp=%s>" % (host, port, suffix, token)


def fixContact(message, peer):
    """
    Rewrite the Contact of a message from a device behind NAT to the
    address its packets come from, so that requests inside the dialog
    reach it (the nathelper C{fix_nated_contact} behaviour).
    """
    values = message.getHeaders("Contact")
    if len(values) != 1 or peer is None:
        return
    try:
        contacts = message.contact
    except SIPParseError:
        return
    if len(contacts) != 1 or contacts[0].wildcard:
        return
    contact = contacts[0]
    uri = contact.uri
    if not isinstance(uri, SIPURI) or not isPrivate(uri.host):
        return
    if uri.host.strip("[]") == peer.host and (uri.port or 5060) == peer.port:
        return
    fixed = withHost(uri, peer.host if ":" not in peer.host else "[%s]" % peer.host)
    fixed.port = peer.port
    if peer.transport != "UDP" and not fixed.getParam("transport"):
        fixed.params.append(("transport", peer.transport.lower()))
    contact.uri = fixed
    message.setHeader("Contact", str(contact))


def isPrivate(host):
    """
    @return: whether C{host} is an IP literal of a private (RFC 1918, ULA,
        link-local) network: a device that puts one in its Contact while
        its packets come from elsewhere is behind NAT.
    """
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return address.is_private and not address.is_loopback
