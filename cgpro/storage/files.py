# -*- test-case-name: tests.directory.test_storage -*-
"""
The directory kept in files under the base folder, as CommuniGate keeps it.

Layout (every C{.settings} file is one data-format dictionary a person can
read and edit while the server is stopped)::

    Settings/Main.settings            server settings (DomainName, ...)
    Settings/<Name>.settings          other server-wide dictionaries
    Settings/Router.table             the Router table, one record a line
    Settings/Server.key               key for recoverable passwords (0600)
    Domains/<domain>/domain.settings  a domain's record
    Domains/<domain>/Accounts/<name>.macnt/account.settings

Account names are found by listing the C{Accounts} folder, without reading
any account file, so a domain of 100,000 accounts is loaded in a fraction
of a second and account records are read on demand.

Every change goes through one L{DurableWriter}: its L{Deferred} fires once
the change is on stable storage.
"""

import os

from zope.interface import implementer

from cgpro.core import dataformat
from cgpro.core.files import DurableWriter
from cgpro.core.interfaces import IDirectoryStorage

ACCOUNT_SUFFIX = ".macnt"
ACCOUNT_FILE = "account.settings"
DOMAIN_FILE = "domain.settings"


class StorageError(Exception):
    """A stored file that cannot be read (damaged by hand editing)."""


@implementer(IDirectoryStorage)
class FileDirectoryStorage:
    """
    L{IDirectoryStorage} over a base folder.

    @ivar base: the base folder (absolute path).
    @ivar writer: the L{DurableWriter} carrying every change.
    """

    def __init__(self, base, writer=None, reactor=None):
        self.base = os.path.abspath(base)
        self.settingsDir = os.path.join(self.base, "Settings")
        self.domainsDir = os.path.join(self.base, "Domains")
        for folder in (self.base, self.settingsDir, self.domainsDir):
            os.makedirs(folder, exist_ok=True)
        self.writer = writer or DurableWriter(self.base, reactor=reactor)

    # -- helpers ------------------------------------------------------------

    def _load(self, path, default):
        data = self.writer.read(path)
        if data is None:
            return default
        try:
            return dataformat.loads(data)
        except dataformat.DataFormatError as e:
            raise StorageError("%s: %s" % (path, e))

    def _save(self, path, obj, makeFolder=False):
        # Empty parts ({} and ()) are left out: the loaders fill them in, and
        # a person reading the file sees only what was set.
        obj = {k: v for k, v in obj.items() if v != {} and v != []}
        return self.writer.write(
            path, dataformat.dumpsFile(obj).encode("utf-8"), makeFolder=makeFolder
        )

    def _domainDir(self, domain):
        return os.path.join(self.domainsDir, domain)

    def _accountDir(self, domain, name):
        return os.path.join(self.domainsDir, domain, "Accounts", name + ACCOUNT_SUFFIX)

    # -- server -------------------------------------------------------------

    def loadServerSettings(self, name):
        result = self._load(os.path.join(self.settingsDir, name + ".settings"), {})
        if not isinstance(result, dict):
            raise StorageError("Settings/%s.settings is not a dictionary" % (name,))
        return result

    def saveServerSettings(self, name, settings):
        return self._save(os.path.join(self.settingsDir, name + ".settings"), settings)

    def loadText(self, name):
        data = self.writer.read(os.path.join(self.settingsDir, name))
        return "" if data is None else data.decode("utf-8", "surrogateescape")

    def saveText(self, name, text):
        return self.writer.write(
            os.path.join(self.settingsDir, name), text.encode("utf-8", "surrogateescape")
        )

    # -- domains ------------------------------------------------------------

    def listDomains(self):
        try:
            names = os.listdir(self.domainsDir)
        except FileNotFoundError:
            return []
        return sorted(
            n
            for n in names
            if not n.endswith((".deleting", ".tmp"))
            and os.path.exists(os.path.join(self.domainsDir, n, DOMAIN_FILE))
        )

    def loadDomain(self, domain):
        result = self._load(os.path.join(self._domainDir(domain), DOMAIN_FILE), None)
        if result is not None and not isinstance(result, dict):
            raise StorageError("domain %s: record is not a dictionary" % (domain,))
        return result

    def createDomain(self, domain, record):
        folder = self._domainDir(domain)
        self.writer.mkdir(os.path.join(folder, "Accounts"))
        return self._save(os.path.join(folder, DOMAIN_FILE), record)

    def saveDomain(self, domain, record):
        return self._save(os.path.join(self._domainDir(domain), DOMAIN_FILE), record)

    def renameDomain(self, old, new):
        return self.writer.rename(self._domainDir(old), self._domainDir(new))

    def deleteDomain(self, domain):
        return self.writer.rmtree(self._domainDir(domain))

    # -- accounts -----------------------------------------------------------

    def listAccounts(self, domain):
        folder = os.path.join(self._domainDir(domain), "Accounts")
        n = len(ACCOUNT_SUFFIX)
        exists = os.path.exists
        join = os.path.join
        try:
            with os.scandir(folder) as it:
                # a folder without its record is a creation cut short by a
                # crash (never acknowledged): not an account
                return [
                    e.name[:-n]
                    for e in it
                    if e.name.endswith(ACCOUNT_SUFFIX) and exists(join(e.path, ACCOUNT_FILE))
                ]
        except FileNotFoundError:
            return []

    def loadAccount(self, domain, name):
        result = self._load(os.path.join(self._accountDir(domain, name), ACCOUNT_FILE), None)
        if result is not None and not isinstance(result, dict):
            raise StorageError("account %s@%s: record is not a dictionary" % (name, domain))
        return result

    def createAccount(self, domain, name, record):
        folder = self._accountDir(domain, name)
        return self._save(os.path.join(folder, ACCOUNT_FILE), record, makeFolder=True)

    def saveAccount(self, domain, name, record):
        return self._save(os.path.join(self._accountDir(domain, name), ACCOUNT_FILE), record)

    def renameAccount(self, domain, old, new):
        return self.writer.rename(self._accountDir(domain, old), self._accountDir(domain, new))

    def deleteAccount(self, domain, name):
        return self.writer.rmtree(self._accountDir(domain, name))

    def accountPath(self, domain, name):
        return self._accountDir(domain, name)
