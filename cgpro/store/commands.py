# -*- test-case-name: tests.store.test_commands -*-
"""
Mailbox commands of the administrative command table (cli.md 6.5).

Every command names the account that owns the mailboxes; the store is the
server context's C{mailStore}.

Who may do what
===============

Without C{AUTH}: the account itself, and the administrators of its domain
(server administrators, or Domain Administrators of that domain); reading
commands also for holders of C{DomainsRead}.  They act with all rights.

With C{AUTH <a>} the command runs with the mailbox ACL rights of C{a}
(objects.md 8.3).  Only C{a} itself or an administrator of C{a}'s domain may
ask for it.  The owner of the mailboxes has all rights; anyone else has the
rights the stored ACL grants to C{anyone}, to his C{name@domain}, and to his
bare C{name} when he is in the owner's domain, minus the RFC 4314 negative
rights of C{-identifier} entries.  The right needed:

  - listing a mailbox: C{l} (its counters also need C{r});
  - GETMAILBOXINFO: C{r};
  - CREATEMAILBOX: C{c} (or RFC 4314 C{k}) on the nearest existing
    ancestor of the new name, INBOX for a top-level name;
  - DELETEMAILBOX: C{d} (or C{x}) on every mailbox deleted;
  - RENAMEMAILBOX: C{d} (or C{x}) on every mailbox moved, and C{c} (or
    C{k}) where the new name is created;
  - GETMAILBOXACL, SETMAILBOXACL, SETMAILBOXCLASS: C{a}.

A refusal for a mailbox the acting account may not even look up (no C{l})
reads C{unknown mailbox}, as RFC 4314 asks, so ACLs do not reveal which
mailboxes exist.  Subscriptions and mailbox aliases are the owner's own:
with C{AUTH} of another account they are refused.

What is stored where
====================

ACLs and subscriptions are the store's (L{MailStore.getAcl},
L{MailStore.subscriptions}).  A mailbox's class (C{CLASS} of CREATEMAILBOX,
SETMAILBOXCLASS) is one line in C{cgpro.class} inside the mailbox folder, so
it moves with RENAME and goes with DELETE.  Mailbox aliases (C{alias ->
"~account/mailbox"} or a mailbox of the account itself; seed 000's C{Travel}
for C{~public/Travel-Schedule}) are a data-format dictionary in
C{MailboxAliases.settings} in the account folder, written through the
directory storage's writer; L{mailboxAliases} reads it for the IMAP module.
"""

import os
import re

from twisted.internet.defer import gatherResults, maybeDeferred, succeed
from twisted.logger import Logger

from cgpro.core import dataformat
from cgpro.core.commands import (
    canAdminDomain,
    command,
    requireDomainAdmin,
    requireSelfOrReader,
)
from cgpro.core.errors import AccessDenied, CLIError, SyntaxCLIError
from cgpro.store.errors import MailboxExists, MailboxNameError, NoSuchMailbox
from cgpro.store.names import INBOX, SEPARATOR, isInferior, normalizeMailboxName

log = Logger()

#: The rights letters of cli.md 6.5 / objects.md 8.3, in display order.
STANDARD_RIGHTS = "lrswipcda"

#: Every letter an ACL may hold: the RFC 2086 set and RFC 4314's additions.
ALL_RIGHTS = STANDARD_RIGHTS + "kxte"

#: The rights an owner has on his own mailboxes (what GETMAILBOXRIGHTS shows).
OWNER_RIGHTS = STANDARD_RIGHTS

#: A right and the letters that grant it (RFC 4314 2.1.1: c = k, d = x).
_GRANTING = {"c": "ck", "d": "dx"}

ANYONE = "anyone"

CLASS_FILE = "cgpro.class"
ALIASES_FILE = "MailboxAliases.settings"

UNKNOWN_MAILBOX = "unknown mailbox"
MAILBOX_EXISTS = "mailbox already exists"
ILLEGAL_NAME = "illegal mailbox name"

_BAD_TEXT = re.compile("[\x00-\x1f\x7f]")


# -- helpers shared with the IMAP module ----------------------------------------

