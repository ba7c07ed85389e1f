# -*- test-case-name: tests.media.test_channel -*-
"""
Tests for L{cgpro.media.channel}: the media server's channels, prompts
and ticker.

The unit tests run on a L{Clock} with fake listening ports recording what
is sent; the helpers here (L{ServerMixin}, L{rtp}, L{event}, L{tone}) are
shared with L{tests.media.test_conference}, and
L{tests.media.test_channel_sockets} proves the packets really flow over
127.0.0.1 with the real reactor.
"""

import errno
import os
import struct
import tempfile
import unittest

from zope.interface.verify import verifyObject

from twisted.internet.task import Clock

from cgpro.core.interfaces import MediaExhausted
from cgpro.core.rtinterfaces import IConference, IMediaChannel, IMediaServer, IPrompt
from cgpro.media import g711
from cgpro.media.audiofile import AudioFormatError, writeWAV
from cgpro.media.channel import DIGITS, MediaServer, parseRTP, primaryAddress
from cgpro.media.ports import PortPairAllocator

PEER = ("192.0.2.10", 40000)


def pcm(*samples):
    return struct.pack("<%dh" % len(samples), *samples)


def tone(frames, level=8000):
    """
    @return: C{frames} 20 ms frames of a square wave (loud enough not to
        be silence), each frame's first sample its index (to tell them apart).
    """
    out = []
    for n in range(frames):
        out.append(pcm(n * 8, *[level if i % 8 < 4 else -level for i in range(159)]))
    return b"".join(out)


def rtp(seq, timestamp=0, pt=0, payload=b"\xff" * 160, marker=0, ssrc=0x1234):
    return struct.pack("!BBHII", 0x80, pt | (marker << 7), seq & 0xFFFF,
                       timestamp & 0xFFFFFFFF, ssrc) + payload


def event(code, duration, end=False, timestamp=1000, seq=0, pt=101, marker=0):
    return rtp(seq, timestamp, pt, struct.pack("!BBH", code, (0x80 if end else 0) | 10,
                                               duration), marker)


def sippTrain(code, timestamp=13280, seq=7984):
    """
    @return: SIPp's C{dtmf_2833_<code>.pcap} as SIPp sends it (RTP
        headers as captured): a marked start of duration 0, six
        growing packets, the end three times with one sequence number.
    """
    packets = [rtp(seq + n, timestamp, 101, struct.pack("!BBH", code, 10, 320 * n),
                   int(n == 0), 0x0E05384E) for n in range(7)]
    end = rtp(seq + 7, timestamp, 101, struct.pack("!BBH", code, 0x80 | 10, 2240),
              0, 0x0E05384E)
    return packets + [end] * 3


class FakePort:
    """
    A listening UDP port that records what is written.
    """

    def __init__(self, number):
        self.number = number
        self.written = []
        self.stopped = False

    def write(self, data, addr):
        self.written.append((data, addr))

    def stopListening(self):
        self.stopped = True


class FakeListen:
    """
    The media server's C{listen}: fake ports, some of them refused.

    @ivar refused: C{{port: errno}} of ports that fail to bind.
    """

    def __init__(self):
        self.ports = []
        self.refused = {}

    def __call__(self, host, port, rtpProtocol, rtcpProtocol):
        if port in self.refused:
            raise OSError(self.refused[port], os.strerror(self.refused[port]))
        pair = (FakePort(port), FakePort(port + 1))
        self.ports.extend(pair)
        return pair


