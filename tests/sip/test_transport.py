# -*- test-case-name: tests.sip.test_transport -*-
"""
Tests for L{cgpro.sip.transport}.

All but the last test case run on fakes (a recording datagram transport,
L{StringTransport}, L{MemoryReactorClock}), so every timeout is driven by
C{clock.advance}; L{RealSocketTests} exchanges one OPTIONS over real UDP
and TCP sockets on 127.0.0.1.
"""

from twisted.internet import defer
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.interfaces import IPushProducer
from twisted.internet.ssl import optionsForClientTLS
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from cgpro.core.ports import ListenerSpec
from cgpro.sip.address import Peer
from cgpro.sip.interfaces import ISIPTransport
from cgpro.sip.message import Request, Response, parseMessage
from cgpro.sip.responses import makeResponse
from cgpro.sip.transport import (
    SENT_BY_PLACEHOLDER, TransportLayer, discoverSourceAddress)


def spec(transport="udp", address="0.0.0.0", port=5060):
    """@return: a L{ListenerSpec} for a SIP row."""
    return ListenerSpec(name="sip-" + transport, module="sip",
                        transport=transport, address=address, port=port)


def request(via="SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK1", method="OPTIONS",
            cseqMethod=None, extraVia=None, body=b""):
    """@return: the bytes of a request with the given top Via."""
    lines = ["%s sip:server.example SIP/2.0" % (method,), "Via: " + via]
    if extraVia:
        lines.append("Via: " + extraVia)
    lines += ["Max-Forwards: 70", "From: <sip:alice@example.com>;tag=a1",
              "To: <sip:server.example>", "Call-ID: call-1@example",
              "CSeq: 1 %s" % (cseqMethod or method,),
              "Content-Length: %d" % (len(body),), "", ""]
    return "\r\n".join(lines).encode("ascii") + body


RESPONSE = (b"SIP/2.0 200 OK\r\n"
            b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK9\r\n"
            b"From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>;tag=2\r\n"
            b"Call-ID: c9\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")


class FakeUDPTransport:
    """
    The part of a bound UDP port the layer uses: C{write} and C{getHost}.

    @ivar written: C{(bytes, address)} pairs, in order.
    """

    maxPacketSize = 8192

    def __init__(self, host="0.0.0.0", port=5060):
        self.written = []
        if ":" in host:
            self.host = IPv6Address("UDP", host, port)
        else:
            self.host = IPv4Address("UDP", host, port)

    def write(self, data, addr):
        self.written.append((data, addr))

    def getHost(self):
        return self.host


class LayerMixin:
    """
    A layer on a L{MemoryReactorClock} with one UDP socket, recording
    what it hands up, refuses and fails to send.
    """

    def setUp(self):
        self.clock = MemoryReactorClock()
        self.layer = TransportLayer(self.clock)
        self.layer.discoverSource = lambda host: "192.0.2.10"
        self.delivered = []
        self.bad = []
        self.errors = []
        self.layer.messageHandler = lambda m, s: self.delivered.append((m, s))
        self.layer.badMessageHandler = lambda d, s, r: self.bad.append((d, s, r))
        self.layer.setErrorHandler(lambda d, r: self.errors.append((d, r)))
        self.udp = FakeUDPTransport()
        self.layer.udpProtocol(spec()).makeConnection(self.udp)

    def datagram(self, data, source=("10.0.0.5", 5060)):
        """Deliver C{data} as a datagram from C{source}."""
        self.layer._udp[0].datagramReceived(data, source)

    def accept(self, host="10.0.0.5", port=40000, tls=False, factory=None):
        """
        Accept a connection from C{host:port} on a TCP (or TLS) listener.

        @return: C{(protocol, StringTransport)}.
        """
        if factory is None:
            factory = self.layer.streamFactory(spec("tcp"), tls=tls)
        protocol = factory.buildProtocol(IPv4Address("TCP", host, port))
        transport = StringTransport(
            hostAddress=IPv4Address("TCP", "192.0.2.10", 5060),
            peerAddress=IPv4Address("TCP", host, port))
        protocol.makeConnection(transport)
        return protocol, transport


class InterfaceTests(LayerMixin, SynchronousTestCase):
    def test_interface(self):
        """L{TransportLayer} provides L{ISIPTransport}."""
        self.assertTrue(verifyObject(ISIPTransport, self.layer))

    def test_isReliable(self):
        """TCP and TLS destinations are reliable, UDP ones are not."""
        self.assertFalse(self.layer.isReliable(Peer("UDP", "10.0.0.1", 5060)))
        self.assertTrue(self.layer.isReliable(Peer("TCP", "10.0.0.1", 5060)))
        self.assertTrue(self.layer.isReliable(Peer("TLS", "10.0.0.1", 5061)))

    def test_bigDatagramsNotTruncated(self):
        """
        The bound port reads one byte more than the largest message, so
        Twisted's default 8192-byte read cannot truncate a message.
        """
        self.assertEqual(self.udp.maxPacketSize, 65536)


