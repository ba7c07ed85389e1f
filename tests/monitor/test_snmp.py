"""
Tests for L{cgpro.monitor.snmp}, its BER codec L{cgpro.monitor._ber}, its
USM cryptography L{cgpro.monitor._usm} and the MIB layout
L{cgpro.monitor.mib}: requests are built here as a manager would, fed to
the agent directly or through a fake datagram transport, with a
L{Clock} for time.
"""

import os

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import Clock
from twisted.internet.testing import FakeDatagramTransport
from twisted.python.reflect import namedAny
from twisted.trial.unittest import SynchronousTestCase

from cgpro.core.ports import PROTOCOLS
from cgpro.core.stats import CATALOG, Catalog
from cgpro.monitor import _ber as ber
from cgpro.monitor import _usm as usm
from cgpro.monitor import mib
from cgpro.monitor.snmp import (
    COUNTERS,
    NOT_WRITABLE,
    SYSTEM,
    TOO_BIG,
    SNMPAgent,
    build,
    figureEntries,
)

CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOCAL = ("127.0.0.1", 40000)
SYS_NAME = SYSTEM + (5, 0)
NULL = (ber.NULL, None)


class FakeDirectory:
    """
    The directory as the agent sees it: the Main Domain, the C{Modules}
    server dictionary and its generation.
    """

    def __init__(self, snmp=None):
        self.mainDomain = "main.dom"
        self.serverGeneration = 0
        self.snmp = dict(snmp or {})

    def getServerDict(self, name):
        return {"SNMP": self.snmp} if name == "Modules" else {}

    def update(self, **changes):
        self.snmp.update(changes)
        self.serverGeneration += 1


class FakeContext:
    """
    A server context with a fresh catalog and a L{Clock} as the reactor.
    """

    def __init__(self, snmp=None):
        self.reactor = Clock()
        self.directory = FakeDirectory(snmp)
        self.stats = Catalog()
        self.startTime = 0
        self.base = "/srv/cgpro"
        self.version = "0.1.0"


def v2cRequest(tag, oids, community=b"public", requestID=7, a=0, b=0, values=None):
    """
    @return: an SNMPv2c request datagram.
    """
    values = values or [NULL] * len(oids)
    varBinds = [ber.encodeVarBind(oid, value) for oid, value in zip(oids, values)]
    return ber.tlv(ber.SEQUENCE, ber.encodeInteger(1) + ber.tlv(ber.OCTET_STRING, community)
                   + ber.encodePDU(tag, requestID, a, b, varBinds))


def parseV2c(data):
    """
    @return: C{(community, (tag, requestID, status, index, varBinds))}.
    """
    outer = ber.Reader(data)
    message = outer.sequence()
    outer.finish()
    assert message.integer() == 1
    community = message.octets()
    return community, ber.decodePDU(message)


class AgentMixin:
    """
    An agent on a fake context, and a helper to ask it.
    """

    snmp = None

    def setUp(self):
        self.context = FakeContext(self.snmp)
        self.clock = self.context.reactor
        self.agent = SNMPAgent(self.context)

    def ask(self, tag, oids, **kwargs):
        """
        @return: the decoded response PDU to a v2c request.
        """
        address = kwargs.pop("address", LOCAL)
        reply = self.agent.respond(v2cRequest(tag, oids, **kwargs), address)
        self.assertIsNotNone(reply)
        return parseV2c(reply)[1]

    def walk(self, start=(1, 3)):
        """
        @return: every C{(oid, value)} from C{start} by GETNEXT.
        """
        out = []
        oid = start
        while True:
            _, _, status, _, varBinds = self.ask(ber.GETNEXT, [oid])
            self.assertEqual(status, 0)
            oid, value = varBinds[0]
            if value[0] == ber.END_OF_MIB_VIEW:
                return out
            out.append((oid, value))


