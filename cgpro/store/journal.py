# -*- test-case-name: tests.store.test_journal -*-
"""
The UID journal of one mailbox: C{cgpro.journal} in the mailbox folder.

The Maildir files hold the messages; the journal holds what IMAP needs and
Maildir does not: UIDVALIDITY, UIDNEXT, the UID of each file, internal
dates, flags with keywords, MODSEQ values and recent expunges (QRESYNC).
It is a text file of one record a line, appended with
L{DurableWriter.append} (O(1) per change, joining the server's group
commit) and rewritten atomically (temporary file + rename) when it grows
past twice the live message count plus 1,000.  Readable with C{less}::

    {Format="cgpro-maildir/1";HighestModSeq=#9;HistoryModSeq=#0;RecentUID=#3;UIDNext=#5;UIDValidity=#1718000000;}
    + 1 2 1718000000 4312 new/1718000000.M12P345Q1R9f8e0a1b.mx,S=4312,D=0123456789abcdef ()
    + 2 3 1718000010 1200 cur/1718000010.M7P345Q2Rc0ffee00.mx,S=1200:2,S (\\Seen)
    F 1 4 (\\Seen)(\\Flagged)($Work)
    - 2 5
    R 3

=======================  =====================================================
line                     meaning
=======================  =====================================================
C{{...}}                 header (first line, data format): the state when the
                         file was (re)written; C{HistoryModSeq}: expunges with
                         a greater MODSEQ are all listed below
C{+ uid modseq date      a message: internal date in seconds since the epoch
size file (flags)}       (UTC), size in bytes, its file relative to the
                         mailbox folder (C{%}-escaped if it has spaces or
                         8-bit bytes), its flags
C{F uid modseq (flags)}  the message's complete new flag set; its file then
                         moves to C{cur/<base>:2,<letters>} unless it is in
                         C{new/} without system flags
                         (L{cgpro.store.names.currentName})
C{- uid modseq}          the message was expunged
C{R uid}                 messages from this UID on are C{\\Recent}
=======================  =====================================================

The flags token is C{()} or the flags each in parentheses: one token
whatever the number of flags (parentheses cannot occur in a flag), so every
C{+} line has exactly seven tokens and a whole journal of them is parsed
with one C{split} and column slices (L{parseJournal}): 100,000 messages in
about 0.2 s.

Robustness: a line counts only when complete (ends in a newline), so a
torn tail from SIGKILL or power loss is ignored, and cut off before the
next append.  Lines that do not parse are skipped.  The file names in the
journal are only ever matched against the names L{os.listdir} returns, so
a hand-edited journal cannot make the store touch a file outside the
mailbox.  The files are the truth for which messages exist: on open
(L{loadFolder}) a journal entry whose file is gone is expunged, and a file
the journal does not know (delivered just before a crash, or dropped in by
another tool) gets the next UID.
"""

import os
import re
from urllib.parse import quote, unquote

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from cgpro.core import dataformat
from cgpro.store.index import FlagTable, MessageIndex
from cgpro.store.names import baseName, currentName, maskFromInfo, sizeFromName, tagOfName

#: The journal's file name in each mailbox folder.
JOURNAL_FILE = "cgpro.journal"

#: Value of the header's C{Format} key.
FORMAT = "cgpro-maildir/1"

#: Bytes read from the end of a journal to learn UIDNEXT without a full load.
TAIL_BLOCK = 65536

#: Unknown files in tmp/ older than this are removed (the Maildir rule).
TMP_MAX_AGE = 36 * 3600

_OUR_TMP = re.compile(r"^\d+\.M\d+P\d+Q\d+R[0-9a-f]+\.")
_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != "%")


# -- lines ----------------------------------------------------------------------


def _nameText(base):
    for ch in base:
        if ch not in _SAFE:
            return quote(base, safe=_SAFE, errors="surrogateescape")
    return base


def _nameFromText(text):
    if "%" in text:
        return unquote(text, errors="surrogateescape")
    return text


