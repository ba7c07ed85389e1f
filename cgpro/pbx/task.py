# -*- test-case-name: tests.pbx.test_task -*-
"""
A Task: one call leg as a PBX application sees it.

An application is a generator run with C{inlineCallbacks}: it asks its
task to answer, play, collect digits, record, call out and bridge, and
waits for each step's L{Deferred}.  When the caller hangs up, every step
under way fails with L{Hangup}, so an application written as a straight
line of steps never needs to check whether the call is still there, and a
task never outlives its call: the host closes the media channel and
writes the call detail record whatever way the generator ends.

A task owns one SIP dialog (L{cgpro.core.rtinterfaces.IDialog}, from the
server's user agent) and, once it answered or called out, one media
server channel (L{cgpro.core.rtinterfaces.IMediaChannel}).  Two tasks are
joined by L{Task.bridge}: by re-INVITE, so that the phones then send media
to each other directly, or, when a side cannot take call updates (seed
003's C{#} gateways) or refuses the re-INVITE, by connecting their two
channels in the media server.
"""

import os

from twisted.internet.defer import Deferred, fail, inlineCallbacks, succeed
from twisted.logger import Logger
from zope.interface import implementer

from cgpro.core.rtinterfaces import DialogError, IDialogOwner
from cgpro.pbx import sdp as SDP

log = Logger()

#: The RFC 4733 / INFO digits.
DIGITS = "0123456789*#ABCD"


class Hangup(Exception):
    """The call ended (the peer hung up, or the dialog failed)."""


class CallFailed(Exception):
    """
    A call-out failed.

    @ivar code: the SIP response code.
    """

    def __init__(self, code, reason=""):
        Exception.__init__(self, code, reason)
        self.code = code
        self.reason = reason


def _waiter(owner):
    d = Deferred()
    owner._waiters.append(d)

    def forget(result):
        if d in owner._waiters:
            owner._waiters.remove(d)
        return result

    d.addBoth(forget)
    return d


