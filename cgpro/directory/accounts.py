# -*- test-case-name: tests.directory.test_directory -*-
"""
Account operations of the L{Directory}.

An account record (C{account.settings}) holds the account's type, its
explicit settings, its password record (L{cgpro.core.passwords}), its
access rights, mail and signal rules and RSIP records.  Account aliases and
telephone numbers are kept in the domain record instead, so that every name
of a domain is known without reading 100,000 account files.

The C{Password} key of a settings dictionary given to CREATEACCOUNT,
UPDATEACCOUNTSETTINGS or SETACCOUNTSETTINGS never lands among the explicit
settings: it is turned into a password record by the account's effective
C{PasswordEncryption} method.  The PBKDF2 work runs in a thread so the
reactor keeps serving while a password is hashed.
"""

import hashlib
import hmac
from collections import OrderedDict

from twisted.internet.defer import inlineCallbacks, succeed
from twisted.internet.threads import deferToThread
from twisted.logger import Logger

from cgpro.core import names, settings
from cgpro.core.dataformat import parseDuration
from cgpro.core.errors import CLIError, NameTaken, UnknownObject
from cgpro.core.passwords import methodName

log = Logger()

ACCOUNT_TYPES = {
    "multimailbox": "MultiMailbox",
    "textmailbox": "MultiMailbox",
    "maildirmailbox": "MultiMailbox",
    "slicedmailbox": "MultiMailbox",
    "agrade": "AGrade",
    "bgrade": "BGrade",
    "cgrade": "CGrade",
    "dgrade": "DGrade",
}

#: Parts of an account record and their empty values.
ACCOUNT_PARTS = {
    "Settings": dict,
    "Rights": list,
    "MailRules": list,
    "SignalRules": list,
    "RSIPs": dict,
}

#: Access rights an account may be granted (objects.md section 8).
KNOWN_RIGHTS = frozenset(
    [
        "Master",
        "Settings",
        "DomainsRead",
        "AllDomains",
        "Monitors",
        "Directory",
        "Domain",
        "CanCreateAccounts",
        "CanCreateAliases",
        "CanCreateForwarders",
        "CanCreateGroups",
        "CanCreateLists",
        "CanImpersonate",
        "BasicSettings",
        "PSTNSettings",
        "RSIPSettings",
        "CanCreateNamedTasks",
        "CanAccessWebSites",
        "CallInpLimits",
        "CallOutLimits",
        "CallLimits",
        "StorageLimits",
        "FilesLimits",
    ]
)
SERVER_RIGHTS = frozenset(["Master", "Settings", "DomainsRead", "AllDomains", "Monitors", "Directory"])


