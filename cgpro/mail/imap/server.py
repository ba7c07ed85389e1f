# -*- test-case-name: tests.mail.imap.test_server -*-
"""
One IMAP session: framing, the three states, dispatch, untagged updates
and IDLE.

States (RFC 3501 3): C{unauth} until LOGIN/AUTHENTICATE, C{auth}, and
C{selected} once a mailbox is selected.  Each command is listed once in
L{COMMANDS} with the states it is valid in; a command in the wrong state
gets C{BAD}.  Commands run one at a time: while one waits for the store
(every change is acknowledged only once durable), later pipelined commands
stay buffered, and reading pauses if the buffer grows past the limits.

The selected mailbox is the store's shared L{cgpro.store.mailbox.Mailbox};
the session keeps its own copy of the UIDs (L{IMAPServer.view}) because
sequence numbers may only change when the client is told (EXPUNGE
responses).  Changes by other sessions and deliveries arrive through the
mailbox's listener and are reported before the next tagged reply, or at
once while the client IDLEs.
"""

from bisect import bisect_left, bisect_right

from twisted.internet import defer, protocol
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin

from cgpro.mail.imap import parser
from cgpro.mail.imap.commands.acl import AclCommands
from cgpro.mail.imap.commands.auth import AuthCommands
from cgpro.mail.imap.commands.fetch import FetchCommands
from cgpro.mail.imap.commands.mailbox import MailboxCommands
from cgpro.mail.imap.commands.message import MessageCommands
from cgpro.mail.imap.commands.search import SearchCommands
from cgpro.mail.imap.errors import IMAPError, responseFor
from cgpro.mail.imap.parser import ParseError

log = Logger()

UNAUTH, AUTH, SELECTED, LOGOUT = "unauth", "auth", "selected", "logout"
_ANY = (UNAUTH, AUTH, SELECTED)
_AUTHED = (AUTH, SELECTED)

#: Command name -> states it is valid in.
COMMANDS = {
    "CAPABILITY": _ANY, "NOOP": _ANY, "LOGOUT": _ANY, "ID": _ANY,
    "STARTTLS": (UNAUTH,), "LOGIN": (UNAUTH,), "AUTHENTICATE": (UNAUTH,),
    "ENABLE": _AUTHED, "NAMESPACE": _AUTHED, "SELECT": _AUTHED, "EXAMINE": _AUTHED,
    "CREATE": _AUTHED, "DELETE": _AUTHED, "RENAME": _AUTHED, "SUBSCRIBE": _AUTHED,
    "UNSUBSCRIBE": _AUTHED, "LIST": _AUTHED, "LSUB": _AUTHED, "STATUS": _AUTHED,
    "APPEND": _AUTHED, "IDLE": _AUTHED,
    "GETQUOTA": _AUTHED, "GETQUOTAROOT": _AUTHED, "SETQUOTA": _AUTHED,
    "GETACL": _AUTHED, "SETACL": _AUTHED, "DELETEACL": _AUTHED, "LISTRIGHTS": _AUTHED,
    "MYRIGHTS": _AUTHED,
    "CHECK": (SELECTED,), "CLOSE": (SELECTED,), "UNSELECT": (SELECTED,),
    "EXPUNGE": (SELECTED,), "SEARCH": (SELECTED,), "FETCH": (SELECTED,),
    "STORE": (SELECTED,), "COPY": (SELECTED,), "MOVE": (SELECTED,), "UID": (SELECTED,),
}

#: Commands during which EXPUNGE responses may not be sent (RFC 3501 7.4.1).
_NO_EXPUNGE = frozenset(["FETCH", "STORE", "SEARCH"])


