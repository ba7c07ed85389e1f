# -*- test-case-name: tests.directory.test_directory -*-
"""
Tests for L{cgpro.directory.local.Directory}: domains, accounts, aliases,
forwarders, groups, settings inheritance and persistence across a reload.
"""

import os

from twisted.internet.defer import fail
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from cgpro.core.errors import BadName, CLIError, NameTaken, UnknownObject
from cgpro.core.interfaces import IDirectory, IDirectoryStorage, IRoutingDirectory
from tests.support.directory import makeDirectory, reopen


class InitializeTests(SynchronousTestCase):
    """
    The first start creates the Main Domain, postmaster and pbx.
    """

    def setUp(self):
        self.directory = makeDirectory(self)

    def test_interfaces(self):
        """The directory provides IDirectory and IRoutingDirectory; storage IDirectoryStorage."""
        self.assertTrue(verifyObject(IDirectory, self.directory))
        self.assertTrue(verifyObject(IRoutingDirectory, self.directory))
        self.assertTrue(verifyObject(IDirectoryStorage, self.directory.storage))

    def test_mainDomain(self):
        """The Main Domain holds exactly postmaster and pbx."""
        self.assertEqual(self.directory.mainDomain, "main.dom")
        self.assertEqual(self.directory.listAccounts(), {"pbx": "macnt", "postmaster": "macnt"})

    def test_postmasterIsMaster(self):
        """postmaster holds the Master right and can log in."""
        self.assertEqual(self.directory.rightsOf("postmaster"), {"Master"})
        d = self.directory.checkPassword("postmaster@main.dom", "secret")
        self.assertEqual(self.successResultOf(d), "postmaster@main.dom")

    def test_pbxAccount(self):
        """pbx has aliases 200 and conference, Domain and CanImpersonate, a divert rule."""
        self.assertEqual(self.directory.getAccountAliases("pbx"), ["200", "conference"])
        self.assertEqual(self.directory.rightsOf("pbx"), {"Domain", "CanImpersonate"})
        rules = self.directory.getAccountPart("pbx", "SignalRules")
        self.assertEqual(rules[0][3], [["Redirect to", "pbx"]])

    def test_initializeTwiceIsNoop(self):
        """A second initialize leaves the existing server alone."""
        from cgpro.directory.local import initialize

        self.assertFalse(self.successResultOf(initialize(self.directory, "other.dom", "x")))
        self.assertEqual(self.directory.mainDomain, "main.dom")

    def test_reloadKeepsEverything(self):
        """A restart finds the same domains, accounts, aliases and rights."""
        again = reopen(self, self.directory)
        self.assertEqual(again.mainDomain, "main.dom")
        self.assertEqual(again.listAccounts(), self.directory.listAccounts())
        self.assertEqual(again.getAccountAliases("pbx"), ["200", "conference"])
        self.assertEqual(again.rightsOf("postmaster"), {"Master"})