class ServerMixin:
    """
    A media server on a L{Clock} and fake ports.
    """

    def setUp(self):
        self.clock = Clock()
        # half a frame off the tick grid, so float rounding never decides
        # whether a tick falls within an advance
        self.clock.advance(1000.01)
        self.listen = FakeListen()
        self.server = MediaServer(self.clock, portRange=(30000, 30019),
                                  bindAddress="127.0.0.1", listen=self.listen)

    def channel(self, codec="PCMU", remote=PEER, **kw):
        channel = self.server.openChannel()
        if remote is not None:
            channel.setRemote(remote[0], remote[1], codec, **kw)
        return channel

    def sent(self, channel):
        """
        @return: the parsed packets C{channel} sent.
        """
        return [parseRTP(data) for data, _ in channel._ports[0].written]

    def frames(self, count):
        for _ in range(count):
            self.clock.advance(0.02)


class InterfaceTests(ServerMixin, unittest.TestCase):
    """
    The classes provide the interfaces of L{cgpro.core.rtinterfaces}.
    """

    def test_verify(self):
        """
        Server, channel, prompt and conference verify.
        """
        self.assertTrue(verifyObject(IMediaServer, self.server))
        self.assertTrue(verifyObject(IMediaChannel, self.channel()))
        self.assertTrue(verifyObject(IPrompt, self.server.promptFromSamples("p", b"\0\0")))
        self.assertTrue(verifyObject(IConference, self.server.openConference()))


class ParseTests(unittest.TestCase):
    """
    L{parseRTP}.
    """

    def test_plain(self):
        """
        The fields of a plain header.
        """
        self.assertEqual(parseRTP(rtp(7, 99, 8, b"ab", marker=1)), (8, 1, 7, 99, 0x1234, b"ab"))

    def test_csrcExtensionPadding(self):
        """
        CSRCs and an extension are skipped, padding removed.
        """
        packet = (struct.pack("!BBHII", 0xB2, 0, 1, 2, 3) + b"\0" * 8
                  + struct.pack("!HH", 0xBEDE, 1) + b"\0" * 4 + b"data" + b"\0\0\x03")
        self.assertEqual(parseRTP(packet), (0, 0, 1, 2, 3, b"data"))

    def test_invalid(self):
        """
        Short packets, version 1, overlong extension or padding: C{None}.
        """
        for bad in (b"", b"\x80" * 11, b"\x40" + b"\0" * 20,
                    struct.pack("!BBHII", 0x90, 0, 1, 2, 3) + b"\0\x01",
                    struct.pack("!BBHII", 0x90, 0, 1, 2, 3) + b"\0\0\0\x09",
                    struct.pack("!BBHII", 0xA0, 0, 1, 2, 3) + b"\x20",
                    struct.pack("!BBHII", 0x8F, 0, 1, 2, 3)):
            self.assertIsNone(parseRTP(bad), bad)