class IMAPServer(AuthCommands, MailboxCommands, FetchCommands, SearchCommands,
                 MessageCommands, AclCommands, protocol.Protocol, TimeoutMixin):
    """
    One IMAP session.

    @ivar state: L{UNAUTH}, L{AUTH}, L{SELECTED} or L{LOGOUT}.
    @ivar user: the logged-in account (C{name@domain}) or C{None}.
    @ivar secure: whether the connection is under TLS.
    @ivar mailbox: the selected shared L{Mailbox}, or C{None}.
    @ivar location: the selected mailbox's L{Location}.
    @ivar readOnly: EXAMINE, or no right to change it.
    @ivar view: the UIDs as this client knows them (sequence number - 1
        is the row).
    @ivar recentFrom: UIDs from this one on are C{\\Recent} here.
    @ivar enabled: extensions turned on by ENABLE.
    """

    def __init__(self, factory):
        self.factory = factory
        self.context = factory.context
        self.clock = factory.clock
        self.callLater = self.clock.callLater
        self.settings = None
        self.state = UNAUTH
        self.user = None
        self.secure = factory.implicitTLS
        self.clientAddress = ""
        self.mailbox = None
        self.location = None
        self.readOnly = True
        self.view = None
        self.recentFrom = None
        self.enabled = set()
        self.framer = None
        self._busy = False
        self._looping = False
        self._closed = False
        self._paused = False
        self._lineWaiter = None
        self._idling = None
        self._flushCall = None
        self._resetUpdates()

    # -- connection -----------------------------------------------------------

    def connectionMade(self):
        self.factory.figures.opened()
        self.settings = self.factory.settings()
        self.clientAddress = getattr(self.transport.getPeer(), "host", "") or ""
        self.framer = parser.Framer(self._literalLimit, maxLine=self.settings.maxLine)
        self.factory.sessions += 1
        self.setTimeout(self.settings.loginTimeout or self.settings.idleTimeout or None)
        self.untagged("OK [CAPABILITY %s] %s CommuniGate Pro IMAP Server %s ready" % (
            " ".join(self.capabilities()), self.factory.hostname(), self.context.version))

    def connectionLost(self, reason=protocol.connectionDone):
        self.factory.figures.closed()
        self._closed = True
        self.setTimeout(None)
        self._lineWaiter = None
        self._idling = None
        if self._flushCall is not None and self._flushCall.active():
            self._flushCall.cancel()
        self.closeMailbox()

    def timeoutConnection(self):
        self.factory.figures.error("timeout")
        self.untagged("BYE autologout; idle for too long")
        self._close()

    def _close(self):
        self._closed = True
        self.setTimeout(None)
        if self.transport is not None:
            self.transport.loseConnection()

    def _literalLimit(self, firstLine):
        words = bytes(firstLine).split(b" ", 3)
        if len(words) > 1 and words[1].upper() == b"APPEND":
            return self.settings.maxLiteral
        return self.settings.maxSmallLiteral

    # -- output -----------------------------------------------------------------

    def send(self, data):
        if self.transport is not None and not self._closed:
            self.transport.write(data)

    def untagged(self, text):
        if isinstance(text, str):
            text = text.encode("utf-8", "surrogateescape")
        self.send(b"* " + text + b"\r\n")

    def tagged(self, tag, status, text):
        self.send(("%s %s %s\r\n" % (tag, status, text)).encode("utf-8", "surrogateescape"))

    def continuation(self, text=""):
        self.send(("+ %s\r\n" % (text,)).encode("ascii"))

    # -- input -------------------------------------------------------------------

    def dataReceived(self, data):
        if self._closed:
            return
        self.resetTimeout()
        self.framer.feed(data)
        self._process()

    def _process(self):
        if self._looping:
            return
        self._looping = True
        try:
            while not self._closed and (not self._busy or self._lineWaiter is not None):
                event = self.framer.poll()
                if event is None:
                    break
                kind, value = event
                if kind == "continue":
                    self.continuation("OK")
                elif kind == "reject":
                    tag, text = value
                    self.factory.figures.error("protocol")
                    self.tagged(tag, "NO" if text.startswith("[TOOBIG]") else "BAD", text)
                elif kind == "line":
                    waiter, self._lineWaiter = self._lineWaiter, None
                    if waiter is not None:
                        waiter(value)
                else:
                    self._command(value)
        finally:
            self._looping = False
        self._flowControl()

    def _flowControl(self):
        tooMuch = self.framer.buffered > self.settings.maxLine + self.settings.maxLiteral
        if self._busy and tooMuch and not self._paused:
            self._paused = True
            self.transport.pauseProducing()
        elif self._paused and (not self._busy or not tooMuch):
            self._paused = False
            self.transport.resumeProducing()

    def waitLine(self, callback):
        """
        Hand the next raw line to C{callback} (AUTHENTICATE, IDLE).
        """
        self._lineWaiter = callback
        self.framer.lineMode = True

    def _command(self, data):
        try:
            tag, name, args = parser.splitCommand(data)
        except ParseError as e:
            tag = data.split(b" ", 1)[0][:64].decode("ascii", "replace") or "*"
            if parser._TAG_BAD.search(tag.encode("utf-8")):
                tag = "*"
            self.factory.figures.error("protocol")
            self.tagged(tag, "BAD", str(e))
            return
        states = COMMANDS.get(name)
        if states is None or self.state not in states:
            self.factory.figures.error("protocol")
            if states is None:
                self.tagged(tag, "BAD", "unknown command")
            else:
                self.tagged(tag, "BAD", "%s not valid in this state" % (name,))
            return
        handler = getattr(self, "cmd_" + name)
        self._busy = True
        d = defer.maybeDeferred(handler, tag, args)
        d.addCallbacks(self._done, self._failed, callbackArgs=(tag, name, args),
                       errbackArgs=(tag, name))
        d.addErrback(self._internalError, tag)

    def _done(self, text, tag, name, args):
        if self._closed:
            return
        if self.state == LOGOUT:
            self.tagged(tag, "OK", text or "LOGOUT completed")
            self._close()
            return
        uidCommand = name == "UID"
        if uidCommand and args and isinstance(args[0], parser.Atom):
            name = "UID " + args[0].upper()
        self.flushUpdates(expunges=uidCommand or name not in _NO_EXPUNGE)
        self.tagged(tag, "OK", text or "%s completed" % (name,))
        self._resume()

    def _failed(self, failure, tag, name):
        if self._closed:
            return
        status, text = responseFor(failure)
        if status is None:
            log.failure("IMAP {client}: {name} failed", failure, client=self.clientAddress,
                        name=name)
            status, text = "NO", "[SERVERBUG] internal error"
            self.factory.figures.error("internal")
        if self.state == SELECTED and name not in _NO_EXPUNGE:
            self.flushUpdates(expunges=True)
        self.tagged(tag, status, text)
        self._resume()

    def _internalError(self, failure, tag):
        log.failure("IMAP {client}: reply failed", failure, client=self.clientAddress)
        self.factory.figures.error("internal")
        self._resume()

    def _resume(self):
        self._busy = False
        if not self._closed:
            self._process()

    # -- capabilities -------------------------------------------------------------

    def cleartextAllowed(self):
        return self.secure or self.settings.allowCleartext

    def capabilities(self):
        caps = ["IMAP4rev1", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE", "NAMESPACE",
                "UIDPLUS", "MOVE", "UNSELECT", "CHILDREN", "SPECIAL-USE", "QUOTA", "ACL",
                "RIGHTS=texk", "CONDSTORE", "QRESYNC"]
        if self.state == UNAUTH:
            if not self.secure and self.factory.tlsOptions is not None:
                caps.append("STARTTLS")
            if self.cleartextAllowed():
                caps.append("AUTH=PLAIN")
            else:
                caps.append("LOGINDISABLED")
        return caps

    # -- the selected mailbox ------------------------------------------------------

    def _resetUpdates(self):
        self._expunged = set()
        self._flagged = set()
        self._added = False
        self._gone = False

    def selectMailbox(self, mailbox, location, readOnly):
        """
        Make C{mailbox} (opened for this session) the selected one.
        """
        self.closeMailbox()
        self.mailbox = mailbox
        self.location = location
        self.readOnly = readOnly
        self.view = mailbox.uids[:]
        self.recentFrom = mailbox.recentUid if readOnly else mailbox.claimRecent()
        self._resetUpdates()
        mailbox.addListener(self._mailboxChanged)
        self.state = SELECTED

    def closeMailbox(self):
        mailbox, self.mailbox = self.mailbox, None
        if mailbox is not None:
            mailbox.removeListener(self._mailboxChanged)
            mailbox.close()
        self.view = None
        self.location = None
        self._resetUpdates()
        if self.state == SELECTED:
            self.state = AUTH

    def _mailboxChanged(self, event):
        kind = event.kind
        if kind == "expunged":
            self._expunged.update(event.uids)
        elif kind == "added":
            self._added = True
        elif kind == "flags":
            if event.origin is not self:
                self._flagged.update(event.uids)
        elif kind == "deleted":
            self._gone = True
        if self._idling is not None and (self._flushCall is None or not self._flushCall.active()):
            self._flushCall = self.callLater(0, self._idleFlush)

    def _idleFlush(self):
        if self._idling is not None and not self._closed:
            self.flushUpdates(expunges=True)

    def flushUpdates(self, expunges=True):
        """
        Tell the client what changed in the selected mailbox: EXPUNGE (when
        allowed), EXISTS/RECENT for new messages, FETCH FLAGS for flags
        changed elsewhere.
        """
        mailbox = self.mailbox
        if mailbox is None:
            return
        if self._gone:
            self.untagged("BYE the selected mailbox was deleted")
            self.closeMailbox()
            self._close()
            return
        view = self.view
        out = [self.keywordUpdate()]
        if expunges and self._expunged:
            gone = []
            for uid in sorted(self._expunged):
                i = bisect_left(view, uid)
                if i < len(view) and view[i] == uid:
                    del view[i]
                    gone.append(uid)
                    out.append(b"* %d EXPUNGE\r\n" % (i + 1))
            self._expunged = set()
            if gone and "QRESYNC" in self.enabled:
                # RFC 7162 3.2.10: VANISHED replaces EXPUNGE.
                out = [b"* VANISHED %s\r\n" % parser.formatSequenceSet(gone).encode("ascii")]
        if self._added:
            self._added = False
            last = view[-1] if view else 0
            new = mailbox.uidsBetween(last + 1, 0xFFFFFFFF)
            if len(new):
                view.extend(new)
                if not self.readOnly and self.recentFrom is not None:
                    first = mailbox.claimRecent()
                    self.recentFrom = min(self.recentFrom, first) if self.recentFrom <= last \
                        else first
                out.append(b"* %d EXISTS\r\n* %d RECENT\r\n" % (len(view), self.recentCount()))
        if self._flagged:
            flagged, self._flagged = sorted(self._flagged), set()
            for uid in flagged:
                i = bisect_left(view, uid)
                if i >= len(view) or view[i] != uid or uid in self._expunged:
                    continue
                try:
                    flags = self.flagsOf(uid)
                except Exception:
                    continue
                out.append(b"* %d FETCH (UID %d FLAGS (%s)%s)\r\n" % (
                    i + 1, uid, flags.encode("utf-8"), self.modseqItem(uid)))
        if any(out):
            self.send(b"".join(out))

    @property
    def condstore(self):
        return "CONDSTORE" in self.enabled

    def modseqItem(self, uid):
        """
        @return: C{b" MODSEQ (n)"} once CONDSTORE is on (RFC 7162 3.1.4.1:
            every FETCH with FLAGS then carries MODSEQ), else C{b""}.
        """
        if "CONDSTORE" not in self.enabled:
            return b""
        try:
            return b" MODSEQ (%d)" % self.mailbox.modseq(uid)
        except Exception:
            return b""

    def keywordUpdate(self):
        mb = self.mailbox
        if mb is None:
            return b""
        keywords = tuple(mb.keywords)
        if getattr(self, "_announced", None) == (mb, keywords):
            return b""
        self._announced = (mb, keywords)
        flags = "\\Answered \\Flagged \\Deleted \\Seen \\Draft" + (
            " " + " ".join(keywords) if keywords else "")
        return ("* FLAGS (%s)\r\n* OK [PERMANENTFLAGS (%s)] flags permitted\r\n" % (
            flags, "" if self.readOnly else flags + " \\*")).encode("utf-8")

    def recentCount(self):
        view = self.view
        return len(view) - bisect_left(view, self.recentFrom) if view else 0

    def flagsOf(self, uid):
        """
        @return: the flags of a message as FLAGS shows them (C{str}).
        """
        flags = list(self.mailbox.flags(uid))
        if uid >= self.recentFrom:
            flags.append("\\Recent")
        return " ".join(flags)

    def rows(self, token, uid):
        """
        Resolve a sequence set against the view.

        @return: sorted rows (sequence number minus one).
        @raise IMAPError: BAD for sequence numbers beyond the mailbox.
        """
        ranges = parser.parseSequenceSet(token)
        view = self.view
        rows = set()
        if uid:
            top = view[-1] if view else 0
            for low, high in parser.resolveSet(ranges, top):
                rows.update(range(bisect_left(view, low), bisect_right(view, high)))
        else:
            top = len(view)
            for low, high in ranges:
                for v in (low, high):
                    if v is not None and v > top:
                        raise IMAPError("BAD", "invalid message sequence number")
            for low, high in parser.resolveSet(ranges, top):
                if low >= 1:
                    rows.update(range(low - 1, high))
        return sorted(rows)

    # -- IDLE (RFC 2177) ----------------------------------------------------------------

    def cmd_IDLE(self, tag, args):
        if args:
            raise ParseError("IDLE takes no arguments")
        d = defer.Deferred()
        self._idling = d
        self.flushUpdates(expunges=True)
        self.continuation("idling")

        def line(value):
            self._idling = None
            if value is None or value.strip().upper() != b"DONE":
                d.errback(IMAPError("BAD", "expected DONE"))
            else:
                d.callback("IDLE terminated")

        self.waitLine(line)
        return d
