# -*- test-case-name: tests.queue.test_queue -*-
"""
The durable message queue (issue 3, "The queue and the pipeline").

A message is acknowledged only once its C{Queue/<id>.msg} file is durable
(L{cgpro.queue.spool}).  Then the Enqueuer runs the server mail rules,
the Router resolves every recipient, and the recipients are grouped by
C{(module, queue)} into logical queues (L{cgpro.queue.logical}), from
which the registered delivery channels (LOCAL, SMTP, LIST ...) take
L{DeliveryJob}s.

Exactly once.  Every final outcome of a recipient (delivered, failed,
discarded, expired) is appended to C{<id>.sta} and made durable before
anything follows from it (a DSN, the removal of the message); a deferred
attempt is appended too, with its retry time, so back-off and expiry
survive a restart.  After a crash the message is enqueued again and only
its recipients without a final record are delivered; a channel that was
interrupted between its own durable delivery and our journal append sees
C{job.recovered} and the mailbox store drops the repeated delivery id
(which is also why the last outcomes of an idempotent channel need no
record: the message is removed right after them).

Journal records (one data-format dictionary per line)::

    {Index=#0;Status=delivered;Code=#250;Text="...";Remote=...;Time=#T...;}
    {Index=#1;Status=deferred;Code=#451;Text="...";Attempts=#2;Retry=#T...;}
    {Event=Rules;}        server rules acted (not run again)
    {Event=DelayNotice;}  the "delayed" DSN went out
    {Event=Reported;}     the final DSN went out

Cost.  The common message (one LOCAL attempt, every recipient delivered,
no rules, no DSN) costs one write in the writer's group commit, its
C{.msg}: outcomes of an idempotent channel that finish a message are not
journaled (see L{MessageQueue._results}).  The message bytes stay in
memory from commit to the end of the first attempt so channels do not
read them back, and a finished message's files are removed off the
reactor thread without folder flushes (L{cgpro.queue.spool.Spool.remove}).
Server rules (L{cgpro.queue.enqueuer}) and the administrators' views
(L{cgpro.queue.admin}) live in mixins of their own.
"""

from collections import OrderedDict

from twisted.application import service
from twisted.internet.defer import Deferred, fail, maybeDeferred, succeed
from twisted.logger import Logger
from zope.interface import implementer

from cgpro.core.envelope import DEFERRED, DELIVERED, FAILED, RecipientResult
from cgpro.core.interfaces import IMessageQueue
from cgpro.queue import dsn
from cgpro.queue.admin import QueueAdminMixin
from cgpro.queue.config import QueueSettings
from cgpro.queue.enqueuer import ServerRulesMixin, applyServerRules
from cgpro.queue.logical import Scheduler
from cgpro.queue.spool import Spool, toDatetime, toSeconds
from cgpro.queue.state import ACTIVE, DONE, PENDING, WAITING, Message, QueueJob

log = Logger()

#: How many finished messages L{MessageQueue.whenDone} still answers for.
RECENT = 10000


