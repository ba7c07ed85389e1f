# -*- test-case-name: tests.queue.test_rules -*-
"""
Actions of the mail (Queue) Rules (C{rules.md} section 5.1), the permission
filter (section 5.3), and the helpers the LOCAL channel uses to carry out
what the engine decided: L{applyHeaderEdits} and L{buildReply}.

The engine never does anything itself (no I/O: it is layer-2 pure logic);
actions only fill in an C{Outcome}, which the queue then acts on.  Like
conditions, an action is compiled from rule data first, so a bad one is
reported (C{Outcome.errors}) and skipped instead of failing a delivery.

Decisions where the spec is silent ([D]):

  - The message is kept in C{INBOX} unless an action says otherwise (the
    "implicit keep" of Sieve, RFC 5228).  C{Store in} replaces that
    C{INBOX} copy with the named mailbox (write C{Store in INBOX} as well
    to keep both); C{Redirect to} and C{Forward to} cancel it (explicit
    C{Store in} copies made earlier stay); C{Discard} and C{Reject with}
    cancel every local copy.  C{Mirror to} never changes local delivery.
  - C{Discard}, C{Reject with} and C{Redirect to} stop rule processing
    (spec section 2.4 [D]); C{Forward to} does not.
  - C{Mark} flags apply to every stored copy, whatever the order of
    C{Mark} and C{Store in}.
  - C{Reply with} / C{Reply to All with} are not answered for the null
    envelope sender or a message with C{Auto-Submitted} other than C{no}
    (RFC 3834 section 2), to break auto-reply loops even when a rule
    forgets the C{Human Generated} condition.  The reply goes to
    C{Reply-To}, else C{From}, else the envelope sender.
"""

import datetime
import email.utils
import re
import uuid
from email.charset import QP, Charset
from email.header import Header, decode_header, make_header
from email.message import EmailMessage
from email.policy import SMTP

from cgpro.queue.ruleconditions import RuleError, normalizeName, splitList

#: C{RulesAllowed} levels (spec section 5.3 [D]), lowest first.
ALLOW_NONE, ALLOW_FILTER, ALLOW_NO_MIRROR, ALLOW_ANY = 0, 1, 2, 3
_ALLOWED = {"none": ALLOW_NONE, "filter only": ALLOW_FILTER,
            "no mirror": ALLOW_NO_MIRROR, "any": ALLOW_ANY}
_ALLOWED_NAMES = {v: k for k, v in
                  {"None": 0, "Filter Only": 1, "No Mirror": 2, "Any": 3}.items()}

#: C{Mark} parameters and the IMAP flags they set.
FLAGS = {
    "seen": "\\Seen", "read": "\\Seen", "flagged": "\\Flagged",
    "deleted": "\\Deleted", "answered": "\\Answered", "draft": "\\Draft",
    "junk": "$Junk", "notjunk": "$NotJunk",
}
FLAGS.update({"label%d" % i: "$Label%d" % i for i in range(1, 6)})

_HEADER_NAME = re.compile(r"[!-9;-~]+")
_KEYWORD = re.compile(r"\$[!#-'*+\-.0-9A-Z^-z|~]+", re.I)
_MACRO = re.compile(r"\^([A-Za-z])")


def parseAllowed(value):
    """
    Read a C{RulesAllowed} setting.

    @param value: C{"None"}, C{"Filter Only"}, C{"No Mirror"} or C{"Any"}
        (any case); Python C{None} means "not set", i.e. the default
        C{Any}.
    @return: C{(level, problem)}: an unknown value gives the lowest level
        (the safe side) and a problem text, else C{None}.
    """
    if value is None:
        return ALLOW_ANY, None
    try:
        level = _ALLOWED.get(normalizeName(value))
    except RuleError:
        level = None
    if level is None:
        return ALLOW_NONE, "unknown RulesAllowed value %r: no actions allowed" % (value,)
    return level, None


