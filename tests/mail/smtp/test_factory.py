# -*- test-case-name: tests.mail.smtp.test_factory -*-
"""
Tests for L{cgpro.mail.smtp.factory} and L{cgpro.mail.smtp.settings}: the
builders named in the port table and the module settings.
"""

from twisted.python.reflect import namedAny
from twisted.trial.unittest import SynchronousTestCase

from cgpro.core.ports import ListenerSpec
from cgpro.mail.smtp import settings as smtpSettings
from cgpro.mail.smtp.factory import SMTPFactory, buildLMTP, buildSMTP, buildSubmission
from cgpro.mail.smtp.lmtp import LMTPServer
from cgpro.mail.smtp.server import SMTPServer
from tests.mail.smtp.fakes import Session, makeContext, setModule


def spec(name, module, tls, port=25):
    return ListenerSpec(name=name, module=module, transport="tcp", address="127.0.0.1",
                        port=port, tls=tls)


class BuildTests(SynchronousTestCase):
    """
    The three builders.
    """

    def setUp(self):
        self.context = makeContext(self)

    def test_dottedNames(self):
        """The dotted names the port table will use resolve to the builders."""
        for name in ("buildSMTP", "buildSubmission", "buildLMTP"):
            self.assertTrue(callable(namedAny("cgpro.mail.smtp.factory." + name)))

    def test_smtp(self):
        """The smtp row offers STARTTLS and accepts mail without AUTH."""
        factory = buildSMTP(spec("smtp", "smtp", "starttls"), self.context)
        self.assertIsInstance(factory, SMTPFactory)
        self.assertIs(factory.protocol, SMTPServer)
        self.assertFalse(factory.implicitTLS)
        self.assertIs(factory.tlsOptions, self.context.tls.options)
        self.assertFalse(factory.requireAuth)

    def test_smtps(self):
        """The smtps row (module smtp, tls implicit) starts secure and has no STARTTLS."""
        factory = buildSMTP(spec("smtps", "smtp", "implicit", 465), self.context)
        self.assertTrue(factory.implicitTLS)
        self.assertIsNone(factory.tlsOptions)
        self.assertIn("250-AUTH PLAIN LOGIN CRAM-MD5", Session(factory).ehlo())

    def test_submission(self):
        """The submission row requires AUTH."""
        factory = buildSubmission(spec("submission", "submission", "starttls", 587), self.context)
        self.assertTrue(factory.requireAuth)

    def test_lmtp(self):
        """The lmtp row makes LMTP sessions under module LMTP settings."""
        factory = buildLMTP(spec("lmtp", "lmtp", "no", 24), self.context)
        self.assertIs(factory.protocol, LMTPServer)
        self.assertEqual(factory.module, "LMTP")
        self.assertFalse(factory.authEnabled)
        self.assertIsNone(factory.tlsOptions)
        self.assertIsInstance(factory.buildProtocol(None), LMTPServer)

    def test_shared(self):
        """All listeners share one login throttle (the CLI's) and one set of rate counters."""
        smtp = buildSMTP(spec("smtp", "smtp", "starttls"), self.context)
        submission = buildSubmission(spec("submission", "submission", "starttls"), self.context)
        self.assertIs(smtp.throttle, submission.throttle)
        self.assertIs(smtp.throttle, self.context.loginThrottle)
        self.assertIs(smtp.policy.connections, submission.policy.connections)
        self.assertIs(smtp.policy.messages, submission.policy.messages)

    def test_settingsApplyToNextSession(self):
        """A setting changed over the CLI applies to the next connection."""
        factory = buildSMTP(spec("smtp", "smtp", "starttls"), self.context)
        self.assertIn("250-SIZE 52428800", Session(factory).ehlo())
        setModule(self, self.context, {"MaxMessageSize": "2M"})
        self.assertIn("250-SIZE 2097152", Session(factory).ehlo())

    def test_noTLS(self):
        """Without a server certificate nothing offers STARTTLS."""
        self.context.tls = None
        factory = buildSMTP(spec("smtp", "smtp", "starttls"), self.context)
        self.assertNotIn("250-STARTTLS", Session(factory).ehlo())


class SettingsTests(SynchronousTestCase):
    """
    Parsing the module settings.
    """

    def test_defaults(self):
        """The built-in values."""
        s = smtpSettings.SMTPSettings({})
        self.assertEqual((s.maxMessageSize, s.maxRecipients, s.idleTimeout, s.maxErrors),
                         (50 << 20, 1000, 300, 20))
        self.assertEqual((s.maxConnectionsPerMinute, s.maxMessagesPerMinute), (0, 0))
        self.assertEqual((s.allowCleartextAuth, s.bareLF, s.nulBytes), (False, "Normalize",
                                                                         "Reject"))
        self.assertEqual((s.spfCheck, s.dnsbl, s.checkReturnPath, s.dnsTimeout),
                         ("NO", [], False, 10))

    def test_values(self):
        """Stored values in the data format's forms."""
        s = smtpSettings.SMTPSettings({
            "MaxMessageSize": "unlimited", "DNSBL": "a.example, b.example.",
            "SPFCheck": "reject", "BareLF": "reject", "AllowCleartextAuth": "YES",
            "ReceiveIdleTimeout": "2m"})
        self.assertEqual((s.maxMessageSize, s.dnsbl, s.spfCheck, s.bareLF,
                          s.allowCleartextAuth, s.idleTimeout),
                         (None, ["a.example", "b.example"], "REJECT", "Reject", True, 120))

    def test_invalid(self):
        """An invalid value falls back to its default."""
        s = smtpSettings.SMTPSettings({"MaxRecipients": "-5", "SPFCheck": "maybe"})
        self.assertEqual((s.maxRecipients, s.spfCheck), (1000, "NO"))
        self.flushLoggedErrors()

    def test_otherKeysIgnored(self):
        """Keys of the relay client in the same module dictionary are left alone."""
        s = smtpSettings.SMTPSettings({"RelayPort": "2525", "IdleTimeout": "1s"})
        self.assertEqual(s.idleTimeout, 300)
