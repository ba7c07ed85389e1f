# -*- test-case-name: tests.media.test_conference -*-
"""
Tests for L{cgpro.media.conference}: channels mixed on the media server's
ticker, on a L{Clock} with fake ports (the helpers of
L{tests.media.test_channel}).
"""

import time
import unittest

from cgpro.media import g711
from tests.media.test_channel import PEER, ServerMixin, pcm, rtp, tone


class ConferenceTests(ServerMixin, unittest.TestCase):
    """
    L{Conference}.
    """

    def speak(self, channel, value, seq):
        codes = g711.linear2ulaw(pcm(*[value] * 160))
        channel.rtpReceived(rtp(seq, payload=codes), channel.remote)

    def test_mix(self):
        """
        Each member hears the sum of the others, clipped; a silent member
        hears everyone.
        """
        conference = self.server.openConference()
        members = [self.channel(remote=("192.0.2.%d" % n, 4000)) for n in range(1, 5)]
        members[3].setRemote("192.0.2.4", 4000, "PCMA")
        for member in members:
            conference.add(member)
        self.assertEqual(conference.members(), members)
        levels = [1000, 2000, 30000]
        for n, level in enumerate(levels):
            self.speak(members[n], level, 1)
        self.frames(1)
        decoded = g711.ULAW_DECODE
        heard = [self.sent(m)[0][5] for m in members]
        sums = []
        for n in range(3):
            sums.append(sum(decoded[g711.ULAW_ENCODE[v]] for v in levels) -
                        decoded[g711.ULAW_ENCODE[levels[n]]])
        for n in range(3):
            self.assertEqual(heard[n], g711.encodeSamples([sums[n]] * 160, "PCMU"))
        self.assertEqual(heard[3], g711.encodeSamples([32767] * 160, "PCMA"))
        self.frames(1)
        self.assertEqual(self.sent(members[0])[1][5], b"\xff" * 160)
        self.assertEqual([p[1] for p in self.sent(members[0])], [1, 0])

    def test_prompt(self):
        """
        A prompt played into the conference is heard by every member.
        """
        conference = self.server.openConference()
        a, b = self.channel(), self.channel()
        conference.add(a)
        conference.add(b)
        prompt = self.server.promptFromSamples("join", pcm(*[3000] * 320))
        conference.play(prompt)
        self.speak(a, 1000, 1)
        self.frames(3)
        expectA = g711.encodeSamples([3000] * 160, "PCMU")
        self.assertEqual([p[5] for p in self.sent(a)], [expectA, expectA, b"\xff" * 160])
        self.assertEqual(self.sent(b)[0][5], g711.encodeSamples(
            [3000 + g711.ULAW_DECODE[g711.ULAW_ENCODE[1000]]] * 160, "PCMU"))

    def test_removeAndStop(self):
        """
        Members leave (also by closing); an empty conference stops the
        ticker; a member moved to another conference leaves the first.
        """
        conference = self.server.openConference()
        other = self.server.openConference()
        a, b = self.channel(), self.channel()
        conference.add(a)
        conference.add(b)
        other.add(b)
        self.assertEqual((conference.members(), other.members()), ([a], [b]))
        a.close()
        other.remove(b)
        self.assertEqual(conference.members(), [])
        self.assertFalse(self.server.ticking())

    def test_playingMemberNotMixed(self):
        """
        A member playing a prompt of its own hears the prompt only.
        """
        conference = self.server.openConference()
        a = self.channel()
        conference.add(a)
        prompt = self.server.promptFromSamples("t", tone(1))
        a.play(prompt)
        self.frames(2)
        self.assertEqual([p[5] for p in self.sent(a)],
                         [prompt.frames("PCMU")[0], b"\xff" * 160])

    def test_cost(self):
        """
        Ten talking members are mixed well within a 20 ms frame.
        """
        conference = self.server.openConference()
        members = [self.channel() for _ in range(10)]
        for member in members:
            conference.add(member)
        codes = g711.linear2ulaw(tone(1))
        start = time.perf_counter()
        for n in range(50):
            for member in members:
                member.rtpReceived(rtp(n, payload=codes), PEER)
            self.clock.advance(0.02)
        self.assertLess((time.perf_counter() - start) / 50, 0.015)
        self.assertEqual(len(self.sent(members[0])), 50)
