# -*- test-case-name: tests.core.test_dataformat -*-
"""
The CommuniGate textual data format: parser and serializer.

Every value cgpro exchanges with the outside world (CLI arguments and
results, settings files, rules, application data) is written in this format
(specified in C{spec/data-format.md}), so this module is the single place
that knows its syntax.  Everything else handles plain Python values::

    =========================  ==========================================
    format                     Python
    =========================  ==========================================
    string (atom or quoted)    C{str}
    datablock C{[base64]}      C{bytes}
    number C{#123}             C{int} (signed 64-bit); C{#1.5} is read as
                               a C{float}
    timestamp C{#T...}         naive C{datetime.datetime} in UTC, or the
                               sentinels L{PAST} / L{FUTURE}
    C{#I[addr]:port}           L{IPAddress}
    C{#NULL#}                  C{None}
    array C{(a, b)}            C{list} (a C{tuple} is written as an array)
    dictionary C{{k=v;}}       C{dict}
    XML element(s)             L{XMLObject} (raw text)
    C{#(...)}                  L{Opaque} (raw text, meaning unknown)
    =========================  ==========================================

There is no boolean type: the writer turns C{True}/C{False} into the
strings C{YES}/C{NO}, the convention of CommuniGate settings.

Decisions the format leaves open, made here once:

  - Timestamps are UTC.  The writer emits the date-only form
    C{#TDD-MM-YYYY} when hours, minutes, seconds and microseconds are all
    zero (and for C{datetime.date} values); the reader always returns a
    C{datetime.datetime}.  Microseconds are dropped on output (the format
    has second precision); aware datetimes are converted to UTC first.
  - Strings are UTF-8.  A C{\\nnn} escape (or raw input bytes) that is not
    valid UTF-8 is kept as the lone surrogates of Python's
    C{surrogateescape} error handler, and the writer turns such surrogates
    back into C{\\nnn}, so arbitrary bytes survive a round trip.
  - The reader is lenient where clients are known to be sloppy (atoms with
    C{!#%:}, adjacent quoted strings or datablocks concatenate in
    multi-line text (never on a single CLI line, where two quoted
    arguments in a row are two arguments), white space
    inside datablocks, C{//} comments in multi-line text, duplicate keys:
    last wins) and strict everywhere else, reporting the position of the
    offending character in a L{DataFormatError}.
  - The single-line writer (L{dumps}) never emits a raw line break, so its
    output can always be sent as one CLI response line; L{dumpsFile} writes
    the indented layout of the server's settings files.
"""

import binascii
import datetime
import ipaddress
import re
from collections import namedtuple

__all__ = [
    "DataFormatError", "IPAddress", "XMLObject", "Opaque", "PAST", "FUTURE",
    "Reader", "loads", "dumps", "dumpsFile", "parseSize", "parseDuration",
    "MAX_DEPTH",
]

#: Deepest nesting of arrays/dictionaries accepted by the reader and the
#: writer: a hostile CLI line must not exhaust the Python stack.
MAX_DEPTH = 100

_INT_MIN = -(1 << 63)
_INT_MAX = (1 << 63) - 1


class DataFormatError(ValueError):
    """
    Text that is not valid data format, or a value that cannot be written.

    A C{ValueError} so that callers validating user input can catch both
    this and the conversion errors of the standard library with one clause.

    @ivar reason: what is wrong, for a human (C{str}).
    @ivar position: 0-based character offset of the offending character in
        the text being read (for the writer: in the text written so far).
    """

    def __init__(self, reason, position):
        ValueError.__init__(self, reason, position)
        self.reason = reason
        self.position = position

    def __str__(self):
        return f"{self.reason} at position {self.position}"


class IPAddress(namedtuple("IPAddress", "address port")):
    """
    An C{#I[address]:port} value.

    Kept as the address text rather than an C{ipaddress} object so that a
    value read is written back byte for byte; use L{ip} for arithmetic.

    @ivar address: the textual IPv4 or IPv6 address.
    @ivar port: C{int} in 0..65535, or C{None} when the value has no port.
    """

    __slots__ = ()

    def __new__(cls, address, port=None):
        """
        @raise ValueError: when C{address} is not an IPv4/IPv6 address or
            C{port} is out of range.
        @raise TypeError: for arguments of the wrong type.
        """
        if not isinstance(address, str):
            raise TypeError(f"IP address must be a str, not {type(address).__name__}")
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise ValueError(f"invalid IP address {address!r}") from None
        if port is not None:
            if isinstance(port, bool) or not isinstance(port, int):
                raise TypeError(f"port must be an int or None, not {type(port).__name__}")
            if not 0 <= port <= 65535:
                raise ValueError(f"port {port} out of range 0..65535")
        return super().__new__(cls, address, port)

    @property
    def ip(self):
        """
        @return: the address as an C{ipaddress.IPv4Address} or
            C{IPv6Address}.
        """
        return ipaddress.ip_address(self.address)


