# -*- test-case-name: tests.queue.test_mailinglists -*-
"""
The LIST delivery channel: groups and mailing lists (objects.md 5,
router.md 3, issue 3 "Mailing lists").

The Router sends a group's or a list's address to module C{LIST} with the
logical queue C{name@domain}; one job is one message for one group or
list.  The channel never delivers anything itself: it decides who gets
the message and queues a new one for them with C{queue.submit} (the
server rules already ran on the original, so C{submitGenerated} is used
when the queue has it).  The original recipient is then done: DELIVERED
once the new message is durable, DEFERRED (retried by the queue) if it
could not be queued, FAILED (550, a DSN to the sender) if the list
refuses the post.

Groups.  The message is copied without header changes (only C{Reply-To}
when the group's C{SetReplyTo} is C{YES}) to the members, with the
original envelope sender, so members' bounces go to the author.  A bare
member name is in the group's domain.  A member that is another group is
expanded here, inline, when the group's C{ExpandGroups} is C{YES}, or
when that group leads back (through its members, forwarders followed) to
a group already expanded for this message; otherwise the message is
queued to the member group's address and the Router brings it back here.
A group thus never receives a copy of its own message, so group cycles
cannot loop.  C{RemoveDuplicates} = C{YES} skips members already named in
the To or Cc header.

Lists.  For a post to C{list@domain}:

  1. A message from the null sender is never posted: if it is a delivery
     report it is counted as a bounce (below), else it fails.
  2. A message that already went through this list (its C{X-Loop} or
     C{List-Id} names the list) fails with 554: two lists subscribed to
     each other cannot loop.
  3. The posting policy looks at the posters: the envelope sender, the
     C{From} address, a C{Resent-From} address and the authenticated
     user.  In this order: a moderator (C{Moderators}; the C{Owner} always
     counts) posts; a banned subscriber is refused; a subscriber whose
     posting mode is C{prohibited} is refused; C{unmoderated} and
     C{special} subscribers post (C{special} has a moderator's posting
     right); C{moderateAll} subscribers, and those with a number of posts
     still to hold, are held; then the list's C{PostingMode}: C{anyone}
     posts, C{subscribers} posts only from a subscriber (any mode but
     banned, so C{null} subscribers may post) and refuses others,
     C{moderated} holds everybody else.
     Addresses are all a list can go by, so a forged C{From} naming a
     moderator passes, as with every list manager that does not sign.
  4. Refused: FAILED, C{550 5.7.1} with the reason, so the author gets a
     DSN.  Held: the message, unchanged but for an C{X-List-Held} header,
     goes to the moderators (the owner when there are none); a moderator
     approves it by resending (redirecting) it to the list, which then
     comes from a moderator.  There is no moderation queue on the server.
  5. Posted: one new message to every subscriber whose mode gets posts
     (L{cgpro.directory.lists.RECEIVING}), with C{List-Id},
     C{List-Post}, C{List-Unsubscribe} (a mail to the owner: the server
     does not process unsubscription requests by mail), C{Precedence:
     list} and C{X-Loop} headers (earlier C{List-*}, C{Precedence} and
     C{Return-Path} headers removed), C{Reply-To} set to the list when
     its C{ReplyTo} is C{list}, and the C{SubjectPrefix} put before the
     Subject unless it is there already.

Bounces.  The list's copies are sent with the envelope sender
C{<list>-bounces@<domain>}, C{NOTIFY=FAILURE}, C{RET=HDRS}, and an
C{ORCPT} naming each subscriber, so delivery reports come back to the
list and say which subscriber failed even after forwarding.  The
directory resolves C{<list>-bounces} to the list
(L{cgpro.directory.lists.findList}), so the Router sends those reports to
this channel with the queue C{<list>-bounces@<domain>}; a report to the
list's own address from the null sender is taken the same way.  Each
C{Action: failed} recipient that is a subscriber (matched by
C{Original-Recipient}, else C{Final-Recipient}) adds one to its
C{Bounces}; at the list's C{BounceLimit} it is unsubscribed
(L{cgpro.directory.lists.ListsMixin.recordBounces}).  C{delayed}
recipients are only noted.  Anything else sent to the bounce address
(auto-replies, reports that are not RFC 3464) is dropped.

After a crash.  A job repeated after a restart (C{job.recovered}) whose
copy had been queued just before the crash, but whose outcome had not yet
been journaled, queues the copy again: subscribers may then get a post
twice.  That window is the queue's journal append; nothing is lost.
"""

