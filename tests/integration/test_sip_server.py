# -*- test-case-name: tests.integration.test_sip_server -*-
"""
End-to-end tests of the SIP issue ("Proof"): the real server (C{twistd} in
a child process) with real, independent SIP agents: SIPp (sip-tester)
running the scenarios of C{tests/integration/sipp}, sipsak for OPTIONS and
MESSAGE, and a plain-socket user agent (L{UDPAgent}) where one response
must be looked at closely.  Accounts, call rules, Client IPs and the
Router table are set over the CLI, as an administrator would.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

from twisted.trial.unittest import SynchronousTestCase

from tests.support.server import startServer
from tests.support.sip import (
    BackgroundSipp, UDPAgent, digestResponse, freeUDPPort, haveSipp, runSipp,
    scenario, sipPort)

PASSWORD = "pw-Secret1"


def sipServer(testCase, accounts=("alice", "bob", "carol"), **kwargs):
    """
    Start a server with accounts in its Main Domain.

    @return: C{(server, cli, port)}.
    """
    server = startServer(testCase, **kwargs)
    cli = server.client()
    for name in accounts:
        cli.createAccount("%s@%s" % (name, server.domain), {"Password": PASSWORD})
    return server, cli, sipPort(server)


def _tempFile(testCase):
    """@return: a path in a temporary folder removed after the test."""
    folder = tempfile.mkdtemp(prefix="cgpro-sip-test-")
    testCase.addCleanup(shutil.rmtree, folder, True)
    return os.path.join(folder, "file")


def registerDevice(testCase, port, user, localPort):
    """Register C{user}'s device at 127.0.0.1:localPort with SIPp."""
    result = runSipp(scenario("register_auth.xml"), port, localPort, user=user,
                     password=PASSWORD)
    testCase.assertEqual(result.returncode, 0, result.stdout[-3000:] + result.errors.encode())


