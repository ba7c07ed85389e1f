# -*- test-case-name: tests.queue.test_queue -*-
"""
Tests for L{cgpro.queue.queue}: routing into logical queues and channels,
concurrency, retries and expiry on a L{Clock}, DSNs, crash recovery,
server rules, L{MessageQueue.whenDone}, statistics.
"""

import email
import os

from twisted.internet.defer import fail
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from cgpro.core.envelope import DEFERRED, DELIVERED, FAILED, RecipientResult
from cgpro.core.interfaces import IMessageQueue
from tests.queue.support import (
    MESSAGE,
    FakeChannel,
    FakeOutcome,
    envelope,
    makeQueue,
    reopen,
)


class QueueTestsMixin:
    """
    A started queue with LOCAL and SMTP fake channels.
    """

    settings = {}

    def setUp(self):
        self.queue, self.directory, self.clock = makeQueue(
            self, serverRules=self.serverRules, **self.settings)
        self.local = FakeChannel("LOCAL")
        self.smtp = FakeChannel("SMTP")
        self.queue.registerChannel(self.local)
        self.queue.registerChannel(self.smtp)
        self.queue.start()

    def serverRules(self, rules, envelope, data):
        return None

    def submit(self, env, data=MESSAGE):
        return self.successResultOf(self.queue.submit(env, data))

    def queueFiles(self):
        return sorted(f for f in os.listdir(self.queue.spool.folder) if f != "LastId")

    def reports(self):
        """
        @return: the DSNs the LOCAL channel got, parsed.
        """
        return [email.message_from_bytes(data) for job, data in
                zip(self.local.jobs, self.local.data) if job.envelope.sender == ""]


