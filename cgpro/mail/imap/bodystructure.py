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


_SPECIALS = '()<>[]:;@\\,."'


def _addressTokens(value):
    """Split an address header into (kind, text): s(pecial), q(uoted), a(tom), c(omment)."""
    out = []
    i, n = 0, len(value)
    while i < n:
        c = value[i]
        if c.isspace():
            i += 1
        elif c == '"':
            j, buf = i + 1, []
            while j < n and value[j] != '"':
                if value[j] == "\\" and j + 1 < n:
                    j += 1
                buf.append(value[j])
                j += 1
            out.append(("q", "".join(buf)))
            i = j + 1
        elif c == "(":
            depth, j, buf = 1, i + 1, []
            while j < n and depth:
                if value[j] == "\\" and j + 1 < n:
                    j += 1
                elif value[j] == "(":
                    depth += 1
                elif value[j] == ")":
                    depth -= 1
                    if not depth:
                        break
                buf.append(value[j])
                j += 1
            out.append(("c", "".join(buf).strip()))
            i = j + 1
        elif c in _SPECIALS:
            out.append(("s", c))
            i += 1
        else:
            j = i
            while j < n and not value[j].isspace() and value[j] not in _SPECIALS:
                j += 1
            out.append(("a", value[i:j]))
            i = j
    return out


def _addrSpec(tokens):
    words = [t for t in tokens if t[0] != "c"]
    at = max((k for k, t in enumerate(words) if t == ("s", "@")), default=-1)
    if at < 0:
        local, host = "".join(t[1] for t in words), None
    else:
        local = "".join(t[1] for t in words[:at])
        host = "".join(t[1] for t in words[at + 1:]) or None
    return local or None, host


def parseAddressList(value):
    """
    @return: a list of C{(name, adl, mailbox, host)}, with RFC 3501 group
        markers C{(None, None, groupname, None)} / C{(None, None, None, None)}.
    """
    tokens = _addressTokens(value or "")
    out = []
    phrase = []
    inGroup = False
    i, n = 0, len(tokens)
    while i < n:
        kind, text = tokens[i]
        if (kind, text) == ("s", ":") and not inGroup:
            name = " ".join(t[1] for t in phrase if t[0] != "c")
            out.append((None, None, name or None, None))
            inGroup, phrase = True, []
        elif (kind, text) == ("s", "<"):
            j = i + 1
            inner = []
            while j < n and tokens[j] != ("s", ">"):
                inner.append(tokens[j])
                j += 1
            adl = None
            colon = [k for k, t in enumerate(inner) if t == ("s", ":")]
            if inner and inner[0] == ("s", "@") and colon:
                adl = "".join(t[1] for t in inner[:colon[0]] if t[0] != "c")
                inner = inner[colon[0] + 1:]
            mailbox, host = _addrSpec(inner)
            name = " ".join(t[1] for t in phrase if t[0] != "c") or None
            if mailbox is not None or host is not None:
                out.append((name, adl, mailbox, host))
            phrase = []
            i = j + 1
            # skip to the next separator
            while i < n and tokens[i] not in (("s", ","), ("s", ";")):
                i += 1
            continue
        elif (kind, text) in (("s", ","), ("s", ";")):
            if phrase:
                mailbox, host = _addrSpec(phrase)
                comments = [t[1] for t in phrase if t[0] == "c"]
                if mailbox is not None or host is not None:
                    out.append((comments[-1] if comments and comments[-1] else None, None,
                                mailbox, host))
            phrase = []
            if text == ";" and inGroup:
                out.append((None, None, None, None))
                inGroup = False
        else:
            phrase.append((kind, text))
        i += 1
    if phrase:
        mailbox, host = _addrSpec(phrase)
        comments = [t[1] for t in phrase if t[0] == "c"]
        if mailbox is not None or host is not None:
            out.append((comments[-1] if comments and comments[-1] else None, None, mailbox, host))
    if inGroup:
        out.append((None, None, None, None))
    return out


def _addresses(value):
    if not value:
        return b"NIL"
    items = [b"(%s %s %s %s)" % tuple(nquote(x) for x in a) for a in parseAddressList(value)]
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
