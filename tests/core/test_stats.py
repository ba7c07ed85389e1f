"""
Tests for L{cgpro.core.stats}.
"""

from prometheus_client import generate_latest
from twisted.trial.unittest import SynchronousTestCase

from cgpro.core.stats import CATALOG, Catalog


class CatalogTests(SynchronousTestCase):
    def setUp(self):
        self.catalog = Catalog()

    def test_counterAndCollect(self):
        """
        A labelled counter's increments come back from L{Catalog.collect}
        and from L{Catalog.element} by name and label.
        """
        self.catalog.counter("cgpro_sip_requests_total").labels("INVITE").inc()
        self.catalog.counter("cgpro_sip_requests_total").labels("INVITE").inc(2)
        self.catalog.counter("cgpro_sip_requests_total").labels("BYE").inc()
        self.assertEqual(self.catalog.element("cgpro_sip_requests_total/INVITE"), 3)
        self.assertEqual(self.catalog.element("cgpro_sip_requests_total"), 4)
        self.assertEqual(self.catalog.element("cgpro_mail_bounced_total"), 0)
        names = [entry[0] for entry in self.catalog.collect()]
        self.assertEqual(names, [entry[0] for entry in CATALOG])

    def test_callback(self):
        """
        Callbacks are read at collection; several for one figure add up.
        """
        self.catalog.callback("cgpro_sip_registrations", lambda: 5)
        self.catalog.callback("cgpro_sip_registrations", lambda: 2)
        self.catalog.callback("cgpro_queue_messages", lambda: {("SMTP",): 3, ("LOCAL",): 1})
        self.assertEqual(self.catalog.element("cgpro_sip_registrations"), 7)
        self.assertEqual(self.catalog.element("cgpro_queue_messages/SMTP"), 3)
        text = generate_latest(self.catalog.registry).decode()
        self.assertIn("cgpro_sip_registrations 7.0", text)
        self.assertIn('cgpro_queue_messages{queue="SMTP"} 3.0', text)

    def test_unknown(self):
        """
        A figure not in the catalog is refused: every figure is declared
        in one place.
        """
        self.assertRaises(KeyError, self.catalog.counter, "cgpro_nothing_total")
        self.assertRaises(KeyError, self.catalog.element, "nothing")
        self.assertRaises(TypeError, self.catalog.gauge, "cgpro_sip_requests_total")

    def test_oidsUnique(self):
        """
        Every figure has its own SNMP column.
        """
        oids = [entry[4] for entry in CATALOG]
        self.assertEqual(len(oids), len(set(oids)))
