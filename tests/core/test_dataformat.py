# -*- test-case-name: tests.core.test_dataformat -*-
"""
Tests for L{cgpro.core.dataformat}: the conformance vectors of
C{spec/data-format.md} section 4, error positions, the reader's leniency
rules, the two writers and round-trip properties.
"""

import copy
import datetime
import pickle
import time

from hypothesis import given, settings, strategies as st
from twisted.trial.unittest import TestCase

from cgpro.core.dataformat import (
    FUTURE, MAX_DEPTH, PAST, DataFormatError, IPAddress, Opaque, Reader,
    XMLObject, dumps, dumpsFile, loads, parseDuration, parseSize)


def typed(obj):
    """
    Tag every value with its type so that C{1 == 1.0 == True} or
    C{XMLObject("<a/>") == "<a/>"} cannot hide a type change.
    """
    if isinstance(obj, dict):
        return ("dict", {key: typed(value) for key, value in obj.items()})
    if isinstance(obj, list):
        return ("list", [typed(item) for item in obj])
    return (type(obj).__name__, obj)


class ParserVectorTests(TestCase):
    """
    The parser vectors of spec section 4.
    """

    def test_atom(self):
        """An atom is a string."""
        self.assertEqual(typed(loads("String")), ("str", "String"))

    def test_quotedString(self):
        """A quoted string loses its quotes."""
        self.assertEqual(loads('"Quoted String"'), "Quoted String")

    def test_escapedQuotes(self):
        """Backslash-quote inside a quoted string is a quotation mark."""
        self.assertEqual(loads(r'"a \"string\" within string"'), 'a "string" within string')

    def test_number(self):
        """C{#50} is the integer 50."""
        self.assertEqual(typed(loads("#50")), ("int", 50))

    def test_negativeNumber(self):
        """C{#-50} is the integer -50."""
        self.assertEqual(loads("#-50"), -50)

    def test_date(self):
        """A date without time is midnight."""
        self.assertEqual(loads("#T22-10-2009"), datetime.datetime(2009, 10, 22))

    def test_dateTime(self):
        """Date and time are day-month-year, then 24h time."""
        self.assertEqual(loads("#T22-10-2009_15:24:45"),
                         datetime.datetime(2009, 10, 22, 15, 24, 45))

    def test_array(self):
        """An array of a quoted string and an atom."""
        self.assertEqual(loads('("Domain Settings", Domain)'), ["Domain Settings", "Domain"])

    def test_dictionary(self):
        """A dictionary whose last entry also ends with a semicolon."""
        self.assertEqual(loads('{Name=Unit;LastName="Test da Silva";}'),
                         {"Name": "Unit", "LastName": "Test da Silva"})

    def test_ipv4(self):
        """An IPv4 address without port."""
        value = loads("#I[10.0.44.55]")
        self.assertIsInstance(value, IPAddress)
        self.assertEqual((value.address, value.port), ("10.0.44.55", None))

    def test_ipv4Port(self):
        """An IPv4 address with a port."""
        self.assertEqual(loads("#I[10.0.44.55]:25"), IPAddress("10.0.44.55", 25))

    def test_ipv6(self):
        """An IPv6 address without port."""
        self.assertEqual(loads("#I[2001:470:1f01:2565::a:80f]"),
                         IPAddress("2001:470:1f01:2565::a:80f", None))

    def test_ipv6Port(self):
        """An IPv6 address with a port after the brackets."""
        self.assertEqual(loads("#I[2001:470:1f01:2565::a:80f]:25"),
                         IPAddress("2001:470:1f01:2565::a:80f", 25))

    def test_nestedDictionary(self):
        """The nested vector with every typed value."""
        text = ('{ServiceClasses={Guests={Changed=#T22-10-2009_15:24:45;'
                'Folders=(INBOX, "Sent Items");Source=#I[127.127.127.127];};'
                'Staff={Source=#I[127.0.0.1]:25;Name="name \\"nested\\" string";'
                'MaxAccounts=#20;};};}')
        expected = {"ServiceClasses": {
            "Guests": {"Changed": datetime.datetime(2009, 10, 22, 15, 24, 45),
                       "Folders": ["INBOX", "Sent Items"],
                       "Source": IPAddress("127.127.127.127")},
            "Staff": {"Source": IPAddress("127.0.0.1", 25),
                      "Name": 'name "nested" string',
                      "MaxAccounts": 20}}}
        self.assertEqual(typed(loads(text)), typed(expected))

    def test_datablock(self):
        """A datablock is base64 bytes."""
        self.assertEqual(loads("[HcqHfHI=]"), bytes.fromhex("1dca877c72"))

    def test_null(self):
        """C{#NULL#} is None."""
        self.assertIsNone(loads("#NULL#"))

    def test_domainList(self):
        """Atoms may contain dots."""
        self.assertEqual(loads("(mail.servername.com, client1.com, client2.com)"),
                         ["mail.servername.com", "client1.com", "client2.com"])

    def test_concatenation(self):
        """Adjacent quoted strings are one string."""
        self.assertEqual(loads('"abc" "def"'), "abcdef")


