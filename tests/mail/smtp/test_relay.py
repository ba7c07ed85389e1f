# -*- test-case-name: tests.mail.smtp.test_relay -*-
"""
Tests for L{cgpro.mail.smtp.mx} (MX then address lookups, on a fake
resolver and a L{Clock}) and L{cgpro.mail.smtp.relay} (the C{SMTP}
delivery channel): unit tests on a L{MemoryReactorClock} whose connection
attempts the test accepts, refuses or lets time out, joined to the SMTP
sink of C{tests.mail.smtp.test_client} in memory; and end-to-end tests
that relay to a real sink listening on 127.0.0.1.
"""

import os
import random
import shutil
import tempfile

from twisted.internet import defer, reactor
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.names import dns
from twisted.names.error import DNSNameError, DNSServerError
from twisted.python.failure import Failure
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from cgpro.core.envelope import DEFERRED, DELIVERED, FAILED, DeliveryJob, Envelope
from cgpro.core.interfaces import IDeliveryChannel
from cgpro.core.router import Route
from cgpro.core.tls import ServerTLS
from cgpro.mail.smtp.mx import Candidate, DNSFailure, MXResolver, parseDestination
from cgpro.mail.smtp.relay import DEFAULTS, SMTPRelayChannel, relaySettings
from tests.mail.smtp.test_client import SMALL, SinkFactory

HANG = object()


class FakeResolver:
    """
    Answers lookups from a dictionary zone.

    @ivar zone: name -> C{{"MX": [(preference, host)], "A": [...],
        "AAAA": [...], "ttl": seconds}}; a name not in it is NXDOMAIN.
    @ivar failures: C{(kind, name)} -> an exception to fail with, or
        L{HANG} for a query that never answers.
    @ivar queries: every C{(kind, name)} asked.
    """

    def __init__(self, zone=None):
        self.zone = zone or {}
        self.failures = {}
        self.queries = []

    def _query(self, kind, name):
        self.queries.append((kind, name))
        failure = self.failures.get((kind, name))
        if failure is HANG:
            return defer.Deferred()
        if failure is not None:
            return defer.fail(failure)
        if name not in self.zone:
            return defer.fail(DNSNameError(name))
        entry = self.zone[name]
        ttl = entry.get("ttl", 300)
        answers = []
        for value in entry.get(kind, []):
            if kind == "MX":
                payload, rtype = dns.Record_MX(value[0], value[1].encode(), ttl), dns.MX
            elif kind == "A":
                payload, rtype = dns.Record_A(value, ttl), dns.A
            else:
                payload, rtype = dns.Record_AAAA(value, ttl), dns.AAAA
            answers.append(dns.RRHeader(name.encode(), rtype, dns.IN, ttl, payload))
        return defer.succeed((answers, [], []))

    def lookupMailExchange(self, name, timeout=None):
        return self._query("MX", name)

    def lookupAddress(self, name, timeout=None):
        return self._query("A", name)

    def lookupIPV6Address(self, name, timeout=None):
        return self._query("AAAA", name)


class NoShuffle:
    """
    A C{random} stand-in that records what was shuffled and reverses it,
    so the order among equal preferences is predictable.
    """

    def __init__(self):
        self.shuffled = []

    def shuffle(self, items):
        self.shuffled.append(list(items))
        items.reverse()


class FakeTLS:
    """
    TLS options for L{iosim}'s pretend handshake, which succeeds or fails.
    """

    def __init__(self, ok):
        self.ok = ok

    def iosimVerify(self, other):
        return self.ok and other.ok


class FakeDirectory:
    """
    The two things the relay reads from the directory.
    """

    def __init__(self, smtp=None, mainDomain="main.dom"):
        self.mainDomain = mainDomain
        self.modules = {"SMTP": dict(smtp or {})}

    def getServerDict(self, name):
        assert name == "Modules"
        return dict(self.modules)


ZONE = {
    "remote.test": {"MX": [(10, "mx1.remote.test"), (20, "mx2.remote.test")]},
    "mx1.remote.test": {"A": ["192.0.2.1"]},
    "mx2.remote.test": {"A": ["192.0.2.2"], "AAAA": ["2001:db8::2"]},
    "other.test": {"MX": [(5, "mx.other.test")]},
    "mx.other.test": {"A": ["192.0.2.9"]},
}


def makeJob(testCase, queue="remote.test", recipients=("a@remote.test",), data=None,
            sender="s@main.dom", **envelope):
    """
    Write a queue file (envelope line, then the message) and make the job.
    """
    if data is None:
        data = b"Subject: test\r\n\r\nhello\r\n.dotted line\r\n"
    base = tempfile.mkdtemp()
    testCase.addCleanup(shutil.rmtree, base, True)
    path = os.path.join(base, "1.msg")
    env = Envelope(sender, **envelope)
    pairs = []
    for address in recipients:
        recipient = env.addRecipient(address)
        pairs.append((recipient, Route("SMTP", queue, address)))
    head = b"{envelope}\r\n"
    with open(path, "wb") as f:
        f.write(head + data)
    return DeliveryJob("1", env, queue, pairs, path, len(head), len(data))


# -- MX resolution -----------------------------------------------------------


