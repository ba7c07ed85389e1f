# -*- test-case-name: tests.integration.test_pbx_gateway -*-
"""
End-to-end tests of the PSTN applications (pbx-apps.md sections 4 to 8):
the real server (C{twistd}) with real SIP peers on real sockets.  SIPp
stands in for the PSTN gateways and for an RSIP provider's registrar;
callers are L{tests.support.rtp.Phone}s.  Router records, PSTN settings,
billing plans and RSIP records are set over the CLI, as an administrator
would; the results are read back over the CLI too (C{GETCDRS},
C{GETACCOUNTINFO ... KEY RSIP}).
"""

import os
import re
import shutil
import socket
import tempfile
import time
import unittest

from twisted.trial.unittest import SynchronousTestCase

from cgpro.cli.client import CLIError, Keyword
from tests.support.pbx import PASSWORD, assertIdle, pbxServer, phone, waitFor
from tests.support.rtp import sdp
from tests.support.sip import (
    BackgroundSipp, UDPAgent, digestResponse, freeUDPPort, haveSipp, runSipp, scenario)

GW_USER = "gwuser"
GW_PASS = "gwpass"
#: The media port the SIPp gateway names in its SDP.
GW_MEDIA = 34567
#: The media server's default port range.
MEDIA_PORTS = range(60000, 60100)






def registerDevice(testCase, port, user, localPort):
    result = runSipp(scenario("register_auth.xml"), port, localPort, user=user,
                     password=PASSWORD)
    testCase.assertEqual(result.returncode, 0, result.stdout[-3000:])


def mediaPort(body):
    """@return: the port of an SDP body's audio line."""
    text = body.decode("latin-1") if isinstance(body, bytes) else body
    m = re.search(r"^m=audio (\d+) ", text, re.M)
    return int(m.group(1)) if m else None


def cdrs(cli, **match):
    """@return: the CDRs whose fields have the given values."""
    return [r for r in cli.command("GETCDRS") or []
            if all(r.get(k) == v for k, v in match.items())]




def storeServerFile(cli, name, text):
    try:
        cli.command("CREATESERVERPBX")
    except Exception:
        pass  # already there
    cli.command("STORESERVERPBXFILE", name, Keyword("DATA"), text.encode("utf-8"))






def gatewaySipp(testCase, port, number, fromUser, user=GW_USER, password=GW_PASS,
                media=GW_MEDIA):
    """
    Start the SIPp gateway (pbx_gw_uas_auth.xml).

    @return: C{(BackgroundSipp, its port)}.
    """
    gwPort = freeUDPPort()
    path = scenario("pbx_gw_uas_auth.xml", NUMBER=re.escape(number),
                    FROM=re.escape(fromUser), USER=user, PASS=password, MEDIAPORT=media)
    gw = BackgroundSipp(path, port, gwPort, user="gw",
                        extra=["-mp", str(freeUDPPort())])
    testCase.addCleanup(gw.stop)
    return gw, gwPort


