# -*- test-case-name: tests.mail.imap.test_server -*-
"""
Fixtures for the IMAP tests: a server context over a real directory and a
real L{MailStore} in a temporary folder (synchronous writer, so every
store operation completes before the call returns), and a session driver
over a L{StringTransport} with a L{Clock}.
"""

import itertools

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from cgpro.core.context import ServerContext
from cgpro.core.router import Router
from cgpro.mail.imap.factory import IMAPFactory
from cgpro.store.maildir import MailStore
from tests.support.directory import makeDirectory

CLIENT_IP = "203.0.113.7"
USER = "user@main.dom"
OTHER = "other@main.dom"


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


def message(subject="hello", body="body text", sender="Ann <ann@example.com>",
            to="user@main.dom", extra=""):
    return ("From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: Mon, 16 Nov 2026 10:00:00 +0000\r\n"
            "Message-ID: <%s@example.com>\r\n%s\r\n%s\r\n" % (
                sender, to, subject, subject.replace(" ", "."), extra, body)).encode("utf-8")


def makeContext(case, clock=None, modules=None):
    """
    @return: a L{ServerContext} with C{user@main.dom}/C{pass},
        C{other@main.dom}/C{word} and a store (C{context.mailStore}).
    """
    clock = clock if clock is not None else Clock()
    directory = makeDirectory(case)
    case.successResultOf(directory.createAccount(USER, settings={"Password": "pass"}))
    case.successResultOf(directory.createAccount(OTHER, settings={"Password": "word"}))
    store = MailStore(directory.storage, directory.storage.writer, clock=clock)
    context = ServerContext(directory, Router(directory), clock, directory.storage.base,
                            tls=FakeTLS(), mailStore=store)
    if modules:
        case.successResultOf(directory.setServerDict("Modules", {"IMAP": modules}, update=True))
    return context


class Session:
    """
    Drives one server session.

    @ivar server: the L{IMAPServer}.
    """

    def __init__(self, case, context, tls="starttls", clock=None):
        from cgpro.core.ports import ListenerSpec

        spec = ListenerSpec(name="imap", module="imap", transport="tcp", address="127.0.0.1",
                            port=143, tls=tls)
        self.factory = IMAPFactory(context, spec, clock=clock or context.reactor)
        self.transport = TLSStringTransport(peerAddress=IPv4Address("TCP", CLIENT_IP, 50000))
        self.server = self.factory.buildProtocol(None)
        self.server.makeConnection(self.transport)
        self.greeting = self.take()
        self._tags = itertools.count(1)

    def take(self):
        value = self.transport.value().decode("utf-8", "replace")
        self.transport.clear()
        return value

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.server.dataReceived(data)
        return self.take()

    def command(self, text):
        """
        Send C{text} with a fresh tag.

        @return: C{(lines, tagged)}: the output lines and the tagged reply.
        """
        tag = "a%d" % next(self._tags)
        out = self.send("%s %s\r\n" % (tag, text))
        lines = out.split("\r\n")
        tagged = [line for line in lines if line.startswith(tag + " ")]
        return out, (tagged[-1][len(tag) + 1:] if tagged else None)

    def ok(self, case, text):
        out, tagged = self.command(text)
        case.assertTrue(tagged and tagged.startswith("OK"), "%s -> %r" % (text, out))
        return out

    def login(self, case, user="user", password="pass"):
        self.server.secure = True
        return self.ok(case, "LOGIN %s %s" % (user, password))
