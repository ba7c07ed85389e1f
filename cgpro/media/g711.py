# -*- test-case-name: tests.media.test_g711 -*-
"""
G.711 companding (ITU-T G.711, as in the G.191 reference code): mu-law
(PCMU) and A-law (PCMA) between 16-bit linear samples and 8-bit codes.

The media server converts every 20 ms frame (160 samples) of every
channel, so the per-frame cost matters more than anything else here.  All
tables are built once at import:

  - decoding is two C{bytes.translate} calls (one for the low and one for
    the high byte of each sample) interleaved by slice assignment: no
    Python-level loop per sample;
  - encoding looks each sample up in a 65536-entry C{bytes} table (indexed
    by the sample as an unsigned 16-bit number) through C{map}, the
    cheapest per-sample step plain Python has;
  - PCMU and PCMA convert into each other with one C{bytes.translate}
    (G.711's own transcoding tables are what decoding then encoding
    gives, which is how they are built here).

We do not use C{audioop}: it is deprecated and gone in Python 3.13.
"""

import sys
from array import array

__all__ = [
    "ULAW_SILENCE", "ALAW_SILENCE", "ulaw2linear", "alaw2linear", "linear2ulaw",
    "linear2alaw", "decode", "encode", "encodeSamples", "decodeSamples", "toSamples",
    "ulawToAlaw", "alawToUlaw", "transcode", "ULAW_DECODE", "ALAW_DECODE",
    "ULAW_ENCODE", "ALAW_ENCODE", "ULAW_TO_ALAW", "ALAW_TO_ULAW", "CODECS",
]

_BIG_ENDIAN = sys.byteorder == "big"


def _ulawDecode(code):
    """
    @return: the linear value (-32124..32124) of the mu-law C{code}.
    """
    code = ~code & 0xFF
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return -magnitude if code & 0x80 else magnitude


def _alawDecode(code):
    """
    @return: the linear value (-32256..32256) of the A-law C{code}.
    """
    value = code ^ 0x55
    exponent = (value >> 4) & 0x07
    mantissa = value & 0x0F
    if exponent:
        mantissa += 16
    magnitude = (mantissa << 4) + 8
    if exponent > 1:
        magnitude <<= exponent - 1
    return magnitude if code & 0x80 else -magnitude


def _ulawEncode(sample):
    """
    The G.191 mu-law compressor for one 16-bit sample: 14 bits of
    magnitude (negative values one's-complemented, so -1 is the "negative
    zero" 0x7F), biased by 33, segment found by the highest bit set.
    """
    magnitude = ((~sample if sample < 0 else sample) >> 2) + 33
    if magnitude > 0x1FFF:
        magnitude = 0x1FFF
    segment = 1
    rest = magnitude >> 6
    while rest:
        segment += 1
        rest >>= 1
    code = ((8 - segment) << 4) | (15 - ((magnitude >> segment) & 0x0F))
    return code | 0x80 if sample >= 0 else code


def _alawEncode(sample):
    """
    The G.191 A-law compressor for one 16-bit sample: 12 bits of
    magnitude (one's complement for negative values), a linear first
    segment, even bits inverted (XOR 0x55).
    """
    value = (~sample if sample < 0 else sample) >> 4
    if value > 15:
        exponent = 1
        while value > 16 + 15:
            value >>= 1
            exponent += 1
        value = value - 16 + (exponent << 4)
    if sample >= 0:
        value |= 0x80
    return value ^ 0x55


def _signed(index):
    """
    @return: the signed value of a 16-bit table index.
    """
    return index - 0x10000 if index & 0x8000 else index


#: the linear value of each code (C{tuple} of 256 C{int})
ULAW_DECODE = tuple(_ulawDecode(code) for code in range(256))
ALAW_DECODE = tuple(_alawDecode(code) for code in range(256))

#: the code of each sample, indexed by the sample as unsigned 16-bit (C{bytes})
ULAW_ENCODE = bytes(_ulawEncode(_signed(index)) for index in range(65536))
ALAW_ENCODE = bytes(_alawEncode(_signed(index)) for index in range(65536))

#: C{bytes.translate} tables between the two laws
ULAW_TO_ALAW = bytes(ALAW_ENCODE[ULAW_DECODE[code] & 0xFFFF] for code in range(256))
ALAW_TO_ULAW = bytes(ULAW_ENCODE[ALAW_DECODE[code] & 0xFFFF] for code in range(256))

#: the code of linear 0, what a silent frame is made of
ULAW_SILENCE = ULAW_ENCODE[0]
ALAW_SILENCE = ALAW_ENCODE[0]