def formatHeader(uidValidity, uidNext, modseq, recentUid, historyModseq):
    """
    @return: the header line (with its newline).
    """
    return dataformat.dumps({
        "Format": FORMAT, "UIDValidity": uidValidity, "UIDNext": uidNext,
        "HighestModSeq": modseq, "RecentUID": recentUid, "HistoryModSeq": historyModseq,
    }) + "\n"


def flagsText(flags):
    """
    The flags token: C{(\\Seen)($Work)}, C{()} for none.  One token, so
    that every C{+} line has seven; C{(} and C{)} cannot occur in flags.
    """
    return "(" + ")(".join(flags) + ")"


def _flagsFromText(text):
    if len(text) < 2 or text[0] != "(" or text[-1] != ")":
        raise ValueError("bad flags %r" % (text,))
    return text[1:-1].split(")(") if len(text) > 2 else []


def formatAdd(uid, modseq, date, size, name, flags):
    """
    @param name: the file name relative to the mailbox folder.
    @param flags: flag names.
    @return: a C{+} line.
    """
    return "+ %d %d %d %d %s %s\n" % (uid, modseq, date, size, _nameText(name), flagsText(flags))


def formatFlags(uid, modseq, flags):
    """
    @return: an C{F} line.
    """
    return "F %d %d %s\n" % (uid, modseq, flagsText(flags))


def formatExpunge(uid, modseq):
    """
    @return: a C{-} line.
    """
    return "- %d %d\n" % (uid, modseq)


def formatRecent(uid):
    """
    @return: an C{R} line.
    """
    return "R %d\n" % (uid,)


def _readHeader(line):
    try:
        header = dataformat.loads(line, multiline=False)
    except ValueError:
        return None
    if not isinstance(header, dict) or header.get("Format") != FORMAT:
        return None
    try:
        return {k: int(header[k]) for k in
                ("UIDValidity", "UIDNext", "HighestModSeq", "RecentUID", "HistoryModSeq")}
    except (KeyError, TypeError, ValueError):
        return None


