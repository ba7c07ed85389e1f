# -*- test-case-name: tests.queue.test_local -*-
"""
The LOCAL delivery channel: domain and account mail rules, then the
account's mailboxes.

One job is one message for one account (the logical queue
C{account@domain}).  For each recipient the Domain and Account rules run
(rules.md 2.3, through L{cgpro.queue.rules}), and their C{Outcome} is
carried out:

  - C{reject}: the recipient fails (550 with the rule's text, a DSN);
  - C{redirect}, C{forward}, C{mirror}: copies go to the addresses, with
    C{Delivered-To: <account>} on top; they keep the original envelope
    sender, except C{forward}, which the account sends.  Whether a copy
    is also stored here is the outcome's C{store} (the engine empties it
    for redirect and forward).  A message whose C{Delivered-To} already
    names the account is not copied again (a forwarding loop); if
    nothing would be stored either, the recipient fails with 5.4.6;
  - C{discard}: nothing is stored;
  - C{replies}: automatic replies from the account, with the null
    envelope sender and C{Auto-Submitted: auto-replied}, never to a null
    sender, to list or bulk mail, to automatic mail, nor twice to one
    address within the account's C{VacationReplyPeriod};
  - C{remember}: addresses kept with a timestamp in the account's
    L{cgpro.queue.lists.AddressLists}, which answer the rules'
    C{#List} conditions;
  - C{execute}: the program gets the message on its standard input and
    runs on its own; its failure is logged, not reported;
  - C{headerEdits} (or C{addHeaders}), C{store}: the stored copy gets the
    header changes (under a C{Return-Path} with the envelope sender, RFC
    5321 4.4), in each mailbox named with its flags (a missing mailbox
    means INBOX).

Quota: when the store tells an account's usage (C{store.accountUsage(
account)} -> C{(bytes, messages)}, as L{cgpro.store.maildir.MailStore}
does, or C{store.accountSize(account)} -> bytes), a message that would take
the account over its C{MaxAccountSize} fails with 552 5.2.2; a store that
tells neither is not checked.

Without domain and account rules (the common case) no rule message is
built at all: the message goes straight into INBOX.

Each store uses the delivery id C{<queue id>.<recipient index>}, which
the store keeps, so a job repeated after a crash does not store twice;
when a recovered job finds its delivery already in the store, its side
effects (copies, replies) are not repeated either.
"""

import email.utils
from collections import OrderedDict

from twisted.internet.defer import DeferredList, maybeDeferred
from twisted.logger import Logger
from zope.interface import implementer

from cgpro.core import dataformat
from cgpro.core.envelope import DEFERRED, DELIVERED, FAILED, Envelope, RecipientResult
from cgpro.core.errors import CLIError
from cgpro.core.interfaces import IDeliveryChannel
from cgpro.queue import actions
from cgpro.queue.lists import AUTO_REPLIED, DEFAULT_PERIOD, AddressLists
from cgpro.queue.spool import toDatetime

log = Logger()


class Outcome:
    """
    What happens to a message without rules: it is stored in INBOX.
    (The attributes of the rules engine's C{Outcome}.)
    """

    store = (("INBOX", ()),)
    discard = False
    reject = None
    redirect = ()
    forward = ()
    mirror = ()
    replies = ()
    addHeaders = ()
    flags = ()
    execute = ()
    remember = ()
    stopped = False


DEFAULT_OUTCOME = Outcome()


def applyMailRules(ruleSets, data, envelope, recipient, account, now, inList, allowed):
    """
    The default rules hook: the engine of L{cgpro.queue.rules}, imported
    when first needed.

    @return: its C{Outcome}.
    """
    from cgpro.queue import rules as engine

    message = engine.RuleMessage.fromBytes(data, envelope, recipient, account=account,
                                           now=now, inList=inList)
    outcome = engine.applyMailRules(ruleSets, message, allowed=allowed)
    # kept for composing replies with the engine's buildReply
    outcome.message = message
    return outcome


def _period(settings):
    try:
        return dataformat.parseDuration(settings.get("VacationReplyPeriod", DEFAULT_PERIOD))
    except ValueError:
        return dataformat.parseDuration(DEFAULT_PERIOD)


