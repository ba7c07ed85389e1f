# -*- test-case-name: tests.cli.test_protocol -*-
"""
Unit tests for L{cgpro.cli.protocol}: framing, login, dispatch, errors,
pipelining and throttling, over a L{StringTransport} with a L{Clock}.
"""

import hashlib

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

import cgpro.cli.factory  # noqa: F401  (registers the commands)
from cgpro.cli.protocol import CLIFactory
from cgpro.core.context import ServerContext
from cgpro.core.router import Router
from cgpro.core.throttle import LoginThrottle
from tests.support.directory import makeDirectory


def makeFactory(case):
    """
    A CLI factory over a real directory, with a Clock for timers.
    """
    directory = makeDirectory(case)
    clock = Clock()
    context = ServerContext(directory, Router(directory), clock, directory.storage.base)
    factory = CLIFactory(context, LoginThrottle(clock, limit=3), clock, idleTimeout=300,
                         maxLineLength=1000)
    return factory, clock


class CLIProtocolTestsMixin:
    """
    Helpers: connect, send lines, read response lines.
    """

    def connect(self):
        protocol = self.factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        greeting = transport.value().decode()
        transport.clear()
        return protocol, transport, greeting

    def send(self, protocol, transport, line):
        transport.clear()
        protocol.dataReceived(line.encode() + b"\r\n")
        return transport.value().decode().splitlines()

    def login(self, protocol, transport):
        self.send(protocol, transport, "USER postmaster")
        self.assertEqual(self.send(protocol, transport, "PASS secret"), ["200 login OK"])


class ProtocolTests(CLIProtocolTestsMixin, SynchronousTestCase):
    """
    The session: greeting, login, commands, errors.
    """

    def setUp(self):
        self.factory, self.clock = makeFactory(self)
        self.protocol, self.transport, self.greeting = self.connect()

    def test_greeting(self):
        """The greeting names the Main Domain and carries an APOP token."""
        self.assertRegex(
            self.greeting,
            r"^200 CommuniGate Pro at main\.dom PWD Server \S+ ready <\d+\.\d+\.[0-9a-f]+@main\.dom>\r\n$",
        )

    def test_userPass(self):
        """USER answers 300; PASS logs in."""
        self.assertEqual(self.send(self.protocol, self.transport, "USER postmaster"),
                         ["300 please send the PASS"])
        self.assertEqual(self.send(self.protocol, self.transport, "PASS secret"), ["200 login OK"])

    def test_apop(self):
        """APOP with md5(token + password) logs in; case of the digest does not matter."""
        token = self.greeting.split()[-1]
        digest = hashlib.md5((token + "secret").encode()).hexdigest().upper()
        self.assertEqual(self.send(self.protocol, self.transport, "APOP postmaster " + digest),
                         ["200 login OK"])

    def test_wrongPasswordDelayed(self):
        """A wrong password is answered 500 only after the failure delay."""
        self.send(self.protocol, self.transport, "USER postmaster")
        self.assertEqual(self.send(self.protocol, self.transport, "PASS nope"), [])
        self.transport.clear()
        self.clock.advance(1)
        self.assertEqual(self.transport.value(), b"500 incorrect login or password\r\n")
        self.flushLoggedErrors()

    def test_throttle(self):
        """After the limit even the right password is refused."""
        for _ in range(3):
            self.send(self.protocol, self.transport, "USER postmaster")
            self.send(self.protocol, self.transport, "PASS nope")
            self.clock.advance(1)
        self.send(self.protocol, self.transport, "USER postmaster")
        self.send(self.protocol, self.transport, "PASS secret")
        self.transport.clear()
        self.clock.advance(1)
        self.assertEqual(self.transport.value(), b"500 incorrect login or password\r\n")
        self.clock.advance(61)
        self.login(self.protocol, self.transport)

    def test_beforeLogin(self):
        """Commands before login get 500; unknown commands get 500 unknown command."""
        self.assertEqual(self.send(self.protocol, self.transport, "LISTDOMAINS"),
                         ["500 please log in first"])
        self.assertEqual(self.send(self.protocol, self.transport, "XYZZY"),
                         ["500 unknown command"])

    def test_dataResponses(self):
        """200 data follow without INLINE, 201 with it."""
        self.login(self.protocol, self.transport)
        self.assertEqual(self.send(self.protocol, self.transport, "ListDomains"),
                         ["200 data follow", "(main.dom)"])
        self.assertEqual(self.send(self.protocol, self.transport, "INLINE"), ["200 OK"])
        self.assertEqual(self.send(self.protocol, self.transport, "listdomains"),
                         ["201 (main.dom)"])

    def test_errors(self):
        """Syntax errors and refusals are 501 with a reason; the session goes on."""
        self.login(self.protocol, self.transport)
        [line] = self.send(self.protocol, self.transport, "CREATEACCOUNT {")
        self.assertTrue(line.startswith("501 syntax error: "), line)
        self.assertEqual(self.send(self.protocol, self.transport, "CREATEACCOUNT (a)"),
                         ["501 syntax error: account name must be a string"])
        self.assertEqual(self.send(self.protocol, self.transport, "GETACCOUNTSETTINGS nobody"),
                         ["501 unknown account"])
        self.assertEqual(self.send(self.protocol, self.transport, "LISTDOMAINS extra"),
                         ["501 syntax error: unexpected argument: extra"])
        self.assertEqual(self.send(self.protocol, self.transport, "NOOP"), ["200 OK"])

    def test_internalErrorHidden(self):
        """An unexpected exception is logged; the client sees only 501 internal error."""
        self.login(self.protocol, self.transport)
        self.factory.context.directory.listDomains = lambda: 1 / 0
        self.assertEqual(self.send(self.protocol, self.transport, "LISTDOMAINS"),
                         ["501 internal error"])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_lineTooLong(self):
        """An oversized line is refused and the next line is served."""
        self.login(self.protocol, self.transport)
        self.transport.clear()
        self.protocol.dataReceived(b"X" * 600)
        self.protocol.dataReceived(b"X" * 600)
        self.protocol.dataReceived(b"X\r\nNOOP\r\n")
        self.assertEqual(self.transport.value(), b"501 line too long\r\n200 OK\r\n")

    def test_pipelining(self):
        """Many commands in one write are answered in order."""
        self.login(self.protocol, self.transport)
        self.transport.clear()
        lines = b"".join(b"CREATEACCOUNT u%d\r\n" % i for i in range(50)) + b"INLINE\r\nLISTACCOUNTS\r\n"
        self.protocol.dataReceived(lines)
        out = self.transport.value().decode().splitlines()
        self.assertEqual(out[:51], ["200 OK"] * 51)
        self.assertTrue(out[51].startswith("201 {pbx=macnt;postmaster=macnt;u0=macnt;"))

    def test_quit(self):
        """QUIT answers and closes."""
        self.assertEqual(self.send(self.protocol, self.transport, "QUIT"),
                         ["200 CommuniGate Pro PWD connection closed"])
        self.assertTrue(self.transport.disconnecting)

    def test_idleTimeout(self):
        """An idle session is closed after the idle timeout."""
        self.protocol.callLater = self.clock.callLater
        self.protocol.setTimeout(300)
        self.clock.advance(301)
        self.assertTrue(self.transport.disconnecting)

    def test_lfOnly(self):
        """Bare LF line ends are accepted (the Perl client sends them)."""
        self.transport.clear()
        self.protocol.dataReceived(b"NOOP\n")
        self.assertEqual(self.transport.value(), b"200 OK\r\n")

    def test_authPlain(self):
        """AUTH PLAIN with a base64 initial response logs in."""
        import base64

        blob = base64.b64encode(b"\0postmaster\0secret").decode()
        self.assertEqual(self.send(self.protocol, self.transport, "AUTH PLAIN " + blob),
                         ["200 login OK"])


