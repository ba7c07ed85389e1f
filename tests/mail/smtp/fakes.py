# -*- test-case-name: tests.mail.smtp.test_server -*-
"""
Fakes and helpers for the SMTP server tests: a queue that keeps messages
in memory (passing L{verifyObject}), a transport that can "start TLS", a
DNS resolver answering from a dictionary, and a session driver over a
L{StringTransport} with a L{Clock}.
"""

import itertools

from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.names import dns, error
from zope.interface import implementer

from cgpro.core.context import ServerContext
from cgpro.core.envelope import RecipientResult
from cgpro.core.interfaces import IIncomingMessage, IMessageQueue
from cgpro.core.router import Router
from cgpro.mail.smtp.factory import SMTPFactory
from cgpro.mail.smtp.lmtp import LMTPServer
from tests.support.directory import makeDirectory

#: The address unit-test clients connect from (TEST-NET-3: no list has it).
CLIENT_IP = "203.0.113.5"


@implementer(IIncomingMessage)
class FakeIncoming:
    """
    A message being received, kept in memory.

    @ivar state: C{"open"}, C{"committing"}, C{"committed"} or
        C{"aborted"}.
    """

    def __init__(self, queue, messageId):
        self.queue = queue
        self.id = messageId
        self.size = 0
        self.state = "open"
        self.envelope = None
        self._chunks = []

    @property
    def data(self):
        return b"".join(self._chunks)

    def write(self, data):
        assert self.state == "open", "write after %s" % (self.state,)
        self._chunks.append(bytes(data))
        self.size += len(data)

    def commit(self, envelope):
        assert self.state == "open", "commit after %s" % (self.state,)
        self.envelope = envelope
        if self.queue.failCommits:
            self.state = "aborted"
            return defer.fail(IOError("disk full"))
        self.state = "committing"
        d = defer.Deferred()
        self.queue.pendingCommits.append((self, d))
        if not self.queue.holdCommits:
            self.finishCommit()
        return d

    def finishCommit(self):
        for index, (incoming, d) in enumerate(self.queue.pendingCommits):
            if incoming is self:
                del self.queue.pendingCommits[index]
                self.state = "committed"
                self.queue.committed.append(self)
                d.callback(self.id)
                return

    def abort(self):
        assert self.state in ("open", "aborted"), "abort after %s" % (self.state,)
        self.state = "aborted"


@implementer(IMessageQueue)
class FakeQueue:
    """
    @ivar received: every L{FakeIncoming} handed out.
    @ivar committed: those committed, in order.
    @ivar holdCommits: leave commits pending until C{finishCommit}.
    @ivar results: queue id -> list of L{RecipientResult} for L{whenDone};
        without an entry, every recipient is delivered.
    """

    def __init__(self, firstId=90001):
        self._ids = itertools.count(firstId)
        self.received = []
        self.committed = []
        self.pendingCommits = []
        self.holdCommits = False
        self.failCommits = False
        self.results = {}
        self.waiting = {}
        self.channels = []
        self.submitted = []

    def receive(self):
        incoming = FakeIncoming(self, str(next(self._ids)))
        self.received.append(incoming)
        return incoming

    def submit(self, envelope, data):
        self.submitted.append((envelope, data))
        return defer.succeed(str(next(self._ids)))

    def whenDone(self, messageId):
        if messageId in self.results:
            results = self.results[messageId]
            if isinstance(results, defer.Deferred):
                return results
            return defer.succeed(results)
        incoming = [m for m in self.committed if m.id == messageId][0]
        return defer.succeed([RecipientResult(r.index, "delivered", 250, "2.0.0 delivered")
                              for r in incoming.envelope.recipients])

    def registerChannel(self, channel):
        self.channels.append(channel)

    @property
    def aborted(self):
        return [m for m in self.received if m.state == "aborted"]


class FakeTLS:
    """
    Stands for L{cgpro.core.tls.ServerTLS} where no handshake happens.
    """

    options = object()


class TLSStringTransport(StringTransport):
    """
    A L{StringTransport} on which STARTTLS can be called.
    """

    tlsStarted = False

    def startTLS(self, options):
        self.tlsStarted = True
        self.tlsOptions = options


