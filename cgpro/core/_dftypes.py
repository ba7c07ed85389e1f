# -*- test-case-name: tests.core.test_dataformat -*-
"""
The value types of the data format, which its reader and writer share.

This is a private part of L{cgpro.core.dataformat}, which re-exports every
public name here, so import them from there.  The types live in their own
module because both directions of the format use them: L{IPAddress},
L{XMLObject} and the XML scanner that checks it, L{Opaque}, the
L{PAST}/L{FUTURE} sentinels and L{DataFormatError}.  The reader
(L{cgpro.core.dataformat}) and the writer (L{cgpro.core._dfwriter}) each
need these types but never need each other.

The classes here set C{__module__} to C{cgpro.core.dataformat} (see the end
of this module).  Reprs, tracebacks and pickles therefore still name the
public module, as they did before the split.
"""

import datetime
import ipaddress
import re
from collections import namedtuple

__all__ = [
    "DataFormatError", "IPAddress", "XMLObject", "Opaque", "PAST", "FUTURE",
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


# Name the public module, where callers import these from, so a pickled
# PAST or IPAddress and a logged DataFormatError read as before the split.
for _cls in (DataFormatError, IPAddress, XMLObject, Opaque, _TimeSentinel):
    _cls.__module__ = "cgpro.core.dataformat"
del _cls
