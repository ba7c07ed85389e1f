# -*- test-case-name: tests.media.test_relay -*-
"""
The media relay service: what the SIP proxy and the B2BUA call.

L{MediaRelay} allocates sessions (an RTP/RTCP port pair per leg from the
Port Allocation range), tells the forwarding loop where packets go, releases
sessions on BYE or after a silence timeout, enforces the limits and sums the
statistics.  The loop itself is the Cython extension C{cgpro.media._relay}
(no Python per packet) when it was built, otherwise the pure-Python
L{cgpro.media._fallback}; L{IMPLEMENTATION} says which one this process can
use.  Every method runs in the reactor thread.
"""

import errno
import ipaddress
import itertools
import os
import socket

from zope.interface import implementer

from twisted.application import service
from twisted.internet import defer, task
from twisted.internet.interfaces import IReadDescriptor
from twisted.logger import Logger

from cgpro.media._fallback import PythonEngine
from cgpro.media.interfaces import IMediaRelay, IMediaSession, MediaExhausted
from cgpro.media.ports import PortPairAllocator

log = Logger()

__all__ = ["IMPLEMENTATION", "MediaExhausted", "MediaRelay", "MediaSession"]


def _loadExtension():
    """
    @return: C{(module or None, why not)}.
    """
    if os.environ.get("CGPRO_NO_EXTENSIONS"):
        return None, "CGPRO_NO_EXTENSIONS is set"
    try:
        from cgpro.media import _relay
    except ImportError as e:
        return None, ("the Cython extension cgpro.media._relay is not built (%s); "
                      "pip install . builds it when Cython is installed" % (e,))
    return _relay, None


_extension, _whyNot = _loadExtension()

#: C{"c"} when the Cython loop is available, C{"py"} otherwise.
IMPLEMENTATION = "py" if _extension is None else "c"

#: the per-leg counters L{MediaSession.stats} sums into L{MediaRelay.stats}
_TOTALS = ("packets", "bytes", "rtcpPackets", "rtcpBytes", "forwarded", "dropped")


def bindUDPPair(host, port):
    """
    Bind the RTP port C{port} and the RTCP port C{port + 1} on C{host}.

    @return: two non-blocking UDP sockets.
    @raise OSError: if either port cannot be bound (both are then closed).
    """
    pair = []
    try:
        for number in (port, port + 1):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            pair.append(sock)
            sock.setblocking(False)
            sock.bind((host, number))
    except OSError:
        for sock in pair:
            sock.close()
        raise
    return tuple(pair)


class _NoDescriptors(MediaExhausted):
    """
    No socket can be opened at all: no other port or address would help.
    """


@implementer(IReadDescriptor)
class _EpollReader:
    """
    Runs the C loop in the reactor's thread: its epoll descriptor is
    readable when any relay socket is, and each read is one batched round.
    """

    def __init__(self, engine):
        self.engine = engine

    def fileno(self):
        return self.engine.fileno()

    def doRead(self):
        self.engine.poll(0)

    def connectionLost(self, reason):
        pass

    def logPrefix(self):
        return "media-relay"


