# -*- test-case-name: tests.monitor.test_snmp -*-
"""
The SNMP agent: module C{snmp} of the port table (a UDP row, 161 on
127.0.0.1 by default), answering SNMPv2c and SNMPv3 (USM) C{GetRequest},
C{GetNextRequest} and C{GetBulkRequest} over the figures of the server's
statistics catalog (C{context.stats}, laid out by L{cgpro.monitor.mib}, the
tree of C{etc/CGPRO-MIB.txt}) and the C{system}, C{snmp}, C{snmpEngine}
and USM statistics groups of the standard MIBs.  The agent is read-only:
a C{SetRequest} is answered with C{notWritable}.

Why no SNMP library: pysnmp is large (its MIB machinery alone dwarfs
this agent), its maintained line targets asyncio and its Twisted carrier
is unmaintained; the agent needs only the BER subset of SNMP, which a few
hundred lines decode strictly (L{cgpro.monitor._ber}: a malformed or
hostile datagram is a parse error, counted and dropped) and the USM
cryptography, which C{hmac} and pycryptodome (already a dependency)
provide (L{cgpro.monitor._usm}); SNMPv3 message processing is in
L{cgpro.monitor._v3}.

Settings (C{UPDATEMODULE SNMP {...}}, read again when server settings
change):

  - C{Community} (C{"public"}): the read community, or an array of them;
  - C{Clients} (C{("127.0.0.0/8", "::1/128")}): the networks SNMPv2c
    requests are answered from; community strings travel in clear, so by
    default only this host may use them (the listener is also bound to
    127.0.0.1 by the port table).  SNMPv3 requests are authenticated and
    answered from anywhere the listener is reachable;
  - C{Users} (C{{}}): SNMPv3 users, C{name = {AuthPassword = ...;
    PrivPassword = ...; AuthProtocol = SHA; PrivProtocol = AES;}}.  Every
    user authenticates (HMAC-SHA-96 or HMAC-MD5-96); a user with a
    C{PrivPassword} must also encrypt (AES-128 CFB).  Passwords have at
    least 8 characters;
  - C{MaxRepetitions} (100): the cap on a C{GetBulkRequest}'s
    max-repetitions;
  - C{MaxMessageSize} (1472): the largest response, in octets (a bulk
    response is cut to fit, a larger C{Get} answers C{tooBig});
  - C{EngineID} (derived from the Main Domain and base folder): the
    SNMPv3 engine ID, in hexadecimal;
  - C{Contact}, C{Location}: C{sysContact} and C{sysLocation}.

Malformed datagrams, unknown versions (SNMPv1 is not served: it has no
Counter64), wrong communities and v3 security failures are dropped (with
the RFC 3414 Report when the request asks for one) and counted, both in
the standard C{snmp}/USM statistics and in the catalog
(C{cgpro_errors_total{module="snmp"}}, C{cgpro_auth_failures_total}).
"""

import hashlib
import hmac
import ipaddress
import os
import sys
from bisect import bisect_right

from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from cgpro.core.modulesettings import ModuleSettings, count
from cgpro.monitor import _ber as ber
from cgpro.monitor import _usm as usm
from cgpro.monitor._v3 import SNMPv3Mixin
from cgpro.monitor import mib

log = Logger()

#: RFC 3416 error-status values the agent uses
NO_ERROR, TOO_BIG, NOT_WRITABLE = 0, 1, 17

#: SNMPv2-MIB and RFC 3411-3414 objects
SYSTEM = (1, 3, 6, 1, 2, 1, 1)
SNMP_GROUP = (1, 3, 6, 1, 2, 1, 11)
SNMP_ENGINE = (1, 3, 6, 1, 6, 3, 10, 2, 1)
MPD_STATS = (1, 3, 6, 1, 6, 3, 11, 2, 1)
USM_STATS = (1, 3, 6, 1, 6, 3, 15, 1, 1)
UNKNOWN_CONTEXTS = (1, 3, 6, 1, 6, 3, 12, 1, 5, 0)

