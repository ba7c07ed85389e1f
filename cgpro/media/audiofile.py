# -*- test-case-name: tests.media.test_audiofile -*-
"""
Prompt files: WAV and AU (Sun/NeXT C{.snd}) read into what the media
server works with, 16-bit little-endian linear mono at 8 kHz, and
recordings written back as WAV.

The documented prompt format is "Record prompts at 8 kHz mono 16-bit";
the G.711 encodings (WAV formats 6 and 7, AU encodings 1 and 27) and
8-bit PCM are read as well because that is how telephony prompt sets are
often shipped.  Stereo is mixed down, but another sample rate is refused
(L{AudioFormatError}) instead of being resampled badly: the administrator
converts the file once with a real tool.
"""

import struct
import sys
from array import array

from zope.interface import implementer

from cgpro.core.rtinterfaces import IPrompt
from cgpro.media import g711

__all__ = ["AudioFormatError", "Prompt", "RATE", "FRAME_SAMPLES", "readAudio", "readWAV",
           "readAU", "writeWAV"]

#: the only sample rate the media server plays (G.711's)
RATE = 8000

#: the samples (= G.711 bytes) in one 20 ms RTP packet
FRAME_SAMPLES = 160

_WAVE_PCM, _WAVE_ALAW, _WAVE_ULAW, _WAVE_EXTENSIBLE = 1, 6, 7, 0xFFFE
_AU_ULAW, _AU_PCM8, _AU_PCM16, _AU_ALAW = 1, 2, 3, 27
_BIG_ENDIAN = sys.byteorder == "big"


class AudioFormatError(ValueError):
    """
    The bytes are not an audio file the media server can play; the
    message says what is wrong and, when it is the format, what to use.
    """


def _toBytes(samples):
    """
    @return: the C{array('h')} C{samples} as little-endian C{bytes}.
    """
    if _BIG_ENDIAN:
        samples = array("h", samples)
        samples.byteswap()
    return samples.tobytes()


def _checkRate(rate, name):
    """
    @raise AudioFormatError: unless C{rate} is 8 kHz.
    """
    if rate != RATE:
        raise AudioFormatError(
            "%s: sample rate %d Hz is not supported; record prompts at 8 kHz mono 16-bit "
            "(e.g. sox in.wav -r 8000 -c 1 -b 16 out.wav)" % (name, rate))


def _toLinear(data, kind, name):
    """
    Convert one channel-interleaved block into 16-bit little-endian.

    @param kind: C{'s16le'}, C{'s16be'}, C{'u8'}, C{'s8'}, C{'PCMU'} or
        C{'PCMA'}.
    """
    if kind == "s16le":
        return bytes(data[:len(data) & ~1])
    if kind == "s16be":
        samples = array("h")
        samples.frombytes(data[:len(data) & ~1])
        if not _BIG_ENDIAN:
            samples.byteswap()
        return _toBytes(samples)
    if kind in ("u8", "s8"):
        bias = 128 if kind == "u8" else 0
        values = array("b" if kind == "s8" else "B", data)
        return _toBytes(array("h", [(v - bias) << 8 for v in values]))
    if kind in g711.CODECS:
        return g711.decode(bytes(data), kind)
    raise AudioFormatError("%s: internal error, unknown sample kind %r" % (name, kind))


