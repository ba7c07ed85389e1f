# -*- test-case-name: tests.monitor.test_metrics -*-
"""
Tests for L{cgpro.monitor.metrics}: the site is driven over a
L{StringTransport} with a L{Clock}, the whole HTTP stack included and no
port opened.
"""

from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from cgpro.core.ports import PROTOCOLS, ListenerSpec
from cgpro.core.stats import Catalog
from cgpro.monitor import metrics


class _Context:
    """
    What L{metrics.build} reads of the server context.
    """

    def __init__(self):
        self.stats = Catalog()
        self.reactor = Clock()


def get(site, path, method=b"GET"):
    """
    One HTTP/1.0 request to C{site}.

    @return: C{(status code, headers dict with lower-case names, body)}.
    """
    protocol = site.buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    protocol.dataReceived(method + b" " + path + b" HTTP/1.0\r\nHost: x\r\n\r\n")
    head, _, body = transport.value().partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    protocol.connectionLost(None)
    return status, headers, body


class MetricsTests(SynchronousTestCase):
    """
    C{GET /metrics} serves the catalog in the Prometheus text format.
    """

    def setUp(self):
        self.context = _Context()
        self.site = metrics.build(ListenerSpec("metrics", "metrics", "tcp", "127.0.0.1", 9106),
                                  self.context)

    def test_registered(self):
        """
        The port table's C{metrics} module is built by L{metrics.build}.
        """
        self.assertEqual(PROTOCOLS["metrics"], "cgpro.monitor.metrics.build")

    def test_exposition(self):
        """
        Counters, labelled counters and callbacks appear with their
        current values, under the exposition's content type, and parse
        with the Prometheus client's own parser.
        """
        stats = self.context.stats
        stats.counter("cgpro_connections_total").labels("smtp").inc(3)
        stats.counter("cgpro_mail_bounced_total").inc()
        stats.callback("cgpro_queue_messages", lambda: {("SMTP(example.com)",): 2})
        status, headers, body = get(self.site, b"/metrics")
        self.assertEqual(status, 200)
        self.assertEqual(headers[b"content-type"], CONTENT_TYPE_LATEST.encode())
        families = {f.name: f for f in text_string_to_metric_families(body.decode())}
        [sample] = [s for s in families["cgpro_connections"].samples
                    if s.name == "cgpro_connections_total"]
        self.assertEqual((sample.labels, sample.value), ({"module": "smtp"}, 3.0))
        self.assertEqual(families["cgpro_connections"].type, "counter")
        self.assertIn(b"cgpro_mail_bounced_total 1.0", body)
        self.assertIn(b'cgpro_queue_messages{queue="SMTP(example.com)"} 2.0', body)

    def test_readAtEachScrape(self):
        """
        Each scrape shows the figures as they are then.
        """
        counter = self.context.stats.counter("cgpro_mail_bounced_total")
        counter.inc()
        self.assertIn(b"cgpro_mail_bounced_total 1.0", get(self.site, b"/metrics")[2])
        counter.inc()
        self.assertIn(b"cgpro_mail_bounced_total 2.0", get(self.site, b"/metrics")[2])

    def test_head(self):
        """
        C{HEAD /metrics} answers with the headers of C{GET} and no body.
        """
        status, headers, body = get(self.site, b"/metrics", b"HEAD")
        self.assertEqual(status, 200)
        self.assertEqual(headers[b"content-type"], CONTENT_TYPE_LATEST.encode())
        self.assertEqual(body, b"")

    def test_notFound(self):
        """
        Every other path is a plain-text 404 that does not echo the path.
        """
        for path in (b"/", b"/metric", b"/metrics/x", b"/metrics/", b"/<script>"):
            status, headers, body = get(self.site, path)
            self.assertEqual(status, 404, path)
            self.assertEqual(headers[b"content-type"], b"text/plain; charset=utf-8")
            self.assertNotIn(b"script", body)

    def test_failureHidden(self):
        """
        A collector that raises is logged; the client gets a 500 with a
        one-line text and no traceback.
        """

        class Broken:
            broken = False

            def collect(self):
                if self.broken:
                    raise RuntimeError("secret detail")
                return []

        broken = Broken()
        self.context.stats.registry.register(broken)
        broken.broken = True
        status, _, body = get(self.site, b"/metrics")
        self.assertEqual(status, 500)
        self.assertEqual(body, b"internal error\n")
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_noAccessLog(self):
        """
        Scrapes are not written to an access log.
        """
        self.assertIsNone(self.site.log(None))
        self.assertFalse(self.site.displayTracebacks)
