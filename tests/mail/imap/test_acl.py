# -*- test-case-name: tests.mail.imap.test_acl -*-
"""
Tests for ACL (RFC 4314), shared mailboxes C{~account/name} and QUOTA
(L{cgpro.mail.imap.commands.acl}).
"""

from twisted.trial.unittest import SynchronousTestCase

from cgpro.mail.imap.commands.acl import expandRights, rightsFor
from tests.mail.imap.support import OTHER, USER, Session, makeContext, message


class RightsTests(SynchronousTestCase):
    """
    The meaning of stored ACLs.
    """

    def test_rightsFor(self):
        """Owners hold everything; anyone, bare names and full addresses add up."""
        acl = {"anyone": "l", "user": "rs", "user@other.dom": "w"}
        self.assertEqual(rightsFor(acl, OTHER, OTHER), "lrswipkxtea")
        self.assertEqual(rightsFor(acl, USER, OTHER), "lrs")
        self.assertEqual(rightsFor(acl, "user@other.dom", OTHER), "lw")
        self.assertEqual(rightsFor({"anyone": "cd"}, USER, OTHER), "kxte")

    def test_badRights(self):
        """Unknown letters are refused."""
        self.assertRaises(ValueError, expandRights, "lrz")


class SharedMailboxTests(SynchronousTestCase):
    """
    One account shares a mailbox with another, then revokes it.
    """

    def setUp(self):
        self.context = makeContext(self)
        self.store = self.context.mailStore
        self.successResultOf(self.store.createMailbox(OTHER, "Travel-Schedule"))
        self.successResultOf(self.store.deliver(OTHER, "Travel-Schedule", message("trip")))
        self.owner = Session(self, self.context)
        self.owner.login(self, "other", "word")
        self.user = Session(self, self.context)
        self.user.login(self)

    def test_hiddenWithoutRights(self):
        """Without rights the shared mailbox does not exist for the user."""
        out, tagged = self.user.command("SELECT ~other/Travel-Schedule")
        self.assertTrue(tagged.startswith("NO [NONEXISTENT]"))
        self.assertNotIn("Travel", self.user.ok(self, 'LIST "" "~other/*"'))
        out, tagged = self.user.command("GETACL ~other/Travel-Schedule")
        self.assertTrue(tagged.startswith("NO [NONEXISTENT]"))

    def test_grantAndRevoke(self):
        """SETACL grants read access; DELETEACL revokes it."""
        self.owner.ok(self, "SETACL Travel-Schedule user lrs")
        out = self.owner.ok(self, "GETACL Travel-Schedule")
        self.assertIn('* ACL "Travel-Schedule" "other" "lrswipkxtea" "user" "lrs"', out)
        out = self.user.ok(self, 'LIST "" "~other/*"')
        self.assertIn('"~other/Travel-Schedule"', out)
        self.assertNotIn('"~other/INBOX"', out)
        out = self.user.ok(self, 'LIST "" "~%/*"')
        self.assertIn('* LIST (\\HasNoChildren) "/" "~other/Travel-Schedule"', out)
        out = self.user.ok(self, "MYRIGHTS ~other/Travel-Schedule")
        self.assertIn('* MYRIGHTS "~other/Travel-Schedule" "lrs"', out)
        out = self.user.ok(self, "SELECT ~other/Travel-Schedule")
        self.assertIn("* 1 EXISTS", out)
        self.assertIn("[READ-WRITE]", out)
        out = self.user.ok(self, "FETCH 1 (BODY[HEADER.FIELDS (SUBJECT)])")
        self.assertIn("Subject: trip", out)
        self.assertIn("\\Seen", out)
        out, tagged = self.user.command("STORE 1 +FLAGS (\\Flagged)")
        self.assertTrue(tagged.startswith("NO [NOPERM]"))
        out, tagged = self.user.command("EXPUNGE")
        self.assertTrue(tagged.startswith("NO [NOPERM]"))
        out, tagged = self.user.command("SETACL ~other/Travel-Schedule user lrswipkxtea")
        self.assertTrue(tagged.startswith("NO [NOPERM]"))
        self.user.ok(self, "UNSELECT")
        self.owner.ok(self, "DELETEACL Travel-Schedule user")
        out, tagged = self.user.command("SELECT ~other/Travel-Schedule")
        self.assertTrue(tagged.startswith("NO [NONEXISTENT]"))

    def test_insertOnly(self):
        """With only lookup and insert, APPEND and COPY in work but SELECT does not."""
        self.owner.ok(self, "SETACL Travel-Schedule user@main.dom +li")
        out = self.owner.ok(self, "GETACL Travel-Schedule")
        self.assertIn('"user" "li"', out)
        out, tagged = self.user.command("SELECT ~other/Travel-Schedule")
        self.assertTrue(tagged.startswith("NO [NOPERM]"))
        data = message("from user")
        out = self.user.send(b"a APPEND ~other/Travel-Schedule {%d+}\r\n%s\r\n" % (
            len(data), data))
        self.assertIn("a OK [APPENDUID", out)
        self.successResultOf(self.store.deliver(USER, "INBOX", message("mine")))
        self.user.ok(self, "SELECT INBOX")
        self.user.ok(self, "COPY 1 ~other/Travel-Schedule")
        self.assertEqual(self.successResultOf(
            self.store.status(OTHER, "Travel-Schedule"))["MESSAGES"], 3)

    def test_anyoneAndListRights(self):
        """Rights for anyone apply to every account; LISTRIGHTS lists the letters."""
        self.owner.ok(self, "SETACL Travel-Schedule anyone lr")
        self.user.ok(self, "EXAMINE ~other/Travel-Schedule")
        out = self.owner.ok(self, "LISTRIGHTS Travel-Schedule user")
        self.assertIn('* LISTRIGHTS "Travel-Schedule" "user" "" l r s w i p k x t e a', out)
        out, tagged = self.owner.command("SETACL Travel-Schedule user lrz")
        self.assertTrue(tagged.startswith("BAD"))

    def test_unknownOwner(self):
        """A ~name that is no account is nonexistent."""
        out, tagged = self.user.command("SELECT ~nobody/INBOX")
        self.assertTrue(tagged.startswith("NO [NONEXISTENT]"))
        out, tagged = self.user.command("STATUS ~/x (MESSAGES)")
        self.assertTrue(tagged.startswith("NO [NONEXISTENT]"))


