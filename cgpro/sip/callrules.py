# -*- test-case-name: tests.sip.test_callrules -*-
"""
Signal Rules: the incoming-call rules the SIP proxy applies
(C{rules.md} sections 2.2-2.4, 4.2, 5.2 and 6).

Rules are data stored by the directory at three levels (Server,
C{GETSERVERSIGNALRULES}; Domain, C{GETDOMAINSIGNALRULES}; Account,
C{GETACCOUNTSIGNALRULES}).  L{SignalRules} reads them and compiles a
L{CallRulePlan} for one call: the rules merged (section 2.3) and grouped
by stage (section 2.2).  The plan is pure logic, like the mail engine in
L{cgpro.queue.rules}: it looks at a L{SignalInfo} the proxy filled from
the request and returns a L{Decision} saying where the call goes
(redirect, fork) or that it is rejected.  The proxy does the SIP work and
schedules the timed stages itself, so the rules stay deterministic and
testable without a network or a reactor.

Condition operations, pictures, the rule shape, priorities and the merge
order are the mail engine's (L{cgpro.queue.ruleconditions},
L{cgpro.queue.rules.mergeRuleSets}); only the condition keys and the
actions are signal-specific.

Decisions where the spec is silent ([D]):

  - A rule with an unknown condition key, operation or action, or with a
    bad parameter, does not apply at all (the mail engine only skips a
    bad action): half a call rule (say, the C{Stop processing} without
    the C{Redirect to} before it) would do something the user did not
    write.  Each problem is logged once per L{SignalRules}.
  - An action that stops processing (C{Stop processing}, C{Redirect to},
    C{Reject with}) also skips the remaining actions of its own rule, as
    in the mail engine.
  - C{Redirect to} replaces every target decided so far, including
    earlier C{Fork to} targets of the same stage; C{Reject with} clears
    them (a rejected call rings nowhere).
  - Targets are a comma-separated list; a bare application name
    (L{APPLICATIONS}) means that application for the called account
    (section 6.2) and becomes C{app#name@domain}; everything else is
    passed on as written for the Router.
  - Stages 1, 3 and 5 are the failure stages; every other stage from 2 to
    999 is "pending for 1000 - stage seconds"; a stage above 1000 is a
    bad priority.
  - C{Time Of Day}, C{Current Day} (and C{Current Date}) are evaluated
    when a stage is applied, in the server's zone unless L{SignalRules}
    is given another.
"""

import datetime
import time
from dataclasses import dataclass, field

from twisted.logger import Logger

from cgpro.core.errors import CLIError
from cgpro.queue.ruleconditions import (
    CONDITIONS as MAIL_CONDITIONS,
    IN,
    IS,
    IS_NOT,
    NOT_IN,
    OPERATIONS,
    RuleError,
    compileTextTest,
    normalizeName,
    splitList,
)
from cgpro.queue.rules import mergeRuleSets, parsePriority

__all__ = [
    "SignalRules", "SignalInfo", "CallRulePlan", "CallRule", "Decision",
    "presetRules", "checkSignalRules", "decodePriority", "expandTarget",
    "APPLICATIONS", "IMMEDIATE", "FAILURE_STAGES",
]

log = Logger()

#: The stage applied as soon as the Signal arrives.
IMMEDIATE = 1000

#: L{CallRulePlan.onFailure} kinds and their stages (C{rules.md} 2.2).
FAILURE_STAGES = {"busy": 3, "noanswer": 5, "failure": 1}

#: Bare target names that mean "this application for the called account"
#: (C{rules.md} 6.2).
APPLICATIONS = ("voicemail", "pbx", "service")

#: Rule-set kinds in the order they are passed to the merge.
_KINDS = ("server", "domain", "account")

_TEXT_OPERATIONS = (IS, IS_NOT, IN, NOT_IN)

#: Reported problems kept per L{SignalRules}, so a broken rule is logged
#: once rather than on every call; the bound only protects memory.
_MAX_REPORTED = 10000