class BERTests(SynchronousTestCase):
    """
    The codec round-trips what SNMP uses and refuses malformed input.
    """

    @given(st.integers(min_value=-(2 ** 63), max_value=2 ** 63 - 1))
    def test_integerRoundTrip(self, number):
        """An INTEGER encodes minimally and decodes to itself."""
        encoded = ber.encodeInteger(number)
        self.assertEqual(ber.Reader(encoded).value(), (ber.INTEGER, number))

    @given(st.sampled_from([ber.COUNTER32, ber.GAUGE32, ber.TIMETICKS, ber.COUNTER64]),
           st.integers(min_value=0, max_value=2 ** 64 - 1))
    def test_unsignedRoundTrip(self, tag, number):
        """Unsigned types keep their value (clamped or wrapped to their width)."""
        bits = 64 if tag == ber.COUNTER64 else 32
        expected = number % (1 << bits) if tag in (ber.COUNTER32, ber.COUNTER64) \
            else min(number, (1 << bits) - 1)
        self.assertEqual(ber.Reader(ber.encodeValue((tag, number))).value(), (tag, expected))

    @given(st.integers(min_value=0, max_value=2),
           st.integers(min_value=0, max_value=39),
           st.lists(st.integers(min_value=0, max_value=2 ** 32 - 1), max_size=40))
    def test_oidRoundTrip(self, first, second, rest):
        """An OBJECT IDENTIFIER round-trips, large sub-identifiers included."""
        oid = (first, second) + tuple(rest)
        self.assertEqual(ber.Reader(ber.encodeOID(oid)).oid(), oid)

    def test_varBindRoundTrip(self):
        """Every value type SNMP uses survives a VarBind and a PDU."""
        values = [(ber.OCTET_STRING, b"x\x00y"), NULL, (ber.OBJECT_IDENTIFIER, (1, 3, 6)),
                  (ber.IP_ADDRESS, b"\x7f\x00\x00\x01"), (ber.OPAQUE, b"\x01"),
                  (ber.NO_SUCH_OBJECT, None), (ber.NO_SUCH_INSTANCE, None),
                  (ber.END_OF_MIB_VIEW, None), (ber.INTEGER, -5)]
        varBinds = [ber.encodeVarBind((1, 3, 6, i), value) for i, value in enumerate(values)]
        pdu = ber.encodePDU(ber.RESPONSE, 99, 0, 0, varBinds)
        decoded = ber.decodePDU(ber.Reader(pdu))
        self.assertEqual(decoded[:4], (ber.RESPONSE, 99, 0, 0))
        self.assertEqual(decoded[4], [((1, 3, 6, i), v) for i, v in enumerate(values)])

    def test_longFormLength(self):
        """A long-form length with a leading zero (older managers) is accepted."""
        self.assertEqual(ber.Reader(b"\x04\x82\x00\x02ab").octets(), b"ab")

    def test_malformed(self):
        """Each kind of malformed encoding raises L{ber.BERError}."""
        cases = {
            "indefinite length": b"\x30\x80\x00\x00",
            "length past the end": b"\x04\x05ab",
            "truncated": b"\x04",
            "multi-octet tag": b"\x1f\x01\x00",
            "overlong length field": b"\x04\x85\x00\x00\x00\x00\x01a",
            "integer not minimal": b"\x02\x02\x00\x01",
            "negative integer not minimal": b"\x02\x02\xff\xff",
            "integer too long": b"\x02\x0a" + b"\x01" * 10,
            "empty integer": b"\x02\x00",
            "sub-identifier not minimal": b"\x06\x03\x2b\x80\x01",
            "sub-identifier too large": b"\x06\x07\x2b\x90\x80\x80\x80\x80\x00",
            "truncated sub-identifier": b"\x06\x02\x2b\x81",
            "OID too long": b"\x06\x81\x81" + b"\x01" * 129,
            "NULL with contents": b"\x05\x01\x00",
            "IpAddress of 3 octets": b"\x40\x03abc",
            "Counter32 too large": b"\x41\x05\x01\x00\x00\x00\x00",
            "negative Counter64": b"\x46\x01\x80",
            "unknown tag": b"\x09\x00",
        }
        for name, data in cases.items():
            self.assertRaises(ber.BERError, ber.Reader(data).value)

    def test_trailingBytes(self):
        """L{ber.Reader.finish} refuses bytes after the last TLV."""
        reader = ber.Reader(b"\x05\x00\x05\x00")
        reader.value()
        self.assertRaises(ber.BERError, reader.finish)


