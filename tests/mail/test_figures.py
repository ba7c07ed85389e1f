# -*- test-case-name: tests.mail.test_figures -*-
"""
What the mail listeners report to the server's catalog
(L{cgpro.core.stats}, C{context.stats}): connections, sessions open,
failed logins, errors by kind and accepted messages, each labelled with
its listener's module.  Sessions run over string transports with a clock.
"""

from twisted.trial.unittest import SynchronousTestCase

from tests.mail.imap import support as imap
from tests.mail.pop3 import fakes as pop
from tests.mail.smtp import fakes as smtp


def value(context, path):
    """
    @return: one element of the context's catalog (C{name/label...}).
    """
    return context.stats.element(path)


class SMTPFiguresTests(SynchronousTestCase):
    """
    SMTP and LMTP sessions.
    """

    def setUp(self):
        self.context = smtp.makeContext(self)

    def test_session(self):
        """
        A session counts one connection and is open until it is lost; an
        unknown command is a protocol error; a committed message is
        accepted.
        """
        session = smtp.Session(smtp.makeFactory(self.context))
        self.assertEqual(value(self.context, "cgpro_connections_total/smtp"), 1)
        self.assertEqual(value(self.context, "cgpro_sessions_active/smtp"), 1)
        session.ehlo()
        self.assertTrue(session.cmd("XYZZY")[0].startswith("500"))
        self.assertTrue(session.mail()[0].startswith("250"))
        self.assertEqual(value(self.context, "cgpro_errors_total/smtp/protocol"), 1)
        self.assertEqual(value(self.context, "cgpro_mail_accepted_total/smtp"), 1)
        session.lose()
        self.assertEqual(value(self.context, "cgpro_sessions_active/smtp"), 0)
        self.assertEqual(value(self.context, "cgpro_connections_total/smtp"), 1)

    def test_authFailure(self):
        """
        A refused AUTH counts as a failed login of the module.
        """
        session = smtp.Session(smtp.makeFactory(self.context))
        session.server.secure = True
        session.ehlo()
        session.cmd("AUTH PLAIN AHVzZXJAbWFpbi5kb20Ad3Jvbmc=")
        self.context.reactor.advance(10)
        self.assertTrue(session.read()[0].startswith("535"))
        self.assertEqual(value(self.context, "cgpro_auth_failures_total/smtp"), 1)

    def test_timeout(self):
        """
        An idle session that times out counts as a C{timeout} error.
        """
        session = smtp.Session(smtp.makeFactory(self.context))
        self.context.reactor.advance(3600)
        self.assertTrue(session.closed)
        self.assertEqual(value(self.context, "cgpro_errors_total/smtp/timeout"), 1)

    def test_lmtp(self):
        """
        LMTP sessions report under their own module.
        """
        smtp.Session(smtp.makeFactory(self.context, lmtp=True))
        self.assertEqual(value(self.context, "cgpro_connections_total/lmtp"), 1)
        self.assertEqual(value(self.context, "cgpro_connections_total/smtp"), 0)


class POPFiguresTests(SynchronousTestCase):
    """
    POP3 sessions.
    """

    def test_session(self):
        """
        Connections, sessions open and failed logins, module C{pop}.
        """
        context = pop.makeContext(self)
        session = pop.Session(pop.makeFactory(context))
        self.assertEqual(value(context, "cgpro_sessions_active/pop"), 1)
        session.login(password="wrong")
        context.reactor.advance(10)
        self.assertEqual(value(context, "cgpro_auth_failures_total/pop"), 1)
        session.lose()
        self.assertEqual(value(context, "cgpro_sessions_active/pop"), 0)
        self.assertEqual(value(context, "cgpro_connections_total/pop"), 1)


class IMAPFiguresTests(SynchronousTestCase):
    """
    IMAP sessions.
    """

    def test_session(self):
        """
        Connections, sessions open, protocol errors (C{BAD}) and failed
        logins (counted by the login command through the factory's
        C{authFailures}), module C{imap}.
        """
        context = imap.makeContext(self)
        session = imap.Session(self, context)
        self.assertEqual(value(context, "cgpro_sessions_active/imap"), 1)
        self.assertTrue(session.command("XYZZY")[1].startswith("BAD"))
        session.server.secure = True
        self.assertTrue(session.command("LOGIN user wrong")[1].startswith("NO"))
        self.assertEqual(session.factory.authFailures, 1)
        self.assertEqual(value(context, "cgpro_auth_failures_total/imap"), 1)
        self.assertEqual(value(context, "cgpro_errors_total/imap/protocol"), 1)
        session.server.connectionLost(None)
        self.assertEqual(value(context, "cgpro_sessions_active/imap"), 0)
        self.assertEqual(value(context, "cgpro_connections_total/imap"), 1)