# -- what conditions look at --------------------------------------------------------------


@dataclass
class SignalInfo:
    """
    The request as the conditions see it; the proxy fills it in.

    @ivar method: the request method (C{INVITE}, C{MESSAGE} ...).
    @ivar fromAddress: the From address, C{user@host}.
    @ivar fromName: the From display name (C{""} for none).
    @ivar toAddress: the To address, C{user@host}.
    @ivar requestURI: the Request-URI as text (C{sip:323@example.com}).
    @ivar callType: C{"AV"} for an INVITE with audio/video SDP, C{"IM"}
        for MESSAGE; C{None} when neither.
    @ivar sourceAddress: where the request came from,
        C{"[127.0.0.1]:5060"}, or C{"LOCAL [0.0.0.0]"} for a request the
        server generated itself.
    @ivar presence: the called account's presence (C{"busy"}, C{"away"}
        ...) or C{None} when unknown.
    """

    method: str = ""
    fromAddress: str = ""
    fromName: str = ""
    toAddress: str = ""
    requestURI: str = ""
    callType: str = None
    sourceAddress: str = ""
    presence: str = None


class _Evaluation:
    """
    One application of a stage: the L{SignalInfo} and the time, shaped the
    way the mail engine's condition tests expect a message to be
    (C{localNow}, C{now}, C{lookupList}), so its date and time conditions
    can be reused as they are.

    @ivar notes: run-time problems found while testing.
    """

    def __init__(self, info, now, localNow):
        self.info = info
        self.now = now
        self.localNow = localNow
        self.notes = []

    def lookupList(self, name, value, notes):
        """
        Signal rules have no C{#List} address lists: an element naming one
        never matches, and says so in the log.
        """
        notes.append("address list %r is not available to Signal rules" % (name,))
        return False


def _one(value):
    """
    A single-valued field: absent (C{None}) when empty, so C{is not} and
    C{not in} hold for it (C{rules.md} section 3).
    """
    return [value] if value else None


def _sourceValues(info):
    """
    C{Submit Address} matches the source as written (C{"[10.0.0.1]:5060"},
    C{"LOCAL [0.0.0.0]"}) and its bare IP address (C{"10.0.0.1"}), like
    the mail engine's C{Submit Address}.
    """
    source = info.sourceAddress
    if not source:
        return None
    values = [source]
    start, end = source.find("["), source.find("]")
    if 0 <= start < end:
        values.append(source[start + 1:end])
    return values


class _SignalField:
    """
    A text condition on one field of the L{SignalInfo}: C{is}, C{is not},
    C{in}, C{not in} with pictures, compiled by the mail engine.
    """

    def __init__(self, getter):
        self.getter = getter

    def compile(self, op, param):
        if op not in _TEXT_OPERATIONS:
            raise RuleError("operation %r is not valid here" % (op,))
        test = compileTextTest(op, param)
        getter = self.getter
        return lambda ev, notes: test(getter(ev.info), ev, notes)


_METHOD = _SignalField(lambda i: _one((i.method or "").upper()))

#: Signal condition keys (after L{normalizeName}) -> compilers.
SIGNAL_CONDITIONS = {
    "method": _METHOD,
    "operation": _METHOD,
    "from": _SignalField(lambda i: _one(i.fromAddress)),
    "to": _SignalField(lambda i: _one(i.toAddress)),
    "from name": _SignalField(lambda i: _one(i.fromName)),
    "requesturi": _SignalField(lambda i: _one(i.requestURI)),
    "request uri": _SignalField(lambda i: _one(i.requestURI)),
    "calltype": _SignalField(lambda i: _one(i.callType)),
    "call type": _SignalField(lambda i: _one(i.callType)),
    "presence": _SignalField(lambda i: _one(i.presence)),
    "submit address": _SignalField(_sourceValues),
    "time of day": MAIL_CONDITIONS["time of day"],
    "current day": MAIL_CONDITIONS["current day"],
    "current date": MAIL_CONDITIONS["current date"],
}