class WriterVectorTests(TestCase):
    """
    The writer vectors of spec section 4, and the writer rules per type.
    """

    def test_null(self):
        """None is C{#NULL#}."""
        self.assertEqual(dumps(None), "#NULL#")

    def test_emptyString(self):
        """The empty string is quoted."""
        self.assertEqual(dumps(""), '""')

    def test_space(self):
        """A string with a space is quoted."""
        self.assertEqual(dumps("a b"), '"a b"')

    def test_minusOne(self):
        """C{-1} does not start with a letter or digit, so it is quoted."""
        self.assertEqual(dumps("-1"), '"-1"')

    def test_slash(self):
        """A slash forces quotes."""
        self.assertEqual(dumps("S/MIME"), '"S/MIME"')

    def test_domainAtom(self):
        """Letters, digits and C{._@-} are written bare."""
        self.assertEqual(dumps("client1.com"), "client1.com")
        self.assertEqual(dumps("cp@nel"), "cp@nel")
        self.assertEqual(dumps("A-crpt_x"), "A-crpt_x")
        self.assertEqual(dumps("100M"), "100M")

    def test_quotedCharacters(self):
        """Characters the reader accepts in atoms are still quoted on output."""
        for text in ("$", "*", "1(415)", "a:b", "a!b", "a%b", "a#b", "trial-*domain*",
                     "call=sip:911@telnum", "_x", ".x"):
            self.assertEqual(dumps(text)[0], '"', text)

    def test_keyOrder(self):
        """Keys are sorted bytewise: upper case first."""
        self.assertEqual(dumps({"b": 1, "B": 2}), "{B=#2;b=#1;}")

    def test_keyOrderUTF8(self):
        """Keys are sorted by UTF-8 bytes, escaped bytes included."""
        keys = {"\udcff": 1, "\u00e9": 2, "z": 3, "\U0001f600": 4}
        self.assertEqual(dumps(keys), '{z=#3;"\u00e9"=#2;"\U0001f600"=#4;"\\255"=#1;}')

    def test_newline(self):
        """A line feed is written as C{\\e}, never raw."""
        self.assertEqual(dumps("a\nb"), '"a\\eb"')

    def test_controlCharacters(self):
        """Tab and CR get letter escapes; other controls and DEL get C{\\nnn}."""
        self.assertEqual(dumps("\t\r\x00\x01\x1f\x7f"), '"\\t\\r\\000\\001\\031\\127"')

    def test_quoteAndBackslash(self):
        """Quotation marks and backslashes are escaped."""
        self.assertEqual(dumps('a"b\\c'), '"a\\"b\\\\c"')

    def test_nonASCII(self):
        """Non-ASCII strings are quoted and written as characters."""
        self.assertEqual(dumps("caf\u00e9"), '"caf\u00e9"')

    def test_array(self):
        """Arrays use comma-space separators; tuples are arrays too."""
        self.assertEqual(dumps(["mail.servername.com", "client1.com", "client2.com"]),
                         "(mail.servername.com, client1.com, client2.com)")
        self.assertEqual(dumps(("a", 1)), "(a, #1)")
        self.assertEqual(dumps([]), "()")

    def test_dictionary(self):
        """Every dictionary entry ends with a semicolon."""
        self.assertEqual(dumps({"Name": "Unit", "LastName": "Test da Silva"}),
                         '{LastName="Test da Silva";Name=Unit;}')
        self.assertEqual(dumps({}), "{}")

    def test_booleans(self):
        """There is no boolean type: True and False are YES and NO."""
        self.assertEqual(dumps({"a": True, "b": False}), "{a=YES;b=NO;}")

    def test_numbers(self):
        """Integers get a C{#}; the 64-bit limits are accepted."""
        self.assertEqual(dumps(-50), "#-50")
        self.assertEqual(dumps(2 ** 63 - 1), "#9223372036854775807")
        self.assertEqual(dumps(-2 ** 63), "#-9223372036854775808")

    def test_numberOutOfRange(self):
        """An integer outside 64 bits cannot be written."""
        self.assertRaises(DataFormatError, dumps, 2 ** 63)
        error = self.assertRaises(DataFormatError, dumps, [1, -2 ** 63 - 1])
        self.assertEqual(error.position, 5)

    def test_float(self):
        """A float is written with C{repr}; non-finite floats are refused."""
        self.assertEqual(dumps(1.5), "#1.5")
        self.assertEqual(dumps(1e20), "#1e+20")
        self.assertRaises(DataFormatError, dumps, float("nan"))
        self.assertRaises(DataFormatError, dumps, float("inf"))

    def test_timestamp(self):
        """A datetime is written with its time."""
        self.assertEqual(dumps(datetime.datetime(2011, 11, 7, 16, 53, 5)),
                         "#T07-11-2011_16:53:05")

    def test_midnight(self):
        """Exactly midnight is written in the date-only form."""
        self.assertEqual(dumps(datetime.datetime(2009, 10, 22)), "#T22-10-2009")

    def test_microseconds(self):
        """Microseconds are dropped, but keep a midnight value in the full form."""
        self.assertEqual(dumps(datetime.datetime(2009, 10, 22, 0, 0, 0, 5)),
                         "#T22-10-2009_00:00:00")
        self.assertEqual(dumps(datetime.datetime(2009, 10, 22, 1, 2, 3, 999999)),
                         "#T22-10-2009_01:02:03")

    def test_date(self):
        """A date is written in the date-only form."""
        self.assertEqual(dumps(datetime.date(2009, 10, 22)), "#T22-10-2009")

    def test_awareDatetime(self):
        """An aware datetime is converted to UTC."""
        zone = datetime.timezone(datetime.timedelta(hours=2))
        self.assertEqual(dumps(datetime.datetime(2009, 10, 22, 1, 0, 0, tzinfo=zone)),
                         "#T21-10-2009_23:00:00")

    def test_earlyYear(self):
        """Years before 1000 are written with four digits and read back."""
        value = datetime.datetime(5, 1, 2, 3, 4, 5)
        self.assertEqual(dumps(value), "#T02-01-0005_03:04:05")
        self.assertEqual(loads(dumps(value)), value)

    def test_sentinels(self):
        """PAST and FUTURE are written as their tokens."""
        self.assertEqual(dumps([PAST, FUTURE]), "(#TPAST, #TFUTURE)")

    def test_ipAddress(self):
        """IP addresses are written in brackets, with the port after them."""
        self.assertEqual(dumps(IPAddress("10.0.44.55", 25)), "#I[10.0.44.55]:25")
        self.assertEqual(dumps(IPAddress("::1")), "#I[::1]")

    def test_datablock(self):
        """Bytes are base64 in brackets."""
        self.assertEqual(dumps(bytes.fromhex("1dca877c72")), "[HcqHfHI=]")
        self.assertEqual(dumps(bytearray(b"")), "[]")

    def test_unsupportedType(self):
        """Values of other types are refused with TypeError."""
        self.assertRaises(TypeError, dumps, object())
        self.assertRaises(TypeError, dumps, {1: "a"})
        self.assertRaises(TypeError, dumps, {"a"})

    def test_loneSurrogate(self):
        """A surrogate that is not an escaped byte cannot be written."""
        error = self.assertRaises(DataFormatError, dumps, {"k": "\ud800"})
        self.assertEqual(error.position, 3)

    def test_circular(self):
        """A circular structure fails cleanly instead of recursing forever."""
        loop = []
        loop.append(loop)
        self.assertRaises(DataFormatError, dumps, loop)
        self.assertRaises(DataFormatError, dumpsFile, loop)

    def test_opaque(self):
        """An opaque token is written verbatim."""
        self.assertEqual(dumps([Opaque("#(x y)")]), "(#(x y))")


