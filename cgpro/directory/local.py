# -*- test-case-name: tests.directory.test_directory -*-
"""
The directory of domains and accounts, held in memory over an
L{IDirectoryStorage}.

What a protocol asks on every message (is this a local domain, what does
this name denote, which rights does this account hold) is answered from
memory: domains, domain aliases, account names, account aliases,
forwarders, groups and telephone numbers are all loaded at start-up.
Account records (settings, password material, rules) are read on first
use and kept in a bounded cache, so 100,000 accounts start in well under a
second and cost memory only for the ones in use.

Every change is applied in memory at once (so the next command sees it),
handed to storage, and the returned L{Deferred} fires when storage says it
is durable.  If storage fails, the in-memory change is rolled back and the
failure propagates, so nothing is acknowledged that was not written.

Account, forwarder and group operations live in the mixins of
L{cgpro.directory.accounts} and L{cgpro.directory.objects}; this module
holds the state, loading, domains and server-wide settings.
"""

import time
from collections import OrderedDict

from twisted.internet.defer import FirstError, gatherResults, maybeDeferred
from twisted.logger import Logger
from zope.interface import implementer

from cgpro.core import names, settings
from cgpro.core.errors import CLIError, NameTaken, UnknownObject
from cgpro.core.interfaces import IDirectory, IRoutingDirectory
from cgpro.core.passwords import PasswordVault
from cgpro.directory.accounts import AccountsMixin
from cgpro.directory.lists import ListsMixin, findList, listNameInUse  # mailing lists
from cgpro.directory.objects import ObjectsMixin

log = Logger()

#: Keys of a domain record (domain.settings) and their empty values.
DOMAIN_KEYS = {
    "Settings": dict,
    "Aliases": list,
    "AccountDefaults": dict,
    "AccountTemplate": dict,
    "AccountAliases": dict,
    "Telnums": dict,
    "Forwarders": dict,
    "Groups": dict,
    "Lists": dict,  # mailing lists: name -> settings (cgpro.directory.lists)
    "MailRules": list,
    "SignalRules": list,
}

#: Server-wide dictionaries kept in Settings/<name>.settings.
SERVER_DICTS = ("Main", "DomainDefaults", "AccountDefaults", "Rules", "Modules", "Listeners")


class _Domain:
    """
    One domain in memory.

    @ivar record: the stored record (see L{DOMAIN_KEYS}).
    @ivar accounts: C{set} of account names.
    """

    __slots__ = ("name", "record", "accounts")

    def __init__(self, name, record, accounts=()):
        self.name = name
        for key, factory in DOMAIN_KEYS.items():
            if not isinstance(record.get(key), factory):
                record[key] = factory()
        self.record = record
        self.accounts = set(accounts)

    def nameInUse(self, name):
        """
        @return: what kind of object already uses C{name}, or C{None}.
        """
        if name in self.accounts:
            return "Account"
        if name in self.record["AccountAliases"]:
            return "Alias"
        if name in self.record["Forwarders"]:
            return "Forwarder"
        if name in self.record["Groups"]:
            return "Group"
        # mailing lists (cgpro.directory.lists): a list also holds <name>-bounces
        if listNameInUse(self.record, name):
            return "List"
        return None

    def objectCount(self):
        r = self.record
        return len(self.accounts) + len(r["Forwarders"]) + len(r["Groups"]) + len(r["Lists"])


