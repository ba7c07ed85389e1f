# -*- test-case-name: tests.mail.imap.test_scale -*-
"""
Scale: SELECT, FETCH and SEARCH of a 100,000-message mailbox, and 1,000
sessions in IDLE on one INBOX all told of a delivery.  Figures are printed
(run with C{pytest -s} to see them); bounds are generous for shared
machines, the issue's targets are SELECT under 1 s and 1,000 IDLE sessions
in under 300 MB.
"""

import os
import time
import tracemalloc

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from tests.mail.imap.support import USER, Session, makeContext, message
from tests.store.test_scale import fillMailbox

LARGE = 100000


class LargeMailboxTests(SynchronousTestCase):
    """
    A 100,000-message INBOX.
    """

    def test_select(self):
        """SELECT (load included), FETCH 1:* FLAGS and SEARCH UNSEEN stay fast."""
        context = makeContext(self)
        root = os.path.join(context.directory.storage.accountPath("main.dom", "user"), "Maildir")
        fillMailbox(root, LARGE, message("bulk", "x" * 200))
        session = Session(self, context)
        session.login(self)
        started = time.perf_counter()
        out = session.ok(self, "SELECT INBOX")
        selected = time.perf_counter() - started
        self.assertIn("* %d EXISTS" % LARGE, out)
        started = time.perf_counter()
        out = session.ok(self, "FETCH 1:* (UID FLAGS)")
        fetched = time.perf_counter() - started
        self.assertEqual(out.count(" FETCH ("), LARGE)
        started = time.perf_counter()
        out = session.ok(self, "UID SEARCH UNSEEN")
        searched = time.perf_counter() - started
        self.assertEqual(len(out.split("\r\n")[0].split()) - 2, LARGE // 3)
        print("\nIMAP 100k: SELECT %.3f s, FETCH 1:* (UID FLAGS) %.3f s, SEARCH UNSEEN %.3f s"
              % (selected, fetched, searched))
        self.assertLess(selected, 3.0)
        self.assertLess(fetched, 10.0)
        self.assertLess(searched, 5.0)


class ManyIdleTests(SynchronousTestCase):
    """
    1,000 sessions in IDLE.
    """

    def test_thousandIdle(self):
        """1,000 IDLE sessions cost little memory and all see a delivery at once."""
        clock = Clock()
        context = makeContext(self, clock, modules={"AllowCleartextAuth": "YES"})
        store = context.mailStore
        for i in range(20):
            self.successResultOf(store.deliver(USER, "INBOX", message("m%d" % i)))
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            sessions = []
            for _ in range(1000):
                s = Session(self, context, clock=clock)
                s.ok(self, "LOGIN user pass")
                s.ok(self, "SELECT INBOX")
                s.send("i IDLE\r\n")
                s.transport.clear()
                sessions.append(s)
            used = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        started = time.perf_counter()
        self.successResultOf(store.deliver(USER, "INBOX", message("news")))
        clock.advance(0)
        told = time.perf_counter() - started
        self.assertTrue(all(s.take().startswith("* 21 EXISTS\r\n") for s in sessions))
        print("\n1,000 IDLE sessions: %.1f MB traced (%d bytes/session), delivery told to all "
              "in %.3f s" % (used / 1e6, used // 1000, told))
        self.assertLess(used, 100e6)
        self.assertLess(told, 1.0)
