# -*- test-case-name: tests.core.test_stats -*-
"""
The one catalog of the server's figures: every counter and gauge any
module reports, with its help text, its labels and its place in the SNMP
tree, declared once in L{CATALOG}.

Each server has one (C{context.stats}); modules report to it; the monitoring front ends read from it: Prometheus
(C{/metrics}), the SNMP agent (the cgpro MIB is generated from the same
table) and the CLI's C{GETSTATELEMENT}.  A new module adds its figures in
one place: a line in L{CATALOG}, then C{stats.counter(name).inc()} (or
C{labels(...)}) where the event happens, or a callback that reads a
figure the module keeps anyway (queue lengths, registrations, relay
totals) at collection time.

Counters are C{prometheus_client} objects in a private registry, so an
increment costs what the library's costs (a lock and an add) and the
exposition follows the Prometheus conventions.
"""

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from twisted.logger import Logger

log = Logger()

#: (name, kind, help, label names, SNMP sub-identifier).  Names follow the
#: Prometheus conventions (C{cgpro_<module>_<what>[_total]}); the
#: sub-identifier is the metric's column under the cgpro MIB's objects
#: and never changes once published.
CATALOG = [
    # connections and sessions, by listener module
    ("cgpro_connections_total", "counter", "Connections accepted, by module.",
     ("module",), 1),
    ("cgpro_sessions_active", "gauge", "Sessions open now, by module.", ("module",), 2),
    ("cgpro_auth_failures_total", "counter", "Failed logins, by module.", ("module",), 3),
    ("cgpro_errors_total", "counter", "Errors, by module and kind.", ("module", "kind"), 4),
    # mail
    ("cgpro_mail_accepted_total", "counter", "Messages accepted into the queue, by module.",
     ("module",), 10),
    ("cgpro_mail_delivered_total", "counter", "Messages delivered, by channel.",
     ("channel",), 11),
    ("cgpro_mail_bounced_total", "counter", "Messages returned to their sender.", (), 12),
    ("cgpro_queue_messages", "gauge", "Messages waiting, by logical queue.", ("queue",), 13),
    # CLI
    ("cgpro_cli_commands_total", "counter", "CLI commands, by result.", ("result",), 20),
    # SIP
    ("cgpro_sip_requests_total", "counter", "SIP requests received, by method.",
     ("method",), 30),
    ("cgpro_sip_responses_total", "counter", "SIP responses sent, by class.", ("class",), 31),
    ("cgpro_sip_transactions", "gauge", "SIP transactions alive, by side.", ("side",), 32),
    ("cgpro_sip_registrations", "gauge", "Registered SIP contacts.", (), 33),
    ("cgpro_sip_calls_active", "gauge", "Calls being set up or in progress through the proxy.",
     (), 34),
    ("cgpro_sip_calls_total", "counter", "INVITEs proxied outside a dialog.", (), 35),
    # media
    ("cgpro_media_sessions", "gauge", "Media relay sessions open.", (), 40),
    ("cgpro_media_packets_total", "counter", "RTP/RTCP packets received by the relay.", (), 41),
    ("cgpro_media_bytes_total", "counter", "RTP/RTCP bytes received by the relay.", (), 42),
    ("cgpro_media_lost_total", "counter", "RTP packets lost before the relay (RFC 3550).",
     (), 43),
    ("cgpro_media_dropped_total", "counter", "Packets the relay dropped.", (), 44),
    ("cgpro_media_channels", "gauge", "Media server channels open (PBX call legs with media).",
     (), 45),
    ("cgpro_media_ticks_total", "counter",
     "Media server frame ticks (20 ms), by timing: ontime or late (sent a frame time late).",
     ("timing",), 46),
    # PBX (real-time applications)
    ("cgpro_pbx_tasks", "gauge", "PBX application tasks (call legs) alive.", (), 50),
    ("cgpro_pbx_events_total", "counter",
     "PBX events: calls started, voicemails stored, digits, transfers..., by kind.",
     ("kind",), 51),
    ("cgpro_pbx_conferences", "gauge", "Conference rooms open.", (), 52),
]

_KINDS = {name: (kind, doc, labels, oid) for name, kind, doc, labels, oid in CATALOG}


