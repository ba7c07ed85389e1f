# -*- test-case-name: tests.queue.test_queue -*-
"""
Fakes for the queue tests: delivery channels that record jobs, a mailbox
store in memory, a rules outcome, and a queue over a real directory and
Router in a temporary base folder.
"""

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from zope.interface import implementer

from cgpro.core.envelope import DELIVERED, Envelope, RecipientResult
from cgpro.core.interfaces import IDeliveryChannel, IMailStore
from cgpro.core.router import Router
from cgpro.queue.queue import MessageQueue
from tests.support.directory import makeDirectory

MESSAGE = (b"From: Sender <sender@remote.dom>\r\n"
           b"To: alice@main.dom\r\n"
           b"Subject: Hello\r\n"
           b"Message-ID: <m1@remote.dom>\r\n"
           b"\r\n"
           b"Body line\r\n")


def envelope(sender, *recipients, **kw):
    """
    @return: an L{Envelope} from C{sender} to C{recipients}.
    """
    kw.setdefault("trusted", False)
    env = Envelope(sender=sender, **kw)
    for address in recipients:
        if isinstance(address, tuple):
            env.addRecipient(address[0], notify=address[1])
        else:
            env.addRecipient(address)
    return env


@implementer(IDeliveryChannel)
class FakeChannel:
    """
    Records jobs; answers with C{answer(job)} (default: every recipient
    delivered), or leaves the job pending when C{hold} is set.

    @ivar jobs: the jobs received, in order.
    @ivar held: C{(job, Deferred)} of held jobs.
    @ivar data: the message bytes of each job (read at delivery time).
    """

    def __init__(self, name, answer=None, hold=False):
        self.name = name
        self.answer = answer
        self.hold = hold
        self.jobs = []
        self.held = []
        self.data = []

    def deliver(self, job):
        self.jobs.append(job)
        self.data.append(job.readMessage())
        if self.hold:
            d = Deferred()
            self.held.append((job, d))
            return d
        if self.answer is not None:
            return succeed(self.answer(job))
        return succeed([RecipientResult(r.index, DELIVERED, 250, "2.0.0 ok")
                        for r, _ in job.recipients])

    def release(self, status=DELIVERED, code=250, text="2.0.0 ok"):
        """
        Answer every held job with one outcome for all its recipients.
        """
        held, self.held = self.held, []
        for job, d in held:
            d.callback([RecipientResult(r.index, status, code, text)
                        for r, _ in job.recipients])

    def addresses(self):
        """
        @return: C{[(queue, [addresses])]} of the jobs received.
        """
        return [(job.queue, [r.address for r, _ in job.recipients]) for job in self.jobs]


@implementer(IMailStore)
class FakeStore:
    """
    Mailboxes in memory.

    @ivar messages: C{[(account, mailbox, data, flags, deliveryId)]}.
    @ivar mailboxes: C{{account: set(names)}} besides INBOX.
    @ivar fail: when set, C{deliver} fails with it.
    @ivar usage: when not C{None}, C{accountSize} answers it.
    """

    def __init__(self):
        self.messages = []
        self.mailboxes = {}
        self.fail = None

    def deliver(self, account, mailbox, data, flags=(), internalDate=None, deliveryId=None):
        if self.fail is not None:
            raise self.fail
        if deliveryId is not None and self.hasDelivery(account, mailbox, deliveryId):
            return succeed(0)
        self.messages.append((account, mailbox, data, tuple(flags), deliveryId))
        return succeed(len(self.messages))

    def hasDelivery(self, account, mailbox, deliveryId):
        return any(m[0] == account and m[1] == mailbox and m[4] == deliveryId
                   for m in self.messages)

    def mailboxExists(self, account, mailbox):
        return mailbox == "INBOX" or mailbox in self.mailboxes.get(account, ())

    def createMailbox(self, account, mailbox):
        self.mailboxes.setdefault(account, set()).add(mailbox)
        return succeed(None)


class SizedStore(FakeStore):
    """
    A store that tells its usage (for quota checks), as the Maildir store
    does.
    """

    usage = 0

    def accountUsage(self, account):
        return (self.usage, 1)


class FakeOutcome:
    """
    A rules outcome with the attributes of the contract.
    """

    def __init__(self, **kw):
        self.store = [("INBOX", ())]
        self.discard = False
        self.reject = None
        self.redirect = []
        self.forward = []
        self.mirror = []
        self.replies = []
        self.addHeaders = []
        self.flags = []
        self.execute = []
        self.remember = []
        self.stopped = False
        for key, value in kw.items():
            setattr(self, key, value)


def makeQueue(case, clock=None, serverRules=None, directory=None, **settings):
    """
    A started L{MessageQueue} over a fresh directory (C{main.dom} with
    C{postmaster}, C{alice} and C{bob}; C{other.dom} with C{carol}) and a
    real Router.

    @param settings: C{QUEUE} module settings to store first.
    @return: C{(queue, directory, clock)}.
    """
    if directory is None:
        directory = makeDirectory(case)
        for address in ("alice@main.dom", "bob@main.dom"):
            case.successResultOf(directory.createAccount(address))
        case.successResultOf(directory.createDomain("other.dom"))
        case.successResultOf(directory.createAccount("carol@other.dom"))
    if settings:
        case.successResultOf(directory.setServerDict("Modules", {"QUEUE": settings},
                                                     update=True))
    clock = clock or Clock()
    if clock.seconds() == 0:
        clock.advance(1795000000)
    queue = MessageQueue(directory.storage.base, directory.storage.writer, Router(directory),
                         directory, clock=clock, serverRules=serverRules or (lambda *a: None))
    return queue, directory, clock


def reopen(case, queue, serverRules=None):
    """
    A new queue on the same folder, as after a crash (the old one is
    abandoned as it is).
    """
    return MessageQueue(queue.base, queue.writer, queue.router, queue.directory,
                        clock=queue.clock, serverRules=serverRules or (lambda *a: None))
