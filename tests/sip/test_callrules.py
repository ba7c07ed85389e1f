# -*- test-case-name: tests.sip.test_callrules -*-
"""
Tests for L{cgpro.sip.callrules}: Signal rules read from a real directory
(set through its own API, and once through the CLI), merged, staged and
applied to a L{SignalInfo}.  The numbered tests of C{rules.md} section 7
are named C{test_spec<N>...}.
"""

import datetime

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

import cgpro.cli.factory  # noqa: F401  (registers the commands)
from cgpro.cli.protocol import CLIFactory
from cgpro.core.context import ServerContext
from cgpro.core.dataformat import loads
from cgpro.core.router import Router
from cgpro.core.throttle import LoginThrottle
from cgpro.queue.ruleconditions import RuleError
from cgpro.sip.callrules import (
    MAX_PENDING,
    CallRulePlan,
    Decision,
    SignalInfo,
    SignalRules,
    checkSignalRules,
    decodePriority,
    expandTarget,
    presetRules,
)
from tests.support.directory import makeDirectory

DOMAIN = "main.dom"
ACCOUNT = "a@main.dom"

#: Monday 2 November 2026, 10:30:00 UTC.
MONDAY_MORNING = datetime.datetime(2026, 11, 2, 10, 30, tzinfo=datetime.timezone.utc).timestamp()


def invite(**kw):
    """
    A L{SignalInfo} for an audio INVITE from c@other.dom to a@main.dom.
    """
    values = dict(method="INVITE", fromAddress="c@other.dom", fromName="Carol",
                  toAddress=ACCOUNT, requestURI="sip:a@main.dom", callType="AV",
                  sourceAddress="[192.0.2.7]:5060", presence=None)
    values.update(kw)
    return SignalInfo(**values)


def message(**kw):
    """
    A L{SignalInfo} for an instant MESSAGE to a@main.dom.
    """
    return invite(method="MESSAGE", callType="IM", **kw)


def rule(priority, name, conditions=(), actions=()):
    """
    A rule as stored: arrays are lists.
    """
    return [priority, name, [list(c) for c in conditions], [list(a) for a in actions]]


class SignalRulesTestsMixin:
    """
    A directory with the account C{a@main.dom}, and helpers to store rules
    at each level through the directory's API.
    """

    def setUp(self):
        self.directory = makeDirectory(self, mainDomain=DOMAIN)
        self.successResultOf(self.directory.createAccount(ACCOUNT))
        self.clock = Clock()
        self.clock.advance(MONDAY_MORNING)
        self.rules = SignalRules(self.directory, clock=self.clock,
                                 timeZone=datetime.timezone.utc)

    def setServer(self, *rules):
        """
        Store the Server rules (C{SETSERVERSIGNALRULES}'s storage).
        """
        self.successResultOf(self.directory.setServerDict(
            "Rules", {"SignalRules": list(rules)}, update=True))

    def setDomain(self, *rules):
        """
        Store the rules of the domain C{main.dom}.
        """
        self.successResultOf(self.directory.setDomainPart(DOMAIN, "SignalRules", list(rules)))

    def setAccount(self, *rules, account=ACCOUNT):
        """
        Store the rules of C{account}.
        """
        self.successResultOf(self.directory.setAccountPart(account, "SignalRules", list(rules)))

    def immediate(self, info=None):
        """
        Apply the immediate stage of C{a@main.dom}'s plan (to an INVITE).
        """
        return self.rules.forAccount(ACCOUNT).immediate(info or invite())


