# -*- test-case-name: tests.mail.smtp.test_spf -*-
"""
Tests for L{cgpro.mail.smtp.spf}: RFC 7208 evaluation over a fake resolver,
and the Received-SPF field.
"""

from twisted.internet.task import Clock
from twisted.names import error
from twisted.trial.unittest import SynchronousTestCase

from cgpro.mail.smtp import spf
from tests.mail.smtp.fakes import FakeResolver

RECORDS = {
    ("TXT", "pass.example"): ["v=spf1 ip4:192.0.2.0/24 -all"],
    ("TXT", "soft.example"): ["v=spf1 ~all"],
    ("TXT", "neutral.example"): ["v=spf1 ?all"],
    ("TXT", "nomatch.example"): ["v=spf1 ip4:10.0.0.1"],
    ("TXT", "other.example"): ["some other text", "v=spf1 a mx -all"],
    ("A", "other.example"): ["198.51.100.7"],
    ("MX", "other.example"): [(10, "mx.other.example")],
    ("A", "mx.other.example"): ["198.51.100.25"],
    ("TXT", "inc.example"): ["v=spf1 include:pass.example -all"],
    ("TXT", "incnone.example"): ["v=spf1 include:nothing.example -all"],
    ("TXT", "redir.example"): ["v=spf1 redirect=pass.example"],
    ("TXT", "redirnone.example"): ["v=spf1 redirect=nothing.example"],
    ("TXT", "two.example"): ["v=spf1 -all", "v=spf1 +all"],
    ("TXT", "bad.example"): ["v=spf1 foo:bar -all"],
    ("TXT", "cidr.example"): ["v=spf1 a:net.example/28 -all"],
    ("A", "net.example"): ["203.0.113.1"],
    ("TXT", "ip6.example"): ["v=spf1 ip6:2001:db8::/32 -all"],
    ("TXT", "macro.example"): ["v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all"],
    ("A", "5.2.0.192.jo._spf.macro.example"): ["127.0.0.2"],
    ("TXT", "loop.example"): ["v=spf1 include:loop.example -all"],
    ("TXT", "voids.example"): ["v=spf1 a:v1.example a:v2.example a:v3.example -all"],
    ("TXT", "temp.example"): error.DNSServerError("SERVFAIL"),
    ("TXT", "slow.example"): "hang",
    ("TXT", "ptr.example"): ["v=spf1 ptr -all"],
    ("PTR", "5.2.0.192.in-addr.arpa"): ["host.ptr.example"],
    ("A", "host.ptr.example"): ["192.0.2.5"],
    ("TXT", "upper.example"): ["V=SPF1 -ALL"],
}