class IncomingTests(LayerMixin, SynchronousTestCase):
    def test_deliveredWithSource(self):
        """
        A valid datagram reaches the message handler once, with the UDP
        L{Peer} it came from, and is counted.
        """
        self.datagram(request())
        [(message, source)] = self.delivered
        self.assertIsInstance(message, Request)
        self.assertEqual(source, Peer("UDP", "10.0.0.5", 5060))
        self.assertEqual(self.layer.received, 1)

    def test_noStampWhenSentByMatches(self):
        """
        A Via whose sent-by is the source address and has no C{rport} is
        left exactly as it was.
        """
        self.datagram(request())
        message = self.delivered[0][0]
        self.assertEqual(message.getHeader("Via"),
                         "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK1")

    def test_receivedStamped(self):
        """
        RFC 3261 section 18.2.1: a sent-by that differs from the source
        IP gets C{received}, in the parsed Via and in the header text.
        """
        self.datagram(request(via="SIP/2.0/UDP pc.example:5060;branch=z9hG4bK1"))
        message = self.delivered[0][0]
        self.assertEqual(message.via[0].received, "10.0.0.5")
        again = parseMessage(message.serialize())
        self.assertEqual(again.via[0].received, "10.0.0.5")
        self.assertEqual(again.via[0].branch, "z9hG4bK1")

    def test_rportFilled(self):
        """
        RFC 3581 section 4: an empty C{rport} gets the source port, and
        C{received} is added even though the sent-by IP is the source's.
        """
        self.datagram(request(via="SIP/2.0/UDP 10.0.0.5:5060;rport;branch=z9hG4bK1"),
                      ("10.0.0.5", 31000))
        via = parseMessage(self.delivered[0][0].serialize()).via[0]
        self.assertEqual(via.rport, 31000)
        self.assertEqual(via.received, "10.0.0.5")

    def test_onlyTopViaElementChanges(self):
        """
        When the first Via header holds several elements, only the first
        one is stamped; the others and later Via headers are untouched.
        """
        self.datagram(request(
            via="SIP/2.0/UDP nat.example;rport;branch=z9hG4bK1, "
                "SIP/2.0/UDP inner.example;branch=z9hG4bK0",
            extraVia="SIP/2.0/UDP first.example;branch=z9hG4bKx"))
        message = self.delivered[0][0]
        value = message.getHeaders("Via")
        self.assertTrue(value[0].endswith(
            ", SIP/2.0/UDP inner.example;branch=z9hG4bK0"))
        self.assertEqual(value[1], "SIP/2.0/UDP first.example;branch=z9hG4bKx")
        vias = parseMessage(message.serialize()).via
        self.assertEqual([v.received for v in vias], ["10.0.0.5", None, None])
        self.assertEqual(vias[0].rport, 5060)

    def test_ipv6SentBy(self):
        """
        An IPv6 sent-by in brackets matching the source address is not
        stamped; one that differs gets an unbracketed C{received}.
        """
        self.layer.udpProtocol(spec(address="::")).makeConnection(
            FakeUDPTransport("::"))
        v6 = self.layer._udp[1]
        v6.datagramReceived(
            request(via="SIP/2.0/UDP [2001:db8::5]:5060;branch=z9hG4bK1"),
            ("2001:db8::5", 5060, 0, 0))
        v6.datagramReceived(
            request(via="SIP/2.0/UDP [2001:db8::6]:5060;branch=z9hG4bK1"),
            ("2001:db8::5", 5060, 0, 0))
        first, second = [m for m, s in self.delivered]
        self.assertIsNone(first.via[0].received)
        self.assertEqual(parseMessage(second.serialize()).via[0].received,
                         "2001:db8::5")
        self.assertEqual(self.delivered[0][1], Peer("UDP", "2001:db8::5", 5060))

    def test_ipv4MappedSourceUnmapped(self):
        """
        An IPv4 peer seen on a dual-stack C{::} socket is reported with
        its IPv4 address.
        """
        self.layer.udpProtocol(spec(address="::")).makeConnection(
            FakeUDPTransport("::"))
        self.layer._udp[1].datagramReceived(request(), ("::ffff:10.0.0.5", 5060, 0, 0))
        self.assertEqual(self.delivered[0][1], Peer("UDP", "10.0.0.5", 5060))

    def test_responseDelivered(self):
        """A valid response is handed up unchanged (no Via stamping)."""
        self.datagram(RESPONSE, ("192.0.2.99", 5060))
        [(message, source)] = self.delivered
        self.assertIsInstance(message, Response)
        self.assertIsNone(message.via[0].received)

    def test_handlerExceptionLogged(self):
        """
        An exception from the message handler is logged, not sent to the
        peer, and does not stop later messages on the same connection.
        """
        calls = []

        def handler(message, source):
            calls.append(message)
            raise RuntimeError("boom")

        self.layer.messageHandler = handler
        protocol, transport = self.accept()
        protocol.dataReceived(request(via="SIP/2.0/TCP 10.0.0.5;branch=z9hG4bK1"))
        protocol.dataReceived(request(via="SIP/2.0/TCP 10.0.0.5;branch=z9hG4bK2"))
        self.assertEqual(len(calls), 2)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 2)
        self.assertEqual(transport.value(), b"")
        self.assertFalse(transport.disconnecting)


