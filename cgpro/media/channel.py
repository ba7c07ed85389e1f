# -*- test-case-name: tests.media.test_channel -*-
"""
The media server: RTP endpoints the PBX applications talk through.

Where the relay (L{cgpro.media.relay}) only forwards packets between two
parties, the media server I{is} a party: a L{MediaChannel} plays prompts,
records, sends and hears DTMF (RFC 4733), is connected to another channel
(a gateway leg) or mixed in a L{Conference}.  G.711 only (PCMU, PCMA) in
20 ms frames of 160 samples.

Timing: one shared ticker (L{MediaServer}) drives every channel and
conference that has something to send, one tick per 20 ms frame.  Tick
C{n} is due at reactor time C{n * 0.02}, so a late timer call is caught up
by running the missing ticks at once (a few at most) and a long prompt
does not drift; a channel's RTP timestamp is derived from the tick number,
so it follows real time across talk spurts.  There is never a timer per
channel: a thousand calls cost one timer, and a test drives them all with
one L{twisted.internet.task.Clock}.

Receiving is a Twisted datagram protocol per channel: the per-packet work
is one header parse and, only when someone needs it (a recording, a
conference), one G.711 decode.
"""

import errno
import ipaddress
import os
import random
import struct
from array import array
from collections import deque

from zope.interface import implementer

from twisted.application import service
from twisted.internet import defer
from twisted.logger import Logger

from cgpro.core.interfaces import MediaExhausted
from cgpro.core.rtinterfaces import IMediaChannel, IMediaServer
from cgpro.media import g711
from cgpro.media.audiofile import FRAME_SAMPLES, Prompt, readAudio
from cgpro.media.activity import SILENCE_LEVEL, DigitEvent, Playback, Recording
from cgpro.media.conference import Conference
from cgpro.media.ports import PortPairAllocator
from cgpro.media.rtp import (DIGITS, _EVENT_VOLUME, _listenPair, _parseHost, _RTCPProtocol,
                             _RTPProtocol, parseRTP, primaryAddress)


#: packs an RTP header (no CSRC, no extension)
_RTP_HEADER = struct.Struct("!BBHII").pack
log = Logger()

__all__ = ["MediaServer", "MediaChannel", "Prompt", "Conference", "parseRTP", "primaryAddress",
           "FRAME_SECONDS", "FRAME_SAMPLES", "DIGITS", "SILENCE_LEVEL"]

#: the packet interval (L{FRAME_SAMPLES} samples)
FRAME_SECONDS = 0.02


#: the static payload types (RFC 3551) of our codecs, and comfort noise
STATIC_PAYLOADS = {"PCMU": 0, "PCMA": 8}
COMFORT_NOISE = 13

#: at most this many late ticks are run at once; beyond that they are
#: skipped (the reactor was blocked: sending a burst would not help)
_MAX_CATCH_UP = 5

#: the conference input a member may have buffered (samples), ~100 ms
_MAX_BUFFERED = 5 * FRAME_SAMPLES

#: bind errors no other port would fix
_DESCRIPTOR_ERRORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
_ADDRESS_ERRORS = (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT)


