"""
Tests for L{cgpro.sip.timers.TimerWheel}, driven by a L{Clock}.
"""

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from cgpro.sip.timers import TimerWheel


class TimerWheelTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.wheel = TimerWheel(self.clock, resolution=0.1)
        self.fired = []

    def test_firesNotEarlyAndAtMostOneResolutionLate(self):
        """
        A timer runs once its delay has passed, within one resolution.
        """
        self.wheel.schedule(0.55, self.fired.append, "a")
        self.clock.advance(0.5)
        self.assertEqual(self.fired, [])
        self.clock.advance(0.1)
        self.assertEqual(self.fired, ["a"])
        self.assertEqual(self.wheel.pending, 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_order(self):
        """
        Timers filed out of order run in deadline order, one C{callLater}
        at a time.
        """
        self.wheel.schedule(3, self.fired.append, 3)
        self.wheel.schedule(1, self.fired.append, 1)
        self.wheel.schedule(2, self.fired.append, 2)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.pump([0.5] * 8)
        self.assertEqual(self.fired, [1, 2, 3])

    def test_cancel(self):
        """
        A cancelled timer never runs; the others in its bucket do.
        """
        a = self.wheel.schedule(1, self.fired.append, "a")
        self.wheel.schedule(1, self.fired.append, "b")
        a.cancel()
        a.cancel()
        self.clock.advance(1.1)
        self.assertEqual(self.fired, ["b"])

    def test_failureDoesNotStopOthers(self):
        """
        A timer that raises is logged; the rest of the bucket still runs.
        """
        def boom():
            raise RuntimeError("boom")
        self.wheel.schedule(1, boom)
        self.wheel.schedule(1, self.fired.append, "after")
        self.clock.advance(1.1)
        self.assertEqual(self.fired, ["after"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_scheduleFromTimer(self):
        """
        A timer may schedule another (retransmission timers do).
        """
        def again():
            self.fired.append(self.clock.seconds())
            if len(self.fired) < 3:
                self.wheel.schedule(0.5, again)
        self.wheel.schedule(0.5, again)
        self.clock.pump([0.1] * 20)
        self.assertEqual(len(self.fired), 3)

    def test_stop(self):
        """
        L{TimerWheel.stop} drops every timer and the pending C{callLater}.
        """
        self.wheel.schedule(1, self.fired.append, 1)
        self.wheel.stop()
        self.clock.advance(2)
        self.assertEqual(self.fired, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])