class FakeResolver:
    """
    Answers DNS queries from dictionaries: C{(kind, name)} -> list of
    values, or an exception instance to fail with, a L{defer.Deferred} the
    test fires, or C{"hang"} for a query that never answers.  Unknown names are NXDOMAIN.
    """

    def __init__(self, records=None):
        self.records = dict(records or {})
        self.queries = []

    def _answer(self, kind, name, make):
        name = name.rstrip(".").lower()
        self.queries.append((kind, name))
        value = self.records.get((kind, name))
        if value is None:
            return defer.fail(error.DNSNameError(name))
        if isinstance(value, defer.Deferred):
            return value
        if value == "hang":
            return defer.Deferred()
        if isinstance(value, Exception):
            return defer.fail(value)
        answers = [dns.RRHeader(name.encode(), type=t, payload=p)
                   for t, p in (make(v) for v in value)]
        return defer.succeed((answers, [], []))

    def lookupText(self, name, timeout=None):
        return self._answer("TXT", name, lambda v: (dns.TXT, dns.Record_TXT(v.encode())))

    def lookupAddress(self, name, timeout=None):
        return self._answer("A", name, lambda v: (dns.A, dns.Record_A(v)))

    def lookupIPV6Address(self, name, timeout=None):
        return self._answer("AAAA", name, lambda v: (dns.AAAA, dns.Record_AAAA(v)))

    def lookupMailExchange(self, name, timeout=None):
        return self._answer("MX", name,
                            lambda v: (dns.MX, dns.Record_MX(v[0], v[1].encode())))

    def lookupPointer(self, name, timeout=None):
        return self._answer("PTR", name, lambda v: (dns.PTR, dns.Record_PTR(v.encode())))


def makeContext(case, clock=None, tls=None, queue=None):
    """
    A server context over a real directory (Main Domain C{main.dom} with
    C{user@main.dom} / C{pass}, C{other@main.dom} / C{word}) and a
    L{FakeQueue}.
    """
    directory = makeDirectory(case)
    case.successResultOf(directory.createAccount("user@main.dom", settings={"Password": "pass"}))
    case.successResultOf(directory.createAccount("other@main.dom", settings={"Password": "word"}))
    clock = clock if clock is not None else Clock()
    return ServerContext(directory, Router(directory), clock, directory.storage.base,
                         tls=tls if tls is not None else FakeTLS(),
                         queue=queue if queue is not None else FakeQueue())


def setModule(case, context, values, module="SMTP"):
    """
    Store module settings as C{UPDATEMODULE} would.
    """
    modules = context.directory.getServerDict("Modules")
    current = dict(modules.get(module) or {})
    current.update(values)
    case.successResultOf(context.directory.setServerDict("Modules", {module: current},
                                                         update=True))


def setMain(case, context, values):
    case.successResultOf(context.directory.setServerDict("Main", values, update=True))


class Spec:
    """
    The parts of a L{cgpro.core.ports.ListenerSpec} the factory reads.
    """

    def __init__(self, tls="starttls", name="smtp"):
        self.tls = tls
        self.name = name


def makeFactory(context, tls="starttls", lmtp=False, submission=False, resolver=None):
    return SMTPFactory(context, Spec(tls), requireAuth=submission,
                       module="LMTP" if lmtp else "SMTP",
                       serverClass=LMTPServer if lmtp else None,
                       clock=context.reactor, resolver=resolver)


class Session:
    """
    Drives one server session over a L{TLSStringTransport}.

    @ivar greeting: the greeting lines.
    """

    def __init__(self, factory, ip=CLIENT_IP):
        self.factory = factory
        self.transport = TLSStringTransport(peerAddress=IPv4Address("TCP", ip, 40000))
        self.server = factory.buildProtocol(self.transport.getPeer())
        self.server.makeConnection(self.transport)
        self.greeting = self.read()

    def read(self):
        value = self.transport.value().decode("utf-8")
        self.transport.clear()
        return value.splitlines()

    def send(self, data):
        """
        Send bytes (or text, encoded as UTF-8) and return the reply lines.
        """
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.server.dataReceived(data)
        return self.read()

    def cmd(self, line):
        return self.send(line + "\r\n")

    @property
    def closed(self):
        return self.transport.disconnecting

    def lose(self):
        from twisted.internet.error import ConnectionLost
        from twisted.python.failure import Failure

        self.server.connectionLost(Failure(ConnectionLost()))

    def ehlo(self, name="client.example"):
        return self.cmd("EHLO " + name)

    def mail(self, sender="someone@example.com", rcpts=("user@main.dom",), body=None):
        """
        Run one transaction; return the reply lines after the data.
        """
        assert self.cmd("MAIL FROM:<%s>" % (sender,))[0].startswith("250"), sender
        for rcpt in rcpts:
            reply = self.cmd("RCPT TO:<%s>" % (rcpt,))
            assert reply[0].startswith("250"), reply
        assert self.cmd("DATA")[0].startswith("354")
        if body is None:
            body = "Subject: test\r\n\r\nhello\r\n"
        return self.send(body + ".\r\n")