class RoutingTests(QueueTestsMixin, SynchronousTestCase):
    """
    Recipients go through the Router to the channel of their module.
    """

    def test_interface(self):
        """MessageQueue provides IMessageQueue."""
        verifyObject(IMessageQueue, self.queue)

    def test_localAndRemote(self):
        """Local accounts go to LOCAL per account; trusted remote mail to SMTP per domain."""
        env = envelope("alice@main.dom", "bob@main.dom", "x@far.dom", "y@far.dom",
                       "z@near.dom", trusted=True)
        id = self.submit(env)
        self.assertEqual(self.local.addresses(), [("bob@main.dom", ["bob@main.dom"])])
        self.assertEqual(sorted(self.smtp.addresses()), [
            ("far.dom", ["x@far.dom", "y@far.dom"]), ("near.dom", ["z@near.dom"])])
        job = self.local.jobs[0]
        self.assertEqual(job.messageId, id)
        self.assertEqual(job.readMessage(), MESSAGE)
        self.assertFalse(job.recovered)
        self.assertEqual(self.queueFiles(), [])
        self.assertEqual(self.queue.stats["delivered"], 4)

    def test_sameAccountOneJob(self):
        """Two recipients naming one account make one job with both."""
        self.successResultOf(self.directory.setAccountAliases("bob@main.dom", ["robert"]))
        self.submit(envelope("a@far.dom", "bob@main.dom", "robert@main.dom"))
        self.assertEqual(self.local.addresses(),
                         [("bob@main.dom", ["bob@main.dom", "robert@main.dom"])])

    def test_unknownUserFails(self):
        """An unknown local user fails with 550 5.1.1 and the sender gets a DSN."""
        id = self.submit(envelope("alice@main.dom", "nobody@main.dom", "bob@main.dom"))
        results = self.successResultOf(self.queue.whenDone(id))
        self.assertEqual([r.status for r in results], [FAILED, DELIVERED])
        self.assertEqual(results[0].code, 550)
        self.assertIn("5.1.1", results[0].text)
        report, = self.reports()
        self.assertEqual(self.local.jobs[-1].queue, "alice@main.dom")
        self.assertIn("nobody@main.dom", report.as_string())
        self.assertEqual(self.queue.stats["failed"], 1)
        self.assertEqual(self.queue.stats["reports"], 1)

    def test_relayingProhibited(self):
        """An untrusted sender's remote recipient fails with 5.7.1."""
        id = self.submit(envelope("", "x@far.dom"))
        result, = self.successResultOf(self.queue.whenDone(id))
        self.assertEqual((result.status, result.code), (FAILED, 550))
        self.assertIn("5.7.1", result.text)
        self.assertEqual(self.smtp.jobs, [])

    def test_nullSenderNoReport(self):
        """A message with the null sender never gets a DSN."""
        self.submit(envelope("", "nobody@main.dom"))
        self.assertEqual(self.reports(), [])
        self.assertEqual(self.queueFiles(), [])

    def test_notifyNever(self):
        """NOTIFY=NEVER suppresses the failure DSN."""
        self.submit(envelope("alice@main.dom", ("nobody@main.dom", ("NEVER",))))
        self.assertEqual(self.reports(), [])

    def test_notifySuccess(self):
        """NOTIFY=SUCCESS gets a report of a local delivery."""
        self.submit(envelope("carol@other.dom", ("bob@main.dom", ("SUCCESS",))))
        report, = self.reports()
        self.assertIn("Action: delivered", report.as_string())

    def test_nullRoute(self):
        """A forwarder to null discards the recipient without a DSN."""
        self.successResultOf(self.directory.createForwarder("trash@main.dom", "null"))
        id = self.submit(envelope("alice@main.dom", "trash@main.dom"))
        result, = self.successResultOf(self.queue.whenDone(id))
        self.assertEqual(result.status, DELIVERED)
        self.assertEqual(self.local.jobs, [])
        self.assertEqual(self.queue.stats["discarded"], 1)

    def test_noChannel(self):
        """Without a channel a module's recipients wait, and go when it registers."""
        id = self.submit(envelope("alice@main.dom", "x@grp.dom", trusted=True),)
        self.queue._channels.pop("SMTP")
        id = self.submit(envelope("alice@main.dom", "x@far.dom", trusted=True))
        result, = self.successResultOf(self.queue.whenDone(id))
        self.assertEqual(result.status, DEFERRED)
        self.assertIn("module SMTP not available", result.text)
        self.assertEqual(self.queue.listQueues()["SMTP"]["far.dom"]["nTotal"], 1)
        later = FakeChannel("SMTP")
        self.queue.registerChannel(later)
        self.assertEqual(later.addresses(), [("far.dom", ["x@far.dom"])])
        self.assertEqual(self.queueFiles(), [])

    def test_channelError(self):
        """A channel raising an exception defers its recipients."""
        def broken(job):
            raise RuntimeError("boom")
        self.local.answer = broken
        id = self.submit(envelope("carol@other.dom", "bob@main.dom"))
        result, = self.successResultOf(self.queue.whenDone(id))
        self.assertEqual(result.status, DEFERRED)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_missingResult(self):
        """A recipient the channel says nothing about is deferred."""
        self.local.answer = lambda job: []
        id = self.submit(envelope("carol@other.dom", "bob@main.dom"))
        result, = self.successResultOf(self.queue.whenDone(id))
        self.assertEqual(result.status, DEFERRED)

    def test_statsAndQueues(self):
        """Counters and per-queue lengths follow the messages."""
        self.local.hold = True
        self.submit(envelope("carol@other.dom", "bob@main.dom"))
        self.submit(envelope("carol@other.dom", "bob@main.dom", "alice@main.dom"))
        self.assertEqual(self.queue.stats["accepted"], 2)
        self.assertEqual(self.queue.messageCount, 2)
        self.assertEqual(self.queue.queueLengths(),
                         {"LOCAL(bob@main.dom)": 2, "LOCAL(alice@main.dom)": 1})
        info = self.queue.queueInfo("LOCAL", "bob@main.dom")
        self.assertEqual(info["nTotal"], 2)
        self.assertEqual(info["size"], 2 * len(MESSAGE))
        self.local.release()
        self.assertEqual(self.queue.queueLengths(), {})
        self.assertEqual(self.queue.messageCount, 0)
        self.assertEqual(self.queue.stats["delivered"], 3)


