# -*- test-case-name: tests.media.test_bridging -*-
"""
IPv4/IPv6 bridging on real sockets: a session whose legs are of different
families (an endpoint on C{::1}, the other on C{127.0.0.1}), with the same
assertions for every loop, as L{tests.media.test_sockets}.  Skipped when
the machine has no IPv6 loopback.
"""

import errno
import socket

from twisted.internet import defer
from twisted.trial.unittest import SkipTest, TestCase

from cgpro.media.interfaces import MediaExhausted
from cgpro.media.relay import bindUDPPair
from tests.media.test_sockets import (HOST, HOST6, Endpoint, RelaySocketTestBase, rtcp, rtp,
                                      turn)


def _hasIPv6Loopback():
    """
    @return: whether a UDP socket can be bound on C{::1}.
    """
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind((HOST6, 0))
    except OSError:
        return False
    return True


HAS_IPV6 = _hasIPv6Loopback()


class BridgeSocketTestsMixin(RelaySocketTestBase):
    """
    The bridging assertions shared by every implementation; the relay has
    its IPv4 legs on 127.0.0.1 and its IPv6 legs on ::1.
    """

    def setUp(self):
        if not HAS_IPV6:
            raise SkipTest("no IPv6 loopback (::1) on this machine")
        RelaySocketTestBase.setUp(self)

    def makeRelay(self, size=40, **kw):
        kw.setdefault("bindAddress6", HOST6)
        return RelaySocketTestBase.makeRelay(self, size, **kw)

    @defer.inlineCallbacks
    def test_mixedForwardBothWays(self):
        """
        An IPv6 caller and an IPv4 callee: each one's packets reach the
        other unchanged, from the relay's address of the receiver's family;
        each leg latches its endpoint, the IPv6 host unbracketed.
        """
        session, a, b = yield self.call([6, 4])
        self.assertEqual((session.addressOf(0), session.addressOf(1), session.localAddress),
                         (HOST6, HOST, HOST))
        packet = rtp(1, 160, payload=b"six" * 50)
        a.send(session.ports[0][0], packet)
        [(data, source)] = yield self.receive(b)
        self.assertEqual((data, source), (packet, (HOST, session.ports[1][0])))
        reply = rtp(1, 160, ssrc=0x5678, payload=b"four" * 40)
        b.send(session.ports[1][0], reply)
        [(data, source)] = yield self.receive(a)
        self.assertEqual((data, source), (reply, (HOST6, session.ports[0][0])))
        [leg0, leg1] = session.stats()
        self.assertEqual((leg0["family"], leg0["remote"]), (6, a.address))
        self.assertEqual((leg1["family"], leg1["remote"]), (4, b.address))
        self.assertEqual(a.address[0], "::1")
        self.assertEqual((leg0["packets"], leg0["forwarded"], leg1["packets"],
                          leg1["forwarded"]), (2, 1, 2, 2))

    @defer.inlineCallbacks
    def test_ipv4CallerIPv6Callee(self):
        """
        The other way round, with the callee's address from its SDP (before
        it sends) and RTCP to the next port, then latched.
        """
        session = self.relay.allocate("call", families=[4, 6])
        a, b = Endpoint(self), Endpoint(self, HOST6)
        session.setRemote(1, HOST6, b.address[1])
        a.send(session.ports[0][0], rtp(0))
        [(data, source)] = yield self.receive(b)
        self.assertEqual(source, (HOST6, session.ports[1][0]))
        self.assertIsNone(session.stats()[1]["remote"])
        b.send(session.ports[1][0], rtp(0, ssrc=0x5678))
        [(data, source)] = yield self.receive(a)
        self.assertEqual(source, (HOST, session.ports[0][0]))
        self.assertEqual(session.stats()[1]["remote"], b.address)

    @defer.inlineCallbacks
    def test_mixedRtcp(self):
        """
        RTCP crosses the families between the odd ports too.
        """
        session, a, b = yield self.call([6, 4])
        a.send(session.ports[0][1], rtcp())
        yield self.waitForCount(session, 0, "rtcpPackets", 1)
        b.send(session.ports[1][1], rtcp(0x5678))
        [(data, source)] = yield self.receive(a)
        self.assertEqual((data, source), (rtcp(0x5678), (HOST6, session.ports[0][1])))
        a.send(session.ports[0][1], rtcp())
        [(data, source)] = yield self.receive(b)
        self.assertEqual((data, source), (rtcp(), (HOST, session.ports[1][1])))
        self.assertEqual(session.stats()[0]["rtcpRemote"], a.address)

    @defer.inlineCallbacks
    def test_bothIPv6(self):
        """
        A session of two IPv6 legs forwards between them.
        """
        session, a, b = yield self.call([6, 6])
        self.assertEqual((session.addressOf(0), session.addressOf(1)), (HOST6, HOST6))
        a.send(session.ports[0][0], rtp(1))
        [(data, source)] = yield self.receive(b)
        self.assertEqual(source, (HOST6, session.ports[1][0]))

    @defer.inlineCallbacks
    def test_ipv6ThirdAddressDropped(self):
        """
        Once the IPv6 endpoint is latched, packets from another IPv6 source
        (::1, another port) are dropped, counted, not forwarded, and do not
        move the latch: the IPv4 side's packets still go to the first.
        """
        session, a, b = yield self.call([6, 4])
        intruder = Endpoint(self, HOST6)
        for seq in range(5):
            intruder.send(session.ports[0][0], rtp(100 + seq, ssrc=0x666))
        yield self.waitForCount(session, 0, "droppedForeign", 5)
        [toB] = yield self.settle([b])
        self.assertEqual(toB, [])
        stats = session.stats()[0]
        self.assertEqual((stats["packets"], stats["remote"], stats["droppedForeign"]),
                         (1, a.address, 5))
        b.send(session.ports[1][0], rtp(1))
        [(data, source)] = yield self.receive(a)
        [toIntruder] = yield self.settle([intruder])
        self.assertEqual(toIntruder, [])

    @defer.inlineCallbacks
    def test_ipv6Relatch(self):
        """
        A re-INVITE's setRemote (an IPv6 host, in brackets as in a URI)
        forgets the IPv6 latch: the IPv4 side's packets go to the new
        address, whose first packet latches; the old one is then foreign.
        """
        session, a, b = yield self.call([6, 4])
        moved = Endpoint(self, HOST6)
        session.setRemote(0, "[::1]", moved.address[1])
        b.send(session.ports[1][0], rtp(1))
        [(data, source)] = yield self.receive(moved)
        self.assertEqual(source, (HOST6, session.ports[0][0]))
        moved.send(session.ports[0][0], rtp(500, ssrc=0x9999))
        yield self.receive(b)
        self.assertEqual(session.stats()[0]["remote"], moved.address)
        a.send(session.ports[0][0], rtp(2))
        yield self.waitForCount(session, 0, "droppedForeign", 1)
        [toB, toA] = yield self.settle([b, a])
        self.assertEqual((toB, toA), ([], []))

    def test_setRemoteFamily(self):
        """
        A leg only takes an address of its own family; scoped and
        IPv4-mapped IPv6 addresses are refused.
        """
        session = self.relay.allocate("call", families=[6, 4])
        for leg, host in [(0, HOST), (1, HOST6), (0, "fe80::1%lo"), (0, "::ffff:127.0.0.1"),
                          (0, "localhost")]:
            e = self.assertRaises(ValueError, session.setRemote, leg, host, 5004)
            self.assertIn("leg %d is IPv%d" % (leg, 6 - 2 * leg), str(e))

    def test_engineChecksFamily(self):
        """
        The loop itself takes only an address of a slot's family (the
        relay checks before, with a better message).
        """
        session = self.relay.allocate("call", families=[6, 4])
        six, _, four, _ = session.slots()
        self.assertRaises(ValueError, self.relay.engine.setRemote, six, HOST, 5004)
        self.assertRaises(ValueError, self.relay.engine.setRemote, four, HOST6, 5004)
        self.relay.engine.setRemote(six, "::2", 5004)
        self.relay.engine.setRemote(four, "127.0.0.2", 5004)

    def test_noIPv6Address(self):
        """
        Without an IPv6 address an IPv6 leg is refused with
        L{MediaExhausted} naming the setting, counted, and nothing is bound.
        """
        self.relay.stop()
        relay = self.makeRelay(bindAddress6=None)
        e = self.assertRaises(MediaExhausted, relay.allocate, "call", families=[6, 4])
        self.assertIn("no IPv6 media address configured (MediaIPv6Address)", str(e))
        stats = relay.stats()
        self.assertEqual((stats["exhausted"], stats["portPairsInUse"], stats["sessions"]),
                         (1, 0, 0))
        relay.allocate("call", families=[4, 4])

    def test_badFamilies(self):
        """
        families must give 4 or 6 for each leg.
        """
        for families in ([6], [6, 4, 4], [6, 5], ["6", 4]):
            self.assertRaises(ValueError, self.relay.allocate, "call", families=families)
        self.assertEqual(self.relay.stats()["portPairsInUse"], 0)

    @defer.inlineCallbacks
    def test_ipv6Exhaustion(self):
        """
        The IPv6 address has the range of its own: when it runs out, an
        IPv6 leg is refused (saying IPv6) while IPv4-only sessions still get
        ports, and a refused mixed session holds no IPv4 pair.  Releasing
        makes room, on IPv6 ports that bind again.
        """
        self.relay.stop()
        relay = self.makeRelay(size=8, maxSessions=100)
        sessions = [relay.allocate("c%d" % i, families=[6, 6]) for i in range(2)]
        e = self.assertRaises(MediaExhausted, relay.allocate, "c2", families=[6, 4])
        self.assertIn("no free IPv6 RTP port pair", str(e))
        self.assertEqual(relay.stats()["portPairsInUse"], 4)
        relay.allocate("v4", families=[4, 4])
        relay.allocate("v4", families=[4, 4])
        sessions[0].release()
        yield turn(0.05)
        for rtpPort, rtcpPort in sessions[0].ports:
            for number in (rtpPort, rtcpPort):
                with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
                    probe.bind((HOST6, number))
        e = self.assertRaises(MediaExhausted, relay.allocate, "mixed", families=[6, 4])
        self.assertIn("no free RTP port pair", str(e))
        self.assertEqual(relay.stats()["portPairsInUse"], 6)
        again = relay.allocate("c3", families=[6, 6])
        a, b = Endpoint(self, HOST6), Endpoint(self, HOST6)
        again.setRemote(1, HOST6, b.address[1])
        a.send(again.ports[0][0], rtp(1))
        yield self.receive(b)

    def test_v6OnlySockets(self):
        """
        The relay's IPv6 sockets are IPv6-only: the same port numbers can
        be bound on all IPv4 addresses and on all IPv6 addresses at once.
        """
        port = self.low + 60
        try:
            six = bindUDPPair("::", port)
            four = bindUDPPair("0.0.0.0", port)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise SkipTest("port %d is taken" % (port,))
            raise
        for sock in six + four:
            self.addCleanup(sock.close)
        self.assertEqual([s.family for s in six + four],
                         [socket.AF_INET6] * 2 + [socket.AF_INET] * 2)
        self.assertEqual(six[0].getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY), 1)


class CThreadBridgeTests(BridgeSocketTestsMixin, TestCase):
    """
    Bridging in the Cython loop in its own thread.
    """

    useExtension = True
    threaded = True


class CReactorBridgeTests(BridgeSocketTestsMixin, TestCase):
    """
    Bridging in the Cython loop in the reactor's thread.
    """

    useExtension = True
    threaded = False


class PythonBridgeTests(BridgeSocketTestsMixin, TestCase):
    """
    Bridging in the pure-Python fallback.
    """

    useExtension = False