class PlayTests(ServerMixin, unittest.TestCase):
    """
    L{MediaChannel.play} on the shared ticker.
    """

    def test_frames(self):
        """
        Each tick sends the next frame: version 2, the codec's payload
        type, consecutive sequence numbers, timestamps 160 apart, one
        SSRC, the marker on the first; the Deferred fires C{True} at the
        end and the ticker stops.
        """
        channel = self.channel()
        prompt = self.server.promptFromSamples("t", tone(5))
        result = []
        channel.play(prompt).addCallback(result.append)
        self.frames(8)
        packets = self.sent(channel)
        self.assertEqual([p[5] for p in packets], prompt.frames("PCMU"))
        self.assertEqual([p[0] for p in packets], [0] * 5)
        self.assertEqual([p[1] for p in packets], [1, 0, 0, 0, 0])
        seqs = [p[2] for p in packets]
        self.assertEqual([(s - seqs[0]) & 0xFFFF for s in seqs], list(range(5)))
        stamps = [p[3] for p in packets]
        self.assertEqual([(t - stamps[0]) & 0xFFFFFFFF for t in stamps],
                         [160 * i for i in range(5)])
        self.assertEqual({p[4] for p in packets}, {channel.ssrc})
        self.assertEqual(all(d[0] == 0x80 for d, _ in channel._ports[0].written), True)
        self.assertEqual(result, [True])
        self.assertFalse(self.server.ticking())
        self.assertEqual(channel._ports[0].written[0][1], PEER)

    def test_pcma(self):
        """
        A PCMA channel sends the prompt's A-law frames with type 8, or
        the payload type the SDP gave.
        """
        channel = self.channel("PCMA", payload=96)
        prompt = self.server.promptFromSamples("t", tone(2))
        channel.play(prompt)
        self.frames(2)
        self.assertEqual([(p[0], p[5]) for p in self.sent(channel)],
                         [(96, f) for f in prompt.frames("PCMA")])

    def test_partialFramePadded(self):
        """
        A prompt that is not whole frames ends with a frame padded with
        silence; its duration is exact.
        """
        prompt = self.server.promptFromSamples("t", pcm(1000) * 170)
        self.assertEqual(prompt.duration, 170 / 8000.0)
        frames = prompt.frames("PCMU")
        self.assertEqual([len(f) for f in frames], [160, 160])
        self.assertEqual(frames[1][10:], b"\xff" * 150)

    def test_interruptAndStop(self):
        """
        Another play fires the first with C{False}; L{stopPlaying} too.
        """
        channel = self.channel()
        prompt = self.server.promptFromSamples("t", tone(50))
        results = []
        channel.play(prompt).addCallback(results.append)
        self.frames(2)
        channel.play(prompt, loop=True).addCallback(results.append)
        self.frames(2)
        channel.stopPlaying()
        self.frames(2)
        self.assertEqual(results, [False, False])
        self.assertEqual(len(self.sent(channel)), 4)
        self.assertEqual([p[1] for p in self.sent(channel)], [1, 0, 1, 0])
        self.assertFalse(self.server.ticking())

    def test_loop(self):
        """
        A looping prompt starts over.
        """
        channel = self.channel()
        prompt = self.server.promptFromSamples("t", tone(3))
        channel.play(prompt, loop=True)
        self.frames(7)
        self.assertEqual([p[5] for p in self.sent(channel)], (prompt.frames("PCMU") * 3)[:7])

    def test_emptyPrompt(self):
        """
        An empty prompt has played to its end at the next tick.
        """
        result = []
        self.channel().play(self.server.promptFromSamples("e", b"")).addCallback(result.append)
        self.frames(1)
        self.assertEqual(result, [True])

    def test_oneTimerForAll(self):
        """
        However many channels play, one timer runs.
        """
        prompt = self.server.promptFromSamples("t", tone(100))
        channels = [self.channel() for _ in range(8)]
        for channel in channels:
            channel.play(prompt)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.frames(3)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.assertEqual([len(self.sent(c)) for c in channels], [3] * 8)

    def test_noDrift(self):
        """
        However irregular the timer calls, one second is 50 frames with
        consecutive timestamps: late ticks are caught up.
        """
        channel = self.channel()
        channel.play(self.server.promptFromSamples("t", tone(500)))
        start = self.clock.seconds()
        steps = [0.031, 0.017, 0.05, 0.003, 0.029]
        while self.clock.seconds() < start + 1 - 1e-9:
            self.clock.advance(min(steps[0], start + 1 - self.clock.seconds()))
            steps.append(steps.pop(0))
        packets = self.sent(channel)
        self.assertIn(len(packets), (49, 50, 51))
        stamps = [p[3] for p in packets]
        self.assertEqual([(b - a) & 0xFFFFFFFF for a, b in zip(stamps, stamps[1:])],
                         [160] * (len(packets) - 1))

    def test_chainedInCallback(self):
        """
        A play started from another's end (inside a tick) joins the same
        ticker, from the next tick on.
        """
        a, b = self.channel(), self.channel()
        prompt = self.server.promptFromSamples("t", tone(2))
        a.play(prompt).addCallback(lambda _: b.play(prompt))
        self.frames(2)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.frames(3)
        self.assertEqual((len(self.sent(a)), len(self.sent(b))), (2, 2))
        ticks = [(p[3] - c._tsOffset) & 0xFFFFFFFF for c in (a, b) for p in self.sent(c)]
        self.assertEqual([t - ticks[0] for t in ticks], [0, 160, 320, 480])
        self.assertFalse(self.server.ticking())

    def test_lateCallCaughtUp(self):
        """
        A timer call 40 ms late sends the three frames due by then at once.
        """
        channel = self.channel()
        channel.play(self.server.promptFromSamples("t", tone(10)))
        self.clock.advance(0.06)
        self.assertEqual(len(self.sent(channel)), 3)
        stats = self.server.stats()
        self.assertEqual((stats["ticks"], stats["lateTicks"]), (3, 2))

    def test_stallSkipped(self):
        """
        After a long stall only a few late frames are sent at once.
        """
        channel = self.channel()
        channel.play(self.server.promptFromSamples("t", tone(500)))
        self.clock.advance(1.0)
        self.assertLessEqual(len(self.sent(channel)), 5)

    def test_noRemote(self):
        """
        Without a remote the prompt plays in silence (nothing sent).
        """
        channel = self.channel(remote=None)
        result = []
        channel.play(self.server.promptFromSamples("t", tone(2))).addCallback(result.append)
        self.frames(3)
        self.assertEqual((result, channel._ports[0].written), ([True], []))


