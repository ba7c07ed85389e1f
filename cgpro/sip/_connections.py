# -*- test-case-name: tests.sip.test_transport -*-
"""
The Twisted protocols under L{cgpro.sip.transport.TransportLayer}: one
datagram protocol per bound UDP socket, one stream protocol per TCP/TLS
connection (framing, keep-alive pings, idle and half-open timeouts, flow
control), and the factories that make them.

They own no policy: every message, error and connection change goes back
to the layer that made them, which keeps the tables and decides where
bytes go.  Private to the SIP package.
"""

from twisted.internet.interfaces import IHandshakeListener, IPushProducer
from twisted.internet.protocol import (
    ClientFactory, DatagramProtocol, Protocol, ServerFactory)
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from cgpro.sip.address import Peer
from cgpro.sip.message import StreamFramer
from cgpro.sip.uri import SIPParseError

log = Logger()


class TransportError(Exception):
    """
    Why a message could not be sent; the C{reason} given to the error
    handler wraps one of these when no socket error says more.
    """


def unmap(host):
    """
    Turn an IPv4-mapped IPv6 address (what a dual-stack C{::} socket
    reports for IPv4 peers) back into the IPv4 address, so Via
    C{received} and the location service see one spelling.
    """
    if host[:7].lower() == "::ffff:" and "." in host:
        return host[7:]
    return host


class _Listener:
    """
    One bound listener, for L{TransportLayer.localAddress}.

    @ivar transport: C{"UDP"}, C{"TCP"} or C{"TLS"}.
    @ivar host: the bound address (possibly a wildcard).
    @ivar port: the bound port, C{0} while unknown.
    """
    __slots__ = ("transport", "host", "port", "ipv6")

    def __init__(self, transport, host, port):
        self.transport = transport
        self.host = host or "0.0.0.0"
        self.port = port
        self.ipv6 = ":" in self.host


class _DatagramProtocol(DatagramProtocol):
    """
    One bound UDP socket; everything it receives goes straight to the
    layer (the bound method is installed as C{datagramReceived}, saving a
    call per datagram).
    """

    def __init__(self, layer, spec):
        self.layer = layer
        self.listener = _Listener("UDP", spec.address, spec.port)
        if self.listener.ipv6:
            self.datagramReceived = layer._datagramReceived6
        else:
            self.datagramReceived = layer._datagramReceived

    def startProtocol(self):
        transport = self.transport
        # Twisted reads 8192 bytes per datagram by default, truncating
        # larger ones: read one byte more than we accept, so an oversize
        # datagram is seen as such (513) rather than as a bad one.
        if hasattr(transport, "maxPacketSize"):
            transport.maxPacketSize = self.layer.maxSize + 1
        try:
            host = transport.getHost()
            self.listener.host, self.listener.port = host.host, host.port
        except Exception:
            pass
        self.listener.ipv6 = ":" in self.listener.host
        self.layer._udpStarted(self)

    def stopProtocol(self):
        self.layer._udpStopped(self)


class _Refuse(Protocol):
    """
    What a listener gets instead of a SIP connection beyond the per-IP
    limit: the connection is aborted at once.
    """

    def connectionMade(self):
        self.transport.abortConnection()