# XML: just enough of the grammar to find where a value ends.
_XML_NAME = r"(?:[^\W\d]|:)[\w.:-]*"
_XML_START = re.compile(
    r"<(" + _XML_NAME + r")(?:[ \t\r\n]+" + _XML_NAME
    + r"""[ \t\r\n]*=[ \t\r\n]*(?:"[^"<]*"|'[^'<]*'))*[ \t\r\n]*(/?)>""")
_XML_END = re.compile(r"</(" + _XML_NAME + r")[ \t\r\n]*>")
_XML_DECL = re.compile(r"""<!(?:[^>\[\]"']|"[^"]*"|'[^']*'|\[[^\]]*\])*>""")
_XML_WS = re.compile(r"[ \t\r\n]*")
_XML_TOKEN = re.compile(
    r"""<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>"""
    r"""|<!(?:[^>\[\]"']|"[^"]*"|'[^']*'|\[[^\]]*\])*>"""
    r"""|<(?:[^>"']|"[^"]*"|'[^']*')*>|[^<]+""", re.S)
_LINEBREAK = re.compile(r"\r\n|\r|\n")


def _scanXML(text, pos, wsRe):
    """
    Find the end of the XML value starting at C{text[pos]} (a C{<}).

    One or more sibling elements are read, as the reference reader does:
    siblings must be adjacent, except that white space may follow a
    leading C{<?...?>} or C{<!...>} construct.  Comments, processing
    instructions, CDATA and declarations are skipped; tags must balance.

    @param wsRe: the white space allowed after a leading declaration.
    @return: the offset just past the value.
    @raise DataFormatError: on unbalanced or malformed markup.
    """
    start = pos
    n = len(text)
    stack = []
    elements = 0
    while True:
        if text.startswith("<!--", pos):
            end = text.find("-->", pos + 4)
            if end < 0:
                raise DataFormatError("unterminated XML comment", pos)
            pos = end + 3
        elif text.startswith("<![CDATA[", pos):
            end = text.find("]]>", pos + 9)
            if end < 0:
                raise DataFormatError("unterminated XML CDATA section", pos)
            pos = end + 3
        elif text.startswith("<?", pos):
            end = text.find("?>", pos + 2)
            if end < 0:
                raise DataFormatError("unterminated XML processing instruction", pos)
            pos = end + 2
        elif text.startswith("<!", pos):
            m = _XML_DECL.match(text, pos)
            if m is None:
                raise DataFormatError("malformed XML declaration", pos)
            pos = m.end()
        elif text.startswith("</", pos):
            m = _XML_END.match(text, pos)
            if m is None:
                raise DataFormatError("malformed XML closing tag", pos)
            if not stack:
                raise DataFormatError("unexpected XML closing tag", pos)
            if m.group(1) != stack[-1][0]:
                raise DataFormatError(
                    f"XML closing tag </{m.group(1)}> does not match"
                    f" <{stack[-1][0]}>", pos)
            stack.pop()
            pos = m.end()
            if not stack:
                elements += 1
        else:
            m = _XML_START.match(text, pos)
            if m is None:
                raise DataFormatError("malformed XML tag", pos)
            if m.group(2):
                if not stack:
                    elements += 1
            else:
                stack.append((m.group(1), pos))
            pos = m.end()
        if stack:
            nxt = text.find("<", pos)
            if nxt < 0:
                name, where = stack[-1]
                raise DataFormatError(f"unterminated XML element <{name}>", where)
            pos = nxt
            continue
        if pos < n and text[pos] == "<" and not text.startswith("</", pos):
            continue
        if elements:
            return pos
        pos = wsRe.match(text, pos).end()
        if pos < n and text[pos] == "<" and not text.startswith("</", pos):
            continue
        raise DataFormatError("expected an XML element", pos if pos < n else start)


def _xmlOneLine(text):
    """
    Rewrite XML so it has no raw line break, without changing its meaning.

    Needed because a CLI response is one line.  Line breaks in markup
    (tags, attribute values, comments, declarations) become spaces, which
    is what attribute-value normalisation would do anyway; in character
    data they become C{&#10;}; in CDATA the section is split around one.
    """
    if "\n" not in text and "\r" not in text:
        return text
    parts = []
    for m in _XML_TOKEN.finditer(text):
        token = m.group()
        if token.startswith("<![CDATA["):
            token = _LINEBREAK.sub("]]>&#10;<![CDATA[", token)
        elif token.startswith("<"):
            token = _LINEBREAK.sub(" ", token)
        else:
            token = _LINEBREAK.sub("&#10;", token)
        parts.append(token)
    return "".join(parts)