#: counter name -> its OID instance (all Counter32)
COUNTERS = {
    "snmpInPkts": SNMP_GROUP + (1, 0),
    "snmpInBadVersions": SNMP_GROUP + (3, 0),
    "snmpInBadCommunityNames": SNMP_GROUP + (4, 0),
    "snmpInBadCommunityUses": SNMP_GROUP + (5, 0),
    "snmpInASNParseErrs": SNMP_GROUP + (6, 0),
    "snmpSilentDrops": SNMP_GROUP + (31, 0),
    "snmpProxyDrops": SNMP_GROUP + (32, 0),
    "snmpUnknownSecurityModels": MPD_STATS + (1, 0),
    "snmpInvalidMsgs": MPD_STATS + (2, 0),
    "snmpUnknownPDUHandlers": MPD_STATS + (3, 0),
    "usmStatsUnsupportedSecLevels": USM_STATS + (1, 0),
    "usmStatsNotInTimeWindows": USM_STATS + (2, 0),
    "usmStatsUnknownUserNames": USM_STATS + (3, 0),
    "usmStatsUnknownEngineIDs": USM_STATS + (4, 0),
    "usmStatsWrongDigests": USM_STATS + (5, 0),
    "usmStatsDecryptionErrors": USM_STATS + (6, 0),
    "snmpUnknownContexts": UNKNOWN_CONTEXTS,
}

#: the largest message the agent accepts or builds (UDP over IPv4)
MAX_UDP = 65507
_MAX_INT = 2 ** 31 - 1
#: snmpEngineBoots counts seconds since this epoch (2020-01-01) at start-up
_BOOTS_EPOCH = 1577836800

DEFAULTS = {
    "Community": "public",
    "Clients": ["127.0.0.0/8", "::1/128"],
    "Users": {},
    "MaxRepetitions": "100",
    "MaxMessageSize": "1472",
    "EngineID": "",
    "Contact": "",
    "Location": "",
}


def _strings(value):
    values = [value] if isinstance(value, str) else list(value)
    out = [str(v) for v in values if str(v)]
    if not out:
        raise ValueError("expected at least one string")
    return out


def _networks(value):
    values = [value] if isinstance(value, str) else list(value)
    return [ipaddress.ip_network(str(v).strip(), strict=False) for v in values]


def _messageSize(value):
    size = count(value)
    if not 484 <= size <= MAX_UDP:
        raise ValueError("MaxMessageSize must be 484..%d" % (MAX_UDP,))
    return size


def _engineID(value):
    text = str(value).strip()
    if not text:
        return b""
    raw = bytes.fromhex(text)
    if not 5 <= len(raw) <= 32:
        raise ValueError("an engine ID has 5 to 32 octets")
    return raw


class User:
    """
    One SNMPv3 user of the C{Users} setting.

    @ivar hashName: the C{hashlib} name of its authentication protocol.
    @ivar privPassword: C{bytes}, or C{None} for an authNoPriv user.
    """

    def __init__(self, name, authProtocol, authPassword, privPassword):
        self.name = name
        self.hashName = usm.AUTH_PROTOCOLS[authProtocol]
        self.authPassword = authPassword
        self.privPassword = privPassword

    def __eq__(self, other):
        return isinstance(other, User) and vars(self) == vars(other)


def _users(value):
    """
    Parse C{Users}; a user with a mistake is left out (and logged), not
    every user.
    """
    if not isinstance(value, dict):
        raise ValueError("Users must be a dictionary")
    users = {}
    for name, entry in value.items():
        try:
            if not isinstance(entry, dict):
                raise ValueError("not a dictionary")
            if not 1 <= len(name.encode("utf-8")) <= 32:
                raise ValueError("a user name has 1 to 32 octets")
            authProtocol = str(entry.get("AuthProtocol", "SHA")).upper()
            if authProtocol not in usm.AUTH_PROTOCOLS:
                raise ValueError("AuthProtocol must be SHA or MD5")
            privProtocol = str(entry.get("PrivProtocol", "AES")).upper()
            if privProtocol not in usm.PRIV_PROTOCOLS:
                raise ValueError("PrivProtocol must be AES")
            authPassword = str(entry.get("AuthPassword", ""))
            privPassword = entry.get("PrivPassword")
            if len(authPassword) < 8 or (privPassword is not None and len(str(privPassword)) < 8):
                raise ValueError("passwords have at least 8 characters")
            users[name.encode("utf-8")] = User(
                name, authProtocol, authPassword.encode("utf-8"),
                None if privPassword is None else str(privPassword).encode("utf-8"))
        except ValueError as e:
            log.warn("SNMP user {name!r} is ignored: {error}", name=name, error=e)
    return users


