# -*- test-case-name: tests.mail.imap.test_fetch -*-
"""
FETCH and UID FETCH.

Attributes that the index holds (FLAGS, UID, INTERNALDATE, RFC822.SIZE,
MODSEQ) never open the message file, so C{FETCH 1:* (UID FLAGS)} on a
100,000-message mailbox costs one pass over arrays; the others read the
file once per message and find sections by byte offsets
(L{cgpro.mail.imap.mime}).  A BODY[] fetch without PEEK sets C{\\Seen}
first (durably) and then reports the new FLAGS.
"""

import base64
import binascii
import quopri

from cgpro.mail.imap import mime, parser
from cgpro.mail.imap.bodystructure import bodyStructure, envelope
from cgpro.mail.imap.commands.qresync import vanishedSince
from cgpro.mail.imap.errors import IMAPError
from cgpro.mail.imap.parser import ParseError
from cgpro.store.mailbox import ADD
from cgpro.store.names import SEEN

#: Attributes that need the message file.
_CONTENT = frozenset(["ENVELOPE", "BODYSTRUCTURE", "BODY", "RFC822", "RFC822.HEADER",
                      "RFC822.TEXT", "BODY[]"])

#: Output is written in chunks of about this many bytes.
_CHUNK = 1 << 18


def literal(data):
    return b"{%d}\r\n%s" % (len(data), data)


