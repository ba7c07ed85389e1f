# -*- test-case-name: tests.pbx.test_chronos -*-
"""
Chronos: the scheduler that starts timed Real-Time tasks.

In CommuniGate the Chronos component starts C{rsipRegister} at each RSIP
record's scheduled time (pbx-apps.md section 4); cgpro uses the same
scheduler for every job of that kind.  A server may hold thousands of such
jobs (one per RSIP record), so Chronos keeps their deadlines in a sorted
list and holds exactly one pending C{callLater}, for the earliest: adding,
replacing or cancelling a job costs O(log n) and the reactor's timer queue
stays small.

Jobs are named by a key (C{(account, recordName)} for RSIP): scheduling a
key again replaces its job, which is what a changed record or a retry
needs.  A job that fails is logged and does not stop the others.
"""

import itertools

from sortedcontainers import SortedList
from twisted.internet.defer import maybeDeferred
from twisted.logger import Logger

log = Logger()


class Chronos:
    """
    Run functions at given times.

    @ivar running: whether jobs are being started (L{stop} clears it).
    """

    def __init__(self, clock=None):
        """
        @param clock: an C{IReactorTime}; times are on its C{seconds()} scale.
        """
        if clock is None:
            from twisted.internet import reactor as clock
        self.clock = clock
        self.running = True
        self._deadlines = SortedList()
        self._jobs = {}
        self._order = itertools.count()
        self._call = None

    def schedule(self, key, when, func):
        """
        Run C{func()} at time C{when}, replacing the job of C{key} if any.

        @param key: any hashable job name.
        @param when: absolute time (C{clock.seconds()} scale); a past time
            runs at the next turn of the reactor.
        @param func: called without arguments; may return a L{Deferred},
            whose failure is logged too.
        """
        self._remove(key)
        entry = (when, next(self._order), key)
        self._jobs[key] = (entry, func)
        self._deadlines.add(entry)
        self._arm()

    def cancel(self, key):
        """
        Forget the job of C{key}.

        @return: whether there was one.
        """
        removed = self._remove(key)
        if removed:
            self._arm()
        return removed

    def jobs(self):
        """
        @return: C{{key: when}} of the waiting jobs.
        """
        return {key: entry[0] for key, (entry, _) in self._jobs.items()}

    def nextTime(self):
        """
        @return: the earliest waiting time, or C{None}.
        """
        return self._deadlines[0][0] if self._deadlines else None

    def stop(self):
        """
        Start no more jobs (they stay listed); L{start} resumes.
        """
        self.running = False
        self._disarm()

    def start(self):
        """
        Resume after L{stop}; jobs whose time has passed run at once.
        """
        self.running = True
        self._arm()

    # -- machinery ---------------------------------------------------------------

    def _remove(self, key):
        found = self._jobs.pop(key, None)
        if found is None:
            return False
        self._deadlines.remove(found[0])
        return True

    def _disarm(self):
        if self._call is not None:
            if self._call.active():
                self._call.cancel()
            self._call = None

    def _arm(self):
        """
        Keep exactly one pending call, at the earliest deadline.
        """
        if not self.running or not self._deadlines:
            self._disarm()
            return
        when = self._deadlines[0][0]
        if self._call is not None and self._call.active() and self._call.getTime() == when:
            return
        self._disarm()
        delay = max(0, when - self.clock.seconds())
        self._call = self.clock.callLater(delay, self._fire)

    def _fire(self):
        self._call = None
        now = self.clock.seconds()
        due = []
        while self._deadlines and self._deadlines[0][0] <= now:
            entry = self._deadlines.pop(0)
            _, func = self._jobs.pop(entry[2])
            due.append((entry, func))
        for index, (entry, func) in enumerate(due):
            if not self.running:
                # a job stopped Chronos: the rest wait for start(), unless
                # a job already rescheduled their keys
                for later, laterFunc in due[index:]:
                    if later[2] not in self._jobs:
                        self._jobs[later[2]] = (later, laterFunc)
                        self._deadlines.add(later)
                break
            d = maybeDeferred(func)
            d.addErrback(self._failed, entry[2])
        self._arm()

    def _failed(self, failure, key):
        log.failure("Chronos job {key!r} failed", failure, key=key)
