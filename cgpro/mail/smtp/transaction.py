# -*- test-case-name: tests.mail.smtp.test_server -*-
"""
One mail transaction (MAIL, RCPT..., DATA) and the trace fields the server
prepends to the message.

L{Transaction} keeps the envelope being built and the spool file the data
goes to, and guarantees the spool is either committed once or aborted
once, whatever the session does (RSET, QUIT, a vanished client, an error):
no partial message reaches the queue.  Recipients are kept in a
dictionary, so 10,000 RCPTs cost linear time.
"""

import datetime
import email.utils

from cgpro.core.envelope import Envelope


class Transaction:
    """
    @ivar envelope: the L{Envelope} being built.
    @ivar accepted: for each accepted RCPT in order, the index of its
        envelope recipient (a repeated address is stored once but answered
        once per RCPT in LMTP).
    @ivar headers: trace header bytes to prepend (Received-SPF).
    @ivar incoming: the L{IIncomingMessage} once DATA started, else
        C{None}.
    @ivar reader: the L{cgpro.mail.smtp.wire.DataReader} during DATA.
    @ivar tooMany: whether a RCPT was refused for the recipient limit (so
        the log names it once, not 9,000 times).
    @ivar traceSize: the bytes of trace fields written before the data.
    @ivar committing: whether the spool was handed to C{commit} (from
        then on it is the queue's, and is never aborted).
    """

    def __init__(self, sender, bodyType=None, smtputf8=False, ret=None, envid=None,
                 headers=b""):
        self.envelope = Envelope(sender=sender, bodyType=bodyType, smtputf8=smtputf8, ret=ret,
                                 envid=envid)
        self.accepted = []
        self.headers = headers
        self.incoming = None
        self.reader = None
        self.tooMany = False
        self.committing = False
        self.traceSize = 0
        self._byAddress = {}

    @property
    def sender(self):
        return self.envelope.sender

    def addRecipient(self, address, notify=None, orcpt=None):
        """
        Add an accepted recipient.

        @return: its envelope index.
        """
        key = address.lower()
        index = self._byAddress.get(key)
        if index is None:
            index = self._byAddress[key] = self.envelope.addRecipient(address, notify, orcpt).index
        self.accepted.append(index)
        return index

    def start(self, incoming, trace):
        """
        Open the spool: the trace fields go first.
        """
        self.incoming = incoming
        incoming.write(trace)

    def dropSpool(self):
        """
        Drop the spool file unless it is committed or being committed;
        the data phase may go on (to read up to the end of a refused
        message).  Safe to call any number of times.
        """
        incoming, self.incoming = self.incoming, None
        if incoming is not None and not self.committing:
            incoming.abort()

    def abort(self):
        """
        End the transaction without a message: L{dropSpool}, and no more
        data phase.
        """
        self.reader = None
        self.dropSpool()


def sanitize(text, limit=255):
    """
    Make client-supplied text safe inside a header comment: printable, no
    parentheses or backslashes, bounded.
    """
    text = "".join(c if c.isprintable() and c not in "()\\\r\n" else "?" for c in text)
    return text[:limit]


def addressLiteral(ip):
    """
    @return: C{[1.2.3.4]} or C{[IPv6:::1]}.
    """
    return "[IPv6:%s]" % (ip,) if ":" in ip else "[%s]" % (ip,)


def receivedHeader(helo, ip, host, software, protocol, queueId, when, tls=None,
                   authUser=None, recipient=None):
    """
    The C{Received:} field of RFC 5321 4.4.

    @param helo: the HELO/EHLO name as given.
    @param host: our host name.
    @param software: what to name ourselves as, in a comment.
    @param protocol: C{ESMTPSA}, C{LMTP} ... (RFC 3848).
    @param when: seconds since the epoch.
    @param tls: C{"TLSv1.3 cipher"} when the session is under TLS.
    @param authUser: the authenticated account, if any.
    @param recipient: the one recipient, named only when there is one
        (naming several would reveal Bcc recipients to each other).
    @return: the folded field with its CRLF, as C{bytes}.
    """
    lines = ["Received: from %s (%s)" % (sanitize(helo) or "unknown", addressLiteral(ip)),
             "\tby %s (%s)" % (host, software)]
    comments = []
    if tls:
        comments.append(tls)
    if authUser:
        comments.append("authenticated as %s" % (authUser,))
    withLine = "\twith %s id %s" % (protocol, queueId)
    if comments:
        withLine += " (%s)" % ("; ".join(sanitize(c) for c in comments),)
    lines.append(withLine)
    date = email.utils.format_datetime(
        datetime.datetime.fromtimestamp(when, datetime.timezone.utc))
    if recipient:
        lines.append("\tfor <%s>; %s" % (sanitize(recipient, 300), date))
    else:
        lines[-1] += ";"
        lines.append("\t%s" % (date,))
    return ("\r\n".join(lines) + "\r\n").encode("utf-8", "replace")
