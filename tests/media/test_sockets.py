# -*- test-case-name: tests.media.test_sockets -*-
"""
The media relay forwarding real packets on 127.0.0.1, with the same
assertions for every loop: the Cython extension in its own thread, the
extension in the reactor's thread, and the pure-Python fallback.

The endpoints are plain non-blocking sockets polled between reactor turns,
so the fallback (which needs the reactor) and the extension's thread are
driven alike.  Each test class takes a random port range below the
ephemeral ports; a pair some other program holds is skipped by the relay.
"""

import random
import socket
import struct
import time

from twisted.internet import defer, reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import SkipTest, TestCase

from cgpro.media.interfaces import MediaExhausted
from cgpro.media.relay import IMPLEMENTATION, MediaRelay

HOST = "127.0.0.1"
HOST6 = "::1"


def rtp(seq, timestamp=0, ssrc=0x1234, payload=b"\xd5" * 160, marker=0):
    """
    @return: an RTP packet (version 2, PCMU).
    """
    return struct.pack("!BBHII", 0x80, marker, seq & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc) + payload


def rtcp(ssrc=0x1234):
    """
    @return: an empty RTCP receiver report.
    """
    return struct.pack("!BBHI", 0x80, 201, 1, ssrc)


class Endpoint:
    """
    A phone: one non-blocking UDP socket on 127.0.0.1 (or C{host}), sending
    to the relay on the same address.

    @ivar address: its C{(host, port)}, as the relay latches it.
    """

    def __init__(self, test, host=HOST):
        self.host = host
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                                  socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.bind((host, 0))
        self.address = self.sock.getsockname()[:2]
        test.addCleanup(self.sock.close)

    def send(self, port, data):
        self.sock.sendto(data, (self.host, port))

    def drain(self):
        """
        @return: every datagram already received, as C{(data, (host,
            port))}.
        """
        out = []
        while True:
            try:
                data, source = self.sock.recvfrom(4096)
            except BlockingIOError:
                return out
            out.append((data, source[:2]))


def turn(seconds=0.002):
    """
    Let the reactor run (the fallback forwards there).
    """
    return deferLater(reactor, seconds, lambda: None)


class RelaySocketTestBase:
    """
    A relay on real sockets and the helpers to drive it; a subclass sets
    C{useExtension} and C{threaded}.
    """

    useExtension = None
    threaded = True
    timeout = 30

    def setUp(self):
        if self.useExtension and IMPLEMENTATION != "c":
            raise SkipTest("cgpro.media._relay is not built")
        self.low = random.randrange(20000, 29000, 2)
        self.relay = self.makeRelay()

    def makeRelay(self, size=40, **kw):
        kw.setdefault("silenceTimeout", None)
        kw.setdefault("bindAddress", HOST)
        relay = MediaRelay(reactor, portRange=(self.low, self.low + size - 1),
                           useExtension=self.useExtension, threaded=self.threaded, **kw)
        self.addCleanup(relay.stop)
        return relay

    @defer.inlineCallbacks
    def receive(self, endpoint, count=1, timeout=3.0):
        """
        Wait for C{count} datagrams on C{endpoint}.

        @return: a L{Deferred} firing with the list of C{(data, source)}.
        """
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < count:
            got.extend(endpoint.drain())
            if len(got) >= count:
                break
            if time.monotonic() > deadline:
                self.fail("received %d of %d datagrams" % (len(got), count))
            yield turn()
        return got

    @defer.inlineCallbacks
    def settle(self, endpoints=(), wait=0.15):
        """
        Give the relay time to forward (or not) what was sent, then
        @return: what each of C{endpoints} received.
        """
        yield turn(wait)
        return [e.drain() for e in endpoints]

    @defer.inlineCallbacks
    def waitForCount(self, session, leg, key, value, timeout=3.0):
        deadline = time.monotonic() + timeout
        while session.stats()[leg][key] < value:
            if time.monotonic() > deadline:
                self.fail("%s of leg %d is %d, not %d" % (key, leg, session.stats()[leg][key],
                                                          value))
            yield turn()

    @defer.inlineCallbacks
    def call(self, families=None):
        """
        A session with both endpoints latched.

        @param families: for L{MediaRelay.allocate}; an IPv6 leg's endpoint
            is on C{::1}.
        @return: C{(session, a, b)}.
        """
        session = self.relay.allocate("call-%d" % random.randrange(1 << 30), families=families)
        a, b = [Endpoint(self, HOST6 if family == 6 else HOST)
                for family in (families or (4, 4))]
        a.send(session.ports[0][0], rtp(0))
        yield self.waitForCount(session, 0, "packets", 1)
        b.send(session.ports[1][0], rtp(0, ssrc=0x5678))
        yield self.receive(a)
        return session, a, b


