# -*- test-case-name: tests.integration.test_pbx_um -*-
"""
Unified messaging end to end: the real server (C{twistd cgpro}) with its
PBX applications (C{pbx}, C{voicemail}, C{service}) against real phones on
sockets (L{tests.support.rtp.Phone}: SIP on a UDP socket, G.711 and
RFC 4733 on an RTP socket) and SIPp (sip-tester) callers and devices,
following the rows of seed 004's interop matrix (pbx-apps.md section 11)
that apply to us.  Voice messages are read back over IMAP, the figures
over the metrics listener.

One server serves the whole module (started by the first test, stopped
when the process exits); each test uses accounts of its own, so the tests
do not see each other's messages.
"""

import atexit
import email
import email.policy
import glob
import imaplib
import os
import threading
import time
import unittest
import urllib.request

from twisted.trial.unittest import SynchronousTestCase

from cgpro.sip.callrules import presetRules
from tests.support.mail import port, unverifiedContext
from tests.support.pbx import waitFor
from tests.support.rtp import ETC, Phone, promptFrames
from tests.support.server import ServerProcess
from tests.support.sip import (
    BackgroundSipp, UDPAgent, freeUDPPort, haveSipp, runSipp, scenario, sipPort)

PASSWORD = "pw-Secret1"
DOMAIN = "main.dom"
IMAP_PORT = 143
METRICS_PORT = 9106
PCAPS = "/usr/share/sip-tester"

#: account -> (settings, aliases, Signal rule presets)
ACCOUNTS = {
    "alice": ({"RealName": "Alice Liddell"}, (), ()),
    # row 1: a mailbox logged into through the pilot
    "mbox": ({"RealName": "Mail Box", "VoiceMailPIN": "4321"}, ("310",), ()),
    # rows 4a/4b: voicemail on busy, no answer and failure (no device registered)
    "vmint": ({"RealName": "Val Internal"}, (), ("voicemailbusy", "noanswer", "failure")),
    "vmext": ({"RealName": "Vic External"}, (), ("voicemailbusy", "noanswer", "failure")),
    # rows 6a-6c: extensions the attendant transfers to
    "ext6a": ({"RealName": "Ann Answer"}, ("301",), ()),
    "ext6b": ({"RealName": "Bea Busy"}, ("302",), ()),
    "ext6c": ({"RealName": "Cid Noanswer"}, ("303",), ()),
    # row 13: message-waiting indication (voicemail at once)
    "mwi": ({"RealName": "Max Waiting"}, (), ("voicemail0",)),
    # row 8: calls his own voicemail (voicemail at once)
    "self8": ({"RealName": "Sam Self", "VoiceMailPIN": "8888"}, (), ("voicemail0",)),
    # rows 1/3: a mailbox with a message, walked through by DTMF
    "mbox2": ({"RealName": "Mo Messages", "VoiceMailPIN": "5555"}, (), ("voicemail0",)),
    # bad input: hang-up mid-recording
    "vmhang": ({"RealName": "Hal Hangup"}, (), ("voicemail0",)),
}


def _rules(account, presets):
    rules = []
    for preset in presets:
        if preset == "voicemail0":
            rules.append(presetRules("voicemail", seconds=0, account=account))
        elif preset in ("failure", "noanswer"):
            rules.append(presetRules(preset, target="voicemail", account=account))
        else:
            rules.append(presetRules(preset, account=account))
    return rules


class _Shared:
    """The module's server, started once."""

    server = None
    lock = threading.Lock()

    @classmethod
    def get(cls):
        with cls.lock:
            if cls.server is None:
                server = ServerProcess()
                atexit.register(server.cleanup)
                server.start()
                cli = server.client()
                for name, (settings, aliases, presets) in ACCOUNTS.items():
                    account = "%s@%s" % (name, DOMAIN)
                    values = dict(settings, Password=PASSWORD)
                    cli.createAccount(account, values)
                    if aliases:
                        cli.setAccountAliases(account, list(aliases))
                    if presets:
                        cli.command("SETACCOUNTSIGNALRULES", account, _rules(account, presets))
                # the transferred calls ring 3 s before voicemail (row 6c)
                cli.command("UPDATEACCOUNTSETTINGS", "pbx@" + DOMAIN,
                            {"PBXNoAnswerTimeout": "3"})
                # the voicemail pilot (row 1)
                cli.setRouterTable("Signal:<vm@%s> = service#pbx@%s\n" % (DOMAIN, DOMAIN))
                cls.server = server
                cls.cli = cli
            return cls.server


