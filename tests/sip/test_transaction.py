"""
Tests for L{cgpro.sip.transaction}: the RFC 3261 section 17 state
machines, driven by a L{Clock} and a fake transport that records what is
sent.
"""

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from cgpro.sip.address import Peer
from cgpro.sip.interfaces import (
    IClientTransaction, IClientTransactionUser, IServerTransaction,
    ISIPTransport, ITransactionUser)
from cgpro.sip.message import Request, Response, parseMessage, parseURI
from cgpro.sip.responses import makeResponse
from cgpro.sip.transaction import (
    ClientTransaction, ServerTransaction, TransactionLayer)

UDP = Peer("UDP", "192.0.2.10", 5060)
TCP = Peer("TCP", "192.0.2.10", 5060)
OTHER = Peer("UDP", "192.0.2.20", 5060)
LOCAL = ("192.0.2.1", 5060)

T1, T2, T4 = 0.5, 4.0, 5.0


@implementer(ISIPTransport)
class FakeTransport:
    """
    Records every message sent as C{(message, peer)}; reliability comes
    from the peer.
    """

    def __init__(self):
        self.sent = []
        self.errorHandler = None
        self.failOnSend = None

    def sendRequest(self, request, destination):
        self.sent.append((request, destination))
        if self.failOnSend is not None:
            self.errorHandler(destination, self.failOnSend)

    def sendResponse(self, response, source):
        self.sent.append((response, source))

    def isReliable(self, destination):
        return destination.reliable

    def setErrorHandler(self, handler):
        self.errorHandler = handler

    def localAddress(self, destination):
        return LOCAL

    def requests(self, method=None):
        return [m for m, _ in self.sent if isinstance(m, Request)
                and (method is None or m.method == method)]

    def responses(self, code=None):
        return [m for m, _ in self.sent if isinstance(m, Response)
                and (code is None or m.code == code)]


@implementer(ITransactionUser)
class FakeUser:
    """
    Records what the layer hands up; C{onRequest(st, request)} lets a test
    answer inside C{requestReceived}.
    """

    def __init__(self):
        self.events = []
        self.onRequest = None

    def requestReceived(self, transaction, request):
        self.events.append(("request", transaction, request))
        if self.onRequest is not None:
            self.onRequest(transaction, request)

    def ackReceived(self, request, source):
        self.events.append(("ack", request, source))

    def cancelReceived(self, transaction, cancel):
        self.events.append(("cancel", transaction, cancel))

    def strayResponse(self, response, source):
        self.events.append(("stray", response, source))

    def kinds(self):
        return [e[0] for e in self.events]


@implementer(IClientTransactionUser)
class FakeClientUser:
    """Records responses, time-outs and transport failures."""

    def __init__(self):
        self.events = []

    def responseReceived(self, transaction, response):
        self.events.append(("response", transaction, response.code))

    def timedOut(self, transaction):
        self.events.append(("timeout", transaction))

    def transportFailed(self, transaction, reason):
        self.events.append(("failed", transaction, reason))


def incoming(method="INVITE", branch="z9hG4bKc1", cseq=1, transport="UDP",
             toTag=None, cseqMethod=None, callId="call1@client"):
    """
    A request as parsed off the wire (a fresh parse each call, as a
    retransmission would be).
    """
    to = "<sip:bob@example.com>" + (";tag=%s" % toTag if toTag else "")
    branchParam = ";branch=%s" % branch if branch else ""
    text = (
        "%s sip:bob@example.com SIP/2.0\r\n"
        "Via: SIP/2.0/%s client.example.com:5060%s\r\n"
        "Max-Forwards: 70\r\n"
        "To: %s\r\n"
        "From: <sip:alice@example.com>;tag=a1\r\n"
        "Call-ID: %s\r\n"
        "CSeq: %d %s\r\n"
        "Content-Length: 0\r\n\r\n" % (
            method, transport, branchParam, to, callId, cseq,
            cseqMethod or method))
    return parseMessage(text.encode("ascii"))


def outgoing(method="INVITE", cseq=1, upstreamVia=True, routes=()):
    """
    A request for the layer to send: with an upstream Via (as a proxy
    forwards it) or without one (as a UA originates it).
    """
    headers = []
    if upstreamVia:
        headers.append(
            ("Via", "SIP/2.0/UDP client.example.com;branch=z9hG4bKup"))
    headers.extend([
        ("Max-Forwards", "69"),
        ("To", "<sip:bob@example.com>"),
        ("From", "<sip:alice@example.com>;tag=a1"),
        ("Call-ID", "out1@proxy"),
        ("CSeq", "%d %s" % (cseq, method)),
    ])
    for route in routes:
        headers.append(("Route", route))
    headers.append(("Contact", "<sip:alice@client.example.com>"))
    return Request(method, parseURI("sip:bob@192.0.2.10"), headers=headers)


def wire(message):
    """A message as the peer would receive it: serialized and re-parsed."""
    return parseMessage(message.serialize())


def answer(request, code, toTag="b1"):
    """The response a downstream UAS would send to C{request}."""
    return wire(makeResponse(wire(request), code,
                             toTag=toTag if code > 100 else None))


