# -*- test-case-name: tests.mail.imap.test_message -*-
"""
Tests for STORE, COPY, MOVE, EXPUNGE and their UID forms
(L{cgpro.mail.imap.commands.message}).
"""

from twisted.trial.unittest import SynchronousTestCase

from tests.mail.imap.support import USER, Session, makeContext, message


class MessageTests(SynchronousTestCase):
    """
    Changing messages of the selected mailbox.
    """

    def setUp(self):
        self.context = makeContext(self)
        self.store = self.context.mailStore
        for i in range(4):
            self.successResultOf(self.store.deliver(USER, "INBOX", message("m%d" % i)))
        self.successResultOf(self.store.createMailbox(USER, "Archive"))
        self.session = Session(self, self.context)
        self.session.login(self)
        self.session.ok(self, "SELECT INBOX")

    def box(self, name="INBOX"):
        box = self.successResultOf(self.store.openMailbox(USER, name))
        self.addCleanup(box.close)
        return box

    def test_store(self):
        """FLAGS, +FLAGS and -FLAGS answer with the new flags; .SILENT answers nothing."""
        out = self.session.ok(self, "STORE 1:2 +FLAGS (\\Seen $Work)")
        self.assertIn("* 1 FETCH (FLAGS (\\Seen $Work \\Recent))", out)
        self.assertIn("* 2 FETCH (FLAGS (\\Seen $Work \\Recent))", out)
        out = self.session.ok(self, "STORE 2 -FLAGS.SILENT ($Work)")
        self.assertNotIn("FETCH", out)
        out = self.session.ok(self, "UID STORE 3 FLAGS \\Answered")
        self.assertIn("* 3 FETCH (FLAGS (\\Answered \\Recent) UID 3)", out)
        box = self.box()
        self.assertEqual([box.flags(u) for u in box.uids],
                         [("\\Seen", "$Work"), ("\\Seen",), ("\\Answered",), ()])

    def test_storeErrors(self):
        """Bad actions and flags are BAD; \\Recent is ignored."""
        for line in ("STORE 1 FLAGZ (\\Seen)", "STORE 1 +FLAGS (\\Bogus)", "STORE 1 +FLAGS"):
            out, tagged = self.session.command(line)
            self.assertTrue(tagged.startswith("BAD"), line)
        self.session.ok(self, "STORE 1 +FLAGS (\\Recent)")

    def test_copy(self):
        """COPY answers COPYUID and keeps flags; a missing target is TRYCREATE."""
        self.session.ok(self, "STORE 2 +FLAGS.SILENT (\\Flagged)")
        out = self.session.ok(self, "COPY 2:3 Archive")
        validity = self.box("Archive").uidValidity
        self.assertIn("OK [COPYUID %d 2:3 1:2] COPY completed" % (validity,), out)
        self.assertEqual(self.box("Archive").flags(1), ("\\Flagged",))
        out, tagged = self.session.command("COPY 1 Nope")
        self.assertTrue(tagged.startswith("NO [TRYCREATE]"))
        self.assertEqual(len(self.box()), 4)

    def test_move(self):
        """MOVE answers COPYUID untagged, then EXPUNGE, then OK."""
        out = self.session.ok(self, "MOVE 2:3 Archive")
        self.assertRegex(out, r"\* OK \[COPYUID \d+ 2:3 1:2\] moved\r\n"
                              r"\* 2 EXPUNGE\r\n\* 2 EXPUNGE\r\n\w+ OK MOVE completed")
        self.assertEqual(list(self.box().uids), [1, 4])
        self.assertEqual(len(self.box("Archive")), 2)
        out = self.session.ok(self, "UID MOVE 4 Archive")
        self.assertIn("* 2 EXPUNGE", out)

    def test_expunge(self):
        """EXPUNGE removes \\Deleted messages, reporting sequence numbers as they shift."""
        self.session.ok(self, "STORE 2:3 +FLAGS.SILENT (\\Deleted)")
        out = self.session.ok(self, "EXPUNGE")
        self.assertIn("* 2 EXPUNGE\r\n* 2 EXPUNGE\r\n", out)
        out = self.session.ok(self, "FETCH 2 UID")
        self.assertIn("* 2 FETCH (UID 4)", out)

    def test_uidExpunge(self):
        """UID EXPUNGE removes only the named \\Deleted messages."""
        self.session.ok(self, "STORE 1:3 +FLAGS.SILENT (\\Deleted)")
        out = self.session.ok(self, "UID EXPUNGE 2:4")
        self.assertIn("* 2 EXPUNGE\r\n* 2 EXPUNGE\r\n", out)
        self.assertEqual(list(self.box().uids), [1, 4])

    def test_readOnly(self):
        """In EXAMINE, STORE, EXPUNGE and MOVE are refused; COPY works."""
        self.session.ok(self, "EXAMINE INBOX")
        for line in ("STORE 1 +FLAGS (\\Seen)", "EXPUNGE", "MOVE 1 Archive"):
            out, tagged = self.session.command(line)
            self.assertTrue(tagged.startswith("NO [READ-ONLY]"), line)
        self.session.ok(self, "COPY 1 Archive")

    def test_condstoreUnchangedSince(self):
        """STORE (UNCHANGEDSINCE n) leaves messages changed after n, naming them MODIFIED."""
        box = self.box()
        modseq = box.modseq(1)
        self.session.ok(self, "STORE 2 +FLAGS.SILENT (\\Seen)")
        out, tagged = self.session.command(
            "STORE 1:2 (UNCHANGEDSINCE %d) +FLAGS (\\Flagged)" % (box.modseq(1),))
        self.assertTrue(tagged.startswith("OK [MODIFIED 2]"), out)
        self.assertIn("* 1 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ (%d))" % (box.modseq(1),),
                      out)
        self.assertGreater(box.modseq(1), modseq)
