# -*- test-case-name: tests.mail.smtp.test_limits -*-
"""
Bad input and limits, over a L{StringTransport}: long lines, bare LF, NUL
bytes, oversize messages, too many recipients, 10,000 RCPTs, a client that
vanishes mid-DATA, timeouts, per-address rates, error counts, pipelining,
a slow or failing queue and internal errors.
"""

import time

from twisted.trial.unittest import SynchronousTestCase

from tests.mail.smtp.fakes import Session, makeContext, makeFactory, setMain, setModule


class Base(SynchronousTestCase):
    def setUp(self):
        self.context = makeContext(self)
        self.queue = self.context.queue
        self.clock = self.context.reactor
        self.factory = makeFactory(self.context)

    def open(self, ip="203.0.113.5"):
        session = Session(self.factory, ip)
        session.ehlo()
        return session

    def startData(self, session):
        session.cmd("MAIL FROM:<a@example.com>")
        session.cmd("RCPT TO:<user@main.dom>")
        self.assertEqual(session.cmd("DATA")[0][:3], "354")


class DataTests(Base):
    """
    What is refused inside DATA, answered after the end of the data.
    """

    def test_sizeParameter(self):
        """MAIL with SIZE above the limit is 552 at once; EHLO shows the limit."""
        setModule(self, self.context, {"MaxMessageSize": "1K"})
        session = Session(self.factory)
        self.assertIn("250-SIZE 1024", session.ehlo())
        self.assertEqual(session.cmd("MAIL FROM:<a@example.com> SIZE=2000"),
                         ["552 5.3.4 message size exceeds fixed maximum message size"])
        self.assertEqual(session.cmd("MAIL FROM:<a@example.com> SIZE=1000")[0][:3], "250")

    def test_oversize(self):
        """A message over the limit is 552 after the data; the spool is dropped at once."""
        setModule(self, self.context, {"MaxMessageSize": "1K"})
        session = self.open()
        self.startData(session)
        self.assertEqual(session.send("x" * 70 + "\r\n"), [])
        session.send(("y" * 70 + "\r\n") * 20)
        self.assertEqual([m.state for m in self.queue.received], ["aborted"])
        self.assertEqual(session.send(".\r\n"),
                         ["552 5.3.4 message size exceeds fixed maximum message size"])
        self.assertEqual(self.queue.committed, [])
        self.assertEqual(session.mail()[0][:3], "250")

    def test_unlimitedSize(self):
        """MaxMessageSize unlimited: EHLO says SIZE without a number."""
        setModule(self, self.context, {"MaxMessageSize": "unlimited"})
        self.assertIn("250-SIZE", Session(self.factory).ehlo())

    def test_longDataLine(self):
        """A data line over 998 characters refuses the message with 554 5.6.0."""
        session = self.open()
        self.startData(session)
        session.send("a" * 999 + "\r\n")
        self.assertEqual(session.send(".\r\n"),
                         ["554 5.6.0 message has a line longer than 998 characters"])
        self.assertEqual(self.queue.committed, [])

    def test_hugeDataLine(self):
        """A megabyte without a line end is not buffered; the message is refused."""
        session = self.open()
        self.startData(session)
        for _ in range(16):
            session.send("b" * 65536)
        self.assertLess(len(session.server._buffer), 2000)
        self.assertEqual(session.send("\r\n.\r\n"),
                         ["554 5.6.0 message has a line longer than 998 characters"])

    def test_longestDataLine(self):
        """A data line of exactly 998 characters is fine."""
        session = self.open()
        self.startData(session)
        self.assertEqual(session.send("a" * 998 + "\r\n.\r\n")[0][:3], "250")

    def test_bareLFNormalized(self):
        """By default a bare LF line end is stored as CRLF (the end line still needs CRLF)."""
        session = self.open()
        self.startData(session)
        self.assertEqual(session.send(b"Subject: x\n\nbody\r\n.\r\n")[0][:3], "250")
        self.assertTrue(self.queue.committed[0].data.endswith(b"Subject: x\r\n\r\nbody\r\n"))

    def test_noSmuggling(self):
        """Only CRLF.CRLF ends the data: LF.LF, LF.CRLF and CRLF.LF do not."""
        session = self.open()
        self.startData(session)
        body = (b"a\r\n.\nMAIL FROM:<x@evil.example>\r\n"
                b"b\n.\r\nc\r\n.\nd\r\n")
        self.assertEqual(session.send(body), [])
        self.assertEqual(session.send(b".\r\n")[0][:3], "250")
        self.assertEqual(len(self.queue.committed), 1)
        self.assertTrue(self.queue.committed[0].data.endswith(
            b"a\r\n.\r\nMAIL FROM:<x@evil.example>\r\nb\r\n.\r\nc\r\n.\r\nd\r\n"))

    def test_bareLFRejected(self):
        """With BareLF = Reject, a bare LF in DATA is 554 at once and the session ends."""
        setModule(self, self.context, {"BareLF": "Reject"})
        session = self.open()
        self.startData(session)
        self.assertEqual(session.send(b"ok\r\nbad\n"),
                         ["554 5.6.0 bare LF in message; lines must end in CRLF"])
        self.assertTrue(session.closed)
        self.assertEqual([m.state for m in self.queue.received], ["aborted"])

    def test_nulRejected(self):
        """NUL bytes refuse the message with 554 5.6.0; the session goes on."""
        session = self.open()
        self.startData(session)
        self.assertEqual(session.send(b"a\0b\r\n.\r\n"),
                         ["554 5.6.0 message contains NUL characters"])
        self.assertEqual(self.queue.committed, [])
        self.assertEqual(session.mail()[0][:3], "250")

    def test_nulStripped(self):
        """With NULBytes = Strip, NUL bytes are removed."""
        setModule(self, self.context, {"NULBytes": "Strip"})
        session = self.open()
        self.startData(session)
        self.assertEqual(session.send(b"a\0b\r\n.\r\n")[0][:3], "250")
        self.assertTrue(self.queue.committed[0].data.endswith(b"\r\nab\r\n"))

    def test_vanished(self):
        """A client that vanishes mid-DATA leaves nothing queued."""
        session = self.open()
        self.startData(session)
        session.send("Subject: half\r\n\r\nsome")
        session.lose()
        self.assertEqual([m.state for m in self.queue.received], ["aborted"])
        self.assertEqual(self.queue.committed, [])

    def test_vanishedBeforeData(self):
        """A client that vanishes after RCPT leaves nothing."""
        session = self.open()
        session.cmd("MAIL FROM:<a@example.com>")
        session.cmd("RCPT TO:<user@main.dom>")
        session.lose()
        self.assertEqual(self.queue.received, [])