class StringTests(TestCase):
    """
    Escapes, concatenation and non-UTF-8 bytes in strings.
    """

    def test_escapes(self):
        """Every documented escape sequence."""
        self.assertEqual(loads(r'"\"\\\r\n\t\e"'), '"\\\r\n\t\n')

    def test_lineEscape(self):
        """C{\\e} is a line feed."""
        self.assertEqual(loads(r'"Line1\eLine2"'), "Line1\nLine2")

    def test_decimalEscape(self):
        """C{\\nnn} is decimal, not octal."""
        self.assertEqual(loads(r'"Using the \010 symbol"'), "Using the \n symbol")

    def test_utf8Escapes(self):
        """Escaped bytes that form UTF-8 decode to the character."""
        self.assertEqual(loads(r'"caf\195\169"'), "caf\u00e9")

    def test_invalidUTF8Escapes(self):
        """Escaped bytes that are not UTF-8 become surrogateescape surrogates."""
        value = loads(r'"a\255b\195"')
        self.assertEqual(value, "a\udcffb\udcc3")
        self.assertEqual(value.encode("utf-8", "surrogateescape"), b"a\xffb\xc3")
        self.assertEqual(dumps(value), r'"a\255b\195"')

    def test_rawInvalidUTF8(self):
        """Bytes input with invalid UTF-8 keeps the bytes, and writes them back."""
        value = loads(b'("a\xffb", \xfe\xfd)')
        self.assertEqual(value, ["a\udcffb", "\udcfe\udcfd"])
        self.assertEqual(dumps(value), r'("a\255b", "\254\253")')

    def test_concatenatedHalves(self):
        """A character split across concatenated strings is reassembled."""
        self.assertEqual(loads(b'"\xc3" "\xa9"'), "\u00e9")

    def test_bytesInput(self):
        """Bytes input is decoded as UTF-8."""
        self.assertEqual(loads("\"caf\u00e9\"".encode("utf-8")), "caf\u00e9")

    def test_nonASCIIAtom(self):
        """Non-ASCII characters may appear unquoted."""
        self.assertEqual(loads("caf\u00e9"), "caf\u00e9")

    def test_lenientAtom(self):
        """Atoms may contain C{!#%:} and start with C{-} or C{.}."""
        self.assertEqual(loads("(a!b#c%d:e, -1, .x, @y)"), ["a!b#c%d:e", "-1", ".x", "@y"])

    def test_concatenationMultiline(self):
        """Concatenation spans line breaks and comments in multi-line text."""
        self.assertEqual(loads('"a" // first\n  "b"\n"c"'), "abc")

    def test_noConcatenationSingleLine(self):
        """On a CLI line two quoted strings in a row are two arguments."""
        reader = Reader('"a"  "b" [AA==] [AA==]', multiline=False)
        self.assertEqual([reader.readObject() for _ in range(4)], ["a", "b", b"\0", b"\0"])
        self.assertTrue(reader.atEnd())

    def test_rawTab(self):
        """A raw tab inside quotes is accepted."""
        self.assertEqual(loads('"a\tb"'), "a\tb")

    def test_zeroByte(self):
        """A zero byte round-trips through its escape."""
        self.assertEqual(loads(dumps("a\x00b")), "a\x00b")


