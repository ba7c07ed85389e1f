# -*- test-case-name: tests.cli.test_client -*-
"""
Tests for L{cgpro.cli.client}.

The client is synchronous and uses real sockets, so it is tested against a
real (loopback) socket: a tiny scripted server in a thread replays a
transcript and records every byte the client sent.  No reactor is involved.
"""

import getpass
import io
import os
import socket
import sys
import threading

from twisted.trial.unittest import TestCase

from cgpro.cli.client import (
    CLIClient,
    CLIError,
    CLIProtocolError,
    Keyword,
    apopDigest,
    formatCommand,
    main,
)
from cgpro.core.dataformat import dumps

TOKEN = "<753.1213987978@cgate.mobimail.com.br>"
GREETING = "200 CommuniGate Pro at mail.example.com PWD Server 5.3 ready " + TOKEN
APOP_SECRET = "dc0731aada3eb95fd4311dc32f7e0102"


def reply(*lines, eol="\r\n"):
    """
    Join response lines into what the fake server writes for one command.
    """
    return "".join(line + eol for line in lines)


class ScriptedServer:
    """
    A one-connection CLI server that replays a transcript.

    It sends C{greeting}, then answers the n-th received line with the n-th
    entry of C{replies} (written verbatim), and closes the connection when
    the replies run out or an entry is C{None}.

    @ivar received: the lines received, without their line ends.
    @ivar rawReceived: every byte received.
    """

    def __init__(self, testCase, replies, greeting=GREETING):
        self.replies = list(replies)
        self.greeting = greeting
        self.received = []
        self.rawReceived = b""
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(1)
        self._listener.settimeout(10)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        testCase.addCleanup(self.stop)

    def _serve(self):
        """
        Accept one client and play the script to it.
        """
        try:
            conn, _ = self._listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(10)
            try:
                conn.sendall((self.greeting + "\r\n").encode("utf-8"))
                buffer = b""
                while True:
                    while b"\n" not in buffer:
                        chunk = conn.recv(65536)
                        if not chunk:
                            return
                        self.rawReceived += chunk
                        buffer += chunk
                    line, _, buffer = buffer.partition(b"\n")
                    self.received.append(line.rstrip(b"\r").decode("utf-8"))
                    if not self.replies:
                        return
                    answer = self.replies.pop(0)
                    if answer is None:
                        return
                    conn.sendall(answer.encode("utf-8"))
            except OSError:
                return

    def stop(self):
        """
        Stop listening and wait for the serving thread to end.
        """
        self._listener.close()
        self._thread.join(10)

    def sentLines(self):
        """
        Wait until the session is over and return the received lines.
        """
        self._thread.join(10)
        if self._thread.is_alive():
            raise AssertionError("the fake server is still serving")
        return self.received


class ClientTestMixin:
    """
    Helpers to start a scripted server and a client connected to it.
    """

    def startServer(self, replies, greeting=GREETING):
        """
        Start a L{ScriptedServer} for this test.
        """
        return ScriptedServer(self, replies, greeting)

    def connectedClient(self, server):
        """
        Return a L{CLIClient} connected to C{server}, closed after the test.
        """
        client = CLIClient("127.0.0.1", server.port, timeout=10)
        self.addCleanup(client.close)
        client.connect()
        return client

    def loggedInClient(self, replies):
        """
        Return a client logged in with APOP and INLINE mode on, followed by
        C{replies} for its commands, and the server.
        """
        server = self.startServer([reply("200 login OK"), reply("200 OK")] + replies)
        client = self.connectedClient(server)
        client.login("postmaster", "secret")
        return client, server


