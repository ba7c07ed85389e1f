# -*- test-case-name: tests.sip.test_transaction -*-
"""
The SIP transaction layer (RFC 3261 section 17).

A transaction is one request and every response to it.  This module keeps
the four state machines of section 17 (INVITE and non-INVITE, client and
server) so that the layers above never see a retransmission: requests that
arrive again are absorbed here and answered with the last response, the
ACK for a non-2xx final response is generated and absorbed here, and
requests we send over UDP are retransmitted here until answered.

Design, for a proxy that must carry thousands of transactions a second in
Python:

  - every timer is filed on one L{TimerWheel} (never a C{callLater} per
    transaction) and each transaction holds at most two of them: one
    retransmission timer (A, E or G) and one state timer (B, D, F, H, I,
    J, K and the RFC 6026 wait);
  - transactions are found by tuples of the strings already parsed from
    the top Via and the method, in two dictionaries; a transaction removes
    itself from its dictionary the moment it terminates, so memory follows
    the number of live transactions and nothing else;
  - the classes use C{__slots__}, timers are bound methods rather than
    closures, and a message is never parsed twice (the lazy typed headers
    of L{cgpro.sip.message} are cached on the message).

Two places follow RFC 6026 rather than RFC 3261, because a forking proxy
needs them: after a 2xx, an INVITE client transaction stays matchable for
64*T1 (state C{"accepted"}) so that 2xx responses from other forks still
reach its user, and an INVITE server transaction does the same (state
C{"accepted"}) so that those further 2xx responses can be sent upstream
through it and retransmitted INVITEs are absorbed instead of being taken
for new requests.
"""

from twisted.logger import Logger
from zope.interface import implementer

from cgpro.sip.clienttransaction import ClientTransaction, pushVia
from cgpro.sip.interfaces import (  # noqa: F401  (the states are part of this module's API)
    ACCEPTED, CALLING, COMPLETED, CONFIRMED, PROCEEDING, TERMINATED, TIMER_D, TRYING,
    IServerTransaction, _WAITING)
from cgpro.sip.message import Request, SIPParseError
from cgpro.sip.responses import BRANCH_MAGIC, makeResponse, newBranch, newTag
from cgpro.sip.timers import TimerWheel

log = Logger()

