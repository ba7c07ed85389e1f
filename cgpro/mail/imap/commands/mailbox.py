# -*- test-case-name: tests.mail.imap.test_mailbox -*-
"""
Mailbox commands: SELECT, EXAMINE, CREATE, DELETE, RENAME, SUBSCRIBE,
UNSUBSCRIBE, LIST, LSUB, STATUS, APPEND, CLOSE and UNSELECT.

Names the client sends are in modified UTF-7; C{~owner/name} (or
C{~owner@domain/name}) names another account's mailbox, reached only with
the rights its ACL grants (L{cgpro.mail.imap.commands.acl}).  A mailbox
the user may not even see (no C{l} or C{r} right) is reported as
nonexistent, so ACLs do not reveal names.
"""

import re

from twisted.internet import defer

from cgpro.mail.imap import parser
from cgpro.mail.imap.commands.acl import ALL_RIGHTS, quotaLimit, rightsFor
from cgpro.mail.imap.commands.qresync import parseQresync, resyncLines
from cgpro.mail.imap.errors import IMAPError
from cgpro.mail.imap.parser import ParseError, quote
from cgpro.store.commands import mailboxAliases
from cgpro.store.errors import MailboxNameError, NoSuchMailbox
from cgpro.store.names import INBOX, SEPARATOR, canonicalFlag, normalizeMailboxName

#: SPECIAL-USE attributes (RFC 6154) of well-known top-level names.
SPECIAL_USE = {
    "sent": "\\Sent", "sent items": "\\Sent", "sent messages": "\\Sent",
    "drafts": "\\Drafts", "trash": "\\Trash", "deleted items": "\\Trash",
    "deleted messages": "\\Trash", "junk": "\\Junk", "spam": "\\Junk",
    "archive": "\\Archive",
}

#: Accounts looked at when listing what others share (C{LIST "" "~*"}).
MAX_SHARED_SCAN = 5000

_STATUS_ITEMS = ("MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "SIZE",
                 "HIGHESTMODSEQ")

SYSTEM_FLAGS = "\\Answered \\Flagged \\Deleted \\Seen \\Draft"


class Location:
    """
    Where a client's mailbox name points.

    @ivar owner: the owning account.
    @ivar name: the store's name in the owner's account.
    @ivar display: the name as this client sees it.
    """

    __slots__ = ("owner", "name", "display")

    def __init__(self, owner, name, display):
        self.owner = owner
        self.name = name
        self.display = display

    def __eq__(self, other):
        return isinstance(other, Location) and (self.owner, self.name) == (
            other.owner, other.name)

    def __hash__(self):
        return hash((self.owner, self.name))


def patternRegex(pattern):
    """
    @return: a compiled regex for a LIST pattern (C{*} any, C{%} one level).
    """
    if pattern[:5].upper() == INBOX:
        pattern = INBOX + pattern[5:]
    out = []
    for c in pattern:
        if c == "*":
            out.append(".*")
        elif c == "%":
            out.append("[^/]*")
        else:
            out.append(re.escape(c))
    return re.compile("".join(out) + r"\Z", re.DOTALL)


