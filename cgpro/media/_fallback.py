# -*- test-case-name: tests.media.test_sockets -*-
"""
The pure-Python forwarding loop, used only when the Cython extension
L{cgpro.media._relay} was not built (or C{CGPRO_NO_EXTENSIONS=1}).

One Twisted L{DatagramProtocol} per relay socket, adopted by the reactor:
the same semantics as the extension (validation, latching, statistics,
counters), at the cost of a Python call per packet.  It runs in the
reactor's thread.  An IPv6 socket is adopted as an IPv6 port, whose
sources Twisted gives as C{(host, port)} like IPv4 ones: an IPv6 leg latches
and sends the same way, and a packet crosses families just by being written
on the peer leg's port.
"""

import ipaddress
import socket
import struct
import time

from zope.interface import implementer

from twisted.internet import defer
from twisted.internet.protocol import DatagramProtocol

from cgpro.media.interfaces import IRelayEngine

_RTP_HEADER = struct.Struct("!BBHII")

#: RFC 3550 A.1: a jump of less than this is in order (packets were lost).
MAX_DROPOUT = 3000
#: RFC 3550 A.1: a step back of up to this is a late (reordered) packet.
MAX_MISORDER = 100


class RtpStatistics:
    """
    Loss and jitter of one RTP stream (RFC 3550 A.1, A.3 and A.8), kept the
    same way as the extension's C struct so that both report equal figures.

    @ivar ssrc: the source being counted (a new SSRC restarts the sequence
        state; what the previous source lost is kept in C{lost}).
    @ivar jitter: the interarrival jitter in timestamp units.
    """

    __slots__ = ("ssrc", "started", "maxSeq", "cycles", "baseSeq", "badSeq", "received",
                 "lostBefore", "transit", "haveTransit", "jitter")

    def __init__(self):
        self.ssrc = 0
        self.started = False
        self.maxSeq = self.cycles = self.baseSeq = self.received = self.lostBefore = 0
        self.badSeq = 0x10001
        self.transit = 0
        self.haveTransit = False
        self.jitter = 0.0

    def _restart(self, seq):
        self.lostBefore = self.lost()
        self.baseSeq = self.maxSeq = seq
        self.cycles = 0
        self.received = 0
        self.badSeq = 0x10001

    def update(self, seq, timestamp, ssrc, arrival):
        """
        Count one packet.

        @param arrival: its arrival time in timestamp units (C{int}).
        """
        if not self.started or ssrc != self.ssrc:
            if self.started:
                self._restart(seq)
            else:
                self.baseSeq = self.maxSeq = seq
                self.started = True
            self.ssrc = ssrc
            self.haveTransit = False
        else:
            delta = (seq - self.maxSeq) & 0xFFFF
            if delta < MAX_DROPOUT:
                if seq < self.maxSeq:
                    self.cycles += 0x10000
                self.maxSeq = seq
            elif delta <= 0x10000 - MAX_MISORDER:
                if seq != self.badSeq:
                    # A big jump: wait for a second packet to confirm the restart.
                    self.badSeq = (seq + 1) & 0xFFFF
                    return
                self._restart(seq)
            # else: a duplicate or a late packet, counted as received
        self.received += 1
        transit = (arrival - timestamp) & 0xFFFFFFFF
        if self.haveTransit:
            d = (transit - self.transit) & 0xFFFFFFFF
            if d & 0x80000000:
                d = 0x100000000 - d
            self.jitter += (d - self.jitter) / 16.0
        self.transit = transit
        self.haveTransit = True

    def lost(self):
        """
        @return: packets expected minus packets received (RFC 3550 A.3),
            over every source seen; negative with duplicates.
        """
        if not self.started:
            return self.lostBefore
        expected = self.cycles + self.maxSeq - self.baseSeq + 1
        return self.lostBefore + expected - self.received