def _byteTables(decodeTable):
    """
    @return: C{(low, high)} translate tables giving the low and the high
        byte of each code's little-endian linear value.
    """
    values = [value & 0xFFFF for value in decodeTable]
    return bytes(v & 0xFF for v in values), bytes(v >> 8 for v in values)


_ULAW_LOW, _ULAW_HIGH = _byteTables(ULAW_DECODE)
_ALAW_LOW, _ALAW_HIGH = _byteTables(ALAW_DECODE)


def _expand(codes, low, high):
    """
    @return: C{bytes} of 16-bit little-endian samples: each code's low byte
        at even offsets, its high byte at odd ones.
    """
    out = bytearray(2 * len(codes))
    out[0::2] = codes.translate(low)
    out[1::2] = codes.translate(high)
    return bytes(out)


def ulaw2linear(codes):
    """
    @param codes: mu-law bytes.
    @return: 16-bit little-endian linear samples (C{bytes}, twice as long).
    """
    return _expand(codes, _ULAW_LOW, _ULAW_HIGH)


def alaw2linear(codes):
    """
    @param codes: A-law bytes.
    @return: 16-bit little-endian linear samples (C{bytes}, twice as long).
    """
    return _expand(codes, _ALAW_LOW, _ALAW_HIGH)


def _unsignedSamples(linear):
    """
    @return: an C{array('H')} of the 16-bit little-endian C{linear}
        samples, read as unsigned (the encode tables' index).
    @raise ValueError: for an odd number of bytes.
    """
    if len(linear) & 1:
        raise ValueError("16-bit linear audio must have an even number of bytes, not %d"
                         % (len(linear),))
    samples = array("H")
    samples.frombytes(linear)
    if _BIG_ENDIAN:
        samples.byteswap()
    return samples


def linear2ulaw(linear):
    """
    @param linear: 16-bit little-endian samples (C{bytes}-like).
    @return: mu-law bytes, one per sample.
    """
    return bytes(map(ULAW_ENCODE.__getitem__, _unsignedSamples(linear)))


def linear2alaw(linear):
    """
    @param linear: 16-bit little-endian samples (C{bytes}-like).
    @return: A-law bytes, one per sample.
    """
    return bytes(map(ALAW_ENCODE.__getitem__, _unsignedSamples(linear)))


def ulawToAlaw(codes):
    """
    @return: the A-law bytes of the mu-law C{codes} (no linear step).
    """
    return codes.translate(ULAW_TO_ALAW)


def alawToUlaw(codes):
    """
    @return: the mu-law bytes of the A-law C{codes} (no linear step).
    """
    return codes.translate(ALAW_TO_ULAW)


#: codec name -> (decoder, encoder, encode table, silence code)
CODECS = {
    "PCMU": (ulaw2linear, linear2ulaw, ULAW_ENCODE, ULAW_SILENCE),
    "PCMA": (alaw2linear, linear2alaw, ALAW_ENCODE, ALAW_SILENCE),
}


def _codec(codec):
    """
    @return: the L{CODECS} entry of C{codec}.
    @raise ValueError: for a codec other than PCMU and PCMA.
    """
    try:
        return CODECS[codec]
    except KeyError:
        raise ValueError("unsupported codec %r: G.711 only (PCMU, PCMA)" % (codec,))


def decode(codes, codec):
    """
    @return: the 16-bit little-endian linear samples of C{codes}.
    """
    return _codec(codec)[0](codes)


def encode(linear, codec):
    """
    @return: the C{codec} bytes of the 16-bit little-endian C{linear}.
    """
    return _codec(codec)[1](linear)


def toSamples(linear):
    """
    @param linear: 16-bit little-endian samples (C{bytes}-like, of even
        length).
    @return: them as an C{array('h')} (native order): what sums and
        amplitudes are computed on.
    """
    samples = array("h")
    samples.frombytes(linear)
    if _BIG_ENDIAN:
        samples.byteswap()
    return samples


def decodeSamples(codes, codec):
    """
    @return: the samples of C{codes} as an C{array('h')}, what the
        conference mixer adds up.
    """
    return toSamples(decode(codes, codec))


def encodeSamples(values, codec):
    """
    Encode integers of any range (a mix may exceed 16 bits), clipping
    each to -32768..32767 first.

    @param values: an iterable of C{int}.
    @return: C{codec} bytes, one per value.
    """
    table = _codec(codec)[2]
    top, bottom = table[0x7FFF], table[0x8000]
    return bytes([table[v & 0xFFFF] if -32768 <= v <= 32767 else (top if v > 0 else bottom)
                  for v in values])


def transcode(codes, source, target):
    """
    @return: C{codes} of codec C{source} in codec C{target}.
    """
    if source == target:
        return codes
    _codec(source)
    _codec(target)
    return codes.translate(ULAW_TO_ALAW if source == "PCMU" else ALAW_TO_ULAW)