def _compileCondition(condition):
    """
    @return: C{test(evaluation, notes) -> bool}.
    @raise RuleError: for a malformed condition, an unknown key or
        operation, or a bad parameter.
    """
    if not isinstance(condition, (list, tuple)) or not 2 <= len(condition) <= 3:
        raise RuleError(
            "a condition must be (key, operation [, parameter]): %r" % (condition,))
    key = normalizeName(condition[0])
    op = normalizeName(condition[1])
    param = condition[2] if len(condition) == 3 else None
    kind = SIGNAL_CONDITIONS.get(key)
    if kind is None:
        raise RuleError("unknown condition %r" % (condition[0],))
    if op not in OPERATIONS:
        raise RuleError("unknown operation %r" % (condition[1],))
    try:
        return kind.compile(op, param)
    except RuleError as e:
        raise RuleError("condition %r: %s" % (condition[0], e)) from None


# -- actions ------------------------------------------------------------------------------

REDIRECT, FORK, REJECT, STOP = "redirect", "fork", "reject", "stop"

_ACTIONS = {
    "redirect to": REDIRECT,
    "fork to": FORK,
    "reject with": REJECT,
    "stop processing": STOP,
}


def expandTarget(target, account=None):
    """
    Read one target as written in a rule.

    @param target: C{voicemail}, C{b@dom}, C{sip:b@dom}, C{<sip:b@dom>} ...
    @param account: the called account (C{name@domain}), or C{None} when
        it is not known yet (Server rules before routing).
    @return: C{app#name@domain} for a bare application name
        (L{APPLICATIONS}) when C{account} is known; otherwise the target
        as written, without surrounding angle brackets.
    """
    target = target.strip()
    if target.startswith("<") and target.endswith(">"):
        target = target[1:-1].strip()
    if account and target.lower() in APPLICATIONS:
        return "%s#%s" % (target.lower(), account)
    return target


def _targets(param, account):
    if isinstance(param, (int, float)) and not isinstance(param, bool):
        param = str(param)
    if not isinstance(param, (str, list)):
        raise RuleError("a target address is needed, got %r" % (param,))
    try:
        items = splitList(param)
    except RuleError:
        raise RuleError("not a target list: %r" % (param,)) from None
    result = []
    for item in items:
        target = expandTarget(item, account)
        if not target or any(c.isspace() for c in target):
            raise RuleError("not a target address: %r" % (item,))
        if target not in result:
            result.append(target)
    if not result:
        raise RuleError("a target address is needed")
    return result


def _rejectCode(param):
    """
    C{Reject with}: a SIP error code, a number or a string starting with
    one (C{"603"}, C{"486 Busy Here"}).
    """
    if isinstance(param, int) and not isinstance(param, bool):
        code = param
    elif isinstance(param, str) and param.strip()[:3].isdigit():
        code = int(param.strip()[:3])
        if param.strip()[3:4].isdigit():
            raise RuleError("not a SIP error code: %r" % (param,))
    else:
        raise RuleError("Reject with needs a SIP error code, got %r" % (param,))
    if not 400 <= code <= 699:
        raise RuleError("not a SIP error code: %r" % (param,))
    return code


def _compileAction(action, account):
    """
    @return: C{(kind, value)}: L{REDIRECT}/L{FORK} with a C{list} of
        targets, L{REJECT} with an C{int} code, L{STOP} with C{None}.
    @raise RuleError: for a malformed or unknown action or a bad
        parameter.
    """
    if not isinstance(action, (list, tuple)) or not 1 <= len(action) <= 2:
        raise RuleError("an action must be (name [, parameter]): %r" % (action,))
    kind = _ACTIONS.get(normalizeName(action[0]))
    if kind is None:
        raise RuleError("unknown action %r" % (action[0],))
    param = action[1] if len(action) == 2 else None
    if kind in (REDIRECT, FORK):
        return kind, _targets(param, account)
    if kind == REJECT:
        return kind, _rejectCode(param)
    return kind, None


