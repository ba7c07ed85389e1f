# -*- test-case-name: tests.mail.imap.test_server -*-
"""
Tests for L{cgpro.mail.imap.server}: greeting, states, login, STARTTLS,
bad input, IDLE and updates between sessions, over a L{StringTransport}.
"""

import base64

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from tests.mail.imap.support import USER, Session, makeContext, message


class LoginTests(SynchronousTestCase):
    """
    Greeting, capabilities, LOGIN and AUTHENTICATE.
    """

    def setUp(self):
        self.clock = Clock()
        self.context = makeContext(self, self.clock)
        self.session = Session(self, self.context)

    def test_greeting(self):
        """The greeting carries the capabilities: STARTTLS and LOGINDISABLED in clear."""
        self.assertTrue(self.session.greeting.startswith("* OK [CAPABILITY IMAP4rev1 "))
        self.assertIn(" STARTTLS", self.session.greeting)
        self.assertIn(" LOGINDISABLED", self.session.greeting)
        self.assertNotIn("AUTH=PLAIN", self.session.greeting)

    def test_loginRefusedInClear(self):
        """LOGIN and AUTHENTICATE are refused before STARTTLS."""
        out, tagged = self.session.command("LOGIN user pass")
        self.assertTrue(tagged.startswith("NO [PRIVACYREQUIRED]"))
        out, tagged = self.session.command("AUTHENTICATE PLAIN AHVzZXIAcGFzcw==")
        self.assertTrue(tagged.startswith("NO [PRIVACYREQUIRED]"))
        self.assertEqual(self.session.server.state, "unauth")

    def test_cleartextAllowedBySetting(self):
        """AllowCleartextAuth=YES allows LOGIN in clear and drops LOGINDISABLED."""
        context = makeContext(self, modules={"AllowCleartextAuth": "YES"})
        session = Session(self, context)
        self.assertNotIn("LOGINDISABLED", session.greeting)
        self.assertIn("AUTH=PLAIN", session.greeting)
        session.ok(self, "LOGIN user pass")

    def test_starttls(self):
        """STARTTLS answers OK, starts TLS, drops what followed, then LOGIN works."""
        out = self.session.send("a STARTTLS\r\nb LOGIN user pass\r\n")
        self.assertEqual(out, "a OK begin TLS negotiation now\r\n")
        self.assertTrue(self.session.transport.tlsStarted)
        out, tagged = self.session.command("CAPABILITY")
        self.assertNotIn("STARTTLS", out)
        self.assertIn("AUTH=PLAIN", out)
        self.session.ok(self, "LOGIN user pass")
        out, tagged = self.session.command("STARTTLS")
        self.assertTrue(tagged.startswith("BAD"))

    def test_implicitTLS(self):
        """On the imaps row sessions start secure: no STARTTLS, LOGIN at once."""
        session = Session(self, self.context, tls="implicit")
        self.assertNotIn("STARTTLS", session.greeting)
        session.ok(self, 'LOGIN "user@main.dom" "pass"')

    def test_login(self):
        """LOGIN with a quoted string or a literal password logs in."""
        self.session.server.secure = True
        out = self.session.send("a LOGIN user {4}\r\n")
        self.assertEqual(out, "+ OK\r\n")
        out = self.session.send("pass\r\n")
        self.assertIn("a OK [CAPABILITY", out)
        self.assertEqual(self.session.server.user, USER)
        self.assertEqual(self.session.server.state, "auth")

    def test_authenticatePlain(self):
        """AUTHENTICATE PLAIN works with SASL-IR and with a continuation; * cancels."""
        self.session.server.secure = True
        out = self.session.send("a AUTHENTICATE PLAIN\r\n")
        self.assertEqual(out, "+ \r\n")
        out = self.session.send("*\r\n")
        self.assertEqual(out, "a BAD authentication canceled\r\n")
        out = self.session.send("b AUTHENTICATE PLAIN\r\n")
        out = self.session.send(base64.b64encode(b"\0user\0pass") + b"\r\n")
        self.assertIn("b OK", out)
        session = Session(self, self.context, tls="implicit")
        session.ok(self, "AUTHENTICATE PLAIN " + base64.b64encode(b"\0user\0pass").decode())

    def test_badPassword(self):
        """A wrong password is NO [AUTHENTICATIONFAILED]; the session stays unauthenticated."""
        self.session.server.secure = True
        out, tagged = self.session.command("LOGIN user wrong")
        self.assertEqual(tagged, "NO [AUTHENTICATIONFAILED] invalid credentials")
        out, tagged = self.session.command("SELECT INBOX")
        self.assertTrue(tagged.startswith("BAD"))

    def test_throttle(self):
        """After too many failures the address is refused, even with the right password."""
        self.session.server.secure = True
        for _ in range(10):
            self.session.command("LOGIN user wrong")
        out, tagged = self.session.command("LOGIN user pass")
        self.assertTrue(tagged.startswith("NO [UNAVAILABLE]"))
        self.clock.advance(120)
        self.session.ok(self, "LOGIN user pass")

    def test_accessModes(self):
        """An account whose AccessModes exclude IMAP cannot log in."""
        self.successResultOf(self.context.directory.setAccountSettings(
            USER, {"AccessModes": ["POP", "SMTP"]}, update=True))
        self.session.server.secure = True
        out, tagged = self.session.command("LOGIN user pass")
        self.assertTrue(tagged.startswith("NO [AUTHORIZATIONFAILED]"))

    def test_logout(self):
        """LOGOUT says BYE, answers OK and closes."""
        out, tagged = self.session.command("LOGOUT")
        self.assertIn("* BYE", out)
        self.assertEqual(tagged, "OK LOGOUT completed")
        self.assertTrue(self.session.transport.disconnecting)

    def test_loginTimeout(self):
        """A silent unauthenticated session is closed after the login timeout."""
        self.clock.advance(179)
        self.assertEqual(self.session.take(), "")
        self.clock.advance(2)
        self.assertIn("* BYE", self.session.take())
        self.assertTrue(self.session.transport.disconnecting)

    def test_idleTimeout(self):
        """A silent logged-in session is logged out after the idle timeout, not before."""
        self.session.login(self)
        self.clock.advance(1799)
        self.assertEqual(self.session.take(), "")
        self.clock.advance(2)
        self.assertIn("* BYE", self.session.take())
        self.assertTrue(self.session.transport.disconnecting)


