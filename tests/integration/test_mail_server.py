# -*- test-case-name: tests.integration.test_mail_server -*-
"""
End-to-end tests of mail transfer (issue 3, "Proof"): the real server
(C{twistd} in a child process, L{tests.support.server}) spoken to by real
clients (Python's C{smtplib}, swaks, raw sockets), with every delivery
checked where an administrator would look: the accounts' Maildir++
folders and the queue folder in the base folder.

Every test starts its own server (about 0.7 s): settings changed over the
CLI (Client IPs, module settings, the Router table), a stopped peer or a
killed process cannot leak into another test.  Outbound tests start a
second server on loopback, with its own domain C{remote.test}, as the
remote MX.
"""

import email
import email.policy
import mailbox
import os
import re
import smtplib
import socket
import time

from twisted.trial.unittest import SynchronousTestCase

from cgpro.cli.client import Keyword
from tests.support.mail import (
    LMTP_PORT,
    SMTPS_PORT,
    SMTP_PORT,
    SUBMISSION_PORT,
    TRAILER,
    MailLoad,
    SMTPWire,
    mailboxFiles,
    maildirPath,
    messages,
    port,
    queueFiles,
    runSwaks,
    unverifiedContext,
    waitFor,
    waitForMessages,
)
from tests.support.server import freePort, startServer

PASSWORD = "pw-Secret1"

#: The mechanisms every session offers once it is under TLS, in order.
MECHANISMS = ["PLAIN", "LOGIN", "CRAM-MD5"]

#: The ESMTP keywords every SMTP session offers (RFC 1870, 6152, 6531,
#: 2034, 3461, 2920).
EXTENSIONS = ["pipelining", "size", "8bitmime", "smtputf8", "enhancedstatuscodes", "dsn"]

#: Our trace field of a message received over SMTP for one recipient.
RECEIVED = re.compile(
    rb"Received: from (?P<helo>\S+) \(\[127\.0\.0\.1\]\)\r\n"
    rb"\tby (?P<by>\S+) \(CommuniGate Pro (?P<service>SMTP|LMTP) [^)]+\)\r\n"
    rb"\twith (?P<protocol>[A-Z]+) id (?P<id>\d+)(?: \((?P<comment>[^)]*)\))?\r\n"
    rb"\tfor <(?P<rcpt>[^>]+)>; [A-Z][a-z]{2}, \d{1,2} [A-Z][a-z]{2} \d{4} "
    rb"\d\d:\d\d:\d\d \+0000\r\n"
)

#: The reply to a committed message: C{250 2.0.0 <queue id> message accepted ...}.
ACCEPTED = re.compile(r"^2\.0\.0 (\d+) message accepted for delivery$")


def mailServer(testCase, accounts=("alice", "bob"), **kwargs):
    """
    Start a server for one test and create accounts in its Main Domain.

    @return: C{(server, cli)}.
    """
    server = startServer(testCase, **kwargs)
    cli = server.client()
    for name in accounts:
        cli.createAccount("%s@%s" % (name, server.domain), {"Password": PASSWORD})
    return server, cli


def smtp(server, base=SMTP_PORT, tls=False):
    """
    @return: an C{smtplib} client on one of the server's SMTP listeners,
        after EHLO (and STARTTLS and EHLO again with C{tls}); the server's
        cleanup ends whatever session a failed test leaves open.
    """
    if base == SMTPS_PORT:
        client = smtplib.SMTP_SSL("127.0.0.1", port(server, base), local_hostname="client.test",
                                  timeout=30, context=unverifiedContext())
    else:
        client = smtplib.SMTP("127.0.0.1", port(server, base), local_hostname="client.test",
                              timeout=30)
    client.ehlo()
    if tls:
        code, _ = client.starttls(context=unverifiedContext())
        assert code == 220, code
        client.ehlo()
    return client


def authenticate(client, mechanism, user, password, initialResponse=True):
    """
    AUTH with one given mechanism (C{smtplib.login} picks its own).

    @return: the C{(code, text)} reply.
    """
    client.user, client.password = user, password
    method = {"PLAIN": client.auth_plain, "LOGIN": client.auth_login,
              "CRAM-MD5": client.auth_cram_md5}[mechanism]
    return client.auth(mechanism, method, initial_response_ok=initialResponse)


def simpleMessage(messageId, subject="test", body="Hello.\r\n", sender="sender@ext.test",
                  to="alice@main.dom"):
    """
    @return: a small message with CRLF line ends and Message-ID C{<messageId>}.
    """
    return ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s>\r\n\r\n%s"
            % (sender, to, subject, messageId, body)).encode("utf-8")


def sendOne(client, sender, recipients, data):
    """
    One transaction with C{smtplib}'s low-level commands, so the DATA
    reply (with the queue id) is seen.

    @return: the queue id the server gave.
    """
    code, text = client.mail(sender)
    assert code == 250, (code, text)
    for recipient in recipients:
        code, text = client.rcpt(recipient)
        assert code == 250, (recipient, code, text)
    code, text = client.data(data)
    assert code == 250, (code, text)
    match = ACCEPTED.match(text.decode())
    assert match, text
    return match.group(1)


def withId(server, account, messageId, mailboxName=None):
    """
    @return: the raw files of a mailbox whose Message-ID is C{<messageId>}.
    """
    needle = ("Message-ID: <%s>\r\n" % (messageId,)).encode()
    return [data for _name, data in mailboxFiles(server, account, mailboxName) if needle in data]


def queueEmpty(server):
    """
    @return: whether no message file (nor journal, nor temporary file) is
        left in the queue folder.
    """
    return not queueFiles(server)


class MailTestMixin:
    """
    Assertions shared by the test cases below.
    """

    def assertNoTraceback(self, transcript):
        """
        No reply line leaks a Python traceback or an internal error.
        """
        for line in transcript:
            self.assertNotIn(b"Traceback", line)
            self.assertNotIn(b'File "', line)
            self.assertNotIn(b"internal error", line)

    def assertServerHealthy(self, server):
        """
        The server log has no traceback: nothing the clients did made an
        unexpected exception.
        """
        log = server.log()
        self.assertNotIn("Traceback", log, "server log:\n" + log[-5000:])

    def assertDeliversNormally(self, server, account="alice@main.dom"):
        """
        After whatever came before, a plain message is still accepted and
        stored once.
        """
        messageId = "still-works.%s@client.test" % (time.monotonic_ns(),)
        client = smtp(server)
        sendOne(client, "sender@ext.test", [account], simpleMessage(messageId, to=account))
        client.quit()
        waitFor(lambda: withId(server, account, messageId), what="the normal delivery")
        self.assertEqual(len(withId(server, account, messageId)), 1)


# -- smtplib -------------------------------------------------------------------------------

