# -*- test-case-name: tests.queue.test_local -*-
"""
Helpers shared by the rule actions of the Enqueuer (server rules) and of
local delivery (domain and account rules): reading header fields without
parsing the whole message, adding header fields, building auto-replies,
running external programs.

Headers are read from the raw bytes (up to the first empty line) instead
of through the C{email} package: local delivery looks at a couple of
fields of every message, and a full MIME parse would cost more than the
rest of the delivery.
"""

import email.utils
from email.header import Header
import itertools
import os
import shlex

from twisted.internet import protocol
from twisted.logger import Logger

log = Logger()

_counter = itertools.count(1)


def headerBlock(data):
    """
    @return: the header section of a message (C{bytes}, without the empty
        line that ends it).
    """
    end = data.find(b"\r\n\r\n")
    if end == -1:
        end = data.find(b"\n\n")
        if end == -1:
            return data
    return data[:end]


def headerFields(data):
    """
    Unfold the header section.

    @return: C{list} of C{(lowerName, value)} with C{str} values (UTF-8,
        undecodable bytes replaced).
    """
    fields = []
    for raw in headerBlock(data).split(b"\n"):
        line = raw.rstrip(b"\r")
        if not line:
            continue
        if line[:1] in (b" ", b"\t"):
            if fields:
                name, value = fields[-1]
                fields[-1] = (name, value + " " + line.strip().decode("utf-8", "replace"))
            continue
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        fields.append((name.strip().decode("ascii", "replace").lower(),
                       value.strip().decode("utf-8", "replace")))
    return fields


def header(data, name, fields=None):
    """
    @return: the first value of header field C{name} (C{str}), or C{None}.
    """
    name = name.lower()
    for key, value in fields if fields is not None else headerFields(data):
        if key == name:
            return value
    return None


def isAutomatic(data, sender, fields=None):
    """
    Whether a message must never get an automatic answer (RFC 3834 section
    2): null sender, auto-submitted, bulk or mailing-list mail, or mail
    from a robot's mailbox.
    """
    if not sender:
        return True
    local = sender.rpartition("@")[0].lower() if "@" in sender else sender.lower()
    if (local in ("mailer-daemon", "listserv", "majordomo") or local.startswith("owner-")
            or local.endswith("-request") or local.endswith("-bounces")):
        return True
    fields = fields if fields is not None else headerFields(data)
    for name, value in fields:
        if name == "auto-submitted" and value.split(";")[0].strip().lower() != "no":
            return True
        if name == "precedence" and value.strip().lower() in ("bulk", "list", "junk"):
            return True
        if name.startswith("list-") and name in ("list-id", "list-unsubscribe", "list-post"):
            return True
    return False


def addHeaders(data, lines):
    """
    Prepend header fields.

    @param lines: C{"Name: value"} strings.
    @return: the new message bytes.
    """
    if not lines:
        return data
    block = "".join(line.rstrip("\r\n") + "\r\n" for line in lines)
    return block.encode("utf-8") + data


def editHeaders(data, outcome):
    """
    Apply a rules outcome's header changes: its C{headerEdits} (C{Add
    Header} and C{Tag Subject} in rule order, through the engine's
    C{applyHeaderEdits}) when it has them, else its C{addHeaders}.

    @return: C{(data, key)}: the edited bytes, and a hashable summary of
        the edits (messages with equal keys have equal bytes).
    """
    edits = getattr(outcome, "headerEdits", None)
    if edits:
        from cgpro.queue.ruleactions import applyHeaderEdits

        return applyHeaderEdits(data, edits), tuple(tuple(e) for e in edits)
    added = tuple(getattr(outcome, "addHeaders", None) or ())
    if added:
        return addHeaders(data, added), added
    return data, ()


def makeMessageId(domain, clock):
    """
    @return: a new C{Message-ID} value, C{<...>} included.
    """
    return "<%d.%d.%s@%s>" % (int(clock.seconds()), next(_counter),
                              os.urandom(4).hex(), domain)


def formatDate(clock):
    """
    @return: an RFC 5322 date for the clock's current time.
    """
    return email.utils.formatdate(clock.seconds(), usegmt=True)


