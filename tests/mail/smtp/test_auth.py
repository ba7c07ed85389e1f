# -*- test-case-name: tests.mail.smtp.test_auth -*-
"""
Tests for L{cgpro.mail.smtp.auth} and the STARTTLS / AUTH / submission
parts of the session, over a L{StringTransport} with a L{Clock}.
"""

import base64
import hashlib
import hmac

from twisted.trial.unittest import SynchronousTestCase

from cgpro.mail.smtp import auth
from tests.mail.smtp.fakes import Session, makeContext, makeFactory, setModule


def b64(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return base64.b64encode(data).decode("ascii")


class MechanismTests(SynchronousTestCase):
    """
    The SASL mechanisms alone.
    """

    def test_plain(self):
        """PLAIN splits authzid, user and password."""
        _, creds = auth.mechanism("plain", "h").respond(b"\0user@main.dom\0pass")
        self.assertEqual((creds.mechanism, creds.user, creds.password),
                         ("PLAIN", "user@main.dom", "pass"))

    def test_plainImpersonation(self):
        """PLAIN with another authorization identity is refused."""
        error = self.assertRaises(auth.SASLError, auth.mechanism("PLAIN", "h").respond,
                                  b"boss\0user\0pass")
        self.assertEqual(error.code, 535)

    def test_plainMalformed(self):
        """PLAIN without two NULs is a syntax error."""
        error = self.assertRaises(auth.SASLError, auth.mechanism("PLAIN", "h").respond, b"x")
        self.assertEqual(error.code, 501)

    def test_login(self):
        """LOGIN asks for the user, then the password."""
        mechanism = auth.mechanism("LOGIN", "h")
        self.assertEqual(mechanism.start(), b"Username:")
        self.assertEqual(mechanism.respond(b"user"), (b"Password:", None))
        _, creds = mechanism.respond(b"pass")
        self.assertEqual((creds.user, creds.password), ("user", "pass"))

    def test_cramChallenge(self):
        """CRAM-MD5 challenges are unique and name the host."""
        first = auth.mechanism("CRAM-MD5", "main.dom").start()
        second = auth.mechanism("CRAM-MD5", "main.dom").start()
        self.assertNotEqual(first, second)
        self.assertRegex(first.decode(), r"^<[0-9a-f]+@main\.dom>$")

    def test_decode(self):
        """Responses are base64; = is empty; * cancels."""
        self.assertEqual(auth.decode(b"dXNlcg=="), b"user")
        self.assertEqual(auth.decode(b"="), b"")
        self.assertEqual(self.assertRaises(auth.SASLError, auth.decode, b"*").code, 501)
        self.assertEqual(self.assertRaises(auth.SASLError, auth.decode, b"!!").code, 501)

    def test_unknown(self):
        """Unknown mechanisms are None."""
        self.assertIsNone(auth.mechanism("GSSAPI", "h"))


class TLSTests(SynchronousTestCase):
    """
    STARTTLS.
    """

    def setUp(self):
        self.context = makeContext(self)
        self.session = Session(makeFactory(self.context))

    def test_starttls(self):
        """STARTTLS answers 220, starts TLS and forgets the EHLO."""
        self.session.ehlo()
        self.assertEqual(self.session.cmd("STARTTLS"), ["220 2.0.0 ready to start TLS"])
        self.assertTrue(self.session.transport.tlsStarted)
        self.assertIs(self.session.transport.tlsOptions, self.context.tls.options)
        self.assertEqual(self.session.cmd("MAIL FROM:<a@example.com>"),
                         ["503 5.5.1 send EHLO or HELO first"])
        keywords = [line[4:] for line in self.session.ehlo()]
        self.assertNotIn("STARTTLS", keywords)
        self.assertIn("AUTH PLAIN LOGIN CRAM-MD5", keywords)
        self.session.mail()
        self.assertEqual(self.context.queue.committed[0].envelope.protocol, "ESMTPS")
        self.assertIn(b"with ESMTPS id 90001 (TLS)", self.context.queue.committed[0].data)

    def test_noInjection(self):
        """Commands sent after STARTTLS in the same packet are dropped."""
        self.session.ehlo()
        self.assertEqual(self.session.send("STARTTLS\r\nMAIL FROM:<a@example.com>\r\n"),
                         ["220 2.0.0 ready to start TLS"])
        self.assertEqual(self.session.cmd("NOOP"), ["250 2.0.0 OK"])

    def test_twice(self):
        """STARTTLS under TLS is 503."""
        self.session.cmd("STARTTLS")
        self.assertEqual(self.session.cmd("STARTTLS"), ["503 5.5.1 TLS is already active"])

    def test_notOffered(self):
        """Where the row has no TLS, STARTTLS is 454 and not advertised."""
        session = Session(makeFactory(self.context, tls="no"))
        self.assertNotIn("250-STARTTLS", session.ehlo())
        self.assertEqual(session.cmd("STARTTLS"), ["454 4.7.0 TLS not available"])

    def test_implicit(self):
        """An implicit-TLS session offers AUTH, not STARTTLS, and says ESMTPS."""
        session = Session(makeFactory(self.context, tls="implicit"))
        keywords = [line[4:] for line in session.ehlo()]
        self.assertNotIn("STARTTLS", keywords)
        self.assertIn("AUTH PLAIN LOGIN CRAM-MD5", keywords)
        session.mail()
        self.assertEqual(self.context.queue.committed[0].envelope.protocol, "ESMTPS")


class AuthTests(SynchronousTestCase):
    """
    AUTH in the session.
    """

    def setUp(self):
        self.context = makeContext(self)
        self.clock = self.context.reactor
        self.factory = makeFactory(self.context, tls="implicit")
        self.session = Session(self.factory)
        self.session.ehlo()

    def test_plainInitial(self):
        """AUTH PLAIN with an initial response logs in; the message is ESMTPSA and trusted."""
        self.assertEqual(self.session.cmd("AUTH PLAIN " + b64("\0user@main.dom\0pass")),
                         ["235 2.7.0 authentication successful"])
        self.assertEqual(self.session.cmd("MAIL FROM:<user@main.dom>")[0][:3], "250")
        self.assertEqual(self.session.cmd("RCPT TO:<far@remote.example>")[0][:3], "250")
        self.session.cmd("DATA")
        self.session.send("x\r\n.\r\n")
        message = self.context.queue.committed[0]
        envelope = message.envelope
        self.assertEqual((envelope.protocol, envelope.authUser, envelope.trusted),
                         ("ESMTPSA", "user@main.dom", True))
        self.assertIn(b"(TLS; authenticated as user@main.dom)", message.data)

    def test_plainChallenge(self):
        """AUTH PLAIN without initial response gets an empty challenge."""
        self.assertEqual(self.session.cmd("AUTH PLAIN"), ["334 "])
        self.assertEqual(self.session.cmd(b64("\0user\0pass")),
                         ["235 2.7.0 authentication successful"])

    def test_login(self):
        """AUTH LOGIN asks Username: and Password:."""
        self.assertEqual(self.session.cmd("AUTH LOGIN"), ["334 VXNlcm5hbWU6"])
        self.assertEqual(self.session.cmd(b64("user@main.dom")), ["334 UGFzc3dvcmQ6"])
        self.assertEqual(self.session.cmd(b64("pass")), ["235 2.7.0 authentication successful"])

    def test_loginInitial(self):
        """AUTH LOGIN may carry the user name."""
        self.assertEqual(self.session.cmd("AUTH LOGIN " + b64("user")), ["334 UGFzc3dvcmQ6"])
        self.assertEqual(self.session.cmd(b64("pass")), ["235 2.7.0 authentication successful"])

    def cram(self, user, password):
        challenge = base64.b64decode(self.session.cmd("AUTH CRAM-MD5")[0][4:])
        digest = hmac.new(password.encode(), challenge, hashlib.md5).hexdigest()
        return self.session.cmd(b64("%s %s" % (user, digest)))

    def test_cramMD5(self):
        """CRAM-MD5 works for an account whose password is recoverable."""
        self.assertEqual(self.cram("user@main.dom", "pass"),
                         ["235 2.7.0 authentication successful"])

    def test_cramMD5OneWay(self):
        """CRAM-MD5 fails cleanly (535) for an account keeping only a hash."""
        directory = self.context.directory
        self.successResultOf(directory.createAccount(
            "hashed@main.dom", settings={"PasswordEncryption": "hashed", "Password": "pw"}))
        self.assertIsNone(directory.getPassword("hashed@main.dom"))
        self.assertEqual(self.cram("hashed@main.dom", "pw"), [])
        self.clock.advance(1)
        self.assertEqual(self.session.read(), ["535 5.7.8 authentication credentials invalid"])
        self.assertEqual(self.session.cmd("AUTH PLAIN " + b64("\0hashed@main.dom\0pw")),
                         ["235 2.7.0 authentication successful"])

    def test_wrongPassword(self):
        """A wrong password is answered 535 only after the failure delay."""
        self.assertEqual(self.session.cmd("AUTH PLAIN " + b64("\0user\0nope")), [])
        self.assertEqual(self.session.cmd("NOOP"), [])
        self.clock.advance(1)
        self.assertEqual(self.session.read(), ["535 5.7.8 authentication credentials invalid",
                                               "250 2.0.0 OK"])
        self.assertEqual(self.factory.authFailures, 1)

    def test_throttled(self):
        """After the failure limit AUTH is 454 even with the right password."""
        self.factory.throttle.limit = 2
        for _ in range(2):
            self.session.cmd("AUTH PLAIN " + b64("\0user\0nope"))
            self.clock.advance(1)
        self.session.read()
        self.assertEqual(self.session.cmd("AUTH PLAIN " + b64("\0user\0pass")),
                         ["454 4.7.0 too many failed authentications, try later"])
        self.clock.advance(61)
        self.assertEqual(self.session.cmd("AUTH PLAIN " + b64("\0user\0pass")),
                         ["235 2.7.0 authentication successful"])

    def test_accessModes(self):
        """An account without the Relay access mode cannot use SMTP AUTH."""
        self.successResultOf(self.context.directory.setAccountSettings(
            "user@main.dom", {"AccessModes": ["Mail", "POP", "IMAP"]}, update=True))
        self.session.cmd("AUTH PLAIN " + b64("\0user\0pass"))
        self.clock.advance(1)
        self.assertEqual(self.session.read(), ["535 5.7.8 authentication credentials invalid"])

    def test_cancelAndErrors(self):
        """Cancel, bad base64, unknown mechanism, AUTH twice and during a transaction."""
        self.session.cmd("AUTH LOGIN")
        self.assertEqual(self.session.cmd("*"), ["501 5.0.0 authentication cancelled"])
        self.session.cmd("AUTH LOGIN")
        self.assertEqual(self.session.cmd("%%%"),
                         ["501 5.5.2 cannot decode the response (base64)"])
        self.assertEqual(self.session.cmd("AUTH GSSAPI"),
                         ["504 5.5.4 unrecognized authentication type"])
        self.assertEqual(self.session.cmd("AUTH"), ["504 5.5.4 unrecognized authentication type"])
        self.session.cmd("MAIL FROM:<a@example.com>")
        self.assertEqual(self.session.cmd("AUTH PLAIN " + b64("\0user\0pass")),
                         ["503 5.5.1 AUTH not allowed during a mail transaction"])
        self.session.cmd("RSET")
        self.session.cmd("AUTH PLAIN " + b64("\0user\0pass"))
        self.assertEqual(self.session.cmd("AUTH PLAIN " + b64("\0user\0pass")),
                         ["503 5.5.1 already authenticated"])

    def test_longResponseCancels(self):
        """An over-long SASL response ends the exchange with 500 5.5.2."""
        self.session.cmd("AUTH LOGIN")
        self.assertEqual(self.session.cmd("x" * 2000), ["500 5.5.2 line too long"])
        self.assertEqual(self.session.cmd("NOOP"), ["250 2.0.0 OK"])

    def test_needsEhlo(self):
        """AUTH after HELO is 503."""
        self.session.cmd("HELO c.example")
        self.assertEqual(self.session.cmd("AUTH PLAIN " + b64("\0user\0pass")),
                         ["503 5.5.1 send EHLO first"])


class CleartextTests(SynchronousTestCase):
    """
    AUTH without TLS, and the submission port.
    """

    def setUp(self):
        self.context = makeContext(self)

    def test_refusedInClear(self):
        """Before TLS, AUTH is 538 5.7.11."""
        session = Session(makeFactory(self.context))
        session.ehlo()
        self.assertEqual(session.cmd("AUTH PLAIN " + b64("\0user\0pass")),
                         ["538 5.7.11 encryption required for requested authentication mechanism"])

    def test_allowCleartextAuth(self):
        """AllowCleartextAuth = YES offers and accepts AUTH without TLS (ESMTPA)."""
        setModule(self, self.context, {"AllowCleartextAuth": "YES"})
        session = Session(makeFactory(self.context))
        self.assertIn("250-AUTH PLAIN LOGIN CRAM-MD5", session.ehlo())
        self.assertEqual(session.cmd("AUTH PLAIN " + b64("\0user\0pass"))[0][:3], "235")
        session.mail()
        self.assertEqual(self.context.queue.committed[0].envelope.protocol, "ESMTPA")

    def test_submission(self):
        """Submission wants STARTTLS, then AUTH, before MAIL."""
        session = Session(makeFactory(self.context, submission=True))
        session.ehlo()
        self.assertEqual(session.cmd("MAIL FROM:<user@main.dom>"),
                         ["530 5.7.0 must issue a STARTTLS command first"])
        session.cmd("STARTTLS")
        session.ehlo()
        self.assertEqual(session.cmd("MAIL FROM:<user@main.dom>"),
                         ["530 5.7.0 authentication required"])
        session.cmd("AUTH PLAIN " + b64("\0user\0pass"))
        self.assertEqual(session.mail(rcpts=("far@remote.example",))[0][:3], "250")
        self.assertEqual(self.context.queue.committed[0].envelope.protocol, "ESMTPSA")

    def test_submissionForgetsAuthAfterStarttls(self):
        """AUTH learnt in clear is forgotten by STARTTLS (RFC 3207)."""
        setModule(self, self.context, {"AllowCleartextAuth": "YES"})
        session = Session(makeFactory(self.context, submission=True))
        session.ehlo()
        session.cmd("AUTH PLAIN " + b64("\0user\0pass"))
        session.cmd("STARTTLS")
        session.ehlo()
        self.assertEqual(session.cmd("MAIL FROM:<user@main.dom>"),
                         ["530 5.7.0 authentication required"])