class LoginTests(ClientTestMixin, TestCase):
    """
    Greeting, APOP and USER/PASS logins, INLINE.
    """

    def test_apopDigestVector(self):
        """The APOP digest matches the spec's test vector."""
        self.assertEqual(apopDigest(TOKEN, "secret"), APOP_SECRET)

    def test_greetingToken(self):
        """connect() keeps the greeting and extracts its <...@...> token."""
        server = self.startServer([])
        client = self.connectedClient(server)
        self.assertEqual(client.greeting, GREETING)
        self.assertEqual(client.token, TOKEN)

    def test_apopLogin(self):
        """A secure login sends APOP with the digest, then INLINE."""
        client, server = self.loggedInClient([])
        self.assertEqual(client.user, "postmaster")
        self.assertTrue(client.inline)
        client.close()
        self.assertEqual(
            server.sentLines(), ["APOP postmaster " + APOP_SECRET, "INLINE"]
        )

    def test_userPassLogin(self):
        """An insecure login sends USER, expects 300, then sends PASS."""
        server = self.startServer(
            [
                reply("300 please send the PASS"),
                reply("200 login OK"),
                reply("200 OK"),
            ]
        )
        client = self.connectedClient(server)
        client.login("postmaster", "pm pass", secure=False)
        client.close()
        self.assertEqual(
            server.sentLines(), ["USER postmaster", "PASS pm pass", "INLINE"]
        )

    def test_userRejected(self):
        """Anything but 300 after USER is a CLIError, and PASS is not sent."""
        server = self.startServer([reply("500 go away")])
        client = self.connectedClient(server)
        error = self.assertRaises(
            CLIError, client.login, "postmaster", "x", secure=False
        )
        self.assertEqual((error.code, error.text), (500, "go away"))
        client.close()
        self.assertEqual(server.sentLines(), ["USER postmaster"])

    def test_passwordRejected(self):
        """A 5xx after PASS raises CLIError and INLINE is not sent."""
        server = self.startServer(
            [reply("300 please send the PASS"), reply("500 wrong password")]
        )
        client = self.connectedClient(server)
        error = self.assertRaises(
            CLIError, client.login, "postmaster", "x", secure=False
        )
        self.assertEqual((error.code, error.text), (500, "wrong password"))
        self.assertIsNone(client.user)
        client.close()
        self.assertEqual(server.sentLines(), ["USER postmaster", "PASS x"])

    def test_noInline(self):
        """login(inline=False) does not send INLINE."""
        server = self.startServer([reply("200 login OK")])
        client = self.connectedClient(server)
        client.login("postmaster", "secret", inline=False)
        self.assertFalse(client.inline)
        client.close()
        self.assertEqual(server.sentLines(), ["APOP postmaster " + APOP_SECRET])

    def test_apopWithoutToken(self):
        """A secure login without a greeting token fails before sending."""
        server = self.startServer([], greeting="200 PWD Server ready")
        client = self.connectedClient(server)
        self.assertIsNone(client.token)
        error = self.assertRaises(CLIProtocolError, client.login, "pm", "secret")
        self.assertEqual(error.code, 0)
        client.close()
        self.assertEqual(server.sentLines(), [])

    def test_badGreeting(self):
        """A non-200 greeting raises CLIError and closes the connection."""
        server = self.startServer([], greeting="500 too many connections")
        client = CLIClient("127.0.0.1", server.port, timeout=10)
        self.addCleanup(client.close)
        error = self.assertRaises(CLIError, client.connect)
        self.assertEqual((error.code, error.text), (500, "too many connections"))
        self.assertFalse(client.connected)

    def test_linesEndWithCRLF(self):
        """Every line the client sends ends with CRLF."""
        client, server = self.loggedInClient([])
        client.close()
        server.sentLines()
        self.assertEqual(
            server.rawReceived,
            b"APOP postmaster " + APOP_SECRET.encode("ascii") + b"\r\nINLINE\r\n",
        )