class LayerTestCase(SynchronousTestCase):
    """
    A layer on a L{Clock}, a L{FakeTransport} and a L{FakeUser}.
    """

    autoTrying = True

    def setUp(self):
        self.clock = Clock()
        self.transport = FakeTransport()
        self.user = FakeUser()
        self.layer = TransactionLayer(self.clock, self.transport, self.user,
                                      autoTrying=self.autoTrying)

    def sendTimes(self, until, match):
        """
        Advance the clock to C{until} in 10 ms steps.

        @param match: a predicate on sent messages.
        @return: the times at which matching messages were sent.
        """
        times = []
        seen = len(self.transport.sent)
        while self.clock.seconds() < until - 1e-9:
            self.clock.advance(0.01)
            for message, _ in self.transport.sent[seen:]:
                if match(message):
                    times.append(self.clock.seconds())
            seen = len(self.transport.sent)
        return times

    def assertTimes(self, actual, expected):
        """
        Timers fire no earlier than their deadline and at most one wheel
        resolution (10 ms) late.
        """
        self.assertEqual(len(actual), len(expected), (actual, expected))
        for a, e in zip(actual, expected):
            self.assertTrue(e - 1e-6 <= a <= e + 0.01 + 1e-6,
                            "%r not at %r" % (actual, expected))

    def assertEmpty(self):
        """Every table is empty and no timer is left on the wheel."""
        self.assertEqual(self.layer.serverCount, 0)
        self.assertEqual(self.layer.clientCount, 0)
        self.assertEqual(self.layer._byDestination, {})

    def receive(self, message, source=UDP):
        self.layer.messageReceived(message, source)

    def serverTransaction(self, method="INVITE", source=UDP, **kw):
        """Deliver a new request and return its server transaction."""
        self.receive(incoming(method, transport=source.transport, **kw),
                     source)
        st = self.user.events[-1][1]
        self.assertEqual(self.user.events[-1][0], "request")
        return st


class ServerInviteTests(LayerTestCase):
    """
    INVITE server transactions (RFC 3261 section 17.2.1) over UDP.
    """

    def test_interface(self):
        """
        A new INVITE reaches the user with an L{IServerTransaction} in
        "proceeding".
        """
        st = self.serverTransaction()
        self.assertTrue(verifyObject(IServerTransaction, st))
        self.assertIsInstance(st, ServerTransaction)
        self.assertEqual(st.state, "proceeding")
        self.assertEqual(st.method, "INVITE")
        self.assertEqual(st.source, UDP)
        self.assertFalse(st.isFinal())
        self.assertEqual(self.layer.serverCount, 1)

    def test_autoTrying(self):
        """
        A proxy answers a new INVITE with 100 Trying at once (RFC 3261
        section 16.2) so the UAC stops retransmitting; 100 has no To tag.
        """
        st = self.serverTransaction()
        [trying] = self.transport.responses()
        self.assertEqual(trying.code, 100)
        self.assertIsNone(trying.toAddr.tag)
        self.assertIs(st.lastResponse, trying)

    def test_noTryingAfterSynchronousResponse(self):
        """
        A user that answers inside C{requestReceived} gets no extra 100.
        """
        self.user.onRequest = lambda st, r: st.respond(
            makeResponse(r, 180, toTag=st.toTag))
        self.serverTransaction()
        self.assertEqual([r.code for r in self.transport.responses()], [180])

    def test_toTagIsStable(self):
        """
        C{toTag} is made once per transaction, so 180 and 200 agree.
        """
        st = self.serverTransaction()
        other = self.serverTransaction(branch="z9hG4bKc2")
        self.assertEqual(st.toTag, st.toTag)
        self.assertNotEqual(st.toTag, other.toTag)

    def test_retransmissionGetsLastProvisional(self):
        """
        A retransmitted INVITE is absorbed and answered with the last
        provisional response; the user sees it once.
        """
        st = self.serverTransaction()
        st.respond(makeResponse(st.request, 180, toTag=st.toTag))
        self.receive(incoming())
        self.assertEqual([r.code for r in self.transport.responses()],
                         [100, 180, 180])
        self.assertEqual(self.user.kinds(), ["request"])
        self.assertEqual(self.layer.absorbed, 1)

    def test_timerG(self):
        """
        A non-2xx final response is resent by Timer G at T1, 2T1, 4T1...
        capped at T2, until the ACK comes.
        """
        st = self.serverTransaction()
        st.respond(makeResponse(st.request, 486, toTag=st.toTag))
        self.assertEqual(st.state, "completed")
        self.assertTrue(st.isFinal())
        times = self.sendTimes(20, lambda m: getattr(m, "code", 0) == 486)
        self.assertTimes(times, [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5])
        self.assertEqual(self.layer.retransmissions, 7)

    def test_retransmissionInCompletedGetsFinal(self):
        """
        A retransmitted INVITE after the final response gets the final
        response again.
        """
        st = self.serverTransaction()
        st.respond(makeResponse(st.request, 486, toTag=st.toTag))
        self.receive(incoming())
        self.assertEqual([r.code for r in self.transport.responses()],
                         [100, 486, 486])

    def test_ackConfirmsThenTimerI(self):
        """
        The ACK stops Timer G and moves to "confirmed"; ACK
        retransmissions are absorbed; Timer I (T4) ends the transaction.
        """
        st = self.serverTransaction()
        st.respond(makeResponse(st.request, 486, toTag=st.toTag))
        self.clock.advance(0.2)
        self.receive(incoming("ACK", toTag=st.toTag))
        self.assertEqual(st.state, "confirmed")
        self.receive(incoming("ACK", toTag=st.toTag))
        self.assertEqual(self.user.kinds(), ["request"])
        self.assertEqual(self.layer.absorbed, 1)
        self.assertEqual(
            self.sendTimes(4.9 + 0.2, lambda m: True), [])
        self.assertEqual(st.state, "confirmed")
        self.clock.advance(0.2)
        self.assertEqual(st.state, "terminated")
        self.assertEmpty()

    def test_timerH(self):
        """
        Without an ACK the transaction ends after 64*T1 (Timer H) and
        stops retransmitting.
        """
        st = self.serverTransaction()
        st.respond(makeResponse(st.request, 486, toTag=st.toTag))
        self.clock.advance(31.9)
        self.assertEqual(st.state, "completed")
        self.clock.advance(0.2)
        self.assertEqual(st.state, "terminated")
        self.assertEmpty()
        sent = len(self.transport.sent)
        self.clock.advance(10)
        self.assertEqual(len(self.transport.sent), sent)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_2xxAccepted(self):
        """
        After a 2xx the transaction is "accepted" (RFC 6026): INVITE
        retransmissions are absorbed without reaching the user, further
        2xx responses (other forks) are sent, other responses are not,
        and after 64*T1 the transaction is forgotten.
        """
        st = self.serverTransaction()
        st.respond(makeResponse(st.request, 200, toTag="fork1"))
        self.assertEqual(st.state, "accepted")
        self.assertTrue(st.isFinal())
        self.receive(incoming())
        st.respond(makeResponse(st.request, 200, toTag="fork2"))
        st.respond(makeResponse(st.request, 486, toTag="fork3"))
        self.assertEqual([(r.code, r.toAddr.tag)
                          for r in self.transport.responses()],
                         [(100, None), (200, "fork1"), (200, "fork2")])
        self.assertEqual(self.user.kinds(), ["request"])
        self.assertEqual(self.layer.retransmissions, 0)
        self.clock.advance(31.9)
        self.assertEqual(self.layer.serverCount, 1)
        self.clock.advance(0.2)
        self.assertEqual(st.state, "terminated")
        self.assertEmpty()

    def test_ackFor2xxGoesToUser(self):
        """
        The ACK for a 2xx is a new request with its own branch: it reaches
        C{ackReceived}, as does an ACK reusing the INVITE's branch while
        the transaction is "accepted".
        """
        st = self.serverTransaction()
        st.respond(makeResponse(st.request, 200, toTag="t"))
        self.receive(incoming("ACK", branch="z9hG4bKack", toTag="t"))
        self.receive(incoming("ACK", toTag="t"))
        self.assertEqual(self.user.kinds(), ["request", "ack", "ack"])
        self.assertEqual(self.user.events[1][2], UDP)
        self.assertEqual(st.state, "accepted")

    def test_ackWithoutTransaction(self):
        """
        An ACK matching nothing (the transaction long gone) goes to
        C{ackReceived}; no response is ever sent to an ACK.
        """
        self.receive(incoming("ACK", toTag="t"))
        self.assertEqual(self.user.kinds(), ["ack"])
        self.assertEqual(self.transport.sent, [])
        self.assertEmpty()

    def test_respondAfterFinalIgnored(self):
        """
        Responses after a non-2xx final one are not sent.
        """
        st = self.serverTransaction()
        st.respond(makeResponse(st.request, 486, toTag=st.toTag))
        st.respond(makeResponse(st.request, 200, toTag=st.toTag))
        self.assertEqual([r.code for r in self.transport.responses()],
                         [100, 486])
        self.assertIs(st.lastResponse.code, 486)

    def test_userFailure(self):
        """
        A user that raises in C{requestReceived} is logged and the request
        answered with 500 rather than left hanging.
        """
        def boom(st, request):
            raise RuntimeError("boom")
        self.user.onRequest = boom
        self.receive(incoming())
        self.assertEqual([r.code for r in self.transport.responses()], [500])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class ServerInviteReliableTests(LayerTestCase):
    """
    INVITE server transactions over TCP: no Timer G, Timer I is zero.
    """

    def test_noTimerG(self):
        """
        The final response is sent once; Timer H still waits 64*T1 for
        the ACK.
        """
        st = self.serverTransaction(source=TCP)
        self.assertTrue(st.reliable)
        st.respond(makeResponse(st.request, 486, toTag=st.toTag))
        self.assertEqual(self.sendTimes(31.9, lambda m: True), [])
        self.assertEqual(st.state, "completed")
        self.clock.advance(0.2)
        self.assertEqual(st.state, "terminated")
        self.assertEmpty()

    def test_timerIZero(self):
        """
        The ACK ends the transaction at once over a reliable transport.
        """
        st = self.serverTransaction(source=TCP)
        st.respond(makeResponse(st.request, 486, toTag=st.toTag))
        self.receive(incoming("ACK", transport="TCP", toTag=st.toTag), TCP)
        self.assertEqual(st.state, "terminated")
        self.assertEmpty()
        self.assertEqual(self.user.kinds(), ["request"])


