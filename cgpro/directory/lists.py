# -*- test-case-name: tests.directory.test_lists -*-
"""
Mailing lists of the L{Directory} (objects.md section 1: "Mailing Lists",
cli.md 6.8, issue 3: "subscribers, posting policy, bounce counting").

A list is a name in its domain's namespace, like an account or a group.
Its settings live in the domain record under C{Lists} (name -> settings),
so every list name is known at start-up without reading another file and
the Router finds lists as it finds groups.  A list also reserves the name
C{<list>-bounces}: the envelope sender of everything the list sends, so
delivery reports about subscribers come back to the list (see
L{cgpro.queue.mailinglists}).

Settings (L{LIST_DEFAULTS} apply to missing keys):

  - C{Owner}: the owning account, a name in the list's domain;
  - C{RealName}: shown in the C{List-Id} header;
  - C{PostingMode}: C{anyone}, C{subscribers} or C{moderated};
  - C{Moderators}: addresses (a bare name is in the list's domain) that
    may post to a moderated list and get the posts held for approval (the
    owner when empty);
  - C{BounceLimit}: fatal bounces after which a subscriber is removed;
  - C{ReplyTo}: C{sender} (leave Reply-To alone) or C{list};
  - C{SubjectPrefix}: put before the Subject of every post (C{[list]});
  - C{Digest}: C{NO}; digests are not built (see L{RECEIVING}).
  Other keys (C{EmailDisabled}, ...) are kept as given.

Subscribers are kept apart, one data-format file per list in the domain
folder, C{Domains/<domain>/Lists/<name>.subscribers}::

    {
      "bob@example.com" = {Mode = feed; Bounces = #0; Subscribed = #T...;};
    }

with optional C{LastBounce} (a time), C{Posting} (the SETPOSTINGMODE
value) and C{RealName}.  A list's subscribers may be many and change on
every bounce, so they stay out of the domain record that every other
change rewrites.  Each change rewrites the list's file through the
storage's L{cgpro.core.files.DurableWriter} and is acknowledged once
durable; if the write fails the change is undone in memory.  A file is
read on first use and kept in memory.
"""

import email.utils
import os

from cgpro.core import dataformat, names, settings
from cgpro.core.errors import CLIError, NameTaken, UnknownObject

#: The folder of a domain holding the subscriber files.
LISTS_FOLDER = "Lists"
SUBSCRIBERS_SUFFIX = ".subscribers"

#: A list C{x} also answers at C{x-bounces}: its envelope sender.
BOUNCES_SUFFIX = "-bounces"

#: Longest list name: C{<name>-bounces} must still be an object name.
MAX_NAME = 128 - len(BOUNCES_SUFFIX)

#: The Domain Administrator right for lists (objects.md 8.2, like
#: C{CanCreateGroups}).
LIST_RIGHT = "CanCreateLists"

#: Values of list settings that are not stored.
LIST_DEFAULTS = {
    "PostingMode": "anyone",
    "Moderators": [],
    "BounceLimit": 5,
    "ReplyTo": "sender",
    "SubjectPrefix": "",
    "Digest": "NO",
}

POSTING_MODES = ("anyone", "subscribers", "moderated")
REPLY_TO = ("sender", "list")

#: C{LIST} command operations -> the stored C{Mode} (C{unsubscribe}
#: removes the subscriber).
OPERATIONS = {
    "subscribe": "feed",
    "feed": "feed",
    "digest": "digest",
    "index": "index",
    "null": "null",
    "banned": "banned",
    "unsubscribe": None,
}

#: Modes that get posts.  Digests are not built (C{Digest} is C{NO}), so
#: C{digest} and C{index} subscribers get every post as it comes rather
#: than nothing; C{null} subscribers get nothing but may post; C{banned}
#: addresses get nothing and may not post.
RECEIVING = frozenset(["feed", "subscribe", "digest", "index"])

#: SETPOSTINGMODE keywords -> the stored C{Posting} value; a number N
#: (the next N posts are held) is stored as a number.
POSTING_OVERRIDES = {
    "UNMODERATED": "unmoderated",
    "MODERATEALL": "moderateAll",
    "PROHIBITED": "prohibited",
    "SPECIAL": "special",
}