class SPFTests(SynchronousTestCase):
    """
    C{check_host()} results.
    """

    def setUp(self):
        self.clock = Clock()
        self.resolver = FakeResolver(RECORDS)
        self.checker = spf.SPFChecker(self.resolver, self.clock, timeout=5,
                                      receiver="main.dom")

    def check(self, sender, ip="192.0.2.5", helo="client.example"):
        return self.successResultOf(self.checker.check(ip, sender, helo))

    def assertResult(self, sender, expected, ip="192.0.2.5"):
        result = self.check(sender, ip)
        self.assertEqual(result.result, expected, (sender, ip, result))
        return result

    def test_basic(self):
        """ip4 match passes; -all, ~all and ?all give fail, softfail, neutral."""
        self.assertResult("x@pass.example", spf.PASS)
        self.assertResult("x@pass.example", spf.FAIL, ip="198.51.100.1")
        self.assertResult("x@soft.example", spf.SOFTFAIL)
        self.assertResult("x@neutral.example", spf.NEUTRAL)
        self.assertResult("x@nomatch.example", spf.NEUTRAL)

    def test_none(self):
        """No record, or no such domain: none."""
        self.assertResult("x@nothing.example", spf.NONE)
        self.assertResult("x@localhost", spf.NONE)

    def test_caseInsensitive(self):
        """The version tag and mechanisms are case-insensitive."""
        self.assertResult("x@upper.example", spf.FAIL)

    def test_aAndMx(self):
        """a and mx match the domain's addresses and its exchangers'."""
        self.assertResult("x@other.example", spf.PASS, ip="198.51.100.7")
        self.assertResult("x@other.example", spf.PASS, ip="198.51.100.25")
        self.assertResult("x@other.example", spf.FAIL, ip="198.51.100.26")

    def test_cidr(self):
        """a:domain/28 matches the network."""
        self.assertResult("x@cidr.example", spf.PASS, ip="203.0.113.14")
        self.assertResult("x@cidr.example", spf.FAIL, ip="203.0.113.17")

    def test_ip6(self):
        """ip6 networks match IPv6 clients only."""
        self.assertResult("x@ip6.example", spf.PASS, ip="2001:db8::1")
        self.assertResult("x@ip6.example", spf.FAIL, ip="2001:db9::1")
        self.assertResult("x@ip6.example", spf.FAIL, ip="192.0.2.5")

    def test_include(self):
        """include passes when the included policy passes; none there is permerror."""
        self.assertResult("x@inc.example", spf.PASS)
        self.assertResult("x@inc.example", spf.FAIL, ip="198.51.100.1")
        self.assertResult("x@incnone.example", spf.PERMERROR)

    def test_redirect(self):
        """redirect= hands over to another domain's policy."""
        result = self.assertResult("x@redir.example", spf.PASS)
        self.assertEqual(result.domain, "pass.example")
        self.assertResult("x@redirnone.example", spf.PERMERROR)

    def test_permErrors(self):
        """Two records, unknown mechanisms and include loops are permerror."""
        self.assertResult("x@two.example", spf.PERMERROR)
        self.assertResult("x@bad.example", spf.PERMERROR)
        self.assertResult("x@loop.example", spf.PERMERROR)

    def test_voidLookups(self):
        """More than two void lookups are permerror."""
        self.assertResult("x@voids.example", spf.PERMERROR)

    def test_macros(self):
        """%{ir}, %{l1r+-} and %{d} expand as RFC 7208 section 7 says."""
        self.assertResult("jo@macro.example", spf.PASS)
        self.assertIn(("A", "5.2.0.192.jo._spf.macro.example"), self.resolver.queries)
        self.assertResult("bob@macro.example", spf.FAIL)

    def test_ptr(self):
        """ptr matches a validated reverse name in the domain."""
        self.assertResult("x@ptr.example", spf.PASS)
        self.assertResult("x@ptr.example", spf.FAIL, ip="192.0.2.6")

    def test_nullSender(self):
        """The null sender is checked as postmaster@helo."""
        result = self.successResultOf(self.checker.check("192.0.2.5", "", "pass.example"))
        self.assertEqual(result.result, spf.PASS)

    def test_tempError(self):
        """A failing DNS server is temperror."""
        self.assertResult("x@temp.example", spf.TEMPERROR)

    def test_timeout(self):
        """A query with no answer is temperror after the timeout."""
        d = self.checker.check("192.0.2.5", "x@slow.example", "h")
        self.assertNoResult(d)
        self.clock.advance(5)
        self.assertEqual(self.successResultOf(d).result, spf.TEMPERROR)

    def test_header(self):
        """Received-SPF carries the result, a comment and the key-value pairs."""
        result = self.check("x@pass.example")
        header = spf.receivedSPF(result, "192.0.2.5", "x@pass.example", "client.example",
                                 "main.dom")
        self.assertEqual(header, b"Received-SPF: pass (main.dom: domain of x@pass.example "
                                 b"designates 192.0.2.5 as permitted sender) client-ip=192.0.2.5;"
                                 b" envelope-from=x@pass.example; helo=client.example;\r\n")

    def test_headerQuotes(self):
        """Odd envelope values are quoted in Received-SPF."""
        result = spf.SPFResult(spf.PERMERROR, "d", "two records")
        header = spf.receivedSPF(result, "192.0.2.5", "", "bad helo", "main.dom").decode()
        self.assertIn('envelope-from=""; helo="bad helo";', header)
        self.assertTrue(header.startswith("Received-SPF: permerror (main.dom: error in "))
