# -*- test-case-name: tests.core.test_logconfig -*-
"""
Tests for L{cgpro.core.logconfig} (levels per namespace, the rotated log
file, syslog output, the service following the settings) and the log
commands of L{cgpro.core.logcommands}.
"""

import os
import socket
import tempfile
import time

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import Logger, LogLevel, LogPublisher
from twisted.trial.unittest import SynchronousTestCase

import cgpro.cli.factory  # noqa: F401  (registers the commands)
from cgpro.cli.protocol import CLIFactory
from cgpro.core.context import ServerContext
from cgpro.core.logconfig import (
    DEFAULTS,
    LevelFilter,
    LogService,
    LogSettings,
    RotatingLogFile,
    SyslogSender,
    formatLine,
    formatSyslog,
    parseLogSettings,
    parseSyslogTarget,
)
from cgpro.core.router import Router
from cgpro.core.throttle import LoginThrottle
from tests.support.directory import makeDirectory

#: 2026-11-22 19:03:35.250 UTC
WHEN = 1795374215.25


def event(namespace, level=LogLevel.info, text="hello", **extra):
    """
    @return: a log event as L{Logger.emit} makes it.
    """
    result = {"log_namespace": namespace, "log_level": level, "log_format": text,
              "log_time": WHEN}
    result.update(extra)
    return result


def tempFolder(case):
    """
    @return: a fresh folder removed after the test.
    """
    import shutil

    folder = tempfile.mkdtemp(prefix="cgpro-log-")
    case.addCleanup(shutil.rmtree, folder, ignore_errors=True)
    return folder


class LevelFilterTests(SynchronousTestCase):
    """
    A level applies to a namespace prefix at dot boundaries; the longest
    prefix wins; the default covers the rest.
    """

    def test_default(self):
        """Without levels, info and above pass and debug does not."""
        levels = LevelFilter()
        self.assertTrue(levels.accepts(event("cgpro.sip.proxy", LogLevel.info)))
        self.assertFalse(levels.accepts(event("cgpro.sip.proxy", LogLevel.debug)))

    def test_prefix(self):
        """C{cgpro.sip} covers C{cgpro.sip.proxy}, not C{cgpro.sipx} or mail."""
        levels = LevelFilter(1, {"cgpro.sip": 0})
        self.assertTrue(levels.accepts(event("cgpro.sip.proxy", LogLevel.debug)))
        self.assertTrue(levels.accepts(event("cgpro.sip", LogLevel.debug)))
        self.assertFalse(levels.accepts(event("cgpro.sipx", LogLevel.debug)))
        self.assertFalse(levels.accepts(event("cgpro.mail.smtp", LogLevel.debug)))

    def test_longestPrefixWins(self):
        """A deeper namespace's level overrides its parent's, both ways."""
        levels = LevelFilter(1, {"cgpro.sip": 0, "cgpro.sip.digest": 3, "cgpro": 2})
        self.assertFalse(levels.accepts(event("cgpro.sip.digest", LogLevel.warn)))
        self.assertTrue(levels.accepts(event("cgpro.sip.stack", LogLevel.debug)))
        self.assertFalse(levels.accepts(event("cgpro.mail", LogLevel.info)))
        self.assertTrue(levels.accepts(event("twisted.internet", LogLevel.info)))

    def test_off(self):
        """C{off} silences a namespace entirely, critical included."""
        levels = LevelFilter(1, {"syslog": 5})
        self.assertFalse(levels.accepts(event("syslog.phone1", LogLevel.critical)))

    def test_changeDropsCache(self):
        """New levels apply to namespaces already looked up."""
        levels = LevelFilter()
        self.assertFalse(levels.accepts(event("cgpro.sip.proxy", LogLevel.debug)))
        levels.setLevels(1, {"cgpro.sip": 0})
        self.assertTrue(levels.accepts(event("cgpro.sip.proxy", LogLevel.debug)))

    def test_cacheBounded(self):
        """Namespaces from the network cannot grow the cache without bound."""
        levels = LevelFilter()
        levels.CACHE_LIMIT = 10
        for i in range(50):
            levels.accepts(event("syslog.host%d" % (i,)))
        self.assertLessEqual(len(levels._cache), 10)


