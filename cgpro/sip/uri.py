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


def _unsafeRe(safe):
    return re.compile("[^%s]" % ("".join(re.escape(c) for c in sorted(safe)),))


# One C-level scan answers "nothing to escape" (the usual case: every
# URI is turned back into text on the REGISTER path) instead of a
# Python-level loop over the characters.
_UNSAFE = {id(_USER_SAFE): _unsafeRe(_USER_SAFE),
           id(_PASSWORD_SAFE): _unsafeRe(_PASSWORD_SAFE)}


def escape(text, safe=_USER_SAFE):
    """
    Escape every character not in C{safe}, byte by byte in UTF-8.
    """
    unsafe = _UNSAFE.get(id(safe))
    if unsafe is not None:
        if unsafe.search(text) is None:
            return text
    elif all(c in safe for c in text):
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
    append = params.append
    tokenMatch = _tokenRe.match
    for part in parts:
        name, eq, value = part.partition("=")
        if not tokenMatch(name):
            name = name.strip()
            if not tokenMatch(name):
                raise SIPParseError("bad parameter %r" % (part.strip(),))
        if eq:
            value = value.strip()
            if not value:
                raise SIPParseError("empty value for parameter %r" % (name,))
            append((name.lower(), value))
        else:
            append((name.lower(), None))
    return params


def formatParams(params):
    if not params:
        return ""
    return "".join(";" + n if v is None else ";%s=%s" % (n, v)
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
        if self.password is None and not self.headers:
            # the usual shape: scheme:[user@]host[:port][;params]
            user = self.user
            port = self.port
            return "%s:%s%s%s%s" % (
                self.scheme,
                "" if user is None else escape(user) + "@",
                self.host,
                "" if port is None else ":%d" % (port,),
                formatParams(self.params) if self.params else "")
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


_schemeRe = re.compile(r"[a-z][a-z0-9+.-]*\Z")


def _newSIPURI(scheme, user, host, port, params, headers, password):
    # parseURI's constructor: the lists are fresh, no copies needed
    uri = _new(SIPURI)
    uri.scheme = scheme
    uri.user = user
    uri.password = password
    uri.host = host
    uri.port = port
    uri.params = params
    uri.headers = headers
    return uri


_new = object.__new__


def parseURI(text):
    """
    Parse a URI: sip, sips and tel into L{SIPURI}, other schemes into
    L{AbsoluteURI}.

    @raise SIPParseError: the URI is malformed.
    """
    scheme, colon, rest = text.partition(":")
    if scheme != "sip":
        scheme = scheme.lower()
        if not colon or not _schemeRe.match(scheme):
            raise SIPParseError("bad URI %r" % (text,))
    elif not colon:
        raise SIPParseError("bad URI %r" % (text,))
    if " " in rest or "\t" in rest or "\r" in rest or "\n" in rest:
        raise SIPParseError("whitespace in URI %r" % (text,))
    if scheme == "tel":
        parts = rest.split(";")
        if not parts[0]:
            raise SIPParseError("empty tel number")
        return SIPURI("tel", user=unescape(parts[0]),
                      params=parseParams(parts[1:]))
    if scheme != "sip" and scheme != "sips":
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
    headers = []
    if "?" in rest:
        rest, _, hdrs = rest.partition("?")
        for h in hdrs.split("&"):
            k, eq, v = h.partition("=")
            if not k or not eq:
                raise SIPParseError("bad URI header %r" % (h,))
            headers.append((unescape(k), unescape(v)))
    if ";" in rest:
        parts = rest.split(";")
        hostport = parts[0]
        params = parseParams(parts[1:])
    else:
        hostport = rest
        params = []
    m = _hostRe.match(hostport)
    if not m:
        raise SIPParseError("bad host in URI %r" % (text,))
    host, port = m.groups()
    if port is not None:
        port = checkPort(port)
    return _newSIPURI(scheme, user, host, port, params, headers, password)
