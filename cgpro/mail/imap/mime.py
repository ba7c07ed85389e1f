# -*- test-case-name: tests.mail.imap.test_mime -*-
"""
The MIME structure of a stored message, as byte offsets into its file.

FETCH BODY[1.2.MIME] and BODYSTRUCTURE must describe the message exactly as
stored, byte for byte; Python's C{email} package re-serializes parts
(changing line ends, folding, boundaries), so this module only finds where
each part's header and body start and end, and parses the few header
fields IMAP reports.  Nesting is bounded (L{MAX_DEPTH}) so a hostile
message cannot exhaust the stack.
"""

import re
from email.header import decode_header, make_header

#: Deepest MIME nesting parsed; deeper parts are treated as opaque.
MAX_DEPTH = 32

_PARAM = re.compile(r';\s*([^=\s;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]*)')
_LINE_END = re.compile(r"\r?\n")


class Part:
    """
    One MIME part (the whole message is the root part).

    @ivar start: offset of its header.
    @ivar bodyStart: offset of its body (after the blank line).
    @ivar end: offset after its body.
    @ivar headers: C{[(NAME, value)]}, names upper case, values unfolded.
    @ivar mainType: lower-case type (C{"text"}); C{subType} likewise.
    @ivar params: C{[(name, value)]} of Content-Type.
    @ivar children: the parts of a multipart, else C{None}.
    @ivar message: the encapsulated message of a message/rfc822 part.
    """

    __slots__ = ("start", "bodyStart", "end", "headers", "mainType", "subType", "params",
                 "children", "message")

    def header(self, name):
        """
        @return: the first value of header C{name} (upper case), or C{None}.
        """
        for key, value in self.headers:
            if key == name:
                return value
        return None


def parseParams(value):
    """
    @return: C{(mainValue, [(name, value)])} of a structured header such as
        Content-Type or Content-Disposition.
    """
    head, sep, rest = value.partition(";")
    params = []
    for m in _PARAM.finditer(sep + rest):
        v = m.group(2)
        if v.startswith('"') and v.endswith('"') and len(v) >= 2:
            v = re.sub(r"\\(.)", r"\1", v[1:-1])
        params.append((m.group(1), v))
    return head.strip(), params


def parseHeaders(block):
    """
    @param block: header bytes.
    @return: C{[(NAME, value)]} with continuation lines unfolded.
    """
    headers = []
    for line in _LINE_END.split(block.decode("utf-8", "surrogateescape")):
        if not line:
            continue
        if line[0] in " \t" and headers:
            name, value = headers[-1]
            headers[-1] = (name, value + " " + line.strip())
            continue
        name, sep, value = line.partition(":")
        if sep and name and " " not in name.strip():
            headers.append((name.strip().upper(), value.strip()))
    return headers


def _headerEnd(data, start, end):
    """
    @return: C{(bodyStart, headerEnd)}.
    """
    if data.startswith(b"\r\n", start):
        return start + 2, start
    if data.startswith(b"\n", start):
        return start + 1, start
    i = data.find(b"\r\n\r\n", start, end)
    j = data.find(b"\n\n", start, end)
    if i >= 0 and (j < 0 or i <= j):
        return i + 4, i + 2
    if j >= 0:
        return j + 2, j + 1
    return end, end


def parse(data, start=0, end=None, default=("text", "plain"), depth=0):
    """
    @param data: the whole message (C{bytes}).
    @return: the root L{Part} of C{data[start:end]}.
    """
    if end is None:
        end = len(data)
    part = Part()
    part.start = start
    part.end = end
    part.bodyStart, headerEnd = _headerEnd(data, start, end)
    part.headers = parseHeaders(data[start:headerEnd])
    part.children = None
    part.message = None
    ctype = part.header("CONTENT-TYPE")
    mainType, subType = default
    params = []
    if ctype:
        value, params = parseParams(ctype)
        kind, slash, sub = value.partition("/")
        if slash and kind.strip() and sub.strip():
            mainType, subType = kind.strip().lower(), sub.strip().lower()
        else:
            mainType, subType, params = "text", "plain", [p for p in params
                                                          if p[0].lower() == "charset"]
    part.mainType, part.subType, part.params = mainType, subType, params
    if depth >= MAX_DEPTH:
        return part
    if mainType == "multipart":
        boundary = dict((k.lower(), v) for k, v in params).get("boundary")
        if boundary:
            childDefault = ("message", "rfc822") if subType == "digest" else ("text", "plain")
            part.children = [parse(data, s, e, childDefault, depth + 1)
                             for s, e in _splitMultipart(data, part.bodyStart, end,
                                                         boundary.encode("utf-8", "replace"))]
        if not part.children:
            part.children = None
            part.mainType, part.subType = "text", "plain"
    elif mainType == "message" and subType in ("rfc822", "global"):
        part.message = parse(data, part.bodyStart, end, ("text", "plain"), depth + 1)
    return part


def _splitMultipart(data, start, end, boundary):
    """
    @return: C{[(start, end)]} of the parts between the delimiters.
    """
    delimiter = b"--" + boundary
    spans = []
    pos = start
    current = None
    while pos < end:
        i = data.find(delimiter, pos, end)
        if i < 0:
            break
        if i != start and data[i - 1:i] != b"\n":
            pos = i + len(delimiter)
            continue
        lineEnd = data.find(b"\n", i, end)
        lineEnd = end if lineEnd < 0 else lineEnd + 1
        closing = data.startswith(b"--", i + len(delimiter))
        if current is not None:
            stop = i
            if stop > current and data[stop - 1:stop] == b"\n":
                stop -= 1
                if stop > current and data[stop - 1:stop] == b"\r":
                    stop -= 1
            spans.append((current, max(current, stop)))
        if closing:
            current = None
            break
        current = lineEnd
        pos = lineEnd
        if len(spans) > 10000:
            break
    if current is not None and current < end:
        spans.append((current, end))
    return spans


def findPart(root, numbers):
    """
    The part a section's numbers name (RFC 3501 6.4.5).

    @return: the L{Part}, or C{None} if there is no such part.
    """
    container = root
    part = root
    for k, n in enumerate(numbers):
        if container.children is not None:
            if n > len(container.children):
                return None
            part = container.children[n - 1]
        elif n == 1:
            part = container
        else:
            return None
        if k + 1 < len(numbers):
            container = part.message if part.message is not None else part
    return part


def lineCount(data, start, end):
    return data.count(b"\n", start, end)


def decodedHeader(value):
    """
    @return: a header value with its encoded words decoded (for SEARCH).
    """
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except Exception:
        return value


def headerFields(data, part, fields, exclude):
    """
    The header lines of C{part} named (or, with C{exclude}, not named) in
    C{fields}, as stored, followed by the blank line.
    """
    block = data[part.start:part.bodyStart]
    lines = re.split(rb"(?<=\n)", block)
    out = []
    keep = False
    wanted = set(f.encode("utf-8", "replace") for f in fields)
    for line in lines:
        if not line or line in (b"\r\n", b"\n"):
            continue
        if line[:1] in (b" ", b"\t"):
            if keep:
                out.append(line)
            continue
        name = line.split(b":", 1)[0].strip().upper()
        keep = (name in wanted) != exclude
        if keep:
            out.append(line)
    out.append(b"\r\n")
    return b"".join(out)