class BadInputTests(LayerMixin, SynchronousTestCase):
    def test_keepAliveIgnored(self):
        """
        RFC 5626 CRLF keep-alive datagrams are neither answered nor
        counted as bad.
        """
        self.datagram(b"\r\n\r\n")
        self.datagram(b"\r\n")
        self.assertEqual(self.udp.written, [])
        self.assertEqual(self.layer.badMessages, 0)
        self.assertEqual(self.delivered, [])

    def test_garbageWithHeadersAnswered400(self):
        """
        A datagram the parser refuses but whose Via, From, To, Call-ID and
        CSeq can be read is answered with 400 and the parser's reason,
        to the source address, with a To tag.
        """
        data = request().replace(b"Max-Forwards: 70\r\n",
                                 b"Max-Forwards: 70\r\nBroken line\r\n")
        self.datagram(data, ("10.0.0.7", 5099))
        [(answer, address)] = self.udp.written
        self.assertEqual(address, ("10.0.0.7", 5099))
        response = parseMessage(answer)
        self.assertEqual(response.code, 400)
        self.assertIn("bad header line", response.reason)
        self.assertEqual(response.callId, "call-1@example")
        self.assertIsNotNone(response.toAddr.tag)
        self.assertEqual(self.layer.badMessages, 1)
        self.assertEqual(self.bad[0][1], Peer("UDP", "10.0.0.7", 5099))
        self.assertEqual(self.delivered, [])

    def test_garbageDropped(self):
        """
        Garbage without the headers needed for a response is dropped but
        counted and reported.
        """
        self.datagram(b"GET / HTTP/1.0\r\n\r\n")
        self.assertEqual(self.udp.written, [])
        self.assertEqual(self.layer.badMessages, 1)
        self.assertEqual(len(self.bad), 1)

    def test_malformedResponseDropped(self):
        """A malformed response is never answered."""
        self.datagram(RESPONSE.replace(b"CSeq: 1 OPTIONS", b"CSeq: x"))
        self.datagram(RESPONSE.replace(b"200 OK", b"2000 OK"))
        self.assertEqual(self.udp.written, [])
        self.assertEqual(self.layer.badMessages, 2)
        self.assertEqual(self.delivered, [])

    def test_oversizeDatagram513(self):
        """
        A datagram larger than C{maxSize} is answered with 513 when its
        headers are readable.
        """
        self.layer.maxSize = 600
        self.datagram(request(body=b"x" * 700))
        [(answer, address)] = self.udp.written
        self.assertEqual(parseMessage(answer).code, 513)
        self.assertEqual(self.layer.badMessages, 1)

    def test_validateFailure400(self):
        """
        A request that parses but fails C{validate()} (CSeq method not
        the request's) is answered with 400 and not handed up.
        """
        self.datagram(request(cseqMethod="INVITE"))
        [(answer, address)] = self.udp.written
        response = parseMessage(answer)
        self.assertEqual(response.code, 400)
        self.assertIn("CSeq method", response.reason)
        self.assertEqual(self.delivered, [])

    def test_otherVersion505(self):
        """
        A request of another SIP version (RFC 4475 badvers: C{SIP/7.0})
        is answered with 505 to its source and not handed up; a response
        of another version and an ACK are dropped without an answer.
        """
        self.datagram(request().replace(b" SIP/2.0\r\n", b" SIP/7.0\r\n", 1),
                      ("10.0.0.7", 5099))
        [(answer, address)] = self.udp.written
        self.assertEqual(address, ("10.0.0.7", 5099))
        response = parseMessage(answer)
        self.assertEqual(response.code, 505)
        self.assertEqual(response.callId, "call-1@example")
        self.assertIsNotNone(response.toAddr.tag)
        self.datagram(request(method="ACK").replace(b" SIP/2.0\r\n", b" SIP/7.0\r\n", 1))
        self.datagram(RESPONSE.replace(b"SIP/2.0 200", b"SIP/7.0 200"))
        self.assertEqual(len(self.udp.written), 1)
        self.assertEqual(self.delivered, [])
        self.assertEqual(self.layer.badMessages, 3)

    def test_repeatedHeadersAnsweredOnce(self):
        """
        A request refused for two values of single-valued headers (RFC
        4475 multi01) is answered with one From, To, Call-ID and CSeq,
        the first of each, and every Via.
        """
        data = request(extraVia="SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK2").replace(
            b"Content-Length: 0\r\n",
            b"Call-ID: call-2@example\r\n"
            b"CSeq: 2 OPTIONS\r\nFrom: <sip:x@example.com>;tag=x\r\n"
            b"To: <sip:y@example.com>\r\nContent-Length: 0\r\n")
        self.datagram(data)
        [(answer, address)] = self.udp.written
        response = parseMessage(answer)
        self.assertEqual(response.code, 400)
        self.assertEqual(response.getHeaders("Call-ID"), ["call-1@example"])
        self.assertEqual(response.getHeaders("CSeq"), ["1 OPTIONS"])
        self.assertEqual(response.getHeaders("From"), ["<sip:alice@example.com>;tag=a1"])
        self.assertEqual(len(response.getHeaders("To")), 1)
        self.assertEqual(len(response.via), 2)

    def test_invalidAckNotAnswered(self):
        """An invalid ACK is dropped: ACK is never answered."""
        self.datagram(request(method="ACK", cseqMethod="INVITE"))
        self.assertEqual(self.udp.written, [])
        self.assertEqual(self.layer.badMessages, 1)

    def test_reasonSanitized(self):
        """
        The reason phrase of a 400 holds only printable ASCII and is
        bounded, whatever bytes the peer sent.
        """
        data = request().replace(b"Max-Forwards: 70\r\n",
                                 b"Max-Forwards: 70\r\n\xff\x01" + b"y" * 300 + b"\r\n")
        self.datagram(data)
        answer = self.udp.written[0][0]
        statusLine = answer.split(b"\r\n")[0]
        self.assertLess(len(statusLine), 140)
        self.assertTrue(all(32 <= c < 127 for c in statusLine))

    def test_streamPing(self):
        """A CRLFCRLF ping on a stream is answered with one CRLF pong."""
        protocol, transport = self.accept()
        protocol.dataReceived(b"\r\n\r\n")
        self.assertEqual(transport.value(), b"\r\n")
        self.assertEqual(self.layer.badMessages, 0)

    def test_streamParseError400AndClose(self):
        """
        A message on a stream that cannot be parsed is answered with 400
        when readable, and the connection is closed.
        """
        protocol, transport = self.accept()
        protocol.dataReceived(request(via="SIP/2.0/TCP 10.0.0.5;branch=z9hG4bK1"))
        bad = request(via="SIP/2.0/TCP 10.0.0.5;branch=z9hG4bK2").replace(
            b"Max-Forwards: 70", b"Max-Forwards: 70\r\nBroken")
        protocol.dataReceived(bad)
        self.assertEqual(len(self.delivered), 1)
        response = parseMessage(transport.value())
        self.assertEqual(response.code, 400)
        self.assertEqual(response.via[0].branch, "z9hG4bK2")
        self.assertTrue(transport.disconnecting)
        protocol.dataReceived(request())
        self.assertEqual(len(self.delivered), 1)

    def test_streamOversizeCloses(self):
        """
        A stream message longer than C{maxSize} closes the connection
        without an answer.
        """
        self.layer.maxSize = 600
        protocol, transport = self.accept()
        protocol.dataReceived(request(body=b"x" * 700))
        self.assertEqual(transport.value(), b"")
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.layer.badMessages, 1)

    def test_streamValidateFailureKeepsConnection(self):
        """
        A well-framed request that fails C{validate()} is answered with
        400 on its connection, which stays open.
        """
        protocol, transport = self.accept()
        protocol.dataReceived(request(cseqMethod="INVITE"))
        self.assertEqual(parseMessage(transport.value()).code, 400)
        self.assertFalse(transport.disconnecting)


