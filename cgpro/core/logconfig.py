# -*- test-case-name: tests.core.test_logconfig -*-
"""
The server log: where C{twisted.logger} events end up besides twistd's own
output.

L{LogService} is one observer on the global log publisher, added next to
twistd's (which keeps printing everything to stdout or C{twistd.log}).  It
filters events by a minimum level per namespace, then writes each one as a
text line to C{<base>/Logs/cgpro.log} (rotated by size and/or daily,
keeping C{LogKeep} old files) and, when C{SyslogTarget} is set, sends it to
a syslog daemon.

A namespace is a module path (C{cgpro.sip.proxy}); a level set for a
prefix applies to everything under it (C{cgpro.sip} = all of SIP), the
longest prefix wins, and C{LogLevel} applies to the rest.  Records the
syslog listener collected from other hosts are C{syslog.<host>}.

The settings are keys of the server's general settings
(C{Settings/Main.settings}, see L{DEFAULTS})::

    LogLevel = info; LogLevels = {cgpro.sip = debug; syslog = warn;};
    LogRotateSize = 10M; LogRotateDaily = NO; LogKeep = 7;
    SyslogTarget = "";  SyslogFacility = daemon; SyslogFormat = RFC3164;

They live there rather than in a dictionary of their own so that
C{UPDATESERVERSETTINGS} and C{UPDATELOGSETTINGS} change the same values.
Like the SIP stack, the service notices a change by the directory's
C{serverGeneration} on the next event: a change applies at once, without a
restart, whoever made it.
"""

import os
import socket
import time
from dataclasses import dataclass, field

from twisted.application import service
from twisted.logger import ILogObserver, LogLevel, Logger, eventAsText, globalLogPublisher
from zope.interface import implementer

from cgpro.core import dataformat

LOG_FOLDER = "Logs"
LOG_NAME = "cgpro.log"

#: The log settings with their built-in values.
DEFAULTS = {
    "LogLevel": "info",
    "LogLevels": {},
    "LogRotateSize": "10M",
    "LogRotateDaily": "NO",
    "LogKeep": "7",
    "SyslogTarget": "",
    "SyslogFacility": "daemon",
    "SyslogFormat": "RFC3164",
}

#: Level names (settings) -> rank; C{off} is above every level.
LEVELS = {"debug": 0, "info": 1, "warn": 2, "warning": 2, "error": 3, "critical": 4, "off": 5}
LEVEL_NAMES = {0: "debug", 1: "info", 2: "warn", 3: "error", 4: "critical", 5: "off"}
_RANK = {LogLevel.debug: 0, LogLevel.info: 1, LogLevel.warn: 2, LogLevel.error: 3,
         LogLevel.critical: 4}

#: RFC 5424 section 6.2.1 facility names.
FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6,
    "news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
    "local0": 16, "local1": 17, "local2": 18, "local3": 19,
    "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

#: twisted.logger level -> syslog severity.
SEVERITIES = {LogLevel.debug: 7, LogLevel.info: 6, LogLevel.warn: 4, LogLevel.error: 3,
              LogLevel.critical: 2}

SYSLOG_FORMATS = ("RFC3164", "RFC5424")
SYSLOG_PORT = 514
LOCAL_SYSLOG = "/dev/log"

#: The longest syslog message body sent (UDP datagrams stay below 8K).
MAX_SYSLOG_MESSAGE = 7680

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# -- settings -------------------------------------------------------------------------


@dataclass(frozen=True)
class LogSettings:
    """
    The log settings, parsed.

    @ivar level: the rank (see L{LEVELS}) of namespaces no prefix names.
    @ivar levels: namespace prefix -> rank.
    @ivar rotateSize: bytes after which the file is rotated, or C{None}.
    @ivar rotateDaily: also rotate when the local date changes.
    @ivar keep: how many rotated files to keep.
    @ivar syslogTarget: C{""} (off), C{"local"}, a socket path, or
        C{host[:port]}.
    @ivar syslogFacility: the facility number.
    @ivar syslogFormat: one of L{SYSLOG_FORMATS}.
    """

    level: int = 1
    levels: dict = field(default_factory=dict)
    rotateSize: int = 10 << 20
    rotateDaily: bool = False
    keep: int = 7
    syslogTarget: str = ""
    syslogFacility: int = 3
    syslogFormat: str = "RFC3164"


def parseLevel(value):
    """
    @return: the rank of a level name (any case).
    @raise ValueError: for an unknown name.
    """
    if isinstance(value, str) and value.lower() in LEVELS:
        return LEVELS[value.lower()]
    raise ValueError("unknown log level %r (use %s)" % (
        value, ", ".join(n for n in LEVELS if n != "warning")))


