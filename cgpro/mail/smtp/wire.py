# -*- test-case-name: tests.mail.smtp.test_wire -*-
"""
The SMTP wire grammar (RFC 5321 with its extensions), apart from the
server's state machine so it can be tested without a session.

Here: reply formatting, command lines split into verb and argument, the
reverse and forward paths of C{MAIL}/C{RCPT} with their ESMTP parameters
(SIZE, BODY, SMTPUTF8, the DSN parameters of RFC 3461 in xtext), and
L{DataReader}, which turns the bytes after C{DATA} into the stored message:
dot-unstuffing, CRLF line ends, the end-of-data line, and the checks a
message is refused for (size, line length, bare LF, NUL).

Every parser raises L{SMTPError} carrying the reply the client gets, so the
server never invents reply texts for grammar problems.
"""

import ipaddress
import re

#: Longest line, CRLF excluded (RFC 5321 4.5.3.1.6 allows 1000 with CRLF;
#: RFC 5322 2.1.1 the same for message lines).
MAX_LINE = 998

#: Longest path (RFC 5321 4.5.3.1.3), brackets excluded.
MAX_PATH = 256

_ATOM_CHARS = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~\-"
_UTF8 = "\u0080-\ud7ff\ue000-\U0010ffff"
_ATOM = "[" + _ATOM_CHARS + _UTF8 + "]+"
_DOT_STRING = _ATOM + r"(?:\." + _ATOM + ")*"
_QUOTED = r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e' + _UTF8 + r"]|\\[\x20-\x7e])*\""
_LET_DIG = "[A-Za-z0-9" + _UTF8 + "]"
_LABEL = _LET_DIG + "(?:[A-Za-z0-9\\-" + _UTF8 + "]*" + _LET_DIG + ")?"
_DOMAIN = _LABEL + r"(?:\." + _LABEL + ")*"
_LITERAL = r"\[[\x21-\x5a\x5e-\x7e]+\]"

_MAILBOX = re.compile(
    "(?:" + _DOT_STRING + "|" + _QUOTED + ")@(?:" + _DOMAIN + "|" + _LITERAL + ")"
)
_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-]*")
_XTEXT_HEX = re.compile(r"\+([0-9A-F]{2})")
_VERB = re.compile(r"[A-Za-z]{1,16}")

_NOTIFY_VALUES = ("SUCCESS", "FAILURE", "DELAY")


class SMTPError(Exception):
    """
    A command the server refuses; carries the reply.

    @ivar code: the reply code (C{501}, C{553}, ...).
    @ivar enhanced: the enhanced status code (C{"5.1.3"}).
    @ivar text: the reply text.
    @ivar quiet: whether the session should not log this refusal (the
        same refusal repeated many times is logged once).
    """

    def __init__(self, code, enhanced, text, quiet=False):
        Exception.__init__(self, code, enhanced, text)
        self.code = code
        self.enhanced = enhanced
        self.text = text
        self.quiet = quiet

    def reply(self):
        return formatReply(self.code, self.enhanced, self.text)


def formatReply(code, enhanced, text):
    """
    @param enhanced: the enhanced status code, or C{None} (greetings and
        the lines of an EHLO reply carry none).
    @param text: C{str}, or a C{list} of lines for a multi-line reply.
    @return: the reply bytes, CRLF-terminated.
    """
    lines = text if isinstance(text, list) else [text]
    out = []
    last = len(lines) - 1
    for number, line in enumerate(lines):
        if enhanced:
            line = enhanced + " " + line
        out.append("%d%s%s\r\n" % (code, " " if number == last else "-", line))
    return "".join(out).encode("utf-8", "surrogateescape")


def splitCommand(line):
    """
    Split a command line into verb and argument.

    @param line: the decoded line, without its line end.
    @return: C{(VERB, argument)}; C{VERB} is upper case, or C{""} if the
        line does not start with a verb.
    """
    verb, _, argument = line.strip(" ").partition(" ")
    if not _VERB.fullmatch(verb):
        return "", line
    return verb.upper(), argument.strip(" ")


