# -*- test-case-name: tests.store.test_commands -*-
"""
Tests for L{cgpro.store.commands}: the mailbox commands of the CLI, run
through the real CLI protocol over a L{StringTransport}, with a real
directory and a L{MailStore} over the same base folder.
"""

import os

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

import cgpro.cli.factory  # noqa: F401  (registers the other commands)
import cgpro.store.commands  # noqa: F401  (registers the mailbox commands)
from cgpro.cli.protocol import CLIFactory
from cgpro.core import dataformat
from cgpro.core.context import ServerContext
from cgpro.core.router import Router
from cgpro.core.throttle import LoginThrottle
from cgpro.store.commands import ALIASES_FILE, effectiveRights, mailboxAliases
from cgpro.store.maildir import MailStore
from tests.support.directory import makeDirectory, reopen

JOE = "joe@d.dom"


def message(subject):
    return ("From: ann@d.dom\r\nTo: joe@d.dom\r\nSubject: %s\r\n\r\nbody\r\n" % (subject,)).encode()


class MailboxCommandsTestCase(SynchronousTestCase):
    """
    A server with domains C{d.dom} (joe, ann, bob and the Domain
    Administrator dadmin) and C{e.dom} (its administrator eadmin), all with
    password C{pw}.
    """

    def setUp(self):
        self.directory = makeDirectory(self)
        self.build()
        self.sessions = {}
        for line in [
            "CREATEDOMAIN d.dom",
            "CREATEDOMAIN e.dom",
            "CREATEACCOUNT joe@d.dom {Password=pw;}",
            "CREATEACCOUNT ann@d.dom {Password=pw;}",
            "CREATEACCOUNT bob@d.dom {Password=pw;}",
            "CREATEACCOUNT dadmin@d.dom {Password=pw;}",
            "SETACCOUNTRIGHTS dadmin@d.dom (Domain)",
            "CREATEACCOUNT eadmin@e.dom {Password=pw;}",
            "SETACCOUNTRIGHTS eadmin@e.dom (Domain)",
        ]:
            self.assertOK("postmaster", line)

    def build(self):
        """
        (Re)build the store and the CLI factory over the directory's base,
        as a restarted server would.
        """
        self.clock = Clock()
        self.clock.advance(1795000000)
        storage = self.directory.storage
        self.store = MailStore(storage, storage.writer, clock=self.clock)
        context = ServerContext(self.directory, Router(self.directory), self.clock,
                                storage.base, mailStore=self.store, writer=storage.writer)
        self.factory = CLIFactory(context, LoginThrottle(self.clock, limit=100), self.clock,
                                  idleTimeout=300, maxLineLength=100000)

    def restart(self):
        """
        A new directory, store and factory over the same folder.
        """
        self.directory = reopen(self, self.directory)
        self.build()
        self.sessions = {}

    def session(self, user):
        found = self.sessions.get(user)
        if found is None:
            protocol = self.factory.buildProtocol(None)
            transport = StringTransport()
            protocol.makeConnection(transport)
            found = self.sessions[user] = (protocol, transport)
            password = "secret" if user == "postmaster" else "pw"
            self.assertEqual(self.send(user, "USER " + user), ["300 please send the PASS"])
            self.assertEqual(self.send(user, "PASS " + password), ["200 login OK"])
            self.assertEqual(self.send(user, "INLINE"), ["200 OK"])
        return found

    def send(self, user, line):
        protocol, transport = self.session(user)
        transport.clear()
        protocol.dataReceived(line.encode() + b"\r\n")
        return transport.value().decode().splitlines()

    def run_(self, user, line):
        """
        @return: the one response line.
        """
        [response] = self.send(user, line)
        return response

    def data(self, user, line):
        """
        @return: the data of a C{201} response.
        """
        response = self.run_(user, line)
        self.assertTrue(response.startswith("201 "), "%s -> %s" % (line, response))
        return dataformat.loads(response[4:])

    def assertOK(self, user, line):
        self.assertEqual(self.run_(user, line), "200 OK", line)

    def assertRefused(self, user, line, text):
        self.assertEqual(self.run_(user, line), "501 " + text, line)

    def deliver(self, mailbox="INBOX", subject="hi", account=JOE):
        return self.successResultOf(self.store.deliver(account, mailbox, message(subject)))


