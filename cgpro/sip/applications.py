# -*- test-case-name: tests.sip.test_applications -*-
"""
Calls the Router or a call rule sends to a PBX application
(C{app{params}#account@domain}, router.md section 2.5).

The SIP stack hands them to the L{cgpro.core.rtinterfaces.IApplicationHost}
(C{context.pbx}).  A call routed straight to an application is handed over
at once.  An application named by a call rule while the call is under
way (I{voicemail after 20 s}, I{on busy}) is one target among the call's
branches, so it becomes a branch like any other: a Request-URI of this
server whose user part names the application (C{~app.<data>.<mac>}), sent
to our own listener; when it comes back in, the stack hands it to the
host.  The MAC (this run's key) keeps callers from naming applications
themselves: an untrusted address cannot name an application (router.md
section 2.5), so a forged C{~app.} URI is answered 404.
"""

import base64
import hashlib
import hmac
import json
import os

from twisted.logger import Logger

from cgpro.sip.targets import Target
from cgpro.sip.uri import SIPURI, parseURI

log = Logger()

PREFIX = "~app."


class ApplicationRoute:
    """
    What the host needs of a route: C{app}, C{params}, C{account},
    C{original} (the called address).
    """

    __slots__ = ("app", "params", "account", "original", "module")

    def __init__(self, app, params, account, original):
        self.module = "PBX"
        self.app = app
        self.params = list(params or ())
        self.account = account
        self.original = original


class ApplicationTarget(Target):
    """
    A branch to an application: its URI and destination bring it back to
    us; C{appRoute} lets the proxy skip the round trip when the application
    is the call's only target.
    """

    __slots__ = ("appRoute",)

    def __init__(self, uri, destination, route):
        Target.__init__(self, uri, destination)
        self.appRoute = route


class Applications:
    """
    The stack's side of the application seam.
    """

    def __init__(self, stack, secret=None):
        self.stack = stack
        self._secret = secret or os.urandom(16)
        self.started = 0

    @property
    def host(self):
        return getattr(self.stack.context, "pbx", None)

    def available(self):
        return self.host is not None

    def _mac(self, data):
        return hmac.new(self._secret, data.encode("ascii"), hashlib.sha256).hexdigest()[:16]

    def token(self, route):
        """@return: the URI user part that names C{route}."""
        data = json.dumps([route.app, list(route.params or ()), route.account,
                           getattr(route, "original", None)], separators=(",", ":"))
        data = base64.urlsafe_b64encode(data.encode("utf-8")).decode("ascii").rstrip("=")
        return "%s%s.%s" % (PREFIX, data, self._mac(data))

    def parse(self, user):
        """
        @return: the L{ApplicationRoute} a C{~app.} user part names, or
            C{None} when it is not one of ours (bad MAC, garbage).
        """
        if not user or not user.startswith(PREFIX):
            return None
        data, _, mac = user[len(PREFIX):].rpartition(".")
        if not data or not hmac.compare_digest(mac, self._mac(data)):
            return None
        try:
            raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
            app, params, account, original = json.loads(raw.decode("utf-8"))
        except (ValueError, TypeError):
            return None
        return ApplicationRoute(app, params, account, original)

    def selfPeer(self):
        """The UDP listener of this server, where application branches go."""
        return self.stack.ua.ownAddress("UDP")

    def target(self, route):
        """@return: a branch L{ApplicationTarget} that brings the call back to the host."""
        peer = self.selfPeer()
        uri = SIPURI("sip", self.token(route), peer.host, peer.port)
        return ApplicationTarget(uri, peer, route)

    def start(self, st, request, route):
        """Hand a request outside a dialog to the application host."""
        host = self.host
        if host is None:
            self.stack.respond(st, 480, "Application %s is not available" % (route.app,))
            return
        self.started += 1
        try:
            host.startApplication(st, request, route)
        except Exception:
            log.failure("SIP: application {app} did not start", app=route.app)
            if not st.isFinal():
                self.stack.respond(st, 500, "Application %s failed" % (route.app,))

    def incoming(self, st, request):
        """
        A request to a C{~app.} URI of ours (a branch we sent ourselves).

        @return: whether it was one (and was handled).
        """
        uri = request.requestURI
        user = getattr(uri, "user", None)
        if not user or request.toAddr.tag is not None:
            return False
        if user.startswith("rsip-"):
            return self._rsip(st, request, user)
        if not user.startswith(PREFIX):
            return False
        route = self.parse(user)
        if route is None:
            self.stack.respond(st, 404, "No such application target")
            return True
        self.start(st, request, route)
        return True

    def _rsip(self, st, request, token):
        """
        A call a provider sends to an RSIP Contact: to C{gatewayincoming}
        for the record's target, or (C{*} host prefix) straight to it.
        """
        host = self.host
        rsip = getattr(host, "rsip", None)
        found = rsip.incomingRoute(token) if rsip is not None else None
        if found is None or not self.stack.isLocalHost(request.requestURI.host):
            return False
        target, direct = found
        if direct:
            request.requestURI = parseURI("sip:" + target)
            return False
        main = self.stack.directory.mainDomain
        self.start(st, request, ApplicationRoute("gatewayincoming", [target], "pbx@" + main,
                                                 target))
        return True