class ResponseRoutingTests(LayerMixin, SynchronousTestCase):
    def respond(self, via, source=Peer("UDP", "10.0.0.5", 5060)):
        """
        Receive a request with top Via C{via} from C{source} over UDP and
        answer it with 200.
        """
        self.datagram(request(via=via), (source.host, source.port))
        message, source = self.delivered[-1]
        self.layer.sendResponse(makeResponse(message, 200, toTag="t"), source)

    def test_rport(self):
        """
        RFC 3581: with C{rport}, the response goes to the source IP and
        port, not to the sent-by.
        """
        self.respond("SIP/2.0/UDP 192.168.1.2:5060;rport;branch=z9hG4bK1",
                     Peer("UDP", "203.0.113.9", 40123))
        self.assertEqual(self.udp.written[0][1], ("203.0.113.9", 40123))
        self.assertEqual(self.layer.sent, 1)

    def test_received(self):
        """
        RFC 3261 section 18.2.2: without C{rport}, the response goes to
        C{received} at the sent-by port.
        """
        self.respond("SIP/2.0/UDP 192.168.1.2:5070;branch=z9hG4bK1",
                     Peer("UDP", "203.0.113.9", 40123))
        self.assertEqual(self.udp.written[0][1], ("203.0.113.9", 5070))

    def test_sentBy(self):
        """
        A sent-by equal to the source, without port, gets the response
        at the default port.
        """
        self.respond("SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK1",
                     Peer("UDP", "10.0.0.5", 40000))
        self.assertEqual(self.udp.written[0][1], ("10.0.0.5", 5060))

    def test_sentByName(self):
        """A sent-by host name is resolved before sending."""
        resolved = []

        def resolve(name):
            resolved.append(name)
            return defer.succeed("198.51.100.4")

        self.clock.resolve = resolve
        response = Response(200, "OK", headers=[
            ["Via", "SIP/2.0/UDP proxy.example:5080;branch=z9hG4bK1"],
            ["From", "<sip:a@b>;tag=1"], ["To", "<sip:a@b>;tag=2"],
            ["Call-ID", "x"], ["CSeq", "1 OPTIONS"]])
        self.layer.sendResponse(response, Peer("UDP", "10.9.9.9", 5060))
        self.assertEqual(resolved, ["proxy.example"])
        self.assertEqual(self.udp.written[0][1], ("198.51.100.4", 5080))

    def test_sameConnection(self):
        """
        A response to a request that came over TCP goes back on that
        connection while it is open.
        """
        protocol, transport = self.accept()
        protocol.dataReceived(request(via="SIP/2.0/TCP 10.0.0.5:5060;branch=z9hG4bK1"))
        message, source = self.delivered[0]
        self.assertEqual(source, Peer("TCP", "10.0.0.5", 40000))
        self.layer.sendResponse(makeResponse(message, 200, toTag="t"), source)
        self.assertEqual(parseMessage(transport.value()).code, 200)
        self.assertEqual(self.clock.tcpClients, [])

    def test_closedConnection(self):
        """
        If the request's connection has closed, a new one is opened to
        the C{received} address at the sent-by port.
        """
        protocol, transport = self.accept()
        protocol.dataReceived(request(via="SIP/2.0/TCP pc.example:5070;branch=z9hG4bK1"))
        message, source = self.delivered[0]
        protocol.connectionLost(Failure(ConnectionRefusedError()))
        self.layer.sendResponse(makeResponse(message, 200, toTag="t"), source)
        host, port = self.clock.tcpClients[0][:2]
        self.assertEqual((host, port), ("10.0.0.5", 5070))

    def test_statelessByVia(self):
        """
        Without a source (a proxy forwarding a stray response), the top
        Via alone decides: C{received} and C{rport} over UDP.
        """
        response = Response(200, "OK", headers=[
            ["Via", "SIP/2.0/UDP pc.example:5070;rport=40001;received=203.0.113.9;"
                    "branch=z9hG4bK1"],
            ["From", "<sip:a@b>;tag=1"], ["To", "<sip:a@b>;tag=2"],
            ["Call-ID", "x"], ["CSeq", "1 OPTIONS"]])
        self.layer.sendResponse(response, None)
        self.assertEqual(self.udp.written[0][1], ("203.0.113.9", 40001))

    def test_statelessFindsConnection(self):
        """
        Without a source, a TCP Via with C{received} and C{rport} finds
        the connection the request came on (its source address).
        """
        protocol, transport = self.accept("10.0.0.5", 40000)
        protocol.dataReceived(request(via="SIP/2.0/TCP pc.example;rport;branch=z9hG4bK1"))
        message = self.delivered[0][0]
        self.layer.sendResponse(makeResponse(message, 200, toTag="t"), None)
        self.assertEqual(parseMessage(transport.value()).code, 200)
        self.assertEqual(self.clock.tcpClients, [])

    def test_noUDPSocketForFamily(self):
        """
        A UDP response to an IPv6 address with only an IPv4 socket bound
        is reported to the error handler, later, not raised.
        """
        response = Response(200, "OK", headers=[
            ["Via", "SIP/2.0/UDP [2001:db8::1];branch=z9hG4bK1"],
            ["From", "<sip:a@b>;tag=1"], ["To", "<sip:a@b>;tag=2"],
            ["Call-ID", "x"], ["CSeq", "1 OPTIONS"]])
        self.layer.sendResponse(response, Peer("UDP", "2001:db8::1", 5060))
        self.assertEqual(self.errors, [])
        self.clock.advance(0)
        self.assertEqual(self.errors[0][0], Peer("UDP", "2001:db8::1", 5060))