class ConcurrencyTests(QueueTestsMixin, SynchronousTestCase):
    """
    Jobs per logical queue and per module are bounded.
    """

    settings = {"QueueConcurrency": {"LOCAL": "2"}, "Concurrency": {"LOCAL": "3"}}

    def test_perQueueAndModule(self):
        """At most 2 jobs per account and 3 for the module; finished jobs make room."""
        self.local.hold = True
        for _ in range(4):
            self.submit(envelope("carol@other.dom", "bob@main.dom"))
        self.assertEqual(len(self.local.held), 2)
        for _ in range(3):
            self.submit(envelope("carol@other.dom", "alice@main.dom"))
        self.assertEqual(len(self.local.held), 3)
        self.assertEqual([job.queue for job, _ in self.local.held],
                         ["bob@main.dom", "bob@main.dom", "alice@main.dom"])
        job, d = self.local.held.pop(0)
        d.callback([RecipientResult(0, DELIVERED)])
        self.assertEqual(len(self.local.held), 3)
        for _ in range(10):
            self.local.release()
        self.assertEqual(len(self.local.jobs), 7)
        self.assertEqual(self.queueFiles(), [])


class RetryTests(QueueTestsMixin, SynchronousTestCase):
    """
    Deferred recipients are retried with back-off until they expire.
    """

    settings = {"RetryIntervals": ["1m", "5m"], "Expire": "20m", "DelayNotice": "6m"}

    def defer(self, job):
        return [RecipientResult(r.index, DEFERRED, 451, "4.4.1 no answer", "mx.far.dom")
                for r, _ in job.recipients]

    def test_retrySchedule(self):
        """Attempts at 0, 1m, then every 5m, then failure at expiry with a DSN."""
        self.smtp.answer = self.defer
        start = self.clock.seconds()
        id = self.submit(envelope("alice@main.dom", "x@far.dom", trusted=True))
        first, = self.successResultOf(self.queue.whenDone(id))
        self.assertEqual((first.status, first.code), (DEFERRED, 451))
        times = []
        for _ in range(25 * 60):
            count = len(self.smtp.jobs)
            self.clock.advance(1)
            if len(self.smtp.jobs) > count:
                times.append(self.clock.seconds() - start)
        self.assertEqual(times, [60, 360, 660, 960, 1200])
        self.assertEqual(self.queueFiles(), [])
        self.assertEqual(self.queue.stats["expired"], 1)
        delay, failure = self.reports()
        self.assertIn("Delayed", delay["Subject"])
        self.assertIn("Action: delayed", delay.as_string())
        self.assertIn("Undelivered", failure["Subject"])
        text = failure.as_string()
        self.assertIn("Action: failed", text)
        self.assertIn("Status: 4.4.7", text)
        self.assertIn("Remote-MTA: dns; mx.far.dom", text)

    def test_retryThenDeliver(self):
        """A recipient delivered on its second attempt is delivered once, no DSN."""
        answers = [self.defer]
        self.smtp.answer = lambda job: answers.pop(0)(job) if answers else [
            RecipientResult(r.index, DELIVERED, 250, "ok") for r, _ in job.recipients]
        self.submit(envelope("alice@main.dom", "x@far.dom", trusted=True))
        self.assertEqual(len(self.queueFiles()), 2)
        self.clock.advance(60)
        self.assertEqual(len(self.smtp.jobs), 2)
        self.assertEqual(self.queueFiles(), [])
        self.assertEqual(self.reports(), [])
        self.clock.advance(3600)
        self.assertEqual(len(self.smtp.jobs), 2)

    def test_releaseQueue(self):
        """release() retries a waiting SMTP queue at once."""
        self.smtp.answer = self.defer
        self.submit(envelope("alice@main.dom", "x@far.dom", "y@near.dom", trusted=True))
        self.assertEqual(len(self.smtp.jobs), 2)
        self.assertEqual(self.queue.release("SMTP", "far.dom"), 1)
        self.assertEqual(self.smtp.addresses()[-1], ("far.dom", ["x@far.dom"]))
        info = self.queue.queueInfo("SMTP", "far.dom")
        self.assertEqual(info["lastError"], "451 4.4.1 no answer")
        self.assertIn("delayedTill", info)

    def test_reject(self):
        """reject() fails the waiting recipients with the text and a DSN."""
        self.smtp.answer = self.defer
        id = self.submit(envelope("alice@main.dom", "x@far.dom", trusted=True))
        self.queue.reject(id, "5.7.1 spam")
        self.assertEqual(self.queueFiles(), [])
        report, = self.reports()
        self.assertIn("5.7.1 spam", report.as_string())
        self.assertRaises(KeyError, self.queue.reject, id)

    def test_rejectActive(self):
        """Recipients in a job when rejected fail if the job defers them."""
        self.smtp.hold = True
        id = self.submit(envelope("alice@main.dom", "x@far.dom", trusted=True))
        self.queue.reject(id)
        self.smtp.release(DEFERRED, 451, "later")
        self.assertEqual(self.queueFiles(), [])
        result, = self.successResultOf(self.queue.whenDone(id))
        self.assertEqual(result.status, FAILED)