def _yes(value):
    text = str(value).upper()
    if text in ("YES", "TRUE", "1", "ON"):
        return True
    if text in ("NO", "FALSE", "0", "OFF", ""):
        return False
    raise ValueError("must be YES or NO, not %r" % (value,))


def _size(value):
    size = dataformat.parseSize(value)
    if size is not None and size < 1024:
        raise ValueError("at least 1K, not %r" % (value,))
    return size


def _keep(value):
    keep = int(str(value))
    if not 0 <= keep <= 1000:
        raise ValueError("must be 0 to 1000, not %r" % (value,))
    return keep


def _levels(value):
    if not isinstance(value, dict):
        raise ValueError("must be a dictionary of namespace = level")
    levels = {}
    for namespace, level in value.items():
        if not namespace or namespace != namespace.strip(". "):
            raise ValueError("bad namespace %r" % (namespace,))
        levels[namespace] = parseLevel(level)
    return levels


def _facility(value):
    if isinstance(value, str) and value.lower() in FACILITIES:
        return FACILITIES[value.lower()]
    raise ValueError("unknown facility %r" % (value,))


def _format(value):
    text = str(value).upper().replace(" ", "")
    if text not in SYSLOG_FORMATS:
        raise ValueError("must be RFC3164 or RFC5424, not %r" % (value,))
    return text


def _target(value):
    if not isinstance(value, str):
        raise ValueError("must be a string")
    parseSyslogTarget(value)
    return value.strip()


_PARSERS = {
    "LogLevel": ("level", parseLevel),
    "LogLevels": ("levels", _levels),
    "LogRotateSize": ("rotateSize", _size),
    "LogRotateDaily": ("rotateDaily", _yes),
    "LogKeep": ("keep", _keep),
    "SyslogTarget": ("syslogTarget", _target),
    "SyslogFacility": ("syslogFacility", _facility),
    "SyslogFormat": ("syslogFormat", _format),
}


def parseLogSettings(main, strict=False):
    """
    Read the log keys of the server's general settings.

    @param main: the server's C{Main} dictionary (other keys are ignored).
    @param strict: raise on a bad value (the CLI checks before storing);
        otherwise a bad value falls back to its default, so a typo stored
        by hand never stops the log.
    @return: C{(LogSettings, problems)}, C{problems} a list of texts.
    @raise ValueError: with C{strict}, naming the key.
    """
    values, problems = {}, []
    for key, (attribute, parse) in _PARSERS.items():
        raw = main.get(key, DEFAULTS[key])
        try:
            values[attribute] = parse(raw)
        except (ValueError, TypeError) as e:
            text = "%s: %s" % (key, e)
            if strict:
                raise ValueError(text)
            problems.append(text)
            values[attribute] = parse(DEFAULTS[key])
    return LogSettings(**values), problems


def effectiveLogSettings(main):
    """
    @return: the log keys of C{main} over L{DEFAULTS}, as stored (for
        C{GETLOGSETTINGS}).
    """
    return {key: main.get(key, default) for key, default in DEFAULTS.items()}


# -- filtering ------------------------------------------------------------------------


class LevelFilter:
    """
    The minimum level of each namespace: the level of its longest prefix
    (at dot boundaries) in L{levels}, else L{default}.

    Lookups are cached per namespace; the cache is dropped when the levels
    change, and when it grows past L{CACHE_LIMIT} (the namespaces of
    collected syslog records come from the network).
    """

    CACHE_LIMIT = 10000

    def __init__(self, default=1, levels=None):
        self.setLevels(default, levels or {})

    def setLevels(self, default, levels):
        """
        Replace every level at once.

        @param default: the rank for namespaces no prefix names.
        @param levels: namespace prefix -> rank.
        """
        self.default = default
        self.levels = dict(levels)
        self._cache = {}

    def rankFor(self, namespace):
        """
        @return: the minimum rank logged for C{namespace}.
        """
        rank = self._cache.get(namespace)
        if rank is None:
            name = namespace
            while True:
                if name in self.levels:
                    rank = self.levels[name]
                    break
                if "." not in name:
                    rank = self.default
                    break
                name = name.rsplit(".", 1)[0]
            if len(self._cache) >= self.CACHE_LIMIT:
                self._cache.clear()
            self._cache[namespace] = rank
        return rank

    def accepts(self, event):
        """
        @return: whether C{event} is at or above its namespace's level
            (events without a level count as info).
        """
        rank = _RANK.get(event.get("log_level"), 1)
        return rank >= self.rankFor(event.get("log_namespace") or "")


