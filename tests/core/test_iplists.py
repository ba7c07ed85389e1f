# -*- test-case-name: tests.core.test_iplists -*-
"""
Tests for L{cgpro.core.iplists}.
"""

from twisted.trial.unittest import SynchronousTestCase

from cgpro.core.errors import CLIError
from cgpro.core.iplists import IPList


class IPListTests(SynchronousTestCase):
    """
    Addresses, networks, ranges and comments.
    """

    def test_membership(self):
        """Entries of every form match; others do not."""
        ips = IPList("10.0.0.1\n192.168.0.0/24 ; office\n172.16.0.5-172.16.0.9\n::1")
        for yes in ["10.0.0.1", "192.168.0.77", "172.16.0.7", "::1", "::ffff:10.0.0.1"]:
            self.assertIn(yes, ips)
        for no in ["10.0.0.2", "172.16.0.10", "::2", "junk"]:
            self.assertNotIn(no, ips)

    def test_badLine(self):
        """A bad entry names its line."""
        e = self.assertRaises(CLIError, IPList, "10.0.0.1\nnot-an-ip")
        self.assertIn("line 2", str(e))
