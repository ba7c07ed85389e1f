# -*- test-case-name: tests.sip.test_stack -*-
"""
The SIP module settings: built-in defaults and their parsed form.

Stored under C{Modules/SIP} in the server settings and changed over the CLI
with C{UPDATEMODULE SIP {...}}, like every module's.  The stack reads them
when it starts and again on each REGISTER and new call, so most changes
apply without a restart; the transport ones (message size, idle timeout,
advertised address) apply to new connections.
"""

from cgpro.core.modulesettings import ModuleSettings, choice, count, duration, yes

#: Built-in defaults of module C{SIP}.
DEFAULTS = {
    # REGISTER needs digest authentication (NO only on a trusted network
    # or to compare with a registrar that does not authenticate).
    "RequireRegisterAuth": "YES",
    # Registration lifetimes: shorter requests get 423 Interval Too Brief,
    # longer ones are cut down; no Expires at all gets the default.
    "MinRegisterExpires": "60s",
    "MaxRegisterExpires": "1h",
    "DefaultRegisterExpires": "1h",
    # Devices per address of record.
    "MaxContactsPerAccount": "10",
    # The digest algorithms challenged with, one WWW-Authenticate each, in
    # this order.  MD5 alone by default: Debian's baresip 1.0 gives up on a
    # 401 that also offers SHA-256, and SIPp answers only the first
    # challenge; add SHA-256 (RFC 8760) where every client copes.
    "DigestAlgorithms": ["MD5"],
    # How long a digest nonce stays valid before it is "stale".
    "NonceLifetime": "5m",
    # Wrong passwords per source address and minute before that address
    # gets 403 without a check.
    "AuthFailuresPerMinute": "10",
    # Ringing this long without an answer is a "No Answer" (stage 5 of the
    # incoming call rules); also the proxy's Timer C.
    "MaxRingTime": "2m",
    # Largest SIP message accepted, on any transport.
    "MaxMessageSize": "64K",
    # A TCP/TLS connection silent this long is closed.
    "ConnectionIdleTimeout": "5m",
    # The host put in Via, Record-Route and Contact instead of the address
    # found from the routing table (a public address behind NAT).
    "AdvertisedAddress": "",
    # More names or addresses that mean "this server" in a Request-URI,
    # besides its listening addresses and its domains.
    "LocalHosts": [],
    # Rewrite the Contact of a request or response from a device behind
    # NAT to the address it was received from (RFC 3581 style fix-up).
    "FixNATContact": "YES",
    # Redirect targets from 3xx responses followed per call.
    "MaxRedirects": "5",
    # Relay a call's media through the server: NAT (when a party is behind
    # NAT or the address families differ), Always, or Never.
    "MediaProxy": "NAT",
}


class SIPSettings(ModuleSettings):
    """
    The effective C{SIP} module settings, parsed.
    """

    MODULE = "SIP"
    DEFAULTS = DEFAULTS
    PARSERS = {
        "RequireRegisterAuth": ("requireRegisterAuth", yes),
        "MinRegisterExpires": ("minExpires", duration),
        "MaxRegisterExpires": ("maxExpires", duration),
        "DefaultRegisterExpires": ("defaultExpires", duration),
        "MaxContactsPerAccount": ("maxContacts", count),
        "DigestAlgorithms": ("digestAlgorithms", lambda v: _algorithms(v)),
        "NonceLifetime": ("nonceLifetime", duration),
        "AuthFailuresPerMinute": ("authFailuresPerMinute", count),
        "MaxRingTime": ("maxRingTime", duration),
        "MaxMessageSize": ("maxMessageSize", lambda v: _size(v)),
        "ConnectionIdleTimeout": ("idleTimeout", duration),
        "AdvertisedAddress": ("advertisedAddress", lambda v: str(v).strip()),
        "LocalHosts": ("localHosts", lambda v: _names(v)),
        "FixNATContact": ("fixNATContact", yes),
        "MaxRedirects": ("maxRedirects", count),
        "MediaProxy": ("mediaProxy", choice("Never", "NAT", "Always")),
    }


def _size(value):
    from cgpro.core import dataformat

    size = dataformat.parseSize(value)
    if not size or size < 1024:
        raise ValueError("message size %r is too small" % (value,))
    return size


_ALGORITHMS = ("MD5", "SHA-256", "MD5-sess", "SHA-256-sess")


def _algorithms(value):
    names = _names(value)
    out = []
    for name in names:
        for known in _ALGORITHMS:
            if known.lower() == name:
                out.append(known)
                break
        else:
            raise ValueError("unknown digest algorithm %r" % (name,))
    if not out:
        raise ValueError("no digest algorithm")
    return tuple(out)


def _names(value):
    if isinstance(value, str):
        value = [v for v in value.replace(",", " ").split()]
    if not isinstance(value, list):
        raise ValueError("expected a list of names")
    return [str(v).strip().lower().strip("[]") for v in value if str(v).strip()]
