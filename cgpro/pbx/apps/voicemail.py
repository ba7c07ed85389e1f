"""
C{voicemail}: the default action of the I{If Busy} and I{If No Answer}
call rules (C{voicemail#account@domain}).

It answers for the account it runs on behalf of, plays the greeting,
records the caller after the beep, and mails the recording to the
account (L{cgpro.pbx.calls.leaveMessage}); two stars during the greeting
lead the owner to the self-service menu after the PIN.  A call the owner
makes to his own voicemail goes straight to self-service (seed 004 row 8).
"""

from cgpro.pbx import calls
from cgpro.pbx.apps import service


def run(task):
    account = task.account
    if task.params and task.params[0]:
        named = calls.localAccount(task.host, task.params[0], task.domain)
        if named is not None:
            account = named
    if _ownerCalling(task, account):
        yield task.accept()
        yield service.logon(task, account)
        return
    yield calls.leaveMessage(task, account)


def _ownerCalling(task, account):
    return calls.callerAccount(task) == account
