# -*- test-case-name: tests.mail.pop3.test_server -*-
"""
Tests for L{cgpro.mail.pop3.server} and L{cgpro.mail.pop3.factory}: one
session over a L{StringTransport} with a L{Clock}, against a real
directory and mail store.
"""

import base64
import hashlib
import hmac
import re

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from cgpro.core.throttle import LoginThrottle
from cgpro.mail.pop3 import factory as popfactory
from cgpro.mail.pop3.server import MAX_LINE, POP3Server, uniqueId
from cgpro.mail.pop3.settings import DEFAULTS, POPSettings
from tests.mail.pop3.fakes import (
    OTHER, PASSWORD, USER, Session, Spec, deliver, makeContext, makeFactory, message,
    setModule,
)


class POP3TestCase(SynchronousTestCase):
    """
    A context with a clock, a factory and three messages for C{USER}.
    """

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1795000000)
        self.context = makeContext(self, clock=self.clock)
        self.factory = makeFactory(self.context)
        self.messages = [message("one"), message("two", ".dot\r\nline\r\n"), message("three")]
        self.uids = deliver(self, self.context, *self.messages)

    def session(self, **kw):
        return Session(self.factory, **kw)

    def loggedIn(self):
        session = self.session()
        reply = session.login()
        self.assertTrue(reply[0].startswith("+OK"), reply)
        return session

    def inbox(self, account=USER):
        mailbox = self.successResultOf(self.context.mailStore.openMailbox(account, "INBOX"))
        self.addCleanup(mailbox.close)
        return mailbox


