# -*- test-case-name: tests.sip.test_ua -*-
"""
Tests for L{cgpro.sip.ua} and L{cgpro.sip.dialog}: the server's own user
agent in a real stack (directory, Router, transactions, proxy) over the
recording transport of L{tests.sip.test_proxy}, on a L{Clock}.

Calls routed to an application are handed to the UA here by a stand-in
for the PBX's application host (L{UATestsMixin.setUp}).
"""

import shutil
import tempfile

from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from cgpro.core.context import ServerContext
from cgpro.core.files import DurableWriter
from cgpro.core.router import Router
from cgpro.core.rtinterfaces import DialogError, IDialog, IUserAgent
from cgpro.sip.address import Peer
from cgpro.sip.message import parseMessage
from cgpro.sip.stack import SIPStack
from tests.sip.test_proxy import FakeTransport, ResolvingClock, respond
from tests.support.directory import makeDirectory
from tests.support.sip import digestResponse

CALLER = Peer("UDP", "198.51.100.7", 5062)
CALLEE = Peer("UDP", "203.0.113.5", 5070)
OFFER = b"v=0\r\no=a 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\n" \
        b"t=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
ANSWER = b"v=0\r\no=pbx 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\n" \
         b"t=0 0\r\nm=audio 5000 RTP/AVP 0\r\n"


class TimedTransport(FakeTransport):
    """A L{FakeTransport} that also notes when each response was sent."""

    def __init__(self, clock):
        FakeTransport.__init__(self)
        self.clock = clock
        self.responseTimes = []

    def sendResponse(self, response, source):
        FakeTransport.sendResponse(self, response, source)
        self.responseTimes.append(self.clock.seconds())


class Owner:
    """An L{IDialogOwner} that records every call and answers as told."""

    def __init__(self, answer=ANSWER, refer=True):
        self.events = []
        self.answer = answer
        self.refer = refer

    def dialogProgress(self, dialog, code, sdp):
        self.events.append(("progress", code, sdp))

    def dialogAnswered(self, dialog, sdp):
        self.events.append(("answered", sdp))

    def dialogFailed(self, dialog, code, reason):
        self.events.append(("failed", code, reason))

    def dialogEnded(self, dialog, reason):
        self.events.append(("ended", reason))

    def offerReceived(self, dialog, sdp):
        self.events.append(("offer", sdp))
        return self.answer

    def infoReceived(self, dialog, contentType, body):
        self.events.append(("info", contentType, body))

    def referReceived(self, dialog, referTo, referredBy):
        self.events.append(("refer", referTo, referredBy))
        return self.refer

    def messageReceived(self, dialog, contentType, body):
        self.events.append(("message", contentType, body))


def request(method, toTag=None, callId="c1", cseq=1, branch=None, body=b"",
            contentType="application/sdp", extra=(), uri="sip:pbx@main.dom",
            fromTag="f1"):
    """A request from the caller at L{CALLER}."""
    to = "<sip:pbx@main.dom>" + (";tag=%s" % (toTag,) if toTag else "")
    lines = ["%s %s SIP/2.0" % (method, uri),
             "Via: SIP/2.0/UDP 198.51.100.7:5062;branch=%s;rport"
             % (branch or "z9hG4bK%s%d" % (method.lower(), cseq),),
             "Max-Forwards: 70",
             '"Alice" <sip:alice@main.dom>;tag=' + fromTag,
             "To: " + to,
             "Call-ID: " + callId,
             "CSeq: %d %s" % (cseq, method),
             "Contact: <sip:alice@198.51.100.7:5062>"] + list(extra)
    lines[3] = "From: " + lines[3]
    if body:
        lines.append("Content-Type: " + contentType)
    return ("\r\n".join(lines) + "\r\nContent-Length: %d\r\n\r\n" % len(body)).encode() + body


