# -*- test-case-name: tests.core.test_tls -*-
"""
Tests for L{cgpro.core.tls}: the self-signed certificate of the first start.
"""

import os
import shutil
import stat
import tempfile

from cryptography import x509
from twisted.trial.unittest import SynchronousTestCase

from cgpro.core.tls import CERT_FILE, ServerTLS


class ServerTLSTests(SynchronousTestCase):
    """
    Certificate creation and reuse.
    """

    def setUp(self):
        self.base = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.base, True)

    def test_generatedOnce(self):
        """The first start makes a private self-signed certificate; later starts reuse it."""
        first = ServerTLS(self.base, "main.dom")
        self.assertTrue(first.generated)
        path = os.path.join(self.base, CERT_FILE)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        second = ServerTLS(self.base, "main.dom")
        self.assertFalse(second.generated)
        self.assertEqual(first.pem, second.pem)

    def test_names(self):
        """The certificate names the Main Domain and localhost."""
        tls = ServerTLS(self.base, "main.dom")
        cert = x509.load_pem_x509_certificate(tls.pem)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        self.assertEqual(names.get_values_for_type(x509.DNSName), ["main.dom", "localhost"])
        self.assertIsNotNone(tls.options.getContext())
