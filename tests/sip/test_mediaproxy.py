# -*- test-case-name: tests.sip.test_mediaproxy -*-
"""
Tests for L{cgpro.sip.mediaproxy}: when the proxy anchors a call's media in
the relay, how it rewrites offers and answers, and what happens when the
relay is full.  The relay is a fake that hands out ports.
"""

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from cgpro.core.interfaces import IMediaRelay, IMediaSession, MediaExhausted
from cgpro.sip.address import Peer
from cgpro.sip.sdp import SessionDescription
from tests.sip.test_proxy import ProxyTestsMixin, invite, respond

OFFER = (b"v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n"
         b"m=audio 4000 RTP/AVP 0\r\n")
PUBLIC_OFFER = OFFER.replace(b"10.0.0.5", b"198.51.100.7")


@implementer(IMediaSession)
class FakeSession:
    def __init__(self, callId, legs, families=None):
        self.callId = callId
        self.families = families or [4] * legs
        self.localAddress = "0.0.0.0"
        self.ports = [(50000 + 2 * i, 50001 + 2 * i) for i in range(legs)]
        self.remotes = {}
        self.released = None
        self._done = Deferred()

    def addressOf(self, leg):
        return "2001:db8::1" if self.families[leg] == 6 else "0.0.0.0"

    def setRemote(self, leg, host, port, rtcpPort=None):
        self.remotes[leg] = (host, port)

    def release(self):
        if not self.released:
            self.released = "bye"
            self._done.callback("bye")

    def whenReleased(self):
        d = Deferred()
        self._done.addBoth(lambda r: (d.callback(r), r)[1])
        return d

    def stats(self):
        return []


@implementer(IMediaRelay)
class FakeRelay:
    implementation = "py"

    def __init__(self, capacity=10):
        self.capacity = capacity
        self.made = []

    def allocate(self, callId, legs=2, clockRate=8000, families=None):
        if len([s for s in self.made if not s.released]) >= self.capacity:
            raise MediaExhausted("media relay: session limit reached")
        session = FakeSession(callId, legs, families)
        self.made.append(session)
        return session

    def sessions(self):
        return [s for s in self.made if not s.released]

    def stats(self):
        return {}

    def stop(self):
        pass


class MediaProxyTests(ProxyTestsMixin, SynchronousTestCase):
    """
    The proxy and the relay.
    """

    def setUp(self):
        ProxyTestsMixin.setUp(self)
        self.relay = FakeRelay()
        self.stack.context.media = self.relay
        self.bind("bob", "sip:bob@203.0.113.1:5060")

    def call(self, body):
        self.receive(invite(extra=["Content-Type: application/sdp"], body=body))
        return self.sent()

    def test_natCallerRelayed(self):
        """
        A caller whose SDP names a private address is relayed: bob's offer
        points at the callee-facing relay port, the caller's address is the
        relay's first guess, and bob's answer goes back rewritten to the
        caller-facing port.
        """
        (request, _), = self.call(OFFER)
        session, = self.relay.made
        stream, = SessionDescription(request.body).streams
        self.assertEqual((stream.address, stream.port), ("192.0.2.1", 50002))
        self.assertEqual(session.remotes[0], ("10.0.0.5", 4000))
        answer = respond(request, 200)
        answer.addHeader("Content-Type", "application/sdp")
        answer.body = PUBLIC_OFFER.replace(b"198.51.100.7", b"203.0.113.1")
        self.receive(answer.serialize(), Peer("UDP", "203.0.113.1", 5060))
        forwarded = self.transport.responses[-1][0]
        self.assertEqual(SessionDescription(forwarded.body).streams[0].port, 50000)
        self.assertEqual(session.remotes[1], ("203.0.113.1", 4000))

    def test_publicCallerNotRelayed(self):
        """
        With the default MediaProxy=NAT, a caller with a public address
        calling a device reached directly is not relayed.
        """
        (request, _), = self.call(PUBLIC_OFFER)
        self.assertEqual(self.relay.made, [])
        self.assertEqual(request.body, PUBLIC_OFFER)

    def test_neverAndAlways(self):
        """
        MediaProxy=Never relays nothing, MediaProxy=Always everything.
        """
        self.directory.setServerDict("Modules", {"SIP": {"MediaProxy": "Never"}})
        self.call(OFFER)
        self.assertEqual(self.relay.made, [])
        self.directory.setServerDict("Modules", {"SIP": {"MediaProxy": "Always"}})
        self.receive(invite(callId="c2", branch="z9hG4bKc2",
                            extra=["Content-Type: application/sdp"], body=PUBLIC_OFFER))
        self.assertEqual(len(self.relay.made), 1)

    def test_failedCallReleases(self):
        """
        A relayed call that fails gives its ports back.
        """
        (request, _), = self.call(OFFER)
        self.receive(respond(request, 486).serialize())
        self.assertEqual(self.relay.made[0].released, "bye")

    def test_ipv6Bridging(self):
        """
        An IPv4 caller calling a device on IPv6 is relayed even with
        MediaProxy=NAT: the callee side of the session is IPv6 and bob's
        offer names the relay's IPv6 address.
        """
        self.bind("carol", "sip:carol@[2001:db8::7]:5060")
        self.receive(invite(user="carol", extra=["Content-Type: application/sdp"],
                            body=PUBLIC_OFFER))
        (request, destination), = self.sent()
        self.assertEqual(destination.host, "2001:db8::7")
        session, = self.relay.made
        self.assertEqual(session.families, [4, 6])
        self.assertIn(b"c=IN IP6 2001:db8::1", request.body)

    def test_exhausted(self):
        """
        A call that needs the relay when it is full gets 503 with a reason.
        """
        self.relay.capacity = 0
        self.assertEqual(self.call(OFFER), [])
        response = self.transport.responses[-1][0]
        self.assertEqual((response.code, response.reason), (503, "Media relay exhausted"))
