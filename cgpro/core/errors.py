# -*- test-case-name: tests.cli.test_protocol -*-
"""
Refusals that reach an administrator or a user as a protocol error.

A command refused for a reason the client can act on raises one of these
before anything is changed; the CLI turns it into C{501 <text>} (C{500} for
authentication), other protocols into their own codes.  Anything else that
escapes a command is a bug: it is logged with its traceback and the client
only sees a generic C{501 internal error}.
"""


class CLIError(Exception):
    """
    A refusal with the text the client is shown.

    @ivar code: the CLI response code (C{501} unless said otherwise).
    """

    code = 501

    def __init__(self, text, code=None):
        Exception.__init__(self, text)
        self.text = text
        if code is not None:
            self.code = code

    def __str__(self):
        return self.text


class SyntaxCLIError(CLIError):
    """A command line that does not parse: C{501 syntax error: ...}."""

    def __init__(self, detail):
        CLIError.__init__(self, "syntax error: %s" % (detail,))


class AccessDenied(CLIError):
    """The authenticated account lacks the right for this command."""

    def __init__(self, text="not enough access rights"):
        CLIError.__init__(self, text)


class UnknownObject(CLIError):
    """An account, domain, forwarder or group that does not exist."""


class NameTaken(CLIError):
    """An object with this name already exists."""


class BadName(CLIError):
    """A name that breaks the object-name rules."""