def buildReply(text, original, account, realName, toAddress, clock):
    """
    Build an automatic reply ("Reply with" / vacation).

    The rule text is the body; if it starts with C{+} (rules.md 5.1) its
    first lines, up to an empty line, are header fields to use (C{+} is
    dropped).  C{^I} stands for the original C{Message-ID}, C{^S} for its
    subject, C{^F} for its sender.  Missing fields get defaults: From the
    account, To the replied address, C{Re:} the original subject,
    In-Reply-To/References the original id, and always
    C{Auto-Submitted: auto-replied}.

    @param original: the message replied to (C{bytes}).
    @return: the reply (C{bytes}, CRLF line ends).
    """
    fields = headerFields(original)
    originalId = header(original, "message-id", fields) or ""
    subject = header(original, "subject", fields) or ""
    sender = header(original, "from", fields) or toAddress
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    for macro, value in (("^I", originalId), ("^S", subject), ("^F", sender)):
        text = text.replace(macro, value)
    given = []
    if text.startswith("+"):
        head, _, body = text[1:].partition("\n\n")
        for line in head.split("\n"):
            name, sep, value = line.partition(":")
            if sep and name.strip():
                given.append((name.strip(), value.strip()))
    else:
        body = text
    names = {name.lower() for name, _ in given}
    domain = account.rpartition("@")[2]
    headers = []

    def default(name, value):
        if name.lower() not in names and value:
            headers.append((name, value))

    default("From", email.utils.formataddr((realName, account)) if realName else account)
    default("To", toAddress)
    default("Subject", subject if subject.lower().startswith("re:") else "Re: " + subject
            if subject else "Auto-reply")
    default("Date", formatDate(clock))
    default("Message-ID", makeMessageId(domain, clock))
    default("In-Reply-To", originalId)
    default("References", originalId)
    fixed = [("Auto-Submitted", "auto-replied"), ("MIME-Version", "1.0"),
             ("Content-Type", "text/plain; charset=utf-8"),
             ("Content-Transfer-Encoding", "8bit")]
    reserved = {name.lower() for name, _ in fixed}
    headers.extend((n, v) for n, v in given if n.lower() not in reserved)
    headers.extend(fixed)
    lines = ["%s: %s" % (n, v if v.isascii() else Header(v, "utf-8").encode())
             for n, v in headers]
    body = body.replace("\n", "\r\n")
    if not body.endswith("\r\n"):
        body += "\r\n"
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode("utf-8")


class _ExecuteProtocol(protocol.ProcessProtocol):
    """
    Feeds a message to an external program and logs how it ended.
    """

    def __init__(self, command, data):
        self.command = command
        self.data = data
        self.timer = None

    def connectionMade(self):
        self.transport.write(self.data)
        self.transport.closeStdin()

    def outReceived(self, data):
        pass

    def errReceived(self, data):
        log.info("rule command {command}: {text}", command=self.command,
                 text=data.decode("utf-8", "replace").strip())

    def processEnded(self, reason):
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        code = getattr(reason.value, "exitCode", 0)
        if code:
            log.warn("rule command {command} failed: {reason}", command=self.command,
                     reason=reason.value)


def execute(reactor, clock, commandLine, data, timeout=None):
    """
    Run an "Execute" rule action: the command gets the message on its
    standard input; it runs on its own (delivery does not wait for it) and
    its failure is only logged.

    @param commandLine: the program and its arguments, shell-quoted.
    @return: the process protocol, or C{None} if it could not start.
    """
    try:
        argv = shlex.split(commandLine)
    except ValueError as e:
        log.warn("rule command {command!r} is malformed: {err}", command=commandLine, err=e)
        return None
    if not argv:
        return None
    proto = _ExecuteProtocol(commandLine, data)
    try:
        transport = reactor.spawnProcess(proto, argv[0], argv,
                                         env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    except Exception as e:
        log.warn("rule command {command!r} could not start: {err}", command=commandLine, err=e)
        return None
    if timeout:
        def kill():
            try:
                transport.signalProcess("KILL")
            except Exception:
                pass
        proto.timer = clock.callLater(timeout, kill)
    return proto