class SMTPClientTests(MailTestMixin, SynchronousTestCase):
    """
    C{smtplib} against the SMTP (25), submission (587) and SMTPS (465)
    listeners: extensions, delivery, AUTH, relay protection.
    """

    def setUp(self):
        self.server, self.cli = mailServer(self)

    def test_ehloFeatures(self):
        """
        Every listener offers the ESMTP extensions; STARTTLS until TLS, AUTH only under TLS.
        """
        for base in (SMTP_PORT, SUBMISSION_PORT):
            client = smtp(self.server, base)
            features = client.esmtp_features
            for keyword in EXTENSIONS + ["starttls"]:
                self.assertIn(keyword, features, "port %d" % (base,))
            self.assertEqual(features["size"], "52428800")
            self.assertNotIn("auth", features, "AUTH in clear on port %d" % (base,))
            client.starttls(context=unverifiedContext())
            client.ehlo()
            features = client.esmtp_features
            for keyword in EXTENSIONS:
                self.assertIn(keyword, features)
            self.assertNotIn("starttls", features)
            self.assertEqual(features["auth"].split(), MECHANISMS)
            client.quit()
        client = smtp(self.server, SMTPS_PORT)
        self.assertEqual(client.esmtp_features["auth"].split(), MECHANISMS)
        self.assertNotIn("starttls", client.esmtp_features)
        client.quit()

    def test_sizeFollowsSetting(self):
        """
        SIZE announces MaxMessageSize; a change applies to the next session.
        """
        self.cli.command("UPDATEMODULE", "SMTP", {"MaxMessageSize": "10M"})
        client = smtp(self.server)
        self.assertEqual(client.esmtp_features["size"], str(10 * 1024 * 1024))
        client.quit()

    def test_localDelivery(self):
        """
        A message to a local account is in its INBOX once, under Return-Path and our Received.
        """
        client = smtp(self.server)
        data = simpleMessage("local-1@client.test", body="Line one.\r\n.dot line\r\nEnd.\r\n")
        queueId = sendOne(client, "sender@ext.test", ["alice@main.dom"], data)
        client.quit()
        [stored] = waitForMessages(self.server, "alice@main.dom", 1)
        [raw] = withId(self.server, "alice@main.dom", "local-1@client.test")
        self.assertTrue(raw.startswith(b"Return-Path: <sender@ext.test>\r\nReceived: "), raw)
        match = RECEIVED.match(raw, raw.index(b"Received: "))
        self.assertIsNotNone(match, raw)
        self.assertEqual(match.group("helo"), b"client.test")
        self.assertEqual(match.group("by"), b"main.dom")
        self.assertEqual(match.group("protocol"), b"ESMTP")
        self.assertEqual(match.group("id").decode(), queueId)
        self.assertEqual(match.group("rcpt"), b"alice@main.dom")
        self.assertEqual(len(stored.get_all("Received")), 1)
        # smtplib sent "..dot line": the server took the stuffed dot off.
        self.assertTrue(raw.endswith(data), "the message is stored as sent, dot-unstuffed")
        self.assertEqual(mailboxFiles(self.server, "bob@main.dom"), [])
        waitFor(lambda: queueEmpty(self.server), what="the queue to empty")

    def test_eightBitAndUTF8(self):
        """
        SMTPUTF8 addresses and an 8-bit body go through unchanged.
        """
        client = smtp(self.server)
        body = "Grüße, 日本語.\r\n"
        data = simpleMessage("utf8-1@client.test", subject="Grüße", body=body,
                             sender="jörg@ext.test")
        client.sendmail("jörg@ext.test", ["alice@main.dom"], data,
                        mail_options=["SMTPUTF8", "BODY=8BITMIME"])
        client.quit()
        [raw] = [d for _, d in waitFor(lambda: mailboxFiles(self.server, "alice@main.dom"),
                                       what="the message")]
        self.assertTrue(raw.startswith("Return-Path: <jörg@ext.test>\r\n".encode()), raw)
        self.assertTrue(raw.endswith(data))

    def test_multipleRecipients(self):
        """
        One transaction to two accounts stores one copy in each.
        """
        client = smtp(self.server)
        sendOne(client, "sender@ext.test", ["alice@main.dom", "bob@main.dom", "ALICE@main.dom"],
                simpleMessage("two-1@client.test"))
        client.quit()
        for account in ("alice@main.dom", "bob@main.dom"):
            waitForMessages(self.server, account, 1)
        time.sleep(0.3)
        self.assertEqual(len(withId(self.server, "alice@main.dom", "two-1@client.test")), 1)
        self.assertEqual(len(withId(self.server, "bob@main.dom", "two-1@client.test")), 1)

    def test_authOverSTARTTLS(self):
        """
        PLAIN, LOGIN and CRAM-MD5 (with and without initial response) work after STARTTLS.
        """
        for base in (SMTP_PORT, SUBMISSION_PORT):
            for mechanism in MECHANISMS:
                for initial in (True, False):
                    client = smtp(self.server, base, tls=True)
                    code, text = authenticate(client, mechanism, "alice@main.dom", PASSWORD,
                                              initial)
                    self.assertEqual((code, text), (235, b"2.7.0 authentication successful"),
                                     "%s on port %d" % (mechanism, base))
                    self.assertEqual(client.docmd("AUTH", "PLAIN")[0], 503)
                    client.quit()

    def test_authOverSMTPS(self):
        """
        PLAIN, LOGIN and CRAM-MD5 work on the implicit-TLS listener; a bare name logs in too.
        """
        for mechanism in MECHANISMS:
            client = smtp(self.server, SMTPS_PORT)
            self.assertEqual(authenticate(client, mechanism, "bob", PASSWORD)[0], 235, mechanism)
            client.quit()

    def test_authWrongPassword(self):
        """
        A wrong password or user is 535 5.7.8; the session may try again.
        """
        client = smtp(self.server, SUBMISSION_PORT, tls=True)
        for mechanism, user in (("PLAIN", "alice@main.dom"), ("CRAM-MD5", "nobody@main.dom")):
            error = self.assertRaises(smtplib.SMTPAuthenticationError, authenticate, client,
                                      mechanism, user, "wrong")
            self.assertEqual(error.smtp_code, 535)
            self.assertTrue(error.smtp_error.startswith(b"5.7.8 "), error.smtp_error)
        self.assertEqual(authenticate(client, "LOGIN", "alice@main.dom", PASSWORD)[0], 235)
        client.quit()

    def test_noCleartextAuth(self):
        """
        AUTH in clear is 538 5.7.11 unless AllowCleartextAuth is set.
        """
        client = smtp(self.server)
        code, text = client.docmd("AUTH", "PLAIN AGFsaWNlAHB3")
        self.assertEqual(code, 538)
        self.assertTrue(text.startswith(b"5.7.11 "), text)
        client.quit()
        self.cli.command("UPDATEMODULE", "SMTP", {"AllowCleartextAuth": "YES"})
        client = smtp(self.server)
        self.assertEqual(client.esmtp_features["auth"].split(), MECHANISMS)
        self.assertEqual(authenticate(client, "PLAIN", "alice@main.dom", PASSWORD)[0], 235)
        client.quit()

    def test_submissionNeedsAuth(self):
        """
        Submission refuses MAIL before AUTH (530 5.7.0); after AUTH the message carries ESMTPSA.
        """
        client = smtp(self.server, SUBMISSION_PORT)
        code, text = client.mail("alice@main.dom")
        self.assertEqual(code, 530)
        self.assertIn(b"STARTTLS", text)
        client.quit()
        client = smtp(self.server, SUBMISSION_PORT, tls=True)
        code, text = client.mail("alice@main.dom")
        self.assertEqual((code, text), (530, b"5.7.0 authentication required"))
        authenticate(client, "CRAM-MD5", "alice@main.dom", PASSWORD)
        sendOne(client, "alice@main.dom", ["bob@main.dom"],
                simpleMessage("sub-1@client.test", sender="alice@main.dom", to="bob@main.dom"))
        client.quit()
        [raw] = [d for _, d in waitFor(lambda: mailboxFiles(self.server, "bob@main.dom"),
                                       what="the message")]
        match = RECEIVED.search(raw)
        self.assertEqual(match.group("protocol"), b"ESMTPSA")
        self.assertIn(b"authenticated as alice@main.dom", match.group("comment"))
        self.assertIn(b"TLS", match.group("comment"))

    def test_relayRefusedFromNonClient(self):
        """
        From an address not in Client IPs, a remote recipient is 550 5.7.1; local ones still pass.
        """
        client = smtp(self.server)
        client.mail("sender@ext.test")
        code, text = client.rcpt("someone@remote.example")
        self.assertEqual((code, text), (550, b"5.7.1 relaying prohibited"))
        self.assertEqual(client.rcpt("nobody@main.dom"), (550, b"5.1.1 unknown user account"))
        self.assertEqual(client.rcpt("alice@main.dom")[0], 250)
        self.assertEqual(client.data(simpleMessage("relay-1@client.test"))[0], 250)
        client.quit()
        waitForMessages(self.server, "alice@main.dom", 1)
        self.assertEqual(self.cli.command("LISTQUEUES").get("SMTP", {}), {})

    def relayTo(self, client, recipient):
        """
        Send one message to a remote recipient and check that the queue
        holds it for the SMTP module.
        """
        sendOne(client, "alice@main.dom", [recipient],
                simpleMessage("relay@client.test", to=recipient))
        domain = recipient.rpartition("@")[2]
        queues = waitFor(lambda: self.cli.command("LISTQUEUES").get("SMTP"),
                         what="the SMTP queue")
        self.assertIn(domain, queues)
        self.assertEqual(queues[domain]["nTotal"], 1)

    def deadSmartHost(self):
        """
        Send all outbound mail to a loopback port nobody listens on, so
        relayed test messages stay queued and never leave the machine.
        """
        self.cli.command("UPDATEMODULE", "SMTP", {"SmartHost": "127.0.0.1:%d" % (freePort(),)})

    def test_relayAfterAuth(self):
        """
        An authenticated user may relay, on SMTP and on submission.
        """
        self.deadSmartHost()
        client = smtp(self.server, SUBMISSION_PORT, tls=True)
        authenticate(client, "PLAIN", "alice@main.dom", PASSWORD)
        self.relayTo(client, "someone@remote.example")
        client.quit()
        client = smtp(self.server, SMTP_PORT, tls=True)
        authenticate(client, "LOGIN", "alice@main.dom", PASSWORD)
        self.relayTo(client, "someone@other.example")
        client.quit()

    def test_relayFromClientIP(self):
        """
        Once 127.0.0.1 is in Client IPs, an unauthenticated session may relay.
        """
        self.deadSmartHost()
        self.cli.command("SETCLIENTIPS", "127.0.0.1")
        client = smtp(self.server)
        self.relayTo(client, "someone@remote.example")
        client.quit()

    def test_relayRouterRecord(self):
        """
        A Relay: Router record lets anybody send to that domain; other domains stay refused.
        """
        self.deadSmartHost()
        self.cli.setRouterTable("Relay:<*@partner.example> = *@partner.example\n")
        client = smtp(self.server)
        client.mail("sender@ext.test")
        self.assertEqual(client.rcpt("x@other.example")[0], 550)
        client.rset()
        self.relayTo(client, "someone@partner.example")
        client.quit()


