# -*- test-case-name: tests.store.test_scale -*-
"""
Scale and concurrency: a 100,000-message mailbox opens fast, concurrent
deliveries through the threaded group-commit writer get distinct UIDs, and a
delivery reaches an IDLE listener at once.  The figures are printed (run
with C{pytest -s} or trial to see them).
"""

import os
import sys
import time

from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks
from twisted.trial.unittest import SynchronousTestCase, TestCase

from cgpro.store import journal as J
from tests.store.support import ACCOUNT, StoreFixture, message

#: Messages in the large mailbox.
LARGE = 100000

#: The bound the open of the large mailbox must meet (generous: shared CI
#: machines); the issue asks for SELECT under 1 s.
OPEN_BOUND = 5.0


def fillMailbox(root, count, data):
    """
    Write a Maildir with C{count} messages and its journal directly (hard
    links of a few files: fast), a third unseen in new/, the rest seen in
    cur/.
    """
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    lines = [J.formatHeader(1700000000, count + 1, count + 1, count + 1, 0)]
    source = None
    for uid in range(1, count + 1):
        if uid % 50000 == 1:
            source = os.path.join(root, "source%d" % uid)
            with open(source, "wb") as f:
                f.write(data)
        base = "1700000000.M%dP1Q%dR00c0ffee.bench,S=%d" % (uid, uid, len(data))
        if uid % 3:
            name, flags = "cur/%s:2,S" % base, ("\\Seen",)
        else:
            name, flags = "new/" + base, ()
        os.link(source, os.path.join(root, name))
        lines.append(J.formatAdd(uid, uid + 1, 1700000000 + uid, len(data), name, flags))
    for entry in os.listdir(root):
        if entry.startswith("source"):
            os.unlink(os.path.join(root, entry))
    with open(os.path.join(root, J.JOURNAL_FILE), "w") as f:
        f.write("".join(lines))


def indexBytes(box):
    """
    @return: the memory the index holds (arrays, lists, name strings).
    """
    index = box.index
    total = sum(sys.getsizeof(a) for a in
                (index.uids, index.modseqs, index.dates, index.sizes, index.masks, index.names))
    return total + sum(sys.getsizeof(n) for n in index.names)


