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

The code is split by job: the value types are in L{cgpro.core._dftypes},
the writer is in L{cgpro.core._dfwriter}, and the reader, L{loads} and the
settings helpers (L{parseSize}, L{parseDuration}) are here.  This module
re-exports all of them, so it stays the only one to import from.
"""

import binascii
import datetime
import ipaddress
import re

from cgpro.core._dftypes import (
    FUTURE,
    MAX_DEPTH,
    PAST,
    DataFormatError,
    IPAddress,
    Opaque,
    XMLObject,
    _INT_MAX,
    _INT_MIN,
    _OPAQUE,
    _XML_WS,
    _scanXML,
)
from cgpro.core._dfwriter import dumps, dumpsFile

__all__ = [
    "DataFormatError", "IPAddress", "XMLObject", "Opaque", "PAST", "FUTURE",
    "Reader", "loads", "dumps", "dumpsFile", "parseSize", "parseDuration",
    "MAX_DEPTH",
]


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