class ErrorTests(TestCase):
    """
    Syntax errors report the offending position and a clear reason.
    """

    def assertError(self, text, position, reason=None, multiline=True):
        """
        Check that C{loads(text)} fails at C{position}.
        """
        error = self.assertRaises(DataFormatError, loads, text, multiline)
        self.assertEqual(error.position, position, str(error))
        if reason is not None:
            self.assertEqual(error.reason, reason)
        return error

    def test_errorType(self):
        """DataFormatError is a ValueError with reason and position in its text."""
        error = DataFormatError("bad thing", 7)
        self.assertIsInstance(error, ValueError)
        self.assertEqual(str(error), "bad thing at position 7")
        self.assertEqual((error.reason, error.position), ("bad thing", 7))

    def test_errorPickles(self):
        """A DataFormatError survives pickling (for process pools)."""
        error = pickle.loads(pickle.dumps(DataFormatError("x", 3)))
        self.assertEqual((error.reason, error.position), ("x", 3))

    def test_missingSemicolon(self):
        """A dictionary entry without its semicolon."""
        self.assertError("{a=b}", 4, "expected ';' after dictionary value")

    def test_missingSemicolonSpaces(self):
        """The position skips the white space before the offending character."""
        self.assertError("{a=b  c;}", 6, "expected ';' after dictionary value")

    def test_missingEquals(self):
        """A dictionary key without C{=}."""
        self.assertError("{a b;}", 3, "expected '=' after dictionary key")

    def test_nonStringKey(self):
        """Dictionary keys must be strings."""
        self.assertError("{#1=a;}", 1, "expected a dictionary key (a string) or '}'")
        self.assertError("{(a)=b;}", 1)

    def test_unterminatedDictionary(self):
        """A dictionary that never closes."""
        self.assertError("{a=b;", 5)

    def test_unterminatedArray(self):
        """An array that never closes."""
        self.assertError("(a, b", 5)

    def test_arraySeparator(self):
        """Array elements need a comma between them."""
        self.assertError("(a b)", 3, "expected ',' or ')' in array")

    def test_trailingComma(self):
        """A comma must be followed by an element."""
        self.assertError("(a, )", 4, "expected an array element")
        self.assertError("({}, )", 5, "expected an array element")

    def test_strayCloser(self):
        """A closing bracket without an opener."""
        self.assertError(")", 0)
        self.assertError("(a))", 3, "unexpected data after the object")

    def test_trailingData(self):
        """Only white space may follow the object."""
        self.assertError("a b", 2, "unexpected data after the object")

    def test_emptyInput(self):
        """Empty input has no object."""
        self.assertError("", 0, "unexpected end of input")
        self.assertError("  // nothing\n", 13, "unexpected end of input")

    def test_unterminatedString(self):
        """The error points at the opening quotation mark."""
        self.assertError('(a, "bc', 4, "unterminated quoted string")

    def test_lineBreakInString(self):
        """A raw line break inside quotes is an error."""
        self.assertError('"ab\ncd"', 3, "line break inside quoted string")

    def test_controlInString(self):
        """Raw control characters other than tab are refused inside quotes."""
        self.assertError('"a\x01"', 2)

    def test_badEscape(self):
        """Unknown escapes are errors at the backslash."""
        self.assertError(r'"ab\x"', 3, "invalid escape sequence in quoted string")
        self.assertError(r'"ab\12"', 3)
        self.assertError('"ab\\', 0)

    def test_escapeOverByte(self):
        """C{\\nnn} above 255 is an error."""
        self.assertError(r'"\256"', 1)

    def test_badBase64Character(self):
        """A character outside base64 inside a datablock."""
        self.assertError("[AB*D]", 3, "invalid character '*' in datablock")

    def test_badBase64Padding(self):
        """Base64 with a wrong length or padding."""
        self.assertError("[ABC]", 0, "invalid base64 data in datablock")
        self.assertError("[A=BC]", 0)

    def test_unterminatedDatablock(self):
        """A datablock that never closes."""
        self.assertError("[AAAA", 0, "unterminated datablock")

    def test_badDate(self):
        """Dates are checked against the calendar."""
        self.assertError("#T29-02-2009", 0, "invalid date or time in timestamp")
        self.assertError("#T31-04-2009", 0)
        self.assertError("#T01-13-2009", 0)
        self.assertError("#T01-01-2009_24:00:00", 0)
        self.assertError("#T01-01-0000", 0)
        self.assertEqual(loads("#T29-02-2008"), datetime.datetime(2008, 2, 29))

    def test_malformedTimestamp(self):
        """Timestamps need two-digit day and month and a four-digit year."""
        self.assertError("#T1-10-2009", 0)
        self.assertError("#TSOON", 0)
        self.assertError("#T22-10-2009_1:00:00", 12)

    def test_gluedToken(self):
        """A C{#} token may not run into more atom characters."""
        self.assertError("#50abc", 3, "unexpected character 'a' after number")
        self.assertError("#NULL#x", 6)
        self.assertError("#TPASTX", 6)
        self.assertError("#I[1.2.3.4]x", 11)

    def test_unknownHashToken(self):
        """A C{#} token matching no form is refused."""
        self.assertError("#abc", 0, "unknown '#' token")
        self.assertError("#", 0)
        self.assertError("#-", 0)
        self.assertError("(a, #Q)", 4)

    def test_numberRange(self):
        """Numbers outside 64 bits are errors."""
        self.assertError("#9223372036854775808", 0, "number out of 64-bit range")
        self.assertError("#-9223372036854775809", 0)
        self.assertError("#" + "9" * 5000, 0)
        self.assertEqual(loads("#-9223372036854775808"), -2 ** 63)

    def test_badIPAddress(self):
        """The address inside C{#I[...]} is validated."""
        self.assertError("#I[10.0.0.256]", 3)
        self.assertError("#I[10.0.0.01]", 3)
        self.assertError("#I[]", 3)
        self.assertError("#I[::g]", 3)
        self.assertError("#I[1.2.3.4", 0, "unterminated IP address")

    def test_badPort(self):
        """Ports are 0..65535 and must follow the colon."""
        self.assertError("#I[1.2.3.4]:65536", 12, "port number out of range")
        self.assertError("#I[1.2.3.4]:", 12, "expected a port number after ':'")
        self.assertError("#I[1.2.3.4]:123456", 12)

    def test_unexpectedCharacter(self):
        """A character that starts no object."""
        self.assertError("(a, ;)", 4, "unexpected character ';'")
        self.assertError("{a=};", 3)

    def test_commentSingleLine(self):
        """C{//} is not a comment on a CLI line."""
        self.assertError("a // c", 2, multiline=False)

    def test_lineBreakSingleLine(self):
        """A line break does not separate tokens on a CLI line."""
        self.assertError("(a,\nb)", 3, multiline=False)

    def test_depthLimit(self):
        """Nesting beyond MAX_DEPTH is refused instead of exhausting the stack."""
        self.assertEqual(loads("(" * MAX_DEPTH + ")" * MAX_DEPTH), loads(dumps(
            _nest(MAX_DEPTH - 1))))
        self.assertError("(" * (MAX_DEPTH + 1) + ")" * (MAX_DEPTH + 1), MAX_DEPTH,
                         "nesting too deep")
        self.assertError("{a=" * 5000, 3 * MAX_DEPTH, "nesting too deep")

    def test_badXML(self):
        """Unbalanced XML is reported where it goes wrong."""
        self.assertError("<a><b></a>", 6, "XML closing tag </a> does not match <b>")
        self.assertError("(<a>text)", 1, "unterminated XML element <a>")
        self.assertError("<a x=1/>", 0, "malformed XML tag")
        self.assertError("<a><!-- x</a>", 3, "unterminated XML comment")
        self.assertError("</a>", 0, "unexpected XML closing tag")
        self.assertError("<?xml version='1.0'?>", 0, "expected an XML element")

    def test_unterminatedOpaque(self):
        """A C{#(} token needs its closing parenthesis."""
        self.assertError("#(abc", 0, "unterminated '#(' token")


