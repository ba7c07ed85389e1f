# -*- test-case-name: tests.pbx.test_apps -*-
"""
Steps several stock applications share: finding the account an extension
names, transferring a caller to an account (busy and no answer going to
that account's voicemail), and leaving a voice message.

Voice messages are e-mail: the recording becomes a WAV attachment of a
message submitted to the queue for the account, so that the account's
mail rules apply before it reaches INBOX (the Guide's PBX page); once
delivered, the account's devices get a message-summary NOTIFY (RFC 3842)
through the proxy, which forks it to every registered device.
"""

import email.utils
import os
import time
from email.mime.audio import MIMEAudio
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

from twisted.internet.defer import inlineCallbacks, succeed
from twisted.logger import Logger

from cgpro.core.envelope import Envelope
from cgpro.pbx.task import CallFailed, Hangup

log = Logger()

#: Header marking a voice message (the self-service menu plays these).
VOICE_HEADER = "X-CGPro-Voice-Message"
#: Seconds a transferred call rings before going to voicemail.
NO_ANSWER = 20


def localAccount(host, address, domain):
    """
    @param address: an extension, name or C{name@domain}.
    @return: the canonical C{account@domain} the Router maps C{address}
        (in C{domain}) to, or C{None}.
    """
    address = address.strip()
    if not address:
        return None
    if "@" not in address:
        address = "%s@%s" % (address, domain)
    try:
        route = host.context.router.route(address, "SIGNAL", True)
    except Exception:
        return None
    if route.module == "LOCAL":
        return route.account
    return None


def realName(host, account):
    try:
        return host.directory.effectiveAccountSettings(account).get("RealName", "") or ""
    except Exception:
        return ""


def uriOf(account):
    return "sip:" + account


def noAnswerTimeout(host, pbxAccount, default=NO_ANSWER):
    """
    @return: seconds a transferred call rings before voicemail: the
        setting C{PBXNoAnswerTimeout} of the account the application runs
        on (the C{pbx} account), else C{default}.
    """
    try:
        value = host.directory.effectiveAccountSettings(pbxAccount).get("PBXNoAnswerTimeout")
        seconds = float(str(value).strip().rstrip("s").strip()) if value not in (None, "") \
            else None
    except Exception:
        seconds = None
    if seconds is None or not 0 < seconds <= 600:
        return default
    return seconds


@inlineCallbacks
def transferTo(task, account, noAnswer=None):
    """
    Call C{account} for the caller of C{task} and join them; busy, no
    answer and failure go to that account's voicemail.

    @param noAnswer: seconds to ring; by default the setting
        C{PBXNoAnswerTimeout} of the task's account (L{noAnswerTimeout}).
    """
    if noAnswer is None:
        noAnswer = noAnswerTimeout(task.host, task.account)
    try:
        callee = yield task.callOut(uriOf(account), timeout=noAnswer)
    except CallFailed as e:
        log.info("PBX {app}: {account} did not answer ({code}); voicemail", app=task.app,
                 account=account, code=e.code)
        task.host.count("transfer_voicemail")
        yield leaveMessage(task, account)
        return
    yield task.bridge(callee)
    yield task.waitEnd()


def _callerParts(task):
    address = task.dialog.remoteURI.split(":", 1)[-1].split(";", 1)[0]
    user, _, host = address.partition("@")
    return user, host


def callerAccount(task):
    """
    @return: the local account the caller's address names (C{alice@main.dom}
        from this server, whatever its credentials), or C{None} for an
        outside caller.
    """
    user, host = _callerParts(task)
    domain = task.host.ua.localDomain(host) if host else None
    return localAccount(task.host, user, domain) if domain is not None else None


def senderOf(task):
    """
    The From of a voice message: an internal caller's real name and
    address, an external caller's number (seed 004 rows 4a and 4b).
    """
    user, host = _callerParts(task)
    account = callerAccount(task)
    if account is not None:
        return email.utils.formataddr((realName(task.host, account), account)), True
    name = task.dialog.remoteName or user
    return email.utils.formataddr((name, "%s@%s" % (user, host or "unknown"))), False


def voiceMessage(task, account, samples, wav):
    """
    @return: the RFC 5322 bytes of a voice message for C{account}.
    """
    sender, internal = senderOf(task)
    seconds = len(samples) // 16000
    message = MIMEMultipart()
    message["From"] = sender
    message["To"] = account
    message["Subject"] = "Voice message from %s (%d s)" % (
        email.utils.parseaddr(sender)[0] or email.utils.parseaddr(sender)[1], seconds)
    message["Date"] = email.utils.formatdate(time.time(), localtime=False)
    message["Message-ID"] = email.utils.make_msgid("voicemail")
    message[VOICE_HEADER] = "%d" % (seconds,)
    message.attach(MIMEText("A voice message of %d seconds from %s (%s caller).\n"
                            % (seconds, sender, "internal" if internal else "external")))
    audio = MIMEAudio(wav, "wav", name="voicemail.wav")
    audio.add_header("Content-Disposition", "attachment", filename="voicemail.wav")
    message.attach(audio)
    return message.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


