# -*- test-case-name: tests.pbx.test_environment -*-
"""
Tests for L{cgpro.pbx.environment}: lookup order, languages, listing,
durable stores, the rule that only the server's Master installs code, and
file-name checks.
"""

import datetime
import os
import shutil
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from cgpro.core.errors import AccessDenied, BadName, UnknownObject
from cgpro.core.files import DurableWriter
from cgpro.pbx.environment import (
    DOMAIN,
    SERVER,
    STOCK,
    Environments,
    FileNotFound,
    MalformedData,
    defaultStockFolder,
)


def makeEnvironments(case, writer=True):
    """
    Environments over a fresh base folder and a small stock folder holding
    C{prompt.wav}, C{french/prompt.wav} and C{only-stock.wav}.

    @return: the L{Environments}.
    """
    base = tempfile.mkdtemp(prefix="cgpro-pbx-")
    case.addCleanup(shutil.rmtree, base, True)
    stock = os.path.join(base, "stock")
    os.makedirs(os.path.join(stock, "french"))
    for name, data in [("prompt.wav", b"stock"), ("french/prompt.wav", b"stock-fr"),
                       ("only-stock.wav", b"only")]:
        with open(os.path.join(stock, name), "wb") as f:
            f.write(data)
    writer = DurableWriter(base, synchronous=True) if writer else None
    return Environments(os.path.join(base, "var"), stockFolder=stock, writer=writer)


class LookupTests(SynchronousTestCase):
    """
    L{Environments.find}: Domain custom, then server custom, then stock; the
    task's language folder before each environment's root.
    """

    def setUp(self):
        self.envs = makeEnvironments(self)

    def store(self, scope, name, data, domain=None, language=None):
        self.successResultOf(self.envs.create(scope, domain, language))
        self.successResultOf(self.envs.store(scope, name, data, domain=domain))

    def content(self, path):
        with open(path, "rb") as f:
            return f.read()

    def test_stockOnly(self):
        """Without custom environments the stock file is found."""
        self.assertEqual(self.content(self.envs.find("d.dom", "prompt.wav")), b"stock")

    def test_serverOverridesStock(self):
        """A server-wide file hides the stock one of the same name."""
        self.store(SERVER, "prompt.wav", b"server")
        self.assertEqual(self.content(self.envs.find("d.dom", "prompt.wav")), b"server")
        self.assertEqual(self.content(self.envs.find(None, "prompt.wav")), b"server")

    def test_domainOverridesServer(self):
        """A Domain's file hides the server's, for that Domain only."""
        self.store(SERVER, "prompt.wav", b"server")
        self.store(DOMAIN, "prompt.wav", b"domain", domain="d.dom")
        self.assertEqual(self.content(self.envs.find("d.dom", "prompt.wav")), b"domain")
        self.assertEqual(self.content(self.envs.find("other.dom", "prompt.wav")), b"server")

    def test_deleteFallsBack(self):
        """Deleting a custom file falls back to the next environment."""
        self.store(DOMAIN, "prompt.wav", b"domain", domain="d.dom")
        self.successResultOf(self.envs.delete(DOMAIN, "prompt.wav", domain="d.dom"))
        self.assertEqual(self.content(self.envs.find("d.dom", "prompt.wav")), b"stock")

    def test_missing(self):
        """A name no environment has gives C{None}."""
        self.assertIsNone(self.envs.find("d.dom", "nothing.wav"))

    def test_languageFirst(self):
        """A task's language folder is searched before the root."""
        self.assertEqual(self.content(self.envs.find(None, "prompt.wav", "french")),
                         b"stock-fr")
        self.assertEqual(self.content(self.envs.find(None, "only-stock.wav", "french")),
                         b"only")

    def test_languagePerEnvironment(self):
        """A Domain's root file beats the stock language file: environments
        are searched one by one, language first within each."""
        self.store(DOMAIN, "prompt.wav", b"domain", domain="d.dom")
        self.assertEqual(self.content(self.envs.find("d.dom", "prompt.wav", "french")),
                         b"domain")
        self.store(DOMAIN, "french/prompt.wav", b"domain-fr", domain="d.dom",
                   language="french")
        self.assertEqual(self.content(self.envs.find("d.dom", "prompt.wav", "french")),
                         b"domain-fr")

    def test_languagePrefixInName(self):
        """C{french/prompt.wav} selects the language like the argument does."""
        self.assertEqual(self.content(self.envs.find(None, "french/prompt.wav")), b"stock-fr")

    def test_domainLayout(self):
        """A Domain's environment lives in the Domain's folder under the base."""
        self.assertEqual(self.envs.folder(DOMAIN, "d.dom"),
                         os.path.join(self.envs.base, "Domains", "d.dom", "PBXApps"))
        self.assertEqual(self.envs.folder(SERVER), os.path.join(self.envs.base, "PBXApps"))

    def test_shippedStock(self):
        """The shipped stock environment is found and holds the prompts."""
        folder = defaultStockFolder()
        self.assertTrue(os.path.isfile(os.path.join(folder, "receptionprompt.wav")))
        envs = Environments(self.envs.base)
        with open(envs.find(None, "beep.wav"), "rb") as f:
            self.assertEqual(f.read(4), b"RIFF")


