# -*- test-case-name: tests.core.test_router -*-
"""
Tests for L{cgpro.core.router}.

L{SpecTableTests} has one test per numbered case of C{router.md} section 7;
the other classes cover parsing, default processing and relaying.
"""

import time

from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from cgpro.core.interfaces import IRoutingDirectory
from cgpro.core.router import (
    KINDS,
    MAX_PASSES,
    Record,
    Route,
    Router,
    RouterTableError,
    parseTable,
)
from tests.support.routing import FakeRoutingDirectory, makeDirectory

GATEWAY_RECORDS = {
    "1*": "NoRelay:Signal:<1*@example.com> = 1*@192.168.1.2",
    "10+d": "N:S:<(10+d)@example.com> = *@192.168.1.2",
    "9*": "N:S:<9*@example.com> = *@192.168.1.2",
    "011*": "N:S:<011*@example.com> = 011*@192.168.1.2",
    "+10+d": "N:S:<+(10+d)*> = +*@192.168.1.2",
}

INCOMING_TABLE = """\
<+74951234567@gateway.company.dom> = pbx#pbx@localhost
;calls to (3 digits)@gateway.company.dom go to gatewayincoming, digits passed as parameter
<(3d)@gateway.company.dom> = gatewayincoming{*}#pbx@localhost
;all other calls go to the IVR
<*@gateway.company.dom> = pbx#pbx@localhost
"""

GATEWAYCALLER_TABLE = """\
Signal:<7(10d)@*>=gatewaycaller{+7*,gwru}#pbx
Signal:<1(10d)@*>=gatewaycaller{+1*,gwus}#pbx
"""

PSTN_TABLE = """\
<+46(5-12d)@pstn> = gatewaycaller{+46*,gw1}#pbx
<*@pstn>          = gatewaycaller{*,gw2}#pbx
"""

LOCAL_AREA_TABLE = """\
<00(8-20d)@*> = +*@telnum
<0(7-20d)@*> = +49*@telnum
<(7d)@*> = localAreaCall{*}#pbx@localhost
<911@*> = emergency#pbx@localhost
"""


def route(table, address, kind="SIGNAL", trusted=True, directory=None):
    """
    Route C{address} with a fresh L{Router} on C{table}.
    """
    router = Router(directory or makeDirectory(), table)
    return router.route(address, kind, trusted)


class FakeDirectoryTests(TestCase):
    """
    The test directory is a faithful L{IRoutingDirectory}.
    """

    def test_interface(self):
        """
        L{FakeRoutingDirectory} provides L{IRoutingDirectory}.
        """
        self.assertTrue(verifyObject(IRoutingDirectory, makeDirectory()))

    def test_aliases(self):
        """
        Domain and account aliases resolve to canonical names.
        """
        directory = makeDirectory()
        self.assertEqual(directory.domainFor("EX.com"), "example.com")
        self.assertEqual(directory.findObject("323@ex.com"),
                         ("account", "alice@example.com", None))


