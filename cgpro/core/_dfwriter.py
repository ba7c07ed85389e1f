# -*- test-case-name: tests.core.test_dataformat -*-
"""
The writer of the data format: L{dumps} (one line) and L{dumpsFile} (the
indented layout of settings files).

This is a private part of L{cgpro.core.dataformat}, which re-exports
L{dumps} and L{dumpsFile}, so import them from there.  The writer is a
module of its own because it shares no code with the reader, only the value
types of L{cgpro.core._dftypes}.  Its output rules (atoms versus quoted
strings, escapes, key order, layout) are described in the docstring of
L{cgpro.core.dataformat}.
"""

import binascii
import datetime
import re

from cgpro.core._dftypes import (
    MAX_DEPTH,
    DataFormatError,
    IPAddress,
    Opaque,
    XMLObject,
    _INT_MAX,
    _INT_MIN,
    _TimeSentinel,
)

__all__ = ["dumps", "dumpsFile"]

# XML: enough of the grammar to find the line breaks that may be replaced.
_LINEBREAK = re.compile(r"\r\n|\r|\n")
_XML_TOKEN = re.compile(
    r"""<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>"""
    r"""|<!(?:[^>\[\]"']|"[^"]*"|'[^']*'|\[[^\]]*\])*>"""
    r"""|<(?:[^>"']|"[^"]*"|'[^']*')*>|[^<]+""", re.S)


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

