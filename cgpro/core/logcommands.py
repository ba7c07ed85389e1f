# -*- test-case-name: tests.core.test_logconfig -*-
"""
The log commands of the administrative command table.

C{GETLOGSETTINGS} shows the log keys of the server settings with their
defaults filled in (L{cgpro.core.logconfig.DEFAULTS}); C{UPDATELOGSETTINGS}
changes some of them.  Both need the server right C{Settings}.  The values
are checked as a whole before anything is stored, so a typo is refused with
the key's name instead of being ignored later; the running log follows the
stored settings at once (L{cgpro.core.logconfig.LogService} watches the
server settings).

C{LogLevels} is merged rather than replaced: C{UPDATELOGSETTINGS
{LogLevels = {cgpro.sip = debug;};}} changes one namespace and keeps the
others, and C{cgpro.sip = default} removes one.  C{WRITELOG} is in
L{cgpro.core.servercommands}.
"""

from cgpro.core.commands import command, requireServerAdmin
from cgpro.core.errors import CLIError
from cgpro.core.logconfig import DEFAULTS, effectiveLogSettings, parseLogSettings
from cgpro.core.settings import applyUpdate


@command("GETLOGSETTINGS")
def getLogSettings(session, args):
    """GETLOGSETTINGS: the log levels, rotation and syslog settings."""
    args.end()
    requireServerAdmin(session, "Settings")
    return effectiveLogSettings(session.directory.getServerDict("Main"))


@command("UPDATELOGSETTINGS")
def updateLogSettings(session, args):
    """UPDATELOGSETTINGS {LogLevels={ns=level;}; LogRotateSize=..; ...}: change log settings."""
    value = args.dict("log settings")
    args.end()
    requireServerAdmin(session, "Settings")
    unknown = sorted(set(value) - set(DEFAULTS))
    if unknown:
        raise CLIError("unknown log setting %s (known: %s)" % (
            ", ".join(unknown), ", ".join(DEFAULTS)))
    main = session.directory.getServerDict("Main")
    update = dict(value)
    levels = value.get("LogLevels")
    if isinstance(levels, dict):
        current = main.get("LogLevels")
        update["LogLevels"] = applyUpdate(current if isinstance(current, dict) else {}, levels)
    try:
        parseLogSettings(applyUpdate(main, update), strict=True)
    except ValueError as e:
        raise CLIError(str(e))
    return session.directory.setServerDict("Main", update, update=True).addCallback(
        lambda _: None)