class SpecTableTests(TestCase):
    """
    The numbered cases of C{router.md} section 7.
    """

    def assertApplication(self, result, app, params, account="pbx@main.dom"):
        """
        C{result} starts application C{app} with C{params} on C{account}.
        """
        address = app + ("{" + ",".join(params) + "}" if params else "")
        self.assertEqual(result.asTriple(), ("PBX", account, address))
        self.assertEqual(result.app, app)
        self.assertEqual(result.params, params)
        self.assertEqual(result.account, account)

    def assertNotRouted(self, result, address):
        """
        No record applied to C{address}: it reached default processing
        unchanged.
        """
        self.assertEqual(result.rewritten, address)

    # 7.1 PSTN FXO gateway

    def test_case01SignalOneStar(self):
        """
        Case 1: C{<1*@example.com>} sends a Signal to the gateway via SIP.
        """
        result = route(GATEWAY_RECORDS["1*"], "14155551234@example.com")
        self.assertEqual(
            result.asTriple(),
            ("SIP", "192.168.1.2", "14155551234@192.168.1.2"))
        self.assertEqual(result.rewritten, "14155551234@192.168.1.2")
        self.assertFalse(result.relayAllowed)

    def test_case02MailNotApplied(self):
        """
        Case 2: the Signal-only record does not apply to Mail.
        """
        result = route(GATEWAY_RECORDS["1*"], "14155551234@example.com",
                       kind="MAIL")
        self.assertNotRouted(result, "14155551234@example.com")
        self.assertEqual(result.asTriple(), ("ERROR", "", "unknown user"))

    def test_case03TenPlusDigits(self):
        """
        Case 3: C{(10+d)} matches a 10-digit number.
        """
        result = route(GATEWAY_RECORDS["10+d"], "4155551234@example.com")
        self.assertEqual(
            result.asTriple(),
            ("SIP", "192.168.1.2", "4155551234@192.168.1.2"))

    def test_case04TooFewDigits(self):
        """
        Case 4: C{(10+d)} does not match 6 digits.
        """
        result = route(GATEWAY_RECORDS["10+d"], "555123@example.com")
        self.assertNotRouted(result, "555123@example.com")
        self.assertEqual(result.module, "ERROR")

    def test_case05Letter(self):
        """
        Case 5: C{(10+d)} does not match a letter.
        """
        result = route(GATEWAY_RECORDS["10+d"], "415555123a@example.com")
        self.assertNotRouted(result, "415555123a@example.com")
        self.assertEqual(result.module, "ERROR")

    def test_case06OtherDomain(self):
        """
        Case 6: the record does not match another domain, which is remote.
        """
        result = route(GATEWAY_RECORDS["10+d"], "4155551234@other.org")
        self.assertNotRouted(result, "4155551234@other.org")
        self.assertEqual(result.asTriple(),
                         ("SIP", "other.org", "4155551234@other.org"))

    def test_case07NineStripped(self):
        """
        Case 7: C{<9*@example.com> = *@...} strips the 9.
        """
        result = route(GATEWAY_RECORDS["9*"], "95551234@example.com")
        self.assertEqual(result.asTriple(),
                         ("SIP", "192.168.1.2", "5551234@192.168.1.2"))

    def test_case08International(self):
        """
        Case 8: C{<011*@example.com> = 011*@...} keeps the 011 prefix.
        """
        result = route(GATEWAY_RECORDS["011*"], "011525553504672@example.com")
        self.assertEqual(
            result.asTriple(),
            ("SIP", "192.168.1.2", "011525553504672@192.168.1.2"))

    def test_case09GreedyDigits(self):
        """
        Case 9: C{+(10+d)*} captures the full number with country code.
        """
        result = route(GATEWAY_RECORDS["+10+d"], "+525553504672@example.com")
        self.assertEqual(
            result.asTriple(),
            ("SIP", "192.168.1.2", "+525553504672@192.168.1.2"))

    def test_case10FixedPoint(self):
        """
        Case 10: any domain matches, and the second pass is a fixed point.
        """
        result = route(GATEWAY_RECORDS["+10+d"], "+14155551234@anything.net")
        self.assertEqual(
            result.asTriple(),
            ("SIP", "192.168.1.2", "+14155551234@192.168.1.2"))

    def test_case11NineDigits(self):
        """
        Case 11: C{+(10+d)*} does not match 9 digits.
        """
        result = route(GATEWAY_RECORDS["+10+d"], "+123456789@example.com")
        self.assertNotRouted(result, "+123456789@example.com")
        self.assertEqual(result.module, "ERROR")

    def test_case12NoRelayUntrusted(self):
        """
        Case 12: an untrusted sender may not relay through a NoRelay record.
        """
        result = route(GATEWAY_RECORDS["1*"], "14155551234@example.com",
                       trusted=False)
        self.assertEqual(result.asTriple(),
                         ("ERROR", "", "relaying prohibited"))

    def test_case13NoRelayTrusted(self):
        """
        Case 13: an authenticated sender may use the NoRelay record.
        """
        result = route(GATEWAY_RECORDS["1*"], "14155551234@example.com",
                       trusted=True)
        self.assertEqual(result.module, "SIP")

    # 7.2 Incoming from a PSTN gateway

    def test_case14IncomingNumber(self):
        """
        Case 14: the gateway's own number goes to C{pbx} without params.
        """
        result = route(INCOMING_TABLE, "+74951234567@gateway.company.dom")
        self.assertApplication(result, "pbx", [])

    def test_case15ThreeDigits(self):
        """
        Case 15: 3 digits go to C{gatewayincoming} with the digits.
        """
        result = route(INCOMING_TABLE, "123@gateway.company.dom")
        self.assertApplication(result, "gatewayincoming", ["123"])

    def test_case16OtherCalls(self):
        """
        Case 16: other numbers fall through to the IVR record.
        """
        result = route(INCOMING_TABLE, "5551234@gateway.company.dom")
        self.assertApplication(result, "pbx", [])

    def test_case17CommentIgnored(self):
        """
        Case 17: C{;} lines are comments.
        """
        records = parseTable(INCOMING_TABLE)
        self.assertEqual([record.line for record in records], [1, 3, 5])

    # 7.3 Outgoing via gatewaycaller

    def test_case18Russia(self):
        """
        Case 18: C{7(10d)} goes to C{gatewaycaller{+7...,gwru}}.
        """
        result = route(GATEWAYCALLER_TABLE, "71234567890@example.com")
        self.assertApplication(result, "gatewaycaller",
                               ["+71234567890", "gwru"])

    def test_case19US(self):
        """
        Case 19: C{1(10d)} goes to C{gatewaycaller{+1...,gwus}}.
        """
        result = route(GATEWAYCALLER_TABLE, "14155551234@example.com")
        self.assertApplication(result, "gatewaycaller",
                               ["+14155551234", "gwus"])

    def test_case20NineDigits(self):
        """
        Case 20: 1 + 9 digits matches neither record.
        """
        result = route(GATEWAYCALLER_TABLE, "1415555123@example.com")
        self.assertNotRouted(result, "1415555123@example.com")
        self.assertEqual(result.module, "ERROR")

    def test_case21MailNotApplied(self):
        """
        Case 21: Signal-only records do not apply to Mail.
        """
        result = route(GATEWAYCALLER_TABLE, "71234567890@example.com",
                       kind="MAIL")
        self.assertNotRouted(result, "71234567890@example.com")
        self.assertEqual(result.module, "ERROR")

    # 7.4 pstn domain

    def test_case22Sweden(self):
        """
        Case 22: C{+46(5-12d)@pstn} picks gateway C{gw1}.
        """
        result = route(PSTN_TABLE, "+46812345678@pstn")
        self.assertApplication(result, "gatewaycaller",
                               ["+46812345678", "gw1"])

    def test_case23OtherCountry(self):
        """
        Case 23: other numbers use C{gw2}.
        """
        result = route(PSTN_TABLE, "+4412345678@pstn")
        self.assertApplication(result, "gatewaycaller",
                               ["+4412345678", "gw2"])

    def test_case24ShortSwedish(self):
        """
        Case 24: 4 digits after +46 are too few for C{gw1}.
        """
        result = route(PSTN_TABLE, "+461234@pstn")
        self.assertApplication(result, "gatewaycaller", ["+461234", "gw2"])

    def test_case25SingleParameter(self):
        """
        Case 25: C{gatewaycaller{*}} with one parameter.
        """
        result = route("<*@pstn> = gatewaycaller{*}#pbx", "+14155551234@pstn")
        self.assertApplication(result, "gatewaycaller", ["+14155551234"])

    # 7.5 Local-area, domestic, emergency

    def test_case26LocalArea(self):
        """
        Case 26: 7 digits go to C{localAreaCall}.
        """
        result = route(LOCAL_AREA_TABLE, "5551234@example.com")
        self.assertApplication(result, "localAreaCall", ["5551234"])

    def test_case27Domestic(self):
        """
        Case 27: C{0...} becomes C{+49...@telnum}; unassigned it is unknown.
        """
        result = route(LOCAL_AREA_TABLE, "0301234567@example.com")
        self.assertEqual(result.rewritten, "+49301234567@telnum")
        self.assertEqual(result.asTriple(), ("ERROR", "", "unknown telnum"))

    def test_case27DomesticAssigned(self):
        """
        Case 27: an assigned C{+49...@telnum} reaches its account.
        """
        directory = makeDirectory()
        directory.assignTelnum("+49301234567", "bob@example.com")
        result = route(LOCAL_AREA_TABLE, "0301234567@example.com",
                       directory=directory)
        self.assertEqual(result.asTriple(),
                         ("LOCAL", "bob@example.com", "bob"))

    def test_case28International(self):
        """
        Case 28: C{00...} becomes C{+...@telnum}.
        """
        result = route(LOCAL_AREA_TABLE, "004930123456@example.com")
        self.assertEqual(result.rewritten, "+4930123456@telnum")

    def test_case29Emergency(self):
        """
        Case 29: 911 goes to C{emergency} without params.
        """
        result = route(LOCAL_AREA_TABLE, "911@example.com")
        self.assertApplication(result, "emergency", [])

    def test_case30NotEmergency(self):
        """
        Case 30: 9110 matches no record.
        """
        result = route(LOCAL_AREA_TABLE, "9110@example.com")
        self.assertNotRouted(result, "9110@example.com")
        self.assertEqual(result.module, "ERROR")

    def test_case31DomesticMode(self):
        """
        Case 31: C{localAreaCall{*,c}} strips the leading 0.
        """
        result = route("<0(8-20d)@*> = localAreaCall{*,c}#pbx@localhost",
                       "0301234567@example.com")
        self.assertApplication(result, "localAreaCall", ["301234567", "c"])

    def test_case32GatewayIncoming(self):
        """
        Case 32: C{gatewayincoming{*}} gets the whole local part.
        """
        result = route("<*@gw.example> = gatewayincoming{*}#pbx@localhost",
                       "4155551234@gw.example")
        self.assertApplication(result, "gatewayincoming", ["4155551234"])

    def test_case33GatewayIncomingPrefix(self):
        """
        Case 33: C{gatewayincoming{+1*}} prepends C{+1}.
        """
        result = route("<*@gw.example> = gatewayincoming{+1*}#pbx@localhost",
                       "4155551234@gw.example")
        self.assertApplication(result, "gatewayincoming", ["+14155551234"])

    def test_case34LiteralSeedOrder(self):
        """
        Case 34: in the seed's literal order the first match wins.
        """
        table = "<0(7-20d)@*> = +49*@telnum\n<00(8-20d)@*> = +*@telnum\n"
        result = route(table, "004930123456@example.com")
        self.assertEqual(result.rewritten, "+4904930123456@telnum")

    # 7.6 Prefix/format handling

    def test_case35MailRecordSignal(self):
        """
        Case 35: a C{Mail:} record does not apply to a Signal.
        """
        result = route("Mail:<info@example.com> = sales@example.com",
                       "info@example.com")
        self.assertNotRouted(result, "info@example.com")
        self.assertEqual(result.module, "ERROR")

    def test_case36MailRecordMail(self):
        """
        Case 36: a C{Mail:} record applies to Mail and reaches the account.
        """
        result = route("Mail:<info@example.com> = sales@example.com",
                       "info@example.com", kind="MAIL")
        self.assertEqual(result.rewritten, "sales@example.com")
        self.assertEqual(result.asTriple(),
                         ("LOCAL", "sales@example.com", "sales"))

    def test_case37TrailingComment(self):
        """
        Case 37: a trailing C{; comment} is not part of the target.
        """
        table = "<a@example.com> = b@example.com ; old name"
        self.assertEqual(parseTable(table)[0].target, "b@example.com")
        result = route(table, "a@example.com")
        self.assertEqual(result.rewritten, "b@example.com")
        self.assertEqual(result.asTriple(), ("LOCAL", "b@example.com", "b"))

    def test_case38Reroute(self):
        """
        Case 38: a result is routed again from the top of the table.
        """
        table = ("<a@example.com> = b@example.com\n"
                 "<b@example.com> = c@example.com\n")
        result = route(table, "a@example.com")
        self.assertEqual(result.rewritten, "c@example.com")
        self.assertEqual(result.asTriple(), ("LOCAL", "c@example.com", "c"))

    def test_case39Loop(self):
        """
        Case 39: a two-record cycle is a routing loop.
        """
        table = ("<a@example.com> = b@example.com\n"
                 "<b@example.com> = a@example.com\n")
        result = route(table, "a@example.com")
        self.assertEqual(result.asTriple(), ("ERROR", "", "routing loop"))

    def test_case40Forwarder(self):
        """
        Case 40: a forwarder reroutes to its target, relay-allowed.
        """
        result = route("", "jim@example.com")
        self.assertEqual(result.asTriple(),
                         ("SIP", "other.dom", "john@other.dom"))
        self.assertEqual(result.rewritten, "john@other.dom")
        self.assertTrue(result.relayAllowed)
        mail = route("", "jim@example.com", kind="MAIL", trusted=False)
        self.assertEqual(mail.asTriple(),
                         ("SMTP", "other.dom", "john@other.dom"))
        self.assertTrue(mail.relayAllowed)