class USMTests(SynchronousTestCase):
    """
    The USM cryptography against the RFCs' examples.
    """

    def test_passwordToKey(self):
        """The localized keys of RFC 3414 A.3.1 and A.3.2."""
        engineID = bytes(11) + b"\x02"
        self.assertEqual(usm.passwordToKey(b"maplesyrup", engineID, "md5").hex(),
                         "526f5eed9fcce26f8964c2930787d82b")
        self.assertEqual(usm.passwordToKey(b"maplesyrup", engineID, "sha1").hex(),
                         "6695febc9288e36282235fc7151f128497b38f3f")

    def test_aesRoundTrip(self):
        """AES-128 CFB decrypts what it encrypted, with any length."""
        key = bytes(range(20))
        ciphertext = usm.encrypt(key, 5, 77, b"saltsalt", b"scoped pdu!")
        self.assertEqual(len(ciphertext), 11)
        self.assertEqual(usm.decrypt(key, 5, 77, b"saltsalt", ciphertext), b"scoped pdu!")


class MIBTests(SynchronousTestCase):
    """
    The layout of the figures and the shipped MIB file.
    """

    def test_fileIsUpToDate(self):
        """
        etc/CGPRO-MIB.txt is what scripts/genmib.py makes from the catalog
        (run the script after changing the catalog).
        """
        with open(os.path.join(CHECKOUT, "etc", "CGPRO-MIB.txt")) as f:
            self.assertEqual(f.read(), mib.generate(CATALOG),
                             "etc/CGPRO-MIB.txt is out of date: run scripts/genmib.py")

    def test_descriptors(self):
        """Catalog names become camelCase descriptors of at most 32 characters."""
        self.assertEqual(mib.descriptor("cgpro_sip_requests_total"), "cgproSipRequestsTotal")
        text = mib.generate(CATALOG)
        for name, kind, doc, labels, column in CATALOG:
            self.assertIn(mib.descriptor(name), text)
            for label in labels:
                self.assertLessEqual(len(mib.descriptor(name) + label.capitalize()), 32)

    def test_index(self):
        """A row's index is its length-prefixed label values; a long one is not published."""
        self.assertEqual(mib.encodeIndex(("ab", "c")), (2, 97, 98, 1, 99))
        self.assertIsNone(mib.encodeIndex(("x" * (mib.LABEL_MAX + 1),)))

    def test_figureEntries(self):
        """
        Unlabelled figures are scalars (0 until reported), labelled ones
        rows of their table's value column; counters are Counter64,
        gauges Gauge32.
        """
        catalog = Catalog()
        catalog.counter("cgpro_sip_requests_total").labels("BYE").inc(2)
        catalog.gauge("cgpro_queue_messages").labels("x" * 40).set(1)
        catalog.callback("cgpro_sip_registrations", lambda: 4)
        entries, objects = figureEntries(catalog.collect())
        values = dict(entries)
        self.assertEqual(values[mib.OBJECTS + (30, 1, 2, 3, 66, 89, 69)], (ber.COUNTER64, 2))
        self.assertEqual(values[mib.OBJECTS + (33, 0)], (ber.GAUGE32, 4))
        self.assertEqual(values[mib.OBJECTS + (12, 0)], (ber.COUNTER64, 0))
        self.assertNotIn(13, [oid[len(mib.OBJECTS)] for oid in values])
        self.assertIn(mib.OBJECTS + (13, 1, 2), objects)