class ParseDestinationTests(SynchronousTestCase):
    """
    The forms a relay destination takes.
    """

    def test_forms(self):
        """Domains, host:port, [host], IPv4/IPv6 literals with and without ports."""
        self.assertEqual(parseDestination("Remote.Test."), ("remote.test", 25, None, True))
        self.assertEqual(parseDestination("relay.test:2525"), ("relay.test", 2525, None, False))
        self.assertEqual(parseDestination("[relay.test]"), ("relay.test", 25, None, False))
        self.assertEqual(parseDestination("[relay.test]:26"), ("relay.test", 26, None, False))
        self.assertEqual(parseDestination("[192.0.2.1]"), ("192.0.2.1", 25, "192.0.2.1", False))
        self.assertEqual(parseDestination("[192.0.2.1]:2525", 26),
                         ("192.0.2.1", 2525, "192.0.2.1", False))
        self.assertEqual(parseDestination("192.0.2.1:2525"), ("192.0.2.1", 2525, "192.0.2.1", False))
        self.assertEqual(parseDestination("[IPv6:2001:DB8::1]"),
                         ("2001:db8::1", 25, "2001:db8::1", False))
        self.assertEqual(parseDestination("::1", 30), ("::1", 30, "::1", False))

    def test_bad(self):
        """Malformed destinations are refused."""
        for bad in ("", "[1.2.3.4", "[IPv6:nope]", "a..b", "host:port", "host:0", "[1.2.3.4]x",
                    "[IPv6:1.2.3.4]"):
            self.assertRaises(ValueError, parseDestination, bad)


