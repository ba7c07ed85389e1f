# -*- test-case-name: tests.cli.test_commands -*-
"""
The administrative command table, shared by every administrative front-end.

Each package that has something to administer registers its commands here
from its own C{commands} module (Kamailio's RPC model): the directory its
domain and account commands, the core its server and Router commands, later
the queue and the SIP stack theirs.  The CLI on port 106 parses a line into
a command name and an L{Arguments} reader and calls the handler; the web
admin and XIMSS C{cliExecute} can call the very same table.

A handler is C{handler(session, args)}: it checks the session's rights,
reads its arguments, and returns the data to send back (C{None} for a plain
OK) or a L{Deferred} firing with it.  It raises L{CLIError} for refusals;
every check happens before the first change.
"""

from cgpro.core import dataformat
from cgpro.core.errors import AccessDenied, CLIError, SyntaxCLIError

NOT_ADMIN = "not enough access rights"


class Command:
    """
    One registered command.

    @ivar name: the canonical (upper-case) name.
    @ivar handler: C{handler(session, args)}.
    @ivar doc: one line for C{HELP} / documentation.
    """

    __slots__ = ("name", "handler", "doc")

    def __init__(self, name, handler, doc):
        self.name = name
        self.handler = handler
        self.doc = doc


class CommandTable:
    """
    Command names (and their older aliases) to L{Command}s.
    """

    def __init__(self):
        self.commands = {}

    def register(self, name, handler, aliases=(), doc=""):
        """
        Add a command under its name and every alias (case-insensitive).
        """
        command = Command(name.upper(), handler, doc or (handler.__doc__ or "").strip())
        for key in (name,) + tuple(aliases):
            key = key.upper()
            if key in self.commands:
                raise ValueError("command %s registered twice" % (key,))
            self.commands[key] = command

    def command(self, name, aliases=(), doc=""):
        """
        Decorator form of L{register}.
        """

        def decorate(handler):
            self.register(name, handler, aliases, doc)
            return handler

        return decorate

    def lookup(self, name):
        """
        @return: the L{Command}, or C{None}.
        """
        return self.commands.get(name.upper())


#: The one table every front-end serves.
TABLE = CommandTable()
command = TABLE.command


class Arguments:
    """
    Reads a command's arguments from the rest of its line, object by object.

    Keywords (C{INTO}, C{PASSWORD}, C{FILE} ...) are strings compared
    without regard to case.
    """

    def __init__(self, text):
        self._reader = dataformat.Reader(text, multiline=False)
        self._peeked = _NOTHING

    def _next(self):
        if self._peeked is not _NOTHING:
            value, self._peeked = self._peeked, _NOTHING
            return value
        try:
            return self._reader.readObject()
        except dataformat.DataFormatError as e:
            raise SyntaxCLIError(str(e))

    def atEnd(self):
        return self._peeked is _NOTHING and self._reader.atEnd()

    def peek(self):
        """
        @return: the next object without consuming it, or C{None} at end.
        """
        if self._peeked is _NOTHING:
            if self._reader.atEnd():
                return None
            self._peeked = self._next()
        return self._peeked

    def object(self, what="argument"):
        """
        @return: the next object of any type.
        """
        if self.atEnd():
            raise SyntaxCLIError("%s expected" % (what,))
        return self._next()

    def string(self, what="name"):
        value = self.object(what)
        if not isinstance(value, str):
            raise SyntaxCLIError("%s must be a string" % (what,))
        return value

    def dict(self, what="dictionary"):
        value = self.object(what)
        if not isinstance(value, dict):
            raise SyntaxCLIError("%s must be a dictionary" % (what,))
        return value

    def array(self, what="array"):
        value = self.object(what)
        if not isinstance(value, list):
            raise SyntaxCLIError("%s must be an array" % (what,))
        return value

    def isKeyword(self, *keywords):
        """
        @return: the matching upper-case keyword if the next token is one
            of C{keywords}, else C{None}; consumes nothing.
        """
        value = self.peek()
        if isinstance(value, str) and value.upper() in keywords:
            return value.upper()
        return None

    def keyword(self, *keywords):
        """
        Consume one of C{keywords}.

        @return: the keyword found (upper case).
        """
        found = self.isKeyword(*keywords)
        if found is None:
            raise SyntaxCLIError("%s expected" % (" or ".join(keywords),))
        self._next()
        return found

    def optionalKeyword(self, *keywords):
        found = self.isKeyword(*keywords)
        if found is not None:
            self._next()
        return found

    def optionalString(self, unlessKeyword=()):
        """
        @return: the next string, or C{None} at end of line or before a
            dictionary/array or one of C{unlessKeyword}.
        """
        value = self.peek()
        if not isinstance(value, str) or self.isKeyword(*unlessKeyword):
            return None
        return self._next()

    def end(self):
        """
        Refuse anything left on the line.
        """
        if not self.atEnd():
            raise SyntaxCLIError("unexpected argument: %s" % (dataformat.dumps(self._next()),))


_NOTHING = object()


# -- access rights --------------------------------------------------------------

def isServerAdmin(session, right="AllDomains"):
    """
    @return: whether the session holds C{Master} or the server right.
    """
    rights = session.rights
    return "Master" in rights or right in rights


def requireServerAdmin(session, right="AllDomains"):
    if not isServerAdmin(session, right):
        raise AccessDenied()


def canAdminDomain(session, domain, right=None):
    """
    A Domain Administrator acts only inside his own domain, and for some
    commands needs a specific right besides C{Domain}.

    @param domain: canonical domain name.
    """
    if isServerAdmin(session):
        return True
    rights = session.rights
    if session.domain != domain or "Domain" not in rights:
        return False
    return right is None or right in rights


def requireDomainAdmin(session, domain, right=None):
    if not canAdminDomain(session, domain, right):
        raise AccessDenied()


def requireDomainReader(session, domain):
    """
    Reading a domain's objects: its administrators and holders of the
    server right C{DomainsRead}.
    """
    if isServerAdmin(session, "DomainsRead") or canAdminDomain(session, domain):
        return
    raise AccessDenied()


def requireSelfOrReader(session, domain, name):
    """
    Any user may read his own account; administrators any account of the
    domains they read.
    """
    if session.user == "%s@%s" % (name, domain):
        return
    requireDomainReader(session, domain)


def checkedResult(value):
    """
    Make sure a handler's result can be written in the data format.
    """
    if value is not None:
        dataformat.dumps(value)
    return value


def checkRules(rules):
    """
    Check the shape of a rule array: (priority, name, conditions, actions
    [, comment]) each (rules.md section 2).
    """
    for rule in rules:
        if (
            not isinstance(rule, list)
            or len(rule) not in (4, 5)
            or not isinstance(rule[1], str)
            or not isinstance(rule[2], list)
            or not isinstance(rule[3], list)
        ):
            raise CLIError("a rule must be (priority, name, (conditions), (actions))")
        try:
            int(rule[0])
        except (TypeError, ValueError):
            raise CLIError("rule priority must be a number: %r" % (rule[0],))
    return rules


__all__ = [
    "Arguments",
    "CLIError",
    "Command",
    "CommandTable",
    "TABLE",
    "command",
    "requireServerAdmin",
    "requireDomainAdmin",
    "requireDomainReader",
    "requireSelfOrReader",
]
