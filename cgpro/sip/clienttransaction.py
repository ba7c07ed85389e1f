# -*- test-case-name: tests.sip.test_transaction -*-
"""
The client transaction of RFC 3261 section 17.1: a request we send, its
retransmissions over UDP (Timers A and E), its timeout (B and F), the ACK
for a non-2xx final response, the CANCEL of a pending INVITE, and the wait
states (D, K, and RFC 6026's "accepted" for forked 2xx responses).

L{cgpro.sip.transaction.TransactionLayer} creates and matches them; see
that module for the design (the timing wheel, slots, no closures).
"""

from twisted.logger import Logger
from zope.interface import implementer

from cgpro.sip.interfaces import (
    ACCEPTED, CALLING, COMPLETED, PROCEEDING, TERMINATED, TRYING, IClientTransaction,
    IClientTransactionUser)
from cgpro.sip.message import Request

log = Logger()


@implementer(IClientTransaction)
class ClientTransaction:
    """
    One client transaction (RFC 3261 section 17.1), INVITE or not.

    @ivar request: the request as sent, our Via on top.
    @ivar destination: the L{cgpro.sip.address.Peer} it is sent to.
    @ivar branch: the branch of our Via.
    @ivar method: the request method.
    @ivar user: the L{IClientTransactionUser} told of responses.
    @ivar state: C{"calling"} (INVITE) or C{"trying"} (non-INVITE),
        C{"proceeding"}, C{"completed"}, C{"accepted"} (INVITE after a
        2xx, while forked 2xx responses may still come; RFC 6026) or
        C{"terminated"}.
    @ivar reliable: whether C{destination}'s transport is reliable (no
        Timer A or E; Timers D and K are zero).
    """

    __slots__ = ("request", "destination", "branch", "method", "user",
                 "state", "reliable", "_layer", "_key", "_invite", "_via",
                 "_ack", "_cancel", "_retransmit", "_timeout", "_interval")

    def __init__(self, layer, request, destination, user, branch, via,
                 reliable):
        """
        @param layer: the owning L{TransactionLayer}.
        @param via: the text of our top Via, copied into ACK and CANCEL.
        """
        self.request = request
        self.destination = destination
        self.branch = branch
        self.method = method = request.method
        self.user = user
        self._invite = invite = method == "INVITE"
        self.state = CALLING if invite else TRYING
        self.reliable = reliable
        self._layer = layer
        self._key = (branch, method)
        self._via = via
        self._ack = None
        self._cancel = None  # None, PENDING (wait for a 1xx) or the CANCEL
        self._retransmit = None
        self._timeout = None
        self._interval = 0.0

    def __repr__(self):
        return "<ClientTransaction %s %s %s>" % (
            self.method, self.branch, self.state)

    def _start(self):
        """Arm Timers A and B (INVITE) or E and F (non-INVITE)."""
        layer = self._layer
        wheel = layer.wheel
        t1 = layer.t1
        if not self.reliable:
            self._interval = t1
            self._retransmit = wheel.schedule(
                t1, self._timerA if self._invite else self._timerE)
        self._timeout = wheel.schedule(
            64 * t1, self._timerB if self._invite else self._timerF)

    def cancel(self):
        """
        Cancel an INVITE (RFC 3261 section 9.1): send a CANCEL now if a
        provisional response has arrived, else as soon as one does; do
        nothing once a final response has arrived, for a non-INVITE
        transaction, or if a CANCEL was already asked for.

        The CANCEL is a non-INVITE client transaction of its own whose
        responses are not reported; the answer that matters is the 487
        (or a final response that crossed the CANCEL) to the INVITE.  If
        none comes within 64*T1 of the CANCEL, the INVITE transaction is
        given up and its user told L{IClientTransactionUser.timedOut}.
        """
        if not self._invite or self._cancel is not None:
            return
        if self.state == CALLING:
            self._cancel = _PENDING
        elif self.state == PROCEEDING:
            self._sendCancel()

    def terminate(self):
        """
        Stop every timer and forget the transaction: later responses to
        it go to L{ITransactionUser.strayResponse}.
        """
        if self.state != TERMINATED:
            self._terminate()

    def _sendCancel(self):
        layer = self._layer
        cancel = self._derive("CANCEL", None)
        self._cancel = cancel
        layer._startClient(cancel, self.destination, _IGNORE, self.branch,
                           self._via)
        if self._timeout is not None:
            self._timeout.cancel()
        self._timeout = layer.wheel.schedule(64 * layer.t1,
                                             self._cancelExpired)

    def _derive(self, method, to):
        """
        Build the ACK (RFC 3261 section 17.1.1.3) or CANCEL (section 9.1)
        for our request: same Request-URI, Call-ID, From and CSeq number,
        our Via alone, the Route set copied, Max-Forwards 70.

        @param to: the raw To value to use (the response's, with its tag,
            for an ACK), or L{None} for the request's own.
        """
        original = self.request
        derived = Request(method, original.requestURI)
        headers = [["Via", self._via], ["Max-Forwards", "70"]]
        routes = []
        for name, value in original.headers:
            if name == "From" or name == "Call-ID":
                headers.append([name, value])
            elif name == "To":
                headers.append([name, value if to is None else to])
            elif name == "Route":
                routes.append([name, value])
        headers.append(["CSeq", "%d %s" % (original.cseq.number, method)])
        headers.extend(routes)
        derived.headers = headers
        return derived

    def _receive(self, response):
        """A response matched this transaction (RFC 3261 17.1.1.2/17.1.2.2)."""
        code = response.code
        state = self.state
        if self._invite:
            if state == CALLING or state == PROCEEDING:
                if code < 200:
                    if state == CALLING:
                        self._cancelTimers()
                        self.state = PROCEEDING
                    self.user.responseReceived(self, response)
                    if self._cancel is _PENDING and self.state == PROCEEDING:
                        self._sendCancel()
                    return
                self._cancelTimers()
                layer = self._layer
                if code < 300:
                    self.state = ACCEPTED
                    self._timeout = layer.wheel.schedule(64 * layer.t1,
                                                         self._expire)
                else:
                    self.state = COMPLETED
                    self._ack = ack = self._derive(
                        "ACK", response.getHeader("To"))
                    layer.transport.sendRequest(ack, self.destination)
                    if self.reliable:
                        self._terminate()
                    else:
                        self._timeout = layer.wheel.schedule(
                            layer.timerD, self._expire)
                self.user.responseReceived(self, response)
            elif state == ACCEPTED:
                if 200 <= code < 300:
                    self.user.responseReceived(self, response)
            elif state == COMPLETED and code >= 300:
                self._layer.transport.sendRequest(self._ack, self.destination)
            return
        if state == TRYING or state == PROCEEDING:
            if code < 200:
                self.state = PROCEEDING
            else:
                self._cancelTimers()
                self.state = COMPLETED
                if self.reliable:
                    self._terminate()
                else:
                    layer = self._layer
                    self._timeout = layer.wheel.schedule(layer.t4,
                                                         self._expire)
            self.user.responseReceived(self, response)

    def _timerA(self):
        """Resend the INVITE, doubling the interval each time."""
        due = self._retransmit.deadline
        self._retransmit = None
        if self.state != CALLING:
            return
        layer = self._layer
        layer.retransmissions += 1
        layer.transport.sendRequest(self.request, self.destination)
        self._interval *= 2
        self._retransmit = layer._scheduleAt(due + self._interval,
                                             self._timerA)

    def _timerE(self):
        """
        Resend the request, doubling the interval up to T2; T2 once a
        provisional response has arrived.
        """
        due = self._retransmit.deadline
        self._retransmit = None
        state = self.state
        if state != TRYING and state != PROCEEDING:
            return
        layer = self._layer
        layer.retransmissions += 1
        layer.transport.sendRequest(self.request, self.destination)
        t2 = layer.t2
        if state == PROCEEDING:
            interval = t2
        else:
            interval = self._interval * 2
            if interval > t2:
                interval = t2
        self._interval = interval
        self._retransmit = layer._scheduleAt(due + interval, self._timerE)

    def _timerB(self):
        """No response to the INVITE within 64*T1: time out."""
        self._timeout = None
        if self.state == CALLING:
            self._terminate()
            self.user.timedOut(self)

    def _timerF(self):
        """No final response within 64*T1: time out."""
        self._timeout = None
        if self.state == TRYING or self.state == PROCEEDING:
            self._terminate()
            self.user.timedOut(self)

    def _cancelExpired(self):
        """
        64*T1 after our CANCEL the INVITE still has no final response:
        consider it cancelled (RFC 3261 section 9.1).
        """
        self._timeout = None
        if self.state == PROCEEDING:
            self._terminate()
            self.user.timedOut(self)

    def _expire(self):
        """Timers D and K, and the end of the wait after a 2xx."""
        self._timeout = None
        self._terminate()

    def _fail(self, reason):
        """The transport could not send to our destination."""
        self._terminate()
        self._layer.wheel.schedule(0, self.user.transportFailed, self, reason)

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
        self._layer._forgetClient(self)


#: Marks a CANCEL asked for before any provisional response.
_PENDING = object()


@implementer(IClientTransactionUser)
class _IgnoringUser:
    """
    The user of the CANCEL transactions we start ourselves: the outcome
    of a CANCEL shows in the response to its INVITE, so nothing here.
    """

    def responseReceived(self, transaction, response):
        pass

    def timedOut(self, transaction):
        pass

    def transportFailed(self, transaction, reason):
        pass


_IGNORE = _IgnoringUser()


def pushVia(message, value):
    """
    Put a Via above the message's existing ones (or first, if it has
    none) and drop the cached parse of Via only.
    """
    headers = message.headers
    index = 0
    for i, header in enumerate(headers):
        if header[0] == "Via":
            index = i
            break
    headers.insert(index, ["Via", value])
    message._cache.pop("Via", None)
