# -*- test-case-name: tests.mail.smtp.test_sockets -*-
"""
The receiving servers over real sockets, in process: each test listens on
127.0.0.1 port 0 with the reactor and drives the server from a thread with
Python's C{smtplib}, a raw socket (to control exactly what is sent:
pipelined groups, bare LF, NUL, long lines, a vanishing client) and, when
installed, C{swaks}.
"""

import atexit
import shutil
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time

from twisted.internet import defer, reactor
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import SkipTest, TestCase

from cgpro.core.context import ServerContext
from cgpro.core.ports import ListenerSpec
from cgpro.core.router import Router
from cgpro.core.tls import ServerTLS
from cgpro.mail.smtp.factory import buildLMTP, buildSMTP, buildSubmission
from tests.mail.smtp.fakes import FakeQueue, setMain, setModule
from tests.support.directory import makeDirectory

_TLS = []


def serverTLS():
    """
    One certificate for the whole run (making an RSA key takes a while).
    """
    if not _TLS:
        base = tempfile.mkdtemp(prefix="cgpro-smtp-tls-")
        atexit.register(shutil.rmtree, base, True)
        _TLS.append(ServerTLS(base, "main.dom"))
    return _TLS[0]


def unverified():
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


MESSAGE = "From: a@example.com\r\nTo: user@main.dom\r\nSubject: hi\r\n\r\nhello\r\n"


class RawClient:
    """
    A blocking SMTP client that sends exactly the given bytes.
    """

    def __init__(self, port, timeout=30):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.file = self.sock.makefile("rb")
        self.greeting = self.replies(1)[0]

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode("utf-8"))

    def replies(self, count):
        """
        @return: C{count} complete replies, each its last line (C{str}).
        """
        found = []
        while len(found) < count:
            line = self.file.readline()
            if not line:
                raise EOFError("connection closed after %d replies: %r" % (len(found), found))
            if line[3:4] == b" ":
                found.append(line.decode("utf-8").rstrip("\r\n"))
        return found

    def exchange(self, data, count):
        self.send(data)
        return self.replies(count)

    def close(self):
        self.file.close()
        self.sock.close()