class ListCreateTests(MailboxCommandsTestCase):
    """
    LISTMAILBOXES, CREATEMAILBOX, GETMAILBOXINFO.
    """

    def test_listInbox(self):
        """A new account has INBOX, with zero counters."""
        self.assertEqual(self.data("postmaster", "LISTMAILBOXES joe@d.dom"),
                         {"INBOX": {"Messages": 0, "Size": 0, "Unseen": 0}})

    def test_listCounters(self):
        """Messages, Size and Unseen reflect the mailbox contents."""
        self.deliver()
        self.deliver(subject="two")
        listed = self.data("postmaster", "LISTMAILBOXES joe@d.dom")
        self.assertEqual(listed["INBOX"]["Messages"], 2)
        self.assertEqual(listed["INBOX"]["Unseen"], 2)
        self.assertEqual(listed["INBOX"]["Size"], len(message("hi")) + len(message("two")))

    def test_createAndList(self):
        """Created mailboxes are listed; parents known only through children are {}."""
        self.assertOK("postmaster", "CREATEMAILBOX joe@d.dom MAILBOX Sent")
        self.assertOK("postmaster", 'CREATEMAILBOX joe@d.dom MAILBOX "Work/2024"')
        listed = self.data("postmaster", "LISTMAILBOXES joe@d.dom")
        self.assertEqual(sorted(listed), ["INBOX", "Sent", "Work", "Work/2024"])
        self.assertEqual(listed["Work"], {})
        self.assertEqual(listed["Work/2024"], {"Messages": 0, "Size": 0, "Unseen": 0})
        self.assertTrue(os.path.isdir(os.path.join(
            self.directory.storage.accountPath("d.dom", "joe"), "Maildir", ".Work.2024")))

    def test_filter(self):
        """FILTER takes IMAP patterns: * crosses levels, % does not; inbox in any case."""
        for name in ["Sent", "Work", "Work/2024", "Work/2024/Q1", "INBOX/Sub"]:
            self.assertOK("postmaster", 'CREATEMAILBOX joe@d.dom MAILBOX "%s"' % (name,))

        def names(pattern):
            return sorted(self.data("postmaster",
                                    'LISTMAILBOXES joe@d.dom FILTER "%s"' % (pattern,)))

        self.assertEqual(names("*"), ["INBOX", "INBOX/Sub", "Sent", "Work", "Work/2024",
                                      "Work/2024/Q1"])
        self.assertEqual(names("%"), ["INBOX", "Sent", "Work"])
        self.assertEqual(names("Work/%"), ["Work/2024"])
        self.assertEqual(names("Work/*"), ["Work/2024", "Work/2024/Q1"])
        self.assertEqual(names("inbox*"), ["INBOX", "INBOX/Sub"])
        self.assertEqual(names("S%t"), ["Sent"])
        self.assertEqual(names("nothing"), [])

    def test_createExists(self):
        """Creating an existing mailbox (or INBOX) is refused."""
        self.assertOK("postmaster", "CREATEMAILBOX joe@d.dom MAILBOX Sent")
        self.assertRefused("postmaster", "CREATEMAILBOX joe@d.dom MAILBOX Sent",
                           "mailbox already exists")
        self.assertRefused("postmaster", "CREATEMAILBOX joe@d.dom MAILBOX inbox",
                           "mailbox already exists")

    def test_illegalNames(self):
        """Empty levels, control characters and ~ names are illegal."""
        for name in ['""', '"a//b"', '"/a"', '"a/"', '"~ann/x"', '"a\\001b"']:
            self.assertRefused("postmaster", "CREATEMAILBOX joe@d.dom MAILBOX %s" % (name,),
                               "illegal mailbox name")

    def test_syntax(self):
        """A missing MAILBOX keyword, name or stray argument is a syntax error."""
        for line in ["CREATEMAILBOX joe@d.dom Sent", "CREATEMAILBOX joe@d.dom MAILBOX",
                     "CREATEMAILBOX joe@d.dom MAILBOX Sent extra",
                     "LISTMAILBOXES joe@d.dom FILTER"]:
            self.assertTrue(self.run_("postmaster", line).startswith("501 syntax error"), line)

    def test_unknownAccount(self):
        """An unknown account is reported as such."""
        self.assertRefused("postmaster", "LISTMAILBOXES nobody@d.dom", "unknown account")

    def test_info(self):
        """GETMAILBOXINFO gives the counters, UIDNext, UIDValidity and Class."""
        self.assertOK("postmaster", "CREATEMAILBOX joe@d.dom MAILBOX Cal CLASS IPF.Appointment")
        self.deliver("Cal")
        info = self.data("postmaster", "GETMAILBOXINFO joe@d.dom MAILBOX Cal")
        self.assertEqual(sorted(info), ["Class", "Messages", "Size", "UIDNext", "UIDValidity"])
        self.assertEqual(info["Messages"], 1)
        self.assertEqual(info["Size"], len(message("hi")))
        self.assertEqual(info["UIDNext"], 2)
        self.assertIsInstance(info["UIDValidity"], int)
        self.assertEqual(info["Class"], "IPF.Appointment")
        inbox = self.data("postmaster", "GETMAILBOXINFO joe@d.dom MAILBOX INBOX")
        self.assertEqual(inbox["Class"], "")
        self.assertRefused("postmaster", "GETMAILBOXINFO joe@d.dom MAILBOX Nope",
                           "unknown mailbox")

    def test_setClass(self):
        """SETMAILBOXCLASS changes the class shown by GETMAILBOXINFO."""
        self.assertOK("postmaster", "CREATEMAILBOX joe@d.dom MAILBOX Contacts")
        self.assertOK("postmaster",
                      "SETMAILBOXCLASS joe@d.dom MAILBOX Contacts CLASS IPF.Contact")
        info = self.data("postmaster", "GETMAILBOXINFO joe@d.dom MAILBOX Contacts")
        self.assertEqual(info["Class"], "IPF.Contact")
        self.assertRefused("postmaster", "SETMAILBOXCLASS joe@d.dom MAILBOX Nope CLASS X",
                           "unknown mailbox")

    def test_bareName(self):
        """A bare account name means the caller's own domain."""
        self.assertOK("joe@d.dom", "CREATEMAILBOX joe MAILBOX Mine")
        self.assertIn("Mine", self.data("joe@d.dom", "LISTMAILBOXES joe"))


