"""
Tests for L{cgpro.pbx.sdp}: choosing G.711 from a peer's offer and
writing our answer.
"""

from twisted.trial.unittest import SynchronousTestCase

from cgpro.pbx import sdp as SDP

OFFER = (b"v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n"
         b"m=audio 4000 RTP/AVP 18 8 0 96\r\na=rtpmap:18 G729/8000\r\n"
         b"a=rtpmap:96 telephone-event/8000\r\na=sendrecv\r\n")


class ParseTests(SynchronousTestCase):

    def test_firstG711InPeerOrder(self):
        """PCMA listed before PCMU is chosen; the peer's event type is kept."""
        remote = SDP.parse(OFFER)
        self.assertEqual((remote.host, remote.port, remote.codec, remote.payload,
                          remote.eventPayload, remote.hold),
                         ("10.0.0.5", 4000, "PCMA", 8, 96, False))

    def test_prefer(self):
        """A re-INVITE keeps the codec in use when the peer still lists it."""
        self.assertEqual(SDP.parse(OFFER, prefer="PCMU").codec, "PCMU")

    def test_dynamicPCMU(self):
        """A dynamic payload number mapped to PCMU counts."""
        body = OFFER.replace(b"18 8 0 96", b"97").replace(b"a=rtpmap:18 G729/8000",
                                                          b"a=rtpmap:97 PCMU/8000")
        remote = SDP.parse(body)
        self.assertEqual((remote.codec, remote.payload, remote.eventPayload), ("PCMU", 97, None))

    def test_mediaLevelAddressAndHold(self):
        """A media-level c= wins; sendonly means hold."""
        body = OFFER.replace(b"a=sendrecv", b"c=IN IP4 10.9.9.9\r\na=sendonly")
        remote = SDP.parse(body)
        self.assertEqual((remote.host, remote.hold), ("10.9.9.9", True))

    def test_nothingUsable(self):
        """No G.711, no audio, garbage: SDPError with the reason."""
        for body, reason in ((OFFER.replace(b"18 8 0 96", b"18"), "neither PCMU nor PCMA"),
                             (b"v=0\r\nm=video 5000 RTP/AVP 31\r\n", "no audio"),
                             (b"", "no audio"),
                             (b"m=audio x RTP/AVP 0\r\nc=IN IP4 1.2.3.4\r\n", "bad audio port")):
            e = self.assertRaises(SDP.SDPError, SDP.parse, body)
            self.assertIn(reason, str(e))


class DescribeTests(SynchronousTestCase):

    def test_answerUsesPeerNumbers(self):
        """The answer has the chosen codec with the peer's numbers and our address."""
        answer = SDP.answer(SDP.parse(OFFER), "192.0.2.1", 60000).decode()
        self.assertIn("c=IN IP4 192.0.2.1\r\n", answer)
        self.assertIn("m=audio 60000 RTP/AVP 8 96\r\n", answer)
        self.assertIn("a=rtpmap:96 telephone-event/8000\r\n", answer)
        remote = SDP.parse(answer.encode())
        self.assertEqual((remote.port, remote.codec, remote.eventPayload), (60000, "PCMA", 96))

    def test_offer(self):
        """Our offer lists PCMU, PCMA and telephone-event 101; IPv6 addresses say IP6."""
        offer = SDP.describe("2001:db8::1", 60002).decode()
        self.assertIn("m=audio 60002 RTP/AVP 0 8 101\r\n", offer)
        self.assertIn("c=IN IP6 2001:db8::1\r\n", offer)
