# -*- test-case-name: tests.queue.test_commands -*-
"""
Tests for L{cgpro.queue.commands}: the queue commands of the shared
command table, called with a session as the CLI builds one, and once over
a real CLI connection.
"""

from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

import cgpro.cli.factory  # noqa: F401  (registers the other commands)
import cgpro.queue.commands  # noqa: F401  (registers the queue commands)
from cgpro.cli.protocol import CLIFactory
from cgpro.core.commands import TABLE, Arguments
from cgpro.core.context import ServerContext
from cgpro.core.envelope import DEFERRED, RecipientResult
from cgpro.core.errors import AccessDenied, CLIError
from cgpro.core.throttle import LoginThrottle
from tests.queue.support import MESSAGE, FakeChannel, envelope, makeQueue


class FakeSession:
    def __init__(self, server, rights, user="postmaster@main.dom"):
        self.server = server
        self.directory = server.directory
        self.rights = frozenset(rights)
        self.user = user
        self.domain = user.partition("@")[2]


class QueueCommandTests(SynchronousTestCase):
    """
    The commands over a queue with one waiting SMTP message.
    """

    def setUp(self):
        self.queue, self.directory, self.clock = makeQueue(self)
        self.smtp = FakeChannel("SMTP", answer=lambda job: [
            RecipientResult(r.index, DEFERRED, 451, "4.4.1 no answer")
            for r, _ in job.recipients])
        self.local = FakeChannel("LOCAL")
        self.queue.registerChannel(self.smtp)
        self.queue.registerChannel(self.local)
        self.queue.start()
        self.id = self.successResultOf(self.queue.submit(
            envelope("alice@main.dom", "x@far.dom", trusted=True), MESSAGE))
        self.context = ServerContext(self.directory, self.queue.router, self.clock,
                                     self.directory.storage.base, queue=self.queue)
        self.admin = FakeSession(self.context, {"Monitors"})

    def call(self, line, session=None):
        name, _, rest = line.partition(" ")
        return TABLE.lookup(name).handler(session or self.admin, Arguments(rest))

    def test_getMessageQueueInfo(self):
        """GETMESSAGEQUEUEINFO gives the counts of one logical queue."""
        info = self.call("GETMESSAGEQUEUEINFO SMTP QUEUE far.dom")
        self.assertEqual(info["nTotal"], 1)
        self.assertEqual(info["size"], len(MESSAGE))
        self.assertEqual(info["lastError"], "451 4.4.1 no answer")
        self.assertIn("delayedTill", info)
        empty = self.call("GETMESSAGEQUEUEINFO SMTP QUEUE other.dom")
        self.assertEqual(empty["nTotal"], 0)

    def test_listQueues(self):
        """LISTQUEUES lists the non-empty logical queues by module."""
        queues = self.call("LISTQUEUES")
        self.assertEqual(list(queues), ["SMTP"])
        self.assertEqual(queues["SMTP"]["far.dom"]["nTotal"], 1)

    def test_releaseSMTPQueue(self):
        """RELEASESMTPQUEUE retries the queue now."""
        self.assertEqual(len(self.smtp.jobs), 1)
        self.assertIsNone(self.call("RELEASESMTPQUEUE far.dom"))
        self.assertEqual(len(self.smtp.jobs), 2)

    def test_rejectQueueMessage(self):
        """REJECTQUEUEMESSAGE fails the message with a DSN to its sender."""
        self.assertIsNone(self.call('REJECTQUEUEMESSAGE %s "spam, go away"' % (self.id,)))
        self.assertEqual(self.queue.messageCount, 0)
        job = self.local.jobs[-1]
        self.assertEqual(job.queue, "alice@main.dom")
        self.assertIn(b"5.7.1 spam, go away", self.local.data[-1])

    def test_rejectUnknown(self):
        """REJECTQUEUEMESSAGE of an unknown id is refused."""
        self.assertRaises(CLIError, self.call, "REJECTQUEUEMESSAGE 99999999")

    def test_rights(self):
        """Only Master or Monitors may use the queue commands."""
        user = FakeSession(self.context, {"Domain"}, "alice@main.dom")
        for line in ("LISTQUEUES", "GETMESSAGEQUEUEINFO SMTP QUEUE far.dom",
                     "RELEASESMTPQUEUE far.dom", "REJECTQUEUEMESSAGE %s" % (self.id,)):
            self.assertRaises(AccessDenied, self.call, line, user)
        master = FakeSession(self.context, {"Master"})
        self.assertIn("SMTP", self.call("LISTQUEUES", master))

    def test_overCLI(self):
        """The commands answer over a CLI connection."""
        factory = CLIFactory(self.context, LoginThrottle(self.clock, limit=3), self.clock,
                             idleTimeout=300, maxLineLength=1000)
        protocol = factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        for line in ("USER postmaster", "PASS secret"):
            protocol.dataReceived(line.encode() + b"\r\n")
        transport.clear()
        protocol.dataReceived(b"GETMESSAGEQUEUEINFO SMTP QUEUE far.dom\r\n")
        reply = transport.value().decode()
        self.assertTrue(reply.startswith("200 data follow"), reply)
        self.assertIn("nTotal=#1", reply)
