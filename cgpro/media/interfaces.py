# -*- test-case-name: tests.media.test_relay -*-
"""
The media relay's seams.

The SIP proxy and the B2BUA see only L{IMediaRelay} and L{IMediaSession}.
Inside the package, L{IRelayEngine} separates the policy of
L{cgpro.media.relay.MediaRelay} (which ports, which sessions, when to let
go) from the two forwarding loops that implement it: the Cython extension
C{cgpro.media._relay} and the pure-Python L{cgpro.media._fallback}.
"""

from zope.interface import Attribute, Interface


# The seams the SIP proxy and the B2BUA use live in the core, so that
# protocol packages reach the relay without importing each other.
from cgpro.core.interfaces import IMediaRelay, IMediaSession, MediaExhausted  # noqa: F401


class IRelayEngine(Interface):
    """
    A forwarding loop (internal to L{cgpro.media}).  It holds one entry per
    relay socket, addressed by a I{slot} (the port's offset in the range),
    and owns no policy: L{cgpro.media.relay.MediaRelay} decides what goes
    where.  Every method is called from the reactor thread.
    """

    name = Attribute("C{'c'} or C{'py'}.")

    def start():
        """
        Start forwarding.
        """

    def stop():
        """
        Stop forwarding and remove every socket (their owner closes them).

        @return: C{None}, or a L{Deferred} firing once the loop has let go
            of every socket.
        """

    def addSocket(slot, sock, peerSlot, rtcp, clockRate):
        """
        Forward what arrives on C{sock}.

        @param slot: this socket's index.
        @param sock: a bound, non-blocking IPv4 or IPv6 (C{IPV6_V6ONLY})
            UDP L{socket.socket}; the engine may close it as soon as it
            holds its own duplicate.  Its family is the slot's: only
            sources of that family are latched, only addresses of that
            family are sent to.
        @param peerSlot: the slot whose socket sends the packets received
            here, to the address latched (or expected) on that slot; it may
            be of the other family (IPv4/IPv6 bridging).
        @param rtcp: C{True} for an RTCP socket (8-byte minimum, no
            sequence statistics), C{False} for RTP (12-byte minimum, except
            multiplexed RTCP: payload types 72-76, RFC 5761, 8 bytes and
            no sequence statistics).  Either way the version must be 2.
        @param clockRate: the RTP clock rate for the jitter.
        """

    def setRemote(slot, host, port):
        """
        Set the expected remote address of C{slot} and forget its latch.

        @param host: an address of the slot's socket's family (an IPv6
            one unbracketed and unscoped).
        @raise ValueError: if it is not.
        """

    def removeSocket(slot):
        """
        Stop forwarding on C{slot}; once this returns the loop no longer
        uses its socket, which the caller then closes.
        """

    def packetCounts():
        """
        Every socket's valid packet count at once (the silence check reads
        thousands of sessions every few seconds).

        @return: an object indexed by slot (at least every slot in use).
        """

    def counters(slot):
        """
        @return: a C{dict}: C{packets}, C{bytes}, C{forwarded},
            C{droppedForeign}, C{droppedMalformed}, C{droppedNoRoute},
            C{droppedSendError}, C{ssrc}, C{lost}, C{jitter} (timestamp
            units), C{remote} (latched C{(host, port)} or C{None}; an IPv6
            host unbracketed, as C{inet_ntop} writes it).
        """
