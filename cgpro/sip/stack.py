# -*- test-case-name: tests.sip.test_stack -*-
"""
The SIP stack of one server: the transaction user that every SIP listener
(UDP, TCP, TLS) feeds, and the object that wires the layers together.

One L{SIPStack} per server, kept on the server context (C{context.signal})
and started as a child of the root service before the listeners, so that
the location service is loaded before the first REGISTER and saved after
the last one::

    transport (cgpro.sip.transport)  -- bytes, connections, Via stamping
    transactions (cgpro.sip.transaction) -- RFC 3261 section 17
    SIPStack (this module)           -- dispatch by method and target
      registrar (cgpro.sip.registrar) + location + digest
      proxy (cgpro.sip.proxy)        -- Router, call rules, forking
      callrules (cgpro.sip.callrules)

The stack decides only which of them a request goes to; it answers itself
the few requests addressed to the server and not to a user: OPTIONS
(keep-alive probes, sipsak's ping) and out-of-scope methods.
"""

import os
import socket

from twisted.application import service
from twisted.logger import Logger
from zope.interface import implementer

from cgpro.core import iplists
from cgpro.sip.callrules import SignalRules
from cgpro.sip.digest import DigestAuthenticator
from cgpro.sip.interfaces import ITransactionUser
from cgpro.sip.location import LocationService
from cgpro.sip.proxy import ProxyCore
from cgpro.sip.registrar import Registrar
from cgpro.sip.responses import makeResponse
from cgpro.sip.settings import SIPSettings
from cgpro.sip.timers import TimerWheel
from cgpro.sip.transaction import TransactionLayer
from cgpro.sip.transport import TransportLayer
from cgpro.sip.ua import UserAgent
from cgpro.sip.uri import SIPURI

log = Logger()

#: Methods this server understands (the Allow header).
ALLOWED = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "MESSAGE",
           "REGISTER", "INFO", "UPDATE", "REFER", "PRACK", "NOTIFY",
           "SUBSCRIBE")
#: Methods proxied to users; the rest of ALLOWED need a dialog.
_OUT_OF_DIALOG = frozenset(("INVITE", "OPTIONS", "MESSAGE", "INFO", "REFER",
                            "NOTIFY", "SUBSCRIBE", "UPDATE", "PRACK", "BYE"))
#: Known methods a server of this version does not serve itself.
_NOT_HERE = frozenset(("PUBLISH",))

SERVER_HEADER = "cgpro"


