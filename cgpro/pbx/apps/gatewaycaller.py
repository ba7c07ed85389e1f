"""
C{gatewaycaller{number[,gatewayKey]}#pbx}: outgoing PSTN calls through a
gateway, as a back-to-back user agent (seed 003, pbx-apps.md section 5).

Only authenticated accounts of this server may call out; their effective
PSTN settings (dictionaries resolved by the gateway key) say where and
as whom:

  - no C{PSTNGatewayName}: 403, the account may not call the PSTN;
  - C{PSTNBillingPlan}: the plan C{billingplan-<name>.objdata} of the
    environment; a blocked prefix is refused 403 with its reason, the
    per-minute cost goes into the call detail record; a missing or
    malformed plan refuses the call 503 (never an unbilled call);
  - the gateway is called at C{sip:<number>@<gateway>}, through
    C{PSTNGatewayVia} when set, From C{PSTNFromName} (C{$}: the account
    name), answering its challenge with C{PSTNGatewayAuthName} and
    C{PSTNGatewayPassword};
  - when it answers, the caller is answered with the gateway's SDP: media
    flow end to end.  A gateway named C{#host} takes no call updates: the
    caller is answered by a media server channel, relayed to the
    gateway's (seed 003).  A transfer by the caller is carried out by the
    caller's task (L{cgpro.pbx.task.Task.referReceived}); the gateway
    never sees a REFER.
"""

from twisted.logger import Logger

from cgpro.pbx import pstn
from cgpro.pbx.task import CallFailed

log = Logger()

RING_TIMEOUT = 120


def callerSettings(task, caller, key):
    try:
        effective = task.host.directory.effectiveAccountSettings(caller)
    except Exception:
        effective = {}
    return pstn.pstnSettings(effective, key)


def billing(task, planName):
    """
    @return: C{(cost, refusal)}: the per-minute cost, or a C{(code,
        reason)} refusal.
    """
    if not planName:
        return None, None
    name = "billingplan-%s.objdata" % (planName,)
    try:
        data = task.host.dataFile(task.domain, name)
    except Exception as e:
        task.host.count("billing_errors")
        log.warn("PBX gatewaycaller: billing plan {name} cannot be read: {error}",
                 name=name, error=str(e))
        return None, (503, "Billing plan %s is malformed" % (planName,))
    if data is None:
        log.warn("PBX gatewaycaller: billing plan {name} is missing", name=name)
        return None, (503, "Billing plan %s is missing" % (planName,))
    try:
        plan = pstn.BillingPlan.parse(data)
    except pstn.BillingPlanError as e:
        task.host.count("billing_errors")
        log.warn("PBX gatewaycaller: billing plan {name} is malformed: {error}",
                 name=name, error=str(e))
        return None, (503, "Billing plan %s is malformed" % (planName,))
    verdict, value = plan.check(task.params[0] if task.params else "")
    if verdict == "blocked":
        return None, (403, str(value))
    return value, None


def run(task):
    caller = task.authenticate()
    if caller is None:
        return
    if not task.params or not task.params[0]:
        task.reject(404, "No number to call")
        return
    number = task.params[0]
    key = task.params[1] if len(task.params) > 1 and task.params[1] else None
    settings = callerSettings(task, caller, key)
    gateway = settings.get("PSTNGatewayName") or ""
    if not gateway:
        task.reject(403, "PSTN calls are not allowed for %s" % (caller,))
        return
    cost, refusal = billing(task, settings.get("PSTNBillingPlan"))
    if refusal is not None:
        task.reject(*refusal)
        return
    relay = gateway.startswith("#")
    gateway = gateway.lstrip("#")
    fromValue = pstn.fromName(settings.get("PSTNFromName") or "", caller.partition("@")[0])
    fromURI = ("sip:%s@%s" % (fromValue, gateway)) if fromValue else task.dialog.remoteURI
    authName = settings.get("PSTNGatewayAuthName") or ""
    credentials = (authName, settings.get("PSTNGatewayPassword") or "") if authName else None
    via = settings.get("PSTNGatewayVia") or None
    task.ring(180)
    try:
        far = yield task.callOut("sip:%s@%s" % (number, gateway), fromURI=fromURI,
                                 fromName=task.dialog.remoteName or None, via=via,
                                 credentials=credentials, timeout=RING_TIMEOUT,
                                 offer=None if relay else task.request.body)
    except CallFailed as e:
        task.reject(e.code if e.code >= 400 else 480, e.reason or None)
        return
    far.cost = cost
    task.host.count("gateway_calls")
    if relay:
        yield task.accept()
        yield task.bridge(far, relay=True)
    else:
        yield task.acceptWith(far.dialog.remoteSDP, far)
    yield task.waitEnd()
