# -*- test-case-name: tests.store.test_maildir -*-
"""
The accounts' mailboxes in Maildir++ folders: L{MailStore}.

Layout of one account (see L{cgpro.store.names} for names and
L{cgpro.store.journal} for the journal)::

    <account folder>/Maildir/              INBOX, and the Maildir++ root
        cur/ new/ tmp/                     INBOX's messages
        cgpro.journal                      INBOX's UID journal
        cgpro.acl                          INBOX's ACL (data-format dictionary)
        cgpro.subscriptions                the account's subscriptions (array)
        cgpro-trash/                       deleted mailboxes being removed
        .Sent/                             mailbox "Sent"
            cur/ new/ tmp/ maildirfolder cgpro.journal [cgpro.acl]
        .Work.2024/                        mailbox "Work/2024"

Point mutt, mbsync or Dovecot at C{<account folder>/Maildir} to read it.

Who calls what
==============

Local delivery (the queue): L{MailStore.deliver} with a C{deliveryId}
(exactly once: a repeated id returns the first UID), and for a message
recovered after a restart L{MailStore.hasDelivery} first (it falls back to
scanning file names, which carry a hash of the id); L{MailStore.mailboxExists}
and L{MailStore.createMailbox} for rules storing into other mailboxes;
L{MailStore.accountUsage} for quota checks.  Delivering never loads the
mailbox: it reads the last block of the journal once and then appends.

IMAP/POP3: L{MailStore.openMailbox} (shared L{Mailbox}; C{close()} it),
L{MailStore.status}, L{MailStore.listMailboxes}, L{MailStore.createMailbox},
L{MailStore.renameMailbox}, L{MailStore.deleteMailbox},
L{MailStore.copyMessages}, L{MailStore.moveMessages}, subscriptions
(L{MailStore.subscriptions}, L{MailStore.subscribe},
L{MailStore.unsubscribe}), ACL storage (L{MailStore.getAcl},
L{MailStore.setAcl}, L{MailStore.setRights}, L{MailStore.listAcls}; the
IMAP module enforces them), L{MailStore.accountUsage} (QUOTA).  Shared
mailboxes C{~owner/name} are the IMAP module's to resolve: it calls these
methods with the owner's account.

The directory must call L{MailStore.forgetAccount} before it renames or
removes an account folder.
"""

import calendar
import datetime
import os
from collections import OrderedDict
from itertools import islice

from twisted.internet.defer import Deferred, gatherResults, maybeDeferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from cgpro.core import dataformat
from cgpro.core.interfaces import IMailStore
from cgpro.store.errors import MailboxExists, MailboxNameError, NoSuchMailbox, StoreError
from cgpro.store.index import MessageIndex
from cgpro.store.mailbox import Mailbox, _failed
from cgpro.store.names import (
    INBOX, ROOT_FOLDER, NameGenerator, canonicalFlag, deliveryHash, folderName, isInferior,
    mailboxNameFromFolder, normalizeMailboxName, sizeFromName,
)

log = Logger()

ACL_FILE = "cgpro.acl"
SUBSCRIPTIONS_FILE = "cgpro.subscriptions"
TRASH_FOLDER = "cgpro-trash"

#: Messages kept loaded in mailboxes no session has open.
CACHE_MESSAGES = 1000000

#: Mailbox states kept (open or not: UIDNEXT, recent delivery ids); beyond
#: it the least recently used idle ones are forgotten and rebuilt from the
#: journal's tail when next needed.
MAX_STATES = 10000


def _unwrapFirst(failure):
    from twisted.internet.defer import FirstError

    if failure.check(FirstError):
        return failure.value.subFailure
    return failure


def _gather(deferreds):
    return gatherResults(deferreds, consumeErrors=True).addErrback(
        lambda f: _unwrapFirst(f)).addCallback(lambda _: None)