class RenameDeleteTests(MailboxCommandsTestCase):
    """
    RENAMEMAILBOX and DELETEMAILBOX in their MAILBOX and MAILBOXES forms.
    """

    def setUp(self):
        MailboxCommandsTestCase.setUp(self)
        for name in ["Work", "Work/A", "Work/A/X", "Work/B", "Other"]:
            self.assertOK("postmaster", 'CREATEMAILBOX joe@d.dom MAILBOX "%s"' % (name,))
        self.deliver("Work", "w")
        self.deliver("Work/A", "a")

    def names(self):
        return sorted(self.store.listMailboxes(JOE))

    def test_renameMailboxes(self):
        """MAILBOXES renames the sub-mailboxes too, with their messages."""
        self.assertOK("postmaster", "RENAMEMAILBOX joe@d.dom MAILBOXES Work INTO Job")
        self.assertEqual(self.names(), ["INBOX", "Job", "Job/A", "Job/A/X", "Job/B", "Other"])
        info = self.data("postmaster", 'GETMAILBOXINFO joe@d.dom MAILBOX "Job/A"')
        self.assertEqual(info["Messages"], 1)

    def test_renameMailbox(self):
        """MAILBOX renames only that mailbox; its sub-mailboxes stay."""
        self.assertOK("postmaster", "RENAMEMAILBOX joe@d.dom MAILBOX Work INTO Job")
        self.assertEqual(self.names(),
                         ["INBOX", "Job", "Other", "Work/A", "Work/A/X", "Work/B"])
        self.assertEqual(self.data("postmaster", "GETMAILBOXINFO joe@d.dom MAILBOX Job")
                         ["Messages"], 1)
        self.assertEqual(self.data("postmaster", 'GETMAILBOXINFO joe@d.dom MAILBOX "Work/A"')
                         ["Messages"], 1)

    def test_renameKeepsAcl(self):
        """The ACL goes with the renamed mailbox."""
        self.assertOK("postmaster", "SETMAILBOXACL joe@d.dom MAILBOX Other {ann=lr;}")
        self.assertOK("postmaster", "RENAMEMAILBOX joe@d.dom MAILBOX Other INTO Shared")
        self.assertEqual(self.data("postmaster", "GETMAILBOXACL joe@d.dom MAILBOX Shared"),
                         {"ann": "lr"})

    def test_renameErrors(self):
        """Unknown source, existing target and illegal names are refused."""
        self.assertRefused("postmaster", "RENAMEMAILBOX joe@d.dom MAILBOX Nope INTO X",
                           "unknown mailbox")
        self.assertRefused("postmaster", "RENAMEMAILBOX joe@d.dom MAILBOX Work INTO Other",
                           "mailbox already exists")
        self.assertRefused("postmaster", 'RENAMEMAILBOX joe@d.dom MAILBOX Work INTO "a//b"',
                           "illegal mailbox name")
        self.assertTrue(self.run_("postmaster", "RENAMEMAILBOX joe@d.dom MAILBOX Work Job")
                        .startswith("501 syntax error"))
        self.assertEqual(self.names(),
                         ["INBOX", "Other", "Work", "Work/A", "Work/A/X", "Work/B"])

    def test_deleteMailbox(self):
        """MAILBOX deletes only that mailbox; its sub-mailboxes stay."""
        self.assertOK("postmaster", "DELETEMAILBOX joe@d.dom MAILBOX Work")
        self.assertEqual(self.names(), ["INBOX", "Other", "Work/A", "Work/A/X", "Work/B"])

    def test_deleteMailboxes(self):
        """MAILBOXES deletes the sub-mailboxes too."""
        self.assertOK("postmaster", "DELETEMAILBOX joe@d.dom MAILBOXES Work")
        self.assertEqual(self.names(), ["INBOX", "Other"])

    def test_deleteErrors(self):
        """Unknown mailboxes and INBOX cannot be deleted."""
        self.assertRefused("postmaster", "DELETEMAILBOX joe@d.dom MAILBOX Nope",
                           "unknown mailbox")
        self.assertRefused("postmaster", "DELETEMAILBOX joe@d.dom MAILBOX INBOX",
                           "INBOX cannot be deleted")
        self.assertEqual(len(self.names()), 6)


