# -*- test-case-name: tests.monitor.test_snmp -*-
"""
A small, strict BER codec for the SNMP messages of RFC 3416 (PDUs),
RFC 3412 (the v3 header) and RFC 3414 (USM security parameters).

Only what SNMP uses: INTEGER, OCTET STRING, NULL, OBJECT IDENTIFIER,
SEQUENCE, the application types of RFC 2578 (IpAddress, Counter32,
Gauge32, TimeTicks, Opaque, Counter64), the three varbind exceptions and
the PDU tags.  Decoding is strict where a lenient reader would let an
attacker waste the agent's time or confuse it: definite lengths only, no
length past the end of its container, no trailing bytes, integers of at
most 64 bits in minimal form, sub-identifiers of at most 32 bits, a
bounded number of them.  Long-form lengths with leading zero octets are
accepted, because some managers (older net-snmp) build sequences that way
and BER allows it.

Every decoding error raises L{BERError}; the agent counts it as an
C{snmpInASNParseErrs} and drops the datagram.
"""

INTEGER = 0x02
OCTET_STRING = 0x04
NULL = 0x05
OBJECT_IDENTIFIER = 0x06
SEQUENCE = 0x30

IP_ADDRESS = 0x40
COUNTER32 = 0x41
GAUGE32 = 0x42
TIMETICKS = 0x43
OPAQUE = 0x44
COUNTER64 = 0x46

NO_SUCH_OBJECT = 0x80
NO_SUCH_INSTANCE = 0x81
END_OF_MIB_VIEW = 0x82

GET = 0xA0
GETNEXT = 0xA1
RESPONSE = 0xA2
SET = 0xA3
TRAP_V1 = 0xA4
GETBULK = 0xA5
INFORM = 0xA6
TRAP = 0xA7
REPORT = 0xA8

PDU_TAGS = frozenset([GET, GETNEXT, RESPONSE, SET, TRAP_V1, GETBULK, INFORM, TRAP, REPORT])

#: the unsigned application types and their width in bits
_UNSIGNED = {COUNTER32: 32, GAUGE32: 32, TIMETICKS: 32, COUNTER64: 64}

#: RFC 2578: an OID has at most 128 sub-identifiers.
MAX_OID_LENGTH = 128


class BERError(ValueError):
    """Bytes that are not a well-formed SNMP BER encoding."""


# -- encoding ----------------------------------------------------------------


def encodeLength(length):
    """
    @return: the definite, minimal length octets of C{length}.
    """
    if length < 0x80:
        return bytes((length,))
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def tlv(tag, value):
    """
    @return: C{tag}, the length of C{value}, then C{value}.
    """
    return bytes((tag,)) + encodeLength(len(value)) + value