class MXResolverTests(SynchronousTestCase):
    """
    MX, then A/AAAA, and what failures mean.
    """

    def setUp(self):
        self.clock = Clock()
        self.dns = FakeResolver(dict(ZONE))
        self.random = NoShuffle()
        self.resolver = MXResolver(self.dns, self.clock, timeout=10, random=self.random)

    def resolve(self, destination, port=25):
        return self.successResultOf(self.resolver.resolve(destination, port))

    def failed(self, destination):
        return self.failureResultOf(self.resolver.resolve(destination), DNSFailure).value

    def test_mxOrder(self):
        """MX hosts by preference, each with its IPv4 then IPv6 addresses."""
        candidates = self.resolve("remote.test", 2525)
        self.assertEqual(candidates, [("192.0.2.1", 2525), ("192.0.2.2", 2525),
                                      ("2001:db8::2", 2525)])
        self.assertEqual([c.host for c in candidates],
                         ["mx1.remote.test", "mx2.remote.test", "mx2.remote.test"])
        self.assertIsInstance(candidates[0], Candidate)

    def test_preferIPv6(self):
        """preferIPv6 puts a host's IPv6 addresses first."""
        self.resolver.preferIPv6 = True
        self.assertEqual(self.resolve("mx2.remote.test:25"), [("2001:db8::2", 25), ("192.0.2.2", 25)])

    def test_equalPreference(self):
        """Hosts of equal preference are shuffled among themselves only."""
        self.dns.zone["eq.test"] = {"MX": [(10, "mx1.remote.test"), (10, "mx.other.test"),
                                           (5, "mx2.remote.test")]}
        candidates = self.resolve("eq.test")
        self.assertEqual([c.host for c in candidates],
                         ["mx2.remote.test", "mx2.remote.test", "mx.other.test", "mx1.remote.test"])
        self.assertEqual(self.random.shuffled, [["mx2.remote.test"], ["mx1.remote.test", "mx.other.test"]])

    def test_randomised(self):
        """With a real random source, both orders of two equal MX hosts occur."""
        self.dns.zone["eq.test"] = {"MX": [(10, "mx1.remote.test"), (10, "mx.other.test")]}
        seen = set()
        for seed in range(20):
            resolver = MXResolver(self.dns, self.clock, random=random.Random(seed))
            candidates = self.successResultOf(resolver.resolve("eq.test"))
            seen.add(candidates[0].host)
        self.assertEqual(seen, {"mx1.remote.test", "mx.other.test"})

    def test_implicitMX(self):
        """A domain without MX records gets mail at its own addresses."""
        self.dns.zone["plain.test"] = {"A": ["192.0.2.50"]}
        candidates = self.resolve("plain.test")
        self.assertEqual(candidates, [("192.0.2.50", 25)])
        self.assertEqual(candidates[0].host, "plain.test")

    def test_noMXNoAddress(self):
        """No MX and no address is permanent."""
        self.dns.zone["empty.test"] = {}
        error = self.failed("empty.test")
        self.assertTrue(error.permanent)
        self.assertIn("5.4.4", error.text)

    def test_nullMX(self):
        """A null MX (RFC 7505) is a permanent 556 5.1.10."""
        self.dns.zone["null.test"] = {"MX": [(0, ".")], "A": ["192.0.2.3"]}
        error = self.failed("null.test")
        self.assertEqual(error.code, 556)
        self.assertTrue(error.text.startswith("5.1.10"))
        self.assertTrue(error.permanent)

    def test_nullMXAmongOthers(self):
        """A null MX next to real ones is ignored."""
        self.dns.zone["mixed.test"] = {"MX": [(0, ""), (10, "mx1.remote.test")]}
        self.assertEqual(self.resolve("mixed.test"), [("192.0.2.1", 25)])

    def test_nxdomain(self):
        """A domain that does not exist is a permanent 550 5.1.2."""
        error = self.failed("nowhere.test")
        self.assertEqual(error.code, 550)
        self.assertTrue(error.text.startswith("5.1.2"))

    def test_timeout(self):
        """A lookup that does not answer in time is temporary."""
        self.dns.failures[("MX", "remote.test")] = HANG
        d = self.resolver.resolve("remote.test")
        self.assertNoResult(d)
        self.clock.advance(10)
        error = self.failureResultOf(d, DNSFailure).value
        self.assertFalse(error.permanent)
        self.assertEqual(error.code, 451)
        self.assertIn("timed out", error.text)

    def test_servfail(self):
        """SERVFAIL is temporary."""
        self.dns.failures[("MX", "remote.test")] = DNSServerError("servfail")
        error = self.failed("remote.test")
        self.assertFalse(error.permanent)
        self.assertTrue(error.text.startswith("4.4.3"))

    def test_mxHostWithoutAddress(self):
        """An MX host without address is skipped."""
        self.dns.zone["remote.test"]["MX"].insert(0, (1, "ghost.remote.test"))
        self.assertEqual([c.host for c in self.resolve("remote.test")][0], "mx1.remote.test")

    def test_noMXHostHasAddress(self):
        """When no MX host has an address, that is permanent."""
        self.dns.zone["ghosts.test"] = {"MX": [(1, "ghost1.test"), (2, "ghost2.test")]}
        self.dns.zone["ghost2.test"] = {}
        error = self.failed("ghosts.test")
        self.assertTrue(error.permanent)
        self.assertIn("5.4.4", error.text)

    def test_mxHostTemporary(self):
        """An MX host whose lookup times out is skipped if another has an address..."""
        self.dns.failures[("A", "mx1.remote.test")] = DNSServerError()
        self.assertEqual(self.resolve("remote.test")[0], ("192.0.2.2", 25))

    def test_allMXHostsTemporary(self):
        """... and makes the failure temporary if none has."""
        self.dns.zone["one.test"] = {"MX": [(1, "mx1.remote.test")]}
        self.dns.failures[("A", "mx1.remote.test")] = DNSServerError()
        self.dns.failures[("AAAA", "mx1.remote.test")] = HANG
        d = self.resolver.resolve("one.test")
        self.clock.advance(10)
        error = self.failureResultOf(d, DNSFailure).value
        self.assertFalse(error.permanent)

    def test_aaaaFailureIgnored(self):
        """A failed AAAA lookup does not hide the A records."""
        self.dns.failures[("AAAA", "mx2.remote.test")] = DNSServerError()
        self.assertEqual(self.resolve("[mx2.remote.test]"), [("192.0.2.2", 25)])

    def test_literals(self):
        """Address literals and bare addresses need no lookup."""
        self.assertEqual(self.resolve("[192.0.2.7]"), [("192.0.2.7", 25)])
        self.assertEqual(self.resolve("[IPv6:2001:db8::7]:2525"), [("2001:db8::7", 2525)])
        self.assertEqual(self.resolve("127.0.0.1:2526"), [("127.0.0.1", 2526)])
        self.assertEqual(self.dns.queries, [])

    def test_hostPort(self):
        """host:port looks up the host's addresses only, not MX."""
        self.assertEqual(self.resolve("mx1.remote.test:2525"), [("192.0.2.1", 2525)])
        self.assertEqual(self.dns.queries, [("A", "mx1.remote.test"), ("AAAA", "mx1.remote.test")])

    def test_hostNotFound(self):
        """An explicit host that does not exist is permanent."""
        self.assertTrue(self.failed("[nohost.test]").permanent)

    def test_badDestination(self):
        """A malformed destination is permanent."""
        error = self.failed("a..b")
        self.assertEqual(error.code, 550)

    def test_cache(self):
        """Answers are cached for their TTL."""
        self.dns.zone["remote.test"]["ttl"] = 60
        self.resolve("remote.test")
        count = len(self.dns.queries)
        self.resolve("remote.test")
        self.assertEqual(len(self.dns.queries), count)
        self.clock.advance(61)
        self.resolve("remote.test")
        self.assertEqual(self.dns.queries[count:], [("MX", "remote.test")])

    def test_maxTTL(self):
        """A long TTL is capped."""
        self.dns.zone["remote.test"]["ttl"] = 10 ** 6
        self.resolver.maxTTL = 100
        self.resolve("remote.test")
        count = len(self.dns.queries)
        self.clock.advance(101)
        self.resolve("remote.test")
        self.assertEqual(self.dns.queries[count], ("MX", "remote.test"))

    def test_negativeCache(self):
        """NXDOMAIN is cached for the negative TTL."""
        self.resolver.negativeTTL = 30
        self.failed("nowhere.test")
        self.failed("nowhere.test")
        self.assertEqual(self.dns.queries, [("MX", "nowhere.test")])
        self.clock.advance(31)
        self.failed("nowhere.test")
        self.assertEqual(len(self.dns.queries), 2)

    def test_temporaryNotCached(self):
        """Temporary failures are asked again next time."""
        self.dns.failures[("MX", "remote.test")] = DNSServerError()
        self.failed("remote.test")
        del self.dns.failures[("MX", "remote.test")]
        self.assertEqual(len(self.resolve("remote.test")), 3)

    def test_cacheBounded(self):
        """The cache keeps at most maxEntries answers, dropping the least recently used."""
        self.resolver.maxEntries = 3
        self.resolve("mx1.remote.test:25")
        self.resolve("mx2.remote.test:25")
        self.assertEqual(len(self.resolver._cache), 3)
        self.assertNotIn(("A", "mx1.remote.test"), self.resolver._cache)

    def test_clearCache(self):
        """clearCache forgets everything."""
        self.resolve("remote.test")
        self.resolver.clearCache()
        self.assertEqual(len(self.resolver._cache), 0)

    def test_defaultResolver(self):
        """Without a resolver, twisted.names' is made on first use only."""
        resolver = MXResolver(clock=self.clock)
        self.assertIsNone(resolver._resolver)


# -- the channel, in memory ---------------------------------------------------


