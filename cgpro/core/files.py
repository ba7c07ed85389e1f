# -*- test-case-name: tests.core.test_files -*-
"""
Durable file writes: nothing is acknowledged before it is on stable storage.

Every change cgpro keeps is a whole file replaced atomically: the new bytes go
to a temporary file beside the target, the temporary file is made durable, it
is renamed over the target, and the rename is made durable.  A reader (or a
restarted server) therefore sees either the old file or the new one, never a
torn mix, and a change whose L{Deferred} has fired survives SIGKILL and power
loss.

Doing that with one C{fsync} per file and one per folder costs three disk
flushes per change, about 700 account creations per second on the project's
machine.  L{DurableWriter} keeps the same guarantee with group commit: a
single writer thread takes every change queued since its last round, writes
all their temporary files, flushes them in one go, renames them all, and
flushes again.  On Linux the flush is C{syncfs(2)} on the base folder's file
system (two per round, whatever the round's size); elsewhere it falls back to
C{fsync} of every file and every touched folder.

Structural changes (renaming or removing a folder tree) run as rounds of
their own, so that a rename never races a temporary file inside the folder
it moves.
"""

import ctypes
import ctypes.util
import os
import shutil
import threading
from collections import deque

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

log = Logger()

_TMP_SUFFIX = ".tmp"


def _loadSyncfs():
    """
    Find C{syncfs(2)} in the C library, or return C{None} where there is
    none (non-Linux), in which case rounds fall back to per-file C{fsync}.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


_syncfs = _loadSyncfs()


def _writeAll(fd, data):
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def fsyncFolder(path):
    """
    Make the entries of a folder (creations, renames, removals) durable.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def writeFileAtomically(path, data, mode=0o644):
    """
    Replace C{path} with C{data} durably, synchronously: temp file, fsync,
    rename, fsync of the folder.  For start-up and tools; the server's
    request paths go through L{DurableWriter}.

    @param data: C{bytes}.
    """
    folder = os.path.dirname(path) or "."
    tmp = path + _TMP_SUFFIX
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsyncFolder(folder)


class _Op:
    """
    One queued change.

    @ivar kind: C{"write"}, C{"mkdir"}, C{"rename"}, C{"rmtree"} or
        C{"unlink"}.
    """

    __slots__ = ("kind", "path", "data", "target", "mode", "deferred", "tmp", "error",
                 "supersededBy")

    def __init__(self, kind, path, data=None, target=None, mode=0o644):
        self.kind = kind
        self.path = path
        self.data = data
        self.target = target
        self.mode = mode
        self.deferred = Deferred()
        self.tmp = None
        self.error = None
        self.supersededBy = None

    @property
    def structural(self):
        return self.kind in ("rename", "rmtree", "unlink")


