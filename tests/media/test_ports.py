# -*- test-case-name: tests.media.test_ports -*-
"""
Tests for L{cgpro.media.ports}.
"""

from twisted.trial.unittest import SynchronousTestCase

from cgpro.media.interfaces import MediaExhausted
from cgpro.media.ports import PortPairAllocator


class PortPairAllocatorTests(SynchronousTestCase):
    """
    Pairs come from the range, even RTP and odd RTCP, all or none.
    """

    def test_evenOddPairsInRange(self):
        """
        An odd low bound and an even high bound are skipped: every pair is
        (even, even + 1), inside the range.
        """
        allocator = PortPairAllocator(60001, 60010)
        self.assertEqual(allocator.capacity, 4)
        pairs = allocator.allocate(4)
        self.assertEqual(pairs, [(60002, 60003), (60004, 60005), (60006, 60007), (60008, 60009)])

    def test_defaultRange(self):
        """
        The default Port Allocation range 60000-60099 holds 50 pairs.
        """
        self.assertEqual(PortPairAllocator(60000, 60099).capacity, 50)

    def test_emptyRange(self):
        """
        A range without a whole pair, or outside 1-65535, is refused.
        """
        self.assertRaises(ValueError, PortPairAllocator, 60001, 60002)
        self.assertRaises(ValueError, PortPairAllocator, 0, 100)
        self.assertRaises(ValueError, PortPairAllocator, 65000, 70000)

    def test_exhaustedAllOrNone(self):
        """
        Asking for more pairs than are free raises L{MediaExhausted} with the
        range in the message and takes nothing.
        """
        allocator = PortPairAllocator(60000, 60005)
        allocator.allocate(2)
        e = self.assertRaises(MediaExhausted, allocator.allocate, 2)
        self.assertIn("60000-60005", str(e))
        self.assertIn("MediaPorts", str(e))
        self.assertEqual(len(allocator), 1)
        self.assertEqual(allocator.allocate(1), [(60004, 60005)])

    def test_releasedReusedLast(self):
        """
        A released pair goes to the back of the queue, so late packets of a
        finished call do not reach the very next call.
        """
        allocator = PortPairAllocator(60000, 60005)
        [(first, _)] = allocator.allocate(1)
        allocator.release(first)
        self.assertEqual([p for p, _ in allocator.allocate(3)], [60002, 60004, 60000])
        self.assertEqual(allocator.inUse(), 3)

    def test_releaseUnknown(self):
        """
        Releasing a pair that is not allocated is an error.
        """
        allocator = PortPairAllocator(60000, 60005)
        self.assertRaises(KeyError, allocator.release, 60000)

    def test_unusableSkipped(self):
        """
        A pair the C{usable} check refuses (a port another program holds) is
        skipped and put at the back; if too few remain, nothing is taken.
        """
        allocator = PortPairAllocator(60000, 60007)
        pairs = allocator.allocate(2, usable=lambda port: port != 60002)
        self.assertEqual(pairs, [(60000, 60001), (60004, 60005)])
        self.assertRaises(MediaExhausted, allocator.allocate, 2, usable=lambda port: port != 60006)
        self.assertEqual(len(allocator), 2)
        self.assertEqual(allocator.allocate(2), [(60006, 60007), (60002, 60003)])
