# -*- test-case-name: tests.sip.test_message -*-
"""
SIP message layer: parse and serialize RFC 3261 requests and responses.

Parsing is lazy in the manner of Kamailio's C{parse_headers}:
L{parseMessage} only splits the start line, the header lines and the body,
and checks what framing and routing cannot do without (the start line,
the presence of the mandatory headers, Content-Length).  Each typed
header (L{Message.via}, L{Message.cseq}, ...) is parsed the first time it
is asked for and cached, so a proxy that only looks at Via, CSeq and
Call-ID never pays for Contact or Record-Route.

The parser is strict where RFC 3261 is (request line, Content-Length,
scalar ranges) and tolerant where RFC 4475 asks (any case in header
names, LWS around colons, slashes and parameters, folded lines, compact
forms, escaped characters, unknown URI schemes).

Header text is decoded as UTF-8 with C{surrogateescape}, so that
non-UTF-8 bytes survive a parse/serialize round trip unchanged.
"""

import re

from cgpro.sip.headers import (
    _METHODS, COMPACT_FORMS, CSeq, NameAddr, Via, canonicalName, parseCallId,
    parseCSeq, parseNameAddr, parseScalar, parseVia, splitQuoted)
from cgpro.sip.uri import (
    AbsoluteURI, SIPParseError, SIPURI, _ENCODING, _ERRORS, _tokenRe,
    parseURI)

__all__ = [
    "AbsoluteURI", "COMPACT_FORMS", "CSeq", "DEFAULT_MAX_SIZE", "Message",
    "NameAddr", "Request", "Response", "SIPParseError", "SIPURI",
    "StreamFramer", "Via", "canonicalName", "parseMessage", "parseNameAddr",
    "parseURI", "parseVia", "splitQuoted"]

DEFAULT_MAX_SIZE = 65535

# Header name exactly as written -> canonical name: one dict hit per
# header line on the hot path instead of a regex and a case fold.
_nameCache = {}
_foldRe = re.compile(r"\r?\n[ \t]+")
_statusRe = re.compile(r"(SIP/\d+\.\d+) ([1-6]\d\d) (.*)\Z", re.S | re.I)
_versionRe = re.compile(r"SIP/\d+\.\d+\Z", re.I)

_REQUIRED = ("To", "From", "CSeq", "Call-ID", "Via")
_REQUIRED_SET = frozenset(_REQUIRED)
_new = object.__new__
_cacheMissing = object()


def _parseMaxForwards(value):
    return parseScalar("Max-Forwards", value, 255)


def _parseExpires(value):
    return parseScalar("Expires", value, 2 ** 32 - 1)


def _parseContentLength(value):
    return parseScalar("Content-Length", value, 2 ** 31)