class ServerNonInviteTests(LayerTestCase):
    """
    Non-INVITE server transactions (RFC 3261 section 17.2.2).
    """

    def test_trying(self):
        """
        A new OPTIONS is "trying", gets no automatic 100, and its
        retransmissions are absorbed silently.
        """
        st = self.serverTransaction("OPTIONS")
        self.assertEqual(st.state, "trying")
        self.receive(incoming("OPTIONS"))
        self.assertEqual(self.transport.sent, [])
        self.assertEqual(self.user.kinds(), ["request"])
        self.assertEqual(self.layer.absorbed, 1)

    def test_proceedingAndCompleted(self):
        """
        In "proceeding" a retransmission gets the provisional response, in
        "completed" the final one; the final response is not retransmitted
        by any timer.
        """
        st = self.serverTransaction("REGISTER")
        st.respond(makeResponse(st.request, 100))
        self.assertEqual(st.state, "proceeding")
        self.receive(incoming("REGISTER"))
        st.respond(makeResponse(st.request, 200, toTag=st.toTag))
        self.assertEqual(st.state, "completed")
        self.receive(incoming("REGISTER"))
        self.assertEqual([r.code for r in self.transport.responses()],
                         [100, 100, 200, 200])
        self.assertEqual(self.sendTimes(10, lambda m: True), [])
        self.assertEqual(self.layer.retransmissions, 0)

    def test_timerJ(self):
        """
        A completed non-INVITE transaction absorbs retransmissions for
        64*T1 over UDP (Timer J), then is forgotten.
        """
        st = self.serverTransaction("OPTIONS")
        st.respond(makeResponse(st.request, 200, toTag=st.toTag))
        self.clock.advance(31.9)
        self.assertEqual(self.layer.serverCount, 1)
        self.clock.advance(0.2)
        self.assertEqual(st.state, "terminated")
        self.assertEmpty()
        self.receive(incoming("OPTIONS"))
        self.assertEqual(self.user.kinds(), ["request", "request"])

    def test_timerJZeroReliable(self):
        """
        Over TCP Timer J is zero: the final response ends the transaction.
        """
        st = self.serverTransaction("OPTIONS", source=TCP)
        st.respond(makeResponse(st.request, 200, toTag=st.toTag))
        self.assertEqual(st.state, "terminated")
        self.assertEmpty()

    def test_methodIsPartOfTheKey(self):
        """
        Two requests with the same branch but different methods are
        different transactions (RFC 3261 section 17.2.3).
        """
        self.serverTransaction("OPTIONS")
        self.serverTransaction("MESSAGE")
        self.assertEqual(self.layer.serverCount, 2)

    def test_malformedGets400(self):
        """
        A request that fails validation (CSeq method differs from the
        method) is refused statelessly with 400; no transaction is made.
        """
        self.receive(incoming("OPTIONS", cseqMethod="INFO"))
        [response] = self.transport.responses()
        self.assertEqual(response.code, 400)
        self.assertIsNotNone(response.toAddr.tag)
        self.assertEqual(self.user.events, [])
        self.assertEmpty()

    def test_badViaDropped(self):
        """
        A request whose Via cannot be parsed cannot be answered (the
        response is routed by Via): it is dropped.
        """
        request = incoming("OPTIONS")
        request.setHeader("Via", "garbage")
        self.receive(request)
        self.assertEqual(self.transport.sent, [])
        self.assertEqual(self.user.events, [])
        self.assertEmpty()

    def test_badResponseDropped(self):
        """
        A response without a usable Via is dropped, not reported as stray.
        """
        response = answer(outgoing(), 200)
        response.setHeader("Via", "garbage")
        self.receive(response)
        self.assertEqual(self.user.events, [])

    def test_respondStateless(self):
        """
        C{respondStateless} answers without a transaction, with a fresh To
        tag and the extra headers given.
        """
        request = incoming("OPTIONS")
        response = self.layer.respondStateless(
            request, UDP, 420, headers=[("Unsupported", "foo")])
        self.assertEqual(self.transport.sent, [(response, UDP)])
        self.assertEqual(response.reason, "Bad Extension")
        self.assertEqual(response.getHeader("Unsupported"), "foo")
        self.assertIsNotNone(response.toAddr.tag)
        self.assertEmpty()


