# -*- test-case-name: tests.sip.test_location -*-
"""
Tests for L{cgpro.sip.location}: binding rules of RFC 3261 section 10.3,
expiry on the clock, the journal, snapshots and reload after a restart.
"""

import os
import shutil
import tempfile

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from cgpro.core.files import DurableWriter
from cgpro.sip.address import Peer
from cgpro.sip.location import (
    JOURNAL, SNAPSHOT, Binding, LocationError, LocationService, contactKey)

AOR = "alice@main.dom"
SOURCE = Peer("UDP", "203.0.113.5", 40000)


def change(contact, expires=3600, q=1.0, source=SOURCE, path=(),
           instance=None, regId=None, userAgent="Phone/1.0"):
    """
    @return: one C{update} change tuple.
    """
    return (contact, expires, q, source, list(path), instance, regId,
            userAgent)


class HeldWriter:
    """
    A writer whose changes become durable only when the test says so,
    carried out in order by a real synchronous L{DurableWriter}.
    """

    def __init__(self, base):
        self.real = DurableWriter(base, synchronous=True)
        self.queue = []

    def append(self, path, data):
        """
        Queue an append.
        """
        d = Deferred()
        self.queue.append(("append", path, data, d))
        return d

    def write(self, path, data):
        """
        Queue a whole-file write.
        """
        d = Deferred()
        self.queue.append(("write", path, data, d))
        return d

    def flush(self):
        """
        Make every queued change durable and fire its L{Deferred}.
        """
        while self.queue:
            kind, path, data, d = self.queue.pop(0)
            getattr(self.real, kind)(path, data)
            d.callback(None)


class FastWriter:
    """
    A writer that skips the disk flush, for tests that make thousands of
    changes and do not test durability.
    """

    def append(self, path, data):
        """
        Append at once, without flushing.
        """
        with open(path, "ab") as f:
            f.write(data)
        return succeed(None)

    def write(self, path, data):
        """
        Replace at once, without flushing.
        """
        with open(path, "wb") as f:
            f.write(data)
        return succeed(None)


class FailingWriter:
    """
    A writer whose every change fails (a full disk).
    """

    def append(self, path, data):
        """
        Fail as a full disk does.
        """
        return fail(OSError(28, "No space left on device"))

    write = append


class LocationTestsMixin:
    """
    A clock, a temporary folder and a service over them.
    """

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1700000000)
        self.base = tempfile.mkdtemp(prefix="cgpro-location-")
        self.addCleanup(shutil.rmtree, self.base, True)
        self.folder = os.path.join(self.base, "SIP")
        self.writer = DurableWriter(self.base, synchronous=True)
        self.location = self.make()

    def make(self, writer=None, **kw):
        """
        @return: a loaded L{LocationService} on the test folder.
        """
        service = LocationService(self.clock, writer or self.writer,
                                  self.folder, **kw)
        service.load()
        self.addCleanup(service.stop)
        return service

    def update(self, changes, callId="call-1", cseq=1, aor=AOR, location=None):
        """
        Run an update that must succeed.

        @return: the resulting bindings.
        """
        location = location or self.location
        return self.successResultOf(location.update(aor, changes, callId, cseq))

    def contacts(self, aor=AOR, location=None):
        """
        @return: the contacts of C{aor}, in lookup order.
        """
        return [b.contact for b in (location or self.location).lookup(aor)]


