# -*- test-case-name: tests.media.test_ports -*-
"""
Port pairs for the media relay, taken from the Port Allocation range.

RTP convention (RFC 3550 section 11): RTP on an even port, RTCP on the next
(odd) one.  A pair freed by a finished call goes to the back of the queue,
so a port is reused as late as possible: late packets of the old call then
do not reach (and latch) the next call that would get the same port.
"""

from collections import deque

from cgpro.media.interfaces import MediaExhausted


class PortPairAllocator:
    """
    Hand out C{(rtpPort, rtcpPort)} pairs from C{[low, high]}.

    @ivar low: the first port of the range (as configured).
    @ivar high: the last port of the range (as configured).
    @ivar capacity: how many pairs the range holds.
    """

    def __init__(self, low, high, label=""):
        """
        @param low: the first port of the range; an odd C{low} is skipped
            (its RTP partner would be outside the range).
        @param high: the last port; an even C{high} is unused for the same
            reason.
        @param label: a word for the error message (C{"IPv6"} for the
            allocator of the IPv6 address), or C{""}.
        @raise ValueError: if the range holds no pair at all.
        """
        if not 1 <= low <= high <= 65535:
            raise ValueError("media port range %d-%d is not within 1-65535" % (low, high))
        self.low = low
        self.high = high
        self.label = label + " " if label else ""
        first = low + (low & 1)
        self._free = deque(range(first, high, 2))
        self._used = set()
        self.capacity = len(self._free)
        if not self.capacity:
            raise ValueError("media port range %d-%d holds no even/odd port pair" % (low, high))

    def __len__(self):
        """
        @return: the number of free pairs.
        """
        return len(self._free)

    def inUse(self):
        """
        @return: the number of pairs handed out and not yet released.
        """
        return len(self._used)

    def allocate(self, count=1, usable=None):
        """
        Take C{count} pairs, all or none.

        @param count: how many pairs (one per call leg).
        @param usable: optional C{callable(rtpPort) -> bool}; a pair it
            refuses (a port another program holds) is put back at the end of
            the queue and the next one is tried, each free pair at most once.
        @return: a C{list} of C{(rtpPort, rtcpPort)}.
        @raise MediaExhausted: if fewer than C{count} usable pairs are free.
        """
        taken = []
        popped = []
        try:
            while len(taken) < count:
                if not self._free:
                    raise MediaExhausted(
                        "media relay: no free %sRTP port pair in %d-%d (%d pairs, %d in use, "
                        "%d refused by the system); widen MediaPorts or lower the call load"
                        % (self.label, self.low, self.high, self.capacity, len(self._used),
                           len(popped) - len(taken)))
                port = self._free.popleft()
                popped.append(port)
                if usable is None or usable(port):
                    taken.append(port)
        except BaseException:
            # leave the queue exactly as it was
            self._free.extendleft(reversed(popped))
            raise
        self._free.extend(port for port in popped if port not in taken)
        self._used.update(taken)
        return [(port, port + 1) for port in taken]

    def release(self, rtpPort):
        """
        Give a pair back (the end of the queue: reused last).

        @param rtpPort: the even port of a pair from L{allocate}.
        @raise KeyError: if that pair is not allocated.
        """
        self._used.remove(rtpPort)
        self._free.append(rtpPort)