class RecoveryTests(QueueTestsMixin, SynchronousTestCase):
    """
    A queue re-created on the same folder (a restart after a crash)
    delivers every recipient exactly once.
    """

    def restart(self, channel=None):
        self.successResultOf(self.queue.stop()) if not self.local.held else None
        self.queue.stop()
        queue = reopen(self, self.queue)
        local = channel or FakeChannel("LOCAL")
        queue.registerChannel(local)
        queue.registerChannel(FakeChannel("SMTP"))
        queue.start()
        return queue, local

    def test_partialProgress(self):
        """Delivered recipients are not delivered again; undelivered ones are."""
        self.local.hold = True
        id = self.submit(envelope("carol@other.dom", "alice@main.dom", "bob@main.dom"))
        (jobA, dA), (jobB, dB) = self.local.held
        dA.callback([RecipientResult(r.index, DELIVERED) for r, _ in jobA.recipients])
        queue, local = self.restart()
        self.assertEqual(local.addresses(), [("bob@main.dom", ["bob@main.dom"])])
        self.assertTrue(local.jobs[0].recovered)
        self.assertEqual(local.data[0], MESSAGE)
        self.assertEqual(queue.stats["recovered"], 1)
        self.assertEqual(self.queueFiles(), [])
        results = self.successResultOf(queue.whenDone(id))
        self.assertEqual([r.status for r in results], [DELIVERED, DELIVERED])

    def test_nothingRecorded(self):
        """A message whose channel never answered is delivered again in full."""
        self.local.hold = True
        self.submit(envelope("carol@other.dom", "alice@main.dom"))
        queue, local = self.restart()
        self.assertEqual(local.addresses(), [("alice@main.dom", ["alice@main.dom"])])

    def test_allFinalNotRemoved(self):
        """A message whose recipients were all final is only cleaned up."""
        self.local.hold = True
        id = self.submit(envelope("carol@other.dom", "alice@main.dom"))
        self.queue.spool.appendJournal(id, [{"Index": 0, "Status": "delivered", "Code": 250}])
        queue, local = self.restart()
        self.assertEqual(local.jobs, [])
        self.assertEqual(self.queueFiles(), [])

    def test_failedNotReported(self):
        """A failure recorded before the crash gets its DSN once after it."""
        self.local.hold = True
        id = self.submit(envelope("carol@other.dom", "alice@main.dom"))
        self.queue.spool.appendJournal(
            id, [{"Index": 0, "Status": "failed", "Code": 550, "Text": "5.0.0 nope"}])
        queue, local = self.restart()
        self.assertEqual([job.queue for job in local.jobs], ["carol@other.dom"])
        self.assertEqual(self.queueFiles(), [])

    def test_reportedNotAgain(self):
        """A failure already reported before the crash is not reported again."""
        self.local.hold = True
        id = self.submit(envelope("carol@other.dom", "alice@main.dom"))
        self.queue.spool.appendJournal(
            id, [{"Index": 0, "Status": "failed", "Code": 550}, {"Event": "Reported"}])
        queue, local = self.restart()
        self.assertEqual(local.jobs, [])

    def test_retryScheduleKept(self):
        """A deferred recipient is retried at its recorded time after a restart."""
        self.smtp.answer = lambda job: [RecipientResult(0, DEFERRED, 451, "later")]
        self.submit(envelope("alice@main.dom", "x@far.dom", trusted=True))
        self.queue.stop()
        queue = reopen(self, self.queue)
        smtp = FakeChannel("SMTP")
        queue.registerChannel(smtp)
        queue.start()
        self.assertEqual(smtp.jobs, [])
        self.clock.advance(59)
        self.assertEqual(smtp.jobs, [])
        self.clock.advance(1)
        self.assertEqual(smtp.addresses(), [("far.dom", ["x@far.dom"])])
        self.assertEqual(self.queueFiles(), [])

    def test_heldUntilStart(self):
        """Messages accepted before start are delivered once it starts."""
        queue = reopen(self, self.queue)
        self.queue.stop()
        local = FakeChannel("LOCAL")
        queue.registerChannel(local)
        id = self.successResultOf(queue.submit(envelope("c@other.dom", "bob@main.dom"), MESSAGE))
        self.assertEqual(local.jobs, [])
        queue.start()
        self.assertEqual(local.addresses(), [("bob@main.dom", ["bob@main.dom"])])
        self.assertEqual(self.successResultOf(queue.whenDone(id))[0].status, DELIVERED)


