"""
Tests for L{cgpro.pbx.rsip} and L{cgpro.pbx.apps.rsipregister}: RSIP
records scheduled by Chronos, one REGISTER each, status and retries, on a
L{Clock}.
"""

from twisted.internet.defer import succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from cgpro.pbx.chronos import Chronos
from cgpro.pbx.rsip import RSIPManager


class Response:
    def __init__(self, code, reason="OK"):
        self.code = code
        self.reason = reason


class FakeUA:
    def __init__(self):
        self.sent = []
        self.ids = []
        self.code = 200

    def destinationFor(self, uri, via=None):
        return succeed(("UDP", via, 5060))

    def contactFor(self, user, peer=None):
        return "sip:%s@203.0.113.7:5060" % (user,)

    def request(self, method, target, fromURI, toURI=None, headers=(), via=None,
                credentials=None, callId=None, cseq=1, **kw):
        self.sent.append((method, target, fromURI, dict(headers), via, credentials))
        self.ids.append((callId, cseq))
        return succeed(Response(self.code, "Forbidden" if self.code == 403 else "OK"))


class FakeDirectory:
    def __init__(self):
        self.parts = {"alice@main.dom": {"prov": {
            "domain": "gw.example@proxy.example:5070", "fromName": "5551234",
            "authName": "rsipuser", "password": "pw", "period": "60s"}}}
        self.partObservers = []
        self.infoProviders = []

    def listDomains(self):
        return ["main.dom"]

    def listAccounts(self, domain):
        return {"alice": "macnt", "bob": "macnt"}

    def getAccountPart(self, account, part):
        return dict(self.parts.get(account, {}))

    def set(self, account, records):
        self.parts[account] = records
        for observer in self.partObservers:
            observer(account, "RSIPs")


class FakeHost:
    def __init__(self):
        self.clock = Clock()
        self.chronos = Chronos(self.clock)
        self.directory = FakeDirectory()
        self.ua = FakeUA()
        self.figures = {}

    def count(self, name, n=1):
        self.figures[name] = self.figures.get(name, 0) + n


class RSIPTests(SynchronousTestCase):

    def setUp(self):
        self.host = FakeHost()
        self.manager = RSIPManager(self.host)
        self.manager.start()

    def test_firstRegister(self):
        """At start: REGISTER at the host, through its proxy, Expires = period + 2 min."""
        self.host.clock.advance(0)
        (method, target, fromURI, headers, via, credentials), = self.host.ua.sent
        self.assertEqual((method, target, fromURI), ("REGISTER", "sip:gw.example",
                                                     "sip:5551234@gw.example"))
        self.assertEqual(via, "proxy.example:5070")
        self.assertEqual(headers["Expires"], "180")
        self.assertRegex(headers["Contact"], r"^<sip:rsip-[0-9a-f]{16}@203\.0\.113\.7:5060>$")
        self.assertEqual(credentials, ("rsipuser", "pw"))
        status = self.manager.info("alice@main.dom")["RSIP"]["prov"]
        self.assertNotIn("Error", status)
        self.assertEqual(status["Last"], 0)

    def test_refreshEveryPeriod(self):
        """The next REGISTER comes a period later."""
        self.host.clock.advance(0)
        self.host.clock.advance(59)
        self.assertEqual(len(self.host.ua.sent), 1)
        self.host.clock.advance(1)
        self.assertEqual(len(self.host.ua.sent), 2)
        (first, cseq1), (second, cseq2) = self.host.ua.ids
        self.assertEqual(first, second)
        self.assertGreater(cseq2, cseq1 + 1)

    def test_wrongPasswordRetried(self):
        """403: 'Illegal password', retried after 60 s, then no later than the period."""
        self.host.ua.code = 403
        self.host.clock.advance(0)
        status = self.manager.info("alice@main.dom")["RSIP"]["prov"]
        self.assertIn("Illegal password", status["Error"])
        self.host.clock.advance(60)
        self.assertEqual(len(self.host.ua.sent), 2)
        self.host.ua.code = 200
        self.host.clock.advance(60)
        self.assertEqual(len(self.host.ua.sent), 3)
        self.assertNotIn("Error", self.manager.info("alice@main.dom")["RSIP"]["prov"])

    def test_changedOverCLI(self):
        """SETACCOUNTRSIPS reschedules at once; Never removes; stop unregisters."""
        self.host.clock.advance(0)
        self.host.directory.set("alice@main.dom", {"prov": dict(
            self.host.directory.parts["alice@main.dom"]["prov"], period="10m")})
        self.host.clock.advance(0)
        self.assertEqual(self.host.ua.sent[-1][3]["Expires"], "720")
        self.manager.stop()
        self.assertEqual(self.host.ua.sent[-1][3]["Expires"], "0")
        self.assertEqual(self.host.directory.partObservers, [])

    def test_incomingRoute(self):
        """The Contact's token leads to the record's target (or the account)."""
        self.host.clock.advance(0)
        contact = self.host.ua.sent[0][3]["Contact"]
        token = contact[5:contact.index("@")]
        self.assertEqual(self.manager.incomingRoute(token), ("alice@main.dom", False))
        self.assertIsNone(self.manager.incomingRoute("rsip-0000000000000000"))

    def test_badRecordReported(self):
        """A record the manager cannot read is reported, the others still run."""
        self.host.directory.set("bob@main.dom", {"x": {"domain": "h", "period": "soon"}})
        self.assertIn("bad record", self.manager.info("bob@main.dom")["RSIP"]["x"]["Error"])
        self.host.clock.advance(0)
        self.assertEqual(len(self.host.ua.sent), 1)
