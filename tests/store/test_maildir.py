# -*- test-case-name: tests.store.test_maildir -*-
"""
Tests for L{cgpro.store.maildir.MailStore}: delivery, mailboxes, exactly-once,
subscriptions, ACLs, quota and Maildir compatibility.
"""

import datetime
import email
import mailbox
import os

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from cgpro.core.interfaces import IMailStore
from cgpro.store.errors import MailboxExists, MailboxNameError, NoSuchMailbox, StoreError
from tests.store.support import ACCOUNT, OTHER, START, StoreFixture, message


class StoreTestsMixin:
    """
    A synchronous fixture and helpers.
    """

    def setUp(self):
        self.fx = StoreFixture(self)
        self.store = self.fx.store()

    def deliver(self, store=None, mailbox="INBOX", data=None, **kwargs):
        store = store or self.store
        return self.successResultOf(store.deliver(ACCOUNT, mailbox, data or message(), **kwargs))

    def open(self, store=None, mailbox="INBOX", account=ACCOUNT):
        return self.successResultOf((store or self.store).openMailbox(account, mailbox))


class DeliveryTests(StoreTestsMixin, SynchronousTestCase):
    """
    L{MailStore.deliver} and what a restart sees of it.
    """

    def test_interface(self):
        """MailStore provides IMailStore."""
        self.assertTrue(verifyObject(IMailStore, self.store))

    def test_deliverAssignsUids(self):
        """Deliveries get UIDs 1, 2, 3 and land in new/."""
        uids = [self.deliver(data=message("m%d" % i)) for i in range(3)]
        self.assertEqual(uids, [1, 2, 3])
        self.assertEqual([f[:4] for f in self.fx.files()], ["new/"] * 3)

    def test_reopenKeepsUidsAndValidity(self):
        """A restarted store sees the same UIDs, UIDVALIDITY and next UID."""
        for i in range(3):
            self.deliver(data=message("m%d" % i))
        first = self.open()
        validity = first.uidValidity
        restarted = self.fx.store()
        box = self.open(restarted)
        self.assertEqual(list(box.uids), [1, 2, 3])
        self.assertEqual(box.uidValidity, validity)
        self.assertEqual(box.uidNext, 4)
        self.assertEqual(self.deliver(restarted), 4)
        self.assertIn(b"Subject: m1", box.readMessage(2))

    def test_deliverToClosedMailboxDoesNotLoad(self):
        """Delivering into a mailbox nobody opened keeps it unloaded (O(1))."""
        self.deliver()
        restarted = self.fx.store()
        self.assertEqual(self.deliver(restarted), 2)
        self.assertIsNone(restarted._states[(ACCOUNT, "INBOX")].index)

    def test_flagsAndDateAtDelivery(self):
        """Flags and internal date given at delivery are kept; \\Seen files go to cur/."""
        when = datetime.datetime(2024, 2, 29, 12, 30, 0)
        uid = self.deliver(flags=["\\seen", "$Work"], internalDate=when)
        box = self.open(self.fx.store())
        info = box.info(uid)
        self.assertEqual(info.flags, ("\\Seen", "$Work"))
        self.assertEqual(info.internalDate, 1709209800)
        self.assertTrue(info.path.endswith(":2,S"))
        self.assertEqual(os.stat(info.path).st_mtime, 1709209800)

    def test_defaultDateIsNow(self):
        """Without a date the internal date is the clock's time."""
        uid = self.deliver()
        self.assertEqual(self.open().internalDate(uid), START)

    def test_badFlagRefused(self):
        """\\Recent and bad keywords cannot be delivered."""
        self.failureResultOf(self.store.deliver(ACCOUNT, "INBOX", message(), flags=["\\Recent"]),
                             MailboxNameError)
        self.failureResultOf(self.store.deliver(ACCOUNT, "INBOX", message(), flags=["a b"]),
                             MailboxNameError)

    def test_missingMailboxOrAccount(self):
        """Delivery to a missing mailbox or account fails; INBOX is created on demand."""
        self.failureResultOf(self.store.deliver(ACCOUNT, "Nope", message()), NoSuchMailbox)
        self.failureResultOf(self.store.deliver("nobody@example.com", "INBOX", message()),
                             NoSuchMailbox)
        self.failureResultOf(self.store.deliver("no-at-sign", "INBOX", message()), NoSuchMailbox)
        self.assertFalse(os.path.exists(self.fx.root(OTHER)))
        self.successResultOf(self.store.deliver(OTHER, "inbox", message()))
        self.assertTrue(os.path.isdir(os.path.join(self.fx.root(OTHER), "tmp")))

    def test_listenerOnDeliver(self):
        """An open mailbox's listeners hear of a delivery at once."""
        box = self.open()
        events = []
        box.addListener(events.append)
        uid = self.deliver()
        self.assertEqual([(e.kind, e.uids) for e in events], [("added", [uid])])
        self.assertEqual(len(box), 1)


    def test_statesBounded(self):
        """Idle mailbox states beyond the bound are forgotten and rebuilt on demand."""
        store = self.fx.store(maxStates=2)
        for name in ("A", "B", "C"):
            self.successResultOf(store.createMailbox(ACCOUNT, name))
        uids = {}
        for name in ("A", "B", "C", "INBOX"):
            uids[name] = self.successResultOf(
                store.deliver(ACCOUNT, name, message(), deliveryId="id-" + name))
        self.assertLessEqual(len(store._states), 3)
        self.assertNotIn((ACCOUNT, "A"), store._states)
        self.assertEqual(self.successResultOf(
            store.deliver(ACCOUNT, "A", message(), deliveryId="id-A")), uids["A"])
        self.assertEqual(self.successResultOf(store.deliver(ACCOUNT, "A", message())), 2)