def metrics(server):
    """@return: C{{name or (name, kind): value}} of the PBX and media figures."""
    url = "http://127.0.0.1:%d/metrics" % (port(server, METRICS_PORT),)
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _, value = line.rpartition(" ")
        out[name] = float(value)
    return out


def counted(server, kind):
    """@return: the PBX event counter C{kind} (C{digits}, C{attendant_invalid}...)."""
    return metrics(server).get('cgpro_pbx_events_total{kind="%s"}' % (kind,), 0)


def digitsCounted(server):
    return counted(server, "digits")




def waitIdle(server, timeout=15.0):
    """@return: the final figures once no PBX task and no media channel is left."""
    def idle():
        figures = metrics(server)
        if figures.get("cgpro_pbx_tasks") == 0 and figures.get("cgpro_media_channels") == 0:
            return figures
        return None
    return waitFor(idle, timeout, 0.25) or metrics(server)


_DISTINCT = {}


def distinctFrames(name, codec="PCMU"):
    """
    The frames of stock prompt C{name} that no other stock prompt has
    (silence and shared sounds would make every prompt look heard).
    """
    key = (name, codec)
    if key not in _DISTINCT:
        others = set()
        for path in glob.glob(os.path.join(ETC, "*.wav")):
            other = os.path.basename(path)[:-4]
            if other != name:
                others.update(promptFrames(other, codec))
        _DISTINCT[key] = set(promptFrames(name, codec)) - others
    return _DISTINCT[key]


def heard(phone, name, fraction=0.8, codec="PCMU", since=0):
    """Whether C{fraction} of the distinct frames of C{name} arrived (after packet C{since})."""
    frames = distinctFrames(name, codec)
    payloadType = 0 if codec == "PCMU" else 8
    with phone.rtp._lock:
        got = {p for pt, p, _ in phone.rtp.received[since:] if pt == payloadType}
    return bool(frames) and len(frames & got) >= fraction * len(frames)


def heardSome(phone, name, fraction=0.8, timeout=15, codec="PCMU", since=0):
    """Wait until prompt C{name} (C{fraction} of it: prompts can be interrupted) arrived."""
    return waitFor(lambda: heard(phone, name, fraction, codec, since), timeout, 0.1)


def imapMessages(server, user):
    """@return: the parsed messages of C{user}'s INBOX, read over IMAP."""
    client = imaplib.IMAP4("127.0.0.1", port(server, IMAP_PORT), timeout=30)
    try:
        client.starttls(ssl_context=unverifiedContext())
        client.login("%s@%s" % (user, DOMAIN), PASSWORD)
        typ, data = client.select("INBOX", readonly=True)
        count = int(data[0])
        messages = []
        for n in range(1, count + 1):
            typ, data = client.fetch(str(n), "(BODY.PEEK[])")
            messages.append(email.message_from_bytes(data[0][1], policy=email.policy.default))
        client.logout()
        return messages
    except Exception:
        client.shutdown()
        raise


def waitMessages(server, user, count=1, timeout=15):
    return waitFor(lambda: len(imapMessages(server, user)) >= count and imapMessages(
        server, user), timeout, 0.5)


def wavAttachment(message):
    for part in message.walk():
        if part.get_content_type() == "audio/wav" or (
                part.get_content_maintype() == "audio" and "wav" in part.get_content_type()):
            return part.get_payload(decode=True)
    return None