class CommandLimitTests(Base):
    """
    Command lines, recipients, errors, rates and timeouts.
    """

    def test_longCommand(self):
        """A command over 998 characters is 500 5.5.2; the session goes on."""
        session = self.open()
        self.assertEqual(session.cmd("NOOP " + "x" * 994), ["500 5.5.2 line too long"])
        self.assertEqual(session.cmd("NOOP " + "x" * 993), ["250 2.0.0 OK"])

    def test_hugeCommand(self):
        """A megabyte without a line end is discarded and answered once."""
        session = self.open()
        for _ in range(16):
            self.assertEqual(session.send("z" * 65536), [])
        self.assertLess(len(session.server._buffer), 2000)
        self.assertEqual(session.send("\r\nNOOP\r\n"), ["500 5.5.2 line too long", "250 2.0.0 OK"])

    def test_tooManyRecipients(self):
        """Past MaxRecipients, RCPT is 452 4.5.3; the message goes to the accepted ones."""
        setModule(self, self.context, {"MaxRecipients": "2"})
        session = self.open()
        session.cmd("MAIL FROM:<a@example.com>")
        session.cmd("RCPT TO:<user@main.dom>")
        session.cmd("RCPT TO:<other@main.dom>")
        self.assertEqual(session.cmd("RCPT TO:<postmaster@main.dom>"),
                         ["452 4.5.3 too many recipients"])
        session.cmd("DATA")
        session.send("x\r\n.\r\n")
        self.assertEqual(len(self.queue.committed[0].envelope.recipients), 2)

    def _rcpts(self, count):
        session = self.open()
        session.cmd("MAIL FROM:<a@example.com>")
        data = "".join("RCPT TO:<user@main.dom>\r\n" if i % 2 else
                       "RCPT TO:<user+%d@main.dom>\r\n" % (i,) for i in range(count))
        started = time.perf_counter()
        replies = session.send(data)
        return time.perf_counter() - started, replies

    def test_tenThousandRecipients(self):
        """10,000 pipelined RCPTs are answered in order, in time linear in their number."""
        setModule(self, self.context, {"MaxRecipients": "0"})
        small = min(self._rcpts(2000)[0] for _ in range(3))
        large, replies = min(self._rcpts(10000) for _ in range(2))
        self.assertEqual(len(replies), 10000)
        self.assertEqual(replies[1], "250 2.1.5 <user@main.dom> OK")
        self.assertEqual(replies[0], "550 5.1.1 unknown user account")
        self.assertLess(large, 10.0)
        # Linear: five times the work; quadratic would be 25 times.
        self.assertLess(large / small, 15)

    def test_tenThousandRecipientsLimited(self):
        """With the default limit, 10,000 RCPTs give 1,000 acceptances and 452s."""
        session = self.open()
        session.cmd("MAIL FROM:<a@example.com>")
        replies = session.send("RCPT TO:<user@main.dom>\r\n" * 10000)
        self.assertEqual(len(replies), 10000)
        self.assertEqual(replies.count("250 2.1.5 <user@main.dom> OK"), 1000)
        self.assertEqual(replies.count("452 4.5.3 too many recipients"), 9000)
        self.assertFalse(session.closed)

    def test_maxErrors(self):
        """After MaxErrors protocol errors the session is closed with 421."""
        setModule(self, self.context, {"MaxErrors": "3"})
        session = self.open()
        session.cmd("BOGUS")
        session.cmd("BOGUS")
        self.assertEqual(session.cmd("BOGUS"), ["500 5.5.1 command not recognized: BOGUS",
                                                "421 4.7.0 too many errors, closing connection"])
        self.assertTrue(session.closed)

    def test_idleTimeout(self):
        """A silent client is told 421 4.4.2 and dropped; a half message is aborted."""
        session = self.open()
        self.startData(session)
        session.send("partial\r\n")
        self.clock.advance(299)
        self.assertFalse(session.closed)
        self.clock.advance(2)
        self.assertEqual(session.read(), ["421 4.4.2 main.dom idle timeout, closing connection"])
        self.assertTrue(session.closed)
        self.assertEqual([m.state for m in self.queue.received], ["aborted"])

    def test_connectionRate(self):
        """Past MaxConnectionsPerIPPerMinute a client is refused with 421 for a minute."""
        setModule(self, self.context, {"MaxConnectionsPerIPPerMinute": "2"})
        Session(self.factory)
        Session(self.factory)
        third = Session(self.factory)
        self.assertEqual(third.greeting,
                         ["421 4.7.0 too many connections from your address, try later"])
        self.assertTrue(third.closed)
        self.assertEqual(Session(self.factory, "198.51.100.1").greeting[0][:3], "220")
        self.clock.advance(61)
        self.assertEqual(Session(self.factory).greeting[0][:3], "220")

    def test_connectionRateClientsExempt(self):
        """Client IPs are not counted."""
        setModule(self, self.context, {"MaxConnectionsPerIPPerMinute": "1"})
        setMain(self, self.context, {"ClientIPs": "203.0.113.5"})
        for _ in range(3):
            self.assertEqual(Session(self.factory).greeting[0][:3], "220")

    def test_messageRate(self):
        """Past MaxMessagesPerIPPerMinute, MAIL is 421 and the session ends."""
        setModule(self, self.context, {"MaxMessagesPerIPPerMinute": "1"})
        session = self.open()
        session.mail()
        self.assertEqual(session.cmd("MAIL FROM:<a@example.com>"),
                         ["421 4.7.0 too many messages from your address, try later"])
        self.assertTrue(session.closed)

    def test_badSettingFallsBack(self):
        """A mistyped setting is logged and its default used."""
        setModule(self, self.context, {"MaxMessageSize": "lots"})
        self.assertIn("250-SIZE 52428800", Session(self.factory).ehlo())