class ServerCancelTests(LayerTestCase):
    """
    CANCEL arriving at the server side (RFC 3261 section 9.2).
    """

    def test_cancelMatchesInvite(self):
        """
        A CANCEL for a pending INVITE is answered 200 with the INVITE's To
        tag, and the user is told with the INVITE's transaction.
        """
        st = self.serverTransaction()
        self.receive(incoming("CANCEL"))
        self.assertEqual(self.user.kinds(), ["request", "cancel"])
        self.assertIs(self.user.events[1][1], st)
        self.assertEqual(self.user.events[1][2].method, "CANCEL")
        ok = self.transport.responses(200)[0]
        self.assertEqual(str(ok.cseq), "1 CANCEL")
        self.assertEqual(ok.toAddr.tag, st.toTag)
        st.respond(makeResponse(st.request, 487, toTag=st.toTag))
        self.assertEqual(self.transport.responses(487)[0].toAddr.tag,
                         st.toTag)

    def test_cancelRetransmission(self):
        """
        A retransmitted CANCEL gets the 200 again and is not reported
        twice.
        """
        self.serverTransaction()
        self.receive(incoming("CANCEL"))
        self.receive(incoming("CANCEL"))
        self.assertEqual(len(self.transport.responses(200)), 2)
        self.assertEqual(self.user.kinds(), ["request", "cancel"])
        self.assertEqual(self.layer.absorbed, 1)

    def test_cancelWithoutInvite(self):
        """
        A CANCEL matching no INVITE transaction gets 481.
        """
        self.receive(incoming("CANCEL"))
        [response] = self.transport.responses()
        self.assertEqual(response.code, 481)
        self.assertEqual(self.user.events, [])

    def test_cancelAfterFinal(self):
        """
        A CANCEL after the INVITE was answered gets 200 but does not
        reach the user: there is nothing left to cancel.
        """
        st = self.serverTransaction()
        st.respond(makeResponse(st.request, 486, toTag=st.toTag))
        self.receive(incoming("CANCEL"))
        self.assertEqual(self.transport.responses()[-1].code, 200)
        self.assertEqual(self.user.kinds(), ["request"])

    def test_cancelOtherBranch(self):
        """
        A CANCEL with another branch matches nothing.
        """
        self.serverTransaction()
        self.receive(incoming("CANCEL", branch="z9hG4bKother"))
        self.assertEqual(self.transport.responses()[-1].code, 481)


class ServerLegacyTests(LayerTestCase):
    """
    RFC 2543 requests (no magic cookie in the branch, RFC 3261 section
    17.2.3) are matched by Request-URI, From tag, Call-ID, CSeq and top
    Via.
    """

    def test_retransmissionAbsorbed(self):
        """
        A retransmitted branchless INVITE is absorbed.
        """
        self.serverTransaction(branch=None)
        self.receive(incoming(branch=None))
        self.assertEqual(self.user.kinds(), ["request"])
        self.assertEqual(self.layer.absorbed, 1)
        self.receive(incoming(branch=None, callId="another@client"))
        self.assertEqual(self.user.kinds(), ["request", "request"])

    def test_ackAndCancel(self):
        """
        An ACK (carrying our To tag) and a CANCEL find the branchless
        INVITE's transaction.
        """
        st = self.serverTransaction(branch="1234")
        self.receive(incoming("CANCEL", branch="1234"))
        self.assertEqual(self.user.kinds(), ["request", "cancel"])
        st.respond(makeResponse(st.request, 487, toTag=st.toTag))
        self.receive(incoming("ACK", branch="1234", toTag=st.toTag))
        self.assertEqual(st.state, "confirmed")


