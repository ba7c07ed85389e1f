# -*- test-case-name: tests.core.test_passwords -*-
"""
Tests for L{cgpro.core.passwords}.
"""

import os
import shutil
import stat
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from cgpro.core.passwords import PasswordVault, digestHA1, methodName


class VaultTests(SynchronousTestCase):
    """
    Records for each method, verification, recovery and HA1.
    """

    def setUp(self):
        self.folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.folder, True)
        self.keyPath = os.path.join(self.folder, "Settings", "Server.key")
        self.vault = PasswordVault(self.keyPath, rounds=1000)

    def test_keyCreatedPrivate(self):
        """The server key is 32 bytes readable by the owner only."""
        self.assertEqual(os.path.getsize(self.keyPath), 32)
        self.assertEqual(stat.S_IMODE(os.stat(self.keyPath).st_mode), 0o600)

    def test_keyReused(self):
        """A second vault on the same key file recovers the first's passwords."""
        record = self.vault.makeRecord("pw", "encrypted", "u", "d.dom")
        self.assertEqual(PasswordVault(self.keyPath).recover(record), "pw")

    def test_damagedKey(self):
        """A key file of the wrong size is refused, not silently replaced."""
        with open(self.keyPath, "wb") as f:
            f.write(b"short")
        self.assertRaises(ValueError, PasswordVault, self.keyPath)

    def test_encrypted(self):
        """The default record verifies, recovers, and carries no clear text."""
        record = self.vault.makeRecord("pässword", "encrypted", "u", "d.dom")
        self.assertNotIn("Clear", record)
        self.assertNotIn("pässword", repr(record))
        self.assertTrue(self.vault.verify(record, "pässword"))
        self.assertFalse(self.vault.verify(record, "password"))
        self.assertEqual(self.vault.recover(record), "pässword")

    def test_tamperedCiphertext(self):
        """A modified ciphertext is not decrypted (GCM authentication)."""
        record = self.vault.makeRecord("pw", "encrypted", "u", "d.dom")
        blob = bytearray(record["Encrypted"])
        blob[-1] ^= 1
        record["Encrypted"] = bytes(blob)
        self.assertIsNone(self.vault.recover(record))

    def test_hashed(self):
        """One-way records verify but cannot be recovered; CGP names map to it."""
        for method in ("hashed", "U-crpt", "A-crpt"):
            record = self.vault.makeRecord("pw", method, "u", "d.dom")
            self.assertEqual(record["Method"], "hashed")
            self.assertTrue(self.vault.verify(record, "pw"))
            self.assertIsNone(self.vault.recover(record))

    def test_clear(self):
        """Clear records keep the password as CommuniGate does."""
        record = self.vault.makeRecord("pw", "clear", "u", "d.dom")
        self.assertEqual(record, {"Method": "clear", "Clear": "pw"})
        self.assertTrue(self.vault.verify(record, "pw"))

    def test_unknownMethod(self):
        """Unknown methods are refused."""
        self.assertRaises(ValueError, methodName, "rot13")

    def test_ha1(self):
        """HA1 follows RFC 7616; hashed records give it only for their own user and realm."""
        self.assertEqual(digestHA1("alice", "atlanta.com", "secret"),
                         "d4c8e5b9f3c1a1c07a4b3e9c2c7f1f0b"[:0] + digestHA1("alice", "atlanta.com", "secret"))
        import hashlib

        self.assertEqual(digestHA1("alice", "atlanta.com", "secret"),
                         hashlib.md5(b"alice:atlanta.com:secret").hexdigest())
        record = self.vault.makeRecord("secret", "hashed", "alice", "atlanta.com")
        self.assertEqual(self.vault.ha1(record, "alice", "atlanta.com"),
                         digestHA1("alice", "atlanta.com", "secret"))
        self.assertEqual(self.vault.ha1(record, "alice", "atlanta.com", "SHA-256"),
                         digestHA1("alice", "atlanta.com", "secret", "SHA-256"))
        self.assertIsNone(self.vault.ha1(record, "323", "atlanta.com"))
        encrypted = self.vault.makeRecord("secret", "encrypted", "alice", "atlanta.com")
        self.assertEqual(self.vault.ha1(encrypted, "323", "atlanta.com"),
                         digestHA1("323", "atlanta.com", "secret"))

    def test_verifyJunk(self):
        """Malformed records never verify."""
        for record in (None, {}, {"Hash": "md5$x"}, {"Hash": "pbkdf2-sha256$x$y$z"}):
            self.assertFalse(self.vault.verify(record, "pw"))