def checkMailbox(address, utf8=False):
    """
    Check the syntax of C{local@domain} (RFC 5321 4.1.2, RFC 6531 for
    UTF-8).

    @param utf8: whether the transaction declared SMTPUTF8.
    @raise SMTPError: 553 5.1.3 for bad syntax, 553 5.6.7 for a UTF-8
        address without SMTPUTF8.
    """
    if not _MAILBOX.fullmatch(address):
        raise SMTPError(553, "5.1.3", "invalid address syntax")
    if not utf8 and not address.isascii():
        raise SMTPError(553, "5.6.7", "non-ASCII address requires SMTPUTF8")
    domain = address.rpartition("@")[2]
    if domain.startswith("["):
        _checkLiteral(domain[1:-1])
    elif len(domain) > 255:
        raise SMTPError(553, "5.1.3", "domain name too long")


def _checkLiteral(content):
    try:
        if content[:5].upper() == "IPV6:":
            ipaddress.IPv6Address(content[5:])
        else:
            ipaddress.IPv4Address(content)
    except ValueError:
        raise SMTPError(553, "5.1.3", "invalid address literal")


def _splitPath(argument, keyword):
    """
    Take C{KEYWORD:<path>} off the front of a MAIL/RCPT argument.

    Lenient where clients are (a space after the colon, a path without
    brackets), strict about what the path contains.

    @return: C{(path, rest)}.
    @raise SMTPError: 501 5.5.4 when the keyword or path is missing.
    """
    head = argument[: len(keyword) + 1]
    if head.upper() != keyword + ":":
        raise SMTPError(501, "5.5.4", "syntax: %s:<address>" % (keyword,))
    rest = argument[len(keyword) + 1:].lstrip(" ")
    if rest.startswith("<"):
        index = 1
        quoted = False
        end = len(rest)
        while index < end:
            char = rest[index]
            if quoted:
                if char == "\\":
                    index += 1
                elif char == '"':
                    quoted = False
            elif char == '"':
                quoted = True
            elif char == ">":
                break
            index += 1
        else:
            raise SMTPError(501, "5.5.4", "unterminated <address>")
        path, rest = rest[1:index], rest[index + 1:]
        if rest and not rest.startswith(" "):
            raise SMTPError(501, "5.5.4", "garbage after <address>")
    else:
        path, _, rest = rest.partition(" ")
        if not path:
            raise SMTPError(501, "5.5.4", "syntax: %s:<address>" % (keyword,))
    if len(path) > MAX_PATH:
        raise SMTPError(553, "5.1.3", "address too long")
    if path.startswith("@"):
        # A source route (@a,@b:user@dom): accepted and ignored (5321 C).
        colon = path.find(":")
        if colon < 0:
            raise SMTPError(553, "5.1.3", "invalid source route")
        path = path[colon + 1:]
    return path, rest.strip(" ")


def parseParameters(text):
    """
    Parse ESMTP parameters C{KEY=VALUE KEY ...}.

    @return: C{dict} of upper-case keyword -> value (C{None} without C{=}).
    @raise SMTPError: 501 5.5.4 for malformed or repeated parameters.
    """
    params = {}
    for item in text.split():
        key, equals, value = item.partition("=")
        if not _KEYWORD.fullmatch(key) or (equals and not value):
            raise SMTPError(501, "5.5.4", "malformed parameter %s" % (printable(item),))
        key = key.upper()
        if key in params:
            raise SMTPError(501, "5.5.4", "parameter %s given twice" % (key,))
        params[key] = value if equals else None
    return params


def parseMailFrom(argument):
    """
    Parse the argument of C{MAIL}.

    @return: C{(sender, params)}; C{sender} is C{""} for the null path.
        The address is not checked here (SMTPUTF8 among the parameters
        decides how): use L{checkMailbox}.
    @raise SMTPError: for grammar errors.
    """
    path, rest = _splitPath(argument, "FROM")
    return path, parseParameters(rest)


