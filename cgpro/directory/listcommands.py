# -*- test-case-name: tests.directory.test_lists -*-
"""
Mailing-list commands of the administrative command table (cli.md 6.8):
C{LISTLISTS}, C{GETDOMAINLISTS}, C{CREATELIST}, C{RENAMELIST},
C{DELETELIST}, C{GETLIST}, C{UPDATELIST}, C{LIST}, C{LISTSUBSCRIBERS},
C{GETSUBSCRIBERINFO}, C{SETPOSTINGMODE}, C{PROCESSBOUNCE}.

Rights follow the group commands: server administrators may do
everything; a Domain Administrator needs C{CanCreateLists} to create,
rename, delete or change the lists of his domain (as C{CanCreateGroups}
for groups) and may read them with the C{Domain} right alone, like the
holders of C{DomainsRead}.  A list's owner manages his own list: reads
and changes its settings (not its C{Owner}, silently kept) and its
subscribers, but does not rename or delete it.

C{LIST <list> <operation> [silently] [confirm] <address>} accepts both
keywords and does the same with or without them: this server sends no
welcome, farewell or confirmation messages, the command is an
administrator's act and takes effect at once.
"""

from cgpro.core import names
from cgpro.core.commands import (
    canAdminDomain,
    command,
    isServerAdmin,
    requireDomainAdmin,
    requireDomainReader,
)
from cgpro.core.errors import AccessDenied, SyntaxCLIError
from cgpro.directory.lists import LIST_RIGHT, OPERATIONS, POSTING_OVERRIDES


def _list(session, args, what="list name"):
    """
    Read a list name (a bare name is in the caller's domain).

    @return: the canonical C{name@domain} (domain aliases resolved).
    """
    name, domainName = names.splitAddress(args.string(what), session.domain)
    return "%s@%s" % (name, session.directory.domain(domainName, default=session.domain).name)


def _domainOf(address):
    return address.rpartition("@")[2]


def _isOwner(session, address):
    return session.user is not None and session.directory.isListOwner(session.user, address)


def _requireManager(session, address):
    """
    Changing a list or its subscribers: its domain's administrators with
    L{LIST_RIGHT}, or its owner.
    """
    if canAdminDomain(session, _domainOf(address), LIST_RIGHT):
        return
    session.directory.getList(address)  # an unknown list is reported as such
    if not _isOwner(session, address):
        raise AccessDenied()


def _requireReader(session, address):
    """
    Reading a list: its domain's readers, or its owner.
    """
    if isServerAdmin(session, "DomainsRead") or canAdminDomain(session, _domainOf(address)):
        return
    session.directory.getList(address)
    if not _isOwner(session, address):
        raise AccessDenied()


def _listDomain(session, args):
    name = args.optionalString()
    args.end()
    domain = session.directory.domain(name, default=session.domain).name
    requireDomainReader(session, domain)
    return domain


def _count(value, what):
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise SyntaxCLIError("%s must be a number" % (what,))
    if number < 0:
        raise SyntaxCLIError("%s must not be negative" % (what,))
    return number


@command("LISTLISTS")
def listLists(session, args):
    """LISTLISTS [domain]: array of the domain's list names."""
    return session.directory.listLists(_listDomain(session, args))


@command("GETDOMAINLISTS")
def getDomainLists(session, args):
    """GETDOMAINLISTS [domain]: dict list name -> number of subscribers."""
    return session.directory.getDomainLists(_listDomain(session, args))


@command("CREATELIST")
def createList(session, args):
    """CREATELIST list FOR owner: a bare list name goes to the owner's domain."""
    name = args.string("list name")
    args.keyword("FOR")
    owner = args.string("owner account")
    args.end()
    ownerDomain = owner.rpartition("@")[2] if "@" in owner else session.domain
    listName, domainName = names.splitAddress(name, ownerDomain)
    domain = session.directory.domain(domainName, default=session.domain).name
    requireDomainAdmin(session, domain, LIST_RIGHT)
    return session.directory.createList("%s@%s" % (listName, domain), owner, domain)


