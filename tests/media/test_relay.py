# -*- test-case-name: tests.media.test_relay -*-
"""
Tests for L{cgpro.media.relay}: allocation, limits, silence timeouts and
statistics, on a L{Clock} with a fake engine and fake sockets (no packet is
sent here; L{tests.media.test_sockets} forwards real ones).
"""

import os

from zope.interface import implementer
from zope.interface.verify import verifyObject

from twisted.internet.task import Clock
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from cgpro.media import relay as relayModule
from cgpro.media._fallback import MAX_DROPOUT, PythonEngine, RtpStatistics
from cgpro.media.interfaces import IMediaRelay, IMediaSession, IRelayEngine, MediaExhausted
from cgpro.media.relay import MediaRelay

try:
    from cgpro.media._relay import CEngine
except ImportError:
    CEngine = None

_KEYS = ("packets", "bytes", "forwarded", "droppedForeign", "droppedMalformed",
         "droppedNoRoute", "droppedSendError")


class FakeSocket:
    """
    Stands for a bound UDP socket.
    """

    def __init__(self, port, host="127.0.0.1"):
        self.port = port
        self.host = host
        self.closed = False

    def fileno(self):
        return -1

    def close(self):
        self.closed = True


class FakeBinder:
    """
    A C{bindPair} that binds nothing; ports in C{taken} (on any address)
    or C{(host, port)}s in it fail like a port another program holds.
    """

    def __init__(self):
        self.taken = set()
        self.opened = []

    def __call__(self, host, port):
        if {port, port + 1, (host, port), (host, port + 1)} & self.taken:
            raise OSError(98, "Address already in use")
        pair = (FakeSocket(port, host), FakeSocket(port + 1, host))
        self.opened.extend(pair)
        return pair


@implementer(IRelayEngine)
class FakeEngine:
    """
    An L{IRelayEngine} recording what the relay asks; tests set counters.
    """

    name = "fake"

    def __init__(self):
        self.running = False
        self.slots = {}
        self.remotes = {}

    def start(self):
        self.running = True

    def stop(self):
        self.running = False
        self.slots.clear()

    def addSocket(self, slot, sock, peerSlot, rtcp, clockRate):
        counters = dict.fromkeys(_KEYS, 0)
        counters.update(ssrc=0, lost=0, jitter=0.0, remote=None)
        self.slots[slot] = dict(sock=sock, peer=peerSlot, rtcp=rtcp, clockRate=clockRate,
                                counters=counters)

    def setRemote(self, slot, host, port):
        self.remotes[slot] = (host, port)

    def removeSocket(self, slot):
        del self.slots[slot]

    def packetCounts(self):
        return {slot: entry["counters"]["packets"] for slot, entry in self.slots.items()}

    def counters(self, slot):
        return dict(self.slots[slot]["counters"])


