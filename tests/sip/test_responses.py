"""
Tests for L{cgpro.sip.responses}.
"""

from twisted.trial.unittest import SynchronousTestCase

from cgpro.sip.message import parseMessage
from cgpro.sip.responses import BRANCH_MAGIC, makeResponse, newBranch, newTag

INVITE = (
    b"INVITE sip:bob@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bK1\r\n"
    b"Via: SIP/2.0/UDP pc.example.com;branch=z9hG4bK2;received=10.0.0.1\r\n"
    b"Max-Forwards: 69\r\n"
    b"To: Bob <sip:bob@example.com>\r\n"
    b"From: Alice <sip:alice@example.com>;tag=a1\r\n"
    b"Call-ID: c1@pc\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:alice@pc.example.com>\r\n"
    b"Content-Length: 0\r\n\r\n")


class MakeResponseTests(SynchronousTestCase):
    def test_copiesDialogHeaders(self):
        """
        Every Via in order, From, To, Call-ID and CSeq are copied; Contact
        is not; the standard reason phrase is used.
        """
        response = makeResponse(parseMessage(INVITE), 486, toTag="t9")
        parsed = parseMessage(response.serialize())
        self.assertEqual(parsed.code, 486)
        self.assertEqual(parsed.reason, "Busy Here")
        self.assertEqual([v.branch for v in parsed.via],
                         ["z9hG4bK1", "z9hG4bK2"])
        self.assertEqual(parsed.toAddr.tag, "t9")
        self.assertEqual(parsed.fromAddr.tag, "a1")
        self.assertEqual(parsed.callId, "c1@pc")
        self.assertEqual(str(parsed.cseq), "1 INVITE")
        self.assertIsNone(parsed.getHeader("Contact"))

    def test_trying(self):
        """
        100 Trying never gets a To tag; extra headers are appended.
        """
        response = makeResponse(parseMessage(INVITE), 100, toTag="t9",
                                headers=[("Server", "cgpro")])
        self.assertIsNone(response.toAddr.tag)
        self.assertEqual(response.getHeader("Server"), "cgpro")

    def test_existingTagKept(self):
        """
        A request inside a dialog keeps its To tag.
        """
        request = parseMessage(INVITE.replace(
            b"To: Bob <sip:bob@example.com>", b"To: <sip:bob@example.com>;tag=x"))
        response = makeResponse(request, 200, toTag="other")
        self.assertEqual(response.toAddr.tag, "x")

    def test_identifiers(self):
        """
        Branches carry the magic cookie and differ; tags differ.
        """
        a, b = newBranch(), newBranch()
        self.assertTrue(a.startswith(BRANCH_MAGIC))
        self.assertNotEqual(a, b)
        self.assertNotEqual(newTag(), newTag())
