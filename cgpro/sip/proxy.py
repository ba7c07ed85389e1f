# -*- test-case-name: tests.sip.test_proxy -*-
"""
The stateful proxy (RFC 3261 section 16): where a request goes, and which
response comes back.

For a request outside a dialog the target set comes from the Router
(C{Signal} records, aliases, telnums, Forwarders, remote hosts), then, for
a local Account, from its incoming call rules (L{cgpro.sip.callrules}) and
the devices registered for it (L{cgpro.sip.location}).  Devices with the
same q-value ring in parallel; groups of lower q ring in turn after the
higher ones failed (RFC 3261 section 16.6, "sequential by q").  Requests
inside a dialog follow their Route set, which holds us because every
dialog-creating request is Record-Routed.

Relaying protection (seed 000: "Relay to Non-Clients for: clients"): the
Router refuses a non-local target to a sender that is neither a Client IP
nor authenticated; the proxy then asks for credentials (407) and routes
again once the caller proved who it is.  Calls to local Accounts need no
authentication.

Applications (C{app{params}#account}) are the PBX's; until the PBX
environment exists a call routed to one is answered 480 with the reason.
"""

import hashlib
import hmac
import ipaddress
import os

from twisted.logger import Logger
from zope.interface import implementer

from cgpro.sip.address import DEFAULT_PORTS, Peer
from cgpro.sip.callrules import SignalInfo
from cgpro.sip.headers import splitQuoted
from cgpro.core.interfaces import MediaExhausted
from cgpro.sip.interfaces import IClientTransactionUser
from cgpro.sip.mediaproxy import MediaProxy
from cgpro.sip.responses import BRANCH_MAGIC, makeResponse, randomToken
from cgpro.sip.uri import SIPParseError, SIPURI, parseURI

log = Logger()

#: Loop-detection branches start with this after the magic cookie.
_LOOP_MARK = BRANCH_MAGIC + "cg"
#: Final responses that make a call "busy" for the call rules.
_BUSY = frozenset((486, 600, 603))
#: ... and "no answer".
_NO_ANSWER = frozenset((408, 480))
#: Methods that create dialogs: Record-Route them.
_DIALOG_CREATING = frozenset(("INVITE", "SUBSCRIBE", "REFER", "NOTIFY"))
#: How deep Redirect-to rules may chain through other Accounts' rules.
_MAX_RULE_DEPTH = 3


class RoutingFailed(Exception):
    """No target: the code and reason to answer with."""

    def __init__(self, code, reason=None):
        Exception.__init__(self, code, reason)
        self.code = code
        self.reason = reason


class Target:
    """
    One place to send a branch.

    @ivar uri: the Request-URI for the branch (a L{SIPURI}).
    @ivar destination: the L{Peer} to send to, or L{None} to derive it
        from the URI (after resolving a host name).
    @ivar route: Route header values to put on the branch (a
        registration's Path).
    @ivar q: the q-value (ordering only).
    """

    __slots__ = ("uri", "destination", "route", "q", "nat")

    def __init__(self, uri, destination=None, route=(), q=1.0, nat=False):
        self.uri = uri
        self.destination = destination
        self.route = list(route)
        self.q = q
        self.nat = nat

    def key(self):
        return str(self.uri).lower()


def peerForURI(uri, transport=None):
    """
    @return: the L{Peer} a SIP URI with an IP literal host points to, or
        L{None} if its host is a name (to be resolved).
    """
    if transport is None:
        param = uri.getParam("transport")
        if uri.scheme == "sips":
            transport = "TLS"
        elif param:
            transport = {"udp": "UDP", "tcp": "TCP", "tls": "TLS"}.get(param.lower(), "UDP")
        else:
            transport = "UDP"
    host = uri.host.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return Peer(transport, host, uri.port or DEFAULT_PORTS[transport])


def popVia(message):
    """Remove the topmost Via (ours) from a response about to go upstream."""
    headers = message.headers
    for i, (name, value) in enumerate(headers):
        if name == "Via":
            parts = splitQuoted(value, ",")
            if len(parts) > 1:
                headers[i] = ["Via", ",".join(parts[1:]).strip()]
            else:
                del headers[i]
            break
    message._cache.clear()