class XMLObject(str):
    """
    An XML value: the raw text of one or more sibling elements.

    Kept as text (the reference client returns the raw text too) so that
    it round-trips exactly; L{elements} parses it when a caller needs the
    tree.  The constructor checks that the markup balances, so a value
    built by a caller cannot break the surrounding data when written.
    """

    __slots__ = ()

    def __new__(cls, text):
        """
        @raise DataFormatError: if C{text} is not balanced XML.
        """
        text = str(text)
        if not text.startswith("<"):
            raise DataFormatError("XML value must start with '<'", 0)
        end = _scanXML(text, 0, _XML_WS)
        if end != len(text):
            raise DataFormatError("unexpected data after XML value", end)
        return str.__new__(cls, text)

    def __repr__(self):
        return f"XMLObject({str.__repr__(self)})"

    def elements(self):
        """
        Parse the value with C{xml.etree.ElementTree}.

        @return: a C{list} of C{Element}s, one per top-level element (an
            XML declaration and a DOCTYPE are skipped).
        @raise ValueError: if the text is not well-formed XML.
        """
        from xml.etree import ElementTree
        body = re.sub(r"^(?:[ \t\r\n]*(?:<\?xml\b.*?\?>|<!DOCTYPE"
                      r"""(?:[^>\[\]"']|"[^"]*"|'[^']*'|\[[^\]]*\])*>))*""",
                      "", str(self), flags=re.S)
        try:
            root = ElementTree.fromstring("<cgpro-xml>" + body + "</cgpro-xml>")
        except ElementTree.ParseError as e:
            raise ValueError(f"malformed XML: {e}") from None
        return list(root)


_OPAQUE = re.compile(r"#\([^)\r\n]*\)")


class Opaque(str):
    """
    The raw text of a C{#(...)} token, including C{#(} and C{)}.

    The newer Perl client passes such "unknown data" through untouched and
    its meaning is not documented, so it is carried as-is rather than
    rejected: a value read from a client is written back unchanged.  As in
    that client, the token ends at the first C{)}; it may not span lines,
    so that it can be written on a CLI line as it is.
    """

    __slots__ = ()

    def __new__(cls, text):
        """
        @raise DataFormatError: if C{text} is not one C{#(...)} token.
        """
        text = str(text)
        if _OPAQUE.fullmatch(text) is None:
            raise DataFormatError("opaque value must look like '#(...)'", 0)
        return str.__new__(cls, text)

    def __repr__(self):
        return f"Opaque({str.__repr__(self)})"


class _TimeSentinel:
    """
    The distant past or future (C{#TPAST}, C{#TFUTURE}).

    Singletons that order before / after every C{datetime}, so settings
    code can compare an expiry time without special cases.
    """

    __slots__ = ("_name", "_rank")

    def __init__(self, name, rank):
        self._name = name
        self._rank = rank

    def __repr__(self):
        return "#T" + self._name

    def __reduce__(self):
        return self._name

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def _cmp(self, other):
        if isinstance(other, _TimeSentinel):
            return (self._rank > other._rank) - (self._rank < other._rank)
        if isinstance(other, datetime.date):
            return self._rank
        return None

    def __lt__(self, other):
        c = self._cmp(other)
        return NotImplemented if c is None else c < 0

    def __le__(self, other):
        c = self._cmp(other)
        return NotImplemented if c is None else c <= 0

    def __gt__(self, other):
        c = self._cmp(other)
        return NotImplemented if c is None else c > 0

    def __ge__(self, other):
        c = self._cmp(other)
        return NotImplemented if c is None else c >= 0


#: C{#TPAST}: a time before any other.
PAST = _TimeSentinel("PAST", -1)
#: C{#TFUTURE}: a time after any other.
FUTURE = _TimeSentinel("FUTURE", 1)


# ---------------------------------------------------------------- reader

_ATOM_RE = r"[A-Za-z0-9._@!%:\-\x80-\U0010ffff][A-Za-z0-9._@!#%:\-\x80-\U0010ffff]*"
_ATOM = re.compile(_ATOM_RE)
_ATOM_CHAR = re.compile(r"[A-Za-z0-9._@!#%:\-\x80-\U0010ffff]")
_WS_SINGLE_RE = r"[ \t]*"
_WS_MULTI_RE = r"(?:[ \t\r\n]+|//[^\r\n]*)*"
_WS_SINGLE = re.compile(_WS_SINGLE_RE)