class UATestsMixin:

    def setUp(self):
        self.directory = makeDirectory(self)
        for name in ("alice", "bob"):
            result = self.directory.createAccount("%s@main.dom" % name,
                                                  settings={"Password": "pw"})
            if hasattr(result, "addCallback"):
                self.successResultOf(result)
        self.clock = ResolvingClock()
        self.clock.advance(1795000000)
        base = tempfile.mkdtemp(prefix="cgpro-ua-")
        self.addCleanup(shutil.rmtree, base, True)
        context = ServerContext(self.directory, Router(self.directory, ""), self.clock, base,
                                writer=DurableWriter(base, synchronous=True))
        self.transport = TimedTransport(self.clock)
        self.stack = SIPStack(context, transport=self.transport)
        self.stack.startService()
        self.addCleanup(self.stack.stopService)
        self.ua = self.stack.ua
        self.t1 = self.stack.transactions.t1
        self.owner = Owner()
        self.dialogs = []
        self.proxied = []
        proxy = self.stack.proxy.handleRequest

        def applicationHost(st, req):
            # what the PBX's application host does with a call for it
            if (req.method == "INVITE" and req.toAddr.tag is None
                    and req.requestURI.user == "pbx"):
                dialog = self.ua.answerable(st, req)
                dialog.owner = self.owner
                self.dialogs.append(dialog)
            else:
                self.proxied.append(req)
                proxy(st, req)

        self.stack.proxy.handleRequest = applicationHost

    def receive(self, data, source=CALLER):
        self.stack.transactions.messageReceived(parseMessage(data), source)

    def sent(self):
        requests, self.transport.requests = self.transport.requests, []
        return requests

    def answers(self):
        responses, self.transport.responses = self.transport.responses, []
        return [r for r, _ in responses]

    def codes(self):
        return [r.code for r in self.answers()]

    def incoming(self, body=OFFER, accept=True, ack=True):
        """An incoming call answered (and ACKed) by the UA."""
        self.receive(request("INVITE", body=body))
        dialog = self.dialogs[-1]
        if accept:
            dialog.accept(ANSWER)
            if ack:
                self.receive(request("ACK", toTag=dialog.localTag))
        self.answers()
        self.sent()
        return dialog

    def outgoing(self, target="sip:carol@203.0.113.5:5070", **kwargs):
        """An outgoing call; returns the dialog and the INVITE sent."""
        dialog = self.ua.call(target, "sip:pbx@main.dom", OFFER, self.owner, **kwargs)
        (invite, destination), = self.sent()
        return dialog, invite, destination

    def answerFrom(self, invite, code, body=b"", extra=(), toTag="callee"):
        """A response from the callee to our C{invite}, as it arrives."""
        response = respond(invite, code, toTag=toTag,
                           contact="<sip:carol@203.0.113.5:5070>" if code < 300 else None)
        for name, value in extra:
            response.addHeader(name, value)
        if body:
            response.addHeader("Content-Type", "application/sdp")
            response.body = body
        return parseMessage(response.serialize())

    def established(self):
        """An outgoing call answered by C{carol}."""
        dialog, invite, destination = self.outgoing()
        self.receive(self.answerFrom(invite, 200, ANSWER).serialize(), CALLEE)
        self.sent()
        return dialog


