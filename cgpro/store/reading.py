# -*- test-case-name: tests.store.test_mailbox -*-
"""
The read side of an open mailbox: sequence numbers, message data, counts
and the CONDSTORE/QRESYNC queries.

A mixin of L{cgpro.store.mailbox.Mailbox}, kept apart because it only
reads the shared index (L{cgpro.store.index.MessageIndex}) and never
changes anything, so the IMAP FETCH/SEARCH code can rely on it being
cheap and side-effect free.  Everything here is synchronous and runs on
the reactor thread; the mailbox must be open.
"""

import os
from bisect import bisect_left

from cgpro.store.errors import MessageExpunged
from cgpro.store.index import MessageInfo
from cgpro.store.names import SEEN


class MailboxReading:
    """
    Read-only accessors of L{cgpro.store.mailbox.Mailbox}.
    """

    @property
    def uids(self):
        """
        The UIDs in order (an C{array}; do not change it).
        """
        return self.index.uids

    def uidAt(self, seq):
        """
        @param seq: a sequence number (1-based).
        @return: its UID.
        @raise IndexError: out of range.
        """
        if seq < 1:
            raise IndexError(seq)
        return self.index.uids[seq - 1]

    def seqOf(self, uid):
        """
        @return: the sequence number of C{uid}, or C{None} if expunged.
        """
        i = self.index.position(uid)
        return i + 1 if i >= 0 else None

    def uidsBetween(self, low, high):
        """
        @return: the UIDs in C{[low, high]} (an C{array} slice).
        """
        start, stop = self.index.span(low, high)
        return self.index.uids[start:stop]

    def _row(self, uid):
        i = self.index.position(uid)
        if i < 0:
            raise MessageExpunged("message %d was expunged" % (uid,))
        return i

    def infoAt(self, i):
        """
        @param i: a row (sequence number minus one).
        @return: a L{MessageInfo}.
        """
        index = self.index
        return MessageInfo(
            index.uids[i], i + 1, self.flagTable.names(index.masks[i]), index.dates[i],
            index.sizes[i], index.modseqs[i],
            os.path.join(self.folder, index.names[i]))

    def info(self, uid):
        """
        @return: a L{MessageInfo} for C{uid}.
        @raise MessageExpunged: no such message.
        """
        return self.infoAt(self._row(uid))

    def flags(self, uid):
        """
        @return: the flag names of C{uid} (C{tuple}).
        """
        return self.flagTable.names(self.index.masks[self._row(uid)])

    def internalDate(self, uid):
        """
        @return: the internal date of C{uid}, seconds since the epoch (UTC).
        """
        return self.index.dates[self._row(uid)]

    def size(self, uid):
        """
        @return: the size of C{uid} in bytes.
        """
        return self.index.sizes[self._row(uid)]

    def modseq(self, uid):
        """
        @return: the MODSEQ of C{uid}'s last change.
        """
        return self.index.modseqs[self._row(uid)]

    def path(self, uid):
        """
        @return: the file of C{uid}; valid until its flags change or it is
            expunged (use L{openMessage} to read from another thread).
        """
        i = self._row(uid)
        return os.path.join(self.folder, self.index.names[i])

    def openMessage(self, uid):
        """
        @return: the message file opened for binary reading; the caller
            closes it.
        @raise MessageExpunged: the message or its file is gone.
        """
        try:
            return open(self.path(uid), "rb")
        except FileNotFoundError:
            raise MessageExpunged("message %d is gone" % (uid,))

    def readMessage(self, uid):
        """
        @return: the message bytes.
        """
        with self.openMessage(uid) as f:
            return f.read()

    @property
    def keywords(self):
        """
        Keywords in use or seen in this mailbox (for FLAGS and
        PERMANENTFLAGS).
        """
        return self.flagTable.keywords()

    @property
    def highestModseq(self):
        """
        HIGHESTMODSEQ: never above a change not yet visible.
        """
        if self._pending:
            return min(p[0] for p in self._pending.values()) - 1
        return self._modseq

    @property
    def recentCount(self):
        """
        Messages at or above the C{\\Recent} boundary.
        """
        uids = self.index.uids
        return len(uids) - bisect_left(uids, self.recentUid)

    @property
    def unseenCount(self):
        """
        Messages without C{\\Seen}.
        """
        return self._unseen

    def firstUnseen(self):
        """
        @return: the sequence number of the first message without
            C{\\Seen}, or C{None}.
        """
        for i, m in enumerate(self.index.masks):
            if not m & SEEN:
                return i + 1
        return None

    def changedSince(self, modseq):
        """
        @return: UIDs whose MODSEQ is above C{modseq} (CHANGEDSINCE).
        """
        index = self.index
        return [uid for uid, m in zip(index.uids, index.modseqs) if m > modseq]

    def expungedSince(self, modseq):
        """
        @return: C{(uids, complete)}: UIDs expunged with a MODSEQ above
            C{modseq}; C{complete} is false when the history was trimmed
            (then VANISHED must also cover UIDs not in the mailbox).
        """
        i = bisect_left(self._history, (modseq + 1, 0))
        return sorted(uid for _, uid in self._history[i:]), modseq >= self._historyModseq