class DomainTests(SynchronousTestCase):
    """
    Creating, renaming, deleting domains and their aliases.
    """

    def setUp(self):
        self.directory = makeDirectory(self)

    def test_createDomain(self):
        """A new domain is listed, stored, and case-folded."""
        self.successResultOf(self.directory.createDomain("Client1.COM", {"MailToUnknown": "Rerouted"}))
        self.assertEqual(self.directory.listDomains(), ["client1.com", "main.dom"])
        self.assertEqual(
            self.directory.getDomainPart("client1.com", "Settings"), {"MailToUnknown": "Rerouted"}
        )
        self.assertTrue(os.path.exists(os.path.join(self.directory.storage.base,
                                                    "Domains/client1.com/domain.settings")))

    def test_createDuplicateDomain(self):
        """A taken name (domain or alias) is refused."""
        self.successResultOf(self.directory.createDomain("a.com"))
        self.assertRaises(NameTaken, self.directory.createDomain, "A.com")
        self.successResultOf(self.directory.setDomainPart("a.com", "Aliases", ["b.com"]))
        self.assertRaises(NameTaken, self.directory.createDomain, "b.com")

    def test_badDomainName(self):
        """Malformed domain names are refused before anything changes."""
        for bad in ["", "a..b", "-a.com", "a b.com", "x" * 64 + ".com"]:
            self.assertRaises(BadName, self.directory.createDomain, bad)
        self.assertEqual(self.directory.listDomains(), ["main.dom"])

    def test_domainAliasResolves(self):
        """domainFor resolves aliases and localhost."""
        self.successResultOf(self.directory.createDomain("a.com"))
        self.successResultOf(self.directory.setDomainPart("a.com", "Aliases", ["alias.com"]))
        self.assertEqual(self.directory.domainFor("ALIAS.com"), "a.com")
        self.assertEqual(self.directory.domainFor("localhost"), "main.dom")
        self.assertIsNone(self.directory.domainFor("nowhere.com"))

    def test_deleteDomain(self):
        """A non-empty domain needs FORCE; the Main Domain cannot be deleted."""
        self.successResultOf(self.directory.createDomain("a.com"))
        self.successResultOf(self.directory.createAccount("u@a.com"))
        self.assertRaises(CLIError, self.directory.deleteDomain, "a.com")
        self.successResultOf(self.directory.deleteDomain("a.com", force=True))
        self.assertEqual(self.directory.listDomains(), ["main.dom"])
        self.assertFalse(os.path.exists(os.path.join(self.directory.storage.base, "Domains/a.com")))
        self.assertRaises(CLIError, self.directory.deleteDomain, "main.dom", True)

    def test_renameDomain(self):
        """Renaming moves accounts; renaming the Main Domain updates DomainName."""
        self.successResultOf(self.directory.createDomain("a.com"))
        self.successResultOf(self.directory.createAccount("u@a.com"))
        self.successResultOf(self.directory.renameDomain("a.com", "b.com"))
        self.assertEqual(self.directory.listAccounts("b.com"), {"u": "macnt"})
        self.successResultOf(self.directory.renameDomain("main.dom", "new.dom"))
        self.assertEqual(reopen(self, self.directory).mainDomain, "new.dom")


