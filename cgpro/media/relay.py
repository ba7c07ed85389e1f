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

A session's legs may be of different address families (an IPv6 caller, an
IPv4 callee): each leg's ports are bound on the relay's address of its
family, and the loop forwards between them, so the relay bridges IPv4 and
IPv6 networks.  The IPv4 and the IPv6 address each have the whole Port
Allocation range (an IPv6 socket and an IPv4 socket may have the same port
number: IPv6 sockets are bound C{IPV6_V6ONLY}, so C{::} and C{0.0.0.0} do
not clash).
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

__all__ = ["IMPLEMENTATION", "MediaExhausted", "MediaRelay", "MediaSession", "hostHasIPv6"]


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
_TOTALS = ("packets", "bytes", "rtcpPackets", "rtcpBytes", "forwarded", "dropped", "lost")


def bindUDPPair(host, port):
    """
    Bind the RTP port C{port} and the RTCP port C{port + 1} on C{host}.

    @param host: an IPv4 or an IPv6 address; an IPv6 socket is
        C{IPV6_V6ONLY} (IPv4 packets never arrive on it, and it does not
        hold the port on the IPv4 side).
    @return: two non-blocking UDP sockets.
    @raise OSError: if either port cannot be bound (both are then closed).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    pair = []
    try:
        for number in (port, port + 1):
            sock = socket.socket(family, socket.SOCK_DGRAM)
            pair.append(sock)
            sock.setblocking(False)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
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


class _AddressUnusable(MediaExhausted):
    """
    An address cannot be bound at all (not one of this host's, or no IPv6
    in the kernel): no other port on it would help, another address may.
    """


def hostHasIPv6():
    """
    @return: whether this host can bind an IPv6 UDP socket (on C{::}), so
        that a default C{bindAddress6="::"} makes sense.
    """
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            probe.bind(("::", 0))
    except OSError:
        return False
    return True


def _closeAll(pairs):
    """
    Close every socket of C{pairs} (C{(rtp, rtcp)} tuples).
    """
    for pair in pairs:
        for sock in pair:
            sock.close()


def _parseHost(host, family):
    """
    @param host: an address as an SDP or a re-INVITE gives it (an IPv6
        one may be in brackets).
    @param family: C{4} or C{6}, the leg's.
    @return: the address in its canonical (compressed, unbracketed) form.
    @raise ValueError: if C{host} is not an address of C{family}, or is an
        IPv6 address the relay cannot send to (a scoped or IPv4-mapped
        one).
    """
    if not isinstance(host, str):
        raise ValueError("not an IP address: %r" % (host,))
    if family == 6:
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        address = ipaddress.IPv6Address(host)
        if address.scope_id or address.ipv4_mapped is not None:
            raise ValueError("%s: scoped (link-local) and IPv4-mapped addresses are not "
                             "relayed" % (host,))
        return str(address)
    return str(ipaddress.IPv4Address(host))


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

    @ivar addressIndex: the relay address (an index in its C{addresses})
        the session's IPv4 legs are on; for a session without IPv4 leg,
        the IPv6 address's.
    @ivar legAddresses: the relay address index of each leg.
    @ivar families: C{4} or C{6} per leg.
    @ivar sockets: the bound sockets, C{[(rtp, rtcp)]} per leg.
    @ivar clockRate: the RTP clock rate the jitter is counted in.
    @ivar lastActive: when (reactor seconds) the silence check last saw
        the packet count change.
    @ivar lastCount: the packet count it saw then.
    """

    def __init__(self, relay, sessionId, callId, addressIndex, ports, sockets, clockRate,
                 legAddresses=None):
        """
        @param legAddresses: the address index of each leg; default
            C{addressIndex} for all.
        """
        self.relay = relay
        self.clockRate = clockRate
        self.id = sessionId
        self.callId = callId
        self.addressIndex = addressIndex
        self.localAddress = relay.addresses[addressIndex]
        self.ports = ports
        self.sockets = sockets
        if legAddresses is None:
            legAddresses = [addressIndex] * len(ports)
        self.legAddresses = list(legAddresses)
        self.families = [6 if index == relay.index6 else 4 for index in self.legAddresses]
        slot = relay.slot
        self._slots = [slot(index, port)
                       for index, pair in zip(self.legAddresses, ports) for port in pair]
        self.released = None
        self.lastActive = relay.reactor.seconds()
        self.lastCount = 0
        self._waiters = []

    def __repr__(self):
        return "<MediaSession %d %r ports=%r%s%s>" % (
            self.id, self.callId, self.ports,
            " families=%r" % (self.families,) if 6 in self.families else "",
            " released=%s" % self.released if self.released else "")

    def addressOf(self, leg):
        """
        @return: the relay address leg C{leg}'s ports are bound to (the
            relay's IPv6 address for an IPv6 leg).
        @raise IndexError: for an unknown leg.
        """
        if not 0 <= leg < len(self.ports):
            raise IndexError("media session %d has no leg %r" % (self.id, leg))
        return self.relay.addresses[self.legAddresses[leg]]

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
        family = self.families[leg]
        try:
            address = _parseHost(host, family)
        except ValueError as e:
            raise ValueError("media session %d: leg %d is IPv%d: %s" % (self.id, leg, family, e))
        for number in (port, rtcpPort if rtcpPort is not None else port + 1):
            if not 0 < number < 65536:
                raise ValueError("media session %d: bad port %r" % (self.id, number))
        slot = self.relay.slot
        index = self.legAddresses[leg]
        self.relay.engine.setRemote(slot(index, rtp), address, port)
        self.relay.engine.setRemote(slot(index, rtcp), address,
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
        for index, family, (rtpPort, rtcpPort) in zip(self.legAddresses, self.families,
                                                      self.ports):
            rtp = engine.counters(slot(index, rtpPort))
            rtcp = engine.counters(slot(index, rtcpPort))
            leg = {
                "family": family, "rtpPort": rtpPort, "rtcpPort": rtcpPort,
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
    @ivar bindAddresses: the IPv4 addresses the relay binds, in order.
    @ivar bindAddress6: the IPv6 address IPv6 legs are bound to, or C{None}.
    @ivar addresses: C{bindAddresses}, then C{bindAddress6} if set: an
        address index (L{slot}) is a position in this list.
    @ivar index6: the index of C{bindAddress6} in C{addresses}, or C{None}.
    @ivar allocators: one L{PortPairAllocator} over the range per address
        (the same order).
    """

    name = "media"

    def __init__(self, reactor=None, portRange=(60000, 60099), bindAddress="0.0.0.0",
                 maxSessions=None, silenceTimeout=60, checkInterval=5, useExtension=None,
                 threaded=True, engine=None, bindPair=None, bindAddress6=None):
        """
        @param reactor: the reactor (C{IReactorTime}, plus C{IReactorSocket}
            for the fallback and C{IReactorFDSet} for C{threaded=False});
            default the global one.
        @param portRange: the Port Allocation range C{(low, high)} (the
            server's C{context.mediaPorts}).
        @param bindAddress: the IPv4 address the relay ports are bound to,
            or a list of addresses (one host's interfaces, or extra loopback
            addresses for a benchmark): each has the whole range, and all
            the IPv4 legs of a session are on one address, taken in turn.
        @param bindAddress6: the IPv6 address IPv6 legs are bound to
            (C{"::"}: all of them), with the whole range of its own; C{None}:
            no IPv6 leg can be allocated.
        @param maxSessions: at most this many sessions at once; default what
            the ranges (IPv4 and IPv6) hold for two-leg calls.
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
            non-blocking C{(rtpSocket, rtcpSocket)} (IPv6 ones when C{host}
            is C{bindAddress6}), raising L{OSError} when a port is taken;
            default L{bindUDPPair} (tests pass a fake).
        @raise ValueError: for an address that is not of its family, or a
            range without port pair.
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
        self.addresses = list(self.bindAddresses)
        self.allocators = [PortPairAllocator(low, high) for _ in self.bindAddresses]
        self.index6 = None
        self.bindAddress6 = None
        if bindAddress6 is not None:
            self.bindAddress6 = _parseHost(bindAddress6, 6)
            self.index6 = len(self.addresses)
            self.addresses.append(self.bindAddress6)
            self.allocators.append(PortPairAllocator(low, high, "IPv6"))
        self.low, self.high, self.span = low, high, high - low + 1
        self.capacity = sum(a.capacity for a in self.allocators)
        self.maxSessions = maxSessions if maxSessions is not None else self.capacity // 2
        self._nextAddress = 0
        self.silenceTimeout = silenceTimeout
        self.checkInterval = checkInterval
        self.threaded = threaded
        self.bindPair = bindPair or bindUDPPair
        slots = self.span * len(self.addresses)
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
                 impl=self.implementation, addr=",".join(self.addresses), low=self.low,
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
            descriptor limit), or the address cannot be bound at all:
            trying other ports would not help.
        """
        try:
            opened[port] = self.bindPair(address, port)
        except OSError as e:
            if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                raise _NoDescriptors(
                    "media relay: cannot open sockets (%s); a two-leg session needs 4 "
                    "descriptors: raise the open files limit (ulimit -n) or lower maxSessions"
                    % (e.strerror,))
            if e.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                raise _AddressUnusable(
                    "media relay: cannot bind %s (%s); check MediaAddress/MediaIPv6Address"
                    % (address, e.strerror))
            log.info("media relay: port pair {address}:{port} unusable ({err})",
                     address="[%s]" % address if ":" in address else address, port=port,
                     err=e)
            return False
        return True

    def _allocateOn(self, index, count):
        """
        Take and bind C{count} pairs on the address C{index}, all or none.

        @return: C{(pairs, sockets)}: the L{PortPairAllocator.allocate}
            pairs and the bound sockets by RTP port.
        @raise MediaExhausted: as L{PortPairAllocator.allocate} (the
            sockets bound on the way are closed).
        """
        address = self.addresses[index]
        opened = {}
        try:
            pairs = self.allocators[index].allocate(
                count, lambda port: self._bind(address, port, opened))
        except MediaExhausted:
            _closeAll(opened.values())
            raise
        return pairs, opened

    def _allocate4(self, count):
        """
        Take C{count} pairs on one IPv4 address, trying each in turn.

        @return: C{(index, pairs, sockets)}.
        @raise MediaExhausted: if no address has them.
        """
        count4 = len(self.bindAddresses)
        for i in range(count4):
            index = (self._nextAddress + i) % count4
            try:
                pairs, opened = self._allocateOn(index, count)
            except _NoDescriptors:
                raise
            except MediaExhausted as e:
                error = e
            else:
                self._nextAddress = (index + 1) % count4
                return index, pairs, opened
        if count4 > 1:
            error = MediaExhausted(
                "media relay: no address has %d free RTP port pairs in %d-%d (%d addresses, "
                "%d pairs, %d in use); widen MediaPorts or lower the call load"
                % (count, self.low, self.high, count4,
                   sum(a.capacity for a in self.allocators[:count4]),
                   sum(a.inUse() for a in self.allocators[:count4])))
        raise error

    def _refuse(self, error, callId):
        self.counts["exhausted"] += 1
        log.warn("{error} (call {callId})", error=str(error), callId=callId)
        raise error

    def allocate(self, callId, legs=2, clockRate=8000, families=None):
        if legs < 2 or legs % 2:
            raise ValueError("media relay: legs must be an even number (pairs of legs "
                             "forward to each other), not %r" % (legs,))
        if families is None:
            families = [4] * legs
        else:
            families = list(families)
            if len(families) != legs or not all(f in (4, 6) for f in families):
                raise ValueError("media relay: families must give 4 or 6 for each of the "
                                 "%d legs, not %r" % (legs, families))
        count6 = families.count(6)
        count4 = legs - count6
        if count6 and self.index6 is None:
            self._refuse(MediaExhausted(
                "media relay: no IPv6 media address configured (MediaIPv6Address): "
                "cannot relay an IPv6 leg"), callId)
        if len(self._sessions) >= self.maxSessions:
            self._refuse(MediaExhausted(
                "media relay: session limit reached (%d active, maxSessions=%d); raise the "
                "limit or widen MediaPorts" % (len(self._sessions), self.maxSessions)), callId)
        pairs6, opened6 = [], {}
        index4, pairs4, opened4 = None, [], {}
        try:
            if count6:
                pairs6, opened6 = self._allocateOn(self.index6, count6)
            if count4:
                index4, pairs4, opened4 = self._allocate4(count4)
        except MediaExhausted as e:
            _closeAll(opened6.values())
            for rtp, _ in pairs6:
                self.allocators[self.index6].release(rtp)
            self._refuse(e, callId)
        self._start()
        taken = {4: iter(pairs4), 6: iter(pairs6)}
        pairs, sockets, legAddresses = [], [], []
        for family in families:
            rtp, rtcp = next(taken[family])
            pairs.append((rtp, rtcp))
            sockets.append((opened4 if family == 4 else opened6)[rtp])
            legAddresses.append(index4 if family == 4 else self.index6)
        session = MediaSession(self, next(self._ids), callId,
                               self.index6 if index4 is None else index4, pairs, sockets,
                               clockRate, legAddresses)
        slot = self.slot
        added = []
        try:
            for leg, (rtp, rtcp) in enumerate(pairs):
                other = pairs[leg ^ 1]
                index, peerIndex = legAddresses[leg], legAddresses[leg ^ 1]
                rtpSock, rtcpSock = sockets[leg]
                for port, sock, peer, rtcpFlag in ((rtp, rtpSock, other[0], False),
                                                   (rtcp, rtcpSock, other[1], True)):
                    self.engine.addSocket(slot(index, port), sock, slot(peerIndex, peer),
                                          rtcpFlag, clockRate)
                    added.append(slot(index, port))
        except BaseException:
            # e.g. epoll refusing more descriptors: leave nothing behind
            for number in added:
                self.engine.removeSocket(number)
            _closeAll(sockets)
            for index, (rtp, _) in zip(legAddresses, pairs):
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
        _closeAll(session.sockets)
        for index, (rtp, _) in zip(session.legAddresses, session.ports):
            self.allocators[index].release(rtp)
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
