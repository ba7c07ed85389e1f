# -*- test-case-name: tests.integration.test_media_server -*-
"""
End-to-end tests of media relaying (the media issue): the real server
anchors a call's RTP in its relay, with two user agents on plain sockets
that send and check real RTP at both ends, move one side with a re-INVITE,
hang up, and leave a call silent.
"""

import os
import re
import socket
import struct
import time
import unittest

from twisted.trial.unittest import SynchronousTestCase

from cgpro.sip.message import parseMessage
from tests.support.server import startServer
from tests.support.sip import (
    BackgroundSipp, UDPAgent, freeUDPPort, haveSipp, runSipp, scenario, sipPort)

PASSWORD = "pw-Secret1"
MEDIA = "41000-41099"


def sdp(port, host="127.0.0.1"):
    return ("v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n"
            "m=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n" % (host, host, port)).encode()


def sdpPort(message):
    match = re.search(rb"m=audio (\d+) ", message.body)
    return int(match.group(1))


def sdpHost(message):
    return re.search(rb"c=IN IP4 (\S+)", message.body).group(1).decode()


def rtp(seq, payload=b"\xff" * 160):
    return struct.pack("!BBHII", 0x80, 0, seq, seq * 160, 0x1234) + payload


class Endpoint:
    """An RTP socket of a phone."""

    def __init__(self, testCase):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(2)
        testCase.addCleanup(self.sock.close)
        self.port = self.sock.getsockname()[1]

    def send(self, port, seq):
        self.sock.sendto(rtp(seq), ("127.0.0.1", port))

    def receive(self):
        data, _ = self.sock.recvfrom(2048)
        return struct.unpack("!H", data[2:4])[0]

    def silent(self, wait=0.5):
        self.sock.settimeout(wait)
        try:
            self.sock.recvfrom(2048)
        except socket.timeout:
            return True
        finally:
            self.sock.settimeout(2)
        return False


class Phone(UDPAgent):
    """A UDPAgent that can answer and send requests inside a dialog."""

    def waitRequest(self, method, timeout=5):
        deadline = time.time() + timeout
        while True:
            self.sock.settimeout(max(0.01, deadline - time.time()))
            data, peer = self.sock.recvfrom(65535)
            message = parseMessage(data)
            if getattr(message, "method", None) == method:
                return message, peer

    def answer(self, request, peer, code=200, body=b"", tag="callee"):
        lines = ["SIP/2.0 %d OK" % code]
        for name in ("Via", "Record-Route"):
            lines += ["%s: %s" % (name, v) for v in request.getHeaders(name)]
        to = request.getHeader("To")
        if "tag=" not in to:
            to += ";tag=" + tag
        lines += ["From: " + request.getHeader("From"), "To: " + to,
                  "Call-ID: " + request.callId, "CSeq: " + request.getHeader("CSeq"),
                  "Contact: <sip:%s@127.0.0.1:%d>" % (self.user, self.port)]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append("Content-Length: %d" % len(body))
        self.sock.sendto(("\r\n".join(lines) + "\r\n\r\n").encode() + body, peer)


def inDialog(phone, method, target, routes, fromTag, toTag, toUser, callId, cseq,
             body=b""):
    lines = ["%s %s SIP/2.0" % (method, target),
             "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK%s%d;rport" % (phone.port, method, cseq),
             "Max-Forwards: 70"]
    lines += ["Route: " + r for r in routes]
    lines += ["From: <sip:%s@main.dom>;tag=%s" % (phone.user, fromTag),
              "To: <sip:%s@main.dom>;tag=%s" % (toUser, toTag),
              "Call-ID: " + callId, "CSeq: %d %s" % (cseq, method),
              "Contact: <sip:%s@127.0.0.1:%d>" % (phone.user, phone.port)]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append("Content-Length: %d" % len(body))
    phone.send(("\r\n".join(lines) + "\r\n\r\n").encode() + body)