def effectiveRights(acl, actor, ownerDomain):
    """
    The rights an ACL grants an account that does not own the mailbox.

    @param acl: C{dict} identifier -> rights string.
    @param actor: canonical C{name@domain}.
    @param ownerDomain: the domain of the mailbox owner (bare identifiers
        name accounts of that domain).
    @return: C{set} of rights letters.
    """
    name, _, domain = actor.lower().partition("@")
    granted = set()
    denied = set()
    for identifier, rights in acl.items():
        key = identifier.lower()
        negative = key.startswith("-")
        if negative:
            key = key[1:]
        if "@" in key:
            matches = key == actor.lower()
        else:
            matches = key == ANYONE or (key == name and domain == ownerDomain.lower())
        if matches:
            (denied if negative else granted).update(rights)
    return granted - denied


def hasRight(rights, right):
    """
    @return: whether C{rights} (a set of letters) includes C{right} or a
        letter that grants it.
    """
    return any(letter in rights for letter in _GRANTING.get(right, right))


def formatRights(rights):
    """
    @return: the letters of C{rights} as a string in L{ALL_RIGHTS} order.
    """
    return "".join(letter for letter in ALL_RIGHTS if letter in rights)


def aliasesPath(storage, domain, name):
    """
    @return: the path of an account's mailbox aliases file.
    """
    return os.path.join(storage.accountPath(domain, name), ALIASES_FILE)


def mailboxAliases(storage, account):
    """
    An account's mailbox aliases.

    @param storage: the directory storage (C{accountPath} and C{writer}).
    @param account: canonical C{name@domain}.
    @return: C{dict} alias -> target (C{"~owner/mailbox"} or a mailbox
        name of the account); C{{}} when none or unreadable.
    """
    name, _, domain = account.rpartition("@")
    path = aliasesPath(storage, domain, name)
    data = storage.writer.read(path)
    if not data:
        return {}
    try:
        value = dataformat.loads(data.decode("utf-8", "surrogateescape"))
    except ValueError:
        log.warn("{path}: unreadable mailbox aliases ignored", path=path)
        return {}
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(v, str)}


def mailboxClass(store, account, mailbox):
    """
    @return: the class of a mailbox (C{""} when none was set).
    """
    data = store.writer.read(os.path.join(store._folder(account, mailbox), CLASS_FILE))
    if not data:
        return ""
    return data.decode("utf-8", "replace").strip()


# -- argument reading ---------------------------------------------------------------

def _store(session):
    store = getattr(session.server, "mailStore", None)
    if store is None:
        raise CLIError("the mailbox store is not available")
    return store


def _account(session, args, what="account name"):
    """
    @return: C{(domain, name)} canonical names of an account argument.
    """
    domain, name = session.directory.account(args.string(what), session.domain)
    return domain.name, name


def _full(domain, name):
    return "%s@%s" % (name, domain)


def mailboxName(text):
    """
    Check a mailbox name given to a command.

    @return: the canonical name.
    @raise CLIError: C{illegal mailbox name}.
    """
    if not isinstance(text, str) or text.startswith("~"):
        raise CLIError(ILLEGAL_NAME)
    try:
        return normalizeMailboxName(text)
    except MailboxNameError:
        raise CLIError(ILLEGAL_NAME)


def _options(args, found, *keywords):
    """
    Read keyword options (C{AUTH <a>}, C{FILTER <p>}, C{CLASS <c>}) in any
    order into C{found} (upper-case keyword -> string).
    """
    while True:
        keyword = args.optionalKeyword(*keywords)
        if keyword is None:
            return found
        if keyword in found:
            raise SyntaxCLIError("%s given twice" % (keyword,))
        found[keyword] = args.string("%s value" % (keyword.lower(),))


def _mailboxArgument(args):
    """
    C{MAILBOX <name>} or C{MAILBOXES <name>}.

    @return: C{(name, keyword)}.
    """
    keyword = args.keyword("MAILBOX", "MAILBOXES")
    return mailboxName(args.string("mailbox name")), keyword


# -- rights -----------------------------------------------------------------------

