# -*- test-case-name: tests.store.test_mailbox -*-
"""
One mailbox as every session shares it: the API the IMAP and POP3 servers
use once they have a mailbox open (L{cgpro.store.maildir.MailStore.openMailbox}).

There is one L{Mailbox} object per mailbox in the process, whatever the
number of sessions: 1,000 IDLE sessions on one INBOX share its index and
cost only their listener.  Everything runs on the reactor thread.

Reading
=======

Rows are sorted by UID; a sequence number is a row number plus one in the
I{shared} index.  An IMAP session must keep its own view when it has not
yet told its client about expunges (it gets them from its listener); the
shared index always reflects every change made so far.

  - C{len(mailbox)}, L{Mailbox.uids} (a read-only C{array}),
    L{Mailbox.uidAt}, L{Mailbox.seqOf}, L{Mailbox.uidsBetween}
  - L{Mailbox.info} / L{Mailbox.infoAt}: a L{MessageInfo} snapshot
  - L{Mailbox.flags}, L{Mailbox.internalDate}, L{Mailbox.size},
    L{Mailbox.modseq}
  - L{Mailbox.openMessage} (a binary file object; its descriptor stays
    valid whatever happens to the file's name, so it can be handed to a
    thread or C{os.sendfile}), L{Mailbox.readMessage}, L{Mailbox.path}
  - counts: L{Mailbox.recentCount}, L{Mailbox.unseenCount},
    L{Mailbox.firstUnseen}, L{Mailbox.totalSize}; L{Mailbox.uidValidity},
    L{Mailbox.uidNext}, L{Mailbox.highestModseq}, L{Mailbox.keywords}
  - CONDSTORE/QRESYNC: L{Mailbox.changedSince}, L{Mailbox.expungedSince}

Changing
========

Every change returns a L{Deferred} that fires once it is durable; a
session replies C{OK} only then.  Flag changes and expunges are applied to
the shared index and announced at once; added messages become visible (and
are announced) once their file and journal line are durable.

  - L{Mailbox.setFlags} (C{replace}/C{add}/C{remove}, optional
    C{unchangedSince}), L{Mailbox.append}, L{Mailbox.expunge},
    L{Mailbox.claimRecent}
  - copy and move between mailboxes are store operations
    (L{cgpro.store.maildir.MailStore.copyMessages}).

Notifications
=============

L{Mailbox.addListener}C{(callable)}: the callable gets a L{MailboxEvent}
on the reactor thread right after each change (C{added}, C{flags},
C{expunged}, C{renamed}, C{deleted}).  The C{origin} given to a change is
passed back in its event, so a session can tell its own changes.  Call
L{Mailbox.close} when done with a mailbox (after removing the listener).
"""

import os
from collections import OrderedDict

from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from cgpro.store import journal as J
from cgpro.store.errors import NoSuchMailbox
from cgpro.store.index import FlagTable
from cgpro.store.reading import MailboxReading
from cgpro.store.names import DELETED, SEEN, SYSTEM_MASK, currentName, nameWithFlags, tagOfName

log = Logger()

#: The journal is rewritten when its lines exceed this factor times the
#: live messages plus L{COMPACT_SLACK}.
COMPACT_FACTOR = 2
COMPACT_SLACK = 1000

#: Expunges kept for QRESYNC across rewrites of the journal.
HISTORY_KEEP = 10000

#: Delivery ids remembered per mailbox for exactly-once delivery.
RECENT_DELIVERIES = 512

REPLACE = "replace"
ADD = "add"
REMOVE = "remove"


class MailboxEvent:
    """
    A change of a mailbox, as listeners see it.

    @ivar kind: C{"added"}, C{"flags"}, C{"expunged"}, C{"renamed"} or
        C{"deleted"}.
    @ivar uids: the UIDs concerned (C{list}; empty for renamed/deleted).
    @ivar origin: what the change's caller passed as C{origin}.
    @ivar modseq: the highest MODSEQ the change used (C{None} if none).
    """

    __slots__ = ("kind", "uids", "origin", "modseq")

    def __init__(self, kind, uids, origin=None, modseq=None):
        self.kind = kind
        self.uids = uids
        self.origin = origin
        self.modseq = modseq

    def __repr__(self):
        return "<MailboxEvent %s %r>" % (self.kind, self.uids)


