# -*- test-case-name: tests.queue.test_local -*-
"""
Tests for L{cgpro.queue.local}: the LOCAL channel with a fake store and
fake rules (store, mailboxes, redirect, forward, mirror, reject, vacation
replies, remembered lists, execute, quota, failures), and with the real
rules engine for the vacation example of rules.md.
"""

import email
import os

from twisted.internet.defer import succeed
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from cgpro.core.envelope import DEFERRED, DELIVERED, FAILED
from cgpro.core.interfaces import IDeliveryChannel
from cgpro.queue.lists import LISTS_FILE
from cgpro.queue.local import LocalChannel
from cgpro.queue.queue import QueueJob
from tests.queue.support import (
    MESSAGE,
    FakeChannel,
    FakeOutcome,
    FakeStore,
    SizedStore,
    envelope,
    makeQueue,
    reopen,
)

DAY = 86400


class FakeProcessTransport:
    def __init__(self):
        self.written = []
        self.closed = False

    def write(self, data):
        self.written.append(data)

    def closeStdin(self):
        self.closed = True

    def signalProcess(self, signal):
        self.signalled = signal


class FakeReactor:
    """
    Records spawnProcess calls and connects the protocol to a fake
    transport.
    """

    def __init__(self):
        self.spawned = []

    def spawnProcess(self, proto, executable, args, env=None, **kw):
        transport = FakeProcessTransport()
        proto.transport = transport
        proto.connectionMade()
        self.spawned.append((executable, args, transport))
        return transport


class LocalTestsMixin:
    """
    A queue with the LOCAL channel over a fake store; the rules hook
    answers C{self.outcome} (a L{FakeOutcome} or a callable).
    """

    storeFactory = FakeStore
    outcome = None

    def setUp(self):
        self.queue, self.directory, self.clock = makeQueue(self)
        self.store = self.storeFactory()
        self.reactor = FakeReactor()
        self.calls = []
        self.channel = LocalChannel(self.store, self.directory, self.queue, self.clock,
                                    mailRules=self.rules, reactor=self.reactor)
        self.smtp = FakeChannel("SMTP")
        self.queue.registerChannel(self.channel)
        self.queue.registerChannel(self.smtp)
        self.queue.start()

    def rules(self, ruleSets, data, envelope, recipient, account, now, inList, allowed):
        self.calls.append((ruleSets, recipient.address, account, now, allowed, inList))
        outcome = self.outcome
        if callable(outcome):
            outcome = outcome(account, data, inList)
        return outcome or FakeOutcome()

    def withRules(self, *accounts):
        for account in accounts:
            self.successResultOf(self.directory.setAccountPart(
                account, "MailRules", [[5, "r", [], [["Discard"]]]]))

    def send(self, env, data=MESSAGE):
        id = self.successResultOf(self.queue.submit(env, data))
        return id, self.successResultOf(self.queue.whenDone(id))

    def stored(self, account=None):
        return [m for m in self.store.messages if account is None or m[0] == account]


