# -*- test-case-name: tests.queue.test_commands -*-
"""
What the queue tells monitoring and administrators (the C{LISTQUEUES} /
C{GETMESSAGEQUEUEINFO} commands, statistics) and the administrators'
actions on it (C{RELEASESMTPQUEUE}, C{REJECTQUEUEMESSAGE}).

Queue figures are computed on demand by a scan of the queued messages:
nothing is counted on the delivery path, and a scan of tens of thousands
of messages is quick next to the rate at which people ask.  The server's
catalog (L{cgpro.core.stats}) reads them the same way, by callbacks
registered with L{QueueAdminMixin.reportTo}: the delivery path keeps
only its plain integer counters.
"""

from cgpro.core.envelope import FAILED, RecipientResult
from cgpro.queue.spool import toDatetime
from cgpro.queue.state import ACTIVE, DONE, PENDING, WAITING


class QueueAdminMixin:
    """
    Monitoring and administration of L{cgpro.queue.queue.MessageQueue}.
    """

    @property
    def messageCount(self):
        return len(self._messages)

    def queueInfo(self, module, name):
        """
        @return: C{{nTotal, size, delayedTill, lastError, Recipients}} of one
            logical queue (messages with unfinished recipients routed there).
        """
        return self.listQueues().get(module.upper(), {}).get(name.lower(), {
            "nTotal": 0, "size": 0, "Recipients": 0})

    def listQueues(self):
        """
        @return: C{{module: {queue: info}}} for every logical queue holding
            unfinished recipients (see L{queueInfo}).
        """
        result = {}
        for msg in self._messages.values():
            seen = set()
            for r in msg.rcpts:
                if r.state == DONE or r.route is None:
                    continue
                key = (r.route.module, r.route.queue.lower())
                info = result.setdefault(key[0], {}).setdefault(
                    key[1], {"nTotal": 0, "size": 0, "Recipients": 0})
                info["Recipients"] += 1
                if key not in seen:
                    seen.add(key)
                    info["nTotal"] += 1
                    info["size"] += msg.size
                if r.state == WAITING:
                    till = toDatetime(r.retryAt)
                    if "delayedTill" not in info or till < info["delayedTill"]:
                        info["delayedTill"] = till
                    if r.last is not None:
                        info["lastError"] = "%d %s" % (r.last.code, r.last.text)
        return result

    def queueMessages(self):
        """
        @return: C{{"MODULE(queue)": messages}} for every logical queue
            holding unfinished recipients (a message waiting in two
            logical queues counts in both).
        """
        return {"%s(%s)" % (module, name): info["nTotal"]
                for module, queues in self.listQueues().items()
                for name, info in queues.items()}

    def reportTo(self, catalog):
        """
        Show this queue's figures in a L{cgpro.core.stats.Catalog}:
        C{cgpro_queue_messages} per logical queue, C{cgpro_mail_delivered_total}
        per channel and C{cgpro_mail_bounced_total}, read at each
        collection.  Idempotent, so whoever first meets both the queue and
        the catalog may call it.
        """
        if any(known is catalog for known in self._catalogs):
            return
        self._catalogs.append(catalog)
        catalog.callback("cgpro_queue_messages",
                         lambda: {(name,): count for name, count in self.queueMessages().items()})
        catalog.callback("cgpro_mail_delivered_total",
                         lambda: {(channel,): count for channel, count in self.deliveredBy.items()})
        catalog.callback("cgpro_mail_bounced_total", lambda: self.stats["bounced"])

    def queueLengths(self):
        """
        @return: C{{"MODULE(queue)": unfinished recipients}}.
        """
        return {"%s(%s)" % (module, name): info["Recipients"]
                for module, queues in self.listQueues().items()
                for name, info in queues.items()}

    def release(self, module, name=None):
        """
        Retry now every waiting recipient routed to C{module} (and queue
        C{name}) (C{RELEASESMTPQUEUE}).

        @return: the number of recipients released.
        """
        module = module.upper()
        count = 0
        for msg in list(self._messages.values()):
            due = [r for r in msg.rcpts if r.state == WAITING and r.route is not None
                   and r.route.module == module
                   and (name is None or r.route.queue.lower() == name.lower())]
            if due:
                count += len(due)
                for r in due:
                    r.state = PENDING
                self._dispatch(msg, due)
                self._schedule(msg)
        return count

    def reject(self, messageId, text=None):
        """
        Fail every unfinished recipient of a message, with a DSN
        (C{REJECTQUEUEMESSAGE}); recipients in a job fail when it reports
        unless it delivered them.

        @raise KeyError: for an unknown message.
        """
        msg = self._messages[messageId]
        msg.rejectText = text or "5.7.1 message rejected by the administrator"
        idle = [r for r in msg.rcpts if r.state in (PENDING, WAITING)]
        for r in idle:
            r.state = ACTIVE
        if idle:
            self._results(msg, [(r, RecipientResult(r.recipient.index, FAILED, 550,
                                                    msg.rejectText)) for r in idle])
