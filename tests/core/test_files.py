# -*- test-case-name: tests.core.test_files -*-
"""
Tests for L{cgpro.core.files}: atomic replacement and group commit.
"""

import os
import tempfile
import threading
import shutil

from twisted.internet.defer import gatherResults
from twisted.trial.unittest import SynchronousTestCase, TestCase

from cgpro.core import files
from cgpro.core.files import DurableWriter, writeFileAtomically


def _tempdir(case):
    path = tempfile.mkdtemp(prefix="cgpro-files-")
    case.addCleanup(shutil.rmtree, path, True)
    return path


class WriteAtomicallyTests(SynchronousTestCase):
    """
    L{writeFileAtomically} replaces a file in one step.
    """

    def test_replaces(self):
        """The new content replaces the old and no temp file is left."""
        base = _tempdir(self)
        path = os.path.join(base, "a.settings")
        writeFileAtomically(path, b"one")
        writeFileAtomically(path, b"two", mode=0o600)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"two")
        self.assertEqual(os.listdir(base), ["a.settings"])


class SynchronousWriterTests(SynchronousTestCase):
    """
    L{DurableWriter} in synchronous mode (what unit tests and start-up use).
    """

    def setUp(self):
        self.base = _tempdir(self)
        self.writer = DurableWriter(self.base, synchronous=True)

    def test_writeMkdirRead(self):
        """A folder and a file in it are created in one round."""
        folder = os.path.join(self.base, "x", "y")
        self.writer.mkdir(folder)
        self.successResultOf(self.writer.write(os.path.join(folder, "f"), b"data"))
        self.assertEqual(self.writer.read(os.path.join(folder, "f")), b"data")
        self.assertEqual(os.listdir(folder), ["f"])
        self.assertEqual(self.writer.pending, {})

    def test_readMissing(self):
        """Reading a missing file gives None."""
        self.assertIsNone(self.writer.read(os.path.join(self.base, "nope")))

    def test_renameAndRmtree(self):
        """Structural changes move and remove whole trees."""
        a = os.path.join(self.base, "a")
        self.writer.mkdir(a)
        self.successResultOf(self.writer.write(os.path.join(a, "f"), b"1"))
        self.successResultOf(self.writer.rename(a, os.path.join(self.base, "b")))
        self.assertEqual(os.listdir(self.base), ["b"])
        self.failureResultOf(self.writer.rename(os.path.join(self.base, "b"), self.base), OSError)
        self.flushLoggedErrors(OSError)
        self.successResultOf(self.writer.rmtree(os.path.join(self.base, "b")))
        self.assertEqual(os.listdir(self.base), [])

    def test_unlink(self):
        """unlink removes a file and tolerates a missing one."""
        path = os.path.join(self.base, "f")
        self.successResultOf(self.writer.write(path, b"1"))
        self.successResultOf(self.writer.unlink(path))
        self.successResultOf(self.writer.unlink(path))
        self.assertFalse(os.path.exists(path))

    def test_failureReported(self):
        """A write into a missing folder fails its Deferred and leaves nothing pending."""
        d = self.writer.write(os.path.join(self.base, "missing", "f"), b"1")
        self.failureResultOf(d, OSError)
        self.assertEqual(self.writer.pending, {})
        self.flushLoggedErrors(OSError)

    def test_appendJournal(self):
        """append adds to a file, creating it, in order."""
        path = os.path.join(self.base, "journal")
        for i in range(3):
            self.successResultOf(self.writer.append(path, b"%d\n" % i))
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"0\n1\n2\n")

    def test_commitStreamedTemp(self):
        """commit makes a caller-written temp file durable under its final name."""
        tmp = os.path.join(self.base, "7.tmp")
        with open(tmp, "wb") as f:
            f.write(b"body")
        self.successResultOf(self.writer.commit(tmp, os.path.join(self.base, "7.msg")))
        self.assertEqual(sorted(os.listdir(self.base)), ["7.msg"])

    def test_tmpPathElsewhere(self):
        """write can stage its temp file in another folder (Maildir tmp/)."""
        for sub in ("tmp", "new"):
            os.mkdir(os.path.join(self.base, sub))
        self.successResultOf(self.writer.write(os.path.join(self.base, "new", "m1"), b"x",
                                               tmpPath=os.path.join(self.base, "tmp", "m1")))
        self.assertEqual(os.listdir(os.path.join(self.base, "tmp")), [])
        self.assertEqual(os.listdir(os.path.join(self.base, "new")), ["m1"])

    def test_appendAfterRename(self):
        """A journal line is written only after the file it names is in place."""
        for sub in ("tmp", "new"):
            os.mkdir(os.path.join(self.base, sub))
        calls = []
        realOpen, realReplace = os.open, os.replace
        self.patch(files.os, "open", lambda p, *a: (calls.append(("open", p)), realOpen(p, *a))[1])
        self.patch(files.os, "replace", lambda a, b: (calls.append(("replace", b)), realReplace(a, b))[1])
        message = os.path.join(self.base, "new", "m1")
        journal = os.path.join(self.base, "journal")
        self.writer.synchronous = False
        batch = [files._Op("write", message, data=b"x"), files._Op("append", journal, data=b"+ m1\n")]
        batch[0].tmp = os.path.join(self.base, "tmp", "m1")
        self.writer._runRound(batch)
        self.assertLess(calls.index(("replace", message)), calls.index(("open", journal)))

    def test_failedWriteWritesNoJournal(self):
        """If a file of the round fails, the round's journal lines are not written."""
        journal = os.path.join(self.base, "journal")
        batch = [files._Op("write", os.path.join(self.base, "missing", "m"), data=b"x"),
                 files._Op("append", journal, data=b"+ m\n")]
        self.writer._runRound(batch)
        self.assertIsNotNone(batch[1].error)
        self.assertFalse(os.path.exists(journal))

    def test_fsyncFallback(self):
        """Without syncfs every file and folder is fsync'd instead."""
        writer = DurableWriter(self.base, synchronous=True, useSyncfs=False)
        synced = []
        original = files.fsyncFolder
        self.patch(files, "fsyncFolder", lambda p: (synced.append(p), original(p)))
        self.successResultOf(writer.write(os.path.join(self.base, "f"), b"1"))
        self.assertIn(self.base, synced)