class UpdateTests(LocationTestsMixin, SynchronousTestCase):
    """
    Tests for L{LocationService.update} and L{LocationService.lookup}.
    """

    def test_addAndLookup(self):
        """
        A binding carries what the REGISTER said and where it came from.
        """
        result = self.update([change("sip:alice@192.0.2.1:5060",
                                     path=["<sip:edge.example;lr>"])])
        self.assertEqual(len(result), 1)
        b = result[0]
        self.assertIsInstance(b, Binding)
        self.assertEqual((b.aor, b.contact, b.expires, b.q, b.callId, b.cseq),
                         (AOR, "sip:alice@192.0.2.1:5060",
                          self.clock.seconds() + 3600, 1.0, "call-1", 1))
        self.assertEqual(b.source, SOURCE)
        self.assertEqual(b.path, ("<sip:edge.example;lr>",))
        self.assertEqual(b.userAgent, "Phone/1.0")
        self.assertEqual(b.received, "sip:203.0.113.5:40000;transport=udp")
        self.assertEqual(self.location.count(), 1)
        self.assertEqual(list(self.location.aors()), [AOR])
        self.assertEqual(self.location.lookup("nobody@main.dom"), [])

    def test_qOrdering(self):
        """
        Lookup lists the highest q first.
        """
        self.update([change("sip:a@192.0.2.1", q=0.1),
                     change("sip:b@192.0.2.2", q=1.0),
                     change("sip:c@192.0.2.3", q=0.5)])
        self.assertEqual(self.contacts(),
                         ["sip:b@192.0.2.2", "sip:c@192.0.2.3",
                          "sip:a@192.0.2.1"])

    def test_refreshReplaces(self):
        """
        The same contact (host case aside) with a higher CSeq replaces the
        binding instead of adding one.
        """
        self.update([change("sip:a@Host.Example", expires=60)])
        self.clock.advance(30)
        result = self.update([change("sip:a@host.example", expires=120)],
                             cseq=2)
        self.assertEqual(len(result), 1)
        self.assertEqual(result[0].expires, self.clock.seconds() + 120)
        self.assertEqual(self.location.count(), 1)

    def test_cseqNotHigher(self):
        """
        Same Call-ID with a CSeq not higher is refused with 500 (RFC 3261
        section 10.3 step 7), and nothing changes.
        """
        self.update([change("sip:a@192.0.2.1")], cseq=5)
        failure = self.failureResultOf(self.location.update(
            AOR, [change("sip:b@192.0.2.2"), change("sip:a@192.0.2.1", 0)],
            "call-1", 5), LocationError)
        self.assertEqual(failure.value.code, 500)
        self.assertEqual(self.contacts(), ["sip:a@192.0.2.1"])

    def test_otherCallIdLowerCSeq(self):
        """
        A different Call-ID (the phone rebooted) may carry any CSeq.
        """
        self.update([change("sip:a@192.0.2.1")], cseq=5)
        self.update([change("sip:a@192.0.2.1", expires=60)], callId="call-2",
                    cseq=1)
        self.assertEqual(self.location.lookup(AOR)[0].callId, "call-2")

    def test_removeOne(self):
        """
        Expires 0 removes that contact only; removing an unknown one is
        harmless.
        """
        self.update([change("sip:a@192.0.2.1"), change("sip:b@192.0.2.2")])
        result = self.update([change("sip:a@192.0.2.1", 0),
                              change("sip:zz@192.0.2.9", 0)], cseq=2)
        self.assertEqual([b.contact for b in result], ["sip:b@192.0.2.2"])
        self.assertEqual(self.location.count(), 1)

    def test_tooMany(self):
        """
        Past C{maxPerAOR} the whole update is refused with 503.
        """
        location = self.make(maxPerAOR=2)
        self.update([change("sip:a@192.0.2.1"), change("sip:b@192.0.2.2")],
                    location=location)
        failure = self.failureResultOf(location.update(
            AOR, [change("sip:c@192.0.2.3")], "call-1", 2), LocationError)
        self.assertEqual(failure.value.code, 503)
        self.assertEqual(location.count(), 2)
        # replacing one while adding one fits
        self.update([change("sip:a@192.0.2.1", 0), change("sip:c@192.0.2.3")],
                    cseq=3, location=location)
        self.assertEqual(sorted(self.contacts(location=location)),
                         ["sip:b@192.0.2.2", "sip:c@192.0.2.3"])

    def test_instanceMatching(self):
        """
        With +sip.instance and reg-id a binding is that flow: a new
        Contact URI from the same instance and reg-id replaces it, another
        reg-id adds a second flow (RFC 5626).
        """
        urn = "<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"
        self.update([change("sip:a@192.0.2.1", instance=urn, regId=1)])
        self.update([change("sip:a@192.0.2.77", instance=urn, regId=1)],
                    cseq=2)
        self.assertEqual(self.contacts(), ["sip:a@192.0.2.77"])
        self.update([change("sip:a@192.0.2.78", instance=urn, regId=2)],
                    cseq=3)
        self.assertEqual(self.location.count(), 2)
        self.assertEqual({b.regId for b in self.location.lookup(AOR)}, {1, 2})

    def test_removeAll(self):
        """
        L{LocationService.removeAll} drops every binding of the AOR.
        """
        self.update([change("sip:a@192.0.2.1"), change("sip:b@192.0.2.2")])
        self.update([change("sip:c@192.0.2.3")], callId="call-2")
        self.assertEqual(self.successResultOf(
            self.location.removeAll(AOR, "call-3", 1)), [])
        self.assertEqual(self.location.count(), 0)
        self.assertEqual(list(self.location.aors()), [])

    def test_removeAllCSeqNotHigher(self):
        """
        Contact * with the Call-ID of a binding and a CSeq not higher is
        refused (RFC 3261 section 10.3 step 6).
        """
        self.update([change("sip:a@192.0.2.1")], cseq=4)
        self.failureResultOf(self.location.removeAll(AOR, "call-1", 4),
                             LocationError)
        self.assertEqual(self.location.count(), 1)
        self.successResultOf(self.location.removeAll(AOR, "call-1", 5))
        self.assertEqual(self.location.count(), 0)

    def test_contactKey(self):
        """
        Contact keys ignore host case and nothing else.
        """
        self.assertEqual(contactKey("sip:A@EXAMPLE.com;transport=tcp"),
                         "sip:A@example.com;transport=tcp")
        self.assertNotEqual(contactKey("sip:a@example.com"),
                            contactKey("sip:A@example.com"))

    def test_writeFailure(self):
        """
        When the journal cannot be written the update fails: the registrar
        must not say 200.
        """
        location = self.make(writer=FailingWriter())
        self.failureResultOf(location.update(AOR, [change("sip:a@192.0.2.1")],
                                             "c", 1), OSError)

    def test_acknowledgedOnlyWhenDurable(self):
        """
        The update's L{Deferred} waits for the journal line.
        """
        writer = HeldWriter(self.base)
        location = self.make(writer=writer)
        d = location.update(AOR, [change("sip:a@192.0.2.1")], "c", 1)
        self.assertNoResult(d)
        self.assertEqual(len(location.lookup(AOR)), 1)  # visible at once
        writer.flush()
        self.assertEqual(len(self.successResultOf(d)), 1)