class ExactlyOnceTests(StoreTestsMixin, SynchronousTestCase):
    """
    A delivery id is delivered once, also after a restart.
    """

    def test_sameIdSameUid(self):
        """A repeated delivery id returns the first UID and adds no file."""
        first = self.deliver(deliveryId="Q1-joe")
        self.assertEqual(self.deliver(deliveryId="Q1-joe"), first)
        self.assertEqual(len(self.fx.files()), 1)
        self.assertEqual(self.deliver(deliveryId="Q2-joe"), first + 1)

    def test_idInFileName(self):
        """The file name carries the hash of the delivery id."""
        from cgpro.store.names import deliveryHash

        self.deliver(deliveryId="Q1-joe")
        self.assertIn(",D=" + deliveryHash("Q1-joe"), self.fx.files()[0])

    def test_afterRestart(self):
        """A restarted store still recognises recent ids (journal tail)."""
        first = self.deliver(deliveryId="Q1-joe")
        restarted = self.fx.store()
        self.assertEqual(self.deliver(restarted, deliveryId="Q1-joe"), first)
        self.assertEqual(len(self.fx.files()), 1)

    def test_hasDelivery(self):
        """hasDelivery answers from memory, from file names, and from the index."""
        self.deliver(deliveryId="Q1-joe")
        for i in range(5):
            self.deliver()
        self.assertTrue(self.store.hasDelivery(ACCOUNT, "INBOX", "Q1-joe"))
        self.assertFalse(self.store.hasDelivery(ACCOUNT, "INBOX", "Q9-joe"))
        restarted = self.fx.store()
        restarted._states.clear()
        self.assertTrue(restarted.hasDelivery(ACCOUNT, "INBOX", "Q1-joe"))
        self.assertFalse(restarted.hasDelivery(ACCOUNT, "INBOX", "Q9-joe"))
        box = self.open(restarted)
        box._deliveries.clear()
        self.assertTrue(restarted.hasDelivery(ACCOUNT, "INBOX", "Q1-joe"))
        self.assertFalse(restarted.hasDelivery(ACCOUNT, "Nope", "Q1-joe"))

    def test_recoveredFileCounts(self):
        """A delivered file the journal missed (crash) still counts as delivered."""
        self.deliver(deliveryId="Q1-joe")
        path = self.fx.folder("cgpro.journal")
        with open(path) as f:
            header = f.readline()
        with open(path, "w") as f:
            f.write(header)
        restarted = self.fx.store()
        self.assertTrue(restarted.hasDelivery(ACCOUNT, "INBOX", "Q1-joe"))
        box = self.open(restarted)
        self.assertEqual(len(box), 1)
        self.assertEqual(self.deliver(restarted, deliveryId="Q1-joe"), box.uids[0])