class Catalog:
    """
    The figures of one server.

    @ivar registry: the C{prometheus_client} registry holding them.
    """

    def __init__(self):
        self.registry = CollectorRegistry(auto_describe=True)
        self._metrics = {}
        self._callbacks = {}
        self.registry.register(_CallbackCollector(self))

    def _declared(self, name):
        try:
            return _KINDS[name]
        except KeyError:
            raise KeyError("%s is not in cgpro.core.stats.CATALOG" % (name,))

    def counter(self, name):
        """
        @return: the C{prometheus_client.Counter} C{name} of the catalog
            (call C{.labels(...)} first when it has labels).
        """
        metric = self._metrics.get(name)
        if metric is None:
            kind, doc, labels, _ = self._declared(name)
            if kind != "counter":
                raise TypeError("%s is a %s" % (name, kind))
            base = name[:-len("_total")] if name.endswith("_total") else name
            metric = self._metrics[name] = Counter(base, doc, labels, registry=self.registry)
        return metric

    def gauge(self, name):
        """
        @return: the C{prometheus_client.Gauge} C{name} of the catalog.
        """
        metric = self._metrics.get(name)
        if metric is None:
            kind, doc, labels, _ = self._declared(name)
            if kind != "gauge":
                raise TypeError("%s is a %s" % (name, kind))
            metric = self._metrics[name] = Gauge(name, doc, labels, registry=self.registry)
        return metric

    def callback(self, name, function):
        """
        Read figure C{name} from C{function} at each collection, for
        values a module keeps anyway.  A figure is either a callback or a
        L{counter}/L{gauge}, never both.

        @param function: returns a number, or for a labelled figure a
            C{dict} from label-value tuples to numbers.
        """
        self._declared(name)
        self._callbacks.setdefault(name, []).append(function)

    def collect(self):
        """
        @return: every figure: a C{list} of C{(name, kind, help, labelNames,
            oid, samples)} in catalog order, C{samples} a C{list} of
            C{(labelValues tuple, value)}.
        """
        values = {}
        for family in self.registry.collect():
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue
                values.setdefault(sample.name, []).append(
                    (sample.labels, sample.value))
        out = []
        for name, kind, doc, labels, oid in CATALOG:
            samples = [(tuple(l.get(k, "") for k in labels), v)
                       for l, v in values.get(name, [])]
            out.append((name, kind, doc, labels, oid, samples))
        return out

    def element(self, path):
        """
        One figure for the CLI's C{GETSTATELEMENT}: C{name} or
        C{name/labelValue[/labelValue...]}.

        @return: the number (0 for a known figure not yet reported).
        @raise KeyError: for a name not in the catalog.
        """
        parts = path.split("/")
        name, wanted = parts[0], tuple(parts[1:])
        self._declared(name)
        total = 0
        for collected, _, _, labels, _, samples in self.collect():
            if collected != name:
                continue
            for values, value in samples:
                if values[:len(wanted)] == wanted:
                    total += value
        return total


class _CallbackCollector:
    """Turns L{Catalog.callback} functions into samples at collection."""

    def __init__(self, catalog):
        self.catalog = catalog

    def describe(self):
        return []

    def collect(self):
        for name, functions in self.catalog._callbacks.items():
            kind, doc, labels, _ = _KINDS[name]
            if kind == "counter":
                base = name[:-len("_total")] if name.endswith("_total") else name
                family = CounterMetricFamily(base, doc, labels=labels)
            else:
                family = GaugeMetricFamily(name, doc, labels=labels)
            merged = {}
            for function in functions:
                try:
                    value = function()
                except Exception:
                    log.failure("statistics callback for {name} failed", name=name)
                    continue
                if isinstance(value, dict):
                    for key, number in value.items():
                        key = key if isinstance(key, tuple) else (key,)
                        merged[key] = merged.get(key, 0) + number
                else:
                    merged[()] = merged.get((), 0) + value
            for key, number in merged.items():
                family.add_metric(list(key), number)
            yield family



class ListenerFigures:
    """
    The figures every listener's sessions report (connections, sessions
    open, failed logins, errors by kind), for one module.

    Made once per listener factory: the labelled children are resolved
    here, so a session pays only for the increments, never for a label
    lookup.

    @ivar module: the C{module} label (the port table's module name:
        C{smtp}, C{submission}, C{lmtp}, C{pop}, C{imap}, C{cli}).
    @ivar authFailures: the child of C{cgpro_auth_failures_total}.
    """

    def __init__(self, catalog, module):
        self.module = module
        self._connections = catalog.counter("cgpro_connections_total").labels(module)
        self._sessions = catalog.gauge("cgpro_sessions_active").labels(module)
        self.authFailures = catalog.counter("cgpro_auth_failures_total").labels(module)
        self._errorFamily = catalog.counter("cgpro_errors_total")
        self._errors = {}

    def opened(self):
        """
        A connection was accepted: one more connection, one more session.
        """
        self._connections.inc()
        self._sessions.inc()

    def closed(self):
        """
        A session ended (call once per L{opened}).
        """
        self._sessions.dec()

    def error(self, kind):
        """
        Count one error of C{kind} (C{protocol}, C{internal}, C{timeout}
        ...); children are made on first use, since kinds are few.
        """
        child = self._errors.get(kind)
        if child is None:
            child = self._errors[kind] = self._errorFamily.labels(self.module, kind)
        child.inc()
