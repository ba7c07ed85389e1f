# -*- test-case-name: tests.sip.test_location -*-
"""
The location service (RFC 3261 section 10, Kamailio's usrloc): the
bindings of each address-of-record to the contacts it can be reached at.

Bindings live in memory, one small L{Binding} (with C{__slots__}) each,
grouped by AOR.  Every change is appended as one line to a journal
through L{cgpro.core.files.DurableWriter}, and L{LocationService.update}
fires only once that line is durable, so a 200 OK to a REGISTER is never
sent for a binding a crash could forget.  When the journal has grown past
the live bindings (and at least C{compactAfter} lines), a snapshot of the
live bindings replaces it.  Every line carries a sequence number and the
snapshot records the last one it includes, so replay skips what the
snapshot already holds, whatever order the writer's rounds took.

Expiry runs on a L{cgpro.sip.timers.TimerWheel} (one timer per binding,
moved only when a refresh shortens it), never as a sweep over the table;
expiries are not journaled, because a binding past its absolute expiry
time is dropped at load anyway.
"""

import json
import os

from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger

from cgpro.sip.address import Peer
from cgpro.sip.timers import TimerWheel
from cgpro.sip.uri import SIPParseError, parseURI

log = Logger()

JOURNAL = "Location.journal"
SNAPSHOT = "Location.data"

_EMPTY = ()

# One encoder, made once: json.dumps with options builds one per call.
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class LocationError(Exception):
    """
    An update the location service refuses.

    @ivar code: the SIP status code the registrar should answer with.
    @ivar reason: the reason phrase.
    """

    def __init__(self, code, reason):
        Exception.__init__(self, code, reason)
        self.code = code
        self.reason = reason


def contactKey(contact):
    """
    The key that tells whether two Contact URIs are the same binding: the
    parsed URI written back with a lower-case host (enough of RFC 3261
    section 19.1.4 for phones, which repeat their Contact verbatim).
    """
    if "%" not in contact:
        # the usual case: a phone's Contact with its host in lower case is
        # already its key; only the host is looked at (not the whole string,
        # so "transport=UDP" does not force a parse)
        at = contact.find("@")
        start = at + 1 if at >= 0 else contact.find(":") + 1
        end = start
        length = len(contact)
        while end < length and contact[end] not in ":;?>":
            end += 1
        host = contact[start:end]
        if host and host == host.lower() and "[" not in host:
            return contact
    try:
        uri = parseURI(contact)
    except SIPParseError:
        return contact
    host = getattr(uri, "host", None)
    if host and host != host.lower():
        uri.host = host.lower()
    key = str(uri)
    return contact if key == contact else key


def _instanceKey(instance, regId):
    """
    RFC 5626 section 6: with C{+sip.instance} a binding is the instance's
    flow C{reg-id}, whatever its Contact URI.
    """
    return "\x00%s\x00%s" % (instance, "" if regId is None else regId)