class ParseTests(SynchronousTestCase):
    """
    The log keys of the server settings.
    """

    def test_defaults(self):
        """No keys: the built-in values, the same as L{LogSettings}()."""
        settings, problems = parseLogSettings({})
        self.assertEqual(problems, [])
        self.assertEqual(settings, LogSettings())
        self.assertEqual((settings.rotateSize, settings.keep, settings.syslogTarget),
                         (10 << 20, 7, ""))

    def test_values(self):
        """Every key parsed; level names in any case."""
        settings, problems = parseLogSettings({
            "LogLevel": "WARN", "LogLevels": {"cgpro.sip": "Debug", "syslog": "off"},
            "LogRotateSize": "1K", "LogRotateDaily": "YES", "LogKeep": "2",
            "SyslogTarget": "[::1]:5514", "SyslogFacility": "local3", "SyslogFormat": "rfc5424",
            "Other": "ignored"})
        self.assertEqual(problems, [])
        self.assertEqual(settings, LogSettings(
            level=2, levels={"cgpro.sip": 0, "syslog": 5}, rotateSize=1024, rotateDaily=True,
            keep=2, syslogTarget="[::1]:5514", syslogFacility=19, syslogFormat="RFC5424"))

    def test_badValueFallsBack(self):
        """A bad stored value is reported and its default used; the rest applies."""
        settings, problems = parseLogSettings({"LogLevel": "loud", "LogKeep": "2"})
        self.assertEqual(settings.level, 1)
        self.assertEqual(settings.keep, 2)
        self.assertEqual(len(problems), 1)
        self.assertIn("LogLevel", problems[0])

    def test_strict(self):
        """With C{strict}, the first bad value raises, naming its key."""
        for bad in [{"LogLevels": {"cgpro": "loud"}}, {"LogRotateSize": "10"},
                    {"LogKeep": "-1"}, {"SyslogFacility": "nope"},
                    {"SyslogFormat": "json"}, {"SyslogTarget": "host:99999"},
                    {"LogRotateDaily": "maybe"}, {"LogLevels": "cgpro"}]:
            key = list(bad)[0]
            e = self.assertRaises(ValueError, parseLogSettings, bad, strict=True)
            self.assertIn(key, str(e))

    def test_targets(self):
        """Off, the local daemon, a socket path, host, host:port, [v6]:port."""
        self.assertIsNone(parseSyslogTarget(""))
        self.assertEqual(parseSyslogTarget("local"), ("unix", "/dev/log"))
        self.assertEqual(parseSyslogTarget("/run/log"), ("unix", "/run/log"))
        self.assertEqual(parseSyslogTarget("10.0.0.1"), ("udp", "10.0.0.1", 514))
        self.assertEqual(parseSyslogTarget("logs.example:5514"), ("udp", "logs.example", 5514))
        self.assertEqual(parseSyslogTarget("[::1]:5514"), ("udp", "::1", 5514))
        self.assertEqual(parseSyslogTarget("::1"), ("udp", "::1", 514))


