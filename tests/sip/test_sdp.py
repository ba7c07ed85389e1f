"""
Tests for L{cgpro.sip.sdp}.
"""

from twisted.trial.unittest import SynchronousTestCase

from cgpro.sip.address import Peer
from cgpro.sip.sdp import SDPError, SessionDescription, behindNAT

OFFER = (b"v=0\r\n"
         b"o=alice 2890844526 2890844526 IN IP4 10.0.0.5\r\n"
         b"s=-\r\n"
         b"c=IN IP4 10.0.0.5\r\n"
         b"t=0 0\r\n"
         b"m=audio 49170 RTP/AVP 0 8 101\r\n"
         b"a=rtpmap:0 PCMU/8000\r\n"
         b"a=rtpmap:101 telephone-event/8000\r\n"
         b"m=video 0 RTP/AVP 31\r\n"
         b"m=audio 49180 RTP/AVP 0\r\n"
         b"c=IN IP4 10.0.0.6\r\n"
         b"a=rtcp:53020 IN IP4 10.0.0.6\r\n")


class SessionDescriptionTests(SynchronousTestCase):
    def test_streams(self):
        """
        Each m= section gets its address (media-level c= over the session
        one) and its RTP/RTCP ports (a=rtcp over port + 1).
        """
        sdp = SessionDescription(OFFER)
        self.assertEqual([(s.kind, s.address, s.port, s.rtcpPort) for s in sdp.streams],
                         [("audio", "10.0.0.5", 49170, 49171),
                          ("video", "10.0.0.5", 0, 1),
                          ("audio", "10.0.0.6", 49180, 53020)])

    def test_rewrite(self):
        """
        Rewriting points c=, o= and every accepted stream at the relay,
        bumps the o= version, keeps refused streams and every other line.
        """
        sdp = SessionDescription(OFFER)
        body = sdp.rewrite("192.0.2.1", [(60000, 60001), (60002, 60003), (60004, 60005)])
        again = SessionDescription(body)
        self.assertEqual([(s.address, s.port, s.rtcpPort) for s in again.streams],
                         [("192.0.2.1", 60000, 60001), ("192.0.2.1", 0, 1),
                          ("192.0.2.1", 60004, 60005)])
        self.assertIn(b"o=alice 2890844526 2890844527 IN IP4 192.0.2.1\r\n", body)
        self.assertIn(b"a=rtpmap:101 telephone-event/8000\r\n", body)
        self.assertIn(b"a=rtcp:60005 IN IP4 192.0.2.1\r\n", body)

    def test_ipv6(self):
        """
        Rewriting to an IPv6 relay address bridges the families.
        """
        body = SessionDescription(OFFER).rewrite("2001:db8::1", [(60000, 60001)])
        self.assertIn(b"c=IN IP6 2001:db8::1\r\n", body)

    def test_notSDP(self):
        """
        A body that is not SDP is refused with a reason.
        """
        self.assertRaises(SDPError, SessionDescription, b"hello")
        self.assertRaises(SDPError, SessionDescription, b"v=0\r\nm=audio x RTP/AVP 0\r\n")

    def test_behindNAT(self):
        """
        A private media address from a public source is NAT; the same
        address, or a public one, is not.
        """
        sdp = SessionDescription(OFFER)
        self.assertTrue(behindNAT(sdp, Peer("UDP", "93.184.216.34", 5060)))
        self.assertFalse(behindNAT(SessionDescription(OFFER.replace(b"10.0.0.5", b"93.184.216.34")
                                                      .replace(b"10.0.0.6", b"93.184.216.34")),
                                   Peer("UDP", "93.184.216.34", 5060)))
