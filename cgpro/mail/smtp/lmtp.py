# -*- test-case-name: tests.mail.smtp.test_lmtp -*-
"""
LMTP (RFC 2033): the SMTP session with C{LHLO}, and after the data one
reply per accepted recipient.

An LMTP client (another MTA delivering into us) wants to know per
recipient whether the message was delivered, so after the commit the
session waits for the queue's first outcome of every recipient
(L{cgpro.core.interfaces.IMessageQueue.whenDone}) and answers each accepted
RCPT in order: delivered -> 2xx, failed -> 5xx, deferred -> 4xx, with the
text the delivery channel gave.  AUTH is not offered: LMTP listens where
only trusted MTAs reach it.
"""

import re

from twisted.internet import defer
from twisted.logger import Logger

from cgpro.core.envelope import DEFERRED, DELIVERED, FAILED
from cgpro.mail.smtp.server import SMTPServer
from cgpro.mail.smtp.transaction import addressLiteral
from cgpro.mail.smtp.wire import SMTPError, formatReply

log = Logger()

_ENHANCED = re.compile(r"^([245]\.[0-9]{1,3}\.[0-9]{1,3})\s+(.*)$", re.DOTALL)

#: status -> (reply class, default code, default enhanced code, default text)
_DEFAULTS = {
    DELIVERED: (2, 250, "2.0.0", "delivered"),
    FAILED: (5, 550, "5.0.0", "delivery failed"),
    DEFERRED: (4, 451, "4.0.0", "delivery deferred"),
}


def recipientReply(result, address):
    """
    The LMTP reply for one recipient.

    @param result: a L{cgpro.core.envelope.RecipientResult}.
    @return: C{(code, enhanced, text)}.
    """
    if result.status == DEFERRED:
        # The message is durably queued and the queue keeps retrying it: a
        # 4xx here would make the LMTP client send it again (a duplicate).
        return 250, "2.0.0", "<%s> queued, delivery will be retried (%s)" % (
            address, " ".join(str(result.text or "deferred").split()))
    klass, code, enhanced, text = _DEFAULTS.get(result.status, _DEFAULTS[DEFERRED])
    if result.code and int(result.code) // 100 == klass:
        code = int(result.code)
    given = " ".join(str(result.text or "").split())
    match = _ENHANCED.match(given)
    if match and match.group(1)[0] == str(klass):
        enhanced, given = match.group(1), match.group(2)
    return code, enhanced, "<%s> %s" % (address, given or text)


class LMTPServer(SMTPServer):
    """
    One LMTP session.
    """

    serviceName = "LMTP"
    greetingWord = "LMTP"

    def do_LHLO(self, argument):
        self._hello("LHLO", argument, True)
        lines = ["%s hello %s" % (self.hostname, addressLiteral(self.clientAddress))]
        self._out.append(formatReply(250, None, lines + self.extensions()))

    def do_EHLO(self, argument):
        raise SMTPError(500, "5.5.1", "this is LMTP: use LHLO")

    do_HELO = do_EHLO

    def helloName(self):
        return "LHLO"

    def commandNames(self):
        return ["LHLO", "STARTTLS", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "VRFY", "HELP",
                "QUIT"]

    def messageAccepted(self, queueId, txn):
        d = defer.maybeDeferred(self.context.queue.whenDone, queueId)
        d.addCallbacks(self._results, self._unknownResults, callbackArgs=(queueId, txn),
                       errbackArgs=(queueId, txn))
        return d

    def _results(self, results, queueId, txn):
        if self._closed:
            return
        byIndex = {result.index: result for result in results}
        recipients = txn.envelope.recipients
        for index in txn.accepted:
            address = recipients[index].address
            result = byIndex.get(index)
            if result is None:
                self.reply(250, "2.0.0", "<%s> queued as %s" % (address, queueId))
            else:
                self.reply(*recipientReply(result, address))

    def _unknownResults(self, failure, queueId, txn):
        # The message is committed: the queue owns it and will deliver it
        # or send a DSN, so "queued" is the truthful answer (a 4xx would
        # make the client send it again).
        log.failure("LMTP {client}: no delivery results for {id}", failure,
                    client=self.clientAddress, id=queueId)
        if self._closed:
            return
        recipients = txn.envelope.recipients
        for index in txn.accepted:
            self.reply(250, "2.0.0", "<%s> queued as %s" % (recipients[index].address, queueId))

    def messageFailed(self, txn):
        recipients = txn.envelope.recipients
        for index in txn.accepted:
            self.reply(451, "4.3.0", "<%s> internal error" % (recipients[index].address,))

    def dataRefused(self, txn, error):
        recipients = txn.envelope.recipients
        for index in txn.accepted:
            self.reply(error.code, error.enhanced,
                       "<%s> %s" % (recipients[index].address, error.text))
