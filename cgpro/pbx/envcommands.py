# -*- test-case-name: tests.pbx.test_envcommands -*-
"""
CLI commands of the Real-Time application environments (cli.md 6.7).

Who may do what:

  - a Domain's environment: its Domain Administrators (right C{Domain};
    no finer right is documented for PBX files) and server administrators;
  - the server-wide environment: server administrators (C{Master} or
    C{AllDomains}); installing or deleting a program (C{.py}) needs
    C{Master}, and is never possible in a Domain environment
    (L{cgpro.pbx.environment});
  - the stock environment: read by any administrator (any server right or
    C{Domain}); it cannot be changed over the CLI.

Importing this module also registers C{GETCDRS} (L{cgpro.pbx.cdr}).  The
CLI (layer 3) may not import the PBX (layer 4, C{tests/test_layering.py}),
so the module that assembles the server (L{cgpro.service}, or the PBX host
it builds) imports this one for its registration side effect.

The commands find the server's L{Environments} as
C{session.context.pbxEnvironments}.  The PBX host sets that attribute when
it builds the Real-Time module; until then the first command creates one
over the context's base folder and writer (the directory storage's writer
when the context has none, as in tests) and keeps it there, so every
command of the process shares one.

C{CREATESERVERPBX} and C{LISTSERVERPBXFILES} take the language as an
optional argument, written C{FILE <language>} like the Domain variants or
bare.  The Perl client glues it onto C{CreateServerPBX} without a space
(C{CreateServerPBXfrench}); the command word is split off by the CLI
dispatcher (L{cgpro.cli.protocol}), so accepting that form needs a
prefix match there: this table only sees C{CREATESERVERPBX}.
"""

from cgpro.core.commands import (
    command,
    isServerAdmin,
    requireDomainAdmin,
    requireServerAdmin,
)
from cgpro.core.errors import AccessDenied, CLIError
# importing cdr registers GETCDRS along with the commands of this module
from cgpro.pbx.cdr import getCDRs
from cgpro.pbx.environment import DOMAIN, SERVER, STOCK, Environments

#: Rights that make an account "an administrator" for reading stock files.
ADMIN_RIGHTS = frozenset(["Master", "AllDomains", "DomainsRead", "Settings", "Domain"])


def environments(session):
    """
    The process-wide L{Environments} of the session's server, created on
    first use when the PBX host has not installed one.
    """
    context = session.context
    envs = getattr(context, "pbxEnvironments", None)
    if envs is None:
        writer = getattr(context, "writer", None)
        if writer is None:
            writer = getattr(getattr(session.directory, "storage", None), "writer", None)
        envs = context.pbxEnvironments = Environments(context.base, writer=writer)
    return envs


def _domain(session, args):
    """
    Read a domain argument and check the session administers it.

    @return: the canonical domain name.
    """
    domain = session.directory.domain(args.string("domain name")).name
    requireDomainAdmin(session, domain)
    return domain


def _optionalLanguage(args):
    """
    Read C{[FILE <language>]}, or a bare language (the server variants).
    """
    if args.optionalKeyword("FILE"):
        return args.string("language name")
    return args.optionalString()


def _mayInstallCode(session):
    return isServerAdmin(session, "Master")


def _storeOrDelete(session, args, scope, domain):
    """
    The shared tail of C{STORE...PBXFILE}: C{DATA <datablock>} or C{DELETE}.
    """
    name = args.string("file name")
    action = args.keyword("DATA", "DELETE")
    data = None
    if action == "DATA":
        data = args.object("file data")
        if not isinstance(data, bytes):
            raise CLIError("file data must be a datablock [base64]")
    args.end()
    envs = environments(session)
    if action == "DELETE":
        return envs.delete(scope, name, domain=domain, mayInstallCode=_mayInstallCode(session))
    return envs.store(scope, name, data, domain=domain, mayInstallCode=_mayInstallCode(session))


# -- Domain environments -------------------------------------------------------

@command("CREATEDOMAINPBX")
def createDomainPBX(session, args):
    """CREATEDOMAINPBX domain [FILE language]: create the Domain's environment."""
    domain = _domain(session, args)
    language = _optionalLanguage(args)
    args.end()
    return environments(session).create(DOMAIN, domain, language)


@command("LISTDOMAINPBXFILES")
def listDomainPBXFiles(session, args):
    """LISTDOMAINPBXFILES domain [FILE language]: {file={Size;Modified};}."""
    domain = _domain(session, args)
    language = _optionalLanguage(args)
    args.end()
    return environments(session).listFiles(DOMAIN, domain, language)


@command("READDOMAINPBXFILE")
def readDomainPBXFile(session, args):
    """READDOMAINPBXFILE domain FILE name: the file as a datablock."""
    domain = _domain(session, args)
    args.keyword("FILE")
    name = args.string("file name")
    args.end()
    return environments(session).read(DOMAIN, name, domain)


@command("STOREDOMAINPBXFILE")
def storeDomainPBXFile(session, args):
    """STOREDOMAINPBXFILE domain FILE name DATA [base64] | DELETE."""
    domain = _domain(session, args)
    args.keyword("FILE")
    return _storeOrDelete(session, args, DOMAIN, domain)


# -- the stock environment ------------------------------------------------------

def _requireAnyAdmin(session):
    if not ADMIN_RIGHTS.intersection(session.rights):
        raise AccessDenied()


@command("LISTSTOCKPBXFILES")
def listStockPBXFiles(session, args):
    """LISTSTOCKPBXFILES [language]: the built-in environment's files."""
    _requireAnyAdmin(session)
    language = _optionalLanguage(args)
    args.end()
    return environments(session).listFiles(STOCK, language=language)


@command("READSTOCKPBXFILE")
def readStockPBXFile(session, args):
    """READSTOCKPBXFILE name: a built-in file as a datablock."""
    _requireAnyAdmin(session)
    args.optionalKeyword("FILE")
    name = args.string("file name")
    args.end()
    return environments(session).read(STOCK, name)


# -- the server-wide environment ---------------------------------------------

@command("CREATESERVERPBX")
def createServerPBX(session, args):
    """CREATESERVERPBX [language]: create the server-wide environment."""
    requireServerAdmin(session)
    language = _optionalLanguage(args)
    args.end()
    return environments(session).create(SERVER, language=language)


@command("LISTSERVERPBXFILES")
def listServerPBXFiles(session, args):
    """LISTSERVERPBXFILES [language]: the server-wide environment's files."""
    requireServerAdmin(session)
    language = _optionalLanguage(args)
    args.end()
    return environments(session).listFiles(SERVER, language=language)


@command("READSERVERPBXFILE")
def readServerPBXFile(session, args):
    """READSERVERPBXFILE name: a server-wide file as a datablock."""
    requireServerAdmin(session)
    args.optionalKeyword("FILE")
    name = args.string("file name")
    args.end()
    return environments(session).read(SERVER, name)


@command("STORESERVERPBXFILE")
def storeServerPBXFile(session, args):
    """STORESERVERPBXFILE name DATA [base64] | DELETE."""
    requireServerAdmin(session)
    args.optionalKeyword("FILE")
    return _storeOrDelete(session, args, SERVER, None)


__all__ = ["environments", "getCDRs"]
