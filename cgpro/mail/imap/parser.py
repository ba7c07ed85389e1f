# -*- test-case-name: tests.mail.imap.test_parser -*-
"""
The IMAP grammar: framing commands out of the byte stream, tokens,
sequence sets, FETCH attributes, SEARCH keys, dates and mailbox names.

Nothing here knows about sessions or mailboxes, so every rule can be
tested with plain bytes.  Limits are enforced where input is read, so a
hostile client cannot make the server buffer an endless line or literal,
or recurse without bound on nested parentheses.
"""

import calendar
import re
import time

from cgpro.mail.imap.utf7 import ParseError, decodeMailboxName, encodeMailboxName  # noqa: F401

#: Longest command line (without its literals) accepted.
MAX_LINE = 65536

#: Deepest nesting of parentheses in one command.
MAX_DEPTH = 32

#: Deepest nesting of SEARCH keys (OR/NOT chains, lists).
MAX_SEARCH_DEPTH = 100

#: Most literals in one command.
MAX_LITERALS = 64

_LITERAL = re.compile(rb"\{(\d{1,20})(\+?)\}\Z")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NUMBER = {m.lower(): i + 1 for i, m in enumerate(_MONTHS)}
_DATE = re.compile(r"\A(\d{1,2})-([A-Za-z]{3})-(\d{4})\Z")
_DATETIME = re.compile(
    r"\A ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)\Z")
_ATOM_STOP = frozenset(b' (){"\r\n')
_TAG_BAD = re.compile(rb'[\x00-\x20\x7f-\xff(){%*"\\+\]]')


class Atom(str):
    """An atom (as opposed to a quoted string or literal, given as bytes)."""

    __slots__ = ()


# -- framing --------------------------------------------------------------------


class Framer:
    """
    Cuts the byte stream into commands, literals included.

    L{poll} returns the next event:
      - C{("command", bytes)}: a whole command, literals inline as
        C{{n}CRLF<n bytes>}, without the final CRLF;
      - C{("continue", None)}: a synchronizing literal was announced; the
        server sends C{+} and the client sends it;
      - C{("reject", (tag, text))}: the command was too big; it has been
        (or is being) skipped, the server answers C{tag BAD/NO text};
      - C{("line", bytes)}: in L{lineMode}, one raw line (AUTHENTICATE
        responses, IDLE's DONE);
      - C{None}: more bytes are needed.

    @ivar literalLimit: C{callable(firstLine) -> int}, the largest literal
        accepted in a command starting with that line (APPEND gets more).
    @ivar lineMode: return the next line raw.
    """

    def __init__(self, literalLimit, maxLine=MAX_LINE, maxLiterals=MAX_LITERALS):
        self.literalLimit = literalLimit
        self.maxLine = maxLine
        self.maxLiterals = maxLiterals
        self.lineMode = False
        self._buffer = bytearray()
        self._reset()

    def _reset(self):
        self._parts = []
        self._lineBytes = 0
        self._literals = 0
        self._need = 0
        self._skip = 0
        self._skipLine = False
        self._rejected = None
        self._first = None

    @property
    def buffered(self):
        """
        Bytes held (buffer and the command being assembled).
        """
        return len(self._buffer) + sum(len(p) for p in self._parts)

    def feed(self, data):
        self._buffer += data

    def _tag(self, line):
        tag = bytes(line.split(b" ", 1)[0])[:64]
        if not tag or _TAG_BAD.search(tag):
            return "*"
        return tag.decode("ascii")

    def _reject(self, line, text):
        if self._rejected is None:
            self._rejected = (self._tag(self._first if self._first is not None else line), text)

    def poll(self):
        buf = self._buffer
        while True:
            if self._skip:
                n = min(self._skip, len(buf))
                del buf[:n]
                self._skip -= n
                if self._skip:
                    return None
                continue
            if self._need:
                n = min(self._need, len(buf))
                self._parts.append(bytes(buf[:n]))
                del buf[:n]
                self._need -= n
                if self._need:
                    return None
                continue
            end = buf.find(b"\r\n")
            if end < 0:
                bare = buf.find(b"\n")
                if bare >= 0:
                    end, width = bare, 1
                else:
                    if len(buf) + self._lineBytes > self.maxLine:
                        if not self.lineMode:
                            self._reject(buf, "command line too long")
                        self._skipLine = True
                        del buf[:]
                    return None
            else:
                width = 2
            line = bytes(buf[:end])
            del buf[:end + width]
            if self._skipLine:
                self._skipLine = False
                if self.lineMode:
                    self.lineMode = False
                    return ("line", None)
                return self._finish()
            if self.lineMode:
                self.lineMode = False
                return ("line", line)
            if self._first is None:
                self._first = line
            self._lineBytes += len(line)
            if self._lineBytes > self.maxLine:
                self._reject(line, "command line too long")
            m = _LITERAL.search(line)
            if m is None:
                if self._rejected is None:
                    self._parts.append(line)
                return self._finish()
            size, plus = int(m.group(1)), bool(m.group(2))
            self._literals += 1
            if self._literals > self.maxLiterals:
                self._reject(line, "too many literals")
            elif size > self.literalLimit(self._first):
                self._reject(line, "[TOOBIG] literal too big")
            if self._rejected is not None:
                if not plus:
                    # The client waits for "+": the command ends here.
                    return self._finish()
                self._skip = size
                continue
            self._parts.append(line + b"\r\n")
            self._need = size
            if not plus:
                return ("continue", None)

    def _finish(self):
        rejected, parts = self._rejected, self._parts
        self._reset()
        if rejected is not None:
            return ("reject", rejected)
        return ("command", b"".join(parts))


