# -*- test-case-name: tests.sip.test_ua -*-
"""
The dialogs of the server's own user agent (RFC 3261 sections 12-15):
the incoming calls a PBX application answers and the outgoing calls it
places (L{cgpro.core.rtinterfaces.IDialog}).

A L{Dialog} keeps what RFC 3261 section 12 calls the dialog state --
Call-ID, local and remote tags, CSeq numbers, route set, remote target
-- and does the end-to-end work the transaction layer leaves to the
transaction user:

  - as UAS, resending its 2xx to an INVITE until the ACK arrives
    (section 13.3.1.4) and ending the dialog when none does;
  - as UAC, sending the ACK for a 2xx (a request of its own, section
    13.2.2.4), again for each retransmitted 2xx, and ACK + BYE for the
    2xx of a second fork;
  - answering and sending the requests inside the dialog (BYE,
    re-INVITE, UPDATE, INFO, REFER and its NOTIFYs, MESSAGE), and
    answering a digest challenge once (L{cgpro.sip.digestclient}).

The owner (a PBX task, L{cgpro.core.rtinterfaces.IDialogOwner}) is told
of what happens through the methods it has; a missing one gets the
default answer (488 for an offer, 603 for a REFER).

Routing inside a dialog assumes loose routers (C{;lr}), as every proxy
since RFC 3261 is.
"""

from twisted.internet.defer import fail, maybeDeferred, succeed
from twisted.logger import Logger
from zope.interface import implementer

from cgpro.core.rtinterfaces import DialogError, IDialog
from cgpro.sip.digestclient import authorize
from cgpro.sip.headers import parseNameAddr
from cgpro.sip.interfaces import IClientTransactionUser
from cgpro.sip.message import Request
from cgpro.sip.responses import makeResponse, newTag, randomToken
from cgpro.sip.targets import isPrivate, peerForURI
from cgpro.sip.uri import SIPParseError, SIPURI, parseURI

log = Logger()

EARLY, CONFIRMED, TERMINATED = "early", "confirmed", "terminated"
SDP = "application/sdp"
#: Requests that carry our Contact (target refresh, RFC 3261 section 12.2).
_WITH_CONTACT = frozenset(("INVITE", "UPDATE", "REFER", "NOTIFY", "SUBSCRIBE"))
#: The Allow header of our INVITEs and 2xx responses.
ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE, REFER, NOTIFY, MESSAGE"


def madeUpResponse(request, code, reason=None):
    """
    A response we make ourselves for a request that got none (408 for a
    timeout, 503 for a transport error), so that callers see one kind of
    result whatever went wrong.
    """
    return makeResponse(request, code, reason)


def sdpOf(message):
    """@return: the body of C{message} if it is SDP, else L{None}."""
    body = message.body
    if not body:
        return None
    try:
        kind = message.contentType
    except SIPParseError:
        return None
    if kind is None or kind.split(";")[0].strip().lower() == SDP:
        return body
    return None


def copyRequest(template):
    """
    A fresh copy of a request we keep as a template: the transaction
    layer puts its Via on the request it is given, and a retry (digest,
    retransmitted ACK) must start from the request without it.
    """
    request = Request(template.method, template.requestURI)
    request.headers = [list(h) for h in template.headers]
    request.body = template.body
    return request


def _offerFailed(failure):
    """The owner's answer to an offer failed: logged, and the offer refused."""
    log.failure("SIP: the dialog owner could not answer an offer", failure)
    return None


def why(reason):
    """@return: the text of a failure (or of anything else)."""
    return reason.getErrorMessage() if hasattr(reason, "getErrorMessage") else str(reason)