class ClientInviteTests(LayerTestCase):
    """
    INVITE client transactions (RFC 3261 section 17.1.1) over UDP.
    """

    def setUp(self):
        LayerTestCase.setUp(self)
        self.cuser = FakeClientUser()

    def start(self, request=None, destination=UDP):
        if request is None:
            request = outgoing("INVITE", routes=["<sip:p2.example.com;lr>"])
        return self.layer.request(request, destination, self.cuser)

    def test_viaPushed(self):
        """
        Our Via goes on top, with the transport of the destination, the
        sent-by from C{localAddress}, a fresh branch and rport; the
        upstream Via stays below it.
        """
        ct = self.start()
        self.assertTrue(verifyObject(IClientTransaction, ct))
        self.assertIsInstance(ct, ClientTransaction)
        [(sent, peer)] = self.transport.sent
        self.assertEqual(peer, UDP)
        vias = wire(sent).via
        self.assertEqual(len(vias), 2)
        self.assertEqual(str(vias[0]),
                         "SIP/2.0/UDP 192.0.2.1:5060;branch=%s;rport"
                         % (ct.branch,))
        self.assertTrue(ct.branch.startswith("z9hG4bK"))
        self.assertEqual(vias[1].branch, "z9hG4bKup")
        self.assertEqual(sent.via[0].branch, ct.branch)
        self.assertEqual(ct.state, "calling")
        self.assertEqual(ct.destination, UDP)

    def test_viaPushedWithoutUpstream(self):
        """
        A request we originate (no Via yet) gets ours as its only Via, and
        an IPv6 sent-by is bracketed.
        """
        self.transport.localAddress = lambda d: ("2001:db8::1", 5070)
        ct = self.start(outgoing(upstreamVia=False), Peer("TCP", "::2", 5060))
        [via] = wire(ct.request).via
        self.assertEqual(via.host, "[2001:db8::1]")
        self.assertEqual(via.port, 5070)
        self.assertEqual(via.transport, "TCP")

    def test_timerAAndB(self):
        """
        Over UDP the INVITE is resent at T1, 3T1, 7T1... (Timer A doubles
        without cap); at 64*T1 Timer B times out and the transaction is
        forgotten.
        """
        ct = self.start()
        times = self.sendTimes(40, lambda m: getattr(m, "method", "") ==
                               "INVITE")
        self.assertTimes(times, [0.5, 1.5, 3.5, 7.5, 15.5, 31.5])
        self.assertEqual(self.cuser.events, [("timeout", ct)])
        self.assertEqual(ct.state, "terminated")
        self.assertEqual(self.layer.retransmissions, 6)
        self.assertEmpty()

    def test_timerBTime(self):
        """
        Timer B fires at 64*T1, not before.
        """
        ct = self.start()
        self.clock.advance(31.99)
        self.assertEqual(self.cuser.events, [])
        self.clock.advance(0.02)
        self.assertEqual(self.cuser.events, [("timeout", ct)])

    def test_provisionalStopsTimers(self):
        """
        A provisional response stops Timers A and B: the transaction waits
        in "proceeding" for the user (a proxy's Timer C) to end it.
        """
        ct = self.start()
        self.receive(answer(ct.request, 180))
        self.assertEqual(ct.state, "proceeding")
        self.assertEqual(self.cuser.events, [("response", ct, 180)])
        self.assertEqual(self.sendTimes(100, lambda m: True), [])
        self.assertEqual(self.cuser.events, [("response", ct, 180)])
        ct.terminate()
        self.assertEqual(ct.state, "terminated")
        self.assertEmpty()
        self.receive(answer(ct.request, 200))
        self.assertEqual(self.user.kinds(), ["stray"])

    def test_ackForNon2xx(self):
        """
        A non-2xx final response is ACKed by the transaction (RFC 3261
        section 17.1.1.3): same Request-URI, Call-ID, From and CSeq number,
        our Via alone with the same branch, the response's To (with its
        tag), the Route set copied, Max-Forwards 70.
        """
        ct = self.start()
        self.receive(answer(ct.request, 486, toTag="busy"))
        self.assertEqual(ct.state,
                         "terminated" if ct.reliable else "completed")
        self.assertEqual(self.cuser.events, [("response", ct, 486)])
        [(ack, peer)] = [(m, p) for m, p in self.transport.sent
                         if getattr(m, "method", "") == "ACK"]
        self.assertEqual(peer, ct.destination)
        ack = wire(ack)
        ack.validate()
        self.assertEqual(str(ack.requestURI), "sip:bob@192.0.2.10")
        self.assertEqual([v.branch for v in ack.via], [ct.branch])
        self.assertEqual(ack.toAddr.tag, "busy")
        self.assertEqual(ack.fromAddr.tag, "a1")
        self.assertEqual(ack.callId, "out1@proxy")
        self.assertEqual(str(ack.cseq), "1 ACK")
        self.assertEqual(ack.getHeaders("Route"), ["<sip:p2.example.com;lr>"])
        self.assertEqual(ack.maxForwards, 70)
        self.assertIsNone(ack.getHeader("Contact"))

    def test_retransmittedFinalReAcked(self):
        """
        A retransmitted non-2xx final is absorbed by resending the ACK.
        """
        ct = self.start()
        self.receive(answer(ct.request, 486))
        self.receive(answer(ct.request, 486))
        self.assertEqual(len(self.transport.requests("ACK")), 2)
        self.assertEqual(self.cuser.events, [("response", ct, 486)])

    def test_timerD(self):
        """
        Over UDP the completed transaction lingers 32 s (Timer D) to
        absorb retransmitted finals, then is forgotten.
        """
        ct = self.start()
        self.receive(answer(ct.request, 486))
        self.clock.advance(31.9)
        self.assertEqual(self.layer.clientCount, 1)
        self.clock.advance(0.2)
        self.assertEqual(ct.state, "terminated")
        self.assertEmpty()
        self.receive(answer(ct.request, 486))
        self.assertEqual(self.user.kinds(), ["stray"])

    def test_2xxFromForks(self):
        """
        A 2xx makes the transaction "accepted": no ACK from us (the UA
        core ACKs a 2xx), every later 2xx (other forks, retransmissions)
        still reaches the user, other responses do not; after 64*T1 it is
        forgotten and later 2xx responses are stray.
        """
        ct = self.start()
        self.receive(answer(ct.request, 180, toTag="fork1"))
        self.receive(answer(ct.request, 200, toTag="fork1"))
        self.assertEqual(ct.state, "accepted")
        self.clock.advance(5)
        self.receive(answer(ct.request, 200, toTag="fork2"))
        self.receive(answer(ct.request, 183, toTag="fork3"))
        self.receive(answer(ct.request, 486, toTag="fork3"))
        self.assertEqual([e[2] for e in self.cuser.events], [180, 200, 200])
        self.assertEqual(self.transport.requests("ACK"), [])
        self.assertEqual(len(self.transport.requests("INVITE")), 1)
        self.clock.advance(27.1)
        self.assertEqual(ct.state, "terminated")
        self.assertEmpty()
        self.receive(answer(ct.request, 200, toTag="fork2"))
        self.assertEqual(self.user.kinds(), ["stray"])

    def test_2xxInCalling(self):
        """
        A 2xx with no provisional before it stops Timer A.
        """
        ct = self.start()
        self.receive(answer(ct.request, 200))
        self.assertEqual(self.sendTimes(10, lambda m: True), [])
        self.assertEqual(ct.state, "accepted")

    def test_ackPassthrough(self):
        """
        An ACK (for a 2xx) is sent with our Via and no transaction.
        """
        ack = outgoing("ACK")
        self.assertIsNone(self.layer.request(ack, UDP, None))
        [(sent, peer)] = self.transport.sent
        self.assertIs(sent, ack)
        self.assertEqual(peer, UDP)
        self.assertEqual(len(ack.via), 2)
        self.assertTrue(ack.via[0].branch.startswith("z9hG4bK"))
        self.assertEmpty()

    def test_givenBranch(self):
        """
        A branch passed in (a proxy's loop-detection or stateless-ACK
        branch) is used for our Via and for matching.
        """
        ct = self.layer.request(outgoing(), UDP, self.cuser,
                                branch="z9hG4bKloop.1")
        self.assertEqual(ct.branch, "z9hG4bKloop.1")
        self.assertEqual(ct.request.via[0].branch, "z9hG4bKloop.1")
        self.receive(answer(ct.request, 180))
        self.assertEqual(self.cuser.events, [("response", ct, 180)])
        ack = outgoing("ACK")
        self.layer.request(ack, UDP, None, branch="z9hG4bKack")
        self.assertEqual(ack.via[0].branch, "z9hG4bKack")

    def test_strayResponse(self):
        """
        A response matching no client transaction goes to
        C{strayResponse} with its source.
        """
        response = answer(outgoing(), 200)
        self.receive(response, OTHER)
        self.assertEqual(self.user.events, [("stray", response, OTHER)])

    def test_cseqMethodIsPartOfTheKey(self):
        """
        A response with our branch but another CSeq method does not match
        the INVITE transaction.
        """
        ct = self.start()
        response = answer(ct.request, 200)
        response.setHeader("CSeq", "1 CANCEL")
        self.receive(response)
        self.assertEqual(self.user.kinds(), ["stray"])
        self.assertEqual(self.cuser.events, [])