class RequestTests(LayerMixin, SynchronousTestCase):
    def outgoing(self, via="SIP/2.0/TCP 192.0.2.10:5060;branch=z9hG4bKo"):
        """@return: a parsed request to send."""
        return parseMessage(request(via=via))

    def test_udp(self):
        """A UDP request goes out through the bound socket."""
        self.layer.sendRequest(self.outgoing(), Peer("UDP", "10.0.0.8", 5062))
        [(data, address)] = self.udp.written
        self.assertEqual(address, ("10.0.0.8", 5062))
        self.assertEqual(parseMessage(data).method, "OPTIONS")

    def test_ipv4ThroughDualStackSocket(self):
        """
        With only a C{::} socket bound, IPv4 destinations are reached
        through their IPv4-mapped address.
        """
        self.layer._udpStopped(self.layer._udp[0])
        self.layer.udpProtocol(spec(address="::")).makeConnection(FakeUDPTransport("::"))
        v6 = self.layer._udp[0].transport
        self.layer.sendRequest(self.outgoing(), Peer("UDP", "10.0.0.8", 5060))
        self.assertEqual(v6.written[0][1], ("::ffff:10.0.0.8", 5060))

    def test_reuseIncomingConnection(self):
        """
        A request to the L{Peer} a UA connected from goes back on the
        UA's own connection: no new connection is opened.
        """
        protocol, transport = self.accept("10.0.0.5", 40000)
        self.layer.sendRequest(self.outgoing(), Peer("TCP", "10.0.0.5", 40000))
        self.assertEqual(parseMessage(transport.value()).method, "OPTIONS")
        self.assertEqual(self.clock.tcpClients, [])

    def test_connectAndQueue(self):
        """
        Without a connection, one is opened; requests sent meanwhile are
        queued and written in order once it connects; later ones reuse it.
        """
        destination = Peer("TCP", "10.0.0.9", 5060)
        first = self.outgoing("SIP/2.0/TCP 192.0.2.10;branch=z9hG4bKa")
        second = self.outgoing("SIP/2.0/TCP 192.0.2.10;branch=z9hG4bKb")
        self.layer.sendRequest(first, destination)
        self.layer.sendRequest(second, destination)
        self.assertEqual(len(self.clock.tcpClients), 1)
        host, port, factory = self.clock.tcpClients[0][:3]
        self.assertEqual((host, port), ("10.0.0.9", 5060))
        protocol = factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.assertEqual(transport.value(), first.serialize() + second.serialize())
        transport.clear()
        self.layer.sendRequest(first, destination)
        self.assertEqual(transport.value(), first.serialize())
        self.assertEqual(len(self.clock.tcpClients), 1)
        self.assertEqual(self.layer.connections, 1)

    def test_connectFailure(self):
        """
        A failed connect reports every queued message's destination to
        the error handler.
        """
        destination = Peer("TCP", "10.0.0.9", 5060)
        self.layer.sendRequest(self.outgoing(), destination)
        self.layer.sendRequest(self.outgoing(), destination)
        factory = self.clock.tcpClients[0][2]
        factory.clientConnectionFailed(None, Failure(ConnectionRefusedError()))
        self.assertEqual([d for d, r in self.errors], [destination, destination])
        self.assertTrue(self.errors[0][1].check(ConnectionRefusedError))
        self.layer.sendRequest(self.outgoing(), destination)
        self.assertEqual(len(self.clock.tcpClients), 2)

    def test_tlsWithoutClientContext(self):
        """Without C{clientTLS}, a TLS destination fails (later)."""
        destination = Peer("TLS", "10.0.0.9", 5061)
        self.layer.sendRequest(self.outgoing(), destination)
        self.assertEqual(self.clock.tcpClients, [])
        self.clock.advance(0)
        self.assertEqual(self.errors[0][0], destination)

    def test_tlsWaitsForHandshake(self):
        """
        An outgoing TLS connection is wrapped with the client TLS options
        for the destination, and its queue is flushed only once the
        handshake completes; a connection lost before that fails it.
        """
        hosts = []

        def clientTLS(host):
            hosts.append(host)
            return optionsForClientTLS("peer.example")

        self.layer.clientTLS = clientTLS
        destination = Peer("TLS", "10.0.0.9", 5061)
        self.layer.sendRequest(self.outgoing(), destination)
        self.assertEqual(hosts, ["10.0.0.9"])
        wrapper = self.clock.tcpClients[0][2]
        protocol = wrapper.wrappedFactory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.assertEqual(transport.value(), b"")
        protocol.handshakeCompleted()
        self.assertEqual(parseMessage(transport.value()).method, "OPTIONS")

        self.layer.sendRequest(self.outgoing(), Peer("TLS", "10.0.0.10", 5061))
        protocol = self.clock.tcpClients[1][2].wrappedFactory.buildProtocol(None)
        protocol.makeConnection(StringTransport())
        protocol.connectionLost(Failure(ConnectionRefusedError()))
        self.assertEqual(self.errors[0][0], Peer("TLS", "10.0.0.10", 5061))

    def test_tlsHandshakeTimeout(self):
        """
        A TLS handshake that does not complete within C{connectTimeout}
        closes the connection and fails its queued messages.
        """
        self.layer.clientTLS = lambda host: optionsForClientTLS("peer.example")
        destination = Peer("TLS", "10.0.0.9", 5061)
        self.layer.sendRequest(self.outgoing(), destination)
        protocol = self.clock.tcpClients[0][2].wrappedFactory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.clock.advance(self.layer.connectTimeout)
        self.assertTrue(transport.disconnecting)
        protocol.connectionLost(Failure(ConnectionRefusedError()))
        [(failed, reason)] = self.errors
        self.assertEqual(failed, destination)
        self.assertIn("timed out", reason.getErrorMessage())

    def test_incomingTLSRecorded(self):
        """Connections accepted by the TLS listener are TLS peers."""
        protocol, transport = self.accept(tls=True)
        protocol.dataReceived(request(via="SIP/2.0/TLS 10.0.0.5;branch=z9hG4bK1"))
        self.assertEqual(self.delivered[0][1], Peer("TLS", "10.0.0.5", 40000))

    def test_placeholderSentBy(self):
        """
        A Via sent-by written as L{SENT_BY_PLACEHOLDER} is replaced with
        L{TransportLayer.localAddress} in the request itself.
        """
        message = self.outgoing("SIP/2.0/UDP %s;rport;branch=z9hG4bKp"
                                % (SENT_BY_PLACEHOLDER,))
        self.layer.sendRequest(message, Peer("UDP", "10.0.0.8", 5060))
        self.assertEqual(message.via[0].host, "192.0.2.10")
        self.assertEqual(message.via[0].port, 5060)
        sent = parseMessage(self.udp.written[0][0])
        self.assertEqual(str(sent.via[0]),
                         "SIP/2.0/UDP 192.0.2.10:5060;rport;branch=z9hG4bKp")


