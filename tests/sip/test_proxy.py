# -*- test-case-name: tests.sip.test_proxy -*-
"""
Tests for L{cgpro.sip.proxy} and the dispatch of L{cgpro.sip.stack}: a
real stack (directory, Router, registrar, transactions, call rules) over a
fake transport that records what would go on the wire, on a L{Clock}.
"""

import shutil
import tempfile

from twisted.internet.defer import fail, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from cgpro.core.context import ServerContext
from cgpro.core.files import DurableWriter
from cgpro.core.router import Router
from cgpro.sip.address import Peer
from cgpro.sip.interfaces import ISIPTransport
from cgpro.sip.message import Response, parseMessage
from cgpro.sip.stack import SIPStack
from tests.support.directory import makeDirectory
from tests.support.sip import digestResponse

US = ("192.0.2.1", 5060)
CALLER = Peer("UDP", "198.51.100.7", 5062)


class ResolvingClock(Clock):
    """A L{Clock} that resolves C{gw.example} to an address."""

    def resolve(self, name, timeout=None):
        if name == "gw.example":
            return succeed("203.0.113.9")
        return fail(OSError("cannot resolve %s" % (name,)))


@implementer(ISIPTransport)
class FakeTransport:
    """Records requests and responses instead of sending them."""

    def __init__(self):
        self.requests = []
        self.responses = []
        self.errorHandler = None

    def sendRequest(self, request, destination):
        self.requests.append((parseMessage(request.serialize()), destination))

    def sendResponse(self, response, source):
        self.responses.append((parseMessage(response.serialize()), source))

    def isReliable(self, destination):
        return destination.reliable

    def setErrorHandler(self, handler):
        self.errorHandler = handler

    def localAddress(self, destination):
        return US

    def stop(self):
        pass


def invite(user="bob", fromUser="alice", callId="c1", branch="z9hG4bKcaller1",
           extra=(), method="INVITE", host="main.dom", toTag=None, body=b""):
    to = "<sip:%s@%s>" % (user, host) + (";tag=%s" % toTag if toTag else "")
    lines = ["%s sip:%s@%s SIP/2.0" % (method, user, host),
             "Via: SIP/2.0/UDP 198.51.100.7:5062;branch=%s;rport" % (branch,),
             "Max-Forwards: 70",
             "From: <sip:%s@main.dom>;tag=f1" % (fromUser,),
             "To: " + to,
             "Call-ID: " + callId,
             "CSeq: 1 " + method,
             "Contact: <sip:%s@198.51.100.7:5062>" % (fromUser,)] + list(extra)
    return ("\r\n".join(lines) + "\r\nContent-Length: %d\r\n\r\n" % len(body)).encode() + body


def respond(request, code, toTag="callee", contact=None):
    """A response from a UAS to a request the proxy sent."""
    response = Response(code, "X")
    for name in ("Via", "From", "Call-ID", "CSeq"):
        for value in request.getHeaders(name):
            response.addHeader(name, value)
    to = request.getHeader("To")
    if code > 100 and "tag=" not in to:
        to += ";tag=" + toTag
    response.addHeader("To", to)
    if contact:
        response.addHeader("Contact", contact)
    return parseMessage(response.serialize())


class ProxyTestsMixin:
    routerTable = ""

    def setUp(self):
        self.directory = makeDirectory(self)
        for name in ("alice", "bob", "carol"):
            result = self.directory.createAccount("%s@main.dom" % name,
                                                  settings={"Password": "pw"})
            if hasattr(result, "addCallback"):
                self.successResultOf(result)
        self.clock = ResolvingClock()
        self.clock.advance(1795000000)
        base = tempfile.mkdtemp(prefix="cgpro-proxy-")
        self.addCleanup(shutil.rmtree, base, True)
        writer = DurableWriter(base, synchronous=True)
        router = Router(self.directory, self.routerTable)
        context = ServerContext(self.directory, router, self.clock, base, writer=writer)
        self.transport = FakeTransport()
        self.stack = SIPStack(context, transport=self.transport)
        self.stack.startService()
        self.addCleanup(self.stack.stopService)

    def receive(self, data, source=CALLER):
        self.stack.transactions.messageReceived(parseMessage(data), source)

    def bind(self, user, contact, q=None, source=None):
        """Register a device for C{user} directly in the location service."""
        self.successResultOf(self.stack.location.update(
            "%s@main.dom" % user,
            [(contact, 3600, q if q is not None else 1.0, source, (), None, None, None)],
            "reg-%s-%s" % (user, contact), 1))

    def sent(self):
        requests, self.transport.requests = self.transport.requests, []
        return requests

    def answers(self):
        responses, self.transport.responses = self.transport.responses, []
        return [r.code for r, _ in responses]


