# -*- test-case-name: tests.core.test_ports -*-
"""
The port table: which listeners exist, parsed into L{ListenerSpec}s.

C{etc/ports.conf} is the single source of listeners.  A server's base folder
may override any row or add rows (C{Settings/Listeners.settings}, written by
the CLI's listener commands); the port offset is applied last, at run time,
so stored values never contain it.

L{PROTOCOLS} maps a module name to the dotted name of its factory builder,
resolved with C{namedAny} only when a listener of that module is started
(as Twisted's C{ServiceMaker} does), so the core never imports a protocol
package.  A module that is not in L{PROTOCOLS} is not built yet: its rows
are reported at start-up as not available.
"""

import ipaddress
import os
from dataclasses import dataclass, field, replace

from cgpro.core import dataformat

#: module name -> dotted name of C{build(spec, context)}.
PROTOCOLS = {
    "cli": "cgpro.cli.factory.build",
    "smtp": "cgpro.mail.smtp.factory.buildSMTP",
    "submission": "cgpro.mail.smtp.factory.buildSubmission",
    "lmtp": "cgpro.mail.smtp.factory.buildLMTP",
    "pop": "cgpro.mail.pop3.factory.build",
    "imap": "cgpro.mail.imap.factory.build",
    "sip": "cgpro.sip.factory.build",
    "snmp": "cgpro.monitor.snmp.build",
    "metrics": "cgpro.monitor.metrics.build",
    "syslog": "cgpro.monitor.syslog.build",
}

TRANSPORTS = ("tcp", "udp")
TLS_MODES = ("no", "starttls", "implicit")
ROW_KEYS = ("module", "transport", "address", "port", "tls", "enabled")


class PortTableError(ValueError):
    """A port table row that cannot be used; the text names the row."""


@dataclass(frozen=True)
class ListenerSpec:
    """
    One row of the port table.

    @ivar name: unique row name (C{smtp}, C{sip-udp}, C{cli}, ...).
    @ivar port: the port as configured (before the offset).
    @ivar options: module-specific extra keys of the row.
    """

    name: str
    module: str
    transport: str
    address: str
    port: int
    tls: str = "no"
    enabled: bool = True
    options: dict = field(default_factory=dict, compare=False)

    def withOffset(self, offset):
        """
        @return: a copy with the port moved by C{offset}.
        @raise PortTableError: if that leaves the port range.
        """
        port = self.port + offset
        if not 0 <= port <= 65535:
            raise PortTableError(
                "listener %s: port %d + offset %d = %d is outside 0-65535"
                % (self.name, self.port, offset, port)
            )
        return replace(self, port=port)

    def endpoint(self):
        """
        @return: the Twisted server endpoint string of a TCP row.
        """
        address = self.address.replace(":", "\\:")
        return "tcp:port=%d:interface=%s" % (self.port, address)

    def asDict(self):
        """
        @return: the row as stored (data-format values).
        """
        row = dict(self.options)
        row.update(
            module=self.module,
            transport=self.transport,
            address=self.address,
            port=self.port,
            tls=self.tls,
            enabled="YES" if self.enabled else "NO",
        )
        return row


def _yes(value, where):
    if isinstance(value, bool):
        return value
    text = str(value).upper()
    if text in ("YES", "TRUE", "1", "ON"):
        return True
    if text in ("NO", "FALSE", "0", "OFF"):
        return False
    raise PortTableError("%s: enabled must be YES or NO, not %r" % (where, value))


