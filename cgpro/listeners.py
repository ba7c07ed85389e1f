# -*- test-case-name: tests.test_listeners -*-
"""
The listener tree: one L{MultiService} per module, one child per enabled
row of the port table.

Every row is accounted for at start-up: it listens, or is disabled, or its
module is not built yet (reported as "not available", never skipped
silently), or it failed to bind (the reason is logged and shown by
C{LISTLISTENERS}).  Rows can be changed, added and removed while the server
runs: only the affected listener is restarted, and if it cannot start the
old row is put back, so a typo over the CLI never leaves a service down.
"""

from twisted.application import internet, service
from twisted.internet import defer
from twisted.internet.endpoints import serverFromString
from twisted.logger import Logger
from twisted.python.reflect import namedAny
from zope.interface import implementer

from cgpro.core.errors import CLIError
from cgpro.core.interfaces import IListenerManager
from cgpro.core.ports import PROTOCOLS, PortTableError

log = Logger()


class _TCPListener(internet.StreamServerEndpointService):
    """
    A TCP listener whose bind outcome can be watched.

    Twisted's service logs and swallows a failed bind, leaving nothing to
    tell the caller; L{outcome} fires with the port or the failure instead,
    so a failed row is reported as failed (and a CLI change rolled back).
    """

    outcome = None

    def privilegedStartService(self):
        service.Service.privilegedStartService(self)
        self.outcome = defer.Deferred()
        self._waitingForPort = self.endpoint.listen(self.factory)

        def listening(port):
            self.outcome.callback(port)
            return port

        def failed(failure):
            self.outcome.errback(failure)
            return None

        self._waitingForPort.addCallbacks(listening, failed)


class _UDPListener(internet.UDPServer):
    """
    A UDP listener whose failed bind is recorded instead of aborting the
    start of the whole server.
    """

    bindError = None

    def privilegedStartService(self):
        service.Service.privilegedStartService(self)
        self._bind()

    def startService(self):
        service.Service.startService(self)
        if getattr(self, "_port", None) is None and self.bindError is None:
            self._bind()

    def _bind(self):
        try:
            self._port = self._getPort()
        except Exception as e:
            self.bindError = e
            self._port = None

    def stopService(self):
        if getattr(self, "_port", None) is None:
            service.Service.stopService(self)
            return None
        return internet.UDPServer.stopService(self)


