# -*- test-case-name: tests.integration.test_logging_server -*-
"""
End-to-end tests of the server log: the real server (C{twistd -n cgpro}),
records sent to its BSD syslog listener by util-linux C{logger} and by a
plain UDP socket, the levels and the rotation changed over the CLI, and
C{<base>/Logs/cgpro.log} read back.
"""

import os
import shutil
import socket
import subprocess
import time

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.support.server import startServer

#: The syslog row of C{etc/ports.conf}; it listens on C{SYSLOG_PORT + offset}.
SYSLOG_PORT = 514


class LoggingServerTests(SynchronousTestCase):
    """
    One server per test, on a fresh base folder.
    """

    def setUp(self):
        self.server = startServer(self)
        self.logs = os.path.join(self.server.base, "Logs")

    def text(self, suffix=""):
        """
        @return: the log file (or a rotated one) as text, C{""} if absent.
        """
        try:
            with open(os.path.join(self.logs, "cgpro.log" + suffix), encoding="utf-8") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def waitFor(self, marker, timeout=10):
        """
        Wait until C{marker} is in the log file.

        @return: the file's text.
        """
        deadline = time.monotonic() + timeout
        while True:
            text = self.text()
            if marker in text:
                return text
            if time.monotonic() > deadline:
                self.fail("%r not logged within %s s; file:\n%s\n%s"
                          % (marker, timeout, text, self.server.log()[-5000:]))
            time.sleep(0.02)

    def send(self, text, pri=13, host="component1"):
        """
        Send one RFC 3164 record to the syslog listener over UDP.
        """
        data = "<%d>Nov 22 19:08:03 %s app: %s" % (pri, host, text)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.sendto(data.encode(), ("127.0.0.1", SYSLOG_PORT + self.server.offset))
        finally:
            sock.close()

    def test_loggerCollected(self):
        """
        A record sent with util-linux C{logger} over UDP is written to
        C{cgpro.log} under C{syslog.<host>}; twistd's own output goes on.
        """
        if shutil.which("logger") is None:
            raise SkipTest("util-linux logger is not installed")
        subprocess.run(["logger", "-n", "127.0.0.1", "-P", str(SYSLOG_PORT + self.server.offset),
                        "-d", "-t", "thirdparty", "hello from a component"],
                       check=True, timeout=10)
        text = self.waitFor("hello from a component")
        line = [l for l in text.splitlines() if "hello from a component" in l][0]
        self.assertRegex(line, r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} info \[syslog\.[^\]]+\] "
                               r"thirdparty: hello from a component$")
        # The server's own start-up records are in the file too, and
        # twistd's output still has everything.
        self.assertIn("[cgpro.listeners] listener cli (cli) on 127.0.0.1", text)
        self.assertIn("hello from a component", self.server.log())

    def test_levelsOverCLI(self):
        """
        Debug records appear once C{UPDATELOGSETTINGS} lowers the level of
        their namespace, and disappear again when it is removed.
        """
        client = self.server.client()
        self.send("debug one", pri=15)
        self.send("marker one")
        text = self.waitFor("marker one")
        self.assertNotIn("debug one", text)

        client.command("UPDATELOGSETTINGS", {"LogLevels": {"syslog.component1": "debug"}})
        self.send("debug two", pri=15)
        self.send("debug elsewhere", pri=15, host="component2")
        self.send("marker two")
        text = self.waitFor("marker two")
        self.assertIn("debug [syslog.component1] app: debug two", text)
        self.assertNotIn("debug elsewhere", text)

        client.command("UPDATELOGSETTINGS", {"LogLevels": {"syslog.component1": "default"}})
        self.send("debug three", pri=15)
        self.send("marker three")
        text = self.waitFor("marker three")
        self.assertNotIn("debug three", text)
        settings = client.command("GETLOGSETTINGS")
        self.assertEqual(settings["LogLevels"], {})
        self.assertEqual(settings["LogLevel"], "info")

    def test_rotation(self):
        """
        Under a small C{LogRotateSize} the file rotates, keeping
        C{LogKeep} old files, none much over the size.
        """
        self.server.client().command("UPDATELOGSETTINGS", {"LogRotateSize": "2K", "LogKeep": "2"})
        for i in range(80):
            self.send("record %03d %s" % (i, "x" * 60))
        self.waitFor("record 079")
        self.assertEqual(sorted(os.listdir(self.logs)),
                         ["cgpro.log", "cgpro.log.1", "cgpro.log.2"])
        for suffix in ("", ".1", ".2"):
            self.assertLessEqual(len(self.text(suffix).encode()), 2048)
        self.assertIn("record 0", self.text(".2"))