@implementer(IMailStore)
class MailStore:
    """
    L{IMailStore} over Maildir++ folders in the account folders.

    @ivar storage: gives C{accountPath(domain, name)}.
    @ivar writer: the server's L{cgpro.core.files.DurableWriter}.
    @ivar names: the L{NameGenerator} of new files.
    @ivar threadedLoads: read mailboxes in a thread when opening them
        (default: unless the writer is synchronous, as in unit tests).
    """

    def __init__(self, storage, writer, clock=None, cacheMessages=CACHE_MESSAGES,
                 maxStates=MAX_STATES, threadedLoads=None):
        if clock is None:
            from twisted.internet import reactor as clock
        self.storage = storage
        self.writer = writer
        self.clock = clock
        self.names = NameGenerator(clock)
        self.cacheMessages = cacheMessages
        self.maxStates = maxStates
        self.threadedLoads = (not writer.synchronous) if threadedLoads is None else threadedLoads
        self._states = OrderedDict()
        self._roots = {}
        self._idleStates = OrderedDict()
        self._usage = {}
        self._lastUidValidity = 0

    # -- helpers ---------------------------------------------------------------

    def _root(self, account):
        root = self._roots.get(account)
        if root is None:
            name, at, domain = account.rpartition("@")
            if not at or not name or not domain:
                raise NoSuchMailbox("bad account name %r" % (account,))
            path = self.storage.accountPath(domain, name)
            if not path or not os.path.isdir(path):
                raise NoSuchMailbox("unknown account %s" % (account,))
            root = self._roots[account] = os.path.join(path, ROOT_FOLDER)
        return root

    def _folder(self, account, name):
        root = self._root(account)
        return root if name == INBOX else os.path.join(root, folderName(name))

    def _state(self, account, name, create=True, trim=True):
        """
        The L{Mailbox} object of an existing mailbox (INBOX is created on
        first use when C{create}).  There is never more than one per
        mailbox: states are only forgotten when nothing uses them.

        @param trim: forget idle states beyond the bound (not while
            collecting several states for one operation).
        @raise NoSuchMailbox: it does not exist.
        """
        key = (account, name)
        mb = self._states.get(key)
        if mb is not None:
            self._states.move_to_end(key)
            return mb
        folder = self._folder(account, name)
        # INBOX is the root, which also exists as the parent of others.
        if not os.path.isdir(os.path.join(folder, "new") if name == INBOX else folder):
            if name != INBOX or not create:
                raise NoSuchMailbox("no mailbox %s" % (name,))
            return self._createOnDisk(account, name, folder)[0]
        mb = self._states[key] = Mailbox(self, account, name, folder)
        if trim:
            self._trimStates()
        return mb

    def _trimStates(self):
        """
        Forget the least recently used states beyond L{maxStates} that
        nothing uses (not open, nothing in flight), never the newest (the
        caller's).
        """
        excess = len(self._states) - self.maxStates
        if excess <= 0:
            return
        for key in list(islice(self._states, min(len(self._states) - 1, 2 * excess + 16))):
            mb = self._states[key]
            if (mb.refs or mb._inFlight or mb._frozen is not None or mb._loading is not None
                    or mb._listeners or mb._pending or mb._pendingTags):
                continue
            del self._states[key]
            self._idleStates.pop(mb, None)
            excess -= 1
            if excess <= 0:
                return

    def _createOnDisk(self, account, name, folder):
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(folder, sub), exist_ok=True)
        ops = [self.writer.mkdir(folder)]
        ops.extend(self.writer.mkdir(os.path.join(folder, sub)) for sub in ("cur", "new", "tmp"))
        if name != INBOX:
            ops.append(self.writer.write(os.path.join(folder, "maildirfolder"), b""))
        mb = self._states[(account, name)] = Mailbox(self, account, name, folder)
        if os.path.exists(mb.journal.path):
            return mb, _gather(ops)  # a damaged Maildir: its journal is loaded as usual
        mb.uidValidity = self._newUidValidity()
        mb.uidNext = 1
        mb._modseq = 1
        mb.index = MessageIndex()
        mb.journal.records = 0
        ops.append(mb._compact())
        self._trimStates()
        return mb, _gather(ops)

    def _newUidValidity(self):
        value = max(int(self.clock.seconds()), self._lastUidValidity + 1) & 0xFFFFFFFF
        self._lastUidValidity = value or 1
        return self._lastUidValidity

    def _dateOf(self, internalDate):
        """
        @return: C{(seconds, explicit)}.
        """
        if internalDate is None:
            return int(self.clock.seconds()), False
        if isinstance(internalDate, datetime.datetime):
            if internalDate.tzinfo is not None:
                return int(internalDate.timestamp()), True
            return calendar.timegm(internalDate.utctimetuple()), True
        return int(internalDate), True

    def _runLoad(self, fn, *args):
        if self.threadedLoads:
            from twisted.internet.threads import deferToThread

            return deferToThread(fn, *args)
        return maybeDeferred(fn, *args)

    def _usageChanged(self, account, size, count):
        usage = self._usage.get(account)
        if usage is not None:
            usage[0] += size
            usage[1] += count

    def _idle(self, mb):
        """
        A mailbox no session has open: keep it loaded while the cache has
        room, then unload the least recently used.
        """
        self._idleStates.pop(mb, None)
        if mb.deleted:
            return
        self._idleStates[mb] = None
        total = sum(len(m) for m in self._idleStates)
        busy = []
        while total > self.cacheMessages and self._idleStates:
            old, _ = self._idleStates.popitem(last=False)
            if old.refs or old._inFlight or old._frozen is not None or old._listeners:
                busy.append(old)
                continue
            total -= len(old)
            old._unload()
        for old in busy:
            if not old.refs:
                self._idleStates[old] = None

    def _whenThawed(self, mb, fn, *args):
        d = Deferred()
        mb._frozen.append(d)
        return d.addCallback(lambda _: fn(*args))

    def _exclusive(self, mailboxes, fn, retry):
        """
        Run C{fn()} with C{mailboxes} frozen and quiet (no write in flight,
        none starting), for renames and deletes.  If one is already frozen,
        wait and C{retry()} from scratch.
        """
        for mb in mailboxes:
            if mb._frozen is not None:
                return self._whenThawed(mb, retry)
        quiet = [mb._freeze() for mb in mailboxes]

        def run(_):
            try:
                return fn()
            finally:
                for mb in mailboxes:
                    mb._thaw()

        return gatherResults(quiet).addCallback(run)

    # -- IMailStore -------------------------------------------------------------

    def deliver(self, account, mailbox, data, flags=(), internalDate=None, deliveryId=None):
        """
        See L{IMailStore.deliver}.  Raises (in the L{Deferred})
        L{NoSuchMailbox} for a mailbox other than INBOX that does not exist.
        """
        try:
            name = normalizeMailboxName(mailbox)
            flags = [canonicalFlag(f) for f in flags]
            date, setTime = self._dateOf(internalDate)
            mb = self._state(account, name)
        except Exception:
            return _failed(Failure())
        tag = deliveryHash(deliveryId) if deliveryId is not None else None

        def retry(_=None):
            return self.deliver(account, name, data, flags, internalDate, deliveryId)

        if mb._frozen is not None:
            return self._whenThawed(mb, retry)
        if not mb._ensureCounters():
            return mb._ensureLoaded().addCallback(retry)
        if tag is not None:
            waiters = mb._pendingTags.get(tag)
            if waiters is not None:
                d = Deferred()
                waiters.append(d)
                return d
            uid = mb._deliveries.get(tag)
            if uid is not None:
                return succeed(uid)
        try:
            mask = mb.flagTable.mask(flags)
        except Exception:
            return _failed(Failure())
        d = mb._appendFiles([(data, None, len(data), mask, date, tag, setTime)])
        d.addCallback(lambda uids: uids[0])
        if tag is not None:
            waiters = mb._pendingTags[tag] = []

            def settle(result):
                del mb._pendingTags[tag]
                for w in waiters:
                    if isinstance(result, Failure):
                        w.errback(result)
                    else:
                        w.callback(result)
                return result

            d.addBoth(settle)
        return d

    def hasDelivery(self, account, mailbox, deliveryId):
        """
        See L{IMailStore.hasDelivery}: the recent ids first, then the file
        names (the index's if the mailbox is loaded, else the folders').
        """
        try:
            mb = self._state(account, normalizeMailboxName(mailbox), create=False)
        except (NoSuchMailbox, MailboxNameError):
            return False
        tag = deliveryHash(deliveryId)
        if tag in mb._deliveries:
            return True
        needle = ",D=" + tag
        if mb.index is not None:
            return any(needle in n for n in mb.index.names)
        for sub in ("new", "cur"):
            try:
                if any(needle in n for n in os.listdir(os.path.join(mb.folder, sub))):
                    return True
            except FileNotFoundError:
                pass
        return False

    def mailboxExists(self, account, mailbox):
        """
        See L{IMailStore.mailboxExists}.  INBOX exists for every account.
        """
        try:
            name = normalizeMailboxName(mailbox)
            folder = self._folder(account, name)
        except (NoSuchMailbox, MailboxNameError):
            return False
        return name == INBOX or os.path.isdir(folder)

    def createMailbox(self, account, mailbox):
        """
        See L{IMailStore.createMailbox}.  Parents are not created: in
        Maildir++ they exist implicitly (C{\\Noselect} until created).

        @raise MailboxExists: (in the L{Deferred}) it already exists.
        """
        try:
            name = normalizeMailboxName(mailbox)
            folder = self._folder(account, name)
            if (account, name) in self._states or os.path.isdir(folder):
                raise MailboxExists("mailbox %s already exists" % (name,))
        except Exception:
            return _failed(Failure())
        return self._createOnDisk(account, name, folder)[1]

    # -- mailboxes --------------------------------------------------------------

    def openMailbox(self, account, mailbox):
        """
        Open a mailbox for a session (SELECT/EXAMINE, POP3 login).

        @return: L{Deferred} firing with the shared L{Mailbox}, loaded; the
            session calls its C{close()} when done.
        """
        try:
            mb = self._state(account, normalizeMailboxName(mailbox))
        except Exception:
            return _failed(Failure())

        def opened(mb):
            mb.refs += 1
            self._idleStates.pop(mb, None)
            return mb

        return mb._ensureLoaded().addCallback(opened)

    def status(self, account, mailbox):
        """
        STATUS of a mailbox.

        @return: L{Deferred} firing with a C{dict}: C{MESSAGES}, C{RECENT},
            C{UIDNEXT}, C{UIDVALIDITY}, C{UNSEEN}, C{HIGHESTMODSEQ}, C{SIZE}.
        """
        def read(mb):
            try:
                return {
                    "MESSAGES": len(mb), "RECENT": mb.recentCount, "UIDNEXT": mb.uidNext,
                    "UIDVALIDITY": mb.uidValidity, "UNSEEN": mb.unseenCount,
                    "HIGHESTMODSEQ": mb.highestModseq, "SIZE": mb.totalSize,
                }
            finally:
                mb.close()

        return self.openMailbox(account, mailbox).addCallback(read)

    def listMailboxes(self, account):
        """
        @return: the names of the account's mailboxes, INBOX first, then
            sorted.  Parents that exist only through their children are not
            listed (they are C{\\Noselect}).
        """
        root = self._root(account)
        names = []
        try:
            entries = os.listdir(root)
        except FileNotFoundError:
            entries = []
        for entry in entries:
            name = mailboxNameFromFolder(entry)
            if name is not None and name != INBOX and os.path.isdir(os.path.join(root, entry)):
                names.append(name)
        names.sort()
        return [INBOX] + names

    def deleteMailbox(self, account, mailbox, recursive=False):
        """
        Delete a mailbox with its messages, ACL and journal.  Sessions that
        have it open get a C{deleted} event and errors from then on.

        @param recursive: also delete the mailboxes below it; otherwise they
            stay (and the deleted one becomes an implicit C{\\Noselect}
            parent).
        @return: L{Deferred} firing once durable.
        """
        try:
            name = normalizeMailboxName(mailbox)
            if name == INBOX:
                raise StoreError("INBOX cannot be deleted")
            existing = self.listMailboxes(account)
            targets = [n for n in existing
                       if n == name or (recursive and isInferior(n, name))]
            if not targets:
                raise NoSuchMailbox("no mailbox %s" % (name,))
            states = [self._state(account, n, trim=False) for n in targets]
        except Exception:
            return _failed(Failure())

        def delete():
            root = self._root(account)
            trash = os.path.join(root, TRASH_FOLDER)
            os.makedirs(trash, exist_ok=True)
            removals = []
            for mb in states:
                if mb.deleted:
                    continue
                target = os.path.join(trash, self.names.make(0))
                os.rename(mb.folder, target)
                removals.append(target)
                self._drop(mb)
            self._usage.pop(account, None)
            ops = [self.writer.mkdir(trash)] + [self.writer.rmtree(t) for t in removals]
            return _gather(ops)

        return self._exclusive(states, delete,
                               lambda *_: self.deleteMailbox(account, mailbox, recursive))

    def _drop(self, mb):
        mb.deleted = True
        self._states.pop((mb.account, mb.name), None)
        self._idleStates.pop(mb, None)
        mb._notify("deleted", [])

    def renameMailbox(self, account, old, new):
        """
        Rename a mailbox and every mailbox below it (RFC 3501 RENAME);
        UIDVALIDITY, UIDs, flags and ACLs go along.  Renaming INBOX moves
        its messages into a new mailbox and leaves INBOX empty.
        Subscriptions are left to the caller.

        @return: L{Deferred} firing once durable.
        @raise MailboxExists: a target name exists.
        """
        try:
            old = normalizeMailboxName(old)
            new = normalizeMailboxName(new)
            if old == new:
                raise MailboxExists("mailbox %s already exists" % (new,))
            if isInferior(new, old):
                raise StoreError("cannot move a mailbox below itself")
            if old == INBOX:
                return self._renameInbox(account, new)
            existing = self.listMailboxes(account)
            sources = [n for n in existing if n == old or isInferior(n, old)]
            if not sources:
                raise NoSuchMailbox("no mailbox %s" % (old,))
            targets = [new + n[len(old):] for n in sources]
            clash = (set(targets) | {new}) & set(existing)
            if clash:
                raise MailboxExists("mailbox %s already exists" % (sorted(clash)[0],))
            states = [self._state(account, n, trim=False) for n in sources]
        except Exception:
            return _failed(Failure())

        def rename():
            moved = []
            for mb, target in zip(states, targets):
                folder = self._folder(account, target)
                if os.path.exists(folder):
                    raise MailboxExists("mailbox %s already exists" % (target,))
            for mb, target in zip(states, targets):
                folder = self._folder(account, target)
                os.rename(mb.folder, folder)
                self._states.pop((account, mb.name), None)
                mb.name = target
                mb.folder = folder
                mb.journal.path = os.path.join(folder, os.path.basename(mb.journal.path))
                self._states[(account, target)] = mb
                moved.append(mb)
            for mb in moved:
                mb._notify("renamed", [])
            return _gather([self.writer.mkdir(states[0].folder)])

        return self._exclusive(states, rename, lambda *_: self.renameMailbox(account, old, new))

    def _renameInbox(self, account, new):
        d = self.createMailbox(account, new)
        d.addCallback(lambda _: self.openMailbox(account, INBOX))

        def move(inbox):
            moved = self.moveMessages(inbox, list(inbox.uids), account, new)
            return moved.addBoth(lambda result: (inbox.close(), result)[1])

        return d.addCallback(move).addCallback(lambda _: None)

    # -- messages across mailboxes -------------------------------------------

    def copyMessages(self, source, uids, account, mailbox, origin=None):
        """
        COPY: add copies of messages of an open mailbox to another mailbox
        (hard links where possible), keeping flags and internal dates.

        @param source: the open L{Mailbox}.
        @param account: the target's owner (a shared mailbox's owner).
        @return: L{Deferred} firing with C{[(sourceUid, newUid)]} once
            durable (COPYUID).
        """
        try:
            name = normalizeMailboxName(mailbox)
            target = self._state(account, name)
            source._checkLoaded()
        except Exception:
            return _failed(Failure())

        def retry(_=None):
            return self.copyMessages(source, uids, account, name, origin)

        for mb in (source, target):
            if mb._frozen is not None:
                return self._whenThawed(mb, retry)
        if not target._ensureCounters():
            return target._ensureLoaded().addCallback(retry)
        index = source.index
        items = []
        copied = []
        for uid in uids:
            i = index.position(uid)
            if i < 0:
                continue
            flags = source.flagTable.names(index.masks[i])
            items.append((None, source.path(uid), index.sizes[i], target.flagTable.mask(flags),
                          index.dates[i], None, True))
            copied.append(uid)
        if not items:
            return succeed([])
        d = target._appendFiles(items, origin)
        return d.addCallback(lambda new: list(zip(copied, new)))

    def moveMessages(self, source, uids, account, mailbox, origin=None):
        """
        MOVE: L{copyMessages}, then expunge the originals once the copies
        are durable.

        @return: L{Deferred} firing with C{[(sourceUid, newUid)]}.
        """
        d = self.copyMessages(source, uids, account, mailbox, origin)

        def expunge(pairs):
            done = source.expunge([s for s, _ in pairs], origin)
            return done.addCallback(lambda _: pairs)

        return d.addCallback(expunge)

    # -- quota -------------------------------------------------------------------

    def accountUsage(self, account):
        """
        Storage used by an account (QUOTA, delivery limits).  Counted once
        from the file names (their C{S=}) and kept up to date after.

        @return: C{(bytes, messages)}.
        """
        usage = self._usage.get(account)
        if usage is None:
            usage = [0, 0]
            for name in self.listMailboxes(account):
                mb = self._states.get((account, name))
                if mb is not None and mb.index is not None:
                    usage[0] += mb.totalSize
                    usage[1] += len(mb)
                    continue
                folder = self._folder(account, name)
                for sub in ("new", "cur"):
                    path = os.path.join(folder, sub)
                    try:
                        entries = os.listdir(path)
                    except FileNotFoundError:
                        continue
                    for entry in entries:
                        size = sizeFromName(entry)
                        if size is None:
                            try:
                                size = os.stat(os.path.join(path, entry)).st_size
                            except OSError:
                                continue
                        usage[0] += size
                        usage[1] += 1
            self._usage[account] = usage
        return tuple(usage)

    # -- subscriptions -----------------------------------------------------------

    def _subscriptionsPath(self, account):
        self._state(account, INBOX)
        return os.path.join(self._root(account), SUBSCRIPTIONS_FILE)

    def subscriptions(self, account):
        """
        @return: the subscribed names (C{list}, sorted); they need not
            exist.
        """
        data = self.writer.read(self._subscriptionsPath(account))
        if not data:
            return []
        try:
            value = dataformat.loads(data.decode("utf-8", "surrogateescape"))
        except ValueError:
            log.warn("{account}: unreadable subscriptions ignored", account=account)
            return []
        return sorted(v for v in value if isinstance(v, str)) if isinstance(value, list) else []

    def _saveSubscriptions(self, account, names):
        path = self._subscriptionsPath(account)
        return self.writer.write(path, dataformat.dumps(sorted(names)).encode("utf-8") + b"\n")

    def subscribe(self, account, mailbox):
        """
        @return: L{Deferred} firing once durable.
        """
        try:
            name = normalizeMailboxName(mailbox)
            names = self.subscriptions(account)
        except Exception:
            return _failed(Failure())
        if name in names:
            return succeed(None)
        return self._saveSubscriptions(account, names + [name])

    def unsubscribe(self, account, mailbox):
        """
        @return: L{Deferred} firing once durable (no error if absent).
        """
        try:
            name = normalizeMailboxName(mailbox)
            names = self.subscriptions(account)
        except Exception:
            return _failed(Failure())
        if name not in names:
            return succeed(None)
        return self._saveSubscriptions(account, [n for n in names if n != name])

    # -- ACL storage ------------------------------------------------------------

    def getAcl(self, account, mailbox):
        """
        @return: the mailbox's ACL: C{dict} identifier -> rights string
            (RFC 4314 letters; meaning is the IMAP module's business).
        @raise NoSuchMailbox: no such mailbox.
        """
        mb = self._state(account, normalizeMailboxName(mailbox))
        data = self.writer.read(os.path.join(mb.folder, ACL_FILE))
        if not data:
            return {}
        try:
            value = dataformat.loads(data.decode("utf-8", "surrogateescape"))
        except ValueError:
            log.warn("{mb}: unreadable ACL ignored", mb=mb)
            return {}
        if not isinstance(value, dict):
            return {}
        return {k: v for k, v in value.items() if isinstance(v, str)}

    def setAcl(self, account, mailbox, acl):
        """
        Replace a mailbox's ACL.

        @param acl: C{dict} identifier -> rights (C{str}); empty rights
            drop the identifier.
        @return: L{Deferred} firing once durable.
        """
        try:
            mb = self._state(account, normalizeMailboxName(mailbox))
            acl = {str(k): str(v) for k, v in acl.items() if v}
        except Exception:
            return _failed(Failure())
        if mb._frozen is not None:
            return self._whenThawed(mb, self.setAcl, account, mailbox, acl)
        path = os.path.join(mb.folder, ACL_FILE)
        if not acl:
            return self.writer.unlink(path)
        return self.writer.write(path, dataformat.dumpsFile(acl).encode("utf-8"))

    def setRights(self, account, mailbox, identifier, rights):
        """
        Set (or with empty C{rights}, remove) one identifier's rights.

        @return: L{Deferred} firing once durable.
        """
        try:
            acl = self.getAcl(account, mailbox)
        except Exception:
            return _failed(Failure())
        acl[identifier] = rights
        return self.setAcl(account, mailbox, acl)

    def listAcls(self, account):
        """
        @return: C{dict} mailbox name -> ACL of the account's mailboxes that
            have one (to find what is shared with whom).
        """
        out = {}
        for name in self.listMailboxes(account):
            if os.path.exists(os.path.join(self._folder(account, name), ACL_FILE)):
                acl = self.getAcl(account, name)
                if acl:
                    out[name] = acl
        return out

    # -- accounts ----------------------------------------------------------------

    def openAccounts(self):
        """
        @return: the accounts this store holds state for (open mailboxes,
            cached roots or usage).
        """
        return sorted({acct for (acct, _) in self._states} | set(self._roots) | set(self._usage))

    def forgetAccount(self, account):
        """
        Let go of an account before its folder is renamed or removed: wait
        for its writes, tell its sessions (C{deleted} events) and drop its
        cached state.

        @return: L{Deferred} firing once done.
        """
        states = [mb for (acct, _), mb in list(self._states.items()) if acct == account]

        def forget():
            for mb in states:
                self._drop(mb)
            self._roots.pop(account, None)
            self._usage.pop(account, None)

        if not states:
            forget()
            return succeed(None)
        return self._exclusive(states, forget, lambda *_: self.forgetAccount(account))
