# -*- test-case-name: tests.store.test_recovery -*-
"""
Crash recovery: what a server restarted after SIGKILL or power loss finds,
simulated by leaving the folder as a crash would.
"""

import os
import time

from twisted.trial.unittest import SynchronousTestCase

from cgpro.store.mailbox import ADD
from cgpro.store.names import NameGenerator
from tests.store.support import ACCOUNT, StoreFixture, message


class RecoveryTests(SynchronousTestCase):
    """
    A store opening a folder a crash left behind.
    """

    def setUp(self):
        self.fx = StoreFixture(self)
        self.store = self.fx.store()
        for i in range(3):
            self.successResultOf(self.store.deliver(ACCOUNT, "INBOX", message("m%d" % i)))
        self.names = NameGenerator(self.fx.clock, host="crashed", pid=4242)

    def restart(self):
        """
        @return: INBOX as a restarted server opens it.
        """
        self.store = self.fx.store()
        return self.successResultOf(self.store.openMailbox(ACCOUNT, "INBOX"))

    def journalPath(self):
        return self.fx.folder("cgpro.journal")

    def dropFile(self, sub, name, data):
        path = os.path.join(self.fx.folder(sub), name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def test_unjournaledFileAdopted(self):
        """A file in new/ the journal does not know gets the next UID, durably."""
        data = message("late")
        self.dropFile("new", self.names.make(len(data)), data)
        box = self.restart()
        self.assertEqual(list(box.uids), [1, 2, 3, 4])
        self.assertIn(b"Subject: late", box.readMessage(4))
        self.assertEqual(box.size(4), len(data))
        self.assertEqual(list(self.restart().uids), [1, 2, 3, 4])

    def test_foreignFileInCur(self):
        """A file another tool put in cur/ is adopted with its Maildir flags."""
        self.dropFile("cur", "1700000000.abc.otherhost:2,FS", message("mutt"))
        box = self.restart()
        self.assertEqual(box.flags(4), ("\\Seen", "\\Flagged"))

    def test_awkwardForeignNames(self):
        """Foreign files with spaces or non-UTF-8 bytes in their names round-trip."""
        weird = os.fsdecode(b"17000 odd \xff name")
        self.dropFile("new", weird, message("odd"))
        box = self.restart()
        self.assertEqual(box.path(4), os.path.join(self.fx.folder("new"), weird))
        self.assertIn("new/17000%20odd%20%FF%20name", self.fx.journal())
        box = self.restart()
        self.assertEqual(list(box.uids), [1, 2, 3, 4])
        self.successResultOf(box.setFlags([4], ["\\Seen"], ADD))
        self.assertIn(b"Subject: odd", self.restart().readMessage(4))

    def test_tornJournalTail(self):
        """A torn last journal line is ignored and cut off; appends go on."""
        with open(self.journalPath(), "ab") as f:
            f.write(b"+ 4 9 1795000000 12 new/torn")
        box = self.restart()
        self.assertEqual(list(box.uids), [1, 2, 3])
        self.assertTrue(self.fx.journal().endswith("\n"))
        self.successResultOf(self.store.deliver(ACCOUNT, "INBOX", message("after")))
        self.assertEqual(list(self.restart().uids), [1, 2, 3, 4])

    def test_tornTailBeforeClosedDelivery(self):
        """A delivery into an unopened mailbox cuts a torn tail off first."""
        with open(self.journalPath(), "ab") as f:
            f.write(b"F 1 9 (\\Se")
        store = self.fx.store()
        self.assertEqual(self.successResultOf(store.deliver(ACCOUNT, "INBOX", message())), 4)
        box = self.restart()
        self.assertEqual(list(box.uids), [1, 2, 3, 4])
        self.assertEqual(box.flags(1), ())

    def test_garbageLinesSkipped(self):
        """Lines that do not parse are skipped, the rest is used."""
        with open(self.journalPath(), "ab") as f:
            f.write(b"F x y\n\x00\x00\x00\nZ 1 2\n+ 9 9\nF 2 20 (\\Flagged)\n")
        box = self.restart()
        self.assertEqual(list(box.uids), [1, 2, 3])
        self.assertEqual(box.flags(2), ("\\Flagged",))

    def test_vanishedFileExpunged(self):
        """A journal entry whose file is gone is expunged, durably."""
        box = self.restart()
        os.unlink(box.path(2))
        box = self.restart()
        self.assertEqual(list(box.uids), [1, 3])
        self.assertEqual(box.expungedSince(0)[0], [2])
        self.assertIn("- 2 ", self.fx.journal())
        self.assertEqual(list(self.restart().uids), [1, 3])

    def test_tmpCleaned(self):
        """Our temporary files in tmp/ are removed; a fresh foreign one is kept."""
        ours = self.dropFile("tmp", self.names.make(5), b"part")
        theirs = self.dropFile("tmp", "1700000000.other.host", b"writing")
        old = self.dropFile("tmp", "ancient.tmp", b"old")
        os.utime(old, (time.time() - 40 * 3600,) * 2)
        stale = self.dropFile("", "cgpro.journal.tmp", b"half a rewrite")
        self.restart()
        self.assertFalse(os.path.exists(ours))
        self.assertTrue(os.path.exists(theirs))
        self.assertFalse(os.path.exists(old))
        self.assertFalse(os.path.exists(stale))

    def test_expungedFileNotResurrected(self):
        """A file whose expunge was journaled but not yet removed is removed."""
        box = self.restart()
        path = box.path(2)
        with open(path, "rb") as f:
            data = f.read()
        self.successResultOf(box.expunge([2]))
        with open(path, "wb") as f:
            f.write(data)
        box = self.restart()
        self.assertEqual(list(box.uids), [1, 3])
        self.assertFalse(os.path.exists(path))

    def test_renameLagFound(self):
        """A file still under its pre-flag-change name is found by base name."""
        box = self.restart()
        old = box.path(1)
        self.successResultOf(box.setFlags([1], ["\\Seen"], ADD))
        os.rename(box.path(1), old)
        box = self.restart()
        self.assertEqual(list(box.uids), [1, 2, 3])
        self.assertEqual(box.flags(1), ("\\Seen",))
        self.assertEqual(box.path(1), old)

    def test_missingJournal(self):
        """A Maildir without journal (another tool's) gets one and UIDs."""
        os.unlink(self.journalPath())
        box = self.restart()
        self.assertEqual(len(box), 3)
        self.assertTrue(self.fx.journal().startswith("{Format="))
        self.assertEqual(list(self.restart().uids), list(box.uids))

    def test_badHeaderNewValidity(self):
        """A journal without a valid header means new UIDVALIDITY and UIDs."""
        validity = self.restart().uidValidity
        with open(self.journalPath()) as f:
            lines = f.readlines()
        with open(self.journalPath(), "w") as f:
            f.writelines(["{Format=other;}\n"] + lines[1:])
        self.fx.clock.advance(10)
        box = self.restart()
        self.assertNotEqual(box.uidValidity, validity)
        self.assertEqual(len(box), 3)

    def test_outOfOrderJournal(self):
        """A hand-edited journal with lines out of order still loads."""
        with open(self.journalPath()) as f:
            lines = f.readlines()
        with open(self.journalPath(), "w") as f:
            f.writelines([lines[0], lines[3], lines[1], lines[2], lines[1]])
        box = self.restart()
        self.assertEqual(list(box.uids), [1, 2, 3])

    def test_hostileJournalName(self):
        """A journal name pointing outside the mailbox is never touched."""
        victim = os.path.join(self.fx.base, "victim")
        with open(victim, "w") as f:
            f.write("keep")
        rel = os.path.relpath(victim, self.fx.folder())
        with open(self.journalPath(), "a") as f:
            f.write("+ 50 50 0 4 %s ()\n- 50 51\n+ 51 52 0 4 %s (\\Seen)\n" % (rel, rel))
        box = self.restart()
        self.assertEqual(list(box.uids), [1, 2, 3])
        self.assertTrue(os.path.exists(victim))