class _Leg(DatagramProtocol):
    """
    One relay socket.
    """

    def __init__(self, engine, slot, peerSlot, rtcp, clockRate, family=socket.AF_INET):
        self.engine = engine
        self.family = family
        self.slot = slot
        self.peerSlot = peerSlot
        self.rtcp = rtcp
        self.scale = clockRate / 1e9
        self.active = True
        self.latched = None
        self.expected = None
        self.port = None
        self.packets = self.bytes = self.forwarded = 0
        self.droppedForeign = self.droppedMalformed = self.droppedNoRoute = 0
        self.droppedSendError = 0
        self.rtp = RtpStatistics()

    def datagramReceived(self, data, addr):
        if not self.active:
            return
        if len(data) < 8 or data[0] & 0xC0 != 0x80:
            self.droppedMalformed += 1
            return
        # on an RTP port, payload types 72-76 are RTCP (rtcp-mux, RFC 5761)
        isRtp = not self.rtcp and not 72 <= data[1] & 0x7F <= 76
        if isRtp and len(data) < 12:
            self.droppedMalformed += 1
            return
        if self.latched is None:
            self.latched = addr
        elif addr != self.latched:
            self.droppedForeign += 1
            return
        self.packets += 1
        self.bytes += len(data)
        if isRtp:
            _, _, seq, timestamp, ssrc = _RTP_HEADER.unpack_from(data)
            self.rtp.update(seq, timestamp, ssrc, int(time.monotonic_ns() * self.scale))
        peer = self.engine._legs.get(self.peerSlot)
        destination = None if peer is None else (peer.latched or peer.expected)
        if destination is None:
            self.droppedNoRoute += 1
            return
        try:
            peer.transport.write(data, destination)
        except OSError:
            self.droppedSendError += 1
        else:
            self.forwarded += 1


@implementer(IRelayEngine)
class PythonEngine:
    """
    L{IRelayEngine} on Twisted datagram protocols.

    @ivar reactor: an L{IReactorSocket} provider (C{adoptDatagramPort}).
    """

    name = "py"

    def __init__(self, reactor, slots):
        """
        @param slots: the number of slots (unused: kept for the extension's
            signature).
        """
        self.reactor = reactor
        self._legs = {}
        self._closing = []

    def start(self):
        pass

    def stop(self):
        """
        @return: a L{Deferred} firing once the reactor has closed every
            adopted socket (Twisted closes a UDP port one turn later).
        """
        for slot in list(self._legs):
            self.removeSocket(slot)
        closing, self._closing = self._closing, []
        return defer.DeferredList([d for d in closing if not d.called])

    def addSocket(self, slot, sock, peerSlot, rtcp, clockRate):
        family = sock.family
        leg = _Leg(self, slot, peerSlot, rtcp, clockRate, family)
        leg.port = self.reactor.adoptDatagramPort(sock.fileno(), family, leg,
                                                  maxPacketSize=4096)
        # The reactor keeps a duplicate of the descriptor: close ours now so
        # a session costs 4 descriptors, not 8 (closing again is harmless).
        sock.close()
        self._legs[slot] = leg

    def setRemote(self, slot, host, port):
        leg = self._legs[slot]
        # the address of the socket's family, or ValueError
        (ipaddress.IPv6Address if leg.family == socket.AF_INET6 else ipaddress.IPv4Address)(host)
        leg.expected = (host, port)
        leg.latched = None

    def removeSocket(self, slot):
        leg = self._legs.pop(slot, None)
        if leg is not None:
            leg.active = False
            d = leg.port.stopListening()
            if d is not None:
                self._closing = [c for c in self._closing if not c.called]
                self._closing.append(d)

    def packetCounts(self):
        return {slot: leg.packets for slot, leg in self._legs.items()}

    def counters(self, slot):
        leg = self._legs[slot]
        return {
            "packets": leg.packets, "bytes": leg.bytes, "forwarded": leg.forwarded,
            "droppedForeign": leg.droppedForeign, "droppedMalformed": leg.droppedMalformed,
            "droppedNoRoute": leg.droppedNoRoute, "droppedSendError": leg.droppedSendError,
            "ssrc": leg.rtp.ssrc, "lost": leg.rtp.lost(), "jitter": leg.rtp.jitter,
            "remote": leg.latched,
        }