class ParseTests(TestCase):
    """
    L{parseTable} builds L{Record}s and refuses malformed tables naming
    the first bad line.
    """

    def assertBadLine(self, text, line, reasonPart):
        """
        C{text} is refused at C{line} with a reason mentioning
        C{reasonPart}.
        """
        error = self.assertRaises(RouterTableError, parseTable, text)
        self.assertEqual(error.line, line)
        self.assertIn(reasonPart, error.reason)
        self.assertEqual(str(error),
                         f"router table line {line}: {error.reason}")
        self.assertIsInstance(error, ValueError)

    def test_record(self):
        """
        A full record is split into its fields.
        """
        [record] = parseTable(
            "NoRelay:Signal:<1*@example.com> = 1*@192.168.1.2 ; gateway")
        self.assertIsInstance(record, Record)
        self.assertEqual(record.relay, "NoRelay")
        self.assertEqual(record.kinds, frozenset(["SIGNAL"]))
        self.assertEqual(record.pattern, "1*@example.com")
        self.assertFalse(record.domainLevel)
        self.assertEqual(record.target, "1*@192.168.1.2")
        self.assertEqual(record.line, 1)

    def test_noPrefix(self):
        """
        Without prefixes a record applies to every kind and has no relay.
        """
        [record] = parseTable("<a@b>=c@d")
        self.assertIsNone(record.relay)
        self.assertEqual(record.kinds, frozenset(KINDS))

    def test_shortForms(self):
        """
        C{N:}, C{S:}, C{M:} and C{A:} are the short prefixes.
        """
        records = parseTable("N:S:<a@b> = c\nM:<a@b> = c\nA:<a@b> = c\n")
        self.assertEqual(records[0].relay, "NoRelay")
        self.assertEqual(records[0].kinds, frozenset(["SIGNAL"]))
        self.assertEqual(records[1].kinds, frozenset(["MAIL"]))
        self.assertEqual(records[2].kinds, frozenset(["ACCESS"]))

    def test_prefixCaseInsensitive(self):
        """
        Prefix keywords are case-insensitive.
        """
        records = parseTable("relay:SIGNAL:<a@b> = c\n"
                             "RELAYALL:mail:<a@b> = c\n"
                             "n:s:<a@b> = c\n"
                             "norelay:Access:<a@b> = c\n")
        self.assertEqual([r.relay for r in records],
                         ["Relay", "RelayAll", "NoRelay", "NoRelay"])
        self.assertEqual([min(r.kinds) for r in records],
                         ["SIGNAL", "MAIL", "SIGNAL", "ACCESS"])

    def test_blankAndComments(self):
        """
        Blank lines, comment lines and CRLF line ends are accepted.
        """
        records = parseTable("\r\n  ; note\r\n\t\r\n<a@b> = c\r\n")
        self.assertEqual([(r.line, r.target) for r in records], [(4, "c")])

    def test_domainLevel(self):
        """
        A left side without angle brackets is a domain-level record.
        """
        [record] = parseTable("old.dom = new.dom")
        self.assertTrue(record.domainLevel)
        self.assertEqual(record.pattern, "old.dom")

    def test_unknownPrefix(self):
        """
        C{R:} is not a prefix (no documented short form for C{Relay:}).
        """
        self.assertBadLine("<a@b> = c\nR:<a@b> = c", 2, "unknown prefix")

    def test_prefixOrder(self):
        """
        The relay prefix must come before the type prefix.
        """
        self.assertBadLine("Signal:Relay:<a@b> = c", 1, "before")

    def test_duplicatePrefix(self):
        """
        Two type prefixes are refused.
        """
        self.assertBadLine("Mail:Signal:<a@b> = c", 1, "duplicate")

    def test_missingEquals(self):
        """
        A record needs C{=}.
        """
        self.assertBadLine("; c\n\n<a@b> c", 3, "missing '='")

    def test_emptyLeft(self):
        """
        An empty left side is refused.
        """
        self.assertBadLine("<> = c", 1, "empty left side")
        self.assertBadLine(" = c", 1, "empty left side")

    def test_emptyRight(self):
        """
        An empty right side (or only a comment) is refused.
        """
        self.assertBadLine("<a@b> = ; nothing", 1, "empty right side")

    def test_badDigitGroups(self):
        """
        Digit groups must be C{(N d)}, C{(N+d)} or C{(N-Md)} with sane
        bounds.
        """
        for group in ("(0d)", "(5-3d)", "(d)", "(3x)", "(3"):
            self.assertBadLine(f"<a@b> = c\n<{group}@b> = c", 2, "digit group")

    def test_unbalancedBrackets(self):
        """
        A C{<} needs its C{>}, and C{>} needs its C{<}.
        """
        self.assertBadLine("<a@b = c", 1, "unbalanced '<'")
        self.assertBadLine("a.b> = c", 1, "unbalanced '>'")
        self.assertBadLine("<1(3d))@b> = c", 1, "unbalanced ')'")

    def test_wildcardTarget(self):
        """
        A C{*} on the right needs a wildcard on the left.
        """
        self.assertBadLine("<a@b> = *@c", 1, "wildcard")

    def test_badApplication(self):
        """
        Braces or C{#} outside the application syntax are refused.
        """
        self.assertBadLine("<*@b> = app{*#pbx", 1, "application")
        self.assertBadLine("<*@b> = #pbx", 1, "application")

    def test_bracketTarget(self):
        """
        Angle brackets have no place in a target.
        """
        self.assertBadLine("<a@b> = <c@d>", 1, "angle bracket")

    def test_blanks(self):
        """
        Blanks inside a pattern or a target are refused.
        """
        self.assertBadLine("<a b@c> = d", 1, "blank inside the pattern")
        self.assertBadLine("<a@c> = d e", 1, "blank inside the target")

    def test_domainLevelTarget(self):
        """
        A domain-level record's target is a domain (or an application).
        """
        self.assertBadLine("old.dom = x@new.dom", 1, "domain-level")
        [record] = parseTable("gw.example = pbx#pbx@localhost")
        self.assertTrue(record.domainLevel)

    def test_addressWithoutBrackets(self):
        """
        An address pattern without angle brackets is refused.
        """
        self.assertBadLine("a@b = c", 1, "enclosed")

    def test_setTableKeepsOld(self):
        """
        A refused table leaves the previous one in force.
        """
        router = Router(makeDirectory(), "<a@example.com> = b@example.com")
        self.assertRaises(RouterTableError, router.setTable, "<x = y")
        self.assertEqual(router.tableText, "<a@example.com> = b@example.com")
        self.assertEqual(router.route("a@example.com").rewritten,
                         "b@example.com")

    def test_setTable(self):
        """
        L{Router.setTable} replaces table and text.
        """
        router = Router(makeDirectory())
        self.assertEqual(router.tableText, "")
        router.setTable("<a@example.com> = c@example.com")
        self.assertEqual(router.tableText, "<a@example.com> = c@example.com")
        self.assertEqual(router.route("a@example.com").account,
                         "c@example.com")

    def test_constructorRefuses(self):
        """
        A malformed initial table raises from the constructor.
        """
        self.assertRaises(RouterTableError, Router, makeDirectory(), "x")

    def test_notADirectory(self):
        """
        Something without the routing directory attributes is refused.
        """
        self.assertRaises(TypeError, Router, object())