class Binding:
    """
    One contact bound to an AOR.

    @ivar aor: the canonical C{name@domain}.
    @ivar contact: the Contact URI, as text.
    @ivar expires: when the binding ends (absolute reactor time).
    @ivar q: the preference, 0.0 to 1.0.
    @ivar callId: the Call-ID of the REGISTER that made or refreshed it.
    @ivar cseq: that REGISTER's CSeq number.
    @ivar source: the L{Peer} that REGISTER came from: the flow to send
        requests over when the UA is behind NAT (RFC 5626).
    @ivar path: the Path header values (RFC 3327), a L{tuple} of L{str}.
    @ivar instance: the C{+sip.instance} value (quotes removed), or
        L{None}.
    @ivar regId: the C{reg-id} as an L{int}, or L{None}.
    @ivar userAgent: the User-Agent header, or L{None}.
    @ivar key: what RFC 3261 section 10.3 step 7 matches a new Contact
        against (see L{contactKey}; the instance and reg-id for RFC 5626
        flows).
    @ivar timer: the expiry L{cgpro.sip.timers.Timer}, or L{None}.
    """

    __slots__ = ("aor", "contact", "expires", "q", "callId", "cseq", "source",
                 "path", "instance", "regId", "userAgent", "key", "timer")

    def __init__(self, aor, contact, expires, q=1.0, callId=None, cseq=0,
                 source=None, path=_EMPTY, instance=None, regId=None,
                 userAgent=None, key=None):
        self.aor = aor
        self.contact = contact
        self.expires = expires
        self.q = q
        self.callId = callId
        self.cseq = cseq
        self.source = source
        self.path = tuple(path) if path else _EMPTY
        self.instance = instance
        self.regId = regId
        self.userAgent = userAgent
        if key is None:
            key = (_instanceKey(instance, regId) if instance
                   else contactKey(contact))
        self.key = key
        self.timer = None

    @property
    def received(self):
        """
        The source as a URI, C{sip:host:port;transport=x} (what Kamailio
        calls C{received}), or L{None}.  Computed, not stored: it costs
        no memory per binding.
        """
        if self.source is None:
            return None
        return "sip:%s;transport=%s" % (self.source.hostport(),
                                        self.source.transport.lower())

    def __repr__(self):
        return "<Binding %s -> %s q=%s>" % (self.aor, self.contact, self.q)


class _Interner:
    """
    A bounded table of shared strings: thousands of bindings from one
    phone model or one NAT address then hold one string, not thousands.
    """

    def __init__(self, limit=10000):
        self._table = {}
        self._limit = limit

    def __call__(self, text):
        if text is None:
            return None
        shared = self._table.get(text)
        if shared is None:
            if len(self._table) >= self._limit:
                return text
            shared = self._table[text] = text
        return shared