class PipeliningTests(MailTestMixin, SynchronousTestCase):
    """
    PIPELINING (RFC 2920) over a raw socket: a whole group in one write.
    """

    def test_pipelinedTransactions(self):
        """
        Two transactions pipelined: replies in order, one per command, both delivered.
        """
        server, cli = mailServer(self)
        wire = SMTPWire(port(server))
        wire.send("EHLO client.test\r\nMAIL FROM:<a@ext.test>\r\nRCPT TO:<alice@main.dom>\r\n"
                  "RCPT TO:<nobody@main.dom>\r\nRCPT TO:<bob@main.dom>\r\nDATA\r\n")
        self.assertEqual(wire.reply()[0], 250)
        self.assertEqual([wire.reply()[0] for _ in range(5)], [250, 250, 550, 250, 354])
        wire.send(simpleMessage("pipe-1@client.test") + b".\r\n"
                  + b"RSET\r\nMAIL FROM:<b@ext.test>\r\nRCPT TO:<bob@main.dom>\r\nDATA\r\n")
        replies = [wire.reply() for _ in range(5)]
        self.assertEqual([r[0] for r in replies], [250, 250, 250, 250, 354])
        self.assertIsNotNone(ACCEPTED.match(replies[0][1][0]), replies[0])
        wire.send(simpleMessage("pipe-2@client.test") + b".\r\nQUIT\r\n")
        self.assertEqual(wire.reply()[0], 250)
        self.assertEqual(wire.reply()[0], 221)
        self.assertTrue(wire.closed())
        self.assertNoTraceback(wire.transcript)
        waitForMessages(server, "bob@main.dom", 2)
        self.assertEqual(len(withId(server, "alice@main.dom", "pipe-1@client.test")), 1)
        self.assertEqual(len(withId(server, "bob@main.dom", "pipe-1@client.test")), 1)
        self.assertEqual(len(withId(server, "bob@main.dom", "pipe-2@client.test")), 1)

    def test_commandsAfterSTARTTLSDropped(self):
        """
        Commands pipelined behind STARTTLS in clear are discarded, not run under TLS.
        """
        server, cli = mailServer(self)
        sock = socket.create_connection(("127.0.0.1", port(server)), timeout=10)
        self.addCleanup(sock.close)
        reader = sock.makefile("rb")
        reader.readline()
        sock.sendall(b"EHLO client.test\r\n")
        while reader.readline()[3:4] == b"-":
            pass
        sock.sendall(b"STARTTLS\r\nMAIL FROM:<injected@ext.test>\r\n")
        self.assertTrue(reader.readline().startswith(b"220 "))
        tls = unverifiedContext().wrap_socket(sock, server_hostname="main.dom")
        tlsReader = tls.makefile("rb")
        tls.sendall(b"NOOP\r\n")
        self.assertEqual(tlsReader.readline(), b"250 2.0.0 OK\r\n")
        tls.sendall(b"RCPT TO:<alice@main.dom>\r\n")
        self.assertTrue(tlsReader.readline().startswith(b"503 "), "no MAIL from before TLS")
        tls.close()


# -- swaks ---------------------------------------------------------------------------------