def listNameInUse(record, name):
    """
    Whether a domain record's lists claim a name: a list's own name or its
    C{-bounces} address.  (Used by C{_Domain.nameInUse}.)
    """
    lists = record.get("Lists") or {}
    if name in lists:
        return True
    return name.endswith(BOUNCES_SUFFIX) and name[:-len(BOUNCES_SUFFIX)] in lists


def findList(record, name, domainName):
    """
    The C{findObject} answer for a list name of a domain (used by
    L{cgpro.directory.local.Directory.findObject}).

    @return: C{("list", "name@domain", settings)} for a list, or for its
        C{-bounces} address C{("list", "name-bounces@domain", settings)} (the
        LIST channel tells the two apart by the name), else C{None}.
    """
    lists = record.get("Lists") or {}
    if name in lists:
        return ("list", "%s@%s" % (name, domainName), lists[name])
    if name.endswith(BOUNCES_SUFFIX):
        listName = name[:-len(BOUNCES_SUFFIX)]
        if listName in lists:
            return ("list", "%s@%s" % (name, domainName), lists[listName])
    return None


def subscriberAddress(text, defaultDomain=None):
    """
    Check and fold a subscriber address (C{"Real Name" <a@b>} accepted).

    @param defaultDomain: the domain of a bare name (the list's).
    @return: C{(address, realName)}; the address in lower case.
    @raise CLIError: if it is not an address.
    """
    if not isinstance(text, str):
        raise CLIError("subscriber address must be a string")
    if defaultDomain and "@" not in text and "<" not in text:
        return "%s@%s" % (names.objectName(text.strip()), defaultDomain), ""
    realName, address = email.utils.parseaddr(text)
    address = address.strip().lower()
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or any(c.isspace() for c in address):
        raise CLIError("illegal subscriber address: %s" % (text,))
    return address, realName


def _number(value, what):
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise CLIError("%s must be a number" % (what,))
    return number


def checkListSettings(listSettings):
    """
    Check and normalise list settings (values as the CLI gives them).

    @return: a new C{dict}.
    @raise CLIError: for a bad value.
    """
    if not isinstance(listSettings, dict):
        raise CLIError("list settings must be a dictionary")
    result = dict(listSettings)
    if "PostingMode" in result:
        mode = str(result["PostingMode"]).lower()
        if mode not in POSTING_MODES:
            raise CLIError("PostingMode must be one of %s" % (", ".join(POSTING_MODES),))
        result["PostingMode"] = mode
    if "ReplyTo" in result:
        mode = str(result["ReplyTo"]).lower()
        if mode not in REPLY_TO:
            raise CLIError("ReplyTo must be list or sender")
        result["ReplyTo"] = mode
    if "BounceLimit" in result:
        limit = _number(result["BounceLimit"], "BounceLimit")
        if limit < 1:
            raise CLIError("BounceLimit must be at least 1")
        result["BounceLimit"] = limit
    if "Moderators" in result:
        moderators = result["Moderators"]
        if not isinstance(moderators, list) or not all(isinstance(m, str) for m in moderators):
            raise CLIError("Moderators must be an array of addresses")
        result["Moderators"] = [m.strip().lower() for m in moderators if m.strip()]
    if "SubjectPrefix" in result and not isinstance(result["SubjectPrefix"], str):
        raise CLIError("SubjectPrefix must be a string")
    if "Owner" in result and not isinstance(result["Owner"], str):
        raise CLIError("Owner must be an account name")
    return result


