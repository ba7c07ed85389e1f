# -*- test-case-name: tests.media.test_channel_sockets -*-
"""
Tests of L{cgpro.media.channel} on real sockets: channels bound on
127.0.0.1 with the real reactor, so packets really flow (the unit tests of
L{tests.media.test_channel} use a L{Clock} and fake ports).
"""

import os
import random
import socket
import struct
import time
import unittest

from twisted.internet import defer, reactor
from twisted.internet.task import deferLater
from twisted.trial import unittest as trial

from cgpro.media import g711
from cgpro.media.channel import MediaServer, parseRTP
from tests.media.test_channel import event, pcm, rtp, sippTrain, tone

SIPP = "/usr/share/sip-tester/dtmf_2833_%s.pcap"


def readCapture(path):
    """
    @return: the UDP payloads of a little-endian Ethernet/IPv4 pcap file
        (24-byte global header; per record a 16-byte header, then
        Ethernet 14, IPv4 20 and UDP 8 bytes).
    """
    with open(path, "rb") as f:
        data = f.read()
    offset, payloads = 24, []
    while offset + 16 <= len(data):
        length = struct.unpack_from("<I", data, offset + 8)[0]
        payloads.append(data[offset + 16 + 42:offset + 16 + length])
        offset += 16 + length
    return payloads


class Endpoint:
    """
    A plain UDP socket on 127.0.0.1 playing the far end of a call.
    """

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.address = self.sock.getsockname()
        self.received = []

    def send(self, data, channel):
        self.sock.sendto(data, ("127.0.0.1", channel.localPort))

    def drain(self):
        while True:
            try:
                self.received.append(self.sock.recv(2048))
            except BlockingIOError:
                return

    def close(self):
        self.sock.close()