class ClientInviteReliableTests(ClientInviteTests):
    """
    The INVITE client tests again over TCP where they hold, plus what
    differs: no Timer A, Timer D zero.
    """

    def start(self, request=None, destination=TCP):
        return ClientInviteTests.start(self, request, destination)

    def test_viaPushed(self):
        """
        The Via names TCP.
        """
        ct = self.start()
        self.assertEqual(ct.request.via[0].transport, "TCP")
        self.assertTrue(ct.reliable)

    def test_timerAAndB(self):
        """
        No Timer A over TCP; Timer B still times out at 64*T1.
        """
        ct = self.start()
        self.assertEqual(self.sendTimes(31.9, lambda m: True), [])
        self.clock.advance(0.2)
        self.assertEqual(self.cuser.events, [("timeout", ct)])
        self.assertEmpty()

    def test_timerD(self):
        """
        Over TCP Timer D is zero: the ACK is sent and the transaction is
        forgotten at once.
        """
        ct = self.start()
        self.receive(answer(ct.request, 486))
        self.assertEqual(len(self.transport.requests("ACK")), 1)
        self.assertEqual(ct.state, "terminated")
        self.assertEmpty()

    def test_retransmittedFinalReAcked(self):
        """
        Over TCP there are no retransmitted finals to absorb: a second one
        is stray.
        """
        ct = self.start()
        self.receive(answer(ct.request, 486))
        self.receive(answer(ct.request, 486))
        self.assertEqual(self.user.kinds(), ["stray"])
        self.assertEqual(self.cuser.events, [("response", ct, 486)])


