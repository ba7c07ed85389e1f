# -*- test-case-name: tests.core.test_ports -*-
"""
Tests for L{cgpro.core.ports}: the shipped port table and row validation.
"""

import os

from twisted.trial.unittest import SynchronousTestCase

from cgpro.core.ports import (
    PortTable,
    PortTableError,
    defaultEtcDir,
    parseMediaPorts,
    specFromDict,
)

#: (name, module, transport, port, tls) of every row the issue names.
EXPECTED = [
    ("smtp", "smtp", "tcp", 25, "starttls"),
    ("smtps", "smtp", "tcp", 465, "implicit"),
    ("submission", "submission", "tcp", 587, "starttls"),
    ("lmtp", "lmtp", "tcp", 24, "no"),
    ("pop3", "pop", "tcp", 110, "starttls"),
    ("pop3s", "pop", "tcp", 995, "implicit"),
    ("imap", "imap", "tcp", 143, "starttls"),
    ("imaps", "imap", "tcp", 993, "implicit"),
    ("ldap", "ldap", "tcp", 389, "starttls"),
    ("ldaps", "ldap", "tcp", 636, "implicit"),
    ("acap", "acap", "tcp", 674, "no"),
    ("sip-udp", "sip", "udp", 5060, "no"),
    ("sip-tcp", "sip", "tcp", 5060, "no"),
    ("sips", "sip", "tcp", 5061, "implicit"),
    ("xmpp", "xmpp", "tcp", 5222, "starttls"),
    ("xmpps", "xmpp", "tcp", 5223, "implicit"),
    ("webadmin", "webadmin", "tcp", 8010, "no"),
    ("webadmins", "webadmin", "tcp", 9010, "implicit"),
    ("webuser", "webuser", "tcp", 8100, "no"),
    ("webusers", "webuser", "tcp", 9100, "implicit"),
    ("ximss", "ximss", "tcp", 11024, "starttls"),
    ("ximsss", "ximss", "tcp", 11025, "implicit"),
    ("cli", "cli", "tcp", 106, "no"),
    ("ftp", "ftp", "tcp", 21, "starttls"),
    ("ftp-alt", "ftp", "tcp", 8021, "starttls"),
    ("tftp", "tftp", "udp", 69, "no"),
    ("snmp", "snmp", "udp", 161, "no"),
    ("syslog", "syslog", "udp", 514, "no"),
    ("metrics", "metrics", "tcp", 9106, "no"),
]


class ShippedTableTests(SynchronousTestCase):
    """
    etc/ports.conf holds every row of the CommuniGate port table.
    """

    def setUp(self):
        self.table = PortTable.fromFile(os.path.join(defaultEtcDir(), "ports.conf"))

    def test_everyRow(self):
        """Each expected row is present with its module, transport, port and TLS."""
        specs = self.table.specs()
        for name, module, transport, port, tls in EXPECTED:
            spec = specs[name]
            self.assertEqual((spec.module, spec.transport, spec.port, spec.tls),
                             (module, transport, port, tls), name)

    def test_mediaPorts(self):
        """The RTP Port Allocation range defaults to 60000-60099."""
        self.assertEqual(self.table.mediaPorts, (60000, 60099))

    def test_cliOnLoopback(self):
        """The CLI listens on loopback by default."""
        self.assertEqual(self.table.specs()["cli"].address, "127.0.0.1")

    def test_offset(self):
        """The offset moves every port; past 65535 the error names the row."""
        spec = self.table.specs()["ximsss"]
        self.assertEqual(spec.withOffset(1000).port, 12025)
        e = self.assertRaises(PortTableError, spec.withOffset, 60000)
        self.assertIn("listener ximsss", str(e))

    def test_overrides(self):
        """Overrides change, add and delete rows."""
        table = self.table.withOverride("cli", {"port": 8106})
        table = table.withOverride("extra", {"module": "cli", "transport": "tcp", "port": 1106})
        table = table.withOverride("tftp", None)
        specs = table.specs()
        self.assertEqual(specs["cli"].port, 8106)
        self.assertEqual(specs["extra"].port, 1106)
        self.assertNotIn("tftp", specs)
        self.assertEqual(self.table.specs()["cli"].port, 106)


class RowTests(SynchronousTestCase):
    """
    Validation of single rows.
    """

    def test_bad(self):
        """Bad rows are refused with the row's name in the message."""
        for row in [
            {"module": "x", "transport": "sctp", "port": 1},
            {"module": "x", "transport": "udp", "port": 1, "tls": "implicit"},
            {"module": "x", "transport": "tcp", "port": 70000},
            {"module": "x", "transport": "tcp", "port": "abc"},
            {"module": "x", "transport": "tcp", "port": 1, "address": "nowhere"},
            {"module": "x", "transport": "tcp", "port": 1, "enabled": "maybe"},
            {"transport": "tcp", "port": 1},
            "junk",
        ]:
            e = self.assertRaises(PortTableError, specFromDict, "row1", row)
            self.assertIn("row1", str(e))

    def test_endpoint(self):
        """TCP endpoint strings escape IPv6 colons."""
        spec = specFromDict("a", {"module": "cli", "transport": "tcp", "port": "106",
                                  "address": "::1"})
        self.assertEqual(spec.endpoint(), "tcp:port=106:interface=\\:\\:1")

    def test_mediaRange(self):
        """LOW-HIGH parses; junk and empty ranges are refused."""
        self.assertEqual(parseMediaPorts("40000-40100"), (40000, 40100))
        for bad in ["x", "5-4", "0-10", "1-70000", "100"]:
            self.assertRaises(PortTableError, parseMediaPorts, bad)