class MediaRelayTests(SynchronousTestCase):
    """
    The relay's policy over a fake engine.
    """

    def setUp(self):
        self.clock = Clock()
        self.engine = FakeEngine()
        self.binder = FakeBinder()

    def relay(self, portRange=(40000, 40019), **kw):
        kw.setdefault("silenceTimeout", 30)
        relay = MediaRelay(self.clock, portRange=portRange, bindAddress="127.0.0.1",
                           engine=self.engine, bindPair=self.binder, **kw)
        self.addCleanup(relay.stop)
        return relay

    def test_interfaces(self):
        """
        The relay, its sessions and every engine provide their interfaces.
        """
        relay = self.relay()
        verifyObject(IMediaRelay, relay)
        verifyObject(IMediaSession, relay.allocate("call-1"))
        verifyObject(IRelayEngine, PythonEngine(self.clock, 10))
        if CEngine is not None:
            verifyObject(IRelayEngine, CEngine(self.clock, 10))

    def test_allocateLegs(self):
        """
        A two-leg session gets two (even, odd) pairs from the range; each
        leg's RTP socket forwards out of the other leg's RTP socket, RTCP
        likewise; slots are offsets in the range.
        """
        relay = self.relay()
        session = relay.allocate("call-1")
        self.assertEqual(session.ports, [(40000, 40001), (40002, 40003)])
        self.assertEqual(session.localAddress, "127.0.0.1")
        self.assertEqual(session.callId, "call-1")
        self.assertTrue(self.engine.running)
        slots = self.engine.slots
        self.assertEqual(sorted(slots), [0, 1, 2, 3])
        self.assertEqual((slots[0]["peer"], slots[2]["peer"]), (2, 0))
        self.assertEqual((slots[1]["peer"], slots[3]["peer"]), (3, 1))
        self.assertEqual([slots[i]["rtcp"] for i in range(4)], [False, True, False, True])
        self.assertEqual(slots[0]["sock"].port, 40000)
        self.assertEqual(relay.sessions(), [session])

    def test_fourLegs(self):
        """
        Legs forward pairwise: 0 with 1, 2 with 3.  An odd count is refused.
        """
        relay = self.relay()
        session = relay.allocate("conf", legs=4)
        self.assertEqual(len(session.ports), 4)
        self.assertEqual(self.engine.slots[4]["peer"], 6)
        self.assertRaises(ValueError, relay.allocate, "x", legs=3)

    def test_uniqueIds(self):
        """
        Session ids are unique even for the same Call-ID.
        """
        relay = self.relay()
        self.assertNotEqual(relay.allocate("a").id, relay.allocate("a").id)

    def test_setRemote(self):
        """
        setRemote gives the engine the RTP address and, by default, RTCP on
        the next port; bad input is refused.
        """
        relay = self.relay()
        session = relay.allocate("call-1")
        session.setRemote(1, "192.0.2.7", 5004)
        self.assertEqual(self.engine.remotes, {2: ("192.0.2.7", 5004), 3: ("192.0.2.7", 5005)})
        session.setRemote(0, "192.0.2.8", 6000, rtcpPort=7000)
        self.assertEqual(self.engine.remotes[1], ("192.0.2.8", 7000))
        self.assertRaises(IndexError, session.setRemote, 2, "192.0.2.7", 5004)
        self.assertRaises(IndexError, session.setRemote, -1, "192.0.2.7", 5004)
        self.assertRaises(ValueError, session.setRemote, 0, "not-an-ip", 5004)
        self.assertRaises(ValueError, session.setRemote, 0, "192.0.2.7", 0)
        session.release()
        self.assertRaises(ValueError, session.setRemote, 0, "192.0.2.7", 5004)

    def test_releaseFreesEverything(self):
        """
        release (BYE) removes the sockets from the engine, closes them, gives
        the ports back and fires L{whenReleased}; twice is harmless.
        """
        relay = self.relay()
        session = relay.allocate("call-1")
        fired = []
        session.whenReleased().addCallback(fired.append)
        session.release()
        session.release()
        self.assertEqual(fired, ["bye"])
        self.assertEqual(session.released, "bye")
        self.assertEqual(self.engine.slots, {})
        self.assertTrue(all(sock.closed for sock in self.binder.opened))
        self.assertEqual(relay.sessions(), [])
        self.assertEqual(relay.stats()["portPairsInUse"], 0)
        self.assertEqual(relay.stats()["releasedBye"], 1)
        self.assertEqual(self.successResultOf(session.whenReleased()), "bye")

    def test_sessionLimit(self):
        """
        maxSessions is a hard limit, with a clear error, counted.
        """
        relay = self.relay(maxSessions=2)
        first = relay.allocate("a")
        relay.allocate("b")
        e = self.assertRaises(MediaExhausted, relay.allocate, "c")
        self.assertIn("session limit reached (2 active, maxSessions=2)", str(e))
        self.assertEqual(relay.stats()["exhausted"], 1)
        first.release()
        relay.allocate("c")

    def test_defaultLimit(self):
        """
        By default the limit is what the range holds for two-leg calls.
        """
        relay = self.relay(portRange=(40000, 40099))
        self.assertEqual(relay.maxSessions, 25)

    def test_portsExhausted(self):
        """
        When the range runs out of pairs the error names the range; sockets
        bound for the failed allocation are closed and nothing leaks.
        """
        relay = self.relay(portRange=(40000, 40009), maxSessions=10)
        relay.allocate("a")
        relay.allocate("b", legs=2)
        opened = len(self.binder.opened)
        e = self.assertRaises(MediaExhausted, relay.allocate, "c")
        self.assertIn("no free RTP port pair in 40000-40009", str(e))
        self.assertTrue(all(s.closed for s in self.binder.opened[opened:]))
        self.assertEqual(relay.stats()["portPairsInUse"], 4)
        self.assertEqual(relay.stats()["exhausted"], 1)

    def test_portTakenSkipped(self):
        """
        A pair another program holds is skipped.
        """
        self.binder.taken.add(40003)
        relay = self.relay()
        session = relay.allocate("a")
        self.assertEqual(session.ports, [(40000, 40001), (40004, 40005)])

    def test_severalAddresses(self):
        """
        With several bind addresses each has the whole range; sessions take
        them in turn, all legs of a session on one address, and a full
        address is passed over.
        """
        relay = MediaRelay(self.clock, portRange=(40000, 40011), engine=self.engine,
                           bindAddress=["127.0.0.1", "127.0.0.2"], bindPair=self.binder,
                           silenceTimeout=None)
        self.addCleanup(relay.stop)
        self.assertEqual((relay.maxSessions, relay.stats()["portPairs"]), (6, 12))
        one = relay.allocate("a")
        two = relay.allocate("b")
        self.assertEqual((one.localAddress, two.localAddress), ("127.0.0.1", "127.0.0.2"))
        self.assertEqual(one.ports, two.ports)
        self.assertEqual(two.slots(), [12, 13, 14, 15])
        self.assertEqual(self.engine.slots[12]["peer"], 14)
        self.assertEqual(relay.allocate("c", legs=4).localAddress, "127.0.0.1")
        self.assertEqual(relay.allocate("d").localAddress, "127.0.0.2")
        self.assertEqual(relay.allocate("e").localAddress, "127.0.0.2")
        e = self.assertRaises(MediaExhausted, relay.allocate, "f")
        self.assertIn("no address has 2 free RTP port pairs in 40000-40011 (2 addresses, "
                      "12 pairs, 12 in use)", str(e))
        self.assertEqual(relay.stats()["portPairsInUse"], 12)

    def dualRelay(self, portRange=(40000, 40019), **kw):
        """
        @return: a relay on 127.0.0.1 and ::1.
        """
        return self.relay(portRange, bindAddress6="::1", **kw)

    def test_mixedFamilies(self):
        """
        An IPv6 leg is bound on the IPv6 address, with the range of its own
        (the same port numbers as the IPv4 leg) and slots after the IPv4
        address's; the two legs forward to each other across the families.
        """
        relay = self.dualRelay()
        self.assertEqual((relay.addresses, relay.index6), (["127.0.0.1", "::1"], 1))
        session = relay.allocate("call-1", families=[6, 4])
        self.assertEqual(session.ports, [(40000, 40001), (40000, 40001)])
        self.assertEqual(session.families, [6, 4])
        self.assertEqual((session.addressOf(0), session.addressOf(1), session.localAddress),
                         ("::1", "127.0.0.1", "127.0.0.1"))
        self.assertRaises(IndexError, session.addressOf, 2)
        self.assertEqual(session.slots(), [20, 21, 0, 1])
        slots = self.engine.slots
        self.assertEqual((slots[20]["peer"], slots[0]["peer"]), (0, 20))
        self.assertEqual((slots[21]["peer"], slots[1]["peer"]), (1, 21))
        self.assertEqual((slots[20]["sock"].host, slots[0]["sock"].host), ("::1", "127.0.0.1"))
        self.assertEqual([leg["family"] for leg in session.stats()], [6, 4])
        other = relay.allocate("call-2", families=[4, 6])
        self.assertEqual(other.ports, [(40002, 40003), (40002, 40003)])
        self.assertEqual(other.slots(), [2, 3, 22, 23])
        self.assertEqual(relay.stats()["portPairsInUse"], 4)
        session.release()
        self.assertEqual(relay.stats()["portPairsInUse"], 2)
        self.assertEqual(relay.allocate("call-3", families=[6, 6]).ports,
                         [(40004, 40005), (40006, 40007)])

    def test_ipv6Only(self):
        """
        A session without IPv4 leg takes no IPv4 pair, does not move the
        IPv4 address rotation, and its localAddress is the IPv6 address.
        """
        relay = self.dualRelay()
        session = relay.allocate("v6", families=[6, 6])
        self.assertEqual(session.localAddress, "::1")
        self.assertEqual(relay.allocators[0].inUse(), 0)
        self.assertEqual(relay.allocate("v4").ports, [(40000, 40001), (40002, 40003)])

    def test_setRemoteIPv6(self):
        """
        An IPv6 leg takes an IPv6 host (in brackets or not), given to the
        engine in canonical form; an IPv4 leg refuses it, and the other way
        round.
        """
        relay = self.dualRelay()
        session = relay.allocate("call", families=[6, 4])
        session.setRemote(0, "[2001:DB8:0:0::7]", 5004)
        self.assertEqual(self.engine.remotes[20], ("2001:db8::7", 5004))
        self.assertEqual(self.engine.remotes[21], ("2001:db8::7", 5005))
        session.setRemote(1, "192.0.2.7", 6000)
        self.assertEqual(self.engine.remotes[0], ("192.0.2.7", 6000))
        for leg, host in [(0, "192.0.2.7"), (1, "2001:db8::7"), (0, "fe80::1%eth0"),
                          (0, "::ffff:192.0.2.7"), (0, None)]:
            e = self.assertRaises(ValueError, session.setRemote, leg, host, 5004)
            self.assertIn("media session %d: leg %d is IPv%d" % (session.id, leg, 6 - 2 * leg),
                          str(e))

    def test_noIPv6Address(self):
        """
        Without bindAddress6, an IPv6 leg is refused with a
        L{MediaExhausted} naming the setting; nothing is bound, and it is
        counted.
        """
        relay = self.relay()
        self.assertIsNone(relay.bindAddress6)
        e = self.assertRaises(MediaExhausted, relay.allocate, "a", families=[4, 6])
        self.assertEqual(str(e), "media relay: no IPv6 media address configured "
                                 "(MediaIPv6Address): cannot relay an IPv6 leg")
        self.assertEqual((self.binder.opened, relay.stats()["exhausted"]), ([], 1))

    def test_badFamilies(self):
        """
        families must give 4 or 6 for each leg; families=None is all IPv4.
        """
        relay = self.dualRelay()
        for families in ([6], [4, 6, 6], [4, 5], [4, "6"]):
            self.assertRaises(ValueError, relay.allocate, "a", families=families)
        self.assertEqual(relay.allocate("a", families=None).families, [4, 4])
        self.assertEqual(relay.allocate("b", legs=4, families=(6, 4, 4, 4)).families,
                         [6, 4, 4, 4])

    def test_badBindAddress6(self):
        """
        bindAddress6 must be an IPv6 address.
        """
        self.assertRaises(ValueError, self.relay, bindAddress6="127.0.0.1")

    def test_ipv6Capacity(self):
        """
        The IPv6 address's range counts in the capacity, hence the default
        session limit.
        """
        relay = self.dualRelay(portRange=(40000, 40099))
        self.assertEqual((relay.stats()["portPairs"], relay.maxSessions), (100, 50))

    def test_ipv4ExhaustedReleasesIPv6(self):
        """
        When the IPv6 pairs are taken but the IPv4 ones are not there, the
        IPv6 ones are given back and their sockets closed.
        """
        relay = self.dualRelay(portRange=(40000, 40003), maxSessions=10)
        relay.allocate("v4", families=[4, 4])
        opened = len(self.binder.opened)
        e = self.assertRaises(MediaExhausted, relay.allocate, "mixed", families=[6, 4])
        self.assertIn("no free RTP port pair in 40000-40003", str(e))
        self.assertEqual(len(self.binder.opened), opened + 2)
        self.assertTrue(all(s.closed for s in self.binder.opened[opened:]))
        self.assertEqual((relay.allocators[1].inUse(), relay.stats()["exhausted"]), (0, 1))

    def test_ipv6Exhausted(self):
        """
        The IPv6 range's exhaustion says IPv6; an IPv6 port taken by
        another program is skipped on the IPv6 address only.
        """
        self.binder.taken.add(("::1", 40000))
        relay = self.dualRelay(portRange=(40000, 40005), maxSessions=10)
        session = relay.allocate("a", families=[6, 4])
        self.assertEqual(session.ports, [(40002, 40003), (40000, 40001)])
        e = self.assertRaises(MediaExhausted, relay.allocate, "b", families=[6, 6])
        self.assertIn("no free IPv6 RTP port pair in 40000-40005", str(e))
        self.assertEqual(relay.allocators[0].inUse(), 1)

    def test_addressUnusable(self):
        """
        An address the host cannot bind (not its own, no IPv6) is refused
        at its first port, saying which; another IPv4 address is tried.
        """
        relay = MediaRelay(self.clock, portRange=(40000, 40011), engine=self.engine,
                           bindAddress=["192.0.2.1", "127.0.0.1"], bindAddress6="2001:db8::1",
                           bindPair=self.binder, silenceTimeout=None)
        self.addCleanup(relay.stop)
        calls = []

        def bindPair(host, port):
            calls.append((host, port))
            if host != "127.0.0.1":
                raise OSError(99, "Cannot assign requested address")
            return self.binder(host, port)

        relay.bindPair = bindPair
        self.assertEqual(relay.allocate("a").localAddress, "127.0.0.1")
        self.assertEqual(calls, [("192.0.2.1", 40000), ("127.0.0.1", 40000),
                                 ("127.0.0.1", 40002)])
        del calls[:]
        e = self.assertRaises(MediaExhausted, relay.allocate, "b", families=[6, 4])
        self.assertIn("cannot bind 2001:db8::1 (Cannot assign requested address)", str(e))
        self.assertEqual(calls, [("2001:db8::1", 40000)])
        self.assertEqual(relay.stats()["portPairsInUse"], 2)

    def test_hostHasIPv6(self):
        """
        hostHasIPv6 says whether an IPv6 socket can be bound.
        """
        self.assertIsInstance(relayModule.hostHasIPv6(), bool)
        self.patch(relayModule.socket, "has_ipv6", False)
        self.assertFalse(relayModule.hostHasIPv6())

    def test_descriptorsExhausted(self):
        """
        Running out of file descriptors is a L{MediaExhausted} saying so at
        once, without trying every other port.
        """
        relay = self.relay()
        calls = []

        def bindPair(host, port):
            calls.append(port)
            raise OSError(24, "Too many open files")

        relay.bindPair = bindPair
        e = self.assertRaises(MediaExhausted, relay.allocate, "a")
        self.assertIn("Too many open files", str(e))
        self.assertIn("ulimit -n", str(e))
        self.assertEqual(calls, [40000])
        self.assertEqual(relay.stats()["portPairsInUse"], 0)

    def test_engineRefusesSocket(self):
        """
        If the engine cannot take a socket, the allocation leaves nothing
        behind: sockets closed and removed, ports free.
        """
        relay = self.relay()
        original = self.engine.addSocket

        def addSocket(slot, *args):
            if slot == 2:
                raise OSError(28, "No space left on device")
            original(slot, *args)

        self.engine.addSocket = addSocket
        self.assertRaises(OSError, relay.allocate, "a")
        self.assertEqual(self.engine.slots, {})
        self.assertTrue(all(sock.closed for sock in self.binder.opened))
        self.assertEqual((relay.stats()["portPairsInUse"], relay.sessions()), (0, []))

    def test_silenceRelease(self):
        """
        A session with no new packet for silenceTimeout seconds is released
        (reason C{"silence"}); any packet restarts its count.
        """
        relay = self.relay(silenceTimeout=30, checkInterval=5)
        quiet = relay.allocate("quiet")
        busy = relay.allocate("busy")
        fired = []
        quiet.whenReleased().addCallback(fired.append)
        busySlot = busy.slots()[0]
        for _ in range(12):
            self.engine.slots[busySlot]["counters"]["packets"] += 1
            self.clock.advance(5)
            if fired:
                break
        self.assertEqual(fired, ["silence"])
        self.assertEqual(self.clock.seconds(), 30)
        self.assertIsNone(busy.released)
        self.clock.advance(25)
        self.assertIsNone(busy.released)
        self.clock.advance(5)
        self.assertEqual(busy.released, "silence")
        self.assertEqual(relay.stats()["releasedSilence"], 2)

    def test_noSilenceTimeout(self):
        """
        silenceTimeout=None keeps sessions forever.
        """
        relay = self.relay(silenceTimeout=None)
        session = relay.allocate("a")
        self.clock.advance(86400)
        self.assertIsNone(session.released)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stop(self):
        """
        stop releases every session (reason C{"stop"}) and the engine; the
        silence check stops; the relay can start again.
        """
        relay = self.relay()
        session = relay.allocate("a")
        self.successResultOf(relay.stop())
        self.assertEqual(session.released, "stop")
        self.assertFalse(self.engine.running)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        relay.allocate("b")
        self.assertTrue(self.engine.running)

    def test_service(self):
        """
        As a service, starting starts the engine; stopping releases all.
        """
        relay = self.relay()
        relay.startService()
        self.assertTrue(self.engine.running)
        session = relay.allocate("a")
        self.successResultOf(relay.stopService())
        self.assertEqual(session.released, "stop")

    def test_stats(self):
        """
        Session stats join each leg's RTP and RTCP counters; relay stats sum
        active sessions and keep the totals of released ones.
        """
        relay = self.relay()
        session = relay.allocate("a", clockRate=16000)
        counters = [self.engine.slots[slot]["counters"] for slot in session.slots()]
        counters[0].update(packets=10, bytes=1720, forwarded=9, droppedNoRoute=1, lost=2,
                           jitter=32.0, ssrc=7, remote=("192.0.2.1", 4000), droppedForeign=3)
        counters[1].update(packets=1, bytes=80, forwarded=1, droppedMalformed=4)
        counters[2].update(packets=5, bytes=860, forwarded=5)
        [leg0, leg1] = session.stats()
        self.assertEqual((leg0["rtpPort"], leg0["family"]), (40000, 4))
        self.assertEqual(leg0["remote"], ("192.0.2.1", 4000))
        self.assertEqual((leg0["packets"], leg0["bytes"]), (10, 1720))
        self.assertEqual((leg0["rtcpPackets"], leg0["rtcpBytes"]), (1, 80))
        self.assertEqual(leg0["forwarded"], 10)
        self.assertEqual((leg0["lost"], leg0["jitter"], leg0["jitterMs"]), (2, 32.0, 2.0))
        self.assertEqual((leg0["droppedForeign"], leg0["droppedMalformed"],
                          leg0["droppedNoRoute"], leg0["dropped"]), (3, 4, 1, 8))
        self.assertEqual(leg1["packets"], 5)
        stats = relay.stats()
        self.assertEqual((stats["packets"], stats["bytes"], stats["dropped"],
                          stats["sessions"]), (15, 2580, 8, 1))
        session.release()
        stats = relay.stats()
        self.assertEqual((stats["packets"], stats["packetsTotal"], stats["forwardedTotal"]),
                         (0, 15, 15))
        self.assertEqual(stats["implementation"], "fake")