class IncomingTests(UATestsMixin, SynchronousTestCase):
    """
    Calls the PBX answers.
    """

    def test_interfaces(self):
        """
        The stack's UA and its dialogs provide the PBX contract.
        """
        self.assertTrue(verifyObject(IUserAgent, self.ua))
        self.assertTrue(verifyObject(IDialog, self.incoming(accept=False)))

    def test_acceptAndAck(self):
        """
        C{ring} sends a 180 and C{accept} a 200 with the SDP answer, our
        Contact and the same To tag; the ACK tells the owner the call is
        answered and stops the 200 retransmissions.
        """
        self.receive(request("INVITE", body=OFFER))
        dialog, = self.dialogs
        self.assertEqual((dialog.state, dialog.incoming), ("early", True))
        self.assertEqual((dialog.remoteURI, dialog.remoteName, dialog.remoteSDP),
                         ("sip:alice@main.dom", "Alice", OFFER))
        dialog.ring()
        dialog.accept(ANSWER)
        trying, ringing, ok = self.answers()
        self.assertEqual([trying.code, ringing.code, ok.code], [100, 180, 200])
        self.assertEqual(ringing.toAddr.tag, dialog.localTag)
        self.assertEqual(ok.toAddr.tag, dialog.localTag)
        self.assertEqual(ok.getHeader("Contact"), "<sip:pbx@192.0.2.1:5060>")
        self.assertEqual(ok.getHeader("Content-Type"), "application/sdp")
        self.assertEqual(ok.body, ANSWER)
        self.assertEqual(dialog.state, "confirmed")
        self.receive(request("ACK", toTag=dialog.localTag))
        self.assertEqual(self.owner.events, [("answered", None)])
        self.clock.advance(64 * self.t1)
        self.assertEqual(self.answers(), [])
        self.assertEqual(self.proxied, [])

    def test_noAck(self):
        """
        Without an ACK the 200 is resent at T1, 2*T1, ... capped at T2;
        after 64*T1 the dialog is ended with a BYE and the owner hears
        C{'timeout'}.
        """
        dialog = self.incoming(ack=False)
        start = self.clock.seconds()
        self.transport.responseTimes = []
        for _ in range(64 * 20 + 1):
            self.clock.advance(0.05)
        resent = self.answers()
        self.assertTrue(all(r.code == 200 for r in resent))
        times = [round(t - start, 1) for t in self.transport.responseTimes]
        gaps = [round(b - a, 1) for a, b in zip([0.0] + times, times)]
        self.assertEqual(gaps[:5], [0.5, 1.0, 2.0, 4.0, 4.0])
        self.assertTrue(all(g <= 4.0 for g in gaps))
        requests = self.sent()
        self.assertEqual({r.method for r, _ in requests}, {"BYE"}, "BYE (and its resends)")
        bye, destination = requests[0]
        self.assertEqual(str(bye.requestURI), "sip:alice@198.51.100.7:5062")
        self.assertEqual(destination, CALLER)
        self.assertEqual(self.owner.events, [("ended", "timeout")])
        self.assertEqual(dialog.state, "terminated")

    def test_cancel(self):
        """
        A CANCEL before the answer: 200 to it, 487 to the INVITE, and the
        owner hears C{dialogFailed(487, 'cancelled')}.
        """
        dialog = self.incoming(accept=False)
        self.receive(request("CANCEL", branch="z9hG4bKinvite1"))
        codes = self.codes()
        self.assertEqual(sorted(codes), [200, 487])
        self.assertEqual(self.owner.events, [("failed", 487, "cancelled")])
        self.assertEqual(dialog.state, "terminated")
        self.assertNotIn(dialog.key, self.ua.dialogs)
        dialog.accept(ANSWER)
        self.assertEqual(self.answers(), [], "too late to accept")

    def test_rejectAndRedirect(self):
        """
        C{reject} answers with the code given, C{redirect} with a 302 that
        lists the contacts.
        """
        self.incoming(accept=False).reject(486)
        self.assertEqual(self.codes(), [486])
        self.receive(request("INVITE", callId="c2", body=OFFER, branch="z9hG4bKc2"))
        self.answers()
        self.dialogs[-1].redirect(["sip:bob@main.dom", "sip:carol@main.dom"])
        moved, = self.answers()
        self.assertEqual(moved.code, 302)
        self.assertEqual(moved.getHeaders("Contact"),
                         ["<sip:bob@main.dom>", "<sip:carol@main.dom>"])

    def test_byeReceived(self):
        """
        The caller's BYE is answered 200 and ends the dialog: C{'bye'}.
        """
        dialog = self.incoming()
        self.owner.events = []
        self.receive(request("BYE", toTag=dialog.localTag, cseq=2))
        self.assertEqual(self.codes(), [200])
        self.assertEqual(self.owner.events, [("ended", "bye")])
        self.assertEqual(dialog.state, "terminated")
        self.assertNotIn(dialog.key, self.ua.dialogs)

    def test_byeSent(self):
        """
        C{bye()} sends a BYE inside the dialog (our tags, a new CSeq, the
        caller's Contact); its 200 ends the dialog: C{'local'}.
        """
        dialog = self.incoming()
        self.owner.events = []
        dialog.bye()
        (bye, destination), = self.sent()
        self.assertEqual(bye.method, "BYE")
        self.assertEqual(destination, CALLER)
        self.assertEqual(bye.fromAddr.tag, dialog.localTag)
        self.assertEqual(bye.toAddr.tag, "f1")
        self.assertEqual(bye.cseq.method, "BYE")
        self.assertEqual(self.owner.events, [])
        self.receive(respond(bye, 200).serialize())
        self.assertEqual(self.owner.events, [("ended", "local")])
        self.assertNotIn(dialog.key, self.ua.dialogs)

    def test_byeUnanswered(self):
        """
        C{bye()} on a call not answered yet answers it 480.
        """
        self.incoming(accept=False).bye()
        self.assertEqual(self.codes(), [480])

    def test_reinviteReceived(self):
        """
        A re-INVITE with an offer gets the owner's answer in a 200 (resent
        until its ACK); one without SDP gets our last SDP; the owner's
        C{None} refuses the offer with 488.
        """
        dialog = self.incoming()
        self.owner.events = []
        newOffer = OFFER.replace(b"4000", b"4100")
        self.owner.answer = b"answer-2"
        self.receive(request("INVITE", toTag=dialog.localTag, cseq=2, body=newOffer))
        ok = self.answers()[-1]
        self.assertEqual((ok.code, ok.body), (200, b"answer-2"))
        self.assertEqual(self.owner.events, [("offer", newOffer)])
        self.assertEqual(dialog.remoteSDP, newOffer)
        self.clock.advance(self.t1 + 0.1)
        self.assertEqual(self.codes(), [200], "resent until the ACK")
        self.receive(request("ACK", toTag=dialog.localTag, cseq=2))
        self.clock.advance(10)
        self.assertEqual(self.answers(), [])
        self.receive(request("INVITE", toTag=dialog.localTag, cseq=3))
        ok = self.answers()[-1]
        self.assertEqual((ok.code, ok.body), (200, b"answer-2"))
        self.receive(request("ACK", toTag=dialog.localTag, cseq=3, body=OFFER))
        self.assertEqual(dialog.remoteSDP, OFFER)
        self.owner.answer = None
        self.receive(request("INVITE", toTag=dialog.localTag, cseq=4, body=OFFER))
        self.assertEqual(self.codes()[-1], 488)
        self.assertEqual(dialog.state, "confirmed")

    def test_update(self):
        """
        An UPDATE with an offer is answered 200 with the owner's answer.
        """
        dialog = self.incoming()
        self.receive(request("UPDATE", toTag=dialog.localTag, cseq=2, body=OFFER))
        ok = self.answers()[-1]
        self.assertEqual((ok.code, ok.body), (200, ANSWER))

    def test_reinviteSent(self):
        """
        C{reinvite} sends an offer inside the dialog; the 200's answer is
        ACKed (same CSeq number) and fires the Deferred; a 488 fails it
        with L{DialogError}.
        """
        dialog = self.incoming()
        answered = dialog.reinvite(b"offer-2")
        (invite, _), = self.sent()
        self.assertEqual((invite.method, invite.body), ("INVITE", b"offer-2"))
        self.assertEqual(invite.toAddr.tag, "f1")
        self.assertEqual(invite.getHeader("Contact"), "<sip:pbx@192.0.2.1:5060>")
        response = respond(invite, 200)
        response.addHeader("Content-Type", "application/sdp")
        response.body = b"answer-2"
        self.receive(response.serialize())
        self.assertEqual(self.successResultOf(answered), b"answer-2")
        (ack, _), = self.sent()
        self.assertEqual((ack.method, ack.cseq.number), ("ACK", invite.cseq.number))
        self.assertEqual(dialog.remoteSDP, b"answer-2")
        refused = dialog.reinvite(b"offer-3")
        (invite, _), = self.sent()
        self.receive(respond(invite, 488).serialize())
        error = self.failureResultOf(refused, DialogError).value
        self.assertEqual(error.code, 488)
        self.assertEqual(dialog.state, "confirmed")

    def test_info(self):
        """
        An INFO (DTMF relay) is answered 200 and passed to the owner;
        C{sendInfo} sends one and fires with the response code.
        """
        dialog = self.incoming()
        self.owner.events = []
        dtmf = b"Signal=5\r\nDuration=160\r\n"
        self.receive(request("INFO", toTag=dialog.localTag, cseq=2, body=dtmf,
                             contentType="application/dtmf-relay"))
        self.assertEqual(self.codes(), [200])
        self.assertEqual(self.owner.events, [("info", "application/dtmf-relay", dtmf)])
        sent = dialog.sendInfo("application/dtmf-relay", b"Signal=#\r\nDuration=100\r\n")
        (info, _), = self.sent()
        self.assertEqual(info.getHeader("Content-Type"), "application/dtmf-relay")
        self.receive(respond(info, 200).serialize())
        self.assertEqual(self.successResultOf(sent), 200)

    def test_message(self):
        """
        A MESSAGE inside the dialog reaches the owner; C{sendMessage}
        fires with the code.
        """
        dialog = self.incoming()
        self.owner.events = []
        self.receive(request("MESSAGE", toTag=dialog.localTag, cseq=2, body=b"hi",
                             contentType="text/plain"))
        self.assertEqual(self.codes(), [200])
        self.assertEqual(self.owner.events, [("message", "text/plain", b"hi")])
        sent = dialog.sendMessage("text/plain", b"hello")
        (message, _), = self.sent()
        self.receive(respond(message, 202).serialize())
        self.assertEqual(self.successResultOf(sent), 202)

    def test_refer(self):
        """
        A REFER the owner accepts is answered 202; C{notifyRefer} then
        sends the C{refer} NOTIFY with a sipfrag body; one it refuses is
        answered 603.
        """
        dialog = self.incoming()
        self.owner.events = []
        self.receive(request("REFER", toTag=dialog.localTag, cseq=2, extra=[
            "Refer-To: <sip:bob@main.dom>", "Referred-By: <sip:alice@main.dom>"]))
        self.assertEqual(self.codes(), [202])
        self.assertEqual(self.owner.events,
                         [("refer", "sip:bob@main.dom", "sip:alice@main.dom")])
        notified = dialog.notifyRefer(200, "OK")
        (notify, _), = self.sent()
        self.assertEqual(notify.method, "NOTIFY")
        self.assertEqual(notify.getHeader("Event"), "refer")
        self.assertTrue(notify.getHeader("Subscription-State").startswith("terminated"))
        self.assertEqual(notify.getHeader("Content-Type"), "message/sipfrag;version=2.0")
        self.assertEqual(notify.body, b"SIP/2.0 200 OK\r\n")
        self.receive(respond(notify, 200).serialize())
        self.assertEqual(self.successResultOf(notified), 200)
        self.owner.refer = False
        self.receive(request("REFER", toTag=dialog.localTag, cseq=3, extra=[
            "Refer-To: <sip:bob@main.dom>"]))
        self.assertEqual(self.codes(), [603])

    def test_optionsAndNotifyInDialog(self):
        """
        OPTIONS and NOTIFY inside the dialog are answered 200; an
        out-of-order CSeq gets 500.
        """
        dialog = self.incoming()
        self.receive(request("OPTIONS", toTag=dialog.localTag, cseq=5))
        self.receive(request("NOTIFY", toTag=dialog.localTag, cseq=6))
        self.receive(request("INFO", toTag=dialog.localTag, cseq=4))
        self.assertEqual(self.codes(), [200, 200, 500])

    def test_authenticate(self):
        """
        Without credentials the call is answered 407 with a challenge and
        C{None} returned; the caller's new INVITE with the right ones is
        accepted (C{authenticated} set); wrong ones get 403.
        """
        dialog = self.incoming(accept=False)
        self.assertIsNone(self.ua.authenticate(dialog, "main.dom"))
        challenge = self.answers()[-1]
        self.assertEqual(challenge.code, 407)
        header = challenge.getHeaders("Proxy-Authenticate")[0]
        credentials = digestResponse(header, "INVITE", "sip:pbx@main.dom", "alice", "pw")
        self.receive(request("INVITE", cseq=2, body=OFFER,
                             extra=["Proxy-Authorization: " + credentials]))
        second = self.dialogs[-1]
        self.assertEqual(self.ua.authenticate(second, "main.dom"), "alice@main.dom")
        self.assertEqual(second.authenticated, "alice@main.dom")
        wrong = digestResponse(header, "INVITE", "sip:pbx@main.dom", "alice", "bad")
        self.receive(request("INVITE", callId="c3", body=OFFER, branch="z9hG4bKc3",
                             extra=["Proxy-Authorization: " + wrong]))
        self.assertIsNone(self.ua.authenticate(self.dialogs[-1], "main.dom"))
        self.assertEqual(self.codes()[-1], 403)

    def test_unknownDialogGoesToProxy(self):
        """
        A request with a To tag that is none of our dialogs is another
        party's dialog: the proxy gets it.
        """
        self.incoming()
        self.receive(request("BYE", toTag="someone-else", cseq=2))
        self.assertEqual([r.method for r in self.proxied], ["BYE"])
        acks = []
        self.stack.proxy.forwardAck = lambda request, source: acks.append(request)
        self.receive(request("ACK", toTag="someone-else", cseq=2))
        self.assertEqual(len(acks), 1)

    def test_stopService(self):
        """
        Stopping the stack ends the UA's dialogs with a BYE.
        """
        self.incoming()
        self.stack.stopService()
        self.assertEqual([r.method for r, _ in self.sent()], ["BYE"])
        self.assertEqual(self.ua.dialogs, {})