class SwaksTests(MailTestMixin, SynchronousTestCase):
    """
    swaks, an independent SMTP client, against the listeners.
    """

    def setUp(self):
        self.server, self.cli = mailServer(self)

    def swaks(self, base, *args):
        return runSwaks("--server", "127.0.0.1:%d" % (port(self.server, base),),
                        "--ehlo", "swaks.test", *args)

    def test_plainDelivery(self):
        """
        swaks delivers a message to a local account (exit 0, 250 with a queue id).
        """
        result = self.swaks(SMTP_PORT, "--from", "x@ext.test", "--to", "alice@main.dom",
                            "--header", "Message-ID: <swaks-1@swaks.test>")
        self.assertEqual(result.returncode, 0, result.stdout)
        self.assertRegex(result.stdout, r"<- *250 2\.0\.0 \d+ message accepted for delivery")
        waitFor(lambda: withId(self.server, "alice@main.dom", "swaks-1@swaks.test"),
                what="the message")

    def test_pipeline(self):
        """
        swaks --pipeline with two recipients, one unknown: exit 0, the known one gets it.
        """
        result = self.swaks(SMTP_PORT, "--pipeline", "--from", "x@ext.test",
                            "--to", "alice@main.dom,nobody@main.dom,bob@main.dom",
                            "--header", "Message-ID: <swaks-2@swaks.test>")
        self.assertEqual(result.returncode, 0, result.stdout)
        self.assertIn("550 5.1.1 unknown user account", result.stdout)
        for account in ("alice@main.dom", "bob@main.dom"):
            waitFor(lambda: withId(self.server, account, "swaks-2@swaks.test"),
                    what="the message for " + account)

    def test_tlsAuth(self):
        """
        swaks --tls --auth with each mechanism on submission, and on SMTPS with --tls-on-connect.
        """
        for mechanism in MECHANISMS:
            result = self.swaks(SUBMISSION_PORT, "--tls", "--auth", mechanism,
                                "--auth-user", "alice@main.dom", "--auth-password", PASSWORD,
                                "--from", "alice@main.dom", "--to", "bob@main.dom")
            self.assertEqual(result.returncode, 0, result.stdout)
            self.assertIn("220 2.0.0 ready to start TLS", result.stdout)
            self.assertIn("235 2.7.0 authentication successful", result.stdout)
        result = self.swaks(SMTPS_PORT, "--tls-on-connect", "--auth", "CRAM-MD5",
                            "--auth-user", "bob", "--auth-password", PASSWORD,
                            "--from", "bob@main.dom", "--to", "alice@main.dom")
        self.assertEqual(result.returncode, 0, result.stdout)
        waitForMessages(self.server, "bob@main.dom", 3)
        waitForMessages(self.server, "alice@main.dom", 1)

    def test_authWrongPassword(self):
        """
        swaks with a wrong password fails at AUTH (exit 28) and sends nothing.
        """
        result = self.swaks(SUBMISSION_PORT, "--tls", "--auth", "PLAIN",
                            "--auth-user", "alice@main.dom", "--auth-password", "wrong",
                            "--from", "alice@main.dom", "--to", "bob@main.dom")
        self.assertEqual(result.returncode, 28, result.stdout)
        self.assertIn("535 5.7.8", result.stdout)

    def test_relayRefused(self):
        """
        swaks to a remote domain without AUTH: no RCPT accepted (exit 24), 550 5.7.1.
        """
        result = self.swaks(SMTP_PORT, "--from", "x@ext.test", "--to", "someone@remote.example")
        self.assertEqual(result.returncode, 24, result.stdout)
        self.assertIn("550 5.7.1 relaying prohibited", result.stdout)
        self.assertEqual(queueFiles(self.server), [])


# -- the Router ----------------------------------------------------------------------------

class RouterTests(MailTestMixin, SynchronousTestCase):
    """
    Recipients resolved by the Router: Router table records, aliases,
    forwarders, groups and mailing lists, each delivered where it should.
    """

    def test_routedDeliveries(self):
        """
        Mail: record, alias, forwarder, group and list addresses each reach their accounts.
        """
        server, cli = mailServer(self, accounts=("sales", "john", "bob", "carol", "dave",
                                                 "erin", "frank"))
        cli.setRouterTable("<info@main.dom> = sales@main.dom\n"
                           "Mail:<*@old.example> = *@main.dom\n")
        cli.setAccountAliases("john@main.dom", ["jsmith"])
        cli.command("CREATEFORWARDER", "fwd@main.dom", Keyword("TO"), "bob@main.dom")
        cli.command("CREATEGROUP", "team@main.dom", {"Members": ["carol", "dave@main.dom"]})
        cli.command("CREATELIST", "news@main.dom", Keyword("FOR"), "frank@main.dom")
        for subscriber in ("erin@main.dom", "carol@main.dom"):
            cli.command("LIST", "news@main.dom", Keyword("subscribe"), subscriber)
        table = [
            # address            route (MAIL)                                  who gets it
            ("info@main.dom", ["LOCAL", "sales@main.dom", "sales"], ["sales"]),
            ("sales@old.example", ["LOCAL", "sales@main.dom", "sales"], ["sales"]),
            ("jsmith@main.dom", ["LOCAL", "john@main.dom", "john"], ["john"]),
            ("fwd@main.dom", ["LOCAL", "bob@main.dom", "bob"], ["bob"]),
            ("team@main.dom", ["LIST", "team@main.dom", "*"], ["carol", "dave"]),
            ("news@main.dom", ["LIST", "news@main.dom", "*"], ["carol", "erin"]),
        ]
        client = smtp(server)
        for address, route, _ in table:
            self.assertEqual(cli.route(address, "MAIL"), route, address)
            sendOne(client, "poster@ext.test", [address],
                    simpleMessage("to-%s" % (address,), sender="poster@ext.test", to=address))
        client.quit()
        expected = {}
        for address, _, accounts in table:
            for name in accounts:
                expected.setdefault(name, set()).add("<to-%s>" % (address,))
        for name, ids in expected.items():
            got = waitForMessages(server, name + "@main.dom", len(ids))
            time.sleep(0.2)
            got = messages(server, name + "@main.dom")
            self.assertEqual(sorted(m["Message-ID"] for m in got), sorted(ids), name)
        self.assertEqual(mailboxFiles(server, "frank@main.dom"), [], "the owner is no subscriber")
        [post] = [m for m in messages(server, "erin@main.dom")]
        self.assertEqual(post["List-Id"], "<news.main.dom>")
        self.assertEqual(post["Precedence"], "list")
        [copy] = [m for m in messages(server, "dave@main.dom")]
        self.assertIsNone(copy["List-Id"], "a group copy is not a list post")
        waitFor(lambda: queueEmpty(server), what="the queue to empty")

    def test_unknownAfterRouting(self):
        """
        A Router record to an unknown account is refused at RCPT (550 5.1.1).
        """
        server, cli = mailServer(self)
        cli.setRouterTable("<ghost@main.dom> = nobody@main.dom\n")
        client = smtp(server)
        client.mail("poster@ext.test")
        self.assertEqual(client.rcpt("ghost@main.dom"), (550, b"5.1.1 unknown user account"))
        client.quit()


# -- Rules ---------------------------------------------------------------------------------

