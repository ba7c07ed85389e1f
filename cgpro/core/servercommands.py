# -*- test-case-name: tests.cli.test_commands -*-
"""
Server-wide commands of the administrative command table (cli.md 6.6 and
6.8): the Router table and C{ROUTE}, server rules, address lists (LAN IPs,
Client IPs, ...), module settings, listeners, and a few miscellaneous ones.

The Router table is validated as a whole before it is stored: a bad line
rejects the table with C{501 router table line N: reason} and the table in
force stays.  Listener commands go through the L{IListenerManager}, which
restarts only the listener that changed.
"""

from twisted.internet.defer import maybeDeferred
from twisted.logger import Logger

from cgpro.core.commands import checkRules, command, isServerAdmin, requireServerAdmin
from cgpro.core.errors import AccessDenied, CLIError
from cgpro.core.iplists import IP_LISTS, parseAddressList
from cgpro.core.router import RouterTableError, parseTable
from cgpro.core.settings import applyUpdate

log = Logger()

ROUTER_FILE = "Router.table"


# -- Router -------------------------------------------------------------------------

@command("GETROUTERTABLE")
def getRouterTable(session, args):
    """GETROUTERTABLE: the Router table, lines separated by \\e."""
    args.end()
    if not isServerAdmin(session, "Settings") and not isServerAdmin(session, "DomainsRead"):
        raise AccessDenied()
    return session.server.router.tableText


@command("SETROUTERTABLE")
def setRouterTable(session, args):
    """SETROUTERTABLE string: replace the Router table."""
    text = args.string("router table")
    args.end()
    requireServerAdmin(session, "Settings")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    try:
        parseTable(text)
    except RouterTableError as e:
        raise CLIError(str(e))
    storage = session.directory.storage
    router = session.server.router
    d = storage.saveText(ROUTER_FILE, text)
    d.addCallback(lambda _: router.setTable(text))
    d.addCallback(lambda _: None)
    return d


@command("ROUTE")
def route(session, args):
    """ROUTE address [MAIL|ACCESS|SIGNAL]: (module, queue, address)."""
    address = args.string("address")
    kind = args.optionalKeyword("MAIL", "ACCESS", "SIGNAL") or "ACCESS"
    args.end()
    if not isServerAdmin(session, "DomainsRead") and "Domain" not in session.rights:
        raise AccessDenied()
    return list(session.server.router.route(address, kind, trusted=True).asTriple())


# -- server rules ---------------------------------------------------------------------

def _serverRules(key, getName, setName, getAliases=(), setAliases=()):
    def get(session, args):
        args.end()
        requireServerAdmin(session, "Settings")
        return list(session.directory.getServerDict("Rules").get(key, []))

    def set_(session, args):
        rules = args.array("rules")
        args.end()
        requireServerAdmin(session, "Settings")
        return session.directory.setServerDict("Rules", {key: checkRules(rules)}, update=True)

    command(getName, aliases=getAliases)(get)
    command(setName, aliases=setAliases)(set_)


_serverRules(
    "MailRules", "GETSERVERMAILRULES", "SETSERVERMAILRULES",
    getAliases=("GETSERVERRULES",), setAliases=("SETSERVERRULES",),
)
_serverRules("SignalRules", "GETSERVERSIGNALRULES", "SETSERVERSIGNALRULES")


# -- address lists --------------------------------------------------------------------

def _ipListCommands(suffix, key):
    def get(session, args):
        args.end()
        requireServerAdmin(session, "Settings")
        return session.directory.getServerDict("Main").get(key, "")

    def set_(session, args):
        text = args.string("address list")
        args.end()
        requireServerAdmin(session, "Settings")
        parseAddressList(text)
        return session.directory.setServerDict("Main", {key: text}, update=True)

    command("GET" + suffix)(get)
    command("SET" + suffix)(set_)


for _suffix, _key in IP_LISTS.items():
    _ipListCommands(_suffix, _key)


# -- modules ------------------------------------------------------------------------------

@command("LISTMODULES")
def listModules(session, args):
    """LISTMODULES: the modules named in the port table."""
    args.end()
    requireServerAdmin(session, "Settings")
    rows = session.server.listeners.listListeners()
    return sorted({row["module"].upper() for row in rows.values()} | {"PWD"})


@command("GETMODULE")
def getModule(session, args):
    """GETMODULE name: the module's settings."""
    name = args.string("module name").upper()
    args.end()
    requireServerAdmin(session, "Settings")
    return dict(session.directory.getServerDict("Modules").get(name, {}))


