# -*- test-case-name: tests.queue.test_crash -*-
"""
The server side of L{tests.queue.test_crash}: a queue with the LOCAL
channel over a small file store, on the real reactor with the threaded
L{DurableWriter} (fsync on), in a process the test kills with SIGKILL.

Usage: C{python -m tests.queue.crashchild BASE send COUNT} submits COUNT
messages from 10 concurrent submitters and prints C{ACK <n>} once message
C{n} is durable (as an SMTP server answers 250); C{python -m
tests.queue.crashchild BASE recover} starts the queue on the folder, lets
it finish, prints C{IDLE} and exits.
"""

import os
import sys

from twisted.internet import defer, reactor
from zope.interface import implementer

from cgpro.core.envelope import Envelope
from cgpro.core.files import DurableWriter
from cgpro.core.interfaces import IMailStore
from cgpro.core.router import Router
from cgpro.queue.local import LocalChannel
from cgpro.queue.queue import MessageQueue
from tests.support.directory import makeDirectory

ACCOUNTS = ["user%d@main.dom" % i for i in range(5)]


@implementer(IMailStore)
class FileStore:
    """
    One file per stored message in C{BASE/Store/<account>/}, written
    durably; the delivery id is the file's first line, and the ids found
    at start make deliveries idempotent (as the mailbox store promises).
    """

    def __init__(self, base, writer):
        self.folder = os.path.join(base, "Store")
        self.writer = writer
        self.seen = set()
        self.counter = 0
        os.makedirs(self.folder, exist_ok=True)
        for account in os.listdir(self.folder):
            for name in os.listdir(os.path.join(self.folder, account)):
                if name.endswith(".tmp"):
                    continue
                with open(os.path.join(self.folder, account, name), "rb") as f:
                    self.seen.add((account, f.readline().strip().decode()))

    def deliver(self, account, mailbox, data, flags=(), internalDate=None, deliveryId=None):
        if (account, deliveryId) in self.seen:
            return defer.succeed(0)
        self.seen.add((account, deliveryId))
        folder = os.path.join(self.folder, account)
        os.makedirs(folder, exist_ok=True)
        self.counter += 1
        name = "%d.%d" % (os.getpid(), self.counter)
        return self.writer.write(os.path.join(folder, name),
                                 deliveryId.encode() + b"\n" + data)

    def hasDelivery(self, account, mailbox, deliveryId):
        return (account, deliveryId) in self.seen

    def mailboxExists(self, account, mailbox):
        return mailbox == "INBOX"

    def createMailbox(self, account, mailbox):
        return defer.succeed(None)


class _Case:
    """
    Enough of a TestCase for L{makeDirectory}.
    """

    def addCleanup(self, *args):
        pass

    def successResultOf(self, d):
        results = []
        d.addBoth(results.append)
        if isinstance(results[0], Exception) or hasattr(results[0], "raiseException"):
            results[0].raiseException()
        return results[0]


def main(base, mode, count=0):
    case = _Case()
    fresh = not os.path.exists(os.path.join(base, "Settings"))
    directory = makeDirectory(case, mainDomain="main.dom" if fresh else None, base=base)
    if fresh:
        for account in ACCOUNTS:
            case.successResultOf(directory.createAccount(account))
    writer = DurableWriter(base, reactor=reactor)
    writer.start()
    queue = MessageQueue(base, writer, Router(directory), directory, clock=reactor)
    queue.registerChannel(LocalChannel(FileStore(base, writer), directory, queue, reactor))
    queue.start()
    out = sys.stdout
    if mode == "recover":
        def check():
            if queue.messageCount == 0 and not writer.pending:
                out.write("IDLE\n")
                out.flush()
                reactor.stop()
            else:
                reactor.callLater(0.05, check)
        reactor.callLater(0.05, check)
    else:
        sent = [0]

        def one():
            n = sent[0]
            if n >= count:
                return
            sent[0] += 1
            env = Envelope(sender="load@far.dom", protocol="ESMTP")
            env.addRecipient(ACCOUNTS[n % len(ACCOUNTS)])
            data = b"Subject: n%d\r\nMessage-ID: <%d@far.dom>\r\n\r\nbody %d\r\n" % (n, n, n)
            d = queue.submit(env, data)

            def acked(_):
                out.write("ACK %d\n" % (n,))
                out.flush()
                one()
            d.addCallback(acked)

        for _ in range(10):
            reactor.callWhenRunning(one)
    reactor.run()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 0)
