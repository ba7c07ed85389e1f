# -*- test-case-name: tests.mail.smtp.test_wire -*-
"""
Tests for L{cgpro.mail.smtp.wire}: replies, command and path grammar,
ESMTP parameters, xtext, and the DATA reader.
"""

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from cgpro.mail.smtp import wire
from cgpro.mail.smtp.wire import DataReader, SMTPError


class ReplyTests(SynchronousTestCase):
    """
    Reply formatting.
    """

    def test_single(self):
        """One line: code, space, enhanced code, text."""
        self.assertEqual(wire.formatReply(250, "2.0.0", "OK"), b"250 2.0.0 OK\r\n")

    def test_multiline(self):
        """Several lines: dashes but on the last."""
        self.assertEqual(wire.formatReply(250, None, ["a", "b", "c"]),
                         b"250-a\r\n250-b\r\n250 c\r\n")


class GrammarTests(SynchronousTestCase):
    """
    Commands, paths and parameters.
    """

    def test_splitCommand(self):
        """Verbs are upper-cased; the argument keeps its case."""
        self.assertEqual(wire.splitCommand("mail FROM:<A@b>  SIZE=1"),
                         ("MAIL", "FROM:<A@b>  SIZE=1"))
        self.assertEqual(wire.splitCommand("NOOP"), ("NOOP", ""))
        self.assertEqual(wire.splitCommand("12 34"), ("", "12 34"))

    def test_mailFrom(self):
        """Paths with and without brackets, with parameters."""
        self.assertEqual(wire.parseMailFrom("FROM:<a@b.example> SIZE=10 BODY=8BITMIME"),
                         ("a@b.example", {"SIZE": "10", "BODY": "8BITMIME"}))
        self.assertEqual(wire.parseMailFrom("FROM:<>"), ("", {}))
        self.assertEqual(wire.parseMailFrom("from: a@b.example"), ("a@b.example", {}))
        self.assertEqual(wire.parseMailFrom("FROM:<@x,@y:a@b.example>"), ("a@b.example", {}))
        self.assertEqual(wire.parseMailFrom('FROM:<"x>y"@b.example> SMTPUTF8'),
                         ('"x>y"@b.example', {"SMTPUTF8": None}))

    def test_mailFromErrors(self):
        """Missing keyword, unterminated path, repeated or malformed parameters."""
        for argument in ("<a@b>", "FROM:<a@b", "FROM:<a@b>x", "FROM:<a@b> SIZE=1 SIZE=2",
                         "FROM:<a@b> =x", "FROM:<a@b> SIZE="):
            error = self.assertRaises(SMTPError, wire.parseMailFrom, argument)
            self.assertEqual(error.code, 501, argument)

    def test_pathTooLong(self):
        """A path over 256 characters is 553."""
        error = self.assertRaises(SMTPError, wire.parseRcptTo,
                                  "TO:<%s@b.example>" % ("a" * 260,))
        self.assertEqual((error.code, error.enhanced), (553, "5.1.3"))

    def test_checkMailbox(self):
        """Dot-strings, quoted strings, domains and literals."""
        for good in ("a@b", "a.b+c@d-e.f", '"a b"@c.d', "a@[1.2.3.4]", "a@[IPv6:::1]",
                     "x!#$%&'*+/=?^_`{|}~-@d.e"):
            wire.checkMailbox(good)
        for bad in ("a", "@b", "a@", "a..b@c", ".a@b", "a@b..c", "a@-b", "a@b-", "a b@c",
                    "a@[1.2.3]", "a@[IPv6:zz]", '"a"b@c', "a@b@c"):
            self.assertRaises(SMTPError, wire.checkMailbox, bad)

    def test_utf8Mailbox(self):
        """A UTF-8 address needs SMTPUTF8."""
        error = self.assertRaises(SMTPError, wire.checkMailbox, "ü@b.c")
        self.assertEqual((error.code, error.enhanced), (553, "5.6.7"))
        wire.checkMailbox("ü@bü.c", utf8=True)
        self.assertRaises(SMTPError, wire.checkMailbox, "\udcff@b.c", utf8=True)

    def test_xtext(self):
        """xtext decodes +HH and refuses bad escapes."""
        self.assertEqual(wire.xtextDecode("a+2Bb+3Dc"), "a+b=c")
        self.assertRaises(SMTPError, wire.xtextDecode, "a+2")
        self.assertRaises(SMTPError, wire.xtextDecode, "a+zz")
        self.assertRaises(SMTPError, wire.xtextDecode, "a=b")

    def test_notifyAndOrcpt(self):
        """NOTIFY lists and ORCPT values."""
        self.assertEqual(wire.parseNotify("success,Failure"), ("SUCCESS", "FAILURE"))
        self.assertEqual(wire.parseNotify("NEVER"), ("NEVER",))
        for bad in ("", "NEVER,SUCCESS", "SOMETIMES", "DELAY,DELAY"):
            self.assertRaises(SMTPError, wire.parseNotify, bad)
        self.assertEqual(wire.parseOrcpt("rfc822;a+40b"), "rfc822;a@b")
        self.assertRaises(SMTPError, wire.parseOrcpt, "rfc822")


def read(data, **kw):
    """
    Feed C{data} in one piece.

    @return: C{(stored bytes, reader, rest of the buffer)}.
    """
    out = []
    reader = DataReader(out.append, **kw)
    buffer = bytearray(data)
    position = reader.feed(buffer, 0)
    return b"".join(out), reader, bytes(buffer[position:])