class SpecTests(SignalRulesTestsMixin, SynchronousTestCase):
    """
    The Signal tests of C{rules.md} section 7 (5 to 10).
    """

    def test_spec5RedirectInviteOnly(self):
        """
        An account rule C{Method is INVITE -> Redirect to b@dom} redirects an
        INVITE and leaves a MESSAGE alone.
        """
        self.setAccount(rule(100005, "r", [("Method", "is", "INVITE")],
                             [("Redirect to", "b@dom")]))
        plan = self.rules.forAccount(ACCOUNT)
        decision = plan.immediate(invite())
        self.assertEqual((decision.redirect, decision.fork, decision.reject),
                         (["b@dom"], [], None))
        self.assertTrue(decision.stopped)
        self.assertEqual(decision.applied, ["r"])
        self.assertEqual(plan.immediate(message()), Decision())

    def test_spec6VoicemailAfter30s(self):
        """
        A stage-970 rule is a timed stage of 30 seconds: nothing happens
        immediately; applied after 30 s it redirects to the voicemail
        application.
        """
        self.setAccount(rule("97005", "vm", [("Method", "is", "INVITE")],
                             [("Redirect to", "voicemail#a@main.dom")]))
        plan = self.rules.forAccount(ACCOUNT)
        self.assertFalse(plan.immediate(invite()).changed)
        timed = plan.timed()
        self.assertEqual([seconds for seconds, _ in timed], [30])
        self.assertEqual([r.name for r in timed[0][1]], ["vm"])
        decision = plan.applyTimed(30, invite())
        self.assertEqual(decision.redirect, ["voicemail#a@main.dom"])
        self.assertEqual(decision.applied, ["vm"])

    def test_spec7BusyStage(self):
        """
        On a Busy failure the stage-3 rule applies, the stage-5 (No Answer)
        rule does not; on No Answer it is the other way round.
        """
        self.setAccount(
            rule(305, "busy", [], [("Redirect to", "voicemail")]),
            rule(505, "noanswer", [], [("Redirect to", "b@main.dom")]),
        )
        plan = self.rules.forAccount(ACCOUNT)
        busy = plan.onFailure("busy", invite())
        self.assertEqual((busy.applied, busy.redirect), (["busy"], ["voicemail#a@main.dom"]))
        noAnswer = plan.onFailure("noanswer", invite())
        self.assertEqual((noAnswer.applied, noAnswer.redirect), (["noanswer"], ["b@main.dom"]))
        self.assertEqual(plan.onFailure("failure", invite()), Decision())
        self.assertFalse(plan.immediate(invite()).changed)
        self.assertEqual(plan.timed(), [])

    def test_spec8ForkMergeOrder(self):
        """
        Server 7, Domain 6, Account 9, Domain 2, Server 1, all immediate and
        all forking: the forks come in the order S7, D6, A9, D2, S1.
        """
        self.setServer(rule("100001", "S1", [], [("Fork to", "s1@x")]),
                       rule("100007", "S7", [], [("Fork to", "s7@x")]))
        self.setDomain(rule(100002, "D2", [], [("Fork to", "d2@x")]),
                       rule(100006, "D6", [], [("Fork to", "d6@x")]))
        self.setAccount(rule(100009, "A9", [], [("Fork to", "a9@x")]))
        decision = self.immediate()
        self.assertEqual(decision.applied, ["S7", "D6", "A9", "D2", "S1"])
        self.assertEqual(decision.fork, ["s7@x", "d6@x", "a9@x", "d2@x", "s1@x"])
        self.assertEqual(decision.redirect, [])
        self.assertFalse(decision.stopped)

    def test_spec9RejectWith603(self):
        """
        C{Reject with 603} rejects the call with 603 and stops processing.
        """
        self.setAccount(rule(100009, "no", [], [("Reject with", "603")]),
                        rule(100001, "later", [], [("Fork to", "b@x")]))
        decision = self.immediate()
        self.assertEqual((decision.reject, decision.applied, decision.stopped),
                         (603, ["no"], True))
        self.assertEqual(decision.fork, [])

    def test_spec10RoundTripDirectory(self):
        """
        Rules stored through the directory come back exactly, priorities as
        given (string or number), and the engine reads the same data.
        """
        stored = [rule("100005", "323@example.com",
                       [("To", "is", "323@example.com"), ("Method", "is", "INVITE")],
                       [("Redirect to", "john@example.com")]),
                  rule(97005, "late", [], [("Fork to", "x@y")], ) + ["a comment"]]
        self.setAccount(*stored)
        self.assertEqual(self.directory.getAccountPart(ACCOUNT, "SignalRules"), stored)
        self.setDomain(*stored)
        self.assertEqual(self.directory.getDomainPart(DOMAIN, "SignalRules"), stored)
        self.setServer(*stored)
        self.assertEqual(self.directory.getServerDict("Rules")["SignalRules"], stored)
        self.assertEqual(checkSignalRules(stored), [])
        decision = self.rules.forAccount(ACCOUNT).immediate(invite(toAddress="323@example.com"))
        self.assertEqual(decision.redirect, ["john@example.com"])