class ReceiveTests(ServerMixin, unittest.TestCase):
    """
    What a channel does with received packets.
    """

    def test_latch(self):
        """
        The first valid packet latches its source as the remote; packets
        from elsewhere are then dropped and counted.
        """
        channel = self.channel()
        channel.rtpReceived(rtp(1), ("198.51.100.1", 5000))
        self.assertEqual(channel.remote, ("198.51.100.1", 5000))
        channel.rtpReceived(rtp(2), ("198.51.100.2", 5000))
        channel.rtpReceived(rtp(3), ("198.51.100.1", 5001))
        stats = channel.stats()
        self.assertEqual((stats["packetsIn"], stats["dropped"], stats["foreign"]), (1, 2, 2))
        channel.setRemote("198.51.100.9", 7000)
        self.assertFalse(channel.latched)

    def test_garbageAndOtherTypes(self):
        """
        Garbage, other payload types and short events are dropped and
        counted; comfort noise is ignored quietly.
        """
        channel = self.channel()
        digits = []
        channel.digitReceived = digits.append
        for data in (b"", b"hello world!!", b"\x00" * 40):
            channel.rtpReceived(data, PEER)
        channel.rtpReceived(rtp(1, pt=13, payload=b"\x40"), PEER)
        channel.rtpReceived(rtp(2, pt=18), PEER)
        channel.rtpReceived(rtp(3, pt=101, payload=b"\x01"), PEER)
        stats = channel.stats()
        self.assertEqual((stats["dropped"], stats["packetsIn"]), (5, 3))
        self.assertEqual(digits, [])

    def test_lost(self):
        """
        Sequence gaps count as lost; late and duplicate packets do not.
        """
        channel = self.channel()
        for seq in (65534, 65535, 2, 1, 2, 3, 10):
            channel.rtpReceived(rtp(seq), PEER)
        self.assertEqual(channel.stats()["lost"], 2 + 6)

    def test_lastReceived(self):
        """
        L{lastReceived} is the reactor time of the last packet.
        """
        channel = self.channel()
        self.clock.advance(5)
        channel.rtpReceived(rtp(1), PEER)
        self.assertEqual(channel.lastReceived, self.clock.seconds())

    def test_digitsOnce(self):
        """
        An event repeated, then ended three times, is one digit; every
        code maps to its character.
        """
        channel = self.channel()
        digits = []
        channel.digitReceived = digits.append
        seq = 0
        for code in range(16):
            stamp = 1000 + 2000 * code
            for duration, end in ((160, 0), (320, 0), (480, 0), (480, 1), (480, 1), (480, 1)):
                seq += 1
                channel.rtpReceived(event(code, duration, end, stamp, seq, marker=duration == 160),
                                    PEER)
        self.assertEqual("".join(digits), DIGITS)
        self.assertEqual(DIGITS, "0123456789*#ABCD")

    def test_digitWithoutStart(self):
        """
        An event whose first packets were lost is reported from its end.
        """
        channel = self.channel(eventPayload=100)
        digits = []
        channel.digitReceived = digits.append
        channel.rtpReceived(event(11, 800, True, 5, 1, pt=100), PEER)
        channel.rtpReceived(event(11, 800, True, 5, 2, pt=100), PEER)
        self.assertEqual(digits, ["#"])

    def received(self, *trains):
        """
        @return: the digits a channel reports for the C{trains} played in turn.
        """
        channel = self.channel()
        digits = []
        channel.digitReceived = digits.append
        for train in trains:
            for data in train:
                channel.rtpReceived(data, PEER)
        return "".join(digits)

    def test_sameDigitTwice(self):
        """
        A capture played twice (same SSRC, timestamp, seq) is two digits.
        """
        self.assertEqual(self.received(sippTrain(1), sippTrain(1)), "11")
        self.assertEqual(self.received(*[sippTrain(5, 43200)] * 3), "555")

    def test_sameTimestampOtherDigit(self):
        """
        Another code with the same timestamp is another digit, ended or not.
        """
        self.assertEqual(self.received(sippTrain(1, 43200), sippTrain(2, 43200)),
                         "12")
        self.assertEqual(self.received(sippTrain(1)[:3], sippTrain(2)), "12")

    def test_endRetransmissionsOnce(self):
        """
        The end sent three times (and repeated again, unmarked) is one
        digit; a marked packet after the end starts a new one.
        """
        train = sippTrain(9, 67840, 8293)
        self.assertEqual(self.received(train + train[-1:] * 4), "9")
        self.assertEqual(self.received(train[-3:]), "9")
        restart = rtp(8301, 67840, 101, struct.pack("!BBH", 9, 0x80 | 10, 2240), 1, 0x0E05384E)
        self.assertEqual(self.received(train, [restart]), "99")

    def test_longEvent(self):
        """
        A long event (duration growing for seconds, start repeated) is one digit.
        """
        packets = [event(11, 0, timestamp=7, seq=1, marker=1)] * 2
        packets += [event(11, 160 * n, timestamp=7, seq=n) for n in range(1, 400)]
        packets += [event(11, 64000, True, 7, 400)] * 3
        self.assertEqual(self.received(packets), "#")

