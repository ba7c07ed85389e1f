# -*- test-case-name: tests.pbx.test_envcommands -*-
"""
Tests for L{cgpro.pbx.envcommands}: the PBX environment commands of cli.md
6.7 over the real command table, as the postmaster on the CLI protocol
(datablocks on the wire) and as sessions of lesser administrators.
"""

import base64

from twisted.trial.unittest import SynchronousTestCase

from cgpro.cli.protocol import CLISession
from cgpro.core import dataformat
from cgpro.core.commands import TABLE, Arguments
from cgpro.core.errors import AccessDenied, CLIError, UnknownObject
from cgpro.pbx.envcommands import environments
from tests.cli.test_protocol import CLIProtocolTestsMixin, makeFactory


class EnvCommandsTestsMixin(CLIProtocolTestsMixin):
    """
    A CLI server over a real directory: Main Domain C{main.dom}
    (C{postmaster} with Master, C{ops} with C{AllDomains}), Domain C{d.dom}
    (C{da} Domain Administrator, C{user} without rights) and C{e.dom}.
    """

    def setUp(self):
        self.factory, self.clock = makeFactory(self)
        self.context = self.factory.context
        directory = self.context.directory
        for domain in ("d.dom", "e.dom"):
            self.successResultOf(directory.createDomain(domain))
        for address, rights in [("ops@main.dom", ["AllDomains"]), ("da@d.dom", ["Domain"]),
                                ("user@d.dom", [])]:
            self.successResultOf(directory.createAccount(address))
            if rights:
                self.successResultOf(directory.setAccountRights(address, rights))
        self.protocol, self.transport, _ = self.connect()
        self.login(self.protocol, self.transport)
        self.assertEqual(self.send(self.protocol, self.transport, "INLINE"), ["200 OK"])

    def cli(self, line):
        """
        Send one line as the postmaster.

        @return: the response lines.
        """
        return self.send(self.protocol, self.transport, line)

    def value(self, line):
        """
        @return: the object of a C{201} answer.
        """
        [answer] = self.cli(line)
        self.assertTrue(answer.startswith("201 "), answer)
        return dataformat.loads(answer[4:], multiline=False)

    def session(self, user):
        session = CLISession(self.context)
        session.user = user
        session.domain = user.partition("@")[2]
        return session

    def runAs(self, user, line):
        """
        Run one command line as C{user} through the command table.

        @return: the result (a fired L{Deferred}'s value).
        """
        name, _, rest = line.partition(" ")
        result = TABLE.lookup(name).handler(self.session(user), Arguments(rest))
        if hasattr(result, "addCallback"):
            result = self.successResultOf(result)
        return result


class DomainCommandsTests(EnvCommandsTestsMixin, SynchronousTestCase):
    """
    C{CREATEDOMAINPBX}, C{LISTDOMAINPBXFILES}, C{READDOMAINPBXFILE},
    C{STOREDOMAINPBXFILE}.
    """

    def test_roundTrip(self):
        """Create, store (base64 datablock), list, read, delete."""
        self.assertEqual(self.cli("CREATEDOMAINPBX d.dom"), ["200 OK"])
        data = base64.b64encode(b"RIFF-custom").decode()
        self.assertEqual(self.cli("STOREDOMAINPBXFILE d.dom FILE hello.wav DATA [%s]" % data),
                         ["200 OK"])
        listing = self.value("LISTDOMAINPBXFILES d.dom")
        self.assertEqual(list(listing), ["hello.wav"])
        self.assertEqual(listing["hello.wav"]["Size"], 11)
        self.assertEqual(self.value("READDOMAINPBXFILE d.dom FILE hello.wav"), b"RIFF-custom")
        self.assertEqual(self.cli("STOREDOMAINPBXFILE d.dom FILE hello.wav DELETE"), ["200 OK"])
        self.assertEqual(self.value("LISTDOMAINPBXFILES d.dom"), {})
        self.assertEqual(self.cli("READDOMAINPBXFILE d.dom FILE hello.wav"),
                         ["501 file not found: hello.wav"])

    def test_language(self):
        """C{FILE <language>} creates and lists a language folder; a stored
        name may carry the language prefix."""
        self.assertEqual(self.cli("CREATEDOMAINPBX d.dom FILE french"), ["200 OK"])
        self.assertEqual(self.cli('STOREDOMAINPBXFILE d.dom FILE "french/a.wav" DATA [YQ==]'),
                         ["200 OK"])
        self.assertEqual(list(self.value("LISTDOMAINPBXFILES d.dom FILE french")), ["a.wav"])
        self.assertEqual(self.value("LISTDOMAINPBXFILES d.dom"), {})

    def test_notCreated(self):
        """Without CREATEDOMAINPBX the environment does not exist."""
        self.assertEqual(self.cli("LISTDOMAINPBXFILES d.dom"),
                         ["501 Domain d.dom has no custom PBX environment"])

    def test_unknownDomain(self):
        """An unknown domain is refused before anything is created."""
        [answer] = self.cli("CREATEDOMAINPBX nowhere.dom")
        self.assertTrue(answer.startswith("501 "), answer)
        self.assertFalse(environments(self.session("postmaster@main.dom")).exists(
            "domain", "nowhere.dom"))

    def test_domainAdmin(self):
        """A Domain Administrator manages his own Domain's environment."""
        self.assertIsNone(self.runAs("da@d.dom", "CREATEDOMAINPBX d.dom"))
        self.assertIsNone(self.runAs("da@d.dom", "STOREDOMAINPBXFILE d.dom FILE a.wav DATA [YQ==]"))
        self.assertEqual(self.runAs("da@d.dom", "READDOMAINPBXFILE d.dom FILE a.wav"), b"a")

    def test_domainAdminOtherDomain(self):
        """...and no other Domain's."""
        self.assertRaises(AccessDenied, self.runAs, "da@d.dom", "CREATEDOMAINPBX e.dom")
        self.runAs("postmaster@main.dom", "CREATEDOMAINPBX e.dom")
        self.assertRaises(AccessDenied, self.runAs, "da@d.dom", "LISTDOMAINPBXFILES e.dom")

    def test_plainUserRefused(self):
        """An account without rights cannot touch environments."""
        self.assertRaises(AccessDenied, self.runAs, "user@d.dom", "CREATEDOMAINPBX d.dom")

    def test_domainAdminNoCode(self):
        """A Domain Administrator cannot install a program; nor can Master in
        a Domain environment."""
        self.runAs("da@d.dom", "CREATEDOMAINPBX d.dom")
        self.assertRaises(AccessDenied, self.runAs, "da@d.dom",
                          "STOREDOMAINPBXFILE d.dom FILE app.py DATA [YQ==]")
        self.assertEqual(self.cli("STOREDOMAINPBXFILE d.dom FILE app.py DATA [YQ==]"),
                         ["501 programs can be installed only in the server environment"])

    def test_badName(self):
        """A path-escaping name is a clear error."""
        self.cli("CREATEDOMAINPBX d.dom")
        [answer] = self.cli('STOREDOMAINPBXFILE d.dom FILE "../x.wav" DATA [YQ==]')
        self.assertIn("must not", answer)
        self.assertTrue(answer.startswith("501 "), answer)

    def test_syntax(self):
        """DATA needs a datablock; a missing keyword is a syntax error."""
        self.cli("CREATEDOMAINPBX d.dom")
        self.assertEqual(self.cli("STOREDOMAINPBXFILE d.dom FILE a.wav DATA text"),
                         ["501 file data must be a datablock [base64]"])
        [answer] = self.cli("STOREDOMAINPBXFILE d.dom a.wav DATA [YQ==]")
        self.assertTrue(answer.startswith("501 syntax error"), answer)