class ResponseTests(ClientTestMixin, TestCase):
    """
    Parsing of 200, 201 and 200 data follow responses, and errors.
    """

    def test_inlineResponse(self):
        """A 201 response returns the object on the same line."""
        client, server = self.loggedInClient(
            [reply('201 {Password=x;RealName="J S";}')]
        )
        self.assertEqual(
            client.raw("GETACCOUNTSETTINGS u"), {"Password": "x", "RealName": "J S"}
        )

    def test_dataFollow(self):
        """200 data follow returns the object on the next line."""
        client, server = self.loggedInClient(
            [reply("200 data follow", "(mail.example.com, client1.com)")]
        )
        self.assertEqual(client.listDomains(), ["mail.example.com", "client1.com"])

    def test_dataFollowScalar(self):
        """A scalar after 200 data follow is read from one line."""
        client, server = self.loggedInClient(
            [reply("200 data follow", '"a\\eb"'), reply("200 OK")]
        )
        self.assertEqual(client.getRouterTable(), "a\nb")
        self.assertIsNone(client.raw("NOOP"))

    def test_dataFollowMultiLine(self):
        """A multi-line object after 200 data follow is read to its end."""
        client, server = self.loggedInClient(
            [
                reply(
                    "200 data follow",
                    "{",
                    '  Name = "closing } and ) in a string";',
                    "  List = (a,",
                    "    b);",
                    "}",
                ),
                reply("201 (c)"),
            ]
        )
        self.assertEqual(
            client.raw("GETACCOUNTSETTINGS u"),
            {"Name": "closing } and ) in a string", "List": ["a", "b"]},
        )
        # The session is still in step: the next answer is the next command's.
        self.assertEqual(client.raw("LISTDOMAINS"), ["c"])

    def test_lfOnlyResponses(self):
        """Responses terminated by a bare LF are accepted."""
        server = self.startServer(
            [
                reply("200 login OK", eol="\n"),
                reply("200 OK", eol="\n"),
                reply("200 data follow", "(a, b)", eol="\n"),
            ],
            greeting=GREETING,
        )
        client = self.connectedClient(server)
        client.login("postmaster", "secret")
        self.assertEqual(client.raw("LISTDOMAINS"), ["a", "b"])

    def test_plainOk(self):
        """A plain 200 response returns None."""
        client, server = self.loggedInClient([reply("200 OK")])
        self.assertIsNone(client.deleteAccount("u"))

    def test_error501(self):
        """A 501 raises CLIError with its code and text; the session goes on."""
        client, server = self.loggedInClient(
            [reply("501 Account with this name already exists"), reply("200 OK")]
        )
        error = self.assertRaises(CLIError, client.createAccount, "user1")
        self.assertEqual(error.code, 501)
        self.assertEqual(error.text, "Account with this name already exists")
        self.assertEqual(str(error), "501 Account with this name already exists")
        self.assertIsNone(client.createAccount("user2"))

    def test_unparsableData(self):
        """A 201 with broken data raises CLIProtocolError (code 0)."""
        client, server = self.loggedInClient([reply("201 {unterminated")])
        error = self.assertRaises(CLIProtocolError, client.raw, "GETACCOUNT u")
        self.assertEqual(error.code, 0)

    def test_unparsableStatus(self):
        """A status line without a code raises CLIProtocolError and closes."""
        client, server = self.loggedInClient([reply("hello")])
        self.assertRaises(CLIProtocolError, client.raw, "LISTDOMAINS")
        self.assertFalse(client.connected)

    def test_connectionClosed(self):
        """A server that hangs up mid-session raises ConnectionError."""
        client, server = self.loggedInClient([None])
        self.assertRaises(ConnectionError, client.raw, "LISTDOMAINS")
        self.assertFalse(client.connected)


