# -*- test-case-name: tests.monitor.test_metrics -*-
"""
The Prometheus exporter: C{GET /metrics} over HTTP, the text exposition
of the server's one catalog (L{cgpro.core.stats}, C{context.stats}).

A row of the port table (C{etc/ports.conf})::

    metrics = { module = metrics; transport = tcp; address = "127.0.0.1"; port = #9106; }

is served by L{build} (C{"metrics": "cgpro.monitor.metrics.build"} in
L{cgpro.core.ports.PROTOCOLS}).  The exposition is whatever
C{prometheus_client.generate_latest} writes for the catalog's registry,
so names, types, help and escaping follow the Prometheus conventions
without a line of ours; callbacks (queue lengths, SIP registrations,
media totals) are read at each scrape.

Only C{/metrics} exists (C{GET} and C{HEAD}); every other path is a
C{404}.  The listener is bound to loopback by default: figures say much
about a server, so exposing them further is a deliberate change of the
row's C{address}.  A scrape that fails is logged with its traceback and
answered C{500} with a one-line text: no traceback reaches a client.
"""

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from twisted.logger import Logger
from twisted.web import resource, server

log = Logger()


class MetricsResource(resource.Resource):
    """
    C{/metrics}: the exposition of one catalog.

    @ivar catalog: the L{cgpro.core.stats.Catalog}.
    """

    isLeaf = True

    def __init__(self, catalog):
        resource.Resource.__init__(self)
        self.catalog = catalog

    def render_GET(self, request):
        try:
            body = generate_latest(self.catalog.registry)
        except Exception:
            log.failure("metrics: the exposition failed")
            request.setResponseCode(500)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return b"internal error\n"
        request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode("ascii"))
        request.setHeader(b"cache-control", b"no-store")
        return body

    def render_HEAD(self, request):
        # twisted.web drops the body of a HEAD itself; render it so the
        # headers are those of GET.
        return self.render_GET(request)


class _Root(resource.Resource):
    """
    The site's root: C{/metrics}, and a plain C{404} for anything else
    (Twisted's default error pages are HTML with the path echoed).
    """

    def __init__(self, metrics):
        resource.Resource.__init__(self)
        self.metrics = metrics

    def getChild(self, path, request):
        if path == b"metrics" and not request.postpath:
            return self.metrics
        return _NotFound()

    def render(self, request):
        return _NotFound().render(request)


class _NotFound(resource.Resource):
    isLeaf = True

    def render(self, request):
        request.setResponseCode(404)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return b"not found; the figures are at /metrics\n"


class MetricsSite(server.Site):
    """
    The exporter's HTTP factory.  Requests are not written to an access
    log: a scrape every few seconds would drown the server's log.
    """

    def log(self, request):
        pass


def build(spec, context):
    """
    The C{metrics} listener.

    @param spec: the L{cgpro.core.ports.ListenerSpec} of the row.
    @param context: the L{cgpro.core.interfaces.IServerContext}; its
        C{stats} is what is served.
    @return: a L{MetricsSite}.
    """
    site = MetricsSite(_Root(MetricsResource(context.stats)), reactor=context.reactor)
    site.displayTracebacks = False
    return site