class ServerAndStockCommandsTests(EnvCommandsTestsMixin, SynchronousTestCase):
    """
    The server-wide and stock variants.
    """

    def test_serverRoundTrip(self):
        """CREATESERVERPBX, STORE/LIST/READSERVERPBXFILE."""
        self.assertEqual(self.cli("CREATESERVERPBX"), ["200 OK"])
        self.assertEqual(self.cli("STORESERVERPBXFILE a.wav DATA [YWJj]"), ["200 OK"])
        self.assertEqual(self.value("LISTSERVERPBXFILES")["a.wav"]["Size"], 3)
        self.assertEqual(self.value("READSERVERPBXFILE a.wav"), b"abc")
        self.assertEqual(self.cli("STORESERVERPBXFILE a.wav DELETE"), ["200 OK"])
        self.assertEqual(self.value("LISTSERVERPBXFILES"), {})

    def test_serverLanguage(self):
        """The language is a bare optional argument (or C{FILE <language>})."""
        self.assertEqual(self.cli("CREATESERVERPBX german"), ["200 OK"])
        self.assertEqual(self.value("LISTSERVERPBXFILES german"), {})
        self.assertEqual(self.value("LISTSERVERPBXFILES FILE german"), {})

    def test_serverCodeNeedsMaster(self):
        """C{AllDomains} stores prompts but not programs; Master stores both."""
        self.runAs("ops@main.dom", "CREATESERVERPBX")
        self.assertIsNone(self.runAs("ops@main.dom", "STORESERVERPBXFILE a.wav DATA [YQ==]"))
        self.assertRaises(AccessDenied, self.runAs, "ops@main.dom",
                          "STORESERVERPBXFILE app.py DATA [YQ==]")
        self.assertEqual(self.cli("STORESERVERPBXFILE app.py DATA [YQ==]"), ["200 OK"])

    def test_serverRefusedToDomainAdmin(self):
        """Domain Administrators do not reach the server environment."""
        for line in ("CREATESERVERPBX", "LISTSERVERPBXFILES", "READSERVERPBXFILE a.wav",
                     "STORESERVERPBXFILE a.wav DATA [YQ==]"):
            self.assertRaises(AccessDenied, self.runAs, "da@d.dom", line)

    def test_stock(self):
        """Any administrator reads the stock environment; users do not."""
        listing = self.runAs("da@d.dom", "LISTSTOCKPBXFILES")
        self.assertIn("receptionprompt.wav", listing)
        data = self.value("READSTOCKPBXFILE beep.wav")
        self.assertEqual(data[:4], b"RIFF")
        self.assertEqual(len(data), listing["beep.wav"]["Size"])
        self.assertRaises(AccessDenied, self.runAs, "user@d.dom", "LISTSTOCKPBXFILES")
        self.assertRaises(UnknownObject, self.runAs, "da@d.dom", "LISTSTOCKPBXFILES french")

    def test_sharedEnvironments(self):
        """Every session of a server uses the same L{Environments}."""
        self.assertIs(environments(self.session("da@d.dom")),
                      environments(self.session("postmaster@main.dom")))

    def test_installedEnvironments(self):
        """An L{Environments} the PBX host installed on the context is used."""
        installed = environments(self.session("postmaster@main.dom"))
        self.context.pbxEnvironments = marker = type(installed)(installed.base,
                                                                installed.stockFolder)
        self.assertIs(environments(self.session("postmaster@main.dom")), marker)

    def test_readMissingStock(self):
        """A stock file that does not exist is a clear error."""
        self.assertRaises(CLIError, self.runAs, "da@d.dom", "READSTOCKPBXFILE nothing.wav")