class Message:
    """
    What requests and responses share: headers, body, lazy accessors.

    @ivar version: the SIP version string, e.g. C{"SIP/2.0"}.
    @ivar headers: ordered list of C{[canonical name, raw value]}, values
        unfolded and stripped.
    @ivar body: the body as L{bytes}.
    """
    __slots__ = ("version", "headers", "body", "_cache")

    def __init__(self, version="SIP/2.0", headers=None, body=b""):
        self.version = version
        self.headers = [[canonicalName(n), v] for n, v in (headers or [])]
        self.body = body
        self._cache = {}

    def getHeaders(self, name):
        """
        @return: the raw values of every header called C{name} (any case,
            compact form allowed), in order.
        """
        name = canonicalName(name)
        return [v for n, v in self.headers if n == name]

    def getHeader(self, name):
        """
        @return: the raw value of the first header C{name}, or L{None}.
        """
        name = canonicalName(name)
        for n, v in self.headers:
            if n == name:
                return v
        return None

    def addHeader(self, name, value):
        """Append a header."""
        self.headers.append([canonicalName(name), value])
        self._cache.clear()

    def setHeader(self, name, value):
        """Replace every header C{name} with one, at the first's place."""
        name = canonicalName(name)
        for i, (n, _) in enumerate(self.headers):
            if n == name:
                self.headers[i] = [name, value]
                self.headers[i + 1:] = [h for h in self.headers[i + 1:]
                                        if h[0] != name]
                break
        else:
            self.headers.append([name, value])
        self._cache.clear()

    def removeHeader(self, name):
        """Remove every header C{name}."""
        name = canonicalName(name)
        self.headers = [h for h in self.headers if h[0] != name]
        self._cache.clear()

    # The typed accessors below pass canonical names, so they scan
    # self.headers directly instead of going through getHeaders.

    def _listOf(self, name, parser):
        result = self._cache.get(name, _cacheMissing)
        if result is _cacheMissing:
            result = []
            for n, value in self.headers:
                if n == name:
                    if "," in value:
                        for element in splitQuoted(value, ","):
                            if element.strip():
                                result.append(parser(element))
                    elif value:
                        splitQuoted(value, ",")  # closure checks only
                        result.append(parser(value))
            self._cache[name] = result
        return result

    def _single(self, name, parser):
        result = self._cache.get(name, _cacheMissing)
        if result is _cacheMissing:
            found = None
            for n, value in self.headers:
                if n == name:
                    if found is not None:
                        raise SIPParseError("more than one %s header" % (name,))
                    found = value
            result = None if found is None else parser(found)
            self._cache[name] = result
        return result

    @property
    def via(self):
        """The list of L{Via} elements, topmost first."""
        try:
            return self._cache["Via"]
        except KeyError:
            return self._listOf("Via", parseVia)

    @property
    def contact(self):
        """The list of Contact L{NameAddr}s (a wildcard one for C{*})."""
        contacts = self._listOf("Contact", parseNameAddr)
        if len(contacts) > 1 and any(c.wildcard for c in contacts):
            raise SIPParseError("Contact * mixed with other contacts")
        return contacts

    @property
    def route(self):
        """The list of Route L{NameAddr}s."""
        return self._listOf("Route", parseNameAddr)

    @property
    def recordRoute(self):
        """The list of Record-Route L{NameAddr}s."""
        return self._listOf("Record-Route", parseNameAddr)

    @property
    def fromAddr(self):
        """The From L{NameAddr}."""
        try:
            return self._cache["From"]
        except KeyError:
            return self._single("From", parseNameAddr)

    @property
    def toAddr(self):
        """The To L{NameAddr}."""
        try:
            return self._cache["To"]
        except KeyError:
            return self._single("To", parseNameAddr)

    @property
    def callId(self):
        """The Call-ID string."""
        try:
            return self._cache["Call-ID"]
        except KeyError:
            return self._single("Call-ID", parseCallId)

    @property
    def cseq(self):
        """The L{CSeq}."""
        try:
            return self._cache["CSeq"]
        except KeyError:
            return self._single("CSeq", parseCSeq)

    @property
    def maxForwards(self):
        """The Max-Forwards value (0-255), or L{None}."""
        try:
            return self._cache["Max-Forwards"]
        except KeyError:
            return self._single("Max-Forwards", _parseMaxForwards)

    @property
    def expires(self):
        """The Expires value in seconds, or L{None}."""
        try:
            return self._cache["Expires"]
        except KeyError:
            return self._single("Expires", _parseExpires)

    @property
    def contentLength(self):
        """The Content-Length value, or L{None} if absent."""
        try:
            return self._cache["Content-Length"]
        except KeyError:
            return self._single("Content-Length", _parseContentLength)

    @property
    def contentType(self):
        """The Content-Type value, stripped, or L{None}."""
        try:
            return self._cache["Content-Type"]
        except KeyError:
            return self._single("Content-Type", str.strip)

    def validate(self):
        """
        Parse every header RFC 3261 section 8.1.1 requires, so that a
        malformed one is reported now (and answered with 400) rather than
        deep inside the transaction layer.

        @raise SIPParseError: a mandatory header is malformed.
        """
        if not self.via:
            raise SIPParseError("missing Via")
        self.fromAddr, self.toAddr, self.callId, self.cseq
        self.maxForwards, self.contentLength

    def _startLine(self):
        raise NotImplementedError()

    def serialize(self):
        """
        Write the message with canonical header names and a Content-Length
        that matches the body.

        @rtype: L{bytes}
        """
        lines = [self._startLine()]
        for name, value in self.headers:
            if name != "Content-Length":
                lines.append("%s: %s" % (name, value))
        lines.append("Content-Length: %d" % (len(self.body),))
        lines.append("")
        lines.append("")
        return "\r\n".join(lines).encode(_ENCODING, _ERRORS) + self.body