class MailboxManagementTests(StoreTestsMixin, SynchronousTestCase):
    """
    Create, list, rename and delete, with hierarchy.
    """

    def create(self, name, account=ACCOUNT):
        return self.successResultOf(self.store.createMailbox(account, name))

    def test_createAndList(self):
        """Created mailboxes are listed after INBOX, sorted, as Maildir++ folders."""
        for name in ("Work/2024", "Sent", "a.b", "Ünïcode"):
            self.create(name)
        self.assertEqual(self.store.listMailboxes(ACCOUNT),
                         ["INBOX", "Sent", "Work/2024", "a.b", "Ünïcode"])
        entries = sorted(e for e in os.listdir(self.fx.root()) if e.startswith("."))
        self.assertEqual(entries, [".Sent", ".Work.2024", ".a%2Eb", ".Ünïcode"])
        for entry in entries:
            folder = self.fx.folder(entry)
            self.assertTrue(os.path.exists(os.path.join(folder, "maildirfolder")))
            for sub in ("cur", "new", "tmp"):
                self.assertTrue(os.path.isdir(os.path.join(folder, sub)))

    def test_exists(self):
        """mailboxExists knows INBOX, created mailboxes and bad names."""
        self.assertTrue(self.store.mailboxExists(ACCOUNT, "inbox"))
        self.assertFalse(self.store.mailboxExists(ACCOUNT, "Sent"))
        self.create("Sent")
        self.assertTrue(self.store.mailboxExists(ACCOUNT, "Sent"))
        self.assertFalse(self.store.mailboxExists(ACCOUNT, "a//b"))
        self.assertFalse(self.store.mailboxExists("nobody@example.com", "INBOX"))

    def test_createTwice(self):
        """Creating an existing mailbox fails."""
        self.create("Sent")
        self.failureResultOf(self.store.createMailbox(ACCOUNT, "Sent"), MailboxExists)
        self.failureResultOf(self.store.createMailbox(ACCOUNT, "INBOX"), MailboxExists)

    def test_badNames(self):
        """Names that could escape or confuse the folder are refused."""
        for name in ("", "/a", "a/", "a//b", "a\x00b", "a\nb", "x" * 300):
            self.failureResultOf(self.store.createMailbox(ACCOUNT, name), MailboxNameError)
        self.create("../..")
        self.assertTrue(os.path.isdir(self.fx.folder(".%2E%2E.%2E%2E")))
        self.assertEqual(self.store.listMailboxes(ACCOUNT), ["../..", "INBOX"][::-1])

    def test_deliverIntoCreated(self):
        """Messages can be delivered into a created mailbox, with its own UIDs."""
        self.create("Lists/cgpro")
        self.assertEqual(self.deliver(mailbox="Lists/cgpro"), 1)
        self.assertEqual(len(self.fx.files(".Lists.cgpro")), 1)

    def test_renameWithChildren(self):
        """Renaming moves the children, messages, UIDVALIDITY and ACLs along."""
        self.create("Work")
        self.create("Work/2024")
        self.create("Workshop")
        self.deliver(mailbox="Work/2024")
        validity = self.successResultOf(self.store.status(ACCOUNT, "Work/2024"))["UIDVALIDITY"]
        self.successResultOf(self.store.setRights(ACCOUNT, "Work", "ann@example.com", "lr"))
        self.successResultOf(self.store.renameMailbox(ACCOUNT, "Work", "Job/Old"))
        self.assertEqual(self.store.listMailboxes(ACCOUNT),
                         ["INBOX", "Job/Old", "Job/Old/2024", "Workshop"])
        status = self.successResultOf(self.store.status(ACCOUNT, "Job/Old/2024"))
        self.assertEqual((status["MESSAGES"], status["UIDVALIDITY"]), (1, validity))
        self.assertEqual(self.store.getAcl(ACCOUNT, "Job/Old"), {"ann@example.com": "lr"})
        restarted = self.fx.store()
        self.assertEqual(list(self.open(restarted, "Job/Old/2024").uids), [1])

    def test_renameOpenMailbox(self):
        """A session's open mailbox follows a rename and is told."""
        self.create("Work")
        box = self.open(mailbox="Work")
        events = []
        box.addListener(events.append)
        self.successResultOf(self.store.renameMailbox(ACCOUNT, "Work", "Job"))
        self.assertEqual(box.name, "Job")
        self.assertEqual([e.kind for e in events], ["renamed"])
        self.assertEqual(self.deliver(mailbox="Job"), 1)
        self.assertEqual(len(box), 1)
        self.assertIn(b"Subject", box.readMessage(1))

    def test_renameRefusals(self):
        """Renaming onto an existing name, below itself or a missing mailbox fails."""
        self.create("A")
        self.create("B/C")
        self.failureResultOf(self.store.renameMailbox(ACCOUNT, "A", "A/x"), StoreError)
        self.failureResultOf(self.store.renameMailbox(ACCOUNT, "Nope", "X"), NoSuchMailbox)
        self.failureResultOf(self.store.renameMailbox(ACCOUNT, "B", "A"), MailboxExists)
        self.failureResultOf(self.store.renameMailbox(ACCOUNT, "A", "A"), MailboxExists)

    def test_renameInbox(self):
        """Renaming INBOX moves its messages to the new mailbox and leaves it empty."""
        for i in range(3):
            self.deliver()
        self.successResultOf(self.store.renameMailbox(ACCOUNT, "INBOX", "Old"))
        self.assertEqual(self.successResultOf(self.store.status(ACCOUNT, "Old"))["MESSAGES"], 3)
        self.assertEqual(len(self.open()), 0)

    def test_deleteWithChildren(self):
        """Deleting removes the mailbox; recursive also removes its children."""
        for name in ("A", "A/B", "A/B/C", "AB"):
            self.create(name)
        self.deliver(mailbox="A")
        self.successResultOf(self.store.deleteMailbox(ACCOUNT, "A"))
        self.assertEqual(self.store.listMailboxes(ACCOUNT), ["INBOX", "A/B", "A/B/C", "AB"])
        self.successResultOf(self.store.deleteMailbox(ACCOUNT, "A", recursive=True))
        self.assertEqual(self.store.listMailboxes(ACCOUNT), ["INBOX", "AB"])
        self.assertEqual(os.listdir(self.fx.folder("cgpro-trash")), [])
        self.failureResultOf(self.store.deleteMailbox(ACCOUNT, "A"), NoSuchMailbox)
        self.failureResultOf(self.store.deleteMailbox(ACCOUNT, "INBOX"), StoreError)

    def test_deleteOpenMailbox(self):
        """Sessions of a deleted mailbox are told, and a new one starts afresh."""
        self.create("A")
        self.deliver(mailbox="A")
        box = self.open(mailbox="A")
        events = []
        box.addListener(events.append)
        self.successResultOf(self.store.deleteMailbox(ACCOUNT, "A"))
        self.assertEqual([e.kind for e in events], ["deleted"])
        self.failureResultOf(box.setFlags([1], ["\\Seen"]), NoSuchMailbox)
        self.failureResultOf(self.store.deliver(ACCOUNT, "A", message()), NoSuchMailbox)
        self.create("A")
        fresh = self.open(mailbox="A")
        self.assertEqual((len(fresh), fresh.uidNext), (0, 1))
        self.assertNotEqual(fresh.uidValidity, box.uidValidity)

    def test_status(self):
        """STATUS gives counts, UIDNEXT, UIDVALIDITY, HIGHESTMODSEQ and size."""
        data = message()
        self.deliver(data=data)
        self.deliver(data=data, flags=["\\Seen"])
        status = self.successResultOf(self.store.status(ACCOUNT, "INBOX"))
        self.assertEqual(
            {k: status[k] for k in ("MESSAGES", "RECENT", "UIDNEXT", "UNSEEN", "SIZE")},
            {"MESSAGES": 2, "RECENT": 2, "UIDNEXT": 3, "UNSEEN": 1, "SIZE": 2 * len(data)})
        self.assertEqual(status["HIGHESTMODSEQ"], 3)


