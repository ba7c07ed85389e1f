# -*- test-case-name: tests.store.test_mailbox -*-
"""
Tests for L{cgpro.store.mailbox.Mailbox}: the shared open mailbox the IMAP
and POP3 servers use.
"""

import os

from twisted.trial.unittest import SynchronousTestCase

from cgpro.store import mailbox as mailboxModule
from cgpro.store.errors import MailboxNameError, MessageExpunged
from cgpro.store.index import FlagTable, MessageIndex
from cgpro.store.mailbox import ADD, REMOVE, REPLACE
from tests.store.support import ACCOUNT, OTHER, START, StoreFixture, message


class MailboxTestsMixin:
    """
    A store with INBOX holding C{count} messages, opened.
    """

    count = 4

    def setUp(self):
        self.fx = StoreFixture(self)
        self.store = self.fx.store()
        for i in range(self.count):
            self.successResultOf(self.store.deliver(ACCOUNT, "INBOX", message("m%d" % i)))
        self.box = self.successResultOf(self.store.openMailbox(ACCOUNT, "INBOX"))
        self.events = []
        self.box.addListener(self.events.append)

    def reopen(self, name="INBOX", account=ACCOUNT):
        """
        @return: the mailbox as a restarted server sees it.
        """
        return self.successResultOf(self.fx.store().openMailbox(account, name))


class FlagTests(MailboxTestsMixin, SynchronousTestCase):
    """
    STORE: flags, MODSEQ, file names, durability.
    """

    def test_setFlagsPersisted(self):
        """Flag changes survive a restart, with keywords."""
        self.successResultOf(self.box.setFlags([1, 3], ["\\Seen", "$Work"], ADD))
        self.successResultOf(self.box.setFlags([3], ["\\Seen"], REMOVE))
        self.successResultOf(self.box.setFlags([4], ["\\Answered"], REPLACE))
        box = self.reopen()
        self.assertEqual([box.flags(u) for u in box.uids],
                         [("\\Seen", "$Work"), (), ("$Work",), ("\\Answered",)])
        self.assertEqual(box.keywords, ["$Work"])

    def test_modseq(self):
        """Each change bumps MODSEQ; HIGHESTMODSEQ follows and survives a restart."""
        before = self.box.highestModseq
        result = self.successResultOf(self.box.setFlags([1, 2], ["\\Flagged"], ADD))
        self.assertEqual(result.changed, {1: before + 1, 2: before + 2})
        self.assertEqual(self.box.highestModseq, before + 2)
        self.assertEqual(self.box.changedSince(before + 1), [2])
        self.assertEqual(self.reopen().highestModseq, before + 2)
        self.assertEqual(self.reopen().modseq(2), before + 2)

    def test_noChangeNoModseq(self):
        """Setting flags a message already has changes nothing."""
        before = self.box.highestModseq
        result = self.successResultOf(self.box.setFlags([1], [], REMOVE))
        self.assertEqual((result.changed, self.box.highestModseq), ({}, before))

    def test_unchangedSince(self):
        """CONDSTORE UNCHANGEDSINCE leaves newer messages and reports them."""
        self.successResultOf(self.box.setFlags([2], ["\\Seen"], ADD))
        since = self.box.modseq(1)
        result = self.successResultOf(
            self.box.setFlags([1, 2], ["\\Flagged"], ADD, unchangedSince=since))
        self.assertEqual((list(result.changed), result.failed), ([1], [2]))

    def test_fileNamesFollowFlags(self):
        """System flags are mirrored into cur/ file names; keywords are not."""
        self.successResultOf(self.box.setFlags([1], ["\\Seen", "\\Flagged", "$X"], ADD))
        self.assertTrue(self.box.path(1).endswith(":2,FS"))
        self.assertIn("/cur/", self.box.path(1))
        self.successResultOf(self.box.setFlags([1], ["\\Seen"], REMOVE))
        self.assertTrue(self.box.path(1).endswith(":2,F"))
        self.assertEqual(self.fx.files().count("cur/" + os.path.basename(self.box.path(1))), 1)
        self.successResultOf(self.box.setFlags([2], ["$X"], ADD))
        self.assertIn("/new/", self.box.path(2))

    def test_listener(self):
        """Listeners hear flag changes with the caller's origin."""
        self.successResultOf(self.box.setFlags([2], ["\\Seen"], ADD, origin="s1"))
        self.assertEqual([(e.kind, e.uids, e.origin) for e in self.events],
                         [("flags", [2], "s1")])

    def test_unseen(self):
        """The unseen count and first unseen follow \\Seen."""
        self.assertEqual((self.box.unseenCount, self.box.firstUnseen()), (4, 1))
        self.successResultOf(self.box.setFlags([1, 2], ["\\Seen"], ADD))
        self.assertEqual((self.box.unseenCount, self.box.firstUnseen()), (2, 3))
        self.successResultOf(self.box.setFlags([3, 4], ["\\Seen"], ADD))
        self.assertEqual((self.box.unseenCount, self.box.firstUnseen()), (0, None))

    def test_badFlags(self):
        """Bad flags and modes are refused without changing anything."""
        self.failureResultOf(self.box.setFlags([1], ["\\Recent"]), MailboxNameError)
        self.failureResultOf(self.box.setFlags([1], ["\\Seen"], "toggle"), ValueError)
        self.assertEqual(self.events, [])

    def test_compaction(self):
        """A journal grown past its bound is rewritten and reads back the same."""
        self.patch(mailboxModule, "COMPACT_SLACK", 10)
        for i in range(20):
            self.successResultOf(self.box.setFlags([1], ["$K%d" % i], REPLACE))
        self.successResultOf(self.box.expunge([4]))
        lines = self.fx.journal().splitlines()
        self.assertLess(len(lines), 20)
        self.assertTrue(lines[0].startswith("{"))
        box = self.reopen()
        self.assertEqual(list(box.uids), [1, 2, 3])
        self.assertEqual(box.flags(1)[-1], "$K19")
        self.assertEqual(box.highestModseq, self.box.highestModseq)
        self.assertEqual(box.expungedSince(0), ([4], True))