# -- rules --------------------------------------------------------------------------------


def decodePriority(value):
    """
    Split a Signal-rule priority into stage and priority
    (C{rules.md} 2.2): C{stage = value div 100}, C{priority = value mod
    100}; values below 100 are stage L{IMMEDIATE}.

    @param value: a number or a numeric string.
    @return: C{(stage, priority)}; priority 0 means inactive.
    @raise RuleError: for a value that is not a priority, or a stage
        above L{IMMEDIATE}.
    """
    stage, priority = divmod(parsePriority(value), 100)
    if stage == 0:
        stage = IMMEDIATE
    if stage > IMMEDIATE:
        raise RuleError("stage %d does not exist (at most %d): %r" % (stage, IMMEDIATE, value))
    return stage, priority


class CallRule:
    """
    A compiled Signal rule.

    @ivar kind: C{"server"}, C{"domain"} or C{"account"}.
    @ivar name: the rule name.
    @ivar stage: the stage (L{IMMEDIATE}, 1000 - N, 5, 3, 1).
    @ivar priority: the priority inside the stage (1-99).
    @ivar conditions: C{test(evaluation, notes) -> bool} callables.
    @ivar actions: C{(kind, value)} pairs (L{_compileAction}).
    """

    def __init__(self, kind, name, stage, priority, conditions, actions):
        self.kind = kind
        self.name = name
        self.stage = stage
        self.priority = priority
        self.conditions = conditions
        self.actions = actions

    def __repr__(self):
        return "<CallRule %s %r stage %d priority %d>" % (
            self.kind, self.name, self.stage, self.priority)


def _ruleName(data):
    if isinstance(data, (list, tuple)) and len(data) > 1 and isinstance(data[1], str):
        return data[1]
    return "?"


def compileRule(data, kind="account", account=None):
    """
    Compile one rule of stored data.

    @param data: C{(priority, name, (conditions), (actions) [, comment])}.
    @param kind: the level it was stored at.
    @param account: the called account, for application targets.
    @return: a L{CallRule}.
    @raise RuleError: for anything that keeps the rule from applying.
    """
    if not isinstance(data, (list, tuple)) or len(data) not in (4, 5):
        raise RuleError("a rule must be (priority, name, (conditions), (actions) [, comment])")
    stage, priority = decodePriority(data[0])
    name = data[1]
    if not isinstance(name, str):
        raise RuleError("rule name must be a string: %r" % (name,))
    if not isinstance(data[2], (list, tuple)):
        raise RuleError("conditions must be an array: %r" % (data[2],))
    if not isinstance(data[3], (list, tuple)):
        raise RuleError("actions must be an array: %r" % (data[3],))
    conditions = [_compileCondition(c) for c in data[2]]
    actions = [_compileAction(a, account) for a in data[3]]
    return CallRule(kind, name, stage, priority, conditions, actions)


def checkSignalRules(rules):
    """
    Validate a Signal rule array for the CLI and the web interfaces:
    shape, priority and stage, known condition keys, operations and
    actions, readable parameters.

    @return: C{list} of problem texts, empty when the rules are fine.
    """
    if not isinstance(rules, (list, tuple)):
        return ["rules must be an array of rules"]
    problems = []
    for index, data in enumerate(rules):
        try:
            compileRule(data)
        except RuleError as e:
            problems.append("rule %d (%r): %s" % (index + 1, _ruleName(data), e))
    return problems


@dataclass
class Decision:
    """
    What the rules of one stage decided.

    The proxy replaces its targets with C{redirect} when it is not empty,
    then adds C{fork}; C{reject} (when not C{None}) wins over both.

    @ivar redirect: targets replacing the current ones (C{Redirect to}).
    @ivar fork: targets ringing in addition (C{Fork to}).
    @ivar reject: the SIP code to reject the call with, or C{None}.
    @ivar stopped: an action stopped rule processing.
    @ivar applied: names of the rules whose conditions held, in order.
    @ivar problems: run-time problems (for the log; never fatal).
    """

    redirect: list = field(default_factory=list)
    fork: list = field(default_factory=list)
    reject: int = None
    stopped: bool = False
    applied: list = field(default_factory=list)
    problems: list = field(default_factory=list)

    @property
    def changed(self):
        """
        Whether the call has to be handled differently than without rules.
        """
        return bool(self.redirect or self.fork or self.reject is not None)