class AclTests(MailboxCommandsTestCase):
    """
    GETMAILBOXACL, SETMAILBOXACL, GETMAILBOXRIGHTS.
    """

    def setUp(self):
        MailboxCommandsTestCase.setUp(self)
        self.assertOK("postmaster", "CREATEMAILBOX joe@d.dom MAILBOX Shared")

    def acl(self):
        return self.data("postmaster", "GETMAILBOXACL joe@d.dom MAILBOX Shared")

    def test_emptyAcl(self):
        """A new mailbox has an empty ACL."""
        self.assertEqual(self.acl(), {})

    def test_setReplaceAddRemove(self):
        """Bare strings replace, + adds, - removes; removing everything drops the entry."""
        self.assertOK("postmaster",
                      'SETMAILBOXACL joe@d.dom MAILBOX Shared {ann=rl; anyone=l; "bob@d.dom"=lrs;}')
        self.assertEqual(self.acl(), {"ann": "lr", "anyone": "l", "bob@d.dom": "lrs"})
        self.assertOK("postmaster",
                      'SETMAILBOXACL joe@d.dom MAILBOX Shared {ann="+wi"; "bob@d.dom"="-s";}')
        self.assertEqual(self.acl(), {"ann": "lrwi", "anyone": "l", "bob@d.dom": "lr"})
        self.assertOK("postmaster",
                      'SETMAILBOXACL joe@d.dom MAILBOX Shared {ann=a; anyone="-l";}')
        self.assertEqual(self.acl(), {"ann": "a", "bob@d.dom": "lr"})
        self.assertOK("postmaster", 'SETMAILBOXACL joe@d.dom MAILBOX Shared {carl="+ld";}')
        self.assertEqual(self.acl()["carl"], "ld")

    def test_badRights(self):
        """Unknown letters are refused and nothing changes."""
        self.assertRefused("postmaster", 'SETMAILBOXACL joe@d.dom MAILBOX Shared {ann=lr; bob=lz;}',
                           "illegal access rights: lz")
        self.assertEqual(self.acl(), {})
        self.assertTrue(self.run_("postmaster", "SETMAILBOXACL joe@d.dom MAILBOX Shared (a)")
                        .startswith("501 syntax error"))

    def test_unknownMailbox(self):
        """ACL commands on a missing mailbox: unknown mailbox."""
        self.assertRefused("postmaster", "GETMAILBOXACL joe@d.dom MAILBOX Nope", "unknown mailbox")
        self.assertRefused("postmaster", "SETMAILBOXACL joe@d.dom MAILBOX Nope {ann=l;}",
                           "unknown mailbox")

    def test_rights(self):
        """GETMAILBOXRIGHTS: owner all, others from the ACL (anyone, name, name@domain)."""
        self.assertOK("postmaster",
                      'SETMAILBOXACL joe@d.dom MAILBOX Shared {ann=lr; anyone=l; "-bob"=l;}')
        rights = "GETMAILBOXRIGHTS joe@d.dom MAILBOX Shared AUTH "
        self.assertEqual(self.data("postmaster", rights + "joe@d.dom"), "lrswipcda")
        self.assertEqual(self.data("postmaster", rights + "ann@d.dom"), "lr")
        self.assertEqual(self.data("postmaster", rights + "dadmin@d.dom"), "l")
        self.assertEqual(self.data("postmaster", rights + "bob@d.dom"), "")
        self.assertEqual(self.data("ann@d.dom", rights + "ann"), "lr")
        self.assertTrue(self.run_("postmaster", "GETMAILBOXRIGHTS joe@d.dom MAILBOX Shared")
                        .startswith("501 syntax error"))

    def test_effectiveRights(self):
        """Bare identifiers name accounts of the owner's domain only."""
        acl = {"ann": "lr", "anyone": "l", "ann@e.dom": "w", "-anyone": "s", "x@d.dom": "i"}
        self.assertEqual(effectiveRights(acl, "ann@d.dom", "d.dom"), set("lr"))
        self.assertEqual(effectiveRights(acl, "ann@e.dom", "d.dom"), set("lw"))
        self.assertEqual(effectiveRights(acl, "x@d.dom", "d.dom"), set("li"))