def addressOf(uri):
    """@return: C{user@host} of a SIP URI (the Router's input)."""
    if uri.user:
        return "%s@%s" % (uri.user, uri.host)
    return uri.host


class ProxyCore:
    """
    The proxy of one L{cgpro.sip.stack.SIPStack}.

    @ivar calls: the live L{ProxyCall}s by server transaction.
    """

    def __init__(self, stack):
        self.stack = stack
        self.reactor = stack.reactor
        self.calls = {}
        self.forwarded = 0
        self.failedRoutes = 0
        self.callCounter = None
        self.media = MediaProxy(stack)
        self._secret = os.urandom(16)

    def stop(self):
        for call in list(self.calls.values()):
            call.abandon()
        self.calls.clear()
        self.media.stop()

    # -- entry points ------------------------------------------------------

    def handleRequest(self, st, request):
        """
        Proxy a request that is not for the server itself.
        """
        stack = self.stack
        maxForwards = request.maxForwards
        if maxForwards is not None and maxForwards <= 0:
            stack.respond(st, 483)
            return
        loopHash = self._loopHash(request)
        if self._isLoop(request, loopHash):
            stack.respond(st, 482)
            return
        require = request.getHeader("Proxy-Require")
        if require:
            stack.respond(st, 420, headers=[("Unsupported", require)])
            return
        signed = self._preprocessRoute(request)
        inDialog = request.toAddr.tag is not None
        if request.route:
            uri = request.route[0].uri
            if not isinstance(uri, SIPURI):
                stack.respond(st, 416)
                return
            if not signed and not self._mayRelay(st, request):
                return
            self._startCall(st, request, loopHash,
                            [[Target(request.requestURI, peerForURI(uri) or _Resolve(uri))]],
                            inDialog=True)
            return
        uri = request.requestURI
        domain = stack.localDomain(uri.host, uri.port, _transportOf(uri))
        if inDialog and (domain is None or uri.user is None):
            if domain is None and not signed and not self._mayRelay(st, request):
                return
            self._startCall(st, request, loopHash, [[Target(uri, peerForURI(uri))]],
                            inDialog=True)
            return
        try:
            groups, plan, account = self._targetsFor(st, request, domain)
        except RoutingFailed as e:
            self.failedRoutes += 1
            if e.code == 407:
                realm = self._realm(request)
                stack.respond(st, 407, headers=self.stack.authenticator.challenge(
                    realm, proxy=True))
            else:
                stack.respond(st, e.code, e.reason)
            return
        if groups is None:
            return  # answered already
        self._startCall(st, request, loopHash, groups, plan=plan, account=account,
                        inDialog=inDialog)

    def _mayRelay(self, st, request):
        """
        A request to go to another system without passing our Router: one
        with a Route set we did not Record-Route (pre-loaded, or forged),
        or inside a dialog we do not know.  Only Client IPs and
        authenticated users may do that; the others are asked for
        credentials (407), so the proxy is never an open relay.

        @return: whether to forward it (if not, it has been answered).
        """
        stack = self.stack
        if stack.isClient(st.source.host):
            return True
        result = stack.authenticator.verify(request, self._realm(request), proxy=True)
        if result.status == "ok":
            return True
        if result.status == "failed":
            log.info("SIP: wrong credentials for {user} from {source}",
                     user=result.username, source=st.source)
        self.failedRoutes += 1
        stack.respond(st, 407, headers=stack.authenticator.challenge(
            self._realm(request), proxy=True))
        return False

    def routeToken(self, callId):
        """
        The tag our Record-Route carries for a dialog: an HMAC of its
        Call-ID under this run's key, so that a Route naming us is taken as
        "a dialog we Record-Routed" only if we really did.
        """
        return hmac.new(self._secret, callId.encode("utf-8", "surrogateescape"),
                        hashlib.sha256).hexdigest()[:12]

    def cancelled(self, st):
        """The caller CANCELled the INVITE of C{st}."""
        call = self.calls.get(st)
        if call is not None:
            call.cancel()
        elif not st.isFinal():
            self.stack.respond(st, 487)

    def forwardAck(self, request, source):
        """
        Forward an ACK for a 2xx along its Route set, statelessly (RFC
        3261 section 16.11): it has no transaction and no response.
        """
        signed = self._preprocessRoute(request)
        if request.maxForwards is not None and request.maxForwards <= 0:
            return
        self._decrementMaxForwards(request)
        if request.route:
            uri = request.route[0].uri
        else:
            uri = request.requestURI
            if (uri.user is None and self.stack.isLocalHost(uri.host)
                    and self.stack.isLocalPort(uri.port, _transportOf(uri))):
                return  # for us: nothing to do
        if not isinstance(uri, SIPURI):
            return
        if not signed and not self.stack.isClient(source.host):
            return  # not a dialog of ours: an ACK cannot be challenged
        destination = peerForURI(uri)
        if destination is None:
            self.reactor.resolve(uri.host).addCallbacks(
                lambda ip: self._sendAck(request, uri, ip), lambda f: None)
            return
        self._sendAck(request, uri, destination)

    def _sendAck(self, request, uri, destination):
        if isinstance(destination, str):
            destination = peerForURI(_withHost(uri, destination))
        self.stack.transactions.request(request, destination, None,
                                        branch=self._statelessBranch(request))

    def forwardStrayResponse(self, response, source):
        """
        Forward a response no transaction knows (a 2xx retransmission, or a
        2xx from another fork after the first) by its second Via.
        """
        vias = response.via
        if len(vias) < 2:
            return
        top = vias[0]
        if not self.stack.isLocalHost(top.host):
            return
        popVia(response)
        self.stack.transport.sendResponse(response, None)

    # -- routing -----------------------------------------------------------

    def _preprocessRoute(self, request):
        """
        RFC 3261 section 16.4: undo a strict router's Request-URI, and
        remove the Route entries that name us (one, or two when we
        Record-Routed twice to bridge transports).

        @return: whether a removed entry carried our token for this dialog
            (L{routeToken}).
        """
        stack = self.stack
        uri = request.requestURI
        routes = request.route
        if not routes:
            return False
        if (isinstance(uri, SIPURI) and uri.user is None and uri.hasParam("lr")
                and stack.isLocalHost(uri.host)
                and stack.isLocalPort(uri.port, _transportOf(uri))):
            # a strict router put our Record-Route into the Request-URI
            last = routes[-1]
            request.requestURI = last.uri
            self._setRoutes(request, routes[:-1])
            routes = request.route
        removed = 0
        signed = False
        token = None
        while routes and removed < 2:
            first = routes[0].uri
            if (isinstance(first, SIPURI) and stack.isLocalHost(first.host)
                    and stack.isLocalPort(first.port, _transportOf(first))):
                if token is None:
                    token = self.routeToken(request.callId)
                signed = signed or hmac.compare_digest(first.getParam("cgp") or "", token)
                routes = routes[1:]
                removed += 1
            else:
                break
        if removed:
            self._setRoutes(request, routes)
        return signed

    def _setRoutes(self, request, routes):
        request.removeHeader("Route")
        for route in routes:
            request.addHeader("Route", str(route))

    def _realm(self, request):
        """The realm of a 407: the caller's domain when it is ours."""
        try:
            uri = request.fromAddr.uri
            domain = self.stack.localDomain(uri.host)
        except Exception:
            domain = None
        return domain or self.stack.directory.mainDomain

    def _targetsFor(self, st, request, domain):
        """
        Route the Request-URI of a request outside a dialog.

        @return: C{(groups, plan, account)}: the target groups (lists of
            L{Target}, rung in turn), the call-rule plan of the local
            Account called (or L{None}) and that Account.
        @raise RoutingFailed: nowhere to send it.
        """
        stack = self.stack
        uri = request.requestURI
        address = addressOf(uri)
        if domain is not None and uri.user is not None:
            address = "%s@%s" % (uri.user, domain)
        source = st.source
        trusted = stack.isClient(source.host)
        route = stack.router.route(address, "SIGNAL", trusted)
        if route.module == "ERROR" and route.address == "relaying prohibited":
            result = stack.authenticator.verify(request, self._realm(request), proxy=True)
            if result.status == "ok":
                route = stack.router.route(address, "SIGNAL", True)
            elif result.status in ("missing", "stale", "failed"):
                if result.status == "failed":
                    log.info("SIP: wrong credentials for {user} from {source}",
                             user=result.username, source=source)
                raise RoutingFailed(407)
        info = self._signalInfo(request, source)
        # Server-wide rules of the immediate stage run before the Signal
        # reaches an Account (rules.md section 2.3)
        decision = stack.rules.forServer().immediate(info)
        if decision.reject:
            raise RoutingFailed(decision.reject)
        if decision.redirect:
            return self._expandAddresses(decision.redirect, info, request, 1)
        groups, plan, account = self._expand(route, info, request, depth=0)
        if decision.fork:
            extra, _, _ = self._expandAddresses(decision.fork, info, request, 1, quiet=True)
            forked = [t for group in extra for t in group]
            if groups:
                groups[0].extend(forked)
            elif forked:
                groups = [forked]
        return groups, plan, account

    def _expand(self, route, info, request, depth):
        module = route.module
        if module == "ERROR":
            text = route.address or "not found"
            if text == "relaying prohibited":
                raise RoutingFailed(403, "Relaying prohibited")
            raise RoutingFailed(404, text[:1].upper() + text[1:])
        if module == "NULL":
            raise RoutingFailed(603, "Declined by a null route")
        if module == "PBX":
            raise RoutingFailed(480, "Application %s is not available" % (route.app,))
        if module == "SIP":
            original = request.requestURI
            if route.address.lower() == addressOf(original).lower():
                uri = original  # not rewritten: keep its port and parameters
            else:
                uri = _targetURI(route.address, request)
            return [[Target(uri, peerForURI(uri) or _Resolve(uri))]], None, None
        if module == "LOCAL":
            account = route.account
            plan = self.stack.rules.forAccount(account, serverImmediate=False)
            decision = plan.immediate(info)
            if decision.reject:
                raise RoutingFailed(decision.reject)
            if decision.redirect:
                if depth >= _MAX_RULE_DEPTH:
                    raise RoutingFailed(482, "Call rules redirect in a loop")
                return self._expandAddresses(decision.redirect, info, request, depth + 1)
            groups = self._devices(account, request)
            if decision.fork:
                extra, _, _ = self._expandAddresses(decision.fork, info, request, depth + 1,
                                                    quiet=True)
                forked = [t for group in extra for t in group]
                if groups:
                    groups[0].extend(forked)
                else:
                    groups = [forked] if forked else []
            return groups, plan, account
        raise RoutingFailed(404, "Cannot route to %s" % (module,))

    def _expandAddresses(self, addresses, info, request, depth, quiet=False):
        """
        Targets for addresses a call rule named (routed as trusted: the
        rule's owner chose them).
        """
        groups = []
        plan = account = None
        for address in addresses:
            route = self.stack.router.route(address, "SIGNAL", True)
            try:
                more, plan, account = self._expand(route, info, request, depth)
            except RoutingFailed:
                if quiet or len(addresses) > 1:
                    log.info("SIP: call rule target {address} not reachable",
                             address=address)
                    continue
                raise
            if more:
                if groups:
                    groups[0].extend(more[0])
                    groups.extend(more[1:])
                else:
                    groups = more
        return groups, plan, account

    def _devices(self, account, request):
        """
        @return: target groups for the devices registered for C{account},
            by descending q.
        """
        groups = []
        last = None
        for binding in self.stack.location.lookup(account):
            try:
                uri = parseURI(binding.contact)
            except SIPParseError:
                continue
            if not isinstance(uri, SIPURI):
                continue
            destination = peerForURI(uri)
            source = binding.source
            nat = False
            if source is not None and (
                    source.reliable or destination is None
                    or destination.host != source.host
                    or (self.stack.settings.fixNATContact
                        and destination.port != source.port)):
                # behind NAT, or on a connection the device opened: use the
                # flow the REGISTER arrived on (RFC 5626)
                nat = destination is None or destination.host != source.host
                destination = source
            target = Target(uri, destination or _Resolve(uri), binding.path, binding.q, nat)
            if last is not None and binding.q == last:
                groups[-1].append(target)
            else:
                groups.append([target])
                last = binding.q
        return groups

    def _signalInfo(self, request, source):
        info = SignalInfo()
        info.method = request.method
        fromAddr = request.fromAddr
        info.fromAddress = addressOf(fromAddr.uri) if isinstance(fromAddr.uri, SIPURI) else str(fromAddr.uri)
        info.fromName = fromAddr.displayName or ""
        toUri = request.toAddr.uri
        info.toAddress = addressOf(toUri) if isinstance(toUri, SIPURI) else str(toUri)
        info.requestURI = str(request.requestURI)
        if request.method == "INVITE" and (b"m=audio" in request.body
                                            or b"m=video" in request.body
                                            or not request.body):
            # an offerless INVITE gets its media later: still a call
            info.callType = "AV"
        elif request.method == "MESSAGE":
            info.callType = "IM"
        else:
            info.callType = ""
        info.sourceAddress = "[%s]:%d" % (source.host, source.port)
        info.presence = None
        return info

    # -- loops -------------------------------------------------------------

    def _loopHash(self, request):
        """
        RFC 3261 section 16.6 step 8: a hash of what makes a request the
        same request, carried in our branch so that the request coming
        back to us unchanged is a loop, and one with a new Request-URI a
        spiral.
        """
        text = "|".join((str(request.requestURI), request.fromAddr.tag or "",
                         request.toAddr.tag or "", request.callId,
                         str(request.cseq.number), request.getHeader("Proxy-Require") or "",
                         ",".join(request.getHeaders("Route"))))
        return hashlib.md5(text.encode("utf-8", "surrogateescape")).hexdigest()[:10]

    def _isLoop(self, request, loopHash):
        vias = request.via
        if len(vias) < 2:
            return False
        mark = _LOOP_MARK + loopHash
        stack = self.stack
        for via in vias:
            branch = via.branch
            if branch and branch.startswith(mark) and stack.isLocalHost(via.host):
                return True
        return False

    def newBranch(self, loopHash):
        return "%s%s.%s" % (_LOOP_MARK, loopHash, randomToken(6))

    def _statelessBranch(self, request):
        top = request.via[0].branch or ""
        return BRANCH_MAGIC + "cs" + hashlib.md5(top.encode()).hexdigest()[:16]

    def _decrementMaxForwards(self, request):
        value = request.maxForwards
        request.setHeader("Max-Forwards", str(70 if value is None else value - 1))

    # -- calls ---------------------------------------------------------------

    def _startCall(self, st, request, loopHash, groups, plan=None, account=None,
                   inDialog=False):
        if not groups or not any(groups):
            if plan is not None:
                # no device registered: the timed and "no answer" rules act
                # at once (the Guide's "with no registered device")
                call = ProxyCall(self, st, request, loopHash, [], plan, account, inDialog)
                self.calls[st] = call
                call.noDevices()
                return
            self.stack.respond(st, 480)
            return
        call = ProxyCall(self, st, request, loopHash, groups, plan, account, inDialog)
        if not self._anchorMedia(call, groups):
            return
        if call.invite and not inDialog and self.callCounter is not None:
            self.callCounter.inc()
        self.calls[st] = call
        call.start()

    def _anchorMedia(self, call, groups):
        """
        Put the call's media through the relay when it needs it (see
        L{cgpro.sip.mediaproxy}); release it on BYE.

        @return: whether the call goes on (not when the relay is full).
        """
        request = call.request
        media = self.media
        if call.inDialog:
            anchor = media.anchors.get(request.callId)
            if anchor is not None:
                if request.method == "BYE":
                    media.release(request.callId)
                else:
                    call.anchor = anchor
                    call.side = media.sideOf(anchor, request)
            return True
        natTargets = any(t.nat for group in groups for t in group)
        calleeFamily = 4
        for group in groups:
            for target in group:
                if isinstance(target.destination, Peer):
                    calleeFamily = 6 if ":" in target.destination.host else 4
                    break
            else:
                continue
            break
        callerFamily = 6 if ":" in call.st.source.host else 4
        if not media.wanted(request, call.st.source, natTargets or calleeFamily != callerFamily):
            return True
        try:
            call.anchor = media.anchor(request, calleeFamily)
        except MediaExhausted as e:
            log.warn("SIP: call {callId} refused: {error}", callId=request.callId,
                     error=str(e))
            self.stack.respond(call.st, 503, "Media relay exhausted")
            return False
        call.side = 0
        return True

    def forget(self, call):
        if self.calls.get(call.st) is call:
            del self.calls[call.st]