def parseRcptTo(argument):
    """
    Parse the argument of C{RCPT}.

    @return: C{(recipient, params)}.
    @raise SMTPError: for grammar errors, and 553 5.1.3 for the null path.
    """
    path, rest = _splitPath(argument, "TO")
    if not path:
        raise SMTPError(553, "5.1.3", "the null address cannot be a recipient")
    return path, parseParameters(rest)


def xtextDecode(text):
    """
    Decode xtext (RFC 3461 4): C{+HH} is the byte HH.

    @raise SMTPError: 501 5.5.4 for a bad C{+} escape or characters xtext
        does not allow.
    """
    if any(ord(c) < 33 or ord(c) > 126 or c == "=" for c in text):
        raise SMTPError(501, "5.5.4", "invalid xtext")
    if "+" in text:
        if len(_XTEXT_HEX.findall(text)) != text.count("+"):
            raise SMTPError(501, "5.5.4", "invalid xtext escape")
        text = _XTEXT_HEX.sub(lambda m: chr(int(m.group(1), 16)), text)
    return text


def parseNotify(value):
    """
    @return: the tuple of RFC 3461 NOTIFY values.
    @raise SMTPError: 501 5.5.4 if malformed (NEVER must stand alone).
    """
    if not value:
        raise SMTPError(501, "5.5.4", "NOTIFY needs a value")
    items = tuple(item.upper() for item in value.split(","))
    if items == ("NEVER",):
        return items
    if len(set(items)) != len(items) or not all(i in _NOTIFY_VALUES for i in items):
        raise SMTPError(501, "5.5.4", "NOTIFY is NEVER or a list of SUCCESS, FAILURE, DELAY")
    return items


def parseOrcpt(value):
    """
    @return: C{addr-type;address} with the address decoded from xtext.
    @raise SMTPError: 501 5.5.4 if malformed.
    """
    kind, semicolon, address = (value or "").partition(";")
    if not semicolon or not _KEYWORD.fullmatch(kind) or not address:
        raise SMTPError(501, "5.5.4", "ORCPT is addr-type;xtext")
    return kind + ";" + xtextDecode(address)


def printable(text, limit=64):
    """
    Client text made safe for replies and logs: printable, bounded.
    """
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= limit else text[:limit] + "..."