class GetTests(AgentMixin, SynchronousTestCase):
    """
    SNMPv2c GET, GETNEXT and their exceptions.
    """

    def test_buildAndProtocols(self):
        """Module snmp of the port table builds a DatagramProtocol."""
        self.assertIs(namedAny(PROTOCOLS["snmp"]), build)
        self.assertIsInstance(build(None, self.context), DatagramProtocol)

    def test_system(self):
        """The system group answers for the server."""
        tag, requestID, status, index, varBinds = self.ask(
            ber.GET, [SYSTEM + (1, 0), SYSTEM + (2, 0), SYSTEM + (3, 0), SYS_NAME], requestID=-3)
        self.assertEqual((tag, requestID, status, index), (ber.RESPONSE, -3, 0, 0))
        values = dict(varBinds)
        self.assertTrue(values[SYSTEM + (1, 0)][1].startswith(b"cgpro 0.1.0"))
        self.assertEqual(values[SYSTEM + (2, 0)], (ber.OBJECT_IDENTIFIER, mib.ROOT))
        self.assertEqual(values[SYS_NAME], (ber.OCTET_STRING, b"main.dom"))

    def test_upTime(self):
        """sysUpTime counts hundredths of a second on the injected clock."""
        self.clock.advance(12.5)
        varBinds = self.ask(ber.GET, [SYSTEM + (3, 0)])[4]
        self.assertEqual(varBinds[0][1], (ber.TIMETICKS, 1250))

    def test_figures(self):
        """A figure reported to the catalog is read at the request."""
        counter = self.context.stats.counter("cgpro_sip_requests_total").labels("INVITE")
        oid = mib.OBJECTS + (30, 1, 2, 6) + tuple(b"INVITE")
        counter.inc(2)
        self.assertEqual(self.ask(ber.GET, [oid])[4], [(oid, (ber.COUNTER64, 2))])
        counter.inc()
        self.assertEqual(self.ask(ber.GET, [oid])[4], [(oid, (ber.COUNTER64, 3))])

    def test_exceptions(self):
        """
        A missing row is noSuchInstance, a missing object noSuchObject,
        GETNEXT past the last OID endOfMibView; the error-status stays 0.
        """
        row = mib.OBJECTS + (30, 1, 2, 3) + tuple(b"FOO")
        unknown = (1, 3, 6, 1, 4, 1, 99999, 1, 0)
        status, index, varBinds = self.ask(ber.GET, [row, SYSTEM + (5, 1), unknown])[2:]
        self.assertEqual((status, index), (0, 0))
        self.assertEqual([v[0] for _, v in varBinds],
                         [ber.NO_SUCH_INSTANCE, ber.NO_SUCH_INSTANCE, ber.NO_SUCH_OBJECT])
        end = self.ask(ber.GETNEXT, [(2, 999)])[4]
        self.assertEqual(end, [((2, 999), (ber.END_OF_MIB_VIEW, None))])

    def test_walkIsSorted(self):
        """
        GETNEXT from the root visits the system group, the figures and the
        SNMP statistics, in strictly increasing OID order.
        """
        self.context.stats.counter("cgpro_errors_total").labels("smtp", "timeout").inc()
        oids = [oid for oid, _ in self.walk()]
        self.assertEqual(oids, sorted(oids))
        self.assertEqual(len(oids), len(set(oids)))
        self.assertEqual(oids[0], SYSTEM + (1, 0))
        self.assertIn(mib.OBJECTS + (4, 1, 3, 4) + tuple(b"smtp") + (7,) + tuple(b"timeout"),
                      oids)
        self.assertIn(COUNTERS["snmpInPkts"], oids)

    def test_tooBig(self):
        """A GET whose answer exceeds MaxMessageSize is answered tooBig, without VarBinds."""
        self.context.directory.update(MaxMessageSize="484")
        tag, _, status, index, varBinds = self.ask(ber.GET, [SYSTEM + (1, 0)] * 30)
        self.assertEqual((tag, status, index, varBinds), (ber.RESPONSE, TOO_BIG, 0, []))

    def test_set(self):
        """SET is refused with notWritable on the first VarBind, echoing the request."""
        value = (ber.OCTET_STRING, b"new")
        status, index, varBinds = self.ask(ber.SET, [SYS_NAME], values=[value])[2:]
        self.assertEqual((status, index, varBinds), (NOT_WRITABLE, 1, [(SYS_NAME, value)]))
        self.assertEqual(self.ask(ber.GET, [SYS_NAME])[4][0][1], (ber.OCTET_STRING, b"main.dom"))

    def test_transport(self):
        """A datagram is answered to its sender through the transport."""
        transport = FakeDatagramTransport()
        self.agent.makeConnection(transport)
        self.agent.datagramReceived(v2cRequest(ber.GET, [SYS_NAME]), LOCAL)
        [(reply, address)] = transport.written
        self.assertEqual(address, LOCAL)
        self.assertEqual(parseV2c(reply)[1][4], [(SYS_NAME, (ber.OCTET_STRING, b"main.dom"))])