class CommandTests(ClientTestMixin, TestCase):
    """
    Serialization of command arguments and the convenience methods.
    """

    def test_formatStringsAndDicts(self):
        """The name and keywords go bare; values go through dumps."""
        self.assertEqual(
            formatCommand("CREATEACCOUNT", "u@d.dom", {"Password": "x"}),
            "CREATEACCOUNT u@d.dom {Password=x;}",
        )
        self.assertEqual(
            formatCommand("UPDATEACCOUNTSETTINGS", "u", {"RealName": "J S"}),
            'UPDATEACCOUNTSETTINGS u {RealName="J S";}',
        )
        self.assertEqual(
            formatCommand("RENAMEACCOUNT", "a", Keyword("INTO"), "b"),
            "RENAMEACCOUNT a INTO b",
        )

    def test_formatQuotesValuesThatLookLikeKeywords(self):
        """Only Keyword words are bare: other values are serialized."""
        values = ["INTO", "", "a b", 'q"uote', 12, None, b"\x1d\xca", ["x", "y z"]]
        self.assertEqual(
            formatCommand("CMD", Keyword("TO"), *values),
            " ".join(["CMD", "TO"] + [dumps(value) for value in values]),
        )
        self.assertEqual(formatCommand("CMD", "", "a b"), 'CMD "" "a b"')
        self.assertEqual(formatCommand("CMD", 12, None), "CMD #12 #NULL#")

    def test_formatNeedsAName(self):
        """formatCommand refuses an empty command and a non-str name."""
        self.assertRaises(ValueError, formatCommand)
        self.assertRaises(TypeError, formatCommand, 12)

    def test_keywordRepr(self):
        """A Keyword is a str that says what it is."""
        self.assertIsInstance(Keyword("INTO"), str)
        self.assertEqual(repr(Keyword("INTO")), "Keyword('INTO')")

    def test_commandOnTheWire(self):
        """command() sends the serialized line as is."""
        client, server = self.loggedInClient([reply("200 OK")])
        client.command("CREATEACCOUNT", "u@d.dom", {"Password": "x"})
        client.close()
        self.assertEqual(server.sentLines()[-1], "CREATEACCOUNT u@d.dom {Password=x;}")

    def test_rawRejectsLineBreaks(self):
        """raw() refuses a line that would be two commands."""
        client, server = self.loggedInClient([])
        self.assertRaises(ValueError, client.raw, "LISTDOMAINS\r\nQUIT")
        client.close()
        self.assertEqual(len(server.sentLines()), 2)

    def test_convenienceMethods(self):
        """The one-liners send the documented command shapes."""
        client, server = self.loggedInClient(
            [reply("200 OK")] * 9
            + [
                reply('201 {u=macnt;}'),
                reply("201 {u=macnt;}"),
                reply("201 {}"),
                reply("201 {Password=x;}"),
                reply("201 (SIGNAL, u@d.dom, u@d.dom)"),
                reply("201 (LOCAL, u, u@d.dom)"),
            ]
        )
        client.createDomain("d.dom")
        client.createDomain("e.dom", {"DomainAccessModes": "All"})
        client.createAccount("u@d.dom", {"Password": "x"}, type="TextMailbox")
        client.renameAccount("u", "v")
        client.setAccountPassword("u", "p w")
        client.setAccountPassword("u", "x", check=True)
        client.verifyAccountPassword("u", "x")
        client.setAccountAliases("u", ("323",))
        client.setRouterTable("<a>=b@d.dom\n")
        self.assertEqual(client.listAccounts(), {"u": "macnt"})
        self.assertEqual(client.listAccounts("d.dom"), {"u": "macnt"})
        self.assertEqual(client.getAccountSettings("u"), {})
        self.assertEqual(client.getAccountEffectiveSettings("u"), {"Password": "x"})
        self.assertEqual(
            client.route("323@d.dom", "SIGNAL"), ["SIGNAL", "u@d.dom", "u@d.dom"]
        )
        self.assertEqual(client.route("u@d.dom"), ["LOCAL", "u", "u@d.dom"])
        client.close()
        self.assertEqual(
            server.sentLines()[2:],
            [
                "CREATEDOMAIN d.dom",
                "CREATEDOMAIN e.dom {DomainAccessModes=All;}",
                "CREATEACCOUNT u@d.dom TextMailbox {Password=x;}",
                "RENAMEACCOUNT u INTO v",
                'SETACCOUNTPASSWORD u PASSWORD "p w"',
                "SETACCOUNTPASSWORD u PASSWORD x CHECK",
                "VERIFYACCOUNTPASSWORD u PASSWORD x",
                "SETACCOUNTALIASES u " + dumps(["323"]),
                "SETROUTERTABLE " + dumps("<a>=b@d.dom\n"),
                "LISTACCOUNTS",
                "LISTACCOUNTS d.dom",
                "GETACCOUNTSETTINGS u",
                "GETACCOUNTEFFECTIVESETTINGS u",
                "ROUTE 323@d.dom SIGNAL",
                "ROUTE u@d.dom",
            ],
        )

    def test_updateAndDelete(self):
        """updateAccountSettings and deleteAccount send their commands."""
        client, server = self.loggedInClient([reply("200 OK"), reply("200 OK")])
        client.updateAccountSettings("u@d.dom", {"MaxAccountSize": "default"})
        client.deleteAccount("u@d.dom")
        client.close()
        self.assertEqual(
            server.sentLines()[2:],
            [
                "UPDATEACCOUNTSETTINGS u@d.dom {MaxAccountSize=default;}",
                "DELETEACCOUNT u@d.dom",
            ],
        )

    def test_contextManager(self):
        """A with block connects, and sends QUIT and closes at the end."""
        server = self.startServer(
            [
                reply("200 login OK"),
                reply("200 OK"),
                reply("200 CommuniGate Pro PWD connection closed"),
            ]
        )
        with CLIClient("127.0.0.1", server.port, timeout=10) as client:
            self.assertTrue(client.connected)
            client.login("postmaster", "secret")
        self.assertFalse(client.connected)
        self.assertEqual(server.sentLines()[-1], "QUIT")

    def test_quitWhenClosed(self):
        """quit() and close() on a closed client do nothing."""
        client = CLIClient()
        client.quit()
        client.close()
        self.assertFalse(client.connected)