class LocalChannelTests(LocalTestsMixin, SynchronousTestCase):
    """
    Delivery into mailboxes and the rule outcomes.
    """

    def test_interface(self):
        """LocalChannel provides IDeliveryChannel for LOCAL."""
        verifyObject(IDeliveryChannel, self.channel)
        self.assertEqual(self.channel.name, "LOCAL")

    def test_noRules(self):
        """Without rules the message goes to INBOX with a Return-Path; the hook is not called."""
        id, (result,) = self.send(envelope("carol@other.dom", "bob@main.dom"))
        self.assertEqual(result.status, DELIVERED)
        self.assertEqual(self.stored(), [(
            "bob@main.dom", "INBOX", b"Return-Path: <carol@other.dom>\r\n" + MESSAGE, (),
            id + ".0")])
        self.assertEqual(self.calls, [])

    def test_hookArguments(self):
        """The hook gets the domain and account rules, recipient, account and RulesAllowed."""
        self.withRules("bob@main.dom")
        self.successResultOf(self.directory.setAccountSettings(
            "bob@main.dom", {"RulesAllowed": "Filter Only"}, update=True))
        self.send(envelope("carol@other.dom", "bob@main.dom"))
        (ruleSets, recipient, account, now, allowed, inList), = self.calls
        self.assertEqual(ruleSets, [("domain", []), ("account", [[5, "r", [], [["Discard"]]]])])
        self.assertEqual((recipient, account, allowed),
                         ("bob@main.dom", "bob@main.dom", "Filter Only"))
        self.assertEqual(now.year, 2026)

    def test_storeInMailboxes(self):
        """Store in an existing mailbox with flags; a missing mailbox means INBOX."""
        self.withRules("bob@main.dom")
        self.store.mailboxes["bob@main.dom"] = {"Trash"}
        self.outcome = FakeOutcome(store=[("Trash", ("\\Seen",)), ("Nope", ())])
        id, (result,) = self.send(envelope("carol@other.dom", "bob@main.dom"))
        self.assertEqual(result.status, DELIVERED)
        self.assertEqual([(m[1], m[3], m[4]) for m in self.stored()],
                         [("Trash", ("\\Seen",), id + ".0"), ("INBOX", (), id + ".0")])

    def test_twoRecipientsOneCopy(self):
        """An account named twice in one message gets one copy."""
        self.successResultOf(self.directory.setAccountAliases("bob@main.dom", ["robert"]))
        _, results = self.send(envelope("carol@other.dom", "bob@main.dom", "robert@main.dom"))
        self.assertEqual([r.status for r in results], [DELIVERED, DELIVERED])
        self.assertEqual(len(self.stored()), 1)

    def test_addHeaders(self):
        """Added headers go into the stored copy, after the Return-Path."""
        self.withRules("bob@main.dom")
        self.outcome = FakeOutcome(addHeaders=["X-Spam: no"])
        self.send(envelope("carol@other.dom", "bob@main.dom"))
        (_, _, data, _, _), = self.stored()
        self.assertTrue(data.startswith(b"Return-Path: <carol@other.dom>\r\nX-Spam: no\r\nFrom:"))

    def test_reject(self):
        """Reject fails the recipient with the text; the sender gets a DSN."""
        self.withRules("bob@main.dom")
        self.outcome = FakeOutcome(reject="5.7.1 go away", store=[])
        _, (result,) = self.send(envelope("carol@other.dom", "bob@main.dom"))
        self.assertEqual((result.status, result.code, result.text),
                         (FAILED, 550, "5.7.1 go away"))
        self.assertEqual(self.stored("bob@main.dom"), [])
        (_, _, data, _, _), = self.stored("carol@other.dom")
        report = email.message_from_bytes(data)
        self.assertEqual(report.get_content_type(), "multipart/report")
        self.assertIn("5.7.1 go away", data.decode())

    def test_discard(self):
        """Discard stores nothing and reports success."""
        self.withRules("bob@main.dom")
        self.outcome = FakeOutcome(discard=True)
        _, (result,) = self.send(envelope("carol@other.dom", "bob@main.dom"))
        self.assertEqual(result.status, DELIVERED)
        self.assertEqual(self.stored(), [])

    def test_redirect(self):
        """Redirect sends a copy, keeping the sender, instead of storing."""
        self.withRules("bob@main.dom")
        self.outcome = lambda account, data, inList: FakeOutcome(
            redirect=["alice@main.dom"], store=[]) if account == "bob@main.dom" else None
        _, (result,) = self.send(envelope("carol@other.dom", "bob@main.dom"))
        self.assertEqual(result.status, DELIVERED)
        self.assertEqual(self.stored("bob@main.dom"), [])
        (_, _, data, _, _), = self.stored("alice@main.dom")
        self.assertTrue(data.startswith(
            b"Return-Path: <carol@other.dom>\r\nDelivered-To: bob@main.dom\r\n"))

    def test_redirectLoop(self):
        """Two accounts redirecting to each other end in a 5.4.6 failure, not a loop."""
        self.withRules("bob@main.dom", "alice@main.dom")
        partner = {"bob@main.dom": "alice@main.dom", "alice@main.dom": "bob@main.dom"}
        self.outcome = lambda account, data, inList: FakeOutcome(
            redirect=[partner[account]], store=[]) if account in partner else None
        self.send(envelope("carol@other.dom", "bob@main.dom"))
        self.assertEqual(self.stored("bob@main.dom") + self.stored("alice@main.dom"), [])
        (_, _, data, _, _), = self.stored("carol@other.dom")
        self.assertIn(b"5.4.6 mail forwarding loop", data)

    def test_mirrorAndForward(self):
        """Mirror copies and stores; forward copies from the account."""
        self.withRules("bob@main.dom")
        self.outcome = FakeOutcome(mirror=["x@far.dom"], forward=["y@far.dom"])
        self.send(envelope("carol@other.dom", "bob@main.dom"))
        self.assertEqual(len(self.stored("bob@main.dom")), 1)
        senders = sorted((job.envelope.sender, job.recipients[0][0].address)
                         for job in self.smtp.jobs)
        self.assertEqual(senders, [("bob@main.dom", "y@far.dom"),
                                   ("carol@other.dom", "x@far.dom")])

    def test_vacationOncePerPeriod(self):
        """A reply goes once per sender per VacationReplyPeriod."""
        self.withRules("bob@main.dom")
        self.outcome = FakeOutcome(replies=[("carol@other.dom", "+Subject: Away\n\nI am away.")])
        self.send(envelope("carol@other.dom", "bob@main.dom"))
        (_, _, reply, _, _), = self.stored("carol@other.dom")
        parsed = email.message_from_bytes(reply)
        self.assertEqual(parsed["Subject"], "Away")
        self.assertEqual(parsed["Auto-Submitted"], "auto-replied")
        self.assertEqual(parsed["From"], "bob@main.dom")
        self.assertEqual(parsed["In-Reply-To"], "<m1@remote.dom>")
        self.assertIn(b"Return-Path: <>", reply)
        self.assertIn("I am away.", parsed.get_payload())
        self.clock.advance(DAY)
        self.send(envelope("carol@other.dom", "bob@main.dom"))
        self.assertEqual(len(self.stored("carol@other.dom")), 1)
        self.clock.advance(7 * DAY)
        self.send(envelope("carol@other.dom", "bob@main.dom"))
        self.assertEqual(len(self.stored("carol@other.dom")), 2)

    def test_vacationPeriodSetting(self):
        """VacationReplyPeriod shortens the period."""
        self.withRules("bob@main.dom")
        self.successResultOf(self.directory.setAccountSettings(
            "bob@main.dom", {"VacationReplyPeriod": "1h"}, update=True))
        self.outcome = FakeOutcome(replies=[("carol@other.dom", "away")])
        self.send(envelope("carol@other.dom", "bob@main.dom"))
        self.clock.advance(3601)
        self.send(envelope("carol@other.dom", "bob@main.dom"))
        self.assertEqual(len(self.stored("carol@other.dom")), 2)

    def test_noReplyToAutomatic(self):
        """Bulk, list, auto-submitted and null-sender mail gets no reply."""
        self.withRules("bob@main.dom")
        self.outcome = FakeOutcome(replies=[("carol@other.dom", "away")])
        for extra in (b"Precedence: bulk\r\n", b"List-Id: <l.x>\r\n",
                      b"Auto-Submitted: auto-generated\r\n"):
            self.send(envelope("carol@other.dom", "bob@main.dom"), extra + MESSAGE)
        self.send(envelope("", "bob@main.dom"))
        self.assertEqual(self.stored("carol@other.dom"), [])
        self.assertEqual(len(self.stored("bob@main.dom")), 4)

    def test_rememberAndInList(self):
        """Remembered addresses are kept in the account folder; inList sees them for a period."""
        self.withRules("bob@main.dom")
        seen = []

        def outcome(account, data, inList):
            seen.append(inList("#RepliedAddresses", "carol@other.dom"))
            return FakeOutcome(remember=[("RepliedAddresses", "carol@other.dom")])
        self.outcome = outcome
        self.send(envelope("carol@other.dom", "bob@main.dom"))
        path = os.path.join(self.directory.storage.accountPath("main.dom", "bob"), LISTS_FILE)
        self.assertIn(b"carol@other.dom", open(path, "rb").read())
        self.clock.advance(DAY)
        self.send(envelope("carol@other.dom", "bob@main.dom"))
        self.channel.lists._cache.clear()
        self.clock.advance(7 * DAY)
        self.send(envelope("carol@other.dom", "bob@main.dom"))
        self.assertEqual(seen, [False, True, False])

    def test_execute(self):
        """Execute runs the command with the message on stdin."""
        self.withRules("bob@main.dom")
        self.outcome = FakeOutcome(execute=["/usr/bin/logger -t 'mail in'"])
        _, (result,) = self.send(envelope("carol@other.dom", "bob@main.dom"))
        self.assertEqual(result.status, DELIVERED)
        (executable, args, transport), = self.reactor.spawned
        self.assertEqual(args, ["/usr/bin/logger", "-t", "mail in"])
        self.assertEqual(transport.written, [MESSAGE])
        self.assertTrue(transport.closed)
        self.clock.advance(3600)
        self.assertEqual(transport.signalled, "KILL")

    def test_storeFailure(self):
        """A store failure defers the recipient."""
        self.store.fail = OSError("disk")
        _, (result,) = self.send(envelope("carol@other.dom", "bob@main.dom"))
        self.assertEqual((result.status, result.code), (DEFERRED, 451))
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)

    def test_rulesFailure(self):
        """A rules hook that raises stores into INBOX."""
        self.withRules("bob@main.dom")

        def broken(account, data, inList):
            raise ValueError("bad rule")
        self.outcome = broken
        _, (result,) = self.send(envelope("carol@other.dom", "bob@main.dom"))
        self.assertEqual(result.status, DELIVERED)
        self.assertEqual(len(self.stored("bob@main.dom")), 1)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_unknownAccount(self):
        """A job for an account that no longer exists fails with 5.1.1."""
        env = envelope("carol@other.dom", "ghost@main.dom")
        job = QueueJob("1", env, "ghost@main.dom", [(env.recipients[0], None)], "/nonexistent",
                       0, 0, data=MESSAGE)
        result, = self.successResultOf(self.channel.deliver(job))
        self.assertEqual((result.status, result.code), (FAILED, 550))

    def test_recoveredNoRepeat(self):
        """A recovered job already in the store repeats neither the store nor its copies."""
        self.withRules("bob@main.dom")
        self.outcome = FakeOutcome(mirror=["x@far.dom"])
        env = envelope("carol@other.dom", "bob@main.dom")
        job = QueueJob("77", env, "bob@main.dom", [(env.recipients[0], None)], "/nonexistent",
                       0, 0, recovered=True, data=MESSAGE)
        self.successResultOf(self.channel.deliver(job))
        self.assertEqual(len(self.smtp.jobs), 1)
        result, = self.successResultOf(self.channel.deliver(job))
        self.assertEqual(result.status, DELIVERED)
        self.assertEqual(len(self.smtp.jobs), 1)
        self.assertEqual(len(self.stored()), 1)


