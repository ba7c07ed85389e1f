"""
Tests for L{cgpro.pbx.task} and L{cgpro.pbx.host}: the steps an
application takes, on a L{Clock}, with a recording dialog and channel.
"""

from twisted.internet.defer import Deferred, fail, inlineCallbacks, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from cgpro.core.rtinterfaces import DialogError
from cgpro.pbx.host import ApplicationHost
from cgpro.pbx.task import CallFailed, Hangup, Task

OFFER = (b"v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n"
         b"m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n")


class FakeRequest:
    method = "INVITE"
    callId = "call-1"

    def __init__(self, body=OFFER, method="INVITE", sender="sip:alice@main.dom"):
        self.body = body
        self.method = method
        self.fromAddr = type("Addr", (), {"uri": sender})()


class FakeDialog:
    incoming = True
    remoteName = "Alice"

    def __init__(self, body=OFFER, remoteURI="sip:alice@main.dom"):
        self.request = FakeRequest(body)
        self.callId = "call-1"
        self.remoteURI = remoteURI
        self.localURI = "sip:pbx@main.dom"
        self.remoteSDP = body
        self.sent = []
        self.owner = None
        self.reinvites = []

    def accept(self, sdp, headers=()):
        self.sent.append(("200", sdp))

    def reject(self, code, reason=None, headers=()):
        self.sent.append((code, reason))

    def ring(self, code=180, sdp=None, reason=None):
        self.sent.append((code, None))

    def redirect(self, contacts, code=302):
        self.sent.append((code, contacts))

    def bye(self):
        self.sent.append(("BYE", None))

    def reinvite(self, sdp):
        d = Deferred()
        self.reinvites.append((sdp, d))
        return d


class FakePrompt:
    def __init__(self, name):
        self.name = name


class FakeChannel:
    localHost = "192.0.2.1"
    codec = "PCMU"

    def __init__(self, port, now=0):
        self.localPort = port
        self.lastReceived = now
        self.digitReceived = None
        self.closed = False
        self.playing = None
        self.remote = None
        self.connected = None
        self.recording = None

    def setRemote(self, host, port, codec="PCMU", eventPayload=101, payload=None):
        self.remote = (host, port, codec, eventPayload)

    def play(self, prompt, loop=False):
        self.playing = (prompt.name, Deferred())
        return self.playing[1]

    def stopPlaying(self):
        if self.playing is not None:
            d = self.playing[1]
            self.playing = None
            if not d.called:
                d.callback(False)

    def finish(self):
        name, d = self.playing
        self.playing = None
        d.callback(True)

    def record(self, maxSeconds, silence=None):
        self.recording = Deferred()
        return self.recording

    def stopRecording(self):
        if self.recording is not None and not self.recording.called:
            self.recording.callback(b"\x01\x00" * 8000)

    def connect(self, other):
        self.connected = other

    def close(self):
        self.closed = True
        self.stopPlaying()
        if self.recording is not None and not self.recording.called:
            self.recording.callback(b"")


class FakeMedia:
    idleTimeout = 60

    def __init__(self, clock=None):
        self.opened = []
        self.clock = clock

    def openChannel(self, family=4):
        channel = FakeChannel(60000 + 2 * len(self.opened))
        channel.lastReceived = self.clock.seconds() if self.clock else 0
        self.opened.append(channel)
        return channel

    def loadPrompt(self, path):
        return FakePrompt(path.rsplit("/", 1)[-1])

    def channels(self):
        return [c for c in self.opened if not c.closed]


class FakeEnvironments:
    stock = "/stock"

    def find(self, domain, name, language=None):
        return None if name.startswith("missing") or name.endswith(".py") else "/stock/" + name


class FakeCDR:
    def __init__(self):
        self.records = []

    def record(self, cdr):
        self.records.append(cdr)
        return succeed(cdr)


class FakeUA:
    def __init__(self, responses=None):
        self.calls = []
        self.requests = []
        self.responses = responses if responses is not None else []

    def respond(self, st, code, reason=None):
        self.responses.append((code, reason))

    def localDomain(self, host):
        return host if host == "main.dom" else None

    def request(self, method, target, fromURI, toURI=None, body=b"", **kw):
        self.requests.append((method, target, fromURI, body))
        return succeed(None)

    def answerable(self, st, request):
        return FakeDialog(request.body)

    def call(self, target, fromURI, sdp, owner, **kw):
        dialog = FakeDialog(remoteURI=target)
        dialog.incoming = False
        dialog.offer = sdp
        self.calls.append(dialog)
        return dialog


