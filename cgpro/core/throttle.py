# -*- test-case-name: tests.core.test_throttle -*-
"""
Failed-login throttling, shared by every protocol that takes passwords.

A client address that fails to log in C{limit} times within C{period}
seconds is refused without a password check until the window slides past
its failures.  This bounds password guessing per address to C{limit} per
period, at almost no cost to honest users.  State is kept per address in a
dictionary trimmed as it is used, so a flood from many addresses cannot grow
it without bound (at most C{maxAddresses} entries; the oldest go first).
"""

from collections import OrderedDict, deque


class LoginThrottle:
    """
    @ivar limit: failures allowed per address within C{period}.
    @ivar period: the window, in seconds.
    """

    def __init__(self, clock, limit=10, period=60.0, maxAddresses=100000):
        self.clock = clock
        self.limit = limit
        self.period = period
        self.maxAddresses = maxAddresses
        self._failures = OrderedDict()

    def _recent(self, address):
        times = self._failures.get(address)
        if times is None:
            return None
        horizon = self.clock.seconds() - self.period
        while times and times[0] <= horizon:
            times.popleft()
        if not times:
            del self._failures[address]
            return None
        return times

    def blocked(self, address):
        """
        @return: whether logins from C{address} are refused right now.
        """
        times = self._recent(address)
        return times is not None and len(times) >= self.limit

    def failed(self, address):
        """
        Record one failed login from C{address}.
        """
        times = self._recent(address)
        if times is None:
            times = self._failures[address] = deque()
        else:
            self._failures.move_to_end(address)
        times.append(self.clock.seconds())
        while len(self._failures) > self.maxAddresses:
            self._failures.popitem(last=False)

    def succeeded(self, address):
        """
        A successful login clears the address's record.
        """
        self._failures.pop(address, None)