class ProxyRoutingTests(ProxyTestsMixin, SynchronousTestCase):
    """
    Where requests go: registered devices, forking, Record-Route, loops.
    """

    def test_forkParallel(self):
        """
        An INVITE to an account rings every device of the highest q at
        once, Record-Routed, with Max-Forwards decremented; the first 2xx
        is passed upstream and the other branch is CANCELled.
        """
        self.bind("bob", "sip:bob@203.0.113.1:5060")
        self.bind("bob", "sip:bob@203.0.113.2:5060")
        self.receive(invite())
        branches = self.sent()
        self.assertEqual(sorted(d.host for _, d in branches), ["203.0.113.1", "203.0.113.2"])
        for request, _ in branches:
            self.assertEqual(request.maxForwards, 69)
            self.assertEqual(request.getHeader("Record-Route"),
                             "<sip:192.0.2.1:5060;lr;cgp=%s>" % self.stack.proxy.routeToken("c1"))
            self.assertEqual(len(request.via), 2)
        self.assertEqual(self.answers(), [100])
        first, second = branches
        self.receive(respond(first[0], 180).serialize(), Peer("UDP", first[1].host, 5060))
        self.receive(respond(second[0], 180).serialize(), Peer("UDP", second[1].host, 5060))
        self.assertEqual(self.answers(), [180, 180])
        self.receive(respond(first[0], 200).serialize(), Peer("UDP", first[1].host, 5060))
        forwarded = self.transport.responses[-1][0]
        self.assertEqual(forwarded.code, 200)
        self.assertEqual(len(forwarded.via), 1, "our Via is removed upstream")
        cancels = [r for r, _ in self.sent() if r.method == "CANCEL"]
        self.assertEqual([d for d in cancels], cancels)
        self.assertEqual(len(cancels), 1)
        self.assertEqual(cancels[0].via[0].branch, second[0].via[0].branch)

    def test_sequentialByQ(self):
        """
        Devices with a lower q ring only after the higher ones failed.
        """
        self.bind("bob", "sip:bob@203.0.113.1:5060", q=1.0)
        self.bind("bob", "sip:bob@203.0.113.2:5060", q=0.5)
        self.receive(invite())
        branches = self.sent()
        self.assertEqual([d.host for _, d in branches], ["203.0.113.1"])
        self.receive(respond(branches[0][0], 486).serialize())
        branches = [b for b in self.sent() if b[0].method == "INVITE"]
        self.assertEqual([d.host for _, d in branches], ["203.0.113.2"])
        self.receive(respond(branches[0][0], 603).serialize())
        self.assertEqual(self.answers()[-1], 603)

    def test_bestResponse(self):
        """
        With every branch failed, the best response (lowest class, 4xx
        over 5xx) goes upstream.
        """
        self.bind("bob", "sip:bob@203.0.113.1:5060")
        self.bind("bob", "sip:bob@203.0.113.2:5060")
        self.receive(invite())
        a, b = self.sent()
        self.receive(respond(a[0], 503).serialize())
        self.receive(respond(b[0], 486).serialize())
        self.assertEqual(self.answers()[-1], 486)

    def test_redirect3xx(self):
        """
        A 302 from a device is followed: its Contact is tried next.
        """
        self.bind("bob", "sip:bob@203.0.113.1:5060")
        self.receive(invite())
        (first, _), = self.sent()
        self.receive(respond(first, 302, contact="<sip:carol@203.0.113.5:5070>").serialize())
        requests = [r for r in self.sent() if r[0].method == "INVITE"]
        self.assertEqual([(str(r.requestURI), d.port) for r, d in requests],
                         [("sip:carol@203.0.113.5:5070", 5070)])

    def test_noDevice(self):
        """
        An account without devices and without rules: 480.
        """
        self.receive(invite())
        self.assertEqual(self.answers()[-1], 480)

    def test_unknownUser(self):
        """
        An unknown name in a local domain: 404.
        """
        self.receive(invite(user="nobody"))
        self.assertEqual(self.answers()[-1], 404)

    def test_maxForwards(self):
        """
        Max-Forwards 0: 483 Too Many Hops.
        """
        self.receive(invite().replace(b"Max-Forwards: 70", b"Max-Forwards: 0"))
        self.assertEqual(self.answers()[-1], 483)

    def test_loop(self):
        """
        A request coming back with the same Request-URI through our own
        branch is a loop (482); a spiral with a new Request-URI is not.
        """
        self.stack._localHosts = None
        self.stack.settings.localHosts.append("192.0.2.1")
        self.bind("bob", "sip:bob@203.0.113.1:5060")
        self.receive(invite())
        (forwarded, _), = self.sent()
        # the request comes back unchanged (its Request-URI is the device's)
        looped = forwarded.serialize().replace(
            b"INVITE sip:bob@203.0.113.1:5060", b"INVITE sip:bob@main.dom")
        looped = looped.replace(b"Via: ", b"Via: SIP/2.0/UDP 203.0.113.1;branch=z9hG4bKx, ", 1)
        self.receive(looped, Peer("UDP", "203.0.113.1", 5060))
        self.assertIn(482, self.answers())
        spiral = looped.replace(b"INVITE sip:bob@main.dom", b"INVITE sip:carol@main.dom")
        spiral = spiral.replace(b"branch=z9hG4bKx", b"branch=z9hG4bKy")
        self.receive(spiral, Peer("UDP", "203.0.113.1", 5060))
        self.assertNotIn(482, self.answers())

    def test_applicationTarget(self):
        """
        The pbx account's Signal rule sends calls to the pbx application:
        480 with a reason naming it when the server runs no PBX.
        """
        self.receive(invite(user="pbx"))
        responses = self.transport.responses
        final = responses[-1][0]
        self.assertEqual(final.code, 480)
        self.assertIn("pbx", final.reason)

    def test_options(self):
        """
        OPTIONS to the server itself is answered with its capabilities;
        PUBLISH gets 405 with Allow.
        """
        self.receive(invite(method="OPTIONS", user="x", host="127.0.0.1")
                     .replace(b"sip:x@127.0.0.1 SIP", b"sip:127.0.0.1 SIP"))
        response = self.transport.responses[-1][0]
        self.assertEqual(response.code, 200)
        self.assertIn("INVITE", response.getHeader("Allow"))
        self.receive(invite(method="PUBLISH", branch="z9hG4bKpub"))
        self.assertEqual(self.answers()[-1], 405)

    def test_tagged(self):
        """
        A request inside a dialog follows its Route set: our entry is
        removed and it goes to the next hop.
        """
        data = invite(method="BYE", toTag="t2", extra=[
            "Route: <sip:192.0.2.1:5060;lr;cgp=%s>" % self.stack.proxy.routeToken("c1"),
            "Route: <sip:203.0.113.8:5080;lr>"])
        self.stack._localHosts = None
        self.stack.settings.localHosts.append("192.0.2.1")
        self.receive(data)
        (request, destination), = self.sent()
        self.assertEqual((destination.host, destination.port), ("203.0.113.8", 5080))
        self.assertEqual(request.getHeaders("Route"), ["<sip:203.0.113.8:5080;lr>"])

    def test_noOpenRelay(self):
        """
        A request that names a foreign next hop without a dialog we
        Record-Routed (a pre-loaded or forged Route, or a To tag with a
        foreign Request-URI) is challenged, never forwarded; an ACK of that
        kind is dropped.
        """
        self.stack._localHosts = None
        self.stack.settings.localHosts.append("192.0.2.1")
        forged = invite(method="MESSAGE", extra=["Route: <sip:192.0.2.1:5060;lr;cgp=bad>",
                                                 "Route: <sip:203.0.113.8:5080;lr>"])
        self.receive(forged)
        self.assertEqual(self.answers()[-1], 407)
        preloaded = invite(method="MESSAGE", branch="z9hG4bKpre",
                           extra=["Route: <sip:203.0.113.8:5080;lr>"])
        self.receive(preloaded)
        self.assertEqual(self.answers()[-1], 407)
        tagged = invite(method="MESSAGE", branch="z9hG4bKtag", toTag="x", host="203.0.113.8")
        self.receive(tagged)
        self.assertEqual(self.answers()[-1], 407)
        ack = invite(method="ACK", toTag="x", extra=["Route: <sip:203.0.113.8:5080;lr>"])
        self.receive(ack)
        self.assertEqual(self.sent(), [])

    def test_contactHeadersStripped(self):
        """
        Headers in a registered Contact URI do not reach the Request-URI.
        """
        self.bind("bob", "sip:bob@203.0.113.1:5060?Route=%3Csip:evil.example%3E")
        self.receive(invite())
        (request, _), = self.sent()
        self.assertEqual(str(request.requestURI), "sip:bob@203.0.113.1:5060")
        self.assertEqual(request.getHeaders("Route"), [])

    def test_ackForwarded(self):
        """
        The ACK for a 2xx is forwarded statelessly along its Route set.
        """
        self.stack._localHosts = None
        self.stack.settings.localHosts.append("192.0.2.1")
        data = invite(method="ACK", toTag="t2", extra=[
            "Route: <sip:192.0.2.1:5060;lr;cgp=%s>" % self.stack.proxy.routeToken("c1")])
        data = data.replace(b"sip:bob@main.dom SIP/2.0", b"sip:bob@203.0.113.1:5060 SIP/2.0", 1)
        self.receive(data)
        (request, destination), = self.sent()
        self.assertEqual(request.method, "ACK")
        self.assertEqual((destination.host, destination.port), ("203.0.113.1", 5060))
        self.assertEqual(request.getHeaders("Route"), [])

    def test_natFlow(self):
        """
        A device that registered a private Contact from another address is
        reached at the address its REGISTER came from; the caller's private
        Contact is rewritten to its source address.
        """
        self.bind("bob", "sip:bob@10.1.2.3:5060", source=Peer("UDP", "203.0.113.77", 40001))
        self.receive(invite().replace(b"<sip:alice@198.51.100.7:5062>",
                                      b"<sip:alice@192.168.1.20:5062>"))
        (request, destination), = self.sent()
        self.assertEqual(destination, Peer("UDP", "203.0.113.77", 40001))
        self.assertEqual(str(request.requestURI), "sip:bob@10.1.2.3:5060")
        self.assertEqual(str(request.contact[0].uri), "sip:alice@198.51.100.7:5062")

    def test_cancelFromCaller(self):
        """
        The caller's CANCEL: 200 for it, 487 for the INVITE, and a CANCEL
        for every ringing branch.
        """
        self.bind("bob", "sip:bob@203.0.113.1:5060")
        self.receive(invite())
        (branch, _), = self.sent()
        self.receive(respond(branch, 180).serialize())
        cancel = invite(method="CANCEL").replace(b"CSeq: 1 CANCEL", b"CSeq: 1 CANCEL")
        self.receive(cancel)
        self.assertEqual(sorted(self.answers()), [100, 180, 200, 487])
        self.assertEqual([r.method for r, _ in self.sent()], ["CANCEL"])

    def test_ringTimeout(self):
        """
        Nobody answers within MaxRingTime: the branches are CANCELled and
        the caller gets 480.
        """
        self.bind("bob", "sip:bob@203.0.113.1:5060")
        self.receive(invite())
        (branch, _), = self.sent()
        self.receive(respond(branch, 180).serialize())
        self.clock.advance(self.stack.settings.maxRingTime + 1)
        self.assertEqual(self.answers()[-1], 480)
        self.assertIn("CANCEL", [r.method for r, _ in self.sent()])