class RightsTests(MailboxCommandsTestCase):
    """
    Who may run the commands, with and without AUTH.
    """

    def setUp(self):
        MailboxCommandsTestCase.setUp(self)
        self.assertOK("postmaster", "CREATEMAILBOX joe@d.dom MAILBOX Shared")
        self.assertOK("postmaster", "CREATEMAILBOX joe@d.dom MAILBOX Private")
        self.deliver("Shared")

    def test_adminAndSelf(self):
        """The server admin, the domain's administrator and the account itself may act."""
        for user, name in [("postmaster", "A1"), ("dadmin@d.dom", "A2"), ("joe@d.dom", "A3")]:
            self.assertOK(user, "CREATEMAILBOX joe@d.dom MAILBOX " + name)
            self.assertIn(name, self.data(user, "LISTMAILBOXES joe@d.dom"))
            self.assertOK(user, "SETMAILBOXACL joe@d.dom MAILBOX %s {ann=l;}" % (name,))
            self.assertOK(user, "RENAMEMAILBOX joe@d.dom MAILBOX %s INTO %sx" % (name, name))
            self.assertOK(user, "DELETEMAILBOX joe@d.dom MAILBOX %sx" % (name,))

    def test_othersDenied(self):
        """Another user and another domain's administrator are refused."""
        for user in ["ann@d.dom", "eadmin@e.dom"]:
            for line in [
                "LISTMAILBOXES joe@d.dom",
                "CREATEMAILBOX joe@d.dom MAILBOX X",
                "RENAMEMAILBOX joe@d.dom MAILBOX Shared INTO X",
                "DELETEMAILBOX joe@d.dom MAILBOX Shared",
                "GETMAILBOXINFO joe@d.dom MAILBOX Shared",
                "GETMAILBOXACL joe@d.dom MAILBOX Shared",
                "SETMAILBOXACL joe@d.dom MAILBOX Shared {ann=lrswipcda;}",
                "GETACCOUNTSUBSCRIPTION joe@d.dom",
                "SETACCOUNTSUBSCRIPTION joe@d.dom (Shared)",
                "GETMAILBOXALIASES joe@d.dom",
                "SETMAILBOXALIASES joe@d.dom {}",
            ]:
                self.assertRefused(user, line, "not enough access rights")
        self.assertEqual(self.store.getAcl(JOE, "Shared"), {})
        self.assertEqual(sorted(self.store.listMailboxes(JOE)), ["INBOX", "Private", "Shared"])

    def test_authImpersonationDenied(self):
        """A user may not act with another account's rights."""
        self.assertRefused("ann@d.dom", "LISTMAILBOXES joe@d.dom AUTH bob",
                           "not enough access rights")
        self.assertRefused("eadmin@e.dom", "LISTMAILBOXES joe@d.dom AUTH ann@d.dom",
                           "not enough access rights")

    def test_authGranted(self):
        """With AUTH, what the ACL grants is allowed, and only that."""
        self.assertOK("joe@d.dom", "SETMAILBOXACL joe@d.dom MAILBOX Shared {ann=lr;}")
        listed = self.data("ann@d.dom", "LISTMAILBOXES joe@d.dom AUTH ann")
        self.assertEqual(listed, {"Shared": {"Messages": 1, "Size": len(message("hi")),
                                             "Unseen": 1}})
        info = self.data("ann@d.dom", "GETMAILBOXINFO joe@d.dom MAILBOX Shared AUTH ann")
        self.assertEqual(info["Messages"], 1)
        self.assertEqual(self.data("ann@d.dom",
                                   "GETMAILBOXRIGHTS joe@d.dom MAILBOX Shared AUTH ann"), "lr")
        # l and r, but not a, d or c
        self.assertRefused("ann@d.dom", "GETMAILBOXACL joe@d.dom MAILBOX Shared AUTH ann",
                           "not enough access rights")
        self.assertRefused("ann@d.dom", "SETMAILBOXACL joe@d.dom MAILBOX Shared AUTH ann {ann=a;}",
                           "not enough access rights")
        self.assertRefused("ann@d.dom", "DELETEMAILBOX joe@d.dom MAILBOX Shared AUTH ann",
                           "not enough access rights")
        self.assertRefused("ann@d.dom", 'CREATEMAILBOX joe@d.dom MAILBOX "Shared/x" AUTH ann',
                           "not enough access rights")
        # what ann cannot see does not exist for her
        self.assertRefused("ann@d.dom", "GETMAILBOXINFO joe@d.dom MAILBOX Private AUTH ann",
                           "unknown mailbox")
        self.assertRefused("ann@d.dom", "DELETEMAILBOX joe@d.dom MAILBOX Private AUTH ann",
                           "unknown mailbox")
        # a domain administrator may act with ann's rights
        self.assertEqual(sorted(self.data("dadmin@d.dom", "LISTMAILBOXES joe@d.dom AUTH ann")),
                         ["Shared"])

    def test_authMoreRights(self):
        """c on the parent lets create, d lets delete and rename, a lets manage the ACL."""
        self.assertOK("joe@d.dom", "SETMAILBOXACL joe@d.dom MAILBOX Shared {ann=lrcda;}")
        self.assertOK("ann@d.dom", 'CREATEMAILBOX joe@d.dom MAILBOX "Shared/Sub" AUTH ann')
        self.assertRefused("ann@d.dom", "CREATEMAILBOX joe@d.dom MAILBOX Top AUTH ann",
                           "not enough access rights")
        self.assertOK("ann@d.dom", "SETMAILBOXACL joe@d.dom MAILBOX Shared AUTH ann {bob=l;}")
        self.assertEqual(self.data("ann@d.dom", "GETMAILBOXACL joe@d.dom MAILBOX Shared AUTH ann"),
                         {"ann": "lrcda", "bob": "l"})
        # the new sub-mailbox has no ACL: ann may not rename it away
        self.assertRefused("ann@d.dom",
                           'RENAMEMAILBOX joe@d.dom MAILBOXES Shared INTO Gone AUTH ann',
                           "unknown mailbox")
        self.assertOK("joe@d.dom", 'SETMAILBOXACL joe@d.dom MAILBOX "Shared/Sub" {ann=lrd;}')
        self.assertOK("joe@d.dom", "SETMAILBOXACL joe@d.dom MAILBOX INBOX {ann=c;}")
        self.assertOK("ann@d.dom", "RENAMEMAILBOX joe@d.dom MAILBOXES Shared INTO Gone AUTH ann")
        self.assertEqual(sorted(self.store.listMailboxes(JOE)),
                         ["Gone", "Gone/Sub", "INBOX", "Private"])
        self.assertOK("ann@d.dom", 'DELETEMAILBOX joe@d.dom MAILBOXES Gone AUTH ann')
        self.assertEqual(sorted(self.store.listMailboxes(JOE)), ["INBOX", "Private"])

    def test_authRevoked(self):
        """Once the grant is revoked the mailbox is gone for the other account."""
        self.assertOK("joe@d.dom", "SETMAILBOXACL joe@d.dom MAILBOX Shared {ann=lr;}")
        self.assertIn("Shared", self.data("ann@d.dom", "LISTMAILBOXES joe@d.dom AUTH ann"))
        self.assertOK("joe@d.dom", 'SETMAILBOXACL joe@d.dom MAILBOX Shared {ann="-lr";}')
        self.assertEqual(self.data("ann@d.dom", "LISTMAILBOXES joe@d.dom AUTH ann"), {})
        self.assertRefused("ann@d.dom", "GETMAILBOXINFO joe@d.dom MAILBOX Shared AUTH ann",
                           "unknown mailbox")
        self.assertRefused("ann@d.dom", "GETMAILBOXRIGHTS joe@d.dom MAILBOX Shared AUTH ann",
                           "unknown mailbox")

    def test_lookupOnly(self):
        """With l but not r a mailbox is listed without counters."""
        self.assertOK("joe@d.dom", "SETMAILBOXACL joe@d.dom MAILBOX Shared {anyone=l;}")
        self.assertEqual(self.data("bob@d.dom", "LISTMAILBOXES joe@d.dom AUTH bob"),
                         {"Shared": {}})
        self.assertRefused("bob@d.dom", "GETMAILBOXINFO joe@d.dom MAILBOX Shared AUTH bob",
                           "not enough access rights")

    def test_authOwner(self):
        """AUTH of the owner himself means all rights."""
        self.assertEqual(sorted(self.data("joe@d.dom", "LISTMAILBOXES joe@d.dom AUTH joe")),
                         ["INBOX", "Private", "Shared"])
        self.assertOK("dadmin@d.dom", "CREATEMAILBOX joe@d.dom MAILBOX New AUTH joe@d.dom")

    def test_subscriptionsAndAliasesOwnersOnly(self):
        """Subscriptions and aliases cannot be reached through another account's ACL."""
        self.assertOK("joe@d.dom", "SETMAILBOXACL joe@d.dom MAILBOX INBOX {ann=lrswipcda;}")
        for line in ["GETACCOUNTSUBSCRIPTION joe@d.dom AUTH ann",
                     "SETACCOUNTSUBSCRIPTION joe@d.dom AUTH ann ()",
                     "GETMAILBOXALIASES joe@d.dom AUTH ann",
                     "SETMAILBOXALIASES joe@d.dom AUTH ann {}"]:
            self.assertRefused("ann@d.dom", line, "not enough access rights")