def encodeInteger(number, tag=INTEGER):
    """
    @return: a signed INTEGER (or another tag holding a two's-complement
        integer), minimal.
    """
    size = max(1, (number + (number < 0)).bit_length() // 8 + 1)
    return tlv(tag, number.to_bytes(size, "big", signed=True))


def encodeUnsigned(number, tag):
    """
    @return: an unsigned application integer (Counter32, Gauge32,
        TimeTicks, Counter64), clamped to its range (Gauge32 semantics for
        a gauge, wrapped for a counter).
    """
    bits = _UNSIGNED[tag]
    if tag in (COUNTER32, COUNTER64):
        number %= 1 << bits
    else:
        number = min(max(number, 0), (1 << bits) - 1)
    body = number.to_bytes(number.bit_length() // 8 + 1, "big")
    return tlv(tag, body)


def encodeOID(oid):
    """
    @param oid: a C{tuple} of C{int}s, at least two.
    @return: the OBJECT IDENTIFIER.
    """
    if len(oid) < 2 or oid[0] > 2 or (oid[0] < 2 and oid[1] > 39):
        raise BERError("bad OID %r" % (oid,))
    out = bytearray(_subidentifier(oid[0] * 40 + oid[1]))
    for sub in oid[2:]:
        out += _subidentifier(sub)
    return tlv(OBJECT_IDENTIFIER, bytes(out))


def _subidentifier(number):
    if number < 0:
        raise BERError("negative sub-identifier")
    chunks = [number & 0x7F]
    number >>= 7
    while number:
        chunks.append(0x80 | (number & 0x7F))
        number >>= 7
    return bytes(reversed(chunks))


def encodeValue(value):
    """
    @param value: a C{(tag, python value)} pair as L{decodeValue} returns.
    @return: its encoding.
    """
    tag, body = value
    if tag == INTEGER:
        return encodeInteger(body)
    if tag in _UNSIGNED:
        return encodeUnsigned(body, tag)
    if tag in (OCTET_STRING, IP_ADDRESS, OPAQUE):
        return tlv(tag, body)
    if tag == OBJECT_IDENTIFIER:
        return encodeOID(body)
    if tag in (NULL, NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW):
        return bytes((tag, 0))
    raise BERError("cannot encode tag 0x%02x" % (tag,))


def encodeVarBind(oid, value):
    """
    @return: one VarBind: C{SEQUENCE { name, value }}.
    """
    return tlv(SEQUENCE, encodeOID(oid) + encodeValue(value))


def encodePDU(tag, requestID, errorStatus, errorIndex, varBinds):
    """
    @param varBinds: already encoded VarBinds (L{encodeVarBind}), so the
        caller can measure them while building a response.
    @return: the PDU.
    """
    return tlv(tag, encodeInteger(requestID) + encodeInteger(errorStatus)
               + encodeInteger(errorIndex) + tlv(SEQUENCE, b"".join(varBinds)))


# -- decoding ----------------------------------------------------------------


class Reader:
    """
    Reads consecutive TLVs from C{data[start:end]}.

    @ivar position: where the next TLV starts.
    """

    def __init__(self, data, start=0, end=None):
        self.data = data
        self.position = start
        self.end = len(data) if end is None else end

    def atEnd(self):
        return self.position >= self.end

    def readTLV(self):
        """
        @return: C{(tag, valueStart, valueEnd)}, moving past it.
        @raise BERError: for a truncated, indefinite or overlong TLV, or a
            multi-octet tag (SNMP uses none).
        """
        data, position, end = self.data, self.position, self.end
        if position + 2 > end:
            raise BERError("truncated TLV")
        tag = data[position]
        if tag & 0x1F == 0x1F:
            raise BERError("multi-octet tag")
        first = data[position + 1]
        position += 2
        if first < 0x80:
            length = first
        elif first == 0x80:
            raise BERError("indefinite length")
        else:
            count = first & 0x7F
            if count > 4 or position + count > end:
                raise BERError("bad length")
            length = int.from_bytes(data[position:position + count], "big")
            position += count
        if position + length > end:
            raise BERError("length past the end")
        self.position = position + length
        return tag, position, position + length

    def expect(self, tag):
        """
        @return: C{(valueStart, valueEnd)} of the next TLV, which must
            carry C{tag}.
        """
        found, start, end = self.readTLV()
        if found != tag:
            raise BERError("expected tag 0x%02x, found 0x%02x" % (tag, found))
        return start, end

    def sequence(self, tag=SEQUENCE):
        """
        @return: a L{Reader} over the contents of the next TLV (C{tag}).
        """
        start, end = self.expect(tag)
        return Reader(self.data, start, end)

    def integer(self):
        start, end = self.expect(INTEGER)
        return decodeInteger(self.data[start:end])

    def octets(self):
        start, end = self.expect(OCTET_STRING)
        return bytes(self.data[start:end])

    def oid(self):
        start, end = self.expect(OBJECT_IDENTIFIER)
        return decodeOID(self.data[start:end])

    def value(self):
        tag, start, end = self.readTLV()
        return decodeValue(tag, self.data[start:end])

    def finish(self):
        """
        @raise BERError: if bytes are left over.
        """
        if self.position != self.end:
            raise BERError("trailing bytes")


def decodeInteger(body, signed=True):
    """
    @return: the C{int} of a minimal two's-complement body of 1-9 octets.
    """
    if not body or len(body) > 9:
        raise BERError("bad integer length")
    if len(body) > 1 and ((body[0] == 0 and body[1] < 0x80)
                          or (body[0] == 0xFF and body[1] >= 0x80)):
        raise BERError("integer not in minimal form")
    number = int.from_bytes(body, "big", signed=signed)
    if signed and not -(1 << 63) <= number < (1 << 63):
        raise BERError("integer too large")
    return number


def decodeOID(body):
    """
    @return: the OID as a C{tuple} of C{int}s.
    """
    if not body:
        raise BERError("empty OID")
    out = []
    number = 0
    started = False
    for octet in body:
        if not started and octet == 0x80:
            raise BERError("sub-identifier not in minimal form")
        started = True
        number = (number << 7) | (octet & 0x7F)
        if number >= 1 << 32:
            raise BERError("sub-identifier too large")
        if not octet & 0x80:
            out.append(number)
            number = 0
            started = False
            if len(out) >= MAX_OID_LENGTH:
                raise BERError("OID too long")
    if started:
        raise BERError("truncated sub-identifier")
    first = out[0]
    if first < 40:
        head = (0, first)
    elif first < 80:
        head = (1, first - 40)
    else:
        head = (2, first - 80)
    return head + tuple(out[1:])


def decodeValue(tag, body):
    """
    @return: C{(tag, python value)}: C{int}, C{bytes}, C{tuple} (OID) or
        C{None}.
    """
    body = bytes(body)
    if tag == INTEGER:
        return tag, decodeInteger(body)
    if tag in _UNSIGNED:
        if not body or len(body) > _UNSIGNED[tag] // 8 + 1:
            raise BERError("bad unsigned length")
        number = decodeInteger(body, signed=False)
        if len(body) > 1 and body[0] == 0 and body[1] < 0x80:
            raise BERError("unsigned not in minimal form")
        if number >= 1 << _UNSIGNED[tag] or (body[0] & 0x80):
            raise BERError("unsigned out of range")
        return tag, number
    if tag in (OCTET_STRING, OPAQUE):
        return tag, body
    if tag == IP_ADDRESS:
        if len(body) != 4:
            raise BERError("IpAddress is not 4 octets")
        return tag, body
    if tag == OBJECT_IDENTIFIER:
        return tag, decodeOID(body)
    if tag in (NULL, NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW):
        if body:
            raise BERError("NULL with contents")
        return tag, None
    raise BERError("unknown value tag 0x%02x" % (tag,))


def decodePDU(reader):
    """
    Read one PDU (tag, request-id, error-status, error-index, VarBinds).

    @param reader: a L{Reader} positioned at the PDU, which must be the
        last thing in it.
    @return: C{(tag, requestID, errorStatus, errorIndex, varBinds)},
        C{varBinds} a C{list} of C{(oid, (tag, value))}.
    """
    tag, start, end = reader.readTLV()
    if tag not in PDU_TAGS or tag == TRAP_V1:
        raise BERError("unknown PDU tag 0x%02x" % (tag,))
    reader.finish()
    pdu = Reader(reader.data, start, end)
    requestID = pdu.integer()
    errorStatus = pdu.integer()
    errorIndex = pdu.integer()
    varBindList = pdu.sequence()
    pdu.finish()
    varBinds = []
    while not varBindList.atEnd():
        varBind = varBindList.sequence()
        oid = varBind.oid()
        value = varBind.value()
        varBind.finish()
        varBinds.append((oid, value))
    return tag, requestID, errorStatus, errorIndex, varBinds
