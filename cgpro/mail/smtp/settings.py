# -*- test-case-name: tests.mail.smtp.test_factory -*-
"""
The SMTP and LMTP module settings: built-in defaults and their parsed form.

Per the mail contract, a module keeps its built-in defaults in one
dictionary in its own package and merges the stored dictionary
(C{directory.getServerDict("Modules")["SMTP"]}, changed over the CLI with
C{UPDATEMODULE SMTP {...}}) over them each time it needs a value, so a
change applies to the next connection without a restart.  Values are kept
as the data format stores them (C{"YES"}, C{"10M"}, C{"5m"}, lists) and
parsed here once per connection; a value an administrator mistyped is
logged and replaced by its default rather than breaking the listener.
"""


from cgpro.core import dataformat
from cgpro.core.modulesettings import ModuleSettings, choice, count, duration, yes


#: Built-in defaults of module C{SMTP} (listeners smtp, smtps, submission).
DEFAULTS = {
    # Largest message accepted (SIZE in EHLO, enforced during DATA).
    "MaxMessageSize": "50M",
    # Recipients per message; more get 452 4.5.3.
    "MaxRecipients": "1000",
    # Per client address and minute; 0 = no limit.  Client IPs, LAN IPs
    # and authenticated users are exempt.
    "MaxConnectionsPerIPPerMinute": "0",
    "MaxMessagesPerIPPerMinute": "0",
    # A receiving session silent this long is closed with 421 4.4.2 (not
    # IdleTimeout: that key of the same module is the relay client's).
    "ReceiveIdleTimeout": "5m",
    # Protocol errors (unknown commands, bad syntax, failed AUTH) before
    # the session is closed with 421 4.7.0.
    "MaxErrors": "20",
    # AUTH over a connection without TLS.
    "AllowCleartextAuth": "NO",
    # How long a failed AUTH waits before its 535 (slows guessing).
    "AuthFailureDelay": "1s",
    # A DATA line ending in LF alone: Normalize (store it with CRLF; only
    # CRLF.CRLF ends the data, so no SMTP smuggling) or Reject (554 and
    # close).
    "BareLF": "Normalize",
    # NUL bytes in DATA: Reject (554 5.6.0 after the data) or Strip.
    "NULBytes": "Reject",
    # SPF of MAIL FROM: NO, YES (Received-SPF header only), REJECT (fail is
    # refused with 550 5.7.23).
    "SPFCheck": "NO",
    # DNS blocklist zones (a client listed in any is refused with 554 5.7.1).
    "DNSBL": [],
    # The MAIL FROM domain must have MX or address records.
    "CheckReturnPath": "NO",
    # Each DNS query gives up after this long (a temporary error: 451).
    "DNSTimeout": "10s",
}

#: Built-in defaults of module C{LMTP}: it sits behind another MTA that
#: already applied the abuse checks, so those are off, as in C{DEFAULTS}.
LMTP_DEFAULTS = dict(DEFAULTS)


_yes, _count, _choice, _duration = yes, count, choice, duration


def _zones(value):
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    if not isinstance(value, (list, tuple)):
        raise ValueError("expected a list of zones, not %r" % (value,))
    return [str(zone).strip().strip(".") for zone in value if str(zone).strip()]


def _duration(value):
    seconds = dataformat.parseDuration(value)
    return seconds if seconds is not None else 0


_PARSERS = {
    "MaxMessageSize": ("maxMessageSize", dataformat.parseSize),
    "MaxRecipients": ("maxRecipients", _count),
    "MaxConnectionsPerIPPerMinute": ("maxConnectionsPerMinute", _count),
    "MaxMessagesPerIPPerMinute": ("maxMessagesPerMinute", _count),
    "ReceiveIdleTimeout": ("idleTimeout", _duration),
    "MaxErrors": ("maxErrors", _count),
    "AllowCleartextAuth": ("allowCleartextAuth", _yes),
    "AuthFailureDelay": ("authFailureDelay", _duration),
    "BareLF": ("bareLF", _choice("Normalize", "Reject")),
    "NULBytes": ("nulBytes", _choice("Reject", "Strip")),
    "SPFCheck": ("spfCheck", _choice("NO", "YES", "REJECT")),
    "DNSBL": ("dnsbl", _zones),
    "CheckReturnPath": ("checkReturnPath", _yes),
    "DNSTimeout": ("dnsTimeout", _duration),
}


class SMTPSettings(ModuleSettings):
    """
    The effective settings of one session, parsed.

    @ivar raw: the merged dictionary (defaults, then the stored values).
    @ivar maxMessageSize: bytes, or C{None} for no limit.
    @ivar maxRecipients: C{int} (0 = no limit).
    @ivar maxConnectionsPerMinute: C{int} (0 = no limit).
    @ivar maxMessagesPerMinute: C{int} (0 = no limit).
    @ivar idleTimeout: seconds (0 = none).
    @ivar maxErrors: C{int} (0 = no limit).
    @ivar allowCleartextAuth: C{bool}.
    @ivar authFailureDelay: seconds.
    @ivar bareLF: C{"Normalize"} or C{"Reject"}.
    @ivar nulBytes: C{"Reject"} or C{"Strip"}.
    @ivar spfCheck: C{"NO"}, C{"YES"} or C{"REJECT"}.
    @ivar dnsbl: C{list} of zones.
    @ivar checkReturnPath: C{bool}.
    @ivar dnsTimeout: seconds.
    """

    DEFAULTS = DEFAULTS
    PARSERS = _PARSERS
    MODULE = "SMTP"


def loadSettings(directory, module="SMTP"):
    """
    Read the current settings of a module.

    @param directory: the L{cgpro.core.interfaces.IDirectory} (with
        C{getServerDict}).
    @param module: C{"SMTP"} or C{"LMTP"}.
    @return: an L{SMTPSettings}.
    """
    defaults = LMTP_DEFAULTS if module == "LMTP" else DEFAULTS
    return SMTPSettings.load(directory, module, defaults)
