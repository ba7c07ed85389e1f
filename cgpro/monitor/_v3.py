# -*- test-case-name: tests.monitor.test_snmp -*-
"""
SNMPv3 for the agent: message processing (RFC 3412 7.2) with the
User-based Security Model (RFC 3414: engine discovery, HMAC-MD5-96 and
HMAC-SHA-96, the 150-second time window, Reports) and AES-128 privacy
(RFC 3826), as a mixin of L{cgpro.monitor.snmp.SNMPAgent}.

The agent provides C{settings} (C{users}, C{maxMessageSize}),
C{engineID}, C{boots}, C{engineTime()}, C{counters} and C{counterOIDs},
C{_count()}, and C{_answer()} (which runs the PDU within a size); this
module only turns a v3 datagram into a PDU and a response back into a v3
datagram.
"""

import hmac

from cgpro.monitor import _ber as ber
from cgpro.monitor import _usm as usm

#: RFC 3414 3.2 step 7: the time window, in seconds
TIME_WINDOW = 150
_MAX_INT = 2 ** 31 - 1


class SNMPv3Mixin:
    """
    The SNMPv3 half of the agent.

    @ivar _keys: localized keys by user and engine (the derivation hashes
        a megabyte: done once per user).
    @ivar _salt: the 64-bit AES salt counter (RFC 3826 3.1.2.1).
    """

    def _userKeys(self, user):
        """
        @return: C{(authKey, privKey or None)} of C{user} localized to
            this engine (cached: the RFC 3414 key derivation hashes a
            megabyte).
        """
        engineID = self.engineID
        cacheKey = (user.hashName, user.authPassword, user.privPassword, engineID)
        keys = self._keys.get(cacheKey)
        if keys is None:
            authKey = usm.passwordToKey(user.authPassword, engineID, user.hashName)
            privKey = None
            if user.privPassword is not None:
                privKey = usm.passwordToKey(user.privPassword, engineID, user.hashName)
            if len(self._keys) > 64:
                self._keys.clear()
            keys = self._keys[cacheKey] = (authKey, privKey)
        return keys

    def _v3(self, message, data):
        """
        RFC 3412 7.2 and RFC 3414 3.2: check the header, the user, the
        digest, the time window, decrypt, then answer (or report why not).
        """
        try:
            globalData = message.sequence()
            msgID = globalData.integer()
            maxSize = globalData.integer()
            flags = globalData.octets()
            model = globalData.integer()
            globalData.finish()
            secStart, secEnd = message.expect(ber.OCTET_STRING)
            dataTag, dataStart, dataEnd = message.readTLV()
            message.finish()
            security = ber.Reader(data, secStart, secEnd)
            params = security.sequence()
            security.finish()
            engineID = params.octets()
            boots = params.integer()
            engineTime = params.integer()
            userName = params.octets()
            authStart, authEnd = params.expect(ber.OCTET_STRING)
            salt = params.octets()
            params.finish()
        except ber.BERError:
            self._count("snmpInASNParseErrs", "malformed")
            return None
        if (not 0 <= msgID <= _MAX_INT or not 484 <= maxSize <= _MAX_INT or len(flags) != 1
                or flags[0] & 0x03 == 0x02 or dataTag not in (ber.SEQUENCE, ber.OCTET_STRING)):
            self._count("snmpInvalidMsgs", "malformed")
            return None
        if model != 3:
            self._count("snmpUnknownSecurityModels", "malformed")
            return None
        if not 0 <= boots <= _MAX_INT or not 0 <= engineTime <= _MAX_INT or len(userName) > 32:
            self._count("snmpInASNParseErrs", "malformed")
            return None
        authenticated, private, reportable = flags[0] & 1, flags[0] & 2, flags[0] & 4
        maxSize = min(maxSize, self.settings.maxMessageSize)

        def report(counter, user=None):
            # engine discovery (RFC 3414 4) is how every v3 session starts
            discovery = counter == "usmStatsUnknownEngineIDs"
            self._count(counter, None if discovery else "unauthorized", authFailure=not discovery)
            if not reportable:
                return None
            requestID = 0
            if dataTag == ber.SEQUENCE:
                requestID = _requestID(data, dataStart, dataEnd)
            return self._report(msgID, userName, user, requestID, counter)

        ourEngine = self.engineID
        if engineID != ourEngine:
            return report("usmStatsUnknownEngineIDs")
        user = self.settings.users.get(userName)
        if user is None:
            return report("usmStatsUnknownUserNames")
        if not authenticated or (user.privPassword is not None and not private):
            return report("usmStatsUnsupportedSecLevels")
        authKey, privKey = self._userKeys(user)
        if private and privKey is None:
            return report("usmStatsUnsupportedSecLevels")
        received = data[authStart:authEnd]
        zeroed = data[:authStart] + bytes(authEnd - authStart) + data[authEnd:]
        if (len(received) != usm.MAC_LENGTH
                or not hmac.compare_digest(usm.mac(user.hashName, authKey, zeroed), received)):
            return report("usmStatsWrongDigests")
        if (boots != self.boots or self.boots == _MAX_INT
                or abs(engineTime - self.engineTime()) > TIME_WINDOW):
            return report("usmStatsNotInTimeWindows", user)
        if private:
            if dataTag != ber.OCTET_STRING or len(salt) != 8:
                return report("usmStatsDecryptionErrors", user)
            plaintext = usm.decrypt(privKey, boots, engineTime, salt, data[dataStart:dataEnd])
            try:
                outer = ber.Reader(plaintext)
                scoped = outer.sequence()
                outer.finish()
            except ber.BERError:
                return report("usmStatsDecryptionErrors", user)
        elif dataTag == ber.SEQUENCE:
            scoped = ber.Reader(data, dataStart, dataEnd)
        else:
            self._count("snmpInASNParseErrs", "malformed")
            return None
        try:
            contextEngineID = scoped.octets()
            contextName = scoped.octets()
            pdu = ber.decodePDU(scoped)
        except ber.BERError:
            self._count("snmpInASNParseErrs", "malformed")
            return None
        if contextName or contextEngineID not in (ourEngine, b""):
            return report("snmpUnknownContexts", user)
        tag, requestID = pdu[0], pdu[1]
        if tag not in (ber.GET, ber.GETNEXT, ber.GETBULK, ber.SET):
            self._count("snmpUnknownPDUHandlers", "unexpectedPDU")
            return None

        def wrap(status, index, varBinds):
            scopedPDU = self._scoped(ber.encodePDU(ber.RESPONSE, requestID, status, index,
                                                   varBinds))
            return self._message(msgID, userName, user, bool(private), scopedPDU)

        return self._answer(pdu, wrap, maxSize)

    def _scoped(self, pdu):
        return ber.tlv(ber.SEQUENCE, ber.tlv(ber.OCTET_STRING, self.engineID)
                       + ber.tlv(ber.OCTET_STRING, b"") + pdu)

    def _report(self, msgID, userName, user, requestID, counter):
        """
        @return: a Report carrying the counter that says what went wrong,
            authenticated (authNoPriv) when the user was recognized, so
            the manager can trust the time it carries.
        """
        varBind = ber.encodeVarBind(self.counterOIDs[counter],
                                    (ber.COUNTER32, self.counters[counter] % (1 << 32)))
        pdu = ber.encodePDU(ber.REPORT, requestID, 0, 0, [varBind])
        return self._message(msgID, userName if user else b"", user, False, self._scoped(pdu))

    def _message(self, msgID, userName, user, private, scopedPDU):
        """
        Build an SNMPv3 message from this engine: authenticated with
        C{user}'s key when C{user} is given, encrypted when C{private}.
        """
        boots, engineTime = self.boots, self.engineTime()
        authenticated = user is not None
        flags = (1 if authenticated else 0) | (2 if private else 0)
        if private:
            self._salt = (self._salt + 1) % (1 << 64)
            salt = self._salt.to_bytes(8, "big")
            privKey = self._userKeys(user)[1]
            msgData = ber.tlv(ber.OCTET_STRING,
                              usm.encrypt(privKey, boots, engineTime, salt, scopedPDU))
        else:
            salt = b""
            msgData = scopedPDU
        fields = (ber.tlv(ber.OCTET_STRING, self.engineID) + ber.encodeInteger(boots)
                  + ber.encodeInteger(engineTime) + ber.tlv(ber.OCTET_STRING, userName))
        authParams = bytes(usm.MAC_LENGTH) if authenticated else b""
        secBody = fields + ber.tlv(ber.OCTET_STRING, authParams) + ber.tlv(ber.OCTET_STRING, salt)
        secSeq = ber.tlv(ber.SEQUENCE, secBody)
        secOctets = ber.tlv(ber.OCTET_STRING, secSeq)
        globalData = ber.tlv(ber.SEQUENCE, ber.encodeInteger(msgID) + ber.encodeInteger(self.maxUDP)
                             + ber.tlv(ber.OCTET_STRING, bytes((flags,)))
                             + ber.encodeInteger(3))
        version = ber.encodeInteger(3)
        body = version + globalData + secOctets + msgData
        message = ber.tlv(ber.SEQUENCE, body)
        if authenticated:
            offset = ((len(message) - len(body)) + len(version) + len(globalData)
                      + (len(secOctets) - len(secSeq)) + (len(secSeq) - len(secBody))
                      + len(fields) + 2)
            digest = usm.mac(user.hashName, self._userKeys(user)[0], message)
            message = message[:offset] + digest + message[offset + usm.MAC_LENGTH:]
        return message


def _requestID(data, start, end):
    """
    @return: the request-id of a plaintext scoped PDU, or 0 when it cannot
        be read (a Report still goes out: managers match them by msgID).
    """
    try:
        scoped = ber.Reader(data, start, end)
        scoped.octets()
        scoped.octets()
        return ber.decodePDU(scoped)[1]
    except ber.BERError:
        return 0
