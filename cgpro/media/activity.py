"""
What a media server channel is doing at a given tick: playing a prompt,
recording the caller, sending an RFC 4733 digit.  Small state holders of
L{cgpro.media.channel.MediaChannel}, kept apart so the channel module
holds the sending and receiving logic only.
"""

from twisted.internet import defer

from cgpro.media import g711
from cgpro.media.audiofile import FRAME_SAMPLES

#: mean absolute amplitude under which a recorded frame counts as silence
SILENCE_LEVEL = 500


class Playback:
    """
    A prompt being played by a channel.
    """

    def __init__(self, frames, loop):
        self.frames = frames
        self.loop = loop
        self.position = 0
        self.deferred = defer.Deferred()


class Recording:
    """
    A recording under way: the decoded samples and when it must stop.
    """

    def __init__(self, now, maxSeconds, silence):
        self.deferred = defer.Deferred()
        self.buffer = bytearray()
        self.limit = int(maxSeconds * 8000) * 2
        self.started = now
        self.maxSeconds = maxSeconds
        self.silence = silence
        self.lastSound = now

    def add(self, linear, now):
        """
        Keep the decoded C{linear} frame; a frame loud enough on average
        restarts the silence count.

        @return: whether the recording is full.
        """
        self.buffer += linear[:self.limit - len(self.buffer)]
        if self.silence is not None:
            samples = g711.toSamples(linear)
            if samples and sum(map(abs, samples)) >= SILENCE_LEVEL * len(samples):
                self.lastSound = now
        return len(self.buffer) >= self.limit

    def due(self, now):
        """
        @return: whether C{maxSeconds} or the silence have run out.
        """
        if now - self.started >= self.maxSeconds:
            return True
        return self.silence is not None and now - self.lastSound >= self.silence


class DigitEvent:
    """
    An RFC 4733 event being sent: its packets grow in duration one frame
    per tick, then three end packets close it.
    """

    def __init__(self, code, duration):
        self.code = code
        self.total = max(FRAME_SAMPLES, int(duration * 8000))
        self.elapsed = 0
        self.timestamp = None
