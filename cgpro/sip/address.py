"""
Where a SIP message came from or goes to.

A L{Peer} names one transport endpoint: the transport (C{"UDP"},
C{"TCP"}, C{"TLS"}), the IP address and the port.  It is hashable, so
the transport layer keys its connection table by it and the location
service stores it as the flow a registration arrived on (RFC 5626).
"""

from typing import NamedTuple

TRANSPORTS = ("UDP", "TCP", "TLS")
RELIABLE = frozenset(("TCP", "TLS"))
DEFAULT_PORTS = {"UDP": 5060, "TCP": 5060, "TLS": 5061}


class Peer(NamedTuple):
    """
    @ivar transport: C{"UDP"}, C{"TCP"} or C{"TLS"} (upper case).
    @ivar host: the IP address (IPv6 without brackets).
    @ivar port: the port.
    """

    transport: str
    host: str
    port: int

    @property
    def reliable(self):
        """Whether the transport retransmits by itself (no Timer A/E/G)."""
        return self.transport in RELIABLE

    def hostport(self):
        """@return: C{host:port}, IPv6 in brackets."""
        if ":" in self.host:
            return "[%s]:%d" % (self.host, self.port)
        return "%s:%d" % (self.host, self.port)

    def __str__(self):
        return "%s:%s" % (self.transport.lower(), self.hostport())