@implementer(IDialog, IClientTransactionUser)
class Dialog:
    """
    One dialog of the user agent, incoming (we are UAS) or outgoing (UAC).
    Made by L{fromRequest} and L{outgoing}; the L{cgpro.sip.ua.UserAgent}
    files it under L{key} and hands it what arrives for it.  As an
    L{IClientTransactionUser} it hears about its initial INVITE.

    @ivar localHeader: our From/To header value, tag included.
    @ivar remoteHeader: the peer's, with its tag once known.
    @ivar routeSet: the Route values of requests in the dialog.
    @ivar remoteTarget: the Request-URI of requests in the dialog.
    @ivar localSDP: the last SDP we sent (offer or answer).
    """

    def __init__(self, ua, incoming):
        self.ua = ua
        self.stack = ua.stack
        self.incoming = incoming
        self.owner = None
        self.state = EARLY
        self.authenticated = None
        self.request = None
        self.remoteSDP = None
        self.localSDP = None
        self.callId = self.localTag = self.remoteTag = None
        self.localURI = self.remoteURI = self.remoteName = ""
        self.localHeader = self.remoteHeader = None
        self.localCSeq = 0
        self.remoteCSeq = None
        self.routeSet = []
        self.remoteTarget = None
        self.peer = None
        self.st = None
        self.credentials = None
        self._contactUser = None
        self._contact = None
        self._inviteCT = None
        self._inviteDest = None
        self._retried = False
        self._byeWanted = False
        self._ok = None        # [response, CSeq number, source, initial, interval]
        self._okTimer = None
        self._okGiveUp = None
        self._lastAck = None   # (CSeq number, ACK, destination)
        self._reinviting = False
        self._answering = False

    def __repr__(self):
        return "<Dialog %s %s %s>" % ("in" if self.incoming else "out", self.callId,
                                      self.state)

    @property
    def key(self):
        """C{(Call-ID, local tag)}: how requests for us are told apart."""
        return (self.callId, self.localTag)

    # -- making dialogs -----------------------------------------------------

    @classmethod
    def fromRequest(cls, ua, st, request):
        """The incoming dialog of an unanswered INVITE (we are UAS)."""
        dialog = cls(ua, True)
        dialog.st = st
        dialog.request = request
        dialog.peer = st.source
        dialog.callId = request.callId
        dialog.localTag = st.toTag
        fromAddr, toAddr = request.fromAddr, request.toAddr
        dialog.remoteTag = fromAddr.tag
        dialog.localURI = str(toAddr.uri)
        dialog.remoteURI = str(fromAddr.uri)
        dialog.remoteName = fromAddr.displayName or ""
        dialog.localHeader = "%s;tag=%s" % (request.getHeader("To"), dialog.localTag)
        dialog.remoteHeader = request.getHeader("From")
        dialog.remoteCSeq = request.cseq.number
        dialog.routeSet = [str(r) for r in request.recordRoute]
        contacts = request.contact
        if contacts and not contacts[0].wildcard:
            dialog.remoteTarget = contacts[0].uri
        else:
            dialog.remoteTarget = fromAddr.uri
        dialog.remoteSDP = sdpOf(request)
        uri = request.requestURI
        dialog._contactUser = getattr(uri, "user", None) or getattr(toAddr.uri, "user", None)
        return dialog

    @classmethod
    def outgoing(cls, ua, uri, fromURI, sdp, owner, fromName, toURI, credentials,
                 headers):
        """An outgoing call to C{uri} (we are UAC), not sent yet (L{start})."""
        dialog = cls(ua, False)
        dialog.owner = owner
        dialog.credentials = credentials
        dialog.callId = randomToken(12)
        dialog.localTag = newTag()
        name = '"%s" ' % (fromName.replace('"', "").replace("\\", ""),) if fromName else ""
        dialog.localHeader = "%s<%s>;tag=%s" % (name, fromURI, dialog.localTag)
        dialog.remoteHeader = "<%s>" % (toURI,)
        dialog.localURI = fromURI
        dialog.remoteURI = toURI
        dialog.remoteTarget = uri
        dialog.localSDP = sdp
        dialog.localCSeq = 1
        try:
            dialog._contactUser = parseURI(fromURI).user
        except SIPParseError:
            raise DialogError(400, "Bad From URI %s" % (fromURI,))
        invite = Request("INVITE", uri)
        invite.headers = [
            ["Max-Forwards", "70"], ["From", dialog.localHeader],
            ["To", dialog.remoteHeader], ["Call-ID", dialog.callId],
            ["CSeq", "1 INVITE"], ["Allow", ALLOW]]
        for header, value in headers:
            invite.addHeader(header, value)
        if sdp:
            invite.setHeader("Content-Type", SDP)
            invite.body = sdp
        dialog.request = invite
        return dialog

    def start(self, destination):
        """
        Send the INVITE once C{destination} (a L{Deferred} of the L{Peer})
        fires.  A failure reaches the owner later, never from inside
        L{cgpro.sip.ua.UserAgent.call}.
        """
        destination.addCallbacks(self._sendInvite, self._unreachable)

    def _sendInvite(self, destination):
        if self.state != EARLY:
            return  # given up while resolving
        self._inviteDest = destination
        self._contact = self.ua.contactFor(self._contactUser, destination)
        self.request.setHeader("Contact", "<%s>" % (self._contact,))
        self._transmitInvite()

    def _transmitInvite(self):
        try:
            self._inviteCT = self.stack.transactions.request(
                copyRequest(self.request), self._inviteDest, self)
        except Exception as e:
            self.stack.wheel.schedule(0, self._fail, 503, "Service Unavailable (%s)" % (e,))

    def _unreachable(self, failure):
        error = failure.value
        if isinstance(error, DialogError):
            code, reason = error.code, error.reason
        else:
            code, reason = 503, "Cannot resolve %s" % (getattr(self.remoteTarget, "host", ""),)
        self.stack.wheel.schedule(0, self._fail, code, reason)

    # -- owner ---------------------------------------------------------------

    def _tell(self, name, *args):
        """Call the owner's C{name} if it has one; its errors are logged."""
        method = getattr(self.owner, name, None) if self.owner is not None else None
        if method is None:
            return None
        try:
            return method(self, *args)
        except Exception:
            log.failure("SIP: dialog owner failed in {name}", name=name)
            return None

    def _fail(self, code, reason):
        """An outgoing call that never got established: dialogFailed."""
        if self.state == TERMINATED:
            return
        self.state = TERMINATED
        self.ua.forget(self)
        self._tell("dialogFailed", code, reason)

    # -- our INVITE (IClientTransactionUser) ---------------------------------

    def responseReceived(self, transaction, response):
        code = response.code
        if 200 <= code < 300:
            self._inviteAnswered(response)
            return
        if transaction is not self._inviteCT or self.state != EARLY:
            return
        if code < 200:
            if code > 100:
                sdp = sdpOf(response)
                if sdp is not None:
                    self.remoteSDP = sdp
                self._tell("dialogProgress", code, sdp)
            return
        if (code in (401, 407) and self.credentials and not self._retried
                and not self._byeWanted):
            self.localCSeq += 1
            self.request.setHeader("CSeq", "%d INVITE" % (self.localCSeq,))
            if authorize(self.request, response, *self.credentials):
                self._retried = True
                self._transmitInvite()
                return
        self._fail(code, response.reason)

    def timedOut(self, transaction):
        if transaction is self._inviteCT:
            self._fail(408, "Request Timeout")

    def transportFailed(self, transaction, reason):
        if transaction is self._inviteCT:
            self._fail(503, "Service Unavailable (%s)" % (why(reason),))

    def _inviteAnswered(self, response):
        tag = response.toAddr.tag
        if self.state == EARLY:
            self._establish(response)
            self.state = CONFIRMED
            sdp = sdpOf(response)
            if sdp is not None:
                self.remoteSDP = sdp
            self._acknowledge(response)
            if self._byeWanted:  # the 2xx crossed our CANCEL
                self.bye()
                return
            self._tell("dialogAnswered", sdp)
        elif tag == self.remoteTag:
            self._acknowledge(response)
        else:
            self._dropFork(response)

    def _establish(self, response):
        """The dialog state of a UAC from the 2xx (RFC 3261 section 12.1.2)."""
        self.remoteTag = response.toAddr.tag
        self.remoteHeader = response.getHeader("To")
        self.routeSet = [str(r) for r in reversed(response.recordRoute)]
        contacts = response.contact
        if contacts and not contacts[0].wildcard:
            self.remoteTarget = contacts[0].uri

    def _dropFork(self, response):
        """
        A 2xx from a second fork of our INVITE (RFC 3261 section 13.2.2.4):
        ACK it, to stop its retransmissions, and BYE that dialog at once.
        """
        fork = Dialog(self.ua, False)
        for name in ("callId", "localTag", "localHeader", "localURI", "localCSeq",
                     "remoteTarget", "_contact"):
            setattr(fork, name, getattr(self, name))
        fork._establish(response)
        fork.state = CONFIRMED
        fork._acknowledge(response)
        fork.bye()

    def _acknowledge(self, response):
        """Send the ACK for a 2xx to our INVITE, or send it again."""
        number = response.cseq.number
        last = self._lastAck
        if last is not None and last[0] == number:
            self.stack.transport.sendRequest(last[1], last[2])
            return
        contacts = response.contact
        if contacts and not contacts[0].wildcard:
            self.remoteTarget = contacts[0].uri
        ack = self._newRequest("ACK", number=number)
        self._destination().addCallbacks(self._sendAck, self._lost, callbackArgs=(ack, number))

    def _sendAck(self, destination, ack, number):
        self.stack.transactions.request(ack, destination, None)
        self._lastAck = (number, ack, destination)

    def _lost(self, failure):
        log.info("SIP: no way to reach the peer of dialog {callId}: {why}",
                 callId=self.callId, why=why(failure))

    def strayResponse(self, response):
        """A response after its transaction ended: a retransmitted 2xx."""
        try:
            method = response.cseq.method
        except SIPParseError:
            return
        if method != "INVITE" or not 200 <= response.code < 300:
            return
        if response.toAddr.tag == self.remoteTag:
            self._acknowledge(response)
        elif not self.incoming:
            self._dropFork(response)

    # -- incoming call (IDialog) ----------------------------------------------

    def _answerable(self):
        return (self.incoming and self.state == EARLY and self.st is not None
                and not self.st.isFinal())

    def _contactURI(self):
        if self._contact is None:
            self._contact = self.ua.contactFor(self._contactUser, self.peer)
        return self._contact

    def _response(self, code, reason=None, sdp=None, headers=(), request=None):
        """A response of ours, with Contact and SDP where they belong."""
        request = request or self.request
        response = makeResponse(request, code, reason, toTag=self.localTag, headers=headers)
        if 100 < code < 300:
            if request is self.request:
                for value in request.getHeaders("Record-Route"):
                    response.addHeader("Record-Route", value)
            response.addHeader("Contact", "<%s>" % (self._contactURI(),))
        if code < 300 and request.method in ("INVITE", "UPDATE"):
            response.addHeader("Allow", ALLOW)
        if sdp is not None:
            response.addHeader("Content-Type", SDP)
            response.body = sdp
        return response

    def ring(self, code=180, sdp=None, reason=None):
        if self._answerable():
            self.st.respond(self._response(code, reason, sdp))

    def accept(self, sdp, headers=()):
        if not self._answerable():
            return
        self.localSDP = sdp
        response = self._response(200, sdp=sdp, headers=headers)
        self.state = CONFIRMED
        self.st.respond(response)
        self._expectAck(response, self.request.cseq.number, self.st.source, True)

    def reject(self, code, reason=None, headers=()):
        if not self._answerable():
            return
        self.st.respond(self._response(code, reason, headers=headers))
        self.state = TERMINATED
        self.ua.forget(self)

    def redirect(self, contacts, code=302):
        self.reject(code, headers=[("Contact", "<%s>" % (c,)) for c in contacts])

    def cancelled(self):
        """The caller CANCELled before we answered: 487 and dialogFailed."""
        if not self._answerable():
            return
        self.st.respond(self._response(487))
        self.state = TERMINATED
        self.ua.forget(self)
        self._tell("dialogFailed", 487, "cancelled")

    # -- our 2xx to an INVITE, until its ACK ----------------------------------

    def _expectAck(self, response, number, source, initial):
        """
        Resend C{response} at T1, 2*T1, ... up to T2 until its ACK comes
        (RFC 3261 section 13.3.1.4); give the dialog up after 64*T1.
        """
        self._stopResending()
        layer = self.stack.transactions
        self._ok = [response, number, source, initial, layer.t1]
        wheel = self.stack.wheel
        self._okTimer = wheel.schedule(layer.t1, self._resendOk)
        self._okGiveUp = wheel.schedule(64 * layer.t1, self._noAck)

    def _resendOk(self):
        due = self._okTimer.deadline
        self._okTimer = None
        if self._ok is None:
            return
        response, _, source, _, interval = self._ok
        self.stack.transport.sendResponse(response, source)
        interval = min(interval * 2, self.stack.transactions.t2)
        self._ok[4] = interval
        # from the previous deadline, so the wheel's lateness does not add up
        delay = max(due + interval - self.stack.reactor.seconds(), 0)
        self._okTimer = self.stack.wheel.schedule(delay, self._resendOk)

    def _noAck(self):
        self._okGiveUp = None
        self._stopResending()
        if self.state == CONFIRMED:
            self._hangUp("timeout")

    def _stopResending(self):
        self._ok = None
        for name in ("_okTimer", "_okGiveUp"):
            timer = getattr(self, name)
            if timer is not None:
                timer.cancel()
                setattr(self, name, None)

    def ackReceived(self, request):
        """An ACK for a 2xx of ours (a retransmitted one is ignored)."""
        ok = self._ok
        if ok is None or request.cseq.number != ok[1]:
            return
        initial = ok[3]
        self._stopResending()
        sdp = sdpOf(request)
        if sdp is not None:
            self.remoteSDP = sdp
        if initial and self.state == CONFIRMED:
            self._tell("dialogAnswered", sdp)

    # -- ending ----------------------------------------------------------------

    def bye(self):
        if self.state == TERMINATED:
            return
        if self.state == EARLY:
            if self.incoming:
                self.reject(480)
                return
            self._byeWanted = True
            if self._inviteCT is not None:
                self._inviteCT.cancel()
            else:
                self._fail(487, "Request Terminated")
            return
        self._hangUp("local")

    def _hangUp(self, reason):
        """
        Send BYE.  The owner hears C{'local'} when it is answered (the
        call is really over), C{'timeout'} at once (the peer is gone).
        """
        self._stopResending()
        self.state = TERMINATED
        if reason != "local":
            self._tell("dialogEnded", reason)

        def done(result):
            self.ua.forget(self)
            if reason == "local":
                self._tell("dialogEnded", reason)
            return result

        self._send("BYE").addBoth(done)

    def _checkAlive(self, code, method):
        """
        408 or 481 to a request inside the dialog: the peer has forgotten
        it or is gone (RFC 3261 section 12.2.1.2); end it here too.
        """
        if code in (408, 481) and method != "BYE" and self.state == CONFIRMED:
            self._stopResending()
            self.state = TERMINATED
            self.ua.forget(self)
            self._tell("dialogEnded", "timeout")

    # -- requests we send in the dialog ---------------------------------------

    def _nextCSeq(self):
        self.localCSeq += 1
        return self.localCSeq

    def _newRequest(self, method, body=b"", contentType=None, headers=(), number=None):
        """A request inside the dialog (RFC 3261 section 12.2.1.1)."""
        if number is None:
            number = self._nextCSeq()
        request = Request(method, self.remoteTarget)
        request.headers = [
            ["Max-Forwards", "70"], ["From", self.localHeader], ["To", self.remoteHeader],
            ["Call-ID", self.callId], ["CSeq", "%d %s" % (number, method)]]
        for route in self.routeSet:
            request.headers.append(["Route", route])
        if method in _WITH_CONTACT and self._contact is not None:
            request.headers.append(["Contact", "<%s>" % (self._contact,)])
        for name, value in headers:
            request.addHeader(name, value)
        if body:
            request.setHeader("Content-Type", contentType or "text/plain")
            request.body = body
        return request

    def _destination(self):
        """
        Where requests inside the dialog go: the first Route, else the
        remote target -- except that the peer of an incoming call without
        a route set is sent to where its INVITE came from when its
        Contact is a private address of another host (NAT) or it came
        over a connection (reused, RFC 5626 style).
        """
        if self.routeSet:
            try:
                return self.ua.destinationFor(parseNameAddr(self.routeSet[0]).uri)
            except SIPParseError as e:
                return fail(DialogError(400, str(e)))
        peer = self.peer
        target = self.remoteTarget
        if self.incoming and peer is not None:
            direct = (peerForURI(target) if isinstance(target, SIPURI) and target.host
                      else None)
            if (peer.reliable or direct is None
                    or (isPrivate(direct.host) and direct.host != peer.host)):
                return succeed(peer)
        return self.ua.destinationFor(target)

    def _send(self, method, body=b"", contentType=None, headers=()):
        """
        @return: L{Deferred} firing with the final response (made up for a
            timeout or transport error).
        """
        template = self._newRequest(method, body, contentType, headers)
        exchange = self.ua.exchange(template, self.credentials, self._nextCSeq)
        self._destination().addCallbacks(
            exchange.send, lambda f: exchange.finish(madeUpResponse(
                template, 503, "Service Unavailable (%s)" % (why(f),))))

        def check(response):
            self._checkAlive(response.code, method)
            return response

        return exchange.deferred.addCallback(check)

    def _confirmed(self):
        if self.state != CONFIRMED:
            return fail(DialogError(481, "Call/Transaction Does Not Exist"))
        return None

    def reinvite(self, sdp):
        refused = self._confirmed()
        if refused is not None:
            return refused
        if self._reinviting:
            return fail(DialogError(491, "Request Pending"))
        self._reinviting = True
        self.localSDP = sdp
        reinvite = self.ua.reInvite(self, self._newRequest("INVITE", sdp, SDP))
        self._destination().addCallbacks(reinvite.send, reinvite.unreachable)
        return reinvite.deferred

    def sendInfo(self, contentType, body):
        refused = self._confirmed()
        if refused is not None:
            return refused
        return self._send("INFO", body, contentType).addCallback(lambda r: r.code)

    def sendMessage(self, contentType, body):
        refused = self._confirmed()
        if refused is not None:
            return refused
        return self._send("MESSAGE", body, contentType).addCallback(lambda r: r.code)

    def notifyRefer(self, code, reason):
        """@return: L{Deferred} firing with the response code."""
        refused = self._confirmed()
        if refused is not None:
            return refused
        if code < 200:
            state = "active;expires=60"
        else:
            state = "terminated;reason=noresource"
        body = ("SIP/2.0 %d %s\r\n" % (code, reason)).encode("utf-8")
        return self._send("NOTIFY", body, "message/sipfrag;version=2.0",
                          [("Event", "refer"), ("Subscription-State", state)]
                          ).addCallback(lambda r: r.code)

    # -- requests we receive in the dialog ------------------------------------

    def requestReceived(self, st, request):
        """
        A request with our tag (not ACK, not CANCEL: see
        L{ackReceived} and L{cancelled}).
        """
        method = request.method
        if self.state != CONFIRMED:
            # a BYE crossing ours is fine; anything else is too late or early
            self.stack.respond(st, 200 if method == "BYE" and self.state == TERMINATED
                               else 481)
            return
        number = request.cseq.number
        if self.remoteCSeq is not None and number <= self.remoteCSeq:
            self.stack.respond(st, 500, "CSeq out of order")
            return
        self.remoteCSeq = number
        handler = getattr(self, "_received" + method, None)
        if handler is None:
            self.stack.respond(st, 501, headers=[("Allow", ALLOW)])
            return
        handler(st, request)

    def _receivedBYE(self, st, request):
        self.stack.respond(st, 200)
        self._stopResending()
        self.state = TERMINATED
        self.ua.forget(self)
        self._tell("dialogEnded", "bye")

    def _refreshTarget(self, request):
        try:
            contacts = request.contact
        except SIPParseError:
            return
        if contacts and not contacts[0].wildcard:
            self.remoteTarget = contacts[0].uri

    def _receivedINVITE(self, st, request):
        self._offer(st, request, invite=True)

    def _receivedUPDATE(self, st, request):
        self._offer(st, request, invite=False)

    def _offer(self, st, request, invite):
        """
        A re-INVITE or UPDATE: ask the owner for an answer to its offer.
        One without SDP is answered with our last SDP, as a new offer
        (its answer comes in the ACK); an UPDATE without SDP only
        refreshes the target (session timers).
        """
        if self._reinviting or self._answering:
            self.stack.respond(st, 491)
            return
        self._refreshTarget(request)
        offer = sdpOf(request)
        if offer is None:
            self._answerOffer(None, st, request, invite, None,
                              self.localSDP if invite else b"")
            return
        self._answering = True
        answered = maybeDeferred(self._tell, "offerReceived", offer)
        answered.addErrback(_offerFailed)
        answered.addCallback(self._answerOffer, st, request, invite, offer)

    def _answerOffer(self, answer, st, request, invite, offer, override=None):
        self._answering = False
        if override is not None:
            answer = override
        if st.isFinal():
            return
        if self.state != CONFIRMED:
            st.respond(makeResponse(request, 481, toTag=self.localTag))
            return
        if answer is None:
            st.respond(makeResponse(request, 488, toTag=self.localTag))
            return
        if offer is not None:
            self.remoteSDP = offer
        if answer:
            self.localSDP = answer
        response = self._response(200, sdp=answer or None, request=request)
        st.respond(response)
        if invite:
            self._expectAck(response, request.cseq.number, st.source, False)

    def _receivedINFO(self, st, request):
        self.stack.respond(st, 200)
        self._tell("infoReceived", request.contentType, request.body)

    def _receivedMESSAGE(self, st, request):
        self.stack.respond(st, 200)
        self._tell("messageReceived", request.contentType, request.body)

    def _receivedREFER(self, st, request):
        value = request.getHeader("Refer-To")
        try:
            referTo = str(parseNameAddr(value).uri) if value else None
        except SIPParseError:
            referTo = None
        if referTo is None:
            self.stack.respond(st, 400, "Bad or missing Refer-To")
            return
        referredBy = request.getHeader("Referred-By")
        if referredBy:
            try:
                referredBy = str(parseNameAddr(referredBy).uri)
            except SIPParseError:
                pass
        accepted = self._tell("referReceived", referTo, referredBy)
        self.stack.respond(st, 202 if accepted else 603)

    def _receivedNOTIFY(self, st, request):
        self.stack.respond(st, 200)

    def _receivedOPTIONS(self, st, request):
        self.stack.respond(st, 200, headers=self.stack.capabilities())