class Harness:
    """
    A relay on a L{MemoryReactorClock}; connection attempts wait until the
    test accepts (joining them in memory to a L{SinkFactory}), refuses or
    ignores them.
    """

    def __init__(self, testCase, settings=None, zone=None, sink=None, tlsOptions=None):
        self.reactor = MemoryReactorClock()
        self.dns = FakeResolver(dict(zone or ZONE))
        self.directory = FakeDirectory(settings)
        self.resolver = MXResolver(self.dns, self.reactor, random=NoShuffle())
        self.channel = SMTPRelayChannel(directory=self.directory, reactor=self.reactor,
                                        resolver=self.resolver, timeouts=SMALL,
                                        tlsOptions=tlsOptions)
        self.sink = sink or SinkFactory()
        self.pumps = []
        self.handled = 0

    def attempts(self):
        """
        @return: C{(host, port)} of every connection attempt so far.
        """
        return [(host, port) for host, port, _f, _t, _b in self.reactor.tcpClients]

    def _next(self):
        host, port, factory, _timeout, _bind = self.reactor.tcpClients[self.handled]
        self.handled += 1
        return host, port, factory

    def accept(self, sink=None):
        """
        Join the next connection attempt to the sink and run the exchange.
        """
        host, port, factory = self._next()
        client = factory.buildProtocol(IPv4Address("TCP", host, port))
        server = (sink or self.sink).buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        pump = iosim.connect(server, iosim.FakeTransport(server, isServer=True),
                             client, iosim.FakeTransport(client, isServer=False))
        self.pumps.append(pump)
        self.flush()
        return pump

    def refuse(self):
        """
        Fail the next connection attempt with "connection refused".
        """
        _host, _port, factory = self._next()
        factory.clientConnectionFailed(None, Failure(ConnectionRefusedError()))
        self.flush()

    def skip(self):
        """
        Leave the next attempt unanswered (for connect timeouts).
        """
        self._next()

    def flush(self):
        moved = True
        while moved:
            moved = False
            for pump in self.pumps:
                if pump.flush():
                    moved = True


