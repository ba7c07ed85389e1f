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


class MediaExhausted(Exception):
    """
    The relay cannot take one more session: the session limit is reached or
    the Port Allocation range has no free port pair left.  The message says
    which, and what to change.
    """


class IMediaSession(Interface):
    """
    One relayed call: one RTP/RTCP port pair per leg on the relay.  A packet
    received on leg I{i}'s ports from leg I{i}'s endpoint leaves from the
    other leg's ports towards the other leg's endpoint.
    """

    id = Attribute("C{int}, unique for the lifetime of the relay.")
    callId = Attribute("C{str}, the Call-ID given to L{IMediaRelay.allocate}.")
    localAddress = Attribute("C{str}, the address the relay's ports are bound to.")
    ports = Attribute("C{list} of C{(rtpPort, rtcpPort)}, one per leg, in leg order.")
    released = Attribute("C{None} while active, then why it ended: C{'bye'}, "
                         "C{'silence'} or C{'stop'}.")

    def setRemote(leg, host, port, rtcpPort=None):
        """
        Tell the relay where leg C{leg}'s endpoint said (in its SDP) it
        receives media; used until its first packet arrives.

        Symmetric RTP: the first valid packet received on a leg's port
        I{latches} its source address, which from then on is the only one
        accepted on that port and where the other leg's packets are sent,
        whatever the SDP said (the endpoint may be behind a NAT).  Calling
        this again (a re-INVITE) forgets the latch, so the endpoint may move.

        @param leg: the leg index, C{0 <= leg < len(ports)}.
        @param host: an IPv4 address (C{str}).
        @param port: the RTP port (C{int}).
        @param rtcpPort: the RTCP port; default C{port + 1}.
        @raise IndexError: for an unknown leg.
        @raise ValueError: for a session already released.
        """

    def release():
        """
        End the session (BYE): close its ports and give them back.
        Releasing twice is harmless.
        """

    def whenReleased():
        """
        @return: a L{Deferred} firing with the reason (see C{released}) when
            the session ends, for whatever reason (the silence timeout, for
            one, ends it without the signalling asking).
        """

    def stats():
        """
        Counters per leg, for monitoring.

        @return: a C{list} (one per leg) of C{dict}: C{rtpPort},
            C{rtcpPort}, C{remote} and C{rtcpRemote} (latched C{(host, port)}
            or C{None}), C{packets}/C{bytes} (valid packets received from
            the leg's endpoint on its RTP port, multiplexed RTCP included),
            C{rtcpPackets}/C{rtcpBytes} (on its RTCP port), C{forwarded}
            (RTP and RTCP sent on to the other leg), C{ssrc}, C{lost}
            (expected minus received, from the RTP sequence numbers, RFC
            3550 A.3), C{jitter} (interarrival jitter, RFC 3550 A.8, in
            timestamp units) and C{jitterMs}, C{dropped} (the sum of
            C{droppedForeign}: from a third address; C{droppedMalformed}:
            not RTP/RTCP; C{droppedNoRoute}: the other leg's address is
            not known yet; C{droppedSendError}).
        """


class IMediaRelay(Interface):
    """
    The relay as the proxy and the B2BUA use it.
    """

    implementation = Attribute("C{'c'} (the Cython loop) or C{'py'} (the fallback).")

    def allocate(callId, legs=2, clockRate=8000):
        """
        Open a session with one RTP/RTCP port pair per leg.

        @param callId: the call's Call-ID (for logs and monitoring).
        @param legs: the number of legs (2 for a call).
        @param clockRate: the RTP clock rate used for the jitter (8000 for
            the G.711 family).
        @return: an L{IMediaSession}.
        @raise MediaExhausted: the session limit is reached, or the Port
            Allocation range has too few free pairs.
        """

    def sessions():
        """
        @return: the active L{IMediaSession}s (C{list}).
        """

    def stats():
        """
        @return: a C{dict} for monitoring: C{implementation}, C{sessions},
            C{maxSessions}, C{portPairs} (the range's capacity),
            C{portPairsInUse}, C{allocated}, C{exhausted} (refused
            allocations), C{releasedBye}, C{releasedSilence}, and the sums
            over active sessions of C{packets}, C{bytes}, C{forwarded},
            C{dropped}, plus the same totals of sessions already released
            (C{packetsTotal}, ...).
        """

    def stop():
        """
        Release every session and stop forwarding.

        @return: a L{Deferred} firing once every relay socket is closed.
        """


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
        @param sock: a bound, non-blocking IPv4 UDP L{socket.socket}; the
            engine may close it as soon as it holds its own duplicate.
        @param peerSlot: the slot whose socket sends the packets received
            here, to the address latched (or expected) on that slot.
        @param rtcp: C{True} for an RTCP socket (8-byte minimum, no
            sequence statistics), C{False} for RTP (12-byte minimum, except
            multiplexed RTCP: payload types 72-76, RFC 5761, 8 bytes and
            no sequence statistics).  Either way the version must be 2.
        @param clockRate: the RTP clock rate for the jitter.
        """

    def setRemote(slot, host, port):
        """
        Set the expected remote address of C{slot} and forget its latch.
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
            units), C{remote} (latched C{(host, port)} or C{None}).
        """
