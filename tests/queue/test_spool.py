# -*- test-case-name: tests.queue.test_spool -*-
"""
Tests for L{cgpro.queue.spool}: committing, aborting, spilling big
messages, queue ids across restarts, and recovery of the folder.
"""

import os
import shutil
import tempfile

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from cgpro.core import dataformat
from cgpro.core.envelope import Envelope
from cgpro.core.files import DurableWriter
from cgpro.core.interfaces import IIncomingMessage
from cgpro.queue import spool as spoolModule
from cgpro.queue.spool import Spool


class SpoolTests(SynchronousTestCase):
    """
    The queue folder of one base folder.
    """

    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="cgpro-spool-")
        self.addCleanup(shutil.rmtree, self.base, True)
        self.writer = DurableWriter(self.base, synchronous=True)
        self.clock = Clock()
        self.clock.advance(1795000000)
        self.committed = []
        self.spool = self.makeSpool()

    def makeSpool(self, **kw):
        return Spool(self.base, self.writer, self.clock, **kw)

    def onCommit(self, id, envelope, record, data, offset, size):
        self.committed.append((id, envelope, data, offset, size))
        return id

    def envelope(self):
        env = Envelope(sender="a@b.dom", protocol="ESMTP")
        env.addRecipient("alice@main.dom")
        env.addRecipient("bob@main.dom", notify=("SUCCESS",))
        return env

    def files(self):
        return sorted(os.listdir(self.spool.folder))

    def test_interface(self):
        """An incoming message provides IIncomingMessage."""
        verifyObject(IIncomingMessage, self.spool.incoming(self.onCommit))

    def test_commit(self):
        """Commit writes the envelope line then the data, and fires with the id."""
        incoming = self.spool.incoming(self.onCommit)
        incoming.write(b"Subject: x\r\n\r\n")
        incoming.write(b"body\r\n")
        self.assertEqual(incoming.size, 20)
        result = self.successResultOf(incoming.commit(self.envelope()))
        self.assertEqual(result, incoming.id)
        self.assertEqual(self.files(), sorted(["LastId", incoming.id + ".msg"]))
        with open(self.spool.msgPath(incoming.id), "rb") as f:
            line = f.readline()
            rest = f.read()
        self.assertEqual(rest, b"Subject: x\r\n\r\nbody\r\n")
        record = dataformat.loads(line.rstrip(b"\r\n"))
        env = Envelope.fromDict(record)
        self.assertEqual(env.sender, "a@b.dom")
        self.assertEqual([r.address for r in env.recipients], ["alice@main.dom", "bob@main.dom"])
        self.assertEqual(env.recipients[1].notify, ("SUCCESS",))
        self.assertEqual(env.id, incoming.id)
        self.assertEqual(env.size, 20)
        self.assertIsNotNone(env.received)
        (id, _, data, offset, size), = self.committed
        self.assertEqual((data, offset, size), (rest, len(line), 20))

    def test_abort(self):
        """Abort leaves nothing behind and refuses more data."""
        incoming = self.spool.incoming(self.onCommit)
        incoming.write(b"partial")
        incoming.abort()
        self.assertEqual([f for f in self.files() if f != "LastId"], [])
        self.assertRaises(RuntimeError, incoming.write, b"x")
        self.assertEqual(self.committed, [])

    def test_spill(self):
        """A message over the memory limit streams to .tmp and commits whole."""
        self.spool = self.makeSpool(memoryLimit=10)
        incoming = self.spool.incoming(self.onCommit)
        incoming.write(b"0123456789")
        self.assertFalse(os.path.exists(self.spool.tmpPath(incoming.id)))
        incoming.write(b"abcdef")
        self.assertTrue(os.path.exists(self.spool.tmpPath(incoming.id)))
        incoming.write(b"XYZ")
        self.successResultOf(incoming.commit(self.envelope()))
        self.assertEqual(self.files(), sorted(["LastId", incoming.id + ".msg"]))
        offset = self.committed[0][3]
        self.assertIsNone(self.committed[0][2])
        self.assertEqual(self.spool.readData(incoming.id, offset), b"0123456789abcdefXYZ")

    def test_spillAbort(self):
        """Aborting a spilled message removes its .tmp file."""
        self.spool = self.makeSpool(memoryLimit=3)
        incoming = self.spool.incoming(self.onCommit)
        incoming.write(b"0123456789")
        incoming.abort()
        self.assertEqual(self.files(), ["LastId"])

    def test_idsIncrease(self):
        """Ids are increasing decimal numbers."""
        ids = [int(self.spool.newId()) for _ in range(5)]
        self.assertEqual(ids, sorted(ids))
        self.assertEqual(len(set(ids)), 5)

    def test_idsSurviveRestart(self):
        """A restarted spool continues above every id used, even with an empty folder."""
        first = [int(self.spool.newId()) for _ in range(3)]
        again = self.makeSpool()
        again.recover()
        self.assertGreater(int(again.newId()), max(first))

    def test_idsAboveFilesInFolder(self):
        """Ids found in the folder are never reused, even beyond the stored ceiling."""
        os.makedirs(self.spool.folder, exist_ok=True)
        with open(os.path.join(self.spool.folder, "5000000.msg"), "wb") as f:
            f.write(b"{Sender=a;Recipients=();}\r\nx")
        self.assertEqual(self.spool.newId(), "5000001")

    def test_idBlocks(self):
        """The ceiling is stored once per block of ids."""
        writes = []
        original = self.writer.write
        self.patch(self.writer, "write", lambda path, data, **kw: (
            writes.append(path), original(path, data, **kw))[1])
        self.patch(spoolModule, "ID_BLOCK", 10)
        for _ in range(25):
            self.spool.newId()
        self.assertEqual(len(writes), 3)

    def test_recover(self):
        """Recovery deletes .tmp files and orphan journals and reads messages with journals."""
        incoming = self.spool.incoming(self.onCommit)
        incoming.write(b"data\r\n")
        self.successResultOf(incoming.commit(self.envelope()))
        self.successResultOf(self.spool.appendJournal(
            incoming.id, [{"Index": 0, "Status": "delivered", "Code": 250}]))
        folder = self.spool.folder
        for name in ("77.tmp", "78.msg.tmp", "79.sta"):
            with open(os.path.join(folder, name), "wb") as f:
                f.write(b"junk")
        found = self.makeSpool().recover()
        self.assertEqual(self.files(),
                         sorted(["LastId", incoming.id + ".msg", incoming.id + ".sta"]))
        queued, = found
        self.assertEqual(queued.id, incoming.id)
        self.assertEqual(queued.envelope.id, incoming.id)
        self.assertEqual(queued.size, 6)
        self.assertEqual(self.spool.readData(queued.id, queued.offset), b"data\r\n")
        self.assertEqual(queued.journal, [{"Index": 0, "Status": "delivered", "Code": 250}])
        self.assertFalse(queued.tornJournal)

    def test_recoverTornJournal(self):
        """A journal ending in a partial line is read without it and flagged."""
        incoming = self.spool.incoming(self.onCommit)
        self.successResultOf(incoming.commit(self.envelope()))
        with open(self.spool.staPath(incoming.id), "wb") as f:
            f.write(b"{Index=#0;Status=delivered;Code=#250;}\n{Index=#1;Sta")
        queued, = self.makeSpool().recover()
        self.assertEqual(len(queued.journal), 1)
        self.assertTrue(queued.tornJournal)
        self.successResultOf(self.spool.appendJournal(
            queued.id, [{"Index": 1, "Status": "failed"}], newLine=True))
        journal, torn = self.spool.readJournal(queued.id)
        self.assertEqual([r["Index"] for r in journal], [0, 1])
        self.assertFalse(torn)

    def test_recoverBadFile(self):
        """An unreadable message file is set aside as .bad, not retried forever."""
        os.makedirs(self.spool.folder, exist_ok=True)
        with open(os.path.join(self.spool.folder, "12.msg"), "wb") as f:
            f.write(b"(not a dictionary\r\nxx")
        self.assertEqual(self.makeSpool().recover(), [])
        self.assertIn("12.bad", self.files())

    def test_remove(self):
        """remove deletes the message and its journal."""
        incoming = self.spool.incoming(self.onCommit)
        self.successResultOf(incoming.commit(self.envelope()))
        self.successResultOf(self.spool.appendJournal(incoming.id, [{"Event": "Rules"}]))
        self.spool.remove(incoming.id)
        self.assertEqual(self.files(), ["LastId"])