class MailboxCommands:
    """
    Mixed into L{cgpro.mail.imap.server.IMAPServer}.
    """

    @property
    def store(self):
        return self.context.mailStore

    # -- names and rights ----------------------------------------------------------

    def resolveOwner(self, text):
        """
        @return: the account C{text} (C{name} in the user's domain, or
            C{name@domain}) names, or C{None}.
        """
        if not text:
            return None
        if "@" not in text:
            text = text + "@" + self.user.partition("@")[2]
        try:
            return self.context.directory.resolveLogin(text)
        except Exception:
            return None

    def aliases(self):
        """
        @return: the user's mailbox aliases (C{alias -> target}), e.g.
            seed 000's C{Travel} for C{~public/Travel-Schedule}.
        """
        try:
            return mailboxAliases(self.store.storage, self.user)
        except Exception:
            return {}

    def locate(self, name, followAliases=True):
        """
        @param name: a decoded client mailbox name.
        @return: its L{Location}.
        @raise IMAPError: NONEXISTENT for an unknown owner.
        """
        name = name.rstrip(SEPARATOR) if name not in ("", SEPARATOR) else name
        if followAliases and not name.startswith("~"):
            aliases = self.aliases()
            head = name
            while head:
                target = aliases.get(head)
                if target is not None:
                    found = self.locate(target + name[len(head):], False)
                    return Location(found.owner, found.name, name)
                head = head.rpartition(SEPARATOR)[0]
        if name.startswith("~"):
            ownerText, slash, rest = name[1:].partition(SEPARATOR)
            owner = self.resolveOwner(ownerText)
            if owner is None or not slash or not rest:
                raise IMAPError("NO", "[NONEXISTENT] mailbox does not exist")
            box = normalizeMailboxName(rest)
            if owner == self.user:
                return Location(owner, box, box)
            return Location(owner, box, "~%s/%s" % (ownerText, box))
        box = normalizeMailboxName(name)
        return Location(self.user, box, box)

    def rightsAt(self, location):
        """
        @return: the user's rights on a mailbox (C{""} if it does not exist
            or grants nothing).
        """
        if location.owner == self.user:
            return ALL_RIGHTS
        try:
            acl = self.store.getAcl(location.owner, location.name)
        except (NoSuchMailbox, MailboxNameError):
            return ""
        return rightsFor(acl, self.user, location.owner)

    def require(self, location, letters):
        """
        @raise IMAPError: the user lacks one of C{letters}.
        @return: the user's rights.
        """
        rights = self.rightsAt(location)
        if all(c in rights for c in letters):
            return rights
        if "l" not in rights and "r" not in rights:
            raise IMAPError("NO", "[NONEXISTENT] mailbox does not exist")
        raise IMAPError("NO", "[NOPERM] permission denied")

    # -- SELECT / EXAMINE --------------------------------------------------------------

    def cmd_SELECT(self, tag, args):
        return self._select(args, False)

    def cmd_EXAMINE(self, tag, args):
        return self._select(args, True)

    def _select(self, args, examine):
        resync = None
        if len(args) == 2 and isinstance(args[1], list):
            options = list(args[1])
            while options:
                option = parser.atom(options.pop(0), "select option").upper()
                if option == "CONDSTORE":
                    self.enabled.add("CONDSTORE")
                elif option == "QRESYNC" and options:
                    if "QRESYNC" not in self.enabled:
                        raise ParseError("QRESYNC is not enabled")
                    resync = parseQresync(options.pop(0))
                else:
                    raise ParseError("unknown SELECT option")
        elif len(args) != 1:
            raise ParseError("usage: SELECT mailbox [(CONDSTORE | QRESYNC (...))]")
        if self.mailbox is not None and "QRESYNC" in self.enabled:
            self.untagged("OK [CLOSED] previous mailbox closed")
        self.closeMailbox()
        location = self.locate(parser.mailboxArg(args[0]))
        rights = self.require(location, "r")
        d = self.store.openMailbox(location.owner, location.name)

        def opened(mb):
            readOnly = examine or not any(c in rights for c in "stwe")
            self.selectMailbox(mb, location, readOnly)
            self._announced = (mb, tuple(mb.keywords))
            keywords = " ".join(mb.keywords)
            flags = SYSTEM_FLAGS + (" " + keywords if keywords else "")
            lines = ["FLAGS (%s)" % (flags,)]
            lines.append("OK [PERMANENTFLAGS (%s)] flags permitted" % (
                "" if readOnly else flags + " \\*",))
            lines.append("%d EXISTS" % (len(self.view),))
            lines.append("%d RECENT" % (self.recentCount(),))
            unseen = mb.firstUnseen()
            if unseen is not None:
                lines.append("OK [UNSEEN %d] first unseen" % (unseen,))
            lines.append("OK [UIDVALIDITY %d] UIDs valid" % (mb.uidValidity,))
            lines.append("OK [UIDNEXT %d] predicted next UID" % (mb.uidNext,))
            lines.append("OK [HIGHESTMODSEQ %d] highest" % (mb.highestModseq,))
            self.send("".join("* %s\r\n" % (line,) for line in lines).encode("utf-8"))
            if resync is not None:
                self.send(b"".join(resyncLines(self, mb, resync)))
            return "[%s] %s completed" % ("READ-ONLY" if readOnly else "READ-WRITE",
                                         "EXAMINE" if examine else "SELECT")

        return d.addCallback(opened)

    def cmd_CLOSE(self, tag, args):
        parser.expectArgs(args, 0, "CLOSE")
        mailbox = self.mailbox
        if self.readOnly or "e" not in self.rightsAt(self.location):
            self.closeMailbox()
            return None
        d = mailbox.expunge(None, origin=self)
        d.addBoth(lambda result: (self.closeMailbox(), result)[1])
        return d.addCallback(lambda _: None)

    def cmd_UNSELECT(self, tag, args):
        parser.expectArgs(args, 0, "UNSELECT")
        self.closeMailbox()

    # -- CREATE / DELETE / RENAME -------------------------------------------------------

    def _parentRight(self, location, right):
        if location.owner == self.user:
            return
        parent = location.name.rpartition(SEPARATOR)[0]
        if not parent:
            raise IMAPError("NO", "[NOPERM] permission denied")
        self.require(Location(location.owner, parent, parent), right)

    def cmd_CREATE(self, tag, args):
        if len(args) != 1:
            raise ParseError("usage: CREATE mailbox")
        location = self.locate(parser.mailboxArg(args[0]))
        if location.name == INBOX:
            raise IMAPError("NO", "[ALREADYEXISTS] INBOX always exists")
        self._parentRight(location, "k")
        return self.store.createMailbox(location.owner, location.name)

    def cmd_DELETE(self, tag, args):
        if len(args) != 1:
            raise ParseError("usage: DELETE mailbox")
        location = self.locate(parser.mailboxArg(args[0]))
        if location.name == INBOX:
            raise IMAPError("NO", "[CANNOT] INBOX cannot be deleted")
        self.require(location, "x")
        if self.location == location:
            self.closeMailbox()
        return self.store.deleteMailbox(location.owner, location.name)

    def cmd_RENAME(self, tag, args):
        if len(args) != 2:
            raise ParseError("usage: RENAME old new")
        old = self.locate(parser.mailboxArg(args[0]))
        new = self.locate(parser.mailboxArg(args[1]))
        if old.owner != new.owner:
            raise IMAPError("NO", "[CANNOT] cannot move mailboxes between accounts")
        self.require(old, "x")
        self._parentRight(new, "k")
        if self.location == old:
            self.closeMailbox()
        d = self.store.renameMailbox(old.owner, old.name, new.name)

        def subscriptions(_):
            moved = []
            for name in self.store.subscriptions(self.user):
                if name == old.display or name.startswith(old.display + SEPARATOR):
                    moved.append((name, new.display + name[len(old.display):]))
            ds = []
            for was, now in moved:
                ds.append(self.store.unsubscribe(self.user, was))
                ds.append(self.store.subscribe(self.user, now))
            return defer.gatherResults(ds, consumeErrors=True) if ds else None

        return d.addCallback(subscriptions).addCallback(lambda _: None)

    # -- subscriptions ------------------------------------------------------------------

    def cmd_SUBSCRIBE(self, tag, args):
        if len(args) != 1:
            raise ParseError("usage: SUBSCRIBE mailbox")
        location = self.locate(parser.mailboxArg(args[0]))
        self.require(location, "l")
        if not self.store.mailboxExists(location.owner, location.name):
            raise NoSuchMailbox(location.name)
        return self.store.subscribe(self.user, location.display)

    def cmd_UNSUBSCRIBE(self, tag, args):
        if len(args) != 1:
            raise ParseError("usage: UNSUBSCRIBE mailbox")
        name = parser.mailboxArg(args[0])
        return self.store.unsubscribe(self.user, normalizeMailboxName(name))

    # -- LIST / LSUB ----------------------------------------------------------------------

    def _candidates(self, full):
        """
        @return: C{(names, prefix, owner)}: the names a pattern can match
            (with implicit parents), in the account the pattern points to.
        """
        if full.startswith("~"):
            ownerText, slash, _ = full[1:].partition(SEPARATOR)
            if "*" in ownerText or "%" in ownerText:
                return self._sharedWithMe(), "", None
            if not slash:
                return [], "", None
            owner = self.resolveOwner(ownerText)
            if owner is None:
                return [], "", None
            if owner == self.user:
                return self.store.listMailboxes(owner), "~%s/" % (ownerText,), owner
            names = []
            for name in self.store.listMailboxes(owner):
                if "l" in self.rightsAt(Location(owner, name, name)):
                    names.append(name)
            return names, "~%s/" % (ownerText,), owner
        names = self.store.listMailboxes(self.user)
        for alias in self.aliases():
            try:
                target = self.locate(alias)
            except Exception:
                continue
            if alias not in names and "l" in self.rightsAt(target):
                names.append(alias)
        return names, "", self.user

    def _sharedWithMe(self):
        """
        The mailboxes of other accounts of the user's domain whose ACL lets
        the user look them up, as C{~name/mailbox} (for C{LIST "" "~*"}).
        Only the first L{MAX_SHARED_SCAN} accounts are looked at.
        """
        domain = self.user.partition("@")[2]
        try:
            accounts = list(self.context.directory.listAccounts(domain))[:MAX_SHARED_SCAN]
        except Exception:
            return []
        found = []
        for name in accounts:
            owner = "%s@%s" % (name, domain)
            if owner == self.user:
                continue
            try:
                acls = self.store.listAcls(owner)
            except Exception:
                continue
            for mailbox, acl in sorted(acls.items()):
                if "l" in rightsFor(acl, self.user, owner):
                    found.append("~%s/%s" % (name, mailbox))
        return found

    def cmd_LIST(self, tag, args):
        return self._list(args, "LIST")

    def cmd_LSUB(self, tag, args):
        return self._list(args, "LSUB")

    def _list(self, args, verb):
        selection = set()
        returns = set()
        args = list(args)
        if verb == "LIST" and args and isinstance(args[0], list):
            selection = {parser.atom(a).upper() for a in args.pop(0)}
        if len(args) == 4 and isinstance(args[2], parser.Atom) and args[2].upper() == "RETURN":
            if not isinstance(args[3], list):
                raise ParseError("bad RETURN options")
            returns = {parser.atom(a).upper() if isinstance(a, parser.Atom) else "" for a in
                       args[3]}
            args = args[:2]
        if len(args) != 2:
            raise ParseError("usage: %s reference pattern" % (verb,))
        reference = parser.mailboxArg(args[0])
        patterns = args[1] if isinstance(args[1], list) else [args[1]]
        patterns = [parser.mailboxArg(p, lenient=True) for p in patterns]
        if verb == "LIST" and patterns == [""] and not selection:
            self.untagged('LIST (\\Noselect) "/" ""')
            return
        subscribedOnly = verb == "LSUB" or "SUBSCRIBED" in selection
        showSubscribed = subscribedOnly or "SUBSCRIBED" in returns
        specialOnly = "SPECIAL-USE" in selection
        subscribed = set(self.store.subscriptions(self.user)) if showSubscribed else set()
        out = []
        seen = set()
        for pattern in patterns:
            full = reference + pattern
            regex = patternRegex(full)
            if subscribedOnly:
                names, prefix, owner = sorted(subscribed), "", None
                existing = None
            else:
                names, prefix, owner = self._candidates(full)
                existing = set(names)
            allNames = set(names)
            parents = set()
            for name in names:
                parts = name.split(SEPARATOR)
                for i in range(1, len(parts)):
                    parents.add(SEPARATOR.join(parts[:i]))
            for name in sorted(allNames | parents, key=lambda n: (n != INBOX, n)):
                display = prefix + name
                if display in seen or not regex.match(display):
                    continue
                attrs = []
                if existing is not None:
                    if name not in existing:
                        attrs.append("\\Noselect")
                    attrs.append("\\HasChildren" if name in parents else "\\HasNoChildren")
                elif name in parents and verb == "LSUB" and name not in subscribed:
                    attrs.append("\\Noselect")
                special = SPECIAL_USE.get(name.lower()) if owner == self.user else None
                if special:
                    attrs.append(special)
                elif specialOnly:
                    continue
                if showSubscribed and display in subscribed and verb == "LIST":
                    attrs.append("\\Subscribed")
                if subscribedOnly and display not in subscribed and not (
                        verb == "LSUB" and name in parents and "%" in full):
                    continue
                seen.add(display)
                out.append(b'* %s (%s) "/" %s\r\n' % (
                    verb.encode(), " ".join(attrs).encode(),
                    quote(parser.encodeMailboxName(display))))
        self.send(b"".join(out))

    # -- STATUS -----------------------------------------------------------------------------

    def cmd_STATUS(self, tag, args):
        if len(args) != 2 or not isinstance(args[1], list) or not args[1]:
            raise ParseError("usage: STATUS mailbox (items)")
        items = [parser.atom(i, "status item").upper() for i in args[1]]
        for item in items:
            if item not in _STATUS_ITEMS:
                raise ParseError("unknown status item %s" % (item[:30],))
        location = self.locate(parser.mailboxArg(args[0]))
        self.require(location, "r")
        if "HIGHESTMODSEQ" in items:
            self.enabled.add("CONDSTORE")

        def report(status):
            values = " ".join("%s %d" % (i, status[i]) for i in items)
            self.untagged(b"STATUS " + quote(parser.encodeMailboxName(location.display)) +
                          (" (%s)" % (values,)).encode("ascii"))

        return self.store.status(location.owner, location.name).addCallback(report)

    # -- APPEND ----------------------------------------------------------------------------

    def cmd_APPEND(self, tag, args):
        if len(args) < 2 or len(args) > 4:
            raise ParseError("usage: APPEND mailbox [(flags)] [date-time] message")
        location = self.locate(parser.mailboxArg(args[0]))
        rest = list(args[1:])
        message = rest.pop()
        if not isinstance(message, bytes):
            raise ParseError("the message must be a literal")
        flags = []
        date = None
        for token in rest:
            if isinstance(token, list):
                for f in token:
                    flag = parser.atom(f, "flag")
                    if flag.lower() == "\\recent":
                        continue
                    try:
                        flags.append(canonicalFlag(flag))
                    except MailboxNameError:
                        raise ParseError("bad flag %s" % (flag[:30],))
            else:
                date = parser.parseDateTime(token)
        if not self.store.mailboxExists(location.owner, location.name):
            if location.owner == self.user or "l" in self.rightsAt(location):
                raise IMAPError("NO", "[TRYCREATE] mailbox does not exist")
            raise IMAPError("NO", "[NONEXISTENT] mailbox does not exist")
        self.require(location, "i")
        limit = quotaLimit(self.context.directory, location.owner)
        if limit is not None:
            used, _ = self.store.accountUsage(location.owner)
            if used + len(message) > limit:
                raise IMAPError("NO", "[OVERQUOTA] mailbox is full")
        if self.mailbox is not None and self.location == location:
            return self._appended(self.mailbox, self.mailbox.append(message, flags, date, self))

        def opened(mb):
            d = mb.append(message, flags, date, self)
            d.addBoth(lambda result: (mb.close(), result)[1])
            return self._appended(mb, d)

        return self.store.openMailbox(location.owner, location.name).addCallback(opened)

    def _appended(self, mb, d):
        validity = mb.uidValidity
        return d.addCallback(lambda uid: "[APPENDUID %d %d] APPEND completed" % (validity, uid))