class CallRulePlan:
    """
    The Signal rules of one call, merged (C{rules.md} 2.3) and grouped by
    stage (2.2), ready to apply at each point of the call.

    @ivar stages: C{stage -> [CallRule]} in application order.
    @ivar account: the called account, or C{None} for Server rules.
    """

    def __init__(self, stages, account, owner):
        self.stages = stages
        self.account = account
        self._owner = owner

    def __repr__(self):
        return "<CallRulePlan for %s: %s>" % (
            self.account or "server",
            ", ".join("%d: %d" % (s, len(r)) for s, r in sorted(self.stages.items())))

    def rules(self, stage):
        """
        @return: the rules of C{stage} in application order (a new list).
        """
        return list(self.stages.get(stage, ()))

    def immediate(self, info):
        """
        Apply the rules of the immediate stage (1000, and the legacy
        values below 100) to a Signal that has just arrived.

        @param info: the L{SignalInfo}.
        @return: a L{Decision}.
        """
        return self._apply(IMMEDIATE, info)

    def timed(self):
        """
        The stages the proxy schedules while the call is pending.

        @return: C{[(seconds, [CallRule]), ...]} for every stage 1000 - N
            with rules, sorted by N; apply one with L{applyTimed}.
        """
        return sorted((IMMEDIATE - stage, list(rules))
                      for stage, rules in self.stages.items()
                      if stage != IMMEDIATE and stage not in FAILURE_STAGES.values())

    def applyTimed(self, seconds, info):
        """
        Apply the rules of stage 1000 - C{seconds} once the call has been
        pending that long.

        @param seconds: an C{int} from L{timed}.
        @return: a L{Decision} (empty when that stage has no rules).
        @raise ValueError: for a C{seconds} that names no timed stage.
        """
        stage = IMMEDIATE - int(seconds)
        if seconds != int(seconds) or not 1 <= stage < IMMEDIATE \
                or stage in FAILURE_STAGES.values():
            raise ValueError("no timed stage for %r seconds" % (seconds,))
        return self._apply(stage, info)

    def onFailure(self, kind, info):
        """
        Apply the rules for a failed call.

        @param kind: C{"busy"} (486/600/603 from the devices, or DND:
            stage 3), C{"noanswer"} (408/480 or ring timeout: stage 5) or
            C{"failure"} (any other error: stage 1).
        @return: a L{Decision}.
        @raise ValueError: for another C{kind}.
        """
        stage = FAILURE_STAGES.get(kind)
        if stage is None:
            raise ValueError("unknown failure kind %r" % (kind,))
        return self._apply(stage, info)

    def _apply(self, stage, info):
        decision = Decision()
        rules = self.stages.get(stage)
        if not rules:
            return decision
        evaluation = self._owner._evaluation(info)
        for rule in rules:
            if decision.stopped:
                break
            notes = []
            try:
                holds = all(test(evaluation, notes) for test in rule.conditions)
            except Exception as e:
                notes.append("not applied: %s: %s" % (type(e).__name__, e))
                holds = False
            for note in notes:
                problem = "%s Signal rule %r: %s" % (rule.kind, rule.name, note)
                decision.problems.append(problem)
                self._owner._report(problem)
            if not holds:
                continue
            decision.applied.append(rule.name)
            for kind, value in rule.actions:
                _perform(decision, kind, value)
                if decision.stopped:
                    break
        return decision


def _perform(decision, kind, value):
    if kind == REDIRECT:
        decision.redirect = list(value)
        decision.fork = []
        decision.stopped = True
    elif kind == FORK:
        decision.fork.extend(t for t in value if t not in decision.fork)
    elif kind == REJECT:
        decision.reject = value
        decision.redirect = []
        decision.fork = []
        decision.stopped = True
    elif kind == STOP:
        decision.stopped = True