class Request(Message):
    """
    A SIP request.

    @ivar method: the method, case-sensitive (RFC 3261 section 7.1).
    @ivar requestURI: a L{SIPURI} or L{AbsoluteURI}.
    """
    __slots__ = ("method", "requestURI")

    def __init__(self, method, requestURI, version="SIP/2.0", headers=None,
                 body=b""):
        Message.__init__(self, version, headers, body)
        self.method = method
        self.requestURI = requestURI

    def validate(self):
        """
        As L{Message.validate}, plus Max-Forwards presence and the CSeq
        method matching the request method.
        """
        Message.validate(self)
        if self.maxForwards is None:
            raise SIPParseError("missing Max-Forwards")
        if self.cseq.method != self.method:
            raise SIPParseError("CSeq method %s does not match %s"
                                % (self.cseq.method, self.method))

    def _startLine(self):
        return "%s %s %s" % (self.method, self.requestURI, self.version)


class Response(Message):
    """
    A SIP response.

    @ivar code: the status code, 100-699.
    @ivar reason: the reason phrase (may be empty).
    """
    __slots__ = ("code", "reason")

    def __init__(self, code, reason, version="SIP/2.0", headers=None,
                 body=b""):
        Message.__init__(self, version, headers, body)
        self.code = code
        self.reason = reason

    def _startLine(self):
        return "%s %d %s" % (self.version, self.code, self.reason)


def _splitHead(data):
    """
    Split C{data} into header text and body at the first empty line.
    """
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        return data[:end], data[end + 4:]
    end = data.find(b"\n\n")  # tolerated: bare LF line ends
    if end >= 0:
        return data[:end], data[end + 2:]
    return data, None