class RulesTests(MailTestMixin, SynchronousTestCase):
    """
    Account mail rules run at local delivery: Store in, vacation replies.
    """

    SPAM_RULE = [[5, "spam", [["Subject", "is", "*SPAM*"]], [["Store in", "Junk"]]]]

    def test_storeInMailbox(self):
        """
        "Store in Junk" files a matching message in .Junk; other mail stays in INBOX.
        """
        server, cli = mailServer(self)
        client = smtp(server)
        sendOne(client, "x@ext.test", ["alice@main.dom"], simpleMessage("first@client.test"))
        waitForMessages(server, "alice@main.dom", 1)
        # No CLI command creates mailboxes yet; any Maildir++ tool can.
        mailbox.Maildir(maildirPath(server, "alice@main.dom"), create=False).add_folder("Junk")
        cli.command("SETACCOUNTMAILRULES", "alice@main.dom", self.SPAM_RULE)
        sendOne(client, "x@ext.test", ["alice@main.dom"],
                simpleMessage("spam@client.test", subject="Buy SPAM now"))
        sendOne(client, "x@ext.test", ["alice@main.dom"],
                simpleMessage("ham@client.test", subject="Lunch?"))
        client.quit()
        [junk] = waitForMessages(server, "alice@main.dom", 1, mailbox="Junk")
        self.assertEqual(junk["Message-ID"], "<spam@client.test>")
        inbox = waitForMessages(server, "alice@main.dom", 2)
        self.assertEqual(sorted(m["Message-ID"] for m in inbox),
                         ["<first@client.test>", "<ham@client.test>"])

    def test_storeInMissingMailbox(self):
        """
        "Store in" a mailbox that does not exist keeps the message in INBOX (store fallback).
        """
        server, cli = mailServer(self)
        cli.command("SETACCOUNTMAILRULES", "bob@main.dom", self.SPAM_RULE)
        client = smtp(server)
        sendOne(client, "x@ext.test", ["bob@main.dom"],
                simpleMessage("spam2@client.test", subject="SPAM SPAM", to="bob@main.dom"))
        client.quit()
        [stored] = waitForMessages(server, "bob@main.dom", 1)
        self.assertEqual(stored["Message-ID"], "<spam2@client.test>")
        self.assertFalse(os.path.exists(maildirPath(server, "bob@main.dom", "Junk")))

    def test_vacationOnce(self):
        """
        A vacation rule answers the first message of a sender, not the second.
        """
        server, cli = mailServer(self, accounts=("carol", "zed"))
        cli.command("SETACCOUNTMAILRULES", "carol@main.dom", [
            [2, "#Vacation", [["Human Generated", "---"]],
             [["Reply with", "I am away until Monday."]]]])
        client = smtp(server)
        for number in (1, 2):
            sendOne(client, "zed@main.dom", ["carol@main.dom"],
                    simpleMessage("q%d@client.test" % number, subject="question %d" % number,
                                  sender="zed@main.dom", to="carol@main.dom"))
            waitForMessages(server, "carol@main.dom", number)
        client.quit()
        [reply] = waitForMessages(server, "zed@main.dom", 1)
        waitFor(lambda: queueEmpty(server), what="the queue to empty")
        time.sleep(0.3)
        self.assertEqual(len(mailboxFiles(server, "zed@main.dom")), 1, "one reply only")
        self.assertEqual(reply["Subject"], "Re: question 1")
        self.assertEqual(reply["Auto-Submitted"], "auto-replied")
        self.assertEqual(reply["In-Reply-To"], "<q1@client.test>")
        self.assertEqual(reply["Return-Path"], "<>")
        self.assertIn("I am away until Monday.", reply.get_content())


# -- outbound ------------------------------------------------------------------------------

class OutboundTests(MailTestMixin, SynchronousTestCase):
    """
    Outbound SMTP to a second cgpro instance on loopback (domain
    C{remote.test}), which A reaches through its SmartHost setting: no DNS.
    """

    def setUp(self):
        self.a, self.cli = mailServer(self, accounts=("alice",))
        self.b, cliB = mailServer(self, accounts=("bob",), domain="remote.test")
        self.cli.command("UPDATEMODULE", "SMTP",
                         {"SmartHost": "127.0.0.1:%d" % (port(self.b),)})

    def send(self, messageId):
        client = smtp(self.a, SUBMISSION_PORT, tls=True)
        authenticate(client, "PLAIN", "alice@main.dom", PASSWORD)
        queueId = sendOne(client, "alice@main.dom", ["bob@remote.test"],
                          simpleMessage(messageId, sender="alice@main.dom", to="bob@remote.test"))
        client.quit()
        return queueId

    def shortRetries(self, expire="1h", delayNotice="1h"):
        self.cli.command("UPDATEMODULE", "QUEUE", {
            "RetryIntervals": ["1s", "1s"], "Expire": expire, "DelayNotice": delayNotice})
        # The queue rereads its settings at most once a second
        # (cgpro/queue/config.py, CACHE_SECONDS).
        time.sleep(1.1)

    def test_delivered(self):
        """
        A message from an authenticated user reaches bob on B, with both servers' Received.
        """
        self.assertEqual(self.cli.route("bob@remote.test", "MAIL"),
                         ["SMTP", "remote.test", "bob@remote.test"])
        self.send("out-1@main.dom")
        [raw] = waitFor(lambda: withId(self.b, "bob@remote.test", "out-1@main.dom"),
                        what="the message on B")
        self.assertTrue(raw.startswith(b"Return-Path: <alice@main.dom>\r\n"), raw)
        first, second = [m for m in RECEIVED.finditer(raw)]
        self.assertEqual(first.group("by"), b"remote.test")
        self.assertEqual(first.group("helo"), b"main.dom")
        self.assertEqual(second.group("by"), b"main.dom")
        self.assertEqual(second.group("protocol"), b"ESMTPSA")
        waitFor(lambda: queueEmpty(self.a), what="A's queue to empty")

    def test_retryUntilPeerBack(self):
        """
        With B down the message waits in A's queue (LISTQUEUES shows it); B back: delivered once.
        """
        self.shortRetries()
        self.b.stop()
        queueId = self.send("out-2@main.dom")
        queues = waitFor(lambda: self.cli.command("LISTQUEUES").get("SMTP", {}).get(
            "remote.test", {}).get("lastError"), what="a failed attempt")
        self.assertIn("connection refused", queues)
        info = self.cli.command("GETMESSAGEQUEUEINFO", "SMTP", Keyword("QUEUE"), "remote.test")
        self.assertEqual(info["nTotal"], 1)
        self.assertIn("delayedTill", info)
        self.assertIn(queueId + ".msg", queueFiles(self.a))
        time.sleep(1.5)
        self.assertIn(queueId + ".msg", queueFiles(self.a), "still queued after a retry")
        self.b.restart()
        waitFor(lambda: withId(self.b, "bob@remote.test", "out-2@main.dom"), timeout=15,
                what="the message on B after the retry")
        waitFor(lambda: queueEmpty(self.a), what="A's queue to empty")
        self.assertEqual(self.cli.command("LISTQUEUES"), {})
        time.sleep(1.5)
        self.assertEqual(len(withId(self.b, "bob@remote.test", "out-2@main.dom")), 1)
        self.assertEqual(mailboxFiles(self.a, "alice@main.dom"), [], "no DSN")

    def test_bounceWhenPeerGone(self):
        """
        B gone for good: alice gets a "delayed" DSN, then at expiry a "failed" one with her message.
        """
        self.shortRetries(expire="5s", delayNotice="2s")
        self.b.stop()
        self.send("out-3@main.dom")
        reports = waitForMessages(self.a, "alice@main.dom", 2, timeout=20)
        waitFor(lambda: queueEmpty(self.a), what="A's queue to empty")
        actions = []
        for report in reports:
            self.assertEqual(report["Return-Path"], "<>")
            self.assertEqual(report["Auto-Submitted"], "auto-replied")
            self.assertEqual(report.get_content_type(), "multipart/report")
            self.assertEqual(report.get_param("report-type"), "delivery-status")
            parts = list(report.iter_parts())
            self.assertEqual(parts[0].get_content_type(), "text/plain")
            self.assertEqual(parts[1].get_content_type(), "message/delivery-status")
            status = parts[1].as_string()
            self.assertIn("Final-Recipient: rfc822; bob@remote.test", status)
            action = re.search(r"Action: (\w+)", status).group(1)
            actions.append(action)
            if action == "failed":
                self.assertEqual(len(parts), 3)
                self.assertIn(parts[2].get_content_type(),
                              ("message/rfc822", "text/rfc822-headers"))
                self.assertIn("<out-3@main.dom>", parts[2].as_string())
                self.assertRegex(status, r"Status: [45]\.4\.\d")
        self.assertEqual(sorted(actions), ["delayed", "failed"])
        time.sleep(1)
        self.assertEqual(len(mailboxFiles(self.a, "alice@main.dom")), 2)


# -- LMTP ----------------------------------------------------------------------------------