class RightsTests(CLIProtocolTestsMixin, SynchronousTestCase):
    """
    Access rights are checked on every command.
    """

    def setUp(self):
        self.factory, self.clock = makeFactory(self)
        admin, at, _ = self.connect()
        self.login(admin, at)
        for line in [
            "CREATEDOMAIN d.dom",
            'CREATEACCOUNT da@d.dom {Password="pw";}',
            "SETACCOUNTRIGHTS da@d.dom (Domain, CanCreateAccounts)",
            'CREATEACCOUNT user@d.dom {Password="pw";}',
            'CREATEACCOUNT other@d.dom',
        ]:
            self.assertEqual(self.send(admin, at, line), ["200 OK"], line)

    def as_(self, name):
        protocol, transport, _ = self.connect()
        self.send(protocol, transport, "USER " + name)
        self.assertEqual(self.send(protocol, transport, "PASS pw"), ["200 login OK"])
        return protocol, transport

    def test_domainAdmin(self):
        """A Domain Administrator works in his domain only."""
        p, t = self.as_("da@d.dom")
        self.assertEqual(self.send(p, t, "CREATEACCOUNT new1"), ["200 OK"])
        self.assertEqual(self.send(p, t, "LISTACCOUNTS")[1],
                         "{da=macnt;new1=macnt;other=macnt;user=macnt;}")
        denied = ["501 not enough access rights"]
        self.assertEqual(self.send(p, t, "CREATEACCOUNT x@main.dom"), denied)
        self.assertEqual(self.send(p, t, "CREATEDOMAIN e.dom"), denied)
        self.assertEqual(self.send(p, t, 'SETROUTERTABLE "<a@b>=c@d"'), denied)
        self.assertEqual(self.send(p, t, "SETACCOUNTRIGHTS user (Master)"), denied)
        self.assertEqual(self.send(p, t, "GETACCOUNTSETTINGS postmaster@main.dom"), denied)

    def test_restrictedSettingsKept(self):
        """A Domain Administrator's UPDATEACCOUNTSETTINGS skips keys he may not change."""
        p, t = self.as_("da@d.dom")
        self.assertEqual(self.send(p, t, "UPDATEACCOUNTSETTINGS user {RealName=U;MaxAccountSize=1G;}"),
                         ["200 OK"])
        self.assertEqual(self.send(p, t, "GETACCOUNTSETTINGS user")[1], "{RealName=U;}")

    def test_plainUser(self):
        """A user reads his own settings only and changes nothing else."""
        p, t = self.as_("user@d.dom")
        self.assertEqual(self.send(p, t, "GETACCOUNTSETTINGS user")[0], "200 data follow")
        denied = ["501 not enough access rights"]
        self.assertEqual(self.send(p, t, "GETACCOUNTSETTINGS other"), denied)
        self.assertEqual(self.send(p, t, "CREATEACCOUNT x"), denied)
        self.assertEqual(self.send(p, t, "LISTACCOUNTS"), denied)
        self.assertEqual(self.send(p, t, "UPDATEACCOUNTSETTINGS user {RealName=x;}"), denied)
        self.assertEqual(self.send(p, t, "VERIFYACCOUNTPASSWORD user PASSWORD pw"), ["200 OK"])
        self.assertEqual(self.send(p, t, "NEWPASS newpass1"), ["200 OK"])