class CLIRoundTripTests(SignalRulesTestsMixin, SynchronousTestCase):
    """
    C{rules.md} section 7 test 10 through the CLI command table: what
    C{SETACCOUNTSIGNALRULES} stores, C{GETACCOUNTSIGNALRULES} returns and
    the engine applies.
    """

    def send(self, line):
        """
        Send one CLI line; return the response lines.
        """
        self.transport.clear()
        self.protocol.dataReceived(line.encode() + b"\r\n")
        return self.transport.value().decode().splitlines()

    def setUp(self):
        SignalRulesTestsMixin.setUp(self)
        cliClock = Clock()
        context = ServerContext(self.directory, Router(self.directory), cliClock,
                                self.directory.storage.base)
        factory = CLIFactory(context, LoginThrottle(cliClock, limit=3), cliClock,
                             idleTimeout=300, maxLineLength=10000)
        self.protocol = factory.buildProtocol(None)
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)
        self.send("USER postmaster")
        self.assertEqual(self.send("PASS secret"), ["200 login OK"])

    def test_spec10RoundTripCLI(self):
        """
        The exact array comes back, string and number priorities kept, and
        the engine redirects with it.
        """
        text = ('((100005, "323@example.com", ((To, is, "323@example.com"), '
                '(Method, is, INVITE)), (("Redirect to", "john@example.com"))), '
                '(#97005, late, (), (("Fork to", x@y))))')
        self.assertEqual(self.send("SETACCOUNTSIGNALRULES a@main.dom " + text), ["200 OK"])
        lines = self.send("GETACCOUNTSIGNALRULES a@main.dom")
        self.assertEqual(lines[0], "200 data follow")
        got = loads(lines[1])
        self.assertEqual(got, loads(text))
        self.assertEqual((got[0][0], got[1][0]), ("100005", 97005))
        plan = self.rules.forAccount(ACCOUNT)
        self.assertEqual(plan.immediate(invite(toAddress="323@example.com")).redirect,
                         ["john@example.com"])
        self.assertEqual([s for s, _ in plan.timed()], [30])