class RotatingLogFileTests(SynchronousTestCase):
    """
    The file rotates by size and by date, keeping C{keep} old files.
    """

    def setUp(self):
        self.folder = tempFolder(self)
        self.path = os.path.join(self.folder, "Logs", "cgpro.log")
        self.clock = Clock()
        self.clock.advance(time.time())

    def read(self, suffix=""):
        with open(self.path + suffix, "rb") as f:
            return f.read()

    def test_createsFolder(self):
        """The first write creates the Logs folder and the file."""
        logFile = RotatingLogFile(self.path, clock=self.clock)
        logFile.write(b"one\n")
        logFile.write(b"two\n")
        self.assertEqual(self.read(), b"one\ntwo\n")
        self.assertEqual(logFile.size, 8)

    def test_rotateBySizeKeepsN(self):
        """
        A write that would pass the size rotates first; only C{keep} old
        files remain, the newest as C{.1}.
        """
        logFile = RotatingLogFile(self.path, maxSize=100, keep=2, clock=self.clock)
        for i in range(10):
            logFile.write(b"%02d" % (i,) + b"x" * 37 + b"\n")
        self.assertEqual(sorted(os.listdir(os.path.dirname(self.path))),
                         ["cgpro.log", "cgpro.log.1", "cgpro.log.2"])
        self.assertTrue(self.read().startswith(b"08"))
        self.assertTrue(self.read(".1").startswith(b"06"))
        self.assertTrue(self.read(".2").startswith(b"04"))
        for suffix in ("", ".1", ".2"):
            self.assertLessEqual(len(self.read(suffix)), 100)

    def test_longRecordWhole(self):
        """A record longer than the size limit goes whole into a fresh file."""
        logFile = RotatingLogFile(self.path, maxSize=10, keep=1, clock=self.clock)
        logFile.write(b"short\n")
        logFile.write(b"a much longer record\n")
        self.assertEqual(self.read(), b"a much longer record\n")
        self.assertEqual(self.read(".1"), b"short\n")

    def test_fewerKept(self):
        """Lowering C{keep} removes the surplus old files at the next rotation."""
        logFile = RotatingLogFile(self.path, maxSize=10, keep=5, clock=self.clock)
        for i in range(6):
            logFile.write(b"line %d...\n" % (i,))
        self.assertTrue(os.path.exists(self.path + ".5"))
        logFile.keep = 1
        logFile.write(b"last line\n")
        self.assertEqual(sorted(os.listdir(os.path.dirname(self.path))),
                         ["cgpro.log", "cgpro.log.1"])

    def test_keepZero(self):
        """With C{keep = 0} a rotation just starts the file again."""
        logFile = RotatingLogFile(self.path, maxSize=10, keep=0, clock=self.clock)
        logFile.write(b"0123456789")
        logFile.write(b"next\n")
        self.assertEqual(os.listdir(os.path.dirname(self.path)), ["cgpro.log"])
        self.assertEqual(self.read(), b"next\n")

    def test_daily(self):
        """With C{daily}, the first write on a new date rotates."""
        logFile = RotatingLogFile(self.path, keep=3, daily=True, clock=self.clock)
        logFile.write(b"today\n")
        self.clock.advance(3600 * 25)
        logFile.write(b"tomorrow\n")
        self.assertEqual(self.read(".1"), b"today\n")
        self.assertEqual(self.read(), b"tomorrow\n")

    def test_reopenedAppends(self):
        """A new server appends to the existing file and counts its size."""
        RotatingLogFile(self.path, clock=self.clock).write(b"before\n")
        logFile = RotatingLogFile(self.path, maxSize=10, keep=1, clock=self.clock)
        logFile.write(b"after\n")
        self.assertEqual(self.read(".1"), b"before\n")

    def test_writeErrorCounted(self):
        """A file that cannot be written is counted, never raised."""
        with open(os.path.join(self.folder, "Logs"), "w"):
            pass
        logFile = RotatingLogFile(self.path, clock=self.clock)
        logFile.write(b"lost\n")
        self.assertEqual(logFile.errors, 1)