class AccountTests(SynchronousTestCase):
    """
    Accounts, their settings, passwords, aliases and telnums.
    """

    def setUp(self):
        self.directory = makeDirectory(self)
        self.successResultOf(self.directory.createDomain("d.dom"))

    def test_createAndDuplicate(self):
        """A second account of the same name is refused with CGP's text."""
        self.successResultOf(self.directory.createAccount("user1"))
        e = self.assertRaises(NameTaken, self.directory.createAccount, "USER1")
        self.assertEqual(str(e), "Account with this name already exists")

    def test_nameClashesWithAliasForwarderGroup(self):
        """Accounts, aliases, forwarders and groups share one namespace."""
        self.successResultOf(self.directory.createForwarder("fw@d.dom", "x@y.com"))
        self.successResultOf(self.directory.createGroup("grp@d.dom", {"Members": []}))
        self.assertRaises(NameTaken, self.directory.createAccount, "fw@d.dom")
        self.assertRaises(NameTaken, self.directory.createAccount, "grp@d.dom")
        self.successResultOf(self.directory.createAccount("u@d.dom"))
        self.assertRaises(NameTaken, self.directory.setAccountAliases, "u@d.dom", ["fw"])

    def test_badAccountName(self):
        """Names breaking the object-name rules are refused."""
        for bad in [".a", "a.", "a b", "", "a" * 129, "a/b"]:
            self.assertRaises(BadName, self.directory.createAccount, bad + "@d.dom")

    def test_settingsChain(self):
        """cli.md acceptance test 4: defaults, explicit values and 'default'."""
        d = self.directory
        self.successResultOf(d.setDomainPart("d.dom", "AccountDefaults",
                                             {"MaxAccountSize": "100M"}, update=True))
        self.successResultOf(d.createAccount("u@d.dom"))
        self.successResultOf(d.setAccountSettings(
            "u@d.dom", {"MaxAccountSize": "10M", "RealName": "J S"}, update=True))
        self.assertEqual(d.getAccountSettings("u@d.dom"),
                         {"MaxAccountSize": "10M", "RealName": "J S"})
        self.assertEqual(d.effectiveAccountSettings("u@d.dom")["MaxAccountSize"], "10M")
        self.successResultOf(d.setAccountSettings("u@d.dom", {"MaxAccountSize": "default"},
                                                  update=True))
        self.assertEqual(d.getAccountSettings("u@d.dom"), {"RealName": "J S"})
        self.assertEqual(d.effectiveAccountSettings("u@d.dom")["MaxAccountSize"], "100M")

    def test_serverDefaultsAndServiceClass(self):
        """Server defaults apply under domain defaults; a service class above both."""
        d = self.directory
        self.successResultOf(d.setServerDict("AccountDefaults", {
            "MaxAccountSize": "1G", "RealName": "Server",
            "ServiceClasses": {"gold": {"MaxAccountSize": "5G"}}}))
        self.successResultOf(d.createAccount("u@d.dom", settings={"ServiceClass": "gold"}))
        self.successResultOf(d.createAccount("v@d.dom"))
        self.assertEqual(d.effectiveAccountSettings("v@d.dom")["MaxAccountSize"], "1G")
        self.assertEqual(d.effectiveAccountSettings("u@d.dom")["MaxAccountSize"], "5G")
        self.assertNotIn("ServiceClasses", d.effectiveAccountSettings("u@d.dom"))

    def test_templateCopiedAtCreation(self):
        """The Account Template becomes explicit settings of new accounts."""
        d = self.directory
        self.successResultOf(d.setDomainPart("d.dom", "AccountTemplate", {"RealName": "New"}))
        self.successResultOf(d.createAccount("u@d.dom", settings={"MaxMailboxes": "5"}))
        self.assertEqual(d.getAccountSettings("u@d.dom"),
                         {"RealName": "New", "MaxMailboxes": "5"})

    def test_passwordNeverStoredInClear(self):
        """The default method keeps hash, HA1 and ciphertext, never the password."""
        d = self.directory
        self.successResultOf(d.createAccount("u@d.dom", settings={"Password": "Sup3r-secret"}))
        path = os.path.join(d.storage.base, "Domains/d.dom/Accounts/u.macnt/account.settings")
        with open(path, "rb") as f:
            self.assertNotIn(b"Sup3r-secret", f.read())
        self.assertNotIn("Password", d.getAccountSettings("u@d.dom"))
        self.assertEqual(d.getPassword("u@d.dom"), "Sup3r-secret")
        self.assertEqual(self.successResultOf(d.checkPassword("u@d.dom", "Sup3r-secret")), "u@d.dom")
        self.assertIsNone(self.successResultOf(d.checkPassword("u@d.dom", "wrong")))

    def test_hashedPasswordNotRecoverable(self):
        """With PasswordEncryption=hashed the password cannot be recovered."""
        d = self.directory
        self.successResultOf(d.createAccount(
            "u@d.dom", settings={"PasswordEncryption": "hashed", "Password": "pw"}))
        self.assertIsNone(d.getPassword("u@d.dom"))
        self.assertEqual(self.successResultOf(d.checkPassword("u@d.dom", "pw")), "u@d.dom")
        self.assertIsNotNone(d.digestHA1("u@d.dom", "d.dom", "MD5"))

    def test_clearPasswordOnRequest(self):
        """PasswordEncryption=clear keeps the password as given."""
        d = self.directory
        self.successResultOf(d.createAccount(
            "u@d.dom", settings={"PasswordEncryption": "clear", "Password": "pw"}))
        self.assertEqual(d.getPassword("u@d.dom"), "pw")

    def test_loginByAlias(self):
        """Aliases log in and resolve to the account."""
        d = self.directory
        self.successResultOf(d.createAccount("u@d.dom", settings={"Password": "pw"}))
        self.successResultOf(d.setAccountAliases("u@d.dom", ["323"]))
        self.assertEqual(self.successResultOf(d.checkPassword("323@d.dom", "pw")), "u@d.dom")
        self.assertEqual(d.findObject("323@d.dom"), ("account", "u@d.dom", None))

    def test_renameAccountMovesAliases(self):
        """Renaming keeps aliases, telnums and the password."""
        d = self.directory
        self.successResultOf(d.createAccount("u@d.dom", settings={"Password": "pw"}))
        self.successResultOf(d.setAccountAliases("u@d.dom", ["323"]))
        self.successResultOf(d.setAccountTelnums("u@d.dom", ["+14155551234"]))
        self.successResultOf(d.renameAccount("u@d.dom", "v"))
        self.assertEqual(d.getAccountAliases("v@d.dom"), ["323"])
        self.assertEqual(d.findTelnum("+14155551234"), "v@d.dom")
        self.assertEqual(d.getPassword("v@d.dom"), "pw")
        self.assertRaises(UnknownObject, d.getAccountSettings, "u@d.dom")
        again = reopen(self, d)
        self.assertEqual(again.getAccountAliases("v@d.dom"), ["323"])

    def test_deleteAccountDropsAliases(self):
        """Deleting removes the folder, aliases and telnums."""
        d = self.directory
        self.successResultOf(d.createAccount("u@d.dom"))
        self.successResultOf(d.setAccountAliases("u@d.dom", ["323"]))
        self.successResultOf(d.setAccountTelnums("u@d.dom", ["555"]))
        self.successResultOf(d.deleteAccount("u@d.dom"))
        self.assertIsNone(d.findObject("323@d.dom"))
        self.assertIsNone(d.findTelnum("555"))
        self.assertEqual(reopen(self, d).listAccounts("d.dom"), {})

    def test_telnumTakenElsewhere(self):
        """A telnum belongs to one account."""
        d = self.directory
        self.successResultOf(d.createAccount("u@d.dom"))
        self.successResultOf(d.createAccount("v@d.dom"))
        self.successResultOf(d.setAccountTelnums("u@d.dom", ["555"]))
        self.assertRaises(NameTaken, d.setAccountTelnums, "v@d.dom", ["555"])

    def test_rights(self):
        """Only known rights; server rights only in the Main Domain."""
        d = self.directory
        self.successResultOf(d.createAccount("u@d.dom"))
        self.assertRaises(CLIError, d.setAccountRights, "u@d.dom", ["Bogus"])
        self.assertRaises(CLIError, d.setAccountRights, "u@d.dom", ["Master"])
        self.successResultOf(d.setAccountRights("u@d.dom", ["Domain", "CanCreateAccounts"]))
        self.assertEqual(d.rightsOf("u@d.dom"), {"Domain", "CanCreateAccounts"})

    def test_accountsLimit(self):
        """AccountsLimit caps the number of accounts in a domain."""
        d = self.directory
        self.successResultOf(d.setDomainPart("d.dom", "Settings", {"AccountsLimit": "1"}))
        self.successResultOf(d.createAccount("u@d.dom"))
        self.assertRaises(CLIError, d.createAccount, "v@d.dom")

    def test_storageFailureRollsBack(self):
        """When storage fails the change is undone and an error reported."""
        d = self.directory
        d.storage.createAccount = lambda *a: fail(OSError(28, "No space left on device"))
        failure = self.failureResultOf(d.createAccount("u@d.dom"), CLIError)
        self.assertIn("storage", failure.getErrorMessage())
        self.assertNotIn("u", d.listAccounts("d.dom"))
        self.flushLoggedErrors(OSError)

    def test_cacheEviction(self):
        """Records evicted from the cache are read back from disk."""
        d = self.directory
        d.cacheSize = 2
        for i in range(5):
            self.successResultOf(d.createAccount("u%d@d.dom" % i, settings={"RealName": str(i)}))
        self.assertEqual(d.getAccountSettings("u0@d.dom"), {"RealName": "0"})
        self.assertLessEqual(len(d._accountCache), 2)


