# -*- test-case-name: tests.mail.imap.test_fetch -*-
"""
Tests for FETCH (L{cgpro.mail.imap.commands.fetch}) and the MIME helpers
(L{cgpro.mail.imap.mime}, L{cgpro.mail.imap.bodystructure}).
"""

from twisted.trial.unittest import SynchronousTestCase

from cgpro.mail.imap import mime
from cgpro.mail.imap.bodystructure import bodyStructure, envelope
from tests.mail.imap.support import USER, Session, makeContext, message

MULTIPART = (
    b"From: Ann <ann@example.com>\r\n"
    b"To: joe@example.com, \"Bob B\" <bob@example.com>\r\n"
    b"Subject: parts\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="XX"\r\n'
    b"\r\n"
    b"preamble\r\n"
    b"--XX\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"first part\r\n"
    b"--XX\r\n"
    b"Content-Type: application/octet-stream; name=a.bin\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"Content-Disposition: attachment; filename=a.bin\r\n"
    b"\r\n"
    b"aGVsbG8=\r\n"
    b"--XX\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"\r\n"
    b"Subject: inner\r\n"
    b"From: x@example.com\r\n"
    b"\r\n"
    b"inner body\r\n"
    b"--XX--\r\n"
    b"epilogue\r\n"
)


class MimeTests(SynchronousTestCase):
    """
    Parts found by byte offsets.
    """

    def test_parts(self):
        """A multipart's parts, a nested message and their bodies are found exactly."""
        root = mime.parse(MULTIPART)
        self.assertEqual(len(root.children), 3)
        first, attachment, inner = root.children
        self.assertEqual(MULTIPART[first.bodyStart:first.end], b"first part")
        self.assertEqual(MULTIPART[attachment.bodyStart:attachment.end], b"aGVsbG8=")
        self.assertEqual(inner.message.header("SUBJECT"), "inner")
        self.assertIs(mime.findPart(root, (3, 1)), inner.message)
        self.assertIsNone(mime.findPart(root, (4,)))

    def test_bodyStructure(self):
        """BODYSTRUCTURE describes each part, with extension data."""
        root = mime.parse(MULTIPART)
        structure = bodyStructure(MULTIPART, root)
        self.assertTrue(structure.startswith(
            b'(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 10 0 NIL NIL NIL NIL)'
            b'("APPLICATION" "OCTET-STREAM" ("NAME" "a.bin") NIL NIL "BASE64" 8 NIL '
            b'("ATTACHMENT" ("FILENAME" "a.bin")) NIL NIL)("MESSAGE" "RFC822" NIL NIL NIL '
            b'"7BIT" 49 (NIL "inner" '), structure)
        self.assertTrue(structure.endswith(b' "MIXED" ("BOUNDARY" "XX") NIL NIL NIL)'))
        self.assertNotIn(b"BOUNDARY", bodyStructure(MULTIPART, root, extended=False))

    def test_envelope(self):
        """ENVELOPE splits address lists and defaults Sender and Reply-To to From."""
        value = envelope(mime.parse(MULTIPART))
        self.assertEqual(value, b'(NIL "parts" (("Ann" NIL "ann" "example.com")) '
                                b'(("Ann" NIL "ann" "example.com")) '
                                b'(("Ann" NIL "ann" "example.com")) '
                                b'((NIL NIL "joe" "example.com")("Bob B" NIL "bob" "example.com"))'
                                b' NIL NIL NIL NIL)')

    def test_hostile(self):
        """Deep nesting and junk do not break the parser."""
        data = b"".join(b"Content-Type: message/rfc822\r\n\r\n" for _ in range(200)) + b"x"
        root = mime.parse(data)
        bodyStructure(data, root)
        mime.parse(b"\x00\xff garbage without headers")
        mime.parse(b'Content-Type: multipart/mixed; boundary=""\r\n\r\n--\r\n')


