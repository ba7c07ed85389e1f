# -*- test-case-name: tests.store.test_maildir -*-
"""
Refusals of the mailbox store.

They derive from the CLI's refusals (L{cgpro.core.errors}) so the CLI's
mailbox commands show their text as-is, and the IMAP and POP modules map
them to C{NO} responses by class (C{[NONEXISTENT]}, C{[ALREADYEXISTS]},
C{[CANNOT]}, C{[EXPUNGEISSUED]}).
"""

from cgpro.core.errors import BadName, CLIError, NameTaken, UnknownObject


class StoreError(CLIError):
    """A mailbox operation that cannot be carried out as asked."""


class NoSuchMailbox(UnknownObject):
    """The mailbox (or the account holding it) does not exist."""


class MailboxExists(NameTaken):
    """A mailbox of that name already exists."""


class MailboxNameError(BadName):
    """A mailbox name or flag that breaks the naming rules."""


class MessageExpunged(StoreError):
    """The message was expunged (by this or another session)."""