class PatternTests(TestCase):
    """
    Pattern matching and target substitution.
    """

    def test_caseInsensitive(self):
        """
        Literals compare case-insensitively; the capture keeps its case.
        """
        result = route("<*@EXAMPLE.com> = *@gw.example", "Bob@example.COM")
        self.assertEqual(result.rewritten, "Bob@gw.example")

    def test_everyStarSame(self):
        """
        Every C{*} on the right gets the first capture.
        """
        result = route("<(3d)*@pstn> = *-*@gw.example", "123456@pstn")
        self.assertEqual(result.rewritten, "123-123@gw.example")

    def test_rangeGroup(self):
        """
        C{(N-Md)} bounds the digit count.
        """
        table = "<(2-3d)@x.example> = ok@gw.example"
        self.assertEqual(route(table, "123@x.example").rewritten,
                         "ok@gw.example")
        self.assertEqual(route(table, "1234@x.example").rewritten,
                         "1234@x.example")

    def test_unicodeDigits(self):
        """
        Digit groups accept only ASCII digits.
        """
        result = route("<(3d)@x.example> = ok@gw.example",
                       "\u0661\u0662\u0663@x.example")
        self.assertEqual(result.rewritten, "\u0661\u0662\u0663@x.example")

    def test_domainLevel(self):
        """
        A domain-level record replaces the domain and keeps the local part.
        """
        result = route("*.old.example = *.new.example", "pat@mail.old.example",
                       kind="MAIL")
        self.assertEqual(result.asTriple(),
                         ("SMTP", "mail.new.example", "pat@mail.new.example"))

    def test_domainLevelLocal(self):
        """
        A domain-level record can map a domain onto a local one.
        """
        result = route("legacy.example = example.com", "bob@legacy.example")
        self.assertEqual(result.asTriple(),
                         ("LOCAL", "bob@example.com", "bob"))

    def test_nullTarget(self):
        """
        A C{null} target discards.
        """
        result = route("<spam@example.com> = null", "spam@example.com")
        self.assertEqual(result.asTriple(), ("NULL", "", ""))

    def test_applicationDomain(self):
        """
        An application account may name its domain, aliases included.
        """
        result = route("<*@gw.example> = voicemail#323@ex.com",
                       "x@gw.example")
        self.assertEqual(result.asTriple(),
                         ("PBX", "alice@example.com", "voicemail"))

    def test_applicationUnknownAccount(self):
        """
        An application on behalf of an unknown account is an error.
        """
        result = route("<*@gw.example> = voicemail#nobody", "x@gw.example")
        self.assertEqual(result.asTriple(), ("ERROR", "", "unknown user"))

    def test_applicationTerminal(self):
        """
        No table pass runs after an application target.
        """
        table = ("<*@gw.example> = pbx#pbx\n"
                 "<*#pbx> = other#pbx\n")
        result = route(table, "x@gw.example")
        self.assertEqual(result.app, "pbx")
        self.assertEqual(result.rewritten, "pbx#pbx")

    def test_kindCaseInsensitive(self):
        """
        The kind may be given in any case; unknown kinds are refused.
        """
        router = Router(makeDirectory(), GATEWAY_RECORDS["1*"])
        self.assertEqual(router.route("14155551234@example.com",
                                      "signal").module, "SIP")
        self.assertRaises(ValueError, router.route, "a@example.com", "FAX")

    def test_longChainLoops(self):
        """
        More than L{MAX_PASSES} table passes is a routing loop.
        """
        lines = [f"<n{i}@example.com> = n{i + 1}@example.com"
                 for i in range(MAX_PASSES)]
        lines.append(f"<n{MAX_PASSES}@example.com> = bob@example.com")
        result = route("\n".join(lines), "n0@example.com")
        self.assertEqual(result.asTriple(), ("ERROR", "", "routing loop"))
        shorter = route("\n".join(lines[2:]), "n2@example.com")
        self.assertEqual(shorter.asTriple(),
                         ("LOCAL", "bob@example.com", "bob"))

    def test_speed(self):
        """
        A table of a few hundred records routes in well under 1 ms.
        """
        lines = [f"Signal:<{i:04d}(7d)@*> = gatewaycaller{{*,gw{i}}}#pbx"
                 for i in range(300)]
        lines.append("<*@pstn> = *@gw.example")
        router = Router(makeDirectory(), "\n".join(lines))
        count = 200
        start = time.perf_counter()
        for _ in range(count):
            router.route("bob@example.com", "SIGNAL")
        elapsed = (time.perf_counter() - start) / count
        self.assertLess(elapsed, 0.001)


