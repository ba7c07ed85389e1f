"""
C{rsipRegister}: one REGISTER transaction for one RSIP record, started by
the Chronos scheduler (L{cgpro.pbx.rsip.RSIPManager}) at the record's
time (pbx-apps.md section 4):

  - Request-URI the record's I{at Host} (its C{gateway@proxy} form is
    sent through the proxy), To and From the record's address (C{@host}
    appended when it has none);
  - C{Expires}: the period plus two minutes, so the registration never
    lapses between two refreshes; 0 when the server stops;
  - digest credentials: the record's Authentication Name (or its
    account) and password;
  - Contact: this server, with the record's token as user part, so that
    the provider's calls come back to L{cgpro.pbx.apps.gatewayincoming}
    (or straight to the account with the C{*} host prefix).
"""

from twisted.internet.defer import inlineCallbacks
from twisted.logger import Logger

from cgpro.pbx import pstn

log = Logger()

#: Responses meaning the credentials are wrong.
AUTH_FAILURES = (401, 403, 407)


@inlineCallbacks
def register(manager, record, expires=None):
    host = manager.host
    fields = record.fields
    try:
        aor, requestHost, proxy, _direct = pstn.rsipTarget(fields,
                                                          record.account.partition("@")[0])
    except ValueError as e:
        manager.done(record, "bad record: %s" % (e,))
        return
    if expires is None:
        expires = pstn.rsipExpires(record.period)
    authName = pstn.rsipAuthName(fields, record.account.partition("@")[0])
    credentials = (authName, fields.get("password") or "")
    contact = yield _contact(host.ua, record.token, requestHost, proxy)
    try:
        response = yield host.ua.request(
            "REGISTER", "sip:" + requestHost, aor, toURI=aor,
            headers=[("Contact", "<%s>" % (contact,)), ("Expires", str(expires))],
            via=proxy, credentials=credentials, callId=record.callId, cseq=record.nextCSeq())
    except Exception as e:
        log.failure("RSIP {account}/{name}: REGISTER failed", account=record.account,
                    name=record.name)
        manager.done(record, "internal error: %s" % (type(e).__name__,))
        return
    code = response.code
    if expires == 0:
        record.registered = False
        return
    if 200 <= code < 300:
        record.registered = True
        log.info("RSIP {account}/{name}: registered at {host} for {expires} s",
                 account=record.account, name=record.name, host=requestHost, expires=expires)
        manager.done(record)
        return
    if code in AUTH_FAILURES:
        error = "Illegal password (%d %s)" % (code, response.reason)
    else:
        error = "%d %s" % (code, response.reason)
    log.info("RSIP {account}/{name}: {error}", account=record.account, name=record.name,
             error=error)
    manager.done(record, error)


@inlineCallbacks
def _contact(ua, token, requestHost, proxy):
    """
    The Contact for the record: this server as seen from the provider (the
    local address that routes to the registrar or its proxy), so that the
    calls the provider sends to it come back to an address of ours.  The
    default-route address is only a fallback (the destination does not
    resolve).
    """
    try:
        # the "via" form: where a request through that host would go
        peer = yield ua.destinationFor(None, proxy or requestHost)
    except Exception:
        peer = None
    return ua.contactFor(token, peer) if peer is not None else ua.contactFor(token)


def run(task):
    """Called as a call target, it has nothing to do: RSIP runs from the scheduler."""
    task.reject(403, "rsipRegister is started by the scheduler")
    return
    yield
