# -*- test-case-name: tests.mail.imap.test_server -*-
"""
Refusals of IMAP commands and how store refusals map to responses.

A command raises L{IMAPError} (or lets a store error propagate); the
session turns it into the tagged C{NO}/C{BAD} with a response code
(RFC 5530) by class, so no exception text from deeper layers that is not
meant for clients, and never a traceback, reaches the wire.
"""

from cgpro.mail.imap.parser import ParseError
from cgpro.store.errors import (
    MailboxExists, MailboxNameError, MessageExpunged, NoSuchMailbox, StoreError,
)


class IMAPError(Exception):
    """
    A command refused with C{status} (C{NO} or C{BAD}) and C{text}.
    """

    def __init__(self, status, text):
        Exception.__init__(self, text)
        self.status = status
        self.text = text


def noMailbox(name=None):
    return IMAPError("NO", "[NONEXISTENT] mailbox does not exist")


def responseFor(failure):
    """
    @return: C{(status, text)} for a failed command, or C{(None, None)}
        for an unexpected error (logged, answered as a server bug).
    """
    e = failure.value
    if isinstance(e, IMAPError):
        return e.status, e.text
    if isinstance(e, ParseError):
        return "BAD", str(e) or "syntax error"
    if isinstance(e, NoSuchMailbox):
        return "NO", "[NONEXISTENT] mailbox does not exist"
    if isinstance(e, MailboxExists):
        return "NO", "[ALREADYEXISTS] mailbox already exists"
    if isinstance(e, MailboxNameError):
        return "NO", "[CANNOT] %s" % (_clean(e),)
    if isinstance(e, MessageExpunged):
        return "NO", "[EXPUNGEISSUED] message was expunged"
    if isinstance(e, StoreError):
        return "NO", "[CANNOT] %s" % (_clean(e),)
    return None, None


def _clean(e):
    text = str(e).replace("\r", " ").replace("\n", " ")
    return text[:200] or "not possible"
