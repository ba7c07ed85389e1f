# -*- test-case-name: tests.queue.test_dsn -*-
"""
Delivery status notifications (RFC 3464, RFC 3461, RFC 6522).

A DSN is a C{multipart/report; report-type=delivery-status} message from
C{MAILER-DAEMON@<main domain>} to the envelope sender, sent with the null
sender so that nothing ever answers it (which is also why a message with
the null sender never gets a DSN: no DSN about a DSN).  It has three
parts: a text for people, the C{message/delivery-status} fields for
programs (one block per recipient: Final-Recipient, Action, Status,
Remote-MTA, Diagnostic-Code), and the original message, whole
(C{message/rfc822}) or only its header (C{text/rfc822-headers}) per the
sender's RET and the size limit.

The report is written out as bytes directly rather than with the C{email}
package: the original message must be carried unchanged, byte for byte.
"""

import itertools
import os
import re
from dataclasses import dataclass

from cgpro.core.envelope import Envelope
from cgpro.queue import actions

_STATUS = re.compile(r"^\s*([245])\.([0-9]{1,3})\.([0-9]{1,3})(?![0-9.])")

_boundaries = itertools.count(1)

#: Action field values (RFC 3464 section 2.3.3).
FAILED = "failed"
DELAYED = "delayed"
DELIVERED = "delivered"
RELAYED = "relayed"
EXPANDED = "expanded"


@dataclass
class ReportEntry:
    """
    One recipient's block of a DSN.

    @ivar recipient: the L{cgpro.core.envelope.Recipient}.
    @ivar action: L{FAILED}, L{DELAYED}, L{DELIVERED} ...
    @ivar code: the reply code of the last attempt.
    @ivar text: its text (with the enhanced status code if any).
    @ivar remoteHost: who answered (C{None}: this server).
    @ivar lastAttempt: epoch seconds of the last attempt, or C{None}.
    @ivar willRetryUntil: epoch seconds (delayed reports), or C{None}.
    """

    recipient: object
    action: str
    code: int
    text: str
    remoteHost: str = None
    lastAttempt: float = None
    willRetryUntil: float = None


def wants(recipient, what):
    """
    Whether the sender asked for this kind of notice about this recipient
    (RFC 3461 NOTIFY; without it: failures and delays).

    @param what: C{"FAILURE"}, C{"DELAY"} or C{"SUCCESS"}.
    """
    notify = recipient.notify
    if notify is None:
        return what in ("FAILURE", "DELAY")
    notify = {str(n).upper() for n in notify}
    if "NEVER" in notify:
        return False
    return what in notify


