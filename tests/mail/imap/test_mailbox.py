# -*- test-case-name: tests.mail.imap.test_mailbox -*-
"""
Tests for L{cgpro.mail.imap.commands.mailbox}: SELECT/EXAMINE, CREATE,
DELETE, RENAME, subscriptions, LIST/LSUB, STATUS, APPEND, CLOSE and
UNSELECT.
"""

from twisted.trial.unittest import SynchronousTestCase

from tests.mail.imap.support import USER, Session, makeContext, message


class MailboxTests(SynchronousTestCase):
    """
    Mailbox commands of a logged-in session.
    """

    def setUp(self):
        self.context = makeContext(self)
        self.store = self.context.mailStore
        for i in range(3):
            self.successResultOf(self.store.deliver(USER, "INBOX", message("m%d" % i)))
        self.session = Session(self, self.context)
        self.session.login(self)

    def test_select(self):
        """SELECT reports FLAGS, EXISTS, RECENT, UNSEEN, UIDVALIDITY, UIDNEXT; READ-WRITE."""
        out = self.session.ok(self, "SELECT inbox")
        for expected in ("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
                         "* 3 EXISTS", "* 3 RECENT", "* OK [UNSEEN 1]", "* OK [UIDVALIDITY ",
                         "* OK [UIDNEXT 4]", "OK [READ-WRITE] SELECT completed",
                         "\\Draft \\*)]"):
            self.assertIn(expected, out)
        out = self.session.ok(self, "SELECT INBOX")
        self.assertIn("* 0 RECENT", out)

    def test_examine(self):
        """EXAMINE is read-only: no \\Recent claimed, STORE refused."""
        out = self.session.ok(self, "EXAMINE INBOX")
        self.assertIn("[READ-ONLY]", out)
        out, tagged = self.session.command("STORE 1 +FLAGS (\\Seen)")
        self.assertTrue(tagged.startswith("NO [READ-ONLY]"))
        self.session.ok(self, "FETCH 1 BODY[]")
        self.assertNotIn("\\Seen", self.session.ok(self, "FETCH 1 FLAGS"))

    def test_selectMissing(self):
        """SELECT of an unknown mailbox is NO [NONEXISTENT] and leaves nothing selected."""
        self.session.ok(self, "SELECT INBOX")
        out, tagged = self.session.command("SELECT Nope")
        self.assertTrue(tagged.startswith("NO [NONEXISTENT]"))
        self.assertEqual(self.session.server.state, "auth")

    def test_createDeleteRename(self):
        """CREATE, RENAME (with children) and DELETE change the account's mailboxes."""
        self.session.ok(self, "CREATE Work/2024")
        self.session.ok(self, "CREATE Work")
        out, tagged = self.session.command("CREATE Work")
        self.assertTrue(tagged.startswith("NO [ALREADYEXISTS]"))
        self.session.ok(self, "SUBSCRIBE Work")
        self.session.ok(self, "RENAME Work Jobs")
        self.assertEqual(self.store.listMailboxes(USER), ["INBOX", "Jobs", "Jobs/2024"])
        self.assertEqual(self.store.subscriptions(USER), ["Jobs"])
        self.session.ok(self, "DELETE Jobs/2024")
        out, tagged = self.session.command("DELETE INBOX")
        self.assertTrue(tagged.startswith("NO"))
        out, tagged = self.session.command("DELETE Nope")
        self.assertTrue(tagged.startswith("NO [NONEXISTENT]"))
        self.assertEqual(self.store.listMailboxes(USER), ["INBOX", "Jobs"])

    def test_renameInbox(self):
        """RENAME INBOX moves its messages into a new mailbox and leaves INBOX empty."""
        self.session.ok(self, "RENAME INBOX Old")
        self.assertEqual(self.successResultOf(self.store.status(USER, "INBOX"))["MESSAGES"], 0)
        self.assertEqual(self.successResultOf(self.store.status(USER, "Old"))["MESSAGES"], 3)

    def test_list(self):
        """LIST with * and %, CHILDREN, SPECIAL-USE, implicit parents and the root."""
        for name in ("Sent", "Trash", "a/b/c", "Drafts"):
            self.successResultOf(self.store.createMailbox(USER, name))
        out = self.session.ok(self, 'LIST "" "*"')
        self.assertIn('* LIST (\\HasNoChildren) "/" "INBOX"', out)
        self.assertIn('* LIST (\\HasNoChildren \\Sent) "/" "Sent"', out)
        self.assertIn('* LIST (\\HasNoChildren \\Trash) "/" "Trash"', out)
        self.assertIn('* LIST (\\Noselect \\HasChildren) "/" "a"', out)
        self.assertIn('* LIST (\\HasNoChildren) "/" "a/b/c"', out)
        out = self.session.ok(self, 'LIST "" "%"')
        self.assertNotIn("a/b", out)
        self.assertIn('"a"', out)
        out = self.session.ok(self, 'LIST "a/" "%"')
        self.assertIn('* LIST (\\Noselect \\HasChildren) "/" "a/b"', out)
        self.assertNotIn('"a/b/c"', out)
        out = self.session.ok(self, 'LIST "" ""')
        self.assertIn('* LIST (\\Noselect) "/" ""', out)
        out = self.session.ok(self, 'LIST "" inbox')
        self.assertIn('"INBOX"', out)
        out = self.session.ok(self, 'LIST (SPECIAL-USE) "" "*"')
        self.assertNotIn('"INBOX"', out)
        self.assertIn('"Drafts"', out)

    def test_listUtf7(self):
        """Non-ASCII names travel in modified UTF-7 both ways."""
        self.session.ok(self, "CREATE Entw&APw-rfe")
        self.assertIn("Entwürfe", self.store.listMailboxes(USER))
        out = self.session.ok(self, 'LIST "" "Entw*"')
        self.assertIn('"Entw&APw-rfe"', out)

    def test_lsub(self):
        """LSUB and LIST (SUBSCRIBED) show subscribed mailboxes."""
        self.successResultOf(self.store.createMailbox(USER, "News"))
        self.session.ok(self, "SUBSCRIBE News")
        out = self.session.ok(self, 'LSUB "" "*"')
        self.assertIn('* LSUB () "/" "News"', out)
        out = self.session.ok(self, 'LIST (SUBSCRIBED) "" "*"')
        self.assertIn('\\Subscribed) "/" "News"', out)
        self.assertNotIn('"INBOX"', out)
        self.session.ok(self, "UNSUBSCRIBE News")
        self.assertNotIn("News", self.session.ok(self, 'LSUB "" "*"'))
        out, tagged = self.session.command("SUBSCRIBE Nope")
        self.assertTrue(tagged.startswith("NO [NONEXISTENT]"))

    def test_status(self):
        """STATUS reports the asked items; unknown items are BAD."""
        out = self.session.ok(self, "STATUS INBOX (MESSAGES RECENT UIDNEXT UNSEEN UIDVALIDITY)")
        self.assertRegex(out, r'\* STATUS "INBOX" \(MESSAGES 3 RECENT 3 UIDNEXT 4 UNSEEN 3 '
                              r'UIDVALIDITY \d+\)')
        out, tagged = self.session.command("STATUS INBOX (FOO)")
        self.assertTrue(tagged.startswith("BAD"))

    def test_append(self):
        """APPEND with flags and a date answers APPENDUID; the message is stored as sent."""
        data = message("appended")
        out = self.session.send(
            b'a APPEND INBOX (\\Seen $Work) "17-Jul-1996 02:44:25 -0700" {%d+}\r\n%s\r\n' % (
                len(data), data))
        self.assertRegex(out, r"a OK \[APPENDUID \d+ 4\] APPEND completed")
        box = self.successResultOf(self.store.openMailbox(USER, "INBOX"))
        self.assertEqual(box.readMessage(4), data)
        self.assertEqual(box.flags(4), ("\\Seen", "$Work"))
        self.assertEqual(box.internalDate(4), 837596665)
        box.close()

    def test_appendSelected(self):
        """APPEND to the selected mailbox reports EXISTS before the tagged OK."""
        self.session.ok(self, "SELECT INBOX")
        data = message("more")
        out = self.session.send(b"a APPEND INBOX {%d+}\r\n%s\r\n" % (len(data), data))
        self.assertIn("* 4 EXISTS", out)
        self.assertIn("a OK [APPENDUID", out)

    def test_appendErrors(self):
        """APPEND to a missing mailbox is TRYCREATE; bad flags and dates are BAD."""
        out = self.session.send(b"a APPEND Nope {1+}\r\nx\r\n")
        self.assertIn("a NO [TRYCREATE]", out)
        out = self.session.send(b"b APPEND INBOX (\\Bogus) {1+}\r\nx\r\n")
        self.assertIn("b BAD", out)
        out = self.session.send(b'c APPEND INBOX "yesterday" {1+}\r\nx\r\n')
        self.assertIn("c BAD", out)

    def test_appendOverQuota(self):
        """APPEND beyond MaxAccountSize is NO [OVERQUOTA]."""
        self.successResultOf(self.context.directory.setAccountSettings(
            USER, {"MaxAccountSize": "1K"}, update=True))
        data = b"x" * 2000
        out = self.session.send(b"a APPEND INBOX {%d+}\r\n%s\r\n" % (len(data), data))
        self.assertIn("a NO [OVERQUOTA]", out)

    def test_closeExpunges(self):
        """CLOSE expunges \\Deleted messages silently; UNSELECT does not."""
        self.session.ok(self, "SELECT INBOX")
        self.session.ok(self, "STORE 1 +FLAGS.SILENT (\\Deleted)")
        out = self.session.ok(self, "UNSELECT")
        self.assertNotIn("EXPUNGE", out)
        self.assertEqual(self.successResultOf(self.store.status(USER, "INBOX"))["MESSAGES"], 3)
        self.session.ok(self, "SELECT INBOX")
        out = self.session.ok(self, "CLOSE")
        self.assertNotIn("EXPUNGE", out)
        self.assertEqual(self.successResultOf(self.store.status(USER, "INBOX"))["MESSAGES"], 2)
        self.assertEqual(self.session.server.state, "auth")

    def test_namespaceIdEnable(self):
        """NAMESPACE shows the personal and other-users namespaces; ID and ENABLE answer."""
        out = self.session.ok(self, "NAMESPACE")
        self.assertIn('* NAMESPACE (("" "/")) (("~" "/")) NIL', out)
        out = self.session.ok(self, 'ID ("name" "test")')
        self.assertIn('* ID ("name" "CommuniGate Pro"', out)
        out = self.session.ok(self, "ENABLE FOO")
        self.assertIn("* ENABLED", out)
