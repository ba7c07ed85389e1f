# -*- test-case-name: tests.pbx.test_cdr -*-
"""
Tests for L{cgpro.pbx.cdr}: durable appends, reading back, torn lines and
the C{GETCDRS} command.
"""

import datetime
import os
import shutil
import tempfile

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from cgpro.core.errors import AccessDenied, CLIError
from cgpro.core.files import DurableWriter
from cgpro.pbx.cdr import CDRLog
from tests.pbx.test_envcommands import EnvCommandsTestsMixin

#: 2026-11-22 10:00:00 UTC
NOON = 1795341600


def call(number, **extra):
    record = {"From": "alice@d.dom", "To": number, "Application": "gatewaycaller",
              "Account": "pbx@d.dom", "Result": "200 OK", "Leg": "callout",
              "Start": NOON - 70, "Answer": NOON - 60, "End": NOON}
    record.update(extra)
    return record


class CDRLogTests(SynchronousTestCase):
    """
    L{CDRLog.record} and L{CDRLog.read}.
    """

    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="cgpro-cdr-")
        self.addCleanup(shutil.rmtree, self.base, True)
        self.clock = Clock()
        self.clock.advance(NOON)
        self.writer = DurableWriter(self.base, synchronous=True)
        self.log = CDRLog(self.base, self.writer, self.clock)

    def test_recordLine(self):
        """One line in the day file, fired only once written, with the
        duration computed from answer to end."""
        record = self.successResultOf(self.log.record(call("+14155551234", Cost=0)))
        path = os.path.join(self.base, "CDR", "2026-11-22.log")
        with open(path, "rb") as f:
            lines = f.read().splitlines()
        self.assertEqual(len(lines), 1)
        self.assertIn(b"Duration=#60;", lines[0])
        self.assertEqual(record["Duration"], 60)
        self.assertEqual(record["End"], datetime.datetime(2026, 11, 22, 10, 0, 0))

    def test_readBack(self):
        """Records come back as written, oldest first."""
        for n in range(3):
            self.successResultOf(self.log.record(call("+1415555000%d" % n, Id="c%d" % n)))
        records = self.log.read()
        self.assertEqual([r["Id"] for r in records], ["c0", "c1", "c2"])
        self.assertEqual(records[0]["To"], "+14155550000")
        self.assertEqual(records[0]["Start"], datetime.datetime(2026, 11, 22, 9, 58, 50))
        self.assertEqual(records[0]["Leg"], "callout")

    def test_limitKeepsNewest(self):
        """C{limit} keeps the newest records, across day files."""
        self.successResultOf(self.log.record(call("1", Id="day1")))
        self.clock.advance(86400)
        self.successResultOf(self.log.record(call("2", Id="day2a", End=NOON + 86400)))
        self.successResultOf(self.log.record(call("3", Id="day2b", End=NOON + 86400)))
        self.assertEqual(len(self.log.files()), 2)
        self.assertEqual([r["Id"] for r in self.log.read(limit=2)], ["day2a", "day2b"])
        self.assertEqual([r["Id"] for r in self.log.read()], ["day1", "day2a", "day2b"])

    def test_since(self):
        """C{since} keeps records that ended at or after it."""
        self.successResultOf(self.log.record(call("1", Id="early", End=NOON - 3600)))
        self.successResultOf(self.log.record(call("2", Id="late")))
        since = datetime.datetime(2026, 11, 22, 9, 30)
        self.assertEqual([r["Id"] for r in self.log.read(since=since)], ["late"])

    def test_defaults(self):
        """An unanswered call has duration 0; Id and End are filled in."""
        record = self.successResultOf(self.log.record(
            {"From": "a", "To": "b", "Result": (486, "Busy Here")}))
        self.assertEqual(record["Duration"], 0)
        self.assertEqual(record["Leg"], "call")
        self.assertEqual(record["Result"], "486 Busy Here")
        self.assertTrue(record["Id"])
        self.assertEqual(record["End"], datetime.datetime(2026, 11, 22, 10, 0, 0))

    def test_badLeg(self):
        """A leg other than call/callout is refused before anything is written."""
        self.assertRaises(ValueError, self.log.record, call("1", Leg="other"))
        self.assertEqual(self.log.read(), [])

    def test_tornLine(self):
        """A torn last line (a crash mid-append) is skipped on reading, and
        the next process's first record starts on a line of its own."""
        self.successResultOf(self.log.record(call("1", Id="kept")))
        path = self.log.files()[0]
        with open(path, "ab") as f:
            f.write(b"{Id=torn; To=")
        self.assertEqual([r["Id"] for r in self.log.read()], ["kept"])
        restarted = CDRLog(self.base, self.writer, self.clock)
        self.successResultOf(restarted.record(call("2", Id="after")))
        self.assertEqual([r["Id"] for r in restarted.read()], ["kept", "after"])
        self.flushLoggedErrors()

    def test_withoutWriter(self):
        """Without a writer records are appended synchronously all the same."""
        log = CDRLog(self.base, None, self.clock)
        self.successResultOf(log.record(call("1", Id="sync")))
        self.assertEqual([r["Id"] for r in log.read()], ["sync"])

    def test_firesOnlyWhenDurable(self):
        """The record's Deferred waits for the writer's append (which fires
        once the line is flushed): nothing is acknowledged before that."""
        writer = _HeldWriter()
        log = CDRLog(self.base, writer, self.clock)
        d = log.record(call("1", Id="held"))
        self.assertNoResult(d)
        [(path, data, pending)] = writer.appends
        self.assertEqual(path, os.path.join(self.base, "CDR", "2026-11-22.log"))
        self.assertTrue(data.startswith(b"{") and data.endswith(b"\n"))
        pending.callback(None)
        self.assertEqual(self.successResultOf(d)["Id"], "held")


