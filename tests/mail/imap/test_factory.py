# -*- test-case-name: tests.mail.imap.test_factory -*-
"""
Tests for L{cgpro.mail.imap.factory}: the C{build} entry point of the port
table and the IMAP module settings.
"""

from twisted.trial.unittest import SynchronousTestCase

from cgpro.core.ports import ListenerSpec
from cgpro.mail.imap.factory import IMAPSettings, build, loadSettings
from cgpro.mail.imap.server import IMAPServer
from tests.mail.imap.support import makeContext


def spec(name, tls, port):
    return ListenerSpec(name=name, module="imap", transport="tcp", address="0.0.0.0", port=port,
                        tls=tls)


class BuildTests(SynchronousTestCase):
    """
    build(spec, context) for the imap and imaps rows.
    """

    def setUp(self):
        self.context = makeContext(self)

    def test_starttlsRow(self):
        """The imap row offers STARTTLS with the server certificate."""
        factory = build(spec("imap", "starttls", 143), self.context)
        self.assertIs(factory.tlsOptions, self.context.tls.options)
        self.assertFalse(factory.implicitTLS)
        self.assertIsInstance(factory.buildProtocol(None), IMAPServer)

    def test_implicitRow(self):
        """The imaps row starts secure and offers no STARTTLS."""
        factory = build(spec("imaps", "implicit", 993), self.context)
        self.assertTrue(factory.implicitTLS)
        self.assertIsNone(factory.tlsOptions)

    def test_sharedThrottle(self):
        """Every listener shares the context's login throttle."""
        one = build(spec("imap", "starttls", 143), self.context)
        two = build(spec("imaps", "implicit", 993), self.context)
        self.assertIs(one.throttle, two.throttle)
        self.assertIs(one.throttle, self.context.loginThrottle)


class SettingsTests(SynchronousTestCase):
    """
    The IMAP module settings.
    """

    def test_defaults(self):
        """Defaults: no cleartext logins, 50M APPEND literals, 30 minute autologout."""
        settings = IMAPSettings({})
        self.assertFalse(settings.allowCleartext)
        self.assertEqual(settings.maxLiteral, 50 * 1024 * 1024)
        self.assertEqual(settings.maxSmallLiteral, 64 * 1024)
        self.assertEqual(settings.idleTimeout, 1800)

    def test_stored(self):
        """Stored module settings apply; bad values fall back to the defaults."""
        context = makeContext(self, modules={"AllowCleartextAuth": "YES",
                                             "MaxLiteralSize": "bogus", "IdleTimeout": "5m"})
        settings = loadSettings(context.directory)
        self.assertTrue(settings.allowCleartext)
        self.assertEqual(settings.maxLiteral, 50 * 1024 * 1024)
        self.assertEqual(settings.idleTimeout, 300)
