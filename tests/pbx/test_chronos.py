# -*- test-case-name: tests.pbx.test_chronos -*-
"""
Tests for L{cgpro.pbx.chronos}, deterministic on a L{Clock}.
"""

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from cgpro.pbx.chronos import Chronos


class ChronosTests(SynchronousTestCase):
    """
    Scheduling, replacing, cancelling, failures and the single timer.
    """

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1000)
        self.chronos = Chronos(self.clock)
        self.ran = []

    def job(self, name):
        return lambda: self.ran.append((name, self.clock.seconds()))

    def test_runsAtTime(self):
        """A job runs when its time comes, not before, and only once."""
        self.chronos.schedule("a", 1010, self.job("a"))
        self.clock.advance(9)
        self.assertEqual(self.ran, [])
        self.clock.advance(1)
        self.assertEqual(self.ran, [("a", 1010)])
        self.clock.advance(100)
        self.assertEqual(self.ran, [("a", 1010)])
        self.assertEqual(self.chronos.jobs(), {})

    def test_order(self):
        """Jobs run in time order whatever the order they were scheduled in."""
        for name, when in [("c", 1030), ("a", 1010), ("b", 1020)]:
            self.chronos.schedule(name, when, self.job(name))
        self.clock.pump([10, 10, 10])
        self.assertEqual(self.ran, [("a", 1010), ("b", 1020), ("c", 1030)])

    def test_oneTimer(self):
        """Exactly one pending call, for the earliest job."""
        for n in range(50):
            self.chronos.schedule(n, 2000 - n, self.job(n))
        calls = self.clock.getDelayedCalls()
        self.assertEqual(len(calls), 1)
        self.assertEqual(calls[0].getTime(), 1951)
        self.chronos.cancel(49)
        [call] = self.clock.getDelayedCalls()
        self.assertEqual(call.getTime(), 1952)

    def test_replace(self):
        """Scheduling a key again replaces its job (time and function)."""
        self.chronos.schedule("r", 1010, self.job("old"))
        self.chronos.schedule("r", 1050, self.job("new"))
        self.assertEqual(self.chronos.jobs(), {"r": 1050})
        self.clock.advance(10)
        self.assertEqual(self.ran, [])
        self.clock.advance(40)
        self.assertEqual(self.ran, [("new", 1050)])

    def test_cancel(self):
        """A cancelled job never runs; cancelling an unknown key is harmless."""
        self.chronos.schedule("x", 1010, self.job("x"))
        self.assertTrue(self.chronos.cancel("x"))
        self.assertFalse(self.chronos.cancel("x"))
        self.clock.advance(20)
        self.assertEqual(self.ran, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_pastTimeRunsNow(self):
        """A time already past runs at the next turn."""
        self.chronos.schedule("late", 900, self.job("late"))
        self.clock.advance(0)
        self.assertEqual(self.ran, [("late", 1000)])

    def test_failureIsolated(self):
        """A failing job is logged and the others still run, then and later."""
        def boom():
            raise RuntimeError("boom")
        self.chronos.schedule("bad", 1010, boom)
        self.chronos.schedule("good", 1010, self.job("good"))
        self.chronos.schedule("later", 1020, self.job("later"))
        self.clock.pump([10, 10])
        self.assertEqual([name for name, _ in self.ran], ["good", "later"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_deferredFailureLogged(self):
        """A job's Deferred that fails later is logged too."""
        d = Deferred()
        self.chronos.schedule("async", 1010, lambda: d)
        self.clock.advance(10)
        d.errback(RuntimeError("late boom"))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_rescheduleFromJob(self):
        """A job may schedule its own next run (a periodic registration)."""
        def periodic():
            self.ran.append(self.clock.seconds())
            self.chronos.schedule("p", self.clock.seconds() + 30, periodic)
        self.chronos.schedule("p", 1030, periodic)
        self.clock.pump([30, 30, 30])
        self.assertEqual(self.ran, [1030, 1060, 1090])
        self.assertEqual(self.chronos.jobs(), {"p": 1120})

    def test_stopAndStart(self):
        """After L{Chronos.stop} nothing runs and no timer is pending; jobs
        stay listed and run once started again."""
        self.chronos.schedule("s", 1010, self.job("s"))
        self.chronos.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(20)
        self.assertEqual(self.ran, [])
        self.assertEqual(self.chronos.jobs(), {"s": 1010})
        self.chronos.start()
        self.clock.advance(0)
        self.assertEqual(self.ran, [("s", 1020)])

    def test_stopFromJob(self):
        """A job that stops Chronos keeps the other due jobs waiting."""
        self.chronos.schedule("stopper", 1010, self.chronos.stop)
        self.chronos.schedule("other", 1010, self.job("other"))
        self.clock.advance(10)
        self.assertEqual(self.ran, [])
        self.assertEqual(self.chronos.jobs(), {"other": 1010})
        self.assertEqual(self.chronos.nextTime(), 1010)