class RelayTests(SynchronousTestCase):
    """
    One delivery: resolution, candidates, reply mapping.
    """

    def deliver(self, harness, job):
        return harness.channel.deliver(job)

    def test_interface(self):
        """The channel is an IDeliveryChannel named SMTP."""
        channel = SMTPRelayChannel(directory=FakeDirectory(), reactor=MemoryReactorClock(),
                                   resolver=FakeResolver())
        self.assertTrue(verifyObject(IDeliveryChannel, channel))
        self.assertEqual(channel.name, "SMTP")

    def test_context(self):
        """A server context supplies directory, reactor and TLS."""

        class Context:
            directory = FakeDirectory()
            reactor = MemoryReactorClock()
            tls = object()

        channel = SMTPRelayChannel(Context, resolver=FakeResolver())
        self.assertIs(channel.directory, Context.directory)
        self.assertIs(channel.reactor, Context.reactor)
        self.assertIs(channel.clock, Context.reactor)
        self.assertIs(channel.tls, Context.tls)

    def test_delivered(self):
        """Per-recipient results with the remote host and reply; Route addresses are used."""
        h = Harness(self)
        h.sink.reject["b@remote.test"] = b"550 5.1.1 no such user"
        job = makeJob(self, recipients=("a@remote.test", "b@remote.test", "c@remote.test"))
        job.recipients[2][1].address = "c+rewritten@remote.test"
        d = h.channel.deliver(job)
        self.assertEqual(h.attempts(), [("192.0.2.1", 25)])
        h.accept()
        results = self.successResultOf(d)
        self.assertEqual([(r.index, r.status, r.code) for r in results],
                         [(0, DELIVERED, 250), (1, FAILED, 550), (2, DELIVERED, 250)])
        self.assertEqual(results[1].text, "5.1.1 no such user")
        self.assertEqual(results[0].text, "2.0.0 queued as 1")
        self.assertEqual({r.remoteHost for r in results}, {"mx1.remote.test"})
        [received] = h.sink.messages
        self.assertEqual(received.sender, "s@main.dom")
        self.assertEqual(received.recipients, ["a@remote.test", "c+rewritten@remote.test"])
        self.assertEqual(received.data, b"Subject: test\r\n\r\nhello\r\n.dotted line\r\n")
        self.assertEqual(h.sink.commands[0], b"EHLO main.dom")

    def test_temporaryReply(self):
        """A 4xx reply defers the recipient."""
        h = Harness(self)
        h.sink.reject["a@remote.test"] = b"451 4.2.0 greylisted"
        d = h.channel.deliver(makeJob(self))
        h.accept()
        [result] = self.successResultOf(d)
        self.assertEqual((result.status, result.code, result.text), (DEFERRED, 451, "4.2.0 greylisted"))

    def test_noRecipients(self):
        """A job without recipients has nothing to do."""
        h = Harness(self)
        job = makeJob(self)
        job.recipients = []
        self.assertEqual(self.successResultOf(h.channel.deliver(job)), [])
        self.assertEqual(h.attempts(), [])

    def test_readMessage(self):
        """Without a queue file the message comes from job.readMessage()."""
        h = Harness(self)
        job = makeJob(self)
        job.path = None
        job.readMessage = lambda: b"Subject: mem\r\n\r\nx\r\n"
        d = h.channel.deliver(job)
        h.accept()
        self.assertEqual(self.successResultOf(d)[0].status, DELIVERED)
        self.assertEqual(h.sink.messages[0].data, b"Subject: mem\r\n\r\nx\r\n")

    def test_heldData(self):
        """Bytes the queue still holds (job.data) are sent without reading the file."""
        h = Harness(self)
        job = makeJob(self)
        job.data = b"Subject: held\r\n\r\nx\r\n"
        d = h.channel.deliver(job)
        h.accept()
        self.assertEqual(self.successResultOf(d)[0].status, DELIVERED)
        self.assertEqual(h.sink.messages[0].data, b"Subject: held\r\n\r\nx\r\n")

    def test_envelopeParameters(self):
        """The envelope's DSN and body parameters reach the wire."""
        h = Harness(self)
        h.sink.extensions.append("DSN")
        job = makeJob(self, ret="HDRS", envid="e1", bodyType="8BITMIME")
        job.recipients[0][0].notify = ("FAILURE",)
        d = h.channel.deliver(job)
        h.accept()
        self.successResultOf(d)
        received = h.sink.messages[0]
        self.assertEqual(received.mailParams, "SIZE=%d BODY=8BITMIME RET=HDRS ENVID=e1" % (job.size,))
        self.assertEqual(received.rcptParams, ["NOTIFY=FAILURE"])

    def test_failover(self):
        """A refused connection moves on to the next MX."""
        h = Harness(self)
        d = h.channel.deliver(makeJob(self))
        h.refuse()
        self.assertEqual(h.attempts(), [("192.0.2.1", 25), ("192.0.2.2", 25)])
        h.accept()
        [result] = self.successResultOf(d)
        self.assertEqual((result.status, result.remoteHost), (DELIVERED, "mx2.remote.test"))

    def test_connectTimeout(self):
        """A connection attempt that hangs for ConnectTimeout moves on."""
        h = Harness(self, {"ConnectTimeout": "20s"})
        d = h.channel.deliver(makeJob(self))
        h.skip()
        h.reactor.advance(19)
        self.assertEqual(len(h.attempts()), 1)
        h.reactor.advance(1)
        self.assertEqual(len(h.attempts()), 2)
        self.assertTrue(h.reactor.connectors[0].stoppedConnecting)
        self.assertEqual(h.reactor.tcpClients[0][3], 20)
        h.accept()
        self.assertEqual(self.successResultOf(d)[0].status, DELIVERED)

    def test_greetingRefusedNext(self):
        """A server refusing the session (554 greeting) moves on to the next candidate."""
        h = Harness(self)
        d = h.channel.deliver(makeJob(self))
        bad = SinkFactory()
        bad.protocol = type("Bad", (bad.protocol,), {
            "connectionMade": lambda self: (self.sendLine(b"554 5.7.1 go away"),
                                            self.transport.loseConnection()),
            "connectionLost": lambda self, reason: None,
        })
        h.accept(bad)
        h.accept()
        [result] = self.successResultOf(d)
        self.assertEqual(result.remoteHost, "mx2.remote.test")

    def test_allCandidatesFail(self):
        """No candidate answers: everyone is deferred with the last error; the slot is free."""
        h = Harness(self)
        d = h.channel.deliver(makeJob(self, recipients=("a@remote.test", "b@remote.test")))
        h.refuse()
        h.refuse()
        h.refuse()
        results = self.successResultOf(d)
        self.assertEqual([(r.status, r.code) for r in results], [(DEFERRED, 451)] * 2)
        self.assertIn("connection refused", results[0].text)
        self.assertIn("2001:db8::2", results[0].text)
        self.assertTrue(results[0].text.startswith("4.4.1"))
        self.assertEqual(dict(h.channel._open), {})

    def test_ipv6Candidate(self):
        """An IPv6 candidate is connected to over IPv6."""
        h = Harness(self)
        d = h.channel.deliver(makeJob(self, queue="[IPv6:2001:db8::5]"))
        self.assertEqual(h.attempts(), [("2001:db8::5", 25)])
        h.accept()
        self.assertEqual(self.successResultOf(d)[0].status, DELIVERED)

    def test_nullMX(self):
        """A null MX fails everyone permanently without connecting."""
        h = Harness(self)
        h.dns.zone["null.test"] = {"MX": [(0, ".")]}
        results = self.successResultOf(h.channel.deliver(
            makeJob(self, queue="null.test", recipients=("a@null.test", "b@null.test"))))
        self.assertEqual([(r.status, r.code) for r in results], [(FAILED, 556)] * 2)
        self.assertIsNone(results[0].remoteHost)
        self.assertEqual(h.attempts(), [])
        self.assertEqual(dict(h.channel._open), {})

    def test_nxdomain(self):
        """A domain that does not exist fails permanently."""
        h = Harness(self)
        [result] = self.successResultOf(h.channel.deliver(makeJob(self, queue="nowhere.test")))
        self.assertEqual((result.status, result.code), (FAILED, 550))
        self.assertIn("5.1.2", result.text)

    def test_dnsTimeout(self):
        """A DNS timeout defers."""
        h = Harness(self)
        h.dns.failures[("MX", "remote.test")] = HANG
        d = h.channel.deliver(makeJob(self))
        h.reactor.advance(h.resolver.timeout)
        [result] = self.successResultOf(d)
        self.assertEqual((result.status, result.code), (DEFERRED, 451))

    def test_literal(self):
        """An [ip] queue is connected to directly, on RelayPort."""
        h = Harness(self, {"RelayPort": "2525"})
        d = h.channel.deliver(makeJob(self, queue="[192.0.2.77]"))
        self.assertEqual(h.attempts(), [("192.0.2.77", 2525)])
        self.assertEqual(h.dns.queries, [])
        h.accept()
        self.assertEqual(self.successResultOf(d)[0].status, DELIVERED)

    def test_smartHost(self):
        """SmartHost takes all mail, whatever the destination."""
        h = Harness(self, {"SmartHost": "[192.0.2.100]:587"})
        d = h.channel.deliver(makeJob(self, queue="remote.test"))
        self.assertEqual(h.attempts(), [("192.0.2.100", 587)])
        h.accept()
        self.assertEqual(self.successResultOf(d)[0].status, DELIVERED)
        d = h.channel.deliver(makeJob(self, queue="other.test", recipients=("x@other.test",)))
        self.assertEqual(len(h.attempts()), 1)
        h.flush()
        self.assertEqual(self.successResultOf(d)[0].status, DELIVERED)
        self.assertEqual(h.sink.connections, 1)

    def test_smartHostName(self):
        """A SmartHost name with a port is looked up as a host (no MX)."""
        h = Harness(self, {"SmartHost": "mx1.remote.test:2525"})
        h.channel.deliver(makeJob(self, queue="other.test"))
        self.assertEqual(h.attempts(), [("192.0.2.1", 2525)])
        self.assertNotIn(("MX", "other.test"), h.dns.queries)

    def test_heloName(self):
        """HeloName overrides the Main Domain in EHLO."""
        h = Harness(self, {"HeloName": "mail.example"})
        d = h.channel.deliver(makeJob(self))
        h.accept()
        self.successResultOf(d)
        self.assertEqual(h.sink.commands[0], b"EHLO mail.example")

    def test_requireTLS(self):
        """UseSTARTTLS REQUIRE defers when no server offers STARTTLS."""
        h = Harness(self, {"UseSTARTTLS": "REQUIRE"}, zone={"[x]": {}})
        d = h.channel.deliver(makeJob(self, queue="[192.0.2.5]"))
        h.accept()
        [result] = self.successResultOf(d)
        self.assertEqual(result.status, DEFERRED)
        self.assertIn("4.7.10", result.text)
        self.assertEqual(h.sink.messages, [])

    def test_tlsUsed(self):
        """STARTTLS offered is used (iosim's pretend TLS)."""
        h = Harness(self, tlsOptions=FakeTLS(True))
        h.sink.tlsOptions = FakeTLS(True)
        d = h.channel.deliver(makeJob(self, queue="[192.0.2.5]"))
        h.accept()
        self.assertEqual(self.successResultOf(d)[0].status, DELIVERED)
        self.assertTrue(h.sink.messages[0].secure)
        self.assertEqual([c.split()[0] for c in h.sink.commands[:3]], [b"EHLO", b"STARTTLS", b"EHLO"])

    def test_tlsFallback(self):
        """A failed TLS handshake is retried on the same server in plain text."""
        h = Harness(self, tlsOptions=FakeTLS(False))
        h.sink.tlsOptions = FakeTLS(False)
        d = h.channel.deliver(makeJob(self, queue="[192.0.2.5]"))
        h.accept()
        self.assertEqual(h.attempts(), [("192.0.2.5", 25), ("192.0.2.5", 25)])
        h.accept()
        [result] = self.successResultOf(d)
        self.assertEqual(result.status, DELIVERED)
        self.assertFalse(h.sink.messages[0].secure)
        self.assertEqual(h.sink.commands.count(b"STARTTLS"), 1)

    def test_tlsFailedRequired(self):
        """With TLS required, a failed handshake is not retried in plain text."""
        h = Harness(self, {"UseSTARTTLS": "REQUIRE"}, tlsOptions=FakeTLS(False))
        h.sink.tlsOptions = FakeTLS(False)
        d = h.channel.deliver(makeJob(self, queue="[192.0.2.5]"))
        h.accept()
        [result] = self.successResultOf(d)
        self.assertEqual(result.status, DEFERRED)
        self.assertIn("TLS", result.text)
        self.assertEqual(len(h.attempts()), 1)

    def test_maxRecipients(self):
        """More than MaxRecipientsPerMessage recipients go in several transactions."""
        h = Harness(self, {"MaxRecipientsPerMessage": "2"})
        d = h.channel.deliver(makeJob(self, recipients=["r%d@remote.test" % i for i in range(5)]))
        h.accept()
        results = self.successResultOf(d)
        self.assertEqual([r.status for r in results], [DELIVERED] * 5)
        self.assertEqual([m.recipients for m in h.sink.messages],
                         [["r0@remote.test", "r1@remote.test"], ["r2@remote.test", "r3@remote.test"],
                          ["r4@remote.test"]])
        self.assertEqual(h.sink.connections, 1)

    def test_tooManyRecipients(self):
        """Recipients refused with 452 go again in the next transaction."""
        h = Harness(self)
        h.sink.maxRecipients = 2
        d = h.channel.deliver(makeJob(self, recipients=["r%d@remote.test" % i for i in range(3)]))
        h.accept()
        results = self.successResultOf(d)
        self.assertEqual([r.status for r in results], [DELIVERED] * 3)
        self.assertEqual(len(h.sink.messages), 2)

    def test_all452(self):
        """452 for everyone makes no progress: deferred, not looped."""
        h = Harness(self)
        h.sink.maxRecipients = 0
        d = h.channel.deliver(makeJob(self))
        h.accept()
        [result] = self.successResultOf(d)
        self.assertEqual((result.status, result.code), (DEFERRED, 452))

    def test_lostMidway(self):
        """A connection lost in the middle defers the recipients without a final reply."""
        h = Harness(self)
        h.sink.overrides[b"DATA"] = lambda proto: proto.transport.loseConnection()
        d = h.channel.deliver(makeJob(self, recipients=("a@remote.test", "b@remote.test")))
        h.sink.reject["a@remote.test"] = b"550 5.1.1 no"
        h.accept()
        results = self.successResultOf(d)
        self.assertEqual([(r.status, r.code) for r in results], [(FAILED, 550), (DEFERRED, 421)])
        self.assertEqual(h.channel.idleConnections(), 0)
        self.assertEqual(dict(h.channel._open), {})

    def test_crash(self):
        """An unexpected error defers everyone instead of failing the Deferred."""
        h = Harness(self)
        h.channel._message = lambda job, recipients: 1 / 0
        [result] = self.successResultOf(h.channel.deliver(makeJob(self)))
        self.assertEqual(result.status, DEFERRED)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)


