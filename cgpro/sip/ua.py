# -*- test-case-name: tests.sip.test_ua -*-
"""
The server's own SIP user agent: both sides of the PBX's back-to-back
user agent (L{cgpro.core.rtinterfaces.IUserAgent}).

The PBX answers calls the Router sends to an application and places
calls of its own; this module is where those calls become SIP dialogs
(L{cgpro.sip.dialog.Dialog}), and where requests outside any dialog
(REGISTER to a provider, MESSAGE, NOTIFY, OPTIONS) are sent with one
digest retry (L{cgpro.sip.digestclient}).

How it sits in the stack (L{cgpro.sip.stack.SIPStack}):

  - a request carrying a To tag goes to the UA first, which takes it
    only if C{(Call-ID, To tag)} is one of its dialogs -- the To tag of
    a request is the receiver's local tag, so every other dialog (the
    phones' dialogs this server proxies) keeps going to the proxy;
  - ACKs for our 2xx responses (RFC 6026: the transaction layer passes
    them up), CANCELs of INVITEs we hold unanswered, and 2xx
    retransmissions for our INVITEs after their transaction ended
    (stray responses) are offered to the UA before the proxy the same
    way.

The client transaction users of the UA live here too: L{Exchange} (a
non-INVITE request and its digest retry) and L{ReInvite}; the dialog
state machine is L{cgpro.sip.dialog}.

Where an outgoing request goes: a C{via} proxy when given, else the
Request-URI.  A Request-URI whose host is one of our local domains (or
this server's own address) is sent to our own SIP listener -- a loopback
through the transport -- rather than looked up here: the request then
enters the stack like any other, so the Router, the registrations, the
call rules and the relaying checks apply to the PBX's calls exactly as
to a phone's, and this module needs no second copy of that logic.  Other
host names are resolved with the resolver the proxy uses
(C{reactor.resolve}: A/AAAA records, no NAPTR/SRV).
"""

from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger
from zope.interface import implementer

from cgpro.core.rtinterfaces import DialogError, IUserAgent
from cgpro.sip.address import DEFAULT_PORTS, Peer
from cgpro.sip.dialog import Dialog, copyRequest, madeUpResponse, sdpOf, why
from cgpro.sip.digestclient import authorize
from cgpro.sip.interfaces import IClientTransactionUser
from cgpro.sip.message import Request
from cgpro.sip.responses import newTag, randomToken
from cgpro.sip.targets import peerForURI, transportOf, withHost
from cgpro.sip.uri import SIPParseError, SIPURI, parseURI

log = Logger()

#: A documentation address (RFC 5737) used only to ask the kernel which
#: local address its default route leaves from: the "primary" address a
#: Contact without a known peer carries.  No packet is sent to it.
_PROBE = "192.0.2.1"


def parseTarget(text):
    """
    @return: the L{SIPURI} of C{text} (C{sip:} added when it has no
        scheme, so C{bob@example.com} and C{example.com:5070} work).
    @raise DialogError: 416 when it is not a usable SIP URI.
    """
    if text.split(":", 1)[0].lower() not in ("sip", "sips", "tel"):
        text = "sip:" + text
    try:
        uri = parseURI(text)
    except SIPParseError as e:
        raise DialogError(416, str(e))
    if not isinstance(uri, SIPURI) or uri.host is None:
        raise DialogError(416, "Not a SIP URI: %s" % (text,))
    return uri


@implementer(IClientTransactionUser)
class Exchange:
    """
    One non-INVITE request of the user agent (in a dialog or not), with
    one retry when it is challenged (401/407) and credentials are known.

    @ivar deferred: fires with the final L{cgpro.sip.message.Response}
        (made up: 408 for a timeout, 503 for a transport error).
    """

    def __init__(self, ua, template, credentials, nextCSeq=None):
        """
        @param template: the request without our Via.
        @param credentials: C{(authName, password)} or L{None}.
        @param nextCSeq: callable returning the CSeq number of the retry
            (a dialog's next number); the template's plus one by default.
        """
        self.ua = ua
        self.template = template
        self.credentials = credentials
        self.nextCSeq = nextCSeq
        self.deferred = Deferred()
        self.destination = None
        self.retried = False
        self.done = False

    def send(self, destination):
        self.destination = destination
        try:
            self.ua.stack.transactions.request(copyRequest(self.template), destination, self)
        except Exception as e:
            self.finish(madeUpResponse(self.template, 503, "Service Unavailable (%s)" % (e,)))

    def finish(self, response):
        if not self.done:
            self.done = True
            self.deferred.callback(response)

    def responseReceived(self, transaction, response):
        if response.code < 200 or self.done:
            return
        if response.code in (401, 407) and self.credentials and not self.retried:
            template = self.template
            number = self.nextCSeq() if self.nextCSeq else template.cseq.number + 1
            template.setHeader("CSeq", "%d %s" % (number, template.method))
            if authorize(template, response, *self.credentials):
                self.retried = True
                self.send(self.destination)
                return
        self.finish(response)

    def timedOut(self, transaction):
        self.finish(madeUpResponse(self.template, 408))

    def transportFailed(self, transaction, reason):
        self.finish(madeUpResponse(self.template, 503,
                                   "Service Unavailable (%s)" % (why(reason),)))