class MediaRelayTests(SynchronousTestCase):
    """
    A call with MediaProxy=Always: RTP flows both ways through the relay.
    """

    def setUp(self):
        self.server = startServer(self, extraArgs=["--media-ports", MEDIA])
        cli = self.server.client()
        for name in ("alice", "bob"):
            cli.createAccount("%s@main.dom" % name, {"Password": PASSWORD})
        cli.command("UPDATEMODULE", "SIP", {"MediaProxy": "Always"})
        self.cli = cli
        port = sipPort(self.server)
        self.alice = Phone(port, "alice")
        self.bob = Phone(port, "bob")
        self.addCleanup(self.alice.close)
        self.addCleanup(self.bob.close)
        self.assertEqual(self.bob.register(PASSWORD).code, 200)

    def call(self, aliceMedia, bobMedia):
        """
        alice calls bob; bob answers.

        @return: C{(toBob, toAlice, invite, ok)}: the relay ports each side
            was told to send to, bob's INVITE and alice's 200.
        """
        self.alice.request("INVITE", "sip:bob@main.dom", ["Content-Type: application/sdp"],
                           sdp(aliceMedia.port), toUser="bob")
        invite, peer = self.bob.waitRequest("INVITE")
        toAlice = sdpPort(invite)
        self.assertEqual(sdpHost(invite), "127.0.0.1")
        self.assertTrue(41000 <= toAlice <= 41099, toAlice)
        self.bob.answer(invite, peer, 200, sdp(bobMedia.port))
        ok = self.alice.receive()
        self.assertEqual(ok.code, 200)
        toBob = sdpPort(ok)
        self.assertTrue(41000 <= toBob <= 41099, toBob)
        self.assertNotEqual(toBob, toAlice)
        return toBob, toAlice, invite, ok

    def test_rtpBothWaysReInviteAndBye(self):
        """
        RTP sent by each phone to the relay port in its SDP arrives at the
        other; after bob moves his media with a re-INVITE, the new socket
        sends and receives; after the BYE nothing is forwarded.
        """
        aliceMedia, bobMedia = Endpoint(self), Endpoint(self)
        toBob, toAlice, invite, ok = self.call(aliceMedia, bobMedia)
        for seq in range(1, 6):
            aliceMedia.send(toBob, seq)
            self.assertEqual(bobMedia.receive(), seq)
            bobMedia.send(toAlice, 100 + seq)
            self.assertEqual(aliceMedia.receive(), 100 + seq)

        # bob moves his media to a new socket with a re-INVITE
        moved = Endpoint(self)
        routes = list(reversed(invite.getHeaders("Record-Route")))
        aliceContact = str(invite.contact[0].uri)
        inDialog(self.bob, "INVITE", aliceContact, routes, "callee", invite.fromAddr.tag,
                 "alice", invite.callId, 10, sdp(moved.port))
        reinvite, peer = self.alice.waitRequest("INVITE")
        self.assertEqual(sdpPort(reinvite), toBob, "alice keeps sending to the same port")
        self.alice.answer(reinvite, peer, 200, sdp(aliceMedia.port), tag=invite.fromAddr.tag)
        answer = self.bob.receive()
        self.assertEqual(answer.code, 200)
        self.assertEqual(sdpPort(answer), toAlice)
        moved.send(toAlice, 200)
        self.assertEqual(aliceMedia.receive(), 200)
        aliceMedia.send(toBob, 7)
        self.assertEqual(moved.receive(), 7)
        self.assertTrue(bobMedia.silent(0.3), "the old socket no longer gets media")

        # alice hangs up: the relay lets the ports go
        sessions = self.cli.command("LISTMEDIASESSIONS")
        self.assertEqual(len(sessions), 1)
        legs = sessions[0]["Legs"]
        self.assertEqual(int(legs[0]["packets"]), 6)    # from alice
        self.assertEqual(int(legs[1]["packets"]), 6)    # from bob, both sockets
        bobContact = str(ok.contact[0].uri)
        inDialog(self.alice, "BYE", bobContact, ok.getHeaders("Record-Route"),
                 invite.fromAddr.tag, ok.toAddr.tag, "bob", invite.callId, 2)
        bye, peer = self.bob.waitRequest("BYE")
        self.bob.answer(bye, peer, 200)
        self.assertEqual(self.alice.receive().code, 200)
        time.sleep(0.2)
        self.assertEqual(self.cli.command("LISTMEDIASESSIONS"), [])
        stats = self.cli.command("GETMEDIASTATS")
        self.assertEqual(int(stats["releasedBye"]), 1)
        aliceMedia.send(toBob, 8)
        self.assertTrue(moved.silent(0.5))

    def test_thirdPartyDropped(self):
        """
        Once alice's address is latched, packets from another address to
        her relay port are not forwarded.
        """
        aliceMedia, bobMedia = Endpoint(self), Endpoint(self)
        toBob, toAlice, _, _ = self.call(aliceMedia, bobMedia)
        aliceMedia.send(toBob, 1)
        self.assertEqual(bobMedia.receive(), 1)
        intruder = Endpoint(self)
        intruder.send(toBob, 66)
        self.assertTrue(bobMedia.silent(0.5))
        aliceMedia.send(toBob, 2)
        self.assertEqual(bobMedia.receive(), 2)