class SignalRules:
    """
    Builds L{CallRulePlan}s from the Signal rules the directory stores.

    Plans are built for each call, not cached: rules change over the CLI
    at any time, and the directory keeps them in memory already.

    @ivar directory: the L{cgpro.directory.local.Directory} (anything with
        C{getServerDict}, C{getDomainPart} and C{getAccountPart}).
    @ivar clock: C{time.time}-like source of the current time: an object
        with C{seconds()} (a reactor, L{twisted.internet.task.Clock}) or
        C{time()} (the C{time} module).
    @ivar timeZone: the zone of C{Time Of Day} and C{Current Day}
        (a C{datetime.tzinfo}); C{None} for the server's own.
    """

    def __init__(self, directory, clock=time, timeZone=None):
        self.directory = directory
        self.clock = clock
        self.timeZone = timeZone
        self._reported = set()

    def forAccount(self, account, serverImmediate=True):
        """
        The plan for a call to a local account: Server, Domain and Account
        rules merged per C{rules.md} 2.3 and grouped by stage.

        @param account: the canonical C{name@domain}.
        @param serverImmediate: include the Server rules of the immediate
            stage (the merge order of section 2.3 shows them); pass
            C{False} when L{forServer} already applied them to this call
            before routing, so a C{Fork to} there does not fork twice.
        @return: a L{CallRulePlan}; a directory that cannot answer (an
            unknown account) gives the rules it could read, and a log line.
        """
        domain = account.rpartition("@")[2]
        server = self._read("server", lambda: self._serverRules())
        if not serverImmediate:
            server = [r for r in server if not _immediate(r)]
        ruleSets = [
            ("server", server),
            ("domain", self._read(
                "domain %s" % (domain,),
                lambda: self.directory.getDomainPart(domain, "SignalRules"))),
            ("account", self._read(
                "account %s" % (account,),
                lambda: self.directory.getAccountPart(account, "SignalRules"))),
        ]
        return self._plan(ruleSets, account)

    def forServer(self):
        """
        The plan of the Server-wide rules alone, applied to every Signal
        before it is routed.

        @return: a L{CallRulePlan} (application names are left bare: no
            account is known yet).
        """
        return self._plan([("server", self._read("server", self._serverRules))], None)

    # -- internals ------------------------------------------------------------

    def _serverRules(self):
        return self.directory.getServerDict("Rules").get("SignalRules")

    def _read(self, where, getter):
        try:
            rules = getter()
        except CLIError as e:
            self._report("Signal rules of %s not read: %s" % (where, e))
            return []
        if rules is None:
            return []
        if not isinstance(rules, (list, tuple)):
            self._report("Signal rules of %s are not an array" % (where,))
            return []
        return rules

    def _plan(self, ruleSets, account):
        """
        Compile, group by stage, then order each stage with the mail
        engine's merge (fed the in-stage priority, so its "> 5" groups
        are the ones of section 2.3).
        """
        byStage = {}
        for kind, rules in ruleSets:
            for data in rules:
                try:
                    rule = compileRule(data, kind, account)
                except RuleError as e:
                    self._report("%s Signal rule %r not applied: %s" % (
                        kind, _ruleName(data), e))
                    continue
                if rule.priority == 0:
                    continue
                byStage.setdefault(rule.stage, {}).setdefault(kind, []).append(
                    (rule.priority, rule))
        stages = {}
        for stage, kinds in byStage.items():
            merged = mergeRuleSets([(kind, kinds.get(kind, ())) for kind in _KINDS])
            stages[stage] = [rule for _, (_, rule) in merged]
        return CallRulePlan(stages, account, self)

    def _evaluation(self, info):
        if hasattr(self.clock, "seconds"):
            seconds = self.clock.seconds()
        else:
            seconds = self.clock.time()
        now = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
        local = now.astimezone(self.timeZone) if self.timeZone is not None else now.astimezone()
        return _Evaluation(info, now.replace(tzinfo=None), local.replace(tzinfo=None))

    def _report(self, problem):
        """
        Log a problem with rule data once: a broken rule would otherwise
        fill the log with one line per call.
        """
        if problem in self._reported:
            return
        if len(self._reported) >= _MAX_REPORTED:
            self._reported.clear()
        self._reported.add(problem)
        log.warn("{problem}", problem=problem)