@implementer(IMediaChannel)
class MediaChannel:
    """
    One RTP endpoint (see L{IMediaChannel}), made by
    L{MediaServer.openChannel}.

    @ivar payload: the payload type of L{codec} (sent and accepted).
    @ivar eventPayload: the RFC 4733 payload type, or C{None}.
    @ivar remote: C{(host, port)} packets go to, or C{None}.
    @ivar latched: whether a received packet fixed L{remote}.
    @ivar lastReceived: reactor time of the last accepted packet (or of
        the opening): the owner hangs up calls silent for too long.
    @ivar conference: the L{Conference} it is in, or C{None}.
    @ivar peer: the channel it is L{connect}ed to, or C{None}.
    @ivar released: after L{close}, a L{Deferred} firing once the sockets
        are closed and the port pair is back in the allocator; before,
        C{None}.
    """

    def __init__(self, server, family, localHost, allocator):
        self.server = server
        self.family = family
        self.localHost = localHost
        self.localPort = None
        self.allocator = allocator
        self.codec = "PCMU"
        self.payload = STATIC_PAYLOADS["PCMU"]
        self.eventPayload = 101
        self.remote = None
        self.latched = False
        self.digitReceived = None
        self.closed = False
        self.conference = None
        self.peer = None
        self.released = None
        self.ssrc = random.getrandbits(32)
        self.lastReceived = server.reactor.seconds()
        self._seq = random.getrandbits(16)
        self._tsOffset = random.getrandbits(32)
        self._ports = ()
        self._sendto = None
        self._playback = None
        self._recording = None
        self._digits = deque()
        self._talking = False
        self._expectedSeq = None
        self._lastEvent = None
        self._conferenceInput = array("h")
        self.counters = dict.fromkeys(
            ("packetsIn", "packetsOut", "bytesIn", "bytesOut", "lost", "dropped",
             "foreign", "sendErrors"), 0)
        self.rtpProtocol = _RTPProtocol(self)
        self.rtcpProtocol = _RTCPProtocol()

    def __repr__(self):
        return "<MediaChannel %s:%s>" % (self.localHost, self.localPort)

    # -- setup ---------------------------------------------------------------

    def setRemote(self, host, port, codec="PCMU", eventPayload=101, payload=None):
        """
        See L{IMediaChannel.setRemote}; a new address also unlatches, so
        a re-INVITE moving the peer is followed.

        @raise ValueError: for a codec other than PCMU/PCMA, or a host
            that is not an IP address.
        """
        if codec not in STATIC_PAYLOADS:
            raise ValueError("unsupported codec %r: G.711 only (PCMU, PCMA)" % (codec,))
        address, _ = _parseHost(host)
        remote = (address, int(port))
        if remote != self.remote:
            self.latched = False
        self.remote = remote
        self.codec = codec
        self.payload = STATIC_PAYLOADS[codec] if payload is None else payload
        self.eventPayload = eventPayload

    def _bound(self, rtpPort, ports):
        """
        The server bound C{rtpPort} (and the next one) as C{ports}.
        """
        self.localPort = rtpPort
        self._ports = ports
        # the hot path: send on the socket itself, past Twisted's address
        # checks in Port.write (a fifth of the attendant's CPU at 1,500
        # calls); a test's fake port has only write()
        sock = getattr(ports[0], "socket", None)
        self._sendto = sock.sendto if sock is not None else ports[0].write

    # -- sending -------------------------------------------------------------

    def _timestamp(self):
        """
        @return: the RTP timestamp of the current tick.
        """
        return (self._tsOffset + FRAME_SAMPLES * self.server.tickNumber) & 0xFFFFFFFF

    def _send(self, payloadType, marker, timestamp, payload):
        """
        Send one RTP packet to the remote (none known: nothing is sent).
        """
        if self.remote is None or self.closed or self._sendto is None:
            return
        packet = _RTP_HEADER(0x80, payloadType | (0x80 if marker else 0),
                             self._seq, timestamp, self.ssrc) + payload
        self._seq = (self._seq + 1) & 0xFFFF
        try:
            self._sendto(packet, self.remote)
        except (OSError, ValueError) as e:
            self.counters["sendErrors"] += 1
            log.debug("media channel {channel}: cannot send to {remote}: {err}",
                      channel=self, remote=self.remote, err=e)
            return
        self.counters["packetsOut"] += 1
        self.counters["bytesOut"] += len(packet)

    def _sendAudio(self, payload):
        """
        Send one frame of the current tick; the first of a talk spurt has
        the marker bit.
        """
        self._send(self.payload, not self._talking, self._timestamp(), payload)
        self._talking = True

    def _relayed(self, payload, codec, timestamp, marker, event):
        """
        A packet the connected channel received, sent on with our own
        sequence numbers, SSRC and timestamp offset.
        """
        if event:
            if self.eventPayload is not None:
                self._send(self.eventPayload, marker,
                           (self._tsOffset + timestamp) & 0xFFFFFFFF, payload)
            return
        if self._playback is not None or self._digits:
            return
        self._send(self.payload, marker, (self._tsOffset + timestamp) & 0xFFFFFFFF,
                   g711.transcode(payload, codec, self.codec))

    # -- the ticker's side ---------------------------------------------------

    def _needsTicks(self):
        return not self.closed and bool(self._playback or self._recording or self._digits)

    def _schedule(self):
        """
        Join or leave the server's ticker as there is work or not.
        """
        if self._needsTicks():
            self.server._want(self)
        else:
            self.server._unwant(self)

    def tick(self, now):
        """
        One frame time: end a recording that is due, send a DTMF packet or
        the next prompt frame.
        """
        if self._recording is not None and self._recording.due(now):
            self.stopRecording()
        if self._digits:
            self._sendDigitPackets()
        elif self._playback is not None:
            self._playFrame()
        if self.closed or not (self._playback or self._recording or self._digits):
            self.server._unwant(self)

    def _playFrame(self):
        """
        Send the prompt's next frame; the play ends with its last one
        (not a tick later), unless it loops.
        """
        playback = self._playback
        if playback.position >= len(playback.frames):
            if not playback.loop or not playback.frames:
                self._endPlayback(True)
                return
            playback.position = 0
        self._sendAudio(playback.frames[playback.position])
        playback.position += 1
        if playback.position >= len(playback.frames) and not playback.loop:
            self._endPlayback(True)

    def _sendDigitPackets(self):
        """
        The next packet of the first pending digit, audio being held back
        meanwhile (RFC 4733 section 2.5.1.1); resumed audio gets a marker.
        """
        digit = self._digits[0]
        if digit.timestamp is None:
            digit.timestamp = self._timestamp()
        first = digit.elapsed == 0
        if digit.elapsed < digit.total:
            digit.elapsed = min(digit.elapsed + FRAME_SAMPLES, digit.total)
            self._send(self.eventPayload, first, digit.timestamp,
                       struct.pack("!BBH", digit.code, _EVENT_VOLUME, digit.elapsed))
            return
        end = struct.pack("!BBH", digit.code, 0x80 | _EVENT_VOLUME, digit.elapsed)
        for _ in range(3):
            self._send(self.eventPayload, False, digit.timestamp, end)
        self._digits.popleft()
        self._talking = False

    # -- IMediaChannel -------------------------------------------------------

    def play(self, prompt, loop=False):
        self._endPlayback(False)
        if self.closed:
            return defer.succeed(False)
        self._playback = playback = Playback(prompt.frames(self.codec), loop)
        self._talking = False
        self._schedule()
        return playback.deferred

    def stopPlaying(self):
        self._endPlayback(False)
        self._schedule()

    def _endPlayback(self, complete):
        """
        Forget the playback before firing its L{Deferred}, so a callback
        may start the next prompt.
        """
        playback, self._playback = self._playback, None
        self._talking = False
        if playback is not None:
            playback.deferred.callback(complete)

    def record(self, maxSeconds, silence=None):
        self.stopRecording()
        if self.closed:
            return defer.succeed(b"")
        self._recording = recording = Recording(self.server.reactor.seconds(), maxSeconds,
                                                 silence)
        self._schedule()
        return recording.deferred

    def stopRecording(self):
        recording, self._recording = self._recording, None
        if recording is not None:
            self._schedule()
            recording.deferred.callback(bytes(recording.buffer))

    def sendDigit(self, digit, duration=0.1):
        """
        See L{IMediaChannel.sendDigit}; nothing is sent when the peer
        offered no telephone-event payload (use SIP INFO then).

        @raise ValueError: for a C{digit} that is not an RFC 4733 DTMF.
        """
        code = DIGITS.find(str(digit).upper()) if len(str(digit)) == 1 else -1
        if code < 0:
            raise ValueError("not a DTMF digit: %r" % (digit,))
        if self.closed or self.eventPayload is None:
            return
        self._digits.append(DigitEvent(code, duration))
        self._schedule()

    def connect(self, other):
        if other is self:
            raise ValueError("a channel cannot be connected to itself")
        self.disconnect()
        other.disconnect()
        self.stopPlaying()
        other.stopPlaying()
        self.peer, other.peer = other, self

    def disconnect(self):
        peer, self.peer = self.peer, None
        if peer is not None and peer.peer is self:
            peer.peer = None

    def stats(self):
        return dict(self.counters)

    def close(self):
        """
        See L{IMediaChannel.close}.  The port pair goes back to the
        allocator once both sockets are really closed, so it is never
        handed out while still bound.
        """
        if self.closed:
            return
        if self.conference is not None:
            self.conference.remove(self)
        self.disconnect()
        self._endPlayback(False)
        self.stopRecording()
        self._digits.clear()
        self.closed = True
        self.server._unwant(self)
        self.server._channelClosed(self)
        ports, self._ports = self._ports, ()
        stopped = [defer.maybeDeferred(port.stopListening) for port in ports]
        self.released = defer.gatherResults(stopped, consumeErrors=True)
        self.released.addBoth(self._release)

    def _release(self, result):
        """
        Both sockets are closed (or failed to close): give the pair back.
        """
        if self.localPort is not None:
            self.allocator.release(self.localPort)
        return None

    # -- receiving -----------------------------------------------------------

    def rtpReceived(self, data, addr):
        """
        One datagram on the RTP port: validated, latched (symmetric RTP),
        then handled by payload type; anything else is counted as dropped.
        """
        packet = parseRTP(data)
        if packet is None or self.closed:
            self.counters["dropped"] += 1
            return
        payloadType, marker, seq, timestamp, ssrc, payload = packet
        if self.latched:
            if addr != self.remote:
                self.counters["dropped"] += 1
                self.counters["foreign"] += 1
                return
        elif payloadType in (self.payload, self.eventPayload, COMFORT_NOISE):
            self.remote = addr
            self.latched = True
        self.counters["packetsIn"] += 1
        self.counters["bytesIn"] += len(data)
        self.lastReceived = self.server.reactor.seconds()
        self._countSequence(seq)
        if payloadType == self.payload:
            self._audioReceived(payload, timestamp, marker)
        elif payloadType == self.eventPayload and payloadType is not None:
            self._eventReceived(payload, timestamp, marker, ssrc)
        elif payloadType != COMFORT_NOISE:
            self.counters["dropped"] += 1

    def _countSequence(self, seq):
        """
        Count the packets a sequence gap says were lost; late and
        duplicate packets are not counted (nor used as the new start).
        """
        expected = self._expectedSeq
        if expected is not None:
            gap = (seq - expected) & 0xFFFF
            if gap >= 0x8000:
                return
            if gap < 3000:
                self.counters["lost"] += gap
        self._expectedSeq = (seq + 1) & 0xFFFF

    def _audioReceived(self, payload, timestamp, marker):
        """
        Relay the payload as it is; decode it only for a recording or a
        conference (most calls have neither).
        """
        if self.peer is not None:
            self.peer._relayed(payload, self.codec, timestamp, marker, False)
        if self._recording is None and self.conference is None:
            return
        linear = g711.decode(payload, self.codec)
        if self._recording is not None:
            if self._recording.add(linear, self.lastReceived):
                self.stopRecording()
        if self.conference is not None:
            buffered = self._conferenceInput
            buffered.extend(g711.toSamples(linear))
            if len(buffered) > _MAX_BUFFERED:
                del buffered[:len(buffered) - _MAX_BUFFERED]

    def _eventReceived(self, payload, timestamp, marker, ssrc):
        """
        An RFC 4733 packet: the sender repeats it as its duration grows,
        then sends its end (E bit) three times, all with the event's
        timestamp.  A digit is reported once per event, and a new event
        starts with a new SSRC, timestamp or code, or, after the end was
        seen, with a packet without the E bit or with the marker: senders
        replaying a capture (SIPp's C{dtmf_2833_*.pcap}, sent with their
        RTP headers as captured) repeat the timestamp of a digit typed
        twice.
        """
        if len(payload) < 4:
            self.counters["dropped"] += 1
            return
        if self.peer is not None:
            self.peer._relayed(payload, self.codec, timestamp, marker, True)
        code, end = payload[0], bool(payload[1] & 0x80)
        last = self._lastEvent
        if last is not None and last[:3] == (ssrc, timestamp, code) and (
                not last[3] or (end and not marker)):
            self._lastEvent = last[:3] + (last[3] or end,)
            return
        self._lastEvent = (ssrc, timestamp, code, end)
        if code < len(DIGITS) and self.digitReceived is not None:
            self.digitReceived(DIGITS[code])

    def _takeConferenceFrame(self):
        """
        @return: the next 160 received samples (C{array('h')}, padded
            with silence), or C{None} when nothing was received.
        """
        buffered = self._conferenceInput
        if not buffered:
            return None
        frame = buffered[:FRAME_SAMPLES]
        del buffered[:FRAME_SAMPLES]
        if len(frame) < FRAME_SAMPLES:
            frame.extend([0] * (FRAME_SAMPLES - len(frame)))
        return frame