@unittest.skipUnless(haveSipp(), "SIPp (Debian sip-tester) is not installed")
class GatewayCallerTests(SynchronousTestCase):
    """
    C{gatewaycaller}: authenticated callers reach a PSTN gateway, with
    their caller ID and the gateway's credentials; billing plans price or
    refuse numbers.
    """

    def _call(self, server, cli, port, number, settings, target=None, fromUser="alice",
              table=None, media=GW_MEDIA):
        gw, gwPort = gatewaySipp(self, port, number, fromUser, media=media)
        values = {k: (v % gwPort if isinstance(v, str) and "%d" in v else v)
                  for k, v in settings.items()}
        for k, v in list(values.items()):
            if isinstance(v, dict):
                values[k] = {kk: (vv % gwPort if "%d" in vv else vv) for kk, vv in v.items()}
        cli.updateAccountSettings("alice@main.dom", values)
        cli.setRouterTable(table or "<*@pstn> = gatewaycaller{*}#pbx\n")
        caller = phone(self, port)
        response = caller.call(target or (number + "@pstn"), password=PASSWORD)
        return gw, caller, response

    def test_callThroughGateway(self):
        """
        The caller is challenged (407) and retries; the gateway gets
        C{sip:<number>@gateway} From the caller ID, challenges the server
        (401) and gets the right digest; the caller is answered with the
        gateway's own SDP (media end to end); after the BYE both legs are
        in the CDRs with the cost per the billing plan.
        """
        server, cli, port = pbxServer(self)
        storeServerFile(cli, "billingplan-test.objdata",
                        '{1990 = blocked; 1 = #7; "" = #10;}')
        gw, caller, response = self._call(server, cli, port, "+14155551234", {
            "PSTNGatewayName": "127.0.0.1:%d",
            "PSTNFromName": "16505550000",
            "PSTNGatewayAuthName": GW_USER,
            "PSTNGatewayPassword": GW_PASS,
            "PSTNBillingPlan": "test",
        }, fromUser="16505550000")
        self.assertEqual(response.code, 200, (response.code, response.reason, gw.errors()))
        self.assertEqual(mediaPort(response.body), GW_MEDIA)
        self.assertIn(b"o=gateway", response.body)
        caller.serve(1.5)  # a call of more than a second: one minute billed
        caller.bye()
        caller.serve(1.0)
        self.assertEqual(gw.wait(20), 0, gw.errors())
        legs = waitFor(lambda: cdrs(cli, Application="gatewaycaller", Leg="callout"))
        self.assertEqual(len(legs), 1, cli.command("GETCDRS"))
        out = legs[0]
        self.assertIn("+14155551234@127.0.0.1", out["To"])
        self.assertIn("16505550000", out["From"])
        self.assertTrue(out["Result"].startswith("200"), out)
        assertIdle(self, server)
        self.assertEqual(out.get("Cost"), 7)
        calls = cdrs(cli, Application="gatewaycaller", Leg="call",
                     Caller="alice@main.dom")
        self.assertEqual(len(calls), 1, cli.command("GETCDRS"))
        self.assertIn("Answer", calls[0])

    def test_gatewayKeyDictionarySettings(self):
        """
        Seed 002's C{Signal:<7(10d)@*>=gatewaycaller{+7*,gwru}#pbx}: the
        PSTN settings are dictionaries keyed by gateway; the C{gwru}
        elements are used, C{$} in the From name is the account name.
        """
        server, cli, port = pbxServer(self)
        gw, caller, response = self._call(server, cli, port, "+71234567890", {
            "PSTNGatewayName": {"gwru": "127.0.0.1:%d", "gwus": "127.0.0.1:9"},
            "PSTNFromName": {"gwru": "$", "gwus": "15550000000"},
            "PSTNGatewayAuthName": {"gwru": GW_USER},
            "PSTNGatewayPassword": {"gwru": GW_PASS},
        }, target="71234567890@main.dom",
            table="Signal:<7(10d)@*>=gatewaycaller{+7*,gwru}#pbx\n")
        self.assertEqual(response.code, 200, (response.code, response.reason, gw.errors()))
        self.assertEqual(mediaPort(response.body), GW_MEDIA)
        caller.bye()
        caller.serve(1.0)
        self.assertEqual(gw.wait(20), 0, gw.errors())

    def test_wrongGatewayPassword(self):
        """
        The gateway refuses the server's credentials (403): the caller
        gets a failure, never a 200.
        """
        server, cli, port = pbxServer(self)
        gw, caller, response = self._call(server, cli, port, "+14155551234", {
            "PSTNGatewayName": "127.0.0.1:%d",
            "PSTNFromName": "$",
            "PSTNGatewayAuthName": GW_USER,
            "PSTNGatewayPassword": "not-the-password",
        })
        self.assertEqual(response.code, 403, response.reason)
        self.assertNotEqual(gw.wait(10), 0)

    def test_relayedGateway(self):
        """
        A C{#host} gateway takes no call updates: the caller is answered
        with a media server channel (a port of the media range), not the
        gateway's SDP.
        """
        server, cli, port = pbxServer(self)
        media = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        media.bind(("127.0.0.1", 0))
        media.settimeout(3)
        self.addCleanup(media.close)
        gw, caller, response = self._call(server, cli, port, "+14155551234", {
            "PSTNGatewayName": "#127.0.0.1:%d",
            "PSTNFromName": "$",
            "PSTNGatewayAuthName": GW_USER,
            "PSTNGatewayPassword": GW_PASS,
        }, media=media.getsockname()[1])
        self.assertEqual(response.code, 200, (response.code, response.reason, gw.errors()))
        serverMedia = mediaPort(response.body)
        self.assertIn(serverMedia, MEDIA_PORTS)
        self.assertNotIn(b"o=gateway", response.body)
        caller.serve(0.3)
        # the caller's audio goes to the server's channel and on to the
        # gateway's media address; the gateway's comes back the same way
        caller.rtp.remote = ("127.0.0.1", serverMedia)
        caller.rtp.speak(0.5)
        data, source = media.recvfrom(2048)
        self.assertEqual(data[0] >> 6, 2)
        self.assertIn(source[1], MEDIA_PORTS)
        before = len(caller.rtp.received)
        for n in range(25):
            media.sendto(bytes([0x80, 0x00, 0, n, 0, 0, 1, n, 0, 0, 0, 7]) + b"\x55" * 160,
                         source)
            time.sleep(0.02)
        self.assertTrue(waitFor(lambda: len(caller.rtp.received) > before + 10, timeout=3))
        caller.bye()
        caller.serve(1.0)
        self.assertEqual(gw.wait(20), 0, gw.errors())
        assertIdle(self, server)

    def test_callerCancelsWhileGatewayRings(self):
        """
        The caller gives up while the gateway rings: the caller's INVITE is
        487, the gateway gets a CANCEL, and nothing is left behind.
        """
        server, cli, port = pbxServer(self)
        gwPort = freeUDPPort()
        gw = BackgroundSipp(scenario("pbx_gw_uas_ring.xml"), port, gwPort, user="gw",
                            extra=["-mp", str(freeUDPPort())])
        self.addCleanup(gw.stop)
        cli.setRouterTable("<*@pstn> = gatewaycaller{*}#pbx\n")
        cli.updateAccountSettings("alice@main.dom", {"PSTNGatewayName": "127.0.0.1:%d" % gwPort})
        agent = UDPAgent(port)
        self.addCleanup(agent.close)
        uri = "sip:+14155551234@pstn"
        body = sdp(freeUDPPort())
        hdrs = ["Content-Type: application/sdp"]
        agent.request("INVITE", uri, hdrs, body=body, toUser="+14155551234")
        challenge = agent.receive()
        self.assertEqual(challenge.code, 407)
        auth = digestResponse(challenge.getHeader("Proxy-Authenticate"), "INVITE", uri,
                              "alice", PASSWORD)
        branch = "z9hG4bKcancelme%d" % (agent.port,)
        agent.request("INVITE", uri, hdrs + ["Proxy-Authorization: " + auth], body=body,
                      toUser="+14155551234", branch=branch)
        ringing = agent.receive(skipProvisional=False)
        while ringing.code < 180:
            ringing = agent.receive(skipProvisional=False)
        self.assertEqual(ringing.code, 180)
        cseq = agent.cseq
        cancel = ["CANCEL %s SIP/2.0" % (uri,),
                  "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=%s;rport" % (agent.port, branch),
                  "Max-Forwards: 70",
                  "From: <sip:alice@main.dom>;tag=t%d" % (agent.port,),
                  "To: <sip:+14155551234@main.dom>",
                  "Call-ID: %s" % (agent.callId,),
                  "CSeq: %d CANCEL" % (cseq,),
                  "Content-Length: 0"]
        agent.send(("\r\n".join(cancel) + "\r\n\r\n").encode())
        finals = {}
        while 487 not in finals:
            response = agent.receive()
            finals[response.code] = response
        self.assertIn(200, finals)
        self.assertEqual(gw.wait(15), 0, gw.errors())
        assertIdle(self, server)

    def test_gatewayHangsUp(self):
        """
        The gateway ends the call: the caller gets the BYE, both legs are
        recorded, nothing is left behind.
        """
        server, cli, port = pbxServer(self)
        gwPort = freeUDPPort()
        gw = BackgroundSipp(scenario("pbx_gw_uas_hangup.xml", MEDIAPORT=GW_MEDIA), port,
                            gwPort, user="gw", extra=["-mp", str(freeUDPPort())])
        self.addCleanup(gw.stop)
        cli.setRouterTable("<*@pstn> = gatewaycaller{*}#pbx\n")
        cli.updateAccountSettings("alice@main.dom", {"PSTNGatewayName": "127.0.0.1:%d" % gwPort,
                                                     "PSTNFromName": "$"})
        caller = phone(self, port)
        response = caller.call("+14155551234@pstn", password=PASSWORD)
        self.assertEqual(response.code, 200, response.reason)
        self.assertEqual(mediaPort(response.body), GW_MEDIA)
        deadline = time.time() + 5
        while not caller.byeReceived and time.time() < deadline:
            caller.serve(0.2)
        self.assertTrue(caller.byeReceived)
        self.assertEqual(gw.wait(10), 0, gw.errors())
        assertIdle(self, server)
        legs = waitFor(lambda: len(cdrs(cli, Application="gatewaycaller",
                                        Caller="alice@main.dom")) +
                       len(cdrs(cli, Application="gatewaycaller", Leg="callout")) >= 2 and
                       cdrs(cli, Application="gatewaycaller"))
        self.assertTrue(legs, cli.command("GETCDRS"))

    def test_refusals(self):
        """
        Refusals before any signalling to the gateway: unauthenticated
        callers are challenged; a number the plan blocks is 403 with the
        plan's reason; a malformed plan is 503 (logged, the server goes
        on); a caller without C{PSTNGatewayName} is 403.
        """
        server, cli, port = pbxServer(self)
        cli.setRouterTable("<*@pstn> = gatewaycaller{*}#pbx\n")
        storeServerFile(cli, "billingplan-test.objdata",
                        '{1990 = "blocked number"; 1 = #0; "" = #10;}')
        storeServerFile(cli, "billingplan-broken.objdata", '{1990 = (1, 2);}')
        cli.updateAccountSettings("alice@main.dom", {
            "PSTNGatewayName": "127.0.0.1:9", "PSTNBillingPlan": "test"})

        response = phone(self, port).call("+14155551234@pstn")
        self.assertEqual(response.code, 407)

        response = phone(self, port).call("+19905551234@pstn", password=PASSWORD)
        self.assertEqual((response.code, response.reason), (403, "blocked number"))

        cli.updateAccountSettings("alice@main.dom", {"PSTNBillingPlan": "broken"})
        response = phone(self, port).call("+14155551234@pstn", password=PASSWORD)
        self.assertEqual(response.code, 503, response.reason)
        self.assertTrue(waitFor(lambda: "billing plan billingplan-broken.objdata is malformed"
                                in server.log()), server.log()[-3000:])

        cli.updateAccountSettings("alice@main.dom", {"PSTNBillingPlan": "missing"})
        response = phone(self, port).call("+14155551234@pstn", password=PASSWORD)
        self.assertEqual(response.code, 503, response.reason)

        response = phone(self, port, "bob").call("+14155551234@pstn", password=PASSWORD)
        self.assertEqual(response.code, 403, response.reason)

        # the server still serves calls
        cli.setRouterTable("<*@pstn> = gatewaycaller{*}#pbx\n<911@*> = emergency#pbx@localhost\n")
        response = phone(self, port).call("911@main.dom", password=PASSWORD)
        self.assertEqual(response.code, 302)
        self.assertEqual(len(cdrs(cli, Application="gatewaycaller", Leg="callout")), 0)
        refused = cdrs(cli, Application="gatewaycaller", Caller="alice@main.dom")
        self.assertTrue(any(r["Result"].startswith("403 blocked number") for r in refused),
                        refused)