class BadInputTests(SynchronousTestCase):
    """
    Malformed commands get BAD or NO and the session goes on.
    """

    def setUp(self):
        self.context = makeContext(self, modules={"MaxLiteralSize": "1K",
                                                  "MaxLineLength": "2K"})
        self.session = Session(self, self.context)
        self.session.login(self)

    def assertSane(self):
        self.session.ok(self, "NOOP")

    def test_malformed(self):
        """Unknown commands, junk, bad tags and unbalanced parentheses are BAD."""
        for line in ("FOO", "SELECT", 'SELECT "INBOX', "FETCH (", "LIST (a b", "STATUS INBOX (",
                     "SEARCH " + "(" * 50 + "ALL" + ")" * 50):
            out, tagged = self.session.command(line)
            self.assertTrue(tagged and tagged.startswith("BAD"), (line, out))
        out = self.session.send("\r\n+bad NOOP\r\n")
        self.assertEqual(out.count(" BAD "), 2)
        self.assertSane()

    def test_wrongState(self):
        """Selected-state commands need a mailbox; LOGIN is not valid once logged in."""
        for line in ("FETCH 1 FLAGS", "EXPUNGE", "CLOSE", "LOGIN a b", "UID FETCH 1 UID"):
            out, tagged = self.session.command(line)
            self.assertIn("not valid in this state", tagged, line)
        self.assertSane()

    def test_invalidSequenceSets(self):
        """Zero, out-of-range and junk sequence numbers are BAD."""
        self.successResultOf(self.context.mailStore.deliver(USER, "INBOX", message()))
        self.session.ok(self, "SELECT INBOX")
        for line in ("FETCH 0 FLAGS", "FETCH 5 FLAGS", "FETCH 1:x FLAGS", "STORE -1 FLAGS ()",
                     "FETCH 1 (FLAGS", "FETCH 1 FOO", "UID FETCH 0:* UID", "UID FOO 1"):
            out, tagged = self.session.command(line)
            self.assertTrue(tagged.startswith("BAD"), (line, out))
        self.session.ok(self, "UID FETCH 1:* UID")
        self.assertSane()

    def test_unknownCharset(self):
        """SEARCH with an unknown charset is NO [BADCHARSET]."""
        self.session.ok(self, "SELECT INBOX")
        out, tagged = self.session.command("SEARCH CHARSET KOI8-R TEXT x")
        self.assertTrue(tagged.startswith("NO [BADCHARSET"))
        self.session.ok(self, "SEARCH CHARSET UTF-8 TEXT x")

    def test_hugeLiteral(self):
        """Too-big literals are refused: no continuation, or skipped with LITERAL+."""
        out = self.session.send("a APPEND INBOX {5000}\r\n")
        self.assertEqual(out, "a NO [TOOBIG] literal too big\r\n")
        out = self.session.send("b APPEND INBOX {5000+}\r\n" + "x" * 5000 + "\r\n")
        self.assertEqual(out, "b NO [TOOBIG] literal too big\r\n")
        out = self.session.send("c LOGIN {100000+}\r\n")
        self.assertEqual(out, "")
        self.session.send("y" * 100000 + "\r\n")
        self.assertSane()

    def test_longLine(self):
        """An endless line is dropped as it arrives and refused when it ends."""
        for _ in range(20):
            self.assertEqual(self.session.send("a NOOP " + "x" * 1000), "")
        self.assertLess(self.session.server.framer.buffered, 4000)
        out = self.session.send("\r\n")
        self.assertEqual(out, "a BAD command line too long\r\n")
        self.assertSane()

    def test_noTraceback(self):
        """An unexpected error answers NO [SERVERBUG], logged, with no details."""
        self.session.ok(self, "SELECT INBOX")
        self.session.server.mailbox.expunge = lambda *a, **k: 1 / 0
        out, tagged = self.session.command("EXPUNGE")
        self.assertEqual(tagged, "NO [SERVERBUG] internal error")
        self.assertNotIn("Traceback", out)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.assertSane()