class MainTests(ClientTestMixin, TestCase):
    """
    The cgpro-cli console command.
    """

    def setUp(self):
        """
        Capture the standard streams and clear the environment defaults.
        """
        self.stdout = io.StringIO()
        self.stderr = io.StringIO()
        self.patch(sys, "stdout", self.stdout)
        self.patch(sys, "stderr", self.stderr)
        environ = dict(os.environ)
        environ.pop("CGPRO_CLI_PORT", None)
        environ.pop("CGPRO_PASSWORD", None)
        self.patch(os, "environ", environ)

    def test_stdinWithError(self):
        """An error in the middle exits 1 but later commands still run."""
        server = self.startServer(
            [
                reply("200 login OK"),
                reply("200 OK"),
                reply("201 (a.dom, b.dom)"),
                reply("501 Account with this name already exists"),
                reply("200 OK"),
                reply("200 data follow", "{Password=x;}"),
                reply("200 CommuniGate Pro PWD connection closed"),
            ]
        )
        self.patch(
            sys,
            "stdin",
            io.StringIO(
                "# a comment\n"
                "LISTDOMAINS\n"
                "\n"
                'CREATEACCOUNT "user1"\n'
                "   # indented comment\n"
                "DELETEACCOUNT user2\n"
                "GETACCOUNTSETTINGS user3\n"
            ),
        )
        status = main(["--port", str(server.port), "--password", "secret"])
        self.assertEqual(status, 1)
        self.assertEqual(
            server.sentLines(),
            [
                "APOP postmaster " + APOP_SECRET,
                "INLINE",
                "LISTDOMAINS",
                'CREATEACCOUNT "user1"',
                "DELETEACCOUNT user2",
                "GETACCOUNTSETTINGS user3",
                "QUIT",
            ],
        )
        self.assertEqual(
            self.stdout.getvalue(),
            dumps(["a.dom", "b.dom"]) + "\n" + dumps({"Password": "x"}) + "\n",
        )
        self.assertEqual(
            self.stderr.getvalue(), "ERROR 501 Account with this name already exists\n"
        )

    def test_positionalCommand(self):
        """Positional arguments form one raw command line; success exits 0."""
        server = self.startServer(
            [
                reply("200 login OK"),
                reply("200 OK"),
                reply("201 {Password=x;}"),
                reply("200 CommuniGate Pro PWD connection closed"),
            ]
        )
        status = main(
            [
                "--port",
                str(server.port),
                "--password",
                "secret",
                "GETACCOUNTSETTINGS",
                "u@d.dom",
            ]
        )
        self.assertEqual(status, 0)
        self.assertEqual(server.sentLines()[2:], ["GETACCOUNTSETTINGS u@d.dom", "QUIT"])
        self.assertEqual(self.stdout.getvalue(), dumps({"Password": "x"}) + "\n")
        self.assertEqual(self.stderr.getvalue(), "")

    def test_environmentAndInsecureLogin(self):
        """CGPRO_CLI_PORT and CGPRO_PASSWORD are used; USER/PASS on request."""
        server = self.startServer(
            [
                reply("300 please send the PASS"),
                reply("200 login OK"),
                reply("200 OK"),
                reply("200 OK"),
                reply("200 CommuniGate Pro PWD connection closed"),
            ]
        )
        os.environ["CGPRO_CLI_PORT"] = str(server.port)
        os.environ["CGPRO_PASSWORD"] = "env secret"
        status = main(["--insecure-login", "--user", "admin", "DELETEDOMAIN", "d.dom"])
        self.assertEqual(status, 0)
        self.assertEqual(
            server.sentLines(),
            ["USER admin", "PASS env secret", "INLINE", "DELETEDOMAIN d.dom", "QUIT"],
        )
        self.assertEqual(self.stdout.getvalue(), "")

    def test_passwordPrompt(self):
        """Without --password or CGPRO_PASSWORD the password is asked for."""
        prompts = []

        def fakeGetpass(prompt="Password: "):
            prompts.append(prompt)
            return "secret"

        self.patch(getpass, "getpass", fakeGetpass)
        server = self.startServer(
            [reply("200 login OK"), reply("200 OK"), reply("200 bye")]
        )
        self.patch(sys, "stdin", io.StringIO(""))
        status = main(["--port", str(server.port)])
        self.assertEqual(status, 0)
        self.assertEqual(prompts, ["Password for postmaster: "])
        self.assertEqual(server.sentLines()[0], "APOP postmaster " + APOP_SECRET)

    def test_loginFailure(self):
        """A refused login prints the error and exits 2."""
        server = self.startServer([reply("500 incorrect password")])
        status = main(["--port", str(server.port), "--password", "x", "LISTDOMAINS"])
        self.assertEqual(status, 2)
        self.assertEqual(self.stderr.getvalue(), "ERROR 500 incorrect password\n")
        self.assertEqual(len(server.sentLines()), 1)

    def test_connectionRefused(self):
        """An unreachable server exits 2."""
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        status = main(["--port", str(port), "--password", "x", "LISTDOMAINS"])
        self.assertEqual(status, 2)
        self.assertTrue(self.stderr.getvalue().startswith("ERROR cannot connect"))

    def test_quitEndsScript(self):
        """A QUIT line in the script ends it without running later lines."""
        server = self.startServer(
            [reply("200 login OK"), reply("200 OK"), reply("200 bye")]
        )
        self.patch(sys, "stdin", io.StringIO("quit\nLISTDOMAINS\n"))
        status = main(["--port", str(server.port), "--password", "secret"])
        self.assertEqual(status, 0)
        self.assertEqual(server.sentLines()[2:], ["QUIT"])