# -- tokens -------------------------------------------------------------------------


def tokenize(data, maxDepth=MAX_DEPTH):
    """
    Split a framed command into tokens.

    @return: a C{list} of L{Atom} (atoms, C{NIL}, flags, FETCH attributes
        with their C{[...]} sections), C{bytes} (quoted strings and
        literals) and nested C{list}s (parenthesized lists).
    @raise ParseError: unbalanced parentheses, bad quoting, a literal
        that does not match its announced size, nesting deeper than
        C{maxDepth}.
    """
    out = []
    stack = []
    i = 0
    n = len(data)
    while i < n:
        c = data[i]
        if c == 0x20:
            i += 1
        elif c == 0x28:  # (
            if len(stack) >= maxDepth:
                raise ParseError("too deeply nested")
            inner = []
            out.append(inner)
            stack.append(out)
            out = inner
            i += 1
        elif c == 0x29:  # )
            if not stack:
                raise ParseError("unbalanced parentheses")
            out = stack.pop()
            i += 1
        elif c == 0x22:  # "
            value = bytearray()
            i += 1
            while True:
                if i >= n:
                    raise ParseError("unterminated quoted string")
                c = data[i]
                if c == 0x5C:
                    if i + 1 >= n or data[i + 1] not in b'"\\':
                        raise ParseError("bad escape in quoted string")
                    value.append(data[i + 1])
                    i += 2
                elif c == 0x22:
                    i += 1
                    break
                elif c in (0x0D, 0x0A):
                    raise ParseError("line break in quoted string")
                else:
                    value.append(c)
                    i += 1
            out.append(bytes(value))
        elif c == 0x7B:  # {
            close = data.find(b"}\r\n", i)
            if close < 0:
                raise ParseError("bad literal")
            spec = data[i + 1:close]
            if spec.endswith(b"+"):
                spec = spec[:-1]
            if not spec.isdigit():
                raise ParseError("bad literal")
            size = int(spec)
            start = close + 3
            if start + size > n:
                raise ParseError("short literal")
            out.append(data[start:start + size])
            i = start + size
        elif c in (0x0D, 0x0A):
            raise ParseError("unexpected line break")
        else:
            start = i
            depth = 0
            while i < n:
                c = data[i]
                if c == 0x5B:
                    depth += 1
                elif c == 0x5D and depth:
                    depth -= 1
                elif depth:
                    if c in (0x0D, 0x0A):
                        break
                elif c in _ATOM_STOP:
                    break
                i += 1
            if depth:
                # RFC 3501: "[" is an ATOM-CHAR; no section after all.
                i = start
                while i < n and data[i] not in _ATOM_STOP:
                    i += 1
            try:
                out.append(Atom(data[start:i].decode("utf-8")))
            except UnicodeDecodeError:
                raise ParseError("8-bit characters in an atom")
    if stack:
        raise ParseError("unbalanced parentheses")
    return out