class ClientNonInviteTests(LayerTestCase):
    """
    Non-INVITE client transactions (RFC 3261 section 17.1.2).
    """

    destination = UDP

    def setUp(self):
        LayerTestCase.setUp(self)
        self.cuser = FakeClientUser()

    def start(self, method="OPTIONS"):
        return self.layer.request(outgoing(method), self.destination,
                                  self.cuser)

    def test_timerEAndF(self):
        """
        Over UDP the request is resent by Timer E at T1, 2T1, 4T1... capped
        at T2; Timer F times out at 64*T1.
        """
        ct = self.start()
        self.assertEqual(ct.state, "trying")
        times = self.sendTimes(40, lambda m: True)
        self.assertTimes(times, [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5,
                                 27.5, 31.5])
        self.assertEqual(self.cuser.events, [("timeout", ct)])
        self.assertEqual(ct.state, "terminated")
        self.assertEmpty()

    def test_timerEAfterProvisional(self):
        """
        Once a provisional response arrived, Timer E resends every T2.
        """
        ct = self.start()
        self.clock.advance(0.2)
        self.receive(answer(ct.request, 100))
        self.assertEqual(ct.state, "proceeding")
        times = self.sendTimes(13, lambda m: True)
        self.assertTimes(times, [0.5, 4.5, 8.5, 12.5])
        self.assertEqual(self.cuser.events, [("response", ct, 100)])

    def test_timerFInProceeding(self):
        """
        Timer F times out a transaction that got only provisionals.
        """
        ct = self.start()
        self.receive(answer(ct.request, 100))
        self.clock.advance(31.9)
        self.assertEqual(ct.state, "proceeding")
        self.clock.advance(0.2)
        self.assertEqual(self.cuser.events[-1], ("timeout", ct))
        self.assertEmpty()

    def test_timerK(self):
        """
        A final response completes the transaction; retransmitted finals
        are absorbed for T4 (Timer K), then it is forgotten.
        """
        ct = self.start()
        self.receive(answer(ct.request, 200))
        self.assertEqual(ct.state, "completed")
        self.receive(answer(ct.request, 200))
        self.assertEqual(self.cuser.events, [("response", ct, 200)])
        self.assertEqual(self.sendTimes(4.9, lambda m: True), [])
        self.assertEqual(self.layer.clientCount, 1)
        self.clock.advance(0.2)
        self.assertEqual(ct.state, "terminated")
        self.assertEmpty()
        self.assertEqual(self.user.kinds(), [])

    def test_cancelIgnored(self):
        """
        C{cancel} does nothing to a non-INVITE transaction.
        """
        ct = self.start()
        ct.cancel()
        self.assertEqual(len(self.transport.sent), 1)


class ClientNonInviteReliableTests(LayerTestCase):
    """
    Non-INVITE client transactions over TCP: no Timer E, Timer K zero.
    """

    def setUp(self):
        LayerTestCase.setUp(self)
        self.cuser = FakeClientUser()

    def test_noTimerE(self):
        """
        The request is sent once; Timer F still times out.
        """
        ct = self.layer.request(outgoing("OPTIONS"), TCP, self.cuser)
        self.assertEqual(self.sendTimes(31.9, lambda m: True), [])
        self.clock.advance(0.2)
        self.assertEqual(self.cuser.events, [("timeout", ct)])
        self.assertEmpty()

    def test_timerKZero(self):
        """
        The final response ends the transaction at once.
        """
        ct = self.layer.request(outgoing("OPTIONS"), TCP, self.cuser)
        self.receive(answer(ct.request, 200), TCP)
        self.assertEqual(self.cuser.events, [("response", ct, 200)])
        self.assertEqual(ct.state, "terminated")
        self.assertEmpty()


class ClientCancelTests(LayerTestCase):
    """
    Cancelling an INVITE client transaction (RFC 3261 section 9.1).
    """

    def setUp(self):
        LayerTestCase.setUp(self)
        self.cuser = FakeClientUser()
        self.ct = self.layer.request(
            outgoing("INVITE", cseq=7, routes=["<sip:p2.example.com;lr>",
                                               "<sip:p3.example.com;lr>"]),
            UDP, self.cuser)

    def cancels(self):
        return [(m, p) for m, p in self.transport.sent
                if getattr(m, "method", "") == "CANCEL"]

    def test_afterProvisional(self):
        """
        After a provisional the CANCEL goes at once: same Request-URI,
        Call-ID, From, To (no tag) and CSeq number, our Via alone with the
        INVITE's branch, the Route set, Max-Forwards 70.
        """
        ct = self.ct
        self.receive(answer(ct.request, 180))
        ct.cancel()
        [(cancel, peer)] = self.cancels()
        self.assertEqual(peer, UDP)
        cancel = wire(cancel)
        cancel.validate()
        self.assertEqual(str(cancel.requestURI), "sip:bob@192.0.2.10")
        self.assertEqual([v.branch for v in cancel.via], [ct.branch])
        self.assertEqual(str(cancel.cseq), "7 CANCEL")
        self.assertEqual(cancel.callId, "out1@proxy")
        self.assertEqual(cancel.fromAddr.tag, "a1")
        self.assertIsNone(cancel.toAddr.tag)
        self.assertEqual(cancel.maxForwards, 70)
        self.assertEqual(cancel.getHeaders("Route"), [
            "<sip:p2.example.com;lr>", "<sip:p3.example.com;lr>"])
        self.assertEqual(self.layer.clientCount, 2)

    def test_cancelFlow(self):
        """
        The 200 to the CANCEL is consumed by its own transaction; the 487
        to the INVITE reaches the user and is ACKed; then everything is
        forgotten.
        """
        ct = self.ct
        self.receive(answer(ct.request, 180))
        ct.cancel()
        ct.cancel()
        [(cancel, _)] = self.cancels()
        self.receive(answer(cancel, 200))
        self.receive(answer(ct.request, 487))
        self.assertEqual([e[2] for e in self.cuser.events], [180, 487])
        self.assertEqual(len(self.transport.requests("ACK")), 1)
        self.assertEqual(self.user.events, [])
        self.clock.advance(33)
        self.assertEmpty()

    def test_beforeProvisional(self):
        """
        Before any provisional nothing is sent (the CANCEL could overtake
        the INVITE); the first provisional sends it.
        """
        ct = self.ct
        ct.cancel()
        self.assertEqual(self.cancels(), [])
        self.clock.advance(0.7)
        self.assertEqual(self.cancels(), [])
        self.receive(answer(ct.request, 100))
        [(cancel, _)] = self.cancels()
        self.assertEqual(cancel.via[0].branch, ct.branch)
        self.receive(answer(ct.request, 180))
        self.assertEqual(len(self.cancels()), 1)

    def test_afterFinal(self):
        """
        After a final response C{cancel} does nothing.
        """
        ct = self.ct
        self.receive(answer(ct.request, 486))
        ct.cancel()
        self.receive(answer(ct.request, 200))
        self.assertEqual(self.cancels(), [])

    def test_finalBeforeProvisional(self):
        """
        A CANCEL asked for in "calling" is dropped if a final response
        comes before any provisional.
        """
        ct = self.ct
        ct.cancel()
        self.receive(answer(ct.request, 200))
        self.assertEqual(self.cancels(), [])

    def test_noFinalAfterCancel(self):
        """
        If no final response comes within 64*T1 of the CANCEL, the INVITE
        is given up (RFC 3261 section 9.1) and the user told it timed out.
        """
        ct = self.ct
        self.receive(answer(ct.request, 180))
        self.clock.advance(10)
        ct.cancel()
        self.clock.advance(31.9)
        self.assertEqual(ct.state, "proceeding")
        self.clock.advance(0.2)
        self.assertEqual(self.cuser.events[-1], ("timeout", ct))
        self.assertEqual(ct.state, "terminated")
        self.assertEmpty()


