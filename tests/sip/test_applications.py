"""
Tests for L{cgpro.sip.applications}: application targets as branches
back to ourselves, and the MAC that keeps callers from naming them.
"""

from twisted.trial.unittest import SynchronousTestCase

from cgpro.sip.applications import PREFIX, ApplicationRoute, Applications


class _Route:
    app = "voicemail"
    params = ["x", "y,z"]
    account = "bob@main.dom"
    original = "bob@main.dom"


class TokenTests(SynchronousTestCase):

    def setUp(self):
        self.apps = Applications(stack=None, secret=b"k" * 16)

    def test_roundTrip(self):
        """A token names the route it was made from."""
        token = self.apps.token(_Route())
        self.assertTrue(token.startswith(PREFIX))
        route = self.apps.parse(token)
        self.assertIsInstance(route, ApplicationRoute)
        self.assertEqual((route.app, route.params, route.account, route.original, route.module),
                         ("voicemail", ["x", "y,z"], "bob@main.dom", "bob@main.dom", "PBX"))

    def test_forged(self):
        """A changed token, another run's key or garbage names nothing."""
        token = self.apps.token(_Route())
        data, _, mac = token.rpartition(".")
        self.assertIsNone(self.apps.parse(data + "." + ("0" * len(mac))))
        self.assertIsNone(Applications(None, secret=b"j" * 16).parse(token))
        for garbage in (PREFIX, PREFIX + ".", PREFIX + "!!!.abc", "alice", None, ""):
            self.assertIsNone(self.apps.parse(garbage))

    def test_uriSafe(self):
        """The token is a valid URI user part (no escaping needed)."""
        token = self.apps.token(_Route())
        self.assertRegex(token, r"^[A-Za-z0-9~._-]+$")