class FakeSignal:
    """The SIP stack as the PBX sees it: only its user agent."""

    def __init__(self):
        self.responses = []
        self.ua = FakeUA(self.responses)


class FakeContext:
    def __init__(self, clock):
        self.reactor = clock
        self.directory = None
        self.signal = FakeSignal()
        self.mediaServer = FakeMedia(clock)
        self.base = "/nonexistent"
        self.writer = None


class TaskTestsMixin:
    def setUp(self):
        self.clock = Clock()
        self.context = FakeContext(self.clock)
        self.cdr = FakeCDR()
        self.host = ApplicationHost(self.context, environments=FakeEnvironments(), cdr=self.cdr)
        self.dialog = FakeDialog()
        self.task = Task(self.host, self.dialog, "pbx@main.dom", "test")
        self.host.adopt(self.task)

    def answered(self):
        d = self.task.accept()
        self.task.dialogAnswered(self.dialog, None)
        self.successResultOf(d)
        return self.task.channel


class StepTests(TaskTestsMixin, SynchronousTestCase):

    def test_accept(self):
        """The answer has our channel's address and the caller's codec; media goes to it."""
        channel = self.answered()
        code, answer = self.dialog.sent[-1]
        self.assertEqual(code, "200")
        self.assertIn(b"m=audio 60000 RTP/AVP 0 101", answer)
        self.assertEqual(channel.remote, ("10.0.0.5", 4000, "PCMU", 101))

    def test_noUsableMedia(self):
        """An offer without G.711 is refused 488 and the task ends."""
        self.dialog.request.body = b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 5 RTP/AVP 18\r\n"
        self.failureResultOf(self.task.accept(), Hangup)
        self.assertEqual(self.dialog.sent[-1][0], 488)
        self.assertEqual(self.task.ended, "rejected")

    def test_collectRFC4733AndInfo(self):
        """Digits from the channel and from INFO are collected in order; # ends."""
        channel = self.answered()
        d = self.task.collect(count=5, timeout=3)
        channel.digitReceived("1")
        self.task.infoReceived(self.dialog, "application/dtmf-relay", b"Signal=2\r\nDuration=160\r\n")
        self.task.infoReceived(self.dialog, "application/dtmf", b"3")
        channel.digitReceived("#")
        self.assertEqual(self.successResultOf(d), "123")

    def test_collectTimeout(self):
        """No digit within the timeout: what was typed so far."""
        channel = self.answered()
        d = self.task.collect(count=4, timeout=2, first=5)
        self.clock.advance(4)
        self.assertNoResult(d)
        channel.digitReceived("7")
        self.clock.advance(2.1)
        self.assertEqual(self.successResultOf(d), "7")

    def test_digitInterruptsPrompt(self):
        """A digit stops the prompt (barge-in) and stays for the next collect."""
        channel = self.answered()
        played = self.task.play("welcome", "second")
        self.assertEqual(channel.playing[0], "welcome.wav")
        channel.digitReceived("5")
        self.assertFalse(self.successResultOf(played))
        self.assertIsNone(channel.playing)
        self.assertEqual(self.successResultOf(self.task.collect(1)), "5")

    def test_terminatorDoesNotCutNextPrompt(self):
        """
        The # that ends a collect lets the application go on at once to its
        next prompt; that prompt plays (only the prompt playing when a digit
        came is interrupted).
        """
        channel = self.answered()
        collected = self.task.collect(count=4, timeout=3)
        collected.addCallback(lambda digits: self.task.play("enterpin"))
        channel.digitReceived("3")
        channel.digitReceived("#")
        self.assertEqual(channel.playing[0], "enterpin.wav")

    def test_missingPromptSkipped(self):
        """A prompt that does not exist is skipped (logged), the rest plays."""
        channel = self.answered()
        played = self.task.play("missing-one", "there")
        self.assertEqual(channel.playing[0], "there.wav")
        channel.finish()
        self.assertTrue(self.successResultOf(played))

    def test_hangupMidPrompt(self):
        """The caller hangs up while a prompt plays: Hangup, channel closed, CDR written."""
        channel = self.answered()
        played = self.task.play("welcome")
        self.task.dialogEnded(self.dialog, "bye")
        self.failureResultOf(played, Hangup)
        self.assertTrue(channel.closed)
        self.assertNotIn(self.task, self.host.tasks)
        cdr, = self.cdr.records
        self.assertEqual((cdr["Application"], cdr["Leg"], cdr["Result"][:3]), ("test", "call", "200"))
        self.assertIn("Duration", cdr)

    def test_hangupMidRecording(self):
        """Hanging up while recording ends the recording step with Hangup."""
        self.answered()
        recorded = self.task.record(60, 5)
        self.task.dialogEnded(self.dialog, "bye")
        self.failureResultOf(recorded, Hangup)

    def test_challengedTaskForgotten(self):
        """A caller answered 407 ends the task (no task left behind per challenge)."""
        self.host.signal.ua.authenticate = lambda dialog, realm: None
        self.assertIsNone(self.task.authenticate())
        self.assertEqual(self.task.ended, "challenged")
        self.assertNotIn(self.task, self.host.tasks)
        self.assertEqual(self.cdr.records[-1]["Result"], "407 authentication required")

    def test_recordFile(self):
        """A digit ends the recording; the WAV file is written whole."""
        import os
        import tempfile

        from cgpro.media.audiofile import readAudio

        self.answered()
        path = os.path.join(tempfile.mkdtemp(), "acct", "greeting.wav")
        self.addCleanup(__import__("shutil").rmtree, os.path.dirname(os.path.dirname(path)))
        d = self.task.recordFile(path, 60, 3)
        self.assertNoResult(d)
        self.task.channel.digitReceived("#")
        self.assertEqual(self.successResultOf(d), 8000)
        with open(path, "rb") as f:
            self.assertEqual(readAudio(f.read()), b"\x01\x00" * 8000)
        self.assertEqual(self.task.digits, "#")

    def test_redirectAndReject(self):
        self.task.redirect(["sip:1@telnum"])
        self.assertEqual(self.dialog.sent[-1], (302, ["sip:1@telnum"]))
        self.assertEqual(self.task.ended, "redirected")