class UpdateTests(SynchronousTestCase):
    """
    Changes by other sessions and deliveries reach a selected session.
    """

    def setUp(self):
        self.clock = Clock()
        self.context = makeContext(self, self.clock)
        self.store = self.context.mailStore
        for i in range(3):
            self.successResultOf(self.store.deliver(USER, "INBOX", message("m%d" % i)))
        self.one = Session(self, self.context)
        self.one.login(self)
        self.one.ok(self, "SELECT INBOX")
        self.two = Session(self, self.context)
        self.two.login(self)
        self.two.ok(self, "SELECT INBOX")

    def test_idleDelivery(self):
        """A delivery shows up in an IDLE session at once (EXISTS, RECENT)."""
        out = self.one.send("i IDLE\r\n")
        self.assertEqual(out, "+ idling\r\n")
        self.successResultOf(self.store.deliver(USER, "INBOX", message("new")))
        self.clock.advance(0)
        self.assertEqual(self.one.take(), "* 4 EXISTS\r\n* 4 RECENT\r\n")
        out = self.one.send("DONE\r\n")
        self.assertEqual(out, "i OK IDLE terminated\r\n")

    def test_idleFlagsAndExpunge(self):
        """Flag changes and expunges by another session show in IDLE."""
        self.one.send("i IDLE\r\n")
        self.two.ok(self, "STORE 2 +FLAGS (\\Flagged)")
        self.clock.advance(0)
        self.assertEqual(self.one.take(), "* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent))\r\n")
        self.two.ok(self, "STORE 1 +FLAGS.SILENT (\\Deleted)")
        out = self.two.ok(self, "EXPUNGE")
        self.assertIn("* 1 EXPUNGE", out)
        self.clock.advance(0)
        self.assertIn("* 1 EXPUNGE\r\n", self.one.take())
        self.assertEqual(self.one.send("DONE\r\n"), "i OK IDLE terminated\r\n")

    def test_noExpungeDuringFetch(self):
        """EXPUNGE is held back during FETCH and sent with the next NOOP."""
        self.two.ok(self, "STORE 1 +FLAGS.SILENT (\\Deleted)")
        self.two.ok(self, "EXPUNGE")
        out = self.one.ok(self, "FETCH 2 UID")
        self.assertNotIn("EXPUNGE", out)
        self.assertIn("* 2 FETCH (UID 2)", out)
        out = self.one.ok(self, "NOOP")
        self.assertIn("* 1 EXPUNGE", out)
        out = self.one.ok(self, "FETCH 1 UID")
        self.assertIn("* 1 FETCH (UID 2)", out)

    def test_idleBadEnd(self):
        """Anything but DONE ends IDLE with BAD."""
        self.one.send("i IDLE\r\n")
        self.assertEqual(self.one.send("NOOP\r\n"), "i BAD expected DONE\r\n")
        self.one.ok(self, "NOOP")

    def test_mailboxDeleted(self):
        """A session whose mailbox is deleted by another gets BYE."""
        self.store = self.context.mailStore
        self.successResultOf(self.store.createMailbox(USER, "Box"))
        self.one.ok(self, "SELECT Box")
        self.two.ok(self, "DELETE Box")
        out = self.one.send("a NOOP\r\n")
        self.assertIn("* BYE", out)