@implementer(IDeliveryChannel)
class LocalChannel:
    """
    Delivers LOCAL jobs into the L{cgpro.core.interfaces.IMailStore}.

    @ivar lists: the accounts' L{AddressLists}.
    """

    name = "LOCAL"

    #: A repeated job stores nothing twice (delivery ids) and repeats no
    #: copies or replies (L{_Delivery._alreadyDone}), so the queue need not
    #: journal a message this channel finishes (L{MessageQueue._results}).
    idempotent = True

    def __init__(self, store, directory, queue, clock=None, mailRules=None, reactor=None,
                 writer=None):
        """
        @param store: the L{cgpro.core.interfaces.IMailStore}.
        @param directory: the L{cgpro.core.interfaces.IDirectory}.
        @param queue: the L{cgpro.core.interfaces.IMessageQueue} copies and
            replies are submitted to.
        @param clock: the reactor by default.
        @param mailRules: C{mailRules(ruleSets, data, envelope, recipient,
            account, now, inList, allowed)} -> C{Outcome}; default
            L{applyMailRules}.
        @param reactor: runs C{Execute} programs (default: C{clock}).
        @param writer: for the address lists (default: the queue's).
        """
        if clock is None:
            from twisted.internet import reactor as clock
        self.store = store
        self.directory = directory
        self.queue = queue
        self.clock = clock
        self.reactor = reactor if reactor is not None else clock
        self.mailRules = mailRules if mailRules is not None else applyMailRules
        self.lists = AddressLists(directory, writer if writer is not None else queue.writer, clock)
        usage = getattr(store, "accountUsage", None)
        if usage is not None:
            self._accountSize = lambda account: usage(account)[0]
        else:
            self._accountSize = getattr(store, "accountSize", None)

    def deliver(self, job):
        """
        Deliver one message to the recipients of one account.

        @return: L{Deferred} firing with a L{RecipientResult} per recipient.
        """
        account = job.queue
        try:
            settings = self.directory.effectiveAccountSettings(account)
        except CLIError:
            return maybeDeferred(lambda: [
                RecipientResult(r.index, FAILED, 550, "5.1.1 unknown user")
                for r, _ in job.recipients])
        data = job.readMessage()
        quota = self._overQuota(account, settings, len(data))
        if quota:
            return maybeDeferred(lambda: [
                RecipientResult(r.index, FAILED, 552, quota) for r, _ in job.recipients])
        return _Delivery(self, job, account, settings, data).run()

    def _overQuota(self, account, settings, size):
        """
        @return: the failure text when the message does not fit under
            C{MaxAccountSize}, else C{None} (also when the store does not
            tell its usage).
        """
        if self._accountSize is None:
            return None
        try:
            limit = dataformat.parseSize(settings.get("MaxAccountSize"))
        except ValueError:
            return None
        if limit is None:
            return None
        try:
            used = self._accountSize(account)
        except Exception:
            return None
        if used is not None and used + size > limit:
            return "5.2.2 mailbox full"
        return None

    def ruleSets(self, account):
        """
        @return: C{[("domain", rules), ("account", rules)]}, or C{None} when
            both are empty.
        """
        domain = account.partition("@")[2]
        try:
            domainRules = self.directory.getDomainPart(domain, "MailRules")
        except (CLIError, KeyError):
            domainRules = []
        try:
            accountRules = self.directory.getAccountPart(account, "MailRules")
        except (CLIError, KeyError):
            accountRules = []
        if not domainRules and not accountRules:
            return None
        return [("domain", domainRules), ("account", accountRules)]