class AccountsMixin:
    """
    Account methods; mixed into L{cgpro.directory.local.Directory}.

    @ivar runHash: how password hashing is run: C{deferToThread} by
        default; unit tests replace it with C{maybeDeferred}.
    """

    runHash = staticmethod(deferToThread)

    # -- resolution ---------------------------------------------------------

    def account(self, address, defaultDomain=None):
        """
        Resolve an account argument (real name, not an alias).

        @param defaultDomain: the domain of a bare name (the caller's own);
            the Main Domain when C{None}.
        @return: C{(domain, name)} of L{_Domain} and canonical name.
        @raise UnknownObject: if there is no such account.
        """
        name, domainName = names.splitAddress(address, defaultDomain or self.mainDomain)
        domain = self.domain(domainName)
        if name not in domain.accounts:
            raise UnknownObject("unknown account")
        return domain, name

    def resolveLogin(self, login):
        """
        Resolve a login name (account name or alias, with or without the
        domain) to the canonical C{name@domain}, or C{None}.
        """
        found = self.findObject(login)
        if found is None or found[0] != "account":
            return None
        return found[1]

    def loadRecord(self, domain, name):
        """
        @return: the account record, read through the cache.
        """
        key = (domain.name, name)
        cache = self._accountCache
        record = cache.get(key)
        if record is not None:
            cache.move_to_end(key)
            return record
        record = self.storage.loadAccount(domain.name, name) or {}
        for part, factory in ACCOUNT_PARTS.items():
            if not isinstance(record.get(part), factory):
                record[part] = factory()
        self._cachePut(key, record)
        return record

    def _cachePut(self, key, record):
        """
        Keep a record in the bounded cache.  Evicting a record whose write
        is still in flight is safe: storage answers reads of pending writes.
        """
        cache = self._accountCache
        cache[key] = record
        cache.move_to_end(key)
        while len(cache) > self.cacheSize:
            cache.popitem(last=False)

    def _storeRecord(self, domain, name, record, old):
        key = (domain.name, name)
        self._cachePut(key, record)

        def rollback():
            self._cachePut(key, old)

        return self._commit(self.storage.saveAccount(domain.name, name, record), rollback)

    def _fullName(self, domain, name):
        return "%s@%s" % (name, domain.name)

    # -- create / rename / delete -------------------------------------------

    def listAccounts(self, domainName=None):
        """
        @return: C{dict} account name -> type tag (C{macnt}).
        """
        domain = self.domain(domainName)
        return {name: "macnt" for name in sorted(domain.accounts)}

    def createAccount(self, address, accountType=None, settings=None, defaultDomain=None):
        """
        Create an account; its initial settings are the domain's Account
        Template plus C{settings}.

        @return: L{Deferred} firing once durable.
        """
        name, domainName = names.splitAddress(address, defaultDomain or self.mainDomain)
        domain = self.domain(domainName)
        kind = domain.nameInUse(name)
        if kind is not None:
            raise NameTaken("%s with this name already exists" % (kind,))
        typeName = ACCOUNT_TYPES.get(str(accountType or "MultiMailbox").lower())
        if typeName is None:
            raise CLIError("unknown account type: %s" % (accountType,))
        if settings is not None and not isinstance(settings, dict):
            raise CLIError("account settings must be a dictionary")
        limit = self.effectiveDomainSettings(domain.name).get("AccountsLimit", "-1")
        if _limit(limit) is not None and len(domain.accounts) >= _limit(limit):
            raise CLIError("too many accounts in this domain")
        initial = dict(domain.record["AccountTemplate"])
        initial.update(settings or {})
        password = initial.pop("Password", None)
        record = {
            "Type": typeName,
            "Settings": initial,
            "Created": self.now(),
        }
        for part, factory in ACCOUNT_PARTS.items():
            record.setdefault(part, factory())
        domain.accounts.add(name)
        key = (domain.name, name)
        self._cachePut(key, record)

        def rollback():
            domain.accounts.discard(name)
            self._accountCache.pop(key, None)

        if password is None:
            return self._commit(self.storage.createAccount(domain.name, name, record), rollback)

        @inlineCallbacks
        def create():
            try:
                record["Password"] = yield self._makePassword(domain, name, record, password)
            except Exception:
                rollback()
                raise
            yield self._commit(self.storage.createAccount(domain.name, name, record), rollback)

        return create()

    def renameAccount(self, old, new, defaultDomain=None):
        domain, oldName = self.account(old, defaultDomain)
        newName, newDomain = names.splitAddress(new, domain.name)
        if self.domainFor(newDomain) != domain.name:
            raise CLIError("accounts can be renamed only within their domain")
        kind = domain.nameInUse(newName)
        if kind is not None:
            raise NameTaken("%s with this name already exists" % (kind,))
        record = self.loadRecord(domain, oldName)
        self._folderMoving(domain.name, oldName)
        oldDomainRecord = self._copyRecord(domain.record)
        domain.accounts.discard(oldName)
        domain.accounts.add(newName)
        self._accountCache.pop((domain.name, oldName), None)
        self._cachePut((domain.name, newName), record)
        changed = self._retarget(domain, oldName, newName)
        writes = [self.storage.renameAccount(domain.name, oldName, newName)]
        if changed:
            writes.append(self.storage.saveDomain(domain.name, domain.record))

        def rollback():
            domain.accounts.discard(newName)
            domain.accounts.add(oldName)
            self._accountCache.pop((domain.name, newName), None)
            self._unindexDomain(domain)
            domain.record = oldDomainRecord
            self._indexDomain(domain)

        return self._commit(writes, rollback)

    def _retarget(self, domain, oldName, newName):
        """
        Point the aliases and telephone numbers of an account at its new
        name (C{None}: drop them).

        @return: C{True} if the domain record changed.
        """
        changed = False
        self._unindexDomain(domain)
        for table in ("AccountAliases", "Telnums"):
            entries = domain.record[table]
            for key in [k for k, v in entries.items() if v == oldName]:
                changed = True
                if newName is None:
                    del entries[key]
                else:
                    entries[key] = newName
        self._indexDomain(domain)
        return changed

    def deleteAccount(self, address, defaultDomain=None):
        domain, name = self.account(address, defaultDomain)
        self._folderMoving(domain.name, name)
        oldDomainRecord = self._copyRecord(domain.record)
        record = self._accountCache.pop((domain.name, name), None)
        domain.accounts.discard(name)
        writes = []
        if self._retarget(domain, name, None):
            writes.append(self.storage.saveDomain(domain.name, domain.record))
        writes.append(self.storage.deleteAccount(domain.name, name))

        def rollback():
            domain.accounts.add(name)
            if record is not None:
                self._accountCache[(domain.name, name)] = record
            self._unindexDomain(domain)
            domain.record = oldDomainRecord
            self._indexDomain(domain)

        return self._commit(writes, rollback)

    # -- settings -----------------------------------------------------------

    def getAccountSettings(self, address, defaultDomain=None):
        """
        @return: the explicit settings (a copy).
        """
        domain, name = self.account(address, defaultDomain)
        return dict(self.loadRecord(domain, name)["Settings"])

    def effectiveAccountSettings(self, address, defaultDomain=None):
        domain, name = self.account(address, defaultDomain)
        explicit = self.loadRecord(domain, name)["Settings"]
        return settings.effectiveAccount(
            explicit, domain.record["AccountDefaults"], self.server["AccountDefaults"]
        )

    def setAccountSettings(self, address, value, update=False, defaultDomain=None):
        """
        Replace (or merge into, with C{update}) the explicit settings.  A
        C{Password} key sets the password.

        @return: L{Deferred} firing once durable.
        """
        if not isinstance(value, dict):
            raise CLIError("account settings must be a dictionary")
        domain, name = self.account(address, defaultDomain)
        old = self.loadRecord(domain, name)
        value = dict(value)
        password = value.pop("Password", None)
        new = dict(old)
        new["Settings"] = (
            settings.applyUpdate(old["Settings"], value) if update else dict(value)
        )

        @inlineCallbacks
        def apply():
            if password is not None and not (
                isinstance(password, str) and password.lower() == settings.DEFAULT_MARK
            ):
                new["Password"] = yield self._makePassword(domain, name, new, password)
            yield self._storeRecord(domain, name, new, old)

        return apply()

    def setAccountPart(self, address, part, value, defaultDomain=None):
        """
        Replace one part of an account record (C{"Rights"},
        C{"MailRules"}, C{"SignalRules"}, C{"RSIPs"}).
        """
        factory = ACCOUNT_PARTS[part]
        if not isinstance(value, factory):
            raise CLIError(
                "%s must be %s" % (part, "a dictionary" if factory is dict else "an array")
            )
        domain, name = self.account(address, defaultDomain)
        old = self.loadRecord(domain, name)
        new = dict(old)
        new[part] = value
        result = self._storeRecord(domain, name, new, old)
        account = "%s@%s" % (name, domain.name)
        for observer in getattr(self, "partObservers", ()):
            try:
                observer(account, part)
            except Exception:
                log.failure("account part observer failed")
        return result

    def getAccountPart(self, address, part, defaultDomain=None):
        domain, name = self.account(address, defaultDomain)
        return self.loadRecord(domain, name)[part].copy()

    def accountType(self, address, defaultDomain=None):
        domain, name = self.account(address, defaultDomain)
        return self.loadRecord(domain, name).get("Type", "MultiMailbox")

    # -- rights ---------------------------------------------------------------

    def setAccountRights(self, address, rights, defaultDomain=None):
        if not isinstance(rights, list) or not all(isinstance(r, str) for r in rights):
            raise CLIError("rights must be an array of names")
        domain, name = self.account(address, defaultDomain)
        unknown = [r for r in rights if r not in KNOWN_RIGHTS]
        if unknown:
            raise CLIError("unknown access right: %s" % (unknown[0],))
        if domain.name != self.mainDomain and SERVER_RIGHTS.intersection(rights):
            raise CLIError("server rights can be granted only in the Main Domain")
        return self.setAccountPart(self._fullName(domain, name), "Rights", list(rights))

    def rightsOf(self, address):
        found = self.resolveLogin(address)
        if found is None:
            return set()
        domain, name = self.account(found)
        return set(self.loadRecord(domain, name)["Rights"])

    # -- aliases and telephone numbers --------------------------------------

    def getAccountAliases(self, address, defaultDomain=None):
        domain, name = self.account(address, defaultDomain)
        return sorted(a for a, n in domain.record["AccountAliases"].items() if n == name)

    def setAccountAliases(self, address, aliases, defaultDomain=None):
        if not isinstance(aliases, list):
            raise CLIError("aliases must be an array")
        domain, name = self.account(address, defaultDomain)
        wanted = []
        for alias in aliases:
            alias = names.objectName(alias)
            owner = domain.record["AccountAliases"].get(alias)
            if owner == name:
                wanted.append(alias)
                continue
            kind = domain.nameInUse(alias)
            if kind is not None:
                raise NameTaken("%s with this name already exists: %s" % (kind, alias))
            wanted.append(alias)
        old = self._copyRecord(domain.record)
        table = {a: n for a, n in domain.record["AccountAliases"].items() if n != name}
        table.update({a: name for a in wanted})
        domain.record["AccountAliases"] = table
        return self._saveDomain(domain, old)

    def getAccountTelnums(self, address, defaultDomain=None):
        domain, name = self.account(address, defaultDomain)
        return sorted(t for t, n in domain.record["Telnums"].items() if n == name)

    def setAccountTelnums(self, address, numbers, defaultDomain=None):
        if not isinstance(numbers, list) or not all(isinstance(n, str) and n for n in numbers):
            raise CLIError("telnums must be an array of strings")
        domain, name = self.account(address, defaultDomain)
        full = self._fullName(domain, name)
        for number in numbers:
            owner = self.telnums.get(number)
            if owner is not None and owner != full:
                raise NameTaken("telnum %s is already assigned" % (number,))
        old = self._copyRecord(domain.record)
        self._unindexDomain(domain)
        table = {t: n for t, n in domain.record["Telnums"].items() if n != name}
        table.update({t: name for t in numbers})
        domain.record["Telnums"] = table
        self._indexDomain(domain)
        return self._saveDomain(domain, old)

    # -- passwords ------------------------------------------------------------

    def _makePassword(self, domain, name, record, password):
        if not isinstance(password, str):
            raise CLIError("password must be a string")
        method = settings.effectiveAccount(
            record["Settings"], domain.record["AccountDefaults"], self.server["AccountDefaults"]
        ).get("PasswordEncryption")
        try:
            methodName(method)
        except ValueError as e:
            raise CLIError(str(e))
        return self.runHash(self.vault.makeRecord, password, method, name, domain.name)

    def setPassword(self, address, password, defaultDomain=None):
        """
        @return: L{Deferred} firing once the new password record is durable.
        """
        return self.setAccountSettings(
            address, {"Password": password}, update=True, defaultDomain=defaultDomain
        )

    def checkPassword(self, address, password):
        """
        @return: L{Deferred} firing with the canonical address or C{None}.
        """
        full = self.resolveLogin(address)
        if full is None or not isinstance(password, str):
            # hash anyway, so that timing does not reveal unknown names
            return self.runHash(self.vault.verify, {"Hash": _DUMMY_HASH}, "x").addCallback(
                lambda _: None
            )
        domain, name = self.account(full)
        record = self.loadRecord(domain, name).get("Password")
        if not record:
            return succeed(None)
        cache = self._loginCache()
        if cache is not None and cache.hit(full, record, password):
            return succeed(full)

        def verified(ok):
            if not ok:
                return None
            if cache is not None:
                cache.remember(full, record, password)
            return full

        return self.runHash(self.vault.verify, record, password).addCallback(verified)

    def _loginCache(self):
        """
        @return: the L{LoginCache}, or C{None} when the server setting
            C{LoginCacheTime} is 0.
        """
        seconds = self.effectiveServerSettings().get("LoginCacheTime", "15m")
        try:
            seconds = parseDuration(seconds) or 0
        except ValueError:
            seconds = 0
        if seconds <= 0:
            return None
        cache = getattr(self, "_loginCacheObject", None)
        if cache is None:
            cache = self._loginCacheObject = LoginCache(self.clock, self.vault.keyDigest)
        cache.ttl = seconds
        return cache

    def getPassword(self, address):
        full = self.resolveLogin(address)
        if full is None:
            return None
        domain, name = self.account(full)
        return self.vault.recover(self.loadRecord(domain, name).get("Password"))

    def digestHA1(self, address, realm, algorithm="MD5"):
        full = self.resolveLogin(address)
        if full is None:
            return None
        domain, name = self.account(full)
        user = address.split("@")[0].lower()
        return self.vault.ha1(self.loadRecord(domain, name).get("Password"), user, realm, algorithm)

    def passwordMethod(self, address):
        """
        @return: the method the account's password is stored with, or
            C{None} if it has no password.
        """
        domain, name = self.account(address)
        record = self.loadRecord(domain, name).get("Password")
        return record.get("Method") if record else None

    def accountInfo(self, address, defaultDomain=None):
        """
        @return: the GETACCOUNTINFO dictionary.
        """
        domain, name = self.account(address, defaultDomain)
        record = self.loadRecord(domain, name)
        info = {"Type": record.get("Type", "MultiMailbox"), "StorageUsed": 0}
        if "Created" in record:
            info["Created"] = record["Created"]
        account = "%s@%s" % (name, domain.name)
        for provider in getattr(self, "infoProviders", ()):
            try:
                info.update(provider(account) or {})
            except Exception:
                log.failure("account info provider failed")
        return info