class _Base(SynchronousTestCase):

    def setUp(self):
        self.server = _Shared.get()
        self.cli = _Shared.cli
        self.port = sipPort(self.server)

    def phone(self, user="alice", domain=DOMAIN, codecs=("PCMU",)):
        phone = Phone(self.port, user=user, domain=domain, codecs=codecs)
        self.addCleanup(phone.close)
        return phone

    def call(self, phone, target, password=PASSWORD):
        response = phone.call(target, password=password)
        self.assertEqual(response.code, 200, "%s: %s %s" % (target, response.code,
                                                            getattr(response, "phrase", "")))
        self.addCleanup(self._hangup, phone)
        return response

    def _hangup(self, phone):
        if not phone.byeReceived:
            try:
                phone.bye()
                phone.serve(0.3)
            except Exception:
                pass

    def leaveMessage(self, phone, seconds=3.0):
        """Speak after the beep, then hang up (the message is kept)."""
        self.assertTrue(heardSome(phone, "greeting", 0.3, timeout=10), "no greeting")
        self.assertTrue(heardSome(phone, "beep", timeout=10), "no beep")
        phone.rtp.speak(seconds)
        phone.bye()
        phone.serve(0.5)

    def assertIdle(self):
        figures = waitIdle(self.server)
        self.assertEqual(figures.get("cgpro_pbx_tasks"), 0, figures)
        self.assertEqual(figures.get("cgpro_media_channels"), 0, figures)


class MailboxTests(_Base):
    """Rows 1, 8 and 12: the pilot, the PIN, the codecs."""

    def test_pilotLogon(self):
        """
        Row 1: dial the voicemail pilot, log in by extension + PIN (RFC 4733
        digits): C{enterextension}, C{enterpin}, then C{nomessages}.
        """
        phone = self.phone()
        self.call(phone, "vm@" + DOMAIN)
        self.assertTrue(heardSome(phone, "enterextension", 0.5), "no extension prompt")
        phone.rtp.sendDigits("310#")
        self.assertTrue(heardSome(phone, "enterpin", 0.5), "no PIN prompt")
        phone.rtp.sendDigits("4321#")
        self.assertTrue(heardSome(phone, "nomessages", timeout=10), "no mailbox greeting")
        self.assertFalse(heard(phone, "wrongpin"))

    def test_pilotWrongPIN(self):
        """
        Row 1, the wrong PIN: C{wrongpin} is played and the extension is
        asked for again.
        """
        phone = self.phone()
        self.call(phone, "vm@" + DOMAIN)
        self.assertTrue(heardSome(phone, "enterextension", 0.5))
        phone.rtp.sendDigits("310#")
        self.assertTrue(heardSome(phone, "enterpin", 0.5))
        before = len(phone.rtp.received)
        phone.rtp.sendDigits("1111#")
        self.assertTrue(heardSome(phone, "wrongpin", timeout=10), "no wrong-PIN prompt")
        self.assertFalse(heard(phone, "nomessages"))
        self.assertGreater(len(phone.rtp.received), before)

    def test_ownVoicemail(self):
        """
        Row 8: an owner calling his own voicemail lands directly at the
        PIN prompt (no greeting, no extension prompt).
        """
        phone = self.phone("self8")
        self.call(phone, "self8@" + DOMAIN)
        self.assertTrue(heardSome(phone, "enterpin", 0.5), "no PIN prompt")
        self.assertFalse(heard(phone, "greeting", fraction=0.2))
        self.assertFalse(heard(phone, "enterextension", fraction=0.2))
        phone.rtp.sendDigits("8888#")
        self.assertTrue(heardSome(phone, "nomessages", timeout=10))

    def test_mailboxWithMessage(self):
        """
        Rows 1 and 3: a caller leaves mbox2 a message; mbox2 logs on (own
        voicemail, PIN by RFC 4733), hears "you have 1 new messages", the
        message and the menu, deletes it with 7: C{messagedeleted}, and
        the INBOX read over IMAP is empty.
        """
        caller = self.phone("4155550126", domain="example.net")
        self.call(caller, "mbox2@" + DOMAIN, password=None)
        self.leaveMessage(caller, 2.0)
        self.assertEqual(len(waitMessages(self.server, "mbox2")), 1)
        phone = self.phone("mbox2")
        self.call(phone, "mbox2@" + DOMAIN)
        self.assertTrue(heardSome(phone, "enterpin", 0.5), "no PIN prompt")
        phone.rtp.sendDigits("5555#")
        self.assertTrue(heardSome(phone, "youhave", timeout=10), "no message count")
        self.assertTrue(heardSome(phone, "digit1", timeout=5))
        self.assertTrue(heardSome(phone, "newmessages", timeout=5))
        self.assertTrue(heardSome(phone, "mailboxmenu", 0.3, timeout=15), "no mailbox menu")
        phone.rtp.sendDigits("7")
        self.assertTrue(heardSome(phone, "messagedeleted", timeout=10), "not deleted")
        self.assertEqual(waitFor(lambda: not imapMessages(self.server, "mbox2"), 10), True)

    def test_alaw(self):
        """
        Row 12: a phone offering only G.711 A-law hears the attendant's
        prompt in A-law.
        """
        phone = self.phone(codecs=("PCMA",))
        self.call(phone, "200@" + DOMAIN)
        self.assertTrue(heardSome(phone, "receptionprompt", 0.5, codec="PCMA"),
                        "prompt not heard in A-law")
        self.assertEqual(phone.rtp.payloads(0), [])

    def test_mulaw(self):
        """
        Row 12 and row 5: dial 200, the attendant answers and plays
        C{receptionprompt} in G.711 mu-law.
        """
        phone = self.phone()
        self.call(phone, "200@" + DOMAIN)
        self.assertTrue(heardSome(phone, "receptionprompt", timeout=15))
        self.assertEqual(phone.rtp.payloads(8), [])