class LMTPTests(MailTestMixin, SynchronousTestCase):
    """
    LMTP (RFC 2033) on its loopback listener: per-recipient replies.
    """

    def test_perRecipientReplies(self):
        """
        LHLO; an unknown user is 550 at RCPT; after DATA one reply per accepted recipient.
        """
        server, cli = mailServer(self, accounts=("alice", "bob", "carl"))
        cli.command("SETACCOUNTMAILRULES", "carl@main.dom", [
            [5, "refuse", [["Subject", "is", "*"]], [["Reject with", "not today"]]]])
        client = smtplib.LMTP("127.0.0.1", port(server, LMTP_PORT), local_hostname="mta.test")
        self.addCleanup(client.close)
        code, text = client.ehlo()
        self.assertEqual(code, 250)
        for keyword in ("pipelining", "8bitmime", "enhancedstatuscodes"):
            self.assertIn(keyword, client.esmtp_features)
        self.assertNotIn("auth", client.esmtp_features)
        self.assertEqual(client.docmd("EHLO", "mta.test")[0], 500)
        self.assertEqual(client.docmd("LHLO", "mta.test")[0], 250)
        self.assertEqual(client.mail("x@ext.test")[0], 250)
        self.assertEqual(client.rcpt("alice@main.dom")[0], 250)
        self.assertEqual(client.rcpt("nobody@main.dom"), (550, b"5.1.1 unknown user account"))
        self.assertEqual(client.rcpt("carl@main.dom")[0], 250)
        self.assertEqual(client.rcpt("bob@main.dom")[0], 250)
        self.assertEqual(client.docmd("DATA")[0], 354)
        client.send(simpleMessage("lmtp-1@mta.test") + b".\r\n")
        replies = [client.getreply() for _ in range(3)]
        self.assertEqual(replies[0], (250, b"2.0.0 <alice@main.dom> delivered"))
        self.assertEqual(replies[1][0], 550)
        self.assertIn(b"<carl@main.dom>", replies[1][1])
        self.assertIn(b"not today", replies[1][1])
        self.assertEqual(replies[2], (250, b"2.0.0 <bob@main.dom> delivered"))
        # Delivered means stored: no waiting needed.
        self.assertEqual(len(withId(server, "alice@main.dom", "lmtp-1@mta.test")), 1)
        self.assertEqual(len(withId(server, "bob@main.dom", "lmtp-1@mta.test")), 1)
        self.assertEqual(mailboxFiles(server, "carl@main.dom"), [])
        raw = withId(server, "alice@main.dom", "lmtp-1@mta.test")[0]
        match = RECEIVED.search(raw)
        self.assertIsNone(match, "several recipients: no 'for' clause")
        self.assertIn(b"with LMTP id ", raw)
        self.assertEqual(client.docmd("QUIT")[0], 221)

    def test_smtplibSendmail(self):
        """
        C{smtplib.LMTP.sendmail} reports the refused recipient and delivers to the others.
        """
        server, cli = mailServer(self)
        client = smtplib.LMTP("127.0.0.1", port(server, LMTP_PORT))
        refused = client.sendmail("x@ext.test", ["alice@main.dom", "zz@main.dom", "bob@main.dom"],
                                  simpleMessage("lmtp-2@mta.test"))
        client.quit()
        self.assertEqual(refused, {"zz@main.dom": (550, b"5.1.1 unknown user account")})
        for account in ("alice@main.dom", "bob@main.dom"):
            self.assertEqual(len(withId(server, account, "lmtp-2@mta.test")), 1)


# -- crash safety --------------------------------------------------------------------------

class CrashTests(MailTestMixin, SynchronousTestCase):
    """
    SIGKILL while clients send: every message that got its 250 is
    delivered exactly once, none partially.
    """

    ACCOUNTS = ["user%d@main.dom" % (n,) for n in range(10)]

    def storedLoad(self, server):
        """
        Read every stored message of the load accounts and check it is
        whole.

        @return: C{{(messageId, account): copies}}.
        """
        seen = {}
        for account in self.ACCOUNTS:
            for sub in ("new", "cur"):
                folder = os.path.join(maildirPath(server, account), sub)
                names = os.listdir(folder) if os.path.isdir(folder) else []
                for name in names:
                    self.assertFalse(name.startswith(".") or name.endswith(".tmp"),
                                     "temporary file %s/%s" % (sub, name))
            for name, data in mailboxFiles(server, account):
                size = re.search(r",S=(\d+)", name)
                if size is not None:
                    self.assertEqual(int(size.group(1)), len(data), "S= of %s" % (name,))
                message = email.message_from_bytes(data, policy=email.policy.compat32)
                messageId = (message["Message-ID"] or "").strip("<>")
                self.assertTrue(messageId, "a stored message without Message-ID: %r"
                                % (data[:300],))
                trailer = (TRAILER % (messageId,) + "\r\n").encode()
                self.assertTrue(data.endswith(trailer), "partial message %s: ...%r"
                                % (name, data[-200:]))
                self.assertEqual(data.count(b"\r\nReceived: "), 1, name)
                key = (messageId, account)
                seen[key] = seen.get(key, 0) + 1
        return seen

    def inTmp(self, server, messageId):
        """
        @return: the C{Maildir/tmp} files (of any load account) holding
            C{messageId}: where a delivery cut short by the kill is left.
        """
        needle = ("Message-ID: <%s>" % (messageId,)).encode()
        found = []
        for account in self.ACCOUNTS:
            folder = os.path.join(maildirPath(server, account), "tmp")
            for name in os.listdir(folder) if os.path.isdir(folder) else []:
                with open(os.path.join(folder, name), "rb") as f:
                    if needle in f.read():
                        found.append("%s tmp/%s" % (account, name))
        return found

    def killUnderLoad(self, server, tag, acked):
        """
        Start a load, SIGKILL the server once C{acked} messages were
        acknowledged, and restart it.

        @return: the stopped L{MailLoad}.
        """
        load = MailLoad(port(server), self.ACCOUNTS, tag, sessions=4, maxRecipients=3).start()
        waitFor(lambda: load.count >= acked or load.unexpected, timeout=30,
                what="%d acknowledged messages" % (acked,))
        server.kill()
        load.join()
        self.assertEqual(load.unexpected, [])
        server.restart()
        return load

    # This test found a real loss (fixed in cgpro/core/files.py): a journal
    # line appended before its message was renamed tmp/ -> new/.
    def test_killUnderLoad(self):
        """
        Two SIGKILLs at different moments (under load, then during recovery): exactly once.
        """
        server, cli = mailServer(self, accounts=[a.split("@")[0] for a in self.ACCOUNTS])
        loads = [self.killUnderLoad(server, "early", 40)]
        # Right after the restart: recovered messages are being delivered
        # while new ones arrive.
        loads.append(self.killUnderLoad(server, "late", 15))
        waitFor(lambda: queueEmpty(server), timeout=60, what="the queue to drain")
        seen = self.storedLoad(server)
        acked = 0
        for load in loads:
            for messageId, recipients in load.acked.items():
                acked += 1
                for account in recipients:
                    self.assertEqual(seen.pop((messageId, account), 0), 1,
                                     "acknowledged %s for %s; left in tmp: %s"
                                     % (messageId, account, self.inTmp(server, messageId)))
            for messageId, recipients in load.doubtful.items():
                copies = [seen.pop((messageId, account), 0) for account in recipients]
                self.assertIn(copies, ([0] * len(copies), [1] * len(copies)),
                              "in-flight %s: all or nothing, once" % (messageId,))
        self.assertEqual(seen, {}, "stored messages nobody sent")
        self.assertGreaterEqual(acked, 55)
        self.assertEqual(queueFiles(server), [])
        self.assertDeliversNormally(server, "user0@main.dom")