class ExpungeTests(MailboxTestsMixin, SynchronousTestCase):
    """
    EXPUNGE, UID EXPUNGE and QRESYNC history.
    """

    def test_expungeDeleted(self):
        """EXPUNGE removes \\Deleted messages and their files, durably."""
        self.successResultOf(self.box.setFlags([2, 4], ["\\Deleted"], ADD))
        gone = self.successResultOf(self.box.expunge(origin="s1"))
        self.assertEqual(gone, [2, 4])
        self.assertEqual(list(self.box.uids), [1, 3])
        self.assertEqual(len(self.fx.files()), 2)
        self.assertEqual(self.events[-1].kind, "expunged")
        self.assertEqual((self.events[-1].uids, self.events[-1].origin), ([2, 4], "s1"))
        box = self.reopen()
        self.assertEqual(list(box.uids), [1, 3])
        self.assertEqual(box.uidNext, 5)

    def test_expungeUids(self):
        """Given UIDs are expunged whatever their flags; unknown ones are skipped."""
        self.assertEqual(self.successResultOf(self.box.expunge([3, 99])), [3])
        self.assertEqual(self.successResultOf(self.box.expunge([3])), [])
        self.assertRaises(MessageExpunged, self.box.info, 3)
        self.assertRaises(MessageExpunged, self.box.openMessage, 3)

    def test_expungedSince(self):
        """expungedSince lists expunges after a MODSEQ, also after a restart."""
        mark = self.box.highestModseq
        self.successResultOf(self.box.expunge([1]))
        self.successResultOf(self.box.expunge([3]))
        self.assertEqual(self.box.expungedSince(mark), ([1, 3], True))
        self.assertEqual(self.box.expungedSince(mark + 1), ([3], True))
        self.assertEqual(self.reopen().expungedSince(mark), ([1, 3], True))

    def test_historyTrimmed(self):
        """Old expunges are forgotten; QRESYNC is told the history is incomplete."""
        self.patch(mailboxModule, "HISTORY_KEEP", 2)
        self.patch(mailboxModule, "COMPACT_SLACK", 0)
        for uid in (1, 2, 3):
            self.successResultOf(self.box.expunge([uid]))
        uids, complete = self.reopen().expungedSince(0)
        self.assertFalse(complete)
        self.assertEqual(uids, [2, 3])
        self.assertEqual(self.box.expungedSince(self.box.modseq(4) + 1), ([2, 3], True))

    def test_noRewriteLoop(self):
        """A long expunge history does not make every change rewrite the journal."""
        self.patch(mailboxModule, "HISTORY_KEEP", 50)
        self.patch(mailboxModule, "COMPACT_SLACK", 5)
        for i in range(30):
            self.successResultOf(self.store.deliver(ACCOUNT, "INBOX", message()))
        self.successResultOf(self.box.expunge(list(self.box.uids)[:-1]))
        rewrites = []
        original = self.box._compact
        self.patch(self.box, "_compact", lambda: rewrites.append(1) or original())
        for i in range(10):
            self.successResultOf(self.box.setFlags(self.box.uids, ["$K%d" % i], REPLACE))
        self.assertLessEqual(len(rewrites), 1)

    def test_sequenceNumbers(self):
        """Sequence numbers close up after an expunge."""
        self.successResultOf(self.box.expunge([2]))
        self.assertEqual([self.box.uidAt(s) for s in (1, 2, 3)], [1, 3, 4])
        self.assertEqual((self.box.seqOf(3), self.box.seqOf(2)), (2, None))
        self.assertEqual(list(self.box.uidsBetween(2, 3)), [3])
        self.assertRaises(IndexError, self.box.uidAt, 0)
        self.assertEqual(self.box.infoAt(1).uid, 3)


