# -*- test-case-name: tests.sip.test_proxy -*-
"""
The response context of a proxied request (RFC 3261 section 16.7): the
branches of a call, forking in parallel and in turn by q, best-response
selection, CANCEL of the other branches on a 2xx, 3xx recursion, the ring
timeout (Timer C), and the call rules that act while the call is under
way (after N seconds, on busy, on no answer).

L{cgpro.sip.proxy.ProxyCore} decides where a request goes and starts a
L{ProxyCall}; this module carries it out.
"""

from twisted.logger import Logger
from zope.interface import implementer

from cgpro.sip.interfaces import IClientTransactionUser
from cgpro.sip.responses import makeResponse
from cgpro.sip.targets import (
    RoutingFailed, Target, Unresolved, fixContact, peerForURI, popVia, recordRouteURI,
    withHost)
from cgpro.sip.uri import SIPURI

log = Logger()

#: Final responses that make a call "busy" for the call rules.
BUSY = frozenset((486, 600, 603))
#: ... and "no answer".
NO_ANSWER = frozenset((408, 480))
#: Methods that create dialogs: Record-Route them.
DIALOG_CREATING = frozenset(("INVITE", "SUBSCRIBE", "REFER", "NOTIFY"))


@implementer(IClientTransactionUser)
class Branch:
    """One client transaction of a L{ProxyCall}."""

    __slots__ = ("call", "target", "transaction", "final", "provisional", "done")

    def __init__(self, call, target):
        self.call = call
        self.target = target
        self.transaction = None
        self.final = None
        self.provisional = False
        self.done = False

    def responseReceived(self, transaction, response):
        self.call.branchResponse(self, response)

    def timedOut(self, transaction):
        self.call.branchFailed(self, 408, "Request Timeout")

    def transportFailed(self, transaction, reason):
        self.call.branchFailed(self, 503, "Service Unavailable (%s)" % (reason,))