class CallOutTests(TaskTestsMixin, SynchronousTestCase):

    def test_answeredThenBridgedByReinvite(self):
        """A call-out answered, then both sides re-INVITEd; our channels let go."""
        channel = self.answered()
        d = self.task.callOut("sip:bob@main.dom")
        out = self.context.signal.ua.calls[-1]
        self.assertIn(b"m=audio 60002", out.offer)
        child = out.owner
        out.remoteSDP = OFFER.replace(b"4000", b"5000")
        child.dialogAnswered(out, out.remoteSDP)
        callee = self.successResultOf(d)
        self.assertIs(callee, child)
        bridged = self.task.bridge(callee)
        (offer1, d1), = self.dialog.reinvites
        self.assertIn(b"5000", offer1)
        d1.callback(b"answer-from-caller")
        (offer2, d2), = out.reinvites
        self.assertEqual(offer2, b"answer-from-caller")
        d2.callback(b"ok")
        self.successResultOf(bridged)
        self.assertTrue(channel.closed)
        self.assertIsNone(self.task.channel)

    def test_reinviteRefusedRelays(self):
        """A side that refuses the re-INVITE: media relayed between our channels."""
        channel = self.answered()
        d = self.task.callOut("sip:gw@1.2.3.4")
        out = self.context.signal.ua.calls[-1]
        out.owner.dialogAnswered(out, OFFER)
        callee = self.successResultOf(d)
        bridged = self.task.bridge(callee)
        self.dialog.reinvites[0][1].errback(DialogError(488, "no"))
        self.successResultOf(bridged)
        self.assertIs(channel.connected, callee.channel)
        self.assertTrue(self.task.relayed)

    def test_failed(self):
        """A busy callee: CallFailed with the code; its CDR is a callout leg."""
        self.answered()
        d = self.task.callOut("sip:bob@main.dom")
        out = self.context.signal.ua.calls[-1]
        out.owner.dialogFailed(out, 486, "Busy Here")
        self.assertEqual(self.failureResultOf(d, CallFailed).value.code, 486)
        self.assertEqual(self.cdr.records[-1]["Leg"], "callout")
        self.assertEqual(self.cdr.records[-1]["Result"], "486 Busy Here")

    def test_ringTimeout(self):
        """No answer within the timeout: the call-out is cancelled, CallFailed 408."""
        self.answered()
        d = self.task.callOut("sip:bob@main.dom", timeout=10)
        out = self.context.signal.ua.calls[-1]
        self.clock.advance(10)
        self.assertEqual(self.failureResultOf(d, CallFailed).value.code, 408)
        self.assertIn(("BYE", None), out.sent)

    def test_callerHangsUpWhileRinging(self):
        """The caller leaves while the call-out rings: the call-out is cancelled."""
        self.answered()
        d = self.task.callOut("sip:bob@main.dom")
        out = self.context.signal.ua.calls[-1]
        self.task.dialogEnded(self.dialog, "bye")
        self.failureResultOf(d, Hangup)
        self.assertIn(("BYE", None), out.sent)
        self.assertEqual(self.context.mediaServer.channels(), [])

    def test_peerHangsUp(self):
        """When one side of a bridge hangs up, the other is hung up too."""
        self.answered()
        d = self.task.callOut("sip:gw@1.2.3.4")
        out = self.context.signal.ua.calls[-1]
        out.owner.dialogAnswered(out, OFFER)
        callee = self.successResultOf(d)
        self.task.bridge(callee, relay=True)
        callee.dialogEnded(out, "bye")
        self.assertIn(("BYE", None), self.dialog.sent)
        self.assertEqual(self.host.tasks, set())