# ListsMixin (mailing lists) comes first: it also grants the CanCreateLists right
@implementer(IDirectory, IRoutingDirectory)
class Directory(ListsMixin, AccountsMixin, ObjectsMixin):
    """
    The server's directory.

    @ivar storage: the L{IDirectoryStorage}.
    @ivar vault: the L{PasswordVault} making and checking password records.
    @ivar server: C{dict} of server-wide dictionaries by name.
    @ivar folderObservers: callables C{(domain, name)} told before an
        account folder (C{name}) or a domain's folder (C{name=None}) is
        renamed or removed; the mailbox store closes what it holds there.
    @ivar partObservers: callables C{(account, part)} told after an
        account part (C{"RSIPs"}, C{"SignalRules"}, ...) was stored (the
        PBX reschedules RSIP registrations).
    @ivar infoProviders: callables C{(account) -> dict} whose items
        C{GETACCOUNTINFO} adds (the PBX's C{RSIP} status).
    """

    def __init__(self, storage, vault=None, cacheSize=20000, clock=None):
        if clock is None:
            from twisted.internet import reactor as clock
        self.storage = storage
        self.clock = clock
        self.vault = vault or PasswordVault(storage.settingsDir + "/Server.key")
        self.cacheSize = cacheSize
        self.domains = {}
        self.domainAliases = {}
        self.telnums = {}
        self.server = {}
        self._accountCache = OrderedDict()
        self.folderObservers = []
        self.partObservers = []
        self.infoProviders = []
        # bumped by every change of a server-wide dictionary, so modules can
        # cache their parsed settings and notice a change in O(1)
        self.serverGeneration = 0
        self.load()

    # -- loading ------------------------------------------------------------

    def load(self):
        """
        Read server settings, every domain record and every account name.
        """
        for name in SERVER_DICTS:
            self.server[name] = self.storage.loadServerSettings(name)
        self.domains.clear()
        self.domainAliases.clear()
        self.telnums.clear()
        self._accountCache.clear()
        for name in self.storage.listDomains():
            record = self.storage.loadDomain(name)
            if record is None:
                continue
            domain = _Domain(name, record, self.storage.listAccounts(name))
            self.domains[name] = domain
        for domain in self.domains.values():
            self._indexDomain(domain)

    def _indexDomain(self, domain):
        for alias in domain.record["Aliases"]:
            self.domainAliases[alias] = domain.name
        for number, account in domain.record["Telnums"].items():
            self.telnums[number] = "%s@%s" % (account, domain.name)

    def _unindexDomain(self, domain):
        for alias in domain.record["Aliases"]:
            self.domainAliases.pop(alias, None)
        for number in domain.record["Telnums"]:
            self.telnums.pop(number, None)

    # -- lookups (IRoutingDirectory) ----------------------------------------

    @property
    def mainDomain(self):
        return self.server["Main"].get("DomainName", "")

    def domainFor(self, name):
        if not isinstance(name, str):
            return None
        name = name.lower().rstrip(".")
        if name in self.domains:
            return name
        if name == "localhost":
            return self.mainDomain or None
        return self.domainAliases.get(name)

    def domain(self, name=None, default=None):
        """
        Resolve a domain argument.

        @param name: a domain or domain alias name, or C{None} for
            C{default} (the caller's own domain).
        @raise UnknownObject: if it is not a local domain.
        @return: the L{_Domain}.
        """
        if name is None:
            name = default or self.mainDomain
        canonical = self.domainFor(name)
        if canonical is None:
            raise UnknownObject("unknown domain")
        return self.domains[canonical]

    def findObject(self, address):
        try:
            name, domainName = names.splitAddress(address, self.mainDomain)
        except CLIError:
            return None
        canonical = self.domainFor(domainName)
        if canonical is None:
            return None
        domain = self.domains[canonical]
        target = domain.record["AccountAliases"].get(name)
        if target is not None:
            name = target
        if name in domain.accounts:
            return ("account", "%s@%s" % (name, canonical), None)
        if name in domain.record["Forwarders"]:
            return ("forwarder", "%s@%s" % (name, canonical), domain.record["Forwarders"][name])
        if name in domain.record["Groups"]:
            return ("group", "%s@%s" % (name, canonical), domain.record["Groups"][name])
        # mailing lists (cgpro.directory.lists): "list" for a list or its -bounces address
        return findList(domain.record, name, canonical)

    def findTelnum(self, number):
        return self.telnums.get(number)

    def effectiveDomainSettings(self, domain):
        d = self.domain(domain)
        return settings.effectiveDomain(d.record["Settings"], self.server["DomainDefaults"])

    # -- helpers for changes ------------------------------------------------

    def _commit(self, deferreds, rollback):
        """
        Wait for storage writes; undo the in-memory change if one fails.

        @param deferreds: a L{Deferred} or a list of them.
        @param rollback: a callable restoring the previous in-memory state.
        @return: a L{Deferred} firing with C{None}.
        """
        if isinstance(deferreds, list):
            d = gatherResults(deferreds, consumeErrors=True)
        else:
            d = deferreds

        def failed(failure):
            if failure.check(FirstError):
                failure = failure.value.subFailure
            log.failure("storage write failed; change rolled back", failure)
            rollback()
            raise CLIError("internal storage error, change not applied")

        d.addCallbacks(lambda _: None, failed)
        return d

    def _saveDomain(self, domain, rollbackRecord):
        """
        Store a domain's record after an in-memory change.

        @param rollbackRecord: a copy of the record before the change.
        """
        old = rollbackRecord

        def rollback():
            self._unindexDomain(domain)
            domain.record = old
            self._indexDomain(domain)

        return self._commit(self.storage.saveDomain(domain.name, domain.record), rollback)

    @staticmethod
    def _copyRecord(record):
        return {k: (v.copy() if isinstance(v, (dict, list)) else v) for k, v in record.items()}

    # -- server-wide dictionaries -------------------------------------------

    def getServerDict(self, name):
        """
        @param name: one of L{SERVER_DICTS}.
        @return: a copy of the stored dictionary.
        """
        return dict(self.server[name])

    def setServerDict(self, name, value, update=False):
        """
        Replace (or, with C{update}, merge into) a server-wide dictionary.

        @return: L{Deferred} firing once durable.
        """
        if not isinstance(value, dict):
            raise CLIError("settings must be a dictionary")
        old = self.server[name]
        new = settings.applyUpdate(old, value) if update else dict(value)
        self.server[name] = new
        self.serverGeneration += 1

        def rollback():
            self.server[name] = old
            self.serverGeneration += 1

        return self._commit(self.storage.saveServerSettings(name, new), rollback)

    def effectiveServerSettings(self):
        return settings.effectiveServer(self.server["Main"])

    # -- domains --------------------------------------------------------------

    def listDomains(self):
        return sorted(self.domains)

    def createDomain(self, name, domainSettings=None):
        """
        Create a secondary domain.

        @raise NameTaken: if the name is a domain or a domain alias already.
        """
        name = names.domainName(name)
        if name in self.domains or name in self.domainAliases or name == "localhost":
            raise NameTaken("Domain with this name already exists")
        if domainSettings is not None and not isinstance(domainSettings, dict):
            raise CLIError("domain settings must be a dictionary")
        record = {"Settings": dict(domainSettings or {})}
        domain = _Domain(name, record)
        self.domains[name] = domain

        def rollback():
            self.domains.pop(name, None)

        return self._commit(self.storage.createDomain(name, domain.record), rollback)

    def deleteDomain(self, name, force=False):
        domain = self.domain(name)
        if domain.name == self.mainDomain:
            raise CLIError("the Main Domain cannot be deleted")
        if domain.objectCount() and not force:
            raise CLIError("Domain is not empty")
        self._folderMoving(domain.name)
        del self.domains[domain.name]
        self._unindexDomain(domain)
        self._forgetAccounts(domain.name)

        def rollback():
            self.domains[domain.name] = domain
            self._indexDomain(domain)

        return self._commit(self.storage.deleteDomain(domain.name), rollback)

    def renameDomain(self, old, new):
        domain = self.domain(old)
        new = names.domainName(new)
        if new in self.domains or new in self.domainAliases or new == "localhost":
            raise NameTaken("Domain with this name already exists")
        oldName = domain.name
        isMain = oldName == self.mainDomain
        self._folderMoving(oldName)
        self._unindexDomain(domain)
        del self.domains[oldName]
        domain.name = new
        self.domains[new] = domain
        self._indexDomain(domain)
        self._forgetAccounts(oldName)
        writes = [self.storage.renameDomain(oldName, new)]
        oldMain = self.server["Main"]
        if isMain:
            self.server["Main"] = dict(oldMain, DomainName=new)
            writes.append(self.storage.saveServerSettings("Main", self.server["Main"]))

        def rollback():
            self._unindexDomain(domain)
            del self.domains[new]
            domain.name = oldName
            self.domains[oldName] = domain
            self._indexDomain(domain)
            self.server["Main"] = oldMain

        return self._commit(writes, rollback)

    def getDomainPart(self, name, key):
        """
        @return: a copy of one part of a domain record (C{"Settings"},
            C{"AccountDefaults"}, C{"Aliases"}, C{"MailRules"}, ...).
        """
        value = self.domain(name).record[key]
        return value.copy()

    def setDomainPart(self, name, key, value, update=False):
        """
        Replace (or merge into, for dictionaries with C{update}) one part of
        a domain record.

        @return: L{Deferred} firing once durable.
        """
        domain = self.domain(name)
        factory = DOMAIN_KEYS[key]
        if not isinstance(value, factory):
            raise CLIError(
                "%s must be %s" % (key, "a dictionary" if factory is dict else "an array")
            )
        if key == "Aliases":
            value = self._checkDomainAliases(domain, value)
        old = self._copyRecord(domain.record)
        self._unindexDomain(domain)
        if update:
            domain.record[key] = settings.applyUpdate(domain.record[key], value)
        else:
            domain.record[key] = value
        self._indexDomain(domain)
        return self._saveDomain(domain, old)

    def _checkDomainAliases(self, domain, aliases):
        result = []
        for alias in aliases:
            alias = names.domainName(alias)
            owner = self.domainAliases.get(alias)
            if alias in self.domains or (owner is not None and owner != domain.name):
                raise NameTaken("Domain with this name already exists: %s" % (alias,))
            if alias not in result:
                result.append(alias)
        return result

    # -- account cache ------------------------------------------------------

    def _folderMoving(self, domainName, name=None):
        """
        Tell the observers (the mailbox store) that an account folder, or a
        whole domain's with C{name=None}, is about to be renamed or
        removed, so they drop open state that points into it.
        """
        for observer in self.folderObservers:
            try:
                observer(domainName, name)
            except Exception:
                log.failure("folder observer failed")

    def _forgetAccounts(self, domainName):
        for key in [k for k in self._accountCache if k[0] == domainName]:
            del self._accountCache[key]

    def now(self):
        """
        @return: the current time as a naive UTC C{datetime} (for records).
        """
        import datetime

        return datetime.datetime.fromtimestamp(
            int(self.clock.seconds()), datetime.timezone.utc
        ).replace(tzinfo=None)


