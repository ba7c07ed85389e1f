# -*- test-case-name: tests.sip.test_transport -*-
"""
The SIP transport layer (RFC 3261 section 18, RFC 3581, RFC 5626
keep-alives): one logic over UDP, TCP and TLS, as Twisted's C{DNSMixin}
is one logic over UDP and TCP.

L{TransportLayer} owns every bound UDP socket and every TCP/TLS
connection, whichever side opened it.  Connections are kept in one table
keyed by the remote L{Peer}, so a request to a UA that registered over
TCP goes back on the connection the UA opened (connection reuse, the
behaviour of Kamailio and the spirit of RFC 5923): the registrar stores
the source L{Peer} as the flow and the proxy sends to it.

Incoming messages are parsed once, checked with C{validate()} (a request
that fails is answered with 400 here, so the layers above only see
well-formed messages), and requests get C{received}/C{rport} stamped on
their top Via before C{messageHandler(message, source)} is called.

The Via sent-by convention: the transaction layer writes our Via itself,
with the host and port returned by L{TransportLayer.localAddress} for the
destination.  A caller that cannot know them yet may write the placeholder
L{SENT_BY_PLACEHOLDER} as the sent-by; L{TransportLayer.sendRequest}
replaces it (in the request object, so a retransmission carries the same
Via).

Bytes on the hot path: one parse per datagram, no closure and no log line
per message; timers are one C{callLater} per connection that re-arms
itself only when it fires (not on every read).
"""

import socket

from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from cgpro.sip._connections import (
    TransportError, _ClientFactory, _DatagramProtocol, _Listener, _StreamFactory, unmap)
from cgpro.sip.address import DEFAULT_PORTS, RELIABLE, Peer
from cgpro.sip.headers import splitQuoted
from cgpro.sip.interfaces import ISIPTransport
from cgpro.sip.message import Request, Response, parseMessage
from cgpro.sip.responses import REASONS, newTag
from cgpro.sip.uri import SIPParseError

__all__ = ["SENT_BY_PLACEHOLDER", "TransportError", "TransportLayer",
           "discoverSourceAddress"]

log = Logger()

#: A sent-by a caller may put in its Via for L{TransportLayer.sendRequest}
#: to replace with L{TransportLayer.localAddress} (RFC 6761 C{.invalid}:
#: it can never be a real host).
SENT_BY_PLACEHOLDER = "sent-by.invalid"

_WILDCARDS = frozenset(("", "0.0.0.0", "::", "*"))
_SCANNED = {"via": "Via", "v": "Via", "from": "From", "f": "From",
            "to": "To", "t": "To", "call-id": "Call-ID", "i": "Call-ID",
            "cseq": "CSeq"}
_NEEDED = frozenset(("Via", "From", "To", "Call-ID", "CSeq"))
_KEEPALIVE = b"\r\n\t \x00"
_MAX_REASON = 120
_VERSION = "SIP/2.0"