def parseMessage(data, stream=False, maxSize=DEFAULT_MAX_SIZE):
    """
    Parse one SIP message.

    Only the start line, the header lines and the body are split here;
    typed headers are parsed on access (see L{Message}).

    @param data: the whole message (a datagram, or a frame cut by
        L{StreamFramer}).
    @type data: L{bytes}
    @param stream: C{True} for a stream transport, where Content-Length is
        required (RFC 3261 section 18.3).
    @param maxSize: the largest message accepted, in bytes.
    @rtype: L{Request} or L{Response}
    @raise SIPParseError: the message is malformed, with the reason.
    """
    if len(data) > maxSize:
        raise SIPParseError("message too large (%d > %d bytes)"
                            % (len(data), maxSize))
    head, body = _splitHead(data)
    if body is None:
        if stream:
            raise SIPParseError("no end of headers")
        body = b""
    text = head.decode(_ENCODING, _ERRORS)
    text = text.lstrip("\r\n")
    if "\n " in text or "\n\t" in text:
        text = _foldRe.sub(" ", text)
    if text.count("\n") == text.count("\r\n"):
        lines = text.split("\r\n")
    else:  # tolerated: bare LF line ends
        lines = [line.rstrip("\r") for line in text.split("\n")]
    startLine = lines[0]
    if startLine[:4].upper() == "SIP/":
        m = _statusRe.match(startLine)
        if not m:
            raise SIPParseError("bad status line %r" % (startLine,))
        message = Response(int(m.group(2)), m.group(3), m.group(1).upper())
    else:
        parts = startLine.split(" ")
        if len(parts) != 3:
            raise SIPParseError("bad request line %r" % (startLine,))
        method, uri, version = parts
        if method not in _METHODS and not _tokenRe.match(method):
            raise SIPParseError("bad method %r" % (method,))
        if version != "SIP/2.0":
            if not _versionRe.match(version):
                raise SIPParseError("bad SIP version %r" % (version,))
            version = version.upper()
        requestURI = parseURI(uri)
        if getattr(requestURI, "headers", None):
            # RFC 3261 section 19.1.1: never in a Request-URI (RFC 4475
            # escruri).
            raise SIPParseError("headers in Request-URI %r" % (uri,))
        message = _new(Request)
        message.method = method
        message.requestURI = requestURI
        message.version = version
        message.headers = []
        message.body = b""
        message._cache = {}
    headers = message.headers
    seen = set()
    cache = _nameCache
    append = headers.append
    see = seen.add
    length = None
    for line in lines[1:]:
        raw, colon, value = line.partition(":")
        name = cache.get(raw)
        if name is None or not colon:
            stripped = raw.rstrip(" \t")
            if not colon or not _tokenRe.match(stripped):
                raise SIPParseError("bad header line %r" % (line,))
            name = canonicalName(stripped)
            if len(cache) < 4096:  # bounded: names come from the wire
                cache[raw] = name
        see(name)
        append([name, value.strip()])
    if len(seen) < 5 or not _REQUIRED_SET.issubset(seen):
        for name in _REQUIRED:
            if name not in seen:
                raise SIPParseError("missing %s" % (name,))
    if message.__class__ is Request and "Max-Forwards" not in seen:
        raise SIPParseError("missing Max-Forwards")
    if "Content-Length" in seen:
        length = message.contentLength
    if length is None:
        if stream:
            raise SIPParseError("missing Content-Length on a stream")
    elif length > len(body):
        raise SIPParseError("Content-Length %d exceeds body of %d bytes"
                            % (length, len(body)))
    elif length < len(body):
        if stream:
            raise SIPParseError("bytes after body")
        body = body[:length]  # RFC 3261 section 18.3: discard the rest
    message.body = body
    return message


_lengthRe = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*(\d+)[ \t]*\r?$",
                       re.I | re.M)


class StreamFramer:
    """
    Cut a TCP/TLS byte stream into SIP messages by Content-Length.

    CRLF keep-alives between messages (RFC 5626 section 4.4.1) are
    skipped; a double CRLF ping is reported to C{pingReceived} so the
    transport can answer with a single CRLF pong.

    @ivar messageReceived: called with each parsed message.
    @ivar pingReceived: called with no argument on each C{CRLFCRLF} ping.
    """

    def __init__(self, messageReceived, pingReceived=None,
                 maxSize=DEFAULT_MAX_SIZE):
        """
        @param messageReceived: one-argument callable for each message.
        @param pingReceived: zero-argument callable, or L{None}.
        @param maxSize: the largest message accepted; a longer header
            section or Content-Length raises L{SIPParseError}, after which
            the connection should be closed.
        """
        self.messageReceived = messageReceived
        self.pingReceived = pingReceived
        self.maxSize = maxSize
        self._buffer = b""

    def dataReceived(self, data):
        """
        Feed bytes; deliver every complete message.

        @raise SIPParseError: a message is malformed or too large; the
            stream cannot be resynchronized.
        """
        buf = self._buffer + data
        while True:
            if buf[:1] in (b"\r", b"\n"):
                if buf[:4] == b"\r\n\r\n" and self.pingReceived is not None:
                    self.pingReceived()
                buf = buf.lstrip(b"\r\n")
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > self.maxSize:
                    raise SIPParseError("header section too large")
                break
            head = buf[:end]
            m = _lengthRe.search(head)
            if not m:
                raise SIPParseError("missing Content-Length on a stream")
            total = end + 4 + int(m.group(1))
            if total > self.maxSize:
                raise SIPParseError("message too large (%d > %d bytes)"
                                    % (total, self.maxSize))
            if len(buf) < total:
                break
            frame, buf = buf[:total], buf[total:]
            self._buffer = buf
            self.messageReceived(parseMessage(frame, True, self.maxSize))
        self._buffer = buf

