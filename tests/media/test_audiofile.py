# -*- test-case-name: tests.media.test_audiofile -*-
"""
Tests for L{cgpro.media.audiofile}: WAV and AU files built here with
C{struct} (no binary fixtures) read into 16-bit linear mono 8 kHz.
"""

import struct
import unittest

from cgpro.media import g711
from cgpro.media.audiofile import (AudioFormatError, readAU, readAudio, readWAV,
                                   writeWAV)


def pcm(*samples):
    return struct.pack("<%dh" % len(samples), *samples)


def wav(body, formatTag=1, channels=1, rate=8000, bits=16, extra=()):
    """
    @param extra: C{(id, body)} chunks to put before C{fmt} and C{data}.
    @return: the bytes of a WAV file.
    """
    fmt = struct.pack("<HHIIHH", formatTag, channels, rate, rate * channels * bits // 8,
                      channels * bits // 8, bits)
    chunks = b""
    for cid, data in list(extra) + [(b"fmt ", fmt), (b"data", body)]:
        chunks += struct.pack("<4sI", cid, len(data)) + data + (b"\0" if len(data) & 1 else b"")
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def au(body, encoding=3, rate=8000, channels=1, annotation=b"\0" * 8):
    """
    @return: the bytes of an AU file.
    """
    offset = 24 + len(annotation)
    return struct.pack(">4sIIIII", b".snd", offset, len(body), encoding, rate,
                       channels) + annotation + body


class WAVTests(unittest.TestCase):
    """
    L{readWAV}.
    """

    def test_pcm16(self):
        """
        16-bit PCM is returned as it is.
        """
        samples = pcm(0, 1000, -1000, 32767)
        self.assertEqual(readWAV(wav(samples)), samples)

    def test_skipsUnknownChunks(self):
        """
        LIST (odd-sized, padded) and fact chunks are skipped.
        """
        samples = pcm(5, 6)
        data = wav(samples, extra=[(b"LIST", b"INFOabc"), (b"fact", b"\x02\0\0\0")])
        self.assertEqual(readWAV(data), samples)

    def test_pcm8(self):
        """
        8-bit PCM is unsigned, centered on 128.
        """
        self.assertEqual(readWAV(wav(bytes([128, 255, 0]), bits=8)), pcm(0, 127 << 8, -32768))

    def test_g711(self):
        """
        Formats 7 (mu-law) and 6 (A-law) are decoded.
        """
        codes = bytes([0xFF, 0x00, 0x80])
        self.assertEqual(readWAV(wav(codes, formatTag=7, bits=8)), g711.ulaw2linear(codes))
        self.assertEqual(readWAV(wav(codes, formatTag=6, bits=8)), g711.alaw2linear(codes))

    def test_stereoDownmix(self):
        """
        Stereo frames are averaged into mono.
        """
        self.assertEqual(readWAV(wav(pcm(100, 300, -50, -150), channels=2)), pcm(200, -100))

    def test_otherRate(self):
        """
        Another sample rate is refused with the documented format in the
        message.
        """
        with self.assertRaises(AudioFormatError) as caught:
            readWAV(wav(pcm(1, 2), rate=44100))
        self.assertIn("44100", str(caught.exception))
        self.assertIn("8 kHz mono 16-bit", str(caught.exception))

    def test_unsupportedFormat(self):
        """
        Compressed formats (here IMA ADPCM) and odd widths are refused.
        """
        self.assertRaises(AudioFormatError, readWAV, wav(b"\0" * 4, formatTag=0x11, bits=4))
        self.assertRaises(AudioFormatError, readWAV, wav(b"\0" * 6, bits=24))

    def test_garbage(self):
        """
        Truncated and garbage files raise L{AudioFormatError} (a
        C{ValueError}), never anything else.
        """
        good = wav(pcm(*range(100)))
        for bad in (b"", b"RIFF", b"RIFF\0\0\0\0WAVE", good[:20], good[:30],
                    b"RIFF\xff\xff\xff\xffWAVEfmt \xff\xff\xff\x7f", b"\x00" * 100,
                    wav(pcm(1), channels=0)):
            self.assertRaises(AudioFormatError, readWAV, bad)
        self.assertTrue(issubclass(AudioFormatError, ValueError))

    def test_truncatedData(self):
        """
        A data chunk shorter than its header says (a recorder that died)
        keeps the samples present.
        """
        good = wav(pcm(1, 2, 3, 4))
        self.assertEqual(readWAV(good[:-3]), pcm(1, 2))

    def test_writeRoundTrip(self):
        """
        L{writeWAV} writes a 16-bit 8 kHz mono file that reads back.
        """
        samples = pcm(*range(-500, 500))
        data = writeWAV(samples)
        self.assertEqual(data[:4], b"RIFF")
        self.assertEqual(struct.unpack_from("<HHIIHH", data, 20), (1, 1, 8000, 16000, 2, 16))
        self.assertEqual(readWAV(data), samples)
        self.assertEqual(data, wav(samples))


class AUTests(unittest.TestCase):
    """
    L{readAU}.
    """

    def test_pcm16(self):
        """
        Encoding 3 is big-endian 16-bit PCM.
        """
        self.assertEqual(readAU(au(struct.pack(">3h", 1, -2, 300))), pcm(1, -2, 300))

    def test_pcm8(self):
        """
        Encoding 2 is signed 8-bit PCM.
        """
        self.assertEqual(readAU(au(bytes([0, 127, 128]), encoding=2)),
                         pcm(0, 127 << 8, -32768))

    def test_g711(self):
        """
        Encodings 1 (mu-law) and 27 (A-law).
        """
        codes = bytes([0x12, 0x34, 0xFE])
        self.assertEqual(readAU(au(codes, encoding=1)), g711.ulaw2linear(codes))
        self.assertEqual(readAU(au(codes, encoding=27)), g711.alaw2linear(codes))

    def test_unknownSize(self):
        """
        A size of 0xFFFFFFFF means "to the end of the file".
        """
        data = bytearray(au(struct.pack(">2h", 7, 8)))
        data[8:12] = b"\xff" * 4
        self.assertEqual(readAU(bytes(data)), pcm(7, 8))

    def test_stereo(self):
        """
        Stereo is mixed down.
        """
        self.assertEqual(readAU(au(struct.pack(">4h", 10, 20, 30, 50), channels=2)),
                         pcm(15, 40))

    def test_refused(self):
        """
        Another rate, encoding, or a broken header.
        """
        self.assertRaises(AudioFormatError, readAU, au(b"\0\0", rate=16000))
        self.assertRaises(AudioFormatError, readAU, au(b"\0\0", encoding=23))
        self.assertRaises(AudioFormatError, readAU, b".snd\0\0\0")
        bad = bytearray(au(b"\0\0"))
        bad[4:8] = struct.pack(">I", 1000)
        self.assertRaises(AudioFormatError, readAU, bytes(bad))


class ReadAudioTests(unittest.TestCase):
    """
    L{readAudio} tells the formats apart.
    """

    def test_dispatch(self):
        """
        WAV and AU by magic; anything else refused.
        """
        self.assertEqual(readAudio(wav(pcm(3))), pcm(3))
        self.assertEqual(readAudio(au(struct.pack(">h", 3))), pcm(3))
        with self.assertRaises(AudioFormatError) as caught:
            readAudio(b"ID3\x04garbage", "hello.mp3")
        self.assertIn("hello.mp3", str(caught.exception))