class ObjectTests(SynchronousTestCase):
    """
    Forwarders and groups.
    """

    def setUp(self):
        self.directory = makeDirectory(self)

    def test_forwarders(self):
        """Create, get, find, rename and delete a forwarder."""
        d = self.directory
        self.successResultOf(d.createForwarder("jim", "john@other.dom"))
        self.assertEqual(d.getForwarder("jim"), "john@other.dom")
        self.assertEqual(d.findObject("jim@main.dom"), ("forwarder", "jim@main.dom", "john@other.dom"))
        self.assertEqual(d.findForwarders("main.dom", "JOHN@other.dom"), ["jim"])
        self.successResultOf(d.renameForwarder("jim", "jimmy"))
        self.assertEqual(d.listForwarders(), ["jimmy"])
        self.successResultOf(d.deleteForwarder("jimmy"))
        self.assertEqual(reopen(self, d).listForwarders(), [])

    def test_groups(self):
        """Create, set, rename and delete a group; Members must be an array."""
        d = self.directory
        self.successResultOf(d.createGroup("sales", {"Members": ["a", "b@x.com"], "RealName": "S"}))
        self.assertRaises(CLIError, d.setGroup, "sales", {"Members": "a"})
        self.successResultOf(d.setGroup("sales", {"Members": ["c"]}))
        self.assertEqual(d.getGroup("sales"), {"Members": ["c"]})
        self.successResultOf(d.renameGroup("sales", "team"))
        self.assertEqual(reopen(self, d).getGroup("team"), {"Members": ["c"]})
        self.successResultOf(d.deleteGroup("team"))
        self.assertRaises(UnknownObject, d.getGroup, "team")


