# -*- test-case-name: tests.mail.imap.test_search -*-
"""
SEARCH and UID SEARCH.

The key tree from L{cgpro.mail.imap.parser.parseSearch} is compiled into
one Python closure, so flag, date, size and set keys run over the index
columns without touching files; header and text keys read a message only
when the cheaper keys of an AND have not already excluded it.  Text
matching is case-insensitive substring matching on decoded headers and
on text bodies with their transfer encoding and charset undone.
"""

import calendar
import email
import email.policy
from email.utils import parsedate_to_datetime

from cgpro.mail.imap import mime, parser
from cgpro.mail.imap.errors import IMAPError
from cgpro.mail.imap.parser import ParseError
from cgpro.store.names import systemBit

_CHARSETS = ("US-ASCII", "UTF-8")
_DAY = 86400


class _Message:
    """
    One message as the compiled keys see it; content is read on demand.
    """

    __slots__ = ("mb", "uid", "seq", "pos", "_data", "_root", "_text", "_flags")

    def __init__(self, mb, uid, seq, pos):
        self.mb = mb
        self.uid = uid
        self.seq = seq
        self.pos = pos
        self._data = self._root = self._text = self._flags = None

    @property
    def data(self):
        if self._data is None:
            try:
                self._data = self.mb.readMessage(self.uid)
            except Exception:
                self._data = b""
            self._root = mime.parse(self._data)
        return self._data

    @property
    def root(self):
        self.data
        return self._root

    def flagNames(self):
        if self._flags is None:
            self._flags = {f.lower() for f in self.mb.flags(self.uid)}
        return self._flags

    def headerValues(self, name):
        return [mime.decodedHeader(v) for k, v in self.root.headers if k == name]

    def bodyText(self):
        if self._text is None:
            self._text = _bodyText(self.data, self.root).lower()
        return self._text


def _bodyText(data, root):
    """
    The text of a message's text parts, decoded, for BODY and TEXT.
    """
    try:
        message = email.message_from_bytes(data, policy=email.policy.compat32)
        out = []
        for part in message.walk():
            if part.is_multipart() or part.get_content_maintype() not in ("text", "message"):
                continue
            payload = part.get_payload(decode=True)
            if payload is None:
                continue
            charset = part.get_content_charset() or "utf-8"
            try:
                out.append(payload.decode(charset, "replace"))
            except LookupError:
                out.append(payload.decode("utf-8", "replace"))
        return "\n".join(out)
    except Exception:
        return data[root.bodyStart:].decode("utf-8", "replace")


def _sentDate(message):
    value = message.root.header("DATE")
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except Exception:
        return None
    if when is None:
        return None
    return calendar.timegm((when.year, when.month, when.day, 0, 0, 0))


def _dayOf(seconds):
    return seconds - seconds % _DAY


