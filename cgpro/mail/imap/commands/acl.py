# -*- test-case-name: tests.mail.imap.test_acl -*-
"""
Access control (RFC 4314) and quotas (RFC 2087).

The store keeps each mailbox's ACL as identifier -> rights letters; this
module gives the letters their meaning.  The owner of a mailbox always
holds every right.  An identifier is C{anyone}, C{name@domain}, or a bare
C{name} meaning that account in the owner's domain; C{-identifier} takes
rights away.  Matching is the CLI's (L{cgpro.store.commands.effectiveRights}),
so both front-ends agree.  The obsolete letters C{c} and C{d} are accepted
(as C{k} and C{xte}).

Quota: one root (C{""}) per account, its STORAGE limit the account's
C{MaxAccountSize} setting, its usage the store's
L{cgpro.store.maildir.MailStore.accountUsage}.
"""

from cgpro.core import dataformat
from cgpro.mail.imap import parser
from cgpro.mail.imap.errors import IMAPError
from cgpro.mail.imap.parser import ParseError, astring, expectArgs, quote
from cgpro.store.commands import effectiveRights
from cgpro.store.errors import NoSuchMailbox

#: Every right, in RFC 4314 order.
ALL_RIGHTS = "lrswipkxtea"

#: LISTRIGHTS: nothing is granted always; then the groups of rights that
#: go together.
_RIGHT_GROUPS = '"" l r s w i p k x t e a'


def expandRights(text):
    """
    @return: the set of RFC 4314 letters of a rights string (with the
        obsolete C{c} and C{d}).
    @raise ParseError: an unknown letter.
    """
    out = set()
    for c in text.lower():
        if c in ALL_RIGHTS:
            out.add(c)
        elif c == "c":
            out.add("k")
        elif c == "d":
            out.update("xte")
        elif c.isdigit():
            continue
        else:
            raise ParseError("unknown right %r" % (c,))
    return out


def ordered(rights):
    return "".join(c for c in ALL_RIGHTS if c in rights)


def rightsFor(acl, user, owner):
    """
    @param acl: the stored ACL (C{dict}).
    @return: the rights of C{user} on a mailbox of C{owner} (C{str}).
    """
    if user == owner:
        return ALL_RIGHTS
    letters = effectiveRights(acl, user, owner.partition("@")[2])
    return ordered(expandRights("".join(c for c in letters if c in ALL_RIGHTS + "cd")))


def quotaLimit(directory, account):
    """
    @return: the account's storage limit in bytes, or C{None}.
    """
    try:
        value = directory.effectiveAccountSettings(account).get("MaxAccountSize")
        return dataformat.parseSize(value)
    except Exception:
        return None


class AclCommands:
    """
    Mixed into L{cgpro.mail.imap.server.IMAPServer}.
    """

    def _aclTarget(self, token, right="a"):
        location = self.locate(parser.mailboxArg(token))
        self.require(location, right)
        return location

    def _identifier(self, location, ident):
        """
        The stored form of an identifier: a bare name in the owner's domain
        stays bare; a full address of the owner's domain is made bare.
        """
        ident = ident.strip()
        if not ident or any(c in ident for c in "\r\n\0"):
            raise ParseError("bad identifier")
        if ident.lower() == "anyone":
            return "anyone"
        name, at, domain = ident.partition("@")
        if at and domain.lower() == location.owner.partition("@")[2]:
            return name.lower()
        return ident.lower()

    def cmd_GETACL(self, tag, args):
        expectArgs(args, 1, "GETACL mailbox")
        location = self._aclTarget(args[0])
        acl = self.store.getAcl(location.owner, location.name)
        owner = location.owner.partition("@")[0]
        entries = {owner: ALL_RIGHTS}
        for ident, letters in acl.items():
            try:
                entries[ident] = ordered(expandRights(letters))
            except ParseError:
                continue
        self.untagged(b"ACL " + quote(parser.encodeMailboxName(location.display)) + b"".join(
            b" " + quote(i) + b" " + quote(r) for i, r in sorted(entries.items())))

    def cmd_SETACL(self, tag, args):
        expectArgs(args, 3, "SETACL mailbox identifier rights")
        location = self._aclTarget(args[0])
        ident = self._identifier(location, astring(args[1]))
        text = astring(args[2])
        acl = self.store.getAcl(location.owner, location.name)
        current = set()
        if ident in acl:
            try:
                current = expandRights(acl[ident])
            except ParseError:
                current = set()
        if text[:1] == "+":
            current |= expandRights(text[1:])
        elif text[:1] == "-":
            current -= expandRights(text[1:])
        else:
            current = expandRights(text)
        return self.store.setRights(location.owner, location.name, ident, ordered(current))

    def cmd_DELETEACL(self, tag, args):
        expectArgs(args, 2, "DELETEACL mailbox identifier")
        location = self._aclTarget(args[0])
        ident = self._identifier(location, astring(args[1]))
        return self.store.setRights(location.owner, location.name, ident, "")

    def cmd_LISTRIGHTS(self, tag, args):
        expectArgs(args, 2, "LISTRIGHTS mailbox identifier")
        location = self._aclTarget(args[0])
        ident = astring(args[1])
        self.untagged(b"LISTRIGHTS " + quote(parser.encodeMailboxName(location.display)) + b" " +
                      quote(ident) + b" " + _RIGHT_GROUPS.encode("ascii"))

    def cmd_MYRIGHTS(self, tag, args):
        expectArgs(args, 1, "MYRIGHTS mailbox")
        location = self.locate(parser.mailboxArg(args[0]))
        rights = self.rightsAt(location)
        if not rights:
            raise IMAPError("NO", "[NONEXISTENT] mailbox does not exist")
        self.untagged(b"MYRIGHTS " + quote(parser.encodeMailboxName(location.display)) + b" " +
                      quote(rights))

    # -- QUOTA ------------------------------------------------------------------------

    def _quotaLine(self, account, root):
        used, _ = self.store.accountUsage(account)
        limit = quotaLimit(self.context.directory, account)
        if limit is None:
            return b"QUOTA " + quote(root) + b" ()"
        return b"QUOTA %s (STORAGE %d %d)" % (quote(root), (used + 1023) // 1024, limit // 1024)

    def cmd_GETQUOTAROOT(self, tag, args):
        expectArgs(args, 1, "GETQUOTAROOT mailbox")
        location = self.locate(parser.mailboxArg(args[0]))
        self.require(location, "r")
        if not self.store.mailboxExists(location.owner, location.name):
            raise NoSuchMailbox(location.name)
        root = "" if location.owner == self.user else "~" + location.owner
        self.untagged(b"QUOTAROOT " + quote(parser.encodeMailboxName(location.display)) + b" " +
                      quote(root))
        self.untagged(self._quotaLine(location.owner, root))

    def cmd_GETQUOTA(self, tag, args):
        expectArgs(args, 1, "GETQUOTA root")
        root = astring(args[0])
        if root == "":
            account = self.user
        elif root.startswith("~"):
            account = self.resolveOwner(root[1:])
            if account is None:
                raise IMAPError("NO", "no such quota root")
        else:
            raise IMAPError("NO", "no such quota root")
        self.untagged(self._quotaLine(account, root))

    def cmd_SETQUOTA(self, tag, args):
        raise IMAPError("NO", "[NOPERM] quotas are set by the administrator")