def discoverSourceAddress(host):
    """
    Ask the kernel which local address routes to C{host}, by connecting a
    throwaway UDP socket (no packet is sent) and reading its name.

    This is what a wildcard-bound listener must advertise in Via and
    Record-Route: the address the peer can reach us on.

    @param host: an IP address (IPv6 without brackets).
    @return: the local IP address, or L{None} if there is no route.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    try:
        s.connect((host, 9))
        return s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()


def _isIP(host):
    """@return: whether C{host} is an IPv4 or IPv6 literal (no brackets)."""
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET,
                         host)
    except (OSError, ValueError):
        return False
    return True


def _scanHeaders(data):
    """
    Find, without the parser, the headers needed to answer a message the
    parser refused: Via, From, To, Call-ID, CSeq.

    @param data: the raw message (bytes).
    @return: a C{[name, value]} list, or L{None} when the message is a
        response, an ACK (never answered), or lacks one of those headers.
    """
    end = data.find(b"\r\n\r\n")
    if end < 0:
        end = data.find(b"\n\n")
    head = data if end < 0 else data[:end]
    text = head[:16384].decode("utf-8", "surrogateescape").lstrip("\r\n")
    lines = text.split("\n")
    start = lines[0].strip()
    if start[:4].upper() == "SIP/" or start[:4] == "ACK ":
        return None
    found = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        canonical = _SCANNED.get(name.strip().lower())
        if canonical is None or not colon:
            continue
        value = value.strip()
        if not value or any(c < " " and c != "\t" for c in value):
            continue
        found.append([canonical, value])
    if not _NEEDED.issubset(h[0] for h in found):
        return None
    return found


def _rejection(headers, code, reason):
    """
    Build the stateless answer to a message refused here: the copied
    headers (all Vias; the first From, To with a tag added, Call-ID and
    CSeq, so that a request refused for repeating one, RFC 4475 multi01,
    gets a well-formed answer) and C{reason} as the phrase, cleaned so
    that nothing but printable text of the parser's message reaches the
    peer.

    @rtype: L{bytes}
    """
    reason = "".join(c if " " <= c < "\x7f" else "?" for c in reason)
    reason = reason[:_MAX_REASON] or REASONS.get(code, "Bad Request")
    response = Response(code, reason)
    out = response.headers
    seen = set()
    for name, value in headers:
        if name in _NEEDED:
            if name != "Via":
                if name in seen:
                    continue
                seen.add(name)
            if name == "To":
                if ";tag=" not in value.lower().replace(" ", ""):
                    value = "%s;tag=%s" % (value, newTag())
            out.append([name, value])
    return response.serialize()


@implementer(ISIPTransport)
class TransportLayer:
    """
    The SIP transport layer over every UDP socket and TCP/TLS listener of
    the server.

    @ivar messageHandler: C{callable(message, source)} given each valid
        message, requests already Via-stamped; set by the stack.
    @ivar badMessageHandler: optional C{callable(data, source, reason)}
        told about every message refused here (for counting, logging or
        blocking).
    @ivar received: messages handed to L{messageHandler}.
    @ivar sent: messages written to a socket or connection (including the
        400/513 answers made here).
    @ivar badMessages: messages refused (unparseable, oversize, invalid).
    @ivar refusedConnections: connections refused by the per-IP limit.
    @ivar halfOpenTimeout: seconds an accepted connection may stay silent
        before it is closed.
    @ivar maxConnectionsPerIP: accepted connections allowed from one IP.
    @ivar connectTimeout: seconds to wait for an outgoing TCP connect.
    """

    messageHandler = None
    badMessageHandler = None
    halfOpenTimeout = 32
    maxConnectionsPerIP = 64
    connectTimeout = 10

    def __init__(self, reactor, maxSize=65535, idleTimeout=300,
                 clientTLS=None, advertised=None):
        """
        @param reactor: provides C{callLater}, C{seconds}, C{connectTCP}
            and C{resolve}.
        @param maxSize: the largest message accepted, in bytes.
        @param idleTimeout: seconds without traffic after which a
            connection is closed.
        @param clientTLS: C{callable(hostname)} returning an
            C{IOpenSSLClientConnectionCreator} for outgoing TLS, or
            L{None} (then TLS destinations fail).
        @param advertised: a host to put in Via, Record-Route and Contact
            instead of the discovered local address (the SIPAddress
            setting, for a server behind NAT), or L{None}.
        """
        self.reactor = reactor
        self.maxSize = maxSize
        self.idleTimeout = idleTimeout
        self.clientTLS = clientTLS
        self.advertised = advertised or None
        self.received = 0
        self.sent = 0
        self.badMessages = 0
        self.refusedConnections = 0
        #: Replaceable (tests): host -> local source address or None.
        self.discoverSource = discoverSourceAddress
        self._errorHandler = None
        self._stopped = False
        self._udp = []
        self._udp4 = None
        self._udp6 = None
        self._listeners = []
        self._connections = {}
        self._connecting = {}
        self._streams = set()
        self._perIP = {}
        self._sourceCache = {}
        #: every address L{localAddress} found routes to a destination: our
        #: own addresses, which mean this server in a Request-URI
        self.sourceHosts = set()
        self._delayed = set()

    @property
    def connections(self):
        """The number of open TCP/TLS connections, both directions."""
        return len(self._streams)

    # -- listeners --------------------------------------------------------

    def udpProtocol(self, spec):
        """
        @param spec: the L{cgpro.core.ports.ListenerSpec} of a UDP row.
        @return: the C{DatagramProtocol} to bind for it.
        """
        return _DatagramProtocol(self, spec)

    def streamFactory(self, spec, tls=False):
        """
        @param spec: the L{cgpro.core.ports.ListenerSpec} of a TCP row.
        @param tls: C{True} for an implicit-TLS row: the listener wraps
            the factory in TLS, and connections are recorded as C{"TLS"}.
        @return: the C{ServerFactory} to listen with.
        """
        name = "TLS" if tls else "TCP"
        listener = _Listener(name, spec.address, spec.port)
        self._listeners.append(listener)
        return _StreamFactory(self, name, listener)

    def streamListening(self, factory, port):
        """
        Record the port a stream listener really bound, for rows
        configured with port 0.

        @param factory: what L{streamFactory} returned.
        @param port: the C{IListeningPort}.
        """
        factory.listener.port = port.getHost().port

    def _releaseIP(self, host):
        count = self._perIP.get(host, 0) - 1
        if count > 0:
            self._perIP[host] = count
        else:
            self._perIP.pop(host, None)

    def _udpStarted(self, protocol):
        self._udp.append(protocol)
        self._listeners.append(protocol.listener)
        self._pickUDP()

    def _udpStopped(self, protocol):
        if protocol in self._udp:
            self._udp.remove(protocol)
        if protocol.listener in self._listeners:
            self._listeners.remove(protocol.listener)
        self._pickUDP()

    def _pickUDP(self):
        self._udp4 = self._udp6 = None
        for protocol in self._udp:
            if protocol.listener.ipv6:
                self._udp6 = self._udp6 or protocol
            else:
                self._udp4 = self._udp4 or protocol

    def _listenerFor(self, transport, ipv6):
        first = None
        for listener in self._listeners:
            if listener.transport == transport:
                if listener.ipv6 == ipv6:
                    return listener
                first = first or listener
        return first

    # -- ISIPTransport ----------------------------------------------------

    def setErrorHandler(self, handler):
        """
        Register C{handler(destination, reason)}; C{reason} is a
        L{Failure}.  It is always called from the reactor, never from
        inside L{sendRequest} or L{sendResponse}.
        """
        self._errorHandler = handler

    def isReliable(self, destination):
        """@return: whether C{destination}'s transport is TCP or TLS."""
        return destination.transport in RELIABLE

    def localAddress(self, destination):
        """
        What our Via sent-by, Record-Route and Contact should carry for
        traffic with C{destination} over its transport.

        The host is the advertised one if set; else the listener's bound
        address if it is a specific IP; else (wildcard bind) the local
        address that routes to the destination, cached per destination.
        The port is the bound port of a listener of that transport (the
        TLS one for TLS), the transport's default before any is bound.

        @return: C{(host, port)}, an IPv6 host without brackets.
        """
        transport = destination.transport
        dest = destination.host
        ipv6 = ":" in dest
        listener = self._listenerFor(transport, ipv6)
        if listener is not None and listener.port:
            port = listener.port
        else:
            port = DEFAULT_PORTS.get(transport, 5060)
        if self.advertised is not None:
            return (self.advertised, port)
        if listener is not None and listener.host not in _WILDCARDS:
            return (listener.host, port)
        return (self._sourceFor(dest, ipv6), port)

    def _sourceFor(self, dest, ipv6):
        host = self._sourceCache.get(dest)
        if host is None:
            if dest[:4] == "127." or dest == "::1":
                host = dest if ipv6 else "127.0.0.1"
            else:
                host = self.discoverSource(dest) or (
                    "::1" if ipv6 else "127.0.0.1")
            if len(self._sourceCache) >= 4096:
                self._sourceCache.clear()
            self._sourceCache[dest] = host
            self.sourceHosts.add(host)
        return host

    def sendRequest(self, request, destination):
        """
        Send C{request} to C{destination}: UDP through our bound socket of
        the destination's address family; TCP/TLS on an open connection
        to it (ours or the peer's) or a new one.

        If the top Via's sent-by is L{SENT_BY_PLACEHOLDER}, it is replaced
        by L{localAddress} first (in the request itself).
        """
        headers = request.headers
        for header in headers:
            if header[0] == "Via":
                if SENT_BY_PLACEHOLDER in header[1]:
                    host, port = self.localAddress(destination)
                    if ":" in host:
                        host = "[%s]" % (host,)
                    header[1] = header[1].replace(
                        SENT_BY_PLACEHOLDER, "%s:%d" % (host, port), 1)
                    request._cache.pop("Via", None)
                break
        self._send(destination, request.serialize())

    def sendResponse(self, response, source):
        """
        Send C{response} back (RFC 3261 section 18.2.2, RFC 3581 section
        4): on the connection its request came on while that is open;
        else to the top Via's C{received} address (with C{rport} over
        UDP; over TCP/TLS to the connection from C{received}:C{rport} if
        it is still open, else to a new one at the sent-by port); else to
        the sent-by, resolved when it is a name.

        @param source: the L{Peer} the request came from, or L{None} when
            forwarding statelessly (the Via alone decides).
        """
        data = response.serialize()
        if source is not None and source.transport in RELIABLE:
            connection = self._connections.get(source)
            if connection is not None:
                connection.write(data)
                return
        try:
            top = response.via[0]
        except (IndexError, SIPParseError) as e:
            self._failLater(source, TransportError(
                "response without a usable Via: %s" % (e,)))
            return
        transport = top.transport
        host = top.host
        if host[:1] == "[":
            host = host[1:-1]
        port = top.port
        if transport not in DEFAULT_PORTS:
            self._failLater(Peer(transport, host, port or 5060),
                            TransportError("unsupported transport %s"
                                           % (transport,)))
            return
        received = top.received
        rport = top.rport
        if rport is not None:
            if received is None:
                received = source.host if source is not None else host
            if transport == "UDP":
                port = rport
            else:
                connection = self._connections.get(
                    Peer(transport, received, rport))
                if connection is not None:
                    connection.write(data)
                    return
        if port is None:
            port = DEFAULT_PORTS[transport]
        if received is not None:
            self._send(Peer(transport, received, port), data)
        elif _isIP(host):
            self._send(Peer(transport, host, port), data)
        else:
            d = self.reactor.resolve(host)
            d.addCallback(lambda ip: self._send(Peer(transport, ip, port),
                                                data))
            d.addErrback(lambda f: self._fail(
                Peer(transport, host, port), f))

    def stop(self):
        """
        Close every connection, cancel every timer and pending connect;
        nothing is reported to the error handler afterwards.
        """
        self._stopped = True
        for call in list(self._delayed):
            if call.active():
                call.cancel()
        self._delayed.clear()
        for connector, _ in list(self._connecting.values()):
            if connector is not None:
                connector.disconnect()
        self._connecting.clear()
        for protocol in list(self._streams):
            if protocol._timer is not None and protocol._timer.active():
                protocol._timer.cancel()
            protocol._timer = None
            protocol._close()

    # -- sending ----------------------------------------------------------

    def _send(self, destination, data):
        transport = destination.transport
        if transport == "UDP":
            host = destination.host
            if ":" in host:
                protocol = self._udp6
            else:
                protocol = self._udp4
                if protocol is None and self._udp6 is not None:
                    protocol, host = self._udp6, "::ffff:" + host
            if protocol is None:
                self._failLater(destination, TransportError(
                    "no UDP socket for %s" % (destination.host,)))
                return
            try:
                protocol.transport.write(data, (host, destination.port))
            except Exception as e:
                self._failLater(destination, e)
                return
            self.sent += 1
        elif transport in RELIABLE:
            connection = self._connections.get(destination)
            if connection is not None:
                connection.write(data)
                return
            pending = self._connecting.get(destination)
            if pending is not None:
                pending[1].append(data)
                return
            self._connect(destination, data)
        else:
            self._failLater(destination, TransportError(
                "unsupported transport %s" % (transport,)))

    def _connect(self, destination, data):
        if self._stopped:
            return
        factory = _ClientFactory(self, destination)
        if destination.transport == "TLS":
            if self.clientTLS is None:
                self._failLater(destination, TransportError(
                    "no client TLS configured"))
                return
            from twisted.protocols.tls import TLSMemoryBIOFactory
            try:
                creator = self.clientTLS(destination.host)
            except Exception as e:
                self._failLater(destination, e)
                return
            factory = TLSMemoryBIOFactory(creator, True, factory)
        queue = [data]
        self._connecting[destination] = [None, queue]
        try:
            connector = self.reactor.connectTCP(
                destination.host, destination.port, factory,
                timeout=self.connectTimeout)
        except Exception as e:
            self._connecting.pop(destination, None)
            self._failLater(destination, e)
            return
        pending = self._connecting.get(destination)
        if pending is not None and pending[1] is queue:
            pending[0] = connector

    def _connectFailed(self, destination, reason):
        pending = self._connecting.pop(destination, None)
        if pending is None or self._stopped:
            return
        for _ in pending[1]:
            self._fail(destination, reason)

    def _failLater(self, destination, error):
        call = self.reactor.callLater(0, self._failNow, destination,
                                      Failure(error))
        self._delayed.add(call)

    def _failNow(self, destination, reason):
        self._delayed = set(c for c in self._delayed if c.active())
        self._fail(destination, reason)

    def _fail(self, destination, reason):
        if self._stopped:
            return
        handler = self._errorHandler
        if handler is None:
            log.warn("cannot send to {destination}: {reason}",
                     destination=destination,
                     reason=getattr(reason, "getErrorMessage",
                                    lambda: reason)())
            return
        try:
            handler(destination, reason)
        except Exception:
            log.failure("SIP transport error handler failed")

    # -- receiving --------------------------------------------------------

    def _datagramReceived6(self, data, addr):
        host = addr[0]
        if host[:7] == "::ffff:":
            addr = (unmap(host), addr[1])
        self._datagramReceived(data, addr)

    def _datagramReceived(self, data, addr):
        if len(data) > self.maxSize:
            self._rejectDatagram(data, addr, 513, "Message Too Large")
            return
        try:
            message = parseMessage(data, False, self.maxSize)
        except SIPParseError as e:
            if not data.strip(_KEEPALIVE):
                return  # RFC 5626 keep-alive or NAT probe
            self._rejectDatagram(data, addr, 400, str(e))
            return
        except Exception:
            self._rejectDatagram(data, addr, 400, "Malformed message")
            return
        self._deliver(message, Peer("UDP", addr[0], addr[1]), None)

    def _rejectDatagram(self, data, addr, code, reason):
        self._bad(data, Peer("UDP", addr[0], addr[1]), reason)
        headers = _scanHeaders(data)
        if headers is not None:
            self._send(Peer("UDP", addr[0], addr[1]),
                       _rejection(headers, code, reason))

    def _bad(self, data, source, reason):
        self.badMessages += 1
        handler = self.badMessageHandler
        if handler is not None:
            try:
                handler(data, source, reason)
            except Exception:
                log.failure("SIP bad-message handler failed")

    def _streamError(self, connection, data, reason):
        """
        A stream that cannot be framed or parsed cannot be resynchronized:
        answer 400 when the message is readable (not when it is too large,
        nor a response), then close.
        """
        self._bad(data, connection.peer, reason)
        if "too large" not in reason:
            headers = _scanHeaders(data)
            if headers is not None:
                connection.write(_rejection(headers, 400, reason))
        connection._close()

    def _deliver(self, message, source, connection):
        """
        Validate, stamp and hand up one parsed message.

        Validation happens here so that a malformed request is answered
        400 once, by the layer that knows how to reach the sender, and the
        layers above can read any mandatory header without a try.
        """
        if message.version != _VERSION:
            # RFC 3261 section 21.5.6: 505 for a request of another SIP
            # version (RFC 4475 badvers); a response is dropped.
            reason = "SIP version %s not supported" % (message.version,)
            self._bad(message.serialize(), source, reason)
            if message.__class__ is Request and message.method != "ACK":
                answer = _rejection(message.headers, 505, "Version Not Supported")
                if connection is not None:
                    connection.write(answer)
                else:
                    self._send(source, answer)
            return
        if message.__class__ is Request:
            try:
                message.validate()
                top = message.via[0]
                host = top.host
                if host[:1] == "[":
                    host = host[1:-1]
                rport = top.hasRport and top.rport is None
                if rport or host != source.host:
                    self._stamp(message, top, source, rport)
            except Exception as e:
                reason = str(e) if isinstance(e, SIPParseError) else (
                    "Malformed request")
                data = message.serialize()
                self._bad(data, source, reason)
                if message.method != "ACK":
                    answer = _rejection(message.headers, 400, reason)
                    if connection is not None:
                        connection.write(answer)
                    else:
                        self._send(source, answer)
                return
        else:
            try:
                message.validate()
            except Exception as e:
                self._bad(message.serialize(), source, str(e))
                return
        self.received += 1
        handler = self.messageHandler
        if handler is None:
            return
        try:
            handler(message, source)
        except Exception:
            log.failure("SIP message handler failed on a message from "
                        "{source}", source=source)

    @staticmethod
    def _stamp(message, top, source, rport):
        """
        Add C{received} (and fill C{rport}, RFC 3581 section 4, which
        also requires C{received} then) to the top Via: in the parsed
        L{Via} (the cached list stays valid) and in the header text.
        """
        params = [p for p in top.params if p[0] != "received"]
        if rport:
            port = str(source.port)
            params = [("rport", port) if p[0] == "rport" else p
                      for p in params]
        params.append(("received", source.host))
        top.params = params
        for header in message.headers:
            if header[0] == "Via":
                parts = splitQuoted(header[1], ",")
                for i, part in enumerate(parts):
                    if part.strip():
                        parts[i] = str(top)
                        break
                header[1] = ",".join(parts)
                break
