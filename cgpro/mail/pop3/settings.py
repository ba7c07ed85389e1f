# -*- test-case-name: tests.mail.pop3.test_server -*-
"""
The POP module settings: built-in defaults and their parsed form.

As for the SMTP module, the built-in defaults live here and the stored
dictionary (C{directory.getServerDict("Modules")["POP"]}, changed over the
CLI with C{UPDATEMODULE POP {...}}) is merged over them for each new
session, so a change applies to the next connection without a restart.  A
mistyped value is logged and replaced by its default rather than breaking
the listener.
"""


from cgpro.core import dataformat
from cgpro.core.modulesettings import ModuleSettings, count, yes


#: Built-in defaults of module C{POP} (listeners pop3 and pop3s).
DEFAULTS = {
    # USER/PASS, APOP and AUTH on a connection without TLS (before STLS).
    "AllowCleartextAuth": "NO",
    # A session silent this long is closed (RFC 1939: at least 10 minutes).
    "IdleTimeout": "10m",
    # Protocol errors (unknown commands, bad arguments, failed logins)
    # before the session is closed.
    "MaxErrors": "10",
    # How long a failed login waits before its -ERR (slows guessing).
    "AuthFailureDelay": "1s",
    # RETR sets \Seen on the message (as the IMAP view then shows it).
    "MarkSeenOnRetrieve": "YES",
}


def _duration(value):
    seconds = dataformat.parseDuration(value)
    if seconds is None:
        raise ValueError("not a duration: %r" % (value,))
    return seconds


_yes, _count = yes, count

_PARSERS = {
    "AllowCleartextAuth": ("allowCleartextAuth", _yes),
    "IdleTimeout": ("idleTimeout", _duration),
    "MaxErrors": ("maxErrors", _count),
    "AuthFailureDelay": ("authFailureDelay", _duration),
    "MarkSeenOnRetrieve": ("markSeen", _yes),
}


class POPSettings(ModuleSettings):
    """
    The effective settings of one session, parsed.

    @ivar raw: the merged dictionary (defaults, then the stored values).
    @ivar allowCleartextAuth: C{bool}.
    @ivar idleTimeout: seconds (0 = none).
    @ivar maxErrors: C{int} (0 = no limit).
    @ivar authFailureDelay: seconds.
    @ivar markSeen: C{bool}.
    """

    DEFAULTS = DEFAULTS
    PARSERS = _PARSERS
    MODULE = "POP"


def loadSettings(directory):
    """
    Read the current settings of module C{POP}.

    @return: a L{POPSettings}.
    """
    return POPSettings.load(directory)
