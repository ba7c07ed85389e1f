# -*- test-case-name: tests.store.test_names -*-
"""
Tests for L{cgpro.store.names}: mailbox names on disk, flags, file names.
"""

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from cgpro.store import names as N
from cgpro.store.errors import MailboxNameError


class MailboxNameTests(SynchronousTestCase):
    """
    Mailbox names and their Maildir++ folders.
    """

    def test_inboxCaseInsensitive(self):
        """INBOX is case-insensitive, at the top level only."""
        self.assertEqual(N.normalizeMailboxName("inbox"), "INBOX")
        self.assertEqual(N.normalizeMailboxName("InBox/Sub"), "INBOX/Sub")
        self.assertEqual(N.normalizeMailboxName("a/inbox"), "a/inbox")

    def test_refused(self):
        """Empty levels, control characters, surrogates and huge names are refused."""
        for bad in ("", "/", "a/", "/a", "a//b", "a\tb", "a\x7fb", "a\ud800", "y" * 260, None):
            self.assertRaises(MailboxNameError, N.normalizeMailboxName, bad)

    def test_folderRoundTrip(self):
        """Every name maps to one folder entry and back; dots never climb."""
        for name in ("Sent", "Work/2024", "a.b/c", "..", "../x", "100%", "Ünï/ß", "~shared"):
            entry = N.folderName(name)
            self.assertTrue(entry.startswith("."))
            self.assertNotIn("/", entry)
            self.assertEqual(N.mailboxNameFromFolder(entry), name)
        self.assertEqual(N.folderName("a.b/.."), ".a%2Eb.%2E%2E")
        self.assertEqual(N.folderName("INBOX"), "")

    def test_notMailboxes(self):
        """Entries that are not Maildir++ folders are ignored."""
        for entry in ("cur", "cgpro-trash", ".", "..", ".a..b", ".a.", "cgpro.journal"):
            self.assertIsNone(N.mailboxNameFromFolder(entry))

    def test_inferior(self):
        """isInferior is about whole levels."""
        self.assertTrue(N.isInferior("a/b", "a"))
        self.assertFalse(N.isInferior("ab", "a"))
        self.assertFalse(N.isInferior("a", "a"))


class FlagTests(SynchronousTestCase):
    """
    Flags and their Maildir letters.
    """

    def test_canonical(self):
        """System flags get their canonical spelling; keywords are kept."""
        self.assertEqual(N.canonicalFlag("\\SEEN"), "\\Seen")
        self.assertEqual(N.canonicalFlag("$Forwarded"), "$Forwarded")
        for bad in ("\\Recent", "\\Foo", "", "a b", "a(b", "ü", 'a"b', "a]"):
            self.assertRaises(MailboxNameError, N.canonicalFlag, bad)

    def test_letters(self):
        """System flags map to Maildir info letters in ASCII order and back."""
        mask = N.SEEN | N.FLAGGED | N.DRAFT | N.ANSWERED | N.DELETED
        self.assertEqual(N.maildirLetters(mask), "DFRST")
        self.assertEqual(N.maskFromInfo("x:2,DFRST"), mask)
        self.assertEqual(N.maskFromInfo("x"), 0)

    def test_nameWithFlags(self):
        """Info is rebuilt from the mask; other tools' lower-case letters stay."""
        self.assertEqual(N.nameWithFlags("base", N.SEEN), "base:2,S")
        self.assertEqual(N.nameWithFlags("base:2,Sa", N.FLAGGED), "base:2,Fa")
        self.assertEqual(N.currentName("new/b", 0), "new/b")
        self.assertEqual(N.currentName("new/b", N.SEEN), "cur/b:2,S")
        self.assertEqual(N.currentName("cur/b:2,S", 0), "cur/b:2,")


class FileNameTests(SynchronousTestCase):
    """
    Maildir file names.
    """

    def test_unique(self):
        """Names are unique, carry size and time, and escape the host."""
        clock = Clock()
        clock.advance(1700000000.25)
        gen = N.NameGenerator(clock, host="mx/1:a,b", pid=7)
        names = {gen.make(10) for _ in range(100)}
        self.assertEqual(len(names), 100)
        name = gen.make(1234)
        self.assertTrue(name.startswith("1700000000.M250000P7Q101R"))
        self.assertIn(".mx\\057" + "1\\072a\\054b,S=1234", name)
        self.assertEqual(N.sizeFromName(name + ":2,S"), 1234)
        self.assertIsNone(N.sizeFromName("abc"))

    def test_deliveryTag(self):
        """The delivery tag is a stable hash found again in the name."""
        tag = N.deliveryHash("Q1/joe@example.com")
        self.assertEqual(len(tag), 16)
        self.assertEqual(N.deliveryTag(b"Q1/joe@example.com"), ",D=" + tag)
        self.assertEqual(N.tagOfName("1.M1.h,S=5,D=%s:2,S" % tag), tag)
        self.assertIsNone(N.tagOfName("1.M1.h,S=5"))