class _Access:
    """
    Who a command acts as, on whose mailboxes.

    @ivar owner: canonical C{name@domain} owning the mailboxes.
    @ivar ownerDomain: its domain.
    @ivar actor: the C{AUTH} account whose ACL rights apply, or C{None}
        when the command acts with all rights.
    """

    def __init__(self, store, owner, ownerDomain, actor):
        self.store = store
        self.owner = owner
        self.ownerDomain = ownerDomain
        self.actor = actor

    def rights(self, mailbox):
        """
        @return: the acting account's rights on a mailbox (C{set}).
        """
        if self.actor is None:
            return set(ALL_RIGHTS)
        try:
            acl = self.store.getAcl(self.owner, mailbox)
        except NoSuchMailbox:
            return set()
        return effectiveRights(acl, self.actor, self.ownerDomain)

    def require(self, mailbox, right):
        """
        @raise CLIError: C{unknown mailbox} if the actor may not even see
            it, C{not enough access rights} if he lacks C{right}.
        """
        if self.actor is None:
            return
        rights = self.rights(mailbox)
        if hasRight(rights, right):
            return
        if "l" not in rights:
            raise CLIError(UNKNOWN_MAILBOX)
        raise AccessDenied()

    def requireCreate(self, mailbox):
        """
        Creating C{mailbox} needs C{c} on the nearest existing ancestor
        (INBOX for a top-level name).
        """
        if self.actor is None:
            return
        existing = set(self.store.listMailboxes(self.owner))
        parent = mailbox
        while SEPARATOR in parent:
            parent = parent.rpartition(SEPARATOR)[0]
            if parent in existing:
                break
        else:
            parent = INBOX
        rights = self.rights(parent)
        if not hasRight(rights, "c"):
            raise AccessDenied()


def _access(session, domain, name, auth, write):
    """
    Check the session may run a command on C{name@domain}'s mailboxes.

    @param auth: the C{AUTH} account argument, or C{None}.
    @param write: whether the command changes something.
    @return: an L{_Access}.
    """
    store = _store(session)
    owner = _full(domain, name)
    if auth is None:
        if session.user != owner:
            if write:
                requireDomainAdmin(session, domain)
            else:
                requireSelfOrReader(session, domain, name)
        return _Access(store, owner, domain, None)
    actorDomain, actorName = session.directory.account(auth, session.domain)
    actor = _full(actorDomain.name, actorName)
    if actor != session.user and not canAdminDomain(session, actorDomain.name):
        raise AccessDenied()
    return _Access(store, owner, domain, None if actor == owner else actor)


def _ownerOnly(access):
    """
    Subscriptions and aliases: not through another account's ACL rights.
    """
    if access.actor is not None:
        raise AccessDenied()


# -- store calls --------------------------------------------------------------------

def _storeErrors(failure):
    """
    Turn the store's refusals into the CLI texts of cli.md 6.5.
    """
    if failure.check(NoSuchMailbox):
        raise CLIError(UNKNOWN_MAILBOX)
    if failure.check(MailboxExists):
        raise CLIError(MAILBOX_EXISTS)
    if failure.check(MailboxNameError):
        raise CLIError(ILLEGAL_NAME)
    return failure


def _call(fn, *args):
    return maybeDeferred(fn, *args).addErrback(_storeErrors)


def _gather(deferreds):
    def unwrap(failure):
        from twisted.internet.defer import FirstError

        if failure.check(FirstError):
            return failure.value.subFailure
        return failure

    return gatherResults(deferreds, consumeErrors=True).addErrback(unwrap)


def _requireExists(access, mailbox):
    if not access.store.mailboxExists(access.owner, mailbox):
        raise CLIError(UNKNOWN_MAILBOX)


def _checkClass(value):
    if not value or len(value) > 255 or _BAD_TEXT.search(value):
        raise CLIError("illegal mailbox class")
    return value


def _writeClass(store, owner, mailbox, value):
    path = os.path.join(store._folder(owner, mailbox), CLASS_FILE)
    if not value:
        return store.writer.unlink(path)
    return store.writer.write(path, value.encode("utf-8") + b"\n")


def _patternRegex(pattern):
    """
    An IMAP LIST pattern (C{*} anything, C{%} anything but C{/}) as a
    compiled regular expression; a leading C{INBOX} in any case.
    """
    if pattern[:5].upper() == INBOX and (len(pattern) == 5 or pattern[5] in (SEPARATOR, "*", "%")):
        pattern = INBOX + pattern[5:]
    parts = []
    for char in pattern:
        if char == "*":
            parts.append(".*")
        elif char == "%":
            parts.append("[^/]*")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts) + r"\Z", re.DOTALL)