class ListsMixin:
    """
    Mailing-list methods; mixed into L{cgpro.directory.local.Directory}.

    Addresses of lists are C{name} (in C{defaultDomain}, else the Main
    Domain) or C{name@domain}; subscriber addresses are any mail address.
    """

    # -- resolution -----------------------------------------------------------

    def _list(self, address, defaultDomain=None):
        """
        @return: C{(domain, name)} of an existing list.
        @raise UnknownObject: if there is no such list.
        """
        name, domainName = names.splitAddress(address, defaultDomain or self.mainDomain)
        domain = self.domain(domainName)
        if name not in domain.record["Lists"]:
            raise UnknownObject("unknown mailing list")
        return domain, name

    def _listOwner(self, domain, owner):
        """
        @return: the owner's canonical account name in C{domain}.
        @raise CLIError: if it is not an account of that domain.
        """
        name, ownerDomain = names.splitAddress(owner, domain.name)
        if self.domainFor(ownerDomain) != domain.name:
            raise CLIError("the list owner must be an account of the list's domain")
        target = domain.record["AccountAliases"].get(name, name)
        if target not in domain.accounts:
            raise UnknownObject("unknown account")
        return target

    def resolveListAddress(self, address):
        """
        What a list address is, for the LIST channel.

        @return: C{("post", "name@domain")} for a list's own address,
            C{("bounces", "name@domain")} for its C{-bounces} address,
            C{None} if the address is no list's.
        """
        try:
            name, domainName = names.splitAddress(address, self.mainDomain)
        except CLIError:
            return None
        canonical = self.domainFor(domainName)
        if canonical is None:
            return None
        lists = self.domains[canonical].record["Lists"]
        if name in lists:
            return ("post", "%s@%s" % (name, canonical))
        if name.endswith(BOUNCES_SUFFIX) and name[:-len(BOUNCES_SUFFIX)] in lists:
            return ("bounces", "%s@%s" % (name[:-len(BOUNCES_SUFFIX)], canonical))
        return None

    def isListOwner(self, user, address, defaultDomain=None):
        """
        @param user: a canonical C{name@domain} (a session's user).
        @return: whether C{user} owns the list.
        """
        domain, name = self._list(address, defaultDomain)
        owner = domain.record["Lists"][name].get("Owner")
        return owner is not None and user == "%s@%s" % (owner, domain.name)

    # -- subscriber files -------------------------------------------------------

    def _subscribersPath(self, domain, name):
        return os.path.join(self.storage.domainsDir, domain.name, LISTS_FOLDER,
                            name + SUBSCRIBERS_SUFFIX)

    def _subscriberCache(self):
        """
        The subscribers read so far: C{{(domain, name): {address: entry}}}.
        Keyed by the L{_Domain} object itself, which survives a domain
        rename (its folder moves with it) and is replaced when a domain is
        deleted and created again, so a stale entry is never found.
        """
        cache = self.__dict__.get("_listSubscribers")
        if cache is None:
            cache = self._listSubscribers = {}
        return cache

    def _subscribers(self, domain, name):
        """
        @return: the list's subscribers (the cached C{dict}; entries are
            replaced, never changed in place).
        """
        cache = self._subscriberCache()
        key = (domain, name)
        found = cache.get(key)
        if found is not None:
            return found
        for stale in [(d, n) for d, n in cache
                      if self.domains.get(d.name) is not d or n not in d.record["Lists"]]:
            del cache[stale]
        data = self.storage.writer.read(self._subscribersPath(domain, name))
        found = {}
        if data:
            try:
                loaded = dataformat.loads(data.decode("utf-8", "surrogateescape"))
            except dataformat.DataFormatError as e:
                raise CLIError("subscribers of %s@%s are damaged: %s" % (name, domain.name, e))
            if not isinstance(loaded, dict):
                raise CLIError("subscribers of %s@%s are damaged" % (name, domain.name))
            for address, entry in loaded.items():
                if isinstance(entry, dict):
                    found[str(address).lower()] = entry
        cache[key] = found
        return found

    def _writeSubscribers(self, domain, name, subscribers):
        data = dataformat.dumpsFile(subscribers).encode("utf-8", "surrogateescape")
        return self.storage.writer.write(self._subscribersPath(domain, name), data,
                                         makeFolder=True)

    def _changeSubscribers(self, domain, name, change):
        """
        Apply C{change(subscribers)} in memory, write the file, and undo the
        change if the write fails.

        @return: L{Deferred} firing with C{change}'s result once durable.
        """
        subscribers = self._subscribers(domain, name)
        before = dict(subscribers)
        result = change(subscribers)

        def rollback():
            subscribers.clear()
            subscribers.update(before)

        d = self._commit(self._writeSubscribers(domain, name, subscribers), rollback)
        d.addCallback(lambda _: result)
        return d

    # -- lists ----------------------------------------------------------------------

    def listLists(self, domainName=None):
        """
        @return: the sorted names of a domain's lists.
        """
        return sorted(self.domain(domainName).record["Lists"])

    def getDomainLists(self, domainName=None):
        """
        @return: C{{name: number of subscribers}} of a domain's lists
            (banned addresses do not count).
        """
        domain = self.domain(domainName)
        return {name: sum(1 for e in self._subscribers(domain, name).values()
                          if e.get("Mode") != "banned")
                for name in sorted(domain.record["Lists"])}

    def createList(self, address, owner, defaultDomain=None):
        """
        Create a list owned by an account of its domain.

        @param address: C{name} or C{name@domain}; a bare name is created
            in the owner's domain when C{owner} names one, else in
            C{defaultDomain}.
        @return: L{Deferred} firing once durable.
        """
        if isinstance(owner, str) and "@" in owner and isinstance(address, str) \
                and "@" not in address:
            defaultDomain = owner.rpartition("@")[2]
        name, domainName = names.splitAddress(address, defaultDomain or self.mainDomain)
        if len(name) > MAX_NAME:
            raise CLIError("list name is longer than %d characters" % (MAX_NAME,))
        domain = self.domain(domainName)
        for taken in (name, name + BOUNCES_SUFFIX):
            kind = domain.nameInUse(taken)
            if kind is not None:
                raise NameTaken("%s with this name already exists%s" % (
                    kind, "" if taken == name else ": " + taken))
        ownerName = self._listOwner(domain, owner)
        before = self._copyRecord(domain.record)
        domain.record["Lists"][name] = {"Owner": ownerName}
        cache = self._subscriberCache()
        cache[(domain, name)] = {}

        def rollback():
            domain.record = before
            cache.pop((domain, name), None)

        writes = [self.storage.saveDomain(domain.name, domain.record),
                  self._writeSubscribers(domain, name, {})]
        return self._commit(writes, rollback)

    def renameList(self, old, new, defaultDomain=None):
        """
        Rename a list within its domain; its subscribers move along.

        @return: L{Deferred} firing once durable.
        """
        domain, oldName = self._list(old, defaultDomain)
        newName, newDomain = names.splitAddress(new, domain.name)
        if self.domainFor(newDomain) != domain.name:
            raise CLIError("lists can be renamed only within their domain")
        if len(newName) > MAX_NAME:
            raise CLIError("list name is longer than %d characters" % (MAX_NAME,))
        if newName == oldName:
            return self._commit([], lambda: None)
        for taken in (newName, newName + BOUNCES_SUFFIX):
            kind = domain.nameInUse(taken)
            # the old list's own names are free once it is renamed
            if kind is not None and taken not in (oldName, oldName + BOUNCES_SUFFIX):
                raise NameTaken("%s with this name already exists%s" % (
                    kind, "" if taken == newName else ": " + taken))
        subscribers = self._subscribers(domain, oldName)
        before = self._copyRecord(domain.record)
        lists = domain.record["Lists"]
        lists[newName] = lists.pop(oldName)
        cache = self._subscriberCache()
        cache[(domain, newName)] = cache.pop((domain, oldName))

        def rollback():
            domain.record = before
            cache[(domain, oldName)] = cache.pop((domain, newName), subscribers)

        writes = [self.storage.saveDomain(domain.name, domain.record),
                  self._writeSubscribers(domain, newName, subscribers),
                  self.storage.writer.unlink(self._subscribersPath(domain, oldName))]
        return self._commit(writes, rollback)

    def deleteList(self, address, defaultDomain=None):
        """
        Remove a list and its subscribers.

        @return: L{Deferred} firing once durable.
        """
        domain, name = self._list(address, defaultDomain)
        before = self._copyRecord(domain.record)
        del domain.record["Lists"][name]
        cache = self._subscriberCache()
        subscribers = cache.pop((domain, name), None)

        def rollback():
            domain.record = before
            if subscribers is not None:
                cache[(domain, name)] = subscribers

        writes = [self.storage.saveDomain(domain.name, domain.record),
                  self.storage.writer.unlink(self._subscribersPath(domain, name))]
        return self._commit(writes, rollback)

    def getList(self, address, defaultDomain=None):
        """
        @return: the list's settings, defaults included (a copy).
        """
        domain, name = self._list(address, defaultDomain)
        result = dict(LIST_DEFAULTS)
        result["Moderators"] = []
        result.update(domain.record["Lists"][name])
        result["Moderators"] = list(result["Moderators"])
        return result

    def updateList(self, address, listSettings, defaultDomain=None, keep=()):
        """
        Merge settings into a list's (a value C{default} removes a key).

        @param keep: keys the caller may not change (silently kept, as
            UPDATEACCOUNTSETTINGS does for Domain Administrators).
        @return: L{Deferred} firing once durable.
        """
        if not isinstance(listSettings, dict):
            raise CLIError("list settings must be a dictionary")
        domain, name = self._list(address, defaultDomain)
        update = {k: v for k, v in listSettings.items() if k not in keep}
        if "Owner" in update:
            if isinstance(update["Owner"], str) \
                    and update["Owner"].lower() == settings.DEFAULT_MARK:
                raise CLIError("a list must have an owner")
            update["Owner"] = self._listOwner(domain, update["Owner"])
        merged = checkListSettings(settings.applyUpdate(domain.record["Lists"][name], update))
        before = self._copyRecord(domain.record)
        domain.record["Lists"][name] = merged

        def rollback():
            domain.record = before

        return self._commit(self.storage.saveDomain(domain.name, domain.record), rollback)

    # -- subscribers ---------------------------------------------------------------

    def listSubscribers(self, address, filter=None, limit=None, defaultDomain=None):
        """
        @param filter: only addresses containing this text (any case).
        @param limit: at most this many addresses.
        @return: the sorted subscriber addresses.
        """
        domain, name = self._list(address, defaultDomain)
        found = sorted(self._subscribers(domain, name))
        if filter:
            needle = filter.lower()
            found = [a for a in found if needle in a]
        if limit is not None:
            found = found[:max(0, limit)]
        return found

    def getSubscriberInfo(self, address, subscriber, defaultDomain=None):
        """
        @return: the subscriber's record (C{Mode}, C{Subscribed},
            C{Bounces} ...), a copy; C{{}} for an address not subscribed.
        """
        domain, name = self._list(address, defaultDomain)
        subscriber, _ = subscriberAddress(subscriber, domain.name)
        return dict(self._subscribers(domain, name).get(subscriber, {}))

    def subscribersOf(self, address):
        """
        @return: a copy of every subscriber record, C{{address: record}},
            for the LIST channel.
        """
        domain, name = self._list(address)
        return {a: dict(e) for a, e in self._subscribers(domain, name).items()}

    def subscribe(self, address, subscriber, operation, defaultDomain=None):
        """
        Carry out one C{LIST} command operation (L{OPERATIONS}): subscribe
        in a mode (which also clears the bounce count), ban, or remove.

        @return: L{Deferred} firing once durable.
        @raise UnknownObject: to unsubscribe an address not subscribed.
        """
        operation = str(operation).lower()
        if operation not in OPERATIONS:
            raise CLIError("unknown list operation: %s" % (operation,))
        domain, name = self._list(address, defaultDomain)
        subscriber, realName = subscriberAddress(subscriber, domain.name)
        mode = OPERATIONS[operation]
        current = self._subscribers(domain, name)
        if mode is None and subscriber not in current:
            raise UnknownObject("unknown subscriber")
        now = self.now()

        def change(subscribers):
            if mode is None:
                del subscribers[subscriber]
                return
            old = subscribers.get(subscriber)
            entry = dict(old) if old is not None else {"Subscribed": now}
            entry["Mode"] = mode
            entry["Bounces"] = 0
            entry.pop("LastBounce", None)
            if realName:
                entry["RealName"] = realName
            subscribers[subscriber] = entry

        return self._changeSubscribers(domain, name, change)

    def setPostingMode(self, address, subscriber, mode, defaultDomain=None):
        """
        Set a subscriber's own posting mode (SETPOSTINGMODE): a
        L{POSTING_OVERRIDES} keyword, or a number of next posts to hold
        (C{0} clears it, as C{UNMODERATED} does not: that one lets the
        subscriber post unmoderated even to a moderated list).

        @return: L{Deferred} firing once durable.
        """
        if isinstance(mode, str) and mode.upper() in POSTING_OVERRIDES:
            value = POSTING_OVERRIDES[mode.upper()]
        else:
            value = _number(mode, "posting mode")
            if value < 0:
                raise CLIError("posting mode must be a keyword or a number of posts")
        domain, name = self._list(address, defaultDomain)
        subscriber, _ = subscriberAddress(subscriber, domain.name)
        if subscriber not in self._subscribers(domain, name):
            raise UnknownObject("unknown subscriber")

        def change(subscribers):
            entry = dict(subscribers[subscriber])
            if value == 0:
                entry.pop("Posting", None)
            else:
                entry["Posting"] = value
            subscribers[subscriber] = entry

        return self._changeSubscribers(domain, name, change)

    def notePostHeld(self, address, subscriber):
        """
        A post of a subscriber with a number of posts to hold was held:
        count it down (the C{Posting} key goes at zero).

        @return: L{Deferred} firing once durable.
        """
        domain, name = self._list(address)

        def change(subscribers):
            entry = subscribers.get(subscriber)
            posting = entry.get("Posting") if entry is not None else None
            if not isinstance(posting, int) or isinstance(posting, bool):
                return
            entry = dict(entry)
            if posting > 1:
                entry["Posting"] = posting - 1
            else:
                entry.pop("Posting", None)
            subscribers[subscriber] = entry

        return self._changeSubscribers(domain, name, change)

    def processBounce(self, address, subscriber, fatal=True, defaultDomain=None):
        """
        Count one bounce of a subscriber (PROCESSBOUNCE).

        @return: L{Deferred} firing with the list of addresses removed.
        """
        domain, name = self._list(address, defaultDomain)
        subscriber, _ = subscriberAddress(subscriber, domain.name)
        if subscriber not in self._subscribers(domain, name):
            raise UnknownObject("unknown subscriber")
        return self.recordBounces("%s@%s" % (name, domain.name), [subscriber], fatal)

    def recordBounces(self, address, subscribers, fatal=True):
        """
        Count bounces of several subscribers in one write (one delivery
        report names several).  A fatal bounce adds one to C{Bounces}; at
        the list's C{BounceLimit} the subscriber is removed.  A non-fatal
        one (a delay) is only noted in C{LastBounce}.  Addresses that are
        not subscribed, or banned, are ignored.

        @return: L{Deferred} firing with the sorted addresses removed.
        """
        domain, name = self._list(address)
        limit = self.getList("%s@%s" % (name, domain.name))["BounceLimit"]
        try:
            limit = max(1, int(limit))
        except (TypeError, ValueError):
            limit = LIST_DEFAULTS["BounceLimit"]
        now = self.now()
        wanted = sorted({s.lower() for s in subscribers})

        def change(current):
            removed = []
            for subscriber in wanted:
                entry = current.get(subscriber)
                if entry is None or entry.get("Mode") == "banned":
                    continue
                entry = dict(entry)
                entry["LastBounce"] = now
                if fatal:
                    entry["Bounces"] = int(entry.get("Bounces", 0) or 0) + 1
                if fatal and entry["Bounces"] >= limit:
                    del current[subscriber]
                    removed.append(subscriber)
                else:
                    current[subscriber] = entry
            return removed

        return self._changeSubscribers(domain, name, change)

    # -- rights ----------------------------------------------------------------------


__all__ = ["ListsMixin", "listNameInUse", "findList", "subscriberAddress",
           "checkListSettings"]