class _Resolve:
    """A destination still to be found by resolving a host name."""

    __slots__ = ("uri",)

    def __init__(self, uri):
        self.uri = uri


def _transportOf(uri):
    if uri.scheme == "sips":
        return "TLS"
    param = uri.getParam("transport")
    return param.upper() if param else "UDP"


def _withHost(uri, host):
    return SIPURI(uri.scheme, uri.user, host, uri.port, uri.params, uri.headers,
                  uri.password)


def _targetURI(address, request):
    """The Request-URI for a remote target C{user@host[:port]} of the Router."""
    original = request.requestURI
    text = address if address.lower().startswith(("sip:", "sips:")) else "sip:" + address
    try:
        uri = parseURI(text)
    except SIPParseError:
        raise RoutingFailed(404, "Bad target %s" % (address,))
    if isinstance(original, SIPURI) and original.getParam("user") == "phone":
        uri.params.append(("user", "phone"))
    return uri


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
        if isinstance(destination, _Resolve):
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
        self._send(branch, peerForURI(_withHost(uri, ip)))

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
        if original.method in _DIALOG_CREATING and not self.inDialog:
            self._recordRoute(request, destination)
        if self.stack.settings.fixNATContact:
            fixContact(request, self.st.source)
        if self.anchor is not None:
            self.proxy.media.rewrite(self.anchor, request, self.side, destination)
        return request

    def _recordRoute(self, request, destination):
        transport = self.stack.transport
        token = self.proxy.routeToken(request.callId)
        outbound = _rrURI(transport.localAddress(destination), destination.transport, token)
        source = self.st.source
        inbound = _rrURI(transport.localAddress(source), source.transport, token)
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
            if code in _BUSY:
                kind = "busy"
            elif code in _NO_ANSWER:
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
            target = Target(uri, peerForURI(uri) or _Resolve(uri))
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


