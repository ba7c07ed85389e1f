# -*- test-case-name: tests.cli.test_commands -*-
"""
Domain and server-defaults commands of the administrative command table
(cli.md sections 6.1): creating, listing, renaming and deleting domains,
their settings, aliases, rules and account defaults, and the server-wide
defaults.

Account commands are in L{cgpro.directory.accountcommands}, forwarders and
groups in L{cgpro.directory.objectcommands}.  Every handler checks rights
first, then reads its arguments, then changes the directory; the directory
refuses before changing anything, so a refused command leaves no trace.
"""

from cgpro.core.commands import (
    command,
    isServerAdmin,
    requireDomainAdmin,
    requireDomainReader,
    requireServerAdmin,
)
from cgpro.core.errors import AccessDenied


def _domainArg(session, args, unlessKeyword=()):
    """
    Read an optional domain name (default: the caller's own domain).

    @return: the canonical domain name.
    """
    name = args.optionalString(unlessKeyword)
    return session.directory.domain(name, default=session.domain).name


# -- domains -----------------------------------------------------------------------

@command("LISTDOMAINS")
def listDomains(session, args):
    """LISTDOMAINS: the names of all domains."""
    args.end()
    if isServerAdmin(session, "DomainsRead"):
        return session.directory.listDomains()
    requireDomainReader(session, session.domain)
    return [session.domain]


@command("MAINDOMAINNAME")
def mainDomainName(session, args):
    """MAINDOMAINNAME: the Main Domain's name."""
    args.end()
    return session.directory.mainDomain


@command("LISTADMINDOMAINS")
def listAdminDomains(session, args):
    """LISTADMINDOMAINS [domain]: the domains the caller may administer."""
    args.optionalString()
    args.end()
    if isServerAdmin(session):
        return session.directory.listDomains()
    if "Domain" in session.rights:
        return [session.domain]
    return []


@command("CREATEDOMAIN")
def createDomain(session, args):
    """CREATEDOMAIN name [PATH storage] [settings]."""
    requireServerAdmin(session)
    name = args.string("domain name")
    if args.optionalKeyword("PATH"):
        args.string("storage path")
    settings = args.dict("domain settings") if not args.atEnd() else None
    args.end()
    return session.directory.createDomain(name, settings)


@command("RENAMEDOMAIN")
def renameDomain(session, args):
    """RENAMEDOMAIN old INTO new."""
    requireServerAdmin(session)
    old = args.string("domain name")
    args.keyword("INTO")
    new = args.string("new domain name")
    args.end()
    return session.directory.renameDomain(old, new)


@command("DELETEDOMAIN")
def deleteDomain(session, args):
    """DELETEDOMAIN name [FORCE]."""
    requireServerAdmin(session)
    name = args.string("domain name")
    force = args.optionalKeyword("FORCE") is not None
    args.end()
    return session.directory.deleteDomain(name, force)


@command("GETDOMAINLOCATION")
def getDomainLocation(session, args):
    """GETDOMAINLOCATION [domain]: the domain's storage folder."""
    domain = _domainArg(session, args)
    args.end()
    requireDomainReader(session, domain)
    return "Domains/" + domain


def _domainPartCommands(part, getName, setName, updateName=None, getAliases=(),
                        setAliases=(), updateAliases=(), adminRight=None, serverOnly=False):
    """
    Register the GET/SET(/UPDATE) family of one part of a domain record.
    """

    def get(session, args):
        domain = _domainArg(session, args)
        args.end()
        requireDomainReader(session, domain)
        return session.directory.getDomainPart(domain, part)

    def setter(update):
        def handler(session, args):
            domain = _domainArg(session, args)
            value = args.object(part)
            args.end()
            if serverOnly:
                requireServerAdmin(session)
            else:
                requireDomainAdmin(session, domain, adminRight)
            return session.directory.setDomainPart(domain, part, value, update=update)

        return handler

    get.__doc__ = "%s [domain]" % (getName,)
    command(getName, aliases=getAliases)(get)
    command(setName, aliases=setAliases)(setter(False))
    if updateName:
        command(updateName, aliases=updateAliases)(setter(True))


_domainPartCommands(
    "Settings", "GETDOMAINSETTINGS", "SETDOMAINSETTINGS", "UPDATEDOMAINSETTINGS",
    getAliases=("GETDOMAIN",), setAliases=("SETDOMAIN",), updateAliases=("UPDATEDOMAIN",),
    serverOnly=True,
)
_domainPartCommands("Aliases", "GETDOMAINALIASES", "SETDOMAINALIASES", serverOnly=True)
_domainPartCommands(
    "MailRules", "GETDOMAINMAILRULES", "SETDOMAINMAILRULES",
    getAliases=("GETDOMAINRULES",), setAliases=("SETDOMAINRULES",),
)
_domainPartCommands("SignalRules", "GETDOMAINSIGNALRULES", "SETDOMAINSIGNALRULES")
_domainPartCommands(
    "AccountDefaults", "GETACCOUNTDEFAULTS", "SETACCOUNTDEFAULTS", "UPDATEACCOUNTDEFAULTS",
    adminRight="BasicSettings",
)
_domainPartCommands(
    "AccountTemplate", "GETACCOUNTTEMPLATE", "SETACCOUNTTEMPLATE", "UPDATEACCOUNTTEMPLATE",
    adminRight="BasicSettings",
)


@command("GETDOMAINEFFECTIVESETTINGS")
def getDomainEffectiveSettings(session, args):
    """GETDOMAINEFFECTIVESETTINGS [domain]: settings including defaults."""
    domain = _domainArg(session, args)
    args.end()
    requireDomainReader(session, domain)
    return session.directory.effectiveDomainSettings(domain)


@command("GETDOMAINOBJECTCOUNT")
def getDomainObjectCount(session, args):
    """GETDOMAINOBJECTCOUNT [domain]: accounts, forwarders and groups."""
    domain = _domainArg(session, args)
    args.end()
    requireDomainReader(session, domain)
    return session.directory.domain(domain).objectCount()


# -- server-wide defaults -----------------------------------------------------------------

def _serverDictCommands(name, getName, setName, updateName, aliases=()):
    """
    Register GET/SET/UPDATE of one server-wide dictionary; C{aliases} are
    (get, set, update) older names.
    """

    def get(session, args):
        args.end()
        if not isServerAdmin(session, "DomainsRead") and not isServerAdmin(session, "Settings"):
            raise AccessDenied()
        return session.directory.getServerDict(name)

    def setter(update):
        def handler(session, args):
            value = args.dict("settings")
            args.end()
            requireServerAdmin(session, "Settings")
            return session.directory.setServerDict(name, value, update=update)

        return handler

    older = aliases or ((), (), ())
    command(getName, aliases=older[0])(get)
    command(setName, aliases=older[1])(setter(False))
    command(updateName, aliases=older[2])(setter(True))


_serverDictCommands(
    "DomainDefaults", "GETDOMAINDEFAULTS", "SETDOMAINDEFAULTS", "UPDATEDOMAINDEFAULTS"
)
_serverDictCommands(
    "AccountDefaults",
    "GETSERVERACCOUNTDEFAULTS",
    "SETSERVERACCOUNTDEFAULTS",
    "UPDATESERVERACCOUNTDEFAULTS",
    aliases=(
        ("GETALLACCOUNTSDEFAULTS",),
        ("SETALLACCOUNTSDEFAULTS",),
        ("UPDATEALLACCOUNTSDEFAULTS",),
    ),
)