class GreetingTests(POP3TestCase):
    """
    The greeting, CAPA and STLS.
    """

    def test_greeting(self):
        """The greeting is +OK with an APOP timestamp naming the Main Domain."""
        session = self.session()
        self.assertTrue(session.greeting.startswith("+OK "))
        self.assertRegex(session.greeting, r"<\d+\.[0-9a-f]+\.\d+@main\.dom>$")

    def test_capaInClear(self):
        """Before STLS, CAPA offers STLS but neither USER nor SASL."""
        lines = self.session().cmd("CAPA")
        self.assertEqual(lines[0], "+OK Capability list follows")
        self.assertEqual(lines[-1], ".")
        for capability in ("TOP", "UIDL", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE", "STLS"):
            self.assertIn(capability, lines)
        self.assertNotIn("USER", lines)
        self.assertFalse([line for line in lines if line.startswith("SASL")])
        self.assertTrue([line for line in lines if line.startswith("IMPLEMENTATION ")])

    def test_capaAfterSTLS(self):
        """After STLS, CAPA offers USER and SASL and no longer STLS."""
        session = self.session()
        self.assertEqual(session.cmd("STLS"), ["+OK begin TLS negotiation"])
        self.assertTrue(session.transport.tlsStarted)
        self.assertIs(session.transport.tlsOptions, self.context.tls.options)
        lines = session.cmd("CAPA")
        self.assertIn("USER", lines)
        self.assertIn("SASL PLAIN LOGIN CRAM-MD5", lines)
        self.assertNotIn("STLS", lines)

    def test_stlsTwice(self):
        """A second STLS is refused."""
        session = self.session()
        session.cmd("STLS")
        self.assertTrue(session.cmd("STLS")[0].startswith("-ERR"))

    def test_stlsDropsPipelined(self):
        """Commands pipelined in the clear after STLS are dropped."""
        session = self.session()
        lines = session.send("STLS\r\nUSER user@main.dom\r\n")
        self.assertEqual(lines, ["+OK begin TLS negotiation"])
        self.assertTrue(session.cmd("PASS pass")[0].startswith("-ERR"))

    def test_implicitTLS(self):
        """On pop3s sessions start secure: USER offered, STLS not."""
        factory = makeFactory(self.context, tls="implicit")
        lines = Session(factory).cmd("CAPA")
        self.assertIn("USER", lines)
        self.assertNotIn("STLS", lines)

    def test_noTLS(self):
        """A listener without TLS offers no STLS and refuses it."""
        factory = makeFactory(self.context, tls="no")
        session = Session(factory)
        self.assertNotIn("STLS", session.cmd("CAPA"))
        self.assertTrue(session.cmd("STLS")[0].startswith("-ERR"))


class LoginTests(POP3TestCase):
    """
    USER/PASS, APOP, AUTH, access modes and throttling.
    """

    def test_userPass(self):
        """USER and PASS after STLS open the maildrop."""
        session = self.session()
        reply = session.login()
        self.assertEqual(reply, ["+OK user@main.dom has 3 messages (%d octets)"
                                 % sum(map(len, self.messages))])
        self.assertEqual(session.server.state, "TRANSACTION")
        self.assertEqual(self.factory.logins, 1)

    def test_cleartextRefused(self):
        """USER, APOP and AUTH are refused with [AUTH] before STLS."""
        session = self.session()
        for line in ("USER user@main.dom", "APOP user@main.dom " + "0" * 32, "AUTH PLAIN"):
            reply = session.cmd(line)
            self.assertEqual(len(reply), 1)
            self.assertTrue(reply[0].startswith("-ERR [AUTH] "), reply)

    def test_cleartextAllowed(self):
        """With AllowCleartextAuth=YES, USER/PASS work without STLS."""
        setModule(self, self.context, {"AllowCleartextAuth": "YES"})
        session = self.session()
        self.assertIn("USER", session.cmd("CAPA"))
        session.cmd("USER user")
        self.assertTrue(session.cmd("PASS pass")[0].startswith("+OK"))

    def test_passWithoutUser(self):
        """PASS before USER is refused."""
        session = self.session()
        session.cmd("STLS")
        self.assertTrue(session.cmd("PASS pass")[0].startswith("-ERR"))

    def test_wrongPasswordDelayed(self):
        """A wrong password gets -ERR [AUTH] only after the failure delay."""
        session = self.session()
        session.cmd("STLS")
        session.cmd("USER user@main.dom")
        self.assertEqual(session.cmd("PASS wrong"), [])
        self.clock.advance(1)
        self.assertEqual(session.read(), ["-ERR [AUTH] authentication failed"])
        self.assertEqual(session.server.state, "AUTHORIZATION")
        self.assertEqual(self.factory.loginFailures, 1)
        session.cmd("USER user@main.dom")
        self.assertTrue(session.cmd("PASS pass")[0].startswith("+OK"))

    def test_pipelinedAfterFailure(self):
        """Commands pipelined behind a failing PASS wait for its answer."""
        session = self.session()
        session.cmd("STLS")
        pipelined = "USER user\r\nPASS bad\r\nUSER user\r\nPASS pass\r\nSTAT\r\n"
        self.assertEqual(session.send(pipelined), ["+OK send your password"])
        self.clock.advance(1)
        lines = session.read()
        self.assertEqual(lines[0], "-ERR [AUTH] authentication failed")
        self.assertEqual(lines[1], "+OK send your password")
        self.assertTrue(lines[2].startswith("+OK user@main.dom has 3"))
        self.assertEqual(lines[3], "+OK 3 %d" % sum(map(len, self.messages)))

    def test_throttled(self):
        """After LoginFailureLimit failures an address gets [SYS/TEMP] without a check."""
        self.factory.throttle = LoginThrottle(self.clock, limit=2, period=60)
        setModule(self, self.context, {"AuthFailureDelay": "0"})
        for _ in range(2):
            session = self.session()
            session.cmd("STLS")
            session.cmd("USER user")
            self.assertEqual(session.cmd("PASS bad"), ["-ERR [AUTH] authentication failed"])
        session = self.session()
        session.cmd("STLS")
        session.cmd("USER user")
        self.assertEqual(session.cmd("PASS pass"),
                         ["-ERR [SYS/TEMP] too many failed logins, try later"])
        other = self.session(ip="198.51.100.7")
        self.assertTrue(other.login()[0].startswith("+OK"))
        other.lose()
        self.clock.advance(61)
        self.assertTrue(self.session().login()[0].startswith("+OK"))

    def test_apop(self):
        """APOP with the MD5 of the greeting's timestamp and the password logs in."""
        session = self.session()
        session.cmd("STLS")
        stamp = re.search(r"<[^>]+>", session.greeting).group(0)
        digest = hashlib.md5((stamp + PASSWORD).encode()).hexdigest()
        self.assertTrue(session.cmd("APOP user@main.dom " + digest)[0].startswith("+OK"))

    def test_apopWrong(self):
        """A wrong APOP digest fails after the delay."""
        session = self.session()
        session.cmd("STLS")
        self.assertEqual(session.cmd("APOP user@main.dom " + "0" * 32), [])
        self.clock.advance(1)
        self.assertEqual(session.read(), ["-ERR [AUTH] authentication failed"])

    def test_authPlainInitial(self):
        """AUTH PLAIN with an initial response logs in."""
        session = self.session()
        session.cmd("STLS")
        token = base64.b64encode(b"\0user@main.dom\0pass").decode()
        self.assertTrue(session.cmd("AUTH PLAIN " + token)[0].startswith("+OK"))

    def test_authPlainChallenge(self):
        """AUTH PLAIN without initial response gets an empty challenge first."""
        session = self.session()
        session.cmd("STLS")
        self.assertEqual(session.cmd("AUTH PLAIN"), ["+ "])
        token = base64.b64encode(b"\0user\0pass").decode()
        self.assertTrue(session.cmd(token)[0].startswith("+OK"))

    def test_authLogin(self):
        """AUTH LOGIN asks for the name and the password."""
        session = self.session()
        session.cmd("STLS")
        self.assertEqual(session.cmd("AUTH LOGIN"),
                         ["+ " + base64.b64encode(b"Username:").decode()])
        self.assertEqual(session.cmd(base64.b64encode(b"user").decode()),
                         ["+ " + base64.b64encode(b"Password:").decode()])
        self.assertTrue(session.cmd(base64.b64encode(b"pass").decode())[0].startswith("+OK"))

    def test_authCramMD5(self):
        """AUTH CRAM-MD5 with the HMAC of the challenge logs in."""
        session = self.session()
        session.cmd("STLS")
        challenge = base64.b64decode(session.cmd("AUTH CRAM-MD5")[0][2:])
        digest = hmac.new(b"pass", challenge, hashlib.md5).hexdigest()
        answer = base64.b64encode(b"user@main.dom " + digest.encode()).decode()
        self.assertTrue(session.cmd(answer)[0].startswith("+OK"))

    def test_authPlainEmptyInitial(self):
        """An initial response of '=' is an empty one (malformed for PLAIN)."""
        session = self.session()
        session.cmd("STLS")
        self.assertEqual(session.cmd("AUTH PLAIN ="), ["-ERR malformed PLAIN response"])

    def test_authPlainOtherIdentity(self):
        """AUTH PLAIN acting as another user fails like a wrong password."""
        setModule(self, self.context, {"AuthFailureDelay": "0"})
        session = self.session()
        session.cmd("STLS")
        token = base64.b64encode(b"other@main.dom\0user@main.dom\0pass").decode()
        self.assertEqual(session.cmd("AUTH PLAIN " + token), ["-ERR [AUTH] authentication failed"])

    def test_authCancelled(self):
        """A '*' response cancels AUTH; bad base64 is refused."""
        session = self.session()
        session.cmd("STLS")
        session.cmd("AUTH LOGIN")
        self.assertEqual(session.cmd("*"), ["-ERR authentication cancelled"])
        session.cmd("AUTH PLAIN")
        self.assertTrue(session.cmd("!!!")[0].startswith("-ERR"))
        self.assertEqual(session.server.state, "AUTHORIZATION")

    def test_authUnknownMechanism(self):
        """An unknown mechanism is refused; AUTH alone lists the mechanisms."""
        session = self.session()
        session.cmd("STLS")
        self.assertTrue(session.cmd("AUTH GSSAPI")[0].startswith("-ERR"))
        self.assertEqual(session.cmd("AUTH"),
                         ["+OK SASL mechanisms follow", "PLAIN", "LOGIN", "CRAM-MD5", "."])

    def test_accessModes(self):
        """An account whose AccessModes lack POP cannot log in; with POP it can."""
        directory = self.context.directory
        self.successResultOf(directory.setAccountSettings(
            USER, {"AccessModes": ["IMAP", "Relay"]}, update=True))
        session = self.session()
        session.login()
        self.clock.advance(1)
        self.assertEqual(session.read(), ["-ERR [AUTH] authentication failed"])
        self.successResultOf(directory.setAccountSettings(
            USER, {"AccessModes": ["POP"]}, update=True))
        self.assertTrue(self.session().login()[0].startswith("+OK"))

    def test_inUse(self):
        """A second session of the same account gets [IN-USE] until the first quits."""
        first = self.loggedIn()
        second = self.session()
        self.assertEqual(second.login(),
                         ["-ERR [IN-USE] maildrop already locked by another session"])
        self.assertEqual(second.server.state, "AUTHORIZATION")
        first.cmd("QUIT")
        first.lose()
        self.assertTrue(second.login()[0].startswith("+OK"))

    def test_dropDuringFailureDelay(self):
        """A client leaving during the failure delay leaves no pending call behind."""
        session = self.session()
        session.cmd("STLS")
        session.cmd("USER user")
        session.cmd("PASS bad")
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        session.lose()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_inUseReleasedOnDrop(self):
        """A dropped session releases the lock."""
        first = self.loggedIn()
        first.lose()
        self.assertTrue(self.session().login()[0].startswith("+OK"))

    def test_otherAccountIndependent(self):
        """Another account's maildrop is not locked by the first."""
        self.loggedIn()
        self.assertTrue(self.session().login(OTHER, "word")[0].startswith("+OK"))

    def test_storeFailure(self):
        """A store failure is a logged [SYS/TEMP], never a traceback."""
        def broken(account, mailbox):
            return defer.fail(RuntimeError("disk on fire"))

        self.patch(self.context.mailStore, "openMailbox", broken)
        reply = self.session().login()
        self.assertEqual(reply, ["-ERR [SYS/TEMP] cannot open the maildrop, try later"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class TransactionTests(POP3TestCase):
    """
    STAT, LIST, UIDL, RETR, TOP, DELE, RSET, NOOP and QUIT.
    """

    def test_stat(self):
        """STAT gives the count and total size."""
        session = self.loggedIn()
        self.assertEqual(session.cmd("STAT"), ["+OK 3 %d" % sum(map(len, self.messages))])

    def test_list(self):
        """LIST gives each message's size; LIST n one of them."""
        session = self.loggedIn()
        sizes = [len(m) for m in self.messages]
        self.assertEqual(session.cmd("LIST"), ["+OK 3 messages (%d octets)" % sum(sizes)]
                         + ["%d %d" % (i + 1, s) for i, s in enumerate(sizes)] + ["."])
        self.assertEqual(session.cmd("LIST 2"), ["+OK 2 %d" % sizes[1]])
        for bad in ("4", "0", "x", "-1", "99999999999"):
            self.assertTrue(session.cmd("LIST " + bad)[0].startswith("-ERR"), bad)

    def test_uidl(self):
        """UIDL is UIDVALIDITY.UID, the same in every session."""
        session = self.loggedIn()
        validity = self.inbox().uidValidity
        ids = [uniqueId(validity, uid) for uid in self.uids]
        self.assertEqual(session.cmd("UIDL"), ["+OK unique-id listing follows"]
                         + ["%d %s" % (i + 1, u) for i, u in enumerate(ids)] + ["."])
        self.assertEqual(session.cmd("UIDL 3"), ["+OK 3 " + ids[2]])
        session.cmd("QUIT")
        session.lose()
        self.assertEqual(self.loggedIn().cmd("UIDL 1"), ["+OK 1 " + ids[0]])

    def test_retr(self):
        """RETR sends the message dot-stuffed and sets \\Seen."""
        session = self.loggedIn()
        raw = session.cmd("RETR 2")
        self.assertEqual(raw[0], "+OK %d octets" % len(self.messages[1]))
        self.assertEqual(raw[1:], ["From: ann@example.com", "To: user@main.dom",
                                   "Subject: two", "", "..dot", "line", "."])
        self.assertIn("\\Seen", self.inbox().flags(self.uids[1]))
        self.assertNotIn("\\Seen", self.inbox().flags(self.uids[0]))

    def test_retrNoSeen(self):
        """With MarkSeenOnRetrieve=NO, RETR leaves the flags alone."""
        setModule(self, self.context, {"MarkSeenOnRetrieve": "NO"})
        session = self.loggedIn()
        session.cmd("RETR 1")
        self.assertNotIn("\\Seen", self.inbox().flags(self.uids[0]))

    def test_top(self):
        """TOP sends the header and N body lines, without setting \\Seen."""
        session = self.loggedIn()
        self.assertEqual(session.cmd("TOP 2 0"), [
            "+OK top of message follows", "From: ann@example.com", "To: user@main.dom",
            "Subject: two", "", "."])
        self.assertEqual(session.cmd("TOP 2 1")[-3:], ["", "..dot", "."])
        self.assertNotIn("\\Seen", self.inbox().flags(self.uids[1]))
        for bad in ("2", "2 x", "2 -1", "9 1", "1 1 1"):
            self.assertTrue(session.cmd("TOP " + bad)[0].startswith("-ERR"), bad)

    def test_bigMessageStreamed(self):
        """A large message goes through a pull producer, exactly."""
        body = b"".join(b".%06d " % i + b"x" * 70 + b"\r\n" for i in range(20000))
        data = b"Subject: big\r\n\r\n" + body
        deliver(self, self.context, data)
        session = self.loggedIn()
        session.server.dataReceived(b"RETR 4\r\nNOOP\r\n")
        self.assertIsNotNone(session.transport.producer)
        out = session.raw()
        head, _, rest = out.partition(b"\r\n")
        self.assertEqual(head, b"+OK %d octets" % len(data))
        self.assertEqual(rest, data.replace(b"\r\n.", b"\r\n..") + b".\r\n+OK\r\n")

    def test_dropDuringStream(self):
        """A client leaving mid-RETR stops the transfer, sets no \\Seen and frees the lock."""
        deliver(self, self.context, b"Subject: big\r\n\r\n" + (b"z" * 70 + b"\r\n") * 5000)
        session = self.loggedIn()
        session.server.dataReceived(b"RETR 4\r\n")
        producer = session.transport.producer
        producer.resumeProducing()
        producer.stopProducing()
        session.lose()
        self.assertNotIn("\\Seen", self.inbox().flags(self.uids[-1] + 1))
        self.assertTrue(self.session().login()[0].startswith("+OK"))

    def test_deleAndRset(self):
        """DELE hides a message from the session; RSET brings it back."""
        session = self.loggedIn()
        self.assertEqual(session.cmd("DELE 1"), ["+OK message 1 deleted"])
        self.assertEqual(session.cmd("DELE 1"), ["-ERR message 1 already deleted"])
        self.assertTrue(session.cmd("RETR 1")[0].startswith("-ERR"))
        self.assertEqual(session.cmd("STAT"), ["+OK 2 %d" % sum(map(len, self.messages[1:]))])
        self.assertEqual(len(session.cmd("LIST")), 4)
        self.assertEqual(session.cmd("RSET")[0], "+OK maildrop has 3 messages (%d octets)"
                         % sum(map(len, self.messages)))
        self.assertEqual(session.cmd("STAT")[0][:6], "+OK 3 ")

    def test_quitExpunges(self):
        """QUIT removes the messages marked deleted, and only those."""
        session = self.loggedIn()
        session.cmd("DELE 1")
        session.cmd("DELE 3")
        self.assertEqual(len(self.inbox()), 3)
        reply = session.cmd("QUIT")
        self.assertEqual(reply, ["+OK main.dom POP3 server signing off (2 messages deleted)"])
        self.assertTrue(session.closed)
        self.assertEqual(list(self.inbox().uids), [self.uids[1]])

    def test_dropKeeps(self):
        """A connection lost after DELE deletes nothing."""
        session = self.loggedIn()
        session.cmd("DELE 1")
        session.lose()
        self.assertEqual(list(self.inbox().uids), self.uids)

    def test_timeoutKeeps(self):
        """The idle timeout closes without reply and deletes nothing."""
        session = self.loggedIn()
        session.cmd("DELE 1")
        self.clock.advance(599)
        self.assertFalse(session.closed)
        self.clock.advance(2)
        self.assertTrue(session.closed)
        self.assertEqual(session.read(), [])
        session.lose()
        self.assertEqual(list(self.inbox().uids), self.uids)

    def test_snapshot(self):
        """Messages delivered during a session appear only in the next one."""
        session = self.loggedIn()
        deliver(self, self.context, message("four"))
        self.assertTrue(session.cmd("STAT")[0].startswith("+OK 3 "))
        session.cmd("QUIT")
        session.lose()
        self.assertTrue(self.loggedIn().cmd("STAT")[0].startswith("+OK 4 "))

    def test_expungedElsewhere(self):
        """A message another client removed is refused, not a traceback."""
        session = self.loggedIn()
        self.successResultOf(self.inbox().expunge([self.uids[0]]))
        self.assertEqual(session.cmd("RETR 1"), ["-ERR message 1 was removed by another session"])
        self.assertEqual(session.cmd("DELE 1"), ["+OK message 1 deleted"])
        self.assertTrue(session.cmd("QUIT")[0].startswith("+OK"))
        self.assertEqual(list(self.inbox().uids), self.uids[1:])

    def test_noop(self):
        """NOOP answers +OK in TRANSACTION and is refused before login."""
        self.assertEqual(self.session().cmd("NOOP"), ["-ERR NOOP not valid in this state"])
        self.assertEqual(self.loggedIn().cmd("NOOP"), ["+OK"])

    def test_authCommandsAfterLogin(self):
        """USER, PASS and STLS are refused in TRANSACTION."""
        session = self.loggedIn()
        for line in ("USER x", "PASS y", "STLS", "APOP a b"):
            self.assertTrue(session.cmd(line)[0].startswith("-ERR"), line)

    def test_quitBeforeLogin(self):
        """QUIT in AUTHORIZATION says goodbye and closes."""
        session = self.session()
        self.assertEqual(session.cmd("QUIT"), ["+OK main.dom POP3 server signing off"])
        self.assertTrue(session.closed)


class BadInputTests(POP3TestCase):
    """
    Malformed input: -ERR, the session stays sane; too many errors close it.
    """

    def test_unknownCommand(self):
        """An unknown command is -ERR and the session goes on."""
        session = self.session()
        self.assertEqual(session.cmd("FROB x"), ["-ERR unknown command: FROB"])
        self.assertEqual(session.cmd("CAPA")[0], "+OK Capability list follows")

    def test_garbage(self):
        """Empty lines, NUL, binary and over-long verbs are refused."""
        session = self.session()
        for data in (b"\r\n", b"CA\0PA\r\n", b"\xff\xfe\r\n", b"ABCDEFGHIJ\r\n", b"12 3\r\n"):
            reply = session.send(data)
            self.assertEqual(len(reply), 1, data)
            self.assertTrue(reply[0].startswith("-ERR"), data)

    def test_lineTooLong(self):
        """A command line over 255 octets is refused; the next one works."""
        session = self.session()
        self.assertEqual(session.cmd("CAPA " + "x" * MAX_LINE), ["-ERR line too long"])
        self.assertEqual(session.send(b"x" * 100000), [])
        self.assertEqual(session.send(b"y" * 100000 + b"\r\n"), ["-ERR line too long"])
        self.assertEqual(session.cmd("CAPA")[0], "+OK Capability list follows")

    def test_tooManyErrors(self):
        """MaxErrors protocol errors close the session."""
        setModule(self, self.context, {"MaxErrors": "3"})
        session = self.session()
        lines = session.send(b"A\r\nB\r\nC\r\nD\r\n")
        self.assertEqual(len(lines), 3)
        self.assertTrue(session.closed)

    def test_bareLF(self):
        """Commands ending in a bare LF are accepted."""
        self.assertEqual(self.session().send(b"CAPA\n")[0], "+OK Capability list follows")

    def test_lowercase(self):
        """Verbs are case-insensitive."""
        session = self.session()
        self.assertEqual(session.cmd("capa")[0], "+OK Capability list follows")

    def test_internalError(self):
        """An unexpected exception in a handler is logged and answered [SYS/TEMP]."""
        session = self.loggedIn()

        def boom(argument):
            raise ZeroDivisionError()

        session.server.trans_STAT = boom
        self.assertEqual(session.cmd("STAT"), ["-ERR [SYS/TEMP] internal error"])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.assertEqual(session.cmd("NOOP"), ["+OK"])


class SettingsTests(SynchronousTestCase):
    """
    L{POPSettings} and the factory builder.
    """

    def test_defaults(self):
        """The built-in defaults parse."""
        settings = POPSettings()
        self.assertEqual((settings.allowCleartextAuth, settings.idleTimeout, settings.maxErrors,
                          settings.authFailureDelay, settings.markSeen),
                         (False, 600, 10, 1, True))
        self.assertEqual(set(settings.raw), set(DEFAULTS))

    def test_invalid(self):
        """A mistyped value falls back to its default."""
        settings = POPSettings({"IdleTimeout": "soon", "MaxErrors": "-2"})
        self.assertEqual((settings.idleTimeout, settings.maxErrors), (600, 10))
        self.flushLoggedErrors()

    def test_build(self):
        """build() shares the server's login throttle and honours the row's TLS mode."""
        context = makeContext(self)
        plain = popfactory.build(Spec("starttls"), context)
        secure = popfactory.build(Spec("implicit", "pop3s"), context)
        self.assertIs(plain.throttle, secure.throttle)
        self.assertIs(plain.throttle, context.loginThrottle)
        self.assertIs(plain.tlsOptions, context.tls.options)
        self.assertFalse(plain.implicitTLS)
        self.assertIsNone(secure.tlsOptions)
        self.assertTrue(secure.implicitTLS)
        self.assertIsInstance(plain.buildProtocol(None), POP3Server)