@inlineCallbacks
def leaveMessage(task, account):
    """
    The voicemail steps: answer, greeting, beep, record, store as mail,
    notify the account's devices.  Two stars during the greeting switch
    to the self-service application (the owner's access).
    """
    from cgpro.media.audiofile import writeWAV

    if task.answeredAt is None:
        yield task.accept()
    domain = account.partition("@")[2]
    task.domain = domain or task.domain
    task.flushDigits()
    yield task.play(greetingOf(task, account))
    if task.digits.startswith("*"):
        more = yield task.collect(1, timeout=2)
        if (task.digits + more).startswith("*") and "*" in more:
            from cgpro.pbx.apps import service

            task.flushDigits()
            yield service.logon(task, account)
            return
    task.flushDigits()
    yield task.play("beep", interrupt=False)
    samples = yield recordMessage(task, maxSeconds=180, silence=5.0)
    if task.ended is not None:
        log.info("PBX voicemail: {account}: the caller hung up while recording ({size} bytes "
                 "kept)", account=account, size=len(samples))
    if len(samples) < 16000 // 2:
        log.info("PBX voicemail: {account}: nothing recorded", account=account)
        yield task.play("goodbye", interrupt=False)
        return
    data = voiceMessage(task, account, samples, writeWAV(samples))
    messageId = yield deliverMessage(task.host, account, data)
    task.host.count("voicemails")
    task.result = (200, "voicemail stored")
    try:
        yield task.play("messagesaved", interrupt=False)
    except Hangup:
        pass
    if messageId is not None:
        queue = task.host.context.queue
        yield queue.whenDone(messageId)
    yield notifyWaiting(task.host, account)


def recordMessage(task, maxSeconds=180, silence=5.0):
    """
    Record a voice message.  Unlike L{Task.record}, a caller hanging up
    does not lose the message: the channel's recording fires with what
    was said when the task closes the channel (callers usually hang up
    instead of waiting for the silence).

    @return: L{Deferred} firing with 16-bit linear 8 kHz samples.
    @raise Hangup: the call had already ended.
    """
    if task.ended is not None:
        raise Hangup(task.ended)
    if task.channel is None:
        return succeed(b"")
    return task.channel.record(maxSeconds, silence)


def greetingOf(task, account):
    """
    The account's personal greeting (recorded through C{service}), or the
    stock C{greeting} prompt.
    """
    path = task.host.greetingPath(account)
    if path and os.path.exists(path):
        try:
            return task.host.media.loadPrompt(path)
        except Exception:
            log.failure("PBX voicemail: the greeting of {account} is unreadable",
                        account=account)
    return "greeting"


def deliverMessage(host, account, data):
    """Submit a voice message for C{account}; @return: L{Deferred} of its queue id."""
    envelope = Envelope(sender="", protocol="LOCAL", trusted=True)
    envelope.addRecipient(account)
    return host.context.queue.submit(envelope, data)


@inlineCallbacks
def voiceCounts(host, account):
    """
    @return: C{(new, old)} voice messages in the account's INBOX.
    """
    store = host.context.mailStore
    box = yield store.openMailbox(account, "INBOX")
    try:
        new = old = 0
        for uid in list(box.uids):
            if not isVoiceMessage(box.readMessage(uid)):
                continue
            if "\\Seen" in box.flags(uid):
                old += 1
            else:
                new += 1
        return (new, old)
    finally:
        box.close()


def isVoiceMessage(data):
    """Whether a stored message is a voice message (by its header)."""
    head = data.split(b"\r\n\r\n", 1)[0].lower()
    return ("\r\n" + VOICE_HEADER.lower() + ":").encode() in b"\r\n" + head


@inlineCallbacks
def notifyWaiting(host, account):
    """
    Tell the account's registered devices how many voice messages wait
    (RFC 3842 message-summary, an unsolicited NOTIFY sent to the account:
    the proxy forks it to every registered device).
    """
    try:
        new, old = yield voiceCounts(host, account)
    except Exception:
        log.failure("PBX: voice message count of {account} failed", account=account)
        return
    body = ("Messages-Waiting: %s\r\nMessage-Account: sip:%s\r\nVoice-Message: %d/%d\r\n"
            % ("yes" if new else "no", account, new, old)).encode()
    try:
        response = yield host.ua.request(
            "NOTIFY", uriOf(account), "sip:" + account, headers=[
                ("Event", "message-summary"), ("Subscription-State", "active")],
            body=body, contentType="application/simple-message-summary")
        host.count("mwi_notify")
        log.info("PBX: MWI {new}/{old} to {account}: {code}", new=new, old=old,
                 account=account, code=getattr(response, "code", None))
    except Exception:
        log.failure("PBX: MWI NOTIFY to {account} failed", account=account)
