# -*- test-case-name: tests.queue.test_spool -*-
"""
The queue folder on disk: message files, progress journals, queue ids.

Files in C{<base>/Queue} (docs/mail-contract.md, "Queue files"):

  - C{<id>.msg}: a committed message.  Line 1 is the envelope,
    C{dataformat.dumps(envelope.toDict())} + CRLF; the message bytes
    follow.  It exists only complete and durable: it is created by a
    rename of a fully written, flushed temporary file.
  - C{<id>.tmp} (and C{<id>.msg.tmp}): temporary files; never complete, so
    they are deleted at start.
  - C{<id>.sta}: the append-only progress journal of the message, one
    data-format dictionary per line (see L{cgpro.queue.queue} for the
    records).  Removed together with the C{.msg} once every recipient is
    final.
  - C{LastId}: the highest queue id reserved so far (decimal).

Receiving.  Most messages are small, so L{IncomingMessage} buffers the
bytes in memory and C{commit} hands the envelope line and the data to the
L{DurableWriter} as one whole-file write (C{<id>.tmp} → C{<id>.msg}),
which joins the writer's group commit: no file is opened on the reactor
thread and many messages share one flush.  A message that grows past
L{MEMORY_LIMIT} spills to C{<id>.tmp}; at commit its envelope line is
written to C{<id>.msg.tmp}, the spilled bytes are copied after it by the
kernel, and the writer flushes and renames that file to C{<id>.msg}.  The
envelope line can only be written at commit (the recipients and size are
known then) and must come first, hence the copy; it costs only for big
messages.

Queue ids.  Decimal numbers, increasing for the life of the base folder,
never reused, because mailboxes remember C{<id>.<recipient>} delivery ids
to deliver exactly once.  Ids are reserved in blocks of L{ID_BLOCK}: when
an id beyond the reserved ceiling is needed, the new ceiling is written to
C{LastId} through the same writer, queued before the message that uses the
id, so it is durable no later than that message.  After a restart the
next id is above both the stored ceiling and every id found in the folder.
"""

import datetime
import os
import shutil
import threading
from collections import deque

from twisted.logger import Logger
from zope.interface import implementer

from cgpro.core import dataformat
from cgpro.core.envelope import Envelope
from cgpro.core.interfaces import IIncomingMessage

log = Logger()

#: The queue folder's name inside the base folder.
QUEUE_FOLDER = "Queue"

#: Messages up to this size are kept in memory until commit.
MEMORY_LIMIT = 1 << 20

#: Queue ids reserved per write of the counter file.
ID_BLOCK = 1000

COUNTER_FILE = "LastId"


def toDatetime(seconds):
    """
    @return: the naive UTC C{datetime} of an epoch time (whole seconds, as
        the data format keeps them).
    """
    return datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=int(seconds))


def toSeconds(value):
    """
    @return: the epoch seconds of a naive UTC C{datetime} (C{None} stays).
    """
    if not isinstance(value, datetime.datetime):
        return None
    return (value - datetime.datetime(1970, 1, 1)).total_seconds()


def envelopeLine(record):
    """
    @param record: the envelope dictionary (L{Envelope.toDict}, maybe with
        queue-private keys added).
    @return: the first line of a C{.msg} file (C{bytes}, CRLF included).
    """
    return dataformat.dumps(record).encode("utf-8") + b"\r\n"


class QueuedFile:
    """
    A committed message found in the queue folder at start.

    @ivar id: the queue id (C{str}).
    @ivar record: the envelope line's dictionary.
    @ivar envelope: the L{Envelope} made from it.
    @ivar offset: where the message bytes start in the file.
    @ivar size: the message size.
    @ivar journal: the records of its C{.sta} file (C{list} of C{dict}).
    @ivar tornJournal: whether the journal ends in a partial line (a crash
        during an append), so the next record must start on a new line.
    """

    def __init__(self, id, record, offset, size, journal, tornJournal):
        self.id = id
        self.record = record
        self.envelope = Envelope.fromDict(record)
        self.envelope.id = id
        self.offset = offset
        self.size = size
        self.journal = journal
        self.tornJournal = tornJournal