class BulkTests(AgentMixin, SynchronousTestCase):
    """
    GETBULK: non-repeaters, repetitions, and the caps.
    """

    def test_bulk(self):
        """Non-repeaters are answered once, then the repeaters row by row."""
        varBinds = self.ask(ber.GETBULK, [SYSTEM, SYSTEM + (1,), SYSTEM + (4,)], a=1, b=3)[4]
        self.assertEqual([oid for oid, _ in varBinds], [
            SYSTEM + (1, 0),
            SYSTEM + (1, 0), SYSTEM + (4, 0),
            SYSTEM + (2, 0), SYSTEM + (5, 0),
            SYSTEM + (3, 0), SYSTEM + (6, 0),
        ])

    def test_endOfView(self):
        """Repetitions stop once every repeater is past the end of the view."""
        varBinds = self.ask(ber.GETBULK, [(2, 1)], a=0, b=50)[4]
        self.assertEqual(varBinds, [((2, 1), (ber.END_OF_MIB_VIEW, None))])

    def test_maxRepetitionsCapped(self):
        """max-repetitions is capped by the MaxRepetitions setting."""
        self.context.directory.update(MaxRepetitions="5", MaxMessageSize="65507")
        varBinds = self.ask(ber.GETBULK, [(1, 3)], a=0, b=2 ** 31 - 1)[4]
        self.assertEqual(len(varBinds), 5)

    def test_sizeCapped(self):
        """
        A bulk answer larger than MaxMessageSize is cut to fit, not refused
        (RFC 3416 4.2.3).
        """
        self.context.directory.update(MaxMessageSize="484")
        reply = self.agent.respond(v2cRequest(ber.GETBULK, [(1, 3)], a=0, b=100), LOCAL)
        self.assertLessEqual(len(reply), 484)
        status, index, varBinds = parseV2c(reply)[1][2:]
        self.assertEqual(status, 0)
        self.assertGreater(len(varBinds), 3)
        self.assertLess(len(varBinds), 100)

    def test_negativeValues(self):
        """Negative non-repeaters and max-repetitions count as zero."""
        varBinds = self.ask(ber.GETBULK, [SYSTEM], a=-4, b=-1)[4]
        self.assertEqual(varBinds, [])