def _immediate(data):
    try:
        return decodePriority(data[0])[0] == IMMEDIATE
    except (RuleError, TypeError, IndexError, KeyError):
        return False


# -- presets ------------------------------------------------------------------------------

#: Preset kinds (C{rules.md} 6.2): kind -> (rule name, action, fixed stage
#: or C{None} for "after N seconds", default target).
PRESETS = {
    "divert": ("#Divert", "Redirect to", IMMEDIATE, None),
    "voicemail": ("#VoiceMail", "Redirect to", None, "voicemail"),
    "voicemailbusy": ("#VoiceMailBusy", "Redirect to", FAILURE_STAGES["busy"], "voicemail"),
    "fork": ("#Fork", "Fork to", None, None),
    "noanswer": ("#NoAnswer", "Redirect to", FAILURE_STAGES["noanswer"], None),
    "failure": ("#Failure", "Redirect to", FAILURE_STAGES["failure"], None),
}

#: Preset rules are stored with this priority inside their stage.
PRESET_PRIORITY = 5

#: The longest "after N seconds": stage 6; stage 5 and below are failures.
MAX_PENDING = IMMEDIATE - 6


def presetRules(kind, target=None, seconds=None, account=None):
    """
    The stored form of a Simple Incoming-Call Rule (C{rules.md} 6.2).

    @param kind: C{"divert"} (Divert always to C{target}),
        C{"voicemail"} (Voice Mail after C{seconds}), C{"voicemailbusy"}
        (Voice Mail on Busy), C{"fork"} (after ringing C{seconds}, fork to
        C{target}), C{"noanswer"} (No Answer: redirect to C{target}),
        C{"failure"} (On Failure: redirect to C{target}); case, spaces and
        the rule names (C{"#VoiceMail"}) are accepted too.
    @param target: where the call goes; the voice-mail presets default to
        C{"voicemail"}.
    @param seconds: for C{voicemail} and C{fork}: 0 (immediately) to
        L{MAX_PENDING}.
    @param account: the account the rule is for (C{name@domain}): a bare
        application name target is stored expanded as C{app#name@domain};
        without it the name is stored bare (the engine expands it when
        the call arrives).
    @return: the rule as the directory stores it, C{[priority, name,
        conditions, actions]} (data-format arrays are lists; the priority
        is a numeric string, as the cPanel adaptor and C{initialize}
        write it).
    @raise ValueError: for an unknown kind, a missing target or a bad
        C{seconds}.
    """
    key = "".join(kind.lower().lstrip("#").split())
    preset = PRESETS.get(key)
    if preset is None:
        raise ValueError("unknown preset %r (one of %s)" % (kind, ", ".join(PRESETS)))
    name, action, stage, defaultTarget = preset
    if stage is None:
        if isinstance(seconds, bool) or not isinstance(seconds, int) \
                or not 0 <= seconds <= MAX_PENDING:
            raise ValueError("preset %r needs seconds from 0 to %d" % (kind, MAX_PENDING))
        stage = IMMEDIATE - seconds
    elif seconds is not None:
        raise ValueError("preset %r takes no seconds" % (kind,))
    target = target or defaultTarget
    if not target or not isinstance(target, str):
        raise ValueError("preset %r needs a target" % (kind,))
    targets = [expandTarget(t, account) for t in target.split(",") if t.strip()]
    return [
        str(stage * 100 + PRESET_PRIORITY),
        name,
        [["Method", "is", "INVITE"]],
        [[action, ",".join(targets)]],
    ]