class ImplementationTests(SynchronousTestCase):
    """
    Choosing the Cython loop or the fallback.
    """

    def test_fallbackChosen(self):
        """
        useExtension=False uses the fallback, and says so in the log.
        """
        events = []
        from twisted.logger import globalLogPublisher
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        relay = MediaRelay(Clock(), portRange=(40000, 40009), useExtension=False)
        self.assertEqual(relay.implementation, "py")
        self.assertIsInstance(relay.engine, PythonEngine)
        self.assertTrue(any("pure-Python fallback" in e.get("log_format", "") for e in events))

    def test_extensionChosen(self):
        """
        By default the extension is used when it is built.
        """
        if relayModule.IMPLEMENTATION != "c":
            raise SkipTest("cgpro.media._relay is not built")
        relay = MediaRelay(Clock(), portRange=(40000, 40009))
        self.assertEqual(relay.implementation, "c")

    def test_extensionRequired(self):
        """
        useExtension=True without the extension is an ImportError, not a
        quiet fallback.
        """
        self.patch(relayModule, "_extension", None)
        self.patch(relayModule, "_whyNot", "not built (test)")
        e = self.assertRaises(ImportError, MediaRelay, Clock(), portRange=(40000, 40009),
                              useExtension=True)
        self.assertIn("not built (test)", str(e))

    def test_extensionLoaded(self):
        """
        With CGPRO_REQUIRE_EXTENSIONS=1 (the CI's accelerated run) the
        extension must have been built and loaded.
        """
        if os.environ.get("CGPRO_REQUIRE_EXTENSIONS") != "1":
            raise SkipTest("CGPRO_REQUIRE_EXTENSIONS is not 1")
        self.assertEqual(relayModule.IMPLEMENTATION, "c", relayModule._whyNot)