def _rrURI(hostport, transport, token):
    host, port = hostport
    if ":" in host:
        host = "[%s]" % (host,)
    suffix = "" if transport == "UDP" else ";transport=%s" % (transport.lower(),)
    return "<sip:%s:%d%s;lr;cgp=%s>" % (host, port, suffix, token)


def fixContact(message, peer):
    """
    Rewrite the Contact of a message from a device behind NAT to the
    address its packets come from, so that requests inside the dialog
    reach it (the nathelper C{fix_nated_contact} behaviour).
    """
    from cgpro.sip.stack import isPrivate

    values = message.getHeaders("Contact")
    if len(values) != 1 or peer is None:
        return
    try:
        contacts = message.contact
    except SIPParseError:
        return
    if len(contacts) != 1 or contacts[0].wildcard:
        return
    contact = contacts[0]
    uri = contact.uri
    if not isinstance(uri, SIPURI) or not isPrivate(uri.host):
        return
    if uri.host.strip("[]") == peer.host and (uri.port or 5060) == peer.port:
        return
    fixed = _withHost(uri, peer.host if ":" not in peer.host else "[%s]" % peer.host)
    fixed.port = peer.port
    if peer.transport != "UDP" and not fixed.getParam("transport"):
        fixed.params.append(("transport", peer.transport.lower()))
    contact.uri = fixed
    message.setHeader("Contact", str(contact))