class ExpiryTests(LocationTestsMixin, SynchronousTestCase):
    """
    Expiry through the timer wheel.
    """

    def test_expires(self):
        """
        A binding is gone within a second of its expiry, and no timer is
        left behind.
        """
        self.update([change("sip:a@192.0.2.1", expires=60)])
        self.clock.advance(59)
        self.assertEqual(self.location.count(), 1)
        self.clock.advance(1)
        self.assertEqual(self.location.lookup(AOR), [])
        self.clock.advance(1)
        self.assertEqual(self.location.count(), 0)
        self.assertEqual(list(self.location.aors()), [])
        self.assertEqual(self.location.wheel.pending, 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_refreshPostponesExpiry(self):
        """
        A refresh before expiry keeps the binding past the first deadline
        (the timer is rescheduled, not duplicated).
        """
        self.update([change("sip:a@192.0.2.1", expires=60)])
        self.clock.advance(50)
        self.update([change("sip:a@192.0.2.1", expires=60)], cseq=2)
        self.clock.pump([1] * 20)
        self.assertEqual(self.location.count(), 1)
        self.assertEqual(self.location.wheel.pending, 1)
        self.clock.pump([1] * 45)
        self.assertEqual(self.location.count(), 0)
        self.assertEqual(self.location.wheel.pending, 0)

    def test_refreshShortensExpiry(self):
        """
        A refresh with a shorter time moves the timer earlier.
        """
        self.update([change("sip:a@192.0.2.1", expires=3600)])
        self.update([change("sip:a@192.0.2.1", expires=60)], cseq=2)
        self.clock.pump([1] * 62)
        self.assertEqual(self.location.count(), 0)

    def test_manyBindings(self):
        """
        10,000 AORs registered and left to expire leave every table empty.
        """
        self.location = self.make(writer=FastWriter())
        for i in range(10000):
            self.update([change("sip:u%d@192.0.2.1:%d" % (i, 1024 + i),
                                expires=60 + i % 120)],
                        aor="u%d@main.dom" % (i,), callId="c%d" % (i,))
        self.assertEqual(self.location.count(), 10000)
        for i in range(0, 10000, 2):  # half of them refresh once
            self.update([change("sip:u%d@192.0.2.1:%d" % (i, 1024 + i),
                                expires=300)],
                        aor="u%d@main.dom" % (i,), callId="c%d" % (i,), cseq=2)
        self.assertEqual(self.location.count(), 10000)
        self.clock.pump([10] * 32)
        self.assertEqual(self.location.count(), 0)
        self.assertEqual(list(self.location.aors()), [])
        self.assertEqual(self.location._aors, {})
        self.assertEqual(self.location.wheel.pending, 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stop(self):
        """
        L{LocationService.stop} leaves no delayed call.
        """
        self.update([change("sip:a@192.0.2.1")])
        self.location.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])