class LoginCache:
    """
    Successful plain-password checks remembered for a while, as Dovecot's
    auth cache does: the PBKDF2 check is slow on purpose (about 40 ms), and
    mail clients log in again and again with the same password.

    Only an HMAC of the password under a key derived from the server key is
    kept, never the password; an entry counts only while the account's
    stored hash is the one it was made against, so a password change
    invalidates it at once.  Failures are never cached.

    @ivar ttl: seconds an entry lives.
    """

    def __init__(self, clock, key, maxEntries=100000):
        self.clock = clock
        self.key = key
        self.ttl = 900
        self.maxEntries = maxEntries
        self._entries = OrderedDict()

    def _digest(self, password):
        return hmac.new(self.key, password.encode("utf-8", "surrogateescape"),
                        hashlib.sha256).digest()

    def hit(self, account, record, password):
        entry = self._entries.get(account)
        if entry is None:
            return False
        digest, stored, expires = entry
        if expires < self.clock.seconds() or stored != record.get("Hash", record.get("Clear")):
            del self._entries[account]
            return False
        return hmac.compare_digest(digest, self._digest(password))

    def remember(self, account, record, password):
        self._entries[account] = (self._digest(password), record.get("Hash", record.get("Clear")),
                                  self.clock.seconds() + self.ttl)
        self._entries.move_to_end(account)
        while len(self._entries) > self.maxEntries:
            self._entries.popitem(last=False)


#: A valid hash of a random password, checked for unknown login names.
_DUMMY_HASH = "pbkdf2-sha256$100000$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


def _limit(value):
    """
    @return: an C{int} limit, or C{None} for unlimited.
    """
    try:
        n = int(value)
    except (TypeError, ValueError):
        return None
    return None if n < 0 else n