class ForgetfulStore(FakeStore):
    """
    A store whose C{deliver} no longer remembers an old delivery id (the
    Maildir store knows only the ids in its journal's last block), while
    C{hasDelivery} still finds it in the file names.
    """

    def deliver(self, account, mailbox, data, flags=(), internalDate=None, deliveryId=None):
        self.messages.append((account, mailbox, data, tuple(flags), deliveryId))
        return succeed(len(self.messages))


class ForgetfulStoreTests(LocalTestsMixin, SynchronousTestCase):
    """
    A job recovered twice (a kill during recovery) after its copy was
    stored long ago.
    """

    storeFactory = ForgetfulStore

    def test_recoveredTwiceStoredOnce(self):
        """The channel asks the store's files, not only its recent ids."""
        env = envelope("carol@other.dom", "bob@main.dom")
        job = QueueJob("78", env, "bob@main.dom", [(env.recipients[0], None)], "/nonexistent",
                       0, 0, data=MESSAGE)
        self.successResultOf(self.channel.deliver(job))
        job.recovered = True
        result, = self.successResultOf(self.channel.deliver(job))
        self.assertEqual((result.status, result.code), (DELIVERED, 250))
        self.assertEqual(len(self.stored("bob@main.dom")), 1)

    def test_notRecoveredNotAsked(self):
        """A job of this run is not checked against the files (the hot path)."""
        env = envelope("carol@other.dom", "bob@main.dom")
        job = QueueJob("79", env, "bob@main.dom", [(env.recipients[0], None)], "/nonexistent",
                       0, 0, data=MESSAGE)
        self.patch(self.store, "hasDelivery", lambda *a: self.fail("asked"))
        self.successResultOf(self.channel.deliver(job))
        self.assertEqual(len(self.stored("bob@main.dom")), 1)