class PriorityTests(SignalRulesTestsMixin, SynchronousTestCase):
    """
    Stage and priority decoding, inactive rules, ordering inside a stage.
    """

    def test_decodePriority(self):
        """
        C{value div 100} is the stage, C{value mod 100} the priority; values
        below 100 are immediate; strings and numbers both work.
        """
        self.assertEqual(decodePriority("100006"), (1000, 6))
        self.assertEqual(decodePriority(97005), (970, 5))
        self.assertEqual(decodePriority(305), (3, 5))
        self.assertEqual(decodePriority("7"), (1000, 7))
        self.assertEqual(decodePriority(0), (1000, 0))
        self.assertRaises(RuleError, decodePriority, "100100")
        self.assertRaises(RuleError, decodePriority, "high")
        self.assertRaises(RuleError, decodePriority, -5)

    def test_inactive(self):
        """
        Priority 0 inside a stage (C{100000}, C{97000}, C{0}) never applies.
        """
        self.setAccount(rule("100000", "off", [], [("Reject with", 486)]),
                        rule(0, "off0", [], [("Reject with", 486)]),
                        rule(97000, "offTimed", [], [("Reject with", 486)]))
        plan = self.rules.forAccount(ACCOUNT)
        self.assertEqual(plan.immediate(invite()), Decision())
        self.assertEqual(plan.timed(), [])

    def test_legacyStageZero(self):
        """
        Values below 100 are applied immediately, ordered with stage-1000
        rules by their priority.
        """
        self.setAccount(rule(3, "legacy", [], [("Fork to", "l@x")]),
                        rule(100004, "new", [], [("Fork to", "n@x")]))
        self.assertEqual(self.immediate().applied, ["new", "legacy"])

    def test_equalPrioritiesKeepArrayOrder(self):
        """
        Rules of equal priority apply in array order; higher priorities
        first.
        """
        self.setAccount(rule(100005, "first", [], [("Fork to", "1@x")]),
                        rule(100005, "second", [], [("Fork to", "2@x")]),
                        rule(100008, "top", [], [("Fork to", "0@x")]))
        self.assertEqual(self.immediate().applied, ["top", "first", "second"])

    def test_stagesSeparate(self):
        """
        Each stage applies only its own rules; L{CallRulePlan.timed} lists
        the timed stages by delay.
        """
        self.setAccount(rule(100005, "now", [], [("Fork to", "n@x")]),
                        rule(99905, "1s", [], [("Fork to", "1@x")]),
                        rule(94005, "60s", [], [("Fork to", "60@x")]),
                        rule(40005, "600s", [], [("Fork to", "600@x")]),
                        rule(105, "fail", [], [("Fork to", "f@x")]))
        plan = self.rules.forAccount(ACCOUNT)
        self.assertIsInstance(plan, CallRulePlan)
        self.assertEqual([(s, [r.name for r in rules]) for s, rules in plan.timed()],
                         [(1, ["1s"]), (60, ["60s"]), (600, ["600s"])])
        self.assertEqual(plan.applyTimed(60, invite()).fork, ["60@x"])
        self.assertEqual(plan.applyTimed(10, invite()), Decision())
        self.assertEqual(plan.onFailure("failure", invite()).fork, ["f@x"])
        self.assertEqual(plan.immediate(invite()).fork, ["n@x"])

    def test_badStageArguments(self):
        """
        A delay that names a failure stage or no stage, or an unknown
        failure kind, is a programming error.
        """
        plan = self.rules.forAccount(ACCOUNT)
        for seconds in (0, 995, 997, 999, 1000, 2.5):
            self.assertRaises(ValueError, plan.applyTimed, seconds, invite())
        self.assertRaises(ValueError, plan.onFailure, "timeout", invite())

    def test_serverRulesOfOtherStages(self):
        """
        Server rules take part in every stage of an account's plan, merged
        with the account's own: Server > 5 first, Server <= 5 last.
        """
        self.setServer(rule(309, "S9", [], [("Fork to", "s9@x")]),
                       rule(301, "S1", [], [("Fork to", "s1@x")]))
        self.setAccount(rule(305, "A5", [], [("Fork to", "a5@x")]))
        decision = self.rules.forAccount(ACCOUNT).onFailure("busy", invite())
        self.assertEqual(decision.applied, ["S9", "A5", "S1"])


