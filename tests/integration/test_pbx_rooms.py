# -*- test-case-name: tests.integration.test_pbx_rooms -*-
"""
End-to-end tests of the PBX applications that hold several callers at
once: C{conference} rooms and the C{acd} call queue, against the real
server (C{twistd}) with L{tests.support.rtp.Phone}s (SIP and RTP on real
sockets) and SIPp agents.  Whatever way a call ends, no task and no media
channel is left behind: the Prometheus exporter's C{cgpro_pbx_tasks},
C{cgpro_media_channels} and C{cgpro_pbx_conferences} go back to 0.
"""

import math
import struct
import time
import unittest

from twisted.trial.unittest import SynchronousTestCase

from cgpro.media import g711
from tests.support.pbx import PASSWORD, assertIdle, metric, pbxServer, phone, waitFor
from tests.support.rtp import promptFrames
from tests.support.sip import BackgroundSipp, freeUDPPort, haveSipp, runSipp, scenario

AGENT_MEDIA = 34568












def toneFrames(payloads, frequency=440.0, codec="PCMU"):
    """
    @return: how many 20 ms frames are mostly a C{frequency} tone (the
        L{tests.support.rtp.RTPEndpoint.speak} signal), by Goertzel.
    """
    count = 0
    k = 2 * math.cos(2 * math.pi * frequency / 8000)
    for payload in payloads:
        samples = struct.unpack("<%dh" % (len(payload),), g711.decode(payload, codec))
        energy = sum(s * s for s in samples)
        if energy < len(samples) * 200 ** 2:
            continue  # silence
        s1 = s2 = 0.0
        for x in samples:
            s1, s2 = x + k * s1 - s2, s1
        power = s1 * s1 + s2 * s2 - k * s1 * s2
        # a pure tone gives power ~ energy * N / 2
        if power > 0.25 * energy * len(samples) / 2:
            count += 1
    return count


def loudFrames(payloads, codec="PCMU", level=300):
    """@return: how many frames are not silence (RMS above C{level})."""
    count = 0
    for payload in payloads:
        samples = struct.unpack("<%dh" % (len(payload),), g711.decode(payload, codec))
        if samples and sum(s * s for s in samples) / len(samples) > level ** 2:
            count += 1
    return count


def heardFrames(endpoint, name, since=0):
    frames = set(promptFrames(name))
    return sum(1 for p in endpoint.payloads(0)[since:] if p in frames)


class ConferenceTests(SynchronousTestCase):
    """
    Three callers in a room: each is welcomed, hears the others and not
    himself; the room goes with the last one.
    """

    def test_threeParticipants(self):
        server, cli, port = pbxServer(self)
        cli.setRouterTable("<room1@*> = conference{room1}#pbx@localhost\n")
        phones = [phone(self, port, user) for user in ("alice", "bob", "carol")]
        for p in phones:
            response = p.call("room1@main.dom")
            self.assertEqual(response.code, 200, response.reason)
        for p in phones:
            self.assertTrue(p.rtp.waitHeard("conferencewelcome", timeout=10))
        a, b, c = phones
        # the room opens once the first caller's welcome prompt has ended
        self.assertTrue(waitFor(lambda: metric(server, "cgpro_pbx_conferences") == 1))
        time.sleep(0.8)  # the chimes end
        # alice heard the others join: the chime, mixed (not silence after her
        # welcome prompt, and no tone)
        welcome = set(promptFrames("conferencewelcome"))
        after = [p for p in a.rtp.payloads(0) if p not in welcome]
        self.assertGreater(loudFrames(after), 5)
        marks = [len(p.rtp.payloads(0)) for p in phones]
        a.rtp.speak(1.5)
        time.sleep(0.5)
        tones = [toneFrames(p.rtp.payloads(0)[m:]) for p, m in zip(phones, marks)]
        self.assertGreater(tones[1], 40, tones)
        self.assertGreater(tones[2], 40, tones)
        self.assertLess(tones[0], 5, tones)

        # alice leaves: the others hear the leave chime, the room stays
        mark = len(b.rtp.payloads(0))
        a.bye()
        a.serve(0.5)
        self.assertTrue(waitFor(lambda: loudFrames(b.rtp.payloads(0)[mark:]) >= 5))
        self.assertEqual(metric(server, "cgpro_pbx_conferences"), 1)
        # the two left still hear each other
        time.sleep(0.5)
        mark = len(b.rtp.payloads(0))
        c.rtp.speak(1.0)
        time.sleep(0.3)
        self.assertGreater(toneFrames(b.rtp.payloads(0)[mark:]), 25)
        for p in (b, c):
            p.bye()
            p.serve(0.3)
        assertIdle(self, server)

    def test_hangupMidWelcome(self):
        """
        A caller who hangs up during the welcome prompt leaves no task,
        channel or room behind.
        """
        server, cli, port = pbxServer(self)
        cli.setRouterTable("<room1@*> = conference{room1}#pbx@localhost\n")
        p = phone(self, port)
        self.assertEqual(p.call("room1@main.dom").code, 200)
        self.assertTrue(p.rtp.waitPackets(5))
        self.assertEqual(metric(server, "cgpro_pbx_tasks"), 1)
        p.bye()
        p.serve(0.3)
        assertIdle(self, server)


