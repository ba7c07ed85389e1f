# -*- test-case-name: tests.mail.imap.test_parser -*-
"""
Tests for L{cgpro.mail.imap.parser}: framing with literals and LITERAL+,
limits, tokens, sequence sets, FETCH attributes, SEARCH keys, dates and
mailbox names.
"""

from twisted.trial.unittest import SynchronousTestCase

from cgpro.mail.imap import parser
from cgpro.mail.imap.parser import Atom, Framer, ParseError


def framer(limit=100, maxLine=200):
    return Framer(lambda first: 1000 if b" APPEND " in first else limit, maxLine=maxLine)


def drain(f):
    out = []
    while True:
        event = f.poll()
        if event is None:
            return out
        out.append(event)


class FramerTests(SynchronousTestCase):
    """
    Cutting the byte stream into commands.
    """

    def test_lines(self):
        """Each CRLF-terminated line is one command; partial lines wait."""
        f = framer()
        f.feed(b"a NOOP\r\nb CAPA")
        self.assertEqual(drain(f), [("command", b"a NOOP")])
        f.feed(b"BILITY\r\n")
        self.assertEqual(drain(f), [("command", b"b CAPABILITY")])

    def test_synchronizingLiteral(self):
        """A {n} literal asks for a continuation, then is taken whole."""
        f = framer()
        f.feed(b"a LOGIN {4}\r\n")
        self.assertEqual(drain(f), [("continue", None)])
        f.feed(b"joe! pw\r\n")
        self.assertEqual(drain(f), [("command", b"a LOGIN {4}\r\njoe! pw")])

    def test_nonSynchronizingLiteral(self):
        """LITERAL+ ({n+}) needs no continuation; literal bytes may hold CRLF."""
        f = framer()
        f.feed(b"a APPEND INBOX {4+}\r\nx\r\ny\r\n")
        self.assertEqual(drain(f), [("command", b"a APPEND INBOX {4+}\r\nx\r\ny")])

    def test_literalTooBigSynchronizing(self):
        """A too-big synchronizing literal ends the command with [TOOBIG]."""
        f = framer()
        f.feed(b"a LOGIN {500}\r\nb NOOP\r\n")
        self.assertEqual(drain(f), [("reject", ("a", "[TOOBIG] literal too big")),
                                    ("command", b"b NOOP")])

    def test_literalTooBigPlus(self):
        """A too-big LITERAL+ is skipped byte by byte, then rejected."""
        f = framer()
        f.feed(b"a LOGIN {150+}\r\n" + b"x" * 100)
        self.assertEqual(drain(f), [])
        f.feed(b"x" * 50 + b" pw\r\nb NOOP\r\n")
        self.assertEqual(drain(f), [("reject", ("a", "[TOOBIG] literal too big")),
                                    ("command", b"b NOOP")])

    def test_appendLimit(self):
        """APPEND gets the larger literal limit."""
        f = framer()
        f.feed(b"a APPEND INBOX {500+}\r\n" + b"x" * 500 + b"\r\n")
        self.assertEqual(drain(f)[0][0], "command")

    def test_endlessLine(self):
        """A line beyond the limit is dropped as it comes and rejected once it ends."""
        f = framer(maxLine=100)
        for _ in range(50):
            f.feed(b"a " + b"x" * 1000)
            self.assertEqual(drain(f), [])
            self.assertLess(f.buffered, 2000)
        f.feed(b"\r\nb NOOP\r\n")
        self.assertEqual(drain(f), [("reject", ("a", "command line too long")),
                                    ("command", b"b NOOP")])

    def test_lineMode(self):
        """In line mode the next line comes back raw, even with a literal marker."""
        f = framer()
        f.lineMode = True
        f.feed(b"DONE {5}\r\na NOOP\r\n")
        self.assertEqual(drain(f), [("line", b"DONE {5}"), ("command", b"a NOOP")])


class TokenizeTests(SynchronousTestCase):
    """
    Tokens, strings, literals, lists.
    """

    def test_tokens(self):
        """Atoms, quoted strings with escapes, literals and nested lists."""
        tokens = parser.tokenize(b'a1 X (A (B "q\\"x")) {3}\r\nabc NIL')
        self.assertEqual(tokens, ["a1", "X", ["A", ["B", b'q"x']], b"abc", "NIL"])
        self.assertIsInstance(tokens[0], Atom)
        self.assertIsInstance(tokens[2][1][1], bytes)

    def test_bracketsKeepSpaces(self):
        """A FETCH attribute's section stays one atom, spaces and parentheses included."""
        tokens = parser.tokenize(b"(BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.10> UID)")
        self.assertEqual(tokens, [["BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.10>", "UID"]])

    def test_unbalanced(self):
        """Unbalanced parentheses, quotes and literals are errors."""
        for bad in (b"a (b", b"a b)", b'a "open', b"a {9}\r\nab"):
            self.assertRaises(ParseError, parser.tokenize, bad)

    def test_bracketInAtom(self):
        """RFC 3501 allows '[' in an atom; an unclosed section is refused by FETCH."""
        self.assertEqual(parser.tokenize(b"a SELECT x[y"), ["a", "SELECT", "x[y"])
        tokens = parser.tokenize(b"a FETCH 1 BODY[1")
        self.assertRaises(ParseError, parser.parseFetchAttributes, tokens[3:])

    def test_deepNesting(self):
        """Nesting is bounded."""
        self.assertRaises(ParseError, parser.tokenize, b"a " + b"(" * 100 + b")" * 100)

    def test_splitCommand(self):
        """The tag and the upper-cased command name come first."""
        self.assertEqual(parser.splitCommand(b"t1 select INBOX"), ("t1", "SELECT", ["INBOX"]))
        self.assertRaises(ParseError, parser.splitCommand, b"t+ NOOP")
        self.assertRaises(ParseError, parser.splitCommand, b"t1")

    def test_quote(self):
        """Strings are quoted, or sent as literals when they must be."""
        self.assertEqual(parser.quote('a"b\\'), b'"a\\"b\\\\"')
        self.assertEqual(parser.quote("a\r\nb"), b"{4}\r\na\r\nb")