@implementer(IListenerManager)
class ListenerManager(service.MultiService):
    """
    @ivar table: the L{cgpro.core.ports.PortTable} in force.
    @ivar offset: added to every port.
    @ivar state: name -> C{listening}, C{disabled}, C{unavailable},
        C{starting} or C{failed: reason}.
    @ivar ports: name -> the listening port object (for tests and
        C{LISTLISTENERS}).
    """

    name = "listeners"

    def __init__(self, table, context, offset=0, reactor=None, saveOverrides=None):
        service.MultiService.__init__(self)
        if reactor is None:
            from twisted.internet import reactor
        self.table = table
        self.context = context
        self.offset = offset
        self.reactor = reactor
        self.saveOverrides = saveOverrides
        self.state = {}
        self.ports = {}
        self._builders = {}
        self.specs = {}
        # Refuse a bad offset before anything starts: name the row.
        for name, spec in table.specs().items():
            self.specs[name] = spec.withOffset(offset)
        for spec in self.specs.values():
            self._addListener(spec)

    # -- building ---------------------------------------------------------

    def _moduleService(self, module):
        try:
            return self.getServiceNamed(module)
        except KeyError:
            group = service.MultiService()
            group.setName(module)
            group.setServiceParent(self)
            return group

    def _builder(self, module):
        if module not in self._builders:
            self._builders[module] = namedAny(PROTOCOLS[module])
        return self._builders[module]

    def _addListener(self, spec):
        """
        Create the child service of one row (not started here).

        @return: the service, or C{None} when the row does not listen.
        """
        if not spec.enabled:
            self.state[spec.name] = "disabled"
            return None
        if spec.module not in PROTOCOLS:
            self.state[spec.name] = "unavailable"
            log.warn(
                "listener {name} ({module} {transport}/{port}): module {module} "
                "is not available in this version; not listening",
                name=spec.name,
                module=spec.module,
                transport=spec.transport,
                port=spec.port,
            )
            return None
        built = self._builder(spec.module)(spec, self.context)
        if spec.tls == "implicit":
            built = self.context.tls.wrap(built)
        if spec.transport == "udp":
            child = _UDPListener(spec.port, built, interface=spec.address, reactor=self.reactor)
        else:
            endpoint = serverFromString(self.reactor, spec.endpoint())
            child = _TCPListener(endpoint, built)
        child.setName(spec.name)
        child.setServiceParent(self._moduleService(spec.module))
        self.state[spec.name] = "starting"
        return child

    def _watch(self, spec, child):
        """
        Follow a starting listener to C{listening} or C{failed}.

        @return: L{Deferred} firing with C{None} or failing with the reason.
        """
        if spec.transport == "udp":
            port = getattr(child, "_port", None)
            if port is None:
                reason = str(child.bindError or "not bound")
                self.state[spec.name] = "failed: " + reason
                log.error("listener {name} ({module}) cannot listen on {address} port {port}: "
                          "{reason}", name=spec.name, module=spec.module, address=spec.address,
                          port=spec.port, reason=reason)
                return defer.fail(CLIError("listener %s cannot listen: %s" % (spec.name, reason)))
            self.ports[spec.name] = port
            self.state[spec.name] = "listening"
            return defer.succeed(None)
        d = defer.Deferred()

        def listening(port):
            self.ports[spec.name] = port
            self.state[spec.name] = "listening"
            log.info(
                "listener {name} ({module}) on {address} port {port}",
                name=spec.name,
                module=spec.module,
                address=spec.address,
                port=port.getHost().port,
            )
            d.callback(None)
            return port

        def failed(failure):
            reason = failure.getErrorMessage()
            self.state[spec.name] = "failed: " + reason
            log.error(
                "listener {name} ({module}) cannot listen on {address} port {port}: {reason}",
                name=spec.name,
                module=spec.module,
                address=spec.address,
                port=spec.port,
                reason=reason,
            )
            d.errback(CLIError("listener %s cannot listen: %s" % (spec.name, reason)))
            return None

        child.outcome.addCallbacks(listening, failed)
        return d

    def privilegedStartService(self):
        service.MultiService.privilegedStartService(self)
        for name, spec in self.specs.items():
            child = self._child(spec)
            if child is not None and spec.transport == "tcp":
                self._watch(spec, child).addErrback(lambda f: None)

    def startService(self):
        service.MultiService.startService(self)
        for name, spec in self.specs.items():
            child = self._child(spec)
            if child is not None and spec.transport == "udp":
                self._watch(spec, child).addErrback(lambda f: None)

    def _child(self, spec):
        try:
            return self.getServiceNamed(spec.module).getServiceNamed(spec.name)
        except KeyError:
            return None

    # -- IListenerManager -------------------------------------------------

    def listListeners(self):
        result = {}
        for name in self.table.names():
            row = self.table.row(name)
            spec = self.specs.get(name)
            row["State"] = self.state.get(name, "unknown")
            port = self.ports.get(name)
            if port is not None and self.state.get(name) == "listening":
                row["Port"] = port.getHost().port
            elif spec is not None:
                row["Port"] = spec.port
            result[name] = row
        return result

    def updateListener(self, name, changes):
        if not isinstance(changes, dict):
            raise CLIError("listener settings must be a dictionary")
        override = dict(self.table.overrides.get(name) or {})
        override.update(changes)
        return self._replace(name, override)

    def deleteListener(self, name):
        if self.table.row(name) is None:
            raise CLIError("unknown listener")
        return self._replace(name, None)

    @defer.inlineCallbacks
    def _replace(self, name, override):
        try:
            table = self.table.withOverride(name, override)
            newSpec = table.specs().get(name)
            if newSpec is not None:
                newSpec = newSpec.withOffset(self.offset)
        except PortTableError as e:
            raise CLIError(str(e))
        oldTable, oldSpec = self.table, self.specs.get(name)
        yield self._stop(name)
        try:
            yield self._start(newSpec)
        except Exception:
            yield self._stop(name)
            if oldSpec is not None:
                self.specs[name] = oldSpec
                yield self._start(oldSpec).addErrback(lambda f: None)
            raise
        self.table = table
        if self.saveOverrides is not None:
            try:
                yield self.saveOverrides(dict(table.overrides))
            except Exception:
                yield self._stop(name)
                self.table = oldTable
                if oldSpec is not None:
                    yield self._start(oldSpec).addErrback(lambda f: None)
                raise

    def _start(self, spec):
        if spec is None:
            return defer.succeed(None)
        self.specs[spec.name] = spec
        # Adding a child to a running parent starts it (MultiService).
        child = self._addListener(spec)
        if child is None or not self.running:
            return defer.succeed(None)
        return self._watch(spec, child)

    def _stop(self, name):
        self.state.pop(name, None)
        self.specs.pop(name, None)
        port = self.ports.pop(name, None)
        for group in list(self):
            try:
                child = group.getServiceNamed(name)
            except KeyError:
                continue
            return defer.maybeDeferred(child.disownServiceParent)
        if port is not None:
            return defer.maybeDeferred(port.stopListening)
        return defer.succeed(None)