class FetchTests(SynchronousTestCase):
    """
    FETCH over a session.
    """

    def setUp(self):
        self.context = makeContext(self)
        self.store = self.context.mailStore
        self.successResultOf(self.store.deliver(USER, "INBOX", message("plain")))
        self.successResultOf(self.store.deliver(USER, "INBOX", MULTIPART))
        self.session = Session(self, self.context)
        self.session.login(self)
        self.session.ok(self, "SELECT INBOX")

    def test_indexItems(self):
        """FLAGS, UID, INTERNALDATE, RFC822.SIZE and FAST come from the index."""
        out = self.session.ok(self, "FETCH 1:* (UID RFC822.SIZE)")
        self.assertIn("* 1 FETCH (UID 1 RFC822.SIZE %d)" % len(message("plain")), out)
        self.assertIn("* 2 FETCH (UID 2 RFC822.SIZE %d)" % len(MULTIPART), out)
        out = self.session.ok(self, "FETCH 2 FAST")
        self.assertRegex(out, r'\* 2 FETCH \(FLAGS \(\\Recent\) INTERNALDATE "\d\d-\w{3}-\d{4} '
                              r'\d\d:\d\d:\d\d \+0000" RFC822.SIZE \d+\)')

    def test_sections(self):
        """Part, HEADER, TEXT, MIME and HEADER.FIELDS(.NOT) sections, with partial ranges."""
        out = self.session.ok(self, "FETCH 2 (BODY.PEEK[1] BODY.PEEK[2.MIME] BODY.PEEK[3.HEADER]"
                                    " BODY.PEEK[3.TEXT] BODY.PEEK[3.1] BODY.PEEK[TEXT]<0.8>)")
        self.assertIn("BODY[1] {10}\r\nfirst part", out)
        self.assertIn("BODY[2.MIME] {%d}\r\nContent-Type: application/octet-stream" % (
            len(b"Content-Type: application/octet-stream; name=a.bin\r\n"
                b"Content-Transfer-Encoding: base64\r\n"
                b"Content-Disposition: attachment; filename=a.bin\r\n\r\n")), out)
        self.assertIn("BODY[3.HEADER] {39}\r\nSubject: inner\r\nFrom: x@example.com\r\n\r\n", out)
        self.assertIn("BODY[3.TEXT] {10}\r\ninner body ", out)
        self.assertIn("BODY[3.1] {10}\r\ninner body ", out)
        self.assertIn("BODY[TEXT]<0> {8}\r\npreamble", out)
        out = self.session.ok(self, "FETCH 2 (BODY.PEEK[HEADER.FIELDS (subject TO)])")
        self.assertIn("BODY[HEADER.FIELDS (SUBJECT TO)] {66}\r\n"
                      "To: joe@example.com, \"Bob B\" <bob@example.com>\r\n"
                      "Subject: parts\r\n\r\n", out)
        out = self.session.ok(self, "FETCH 1 (BODY.PEEK[HEADER.FIELDS.NOT (FROM TO DATE "
                                    "MESSAGE-ID)])")
        self.assertIn("{18}\r\nSubject: plain\r\n\r\n", out)
        out = self.session.ok(self, "FETCH 1 BODY.PEEK[9]")
        self.assertIn("BODY[9] {0}\r\n", out)

    def test_rfc822(self):
        """RFC822, RFC822.HEADER and RFC822.TEXT; RFC822 and RFC822.TEXT set \\Seen."""
        data = message("plain")
        out = self.session.ok(self, "FETCH 1 RFC822.HEADER")
        header, _, text = data.partition(b"\r\n\r\n")
        self.assertIn("RFC822.HEADER {%d}" % (len(header) + 4), out)
        self.assertNotIn("\\Seen", out)
        out = self.session.ok(self, "FETCH 1 RFC822.TEXT")
        self.assertIn("RFC822.TEXT {%d}\r\n%s" % (len(text), text.decode()), out)
        self.assertIn("\\Seen", out)
        out = self.session.ok(self, "FETCH 1 RFC822")
        self.assertIn("RFC822 {%d}\r\n" % len(data), out)

    def test_bodySetsSeen(self):
        """BODY[] sets \\Seen durably and reports it; BODY.PEEK[] does not."""
        out = self.session.ok(self, "FETCH 1 BODY.PEEK[]")
        self.assertNotIn("Seen", out)
        out = self.session.ok(self, "FETCH 1 (FLAGS BODY[])")
        self.assertIn("FLAGS (\\Seen \\Recent)", out)
        box = self.successResultOf(self.store.openMailbox(USER, "INBOX"))
        self.assertEqual(box.flags(1), ("\\Seen",))
        box.close()

    def test_structure(self):
        """ENVELOPE, BODY and BODYSTRUCTURE over the session."""
        out = self.session.ok(self, "FETCH 2 (ENVELOPE BODY BODYSTRUCTURE)")
        self.assertIn('ENVELOPE (NIL "parts"', out)
        self.assertIn('BODY (("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 10 0)', out)
        self.assertIn('BODYSTRUCTURE (("TEXT" "PLAIN"', out)

    def test_binary(self):
        """BINARY[] decodes the transfer encoding; BINARY.SIZE gives its size."""
        out = self.session.ok(self, "FETCH 2 (BINARY.PEEK[2] BINARY.SIZE[2])")
        self.assertIn("BINARY[2] {5}\r\nhello", out)
        self.assertIn("BINARY.SIZE[2] 5", out)

    def test_uidFetch(self):
        """UID FETCH adds UID and ignores UIDs that do not exist."""
        out = self.session.ok(self, "UID FETCH 2:100 FLAGS")
        self.assertIn("* 2 FETCH (UID 2 FLAGS (\\Recent))", out)
        self.assertNotIn("* 1 FETCH", out)
        out = self.session.ok(self, "UID FETCH 50:60 FLAGS")
        self.assertNotIn("FETCH (", out)