class GatewayTests(ProxyTestsMixin, SynchronousTestCase):
    """
    Signal records of the Router and relaying protection.
    """

    routerTable = ("Signal:<(10+d)@main.dom> = *@203.0.113.9:5070\n"
                   "Signal:<9*@main.dom> = *@gw.example\n")

    def test_relayNeedsCredentials(self):
        """
        A caller that is neither a Client IP nor authenticated gets 407 for
        a gateway number; with credentials the call goes to the gateway
        with the rewritten Request-URI.
        """
        self.receive(invite(user="4155551234"))
        challenge = self.transport.responses[-1][0]
        self.assertEqual(challenge.code, 407)
        value = challenge.getHeaders("Proxy-Authenticate")[0]
        uri = "sip:4155551234@main.dom"
        auth = digestResponse(value, "INVITE", uri, "alice", "pw")
        self.receive(invite(user="4155551234", branch="z9hG4bKcaller2",
                            extra=["Proxy-Authorization: " + auth]))
        (request, destination), = self.sent()
        self.assertEqual(str(request.requestURI), "sip:4155551234@203.0.113.9:5070")
        self.assertEqual((destination.host, destination.port), ("203.0.113.9", 5070))

    def test_wrongCredentials(self):
        """
        A wrong password is challenged again, never routed.
        """
        self.receive(invite(user="4155551234"))
        value = self.transport.responses[-1][0].getHeaders("Proxy-Authenticate")[0]
        auth = digestResponse(value, "INVITE", "sip:4155551234@main.dom", "alice", "bad")
        self.receive(invite(user="4155551234", branch="z9hG4bKcaller2",
                            extra=["Proxy-Authorization: " + auth]))
        self.assertEqual(self.answers()[-1], 407)
        self.assertEqual(self.sent(), [])

    def test_clientIP(self):
        """
        A Client IP may call the gateway without credentials; a host name
        target is resolved.
        """
        self.directory.setServerDict("Main", {"ClientIPs": "198.51.100.0/24"}, update=True)
        self.receive(invite(user="95551234"))
        (request, destination), = self.sent()
        self.assertEqual(str(request.requestURI), "sip:5551234@gw.example")
        self.assertEqual(destination.host, "203.0.113.9")