@unittest.skipUnless(haveSipp(), "SIPp (Debian sip-tester) is not installed")
class SIPpTests(SynchronousTestCase):
    """
    The SIPp scenarios of the issue: registration with digest, a call
    through the proxy, CANCEL, busy and no-answer forwarding by call rules,
    a call to a gateway chosen by the Router.
    """

    def test_registerWithDigest(self):
        """
        SIPp registers with a digest challenge (401, then 200); a wrong
        password fails.
        """
        server, cli, port = sipServer(self)
        registerDevice(self, port, "alice", freeUDPPort())
        bad = runSipp(scenario("register_auth.xml"), port, freeUDPPort(), user="bob",
                      password="wrong")
        self.assertNotEqual(bad.returncode, 0)

    def test_callThroughProxy(self):
        """
        A call from SIPp to a registered SIPp UAS: 180, 200, ACK and BYE
        along the Record-Route, both sides finishing their scenario.
        """
        server, cli, port = sipServer(self)
        devicePort = freeUDPPort()
        registerDevice(self, port, "bob", devicePort)
        uas = BackgroundSipp(scenario("uas_answer.xml"), port, devicePort, user="bob")
        self.addCleanup(uas.stop)
        call = runSipp(scenario("uac_call.xml"), port, freeUDPPort(), user="alice",
                       service="bob")
        self.assertEqual(call.returncode, 0, call.stdout[-3000:] + call.errors.encode())
        self.assertEqual(uas.wait(), 0, uas.errors())

    def test_cancel(self):
        """
        The caller CANCELs a ringing call: 200 for the CANCEL, 487 for the
        INVITE; the device sees the CANCEL too.
        """
        server, cli, port = sipServer(self)
        devicePort = freeUDPPort()
        registerDevice(self, port, "bob", devicePort)
        uas = BackgroundSipp(scenario("uas_ring.xml"), port, devicePort, user="bob")
        self.addCleanup(uas.stop)
        call = runSipp(scenario("uac_cancel.xml"), port, freeUDPPort(), user="alice",
                       service="bob")
        self.assertEqual(call.returncode, 0, call.stdout[-3000:] + call.errors.encode())
        self.assertEqual(uas.wait(), 0, uas.errors())

    def test_busyForwarding(self):
        """
        bob's device answers 486; bob's "on busy" call rule forwards the
        call to carol, whose device answers.
        """
        server, cli, port = sipServer(self)
        cli.command("SETACCOUNTSIGNALRULES", "bob@main.dom",
                    [["305", "#Busy", [["Method", "is", "INVITE"]],
                      [["Redirect to", "carol"]]]])
        bobPort, carolPort = freeUDPPort(), freeUDPPort()
        registerDevice(self, port, "bob", bobPort)
        registerDevice(self, port, "carol", carolPort)
        busy = BackgroundSipp(scenario("uas_busy.xml"), port, bobPort, user="bob")
        self.addCleanup(busy.stop)
        answer = BackgroundSipp(scenario("uas_answer.xml"), port, carolPort, user="carol")
        self.addCleanup(answer.stop)
        call = runSipp(scenario("uac_call.xml"), port, freeUDPPort(), user="alice",
                       service="bob")
        self.assertEqual(call.returncode, 0, call.stdout[-3000:] + call.errors.encode())
        self.assertEqual(busy.wait(), 0, busy.errors())
        self.assertEqual(answer.wait(), 0, answer.errors())

    def test_noAnswerForwarding(self):
        """
        bob's device rings without an answer; after 2 seconds his call rule
        (stage 998: "after 2 s") redirects the call to carol: bob's device
        gets a CANCEL, carol's answers.
        """
        server, cli, port = sipServer(self)
        cli.command("SETACCOUNTSIGNALRULES", "bob@main.dom",
                    [["99805", "#NoAnswer", [["Method", "is", "INVITE"]],
                      [["Redirect to", "carol"]]]])
        bobPort, carolPort = freeUDPPort(), freeUDPPort()
        registerDevice(self, port, "bob", bobPort)
        registerDevice(self, port, "carol", carolPort)
        ring = BackgroundSipp(scenario("uas_ring.xml"), port, bobPort, user="bob")
        self.addCleanup(ring.stop)
        answer = BackgroundSipp(scenario("uas_answer.xml"), port, carolPort, user="carol")
        self.addCleanup(answer.stop)
        started = time.time()
        call = runSipp(scenario("uac_call.xml"), port, freeUDPPort(), user="alice",
                       service="bob")
        self.assertEqual(call.returncode, 0, call.stdout[-3000:] + call.errors.encode())
        self.assertGreaterEqual(time.time() - started, 2.0)
        self.assertEqual(ring.wait(), 0, ring.errors())
        self.assertEqual(answer.wait(), 0, answer.errors())

    def test_busyWithoutRule(self):
        """
        Without a call rule the caller gets the device's 486.
        """
        server, cli, port = sipServer(self)
        bobPort = freeUDPPort()
        registerDevice(self, port, "bob", bobPort)
        busy = BackgroundSipp(scenario("uas_busy.xml"), port, bobPort, user="bob")
        self.addCleanup(busy.stop)
        call = runSipp(scenario("uac_expect.xml", CODE=486), port, freeUDPPort(),
                       user="alice", service="bob")
        self.assertEqual(call.returncode, 0, call.stdout[-3000:] + call.errors.encode())

    def test_gatewayByRouter(self):
        """
        A Signal record of the Router table sends 10-digit numbers to a
        gateway (a SIPp UAS); a Client IP caller reaches it without
        credentials and the gateway sees the rewritten Request-URI.
        """
        server, cli, port = sipServer(self)
        gatewayPort = freeUDPPort()
        cli.setRouterTable("Signal:<(10+d)@main.dom> = *@127.0.0.1:%d\n" % (gatewayPort,))
        cli.command("SETCLIENTIPS", "127.0.0.1")
        gateway = BackgroundSipp(scenario("uas_answer.xml"), port, gatewayPort,
                                 user="gw", extra=["-trace_msg", "-message_file",
                                                   _tempFile(self)])
        self.addCleanup(gateway.stop)
        call = runSipp(scenario("uac_call.xml"), port, freeUDPPort(), user="alice",
                       service="4155551234")
        self.assertEqual(call.returncode, 0, call.stdout[-3000:] + call.errors.encode())
        self.assertEqual(gateway.wait(), 0, gateway.errors())
        with open(gateway.argv[gateway.argv.index("-message_file") + 1], errors="replace") as f:
            trace = f.read()
        self.assertIn("INVITE sip:4155551234@127.0.0.1:%d SIP/2.0" % (gatewayPort,), trace)


