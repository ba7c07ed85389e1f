# -*- test-case-name: tests.core.test_router -*-
"""
An in-memory L{IRoutingDirectory} for Router tests.

The Router only needs four questions answered (is this a local domain,
what does this name denote, whose is this telephone number, what are this
domain's settings), so tests describe a directory with a few dictionaries
instead of building a real one on disk.
"""

from zope.interface import implementer

from cgpro.core.interfaces import IRoutingDirectory

#: Built-in domain settings the fake merges explicit settings over.
DOMAIN_DEFAULTS = {
    "MailToUnknown": "Rejected",
    "SignalToUnknown": "Rejected",
    "AccessToUnknown": "Rejected",
}


@implementer(IRoutingDirectory)
class FakeRoutingDirectory:
    """
    Domains, accounts, aliases, forwarders, groups and telnums kept in
    dictionaries.

    Names are case-insensitive and stored lower-case, as the real
    directory returns them.

    @ivar mainDomain: the Main Domain name.
    @ivar domains: canonical domain name -> C{dict} with C{"settings"},
        C{"accounts"} (name -> None), C{"aliases"} (alias -> account
        name), C{"forwarders"} (name -> target) and C{"groups"}
        (name -> settings).
    @ivar domainAliases: domain alias -> canonical domain name.
    @ivar telnums: number without leading C{+} -> C{name@domain}.
    @ivar lookups: every C{findObject} argument, in order, so tests can
        check what the Router asked.
    """

    def __init__(self, mainDomain="main.dom"):
        self.mainDomain = mainDomain
        self.domains = {}
        self.domainAliases = {}
        self.telnums = {}
        self.lookups = []
        self.addDomain(mainDomain)

    def addDomain(self, name, aliases=(), settings=None):
        """
        Create a local domain.
        """
        name = name.lower()
        self.domains[name] = {
            "settings": dict(settings or {}),
            "accounts": {},
            "aliases": {},
            "forwarders": {},
            "groups": {},
        }
        for alias in aliases:
            self.domainAliases[alias.lower()] = name

    def _split(self, address):
        name, _, domain = address.lower().partition("@")
        return name, self.domainFor(domain or self.mainDomain)

    def addAccount(self, address, aliases=()):
        """
        Create an account with optional account aliases.
        """
        name, domain = self._split(address)
        self.domains[domain]["accounts"][name] = None
        for alias in aliases:
            self.domains[domain]["aliases"][alias.lower()] = name

    def addForwarder(self, address, target):
        """
        Create a forwarder C{address} -> C{target}.
        """
        name, domain = self._split(address)
        self.domains[domain]["forwarders"][name] = target

    def addGroup(self, address, settings=None):
        """
        Create a group with the given settings.
        """
        name, domain = self._split(address)
        self.domains[domain]["groups"][name] = dict(settings or {})

    def assignTelnum(self, number, address):
        """
        Assign a telephone number to an account.
        """
        self.telnums[number.lstrip("+")] = address.lower()

    # IRoutingDirectory

    def domainFor(self, name):
        name = name.lower()
        if name in self.domains:
            return name
        return self.domainAliases.get(name)

    def findObject(self, address):
        self.lookups.append(address)
        name, domain = self._split(address)
        if domain is None:
            return None
        record = self.domains[domain]
        name = record["aliases"].get(name, name)
        if name in record["accounts"]:
            return ("account", f"{name}@{domain}", None)
        if name in record["forwarders"]:
            target = record["forwarders"][name]
            return ("forwarder", f"{name}@{domain}", target)
        if name in record["groups"]:
            return ("group", f"{name}@{domain}", dict(record["groups"][name]))
        return None

    def findTelnum(self, number):
        return self.telnums.get(number.lstrip("+"))

    def effectiveDomainSettings(self, domain):
        settings = dict(DOMAIN_DEFAULTS)
        settings.update(self.domains[self.domainFor(domain)]["settings"])
        return settings


def makeDirectory():
    """
    Build the standard Router test directory.

      - Main Domain C{main.dom}: accounts C{postmaster} and C{pbx} (aliases
        C{200}, C{conference}).
      - C{example.com} (domain alias C{ex.com}), everything unknown
        rejected: accounts C{alice} (alias C{323}), C{bob}, C{sales},
        C{b}, C{c}, C{pbx}; forwarders C{jim} -> C{john@other.dom},
        C{trash} -> C{null}, C{lead} -> C{bob} (bare name),
        C{desk} -> C{voicemail#alice}, C{loop1} <-> C{loop2}; groups
        C{staff} and C{quiet} (C{EmailDisabled}); telnum C{+14155550100}
        assigned to C{alice}.
      - C{catchall.dom}: unknown mail rerouted to C{spamtrap}, unknown
        signals accepted for C{operator}, unknown logins rerouted to
        C{error} (which does not exist); no C{pbx} account.

    @return: a L{FakeRoutingDirectory}.
    """
    directory = FakeRoutingDirectory("main.dom")
    directory.addAccount("postmaster@main.dom")
    directory.addAccount("pbx@main.dom", aliases=("200", "conference"))

    directory.addDomain("example.com", aliases=("ex.com",))
    directory.addAccount("alice@example.com", aliases=("323",))
    for name in ("bob", "sales", "b", "c", "pbx"):
        directory.addAccount(name + "@example.com")
    directory.addForwarder("jim@example.com", "john@other.dom")
    directory.addForwarder("trash@example.com", "null")
    directory.addForwarder("lead@example.com", "bob")
    directory.addForwarder("desk@example.com", "voicemail#alice@example.com")
    directory.addForwarder("loop1@example.com", "loop2@example.com")
    directory.addForwarder("loop2@example.com", "loop1@example.com")
    directory.addGroup("staff@example.com",
                       {"Members": ["alice", "bob"]})
    directory.addGroup("quiet@example.com",
                       {"Members": ["alice"], "EmailDisabled": "YES"})
    directory.assignTelnum("+14155550100", "alice@example.com")

    directory.addDomain("catchall.dom", settings={
        "MailToUnknown": "Rerouted",
        "MailRerouteAddress": "spamtrap",
        "SignalToUnknown": "Accepted",
        "SignalRerouteAddress": "operator",
        "AccessToUnknown": "Rerouted",
        "AccessRerouteAddress": "error",
    })
    directory.addAccount("spamtrap@catchall.dom")
    directory.addAccount("operator@catchall.dom")
    return directory
