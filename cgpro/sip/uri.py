# -*- test-case-name: tests.sip.test_message -*-
"""
SIP, SIPS and tel URIs (RFC 3261 section 19.1, RFC 3966) and the small
lexical helpers (escapes, parameters) that headers share with them.

The user part and URI headers are kept decoded, so that comparisons see
C{%61lice} and C{alice} as one user; L{SIPURI.__str__} escapes again.
"""

import re

_ENCODING = "utf-8"
_ERRORS = "surrogateescape"


class SIPParseError(ValueError):
    """
    A message or header is malformed.  The argument is a human-readable
    reason, suitable for the reason phrase of a 400 response.
    """


_TOKEN = r"[A-Za-z0-9.!%*_+`'~-]+"
_tokenRe = re.compile(_TOKEN + r"\Z")
_digitsRe = re.compile(r"\d+\Z")
_hostRe = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(\d+))?\Z")

# Characters that may stay raw in the user part (RFC 3261 section 25.1:
# unreserved and user-unreserved); everything else is %-escaped.
_USER_SAFE = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    "-_.!~*'()&=+$,;?/")
_PASSWORD_SAFE = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    "-_.!~*'()&=+$,")


def unescape(text):
    """
    Decode C{%HH} escapes (RFC 3261 section 25.1).

    @raise SIPParseError: a C{%} is not followed by two hex digits.
    """
    if "%" not in text:
        return text
    if re.search(r"%(?![0-9A-Fa-f]{2})", text):
        raise SIPParseError("bad escape in %r" % (text,))
    raw = text.encode(_ENCODING, _ERRORS)
    raw = re.sub(rb"%([0-9A-Fa-f]{2})",
                 lambda m: bytes([int(m.group(1), 16)]), raw)
    return raw.decode(_ENCODING, _ERRORS)


def escape(text, safe=_USER_SAFE):
    """
    Escape every character not in C{safe}, byte by byte in UTF-8.
    """
    if all(c in safe for c in text):
        return text
    out = []
    for c in text:
        if c in safe:
            out.append(c)
        else:
            out.extend("%%%02X" % b for b in c.encode(_ENCODING, _ERRORS))
    return "".join(out)


def parseParams(parts):
    """
    Parse C{name[=value]} parameters, tolerating LWS around C{=}.

    @param parts: the texts between C{;} separators.
    @return: a list of C{(lower-case name, value or None)}.
    """
    params = []
    for part in parts:
        name, eq, value = part.partition("=")
        name = name.strip()
        if not _tokenRe.match(name):
            raise SIPParseError("bad parameter %r" % (part.strip(),))
        value = value.strip() if eq else None
        if eq and not value:
            raise SIPParseError("empty value for parameter %r" % (name,))
        params.append((name.lower(), value))
    return params


def formatParams(params):
    return "".join(";%s" % n if v is None else ";%s=%s" % (n, v)
                   for n, v in params)


def getParam(params, name):
    for n, v in params:
        if n == name:
            return v
    return None


def checkPort(port):
    if port is None:
        return None
    value = int(port)
    if value > 65535:
        raise SIPParseError("port out of range: %s" % (port,))
    return value


class AbsoluteURI:
    """
    A URI of a scheme this stack does not interpret (RFC 4475 accepts
    C{nosuchscheme:...} in a Request-URI; a proxy answers 416 later).

    @ivar scheme: the lower-case scheme.
    @ivar opaque: everything after the colon, unchanged.
    """
    __slots__ = ("scheme", "opaque")

    def __init__(self, scheme, opaque):
        self.scheme = scheme
        self.opaque = opaque

    def __str__(self):
        return "%s:%s" % (self.scheme, self.opaque)

    def __eq__(self, other):
        return (isinstance(other, AbsoluteURI) and
                (self.scheme, self.opaque) == (other.scheme, other.opaque))

    def __repr__(self):
        return "AbsoluteURI(%r)" % (str(self),)