class _Syntax:
    """
    The compiled patterns of one white-space mode.

    The hot loops match a whole dictionary entry whose value is an atom,
    a plain quoted string or a number (most settings) with one regex
    instead of scanning token by token: that is what keeps loading a
    settings dictionary well under a millisecond.
    """

    def __init__(self, ws, wsStart, xmlWs):
        self.ws = re.compile(ws).match
        self.wsStart = wsStart
        self.xmlWs = xmlWs
        self.entry = re.compile(
            ws + "(" + _ATOM_RE + ")" + ws + "=" + ws + "(?:(?:(" + _ATOM_RE
            + r')|"([^"\\\x00-\x1f]*)"|#(-?[0-9]{1,18}))' + ws + ";" + ws + ")?").match
        self.semicolon = re.compile(ws + ";" + ws).match
        self.atomSeparator = re.compile("(" + _ATOM_RE + ")" + ws + "([,)])").match


_SINGLE = _Syntax(_WS_SINGLE_RE, " \t", _WS_SINGLE)
_MULTI = _Syntax(_WS_MULTI_RE, " \t\r\n/", _XML_WS)
_QPLAIN = re.compile(r'[^"\\\x00-\x08\x0a-\x1f]+')
_SIMPLE_ESCAPES = {'"': '"', "\\": "\\", "r": "\r", "n": "\n", "t": "\t", "e": "\n"}
_DIGITS3 = re.compile(r"[0-9]{3}")
_B64_BODY = re.compile(r"[A-Za-z0-9+/= \t\r\n]*")
_B64_VALID = re.compile(
    r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_B64_WS = str.maketrans("", "", " \t\r\n")
_NUMBER = re.compile(r"#(-?[0-9]+)(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_TIME = re.compile(r"#T(?:(PAST|FUTURE)|([0-9]{2})-([0-9]{2})-([0-9]{4})"
                   r"(?:_([0-9]{2}):([0-9]{2}):([0-9]{2}))?)")
_IP = re.compile(r"#I\[([^\]]*)\](:[0-9]*)?")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(_OCTET + r"(?:\." + _OCTET + r"){3}")


def _decodeInput(text):
    """
    Accept C{bytes} input as UTF-8, keeping invalid bytes as surrogates.
    """
    if isinstance(text, (bytes, bytearray, memoryview)):
        return bytes(text).decode("utf-8", "surrogateescape")
    if not isinstance(text, str):
        raise TypeError(f"expected str or bytes, not {type(text).__name__}")
    return text


class Reader:
    """
    Read data-format objects one by one from a text.

    The CLI uses it on a command line: keywords and arguments are all
    objects (keywords come back as strings), so the command parser calls
    L{readObject} repeatedly and checks L{atEnd}.  L{loads} uses it for a
    whole document.

    @ivar text: the text being read (C{str}; C{bytes} input is decoded).
    @ivar pos: offset of the next character to read; may be saved and
        restored to look ahead.
    @ivar multiline: C{True} for files and multi-line output (CR, LF and
        C{//} comments are white space); C{False} for a CLI line (only
        spaces and tabs separate tokens).
    """

    def __init__(self, text, multiline=False):
        self.text = _decodeInput(text)
        self.pos = 0
        self.multiline = multiline
        self._syntax = _MULTI if multiline else _SINGLE

    def atEnd(self):
        """
        Skip white space and tell whether the text is exhausted.
        """
        self.pos = self._skip(self.pos)
        return self.pos >= len(self.text)

    def readObject(self):
        """
        Read the next object, skipping the white space before it.

        @raise DataFormatError: at the first syntax error; C{pos} is then
            left where it was.
        """
        obj, self.pos = self._value(self._skip(self.pos), 0)
        return obj

    def _skip(self, pos):
        text = self.text
        if pos < len(text) and text[pos] in self._syntax.wsStart:
            return self._syntax.ws(text, pos).end()
        return pos

    def _value(self, pos, depth):
        """
        Read one object starting exactly at C{pos}.

        @return: C{(object, position after it)}.
        """
        text = self.text
        if pos >= len(text):
            raise DataFormatError("unexpected end of input", pos)
        c = text[pos]
        if c == "#":
            return self._hashed(pos)
        if c == '"':
            return self._quoted(pos)
        if c == "{":
            return self._dictionary(pos, depth)
        if c == "(":
            return self._array(pos, depth)
        if c == "[":
            return self._datablock(pos)
        if c == "<":
            end = _scanXML(text, pos, self._syntax.xmlWs)
            return str.__new__(XMLObject, text[pos:end]), end
        m = _ATOM.match(text, pos)
        if m is not None:
            return m.group(), m.end()
        raise DataFormatError(f"unexpected character {c!r}", pos)

    def _array(self, pos, depth):
        if depth >= MAX_DEPTH:
            raise DataFormatError("nesting too deep", pos)
        text = self.text
        n = len(text)
        skip = self._skip
        atomSeparator = self._syntax.atomSeparator
        start = pos
        result = []
        pos = skip(pos + 1)
        if pos < n and text[pos] == ")":
            return result, pos + 1
        while True:
            m = atomSeparator(text, pos)
            if m is not None:
                result.append(m.group(1))
                pos = m.end()
                if m.group(2) == ")":
                    return result, pos
                pos = skip(pos)
                if pos < n and text[pos] == ")":
                    raise DataFormatError("expected an array element", pos)
                continue
            obj, pos = self._value(pos, depth + 1)
            result.append(obj)
            pos = skip(pos)
            if pos >= n:
                raise DataFormatError(f"unterminated array (opened at {start})", pos)
            c = text[pos]
            if c == ",":
                pos = skip(pos + 1)
                if pos < n and text[pos] == ")":
                    raise DataFormatError("expected an array element", pos)
            elif c == ")":
                return result, pos + 1
            else:
                raise DataFormatError("expected ',' or ')' in array", pos)

    def _dictionary(self, pos, depth):
        if depth >= MAX_DEPTH:
            raise DataFormatError("nesting too deep", pos)
        text = self.text
        n = len(text)
        skip = self._skip
        value = self._value
        syntax = self._syntax
        entry = syntax.entry
        semicolon = syntax.semicolon
        start = pos
        result = {}
        pos += 1
        while True:
            m = entry(text, pos)
            if m is not None:
                key, atom, quoted, number = m.groups()
                pos = m.end()
                if atom is not None:
                    result[key] = atom
                    continue
                if quoted is not None:
                    result[key] = quoted
                    continue
                if number is not None:
                    result[key] = int(number)
                    continue
            else:
                pos = skip(pos)
                if pos >= n:
                    raise DataFormatError(
                        f"unterminated dictionary (opened at {start})", pos)
                c = text[pos]
                if c == "}":
                    return result, pos + 1
                if c == '"':
                    key, pos = self._quoted(pos)
                else:
                    m = _ATOM.match(text, pos)
                    if m is None:
                        raise DataFormatError(
                            "expected a dictionary key (a string) or '}'", pos)
                    key = m.group()
                    pos = m.end()
                pos = skip(pos)
                if pos >= n or text[pos] != "=":
                    raise DataFormatError("expected '=' after dictionary key", pos)
                pos = skip(pos + 1)
            result[key], pos = value(pos, depth + 1)
            m = semicolon(text, pos)
            if m is None:
                raise DataFormatError("expected ';' after dictionary value", skip(pos))
            pos = m.end()

    def _quoted(self, pos):
        """
        Read a quoted string and any quoted strings concatenated to it.
        """
        text = self.text
        n = len(text)
        start = pos
        parts = []
        rebuild = False
        pos += 1
        while True:
            m = _QPLAIN.match(text, pos)
            if m is not None:
                parts.append(m.group())
                pos = m.end()
            if pos >= n:
                raise DataFormatError("unterminated quoted string", start)
            c = text[pos]
            if c == '"':
                pos += 1
                after = self._skip(pos) if self.multiline else pos
                if self.multiline and after < n and text[after] == '"':
                    pos = after + 1
                    rebuild = True
                    continue
                break
            if c == "\\":
                if pos + 1 >= n:
                    raise DataFormatError("unterminated quoted string", start)
                e = text[pos + 1]
                simple = _SIMPLE_ESCAPES.get(e)
                if simple is not None:
                    parts.append(simple)
                    pos += 2
                    continue
                if _DIGITS3.match(text, pos + 1):
                    code = int(text[pos + 1:pos + 4])
                    if code > 255:
                        raise DataFormatError(f"escape \\{code} is not a byte value", pos)
                    if code >= 0x80:
                        parts.append(chr(0xDC00 + code))
                        rebuild = True
                    else:
                        parts.append(chr(code))
                    pos += 4
                    continue
                raise DataFormatError("invalid escape sequence in quoted string", pos)
            if c in "\r\n":
                raise DataFormatError("line break inside quoted string", pos)
            raise DataFormatError(
                f"control character U+{ord(c):04X} inside quoted string", pos)
        s = "".join(parts)
        if rebuild:
            # Escaped bytes (or concatenated halves of a character) form
            # UTF-8 sequences only once they are seen together.
            try:
                s = s.encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape")
            except UnicodeEncodeError:
                pass
        return s, pos

    def _datablock(self, pos):
        text = self.text
        n = len(text)
        chunks = []
        while True:
            m = _B64_BODY.match(text, pos + 1)
            end = m.end()
            if end >= n:
                raise DataFormatError("unterminated datablock", pos)
            if text[end] != "]":
                raise DataFormatError(f"invalid character {text[end]!r} in datablock", end)
            chunks.append((m.group().translate(_B64_WS), pos))
            pos = end + 1
            after = self._skip(pos) if self.multiline else pos
            if self.multiline and after < n and text[after] == "[":
                pos = after
                continue
            break
        result = []
        for data, where in chunks:
            if _B64_VALID.fullmatch(data) is None:
                break
            result.append(binascii.a2b_base64(data))
        else:
            return b"".join(result), pos
        # Blocks split at arbitrary places: decode them as one.
        data = "".join(c for c, _ in chunks)
        if len(chunks) > 1 and _B64_VALID.fullmatch(data) is not None:
            return binascii.a2b_base64(data), pos
        raise DataFormatError("invalid base64 data in datablock", where)

    def _hashed(self, pos):
        """
        Read a C{#}-prefixed scalar: null, number, timestamp, IP address
        or opaque token.
        """
        text = self.text
        if text.startswith("#NULL#", pos):
            return None, self._boundary(pos + 6, "#NULL#")
        nxt = text[pos + 1:pos + 2]
        if nxt == "T":
            return self._timestamp(pos)
        if nxt == "I":
            return self._ipAddress(pos)
        if nxt == "(":
            m = _OPAQUE.match(text, pos)
            if m is None:
                raise DataFormatError("unterminated '#(' token", pos)
            return str.__new__(Opaque, m.group()), self._boundary(m.end(), "'#(...)'")
        m = _NUMBER.match(text, pos)
        if m is None:
            raise DataFormatError("unknown '#' token", pos)
        end = self._boundary(m.end(), "number")
        if m.group(2) or m.group(3):
            value = float(m.group()[1:])
            if value in (float("inf"), float("-inf")):
                raise DataFormatError("number out of range", pos)
            return value, end
        digits = m.group(1)
        if len(digits) > 21:
            raise DataFormatError("number out of 64-bit range", pos)
        value = int(digits)
        if not _INT_MIN <= value <= _INT_MAX:
            raise DataFormatError("number out of 64-bit range", pos)
        return value, end

    def _timestamp(self, pos):
        m = _TIME.match(self.text, pos)
        if m is None:
            raise DataFormatError("invalid timestamp (expected #TDD-MM-YYYY[_HH:MM:SS])", pos)
        end = self._boundary(m.end(), "timestamp")
        if m.group(1):
            return (PAST if m.group(1) == "PAST" else FUTURE), end
        day, month, year, hour, minute, second = m.group(2, 3, 4, 5, 6, 7)
        try:
            value = datetime.datetime(
                int(year), int(month), int(day),
                int(hour or 0), int(minute or 0), int(second or 0))
        except ValueError:
            raise DataFormatError("invalid date or time in timestamp", pos) from None
        return value, end

    def _ipAddress(self, pos):
        text = self.text
        m = _IP.match(text, pos)
        if m is None:
            if text.startswith("#I[", pos):
                raise DataFormatError("unterminated IP address", pos)
            raise DataFormatError("unknown '#' token", pos)
        address = m.group(1)
        if _IPV4.fullmatch(address) is None:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise DataFormatError(f"invalid IP address {address!r}", pos + 3) from None
        port = None
        if m.group(2) is not None:
            digits = m.group(2)[1:]
            where = m.start(2) + 1
            if not digits:
                raise DataFormatError("expected a port number after ':'", where)
            if len(digits) > 5 or int(digits) > 65535:
                raise DataFormatError("port number out of range", where)
            port = int(digits)
        end = self._boundary(m.end(), "IP address")
        return tuple.__new__(IPAddress, (address, port)), end

    def _boundary(self, pos, what):
        """
        Check that a C{#} token is not glued to more atom characters.

        @return: C{pos}.
        """
        if _ATOM_CHAR.match(self.text, pos):
            raise DataFormatError(
                f"unexpected character {self.text[pos]!r} after {what}", pos)
        return pos


def loads(text, multiline=True):
    """
    Parse exactly one object.

    @param text: C{str}, or C{bytes} decoded as UTF-8 (invalid bytes are
        kept, see the module docstring); positions in errors count
        characters of the decoded text.  A leading byte-order mark is
        skipped.
    @param multiline: C{True} (the default, for files) also treats CR, LF
        and C{//} comments as white space.
    @raise DataFormatError: on a syntax error or trailing data.
    """
    reader = Reader(text, multiline)
    if reader.text.startswith("\ufeff"):
        reader.pos = 1
    obj = reader.readObject()
    if not reader.atEnd():
        raise DataFormatError("unexpected data after the object", reader.pos)
    return obj


# ---------------------------------------------------------------- writer

_ATOM_OUT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]*")
_NEEDS_ESCAPE = re.compile(r'[\x00-\x1f\x7f"\\\ud800-\udfff]')
_ESCAPES = {chr(i): "\\%03d" % i for i in range(32)}
_ESCAPES.update({"\x7f": "\\127", "\n": "\\e", "\t": "\\t", "\r": "\\r",
                 '"': '\\"', "\\": "\\\\"})


