# -*- test-case-name: tests.store.test_names -*-
"""
Names on disk: mailbox folders, Maildir file names, IMAP flags.

Everything a client chooses (a mailbox name, a keyword) ends up in a file
name, so this module is the one place that checks and escapes them: no
client-chosen name can climb out of the account's folder, hide a control
character in a file name, or collide with the Maildir's own C{cur}, C{new}
and C{tmp}.

Mailbox names
=============

Mailbox names are UTF-8 C{str} with C{/} as the hierarchy separator.  They
are stored in the Maildir++ layout, which mutt, mbsync (C{SubFolders
Maildir++}), Dovecot (C{maildir:~/Maildir}) and Python's C{mailbox.Maildir}
read as they are::

    <account>/Maildir/                 INBOX (cur/ new/ tmp/ + our files)
    <account>/Maildir/.Sent/           "Sent"
    <account>/Maildir/.Work.2024/      "Work/2024"
    <account>/Maildir/.a%2Eb/          "a.b"   (a dot inside a name)

Each component is escaped: C{%} becomes C{%25} and C{.} becomes C{%2E}, so
C{.} only ever separates levels and no component can be C{.} or C{..}.
Empty components, control characters and unpaired surrogates are refused,
as are names whose folder name would exceed 255 bytes.  C{INBOX} is
case-insensitive (C{inbox/x} is C{INBOX/x}); every other name is kept as
given.

Flags
=====

The five system flags are bits 0-4 of a per-message mask; keywords get
higher bits from a per-mailbox table (L{cgpro.store.index.FlagTable}).  The
system flags are mirrored in the Maildir C{:2,} info of files in C{cur/}
(C{D}raft, C{F}lagged, C{R}eplied, C{S}een, C{T}rashed), so other tools see
read and flagged state; the journal stays the authority.

Maildir file names
==================

C{<seconds>.M<microseconds>P<pid>Q<counter>R<random>.<host>,S=<size>}
then C{,D=<hash>} when the message came with a delivery id: the first 16
hex digits of the BLAKE2b hash of the id, so a delivery can be recognised
from the file name alone after a crash.  C{S=} is the file size, which is
the size IMAP reports (messages are stored with the CRLF line ends they
arrived with).
"""

import hashlib
import os
import re
import socket

from cgpro.store.errors import MailboxNameError

#: The name of the inbox; always exists.
INBOX = "INBOX"

#: Hierarchy separator of mailbox names.
SEPARATOR = "/"

#: The Maildir++ root inside the account folder (it is INBOX).
ROOT_FOLDER = "Maildir"

#: Longest folder name on disk (a file-name component).
MAX_FOLDER_BYTES = 255

#: System flags in bit order.
SYSTEM_FLAGS = ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")

SEEN = 1
ANSWERED = 2
FLAGGED = 4
DELETED = 8
DRAFT = 16
SYSTEM_MASK = 31

_SYSTEM_BY_LOWER = {f.lower(): (f, 1 << i) for i, f in enumerate(SYSTEM_FLAGS)}

#: Maildir info letters (ASCII order, as the Maildir spec requires).
MAILDIR_LETTERS = (("D", DRAFT), ("F", FLAGGED), ("R", ANSWERED), ("S", SEEN), ("T", DELETED))
_MASK_BY_LETTER = dict(MAILDIR_LETTERS)

# Characters a keyword may not contain: IMAP atom-specials, controls, space,
# 8-bit.  "%" is refused too, so journal lines never need escaping for flags.
_BAD_KEYWORD = re.compile(r'[\x00-\x20\x7f-\U0010ffff(){%*"\\\]]')
_BAD_NAME_CHAR = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
_ESCAPE = re.compile(r"[%.]")
_UNESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")


# -- mailbox names ------------------------------------------------------------


def normalizeMailboxName(name):
    """
    Check a mailbox name and return its canonical form.

    @param name: C{str}, C{/}-separated.
    @return: the name with C{INBOX} in upper case.
    @raise MailboxNameError: for a name that cannot be stored.
    """
    if not isinstance(name, str) or not name:
        raise MailboxNameError("empty mailbox name")
    if _BAD_NAME_CHAR.search(name):
        raise MailboxNameError("control character in mailbox name")
    parts = name.split(SEPARATOR)
    if "" in parts:
        raise MailboxNameError("empty level in mailbox name %r" % (name,))
    if parts[0].upper() == INBOX:
        parts[0] = INBOX
    canonical = SEPARATOR.join(parts)
    if len(folderName(canonical).encode("utf-8")) > MAX_FOLDER_BYTES:
        raise MailboxNameError("mailbox name too long")
    return canonical


def _escapeComponent(part):
    return _ESCAPE.sub(lambda m: "%%%02X" % ord(m.group()), part)


def _unescapeComponent(part):
    if "%" not in part:
        return part
    return _UNESCAPE.sub(lambda m: chr(int(m.group(1), 16)), part)


def folderName(name):
    """
    The Maildir++ folder of a canonical mailbox name, relative to the root.

    @return: C{""} for INBOX, else C{"." + escaped components joined by "."}.
    """
    if name == INBOX:
        return ""
    return "." + ".".join(_escapeComponent(p) for p in name.split(SEPARATOR))


