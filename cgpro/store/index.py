# -*- test-case-name: tests.store.test_mailbox -*-
"""
The in-memory index of one mailbox: compact, shared by every session.

A mailbox of 100,000 messages must cost a few tens of megabytes however
many sessions have it selected, so the index keeps one column per field
(C{array} for numbers, one C{list} of file names) rather
than an object per message: about 28 bytes of numbers, 8 of flags and the
file name string (about 110 bytes) per message.  Rows are sorted by UID, so
the message sequence number is the row number plus one and a UID is found
by bisection.

Flags are an C{int} mask per message: bits 0-4 the system flags (see
L{cgpro.store.names}), higher bits keywords numbered by a per-mailbox
L{FlagTable}.
"""

from array import array
from bisect import bisect_left, bisect_right

from cgpro.store.names import SYSTEM_FLAGS, canonicalFlag

class FlagTable:
    """
    Flag names <-> mask bits for one mailbox.

    Keywords keep the spelling they were first seen with and are matched
    case-insensitively afterwards.
    """

    __slots__ = ("_bits", "_names")

    def __init__(self):
        self._names = list(SYSTEM_FLAGS)
        self._bits = {f.lower(): 1 << i for i, f in enumerate(SYSTEM_FLAGS)}

    def bit(self, flag):
        """
        @return: the bit of C{flag}, adding a keyword on first use.
        """
        key = flag.lower()
        bit = self._bits.get(key)
        if bit is None:
            canonicalFlag(flag)
            bit = 1 << len(self._names)
            self._names.append(flag)
            self._bits[key] = bit
        return bit

    def mask(self, flags):
        """
        @param flags: an iterable of flag names (checked).
        @return: their mask.
        """
        mask = 0
        for flag in flags:
            mask |= self.bit(flag)
        return mask

    def names(self, mask):
        """
        @return: the flag names of C{mask}, system flags first (C{tuple}).
        """
        if not mask:
            return ()
        out = []
        i = 0
        while mask:
            if mask & 1:
                out.append(self._names[i])
            mask >>= 1
            i += 1
        return tuple(out)

    def keywords(self):
        """
        @return: every keyword this mailbox has seen (C{list}).
        """
        return self._names[len(SYSTEM_FLAGS):]


class MessageIndex:
    """
    Rows of one mailbox sorted by UID.

    @ivar uids: C{array('I')} of UIDs.
    @ivar modseqs: C{array('Q')}: the MODSEQ of each message's last change.
    @ivar dates: C{array('q')}: internal dates, seconds since the epoch (UTC).
    @ivar sizes: C{array('Q')}: byte sizes (RFC822.SIZE).
    @ivar masks: C{list} of flag masks.
    @ivar names: C{list} of file names relative to the mailbox folder:
        C{new/<base>} or C{cur/<base>:2,<letters>}.
    """

    __slots__ = ("uids", "modseqs", "dates", "sizes", "masks", "names")

    def __init__(self):
        self.uids = array("I")
        self.modseqs = array("Q")
        self.dates = array("q")
        self.sizes = array("Q")
        self.masks = []
        self.names = []

    def __len__(self):
        return len(self.uids)

    def position(self, uid):
        """
        @return: the row of C{uid}, or C{-1}.
        """
        uids = self.uids
        i = bisect_left(uids, uid)
        if i < len(uids) and uids[i] == uid:
            return i
        return -1

    def span(self, low, high):
        """
        @return: the rows C{(start, stop)} whose UIDs lie in C{[low, high]}.
        """
        return bisect_left(self.uids, low), bisect_right(self.uids, high)

    def add(self, uid, modseq, date, size, mask, name):
        """
        Add a row, keeping UID order (appending is the common case).
        """
        uids = self.uids
        if not uids or uids[-1] < uid:
            i = len(uids)
        else:
            i = bisect_left(uids, uid)
        self.uids.insert(i, uid)
        self.modseqs.insert(i, modseq)
        self.dates.insert(i, date)
        self.sizes.insert(i, size)
        self.masks.insert(i, mask)
        self.names.insert(i, name)
        return i

    def remove(self, rows):
        """
        Remove rows.

        @param rows: row numbers, in any order.
        """
        rows = sorted(set(rows))
        if len(rows) <= 32:
            for i in reversed(rows):
                del self.uids[i], self.modseqs[i], self.dates[i], self.sizes[i]
                del self.masks[i], self.names[i]
            return
        drop = set(rows)
        keep = [i for i in range(len(self.uids)) if i not in drop]
        self.uids = array("I", [self.uids[i] for i in keep])
        self.modseqs = array("Q", [self.modseqs[i] for i in keep])
        self.dates = array("q", [self.dates[i] for i in keep])
        self.sizes = array("Q", [self.sizes[i] for i in keep])
        self.masks = [self.masks[i] for i in keep]
        self.names = [self.names[i] for i in keep]

    @classmethod
    def fromColumns(cls, uids, modseqs, dates, sizes, masks, names):
        """
        Build an index from columns already sorted by UID (the loader's).
        """
        index = cls()
        index.uids = array("I", uids)
        index.modseqs = array("Q", modseqs)
        index.dates = array("q", dates)
        index.sizes = array("Q", sizes)
        index.masks = masks
        index.names = names
        return index


class MessageInfo:
    """
    One message as a session sees it (a snapshot, not a live view).

    @ivar uid: the UID.
    @ivar seq: the sequence number in the shared index (1-based).
    @ivar flags: flag names (C{tuple} of C{str}).
    @ivar internalDate: seconds since the epoch, UTC (C{int}).
    @ivar size: bytes (C{int}).
    @ivar modseq: MODSEQ of the last change (C{int}).
    @ivar path: the file, valid until the next flag change or expunge.
    """

    __slots__ = ("uid", "seq", "flags", "internalDate", "size", "modseq", "path")

    def __init__(self, uid, seq, flags, internalDate, size, modseq, path):
        self.uid = uid
        self.seq = seq
        self.flags = flags
        self.internalDate = internalDate
        self.size = size
        self.modseq = modseq
        self.path = path

    def __repr__(self):
        return "<MessageInfo uid=%d seq=%d flags=%r size=%d>" % (
            self.uid, self.seq, self.flags, self.size)
