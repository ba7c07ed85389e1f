# -*- test-case-name: tests.core.test_names -*-
"""
Tests for L{cgpro.core.names}.
"""

from twisted.trial.unittest import SynchronousTestCase

from cgpro.core import names
from cgpro.core.errors import BadName


class NameTests(SynchronousTestCase):
    """
    Object and domain name rules.
    """

    def test_objectNames(self):
        """Letters, digits, _ - . (not first or last), at most 128, folded."""
        self.assertEqual(names.objectName("John.Smith-2_x"), "john.smith-2_x")
        self.assertEqual(names.objectName("323"), "323")
        self.assertEqual(names.objectName("a" * 128), "a" * 128)
        for bad in ["", ".a", "a.", "a..b", "a b", "a@b", "a" * 129, None, 5, "é"]:
            self.assertRaises(BadName, names.objectName, bad)

    def test_domainNames(self):
        """DNS-shaped names, folded, trailing dot dropped."""
        self.assertEqual(names.domainName("Mail.Example.COM."), "mail.example.com")
        for bad in ["", "a..b", "-a.com", "a-.com", "a b", "x" * 64, None]:
            self.assertRaises(BadName, names.domainName, bad)

    def test_splitAddress(self):
        """A bare name takes the default domain."""
        self.assertEqual(names.splitAddress("U@D.com", "m.dom"), ("u", "d.com"))
        self.assertEqual(names.splitAddress("u", "m.dom"), ("u", "m.dom"))
