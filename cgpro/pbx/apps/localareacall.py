"""
C{localAreaCall{number[,c]}#pbx}: 7-digit local numbers (installed Router
record C{<(7d)@*> = localAreaCall{*}#pbx@localhost}).

The authenticated caller's C{PSTNAreaCode} (e.g. C{1(415)}) gives the
digits put in front of the dialled number; with the second parameter
C{c} (domestic calls) only the country code is (pbx-apps.md section 7).
The call is redirected to C{<digits>@telnum}, which the Router routes
again: to a gateway record, or through a Telnum straight to a user.
"""

from cgpro.pbx import pstn


def run(task):
    caller = task.authenticate()
    if caller is None:
        return
    number = "".join(c for c in (task.params[0] if task.params else "") if c.isdigit())
    mode = task.params[1] if len(task.params) > 1 else None
    try:
        settings = task.host.directory.effectiveAccountSettings(caller)
    except Exception:
        settings = {}
    area = pstn.pstnSettings(settings).get("PSTNAreaCode") or ""
    prefix = pstn.areaDigits(area, mode) if area else ""
    if not prefix or not number:
        task.reject(403, "No local area code for %s" % (caller,))
        return
    task.host.count("local_area_calls")
    task.redirect(["sip:%s%s@telnum" % (prefix, number)])
    return
    yield
