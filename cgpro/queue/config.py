# -*- test-case-name: tests.queue.test_queue -*-
"""
The C{QUEUE} module settings: built-in defaults and a cached reader.

The stored dictionary (C{directory.getServerDict("Modules")["QUEUE"]},
changed with C{UPDATEMODULE QUEUE {...}}) is merged over L{DEFAULTS} when
a value is needed, so a CLI change applies without a restart.  The queue
asks for settings on every message; L{QueueSettings} keeps the merged and
parsed result for one second of clock time so that the hot path does not
copy and parse dictionaries per message.
"""

from cgpro.core import dataformat

#: Built-in values of the C{QUEUE} module settings.
DEFAULTS = {
    # Back-off between delivery attempts of a deferred recipient; the last
    # value repeats.
    "RetryIntervals": ["1m", "5m", "15m", "30m", "1h"],
    # A recipient still deferred this long after the message was accepted
    # fails with "delivery time expired" and a DSN.
    "Expire": "5d",
    # After this long in the queue the sender gets one "delayed" DSN.
    "DelayNotice": "4h",
    # Concurrent delivery jobs per target module ("*" for the others).
    "Concurrency": {"LOCAL": "50", "SMTP": "50", "LIST": "5", "PIPE": "5", "*": "10"},
    # Concurrent delivery jobs per logical queue (one account, one domain).
    "QueueConcurrency": {"LOCAL": "4", "SMTP": "4", "*": "2"},
    # Original messages up to this size are returned whole in failure DSNs
    # (unless RET=HDRS); bigger ones only with their headers.
    "DSNMaxReturn": "1M",
    # How long stop() waits for delivery jobs under way.
    "StopTimeout": "10s",
    # How long an "Execute" rule action may run before it is killed.
    "ExecuteTimeout": "1m",
}

#: How long (seconds of clock time) parsed settings are reused.
CACHE_SECONDS = 1.0


def _duration(value, default):
    try:
        seconds = dataformat.parseDuration(value)
    except ValueError:
        seconds = dataformat.parseDuration(default)
    return seconds


def _size(value, default):
    try:
        return dataformat.parseSize(value)
    except ValueError:
        return dataformat.parseSize(default)


def _limits(value, default):
    """
    Parse a C{{MODULE = n; ...}} dictionary of concurrency limits.
    """
    result = {}
    for source in (default, value if isinstance(value, dict) else {}):
        for key, limit in source.items():
            try:
                result[str(key).upper()] = max(1, int(limit))
            except (TypeError, ValueError):
                pass
    return result


class QueueSettings:
    """
    The parsed C{QUEUE} settings, refreshed from the directory at most once
    per L{CACHE_SECONDS}.

    @ivar retryIntervals: C{list} of seconds.
    @ivar expire: seconds (C{None}: never).
    @ivar delayNotice: seconds (C{None}: never).
    @ivar concurrency: module -> jobs.
    @ivar queueConcurrency: module -> jobs per logical queue.
    @ivar dsnMaxReturn: bytes (C{None}: no limit).
    """

    def __init__(self, directory, clock):
        self._directory = directory
        self._clock = clock
        self._loadedAt = None
        self._raw = None

    def refresh(self, force=False):
        """
        Re-read the stored dictionary when the cached one is older than
        L{CACHE_SECONDS} (or when C{force}).
        """
        now = self._clock.seconds()
        if not force and self._loadedAt is not None and now - self._loadedAt < CACHE_SECONDS:
            return self
        self._loadedAt = now
        stored = {}
        if self._directory is not None:
            try:
                stored = self._directory.getServerDict("Modules").get("QUEUE", {}) or {}
            except Exception:
                stored = {}
        if stored == self._raw:
            return self
        self._raw = stored
        merged = dict(DEFAULTS)
        merged.update(stored)
        intervals = merged["RetryIntervals"]
        if isinstance(intervals, str):
            intervals = [intervals]
        parsed = []
        for value in intervals if isinstance(intervals, list) else []:
            try:
                seconds = dataformat.parseDuration(value)
            except ValueError:
                continue
            if seconds:
                parsed.append(seconds)
        self.retryIntervals = parsed or [
            dataformat.parseDuration(v) for v in DEFAULTS["RetryIntervals"]]
        self.expire = _duration(merged["Expire"], DEFAULTS["Expire"])
        self.delayNotice = _duration(merged["DelayNotice"], DEFAULTS["DelayNotice"])
        self.concurrency = _limits(merged["Concurrency"], DEFAULTS["Concurrency"])
        self.queueConcurrency = _limits(merged["QueueConcurrency"], DEFAULTS["QueueConcurrency"])
        self.dsnMaxReturn = _size(merged["DSNMaxReturn"], DEFAULTS["DSNMaxReturn"])
        self.stopTimeout = _duration(merged["StopTimeout"], DEFAULTS["StopTimeout"]) or 0
        self.executeTimeout = _duration(merged["ExecuteTimeout"], DEFAULTS["ExecuteTimeout"])
        return self

    def retryInterval(self, attempts):
        """
        @param attempts: failed attempts so far (1 after the first).
        @return: seconds to wait before the next attempt.
        """
        intervals = self.retryIntervals
        return intervals[min(max(attempts, 1), len(intervals)) - 1]

    def moduleLimit(self, module):
        limits = self.concurrency
        return limits.get(module, limits.get("*", 10))

    def queueLimit(self, module):
        limits = self.queueConcurrency
        return limits.get(module, limits.get("*", 2))