class FlagResult:
    """
    The outcome of L{Mailbox.setFlags}.

    @ivar changed: C{dict} UID -> new MODSEQ of the messages changed.
    @ivar failed: UIDs not changed because their MODSEQ was above
        C{unchangedSince} (CONDSTORE C{MODIFIED}).
    """

    __slots__ = ("changed", "failed")

    def __init__(self, changed, failed):
        self.changed = changed
        self.failed = failed


def _firstFailure(results):
    for ok, value in results:
        if not ok:
            return value
    return [value for _, value in results]


class Mailbox(MailboxReading):
    """
    The shared state of one mailbox.

    A mailbox that is not open may still be I{unloaded}: it knows only its
    UIDNEXT and MODSEQ counters (read from the journal's tail), which is
    all a delivery needs, so delivering to a closed mailbox of any size is
    O(1).  L{cgpro.store.maildir.MailStore.openMailbox} loads it.

    @ivar account: C{name@domain} of the owner.
    @ivar name: the canonical mailbox name (changes on rename).
    @ivar folder: the Maildir folder (changes on rename).
    @ivar index: the L{MessageIndex}, or C{None} while unloaded.
    @ivar uidValidity: C{None} until loaded.
    @ivar refs: how many opens are not yet closed.
    @ivar deleted: set once the mailbox was deleted under its users.
    """

    def __init__(self, store, account, name, folder):
        self.store = store
        self.account = account
        self.name = name
        self.folder = folder
        self.journal = J.Journal(store.writer, os.path.join(folder, J.JOURNAL_FILE))
        self.index = None
        self.flagTable = FlagTable()
        self.uidValidity = None
        self.uidNext = None
        self._modseq = None
        self.recentUid = 1
        self._historyModseq = 0
        self._history = []
        self._pending = {}
        self._pendingTags = {}
        self._deliveries = OrderedDict()
        self._inFlight = 0
        self._quietWaiters = []
        self._frozen = None
        self._loading = None
        self._listeners = []
        self._lockOwner = None
        self.refs = 0
        self.deleted = False
        self.totalSize = 0
        self._unseen = 0

    def __repr__(self):
        return "<Mailbox %s %r>" % (self.account, self.name)

    def __len__(self):
        return len(self.index) if self.index is not None else 0

    # -- state machinery ----------------------------------------------------

    def _checkAlive(self):
        if self.deleted:
            raise NoSuchMailbox("mailbox %s was deleted" % (self.name,))

    def _checkLoaded(self):
        self._checkAlive()
        if self.index is None:
            raise RuntimeError("%r is not open" % (self,))

    def _nextModseq(self):
        self._modseq += 1
        return self._modseq

    def _later(self, fn, *args, **kwargs):
        """
        Run C{fn} once the mailbox is no longer frozen.
        """
        d = Deferred()
        self._frozen.append(d)
        return d.addCallback(lambda _: fn(*args, **kwargs))

    def _freeze(self):
        """
        Hold new changes and wait until none is in flight (before a rename,
        a delete or a load, which must not race writes to old paths).

        @return: L{Deferred} firing once quiet.
        """
        self._frozen = []
        return self._whenQuiet()

    def _thaw(self):
        waiters, self._frozen = self._frozen or [], None
        for d in waiters:
            d.callback(None)

    def _whenQuiet(self):
        if self._inFlight == 0:
            return succeed(None)
        d = Deferred()
        self._quietWaiters.append(d)
        return d

    def _issue(self, deferreds, onSuccess, onFailure=None):
        """
        Track writer operations until they complete, then run the
        completion on the reactor thread.
        """
        self._inFlight += 1
        if len(deferreds) == 1:
            d = deferreds[0]
        else:
            # Wait for every operation, failed or not: "quiet" must mean
            # that no write to this mailbox's paths is still queued.
            d = DeferredList(deferreds, consumeErrors=True).addCallback(_firstFailure)

        def done(result):
            try:
                if isinstance(result, Failure):
                    return onFailure(result) if onFailure else result
                return onSuccess(result)
            finally:
                self._inFlight -= 1
                if not self.deleted:
                    self._maybeCompact()
                if self._inFlight == 0 and self._quietWaiters:
                    waiters, self._quietWaiters = self._quietWaiters, []
                    for w in waiters:
                        w.callback(None)

        return d.addBoth(done)

    def _notify(self, kind, uids, origin=None, modseq=None):
        if not self._listeners:
            return
        event = MailboxEvent(kind, uids, origin, modseq)
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.failure("mailbox listener {listener!r} failed", listener=listener)

    def _rememberDelivery(self, tag, uid):
        self._deliveries[tag] = uid
        if len(self._deliveries) > RECENT_DELIVERIES:
            self._deliveries.popitem(last=False)

    def _ensureCounters(self):
        """
        @return: whether UIDNEXT and MODSEQ are known without a full load.
        """
        if self.uidNext is not None:
            return True
        tail = J.readTail(self.journal.path)
        if tail is None:
            return False
        self.uidNext, self._modseq = tail.uidNext, tail.modseq
        for tag, uid in reversed(tail.tags):
            self._rememberDelivery(tag, uid)
        return True

    # -- loading ------------------------------------------------------------

    def _ensureLoaded(self):
        """
        @return: L{Deferred} firing with this mailbox once its index is in
            memory.
        """
        if self.deleted:
            return _failed(Failure(NoSuchMailbox("mailbox %s was deleted" % (self.name,))))
        if self.index is not None:
            return succeed(self)
        if self._loading is not None:
            d = Deferred()
            self._loading.append(d)
            return d
        if self._frozen is not None:
            return self._later(self._ensureLoaded)
        self._loading = []
        d = self._freeze()
        d.addCallback(lambda _: self.store._runLoad(J.loadFolder, self.folder))
        d.addCallback(self._applyLoad)

        def finish(result):
            waiters, self._loading = self._loading, None
            self._thaw()
            for w in waiters:
                if isinstance(result, Failure):
                    w.errback(result)
                else:
                    w.callback(result)
            return result

        return d.addBoth(finish)

    def _applyLoad(self, result):
        if result.truncated:
            log.warn("{mailbox}: torn journal tail ignored", mailbox=self)
        if result.bad:
            log.warn("{mailbox}: {n} journal lines skipped", mailbox=self, n=result.bad)
        needHeader = result.header is None
        if needHeader:
            self.uidValidity = self.store._newUidValidity()
        else:
            self.uidValidity = result.header["UIDValidity"]
        self.uidNext = max(result.uidNext, self.uidNext or 1)
        self._modseq = max(result.modseq, self._modseq or 1)
        self.recentUid = result.recentUid
        self._historyModseq = result.historyModseq
        self._history = result.history
        self.flagTable = result.flags
        self.journal.records = result.records
        index = self.index = result.index
        self.totalSize = sum(index.sizes)
        self._unseen = sum(1 for m in index.masks if not m & SEEN)
        self._deliveries.clear()
        for uid, name in zip(index.uids[-RECENT_DELIVERIES:], index.names[-RECENT_DELIVERIES:]):
            tag = tagOfName(name)
            if tag:
                self._rememberDelivery(tag, uid)

        lines = []
        usage = [0, 0]
        for uid, size in result.missing:
            m = self._nextModseq()
            self._history.append((m, uid))
            lines.append(J.formatExpunge(uid, m))
            usage[0] -= size
            usage[1] -= 1
        for filename, size, date, mask in result.adopted:
            uid = self.uidNext
            self.uidNext += 1
            m = self._nextModseq()
            index.add(uid, m, date, size, mask, filename)
            self.totalSize += size
            if not mask & SEEN:
                self._unseen += 1
            lines.append(J.formatAdd(uid, m, date, size, filename, self.flagTable.names(mask)))
            tag = tagOfName(filename)
            if tag:
                self._rememberDelivery(tag, uid)
            usage[0] += size
            usage[1] += 1
        if result.missing or result.adopted:
            log.info("{mailbox}: {a} files adopted, {m} missing files expunged",
                     mailbox=self, a=len(result.adopted), m=len(result.missing))
            self.store._usageChanged(self.account, *usage)
        for path in result.garbage:
            try:
                os.unlink(path)
            except OSError:
                pass
        if needHeader:
            self._compact()
        elif lines:
            self._issue([self.journal.append("".join(lines))], lambda _: None, _logFailure)
        return self

    def _unload(self):
        """
        Drop the index (idle and quiet), keeping the counters for appends.
        """
        self.index = None
        self.flagTable = FlagTable()
        self._history = []
        self.journal.records = None

    # -- compaction ---------------------------------------------------------

    def _maybeCompact(self):
        if self.index is None or self.journal.replacing or self.journal.records is None:
            return
        # A rewrite holds one line per message and per kept expunge.
        floor = len(self.index) + len(self._pending) + min(len(self._history), HISTORY_KEEP)
        if self.journal.records > COMPACT_FACTOR * floor + COMPACT_SLACK:
            self._compact()

    def _trimHistory(self, keep):
        """
        Forget all but the last C{keep} expunges (QRESYNC then reports
        the history as incomplete before them).
        """
        history = self._history
        if len(history) > keep:
            self._historyModseq = max(self._historyModseq, history[-keep - 1][0])
            del history[:-keep]

    def _compact(self):
        """
        Rewrite the journal from memory: header, kept expunge history, one
        line per message (including appends still in flight).
        """
        index = self.index
        self._trimHistory(HISTORY_KEEP)
        history = self._history
        lines = [J.formatHeader(self.uidValidity, self.uidNext, self._modseq,
                                self.recentUid, self._historyModseq)]
        lines.extend(J.formatExpunge(uid, m) for m, uid in history)
        names = self.flagTable.names
        adds = [J.formatAdd(uid, m, d, s, n, names(f)) for uid, m, d, s, f, n in zip(
            index.uids, index.modseqs, index.dates, index.sizes, index.masks, index.names)]
        if self._pending:
            merged = list(zip(index.uids, adds))
            for uid, (m, d, s, n, f) in self._pending.items():
                merged.append((uid, J.formatAdd(uid, m, d, s, n, names(f))))
            merged.sort()
            adds = [line for _, line in merged]
        lines.extend(adds)
        d = self.journal.replace("".join(lines), len(lines) - 1)
        return self._issue([d], lambda _: None, _logFailure)

    # -- appending ----------------------------------------------------------

    def _appendFiles(self, items, origin=None):
        """
        Add messages (deliver, APPEND, COPY): write each file through
        C{tmp/}, journal them in one append, make them visible once both
        are durable.

        @param items: C{[(data, linkFrom, size, mask, date, tag, setTime)]}:
            C{data} bytes or C{None} with C{linkFrom} the path of a file to
            hard-link (copies); C{setTime}: set the file's mtime to C{date}.
        @return: L{Deferred} firing with the C{list} of new UIDs.
        """
        writer = self.store.writer
        folder = self.folder
        ops = []
        lines = []
        added = []
        for data, linkFrom, size, mask, date, tag, setTime in items:
            base = self.store.names.make(size)
            if tag:
                base += ",D=" + tag
            if mask & SYSTEM_MASK:
                filename = "cur/" + nameWithFlags(base, mask)
            else:
                filename = "new/" + base
            final = os.path.join(folder, filename)
            tmp = os.path.join(folder, "tmp", base)
            if linkFrom is not None:
                try:
                    os.link(linkFrom, tmp)
                    op = writer.commit(tmp, final)
                except OSError:
                    try:
                        with open(linkFrom, "rb") as f:
                            data = f.read()
                    except OSError:
                        continue  # the source was expunged meanwhile
                    op = writer.write(final, data, tmpPath=tmp)
            else:
                op = writer.write(final, data, tmpPath=tmp)
            ops.append(op)
            uid = self.uidNext
            self.uidNext += 1
            m = self._nextModseq()
            lines.append(J.formatAdd(uid, m, date, size, filename, self.flagTable.names(mask)))
            self._pending[uid] = (m, date, size, filename, mask)
            added.append((uid, tag, setTime, final))
        if not added:
            return succeed([])
        ops.append(self.journal.append("".join(lines)))

        def ok(_):
            uids = []
            grown = 0
            top = None
            for uid, tag, setTime, final in added:
                m, date, size, filename, mask = self._pending.pop(uid)
                top = m
                if setTime:
                    try:
                        os.utime(final, (date, date))
                    except OSError:
                        pass
                if self.index is not None:
                    self.index.add(uid, m, date, size, mask, filename)
                    self.totalSize += size
                    if not mask & SEEN:
                        self._unseen += 1
                if tag:
                    self._rememberDelivery(tag, uid)
                grown += size
                uids.append(uid)
            self.store._usageChanged(self.account, grown, len(uids))
            if self.index is not None:
                self._notify("added", uids, origin, top)
            return uids

        def failed(failure):
            # Whatever part made it to disk is taken back: the journal gets
            # expunge lines, written files are removed.
            undo = []
            for uid, tag, setTime, final in added:
                self._pending.pop(uid, None)
                undo.append(J.formatExpunge(uid, self._nextModseq()))
                try:
                    os.unlink(final)
                except OSError:
                    pass
            self._issue([self.journal.append("".join(undo))], lambda _: None, _logFailure)
            return failure

        return self._issue(ops, ok, failed)

    def append(self, data, flags=(), internalDate=None, origin=None):
        """
        IMAP APPEND into this open mailbox.

        @param data: the message (C{bytes}).
        @param flags: flag names.
        @param internalDate: seconds since the epoch, a naive UTC or aware
            C{datetime}, or C{None} for now.
        @return: L{Deferred} firing with the new UID once durable.
        """
        if self._frozen is not None:
            return self._later(self.append, data, flags, internalDate, origin)
        try:
            self._checkLoaded()
            mask = self.flagTable.mask(flags)
            date, setTime = self.store._dateOf(internalDate)
        except Exception:
            return _failed(Failure())
        d = self._appendFiles([(data, None, len(data), mask, date, None, setTime)], origin)
        return d.addCallback(lambda uids: uids[0])

    def claimRecent(self):
        """
        Take the C{\\Recent} messages for one session (SELECT): messages
        from the returned UID on are recent for the caller and for no later
        session.

        @return: the first recent UID.
        """
        self._checkLoaded()
        first = self.recentUid
        if self.uidNext > first:
            self.recentUid = self.uidNext
            self._issue([self.journal.append(J.formatRecent(self.recentUid))],
                        lambda _: None, _logFailure)
        return first

    # -- changing -------------------------------------------------------------

    def setFlags(self, uids, flags, mode=REPLACE, unchangedSince=None, origin=None):
        """
        STORE: change the flags of some messages.

        @param uids: UIDs; expunged ones are skipped.
        @param flags: flag names (checked; C{\\Recent} is refused).
        @param mode: L{REPLACE}, L{ADD} or L{REMOVE}.
        @param unchangedSince: CONDSTORE: leave messages whose MODSEQ is
            above it, reporting them in C{failed}.
        @return: L{Deferred} firing with a L{FlagResult} once durable.
        """
        if self._frozen is not None:
            return self._later(self.setFlags, uids, flags, mode, unchangedSince, origin)
        try:
            self._checkLoaded()
            bits = self.flagTable.mask(flags)
            if mode not in (REPLACE, ADD, REMOVE):
                raise ValueError("bad mode %r" % (mode,))
        except Exception:
            return _failed(Failure())
        index = self.index
        masks = index.masks
        modseqs = index.modseqs
        names = self.flagTable.names
        changed = {}
        failed = []
        lines = []
        for uid in uids:
            i = index.position(uid)
            if i < 0:
                continue
            if unchangedSince is not None and modseqs[i] > unchangedSince:
                failed.append(uid)
                continue
            old = masks[i]
            new = bits if mode == REPLACE else (old | bits if mode == ADD else old & ~bits)
            if new == old:
                continue
            m = self._nextModseq()
            masks[i] = new
            modseqs[i] = m
            if (old ^ new) & SEEN:
                self._unseen += -1 if new & SEEN else 1
            lines.append(J.formatFlags(uid, m, names(new)))
            changed[uid] = m
        result = FlagResult(changed, failed)
        if not lines:
            return succeed(result)
        self._notify("flags", list(changed), origin, self._modseq)
        done = list(changed)

        def ok(_):
            self._renameFiles(done)
            return result

        return self._issue([self.journal.append("".join(lines))], ok)

    def _renameFiles(self, uids):
        """
        Mirror system flags into file names (C{cur/<base>:2,<letters>}) for
        other Maildir tools; the journal is already durable.
        """
        index = self.index
        if index is None:
            return
        for uid in uids:
            i = index.position(uid)
            if i < 0:
                continue
            name = index.names[i]
            wanted = currentName(name, index.masks[i])
            if wanted == name:
                continue
            try:
                os.rename(os.path.join(self.folder, name), os.path.join(self.folder, wanted))
            except OSError as e:
                log.warn("{mailbox}: cannot rename {name}: {e}", mailbox=self, name=name, e=e)
                continue
            index.names[i] = wanted

    def expunge(self, uids=None, origin=None):
        """
        Remove messages.

        @param uids: the UIDs to remove whatever their flags (MOVE, UID
            EXPUNGE after the caller kept only C{\\Deleted} ones), or
            C{None} for every message flagged C{\\Deleted} (EXPUNGE, CLOSE).
        @return: L{Deferred} firing with the sorted UIDs removed, once
            durable.
        """
        if self._frozen is not None:
            return self._later(self.expunge, uids, origin)
        try:
            self._checkLoaded()
        except Exception:
            return _failed(Failure())
        index = self.index
        if uids is None:
            rows = [i for i, m in enumerate(index.masks) if m & DELETED]
        else:
            rows = sorted({i for i in map(index.position, uids) if i >= 0})
        if not rows:
            return succeed([])
        lines = []
        paths = []
        gone = []
        freed = 0
        for i in rows:
            uid = index.uids[i]
            m = self._nextModseq()
            self._history.append((m, uid))
            lines.append(J.formatExpunge(uid, m))
            paths.append(os.path.join(self.folder, index.names[i]))
            gone.append(uid)
            freed += index.sizes[i]
            if not index.masks[i] & SEEN:
                self._unseen -= 1
        index.remove(rows)
        self.totalSize -= freed
        if len(self._history) > 2 * HISTORY_KEEP:
            self._trimHistory(HISTORY_KEEP)
        self._notify("expunged", gone, origin, self._modseq)

        def ok(_):
            for path in paths:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
                except OSError as e:
                    log.warn("cannot remove {path}: {e}", path=path, e=e)
            self.store._usageChanged(self.account, -freed, -len(gone))
            return gone

        return self._issue([self.journal.append("".join(lines))], ok)

    # -- sessions -------------------------------------------------------------

    def addListener(self, listener):
        """
        Call C{listener(event)} with a L{MailboxEvent} after each change.
        """
        self._listeners.append(listener)

    def removeListener(self, listener):
        """
        Stop calling C{listener} (no error if it was not added).
        """
        try:
            self._listeners.remove(listener)
        except ValueError:
            pass

    def close(self):
        """
        Release one L{cgpro.store.maildir.MailStore.openMailbox}.
        """
        if self.refs > 0:
            self.refs -= 1
            if self.refs == 0:
                self.store._idle(self)

    def tryLock(self, owner):
        """
        Take the mailbox's exclusive session lock (POP3 holds it for its
        session).  In-process only.

        @return: whether C{owner} now holds it.
        """
        if self._lockOwner is None or self._lockOwner is owner:
            self._lockOwner = owner
            return True
        return False

    def unlock(self, owner):
        """
        Release the lock if C{owner} holds it.
        """
        if self._lockOwner is owner:
            self._lockOwner = None


def _failed(failure):
    d = Deferred()
    d.errback(failure)
    return d


def _logFailure(failure):
    log.failure("mailbox journal write failed", failure)
    return None