@unittest.skipUnless(haveSipp(), "SIPp (Debian sip-tester) is not installed")
class ACDTests(SynchronousTestCase):
    """
    C{acd{queue,agents...}}: callers are welcomed and wait with hold
    music; the agents are offered the call in turn; a busy agent is
    skipped.
    """

    def _register(self, port, user):
        devicePort = freeUDPPort()
        result = runSipp(scenario("register_auth.xml"), port, devicePort, user=user,
                         password=PASSWORD)
        self.assertEqual(result.returncode, 0, result.stdout[-3000:])
        return devicePort

    def test_queue(self):
        server, cli, port = pbxServer(self, ("alice", "bob", "agent1", "agent2"))
        cli.setRouterTable("<queue@*> = acd{sales,agent1,agent2}#pbx@localhost\n")
        busyPort = self._register(port, "agent1")
        answerPort = self._register(port, "agent2")
        busy = BackgroundSipp(scenario("uas_busy.xml"), port, busyPort, user="agent1",
                              extra=["-mp", str(freeUDPPort())])
        self.addCleanup(busy.stop)
        agent = BackgroundSipp(scenario("pbx_gw_agent.xml", MEDIAPORT=AGENT_MEDIA), port,
                               answerPort, user="agent2", extra=["-mp", str(freeUDPPort())])
        self.addCleanup(agent.stop)

        first = phone(self, port, "alice")
        self.assertEqual(first.call("queue@main.dom").code, 200)
        self.assertTrue(first.rtp.waitHeard("queuewelcome", timeout=8))
        # agent1 is busy, agent2 answers: alice is joined with agent2 (re-INVITE
        # with the agent's SDP: media end to end)
        deadline = time.time() + 10
        while time.time() < deadline and not any(
                r.method == "INVITE" and b"o=agent" in (r.body or b"") for r in first.requests):
            first.serve(0.2)
        reinvites = [r for r in first.requests if r.method == "INVITE"]
        self.assertTrue(reinvites, "alice was never joined with an agent")
        self.assertIn(b"o=agent", reinvites[-1].body)
        self.assertEqual(busy.wait(10), 0, busy.errors())

        # a second caller waits: welcome, then hold music
        second = phone(self, port, "bob")
        self.assertEqual(second.call("queue@main.dom").code, 200)
        self.assertTrue(second.rtp.waitHeard("queuewelcome", timeout=8))
        self.assertTrue(waitFor(lambda: heardFrames(second.rtp, "holdmusic") >= 50,
                                timeout=6))
        second.bye()
        second.serve(0.3)

        first.bye()
        first.serve(0.5)
        self.assertEqual(agent.wait(15), 0, agent.errors())
        assertIdle(self, server)

    def test_hangupMidWelcome(self):
        """A caller leaving during the welcome leaves nothing behind."""
        server, cli, port = pbxServer(self, ("alice", "agent1"))
        cli.setRouterTable("<queue@*> = acd{sales,agent1}#pbx@localhost\n")
        p = phone(self, port)
        self.assertEqual(p.call("queue@main.dom").code, 200)
        self.assertTrue(p.rtp.waitPackets(5))
        p.bye()
        p.serve(0.3)
        assertIdle(self, server)
