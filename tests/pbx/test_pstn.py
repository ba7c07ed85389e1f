# -*- test-case-name: tests.pbx.test_pstn -*-
"""
Tests for L{cgpro.pbx.pstn}: every table of pbx-apps.md sections 4 to 8 and
objects.md 4.4.
"""

from twisted.trial.unittest import SynchronousTestCase

from cgpro.core import dataformat
from cgpro.pbx.pstn import (
    BillingPlan,
    BillingPlanError,
    areaDigits,
    emergencyTargets,
    fromName,
    localAreaTarget,
    pstnSettings,
    rsipAuthName,
    rsipExpires,
    rsipPeriod,
    rsipTarget,
)

PLAN = """
{
  1990 = blocked;   // calls to +1-990-XXX-XXXX are blocked
  1    = #0;        // North American numbers are free
  ""   = #10;       // everything else: 10 units per minute
}
"""


class SettingsTests(SynchronousTestCase):
    """
    L{pstnSettings} and L{fromName}.
    """

    def test_plain(self):
        """Only C{PSTN...} keys are kept."""
        settings = {"PSTNGatewayName": "gw.dom", "PSTNFromName": "$", "RealName": "Al"}
        self.assertEqual(pstnSettings(settings),
                         {"PSTNGatewayName": "gw.dom", "PSTNFromName": "$"})

    def test_dictionaryByKey(self):
        """Dictionary values give the element named by the gateway key."""
        settings = {"PSTNGatewayName": {"gw1": "one.dom", "gwru": "ru.dom"},
                    "PSTNGatewayVia": "proxy.dom",
                    "PSTNFromName": {"gwru": "+7555"}}
        self.assertEqual(pstnSettings(settings, "gwru"),
                         {"PSTNGatewayName": "ru.dom", "PSTNGatewayVia": "proxy.dom",
                          "PSTNFromName": "+7555"})
        self.assertEqual(pstnSettings(settings, "gw1"),
                         {"PSTNGatewayName": "one.dom", "PSTNGatewayVia": "proxy.dom"})
        self.assertEqual(pstnSettings(settings), {"PSTNGatewayVia": "proxy.dom"})

    def test_gatewayDomainFallback(self):
        """C{PSTNGatewayDomain} stands in for a missing C{PSTNGatewayName}."""
        self.assertEqual(
            pstnSettings({"PSTNGatewayDomain": "pstn.communigate.com"})["PSTNGatewayName"],
            "pstn.communigate.com")
        both = {"PSTNGatewayDomain": "old.dom", "PSTNGatewayName": "new.dom"}
        self.assertEqual(pstnSettings(both)["PSTNGatewayName"], "new.dom")
        keyed = {"PSTNGatewayDomain": {"gw1": "k.dom"}}
        self.assertEqual(pstnSettings(keyed, "gw1")["PSTNGatewayName"], "k.dom")

    def test_fromName(self):
        """C{$} becomes the account name; empty stays empty."""
        self.assertEqual(fromName("$", "alice"), "alice")
        self.assertEqual(fromName("+1415$", "323"), "+1415323")
        self.assertEqual(fromName("", "alice"), "")
        self.assertEqual(fromName(None, "alice"), "")


class BillingPlanTests(SynchronousTestCase):
    """
    L{BillingPlan}: the table of pbx-apps.md 5.3.
    """

    def setUp(self):
        self.plan = BillingPlan.parse(dataformat.loads(PLAN))

    def test_table(self):
        """The spec table, row by row."""
        for number, expected in [("+19905551234", ("blocked", "blocked")),
                                 ("+14155551234", ("allowed", 0)),
                                 ("+4930123456", ("allowed", 10)),
                                 ("+1990", ("blocked", "blocked"))]:
            self.assertEqual(self.plan.check(number), expected, number)

    def test_longestPrefix(self):
        """The longest matching prefix wins, whatever the dictionary order."""
        plan = BillingPlan.parse({"": 10, "4": 5, "49": 2, "4930": "no Berlin"})
        self.assertEqual(plan.check("+4930111"), ("blocked", "no Berlin"))
        self.assertEqual(plan.check("+4940111"), ("allowed", 2))
        self.assertEqual(plan.check("4111"), ("allowed", 5))
        self.assertEqual(plan.check("+331"), ("allowed", 10))

    def test_noMatch(self):
        """Without an empty key an unpriced number is blocked."""
        plan = BillingPlan.parse({"1": 0})
        self.assertEqual(plan.check("+44123")[0], "blocked")

    def test_fractionalCost(self):
        """A C{#1.5} cost is kept as a number."""
        self.assertEqual(BillingPlan.parse({"": 1.5}).check("1"), ("allowed", 1.5))

    def test_malformed(self):
        """Non-digit prefixes, other value types, negative costs are refused."""
        for data in ["text", ["1"], {"+1": 0}, {"1a": 0}, {"1": ["x"]}, {"1": {}},
                     {"1": -1}, {"1": None}, {"1": ""}, {"1": True}]:
            self.assertRaises(BillingPlanError, BillingPlan.parse, data)

    def test_errorNamesEntry(self):
        """The error names the offending prefix."""
        e = self.assertRaises(BillingPlanError, BillingPlan.parse, {"12x": 0})
        self.assertIn("12x", str(e))