class AttendantTests(_Base):
    """Rows 3, 5, 6a-6d: the auto-attendant."""

    def test_invalidExtension(self):
        """
        Row 6d: an extension that maps to nothing: C{invalidextension},
        then C{receptionprompt} again (the caller stays in the menu).
        """
        phone = self.phone()
        self.call(phone, "200@" + DOMAIN)
        self.assertTrue(heardSome(phone, "receptionprompt", 0.2))
        phone.rtp.sendDigits("99#")
        self.assertTrue(heardSome(phone, "invalidextension", timeout=10))
        mark = len(phone.rtp.received)
        # the prompt restarts: its frames arrive again after the message
        self.assertTrue(heardSome(phone, "receptionprompt", 0.3, timeout=10, since=mark),
                        "the menu did not start again")
        self.assertFalse(phone.byeReceived)

    @unittest.skipUnless(haveSipp(), "SIPp (Debian sip-tester) is not installed")
    def test_rfc4733FromSipp(self):
        """
        Row 3: SIPp calls the attendant and plays RFC 4733 digits from
        sip-tester's captures (8, 7, #): the PBX counts three digits and
        one invalid extension (87).
        """
        before = digitsCounted(self.server)
        invalid = counted(self.server, "attendant_invalid")
        result = runSipp(scenario("pbx_um_dtmf.xml", FROMDOMAIN="example.net",
                                  D1=os.path.join(PCAPS, "dtmf_2833_8.pcap"),
                                  D2=os.path.join(PCAPS, "dtmf_2833_7.pcap"),
                                  D3=os.path.join(PCAPS, "dtmf_2833_pound.pcap"),
                                  HOLD=1500),
                         self.port, freeUDPPort(), user="15105550100", service="200")
        self.assertEqual(result.returncode, 0, result.stdout[-3000:] + result.errors.encode())
        self.assertEqual(waitFor(lambda: digitsCounted(self.server) - before >= 3, 5) and
                         digitsCounted(self.server) - before, 3)
        # the three digits made one (invalid) extension, 87
        self.assertEqual(counted(self.server, "attendant_invalid") - invalid, 1)

    @unittest.skipUnless(haveSipp(), "SIPp (Debian sip-tester) is not installed")
    def test_infoFromSipp(self):
        """
        Row 3: SIPp calls the attendant and sends the digits as SIP INFO
        (application/dtmf-relay): the PBX counts three digits and one
        invalid extension (87).
        """
        before = digitsCounted(self.server)
        invalid = counted(self.server, "attendant_invalid")
        result = runSipp(scenario("pbx_um_info.xml", FROMDOMAIN="example.net",
                                  D1="8", D2="7", D3="#", HOLD=1000),
                         self.port, freeUDPPort(), user="15105550101", service="200")
        self.assertEqual(result.returncode, 0, result.stdout[-3000:] + result.errors.encode())
        self.assertEqual(waitFor(lambda: digitsCounted(self.server) - before >= 3, 5) and
                         digitsCounted(self.server) - before, 3)
        self.assertEqual(counted(self.server, "attendant_invalid") - invalid, 1)

    def _registerDevice(self, user, localPort):
        result = runSipp(scenario("register_auth.xml"), self.port, localPort, user=user,
                         password=PASSWORD)
        self.assertEqual(result.returncode, 0, result.stdout[-3000:] + result.errors.encode())

    def _unregister(self, user):
        agent = UDPAgent(self.port, user=user, domain=DOMAIN)
        try:
            agent.register(PASSWORD, expires=0)
        finally:
            agent.close()

    @unittest.skipUnless(haveSipp(), "SIPp (Debian sip-tester) is not installed")
    def test_transferAnswered(self):
        """
        Row 6a: the caller dials extension 301; ext6a's device (a SIPp UAS)
        answers and the calls are joined: the device gets the INVITE, the
        caller's media is moved to it and the BYE reaches the device.
        """
        devicePort = freeUDPPort()
        self._registerDevice("ext6a", devicePort)
        self.addCleanup(self._unregister, "ext6a")
        trace = os.path.join(self.server._tempdir, "ext6a-%d.trace" % (devicePort,))
        uas = BackgroundSipp(scenario("pbx_um_uas_answer.xml"), self.port, devicePort,
                             user="ext6a", extra=["-trace_msg", "-message_file", trace])
        self.addCleanup(uas.stop)
        phone = self.phone()
        self.call(phone, "200@" + DOMAIN)
        self.assertTrue(heardSome(phone, "receptionprompt", 0.1))
        phone.rtp.sendDigits("301#")
        self.assertTrue(heardSome(phone, "transferring", 0.5), "not transferring")
        # the bridge re-INVITEs the caller with the device's SDP
        deadline = time.time() + 10
        while time.time() < deadline and not any(
                r.method == "INVITE" for r in phone.requests):
            phone.serve(0.3)
        invites = [r for r in phone.requests if r.method == "INVITE"]
        self.assertTrue(invites, "the caller was not joined to the device")
        # media end to end: the caller now gets the device's SDP
        self.assertIn(b"o=user1", invites[-1].body)
        self.assertFalse(phone.byeReceived)
        phone.bye()
        phone.serve(0.5)
        self.assertEqual(uas.wait(15), 0, uas.errors())
        with open(trace, errors="replace") as f:
            text = f.read()
        self.assertIn("From: <sip:alice@main.dom>", text)
        self.assertIn("BYE sip:", text)
        self.assertIdle()

    @unittest.skipUnless(haveSipp(), "SIPp (Debian sip-tester) is not installed")
    def test_transferBusy(self):
        """
        Row 6b: ext6b's device answers 486: the caller lands in ext6b's
        voicemail (the greeting is heard).
        """
        devicePort = freeUDPPort()
        self._registerDevice("ext6b", devicePort)
        self.addCleanup(self._unregister, "ext6b")
        uas = BackgroundSipp(scenario("uas_busy.xml"), self.port, devicePort, user="ext6b")
        self.addCleanup(uas.stop)
        phone = self.phone()
        self.call(phone, "200@" + DOMAIN)
        self.assertTrue(heardSome(phone, "receptionprompt", 0.1))
        phone.rtp.sendDigits("302#")
        self.assertTrue(heardSome(phone, "greeting", 0.5, timeout=15), "no voicemail greeting")
        self.assertEqual(uas.wait(10), 0, uas.errors())

    @unittest.skipUnless(haveSipp(), "SIPp (Debian sip-tester) is not installed")
    def test_transferNoAnswer(self):
        """
        Row 6c: ext6c's device rings without answering; after the pbx
        account's C{PBXNoAnswerTimeout} (3 s) the caller lands in ext6c's
        voicemail.
        """
        devicePort = freeUDPPort()
        self._registerDevice("ext6c", devicePort)
        self.addCleanup(self._unregister, "ext6c")
        uas = BackgroundSipp(scenario("uas_ring.xml"), self.port, devicePort, user="ext6c")
        self.addCleanup(uas.stop)
        phone = self.phone()
        self.call(phone, "200@" + DOMAIN)
        self.assertTrue(heardSome(phone, "receptionprompt", 0.1))
        started = time.time()
        phone.rtp.sendDigits("303#")
        self.assertTrue(heardSome(phone, "greeting", 0.3, timeout=20), "no voicemail greeting")
        self.assertLess(time.time() - started, 15)
        self.assertEqual(uas.wait(10), 0, uas.errors())


