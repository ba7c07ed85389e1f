# -*- test-case-name: tests.mail.pop3.test_server -*-
"""
Fixtures for the POP3 tests: a server context over a real directory and a
real L{MailStore} in a temporary base folder (synchronous durable writer),
and a session driver over a L{StringTransport} with a L{Clock}.
"""

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionLost
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from cgpro.core.context import ServerContext
from cgpro.mail.pop3.factory import POP3Factory
from cgpro.store.maildir import MailStore
from tests.support.directory import makeDirectory

#: The address unit-test clients connect from.
CLIENT_IP = "203.0.113.5"

USER = "user@main.dom"
PASSWORD = "pass"
OTHER = "other@main.dom"


def message(subject="hello", body="body\r\n"):
    """
    @return: a small message with CRLF line ends.
    """
    return ("From: ann@example.com\r\nTo: user@main.dom\r\nSubject: %s\r\n\r\n%s"
            % (subject, body)).encode("utf-8")


class FakeTLS:
    """
    Stands for L{cgpro.core.tls.ServerTLS} where no handshake happens.
    """

    options = object()


class TLSStringTransport(StringTransport):
    """
    A L{StringTransport} on which STLS can be called.
    """

    tlsStarted = False

    def startTLS(self, options):
        self.tlsStarted = True
        self.tlsOptions = options


def makeContext(case, clock=None, tls=None, reactor=None):
    """
    A server context over a real directory (Main Domain C{main.dom} with
    C{user@main.dom} / C{pass} and C{other@main.dom} / C{word}) and a real
    mail store.
    """
    directory = makeDirectory(case)
    case.successResultOf(directory.createAccount(USER, settings={"Password": PASSWORD}))
    case.successResultOf(directory.createAccount(OTHER, settings={"Password": "word"}))
    clock = clock if clock is not None else Clock()
    if reactor is None:
        reactor = clock
    store = MailStore(directory.storage, directory.storage.writer, clock=reactor)
    return ServerContext(directory, None, reactor, directory.storage.base,
                         tls=tls if tls is not None else FakeTLS(), mailStore=store)


def deliver(case, context, *messages, account=USER):
    """
    Deliver messages into an account's INBOX.

    @return: their UIDs.
    """
    return [case.successResultOf(context.mailStore.deliver(account, "INBOX", data))
            for data in messages]


def setModule(case, context, values, module="POP"):
    """
    Store module settings as C{UPDATEMODULE} would.
    """
    modules = context.directory.getServerDict("Modules")
    current = dict(modules.get(module) or {})
    current.update(values)
    case.successResultOf(context.directory.setServerDict("Modules", {module: current},
                                                         update=True))


class Spec:
    """
    The parts of a L{cgpro.core.ports.ListenerSpec} the factory reads.
    """

    def __init__(self, tls="starttls", name="pop3"):
        self.tls = tls
        self.name = name


def makeFactory(context, tls="starttls", clock=None):
    return POP3Factory(context, Spec(tls), clock=clock)


class Session:
    """
    Drives one server session over a L{TLSStringTransport}.

    @ivar greeting: the greeting line.
    """

    def __init__(self, factory, ip=CLIENT_IP):
        self.factory = factory
        self.transport = TLSStringTransport(peerAddress=IPv4Address("TCP", ip, 40000))
        self.server = factory.buildProtocol(self.transport.getPeer())
        self.server.makeConnection(self.transport)
        self.greeting = self.read()[0]

    def pump(self):
        """
        Let a registered pull producer write everything.
        """
        while self.transport.producer is not None:
            self.transport.producer.resumeProducing()

    def raw(self):
        self.pump()
        value = self.transport.value()
        self.transport.clear()
        return value

    def read(self):
        return self.raw().decode("utf-8", "replace").split("\r\n")[:-1]

    def send(self, data):
        """
        Send bytes (or text) and return the response lines.
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
        self.server.connectionLost(Failure(ConnectionLost()))

    def login(self, user=USER, password=PASSWORD):
        """
        STLS (unless secure already), USER and PASS; return the PASS
        response.
        """
        if not self.server.secure:
            assert self.cmd("STLS")[0].startswith("+OK")
        assert self.cmd("USER " + user)[0].startswith("+OK")
        return self.cmd("PASS " + password)