class DeliveryState:
    """
    What the actions of one evaluation decided so far.

    @ivar outcome: the C{Outcome} being filled in.
    @ivar message: the C{RuleMessage}.
    @ivar server: C{True} for Server rules (nothing is stored there).
    @ivar keep: the implicit C{INBOX} copy still stands.
    @ivar stores: mailboxes named by C{Store in}, in order.
    """

    def __init__(self, outcome, message, server=False):
        self.outcome = outcome
        self.message = message
        self.server = server
        self.keep = True
        self.stores = []

    def finish(self):
        """
        Fill in C{outcome.store} from the decisions (flags go on every
        copy).
        """
        out = self.outcome
        flags = tuple(out.flags)
        if out.discard or out.reject is not None:
            out.store = []
        elif self.stores:
            out.store = [(box, flags) for box in self.stores]
        elif self.keep:
            out.store = [("INBOX", flags)]
        else:
            out.store = []
        return out


# -- parameters --------------------------------------------------------------------------


def _paramText(param, what):
    if isinstance(param, (int, float)) and not isinstance(param, bool):
        param = str(param)
    if not isinstance(param, str) or not param.strip():
        raise RuleError("%s needs a text parameter" % (what,))
    return param


def _oneLine(text):
    return " ".join(text.split())


def parseAddresses(param):
    """
    The addresses of a C{Redirect to} / C{Forward to} / C{Mirror to}
    parameter: a comma (or semicolon) separated list, or an array; each
    may be C{Name <addr>}.  Bare names (C{boss}) are kept: the Router
    resolves them in the account's domain.

    @return: C{list} of address C{str}, duplicates dropped.
    @raise RuleError: when no address is given or one is malformed.
    """
    items = param if isinstance(param, list) else [_paramText(param, "an address list")]
    result = []
    for item in items:
        if not isinstance(item, str):
            raise RuleError("not an address: %r" % (item,))
        for _, address in email.utils.getaddresses([item.replace(";", ",")]):
            address = address.strip()
            if not address:
                continue
            if any(c.isspace() or c in "<>\"" for c in address):
                raise RuleError("not an address: %r" % (address,))
            if address.lower() not in (a.lower() for a in result):
                result.append(address)
    if not result:
        raise RuleError("no address given")
    return result


def parseFlags(param):
    """
    The flags of a C{Mark} parameter: names of L{FLAGS} (any case) or IMAP
    keywords starting with C{$}, comma-separated.

    @return: C{list} of IMAP flag C{str}.
    @raise RuleError: for an unknown name.
    """
    names = splitList(_paramText(param, "Mark") if not isinstance(param, list) else param)
    flags = []
    for name in names:
        flag = FLAGS.get(normalizeName(name).replace(" ", ""))
        if flag is None:
            if not _KEYWORD.fullmatch(name):
                raise RuleError("unknown flag %r" % (name,))
            flag = name
        if flag not in flags:
            flags.append(flag)
    if not flags:
        raise RuleError("Mark needs a flag")
    return flags


def parseHeaderLines(param):
    """
    The header lines of an C{Add Header} parameter: one or more
    C{Name: value} lines.  Each line is checked, so a rule can never
    inject a malformed header or a body.

    @return: C{list} of C{"Name: value"}.
    @raise RuleError: for a malformed line.
    """
    lines = [line.strip() for line in _paramText(param, "Add Header").splitlines()]
    result = []
    for line in lines:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon or not _HEADER_NAME.fullmatch(name):
            raise RuleError("not a header line: %r" % (line,))
        result.append("%s: %s" % (name, value.strip()))
    if not result:
        raise RuleError("Add Header needs 'Name: value'")
    return result


# -- actions -----------------------------------------------------------------------------


def _storeIn(state, mailbox):
    if mailbox not in state.stores:
        state.stores.append(mailbox)


def _mark(state, flags):
    for flag in flags:
        if flag not in state.outcome.flags:
            state.outcome.flags.append(flag)


def _addHeader(state, lines):
    for line in lines:
        state.outcome.addHeaders.append(line)
        state.outcome.headerEdits.append(("add", line))


def _tagSubject(state, tag):
    state.outcome.headerEdits.append(("tagSubject", tag))


def _redirect(state, addresses):
    _extend(state.outcome.redirect, addresses)
    state.keep = False
    state.outcome.stopped = True


def _forward(state, addresses):
    _extend(state.outcome.forward, addresses)
    state.keep = False


def _mirror(state, addresses):
    _extend(state.outcome.mirror, addresses)