class RecordingHost:
    """An application host that records what it was asked to start."""

    def __init__(self):
        self.started = []

    def startApplication(self, st, request, route):
        self.started.append((route.app, list(route.params), route.account, request))


class ApplicationRoutingTests(ProxyTestsMixin, SynchronousTestCase):
    """
    Calls the Router or a call rule sends to PBX applications.
    """

    def setUp(self):
        ProxyTestsMixin.setUp(self)
        self.host = self.stack.context.pbx = RecordingHost()

    def test_straightToApplication(self):
        """A call routed only to an application is handed over without a branch."""
        self.receive(invite(user="pbx"))
        (app, params, account, request), = self.host.started
        self.assertEqual((app, account), ("pbx", "pbx@main.dom"))
        self.assertEqual(self.sent(), [])

    def test_busyToVoicemailBranch(self):
        """
        A busy device and "voicemail on busy": a branch to ourselves whose
        URI names the application; coming back in, it starts voicemail for bob.
        """
        result = self.directory.setAccountPart("bob@main.dom", "SignalRules", [[
            "305", "#VoiceMailBusy", [["Method", "is", "INVITE"]],
            [["Redirect to", "voicemail"]]]])
        if hasattr(result, "addCallback"):
            self.successResultOf(result)
        self.bind("bob", "sip:bob@203.0.113.1:5060")
        self.receive(invite())
        (branch, _), = self.sent()
        self.receive(respond(branch, 486).serialize())
        (looped, destination), = [(r, d) for r, d in self.sent() if r.method == "INVITE"]
        self.assertEqual(destination, self.stack.ua.ownAddress("UDP"))
        self.assertTrue(looped.requestURI.user.startswith("~app."))
        self.assertEqual(self.host.started, [])
        self.receive(looped.serialize(), destination)
        (app, params, account, request), = self.host.started
        self.assertEqual((app, account), ("voicemail", "bob@main.dom"))

    def test_forgedApplicationURI(self):
        """A caller naming an application in a ~app. URI of its own: 404."""
        self.receive(invite(user="~app.eyJ4Ijoxfq.0000000000000000", host="127.0.0.1"))
        self.assertEqual(self.answers()[-1], 404)
        self.assertEqual(self.host.started, [])


