# -*- test-case-name: tests.store.test_journal -*-
"""
Tests for L{cgpro.store.journal}: line format, parsing, tail reading and
held appends.
"""

import os

from twisted.internet.defer import Deferred, succeed
from twisted.trial.unittest import SynchronousTestCase

from cgpro.store import journal as J
from tests.store.support import tempFolder


def sample():
    return "".join([
        J.formatHeader(1700000000, 1, 1, 1, 0),
        J.formatAdd(1, 2, 1700000001, 10, "new/a,S=10,D=00112233445566aa", ()),
        J.formatAdd(2, 3, 1700000002, 20, "cur/b,S=20:2,S", ("\\Seen",)),
        J.formatAdd(3, 4, 1700000003, 30, "new/c d", ()),
        J.formatFlags(1, 5, ("\\Flagged", "$Work")),
        J.formatExpunge(2, 6),
        J.formatRecent(3),
    ])


class FormatTests(SynchronousTestCase):
    """
    Lines are one record each, human-readable, and parse back.
    """

    def test_lines(self):
        """The records look as documented."""
        text = sample().splitlines()
        self.assertEqual(text[0], '{Format="cgpro-maildir/1";HighestModSeq=#1;HistoryModSeq=#0;'
                                  'RecentUID=#1;UIDNext=#1;UIDValidity=#1700000000;}')
        self.assertEqual(text[2], "+ 2 3 1700000002 20 cur/b,S=20:2,S (\\Seen)")
        self.assertEqual(text[3], "+ 3 4 1700000003 30 new/c%20d ()")
        self.assertEqual(text[4:], ["F 1 5 (\\Flagged)($Work)", "- 2 6", "R 3"])

    def test_parse(self):
        """Replaying gives the live rows, expunges, counters and history."""
        result = J.LoadResult()
        uids, modseqs, dates, sizes, masks, names, gone = J.parseJournal(sample(), result)
        self.assertEqual(result.header["UIDValidity"], 1700000000)
        self.assertEqual(uids, [1, 2, 3])
        self.assertEqual(masks[1], -1)
        self.assertEqual(result.flags.names(masks[0]), ("\\Flagged", "$Work"))
        self.assertEqual(names[0], "cur/a,S=10,D=00112233445566aa:2,F")
        self.assertEqual(names[2], "new/c d")
        self.assertEqual(gone, {"b,S=20"})
        self.assertEqual((result.uidNext, result.modseq, result.recentUid), (4, 6, 3))
        self.assertEqual((result.history, result.records, result.bad), ([(6, 2)], 6, 0))

    def test_fastAndSlowAgree(self):
        """The column parser and the line-by-line parser read the same."""
        lines = sample().splitlines(True)
        adds = [line for line in lines if line.startswith("+")]
        fast = J.parseJournal(lines[0] + "".join(adds), J.LoadResult())
        shuffled = J.parseJournal(lines[0] + "".join(reversed(adds)), J.LoadResult())
        self.assertEqual(fast[:4], shuffled[:4])
        self.assertEqual(fast[5], shuffled[5])

    def test_unknownFlagDropped(self):
        """A flag this version cannot store is dropped, not fatal."""
        text = J.formatHeader(1, 1, 1, 1, 0) + "+ 1 1 0 1 new/x (\\Seen)(\\Bogus)\n"
        result = J.LoadResult()
        masks = J.parseJournal(text, result)[4]
        self.assertEqual(result.flags.names(masks[0]), ("\\Seen",))


class TailTests(SynchronousTestCase):
    """
    L{J.readTail}: appending without loading.
    """

    def setUp(self):
        self.path = os.path.join(tempFolder(self), J.JOURNAL_FILE)

    def write(self, text):
        with open(self.path, "w") as f:
            f.write(text)

    def test_fromAddLine(self):
        """The last + line gives UIDNEXT, the last line MODSEQ, + lines their tags."""
        self.write(sample())
        tail = J.readTail(self.path)
        self.assertEqual((tail.uidNext, tail.modseq), (4, 6))
        self.assertEqual(tail.tags, [("00112233445566aa", 1)])

    def test_headerOnly(self):
        """A fresh journal's header gives the counters."""
        self.write(J.formatHeader(7, 12, 30, 1, 0))
        tail = J.readTail(self.path)
        self.assertEqual((tail.uidNext, tail.modseq), (12, 30))

    def test_acrossBlocks(self):
        """Many lines after the last + line are read backwards block by block."""
        text = sample() + "".join(J.formatFlags(3, 10 + i, ("\\Seen",)) for i in range(500))
        self.write(text)
        tail = J.readTail(self.path, block=256)
        self.assertEqual((tail.uidNext, tail.modseq), (4, 509))

    def test_tornTailCut(self):
        """A torn last line is cut off the file."""
        self.write(sample() + "+ 4 7 17")
        tail = J.readTail(self.path)
        self.assertEqual((tail.uidNext, tail.modseq), (4, 6))
        with open(self.path) as f:
            self.assertEqual(f.read(), sample())

    def test_unusable(self):
        """No file, an empty one or no header: None (load fully instead)."""
        self.assertIsNone(J.readTail(self.path))
        self.write("")
        self.assertIsNone(J.readTail(self.path))
        self.write("- 1 2\n")
        self.assertIsNone(J.readTail(self.path))


class FakeWriter:
    """
    Records calls; writes complete when the test says so.
    """

    def __init__(self):
        self.calls = []
        self.writes = []

    def append(self, path, data):
        self.calls.append(("append", data))
        return succeed(None)

    def write(self, path, data):
        self.calls.append(("write", data))
        d = Deferred()
        self.writes.append(d)
        return d


class JournalWriterTests(SynchronousTestCase):
    """
    L{J.Journal}: appends never share a writer round with a rewrite.
    """

    def test_appendsHeldDuringReplace(self):
        """Appends made while a rewrite is in flight follow it as one append."""
        writer = FakeWriter()
        journal = J.Journal(writer, "/x")
        journal.replace("{}\n", 0)
        self.assertTrue(journal.replacing)
        held = [journal.append("R 1\n"), journal.append("R 2\n")]
        self.assertEqual(len(writer.calls), 1)
        self.assertNoResult(held[0])
        writer.writes[0].callback(None)
        self.assertEqual(writer.calls[1], ("append", b"R 1\nR 2\n"))
        for d in held:
            self.successResultOf(d)
        self.assertFalse(journal.replacing)
        self.assertEqual(journal.records, 2)
