"""
C{emergency#pbx}: emergency numbers (C{<911@*> = emergency#pbx@localhost}).

The authenticated caller's C{PSTNEmergency} setting says where such calls
go (C{call=<uri>[,call=<uri>...]}, pbx-apps.md section 8); the call is
redirected there (several targets: the caller's proxy forks).  With no
setting the dialled number goes to C{<number>@telnum}.
"""

from cgpro.pbx import pstn


def run(task):
    caller = task.authenticate()
    if caller is None:
        return
    try:
        settings = task.host.directory.effectiveAccountSettings(caller)
    except Exception:
        settings = {}
    value = pstn.pstnSettings(settings).get("PSTNEmergency") or ""
    dialled = (getattr(task, "called", "") or "").partition("@")[0] or "911"
    targets = pstn.emergencyTargets(value, dialled)
    task.host.count("emergency_calls")
    task.redirect([t if t.startswith(("sip:", "tel:")) else "sip:" + t for t in targets])
    return
    yield
