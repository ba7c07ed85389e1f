# -*- test-case-name: tests.sip.test_message -*-
"""
Typed SIP header values: names (canonical and compact forms), name-addr
(From, To, Contact, Route), Via and CSeq, and the comma/semicolon
splitting that respects quotes and angle brackets.

Each parser takes one element's raw text and is called lazily by
L{cgpro.sip.message.Message} only when that header is asked for.
"""

import re

from cgpro.sip.uri import (
    SIPParseError, _TOKEN, _digitsRe, _hostRe, _tokenRe, checkPort,
    formatParams, getParam, parseParams, parseURI)

COMPACT_FORMS = {
    "i": "Call-ID", "m": "Contact", "e": "Content-Encoding",
    "l": "Content-Length", "c": "Content-Type", "f": "From",
    "s": "Subject", "k": "Supported", "t": "To", "v": "Via",
    "o": "Event", "u": "Allow-Events", "r": "Refer-To",
    "b": "Referred-By", "x": "Session-Expires", "y": "Identity",
}

# Names whose canonical spelling is not plain title case.
_SPECIAL_NAMES = [
    "Call-ID", "CSeq", "WWW-Authenticate", "MIME-Version", "RAck", "RSeq",
    "SIP-ETag", "SIP-If-Match", "P-Asserted-Identity", "Identity-Info",
]

_canonical = dict((k, v) for k, v in COMPACT_FORMS.items())
for _name in _SPECIAL_NAMES:
    _canonical[_name.lower()] = _name


def canonicalName(name):
    """
    Return the canonical spelling of a header name: compact forms are
    expanded, known names get their RFC spelling, others title case.

    @param name: a header name in any case.
    @type name: L{str}
    @rtype: L{str}
    """
    lower = name.lower()
    result = _canonical.get(lower)
    if result is None:
        result = "-".join(part.capitalize() for part in lower.split("-"))
        if len(_canonical) < 4096:  # bounded: names come from the wire
            _canonical[lower] = result
    return result


_cseqRe = re.compile(r"[ \t]*(\d+)[ \t]+(" + _TOKEN + r")[ \t]*\Z")
_viaRe = re.compile(
    r"\s*(" + _TOKEN + r")\s*/\s*(" + _TOKEN + r")\s*/\s*(" + _TOKEN +
    r")\s+(.*)\Z", re.S)
_callIdRe = re.compile(r"[^\s]+\Z")

def splitQuoted(text, sep):
    """
    Split C{text} on C{sep} outside double quotes and angle brackets.

    This is how comma-separated header values and C{;} parameter lists
    are split: a comma inside C{"Doe, John"} or C{<sip:a;x=1,2>} does
    not separate elements.

    @raise SIPParseError: a quoted string or angle bracket is not closed.
    """
    if '"' not in text and "<" not in text:
        return text.split(sep)
    parts, start, i, n = [], 0, 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            if i >= n:
                raise SIPParseError("unterminated quoted string")
        elif c == "<":
            end = text.find(">", i)
            if end < 0:
                raise SIPParseError("unterminated <")
            i = end
        elif c == sep:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


class NameAddr:
    """
    A name-addr or addr-spec with header parameters (From, To, Contact,
    Route, Record-Route, ...).

    @ivar displayName: the display name, quotes and escapes removed, or
        L{None}.
    @ivar uri: the L{SIPURI} or L{AbsoluteURI}.
    @ivar params: ordered C{(lower-case name, value or None)} list of the
        header parameters (not the URI's).
    @ivar wildcard: C{True} for the C{*} Contact of a REGISTER that removes
        all bindings.
    """
    __slots__ = ("displayName", "uri", "params", "wildcard")

    def __init__(self, uri, displayName=None, params=None, wildcard=False):
        self.uri = uri
        self.displayName = displayName
        self.params = list(params or [])
        self.wildcard = wildcard

    @property
    def tag(self):
        """
        The C{tag} parameter (dialog identification), or L{None}.
        """
        return getParam(self.params, "tag")

    def getParam(self, name):
        """
        @return: the value of header parameter C{name}, or L{None}.
        """
        return getParam(self.params, name.lower())

    def __str__(self):
        if self.wildcard:
            return "*"
        out = "<%s>" % (self.uri,)
        if self.displayName is not None:
            quoted = self.displayName.replace("\\", "\\\\").replace('"', '\\"')
            out = '"%s" %s' % (quoted, out)
        return out + formatParams(self.params)

    def __eq__(self, other):
        return (isinstance(other, NameAddr) and
                (self.displayName, self.uri, self.params, self.wildcard) ==
                (other.displayName, other.uri, other.params, other.wildcard))

    def __repr__(self):
        return "NameAddr(%r)" % (str(self),)