class LocationService:
    """
    The bindings of every local AOR, kept durable in one folder.

    @ivar maxPerAOR: the most bindings one AOR may have.
    @ivar compactAfter: the least journal lines before a compaction.
    @ivar compactChunk: AORs serialized per reactor turn while compacting.
    @ivar compactions: number of snapshots written (for monitoring).
    """

    def __init__(self, reactor, writer, path, wheel=None, maxPerAOR=10,
                 compactAfter=10000, compactChunk=5000):
        """
        @param writer: a L{cgpro.core.files.DurableWriter}.
        @param path: the folder of C{Location.data} and
            C{Location.journal} (created if missing).
        @param wheel: a L{TimerWheel} to share; by default one of our own
            with a one-second resolution.
        """
        self.reactor = reactor
        self.writer = writer
        self.path = path
        self.journalPath = os.path.join(path, JOURNAL)
        self.snapshotPath = os.path.join(path, SNAPSHOT)
        self._ownWheel = wheel is None
        self.wheel = TimerWheel(reactor, resolution=1.0) if wheel is None else wheel
        self.maxPerAOR = maxPerAOR
        self.compactAfter = compactAfter
        self.compactChunk = compactChunk
        self.compactions = 0
        self._aors = {}
        self._count = 0
        self._seq = 0
        self._journalLines = 0
        self._compacting = None   # lines written while a snapshot is in flight
        self._retryCompactAt = 0.0
        self._tornTail = False
        self._compactCall = None
        self._intern = _Interner()
        os.makedirs(path, exist_ok=True)

    # -- queries ---------------------------------------------------------

    def lookup(self, aor):
        """
        @param aor: the canonical C{name@domain}.
        @return: the live L{Binding}s of C{aor}, highest q first (the most
            lasting first among equal q).
        """
        bindings = self._aors.get(aor)
        if not bindings:
            return []
        now = self.reactor.seconds()
        live = [b for b in bindings if b.expires > now]
        live.sort(key=lambda b: (-b.q, -b.expires))
        return live

    def count(self):
        """
        @return: the number of bindings held (those past expiry go within
            one wheel resolution).
        """
        return self._count

    def aors(self):
        """
        @return: an iterator over the AORs that have bindings.
        """
        return iter(list(self._aors))

    # -- changes ---------------------------------------------------------

    def update(self, aor, changes, callId, cseq):
        """
        Apply one REGISTER's contacts (RFC 3261 section 10.3 steps 7-8).

        Either every change is applied or none: a CSeq that is not higher
        than the stored one for the same Call-ID, or a result above
        L{maxPerAOR}, refuses the whole request.

        @param changes: a list of C{(contact, expires, q, source, path,
            instance, regId, userAgent)}: C{contact} the URI text,
            C{expires} seconds from now (0 removes).
        @return: L{Deferred} firing with the AOR's live bindings (as
            L{lookup}) once the change is durable, or failing with
            L{LocationError}.
        """
        now = self.reactor.seconds()
        original = {b.key: b for b in self._aors.get(aor, _EMPTY)
                    if b.expires > now}
        result = dict(original)
        plan = {}  # key -> new Binding, or None to remove; last one wins
        for (contact, expires, q, source, path, instance, regId,
             userAgent) in changes:
            if not instance:
                instance = regId = None
            key = _instanceKey(instance, regId) if instance else contactKey(contact)
            old = original.get(key)
            if old is not None and old.callId == callId and cseq <= old.cseq:
                return fail(LocationError(500, "CSeq not higher than the binding's"))
            if expires <= 0:
                plan[key] = None
                result.pop(key, None)
                continue
            result[key] = plan[key] = Binding(
                aor, contact, now + expires, q, callId, cseq,
                self._peer(source), [self._intern(p) for p in path],
                self._intern(instance), regId,
                self._intern(userAgent), key)
        if len(result) > self.maxPerAOR:
            return fail(LocationError(503, "Too many registered contacts"))
        lines = []
        for key, binding in plan.items():
            old = original.get(key)
            if binding is None:
                if old is not None:
                    self._remove(old)
                    lines.append(self._line(["-", aor, key]))
            else:
                if old is not None:
                    self._remove(old, stopTimer=False)
                self._add(binding, old)
                lines.append(self._line(["+"] + self._fields(binding)))
        return self._journal(aor, lines)

    def removeAll(self, aor, callId, cseq):
        """
        Remove every binding of C{aor} (a C{Contact: *} REGISTER, RFC 3261
        section 10.3 step 6): refused if one of them was made with this
        Call-ID and a CSeq not lower.

        @return: L{Deferred} firing with C{[]} once durable, or failing
            with L{LocationError}.
        """
        bindings = self._aors.get(aor, _EMPTY)
        now = self.reactor.seconds()
        for b in bindings:
            if b.expires > now and b.callId == callId and cseq <= b.cseq:
                return fail(LocationError(500, "CSeq not higher than the binding's"))
        for b in list(bindings):
            self._remove(b)
        return self._journal(aor, [self._line(["*", aor])])

    def _journal(self, aor, lines):
        """
        Append C{lines} to the journal.

        @return: L{Deferred} firing with the AOR's bindings once durable.
        """
        if not lines:
            return succeed(self.lookup(aor))
        data = "".join(lines).encode("utf-8", "surrogateescape")
        if self._tornTail:
            # end the line a crash cut, or the next one would join it
            data = b"\n" + data
            self._tornTail = False
        if self._compacting is not None:
            self._compacting.append(data)
        self._journalLines += len(lines)
        d = self.writer.append(self.journalPath, data)
        d.addCallback(lambda _: self.lookup(aor))
        self._maybeCompact()
        return d

    def _line(self, fields):
        """
        @return: one journal line, numbered so that replay can skip what
            a snapshot already holds.
        """
        self._seq += 1
        return _encode([self._seq] + fields) + "\n"

    @staticmethod
    def _fields(b):
        """
        @return: the journal/snapshot fields of binding C{b}.
        """
        source = b.source
        return [b.aor, b.contact, b.expires, b.q, b.callId, b.cseq,
                source.transport if source else None,
                source.host if source else None,
                source.port if source else None,
                list(b.path), b.instance, b.regId, b.userAgent,
                None if b.key == b.contact else b.key]

    def _peer(self, source):
        """
        @return: C{source} as a L{Peer} with shared strings.
        """
        if source is None:
            return None
        return Peer(self._intern(source.transport), self._intern(source.host),
                    source.port)

    def _add(self, binding, old=None):
        """
        File a binding; reuse the timer of the one it replaces unless the
        new expiry is earlier than that timer.
        """
        bindings = self._aors.get(binding.aor)
        if bindings is None:
            bindings = self._aors[binding.aor] = []
        else:
            binding.aor = bindings[0].aor  # one string per AOR, not per binding
        bindings.append(binding)
        self._count += 1
        timer = old.timer if old is not None else None
        if timer is not None and timer.active and timer.deadline <= binding.expires:
            timer.args = (binding,)
            binding.timer = timer
        else:
            if timer is not None:
                timer.cancel()
            self._schedule(binding)

    def _schedule(self, binding):
        """
        File C{binding}'s expiry on the wheel.
        """
        delay = max(0.0, binding.expires - self.reactor.seconds())
        binding.timer = self.wheel.schedule(delay, self._expire, binding)

    def _remove(self, binding, stopTimer=True):
        """
        Take C{binding} out of memory.

        @param stopTimer: L{False} when a refresh takes the timer over.
        """
        bindings = self._aors.get(binding.aor)
        if bindings is None:
            return
        try:
            bindings.remove(binding)
        except ValueError:
            return
        self._count -= 1
        if not bindings:
            del self._aors[binding.aor]
        if stopTimer and binding.timer is not None:
            binding.timer.cancel()
        if stopTimer:
            binding.timer = None

    def _expire(self, binding):
        """
        The wheel says C{binding} is due: drop it, or wait longer if a
        refresh moved its expiry since.
        """
        binding.timer = None
        bindings = self._aors.get(binding.aor)
        if not bindings or not any(b is binding for b in bindings):
            return
        if binding.expires > self.reactor.seconds():
            self._schedule(binding)
            return
        self._remove(binding)

    # -- persistence -----------------------------------------------------

    def _maybeCompact(self):
        """
        Compact once the journal holds more lines than there are
        bindings, so the cost of a snapshot is spread over as many
        changes as it writes bindings.
        """
        if self._compacting is not None:
            return
        if self._journalLines < max(self.compactAfter, self._count):
            return
        if self.reactor.seconds() < self._retryCompactAt:
            return
        self.compact()

    def compact(self):
        """
        Write a snapshot of the live bindings, then replace the journal
        with the lines written meanwhile.

        The snapshot is serialized C{compactChunk} bindings per reactor
        turn, so a large table never stalls SIP traffic.  It is therefore
        not one instant's state: every binding in it is as of sequence
        number C{seq} or later.  That is enough, because every journal
        line sets, removes or clears absolutely, and all lines after
        C{seq} are replayed over the snapshot.

        The journal is rewritten only after the snapshot is durable, so a
        failed snapshot loses nothing; lines appended meanwhile go into
        the new journal as well as (perhaps) the old one, and the
        sequence numbers make the duplicates harmless.

        @return: L{Deferred} firing once both files are durable.
        """
        seq = self._seq
        self._compacting = []
        before, self._journalLines = self._journalLines, 0
        out = [_encode({"seq": seq}) + "\n"]
        aors = list(self._aors)
        done = Deferred()

        def step(start):
            now = self.reactor.seconds()
            for aor in aors[start:start + self.compactChunk]:
                for b in self._aors.get(aor, _EMPTY):
                    if b.expires > now:
                        out.append(_encode([0, "+"] + self._fields(b)) + "\n")
            self._compactCall = None
            start += self.compactChunk
            if start < len(aors):
                self._compactCall = self.reactor.callLater(0, step, start)
                return
            d = self.writer.write(self.snapshotPath,
                                  "".join(out).encode("utf-8", "surrogateescape"))
            del out[:]
            d.addCallbacks(snapshotted, failed)
            d.addErrback(journalFailed)
            d.chainDeferred(done)

        def snapshotted(_):
            pending, self._compacting = self._compacting, None
            self._journalLines = sum(p.count(b"\n") for p in pending)
            self._tornTail = False
            self.compactions += 1
            return self.writer.write(self.journalPath, b"".join(pending))

        def failed(reason):
            pending, self._compacting = self._compacting, None
            self._journalLines = before + sum(p.count(b"\n") for p in pending)
            self._retryCompactAt = self.reactor.seconds() + 60
            log.failure("location snapshot failed; keeping the journal",
                        reason)

        def journalFailed(reason):
            # The old journal stays; its lines up to the snapshot are
            # skipped at load, the others replayed: nothing is lost.
            log.failure("location journal rewrite failed", reason)

        step(0)
        return done

    def load(self):
        """
        Read the snapshot and replay the journal (at start-up, before any
        REGISTER): bindings already expired are dropped, a torn or
        damaged line (a crash mid-append) is skipped.
        """
        for b in [b for bs in self._aors.values() for b in bs]:
            self._remove(b)
        state = {}
        snapSeq = 0
        lastSeq = 0
        for lineNumber, fields in self._readLines(self.snapshotPath):
            if isinstance(fields, dict):
                snapSeq = lastSeq = int(fields.get("seq", 0))
            elif fields[1] == "+":
                self._replaySet(state, fields)
        journalLines = 0
        for lineNumber, fields in self._readLines(self.journalPath):
            journalLines += 1
            if not isinstance(fields, list) or fields[0] <= lastSeq:
                continue
            lastSeq = fields[0]
            op = fields[1]
            if op == "+":
                self._replaySet(state, fields)
            elif op == "-":
                state.get(fields[2], {}).pop(fields[3], None)
            elif op == "*":
                state.pop(fields[2], None)
        now = self.reactor.seconds()
        for aor, bindings in state.items():
            for binding in bindings.values():
                if binding.expires > now:
                    self._add(binding)
        self._seq = max(lastSeq, snapSeq)
        self._journalLines = journalLines
        log.info("location: {count} bindings loaded for {aors} AORs",
                 count=self._count, aors=len(self._aors))

    def _replaySet(self, state, fields):
        """
        Replay one C{+} line into C{state} (AOR -> key -> L{Binding}).
        """
        (_, _, aor, contact, expires, q, callId, cseq, transport, host, port,
         path, instance, regId, userAgent, key) = fields
        source = None if transport is None else Peer(
            self._intern(transport), self._intern(host), port)
        binding = Binding(aor, contact, expires, q, callId, cseq, source,
                          [self._intern(p) for p in path],
                          self._intern(instance), regId,
                          self._intern(userAgent), contact if key is None else key)
        state.setdefault(aor, {})[binding.key] = binding

    def _readLines(self, path):
        """
        Yield C{(line number, decoded record)} for every sound line of
        C{path}; note whether the journal ends in a torn line.
        """
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return
        if path == self.journalPath:
            self._tornTail = bool(data) and not data.endswith(b"\n")
        for number, raw in enumerate(data.split(b"\n"), 1):
            if not raw.strip():
                continue
            try:
                fields = json.loads(raw.decode("utf-8", "surrogateescape"))
                if isinstance(fields, list):
                    if len(fields) < 3 or not isinstance(fields[0], int):
                        raise ValueError("short line")
                    if fields[1] == "+" and len(fields) != 16:
                        raise ValueError("bad binding line")
                elif not isinstance(fields, dict):
                    raise ValueError("not a record")
            except ValueError as e:
                log.warn("{path} line {number} skipped: {error}",
                         path=path, number=number, error=e)
                continue
            yield number, fields

    def stop(self):
        """
        Stop the expiry timers (at service stop).  Bindings stay in memory
        and on disk.
        """
        if self._compactCall is not None:
            # the snapshot is abandoned; the journal still has everything
            self._compactCall.cancel()
            self._compactCall = self._compacting = None
        if self._ownWheel:
            self.wheel.stop()
        for bindings in self._aors.values():
            for b in bindings:
                if b.timer is not None:
                    b.timer.cancel()
                    b.timer = None