class CrashTests(LocalTestsMixin, SynchronousTestCase):
    """
    LOCAL deliveries finished without a journal record are not repeated
    after a crash.
    """

    def test_crashBeforeRemoval(self):
        """A delivered message whose files survived a crash is not stored again."""
        self.patch(self.queue.spool, "remove", lambda id, journal=True: None)
        self.withRules("bob@main.dom")
        self.outcome = FakeOutcome(mirror=["x@far.dom"])
        id, _ = self.send(envelope("carol@other.dom", "bob@main.dom"))
        self.assertFalse(os.path.exists(self.queue.spool.staPath(id)))
        self.assertEqual(len(self.stored()), 1)
        self.assertEqual(len(self.smtp.jobs), 1)
        self.queue.stop()
        queue = reopen(self, self.queue)
        smtp = FakeChannel("SMTP")
        queue.registerChannel(LocalChannel(self.store, self.directory, queue, self.clock,
                                           mailRules=self.rules))
        queue.registerChannel(smtp)
        queue.start()
        self.assertEqual(len(self.stored()), 1)
        self.assertEqual(smtp.jobs, [])
        self.assertEqual(queue.messageCount, 0)
        self.assertFalse(os.path.exists(self.queue.spool.msgPath(id)))


class QuotaTests(LocalTestsMixin, SynchronousTestCase):
    """
    MaxAccountSize, with a store that tells its usage.
    """

    storeFactory = SizedStore

    def test_overQuota(self):
        """A message that does not fit fails with 552 5.2.2."""
        self.store.usage = 100 * 1024 * 1024
        _, (result,) = self.send(envelope("carol@other.dom", "bob@main.dom"))
        self.assertEqual((result.status, result.code), (FAILED, 552))

    def test_underQuota(self):
        """A message that fits is stored."""
        _, (result,) = self.send(envelope("carol@other.dom", "bob@main.dom"))
        self.assertEqual(result.status, DELIVERED)


