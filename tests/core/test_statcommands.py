# -*- test-case-name: tests.core.test_statcommands -*-
"""
Tests for L{cgpro.core.statcommands}, over the CLI protocol on a
L{StringTransport}: the statistics commands read the figures the CLI
session itself reports (connections, commands, failed logins).
"""

from twisted.trial.unittest import SynchronousTestCase

from cgpro.core import dataformat
from cgpro.core.stats import CATALOG
from tests.cli.test_protocol import CLIProtocolTestsMixin, makeFactory


class StatCommandsTests(CLIProtocolTestsMixin, SynchronousTestCase):
    """
    C{GETSTATELEMENT}, C{GETSNMPELEMENT}, C{GETNEXTSTATNAME} and
    C{LISTSTATELEMENTS}.
    """

    def setUp(self):
        self.factory, self.clock = makeFactory(self)
        self.protocol, self.transport, _ = self.connect()
        self.login(self.protocol, self.transport)
        self.assertEqual(self.command("INLINE"), ["200 OK"])

    def command(self, line, protocol=None, transport=None):
        """
        @return: the response lines of one command line.
        """
        return self.send(protocol or self.protocol, transport or self.transport, line)

    def value(self, objectID, protocol=None, transport=None):
        """
        @return: the value C{GETSTATELEMENT} answers for C{objectID}.
        """
        [line] = self.command("GETSTATELEMENT %s" % (dataformat.dumps(objectID),), protocol,
                              transport)
        self.assertTrue(line.startswith("201 "), line)
        return dataformat.loads(line[4:], multiline=False)

    def test_connectionsAndSessions(self):
        """
        Each CLI connection counts once in C{cgpro_connections_total{module="cli"}}
        and is open in C{cgpro_sessions_active} until it is lost.
        """
        self.assertEqual(self.value("cgpro_connections_total/cli"), 1)
        other, otherTransport, _ = self.connect()
        self.assertEqual(self.value("cgpro_connections_total/cli"), 2)
        self.assertEqual(self.value("cgpro_sessions_active/cli"), 2)
        other.connectionLost(None)
        self.assertEqual(self.value("cgpro_sessions_active/cli"), 1)
        self.assertEqual(self.value("cgpro_connections_total"), 2)

    def test_commandsByResult(self):
        """
        Administrative commands count by the outcome the client saw: an
        unknown command and a refused one as errors; session commands
        (C{NOOP}, C{INLINE}) and the logins not at all.
        """
        self.assertEqual(self.value("cgpro_cli_commands_total/ok"), 0)
        self.assertEqual(self.command("LISTDOMAINS"), ["201 (main.dom)"])
        self.assertEqual(self.command("NOSUCHCOMMAND"), ["500 unknown command"])
        self.assertEqual(self.command("DELETEDOMAIN nowhere.dom"), ["501 unknown domain"])
        self.assertEqual(self.command("NOOP"), ["200 OK"])
        # the first GETSTATELEMENT and LISTDOMAINS; a GETSTATELEMENT
        # counts once it is answered, so each reading includes the ones before
        self.assertEqual(self.value("cgpro_cli_commands_total/ok"), 2)
        self.assertEqual(self.value("cgpro_cli_commands_total/error"), 2)
        self.assertEqual(self.value("cgpro_cli_commands_total"), 4 + 2)

    def test_authFailures(self):
        """
        A refused CLI login counts in C{cgpro_auth_failures_total{module="cli"}}.
        """
        other, otherTransport, _ = self.connect()
        self.send(other, otherTransport, "USER postmaster")
        self.send(other, otherTransport, "PASS wrong")
        self.clock.advance(1)
        self.assertEqual(otherTransport.value(), b"500 incorrect login or password\r\n")
        self.assertEqual(self.value("cgpro_auth_failures_total/cli"), 1)
        self.assertEqual(self.value("cgpro_auth_failures_total/smtp"), 0)

    def test_columnAndAlias(self):
        """
        The SNMP column number stands for a figure's name, and
        C{GETSNMPELEMENT} is C{GETSTATELEMENT}.
        """
        column = [entry[4] for entry in CATALOG if entry[0] == "cgpro_connections_total"][0]
        self.assertEqual(self.value("%d/cli" % (column,)), 1)
        self.assertEqual(self.command('GETSNMPELEMENT "cgpro_connections_total/cli"'),
                         ["201 #1"])

    def test_unknown(self):
        """
        A name outside the catalog, an unknown column, or more label values
        than the figure has labels: C{501 unknown statistics element}.
        """
        for objectID in ("cgpro_nothing", "9999", "cgpro_connections_total/cli/x", ""):
            self.assertEqual(
                self.command("GETSTATELEMENT %s" % (dataformat.dumps(objectID),)),
                ["501 unknown statistics element"], objectID)
        self.assertEqual(self.command("GETSTATELEMENT"),
                         ["501 syntax error: objectID expected"])

    def test_walk(self):
        """
        C{GETNEXTSTATNAME} from the empty name visits every figure in
        catalog order, each followed by its samples, then answers an
        empty string; every name it gives can be read.
        """
        names = []
        current = ""
        while True:
            [line] = self.command("GETNEXTSTATNAME %s" % (dataformat.dumps(current),))
            current = dataformat.loads(line[4:], multiline=False)
            if current == "":
                break
            names.append(current)
            self.assertLess(len(names), 1000)
        self.assertEqual([name for name in names if "/" not in name],
                         [entry[0] for entry in CATALOG])
        position = names.index("cgpro_connections_total")
        self.assertEqual(names[position + 1], "cgpro_connections_total/cli")
        for name in names:
            self.assertIsInstance(self.value(name), int, name)
        self.assertEqual(self.command('GETNEXTSTATNAME "cgpro_errors_total/cli/nothing"'),
                         ["501 unknown statistics element"])

    def test_list(self):
        """
        C{LISTSTATELEMENTS} is a dictionary of every element and its value.
        """
        [line] = self.command("LISTSTATELEMENTS")
        elements = dataformat.loads(line[4:], multiline=False)
        self.assertEqual(elements["cgpro_connections_total/cli"], 1)
        self.assertEqual(elements["cgpro_sessions_active"], 1)
        self.assertEqual(elements["cgpro_mail_bounced_total"], 0)
        self.assertTrue(set(entry[0] for entry in CATALOG) <= set(elements))

    def test_rights(self):
        """
        Statistics need the C{Monitors} or C{Settings} server right (or
        C{Master}): an ordinary user is refused.
        """
        self.assertEqual(self.command('CREATEACCOUNT user {Password="pw";}'), ["200 OK"])
        self.assertEqual(self.command('CREATEACCOUNT mon {Password="pw";}'), ["200 OK"])
        self.assertEqual(self.command("SETACCOUNTRIGHTS mon (Monitors)"), ["200 OK"])
        for name, expected in (("user", "501 not enough access rights"), ("mon", "201 #")):
            protocol, transport, _ = self.connect()
            self.send(protocol, transport, "USER %s" % (name,))
            self.assertEqual(self.send(protocol, transport, "PASS pw"), ["200 login OK"])
            self.send(protocol, transport, "INLINE")
            for command in ('GETSTATELEMENT "cgpro_connections_total"',
                            "GETNEXTSTATNAME cgpro_connections_total", "LISTSTATELEMENTS"):
                [line] = self.send(protocol, transport, command)
                if expected.startswith("201"):
                    self.assertTrue(line.startswith("201 "), (name, command, line))
                else:
                    self.assertEqual(line, expected, (name, command))