class DefaultRoutingTests(TestCase):
    """
    Default processing after the table (C{router.md} 3.6).
    """

    def setUp(self):
        self.directory = makeDirectory()
        self.router = Router(self.directory)

    def test_account(self):
        """
        An account routes to C{LOCAL}, in every kind.
        """
        for kind in KINDS:
            result = self.router.route("Bob@Example.com", kind)
            self.assertEqual(result.asTriple(),
                             ("LOCAL", "bob@example.com", "bob"))
            self.assertEqual(result.account, "bob@example.com")
            self.assertEqual(result.original, "Bob@Example.com")

    def test_bareName(self):
        """
        An address without a domain means the Main Domain.
        """
        result = self.router.route("postmaster")
        self.assertEqual(result.asTriple(),
                         ("LOCAL", "postmaster@main.dom", "postmaster"))

    def test_angleBrackets(self):
        """
        Angle brackets around the address are ignored.
        """
        result = self.router.route("<bob@example.com>")
        self.assertEqual(result.account, "bob@example.com")

    def test_accountAlias(self):
        """
        Account alias C{323} routes to its account, for calls and logins.
        """
        for kind in ("SIGNAL", "ACCESS", "MAIL"):
            result = self.router.route("323@example.com", kind)
            self.assertEqual(result.asTriple(),
                             ("LOCAL", "alice@example.com", "alice"))

    def test_domainAlias(self):
        """
        A domain alias resolves to its domain.
        """
        result = self.router.route("323@ex.com")
        self.assertEqual(result.account, "alice@example.com")

    def test_localhost(self):
        """
        C{localhost} means the Main Domain.
        """
        result = self.router.route("200@localhost", "SIGNAL")
        self.assertEqual(result.asTriple(),
                         ("LOCAL", "pbx@main.dom", "pbx"))

    def test_forwarderLocal(self):
        """
        A forwarder's bare target name means the forwarder's domain.
        """
        result = self.router.route("lead@example.com")
        self.assertEqual(result.asTriple(),
                         ("LOCAL", "bob@example.com", "bob"))
        self.assertTrue(result.relayAllowed)

    def test_forwarderTable(self):
        """
        A forwarder's target is routed from the top of the table.
        """
        self.router.setTable("<john@other.dom> = sales@example.com")
        result = self.router.route("jim@example.com")
        self.assertEqual(result.account, "sales@example.com")

    def test_forwarderNull(self):
        """
        A forwarder to C{null} discards.
        """
        result = self.router.route("trash@example.com")
        self.assertEqual(result.asTriple(), ("NULL", "", ""))

    def test_forwarderApplication(self):
        """
        A forwarder may point to an application address.
        """
        result = self.router.route("desk@example.com", "SIGNAL",
                                   trusted=False)
        self.assertEqual(result.asTriple(),
                         ("PBX", "alice@example.com", "voicemail"))

    def test_forwarderLoop(self):
        """
        Forwarders pointing at each other are a routing loop.
        """
        result = self.router.route("loop1@example.com")
        self.assertEqual(result.asTriple(), ("ERROR", "", "routing loop"))

    def test_group(self):
        """
        A group routes to the C{LIST} module.
        """
        for kind in ("MAIL", "SIGNAL"):
            result = self.router.route("staff@example.com", kind)
            self.assertEqual(result.asTriple(),
                             ("LIST", "staff@example.com", "*"))

    def test_groupLogin(self):
        """
        Nobody logs in to a group.
        """
        result = self.router.route("staff@example.com", "ACCESS")
        self.assertEqual(result.asTriple(), ("ERROR", "", "unknown user"))

    def test_groupEmailDisabled(self):
        """
        A group with C{EmailDisabled} takes no mail but takes calls.
        """
        self.assertEqual(self.router.route("quiet@example.com").module,
                         "ERROR")
        self.assertEqual(
            self.router.route("quiet@example.com", "SIGNAL").module, "LIST")

    def test_unknownRejected(self):
        """
        C{Rejected} gives C{unknown user} for each kind.
        """
        for kind in KINDS:
            result = self.router.route("nobody@example.com", kind)
            self.assertEqual(result.asTriple(),
                             ("ERROR", "", "unknown user"))

    def test_unknownMailRerouted(self):
        """
        C{MailToUnknown=Rerouted} sends mail to C{MailRerouteAddress}.
        """
        result = self.router.route("nobody@catchall.dom", "MAIL")
        self.assertEqual(result.asTriple(),
                         ("LOCAL", "spamtrap@catchall.dom", "spamtrap"))

    def test_unknownSignalAccepted(self):
        """
        C{SignalToUnknown=Accepted} sends calls to C{SignalRerouteAddress}.
        """
        result = self.router.route("nobody@catchall.dom", "SIGNAL")
        self.assertEqual(result.account, "operator@catchall.dom")

    def test_unknownRerouteUnknown(self):
        """
        A reroute address that is itself unknown is rejected.
        """
        result = self.router.route("nobody@catchall.dom", "ACCESS")
        self.assertEqual(result.asTriple(), ("ERROR", "", "unknown user"))

    def test_sevenNN(self):
        """
        A Signal to C{7nn} goes to the domain's C{pbx} account.
        """
        result = self.router.route("701@example.com", "SIGNAL")
        self.assertEqual(result.asTriple(),
                         ("LOCAL", "pbx@example.com", "pbx"))
        self.assertEqual(result.original, "701@example.com")

    def test_sevenNNOnlySignals(self):
        """
        The C{7nn} rule is for Signals, 3 digits, domains with C{pbx}.
        """
        self.assertEqual(self.router.route("701@example.com").module, "ERROR")
        self.assertEqual(
            self.router.route("7011@example.com", "SIGNAL").module, "ERROR")
        self.assertEqual(
            self.router.route("701@catchall.dom", "SIGNAL").account,
            "operator@catchall.dom")

    def test_remote(self):
        """
        A remote domain is SMTP for mail, SIP for signals, unknown for
        logins.
        """
        self.assertEqual(self.router.route("x@Remote.example", "MAIL")
                         .asTriple(),
                         ("SMTP", "remote.example", "x@Remote.example"))
        self.assertEqual(self.router.route("x@remote.example", "SIGNAL")
                         .asTriple(),
                         ("SIP", "remote.example", "x@remote.example"))
        self.assertEqual(self.router.route("x@remote.example", "ACCESS")
                         .asTriple(), ("ERROR", "", "unknown user"))

    def test_ipLiteral(self):
        """
        IP literals queue to the bracketed address for SMTP, the bare
        address for SIP.
        """
        self.assertEqual(self.router.route("x@[10.0.0.1]", "MAIL").asTriple(),
                         ("SMTP", "[10.0.0.1]", "x@[10.0.0.1]"))
        self.assertEqual(
            self.router.route("x@[10.0.0.1]", "SIGNAL").asTriple(),
            ("SIP", "10.0.0.1", "x@[10.0.0.1]"))

    def test_ipLiteralLocal(self):
        """
        An IP literal the directory knows as a domain is local.
        """
        self.directory.domainAliases["[10.0.0.9]"] = "example.com"
        result = self.router.route("bob@[10.0.0.9]")
        self.assertEqual(result.account, "bob@example.com")

    def test_percentHackLocal(self):
        """
        C{xxxx%yyyyy@local} strips our hop and routes C{xxxx@yyyyy}.
        """
        self.assertEqual(self.router.route("bob%example.com@main.dom")
                         .account, "bob@example.com")
        self.assertEqual(self.router.route("x%other.dom@main.dom")
                         .asTriple(), ("SMTP", "other.dom", "x@other.dom"))

    def test_percentHackRemote(self):
        """
        C{xxxx%yyyyy@remote} goes to the remote next hop unchanged.
        """
        self.assertEqual(self.router.route("x%y.example@hop.example")
                         .asTriple(),
                         ("SMTP", "hop.example", "x%y.example@hop.example"))

    def test_sourceRoute(self):
        """
        C{<@zzzz:xxxx@yyyyy>} goes to C{zzzz} first.
        """
        self.assertEqual(self.router.route("<@hop.example:x@y.example>")
                         .asTriple(),
                         ("SMTP", "hop.example", "x%y.example@hop.example"))
        self.assertEqual(self.router.route("<@main.dom,@ex.com:x@y.example>")
                         .asTriple(),
                         ("SMTP", "y.example", "x@y.example"))
        self.assertEqual(self.router.route("@main.dom:bob@example.com")
                         .account, "bob@example.com")

    def test_bangPath(self):
        """
        C{zzzz!yyyyy!xxxx} goes to C{zzzz} first.
        """
        self.assertEqual(self.router.route("hop.example!y.example!x")
                         .asTriple(),
                         ("SMTP", "hop.example", "x%y.example@hop.example"))
        self.assertEqual(self.router.route("example.com!bob").account,
                         "bob@example.com")

    def test_via(self):
        """
        C{name%dom@host._via} relays to C{host}, delivering to C{name@dom}.
        """
        self.assertEqual(self.router.route("x%y.example@relay.example._via")
                         .asTriple(),
                         ("SMTP", "relay.example", "x@y.example"))

    def test_invalid(self):
        """
        Empty parts are invalid addresses.
        """
        for address in ("", "a@", "@b", "a!!b"):
            self.assertEqual(self.router.route(address).asTriple(),
                             ("ERROR", "", "invalid address"))