class SendDigitTests(ServerMixin, unittest.TestCase):
    """
    L{MediaChannel.sendDigit}.
    """

    def test_packets(self):
        """
        Growing durations, then three end packets, all with one timestamp
        and the marker on the first; sequence numbers go on with audio.
        """
        channel = self.channel()
        channel.sendDigit("5", 0.1)
        self.frames(8)
        packets = self.sent(channel)
        self.assertEqual(len(packets), 8)
        self.assertEqual({p[0] for p in packets}, {101})
        self.assertEqual([p[1] for p in packets], [1] + [0] * 7)
        self.assertEqual(len({p[3] for p in packets}), 1)
        fields = [struct.unpack("!BBH", p[5]) for p in packets]
        self.assertEqual([f[0] for f in fields], [5] * 8)
        self.assertEqual([f[2] for f in fields], [160, 320, 480, 640, 800, 800, 800, 800])
        self.assertEqual([f[1] >> 7 for f in fields], [0] * 5 + [1] * 3)
        channel.play(self.server.promptFromSamples("t", tone(1)))
        self.frames(1)
        seqs = [p[2] for p in self.sent(channel)]
        self.assertEqual([(s - seqs[0]) & 0xFFFF for s in seqs], list(range(9)))
        self.assertFalse(self.server.ticking())

    def test_invalid(self):
        """
        Only DTMF characters; nothing without a telephone-event type.
        """
        channel = self.channel(eventPayload=None)
        self.assertRaises(ValueError, channel.sendDigit, "x")
        self.assertRaises(ValueError, channel.sendDigit, "12")
        channel.sendDigit("*")
        self.frames(10)
        self.assertEqual(channel._ports[0].written, [])