class BadInputTests(AgentMixin, SynchronousTestCase):
    """
    What the agent drops, and that it keeps answering afterwards.
    """

    snmp = {"Community": ["secret", "other"]}

    def assertStillAnswers(self):
        """The agent answers a good request after the bad ones."""
        self.assertEqual(self.ask(ber.GET, [SYS_NAME], community=b"other")[2], 0)

    def test_wrongCommunity(self):
        """A wrong community is dropped and counted (standard and catalog)."""
        reply = self.agent.respond(v2cRequest(ber.GET, [SYS_NAME], community=b"public"), LOCAL)
        self.assertIsNone(reply)
        self.assertEqual(self.agent.counters["snmpInBadCommunityNames"], 1)
        self.assertEqual(self.context.stats.element("cgpro_auth_failures_total/snmp"), 1)
        self.assertStillAnswers()

    def test_foreignClient(self):
        """v2c from outside Clients (loopback by default) is dropped, right community or not."""
        reply = self.agent.respond(v2cRequest(ber.GET, [SYS_NAME], community=b"secret"),
                                   ("192.0.2.1", 161))
        self.assertIsNone(reply)
        self.assertEqual(self.agent.counters["snmpInBadCommunityUses"], 1)
        self.context.directory.update(Clients=["192.0.2.0/24"])
        self.assertIsNotNone(self.agent.respond(
            v2cRequest(ber.GET, [SYS_NAME], community=b"secret"), ("192.0.2.1", 161)))

    def test_settingsFollowUpdates(self):
        """UPDATEMODULE SNMP changes the community for the next request."""
        self.context.directory.update(Community="fresh")
        self.assertIsNone(self.agent.respond(v2cRequest(ber.GET, [SYS_NAME], community=b"other"),
                                             LOCAL))
        self.assertEqual(self.ask(ber.GET, [SYS_NAME], community=b"fresh")[2], 0)

    def test_malformed(self):
        """Garbage, truncated and trailing-byte packets are dropped and counted."""
        good = v2cRequest(ber.GET, [SYS_NAME], community=b"other")
        for data in [b"", b"\x00", b"garbage", good[:-1], good + b"\x00", b"\x30\x80" + good[2:],
                     good.replace(b"\xa0", b"\xa4", 1)]:
            self.assertIsNone(self.agent.respond(data, LOCAL))
        self.assertEqual(self.agent.counters["snmpInASNParseErrs"], 7)
        self.assertEqual(self.context.stats.element("cgpro_errors_total/snmp/malformed"), 7)
        self.assertStillAnswers()

    def test_versions(self):
        """SNMPv1 and unknown versions are dropped as bad versions."""
        for version in (0, 2, 7):
            data = ber.tlv(ber.SEQUENCE, ber.encodeInteger(version)
                           + v2cRequest(ber.GET, [SYS_NAME])[5:])
            self.assertIsNone(self.agent.respond(data, LOCAL))
        self.assertEqual(self.agent.counters["snmpInBadVersions"], 3)

    def test_unexpectedPDUs(self):
        """Responses, traps, informs and reports sent to the agent are dropped."""
        for tag in (ber.RESPONSE, ber.TRAP, ber.INFORM, ber.REPORT):
            self.assertIsNone(self.agent.respond(
                v2cRequest(tag, [SYS_NAME], community=b"other"), LOCAL))
        self.assertEqual(self.agent.counters["snmpUnknownPDUHandlers"], 4)

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=200))
    def test_fuzzNeverRaises(self, data):
        """Random datagrams never raise out of the agent."""
        reply = self.agent.respond(data, LOCAL)
        self.assertTrue(reply is None or isinstance(reply, bytes))

    @settings(max_examples=300, deadline=None)
    @given(st.integers(min_value=0, max_value=60), st.integers(min_value=0, max_value=255))
    def test_mutationsNeverRaise(self, position, octet):
        """A valid request with one octet changed is answered or dropped, never raises."""
        data = bytearray(v2cRequest(ber.GETBULK, [SYSTEM, (1, 3)], community=b"other", b=10))
        data[position % len(data)] = octet
        self.agent.transport = FakeDatagramTransport()
        self.agent.datagramReceived(bytes(data), LOCAL)
        self.assertEqual(self.agent.counters["snmpSilentDrops"], 0)