class ThreadedWriterTests(TestCase):
    """
    L{DurableWriter} with its thread: group commit and read-your-writes.
    """

    def setUp(self):
        self.base = _tempdir(self)
        self.writer = DurableWriter(self.base)
        self.writer.start()
        self.addCleanup(self.writer.stop)

    def test_groupCommit(self):
        """Many queued writes complete in fewer rounds than writes, all durable."""
        event = threading.Event()
        # Hold the thread in its first round so the rest queue up behind it.
        original = self.writer._runRound

        def slowRound(batch):
            event.wait(5)
            original(batch)

        self.writer._runRound = slowRound
        ds = [self.writer.write(os.path.join(self.base, "f%d" % i), b"%d" % i) for i in range(50)]
        self.assertEqual(self.writer.read(os.path.join(self.base, "f7")), b"7")
        event.set()

        def check(_):
            self.assertEqual(len(os.listdir(self.base)), 50)
            self.assertLess(self.writer.rounds, 50)
            self.assertEqual(self.writer.pending, {})

        return gatherResults(ds).addCallback(check)

    def test_orderKept(self):
        """Writes of one path land in the order they were queued."""
        path = os.path.join(self.base, "f")
        ds = [self.writer.write(path, b"%d" % i) for i in range(20)]

        def check(_):
            with open(path, "rb") as f:
                self.assertEqual(f.read(), b"19")

        return gatherResults(ds).addCallback(check)
