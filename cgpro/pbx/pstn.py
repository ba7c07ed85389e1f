# -*- test-case-name: tests.pbx.test_pstn -*-
"""
The rules of the PSTN applications, as pure functions.

C{gatewaycaller}, C{localAreaCall}, C{emergency} and C{rsipRegister}
(pbx-apps.md sections 4 to 8) each make a handful of decisions from
settings and a dialled number before any signalling happens.  They live
here, apart from the call machinery, so that every table of the spec is a
plain unit test and the applications only carry the results out.
"""

import re

from cgpro.core.errors import CLIError

PSTN_PREFIX = "PSTN"
GATEWAY_NAME = "PSTNGatewayName"
GATEWAY_DOMAIN = "PSTNGatewayDomain"
RSIP_MIN_PERIOD = 30
RSIP_EXTRA_EXPIRES = 120
BLOCKED = "blocked"
ALLOWED = "allowed"

_PERIOD = re.compile(r"([0-9]{1,9})\s*([smh]?)", re.I)
_PERIOD_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600}
_SCHEME = re.compile(r"^(sips?|tel):", re.I)


# -- settings ------------------------------------------------------------------

def pstnSettings(effectiveSettings, gatewayKey=None):
    """
    The caller's PSTN settings as C{gatewaycaller} uses them (objects.md
    4.4).

    Any C{PSTN...} value may be a dictionary keyed by gateway name: the
    element named C{gatewayKey} is taken, and a setting with no such
    element is left out (as if empty).  The gateway is C{PSTNGatewayName},
    else the C{PSTNGatewayDomain} real settings files use.

    @param effectiveSettings: the Account's effective settings.
    @param gatewayKey: the application's second parameter, or C{None}.
    @return: C{{key: value}} of the C{PSTN...} settings.
    """
    result = {}
    for key, value in effectiveSettings.items():
        if not key.startswith(PSTN_PREFIX):
            continue
        if isinstance(value, dict):
            if gatewayKey is None or gatewayKey not in value:
                continue
            value = value[gatewayKey]
        result[key] = value
    if GATEWAY_NAME not in result and GATEWAY_DOMAIN in result:
        result[GATEWAY_NAME] = result[GATEWAY_DOMAIN]
    return result


def fromName(value, account):
    """
    Expand a Caller ID setting (C{PSTNFromName}, an RSIP C{fromName}):
    C{$} stands for the account name.

    @return: the expanded text; C{""} means "keep the original From".
    """
    return (value or "").replace("$", account)


# -- billing plans ---------------------------------------------------------------

class BillingPlanError(CLIError):
    """A billing plan file whose content breaks the rules of section 5.3."""


class BillingPlan:
    """
    A parsed C{billingplan-<name>.objdata} (pbx-apps.md 5.3).

    @ivar entries: C{{prefix: cost per minute (number) or block reason
        (string)}}.
    """

    def __init__(self, entries):
        self.entries = entries

    @classmethod
    def parse(cls, data):
        """
        Check a plan's dictionary.

        @raise BillingPlanError: naming the first offending entry.
        """
        if not isinstance(data, dict):
            raise BillingPlanError("a billing plan must be a dictionary")
        for prefix, value in data.items():
            if prefix and not prefix.isdigit():
                raise BillingPlanError("billing plan prefix must be digits: %r" % (prefix,))
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise BillingPlanError(
                    "billing plan entry %r must be a number or a reason string" % (prefix,))
            if isinstance(value, (int, float)) and value < 0:
                raise BillingPlanError("billing plan cost for %r is negative" % (prefix,))
            if isinstance(value, str) and not value:
                raise BillingPlanError("billing plan reason for %r is empty" % (prefix,))
        return cls(dict(data))

    def check(self, number):
        """
        Price or refuse a call: the entry with the longest prefix of the
        number (without its leading C{+}) decides.  A number no entry
        matches is refused: a plan that does not price a destination must
        not make it free.

        @return: C{("blocked", reason)} or C{("allowed", costPerMinute)}.
        """
        digits = number[1:] if number.startswith("+") else number
        for length in range(len(digits), -1, -1):
            value = self.entries.get(digits[:length])
            if value is not None:
                if isinstance(value, str):
                    return (BLOCKED, value)
                return (ALLOWED, value)
        return (BLOCKED, "no billing plan entry for this number")