class ServerPlanTests(SignalRulesTestsMixin, SynchronousTestCase):
    """
    L{SignalRules.forServer} and the C{serverImmediate} switch.
    """

    def test_forServerOnlyServerRules(self):
        """
        The server plan has the Server rules only, and leaves application
        names bare (no account is known before routing).
        """
        self.setServer(rule(100007, "S", [], [("Fork to", "pbx")]))
        self.setAccount(rule(100009, "A", [], [("Fork to", "a@x")]))
        decision = self.rules.forServer().immediate(invite())
        self.assertEqual((decision.applied, decision.fork), (["S"], ["pbx"]))

    def test_contactCenterExample(self):
        """
        The seed-002 Server rule: INVITEs from the domain not generated
        locally go to the contact-center application; locally generated
        ones (C{LOCAL [0.0.0.0]}) do not.
        """
        self.setServer(rule("100008", "ccOut_your.domain.name",
                            [("Operation", "is", "INVITE"),
                             ("Submit Address", "is not", "LOCAL [0.0.0.0]*"),
                             ("From", "is", "*@your.domain.name")],
                            [("Redirect to", "ccincoming#pbx@your.domain.name"),
                             ("Stop processing",)]))
        plan = self.rules.forServer()
        hit = plan.immediate(invite(fromAddress="agent@your.domain.name"))
        self.assertEqual(hit.redirect, ["ccincoming#pbx@your.domain.name"])
        local = plan.immediate(invite(fromAddress="agent@your.domain.name",
                                      sourceAddress="LOCAL [0.0.0.0]"))
        self.assertFalse(local.changed)
        other = plan.immediate(invite(fromAddress="x@elsewhere"))
        self.assertFalse(other.changed)

    def test_serverImmediateExcluded(self):
        """
        With C{serverImmediate=False} the account plan leaves out the
        immediate Server rules (already applied by L{SignalRules.forServer})
        but keeps the Server rules of the other stages.
        """
        self.setServer(rule(100007, "S7", [], [("Fork to", "s@x")]),
                       rule(505, "S5", [], [("Fork to", "t@x")]))
        self.setAccount(rule(100009, "A9", [], [("Fork to", "a@x")]))
        plan = self.rules.forAccount(ACCOUNT, serverImmediate=False)
        self.assertEqual(plan.immediate(invite()).applied, ["A9"])
        self.assertEqual(plan.onFailure("noanswer", invite()).applied, ["S5"])
        self.assertEqual(self.immediate().applied, ["S7", "A9"])

    def test_unknownAccount(self):
        """
        A plan for an account the directory does not know has the Server
        rules only, and the problem is logged.
        """
        self.setServer(rule(100007, "S7", [], [("Fork to", "s@x")]))
        plan = self.rules.forAccount("nobody@main.dom")
        self.assertEqual(plan.immediate(invite()).applied, ["S7"])
        plan = self.rules.forAccount("nobody@nowhere.dom")
        self.assertEqual(plan.immediate(invite()).applied, ["S7"])