class RtpStatisticsTests(SynchronousTestCase):
    """
    The RFC 3550 sequence and jitter bookkeeping (the extension's C code is
    the same algorithm; L{tests.media.test_sockets} checks both agree).
    """

    def feed(self, seqs, ssrc=1, timestamps=None, arrivals=None):
        stats = RtpStatistics()
        for i, seq in enumerate(seqs):
            ts = timestamps[i] if timestamps else 160 * i
            arrival = arrivals[i] if arrivals else 160 * i
            stats.update(seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc, arrival)
        return stats

    def test_inOrder(self):
        """
        No gap, no loss; a constant pace has no jitter.
        """
        stats = self.feed(range(100))
        self.assertEqual((stats.lost(), stats.jitter), (0, 0.0))

    def test_gap(self):
        """
        A gap in the sequence is counted as lost.
        """
        self.assertEqual(self.feed([1, 2, 3, 6, 7, 10]).lost(), 4)

    def test_wrap(self):
        """
        The 16-bit sequence number wraps without a false loss.
        """
        stats = self.feed(range(65530, 65545))
        self.assertEqual((stats.lost(), stats.cycles), (0, 0x10000))

    def test_lateAndDuplicate(self):
        """
        A late packet fills its gap; a duplicate makes the loss negative,
        as RFC 3550 A.3 says.
        """
        self.assertEqual(self.feed([1, 2, 4, 3, 5]).lost(), 0)
        self.assertEqual(self.feed([1, 2, 2, 3]).lost(), -1)

    def test_restart(self):
        """
        A big jump is ignored once, then taken as a restart of the
        sequence when the next packet follows it.
        """
        jump = 3 + MAX_DROPOUT + 10
        stats = self.feed([1, 2, 3, jump, jump + 1, jump + 2])
        self.assertEqual(stats.lost(), 0)
        self.assertEqual(stats.received, 2)

    def test_newSsrc(self):
        """
        A new SSRC restarts the sequence; the old source's loss is kept.
        """
        stats = RtpStatistics()
        for seq in (1, 2, 5):
            stats.update(seq, 0, 1, 0)
        for seq in (900, 901):
            stats.update(seq, 0, 2, 0)
        self.assertEqual((stats.ssrc, stats.lost()), (2, 2))

    def test_jitter(self):
        """
        RFC 3550 A.8: J += (|D| - J) / 16, in timestamp units.
        """
        stats = self.feed(range(3), timestamps=[0, 160, 320], arrivals=[0, 160 + 32, 320])
        # D = 32 then -32: J = 2, then 2 + (32 - 2) / 16
        self.assertEqual(stats.jitter, 2 + 30 / 16)