class FormatTests(SynchronousTestCase):
    """
    The text line of the file and the syslog datagrams.
    """

    def stamp(self, pattern):
        return time.strftime(pattern, time.localtime(WHEN))

    def test_line(self):
        """Local time with milliseconds, level, namespace, the formatted text."""
        line = formatLine(event("cgpro.sip.proxy", LogLevel.warn, "call {n}", n=7))
        self.assertEqual(line, ("%s.250 warn [cgpro.sip.proxy] call 7\n"
                                % (self.stamp("%Y-%m-%d %H:%M:%S"),)).encode())

    def test_lineContinued(self):
        """The lines of a multi-line text after the first start with a tab."""
        line = formatLine(event("x", text="a\nb"))
        self.assertTrue(line.endswith(b"] a\n\tb\n"))

    def test_rfc3164(self):
        """PRI = facility * 8 + severity, BSD local time, host, tag[pid]."""
        data = formatSyslog(event("cgpro.sip", LogLevel.error, "bad\nthing"),
                            facility=16, hostname="mx1", procId=42)
        mon = ("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
               [time.localtime(WHEN).tm_mon - 1])
        self.assertEqual(data, ("<131>%s %2d %s mx1 cgpro[42]: [cgpro.sip] bad#012thing" % (
            mon, time.localtime(WHEN).tm_mday, self.stamp("%H:%M:%S"))).encode())

    def test_rfc3164Local(self):
        """Without a host name (the local daemon) the tag follows the time."""
        data = formatSyslog(event("cgpro", LogLevel.debug), facility=3)
        self.assertTrue(data.startswith(b"<31>"))
        self.assertIn(b":%s cgpro: [cgpro] hello" % (self.stamp("%S").encode(),), data)

    def test_rfc5424(self):
        """Version 1, UTC time with microseconds, host, app, procid."""
        data = formatSyslog(event("cgpro.sip", LogLevel.info, "x"), facility=3,
                            format="RFC5424", hostname="mx1", procId=42)
        self.assertEqual(data, b"<30>1 2026-11-22T19:03:35.250000Z mx1 cgpro 42 - - [cgpro.sip] x")

    def test_truncated(self):
        """A huge message is cut to fit one datagram."""
        data = formatSyslog(event("x", text="y" * 20000))
        self.assertLess(len(data), 8192)


class FakeSender:
    """
    Records what would be sent to the syslog target.
    """

    def __init__(self, target=("udp", "192.0.2.1", 514)):
        self.target = target
        self.written = []

    def write(self, data):
        self.written.append(data)

    def close(self):
        pass