def _extend(target, addresses):
    for address in addresses:
        if address.lower() not in (a.lower() for a in target):
            target.append(address)


def _reply(state, text, toAll=False):
    message = state.message
    why = replySuppressed(message)
    if why:
        state.outcome.trace.append("reply not sent: %s" % (why,))
        return
    targets = message.replyTargets(toAll)
    if not targets:
        state.outcome.trace.append("reply not sent: no address to reply to")
        return
    expanded = expandMacros(text, message)
    for target in targets:
        if (target, expanded) not in state.outcome.replies:
            state.outcome.replies.append((target, expanded))


def _remember(state, listName):
    address = state.message.fromAddress()
    if not address:
        state.outcome.trace.append("nothing remembered: the message has no sender address")
        return
    entry = (listName, address.lower())
    if entry not in state.outcome.remember:
        state.outcome.remember.append(entry)


def _reject(state, text):
    state.outcome.reject = text
    state.outcome.stopped = True


def _discard(state, _):
    state.outcome.discard = True
    state.outcome.stopped = True


def _execute(state, command):
    state.outcome.execute.append(command)


def _stop(state, _):
    state.outcome.stopped = True


class _Kind:
    """
    One action name: how its parameter is read, what it does, the
    C{RulesAllowed} level it needs, and whether it means anything in
    Server rules (which run before any account is known).
    """

    def __init__(self, name, level, parse, run, server=True):
        self.name = name
        self.level = level
        self.parse = parse
        self.run = run
        self.server = server


def _noParam(param):
    return None


def _mailbox(param):
    name = _paramText(param, "Store in").strip()
    if any(c in name for c in "\r\n\0") or name.startswith("/"):
        raise RuleError("not a mailbox name: %r" % (name,))
    return name


def _listName(param):
    name = _paramText(param, "Remember 'From' in").strip().lstrip("#")
    if not name or any(c.isspace() for c in name):
        raise RuleError("not an address list name: %r" % (param,))
    return name


def _rejectText(param):
    if param is None or (isinstance(param, str) and not param.strip()):
        return "rejected by a rule"
    return _oneLine(_paramText(param, "Reject with"))


ACTIONS = {normalizeName(kind.name): kind for kind in [
    _Kind("Store in", ALLOW_FILTER, _mailbox, _storeIn, server=False),
    _Kind("Mark", ALLOW_FILTER, parseFlags, _mark, server=False),
    _Kind("Add Header", ALLOW_FILTER, parseHeaderLines, _addHeader),
    _Kind("Tag Subject", ALLOW_FILTER,
          lambda p: _oneLine(_paramText(p, "Tag Subject")), _tagSubject),
    _Kind("Discard", ALLOW_FILTER, _noParam, _discard),
    _Kind("Reject with", ALLOW_FILTER, _rejectText, _reject),
    _Kind("Stop Processing", ALLOW_FILTER, _noParam, _stop),
    _Kind("Reply with", ALLOW_NO_MIRROR,
          lambda p: _paramText(p, "Reply with"), _reply),
    _Kind("Reply to All with", ALLOW_NO_MIRROR,
          lambda p: _paramText(p, "Reply to All with"),
          lambda state, text: _reply(state, text, toAll=True)),
    _Kind("Remember 'From' in", ALLOW_NO_MIRROR, _listName, _remember, server=False),
    _Kind("Execute", ALLOW_NO_MIRROR,
          lambda p: _paramText(p, "Execute").strip(), _execute),
    _Kind("Redirect to", ALLOW_ANY, parseAddresses, _redirect),
    _Kind("Forward to", ALLOW_ANY, parseAddresses, _forward),
    _Kind("Mirror to", ALLOW_ANY, parseAddresses, _mirror),
]}


class CompiledAction:
    """
    An action ready to run: its kind and its parsed parameter.
    """

    def __init__(self, kind, value):
        self.kind = kind
        self.value = value

    def run(self, state, allowed):
        """
        Carry the action out on C{state}, unless the permission level or
        the rule set forbids it.

        @return: a problem text when the action was skipped, else C{None}.
        """
        kind = self.kind
        if kind.level > allowed:
            return "action %r not allowed (RulesAllowed is %s)" % (
                kind.name, _ALLOWED_NAMES[allowed])
        if state.server and not kind.server:
            return "action %r means nothing in Server rules" % (kind.name,)
        kind.run(state, self.value)
        return None