def splitCommand(data):
    """
    @return: C{(tag, name, args)} of a framed command; C{name} upper case.
    @raise ParseError: no tag or no command name.
    """
    tokens = tokenize(data)
    if not tokens or not isinstance(tokens[0], Atom) or _TAG_BAD.search(
            tokens[0].encode("utf-8")):
        raise ParseError("missing or bad tag")
    if len(tokens) < 2 or not isinstance(tokens[1], Atom):
        raise ParseError("missing command")
    return str(tokens[0]), tokens[1].upper(), tokens[2:]


def isString(token):
    return isinstance(token, (bytes, Atom))


def astring(token, what="argument"):
    """
    @return: an atom, quoted string or literal as C{str} (UTF-8).
    @raise ParseError: a list or nothing.
    """
    if isinstance(token, Atom):
        return str(token)
    if isinstance(token, bytes):
        return token.decode("utf-8", "surrogateescape")
    raise ParseError("bad %s" % (what,))


def nstring(token):
    """
    @return: C{None} for NIL, else L{astring}.
    """
    if isinstance(token, Atom) and token.upper() == "NIL":
        return None
    return astring(token)


def atom(token, what="argument"):
    if not isinstance(token, Atom):
        raise ParseError("bad %s" % (what,))
    return str(token)


def number(token, what="number", nz=False):
    if not isinstance(token, Atom) or not token.isdigit() or len(token) > 20:
        raise ParseError("bad %s" % (what,))
    value = int(token)
    if nz and value == 0:
        raise ParseError("bad %s" % (what,))
    return value


def expectArgs(args, count, usage):
    if len(args) != count:
        raise ParseError("wrong arguments; usage: %s" % (usage,))


# -- quoting -------------------------------------------------------------------------


def quote(value):
    """
    @param value: C{str} or C{bytes}.
    @return: an IMAP string (quoted, or a literal when needed) as bytes.
    """
    if isinstance(value, str):
        value = value.encode("utf-8", "surrogateescape")
    if b"\r" in value or b"\n" in value or b"\0" in value or any(c > 127 for c in value) \
            or len(value) > 1024:
        return b"{%d}\r\n%s" % (len(value), value)
    return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def nquote(value):
    return b"NIL" if value is None else quote(value)


# -- sequence sets ------------------------------------------------------------------


_SEQ = re.compile(r"\A(\d+|\*)(?::(\d+|\*))?\Z")


def parseSequenceSet(text):
    """
    @param text: C{"1:3,5,7:*"}, or C{"$"} (SEARCHRES, refused).
    @return: a C{list} of C{(low, high)} with C{None} standing for C{*}.
    @raise ParseError: empty, zero, or not a set.
    """
    if not isinstance(text, Atom) or not text:
        raise ParseError("invalid sequence set")
    ranges = []
    for item in text.split(","):
        m = _SEQ.match(item)
        if m is None:
            raise ParseError("invalid sequence set")
        values = []
        for part in (m.group(1), m.group(2) if m.group(2) is not None else m.group(1)):
            if part == "*":
                values.append(None)
            else:
                if len(part) > 10:
                    raise ParseError("invalid sequence set")
                v = int(part)
                if v == 0 or v > 0xFFFFFFFF:
                    raise ParseError("invalid sequence set")
                values.append(v)
        ranges.append(tuple(values))
    return ranges


def resolveSet(ranges, top):
    """
    Replace C{*} by C{top} and order each range.

    @return: C{[(low, high)]} with C{low <= high}.
    """
    out = []
    for low, high in ranges:
        low = top if low is None else low
        high = top if high is None else high
        if low > high:
            low, high = high, low
        out.append((low, high))
    return out


def formatSequenceSet(numbers):
    """
    @param numbers: sorted C{int}s.
    @return: C{"1:3,5"}.
    """
    out = []
    start = prev = None
    for n in numbers:
        if start is None:
            start = prev = n
        elif n == prev + 1:
            prev = n
        else:
            out.append("%d" % start if start == prev else "%d:%d" % (start, prev))
            start = prev = n
    if start is not None:
        out.append("%d" % start if start == prev else "%d:%d" % (start, prev))
    return ",".join(out)


