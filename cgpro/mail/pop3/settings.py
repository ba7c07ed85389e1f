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

from twisted.logger import Logger

from cgpro.core import dataformat

log = Logger()

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


def _yes(value):
    text = str(value).strip().upper()
    if text in ("YES", "TRUE", "1", "ON"):
        return True
    if text in ("NO", "FALSE", "0", "OFF", ""):
        return False
    raise ValueError("expected YES or NO, not %r" % (value,))


def _count(value):
    number = int(str(value).strip())
    if number < 0:
        raise ValueError("negative count %r" % (value,))
    return number


def _duration(value):
    seconds = dataformat.parseDuration(value)
    if seconds is None:
        raise ValueError("not a duration: %r" % (value,))
    return seconds


_PARSERS = {
    "AllowCleartextAuth": ("allowCleartextAuth", _yes),
    "IdleTimeout": ("idleTimeout", _duration),
    "MaxErrors": ("maxErrors", _count),
    "AuthFailureDelay": ("authFailureDelay", _duration),
    "MarkSeenOnRetrieve": ("markSeen", _yes),
}


class POPSettings:
    """
    The effective settings of one session, parsed.

    @ivar raw: the merged dictionary (defaults, then the stored values).
    @ivar allowCleartextAuth: C{bool}.
    @ivar idleTimeout: seconds (0 = none).
    @ivar maxErrors: C{int} (0 = no limit).
    @ivar authFailureDelay: seconds.
    @ivar markSeen: C{bool}.
    """

    def __init__(self, stored=None):
        merged = dict(DEFAULTS)
        if isinstance(stored, dict):
            merged.update(stored)
        self.raw = merged
        for key, (attribute, parse) in _PARSERS.items():
            try:
                value = parse(merged.get(key, DEFAULTS[key]))
            except (TypeError, ValueError) as e:
                log.warn("module POP setting {key} = {value!r} is invalid ({error});"
                         " using the default {default!r}", key=key, value=merged.get(key),
                         error=e, default=DEFAULTS[key])
                value = parse(DEFAULTS[key])
            setattr(self, attribute, value)


def loadSettings(directory):
    """
    Read the current settings of module C{POP}.

    @param directory: the L{cgpro.core.interfaces.IDirectory} (with
        C{getServerDict}).
    @return: a L{POPSettings}.
    """
    stored = {}
    getServerDict = getattr(directory, "getServerDict", None)
    if getServerDict is not None:
        stored = (getServerDict("Modules") or {}).get("POP") or {}
    return POPSettings(stored)