class RelayProtectionTests(SynchronousTestCase):
    """
    Seed 000's "Relay to Non-Clients for: clients", over a plain socket.
    """

    def test_nonClientMustAuthenticate(self):
        """
        A caller that is not a Client IP gets 407 for a gateway number,
        and reaches the gateway after answering the challenge; calls to
        local accounts need no credentials.
        """
        server, cli, port = sipServer(self)
        gateway = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        gateway.bind(("127.0.0.1", 0))
        gateway.settimeout(5)
        self.addCleanup(gateway.close)
        gatewayPort = gateway.getsockname()[1]
        cli.setRouterTable("Signal:<(10+d)@main.dom> = *@127.0.0.1:%d\n" % (gatewayPort,))
        agent = UDPAgent(port)
        self.addCleanup(agent.close)
        uri = "sip:4155551234@main.dom"
        agent.request("MESSAGE", uri, ["Content-Type: text/plain"], b"hi",
                      toUser="4155551234")
        challenge = agent.receive()
        self.assertEqual(challenge.code, 407)
        value = challenge.getHeaders("Proxy-Authenticate")[0]
        agent.request("MESSAGE", uri, ["Content-Type: text/plain", "Proxy-Authorization: "
                                       + digestResponse(value, "MESSAGE", uri, "alice", PASSWORD)],
                      b"hi", toUser="4155551234")
        data, _ = gateway.recvfrom(65535)
        self.assertTrue(data.startswith(
            b"MESSAGE sip:4155551234@127.0.0.1:%d SIP/2.0" % (gatewayPort,)), data[:200])
        # a local account: no challenge (bob has no device: 480)
        agent.request("MESSAGE", "sip:bob@main.dom", ["Content-Type: text/plain"], b"hi",
                      toUser="bob")
        self.assertEqual(agent.receive().code, 480)


@unittest.skipUnless(shutil.which("sipsak"), "sipsak is not installed")
class SipsakTests(SynchronousTestCase):
    """
    sipsak (an independent SIP tool) for OPTIONS and MESSAGE.
    """

    def test_options(self):
        """
        sipsak's OPTIONS ping to the server gets 200 (exit code 0).
        """
        server, cli, port = sipServer(self, accounts=())
        result = subprocess.run(["sipsak", "-s", "sip:127.0.0.1:%d" % (port,), "-vv"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        self.assertEqual(result.returncode, 0, result.stdout)
        self.assertIn(b"200 OK", result.stdout)

    @unittest.skipUnless(haveSipp(), "SIPp (Debian sip-tester) is not installed")
    def test_message(self):
        """
        An instant message sent with sipsak to bob (at the server's
        address, which stands for the Main Domain) reaches his registered
        device (a SIPp UAS), whose 200 comes back to sipsak.
        """
        server, cli, port = sipServer(self)
        bobPort = freeUDPPort()
        registerDevice(self, port, "bob", bobPort)
        device = BackgroundSipp(scenario("uas_message.xml"), port, bobPort, user="bob")
        self.addCleanup(device.stop)
        # sipsak's own -M mode crashes (0.9.8); it sends a message file
        # as it is, adding its Via on top, and reports the final response
        message = _tempFile(self)
        with open(message, "wb") as f:
            f.write(b"MESSAGE sip:bob@127.0.0.1 SIP/2.0\r\n"
                    b"Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bKsipsak1;rport\r\n"
                    b"From: <sip:alice@main.dom>;tag=s1\r\n"
                    b"To: <sip:bob@main.dom>\r\n"
                    b"Call-ID: sipsak-msg-1@127.0.0.1\r\n"
                    b"CSeq: 1 MESSAGE\r\n"
                    b"Max-Forwards: 70\r\n"
                    b"Content-Type: text/plain\r\n"
                    b"Content-Length: 9\r\n\r\nhello bob")
        result = subprocess.run(
            ["sipsak", "-f", message, "-s", "sip:bob@127.0.0.1:%d" % (port,), "-vv"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        self.assertEqual(result.returncode, 0, result.stdout)
        self.assertIn(b"SIP/2.0 200 OK", result.stdout)
        self.assertEqual(device.wait(), 0, device.errors())


class DigestAlgorithmTests(SynchronousTestCase):
    """
    The challenged digest algorithms follow the DigestAlgorithms setting.
    """

    def test_sha256(self):
        """
        MD5 alone by default; with SHA-256 added over the CLI the next 401
        offers both and a SHA-256 answer registers.
        """
        server, cli, port = sipServer(self, accounts=("alice",))
        agent = UDPAgent(port)
        self.addCleanup(agent.close)
        agent.request("REGISTER", "sip:main.dom")
        challenge = agent.receive()
        self.assertEqual([c.split("algorithm=")[1].split(",")[0]
                          for c in challenge.getHeaders("WWW-Authenticate")], ["MD5"])
        cli.command("UPDATEMODULE", "SIP", {"DigestAlgorithms": ["SHA-256", "MD5"]})
        self.assertEqual(agent.register(PASSWORD, algorithm="SHA-256").code, 200)