class ProxyCall:
    """
    The response context of one proxied request (RFC 3261 section 16.7).
    """

    def __init__(self, proxy, st, request, loopHash, groups, plan, account, inDialog):
        self.proxy = proxy
        self.stack = proxy.stack
        self.st = st
        self.request = request
        self.loopHash = loopHash
        self.groups = list(groups)
        self.plan = plan
        self.account = account
        self.inDialog = inDialog
        self.branches = []
        self.best = None
        self.finished = False
        self.cancelled = False
        self.tried = set()
        self.redirects = 0
        self.timers = []
        self.stageDone = set()
        self.invite = request.method == "INVITE"
        self.local = set()
        self.anchor = None
        self.side = 0

    # -- lifecycle -----------------------------------------------------------

    def start(self):
        settings = self.stack.settings
        if self.invite and not self.inDialog:
            if settings.maxRingTime:
                self.timers.append(self.stack.wheel.schedule(settings.maxRingTime,
                                                             self.ringTimeout))
            if self.plan is not None:
                for seconds, _ in self.plan.timed():
                    self.timers.append(self.stack.wheel.schedule(seconds, self.timedStage,
                                                                 seconds))
        self._nextGroup()

    def noDevices(self):
        """No device to ring: apply the earliest timed rule, else No Answer."""
        if self.plan is not None and self.invite:
            for seconds, _ in self.plan.timed():
                decision = self.plan.applyTimed(seconds, self._info())
                if self._applyDecision(decision, replace=True):
                    return
            if self._failureStage("noanswer"):
                return
        self._finish(makeResponse(self.request, 480, toTag=self.st.toTag))

    def _info(self):
        return self.proxy._signalInfo(self.request, self.st.source)

    def _nextGroup(self):
        while self.groups:
            group = self.groups.pop(0)
            started = False
            for target in group:
                if self._startBranch(target):
                    started = True
            if started:
                return
        if not self._live():
            self._allDone()

    def _startBranch(self, target):
        key = target.key()
        if key in self.tried:
            return False
        self.tried.add(key)
        branch = Branch(self, target)
        self.branches.append(branch)
        destination = target.destination
        if isinstance(destination, Unresolved):
            host = destination.uri.host.strip("[]")
            self.stack.reactor.resolve(host).addCallbacks(
                self._resolved, self._unresolved, callbackArgs=(branch,),
                errbackArgs=(branch,))
            return True
        self._send(branch, destination)
        return True

    def _resolved(self, ip, branch):
        if self.finished or branch.done:
            return
        uri = branch.target.destination.uri
        self._send(branch, peerForURI(withHost(uri, ip)))

    def _unresolved(self, failure, branch):
        self.branchFailed(branch, 503, "Cannot resolve %s" % (branch.target.uri.host,))

    def _send(self, branch, destination):
        request = self._branchRequest(branch.target, destination)
        self.proxy.forwarded += 1
        branch.transaction = self.stack.transactions.request(
            request, destination, branch, branch=self.proxy.newBranch(self.loopHash))

    def _branchRequest(self, target, destination):
        """Copy the request for one branch (RFC 3261 section 16.6)."""
        original = self.request
        uri = target.uri
        if getattr(uri, "headers", None):
            # RFC 3261 section 19.1.5: headers of a Contact URI are not part
            # of a Request-URI; a device may not inject headers into calls
            uri = SIPURI(uri.scheme, uri.user, uri.host, uri.port, uri.params, None,
                         uri.password)
        request = type(original)(original.method, uri, original.version,
                                 None, original.body)
        request.headers = [list(h) for h in original.headers]
        self.proxy._decrementMaxForwards(request)
        if target.route:
            existing = request.getHeaders("Route")
            request.removeHeader("Route")
            for value in list(target.route) + existing:
                request.addHeader("Route", value)
        if original.method in DIALOG_CREATING and not self.inDialog:
            self._recordRoute(request, destination)
        if self.stack.settings.fixNATContact:
            fixContact(request, self.st.source)
        if self.anchor is not None:
            self.proxy.media.rewrite(self.anchor, request, self.side, destination)
        return request

    def _recordRoute(self, request, destination):
        transport = self.stack.transport
        token = self.proxy.routeToken(request.callId)
        outbound = recordRouteURI(transport.localAddress(destination), destination.transport, token)
        source = self.st.source
        inbound = recordRouteURI(transport.localAddress(source), source.transport, token)
        values = [outbound] if inbound == outbound else [outbound, inbound]
        existing = request.getHeaders("Record-Route")
        request.removeHeader("Record-Route")
        for value in values + existing:
            request.addHeader("Record-Route", value)

    # -- responses -----------------------------------------------------------

    def branchResponse(self, branch, response):
        code = response.code
        if self.anchor is not None and code < 300 and code != 100:
            self.proxy.media.rewrite(self.anchor, response, 1 - self.side, self.st.source)
        if code < 200:
            branch.provisional = True
            if code == 100 or self.finished:
                return
            self._forward(response)
            return
        if branch.done:
            if 200 <= code < 300 and self.invite:
                # a 2xx from another fork after the first: pass it on
                self._forwardStateless(response)
            return
        branch.done = True
        branch.final = response
        if 200 <= code < 300:
            self._forward(response)
            self._cancelOthers(branch)
            self._finishedWith()
            return
        if 300 <= code < 400 and self._redirect(branch, response):
            self._checkDone()
            return
        if code >= 600:
            self.best = response
            self._cancelOthers(branch)
            self._checkDone(force=True)
            return
        if self.best is None or _better(response, self.best):
            self.best = response
        self._checkDone()

    def branchFailed(self, branch, code, reason):
        if branch.done:
            return
        response = makeResponse(self.request, code, reason, toTag=self.st.toTag)
        self.local.add(id(response))
        branch.done = True
        branch.final = response
        if self.best is None or _better(response, self.best):
            self.best = response
        self._checkDone()

    def _live(self):
        return any(not b.done for b in self.branches)

    def _checkDone(self, force=False):
        if self.finished:
            return
        if not force and self._live():
            return
        if not force and self.groups:
            self._nextGroup()
            if self._live() or self.finished:
                return
        self._allDone()

    def _allDone(self):
        if self.finished:
            return
        best = self.best
        code = best.code if best is not None else 480
        if self.plan is not None and self.invite and not self.cancelled:
            if code in BUSY:
                kind = "busy"
            elif code in NO_ANSWER:
                kind = "noanswer"
            else:
                kind = "failure"
            if self._failureStage(kind):
                return
        if best is None:
            self._finish(makeResponse(self.request, 480, toTag=self.st.toTag))
            return
        self._forward(best)

    def _failureStage(self, kind):
        if kind in self.stageDone:
            return False
        self.stageDone.add(kind)
        decision = self.plan.onFailure(kind, self._info())
        return self._applyDecision(decision, replace=True)

    def _applyDecision(self, decision, replace):
        """
        Act on a call-rule decision met while the call is under way.

        @return: whether the call goes on (new targets, or answered).
        """
        if decision.reject:
            self._cancelOthers(None)
            self._finish(makeResponse(self.request, decision.reject, toTag=self.st.toTag))
            return True
        addresses = decision.redirect or decision.fork
        if not addresses:
            return False
        try:
            groups, _, _ = self.proxy._expandAddresses(addresses, self._info(),
                                                       self.request, 1)
        except RoutingFailed as e:
            self._cancelOthers(None)
            self._finish(makeResponse(self.request, e.code, e.reason, toTag=self.st.toTag))
            return True
        if not groups:
            return False
        if decision.redirect and replace:
            self._cancelOthers(None)
            self.groups = []
        self.best = None
        self.groups = groups + self.groups
        self._nextGroup()
        return True

    def timedStage(self, seconds):
        if self.finished or self.cancelled:
            return
        decision = self.plan.applyTimed(seconds, self._info())
        self._applyDecision(decision, replace=True)

    def ringTimeout(self):
        if self.finished:
            return
        self._cancelOthers(None)
        for branch in self.branches:
            if not branch.done:
                branch.done = True
        if self.best is None:
            self.best = makeResponse(self.request, 480, "No Answer", toTag=self.st.toTag)
            self.local.add(id(self.best))
        self.groups = []
        self._allDone()

    def _redirect(self, branch, response):
        """Recurse on the Contacts of a 3xx (RFC 3261 section 16.7 step 4)."""
        limit = self.stack.settings.maxRedirects
        added = []
        for contact in response.contact:
            if self.redirects >= limit:
                break
            uri = contact.uri
            if not isinstance(uri, SIPURI):
                continue
            target = Target(uri, peerForURI(uri) or Unresolved(uri))
            if target.key() in self.tried:
                continue
            self.redirects += 1
            added.append(target)
        if not added:
            return False
        if self.best is None:
            self.best = response
        self.groups.insert(0, added)
        if not self._live():
            self._nextGroup()
        return True

    def _cancelOthers(self, winner):
        for branch in self.branches:
            if branch is not winner and not branch.done:
                branch.done = True
                if branch.transaction is not None:
                    branch.transaction.cancel()

    def cancel(self):
        """The caller gave up: cancel every branch, answer 487."""
        if self.finished:
            return
        self.cancelled = True
        self._cancelOthers(None)
        self.groups = []
        self._finish(makeResponse(self.request, 487, toTag=self.st.toTag))

    def abandon(self):
        self._stopTimers()
        self.finished = True

    # -- sending upstream ----------------------------------------------------

    def _forward(self, response):
        if response.code >= 200 and self.finished:
            return
        if id(response) not in self.local:
            popVia(response)  # ours; a response we made has none
        if self.stack.settings.fixNATContact and response.code < 300:
            self._fixResponseContact(response)
        if response.code >= 200:
            self._finish(response)
        else:
            self.st.respond(response)

    def _fixResponseContact(self, response):
        for branch in self.branches:
            if branch.final is response or (branch.transaction is not None and
                                             not branch.done and branch.provisional):
                destination = branch.transaction.destination if branch.transaction else None
                if destination is not None:
                    fixContact(response, destination)
                return

    def _forwardStateless(self, response):
        popVia(response)
        self.stack.transport.sendResponse(response, self.st.source)

    def _finish(self, response):
        if self.finished:
            return
        if self.anchor is not None and not self.inDialog and response.code >= 300:
            self.proxy.media.release(self.request.callId)
        self.finished = True
        self._stopTimers()
        if not self.st.isFinal():
            self.st.respond(response)
        self.proxy.forget(self)

    def _finishedWith(self):
        self.finished = True
        self._stopTimers()
        self.groups = []
        self.proxy.forget(self)

    def _stopTimers(self):
        for timer in self.timers:
            timer.cancel()
        self.timers = []


def _better(response, best):
    """
    RFC 3261 section 16.7 step 6: prefer 6xx, then the lowest class, with
    401/407/415/420/484 kept over other 4xx (they can be acted upon).
    """
    a, b = response.code, best.code
    if b >= 600:
        return False
    if a >= 600:
        return True
    if a // 100 != b // 100:
        return a // 100 < b // 100
    actionable = (401, 407, 415, 420, 484)
    return a in actionable and b not in actionable