class SubscriptionAliasTests(MailboxCommandsTestCase):
    """
    GETACCOUNTSUBSCRIPTION/SETACCOUNTSUBSCRIPTION, GETMAILBOXALIASES/SETMAILBOXALIASES.
    """

    def test_subscriptions(self):
        """SETACCOUNTSUBSCRIPTION replaces the array GETACCOUNTSUBSCRIPTION returns."""
        self.assertEqual(self.data("joe@d.dom", "GETACCOUNTSUBSCRIPTION joe@d.dom"), [])
        self.assertOK("joe@d.dom", 'SETACCOUNTSUBSCRIPTION joe@d.dom (Sent, "Work/2024", inbox)')
        self.assertEqual(self.data("joe@d.dom", "GETACCOUNTSUBSCRIPTION joe"),
                         ["INBOX", "Sent", "Work/2024"])
        self.assertOK("dadmin@d.dom", "SETACCOUNTSUBSCRIPTION joe@d.dom (Sent)")
        self.assertEqual(self.store.subscriptions(JOE), ["Sent"])
        self.assertRefused("joe@d.dom", 'SETACCOUNTSUBSCRIPTION joe@d.dom ("a//b")',
                           "illegal mailbox name")
        self.assertEqual(self.store.subscriptions(JOE), ["Sent"])

    def test_aliases(self):
        """SETMAILBOXALIASES stores the seed-000 folder alias; GETMAILBOXALIASES shows it."""
        self.assertEqual(self.data("joe@d.dom", "GETMAILBOXALIASES joe@d.dom"), {})
        self.assertOK("joe@d.dom",
                      'SETMAILBOXALIASES joe@d.dom {Travel="~public/Travel-Schedule"; Old=Sent;}')
        self.assertEqual(self.data("postmaster", "GETMAILBOXALIASES joe@d.dom"),
                         {"Travel": "~public/Travel-Schedule", "Old": "Sent"})
        self.assertEqual(mailboxAliases(self.directory.storage, JOE)["Travel"],
                         "~public/Travel-Schedule")
        path = os.path.join(self.directory.storage.accountPath("d.dom", "joe"), ALIASES_FILE)
        self.assertTrue(os.path.exists(path))
        self.assertOK("joe@d.dom", "SETMAILBOXALIASES joe@d.dom {}")
        self.assertEqual(self.data("joe@d.dom", "GETMAILBOXALIASES joe@d.dom"), {})
        self.assertFalse(os.path.exists(path))

    def test_badAliases(self):
        """Illegal alias names and targets are refused."""
        for value in ['{"a//b"=Sent;}', '{Travel="~/x";}', '{Travel="~public";}',
                      '{Travel="a//b";}']:
            self.assertTrue(self.run_("joe@d.dom", "SETMAILBOXALIASES joe@d.dom " + value)
                            .startswith("501 illegal mailbox"), value)
        self.assertRefused("joe@d.dom", "SETMAILBOXALIASES joe@d.dom {Travel=(x);}",
                           "mailbox alias target must be a string: Travel")
        self.assertEqual(self.data("joe@d.dom", "GETMAILBOXALIASES joe@d.dom"), {})