class LocalAddressTests(SynchronousTestCase):
    def setUp(self):
        self.clock = MemoryReactorClock()
        self.layer = TransportLayer(self.clock)
        self.looked = []

        def discover(host):
            self.looked.append(host)
            return "192.0.2.77"

        self.layer.discoverSource = discover

    def test_beforeListeners(self):
        """
        Before any listener is bound: the discovered address and the
        transport's default port.
        """
        self.assertEqual(self.layer.localAddress(Peer("UDP", "10.0.0.1", 5060)),
                         ("192.0.2.77", 5060))
        self.assertEqual(self.layer.localAddress(Peer("TLS", "10.0.0.1", 5061)),
                         ("192.0.2.77", 5061))

    def test_wildcardDiscoveredAndCached(self):
        """
        A wildcard bind advertises the address routing to the
        destination, asked once per destination host; loopback
        destinations get the loopback address without asking.
        """
        self.layer.udpProtocol(spec(port=5070)).makeConnection(
            FakeUDPTransport("0.0.0.0", 5070))
        destination = Peer("UDP", "10.0.0.1", 5060)
        self.assertEqual(self.layer.localAddress(destination), ("192.0.2.77", 5070))
        self.layer.localAddress(destination)
        self.assertEqual(self.looked, ["10.0.0.1"])
        self.assertEqual(self.layer.localAddress(Peer("UDP", "127.0.0.1", 5060)),
                         ("127.0.0.1", 5070))

    def test_specificBind(self):
        """A listener bound to one IP advertises that IP."""
        self.layer.udpProtocol(spec(address="198.51.100.1")).makeConnection(
            FakeUDPTransport("198.51.100.1", 5060))
        self.assertEqual(self.layer.localAddress(Peer("UDP", "10.0.0.1", 5060)),
                         ("198.51.100.1", 5060))
        self.assertEqual(self.looked, [])

    def test_advertised(self):
        """The advertised host wins over any discovery."""
        layer = TransportLayer(self.clock, advertised="sip.example.com")
        layer.discoverSource = self.fail
        self.assertEqual(layer.localAddress(Peer("UDP", "10.0.0.1", 5060)),
                         ("sip.example.com", 5060))

    def test_portPerTransport(self):
        """
        The port is that of a listener of the destination's transport:
        TLS destinations get the TLS listener's port.
        """
        self.layer.streamFactory(spec("tcp", port=5080))
        tlsFactory = self.layer.streamFactory(spec("tcp", port=0), tls=True)

        class Port:
            def getHost(self):
                return IPv4Address("TCP", "0.0.0.0", 5091)

        self.layer.streamListening(tlsFactory, Port())
        self.assertEqual(self.layer.localAddress(Peer("TCP", "10.0.0.1", 5060))[1], 5080)
        self.assertEqual(self.layer.localAddress(Peer("TLS", "10.0.0.1", 5061))[1], 5091)

    def test_portLearntFromConnection(self):
        """
        A stream row bound to port 0 learns its port from the first
        connection it accepts, if L{TransportLayer.streamListening} was
        not called.
        """
        factory = self.layer.streamFactory(spec("tcp", port=0))
        protocol = factory.buildProtocol(IPv4Address("TCP", "10.0.0.5", 1))
        protocol.makeConnection(StringTransport(
            hostAddress=IPv4Address("TCP", "0.0.0.0", 5093),
            peerAddress=IPv4Address("TCP", "10.0.0.5", 1)))
        self.assertEqual(self.layer.localAddress(Peer("TCP", "10.0.0.1", 5060))[1], 5093)

    def test_discoverSourceAddress(self):
        """
        The real discovery returns a local address for the loopback
        destination (no packet is sent by connecting a UDP socket).
        """
        self.assertEqual(discoverSourceAddress("127.0.0.1"), "127.0.0.1")