class _Delivery:
    """
    One job under way: rule outcomes per recipient, then the stores.
    """

    def __init__(self, channel, job, account, settings, data):
        self.channel = channel
        self.job = job
        self.account = account
        self.settings = settings
        self.data = data
        self.results = {}
        self.stores = OrderedDict()     # (mailbox, headers) -> [data, flags, index, [indices]]
        self.work = []
        self.period = _period(settings)
        self._fields = None

    @property
    def fields(self):
        if self._fields is None:
            self._fields = actions.headerFields(self.data)
        return self._fields

    def run(self):
        channel = self.channel
        ruleSets = channel.ruleSets(self.account)
        self.returnPath = ("Return-Path: <%s>\r\n" % (self.job.envelope.sender,)).encode("utf-8")
        for recipient, _route in self.job.recipients:
            outcome = DEFAULT_OUTCOME
            if ruleSets is not None:
                outcome = self._rules(ruleSets, recipient)
            try:
                self._act(recipient, outcome)
            except Exception:
                log.failure("LOCAL delivery to {account}: rule actions failed",
                            account=self.account)
                self.results[recipient.index] = RecipientResult(
                    recipient.index, DEFERRED, 451, "4.3.0 rule actions failed")
        deferreds = []
        keys = []
        store = channel.store
        for key, (data, flags, index, _indices) in self.stores.items():
            deliveryId = "%s.%d" % (self.job.messageId, index)
            if self._storedBefore(key[0], deliveryId):
                continue
            keys.append(key)
            deferreds.append(maybeDeferred(store.deliver, self.account, key[0], data,
                                           tuple(flags), deliveryId=deliveryId))
        deferreds.extend(self.work)
        d = DeferredList(deferreds, consumeErrors=True)
        d.addCallback(self._stored, keys)
        return d

    def _rules(self, ruleSets, recipient):
        channel = self.channel
        account = self.account
        lists = channel.lists
        period = self.period

        def inList(listName, address):
            return lists.contains(account, listName, address, period)

        try:
            outcome = channel.mailRules(ruleSets, self.data, self.job.envelope, recipient,
                                        account, toDatetime(channel.clock.seconds()), inList,
                                        self.settings.get("RulesAllowed", "Any"))
        except Exception:
            log.failure("LOCAL delivery to {account}: mail rules failed; storing in INBOX",
                        account=account)
            return DEFAULT_OUTCOME
        for problem in getattr(outcome, "errors", None) or ():
            log.warn("LOCAL delivery to {account}: {problem}", account=account, problem=problem)
        return outcome

    def _act(self, recipient, outcome):
        index = recipient.index
        reject = getattr(outcome, "reject", None)
        if reject:
            self.results[index] = RecipientResult(index, FAILED, 550, str(reject))
            return
        edited, editKey = actions.editHeaders(self.data, outcome)
        store = getattr(outcome, "store", None)
        targets = list(DEFAULT_OUTCOME.store if store is None else store)
        if getattr(outcome, "discard", False):
            targets = []
        targets = self._mailboxes(targets)
        copies = [(list(getattr(outcome, name, None) or ()), sender) for name, sender in
                  (("redirect", None), ("forward", self.account), ("mirror", None))]
        if any(addresses for addresses, _ in copies) and self._looping():
            log.warn("LOCAL delivery to {account}: mail forwarding loop, no copies sent",
                     account=self.account)
            copies = []
            if not targets:
                self.results[index] = RecipientResult(
                    index, FAILED, 554, "5.4.6 mail forwarding loop for %s" % (self.account,))
                return
        if not self._alreadyDone(index, targets):
            self._sideEffects(outcome, copies, edited)
        if not targets:
            moved = copies and (copies[0][0] or copies[1][0])
            self.results[index] = RecipientResult(
                index, DELIVERED, 250, "2.0.0 redirected" if moved else "2.0.0 discarded")
            return
        stored = self.returnPath + edited
        for mailbox, flags in targets:
            key = (mailbox, editKey)
            entry = self.stores.get(key)
            if entry is None:
                entry = self.stores[key] = [stored, set(), index, []]
            entry[1].update(flags or ())
            entry[3].append(index)

    def _mailboxes(self, targets):
        """
        Map mailbox names to existing mailboxes (a missing one: INBOX).
        """
        result = []
        store = self.channel.store
        for target in targets:
            if isinstance(target, str):
                mailbox, flags = target, ()
            else:
                mailbox, flags = target[0], target[1] if len(target) > 1 else ()
            if mailbox.upper() == "INBOX":
                mailbox = "INBOX"
            elif not store.mailboxExists(self.account, mailbox):
                log.info("LOCAL delivery to {account}: no mailbox {mailbox}; using INBOX",
                         account=self.account, mailbox=mailbox)
                mailbox = "INBOX"
            result.append((mailbox, tuple(flags or ())))
        return result

    def _looping(self):
        """
        Whether this message already passed through this account's copy
        actions (its C{Delivered-To} header names the account).
        """
        account = self.account.lower()
        return any(name == "delivered-to" and value.strip().strip("<>").lower() == account
                   for name, value in self.fields)

    def _alreadyDone(self, index, targets):
        """
        Whether a recovered job's delivery was made before the crash (its
        side effects then were too).
        """
        if not self.job.recovered or not targets:
            return False
        deliveryId = "%s.%d" % (self.job.messageId, index)
        try:
            return bool(self.channel.store.hasDelivery(self.account, targets[0][0], deliveryId))
        except Exception:
            return False

    def _storedBefore(self, mailbox, deliveryId):
        """
        Whether a recovered job already stored this copy before the crash.

        The store's own check in C{deliver} knows only the deliveries in
        the journal's last block; a job recovered a second time (a kill
        during recovery) may have been stored long before that, so the
        file names are searched too.
        """
        if not self.job.recovered:
            return False
        try:
            return bool(self.channel.store.hasDelivery(self.account, mailbox, deliveryId))
        except Exception:
            return False

    def _sideEffects(self, outcome, copies, edited):
        channel = self.channel
        envelope = self.job.envelope
        queue = channel.queue
        if any(addresses for addresses, _ in copies):
            copy = ("Delivered-To: %s\r\n" % (self.account,)).encode("utf-8") + edited
            for addresses, sender in copies:
                if addresses:
                    self.work.append(_submitCopy(queue, envelope, copy, addresses, sender))
        for command in getattr(outcome, "execute", None) or ():
            actions.execute(channel.reactor, channel.clock, command, edited,
                            getattr(getattr(queue, "settings", None), "executeTimeout", 60))
        remember = list(getattr(outcome, "remember", None) or ())
        for toAddress, text in getattr(outcome, "replies", None) or ():
            if self._reply(outcome, toAddress, text):
                remember.append((AUTO_REPLIED, toAddress))
        if remember:
            self.work.append(channel.lists.remember(self.account, remember, self.period))

    def _reply(self, outcome, toAddress, text):
        """
        Send one automatic reply, unless RFC 3834 says not to.

        @return: whether it was sent.
        """
        channel = self.channel
        envelope = self.job.envelope
        toAddress = (toAddress or "").strip().strip("<>")
        if not toAddress or toAddress.lower() == self.account.lower():
            return False
        if actions.isAutomatic(self.data, envelope.sender, self.fields):
            return False
        if channel.lists.contains(self.account, AUTO_REPLIED, toAddress, self.period):
            return False
        realName = self.settings.get("RealName", "")
        message = getattr(outcome, "message", None)
        if message is not None:
            from cgpro.queue.rules import buildReply

            author = email.utils.formataddr((realName, self.account)) if realName \
                else self.account
            reply = buildReply(message, toAddress, text, fromAddress=author)
        else:
            reply = actions.buildReply(text, self.data, self.account, realName, toAddress,
                                       channel.clock)
        replyEnvelope = Envelope(sender="", protocol="LOCAL", trusted=True)
        replyEnvelope.addRecipient(toAddress)
        self.work.append(channel.queue.submit(replyEnvelope, reply))
        return True

    def _stored(self, outcomes, keys):
        results = self.results
        for key, (ok, value) in zip(keys, outcomes):
            indices = self.stores[key][3]
            if ok:
                continue
            log.failure("LOCAL delivery to {account} mailbox {mailbox} failed", value,
                        account=self.account, mailbox=key[0])
            for index in indices:
                results[index] = RecipientResult(index, DEFERRED, 451,
                                                 "4.2.0 mailbox temporarily unavailable")
        for ok, value in outcomes[len(keys):]:
            if not ok:
                log.failure("LOCAL delivery to {account}: a rule action failed", value,
                            account=self.account)
        for recipient, _route in self.job.recipients:
            if recipient.index not in results:
                results[recipient.index] = RecipientResult(recipient.index, DELIVERED, 250,
                                                           "2.0.0 delivered")
        return [results[r.index] for r, _ in self.job.recipients]


def _submitCopy(queue, envelope, data, addresses, sender=None):
    copy = Envelope(sender=envelope.sender if sender is None else sender,
                    protocol="LOCAL", trusted=True)
    for address in addresses:
        copy.addRecipient(address)
    return queue.submit(copy, data)