@implementer(IClientTransactionUser)
class ReInvite:
    """Our re-INVITE (RFC 3261 section 14.1) and its outcome."""

    def __init__(self, dialog, template):
        self.dialog = dialog
        self.template = template
        self.deferred = Deferred()
        self.done = False

    def send(self, destination):
        try:
            self.dialog.stack.transactions.request(copyRequest(self.template),
                                                   destination, self)
        except Exception as e:
            self._failed(503, str(e))

    def unreachable(self, failure):
        self._failed(503, why(failure))

    def responseReceived(self, transaction, response):
        code = response.code
        if code < 200:
            return
        dialog = self.dialog
        if code < 300:
            dialog._acknowledge(response)
            if not self.done:
                self.done = True
                dialog._reinviting = False
                sdp = sdpOf(response)
                if sdp is not None:
                    dialog.remoteSDP = sdp
                self.deferred.callback(sdp)
            return
        self._failed(code, response.reason)

    def timedOut(self, transaction):
        self._failed(408, "Request Timeout")

    def transportFailed(self, transaction, reason):
        self._failed(503, why(reason))

    def _failed(self, code, reason):
        if self.done:
            return
        self.done = True
        self.dialog._reinviting = False
        self.dialog._checkAlive(code, "INVITE")
        self.deferred.errback(DialogError(code, reason))