class RedirectingAppsTests(SynchronousTestCase):
    """
    C{localAreaCall} and C{emergency} redirect (302) authenticated callers;
    unknown applications are 404.
    """

    def test_localAreaCall(self):
        """
        C{1(415)} before a 7-digit number, only C{1} in the domestic
        (C{c}) mode; challenged without credentials; 403 without an area
        code.
        """
        server, cli, port = pbxServer(self)
        cli.setRouterTable("<(7d)@*> = localAreaCall{*}#pbx@localhost\n"
                           "<0(8-20d)@*> = localAreaCall{*,c}#pbx@localhost\n")
        cli.updateAccountSettings("alice@main.dom", {"PSTNAreaCode": "1(415)"})

        response = phone(self, port).call("5551234@main.dom", password=PASSWORD)
        self.assertEqual(response.code, 302, response.reason)
        self.assertEqual(response.getHeaders("Contact"), ["<sip:14155551234@telnum>"])

        response = phone(self, port).call("06505551234@main.dom", password=PASSWORD)
        self.assertEqual(response.code, 302, response.reason)
        self.assertEqual(response.getHeaders("Contact"), ["<sip:16505551234@telnum>"])

        response = phone(self, port).call("5551234@main.dom")
        self.assertEqual(response.code, 407)

        response = phone(self, port, "bob").call("5551234@main.dom", password=PASSWORD)
        self.assertEqual(response.code, 403, response.reason)

    def test_emergency(self):
        """
        C{PSTNEmergency} C{call=sip:112@somewhere} is where 911 goes; with
        no setting, C{911@telnum}.
        """
        server, cli, port = pbxServer(self)
        cli.setRouterTable("<911@*> = emergency#pbx@localhost\n")
        cli.updateAccountSettings("alice@main.dom", {"PSTNEmergency": "call=sip:112@somewhere"})
        response = phone(self, port).call("911@main.dom", password=PASSWORD)
        self.assertEqual(response.code, 302, response.reason)
        self.assertEqual(response.getHeaders("Contact"), ["<sip:112@somewhere>"])

        response = phone(self, port, "bob").call("911@main.dom", password=PASSWORD)
        self.assertEqual(response.code, 302, response.reason)
        self.assertEqual(response.getHeaders("Contact"), ["<sip:911@telnum>"])
        def redirected():
            found = [r for r in cdrs(cli, Application="emergency")
                     if r["Result"].startswith("302")]
            return len(found) == 2 and found

        records = waitFor(redirected)
        self.assertTrue(records, cli.command("GETCDRS"))
        self.assertEqual(sorted(r["Result"] for r in records),
                         ["302 sip:112@somewhere", "302 sip:911@telnum"])

    def test_unknownApplication(self):
        """
        A Router record naming no application: 404 "Unknown application",
        and the server keeps serving.
        """
        server, cli, port = pbxServer(self)
        cli.setRouterTable("<x@main.dom> = nosuchapp#pbx@localhost\n"
                           "<911@*> = emergency#pbx@localhost\n")
        response = phone(self, port).call("x@main.dom")
        self.assertEqual(response.code, 404)
        self.assertIn("Unknown application", response.reason)
        response = phone(self, port).call("911@main.dom", password=PASSWORD)
        self.assertEqual(response.code, 302)
        self.assertIn("unknown application nosuchapp", server.log())