@implementer(IServerTransaction)
class ServerTransaction:
    """
    One server transaction (RFC 3261 section 17.2), INVITE or not.

    Created by L{TransactionLayer} for every new request except ACK; the
    transaction user answers through L{respond}.

    @ivar request: the request that created the transaction.
    @ivar source: the L{cgpro.sip.address.Peer} it came from; every
        response goes back there.
    @ivar method: the request method.
    @ivar state: C{"trying"} (non-INVITE), C{"proceeding"},
        C{"completed"}, C{"confirmed"} (INVITE, ACK received),
        C{"accepted"} (INVITE, 2xx sent; RFC 6026) or C{"terminated"}.
    @ivar lastResponse: the last response sent, or L{None}.
    @ivar reliable: whether C{source}'s transport is reliable (no Timer G,
        Timers I and J are zero).
    """

    __slots__ = ("request", "source", "method", "state", "lastResponse",
                 "reliable", "_layer", "_key", "_invite", "_toTag",
                 "_retransmit", "_timeout", "_interval")

    def __init__(self, layer, request, source, key, reliable):
        """
        @param layer: the owning L{TransactionLayer}.
        @param key: the match key this transaction is filed under.
        """
        self.request = request
        self.source = source
        self.method = method = request.method
        self._invite = invite = method == "INVITE"
        self.state = PROCEEDING if invite else TRYING
        self.lastResponse = None
        self.reliable = reliable
        self._layer = layer
        self._key = key
        self._toTag = None
        self._retransmit = None
        self._timeout = None
        self._interval = 0.0

    def __repr__(self):
        return "<ServerTransaction %s %s %s>" % (
            self.method, self._key[0], self.state)

    @property
    def toTag(self):
        """
        The To tag for every dialog-creating response to this request,
        made on first use (most proxied transactions never need one), so
        that a 180 and the 200 after it, and the 200 to a CANCEL and the
        487 to its INVITE (RFC 3261 section 9.2), carry the same tag.
        """
        if self._toTag is None:
            self._toTag = newTag()
        return self._toTag

    def isFinal(self):
        """
        @return: whether a final response was sent (or the transaction is
            over).
        """
        state = self.state
        return state != PROCEEDING and state != TRYING

    def respond(self, response):
        """
        Send C{response} and move through the states of RFC 3261 sections
        17.2.1 and 17.2.2.

        A response after a final one is ignored, except that an INVITE
        transaction that sent a 2xx sends every further 2xx (forked 2xx
        responses a proxy must pass upstream, RFC 3261 section 16.7 step
        5; RFC 6026 "Accepted").

        @param response: a L{cgpro.sip.message.Response} to the request.
        """
        state = self.state
        code = response.code
        layer = self._layer
        if state != PROCEEDING and state != TRYING:
            if state == ACCEPTED and 200 <= code < 300:
                self.lastResponse = response
                layer.transport.sendResponse(response, self.source)
            return
        self.lastResponse = response
        layer.transport.sendResponse(response, self.source)
        wheel = layer.wheel
        if code < 200:
            self.state = PROCEEDING
        elif self._invite:
            if code < 300:
                self.state = ACCEPTED
                self._timeout = wheel.schedule(64 * layer.t1, self._expire)
            else:
                self.state = COMPLETED
                t1 = layer.t1
                if not self.reliable:
                    self._interval = t1
                    self._retransmit = wheel.schedule(t1, self._timerG)
                self._timeout = wheel.schedule(64 * t1, self._timerH)
        else:
            self.state = COMPLETED
            if self.reliable:
                self._terminate()
            else:
                self._timeout = wheel.schedule(64 * layer.t1, self._expire)

    def _retransmitted(self):
        """
        The request arrived again: answer with the last response in
        "proceeding" and "completed", absorb it otherwise.
        """
        state = self.state
        if (state == PROCEEDING or state == COMPLETED) and (
                self.lastResponse is not None):
            self._layer.transport.sendResponse(self.lastResponse, self.source)

    def _ackReceived(self):
        """
        The ACK for our non-2xx final response: stop retransmitting it and
        absorb ACK retransmissions for Timer I.
        """
        self._cancelTimers()
        self.state = CONFIRMED
        if self.reliable:
            self._terminate()
        else:
            self._timeout = self._layer.wheel.schedule(
                self._layer.t4, self._expire)

    def _timerG(self):
        """Resend the final response, doubling the interval up to T2."""
        due = self._retransmit.deadline
        self._retransmit = None
        if self.state != COMPLETED:
            return
        layer = self._layer
        layer.retransmissions += 1
        layer.transport.sendResponse(self.lastResponse, self.source)
        interval = self._interval * 2
        if interval > layer.t2:
            interval = layer.t2
        self._interval = interval
        self._retransmit = layer._scheduleAt(due + interval, self._timerG)

    def _timerH(self):
        """No ACK came for our final response within 64*T1: give up."""
        self._timeout = None
        self._terminate()

    def _expire(self):
        """Timers I, J and the RFC 6026 wait after a 2xx: the end."""
        self._timeout = None
        self._terminate()

    def _cancelTimers(self):
        if self._retransmit is not None:
            self._retransmit.cancel()
            self._retransmit = None
        if self._timeout is not None:
            self._timeout.cancel()
            self._timeout = None

    def _terminate(self):
        self._cancelTimers()
        self.state = TERMINATED
        self._layer._forgetServer(self)