# -- localAreaCall and emergency -------------------------------------------------

def areaDigits(areaCode, mode=None):
    """
    The digits C{localAreaCall} puts before the dialled number (section 7).

    @param areaCode: C{PSTNAreaCode}, e.g. C{1(415)}.
    @param mode: C{None} (or C{""}) for the whole code (C{1415}), C{"c"} for the
        country code only (C{1}), the digits before the parenthesis.
    @return: a digit string, or C{None} when there is none (the call is
        rejected).
    """
    text = areaCode or ""
    if mode:
        if str(mode).lower() != "c":
            raise ValueError("unknown localAreaCall mode %r" % (mode,))
        text = text.partition("(")[0]
    digits = "".join(c for c in text if c.isdigit())
    return digits or None


def localAreaTarget(areaCode, dialled, mode=None):
    """
    @return: the C{...@telnum} address C{localAreaCall} redirects to, or
        C{None} without an area code.
    """
    prefix = areaDigits(areaCode, mode)
    if prefix is None:
        return None
    return "%s%s@telnum" % (prefix, dialled)


def emergencyTargets(value, dialled):
    """
    Where the C{emergency} application sends a call (section 8).

    @param value: C{PSTNEmergency}: C{call=<uri>[,call=<uri>...]}, or a bare
        address.
    @param dialled: the number the caller dialled (C{911}).
    @return: the list of addresses to fork to (never empty).
    """
    targets = []
    for item in (value or "").split(","):
        item = item.strip()
        if item[:5].lower() == "call=":
            item = item[5:].strip()
        if item:
            targets.append(item)
    return targets or ["%s@telnum" % (dialled,)]


# -- RSIP ------------------------------------------------------------------------

def rsipPeriod(text):
    """
    Parse an RSIP record's C{period} (section 4): C{30m}, C{60s}, C{1h}, a
    bare number of seconds, or C{Never}.  Shorter periods are raised to the
    30 s minimum rather than refused, so a record stored by another client
    still registers.

    @return: seconds, or C{None} for C{Never} (the record is removed).
    @raise ValueError: for anything else.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        seconds = text
    else:
        if not isinstance(text, str):
            raise ValueError("invalid RSIP period: %r" % (text,))
        stripped = text.strip()
        if stripped.lower() == "never":
            return None
        m = _PERIOD.fullmatch(stripped)
        if m is None:
            raise ValueError("invalid RSIP period: %r" % (text,))
        seconds = int(m.group(1)) * _PERIOD_UNITS[m.group(2).lower()]
    return max(RSIP_MIN_PERIOD, seconds)


def rsipExpires(period):
    """
    The Expires a REGISTER asks for: two minutes longer than the period,
    so the binding never lapses between two registrations.
    """
    return period + RSIP_EXTRA_EXPIRES


def rsipTarget(record, account):
    """
    Where and as whom an RSIP record registers (section 4).

    @param record: the record (C{domain}, C{fromName} ...).
    @param account: the Account's name (the default C{fromName}, and what
        C{$} stands for).
    @return: C{(aor, requestHost, proxy, direct)}: the AOR as a C{sip:}
        URI, the host of the Request-URI, the proxy to send through (or
        C{None}), and whether calls go straight to the Account (leading
        C{*}).
    @raise ValueError: without a host.
    """
    host = (record.get("domain") or "").strip()
    direct = host.startswith("*")
    if direct:
        host = host[1:]
    requestHost, _, proxy = host.partition("@")
    if not requestHost:
        raise ValueError("RSIP record has no host")
    aor = fromName(record.get("fromName"), account) or account
    if "@" not in aor:
        aor = "%s@%s" % (aor, requestHost)
    if _SCHEME.match(aor) is None:
        aor = "sip:" + aor
    return aor, requestHost, proxy or None, direct


def rsipAuthName(record, account):
    """
    @return: the digest user name: C{authName}, else the Account value.
    """
    name = record.get("authName")
    if name:
        return name
    return fromName(record.get("fromName"), account) or account