class CallRuleTests(ProxyTestsMixin, SynchronousTestCase):
    """
    Incoming call rules acting on proxied calls (rules.md section 7).
    """

    def setRules(self, rules):
        result = self.directory.setAccountPart("bob@main.dom", "SignalRules", rules)
        if hasattr(result, "addCallback"):
            self.successResultOf(result)

    def test_divertAlways(self):
        """
        "Redirect to carol" at the immediate stage: carol's device rings,
        bob's does not; a MESSAGE is not redirected by an INVITE-only rule.
        """
        self.setRules([["100005", "#Divert", [["Method", "is", "INVITE"]],
                        [["Redirect to", "carol"]]]])
        self.bind("bob", "sip:bob@203.0.113.1:5060")
        self.bind("carol", "sip:carol@203.0.113.3:5060")
        self.receive(invite())
        self.assertEqual([d.host for _, d in self.sent()], ["203.0.113.3"])
        self.receive(invite(method="MESSAGE", branch="z9hG4bKmsg"))
        self.assertEqual([d.host for _, d in self.sent()], ["203.0.113.1"])

    def test_rejectWith(self):
        """
        "Reject with 603": the caller gets 603.
        """
        self.setRules([["100005", "r", [["Method", "is", "INVITE"]],
                        [["Reject with", "603"]]]])
        self.receive(invite())
        self.assertEqual(self.answers()[-1], 603)

    def test_busy(self):
        """
        A busy device and a stage-3 rule: the call goes to carol.
        """
        self.setRules([["305", "#Busy", [["Method", "is", "INVITE"]],
                        [["Redirect to", "carol"]]]])
        self.bind("bob", "sip:bob@203.0.113.1:5060")
        self.bind("carol", "sip:carol@203.0.113.3:5060")
        self.receive(invite())
        (branch, _), = self.sent()
        self.receive(respond(branch, 486).serialize())
        invites = [d.host for r, d in self.sent() if r.method == "INVITE"]
        self.assertEqual(invites, ["203.0.113.3"])

    def test_afterSeconds(self):
        """
        A stage-970 rule redirects after 30 s of ringing: bob's branch is
        CANCELled and carol's device rings.
        """
        self.setRules([["97005", "#VoiceMail", [["Method", "is", "INVITE"]],
                        [["Redirect to", "carol"]]]])
        self.bind("bob", "sip:bob@203.0.113.1:5060")
        self.bind("carol", "sip:carol@203.0.113.3:5060")
        self.receive(invite())
        (branch, _), = self.sent()
        self.receive(respond(branch, 180).serialize())
        self.clock.advance(29)
        self.assertEqual(self.sent(), [])
        self.clock.advance(1.1)
        sent = [(r.method, d.host) for r, d in self.sent()]
        self.assertIn(("CANCEL", "203.0.113.1"), sent)
        self.assertIn(("INVITE", "203.0.113.3"), sent)

    def test_noDeviceTimedRuleAtOnce(self):
        """
        With no device registered, the timed rule acts at once.
        """
        self.setRules([["97005", "#VoiceMail", [["Method", "is", "INVITE"]],
                        [["Redirect to", "carol"]]]])
        self.bind("carol", "sip:carol@203.0.113.3:5060")
        self.receive(invite())
        self.assertEqual([d.host for _, d in self.sent()], ["203.0.113.3"])

    def test_forkTo(self):
        """
        "Fork to carol": carol's device rings together with bob's.
        """
        self.setRules([["100005", "#Fork", [["Method", "is", "INVITE"]],
                        [["Fork to", "carol"]]]])
        self.bind("bob", "sip:bob@203.0.113.1:5060")
        self.bind("carol", "sip:carol@203.0.113.3:5060")
        self.receive(invite())
        self.assertEqual(sorted(d.host for _, d in self.sent()),
                         ["203.0.113.1", "203.0.113.3"])