class PersistenceTests(LocationTestsMixin, SynchronousTestCase):
    """
    Journal, snapshot, and reload after a restart.
    """

    def restart(self, **kw):
        """
        @return: a new service over the same folder, as after a restart.
        """
        self.location.stop()
        return self.make(**kw)

    def test_reload(self):
        """
        A restarted service has every binding with all its fields.
        """
        urn = "<urn:uuid:1>"
        self.update([change("sip:a@192.0.2.1", q=0.5, path=["<sip:p1;lr>"]),
                     change("sip:b@192.0.2.2;transport=tcp",
                            source=Peer("TCP", "2001:db8::1", 5070),
                            instance=urn, regId=1, userAgent=None)])
        self.update([change("sip:c@192.0.2.3", expires=120)],
                    aor="bob@main.dom")
        before = {(b.aor, b.contact, b.expires, b.q, b.callId, b.cseq,
                   b.source, b.path, b.instance, b.regId, b.userAgent)
                  for aor in self.location.aors()
                  for b in self.location.lookup(aor)}
        again = self.restart()
        after = {(b.aor, b.contact, b.expires, b.q, b.callId, b.cseq,
                  b.source, b.path, b.instance, b.regId, b.userAgent)
                 for aor in again.aors() for b in again.lookup(aor)}
        self.assertEqual(after, before)
        self.assertEqual(len(after), 3)
        # the reloaded bindings expire on the clock too
        self.clock.pump([1] * 121)
        self.assertEqual(again.count(), 2)

    def test_reloadAppliesRemovals(self):
        """
        Removals, refreshes and wildcards replay in order.
        """
        self.update([change("sip:a@192.0.2.1"), change("sip:b@192.0.2.2")])
        self.update([change("sip:a@192.0.2.1", 0)], cseq=2)
        self.update([change("sip:b@192.0.2.2", expires=600)], cseq=3)
        self.update([change("sip:c@192.0.2.3")], aor="bob@main.dom")
        self.successResultOf(self.location.removeAll("bob@main.dom", "x", 1))
        again = self.restart()
        self.assertEqual([(b.contact, b.expires) for b in again.lookup(AOR)],
                         [("sip:b@192.0.2.2", self.clock.seconds() + 600)])
        self.assertEqual(again.lookup("bob@main.dom"), [])
        # CSeq state survives: the same Call-ID cannot go back
        self.failureResultOf(again.update(AOR, [change("sip:b@192.0.2.2")],
                                          "call-1", 3), LocationError)

    def test_expiredDroppedAtLoad(self):
        """
        Bindings that expired while the server was down are not loaded.
        """
        self.update([change("sip:a@192.0.2.1", expires=60),
                     change("sip:b@192.0.2.2", expires=600)])
        self.location.stop()
        self.clock.advance(100)
        again = self.make()
        self.assertEqual(self.contacts(location=again), ["sip:b@192.0.2.2"])

    def test_tornLastLine(self):
        """
        A journal whose last line was cut by a crash loads everything
        before it.
        """
        self.update([change("sip:a@192.0.2.1")])
        self.update([change("sip:b@192.0.2.2")], aor="bob@main.dom")
        path = os.path.join(self.folder, JOURNAL)
        with open(path, "rb") as f:
            data = f.read()
        with open(path, "wb") as f:
            f.write(data[:-20])
        again = self.restart()
        self.assertEqual(self.contacts(location=again), ["sip:a@192.0.2.1"])
        self.assertEqual(again.lookup("bob@main.dom"), [])
        # and it keeps working after the damaged line
        self.update([change("sip:c@192.0.2.3")], aor="carol@main.dom",
                    location=again)
        third = self.restart()
        self.assertEqual(self.contacts("carol@main.dom", location=third),
                         ["sip:c@192.0.2.3"])

    def test_compaction(self):
        """
        Past C{compactAfter} lines the journal is replaced by a snapshot;
        a reload gives the same bindings.
        """
        location = self.make(compactAfter=5)
        for i in range(12):
            self.update([change("sip:a@192.0.2.1", expires=600 + i)],
                        cseq=i + 1, location=location)
        self.update([change("sip:b@192.0.2.2")], aor="bob@main.dom",
                    location=location)
        self.assertGreaterEqual(location.compactions, 2)
        with open(os.path.join(self.folder, JOURNAL), "rb") as f:
            self.assertLess(f.read().count(b"\n"), 5)
        self.assertTrue(os.path.exists(os.path.join(self.folder, SNAPSHOT)))
        location.stop()
        again = self.make()
        self.assertEqual([(b.contact, b.expires, b.cseq) for b in again.lookup(AOR)],
                         [("sip:a@192.0.2.1", self.clock.seconds() + 611, 12)])
        self.assertEqual(self.contacts("bob@main.dom", location=again),
                         ["sip:b@192.0.2.2"])

    def test_compactionWithChangesInFlight(self):
        """
        Changes made while a snapshot is being written survive the
        journal's replacement, whatever order the writes land in.
        """
        writer = HeldWriter(self.base)
        location = self.make(writer=writer, compactAfter=3)
        for i in range(3):
            location.update(AOR, [change("sip:a%d@192.0.2.1" % i)], "c", i + 1)
        self.assertEqual(location._compacting, [])  # snapshot queued
        location.update(AOR, [change("sip:a0@192.0.2.1", 0)], "c", 10)
        location.update("bob@main.dom", [change("sip:b@192.0.2.2")], "c", 1)
        writer.flush()
        self.assertEqual(location.compactions, 1)
        location.update("carol@main.dom", [change("sip:c@192.0.2.3")], "c", 1)
        writer.flush()
        location.stop()
        again = self.make()
        self.assertEqual(sorted(self.contacts(location=again)),
                         ["sip:a1@192.0.2.1", "sip:a2@192.0.2.1"])
        self.assertEqual(self.contacts("bob@main.dom", location=again),
                         ["sip:b@192.0.2.2"])
        self.assertEqual(self.contacts("carol@main.dom", location=again),
                         ["sip:c@192.0.2.3"])

    def test_chunkedCompaction(self):
        """
        A snapshot written over several reactor turns, with changes made
        between them, still reloads to the final state.
        """
        location = self.make(compactAfter=6, compactChunk=2)
        aors = ["u%d@main.dom" % i for i in range(6)]
        for aor in aors:
            self.update([change("sip:x@192.0.2.1")], aor=aor, location=location)
        self.assertIsNotNone(location._compacting)  # first chunk done
        # one AOR already serialized, one not yet, one new
        self.update([change("sip:x@192.0.2.1", 0)], aor=aors[0], cseq=2,
                    location=location)
        self.update([change("sip:y@192.0.2.2")], aor=aors[5], cseq=2,
                    location=location)
        self.update([change("sip:z@192.0.2.3")], aor="new@main.dom",
                    location=location)
        self.clock.advance(0)
        self.clock.advance(0)
        self.assertIsNone(location._compacting)
        self.assertEqual(location.compactions, 1)
        location.stop()
        again = self.make()
        self.assertEqual(again.lookup(aors[0]), [])
        self.assertEqual(sorted(self.contacts(aors[5], location=again)),
                         ["sip:x@192.0.2.1", "sip:y@192.0.2.2"])
        self.assertEqual(self.contacts("new@main.dom", location=again),
                         ["sip:z@192.0.2.3"])
        self.assertEqual(again.count(), 7)

    def test_stopDuringCompaction(self):
        """
        Stopping mid-snapshot leaves no delayed call and loses nothing.
        """
        location = self.make(compactAfter=4, compactChunk=1)
        for i in range(4):
            self.update([change("sip:x@192.0.2.1")], aor="u%d@main.dom" % i,
                        location=location)
        location.stop()
        self.location.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.make().count(), 4)

    def test_failedSnapshotKeepsJournal(self):
        """
        If the snapshot cannot be written the journal stays as it was.
        """
        location = self.make(compactAfter=2)
        real = self.writer.write
        self.writer.write = lambda path, data: fail(OSError(28, "full"))
        for i in range(3):
            self.update([change("sip:a%d@192.0.2.1" % i)], cseq=i + 1,
                        location=location)
        self.writer.write = real
        self.assertEqual(location.compactions, 0)
        self.flushLoggedErrors(OSError)
        location.stop()
        again = self.make()
        self.assertEqual(len(again.lookup(AOR)), 3)