def statusCode(code, text):
    """
    @return: the enhanced status code (C{"5.1.1"}) of a reply: the one in
        its text, else the generic one of its class.
    """
    match = _STATUS.match(text or "")
    if match is not None:
        return "%s.%s.%s" % match.groups()
    return "%d.0.0" % (code // 100 if code // 100 in (2, 4, 5) else 5,)


def _oneLine(text):
    return " ".join(str(text).split())


def _xtextDecode(value):
    """
    Decode an RFC 3461 xtext (C{+XX} hex escapes).
    """
    return re.sub(r"\+([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), value)


def _addressField(address):
    return ("utf-8; " if not address.isascii() else "rfc822; ") + address


def _diagnostic(code, text):
    text = _oneLine(text)
    if re.match(r"^[0-9]{3}\b", text):
        return "smtp; " + text
    return "smtp; %d %s" % (code, text)


def subjectFor(entries):
    actionsSeen = {entry.action for entry in entries}
    if FAILED in actionsSeen:
        return "Undelivered Mail Returned to Sender"
    if DELAYED in actionsSeen:
        return "Delayed Mail (still being retried)"
    return "Successful Mail Delivery Report"


def _humanText(entries, mainDomain):
    lines = ["This is the mail delivery system at %s." % (mainDomain,), ""]
    groups = (
        (FAILED, "Your message could not be delivered to the following recipients:"),
        (DELAYED, "Your message has not been delivered yet to the following recipients;"
                  " delivery will be retried:"),
        (DELIVERED, "Your message was delivered to the following recipients:"),
        (RELAYED, "Your message was relayed to the following recipients:"),
        (EXPANDED, "Your message was expanded for the following recipients:"),
    )
    for action, intro in groups:
        chosen = [e for e in entries if e.action == action]
        if not chosen:
            continue
        lines.append(intro)
        lines.append("")
        for entry in chosen:
            detail = _oneLine(entry.text)
            if entry.code and not re.match(r"^[0-9]{3}\b", detail):
                detail = "%d %s" % (entry.code, detail)
            lines.append("  <%s>: %s" % (entry.recipient.address, detail))
            if entry.remoteHost:
                lines.append("    (reported by %s)" % (entry.remoteHost,))
        lines.append("")
    return "\r\n".join(lines) + "\r\n"


def _statusPart(envelope, entries, mainDomain, arrival):
    fields = ["Reporting-MTA: dns; %s" % (mainDomain,)]
    if envelope.envid:
        fields.append("Original-Envelope-Id: %s" % (_oneLine(_xtextDecode(envelope.envid)),))
    if arrival is not None:
        fields.append("Arrival-Date: %s" % (arrival,))
    blocks = ["\r\n".join(fields)]
    for entry in entries:
        recipient = entry.recipient
        block = []
        if recipient.orcpt:
            block.append("Original-Recipient: %s" % (_oneLine(_xtextDecode(recipient.orcpt)),))
        block.append("Final-Recipient: %s" % (_addressField(recipient.address),))
        block.append("Action: %s" % (entry.action,))
        block.append("Status: %s" % (statusCode(entry.code, entry.text),))
        if entry.remoteHost:
            block.append("Remote-MTA: dns; %s" % (_oneLine(entry.remoteHost),))
        if entry.text or entry.code:
            block.append("Diagnostic-Code: %s" % (_diagnostic(entry.code, entry.text),))
        if entry.lastAttempt is not None:
            block.append("Last-Attempt-Date: %s" % (_date(entry.lastAttempt),))
        if entry.willRetryUntil is not None:
            block.append("Will-Retry-Until: %s" % (_date(entry.willRetryUntil),))
        blocks.append("\r\n".join(block))
    return "\r\n\r\n".join(blocks) + "\r\n"


def _date(seconds):
    import email.utils

    return email.utils.formatdate(seconds, usegmt=True)


def returnWhole(envelope, data, entries, maxReturn):
    """
    Whether the original goes back whole (else only its header): RET=HDRS
    never; RET=FULL or a failure report within C{maxReturn} bytes.
    """
    ret = (envelope.ret or "").upper()
    if ret == "HDRS":
        return False
    if maxReturn is not None and len(data) > maxReturn:
        return False
    if ret == "FULL":
        return True
    return any(entry.action == FAILED for entry in entries)


def makeReport(envelope, data, entries, mainDomain, clock, maxReturn=None, arrival=None):
    """
    Build a DSN.

    @param envelope: the original message's L{Envelope}.
    @param data: the original message (C{bytes}).
    @param entries: the L{ReportEntry}s to report (at least one).
    @param mainDomain: the server's Main Domain (the C{MAILER-DAEMON}
        address and Reporting-MTA).
    @param clock: for Date and Message-ID.
    @param maxReturn: the largest original returned whole (C{None}: any).
    @param arrival: epoch seconds the original was accepted, or C{None}.
    @return: the DSN message (C{bytes}, CRLF line ends).
    """
    boundary = "%d.%s/%s" % (next(_boundaries), os.urandom(6).hex(), mainDomain)
    while ("--" + boundary).encode() in data:
        boundary = "%d.%s/%s" % (next(_boundaries), os.urandom(6).hex(), mainDomain)
    whole = returnWhole(envelope, data, entries, maxReturn)
    original = data if whole else actions.headerBlock(data) + b"\r\n"
    if not original.endswith(b"\r\n"):
        original += b"\r\n"
    headers = [
        "From: Mail Delivery System <MAILER-DAEMON@%s>" % (mainDomain,),
        "To: <%s>" % (envelope.sender,),
        "Subject: %s" % (subjectFor(entries),),
        "Date: %s" % (actions.formatDate(clock),),
        "Message-ID: %s" % (actions.makeMessageId(mainDomain, clock),),
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        'Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary="%s"'
        % (boundary,),
    ]
    parts = [
        "Content-Description: Notification\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n" + _humanText(entries, mainDomain),
        "Content-Description: Delivery report\r\n"
        "Content-Type: message/delivery-status\r\n\r\n"
        + _statusPart(envelope, entries, mainDomain,
                      _date(arrival) if arrival is not None else None),
    ]
    if whole:
        third = "Content-Description: Undelivered Message\r\nContent-Type: message/rfc822\r\n"
    else:
        third = ("Content-Description: Message Headers\r\n"
                 "Content-Type: text/rfc822-headers\r\n")
    if not original.isascii():
        third += "Content-Transfer-Encoding: 8bit\r\n"
    out = ["\r\n".join(headers), "\r\n\r\nThis is a MIME-encapsulated message.\r\n"]
    for part in parts:
        out.append("\r\n--%s\r\n%s" % (boundary, part))
    out.append("\r\n--%s\r\n%s\r\n" % (boundary, third))
    text = "".join(out).encode("utf-8")
    return text + original + ("\r\n--%s--\r\n" % (boundary,)).encode("ascii")


def reportEnvelope(envelope):
    """
    @return: the L{Envelope} of a DSN about C{envelope}'s message: null
        sender, to its sender, generated by this server.
    """
    report = Envelope(sender="", protocol="LOCAL", trusted=True)
    report.addRecipient(envelope.sender)
    return report