def _downmix(linear, channels):
    """
    @return: the mono mix (the mean of the channels) of interleaved
        16-bit C{linear} audio.
    """
    if channels == 1:
        return linear
    samples = g711.toSamples(linear[:len(linear) - len(linear) % (2 * channels)])
    lanes = [samples[i::channels] for i in range(channels)]
    return _toBytes(array("h", [sum(frame) // channels for frame in zip(*lanes)]))


def _chunks(data, name):
    """
    Walk the RIFF chunks after the C{WAVE} tag.

    @return: a C{dict} chunk id -> body (the first of each id).
    @raise AudioFormatError: for a chunk running past the end.
    """
    chunks = {}
    offset = 12
    while offset + 8 <= len(data):
        cid, size = struct.unpack_from("<4sI", data, offset)
        body = data[offset + 8:offset + 8 + size]
        if len(body) < size:
            if cid != b"data":
                raise AudioFormatError("%s: WAV chunk %r is truncated" % (name, cid))
            # a recorder killed before it fixed the size: keep what is there
        chunks.setdefault(cid, body)
        offset += 8 + size + (size & 1)
    return chunks


def _wavKind(formatTag, bits, name):
    """
    @return: the L{_toLinear} kind of a WAV C{fmt} format and sample width.
    """
    if formatTag == _WAVE_PCM and bits == 16:
        return "s16le"
    if formatTag == _WAVE_PCM and bits == 8:
        return "u8"
    if formatTag == _WAVE_ULAW and bits == 8:
        return "PCMU"
    if formatTag == _WAVE_ALAW and bits == 8:
        return "PCMA"
    raise AudioFormatError(
        "%s: WAV format %d with %d-bit samples is not supported; use 16-bit PCM "
        "(or 8-bit PCM, mu-law, A-law) at 8 kHz mono" % (name, formatTag, bits))


def readWAV(data, name="WAV file"):
    """
    Read a RIFF/WAVE file (unknown chunks such as C{LIST} or C{fact} are
    skipped; the first C{data} chunk is the audio).

    @param data: the file's bytes.
    @param name: what to call the file in error messages.
    @return: 16-bit little-endian linear mono 8 kHz C{bytes}.
    @raise AudioFormatError: not such a file, or not a supported format.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioFormatError("%s: not a RIFF/WAVE file" % (name,))
    chunks = _chunks(data, name)
    fmt = chunks.get(b"fmt ")
    if fmt is None or len(fmt) < 16:
        raise AudioFormatError("%s: WAV file without a valid fmt chunk" % (name,))
    if b"data" not in chunks:
        raise AudioFormatError("%s: WAV file without a data chunk" % (name,))
    formatTag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", fmt)
    if formatTag == _WAVE_EXTENSIBLE and len(fmt) >= 26:
        formatTag = struct.unpack_from("<H", fmt, 24)[0]
    if not 1 <= channels <= 8:
        raise AudioFormatError("%s: WAV file with %d channels" % (name, channels))
    _checkRate(rate, name)
    linear = _toLinear(chunks[b"data"], _wavKind(formatTag, bits, name), name)
    return _downmix(linear, channels)


def readAU(data, name="AU file"):
    """
    Read a Sun/NeXT audio file (C{.au}, C{.snd}): big-endian header, magic
    C{.snd}, encodings 1 (mu-law), 2 (8-bit PCM), 3 (16-bit PCM), 27
    (A-law).

    @return: 16-bit little-endian linear mono 8 kHz C{bytes}.
    @raise AudioFormatError: not such a file, or not a supported format.
    """
    if len(data) < 24 or data[:4] != b".snd":
        raise AudioFormatError("%s: not an AU (.snd) file" % (name,))
    offset, size, encoding, rate, channels = struct.unpack_from(">IIIII", data, 4)
    if not 24 <= offset <= len(data):
        raise AudioFormatError("%s: AU header offset %d is outside the file" % (name, offset))
    kinds = {_AU_ULAW: "PCMU", _AU_PCM8: "s8", _AU_PCM16: "s16be", _AU_ALAW: "PCMA"}
    if encoding not in kinds:
        raise AudioFormatError(
            "%s: AU encoding %d is not supported; use 16-bit PCM (3), mu-law (1), "
            "A-law (27) or 8-bit PCM (2) at 8 kHz mono" % (name, encoding))
    if not 1 <= channels <= 8:
        raise AudioFormatError("%s: AU file with %d channels" % (name, channels))
    _checkRate(rate, name)
    body = data[offset:] if size == 0xFFFFFFFF else data[offset:offset + size]
    return _downmix(_toLinear(body, kinds[encoding], name), channels)


def readAudio(data, name="audio file"):
    """
    Read a WAV or an AU file, told apart by their magic bytes.

    @return: 16-bit little-endian linear mono 8 kHz C{bytes}.
    @raise AudioFormatError: neither, or not a supported format.
    """
    if data[:4] == b"RIFF":
        return readWAV(data, name)
    if data[:4] == b".snd":
        return readAU(data, name)
    raise AudioFormatError("%s: neither a WAV nor an AU file; record prompts at 8 kHz "
                           "mono 16-bit WAV" % (name,))


def writeWAV(samples):
    """
    @param samples: 16-bit little-endian linear mono 8 kHz C{bytes} (a
        recording).
    @return: the bytes of a 16-bit PCM 8 kHz mono WAV file.
    """
    samples = bytes(samples[:len(samples) & ~1])
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(samples), b"WAVE",
                         b"fmt ", 16, _WAVE_PCM, 1, RATE, RATE * 2, 2, 16,
                         b"data", len(samples))
    return header + samples


@implementer(IPrompt)
class Prompt:
    """
    Audio decoded once (from a file, or made by the PBX) and kept with its
    G.711 encodings, made on first use, for every channel that plays it:
    a greeting heard by a thousand callers is encoded once per codec.

    @ivar samples: 16-bit little-endian linear 8 kHz C{bytes}.
    """

    def __init__(self, name, samples):
        self.name = name
        self.samples = bytes(samples[:len(samples) & ~1])
        self.duration = len(self.samples) / 2.0 / RATE
        self._encoded = {}
        self._linear = None

    def _padded(self):
        """
        @return: L{samples} padded with silence to whole frames.
        """
        rest = len(self.samples) % (2 * FRAME_SAMPLES)
        return self.samples + b"\0" * (2 * FRAME_SAMPLES - rest if rest else 0)

    def frames(self, codec):
        frames = self._encoded.get(codec)
        if frames is None:
            encoded = g711.encode(self._padded(), codec)
            frames = [encoded[i:i + FRAME_SAMPLES]
                      for i in range(0, len(encoded), FRAME_SAMPLES)]
            self._encoded[codec] = frames
        return frames

    def linearFrames(self):
        """
        @return: C{list} of C{array('h')} frames of 160 samples, what a
            conference mixes in.
        """
        if self._linear is None:
            padded = self._padded()
            step = 2 * FRAME_SAMPLES
            self._linear = [g711.toSamples(padded[i:i + step])
                            for i in range(0, len(padded), step)]
        return self._linear