def _implicitParents(names):
    """
    @return: the parents that exist only through their children.
    """
    present = set(names)
    parents = set()
    for name in names:
        parts = name.split(SEPARATOR)
        for i in range(1, len(parts)):
            parent = SEPARATOR.join(parts[:i])
            if parent not in present:
                parents.add(parent)
    return parents


# -- commands ----------------------------------------------------------------------

@command("LISTMAILBOXES")
def listMailboxes(session, args):
    """LISTMAILBOXES account [FILTER pattern] [AUTH account]: name -> {Messages; Size; Unseen;}."""
    domain, name = _account(session, args)
    options = _options(args, {}, "FILTER", "AUTH")
    args.end()
    access = _access(session, domain, name, options.get("AUTH"), write=False)
    store = access.store
    match = _patternRegex(options.get("FILTER", "*")).match
    names = store.listMailboxes(access.owner)
    result = {}
    wanted = []
    for mailbox in names:
        if not match(mailbox):
            continue
        rights = access.rights(mailbox)
        if "l" not in rights:
            continue
        if "r" in rights:
            wanted.append(mailbox)
        else:
            result[mailbox] = {}
    if access.actor is None:
        for parent in _implicitParents(names):
            if match(parent):
                result[parent] = {}

    def one(mailbox):
        def info(status):
            result[mailbox] = {
                "Messages": status["MESSAGES"], "Size": status["SIZE"],
                "Unseen": status["UNSEEN"],
            }

        def gone(failure):
            failure.trap(NoSuchMailbox)  # deleted meanwhile: not listed

        return store.status(access.owner, mailbox).addCallbacks(info, gone)

    return _gather([one(m) for m in wanted]).addCallback(lambda _: result)


@command("CREATEMAILBOX")
def createMailbox(session, args):
    """CREATEMAILBOX account MAILBOX name [AUTH account] [CLASS class]."""
    domain, name = _account(session, args)
    args.keyword("MAILBOX")
    mailbox = mailboxName(args.string("mailbox name"))
    options = _options(args, {}, "AUTH", "CLASS")
    args.end()
    className = options.get("CLASS")
    if className is not None:
        _checkClass(className)
    access = _access(session, domain, name, options.get("AUTH"), write=True)
    if access.store.mailboxExists(access.owner, mailbox):
        raise CLIError(MAILBOX_EXISTS)
    access.requireCreate(mailbox)
    d = _call(access.store.createMailbox, access.owner, mailbox)
    if className is not None:
        d.addCallback(lambda _: _writeClass(access.store, access.owner, mailbox, className))
    return d.addCallback(lambda _: None)


@command("RENAMEMAILBOX")
def renameMailbox(session, args):
    """RENAMEMAILBOX account MAILBOX[ES] old INTO new [AUTH account]."""
    domain, name = _account(session, args)
    old, form = _mailboxArgument(args)
    options = _options(args, {}, "AUTH")  # accepted before INTO too
    args.keyword("INTO")
    new = mailboxName(args.string("new mailbox name"))
    _options(args, options, "AUTH")
    args.end()
    access = _access(session, domain, name, options.get("AUTH"), write=True)
    store = access.store
    existing = store.listMailboxes(access.owner)
    recursive = form == "MAILBOXES"
    inferiors = [n for n in existing if isInferior(n, old)] if old != INBOX else []
    if old not in existing and not (recursive and inferiors):
        raise CLIError(UNKNOWN_MAILBOX)
    for mailbox in ([old] if old in existing else []) + (inferiors if recursive else []):
        access.require(mailbox, "d")
    if new in existing:
        raise CLIError(MAILBOX_EXISTS)
    access.requireCreate(new)
    d = _call(store.renameMailbox, access.owner, old, new)
    if not recursive and inferiors:
        # The store renames a whole subtree (IMAP RENAME); the MAILBOX form
        # moves only the one mailbox, so the sub-mailboxes go back.
        tops = [n for n in inferiors
                if not any(isInferior(n, m) for m in inferiors if m != n)]

        def moveBack(_):
            back = succeed(None)
            for child in tops:
                back.addCallback(lambda _, c=child: _call(
                    store.renameMailbox, access.owner, new + c[len(old):], c))
            return back

        d.addCallback(moveBack)
    return d.addCallback(lambda _: None)


