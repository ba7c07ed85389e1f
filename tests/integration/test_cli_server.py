# -*- test-case-name: tests.integration.test_cli_server -*-
"""
End-to-end tests of the server as it is run: C{twistd} in a child process,
spoken to over TCP on its CLI port (cli.md section 8 and beyond).

Every test starts its own server (L{tests.support.server.startServer}, about
0.7 s) on a fresh base folder, so failed-login throttling, the Router table
or a killed process in one test cannot leak into another.  Raw-socket tests
check bytes on the wire; the others use L{cgpro.cli.client.CLIClient}, the
client scripts use.
"""

import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

from twisted.trial.unittest import SynchronousTestCase

from cgpro.cli.client import CLIClient, CLIError, Keyword, apopDigest
from cgpro.core.dataformat import dumps, loads
from tests.support.server import (
    CHECKOUT,
    ServerProcess,
    freeOffset,
    portIsFree,
    serverEnvironment,
    startServer,
)

GREETING = re.compile(
    rb"\A200 CommuniGate Pro at main\.dom PWD Server \S+ ready (<[^<>\s@]+@main\.dom>)\r\n\Z"
)


class Wire:
    """
    A raw CLI connection: bytes out, response lines (with their line ends)
    in.
    """

    def __init__(self, sock):
        self.sock = sock
        self.reader = sock.makefile("rb")

    def send(self, data):
        """
        Send C{data} (C{str} is UTF-8 encoded) as is.
        """
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def rawLine(self):
        """
        @return: the next line from the server, line end included.
        @raise ConnectionError: if the server closed the connection.
        """
        line = self.reader.readline()
        if not line:
            raise ConnectionError("the server closed the connection")
        return line

    def line(self):
        """
        @return: the next line, decoded, without its CRLF (which is
            required).
        """
        raw = self.rawLine()
        if not raw.endswith(b"\r\n"):
            raise AssertionError("response line without CRLF: %r" % (raw,))
        return raw[:-2].decode("utf-8")

    def ask(self, command, end="\r\n"):
        """
        Send one command and return its status line.
        """
        self.send(command + end)
        return self.line()

    def close(self):
        self.reader.close()
        self.sock.close()


def openWire(server):
    """
    @return: C{(wire, token)}: a raw connection with its greeting read.
    """
    wire = Wire(server.connect())
    greeting = wire.rawLine()
    match = GREETING.match(greeting)
    if match is None:
        raise AssertionError("unexpected greeting %r" % (greeting,))
    return wire, match.group(1).decode("ascii")


def loginWire(server, user="postmaster", password="secret"):
    """
    @return: a raw connection logged in with USER/PASS (INLINE off).
    """
    wire, _ = openWire(server)
    assert wire.ask("USER " + user) == "300 please send the PASS"
    assert wire.ask("PASS " + password) == "200 login OK"
    return wire


def topLevelSeparators(text):
    """
    The C{=} and C{;} characters at depth 1 of a dictionary in the textual
    format, skipping quoted strings, datablocks and nested objects: what
    the Perl reader relies on, which wants C{key=value;} for every entry.
    """
    depth = 0
    inQuote = inBlock = False
    result = []
    index = 0
    while index < len(text):
        char = text[index]
        if inQuote:
            if char == "\\":
                index += 1
            elif char == '"':
                inQuote = False
        elif inBlock:
            if char == "]":
                inBlock = False
        elif char == '"':
            inQuote = True
        elif char == "[":
            inBlock = True
        elif char in "({":
            depth += 1
        elif char in ")}":
            depth -= 1
        elif depth == 1 and char in "=;":
            result.append(char)
        index += 1
    return "".join(result)


# -- cli.md section 8 ---------------------------------------------------------------