class AccountDataTests(StoreTestsMixin, SynchronousTestCase):
    """
    Subscriptions, ACL storage, quota usage, forgetting an account.
    """

    def test_subscriptions(self):
        """Subscriptions persist, ignore repeats and need no mailbox."""
        self.assertEqual(self.store.subscriptions(ACCOUNT), [])
        for name in ("Sent", "inbox", "Sent", "Gone/Away"):
            self.successResultOf(self.store.subscribe(ACCOUNT, name))
        self.successResultOf(self.store.unsubscribe(ACCOUNT, "Sent"))
        self.successResultOf(self.store.unsubscribe(ACCOUNT, "Never"))
        self.assertEqual(self.fx.store().subscriptions(ACCOUNT), ["Gone/Away", "INBOX"])

    def test_acl(self):
        """ACLs are stored per mailbox; empty rights remove an identifier."""
        self.successResultOf(self.store.createMailbox(ACCOUNT, "Shared"))
        self.assertEqual(self.store.getAcl(ACCOUNT, "Shared"), {})
        self.successResultOf(self.store.setAcl(ACCOUNT, "Shared", {"anyone": "lr", "x": ""}))
        self.successResultOf(self.store.setRights(ACCOUNT, "Shared", "ann@example.com", "lrswi"))
        self.successResultOf(self.store.setRights(ACCOUNT, "Shared", "anyone", ""))
        restarted = self.fx.store()
        self.assertEqual(restarted.getAcl(ACCOUNT, "Shared"), {"ann@example.com": "lrswi"})
        self.assertEqual(restarted.listAcls(ACCOUNT), {"Shared": {"ann@example.com": "lrswi"}})
        self.successResultOf(restarted.setAcl(ACCOUNT, "Shared", {}))
        self.assertEqual(restarted.listAcls(ACCOUNT), {})
        self.assertRaises(NoSuchMailbox, restarted.getAcl, ACCOUNT, "Nope")

    def test_usage(self):
        """accountUsage counts every mailbox and follows deliveries and expunges."""
        data = message()
        self.deliver(data=data)
        self.successResultOf(self.store.createMailbox(ACCOUNT, "Sent"))
        self.deliver(mailbox="Sent", data=data)
        restarted = self.fx.store()
        self.assertEqual(restarted.accountUsage(ACCOUNT), (2 * len(data), 2))
        self.deliver(restarted, data=data)
        self.assertEqual(restarted.accountUsage(ACCOUNT), (3 * len(data), 3))
        box = self.open(restarted)
        self.successResultOf(box.expunge([1]))
        self.assertEqual(restarted.accountUsage(ACCOUNT), (2 * len(data), 2))

    def test_forgetAccount(self):
        """forgetAccount tells the sessions and drops the cached state."""
        box = self.open()
        events = []
        box.addListener(events.append)
        self.successResultOf(self.store.forgetAccount(ACCOUNT))
        self.assertEqual([e.kind for e in events], ["deleted"])
        self.assertEqual(self.store._states, {})