class StopTests(QueueTestsMixin, SynchronousTestCase):
    """
    stop() and start() of a running queue.
    """

    settings = {"StopTimeout": "5s"}

    def test_stopWaitsForJobs(self):
        """stop() fires once the jobs under way have reported."""
        self.local.hold = True
        self.submit(envelope("carol@other.dom", "bob@main.dom"))
        d = self.queue.stop()
        self.assertNoResult(d)
        self.local.release()
        self.successResultOf(d)
        self.assertEqual(self.queueFiles(), [])

    def test_stopTimeout(self):
        """stop() gives up waiting after StopTimeout."""
        self.local.hold = True
        self.submit(envelope("carol@other.dom", "bob@main.dom"))
        d = self.queue.stop()
        self.clock.advance(5)
        self.successResultOf(d)

    def test_restartKeepsSchedule(self):
        """A queue stopped and started again retries its waiting recipients."""
        self.smtp.answer = lambda job: [RecipientResult(0, DEFERRED, 451, "later")]
        self.submit(envelope("alice@main.dom", "x@far.dom", trusted=True))
        self.successResultOf(self.queue.stop())
        self.clock.advance(120)
        self.assertEqual(len(self.smtp.jobs), 1)
        self.smtp.answer = None
        self.queue.start()
        self.assertEqual(len(self.smtp.jobs), 2)
        self.assertEqual(self.queueFiles(), [])

    def test_bigMessage(self):
        """A message spilled to disk reaches the channel whole."""
        self.patch(self.queue.spool, "memoryLimit", 100)
        data = MESSAGE + b"x" * 5000 + b"\r\n"
        self.submit(envelope("carol@other.dom", "bob@main.dom"), data)
        self.assertEqual(self.local.data, [data])


class WhenDoneTests(QueueTestsMixin, SynchronousTestCase):
    """
    L{MessageQueue.whenDone} gives LMTP its per-recipient replies.
    """

    def test_waitsForFirstAttempts(self):
        """It fires once every recipient has a first outcome, in envelope order."""
        self.local.hold = True
        id = self.submit(envelope("carol@other.dom", "alice@main.dom", "nobody@main.dom",
                                  "bob@main.dom"))
        d = self.queue.whenDone(id)
        self.assertNoResult(d)
        (jobA, dA), (jobB, dB) = self.local.held
        dB.callback([RecipientResult(2, DEFERRED, 452, "4.2.2 full")])
        self.assertNoResult(d)
        dA.callback([RecipientResult(0, DELIVERED, 250, "ok")])
        results = self.successResultOf(d)
        self.assertEqual([(r.index, r.status) for r in results],
                         [(0, DELIVERED), (1, FAILED), (2, DEFERRED)])

    def test_unknown(self):
        """An id the queue never had fails with KeyError."""
        self.failureResultOf(self.queue.whenDone("424242"), KeyError)