def specFromDict(name, row):
    """
    Validate one row.

    @raise PortTableError: naming the row and the bad field.
    """
    where = "listener %s" % (name,)
    if not isinstance(row, dict):
        raise PortTableError("%s: a row must be a dictionary" % (where,))
    missing = [k for k in ("module", "transport", "port") if k not in row]
    if missing:
        raise PortTableError("%s: missing %s" % (where, ", ".join(missing)))
    transport = str(row["transport"]).lower()
    if transport not in TRANSPORTS:
        raise PortTableError("%s: transport must be tcp or udp" % (where,))
    tls = str(row.get("tls", "no")).lower()
    if tls not in TLS_MODES:
        raise PortTableError("%s: tls must be one of %s" % (where, ", ".join(TLS_MODES)))
    if transport == "udp" and tls != "no":
        raise PortTableError("%s: a udp listener cannot use TLS" % (where,))
    try:
        port = int(row["port"])
    except (TypeError, ValueError):
        raise PortTableError("%s: port must be a number" % (where,))
    if not 0 <= port <= 65535:
        raise PortTableError("%s: port %d is outside 0-65535" % (where, port))
    address = str(row.get("address", "0.0.0.0"))
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise PortTableError("%s: address %r is not an IP address" % (where, address))
    options = {k: v for k, v in row.items() if k not in ROW_KEYS}
    return ListenerSpec(
        name=name,
        module=str(row["module"]).lower(),
        transport=transport,
        address=address,
        port=port,
        tls=tls,
        enabled=_yes(row.get("enabled", "YES"), where),
        options=options,
    )


def parseMediaPorts(value):
    """
    Parse the RTP Port Allocation range C{"LOW-HIGH"}.

    @return: C{(low, high)}.
    @raise PortTableError: for a malformed or empty range.
    """
    try:
        low, high = (int(p) for p in str(value).split("-"))
    except ValueError:
        raise PortTableError("media ports must be LOW-HIGH, not %r" % (value,))
    if not (1 <= low <= high <= 65535) or (high - low) < 1:
        raise PortTableError("media ports %r: need 1 <= LOW < HIGH <= 65535" % (value,))
    return low, high


class PortTable:
    """
    The default rows of C{etc/ports.conf} with a base folder's overrides.

    @ivar defaults: C{dict} name -> row C{dict} from the file.
    @ivar overrides: C{dict} name -> partial row, or C{None} for a deleted
        row (from C{Settings/Listeners.settings}).
    @ivar mediaPorts: C{(low, high)}.
    """

    def __init__(self, defaults, mediaPorts, overrides=None):
        self.defaults = defaults
        self.mediaPorts = mediaPorts
        self.overrides = dict(overrides or {})
        self.specs()  # validate everything now

    @classmethod
    def fromFile(cls, path, overrides=None):
        with open(path, "rb") as f:
            try:
                content = dataformat.loads(f.read())
            except dataformat.DataFormatError as e:
                raise PortTableError("%s: %s" % (path, e))
        if not isinstance(content, dict) or not isinstance(content.get("Listeners"), dict):
            raise PortTableError("%s: expected {Listeners = {...}; ...}" % (path,))
        media = parseMediaPorts(content.get("MediaPorts", "60000-60099"))
        return cls(content["Listeners"], media, overrides)

    def row(self, name):
        """
        @return: the effective row C{dict} of C{name}, or C{None}.
        """
        if name in self.overrides and self.overrides[name] is None:
            return None
        base = self.defaults.get(name)
        override = self.overrides.get(name)
        if base is None and override is None:
            return None
        row = dict(base or {})
        row.update(override or {})
        return row

    def names(self):
        return sorted(n for n in set(self.defaults) | set(self.overrides) if self.row(n))

    def specs(self):
        """
        @return: C{dict} name -> validated L{ListenerSpec}.
        """
        return {name: specFromDict(name, self.row(name)) for name in self.names()}

    def withOverride(self, name, override):
        """
        @return: a new L{PortTable} with one row overridden (C{None}
            deletes it); validated before it is returned.
        """
        overrides = dict(self.overrides)
        overrides[name] = override
        return PortTable(self.defaults, self.mediaPorts, overrides)


def defaultEtcDir():
    """
    Find the shipped C{etc} folder: the installed package's copy, or the
    checkout's top-level C{etc/} when running from a source tree.
    """
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for candidate in (os.path.join(here, "etc"), os.path.join(os.path.dirname(here), "etc")):
        if os.path.exists(os.path.join(candidate, "ports.conf")):
            return candidate
    raise PortTableError("cannot find etc/ports.conf (use --etc DIR)")