class SIPURI:
    """
    A sip:, sips: or tel: URI.

    @ivar scheme: C{"sip"}, C{"sips"} or C{"tel"}.
    @ivar user: the user part with escapes decoded (the number for tel),
        or L{None}.
    @ivar password: the password, escapes decoded, or L{None}.
    @ivar host: the host: a domain, an IPv4 address or an IPv6 reference
        in brackets; L{None} for tel.
    @ivar port: an L{int} or L{None}.
    @ivar params: ordered C{(lower-case name, value or None)} list.
    @ivar headers: ordered C{(name, value)} list, escapes decoded.
    """
    __slots__ = ("scheme", "user", "password", "host", "port", "params",
                 "headers")

    def __init__(self, scheme="sip", user=None, host=None, port=None,
                 params=None, headers=None, password=None):
        self.scheme = scheme
        self.user = user
        self.password = password
        self.host = host
        self.port = port
        self.params = list(params or [])
        self.headers = list(headers or [])

    def getParam(self, name):
        """
        @return: the value of the URI parameter C{name} (C{None} if absent
            or valueless; use L{hasParam} to tell those apart).
        """
        return getParam(self.params, name.lower())

    def hasParam(self, name):
        """
        @return: whether the URI carries parameter C{name}.
        """
        name = name.lower()
        return any(n == name for n, _ in self.params)

    def __str__(self):
        if self.scheme == "tel":
            return "tel:%s%s" % (self.user, formatParams(self.params))
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(escape(self.user))
            if self.password is not None:
                out.append(":" + escape(self.password, _PASSWORD_SAFE))
            out.append("@")
        out.append(self.host)
        if self.port is not None:
            out.append(":%d" % self.port)
        out.append(formatParams(self.params))
        if self.headers:
            out.append("?" + "&".join(
                "%s=%s" % (escape(k, _PASSWORD_SAFE), escape(v, _PASSWORD_SAFE))
                for k, v in self.headers))
        return "".join(out)

    def _key(self):
        return (self.scheme, self.user, self.password,
                self.host.lower() if self.host else None, self.port,
                self.params, self.headers)

    def __eq__(self, other):
        return isinstance(other, SIPURI) and self._key() == other._key()

    def __repr__(self):
        return "SIPURI(%r)" % (str(self),)


def parseURI(text):
    """
    Parse a URI: sip, sips and tel into L{SIPURI}, other schemes into
    L{AbsoluteURI}.

    @raise SIPParseError: the URI is malformed.
    """
    scheme, colon, rest = text.partition(":")
    scheme = scheme.lower()
    if not colon or not re.match(r"[a-z][a-z0-9+.-]*\Z", scheme):
        raise SIPParseError("bad URI %r" % (text,))
    if any(c in rest for c in " \t\r\n"):
        raise SIPParseError("whitespace in URI %r" % (text,))
    if scheme == "tel":
        parts = rest.split(";")
        if not parts[0]:
            raise SIPParseError("empty tel number")
        return SIPURI("tel", user=unescape(parts[0]),
                      params=parseParams(parts[1:]))
    if scheme not in ("sip", "sips"):
        if not rest:
            raise SIPParseError("bad URI %r" % (text,))
        return AbsoluteURI(scheme, rest)
    user = password = None
    at = rest.find("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1:]
        userPart, colon, pw = userinfo.partition(":")
        if not userPart:
            raise SIPParseError("empty user in URI %r" % (text,))
        user = unescape(userPart)
        if colon:
            password = unescape(pw)
    rest, q, hdrs = rest.partition("?")
    parts = rest.split(";")
    m = _hostRe.match(parts[0])
    if not m:
        raise SIPParseError("bad host in URI %r" % (text,))
    headers = []
    if q:
        for h in hdrs.split("&"):
            k, eq, v = h.partition("=")
            if not k or not eq:
                raise SIPParseError("bad URI header %r" % (h,))
            headers.append((unescape(k), unescape(v)))
    return SIPURI(scheme, user, m.group(1), checkPort(m.group(2)),
                  parseParams(parts[1:]), headers, password)