class ServerRulesTests(QueueTestsMixin, SynchronousTestCase):
    """
    Server rules run once per message, before routing.
    """

    outcome = None

    def serverRules(self, rules, envelope, data):
        self.calls.append((rules, envelope.sender, data))
        return self.outcome if envelope.sender else None

    def setUp(self):
        self.calls = []
        QueueTestsMixin.setUp(self)
        self.successResultOf(self.directory.setServerDict(
            "Rules", {"MailRules": [[5, "r", [], [["Discard"]]]]}, update=True))

    def test_noRulesNotCalled(self):
        """Without server rules the hook is not called."""
        self.successResultOf(self.directory.setServerDict("Rules", {"MailRules": []},
                                                          update=True))
        self.submit(envelope("carol@other.dom", "bob@main.dom"))
        self.assertEqual(self.calls, [])
        self.assertEqual(len(self.local.jobs), 1)

    def test_calledWithRules(self):
        """The hook gets the rules, the envelope and the message."""
        self.submit(envelope("carol@other.dom", "bob@main.dom"))
        (rules, sender, data), = self.calls
        self.assertEqual(rules, [[5, "r", [], [["Discard"]]]])
        self.assertEqual((sender, data), ("carol@other.dom", MESSAGE))
        self.assertEqual(len(self.local.jobs), 1)

    def test_discard(self):
        """Discard: nothing is delivered, no DSN."""
        self.outcome = FakeOutcome(discard=True)
        self.submit(envelope("carol@other.dom", "bob@main.dom"))
        self.assertEqual(self.local.jobs, [])
        self.assertEqual(self.queueFiles(), [])

    def test_reject(self):
        """Reject: every recipient fails with the text; the sender gets a DSN."""
        self.outcome = FakeOutcome(reject="5.7.1 no thanks")
        self.submit(envelope("carol@other.dom", "bob@main.dom"))
        report, = self.reports()
        self.assertIn("5.7.1 no thanks", report.as_string())

    def test_addHeaders(self):
        """Added headers reach the channel and survive a restart (rules not rerun)."""
        self.outcome = FakeOutcome(addHeaders=["X-Scanned: yes"])
        self.local.hold = True
        self.submit(envelope("carol@other.dom", "bob@main.dom"))
        self.assertEqual(self.local.data, [b"X-Scanned: yes\r\n" + MESSAGE])
        self.queue.stop()
        queue = reopen(self, self.queue, serverRules=self.serverRules)
        local = FakeChannel("LOCAL")
        queue.registerChannel(local)
        queue.start()
        self.assertEqual(local.data, [b"X-Scanned: yes\r\n" + MESSAGE])
        self.assertEqual(len(self.calls), 1)

    def test_mirrorAndRedirect(self):
        """Mirror sends a copy and delivers; redirect sends a copy instead."""
        self.outcome = FakeOutcome(mirror=["alice@main.dom"])
        self.submit(envelope("carol@other.dom", "bob@main.dom"))
        self.assertEqual(sorted(q for q, _ in self.local.addresses()),
                         ["alice@main.dom", "bob@main.dom"])
        self.outcome = FakeOutcome(redirect=["alice@main.dom"])
        self.local.jobs = []
        self.submit(envelope("carol@other.dom", "bob@main.dom"))
        self.assertEqual(self.local.addresses(), [("alice@main.dom", ["alice@main.dom"])])
        self.assertEqual(self.local.jobs[0].envelope.sender, "carol@other.dom")

    def test_copyFailureRetried(self):
        """If a redirect copy cannot be queued, nothing is finalized and the rules run again."""
        self.outcome = FakeOutcome(redirect=["alice@main.dom"], store=[])
        original = self.queue.submitGenerated
        self.patch(self.queue, "submitGenerated",
                   lambda env, data: fail(OSError("disk full")))
        id = self.submit(envelope("carol@other.dom", "bob@main.dom"))
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)
        self.assertEqual(self.local.jobs, [])
        self.assertEqual(self.queue.messageCount, 1)
        self.queue.submitGenerated = original
        self.clock.advance(60)
        self.assertEqual(self.local.addresses(), [("alice@main.dom", ["alice@main.dom"])])
        self.assertEqual(self.successResultOf(self.queue.whenDone(id))[0].status, DELIVERED)


