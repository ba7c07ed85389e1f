# -*- test-case-name: tests.core.test_throttle -*-
"""
Tests for L{cgpro.core.throttle.LoginThrottle}.
"""

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from cgpro.core.throttle import LoginThrottle


class ThrottleTests(SynchronousTestCase):
    """
    Failures per address within a sliding window.
    """

    def setUp(self):
        self.clock = Clock()
        self.throttle = LoginThrottle(self.clock, limit=3, period=60, maxAddresses=2)

    def test_blocksAfterLimit(self):
        """The limit-th failure blocks the address; others are unaffected."""
        for _ in range(2):
            self.throttle.failed("1.1.1.1")
        self.assertFalse(self.throttle.blocked("1.1.1.1"))
        self.throttle.failed("1.1.1.1")
        self.assertTrue(self.throttle.blocked("1.1.1.1"))
        self.assertFalse(self.throttle.blocked("2.2.2.2"))

    def test_windowSlides(self):
        """Failures older than the period no longer count."""
        for _ in range(3):
            self.throttle.failed("1.1.1.1")
        self.clock.advance(61)
        self.assertFalse(self.throttle.blocked("1.1.1.1"))

    def test_successClears(self):
        """A successful login forgets the address's failures."""
        self.throttle.failed("1.1.1.1")
        self.throttle.succeeded("1.1.1.1")
        self.assertEqual(self.throttle._failures, {})

    def test_bounded(self):
        """At most maxAddresses addresses are remembered."""
        for address in ("1.1.1.1", "2.2.2.2", "3.3.3.3"):
            self.throttle.failed(address)
        self.assertEqual(list(self.throttle._failures), ["2.2.2.2", "3.3.3.3"])