class RecordTests(ServerMixin, unittest.TestCase):
    """
    L{MediaChannel.record}.
    """

    def feed(self, channel, frames, start=0, silent=False):
        audio = b"\0" * (320 * frames) if silent else tone(frames)
        codes = g711.linear2ulaw(audio)
        for n in range(frames):
            channel.rtpReceived(rtp(start + n, payload=codes[160 * n:160 * n + 160]), PEER)
            self.clock.advance(0.02)
        return g711.ulaw2linear(codes)

    def test_maxSeconds(self):
        """
        The recording is the decoded audio, cut at C{maxSeconds}.
        """
        channel = self.channel()
        result = []
        channel.record(0.1).addCallback(result.append)
        expected = self.feed(channel, 8)
        self.assertEqual(result, [expected[:1600]])
        self.assertFalse(self.server.ticking())

    def test_silence(self):
        """
        Quiet frames for C{silence} seconds end it, as does no packet.
        """
        channel = self.channel()
        result = []
        channel.record(10, silence=0.2).addCallback(result.append)
        loud = self.feed(channel, 5)
        quiet = self.feed(channel, 5, 5, silent=True)
        self.feed(channel, 5, 10, silent=True)
        self.assertEqual(len(result), 1)
        self.assertTrue(result[0].startswith(loud + quiet[:320 * 4]))
        channel.record(10, silence=0.5).addCallback(result.append)
        self.frames(30)
        self.assertEqual(result[1:], [b""])

    def test_stopAndClose(self):
        """
        L{stopRecording} and L{close} fire the recording; close fires a
        pending play with C{False}.
        """
        channel = self.channel()
        result = []
        channel.record(10).addCallback(result.append)
        audio = self.feed(channel, 2)
        channel.stopRecording()
        channel.record(10).addCallback(result.append)
        channel.play(self.server.promptFromSamples("t", tone(10))).addCallback(result.append)
        channel.close()
        self.assertEqual(result, [audio, False, b""])
        self.assertTrue(channel.closed)
        later = []
        channel.record(1).addCallback(later.append)
        channel.play(self.server.promptFromSamples("t", tone(1))).addCallback(later.append)
        self.assertEqual(later, [b"", False])


class ConnectTests(ServerMixin, unittest.TestCase):
    """
    L{MediaChannel.connect}.
    """

    def test_relayTranscoded(self):
        """
        Audio goes both ways, transcoded, with each side's own SSRC and
        sequence numbers; events go along.
        """
        a = self.channel("PCMU")
        b = self.channel("PCMA", remote=("192.0.2.20", 50000))
        prompt = self.server.promptFromSamples("t", tone(10))
        done = []
        a.play(prompt).addCallback(done.append)
        a.connect(b)
        self.assertEqual(done, [False])
        codes = g711.linear2ulaw(tone(1))
        a.rtpReceived(rtp(1, 100, 0, codes, marker=1), PEER)
        a.rtpReceived(rtp(2, 260, 0, codes), PEER)
        b.rtpReceived(rtp(9, 0, 8, g711.ulawToAlaw(codes)), ("192.0.2.20", 50000))
        a.rtpReceived(event(3, 160, timestamp=420, seq=3), PEER)
        toB, toA = self.sent(b), self.sent(a)
        self.assertEqual([p[5] for p in toB[:2]], [g711.ulawToAlaw(codes)] * 2)
        self.assertEqual([p[1] for p in toB], [1, 0, 0])
        self.assertEqual((toB[2][0], toB[2][5][0]), (101, 3))
        self.assertEqual({p[4] for p in toB}, {b.ssrc})
        self.assertEqual((toB[1][3] - toB[0][3]) & 0xFFFFFFFF, 160)
        self.assertEqual([p[5] for p in toA], [g711.alawToUlaw(g711.ulawToAlaw(codes))])
        self.assertEqual(toA[0][4], a.ssrc)
        a.disconnect()
        self.assertIsNone(b.peer)
        a.rtpReceived(rtp(4, 580, 0, codes), PEER)
        self.assertEqual(len(self.sent(b)), 3)
        self.assertRaises(ValueError, a.connect, a)