class RealServerRulesTests(QueueTestsMixin, SynchronousTestCase):
    """
    The default server rules hook with the real rules engine.
    """

    serverRules = None

    def setUp(self):
        self.queue, self.directory, self.clock = makeQueue(self)
        from cgpro.queue.queue import applyServerRules
        self.queue.serverRules = applyServerRules
        self.local = FakeChannel("LOCAL")
        self.queue.registerChannel(self.local)
        self.queue.start()

    def test_addHeader(self):
        """A server rule's Add Header reaches the delivered message."""
        self.successResultOf(self.directory.setServerDict("Rules", {"MailRules": [
            [5, "tag", [], [["Add Header", "X-Checked: yes"]]]]}, update=True))
        self.submit(envelope("carol@other.dom", "bob@main.dom"))
        self.assertTrue(self.local.data[0].startswith(b"X-Checked: yes\r\n"))

    def test_discard(self):
        """A server rule's Discard drops the message."""
        self.successResultOf(self.directory.setServerDict("Rules", {"MailRules": [
            [5, "drop", [["Subject", "is", "Hello"]], [["Discard"]]]]}, update=True))
        id = self.submit(envelope("carol@other.dom", "bob@main.dom"))
        self.assertEqual(self.local.jobs, [])
        self.assertEqual(self.successResultOf(self.queue.whenDone(id))[0].status, DELIVERED)



class FiguresTests(QueueTestsMixin, SynchronousTestCase):
    """
    The queue's figures in the server's catalog (L{MessageQueue.reportTo}),
    read at collection from the counters the queue keeps anyway.
    """

    def setUp(self):
        QueueTestsMixin.setUp(self)
        from cgpro.core.stats import Catalog

        self.catalog = Catalog()
        self.queue.reportTo(self.catalog)
        self.queue.reportTo(self.catalog)

    def test_deliveredAndBounced(self):
        """
        Deliveries count per channel; a DSN about a failed recipient is a
        bounce (and its own delivery counts too); registering twice
        counts nothing twice.
        """
        self.submit(envelope("alice@main.dom", "nobody@main.dom", "bob@main.dom"))
        self.submit(envelope("alice@main.dom", "x@far.dom", trusted=True))
        self.assertEqual(self.catalog.element("cgpro_mail_delivered_total/LOCAL"), 2)
        self.assertEqual(self.catalog.element("cgpro_mail_delivered_total/SMTP"), 1)
        self.assertEqual(self.catalog.element("cgpro_mail_delivered_total"), 3)
        self.assertEqual(self.catalog.element("cgpro_mail_bounced_total"), 1)

    def test_queueMessages(self):
        """
        C{cgpro_queue_messages} shows the messages waiting in each logical
        queue, and nothing once they are gone.
        """
        self.smtp.hold = True
        self.submit(envelope("alice@main.dom", "x@far.dom", "y@far.dom", trusted=True))
        self.submit(envelope("alice@main.dom", "z@far.dom", trusted=True))
        self.assertEqual(self.catalog.element("cgpro_queue_messages/SMTP(far.dom)"), 2)
        self.smtp.release()
        self.assertEqual(self.catalog.element("cgpro_queue_messages"), 0)