class ConditionTests(SignalRulesTestsMixin, SynchronousTestCase):
    """
    Condition keys of C{rules.md} 4.2 and the operations of section 3.
    """

    def applies(self, condition, info=None):
        """
        Whether a rule with the one C{condition} applies to C{info}.
        """
        self.setAccount(rule(100005, "c", [condition], [("Fork to", "x@y")]))
        return self.immediate(info or invite()).applied == ["c"]

    def test_methodAndOperation(self):
        """
        C{Method} and C{Operation} are the same key; names compare without
        regard to case.
        """
        self.assertTrue(self.applies(("Method", "is", "INVITE")))
        self.assertTrue(self.applies(("operation", "IS", "invite")))
        self.assertFalse(self.applies(("Operation", "is", "INVITE"), message()))
        self.assertTrue(self.applies(("Method", "in", "MESSAGE,INVITE")))

    def test_isAndIsNotPictures(self):
        """
        C{is} and C{is not} take pictures with C{*}.
        """
        self.assertTrue(self.applies(("From", "is", "*@other.dom")))
        self.assertFalse(self.applies(("From", "is", "*@main.dom")))
        self.assertTrue(self.applies(("From", "is not", "*@main.dom")))
        self.assertFalse(self.applies(("To", "is not", "a@*")))
        self.assertTrue(self.applies(("RequestURI", "is not", "*;fromCC=true")))
        self.assertFalse(self.applies(("RequestURI", "is not", "*;fromCC=true"),
                                      invite(requestURI="sip:a@main.dom;fromCC=true")))

    def test_inAndNotIn(self):
        """
        C{in} and C{not in} take comma-separated picture lists.
        """
        self.assertTrue(self.applies(("From", "in", "x@y, *@other.dom")))
        self.assertFalse(self.applies(("From", "not in", "x@y, *@other.dom")))
        self.assertTrue(self.applies(("To", "not in", "b@*,c@*")))

    def test_fromName(self):
        """
        C{'From' Name} tests the display name.
        """
        self.assertTrue(self.applies(("'From' Name", "is", "car*")))
        self.assertFalse(self.applies(("'From' Name", "is", "Bob")))

    def test_callType(self):
        """
        C{CallType} is C{AV} for an audio/video INVITE, C{IM} for MESSAGE.
        """
        self.assertTrue(self.applies(("CallType", "is", "AV")))
        self.assertTrue(self.applies(("CallType", "is", "IM"), message()))
        self.assertFalse(self.applies(("CallType", "is", "AV"), message()))

    def test_presence(self):
        """
        C{Presence in "busy,away"}; unknown presence satisfies only the
        negative operations.
        """
        self.assertTrue(self.applies(("Presence", "in", "busy,away"), invite(presence="away")))
        self.assertFalse(self.applies(("Presence", "in", "busy,away"), invite(presence="online")))
        self.assertFalse(self.applies(("Presence", "in", "busy,away")))
        self.assertTrue(self.applies(("Presence", "not in", "busy,away")))

    def test_submitAddress(self):
        """
        C{Submit Address} matches the source as written and its bare IP
        address.
        """
        self.assertTrue(self.applies(("Submit Address", "is", "[192.0.2.*]*")))
        self.assertTrue(self.applies(("Submit Address", "is", "192.0.2.7")))
        self.assertTrue(self.applies(("Submit Address", "is", "LOCAL*"),
                                     invite(sourceAddress="LOCAL [0.0.0.0]")))

    def test_timeOfDayAndCurrentDay(self):
        """
        C{Time Of Day} and C{Current Day} use the injected clock, in the
        configured zone, when the stage is applied.
        """
        self.assertTrue(self.applies(("Time Of Day", "in", "09:00-18:00")))
        self.assertTrue(self.applies(("Current Day", "in", "Mon,Tue")))
        self.assertFalse(self.applies(("Current Day", "in", "Sat,Sun")))
        self.clock.advance(9 * 3600)
        self.assertFalse(self.applies(("Time Of Day", "in", "09:00-18:00")))
        self.assertTrue(self.applies(("Time Of Day", "not in", "09:00-18:00")))

    def test_timeUsesClockModule(self):
        """
        A clock with C{time()} (the C{time} module's interface) works as
        well as one with C{seconds()}.
        """
        class FixedTime:
            def time(self):
                return MONDAY_MORNING
        self.rules = SignalRules(self.directory, clock=FixedTime(),
                                 timeZone=datetime.timezone.utc)
        self.assertTrue(self.applies(("Current Day", "is", "Monday")))

    def test_allConditionsMustHold(self):
        """
        Conditions are ANDed; a rule without conditions always applies.
        """
        self.setAccount(rule(100005, "both", [("Method", "is", "INVITE"),
                                              ("From", "is", "nobody@*")],
                             [("Fork to", "x@y")]),
                        rule(100004, "always", [], [("Fork to", "z@y")]))
        self.assertEqual(self.immediate().applied, ["always"])

    def test_unknownConditionNotApplied(self):
        """
        A rule with an unknown key or operation, or a bad parameter, does
        not apply; the problem is logged once, not on every call.
        """
        logged = []
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        self.setAccount(rule(100009, "odd", [("Phase Of Moon", "is", "full")],
                             [("Reject with", 603)]),
                        rule(100008, "oddOp", [("From", "resembles", "x")],
                             [("Reject with", 603)]),
                        rule(100007, "badTime", [("Time Of Day", "in", "noon")],
                             [("Reject with", 603)]),
                        rule(100001, "good", [], [("Fork to", "x@y")]))
        for _ in range(3):
            self.assertEqual(self.immediate().applied, ["good"])
        problems = [e["problem"] for e in logged if "problem" in e]
        self.assertEqual(len(problems), 3)
        self.assertIn("Phase Of Moon", problems[0])

    def test_addressListNeverMatches(self):
        """
        Signal rules have no C{#List}s: an element naming one does not match.
        """
        self.assertFalse(self.applies(("From", "is", "#Friends")))
        self.assertTrue(self.applies(("From", "not in", "#Friends")))