class LocalAreaTests(SynchronousTestCase):
    """
    L{areaDigits} and L{localAreaTarget}: the table of pbx-apps.md 7.
    """

    def test_table(self):
        """The spec table."""
        self.assertEqual(localAreaTarget("1(415)", "5551234"), "14155551234@telnum")
        self.assertEqual(localAreaTarget("49(30)", "301234567", "c"), "49301234567@telnum")
        self.assertIsNone(localAreaTarget("", "5551234"))
        self.assertIsNone(localAreaTarget(None, "5551234", "c"))

    def test_digits(self):
        """All digits, or the country code before the parenthesis."""
        self.assertEqual(areaDigits("1(415)"), "1415")
        self.assertEqual(areaDigits("1(415)", "c"), "1")
        self.assertEqual(areaDigits("+49 (30)", "C"), "49")
        self.assertEqual(areaDigits("44", "c"), "44")
        self.assertEqual(areaDigits("1(415)", ""), "1415")
        self.assertIsNone(areaDigits("()"))

    def test_unknownMode(self):
        """A mode other than C{c} is an error."""
        self.assertRaises(ValueError, areaDigits, "1(415)", "x")


class EmergencyTests(SynchronousTestCase):
    """
    L{emergencyTargets}: pbx-apps.md 8.
    """

    def test_observedValue(self):
        """The one observed value."""
        self.assertEqual(emergencyTargets("call=sip:911@telnum", "911"), ["sip:911@telnum"])

    def test_fork(self):
        """Several C{call=} items fork."""
        self.assertEqual(emergencyTargets("call=sip:911@telnum, call=sip:desk@d.dom", "911"),
                         ["sip:911@telnum", "sip:desk@d.dom"])

    def test_bare(self):
        """A bare address is accepted."""
        self.assertEqual(emergencyTargets("security@d.dom", "112"), ["security@d.dom"])

    def test_empty(self):
        """Empty falls back to the dialled number at C{telnum}."""
        self.assertEqual(emergencyTargets("", "112"), ["112@telnum"])
        self.assertEqual(emergencyTargets(None, "911"), ["911@telnum"])
        self.assertEqual(emergencyTargets(" , ", "911"), ["911@telnum"])


class RSIPTests(SynchronousTestCase):
    """
    L{rsipPeriod}, L{rsipExpires}, L{rsipTarget}: pbx-apps.md 4.
    """

    def test_expiresTable(self):
        """30 min asks for 1920 s; 60 s for 180 s."""
        self.assertEqual(rsipExpires(rsipPeriod("30m")), 1920)
        self.assertEqual(rsipExpires(rsipPeriod("60s")), 180)

    def test_periods(self):
        """Units, bare seconds, numbers, Never, the 30 s minimum."""
        self.assertEqual(rsipPeriod("1h"), 3600)
        self.assertEqual(rsipPeriod("90"), 90)
        self.assertEqual(rsipPeriod(120), 120)
        self.assertEqual(rsipPeriod(" 5M "), 300)
        self.assertIsNone(rsipPeriod("Never"))
        self.assertIsNone(rsipPeriod("never"))
        self.assertEqual(rsipPeriod("10s"), 30)

    def test_badPeriods(self):
        """Anything else is refused."""
        for value in ["", "soon", "10d", "-5", "1.5m", None, ["30m"]]:
            self.assertRaises(ValueError, rsipPeriod, value)

    def test_aor(self):
        """Account C{5551234} at C{gw.example}."""
        self.assertEqual(rsipTarget({"domain": "gw.example", "fromName": "5551234"}, "pbx"),
                         ("sip:5551234@gw.example", "gw.example", None, False))

    def test_proxy(self):
        """C{gateway@proxy}: sent via the proxy, AOR at the gateway."""
        self.assertEqual(
            rsipTarget({"domain": "gw.example@proxy.example", "fromName": "5551234"}, "pbx"),
            ("sip:5551234@gw.example", "gw.example", "proxy.example", False))

    def test_direct(self):
        """A leading C{*} means calls go straight to the Account."""
        self.assertEqual(rsipTarget({"domain": "*sip.provider.dom", "fromName": "u1"}, "pbx"),
                         ("sip:u1@sip.provider.dom", "sip.provider.dom", None, True))

    def test_fromNameForms(self):
        """A full address is kept; C{$} and an empty value use the Account."""
        self.assertEqual(rsipTarget({"domain": "gw", "fromName": "me@other.dom"}, "a")[0],
                         "sip:me@other.dom")
        self.assertEqual(rsipTarget({"domain": "gw", "fromName": "$"}, "alice")[0],
                         "sip:alice@gw")
        self.assertEqual(rsipTarget({"domain": "gw"}, "alice")[0], "sip:alice@gw")
        self.assertEqual(rsipTarget({"domain": "gw", "fromName": "sip:x@y"}, "a")[0], "sip:x@y")

    def test_noHost(self):
        """A record without a host cannot register."""
        self.assertRaises(ValueError, rsipTarget, {"fromName": "x"}, "a")
        self.assertRaises(ValueError, rsipTarget, {"domain": "*"}, "a")

    def test_authName(self):
        """C{authName}, else the Account value."""
        self.assertEqual(rsipAuthName({"authName": "u@gw", "fromName": "x"}, "a"), "u@gw")
        self.assertEqual(rsipAuthName({"fromName": "5551234"}, "a"), "5551234")
        self.assertEqual(rsipAuthName({}, "alice"), "alice")