class RealRulesTests(SynchronousTestCase):
    """
    The LOCAL channel with the real rules engine (rules.md section 7.3).
    """

    def setUp(self):
        self.queue, self.directory, self.clock = makeQueue(self)
        self.store = FakeStore()
        self.channel = LocalChannel(self.store, self.directory, self.queue, self.clock)
        self.queue.registerChannel(self.channel)
        self.queue.start()

    def test_vacationRule(self):
        """The vacation rule answers the first message of a sender and not the second."""
        self.successResultOf(self.directory.setAccountPart("bob@main.dom", "MailRules", [
            [2, "#Vacation",
             [["Human Generated", "---"], ["From", "not in", "#RepliedAddresses"]],
             [["Reply with", "+Subject: Away\nIn-Reply-To: ^I\n\nI am away."],
              ["Remember 'From' in", "RepliedAddresses"]]]]))
        data = MESSAGE.replace(b"sender@remote.dom", b"carol@other.dom")
        for _ in range(2):
            self.successResultOf(self.queue.submit(envelope("carol@other.dom", "bob@main.dom"),
                                                   data))
        self.assertEqual(len([m for m in self.store.messages if m[0] == "bob@main.dom"]), 2)
        replies = [m for m in self.store.messages if m[0] == "carol@other.dom"]
        self.assertEqual(len(replies), 1)
        reply = email.message_from_bytes(replies[0][2])
        self.assertEqual(reply["Subject"], "Away")
        self.assertEqual(reply["In-Reply-To"], "<m1@remote.dom>")
        self.assertEqual(reply["Auto-Submitted"], "auto-replied")
