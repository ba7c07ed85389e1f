# -*- test-case-name: tests.media.test_g711 -*-
"""
Tests for L{cgpro.media.g711}: the tables against the ITU-T G.191
reference algorithms (written here as plainly as the C code), known
vectors, and round trips over the whole 16-bit range.
"""

import struct
import unittest

from cgpro.media import g711


def referenceUlaw(sample):
    """
    ITU-T G.191 C{ulaw_compress} for one sample, line by line.
    """
    absno = ((~sample) >> 2) + 33 if sample < 0 else (sample >> 2) + 33
    if absno > 0x1FFF:
        absno = 0x1FFF
    i = absno >> 6
    segno = 1
    while i != 0:
        segno += 1
        i >>= 1
    high = 0x0008 - segno
    low = 0x000F - ((absno >> segno) & 0x000F)
    code = (high << 4) | low
    if sample >= 0:
        code |= 0x0080
    return code


def referenceAlaw(sample):
    """
    ITU-T G.191 C{alaw_compress} for one sample, line by line.
    """
    ix = (~sample) >> 4 if sample < 0 else sample >> 4
    if ix > 15:
        iexp = 1
        while ix > 16 + 15:
            ix >>= 1
            iexp += 1
        ix -= 16
        ix += iexp << 4
    if sample >= 0:
        ix |= 0x0080
    return ix ^ 0x0055


def referenceUlawExpand(code):
    """
    ITU-T G.191 C{ulaw_expand}.
    """
    sign = -1 if code < 0x80 else 1
    mantissa = ~code
    exponent = (mantissa >> 4) & 0x07
    segment = exponent + 1
    mantissa &= 0x0F
    step = 4 << segment
    return sign * ((0x80 << exponent) + step * mantissa + step // 2 - 4 * 33)


def referenceAlawExpand(code):
    """
    ITU-T G.191 C{alaw_expand}.
    """
    ix = (code ^ 0x55) & 0x7F
    iexp = ix >> 4
    mant = ix & 0x0F
    if iexp > 0:
        mant += 16
    mant = (mant << 4) + 0x08
    if iexp > 1:
        mant <<= iexp - 1
    return mant if code > 127 else -mant


def pcm(*samples):
    """
    @return: 16-bit little-endian bytes of C{samples}.
    """
    return struct.pack("<%dh" % len(samples), *samples)


class TableTests(unittest.TestCase):
    """
    The tables are G.711 exactly.
    """

    def test_knownVectors(self):
        """
        Zero is 0xFF in mu-law and 0xD5 in A-law; the extremes saturate.
        """
        self.assertEqual(g711.linear2ulaw(pcm(0, 32767, -32768, -1)), b"\xff\x80\x00\x7f")
        self.assertEqual(g711.linear2alaw(pcm(0, 32767, -32768)), b"\xd5\xaa\x2a")
        self.assertEqual(g711.ULAW_SILENCE, 0xFF)
        self.assertEqual(g711.ALAW_SILENCE, 0xD5)

    def test_encodeMatchesReference(self):
        """
        Every 16-bit sample encodes as the G.191 reference code does.
        """
        for sample in range(-32768, 32768):
            self.assertEqual(g711.ULAW_ENCODE[sample & 0xFFFF], referenceUlaw(sample), sample)
            self.assertEqual(g711.ALAW_ENCODE[sample & 0xFFFF], referenceAlaw(sample), sample)

    def test_decodeMatchesReference(self):
        """
        Every code decodes as the G.191 reference expanders do.
        """
        for code in range(256):
            self.assertEqual(g711.ULAW_DECODE[code], referenceUlawExpand(code), code)
            self.assertEqual(g711.ALAW_DECODE[code], referenceAlawExpand(code), code)

    def test_decodeEncodeIdentity(self):
        """
        Encoding a decoded value gives the code back (for A-law always,
        for mu-law except the negative zero 0x7F, which decodes to 0).
        """
        for code in range(256):
            self.assertEqual(g711.ALAW_ENCODE[g711.ALAW_DECODE[code] & 0xFFFF], code)
            if code != 0x7F:
                self.assertEqual(g711.ULAW_ENCODE[g711.ULAW_DECODE[code] & 0xFFFF], code)

    def test_roundTripWithinQuantization(self):
        """
        decode(encode(x)) stays within half a quantization step of x over
        the whole range: the step doubles per segment, so the error is
        bounded relative to the magnitude (plus the clipping at the top).
        """
        samples = list(range(-32768, 32768, 7)) + [32767]
        data = pcm(*samples)
        for codec, bound in (("PCMU", 1024), ("PCMA", 1024)):
            back = struct.unpack("<%dh" % len(samples),
                                 g711.decode(g711.encode(data, codec), codec))
            for x, y in zip(samples, back):
                self.assertLessEqual(abs(x - y), max(bound, abs(x) // 16 + 1),
                                     (codec, x, y))
                if abs(x) < 4000:
                    self.assertLessEqual(abs(x - y), abs(x) // 16 + 66, (codec, x, y))


class BulkTests(unittest.TestCase):
    """
    The buffer conversions.
    """

    def test_decodeBuffer(self):
        """
        A buffer decodes to the table's little-endian values.
        """
        codes = bytes(range(256))
        self.assertEqual(g711.ulaw2linear(codes), pcm(*g711.ULAW_DECODE))
        self.assertEqual(g711.alaw2linear(codes), pcm(*g711.ALAW_DECODE))
        self.assertEqual(list(g711.decodeSamples(codes, "PCMA")), list(g711.ALAW_DECODE))

    def test_frame(self):
        """
        A 160-sample frame gives 160 codes and back 320 bytes.
        """
        frame = pcm(*range(-8000, 8000, 100))
        self.assertEqual(len(g711.linear2ulaw(frame)), 160)
        self.assertEqual(len(g711.ulaw2linear(g711.linear2ulaw(frame))), 320)

    def test_oddLength(self):
        """
        Half a sample is refused.
        """
        self.assertRaises(ValueError, g711.linear2ulaw, b"\x00\x00\x01")

    def test_transcode(self):
        """
        The translate tables are decode-then-encode, and L{transcode}
        applies them (the same codec passes through).
        """
        codes = bytes(range(256))
        expected = g711.linear2alaw(g711.ulaw2linear(codes))
        self.assertEqual(g711.ulawToAlaw(codes), expected)
        self.assertEqual(g711.transcode(codes, "PCMU", "PCMA"), expected)
        self.assertEqual(g711.alawToUlaw(codes), g711.linear2ulaw(g711.alaw2linear(codes)))
        self.assertIs(g711.transcode(codes, "PCMA", "PCMA"), codes)
        self.assertRaises(ValueError, g711.transcode, codes, "PCMU", "G729")

    def test_encodeSamplesClips(self):
        """
        Sums beyond 16 bits are clipped before encoding.
        """
        self.assertEqual(g711.encodeSamples([100000, -100000, 0], "PCMU"),
                         g711.linear2ulaw(pcm(32767, -32768, 0)))
        self.assertEqual(g711.encodeSamples([70000, 5], "PCMA"),
                         g711.linear2alaw(pcm(32767, 5)))

    def test_unknownCodec(self):
        """
        Only PCMU and PCMA are known.
        """
        self.assertRaises(ValueError, g711.encode, b"\0\0", "GSM")
        self.assertRaises(ValueError, g711.decode, b"\0", "G722")
