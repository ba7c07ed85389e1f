# -*- test-case-name: tests.queue.test_crash -*-
"""
The crash requirement of issue 3 at the queue level: while messages are
submitted, the process is killed with SIGKILL; after a restart every
message that was acknowledged is in its mailbox exactly once.

The server runs in a child process (L{tests.queue.crashchild}) on the
real reactor with the threaded writer; this test only starts, kills and
inspects it.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from twisted.trial.unittest import SynchronousTestCase

import tests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(tests.__file__)))


def _child(base, *args):
    return subprocess.Popen(
        [sys.executable, "-m", "tests.queue.crashchild", base] + list(args),
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


class CrashTests(SynchronousTestCase):
    """
    SIGKILL during a load, then a restart.
    """

    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="cgpro-crash-")
        self.addCleanup(shutil.rmtree, self.base, True)

    def delivered(self):
        """
        @return: C{{message number: copies}} found in the store.
        """
        found = {}
        store = os.path.join(self.base, "Store")
        for account in os.listdir(store):
            for name in os.listdir(os.path.join(store, account)):
                if name.endswith(".tmp"):
                    continue
                with open(os.path.join(store, account, name), "rb") as f:
                    n = int(re.search(rb"Subject: n([0-9]+)", f.read()).group(1))
                found[n] = found.get(n, 0) + 1
        return found

    def test_killDuringLoad(self):
        """Every acknowledged message is delivered exactly once after SIGKILL and restart."""
        child = _child(self.base, "send", "2000")
        acked = set()
        deadline = time.time() + 60
        while len(acked) < 300 and time.time() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            match = re.match(rb"ACK ([0-9]+)", line)
            if match:
                acked.add(int(match.group(1)))
        os.kill(child.pid, signal.SIGKILL)
        rest, err = child.communicate()
        acked.update(int(n) for n in re.findall(rb"ACK ([0-9]+)", rest))
        self.assertGreaterEqual(len(acked), 300, err.decode()[-2000:])
        child = _child(self.base, "recover")
        out, err = child.communicate(timeout=60)
        self.assertIn(b"IDLE", out, err.decode()[-2000:])
        found = self.delivered()
        self.assertEqual(sorted(n for n in acked if n not in found), [])
        self.assertEqual({n: c for n, c in found.items() if c != 1}, {})
        queue = os.path.join(self.base, "Queue")
        self.assertEqual([f for f in os.listdir(queue) if f.endswith((".msg", ".sta"))], [])
