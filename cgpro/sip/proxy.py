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

Applications (C{app{params}#account}) are the PBX's (L{cgpro.sip.applications}):
a call routed straight to one is handed to the application host, one a
call rule names mid-call becomes a branch back to ourselves.  Without a
PBX a call routed to one is answered 480 with the reason.
"""

import hashlib
import hmac
import os

from twisted.logger import Logger

from cgpro.core.interfaces import MediaExhausted
from cgpro.sip.address import Peer
from cgpro.sip.applications import ApplicationTarget, Applications
from cgpro.sip.callrules import SignalInfo
from cgpro.sip.forking import ProxyCall
from cgpro.sip.mediaproxy import MediaProxy
from cgpro.sip.responses import BRANCH_MAGIC, randomToken
from cgpro.sip.targets import (
    RoutingFailed, Target, Unresolved, addressOf, peerForURI, popVia, targetURI,
    transportOf, withHost)
from cgpro.sip.uri import SIPParseError, SIPURI, parseURI

log = Logger()

#: Loop-detection branches start with this after the magic cookie.
_LOOP_MARK = BRANCH_MAGIC + "cg"
#: How deep Redirect-to rules may chain through other Accounts' rules.
_MAX_RULE_DEPTH = 3


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
        self.applications = Applications(stack)

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
        if not inDialog and not request.route and self.applications.incoming(st, request):
            return
        if request.route:
            uri = request.route[0].uri
            if not isinstance(uri, SIPURI):
                stack.respond(st, 416)
                return
            if not signed and not self._mayRelay(st, request):
                return
            self._startCall(st, request, loopHash,
                            [[Target(request.requestURI, peerForURI(uri) or Unresolved(uri))]],
                            inDialog=True)
            return
        uri = request.requestURI
        domain = stack.localDomain(uri.host, uri.port, transportOf(uri))
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
        if (len(groups) == 1 and len(groups[0]) == 1
                and isinstance(groups[0][0], ApplicationTarget) and plan is None):
            # routed straight to an application: no branch needed
            self.applications.start(st, request, groups[0][0].appRoute)
            return
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
                    and self.stack.isLocalPort(uri.port, transportOf(uri))):
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
            destination = peerForURI(withHost(uri, destination))
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
                and stack.isLocalPort(uri.port, transportOf(uri))):
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
                    and stack.isLocalPort(first.port, transportOf(first))):
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
            if not self.applications.available():
                raise RoutingFailed(480, "Application %s is not available" % (route.app,))
            return [[self.applications.target(route)]], None, None
        if module == "SIP":
            original = request.requestURI
            if route.address.lower() == addressOf(original).lower():
                uri = original  # not rewritten: keep its port and parameters
            else:
                uri = targetURI(route.address, request)
            return [[Target(uri, peerForURI(uri) or Unresolved(uri))]], None, None
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
            target = Target(uri, destination or Unresolved(uri), binding.path, binding.q, nat)
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