class PersistenceTests(MailboxCommandsTestCase):
    """
    Everything survives a restart (a new directory and store over the same folder).
    """

    def test_restart(self):
        """Mailboxes, messages, class, ACL, subscriptions and aliases are kept."""
        self.assertOK("postmaster", "CREATEMAILBOX joe@d.dom MAILBOX Cal CLASS IPF.Appointment")
        self.assertOK("postmaster", 'CREATEMAILBOX joe@d.dom MAILBOX "Work/A"')
        self.assertOK("postmaster", 'RENAMEMAILBOX joe@d.dom MAILBOXES Work INTO Job')
        self.deliver("Cal")
        self.assertOK("postmaster", "SETMAILBOXACL joe@d.dom MAILBOX Cal {ann=lr;}")
        self.assertOK("postmaster", "SETACCOUNTSUBSCRIPTION joe@d.dom (Cal)")
        self.assertOK("postmaster",
                      'SETMAILBOXALIASES joe@d.dom {Travel="~public/Travel-Schedule";}')
        info = self.data("postmaster", "GETMAILBOXINFO joe@d.dom MAILBOX Cal")

        self.restart()
        self.assertEqual(sorted(self.data("postmaster", "LISTMAILBOXES joe@d.dom")),
                         ["Cal", "INBOX", "Job", "Job/A"])
        self.assertEqual(self.data("postmaster", "GETMAILBOXINFO joe@d.dom MAILBOX Cal"), info)
        self.assertEqual(self.data("postmaster", "GETMAILBOXACL joe@d.dom MAILBOX Cal"),
                         {"ann": "lr"})
        self.assertEqual(self.data("ann@d.dom",
                                   "GETMAILBOXRIGHTS joe@d.dom MAILBOX Cal AUTH ann"), "lr")
        self.assertEqual(self.data("postmaster", "GETACCOUNTSUBSCRIPTION joe@d.dom"), ["Cal"])
        self.assertEqual(self.data("postmaster", "GETMAILBOXALIASES joe@d.dom"),
                         {"Travel": "~public/Travel-Schedule"})

    def test_deletedStaysDeleted(self):
        """A deleted mailbox does not come back after a restart."""
        self.assertOK("postmaster", "CREATEMAILBOX joe@d.dom MAILBOX Gone")
        self.assertOK("postmaster", "DELETEMAILBOX joe@d.dom MAILBOX Gone")
        self.restart()
        self.assertEqual(sorted(self.data("postmaster", "LISTMAILBOXES joe@d.dom")), ["INBOX"])