# -- dates ----------------------------------------------------------------------------


def parseDate(token):
    """
    A SEARCH date (C{1-Feb-1994}).

    @return: the UTC midnight as seconds since the epoch.
    """
    text = astring(token, "date") if isString(token) else ""
    m = _DATE.match(text)
    if m is None or m.group(2).lower() not in _MONTH_NUMBER:
        raise ParseError("bad date")
    day, month, year = int(m.group(1)), _MONTH_NUMBER[m.group(2).lower()], int(m.group(3))
    try:
        return calendar.timegm((year, month, day, 0, 0, 0))
    except (ValueError, OverflowError):
        raise ParseError("bad date")


def parseDateTime(token):
    """
    An APPEND date-time (C{"17-Jul-1996 02:44:25 -0700"}).

    @return: seconds since the epoch.
    """
    text = astring(token, "date-time")
    m = _DATETIME.match(text)
    if m is None or m.group(2).lower() not in _MONTH_NUMBER:
        raise ParseError("bad date-time")
    day, year = int(m.group(1)), int(m.group(3))
    hh, mm, ss = int(m.group(4)), int(m.group(5)), int(m.group(6))
    if day > 31 or hh > 23 or mm > 59 or ss > 60:
        raise ParseError("bad date-time")
    offset = (int(m.group(8)) * 60 + int(m.group(9))) * 60
    if m.group(7) == "-":
        offset = -offset
    try:
        base = calendar.timegm((year, _MONTH_NUMBER[m.group(2).lower()], day, hh, mm, ss))
    except (ValueError, OverflowError):
        raise ParseError("bad date-time")
    return base - offset


def formatDateTime(seconds):
    """
    @return: an INTERNALDATE (C{"17-Jul-1996 09:44:25 +0000"}).
    """
    t = time.gmtime(seconds)
    return "%02d-%s-%04d %02d:%02d:%02d +0000" % (
        t.tm_mday, _MONTHS[t.tm_mon - 1], t.tm_year, t.tm_hour, t.tm_min, t.tm_sec)


# -- mailbox names (modified UTF-7, RFC 3501 5.1.3) ------------------------------------


def mailboxArg(token, lenient=False):
    """
    @return: the mailbox name of an argument, decoded.
    @raise IMAPError: NO for a name that is not valid modified UTF-7 (a
        well-formed astring is not a syntax error); with C{lenient} (LIST
        patterns) the name is returned as sent and simply matches nothing.
    """
    text = astring(token, "mailbox name")
    try:
        return decodeMailboxName(text)
    except ParseError:
        if lenient:
            return text
        from cgpro.mail.imap.errors import IMAPError
        raise IMAPError("NO", "[CANNOT] mailbox name is not valid modified UTF-7")


# -- FETCH attributes -----------------------------------------------------------------


_MACROS = {
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}
_SIMPLE = frozenset(["FLAGS", "UID", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE",
                     "BODY", "RFC822", "RFC822.HEADER", "RFC822.TEXT", "MODSEQ"])
_BODY = re.compile(r"\A(BODY|BODY\.PEEK|BINARY|BINARY\.PEEK|BINARY\.SIZE)"
                   r"\[([^\]]*)\](?:<(\d+)(?:\.(\d+))?>)?\Z", re.IGNORECASE)
_SECTION_TEXTS = ("", "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME")