class ListingTests(SynchronousTestCase):
    """
    L{Environments.listFiles}, L{Environments.read} and L{Environments.create}.
    """

    def setUp(self):
        self.envs = makeEnvironments(self)

    def test_listStock(self):
        """Files with their size and time; language folders are not files."""
        files = self.envs.listFiles(STOCK)
        self.assertEqual(sorted(files), ["only-stock.wav", "prompt.wav"])
        self.assertEqual(files["prompt.wav"]["Size"], 5)
        self.assertIsInstance(files["prompt.wav"]["Modified"], datetime.datetime)
        self.assertEqual(self.envs.languages(STOCK), ["french"])

    def test_listLanguage(self):
        """A language folder is listed on its own."""
        self.assertEqual(list(self.envs.listFiles(STOCK, language="french")), ["prompt.wav"])

    def test_notCreated(self):
        """Listing an environment not created is refused with a clear text."""
        e = self.assertRaises(UnknownObject, self.envs.listFiles, DOMAIN, "d.dom")
        self.assertIn("d.dom has no custom PBX environment", str(e))
        self.assertRaises(UnknownObject, self.envs.store, SERVER, "a.wav", b"x")

    def test_unknownLanguage(self):
        """A language folder that does not exist is named in the refusal."""
        e = self.assertRaises(UnknownObject, self.envs.listFiles, STOCK, language="klingon")
        self.assertIn("klingon", str(e))

    def test_createAndList(self):
        """A created environment lists what is stored in it."""
        self.successResultOf(self.envs.create(SERVER))
        self.assertEqual(self.envs.listFiles(SERVER), {})
        self.successResultOf(self.envs.store(SERVER, "a.wav", b"abc"))
        self.assertEqual(self.envs.listFiles(SERVER)["a.wav"]["Size"], 3)
        self.assertEqual(self.envs.read(SERVER, "a.wav"), b"abc")

    def test_readExactEnvironment(self):
        """Reading names one environment: no fall-back to stock."""
        self.successResultOf(self.envs.create(SERVER))
        self.assertRaises(FileNotFound, self.envs.read, SERVER, "prompt.wav")
        self.assertEqual(self.envs.read(STOCK, "prompt.wav"), b"stock")

    def test_stockReadOnly(self):
        """The stock environment cannot be created, stored into or deleted from."""
        self.assertRaises(AccessDenied, self.envs.create, STOCK)
        self.assertRaises(AccessDenied, self.envs.store, STOCK, "prompt.wav", b"x")
        self.assertRaises(AccessDenied, self.envs.delete, STOCK, "prompt.wav")

    def test_deleteMissing(self):
        """Deleting a file that is not there is refused."""
        self.successResultOf(self.envs.create(SERVER))
        self.assertRaises(FileNotFound, self.envs.delete, SERVER, "none.wav")