@unittest.skipUnless(haveSipp(), "SIPp (Debian sip-tester) is not installed")
class IncomingTests(SynchronousTestCase):
    """
    C{gatewayincoming} and C{rsipRegister}: calls from a gateway or a
    provider reach the account's device through a back-to-back agent.
    """

    def test_gatewayIncoming(self):
        """
        A call to C{bob@gw.test} is taken by C{gatewayincoming}, which
        calls bob's device: the device sees the caller's From, answers,
        and the caller gets the device's SDP.
        """
        server, cli, port = pbxServer(self)
        cli.setRouterTable("<*@gw.test> = gatewayincoming{*}#pbx@localhost\n")
        devicePort = freeUDPPort()
        registerDevice(self, port, "bob", devicePort)
        uas = BackgroundSipp(scenario("uas_answer.xml"), port, devicePort, user="bob",
                             extra=["-mp", str(freeUDPPort())])
        self.addCleanup(uas.stop)
        caller = phone(self, port)
        caller.agent.domain = "gw.test"
        legs = self.callBridged(cli, caller, "bob@gw.test", uas)
        self.assertIn("alice@gw.test", legs[0]["From"])

    def callBridged(self, cli, caller, target, uas):
        """
        C{caller} calls C{target}; gatewayincoming joins it with the SIPp
        device C{uas} (its SDP reaches the caller), then hangs up.

        @return: the call-out legs in the CDRs.
        """
        response = caller.call(target)
        self.assertEqual(response.code, 200, response.reason)
        self.assertIn(b"o=user1", response.body)
        caller.serve(0.3)
        caller.bye()
        caller.serve(1.0)
        self.assertEqual(uas.wait(20), 0, uas.errors())
        legs = waitFor(lambda: cdrs(cli, Application="gatewayincoming", Leg="callout"))
        self.assertEqual(len(legs), 1, cli.command("GETCDRS"))
        return legs

    def _rsip(self, cli, regPort, password):
        cli.command("SETACCOUNTRSIPS", "alice@main.dom", {"prov": {
            "domain": "127.0.0.1:%d" % (regPort,), "fromName": "5551234",
            "authName": "rsipuser", "password": password, "period": "60s"}})

    def test_rsipRegister(self):
        """
        An RSIP record registers at the provider (SIPp registrar: 401, then
        a verified digest, C{Expires: 180} and a Contact); the account's
        RSIP status shows the time and no error; a call the provider sends
        to the registered Contact reaches alice's device.
        """
        server, cli, port = pbxServer(self)
        regPort = freeUDPPort()
        folder = tempfile.mkdtemp(prefix="cgpro-rsip-")
        self.addCleanup(shutil.rmtree, folder, True)
        messages = os.path.join(folder, "messages.log")
        registrar = BackgroundSipp(
            scenario("pbx_gw_registrar.xml", USER="rsipuser", PASS="rsippass", EXPIRES=180),
            port, regPort, user="prov", extra=["-trace_msg", "-message_file", messages])
        self.addCleanup(registrar.stop)
        devicePort = freeUDPPort()
        registerDevice(self, port, "alice", devicePort)
        self._rsip(cli, regPort, "rsippass")
        self.assertEqual(registrar.wait(20), 0, registrar.errors())
        status = waitFor(lambda: (cli.command("GETACCOUNTINFO", "alice@main.dom",
                                              Keyword("KEY"), "RSIP") or {}).get("prov", {})
                         .get("Last") not in (None, "pending") and
                         cli.command("GETACCOUNTINFO", "alice@main.dom", Keyword("KEY"),
                                     "RSIP"))
        self.assertTrue(status, "no RSIP status")
        self.assertNotIn("Error", status["prov"])
        with open(messages, errors="replace") as f:
            log = f.read()
        contacts = re.findall(r"^Contact:\s*<(sip:[^>]+)>", log, re.M | re.I)
        self.assertTrue(contacts, log[-2000:])
        contact = contacts[0]
        self.assertRegex(contact, r"^sip:rsip-[0-9a-f]+@")

        # the provider calls the Contact: gatewayincoming, then alice's device
        uas = BackgroundSipp(scenario("uas_answer.xml"), port, devicePort, user="alice",
                             extra=["-mp", str(freeUDPPort())])
        self.addCleanup(uas.stop)
        provider = phone(self, port, "bob")
        provider.agent.domain = "provider.example"
        self.callBridged(cli, provider, contact[len("sip:"):], uas)

    def test_rsipUnregisterOnStop(self):
        """
        Stopping the server takes the registration back (C{Expires: 0}).
        """
        server, cli, port = pbxServer(self)
        regPort = freeUDPPort()
        registrar = BackgroundSipp(
            scenario("pbx_gw_registrar.xml", USER="rsipuser", PASS="rsippass",
                     EXPIRES=180), port, regPort, user="prov")
        self.addCleanup(registrar.stop)
        self._rsip(cli, regPort, "rsippass")
        self.assertEqual(registrar.wait(20), 0, registrar.errors())
        # the unregistration is a new REGISTER dialog: a new SIPp takes it
        unregister = BackgroundSipp(scenario("pbx_gw_unregister.xml"), port, regPort,
                                    user="prov")
        self.addCleanup(unregister.stop)

        def registered():
            info = cli.command("GETACCOUNTINFO", "alice@main.dom", Keyword("KEY"), "RSIP")
            last = ((info or {}).get("prov") or {})
            return last.get("Last") not in (None, "pending") and "Error" not in last

        self.assertTrue(waitFor(registered, timeout=8))
        server.stop()
        self.assertEqual(unregister.wait(10), 0, unregister.errors())

    def test_rsipWrongPassword(self):
        """
        With a wrong password the provider refuses the REGISTER: the RSIP
        status Error says C{Illegal password}.
        """
        server, cli, port = pbxServer(self)
        regPort = freeUDPPort()
        registrar = BackgroundSipp(
            scenario("pbx_gw_registrar.xml", USER="rsipuser", PASS="rsippass", EXPIRES=180),
            port, regPort, user="prov")
        self.addCleanup(registrar.stop)
        self._rsip(cli, regPort, "wrong")

        def error():
            info = cli.command("GETACCOUNTINFO", "alice@main.dom", Keyword("KEY"), "RSIP")
            return ((info or {}).get("prov") or {}).get("Error")

        text = waitFor(error, timeout=8)
        self.assertTrue(text and text.startswith("Illegal password"), text)
        registrar.stop()

    def test_rsipBadRecord(self):
        """
        A record with a period the server cannot read is refused by
        SETACCOUNTRSIPS with the reason (nothing half-applied); the good
        records then register.
        """
        server, cli, port = pbxServer(self)
        regPort = freeUDPPort()
        registrar = BackgroundSipp(
            scenario("pbx_gw_registrar.xml", USER="rsipuser", PASS="rsippass", EXPIRES=180),
            port, regPort, user="prov")
        self.addCleanup(registrar.stop)
        good = {"domain": "127.0.0.1:%d" % (regPort,), "fromName": "5551234",
                "authName": "rsipuser", "password": "rsippass", "period": "60s"}
        with self.assertRaises(CLIError) as caught:
            cli.command("SETACCOUNTRSIPS", "alice@main.dom", {
                "bad": {"domain": "127.0.0.1:9", "period": "soon"}, "prov": good})
        self.assertIn("bad period", str(caught.exception))
        self.assertEqual(cli.command("GETACCOUNTRSIPS", "alice@main.dom"), {})
        cli.command("SETACCOUNTRSIPS", "alice@main.dom", {"prov": good})
        self.assertEqual(registrar.wait(20), 0, registrar.errors())

        def info():
            return cli.command("GETACCOUNTINFO", "alice@main.dom", Keyword("KEY"), "RSIP")

        status = waitFor(lambda: "Error" not in info()["prov"] and
                         info()["prov"].get("Last") != "pending" and info())
        self.assertTrue(status, info())