def parseNameAddr(text):
    """
    Parse one name-addr or addr-spec followed by header parameters.

    In the addr-spec form a C{;} ends the URI: parameters belong to the
    header (RFC 3261 section 20.10).

    @raise SIPParseError: the value is malformed.
    """
    text = text.strip()
    if text == "*":
        return NameAddr(None, wildcard=True)
    displayName = None
    if text.startswith('"'):
        i, n, chars = 1, len(text), []
        while i < n and text[i] != '"':
            if text[i] == "\\" and i + 1 < n:
                i += 1
            chars.append(text[i])
            i += 1
        if i >= n:
            raise SIPParseError("unterminated display name")
        displayName = "".join(chars)
        text = text[i + 1:].lstrip()
        if not text.startswith("<"):
            raise SIPParseError("display name without <URI>")
    lt = text.find("<")
    if lt >= 0 and ";" not in text[:lt]:
        if lt:
            displayName = " ".join(text[:lt].split())
            if not all(_tokenRe.match(w) for w in displayName.split()):
                raise SIPParseError("bad display name %r" % (displayName,))
        gt = text.find(">", lt)
        if gt < 0:
            raise SIPParseError("missing > in %r" % (text,))
        uri = parseURI(text[lt + 1:gt])
        rest = text[gt + 1:].strip()
    else:
        uriText, semi, rest = text.partition(";")
        uri = parseURI(uriText.strip())
        rest = semi + rest
    params = []
    if rest:
        if not rest.startswith(";"):
            raise SIPParseError("junk after address: %r" % (rest,))
        params = parseParams(splitQuoted(rest[1:], ";"))
    return NameAddr(uri, displayName, params)


class Via:
    """
    One Via header element.

    @ivar protocol: the sent-protocol name, normally C{"SIP"}.
    @ivar version: normally C{"2.0"}.
    @ivar transport: upper case: C{"UDP"}, C{"TCP"}, C{"TLS"}, ...
    @ivar host: the sent-by host.
    @ivar port: the sent-by port as an L{int}, or L{None}.
    @ivar params: ordered C{(lower-case name, value or None)} list.
    """
    __slots__ = ("protocol", "version", "transport", "host", "port", "params")

    def __init__(self, transport, host, port=None, params=None,
                 protocol="SIP", version="2.0"):
        self.protocol = protocol
        self.version = version
        self.transport = transport
        self.host = host
        self.port = port
        self.params = list(params or [])

    @property
    def branch(self):
        """The C{branch} parameter (transaction id), or L{None}."""
        return getParam(self.params, "branch")

    @property
    def received(self):
        """The C{received} parameter (RFC 3261 section 18.2.1), or L{None}."""
        return getParam(self.params, "received")

    @property
    def hasRport(self):
        """Whether the C{rport} parameter (RFC 3581) is present."""
        return any(n == "rport" for n, _ in self.params)

    @property
    def rport(self):
        """The C{rport} value as an L{int}, or L{None} if absent or empty."""
        value = getParam(self.params, "rport")
        return None if value is None else int(value)

    def __str__(self):
        port = "" if self.port is None else ":%d" % self.port
        return "%s/%s/%s %s%s%s" % (self.protocol, self.version,
                                    self.transport, self.host, port,
                                    formatParams(self.params))

    def __eq__(self, other):
        return isinstance(other, Via) and str(self) == str(other)

    def __repr__(self):
        return "Via(%r)" % (str(self),)


def parseVia(text):
    """
    Parse one Via element, tolerating LWS around C{/}, C{:}, C{;}, C{=}.

    @raise SIPParseError: the element is malformed.
    """
    m = _viaRe.match(text)
    if not m:
        raise SIPParseError("bad Via %r" % (text.strip(),))
    parts = splitQuoted(m.group(4), ";")
    sentBy = "".join(parts[0].split())
    h = _hostRe.match(sentBy)
    if not h:
        raise SIPParseError("bad Via sent-by %r" % (sentBy,))
    params = parseParams(parts[1:])
    rport = getParam(params, "rport")
    if rport is not None and not _digitsRe.match(rport):
        raise SIPParseError("bad Via rport %r" % (rport,))
    return Via(m.group(3).upper(), h.group(1), checkPort(h.group(2)),
               params, m.group(1).upper(), m.group(2))


class CSeq:
    """
    @ivar number: the sequence number, 0 to 2**31-1.
    @ivar method: the method, case-sensitive.
    """
    __slots__ = ("number", "method")

    def __init__(self, number, method):
        self.number = number
        self.method = method

    def __str__(self):
        return "%d %s" % (self.number, self.method)

    def __eq__(self, other):
        return (isinstance(other, CSeq) and
                (self.number, self.method) == (other.number, other.method))

    def __repr__(self):
        return "CSeq(%d, %r)" % (self.number, self.method)


def parseScalar(name, value, limit):
    """
    Parse a non-negative decimal header value (Max-Forwards, Expires,
    Content-Length) no larger than C{limit}.

    @raise SIPParseError: not digits, or over the limit (RFC 4475
        scalar02).
    """
    value = value.strip()
    if not _digitsRe.match(value):
        raise SIPParseError("bad %s %r" % (name, value))
    number = int(value)
    if number > limit:
        raise SIPParseError("%s out of range: %s" % (name, value))
    return number


def parseCallId(value):
    """
    Parse a Call-ID: one word without whitespace.

    @raise SIPParseError: empty or containing whitespace.
    """
    value = value.strip()
    if not _callIdRe.match(value):
        raise SIPParseError("bad Call-ID %r" % (value,))
    return value


def parseCSeq(value):
    """
    Parse a CSeq into a L{CSeq}; the number must be below 2**31
    (RFC 3261 section 8.1.1.5).

    @raise SIPParseError: malformed, negative or too large.
    """
    m = _cseqRe.match(value)
    if not m:
        raise SIPParseError("bad CSeq %r" % (value,))
    number = int(m.group(1))
    if number >= 2 ** 31:
        raise SIPParseError("CSeq out of range: %s" % (m.group(1),))
    return CSeq(number, m.group(2))