# -- the file -------------------------------------------------------------------------


def formatLine(event):
    """
    One event as the log file holds it::

        2026-11-22 19:03:35.123 info [cgpro.sip.proxy] text

    (local time).  Continuation lines of a multi-line text (tracebacks)
    start with a tab, so each record starts a line of its own.

    @return: C{bytes} ending in a newline.
    """
    when = event.get("log_time") or time.time()
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))
    level = event.get("log_level")
    text = eventAsText(event, includeTraceback=True, includeTimestamp=False,
                       includeSystem=False)
    line = "%s.%03d %s [%s] %s\n" % (
        stamp, int(when * 1000) % 1000, level.name if level is not None else "info",
        event.get("log_namespace") or "-", text.rstrip("\n").replace("\n", "\n\t"))
    return line.encode("utf-8", "replace")


class RotatingLogFile:
    """
    An append-only text file rotated by size and/or date:
    C{cgpro.log} is current, C{cgpro.log.1} the newest old one, up to
    C{cgpro.log.<keep>}.

    A write that would take the file past L{maxSize} rotates it first (a
    single longer record still goes whole into a fresh file).  With
    L{daily}, the first write on a new local date rotates too; the date of
    an existing file is its modification date, so a server started the
    next morning starts a new file.

    Write errors (a full disk) are counted in L{errors}, never raised: the
    log must not take the server down.

    @ivar size: the current file's size in bytes.
    """

    def __init__(self, path, maxSize=None, keep=7, daily=False, clock=None):
        if clock is None:
            from twisted.internet import reactor as clock
        self.path = path
        self.maxSize = maxSize
        self.keep = keep
        self.daily = daily
        self.clock = clock
        self.size = 0
        self.errors = 0
        self._file = None
        self._day = None

    def _today(self):
        return time.localtime(self.clock.seconds())[:3]

    def _open(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self._file = open(self.path, "ab")
        stat = os.fstat(self._file.fileno())
        self.size = stat.st_size
        self._day = time.localtime(stat.st_mtime)[:3] if self.size else self._today()

    def _due(self, length):
        if self.maxSize is not None and self.size and self.size + length > self.maxSize:
            return True
        return self.daily and self.size > 0 and self._day != self._today()

    def write(self, data):
        """
        Append C{data} (C{bytes}) and flush it, rotating first if due.
        """
        try:
            if self._file is None:
                self._open()
            if self._due(len(data)):
                self.rotate()
            self._file.write(data)
            self._file.flush()
            self.size += len(data)
        except OSError:
            self.errors += 1
            self.close()

    def rotate(self):
        """
        Shift C{cgpro.log.N} to C{.N+1} (dropping those beyond L{keep}),
        the current file to C{.1}, and start an empty one.
        """
        self.close()
        old = self.keep + 1
        while os.path.exists("%s.%d" % (self.path, old)):
            os.remove("%s.%d" % (self.path, old))
            old += 1
        if self.keep == 0:
            if os.path.exists(self.path):
                os.remove(self.path)
        else:
            for number in range(self.keep - 1, 0, -1):
                source = "%s.%d" % (self.path, number)
                if os.path.exists(source):
                    os.replace(source, "%s.%d" % (self.path, number + 1))
            if os.path.exists(self.path):
                os.replace(self.path, self.path + ".1")
        self._open()

    def flush(self):
        if self._file is not None:
            try:
                self._file.flush()
            except OSError:
                self.errors += 1

    def close(self):
        """
        Close the file; the next write opens it again.
        """
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                self.errors += 1
            self._file = None


# -- syslog ---------------------------------------------------------------------------


def parseSyslogTarget(target):
    """
    @param target: C{""} (off), C{"local"} (C{/dev/log}), an absolute
        socket path, or C{host}, C{host:port}, C{[v6address]:port}.
    @return: C{None}, C{("unix", path)} or C{("udp", host, port)}.
    @raise ValueError: for a bad port.
    """
    target = target.strip()
    if not target:
        return None
    if target.lower() == "local":
        return ("unix", LOCAL_SYSLOG)
    if target.startswith("/"):
        return ("unix", target)
    host, port = target, SYSLOG_PORT
    if target.startswith("["):
        host, _, rest = target[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError("bad syslog target %r" % (target,))
            port = rest[1:]
    elif target.count(":") == 1:
        host, port = target.split(":")
    try:
        port = int(port)
    except ValueError:
        raise ValueError("bad syslog port in %r" % (target,))
    if not host or not 0 < port < 65536:
        raise ValueError("bad syslog target %r" % (target,))
    return ("udp", host, port)


def formatSyslog(event, facility=3, format="RFC3164", hostname=None, appName="cgpro",
                 procId=None):
    """
    One event as a syslog datagram.

    RFC 3164: C{<PRI>Mmm dd hh:mm:ss HOST cgpro[PID]: [namespace] text}
    (local time; without C{hostname}, no HOST, as C{syslog(3)} writes to
    C{/dev/log}); line breaks become C{#012} as rsyslog writes them.
    RFC 5424: C{<PRI>1 2026-11-22T19:03:35.123456Z HOST cgpro PID - -
    [namespace] text} (UTC).

    @param facility: the facility number (L{FACILITIES}).
    @return: C{bytes}.
    """
    when = event.get("log_time") or time.time()
    severity = SEVERITIES.get(event.get("log_level"), 6)
    pri = facility * 8 + severity
    text = eventAsText(event, includeTraceback=True, includeTimestamp=False,
                       includeSystem=False).rstrip("\n")
    text = "[%s] %s" % (event.get("log_namespace") or "-", text)
    body = text.encode("utf-8", "replace")
    if format == "RFC5424":
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when))
        head = "<%d>1 %s.%06dZ %s %s %s - -" % (
            pri, stamp, int(when * 1e6) % 1000000, hostname or "-", appName,
            procId if procId is not None else "-")
    else:
        body = body.replace(b"\r\n", b"#012").replace(b"\n", b"#012")
        local = time.localtime(when)
        stamp = "%s %2d %s" % (_MONTHS[local.tm_mon - 1], local.tm_mday,
                               time.strftime("%H:%M:%S", local))
        tag = "%s[%s]:" % (appName, procId) if procId is not None else appName + ":"
        head = "<%d>%s%s %s" % (pri, stamp, " " + hostname if hostname else "", tag)
    return head.encode("ascii", "replace") + b" " + body[:MAX_SYSLOG_MESSAGE]