@implementer(IMediaSession)
class MediaSession:
    """
    One relayed call (see L{IMediaSession}).

    @ivar addressIndex: which of the relay's C{bindAddresses} it is on.
    @ivar sockets: the bound sockets, C{[(rtp, rtcp)]} per leg.
    @ivar clockRate: the RTP clock rate the jitter is counted in.
    @ivar lastActive: when (reactor seconds) the silence check last saw
        the packet count change.
    @ivar lastCount: the packet count it saw then.
    """

    def __init__(self, relay, sessionId, callId, addressIndex, ports, sockets, clockRate):
        self.relay = relay
        self.clockRate = clockRate
        self.id = sessionId
        self.callId = callId
        self.addressIndex = addressIndex
        self.localAddress = relay.bindAddresses[addressIndex]
        self.ports = ports
        self.sockets = sockets
        slot = relay.slot
        self._slots = [slot(addressIndex, port) for pair in ports for port in pair]
        self.released = None
        self.lastActive = relay.reactor.seconds()
        self.lastCount = 0
        self._waiters = []

    def __repr__(self):
        return "<MediaSession %d %r ports=%r%s>" % (
            self.id, self.callId, self.ports,
            " released=%s" % self.released if self.released else "")

    def slots(self):
        """
        @return: the engine slots of every socket of the session.
        """
        return list(self._slots)

    def setRemote(self, leg, host, port, rtcpPort=None):
        if self.released:
            raise ValueError("media session %d is released (%s)" % (self.id, self.released))
        if not 0 <= leg < len(self.ports):
            raise IndexError("media session %d has no leg %r" % (self.id, leg))
        rtp, rtcp = self.ports[leg]
        address = str(ipaddress.IPv4Address(host))
        for number in (port, rtcpPort if rtcpPort is not None else port + 1):
            if not 0 < number < 65536:
                raise ValueError("media session %d: bad port %r" % (self.id, number))
        slot = self.relay.slot
        self.relay.engine.setRemote(slot(self.addressIndex, rtp), address, port)
        self.relay.engine.setRemote(slot(self.addressIndex, rtcp), address,
                                    rtcpPort if rtcpPort is not None else port + 1)

    def release(self):
        self.relay._release(self, "bye")

    def whenReleased(self):
        if self.released:
            return defer.succeed(self.released)
        d = defer.Deferred()
        self._waiters.append(d)
        return d

    def _fire(self):
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.callback(self.released)

    def activity(self, counts=None):
        """
        @param counts: the engine's L{packetCounts}, if already read.
        @return: the valid packets received on all the session's sockets.
        """
        if counts is None:
            counts = self.relay.engine.packetCounts()
        return sum(counts[slot] for slot in self._slots)

    def stats(self):
        engine = self.relay.engine
        slot = self.relay.slot
        result = []
        for rtpPort, rtcpPort in self.ports:
            rtp = engine.counters(slot(self.addressIndex, rtpPort))
            rtcp = engine.counters(slot(self.addressIndex, rtcpPort))
            leg = {
                "rtpPort": rtpPort, "rtcpPort": rtcpPort,
                "remote": rtp["remote"], "rtcpRemote": rtcp["remote"],
                "packets": rtp["packets"], "bytes": rtp["bytes"],
                "rtcpPackets": rtcp["packets"], "rtcpBytes": rtcp["bytes"],
                "forwarded": rtp["forwarded"] + rtcp["forwarded"],
                "ssrc": rtp["ssrc"], "lost": rtp["lost"], "jitter": rtp["jitter"],
                "jitterMs": rtp["jitter"] * 1000.0 / self.clockRate,
            }
            dropped = 0
            for key in ("droppedForeign", "droppedMalformed", "droppedNoRoute",
                        "droppedSendError"):
                leg[key] = rtp[key] + rtcp[key]
                dropped += leg[key]
            leg["dropped"] = dropped
            result.append(leg)
        return result