class ConnectionManagementTests(LayerMixin, SynchronousTestCase):
    def test_flowControl(self):
        """
        A connection is the streaming producer of its own transport: when
        the transport's buffer backs up (a peer that does not read its
        answers), reading from that peer is paused, and resumed when the
        buffer drains, unless the connection is closing by then.
        """
        protocol, transport = self.accept()
        self.assertIs(transport.producer, protocol)
        self.assertTrue(transport.streaming)
        self.assertTrue(verifyObject(IPushProducer, protocol))
        protocol.pauseProducing()
        self.assertEqual(transport.producerState, "paused")
        protocol.resumeProducing()
        self.assertEqual(transport.producerState, "producing")
        protocol.pauseProducing()
        protocol._close()
        protocol.resumeProducing()
        self.assertEqual(transport.producerState, "paused")

    def test_halfOpenTimeout(self):
        """
        An accepted connection that never sends anything is closed after
        the half-open timeout.
        """
        protocol, transport = self.accept()
        self.clock.advance(self.layer.halfOpenTimeout - 1)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(1)
        self.assertTrue(transport.disconnecting)

    def test_idleTimeout(self):
        """
        A connection is closed after C{idleTimeout} seconds without
        traffic; traffic pushes the deadline back.
        """
        protocol, transport = self.accept()
        protocol.dataReceived(b"\r\n\r\n")
        self.clock.advance(200)
        protocol.dataReceived(b"\r\n\r\n")
        self.clock.advance(200)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(100)
        self.assertTrue(transport.disconnecting)

    def test_outgoingIdleTimeout(self):
        """Connections we opened are closed when idle too."""
        self.layer.sendRequest(parseMessage(request()), Peer("TCP", "10.0.0.9", 5060))
        protocol = self.clock.tcpClients[0][2].buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.clock.advance(self.layer.idleTimeout)
        self.assertTrue(transport.disconnecting)

    def test_perIPLimit(self):
        """
        Connections from one IP beyond the limit are aborted at once;
        closing one makes room again; other IPs are not affected.
        """
        self.layer.maxConnectionsPerIP = 2
        factory = self.layer.streamFactory(spec("tcp"))
        first, _ = self.accept(port=1, factory=factory)
        self.accept(port=2, factory=factory)
        refused, transport = self.accept(port=3, factory=factory)
        self.assertFalse(hasattr(refused, "peer"))
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.layer.refusedConnections, 1)
        other, transport = self.accept(host="10.0.0.6", factory=factory)
        self.assertFalse(transport.disconnecting)
        first.connectionLost(Failure(ConnectionRefusedError()))
        again, transport = self.accept(port=4, factory=factory)
        self.assertFalse(transport.disconnecting)

    def test_connectionsCounted(self):
        """C{connections} is the number of live connections."""
        protocol, transport = self.accept()
        self.assertEqual(self.layer.connections, 1)
        protocol.connectionLost(Failure(ConnectionRefusedError()))
        self.assertEqual(self.layer.connections, 0)
        self.assertEqual(self.layer._perIP, {})

    def test_stop(self):
        """
        C{stop} closes every connection, cancels timers and pending
        connects, and reports nothing afterwards.
        """
        protocol, transport = self.accept()
        self.layer.sendRequest(parseMessage(request()), Peer("TCP", "10.0.0.9", 5060))
        self.layer.sendRequest(parseMessage(request()), Peer("TLS", "10.0.0.9", 5061))
        self.layer.stop()
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.layer._connecting, {})
        self.clock.tcpClients[0][2].clientConnectionFailed(
            None, Failure(ConnectionRefusedError()))
        self.assertEqual(self.errors, [])