def initialize(directory, mainDomain, postmasterPassword):
    """
    First start: create the Main Domain with C{postmaster} (the server
    administrator, right C{Master}) and C{pbx} (the PBX Center account,
    aliases C{200} and C{conference}, a Signal rule sending every call to
    the C{pbx} application).  Does nothing when a Main Domain exists.

    @return: L{Deferred} firing with C{True} if the server was initialized.
    """
    if directory.mainDomain and directory.mainDomain in directory.domains:
        return maybeDeferred(lambda: False)
    mainDomain = names.domainName(mainDomain)
    started = time.time()

    def steps():
        if mainDomain not in directory.domains:
            yield directory.createDomain(mainDomain)
        yield directory.setServerDict("Main", {"DomainName": mainDomain}, update=True)
        yield directory.createAccount(
            "postmaster@" + mainDomain, settings={"Password": postmasterPassword}
        )
        yield directory.setAccountRights("postmaster@" + mainDomain, ["Master"])
        yield directory.createAccount("pbx@" + mainDomain, settings={"RealName": "PBX Center"})
        yield directory.setAccountAliases("pbx@" + mainDomain, ["200", "conference"])
        yield directory.setAccountRights("pbx@" + mainDomain, ["Domain", "CanImpersonate"])
        yield directory.setAccountPart(
            "pbx@" + mainDomain,
            "SignalRules",
            [["100005", "#Divert", [], [["Redirect to", "pbx"]]]],
        )

    from twisted.internet.defer import inlineCallbacks

    @inlineCallbacks
    def run():
        for d in steps():
            yield d
        log.info(
            "initialized Main Domain {domain} in {t:.3f}s", domain=mainDomain, t=time.time() - started
        )
        return True

    return run()
