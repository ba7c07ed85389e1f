# -*- test-case-name: tests.pbx.test_cdr -*-
"""
Call detail records: one durable line per call leg.

The PBX applications (C{gatewaycaller}, C{gatewayincoming}, the PBX Center)
record every leg they handle once it is over, so that billing (the cost
per minute of a billing plan, pbx-apps.md 5.3) and troubleshooting have a
trail that survives a crash.  Records are appended to one file a day::

    <base>/CDR/<YYYY-MM-DD>.log    one data-format dictionary a line (UTC day)

A record is a dictionary with the keys C{Id}, C{Start}, C{Answer}, C{End}
(timestamps; C{Answer} absent for unanswered calls), C{Duration} (seconds
from answer to end), C{From}, C{To}, C{Application}, C{Account}, C{Result}
(the final SIP code and text, C{"200 OK"}), C{Leg} (C{call} for the
caller's leg, C{callout} for the leg a task placed) and C{Cost} (cost per
minute, when a billing plan priced the call).

Appends go through the server's L{DurableWriter} (its append primitive
flushes before the L{Deferred} fires), so an acknowledged record survives
SIGKILL.  A crash can still leave the last line of a file torn: readers
skip lines that do not parse, and the first append of a process to a file
whose last byte is not a line end starts with one, so a torn line never
swallows the next record.

B{cgpro extension} (CommuniGate Pro has no such command)::

    GETCDRS [SINCE <time>] [LIMIT <n>]

returns an array of the newest records (at most C{n}, default 100, oldest
first) that ended at or after C{time}; server administrators only.
"""

import datetime
import itertools
import os

from twisted.internet.defer import succeed
from twisted.logger import Logger

from cgpro.core import dataformat
from cgpro.core.commands import command, requireServerAdmin
from cgpro.core.errors import CLIError
from cgpro.core.files import fsyncFolder

log = Logger()

FOLDER = "CDR"
SUFFIX = ".log"
LEGS = ("call", "callout")
TIME_KEYS = ("Start", "Answer", "End")
DEFAULT_LIMIT = 100
MAX_LIMIT = 10000