@implementer(IDialogOwner)
class Task:
    """
    One call leg run by a PBX application.

    @ivar host: the L{cgpro.pbx.host.ApplicationHost}.
    @ivar dialog: the L{IDialog}.
    @ivar channel: the L{IMediaChannel}, once there is media.
    @ivar account: the account the application runs on behalf of.
    @ivar domain: that account's domain (where prompts are looked up).
    @ivar app: the application's name; C{params} its parameters.
    @ivar caller: C{account@domain} of an authenticated caller, else C{None}.
    @ivar language: the prompt language, or C{None}.
    @ivar digits: digits received and not yet collected.
    @ivar ended: C{None} while the call lasts, then why it ended.
    @ivar peer: the task this one is bridged with.
    """

    def __init__(self, host, dialog, account, app="", params=(), parent=None):
        self.host = host
        self.dialog = dialog
        dialog.owner = self
        self.account = account
        self.domain = account.partition("@")[2] if account else ""
        self.app = app
        self.params = list(params)
        self.parent = parent
        self.caller = None
        self.language = None
        self.channel = None
        self.remote = None
        self.digits = ""
        self.ended = None
        self.peer = None
        self.relayed = False
        self.answeredAt = None
        self.startedAt = host.clock.seconds()
        self.result = None
        self.cost = None
        self.transferHandler = None
        self.messageHandler = None
        self._waiters = []
        self._digitWaiter = None
        self._answered = None
        self._playing = None
        self._recording = None

    def __repr__(self):
        return "<Task %s %s %s>" % (self.app, self.dialog.callId, self.ended or "live")

    # -- what the application calls ----------------------------------------

    @property
    def request(self):
        return self.dialog.request

    @property
    def remoteURI(self):
        return self.dialog.remoteURI

    def callerName(self):
        """@return: the caller's display name or number, for humans (voicemail's From)."""
        return self.dialog.remoteName or self.dialog.remoteURI

    def _alive(self):
        if self.ended is not None:
            raise Hangup(self.ended)

    def authenticate(self):
        """
        Require the caller to prove who they are (digest, 407).

        @return: C{account@domain}, or C{None} when the call was answered
            with a challenge (the application then simply ends).
        """
        self._alive()
        if self.caller is None:
            self.caller = self.host.ua.authenticate(self.dialog, self.domain)
            if self.caller is None:
                self.result = (407, "authentication required")
                self._end("challenged")
        return self.caller

    def ring(self, code=180):
        """Send a provisional response."""
        self._alive()
        self.dialog.ring(code)

    def reject(self, code, reason=None):
        """Refuse the call."""
        if self.ended is None:
            self.dialog.reject(code, reason)
            self.result = (code, reason or "")
            self._end("rejected")

    def redirect(self, targets):
        """Send the caller elsewhere (302); the Router routes the new request."""
        self._alive()
        self.dialog.redirect(list(targets))
        self.result = (302, ", ".join(targets))
        self._end("redirected")

    def accept(self):
        """
        Answer the call with a media server channel.

        @return: L{Deferred} firing when the caller's ACK came.
        """
        self._alive()
        if self._answered is not None:
            return succeed(None)
        try:
            remote = SDP.parse(self.dialog.request.body)
        except SDP.SDPError as e:
            log.info("PBX {app}: {callId}: {error}", app=self.app, callId=self.dialog.callId,
                     error=str(e))
            self.reject(488, "Not Acceptable Here (%s)" % (e,))
            return fail(Hangup("no usable media"))
        channel = self._openChannel()
        if channel is None:
            return fail(Hangup("media exhausted"))
        self._setRemote(remote)
        self._answered = d = _waiter(self)
        self.answeredAt = self.host.clock.seconds()
        self.dialog.accept(SDP.answer(remote, channel.localHost, channel.localPort))
        return d

    def acceptWith(self, sdp, peer):
        """
        Answer the call with C{peer}'s SDP: the media of the two calls flow
        end to end from the start (the B2BUA's usual bridge when the far
        side answered first), with no channel of ours in between.

        @return: L{Deferred} firing when the caller's ACK came.
        """
        self._alive()
        peer._alive()
        self._answered = d = _waiter(self)
        self.answeredAt = self.host.clock.seconds()
        self.peer, peer.peer = peer, self
        self.dialog.accept(sdp)
        self.host.count("bridged")
        return d

    def _openChannel(self):
        try:
            channel = self.channel = self.host.media.openChannel()
        except Exception as e:
            log.warn("PBX {app}: no media channel: {error}", app=self.app, error=str(e))
            self.reject(503, "Media server exhausted")
            return None
        channel.digitReceived = self._digit
        return channel

    def _setRemote(self, remote):
        self.remote = remote
        self.channel.setRemote(remote.host, remote.port, codec=remote.codec,
                               eventPayload=remote.eventPayload, payload=remote.payload)

    def prompt(self, name):
        """
        @return: the L{IPrompt} called C{name} (C{.wav} or C{.au}, found in
            the domain's, the server's or the stock environment).
        @raise LookupError: no such prompt.
        """
        return self.host.prompt(self.domain, name, self.language)

    def play(self, *names, **kw):
        """
        Play prompts one after the other.

        @param names: prompt names or L{IPrompt}s.
        @keyword interrupt: stop at the first digit received (default
            C{True}); the digit stays in L{digits}.
        @return: L{Deferred} firing with C{True} if everything played.
        """
        self._alive()
        interrupt = kw.get("interrupt", True)
        return self._playAll(list(names), interrupt)

    @inlineCallbacks
    def _playAll(self, names, interrupt):
        for name in names:
            if interrupt and self.digits:
                return False
            try:
                prompt = self.prompt(name) if isinstance(name, str) else name
            except LookupError as e:
                log.warn("PBX {app}: {error}", app=self.app, error=str(e))
                continue
            done = yield self._playOne(prompt, interrupt)
            if not done:
                return False
        return True

    def _playOne(self, prompt, interrupt, loop=False):
        self._alive()
        if self.channel is None:
            return succeed(False)
        self._playing = (interrupt,)
        d = self.channel.play(prompt, loop=loop)
        hang = _waiter(self)

        def first(result):
            if not hang.called:
                hang.callback(result)
            return result

        d.addBoth(first)
        hang.addBoth(self._played)
        return hang

    def _played(self, result):
        self._playing = None
        return result

    def playLoop(self, name):
        """Play C{name} over and over (hold music); L{stopPlaying} ends it."""
        self._alive()
        prompt = self.prompt(name) if isinstance(name, str) else name
        d = self._playOne(prompt, False, loop=True)
        d.addErrback(lambda f: f.trap(Hangup) and None)
        return d

    def stopPlaying(self):
        if self.channel is not None:
            self.channel.stopPlaying()

    def collect(self, count=1, timeout=5.0, terminators="#", first=None):
        """
        Collect up to C{count} digits; a terminator ends early (and is not
        returned).

        @param timeout: seconds to wait for each digit.
        @param first: seconds to wait for the first one (default C{timeout}).
        @return: L{Deferred} firing with the digits (C{''} on timeout).
        """
        self._alive()
        return self._collect(count, timeout, terminators, first)

    @inlineCallbacks
    def _collect(self, count, timeout, terminators, first):
        got = ""
        while len(got) < count:
            digit = yield self.nextDigit(first if (first is not None and not got) else timeout)
            if digit is None:
                break
            if digit in terminators:
                break
            got += digit
        return got

    def nextDigit(self, timeout):
        """
        @return: L{Deferred} firing with the next digit, or C{None} after
            C{timeout} seconds.
        """
        self._alive()
        if self.digits:
            digit, self.digits = self.digits[0], self.digits[1:]
            return succeed(digit)
        d = _waiter(self)
        call = self.host.clock.callLater(timeout, self._noDigit, d)

        def cleanup(result):
            if call.active():
                call.cancel()
            if self._digitWaiter is d:
                self._digitWaiter = None
            return result

        d.addBoth(cleanup)
        self._digitWaiter = d
        return d

    def _noDigit(self, d):
        if not d.called:
            d.callback(None)

    def _digit(self, digit):
        if digit not in DIGITS or self.ended is not None:
            return
        self.host.count("digits")
        # the prompt playing when the digit came (barge-in); the waiter's
        # callback may run the application on to its next prompt, which
        # this digit must not cut off
        playing = self._playing
        waiter = self._digitWaiter
        if waiter is not None and not waiter.called:
            self._digitWaiter = None
            waiter.callback(digit)
        else:
            self.digits += digit
        if (playing is not None and playing[0] and self._playing is playing
                and self.channel is not None):
            self.channel.stopPlaying()
        if self._recording is not None and self.channel is not None:
            self.channel.stopRecording()

    def flushDigits(self):
        self.digits = ""

    def record(self, maxSeconds=120, silence=5.0):
        """
        Record the caller.

        @return: L{Deferred} firing with 16-bit linear 8 kHz samples; a
            digit ends the recording (it stays in L{digits}).
        """
        self._alive()
        d = self.channel.record(maxSeconds, silence)
        hang = _waiter(self)
        self._recording = d

        def done(samples):
            self._recording = None
            if not hang.called:
                hang.callback(samples)
            return samples

        d.addCallback(done)
        return hang

    def recordFile(self, path, maxSeconds=60, silence=3.0):
        """
        Record the caller into a WAV file (16-bit, 8 kHz), written
        atomically (temporary file, fsync, rename) through the server's
        writer.

        @return: L{Deferred} firing with the number of samples once the
            file is durable (0: nothing was said, no file written).
        """
        from cgpro.core.files import writeFileAtomically
        from cgpro.media.audiofile import writeWAV

        def save(samples):
            if len(samples) < 1600:
                return 0
            data = writeWAV(samples)
            writer = getattr(self.host.context, "writer", None)
            if writer is None:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                writeFileAtomically(path, data)
                return len(samples) // 2
            return writer.write(path, data, makeFolder=True).addCallback(
                lambda _: len(samples) // 2)

        return self.record(maxSeconds, silence).addCallback(save)

    def stopRecording(self):
        if self.channel is not None:
            self.channel.stopRecording()

    def sleep(self, seconds):
        """@return: L{Deferred} firing after C{seconds} (or failing with L{Hangup})."""
        self._alive()
        d = _waiter(self)
        call = self.host.clock.callLater(seconds, lambda: d.called or d.callback(None))
        d.addBoth(lambda r: (call.active() and call.cancel(), r)[1])
        return d

    def hangup(self):
        """End the call (BYE, CANCEL or 480 as fits its state)."""
        if self.ended is None:
            self._end("local")
            try:
                self.dialog.bye()
            except Exception:
                log.failure("PBX {app}: hang-up failed", app=self.app)

    def sendMessage(self, text, contentType="text/plain"):
        """Send an instant message in this call's dialog."""
        self._alive()
        return self.dialog.sendMessage(contentType, text.encode("utf-8"))

    # -- calling out and bridging -------------------------------------------

    def callOut(self, target, fromURI=None, fromName=None, via=None, credentials=None,
                timeout=60.0, headers=(), app=None, offer=None):
        """
        Start a second task that calls C{target}.

        @param offer: the SDP to offer (the caller's own, for media end to
            end); by default a channel of ours is opened and offered.

        @return: L{Deferred} firing with the answered L{Task}, failing
            with L{CallFailed} (or L{Hangup} if this caller hangs up
            first: the call-out is then cancelled).
        """
        self._alive()
        child = Task.__new__(Task)
        channel = None
        if offer is None:
            channel = self.host.media.openChannel()
            offer = SDP.describe(channel.localHost, channel.localPort)
        fromURI = fromURI or self.dialog.remoteURI
        dialog = self.host.ua.call(target, fromURI, offer, None, fromName=fromName, via=via,
                                   credentials=credentials, headers=headers)
        Task.__init__(child, self.host, dialog, self.account, app or self.app, self.params,
                      parent=self)
        child.channel = channel
        if channel is not None:
            channel.digitReceived = child._digit
        child.startedAt = self.host.clock.seconds()
        self.host.adopt(child)
        d = child._answered = Deferred()
        call = self.host.clock.callLater(timeout, child._ringTimeout)
        mine = _waiter(self)

        def answered(result):
            if call.active():
                call.cancel()
            if not mine.called:
                mine.callback(child)
            elif result is child:
                child.hangup()
            return result

        def failed(f):
            if call.active():
                call.cancel()
            if not mine.called:
                mine.errback(f)
            return None

        d.addCallbacks(answered, failed)

        def callerGone(f):
            if f.check(Hangup):
                child.hangup()
            return f

        mine.addErrback(callerGone)
        return mine

    def _ringTimeout(self):
        if self.ended is None and self.answeredAt is None:
            self.result = (408, "no answer")
            self.hangup()
            if self._answered is not None and not self._answered.called:
                self._answered.errback(CallFailed(408, "No answer"))

    @inlineCallbacks
    def bridge(self, other, relay=False):
        """
        Join this call with C{other}: media end to end by re-INVITE, or
        through the two channels in the media server when C{relay} (a
        gateway that takes no call updates) or when a re-INVITE fails.

        @return: L{Deferred} firing once joined.
        """
        self._alive()
        other._alive()
        self.peer, other.peer = other, self
        self.stopPlaying()
        other.stopPlaying()
        if not relay and other.dialog.remoteSDP and self.dialog.remoteSDP:
            try:
                answer = yield self.dialog.reinvite(other.dialog.remoteSDP or b"")
                yield other.dialog.reinvite(answer)
                self.host.count("bridged")
                self._mediaDirect(other)
                return
            except (DialogError, SDP.SDPError, Hangup) as e:
                if self.ended is not None or other.ended is not None:
                    raise Hangup("bridge: a side hung up")
                log.info("PBX {app}: re-INVITE bridge failed ({error}); relaying media",
                         app=self.app, error=str(e))
        self.relayed = other.relayed = True
        if self.channel is not None and other.channel is not None:
            self.channel.connect(other.channel)
        self.host.count("relayed")

    def _mediaDirect(self, other):
        for task in (self, other):
            task.relayed = False
            if task.channel is not None:
                task.channel.close()
                task.channel = None

    def waitEnd(self):
        """@return: L{Deferred} failing with L{Hangup} when this call ends."""
        self._alive()
        return _waiter(self)

    # -- IDialogOwner ---------------------------------------------------------

    def dialogAnswered(self, dialog, sdp):
        if self.answeredAt is None:
            self.answeredAt = self.host.clock.seconds()
        if sdp and self.channel is not None:
            try:
                self._setRemote(SDP.parse(sdp))
            except SDP.SDPError as e:
                log.info("PBX {app}: answer without usable media: {error}", app=self.app,
                         error=str(e))
        d = self._answered
        if d is not None and not d.called:
            d.callback(self)

    def dialogProgress(self, dialog, code, sdp):
        if sdp and self.channel is not None:
            try:
                self._setRemote(SDP.parse(sdp))
            except SDP.SDPError:
                pass

    def dialogFailed(self, dialog, code, reason):
        self.result = (code, reason or "")
        d = self._answered
        self._end("failed")
        if d is not None and not d.called:
            d.errback(CallFailed(code, reason))

    def dialogEnded(self, dialog, reason):
        if self.result is None:
            self.result = (200, "hangup by %s" % ("caller" if reason == "bye" else reason))
        self._end(reason)

    def offerReceived(self, dialog, offer):
        if self.peer is not None and not self.relayed:
            # media flows end to end: the peer must answer it
            return self.peer.dialog.reinvite(offer)
        if self.channel is None:
            return None
        try:
            remote = SDP.parse(offer, prefer=self.remote.codec if self.remote else None)
        except SDP.SDPError:
            return None
        self._setRemote(remote)
        return SDP.answer(remote, self.channel.localHost, self.channel.localPort)

    def infoReceived(self, dialog, contentType, body):
        text = body.decode("latin-1", "replace") if isinstance(body, bytes) else body
        kind = (contentType or "").lower()
        if kind.startswith("application/dtmf-relay"):
            for line in text.splitlines():
                name, _, value = line.partition("=")
                if name.strip().lower() == "signal":
                    self._digit(value.strip().upper()[:1])
        elif kind.startswith("application/dtmf"):
            self._digit(text.strip().upper()[:1])

    def referReceived(self, dialog, referTo, referredBy):
        handler = self.transferHandler
        if handler is None and self.peer is not None:
            handler = self._transferPeer
        if handler is None:
            return False
        self.host.clock.callLater(0, handler, referTo)
        return True

    @inlineCallbacks
    def _transferPeer(self, referTo):
        """
        The caller transfers its peer (seed 003: the first task carries the
        transfer out itself; the gateway never sees a REFER): call the new
        party, join the peer with it, and let the caller go.
        """
        peer = self.peer
        try:
            target = yield self.callOut(_referTarget(referTo), fromURI=peer.dialog.remoteURI)
        except (CallFailed, Hangup) as e:
            code = getattr(e, "code", 487)
            if self.ended is None:
                self.dialog.notifyRefer(code, getattr(e, "reason", "") or "failed")
            return
        self.peer = None
        peer.peer = None
        try:
            yield peer.bridge(target, relay=peer.relayed)
        except Hangup:
            target.hangup()
            return
        if self.ended is None:
            self.dialog.notifyRefer(200, "OK")
            self.hangup()
        self.host.transferred(peer, target)

    def messageReceived(self, dialog, contentType, body):
        if self.messageHandler is not None:
            self.messageHandler(body.decode("utf-8", "replace"))

    # -- the end ---------------------------------------------------------------

    def _end(self, reason):
        if self.ended is not None:
            return
        self.ended = reason
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            if not d.called:
                d.errback(Hangup(reason))
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        peer, self.peer = self.peer, None
        if peer is not None and peer.ended is None:
            peer.peer = None
            peer.hangup()
        self.host.ended(self)


def _referTarget(referTo):
    """The URI of a Refer-To value (C{<sip:b@dom?Replaces=...>} -> C{sip:b@dom})."""
    text = referTo.strip()
    if "<" in text:
        text = text[text.index("<") + 1:text.rindex(">")]
    return text.split("?", 1)[0]