PCAP = "/usr/share/sip-tester/g711a.pcap"


@unittest.skipUnless(haveSipp() and os.path.exists(PCAP), "SIPp with its pcap files is needed")
class SIPpMediaTests(SynchronousTestCase):
    """
    Two SIPp endpoints: the caller plays G.711 audio, the callee echoes it
    (-rtp_echo); both directions pass through the relay.
    """

    def test_audioBothWays(self):
        """
        During the call the relay has received packets from both SIPp
        endpoints and forwarded them to the other.
        """
        server = startServer(self, extraArgs=["--media-ports", MEDIA])
        cli = server.client()
        for name in ("alice", "bob"):
            cli.createAccount("%s@main.dom" % name, {"Password": PASSWORD})
        cli.command("UPDATEMODULE", "SIP", {"MediaProxy": "Always"})
        port = sipPort(server)
        bobPort = freeUDPPort()
        result = runSipp(scenario("register_auth.xml"), port, bobPort, user="bob",
                         password=PASSWORD)
        self.assertEqual(result.returncode, 0, result.stdout[-2000:])
        uas = BackgroundSipp(scenario("uas_answer.xml"), port, bobPort, user="bob",
                             extra=["-rtp_echo", "-mp", str(freeUDPPort())])
        self.addCleanup(uas.stop)
        uac = BackgroundSipp(scenario("uac_call_rtp.xml", PCAP=PCAP), port, freeUDPPort(),
                             user="alice", service="bob", extra=["-mp", str(freeUDPPort())])
        self.addCleanup(uac.stop)
        time.sleep(2.5)
        sessions = cli.command("LISTMEDIASESSIONS")
        self.assertEqual(len(sessions), 1, sessions)
        caller, callee = sessions[0]["Legs"]
        self.assertGreater(int(caller["packets"]), 20)
        self.assertGreater(int(callee["packets"]), 20)
        self.assertGreater(int(caller["forwarded"]), 20)
        self.assertGreater(int(callee["forwarded"]), 20)
        self.assertEqual(uac.wait(), 0, uac.errors())
        self.assertEqual(uas.wait(), 0, uas.errors())


class MediaSilenceTests(SynchronousTestCase):
    """
    A call whose media stops is released by the relay.
    """

    def test_silentCallReleased(self):
        """
        With MediaIdleTimeout 2s, a call that sends no media loses its
        relay ports: packets sent later are not forwarded.
        """
        server = startServer(self, extraArgs=["--media-ports", MEDIA])
        cli = server.client()
        for name in ("alice", "bob"):
            cli.createAccount("%s@main.dom" % name, {"Password": PASSWORD})
        cli.command("UPDATESERVERSETTINGS", {"MediaIdleTimeout": "2s"})
        cli.command("UPDATEMODULE", "SIP", {"MediaProxy": "Always"})
        server.stop()
        server.start()
        port = sipPort(server)
        alice, bob = Phone(port, "alice"), Phone(port, "bob")
        self.addCleanup(alice.close)
        self.addCleanup(bob.close)
        self.assertEqual(bob.register(PASSWORD).code, 200)
        aliceMedia, bobMedia = Endpoint(self), Endpoint(self)
        alice.request("INVITE", "sip:bob@main.dom", ["Content-Type: application/sdp"],
                      sdp(aliceMedia.port), toUser="bob")
        invite, peer = bob.waitRequest("INVITE")
        bob.answer(invite, peer, 200, sdp(bobMedia.port))
        toBob = sdpPort(alice.receive())
        time.sleep(5)
        aliceMedia.send(toBob, 1)
        self.assertTrue(bobMedia.silent(0.5))