def compileAction(action):
    """
    Compile one action of rule data.

    @param action: C{[name]} or C{[name, parameter]}.
    @return: a L{CompiledAction}.
    @raise RuleError: for a malformed or unknown action or a bad parameter.
    """
    if not isinstance(action, (list, tuple)) or not 1 <= len(action) <= 2:
        raise RuleError("an action must be (name [, parameter]): %r" % (action,))
    kind = ACTIONS.get(normalizeName(action[0]))
    if kind is None:
        raise RuleError("unknown action %r" % (action[0],))
    try:
        value = kind.parse(action[1] if len(action) == 2 else None)
    except RuleError as e:
        raise RuleError("action %r: %s" % (kind.name, e)) from None
    return CompiledAction(kind, value)


# -- replies -----------------------------------------------------------------------------


def replySuppressed(message):
    """
    Why no automatic reply may be sent to C{message} (RFC 3834 section 2),
    or C{None}.
    """
    if not message.sender:
        return "the envelope sender is null"
    for value in message.headerValues("Auto-Submitted") or ():
        if value.split(";")[0].strip().lower() != "no":
            return "the message is Auto-Submitted"
    return None


def expandMacros(text, message):
    """
    Expand the macros of a reply text:

      - C{^I}: the original C{Message-ID} (with its angle brackets), for
        C{In-Reply-To: ^I};
      - C{^S}: the original subject;
      - C{^F}: the original sender's address (C{From}, else the envelope
        sender);
      - C{^T}: the original C{To} header;
      - C{^D}: the original C{Date} header.

    Any other C{^x} is left as written.  Values are put on one line, so an
    expanded header stays one header.
    """
    values = {
        "I": lambda: message.messageId() or "",
        "S": lambda: message.subject() or "",
        "F": lambda: message.fromAddress() or "",
        "T": lambda: ", ".join(message.headerValues("To") or ()),
        "D": lambda: (message.headerValues("Date") or [""])[0],
    }

    def replace(m):
        value = values.get(m.group(1).upper())
        return m.group(0) if value is None else _oneLine(value())
    return _MACRO.sub(replace, text)


