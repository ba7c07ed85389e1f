# -*- test-case-name: tests.cli.test_commands -*-
"""
Forwarder and group commands of the administrative command table
(cli.md 6.3 and 6.4).  Domain Administrators need C{CanCreateForwarders}
or C{CanCreateGroups} to change them.
"""

from cgpro.core import names
from cgpro.core.commands import command, requireDomainAdmin, requireDomainReader


def _name(session, args, what):
    """
    @return: C{(domain, name)}, the domain resolved (aliases allowed).
    """
    name, domainName = names.splitAddress(args.string(what), session.domain)
    return session.directory.domain(domainName).name, name


def _listDomain(session, args):
    name = args.optionalString()
    args.end()
    domain = session.directory.domain(name, default=session.domain).name
    requireDomainReader(session, domain)
    return domain


@command("LISTFORWARDERS")
def listForwarders(session, args):
    """LISTFORWARDERS [domain]: array of forwarder names."""
    return session.directory.listForwarders(_listDomain(session, args))


@command("CREATEFORWARDER")
def createForwarder(session, args):
    """CREATEFORWARDER name TO address."""
    domain, name = _name(session, args, "forwarder name")
    args.keyword("TO")
    target = args.string("address")
    args.end()
    requireDomainAdmin(session, domain, "CanCreateForwarders")
    return session.directory.createForwarder("%s@%s" % (name, domain), target)


@command("GETFORWARDER")
def getForwarder(session, args):
    """GETFORWARDER name: the address it forwards to."""
    domain, name = _name(session, args, "forwarder name")
    args.end()
    requireDomainReader(session, domain)
    return session.directory.getForwarder("%s@%s" % (name, domain))


@command("RENAMEFORWARDER")
def renameForwarder(session, args):
    """RENAMEFORWARDER old INTO new."""
    domain, name = _name(session, args, "forwarder name")
    args.keyword("INTO")
    new = args.string("new name")
    args.end()
    requireDomainAdmin(session, domain, "CanCreateForwarders")
    return session.directory.renameForwarder("%s@%s" % (name, domain), new, domain)


@command("DELETEFORWARDER")
def deleteForwarder(session, args):
    """DELETEFORWARDER name."""
    domain, name = _name(session, args, "forwarder name")
    args.end()
    requireDomainAdmin(session, domain, "CanCreateForwarders")
    return session.directory.deleteForwarder("%s@%s" % (name, domain))


@command("FINDFORWARDERS")
def findForwarders(session, args):
    """FINDFORWARDERS domain TO address: forwarders pointing at address."""
    domain = session.directory.domain(args.string("domain name")).name
    args.keyword("TO")
    target = args.string("address")
    args.end()
    requireDomainReader(session, domain)
    return session.directory.findForwarders(domain, target)


@command("LISTGROUPS")
def listGroups(session, args):
    """LISTGROUPS [domain]: array of group names."""
    return session.directory.listGroups(_listDomain(session, args))


@command("CREATEGROUP")
def createGroup(session, args):
    """CREATEGROUP name [settings]."""
    domain, name = _name(session, args, "group name")
    settings = args.dict("group settings") if not args.atEnd() else None
    args.end()
    requireDomainAdmin(session, domain, "CanCreateGroups")
    return session.directory.createGroup("%s@%s" % (name, domain), settings)


@command("GETGROUP")
def getGroup(session, args):
    """GETGROUP name: the group's settings (Members, RealName, ...)."""
    domain, name = _name(session, args, "group name")
    args.end()
    requireDomainReader(session, domain)
    return session.directory.getGroup("%s@%s" % (name, domain))


@command("SETGROUP")
def setGroup(session, args):
    """SETGROUP name settings: replace the group's settings."""
    domain, name = _name(session, args, "group name")
    settings = args.dict("group settings")
    args.end()
    requireDomainAdmin(session, domain, "CanCreateGroups")
    return session.directory.setGroup("%s@%s" % (name, domain), settings)


@command("RENAMEGROUP")
def renameGroup(session, args):
    """RENAMEGROUP old INTO new."""
    domain, name = _name(session, args, "group name")
    args.keyword("INTO")
    new = args.string("new name")
    args.end()
    requireDomainAdmin(session, domain, "CanCreateGroups")
    return session.directory.renameGroup("%s@%s" % (name, domain), new, domain)


@command("DELETEGROUP")
def deleteGroup(session, args):
    """DELETEGROUP name."""
    domain, name = _name(session, args, "group name")
    args.end()
    requireDomainAdmin(session, domain, "CanCreateGroups")
    return session.directory.deleteGroup("%s@%s" % (name, domain))
