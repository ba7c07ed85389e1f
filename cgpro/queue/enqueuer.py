# -*- test-case-name: tests.queue.test_queue -*-
"""
The Enqueuer's server mail rules (rules.md section 1): run once per
message after it is durable and before its recipients are routed.

The outcome is carried out here: C{Reject with} fails every recipient
(with a DSN), C{Discard} drops them silently, C{Redirect to} and
C{Forward to} send the message elsewhere instead, C{Mirror to} sends a
copy as well, C{Add Header} / C{Tag Subject} rewrite the queued message,
C{Reply with} answers from the postmaster, C{Execute} runs a program.
That the rules acted is journaled (C{{Event=Rules;}}), or recorded in the
rewritten envelope line (C{ServerRules=YES}), so a restart does not act
twice.  Messages the rules generate are queued with C{ServerRules=YES}
too, so a rule that copies mail cannot loop.
"""

from twisted.internet.defer import FirstError, gatherResults, succeed
from twisted.logger import Logger

from cgpro.core.envelope import DELIVERED, FAILED, Envelope, RecipientResult
from cgpro.queue import actions
from cgpro.queue.state import ACTIVE, PENDING

log = Logger()


def applyServerRules(rules, envelope, data):
    """
    The default server-rules hook: the rules engine of
    L{cgpro.queue.rules}, imported when first needed.

    @return: its C{Outcome}, or C{None} when the engine is missing.
    """
    try:
        from cgpro.queue import rules as engine
    except ImportError as e:
        log.error("server mail rules not applied: no rules engine ({err})", err=e)
        return None
    message = engine.RuleMessage.fromBytes(data, envelope, None)
    outcome = engine.applyServerRules(rules, message)
    for problem in outcome.errors:
        log.warn("server mail rules: {problem}", problem=problem)
    outcome.message = message
    return outcome


def _isTrivial(outcome):
    """
    Whether a server rules outcome leaves the message as it is (nothing
    to do, nothing to journal).
    """
    if outcome is None:
        return True
    if getattr(outcome, "store", None) == []:
        return False
    return not any(getattr(outcome, name, None) for name in (
        "discard", "reject", "redirect", "forward", "mirror", "replies", "addHeaders",
        "headerEdits", "execute"))


class ServerRulesMixin:
    """
    Server rules for L{cgpro.queue.queue.MessageQueue}.
    """

    def _serverRuleSet(self):
        try:
            return self.directory.getServerDict("Rules").get("MailRules") or []
        except Exception:
            return []

    def _runServerRules(self, msg, rules):
        data = self._data(msg)
        try:
            outcome = self.serverRules(rules, msg.envelope, data)
        except Exception:
            log.failure("queue message {id}: server rules failed", id=msg.id)
            outcome = None
        msg.rulesDone = True
        if _isTrivial(outcome):
            self._begin(msg)
            return
        msg.busy += 1
        envelope = msg.envelope
        copy, edits = actions.editHeaders(data, outcome)
        work = []
        for attr in ("redirect", "forward", "mirror"):
            addresses = getattr(outcome, attr, None) or ()
            if addresses:
                work.append(self._submitCopy(envelope, copy, addresses))
        for command in getattr(outcome, "execute", None) or ():
            actions.execute(self.reactor, self.clock, command, copy,
                            self.settings.executeTimeout)
        for toAddress, text in getattr(outcome, "replies", None) or ():
            if toAddress and not actions.isAutomatic(data, envelope.sender):
                work.append(self.submitGenerated(*self._serverReply(outcome, data, toAddress,
                                                                    text)))
        finals = []
        reject = getattr(outcome, "reject", None)
        pending = [r for r in msg.rcpts if r.state == PENDING]
        moved = getattr(outcome, "redirect", None) or getattr(outcome, "forward", None)
        if reject:
            finals = [(r, RecipientResult(r.recipient.index, FAILED, 550, str(reject)))
                      for r in pending]
        elif moved or getattr(outcome, "discard", None) or getattr(outcome, "store", None) == []:
            text = "2.0.0 redirected by server rules" if moved \
                else "2.0.0 discarded by server rules"
            finals = [(r, RecipientResult(r.recipient.index, DELIVERED, 250, text))
                      for r in pending]
        elif edits:
            record = msg.envelope.toDict()
            record["ServerRules"] = "YES"
            d = self.spool.rewrite(msg.id, record, copy)

            def rewritten(offset):
                msg.offset = offset
                msg.size = len(copy)
                msg.data = copy
            work.append(d.addCallback(rewritten))

        def acted(_):
            d = self._journal(msg, [{"Event": "Rules"}])
            return d

        def ready(_):
            msg.busy -= 1
            for r, _result in finals:
                r.state = ACTIVE
            if finals:
                self._results(msg, finals)
            self._begin(msg)

        def failed(failure):
            # A copy or the journal could not be written: act on nothing
            # (the recipients must not count as redirected when the copy
            # is not queued) and run the rules again later.
            msg.busy -= 1
            msg.rulesDone = False
            log.failure("queue message {id}: server rule actions failed", failure, id=msg.id)
            self.clock.callLater(self.settings.retryInterval(1), self._rulesAgain, msg)

        d = _gather(work)
        d.addCallback(acted)
        d.addCallbacks(ready, failed)

    def _rulesAgain(self, msg):
        if self.started and self._messages.get(msg.id) is msg:
            self._begin(msg)

    def _serverReply(self, outcome, data, toAddress, text):
        """
        @return: C{(envelope, data)} of a server rule's automatic reply,
            from the postmaster, with the null envelope sender.
        """
        author = "postmaster@" + self.directory.mainDomain
        message = getattr(outcome, "message", None)
        if message is not None:
            from cgpro.queue.rules import buildReply

            reply = buildReply(message, toAddress, text, fromAddress=author)
        else:
            reply = actions.buildReply(text, data, author, "", toAddress, self.clock)
        replyEnvelope = Envelope(sender="", protocol="LOCAL", trusted=True)
        replyEnvelope.addRecipient(toAddress)
        return replyEnvelope, reply

    def _submitCopy(self, envelope, data, addresses, sender=None):
        """
        Queue a copy of a message for other addresses (redirect, forward,
        mirror); the copy keeps the original envelope sender unless told.
        """
        copy = Envelope(sender=envelope.sender if sender is None else sender,
                        protocol="LOCAL", trusted=True, ret=envelope.ret, envid=envelope.envid)
        for address in addresses:
            copy.addRecipient(address)
        return self.submitGenerated(copy, data)


def _gather(deferreds):
    """
    @return: a L{Deferred} firing once all of C{deferreds} have (failing
        with the first failure).
    """
    if not deferreds:
        return succeed(None)
    d = gatherResults(deferreds, consumeErrors=True)
    d.addErrback(lambda f: f.value.subFailure if f.check(FirstError) else f)
    return d