class ActionTests(SignalRulesTestsMixin, SynchronousTestCase):
    """
    Actions of C{rules.md} 5.2, stopping, and application targets.
    """

    def test_forkContinues(self):
        """
        C{Fork to} does not stop processing; C{Stop processing} (any case)
        does.
        """
        self.setAccount(rule(100009, "f", [], [("Fork to", "1@x, 2@x")]),
                        rule(100008, "stop", [], [("Fork to", "3@x"), ("STOP Processing",)]),
                        rule(100007, "never", [], [("Fork to", "4@x")]))
        decision = self.immediate()
        self.assertEqual(decision.fork, ["1@x", "2@x", "3@x"])
        self.assertEqual(decision.applied, ["f", "stop"])
        self.assertTrue(decision.stopped)

    def test_redirectReplacesForks(self):
        """
        C{Redirect to} replaces the targets decided so far and stops.
        """
        self.setAccount(rule(100009, "f", [], [("Fork to", "1@x")]),
                        rule(100008, "r", [], [("Redirect to", "sip:b@x")]),
                        rule(100007, "never", [], [("Fork to", "4@x")]))
        decision = self.immediate()
        self.assertEqual((decision.redirect, decision.fork), (["sip:b@x"], []))
        self.assertEqual(decision.applied, ["f", "r"])

    def test_stopSkipsRestOfRule(self):
        """
        Actions after a stopping action in the same rule are skipped.
        """
        self.setAccount(rule(100009, "r", [], [("Redirect to", "b@x"), ("Fork to", "c@x")]))
        self.assertEqual((self.immediate().redirect, self.immediate().fork), (["b@x"], []))

    def test_rejectForms(self):
        """
        C{Reject with} takes a number or a string starting with one; other
        values make the rule inapplicable.
        """
        for param, code in ((486, 486), ("486 Busy Here", 486), ("603", 603)):
            self.setAccount(rule(100009, "r", [], [("Reject with", param)]))
            self.assertEqual(self.immediate().reject, code)
        for param in ("busy", 200, "6030", None):
            self.setAccount(rule(100009, "r", [], [("Reject with", param)]))
            self.assertIsNone(self.immediate().reject)

    def test_unknownActionNotApplied(self):
        """
        A rule with an unknown action does not apply at all.
        """
        self.setAccount(rule(100009, "odd", [], [("Fork to", "x@y"), ("Play Music", "jazz")]))
        self.assertEqual(self.immediate(), Decision())

    def test_applicationTargets(self):
        """
        Bare C{voicemail}, C{pbx} and C{service} become C{app#account};
        other names and addresses are passed on as written.
        """
        self.setAccount(rule(100009, "r", [], [("Fork to", "VoiceMail, pbx, service, john, "
                                                           "<sip:c@x;transport=tcp>, tel:+15551234")]))
        self.assertEqual(self.immediate().fork, [
            "voicemail#a@main.dom", "pbx#a@main.dom", "service#a@main.dom", "john",
            "sip:c@x;transport=tcp", "tel:+15551234"])

    def test_expandTarget(self):
        """
        Without an account an application name stays bare.
        """
        self.assertEqual(expandTarget("pbx"), "pbx")
        self.assertEqual(expandTarget(" pbx ", "pbx@main.dom"), "pbx#pbx@main.dom")
        self.assertEqual(expandTarget("ccincoming#pbx@d", "a@d"), "ccincoming#pbx@d")

    def test_initialPbxRule(self):
        """
        The rule C{initialize} stores on the C{pbx} account starts the
        C{pbx} application for that account.
        """
        decision = self.rules.forAccount("pbx@main.dom").immediate(invite(toAddress="pbx@main.dom"))
        self.assertEqual(decision.redirect, ["pbx#pbx@main.dom"])