class LogServiceTests(SynchronousTestCase):
    """
    The observer with a real directory: filtered lines in the file, live
    changes of the settings, rotation, syslog output.
    """

    def setUp(self):
        self.directory = makeDirectory(self)
        self.base = self.directory.storage.base
        self.clock = Clock()
        self.clock.advance(time.time())
        self.publisher = LogPublisher()
        self.service = LogService(self.base, reactor=self.clock, publisher=self.publisher,
                                  hostname="mx1", procId=42)
        self.service.attach()
        self.addCleanup(self.service.close)
        self.service.watch(self.directory)

    def logger(self, namespace):
        return Logger(namespace=namespace, observer=self.publisher)

    def text(self):
        with open(os.path.join(self.base, "Logs", "cgpro.log")) as f:
            return f.read()

    def update(self, **settings):
        """
        Store settings as the CLI does; the service sees them at the next
        event, or here at once with C{refresh()}.
        """
        self.successResultOf(self.directory.setServerDict("Main", settings, update=True))
        self.service.refresh()

    def test_filtered(self):
        """Info lines are written, debug lines are not (default level)."""
        self.logger("cgpro.sip.proxy").info("shown {n}", n=1)
        self.logger("cgpro.sip.proxy").debug("hidden")
        text = self.text()
        self.assertIn("info [cgpro.sip.proxy] shown 1\n", text)
        self.assertNotIn("hidden", text)

    def test_liveChange(self):
        """A stored level change applies to the next event, no restart."""
        sip = self.logger("cgpro.sip.proxy")
        sip.debug("before")
        self.successResultOf(self.directory.setServerDict(
            "Main", {"LogLevels": {"cgpro.sip": "debug"}}, update=True))
        sip.debug("during")
        self.logger("cgpro.mail").debug("other module")
        self.successResultOf(self.directory.setServerDict(
            "Main", {"LogLevels": {}}, update=True))
        sip.debug("after")
        text = self.text()
        self.assertIn("during", text)
        for hidden in ("before", "other module", "after"):
            self.assertNotIn(hidden, text)

    def test_rotationFromSettings(self):
        """C{LogRotateSize} and C{LogKeep} drive the rotation."""
        self.update(LogRotateSize="1K", LogKeep="2")
        logger = self.logger("cgpro")
        for i in range(100):
            logger.info("record {i} " + "x" * 50, i=i)
        names = sorted(os.listdir(os.path.join(self.base, "Logs")))
        self.assertEqual(names, ["cgpro.log", "cgpro.log.1", "cgpro.log.2"])
        self.assertIn("record 99 ", self.text())

    def test_badSettingWarned(self):
        """A bad stored value is reported once in the log; the default applies."""
        self.update(LogLevel="loud")
        self.logger("cgpro").debug("hidden")
        self.clock.advance(0)
        text = self.text()
        self.assertIn("log settings ignored: LogLevel: unknown log level 'loud'", text)
        self.assertNotIn("hidden", text)

    def test_syslog(self):
        """With a target, each logged record is also sent as a syslog datagram."""
        self.update(SyslogTarget="192.0.2.1", SyslogFacility="local0")
        self.assertIsNotNone(self.service.syslog)
        fake = self.service.syslog = FakeSender()
        self.logger("cgpro.sip").warn("trouble")
        self.logger("cgpro.sip").debug("hidden")
        self.assertEqual(len(fake.written), 1)
        self.assertRegex(fake.written[0], rb"^<132>\w{3} [ \d]\d \d\d:\d\d:\d\d mx1 cgpro\[42\]: "
                                          rb"\[cgpro.sip\] trouble$")

    def test_syslogLocalFormat(self):
        """To the local daemon, RFC 3164 records carry no host name."""
        self.update(SyslogTarget="local")
        fake = self.service.syslog = FakeSender(("unix", "/dev/log"))
        self.logger("cgpro").info("x")
        self.assertNotIn(b" mx1 ", fake.written[0])

    def test_syslogOff(self):
        """Clearing the target stops sending."""
        self.update(SyslogTarget="192.0.2.1")
        self.update(SyslogTarget="")
        self.assertIsNone(self.service.syslog)

    def test_collectedNotForwarded(self):
        """Records collected by the syslog listener are filed, not sent out again."""
        self.update(SyslogTarget="192.0.2.1")
        fake = self.service.syslog = FakeSender()
        self.logger("syslog.phone").info("from a phone", syslogCollected=True)
        self.assertEqual(fake.written, [])
        self.assertIn("[syslog.phone] from a phone", self.text())

    def test_failuresReported(self):
        """
        Failing writes are reported to the other observers once, then not
        again for ten minutes.
        """
        others = []
        self.publisher.addObserver(others.append)
        with open(os.path.join(self.base, "Logs"), "w"):
            pass
        logger = self.logger("cgpro")
        logger.info("one")
        logger.info("two")
        self.clock.advance(0)
        reports = [e for e in others if e["log_namespace"] == "cgpro.core.logconfig"]
        self.assertEqual(len(reports), 1)
        self.assertEqual(reports[0]["log_level"], LogLevel.error)
        self.assertEqual(reports[0]["fileErrors"], 1)
        del others[:]
        logger.info("three")
        self.clock.advance(LogService.ERROR_REPORT_INTERVAL)
        logger.info("four")
        self.clock.advance(0)
        reports = [e for e in others if e["log_namespace"] == "cgpro.core.logconfig"]
        self.assertEqual([e["fileErrors"] for e in reports], [5])

    def test_close(self):
        """After C{close} the observer is gone from the publisher."""
        self.service.close()
        self.logger("cgpro").info("late")
        self.assertFalse(os.path.exists(os.path.join(self.base, "Logs", "cgpro.log")))

    def test_shutdownCloses(self):
        """Started as a service, it closes after the reactor shut down."""
        triggers = []
        self.clock.addSystemEventTrigger = lambda *a: triggers.append(a)
        self.service.startService()
        self.service.stopService()
        self.assertEqual(triggers, [("after", "shutdown", self.service.close)])


