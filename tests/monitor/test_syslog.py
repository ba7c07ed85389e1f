# -*- test-case-name: tests.monitor.test_syslog -*-
"""
Tests for L{cgpro.monitor.syslog}: RFC 3164 and RFC 5424 records become log
events in C{syslog.<host>} at their severity's level; garbage is counted
and reported at most once a minute.
"""

from twisted.internet.task import Clock
from twisted.internet.testing import FakeDatagramTransport
from twisted.logger import LogLevel, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from cgpro.core.ports import ListenerSpec
from cgpro.core.stats import Catalog
from cgpro.monitor.syslog import (
    MAX_SIZE,
    REPORT_INTERVAL,
    MalformedRecord,
    SyslogProtocol,
    build,
    hostNamespace,
    parseRecord,
)

SENDER = ("192.0.2.7", 40000)


class ListenerTests(SynchronousTestCase):
    """
    Datagrams in, events out, over a fake datagram transport.
    """

    def setUp(self):
        self.clock = Clock()
        self.events = []
        self.stats = Catalog()
        self.protocol = SyslogProtocol(clock=self.clock, stats=self.stats,
                                       observer=self.events.append)
        self.protocol.makeConnection(FakeDatagramTransport())

    def receive(self, data, address=SENDER):
        self.protocol.datagramReceived(data, address)

    def only(self):
        self.assertEqual(len(self.events), 1, self.events)
        return self.events.pop()

    def test_rfc3164(self):
        """A BSD record: namespace from its host, level from its severity, tag: text."""
        self.receive(b"<13>Nov 22 19:08:03 vm root: hello from a component")
        event = self.only()
        self.assertEqual(event["log_namespace"], "syslog.vm")
        self.assertEqual(event["log_level"], LogLevel.info)
        self.assertEqual(formatEvent(event), "root: hello from a component")
        self.assertEqual((event["syslogFacility"], event["syslogSeverity"], event["syslogTime"],
                          event["syslogSource"], event["syslogFormat"]),
                         ("user", 5, "Nov 22 19:08:03", "192.0.2.7", "RFC3164"))
        self.assertTrue(event["syslogCollected"])

    def test_rfc3164Pid(self):
        """A space-padded day and a tag with a process id."""
        self.receive(b"<30>Nov  2 07:04:05 GW1.example.com dnsmasq[123]: query {A} x\n")
        event = self.only()
        self.assertEqual(event["log_namespace"], "syslog.gw1.example.com")
        self.assertEqual((event["syslogApp"], event["syslogPid"]), ("dnsmasq", "123"))
        self.assertEqual(formatEvent(event), "dnsmasq[123]: query {A} x")

    def test_rfc3164NoHost(self):
        """Without a host name (as syslog(3) writes), the sender's address names it."""
        self.receive(b"<11>Nov 22 19:08:03 myapp[9]: disk full")
        event = self.only()
        self.assertEqual(event["log_namespace"], "syslog.192.0.2.7")
        self.assertEqual(event["log_level"], LogLevel.error)
        self.assertEqual(formatEvent(event), "myapp[9]: disk full")

    def test_rfc3164NoTimestamp(self):
        """Without a timestamp, everything after <PRI> is the text (RFC 3164 4.3.2)."""
        self.receive(b"<12>something happened, see above")
        event = self.only()
        self.assertEqual(event["log_namespace"], "syslog.192.0.2.7")
        self.assertEqual(formatEvent(event), "something happened, see above")
        self.assertEqual(event["log_level"], LogLevel.warn)

    def test_rfc3164IsoTimestamp(self):
        """rsyslog's high-precision BSD variant: an RFC 3339 time."""
        self.receive(b"<14>2026-11-22T19:08:03.307051+00:00 pbx2 kamailio[77]: started")
        event = self.only()
        self.assertEqual(event["log_namespace"], "syslog.pbx2")
        self.assertEqual(event["syslogTime"], "2026-11-22T19:08:03.307051+00:00")

    def test_rfc5424(self):
        """An IETF record with structured data (escaped brackets) and a BOM."""
        self.receive(b'<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 '
                     b'[exampleSDID@32473 iut="3" eventSource="App\\]lication"][x@1 a="b"] '
                     b'\xef\xbb\xbfAn application event log entry...')
        event = self.only()
        self.assertEqual(event["log_namespace"], "syslog.mymachine.example.com")
        self.assertEqual(event["log_level"], LogLevel.info)
        self.assertEqual(formatEvent(event), "evntslog: An application event log entry...")
        self.assertEqual(event["syslogMsgId"], "ID47")
        self.assertEqual(event["syslogData"],
                         '[exampleSDID@32473 iut="3" eventSource="App\\]lication"][x@1 a="b"]')
        self.assertEqual((event["syslogFacility"], event["syslogFormat"]), ("local4", "RFC5424"))

    def test_rfc5424Nil(self):
        """Nil fields: the sender's address names the host; no tag."""
        self.receive(b"<15>1 - - - - - - debug text")
        event = self.only()
        self.assertEqual(event["log_namespace"], "syslog.192.0.2.7")
        self.assertEqual(event["log_level"], LogLevel.debug)
        self.assertEqual(formatEvent(event), "debug text")

    def test_loggerOutput(self):
        """What util-linux C{logger -n} sends (RFC 5424 by default)."""
        self.receive(b'<13>1 2026-11-22T19:08:03.307051+00:00 vm root - - '
                     b'[timeQuality tzKnown="1" isSynced="0"] hello from a component')
        self.assertEqual(formatEvent(self.only()), "root: hello from a component")

    def test_severities(self):
        """Emergency to critical is critical; notice and info are info."""
        for severity in range(8):
            self.receive(b"<%d>x: y" % (8 + severity,))
        self.assertEqual([e["log_level"] for e in self.events], [
            LogLevel.critical, LogLevel.critical, LogLevel.critical, LogLevel.error,
            LogLevel.warn, LogLevel.info, LogLevel.info, LogLevel.debug])

    def test_garbageCountedReportedOncePerMinute(self):
        """
        Garbage never raises: it is counted, the first drop is reported at
        once, later ones together a minute after.
        """
        garbage = [b"", b"hello", b"<999>x", b"<013>x", b"<13", b"<13>",
                   b"<13>1 2026-11-22 host app - - - x", b"<13>1 - h a - -",
                   b"<13>1 - h a - - [unterminated", b"<13>1 - h a - - [x]y",
                   b"<13>1 - h\x01 a - - - x", b"\xff\xfe\x00\x01" * 10]
        for data in garbage:
            self.receive(data)
        self.receive(b"x" * MAX_SIZE)
        self.assertEqual((self.protocol.malformed, self.protocol.oversize, self.protocol.received),
                         (len(garbage), 1, 0))
        report = self.only()
        self.assertEqual(report["log_namespace"], "cgpro.monitor.syslog")
        self.assertEqual((report["malformed"], report["oversize"]), (1, 0))
        self.clock.advance(REPORT_INTERVAL - 1)
        self.assertEqual(self.events, [])
        self.clock.advance(1)
        report = self.only()
        self.assertEqual((report["malformed"], report["oversize"]), (len(garbage) - 1, 1))
        self.assertIn("192.0.2.7", formatEvent(report))
        self.clock.advance(REPORT_INTERVAL * 3)
        self.assertEqual(self.events, [])
        self.assertEqual(self.stats.element("cgpro_errors_total/syslog/malformed"), len(garbage))
        self.assertEqual(self.stats.element("cgpro_errors_total/syslog/oversize"), 1)

    def test_stopCancelsReport(self):
        """Stopping the listener leaves no pending report behind."""
        self.receive(b"junk")
        self.receive(b"junk")
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.protocol.doStop()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_fromUnixSocket(self):
        """A sender without an IP address (a Unix socket) still names a host."""
        self.receive(b"<13>x: y", address="/run/x")
        self.assertEqual(self.only()["log_namespace"], "syslog._run_x")