def _nest(depth):
    """
    An empty array nested C{depth} times inside arrays.
    """
    value = []
    for _ in range(depth):
        value = [value]
    return value


class LeniencyTests(TestCase):
    """
    What the reader accepts beyond what the writer produces.
    """

    def test_comments(self):
        """C{//} comments are white space in multi-line text."""
        text = "{\n  1 = #0;  // calls to North American numbers are free\n  // x\n}// end"
        self.assertEqual(loads(text), {"1": 0})

    def test_whiteSpaceEverywhere(self):
        """White space is free around every separator."""
        self.assertEqual(loads(" {  a  =  ( b ,c )  ;\tk = \"v\" ; } "),
                         {"a": ["b", "c"], "k": "v"})

    def test_singleLineTabs(self):
        """Tabs separate tokens on a CLI line."""
        self.assertEqual(loads("{a\t=\tb;}", multiline=False), {"a": "b"})

    def test_crlf(self):
        """CR LF line ends are white space in multi-line text."""
        self.assertEqual(loads("{\r\n a = b;\r\n}\r\n"), {"a": "b"})

    def test_duplicateKeys(self):
        """The last of duplicate keys wins."""
        self.assertEqual(loads("{a=1;b=2;a=3;}"), {"a": "3", "b": "2"})

    def test_caseSensitiveKeys(self):
        """Keys keep their case and compare exactly."""
        self.assertEqual(loads("{a=1;A=2;}"), {"a": "1", "A": "2"})

    def test_quotedKeys(self):
        """Keys may be quoted, and concatenated."""
        self.assertEqual(loads('{"Sent Items"=x;"a" "b"=y;}'), {"Sent Items": "x", "ab": "y"})

    def test_datablockWhiteSpace(self):
        """White space inside a datablock is ignored."""
        self.assertEqual(loads("[Hcq\n  HfH I=]"), bytes.fromhex("1dca877c72"))

    def test_datablockConcatenation(self):
        """Adjacent datablocks concatenate, split anywhere."""
        self.assertEqual(loads("[AAEC] [AwQ=]"), bytes([0, 1, 2, 3, 4]))
        self.assertEqual(loads("[AA]\n[EC]"), bytes([0, 1, 2]))
        self.assertEqual(loads("[AA==][AQ==]"), bytes([0, 1]))

    def test_emptyDatablock(self):
        """An empty datablock is empty bytes."""
        self.assertEqual(loads("[]"), b"")

    def test_floats(self):
        """C{#1.5} is read as a float, as the Python client does."""
        self.assertEqual(typed(loads("#1.5")), ("float", 1.5))
        self.assertEqual(loads("#-0.25"), -0.25)
        self.assertEqual(loads("#1e+20"), 1e20)
        self.assertRaises(DataFormatError, loads, "#1e999")

    def test_byteOrderMark(self):
        """A leading byte-order mark is skipped."""
        self.assertEqual(loads("\ufeff{a=b;}"), {"a": "b"})
        self.assertEqual(loads("\ufeff{a=b;}".encode("utf-8")), {"a": "b"})

    def test_settingsFileSample(self):
        """The settings-file layout of spec section 3 parses."""
        text = """{
  AccessModes =  All;
  AccountDefaults =  {
    MaxAccountSize =  unlimited;
    PSTNAreaCode =  "1(415)";
    ServiceClasses =  {
      mailonly =  {
        AccessModes =  (
          26,
          Mail,
          Relay,
          "S/MIME"
        );
      };
    };
  };
  LicenseAccepted = #T07-11-2011_16:53:05;
}
"""
        self.assertEqual(loads(text), {
            "AccessModes": "All",
            "AccountDefaults": {
                "MaxAccountSize": "unlimited",
                "PSTNAreaCode": "1(415)",
                "ServiceClasses": {"mailonly": {
                    "AccessModes": ["26", "Mail", "Relay", "S/MIME"]}}},
            "LicenseAccepted": datetime.datetime(2011, 11, 7, 16, 53, 5)})


class TimestampTests(TestCase):
    """
    The PAST and FUTURE sentinels.
    """

    def test_readSentinels(self):
        """C{#TPAST} and C{#TFUTURE} read as the singletons."""
        self.assertIs(loads("#TPAST"), PAST)
        self.assertIs(loads("#TFUTURE"), FUTURE)
        self.assertIsNot(PAST, FUTURE)

    def test_repr(self):
        """The repr is the token."""
        self.assertEqual((repr(PAST), repr(FUTURE)), ("#TPAST", "#TFUTURE"))

    def test_singletons(self):
        """Copying and pickling keep the identity."""
        self.assertIs(copy.copy(PAST), PAST)
        self.assertIs(copy.deepcopy([FUTURE])[0], FUTURE)
        self.assertIs(pickle.loads(pickle.dumps(PAST)), PAST)

    def test_ordering(self):
        """PAST is before and FUTURE after every datetime."""
        now = datetime.datetime(2020, 1, 1)
        self.assertTrue(PAST < now < FUTURE)
        self.assertTrue(FUTURE > now > PAST)
        self.assertTrue(PAST < FUTURE and PAST <= PAST and not PAST < PAST)
        self.assertEqual(sorted([FUTURE, now, PAST]), [PAST, now, FUTURE])
        self.assertRaises(TypeError, lambda: PAST < 1)