class _Unwritable(Exception):
    """
    A string holds a surrogate that is not an escaped byte.
    """


def _escapeMatch(m):
    c = m.group()
    escape = _ESCAPES.get(c)
    if escape is None:
        code = ord(c) - 0xDC00
        if not 0x80 <= code <= 0xFF:
            raise _Unwritable(c)
        escape = "\\%03d" % code
    return escape


def _quoted(s):
    return '"' + _NEEDS_ESCAPE.sub(_escapeMatch, s) + '"'


def _stringText(s):
    """
    Write a string as an atom when the server would, else quoted (§2.1).
    """
    if _ATOM_OUT.fullmatch(s) is not None:
        return s
    return _quoted(s)


def _sortKey(key):
    try:
        return key.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return key.encode("utf-8", "surrogatepass")


def _sortedKeys(d, out):
    for key in d:
        if not isinstance(key, str):
            raise TypeError(f"dictionary keys must be strings, not {type(key).__name__}")
    return sorted(d, key=_sortKey)


def _error(reason, out):
    return DataFormatError(reason, sum(map(len, out)))


def _timestampText(value):
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None and value.utcoffset() is not None:
            value = value.astimezone(datetime.timezone.utc)
        if value.hour or value.minute or value.second or value.microsecond:
            return "#T%02d-%02d-%04d_%02d:%02d:%02d" % (
                value.day, value.month, value.year,
                value.hour, value.minute, value.second)
    return "#T%02d-%02d-%04d" % (value.day, value.month, value.year)