class FuzzTests(SynchronousTestCase):
    """
    Random commands never break a session.
    """

    WORDS = ["FETCH", "STORE", "SEARCH", "UID", "LIST", "SELECT", "APPEND", "COPY", "MOVE",
             "STATUS", "SETACL", "GETACL", "ENABLE", "ID", "1", "1:*", "*", "0", "INBOX", "(",
             ")", "[", "]", "{3}", "{2+}", '"', "\\Seen", "BODY[", "BODY[1.2]<0.5>", "NIL",
             "OR", "NOT", "HEADER", "~user/x", "~", "%", "&Jjo", "+FLAGS", "(FLAGS)", "\0", "\xff",
             "CHARSET", "MODSEQ", "(CHANGEDSINCE 1)", "ENVELOPE", "RFC822", "IDLE", "AUTHENTICATE"]

    def test_random(self):
        """Thousands of random commands get tagged or untagged answers; NOOP still works."""
        import random

        rng = random.Random(4)
        context = makeContext(self)
        for i in range(3):
            self.successResultOf(context.mailStore.deliver(USER, "INBOX", message("m%d" % i)))
        session = Session(self, context)
        session.login(self)
        session.ok(self, "SELECT INBOX")
        for n in range(3000):
            words = [rng.choice(self.WORDS) for _ in range(rng.randint(0, 8))]
            line = "f%d %s\r\n" % (n, " ".join(words))
            session.send(line.encode("utf-8", "surrogateescape"))
            session.send("\r\nDONE\r\n*\r\n\r\n")
            if session.transport.disconnecting:
                break
        session.send("xx\r\n" * 3)
        if not session.transport.disconnecting:
            out = session.send("zz NOOP\r\n")
            self.assertIn("zz OK", out)
        self.assertEqual(self.flushLoggedErrors(), [])