class SyslogSender:
    """
    Sends datagrams to a syslog daemon: the local one over a Unix datagram
    socket, or one over UDP.

    The socket is opened on the first write and again after a failure, at
    most every L{RETRY} seconds; a host name is resolved when the socket
    is opened (set an address to keep name lookups off the reactor).
    Failures are counted in L{errors}, never raised.
    """

    RETRY = 30

    def __init__(self, target, clock=None):
        """
        @param target: a value of L{parseSyslogTarget}.
        """
        if clock is None:
            from twisted.internet import reactor as clock
        self.target = target
        self.clock = clock
        self.errors = 0
        self.sent = 0
        self._socket = None
        self._address = None
        self._failedAt = None

    def _open(self):
        if self.target[0] == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._address = self.target[1]
        else:
            family, kind, proto, _, address = socket.getaddrinfo(
                self.target[1], self.target[2], type=socket.SOCK_DGRAM)[0]
            sock = socket.socket(family, kind, proto)
            self._address = address
        sock.setblocking(False)
        self._socket = sock

    def write(self, data):
        """
        Send one datagram (dropped while the target is failing).
        """
        if self._socket is None:
            if self._failedAt is not None and self.clock.seconds() - self._failedAt < self.RETRY:
                self.errors += 1
                return
            try:
                self._open()
            except OSError:
                self._failed()
                return
        try:
            self._socket.sendto(data, self._address)
            self.sent += 1
        except OSError:
            self._failed()

    def _failed(self):
        self.errors += 1
        self._failedAt = self.clock.seconds()
        self.close()

    def close(self):
        if self._socket is not None:
            self._socket.close()
            self._socket = None


# -- the service ----------------------------------------------------------------------


