# -*- test-case-name: tests.directory.test_directory -*-
"""
Forwarders and groups of the L{Directory}.

Both live in the domain record: a forwarder is a name pointing at one
address (it behaves like a C{Relay:} Router record), a group is a name with
a settings dictionary whose C{Members} array lists local names or external
addresses.  They share the domain's namespace with accounts and aliases.
"""

from cgpro.core import names
from cgpro.core.errors import CLIError, NameTaken, UnknownObject


class ObjectsMixin:
    """
    Forwarder and group methods; mixed into
    L{cgpro.directory.local.Directory}.
    """

    def _named(self, address, table, what, defaultDomain):
        name, domainName = names.splitAddress(address, defaultDomain or self.mainDomain)
        domain = self.domain(domainName)
        if name not in domain.record[table]:
            raise UnknownObject("unknown %s" % (what,))
        return domain, name

    def _newName(self, address, defaultDomain):
        name, domainName = names.splitAddress(address, defaultDomain or self.mainDomain)
        domain = self.domain(domainName)
        kind = domain.nameInUse(name)
        if kind is not None:
            raise NameTaken("%s with this name already exists" % (kind,))
        return domain, name

    def _renameIn(self, table, what, old, new, defaultDomain):
        domain, oldName = self._named(old, table, what, defaultDomain)
        newDomain, newName = self._newName(new, domain.name)
        if newDomain is not domain:
            raise CLIError("objects can be renamed only within their domain")
        before = self._copyRecord(domain.record)
        entries = domain.record[table]
        entries[newName] = entries.pop(oldName)
        return self._saveDomain(domain, before)

    def _deleteIn(self, table, what, address, defaultDomain):
        domain, name = self._named(address, table, what, defaultDomain)
        before = self._copyRecord(domain.record)
        del domain.record[table][name]
        return self._saveDomain(domain, before)

    # -- forwarders -----------------------------------------------------------

    def listForwarders(self, domainName=None):
        return sorted(self.domain(domainName).record["Forwarders"])

    def createForwarder(self, address, target, defaultDomain=None):
        if not isinstance(target, str) or not target:
            raise CLIError("forwarder address must be a non-empty string")
        domain, name = self._newName(address, defaultDomain)
        before = self._copyRecord(domain.record)
        domain.record["Forwarders"][name] = target
        return self._saveDomain(domain, before)

    def getForwarder(self, address, defaultDomain=None):
        domain, name = self._named(address, "Forwarders", "forwarder", defaultDomain)
        return domain.record["Forwarders"][name]

    def renameForwarder(self, old, new, defaultDomain=None):
        return self._renameIn("Forwarders", "forwarder", old, new, defaultDomain)

    def deleteForwarder(self, address, defaultDomain=None):
        return self._deleteIn("Forwarders", "forwarder", address, defaultDomain)

    def findForwarders(self, domainName, target):
        target = str(target).lower()
        entries = self.domain(domainName).record["Forwarders"]
        return sorted(n for n, t in entries.items() if str(t).lower() == target)

    # -- groups -----------------------------------------------------------------

    def listGroups(self, domainName=None):
        return sorted(self.domain(domainName).record["Groups"])

    def createGroup(self, address, groupSettings=None, defaultDomain=None):
        groupSettings = self._checkGroup(groupSettings or {})
        domain, name = self._newName(address, defaultDomain)
        before = self._copyRecord(domain.record)
        domain.record["Groups"][name] = groupSettings
        return self._saveDomain(domain, before)

    def getGroup(self, address, defaultDomain=None):
        domain, name = self._named(address, "Groups", "group", defaultDomain)
        return dict(domain.record["Groups"][name])

    def setGroup(self, address, groupSettings, defaultDomain=None):
        groupSettings = self._checkGroup(groupSettings)
        domain, name = self._named(address, "Groups", "group", defaultDomain)
        before = self._copyRecord(domain.record)
        domain.record["Groups"] = dict(domain.record["Groups"])
        domain.record["Groups"][name] = groupSettings
        return self._saveDomain(domain, before)

    def renameGroup(self, old, new, defaultDomain=None):
        return self._renameIn("Groups", "group", old, new, defaultDomain)

    def deleteGroup(self, address, defaultDomain=None):
        return self._deleteIn("Groups", "group", address, defaultDomain)

    @staticmethod
    def _checkGroup(groupSettings):
        if not isinstance(groupSettings, dict):
            raise CLIError("group settings must be a dictionary")
        members = groupSettings.get("Members", [])
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise CLIError("group Members must be an array of names")
        return dict(groupSettings)