class VoicemailTests(_Base):
    """Rows 4a, 4b, 13 and the hang-ups."""

    def test_internalCaller(self):
        """
        Row 4a: alice (authenticated, local) calls vmint, who has no device:
        she leaves 3 s after the beep; vmint's INBOX holds one message from
        "Alice Liddell <alice@main.dom>" with a WAV of about 3 s.
        """
        phone = self.phone("alice")
        self.call(phone, "vmint@" + DOMAIN)
        self.leaveMessage(phone)
        messages = waitMessages(self.server, "vmint")
        self.assertEqual(len(messages), 1)
        message = messages[0]
        self.assertIn("Alice Liddell", str(message["From"]))
        self.assertIn("alice@main.dom", str(message["From"]))
        self.assertIn("vmint@main.dom", str(message["To"]))
        self.assertIsNotNone(message["X-CGPro-Voice-Message"])
        wav = wavAttachment(message)
        self.assertIsNotNone(wav, "no audio/wav attachment")
        self.assertTrue(wav.startswith(b"RIFF"))
        self.assertTrue(2.0 * 16000 < len(wav) < 6.0 * 16000, len(wav))

    def test_externalCaller(self):
        """
        Row 4b: a caller from a foreign domain (a number) leaves a message:
        its From shows the calling number.
        """
        phone = self.phone("4155550123", domain="example.net")
        self.call(phone, "vmext@" + DOMAIN, password=None)
        self.leaveMessage(phone)
        messages = waitMessages(self.server, "vmext")
        self.assertEqual(len(messages), 1)
        self.assertIn("4155550123", str(messages[0]["From"]))
        self.assertNotIn("main.dom", str(messages[0]["From"]))
        wav = wavAttachment(messages[0])
        self.assertIsNotNone(wav, "no audio/wav attachment")
        self.assertTrue(2.0 * 16000 < len(wav) < 6.0 * 16000, len(wav))

    @unittest.skipUnless(haveSipp(), "SIPp (Debian sip-tester) is not installed")
    def test_messageWaiting(self):
        """
        Row 13: once a voice message for mwi is stored, mwi's registered
        device (SIPp) gets an out-of-dialog NOTIFY, Event: message-summary,
        Messages-Waiting: yes.
        """
        devicePort = freeUDPPort()
        result = runSipp(scenario("register_auth.xml"), self.port, devicePort, user="mwi",
                         password=PASSWORD)
        self.assertEqual(result.returncode, 0, result.stdout[-3000:] + result.errors.encode())
        device = BackgroundSipp(scenario("pbx_um_mwi.xml"), self.port, devicePort, user="mwi")
        self.addCleanup(device.stop)
        phone = self.phone("4155550124", domain="example.net")
        self.call(phone, "mwi@" + DOMAIN, password=None)
        self.leaveMessage(phone)
        self.assertEqual(device.wait(20), 0, device.errors())
        self.assertEqual(len(waitMessages(self.server, "mwi")), 1)

    def test_hangupMidPrompt(self):
        """
        Bad input: the caller hangs up while the attendant's prompt plays:
        no PBX task and no media channel is left, and the call detail
        record says the caller hung up.
        """
        phone = self.phone()
        response = self.call(phone, "200@" + DOMAIN)
        self.assertTrue(phone.rtp.waitPackets(10))
        phone.bye()
        phone.serve(0.5)
        self.assertIdle()
        callId = response.callId

        def recorded():
            for path in glob.glob(os.path.join(self.server.base, "**", "*.log"),
                                  recursive=True):
                with open(path, errors="replace") as f:
                    for line in f:
                        if callId in line:
                            return line
            return None
        line = waitFor(recorded, 5)
        self.assertTrue(line, "no call detail record")
        self.assertIn("hangup by caller", line)

    def test_hangupMidRecording(self):
        """
        Bad input: the caller hangs up while being recorded: the message
        is kept (and logged), no task and no channel is left.
        """
        phone = self.phone("4155550125", domain="example.net")
        self.call(phone, "vmhang@" + DOMAIN, password=None)
        self.assertTrue(heardSome(phone, "beep", timeout=10))
        phone.rtp.speak(1.5)
        phone.bye()
        phone.serve(0.3)
        self.assertIdle()
        messages = waitMessages(self.server, "vmhang")
        self.assertEqual(len(messages), 1)
        self.assertIn("the caller hung up while recording", self.server.log())
