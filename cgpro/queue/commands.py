# -*- test-case-name: tests.queue.test_commands -*-
"""
Queue commands of the administrative command table (cli.md 6.8):
C{GETMESSAGEQUEUEINFO}, C{LISTQUEUES}, C{RELEASESMTPQUEUE},
C{REJECTQUEUEMESSAGE}.

They reach the queue as C{session.server.queue} and are for server
administrators holding C{Master} or the C{Monitors} right (objects.md 8.1:
"Monitors (+ sub-rights: release/reject queues)").

C{GETMESSAGEQUEUEINFO} answers with CommuniGate's keys: C{nTotal}
(messages), C{size} (their bytes), C{delayedTill} (the earliest retry, when
recipients wait) and C{lastError}; C{Recipients} is ours.
"""

from cgpro.core.commands import command, requireServerAdmin
from cgpro.core.errors import CLIError


def _queue(session):
    queue = getattr(session.server, "queue", None)
    if queue is None:
        raise CLIError("the message queue is not running")
    return queue


@command("GETMESSAGEQUEUEINFO")
def getMessageQueueInfo(session, args):
    """GETMESSAGEQUEUEINFO module QUEUE queueName: {nTotal; size; delayedTill; lastError}."""
    module = args.string("module name")
    args.keyword("QUEUE")
    name = args.string("queue name")
    args.end()
    requireServerAdmin(session, "Monitors")
    return _queue(session).queueInfo(module, name)


@command("LISTQUEUES")
def listQueues(session, args):
    """LISTQUEUES: {module: {queue: {nTotal; size; ...}}} of the non-empty logical queues."""
    args.end()
    requireServerAdmin(session, "Monitors")
    return _queue(session).listQueues()


@command("RELEASESMTPQUEUE")
def releaseSMTPQueue(session, args):
    """RELEASESMTPQUEUE queueName: retry the waiting messages of an SMTP queue now."""
    name = args.string("queue name")
    args.end()
    requireServerAdmin(session, "Monitors")
    _queue(session).release("SMTP", name)
    return None


@command("REJECTQUEUEMESSAGE")
def rejectQueueMessage(session, args):
    """REJECTQUEUEMESSAGE msgID [text]: fail the message's remaining recipients, with a DSN."""
    messageId = args.object("message id")
    if isinstance(messageId, int):
        messageId = str(messageId)
    if not isinstance(messageId, str):
        raise CLIError("message id must be a number")
    text = args.optionalString()
    args.end()
    requireServerAdmin(session, "Monitors")
    if text is not None:
        text = " ".join(text.split())
        if not text[:1].isdigit():
            text = "5.7.1 " + text
    try:
        _queue(session).reject(messageId, text)
    except KeyError:
        raise CLIError("unknown message")
    return None