class IPAddressTests(TestCase):
    """
    The IPAddress value type.
    """

    def test_defaults(self):
        """The port defaults to None."""
        self.assertEqual(IPAddress("10.0.0.1"), ("10.0.0.1", None))

    def test_validation(self):
        """Invalid addresses and ports are refused."""
        self.assertRaises(ValueError, IPAddress, "10.0.0.300")
        self.assertRaises(ValueError, IPAddress, "host.example")
        self.assertRaises(ValueError, IPAddress, "10.0.0.1", 70000)
        self.assertRaises(TypeError, IPAddress, "10.0.0.1", "25")
        self.assertRaises(TypeError, IPAddress, b"10.0.0.1")

    def test_ip(self):
        """The ip property gives an ipaddress object."""
        self.assertEqual(IPAddress("2001:db8::1").ip.version, 6)

    def test_textKept(self):
        """The address text is kept as written."""
        self.assertEqual(loads("#I[2001:DB8:0::1]").address, "2001:DB8:0::1")


class XMLTests(TestCase):
    """
    XML values.
    """

    def test_element(self):
        """An element with attributes, text and children is kept raw."""
        text = '<x a="1" b=\'2>\'>text <y/> &amp; <z>more</z></x>'
        value = loads(text)
        self.assertEqual(typed(value), ("XMLObject", text))

    def test_siblings(self):
        """Adjacent sibling elements form one value."""
        self.assertEqual(loads("(<a/><b></b>, <c/>)"), ["<a/><b></b>", "<c/>"])

    def test_prolog(self):
        """Declarations, comments, processing instructions and CDATA are skipped."""
        text = ('<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY e "v">]>'
                '<x><!-- <not/> --><?pi <x>?><![CDATA[</x>]]></x><!-- after -->')
        self.assertEqual(loads(text), text)

    def test_inDictionary(self):
        """An XML value as a dictionary value, on a CLI line."""
        self.assertEqual(loads('{x=<a b="c d"/>;}', multiline=False), {"x": '<a b="c d"/>'})

    def test_constructor(self):
        """XMLObject checks its text."""
        self.assertEqual(XMLObject("<a/>"), "<a/>")
        self.assertRaises(DataFormatError, XMLObject, "a")
        self.assertRaises(DataFormatError, XMLObject, "<a>")
        self.assertRaises(DataFormatError, XMLObject, "<a/>;x=y")
        self.assertEqual(repr(XMLObject("<a/>")), "XMLObject('<a/>')")

    def test_elements(self):
        """The parsed tree is available on demand."""
        elements = XMLObject('<?xml version="1.0"?><a x="1"><b/></a><c/>').elements()
        self.assertEqual([e.tag for e in elements], ["a", "c"])
        self.assertEqual(elements[0].get("x"), "1")

    def test_oneLine(self):
        """dumps rewrites line breaks in XML so the output stays on one line."""
        value = XMLObject('<a\n x="1\n2">l1\r\nl2<!--c\nd--><![CDATA[p\nq]]></a>')
        written = dumps(value)
        self.assertEqual(written, '<a  x="1 2">l1&#10;l2<!--c d--><![CDATA[p]]>&#10;'
                         '<![CDATA[q]]></a>')
        self.assertEqual(loads(written), written)

    def test_fileKeepsLines(self):
        """dumpsFile writes XML verbatim, line breaks included."""
        value = {"x": XMLObject("<a>\n  <b/>\n</a>")}
        self.assertEqual(loads(dumpsFile(value)), value)


class OpaqueTests(TestCase):
    """
    C{#(...)} tokens.
    """

    def test_read(self):
        """The token is kept raw, parentheses included."""
        self.assertEqual(typed(loads("(#(some data), x)")),
                         ("list", [("Opaque", "#(some data)"), ("str", "x")]))

    def test_constructor(self):
        """Opaque checks its text."""
        self.assertRaises(DataFormatError, Opaque, "abc")
        self.assertRaises(DataFormatError, Opaque, "#(a)b")
        self.assertEqual(repr(Opaque("#()")), "Opaque('#()')")


class FileFormatTests(TestCase):
    """
    The multi-line writer.
    """

    def test_layout(self):
        """The layout of the server's settings files."""
        value = {
            "AccessModes": "All",
            "AccountDefaults": {
                "MaxAccountSize": "unlimited",
                "PSTNAreaCode": "1(415)",
                "ServiceClasses": {"mailonly": {"AccessModes": [26, "Mail", "S/MIME"]}},
                "Empty": {},
                "Rules": [[1, "x", [["From", "is", "a@b"]], [["Discard"]]]]},
            "LicenseAccepted": datetime.datetime(2011, 11, 7, 16, 53, 5)}
        self.assertEqual(dumpsFile(value), """{
  AccessModes = All;
  AccountDefaults = {
    Empty = {};
    MaxAccountSize = unlimited;
    PSTNAreaCode = "1(415)";
    Rules = (
      (
        #1,
        x,
        (
          (From, is, a@b)
        ),
        (
          (Discard)
        )
      )
    );
    ServiceClasses = {
      mailonly = {
        AccessModes = (#26, Mail, "S/MIME");
      };
    };
  };
  LicenseAccepted = #T07-11-2011_16:53:05;
}
""")
        self.assertEqual(loads(dumpsFile(value)), value)

    def test_scalar(self):
        """A scalar document is one line with a newline."""
        self.assertEqual(dumpsFile("abc"), "abc\n")
        self.assertEqual(dumpsFile({}), "{}\n")

    def test_longArray(self):
        """Arrays too long for one line get one element per line."""
        value = ["element%02d" % i for i in range(10)]
        text = dumpsFile(value)
        self.assertEqual(text.count("\n"), 12)
        self.assertEqual(loads(text), value)

    def test_multiLineString(self):
        """A text with line breaks is split into concatenated parts."""
        value = {"RouterTable": "a = b\nc = d\n\nlast"}
        text = dumpsFile(value)
        self.assertEqual(text, '{\n  RouterTable = "a = b\\e"\n    "c = d\\e"\n'
                               '    "\\e"\n    "last";\n}\n')
        self.assertEqual(loads(text), value)

    def test_longDatablock(self):
        """Long binary values are wrapped into concatenated blocks."""
        value = bytes(range(256))
        text = dumpsFile(value)
        self.assertGreater(text.count("\n"), 3)
        self.assertTrue(all(len(line) <= 80 for line in text.splitlines()))
        self.assertEqual(loads(text), value)

    def test_keysAreStrings(self):
        """A key that is an XMLObject is still written as a string."""
        self.assertEqual(loads(dumpsFile({XMLObject("<a/>"): 1})), {"<a/>": 1})