def _keyText(key, out):
    """
    Write a string (a dictionary key is always a plain string, even when
    it is an L{XMLObject} or L{Opaque}).
    """
    try:
        return _stringText(str(key))
    except _Unwritable as e:
        raise _error(f"string holds lone surrogate U+{ord(e.args[0]):04X}", out) from None


def _scalarText(obj, out):
    """
    Write any value that is not an array or a dictionary.

    @raise TypeError: for a type the format cannot carry.
    """
    if isinstance(obj, str):
        if isinstance(obj, XMLObject):
            return _xmlOneLine(str(obj))
        if isinstance(obj, Opaque):
            return str(obj)
        return _keyText(obj, out)
    if obj is None:
        return "#NULL#"
    if isinstance(obj, bool):
        return "YES" if obj else "NO"
    if isinstance(obj, int):
        if not _INT_MIN <= obj <= _INT_MAX:
            raise _error("number out of 64-bit range", out)
        return "#" + int.__repr__(obj)
    if isinstance(obj, IPAddress):
        if obj.port is None:
            return f"#I[{obj.address}]"
        return f"#I[{obj.address}]:{obj.port:d}"
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return "[" + binascii.b2a_base64(obj, newline=False).decode("ascii") + "]"
    if isinstance(obj, datetime.date):
        return _timestampText(obj)
    if isinstance(obj, _TimeSentinel):
        return repr(obj)
    if isinstance(obj, float):
        if obj != obj or obj in (float("inf"), float("-inf")):
            raise _error("cannot write a non-finite number", out)
        return "#" + float.__repr__(obj)
    raise TypeError(f"cannot write {type(obj).__name__} in the data format")