class SNMPSettings(ModuleSettings):
    """
    The effective C{SNMP} module settings, parsed.
    """

    MODULE = "SNMP"
    DEFAULTS = DEFAULTS
    PARSERS = {
        "Community": ("communities", _strings),
        "Clients": ("clients", _networks),
        "Users": ("users", _users),
        "MaxRepetitions": ("maxRepetitions", count),
        "MaxMessageSize": ("maxMessageSize", _messageSize),
        "EngineID": ("engineID", _engineID),
        "Contact": ("contact", str),
        "Location": ("location", str),
    }


class MIBView:
    """
    The agent's tree at one instant: sorted OIDs and their values.

    @ivar objects: the OIDs of the object types (scalars without their
        C{.0}, table columns), to tell C{noSuchInstance} from
        C{noSuchObject}.
    """

    def __init__(self, entries, objects):
        entries.sort()
        self.oids = [oid for oid, _ in entries]
        self.values = dict(entries)
        self.objects = objects

    def get(self, oid):
        """
        @return: the value of C{oid}, or the C{noSuchInstance} /
            C{noSuchObject} exception.
        """
        value = self.values.get(oid)
        if value is not None:
            return value
        for length in range(len(oid) - 1, 1, -1):
            if oid[:length] in self.objects:
                return (ber.NO_SUCH_INSTANCE, None)
        return (ber.NO_SUCH_OBJECT, None)

    def next(self, oid):
        """
        @return: C{(oid, value)} of the first instance after C{oid}, or
            C{(oid, endOfMibView)}.
        """
        index = bisect_right(self.oids, oid)
        if index == len(self.oids):
            return oid, (ber.END_OF_MIB_VIEW, None)
        found = self.oids[index]
        return found, self.values[found]


def _number(value):
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return 0
    return number


def figureEntries(collected):
    """
    @param collected: what L{cgpro.core.stats.Catalog.collect} returns.
    @return: C{(entries, objects)}: the C{(oid, value)} instances of the
        catalog's figures, and their object OIDs.
    """
    entries = []
    objects = set()
    for name, kind, doc, labels, column, samples in collected:
        tag = ber.COUNTER64 if kind == "counter" else ber.GAUGE32
        if labels:
            valueColumn = mib.OBJECTS + (column, 1, len(labels) + 1)
            objects.add(valueColumn)
            for labelValues, value in samples:
                index = mib.encodeIndex(labelValues)
                if index is not None:
                    entries.append((valueColumn + index, (tag, _number(value))))
        else:
            scalar = mib.OBJECTS + (column,)
            objects.add(scalar)
            entries.append((scalar + (0,), (tag, _number(sum(v for _, v in samples)))))
    return entries, objects