class AppendCopyMoveTests(MailboxTestsMixin, SynchronousTestCase):
    """
    APPEND, COPY and MOVE.
    """

    count = 3

    def setUp(self):
        MailboxTestsMixin.setUp(self)
        self.successResultOf(self.store.createMailbox(ACCOUNT, "Archive"))

    def test_append(self):
        """APPEND stores flags and date and notifies listeners."""
        uid = self.successResultOf(
            self.box.append(message("x"), ["\\Draft"], START - 3600, origin="s1"))
        self.assertEqual(uid, 4)
        info = self.box.info(uid)
        self.assertEqual((info.flags, info.internalDate), (("\\Draft",), START - 3600))
        self.assertEqual([(e.kind, e.uids) for e in self.events], [("added", [4])])

    def test_copy(self):
        """COPY keeps flags and dates, gives COPYUID pairs and hard-links files."""
        self.successResultOf(self.box.setFlags([2], ["\\Seen", "$Work"], ADD))
        pairs = self.successResultOf(
            self.store.copyMessages(self.box, [2, 3, 77], ACCOUNT, "Archive"))
        self.assertEqual(pairs, [(2, 1), (3, 2)])
        archive = self.reopen("Archive")
        self.assertEqual(archive.flags(1), ("\\Seen", "$Work"))
        self.assertEqual(archive.internalDate(2), self.box.internalDate(3))
        self.assertEqual(archive.readMessage(2), self.box.readMessage(3))
        self.assertEqual(os.stat(archive.path(2)).st_ino, os.stat(self.box.path(3)).st_ino)
        self.assertEqual(len(self.box), 3)

    def test_copyToOtherAccount(self):
        """COPY into another account's (shared) mailbox."""
        pairs = self.successResultOf(self.store.copyMessages(self.box, [1], OTHER, "INBOX"))
        self.assertEqual(pairs, [(1, 1)])
        self.assertEqual(len(self.reopen(account=OTHER)), 1)

    def test_move(self):
        """MOVE copies then expunges the originals."""
        pairs = self.successResultOf(
            self.store.moveMessages(self.box, [1, 3], ACCOUNT, "Archive", origin="s1"))
        self.assertEqual(pairs, [(1, 1), (3, 2)])
        self.assertEqual(list(self.box.uids), [2])
        self.assertEqual(list(self.reopen("Archive").uids), [1, 2])
        self.assertEqual([e.kind for e in self.events], ["expunged"])

    def test_copyIntoOpenTarget(self):
        """A target mailbox that is open sees the copies arrive."""
        archive = self.successResultOf(self.store.openMailbox(ACCOUNT, "Archive"))
        events = []
        archive.addListener(events.append)
        self.successResultOf(self.store.copyMessages(self.box, [1, 2], ACCOUNT, "Archive"))
        self.assertEqual([(e.kind, e.uids) for e in events], [("added", [1, 2])])


