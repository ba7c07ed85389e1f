# -*- test-case-name: tests.media.test_conference -*-
"""
Conferences of the media server: channels mixed on the shared ticker.

Why a module of its own: the mixing is a separate concern from a
channel's RTP handling and only talks to its members through a few
attributes and methods (C{_takeConferenceFrame}, C{_sendAudio},
C{_playback}, C{_digits}, C{codec}, C{remote}), so it lives apart from
L{cgpro.media.channel}, which re-exports L{Conference}.  It does not
import L{cgpro.media.channel} (no import cycle).
"""

from zope.interface import implementer

from cgpro.core.rtinterfaces import IConference
from cgpro.media import g711
from cgpro.media.audiofile import FRAME_SAMPLES

__all__ = ["Conference"]


@implementer(IConference)
class Conference:
    """
    Channels hearing each other (see L{IConference}), mixed on the
    server's ticker: per tick the work is one sum over the members'
    frames, then one subtraction and encoding per member that spoke
    (members who did not all hear the same sum, encoded once per codec).
    """

    def __init__(self, server):
        self.server = server
        self._members = []
        self._prompts = []

    def add(self, channel):
        if channel in self._members:
            return
        if channel.conference is not None:
            channel.conference.remove(channel)
        channel.stopPlaying()
        channel.conference = self
        del channel._conferenceInput[:]
        self._members.append(channel)
        self.server._want(self)

    def remove(self, channel):
        if channel not in self._members:
            return
        self._members.remove(channel)
        channel.conference = None
        channel._talking = False
        del channel._conferenceInput[:]
        self._schedule()

    def play(self, prompt):
        self._prompts.append([prompt.linearFrames(), 0])
        self.server._want(self)

    def members(self):
        return list(self._members)

    def _schedule(self):
        if self._members or self._prompts:
            self.server._want(self)
        else:
            self.server._unwant(self)

    def _promptFrames(self):
        """
        @return: this tick's frame of each prompt playing (finished ones
            are dropped).
        """
        frames = []
        for playing in self._prompts:
            frames.append(playing[0][playing[1]])
            playing[1] += 1
        self._prompts = [p for p in self._prompts if p[1] < len(p[0])]
        return frames

    def tick(self, now):
        inputs = [(member, member._takeConferenceFrame()) for member in self._members]
        sources = [frame for _, frame in inputs if frame is not None] + self._promptFrames()
        total = [sum(column) for column in zip(*sources)] if sources else None
        shared = {}
        for member, own in inputs:
            if member._playback is not None or member._digits or member.remote is None:
                continue
            codec = member.codec
            if own is not None:
                payload = g711.encodeSamples(map(int.__sub__, total, own), codec)
            else:
                payload = shared.get(codec)
                if payload is None:
                    payload = shared[codec] = (
                        g711.encodeSamples(total, codec) if total is not None
                        else bytes([g711.CODECS[codec][3]]) * FRAME_SAMPLES)
            member._sendAudio(payload)
        self._schedule()