@implementer(IMediaRelay)
class MediaRelay(service.Service):
    """
    The media relay (see L{IMediaRelay}); a service so that stopping the
    server releases every session and stops the loop.

    @ivar engine: the L{cgpro.media.interfaces.IRelayEngine} forwarding.
    @ivar implementation: C{"c"} or C{"py"}.
    @ivar bindAddresses: the addresses the relay binds, in order.
    @ivar allocators: one L{PortPairAllocator} over the range per address.
    """

    name = "media"

    def __init__(self, reactor=None, portRange=(60000, 60099), bindAddress="0.0.0.0",
                 maxSessions=None, silenceTimeout=60, checkInterval=5, useExtension=None,
                 threaded=True, engine=None, bindPair=None):
        """
        @param reactor: the reactor (C{IReactorTime}, plus C{IReactorSocket}
            for the fallback and C{IReactorFDSet} for C{threaded=False});
            default the global one.
        @param portRange: the Port Allocation range C{(low, high)} (the
            server's C{context.mediaPorts}).
        @param bindAddress: the IPv4 address the relay ports are bound to,
            or a list of addresses (one host's interfaces, or extra loopback
            addresses for a benchmark): each has the whole range, and all
            the legs of a session are on one address, taken in turn.
        @param maxSessions: at most this many sessions at once; default what
            the ranges hold for two-leg calls.
        @param silenceTimeout: release a session after this many seconds
            without a valid packet on any of its ports, counted from its
            allocation (C{None} or 0: never).
        @param checkInterval: how often (seconds) the silence is checked;
            the check only reads counters.
        @param useExtension: C{True}: the Cython loop or L{ImportError};
            C{False}: the fallback; C{None}: the loop when it is built.
        @param threaded: run the Cython loop in its own thread (C{True}) or
            in the reactor's thread (C{False}).
        @param engine: an L{IRelayEngine} to use instead (tests).
        @param bindPair: C{callable(host, rtpPort)} returning the bound
            non-blocking C{(rtpSocket, rtcpSocket)}, raising L{OSError} when
            a port is taken; default L{bindUDPPair} (tests pass a fake).
        """
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        low, high = portRange
        if isinstance(bindAddress, str):
            bindAddress = [bindAddress]
        self.bindAddresses = [str(ipaddress.IPv4Address(a)) for a in bindAddress]
        if not self.bindAddresses:
            raise ValueError("media relay: no bind address")
        self.bindAddress = self.bindAddresses[0]
        self.allocators = [PortPairAllocator(low, high) for _ in self.bindAddresses]
        self.low, self.high, self.span = low, high, high - low + 1
        self.capacity = sum(a.capacity for a in self.allocators)
        self.maxSessions = maxSessions if maxSessions is not None else self.capacity // 2
        self._nextAddress = 0
        self.silenceTimeout = silenceTimeout
        self.checkInterval = checkInterval
        self.threaded = threaded
        self.bindPair = bindPair or bindUDPPair
        slots = self.span * len(self.bindAddresses)
        if engine is None:
            engine = self._makeEngine(useExtension, slots, threaded)
        self.engine = engine
        self.implementation = engine.name
        self._sessions = {}
        self._ids = itertools.count(1)
        self._running = False
        self._reader = None
        self._checker = None
        self.counts = dict.fromkeys(("allocated", "exhausted", "releasedBye", "releasedSilence",
                                     "releasedStop"), 0)
        self.releasedTotals = dict.fromkeys(_TOTALS, 0)

    def _makeEngine(self, useExtension, slots, threaded):
        if useExtension is None:
            useExtension = _extension is not None
        if useExtension:
            if _extension is None:
                raise ImportError("media relay: the C loop is unavailable: %s" % (_whyNot,))
            return _extension.CEngine(self.reactor, slots, threaded)
        log.warn("media relay: forwarding with the pure-Python fallback (a Python call "
                 "per packet, a few times slower): {why}",
                 why=_whyNot or "useExtension=False")
        return PythonEngine(self.reactor, slots)

    # -- lifecycle ----------------------------------------------------------

    def startService(self):
        service.Service.startService(self)
        self._start()

    def stopService(self):
        service.Service.stopService(self)
        return self.stop()

    def _start(self):
        if self._running:
            return
        self._running = True
        self.engine.start()
        if self.engine.name == "c" and not self.threaded:
            self._reader = _EpollReader(self.engine)
            self.reactor.addReader(self._reader)
        if self.silenceTimeout:
            self._checker = task.LoopingCall(self._checkSilence)
            self._checker.clock = self.reactor
            self._checker.start(self.checkInterval, now=False)
        log.info("media relay: {impl} loop on {addr} ports {low}-{high} "
                 "({pairs} pairs, at most {max} sessions)",
                 impl=self.implementation, addr=",".join(self.bindAddresses), low=self.low,
                 high=self.high, pairs=self.capacity, max=self.maxSessions)

    def stop(self):
        for session in list(self._sessions.values()):
            self._release(session, "stop")
        if self._checker is not None:
            if self._checker.running:
                self._checker.stop()
            self._checker = None
        if self._reader is not None:
            self.reactor.removeReader(self._reader)
            self._reader = None
        self._running = False
        d = self.engine.stop()
        if isinstance(d, defer.Deferred):
            return d.addCallback(lambda _: None)
        return defer.succeed(None)

    # -- sessions -----------------------------------------------------------

    def slot(self, addressIndex, port):
        """
        @return: the engine slot of C{port} on the C{addressIndex}th address.
        """
        return addressIndex * self.span + port - self.low

    def _bind(self, address, port, opened):
        """
        Bind RTP C{port} and RTCP C{port + 1}, keeping them in C{opened}.

        @return: C{False} if either is taken by someone else.
        @raise MediaExhausted: if no socket can be opened at all (the file
            descriptor limit): trying other ports would not help.
        """
        try:
            opened[port] = self.bindPair(address, port)
        except OSError as e:
            if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                raise _NoDescriptors(
                    "media relay: cannot open sockets (%s); a two-leg session needs 4 "
                    "descriptors: raise the open files limit (ulimit -n) or lower maxSessions"
                    % (e.strerror,))
            log.info("media relay: port pair {address}:{port} unusable ({err})",
                     address=address, port=port, err=e)
            return False
        return True

    def allocate(self, callId, legs=2, clockRate=8000):
        if legs < 2 or legs % 2:
            raise ValueError("media relay: legs must be an even number (pairs of legs "
                             "forward to each other), not %r" % (legs,))
        if len(self._sessions) >= self.maxSessions:
            self.counts["exhausted"] += 1
            raise MediaExhausted(
                "media relay: session limit reached (%d active, maxSessions=%d); raise the "
                "limit or widen MediaPorts" % (len(self._sessions), self.maxSessions))
        count = len(self.bindAddresses)
        error = None
        for i in range(count):
            index = (self._nextAddress + i) % count
            address = self.bindAddresses[index]
            opened = {}
            try:
                pairs = self.allocators[index].allocate(
                    legs, lambda port: self._bind(address, port, opened))
            except MediaExhausted as e:
                for pair in opened.values():
                    for sock in pair:
                        sock.close()
                error = e
                if isinstance(e, _NoDescriptors):
                    break
            else:
                error = None
                break
        else:
            if count > 1:
                error = MediaExhausted(
                    "media relay: no address has %d free RTP port pairs in %d-%d (%d addresses, "
                    "%d pairs, %d in use); widen MediaPorts or lower the call load"
                    % (legs, self.low, self.high, count, self.capacity,
                       sum(a.inUse() for a in self.allocators)))
        if error is not None:
            self.counts["exhausted"] += 1
            log.warn("{error} (call {callId})", error=str(error), callId=callId)
            raise error
        self._nextAddress = (index + 1) % count
        self._start()
        session = MediaSession(self, next(self._ids), callId, index, pairs,
                               [opened[rtp] for rtp, _ in pairs], clockRate)
        slot = self.slot
        added = []
        try:
            for leg, (rtp, rtcp) in enumerate(pairs):
                other = pairs[leg ^ 1]
                rtpSock, rtcpSock = session.sockets[leg]
                for port, sock, peer, rtcpFlag in ((rtp, rtpSock, other[0], False),
                                                   (rtcp, rtcpSock, other[1], True)):
                    self.engine.addSocket(slot(index, port), sock, slot(index, peer), rtcpFlag,
                                          clockRate)
                    added.append(slot(index, port))
        except BaseException:
            # e.g. epoll refusing more descriptors: leave nothing behind
            for number in added:
                self.engine.removeSocket(number)
            for pair in session.sockets:
                for sock in pair:
                    sock.close()
            for rtp, _ in pairs:
                self.allocators[index].release(rtp)
            raise
        self._sessions[session.id] = session
        self.counts["allocated"] += 1
        return session

    def _release(self, session, reason):
        if session.released:
            return
        stats = session.stats()
        for leg in stats:
            for key in _TOTALS:
                self.releasedTotals[key] += leg[key]
        for slot in session.slots():
            self.engine.removeSocket(slot)
        for pair in session.sockets:
            for sock in pair:
                sock.close()
        for rtp, _ in session.ports:
            self.allocators[session.addressIndex].release(rtp)
        del self._sessions[session.id]
        session.released = reason
        self.counts["released" + reason.capitalize()] += 1
        log.debug("media relay: session {id} ({callId}) released: {reason}",
                  id=session.id, callId=session.callId, reason=reason)
        session._fire()

    def _checkSilence(self):
        """
        Release the sessions that received nothing for C{silenceTimeout}.
        """
        now = self.reactor.seconds()
        counts = self.engine.packetCounts()
        for session in list(self._sessions.values()):
            count = session.activity(counts)
            if count != session.lastCount:
                session.lastCount = count
                session.lastActive = now
            elif now - session.lastActive >= self.silenceTimeout:
                log.info("media relay: session {id} ({callId}) silent for {seconds}s, released",
                         id=session.id, callId=session.callId, seconds=self.silenceTimeout)
                self._release(session, "silence")

    def sessions(self):
        return list(self._sessions.values())

    def stats(self):
        result = {
            "implementation": self.implementation,
            "sessions": len(self._sessions),
            "maxSessions": self.maxSessions,
            "portPairs": self.capacity,
            "portPairsInUse": sum(a.inUse() for a in self.allocators),
        }
        result.update(self.counts)
        totals = dict.fromkeys(_TOTALS, 0)
        for session in self._sessions.values():
            for leg in session.stats():
                for key in _TOTALS:
                    totals[key] += leg[key]
        result.update(totals)
        for key in _TOTALS:
            result[key + "Total"] = totals[key] + self.releasedTotals[key]
        return result