@command("DELETEMAILBOX")
def deleteMailbox(session, args):
    """DELETEMAILBOX account MAILBOX[ES] name [AUTH account]."""
    domain, name = _account(session, args)
    mailbox, form = _mailboxArgument(args)
    options = _options(args, {}, "AUTH")
    args.end()
    access = _access(session, domain, name, options.get("AUTH"), write=True)
    recursive = form == "MAILBOXES"
    existing = access.store.listMailboxes(access.owner)
    targets = [n for n in existing if n == mailbox or (recursive and isInferior(n, mailbox))]
    if not targets:
        raise CLIError(UNKNOWN_MAILBOX)
    for target in targets:
        access.require(target, "d")
    d = _call(access.store.deleteMailbox, access.owner, mailbox, recursive)
    return d.addCallback(lambda _: None)


@command("GETMAILBOXINFO")
def getMailboxInfo(session, args):
    """GETMAILBOXINFO account MAILBOX name [AUTH account]: {Messages; Size; UIDNext; ...}."""
    domain, name = _account(session, args)
    args.keyword("MAILBOX")
    mailbox = mailboxName(args.string("mailbox name"))
    options = _options(args, {}, "AUTH")
    args.end()
    access = _access(session, domain, name, options.get("AUTH"), write=False)
    _requireExists(access, mailbox)
    access.require(mailbox, "r")

    def info(status):
        return {
            "Messages": status["MESSAGES"], "Size": status["SIZE"],
            "UIDNext": status["UIDNEXT"], "UIDValidity": status["UIDVALIDITY"],
            "Class": mailboxClass(access.store, access.owner, mailbox),
        }

    return _call(access.store.status, access.owner, mailbox).addCallback(info)


@command("SETMAILBOXCLASS")
def setMailboxClass(session, args):
    """SETMAILBOXCLASS account MAILBOX name [AUTH account] CLASS class."""
    domain, name = _account(session, args)
    args.keyword("MAILBOX")
    mailbox = mailboxName(args.string("mailbox name"))
    options = _options(args, {}, "AUTH", "CLASS")
    args.end()
    if "CLASS" not in options:
        raise SyntaxCLIError("CLASS expected")
    value = options["CLASS"]
    if value:
        _checkClass(value)
    access = _access(session, domain, name, options.get("AUTH"), write=True)
    _requireExists(access, mailbox)
    access.require(mailbox, "a")
    return _call(_writeClass, access.store, access.owner, mailbox, value).addCallback(
        lambda _: None)


@command("GETMAILBOXACL")
def getMailboxAcl(session, args):
    """GETMAILBOXACL account MAILBOX name [AUTH account]: identifier -> rights."""
    domain, name = _account(session, args)
    args.keyword("MAILBOX")
    mailbox = mailboxName(args.string("mailbox name"))
    options = _options(args, {}, "AUTH")
    args.end()
    access = _access(session, domain, name, options.get("AUTH"), write=False)
    _requireExists(access, mailbox)
    access.require(mailbox, "a")
    return _call(access.store.getAcl, access.owner, mailbox)


def _checkRights(text):
    letters = text[1:] if text[:1] in ("+", "-") else text
    bad = [c for c in letters if c not in ALL_RIGHTS]
    if bad:
        raise CLIError("illegal access rights: %s" % (text,))
    return letters


@command("SETMAILBOXACL")
def setMailboxAcl(session, args):
    """SETMAILBOXACL account MAILBOX name [AUTH account] {identifier = [+|-]rights;}."""
    domain, name = _account(session, args)
    args.keyword("MAILBOX")
    mailbox = mailboxName(args.string("mailbox name"))
    options = _options(args, {}, "AUTH")
    changes = args.dict("ACL")
    _options(args, options, "AUTH")
    args.end()
    for identifier, rights in changes.items():
        if not identifier.strip() or identifier.strip("-") == "" or _BAD_TEXT.search(identifier):
            raise CLIError("illegal ACL identifier: %s" % (identifier,))
        if not isinstance(rights, str):
            raise CLIError("access rights must be a string: %s" % (identifier,))
        _checkRights(rights)
    access = _access(session, domain, name, options.get("AUTH"), write=True)
    _requireExists(access, mailbox)
    access.require(mailbox, "a")
    acl = access.store.getAcl(access.owner, mailbox)
    for identifier, rights in changes.items():
        current = set(acl.get(identifier, ""))
        letters = _checkRights(rights)
        if rights.startswith("+"):
            current |= set(letters)
        elif rights.startswith("-"):
            current -= set(letters)
        else:
            current = set(letters)
        acl[identifier] = formatRights(current)
    return _call(access.store.setAcl, access.owner, mailbox, acl).addCallback(lambda _: None)