class PipeliningTests(Base):
    """
    Commands sent in groups, and commands waiting for slow steps.
    """

    def test_group(self):
        """A pipelined group is answered in order, in one write."""
        session = Session(self.factory)
        writes = []
        original = session.transport.write
        session.transport.write = lambda data: (writes.append(data), original(data))
        replies = session.send("EHLO c.example\r\nMAIL FROM:<a@example.com>\r\n"
                               "RCPT TO:<user@main.dom>\r\nRCPT TO:<nobody@main.dom>\r\n"
                               "RCPT TO:<other@main.dom>\r\nDATA\r\n")
        self.assertEqual(len(writes), 1)
        self.assertEqual([r[:3] for r in replies if r[3] == " "],
                         ["250", "250", "250", "550", "250", "354"])
        self.assertEqual(session.send("x\r\n.\r\nQUIT\r\n"),
                         ["250 2.0.0 90001 message accepted for delivery",
                          "221 2.0.0 main.dom closing connection"])

    def test_waitForCommit(self):
        """Commands after the data wait until the message is durable."""
        self.queue.holdCommits = True
        session = self.open()
        self.startData(session)
        self.assertEqual(session.send("x\r\n.\r\nNOOP\r\nQUIT\r\n"), [])
        self.assertEqual(self.queue.received[0].state, "committing")
        self.queue.received[0].finishCommit()
        self.assertEqual(session.read(), ["250 2.0.0 90001 message accepted for delivery",
                                          "250 2.0.0 OK", "221 2.0.0 main.dom closing connection"])

    def test_vanishedDuringCommit(self):
        """A client leaving during the commit does not abort the committed message."""
        self.queue.holdCommits = True
        session = self.open()
        self.startData(session)
        session.send("x\r\n.\r\n")
        session.lose()
        self.queue.received[0].finishCommit()
        self.assertEqual(len(self.queue.committed), 1)

    def test_commitFails(self):
        """A queue failure is 451 4.3.0, logged; the session goes on."""
        self.queue.failCommits = True
        session = self.open()
        self.startData(session)
        self.assertEqual(session.send("x\r\n.\r\n"), ["451 4.3.0 internal error"])
        self.assertEqual(len(self.flushLoggedErrors(IOError)), 1)
        self.assertEqual(session.cmd("NOOP"), ["250 2.0.0 OK"])

    def test_internalError(self):
        """An unexpected exception is 451 4.3.0 internal error, never a traceback."""

        def broken():
            raise RuntimeError("secret details")

        self.queue.receive = broken
        session = self.open()
        session.cmd("MAIL FROM:<a@example.com>")
        session.cmd("RCPT TO:<user@main.dom>")
        self.assertEqual(session.cmd("DATA"), ["451 4.3.0 internal error"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(session.cmd("RCPT TO:<user@main.dom>"),
                         ["503 5.5.1 need MAIL before RCPT"])

    def test_routerError(self):
        """A Router failure at RCPT is 451 too."""

        def broken(*args):
            raise ValueError("boom")

        self.context.router.route = broken
        session = self.open()
        session.cmd("MAIL FROM:<a@example.com>")
        self.assertEqual(session.cmd("RCPT TO:<user@main.dom>"), ["451 4.3.0 internal error"])
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_sessionStartFails(self):
        """If a session cannot start, the client gets 421 4.3.0, not silence."""

        def broken(name):
            raise RuntimeError("settings unreadable")

        self.context.directory.getServerDict = broken
        session = Session(self.factory)
        self.assertEqual(session.greeting, ["421 4.3.0 internal error, try later"])
        self.assertTrue(session.closed)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
