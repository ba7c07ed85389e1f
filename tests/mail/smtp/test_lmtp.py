# -*- test-case-name: tests.mail.smtp.test_lmtp -*-
"""
Tests for L{cgpro.mail.smtp.lmtp}: LHLO and one reply per recipient after
the data, from the queue's first delivery outcomes.
"""

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase

from cgpro.core.envelope import DEFERRED, DELIVERED, FAILED, RecipientResult
from cgpro.mail.smtp.lmtp import recipientReply
from tests.mail.smtp.fakes import Session, makeContext, makeFactory, setModule


class RecipientReplyTests(SynchronousTestCase):
    """
    Mapping a L{RecipientResult} to a reply.
    """

    def test_statuses(self):
        """Delivered and failed map to 2xx and 5xx; deferred is 250 queued (the queue retries)."""
        self.assertEqual(recipientReply(RecipientResult(0, DELIVERED, 250, ""), "a@b"),
                         (250, "2.0.0", "<a@b> delivered"))
        self.assertEqual(
            recipientReply(RecipientResult(0, FAILED, 552, "5.2.2 mailbox full"), "a@b"),
            (552, "5.2.2", "<a@b> mailbox full"))
        self.assertEqual(
            recipientReply(RecipientResult(0, DEFERRED, 0, "try later"), "a@b"),
            (250, "2.0.0", "<a@b> queued, delivery will be retried (try later)"))

    def test_inconsistentCode(self):
        """A code of the wrong class is replaced by the status's default."""
        self.assertEqual(recipientReply(RecipientResult(0, FAILED, 250, "2.0.0 x"), "a@b"),
                         (550, "5.0.0", "<a@b> 2.0.0 x"))


class LMTPTests(SynchronousTestCase):
    """
    The LMTP session.
    """

    def setUp(self):
        self.context = makeContext(self)
        self.queue = self.context.queue
        self.session = Session(makeFactory(self.context, tls="no", lmtp=True))

    def test_greetingAndLhlo(self):
        """The greeting says LMTP; LHLO lists extensions without AUTH; EHLO/HELO are refused."""
        self.assertRegex(self.session.greeting[0], r"^220 main\.dom LMTP CommuniGate Pro ")
        self.assertEqual(self.session.cmd("EHLO x"), ["500 5.5.1 this is LMTP: use LHLO"])
        self.assertEqual(self.session.cmd("HELO x"), ["500 5.5.1 this is LMTP: use LHLO"])
        self.assertEqual(self.session.cmd("MAIL FROM:<a@example.com>"),
                         ["503 5.5.1 send LHLO first"])
        reply = self.session.cmd("LHLO mta.example")
        self.assertEqual(reply[0], "250-main.dom hello [203.0.113.5]")
        self.assertNotIn("AUTH", " ".join(reply))
        self.assertNotIn("STARTTLS", " ".join(reply))
        self.assertEqual(self.session.cmd("AUTH PLAIN AHVzZXIAcGFzcw=="),
                         ["502 5.5.1 AUTH not available"])

    def transaction(self, rcpts):
        self.session.cmd("LHLO mta.example")
        self.session.cmd("MAIL FROM:<a@example.com>")
        for rcpt in rcpts:
            self.session.cmd("RCPT TO:<%s>" % (rcpt,))
        self.session.cmd("DATA")

    def test_perRecipient(self):
        """After the data, each accepted recipient gets its own outcome, in RCPT order."""
        results = defer.Deferred()
        self.queue.results["90001"] = results
        self.transaction(["user@main.dom", "nobody@main.dom", "other@main.dom",
                          "postmaster@main.dom"])
        self.assertEqual(self.session.send("Subject: x\r\n\r\nbody\r\n.\r\n"), [])
        self.assertEqual(self.queue.committed[0].envelope.protocol, "LMTP")
        results.callback([
            RecipientResult(2, DEFERRED, 451, "4.2.1 mailbox busy"),
            RecipientResult(0, DELIVERED, 250, "2.0.0 stored"),
            RecipientResult(1, FAILED, 552, "5.2.2 over quota"),
        ])
        self.assertEqual(self.session.read(), [
            "250 2.0.0 <user@main.dom> stored",
            "552 5.2.2 <other@main.dom> over quota",
            "250 2.0.0 <postmaster@main.dom> queued, delivery will be retried (4.2.1 mailbox busy)",
        ])

    def test_duplicateRecipient(self):
        """A recipient given twice is answered twice."""
        self.transaction(["user@main.dom", "user@main.dom"])
        self.assertEqual(self.session.send("x\r\n.\r\n"), [
            "250 2.0.0 <user@main.dom> delivered", "250 2.0.0 <user@main.dom> delivered"])
        self.assertEqual(len(self.queue.committed[0].envelope.recipients), 1)

    def test_pipelinedAfterData(self):
        """Commands after the data wait for the per-recipient replies."""
        results = defer.Deferred()
        self.queue.results["90001"] = results
        self.transaction(["user@main.dom"])
        self.assertEqual(self.session.send("x\r\n.\r\nQUIT\r\n"), [])
        results.callback([RecipientResult(0, DELIVERED, 250, "ok")])
        self.assertEqual(self.session.read(), ["250 2.0.0 <user@main.dom> ok",
                                               "221 2.0.0 main.dom closing connection"])

    def test_refusedData(self):
        """A message refused after its data is answered once per recipient."""
        setModule(self, self.context, {"MaxMessageSize": "10"}, module="LMTP")
        self.session = Session(makeFactory(self.context, tls="no", lmtp=True))
        self.transaction(["user@main.dom", "other@main.dom"])
        self.assertEqual(self.session.send("0123456789abc\r\n.\r\n"), [
            "552 5.3.4 <user@main.dom> message size exceeds fixed maximum message size",
            "552 5.3.4 <other@main.dom> message size exceeds fixed maximum message size"])

    def test_commitFails(self):
        """A queue failure is 451 for every recipient."""
        self.queue.failCommits = True
        self.transaction(["user@main.dom", "other@main.dom"])
        self.assertEqual(self.session.send("x\r\n.\r\n"), [
            "451 4.3.0 <user@main.dom> internal error",
            "451 4.3.0 <other@main.dom> internal error"])
        self.flushLoggedErrors(IOError)

    def test_noResults(self):
        """If the queue cannot tell the outcomes, the committed message is reported queued."""
        self.queue.results["90001"] = defer.fail(KeyError("90001"))
        self.transaction(["user@main.dom"])
        self.assertEqual(self.session.send("x\r\n.\r\n"),
                         ["250 2.0.0 <user@main.dom> queued as 90001"])
        self.assertEqual(len(self.flushLoggedErrors(KeyError)), 1)

    def test_lmtpSettings(self):
        """LMTP reads module LMTP, not SMTP."""
        setModule(self, self.context, {"MaxMessageSize": "1K"})
        session = Session(makeFactory(self.context, tls="no", lmtp=True))
        self.assertIn("250-SIZE 52428800", session.cmd("LHLO x"))
