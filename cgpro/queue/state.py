# -*- test-case-name: tests.queue.test_queue -*-
"""
What the queue keeps in memory about each message and recipient, and the
job it hands to channels.

A recipient is in one of four states: L{PENDING} (to be routed),
L{ACTIVE} (routed: waiting in a logical queue, in a delivery job, or its
outcome being journaled), L{WAITING} (deferred; retried at C{retryAt}) and
L{DONE} (its final outcome is durable).
"""

from dataclasses import dataclass, field

from cgpro.core.envelope import DeliveryJob

PENDING = "pending"
ACTIVE = "active"
WAITING = "waiting"
DONE = "done"


@dataclass
class QueueJob(DeliveryJob):
    """
    A L{DeliveryJob} that still holds the message bytes from the commit,
    so the first attempt does not read them back from disk.
    """

    data: bytes = field(default=None, repr=False)

    def readMessage(self):
        if self.data is not None:
            return self.data
        return DeliveryJob.readMessage(self)


class Rcpt:
    """
    The queue's state of one recipient.

    @ivar first: the outcome of the first attempt (for L{cgpro.queue.queue.MessageQueue.whenDone}).
    @ivar last: the latest outcome.
    """

    __slots__ = ("recipient", "state", "route", "attempts", "retryAt", "first", "last")

    def __init__(self, recipient):
        self.recipient = recipient
        self.state = PENDING
        self.route = None
        self.attempts = 0
        self.retryAt = None
        self.first = None
        self.last = None


class Message:
    """
    One queued message.

    @ivar busy: asynchronous operations under way (jobs, journal appends,
        rule actions); the message is finished only when it is idle.
    """

    __slots__ = ("id", "envelope", "record", "offset", "size", "rcpts", "data", "timer",
                 "recovered", "arrival", "delayNotified", "reported", "rulesDone",
                 "rejectText", "waiters", "tornJournal", "busy", "finishing", "journaled")

    def __init__(self, id, envelope, record, offset, size, data, arrival):
        self.id = id
        self.envelope = envelope
        self.record = record
        self.offset = offset
        self.size = size
        self.rcpts = [Rcpt(r) for r in envelope.recipients]
        self.data = data
        self.timer = None
        self.recovered = False
        self.arrival = arrival
        self.delayNotified = False
        self.reported = False
        self.rulesDone = False
        self.rejectText = None
        self.waiters = []
        self.tornJournal = False
        self.busy = 0
        self.finishing = False
        self.journaled = False