class QuotaTests(SynchronousTestCase):
    """
    GETQUOTAROOT and GETQUOTA.
    """

    def setUp(self):
        self.context = makeContext(self)
        self.successResultOf(self.context.mailStore.deliver(USER, "INBOX", b"x" * 5000))
        self.session = Session(self, self.context)
        self.session.login(self)

    def test_quotaRoot(self):
        """The account's root shows its usage and MaxAccountSize in kilobytes."""
        out = self.session.ok(self, "GETQUOTAROOT INBOX")
        self.assertIn('* QUOTAROOT "INBOX" ""', out)
        self.assertIn('* QUOTA "" (STORAGE 5 102400)', out)
        self.successResultOf(self.context.directory.setAccountSettings(
            USER, {"MaxAccountSize": "unlimited"}, update=True))
        out = self.session.ok(self, 'GETQUOTA ""')
        self.assertIn('* QUOTA "" ()', out)

    def test_setQuotaRefused(self):
        """SETQUOTA is for the administrator."""
        out, tagged = self.session.command('SETQUOTA "" (STORAGE 10)')
        self.assertTrue(tagged.startswith("NO"))
        out, tagged = self.session.command("GETQUOTA nope")
        self.assertTrue(tagged.startswith("NO"))


class AliasTests(SynchronousTestCase):
    """
    Mailbox aliases (seed 000: C{Travel} for C{~public/Travel-Schedule}).
    """

    def setUp(self):
        from cgpro.core import dataformat
        from cgpro.store.commands import aliasesPath

        self.context = makeContext(self)
        self.store = self.context.mailStore
        self.successResultOf(self.store.createMailbox(OTHER, "Travel-Schedule"))
        self.successResultOf(self.store.deliver(OTHER, "Travel-Schedule", message("trip")))
        storage = self.context.directory.storage
        self.successResultOf(storage.writer.write(
            aliasesPath(storage, "main.dom", "user"),
            dataformat.dumps({"Travel": "~other/Travel-Schedule"}).encode("utf-8")))
        self.session = Session(self, self.context)
        self.session.login(self)

    def test_alias(self):
        """An alias is listed and selected once the target's ACL grants access."""
        self.assertNotIn('"Travel"', self.session.ok(self, 'LIST "" "*"'))
        out, tagged = self.session.command("SELECT Travel")
        self.assertTrue(tagged.startswith("NO [NONEXISTENT]"))
        self.successResultOf(self.store.setRights(OTHER, "Travel-Schedule", "user", "lr"))
        self.assertIn('"/" "Travel"', self.session.ok(self, 'LIST "" "*"'))
        out = self.session.ok(self, "EXAMINE Travel")
        self.assertIn("* 1 EXISTS", out)
        out = self.session.ok(self, "STATUS Travel (MESSAGES)")
        self.assertIn('* STATUS "Travel" (MESSAGES 1)', out)