@command("GETMAILBOXRIGHTS")
def getMailboxRights(session, args):
    """GETMAILBOXRIGHTS account MAILBOX name AUTH account: the rights string."""
    domain, name = _account(session, args)
    args.keyword("MAILBOX")
    mailbox = mailboxName(args.string("mailbox name"))
    options = _options(args, {}, "AUTH")
    args.end()
    if "AUTH" not in options:
        raise SyntaxCLIError("AUTH expected")
    access = _access(session, domain, name, options["AUTH"], write=False)
    _requireExists(access, mailbox)
    if access.actor is None:
        return OWNER_RIGHTS
    rights = access.rights(mailbox)
    if not rights and not canAdminDomain(session, domain) and session.user != access.owner:
        raise CLIError(UNKNOWN_MAILBOX)
    return formatRights(rights)


@command("GETACCOUNTSUBSCRIPTION")
def getAccountSubscription(session, args):
    """GETACCOUNTSUBSCRIPTION account [AUTH account]: array of mailbox names."""
    domain, name = _account(session, args)
    options = _options(args, {}, "AUTH")
    args.end()
    access = _access(session, domain, name, options.get("AUTH"), write=False)
    _ownerOnly(access)
    return _call(access.store.subscriptions, access.owner)


@command("SETACCOUNTSUBSCRIPTION")
def setAccountSubscription(session, args):
    """SETACCOUNTSUBSCRIPTION account [AUTH account] (names): replace the subscriptions."""
    domain, name = _account(session, args)
    options = _options(args, {}, "AUTH")
    names = args.array("subscription")
    _options(args, options, "AUTH")
    args.end()
    canonical = []
    for mailbox in names:
        mailbox = mailboxName(mailbox)
        if mailbox not in canonical:
            canonical.append(mailbox)
    access = _access(session, domain, name, options.get("AUTH"), write=True)
    _ownerOnly(access)
    return _call(access.store._saveSubscriptions, access.owner, canonical).addCallback(
        lambda _: None)


def _checkAliases(aliases):
    """
    @return: the aliases with canonical names; targets are C{~account/name}
        or a mailbox name of the account.
    """
    checked = {}
    for alias, target in aliases.items():
        alias = mailboxName(alias)
        if not isinstance(target, str):
            raise CLIError("mailbox alias target must be a string: %s" % (alias,))
        if target.startswith("~"):
            owner, slash, rest = target[1:].partition(SEPARATOR)
            if not owner or not slash or _BAD_TEXT.search(owner):
                raise CLIError("illegal mailbox alias target: %s" % (target,))
            target = "~%s/%s" % (owner, mailboxName(rest))
        else:
            target = mailboxName(target)
        checked[alias] = target
    return checked


@command("GETMAILBOXALIASES")
def getMailboxAliases(session, args):
    """GETMAILBOXALIASES account [AUTH account]: alias -> mailbox."""
    domain, name = _account(session, args)
    options = _options(args, {}, "AUTH")
    args.end()
    access = _access(session, domain, name, options.get("AUTH"), write=False)
    _ownerOnly(access)
    return mailboxAliases(session.directory.storage, access.owner)


@command("SETMAILBOXALIASES")
def setMailboxAliases(session, args):
    """SETMAILBOXALIASES account [AUTH account] {alias = "~account/mailbox";}."""
    domain, name = _account(session, args)
    options = _options(args, {}, "AUTH")
    aliases = _checkAliases(args.dict("mailbox aliases"))
    _options(args, options, "AUTH")
    args.end()
    access = _access(session, domain, name, options.get("AUTH"), write=True)
    _ownerOnly(access)
    storage = session.directory.storage
    path = aliasesPath(storage, domain, name)
    if not aliases:
        d = storage.writer.unlink(path)
    else:
        d = storage.writer.write(path, dataformat.dumpsFile(aliases).encode("utf-8"))
    return d.addCallback(lambda _: None)


__all__ = [
    "ALL_RIGHTS",
    "STANDARD_RIGHTS",
    "effectiveRights",
    "formatRights",
    "hasRight",
    "mailboxAliases",
    "mailboxClass",
    "mailboxName",
]