def _write(obj, out, depth):
    if isinstance(obj, dict):
        if depth >= MAX_DEPTH:
            raise _error("nesting too deep (or circular)", out)
        out.append("{")
        for key in _sortedKeys(obj, out):
            out.append(_keyText(key, out))
            out.append("=")
            _write(obj[key], out, depth + 1)
            out.append(";")
        out.append("}")
    elif isinstance(obj, (list, tuple)) and not isinstance(obj, IPAddress):
        if depth >= MAX_DEPTH:
            raise _error("nesting too deep (or circular)", out)
        out.append("(")
        first = True
        for item in obj:
            if not first:
                out.append(", ")
            first = False
            _write(item, out, depth + 1)
        out.append(")")
    else:
        out.append(_scalarText(obj, out))


def dumps(obj):
    """
    Write an object on a single line, as a CLI response carries it.

    The output never contains a raw CR or LF (line breaks in strings are
    escaped, in XML values replaced, see L{_xmlOneLine}); dictionary keys
    are sorted by their UTF-8 bytes so the output is stable.

    @raise TypeError: for a value of a type the format cannot carry.
    @raise DataFormatError: for an unwritable value (integer outside 64
        bits, non-finite float, nesting deeper than L{MAX_DEPTH}).
    """
    out = []
    _write(obj, out, 0)
    return "".join(out)


_INDENT = "  "
_INLINE_ARRAY_WIDTH = 72
_BLOCK_WIDTH = 76


