"""
C{service}: the self-service (mailbox) application.

Reached through the voicemail pilot (a Router record or alias such as
C{<vm@*> = service#pbx@localhost}), through two stars in the voicemail
greeting, or by an owner calling his own voicemail.  The caller gives an
extension (unless the mailbox is known) and the account's PIN (account
setting C{VoiceMailPIN}; an account without one cannot log on by phone),
then hears how many new messages wait and walks through them:

  - C{1} play again, C{3} next, C{7} delete, C{9} save (mark read), C{*} exit;
  - then C{5} records the personal greeting voicemail plays.

Afterwards the devices get a fresh message-summary NOTIFY.
"""

from twisted.internet.defer import inlineCallbacks

from cgpro.pbx import calls
from cgpro.pbx.task import Hangup

ATTEMPTS = 3


def run(task):
    yield task.accept()
    account = None
    if task.account and task.account.partition("@")[0].lower() != "pbx":
        account = task.account
    yield logon(task, account)


@inlineCallbacks
def logon(task, account=None):
    """Extension (if C{account} is C{None}) and PIN, then the mailbox menu."""
    for _ in range(ATTEMPTS):
        if account is None:
            task.flushDigits()
            yield task.play("enterextension")
            extension = yield task.collect(count=8, timeout=4.0, first=8.0)
            candidate = calls.localAccount(task.host, extension, task.domain)
            if candidate is None:
                yield task.play("invalidextension", interrupt=False)
                continue
        else:
            candidate = account
        task.flushDigits()
        yield task.play("enterpin")
        pin = yield task.collect(count=12, timeout=4.0, first=8.0)
        if pin and pin == _pin(task, candidate):
            task.host.count("mailbox_logons")
            task.caller = task.caller or candidate
            yield mailbox(task, candidate)
            return
        task.host.count("mailbox_badpin")
        yield task.play("wrongpin", interrupt=False)
    yield task.play("goodbye", interrupt=False)


def _pin(task, account):
    try:
        pin = task.host.directory.effectiveAccountSettings(account).get("VoiceMailPIN")
    except Exception:
        return None
    return str(pin) if pin else None


def numberPrompts(n):
    return ["digit" + c for c in str(n)]


@inlineCallbacks
def mailbox(task, account):
    from cgpro.store.mailbox import ADD

    store = task.host.context.mailStore
    box = yield store.openMailbox(account, "INBOX")
    try:
        voice = [uid for uid in list(box.uids) if calls.isVoiceMessage(box.readMessage(uid))]
        new = [uid for uid in voice if "\\Seen" not in box.flags(uid)]
        if not new:
            yield task.play("nomessages")
        else:
            yield task.play(*(["youhave"] + numberPrompts(len(new)) + ["newmessages"]))
        for uid in new:
            prompt = _messagePrompt(task, box, uid)
            while True:
                task.flushDigits()
                if prompt is not None:
                    yield task.play(prompt)
                yield task.play("mailboxmenu")
                choice = yield task.collect(count=1, timeout=6.0)
                if choice == "1":
                    continue
                if choice == "7":
                    yield box.setFlags([uid], ["\\Deleted"], ADD)
                    yield box.expunge([uid])
                    yield task.play("messagedeleted", interrupt=False)
                elif choice == "9":
                    yield box.setFlags([uid], ["\\Seen"], ADD)
                elif choice == "*":
                    return
                break
            task.host.count("mailbox_messages_played")
        yield greetingMenu(task, account)
        yield task.play("goodbye", interrupt=False)
    except Hangup:
        raise
    finally:
        box.close()
        task.host.clock.callLater(0, calls.notifyWaiting, task.host, account)


@inlineCallbacks
def greetingMenu(task, account):
    """
    C{5}: record a personal greeting after the tone (C{#} or silence ends
    it); voicemail plays it instead of the stock one.
    """
    path = task.host.greetingPath(account)
    if path is None:
        return
    task.flushDigits()
    yield task.play("greetingmenu")
    choice = yield task.collect(count=1, timeout=3.0)
    if choice != "5":
        return
    task.flushDigits()
    yield task.play("recordgreeting")
    yield task.play("beep", interrupt=False)
    samples = yield task.recordFile(path, maxSeconds=60, silence=3.0)
    task.flushDigits()
    if samples:
        task.host.count("greetings_recorded")
        yield task.play("greetingsaved", interrupt=False)


def _messagePrompt(task, box, uid):
    """@return: an L{IPrompt} of the message's WAV attachment, or C{None}."""
    import email
    import email.policy

    from cgpro.media.audiofile import readAudio

    message = email.message_from_bytes(box.readMessage(uid), policy=email.policy.compat32)
    for part in message.walk():
        if part.get_content_maintype() == "audio":
            try:
                samples = readAudio(part.get_payload(decode=True))
            except ValueError:
                return None
            return task.host.media.promptFromSamples("message-%d" % (uid,), samples)
    return None