class _HeldWriter:
    """
    A writer whose appends complete only when the test says so.
    """

    def __init__(self):
        self.appends = []

    def append(self, path, data):
        d = Deferred()
        self.appends.append((path, data, d))
        return d


class GetCDRsTests(EnvCommandsTestsMixin, SynchronousTestCase):
    """
    C{GETCDRS} over the command table.
    """

    def setUp(self):
        EnvCommandsTestsMixin.setUp(self)
        self.context.reactor.advance(NOON - self.context.reactor.seconds())
        from cgpro.pbx.cdr import cdrLog
        self.log = cdrLog(self.session("postmaster@main.dom"))
        for n in range(3):
            self.successResultOf(self.log.record(call(str(n), Id="c%d" % n,
                                                      End=NOON - 3600 * (2 - n))))

    def test_all(self):
        """The postmaster gets an array of dictionaries on the wire."""
        records = self.value("GETCDRS")
        self.assertEqual([r["Id"] for r in records], ["c0", "c1", "c2"])

    def test_limitAndSince(self):
        """C{LIMIT} and C{SINCE} narrow the answer."""
        self.assertEqual([r["Id"] for r in self.value("GETCDRS LIMIT 1")], ["c2"])
        self.assertEqual([r["Id"] for r in self.value("GETCDRS SINCE #T22-11-2026_08:30:00")],
                         ["c1", "c2"])
        self.assertEqual(
            [r["Id"] for r in self.value("GETCDRS SINCE #T22-11-2026_07:00:00 LIMIT #2")],
            ["c1", "c2"])

    def test_badArguments(self):
        """Wrong argument types are clear errors."""
        self.assertRaises(CLIError, self.runAs, "postmaster@main.dom", "GETCDRS SINCE yesterday")
        self.assertRaises(CLIError, self.runAs, "postmaster@main.dom", "GETCDRS LIMIT 0")
        self.assertRaises(CLIError, self.runAs, "postmaster@main.dom", "GETCDRS FROM x")

    def test_rights(self):
        """Server administrators only."""
        self.assertEqual(len(self.runAs("ops@main.dom", "GETCDRS")), 3)
        self.assertRaises(AccessDenied, self.runAs, "da@d.dom", "GETCDRS")
        self.assertRaises(AccessDenied, self.runAs, "user@d.dom", "GETCDRS")