def _writeFile(obj, out, indent, depth):
    inner = indent + _INDENT
    if isinstance(obj, dict) and obj:
        if depth >= MAX_DEPTH:
            raise _error("nesting too deep (or circular)", out)
        out.append("{\n")
        for key in _sortedKeys(obj, out):
            out.append(inner)
            out.append(_keyText(key, out))
            out.append(" = ")
            _writeFile(obj[key], out, inner, depth + 1)
            out.append(";\n")
        out.append(indent + "}")
    elif isinstance(obj, (list, tuple)) and obj and not isinstance(obj, IPAddress):
        if depth >= MAX_DEPTH:
            raise _error("nesting too deep (or circular)", out)
        if all(_isShortScalar(item) for item in obj):
            line = dumps(obj)
            if len(line) <= _INLINE_ARRAY_WIDTH:
                out.append(line)
                return
        out.append("(\n")
        last = len(obj) - 1
        for i, item in enumerate(obj):
            out.append(inner)
            _writeFile(item, out, inner, depth + 1)
            out.append(",\n" if i < last else "\n")
        out.append(indent + ")")
    elif isinstance(obj, XMLObject):
        out.append(str(obj))
    elif type(obj) is str and "\n" in obj[:-1]:
        # Long multi-line texts (the Router table) read better one line
        # per line; adjacent quoted strings concatenate when read back.
        pieces = obj.split("\n")
        lines = [p + "\n" for p in pieces[:-1]]
        if pieces[-1]:
            lines.append(pieces[-1])
        try:
            out.append(("\n" + inner).join(_quoted(line) for line in lines))
        except _Unwritable as e:
            raise _error(f"string holds lone surrogate U+{ord(e.args[0]):04X}", out) from None
    elif isinstance(obj, (bytes, bytearray, memoryview)) and len(obj) > 57:
        data = binascii.b2a_base64(obj, newline=False).decode("ascii")
        out.append(("\n" + inner).join(
            "[" + data[i:i + _BLOCK_WIDTH] + "]"
            for i in range(0, len(data), _BLOCK_WIDTH)))
    else:
        _write(obj, out, depth)


def _isShortScalar(obj):
    if isinstance(obj, (dict, list, XMLObject, bytes, bytearray, memoryview)):
        return False
    if isinstance(obj, tuple):
        return isinstance(obj, IPAddress)
    return True


def dumpsFile(obj):
    """
    Write an object in the indented layout of the server's settings files.

    Two-space indentation, one dictionary entry or array element per line
    (short arrays of scalars stay on one line), keys sorted by their UTF-8
    bytes, a final newline.  Strings with embedded line breaks and long
    datablocks are split over several lines using concatenation, which
    every reader accepts.  C{loads(dumpsFile(x)) == x}.

    @raise TypeError: see L{dumps}.
    @raise DataFormatError: see L{dumps}.
    """
    out = []
    _writeFile(obj, out, "", 0)
    out.append("\n")
    return "".join(out)


# ---------------------------------------------------------------- helpers

_SIZE = re.compile(r"([0-9]{1,20})([kmgt]?)", re.I)
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_DURATION = re.compile(r"([0-9]{1,20})([smhd]?)", re.I)
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _parseQuantity(value, pattern, units, unlimited, what):
    """
    Shared body of L{parseSize} and L{parseDuration}.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"invalid {what}: {value!r}")
    if isinstance(value, int):
        if value == -1:
            return None
        if value < 0:
            raise ValueError(f"invalid {what}: negative value {value}")
        return value
    if not isinstance(value, str):
        raise ValueError(f"invalid {what}: {value!r}")
    text = value.strip()
    if text.lower() in unlimited:
        return None
    m = pattern.fullmatch(text)
    if m is None:
        raise ValueError(f"invalid {what}: {value!r}")
    return int(m.group(1)) * units[m.group(2).lower()]


def parseSize(value):
    """
    Interpret a size setting (C{MaxAccountSize = 100M}).

    Settings hold sizes inconsistently (spec §2.8): numbers, decimal
    strings, strings with a unit, or a "no limit" marker.

    @param value: an C{int}, or a C{str} of decimal digits with an optional
        case-insensitive suffix C{K}, C{M}, C{G} or C{T} (powers of 1024);
        C{-1}, C{"-1"}, C{"unlimited"} and C{None} mean no limit.
    @return: the size in bytes (C{int}), or C{None} for no limit.
    @raise ValueError: for anything else.
    """
    return _parseQuantity(value, _SIZE, _SIZE_UNITS, ("unlimited", "-1"), "size")


def parseDuration(value):
    """
    Interpret a duration setting (C{FailedLoginFlow = (10, 1m)}).

    @param value: an C{int} (seconds), or a C{str} of decimal digits with
        an optional case-insensitive suffix C{s}, C{m}, C{h} or C{d};
        C{-1}, C{"-1"}, C{"never"} and C{None} mean "never".
    @return: seconds (C{int}), or C{None} for never.
    @raise ValueError: for anything else.
    """
    return _parseQuantity(value, _DURATION, _DURATION_UNITS, ("never", "-1"), "duration")