class DurableWriter:
    """
    Group-committing writer of whole files under one base folder.

    Changes are applied in the order they are queued.  Until a write has
    completed, L{pending} answers reads of its path, so the rest of the
    server sees its own writes at once.

    @ivar synchronous: when true, every change is carried out in the
        calling thread before the method returns (for unit tests and
        offline tools); the returned L{Deferred} has already fired.
    @ivar rounds: number of commit rounds run (for monitoring/benchmarks).
    """

    def __init__(self, base, reactor=None, synchronous=False, useSyncfs=True):
        if reactor is None:
            from twisted.internet import reactor
        self.base = base
        self._reactor = reactor
        self.synchronous = synchronous
        self._useSyncfs = useSyncfs and _syncfs is not None
        self._queue = deque()
        self._cond = threading.Condition()
        self._thread = None
        self._stopping = False
        self.pending = {}
        self.rounds = 0

    # -- public API ------------------------------------------------------

    def write(self, path, data, mode=0o644, tmpPath=None, makeFolder=False):
        """
        Replace the file C{path} with C{data} (C{bytes}).

        @param tmpPath: where to write the temporary file (same file
            system), e.g. a Maildir's C{tmp/}; default C{path + ".tmp"}.
        @param makeFolder: create the file's folder first if missing (one
            operation instead of a L{mkdir} and a write).
        @return: L{Deferred} firing with C{None} once durable.
        """
        op = _Op("write", path, data=data, mode=mode)
        op.tmp = tmpPath
        op.target = makeFolder
        self.pending[path] = op
        return self._submit(op)

    def commit(self, tmpPath, path):
        """
        Make a temporary file the caller has written (streamed) durable and
        rename it to C{path}.

        @return: L{Deferred} firing with C{None} once durable.
        """
        op = _Op("commit", path)
        op.tmp = tmpPath
        return self._submit(op)

    def append(self, path, data):
        """
        Append C{data} to C{path} (created if missing): O(1) journals.
        Do not mix with L{write} of the same path.

        @return: L{Deferred} firing with C{None} once durable.
        """
        return self._submit(_Op("append", path, data=data))

    def mkdir(self, path):
        """
        Create a folder (and missing parents); no error if it exists.
        """
        return self._submit(_Op("mkdir", path))

    def rename(self, path, target):
        """
        Rename a file or folder tree; fails if C{target} exists.
        """
        return self._submit(_Op("rename", path, target=target))

    def rmtree(self, path):
        """
        Remove a folder tree (no error if it is already gone).
        """
        return self._submit(_Op("rmtree", path))

    def unlink(self, path):
        """
        Remove a file (no error if it is already gone).
        """
        op = _Op("unlink", path)
        self.pending[path] = op
        return self._submit(op)

    def read(self, path):
        """
        Read a file, seeing changes still in flight.

        @return: C{bytes}, or C{None} if the file does not exist.
        """
        op = self.pending.get(path)
        if op is not None:
            return op.data
        try:
            with open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def start(self):
        """
        Start the writer thread (no-op in synchronous mode).
        """
        if self.synchronous or self._thread is not None:
            return
        self._stopping = False
        self._thread = threading.Thread(
            target=self._run, name="cgpro-durable-writer", daemon=True
        )
        self._thread.start()

    def stop(self):
        """
        Finish every queued change, then stop the thread.

        @return: L{Deferred} firing once the queue is empty.
        """
        if self._thread is None:
            return succeed(None)
        thread = self._thread
        self._thread = None
        with self._cond:
            self._stopping = True
            self._cond.notify()
        from twisted.internet.threads import deferToThread

        return deferToThread(thread.join)

    # -- machinery -------------------------------------------------------

    def _submit(self, op):
        if self.synchronous:
            self._runRound([op])
            self._finish([op])
            return op.deferred
        if self._thread is None:
            self.start()
        with self._cond:
            self._queue.append(op)
            self._cond.notify()
        return op.deferred

    def _run(self):
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if not self._queue and self._stopping:
                    return
                batch = self._takeRound()
            self._runRound(batch)
            self._reactor.callFromThread(self._finish, batch)

    def _takeRound(self):
        """
        Take the longest run of queued writes/mkdirs, or one structural op.
        """
        first = self._queue.popleft()
        batch = [first]
        if first.structural:
            return batch
        while self._queue and not self._queue[0].structural:
            batch.append(self._queue.popleft())
        return batch

    def _flush(self, fds=(), folders=()):
        if self._useSyncfs:
            fd = os.open(self.base, os.O_RDONLY)
            try:
                if _syncfs(fd) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, os.strerror(err))
            finally:
                os.close(fd)
        else:
            for fd in fds:
                os.fsync(fd)
            for folder in folders:
                fsyncFolder(folder)

    def _runRound(self, batch):
        """
        Carry out one round; record each op's outcome on the op.
        """
        self.rounds += 1
        if batch[0].structural:
            self._runStructural(batch[0])
            return
        fds = []
        ok = []
        # A round may hold several writes of one path: only the last one is
        # carried out; the earlier ones share its outcome.
        last = {}
        for op in batch:
            if op.kind == "write":
                if op.path in last:
                    last[op.path].supersededBy = op
                last[op.path] = op
        # Appends (journals) go last in the round, after the renames: a
        # journal line must never become durable before the file it names
        # (a Maildir message moving tmp/ -> new/), or a crash between the two
        # leaves a journal that points at nothing.
        appends = []
        for op in batch:
            if op.supersededBy is not None:
                continue
            if op.kind == "append":
                appends.append(op)
                continue
            try:
                if op.kind == "mkdir":
                    os.makedirs(op.path, exist_ok=True)
                    ok.append((op, None, os.path.dirname(op.path)))
                elif op.kind == "commit":
                    fd = os.open(op.tmp, os.O_RDONLY)
                    fds.append(fd)
                    ok.append((op, fd, None))
                else:
                    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
                    target = op.tmp = op.tmp or op.path + _TMP_SUFFIX
                    if op.target:
                        folder = os.path.dirname(op.path)
                        try:
                            os.mkdir(folder)
                        except FileExistsError:
                            pass
                        except FileNotFoundError:
                            os.makedirs(folder, exist_ok=True)
                        # the folder's own entry must be durable too
                        ok.append((_Op("mkdir", folder), None, os.path.dirname(folder)))
                    fd = os.open(target, flags, op.mode)
                    fds.append(fd)
                    _writeAll(fd, op.data)
                    ok.append((op, fd, None))
            except OSError as e:
                op.error = Failure(e)
        try:
            if ok:
                self._flush(fds=fds)
        except OSError as e:
            for op, _, _ in ok:
                op.error = Failure(e)
            ok = []
        finally:
            for fd in fds:
                os.close(fd)
        folders = set()
        done = []
        for op, fd, parent in ok:
            try:
                if op.kind in ("write", "commit"):
                    os.replace(op.tmp, op.path)
                    folders.add(os.path.dirname(op.path))
                    if os.path.dirname(op.tmp) != os.path.dirname(op.path):
                        folders.add(os.path.dirname(op.tmp))
                else:
                    folders.add(parent)
                done.append(op)
            except OSError as e:
                op.error = Failure(e)
        appendFds = []
        created = set()
        onlyAppends = not done
        failed = next((op.error for op in batch if op.kind != "append" and op.error), None)
        for op in appends:
            if failed is not None:
                # a journal line may describe a change of this round that
                # did not happen: write none of them
                op.error = failed
                continue
            try:
                try:
                    fd = os.open(op.path, os.O_WRONLY | os.O_APPEND)
                except FileNotFoundError:
                    fd = os.open(op.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, op.mode)
                    # its folder entry is new
                    created.add(os.path.dirname(op.path))
                appendFds.append(fd)
                _writeAll(fd, op.data)
                folders.add(os.path.dirname(op.path))
                done.append(op)
            except OSError as e:
                op.error = Failure(e)
        try:
            if onlyAppends and appendFds:
                # a round of journal lines alone (registrations, flags):
                # flushing those few files is far cheaper than syncfs of
                # the whole file system, which a busy disk makes slow
                for fd in appendFds:
                    os.fdatasync(fd)
                for folder in created:
                    fsyncFolder(folder)
            elif done:
                self._flush(fds=appendFds, folders=folders)
        except OSError as e:
            for op in done:
                op.error = Failure(e)
        finally:
            for fd in appendFds:
                os.close(fd)

    def _runStructural(self, op):
        try:
            parents = {os.path.dirname(op.path)}
            if op.kind == "rename":
                if os.path.exists(op.target):
                    raise FileExistsError(op.target)
                os.rename(op.path, op.target)
                parents.add(os.path.dirname(op.target))
            elif op.kind == "rmtree":
                if os.path.isdir(op.path):
                    # rename first so a crash mid-removal leaves no
                    # half-deleted object under its live name
                    trash = op.path + ".deleting"
                    if os.path.exists(trash):
                        shutil.rmtree(trash, ignore_errors=True)
                    os.rename(op.path, trash)
                    self._flush(folders=parents)
                    shutil.rmtree(trash, ignore_errors=True)
            elif op.kind == "unlink":
                try:
                    os.unlink(op.path)
                except FileNotFoundError:
                    pass
            self._flush(folders=parents)
        except OSError as e:
            op.error = Failure(e)

    def _finish(self, batch):
        for op in batch:
            final = op
            while final.supersededBy is not None:
                final = final.supersededBy
            op.error = final.error
            if self.pending.get(op.path) is op:
                del self.pending[op.path]
            if op.error is not None:
                log.error(
                    "durable {kind} of {path} failed: {err}",
                    kind=op.kind,
                    path=op.path,
                    err=op.error.value,
                )
                op.deferred.errback(op.error)
            else:
                op.deferred.callback(None)