class SyslogSenderTests(SynchronousTestCase):
    """
    The sender over a real local UDP socket (no reactor).
    """

    def test_udp(self):
        """A datagram reaches a UDP target."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        sender = SyslogSender(parseSyslogTarget("127.0.0.1:%d" % sock.getsockname()[1]),
                              clock=Clock())
        self.addCleanup(sender.close)
        sender.write(b"<13>hello")
        self.assertEqual(sock.recv(100), b"<13>hello")
        self.assertEqual((sender.sent, sender.errors), (1, 0))

    def test_failingTargetRetriedLater(self):
        """A missing local socket is counted and retried only after a while."""
        clock = Clock()
        sender = SyslogSender(("unix", os.path.join(tempFolder(self), "nothing")), clock=clock)
        opened = []
        original = sender._open

        def counting():
            opened.append(1)
            original()

        sender._open = counting
        sender.write(b"a")
        sender.write(b"b")
        self.assertEqual((len(opened), sender.errors), (1, 2))
        clock.advance(SyslogSender.RETRY)
        sender.write(b"c")
        self.assertEqual((len(opened), sender.errors), (2, 3))


class LogCommandTests(SynchronousTestCase):
    """
    C{GETLOGSETTINGS} and C{UPDATELOGSETTINGS} over a CLI session.
    """

    def setUp(self):
        self.directory = makeDirectory(self)
        clock = Clock()
        context = ServerContext(self.directory, Router(self.directory), clock,
                                self.directory.storage.base)
        factory = CLIFactory(context, LoginThrottle(clock, limit=3), clock, idleTimeout=300,
                             maxLineLength=1000)
        self.protocol = factory.buildProtocol(None)
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)
        self.send("USER postmaster")
        self.assertEqual(self.send("PASS secret"), ["200 login OK"])

    def send(self, line):
        self.transport.clear()
        self.protocol.dataReceived(line.encode() + b"\r\n")
        return self.transport.value().decode().splitlines()

    def test_get(self):
        """The defaults are shown for keys not set."""
        lines = self.send("GETLOGSETTINGS")
        self.assertEqual(lines[0], "200 data follow")
        self.assertIn("LogKeep=7;", lines[1])
        self.assertIn("LogLevel=info;", lines[1])
        self.assertIn('SyslogTarget="";', lines[1])

    def test_updateMergesLevels(self):
        """C{LogLevels} is merged; C{default} removes one namespace."""
        self.assertEqual(
            self.send("UPDATELOGSETTINGS {LogLevels={cgpro.sip=debug;syslog=warn;};}"), ["200 OK"])
        self.assertEqual(self.send("UPDATELOGSETTINGS {LogLevels={syslog=default;cgpro.mail=error;};"
                                   "LogKeep=3;}"), ["200 OK"])
        main = self.directory.getServerDict("Main")
        self.assertEqual(main["LogLevels"], {"cgpro.sip": "debug", "cgpro.mail": "error"})
        self.assertEqual(main["LogKeep"], "3")

    def test_refused(self):
        """A bad value or an unknown key is refused, naming it; nothing is stored."""
        self.assertEqual(self.send("UPDATELOGSETTINGS {LogLevels={cgpro=loud;};}"),
                         ["501 LogLevels: unknown log level 'loud' "
                          "(use debug, info, warn, error, critical, off)"])
        self.assertTrue(self.send("UPDATELOGSETTINGS {LogColour=red;}")[0].startswith(
            "501 unknown log setting LogColour"))
        self.assertNotIn("LogLevels", self.directory.getServerDict("Main"))

    def test_rights(self):
        """A user without the Settings right can neither read nor change."""
        self.assertEqual(self.send('CREATEACCOUNT user {Password="pw";}'), ["200 OK"])
        self.protocol = self.protocol.factory.buildProtocol(None)
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)
        self.send("USER user")
        self.assertEqual(self.send("PASS pw"), ["200 login OK"])
        denied = ["501 not enough access rights"]
        self.assertEqual(self.send("GETLOGSETTINGS"), denied)
        self.assertEqual(self.send("UPDATELOGSETTINGS {LogKeep=1;}"), denied)

    def test_defaultsKnown(self):
        """Every default is itself valid."""
        self.assertEqual(parseLogSettings(DEFAULTS, strict=True)[0], LogSettings())