@implementer(IHandshakeListener, IPushProducer)
class _StreamProtocol(Protocol):
    """
    One TCP or TLS connection, accepted or opened by us.

    An outgoing connection becomes usable (enters the layer's connection
    table and flushes its queue) when TCP connects, or for TLS when the
    handshake completes, so that a failed handshake is reported to the
    error handler like a refused connection.

    The protocol is the producer of its own transport, as Twisted's
    C{HTTPChannel} is: when what we write to a peer that does not read
    fills the transport's buffer, reading from that peer stops until the
    buffer drains, so a client pipelining requests without reading the
    answers meets TCP flow control instead of growing our memory.

    @ivar peer: the remote L{Peer}.
    @ivar outgoing: whether we opened it.
    @ivar ready: whether it is in the connection table.
    """

    ready = False
    closing = False
    gotData = False
    countedHost = None
    _timer = None
    _failure = None

    def __init__(self, layer, transportName, peer=None):
        self.layer = layer
        self.transportName = transportName
        self.peer = peer
        self.outgoing = peer is not None
        self.framer = None
        self._remaining = 0

    def connectionMade(self):
        """
        Start framing and the connection's timer; an accepted connection
        enters the table under its source L{Peer} at once, so requests to
        that flow reuse it.
        """
        layer = self.layer
        layer._streams.add(self)
        self.transport.registerProducer(self, True)
        self.lastActivity = layer.reactor.seconds()
        self.framer = StreamFramer(self._messageReceived, self._pingReceived,
                                   layer.maxSize)
        if self.outgoing:
            if self.transportName == "TCP":
                self._arm(layer.idleTimeout)
                self._becomeReady()
            else:
                # Bound the TLS handshake like the TCP connect.
                self._arm(layer.connectTimeout)
        else:
            addr = self.transport.getPeer()
            self.peer = Peer(self.transportName, unmap(addr.host), addr.port)
            layer._connections[self.peer] = self
            self.ready = True
            self._arm(layer.halfOpenTimeout)
            listener = self.factory.listener
            if not listener.port:  # a port-0 row: learn the bound port
                listener.port = self.transport.getHost().port

    def pauseProducing(self):
        """
        L{IPushProducer}: our writes to the peer are backing up; stop
        reading its requests until they drain.
        """
        self.transport.pauseProducing()

    def resumeProducing(self):
        """L{IPushProducer}: the peer reads again; so do we."""
        if not self.closing:
            self.transport.resumeProducing()

    def stopProducing(self):
        """L{IPushProducer}: the connection is going; nothing to do."""

    def handshakeCompleted(self):
        """
        L{IHandshakeListener}: an outgoing TLS connection is usable only
        now, so a failed handshake fails its queue instead of losing it.
        """
        if self.outgoing and not self.ready:
            self._becomeReady()

    def _becomeReady(self):
        self.ready = True
        layer = self.layer
        pending = layer._connecting.pop(self.peer, None)
        layer._connections[self.peer] = self
        if pending is not None:
            for data in pending[1]:
                self.write(data)

    def write(self, data):
        """Send bytes on the connection and count one message."""
        self.transport.write(data)
        self.layer.sent += 1
        self.lastActivity = self.layer.reactor.seconds()

    def _arm(self, delay):
        self._timer = self.layer.reactor.callLater(delay, self._checkIdle)

    def _checkIdle(self):
        """
        The connection's one timer: close it if it never spoke within
        the half-open timeout or has been silent for the idle timeout,
        else sleep until it could be.
        """
        self._timer = None
        layer = self.layer
        if not self.ready:
            self._failure = Failure(TransportError(
                "TLS handshake with %s timed out" % (self.peer,)))
            self._close()
            return
        if not self.outgoing and not self.gotData:
            self._close()
            return
        idle = layer.reactor.seconds() - self.lastActivity
        if idle >= layer.idleTimeout:
            self._close()
        else:
            self._arm(layer.idleTimeout - idle)

    def _close(self):
        self.closing = True
        self.transport.loseConnection()

    def dataReceived(self, data):
        """
        Feed the framer; on a framing or parse error hand the unconsumed
        bytes (which start with the bad message) to the layer, which
        answers and closes: a stream cannot be resynchronized.
        """
        if self.closing:
            return
        self.gotData = True
        self.lastActivity = self.layer.reactor.seconds()
        framer = self.framer
        before = framer._buffer
        self._remaining = len(before) + len(data)
        try:
            framer.dataReceived(data)
        except SIPParseError as e:
            stream = before + data
            self.layer._streamError(
                self, stream[len(stream) - self._remaining:], str(e))

    def _messageReceived(self, message):
        self._remaining = len(self.framer._buffer)
        self.layer._deliver(message, self.peer, self)

    def _pingReceived(self):
        # RFC 5626 section 4.4.1: answer a CRLFCRLF ping with a CRLF pong.
        self.transport.write(b"\r\n")

    def connectionLost(self, reason):
        """
        Forget the connection; an outgoing one that never became usable
        fails the messages queued for it.
        """
        layer = self.layer
        layer._streams.discard(self)
        if self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None
        peer = self.peer
        if peer is not None and layer._connections.get(peer) is self:
            del layer._connections[peer]
        if self.outgoing:
            if not self.ready:
                layer._connectFailed(peer, self._failure or reason)
        elif self.countedHost is not None:
            layer._releaseIP(self.countedHost)
            self.countedHost = None


class _StreamFactory(ServerFactory):
    """
    The factory of one TCP or TLS listener row; enforces the per-IP
    connection limit.
    """

    noisy = False

    def __init__(self, layer, transportName, listener):
        self.layer = layer
        self.transportName = transportName
        self.listener = listener

    def buildProtocol(self, addr):
        """
        Refuse beyond C{maxConnectionsPerIP} accepted connections from one
        IP (one client must not exhaust the server's descriptors).
        """
        layer = self.layer
        host = unmap(addr.host)
        count = layer._perIP.get(host, 0)
        if layer._stopped or count >= layer.maxConnectionsPerIP:
            layer.refusedConnections += 1
            return _Refuse()
        layer._perIP[host] = count + 1
        protocol = _StreamProtocol(layer, self.transportName)
        protocol.countedHost = host
        protocol.factory = self
        return protocol


class _ClientFactory(ClientFactory):
    """
    Opens one outgoing connection to C{peer}; a failure to connect fails
    every message queued for it.
    """

    noisy = False

    def __init__(self, layer, peer):
        self.layer = layer
        self.peer = peer

    def buildProtocol(self, addr):
        protocol = _StreamProtocol(self.layer, self.peer.transport, self.peer)
        protocol.factory = self
        return protocol

    def clientConnectionFailed(self, connector, reason):
        self.layer._connectFailed(self.peer, reason)