class SequenceSetTests(SynchronousTestCase):
    """
    Sequence sets.
    """

    def test_parse(self):
        """Numbers, ranges and * parse; * is None until resolved."""
        ranges = parser.parseSequenceSet(Atom("1:3,5,7:*"))
        self.assertEqual(ranges, [(1, 3), (5, 5), (7, None)])
        self.assertEqual(parser.resolveSet(ranges, 6), [(1, 3), (5, 5), (6, 7)])

    def test_invalid(self):
        """Zero, empty items, junk and huge numbers are refused."""
        for bad in ("0", "1,,2", "1:", "a", "1:2:3", "99999999999", ""):
            self.assertRaises(ParseError, parser.parseSequenceSet, Atom(bad))
        self.assertRaises(ParseError, parser.parseSequenceSet, b"1:2")

    def test_format(self):
        """Sorted numbers are written as compact ranges."""
        self.assertEqual(parser.formatSequenceSet([1, 2, 3, 5, 7, 8]), "1:3,5,7:8")


class FetchAttributeTests(SynchronousTestCase):
    """
    FETCH attributes.
    """

    def parse(self, text):
        return parser.parseFetchAttributes(parser.tokenize(text)[0])

    def test_macros(self):
        """ALL, FAST and FULL expand."""
        self.assertEqual([i.name for i in self.parse(b"FAST")],
                         ["FLAGS", "INTERNALDATE", "RFC822.SIZE"])

    def test_sections(self):
        """Sections, PEEK and partial ranges are understood."""
        items = self.parse(b"(BODY.PEEK[1.2.HEADER.FIELDS (From to)]<5.10> BODY[] BODY[2.MIME])")
        self.assertEqual((items[0].part, items[0].text, items[0].fields, items[0].partial,
                          items[0].peek), ((1, 2), "HEADER.FIELDS", ("FROM", "TO"), (5, 10), True))
        self.assertEqual(items[0].label, "BODY[1.2.HEADER.FIELDS (FROM TO)]<5>")
        self.assertTrue(items[1].setsSeen)
        self.assertEqual(items[2].label, "BODY[2.MIME]")

    def test_bad(self):
        """Unknown attributes and sections are errors."""
        for bad in (b"FOO", b"BODY[HEADER.FIELDS]", b"BODY[MIME]", b"BODY[0]", b"()",
                    b"BODY[TEXT]<a>"):
            self.assertRaises(ParseError, self.parse, bad)


class SearchKeyTests(SynchronousTestCase):
    """
    SEARCH keys.
    """

    def parse(self, text):
        return parser.parseSearch(parser.tokenize(text))

    def test_keys(self):
        """Flags, NOT, OR, lists, dates, sizes, headers and sets."""
        self.assertEqual(self.parse(b'OR SEEN (FROM "x" NOT 1:3) LARGER 10'), (
            "AND", [("OR", ("FLAG", "\\Seen", True),
                     ("AND", [("HEADER", "FROM", "x"), ("NOT", ("SEQ", [(1, 3)]))])),
                    ("LARGER", 10)]))
        self.assertEqual(self.parse(b"SINCE 1-Feb-1994"), ("SINCE", 760060800))
        self.assertEqual(self.parse(b"UID 5:*"), ("UID", [(5, None)]))
        self.assertEqual(self.parse(b"KEYWORD $Work"), ("FLAG", "$Work", True))
        self.assertEqual(self.parse(b"HEADER X-Spam yes"), ("HEADER", "X-SPAM", "yes"))
        chain = self.parse(b"OR " * 50 + b"SEEN" + b" DELETED" * 50)
        self.assertEqual(chain[0], "OR")

    def test_errors(self):
        """Unknown keys, missing arguments and bad dates are errors."""
        for bad in (b"FOO", b"FROM", b"OR SEEN", b"SINCE 31-Foo-2000", b"LARGER x", b"()",
                    b"NOT " * 200 + b"ALL"):
            self.assertRaises(ParseError, self.parse, bad)


class DateAndNameTests(SynchronousTestCase):
    """
    Dates and modified UTF-7 mailbox names.
    """

    def test_dateTime(self):
        """APPEND date-times honour their zone; INTERNALDATE is written in UTC."""
        seconds = parser.parseDateTime(b"17-Jul-1996 02:44:25 -0700")
        self.assertEqual(parser.formatDateTime(seconds), "17-Jul-1996 09:44:25 +0000")
        self.assertRaises(ParseError, parser.parseDateTime, b"17-Jul-1996")

    def test_mailboxNames(self):
        """Modified UTF-7 round-trips; broken encodings are errors."""
        self.assertEqual(parser.encodeMailboxName("Entwürfe & Co"), "Entw&APw-rfe &- Co")
        self.assertEqual(parser.decodeMailboxName("Entw&APw-rfe &- Co"), "Entwürfe & Co")
        self.assertEqual(parser.decodeMailboxName("~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
                         "~peter/mail/台北/日本語")
        self.assertRaises(ParseError, parser.decodeMailboxName, "a&Jjo")