@implementer(IMessageQueue)
class MessageQueue(ServerRulesMixin, QueueAdminMixin, service.Service):
    """
    The queue: receives, routes, schedules, retries, reports.

    @ivar stats: counters for monitoring: C{accepted}, C{delivered},
        C{failed}, C{deferred} (attempts), C{expired}, C{discarded},
        C{reports} (DSNs sent), C{bounced} (those of them that return a
        message for failed recipients), C{recovered} (messages found at
        start).
    @ivar deliveredBy: recipients delivered, by channel (C{LOCAL},
        C{SMTP}, C{LIST} ...).
    @ivar settings: the L{QueueSettings} (C{QUEUE} module).
    @ivar writer: the durable writer (channels use it for their own files).
    """

    name = "queue"

    def __init__(self, base, writer, router, directory, clock=None, serverRules=None,
                 reactor=None):
        """
        @param base: the base folder; messages live in C{base/Queue}.
        @param writer: the server's L{cgpro.core.files.DurableWriter}.
        @param router: the L{cgpro.core.router.Router}.
        @param directory: the L{cgpro.core.interfaces.IDirectory} (server
            rules, the Main Domain, the C{QUEUE} module settings).
        @param clock: C{seconds()} and C{callLater()}; the reactor by default.
        @param serverRules: C{serverRules(rules, envelope, data)} ->
            C{Outcome} or C{None}; default L{applyServerRules}.
        @param reactor: for L{actions.execute} (defaults to C{clock}).
        """
        if clock is None:
            from twisted.internet import reactor as clock
        self.base = base
        self.writer = writer
        self.router = router
        self.directory = directory
        self.clock = clock
        self.reactor = reactor if reactor is not None else clock
        self.serverRules = serverRules if serverRules is not None else applyServerRules
        self.spool = Spool(base, writer, clock)
        self.settings = QueueSettings(directory, clock)
        self.settings.refresh(force=True)
        self.scheduler = Scheduler(self._startJob, self._moduleLimit, self._queueLimit)
        self._channels = {}
        self._messages = {}
        self._recent = OrderedDict()
        self._held = []
        self._jobs = set()
        self.started = False
        self.stats = dict.fromkeys(
            ("accepted", "delivered", "failed", "deferred", "expired", "discarded", "reports",
             "bounced", "recovered"), 0)
        self.deliveredBy = {}
        self._catalogs = []

    # -- IMessageQueue ----------------------------------------------------

    def receive(self):
        """
        @return: an L{cgpro.queue.spool.IncomingMessage}.
        """
        return self.spool.incoming(self._accepted)

    def submit(self, envelope, data):
        """
        Queue a complete message (notifications, replies, forwards).

        @return: L{Deferred} firing with the queue id once durable.
        """
        incoming = self.receive()
        incoming.write(data)
        return incoming.commit(envelope)

    def submitGenerated(self, envelope, data):
        """
        Queue a message made by a rule action of this server (a copy, a
        reply): like L{submit}, but server rules are not run on it again,
        so that a server rule that copies mail cannot loop.

        @return: L{Deferred} firing with the queue id once durable.
        """
        incoming = self.receive()
        incoming.write(data)
        return incoming.commit(envelope, {"ServerRules": "YES"})

    def whenDone(self, messageId):
        """
        @return: L{Deferred} firing with one L{RecipientResult} per
            recipient, in envelope order: the final outcome, or the
            outcome of the first attempt when that was deferred (the queue
            keeps retrying those).
        """
        msg = self._messages.get(messageId)
        if msg is None:
            results = self._recent.get(messageId)
            if results is None:
                return fail(KeyError("no queued message %s" % (messageId,)))
            return succeed(list(results))
        if all(r.first is not None for r in msg.rcpts):
            return succeed([r.first for r in msg.rcpts])
        d = Deferred()
        msg.waiters.append(d)
        return d

    def registerChannel(self, channel):
        """
        Add an L{IDeliveryChannel}; recipients held because its module had
        no channel are retried at once.
        """
        self._channels[channel.name.upper()] = channel
        if self.started:
            self.release(channel.name.upper())

    # -- service ------------------------------------------------------------

    def start(self):
        """
        Recover the queue folder and start delivering: every C{.msg} is
        enqueued again honouring its journal.
        """
        if self.started:
            return
        self.started = True
        self.settings.refresh(force=True)
        self.scheduler.paused = False
        for queued in self.spool.recover():
            if queued.id in self._messages:
                continue
            self.stats["recovered"] += 1
            self._recover(queued)
        held, self._held = self._held, []
        for msg in held:
            self._begin(msg)
        for msg in list(self._messages.values()):
            # a queue started again after stop(): timers were cancelled,
            # and recipients released meanwhile wait to be routed (unless
            # server rule actions are under way: they route when done)
            if not msg.busy:
                self._dispatch(msg, [r for r in msg.rcpts if r.state == PENDING])
                self._retry(msg)
            else:
                self._schedule(msg)
        self.scheduler.pumpAll()

    def stop(self):
        """
        Stop starting jobs and retry timers.  Messages stay in the folder.

        @return: L{Deferred} firing once the jobs under way have reported
            (or after the C{StopTimeout} setting).
        """
        self.started = False
        self.scheduler.paused = True
        for msg in self._messages.values():
            if msg.timer is not None and msg.timer.active():
                msg.timer.cancel()
            msg.timer = None
        if not self._jobs:
            return succeed(None)
        done = Deferred()
        pending = set(self._jobs)

        def one(_, d):
            pending.discard(d)
            if not pending and not done.called:
                timer.cancel()
                done.callback(None)
            return _

        timer = self.clock.callLater(self.settings.stopTimeout,
                                     lambda: done.called or done.callback(None))
        for d in list(pending):
            d.addBoth(one, d)
        return done

    def startService(self):
        service.Service.startService(self)
        self.start()

    def stopService(self):
        service.Service.stopService(self)
        return self.stop()

    # -- receiving ----------------------------------------------------------

    def _accepted(self, id, envelope, record, data, offset, size):
        """
        A message is durable: register it and start its processing.
        Nothing here may fail the commit, which has already happened.
        """
        self.stats["accepted"] += 1
        arrival = toSeconds(envelope.received)
        msg = Message(id, envelope, record, offset, size, data,
                      arrival if arrival is not None else self.clock.seconds())
        msg.rulesDone = record.get("ServerRules") == "YES"
        self._messages[id] = msg
        if not self.started:
            self._held.append(msg)
            return id
        try:
            self._begin(msg)
        except Exception:
            log.failure("queue message {id}: processing failed", id=id)
        return id

    def _recover(self, queued):
        msg = Message(queued.id, queued.envelope, queued.record, queued.offset, queued.size,
                      None, toSeconds(queued.envelope.received) or self.clock.seconds())
        msg.recovered = True
        msg.journaled = True
        msg.tornJournal = queued.tornJournal
        msg.rulesDone = queued.record.get("ServerRules") == "YES"
        now = self.clock.seconds()
        for record in queued.journal:
            event = record.get("Event")
            if event is not None:
                if event == "Rules":
                    msg.rulesDone = True
                elif event == "DelayNotice":
                    msg.delayNotified = True
                elif event == "Reported":
                    msg.reported = True
                continue
            try:
                r = msg.rcpts[int(record["Index"])]
            except (KeyError, ValueError, TypeError, IndexError):
                continue
            result = RecipientResult(r.recipient.index, record.get("Status", DEFERRED),
                                     int(record.get("Code", 451)), record.get("Text", ""),
                                     record.get("Remote"))
            if r.first is None:
                r.first = result
            r.last = result
            if result.status in (DELIVERED, FAILED):
                r.state = DONE
            elif r.state != DONE:
                r.attempts = int(record.get("Attempts", r.attempts + 1))
                r.retryAt = toSeconds(record.get("Retry")) or now
                r.state = WAITING if r.retryAt > now else PENDING
        self._messages[msg.id] = msg
        self._begin(msg)

    def _begin(self, msg):
        """
        Server rules (once), then routing of the pending recipients.
        """
        if not msg.rulesDone:
            rules = self._serverRuleSet()
            if rules:
                self._runServerRules(msg, rules)
                return
        self._dispatch(msg, [r for r in msg.rcpts if r.state == PENDING])
        self._schedule(msg)
        self._checkFirst(msg)
        self._checkDone(msg)

    # -- routing and jobs -----------------------------------------------------

    def _data(self, msg):
        if msg.data is not None:
            return msg.data
        return self.spool.readData(msg.id, msg.offset)

    def _dispatch(self, msg, rcpts):
        """
        Route recipients and put them into their logical queues.
        """
        if not rcpts:
            return
        if not self.started:
            for r in rcpts:
                r.state = PENDING
            return
        finals = []
        groups = {}
        trusted = msg.envelope.trusted
        for r in rcpts:
            try:
                route = self.router.route(r.recipient.address, "MAIL", trusted=trusted)
            except Exception as e:
                log.warn("queue message {id}: cannot route {address!r}: {err}",
                         id=msg.id, address=r.recipient.address, err=e)
                route = None
            r.state = ACTIVE
            index = r.recipient.index
            if route is None or route.module == "ERROR":
                text = route.address if route is not None else "bad address"
                finals.append((r, RecipientResult(index, FAILED, 550, _errorText(text))))
            elif route.module == "NULL":
                self.stats["discarded"] += 1
                finals.append((r, RecipientResult(index, DELIVERED, 250, "2.0.0 discarded")))
            else:
                r.route = route
                groups.setdefault((route.module, route.queue), []).append(r)
        if finals:
            self._results(msg, finals)
        for (module, queue), group in groups.items():
            if module in self._channels:
                self.scheduler.add(module, queue, (msg, group))
            else:
                text = "4.3.2 module %s not available" % (module,)
                self._results(msg, [(r, RecipientResult(r.recipient.index, DEFERRED, 451, text))
                                    for r in group], persist=False)

    def _moduleLimit(self, module):
        return self.settings.refresh().moduleLimit(module)

    def _queueLimit(self, module):
        return self.settings.queueLimit(module)

    def _startJob(self, lq, entry):
        msg, rcpts = entry
        channel = self._channels.get(lq.module)
        msg.busy += 1
        if msg.rejectText is not None or channel is None:
            text = msg.rejectText or "4.3.2 module %s not available" % (lq.module,)
            status = FAILED if msg.rejectText is not None else DEFERRED
            code = 550 if msg.rejectText is not None else 451
            results = [RecipientResult(r.recipient.index, status, code, text) for r in rcpts]
            d = succeed(results)
        else:
            job = QueueJob(msg.id, msg.envelope, lq.name, [(r.recipient, r.route) for r in rcpts],
                           self.spool.msgPath(msg.id), msg.offset, msg.size, msg.recovered,
                           data=msg.data)
            d = maybeDeferred(channel.deliver, job)
        self._jobs.add(d)
        d.addCallbacks(self._jobDone, self._jobFailed, callbackArgs=(lq, msg, rcpts, d),
                       errbackArgs=(lq, msg, rcpts, d))

    def _jobFailed(self, failure, lq, msg, rcpts, d):
        log.failure("queue message {id}: {module} channel failed", failure, id=msg.id,
                    module=lq.module)
        results = [RecipientResult(r.recipient.index, DEFERRED, 451,
                                   "4.3.0 internal error in module %s" % (lq.module,))
                   for r in rcpts]
        return self._jobDone(results, lq, msg, rcpts, d)

    def _jobDone(self, results, lq, msg, rcpts, d):
        self._jobs.discard(d)
        msg.busy -= 1
        byIndex = {}
        for result in results or ():
            byIndex[result.index] = result
        pairs = []
        for r in rcpts:
            result = byIndex.get(r.recipient.index)
            if result is None:
                result = RecipientResult(r.recipient.index, DEFERRED, 451,
                                         "4.3.0 no outcome from module %s" % (lq.module,))
            pairs.append((r, result))
        try:
            self._results(msg, pairs,
                          idempotent=getattr(self._channels.get(lq.module), "idempotent", False))
        except Exception:
            log.failure("queue message {id}: recording results failed", id=msg.id)
        self.scheduler.finished(lq)

    # -- outcomes ---------------------------------------------------------------

    def _journal(self, msg, records):
        newLine, msg.tornJournal = msg.tornJournal, False
        msg.journaled = True
        return self.spool.appendJournal(msg.id, records, newLine)

    def _results(self, msg, pairs, persist=True, idempotent=False):
        """
        Record outcomes: finals (and, with C{persist}, deferrals) go to the
        journal first; the state changes once the journal is durable.

        @param idempotent: the outcomes come from a channel whose
            deliveries are idempotent (L{cgpro.queue.local.LocalChannel}:
            the store drops a repeated delivery id).  When such outcomes
            finish the message with nothing to report, the journal append
            is skipped: after a crash the message is only offered to the
            channel again, which delivers nothing twice.  This saves a
            file, a write and an unlink for most messages.
        """
        now = self.clock.seconds()
        settings = self.settings.refresh()
        expireAt = msg.arrival + settings.expire if settings.expire is not None else None
        finals = []
        deferred = []
        for r, result in pairs:
            if result.status in (DELIVERED, FAILED):
                finals.append((r, result))
                continue
            if msg.rejectText is not None:
                finals.append((r, RecipientResult(result.index, FAILED, 550, msg.rejectText)))
            elif expireAt is not None and now >= expireAt:
                self.stats["expired"] += 1
                finals.append((r, RecipientResult(
                    result.index, FAILED, result.code if result.code >= 400 else 451,
                    "4.4.7 delivery time expired (last error: %d %s)"
                    % (result.code, result.text), result.remoteHost)))
            else:
                attempts = r.attempts + 1
                retryAt = now + settings.retryInterval(attempts)
                if expireAt is not None:
                    retryAt = min(retryAt, expireAt)
                deferred.append((r, result, attempts, retryAt))
        if idempotent and not deferred and self._finishes(msg, finals):
            records = []
        else:
            records = _records(now, finals, deferred if persist else ())
        if not records:
            self._applied(msg, finals, deferred)
            return
        msg.busy += 1
        d = self._journal(msg, records)

        def written(_):
            msg.busy -= 1
            self._applied(msg, finals, deferred)

        def failed(failure):
            # The journal cannot be written (disk full, I/O error): do not
            # act on outcomes that are not durable; retry them later.
            msg.busy -= 1
            log.failure("queue message {id}: journal append failed", failure, id=msg.id)
            retry = self.clock.seconds() + settings.retryInterval(1)
            self._applied(msg, [], [(r, RecipientResult(res.index, DEFERRED, 451,
                                                        "4.3.0 queue journal not written"),
                                     r.attempts, retry)
                                    for r, res in finals] + deferred)

        d.addCallbacks(written, failed)

    def _finishes(self, msg, finals):
        """
        Whether delivered outcomes finish a message with nothing to report.
        """
        batch = {id(r) for r, _ in finals}
        return (all(res.status == DELIVERED and not dsn.wants(r.recipient, "SUCCESS")
                    for r, res in finals)
                and all(r.state == DONE for r in msg.rcpts if id(r) not in batch))

    def _applied(self, msg, finals, deferred):
        stats = self.stats
        deliveredBy = self.deliveredBy
        for r, result in finals:
            r.state = DONE
            r.last = result
            if r.first is None:
                r.first = result
            if result.status == DELIVERED:
                stats["delivered"] += 1
                if r.route is not None:
                    module = r.route.module
                    deliveredBy[module] = deliveredBy.get(module, 0) + 1
            else:
                stats["failed"] += 1
        for r, result, attempts, retryAt in deferred:
            r.state = WAITING
            r.last = result
            r.attempts = attempts
            r.retryAt = retryAt
            if r.first is None:
                r.first = result
            stats["deferred"] += 1
        if deferred:
            self._maybeDelayNotice(msg)
            self._schedule(msg)
        self._checkFirst(msg)
        self._checkDone(msg)

    def _checkFirst(self, msg):
        if msg.waiters and all(r.first is not None for r in msg.rcpts):
            waiters, msg.waiters = msg.waiters, []
            results = [r.first for r in msg.rcpts]
            for d in waiters:
                d.callback(list(results))

    # -- retries ------------------------------------------------------------------

    def _schedule(self, msg):
        """
        Keep one timer per message, at its earliest retry.
        """
        if not self.started:
            return
        times = [r.retryAt for r in msg.rcpts if r.state == WAITING]
        timer = msg.timer
        if not times:
            if timer is not None and timer.active():
                timer.cancel()
            msg.timer = None
            return
        when = min(times)
        if timer is not None and timer.active():
            if timer.getTime() <= when:
                return
            timer.cancel()
        msg.timer = self.clock.callLater(max(0, when - self.clock.seconds()), self._retry, msg)

    def _retry(self, msg):
        msg.timer = None
        if self._messages.get(msg.id) is not msg:
            return
        now = self.clock.seconds()
        due = [r for r in msg.rcpts if r.state == WAITING and r.retryAt <= now + 0.001]
        for r in due:
            r.state = PENDING
        self._dispatch(msg, due)
        self._schedule(msg)

    # -- reports and the end of a message ---------------------------------------------

    def _maybeDelayNotice(self, msg):
        settings = self.settings
        if (msg.delayNotified or settings.delayNotice is None or not msg.envelope.sender
                or self.clock.seconds() - msg.arrival < settings.delayNotice):
            return
        msg.delayNotified = True
        until = msg.arrival + settings.expire if settings.expire is not None else None
        entries = [dsn.ReportEntry(r.recipient, dsn.DELAYED, r.last.code, r.last.text,
                                   r.last.remoteHost, self.clock.seconds(), until)
                   for r in msg.rcpts if r.state == WAITING and dsn.wants(r.recipient, "DELAY")]
        if not entries:
            return
        msg.busy += 1
        d = self._report(msg, entries)
        d.addCallback(lambda _: self._journal(msg, [{"Event": "DelayNotice"}]))
        d.addErrback(lambda f: log.failure("queue message {id}: delay notice failed", f,
                                           id=msg.id))
        d.addCallback(lambda _: self._idle(msg))

    def _idle(self, msg):
        msg.busy -= 1
        self._checkDone(msg)

    def _report(self, msg, entries):
        """
        Send a DSN about C{msg} to its sender.
        """
        data = self._data(msg)
        report = dsn.makeReport(msg.envelope, data, entries, self.directory.mainDomain,
                                self.clock, self.settings.dsnMaxReturn, msg.arrival)
        self.stats["reports"] += 1
        return self.submit(dsn.reportEnvelope(msg.envelope), report)

    def _checkDone(self, msg):
        if msg.busy or msg.finishing or self._messages.get(msg.id) is not msg:
            return
        rcpts = msg.rcpts
        for r in rcpts:
            if r.state != DONE:
                if r.state == WAITING and not msg.busy:
                    # idle until the next attempt: do not keep the bytes
                    msg.data = None
                return
        msg.finishing = True
        entries = []
        if msg.envelope.sender and not msg.reported:
            for r in rcpts:
                last = r.last
                if last.status == FAILED and dsn.wants(r.recipient, "FAILURE"):
                    entries.append(dsn.ReportEntry(r.recipient, dsn.FAILED, last.code,
                                                   last.text, last.remoteHost))
                elif (last.status == DELIVERED and r.route is not None
                      and r.route.module == "LOCAL" and dsn.wants(r.recipient, "SUCCESS")):
                    entries.append(dsn.ReportEntry(r.recipient, dsn.DELIVERED, last.code,
                                                   last.text, last.remoteHost))
        if not entries:
            self._remove(msg)
            return
        if any(entry.action == dsn.FAILED for entry in entries):
            self.stats["bounced"] += 1
        d = self._report(msg, entries)
        d.addCallback(lambda _: self._journal(msg, [{"Event": "Reported"}]))
        d.addCallbacks(lambda _: self._remove(msg), lambda f: self._reportFailed(f, msg))

    def _reportFailed(self, failure, msg):
        # Keep the message: the report is retried at the next start.
        log.failure("queue message {id}: the DSN could not be queued", failure, id=msg.id)
        msg.finishing = False

    def _remove(self, msg):
        if msg.timer is not None and msg.timer.active():
            msg.timer.cancel()
        msg.timer = None
        self.spool.remove(msg.id, msg.journaled)
        self._messages.pop(msg.id, None)
        results = [r.first for r in msg.rcpts]
        self._recent[msg.id] = results
        while len(self._recent) > RECENT:
            self._recent.popitem(last=False)
        msg.data = None
        self._checkFirst(msg)


def _records(now, finals, deferred):
    """
    @return: the journal records of final and deferred outcomes.
    """
    when = toDatetime(now)
    records = []
    for r, result in finals:
        record = {"Index": result.index, "Status": result.status, "Code": result.code,
                  "Text": result.text, "Time": when}
        if result.remoteHost:
            record["Remote"] = result.remoteHost
        records.append(record)
    for r, result, attempts, retryAt in deferred:
        record = {"Index": result.index, "Status": result.status, "Code": result.code,
                  "Text": result.text, "Time": when, "Attempts": attempts,
                  "Retry": toDatetime(retryAt)}
        if result.remoteHost:
            record["Remote"] = result.remoteHost
        records.append(record)
    return records


def _errorText(text):
    """
    Give a Router error its enhanced status code.
    """
    lowered = text.lower()
    if "relay" in lowered:
        return "5.7.1 " + text
    if "unknown" in lowered:
        return "5.1.1 " + text
    if "loop" in lowered:
        return "5.4.6 " + text
    return "5.1.0 " + text
