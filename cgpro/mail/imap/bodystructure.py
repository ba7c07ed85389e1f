# -*- test-case-name: tests.mail.imap.test_mime -*-
"""
FETCH ENVELOPE, BODY and BODYSTRUCTURE from a parsed message
(L{cgpro.mail.imap.mime}).

Values are reported as stored (encoded words are not decoded: RFC 3501
leaves that to clients); only the address lists are split into their
parts.
"""

from email.utils import getaddresses

from cgpro.mail.imap.mime import lineCount, parseParams
from cgpro.mail.imap.parser import nquote, quote


def _addresses(value):
    if not value:
        return b"NIL"
    items = []
    try:
        pairs = getaddresses([value])
    except Exception:
        pairs = []
    for name, address in pairs:
        if not address and not name:
            continue
        mailbox, at, host = address.rpartition("@")
        if not at:
            mailbox, host = address, None
        items.append(b"(%s NIL %s %s)" % (nquote(name or None), nquote(mailbox or None),
                                          nquote(host)))
    if not items:
        return b"NIL"
    return b"(" + b"".join(items) + b")"


def envelope(part):
    """
    @param part: the root L{Part} of a message (or an encapsulated one).
    @return: the ENVELOPE list (C{bytes}).
    """
    h = part.header
    sender = h("FROM")
    fields = [
        nquote(h("DATE")), nquote(h("SUBJECT")),
        _addresses(sender),
        _addresses(h("SENDER") or sender),
        _addresses(h("REPLY-TO") or sender),
        _addresses(h("TO")), _addresses(h("CC")), _addresses(h("BCC")),
        nquote(h("IN-REPLY-TO")), nquote(h("MESSAGE-ID")),
    ]
    return b"(" + b" ".join(fields) + b")"


def _paramList(params):
    if not params:
        return b"NIL"
    return b"(" + b" ".join(quote(k.upper()) + b" " + quote(v) for k, v in params) + b")"


def _disposition(part):
    value = part.header("CONTENT-DISPOSITION")
    if not value:
        return b"NIL"
    kind, params = parseParams(value)
    if not kind:
        return b"NIL"
    return b"(" + quote(kind.upper()) + b" " + _paramList(params) + b")"


def _language(part):
    value = part.header("CONTENT-LANGUAGE")
    if not value:
        return b"NIL"
    tags = [t.strip() for t in value.split(",") if t.strip()]
    if len(tags) == 1:
        return quote(tags[0])
    return b"(" + b" ".join(quote(t) for t in tags) + b")"


def bodyStructure(data, part, extended=True):
    """
    @param data: the message bytes.
    @param part: a L{Part} of it.
    @param extended: BODYSTRUCTURE (with extension data) rather than BODY.
    @return: the body structure (C{bytes}).
    """
    if part.children is not None:
        out = b"(" + b"".join(bodyStructure(data, c, extended) for c in part.children)
        out += b" " + quote(part.subType.upper())
        if extended:
            params = [p for p in part.params]
            out += b" " + _paramList(params) + b" " + _disposition(part) + b" " + \
                _language(part) + b" " + nquote(part.header("CONTENT-LOCATION"))
        return out + b")"
    params = part.params
    if part.mainType == "text" and not any(k.lower() == "charset" for k, _ in params):
        params = [("charset", "us-ascii")] + list(params)
    encoding = (part.header("CONTENT-TRANSFER-ENCODING") or "7bit").strip()
    size = part.end - part.bodyStart
    fields = [quote(part.mainType.upper()), quote(part.subType.upper()), _paramList(params),
              nquote(part.header("CONTENT-ID")), nquote(part.header("CONTENT-DESCRIPTION")),
              quote(encoding.upper()), b"%d" % size]
    if part.message is not None:
        fields.append(envelope(part.message))
        fields.append(bodyStructure(data, part.message, extended))
        fields.append(b"%d" % lineCount(data, part.bodyStart, part.end))
    elif part.mainType == "text":
        fields.append(b"%d" % lineCount(data, part.bodyStart, part.end))
    if extended:
        fields += [nquote(part.header("CONTENT-MD5")), _disposition(part), _language(part),
                   nquote(part.header("CONTENT-LOCATION"))]
    return b"(" + b" ".join(fields) + b")"
