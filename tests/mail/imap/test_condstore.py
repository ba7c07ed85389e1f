# -*- test-case-name: tests.mail.imap.test_condstore -*-
"""
Tests for CONDSTORE (RFC 7162): HIGHESTMODSEQ, FETCH MODSEQ and
CHANGEDSINCE, STORE UNCHANGEDSINCE, SEARCH MODSEQ, ENABLE.
"""

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from tests.mail.imap.support import USER, Session, makeContext, message


class CondstoreTests(SynchronousTestCase):
    """
    Mod-sequences over a session.
    """

    def setUp(self):
        self.clock = Clock()
        self.context = makeContext(self, self.clock)
        self.store = self.context.mailStore
        for i in range(3):
            self.successResultOf(self.store.deliver(USER, "INBOX", message("m%d" % i)))
        self.session = Session(self, self.context)
        self.session.login(self)
        self.box = self.successResultOf(self.store.openMailbox(USER, "INBOX"))
        self.addCleanup(self.box.close)

    def test_select(self):
        """SELECT (CONDSTORE) reports HIGHESTMODSEQ and turns MODSEQ on for FLAGS."""
        out = self.session.ok(self, "SELECT INBOX (CONDSTORE)")
        self.assertIn("* OK [HIGHESTMODSEQ %d]" % (self.box.highestModseq,), out)
        out = self.session.ok(self, "FETCH 1 FLAGS")
        self.assertIn("* 1 FETCH (FLAGS (\\Recent) MODSEQ (%d))" % (self.box.modseq(1),), out)

    def test_changedSince(self):
        """FETCH (CHANGEDSINCE n) returns only messages changed after n, with MODSEQ."""
        self.session.ok(self, "SELECT INBOX")
        before = self.box.highestModseq
        self.session.ok(self, "STORE 2 +FLAGS.SILENT (\\Seen)")
        out = self.session.ok(self, "FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % (before,))
        self.assertNotIn("* 1 FETCH", out)
        self.assertIn("* 2 FETCH (FLAGS (\\Seen \\Recent) MODSEQ (%d))" % (
            self.box.modseq(2),), out)

    def test_searchModseq(self):
        """SEARCH MODSEQ answers with the highest mod-sequence found."""
        self.session.ok(self, "SELECT INBOX")
        before = self.box.highestModseq
        self.session.ok(self, "STORE 3 +FLAGS.SILENT (\\Flagged)")
        out = self.session.ok(self, "SEARCH MODSEQ %d" % (before + 1,))
        self.assertIn("* SEARCH 3 (MODSEQ %d)" % (self.box.modseq(3),), out)

    def test_enable(self):
        """ENABLE CONDSTORE answers ENABLED once; flag updates then carry MODSEQ."""
        out = self.session.ok(self, "ENABLE CONDSTORE")
        self.assertIn("* ENABLED CONDSTORE", out)
        self.session.ok(self, "SELECT INBOX")
        other = Session(self, self.context)
        other.login(self)
        other.ok(self, "SELECT INBOX")
        other.ok(self, "STORE 1 +FLAGS.SILENT (\\Answered)")
        out = self.session.ok(self, "NOOP")
        self.assertIn("* 1 FETCH (UID 1 FLAGS (\\Answered \\Recent) MODSEQ (%d))" % (
            self.box.modseq(1),), out)
        out = self.session.ok(self, "STATUS INBOX (HIGHESTMODSEQ)")
        self.assertIn("HIGHESTMODSEQ %d" % (self.box.highestModseq,), out)


class QresyncTests(SynchronousTestCase):
    """
    QRESYNC: resynchronizing in SELECT and VANISHED.
    """

    def setUp(self):
        self.context = makeContext(self)
        self.store = self.context.mailStore
        for i in range(5):
            self.successResultOf(self.store.deliver(USER, "INBOX", message("m%d" % i)))
        self.box = self.successResultOf(self.store.openMailbox(USER, "INBOX"))
        self.addCleanup(self.box.close)
        self.session = Session(self, self.context)
        self.session.login(self)

    def test_selectResync(self):
        """SELECT (QRESYNC ...) reports what vanished and what changed since a MODSEQ."""
        validity, modseq = self.box.uidValidity, self.box.highestModseq
        other = Session(self, self.context)
        other.login(self)
        other.ok(self, "SELECT INBOX")
        other.ok(self, "STORE 2,4 +FLAGS.SILENT (\\Deleted)")
        other.ok(self, "EXPUNGE")
        other.ok(self, "STORE 1 +FLAGS.SILENT (\\Seen)")
        out, tagged = self.session.command("SELECT INBOX (QRESYNC (%d %d))" % (validity, modseq))
        self.assertTrue(tagged.startswith("BAD"))
        self.assertIn("ENABLED QRESYNC", self.session.ok(self, "ENABLE QRESYNC"))
        out = self.session.ok(self, "SELECT INBOX (QRESYNC (%d %d 1:5))" % (validity, modseq))
        self.assertIn("* VANISHED (EARLIER) 2,4\r\n", out)
        self.assertIn("* 1 FETCH (UID 1 FLAGS (\\Seen) MODSEQ (%d))" % (self.box.modseq(1),),
                      out)
        out = self.session.ok(self, "SELECT INBOX (QRESYNC (%d %d))" % (validity + 1, modseq))
        self.assertIn("* OK [CLOSED]", out)
        self.assertNotIn("VANISHED", out)

    def test_vanishedInsteadOfExpunge(self):
        """With QRESYNC on, expunges are reported as VANISHED UID sets."""
        self.session.ok(self, "ENABLE QRESYNC")
        self.session.ok(self, "SELECT INBOX")
        self.session.ok(self, "STORE 2:3 +FLAGS.SILENT (\\Deleted)")
        out = self.session.ok(self, "EXPUNGE")
        self.assertIn("* VANISHED 2:3\r\n", out)
        self.assertNotIn("EXPUNGE\r\n", out)
        modseq = self.box.highestModseq
        out = self.session.ok(self, "UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % (
            modseq - 5,))
        self.assertIn("* VANISHED (EARLIER) 2:3", out)
