# -*- test-case-name: tests.mail.smtp.test_policy -*-
"""
Tests for L{cgpro.mail.smtp.policy} and L{cgpro.mail.smtp.dnsquery}: rate
windows, DNS blocklists, the return-path check and SPF, alone and through
the session.
"""

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.names import error
from twisted.trial.unittest import SynchronousTestCase

from cgpro.mail.smtp import dnsquery
from cgpro.mail.smtp.policy import SlidingWindow
from tests.mail.smtp.fakes import (
    FakeResolver,
    Session,
    makeContext,
    makeFactory,
    setMain,
    setModule,
)


class SlidingWindowTests(SynchronousTestCase):
    """
    Events per key and period.
    """

    def test_window(self):
        """The limit holds within the period and frees as it slides."""
        clock = Clock()
        window = SlidingWindow(clock, period=60)
        self.assertTrue(window.hit("a", 2))
        clock.advance(30)
        self.assertTrue(window.hit("a", 2))
        self.assertFalse(window.hit("a", 2))
        self.assertTrue(window.hit("b", 2))
        clock.advance(31)
        self.assertTrue(window.hit("a", 2))
        self.assertTrue(window.hit("x", 0))

    def test_bounded(self):
        """At most maxKeys addresses are remembered."""
        window = SlidingWindow(Clock(), maxKeys=10)
        for i in range(100):
            window.hit(str(i), 5)
        self.assertEqual(len(window._events), 10)


class DNSQueryTests(SynchronousTestCase):
    """
    The query helper.
    """

    def test_values(self):
        """Answers come back as plain values; NXDOMAIN is empty."""
        resolver = FakeResolver({("MX", "a.example"): [(5, "mx.a.example")],
                                 ("AAAA", "a.example"): ["2001:db8::1"]})
        clock = Clock()
        self.assertEqual(self.successResultOf(
            dnsquery.lookup(resolver, "MX", "a.example", 5, clock)), [(5, "mx.a.example")])
        self.assertEqual(self.successResultOf(
            dnsquery.lookup(resolver, "AAAA", "a.example", 5, clock)), ["2001:db8::1"])
        self.assertEqual(self.successResultOf(
            dnsquery.lookup(resolver, "A", "none.example", 5, clock)), [])

    def test_errors(self):
        """SERVFAIL and timeouts are DNSTemporaryError."""
        resolver = FakeResolver({("A", "fail.example"): error.DNSServerError("x"),
                                 ("A", "slow.example"): "hang"})
        clock = Clock()
        self.failureResultOf(dnsquery.lookup(resolver, "A", "fail.example", 5, clock),
                             dnsquery.DNSTemporaryError)
        d = dnsquery.lookup(resolver, "A", "slow.example", 5, clock)
        clock.advance(5)
        self.failureResultOf(d, dnsquery.DNSTemporaryError)

    def test_reverseName(self):
        """Blocklist names: reversed octets, or reversed nibbles for IPv6."""
        self.assertEqual(dnsquery.reverseName("192.0.2.5", "bl.example"),
                         "5.2.0.192.bl.example")
        self.assertEqual(dnsquery.reverseName("::ffff:192.0.2.5", "bl.example"),
                         "5.2.0.192.bl.example")
        self.assertEqual(dnsquery.reverseName("2001:db8::1", "bl.example"),
                         "1." + "0." * 23 + "8.b.d.0.1.0.0.2.bl.example")


RECORDS = {
    ("A", "5.113.0.203.bl.example"): ["127.0.0.2"],
    ("A", "5.113.0.203.errors.example"): ["127.255.255.254"],
    ("A", "5.113.0.203.slow.example"): "hang",
    ("MX", "example.com"): [(10, "mx.example.com")],
    ("A", "aonly.example"): ["192.0.2.1"],
    ("MX", "nullmx.example"): [(0, "")],
    ("MX", "broken.example"): error.DNSServerError("SERVFAIL"),
    ("TXT", "example.com"): ["v=spf1 ip4:203.0.113.0/24 -all"],
    ("TXT", "strict.example"): ["v=spf1 -all"],
    ("TXT", "tempspf.example"): error.DNSServerError("SERVFAIL"),
}