class OutgoingTests(UATestsMixin, SynchronousTestCase):
    """
    Calls the PBX places.
    """

    def test_call(self):
        """
        C{call} sends an INVITE with a fresh From tag, our Contact,
        Max-Forwards 70 and the offer; a 180 is progress; the 200 is
        ACKed to the first Record-Route (the route set reversed) and the
        owner hears the answer.
        """
        dialog, invite, destination = self.outgoing()
        self.assertEqual(destination, CALLEE)
        self.assertEqual(str(invite.requestURI), "sip:carol@203.0.113.5:5070")
        self.assertEqual(invite.fromAddr.tag, dialog.localTag)
        self.assertEqual(invite.maxForwards, 70)
        self.assertEqual(invite.getHeader("Contact"), "<sip:pbx@192.0.2.1:5060>")
        self.assertEqual(invite.body, OFFER)
        self.assertEqual((dialog.state, dialog.incoming), ("early", False))
        self.receive(self.answerFrom(invite, 180).serialize(), CALLEE)
        self.assertEqual(self.owner.events, [("progress", 180, None)])
        self.receive(self.answerFrom(invite, 200, ANSWER, extra=[
            ("Record-Route", "<sip:203.0.113.20;lr>, <sip:203.0.113.21:5080;lr>")]
        ).serialize(), CALLEE)
        self.assertEqual(self.owner.events[-1], ("answered", ANSWER))
        self.assertEqual((dialog.state, dialog.remoteSDP), ("confirmed", ANSWER))
        (ack, ackDestination), = self.sent()
        self.assertEqual(ack.method, "ACK")
        self.assertEqual(ack.cseq.number, invite.cseq.number)
        self.assertEqual(str(ack.requestURI), "sip:carol@203.0.113.5:5070")
        self.assertEqual(ack.toAddr.tag, "callee")
        self.assertEqual(ack.getHeaders("Route"),
                         ["<sip:203.0.113.21:5080;lr>", "<sip:203.0.113.20;lr>"])
        self.assertEqual(ackDestination, Peer("UDP", "203.0.113.21", 5080))

    def test_retransmitted2xx(self):
        """
        Each retransmission of the 2xx is ACKed again, also after the
        INVITE transaction is gone (a stray response), and never reaches
        the proxy.
        """
        dialog, invite, _ = self.outgoing()
        ok = self.answerFrom(invite, 200, ANSWER).serialize()
        self.receive(ok, CALLEE)
        self.receive(ok, CALLEE)
        self.assertEqual([r.method for r, _ in self.sent()], ["ACK", "ACK"])
        self.clock.advance(64 * self.t1 + 1)
        self.assertEqual(self.stack.transactions.clientCount, 0)
        self.receive(ok, CALLEE)
        self.assertEqual([r.method for r, _ in self.sent()], ["ACK"])
        self.assertEqual(self.owner.events, [("answered", ANSWER)])

    def test_secondFork(self):
        """
        A 2xx from another fork is ACKed and that dialog BYEd at once.
        """
        dialog, invite, _ = self.outgoing()
        self.receive(self.answerFrom(invite, 200, ANSWER).serialize(), CALLEE)
        self.sent()
        self.receive(self.answerFrom(invite, 200, ANSWER, toTag="other").serialize(), CALLEE)
        methods = [(r.method, r.toAddr.tag) for r, _ in self.sent()]
        self.assertEqual(methods, [("ACK", "other"), ("BYE", "other")])
        self.assertEqual(dialog.remoteTag, "callee")

    def test_proxyAuthentication(self):
        """
        A 407 is answered once: a new INVITE (CSeq + 1, same Call-ID and
        From tag) whose Proxy-Authorization the server's authenticator
        accepts.
        """
        dialog, invite, _ = self.outgoing(credentials=("alice", "pw"))
        challenge = respond(invite, 407)
        for name, value in self.stack.authenticator.challenge("main.dom", proxy=True):
            challenge.addHeader(name, value)
        self.receive(challenge.serialize(), CALLEE)
        requests = self.sent()
        self.assertEqual([r.method for r, _ in requests], ["ACK", "INVITE"])
        retry = requests[1][0]
        self.assertEqual(retry.cseq.number, invite.cseq.number + 1)
        self.assertEqual(retry.callId, invite.callId)
        self.assertEqual(retry.fromAddr.tag, invite.fromAddr.tag)
        result = self.stack.authenticator.verify(retry, "main.dom", proxy=True)
        self.assertEqual((result.status, result.account), ("ok", "alice@main.dom"))
        self.receive(respond(retry, 407).serialize(), CALLEE)
        self.assertEqual(self.owner.events[-1][:2], ("failed", 407), "answered once only")

    def test_busy(self):
        """
        A 486 fails the call: C{dialogFailed(486, reason)}.
        """
        dialog, invite, _ = self.outgoing()
        self.receive(respond(invite, 486).serialize(), CALLEE)
        self.assertEqual(self.owner.events, [("failed", 486, "X")])
        self.assertEqual(dialog.state, "terminated")
        self.assertNotIn(dialog.key, self.ua.dialogs)

    def test_timeout(self):
        """
        No answer at all within 64*T1: C{dialogFailed(408)}.
        """
        self.outgoing()
        self.clock.advance(64 * self.t1 + 1)
        self.assertEqual(self.owner.events, [("failed", 408, "Request Timeout")])

    def test_transportFailure(self):
        """
        The transport cannot reach the callee: C{dialogFailed(503)}.
        """
        _, _, destination = self.outgoing()
        self.transport.errorHandler(destination, Failure(OSError("unreachable")))
        self.clock.advance(0.1)
        self.assertEqual([e[:2] for e in self.owner.events], [("failed", 503)])

    def test_cancel(self):
        """
        C{bye()} while ringing CANCELs the INVITE; its 487 fails the call.
        """
        dialog, invite, _ = self.outgoing()
        self.receive(self.answerFrom(invite, 180).serialize(), CALLEE)
        dialog.bye()
        (cancel, _), = self.sent()
        self.assertEqual(cancel.method, "CANCEL")
        self.receive(respond(invite, 487).serialize(), CALLEE)
        self.assertEqual(self.owner.events[-1], ("failed", 487, "X"))

    def test_byeAndIncomingBye(self):
        """
        The callee's BYE ends an answered call (C{'bye'}); ours gets
        C{'local'} once answered.
        """
        dialog = self.established()
        bye = request("BYE", toTag=dialog.localTag, cseq=9, uri="sip:pbx@192.0.2.1:5060", callId=dialog.callId,
                      fromTag="callee")
        self.receive(bye, CALLEE)
        self.assertEqual(self.codes(), [200])
        self.assertEqual(self.owner.events[-1], ("ended", "bye"))
        other = self.established()
        other.bye()
        (sent, destination), = self.sent()
        self.assertEqual((sent.method, destination), ("BYE", CALLEE))
        self.assertEqual(sent.cseq.number, 2)
        self.receive(respond(sent, 200).serialize(), CALLEE)
        self.assertEqual(self.owner.events[-1], ("ended", "local"))

    def test_reinviteReceived(self):
        """
        The callee's re-INVITE in a call we placed gets the owner's answer.
        """
        dialog = self.established()
        self.receive(request("INVITE", toTag=dialog.localTag, cseq=5, fromTag="callee", callId=dialog.callId,
                             body=OFFER), CALLEE)
        ok = self.answers()[-1]
        self.assertEqual((ok.code, ok.body), (200, ANSWER))

    def test_via(self):
        """
        With C{via}, the INVITE goes to that proxy (a host name resolved
        as the proxy resolves) with the target as Request-URI.
        """
        _, invite, destination = self.outgoing("sip:+15551234@pstn.example",
                                               via="gw.example:5080")
        self.assertEqual(destination, Peer("UDP", "203.0.113.9", 5080))
        self.assertEqual(str(invite.requestURI), "sip:+15551234@pstn.example")

    def test_localDomainLoopsThroughProxy(self):
        """
        A target in one of our domains is sent to our own listener, so
        that the Router and the registrations apply.
        """
        _, invite, destination = self.outgoing("sip:bob@main.dom")
        self.assertEqual(destination, Peer("UDP", "192.0.2.1", 5060))
        self.assertEqual(str(invite.requestURI), "sip:bob@main.dom")

    def test_throughOurProxy(self):
        """
        A call to a local account, looped through our own listener, is
        routed by the proxy to the registered device (Record-Routed); the
        device's 200 comes back to the UA, whose ACK follows the route set
        back through the proxy to the device.
        """
        self.stack._localHosts = None
        self.stack.settings.localHosts.append("192.0.2.1")
        us = Peer("UDP", "192.0.2.1", 5060)
        device = Peer("UDP", "203.0.113.1", 5060)
        self.successResultOf(self.stack.location.update(
            "bob@main.dom", [("sip:bob@203.0.113.1:5060", 3600, 1.0, None, (), None, None,
                              None)], "reg-bob", 1))
        dialog, invite, destination = self.outgoing("sip:bob@main.dom")
        self.receive(invite.serialize(), us)
        (branch, toDevice), = self.sent()
        self.assertEqual(toDevice, device)
        self.assertEqual(len(branch.via), 2)
        ok = respond(branch, 200, toTag="bobs", contact="<sip:bob@203.0.113.1:5060>")
        for value in branch.getHeaders("Record-Route"):  # a UAS copies them
            ok.addHeader("Record-Route", value)
        ok = ok.serialize()
        self.answers()
        self.receive(ok, device)
        upstream = [r for r in self.answers() if r.code == 200]
        self.assertEqual(len(upstream), 1)
        self.receive(upstream[0].serialize(), us)
        self.assertEqual(self.owner.events, [("answered", None)])
        self.assertEqual(dialog.remoteTag, "bobs")
        (ack, ackDestination), = self.sent()
        self.assertEqual(ackDestination, us)
        self.receive(ack.serialize(), us)
        (forwarded, finalDestination), = self.sent()
        self.assertEqual((forwarded.method, finalDestination), ("ACK", device))
        self.assertEqual(forwarded.getHeaders("Route"), [])

    def test_unresolvable(self):
        """
        A host that does not resolve fails the call with 503, after
        C{call} returned.
        """
        dialog = self.ua.call("sip:x@nowhere.example", "sip:pbx@main.dom", OFFER, self.owner)
        self.assertEqual(self.owner.events, [])
        self.clock.advance(0.1)
        self.assertEqual([e[:2] for e in self.owner.events], [("failed", 503)])
        self.assertEqual(dialog.state, "terminated")