class PoolTests(SynchronousTestCase):
    """
    Connection reuse, idle timeouts and the per-destination limit.
    """

    def test_reuse(self):
        """Two jobs to one domain use one connection, RSET between them, no second lookup."""
        h = Harness(self)
        first = h.channel.deliver(makeJob(self, data=b"Subject: one\r\n\r\n1\r\n"))
        h.accept()
        self.assertEqual(self.successResultOf(first)[0].status, DELIVERED)
        self.assertEqual(h.channel.idleConnections(("remote.test", 25)), 1)
        queries = len(h.dns.queries)
        second = h.channel.deliver(makeJob(self, data=b"Subject: two\r\n\r\n2\r\n"))
        h.flush()
        self.assertEqual(self.successResultOf(second)[0].status, DELIVERED)
        self.assertEqual(len(h.dns.queries), queries)
        self.assertEqual(len(h.attempts()), 1)
        self.assertEqual(h.sink.connections, 1)
        self.assertEqual([m.data for m in h.sink.messages],
                         [b"Subject: one\r\n\r\n1\r\n", b"Subject: two\r\n\r\n2\r\n"])
        verbs = [c.split()[0] for c in h.sink.commands]
        self.assertEqual(verbs, [b"EHLO", b"MAIL", b"RCPT", b"DATA", b"RSET", b"MAIL", b"RCPT", b"DATA"])

    def test_idleTimeout(self):
        """An idle connection is closed with QUIT after IdleTimeout."""
        h = Harness(self, {"IdleTimeout": "10s"})
        d = h.channel.deliver(makeJob(self))
        pump = h.accept()
        self.successResultOf(d)
        h.reactor.advance(9)
        self.assertEqual(h.channel.idleConnections(), 1)
        h.reactor.advance(1)
        h.flush()
        self.assertEqual(h.sink.commands[-1], b"QUIT")
        self.assertEqual(h.channel.idleConnections(), 0)
        self.assertEqual(dict(h.channel._open), {})
        self.assertTrue(pump.clientIO.disconnected)
        h.channel.deliver(makeJob(self))
        self.assertEqual(len(h.attempts()), 2)

    def test_noIdle(self):
        """IdleTimeout 0 keeps nothing."""
        h = Harness(self, {"IdleTimeout": "0"})
        d = h.channel.deliver(makeJob(self))
        h.accept()
        self.successResultOf(d)
        self.assertEqual(h.channel.idleConnections(), 0)
        self.assertEqual(h.sink.commands[-1], b"QUIT")

    def test_closedByServer(self):
        """An idle connection the server closes is dropped and its slot freed."""
        h = Harness(self)
        d = h.channel.deliver(makeJob(self))
        pump = h.accept()
        self.successResultOf(d)
        pump.serverIO.loseConnection()
        h.flush()
        self.assertEqual(h.channel.idleConnections(), 0)
        self.assertEqual(dict(h.channel._open), {})

    def test_staleReuse(self):
        """A cached connection that fails RSET is replaced by a new one."""
        h = Harness(self)
        d = h.channel.deliver(makeJob(self))
        h.accept()
        self.successResultOf(d)
        h.sink.overrides[b"RSET"] = b"421 4.3.2 going away"
        second = h.channel.deliver(makeJob(self))
        h.flush()
        self.assertEqual(len(h.attempts()), 2)
        del h.sink.overrides[b"RSET"]
        h.accept()
        self.assertEqual(self.successResultOf(second)[0].status, DELIVERED)
        self.assertEqual(h.sink.connections, 2)
        self.assertEqual(h.channel._open[("remote.test", 25)], 1)

    def test_concurrencyLimit(self):
        """At most MaxConnectionsPerDomain connections; a waiting job gets the next free one."""
        h = Harness(self, {"MaxConnectionsPerDomain": "1"})
        first = h.channel.deliver(makeJob(self))
        second = h.channel.deliver(makeJob(self))
        self.assertEqual(len(h.attempts()), 1)
        h.accept()
        self.assertEqual(self.successResultOf(first)[0].status, DELIVERED)
        self.assertEqual(self.successResultOf(second)[0].status, DELIVERED)
        self.assertEqual(len(h.attempts()), 1)
        self.assertEqual(len(h.sink.messages), 2)

    def test_waiterGetsSlot(self):
        """When the busy connection fails, a waiting job opens its own."""
        h = Harness(self, {"MaxConnectionsPerDomain": "1"})
        first = h.channel.deliver(makeJob(self))
        second = h.channel.deliver(makeJob(self))
        h.refuse()
        h.refuse()
        h.refuse()
        self.assertEqual(self.successResultOf(first)[0].status, DEFERRED)
        self.assertEqual(len(h.attempts()), 4)
        h.accept()
        self.assertEqual(self.successResultOf(second)[0].status, DELIVERED)

    def test_parallel(self):
        """Under the limit, jobs to one domain get connections of their own."""
        h = Harness(self, {"MaxConnectionsPerDomain": "2"})
        h.channel.deliver(makeJob(self))
        h.channel.deliver(makeJob(self))
        h.channel.deliver(makeJob(self))
        self.assertEqual(len(h.attempts()), 2)

    def test_maxMessagesPerConnection(self):
        """A connection that carried MaxMessagesPerConnection messages is closed."""
        h = Harness(self, {"MaxMessagesPerConnection": "1"})
        d = h.channel.deliver(makeJob(self))
        h.accept()
        self.successResultOf(d)
        self.assertEqual(h.channel.idleConnections(), 0)
        self.assertEqual(h.sink.commands[-1], b"QUIT")

    def test_maxIdle(self):
        """At most MaxIdleConnections are kept in all; the oldest goes first."""
        h = Harness(self, {"MaxIdleConnections": "1"})
        d = h.channel.deliver(makeJob(self))
        h.accept()
        self.successResultOf(d)
        d = h.channel.deliver(makeJob(self, queue="other.test"))
        h.accept()
        self.successResultOf(d)
        self.assertEqual(h.channel.idleConnections(), 1)
        self.assertEqual(h.channel.idleConnections(("other.test", 25)), 1)

    def test_close(self):
        """close() says QUIT on idle connections and keeps none afterwards."""
        h = Harness(self)
        d = h.channel.deliver(makeJob(self))
        h.accept()
        self.successResultOf(d)
        closed = h.channel.close()
        h.flush()
        self.successResultOf(closed)
        self.assertEqual(h.sink.commands[-1], b"QUIT")
        d = h.channel.deliver(makeJob(self))
        h.accept()
        self.successResultOf(d)
        self.assertEqual(h.channel.idleConnections(), 0)