class ServerTests(ServerMixin, unittest.TestCase):
    """
    L{MediaServer}: ports, limits, prompts, statistics.
    """

    def test_exhausted(self):
        """
        When every pair is taken the error says so; closing frees one.
        """
        channels = [self.server.openChannel() for _ in range(10)]
        self.assertEqual(sorted(c.localPort for c in channels), list(range(30000, 30020, 2)))
        with self.assertRaises(MediaExhausted) as caught:
            self.server.openChannel()
        self.assertIn("30000-30019", str(caught.exception))
        channels[3].close()
        self.assertEqual(self.server.openChannel().localPort, channels[3].localPort)

    def test_maxChannels(self):
        """
        The channel limit is enforced with its own message.
        """
        self.server.maxChannels = 2
        self.server.openChannel()
        self.server.openChannel()
        with self.assertRaises(MediaExhausted) as caught:
            self.server.openChannel()
        self.assertIn("maxChannels", str(caught.exception))

    def test_busyPortSkipped(self):
        """
        A pair some other program holds is skipped; a descriptor shortage
        fails at once.
        """
        self.listen.refused[30000] = errno.EADDRINUSE
        self.assertEqual(self.server.openChannel().localPort, 30002)
        self.listen.refused = dict.fromkeys(range(30000, 30020), errno.EMFILE)
        with self.assertRaises(MediaExhausted) as caught:
            self.server.openChannel()
        self.assertIn("ulimit", str(caught.exception))
        self.assertEqual(self.server.allocator.inUse(), 1)

    def test_noLeak(self):
        """
        Many open/close cycles leave no pair allocated and no port open.
        """
        for cycle in range(200):
            channels = [self.server.openChannel() for _ in range(1 + cycle % 10)]
            channels[0].play(self.server.promptFromSamples("t", tone(3)))
            channels[-1].record(5)
            for channel in channels:
                channel.close()
        self.assertEqual(self.server.allocator.inUse(), 0)
        self.assertEqual(len(self.server.allocator), 10)
        self.assertTrue(all(port.stopped for port in self.listen.ports))
        self.assertEqual(self.server.channels(), [])
        self.assertFalse(self.server.ticking())

    def test_sharedAllocator(self):
        """
        With the relay's allocator the two never hand out one pair.
        """
        shared = PortPairAllocator(30000, 30007)
        server = MediaServer(self.clock, bindAddress="127.0.0.1", allocator=shared,
                             listen=self.listen)
        relayPairs = shared.allocate(2)
        channel = server.openChannel()
        self.assertNotIn((channel.localPort, channel.localPort + 1), relayPairs)
        server.openChannel()
        self.assertRaises(MediaExhausted, server.openChannel)
        channel.close()
        self.assertEqual(shared.inUse(), 3)
        full = PortPairAllocator(30000, 30001)
        full.allocate(1)
        server = MediaServer(self.clock, allocator=full, listen=self.listen)
        self.assertIs(server.allocator, full)
        self.assertRaises(MediaExhausted, server.openChannel)

    def test_relayWiring(self):
        """
        The wiring the class docstring gives for C{buildMedia} works with
        a real L{MediaRelay}: relay sessions and channels share the range.
        """
        from cgpro.media.relay import MediaRelay

        class Engine:
            name = "fake"

        relay = MediaRelay(self.clock, portRange=(30000, 30007), bindAddress="127.0.0.1",
                           bindAddress6="::1", engine=Engine())
        server = MediaServer(self.clock, portRange=(30000, 30007),
                             bindAddress=relay.bindAddress, allocator=relay.allocators[0],
                             ipv6Address=relay.bindAddress6,
                             allocator6=relay.allocators[relay.index6], listen=self.listen)
        taken = relay.allocators[0].allocate(3)
        channel = server.openChannel()
        self.assertNotIn((channel.localPort, channel.localPort + 1), taken)
        self.assertEqual(relay.allocators[0].inUse(), 4)
        self.assertIs(server.openChannel(6).allocator, relay.allocators[1])

    def test_ipv6(self):
        """
        IPv6 channels need an IPv6 address, and have their own range.
        """
        self.assertRaises(MediaExhausted, self.server.openChannel, 6)
        self.assertRaises(ValueError, self.server.openChannel, 5)
        server = MediaServer(self.clock, portRange=(30000, 30003), bindAddress="127.0.0.1",
                             ipv6Address="[::1]", listen=self.listen)
        self.assertEqual((server.openChannel(4).localPort, server.openChannel(6).localPort),
                         (30000, 30000))
        self.assertEqual(server.openChannel(6).localHost, "::1")

    def test_localHost(self):
        """
        The advertised address, else the bound one, else this host's
        primary address.
        """
        self.assertEqual(self.server.openChannel().localHost, "127.0.0.1")
        server = MediaServer(self.clock, bindAddress="0.0.0.0", listen=self.listen)
        self.assertEqual(server.openChannel().localHost, primaryAddress())
        server = MediaServer(self.clock, advertised="203.0.113.5", listen=self.listen)
        self.assertEqual(server.openChannel().localHost, "203.0.113.5")

    def test_stats(self):
        """
        Totals include closed channels.
        """
        a, b = self.channel(), self.channel()
        a.rtpReceived(rtp(1), PEER)
        a.rtpReceived(b"junk", PEER)
        b.play(self.server.promptFromSamples("t", tone(2)))
        self.frames(2)
        a.close()
        stats = self.server.stats()
        self.assertEqual((stats["channels"], stats["opened"], stats["packetsIn"],
                          stats["packetsOut"], stats["dropped"]), (1, 2, 1, 2, 1))
        self.assertEqual(stats["bytesIn"], 172)
        self.assertEqual(b.stats()["bytesOut"], 344)

    def test_stopService(self):
        """
        Stopping the service closes every channel.
        """
        self.server.startService()
        channels = [self.server.openChannel() for _ in range(3)]
        self.server.stopService()
        self.assertTrue(all(c.closed for c in channels))
        self.assertEqual(self.server.allocator.inUse(), 0)

    def test_loadPrompt(self):
        """
        Prompts load from WAV files, cached until the file changes;
        errors are L{AudioFormatError} and L{OSError}.
        """
        folder = tempfile.mkdtemp()
        path = os.path.join(folder, "hello.wav")
        with open(path, "wb") as f:
            f.write(writeWAV(tone(3)))
        prompt = self.server.loadPrompt(path)
        self.assertEqual((prompt.name, prompt.duration), ("hello.wav", 0.06))
        self.assertIs(self.server.loadPrompt(path), prompt)
        with open(path, "wb") as f:
            f.write(writeWAV(tone(4)))
        os.utime(path, (1, 1))
        self.assertEqual(self.server.loadPrompt(path).duration, 0.08)
        with open(path, "wb") as f:
            f.write(b"not audio")
        os.utime(path, (2, 2))
        self.assertRaises(AudioFormatError, self.server.loadPrompt, path)
        self.assertRaises(OSError, self.server.loadPrompt, os.path.join(folder, "none.wav"))