class SNMPAgent(SNMPv3Mixin, DatagramProtocol):
    """
    The agent of one C{snmp} row.

    @ivar counters: the standard statistics, name -> count (L{COUNTERS}).
    @ivar boots: C{snmpEngineBoots}: seconds from 2020-01-01 to this
        start, so it grows with every restart without a file to keep.
    """

    counterOIDs = COUNTERS
    maxUDP = MAX_UDP

    def __init__(self, context, clock=None):
        if clock is None:
            clock = getattr(context, "reactor", None)
        if clock is None:
            from twisted.internet import reactor as clock
        self.context = context
        self.clock = clock
        self.directory = getattr(context, "directory", None)
        self.startTime = getattr(context, "startTime", None)
        if self.startTime is None:
            self.startTime = clock.seconds()
        self.boots = min(max(1, int(self.startTime) - _BOOTS_EPOCH), _MAX_INT - 1)
        self.counters = dict.fromkeys(COUNTERS, 0)
        self._settings = None
        self._settingsAt = object()
        self._keys = {}
        self._salt = int.from_bytes(os.urandom(8), "big")
        stats = getattr(context, "stats", None)
        self._authFailures = self._errors = None
        if stats is not None:
            self._authFailures = stats.counter("cgpro_auth_failures_total").labels("snmp")
            self._errors = stats.counter("cgpro_errors_total")

    # -- settings and state -------------------------------------------------

    @property
    def settings(self):
        """
        The module settings, parsed again when the server settings changed
        (C{directory.serverGeneration}), so C{UPDATEMODULE SNMP} applies
        to the next request.
        """
        generation = getattr(self.directory, "serverGeneration", None)
        if self._settings is None or generation != self._settingsAt:
            self._settingsAt = generation
            self._settings = SNMPSettings.load(self.directory)
        return self._settings

    @property
    def engineID(self):
        """
        C{snmpEngineID}: the C{EngineID} setting, else derived from the
        Main Domain and the base folder (stable across restarts, distinct
        between servers).
        """
        configured = self.settings.engineID
        if configured:
            return configured
        seed = "%s\0%s" % (getattr(self.directory, "mainDomain", ""),
                           getattr(self.context, "base", ""))
        # RFC 3411 format: enterprise 0 (none registered), format 5 (octets)
        return b"\x80\x00\x00\x00\x05" + hashlib.sha1(seed.encode("utf-8")).digest()[:12]

    def engineTime(self):
        """
        @return: C{snmpEngineTime}: seconds since this start.
        """
        return min(max(0, int(self.clock.seconds() - self.startTime)), _MAX_INT)

    def _count(self, name, kind=None, authFailure=False):
        self.counters[name] += 1
        if self._errors is not None and kind is not None:
            self._errors.labels("snmp", kind).inc()
        if self._authFailures is not None and authFailure:
            self._authFailures.inc()

    def view(self):
        """
        @return: the L{MIBView} of this instant: the catalog collected now
            plus the standard groups.
        """
        stats = getattr(self.context, "stats", None)
        entries, objects = figureEntries(stats.collect() if stats is not None else [])
        settings = self.settings
        version = "%d.%d.%d" % sys.version_info[:3]
        descr = "cgpro %s, a CommuniGate Pro-compatible server (Python %s, Twisted)" % (
            getattr(self.context, "version", "?"), version)
        uptime = max(0, int((self.clock.seconds() - self.startTime) * 100)) % (1 << 32)
        octets = ber.OCTET_STRING
        standard = [
            (SYSTEM + (1, 0), (octets, descr.encode("utf-8"))),
            (SYSTEM + (2, 0), (ber.OBJECT_IDENTIFIER, mib.ROOT)),
            (SYSTEM + (3, 0), (ber.TIMETICKS, uptime)),
            (SYSTEM + (4, 0), (octets, settings.contact.encode("utf-8"))),
            (SYSTEM + (5, 0), (octets, str(getattr(self.directory, "mainDomain", "")
                                           or "").encode("utf-8"))),
            (SYSTEM + (6, 0), (octets, settings.location.encode("utf-8"))),
            (SYSTEM + (7, 0), (ber.INTEGER, 72)),
            (SNMP_GROUP + (30, 0), (ber.INTEGER, 2)),
            (SNMP_ENGINE + (1, 0), (octets, self.engineID)),
            (SNMP_ENGINE + (2, 0), (ber.INTEGER, self.boots)),
            (SNMP_ENGINE + (3, 0), (ber.INTEGER, self.engineTime())),
            (SNMP_ENGINE + (4, 0), (ber.INTEGER, MAX_UDP)),
        ]
        standard.extend((oid, (ber.COUNTER32, self.counters[name] % (1 << 32)))
                        for name, oid in COUNTERS.items())
        entries.extend(standard)
        objects.update(oid[:-1] for oid, _ in standard)
        return MIBView(entries, objects)

    # -- datagrams ----------------------------------------------------------

    def datagramReceived(self, data, address):
        """
        Answer one request; nothing a datagram holds can stop the agent.
        """
        try:
            reply = self.respond(data, address)
        except Exception:
            log.failure("SNMP request from {address} failed", address=address)
            self._count("snmpSilentDrops", "internal")
            return
        if reply is not None:
            self.transport.write(reply, address)

    def respond(self, data, address):
        """
        @param data: one datagram.
        @param address: its C{(host, port)}.
        @return: the response datagram, or C{None} to send nothing.
        """
        self.counters["snmpInPkts"] += 1
        try:
            outer = ber.Reader(data)
            message = outer.sequence()
            outer.finish()
            version = message.integer()
        except ber.BERError:
            self._count("snmpInASNParseErrs", "malformed")
            return None
        if version == 1:
            return self._v2c(message, address)
        if version == 3:
            return self._v3(message, data)
        self._count("snmpInBadVersions", "badVersion")
        return None

    # -- SNMPv2c --------------------------------------------------------------

    def _clientAllowed(self, host):
        try:
            address = ipaddress.ip_address(host.split("%")[0])
        except ValueError:
            return False
        mapped = getattr(address, "ipv4_mapped", None)
        if mapped is not None:
            address = mapped
        return any(address in network for network in self.settings.clients
                   if network.version == address.version)

    def _v2c(self, message, address):
        try:
            community = message.octets()
            pdu = ber.decodePDU(message)
        except ber.BERError:
            self._count("snmpInASNParseErrs", "malformed")
            return None
        settings = self.settings
        if not self._clientAllowed(address[0]):
            self._count("snmpInBadCommunityUses", "badCommunity", authFailure=True)
            return None
        if not any(hmac.compare_digest(community, c.encode("utf-8"))
                   for c in settings.communities):
            self._count("snmpInBadCommunityNames", "badCommunity", authFailure=True)
            return None
        tag, requestID = pdu[0], pdu[1]
        if tag not in (ber.GET, ber.GETNEXT, ber.GETBULK, ber.SET):
            self._count("snmpUnknownPDUHandlers", "unexpectedPDU")
            return None
        header = ber.encodeInteger(1) + ber.tlv(ber.OCTET_STRING, community)

        def wrap(status, index, varBinds):
            return ber.tlv(ber.SEQUENCE, header + ber.encodePDU(
                ber.RESPONSE, requestID, status, index, varBinds))

        return self._answer(pdu, wrap, settings.maxMessageSize)

    # -- operations -------------------------------------------------------------

    def _answer(self, pdu, wrap, maxSize):
        """
        Run one request PDU and build the response within C{maxSize}.

        @param wrap: C{(errorStatus, errorIndex, encodedVarBinds)} -> the
            whole response message.
        @return: the response, or C{None} when even an empty C{tooBig}
            does not fit (counted as a silent drop).
        """
        budget = maxSize - len(wrap(NO_ERROR, 0, [])) - 8
        status, index, varBinds = self._process(pdu, budget)
        response = wrap(status, index, varBinds)
        if len(response) > maxSize:
            response = wrap(TOO_BIG, 0, [])
            if len(response) > maxSize:
                self._count("snmpSilentDrops", "tooBig")
                return None
        return response

    def _process(self, pdu, budget):
        """
        @return: C{(errorStatus, errorIndex, encodedVarBinds)}.
        """
        tag, requestID, nonRepeaters, maxRepetitions, varBinds = pdu
        if tag == ber.SET:
            if not varBinds:
                return NO_ERROR, 0, []
            return NOT_WRITABLE, 1, [ber.encodeVarBind(oid, value) for oid, value in varBinds]
        view = self.view()
        if tag == ber.GETBULK:
            return self._bulk(view, nonRepeaters, maxRepetitions, varBinds, budget)
        out = []
        size = 0
        for oid, _ in varBinds:
            if tag == ber.GET:
                encoded = ber.encodeVarBind(oid, view.get(oid))
            else:
                encoded = ber.encodeVarBind(*view.next(oid))
            size += len(encoded)
            if size > budget:
                return TOO_BIG, 0, []
            out.append(encoded)
        return NO_ERROR, 0, out

    def _bulk(self, view, nonRepeaters, maxRepetitions, varBinds, budget):
        """
        RFC 3416 4.2.3: the first C{nonRepeaters} names once, then up to
        C{maxRepetitions} (capped by the C{MaxRepetitions} setting) rows of
        the others, stopping early at the end of the MIB view and when the
        response would exceed C{budget} (a shorter response, not an
        error, unless not even the non-repeaters fit).
        """
        nonRepeaters = min(max(nonRepeaters, 0), len(varBinds))
        repetitions = min(max(maxRepetitions, 0), self.settings.maxRepetitions)
        out = []
        size = 0
        for oid, _ in varBinds[:nonRepeaters]:
            encoded = ber.encodeVarBind(*view.next(oid))
            size += len(encoded)
            if size > budget:
                return TOO_BIG, 0, []
            out.append(encoded)
        current = [oid for oid, _ in varBinds[nonRepeaters:]]
        if not current:
            return NO_ERROR, 0, out
        for _ in range(repetitions):
            ended = True
            for column, oid in enumerate(current):
                found, value = view.next(oid)
                if value[0] != ber.END_OF_MIB_VIEW:
                    ended = False
                encoded = ber.encodeVarBind(found, value)
                size += len(encoded)
                if size > budget:
                    return NO_ERROR, 0, out
                out.append(encoded)
                current[column] = found
            if ended:
                break
        return NO_ERROR, 0, out


def build(spec, context):
    """
    The C{build(spec, context)} of module C{snmp} named in
    L{cgpro.core.ports.PROTOCOLS}.

    @param spec: the L{cgpro.core.ports.ListenerSpec} of a C{snmp} row
        (UDP).
    @param context: the L{cgpro.core.interfaces.IServerContext}.
    @return: the L{SNMPAgent} (a C{DatagramProtocol}).
    """
    return SNMPAgent(context)
