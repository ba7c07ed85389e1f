# -*- test-case-name: tests.core.test_settings -*-
"""
Tests for L{cgpro.core.settings}: UPDATE semantics and the chains.
"""

from twisted.trial.unittest import SynchronousTestCase

from cgpro.core import settings


class SettingsTests(SynchronousTestCase):
    """
    applyUpdate and the effective chains.
    """

    def test_updateMergesAndDefaultRemoves(self):
        """Only given keys change; 'default' (any case) removes a key."""
        stored = {"A": "1", "B": "2"}
        self.assertEqual(settings.applyUpdate(stored, {"A": "DEFAULT", "C": "3"}),
                         {"B": "2", "C": "3"})
        self.assertEqual(stored, {"A": "1", "B": "2"})

    def test_accountChainOrder(self):
        """explicit > service class > domain defaults > server defaults > built-in."""
        server = {"RealName": "s", "MaxAccountSize": "s", "QuotaAlert": "s",
                  "ServiceClasses": {"c": {"MaxAccountSize": "class", "RealName": "class"}}}
        domain = {"MaxAccountSize": "d", "QuotaAlert": "d"}
        result = settings.effectiveAccount({"ServiceClass": "c", "RealName": "x"}, domain, server)
        self.assertEqual(result["RealName"], "x")
        self.assertEqual(result["MaxAccountSize"], "class")
        self.assertEqual(result["QuotaAlert"], "d")
        self.assertEqual(result["RulesAllowed"], "Any")

    def test_domainServiceClassWins(self):
        """A class defined in the domain defaults shadows the server's."""
        server = {"ServiceClasses": {"c": {"X": "server"}}}
        domain = {"ServiceClasses": {"c": {"X": "domain"}}}
        self.assertEqual(settings.effectiveAccount({"ServiceClass": "c"}, domain, server)["X"],
                         "domain")

    def test_domainChain(self):
        """explicit > server domain defaults > built-in."""
        result = settings.effectiveDomain({"MailToUnknown": "Rerouted"},
                                          {"MailToUnknown": "x", "SignalToUnknown": "y"})
        self.assertEqual(result["MailToUnknown"], "Rerouted")
        self.assertEqual(result["SignalToUnknown"], "y")
        self.assertEqual(result["AccessToUnknown"], "Rejected")