class V3Manager:
    """
    The manager's half of SNMPv3 for the tests: builds requests and opens
    responses.
    """

    def __init__(self, user, authPassword, privPassword=None, hashName="sha1"):
        self.user = user
        self.authPassword = authPassword
        self.privPassword = privPassword
        self.hashName = hashName

    def keys(self, engineID):
        authKey = usm.passwordToKey(self.authPassword, engineID, self.hashName)
        privKey = None
        if self.privPassword:
            privKey = usm.passwordToKey(self.privPassword, engineID, self.hashName)
        return authKey, privKey

    def request(self, engineID, boots, engineTime, pdu, auth=True, priv=True, msgID=5,
                reportable=True, digest=None, contextName=b""):
        authKey, privKey = self.keys(engineID)
        scoped = ber.tlv(ber.SEQUENCE, ber.tlv(ber.OCTET_STRING, engineID)
                         + ber.tlv(ber.OCTET_STRING, contextName) + pdu)
        salt = b""
        if priv:
            salt = b"12345678"
            scoped = ber.tlv(ber.OCTET_STRING,
                             usm.encrypt(privKey, boots, engineTime, salt, scoped))
        flags = (1 if auth else 0) | (2 if priv else 0) | (4 if reportable else 0)
        security = ber.tlv(ber.SEQUENCE, ber.tlv(ber.OCTET_STRING, engineID)
                           + ber.encodeInteger(boots) + ber.encodeInteger(engineTime)
                           + ber.tlv(ber.OCTET_STRING, self.user)
                           + ber.tlv(ber.OCTET_STRING, bytes(12) if auth else b"")
                           + ber.tlv(ber.OCTET_STRING, salt))
        message = ber.tlv(ber.SEQUENCE, ber.encodeInteger(3) + ber.tlv(ber.SEQUENCE, (
            ber.encodeInteger(msgID) + ber.encodeInteger(65507)
            + ber.tlv(ber.OCTET_STRING, bytes((flags,))) + ber.encodeInteger(3)))
            + ber.tlv(ber.OCTET_STRING, security) + scoped)
        if auth:
            offset = message.index(b"\x04\x0c" + bytes(12)) + 2
            mac = digest if digest is not None else usm.mac(self.hashName, authKey, message)
            message = message[:offset] + mac + message[offset + 12:]
        return message

    def open(self, data, engineID=None):
        """
        @return: C{(flags, engineID, boots, time, user, pdu)}, the
            digest checked and the scoped PDU decrypted.
        """
        outer = ber.Reader(data)
        message = outer.sequence()
        outer.finish()
        assert message.integer() == 3
        header = message.sequence()
        header.integer()
        header.integer()
        flags = header.octets()[0]
        start, end = message.expect(ber.OCTET_STRING)
        dataTag, dataStart, dataEnd = message.readTLV()
        params = ber.Reader(data, start, end).sequence()
        engine = params.octets()
        boots = params.integer()
        engineTime = params.integer()
        user = params.octets()
        authStart, authEnd = params.expect(ber.OCTET_STRING)
        salt = params.octets()
        if flags & 1:
            authKey, privKey = self.keys(engine)
            zeroed = data[:authStart] + bytes(12) + data[authEnd:]
            assert usm.mac(self.hashName, authKey, zeroed) == data[authStart:authEnd]
        if flags & 2:
            scoped = usm.decrypt(privKey, boots, engineTime, salt, data[dataStart:dataEnd])
        else:
            scoped = ber.tlv(dataTag, data[dataStart:dataEnd])
        reader = ber.Reader(scoped).sequence()
        reader.octets()
        reader.octets()
        return flags, engine, boots, engineTime, user, ber.decodePDU(reader)


def getPDU(oids, requestID=11):
    """
    @return: an encoded GetRequest PDU for C{oids}.
    """
    return ber.encodePDU(ber.GET, requestID, 0, 0, [ber.encodeVarBind(o, NULL) for o in oids])


