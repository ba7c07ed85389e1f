# -*- test-case-name: tests.cli.test_protocol -*-
"""
Builds the CLI listener's factory from a port-table row and the server
context (the C{build(spec, context)} entry point named in
L{cgpro.core.ports.PROTOCOLS}).

Importing this module registers every administrative command in the shared
table: the directory's, the server's and the Router's.
"""

from cgpro.cli.protocol import CLIFactory
from cgpro.core import dataformat
from cgpro.core.throttle import LoginThrottle

# Registration side effects: each module adds its commands to the table.
import cgpro.core.logcommands  # noqa: F401  (log settings)
import cgpro.core.servercommands  # noqa: F401
import cgpro.core.statcommands  # noqa: F401  (statistics)
import cgpro.directory.accountcommands  # noqa: F401
import cgpro.directory.commands  # noqa: F401
import cgpro.directory.listcommands  # noqa: F401  (mailing lists)
import cgpro.directory.objectcommands  # noqa: F401
import cgpro.queue.commands  # noqa: F401
import cgpro.store.commands  # noqa: F401


def build(spec, context):
    """
    @param spec: the L{cgpro.core.ports.ListenerSpec} of the row.
    @param context: the L{cgpro.core.interfaces.IServerContext}.
    @return: a L{CLIFactory}.
    """
    server = context.directory.effectiveServerSettings()
    throttle = getattr(context, "loginThrottle", None)
    if throttle is None:
        throttle = context.loginThrottle = LoginThrottle(
            context.reactor,
            limit=int(server.get("LoginFailureLimit", 10)),
            period=dataformat.parseDuration(server.get("LoginFailurePeriod", "1m")) or 60,
        )
    return CLIFactory(
        context,
        throttle,
        context.reactor,
        idleTimeout=dataformat.parseDuration(server.get("CLIIdleTimeout", "5m")) or 300,
        maxLineLength=dataformat.parseSize(server.get("CLIMaxLineSize", "16M")) or (16 << 20),
    )