def _completeText(path):
    """
    Read a journal, cutting a torn last line off the file.

    @return: C{(text, truncated)}; C{text} is C{None} if there is no file.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None, False
    truncated = False
    if data and not data.endswith(b"\n"):
        end = data.rfind(b"\n") + 1
        data = data[:end]
        os.truncate(path, end)
        truncated = True
    return data.decode("utf-8", "surrogateescape"), truncated


# -- full load ------------------------------------------------------------------


class LoadResult:
    """
    What L{loadFolder} found: the journal's state reconciled with the files.

    @ivar header: the header values (C{dict}) or C{None} if the journal is
        missing or has no valid header (a new UIDVALIDITY is then needed).
    @ivar index: the L{MessageIndex} of messages whose files exist.
    @ivar flags: the L{FlagTable} of the index's masks.
    @ivar uidNext: one more than the highest UID the journal mentions.
    @ivar modseq: the highest MODSEQ the journal mentions.
    @ivar recentUid: the C{\\Recent} boundary.
    @ivar history: C{[(modseq, uid)]} of expunges in the journal.
    @ivar historyModseq: expunges after this MODSEQ are all in C{history}.
    @ivar records: complete lines after the header.
    @ivar bad: lines skipped because they did not parse.
    @ivar missing: C{[(uid, size)]} in the journal whose file is gone.
    @ivar adopted: C{[(name, size, date, mask)]}: files the journal does
        not know (C{name} relative to the folder), oldest first.
    @ivar garbage: paths to remove (expunged files left by a crash, stale
        temporary files).
    @ivar truncated: whether a torn last line was cut off.
    """

    def __init__(self):
        self.header = None
        self.index = None
        self.flags = FlagTable()
        self.uidNext = 1
        self.modseq = 1
        self.recentUid = 1
        self.history = []
        self.historyModseq = 0
        self.records = 0
        self.bad = 0
        self.missing = []
        self.adopted = []
        self.garbage = []
        self.truncated = False


def _maskOf(flagTable, text):
    mask = 0
    for flag in _flagsFromText(text):
        try:
            mask |= flagTable.bit(flag)
        except Exception:
            pass  # a flag this version cannot store: dropped, not fatal
    return mask


def _masks(flagTable, texts):
    cache = {}
    for text in set(texts):
        try:
            cache[text] = _maskOf(flagTable, text)
        except ValueError:
            cache[text] = 0
    return list(map(cache.__getitem__, texts))


def _parseAddsFast(tokens, count):
    """
    Parse C{count} C{+} lines split into tokens, column by column with
    slices: no object per line, which keeps 100,000 lines well under a
    second even with the garbage collector running.

    @raise ValueError: a line is malformed or UIDs are out of order; the
        caller then parses line by line.
    """
    if len(tokens) != 7 * count or tokens[0::7].count("+") != count:
        raise ValueError("malformed line")
    uids = list(map(int, tokens[1::7]))
    if any(a >= b for a, b in zip(uids, uids[1:])):
        raise ValueError("out of order")
    return (uids, list(map(int, tokens[2::7])), list(map(int, tokens[3::7])),
            list(map(int, tokens[4::7])), tokens[5::7], tokens[6::7])


def _parseAddsSlow(adds, result):
    seen = {}
    for line in adds:
        try:
            parts = line.split(" ")
            if len(parts) != 7:
                raise ValueError("malformed line")
            uid = int(parts[1])
            row = (uid, int(parts[2]), int(parts[3]), int(parts[4]), parts[5], parts[6])
            _flagsFromText(parts[6])
        except (ValueError, IndexError):
            result.bad += 1
            continue
        if uid in seen:
            result.bad += 1
            continue
        seen[uid] = row
    rows = [seen[uid] for uid in sorted(seen)]
    if not rows:
        return [], [], [], [], [], []
    return tuple(list(c) for c in zip(*rows))


def parseJournal(text, result):
    """
    Replay journal text.

    @return: C{(uids, modseqs, dates, sizes, masks, names, gone)} where
        expunged rows have mask C{-1} and C{gone} holds their base names.
    """
    body = text
    if text[:1] == "{":
        end = text.find("\n") + 1
        body = text[end:]
        result.header = _readHeader(text[:end - 1])
        if result.header is not None:
            result.uidNext = result.header["UIDNext"]
            result.modseq = result.header["HighestModSeq"]
            result.recentUid = result.header["RecentUID"]
            result.historyModseq = result.header["HistoryModSeq"]
    result.records = count = body.count("\n")
    addCount = body.count("\n+") + (body[:1] == "+")
    if addCount == count:
        # Only "+" lines (a freshly rewritten journal): one split.
        others = []
        adds = None
        tokens = body.replace("\n", " ").split(" ")
        tokens.pop()
    else:
        lines = body.split("\n")
        lines.pop()
        adds = [line for line in lines if line[:1] == "+"]
        others = [line for line in lines if line[:1] != "+"]
        tokens = " ".join(adds).split(" ") if adds else []
        addCount = len(adds)
    try:
        uids, modseqs, dates, sizes, names, flags = _parseAddsFast(tokens, addCount)
    except (ValueError, IndexError):
        if adds is None:
            adds = body.split("\n")[:-1]
        uids, modseqs, dates, sizes, names, flags = _parseAddsSlow(adds, result)
    del tokens
    if "%" in body and any("%" in n for n in names):
        names = [_nameFromText(n) for n in names]
    flagTable = result.flags
    masks = _masks(flagTable, flags)
    maxModseq = max(result.modseq, max(modseqs, default=0))
    gone = set()
    changed = set()
    history = result.history
    rows = None
    for line in others:
        try:
            kind = line[0]
            if kind == "R":
                result.recentUid = max(result.recentUid, int(line.split(" ")[1]))
                continue
            if kind == "F":
                parts = line.split(" ")
                if len(parts) != 4:
                    raise ValueError("malformed line")
            elif kind == "-":
                parts = line.split(" ")
            else:
                raise ValueError(kind)
            uid = int(parts[1])
            m = int(parts[2])
            if rows is None:
                rows = dict(zip(uids, range(len(uids))))
            i = rows.get(uid)
            if kind == "F":
                mask = _maskOf(flagTable, parts[3])
                if i is not None and masks[i] >= 0:
                    masks[i] = mask
                    modseqs[i] = m
                    changed.add(i)
            else:
                history.append((m, uid))
                if i is not None and masks[i] >= 0:
                    masks[i] = -1
                    gone.add(baseName(names[i][4:]))
            if m > maxModseq:
                maxModseq = m
        except (ValueError, IndexError):
            result.bad += 1
    for i in changed:
        if masks[i] >= 0:
            names[i] = currentName(names[i], masks[i])
    history.sort()
    result.uidNext = max(result.uidNext, uids[-1] + 1 if uids else 1)
    result.modseq = maxModseq
    return uids, modseqs, dates, sizes, masks, names, gone


def _listFiles(folder):
    try:
        return [n for n in os.listdir(folder) if n[:1] != "."]
    except FileNotFoundError:
        return []


def loadFolder(folder, now=None):
    """
    Read a mailbox folder: replay the journal and reconcile it with the
    files present.  Touches nothing but the journal's torn tail, so it may
    run in a thread while the mailbox is quiet.

    @param now: the time for the age of temporary files (default: now).
    @return: a L{LoadResult}.
    """
    result = LoadResult()
    path = os.path.join(folder, JOURNAL_FILE)
    text, result.truncated = _completeText(path)
    uids, modseqs, dates, sizes, masks, names, gone = parseJournal(text or "", result)

    if -1 in masks:
        live = [i for i, m in enumerate(masks) if m >= 0]
        uids = [uids[i] for i in live]
        modseqs = [modseqs[i] for i in live]
        dates = [dates[i] for i in live]
        sizes = [sizes[i] for i in live]
        masks = [masks[i] for i in live]
        names = [names[i] for i in live]

    present = set()
    for sub in ("new/", "cur/"):
        present.update([sub + n for n in _listFiles(os.path.join(folder, sub))])
    expected = set(names)
    unknown = present - expected
    absent = expected - present
    if absent or len(expected) != len(names):
        # Files renamed behind the journal's back (a crash between a flag
        # change and its rename, another tool) are found by base name.
        byBase = {baseName(n[4:]): n for n in unknown}
        keep = []
        taken = set()
        for i, name in enumerate(names):
            if name in absent:
                actual = byBase.pop(baseName(name[4:]), None)
                if actual is None:
                    result.missing.append((uids[i], sizes[i]))
                    continue
                unknown.discard(actual)
                names[i] = name = actual
            if name in taken:
                result.missing.append((uids[i], sizes[i]))
                continue
            taken.add(name)
            keep.append(i)
        uids = [uids[i] for i in keep]
        modseqs = [modseqs[i] for i in keep]
        dates = [dates[i] for i in keep]
        sizes = [sizes[i] for i in keep]
        masks = [masks[i] for i in keep]
        names = [names[i] for i in keep]
    result.index = MessageIndex.fromColumns(uids, modseqs, dates, sizes, masks, names)

    adopted = []
    for name in unknown:
        full = os.path.join(folder, name)
        if baseName(name[4:]) in gone:
            result.garbage.append(full)
            continue
        try:
            st = os.stat(full)
        except OSError:
            continue
        size = sizeFromName(name)
        if size is None or size != st.st_size:
            size = st.st_size
        mask = maskFromInfo(name) if name[:4] == "cur/" else 0
        adopted.append((int(st.st_mtime), name, size, mask))
    adopted.sort()
    result.adopted = [(name, size, date, mask) for date, name, size, mask in adopted]

    if now is None:
        import time

        now = time.time()
    tmp = os.path.join(folder, "tmp")
    for filename in _listFiles(tmp):
        full = os.path.join(tmp, filename)
        if _OUR_TMP.match(filename):
            result.garbage.append(full)
            continue
        try:
            if now - os.stat(full).st_mtime > TMP_MAX_AGE:
                result.garbage.append(full)
        except OSError:
            pass
    stale = path + ".tmp"
    if os.path.exists(stale):
        result.garbage.append(stale)
    return result


# -- tail -----------------------------------------------------------------------


class TailState:
    """
    Enough of a journal to append to it without loading it.

    @ivar uidNext: the next UID to give.
    @ivar modseq: the highest MODSEQ given.
    @ivar tags: C{[(deliveryHash, uid)]} of the messages in the tail.
    """

    def __init__(self, uidNext, modseq, tags):
        self.uidNext = uidNext
        self.modseq = modseq
        self.tags = tags


def readTail(path, block=TAIL_BLOCK):
    """
    Learn UIDNEXT and HIGHESTMODSEQ from the end of a journal, reading
    backwards block by block until a C{+} line or the header says them
    (one block in practice).  Cuts a torn last line off.

    @return: a L{TailState}, or C{None} when the journal is missing or has
        no valid header (the caller then loads the mailbox fully).
    """
    try:
        f = open(path, "rb+")
    except FileNotFoundError:
        return None
    with f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return None
        f.seek(size - 1)
        if f.read(1) != b"\n":
            f.seek(max(0, size - block))
            chunk = f.read()
            end = chunk.rfind(b"\n")
            size = max(0, size - len(chunk)) + end + 1
            f.truncate(size)
            if size == 0:
                return None
        uidNext = modseq = None
        tags = []
        pos = size
        carry = b""
        while pos > 0:
            start = max(0, pos - block)
            f.seek(start)
            chunk = f.read(pos - start) + carry
            pos = start
            lines = chunk.split(b"\n")
            lines.pop()
            carry = b""
            if start > 0:
                carry = lines.pop(0) + b"\n"
            for raw in reversed(lines):
                line = raw.decode("utf-8", "surrogateescape")
                kind = line[:1]
                try:
                    if kind == "{":
                        header = _readHeader(line)
                        if header is None:
                            return None
                        if uidNext is None:
                            uidNext = header["UIDNext"]
                        if modseq is None:
                            modseq = header["HighestModSeq"]
                        return TailState(uidNext, modseq, tags)
                    if kind in ("+", "F", "-"):
                        parts = line.split(" ", 6)
                        if modseq is None:
                            modseq = int(parts[2])
                        if kind == "+":
                            if uidNext is None:
                                uidNext = int(parts[1]) + 1
                            tag = tagOfName(parts[5])
                            if tag:
                                tags.append((tag, int(parts[1])))
                except (ValueError, IndexError):
                    continue
            if uidNext is not None and modseq is not None:
                return TailState(uidNext, modseq, tags)
        return None


# -- writing --------------------------------------------------------------------


class Journal:
    """
    Appends and atomic rewrites of one journal through a L{DurableWriter}.

    The writer must not see an append of the path in the same round as a
    rewrite (the append would land in the file being replaced), so appends
    made while a rewrite is in flight are held and sent as one append when
    it completes.

    @ivar path: the journal file; changed when the mailbox is renamed.
    @ivar records: lines written since the header, or C{None} if unknown
        (the mailbox was only appended to, never loaded).
    """

    def __init__(self, writer, path):
        self.writer = writer
        self.path = path
        self.records = None
        self._held = None

    @property
    def replacing(self):
        """
        Whether a rewrite is in flight.
        """
        return self._held is not None

    def append(self, text):
        """
        Append complete lines.

        @param text: C{str}, one or more lines each ending in a newline.
        @return: L{Deferred} firing once durable.
        """
        if self.records is not None:
            self.records += text.count("\n")
        if self._held is not None:
            d = Deferred()
            self._held.append((text, d))
            return d
        return self.writer.append(self.path, text.encode("utf-8", "surrogateescape"))

    def replace(self, text, records):
        """
        Rewrite the whole journal atomically.

        @param records: the lines of C{text} after the header.
        @return: L{Deferred} firing once durable.
        """
        self._held = []
        self.records = records
        d = self.writer.write(self.path, text.encode("utf-8", "surrogateescape"))
        d.addBoth(self._replaced)
        return d

    def _replaced(self, result):
        held, self._held = self._held, None
        if held:
            text = "".join(t for t, _ in held)
            sent = self.writer.append(self.path, text.encode("utf-8", "surrogateescape"))

            def release(outcome):
                for _, d in held:
                    if isinstance(outcome, Failure):
                        d.errback(outcome)
                    else:
                        d.callback(outcome)

            sent.addBoth(release)
        return result