class Spool:
    """
    The queue folder: paths, ids, commits, journals.

    @ivar folder: the queue folder.
    @ivar writer: the server's L{cgpro.core.files.DurableWriter}.
    """

    def __init__(self, base, writer, clock, memoryLimit=MEMORY_LIMIT):
        self.folder = os.path.join(base, QUEUE_FOLDER)
        self.writer = writer
        self.clock = clock
        self.memoryLimit = memoryLimit
        self._next = None
        self._reserved = 0
        self._remover = _Remover()

    # -- paths ------------------------------------------------------------

    def msgPath(self, id):
        return os.path.join(self.folder, id + ".msg")

    def staPath(self, id):
        return os.path.join(self.folder, id + ".sta")

    def tmpPath(self, id):
        return os.path.join(self.folder, id + ".tmp")

    # -- ids --------------------------------------------------------------

    def _scanIds(self):
        """
        Find the first free id: above the stored ceiling and every id in
        the folder.
        """
        os.makedirs(self.folder, exist_ok=True)
        highest = 0
        for name in os.listdir(self.folder):
            stem = name.split(".", 1)[0]
            if stem.isdigit():
                highest = max(highest, int(stem))
        try:
            with open(os.path.join(self.folder, COUNTER_FILE), "rb") as f:
                highest = max(highest, int(f.read().strip() or 0))
        except (OSError, ValueError):
            pass
        self._next = highest + 1
        self._reserved = highest

    def newId(self):
        """
        @return: a fresh queue id (C{str}).
        """
        if self._next is None:
            self._scanIds()
        n = self._next
        self._next = n + 1
        if n > self._reserved:
            self._reserved = n + ID_BLOCK - 1
            self.writer.write(os.path.join(self.folder, COUNTER_FILE),
                              b"%d\n" % (self._reserved,))
        return str(n)

    # -- receiving --------------------------------------------------------

    def incoming(self, onCommit):
        """
        @param onCommit: called as C{onCommit(id, envelope, record, data,
            offset, size)} once the message is durable (C{data} is C{None} for a
            spilled message); its result is what C{commit} fires with.
        @return: an L{IncomingMessage}.
        """
        return IncomingMessage(self, self.newId(), onCommit)

    # -- start-up ---------------------------------------------------------

    def recover(self):
        """
        Clean the folder after a stop or crash and read every committed
        message: temporary files are deleted, journals without their
        message removed.

        @return: C{list} of L{QueuedFile}, oldest id first.
        """
        os.makedirs(self.folder, exist_ok=True)
        names = os.listdir(self.folder)
        messages = []
        journals = set()
        for name in names:
            path = os.path.join(self.folder, name)
            if name.endswith(".tmp"):
                _unlink(path)
                continue
            stem, _, ext = name.partition(".")
            if not stem.isdigit():
                continue
            if ext == "msg":
                messages.append(stem)
            elif ext == "sta":
                journals.add(stem)
        for stem in journals - set(messages):
            _unlink(self.staPath(stem))
        found = []
        for id in sorted(messages, key=int):
            queued = self._read(id)
            if queued is not None:
                found.append(queued)
        if self._next is None:
            self._scanIds()
        return found

    def _read(self, id):
        path = self.msgPath(id)
        try:
            with open(path, "rb") as f:
                line = f.readline()
                total = os.fstat(f.fileno()).st_size
            record = dataformat.loads(line.rstrip(b"\r\n"), multiline=False)
            if not isinstance(record, dict):
                raise ValueError("envelope line is not a dictionary")
            journal, torn = self.readJournal(id)
            return QueuedFile(id, record, len(line), total - len(line), journal, torn)
        except (OSError, ValueError, KeyError, TypeError) as e:
            # Keep it for a person to look at, out of the way of restarts.
            log.error("queue file {path} is unreadable ({err}); renamed to .bad",
                      path=path, err=e)
            try:
                os.replace(path, os.path.join(self.folder, id + ".bad"))
            except OSError:
                pass
            return None

    # -- journals ---------------------------------------------------------

    def readJournal(self, id):
        """
        @return: C{(records, torn)}: the parsed records, and whether the
            file ends in a partial line.  Unparsable lines are skipped.
        """
        try:
            with open(self.staPath(id), "rb") as f:
                text = f.read()
        except FileNotFoundError:
            return [], False
        records = []
        for line in text.split(b"\n"):
            line = line.strip()
            if not line:
                continue
            try:
                record = dataformat.loads(line, multiline=False)
            except dataformat.DataFormatError:
                log.warn("queue journal {id}.sta: skipping a damaged record", id=id)
                continue
            if isinstance(record, dict):
                records.append(record)
        return records, bool(text) and not text.endswith(b"\n")

    def appendJournal(self, id, records, newLine=False):
        """
        Append records to C{<id>.sta} durably.

        @param newLine: start on a new line (the file ends in a torn one).
        @return: L{Deferred} firing once durable.
        """
        data = b"".join(dataformat.dumps(r).encode("utf-8") + b"\n" for r in records)
        if newLine:
            data = b"\n" + data
        return self.writer.append(self.staPath(id), data)

    def rewrite(self, id, record, data):
        """
        Replace a committed message (server rules added headers).

        @return: L{Deferred} firing with the new data offset once durable.
        """
        line = envelopeLine(record)
        d = self.writer.write(self.msgPath(id), line + data, tmpPath=self.tmpPath(id))
        d.addCallback(lambda _: len(line))
        return d

    def remove(self, id, journal=True):
        """
        Delete a finished message and its journal.

        Not made durable on purpose: the journal already says every
        recipient is final, so a message that comes back after a crash is
        only cleaned up again, and skipping the two folder flushes per
        message keeps the writer's rounds for work that needs them.

        The unlinks run in a thread of their own: on ext4 an unlink waits
        for the journal commit under way (the writer's flushes), about a
        millisecond that the reactor must not spend.  The C{.msg} goes
        first: a journal without its message is deleted at start, a
        message without its journal would be delivered again.

        @param journal: whether a journal may exist (else it is not tried).
        """
        paths = (self.msgPath(id), self.staPath(id)) if journal else (self.msgPath(id),)
        if self.writer.synchronous:
            for path in paths:
                _unlink(path)
        else:
            self._remover.add(paths)

    def readData(self, id, offset):
        """
        @return: the message bytes of a committed message.
        """
        with open(self.msgPath(id), "rb") as f:
            f.seek(offset)
            return f.read()