class LoginCacheTests(SynchronousTestCase):
    """
    Successful password checks are remembered for LoginCacheTime.
    """

    def setUp(self):
        self.directory = makeDirectory(self)
        self.successResultOf(self.directory.createAccount("u", settings={"Password": "pw"}))
        self.calls = []
        verify = self.directory.vault.verify
        self.directory.vault.verify = lambda r, p: (self.calls.append(p), verify(r, p))[1]

    def test_secondLoginCached(self):
        """The second right login skips the slow hash; a wrong one is still checked."""
        d = self.directory
        self.assertEqual(self.successResultOf(d.checkPassword("u", "pw")), "u@main.dom")
        self.assertEqual(self.successResultOf(d.checkPassword("u", "pw")), "u@main.dom")
        self.assertEqual(self.calls, ["pw"])
        self.assertIsNone(self.successResultOf(d.checkPassword("u", "bad")))
        self.assertEqual(self.calls, ["pw", "bad"])

    def test_passwordChangeInvalidates(self):
        """After a password change the old password is refused at once."""
        d = self.directory
        self.successResultOf(d.checkPassword("u", "pw"))
        self.successResultOf(d.setPassword("u", "new"))
        self.assertIsNone(self.successResultOf(d.checkPassword("u", "pw")))
        self.assertEqual(self.successResultOf(d.checkPassword("u", "new")), "u@main.dom")

    def test_expires(self):
        """Entries expire after LoginCacheTime; 0 turns the cache off."""
        d = self.directory
        self.successResultOf(d.checkPassword("u", "pw"))
        d.clock.advance(901)
        self.successResultOf(d.checkPassword("u", "pw"))
        self.assertEqual(self.calls, ["pw", "pw"])
        self.successResultOf(d.setServerDict("Main", {"LoginCacheTime": "0"}, update=True))
        self.successResultOf(d.checkPassword("u", "pw"))
        self.successResultOf(d.checkPassword("u", "pw"))
        self.assertEqual(len(self.calls), 4)
