# -*- test-case-name: tests.mail.pop3.test_sockets -*-
"""
The POP3 server over real sockets, in process: each test listens on
127.0.0.1 port 0 with the reactor and drives the server from a thread with
Python's C{poplib} and, when installed, C{fetchmail}.
"""

import atexit
import base64
import os
import poplib
import shutil
import socket
import ssl
import subprocess
import tempfile
import time

from twisted.internet import defer, reactor
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import SkipTest, TestCase

from cgpro.core.ports import ListenerSpec
from cgpro.core.tls import ServerTLS
from cgpro.mail.pop3.factory import build
from tests.mail.pop3.fakes import USER, PASSWORD, deliver, makeContext, message

_TLS = []


def serverTLS():
    """
    One certificate for the whole run (making an RSA key takes a while).
    """
    if not _TLS:
        base = tempfile.mkdtemp(prefix="cgpro-pop3-tls-")
        atexit.register(shutil.rmtree, base, True)
        _TLS.append(ServerTLS(base, "main.dom"))
    return _TLS[0]


def unverified():
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class SocketTestsBase(TestCase):
    """
    Listening helpers; every server session is closed before a test ends.
    """

    def setUp(self):
        self.context = makeContext(self, tls=serverTLS(), reactor=reactor)
        self.messages = [message("one"), message("two", ".dot\r\n"), message("three")]
        self.uids = deliver(self, self.context, *self.messages)
        self.sessions = []
        self.addCleanup(self._waitClosed)

    def listen(self, tls="starttls"):
        spec = ListenerSpec(name="pop3", module="pop", transport="tcp", address="127.0.0.1",
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
        listening = self.context.tls.wrap(factory) if tls == "implicit" else factory
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

    def pop(self, port):
        """
        @return: a C{poplib.POP3} logged in with USER/PASS after STLS.
        """
        client = poplib.POP3("127.0.0.1", port, timeout=30)
        client.stls(unverified())
        client.user(USER)
        client.pass_(PASSWORD)
        return client

    def inboxUids(self):
        d = self.context.mailStore.openMailbox(USER, "INBOX")

        def read(mailbox):
            uids = list(mailbox.uids)
            mailbox.close()
            return uids

        return d.addCallback(read)


class POPLibTests(SocketTestsBase):
    """
    Python's poplib against the server.
    """

    @defer.inlineCallbacks
    def test_capaAndLogin(self):
        """CAPA offers STLS in clear; after STLS, USER/PASS log in."""
        port = self.listen()

        def run():
            client = poplib.POP3("127.0.0.1", port, timeout=30)
            before = client.capa()
            try:
                client.user(USER)
            except poplib.error_proto as e:
                refused = e.args[0]
            client.stls(unverified())
            after = client.capa()
            client.user(USER)
            welcome = client.pass_(PASSWORD)
            client.quit()
            return before, refused, after, welcome

        before, refused, after, welcome = yield deferToThread(run)
        self.assertIn("STLS", before)
        self.assertNotIn("USER", before)
        self.assertTrue(refused.startswith(b"-ERR [AUTH]"))
        self.assertIn("USER", after)
        self.assertEqual(after["SASL"], ["PLAIN", "LOGIN", "CRAM-MD5"])
        self.assertTrue(welcome.startswith(b"+OK user@main.dom has 3 messages"))

    @defer.inlineCallbacks
    def test_readCommands(self):
        """STAT, LIST, UIDL, TOP and RETR give the stored messages."""
        port = self.listen()

        def run():
            client = self.pop(port)
            out = (client.stat(), client.list()[1], client.uidl()[1], client.top(2, 0)[1],
                   client.retr(2)[1], client.uidl(1))
            client.quit()
            return out

        stat, listing, uidl, top, retr, one = yield deferToThread(run)
        self.assertEqual(stat, (3, sum(map(len, self.messages))))
        self.assertEqual(listing, [b"%d %d" % (i + 1, len(m)) for i, m in enumerate(self.messages)])
        self.assertEqual(len(uidl), 3)
        self.assertEqual(len(set(u.split()[1] for u in uidl)), 3)
        self.assertEqual(top[-1], b"")
        self.assertEqual(b"\r\n".join(retr) + b"\r\n", self.messages[1])
        self.assertEqual(one.split()[1:], uidl[0].split())

    @defer.inlineCallbacks
    def test_apop(self):
        """poplib's APOP logs in (after STLS)."""
        port = self.listen()

        def run():
            client = poplib.POP3("127.0.0.1", port, timeout=30)
            client.stls(unverified())
            reply = client.apop(USER, PASSWORD)
            client.quit()
            return reply

        self.assertTrue((yield deferToThread(run)).startswith(b"+OK"))

    @defer.inlineCallbacks
    def test_authPlain(self):
        """AUTH PLAIN with an initial response logs in."""
        port = self.listen()

        def run():
            client = poplib.POP3("127.0.0.1", port, timeout=30)
            client.stls(unverified())
            token = base64.b64encode(b"\0" + USER.encode() + b"\0" + PASSWORD.encode())
            reply = client._shortcmd("AUTH PLAIN " + token.decode())
            stat = client.stat()
            client.quit()
            return reply, stat

        reply, stat = yield deferToThread(run)
        self.assertTrue(reply.startswith(b"+OK"))
        self.assertEqual(stat[0], 3)

    @defer.inlineCallbacks
    def test_deleQuitRemoves(self):
        """DELE then QUIT removes the messages from the store."""
        port = self.listen()

        def run():
            client = self.pop(port)
            client.dele(1)
            client.dele(3)
            return client.quit()

        self.assertTrue((yield deferToThread(run)).startswith(b"+OK"))
        self.assertEqual((yield self.inboxUids()), [self.uids[1]])

    @defer.inlineCallbacks
    def test_deleDropKeeps(self):
        """DELE then a dropped connection removes nothing."""
        port = self.listen()

        def run():
            client = self.pop(port)
            client.dele(1)
            client.sock.close()
            client.file.close()

        yield deferToThread(run)
        yield self.waitFor(lambda: self.sessions and all(s.lost for s in self.sessions))
        self.assertEqual((yield self.inboxUids()), self.uids)

        def again():
            client = self.pop(port)
            stat = client.stat()
            client.quit()
            return stat

        self.assertEqual((yield deferToThread(again))[0], 3)

    @defer.inlineCallbacks
    def test_secondSessionLocked(self):
        """While one session holds the maildrop a second gets [IN-USE]."""
        port = self.listen()

        def run():
            first = self.pop(port)
            try:
                self.pop(port)
            except poplib.error_proto as e:
                refused = e.args[0]
            first.quit()
            second = self.pop(port)
            stat = second.stat()
            second.quit()
            return refused, stat

        refused, stat = yield deferToThread(run)
        self.assertTrue(refused.startswith(b"-ERR [IN-USE]"), refused)
        self.assertEqual(stat[0], 3)

    @defer.inlineCallbacks
    def test_pop3s(self):
        """On an implicit-TLS listener poplib's POP3_SSL logs in with USER/PASS."""
        port = self.listen(tls="implicit")

        def run():
            client = poplib.POP3_SSL("127.0.0.1", port, context=unverified(), timeout=30)
            capa = client.capa()
            client.user(USER)
            client.pass_(PASSWORD)
            data = client.retr(1)[1]
            client.quit()
            return capa, data

        capa, data = yield deferToThread(run)
        self.assertNotIn("STLS", capa)
        self.assertEqual(b"\r\n".join(data) + b"\r\n", self.messages[0])

    @defer.inlineCallbacks
    def test_bigMessage(self):
        """A 5 MB message is retrieved intact through the streaming producer."""
        data = b"Subject: big\r\n\r\n" + b"".join(
            b".%07d " % i + b"y" * 90 + b"\r\n" for i in range(50000))
        deliver(self, self.context, data)
        port = self.listen()

        def run():
            client = self.pop(port)
            lines = client.retr(4)[1]
            client.quit()
            return lines

        lines = yield deferToThread(run)
        self.assertEqual(b"\r\n".join(lines) + b"\r\n", data)

    @defer.inlineCallbacks
    def test_badInput(self):
        """Long lines and unknown commands get -ERR; the session stays usable."""
        port = self.listen()

        def run():
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
            file = sock.makefile("rb")
            greeting = file.readline()
            sock.sendall(b"X" * 5000 + b"\r\nFROB\r\nCAPA\r\n")
            replies = [file.readline() for _ in range(3)]
            sock.sendall(b"QUIT\r\n")
            while True:
                line = file.readline()
                if not line or line.startswith(b"+OK main.dom"):
                    break
            sock.close()
            return greeting, replies

        greeting, replies = yield deferToThread(run)
        self.assertTrue(greeting.startswith(b"+OK"))
        self.assertEqual(replies[0], b"-ERR line too long\r\n")
        self.assertTrue(replies[1].startswith(b"-ERR unknown command"))
        self.assertEqual(replies[2], b"+OK Capability list follows\r\n")


class FetchmailTests(SocketTestsBase):
    """
    fetchmail against the server, when installed.
    """

    def setUp(self):
        self.fetchmail = shutil.which("fetchmail")
        if self.fetchmail is None:
            raise SkipTest("fetchmail is not installed (apt-get install fetchmail)")
        return SocketTestsBase.setUp(self)

    def runFetchmail(self, port, options):
        home = tempfile.mkdtemp(prefix="cgpro-fetchmail-")
        self.addCleanup(shutil.rmtree, home, True)
        out = os.path.join(home, "out")
        rc = os.path.join(home, "fetchmailrc")
        with open(rc, "w") as f:
            f.write('set no bouncemail\n'
                    'poll 127.0.0.1 service %d protocol POP3 uidl auth password\n'
                    '  user "%s" there with password "%s" is "nobody" here\n'
                    '  %s no sslcertck\n'
                    '  mda "cat >> %s"\n' % (port, USER, PASSWORD, options, out))
        os.chmod(rc, 0o600)
        env = dict(os.environ, HOME=home, FETCHMAILHOME=home)

        def run():
            result = subprocess.run([self.fetchmail, "--nodetach", "--nosyslog", "-v", "-f", rc],
                                    env=env, capture_output=True, timeout=60)
            text = ""
            if os.path.exists(out):
                with open(out, "rb") as f:
                    text = f.read()
            return result, text

        return deferToThread(run)

    @defer.inlineCallbacks
    def test_stls(self):
        """fetchmail over STLS fetches every message and deletes them."""
        port = self.listen()
        result, out = yield self.runFetchmail(port, "sslproto tls1.2+")
        log = result.stdout + result.stderr
        self.assertEqual(result.returncode, 0, log)
        self.assertIn(b"STLS", log)
        for subject in (b"one", b"two", b"three"):
            self.assertIn(b"Subject: " + subject, out)
        self.assertEqual((yield self.inboxUids()), [])

    @defer.inlineCallbacks
    def test_pop3s(self):
        """fetchmail over implicit TLS (ssl) fetches every message."""
        port = self.listen(tls="implicit")
        result, out = yield self.runFetchmail(port, "ssl")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertEqual(out.count(b"Subject: "), 3)
        self.assertEqual((yield self.inboxUids()), [])
