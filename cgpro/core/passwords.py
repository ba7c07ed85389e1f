# -*- test-case-name: tests.core.test_passwords -*-
"""
Password material: what each login method needs, never the password in
clear unless an administrator asks for it.

A password is turned into a record (a data-format dictionary kept in the
account file) holding, by the account's C{PasswordEncryption} setting:

  - C{encrypted} (the default): a PBKDF2-SHA256 hash for plain checks
    (USER/PASS, AUTH PLAIN/LOGIN), the SIP digest HA1 values (MD5 and
    SHA-256) for the account's own name in its domain's realm, and the
    password itself encrypted with AES-256-GCM under the server key, for
    challenge-response logins that need it (APOP, CRAM-MD5, digest for
    alias names).  CommuniGate's own CLI clients log in with APOP by
    default, which is why this is the default.
  - C{hashed}: the hash and the HA1 values only; APOP and CRAM-MD5 are
    refused for the account.  CommuniGate's one-way C{U-crpt} and
    C{A-crpt} names are accepted as synonyms.
  - C{clear}: the password as given (CommuniGate's C{clear}).

The server key is 32 random bytes in C{Settings/Server.key}, created on
first start with mode 0600, so only the server's user can read it.
"""

import base64
import hashlib
import hmac
import os

from Crypto.Cipher import AES

DEFAULT_METHOD = "encrypted"
DEFAULT_ROUNDS = 100000
_AAD = b"cgpro password v1"

METHODS = {
    "encrypted": "encrypted",
    "hashed": "hashed",
    "clear": "clear",
    "u-crpt": "hashed",
    "a-crpt": "hashed",
}


def methodName(value):
    """
    Normalise a C{PasswordEncryption} setting value.

    @return: C{"encrypted"}, C{"hashed"} or C{"clear"}.
    @raise ValueError: for an unknown method.
    """
    method = METHODS.get(str(value or DEFAULT_METHOD).lower())
    if method is None:
        raise ValueError("unknown PasswordEncryption method: %s" % (value,))
    return method


def _b64(data):
    return base64.b64encode(data).decode("ascii")


def digestHA1(user, realm, password, algorithm="MD5"):
    """
    Compute the RFC 7616 HA1 = H(user:realm:password).

    @param algorithm: C{"MD5"} or C{"SHA-256"}.
    """
    h = hashlib.md5 if algorithm.upper() == "MD5" else hashlib.sha256
    return h(("%s:%s:%s" % (user, realm, password)).encode("utf-8")).hexdigest()


class PasswordVault:
    """
    Makes and checks password records with the server key.

    @ivar rounds: PBKDF2 iterations for new hashes.
    """

    def __init__(self, keyPath, rounds=DEFAULT_ROUNDS):
        self.keyPath = keyPath
        self.rounds = rounds
        self._key = self._loadKey(keyPath)
        #: a key for in-memory login caches, derived so the server key
        #: itself never leaves this object
        self.keyDigest = hashlib.sha256(b"cgpro login cache\0" + self._key).digest()

    @staticmethod
    def _loadKey(path):
        try:
            with open(path, "rb") as f:
                key = f.read()
            if len(key) == 32:
                return key
            raise ValueError("server key %s is damaged (not 32 bytes)" % (path,))
        except FileNotFoundError:
            pass
        from cgpro.core.files import writeFileAtomically

        key = os.urandom(32)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        writeFileAtomically(path, key, mode=0o600)
        return key

    def makeRecord(self, password, method, user, realm):
        """
        Build the stored record for C{password}.

        @param method: a C{PasswordEncryption} value.
        @param user: the account name the HA1 values are computed for.
        @param realm: the SIP realm (the account's domain).
        @return: a C{dict} to keep in the account file.
        """
        method = methodName(method)
        if method == "clear":
            return {"Method": "clear", "Clear": password}
        salt = os.urandom(16)
        digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, self.rounds)
        record = {
            "Method": method,
            "Hash": "pbkdf2-sha256$%d$%s$%s" % (self.rounds, _b64(salt), _b64(digest)),
            "Realm": realm,
            "User": user,
            "HA1": digestHA1(user, realm, password, "MD5"),
            "HA1SHA256": digestHA1(user, realm, password, "SHA-256"),
        }
        if method == "encrypted":
            nonce = os.urandom(12)
            cipher = AES.new(self._key, AES.MODE_GCM, nonce=nonce)
            cipher.update(_AAD)
            ct, tag = cipher.encrypt_and_digest(password.encode("utf-8"))
            record["Encrypted"] = nonce + tag + ct
        return record

    def verify(self, record, password):
        """
        Check a plain password against a record.  Slow by design (PBKDF2):
        call it off the reactor thread.

        @return: C{bool}.
        """
        if not record or not isinstance(password, str):
            return False
        if record.get("Method") == "clear":
            return hmac.compare_digest(
                str(record.get("Clear", "")).encode("utf-8"), password.encode("utf-8")
            )
        try:
            scheme, rounds, salt, digest = record["Hash"].split("$")
            if scheme != "pbkdf2-sha256":
                return False
            computed = hashlib.pbkdf2_hmac(
                "sha256", password.encode("utf-8"), base64.b64decode(salt), int(rounds)
            )
        except (KeyError, ValueError, TypeError):
            return False
        return hmac.compare_digest(computed, base64.b64decode(digest))

    def recover(self, record):
        """
        Recover the password for challenge-response logins.

        @return: C{str}, or C{None} when the record keeps only hashes (or
            was encrypted under another key).
        """
        if not record:
            return None
        if record.get("Method") == "clear":
            return record.get("Clear")
        blob = record.get("Encrypted")
        if not isinstance(blob, bytes) or len(blob) < 28:
            return None
        nonce, tag, ct = blob[:12], blob[12:28], blob[28:]
        cipher = AES.new(self._key, AES.MODE_GCM, nonce=nonce)
        cipher.update(_AAD)
        try:
            return cipher.decrypt_and_verify(ct, tag).decode("utf-8")
        except ValueError:
            return None

    def ha1(self, record, user, realm, algorithm="MD5"):
        """
        The digest HA1 for C{user} in C{realm}: from the password when it
        can be recovered, else from the stored value if it was made for the
        same user and realm.

        @return: hex C{str} or C{None}.
        """
        if record and record.get("User") == user and record.get("Realm") == realm:
            # the stored value was made for this very user and realm: no
            # need to decrypt the password (AES-GCM) on every REGISTER
            stored = record.get("HA1" if algorithm.upper() == "MD5" else "HA1SHA256")
            if stored:
                return stored
        password = self.recover(record)
        if password is not None:
            return digestHA1(user, realm, password, algorithm)
        return None