class SocketTestsBase(TestCase):
    """
    Listening helpers; every server session is closed before a test ends.
    """

    def setUp(self):
        self.directory = makeDirectory(self)
        self.successResultOf(self.directory.createAccount("user@main.dom",
                                                          settings={"Password": "pass"}))
        self.queue = FakeQueue()
        self.context = ServerContext(self.directory, Router(self.directory), reactor,
                                     self.directory.storage.base, tls=serverTLS(),
                                     queue=self.queue)
        self.sessions = []
        self.addCleanup(self._waitClosed)

    def listen(self, build, name="smtp", tls="starttls"):
        spec = ListenerSpec(name=name, module=name, transport="tcp", address="127.0.0.1",
                            port=0, tls=tls)
        factory = build(spec, self.context)
        original = factory.buildProtocol

        def tracked(addr):
            server = original(addr)
            server.lost = False
            lost = server.connectionLost

            def connectionLost(reason):
                server.lost = True
                return lost(reason)

            server.connectionLost = connectionLost
            self.sessions.append(server)
            return server

        factory.buildProtocol = tracked
        listening = factory
        if tls == "implicit":
            listening = self.context.tls.wrap(factory)
        port = reactor.listenTCP(0, listening, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return port.getHost().port

    @defer.inlineCallbacks
    def _waitClosed(self):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(s.lost for s in self.sessions):
            yield deferLater(reactor, 0.02, lambda: None)
        for server in self.sessions:
            if not server.lost and server.transport is not None:
                server.transport.abortConnection()
        yield deferLater(reactor, 0.05, lambda: None)

    @defer.inlineCallbacks
    def waitFor(self, predicate, timeout=10):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                self.fail("condition not met within %ss" % (timeout,))
            yield deferLater(reactor, 0.02, lambda: None)

    def smtp(self, port, **kw):
        return smtplib.SMTP("127.0.0.1", port, local_hostname="client.example", timeout=30, **kw)


class SMTPLibTests(SocketTestsBase):
    """
    Python's smtplib against the server.
    """

    @defer.inlineCallbacks
    def test_ehloFeatures(self):
        """EHLO offers the extensions, STARTTLS in clear and AUTH only under TLS."""
        port = self.listen(buildSMTP)

        def run():
            with self.smtp(port) as client:
                client.ehlo()
                before = dict(client.esmtp_features)
                client.starttls(context=unverified())
                client.ehlo()
                return before, dict(client.esmtp_features)

        before, after = yield deferToThread(run)
        for keyword in ("pipelining", "size", "8bitmime", "smtputf8", "enhancedstatuscodes",
                        "dsn", "starttls"):
            self.assertIn(keyword, before)
        self.assertNotIn("auth", before)
        self.assertNotIn("starttls", after)
        self.assertEqual(after["auth"].split(), ["PLAIN", "LOGIN", "CRAM-MD5"])

    @defer.inlineCallbacks
    def test_authMechanisms(self):
        """After STARTTLS, AUTH PLAIN, LOGIN and CRAM-MD5 log in; then relaying is allowed."""
        port = self.listen(buildSMTP)

        def run(mechanism):
            with self.smtp(port) as client:
                client.starttls(context=unverified())
                client.ehlo()
                client.user, client.password = "user@main.dom", "pass"
                method = getattr(client, "auth_" + mechanism.lower().replace("-", "_"))
                code, _ = client.auth(mechanism, method)
                refused = client.sendmail("user@main.dom", ["far@remote.example"], MESSAGE)
                return code, refused

        for mechanism in ("PLAIN", "LOGIN", "CRAM-MD5"):
            code, refused = yield deferToThread(run, mechanism)
            self.assertEqual((code, refused), (235, {}), mechanism)
        self.assertEqual([m.envelope.protocol for m in self.queue.committed], ["ESMTPSA"] * 3)
        self.assertEqual({m.envelope.authUser for m in self.queue.committed}, {"user@main.dom"})
        self.assertIn(b"TLSv1.", self.queue.committed[0].data.split(b"Subject")[0])

    @defer.inlineCallbacks
    def test_relayRefused(self):
        """A non-client cannot relay; local delivery works; unknown users get 550."""
        port = self.listen(buildSMTP)

        def run():
            with self.smtp(port) as client:
                try:
                    client.sendmail("a@example.com", ["far@remote.example"], MESSAGE)
                except smtplib.SMTPRecipientsRefused as e:
                    relay = e.recipients
                try:
                    client.sendmail("a@example.com", ["nobody@main.dom"], MESSAGE)
                except smtplib.SMTPRecipientsRefused as e:
                    unknown = e.recipients
                local = client.sendmail("a@example.com", ["user@main.dom"], MESSAGE)
                return relay, unknown, local

        relay, unknown, local = yield deferToThread(run)
        self.assertEqual(relay, {"far@remote.example": (550, b"5.7.1 relaying prohibited")})
        self.assertEqual(unknown, {"nobody@main.dom": (550, b"5.1.1 unknown user account")})
        self.assertEqual(local, {})
        self.assertEqual(len(self.queue.committed), 1)

    @defer.inlineCallbacks
    def test_relayClientIPs(self):
        """A client in Client IPs may relay without AUTH."""
        setMain(self, self.context, {"ClientIPs": "127.0.0.1"})
        port = self.listen(buildSMTP)

        def run():
            with self.smtp(port) as client:
                return client.sendmail("a@example.com", ["far@remote.example"], MESSAGE)

        self.assertEqual((yield deferToThread(run)), {})
        self.assertTrue(self.queue.committed[0].envelope.trusted)

    @defer.inlineCallbacks
    def test_sizeLimit(self):
        """smtplib declares SIZE and is refused at MAIL; nothing is queued."""
        setModule(self, self.context, {"MaxMessageSize": "1K"})
        port = self.listen(buildSMTP)

        def run():
            with self.smtp(port) as client:
                try:
                    client.sendmail("a@example.com", ["user@main.dom"], MESSAGE + "x" * 2000)
                except smtplib.SMTPSenderRefused as e:
                    return e.smtp_code

        self.assertEqual((yield deferToThread(run)), 552)
        self.assertEqual(self.queue.received, [])

    @defer.inlineCallbacks
    def test_submission(self):
        """Submission refuses MAIL until AUTH, then accepts mail to anywhere."""
        port = self.listen(buildSubmission, name="submission")

        def run():
            with self.smtp(port) as client:
                client.starttls(context=unverified())
                client.ehlo()
                try:
                    client.sendmail("user@main.dom", ["far@remote.example"], MESSAGE)
                except smtplib.SMTPSenderRefused as e:
                    refused = e.smtp_code
                client.login("user@main.dom", "pass")
                return refused, client.sendmail("user@main.dom", ["far@remote.example"], MESSAGE)

        refused, accepted = yield deferToThread(run)
        self.assertEqual((refused, accepted), (530, {}))
        self.assertEqual(self.queue.committed[0].envelope.protocol, "ESMTPSA")

    @defer.inlineCallbacks
    def test_implicitTLS(self):
        """The smtps listener speaks TLS from the first byte and offers AUTH at once."""
        port = self.listen(buildSMTP, name="smtp", tls="implicit")

        def run():
            with smtplib.SMTP_SSL("127.0.0.1", port, local_hostname="client.example",
                                  timeout=30, context=unverified()) as client:
                client.ehlo()
                features = dict(client.esmtp_features)
                client.login("user@main.dom", "pass")
                return features, client.sendmail("user@main.dom", ["far@remote.example"],
                                                 MESSAGE)

        features, refused = yield deferToThread(run)
        self.assertNotIn("starttls", features)
        self.assertIn("auth", features)
        self.assertEqual(refused, {})
        message = self.queue.committed[0]
        self.assertEqual(message.envelope.protocol, "ESMTPSA")
        self.assertRegex(message.data.decode(), r"with ESMTPSA id 90001 \(TLSv1\.[23] \S+; "
                                                r"authenticated as user@main\.dom\)")


class RawSocketTests(SocketTestsBase):
    """
    Exactly crafted input over a raw socket.
    """

    @defer.inlineCallbacks
    def test_pipelining(self):
        """A whole transaction in one write is answered in order."""
        port = self.listen(buildSMTP)

        def run():
            client = RawClient(port)
            replies = client.exchange(
                "EHLO client.example\r\nMAIL FROM:<a@example.com>\r\n"
                "RCPT TO:<user@main.dom>\r\nRCPT TO:<nobody@main.dom>\r\nDATA\r\n", 5)
            replies += client.exchange(MESSAGE + ".\r\nQUIT\r\n", 2)
            client.close()
            return replies

        replies = yield deferToThread(run)
        self.assertEqual([r[:3] for r in replies], ["250", "250", "250", "550", "354", "250",
                                                    "221"])

    @defer.inlineCallbacks
    def test_tenThousandRecipients(self):
        """10,000 pipelined RCPTs are all answered, quickly; the message goes to each."""
        setModule(self, self.context, {"MaxRecipients": "0"})
        port = self.listen(buildSMTP)
        rcpts = "".join("RCPT TO:<user+%d@main.dom>\r\n" % (i,) if i % 2 else
                        "RCPT TO:<user@main.dom>\r\n" for i in range(10000))

        def run():
            client = RawClient(port)
            client.exchange("EHLO c.example\r\nMAIL FROM:<a@example.com>\r\n", 2)
            started = time.monotonic()
            replies = client.exchange(rcpts, 10000)
            elapsed = time.monotonic() - started
            replies += client.exchange("DATA\r\n" + MESSAGE + ".\r\nQUIT\r\n", 3)
            client.close()
            return elapsed, replies

        elapsed, replies = yield deferToThread(run)
        self.assertLess(elapsed, 20)
        self.assertEqual(replies[0], "250 2.1.5 <user@main.dom> OK")
        self.assertEqual(replies[1], "550 5.1.1 unknown user account")
        self.assertEqual(replies[-2][:3], "250")
        self.assertEqual(len(self.queue.committed[0].envelope.recipients), 1)

    @defer.inlineCallbacks
    def test_badInput(self):
        """Long lines, NUL bytes and oversize data get the right 5xx; the session survives."""
        setModule(self, self.context, {"MaxMessageSize": "10K"})
        port = self.listen(buildSMTP)
        transaction = "MAIL FROM:<a@example.com>\r\nRCPT TO:<user@main.dom>\r\nDATA\r\n"

        def run():
            client = RawClient(port)
            replies = client.exchange("EHLO c.example\r\nNOOP " + "x" * 5000 + "\r\n", 2)
            replies += client.exchange(transaction, 3)
            replies += client.exchange("a" * 1200 + "\r\n.\r\n", 1)
            replies += client.exchange(transaction, 3)
            replies += client.exchange(b"nul\0byte\r\n.\r\n", 1)
            replies += client.exchange(transaction, 3)
            replies += client.exchange(("y" * 100 + "\r\n") * 200 + ".\r\n", 1)
            replies += client.exchange(transaction, 3)
            replies += client.exchange(b"bare\nLF\n\r\n.\r\nQUIT\r\n", 2)
            client.close()
            return replies

        replies = yield deferToThread(run)
        self.assertEqual(replies[1], "500 5.5.2 line too long")
        self.assertEqual(replies[5], "554 5.6.0 message has a line longer than 998 characters")
        self.assertEqual(replies[9], "554 5.6.0 message contains NUL characters")
        self.assertEqual(replies[13], "552 5.3.4 message size exceeds fixed maximum message size")
        self.assertEqual(replies[17][:3], "250")
        self.assertEqual(len(self.queue.committed), 1)
        self.assertTrue(self.queue.committed[0].data.endswith(b"\r\nbare\r\nLF\r\n\r\n"))
        self.assertEqual(len(self.queue.aborted), 3)

    @defer.inlineCallbacks
    def test_bareLFRejected(self):
        """With BareLF = Reject the server answers 554 and closes."""
        setModule(self, self.context, {"BareLF": "Reject"})
        port = self.listen(buildSMTP)

        def run():
            client = RawClient(port)
            client.exchange("EHLO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<user@main.dom>\r\n"
                            "DATA\r\n", 4)
            reply = client.exchange(b"x\ny\n.\n", 1)
            closed = client.file.readline() == b""
            client.close()
            return reply, closed

        reply, closed = yield deferToThread(run)
        self.assertEqual(reply, ["554 5.6.0 bare LF in message; lines must end in CRLF"])
        self.assertTrue(closed)
        self.assertEqual(self.queue.committed, [])

    @defer.inlineCallbacks
    def test_vanishedClient(self):
        """A client that vanishes mid-DATA leaves nothing queued."""
        port = self.listen(buildSMTP)

        def run():
            client = RawClient(port)
            client.exchange("EHLO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<user@main.dom>\r\n"
                            "DATA\r\n", 4)
            client.send("Subject: cut\r\n\r\n" + "z" * 50000)
            client.close()

        yield deferToThread(run)
        yield self.waitFor(lambda: self.queue.received
                           and self.queue.received[0].state == "aborted")
        self.assertEqual(self.queue.committed, [])

    @defer.inlineCallbacks
    def test_lmtp(self):
        """LMTP answers each accepted recipient after the data."""
        port = self.listen(buildLMTP, name="lmtp", tls="no")
        self.successResultOf(self.directory.createAccount("other@main.dom"))

        def run():
            client = RawClient(port)
            replies = client.exchange(
                "LHLO mta.example\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<user@main.dom>\r\n"
                "RCPT TO:<nobody@main.dom>\r\nRCPT TO:<other@main.dom>\r\nDATA\r\n", 6)
            replies += client.exchange(MESSAGE + ".\r\n", 2)
            replies += client.exchange("QUIT\r\n", 1)
            client.close()
            return client.greeting, replies

        greeting, replies = yield deferToThread(run)
        self.assertIn(" LMTP ", greeting)
        self.assertEqual(replies[3], "550 5.1.1 unknown user account")
        self.assertEqual(replies[6:8], ["250 2.0.0 <user@main.dom> delivered",
                                        "250 2.0.0 <other@main.dom> delivered"])


class SwaksTests(SocketTestsBase):
    """
    swaks, an independent SMTP client.
    """

    def setUp(self):
        self.swaks = shutil.which("swaks")
        if self.swaks is None:
            raise SkipTest("swaks is not installed (apt-get install swaks); CI installs it")
        SocketTestsBase.setUp(self)

    def swaksRun(self, port, *args):
        command = [self.swaks, "--server", "127.0.0.1", "--port", str(port),
                   "--helo", "client.example", "--from", "a@example.com",
                   "--timeout", "30"] + list(args)
        return subprocess.run(command, capture_output=True, text=True, timeout=60)

    @defer.inlineCallbacks
    def test_starttlsAuthPipelining(self):
        """swaks with STARTTLS, AUTH (each mechanism) and PIPELINING relays a message."""
        port = self.listen(buildSMTP)
        for mechanism in ("PLAIN", "LOGIN", "CRAM-MD5"):
            result = yield deferToThread(
                self.swaksRun, port, "--to", "far@remote.example", "--tls",
                "--auth", mechanism, "--auth-user", "user@main.dom", "--auth-password", "pass",
                "--pipeline")
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertEqual(len(self.queue.committed), 3)
        self.assertEqual(self.queue.committed[0].envelope.protocol, "ESMTPSA")

    @defer.inlineCallbacks
    def test_relayRefused(self):
        """swaks without AUTH cannot relay (exit 24: recipients refused) but can deliver locally."""
        port = self.listen(buildSMTP)
        refused = yield deferToThread(self.swaksRun, port, "--to", "far@remote.example")
        self.assertEqual(refused.returncode, 24, refused.stdout)
        self.assertIn("550 5.7.1 relaying prohibited", refused.stdout)
        local = yield deferToThread(self.swaksRun, port, "--to", "user@main.dom")
        self.assertEqual(local.returncode, 0, local.stdout)
        self.assertEqual(len(self.queue.committed), 1)