class TransactionLayer:
    """
    Matches messages to transactions, creates them, and owns their timers.

    @ivar transport: the L{cgpro.sip.interfaces.ISIPTransport}.
    @ivar user: the L{cgpro.sip.interfaces.ITransactionUser}.
    @ivar wheel: the L{TimerWheel} every timer is filed on.
    @ivar t1: RTT estimate (RFC 3261 Table 4), seconds.
    @ivar t2: the longest retransmit interval for non-INVITE requests and
        INVITE responses.
    @ivar t4: how long a message may stay in the network.
    @ivar timerD: Timer D over unreliable transports.
    @ivar autoTrying: whether a new INVITE is answered with 100 Trying
        when the user did not respond inside C{requestReceived}.
    @ivar retransmissions: messages resent by Timers A, E and G.
    @ivar absorbed: retransmitted requests (and ACKs) absorbed.
    """

    def __init__(self, reactor, transport, user, wheel=None, t1=0.5, t2=4.0,
                 t4=5.0, autoTrying=True):
        """
        @param reactor: an L{twisted.internet.interfaces.IReactorTime},
            for the wheel made when none is given.
        @param transport: an L{cgpro.sip.interfaces.ISIPTransport} that
            also has C{localAddress(destination)} returning the C{(host,
            port)} of our Via sent-by for C{destination}.
        @param user: the L{cgpro.sip.interfaces.ITransactionUser}.
        @param wheel: a shared L{TimerWheel}; by default one with 10 ms
            resolution is made (and stopped by L{stop}).
        """
        self.reactor = reactor
        self.transport = transport
        self.user = user
        self._ownWheel = wheel is None
        if wheel is None:
            wheel = TimerWheel(reactor, resolution=0.01)
        self.wheel = wheel
        self.t1 = t1
        self.t2 = t2
        self.t4 = t4
        self.timerD = TIMER_D
        self.autoTrying = autoTrying
        self.retransmissions = 0
        self.absorbed = 0
        self._servers = {}
        self._clients = {}
        self._byDestination = {}
        transport.setErrorHandler(self._transportError)

    @property
    def serverCount(self):
        """The number of live server transactions."""
        return len(self._servers)

    @property
    def clientCount(self):
        """The number of live client transactions."""
        return len(self._clients)

    # Incoming

    def messageReceived(self, message, source):
        """
        Handle one parsed message from the transport.

        @param message: a L{Request} or L{cgpro.sip.message.Response}.
        @param source: the L{cgpro.sip.address.Peer} it came from.
        """
        if isinstance(message, Request):
            self._requestReceived(message, source)
        else:
            self._responseReceived(message, source)

    def _requestReceived(self, request, source):
        method = request.method
        try:
            via = request.via[0]
        except (SIPParseError, IndexError):
            return  # no way to answer without a Via
        try:
            branch = via.branch
            if branch is not None and branch.startswith(BRANCH_MAGIC):
                key = (branch, via.host, via.port,
                       "INVITE" if method == "ACK" else method)
            else:
                key = _legacyKey(request, via, method)
        except SIPParseError:
            if method != "ACK":
                self.respondStateless(request, source, 400)
            return
        st = self._servers.get(key)
        if st is not None:
            if method == "ACK":
                state = st.state
                if state == COMPLETED:
                    st._ackReceived()
                elif state == ACCEPTED:
                    self.user.ackReceived(request, source)
                else:
                    self.absorbed += 1
                return
            self.absorbed += 1
            st._retransmitted()
            return
        if method == "ACK":
            self.user.ackReceived(request, source)
            return
        try:
            request.validate()
        except SIPParseError:
            self.respondStateless(request, source, 400)
            return
        st = ServerTransaction(self, request, source, key,
                               self.transport.isReliable(source))
        self._servers[key] = st
        if method == "CANCEL":
            self._cancelReceived(st, key)
            return
        try:
            self.user.requestReceived(st, request)
        except Exception:
            log.failure("SIP transaction user failed on {method}",
                        method=method)
            if not st.isFinal():
                st.respond(makeResponse(request, 500, toTag=st.toTag))
            return
        if (st._invite and self.autoTrying and st.lastResponse is None
                and st.state == PROCEEDING):
            st.respond(makeResponse(request, 100))

    def _cancelReceived(self, st, key):
        """
        A new CANCEL (RFC 3261 section 9.2): 200 and tell the user if it
        matches an INVITE server transaction, 481 if not.
        """
        cancel = st.request
        invite = self._servers.get(key[:-1] + ("INVITE",))
        if invite is None:
            st.respond(makeResponse(cancel, 481, toTag=st.toTag))
            return
        st.respond(makeResponse(cancel, 200, toTag=invite.toTag))
        if not invite.isFinal():
            self.user.cancelReceived(invite, cancel)

    def _responseReceived(self, response, source):
        try:
            key = (response.via[0].branch, response.cseq.method)
        except (SIPParseError, IndexError, AttributeError):
            return
        ct = self._clients.get(key)
        if ct is None:
            self.user.strayResponse(response, source)
        else:
            ct._receive(response)

    # Outgoing

    def request(self, request, destination, user, branch=None):
        """
        Send a request statefully.

        Our Via goes on top of C{request}'s (C{SIP/2.0/<transport>
        host:port;branch=...;rport}, sent-by from
        C{transport.localAddress(destination)}) before it is sent.

        @param destination: the L{cgpro.sip.address.Peer} to send to.
        @param user: the L{IClientTransactionUser}; unused for ACK.
        @param branch: the branch for our Via, magic cookie included; a
            fresh random one by default.  A proxy passes its own to carry
            a loop-detection hash (RFC 3261 section 16.6 step 8) or, for
            an ACK forwarded statelessly, a branch computed from the
            request (section 16.11).  It must be unique per transaction.
        @return: the L{ClientTransaction}, or L{None} for an ACK (the ACK
            for a 2xx is its own transaction-less request, RFC 3261
            section 17.1.1.3 / 13.2.2.4).  Use L{ClientTransaction.cancel}
            rather than this to send a CANCEL.
        """
        host, port = self.transport.localAddress(destination)
        if branch is None:
            branch = newBranch()
        if ":" in host and host[:1] != "[":
            host = "[%s]" % (host,)
        if port is None:
            via = "SIP/2.0/%s %s;branch=%s;rport" % (
                destination.transport, host, branch)
        else:
            via = "SIP/2.0/%s %s:%d;branch=%s;rport" % (
                destination.transport, host, port, branch)
        pushVia(request, via)
        if request.method == "ACK":
            self.transport.sendRequest(request, destination)
            return None
        return self._startClient(request, destination, user, branch, via)

    def _startClient(self, request, destination, user, branch, via):
        ct = ClientTransaction(self, request, destination, user, branch, via,
                               self.transport.isReliable(destination))
        self._clients[ct._key] = ct
        sending = self._byDestination.get(destination)
        if sending is None:
            sending = self._byDestination[destination] = {}
        sending[ct] = None
        ct._start()
        try:
            self.transport.sendRequest(request, destination)
        except BaseException:
            ct._terminate()  # the caller gets the exception, not a zombie
            raise
        return ct

    def respondStateless(self, request, source, code, reason=None,
                         headers=()):
        """
        Answer a request without a server transaction: for requests
        refused before one exists (a 400 for a malformed request).

        @return: the L{cgpro.sip.message.Response} sent.
        """
        toTag = newTag() if code > 100 else None
        try:
            response = makeResponse(request, code, reason, toTag, headers)
        except SIPParseError:  # a malformed To: answer without a tag
            response = makeResponse(request, code, reason, None, headers)
        self.transport.sendResponse(response, source)
        return response

    # Bookkeeping

    def _scheduleAt(self, deadline, func):
        """
        Schedule a retransmission from the previous one's deadline rather
        than from when the wheel ran it, so that the wheel's lateness (up
        to one resolution per firing) does not add up over a series.
        """
        delay = deadline - self.wheel.reactor.seconds()
        return self.wheel.schedule(delay if delay > 0 else 0, func)

    def _forgetServer(self, st):
        servers = self._servers
        if servers.get(st._key) is st:
            del servers[st._key]

    def _forgetClient(self, ct):
        clients = self._clients
        if clients.get(ct._key) is ct:
            del clients[ct._key]
        sending = self._byDestination.get(ct.destination)
        if sending is not None:
            sending.pop(ct, None)
            if not sending:
                del self._byDestination[ct.destination]

    def _transportError(self, destination, reason):
        """
        The transport could not send to C{destination}: every client
        transaction still waiting for an answer from there fails.  The
        user hears of it on the next wheel tick, never from inside
        L{request}, so it always knows the transaction by then.
        """
        sending = self._byDestination.get(destination)
        if not sending:
            return
        for ct in list(sending):
            if ct.state in _WAITING:
                ct._fail(reason)

    def stop(self):
        """
        Cancel every timer and forget every transaction (service stop).
        """
        for st in list(self._servers.values()):
            st._cancelTimers()
            st.state = TERMINATED
        for ct in list(self._clients.values()):
            ct._cancelTimers()
            ct.state = TERMINATED
        self._servers.clear()
        self._clients.clear()
        self._byDestination.clear()
        if self._ownWheel:
            self.wheel.stop()


def _legacyKey(request, via, method):
    """
    The match key of an RFC 2543 request (no magic cookie; RFC 3261
    section 17.2.3), simplified: Request-URI, From tag, Call-ID, CSeq
    number and top Via, with ACK matching its INVITE.  The To tag is left
    out so that an ACK (which carries our tag) and a CANCEL find the
    INVITE.
    """
    return ("2543", str(request.requestURI), request.fromAddr.tag,
            request.callId, request.cseq.number, str(via),
            "INVITE" if method == "ACK" else method)
