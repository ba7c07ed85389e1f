# -*- test-case-name: tests.test_service -*-
"""
Tests for L{cgpro.service} and L{cgpro.listeners}: the service tree built
from the port table, on a L{MemoryReactorClock} (no real port is opened).
"""

import io
import shutil
import tempfile

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from cgpro.cli.protocol import CLIFactory
from cgpro.service import StartupError, makeRootService


class UDPMemoryReactor(MemoryReactorClock):
    """
    L{MemoryReactorClock} with C{listenUDP} (the SIP rows), recorded in
    C{udpPorts} as C{(port, protocol, interface, maxPacketSize)}.
    """

    def __init__(self):
        MemoryReactorClock.__init__(self)
        self.udpPorts = []

    def listenUDP(self, port, protocol, interface="", maxPacketSize=8192):
        self.udpPorts.append((port, protocol, interface, maxPacketSize))
        return self.listenTCP(port, None, interface=interface)


class ServiceTreeTests(SynchronousTestCase):
    """
    makeRootService: children, listeners, first start.
    """

    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="cgpro-svc-")
        self.addCleanup(shutil.rmtree, self.base, True)
        self.reactor = UDPMemoryReactor()
        self.out = io.StringIO()

    def make(self, **kw):
        kw.setdefault("domain", "main.dom")
        root = makeRootService(base=self.base, reactor=self.reactor, out=self.out, **kw)
        return root

    def test_children(self):
        """The root holds storage and listeners; one MultiService per built module."""
        root = self.make(postmasterPassword="pw")
        self.assertEqual([s.name for s in root],
                         ["storage", "queue", "media", "mediaServer", "signal", "pbx",
                          "listeners"])
        listeners = root.getServiceNamed("listeners")
        self.assertEqual(sorted(s.name for s in listeners),
                         ["cli", "imap", "lmtp", "metrics", "pop", "sip", "smtp", "snmp",
                          "submission", "syslog"])
        self.assertEqual(sorted(s.name for s in listeners.getServiceNamed("sip")),
                         ["sip-tcp", "sip-udp", "sips"])
        self.assertEqual(sorted(s.name for s in listeners.getServiceNamed("smtp")),
                         ["smtp", "smtps"])
        self.assertEqual([s.name for s in listeners.getServiceNamed("cli")], ["cli"])

    def test_everyRowAccountedFor(self):
        """Every row is listening, disabled or unavailable: none skipped silently."""
        root = self.make(postmasterPassword="pw", portOffset=10000)
        root.privilegedStartService()
        root.startService()
        self.addCleanup(root.stopService)
        listeners = root.getServiceNamed("listeners")
        rows = listeners.listListeners()
        self.assertEqual(rows["cli"]["State"], "listening")
        self.assertEqual(rows["smtp"]["State"], "listening")
        self.assertEqual(rows["imap"]["State"], "listening")
        self.assertEqual(rows["xmpp"]["State"], "unavailable")
        self.assertEqual(rows["tftp"]["State"], "disabled")
        self.assertEqual(set(r["State"] for r in rows.values()),
                         {"listening", "unavailable", "disabled"})
        servers = {port: (factory, interface) for port, factory, _, interface in
                   self.reactor.tcpServers}
        self.assertEqual(sorted(servers),
                         [10024, 10025, 10106, 10110, 10143, 10161, 10465, 10514, 10587,
                          10993, 10995, 15060, 15061, 19106])
        self.assertEqual(sorted(port for port, _, _, _ in self.reactor.udpPorts),
                         [10161, 10514, 15060])
        self.assertEqual(rows["sip-udp"]["State"], "listening")
        factory, interface = servers[10106]
        self.assertEqual(interface, "127.0.0.1")
        self.assertIsInstance(factory, CLIFactory)

    def test_generatedPassword(self):
        """Without a password the first start generates one and prints it once."""
        self.make()
        self.assertIn("postmaster password:", self.out.getvalue())
        self.out.truncate(0)
        self.make()
        self.assertEqual(self.out.getvalue().strip("\0"), "")

    def test_offsetTooLarge(self):
        """An offset pushing a listener past 65535 is a start-up error naming it."""
        e = self.assertRaises(StartupError, self.make, postmasterPassword="pw", portOffset=60000)
        self.assertIn("listener", str(e))
        self.assertIn("65535", str(e))

    def test_mediaPorts(self):
        """--media-ports sets the Port Allocation range; junk is refused."""
        root = self.make(postmasterPassword="pw", mediaPorts="40000-40100")
        self.assertEqual(root.context.mediaPorts, (40000, 40100))
        self.assertRaises(StartupError, self.make, mediaPorts="x")

    def test_badRouterTable(self):
        """A damaged stored Router table stops the start with its line number."""
        self.make(postmasterPassword="pw")
        with open(self.base + "/Settings/Router.table", "w") as f:
            f.write("<a@b> = c@d\nthis is not a record\n")
        e = self.assertRaises(StartupError, self.make)
        self.assertIn("line 2", str(e))


class ListenerChangeTests(SynchronousTestCase):
    """
    Listener rows change while the server runs.
    """

    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="cgpro-svc-")
        self.addCleanup(shutil.rmtree, self.base, True)
        self.reactor = UDPMemoryReactor()
        self.root = makeRootService(base=self.base, reactor=self.reactor, domain="main.dom",
                                    postmasterPassword="pw", out=io.StringIO())
        self.root.getServiceNamed("storage").writer.synchronous = True
        self.root.getServiceNamed("storage").startService = lambda: None
        self.root.privilegedStartService()
        self.root.startService()
        self.listeners = self.root.getServiceNamed("listeners")

    def test_moveListener(self):
        """UPDATELISTENER moves a port and stores the override; a restart keeps it."""
        self.successResultOf(self.listeners.updateListener("cli", {"port": 1106}))
        self.assertEqual(self.listeners.listListeners()["cli"]["Port"], 1106)
        self.assertEqual(self.reactor.tcpServers[-1][0], 1106)
        again = makeRootService(base=self.base, reactor=MemoryReactorClock(), out=io.StringIO())
        self.assertEqual(again.getServiceNamed("listeners").specs["cli"].port, 1106)

    def test_addAndDelete(self):
        """A new row starts at once; deleting it stops it."""
        self.successResultOf(self.listeners.updateListener(
            "cli2", {"module": "cli", "transport": "tcp", "address": "127.0.0.1", "port": 2106}))
        self.assertEqual(self.listeners.listListeners()["cli2"]["State"], "listening")
        self.successResultOf(self.listeners.deleteListener("cli2"))
        self.assertNotIn("cli2", self.listeners.listListeners())

    def test_disable(self):
        """enabled=NO stops a listener."""
        self.successResultOf(self.listeners.updateListener("cli", {"enabled": "NO"}))
        self.assertEqual(self.listeners.listListeners()["cli"]["State"], "disabled")

    def test_badChangeRefused(self):
        """An invalid row is refused and the old one keeps running."""
        from cgpro.core.errors import CLIError

        self.failureResultOf(self.listeners.updateListener("cli", {"port": 99999}), CLIError)
        self.assertEqual(self.listeners.listListeners()["cli"]["State"], "listening")