class SenderCheckTests(SynchronousTestCase):
    """
    The MAIL FROM checks through the session.
    """

    def setUp(self):
        self.context = makeContext(self)
        self.clock = self.context.reactor
        self.resolver = FakeResolver(RECORDS)
        self.factory = makeFactory(self.context, resolver=self.resolver)

    def mail(self, sender, settings):
        setModule(self, self.context, settings)
        session = Session(self.factory)
        session.ehlo()
        return session, session.cmd("MAIL FROM:<%s>" % (sender,))

    def test_offByDefault(self):
        """With the defaults no DNS query is made."""
        self.assertEqual(self.mail("a@nowhere.example", {})[1][0][:3], "250")
        self.assertEqual(self.resolver.queries, [])

    def test_dnsblListed(self):
        """A client listed in a DNSBL zone is refused with 554 5.7.1."""
        _, reply = self.mail("a@example.com", {"DNSBL": ["clean.example", "bl.example"]})
        self.assertEqual(reply, ["554 5.7.1 client address 203.0.113.5 is listed in bl.example"])

    def test_dnsblClean(self):
        """Not listed, or only an error code of the list: accepted."""
        _, reply = self.mail("a@example.com", {"DNSBL": ["clean.example", "errors.example"]})
        self.assertEqual(reply[0][:3], "250")

    def test_dnsblTimeout(self):
        """A blocklist that does not answer gives 451 after the DNS timeout."""
        session, reply = self.mail("a@example.com", {"DNSBL": ["slow.example"],
                                                     "DNSTimeout": "3s"})
        self.assertEqual(reply, [])
        self.clock.advance(3)
        self.assertEqual(session.read(),
                         ["451 4.4.3 DNS blocklist lookup failed, try again later"])

    def test_dnsblClientsExempt(self):
        """Client IPs are not checked."""
        setMain(self, self.context, {"ClientIPs": "203.0.113.5"})
        _, reply = self.mail("a@example.com", {"DNSBL": ["bl.example"]})
        self.assertEqual(reply[0][:3], "250")

    def test_returnPath(self):
        """CheckReturnPath: MX or A records pass; none is 553 5.1.8; null MX 550 5.7.27."""
        settings = {"CheckReturnPath": "YES"}
        self.assertEqual(self.mail("a@example.com", settings)[1][0][:3], "250")
        self.assertEqual(self.mail("a@aonly.example", settings)[1][0][:3], "250")
        self.assertEqual(self.mail("a@main.dom", settings)[1][0][:3], "250")
        self.assertEqual(self.mail("", settings)[1][0][:3], "250")
        self.assertEqual(self.mail("a@nowhere.example", settings)[1],
                         ["553 5.1.8 sender domain nowhere.example does not exist"])
        self.assertEqual(self.mail("a@nullmx.example", settings)[1],
                         ["550 5.7.27 sender domain nullmx.example accepts no mail (null MX)"])
        self.assertEqual(self.mail("a@broken.example", settings)[1],
                         ["451 4.1.8 cannot verify the sender domain now, try again later"])

    def test_spfHeader(self):
        """SPFCheck = YES adds Received-SPF above our Received field, and never refuses."""
        session, reply = self.mail("a@example.com", {"SPFCheck": "YES"})
        self.assertEqual(reply[0][:3], "250")
        session.cmd("RCPT TO:<user@main.dom>")
        session.cmd("DATA")
        session.send("x\r\n.\r\n")
        data = self.context.queue.committed[0].data
        self.assertTrue(data.startswith(b"Received-SPF: pass (main.dom: domain of a@example.com"
                                        b" designates 203.0.113.5 as permitted sender)"))
        self.assertIn(b"\r\nReceived: from client.example", data)
        self.assertEqual(self.mail("a@strict.example", {"SPFCheck": "YES"})[1][0][:3], "250")

    def test_spfReject(self):
        """SPFCheck = REJECT refuses fail with 550 5.7.23 and temperror with 451 4.7.24."""
        settings = {"SPFCheck": "REJECT"}
        self.assertEqual(self.mail("a@example.com", settings)[1][0][:3], "250")
        self.assertEqual(
            self.mail("a@strict.example", settings)[1],
            ["550 5.7.23 SPF check failed: strict.example does not permit 203.0.113.5 to send"
             " for a@strict.example"])
        self.assertEqual(self.mail("a@tempspf.example", settings)[1],
                         ["451 4.7.24 SPF check failed temporarily, try again later"])
        self.assertEqual(self.mail("a@nowhere.example", settings)[1][0][:3], "250")

    def test_pipelinedBehindDNS(self):
        """RCPTs pipelined behind a MAIL waiting for DNS are answered after it, in order."""
        setModule(self, self.context, {"DNSBL": ["later.example"]})
        answer = Deferred()
        self.resolver.records[("A", "5.113.0.203.later.example")] = answer
        session = Session(self.factory)
        session.ehlo()
        replies = session.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<user@main.dom>\r\n"
                               "DATA\r\n")
        self.assertEqual(replies, [])
        answer.callback(([], [], []))
        self.assertEqual([r[:3] for r in session.read()], ["250", "250", "354"])

    def test_pipelinedBehindRefusal(self):
        """After a refused MAIL, the pipelined RCPT and DATA get 503."""
        setModule(self, self.context, {"DNSBL": ["bl.example"]})
        session = Session(self.factory)
        session.ehlo()
        replies = session.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<user@main.dom>\r\n"
                               "DATA\r\n")
        self.assertEqual([r[:3] for r in replies], ["554", "503", "503"])