class FakeDirectory:
    accounts = {"alice": "Alice Liddell", "bob": "Bob Dylan", "pbx": "PBX Center"}

    def listAccounts(self, domain):
        return dict.fromkeys(self.accounts, "macnt")

    def effectiveAccountSettings(self, account):
        return {"RealName": self.accounts[account.partition("@")[0]]}

    def getAccountAliases(self, account):
        return ["301"] if account.startswith("bob@") else []


class TransferTests(TaskTestsMixin, SynchronousTestCase):

    def test_callerTransfersPeer(self):
        """
        REFER from a caller bridged with a gateway: cgpro calls the new
        party, joins the gateway with it, tells the caller (sipfrag 200) and
        lets him go; the gateway never sees a REFER.
        """
        self.answered()
        d = self.task.callOut("sip:gw@1.2.3.4")
        gwDialog = self.context.signal.ua.calls[-1]
        gwDialog.owner.dialogAnswered(gwDialog, OFFER)
        gateway = self.successResultOf(d)
        self.task.bridge(gateway, relay=True)
        notified = []
        self.dialog.notifyRefer = lambda code, reason: notified.append(code)
        self.assertTrue(self.task.referReceived(self.dialog, "<sip:carol@main.dom>", None))
        self.clock.advance(0)
        carolDialog = self.context.signal.ua.calls[-1]
        self.assertEqual(carolDialog.remoteURI, "sip:carol@main.dom")
        carolDialog.owner.dialogAnswered(carolDialog, OFFER)
        carol = carolDialog.owner
        self.assertIs(gateway.peer, carol)
        self.assertIs(gateway.channel.connected, carol.channel)
        self.assertEqual(notified, [200])
        self.assertIn(("BYE", None), self.dialog.sent)
        self.assertNotIn(("BYE", None), gwDialog.sent)
        self.assertEqual(self.host.figures.get("transfers"), 1)

    def test_referRefusedWithoutPeer(self):
        """A caller alone with an application cannot transfer it."""
        self.answered()
        self.assertFalse(self.task.referReceived(self.dialog, "<sip:carol@main.dom>", None))


class _Route:
    def __init__(self, app, params=(), account="pbx@main.dom"):
        self.app = app
        self.params = list(params)
        self.account = account
        self.original = "200@main.dom"


