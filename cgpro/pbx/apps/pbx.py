"""
C{pbx}: the PBX Center's auto-attendant.

The installer's Signal rule on the C{pbx} account (aliases C{200},
C{conference}) starts it for every call.  It answers, plays
C{receptionprompt.wav} and lets the caller:

  - dial an extension (any name the Router maps to a local account:
    aliases, telnums, account names made of digits), ended by C{#} or a
    pause; the call is transferred to that account, and busy or no answer
    lands in that account's voicemail (seed 004 rows 6a-6c);
  - press C{0} for the operator (the C{pbx} account's setting
    C{PBXOperator}, C{postmaster} by default);
  - press C{9} for the dial-by-name directory: three letters on the
    keypad, matched against the real names (then the names) of the
    domain's accounts;
  - an extension that maps to nothing is told so and stays in the menu
    (row 6d); three empty rounds end the call.

Called as C{conference} it is the conference room (L{cgpro.pbx.apps.conference}).

Instant messages to the PBX Center are a text directory: C{dir <name>}
answers with the accounts whose real name or name starts with it, and
their extensions.
"""

from twisted.internet.defer import inlineCallbacks

from cgpro.pbx import calls
from cgpro.pbx.apps import conference

#: Keypad letters.
KEYS = {"2": "ABC", "3": "DEF", "4": "GHI", "5": "JKL", "6": "MNO", "7": "PQRS",
        "8": "TUV", "9": "WXYZ"}
ROUNDS = 3


def _calledUser(task):
    called = getattr(task, "called", None) or ""
    return called.partition("@")[0].lower()


def run(task):
    if _calledUser(task) == "conference":
        yield inlineCallbacks(conference.run)(task)
        return
    yield task.accept()
    task.host.count("attendant_calls")
    empty = 0
    while True:
        yield task.play("receptionprompt")
        digits = yield task.collect(count=6, timeout=3.0, first=8.0)
        if not digits:
            empty += 1
            if empty >= ROUNDS:
                yield task.play("goodbye", interrupt=False)
                return
            continue
        empty = 0
        if digits == "0":
            target = operator(task)
        elif digits == "9":
            target = yield directory(task)
            if target is None:
                continue
        else:
            target = calls.localAccount(task.host, digits, task.domain)
        if target is None or target == task.account:
            task.host.count("attendant_invalid")
            task.flushDigits()
            yield task.play("invalidextension", interrupt=False)
            continue
        yield task.play("transferring", interrupt=False)
        yield calls.transferTo(task, target)
        return


def operator(task):
    try:
        settings = task.host.directory.effectiveAccountSettings(task.account)
    except Exception:
        settings = {}
    name = settings.get("PBXOperator") or "postmaster"
    return calls.localAccount(task.host, name, task.domain)


def lettersMatch(digits, text):
    """Whether C{text} starts with letters typed as C{digits} on a keypad."""
    letters = [c for c in text.upper() if c.isalpha()]
    if len(letters) < len(digits):
        return False
    return all(letter in KEYS.get(digit, "") for digit, letter in zip(digits, letters))


def matches(host, domain, digits):
    """@return: the accounts of C{domain} whose real name (or name) the digits spell."""
    found = []
    try:
        names = sorted(host.directory.listAccounts(domain))
    except Exception:
        return found
    for name in names:
        account = "%s@%s" % (name, domain)
        real = calls.realName(host, account)
        words = real.split() if real else []
        if lettersMatch(digits, name) or any(lettersMatch(digits, w) for w in words):
            found.append(account)
    return found


@inlineCallbacks
def directory(task):
    """
    Dial by name: three letters, then each match is offered (1 to call
    it, any other key for the next).
    """
    task.flushDigits()
    yield task.play("directory")
    digits = yield task.collect(count=3, timeout=4.0, first=8.0)
    found = [a for a in matches(task.host, task.domain, digits)
             if a != task.account] if len(digits) == 3 else []
    if not found:
        yield task.play("nomatch", interrupt=False)
        return None
    for account in found:
        prompt = spokenName(task, account)
        task.flushDigits()
        yield task.play(*(prompt + ["namefound"]))
        choice = yield task.collect(count=1, timeout=4.0)
        if choice == "1":
            return account
    yield task.play("nomatch", interrupt=False)
    return None


def spokenName(task, account):
    """The extension of C{account} read out digit by digit (no speech synthesis)."""
    name = account.partition("@")[0]
    return ["digit" + c for c in name if c.isdigit()]


def message(host, route, sender, text):
    """An IM to the PBX Center: C{dir <name>} -> the matching accounts."""
    words = text.split()
    domain = (route.account or "").partition("@")[2]
    if len(words) < 2 or words[0].lower() != "dir":
        return "PBX Center: send 'dir <name>' to look someone up."
    prefix = words[1].lower()
    lines = []
    try:
        names = sorted(host.directory.listAccounts(domain))
    except Exception:
        names = []
    for name in names:
        account = "%s@%s" % (name, domain)
        real = calls.realName(host, account)
        if name.lower().startswith(prefix) or any(
                w.lower().startswith(prefix) for w in real.split()):
            try:
                aliases = host.directory.getAccountAliases(account)
            except Exception:
                aliases = []
            lines.append("%s <%s>%s" % (real or name, account,
                                        " ext. " + ", ".join(aliases) if aliases else ""))
    return "\n".join(lines) if lines else "No one matches %s." % (words[1],)