@command("RENAMELIST")
def renameList(session, args):
    """RENAMELIST old INTO new."""
    address = _list(session, args)
    args.keyword("INTO")
    new = args.string("new list name")
    args.end()
    requireDomainAdmin(session, _domainOf(address), LIST_RIGHT)
    return session.directory.renameList(address, new, _domainOf(address))


@command("DELETELIST")
def deleteList(session, args):
    """DELETELIST list: the list and its subscribers."""
    address = _list(session, args)
    args.end()
    requireDomainAdmin(session, _domainOf(address), LIST_RIGHT)
    return session.directory.deleteList(address)


@command("GETLIST")
def getList(session, args):
    """GETLIST list: the list's settings, defaults included."""
    address = _list(session, args)
    args.end()
    _requireReader(session, address)
    return session.directory.getList(address)


@command("UPDATELIST")
def updateList(session, args):
    """UPDATELIST list settings: merge settings (a value "default" removes a key)."""
    address = _list(session, args)
    settings = args.dict("list settings")
    args.end()
    _requireManager(session, address)
    keep = () if canAdminDomain(session, _domainOf(address), LIST_RIGHT) else ("Owner",)
    return session.directory.updateList(address, settings, keep=keep)


@command("LIST")
def listOperation(session, args):
    """LIST list subscribe|feed|digest|index|null|banned|unsubscribe [silently] [confirm] addr."""
    address = _list(session, args)
    operation = args.keyword(*(op.upper() for op in OPERATIONS)).lower()
    while args.optionalKeyword("SILENTLY", "CONFIRM"):
        pass
    subscriber = args.string("subscriber address")
    args.end()
    _requireManager(session, address)
    return session.directory.subscribe(address, subscriber, operation)


@command("LISTSUBSCRIBERS")
def listSubscribers(session, args):
    """LISTSUBSCRIBERS list [FILTER text] [limit]: array of subscriber addresses."""
    address = _list(session, args)
    filter = args.string("filter") if args.optionalKeyword("FILTER") else None
    limit = _count(args.object("limit"), "limit") if not args.atEnd() else None
    args.end()
    _requireReader(session, address)
    return session.directory.listSubscribers(address, filter, limit)


@command("GETSUBSCRIBERINFO")
def getSubscriberInfo(session, args):
    """GETSUBSCRIBERINFO list NAME address: {Mode; Subscribed; Bounces; ...}."""
    address = _list(session, args)
    args.keyword("NAME")
    subscriber = args.string("subscriber address")
    args.end()
    _requireReader(session, address)
    return session.directory.getSubscriberInfo(address, subscriber)


@command("SETPOSTINGMODE")
def setPostingMode(session, args):
    """SETPOSTINGMODE list FOR address UNMODERATED|MODERATEALL|PROHIBITED|SPECIAL|number."""
    address = _list(session, args)
    args.keyword("FOR")
    subscriber = args.string("subscriber address")
    mode = args.object("posting mode")
    args.end()
    if isinstance(mode, str) and mode.upper() in POSTING_OVERRIDES:
        mode = mode.upper()
    else:
        mode = _count(mode, "posting mode")
    _requireManager(session, address)
    return session.directory.setPostingMode(address, subscriber, mode)


@command("PROCESSBOUNCE")
def processBounce(session, args):
    """PROCESSBOUNCE list [FATAL] FOR address: count a bounce as a delivery report would."""
    address = _list(session, args)
    fatal = args.optionalKeyword("FATAL") is not None
    args.keyword("FOR")
    subscriber = args.string("subscriber address")
    args.end()
    _requireManager(session, address)
    d = session.directory.processBounce(address, subscriber, fatal)
    d.addCallback(lambda _: None)
    return d
