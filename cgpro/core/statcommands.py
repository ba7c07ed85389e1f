# -*- test-case-name: tests.core.test_statcommands -*-
"""
Statistics commands of the administrative command table (cli.md 6.8):
C{GETSTATELEMENT}, its older name C{GETSNMPELEMENT}, C{GETNEXTSTATNAME},
and cgpro's own C{LISTSTATELEMENTS}.

They read the server's one catalog (C{session.server.stats},
L{cgpro.core.stats}), the very figures C{/metrics} and the SNMP agent
show, so an administrator never sees two different numbers for one event.

An element (CommuniGate's C{objectID}; its names are not documented, so
these are ours) is a catalog name, alone (the sum over its labels) or
followed by label values separated by C{/}, in the order of the figure's
labels::

    GETSTATELEMENT cgpro_connections_total           all listeners
    GETSTATELEMENT cgpro_connections_total/smtp      one module
    GETSTATELEMENT cgpro_errors_total/smtp/protocol  one module, one kind

The SNMP column of a figure (its arc under C{cgproObjects} in the cgpro
MIB, the fifth field of L{cgpro.core.stats.CATALOG}, which never changes
once published) may stand for its name: C{GETSTATELEMENT 1/smtp} reads
C{cgpro_connections_total/smtp}.  Full OIDs are the SNMP agent's business
(the core does not know the MIB's root).

The walk (C{GETNEXTSTATNAME}) visits every figure in catalog order, each
followed by its labelled samples in sorted order; after the last element
it answers an empty string.  Reading statistics needs the C{Monitors} or
C{Settings} server right (or C{Master}).
"""

import re

from cgpro.core.commands import command, isServerAdmin
from cgpro.core.errors import AccessDenied, CLIError
from cgpro.core.stats import CATALOG

UNKNOWN = "unknown statistics element"

_COLUMNS = {entry[4]: entry[0] for entry in CATALOG}
_LABELS = {entry[0]: entry[3] for entry in CATALOG}
_COLUMN = re.compile(r"^[0-9]+$")


def _requireMonitor(session):
    if not (isServerAdmin(session, "Monitors") or isServerAdmin(session, "Settings")):
        raise AccessDenied()


def _catalog(session):
    stats = getattr(session.server, "stats", None)
    if stats is None:
        raise CLIError("statistics are not available")
    return stats


def canonical(objectID):
    """
    @return: C{objectID} with a column number replaced by the figure's
        catalog name.
    @raise CLIError: for an element that is not in the catalog or has
        more label values than its figure has labels.
    """
    name, sep, rest = objectID.partition("/")
    if _COLUMN.match(name):
        name = _COLUMNS.get(int(name))
    if name not in _LABELS:
        raise CLIError(UNKNOWN)
    if sep and len(rest.split("/")) > len(_LABELS[name]):
        raise CLIError(UNKNOWN)
    return name + sep + rest


def _number(value):
    """
    Counters and gauges come back as floats; the data format shows whole
    numbers as C{#N}.
    """
    return int(value) if float(value).is_integer() else value


def elements(catalog):
    """
    Every element, in walk order.

    @param catalog: a L{cgpro.core.stats.Catalog}.
    @return: C{[(elementName, value)]}: each figure (the sum over its
        samples) followed by its samples, C{name/label/...}, sorted.
    """
    out = []
    for name, _, _, labels, _, samples in catalog.collect():
        out.append((name, _number(sum(value for _, value in samples))))
        if labels:
            for values, value in sorted(samples):
                out.append(("/".join((name,) + tuple(values)), _number(value)))
    return out


@command("GETSTATELEMENT", aliases=("GETSNMPELEMENT",))
def getStatElement(session, args):
    """GETSTATELEMENT objectID: the value of one statistics element."""
    objectID = args.string("objectID")
    args.end()
    _requireMonitor(session)
    return _number(_catalog(session).element(canonical(objectID)))


@command("GETNEXTSTATNAME")
def getNextStatName(session, args):
    """GETNEXTSTATNAME objectID: the name of the next element ("" after the last)."""
    objectID = args.string("objectID")
    args.end()
    _requireMonitor(session)
    names = [name for name, _ in elements(_catalog(session))]
    if not objectID:
        return names[0] if names else ""
    current = canonical(objectID)
    if current not in names:
        raise CLIError(UNKNOWN)
    index = names.index(current) + 1
    return names[index] if index < len(names) else ""


@command("LISTSTATELEMENTS")
def listStatElements(session, args):
    """LISTSTATELEMENTS: every statistics element with its value (cgpro's own)."""
    args.end()
    _requireMonitor(session)
    return dict(elements(_catalog(session)))