def parseReplyText(text):
    """
    Split a reply text into header fields and body.  A text whose first
    line starts with C{+} begins with header lines (the C{+} is dropped)
    up to the first empty line; any other text is all body.  Header lines
    that are not C{Name: value} are dropped.

    @return: C{(headers, body)}: a C{list} of C{(name, value)} and a
        C{str}.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if not lines or not lines[0].startswith("+"):
        return [], "\n".join(lines)
    lines[0] = lines[0][1:]
    headers = []
    for i, line in enumerate(lines):
        if not line.strip():
            return headers, "\n".join(lines[i + 1:])
        if line[0] in " \t" and headers:
            name, value = headers[-1]
            headers[-1] = (name, value + " " + line.strip())
            continue
        name, colon, value = line.partition(":")
        if colon and _HEADER_NAME.fullmatch(name.strip()):
            headers.append((name.strip(), value.strip()))
    return headers, ""


def buildReply(message, toAddress, text, fromAddress=None, messageId=None):
    """
    Compose the reply message a C{Reply with} outcome asks for.  Send it
    with the null envelope sender (RFC 3834 section 3.3), so that a reply
    to it is never made.

    @param message: the C{RuleMessage} replied to.
    @param toAddress: the recipient (first item of the reply tuple).
    @param text: the expanded reply text (second item of the reply tuple).
    @param fromAddress: the C{From} unless the text sets one; default the
        account (or the original recipient).
    @param messageId: the C{Message-ID}; default a new one.
    @return: the message C{bytes}, CRLF line ends.
    """
    headers, body = parseReplyText(_clean(text))
    given = {name.lower() for name, _ in headers}
    reply = EmailMessage(policy=SMTP)
    author = _clean(fromAddress or message.account or message.recipient or "postmaster")
    defaults = [
        ("From", author),
        ("To", _clean(toAddress)),
        ("Subject", _replySubject(_clean(message.subject() or ""))),
        ("Date", email.utils.format_datetime(
            message.now.replace(tzinfo=datetime.timezone.utc))),
    ]
    originalId = _clean(message.messageId() or "")
    if originalId:
        defaults.append(("In-Reply-To", originalId))
        defaults.append(("References", originalId))
    for name, value in defaults:
        if name.lower() not in given:
            _setHeader(reply, name, value)
    for name, value in headers:
        if name.lower() not in ("mime-version", "content-type", "content-transfer-encoding"):
            _setHeader(reply, name, value)
    if "message-id" not in given:
        domain = _domainOf(author)
        reply["Message-ID"] = messageId or "<%s@%s>" % (uuid.uuid4().hex, domain)
    if "auto-submitted" not in given:
        reply["Auto-Submitted"] = "auto-replied"
    reply.set_content(body if body.endswith("\n") or not body else body + "\n")
    return reply.as_bytes()


def _clean(text):
    """
    Text that can be written as UTF-8: undecodable bytes kept by the data
    format or the header parser (lone surrogates) become U+FFFD.
    """
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


def _setHeader(reply, name, value):
    """
    Add a header to the reply; one the email package refuses (a value it
    cannot parse or fold) is dropped rather than failing the reply.
    """
    try:
        reply[name] = value
    except Exception:
        pass


def _replySubject(subject):
    subject = subject or ""
    if subject.lower().startswith("re:"):
        return subject
    return ("Re: " + subject) if subject else "Re: your message"


def _domainOf(address):
    _, addr = email.utils.parseaddr(address)
    domain = addr.rpartition("@")[2]
    return domain if domain and "@" in addr else "localhost"


# -- header edits ------------------------------------------------------------------------


_HEADER_END = re.compile(rb"\r?\n\r?\n")
#: Encoded words readable by a person where most text is Latin.
_QP_UTF8 = Charset("utf-8")
_QP_UTF8.header_encoding = QP


def applyHeaderEdits(data, edits):
    """
    Apply C{Outcome.headerEdits} to a message: C{("add", "Name: value")}
    puts the header at the top of the header block, where trace headers
    go; C{("tagSubject", tag)} puts C{tag} and a space in front of the
    subject (unless the subject already contains the tag) or adds
    C{Subject: tag} when there is none.  Non-ASCII text is written as
    RFC 2047 encoded words.

    C{headerEdits} holds every C{Add Header} too, in rule order: apply
    either it or C{addHeaders}, not both.

    @param data: the message C{bytes}.
    @return: the edited message C{bytes} (C{data} itself when C{edits} is
        empty).
    """
    if not edits:
        return data
    eol = b"\r\n" if b"\r\n" in data[:4096] or not data else b"\n"
    if data.startswith((b"\r\n", b"\n")):
        head, rest = b"", eol + data
    else:
        m = _HEADER_END.search(data)
        if m is not None:
            head, rest = data[:m.start()], data[m.start():]
        else:
            head = data.rstrip(b"\r\n")
            rest = data[len(head):] or eol
    lines = head.split(eol) if head else []
    added = []
    for what, value in edits:
        if what == "add":
            name, _, text = value.partition(":")
            added.append(name.encode("ascii") + b": " + _encodeText(text.strip()))
        elif what == "tagSubject":
            lines = _tagSubjectLines(lines, value)
    return eol.join(added + lines) + rest


def _encodeText(text):
    text = _clean(text)
    try:
        return text.encode("ascii")
    except UnicodeEncodeError:
        return Header(text, _QP_UTF8).encode().encode("ascii")


def _tagSubjectLines(lines, tag):
    for i, line in enumerate(lines):
        if line[:8].lower() == b"subject:":
            end = i + 1
            while end < len(lines) and lines[end][:1] in (b" ", b"\t"):
                end += 1
            current = b" ".join(part.strip() for part in
                                [lines[i][8:]] + lines[i + 1:end])
            decoded = _decodeSubject(current)
            if tag.casefold() in decoded.casefold():
                return lines
            new = b"Subject: " + _encodeText(tag) + (b" " + current if current else b"")
            return lines[:i] + [new] + lines[end:]
    return lines + [b"Subject: " + _encodeText(tag)]


def _decodeSubject(raw):
    text = raw.decode("utf-8", "replace")
    try:
        return str(make_header(decode_header(text)))
    except Exception:
        return text