def readPieces(data, size, fast=True, **kw):
    out = []
    reader = DataReader(out.append, **kw)
    reader.fastPath = fast
    buffer = bytearray()
    for i in range(0, len(data), size):
        buffer += data[i:i + size]
        position = reader.feed(buffer, 0)
        del buffer[:position]
        if reader.done:
            break
    return b"".join(out), reader, bytes(buffer)


_TOKENS = [b"a", b"bcd", b".", b"..", b"\r", b"\n", b"\r\n", b"\r\n.\r\n", b"\0",
           b"x" * 15, b"\n.\n", b"\r\n.\n"]


class DataReaderTests(SynchronousTestCase):
    """
    The DATA reader.
    """

    def test_basic(self):
        """Lines are stored with CRLF; the end line ends; what follows stays."""
        stored, reader, rest = read(b"a\r\nb\r\n.\r\nQUIT\r\n")
        self.assertEqual((stored, reader.done, rest), (b"a\r\nb\r\n", True, b"QUIT\r\n"))
        self.assertEqual(reader.size, 6)

    def test_empty(self):
        """An empty message is just the end line."""
        stored, reader, _ = read(b".\r\n")
        self.assertEqual((stored, reader.done), (b"", True))

    def test_incomplete(self):
        """Without the end line nothing ends; a partial line is left."""
        stored, reader, rest = read(b"a\r\npart")
        self.assertEqual((stored, reader.done, rest), (b"a\r\n", False, b"part"))

    def test_unstuff(self):
        """A leading dot is removed once."""
        self.assertEqual(read(b"..x\r\n...\r\n.\r\n")[0], b".x\r\n..\r\n")

    def test_smuggling(self):
        """Only CRLF.CRLF ends: LF.LF, LF.CRLF and CRLF.LF do not."""
        for data in (b"a\n.\nb\r\n", b"a\n.\r\nb\r\n", b"a\r\n.\nb\r\n"):
            stored, reader, _ = read(data)
            self.assertFalse(reader.done, data)
            self.assertEqual(stored, b"a\r\n.\r\nb\r\n")

    def test_bareLFReject(self):
        """In reject mode a bare LF is fatal."""
        _, reader, _ = read(b"a\r\nb\nc\r\n.\r\n", bareLF="Reject")
        self.assertTrue(reader.fatal)
        self.assertEqual(reader.error.code, 554)

    def test_size(self):
        """Past the limit: 552, nothing more written, reading goes on to the end."""
        stored, reader, rest = read(b"12345\r\n67890\r\n.\r\nX", maxSize=10)
        self.assertEqual((stored, reader.done, rest), (b"", True, b"X"))
        self.assertEqual((reader.error.code, reader.error.enhanced), (552, "5.3.4"))

    def test_nul(self):
        """NUL: refused, or stripped."""
        self.assertEqual(read(b"a\0\r\n.\r\n")[1].error.code, 554)
        self.assertEqual(read(b"a\0\r\n.\r\n", nulBytes="Strip")[0], b"a\r\n")

    def test_longLine(self):
        """A complete line over 998 characters refuses the message."""
        _, reader, _ = read(b"x" * 999 + b"\r\n.\r\n")
        self.assertEqual((reader.error.code, reader.done), (554, True))

    def test_longLineInPieces(self):
        """An over-long line arriving in pieces is dropped as it comes."""
        stored, reader, rest = readPieces(b"x" * 5000 + b"\r\nok\r\n.\r\n", 700)
        self.assertTrue(reader.done)
        self.assertEqual(reader.error.code, 554)

    @settings(max_examples=100, deadline=None)
    @given(lines=st.lists(st.binary(max_size=40).filter(lambda b: b"\n" not in b
                                                         and b"\r" not in b), max_size=20),
           size=st.integers(min_value=1, max_value=50))
    def test_piecesEqualWhole(self, lines, size):
        """Feeding in pieces of any size stores what feeding at once stores."""
        body = b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n"
                        for line in lines)
        data = body + b".\r\nNEXT"
        whole = read(data, nulBytes="Strip")
        pieces = readPieces(data, size, nulBytes="Strip")
        self.assertEqual(whole[0], pieces[0])
        self.assertTrue(pieces[1].done)
        expected = b"".join(line.replace(b"\0", b"") + b"\r\n" for line in lines)
        self.assertEqual(whole[0], expected)

    @settings(max_examples=300, deadline=None)
    @given(tokens=st.lists(st.sampled_from(_TOKENS), max_size=60),
           size=st.integers(min_value=1, max_value=64),
           maxSize=st.one_of(st.none(), st.integers(min_value=0, max_value=300)),
           bareLF=st.sampled_from(["Normalize", "Reject"]),
           nulBytes=st.sampled_from(["Reject", "Strip"]))
    def test_fastPathEqualsSlowPath(self, tokens, size, maxSize, bareLF, nulBytes):
        """The run-at-once path decides and stores exactly what the line path does."""
        data = b"".join(tokens)
        kw = dict(maxSize=maxSize, bareLF=bareLF, nulBytes=nulBytes, maxLine=20)
        fast = readPieces(data, size, fast=True, **kw)
        slow = readPieces(data, size, fast=False, **kw)

        def outcome(result):
            stored, reader, rest = result
            error = reader.error and (reader.error.code, reader.error.text)
            return stored, reader.done, reader.fatal, error, rest

        self.assertEqual(outcome(fast), outcome(slow))
