# -*- test-case-name: tests.mail.imap.test_parser -*-
"""
Mailbox names on the IMAP wire: modified UTF-7 (RFC 3501 section 5.1.3).

Apart from the grammar in L{cgpro.mail.imap.parser} because it is a codec,
not syntax: the store keeps names as UTF-8 C{str}, and only this module
knows how IMAP spells them.
"""

import base64


class ParseError(ValueError):
    """
    A command that does not follow the grammar (answered with BAD).
    Defined here, the lowest module of the parser, and re-exported by
    L{cgpro.mail.imap.parser}, which every other module imports it from.
    """


def decodeMailboxName(value):
    """
    @param value: the name as sent (C{str}).
    @return: the name in Unicode.
    @raise ParseError: broken modified UTF-7.
    """
    if "&" not in value:
        return value
    out = []
    i = 0
    while i < len(value):
        c = value[i]
        if c != "&":
            out.append(c)
            i += 1
            continue
        end = value.find("-", i)
        if end < 0:
            raise ParseError("bad mailbox name encoding")
        chunk = value[i + 1:end]
        if not chunk:
            out.append("&")
        else:
            try:
                raw = base64.b64decode(chunk.replace(",", "/") + "=" * (-len(chunk) % 4))
                out.append(raw.decode("utf-16-be"))
            except (ValueError, UnicodeDecodeError):
                raise ParseError("bad mailbox name encoding")
        i = end + 1
    return "".join(out)


def encodeMailboxName(name):
    """
    @return: C{name} in modified UTF-7 (C{str}).
    """
    out = []
    pending = []

    def flush():
        if pending:
            raw = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(raw).decode("ascii").rstrip("=").replace("/", ",")
                       + "-")
            del pending[:]

    for c in name:
        if 0x20 <= ord(c) <= 0x7E:
            flush()
            out.append("&-" if c == "&" else c)
        else:
            pending.append(c)
    flush()
    return "".join(out)