class TransportFailureTests(LayerTestCase):
    """
    Errors reported through the transport's error handler.
    """

    def setUp(self):
        LayerTestCase.setUp(self)
        self.cuser = FakeClientUser()

    def test_handlerRegistered(self):
        """
        The layer registers its error handler with the transport.
        """
        self.assertIsNotNone(self.transport.errorHandler)

    def test_failedDestination(self):
        """
        A failure to send to a destination fails the transactions waiting
        on it (on the next tick) and no others; they are forgotten and
        their timers stopped.
        """
        failing = self.layer.request(outgoing("INVITE"), UDP, self.cuser)
        also = self.layer.request(outgoing("OPTIONS"), UDP, self.cuser)
        other = self.layer.request(outgoing("OPTIONS"), OTHER, self.cuser)
        self.transport.errorHandler(UDP, "connection refused")
        self.assertEqual(failing.state, "terminated")
        self.assertEqual(also.state, "terminated")
        self.assertEqual(other.state, "trying")
        self.assertEqual(self.layer.clientCount, 1)
        self.assertEqual(self.cuser.events, [])
        self.clock.advance(0)
        self.assertEqual(self.cuser.events,
                         [("failed", failing, "connection refused"),
                          ("failed", also, "connection refused")])
        self.assertEqual(
            self.sendTimes(40, lambda m: m.via[0].branch == failing.branch),
            [])

    def test_failureDuringSend(self):
        """
        A failure reported from inside C{sendRequest} reaches the user
        only after L{TransactionLayer.request} returned the transaction.
        """
        self.transport.failOnSend = "unreachable"
        ct = self.layer.request(outgoing("INVITE"), TCP, self.cuser)
        self.assertEqual(ct.state, "terminated")
        self.assertEqual(self.cuser.events, [])
        self.clock.advance(0.01)
        self.assertEqual(self.cuser.events, [("failed", ct, "unreachable")])
        self.assertEmpty()

    def test_unknownDestination(self):
        """
        An error for a destination we are not sending to is ignored.
        """
        self.transport.errorHandler(OTHER, "refused")
        self.assertEqual(self.cuser.events, [])

    def test_completedNotFailed(self):
        """
        A transaction that already has its final response (the ACK could
        not be sent) is not reported.
        """
        ct = self.layer.request(outgoing("INVITE"), UDP, self.cuser)
        self.receive(answer(ct.request, 486))
        self.transport.errorHandler(UDP, "refused")
        self.clock.advance(0.01)
        self.assertEqual(self.cuser.events, [("response", ct, 486)])
        self.assertEqual(ct.state, "completed")


class LifecycleTests(LayerTestCase):
    """
    Memory stays flat: every transaction is forgotten when it ends.
    """

    def test_tenThousandTransactions(self):
        """
        10,000 transactions of every kind run to their end leave every
        table and the timer wheel empty.
        """
        cuser = FakeClientUser()
        sts = []
        self.user.onRequest = lambda st, r: sts.append(st)
        for i in range(2500):
            branch = "z9hG4bKs%d" % (i,)
            self.receive(incoming("INVITE", branch=branch))
            st = sts[-1]
            st.respond(makeResponse(st.request, 486, toTag=st.toTag))
            self.receive(incoming("ACK", branch=branch, toTag=st.toTag))
            self.receive(incoming("OPTIONS", branch=branch))
            st = sts[-1]
            st.respond(makeResponse(st.request, 200, toTag=st.toTag))
            ct = self.layer.request(outgoing("INVITE"), UDP, cuser)
            self.receive(answer(ct.request, 180))
            self.receive(answer(ct.request, 200))
            ct = self.layer.request(outgoing("OPTIONS"), TCP, cuser)
            self.receive(answer(ct.request, 200), TCP)
        self.assertEqual(self.layer.serverCount, 5000)
        self.assertEqual(self.layer.clientCount, 2500)
        self.clock.pump([1] * 40)
        self.assertEmpty()
        self.assertEqual(self.layer.wheel.pending, 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.layer.retransmissions, 0)

    def test_stop(self):
        """
        C{stop} cancels every timer and forgets every transaction.
        """
        self.serverTransaction()
        self.layer.request(outgoing("INVITE"), UDP, FakeClientUser())
        self.layer.stop()
        self.assertEmpty()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(100)
        self.assertEqual(len(self.transport.sent), 2)

    def test_sharedWheelNotStopped(self):
        """
        A wheel passed in is shared with others (the registrar's expiry
        timers): C{stop} cancels only the layer's timers.
        """
        from cgpro.sip.timers import TimerWheel
        wheel = TimerWheel(self.clock, resolution=0.01)
        fired = []
        wheel.schedule(5, fired.append, "other")
        layer = TransactionLayer(self.clock, FakeTransport(), self.user,
                                 wheel=wheel)
        layer.request(outgoing("INVITE"), UDP, FakeClientUser())
        layer.stop()
        self.clock.advance(6)
        self.assertEqual(fired, ["other"])


class NoTryingTests(LayerTestCase):
    """
    A layer made with C{autoTrying=False} (a UAS or B2BUA that sends its
    own provisionals).
    """

    autoTrying = False

    def test_noTrying(self):
        """
        No 100 is sent for a new INVITE.
        """
        self.serverTransaction()
        self.assertEqual(self.transport.sent, [])