class OutOfDialogTests(UATestsMixin, SynchronousTestCase):
    """
    Requests outside any dialog, and Contacts.
    """

    def test_registerWithChallenge(self):
        """
        A REGISTER challenged with 401 is sent again once with
        Authorization (CSeq 2, same Call-ID); the final response fires.
        """
        done = self.ua.request("REGISTER", "sip:gw.example", "sip:pbx@gw.example",
                               headers=[("Contact", "<%s>" % self.ua.contactFor("pbx")),
                                        ("Expires", "600")],
                               credentials=("alice", "pw"))
        (first, destination), = self.sent()
        self.assertEqual(destination, Peer("UDP", "203.0.113.9", 5060))
        challenge = respond(first, 401)
        for name, value in self.stack.authenticator.challenge("main.dom"):
            challenge.addHeader(name, value)
        self.receive(challenge.serialize(), destination)
        (second, _), = self.sent()
        self.assertEqual((second.cseq.number, second.callId), (2, first.callId))
        self.assertEqual(str(second.toAddr.uri), "sip:pbx@gw.example")
        self.assertEqual(self.stack.authenticator.verify(second, "main.dom").status, "ok")
        self.assertNoResult(done)
        self.receive(respond(second, 200).serialize(), destination)
        self.assertEqual(self.successResultOf(done).code, 200)

    def test_timeout(self):
        """
        A request nobody answers fires with a made-up 408.
        """
        done = self.ua.request("OPTIONS", "sip:203.0.113.5", "sip:pbx@main.dom")
        self.clock.advance(64 * self.t1 + 1)
        self.assertEqual(self.successResultOf(done).code, 408)

    def test_message(self):
        """
        A MESSAGE carries its body and Content-Type.
        """
        done = self.ua.request("MESSAGE", "sip:bob@203.0.113.5", "sip:pbx@main.dom",
                               body=b"hello", contentType="text/plain")
        (message, _), = self.sent()
        self.assertEqual((message.body, message.getHeader("Content-Type")),
                         (b"hello", "text/plain"))
        self.receive(respond(message, 200).serialize(), CALLEE)
        self.assertEqual(self.successResultOf(done).code, 200)

    def test_contactFor(self):
        """
        The Contact names our address and port toward the peer, with the
        transport when it is not UDP.
        """
        self.assertEqual(self.ua.contactFor("pbx", Peer("TCP", "203.0.113.5", 5060)),
                         "sip:pbx@192.0.2.1:5060;transport=tcp")
        self.assertEqual(self.ua.contactFor("pbx"), "sip:pbx@192.0.2.1:5060")