# -- bad input -----------------------------------------------------------------------------

class BadInputTests(MailTestMixin, SynchronousTestCase):
    """
    Hostile and broken clients over a raw socket: the right reply, no
    traceback, no partial message, and the server serves on.
    """

    def setUp(self):
        self.server, self.cli = mailServer(self)
        self.wires = []

    def tearDown(self):
        for wire in self.wires:
            self.assertNoTraceback(wire.transcript)
            wire.close()

    def wire(self, ehlo=True):
        wire = SMTPWire(port(self.server))
        self.wires.append(wire)
        self.assertEqual(wire.greeting[0], 220)
        if ehlo:
            wire.ehlo()
        return wire

    def assertReply(self, wire, command, code, enhanced=None):
        got, lines = wire.command(command)
        shown = command if len(command) < 80 else command[:60] + "..."
        self.assertEqual(got, code, "%r: %s %s" % (shown, got, lines))
        if enhanced is not None:
            self.assertTrue(lines[-1].startswith(enhanced + " "), (shown, lines))
        return lines

    def startData(self, wire, recipient="alice@main.dom"):
        self.assertReply(wire, "MAIL FROM:<x@ext.test>", 250)
        self.assertReply(wire, "RCPT TO:<%s>" % (recipient,), 250)
        self.assertReply(wire, "DATA", 354)

    def test_longCommandLine(self):
        """
        A command line over 1000 bytes is 500 5.5.2; the session goes on.
        """
        wire = self.wire()
        self.assertReply(wire, "NOOP " + "x" * 2000, 500, "5.5.2")
        self.assertReply(wire, "NOOP", 250)
        self.assertReply(wire, "MAIL FROM:<" + "a" * 100000 + "@ext.test>", 500, "5.5.2")
        self.assertReply(wire, "MAIL FROM:<%s@ext.test>" % ("a" * 300,), 553, "5.1.3")
        self.startData(wire)
        wire.send(simpleMessage("long@client.test", body="y" * 5000 + "\r\n") + b".\r\n")
        code, lines = wire.reply()
        self.assertEqual(code, 554, lines)
        self.assertTrue(lines[0].startswith("5.6.0 "), lines)
        self.assertReply(wire, "QUIT", 221)
        time.sleep(0.3)
        self.assertEqual(mailboxFiles(self.server, "alice@main.dom"), [])
        self.assertDeliversNormally(self.server)
        self.assertServerHealthy(self.server)

    def test_bareLF(self):
        """
        Bare LF in DATA is stored as CRLF; only CRLF.CRLF ends the data (no smuggling).
        """
        wire = self.wire()
        self.startData(wire)
        wire.send(b"From: <x@ext.test>\nSubject: bare\nMessage-ID: <bare@client.test>\n\n"
                  b"line1\n.\nMAIL FROM:<evil@ext.test>\r\nRCPT TO:<bob@main.dom>\r\n"
                  b"DATA\r\nsmuggled\r\n.\r\n")
        code, lines = wire.reply()
        self.assertEqual(code, 250, lines)
        self.assertReply(wire, "QUIT", 221)
        [raw] = waitFor(lambda: withId(self.server, "alice@main.dom", "bare@client.test"),
                        what="the message")
        self.assertEqual(raw.count(b"\n"), raw.count(b"\r\n"), "only CRLF line ends: %r" % raw)
        self.assertTrue(raw.endswith(b"\r\nline1\r\n.\r\nMAIL FROM:<evil@ext.test>\r\n"
                                     b"RCPT TO:<bob@main.dom>\r\nDATA\r\nsmuggled\r\n"), raw)
        time.sleep(0.3)
        self.assertEqual(mailboxFiles(self.server, "bob@main.dom"), [], "nothing smuggled")

    def test_bareLFRejected(self):
        """
        With BareLF=Reject, a bare LF in DATA is 554 5.6.0 and the connection closes.
        """
        self.cli.command("UPDATEMODULE", "SMTP", {"BareLF": "Reject"})
        wire = self.wire()
        self.startData(wire)
        wire.send(b"Subject: bare\n\nbody\r\n.\r\n")
        code, lines = wire.reply()
        self.assertEqual(code, 554, lines)
        self.assertTrue(lines[0].startswith("5.6.0 "), lines)
        self.assertTrue(wire.closed())
        time.sleep(0.3)
        self.assertEqual(mailboxFiles(self.server, "alice@main.dom"), [])
        self.assertEqual(queueFiles(self.server), [])
        self.assertDeliversNormally(self.server)

    def test_nulBytes(self):
        """
        NUL in a command is 500; in DATA 554 5.6.0 after the data, nothing stored; Strip keeps it.
        """
        wire = self.wire()
        self.assertReply(wire, b"MAIL FROM:<x@ext.test>\0", 500, "5.5.2")
        self.startData(wire)
        wire.send(simpleMessage("nul@client.test", body="a\0b\r\n") + b".\r\n")
        code, lines = wire.reply()
        self.assertEqual(code, 554, lines)
        self.assertTrue(lines[0].startswith("5.6.0 "), lines)
        self.assertReply(wire, "NOOP", 250)
        time.sleep(0.3)
        self.assertEqual(mailboxFiles(self.server, "alice@main.dom"), [])
        self.cli.command("UPDATEMODULE", "SMTP", {"NULBytes": "Strip"})
        wire = self.wire()
        self.startData(wire)
        wire.send(simpleMessage("nul2@client.test", body="a\0b\r\n") + b".\r\n")
        self.assertEqual(wire.reply()[0], 250)
        [raw] = waitFor(lambda: withId(self.server, "alice@main.dom", "nul2@client.test"),
                        what="the stripped message")
        self.assertTrue(raw.endswith(b"\r\n\r\nab\r\n"), raw)
        self.assertServerHealthy(self.server)

    def test_tenThousandRecipients(self):
        """
        10,000 pipelined RCPTs are all answered quickly: 1000 accepted, then 452 4.5.3.
        """
        accounts = ["r%d@main.dom" % (n,) for n in range(10)]
        for account in accounts:
            self.cli.createAccount(account, {"Password": PASSWORD})
        wire = self.wire()
        self.assertReply(wire, "MAIL FROM:<x@ext.test>", 250)
        began = time.monotonic()
        wire.send("".join("RCPT TO:<%s>\r\n" % (accounts[n % 10],) for n in range(10000)))
        codes = [wire.reply()[0] for _ in range(10000)]
        elapsed = time.monotonic() - began
        self.assertEqual(codes, [250] * 1000 + [452] * 9000)
        self.assertTrue(wire.transcript[-1].startswith(b"452 4.5.3 "), wire.transcript[-1])
        self.assertLess(elapsed, 15, "10,000 RCPTs took %.1f s" % (elapsed,))
        self.assertReply(wire, "DATA", 354)
        wire.send(simpleMessage("many@client.test") + b".\r\n")
        self.assertEqual(wire.reply()[0], 250)
        self.assertReply(wire, "QUIT", 221)
        for account in accounts:
            waitFor(lambda: withId(self.server, account, "many@client.test"),
                    what="the copy for " + account)
        time.sleep(0.3)
        for account in accounts:
            self.assertEqual(len(mailboxFiles(self.server, account)), 1, account)

    def test_unknownRecipientsFlood(self):
        """
        10,000 unknown recipients are each answered 550 5.1.1; the session survives.
        """
        wire = self.wire()
        self.assertReply(wire, "MAIL FROM:<x@ext.test>", 250)
        wire.send("".join("RCPT TO:<nobody%d@main.dom>\r\n" % (n,) for n in range(10000)))
        codes = set(wire.reply()[0] for _ in range(10000))
        self.assertEqual(codes, {550})
        self.assertReply(wire, "DATA", 554)
        self.assertReply(wire, "RSET", 250)

    def test_oversizeMessage(self):
        """
        Over MaxMessageSize: SIZE= in MAIL and the data itself are 552 5.3.4; nothing kept.
        """
        self.cli.command("UPDATEMODULE", "SMTP", {"MaxMessageSize": "100K"})
        wire = self.wire()
        self.assertReply(wire, "MAIL FROM:<x@ext.test> SIZE=200000", 552, "5.3.4")
        self.assertReply(wire, "MAIL FROM:<x@ext.test> SIZE=1000", 250)
        self.assertReply(wire, "RCPT TO:<alice@main.dom>", 250)
        self.assertReply(wire, "DATA", 354)
        wire.send(simpleMessage("big@client.test", body=("z" * 998 + "\r\n") * 2000) + b".\r\n")
        code, lines = wire.reply()
        self.assertEqual(code, 552, lines)
        self.assertTrue(lines[0].startswith("5.3.4 "), lines)
        self.assertReply(wire, "NOOP", 250)
        # Bigger than what the queue keeps in memory (it spills to a file).
        self.cli.command("UPDATEMODULE", "SMTP", {"MaxMessageSize": "2M"})
        wire = self.wire()
        self.startData(wire)
        wire.send(simpleMessage("huge@client.test", body=("z" * 998 + "\r\n") * 3000) + b".\r\n")
        self.assertEqual(wire.reply()[0], 552)
        time.sleep(0.3)
        self.assertEqual(mailboxFiles(self.server, "alice@main.dom"), [])
        self.assertEqual(queueFiles(self.server), [])
        self.assertDeliversNormally(self.server)
        self.assertServerHealthy(self.server)

    def test_malformedAddresses(self):
        """
        Malformed paths are 501 (grammar) or 553 (mailbox syntax); good ones pass after them.
        """
        wire = self.wire()
        for command, code in [
            ("MAIL FROM:<a@@ext.test>", 553),
            ("MAIL FROM:<a b@ext.test>", 553),
            ("MAIL FROM:<nodomain>", 553),
            ("MAIL FROM:<a@ext.test", 501),
            ("MAIL FROM:<a@ext.test>junk", 501),
            ("MAIL <a@ext.test>", 501),
            ("MAIL FROM:", 501),
            ("MAIL FROM:<jörg@ext.test>", 553),
            ("MAIL FROM:<a@[300.1.1.1]>", 553),
            ("MAIL FROM:<a@ext.test> BODY=9BIT", 555),
        ]:
            self.assertReply(wire, command, code)
        self.assertReply(wire, "MAIL FROM:<>", 250)
        for command, code in [
            ("RCPT TO:<>", 553),
            ("RCPT TO:<alice@@main.dom>", 553),
            ("RCPT TO:<alice@main.dom", 501),
            ("RCPT TO:alice", 553),
            ("RCPT TO:<alice@[1.2.3]>", 553),
            ("RCPT TO:<%s@main.dom>" % ("x" * 300,), 553),
            ("RCPT TO:<alice@main.dom> NOTIFY=SOMETIMES", 501),
            ("RCPT <alice@main.dom>", 501),
        ]:
            self.assertReply(wire, command, code)
        self.assertReply(wire, "RCPT TO:<@relay.example:alice@main.dom>", 250)
        self.assertReply(wire, "DATA", 354)
        wire.send(simpleMessage("route@client.test") + b".\r\n")
        self.assertEqual(wire.reply()[0], 250)
        waitFor(lambda: withId(self.server, "alice@main.dom", "route@client.test"),
                what="the source-routed message")
        self.assertServerHealthy(self.server)

    def test_commandsOutOfOrder(self):
        """
        MAIL before EHLO, RCPT before MAIL, DATA without recipients, nested MAIL: 503/554.
        """
        wire = self.wire(ehlo=False)
        self.assertReply(wire, "MAIL FROM:<x@ext.test>", 503, "5.5.1")
        self.assertReply(wire, "RCPT TO:<alice@main.dom>", 503, "5.5.1")
        self.assertReply(wire, "DATA", 503, "5.5.1")
        self.assertReply(wire, "AUTH PLAIN", 538)
        self.assertReply(wire, "EHLO", 501)
        wire.ehlo()
        self.assertReply(wire, "RCPT TO:<alice@main.dom>", 503, "5.5.1")
        self.assertReply(wire, "DATA", 503, "5.5.1")
        self.assertReply(wire, "MAIL FROM:<x@ext.test>", 250)
        self.assertReply(wire, "MAIL FROM:<x@ext.test>", 503, "5.5.1")
        self.assertReply(wire, "DATA", 554)
        self.assertReply(wire, "STARTTLS now", 501)
        self.assertReply(wire, "FROBNICATE", 500, "5.5.1")
        self.assertReply(wire, "EXPN staff", 502)
        self.assertReply(wire, "VRFY alice", 252)
        self.assertReply(wire, "RSET", 250)
        self.assertReply(wire, "RCPT TO:<alice@main.dom>", 503, "5.5.1")
        self.startData(wire)
        wire.send(simpleMessage("order@client.test") + b".\r\n")
        self.assertEqual(wire.reply()[0], 250)
        self.assertReply(wire, "QUIT", 221)
        self.assertTrue(wire.closed())
        waitFor(lambda: withId(self.server, "alice@main.dom", "order@client.test"),
                what="the message")
        self.assertServerHealthy(self.server)

    def test_tooManyErrors(self):
        """
        After MaxErrors protocol errors the session ends with 421 4.7.0; others go on.
        """
        wire = self.wire()
        codes = [wire.command("BOGUS")[0] for _ in range(20)]
        self.assertEqual(codes, [500] * 20)
        code, lines = wire.reply()
        self.assertEqual(code, 421, lines)
        self.assertTrue(lines[0].startswith("4.7.0 "), lines)
        self.assertTrue(wire.closed())
        self.assertDeliversNormally(self.server)

    def test_httpOnSMTPPort(self):
        """
        An HTTP request (a proxy abused to reach port 25) is closed with 421.
        """
        wire = self.wire(ehlo=False)
        self.assertReply(wire, "POST / HTTP/1.1", 421)
        self.assertTrue(wire.closed())

    def test_clientVanishesMidData(self):
        """
        A client gone in the middle of DATA leaves no message and no queue file behind.
        """
        wire = self.wire()
        self.startData(wire)
        wire.send(b"Subject: vanishing\r\nMessage-ID: <gone@client.test>\r\n\r\npartial li")
        time.sleep(0.2)
        wire.close()
        # A big one, which the queue spills to a temporary file.
        wire = self.wire()
        self.startData(wire)
        wire.send(b"Subject: vanishing too\r\n\r\n" + (b"w" * 998 + b"\r\n") * 1500)
        waitFor(lambda: any(name.endswith(".tmp") for name in queueFiles(self.server)),
                what="the spilled temporary file")
        wire.close()
        waitFor(lambda: queueEmpty(self.server), what="the temporary file to go")
        time.sleep(0.5)
        self.assertEqual(queueFiles(self.server), [])
        self.assertEqual(mailboxFiles(self.server, "alice@main.dom"), [])
        self.assertDeliversNormally(self.server)
        self.assertServerHealthy(self.server)