class SettingsTests(SynchronousTestCase):
    """
    The SMTP module settings.
    """

    def test_defaults(self):
        """Without stored settings the built-in defaults apply; HELO is the Main Domain."""
        settings = relaySettings(FakeDirectory())
        self.assertEqual(settings, {
            "RelayPort": 25, "SmartHost": "", "UseSTARTTLS": "YES", "HeloName": "main.dom",
            "MaxConnectionsPerDomain": 5, "MaxIdleConnections": 100,
            "MaxMessagesPerConnection": 100, "MaxRecipientsPerMessage": 100,
            "ConnectTimeout": 30, "IdleTimeout": 30,
        })
        self.assertEqual(set(DEFAULTS), set(settings))
        self.assertEqual(relaySettings(None)["HeloName"], "localhost")

    def test_stored(self):
        """Stored values override, with units and lenient spellings; junk falls back."""
        settings = relaySettings(FakeDirectory({
            "RelayPort": 2525, "UseSTARTTLS": "Required", "ConnectTimeout": "2m",
            "IdleTimeout": "junk", "MaxConnectionsPerDomain": "0", "Other": "x",
        }))
        self.assertEqual(settings["RelayPort"], 2525)
        self.assertEqual(settings["UseSTARTTLS"], "REQUIRE")
        self.assertEqual(settings["ConnectTimeout"], 120)
        self.assertEqual(settings["IdleTimeout"], 30)
        self.assertEqual(settings["MaxConnectionsPerDomain"], 1)
        self.assertEqual(relaySettings(FakeDirectory({"UseSTARTTLS": "no"}))["UseSTARTTLS"], "NO")

    def test_liveChange(self):
        """A changed setting applies to the next delivery without a restart."""
        h = Harness(self)
        h.channel.deliver(makeJob(self, queue="[192.0.2.1]"))
        h.directory.modules["SMTP"]["RelayPort"] = "26"
        h.channel.deliver(makeJob(self, queue="[192.0.2.1]"))
        self.assertEqual(h.attempts(), [("192.0.2.1", 25), ("192.0.2.1", 26)])


