# -*- test-case-name: tests.mail.imap.test_condstore -*-
"""
QRESYNC (RFC 7162 section 3.2): quick resynchronization.

A client that remembers a mailbox's UIDVALIDITY and a MODSEQ gets, right
in its SELECT, the UIDs expunged since (C{VANISHED (EARLIER)}) and the
messages whose flags changed since, instead of fetching every flag again.
Once QRESYNC is enabled, expunges are reported as C{VANISHED} UID sets
rather than one C{EXPUNGE} per message.  The store keeps the expunge
history (L{cgpro.store.reading.MailboxReading.expungedSince}); when it was
trimmed, every UID the client may know that is no longer present is
reported instead.
"""

from bisect import bisect_left

from cgpro.mail.imap import parser
from cgpro.mail.imap.parser import ParseError


def parseQresync(args):
    """
    @param args: the list after C{QRESYNC}: C{(uidvalidity modseq
        [known-uids [seq-match]])}.
    @return: C{(uidvalidity, modseq, knownRanges or None)}.
    """
    if not isinstance(args, list) or len(args) < 2 or len(args) > 4:
        raise ParseError("bad QRESYNC parameters")
    validity = parser.number(args[0], "uidvalidity", nz=True)
    modseq = parser.number(args[1], "mod-sequence")
    known = parser.parseSequenceSet(args[2]) if len(args) > 2 and not isinstance(
        args[2], list) else None
    return validity, modseq, known


def vanishedSince(mb, modseq, ranges=None):
    """
    @return: sorted UIDs expunged since C{modseq} (within C{ranges}, a
        parsed UID set, when given).
    """
    uids, complete = mb.expungedSince(modseq)
    top = mb.uidNext - 1
    resolved = parser.resolveSet(ranges, top) if ranges else [(1, top)]
    if not complete:
        present = set(mb.uids)
        uids = [u for lo, hi in resolved for u in range(lo, min(hi, top) + 1)
                if u not in present]
        if len(uids) > 1000000:
            uids = uids[:1000000]
    return sorted(u for u in set(uids) if any(lo <= u <= hi for lo, hi in resolved))


def resyncLines(session, mb, params):
    """
    The untagged responses a SELECT (QRESYNC ...) adds.

    @return: C{list} of C{bytes} lines.
    """
    validity, modseq, known = params
    if validity != mb.uidValidity:
        return []
    out = []
    vanished = vanishedSince(mb, modseq, known)
    if vanished:
        out.append(b"* VANISHED (EARLIER) %s\r\n" % parser.formatSequenceSet(
            vanished).encode("ascii"))
    view = session.view
    for uid in mb.changedSince(modseq):
        i = bisect_left(view, uid)
        if i < len(view) and view[i] == uid:
            out.append(b"* %d FETCH (UID %d FLAGS (%s) MODSEQ (%d))\r\n" % (
                i + 1, uid, session.flagsOf(uid).encode("utf-8"), mb.modseq(uid)))
    return out