class ReaderTests(TestCase):
    """
    Token-by-token reading of CLI command lines.
    """

    def readAll(self, line):
        """
        Read every object of C{line}.
        """
        reader = Reader(line)
        result = []
        while not reader.atEnd():
            result.append(reader.readObject())
        return result

    def test_password(self):
        """Keywords and quoted arguments."""
        self.assertEqual(self.readAll('SETACCOUNTPASSWORD "u@d.dom" PASSWORD "x"'),
                         ["SETACCOUNTPASSWORD", "u@d.dom", "PASSWORD", "x"])

    def test_settings(self):
        """A dictionary argument."""
        self.assertEqual(
            self.readAll('UPDATEACCOUNTSETTINGS u@d.dom {MaxAccountSize=10M;RealName="J S";}'),
            ["UPDATEACCOUNTSETTINGS", "u@d.dom", {"MaxAccountSize": "10M", "RealName": "J S"}])

    def test_data(self):
        """A datablock argument."""
        self.assertEqual(self.readAll('STOREDOMAINPBXFILE d FILE "a/b.wav" DATA [AAAA]'),
                         ["STOREDOMAINPBXFILE", "d", "FILE", "a/b.wav", "DATA", b"\0\0\0"])

    def test_position(self):
        """pos follows the objects read and can be rewound."""
        reader = Reader("ROUTE  a@b  SIGNAL")
        self.assertEqual(reader.readObject(), "ROUTE")
        self.assertEqual(reader.pos, 5)
        saved = reader.pos
        self.assertEqual(reader.readObject(), "a@b")
        reader.pos = saved
        self.assertEqual(reader.readObject(), "a@b")
        self.assertFalse(reader.atEnd())
        self.assertEqual(reader.pos, 12)
        self.assertEqual(reader.readObject(), "SIGNAL")
        self.assertTrue(reader.atEnd())

    def test_errorKeepsPosition(self):
        """A failed read leaves pos unchanged and reports the absolute position."""
        reader = Reader("CMD {a=b}")
        reader.readObject()
        error = self.assertRaises(DataFormatError, reader.readObject)
        self.assertEqual(error.position, 8)
        self.assertEqual(reader.pos, 3)

    def test_readPastEnd(self):
        """Reading at the end of the line is an error."""
        reader = Reader("A ")
        reader.readObject()
        self.assertTrue(reader.atEnd())
        self.assertRaises(DataFormatError, reader.readObject)

    def test_defaultsToSingleLine(self):
        """A Reader is single-line unless asked otherwise."""
        self.assertFalse(Reader("x").multiline)
        reader = Reader("a\nb", multiline=True)
        reader.readObject()
        self.assertEqual(reader.readObject(), "b")

    def test_bytes(self):
        """A Reader accepts bytes."""
        self.assertEqual(self.readAll(b"A \xc3\xa9"), ["A", "\u00e9"])

    def test_typedArguments(self):
        """Numbers, null and IP addresses come back typed."""
        self.assertEqual(self.readAll("WRITELOG #5 #NULL# #I[1.2.3.4]:5"),
                         ["WRITELOG", 5, None, IPAddress("1.2.3.4", 5)])


class ParseSizeTests(TestCase):
    """
    Size settings.
    """

    def test_numbers(self):
        """Integers and decimal strings are bytes."""
        self.assertEqual(parseSize(0), 0)
        self.assertEqual(parseSize(1234), 1234)
        self.assertEqual(parseSize(" 1234 "), 1234)

    def test_suffixes(self):
        """K, M, G and T are powers of 1024, in either case."""
        self.assertEqual(parseSize("10K"), 10240)
        self.assertEqual(parseSize("100M"), 100 * 1024 ** 2)
        self.assertEqual(parseSize("2g"), 2 * 1024 ** 3)
        self.assertEqual(parseSize("1t"), 1024 ** 4)

    def test_unlimited(self):
        """-1, unlimited and None mean no limit."""
        for value in (-1, "-1", "unlimited", "Unlimited", None):
            self.assertIsNone(parseSize(value), value)

    def test_junk(self):
        """Anything else is a ValueError."""
        for value in ("", "ten", "10X", "1.5M", "-2", -2, True, 1.5, b"10", "10 M", "K"):
            self.assertRaises(ValueError, parseSize, value)


