# -*- test-case-name: tests.sip.test_timers -*-
"""
A hashed timing wheel for the SIP layer's many short-lived timers.

A proxy at tens of thousands of requests per second keeps hundreds of
thousands of timers alive (Timer J holds every completed non-INVITE server
transaction for 32 s over UDP; every registration has an expiry).  One
C{reactor.callLater} per timer would cost a L{DelayedCall} object, a heap
push and a heap removal on cancel each; the wheel instead files each timer
in the bucket of its deadline, rounded up to the wheel's resolution, and
keeps a single C{callLater} for the next non-empty bucket.  Cancelling is
O(1) (the entry is marked dead and dropped when its bucket fires).

Timers never fire early; they fire at most one resolution late.  The wheel
runs on any L{twisted.internet.interfaces.IReactorTime}, so tests drive it
with L{twisted.internet.task.Clock}.
"""

import heapq
import math

from twisted.logger import Logger

log = Logger()


class Timer:
    """
    One scheduled call; L{cancel} it if it is no longer wanted.

    @ivar deadline: when it is due (reactor seconds).
    """

    __slots__ = ("deadline", "func", "args", "active")

    def __init__(self, deadline, func, args):
        self.deadline = deadline
        self.func = func
        self.args = args
        self.active = True

    def cancel(self):
        """Stop the call; harmless if it already ran or was cancelled."""
        self.active = False
        self.func = self.args = None


class TimerWheel:
    """
    @ivar resolution: bucket width in seconds.
    @ivar pending: timers filed and not yet run or dropped (live and
        cancelled ones; for monitoring).
    """

    def __init__(self, reactor, resolution=0.05):
        self.reactor = reactor
        self.resolution = resolution
        self._buckets = {}
        self._order = []  # heap of bucket numbers that have a list
        self._call = None
        self._callBucket = None
        self.pending = 0

    def schedule(self, delay, func, *args):
        """
        Call C{func(*args)} after C{delay} seconds.

        @rtype: L{Timer}
        """
        deadline = self.reactor.seconds() + delay
        timer = Timer(deadline, func, args)
        number = math.ceil(deadline / self.resolution)
        bucket = self._buckets.get(number)
        if bucket is None:
            bucket = self._buckets[number] = []
            heapq.heappush(self._order, number)
            if self._callBucket is None or number < self._callBucket:
                self._arm()
        bucket.append(timer)
        self.pending += 1
        return timer

    def _arm(self):
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        self._callBucket = None
        if not self._order:
            return
        number = self._order[0]
        delay = max(0.0, number * self.resolution - self.reactor.seconds() - 1e-9)
        self._callBucket = number
        self._call = self.reactor.callLater(delay, self._fire)

    def _fire(self):
        self._call = None
        self._callBucket = None
        now = self.reactor.seconds()
        limit = math.floor(now / self.resolution + 1e-6)
        while self._order and self._order[0] <= limit:
            number = heapq.heappop(self._order)
            bucket = self._buckets.pop(number)
            self.pending -= len(bucket)
            for timer in bucket:
                if timer.active:
                    func, args = timer.func, timer.args
                    timer.active = False
                    timer.func = timer.args = None
                    try:
                        func(*args)
                    except Exception:
                        log.failure("SIP timer {func!r} failed", func=func)
        self._arm()

    def stop(self):
        """Drop every timer (at service stop)."""
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        self._callBucket = None
        self._buckets.clear()
        self._order = []
        self.pending = 0