class RealSocketTests(trial.TestCase):
    """
    Channels bound on 127.0.0.1 with the real reactor: packets really
    flow.  Each test takes a random port range below the ephemeral ports.
    """

    def setUp(self):
        low = random.randrange(20000, 30000, 2)
        self.server = MediaServer(reactor, portRange=(low, low + 39), bindAddress="127.0.0.1")
        self.endpoints = []

    @defer.inlineCallbacks
    def tearDown(self):
        closing = []
        for channel in self.server.channels():
            channel.close()
            closing.append(channel.released)
        yield defer.gatherResults(closing)
        for endpoint in self.endpoints:
            endpoint.close()

    def endpoint(self, channel=None, codec="PCMU"):
        endpoint = Endpoint()
        self.endpoints.append(endpoint)
        if channel is not None:
            channel.setRemote("127.0.0.1", endpoint.address[1], codec)
        return endpoint

    @defer.inlineCallbacks
    def until(self, condition, timeout=5.0):
        """
        Turn the reactor (draining the endpoints) until C{condition()}.
        """
        deadline = time.monotonic() + timeout
        while True:
            for endpoint in self.endpoints:
                endpoint.drain()
            if condition() or time.monotonic() > deadline:
                return
            yield deferLater(reactor, 0.005, lambda: None)

    @defer.inlineCallbacks
    def test_play(self):
        """
        A prompt played to a socket arrives frame by frame.
        """
        channel = self.server.openChannel()
        far = self.endpoint(channel)
        prompt = self.server.promptFromSamples("t", tone(10))
        played = yield channel.play(prompt)
        self.assertTrue(played)
        yield self.until(lambda: len(far.received) >= 10)
        self.assertEqual([parseRTP(p)[5] for p in far.received], prompt.frames("PCMU"))
        self.assertEqual(g711.ulaw2linear(b"".join(parseRTP(p)[5] for p in far.received)),
                         g711.ulaw2linear(g711.linear2ulaw(tone(10))))

    @defer.inlineCallbacks
    def test_digits(self):
        """
        RFC 4733 packets from a socket give each digit once.
        """
        channel = self.server.openChannel()
        far = self.endpoint(channel)
        digits = []
        channel.digitReceived = digits.append
        seq = 0
        for n, code in enumerate([1, 10, 11, 1]):
            for duration, end in ((160, 0), (160, 0), (320, 0), (400, 1), (400, 1), (400, 1)):
                seq += 1
                far.send(event(code, duration, end, 8000 * n, seq), channel)
        yield self.until(lambda: channel.stats()["packetsIn"] >= seq)
        self.assertEqual(digits, ["1", "*", "#", "1"])

    @unittest.skipUnless(os.path.exists(SIPP % "1"), "SIPp's pcaps not installed")
    @defer.inlineCallbacks
    def test_sippCaptures(self):
        """
        SIPp's own captures, sent as SIPp plays them (RTP headers as
        captured: C{sippTrain}), played 1, 1, 2 give "112".
        """
        trains = [readCapture(SIPP % name) for name in "112"]
        self.assertEqual(trains[0], sippTrain(1))
        self.assertEqual(trains[2], sippTrain(2, 23200, 8042))
        channel = self.server.openChannel()
        far = self.endpoint(channel)
        digits = []
        channel.digitReceived = digits.append
        for train in trains:
            for data in train:
                far.send(data, channel)
        yield self.until(lambda: channel.stats()["packetsIn"] >= 30)
        self.assertEqual("".join(digits), "112")

    @defer.inlineCallbacks
    def test_record(self):
        """
        What a socket sends is recorded, decoded.
        """
        channel = self.server.openChannel()
        far = self.endpoint(channel)
        recording = channel.record(5)
        codes = g711.linear2ulaw(tone(5))
        for n in range(5):
            far.send(rtp(n, 160 * n, 0, codes[160 * n:160 * n + 160]), channel)
        yield self.until(lambda: channel.stats()["packetsIn"] >= 5)
        channel.stopRecording()
        samples = yield recording
        self.assertEqual(samples, g711.ulaw2linear(codes))

    @defer.inlineCallbacks
    def test_conference(self):
        """
        Three sockets in a conference each hear the sum of the others.
        """
        conference = self.server.openConference()
        levels = [1000, 2000, 4000]
        pairs = []
        for level in levels:
            channel = self.server.openChannel()
            pairs.append((channel, self.endpoint(channel)))
            conference.add(channel)
        for n in range(25):
            for (channel, far), level in zip(pairs, levels):
                far.send(rtp(n, 160 * n, 0, g711.linear2ulaw(pcm(*[level] * 160))), channel)
            yield deferLater(reactor, 0.02, lambda: None)
        yield self.until(lambda: all(len(far.received) >= 25 for _, far in pairs))
        decoded = [g711.ULAW_DECODE[g711.ULAW_ENCODE[v]] for v in levels]
        for n, (_, far) in enumerate(pairs):
            expected = g711.encodeSamples([sum(decoded) - decoded[n]] * 160, "PCMU")
            payloads = [parseRTP(p)[5] for p in far.received]
            self.assertIn(expected, payloads, n)

    @defer.inlineCallbacks
    def test_connect(self):
        """
        Two connected channels relay between their sockets, transcoding.
        """
        a, b = self.server.openChannel(), self.server.openChannel()
        farA, farB = self.endpoint(a), self.endpoint(b, "PCMA")
        a.connect(b)
        codes = g711.linear2ulaw(tone(1))
        farA.send(rtp(1, 0, 0, codes), a)
        farB.send(rtp(1, 0, 8, g711.ulawToAlaw(codes)), b)
        yield self.until(lambda: farA.received and farB.received)
        self.assertEqual(parseRTP(farB.received[0])[:1] + parseRTP(farB.received[0])[5:],
                         (8, g711.ulawToAlaw(codes)))
        self.assertEqual(parseRTP(farA.received[0])[5], g711.alawToUlaw(g711.ulawToAlaw(codes)))

    @defer.inlineCallbacks
    def test_latchAndGarbage(self):
        """
        After latching, a third address is dropped; garbage is counted and
        harmless; the channel still works afterwards.
        """
        channel = self.server.openChannel()
        far = self.endpoint()
        intruder = self.endpoint()
        far.send(rtp(1), channel)
        yield self.until(lambda: channel.latched)
        self.assertEqual(channel.remote, far.address)
        intruder.send(rtp(2), channel)
        for junk in (b"", b"\xff" * 3, b"\x80" * 11, os.urandom(300)):
            far.send(junk, channel)
        far.send(rtp(2), channel)
        yield self.until(lambda: channel.stats()["packetsIn"] >= 2)
        stats = channel.stats()
        self.assertEqual(stats["foreign"], 1)
        self.assertGreaterEqual(stats["dropped"], 4)
        yield channel.play(self.server.promptFromSamples("t", tone(2)))
        yield self.until(lambda: len(far.received) >= 2)
        self.assertEqual(len(intruder.received), 0)
        self.assertEqual(len(far.received), 2)

    @defer.inlineCallbacks
    def test_noLeakedPort(self):
        """
        After many open/close cycles every pair is back in the allocator
        and no socket of ours is left open.
        """
        descriptors = None
        for _ in range(30):
            channels = [self.server.openChannel() for _ in range(5)]
            for channel in channels:
                channel.close()
            yield defer.gatherResults([c.released for c in channels])
            if descriptors is None:
                # after a first cycle: the reactor opens its own on first use
                descriptors = len(os.listdir("/proc/self/fd"))
        allocator = self.server.allocator
        self.assertEqual((allocator.inUse(), len(allocator)), (0, allocator.capacity))
        self.assertEqual(len(os.listdir("/proc/self/fd")), descriptors)