class V3Tests(AgentMixin, SynchronousTestCase):
    """
    SNMPv3 with the User-based Security Model.
    """

    snmp = {"Users": {"alice": {"AuthPassword": "authpass1", "PrivPassword": "privpass1"},
                      "bob": {"AuthPassword": "authpass2", "AuthProtocol": "MD5"},
                      "shorty": {"AuthPassword": "short"}}}

    def setUp(self):
        AgentMixin.setUp(self)
        self.alice = V3Manager(b"alice", b"authpass1", b"privpass1")
        self.clock.advance(1000)

    def discover(self):
        """
        @return: C{(engineID, boots, time)} from the discovery Report.
        """
        probe = V3Manager(b"", b"unused12").request(b"", 0, 0, getPDU([]), auth=False,
                                                      priv=False)
        flags, engineID, boots, engineTime, user, pdu = self.alice.open(
            self.agent.respond(probe, LOCAL))
        self.assertEqual(pdu[0], ber.REPORT)
        self.assertEqual(pdu[4][0][0], COUNTERS["usmStatsUnknownEngineIDs"])
        return engineID, boots, engineTime

    def test_discovery(self):
        """An empty engine ID gets a Report carrying the engine's ID, boots and time."""
        engineID, boots, engineTime = self.discover()
        self.assertEqual(engineID, self.agent.engineID)
        self.assertEqual((boots, engineTime), (self.agent.boots, 1000))
        self.assertEqual(self.context.stats.element("cgpro_auth_failures_total/snmp"), 0)

    def test_authPriv(self):
        """An authPriv GET is answered encrypted and authenticated."""
        engineID, boots, engineTime = self.discover()
        request = self.alice.request(engineID, boots, engineTime, getPDU([SYS_NAME]))
        flags, _, _, _, user, pdu = self.alice.open(self.agent.respond(request, LOCAL))
        self.assertEqual((flags, user), (3, b"alice"))
        self.assertEqual(pdu[:4], (ber.RESPONSE, 11, 0, 0))
        self.assertEqual(pdu[4], [(SYS_NAME, (ber.OCTET_STRING, b"main.dom"))])

    def test_authNoPrivMD5(self):
        """A user without a privacy password is served authNoPriv (HMAC-MD5-96 here)."""
        bob = V3Manager(b"bob", b"authpass2", hashName="md5")
        engineID, boots, engineTime = self.discover()
        request = bob.request(engineID, boots, engineTime, getPDU([SYS_NAME]), priv=False)
        flags, _, _, _, _, pdu = bob.open(self.agent.respond(request, LOCAL))
        self.assertEqual(flags, 1)
        self.assertEqual(pdu[4][0][1], (ber.OCTET_STRING, b"main.dom"))

    def assertReport(self, request, counter, flags=0):
        """C{request} is answered by a Report of C{counter}, sent with C{flags}."""
        flagsFound, _, _, _, _, pdu = self.alice.open(self.agent.respond(request, LOCAL))
        self.assertEqual(pdu[0], ber.REPORT)
        self.assertEqual(pdu[4][0][0], COUNTERS[counter])
        self.assertEqual(flagsFound, flags)
        self.assertEqual(self.agent.counters[counter], 1)

    def test_wrongDigest(self):
        """A bad digest gets a usmStatsWrongDigests Report and no answer."""
        engineID, boots, engineTime = self.discover()
        request = self.alice.request(engineID, boots, engineTime, getPDU([SYS_NAME]),
                                     digest=b"\x01" * 12)
        self.assertReport(request, "usmStatsWrongDigests")
        self.assertEqual(self.context.stats.element("cgpro_auth_failures_total/snmp"), 1)

    def test_unknownUser(self):
        """An unknown user (or one with a too short password) is reported."""
        engineID, boots, engineTime = self.discover()
        request = V3Manager(b"shorty", b"short123").request(
            engineID, boots, engineTime, getPDU([SYS_NAME]), priv=False)
        self.assertReport(request, "usmStatsUnknownUserNames")

    def test_securityLevel(self):
        """A user with a privacy password must encrypt."""
        engineID, boots, engineTime = self.discover()
        request = self.alice.request(engineID, boots, engineTime, getPDU([SYS_NAME]), priv=False)
        self.assertReport(request, "usmStatsUnsupportedSecLevels")

    def test_timeWindow(self):
        """
        A message older than 150 s gets an authenticated
        usmStatsNotInTimeWindows Report carrying the current time.
        """
        engineID, boots, engineTime = self.discover()
        self.clock.advance(151)
        request = self.alice.request(engineID, boots, engineTime, getPDU([SYS_NAME]))
        self.assertReport(request, "usmStatsNotInTimeWindows", flags=1)
        request = self.alice.request(engineID, boots + 1, engineTime + 151, getPDU([SYS_NAME]))
        self.agent.respond(request, LOCAL)
        self.assertEqual(self.agent.counters["usmStatsNotInTimeWindows"], 2)

    def test_unknownContext(self):
        """A context other than the default one is reported."""
        engineID, boots, engineTime = self.discover()
        request = self.alice.request(engineID, boots, engineTime, getPDU([SYS_NAME]),
                                     contextName=b"vrf")
        self.assertEqual(self.alice.open(self.agent.respond(request, LOCAL))[5][0], ber.REPORT)

    def test_notReportable(self):
        """Without the reportable flag, a failure is dropped silently."""
        engineID, boots, engineTime = self.discover()
        request = self.alice.request(engineID, boots, engineTime, getPDU([SYS_NAME]),
                                     digest=bytes(12), reportable=False)
        self.assertIsNone(self.agent.respond(request, LOCAL))

    def test_bulkSizeV3(self):
        """A v3 bulk answer respects the manager's msgMaxSize and MaxMessageSize."""
        self.context.directory.update(MaxMessageSize="600")
        engineID, boots, engineTime = self.discover()
        pdu = ber.encodePDU(ber.GETBULK, 1, 0, 100, [ber.encodeVarBind((1, 3), NULL)])
        reply = self.agent.respond(self.alice.request(engineID, boots, engineTime, pdu), LOCAL)
        self.assertLessEqual(len(reply), 600)
        self.assertGreater(len(self.alice.open(reply)[5][4]), 3)