@implementer(ITransactionUser)
class SIPStack(service.Service):
    """
    @ivar context: the L{cgpro.core.interfaces.IServerContext}.
    @ivar transport: the L{TransportLayer} shared by every SIP listener.
    @ivar transactions: the L{TransactionLayer}.
    @ivar location: the L{LocationService} (registrations).
    @ivar registrar: the L{Registrar}.
    @ivar proxy: the L{ProxyCore}.
    @ivar requests: counters of requests received, by method.
    """

    name = "signal"

    def __init__(self, context, reactor=None, transport=None):
        """
        @param transport: an L{ISIPTransport} to use instead of a new
            L{TransportLayer} (tests).
        """
        self.context = context
        self.reactor = reactor if reactor is not None else context.reactor
        self.directory = context.directory
        self.router = context.router
        self._settings = settings = SIPSettings.load(self.directory)
        self._settingsAt = getattr(self.directory, "serverGeneration", None)
        self.wheel = TimerWheel(self.reactor, resolution=0.05)
        self.slowWheel = TimerWheel(self.reactor, resolution=1.0)
        tls = getattr(context, "tls", None)
        if transport is None:
            transport = TransportLayer(
                self.reactor, maxSize=settings.maxMessageSize,
                idleTimeout=settings.idleTimeout or 300,
                clientTLS=getattr(tls, "clientOptions", None),
                advertised=settings.advertisedAddress or None)
        transport.messageHandler = self._messageReceived
        # the addresses our Contacts carried (see isLocalHost): the
        # transport's own set, read on every request without a lookup
        self._sourceHosts = getattr(transport, "sourceHosts", frozenset())
        self.transport = _CountingTransport(transport, context)
        self.transactions = TransactionLayer(self.reactor, self.transport, self,
                                             wheel=self.wheel)
        folder = os.path.join(context.base, "SIP")
        self.location = LocationService(self.reactor, context.writer, folder,
                                        wheel=self.slowWheel,
                                        maxPerAOR=settings.maxContacts)
        self.authenticator = DigestAuthenticator(
            self.directory, self.reactor,
            nonceLifetime=settings.nonceLifetime or 300,
            algorithms=settings.digestAlgorithms)
        self.registrar = Registrar(
            self.directory, self.location, self.authenticator, self.reactor,
            minExpires=settings.minExpires, maxExpires=settings.maxExpires,
            defaultExpires=settings.defaultExpires,
            requireAuth=settings.requireRegisterAuth,
            failureLimit=settings.authFailuresPerMinute or 10)
        self.registrar.localDomain = self.localDomain
        self.rules = SignalRules(self.directory)
        self.proxy = ProxyCore(self)
        #: The server's own user agent (the PBX's B2BUA legs): offered
        #: every in-dialog request, ACK, CANCEL and stray response first.
        self.ua = UserAgent(self)
        self.requests = {}
        self._localHosts = None
        self._registerStats(getattr(context, "stats", None))
        self._ports = set()
        self._addresses = set()

    @property
    def settings(self):
        """
        The module settings, read again when a server-wide dictionary
        changed (the directory's C{serverGeneration}), so that
        C{UPDATEMODULE SIP} applies to the next request without a restart
        and without a parse per request.
        """
        generation = getattr(self.directory, "serverGeneration", None)
        if generation != self._settingsAt:
            self._settingsAt = generation
            fresh = SIPSettings.load(self.directory)
            if fresh.raw != self._settings.raw:
                self._settings = fresh
                self._localHosts = None
                self._applySettings(fresh)
        return self._settings

    def _applySettings(self, settings):
        """Pass changed settings on to the registrar and the authenticator."""
        registrar = self.registrar
        registrar.minExpires = settings.minExpires
        registrar.maxExpires = settings.maxExpires
        registrar.defaultExpires = settings.defaultExpires
        registrar.requireAuth = settings.requireRegisterAuth
        registrar.throttle.limit = settings.authFailuresPerMinute or 10
        self.location.maxPerAOR = settings.maxContacts
        self.authenticator.nonceLifetime = settings.nonceLifetime or 300
        self.authenticator.algorithms = settings.digestAlgorithms

    def _registerStats(self, catalog):
        """
        Report to the server's catalog: requests by method (counted as they
        arrive), responses by class (L{_CountingTransport}), and the live
        figures read at collection time.
        """
        self._requestCounter = None
        if catalog is None:
            return
        self._requestCounter = catalog.counter("cgpro_sip_requests_total")
        self._methodCounters = {}
        layer = self.transactions
        catalog.callback("cgpro_sip_transactions",
                         lambda: {("server",): layer.serverCount,
                                  ("client",): layer.clientCount})
        catalog.callback("cgpro_sip_registrations", self.location.count)
        catalog.callback("cgpro_sip_calls_active", lambda: len(self.proxy.calls))
        self.proxy.callCounter = catalog.counter("cgpro_sip_calls_total")

    def _countRequest(self, method):
        counter = self._methodCounters.get(method)
        if counter is None:
            if len(self._methodCounters) >= 32:  # methods come from the wire
                method = "other"
            counter = self._methodCounters.get(method)
            if counter is None:
                counter = self._methodCounters[method] = self._requestCounter.labels(method)
        counter.inc()

    # -- service -----------------------------------------------------------

    def startService(self):
        service.Service.startService(self)
        self.location.load()
        log.info("SIP: {count} registrations loaded", count=self.location.count())

    def stopService(self):
        service.Service.stopService(self)
        self.ua.stop()
        self.proxy.stop()
        self.transactions.stop()
        self.transport.stop()
        self.location.stop()
        self.wheel.stop()
        self.slowWheel.stop()

    # -- listeners ---------------------------------------------------------

    def protocolFor(self, spec):
        """
        @param spec: a port-table row of module C{sip}.
        @return: the DatagramProtocol (UDP row) or server factory (TCP row;
            the listener manager wraps an implicit-TLS row in TLS).
        """
        self._ports.add(spec.port)
        self._addresses.add(spec.address)
        self._localHosts = None
        if spec.transport == "udp":
            return self.transport.udpProtocol(spec)
        return self.transport.streamFactory(spec, tls=spec.tls == "implicit")

    # -- who we are --------------------------------------------------------

    def localHosts(self):
        """
        @return: the set of host names and addresses (lower case) that
            mean this server in a Request-URI, a Route or a Via.
        """
        if self._localHosts is None:
            hosts = {"127.0.0.1", "::1", "localhost"}
            hosts.update(self.settings.localHosts)
            if self.settings.advertisedAddress:
                hosts.add(self.settings.advertisedAddress.lower())
            try:
                name = socket.gethostname()
                hosts.add(name.lower())
                for info in socket.getaddrinfo(name, None):
                    hosts.add(info[4][0])
            except OSError:
                pass
            for listening in self._addresses:
                if listening not in ("0.0.0.0", "::"):
                    hosts.add(listening)
            self._localHosts = hosts
        return self._localHosts

    def isLocalHost(self, host):
        """@return: whether C{host} names this server itself."""
        if host is None:
            return False
        host = host.lower().strip("[]")
        # the addresses our Contacts and Vias carried (found per destination
        # on a wildcard listener) are ours too: an RSIP provider calls them
        return host in self.localHosts() or host in self._sourceHosts

    def isLocalPort(self, port, transport="UDP"):
        """@return: whether C{port} (None = the default) is one we listen on."""
        if port is None:
            port = 5061 if transport == "TLS" else 5060
        return port in self._ports or not self._ports

    def localDomain(self, host, port=None, transport="UDP"):
        """
        @param port: the URI's port: an address of this server with a port
            it does not listen on is another program on this host, not us.
        @return: the local Domain a Request-URI host names (the Main Domain
            for this server's own addresses), or L{None}.
        """
        if host is None:
            return None
        host = host.lower().strip("[]")
        if self.isLocalHost(host):
            if port is not None and not self.isLocalPort(port, transport):
                return None
            return self.directory.mainDomain
        try:
            found = self.directory.domainFor(host)
        except Exception:
            found = None
        return found

    def isClient(self, ip):
        """@return: whether C{ip} is in the Client IPs or LAN IPs lists."""
        return iplists.isClient(self.directory, ip)

    # -- ITransactionUser --------------------------------------------------

    def _messageReceived(self, message, source):
        self.transactions.messageReceived(message, source)

    def requestReceived(self, transaction, request):
        self.settings  # picks up UPDATEMODULE SIP (an O(1) check)
        method = request.method
        self.requests[method] = self.requests.get(method, 0) + 1
        if self._requestCounter is not None:
            self._countRequest(method)
        try:
            self._dispatch(transaction, request)
        except Exception as e:
            log.failure("SIP: {method} from {source} failed", method=method,
                        source=transaction.source)
            if not transaction.isFinal():
                transaction.respond(makeResponse(
                    request, 500, "Server Internal Error (%s)" % (type(e).__name__,),
                    toTag=transaction.toTag))

    def _dispatch(self, transaction, request):
        method = request.method
        uri = request.requestURI
        if not isinstance(uri, SIPURI):
            self.respond(transaction, 416)
            return
        toUs = uri.user is None and self.isLocalHost(uri.host)
        if method == "REGISTER":
            domain = self.localDomain(uri.host)
            if domain is None:
                self.respond(transaction, 404, "Not a local domain")
                return
            self.registrar.handleRegister(transaction, request, domain)
            return
        if toUs and not request.route and request.toAddr.tag is None:
            if method == "OPTIONS":
                self.respond(transaction, 200, headers=self.capabilities())
            elif method in _NOT_HERE or method == "SUBSCRIBE":
                self.respond(transaction, 405, headers=[("Allow", ", ".join(ALLOWED))])
            else:
                self.respond(transaction, 404, "No user in the Request-URI")
            return
        if method in _NOT_HERE:
            self.respond(transaction, 405, headers=[("Allow", ", ".join(ALLOWED))])
            return
        if request.toAddr.tag is not None and self.ua.handleRequest(transaction, request):
            return
        self.proxy.handleRequest(transaction, request)

    def ackReceived(self, request, source):
        self.requests["ACK"] = self.requests.get("ACK", 0) + 1
        if self._requestCounter is not None:
            self._countRequest("ACK")
        try:
            if self.ua.ackReceived(request, source):
                return
            self.proxy.forwardAck(request, source)
        except Exception:
            log.failure("SIP: ACK from {source} not forwarded", source=source)

    def cancelReceived(self, transaction, cancel):
        self.requests["CANCEL"] = self.requests.get("CANCEL", 0) + 1
        if self._requestCounter is not None:
            self._countRequest("CANCEL")
        if self.ua.cancelReceived(transaction, cancel):
            return
        self.proxy.cancelled(transaction)

    def strayResponse(self, response, source):
        try:
            if self.ua.strayResponse(response, source):
                return
            self.proxy.forwardStrayResponse(response, source)
        except Exception:
            log.failure("SIP: stray response from {source} not forwarded",
                        source=source)

    # -- helpers -----------------------------------------------------------

    def capabilities(self):
        """@return: the headers of an OPTIONS answer."""
        return [("Allow", ", ".join(ALLOWED)),
                ("Accept", "application/sdp, text/plain"),
                ("Supported", "path, outbound"),
                ("Server", SERVER_HEADER)]

    def respond(self, transaction, code, reason=None, headers=()):
        """Answer C{transaction} with a response made from its request."""
        transaction.respond(makeResponse(transaction.request, code, reason,
                                         toTag=transaction.toTag, headers=headers))


class _CountingTransport:
    """
    The transport as the stack's layers see it: every call goes to the real
    one, and each response sent is counted by class
    (C{cgpro_sip_responses_total}), whichever layer sends it.  Reading an
    attribute reads the real transport's; set attributes on the real one.
    """

    def __init__(self, transport, context):
        self._transport = transport
        catalog = getattr(context, "stats", None)
        counter = catalog.counter("cgpro_sip_responses_total") if catalog else None
        self._classes = ([counter.labels("%dxx" % n) for n in range(7)]
                         if counter is not None else None)

    def sendResponse(self, response, source):
        if self._classes is not None:
            self._classes[min(response.code // 100, 6)].inc()
        return self._transport.sendResponse(response, source)

    def __getattr__(self, name):
        return getattr(self._transport, name)
