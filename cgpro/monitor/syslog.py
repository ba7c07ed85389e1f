# -*- test-case-name: tests.monitor.test_syslog -*-
"""
The BSD syslog listener: collects the log records of third-party
components (phones, gateways, routers, other daemons) into the server log.

Each datagram is one record in the BSD format (RFC 3164,
C{<PRI>Mmm dd hh:mm:ss host tag[pid]: text}) or the IETF one (RFC 5424,
C{<PRI>1 timestamp host app procid msgid [sd] text}); it becomes one
C{twisted.logger} event in the namespace C{syslog.<host>} (the host the
record names, else the sender's address) at the level of its severity, so
the per-namespace log levels (C{LogLevels = {syslog = warn;}}) and the
log file apply to it like to the server's own records.

A datagram without a valid C{<PRI>}, with a broken RFC 5424 header, or of
L{MAX_SIZE} bytes or more (8192 is also what Twisted reads of a datagram,
so a longer one arrives cut there) is dropped and counted
(C{cgpro_errors_total{module="syslog"}}); the drops are reported in the
log at most once a minute, so a broken or hostile sender cannot flood it.

The port table row::

    syslog = { module = syslog; transport = udp; address = "127.0.0.1"; port = #514; };

takes an optional C{maxSize} (bytes).
"""

import re

from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger, LogLevel

from cgpro.core import dataformat

#: Datagrams this long or longer are dropped as oversize.
MAX_SIZE = 8192

#: Seconds between two reports of dropped datagrams.
REPORT_INTERVAL = 60

#: severity (RFC 5424 6.2.1) -> level.
LEVELS = {
    0: LogLevel.critical, 1: LogLevel.critical, 2: LogLevel.critical,
    3: LogLevel.error, 4: LogLevel.warn, 5: LogLevel.info, 6: LogLevel.info,
    7: LogLevel.debug,
}

FACILITY_NAMES = (
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
    "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
    "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
)

_PRI = re.compile(rb"<([0-9]{1,3})>")
_BSD_TIME = re.compile(r"([A-Z][a-z]{2}) ([ 0-9][0-9]) ([0-9]{2}:[0-9]{2}:[0-9]{2}) +")
_ISO_TIME = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"
    r"(?:Z|[+-][0-9]{2}:[0-9]{2}))")
_TAG = re.compile(r"([^\s:\[\]]{1,48})(?:\[([^\]\s]{0,32})\])?: ?")
_HOST_CHARS = re.compile(r"[^a-z0-9.:_-]")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_BOM = "\ufeff"


class MalformedRecord(ValueError):
    """A datagram that is not a syslog record; the text says why."""


def _header(value, name, limit):
    """
    An RFC 5424 header field: printable US-ASCII, C{-} for none.
    """
    if not value or len(value) > limit or not all(33 <= ord(c) <= 126 for c in value):
        raise MalformedRecord("bad %s" % (name,))
    return None if value == "-" else value


def _structuredData(text):
    """
    Split RFC 5424 STRUCTURED-DATA off the front of C{text}.

    @return: C{(sd, rest)}, C{sd} the raw elements or C{None} for C{-}.
    """
    if text.startswith("-"):
        return None, text[1:]
    if not text.startswith("["):
        raise MalformedRecord("bad structured data")
    i, quoted = 0, False
    while i < len(text) and text[i] == "[":
        i += 1
        while True:
            if i >= len(text):
                raise MalformedRecord("unterminated structured data")
            c = text[i]
            if quoted and c == "\\":
                i += 2
                continue
            if c == '"':
                quoted = not quoted
            elif c == "]" and not quoted:
                i += 1
                break
            i += 1
    return text[:i], text[i:]


def parseRecord(data):
    """
    Parse one syslog datagram.

    @param data: C{bytes}, trailing line ends and NULs allowed.
    @return: a C{dict} with C{facility}, C{severity} (numbers), C{format}
        (C{"RFC3164"} or C{"RFC5424"}), C{timestamp}, C{host}, C{app},
        C{pid}, C{msgid}, C{sd} (C{str} or C{None}) and C{message}.
    @raise MalformedRecord: for anything else.
    """
    match = _PRI.match(data)
    if match is None:
        raise MalformedRecord("no <PRI>")
    pri = int(match.group(1))
    if pri > 191 or (len(match.group(1)) > 1 and match.group(1).startswith(b"0")):
        raise MalformedRecord("bad <PRI>")
    text = data[match.end():].rstrip(b"\r\n\x00").decode("utf-8", "replace")
    record = {"facility": pri >> 3, "severity": pri & 7, "timestamp": None, "host": None,
              "app": None, "pid": None, "msgid": None, "sd": None}
    if text[:2] == "1 ":
        record["format"] = "RFC5424"
        parts = text[2:].split(" ", 5)
        if len(parts) < 6:
            raise MalformedRecord("short RFC 5424 header")
        stamp, host, app, pid, msgid, rest = parts
        if stamp != "-" and not _ISO_TIME.fullmatch(stamp):
            raise MalformedRecord("bad timestamp")
        record["timestamp"] = None if stamp == "-" else stamp
        record["host"] = _header(host, "hostname", 255)
        record["app"] = _header(app, "app-name", 48)
        record["pid"] = _header(pid, "procid", 128)
        record["msgid"] = _header(msgid, "msgid", 32)
        record["sd"], rest = _structuredData(rest)
        if rest and not rest.startswith(" "):
            raise MalformedRecord("no space after structured data")
        message = rest[1:]
        if message.startswith(_BOM):
            message = message[1:]
    else:
        record["format"] = "RFC3164"
        message = text
        stamp = _BSD_TIME.match(text)
        iso = None if stamp else _ISO_TIME.match(text)
        if stamp and stamp.group(1) in _MONTHS:
            record["timestamp"] = " ".join(stamp.group(1, 2, 3))
            message = text[stamp.end():]
        elif iso and text[iso.end():iso.end() + 1] == " ":
            record["timestamp"] = iso.group(1)
            message = text[iso.end() + 1:]
        if record["timestamp"] is not None:
            # HOSTNAME, unless the next word is already the tag (syslog(3)
            # writing to /dev/log leaves the host out).
            word, _, rest = message.partition(" ")
            if word and not _TAG.fullmatch(word + " ") and "[" not in word:
                record["host"] = word
                message = rest
        tag = _TAG.match(message)
        if tag is not None:
            record["app"], record["pid"] = tag.group(1), tag.group(2) or None
            message = message[tag.end():]
    if not message and record["app"] is None:
        raise MalformedRecord("empty record")
    record["message"] = message
    return record