class HostTests(SynchronousTestCase):

    def setUp(self):
        self.clock = Clock()
        self.context = FakeContext(self.clock)
        self.cdr = FakeCDR()
        self.host = ApplicationHost(self.context, environments=FakeEnvironments(), cdr=self.cdr)

    def test_unknownApplication(self):
        """An application nobody installed: 404 naming it, no task."""
        self.host.startApplication(object(), FakeRequest(), _Route("nosuchapp"))
        self.assertEqual(self.context.signal.responses, [(404, "Unknown application nosuchapp")])
        self.assertEqual(self.host.tasks, set())

    def test_badName(self):
        """A name that could be a path is no application."""
        self.assertIsNone(self.host.application("../etc"))

    def test_failingApplication(self):
        """An application that raises before answering: 500, logged, CDR written."""
        import types

        module = types.SimpleNamespace()

        def run(task):
            raise ValueError("broken")
            yield

        module.run = run
        self.host.application = lambda name: module
        self.host.startApplication(object(), FakeRequest(), _Route("broken"))
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)
        self.assertEqual(self.host.tasks, set())
        self.assertEqual(self.cdr.records[-1]["Result"], "500 Application broken failed")

    def test_messageToApplication(self):
        """An IM to the PBX Center's directory is answered 200 and replied to."""
        self.context.directory = FakeDirectory()
        self.host.directory = self.context.directory
        self.host.startApplication(object(), FakeRequest(b"dir bo", "MESSAGE"), _Route("pbx"))
        self.assertEqual(self.context.signal.responses, [(200, None)])
        (method, target, fromURI, body), = self.context.signal.ua.requests
        self.assertEqual((method, target, fromURI), ("MESSAGE", "sip:alice@main.dom",
                                                     "sip:pbx@main.dom"))
        self.assertEqual(body, b"Bob Dylan <bob@main.dom> ext. 301")
        self.assertEqual(self.host.tasks, set())

    def test_silentCallHungUp(self):
        """A caller that sends no RTP for the idle timeout is hung up (no seat held for ever)."""
        self.host.directory = FakeDirectory()
        self.host.directory.partObservers = []
        self.host.directory.infoProviders = []
        self.host.directory.listDomains = lambda: []
        self.host.startService()
        self.addCleanup(self.host.stopService)
        self.host.startApplication(object(), FakeRequest(), _Route("conference", ["r1"]))
        task, = self.host.tasks
        task.dialogAnswered(task.dialog, None)
        self.clock.advance(50)
        task.channel.lastReceived = self.clock.seconds()
        self.clock.advance(50)
        self.assertIsNone(task.ended)
        self.clock.advance(20)
        self.assertEqual(task.ended, "local")
        self.assertIn(("BYE", None), task.dialog.sent)
        self.assertEqual(self.cdr.records[-1]["Result"], "408 no media for 60 s")

    def test_messageRefused(self):
        """An application without a message handler: 405."""
        self.host.startApplication(object(), FakeRequest(b"hi", "MESSAGE"), _Route("voicemail"))
        self.assertEqual(self.context.signal.responses[-1][0], 405)

    def test_stockAttendantPlaysReception(self):
        """The stock pbx application answers and plays receptionprompt."""
        self.host.startApplication(object(), FakeRequest(), _Route("pbx"))
        task, = self.host.tasks
        task.dialogAnswered(task.dialog, None)
        self.assertEqual(task.channel.playing[0], "receptionprompt.wav")
        task.dialogEnded(task.dialog, "bye")
        self.assertEqual(self.host.tasks, set())
        self.assertEqual(self.context.mediaServer.channels(), [])


class CustomApplicationTests(SynchronousTestCase):
    """
    Applications the server administrator installed in the server-wide
    environment.
    """

    def setUp(self):
        import tempfile

        from cgpro.pbx.environment import Environments

        self.base = tempfile.mkdtemp()
        self.addCleanup(__import__("shutil").rmtree, self.base, True)
        self.environments = Environments(self.base)
        self.environments.create("server")
        self.clock = Clock()
        self.context = FakeContext(self.clock)
        self.host = ApplicationHost(self.context, environments=self.environments,
                                    cdr=FakeCDR())

    def test_installedApplicationRuns(self):
        """A hello.py stored by the Master is the application hello; a new version replaces it."""
        code = b"def run(task):\n    task.reject(486, 'custom %d')\n    return\n    yield\n"
        self.environments.store("server", "hello.py", code % 1, mayInstallCode=True)
        self.host.startApplication(object(), FakeRequest(), _Route("hello"))
        self.assertEqual(self.host.figures.get("started"), 1)
        import os

        path = os.path.join(self.environments.base, "PBXApps", "hello.py")
        self.environments.store("server", "hello.py", code % 2, mayInstallCode=True)
        os.utime(path, (1, 1))
        module = self.host.application("hello")
        self.assertIn("custom 2", open(module.__file__).read())

    def test_shadowsStock(self):
        """An installed voicemail.py is used instead of the stock one."""
        self.environments.store("server", "voicemail.py", b"def run(task):\n    yield\n",
                                mayInstallCode=True)
        module = self.host.application("voicemail")
        self.assertNotEqual(module.__name__, "cgpro.pbx.apps.voicemail")

    def test_stockWithoutInstall(self):
        """Without an installed one, the stock application."""
        self.assertEqual(self.host.application("Voicemail").__name__, "cgpro.pbx.apps.voicemail")