class FetchItem:
    """
    One FETCH attribute.

    @ivar name: C{FLAGS}, C{UID}, ... or C{BODY[]} for a section fetch.
    @ivar part: the section's part numbers (C{tuple}).
    @ivar text: C{""}, C{HEADER}, C{HEADER.FIELDS}, C{HEADER.FIELDS.NOT},
        C{TEXT} or C{MIME}.
    @ivar fields: upper-case header names for C{HEADER.FIELDS[.NOT]}.
    @ivar partial: C{(start, length)} or C{None}; C{length} may be C{None}.
    @ivar peek: whether C{\\Seen} is left alone.
    @ivar binary: BINARY[] (decoded content) or BINARY.SIZE.
    """

    __slots__ = ("name", "part", "text", "fields", "partial", "peek", "binary", "label")

    def __init__(self, name, part=(), text="", fields=(), partial=None, peek=True,
                 binary=None):
        self.name = name
        self.part = part
        self.text = text
        self.fields = fields
        self.partial = partial
        self.peek = peek
        self.binary = binary
        self.label = name

    def __repr__(self):
        return "<FetchItem %s>" % (self.label,)

    @property
    def setsSeen(self):
        return self.name in ("RFC822", "RFC822.TEXT") or (
            self.name == "BODY[]" and not self.peek)