class SearchCompiler:
    """
    Turns a key tree into C{predicate(message) -> bool} for one session.
    """

    def __init__(self, session):
        self.session = session
        self.mb = session.mailbox
        self.index = session.mailbox.index
        self.view = session.view

    def compile(self, key):
        kind = key[0]
        index = self.index
        if kind == "ALL":
            return lambda m: True
        if kind == "AND":
            parts = sorted((self.compile(k) for k in key[1]),
                           key=lambda f: getattr(f, "costly", False))
            fn = lambda m: all(p(m) for p in parts)
            fn.costly = any(getattr(p, "costly", False) for p in parts)
            return fn
        if kind == "OR":
            a, b = self.compile(key[1]), self.compile(key[2])
            fn = lambda m: a(m) or b(m)
            fn.costly = getattr(a, "costly", False) or getattr(b, "costly", False)
            return fn
        if kind == "NOT":
            inner = self.compile(key[1])
            fn = lambda m: not inner(m)
            fn.costly = getattr(inner, "costly", False)
            return fn
        if kind == "FLAG":
            bit = systemBit(key[1]) if key[1].startswith("\\") else 0
            present = key[2]
            if bit:
                return lambda m: bool(index.masks[m.pos] & bit) == present
            name = key[1].lower()
            return lambda m: (name in m.flagNames()) == present
        if kind == "RECENT":
            recentFrom, present = self.session.recentFrom, key[1]
            return lambda m: (m.uid >= recentFrom) == present
        if kind == "NEW":
            recentFrom = self.session.recentFrom
            seen = systemBit("\\Seen")
            return lambda m: m.uid >= recentFrom and not index.masks[m.pos] & seen
        if kind == "SEQ":
            top = len(self.view)
            ranges = parser.resolveSet(key[1], top)
            return lambda m: any(lo <= m.seq <= hi for lo, hi in ranges)
        if kind == "UID":
            top = self.view[-1] if len(self.view) else 0
            ranges = parser.resolveSet(key[1], top)
            return lambda m: any(lo <= m.uid <= hi for lo, hi in ranges)
        if kind == "LARGER":
            n = key[1]
            return lambda m: index.sizes[m.pos] > n
        if kind == "SMALLER":
            n = key[1]
            return lambda m: index.sizes[m.pos] < n
        if kind == "MODSEQ":
            n = key[1]
            return lambda m: index.modseqs[m.pos] >= n
        if kind in ("BEFORE", "ON", "SINCE"):
            day = key[1]
            test = {"BEFORE": lambda d: d < day, "ON": lambda d: d == day,
                    "SINCE": lambda d: d >= day}[kind]
            return lambda m: test(_dayOf(index.dates[m.pos]))
        if kind in ("SENTBEFORE", "SENTON", "SENTSINCE"):
            day = key[1]
            test = {"SENTBEFORE": lambda d: d < day, "SENTON": lambda d: d == day,
                    "SENTSINCE": lambda d: d >= day}[kind]

            def sent(m):
                d = _sentDate(m)
                return d is not None and test(d)

            sent.costly = True
            return sent
        if kind == "HEADER":
            name, needle = key[1], key[2].lower()

            def header(m):
                values = m.headerValues(name)
                if not needle:
                    return bool(values)
                if any(needle in v.lower() for v in values):
                    return True
                if name.upper() in ("FROM", "TO", "CC", "BCC", "SENDER", "REPLY-TO"):
                    # match the parsed addresses too (comments, routes,
                    # groups and whitespace removed), as Dovecot does
                    from cgpro.mail.imap.bodystructure import parseAddressList
                    for v in values:
                        for dn, adl, mbox, host in parseAddressList(v):
                            if mbox is None or host is None:
                                continue
                            addr = "%s@%s" % (mbox, host)
                            full = "%s <%s>" % (dn, addr) if dn else addr
                            if needle in full.lower():
                                return True
                return False

            header.costly = True
            return header
        if kind == "BODY":
            needle = key[1].lower()
            fn = lambda m: needle in m.bodyText()
            fn.costly = True
            return fn
        if kind == "TEXT":
            needle = key[1].lower()

            def text(m):
                head = m.data[:m.root.bodyStart].decode("utf-8", "replace")
                return needle in head.lower() or any(
                    needle in mime.decodedHeader(v).lower() for _, v in m.root.headers) \
                    or needle in m.bodyText()

            text.costly = True
            return text
        raise ParseError("unknown search key")


class SearchCommands:
    """
    Mixed into L{cgpro.mail.imap.server.IMAPServer}.
    """

    def cmd_SEARCH(self, tag, args):
        return self.search(args, uid=False)

    def search(self, args, uid):
        args = list(args)
        if args and isinstance(args[0], parser.Atom) and args[0].upper() == "RETURN":
            raise ParseError("SEARCH RETURN is not supported")
        if len(args) >= 2 and isinstance(args[0], parser.Atom) and args[0].upper() == "CHARSET":
            charset = parser.astring(args[1]).upper()
            if charset not in _CHARSETS:
                raise IMAPError("NO", "[BADCHARSET (%s)] unsupported charset" % (
                    " ".join(_CHARSETS),))
            args = args[2:]
        key = parser.parseSearch(args)
        if self.mailbox is None:
            raise IMAPError("NO", "mailbox closed")
        predicate = SearchCompiler(self).compile(key)
        mb = self.mailbox
        index = mb.index
        found = []
        highest = 0
        for row, u in enumerate(self.view):
            pos = index.position(u)
            if pos < 0:
                continue
            if predicate(_Message(mb, u, row + 1, pos)):
                found.append(u if uid else row + 1)
                highest = max(highest, index.modseqs[pos])
        tail = ""
        if _usesModseq(key):
            self.enabled.add("CONDSTORE")
            if found:
                tail = " (MODSEQ %d)" % (highest,)
        self.untagged("SEARCH" + "".join(" %d" % n for n in found) + tail)


def _usesModseq(key):
    if key[0] == "MODSEQ":
        return True
    if key[0] == "AND":
        return any(_usesModseq(k) for k in key[1])
    if key[0] in ("OR", "NOT"):
        return any(_usesModseq(k) for k in key[1:])
    return False