class StoreTests(SynchronousTestCase):
    """
    L{Environments.store}: atomic replacement and the code rule.
    """

    def setUp(self):
        self.envs = makeEnvironments(self)
        self.successResultOf(self.envs.create(SERVER))
        self.successResultOf(self.envs.create(DOMAIN, "d.dom"))

    def test_atomicReplace(self):
        """A replaced file holds the new bytes and no temporary file stays."""
        self.successResultOf(self.envs.store(SERVER, "a.wav", b"one"))
        self.successResultOf(self.envs.store(SERVER, "a.wav", b"two"))
        self.assertEqual(self.envs.read(SERVER, "a.wav"), b"two")
        self.assertEqual(os.listdir(self.envs.folder(SERVER)), ["a.wav"])

    def test_withoutWriter(self):
        """Without a writer, stores are synchronous and durable all the same."""
        envs = makeEnvironments(self, writer=False)
        self.successResultOf(envs.create(DOMAIN, "d.dom"))
        self.successResultOf(envs.store(DOMAIN, "a.wav", b"x", domain="d.dom"))
        self.assertEqual(envs.read(DOMAIN, "a.wav", domain="d.dom"), b"x")
        self.assertEqual(os.listdir(envs.folder(DOMAIN, "d.dom")), ["a.wav"])
        self.successResultOf(envs.delete(DOMAIN, "a.wav", domain="d.dom"))
        self.assertEqual(os.listdir(envs.folder(DOMAIN, "d.dom")), [])

    def test_codeRefusedInDomain(self):
        """A program is never stored in a Domain environment, even by Master."""
        e = self.assertRaises(AccessDenied, self.envs.store, DOMAIN, "app.py", b"x",
                              domain="d.dom", mayInstallCode=True)
        self.assertIn("server environment", str(e))
        self.assertRaises(AccessDenied, self.envs.store, DOMAIN, "APP.PY", b"x",
                          domain="d.dom")

    def test_codeNeedsMaster(self):
        """In the server environment a program needs the Master right."""
        e = self.assertRaises(AccessDenied, self.envs.store, SERVER, "app.py", b"x")
        self.assertIn("server administrator", str(e))
        self.assertFalse(os.path.exists(os.path.join(self.envs.folder(SERVER), "app.py")))
        self.successResultOf(self.envs.store(SERVER, "app.py", b"x", mayInstallCode=True))
        self.assertRaises(AccessDenied, self.envs.delete, SERVER, "app.py")
        self.successResultOf(self.envs.delete(SERVER, "app.py", mayInstallCode=True))

    def test_badNames(self):
        """Names that could leave the folder or hide a file are refused."""
        for name in ["", "../x.wav", "a/../b", ".hidden", "a/b/c.wav", "x" * 129,
                     "a\\b", "french/.x", "a\x00b"]:
            self.assertRaises(BadName, self.envs.store, SERVER, name, b"x")
            self.assertRaises(BadName, self.envs.find, None, name)
        self.assertRaises(BadName, self.envs.listFiles, STOCK, language="..")
        self.assertRaises(BadName, self.envs.create, SERVER, language="a/b")

    def test_longestNameAccepted(self):
        """128 characters are allowed."""
        name = "x" * 124 + ".wav"
        self.successResultOf(self.envs.store(SERVER, name, b"x"))
        self.assertIn(name, self.envs.listFiles(SERVER))

    def test_languageStore(self):
        """C{french/x.wav} goes to the language folder, which must exist."""
        self.assertRaises(UnknownObject, self.envs.store, SERVER, "french/x.wav", b"x")
        self.successResultOf(self.envs.create(SERVER, language="french"))
        self.successResultOf(self.envs.store(SERVER, "french/x.wav", b"fr"))
        self.assertEqual(self.envs.listFiles(SERVER, language="french")["x.wav"]["Size"], 2)


class ObjDataTests(SynchronousTestCase):
    """
    L{Environments.loadObjData}: billing plans found by the normal lookup.
    """

    def setUp(self):
        self.envs = makeEnvironments(self)
        self.successResultOf(self.envs.create(DOMAIN, "d.dom"))

    def test_found(self):
        """A Domain's plan is parsed; the suffix is optional."""
        self.successResultOf(self.envs.store(DOMAIN, "billingplan-x.objdata",
                                             b'{1 = #2; "" = blocked;}', domain="d.dom"))
        self.assertEqual(self.envs.loadObjData("d.dom", "billingplan-x"),
                         {"1": 2, "": "blocked"})
        self.assertEqual(self.envs.loadObjData("d.dom", "billingplan-x.objdata"),
                         {"1": 2, "": "blocked"})

    def test_malformed(self):
        """Content that does not parse is a clear error naming the file."""
        self.successResultOf(self.envs.store(DOMAIN, "billingplan-bad.objdata",
                                             b"{1 = #2", domain="d.dom"))
        e = self.assertRaises(MalformedData, self.envs.loadObjData, "d.dom", "billingplan-bad")
        self.assertIn("billingplan-bad.objdata is malformed", str(e))

    def test_missing(self):
        """A plan no environment has is L{FileNotFound}."""
        self.assertRaises(FileNotFound, self.envs.loadObjData, "d.dom", "billingplan-none")

    def test_stockPlan(self):
        """The shipped plan is the example of pbx-apps.md 5.3."""
        envs = Environments(self.envs.base)
        self.assertEqual(envs.loadObjData(None, "billingplan-standard"),
                         {"1990": "blocked", "1": 0, "": 10})