class AcceptanceTests(SynchronousTestCase):
    """
    The eight acceptance tests of cli.md section 8.
    """

    def setUp(self):
        self.server = startServer(self)

    def test_referenceTranscript(self):
        """
        1: the section 3.4 transcript, byte for byte (LF-terminated commands).
        """
        wire, token = openWire(self.server)
        steps = [
            ("USER postmaster", [b"300 please send the PASS\r\n"]),
            ("PASS secret", [b"200 login OK\r\n"]),
            ('CreateAccount "user1"', [b"200 OK\r\n"]),
            ('CreateAccount "user1"', [b"501 Account with this name already exists\r\n"]),
            ('RenameAccount "user1" into "user2"', [b"200 OK\r\n"]),
            ('CreateDomain "client1.com"', [b"200 OK\r\n"]),
            ('CreateAccount "user1@client1.com" TextMailbox', [b"200 OK\r\n"]),
            ("ListDomains", [b"200 data follow\r\n", None]),
            ("QUIT", [b"200 CommuniGate Pro PWD connection closed\r\n"]),
        ]
        for command, expected in steps:
            wire.send(command + "\n")
            for want in expected:
                got = wire.rawLine()
                if want is None:
                    self.assertTrue(got.startswith(b"(") and got.endswith(b")\r\n"), got)
                    self.assertEqual(sorted(loads(got[:-2].decode())), ["client1.com", "main.dom"])
                else:
                    self.assertEqual(got, want, "answer to %r" % (command,))
        self.assertEqual(wire.reader.read(), b"", "the server closes after QUIT")
        client = self.server.client()
        self.assertEqual(sorted(client.listAccounts()), ["pbx", "postmaster", "user2"])
        self.assertEqual(client.listAccounts("client1.com"), {"user1": "macnt"})

    def test_greetingTokenUnique(self):
        """
        1: every greeting carries its own C{<...@main.dom>} APOP token.
        """
        tokens = set()
        for _ in range(5):
            wire, token = openWire(self.server)
            tokens.add(token)
            wire.close()
        self.assertEqual(len(tokens), 5)

    def test_apop(self):
        """
        2: APOP with the greeting token; a wrong digest is 5xx, the connection stays usable.
        """
        # the section 3.2 vector, computed as the client does
        self.assertEqual(
            apopDigest("<753.1213987978@cgate.mobimail.com.br>", "secret"),
            "dc0731aada3eb95fd4311dc32f7e0102",
        )
        wire, token = openWire(self.server)
        status = wire.ask("APOP postmaster " + apopDigest(token, "wrong"))
        self.assertRegex(status, r"^5\d\d ")
        status = wire.ask("APOP postmaster " + apopDigest(token, "secret").upper())
        self.assertRegex(status, r"^200 ")
        self.assertEqual(wire.ask("MAINDOMAINNAME"), "200 data follow")
        self.assertEqual(wire.line(), "main.dom")

        wire, token = openWire(self.server)
        self.assertRegex(wire.ask("APOP postmaster 0123456789abcdef0123456789abcdef"), r"^5\d\d ")
        self.assertEqual(wire.ask("USER postmaster"), "300 please send the PASS")
        self.assertEqual(wire.ask("PASS secret"), "200 login OK")

    def test_inlineEffectiveSettings(self):
        """
        3: INLINE GETACCOUNTEFFECTIVESETTINGS is one C{201 {...}} line with C{;} after every entry.
        """
        wire = loginWire(self.server)
        self.assertEqual(wire.ask("INLINE"), "200 OK")
        line = wire.ask("GETACCOUNTEFFECTIVESETTINGS postmaster")
        self.assertTrue(line.startswith("201 {") and line.endswith(";}"), line)
        body = line[4:]
        separators = topLevelSeparators(body)
        self.assertTrue(separators, body)
        self.assertEqual(separators, "=;" * (len(separators) // 2), body)
        settings = loads(body)
        self.assertEqual(len(settings), len(separators) // 2)
        self.assertIn("MaxAccountSize", settings)
        # nothing else was sent: the next answer belongs to the next command
        self.assertEqual(wire.ask("NOOP"), "200 OK")

    def test_accountDefaults(self):
        """
        4: explicit settings override domain defaults; C{default} removes a key.
        """
        client = self.server.client()
        client.createDomain("d.dom")
        client.createAccount("u@d.dom")
        client.command("UPDATEACCOUNTDEFAULTS", "d.dom", {"MaxAccountSize": "100M"})
        client.updateAccountSettings("u@d.dom", {"MaxAccountSize": "10M", "RealName": "J S"})
        self.assertEqual(
            client.getAccountSettings("u@d.dom"), {"MaxAccountSize": "10M", "RealName": "J S"}
        )
        self.assertEqual(client.getAccountEffectiveSettings("u@d.dom")["MaxAccountSize"], "10M")
        client.updateAccountSettings("u@d.dom", {"MaxAccountSize": "default"})
        self.assertEqual(client.getAccountSettings("u@d.dom"), {"RealName": "J S"})
        effective = client.getAccountEffectiveSettings("u@d.dom")
        self.assertEqual(effective["MaxAccountSize"], "100M")
        self.assertEqual(effective["RealName"], "J S")
        self.assertEqual(client.command("GETACCOUNTDEFAULTS", "d.dom"), {"MaxAccountSize": "100M"})

    def test_aliasRoutes(self):
        """
        5: an account alias routes to its account.
        """
        client = self.server.client()
        client.createAccount("u")
        client.raw('SETACCOUNTALIASES u ("323")')
        self.assertEqual(client.command("GETACCOUNTALIASES", "u"), ["323"])
        self.assertEqual(client.route("323@main.dom"), ["LOCAL", "u@main.dom", "u"])
        self.assertEqual(client.route("323@main.dom", "SIGNAL"), ["LOCAL", "u@main.dom", "u"])

    def test_routerTables(self):
        """
        6: router.md section 7 tables set with SETROUTERTABLE route as specified.
        """
        client = self.server.client()
        client.createDomain("example.com")
        for name in ("sales", "b", "c"):
            client.createAccount(name + "@example.com")
        client.command("SETACCOUNTTELNUMS", "c@example.com", ["+49301234567"])
        pbx = "pbx@main.dom"
        gateway = "192.168.1.2"
        cases = {
            # 7.1, each record alone
            "NoRelay:Signal:<1*@example.com> = 1*@192.168.1.2": [
                ("14155551234@example.com", "SIGNAL", ["SIP", gateway, "14155551234@192.168.1.2"]),
                ("14155551234@example.com", "MAIL", ["ERROR"]),
            ],
            "N:S:<(10+d)@example.com> = *@192.168.1.2": [
                ("4155551234@example.com", "SIGNAL", ["SIP", gateway, "4155551234@192.168.1.2"]),
                ("555123@example.com", "SIGNAL", ["ERROR"]),
                ("415555123a@example.com", "SIGNAL", ["ERROR"]),
                ("4155551234@other.org", "SIGNAL", ["SIP", "other.org", "4155551234@other.org"]),
            ],
            "N:S:<9*@example.com> = *@192.168.1.2": [
                ("95551234@example.com", "SIGNAL", ["SIP", gateway, "5551234@192.168.1.2"]),
            ],
            "N:S:<011*@example.com> = 011*@192.168.1.2": [
                ("011525553504672@example.com", "SIGNAL",
                 ["SIP", gateway, "011525553504672@192.168.1.2"]),
            ],
            "N:S:<+(10+d)*> = +*@192.168.1.2": [
                ("+525553504672@example.com", "SIGNAL",
                 ["SIP", gateway, "+525553504672@192.168.1.2"]),
                ("+14155551234@anything.net", "SIGNAL",
                 ["SIP", gateway, "+14155551234@192.168.1.2"]),
                ("+123456789@example.com", "SIGNAL", ["ERROR"]),
            ],
            # 7.2
            "<+74951234567@gateway.company.dom> = pbx#pbx@localhost\n"
            ";calls to (3 digits)@gateway.company.dom go to gatewayincoming,"
            " digits passed as parameter\n"
            "<(3d)@gateway.company.dom> = gatewayincoming{*}#pbx@localhost\n"
            ";all other calls go to the IVR\n"
            "<*@gateway.company.dom> = pbx#pbx@localhost\n": [
                ("+74951234567@gateway.company.dom", "SIGNAL", ["PBX", pbx, "pbx"]),
                ("123@gateway.company.dom", "SIGNAL", ["PBX", pbx, "gatewayincoming{123}"]),
                ("5551234@gateway.company.dom", "SIGNAL", ["PBX", pbx, "pbx"]),
            ],
            # 7.3
            "Signal:<7(10d)@*>=gatewaycaller{+7*,gwru}#pbx\n"
            "Signal:<1(10d)@*>=gatewaycaller{+1*,gwus}#pbx\n": [
                ("71234567890@example.com", "SIGNAL",
                 ["PBX", pbx, "gatewaycaller{+71234567890,gwru}"]),
                ("14155551234@example.com", "SIGNAL",
                 ["PBX", pbx, "gatewaycaller{+14155551234,gwus}"]),
                ("1415555123@example.com", "SIGNAL", ["ERROR"]),
                ("71234567890@example.com", "MAIL", ["ERROR"]),
            ],
            # 7.4
            "<+46(5-12d)@pstn> = gatewaycaller{+46*,gw1}#pbx\n"
            "<*@pstn>          = gatewaycaller{*,gw2}#pbx\n": [
                ("+46812345678@pstn", "SIGNAL", ["PBX", pbx, "gatewaycaller{+46812345678,gw1}"]),
                ("+4412345678@pstn", "SIGNAL", ["PBX", pbx, "gatewaycaller{+4412345678,gw2}"]),
                ("+461234@pstn", "SIGNAL", ["PBX", pbx, "gatewaycaller{+461234,gw2}"]),
            ],
            # 7.5 (27: the number is assigned to c@example.com)
            "<00(8-20d)@*> = +*@telnum\n"
            "<0(7-20d)@*> = +49*@telnum\n"
            "<(7d)@*> = localAreaCall{*}#pbx@localhost\n"
            "<911@*> = emergency#pbx@localhost\n": [
                ("5551234@example.com", "SIGNAL", ["PBX", pbx, "localAreaCall{5551234}"]),
                ("0301234567@example.com", "SIGNAL", ["LOCAL", "c@example.com", "c"]),
                ("911@example.com", "SIGNAL", ["PBX", pbx, "emergency"]),
                ("9110@example.com", "SIGNAL", ["ERROR"]),
            ],
            "<0(8-20d)@*> = localAreaCall{*,c}#pbx@localhost": [
                ("0301234567@example.com", "SIGNAL", ["PBX", pbx, "localAreaCall{301234567,c}"]),
            ],
            # 7.6
            "Mail:<info@example.com> = sales@example.com": [
                ("info@example.com", "SIGNAL", ["ERROR"]),
                ("info@example.com", "MAIL", ["LOCAL", "sales@example.com", "sales"]),
            ],
            "<a@example.com> = b@example.com ; old name": [
                ("a@example.com", "SIGNAL", ["LOCAL", "b@example.com", "b"]),
            ],
            "<a@example.com> = b@example.com\n<b@example.com> = c@example.com": [
                ("a@example.com", "SIGNAL", ["LOCAL", "c@example.com", "c"]),
            ],
            "<a@example.com> = b@example.com\n<b@example.com> = a@example.com": [
                ("a@example.com", "SIGNAL", ["ERROR", "", "routing loop"]),
            ],
        }
        for table, routes in cases.items():
            client.setRouterTable(table)
            self.assertEqual(client.getRouterTable().rstrip("\n"), table.rstrip("\n"))
            for address, kind, expected in routes:
                result = client.route(address, kind)
                self.assertEqual(
                    result[: len(expected)], expected,
                    "ROUTE %s %s with table %r" % (address, kind, table),
                )
                if expected == ["ERROR"]:
                    self.assertEqual(result[1], "")

    def test_badRouterTable(self):
        """
        6: a bad table gets C{501 router table line N: ...} and the old table stays.
        """
        client = self.server.client()
        good = "<(7d)@*> = localAreaCall{*}#pbx@localhost\n"
        client.setRouterTable(good)
        bad = {
            "; comment\n<a@b> = c\nR:<a@b> = c": 3,
            "<a@b> = c\n\n<a@b c": 3,
            "<a@b> = c\n<(3x)@b> = c": 2,
            "<a@b> = ; nothing": 1,
        }
        for table, number in bad.items():
            error = self.assertRaises(CLIError, client.setRouterTable, table)
            self.assertEqual(error.code, 501)
            self.assertTrue(
                error.text.startswith("router table line %d: " % (number,)), error.text
            )
            self.assertEqual(client.getRouterTable(), good)
            self.assertEqual(
                client.route("5551234@main.dom", "SIGNAL"),
                ["PBX", "pbx@main.dom", "localAreaCall{5551234}"],
            )

    def test_accountPassword(self):
        """
        7: both SETACCOUNTPASSWORD forms work; VERIFYACCOUNTPASSWORD matches only the password set.
        """
        client = self.server.client()
        client.createAccount("u")
        self.assertIsNone(client.raw('SETACCOUNTPASSWORD u TO "x"'))
        self.assertIsNone(client.raw('VERIFYACCOUNTPASSWORD u PASSWORD "x"'))
        self.assertIsNone(client.raw('SETACCOUNTPASSWORD u PASSWORD "z"'))
        self.assertIsNone(client.raw('VERIFYACCOUNTPASSWORD u PASSWORD "z"'))
        error = self.assertRaises(CLIError, client.raw, 'VERIFYACCOUNTPASSWORD u PASSWORD "y"')
        self.assertTrue(500 <= error.code < 600)
        error = self.assertRaises(CLIError, client.raw, 'VERIFYACCOUNTPASSWORD u PASSWORD "x"')
        self.assertTrue(500 <= error.code < 600)
        # the new password is the one that logs in
        self.server.client("u@main.dom", "z").quit()

    def test_nonInlineDataResponses(self):
        """
        8: without INLINE every data response is C{200 data follow} plus one data line.
        """
        client = self.server.client()
        client.createDomain("d.dom")
        client.createAccount("u@d.dom", {"RealName": "Line\nBreak", "Password": "p"})
        client.setRouterTable("; one\n<(7d)@*> = localAreaCall{*}#pbx@localhost\n")
        wire = loginWire(self.server)
        commands = [
            "LISTDOMAINS",
            "MAINDOMAINNAME",
            "LISTACCOUNTS d.dom",
            "GETACCOUNTSETTINGS u@d.dom",
            "GETACCOUNTEFFECTIVESETTINGS postmaster",
            "GETACCOUNTALIASES pbx",
            "GETACCOUNTRIGHTS postmaster",
            "GETROUTERTABLE",
            "ROUTE 200@main.dom",
            "GETDOMAINEFFECTIVESETTINGS d.dom",
            "LISTFORWARDERS d.dom",
            "GETVERSION",
        ]
        for command in commands:
            self.assertEqual(wire.ask(command), "200 data follow", command)
            data = wire.line()
            self.assertEqual(dumps(loads(data)), data, command)
        # the next answer is the NOOP's: no data line was left over
        self.assertEqual(wire.ask("NOOP"), "200 OK")


# -- logging in ---------------------------------------------------------------------

class LoginTests(SynchronousTestCase):
    """
    USER/PASS, APOP, failures and throttling.
    """

    def setUp(self):
        self.server = startServer(self)

    def test_userPass(self):
        """
        USER/PASS logs in, with or without the domain and with a quoted name.
        """
        for user in ("postmaster", "postmaster@main.dom", '"postmaster"'):
            wire, _ = openWire(self.server)
            self.assertEqual(wire.ask("USER " + user), "300 please send the PASS")
            self.assertEqual(wire.ask("PASS secret"), "200 login OK")
            self.assertEqual(wire.ask("LISTACCOUNTS"), "200 data follow")
            self.assertIn("postmaster", loads(wire.line()))

    def test_loginNames(self):
        """
        Accounts log in by any case of their name, or by an account alias.
        """
        admin = self.server.client()
        admin.createAccount("Mixed.Case@main.dom", {"Password": "mpw"})
        admin.setAccountAliases("mixed.case", ["mc"])
        for name in ("mixed.case", "MIXED.CASE@Main.Dom", "mc", "mc@main.dom"):
            for secure in (True, False):
                client = self.server.client(name, "mpw", secure=secure)
                self.assertEqual(client.getAccountSettings("mixed.case@main.dom"), {})
                client.quit()

    def test_clientLogins(self):
        """
        The client library logs in both ways and switches to INLINE.
        """
        for secure in (True, False):
            client = self.server.client(secure=secure)
            self.assertTrue(client.inline)
            self.assertEqual(client.listDomains(), ["main.dom"])
            client.quit()

    def test_wrongPassword(self):
        """
        A wrong password or unknown user is a delayed 5xx; the connection then logs in.
        """
        wire, token = openWire(self.server)
        self.assertEqual(wire.ask("USER postmaster"), "300 please send the PASS")
        started = time.monotonic()
        self.assertRegex(wire.ask("PASS wrong"), r"^5\d\d ")
        self.assertGreater(time.monotonic() - started, 0.3)
        self.assertEqual(wire.ask("USER nobody"), "300 please send the PASS")
        self.assertRegex(wire.ask("PASS secret"), r"^5\d\d ")
        self.assertRegex(wire.ask("APOP nobody " + apopDigest(token, "secret")), r"^5\d\d ")
        self.assertRegex(wire.ask("PASS secret"), r"^5\d\d ", "PASS without USER")
        self.assertEqual(wire.ask("USER postmaster"), "300 please send the PASS")
        self.assertEqual(wire.ask("PASS secret"), "200 login OK")
        self.assertEqual(wire.ask("INLINE"), "200 OK")
        self.assertEqual(wire.ask("LISTDOMAINS"), "201 (main.dom)")
        error = self.assertRaises(CLIError, self.server.client, password="bad")
        self.assertTrue(500 <= error.code < 600)

    def test_commandsBeforeLogin(self):
        """
        Before login, admin and unknown commands get C{500}; INLINE, NOOP and QUIT work.
        """
        wire, _ = openWire(self.server)
        for command in ("LISTDOMAINS", "CREATEACCOUNT x", "SETROUTERTABLE \"\"", "FROBNICATE",
                        "GETACCOUNTSETTINGS postmaster"):
            self.assertRegex(wire.ask(command), r"^500 ", command)
        self.assertEqual(wire.ask("NOOP"), "200 OK")
        self.assertEqual(wire.ask("INLINE"), "200 OK")
        self.assertEqual(wire.ask("QUIT"), "200 CommuniGate Pro PWD connection closed")
        client = self.server.client()
        self.assertEqual(sorted(client.listAccounts()), ["pbx", "postmaster"])

    def test_throttle(self):
        """
        After 10 failed logins from 127.0.0.1 even the right password is refused.
        """
        # the password really is right: check it before failing (a success
        # clears the address's record)
        self.server.client().quit()
        errors = []

        def fail():
            try:
                client = CLIClient("127.0.0.1", self.server.cliPort, timeout=20)
                client.connect()
                try:
                    client.login("postmaster", "wrong", secure=False)
                except CLIError as e:
                    errors.append(e.code)
                client.close()
            except Exception as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=fail) for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        self.assertEqual(len(errors), 10, errors)
        self.assertTrue(all(isinstance(e, int) and 500 <= e < 600 for e in errors), errors)

        for secure in (False, True):
            error = self.assertRaises(CLIError, self.server.client, secure=secure)
            self.assertTrue(500 <= error.code < 600)
        self.assertIn("too many failed logins", self.server.log())


class SessionSettingsTests(SynchronousTestCase):
    """
    The CLI's server settings take effect after a restart.
    """

    def test_sessionLimits(self):
        """
        CLIIdleTimeout, CLIMaxLineSize and LoginFailureLimit apply after a restart.
        """
        server = startServer(self)
        server.client().command("UPDATESERVERSETTINGS", {
            "CLIIdleTimeout": "2s", "CLIMaxLineSize": "1K", "LoginFailureLimit": "3",
        })
        server.restart()
        wire = loginWire(server)
        wire.send("CREATEACCOUNT " + "x" * 2000 + "\r\n")
        self.assertEqual(wire.line(), "501 line too long")
        self.assertEqual(wire.ask("NOOP"), "200 OK")
        started = time.monotonic()
        self.assertEqual(wire.line(), "500 idle timeout, closing the connection")
        self.assertGreater(time.monotonic() - started, 1.5)
        self.assertEqual(wire.reader.read(), b"")
        for _ in range(3):
            self.assertRaises(CLIError, server.client, password="wrong")
        error = self.assertRaises(CLIError, server.client)
        self.assertTrue(500 <= error.code < 600)


# -- bad input ----------------------------------------------------------------------

class BadInputTests(SynchronousTestCase):
    """
    Garbage, floods and rude clients get an error, never a dead session or
    a dead server.
    """

    def setUp(self):
        self.server = startServer(self)
        self.client = self.server.client()

    def assertStillServing(self):
        """
        The server still answers a fresh connection, and logged no traceback.
        """
        client = self.server.client()
        self.assertEqual(client.listDomains(), ["main.dom"])
        client.quit()
        self.assertNotIn("Traceback", self.server.log())

    def test_unknownCommand(self):
        """
        An unknown command is C{500 unknown command}; the session goes on.
        """
        wire = loginWire(self.server)
        self.assertEqual(wire.ask("FROBNICATE 1 2 3"), "500 unknown command")
        self.assertEqual(wire.ask("listdomainz"), "500 unknown command")
        self.assertEqual(wire.ask("LISTDOMAINS"), "200 data follow")
        self.assertEqual(wire.line(), "(main.dom)")

    def test_caseInsensitiveKeywords(self):
        """
        Command names and keywords are case-insensitive; LF and CRLF both end a line.
        """
        wire = loginWire(self.server)
        self.assertEqual(wire.ask("createaccount a", end="\n"), "200 OK")
        self.assertEqual(wire.ask("RenameAccount a Into b", end="\r\n"), "200 OK")
        self.assertEqual(wire.ask("inline"), "200 OK")
        self.assertEqual(wire.ask("LiStAcCoUnTs"), "201 {b=macnt;pbx=macnt;postmaster=macnt;}")

    def test_malformedData(self):
        """
        Unparsable arguments are C{501 syntax error...}; nothing is created.
        """
        for line in ("CREATEACCOUNT {", 'CREATEACCOUNT "unterminated', "CREATEACCOUNT u {a=b",
                     "CREATEACCOUNT u (1,2", "SETROUTERTABLE \"a\\", "CREATEACCOUNT u [zz!]"):
            error = self.assertRaises(CLIError, self.client.raw, line)
            self.assertEqual(error.code, 501, line)
            self.assertIn("syntax error", error.text, line)
        self.assertEqual(sorted(self.client.listAccounts()), ["pbx", "postmaster"])
        self.assertStillServing()

    def test_wrongArgumentTypes(self):
        """
        Arguments of the wrong type, missing or extra ones are C{501}.
        """
        self.client.createAccount("u")
        lines = [
            "CREATEACCOUNT (a)",
            "CREATEACCOUNT {a=b;}",
            "CREATEACCOUNT v (a, b)",
            "GETACCOUNTSETTINGS {a=b;}",
            "UPDATEACCOUNTSETTINGS u \"x\"",
            "UPDATEACCOUNTSETTINGS u (x)",
            "SETACCOUNTALIASES u \"323\"",
            "SETACCOUNTRIGHTS u {Master=YES;}",
            "SETROUTERTABLE (a, b)",
            "CREATEDOMAIN (x)",
            "CREATEACCOUNT",
            "GETACCOUNTSETTINGS",
            "RENAMEACCOUNT u v",
            "GETACCOUNTSETTINGS u extra",
            "LISTDOMAINS extra",
            "ROUTE u@main.dom NOWHERE",
            "SETACCOUNTPASSWORD u WITH x",
            "CREATEACCOUNT bad..name",
            "CREATEACCOUNT " + "x" * 300,
        ]
        for line in lines:
            error = self.assertRaises(CLIError, self.client.raw, line)
            self.assertEqual(error.code, 501, "%s -> %s" % (line, error))
        self.assertEqual(sorted(self.client.listAccounts()), ["pbx", "postmaster", "u"])
        self.assertEqual(self.client.getAccountSettings("u"), {})
        self.assertEqual(self.client.command("GETACCOUNTRIGHTS", "u"), [])
        self.assertStillServing()

    def test_oversizedLine(self):
        """
        A line over 16 MiB is C{501 line too long}; the connection answers the next command.
        """
        wire = loginWire(self.server)
        chunk = b"CREATEACCOUNT " + b"x" * (1 << 20)
        size = 0
        while size <= (16 << 20) + (1 << 20):
            wire.send(chunk)
            size += len(chunk)
        wire.send(b"\r\nLISTDOMAINS\r\n")
        self.assertEqual(wire.line(), "501 line too long")
        self.assertEqual(wire.line(), "200 data follow")
        self.assertEqual(wire.line(), "(main.dom)")
        self.assertEqual(sorted(self.client.listAccounts()), ["pbx", "postmaster"])
        # just under the limit is a line like any other (here: a bad name)
        line = b"CREATEACCOUNT " + b"y" * ((16 << 20) - 100)
        wire.send(line + b"\r\n")
        self.assertRegex(wire.line(), r"^501 (?!line too long)")
        self.assertEqual(wire.ask("NOOP"), "200 OK")
        self.assertStillServing()

    def test_pipelining(self):
        """
        300 commands in one write are answered in order, each seeing the ones before.
        """
        wire = loginWire(self.server)
        self.assertEqual(wire.ask("INLINE"), "200 OK")
        commands = []
        for i in range(150):
            commands.append('CREATEACCOUNT p%d {RealName="R%d";}' % (i, i))
            commands.append("GETACCOUNTSETTINGS p%d" % (i,))
        wire.send("".join(c + "\r\n" for c in commands))
        for i in range(150):
            self.assertEqual(wire.line(), "200 OK")
            self.assertEqual(wire.line(), '201 {RealName=R%d;}' % (i,))
        self.assertEqual(wire.ask("NOOP"), "200 OK")
        self.assertEqual(len(self.client.listAccounts()), 152)

    def test_rudeClients(self):
        """
        Clients vanishing mid-line, mid-command or mid-flood do not hurt the server.
        """
        # half a line, then gone
        wire = loginWire(self.server)
        wire.send("CREATEACCOUNT half")
        wire.close()
        # a command whose answer takes a while (password hashing), then gone
        wire = loginWire(self.server)
        wire.send('CREATEACCOUNT slow {Password="p";}\r\n')
        wire.close()
        # a flood of commands, then gone (RST on close)
        wire = loginWire(self.server)
        wire.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        wire.send("".join("CREATEACCOUNT f%d\r\n" % (i,) for i in range(500)))
        wire.close()
        # gone before the greeting is read, and before logging in
        self.server.connect().close()
        wire, _ = openWire(self.server)
        wire.send("USER postmaster\r\nPASS wro")
        wire.close()
        # the abandoned creation still completes (the account is listed at
        # once; its password record lands when the hashing thread is done)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client.verifyAccountPassword("slow", "p")
                break
            except CLIError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        accounts = self.client.listAccounts()
        self.assertIn("slow", accounts)
        self.assertNotIn("half", accounts)
        self.assertStillServing()


# -- access rights ------------------------------------------------------------------

class AccessRightsTests(SynchronousTestCase):
    """
    Domain administrators and plain users, end to end.
    """

    def setUp(self):
        self.server = startServer(self)
        admin = self.admin = self.server.client()
        admin.createDomain("d.dom")
        admin.createAccount("da@d.dom", {"Password": "dapw"})
        admin.command("SETACCOUNTRIGHTS", "da@d.dom", ["Domain", "CanCreateAccounts"])
        admin.createAccount("plain@d.dom", {"Password": "ppw", "RealName": "Plain User"})
        admin.createAccount("other@d.dom", {"Password": "opw", "RealName": "Other User"})
        admin.setRouterTable("<(7d)@*> = localAreaCall{*}#pbx@localhost")

    def assertRefused(self, client, *words):
        """
        The command is refused with C{501}.
        """
        error = self.assertRaises(CLIError, client.command, *words)
        self.assertEqual(error.code, 501, "%s -> %s" % (words, error))
        return error

    def test_domainAdministrator(self):
        """
        Domain + CanCreateAccounts: accounts in d.dom only; no domains, no Router table.
        """
        da = self.server.client("da@d.dom", "dapw")
        da.createAccount("n1@d.dom")
        da.createAccount("n2")  # his own domain
        da.deleteAccount("n1@d.dom")
        self.assertEqual(
            sorted(self.admin.listAccounts("d.dom")), ["da", "n2", "other", "plain"]
        )
        self.assertRefused(da, "CREATEACCOUNT", "x@main.dom")
        self.assertRefused(da, "DELETEACCOUNT", "pbx@main.dom")
        self.assertRefused(da, "CREATEDOMAIN", "e.dom")
        self.assertRefused(da, "SETROUTERTABLE", "<a@b.c> = d@e.f")
        self.assertRefused(da, "SETACCOUNTRIGHTS", "da@d.dom", ["Master"])
        self.assertRefused(da, "UPDATEACCOUNTSETTINGS", "postmaster@main.dom", {"RealName": "x"})
        self.assertEqual(self.admin.listDomains(), ["d.dom", "main.dom"])
        self.assertEqual(sorted(self.admin.listAccounts()), ["pbx", "postmaster"])
        self.assertEqual(self.admin.getRouterTable(), "<(7d)@*> = localAreaCall{*}#pbx@localhost")
        self.assertEqual(self.admin.command("GETACCOUNTRIGHTS", "da@d.dom"),
                         ["Domain", "CanCreateAccounts"])

    def test_plainUser(self):
        """
        A plain user reads his own settings only and creates nothing.
        """
        user = self.server.client("plain@d.dom", "ppw")
        self.assertEqual(user.getAccountSettings("plain@d.dom"), {"RealName": "Plain User"})
        self.assertEqual(user.getAccountSettings("plain"), {"RealName": "Plain User"})
        self.assertEqual(user.getAccountEffectiveSettings("plain@d.dom")["RealName"], "Plain User")
        self.assertRefused(user, "GETACCOUNTSETTINGS", "other@d.dom")
        self.assertRefused(user, "GETACCOUNTEFFECTIVESETTINGS", "other@d.dom")
        self.assertRefused(user, "GETACCOUNTSETTINGS", "postmaster@main.dom")
        self.assertRefused(user, "CREATEACCOUNT", "z@d.dom")
        self.assertRefused(user, "CREATEACCOUNT", "z@main.dom")
        self.assertRefused(user, "DELETEACCOUNT", "other@d.dom")
        self.assertRefused(user, "CREATEDOMAIN", "z.dom")
        self.assertRefused(user, "SETROUTERTABLE", "")
        self.assertRefused(user, "SETACCOUNTRIGHTS", "plain@d.dom", ["Master"])
        self.assertEqual(sorted(self.admin.listAccounts("d.dom")), ["da", "other", "plain"])
        self.assertEqual(self.admin.command("GETACCOUNTRIGHTS", "plain@d.dom"), [])


# -- persistence --------------------------------------------------------------------

def provision(client):
    """
    Fill a server with one of everything the CLI can store.

    @return: C{(domains, accounts, forwarders, groups)} to snapshot.
    """
    client.createDomain("p1.dom", {"MailToUnknown": "Rejected"})
    client.createDomain("p2.dom")
    client.command("SETDOMAINALIASES", "p2.dom", ["p2-alias.dom"])
    client.command("UPDATEDOMAINSETTINGS", "p2.dom", {"SignalToUnknown": "Rejected"})
    client.command("UPDATEACCOUNTDEFAULTS", "p1.dom",
                   {"MaxAccountSize": "50M", "RulesAllowed": "Any"})
    client.command("UPDATEACCOUNTTEMPLATE", "p1.dom", {"RealName": "New User"})
    client.command("UPDATEDOMAINDEFAULTS", {"MailToUnknown": "Rejected"})
    client.command("UPDATESERVERACCOUNTDEFAULTS", {"MaxAccountSize": "200M"})
    client.command("SETDOMAINMAILRULES", "p1.dom",
                   [["5", "Spam", [["Subject", "is", "*spam*"]], [["Discard"]]]])
    client.command("SETDOMAINSIGNALRULES", "p2.dom",
                   [["10", "Night", [["Time of Day", "not in", "8:00-18:00"]], [["Reject"]]]])
    client.createAccount("alice@p1.dom", {"Password": "apw", "MaxAccountSize": "5M"})
    client.createAccount("bob@p1.dom", {"RealName": "Bob \"the\" Builder\nline 2"})
    client.createAccount("carol@p2.dom", {"Password": "cpw"}, type="TextMailbox")
    client.createAccount("dave@p2.dom")
    client.updateAccountSettings("dave@p2.dom", {"RealName": "Dave", "PWDAllowed": "NO"})
    client.command("SETACCOUNTSETTINGS", "carol@p2.dom", {"RealName": "Carol", "Language": "de"})
    client.setAccountAliases("alice@p1.dom", ["al", "323"])
    client.command("SETACCOUNTTELNUMS", "bob@p1.dom", ["+14155551234", "+4930123456"])
    client.command("SETACCOUNTRIGHTS", "carol@p2.dom", ["Domain", "CanCreateAccounts"])
    client.command("SETACCOUNTMAILRULES", "alice@p1.dom",
                   [["1", "Vacation", [["Human Generated", "---"]], [["Reply with", "Away"]]]])
    client.command("SETACCOUNTSIGNALRULES", "bob@p1.dom",
                   [["2", "Busy", [], [["Redirect to", "alice@p1.dom"]]]])
    client.command("SETACCOUNTRSIPS", "dave@p2.dom",
                   {"sip1": {"domain": "sip.example", "authName": "dave", "password": "x",
                             "period": "10m", "targetName": "dave"}})
    client.command("CREATEFORWARDER", "fwd@p1.dom", Keyword("TO"), "someone@far.away")
    client.command("CREATEFORWARDER", "nul@p2.dom", Keyword("TO"), "null")
    client.command("CREATEGROUP", "team@p1.dom",
                   {"RealName": "Team", "Members": ["alice", "bob"], "EmailDisabled": "NO"})
    client.command("CREATEGROUP", "empty@p2.dom")
    client.command("SETGROUP", "empty@p2.dom", {"RealName": "Nobody", "Members": []})
    client.setRouterTable(
        "; persistence\n"
        "<(7d)@*> = localAreaCall{*}#pbx@localhost\n"
        "N:S:<9*@p1.dom> = *@192.168.1.2 ; gateway\n"
    )
    client.command("SETSERVERSIGNALRULES", [["3", "Ext", [], [["Stop Processing"]]]])
    client.command("SETLANIPS", "10.0.0.0/8\n192.168.0.1")
    client.command("UPDATEMODULE", "SMTP", {"LogLevel": "3"})
    client.createAccount("Zoe@p1.dom", {"RealName": "Zo\u00eb \u00dcn\u00efc\u00f8d\u00e9 \u2603"})
    client.createDomain("p3.dom")
    client.createAccount("x@p3.dom", {"RealName": "moved with its domain"})
    client.command("RENAMEDOMAIN", "p3.dom", Keyword("INTO"), "p4.dom")
    client.createDomain("p5.dom")
    client.createAccount("y@p5.dom")
    client.command("DELETEDOMAIN", "p5.dom", Keyword("FORCE"))
    client.createAccount("gone@p1.dom")
    client.deleteAccount("gone@p1.dom")
    client.renameAccount("dave@p2.dom", "david@p2.dom")
    return (
        ["main.dom", "p1.dom", "p2.dom", "p4.dom", "p3.dom", "p5.dom"],
        ["alice@p1.dom", "bob@p1.dom", "carol@p2.dom", "david@p2.dom", "postmaster@main.dom",
         "pbx@main.dom", "zoe@p1.dom", "x@p4.dom", "x@p3.dom", "y@p5.dom"],
        ["fwd@p1.dom", "nul@p2.dom"],
        ["team@p1.dom", "empty@p2.dom"],
    )


def snapshot(client, domains, accounts, forwarders, groups):
    """
    @return: C{{command: result}} for every GET command covering the
        provisioned objects (an error result is kept as its text).
    """
    commands = [
        ("LISTDOMAINS",), ("MAINDOMAINNAME",), ("GETROUTERTABLE",), ("GETDOMAINDEFAULTS",),
        ("GETSERVERACCOUNTDEFAULTS",), ("GETSERVERMAILRULES",), ("GETSERVERSIGNALRULES",),
        ("GETLANIPS",), ("GETCLIENTIPS",), ("GETMODULE", "SMTP"), ("LISTLISTENERS",),
    ]
    for domain in domains:
        for name in ("GETDOMAINSETTINGS", "GETDOMAINEFFECTIVESETTINGS", "GETDOMAINALIASES",
                     "GETACCOUNTDEFAULTS", "GETACCOUNTTEMPLATE", "LISTACCOUNTS", "LISTFORWARDERS",
                     "LISTGROUPS", "GETDOMAINMAILRULES", "GETDOMAINSIGNALRULES"):
            commands.append((name, domain))
    for account in accounts:
        for name in ("GETACCOUNTSETTINGS", "GETACCOUNTEFFECTIVESETTINGS", "GETACCOUNTALIASES",
                     "GETACCOUNTTELNUMS", "GETACCOUNTRIGHTS", "GETACCOUNTMAILRULES",
                     "GETACCOUNTSIGNALRULES", "GETACCOUNTRSIPS"):
            commands.append((name, account))
    commands += [("GETFORWARDER", f) for f in forwarders]
    commands += [("GETGROUP", g) for g in groups]
    for address in ("al@p1.dom", "323@p1.dom", "fwd@p1.dom", "team@p1.dom", "carol@p2-alias.dom",
                    "5551234@p2.dom", "95551234@p1.dom", "+14155551234@telnum", "gone@p1.dom",
                    "dave@p2.dom"):
        for kind in ("MAIL", "SIGNAL", "ACCESS"):
            commands.append(("ROUTE", address, Keyword(kind)))
    result = {}
    for words in commands:
        key = " ".join(str(w) for w in words)
        try:
            result[key] = client.command(*words)
        except CLIError as e:
            result[key] = "ERROR %s" % (e,)
    return result


def assertStoppedCleanly(testCase, server):
    """
    SIGTERM stops the server through twistd's normal shutdown (twistd then
    re-raises the signal, so the status is -SIGTERM).
    """
    code = server.stop()
    testCase.assertIn(code, (0, -signal.SIGTERM), server.log())
    testCase.assertIn("Server Shut Down.", server.log().rsplit("--- start", 1)[-1])


class PersistenceTests(SynchronousTestCase):
    """
    What the CLI stores survives a restart.
    """

    assertStoppedCleanly = assertStoppedCleanly

    def test_restart(self):
        """
        Everything provisioned reads back the same after SIGTERM and a restart.
        """
        server = startServer(self)
        client = server.client()
        objects = provision(client)
        before = snapshot(client, *objects)
        errors = sorted(k for k, v in before.items() if isinstance(v, str)
                        and v.startswith("ERROR") and not k.startswith("ROUTE"))
        # only the renamed and deleted objects are gone
        self.assertEqual(
            set(errors), {k for k in before if k.endswith(("p3.dom", "p5.dom"))}, errors)
        self.assertEqual(before["LISTDOMAINS"], ["main.dom", "p1.dom", "p2.dom", "p4.dom"])
        self.assertEqual(before["GETACCOUNTSETTINGS zoe@p1.dom"],
                         {"RealName": "Zo\u00eb \u00dcn\u00efc\u00f8d\u00e9 \u2603"})
        self.assertStoppedCleanly(server)
        server.start()
        after = snapshot(server.client(), *objects)
        for key in before:
            self.assertEqual(after[key], before[key], key)
        # passwords survive as well
        server.client("alice@p1.dom", "apw").quit()
        server.client("carol@p2.dom", "cpw", secure=False).quit()
        self.assertRaises(CLIError, server.client, "dave@p2.dom", "")
        self.assertNotIn("Traceback", server.log())

    def test_listeners(self):
        """
        CREATELISTENER/DELETELISTENER open and close a CLI port at once and survive a restart.
        """
        server = startServer(self)
        client = server.client(timeout=5)
        kept, dropped = self.freeRowPorts(server, 2)
        for name, port in (("cli-kept", kept), ("cli-dropped", dropped)):
            client.command("CREATELISTENER", name, {
                "module": "cli", "transport": "tcp", "address": "127.0.0.1",
                "port": port, "tls": "no", "enabled": "YES",
            })
            self.assertAnswers(server.offset + port)
            row = client.command("GETLISTENER", name)
            self.assertEqual(row["State"], "listening")
            self.assertEqual(int(row["Port"]), server.offset + port)
        client.command("DELETELISTENER", "cli-dropped")
        self.assertRefusesConnections(server.offset + dropped)
        self.assertRaises(CLIError, client.command, "GETLISTENER", "cli-dropped")
        listeners = client.command("LISTLISTENERS")

        self.assertStoppedCleanly(server)
        server.start()
        client = server.client()
        self.assertEqual(client.command("LISTLISTENERS"), listeners)
        self.assertAnswers(server.offset + kept)
        self.assertRefusesConnections(server.offset + dropped)
        client.command("DELETELISTENER", "cli-kept")
        self.assertRefusesConnections(server.offset + kept)
        self.assertNotIn("cli-kept", client.command("LISTLISTENERS"))
        self.assertEqual(client.command("GETLISTENER", "cli")["State"], "listening")

    def test_listenerPortTaken(self):
        """
        CREATELISTENER on a taken port is a 501 naming the listener; the row is not kept.
        """
        server = startServer(self)
        client = server.client(timeout=5)
        [port] = self.freeRowPorts(server, 1)
        holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(holder.close)
        holder.bind(("127.0.0.1", server.offset + port))
        holder.listen(1)
        error = self.assertRaises(CLIError, client.command, "CREATELISTENER", "cli-busy", {
            "module": "cli", "transport": "tcp", "address": "127.0.0.1",
            "port": port, "tls": "no", "enabled": "YES",
        })
        self.assertEqual(error.code, 501)
        self.assertIn("cli-busy", error.text)
        self.assertNotIn("cli-busy", client.command("LISTLISTENERS"))
        self.assertEqual(server.client().listDomains(), ["main.dom"])

    def writeListenerOverrides(self, server, rows):
        """
        Stop the server and hand-edit C{Settings/Listeners.settings} (the
        listener overrides, one data-format dictionary) as an administrator
        may while the server is stopped.

        @param rows: listener name -> port-table port of a new CLI row.
        """
        self.assertStoppedCleanly(server)
        overrides = {"smtp": {"enabled": "NO"}}
        for name, port in rows.items():
            overrides[name] = {"module": "cli", "transport": "tcp", "address": "127.0.0.1",
                               "port": port, "tls": "no", "enabled": "YES"}
        with open(os.path.join(server.base, "Settings", "Listeners.settings"), "w") as f:
            f.write(dumps(overrides) + "\n")

    def test_listenerRowsFromBase(self):
        """
        Listener rows stored in the base folder start with the server.
        """
        server = startServer(self)
        [port] = self.freeRowPorts(server, 1)
        self.writeListenerOverrides(server, {"cli-extra": port})
        server.start()
        self.assertAnswers(server.offset + port)
        rows = server.client().command("LISTLISTENERS")
        self.assertEqual(rows["cli-extra"]["State"], "listening")
        self.assertEqual(int(rows["cli-extra"]["Port"]), server.offset + port)
        self.assertEqual(rows["smtp"]["State"], "disabled")
        self.assertEqual(rows["cli"]["State"], "listening")

    def test_listenerPortTakenAtStart(self):
        """
        A row whose port is taken at start-up is reported failed; the server runs on.
        """
        server = startServer(self)
        [port] = self.freeRowPorts(server, 1)
        holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(holder.close)
        holder.bind(("127.0.0.1", server.offset + port))
        holder.listen(1)
        self.writeListenerOverrides(server, {"cli-busy": port})
        server.start()
        rows = server.client().command("LISTLISTENERS")
        self.assertEqual(rows["cli"]["State"], "listening")
        self.assertTrue(rows["cli-busy"]["State"].startswith("failed"), rows["cli-busy"])
        self.assertIn("listener cli-busy (cli) cannot listen", server.log())

    def freeRowPorts(self, server, count):
        """
        @return: C{count} port-table port numbers whose port after the
            server's offset is free.
        """
        ports = []
        while len(ports) < count:
            port = random.randint(200, 1000)
            if port not in ports and portIsFree(server.offset + port):
                ports.append(port)
        return ports

    def assertAnswers(self, port):
        """
        A CLI greeting comes from C{port}.
        """
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            self.assertTrue(sock.makefile("rb").readline().startswith(b"200 CommuniGate Pro"))

    def assertRefusesConnections(self, port):
        """
        Nothing listens on C{port}.
        """
        self.assertRaises(ConnectionRefusedError, socket.create_connection,
                          ("127.0.0.1", port), 5)


# -- crash safety --------------------------------------------------------------------

class _Provisioner(threading.Thread):
    """
    A client thread creating accounts and updating their settings as fast
    as it can, recording what the server acknowledged.

    @ivar acked: account name -> the last acknowledged settings.
    @ivar pending: account name -> settings sent but not acknowledged (the
        command in flight when the server died), or C{None} for a create.
    @ivar passwords: account name -> acknowledged password.
    """

    def __init__(self, port, tag):
        threading.Thread.__init__(self, name="provisioner-" + tag, daemon=True)
        self.port = port
        self.tag = tag
        self.acked = {}
        self.pending = {}
        self.passwords = {}
        self.commands = 0
        self.unexpected = []

    def run(self):
        client = CLIClient("127.0.0.1", self.port, timeout=30)
        try:
            client.connect()
            client.login("postmaster", "secret")
        except Exception as e:
            self.unexpected.append(e)
            return
        n = 0
        try:
            while True:
                name = "%s-%d@crash.dom" % (self.tag, n)
                settings = {"RealName": "%s %d" % (self.tag, n)}
                if n % 25 == 0:
                    settings["Password"] = "pw%d" % (n,)
                self.pending[name] = None
                client.createAccount(name, settings)
                password = settings.pop("Password", None)
                if password is not None:
                    self.passwords[name] = password
                self.acked[name] = settings
                del self.pending[name]
                self.commands += 1
                if n % 3 == 2:
                    older = "%s-%d@crash.dom" % (self.tag, n - 2)
                    update = {"Language": "l%d" % (n,), "RealName": "updated %d" % (n,)}
                    self.pending[older] = dict(self.acked[older], **update)
                    client.updateAccountSettings(older, update)
                    self.acked[older] = self.pending.pop(older)
                    self.commands += 1
                n += 1
        except (OSError, CLIError) as e:
            # the server was killed: the connection breaks
            if isinstance(e, CLIError) and e.code != 0:
                self.unexpected.append(e)
        finally:
            client.close()


class CrashSafetyTests(SynchronousTestCase):
    """
    Every acknowledged change survives SIGKILL; nothing half-written is
    taken for data.
    """

    def test_killWhileProvisioning(self):
        """
        Acknowledged accounts and settings survive SIGKILL during provisioning, twice.
        """
        server = startServer(self)
        server.client().createDomain("crash.dom")
        acked, pending, passwords = {}, {}, {}
        for round, delay in ((1, 2.0), (2, 1.3 + random.random())):
            threads = [_Provisioner(server.cliPort, "r%dt%d" % (round, i)) for i in range(4)]
            for thread in threads:
                thread.start()
            time.sleep(delay)
            server.kill()
            for thread in threads:
                thread.join(30)
                self.assertFalse(thread.is_alive())
                self.assertEqual(thread.unexpected, [])
                acked.update(thread.acked)
                pending.update(thread.pending)
                passwords.update(thread.passwords)
            self.assertGreater(sum(t.commands for t in threads), 100, "too few commands ran")
            self.plantTemporaryFiles(server, acked)
            server.start()
            self.checkState(server, acked, pending, passwords)
        self.assertNotIn("Traceback", server.log())

    def plantTemporaryFiles(self, server, acked):
        """
        Leave C{.tmp} files as an interrupted write would, with contents the
        server must never serve.
        """
        base = server.base
        name = sorted(acked)[0].split("@")[0]
        accounts = os.path.join(base, "Domains", "crash.dom", "Accounts")
        bogus = b"{Settings={RealName=BOGUS;};Type=MultiMailbox;}\n"
        with open(os.path.join(accounts, name + ".macnt", "account.settings.tmp"), "wb") as f:
            f.write(bogus)
        # an account folder whose record never got past its temporary file
        halfmade = os.path.join(accounts, "halfmade.macnt")
        os.makedirs(halfmade, exist_ok=True)
        with open(os.path.join(halfmade, "account.settings.tmp"), "wb") as f:
            f.write(bogus)
        os.makedirs(os.path.join(base, "Domains", "ghost.dom.tmp", "Accounts"), exist_ok=True)
        with open(os.path.join(base, "Domains", "ghost.dom.tmp", "domain.settings"), "wb") as f:
            f.write(b"{Settings={};}\n")
        with open(os.path.join(base, "Settings", "Router.table.tmp"), "wb") as f:
            f.write(b"<*@*> = bogus@192.0.2.1\n")

    def checkState(self, server, acked, pending, passwords):
        """
        Every acknowledged account exists with its acknowledged settings (or
        the unacknowledged update that was in flight); every listed account
        reads back.
        """
        client = server.client()
        self.assertEqual(client.listDomains(), ["crash.dom", "main.dom"])
        self.assertEqual(client.getRouterTable(), "")
        listed = client.listAccounts("crash.dom")
        self.assertIsInstance(listed, dict)
        missing = sorted(a for a in acked if a.split("@")[0] not in listed)
        self.assertEqual(missing, [], "acknowledged accounts lost")
        for name in listed:
            self.assertFalse(name.endswith(".tmp"), name)
            full = name + "@crash.dom"
            settings = client.getAccountSettings(full)
            self.assertIsInstance(settings, dict)
            self.assertNotEqual(settings.get("RealName"), "BOGUS", full)
            client.getAccountEffectiveSettings(full)
            if name == "halfmade":
                # never acknowledged: it may be listed, but not with the
                # temporary file's contents (checked above)
                continue
            if full in acked:
                allowed = [acked[full]]
                if pending.get(full) is not None:
                    allowed.append(pending[full])
                self.assertIn(settings, allowed, full)
            else:
                # only the create in flight may have landed
                self.assertIn(full, pending, "an account nobody created: %s" % (full,))
        for full, password in passwords.items():
            client.verifyAccountPassword(full, password)


# -- command-line tools --------------------------------------------------------------

class CommandLineTests(SynchronousTestCase):
    """
    The C{cgpro-cli} command, the tac file, and twistd option errors.
    """

    assertStoppedCleanly = assertStoppedCleanly

    def cgproCli(self, server, *args, input=None, password="secret"):
        """
        Run C{python -m cgpro.cli.client} against C{server}.

        @return: C{(exitCode, stdout, stderr)}.
        """
        argv = [sys.executable, "-m", "cgpro.cli.client", "--port", str(server.cliPort)]
        if password is not None:
            argv += ["--password", password]
        result = subprocess.run(
            argv + list(args), input=input, capture_output=True, text=True, timeout=60,
            env=serverEnvironment(), cwd=CHECKOUT,
        )
        return result.returncode, result.stdout, result.stderr

    def test_cgproCliCommand(self):
        """
        C{cgpro-cli COMMAND}: data on stdout; exit 0, 1 on a failed command, 2 on a bad login.
        """
        server = startServer(self)
        self.assertEqual(self.cgproCli(server, "LISTDOMAINS"), (0, "(main.dom)\n", ""))
        code, out, err = self.cgproCli(server, "CREATEACCOUNT", "u1")
        self.assertEqual((code, out, err), (0, "", ""))
        code, out, err = self.cgproCli(server, "GETACCOUNTSETTINGS", "nobody")
        self.assertEqual((code, out), (1, ""))
        self.assertRegex(err, r"^ERROR 501 ")
        code, out, err = self.cgproCli(server, "LISTDOMAINS", password="wrong")
        self.assertEqual((code, out), (2, ""))
        self.assertRegex(err, r"^ERROR 5\d\d ")
        code, out, err = self.cgproCli(server, "--insecure-login", "LISTACCOUNTS")
        self.assertEqual((code, out, err), (0, "{pbx=macnt;postmaster=macnt;u1=macnt;}\n", ""))

    def test_cgproCliScript(self):
        """
        C{cgpro-cli} runs a stdin script to the end or QUIT and exits 1 if a command failed.
        """
        server = startServer(self)
        script = (
            "# provisioning\n"
            "\n"
            "CREATEDOMAIN s.dom\n"
            "CREATEACCOUNT a@s.dom {RealName=\"A B\";}\n"
            "CREATEACCOUNT a@s.dom\n"
            "GETACCOUNTSETTINGS a@s.dom\n"
            "LISTACCOUNTS s.dom\n"
            "QUIT\n"
            "CREATEACCOUNT never@s.dom\n"
        )
        code, out, err = self.cgproCli(server, input=script)
        self.assertEqual(code, 1)
        self.assertEqual(out, '{RealName="A B";}\n{a=macnt;}\n')
        self.assertEqual(err, "ERROR 501 Account with this name already exists\n")
        self.assertEqual(server.client().listAccounts("s.dom"), {"a": "macnt"})
        code, out, err = self.cgproCli(server, input="LISTDOMAINS\nMAINDOMAINNAME\n")
        self.assertEqual((code, out, err), (0, "(main.dom, s.dom)\nmain.dom\n", ""))

    def test_cgproCliNoServer(self):
        """
        Nothing listening: exit 2 with a message on stderr.
        """
        server = ServerProcess(offset=freeOffset())
        self.addCleanup(server.cleanup)
        code, out, err = self.cgproCli(server, "LISTDOMAINS")
        self.assertEqual((code, out), (2, ""))
        self.assertIn("cannot connect", err)

    def test_tacFile(self):
        """
        C{twistd -n -y tac/cgpro.tac} with environment variables runs the same server.
        """
        server = startServer(self, tac=True, domain="tac.dom", password="tacpw")
        client = server.client()
        self.assertEqual(client.listDomains(), ["tac.dom"])
        self.assertEqual(client.command("MAINDOMAINNAME"), "tac.dom")
        self.assertEqual(sorted(client.listAccounts()), ["pbx", "postmaster"])
        self.assertTrue(os.path.isdir(os.path.join(server.base, "Domains", "tac.dom")))
        self.assertStoppedCleanly(server)

    def test_portOffsetTooLarge(self):
        """
        An offset pushing a row past 65535 stops twistd non-zero, naming the row.
        """
        for offset, only in ((54511, "ximsss"), (60000, None)):
            server = ServerProcess(offset=offset)
            self.addCleanup(server.cleanup)
            argv, env = server.command()
            result = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env,
                                    cwd=server.base.rsplit(os.sep, 1)[0])
            output = result.stdout + result.stderr
            self.assertNotEqual(result.returncode, 0, output)
            self.assertIn("cannot start", output)
            named = re.findall(r"listener (\S+): port \d+ \+ offset %d = (\d+)" % (offset,), output)
            self.assertTrue(named, output)
            for row, port in named:
                self.assertGreater(int(port), 65535, output)
                if only is not None:
                    self.assertEqual(row, only)
            self.assertNotIn("Traceback", output)
