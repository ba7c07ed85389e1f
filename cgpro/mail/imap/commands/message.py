# -*- test-case-name: tests.mail.imap.test_message -*-
"""
Commands on messages of the selected mailbox: STORE, COPY, MOVE,
EXPUNGE and the UID forms (UID FETCH/SEARCH/STORE/COPY/MOVE/EXPUNGE).

Changes go through the shared mailbox with this session as their
C{origin}: other sessions learn of them through their listeners, and this
one reports its own expunges from the same events before the tagged
reply.  COPY and MOVE answer with COPYUID (UIDPLUS).
"""

from cgpro.mail.imap import parser
from cgpro.mail.imap.commands.acl import quotaLimit
from cgpro.mail.imap.errors import IMAPError
from cgpro.mail.imap.parser import ParseError
from cgpro.store.errors import MailboxNameError
from cgpro.store.mailbox import ADD, REMOVE, REPLACE
from cgpro.store.names import DELETED, canonicalFlag

_MODES = {"FLAGS": REPLACE, "+FLAGS": ADD, "-FLAGS": REMOVE}


class MessageCommands:
    """
    Mixed into L{cgpro.mail.imap.server.IMAPServer}.
    """

    def cmd_UID(self, tag, args):
        if not args or not isinstance(args[0], parser.Atom):
            raise ParseError("usage: UID FETCH|SEARCH|STORE|COPY|MOVE|EXPUNGE ...")
        sub = args[0].upper()
        rest = args[1:]
        if sub == "FETCH":
            return self.fetch(rest, uid=True)
        if sub == "SEARCH":
            return self.search(rest, uid=True)
        if sub == "STORE":
            return self.storeFlags(rest, uid=True)
        if sub == "COPY":
            return self.copy(rest, uid=True, move=False)
        if sub == "MOVE":
            return self.copy(rest, uid=True, move=True)
        if sub == "EXPUNGE":
            if len(rest) != 1:
                raise ParseError("usage: UID EXPUNGE sequence-set")
            return self._expunge(self.rows(rest[0], True))
        raise ParseError("unknown UID command")

    def _writable(self):
        if self.readOnly:
            raise IMAPError("NO", "[READ-ONLY] mailbox is read-only")

    # -- STORE ---------------------------------------------------------------------------

    def cmd_STORE(self, tag, args):
        return self.storeFlags(args, uid=False)

    def storeFlags(self, args, uid):
        if len(args) < 3:
            raise ParseError("usage: STORE sequence-set [+-]FLAGS[.SILENT] (flags)")
        rows = self.rows(args[0], uid)
        rest = list(args[1:])
        unchangedSince = None
        if isinstance(rest[0], list):
            modifier = rest.pop(0)
            if len(modifier) != 2 or parser.atom(modifier[0]).upper() != "UNCHANGEDSINCE":
                raise ParseError("unknown STORE modifier")
            unchangedSince = parser.number(modifier[1])
            self.enabled.add("CONDSTORE")
        if len(rest) < 2:
            raise ParseError("missing flags")
        action = parser.atom(rest[0], "STORE action").upper()
        silent = action.endswith(".SILENT")
        mode = _MODES.get(action[:-7] if silent else action)
        if mode is None:
            raise ParseError("bad STORE action %s" % (action[:30],))
        tokens = rest[1] if len(rest) == 2 and isinstance(rest[1], list) else rest[1:]
        flags = []
        for token in tokens:
            flag = parser.atom(token, "flag")
            if flag.lower() == "\\recent":
                continue
            try:
                flags.append(canonicalFlag(flag))
            except MailboxNameError:
                raise ParseError("bad flag %s" % (flag[:30],))
        self._writable()
        rights = self.rightsAt(self.location)
        needed = set()
        for flag in flags or (["\\Seen", "\\Deleted", "\\Flagged"] if mode == REPLACE else []):
            needed.add({"\\seen": "s", "\\deleted": "t"}.get(flag.lower(), "w"))
        if not all(c in rights for c in needed):
            raise IMAPError("NO", "[NOPERM] permission denied")
        uids = [self.view[r] for r in rows]
        d = self.mailbox.setFlags(uids, flags, mode, unchangedSince, origin=self)

        def report(result):
            mb = self.mailbox
            if mb is None:
                return None
            out = [self.keywordUpdate()]
            failed = set(result.failed)
            for r in rows:
                u = self.view[r]
                if silent or u in failed or mb.index.position(u) < 0:
                    continue
                extra = b" UID %d" % u if uid else b""
                extra += self.modseqItem(u)
                out.append(b"* %d FETCH (FLAGS (%s)%s)\r\n" % (
                    r + 1, self.flagsOf(u).encode("utf-8"), extra))
            self.send(b"".join(out))
            if result.failed:
                rows_ = sorted(self.view.index(u) + 1 for u in result.failed) if not uid \
                    else sorted(result.failed)
                return "[MODIFIED %s] conditional STORE failed" % (
                    parser.formatSequenceSet(rows_),)
            return None

        return d.addCallback(report)

    # -- COPY / MOVE ------------------------------------------------------------------------

    def cmd_COPY(self, tag, args):
        return self.copy(args, uid=False, move=False)

    def cmd_MOVE(self, tag, args):
        return self.copy(args, uid=False, move=True)

    def copy(self, args, uid, move):
        verb = "MOVE" if move else "COPY"
        if len(args) != 2:
            raise ParseError("usage: %s sequence-set mailbox" % (verb,))
        rows = self.rows(args[0], uid)
        target = self.locate(parser.mailboxArg(args[1]))
        if move:
            self._writable()
            if not all(c in self.rightsAt(self.location) for c in "te"):
                raise IMAPError("NO", "[NOPERM] permission denied")
        store = self.store
        if not store.mailboxExists(target.owner, target.name):
            if target.owner == self.user:
                raise IMAPError("NO", "[TRYCREATE] mailbox does not exist")
            raise IMAPError("NO", "[NONEXISTENT] mailbox does not exist")
        self.require(target, "i")
        mb = self.mailbox
        index = mb.index
        uids = [self.view[r] for r in rows if index.position(self.view[r]) >= 0]
        limit = quotaLimit(self.context.directory, target.owner)
        if limit is not None and uids:
            used, _ = store.accountUsage(target.owner)
            if used + sum(index.sizes[index.position(u)] for u in uids) > limit:
                raise IMAPError("NO", "[OVERQUOTA] mailbox is full")
        if not uids:
            return None
        operation = store.moveMessages if move else store.copyMessages
        d = operation(mb, uids, target.owner, target.name, origin=self)

        def copied(pairs):
            if not pairs:
                return None
            d2 = store.status(target.owner, target.name)

            def answer(status):
                code = "COPYUID %d %s %s" % (
                    status["UIDVALIDITY"], parser.formatSequenceSet([s for s, _ in pairs]),
                    parser.formatSequenceSet([n for _, n in pairs]))
                if move:
                    self.untagged("OK [%s] moved" % (code,))
                    return None
                return "[%s] COPY completed" % (code,)

            return d2.addCallback(answer)

        return d.addCallback(copied)

    # -- EXPUNGE --------------------------------------------------------------------------------

    def cmd_EXPUNGE(self, tag, args):
        parser.expectArgs(args, 0, "EXPUNGE")
        return self._expunge(None)

    def _expunge(self, rows):
        self._writable()
        if "e" not in self.rightsAt(self.location):
            raise IMAPError("NO", "[NOPERM] permission denied")
        mb = self.mailbox
        if rows is None:
            return mb.expunge(None, origin=self).addCallback(lambda _: None)
        index = mb.index
        uids = []
        for r in rows:
            pos = index.position(self.view[r])
            if pos >= 0 and index.masks[pos] & DELETED:
                uids.append(self.view[r])
        if not uids:
            return None
        return mb.expunge(uids, origin=self).addCallback(lambda _: None)