def sectionBytes(data, root, item):
    """
    @return: the bytes a BODY[section] names (before any partial range),
        or C{None} for a part that does not exist.
    """
    if not item.part:
        part = root
    else:
        part = mime.findPart(root, item.part)
        if part is None:
            return None
    text = item.text
    if text == "MIME":
        return data[part.start:part.bodyStart]
    if text in ("HEADER", "TEXT", "HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        if item.part:
            if part.message is None:
                return None
            part = part.message
        if text == "HEADER":
            return data[part.start:part.bodyStart]
        if text == "TEXT":
            return data[part.bodyStart:part.end]
        return mime.headerFields(data, part, item.fields, text.endswith(".NOT"))
    if not item.part:
        return data
    return data[part.bodyStart:part.end]


def decodedBody(data, part):
    """
    @return: a part's body with its transfer encoding undone (BINARY), or
        C{None} for an unknown encoding.
    """
    body = data[part.bodyStart:part.end]
    encoding = (part.header("CONTENT-TRANSFER-ENCODING") or "7bit").strip().lower()
    if encoding in ("7bit", "8bit", "binary"):
        return body
    try:
        if encoding == "base64":
            return base64.b64decode(b"".join(body.split()))
        if encoding == "quoted-printable":
            return quopri.decodestring(body)
    except (binascii.Error, ValueError):
        return None
    return None


class FetchCommands:
    """
    Mixed into L{cgpro.mail.imap.server.IMAPServer}.
    """

    def cmd_FETCH(self, tag, args):
        return self.fetch(args, uid=False)

    def fetch(self, args, uid):
        if len(args) not in (2, 3):
            raise ParseError("usage: FETCH sequence-set attributes")
        rows = self.rows(args[0], uid)
        items = parser.parseFetchAttributes(args[1])
        mb = self.mailbox
        index = mb.index
        view = self.view
        if len(args) == 3:
            modifier = args[2]
            if not isinstance(modifier, list) or len(modifier) not in (2, 3) or \
                    parser.atom(modifier[0], "FETCH modifier").upper() != "CHANGEDSINCE":
                raise ParseError("unknown FETCH modifier")
            since = parser.number(modifier[1], "mod-sequence")
            self.enabled.add("CONDSTORE")
            if len(modifier) == 3:
                if not uid or "QRESYNC" not in self.enabled or \
                        parser.atom(modifier[2]).upper() != "VANISHED":
                    raise ParseError("VANISHED needs UID FETCH and QRESYNC")
                gone = vanishedSince(mb, since, parser.parseSequenceSet(args[0]))
                if gone:
                    self.untagged("VANISHED (EARLIER) " + parser.formatSequenceSet(gone))
            rows = [r for r in rows if index.position(view[r]) >= 0 and
                    index.modseqs[index.position(view[r])] > since]
        if any(i.name == "MODSEQ" for i in items):
            self.enabled.add("CONDSTORE")
        if self.condstore and not any(i.name == "MODSEQ" for i in items) and (
                len(args) == 3 or any(i.name == "FLAGS" for i in items)):
            items.append(parser.FetchItem("MODSEQ"))
        if uid and not any(i.name == "UID" for i in items):
            items.insert(0, parser.FetchItem("UID"))
        seen = []
        if not self.readOnly and any(i.setsSeen for i in items) and \
                "s" in self.rightsAt(self.location):
            for row in rows:
                pos = index.position(view[row])
                if pos >= 0 and not index.masks[pos] & SEEN:
                    seen.append(view[row])
        if not seen:
            self._fetchOut(rows, items, ())
            return None
        d = mb.setFlags(seen, ["\\Seen"], ADD, origin=self)
        return d.addCallback(lambda result: self._fetchOut(rows, items, set(result.changed)))

    def _fetchOut(self, rows, items, changed):
        mb = self.mailbox
        if mb is None:
            raise IMAPError("NO", "mailbox closed")
        index = mb.index
        view = self.view
        needContent = any(i.name in _CONTENT for i in items)
        hasFlags = any(i.name == "FLAGS" for i in items)
        out = []
        size = 0
        for row in rows:
            uid = view[row]
            pos = index.position(uid)
            if pos < 0:
                continue
            data = root = None
            if needContent:
                try:
                    data = mb.readMessage(uid)
                except Exception:
                    continue
                root = mime.parse(data)
            parts = []
            for item in items:
                parts.append(self._fetchItem(item, uid, pos, index, data, root))
            if uid in changed and not hasFlags:
                parts.append(b"FLAGS (%s)" % self.flagsOf(uid).encode("utf-8"))
            line = b"* %d FETCH (%s)\r\n" % (row + 1, b" ".join(parts))
            out.append(line)
            size += len(line)
            if size > _CHUNK:
                self.send(b"".join(out))
                out, size = [], 0
        if out:
            self.send(b"".join(out))

    def _fetchItem(self, item, uid, pos, index, data, root):
        name = item.name
        if name == "UID":
            return b"UID %d" % uid
        if name == "FLAGS":
            return b"FLAGS (%s)" % self.flagsOf(uid).encode("utf-8")
        if name == "INTERNALDATE":
            return b'INTERNALDATE "%s"' % parser.formatDateTime(index.dates[pos]).encode()
        if name == "RFC822.SIZE":
            return b"RFC822.SIZE %d" % index.sizes[pos]
        if name == "MODSEQ":
            return b"MODSEQ (%d)" % index.modseqs[pos]
        if name == "ENVELOPE":
            return b"ENVELOPE " + envelope(root)
        if name == "BODYSTRUCTURE":
            return b"BODYSTRUCTURE " + bodyStructure(data, root, True)
        if name == "BODY":
            return b"BODY " + bodyStructure(data, root, False)
        if name == "RFC822":
            return b"RFC822 " + literal(data)
        if name == "RFC822.HEADER":
            return b"RFC822.HEADER " + literal(data[root.start:root.bodyStart])
        if name == "RFC822.TEXT":
            return b"RFC822.TEXT " + literal(data[root.bodyStart:])
        # BODY[...] and BINARY[...]
        if item.binary is not None:
            part = mime.findPart(root, item.part) if item.part else root
            value = decodedBody(data, part) if part is not None else None
            if value is None:
                raise IMAPError("NO", "[UNKNOWN-CTE] cannot decode the part")
            if item.binary == "size":
                return b"%s %d" % (item.label.encode(), len(value))
        else:
            value = sectionBytes(data, root, item)
            if value is None:
                value = b""
        if item.partial is not None:
            start, length = item.partial
            value = value[start:] if length is None else value[start:start + length]
        return item.label.encode("utf-8") + b" " + literal(value)