class ParseDurationTests(TestCase):
    """
    Duration settings.
    """

    def test_numbers(self):
        """Integers and decimal strings are seconds."""
        self.assertEqual(parseDuration(30), 30)
        self.assertEqual(parseDuration("30"), 30)

    def test_suffixes(self):
        """s, m, h and d in either case."""
        self.assertEqual(parseDuration("30s"), 30)
        self.assertEqual(parseDuration("1m"), 60)
        self.assertEqual(parseDuration("2H"), 7200)
        self.assertEqual(parseDuration("1d"), 86400)

    def test_never(self):
        """-1, never and None mean never."""
        for value in (-1, "-1", "never", "NEVER", None):
            self.assertIsNone(parseDuration(value), value)

    def test_junk(self):
        """Anything else is a ValueError."""
        for value in ("", "soon", "1w", "1.5h", "-5", -5, False, ["1m"], "unlimited"):
            self.assertRaises(ValueError, parseDuration, value)


# ---------------------------------------------------------------- properties

_tricky = st.text(alphabet='"\\\n\r\t\x00\x01\x1f\x7f aZ09._@-#:;=,(){}[]<>/!%$*\u00e9\u20ac'
                           "\U0001f600\x85\u2028")
_texts = st.one_of(
    st.text(max_size=30),
    _tricky,
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,10}", fullmatch=True),
    st.binary(max_size=20).map(lambda data: data.decode("utf-8", "surrogateescape")),
)
_datetimes = st.datetimes(
    min_value=datetime.datetime(1000, 1, 1),
    max_value=datetime.datetime(9999, 12, 31, 23, 59, 59),
).map(lambda value: value.replace(microsecond=0))
_ports = st.none() | st.integers(0, 65535)
_ipAddresses = st.one_of(
    st.builds(IPAddress, st.ip_addresses(v=4).map(str), _ports),
    st.builds(IPAddress, st.ip_addresses(v=6).map(str), _ports),
)
_xmlText = st.text(alphabet=st.characters(exclude_characters='<>&"\r\n'), max_size=10)
_xml = st.builds(
    lambda name, attribute, body, sibling: XMLObject(
        f'<{name} a="{attribute}">{body}</{name}>' + ("<s/>" if sibling else "")),
    st.sampled_from(["x", "Msg", "a:b", "\u00e9l"]), _xmlText, _xmlText, st.booleans())
_opaque = st.text(
    alphabet=st.characters(exclude_characters=")\r\n"), max_size=10,
).map(lambda body: Opaque("#(" + body + ")"))
_scalars = st.one_of(
    _texts,
    st.binary(max_size=100),
    st.integers(-2 ** 63, 2 ** 63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    _datetimes,
    _ipAddresses,
    st.sampled_from([None, PAST, FUTURE]),
    _xml,
    _opaque,
)
_objects = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(_texts, children, max_size=5),
    max_leaves=25,
)


class PropertyTests(TestCase):
    """
    Round trips and robustness over generated values.
    """

    @settings(max_examples=250, deadline=None)
    @given(_objects)
    def test_roundTrip(self, value):
        """loads(dumps(x)) == x, types included, in both reading modes."""
        text = dumps(value)
        self.assertEqual(typed(loads(text)), typed(value))
        self.assertEqual(typed(loads(text, multiline=False)), typed(value))

    @settings(max_examples=250, deadline=None)
    @given(_objects)
    def test_fileRoundTrip(self, value):
        """loads(dumpsFile(x)) == x, types included."""
        text = dumpsFile(value)
        self.assertTrue(text.endswith("\n"))
        self.assertEqual(typed(loads(text)), typed(value))

    @settings(max_examples=100, deadline=None)
    @given(_objects)
    def test_singleLine(self, value):
        """dumps never writes a raw line break."""
        text = dumps(value)
        self.assertNotIn("\n", text)
        self.assertNotIn("\r", text)

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=50))
    def test_surrogateEscape(self, data):
        """Any byte string, as a surrogateescape string, round-trips."""
        value = data.decode("utf-8", "surrogateescape")
        text = dumps(value)
        self.assertEqual(loads(text), value)
        self.assertEqual(loads(text.encode("utf-8")), value)
        self.assertEqual(loads(text).encode("utf-8", "surrogateescape"), data)

    @settings(max_examples=200, deadline=None)
    @given(_objects, st.data())
    def test_mutations(self, value, data):
        """A damaged document either parses or raises DataFormatError."""
        text = dumps(value)
        where = data.draw(st.integers(0, len(text)))
        insert = data.draw(st.sampled_from(["", '"', "\\", "(", ")", "{", "}", ";", "=",
                                            ",", "[", "]", "<", ">", "#", " ", "\n", "/"]))
        cut = data.draw(st.integers(0, 3))
        damaged = text[:where] + insert + text[where + cut:]
        for multiline in (True, False):
            try:
                loads(damaged, multiline)
            except DataFormatError as e:
                self.assertTrue(0 <= e.position <= len(damaged), str(e))

    @settings(max_examples=300, deadline=None)
    @given(st.text(alphabet='#TIN[](){}<>/"\\;=,. \n-:_0123456789aAeE!?x', max_size=40))
    def test_garbage(self, text):
        """Arbitrary text never raises anything but DataFormatError."""
        try:
            loads(text)
        except DataFormatError:
            pass


class PerformanceTests(TestCase):
    """
    Settings are loaded on every account access.
    """

    def test_settingsDictionary(self):
        """A 100-entry settings dictionary loads in under a millisecond."""
        settings = {}
        for i in range(100):
            settings["Setting%03d" % i] = [
                "YES", "unlimited", "Some Text", 12345, "100M",
                datetime.datetime(2011, 11, 7, 16, 53, 5), ["a", "b"], "1(415)",
                IPAddress("10.0.0.1", 25), {"x": "y"}][i % 10]
        text = dumpsFile(settings)
        self.assertEqual(loads(text), settings)
        best = min(_timed(loads, text) for _ in range(30))
        self.assertLess(best, 0.001)


def _timed(function, *args):
    """
    Seconds taken by one call.
    """
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start