class RealSocketTests(TestCase):
    """
    One OPTIONS and its 200 over real UDP and TCP sockets on 127.0.0.1,
    between two layers: a server that answers and a client that asks.
    """

    def setUp(self):
        from twisted.internet import reactor
        self.reactor = reactor
        self.server = TransportLayer(reactor)
        self.client = TransportLayer(reactor)
        self.server.messageHandler = self.answer
        self.responses = []
        self.client.messageHandler = lambda m, s: self.responses.append((m, s))
        self.ports = []
        self.udpPort = self.listenUDP(self.server)
        self.listenUDP(self.client)
        factory = self.server.streamFactory(spec("tcp", "127.0.0.1", 0))
        tcp = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.ports.append(tcp)
        self.server.streamListening(factory, tcp)
        self.tcpPort = tcp.getHost().port
        self.addCleanup(self.shutDown)

    def listenUDP(self, layer):
        port = self.reactor.listenUDP(
            0, layer.udpProtocol(spec("udp", "127.0.0.1", 0)), interface="127.0.0.1")
        self.ports.append(port)
        return port.getHost().port

    def answer(self, message, source):
        if isinstance(message, Request):
            self.server.sendResponse(makeResponse(message, 200, toTag="s1"), source)

    @defer.inlineCallbacks
    def shutDown(self):
        self.server.stop()
        self.client.stop()
        for port in self.ports:
            yield port.stopListening()
        yield self.waitFor(lambda: not self.server.connections and
                           not self.client.connections)

    @defer.inlineCallbacks
    def waitFor(self, predicate, timeout=5.0):
        from twisted.internet.task import deferLater
        waited = 0.0
        while not predicate():
            if waited > timeout:
                self.fail("condition not met within %ss" % (timeout,))
            yield deferLater(self.reactor, 0.01, lambda: None)
            waited += 0.01

    def options(self, transport, port):
        destination = Peer(transport, "127.0.0.1", port)
        host, local = self.client.localAddress(destination)
        message = parseMessage(request(
            via="SIP/2.0/%s %s:%d;rport;branch=z9hG4bK%s" % (
                transport, host, local, transport)))
        self.client.sendRequest(message, destination)

    @defer.inlineCallbacks
    def test_optionsOverUDPAndTCP(self):
        """
        The client's OPTIONS reaches the server over UDP, its 200 comes
        back by rport; over TCP the 200 comes back on the client's
        connection.
        """
        self.options("UDP", self.udpPort)
        yield self.waitFor(lambda: len(self.responses) == 1)
        response, source = self.responses[0]
        self.assertEqual(response.code, 200)
        self.assertEqual(source, Peer("UDP", "127.0.0.1", self.udpPort))
        self.assertEqual(response.via[0].received, "127.0.0.1")

        self.options("TCP", self.tcpPort)
        yield self.waitFor(lambda: len(self.responses) == 2)
        response, source = self.responses[1]
        self.assertEqual(response.code, 200)
        self.assertEqual(source, Peer("TCP", "127.0.0.1", self.tcpPort))
        self.assertEqual(self.server.connections, 1)
        self.assertEqual(self.server.received, 2)