def mailboxNameFromFolder(entry):
    """
    The mailbox name a Maildir++ folder entry stands for.

    @param entry: a directory entry of the root (C{".Sent"}).
    @return: the canonical name, or C{None} for entries that are not
        mailboxes (no leading dot, empty levels, bad characters).
    """
    if len(entry) < 2 or entry[0] != ".":
        return None
    parts = entry[1:].split(".")
    if "" in parts:
        return None
    try:
        return normalizeMailboxName(SEPARATOR.join(_unescapeComponent(p) for p in parts))
    except MailboxNameError:
        return None


def isInferior(name, parent):
    """
    @return: whether C{name} lies below C{parent} in the hierarchy.
    """
    return name.startswith(parent + SEPARATOR)


# -- flags ----------------------------------------------------------------------


def canonicalFlag(flag):
    """
    Check one flag.

    @return: the system flag in its canonical spelling, or the keyword.
    @raise MailboxNameError: for C{\\Recent}, unknown system flags and
        keywords with characters IMAP does not allow.
    """
    if not isinstance(flag, str) or not flag:
        raise MailboxNameError("empty flag")
    if flag[0] == "\\":
        known = _SYSTEM_BY_LOWER.get(flag.lower())
        if known is None:
            raise MailboxNameError("flag %r cannot be stored" % (flag,))
        return known[0]
    if _BAD_KEYWORD.search(flag):
        raise MailboxNameError("bad keyword %r" % (flag,))
    return flag


def systemBit(flag):
    """
    @return: the mask bit of a system flag, or C{0} for a keyword.
    """
    known = _SYSTEM_BY_LOWER.get(flag.lower())
    return known[1] if known else 0


def maildirLetters(mask):
    """
    @return: the Maildir info letters of a flag mask (C{"FS"}).
    """
    return "".join(letter for letter, bit in MAILDIR_LETTERS if mask & bit)


def maskFromInfo(filename):
    """
    The system flags written in a file name's C{:2,} info.
    """
    _, sep, info = filename.partition(":2,")
    if not sep:
        return 0
    mask = 0
    for ch in info:
        mask |= _MASK_BY_LETTER.get(ch, 0)
    return mask


def baseName(filename):
    """
    A Maildir file name without its C{:} info: the message's lasting key.
    """
    return filename.split(":", 1)[0]


def nameWithFlags(filename, mask):
    """
    The file name in C{cur/} for a message carrying C{mask}.

    Lower-case info letters (other tools' keywords) are kept.
    """
    base, sep, info = filename.partition(":2,")
    extra = "".join(ch for ch in info if ch.islower()) if sep else ""
    letters = maildirLetters(mask) + extra
    return "%s:2,%s" % (baseName(base), "".join(sorted(letters)))


def currentName(name, mask):
    """
    Where a message's file is once its file name mirrors C{mask}.

    @param name: the file name relative to the mailbox (C{new/<base>} or
        C{cur/<base>:2,...}).
    @return: C{name} itself for a message in C{new/} without system flags,
        else C{cur/<base>:2,<letters>}.
    """
    if name[:4] == "new/" and not mask & SYSTEM_MASK:
        return name
    return "cur/" + nameWithFlags(name[4:], mask)


# -- file names -----------------------------------------------------------------


def deliveryHash(deliveryId):
    """
    The tag a delivery id leaves in a file name.

    @param deliveryId: C{str} or C{bytes}.
    @return: 16 hex digits.
    """
    if isinstance(deliveryId, str):
        deliveryId = deliveryId.encode("utf-8", "surrogatepass")
    return hashlib.blake2b(deliveryId, digest_size=8).hexdigest()


def deliveryTag(deliveryId):
    """
    @return: the C{,D=<hash>} text searched for in file names.
    """
    return ",D=" + deliveryHash(deliveryId)


def tagOfName(filename):
    """
    @return: the delivery hash in a file name, or C{None}.
    """
    i = filename.find(",D=")
    if i < 0:
        return None
    return filename[i + 3:i + 19]


def sizeFromName(filename):
    """
    @return: the C{,S=} size written in a file name, or C{None}.
    """
    i = filename.find(",S=")
    if i < 0:
        return None
    j = i + 3
    end = j
    while end < len(filename) and filename[end].isdigit():
        end += 1
    return int(filename[j:end]) if end > j else None


def _safeHost(host):
    # The Maildir spec's escapes for "/" and ":", plus "," (our field
    # separator) and anything unprintable.
    out = []
    for ch in host:
        if ch in "/:,\\" or not ch.isprintable() or ch.isspace():
            out.append("\\%03o" % (ord(ch) & 0xFF))
        else:
            out.append(ch)
    return "".join(out) or "localhost"


class NameGenerator:
    """
    Unique Maildir file names.

    Unique per process by the counter, across processes by the pid and
    across hosts and pid reuse by the host and random part.

    @ivar clock: gives the time in the name.
    """

    def __init__(self, clock, host=None, pid=None):
        self.clock = clock
        self.host = _safeHost(host if host is not None else socket.gethostname())
        self.pid = pid if pid is not None else os.getpid()
        self._counter = 0

    def make(self, size, deliveryId=None):
        """
        @param size: the file size, written as C{,S=}.
        @param deliveryId: written as C{,D=<hash>} when given.
        @return: a new base name (no info).
        """
        now = self.clock.seconds()
        sec = int(now)
        self._counter += 1
        name = "%d.M%dP%dQ%dR%s.%s,S=%d" % (
            sec, int((now - sec) * 1000000), self.pid, self._counter,
            os.urandom(4).hex(), self.host, size)
        if deliveryId is not None:
            name += deliveryTag(deliveryId)
        return name
