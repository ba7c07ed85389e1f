# -*- test-case-name: tests.queue.test_dsn -*-
"""
Tests for L{cgpro.queue.dsn}: RFC 3464 reports, parsed back with the
C{email} package.
"""

import email
from email import policy

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from cgpro.core.envelope import Envelope, Recipient
from cgpro.queue import dsn
from tests.queue.support import MESSAGE


def report(ret=None, entries=None, data=MESSAGE, maxReturn=None, envid=None):
    env = Envelope(sender="sender@remote.dom", ret=ret, envid=envid)
    env.addRecipient("alice@main.dom", orcpt="rfc822;Alice+40main.dom")
    env.addRecipient("x@far.dom")
    if entries is None:
        entries = [
            dsn.ReportEntry(env.recipients[0], dsn.FAILED, 550, "5.1.1 unknown user"),
            dsn.ReportEntry(env.recipients[1], dsn.FAILED, 451,
                            "4.4.7 delivery time expired (last error: 451 4.4.1 timeout)",
                            "mx.far.dom", 1795000000),
        ]
    clock = Clock()
    clock.advance(1795000000)
    raw = dsn.makeReport(env, data, entries, "main.dom", clock, maxReturn, 1794990000)
    return raw, email.message_from_bytes(raw, policy=policy.default)


class ReportTests(SynchronousTestCase):
    """
    The structure and fields of a DSN.
    """

    def test_structure(self):
        """A failure report is multipart/report with text, delivery-status and the message."""
        raw, msg = report()
        self.assertEqual(msg.get_content_type(), "multipart/report")
        self.assertEqual(msg.get_param("report-type"), "delivery-status")
        self.assertEqual(msg["From"], "Mail Delivery System <MAILER-DAEMON@main.dom>")
        self.assertIn(b"\r\nTo: <sender@remote.dom>\r\n", raw)
        self.assertEqual(msg["Auto-Submitted"], "auto-replied")
        self.assertIn("Undelivered", msg["Subject"])
        text, status, original = msg.iter_parts()
        self.assertEqual(text.get_content_type(), "text/plain")
        self.assertIn("<alice@main.dom>: 550 5.1.1 unknown user", text.get_content())
        self.assertEqual(status.get_content_type(), "message/delivery-status")
        self.assertEqual(original.get_content_type(), "message/rfc822")
        inner = original.get_payload()[0]
        self.assertEqual(inner["Message-ID"], "<m1@remote.dom>")
        self.assertTrue(raw.endswith(b"--\r\n"))
        self.assertNotIn(b"\n", raw.replace(b"\r\n", b""))

    def test_statusFields(self):
        """Per-message and per-recipient fields of message/delivery-status."""
        _, msg = report(envid="ENV+2B1")
        status = msg.get_payload()[1]
        blocks = status.get_payload()
        self.assertEqual(blocks[0]["Reporting-MTA"], "dns; main.dom")
        self.assertEqual(blocks[0]["Original-Envelope-Id"], "ENV+1")
        self.assertIn("Arrival-Date", blocks[0])
        first, second = blocks[1:]
        self.assertEqual(first["Final-Recipient"], "rfc822; alice@main.dom")
        self.assertEqual(first["Original-Recipient"], "rfc822;Alice@main.dom")
        self.assertEqual(first["Action"], "failed")
        self.assertEqual(first["Status"], "5.1.1")
        self.assertEqual(first["Diagnostic-Code"], "smtp; 550 5.1.1 unknown user")
        self.assertNotIn("Remote-MTA", first)
        self.assertEqual(second["Status"], "4.4.7")
        self.assertEqual(second["Remote-MTA"], "dns; mx.far.dom")
        self.assertIn("Last-Attempt-Date", second)

    def test_retHeaders(self):
        """RET=HDRS returns only the header as text/rfc822-headers."""
        _, msg = report(ret="HDRS")
        part = msg.get_payload()[2]
        self.assertEqual(part.get_content_type(), "text/rfc822-headers")
        self.assertNotIn("Body line", part.get_content())
        self.assertIn("Message-ID: <m1@remote.dom>", part.get_content())

    def test_tooBigForReturn(self):
        """A message over the return limit comes back as headers only."""
        _, msg = report(maxReturn=10)
        self.assertEqual(msg.get_payload()[2].get_content_type(), "text/rfc822-headers")

    def test_delayReportHeadersOnly(self):
        """A delay report carries the headers, Will-Retry-Until and the delay subject."""
        env = Envelope(sender="s@x.dom")
        rcpt = env.addRecipient("x@far.dom")
        entries = [dsn.ReportEntry(rcpt, dsn.DELAYED, 451, "4.4.1 timeout", "mx.far.dom",
                                   1795000000, 1795400000)]
        raw = dsn.makeReport(env, MESSAGE, entries, "main.dom", Clock())
        msg = email.message_from_bytes(raw, policy=policy.default)
        self.assertIn("Delayed", msg["Subject"])
        block = msg.get_payload()[1].get_payload()[1]
        self.assertEqual(block["Action"], "delayed")
        self.assertIn("Will-Retry-Until", block)
        self.assertEqual(msg.get_payload()[2].get_content_type(), "text/rfc822-headers")

    def test_boundaryNotInMessage(self):
        """The boundary never occurs in the returned message."""
        raw, msg = report()
        boundary = msg.get_boundary()
        self.assertNotIn(("--" + boundary).encode(), MESSAGE)

    def test_eightBit(self):
        """An 8-bit original part is labelled 8bit."""
        raw, _ = report(data=MESSAGE.replace(b"Body line", "Grüße".encode()))
        self.assertIn(b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit", raw)


class HelperTests(SynchronousTestCase):
    """
    NOTIFY handling and status codes.
    """

    def test_wants(self):
        """Without NOTIFY failures and delays are reported; NEVER reports nothing."""
        plain = Recipient(0, "a@b")
        self.assertTrue(dsn.wants(plain, "FAILURE"))
        self.assertTrue(dsn.wants(plain, "DELAY"))
        self.assertFalse(dsn.wants(plain, "SUCCESS"))
        self.assertFalse(dsn.wants(Recipient(0, "a@b", notify=("NEVER",)), "FAILURE"))
        success = Recipient(0, "a@b", notify=("SUCCESS",))
        self.assertTrue(dsn.wants(success, "SUCCESS"))
        self.assertFalse(dsn.wants(success, "FAILURE"))

    def test_statusCode(self):
        """The enhanced code comes from the text, else from the reply class."""
        self.assertEqual(dsn.statusCode(550, "5.7.1 relaying denied"), "5.7.1")
        self.assertEqual(dsn.statusCode(550, "no such user"), "5.0.0")
        self.assertEqual(dsn.statusCode(451, "try later"), "4.0.0")
        self.assertEqual(dsn.statusCode(250, "ok"), "2.0.0")

    def test_reportEnvelope(self):
        """A DSN goes from the null sender to the original sender, trusted."""
        env = dsn.reportEnvelope(Envelope(sender="s@x.dom"))
        self.assertEqual(env.sender, "")
        self.assertEqual([r.address for r in env.recipients], ["s@x.dom"])
        self.assertTrue(env.trusted)
