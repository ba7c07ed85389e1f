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
    SIPParseError, _TOKEN, _hostRe, _tokenRe, checkPort,
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


# Canonical spellings seen so far, mapped to themselves: the stack's own
# lookups (getHeaders("Via"), ...) hit this without lower-casing.
_isCanonical = dict((v, v) for v in _canonical.values())


def canonicalName(name):
    """
    Return the canonical spelling of a header name: compact forms are
    expanded, known names get their RFC spelling, others title case.

    @param name: a header name in any case.
    @type name: L{str}
    @rtype: L{str}
    """
    result = _isCanonical.get(name)
    if result is not None:
        return result
    lower = name.lower()
    result = _canonical.get(lower)
    if result is None:
        result = "-".join(part.capitalize() for part in lower.split("-"))
        if len(_canonical) < 4096:  # bounded: names come from the wire
            _canonical[lower] = result
            _isCanonical[result] = result
    return result


_cseqRe = re.compile(r"[ \t]*([0-9]+)[ \t]+(" + _TOKEN + r")[ \t]*\Z")
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
    if sep not in text:
        # nothing to split (one Contact, one Route): only check closure
        if "<" in text and ">" not in text[text.index("<"):]:
            raise SIPParseError("unterminated <")
        if '"' in text and not _quotesClosed(text):
            raise SIPParseError("unterminated quoted string")
        return [text]
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


def _quotesClosed(text):
    i, n = text.index('"'), len(text)
    while i < n:
        if text[i] == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            if i >= n:
                return False
        i += 1
    return True


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


def _newNameAddr(uri, params):
    addr = _new(NameAddr)
    addr.uri = uri
    addr.displayName = None
    addr.params = params
    addr.wildcard = False
    return addr


_new = object.__new__


def parseNameAddr(text):
    """
    Parse one name-addr or addr-spec followed by header parameters.

    In the addr-spec form a C{;} ends the URI: parameters belong to the
    header (RFC 3261 section 20.10).

    @raise SIPParseError: the value is malformed.
    """
    text = text.strip()
    if text[:1] == "<":
        # fast path: <URI> followed by parameters, no display name
        gt = text.find(">")
        if gt > 0:
            uri = parseURI(text[1:gt])
            rest = text[gt + 1:]
            params = []
            if rest:
                rest = rest.strip()
                if rest:
                    if rest[0] != ";":
                        raise SIPParseError("junk after address: %r" % (rest,))
                    params = parseParams(splitQuoted(rest[1:], ";"))
            return _newNameAddr(uri, params)
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
    if text[:8] == "SIP/2.0/":
        # fast path: "SIP/2.0/UDP host:port;params" as (nearly) every
        # client writes it; anything else takes the regex below
        sp = text.find(" ", 8)
        transport = text[8:sp]
        rest = text[sp + 1:]
        if (sp > 8 and _plainTokenRe.match(transport) and rest
                and rest[0] not in " \t" and '"' not in rest
                and "\t" not in rest and " " not in rest):
            return _finishVia("SIP", "2.0", transport.upper(), rest.split(";"))
    m = _viaRe.match(text)
    if not m:
        raise SIPParseError("bad Via %r" % (text.strip(),))
    return _finishVia(m.group(1).upper(), m.group(2), m.group(3).upper(),
                      splitQuoted(m.group(4), ";"))


_plainTokenRe = re.compile(_TOKEN + r"\Z")


def _finishVia(protocol, version, transport, parts):
    sentBy = parts[0]
    h = _hostRe.match(sentBy)
    if not h:
        sentBy = "".join(sentBy.split())
        h = _hostRe.match(sentBy)
        if not h:
            raise SIPParseError("bad Via sent-by %r" % (sentBy,))
    params = parseParams(parts[1:]) if len(parts) > 1 else []
    for name, rport in params:
        if name == "rport":
            if rport is not None and not (rport.isascii() and rport.isdigit()):
                raise SIPParseError("bad Via rport %r" % (rport,))
            break
    host, port = h.groups()
    via = _new(Via)
    via.protocol = protocol
    via.version = version
    via.transport = transport
    via.host = host
    via.port = None if port is None else checkPort(port)
    via.params = params
    return via


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
    if not (value.isdigit() and value.isascii()):
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
    digits, sp, method = value.partition(" ")
    if (sp and digits.isdigit() and digits.isascii()
            and method in _METHODS):
        # fast path: "1 REGISTER"
        pass
    else:
        m = _cseqRe.match(value)
        if not m:
            raise SIPParseError("bad CSeq %r" % (value,))
        digits, method = m.groups()
    number = int(digits)
    if number >= 2 ** 31:
        raise SIPParseError("CSeq out of range: %s" % (digits,))
    cseq = _new(CSeq)
    cseq.number = number
    cseq.method = method
    return cseq


# Methods the CSeq fast path accepts without the regex (any other token
# still parses, through it).
_METHODS = frozenset((
    "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK",
    "SUBSCRIBE", "NOTIFY", "PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE"))
