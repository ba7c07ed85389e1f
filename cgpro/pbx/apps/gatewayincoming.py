"""
C{gatewayincoming{destination}#pbx}: calls a PSTN gateway sends in (or an
RSIP provider delivers) are taken by a back-to-back user agent, because
such gateways usually cannot transfer or move media: the destination
(often a C{+E.164} number, routed like any address: telnums, aliases,
Router records) is called and the two legs joined, media end to end.  A
transfer by the called user is carried out here; the gateway never sees
it.
"""

from cgpro.pbx.task import CallFailed

RING_TIMEOUT = 120


def destination(task):
    target = task.params[0] if task.params and task.params[0] else ""
    if not target:
        called = getattr(task, "called", "") or ""
        target = called.partition("@")[0]
    if not target:
        return None
    if "@" not in target:
        target = "%s@%s" % (target, task.domain)
    return target if target.startswith("sip:") else "sip:" + target


def run(task):
    target = destination(task)
    if target is None:
        task.reject(404, "No destination")
        return
    task.ring(180)
    try:
        far = yield task.callOut(target, fromURI=task.dialog.remoteURI,
                                 fromName=task.dialog.remoteName or None,
                                 timeout=RING_TIMEOUT, offer=task.request.body)
    except CallFailed as e:
        task.reject(e.code if e.code >= 400 else 480, e.reason or None)
        return
    task.host.count("gateway_incoming")
    yield task.acceptWith(far.dialog.remoteSDP, far)
    yield task.waitEnd()