class ParseTests(SynchronousTestCase):
    """
    L{parseRecord} and L{hostNamespace} alone.
    """

    def test_invalidUtf8(self):
        """Bytes that are not UTF-8 are replaced, not refused."""
        self.assertEqual(parseRecord(b"<13>a: \xff")["message"], "\ufffd")

    def test_emptyRecord(self):
        """A <PRI> with nothing after it is no record."""
        self.assertRaises(MalformedRecord, parseRecord, b"<13>\r\n")

    def test_hostNamespace(self):
        """Odd characters cannot make odd namespaces."""
        self.assertEqual(hostNamespace("Phone 1{x}"), "syslog.phone_1_x_")
        self.assertEqual(hostNamespace("2001:db8::1"), "syslog.2001:db8::1")


class BuildTests(SynchronousTestCase):
    """
    The port-table entry point.
    """

    def test_build(self):
        """C{build} gives the protocol the context's clock and stats and the row's C{maxSize}."""

        class Context:
            reactor = Clock()
            stats = Catalog()

        spec = ListenerSpec("syslog", "syslog", "udp", "127.0.0.1", 514,
                            options={"maxSize": "2K"})
        protocol = build(spec, Context)
        self.assertIsInstance(protocol, SyslogProtocol)
        self.assertIs(protocol.clock, Context.reactor)
        self.assertIs(protocol.stats, Context.stats)
        self.assertEqual(protocol.maxSize, 2048)
        spec = ListenerSpec("syslog", "syslog", "udp", "127.0.0.1", 514)
        self.assertEqual(build(spec, Context).maxSize, MAX_SIZE)