class RelaySocketTestsMixin(RelaySocketTestBase):
    """
    The assertions shared by every implementation.
    """

    def test_implementation(self):
        """
        The relay runs the implementation this class is about.
        """
        self.assertEqual(self.relay.implementation, "c" if self.useExtension else "py")

    @defer.inlineCallbacks
    def test_forwardBothWays(self):
        """
        A's packets reach B from leg 1's RTP port and B's reach A from leg
        0's (symmetric RTP), unchanged.
        """
        session, a, b = yield self.call()
        packet = rtp(1, 160, payload=b"hello" * 30)
        a.send(session.ports[0][0], packet)
        [(data, source)] = yield self.receive(b)
        self.assertEqual(data, packet)
        self.assertEqual(source, (HOST, session.ports[1][0]))
        reply = rtp(1, 160, ssrc=0x5678, payload=b"world" * 30)
        b.send(session.ports[1][0], reply)
        [(data, source)] = yield self.receive(a)
        self.assertEqual((data, source), (reply, (HOST, session.ports[0][0])))
        stats = session.stats()
        self.assertEqual(stats[0]["remote"], a.address)
        self.assertEqual(stats[1]["remote"], b.address)

    @defer.inlineCallbacks
    def test_rtcp(self):
        """
        RTCP is relayed between the odd ports, latched on its own, and
        counted apart from RTP.
        """
        session, a, b = yield self.call()
        a.send(session.ports[0][1], rtcp())
        yield self.waitForCount(session, 0, "rtcpPackets", 1)
        b.send(session.ports[1][1], rtcp(0x5678))
        [(data, source)] = yield self.receive(a)
        self.assertEqual((data, source), (rtcp(0x5678), (HOST, session.ports[0][1])))
        a.send(session.ports[0][1], rtcp())
        [(data, source)] = yield self.receive(b)
        self.assertEqual(source, (HOST, session.ports[1][1]))
        stats = session.stats()
        self.assertEqual((stats[0]["rtcpPackets"], stats[0]["rtcpBytes"]), (2, 16))
        self.assertEqual(stats[0]["rtcpRemote"], a.address)
        self.assertEqual(stats[0]["packets"], 1)

    @defer.inlineCallbacks
    def test_rtcpMux(self):
        """
        RTCP multiplexed on the RTP port (RFC 5761: payload types 72-76,
        8 bytes at least) is relayed like RTP but left out of the sequence
        statistics.
        """
        session, a, b = yield self.call()
        for seq in (1, 2):
            a.send(session.ports[0][0], rtp(seq, 160 * seq))
            a.send(session.ports[0][0], rtcp())
        got = yield self.receive(b, 4)
        self.assertEqual(sorted(data for data, _ in got).count(rtcp()), 2)
        stats = session.stats()[0]
        self.assertEqual((stats["packets"], stats["lost"], stats["rtcpPackets"],
                          stats["droppedMalformed"]), (5, 0, 0, 0))

    @defer.inlineCallbacks
    def test_expectedAddress(self):
        """
        Before B sends anything, A's packets go to the address B's SDP gave
        (and RTCP to the next port).
        """
        session = self.relay.allocate("call")
        a, b = Endpoint(self), Endpoint(self)
        session.setRemote(1, HOST, b.address[1])
        a.send(session.ports[0][0], rtp(0))
        [(data, source)] = yield self.receive(b)
        self.assertEqual(source, (HOST, session.ports[1][0]))
        self.assertIsNone(session.stats()[1]["remote"])

    @defer.inlineCallbacks
    def test_noRouteYet(self):
        """
        With no address for B yet (no packet, no SDP), A's packets latch A
        but are dropped and counted as C{droppedNoRoute}.
        """
        session = self.relay.allocate("call")
        a = Endpoint(self)
        a.send(session.ports[0][0], rtp(0))
        yield self.waitForCount(session, 0, "droppedNoRoute", 1)
        self.assertEqual(session.stats()[0]["remote"], a.address)
        self.assertEqual(session.stats()[0]["forwarded"], 0)

    @defer.inlineCallbacks
    def test_latchWinsOverSdp(self):
        """
        The first packet latches even when it does not come from the SDP
        address (a NAT): B's packets then go to where A really is.
        """
        session = self.relay.allocate("call")
        a, b, elsewhere = Endpoint(self), Endpoint(self), Endpoint(self)
        session.setRemote(0, HOST, elsewhere.address[1])
        a.send(session.ports[0][0], rtp(0))
        yield self.waitForCount(session, 0, "packets", 1)
        b.send(session.ports[1][0], rtp(0))
        yield self.receive(a)
        [received] = yield self.settle([elsewhere])
        self.assertEqual(received, [])

    @defer.inlineCallbacks
    def test_thirdAddressDropped(self):
        """
        Once A is latched, packets from any other address on A's port are
        dropped, counted, and do not move the latch.
        """
        session, a, b = yield self.call()
        a.send(session.ports[0][1], rtcp())
        yield self.waitForCount(session, 0, "rtcpPackets", 1)
        intruder = Endpoint(self)
        for seq in range(5):
            intruder.send(session.ports[0][0], rtp(100 + seq, ssrc=0x666))
            intruder.send(session.ports[0][1], rtcp(0x666))
        yield self.waitForCount(session, 0, "droppedForeign", 10)
        [toB] = yield self.settle([b])
        self.assertEqual(toB, [])
        stats = session.stats()[0]
        # plus A's first RTP and RTCP packets, sent before B was known
        self.assertEqual((stats["packets"], stats["remote"], stats["droppedForeign"],
                          stats["droppedNoRoute"], stats["dropped"]), (1, a.address, 10, 2, 12))
        b.send(session.ports[1][0], rtp(1))
        [(data, source)] = yield self.receive(a)
        [toIntruder] = yield self.settle([intruder])
        self.assertEqual(toIntruder, [])

    @defer.inlineCallbacks
    def test_malformedDropped(self):
        """
        Datagrams that are not RTP (shorter than 12 bytes, or not version
        2) are dropped and counted without latching; on the RTCP port the
        minimum is 8 bytes.
        """
        session = self.relay.allocate("call")
        a, b = Endpoint(self), Endpoint(self)
        session.setRemote(1, HOST, b.address[1])
        rtpPort, rtcpPort = session.ports[0]
        junk = [b"", b"\x80" * 11, b"\x40" + rtp(1)[1:], b"GET / HTTP/1.0\r\n\r\n",
                b"\x00\x01\x00\x00" + b"\x21\x12\xa4\x42" + b"x" * 12]
        for data in junk:
            a.send(rtpPort, data)
        a.send(rtcpPort, b"\x80\xc9\x00\x01")
        a.send(rtcpPort, b"\xc0\xc9\x00\x01" + b"\x00" * 4)
        yield self.waitForCount(session, 0, "droppedMalformed", len(junk) + 2)
        [toB] = yield self.settle([b])
        self.assertEqual(toB, [])
        stats = session.stats()[0]
        self.assertEqual((stats["packets"], stats["remote"], stats["rtcpRemote"]), (0, None, None))
        intruder = Endpoint(self)
        intruder.send(rtpPort, rtp(1))
        [(data, source)] = yield self.receive(b)
        self.assertEqual(session.stats()[0]["remote"], intruder.address)

    @defer.inlineCallbacks
    def test_statsCounts(self):
        """
        Packets and bytes are counted per leg, and forwarded ones too.
        """
        session, a, b = yield self.call()
        for seq in range(1, 11):
            a.send(session.ports[0][0], rtp(seq, 160 * seq, payload=b"p" * 100))
        got = yield self.receive(b, 10)
        self.assertEqual(len(got), 10)
        stats = session.stats()
        self.assertEqual(stats[0]["packets"], 11)
        self.assertEqual(stats[0]["bytes"], 172 + 10 * 112)
        self.assertEqual(stats[0]["forwarded"], 10)
        self.assertEqual(stats[0]["ssrc"], 0x1234)
        self.assertEqual(stats[1]["packets"], 1)
        self.assertEqual(stats[0]["lost"], 0)
        relayStats = self.relay.stats()
        self.assertEqual(relayStats["packets"], 12)
        self.assertEqual(relayStats["implementation"], self.relay.implementation)

    @defer.inlineCallbacks
    def test_loss(self):
        """
        A gap in the sequence numbers is counted as lost (RFC 3550 A.3).
        """
        session, a, b = yield self.call()
        for seq in [1, 2, 3, 4, 5, 8, 9, 10, 14]:
            a.send(session.ports[0][0], rtp(seq, 160 * seq))
        yield self.receive(b, 9)
        self.assertEqual(session.stats()[0]["lost"], 5)

    @defer.inlineCallbacks
    def test_jitter(self):
        """
        Interarrival jitter per RFC 3550 A.8: packets arriving together but
        stamped 8000 units (one second) apart give D = 8000 each time, so
        after 10 packets J = 8000 * (1 - (15/16) ** 9); a steady stream
        stamped like its arrival has almost none.
        """
        session, a, b = yield self.call()
        for i in range(1, 10):
            a.send(session.ports[0][0], rtp(i, 8000 * i))
        yield self.receive(b, 9)
        expected = 8000 * (1 - (15 / 16) ** 9)
        [leg0, leg1] = session.stats()
        # allow for 40 ms (320 units) of arrival noise on a busy machine
        self.assertTrue(abs(leg0["jitter"] - expected) < 320, (leg0["jitter"], expected))
        self.assertTrue(abs(leg0["jitterMs"] - expected / 8) < 40, (leg0["jitterMs"], expected))
        self.assertEqual(leg1["jitter"], 0.0)

    @defer.inlineCallbacks
    def test_relatchOnUpdate(self):
        """
        A re-INVITE's setRemote forgets A's latch: B's packets go to the new
        address until A's new socket sends, which then latches; the old
        address is a third address from then on.
        """
        session, a, b = yield self.call()
        moved = Endpoint(self)
        session.setRemote(0, HOST, moved.address[1])
        b.send(session.ports[1][0], rtp(1))
        [(data, source)] = yield self.receive(moved)
        self.assertEqual(source, (HOST, session.ports[0][0]))
        moved.send(session.ports[0][0], rtp(500, ssrc=0x9999))
        yield self.receive(b)
        self.assertEqual(session.stats()[0]["remote"], moved.address)
        a.send(session.ports[0][0], rtp(2))
        yield self.waitForCount(session, 0, "droppedForeign", 1)
        [toB, toA] = yield self.settle([b, a])
        self.assertEqual((toB, toA), ([], []))

    @defer.inlineCallbacks
    def test_silenceRelease(self):
        """
        A session that stops receiving is released after the silence
        timeout; its ports stop forwarding and can be bound again.
        """
        relay = self.makeRelay(silenceTimeout=0.4, checkInterval=0.1)
        self.relay.stop()
        session = relay.allocate("quiet")
        a, b = Endpoint(self), Endpoint(self)
        session.setRemote(1, HOST, b.address[1])
        for i in range(3):
            a.send(session.ports[0][0], rtp(i))
            yield turn(0.15)
        self.assertIsNone(session.released)
        reason = yield session.whenReleased()
        self.assertEqual(reason, "silence")
        yield turn(0.05)
        b.drain()
        a.send(session.ports[0][0], rtp(9))
        [toB] = yield self.settle([b])
        self.assertEqual(toB, [])
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(probe.close)
        probe.bind((HOST, session.ports[0][0]))

    @defer.inlineCallbacks
    def test_exhaustion(self):
        """
        A small range runs out with L{MediaExhausted}; releasing a session
        makes room again, on ports that work.
        """
        self.relay.stop()
        relay = self.makeRelay(size=8, maxSessions=100)
        sessions = [relay.allocate("c%d" % i) for i in range(2)]
        e = self.assertRaises(MediaExhausted, relay.allocate, "c2")
        self.assertIn("no free RTP port pair", str(e))
        sessions[0].release()
        yield turn(0.05)
        again = relay.allocate("c3")
        a, b = Endpoint(self), Endpoint(self)
        again.setRemote(1, HOST, b.address[1])
        a.send(again.ports[0][0], rtp(1))
        yield self.receive(b)
        self.assertEqual(relay.stats()["exhausted"], 1)

    @defer.inlineCallbacks
    def test_sessionsApart(self):
        """
        Two calls never see each other's packets.
        """
        one = yield self.call()
        two = yield self.call()
        for session, a, b in (one, two):
            a.send(session.ports[0][0], rtp(7, payload=b"%d" % session.id * 10))
        for session, a, b in (one, two):
            [(data, source)] = yield self.receive(b)
            self.assertEqual(data[12:], b"%d" % session.id * 10)
        [extra1, extra2] = yield self.settle([one[2], two[2]])
        self.assertEqual((extra1, extra2), ([], []))

    @defer.inlineCallbacks
    def test_secondAddress(self):
        """
        A relay bound to two loopback addresses forwards on both, each
        session from its own address.
        """
        self.relay.stop()
        self.relay = self.makeRelay(bindAddress=[HOST, "127.0.0.2"])
        yield self.call()
        session = self.relay.allocate("second")
        self.assertEqual(session.localAddress, "127.0.0.2")
        a, b = Endpoint(self), Endpoint(self)
        session.setRemote(1, HOST, b.address[1])
        a.sock.sendto(rtp(1), ("127.0.0.2", session.ports[0][0]))
        [(data, source)] = yield self.receive(b)
        self.assertEqual(source, ("127.0.0.2", session.ports[1][0]))

    @defer.inlineCallbacks
    def test_floodUnharmed(self):
        """
        A flood from a third address and of junk is dropped and counted
        packet for packet, while the call's own packets keep flowing.
        """
        session, a, b = yield self.call()
        intruder = Endpoint(self)
        port = session.ports[0][0]
        sent = 0
        for burst in range(20):
            for i in range(50):
                intruder.send(port, rtp(i, ssrc=0x666))
                intruder.send(port, b"\xff" * 40)
            sent += 50
            a.send(port, rtp(burst + 1, 160 * (burst + 1)))
            yield self.waitForCount(session, 0, "droppedMalformed", sent)
        yield self.waitForCount(session, 0, "droppedForeign", sent)
        got = yield self.receive(b, 20)
        self.assertEqual([data[2:4] for data, _ in got],
                         [struct.pack("!H", i + 1) for i in range(20)])
        stats = session.stats()[0]
        self.assertEqual((stats["droppedForeign"], stats["droppedMalformed"], stats["packets"],
                          stats["lost"]), (1000, 1000, 21, 0))

    @defer.inlineCallbacks
    def test_releaseStopsForwarding(self):
        """
        After BYE nothing is forwarded, and the ports are free again.
        """
        session, a, b = yield self.call()
        session.release()
        yield turn(0.05)
        a.send(session.ports[0][0], rtp(5))
        [toB] = yield self.settle([b])
        self.assertEqual(toB, [])
        for rtpPort, rtcpPort in session.ports:
            for number in (rtpPort, rtcpPort):
                probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self.addCleanup(probe.close)
                probe.bind((HOST, number))


class CThreadRelayTests(RelaySocketTestsMixin, TestCase):
    """
    The Cython loop in its own thread.
    """

    useExtension = True
    threaded = True


class CReactorRelayTests(RelaySocketTestsMixin, TestCase):
    """
    The Cython loop in the reactor's thread.
    """

    useExtension = True
    threaded = False


class PythonRelayTests(RelaySocketTestsMixin, TestCase):
    """
    The pure-Python fallback.
    """

    useExtension = False