class TelnumTests(TestCase):
    """
    C{...@telnum} addresses and the Telnum directory.
    """

    def test_assigned(self):
        """
        An assigned number reaches its account, ahead of gateway records.
        """
        router = Router(makeDirectory(), "<*@telnum> = gatewaycaller{*}#pbx")
        result = router.route("+14155550100@telnum", "SIGNAL")
        self.assertEqual(result.asTriple(),
                         ("LOCAL", "alice@example.com", "alice"))

    def test_unassignedGateway(self):
        """
        An unassigned number keeps being routed, e.g. to a gateway record.
        """
        router = Router(makeDirectory(), "<*@telnum> = gatewaycaller{*}#pbx")
        result = router.route("+14155559999@telnum", "SIGNAL")
        self.assertEqual(result.app, "gatewaycaller")
        self.assertEqual(result.params, ["+14155559999"])

    def test_unassigned(self):
        """
        An unassigned number nothing else routes is unknown.
        """
        result = Router(makeDirectory()).route("+1999@TELNUM", "SIGNAL")
        self.assertEqual(result.asTriple(), ("ERROR", "", "unknown telnum"))


class RelayTests(TestCase):
    """
    Relaying: who may reach remote hosts through which records.
    """

    def test_untrustedRemote(self):
        """
        An untrusted sender may not send to a remote domain.
        """
        result = route("", "x@remote.example", kind="MAIL", trusted=False)
        self.assertEqual(result.asTriple(),
                         ("ERROR", "", "relaying prohibited"))
        self.assertEqual(result.original, "x@remote.example")

    def test_untrustedLocal(self):
        """
        An untrusted sender may reach local accounts.
        """
        result = route("", "bob@example.com", kind="MAIL", trusted=False)
        self.assertEqual(result.module, "LOCAL")

    def test_relayPrefix(self):
        """
        C{Relay:} and C{RelayAll:} records allow relaying for anybody.
        """
        for prefix in ("Relay:", "RelayAll:"):
            result = route(prefix + "<*@gw.example> = *@192.168.1.2",
                           "123@gw.example", trusted=False)
            self.assertEqual(result.asTriple(),
                             ("SIP", "192.168.1.2", "123@192.168.1.2"))
            self.assertTrue(result.relayAllowed)

    def test_unprefixedIsNoRelay(self):
        """
        A record without relay prefix does not grant relaying.
        """
        result = route("<*@gw.example> = *@192.168.1.2", "123@gw.example",
                       trusted=False)
        self.assertEqual(result.asTriple(),
                         ("ERROR", "", "relaying prohibited"))
        self.assertFalse(result.relayAllowed)
        self.assertEqual(len(self.flushLoggedErrors()), 0)

    def test_untrustedApplication(self):
        """
        An outside sender cannot start an application by naming it.
        """
        router = Router(makeDirectory())
        self.assertEqual(router.route("pbx#pbx", "SIGNAL", trusted=False)
                         .asTriple(), ("ERROR", "", "unknown user"))
        self.assertEqual(router.route("pbx#pbx", "SIGNAL").asTriple(),
                         ("PBX", "pbx@main.dom", "pbx"))

    def test_percentHackNoApplication(self):
        """
        Stripping our hop from an untrusted address cannot start an
        application.
        """
        router = Router(makeDirectory())
        self.assertEqual(
            router.route("pbx#pbx%main.dom@main.dom", "SIGNAL",
                         trusted=False).asTriple(),
            ("ERROR", "", "unknown user"))

    def test_captureNoApplication(self):
        """
        Text captured by C{*} cannot turn a plain target into an
        application address.
        """
        result = route("<*@gw.example> = *@main.dom", "pbx#pbx@gw.example",
                       trusted=False)
        self.assertEqual(result.rewritten, "pbx#pbx@main.dom")
        self.assertEqual(result.asTriple(), ("ERROR", "", "unknown user"))

    def test_inputNullIsAName(self):
        """
        C{null} discards only as a target; as an input it is a name.
        """
        result = route("", "null", kind="MAIL")
        self.assertEqual(result.asTriple(), ("ERROR", "", "unknown user"))
        self.assertEqual(result.rewritten, "null@main.dom")

    def test_hashInRemoteName(self):
        """
        C{a#b@remote} is a remote mailbox, not an application address.
        """
        result = route("", "a#b@remote.example", kind="MAIL")
        self.assertEqual(result.asTriple(),
                         ("SMTP", "remote.example", "a#b@remote.example"))


class RouteTests(TestCase):
    """
    L{Route} values.
    """

    def test_asTriple(self):
        """
        L{Route.asTriple} is a tuple of three strings.
        """
        result = Route("SMTP", "other.dom", "x@other.dom")
        self.assertEqual(result.asTriple(),
                         ("SMTP", "other.dom", "x@other.dom"))
        self.assertEqual(result.params, [])
        self.assertIsNone(result.app)
        self.assertIn("SMTP(other.dom)x@other.dom", repr(result))

    def test_equality(self):
        """
        Routes compare by value.
        """
        self.assertEqual(Route("LOCAL", "a@b", "a", account="a@b"),
                         Route("LOCAL", "a@b", "a", account="a@b"))
        self.assertNotEqual(Route("LOCAL", "a@b", "a"),
                            Route("LOCAL", "a@b", "a", relayAllowed=True))