class MaildirCompatibilityTests(StoreTestsMixin, SynchronousTestCase):
    """
    Other tools can read what the store writes.
    """

    def test_pythonMaildir(self):
        """Python's mailbox.Maildir reads messages, flags and Maildir++ folders."""
        self.deliver(data=message("one"))
        uid = self.deliver(data=message("two"))
        self.successResultOf(self.store.createMailbox(ACCOUNT, "Work/2024"))
        self.deliver(mailbox="Work/2024", data=message("three"))
        box = self.open()
        self.successResultOf(box.setFlags([uid], ["\\Seen", "\\Flagged"], "add"))

        md = mailbox.Maildir(self.fx.root(), factory=None, create=False)
        subjects = sorted((m["subject"], m.get_flags()) for m in md)
        self.assertEqual(subjects, [("one", ""), ("two", "FS")])
        self.assertEqual(md.list_folders(), ["Work.2024"])
        sub = md.get_folder("Work.2024")
        self.assertEqual([m["subject"] for m in sub], ["three"])

    def test_rfc5322(self):
        """The stored files are the delivered bytes: valid RFC 5322 messages."""
        data = message("bytes")
        uid = self.deliver(data=data)
        box = self.open()
        with open(box.path(uid), "rb") as f:
            stored = f.read()
        self.assertEqual(stored, data)
        parsed = email.message_from_bytes(stored)
        self.assertEqual(parsed["Subject"], "bytes")
        self.assertEqual(box.size(uid), len(data))