class ServerRuleTests(ProxyTestsMixin, SynchronousTestCase):
    """
    Server-wide Signal rules apply before routing, to every target.
    """

    def test_serverReject(self):
        """
        A server rule rejecting calls from one user applies even to calls
        to a gateway or an unknown name.
        """
        self.directory.setServerDict("Rules", {"SignalRules": [
            ["100009", "block", [["From", "is", "alice@*"]], [["Reject with", "403"]]]]},
            update=True)
        self.bind("bob", "sip:bob@203.0.113.1:5060")
        self.receive(invite())
        self.assertEqual(self.answers()[-1], 403)
        self.assertEqual(self.sent(), [])


class StatisticsTests(ProxyTestsMixin, SynchronousTestCase):
    """
    The stack reports to the server's catalog (C{context.stats}).
    """

    def test_counters(self):
        """
        Requests are counted by method, responses by class, proxied calls,
        registrations and live transactions are read from the stack.
        """
        stats = self.stack.context.stats
        self.bind("bob", "sip:bob@203.0.113.1:5060")
        self.receive(invite())
        self.receive(invite(user="nobody", branch="z9hG4bKother", callId="c2"))
        self.assertEqual(stats.element("cgpro_sip_requests_total/INVITE"), 2)
        self.assertEqual(stats.element("cgpro_sip_responses_total/1xx"), 1)  # 100 Trying
        self.assertEqual(stats.element("cgpro_sip_responses_total/4xx"), 1)
        self.assertEqual(stats.element("cgpro_sip_calls_total"), 1)
        self.assertEqual(stats.element("cgpro_sip_calls_active"), 1)
        self.assertEqual(stats.element("cgpro_sip_registrations"), 1)
        self.assertEqual(stats.element("cgpro_sip_transactions/client"), 1)