def _setModule(update):
    def handler(session, args):
        name = args.string("module name").upper()
        value = args.dict("module settings")
        args.end()
        requireServerAdmin(session, "Settings")
        modules = session.directory.getServerDict("Modules")
        current = modules.get(name, {})
        if update:
            value = applyUpdate(current, value)
        return session.directory.setServerDict("Modules", {name: value}, update=True)

    return handler


command("UPDATEMODULE")(_setModule(True))
command("SETMODULE")(_setModule(False))


# -- listeners ------------------------------------------------------------------------

@command("LISTLISTENERS")
def listListeners(session, args):
    """LISTLISTENERS: every port-table row with its State and Port."""
    args.end()
    requireServerAdmin(session, "Settings")
    return session.server.listeners.listListeners()


@command("GETLISTENER")
def getListener(session, args):
    """GETLISTENER name: one port-table row with its State."""
    name = args.string("listener name")
    args.end()
    requireServerAdmin(session, "Settings")
    rows = session.server.listeners.listListeners()
    if name not in rows:
        raise CLIError("unknown listener")
    return rows[name]


@command("UPDATELISTENER")
def updateListener(session, args):
    """UPDATELISTENER name {port=#N; enabled=NO; ...}: change one row."""
    name = args.string("listener name")
    changes = args.dict("listener settings")
    args.end()
    requireServerAdmin(session, "Settings")
    if name not in session.server.listeners.listListeners():
        raise CLIError("unknown listener")
    return maybeDeferred(session.server.listeners.updateListener, name, changes).addCallback(
        lambda _: None
    )


@command("CREATELISTENER")
def createListener(session, args):
    """CREATELISTENER name {module=...; transport=...; port=#N; ...}: add a row."""
    name = args.string("listener name")
    row = args.dict("listener settings")
    args.end()
    requireServerAdmin(session, "Settings")
    if name in session.server.listeners.listListeners():
        raise CLIError("listener with this name already exists")
    return maybeDeferred(session.server.listeners.updateListener, name, row).addCallback(
        lambda _: None
    )


@command("DELETELISTENER")
def deleteListener(session, args):
    """DELETELISTENER name: stop a listener and remove its row."""
    name = args.string("listener name")
    args.end()
    requireServerAdmin(session, "Settings")
    return maybeDeferred(session.server.listeners.deleteListener, name).addCallback(
        lambda _: None
    )


# -- miscellaneous -----------------------------------------------------------------------

@command("GETVERSION")
def getVersion(session, args):
    """GETVERSION: the server version."""
    args.end()
    return session.server.version


@command("GETSERVERSETTINGS")
def getServerSettings(session, args):
    """GETSERVERSETTINGS: the server's general settings."""
    args.end()
    requireServerAdmin(session, "Settings")
    return session.directory.effectiveServerSettings()


@command("UPDATESERVERSETTINGS")
def updateServerSettings(session, args):
    """UPDATESERVERSETTINGS {...}: change general settings (not DomainName)."""
    value = args.dict("settings")
    args.end()
    requireServerAdmin(session, "Settings")
    if "DomainName" in value:
        raise CLIError("rename the Main Domain with RENAMEDOMAIN")
    return session.directory.setServerDict("Main", value, update=True)


@command("WRITELOG")
def writeLog(session, args):
    """WRITELOG level text: add a record to the server log."""
    level = args.object("log level")
    text = args.string("log text")
    args.end()
    requireServerAdmin(session, "Monitors")
    log.info("WRITELOG by {user} [{level}]: {text}", user=session.user, level=level, text=text)


# -- media relay (cgpro's own) ----------------------------------------------------------

def _plain(value):
    """Monitoring figures in data-format terms: addresses as C{host:port}."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], int):
        return "%s:%d" % value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _media(session):
    media = getattr(session.server, "media", None)
    if media is None:
        raise CLIError("the media relay is not running")
    return media


@command("GETMEDIASTATS")
def getMediaStats(session, args):
    """GETMEDIASTATS: the relay's totals (sessions, ports, packets, drops)."""
    args.end()
    requireServerAdmin(session, "Settings")
    return _plain(_media(session).stats())


@command("LISTMEDIASESSIONS")
def listMediaSessions(session, args):
    """LISTMEDIASESSIONS: every relayed call with its per-leg figures."""
    args.end()
    requireServerAdmin(session, "Settings")
    return [{"CallID": s.callId, "Address": s.localAddress, "Legs": _plain(s.stats())}
            for s in _media(session).sessions()]