@implementer(IMediaServer)
class MediaServer(service.Service):
    """
    The media server (see L{IMediaServer}): channels on port pairs of the
    Port Allocation range, prompts, conferences, and the one ticker.

    Sharing the range with the media relay: give the relay's allocators
    (the first is its first IPv4 address's), so that a pair is never
    handed to both.  In C{cgpro.service.buildMedia}, after the relay is
    made (C{main} and C{silence} are already there)::

        from cgpro.media.channel import MediaServer
        context.mediaServer = MediaServer(
            context.reactor, portRange=context.mediaPorts,
            bindAddress=relay.bindAddress, allocator=relay.allocators[0],
            ipv6Address=relay.bindAddress6,
            allocator6=(relay.allocators[relay.index6]
                        if relay.index6 is not None else None),
            idleTimeout=silence)

    and in C{makeRootService} C{context.mediaServer.setServiceParent(root)}
    next to the relay (stopping it closes the channels).

    @ivar tickNumber: the number of the current (or last) tick; tick
        C{n} is due at reactor time C{n * FRAME_SECONDS}.
    @ivar idleTimeout: seconds without packets after which the owner of a
        channel should hang up (it reads L{MediaChannel.lastReceived}).
    """

    name = "mediaServer"

    def __init__(self, reactor=None, portRange=(60000, 60099), bindAddress="0.0.0.0",
                 advertised=None, ipv6Address=None, maxChannels=None, idleTimeout=60,
                 allocator=None, allocator6=None, listen=None):
        """
        @param reactor: C{IReactorTime} (and C{IReactorSocket} for the
            default C{listen}); default the global reactor.
        @param portRange: the Port Allocation range C{(low, high)}, used
            when no C{allocator} is given.
        @param bindAddress: the IPv4 address channels are bound to.
        @param advertised: the address IPv4 channels put in SDPs instead
            of the bound one (NAT), or C{None}.
        @param ipv6Address: the IPv6 address of C{openChannel(6)}, or
            C{None} (no IPv6 channels).
        @param maxChannels: at most this many channels at once (C{None}:
            as many as the range holds).
        @param allocator: a L{PortPairAllocator} shared with the relay.
        @param allocator6: the same for C{ipv6Address}.
        @param listen: C{callable(host, port, rtpProtocol, rtcpProtocol)}
            returning the two listening ports, raising L{OSError} when a
            port is taken; default binds real sockets (tests pass fakes).
        """
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        low, high = portRange
        self.bindAddress = str(ipaddress.IPv4Address(bindAddress))
        self.ipv6Address = _parseHost(ipv6Address)[0] if ipv6Address else None
        # "is None": an allocator with no free pair is falsy (it has a length)
        self.allocator = allocator if allocator is not None else PortPairAllocator(low, high)
        self.allocator6 = None
        if self.ipv6Address is not None:
            self.allocator6 = (allocator6 if allocator6 is not None
                               else PortPairAllocator(low, high, "IPv6"))
        self.advertised = advertised
        self.maxChannels = maxChannels
        self.idleTimeout = idleTimeout
        self._listen = listen or (lambda *args: _listenPair(self.reactor, *args))
        self._channels = []
        self._active = {}
        self._call = None
        self._inTick = False
        self._nextTick = None
        self.tickNumber = 0
        #: ticks run and ticks run late (caught up a frame time or more
        #: after their due time: their packets left late)
        self.ticks = 0
        self.lateTicks = 0
        self._prompts = {}
        self._localHosts = {}
        self._totals = dict.fromkeys(("packetsIn", "packetsOut", "bytesIn", "bytesOut",
                                      "lost", "dropped"), 0)
        self.opened = 0

    # -- channels ------------------------------------------------------------

    def _localHost(self, family):
        """
        @return: the address channels of C{family} put in their SDP.
        """
        host = self._localHosts.get(family)
        if host is None:
            bound = self.bindAddress if family == 4 else self.ipv6Address
            if family == 4 and self.advertised:
                host = self.advertised
            elif bound in ("0.0.0.0", "::"):
                host = primaryAddress(family)
            else:
                host = bound
            self._localHosts[family] = host
        return host

    def openChannel(self, family=4):
        if family not in (4, 6):
            raise ValueError("address family must be 4 or 6, not %r" % (family,))
        if self.maxChannels is not None and len(self._channels) >= self.maxChannels:
            raise MediaExhausted(
                "media server: %d channels open, the limit; raise maxChannels or lower "
                "the PBX call load" % (len(self._channels),))
        if family == 6 and self.ipv6Address is None:
            raise MediaExhausted("media server: no IPv6 address configured "
                                 "(MediaIPv6Address), cannot open an IPv6 channel")
        host = self.bindAddress if family == 4 else self.ipv6Address
        allocator = self.allocator if family == 4 else self.allocator6
        channel = MediaChannel(self, family, self._localHost(family), allocator)
        bound = {}

        def usable(port):
            return self._bind(host, port, channel, bound)

        [(rtpPort, _)] = allocator.allocate(1, usable)
        channel._bound(rtpPort, bound[rtpPort])
        self._channels.append(channel)
        self.opened += 1
        return channel

    def _bind(self, host, port, channel, bound):
        """
        Bind C{port} and C{port + 1} for C{channel}.

        @return: C{False} if a port is taken by another program.
        @raise MediaExhausted: when no port could be bound (no
            descriptors left, an address not of this host).
        """
        try:
            bound[port] = self._listen(host, port, channel.rtpProtocol, channel.rtcpProtocol)
        except OSError as e:
            if e.errno in _DESCRIPTOR_ERRORS:
                raise MediaExhausted("media server: cannot open sockets (%s); raise the "
                                     "open files limit (ulimit -n)" % (e.strerror,))
            if e.errno in _ADDRESS_ERRORS:
                raise MediaExhausted("media server: cannot bind %s (%s); check MediaAddress"
                                     % (host, e.strerror))
            log.info("media server: port pair {host}:{port} unusable ({err})",
                     host=host, port=port, err=e)
            return False
        return True

    def _channelClosed(self, channel):
        """
        Forget a closed channel, keeping its counters in the totals.
        """
        if channel in self._channels:
            self._channels.remove(channel)
            for key in self._totals:
                self._totals[key] += channel.counters[key]

    def channels(self):
        return list(self._channels)

    def stats(self):
        """
        @return: C{dict}: C{channels} (open now), C{opened} (since the
            start), and the packet, byte, lost and dropped totals of every
            channel, closed ones included.
        """
        totals = dict(self._totals)
        for channel in self._channels:
            for key in totals:
                totals[key] += channel.counters[key]
        totals["channels"] = len(self._channels)
        totals["opened"] = self.opened
        totals["ticks"] = self.ticks
        totals["lateTicks"] = self.lateTicks
        return totals

    # -- prompts and conferences ---------------------------------------------

    def loadPrompt(self, path):
        mtime = os.stat(path).st_mtime
        cached = self._prompts.get(path)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        with open(path, "rb") as f:
            samples = readAudio(f.read(), path)
        prompt = Prompt(os.path.basename(path), samples)
        self._prompts[path] = (mtime, prompt)
        return prompt

    def promptFromSamples(self, name, samples):
        return Prompt(name, samples)

    def openConference(self):
        return Conference(self)

    # -- the ticker ----------------------------------------------------------

    def _want(self, tickable):
        """
        Give C{tickable} (a channel or a conference) a call per tick from
        the next one on, starting the ticker if it was idle.
        """
        if tickable in self._active:
            return
        self._active[tickable] = None
        if self._call is None and not self._inTick:
            now = self.reactor.seconds()
            self._nextTick = int(now / FRAME_SECONDS + 1e-6) + 1
            self._call = self.reactor.callLater(self._nextTick * FRAME_SECONDS - now,
                                                self._onTick)

    def _unwant(self, tickable):
        """
        No more ticks for C{tickable}; the last one leaving stops the ticker.
        """
        self._active.pop(tickable, None)
        if not self._active and self._call is not None and not self._inTick:
            if self._call.active():
                self._call.cancel()
            self._call = None

    def ticking(self):
        """
        @return: whether the ticker runs (tests, monitoring).
        """
        return self._call is not None

    def _onTick(self):
        """
        Run every tick due by now (a late call catches up to
        L{_MAX_CATCH_UP} of them), then schedule the next one on the
        absolute frame grid, so timer lateness never accumulates.
        """
        self._call = None
        now = self.reactor.seconds()
        due = int(now / FRAME_SECONDS + 1e-6)
        if due > self._nextTick:
            self.lateTicks += due - self._nextTick
        self.ticks += max(due - self._nextTick + 1, 0)
        if due - self._nextTick >= _MAX_CATCH_UP:
            self._nextTick = due - _MAX_CATCH_UP + 1
        self._inTick = True
        try:
            while self._nextTick <= due and self._active:
                self.tickNumber = self._nextTick
                self._nextTick += 1
                for tickable in list(self._active):
                    if tickable in self._active:
                        tickable.tick(now)
        finally:
            self._inTick = False
        if self._active and self._call is None:
            self._call = self.reactor.callLater(
                max(0, self._nextTick * FRAME_SECONDS - now), self._onTick)

    # -- service -------------------------------------------------------------

    def stopService(self):
        """
        Close every channel (their pending plays and recordings fire).
        """
        service.Service.stopService(self)
        for channel in list(self._channels):
            channel.close()
        return defer.succeed(None)