class SessionTests(MailboxTestsMixin, SynchronousTestCase):
    """
    Sharing, \\Recent, POP3 lock, reading.
    """

    count = 2

    def test_shared(self):
        """Two opens share one mailbox object; closing releases it."""
        other = self.successResultOf(self.store.openMailbox(ACCOUNT, "inbox"))
        self.assertIs(other, self.box)
        self.assertEqual(self.box.refs, 2)
        other.close()
        self.box.close()
        self.assertEqual(self.box.refs, 0)

    def test_recent(self):
        """\\Recent goes to the first session that claims it."""
        self.assertEqual(self.box.recentCount, 2)
        self.assertEqual(self.box.claimRecent(), 1)
        self.assertEqual(self.box.recentCount, 0)
        self.successResultOf(self.store.deliver(ACCOUNT, "INBOX", message()))
        self.assertEqual(self.box.recentCount, 1)
        self.assertEqual(self.box.claimRecent(), 3)
        self.assertEqual(self.reopen().recentCount, 0)

    def test_popLock(self):
        """The session lock admits one owner at a time."""
        a, b = object(), object()
        self.assertTrue(self.box.tryLock(a))
        self.assertTrue(self.box.tryLock(a))
        self.assertFalse(self.box.tryLock(b))
        self.box.unlock(b)
        self.assertFalse(self.box.tryLock(b))
        self.box.unlock(a)
        self.assertTrue(self.box.tryLock(b))

    def test_read(self):
        """openMessage gives a file that survives a rename of the message."""
        f = self.box.openMessage(1)
        self.addCleanup(f.close)
        self.successResultOf(self.box.setFlags([1], ["\\Seen"], ADD))
        self.assertIn(b"Subject: m0", f.read())
        self.assertEqual(self.box.size(1), len(message("m0")))

    def test_listenerErrorsContained(self):
        """A failing listener does not stop the others."""
        def broken(event):
            raise RuntimeError("boom")

        self.box._listeners.insert(0, broken)
        self.successResultOf(self.box.setFlags([1], ["\\Seen"], ADD))
        self.assertEqual(len(self.events), 1)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.box.removeListener(broken)
        self.box.removeListener(broken)

    def test_idleCacheUnloads(self):
        """Mailboxes nobody has open are unloaded beyond the cache budget."""
        store = self.fx.store(cacheMessages=1)
        box = self.successResultOf(store.openMailbox(ACCOUNT, "INBOX"))
        box.close()
        self.assertIsNone(box.index)
        self.assertEqual(self.successResultOf(store.deliver(ACCOUNT, "INBOX", message())), 3)
        self.assertEqual(len(self.successResultOf(store.openMailbox(ACCOUNT, "INBOX"))), 3)


class IndexTests(SynchronousTestCase):
    """
    L{MessageIndex} and L{FlagTable} on their own.
    """

    def test_addRemove(self):
        """Rows stay sorted by UID through inserts and (bulk) removals."""
        index = MessageIndex()
        for uid in (5, 1, 3, 9):
            index.add(uid, uid, 0, uid * 10, 0, "new/%d" % uid)
        self.assertEqual(list(index.uids), [1, 3, 5, 9])
        index.remove([0, 2])
        self.assertEqual((list(index.uids), index.names), ([3, 9], ["new/3", "new/9"]))
        for uid in range(10, 110):
            index.add(uid, 0, 0, 0, 0, "n")
        index.remove(range(0, 100))
        self.assertEqual(list(index.uids), [108, 109])
        self.assertEqual(index.span(100, 108), (0, 1))

    def test_flagTable(self):
        """Keywords get bits on first use and keep their first spelling."""
        table = FlagTable()
        mask = table.mask(["\\seen", "$Work", "$work", "Junk"])
        self.assertEqual(table.names(mask), ("\\Seen", "$Work", "Junk"))
        self.assertEqual(table.keywords(), ["$Work", "Junk"])
        self.assertRaises(MailboxNameError, table.bit, "bad(")