class PresetTests(SignalRulesTestsMixin, SynchronousTestCase):
    """
    The stored form of the Simple Incoming-Call Rules (C{rules.md} 6.2).
    """

    def test_presetForms(self):
        """
        Each preset is stored as the table of section 6.2 says.
        """
        invite_ = [["Method", "is", "INVITE"]]
        self.assertEqual(presetRules("divert", "pbx", account=ACCOUNT),
                         ["100005", "#Divert", invite_, [["Redirect to", "pbx#a@main.dom"]]])
        self.assertEqual(presetRules("voicemail", seconds=30, account=ACCOUNT),
                         ["97005", "#VoiceMail", invite_,
                          [["Redirect to", "voicemail#a@main.dom"]]])
        self.assertEqual(presetRules("Voice Mail Busy", account=ACCOUNT),
                         ["305", "#VoiceMailBusy", invite_,
                          [["Redirect to", "voicemail#a@main.dom"]]])
        self.assertEqual(presetRules("#Fork", "b@main.dom", seconds=10),
                         ["99005", "#Fork", invite_, [["Fork to", "b@main.dom"]]])
        self.assertEqual(presetRules("noanswer", "b@x"),
                         ["505", "#NoAnswer", invite_, [["Redirect to", "b@x"]]])
        self.assertEqual(presetRules("failure", "voicemail"),
                         ["105", "#Failure", invite_, [["Redirect to", "voicemail"]]])
        self.assertEqual(presetRules("voicemail", seconds=0)[0], "100005")

    def test_presetErrors(self):
        """
        Unknown kinds, missing targets and bad delays are refused.
        """
        self.assertRaises(ValueError, presetRules, "holiday", "x@y")
        self.assertRaises(ValueError, presetRules, "divert")
        self.assertRaises(ValueError, presetRules, "fork", "x@y")
        self.assertRaises(ValueError, presetRules, "fork", "x@y", seconds=MAX_PENDING + 1)
        self.assertRaises(ValueError, presetRules, "noanswer", "x@y", seconds=10)

    def test_presetsApply(self):
        """
        Stored presets behave as their names say: fork after 10 s, voice
        mail after 30 s and on busy, another target on failure.
        """
        self.setAccount(presetRules("fork", "mobile@x", seconds=10),
                        presetRules("voicemail", seconds=30, account=ACCOUNT),
                        presetRules("voicemailbusy", account=ACCOUNT),
                        presetRules("failure", "operator@x"))
        self.assertEqual(checkSignalRules(self.directory.getAccountPart(ACCOUNT, "SignalRules")),
                         [])
        plan = self.rules.forAccount(ACCOUNT)
        self.assertFalse(plan.immediate(invite()).changed)
        self.assertEqual([s for s, _ in plan.timed()], [10, 30])
        self.assertEqual(plan.applyTimed(10, invite()).fork, ["mobile@x"])
        self.assertEqual(plan.applyTimed(30, invite()).redirect, ["voicemail#a@main.dom"])
        self.assertEqual(plan.onFailure("busy", invite()).redirect, ["voicemail#a@main.dom"])
        self.assertEqual(plan.onFailure("failure", invite()).redirect, ["operator@x"])
        self.assertFalse(plan.applyTimed(30, message()).changed)


class CheckTests(SynchronousTestCase):
    """
    L{checkSignalRules}, for the CLI and web interfaces.
    """

    def test_problems(self):
        """
        Every rule that would not apply is named with its reason.
        """
        problems = checkSignalRules([
            rule(100005, "ok", [("Method", "is", "INVITE")], [("Redirect to", "b@x")]),
            rule(200005, "stage", [], []),
            rule(100005, "key", [("Mood", "is", "x")], []),
            rule(100005, "action", [], [("Dance",)]),
            ["bad shape"],
        ])
        self.assertEqual(len(problems), 4)
        self.assertIn("'stage'", problems[0])
        self.assertIn("Mood", problems[1])
        self.assertIn("Dance", problems[2])
        self.assertEqual(checkSignalRules("x"), ["rules must be an array of rules"])