def hostNamespace(host):
    """
    @return: C{syslog.<host>}, the host lower-cased with anything but
        letters, digits, C{.:_-} replaced by C{_}.
    """
    return "syslog." + _HOST_CHARS.sub("_", host.lower()[:255]).strip(".")


class SyslogProtocol(DatagramProtocol):
    """
    Receives syslog datagrams and logs each record.

    @ivar received: records logged.
    @ivar malformed: datagrams dropped as not syslog.
    @ivar oversize: datagrams dropped as too long.
    """

    def __init__(self, clock=None, stats=None, maxSize=MAX_SIZE, observer=None):
        """
        @param clock: for the once-a-minute reports.
        @param stats: the server's L{cgpro.core.stats.Catalog}, or C{None}.
        @param maxSize: datagrams of this many bytes or more are dropped.
        @param observer: where records go (default the global publisher).
        """
        if clock is None:
            from twisted.internet import reactor as clock
        self.clock = clock
        self.stats = stats
        self.maxSize = min(maxSize, MAX_SIZE)
        self.observer = observer
        self.received = 0
        self.malformed = 0
        self.oversize = 0
        self._pending = {"malformed": 0, "oversize": 0}
        self._last = None
        self._reportedAt = None
        self._delayed = None
        self._log = Logger(namespace=__name__, observer=observer)

    def datagramReceived(self, data, address):
        host = address[0] if isinstance(address, tuple) else str(address)
        if len(data) >= self.maxSize:
            self._dropped("oversize", "%d bytes" % (len(data),), host)
            return
        try:
            record = parseRecord(data)
        except MalformedRecord as e:
            self._dropped("malformed", str(e), host)
            return
        self.received += 1
        text = record["message"]
        if record["app"]:
            tag = record["app"] + ("[%s]" % (record["pid"],) if record["pid"] else "")
            fmt = "{syslogTag}: {syslogMessage}"
        else:
            tag, fmt = None, "{syslogMessage}"
        Logger(namespace=hostNamespace(record["host"] or host),
               observer=self.observer).emit(
            LEVELS[record["severity"]], fmt,
            syslogMessage=text, syslogTag=tag, syslogHost=record["host"],
            syslogSource=host, syslogApp=record["app"], syslogPid=record["pid"],
            syslogMsgId=record["msgid"], syslogData=record["sd"],
            syslogTime=record["timestamp"], syslogFormat=record["format"],
            syslogFacility=FACILITY_NAMES[record["facility"]],
            syslogSeverity=record["severity"], syslogCollected=True)

    def _dropped(self, kind, reason, host):
        setattr(self, kind, getattr(self, kind) + 1)
        self._pending[kind] += 1
        self._last = (host, reason)
        if self.stats is not None:
            self.stats.counter("cgpro_errors_total").labels("syslog", kind).inc()
        now = self.clock.seconds()
        if self._reportedAt is None or now - self._reportedAt >= REPORT_INTERVAL:
            self._report()
        elif self._delayed is None:
            self._delayed = self.clock.callLater(
                self._reportedAt + REPORT_INTERVAL - now, self._report)

    def _report(self):
        self._delayed = None
        if not any(self._pending.values()):
            return
        host, reason = self._last
        self._log.warn(
            "syslog listener: dropped {malformed} malformed and {oversize} oversize "
            "datagrams since the last report; the last from {source}: {reason}",
            malformed=self._pending["malformed"], oversize=self._pending["oversize"],
            source=host, reason=reason)
        self._pending = {"malformed": 0, "oversize": 0}
        self._reportedAt = self.clock.seconds()

    def stopProtocol(self):
        if self._delayed is not None and self._delayed.active():
            self._delayed.cancel()
        self._delayed = None


def build(spec, context):
    """
    @param spec: the L{cgpro.core.ports.ListenerSpec} of the row (option
        C{maxSize}).
    @param context: the L{cgpro.core.interfaces.IServerContext}.
    @return: a L{SyslogProtocol}.
    """
    maxSize = dataformat.parseSize(spec.options.get("maxSize", MAX_SIZE)) or MAX_SIZE
    return SyslogProtocol(clock=context.reactor, stats=getattr(context, "stats", None),
                          maxSize=maxSize)
