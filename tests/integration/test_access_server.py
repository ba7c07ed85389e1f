# -*- test-case-name: tests.integration.test_access_server -*-
"""
Mail access end to end: messages sent over SMTP to a real C{twistd cgpro}
are read over IMAP (imaplib) and POP3 (poplib), and one account shares a
mailbox with another through an ACL that is granted and then revoked.
"""

import imaplib
import poplib
import smtplib
import time

from twisted.trial.unittest import SynchronousTestCase

from tests.support.mail import port, unverifiedContext, waitForMessages
from tests.support.server import startServer

PASSWORD = "Secret-123"
IMAP_PORT, IMAPS_PORT, POP3_PORT, POP3S_PORT, SMTP_PORT = 143, 993, 110, 995, 25


def sendMail(server, to, subject="hello", body="Hello there.\r\n"):
    with smtplib.SMTP("127.0.0.1", port(server, SMTP_PORT), timeout=30) as client:
        client.sendmail("sender@example.org", [to],
                        ("From: sender@example.org\r\nTo: %s\r\nSubject: %s\r\n\r\n%s"
                         % (to, subject, body)).encode())


def imap(server, user, secure=True):
    """
    @return: an imaplib client logged in as C{user}, after STARTTLS (or
        over IMAPS with C{secure="implicit"}).
    """
    if secure == "implicit":
        client = imaplib.IMAP4_SSL("127.0.0.1", port(server, IMAPS_PORT),
                                   ssl_context=unverifiedContext(), timeout=30)
    else:
        client = imaplib.IMAP4("127.0.0.1", port(server, IMAP_PORT), timeout=30)
        client.starttls(ssl_context=unverifiedContext())
    client.login("%s@%s" % (user, server.domain), PASSWORD)
    return client


class AccessTests(SynchronousTestCase):
    """
    SMTP in, IMAP and POP3 out, against one running server.
    """

    def setUp(self):
        self.server = startServer(self)
        cli = self.server.client()
        for name in ("alice", "bob"):
            cli.createAccount("%s@%s" % (name, self.server.domain), {"Password": PASSWORD})
        self.alice = "alice@" + self.server.domain

    def test_imapReadsDelivery(self):
        """A message sent over SMTP is listed, fetched and flagged over IMAP."""
        sendMail(self.server, self.alice, subject="over imap")
        waitForMessages(self.server, "alice", 1)
        client = imap(self.server, "alice")
        try:
            typ, data = client.select("INBOX")
            self.assertEqual((typ, data), ("OK", [b"1"]))
            typ, data = client.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            self.assertIn(b"Subject: over imap", data[0][1])
            typ, data = client.store("1", "+FLAGS", "(\\Flagged)")
            self.assertEqual(typ, "OK")
            typ, data = client.search(None, "FLAGGED")
            self.assertEqual(data, [b"1"])
        finally:
            client.logout()
        # flags persist across sessions (and over IMAPS)
        again = imap(self.server, "alice", secure="implicit")
        try:
            again.select("INBOX", readonly=True)
            typ, data = again.fetch("1", "(FLAGS)")
            self.assertIn(b"\\Flagged", data[0])
        finally:
            again.logout()

    def test_popRetrievesAndDeletes(self):
        """POP3 after STLS retrieves the message; DELE + QUIT removes it (then IMAP sees none)."""
        sendMail(self.server, self.alice, subject="over pop")
        waitForMessages(self.server, "alice", 1)
        client = poplib.POP3("127.0.0.1", port(self.server, POP3_PORT), timeout=30)
        client.stls(context=unverifiedContext())
        client.user(self.alice)
        client.pass_(PASSWORD)
        count, _ = client.stat()
        self.assertEqual(count, 1)
        lines = client.retr(1)[1]
        self.assertIn(b"Subject: over pop", lines)
        client.dele(1)
        client.quit()
        reader = imap(self.server, "alice")
        try:
            self.assertEqual(reader.select("INBOX")[1], [b"0"])
        finally:
            reader.logout()

    def test_sharedMailboxACL(self):
        """bob reads ~alice/Shared while alice's ACL grants it, and not after she revokes it."""
        owner = imap(self.server, "alice")
        try:
            self.assertEqual(owner.create("Shared")[0], "OK")
            owner.append("Shared", None, imaplib.Time2Internaldate(time.time()),
                         b"From: alice@x\r\nSubject: shared note\r\n\r\nfor bob\r\n")
            bob = "bob@" + self.server.domain
            self.assertEqual(owner._simple_command("SETACL", "Shared", bob, "lrs")[0], "OK")
            reader = imap(self.server, "bob")
            try:
                shared = '"~alice/Shared"'
                self.assertEqual(reader.select(shared, readonly=True), ("OK", [b"1"]))
                typ, data = reader.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
                self.assertIn(b"shared note", data[0][1])
                reader.close()
                self.assertEqual(owner._simple_command("DELETEACL", "Shared", bob)[0], "OK")
                typ, _ = reader.select(shared, readonly=True)
                self.assertEqual(typ, "NO")
            finally:
                reader.logout()
        finally:
            owner.logout()