@implementer(ILogObserver)
class LogService(service.Service):
    """
    The observer writing the server log, as a service of the server.

    L{attach} adds it to the log publisher (C{twistd cgpro} does so before
    building the server, so start-up messages are in the file too);
    L{watch} makes it follow the server settings.  It stays attached until
    after the reactor has shut down, so the other services' last words
    are logged, then closes its file.

    @ivar settings: the L{LogSettings} in force.
    @ivar filter: the L{LevelFilter}.
    @ivar file: the L{RotatingLogFile} of C{<base>/Logs/cgpro.log}.
    @ivar syslog: the L{SyslogSender}, or C{None} when off.
    """

    name = "log"

    #: Seconds between two reports of failing output.
    ERROR_REPORT_INTERVAL = 600

    def __init__(self, base, reactor=None, publisher=None, hostname=None, procId=None):
        """
        @param base: the base folder.
        @param reactor: the clock for rotation and retries, and the reactor
            whose shutdown closes the file.
        @param publisher: the log publisher (default the global one).
        @param hostname: the host name in syslog records (default this
            host's).
        @param procId: the process id in syslog records (default ours).
        """
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        self.publisher = globalLogPublisher if publisher is None else publisher
        self._log = Logger(namespace=__name__, observer=self.publisher)
        self.path = os.path.join(os.path.abspath(base), LOG_FOLDER, LOG_NAME)
        self.hostname = hostname or socket.gethostname()
        self.procId = os.getpid() if procId is None else procId
        self.filter = LevelFilter()
        self.file = RotatingLogFile(self.path, clock=reactor)
        self.syslog = None
        self.settings = None
        self.directory = None
        self.attached = False
        self._generation = None
        self._errors = 0
        self._errorsReportedAt = None
        self.apply(LogSettings())

    def attach(self):
        """
        Start observing the publisher's events.
        """
        if not self.attached:
            self.publisher.addObserver(self)
            self.attached = True

    def detach(self):
        if self.attached:
            self.publisher.removeObserver(self)
            self.attached = False

    def watch(self, directory):
        """
        Follow the log settings of C{directory}'s server settings from now
        on (its C{serverGeneration} tells when they may have changed).

        @param directory: the L{cgpro.core.interfaces.IDirectory}.
        """
        self.directory = directory
        self._generation = None
        self.refresh()

    def refresh(self):
        """
        Re-read the settings if the directory's server settings changed.
        """
        directory = self.directory
        if directory is None:
            return
        generation = getattr(directory, "serverGeneration", None)
        if generation is not None and generation == self._generation:
            return
        self._generation = generation
        settings, problems = parseLogSettings(directory.getServerDict("Main"))
        self.apply(settings)
        if problems:
            # Not from inside the observer: the warning is an event itself.
            self.reactor.callLater(0, self._log.warn, "log settings ignored: {problems}",
                                   problems="; ".join(problems))

    def apply(self, settings):
        """
        Put C{settings} in force: levels at once, rotation from the next
        write, a new syslog target from the next record.
        """
        old, self.settings = self.settings, settings
        self.filter.setLevels(settings.level, settings.levels)
        self.file.maxSize = settings.rotateSize
        self.file.daily = settings.rotateDaily
        self.file.keep = settings.keep
        if old is None or old.syslogTarget != settings.syslogTarget:
            if self.syslog is not None:
                self.syslog.close()
            target = parseSyslogTarget(settings.syslogTarget)
            self.syslog = SyslogSender(target, clock=self.reactor) if target else None
            self._errors = self.file.errors

    def __call__(self, event):
        self.refresh()
        if not self.filter.accepts(event):
            return
        self.file.write(formatLine(event))
        # Records collected by the syslog listener are not sent back out:
        # with the target pointing at our own listener that would loop.
        if self.syslog is not None and not event.get("syslogCollected"):
            settings = self.settings
            local = self.syslog.target[0] == "unix" and settings.syslogFormat == "RFC3164"
            self.syslog.write(formatSyslog(
                event, settings.syslogFacility, settings.syslogFormat,
                hostname=None if local else self.hostname, procId=self.procId))
        self._checkErrors()

    def _checkErrors(self):
        """
        Report new write or send failures (a full disk, a syslog target
        that does not answer) to the other observers, at most once every
        L{ERROR_REPORT_INTERVAL} seconds: the report is an event itself and
        may fail the same way.
        """
        errors = self.file.errors + (self.syslog.errors if self.syslog is not None else 0)
        if errors == self._errors:
            return
        now = self.reactor.seconds()
        if (self._errorsReportedAt is not None
                and now - self._errorsReportedAt < self.ERROR_REPORT_INTERVAL):
            return
        self._errors, self._errorsReportedAt = errors, now
        self.reactor.callLater(
            0, self._log.error,
            "log output failing: {fileErrors} writes to {path} and {syslogErrors} syslog "
            "datagrams failed so far",
            fileErrors=self.file.errors, path=self.path,
            syslogErrors=self.syslog.errors if self.syslog is not None else 0)

    def startService(self):
        service.Service.startService(self)
        self.reactor.addSystemEventTrigger("after", "shutdown", self.close)

    def stopService(self):
        service.Service.stopService(self)
        self.file.flush()

    def close(self):
        """
        Stop observing and close the file and the syslog socket.
        """
        self.detach()
        self.file.close()
        if self.syslog is not None:
            self.syslog.close()