def _utc(value):
    """
    Turn an epoch time into a naive UTC datetime (the data format's
    timestamps); datetimes pass through.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.datetime.fromtimestamp(value, datetime.timezone.utc).replace(tzinfo=None)
    return value


class CDRLog:
    """
    The server's call detail records.

    @ivar folder: C{<base>/CDR}.
    """

    def __init__(self, base, writer=None, clock=None):
        """
        @param writer: the server's L{DurableWriter}; C{None} appends
            synchronously with C{fdatasync} (tools, tests).
        @param clock: an C{IReactorTime}; the day file is chosen by it.
        """
        if clock is None:
            from twisted.internet import reactor as clock
        self.folder = os.path.join(os.path.abspath(base), FOLDER)
        self.writer = writer
        self.clock = clock
        self._checked = set()
        self._ids = itertools.count(1)
        if not os.path.isdir(self.folder):
            os.makedirs(self.folder, exist_ok=True)
            fsyncFolder(os.path.dirname(self.folder))

    def _now(self):
        return _utc(self.clock.seconds())

    def pathFor(self, day):
        """
        @param day: a C{datetime.date} (UTC).
        @return: the log file of that day.
        """
        return os.path.join(self.folder, day.strftime("%Y-%m-%d") + SUFFIX)

    def normalize(self, cdr):
        """
        Fill in what the recorder may leave out and check the shape.

        @return: a new dictionary ready to write.
        @raise ValueError: for a record that cannot be written.
        """
        record = dict(cdr)
        for key in TIME_KEYS:
            if key in record:
                record[key] = _utc(record[key])
        if "Id" not in record:
            record["Id"] = "%d-%d" % (int(self.clock.seconds()), next(self._ids))
        record.setdefault("End", self._now())
        if "Duration" not in record:
            answered = record.get("Answer")
            if isinstance(answered, datetime.datetime):
                seconds = (record["End"] - answered).total_seconds()
                record["Duration"] = max(0, int(round(seconds)))
            else:
                record["Duration"] = 0
        leg = record.get("Leg", "call")
        if leg not in LEGS:
            raise ValueError("CDR Leg must be one of %s, not %r" % (LEGS, leg))
        record["Leg"] = leg
        if isinstance(record.get("Result"), (list, tuple)):
            record["Result"] = " ".join(str(part) for part in record["Result"])
        return record

    def record(self, cdr):
        """
        Append one record durably.

        @param cdr: a dictionary (see the module docstring); times may be
            datetimes or epoch seconds.
        @return: L{Deferred} firing with the written record once it is on
            stable storage.
        """
        record = self.normalize(cdr)
        line = (dataformat.dumps(record) + "\n").encode("utf-8", "surrogateescape")
        path = self.pathFor(self._now().date())
        if path not in self._checked:
            self._checked.add(path)
            if _endsTorn(path):
                line = b"\n" + line
        if self.writer is not None:
            d = self.writer.append(path, line)
        else:
            _appendSync(path, line)
            d = succeed(None)
        d.addCallback(lambda _: record)
        return d

    def files(self):
        """
        @return: the day files, oldest first.
        """
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return []
        return sorted(os.path.join(self.folder, n) for n in names
                      if n.endswith(SUFFIX) and len(n) == 10 + len(SUFFIX))

    def read(self, since=None, limit=DEFAULT_LIMIT):
        """
        The newest records, oldest first.

        @param since: a datetime (UTC): only records that ended at or after
            it.
        @param limit: at most this many records.
        @return: a list of dictionaries.
        """
        found = []
        for path in reversed(self.files()):
            if since is not None and os.path.basename(path)[:10] < since.strftime("%Y-%m-%d"):
                break
            records = [r for r in _readLines(path)
                       if since is None or _endOf(r) is None or _endOf(r) >= since]
            found[:0] = records
            if len(found) >= limit:
                break
        return found[-limit:] if limit > 0 else []


def _endOf(record):
    value = record.get("End", record.get("Start"))
    return value if isinstance(value, datetime.datetime) else None


def _readLines(path):
    """
    Parse a day file, skipping lines that do not parse (a torn last line
    left by a crash, or hand editing).
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    records = []
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        try:
            value = dataformat.loads(raw, multiline=False)
        except dataformat.DataFormatError:
            log.warn("CDR {path}: skipping an unreadable line", path=path)
            continue
        if isinstance(value, dict):
            records.append(value)
    return records


def _endsTorn(path):
    """
    @return: whether C{path} exists and does not end with a line end.
    """
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() == 0:
                return False
            f.seek(-1, os.SEEK_END)
            return f.read(1) != b"\n"
    except FileNotFoundError:
        return False


def _appendSync(path, data):
    created = not os.path.exists(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fdatasync(fd)
    finally:
        os.close(fd)
    if created:
        fsyncFolder(os.path.dirname(path))


def cdrLog(session):
    """
    The process-wide L{CDRLog} of the session's server: the one the PBX
    host installed as C{context.cdrLog}, else one created on first use over
    the context's base folder, writer and reactor.
    """
    context = session.context
    log_ = getattr(context, "cdrLog", None)
    if log_ is None:
        writer = getattr(context, "writer", None)
        if writer is None:
            writer = getattr(getattr(session.directory, "storage", None), "writer", None)
        log_ = context.cdrLog = CDRLog(context.base, writer, context.reactor)
    return log_


@command("GETCDRS")
def getCDRs(session, args):
    """GETCDRS [SINCE time] [LIMIT n]: the newest call detail records (cgpro)."""
    requireServerAdmin(session)
    since = None
    limit = DEFAULT_LIMIT
    while not args.atEnd():
        keyword = args.keyword("SINCE", "LIMIT")
        value = args.object(keyword.lower())
        if keyword == "SINCE":
            if not isinstance(value, datetime.datetime):
                raise CLIError("SINCE needs a timestamp (#TDD-MM-YYYY_HH:MM:SS)")
            since = value
        else:
            try:
                limit = int(value)
            except (TypeError, ValueError):
                raise CLIError("LIMIT needs a number")
            if not 0 < limit <= MAX_LIMIT:
                raise CLIError("LIMIT must be between 1 and %d" % (MAX_LIMIT,))
    return cdrLog(session).read(since=since, limit=limit)