# -- the channel, for real -----------------------------------------------------


class LoopbackRelayTests(TestCase):
    """
    Relay to a real SMTP sink on 127.0.0.1 (RelayPort pointing at it).
    """

    def startSink(self, tls=False):
        options = None
        if tls:
            base = tempfile.mkdtemp()
            self.addCleanup(shutil.rmtree, base, True)
            options = ServerTLS(base, "localhost").options
        sink = SinkFactory(tlsOptions=options)
        port = reactor.listenTCP(0, sink, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return sink, port.getHost().port

    def makeChannel(self, settings):
        dns = FakeResolver({
            "remote.test": {"MX": [(10, "mx.remote.test")]},
            "mx.remote.test": {"A": ["127.0.0.1"]},
        })
        channel = SMTPRelayChannel(directory=FakeDirectory(settings), reactor=reactor, resolver=dns)
        return channel

    @defer.inlineCallbacks
    def test_twoMessages(self):
        """Two messages relayed through MX lookup arrive intact over one connection."""
        sink, port = self.startSink()
        channel = self.makeChannel({"RelayPort": str(port)})
        first = yield channel.deliver(makeJob(
            self, recipients=("a@remote.test", "b@remote.test"),
            data=b"Subject: first\r\n\r\n.leading dot\r\nline\r\n"))
        second = yield channel.deliver(makeJob(self, data=b"Subject: second\r\n\r\nbye\r\n"))
        self.assertEqual([r.status for r in first + second], [DELIVERED] * 3)
        self.assertEqual(first[0].remoteHost, "mx.remote.test")
        yield channel.close()
        yield sink.allClosed()
        self.assertEqual(sink.connections, 1)
        self.assertEqual([(m.recipients, m.data) for m in sink.messages], [
            (["a@remote.test", "b@remote.test"], b"Subject: first\r\n\r\n.leading dot\r\nline\r\n"),
            (["a@remote.test"], b"Subject: second\r\n\r\nbye\r\n"),
        ])

    @defer.inlineCallbacks
    def test_startTLS(self):
        """STARTTLS is used when the remote server offers it."""
        sink, port = self.startSink(tls=True)
        channel = self.makeChannel({"RelayPort": str(port), "UseSTARTTLS": "REQUIRE"})
        [result] = yield channel.deliver(makeJob(self, queue="[127.0.0.1]"))
        self.assertEqual(result.status, DELIVERED)
        yield channel.close()
        yield sink.allClosed()
        self.assertTrue(sink.messages[0].secure)

    @defer.inlineCallbacks
    def test_refused(self):
        """Nobody listening: the recipients are deferred."""
        sink, port = self.startSink()
        listening = reactor.listenTCP(0, sink, interface="127.0.0.1")
        closedPort = listening.getHost().port
        yield listening.stopListening()
        channel = self.makeChannel({"RelayPort": str(closedPort)})
        [result] = yield channel.deliver(makeJob(self))
        self.assertEqual(result.status, DEFERRED)
        self.assertIn("connection refused", result.text)
