# -*- test-case-name: tests.mail.imap.test_sockets -*-
"""
The IMAP server over real sockets, in process: each test listens on
127.0.0.1 port 0 and drives the server from a thread with Python's
C{imaplib} (STARTTLS, imaps, the usual commands, IDLE).
"""

import atexit
import imaplib
import os
import shutil
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
from cgpro.mail.imap.factory import build
from tests.mail.imap.support import USER, makeContext, message

_TLS = []


def serverTLS():
    """
    One certificate for the whole run (making an RSA key takes a while).
    """
    if not _TLS:
        base = tempfile.mkdtemp(prefix="cgpro-imap-tls-")
        atexit.register(shutil.rmtree, base, True)
        _TLS.append(ServerTLS(base, "main.dom"))
    return _TLS[0]


def unverified():
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class IMAPLibTests(TestCase):
    """
    Python's imaplib against the server.
    """

    def setUp(self):
        self.context = makeContext(self, reactor)
        self.context.tls = serverTLS()
        self.store = self.context.mailStore
        self.sessions = []
        self.addCleanup(self._waitClosed)

    def listen(self, tls="starttls"):
        spec = ListenerSpec(name="imap", module="imap", transport="tcp", address="127.0.0.1",
                            port=0, tls=tls)
        factory = build(spec, self.context)
        original = factory.buildProtocol

        def tracked(addr):
            server = original(addr)
            self.sessions.append(server)
            return server

        factory.buildProtocol = tracked
        listening = self.context.tls.wrap(factory) if tls == "implicit" else factory
        port = reactor.listenTCP(0, listening, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return port.getHost().port

    @defer.inlineCallbacks
    def _waitClosed(self):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(not s._closed for s in self.sessions):
            yield deferLater(reactor, 0.02, lambda: None)
        for server in self.sessions:
            if not server._closed and server.transport is not None:
                server.transport.abortConnection()
        yield deferLater(reactor, 0.05, lambda: None)

    def deliver(self, subject, mailbox="INBOX"):
        return self.store.deliver(USER, mailbox, message(subject))

    @defer.inlineCallbacks
    def test_starttlsSession(self):
        """STARTTLS, LOGIN, SELECT, FETCH, STORE, SEARCH, COPY, MOVE, APPEND, EXPUNGE."""
        for i in range(3):
            yield self.deliver("m%d" % i)
        port = self.listen()

        def client():
            c = imaplib.IMAP4("127.0.0.1", port, timeout=30)
            results = {"caps": c.capabilities}
            self.assertRaises(imaplib.IMAP4.error, c.login, "user", "pass")
            c.starttls(ssl_context=unverified())
            self.assertNotIn("LOGINDISABLED", c.capabilities)
            c.login("user", "pass")
            typ, data = c.select("INBOX")
            results["select"] = (typ, data)
            results["fetch"] = c.fetch(
                "1:*", "(UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            results["body"] = c.fetch("2", "(BODY[])")
            results["store"] = c.store("1", "+FLAGS", "(\\Flagged)")
            results["search"] = c.search(None, "FLAGGED")
            results["unseen"] = c.search(None, "UNSEEN")
            c.create("Archive")
            results["copy"] = c.copy("1:2", "Archive")
            results["move"] = c.uid("MOVE", "3", "Archive")
            results["append"] = c.append("Archive", "(\\Seen)", None, message("appended"))
            c.store("1", "+FLAGS", "(\\Deleted)")
            results["expunge"] = c.expunge()
            results["list"] = c.list()
            results["status"] = c.status("Archive", "(MESSAGES UNSEEN UIDNEXT)")
            c.select("Archive", readonly=True)
            results["archive"] = c.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            c.close()
            c.logout()
            return results

        r = yield deferToThread(client)
        self.assertIn("STARTTLS", r["caps"])
        self.assertIn("LOGINDISABLED", r["caps"])
        self.assertEqual(r["select"], ("OK", [b"3"]))
        typ, data = r["fetch"]
        self.assertEqual(typ, "OK")
        self.assertIn(b"Subject: m0", data[0][1])
        self.assertIn(b"UID 1 FLAGS (\\Recent)", data[0][0])
        self.assertIn(b"Subject: m1", r["body"][1][0][1])
        self.assertEqual(r["store"][0], "OK")
        self.assertEqual(r["search"], ("OK", [b"1"]))
        self.assertEqual(r["unseen"], ("OK", [b"1 3"]))
        self.assertIn(b"[COPYUID ", r["copy"][1][0])
        self.assertEqual(r["move"][0], "OK")
        self.assertIn(b"APPENDUID", r["append"][1][0])
        # imaplib also collected the EXPUNGE of the earlier MOVE.
        self.assertEqual(r["expunge"], ("OK", [b"3", b"1"]))
        self.assertIn(b'(\\HasNoChildren \\Archive) "/" "Archive"', r["list"][1])
        self.assertEqual(r["status"][1], [b'"Archive" (MESSAGES 4 UNSEEN 2 UIDNEXT 5)'])
        subjects = [d[1] for d in r["archive"][1] if isinstance(d, tuple)]
        self.assertEqual(subjects, [b"Subject: m0\r\n\r\n", b"Subject: m1\r\n\r\n",
                                    b"Subject: m2\r\n\r\n", b"Subject: appended\r\n\r\n"])
        inbox = yield self.store.status(USER, "INBOX")
        self.assertEqual(inbox["MESSAGES"], 1)

    @defer.inlineCallbacks
    def test_imaps(self):
        """On the implicit-TLS row, imaplib's IMAP4_SSL authenticates (PLAIN) and reads."""
        yield self.deliver("secure")
        port = self.listen("implicit")

        def client():
            c = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=unverified(), timeout=30)
            caps = c.capabilities
            c.authenticate("PLAIN", lambda challenge: b"\0user@main.dom\0pass")
            c.select()
            data = c.fetch("1", "(RFC822)")
            c.logout()
            return caps, data

        caps, data = yield deferToThread(client)
        self.assertNotIn("STARTTLS", caps)
        self.assertIn("AUTH=PLAIN", caps)
        self.assertIn(b"Subject: secure", data[1][0][1])

    @defer.inlineCallbacks
    def test_idleDelivery(self):
        """A delivery reaches a client in IDLE within one second."""
        yield self.deliver("first")
        port = self.listen("implicit")
        idling = defer.Deferred()

        def client():
            c = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=unverified(), timeout=30)
            c.login("user", "pass")
            c.select()
            c.send(b"t1 IDLE\r\n")
            line = c.readline()
            assert line.startswith(b"+"), line
            reactor.callFromThread(idling.callback, time.monotonic())
            c.sock.settimeout(5)
            lines = []
            while True:
                line = c.readline()
                lines.append(line)
                if b"EXISTS" in line:
                    break
            arrived = time.monotonic()
            c.send(b"DONE\r\n")
            tagged = c.readline()
            while not tagged.startswith(b"t1 "):
                tagged = c.readline()
            c.logout()
            return arrived, lines, tagged

        running = deferToThread(client)
        yield idling
        sent = time.monotonic()
        yield self.deliver("second")
        arrived, lines, tagged = yield running
        self.assertEqual(lines[0], b"* 2 EXISTS\r\n")
        self.assertLess(arrived - sent, 1.0)
        self.assertEqual(tagged, b"t1 OK IDLE terminated\r\n")

    @defer.inlineCallbacks
    def test_flagsBetweenSessions(self):
        """Flags set in one session show in another at its next NOOP."""
        yield self.deliver("shared")
        port = self.listen("implicit")

        def client():
            a = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=unverified(), timeout=30)
            b = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=unverified(), timeout=30)
            for c in (a, b):
                c.login("user", "pass")
                c.select()
            a.store("1", "+FLAGS", "(\\Answered)")
            b.noop()
            untagged = b.response("FETCH")
            a.logout()
            b.logout()
            return untagged

        untagged = yield deferToThread(client)
        self.assertIn(b"\\Answered", untagged[1][0])

    @defer.inlineCallbacks
    def test_fetchmail(self):
        """fetchmail over imaps downloads every message and marks them seen."""
        if shutil.which("fetchmail") is None:
            raise SkipTest("fetchmail is not installed")
        for i in range(3):
            yield self.deliver("fm%d" % i)
        port = self.listen("implicit")
        home = tempfile.mkdtemp(prefix="cgpro-fetchmail-")
        self.addCleanup(shutil.rmtree, home, True)
        out = os.path.join(home, "out.mbox")
        rc = os.path.join(home, "fetchmailrc")
        with open(rc, "w") as f:
            f.write('poll 127.0.0.1 service %d protocol IMAP auth password user "user" '
                    'password "pass" ssl no sslcertck keep mda "cat >> %s"\n' % (port, out))
        os.chmod(rc, 0o600)

        def run():
            return subprocess.run(
                ["fetchmail", "-f", rc, "-N", "--nosyslog", "-v"], capture_output=True,
                timeout=60, env=dict(os.environ, HOME=home, FETCHMAILHOME=home))

        result = yield deferToThread(run)
        self.assertEqual(result.returncode, 0, result.stderr.decode() + result.stdout.decode())
        with open(out, "rb") as f:
            data = f.read()
        for i in range(3):
            self.assertIn(b"Subject: fm%d" % i, data)
        status = yield self.store.status(USER, "INBOX")
        self.assertEqual((status["MESSAGES"], status["UNSEEN"]), (3, 0))

    @defer.inlineCallbacks
    def test_mbsync(self):
        """mbsync pulls two mailboxes into a Maildir, then pushes a flag and a new message back."""
        if shutil.which("mbsync") is None:
            raise SkipTest("mbsync (isync) is not installed")
        for i in range(3):
            yield self.deliver("sync%d" % i)
        yield self.store.createMailbox(USER, "Archive")
        yield self.deliver("old", "Archive")
        port = self.listen("implicit")
        home = tempfile.mkdtemp(prefix="cgpro-mbsync-")
        self.addCleanup(shutil.rmtree, home, True)
        certificate = os.path.join(home, "server.crt")
        pem = serverTLS().pem
        with open(certificate, "wb") as f:
            f.write(pem[pem.index(b"-----BEGIN CERTIFICATE-----"):])
        mail = os.path.join(home, "mail")
        os.makedirs(mail)
        rc = os.path.join(home, "mbsyncrc")
        with open(rc, "w") as f:
            f.write("IMAPAccount test\nHost localhost\nPort %d\nUser user\nPass pass\n"
                    "SSLType IMAPS\nCertificateFile %s\nSystemCertificates no\n\n"
                    "IMAPStore remote\nAccount test\n\n"
                    "MaildirStore local\nPath %s/\nInbox %s/INBOX\nSubFolders Verbatim\n\n"
                    "Channel sync\nFar :remote:\nNear :local:\nPatterns *\nCreate Both\n"
                    "Expunge Both\nSyncState *\n" % (port, certificate, mail, mail))

        def run():
            return subprocess.run(["mbsync", "-c", rc, "-a"], capture_output=True, timeout=60,
                                  env=dict(os.environ, HOME=home))

        result = yield deferToThread(run)
        self.assertEqual(result.returncode, 0, result.stderr.decode() + result.stdout.decode())
        inbox = os.path.join(mail, "INBOX")
        files = os.listdir(os.path.join(inbox, "new")) + os.listdir(os.path.join(inbox, "cur"))
        self.assertEqual(len(files), 3)
        self.assertEqual(len(os.listdir(os.path.join(mail, "Archive", "cur")) +
                             os.listdir(os.path.join(mail, "Archive", "new"))), 1)
        # mark one read locally and add a message to Archive locally
        folder = os.path.join(inbox, "new")
        name = sorted(os.listdir(folder))[0]
        os.rename(os.path.join(folder, name), os.path.join(inbox, "cur", name + ":2,S"))
        with open(os.path.join(mail, "Archive", "new", "1.local.host"), "wb") as f:
            f.write(message("local"))
        result = yield deferToThread(run)
        self.assertEqual(result.returncode, 0, result.stderr.decode() + result.stdout.decode())
        status = yield self.store.status(USER, "INBOX")
        self.assertEqual(status["UNSEEN"], 2)
        archive = yield self.store.status(USER, "Archive")
        self.assertEqual(archive["MESSAGES"], 2)