class _Remover:
    """
    Unlinks files in a daemon thread, in the order asked.
    """

    def __init__(self):
        self._paths = deque()
        self._cond = threading.Condition()
        self._thread = None

    def add(self, paths):
        with self._cond:
            self._paths.extend(paths)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="cgpro-queue-remover",
                                                daemon=True)
                self._thread.start()
            self._cond.notify()

    def _run(self):
        while True:
            with self._cond:
                while not self._paths:
                    self._cond.wait()
                path = self._paths.popleft()
            try:
                _unlink(path)
            except OSError as e:
                log.warn("queue file {path} not removed: {err}", path=path, err=e)


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


@implementer(IIncomingMessage)
class IncomingMessage:
    """
    A message being received into the queue (see the module docstring).

    @ivar id: the queue id (C{str}).
    @ivar size: bytes written so far.
    """

    def __init__(self, spool, id, onCommit):
        self.id = id
        self.size = 0
        self._spool = spool
        self._onCommit = onCommit
        self._chunks = []
        self._file = None
        self._finished = False

    def write(self, data):
        """
        Add message bytes (CRLF line ends, dot-unstuffed).
        """
        if self._finished:
            raise RuntimeError("message %s already committed or aborted" % (self.id,))
        self.size += len(data)
        if self._file is not None:
            self._file.write(data)
            return
        self._chunks.append(data)
        if self.size > self._spool.memoryLimit:
            self._file = open(self._spool.tmpPath(self.id), "wb")
            for chunk in self._chunks:
                self._file.write(chunk)
            self._chunks = None

    def commit(self, envelope, extra=None):
        """
        Make the message durable as C{<id>.msg}.

        @param envelope: the L{Envelope}; its C{id}, C{size} and (if unset)
            C{received} are filled in.
        @param extra: queue-private keys for the envelope line.
        @return: L{Deferred} firing with the queue id once durable.
        """
        if self._finished:
            raise RuntimeError("message %s already committed or aborted" % (self.id,))
        self._finished = True
        spool = self._spool
        envelope.id = self.id
        envelope.size = self.size
        if envelope.received is None:
            envelope.received = toDatetime(spool.clock.seconds())
        record = envelope.toDict()
        if extra:
            record.update(extra)
        line = envelopeLine(record)
        msgPath = spool.msgPath(self.id)
        if self._file is None:
            data = b"".join(self._chunks)
            self._chunks = None
            d = spool.writer.write(msgPath, line + data, tmpPath=spool.tmpPath(self.id))
        else:
            data = None
            spilled = spool.tmpPath(self.id)
            self._file.close()
            self._file = None
            final = msgPath + ".tmp"
            with open(final, "wb") as out, open(spilled, "rb") as src:
                out.write(line)
                shutil.copyfileobj(src, out, 1 << 20)
            _unlink(spilled)
            d = spool.writer.commit(final, msgPath)
        d.addCallback(lambda _: self._onCommit(self.id, envelope, record, data, len(line),
                                               self.size))
        return d

    def abort(self):
        """
        Drop the partial message; nothing of it stays on disk.
        """
        if self._finished:
            return
        self._finished = True
        self._chunks = None
        if self._file is not None:
            self._file.close()
            self._file = None
            _unlink(self._spool.tmpPath(self.id))