import email
import email.utils
import re
from email.header import Header, decode_header, make_header

from twisted.internet.defer import maybeDeferred
from twisted.logger import Logger
from zope.interface import implementer

from cgpro.core.envelope import DEFERRED, DELIVERED, FAILED, Envelope, RecipientResult
from cgpro.core.interfaces import IDeliveryChannel
from cgpro.directory.lists import RECEIVING
from cgpro.queue import actions

log = Logger()

#: The envelope sender of a list's mail is C{<list>BOUNCES@<domain>}.
BOUNCES = "-bounces"

#: Header fields a list post loses (replaced by the list's own).
DROPPED = frozenset([
    "list-id", "list-post", "list-unsubscribe", "list-subscribe", "list-help",
    "list-owner", "list-archive", "precedence", "return-path", "x-list-held",
])

#: How many forwarders in a row are followed to find a member group.
FORWARDER_HOPS = 8


def xtext(text):
    """
    @return: C{text} encoded as an RFC 3461 xtext (ORCPT values).
    """
    return "".join(c if "!" <= c <= "~" and c not in "+=" else
                   "".join("+%02X" % b for b in c.encode("utf-8")) for c in text)


def _xtextDecode(text):
    return re.sub(r"\+([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), text)


def _yes(value):
    return str(value or "").strip().upper() in ("YES", "TRUE", "1")


def _addresses(values):
    """
    @return: the lower-case addresses of header values.
    """
    return [a.strip().lower() for _, a in email.utils.getaddresses(values) if "@" in a]


def _reportAddress(value):
    """
    The address of a C{Final-Recipient} / C{Original-Recipient} field
    (C{rfc822; a@b}).
    """
    if not value:
        return None
    kind, sep, address = str(value).partition(";")
    address = (address if sep else kind).strip().strip("<>").lower()
    return address or None


def parseReport(data):
    """
    Read the recipients of an RFC 3464 delivery report.

    @return: C{None} if C{data} is no delivery report, else a C{list} of
        C{(action, candidates)}: the lower-case C{Action} of each recipient
        block and its addresses to match, best first
        (C{Original-Recipient}, xtext-decoded, then C{Final-Recipient}).
    """
    try:
        message = email.message_from_bytes(data)
    except Exception:
        return None
    if message.get_content_type() != "multipart/report":
        return None
    reportType = message.get_param("report-type")
    if reportType is not None and str(reportType).lower() != "delivery-status":
        return None
    parts = message.get_payload()
    if not isinstance(parts, list):
        return None
    found = []
    for part in parts:
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        if not isinstance(blocks, list):
            continue
        for block in blocks[1:]:
            action = str(block.get("Action", "")).strip().lower()
            candidates = []
            original = _reportAddress(block.get("Original-Recipient"))
            if original:
                candidates.append(original)
                decoded = _xtextDecode(original)
                if decoded != original:
                    candidates.append(decoded)
            final = _reportAddress(block.get("Final-Recipient"))
            if final:
                candidates.append(final)
            if action and candidates:
                found.append((action, list(dict.fromkeys(candidates))))
    return found


# -- header editing -----------------------------------------------------------


def _splitMessage(data):
    """
    @return: C{(fields, rest)}: the raw header fields (C{bytes}, folded
        lines kept, line ends included) and everything from the empty line
        on.
    """
    end = data.find(b"\r\n\r\n")
    if end != -1:
        head, rest = data[:end + 2], data[end + 2:]
    else:
        end = data.find(b"\n\n")
        if end != -1:
            head, rest = data[:end + 1], data[end + 1:]
        elif data.startswith((b"\r\n", b"\n")):
            head, rest = b"", data
        else:
            head, rest = data, b""
    fields = []
    for line in head.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            line += b"\r\n"
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line
        else:
            fields.append(line)
    return fields, rest


def _fieldName(field):
    return field.partition(b":")[0].strip().lower().decode("ascii", "replace")


def _text(value):
    return value.encode("utf-8") if value.isascii() else Header(value, "utf-8").encode().encode()


def _prefixSubject(field, prefix):
    """
    @return: the Subject field with C{prefix} before its text, unless the
        (decoded) subject contains it already.
    """
    name, _, value = field.partition(b":")
    raw = value.decode("utf-8", "replace")
    try:
        decoded = str(make_header(decode_header(" ".join(raw.split()))))
    except Exception:
        decoded = raw
    if prefix.lower() in decoded.lower():
        return field
    stripped = value.lstrip(b" \t")
    if not stripped.strip():
        return name + b": " + _text(prefix) + b"\r\n"
    ending = b"" if stripped.endswith(b"\n") else b"\r\n"
    return name + b": " + _text(prefix) + b" " + stripped + ending


def editHeaders(data, drop=(), add=(), subjectPrefix=None):
    """
    Remove header fields, put new ones on top, and prefix the Subject.

    @param drop: lower-case names of fields to remove.
    @param add: C{"Name: value"} lines (C{str}) to put first.
    @param subjectPrefix: text to put before the Subject (a Subject is
        added if there is none), or C{None}.
    @return: the new message bytes; the body is not touched.
    """
    fields, rest = _splitMessage(data)
    kept = []
    sawSubject = False
    for field in fields:
        name = _fieldName(field)
        if name in drop:
            continue
        if name == "subject" and subjectPrefix and not sawSubject:
            sawSubject = True
            field = _prefixSubject(field, subjectPrefix)
        kept.append(field)
    top = [line.encode("utf-8") + b"\r\n" for line in add]
    if subjectPrefix and not sawSubject:
        top.append(b"Subject: " + _text(subjectPrefix) + b"\r\n")
    if not rest:
        rest = b"\r\n"
    return b"".join(top) + b"".join(kept) + rest


def _listId(listAddress, realName):
    name, _, domain = listAddress.partition("@")
    label = "<%s.%s>" % (name, domain)
    if not realName:
        return label
    if realName.isascii():
        return '"%s" %s' % (realName.replace("\\", "\\\\").replace('"', '\\"'), label)
    return "%s %s" % (Header(realName, "utf-8").encode(), label)


@implementer(IDeliveryChannel)
class ListChannel:
    """
    Expands groups and distributes mailing-list posts (module C{LIST}).

    @ivar directory: the L{cgpro.directory.local.Directory} (groups via
        C{findObject}; lists via its L{cgpro.directory.lists.ListsMixin}).
    @ivar queue: the L{cgpro.core.interfaces.IMessageQueue} taking the
        copies.
    @ivar stats: counters: C{posted}, C{held}, C{refused}, C{expanded},
        C{reports} (delivery reports read), C{unsubscribed} (by bounces).
    """

    name = "LIST"

    def __init__(self, directory, queue, clock=None):
        """
        @param directory: the server's directory.
        @param queue: the queue the copies go to.
        @param clock: the reactor by default (kept for timed work such as
            digests; the channel itself sets no timers).
        """
        if clock is None:
            from twisted.internet import reactor as clock
        self.directory = directory
        self.queue = queue
        self.clock = clock
        self.stats = dict.fromkeys(
            ("posted", "held", "refused", "expanded", "reports", "unsubscribed"), 0)

    # -- IDeliveryChannel -----------------------------------------------------------

    def deliver(self, job):
        """
        Handle one message for one group or list (see the module).

        @return: L{Deferred} firing with one L{RecipientResult} per
            recipient of the job.
        """
        return maybeDeferred(self._deliver, job)

    def _deliver(self, job):
        resolved = self.directory.resolveListAddress(job.queue)
        if resolved is None:
            found = self.directory.findObject(job.queue)
            if found is not None and found[0] == "group":
                return self._group(job, found[1], found[2] or {})
            return self._all(job, FAILED, 550, "5.1.1 no such mailing list or group")
        role, listAddress = resolved
        data = job.readMessage()
        if role == "bounces":
            return self._bounceAddress(job, listAddress, data)
        return self._post(job, listAddress, data)

    # -- helpers ----------------------------------------------------------------------

    @staticmethod
    def _all(job, status, code, text):
        return [RecipientResult(r.index, status, code, text) for r, _ in job.recipients]

    def _submit(self, job, envelope, data, doneText):
        """
        Queue a new message; the job's recipients are DELIVERED with
        C{doneText} once it is durable, DEFERRED if it cannot be queued.
        """
        submit = getattr(self.queue, "submitGenerated", None) or self.queue.submit
        d = maybeDeferred(submit, envelope, data)

        def queued(messageId):
            log.info("LIST {queue}: message {id} -> {n} recipient(s) as {new}",
                     queue=job.queue, id=job.messageId, n=len(envelope.recipients),
                     new=messageId)
            return self._all(job, DELIVERED, 250, doneText)

        def failed(failure):
            log.failure("LIST {queue}: cannot queue the copies of message {id}", failure,
                        queue=job.queue, id=job.messageId)
            return self._all(job, DEFERRED, 451, "4.3.0 cannot queue the copies now")

        d.addCallbacks(queued, failed)
        return d

    def _generated(self, sender, recipients, ret=None, envid=None, notify=None, orcpt=False):
        envelope = Envelope(sender=sender, protocol="LOCAL", trusted=True, ret=ret, envid=envid)
        for address in recipients:
            envelope.addRecipient(address, notify=notify,
                                  orcpt="rfc822;" + xtext(address) if orcpt else None)
        return envelope

    # -- groups -----------------------------------------------------------------------

    def _groupOf(self, address):
        """
        @return: C{(canonical, settings)} if C{address} leads to a group
            (through forwarders), else C{None}.
        """
        for _ in range(FORWARDER_HOPS):
            found = self.directory.findObject(address)
            if found is None:
                return None
            kind, canonical, value = found
            if kind == "group":
                return canonical, value or {}
            if kind != "forwarder" or not isinstance(value, str) or not value.strip():
                return None
            target = value.strip()
            address = target if "@" in target else "%s@%s" % (target, canonical.partition("@")[2])
        return None

    def _memberAddresses(self, groupAddress, settings):
        domain = groupAddress.partition("@")[2]
        members = settings.get("Members") or []
        for member in members if isinstance(members, list) else ():
            member = str(member).strip()
            if member:
                yield member if "@" in member else "%s@%s" % (member, domain)

    def _reaches(self, start, targets):
        """
        Whether group C{start} leads, through member groups, to one of
        C{targets}.
        """
        seen = {start[0]}
        todo = [start]
        while todo:
            address, settings = todo.pop()
            for member in self._memberAddresses(address, settings):
                group = self._groupOf(member)
                if group is None or group[0] in seen:
                    continue
                if group[0] in targets:
                    return True
                seen.add(group[0])
                todo.append(group)
        return False

    def expandGroup(self, groupAddress, settings):
        """
        The addresses a group's message goes to (see the module).

        @return: a C{list} of addresses, without duplicates (any case).
        """
        expandAll = _yes(settings.get("ExpandGroups"))
        visited = {groupAddress}
        result = []
        seen = set()

        def walk(address, groupSettings):
            for member in self._memberAddresses(address, groupSettings):
                group = self._groupOf(member)
                if group is not None:
                    if group[0] in visited:
                        continue
                    if expandAll or self._reaches(group, visited):
                        visited.add(group[0])
                        walk(*group)
                        continue
                key = member.lower()
                if key not in seen:
                    seen.add(key)
                    result.append(member)

        walk(groupAddress, settings)
        return result

    def _group(self, job, groupAddress, settings):
        data = job.readMessage()
        members = self.expandGroup(groupAddress, settings)
        if _yes(settings.get("RemoveDuplicates")):
            fields = actions.headerFields(data)
            named = set(_addresses([v for k, v in fields if k in ("to", "cc")]))
            members = [m for m in members if m.lower() not in named]
        if not members:
            return self._all(job, DELIVERED, 250, "2.0.0 group has no members to send to")
        if _yes(settings.get("SetReplyTo")):
            data = editHeaders(data, drop=("reply-to",), add=["Reply-To: <%s>" % groupAddress])
        notify = job.recipients[0][0].notify if job.recipients else None
        envelope = self._generated(job.envelope.sender, members, ret=job.envelope.ret,
                                   envid=job.envelope.envid, notify=notify)
        self.stats["expanded"] += 1
        return self._submit(job, envelope, data,
                            "2.0.0 expanded to %d member(s) of %s" % (len(members), groupAddress))

    # -- lists: posting ---------------------------------------------------------------

    def _post(self, job, listAddress, data):
        envelope = job.envelope
        if not envelope.sender:
            if parseReport(data) is not None:
                return self._bounces(job, listAddress, data)
            return self._refuse(job, listAddress,
                                "mail from the null sender is not posted to %s" % (listAddress,))
        fields = actions.headerFields(data)
        if self._looped(listAddress, fields):
            self.stats["refused"] += 1
            return self._all(job, FAILED, 554, "5.4.6 mailing list loop: the message already "
                                               "went through %s" % (listAddress,))
        settings = self.directory.getList(listAddress)
        subscribers = self.directory.subscribersOf(listAddress)
        decision, reason, poster = self.policy(listAddress, settings, subscribers,
                                               self.posters(envelope, fields))
        if decision == "refuse":
            return self._refuse(job, listAddress, reason)
        if decision == "hold":
            return self._hold(job, listAddress, settings, subscribers, data, poster)
        return self._distribute(job, listAddress, settings, subscribers, data)

    def _refuse(self, job, listAddress, reason):
        self.stats["refused"] += 1
        log.info("LIST {list}: message {id} refused: {reason}", list=listAddress,
                 id=job.messageId, reason=reason)
        return self._all(job, FAILED, 550, "5.7.1 " + reason)

    @staticmethod
    def _looped(listAddress, fields):
        name, _, domain = listAddress.partition("@")
        listId = "<%s.%s>" % (name, domain)
        for key, value in fields:
            if key == "x-loop" and value.strip().strip("<>").lower() == listAddress:
                return True
            if key == "list-id" and listId in value.lower():
                return True
        return False

    @staticmethod
    def posters(envelope, fields):
        """
        @return: the addresses a post is from, lower case, without
            duplicates: envelope sender, From, Resent-From, authenticated
            user.
        """
        found = [envelope.sender.strip().strip("<>").lower()]
        for name in ("from", "resent-from"):
            values = [v for k, v in fields if k == name]
            found.extend(_addresses(values[:1]))
        if envelope.authUser:
            found.append(envelope.authUser.lower())
        result = []
        for address in found:
            if address and address not in result:
                result.append(address)
        return result

    @staticmethod
    def moderators(listAddress, settings):
        """
        @return: the list's moderators (bare names qualified with the
            list's domain), the owner last; the owner alone when there are
            none.
        """
        domain = listAddress.partition("@")[2]
        result = []
        for moderator in settings.get("Moderators") or []:
            moderator = str(moderator).strip().lower()
            if moderator:
                address = moderator if "@" in moderator else "%s@%s" % (moderator, domain)
                if address not in result:
                    result.append(address)
        owner = settings.get("Owner")
        if owner:
            owner = "%s@%s" % (str(owner).lower(), domain)
            if owner not in result:
                result.append(owner)
        return result

    def policy(self, listAddress, settings, subscribers, posters):
        """
        Decide what happens to a post (see the module, step 3).

        @return: C{(decision, reason, poster)}: C{"post"}, C{"hold"} or
            C{"refuse"}; the refusal's reason; the subscriber whose number
            of posts to hold is to be counted down, or C{None}.
        """
        moderators = set(self.moderators(listAddress, settings))
        if any(p in moderators for p in posters):
            return "post", None, None
        entries = [(p, subscribers[p]) for p in posters if p in subscribers]
        for poster, entry in entries:
            if entry.get("Mode") == "banned":
                return "refuse", "%s is banned from %s" % (poster, listAddress), None
        for poster, entry in entries:
            if entry.get("Posting") == "prohibited":
                return "refuse", "%s may not post to %s" % (poster, listAddress), None
        for poster, entry in entries:
            if entry.get("Posting") in ("unmoderated", "special"):
                return "post", None, None
        for poster, entry in entries:
            posting = entry.get("Posting")
            if posting == "moderateAll":
                return "hold", None, None
            if isinstance(posting, int) and not isinstance(posting, bool) and posting > 0:
                return "hold", None, poster
        mode = str(settings.get("PostingMode", "anyone")).lower()
        if mode == "subscribers" and not entries:
            return "refuse", "only subscribers may post to %s" % (listAddress,), None
        if mode == "moderated":
            return "hold", None, None
        return "post", None, None

    def _bouncesAddress(self, listAddress):
        name, _, domain = listAddress.partition("@")
        return "%s%s@%s" % (name, BOUNCES, domain)

    def _hold(self, job, listAddress, settings, subscribers, data, poster):
        moderators = self.moderators(listAddress, settings)
        if not moderators:
            return self._refuse(job, listAddress, "%s is moderated and has no moderators"
                                % (listAddress,))
        held = editHeaders(data, drop=("x-list-held",),
                           add=["X-List-Held: %s; resend to the list to approve" % (listAddress,)])
        envelope = self._generated(self._bouncesAddress(listAddress), moderators)
        self.stats["held"] += 1
        d = self._submit(job, envelope, held, "2.0.0 held for the moderators of %s"
                         % (listAddress,))
        if poster is not None:
            def countDown(results):
                if results and results[0].status == DELIVERED:
                    counted = self.directory.notePostHeld(listAddress, poster)
                    counted.addErrback(lambda f: log.failure(
                        "LIST {list}: cannot count down the held posts of {poster}", f,
                        list=listAddress, poster=poster))
                return results

            d.addCallback(countDown)
        return d

    def decorate(self, listAddress, settings, data):
        """
        @return: the message as the list sends it (see the module, step 5).
        """
        domain = listAddress.partition("@")[2]
        drop = set(DROPPED)
        add = [
            "List-Id: %s" % (_listId(listAddress, settings.get("RealName")),),
            "List-Post: <mailto:%s>" % (listAddress,),
        ]
        owner = settings.get("Owner")
        if owner:
            add.append("List-Unsubscribe: <mailto:%s@%s?subject=unsubscribe%%20%s>"
                       % (str(owner).lower(), domain, listAddress))
        add.append("Precedence: list")
        add.append("X-Loop: %s" % (listAddress,))
        if str(settings.get("ReplyTo", "sender")).lower() == "list":
            drop.add("reply-to")
            add.append("Reply-To: <%s>" % (listAddress,))
        prefix = settings.get("SubjectPrefix") or None
        return editHeaders(data, drop=drop, add=add, subjectPrefix=prefix)

    def _distribute(self, job, listAddress, settings, subscribers, data):
        bounces = self._bouncesAddress(listAddress)
        recipients = sorted(a for a, e in subscribers.items()
                            if e.get("Mode") in RECEIVING and a not in (listAddress, bounces))
        if not recipients:
            return self._all(job, DELIVERED, 250, "2.0.0 %s has no subscribers" % (listAddress,))
        envelope = self._generated(bounces, recipients, ret="HDRS", notify=("FAILURE",),
                                   orcpt=True)
        self.stats["posted"] += 1
        return self._submit(job, envelope, self.decorate(listAddress, settings, data),
                            "2.0.0 posted to %s (%d subscribers)" % (listAddress, len(recipients)))

    # -- lists: bounces ---------------------------------------------------------------

    def _bounceAddress(self, job, listAddress, data):
        if parseReport(data) is None:
            return self._all(job, DELIVERED, 250,
                             "2.0.0 discarded: not a delivery report")
        return self._bounces(job, listAddress, data)

    def _bounces(self, job, listAddress, data):
        """
        Count the failed subscribers of a delivery report.
        """
        report = parseReport(data) or []
        subscribers = self.directory.subscribersOf(listAddress)
        failed, delayed = [], []
        for action, candidates in report:
            match = next((c for c in candidates if c in subscribers), None)
            if match is None:
                continue
            if action == "failed":
                failed.append(match)
            elif action == "delayed":
                delayed.append(match)
        self.stats["reports"] += 1
        done = self._all(job, DELIVERED, 250,
                         "2.0.0 delivery report processed for %s" % (listAddress,))
        if not failed and not delayed:
            return done
        d = self.directory.recordBounces(listAddress, failed, fatal=True) if failed \
            else maybeDeferred(list)

        def noted(removed):
            if removed:
                self.stats["unsubscribed"] += len(removed)
                log.info("LIST {list}: unsubscribed after too many bounces: {who}",
                         list=listAddress, who=", ".join(removed))
            if delayed:
                return self.directory.recordBounces(listAddress, delayed, fatal=False)

        d.addCallback(noted)
        d.addCallback(lambda _: done)
        return d
