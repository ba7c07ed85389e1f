# -*- test-case-name: tests.queue.test_queue -*-
"""
Logical queues and their bounded concurrency (objects.md section 9).

Recipients are grouped by the Router's C{(module, queue)}: one logical
queue per destination domain for SMTP, per account for LOCAL, per list for
LIST.  Each logical queue runs at most C{queueLimit(module)} delivery jobs
at a time, and each module at most C{moduleLimit(module)} over all its
queues, so one busy domain or mailbox cannot take every slot.  Queues of a
module that have work and a free slot wait in a round-robin ring; a
finished job frees a slot and the ring is served again.

The scheduler knows nothing of messages: an entry is whatever the queue
gives it, and L{Scheduler.startJob} (the queue's callback) runs it.
"""

from collections import deque


class LogicalQueue:
    """
    One logical queue.

    @ivar module: the Router module (C{"LOCAL"}, C{"SMTP"} ...).
    @ivar name: the Router queue (an account, a domain ...).
    @ivar waiting: entries not started yet, oldest first.
    @ivar active: jobs running.
    """

    __slots__ = ("module", "name", "waiting", "active", "inRing")

    def __init__(self, module, name):
        self.module = module
        self.name = name
        self.waiting = deque()
        self.active = 0
        self.inRing = False


class _Module:
    __slots__ = ("name", "active", "ring")

    def __init__(self, name):
        self.name = name
        self.active = 0
        self.ring = deque()


class Scheduler:
    """
    Runs entries of logical queues within the concurrency limits.

    @ivar queues: C{(module, name)} -> L{LogicalQueue} (queues are dropped
        when idle and empty).
    """

    def __init__(self, startJob, moduleLimit, queueLimit):
        """
        @param startJob: called as C{startJob(logicalQueue, entry)} to run
            one entry; the caller must call L{finished} once it is over.
        @param moduleLimit: C{moduleLimit(module)} -> jobs per module.
        @param queueLimit: C{queueLimit(module)} -> jobs per logical queue.
        """
        self._startJob = startJob
        self._moduleLimit = moduleLimit
        self._queueLimit = queueLimit
        self.queues = {}
        self._modules = {}
        self.paused = False
        self._pumping = False
        self._again = []

    def add(self, module, name, entry):
        """
        Queue an entry and run what the limits allow.
        """
        key = (module, name)
        lq = self.queues.get(key)
        if lq is None:
            lq = self.queues[key] = LogicalQueue(module, name)
        lq.waiting.append(entry)
        mod = self._module(module)
        if not lq.inRing:
            lq.inRing = True
            mod.ring.append(lq)
        self._pump(mod)

    def finished(self, lq):
        """
        A job of C{lq} is over: free its slots and start what can start.
        """
        lq.active -= 1
        mod = self._module(lq.module)
        mod.active -= 1
        if lq.waiting:
            if not lq.inRing:
                lq.inRing = True
                mod.ring.append(lq)
        elif lq.active == 0:
            self.queues.pop((lq.module, lq.name), None)
        self._pump(mod)

    def pumpAll(self):
        """
        Start whatever the limits allow in every module (after a pause or
        a change of limits).
        """
        for mod in list(self._modules.values()):
            self._pump(mod)

    def moduleActive(self, module):
        mod = self._modules.get(module)
        return mod.active if mod is not None else 0

    def _module(self, name):
        mod = self._modules.get(name)
        if mod is None:
            mod = self._modules[name] = _Module(name)
        return mod

    def _pump(self, mod):
        # A job may finish synchronously inside startJob and pump again;
        # the outer call serves those requests in its own loop so that a
        # long run of synchronous jobs does not recurse.
        if self.paused:
            return
        if self._pumping:
            self._again.append(mod)
            return
        self._pumping = True
        try:
            todo = [mod]
            while todo:
                self._serve(todo.pop())
                todo.extend(self._again)
                del self._again[:]
        finally:
            self._pumping = False

    def _serve(self, mod):
        ring = mod.ring
        moduleLimit = self._moduleLimit(mod.name)
        queueLimit = self._queueLimit(mod.name)
        while ring and mod.active < moduleLimit:
            lq = ring[0]
            if not lq.waiting or lq.active >= queueLimit:
                ring.popleft()
                lq.inRing = False
                continue
            entry = lq.waiting.popleft()
            lq.active += 1
            mod.active += 1
            ring.rotate(-1)
            self._startJob(lq, entry)