class LargeMailboxTests(SynchronousTestCase):
    """
    A mailbox of L{LARGE} messages.
    """

    def test_openLarge(self):
        """100,000 messages open (journal replay + folder scan) well under the bound."""
        fx = StoreFixture(self)
        data = message("bulk", "x" * 200)
        started = time.perf_counter()
        fillMailbox(fx.root(), LARGE, data)
        generated = time.perf_counter() - started

        store = fx.store()
        started = time.perf_counter()
        box = self.successResultOf(store.openMailbox(ACCOUNT, "INBOX"))
        opened = time.perf_counter() - started
        size = indexBytes(box)
        print("\n100k mailbox: generated in %.2f s, opened in %.3f s, index %.1f MB "
              "(%d bytes/message)" % (generated, opened, size / 1e6, size // LARGE))

        self.assertEqual(len(box), LARGE)
        self.assertLess(opened, OPEN_BOUND)
        self.assertLess(size, 40e6)
        self.assertEqual(box.unseenCount, LARGE // 3)
        self.assertEqual(box.firstUnseen(), 3)
        self.assertEqual(box.totalSize, LARGE * len(data))
        self.assertEqual(box.readMessage(LARGE), data)

        started = time.perf_counter()
        uid = self.successResultOf(store.deliver(ACCOUNT, "INBOX", message()))
        self.successResultOf(box.setFlags([1], ["\\Flagged"], "add"))
        self.successResultOf(box.expunge([2]))
        changed = time.perf_counter() - started
        self.assertEqual(uid, LARGE + 1)
        self.assertLess(changed, 1.0)

        started = time.perf_counter()
        other = self.successResultOf(fx.store().openMailbox(ACCOUNT, "INBOX"))
        self.assertEqual(len(other), LARGE)
        print("100k mailbox: reopened after changes in %.3f s" % (time.perf_counter() - started,))


class ConcurrentDeliveryTests(TestCase):
    """
    The threaded writer: group commit, ordering, exactly-once under load.
    """

    def setUp(self):
        self.fx = StoreFixture(self, synchronous=False)
        self.store = self.fx.store()

    @inlineCallbacks
    def test_distinctUids(self):
        """Deliveries issued together get distinct UIDs and all survive a restart."""
        count = 300
        ds = [self.store.deliver(ACCOUNT, "INBOX", message("c%d" % i)) for i in range(count)]
        # the same delivery ids twice while the first copies are in flight
        ids = [self.store.deliver(ACCOUNT, "INBOX", message("d%d" % i), deliveryId="D%d" % i)
               for i in range(20)]
        again = [self.store.deliver(ACCOUNT, "INBOX", message("d%d" % i), deliveryId="D%d" % i)
                 for i in range(20)]
        uids = yield gatherResults(ds + ids)
        repeated = yield gatherResults(again)
        self.assertEqual(sorted(uids), list(range(1, count + 21)))
        self.assertEqual(repeated, uids[count:])
        self.assertLess(self.fx.writer.rounds, count)
        restarted = self.fx.store()
        box = yield restarted.openMailbox(ACCOUNT, "INBOX")
        self.assertEqual(list(box.uids), list(range(1, count + 21)))
        self.assertEqual(len(self.fx.files()), count + 20)

    @inlineCallbacks
    def test_throughput(self):
        """Deliveries per second of 4 KB messages, 50 in flight (figure printed)."""
        total, window = 2000, 50
        data = message("load", "x" * 4000)
        done = Deferred()
        state = {"issued": 0, "finished": 0}

        def issue():
            i = state["issued"]
            state["issued"] += 1
            d = self.store.deliver(ACCOUNT, "INBOX", data, deliveryId="T%d" % i)
            d.addCallbacks(finished, done.errback)

        def finished(_):
            state["finished"] += 1
            if state["finished"] == total:
                done.callback(None)
            elif state["issued"] < total:
                issue()

        rounds = self.fx.writer.rounds
        started = time.perf_counter()
        cpu = time.process_time()
        for _ in range(window):
            issue()
        yield done
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
        print("\nthreaded writer: %d deliveries in %.2f s = %.0f/s, %d commit rounds, "
              "%.2f ms CPU each" % (total, elapsed, total / elapsed,
                                    self.fx.writer.rounds - rounds, 1000 * cpu / total))
        box = yield self.store.openMailbox(ACCOUNT, "INBOX")
        self.assertEqual(len(box), total)

    @inlineCallbacks
    def test_renameDuringDeliveries(self):
        """A rename waits for in-flight deliveries; later ones follow the new name."""
        from cgpro.store.errors import NoSuchMailbox

        yield self.store.createMailbox(ACCOUNT, "Work")
        box = yield self.store.openMailbox(ACCOUNT, "Work")
        before = [self.store.deliver(ACCOUNT, "Work", message("b%d" % i)) for i in range(50)]
        flags = box.setFlags([1], ["\\Seen"], "add")
        renamed = self.store.renameMailbox(ACCOUNT, "Work", "Job")
        lost = self.store.deliver(ACCOUNT, "Work", message("lost"))
        held = box.setFlags([2], ["\\Seen"], "add")
        uids = yield gatherResults(before)
        yield flags
        yield renamed
        yield held
        yield self.assertFailure(lost, NoSuchMailbox)
        self.assertEqual((yield self.store.deliver(ACCOUNT, "Job", message("after"))), 51)
        self.assertEqual(box.flags(2), ("\\Seen",))
        self.assertEqual(sorted(uids), list(range(1, 51)))
        self.assertEqual((box.name, len(box)), ("Job", 51))
        restarted = self.fx.store()
        job = yield restarted.openMailbox(ACCOUNT, "Job")
        self.assertEqual(len(job), 51)
        self.assertEqual(restarted.listMailboxes(ACCOUNT), ["INBOX", "Job"])

    @inlineCallbacks
    def test_idleNotification(self):
        """A delivery reaches an open mailbox's listener well within a second."""
        box = yield self.store.openMailbox(ACCOUNT, "INBOX")
        heard = Deferred()
        box.addListener(lambda event: heard.called or heard.callback(time.perf_counter()))
        started = time.perf_counter()
        self.store.deliver(ACCOUNT, "INBOX", message())
        at = yield heard
        self.assertLess(at - started, 1.0)
        box.close()

    @inlineCallbacks
    def test_threadedOpen(self):
        """Opening loads in a thread; deliveries meanwhile wait and land after."""
        for i in range(10):
            yield self.store.deliver(ACCOUNT, "INBOX", message())
        store = self.fx.store()
        opening = store.openMailbox(ACCOUNT, "INBOX")
        during = store.deliver(ACCOUNT, "INBOX", message())
        box = yield opening
        uid = yield during
        self.assertEqual((uid, len(box)), (11, 11))
        self.assertIs(reactor.running, True)