def _parseSection(spec):
    spec = spec.strip()
    fields = ()
    if "(" in spec:
        head, _, rest = spec.partition(" ")
        tokens = tokenize(rest.encode("utf-8"), maxDepth=1)
        if len(tokens) != 1 or not isinstance(tokens[0], list) or not tokens[0]:
            raise ParseError("bad header list")
        fields = tuple(astring(t).upper() for t in tokens[0])
        spec = head
    elif " " in spec:
        raise ParseError("bad section")
    part = []
    words = spec.split(".") if spec else []
    while words and words[0].isdigit():
        n = int(words.pop(0))
        if n == 0 or n > 100000:
            raise ParseError("bad section part")
        part.append(n)
    text = ".".join(words).upper()
    if text not in _SECTION_TEXTS:
        raise ParseError("bad section %s" % (text,))
    if text == "MIME" and not part:
        raise ParseError("MIME needs a part")
    if (text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT")) != bool(fields):
        raise ParseError("bad header list")
    return tuple(part), text, fields


def parseFetchItem(token):
    if not isinstance(token, Atom):
        raise ParseError("bad fetch attribute")
    upper = token.upper()
    if upper in _SIMPLE:
        return FetchItem(upper)
    m = _BODY.match(token)
    if m is None:
        raise ParseError("unknown fetch attribute %s" % (token[:40],))
    kind = m.group(1).upper()
    part, text, fields = _parseSection(m.group(2))
    partial = None
    if m.group(3) is not None:
        if kind == "BINARY.SIZE" or len(m.group(3)) > 10 or (m.group(4) and len(m.group(4)) > 10):
            raise ParseError("bad partial")
        length = int(m.group(4)) if m.group(4) is not None else None
        partial = (int(m.group(3)), length)
    binary = None
    if kind.startswith("BINARY"):
        if text:
            raise ParseError("BINARY takes only part numbers")
        binary = "size" if kind == "BINARY.SIZE" else "content"
    item = FetchItem("BODY[]", part, text, fields, partial,
                     peek=kind in ("BODY.PEEK", "BINARY.PEEK", "BINARY.SIZE"), binary=binary)
    section = ".".join(str(p) for p in part)
    if text:
        section = section + "." + text if section else text
    if fields:
        section += " (%s)" % " ".join(fields)
    prefix = {"content": "BINARY", "size": "BINARY.SIZE"}.get(binary, "BODY")
    item.label = "%s[%s]" % (prefix, section)
    if partial is not None:
        item.label += "<%d>" % partial[0]
    return item


def parseFetchAttributes(token):
    """
    @param token: a macro, one attribute, or a list of attributes.
    @return: a C{list} of L{FetchItem}.
    """
    if isinstance(token, Atom) and token.upper() in _MACROS:
        return [FetchItem(n) for n in _MACROS[token.upper()]]
    if isinstance(token, list):
        if not token:
            raise ParseError("empty fetch attribute list")
        return [parseFetchItem(t) for t in token]
    return [parseFetchItem(token)]


# -- SEARCH keys ------------------------------------------------------------------------


_FLAG_KEYS = {
    "ANSWERED": ("\\Answered", True), "DELETED": ("\\Deleted", True),
    "DRAFT": ("\\Draft", True), "FLAGGED": ("\\Flagged", True), "SEEN": ("\\Seen", True),
    "UNANSWERED": ("\\Answered", False), "UNDELETED": ("\\Deleted", False),
    "UNDRAFT": ("\\Draft", False), "UNFLAGGED": ("\\Flagged", False),
    "UNSEEN": ("\\Seen", False),
}
_DATE_KEYS = frozenset(["BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE"])
_ADDRESS_KEYS = frozenset(["FROM", "TO", "CC", "BCC", "SUBJECT"])


def parseSearch(args):
    """
    Parse SEARCH criteria (after C{CHARSET x}, which the caller takes).

    @return: a key tree of tuples: C{("AND", [keys])}, C{("OR", a, b)},
        C{("NOT", k)}, C{("ALL",)}, C{("FLAG", name, present)},
        C{("RECENT", present)}, C{("NEW",)}, C{("SEQ", ranges)},
        C{("UID", ranges)}, C{(dateKey, seconds)}, C{("LARGER", n)},
        C{("SMALLER", n)}, C{("HEADER", name, text)}, C{("BODY", text)},
        C{("TEXT", text)}, C{("MODSEQ", n)}.
    @raise ParseError: unknown or incomplete keys.
    """
    if not args:
        raise ParseError("missing search criteria")
    keys = []
    pos = 0
    while pos < len(args):
        key, pos = _searchKey(args, pos, 0)
        keys.append(key)
    return keys[0] if len(keys) == 1 else ("AND", keys)


def _arg(args, pos):
    if pos >= len(args):
        raise ParseError("missing search argument")
    return args[pos]


def _searchKey(args, pos, depth):
    if depth > MAX_SEARCH_DEPTH:
        raise ParseError("search criteria too deeply nested")
    token = args[pos]
    pos += 1
    if isinstance(token, list):
        if not token:
            raise ParseError("empty search list")
        keys = []
        inner = 0
        while inner < len(token):
            key, inner = _searchKey(token, inner, depth + 1)
            keys.append(key)
        return (keys[0] if len(keys) == 1 else ("AND", keys)), pos
    if not isinstance(token, Atom):
        raise ParseError("bad search key")
    name = token.upper()
    if name in _FLAG_KEYS:
        flag, present = _FLAG_KEYS[name]
        return ("FLAG", flag, present), pos
    if name == "ALL":
        return ("ALL",), pos
    if name in ("RECENT", "OLD"):
        return ("RECENT", name == "RECENT"), pos
    if name == "NEW":
        return ("NEW",), pos
    if name in ("KEYWORD", "UNKEYWORD"):
        return ("FLAG", atom(_arg(args, pos), "keyword"), name == "KEYWORD"), pos + 1
    if name == "NOT":
        key, pos = _searchKey(args, _checked(args, pos), depth + 1)
        return ("NOT", key), pos
    if name == "OR":
        a, pos = _searchKey(args, _checked(args, pos), depth + 1)
        b, pos = _searchKey(args, _checked(args, pos), depth + 1)
        return ("OR", a, b), pos
    if name in _DATE_KEYS:
        return (name, parseDate(_arg(args, pos))), pos + 1
    if name in ("LARGER", "SMALLER"):
        return (name, number(_arg(args, pos))), pos + 1
    if name in _ADDRESS_KEYS:
        return ("HEADER", name, astring(_arg(args, pos))), pos + 1
    if name == "HEADER":
        field = astring(_arg(args, pos))
        return ("HEADER", field.upper(), astring(_arg(args, pos + 1))), pos + 2
    if name in ("BODY", "TEXT"):
        return (name, astring(_arg(args, pos))), pos + 1
    if name == "UID":
        return ("UID", parseSequenceSet(_arg(args, pos))), pos + 1
    if name == "MODSEQ":
        value = _arg(args, pos)
        if isinstance(value, bytes) or (isinstance(value, Atom) and not value.isdigit()):
            # MODSEQ "/flags/\\draft" all 620162338: entry name and type
            pos += 2
            value = _arg(args, pos)
        return ("MODSEQ", number(value)), pos + 1
    if name[:1].isdigit() or name[:1] == "*":
        return ("SEQ", parseSequenceSet(token)), pos
    raise ParseError("unknown search key %s" % (name[:40],))


def _checked(args, pos):
    if pos >= len(args):
        raise ParseError("missing search argument")
    return pos