class DataReader:
    """
    Decodes the bytes after C{DATA} into the stored message.

    Lines are stored with CRLF, dot-unstuffed.  Only C{CRLF . CRLF} ends
    the data: a C{.} line after or before a bare LF is data, so nobody can
    smuggle a second message past a server that reads line ends more
    loosely than the next hop (the SMTP smuggling of 2023).

    Problems do not stop the reading: the first one is kept in
    L{error}, nothing more is written, and the reply is given after the
    end of the data, as RFC 5321 wants.  Only L{fatal} problems (bare LF
    in reject mode) end the session at once.

    Most message text needs no per-line work (no line starts with a dot,
    every line ends in CRLF, none is too long, no NUL), so runs of such
    lines are checked with a few whole-run byte operations and stored as
    they are; only the other lines go through the line-by-line path.  A
    10 MB attachment costs milliseconds, not a Python loop over 130,000
    lines.

    @ivar size: bytes stored so far.
    @ivar error: C{None} or the L{SMTPError} the message is refused with.
    @ivar fatal: whether L{error} must be answered at once and the
        session closed.
    @ivar done: whether the end-of-data line was seen.
    """

    #: Whether runs of plain lines take the fast path (tests compare both).
    fastPath = True

    def __init__(self, write, maxSize=None, bareLF="Normalize", nulBytes="Reject",
                 maxLine=MAX_LINE):
        """
        @param write: called with stored bytes (one call per L{feed}).
        @param maxSize: the largest message in bytes, or C{None}.
        """
        self.write = write
        self.maxSize = maxSize
        self.rejectBareLF = bareLF == "Reject"
        self.stripNUL = nulBytes == "Strip"
        self.maxLine = maxLine
        self.size = 0
        self.error = None
        self.fatal = False
        self.done = False
        self._afterCRLF = True
        self._skipping = False
        self._slowUntil = 0

    def _fail(self, error, fatal=False):
        if self.error is None:
            self.error = error
            self.fatal = fatal
        self.write = None

    def _tooLong(self):
        self._fail(SMTPError(554, "5.6.0", "message has a line longer than %d characters"
                             % (self.maxLine,)))

    def feed(self, buffer, position):
        """
        Consume complete lines of C{buffer} from C{position}.

        @param buffer: a C{bytearray} or C{bytes}; positions are offsets in
            it, so a caller that removes consumed bytes must shift them.
        @return: the position after the consumed bytes (after the end line
            once L{done}); an incomplete last line is left, unless it is
            already too long, in which case it is dropped but for its last
            byte (a possible CR).
        """
        out = []
        self._slowUntil = 0
        while not self.done and not self.fatal:
            if self.write is None:
                position = self._discard(buffer, position)
            elif (self.fastPath and position >= self._slowUntil and self._afterCRLF
                    and not self._skipping):
                position = self._fast(buffer, position, out)
            next = self._line(buffer, position, out)
            if next < 0:
                if len(buffer) - position > self.maxLine + 2:
                    self._skipping = True
                    self._tooLong()
                    position = len(buffer) - 1
                break
            position = next
        if out and self.write is not None:
            self.write(b"".join(out))
        return position

    def _fast(self, buffer, position, out):
        """
        Store a run of plain lines starting at a line start, if there is
        one.

        @return: the position after the run (unchanged if there is none or
            it is not plain; then the lines up to its end take the slow
            path).
        """
        last = buffer.rfind(b"\n", position)
        if last < 0 or buffer[position:position + 1] == b".":
            return position
        dot = buffer.find(b"\n.", position, last + 2)
        cut = dot + 1 if dot >= 0 else last + 1
        run = buffer[position:cut]
        if (b"\0" in run or run.count(b"\n") != run.count(b"\r\n")
                or max(map(len, run.split(b"\n"))) > self.maxLine + 1
                or (self.maxSize is not None and self.size + len(run) > self.maxSize)):
            self._slowUntil = cut
            return position
        out.append(run)
        self.size += len(run)
        return cut

    def _discard(self, buffer, position):
        """
        Skip what a refused message still sends, up to its end line or the
        last complete line, without looking at each line.

        @return: the new position (a line start).
        """
        if self._afterCRLF and not self._skipping and buffer.startswith(b".\r\n", position):
            return position
        end = buffer.find(b"\r\n.\r\n", position)
        if end >= 0:
            self._afterCRLF = True
            self._skipping = False
            return end + 2
        last = buffer.rfind(b"\n", position)
        if last < 0:
            return position
        self._afterCRLF = last > 0 and buffer[last - 1] == 13
        self._skipping = False
        return last + 1

    def _line(self, buffer, position, out):
        """
        Take one line the slow way.

        @return: the position after it, or -1 when no line is complete.
        """
        end = buffer.find(b"\n", position)
        if end < 0:
            return -1
        line = buffer[position:end]
        position = end + 1
        crlf = line[-1:] == b"\r"
        if crlf:
            line = line[:-1]
        afterCRLF = self._afterCRLF
        self._afterCRLF = crlf
        if self._skipping:
            self._skipping = False
            return position
        if crlf and afterCRLF and line == b".":
            self.done = True
            return position
        if not crlf and self.rejectBareLF:
            self._fail(SMTPError(554, "5.6.0", "bare LF in message; lines must end in CRLF"),
                       fatal=True)
            return position
        if self.write is None:
            return position
        if len(line) > self.maxLine:
            self._tooLong()
            return position
        if line[:1] == b"." and line != b".":
            line = line[1:]
        if b"\0" in line:
            if not self.stripNUL:
                self._fail(SMTPError(554, "5.6.0", "message contains NUL characters"))
                return position
            line = line.replace(b"\0", b"")
        size = self.size + len(line) + 2
        if self.maxSize is not None and size > self.maxSize:
            self.size = size
            self._fail(SMTPError(552, "5.3.4", "message size exceeds fixed maximum message size"))
            return position
        self.size = size
        out.append(line)
        out.append(b"\r\n")
        return position