@implementer(IUserAgent)
class UserAgent:
    """
    The user agent of one L{cgpro.sip.stack.SIPStack}.

    @ivar stack: the stack.
    @ivar dialogs: the live dialogs by C{(Call-ID, local tag)}.
    """

    def __init__(self, stack):
        self.stack = stack
        self.dialogs = {}

    # -- IUserAgent --------------------------------------------------------

    def answerable(self, transaction, request):
        dialog = Dialog.fromRequest(self, transaction, request)
        self.dialogs[dialog.key] = dialog
        return dialog

    def authenticate(self, dialog, realm):
        authenticator = self.stack.authenticator
        result = authenticator.verify(dialog.request, realm, proxy=True)
        if result.status == "ok":
            dialog.authenticated = result.account
            return result.account
        if result.status == "failed":
            log.info("SIP: wrong credentials for {user} calling an application",
                     user=result.username)
            dialog.reject(403)
            return None
        dialog.reject(407, headers=authenticator.challenge(
            realm, proxy=True, stale=result.status == "stale"))
        return None

    def call(self, target, fromURI, sdp, owner, fromName=None, toURI=None, via=None,
             credentials=None, headers=()):
        uri = parseTarget(target)
        dialog = Dialog.outgoing(self, uri, fromURI, sdp, owner, fromName,
                                 toURI or str(uri), credentials, headers)
        self.dialogs[dialog.key] = dialog
        dialog.start(self.destinationFor(uri, via))
        return dialog

    def request(self, method, target, fromURI, toURI=None, headers=(), body=b"",
                contentType=None, via=None, credentials=None, callId=None, cseq=1):
        """
        The To defaults to C{target}, except for a REGISTER, whose To is
        the address being registered: C{fromURI} (RFC 3261 section 10.2).

        @param callId: the Call-ID to use (a registration's refreshes keep
            one, RFC 3261 section 10.2), a new one by default; C{cseq} its
            CSeq number (the digest retry uses the next).
        """
        uri = parseTarget(target)
        if toURI is None and method == "REGISTER":
            toURI = fromURI
        template = Request(method, uri)
        template.headers = [
            ["Max-Forwards", "70"],
            ["From", "<%s>;tag=%s" % (fromURI, newTag())],
            ["To", "<%s>" % (toURI or str(uri),)],
            ["Call-ID", callId or randomToken(12)],
            ["CSeq", "%d %s" % (cseq, method)]]
        for name, value in headers:
            template.addHeader(name, value)
        if body:
            template.setHeader("Content-Type", contentType or "text/plain")
            template.body = body
        exchange = self.exchange(template, credentials)
        self.destinationFor(uri, via).addCallbacks(
            exchange.send, lambda f: exchange.finish(madeUpResponse(
                template, 503, "Cannot resolve %s" % (uri.host,))))
        return exchange.deferred

    def localDomain(self, host):
        """See L{IUserAgent.localDomain}: the stack's own answer."""
        return self.stack.localDomain(host)

    def respond(self, transaction, code, reason=None):
        """See L{IUserAgent.respond}."""
        self.stack.respond(transaction, code, reason)

    def contactFor(self, user, peer=None):
        """
        Without C{peer}, the address is the one our default route leaves
        from over UDP (or the advertised address): what a registrar far
        away can reach, which C{127.0.0.1} is not.
        """
        if peer is None:
            peer = Peer("UDP", _PROBE, 5060)
        host, port = self.stack.transport.localAddress(peer)
        if ":" in host:
            host = "[%s]" % (host,)
        suffix = "" if peer.transport == "UDP" else ";transport=%s" % (
            peer.transport.lower(),)
        if user:
            return "sip:%s@%s:%d%s" % (user, host, port, suffix)
        return "sip:%s:%d%s" % (host, port, suffix)

    def exchange(self, template, credentials, nextCSeq=None):
        """@return: a new L{Exchange} for C{template} (not sent yet)."""
        return Exchange(self, template, credentials, nextCSeq)

    def reInvite(self, dialog, template):
        """@return: a new L{ReInvite} of C{dialog} (not sent yet)."""
        return ReInvite(dialog, template)

    # -- where requests go ---------------------------------------------------

    def ownAddress(self, transport="UDP"):
        """
        @return: the L{Peer} of our own listener of C{transport}, for the
            requests that must pass through our proxy (see the module
            docstring).  An advertised (NAT) address may not be reachable
            from inside, so the loopback address is used then.
        """
        host, port = self.stack.transport.localAddress(
            Peer(transport, "127.0.0.1", DEFAULT_PORTS.get(transport, 5060)))
        if host == getattr(self.stack.transport, "advertised", None):
            host = "127.0.0.1"
        return Peer(transport, host, port)

    def destinationFor(self, uri, via=None):
        """
        Where to send a request for C{uri}.

        @param via: C{'host[:port]'} (or a SIP URI) of a proxy to use
            instead of C{uri}'s host.
        @return: a L{Deferred} firing with a L{Peer}, or failing.
        """
        if via:
            try:
                uri = parseTarget(via)
            except DialogError as e:
                return fail(e)
        if not isinstance(uri, SIPURI) or uri.host is None:
            return fail(DialogError(416, "Cannot send to %s" % (uri,)))
        transport = transportOf(uri)
        if transport not in DEFAULT_PORTS:
            transport = "UDP"
        if self.stack.localDomain(uri.host, uri.port, transport) is not None:
            return succeed(self.ownAddress(transport))
        peer = peerForURI(uri, transport)
        if peer is not None:
            return succeed(peer)
        resolved = self.stack.reactor.resolve(uri.host.strip("[]"))
        return resolved.addCallback(lambda ip: peerForURI(withHost(uri, ip), transport))

    # -- what the stack offers us ------------------------------------------

    def handleRequest(self, transaction, request):
        """
        @return: whether C{request} (with a To tag) belongs to one of our
            dialogs and was taken.
        """
        try:
            tag = request.toAddr.tag
            if tag is None:
                return False
            dialog = self.dialogs.get((request.callId, tag))
        except SIPParseError:
            return False
        if dialog is None:
            return False
        dialog.requestReceived(transaction, request)
        return True

    def ackReceived(self, request, source):
        """@return: whether the ACK was for one of our 2xx responses."""
        try:
            dialog = self.dialogs.get((request.callId, request.toAddr.tag))
        except SIPParseError:
            return False
        if dialog is None:
            return False
        dialog.ackReceived(request)
        return True

    def cancelReceived(self, transaction, cancel):
        """@return: whether C{transaction} is an incoming call of ours."""
        dialog = self.dialogs.get((cancel.callId, transaction.toTag))
        if dialog is None or dialog.st is not transaction:
            return False
        dialog.cancelled()
        return True

    def strayResponse(self, response, source):
        """
        A response no transaction matched: a 2xx retransmission for an
        INVITE of ours (re-ACKed).  Only a response with our Via alone is
        ours; one with more Vias is the proxy's to pass on.

        @return: whether it was taken.
        """
        try:
            if len(response.via) != 1:
                return False
            dialog = self.dialogs.get((response.callId, response.fromAddr.tag))
        except SIPParseError:
            return False
        if dialog is None:
            return False
        dialog.strayResponse(response)
        return True

    # -- bookkeeping ---------------------------------------------------------

    def forget(self, dialog):
        if self.dialogs.get(dialog.key) is dialog:
            del self.dialogs[dialog.key]

    def stop(self):
        """
        Service stop: end every dialog (BYE, CANCEL or 480) without
        waiting for the answers, and forget them.
        """
        for dialog in list(self.dialogs.values()):
            try:
                dialog.bye()
            except Exception:
                log.failure("SIP: dialog {callId} not ended", callId=dialog.callId)
        self.dialogs.clear()

