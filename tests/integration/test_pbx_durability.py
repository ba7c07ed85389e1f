"""
Nothing a PBX caller was told is saved gets lost: a voice message
acknowledged by the C{messagesaved} prompt survives a SIGKILL right
after it, and a recording cut short by a SIGKILL leaves no half message
behind.  The server is the real one (twistd), the caller a plain-socket
phone, the mailbox read back over IMAP (imaplib).
"""

import email
import email.policy
import imaplib
import os

from twisted.trial.unittest import SynchronousTestCase

from cgpro.sip.callrules import presetRules
from tests.support.mail import port, unverifiedContext
from tests.support.pbx import PASSWORD, pbxServer, phone, waitFor

IMAP_PORT = 143


def inbox(server, user):
    """@return: the messages of C{user}'s INBOX, parsed."""
    client = imaplib.IMAP4("127.0.0.1", port(server, IMAP_PORT), timeout=30)
    try:
        client.starttls(ssl_context=unverifiedContext())
        client.login("%s@%s" % (user, server.domain), PASSWORD)
        _, data = client.select("INBOX", readonly=True)
        messages = []
        for n in range(1, int(data[0]) + 1):
            _, fetched = client.fetch(str(n), "(BODY.PEEK[])")
            messages.append(email.message_from_bytes(fetched[0][1],
                                                     policy=email.policy.default))
        return messages
    finally:
        try:
            client.logout()
        except Exception:
            client.shutdown()


def wav(message):
    for part in message.walk():
        if part.get_content_maintype() == "audio":
            return part.get_payload(decode=True)
    return None


class VoicemailKillTests(SynchronousTestCase):

    def setUp(self):
        self.server, self.cli, self.port = pbxServer(self, accounts=("alice", "bob"))
        bob = "bob@" + self.server.domain
        self.cli.command("SETACCOUNTSIGNALRULES", bob,
                         [presetRules("voicemail", seconds=0, account=bob)])

    def reachVoicemail(self):
        caller = phone(self, self.port, "alice")
        response = caller.call("bob@" + self.server.domain, password=PASSWORD)
        self.assertEqual(response.code, 200, response.reason)
        self.assertTrue(caller.rtp.waitHeard("beep", timeout=20), "no beep")
        return caller

    def test_acknowledgedMessageSurvivesKill(self):
        """
        The caller speaks, falls silent, hears "your message has been
        saved"; the server is SIGKILLed at that moment; after the restart
        the message is in bob's INBOX, whole.
        """
        caller = self.reachVoicemail()
        caller.rtp.speak(2.0)
        self.assertTrue(caller.rtp.waitHeard("messagesaved", timeout=20),
                        "the message was never acknowledged")
        self.server.kill()
        self.server.restart()
        messages = waitFor(lambda: inbox(self.server, "bob"), timeout=20)
        self.assertEqual(len(messages), 1)
        audio = wav(messages[0])
        self.assertTrue(audio and audio.startswith(b"RIFF"), "no WAV attachment")
        self.assertGreater(len(audio), 1.5 * 16000)

    def test_killMidRecording(self):
        """
        A SIGKILL while the caller speaks (nothing acknowledged yet): after
        the restart the INBOX holds no half message, and the next caller's
        message is stored normally.
        """
        caller = self.reachVoicemail()
        caller.rtp.speak(1.0)
        self.server.kill()
        caller.close()
        self.server.restart()
        for message in inbox(self.server, "bob"):
            self.assertTrue(wav(message).startswith(b"RIFF"), "a broken message")
        before = len(inbox(self.server, "bob"))
        self.assertEqual(before, 0)
        caller = self.reachVoicemail()
        caller.rtp.speak(2.0)
        self.assertTrue(caller.rtp.waitHeard("messagesaved", timeout=20))
        self.assertEqual(len(waitFor(lambda: inbox(self.server, "bob"), timeout=20)), 1)


class GreetingTests(SynchronousTestCase):
    """
    The owner records a personal greeting through the mailbox menu; the
    next caller to voicemail hears it instead of the stock greeting.
    """

    def setUp(self):
        self.server, self.cli, self.port = pbxServer(self, accounts=("alice", "bob"))
        bob = "bob@" + self.server.domain
        self.cli.command("UPDATEACCOUNTSETTINGS", bob, {"VoiceMailPIN": "2468"})
        self.cli.command("SETACCOUNTSIGNALRULES", bob,
                         [presetRules("voicemail", seconds=0, account=bob)])

    def test_recordGreeting(self):
        owner = phone(self, self.port, "bob")
        response = owner.call("bob@" + self.server.domain, password=PASSWORD)
        self.assertEqual(response.code, 200, response.reason)
        # the owner calling his own voicemail goes straight to the PIN
        self.assertTrue(owner.rtp.waitHeard("enterpin", timeout=20))
        owner.rtp.sendDigits("2468#")
        self.assertTrue(owner.rtp.waitHeard("greetingmenu", timeout=20))
        owner.rtp.sendDigits("5")
        self.assertTrue(owner.rtp.waitHeard("beep", timeout=20))
        owner.rtp.speak(2.0, frequency=600.0)
        owner.rtp.sendDigits("#")
        self.assertTrue(owner.rtp.waitHeard("greetingsaved", timeout=20))
        owner.bye()
        owner.serve(0.5)
        path = os.path.join(self.server.base, "Domains", self.server.domain, "Accounts",
                            "bob.macnt", "greeting.wav")
        with open(path, "rb") as f:
            self.assertTrue(f.read(4) == b"RIFF")
        caller = phone(self, self.port, "alice")
        response = caller.call("bob@" + self.server.domain, password=PASSWORD)
        self.assertEqual(response.code, 200, response.reason)
        self.assertTrue(caller.rtp.waitHeard("beep", timeout=20))
        self.assertFalse(caller.rtp.heard("greeting", fraction=0.3),
                         "the stock greeting played instead of bob's")
        self.assertGreater(len(caller.rtp.payloads(0)), 80, "bob's greeting was not played")
