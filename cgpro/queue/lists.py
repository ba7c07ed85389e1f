# -*- test-case-name: tests.queue.test_local -*-
"""
Remembered address lists of accounts (rules.md: C{Remember 'From' in
RepliedAddresses}, conditions C{From not in #RepliedAddresses}).

Each account keeps its lists in one data-format file in its folder,
C{AddressLists.data}::

    {
      RepliedAddresses = { "sender@example.com" = #T15-05-2026_10:00:00; };
      "#AutoReplied" = { ... };
    }

Every address carries the time it was remembered, so an address counts as
"in the list" only for the account's C{VacationReplyPeriod} (default 7
days): a vacation rule then answers each sender once per period, and the
lists cannot grow without bound (older entries are dropped when the file
is next written).  C{#AutoReplied} is the queue's own list of addresses
that got an automatic reply, the RFC 3834 safety net for rules that reply
without a C{not in} condition.
"""

import os
from collections import OrderedDict

from twisted.internet.defer import succeed

from cgpro.core import dataformat
from cgpro.queue.spool import toDatetime, toSeconds

LISTS_FILE = "AddressLists.data"

#: The queue's own list of auto-replied addresses.
AUTO_REPLIED = "#AutoReplied"

#: Default of the account setting C{VacationReplyPeriod}.
DEFAULT_PERIOD = "7d"


def listKey(name):
    """
    Rules name a list C{#RepliedAddresses} in conditions and
    C{RepliedAddresses} in actions: both mean the same list.
    """
    if name != AUTO_REPLIED:
        name = name.lstrip("#")
    return name


class AddressLists:
    """
    The remembered lists of every account, cached.
    """

    def __init__(self, directory, writer, clock, cacheSize=1000):
        self.directory = directory
        self.writer = writer
        self.clock = clock
        self.cacheSize = cacheSize
        self._cache = OrderedDict()

    def _path(self, account):
        name, _, domain = account.partition("@")
        return os.path.join(self.directory.storage.accountPath(domain, name), LISTS_FILE)

    def load(self, account):
        """
        @return: C{{listName: {address: datetime}}} of an account (cached;
            do not change it).
        """
        lists = self._cache.get(account)
        if lists is not None:
            self._cache.move_to_end(account)
            return lists
        data = self.writer.read(self._path(account))
        lists = {}
        if data:
            try:
                loaded = dataformat.loads(data)
            except dataformat.DataFormatError:
                loaded = {}
            if isinstance(loaded, dict):
                for name, entries in loaded.items():
                    if isinstance(entries, dict):
                        lists[name] = {str(a).lower(): t for a, t in entries.items()}
        self._cache[account] = lists
        while len(self._cache) > self.cacheSize:
            self._cache.popitem(last=False)
        return lists

    def contains(self, account, listName, address, period):
        """
        @param period: seconds an entry counts (C{None}: forever).
        @return: whether C{address} was remembered in the list within
            C{period}.
        """
        entries = self.load(account).get(listKey(listName))
        if not entries:
            return False
        when = entries.get(address.strip().strip("<>").lower())
        if when is None:
            return False
        if period is None:
            return True
        seconds = toSeconds(when)
        return seconds is not None and self.clock.seconds() - seconds < period

    def remember(self, account, pairs, period):
        """
        Add C{(listName, address)} pairs, stamped now, and drop entries
        older than C{period}.

        @return: L{Deferred} firing once the file is durable.
        """
        pairs = [(listKey(n), a.strip().strip("<>").lower()) for n, a in pairs if a]
        if not pairs:
            return succeed(None)
        now = self.clock.seconds()
        stamp = toDatetime(now)
        lists = {name: dict(entries) for name, entries in self.load(account).items()}
        for name, address in pairs:
            lists.setdefault(name, {})[address] = stamp
        if period is not None:
            for name in list(lists):
                lists[name] = {a: t for a, t in lists[name].items()
                               if toSeconds(t) is not None and now - toSeconds(t) < period}
                if not lists[name]:
                    del lists[name]
        self._cache[account] = lists
        return self.writer.write(self._path(account), dataformat.dumpsFile(lists).encode("utf-8"))
