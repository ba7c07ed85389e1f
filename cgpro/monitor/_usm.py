# -*- test-case-name: tests.monitor.test_snmp -*-
"""
The cryptography of SNMPv3's User-based Security Model: password to key
and key localization (RFC 3414 A.2), HMAC-MD5-96 and HMAC-SHA-96
authentication (RFC 3414 6 and 7), AES-128 CFB privacy (RFC 3826), with
C{hashlib}/C{hmac} and pycryptodome's AES.
"""

import hashlib
import hmac

from Crypto.Cipher import AES

#: authentication protocol name -> hash name (both truncate the HMAC to 12
#: octets, RFC 3414)
AUTH_PROTOCOLS = {"SHA": "sha1", "MD5": "md5"}
#: privacy protocols
PRIV_PROTOCOLS = ("AES",)
#: the length of msgAuthenticationParameters for both protocols
MAC_LENGTH = 12

_ONE_MEGABYTE = 1048576


def passwordToKey(password, engineID, hashName):
    """
    RFC 3414 A.2: hash one megabyte of the repeated password, then
    localize the result to C{engineID}.

    @param password: C{bytes}, not empty.
    @return: the localized key (as long as the hash's digest).
    """
    if not password:
        raise ValueError("empty password")
    repeated = password * (_ONE_MEGABYTE // len(password) + 1)
    key = hashlib.new(hashName, repeated[:_ONE_MEGABYTE]).digest()
    return hashlib.new(hashName, key + engineID + key).digest()


def mac(hashName, key, message):
    """
    @return: the 12-octet HMAC-MD5-96 or HMAC-SHA-96 of C{message}.
    """
    return hmac.new(key, message, hashName).digest()[:MAC_LENGTH]


def _iv(boots, engineTime, salt):
    return boots.to_bytes(4, "big") + engineTime.to_bytes(4, "big") + salt


def encrypt(privKey, boots, engineTime, salt, plaintext):
    """
    RFC 3826: AES-128 in CFB-128 mode, the IV being the authoritative
    engine's boots and time and the 8-octet salt (msgPrivacyParameters).
    """
    cipher = AES.new(privKey[:16], AES.MODE_CFB, iv=_iv(boots, engineTime, salt),
                     segment_size=128)
    return cipher.encrypt(plaintext)


def decrypt(privKey, boots, engineTime, salt, ciphertext):
    """
    The inverse of L{encrypt}.
    """
    cipher = AES.new(privKey[:16], AES.MODE_CFB, iv=_iv(boots, engineTime, salt),
                     segment_size=128)
    return cipher.decrypt(ciphertext)
