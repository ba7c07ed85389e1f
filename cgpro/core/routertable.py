# -*- test-case-name: tests.core.test_router -*-
"""
The Router Table: its text parsed into L{Record}s (C{router.md} section 2).

This module parses the table text and L{cgpro.core.router} routes with the
result, and the two jobs are kept apart.  L{parseTable} reads prefixes,
left sides and targets, compiles every pattern to an anchored
case-insensitive regular expression and refuses a bad table whole, naming
its first bad line (L{RouterTableError}).  It knows nothing about
directories or routing passes, so a table can be checked
(C{SETROUTERTABLE}) without a L{cgpro.core.router.Router}; the Router
calls L{parseTable} and only scans the records it returns.

L{cgpro.core.router} re-exports every public name here.

This module is in layer 0: it imports only the standard library.
"""

import re
from dataclasses import dataclass, field

__all__ = [
    "KINDS",
    "Record",
    "RouterTableError",
    "parseTable",
]

#: The kinds of address the Router distinguishes (C{router.md} 2.2).
KINDS = ("MAIL", "ACCESS", "SIGNAL")

_ALL_KINDS = frozenset(KINDS)

_RELAY_PREFIXES = {
    "relay": "Relay",
    "norelay": "NoRelay",
    "n": "NoRelay",
    "relayall": "RelayAll",
}

_TYPE_PREFIXES = {
    "mail": "MAIL",
    "m": "MAIL",
    "access": "ACCESS",
    "a": "ACCESS",
    "signal": "SIGNAL",
    "s": "SIGNAL",
}

_DIGIT_GROUP = re.compile(r"\(([0-9]+)(?:(\+)|-([0-9]+))?[dD]\)")

# app[{p1,p2}]#account[@domain]; a parameter cannot contain "," "{" "}".
_APPLICATION = re.compile(
    r"(?P<app>[A-Za-z0-9_.\-]+)"
    r"(?:\{(?P<params>[^{}]*)\})?"
    r"#(?P<account>[^#@{}\s]+)"
    r"(?:@(?P<domain>[^#@{}\s]+))?"
)

_BLANK = re.compile(r"\s")


class RouterTableError(ValueError):
    """
    A Router Table text could not be parsed.

    The whole table is refused (C{router.md} 6: C{SETROUTERTABLE} answers
    C{501 router table line N: reason}), so the error names the first bad
    line.

    @ivar line: the 1-based number of the offending line.
    @ivar reason: what is wrong with it.
    """

    def __init__(self, line, reason):
        self.line = line
        self.reason = reason
        ValueError.__init__(self, line, reason)

    def __str__(self):
        return f"router table line {self.line}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Record:
    """
    One parsed Router Table record.

    @ivar relay: C{None} (no relay prefix), C{"Relay"}, C{"NoRelay"} or
        C{"RelayAll"}.
    @ivar kinds: C{frozenset} of the kinds (C{"MAIL"}, C{"ACCESS"},
        C{"SIGNAL"}) the record applies to; all three without a type prefix.
    @ivar pattern: the left side, without the angle brackets.
    @ivar domainLevel: C{True} for a domain-level record (left side written
        without C{<>}): it matches and replaces only the domain part.
    @ivar target: the right side, stripped, trailing comment removed.
    @ivar line: the 1-based line number in the table text.
    @ivar regex: the compiled, case-insensitive pattern, matched against
        the whole address (or domain) with C{fullmatch}.
    @ivar hasWildcard: whether the pattern has a C{*} or digit group, i.e.
        whether C{*} in the target has anything to stand for.
    @ivar isApplication: whether the target is written as an application
        address C{app[{...}]#account[@domain]}.  Only such records start
        applications: text captured from the routed address cannot turn a
        plain target into one.
    @ivar isNull: whether the target is C{null} (discard).
    """

    relay: object
    kinds: frozenset
    pattern: str
    domainLevel: bool
    target: str
    line: int
    regex: re.Pattern = field(repr=False, compare=False)
    hasWildcard: bool = field(default=False, repr=False, compare=False)
    isApplication: bool = field(default=False, repr=False, compare=False)
    isNull: bool = field(default=False, repr=False, compare=False)

    @property
    def grantsRelay(self):
        """
        Whether an address routed through this record may be relayed
        whatever the sender (C{router.md} 2.1: C{Relay:}, and C{RelayAll:}
        treated the same).
        """
        return self.relay in ("Relay", "RelayAll")

    def rewrite(self, address, local, domain):
        """
        Apply this record to an address it may match.

        @param address: the whole address C{local@domain}.
        @param local: its local part.
        @param domain: its domain part.
        @return: the rewritten address, or C{None} if the pattern does not
            match.
        """
        if self.domainLevel:
            match = self.regex.fullmatch(domain)
        else:
            match = self.regex.fullmatch(address)
        if match is None:
            return None
        target = self.target
        if self.hasWildcard and "*" in target:
            target = target.replace("*", match.group(1))
        if self.domainLevel and not (self.isApplication or self.isNull):
            return local + "@" + target
        return target


def _compilePattern(pattern, lineNo):
    """
    Translate a left-side pattern into a regular expression (C{router.md}
    2.3): C{*} is C{(.*)}, C{(Nd)} C{([0-9]{N})}, C{(N+d)} C{([0-9]{N,})},
    C{(N-Md)} C{([0-9]{N,M})}, everything else literal.

    C{[0-9]} rather than C{\\d}: telephone numbers are ASCII digits, and
    C{\\d} would also accept other scripts' digits.

    @return: a tuple C{(compiled, hasWildcard)}.
    @raise RouterTableError: for a malformed digit group.
    """
    parts = []
    wildcard = False
    pos = 0
    end = len(pattern)
    while pos < end:
        char = pattern[pos]
        if char == "*":
            parts.append("(.*)")
            wildcard = True
            pos += 1
        elif char == "(":
            match = _DIGIT_GROUP.match(pattern, pos)
            if match is None:
                closing = pattern.find(")", pos)
                shown = pattern[pos:closing + 1] if closing != -1 else "("
                raise RouterTableError(
                    lineNo, f"bad digit group {shown!r}")
            low = int(match.group(1))
            if match.group(2):
                regex = f"([0-9]{{{low},}})"
            elif match.group(3) is not None:
                high = int(match.group(3))
                if high < low or high == 0:
                    raise RouterTableError(
                        lineNo, f"bad digit group {match.group(0)!r}")
                regex = f"([0-9]{{{low},{high}}})"
            else:
                if low == 0:
                    raise RouterTableError(
                        lineNo, f"bad digit group {match.group(0)!r}")
                regex = f"([0-9]{{{low}}})"
            parts.append(regex)
            wildcard = True
            pos = match.end()
        elif char == ")":
            raise RouterTableError(lineNo, "unbalanced ')'")
        else:
            nextSpecial = pos + 1
            while nextSpecial < end and pattern[nextSpecial] not in "*()":
                nextSpecial += 1
            parts.append(re.escape(pattern[pos:nextSpecial]))
            pos = nextSpecial
    try:
        compiled = re.compile("".join(parts), re.IGNORECASE | re.DOTALL)
    except (re.error, OverflowError) as e:
        raise RouterTableError(lineNo, f"bad pattern: {e}")
    return compiled, wildcard


def _checkTarget(target, domainLevel, hasWildcard, lineNo):
    """
    Refuse right sides that could never route: unbalanced braces, a
    malformed application target, a C{*} with nothing to stand for, or a
    domain-level target that is not a domain.

    @raise RouterTableError: when C{target} is refused.
    """
    if _BLANK.search(target):
        raise RouterTableError(lineNo, "blank inside the target")
    if "<" in target or ">" in target:
        raise RouterTableError(lineNo, "angle bracket in the target")
    if "*" in target and not hasWildcard:
        raise RouterTableError(
            lineNo, "'*' in the target but no wildcard in the pattern")
    isApplication = _APPLICATION.fullmatch(target) is not None
    if not isApplication and ("{" in target or "}" in target
                              or "#" in target):
        raise RouterTableError(lineNo, "bad application target")
    if domainLevel and not isApplication and "@" in target:
        raise RouterTableError(
            lineNo, "the target of a domain-level record must be a domain")


def _parseLine(text, lineNo):
    """
    Parse one non-comment line into a L{Record}.

    @raise RouterTableError: when the line is malformed.
    """
    rest = text
    relay = None
    kinds = None
    # Prefixes: "word:" before the left side.  A domain-level pattern
    # cannot contain ":" and an address pattern starts with "<", so any
    # colon ahead of the first "<" or "=" ends a prefix.
    while not rest.startswith("<"):
        colon = rest.find(":")
        if colon == -1:
            break
        stops = [i for i in (rest.find("<"), rest.find("=")) if i != -1]
        if stops and colon > min(stops):
            break
        word = rest[:colon].strip()
        key = word.lower()
        if key in _RELAY_PREFIXES:
            if relay is not None:
                raise RouterTableError(lineNo, "duplicate relay prefix")
            if kinds is not None:
                raise RouterTableError(
                    lineNo,
                    f"relay prefix {word!r} must come before the type prefix")
            relay = _RELAY_PREFIXES[key]
        elif key in _TYPE_PREFIXES:
            if kinds is not None:
                raise RouterTableError(lineNo, "duplicate type prefix")
            kinds = frozenset([_TYPE_PREFIXES[key]])
        else:
            raise RouterTableError(lineNo, f"unknown prefix {word!r}")
        rest = rest[colon + 1:].lstrip()

    if rest.startswith("<"):
        closing = rest.find(">")
        if closing == -1:
            raise RouterTableError(lineNo, "unbalanced '<'")
        pattern = rest[1:closing].strip()
        if "<" in pattern:
            raise RouterTableError(lineNo, "unbalanced '<'")
        after = rest[closing + 1:].lstrip()
        if not after.startswith("="):
            if "=" not in after:
                raise RouterTableError(lineNo, "missing '='")
            raise RouterTableError(lineNo, "unexpected text after '>'")
        right = after[1:]
        domainLevel = False
    else:
        equals = rest.find("=")
        if equals == -1:
            raise RouterTableError(lineNo, "missing '='")
        pattern = rest[:equals].strip()
        right = rest[equals + 1:]
        if ">" in pattern:
            raise RouterTableError(lineNo, "unbalanced '>'")
        if "@" in pattern:
            raise RouterTableError(
                lineNo, "an address pattern must be enclosed in '<' '>'")
        domainLevel = True
    if not pattern:
        raise RouterTableError(lineNo, "empty left side")
    if _BLANK.search(pattern):
        raise RouterTableError(lineNo, "blank inside the pattern")

    semicolon = right.find(";")
    if semicolon != -1:
        right = right[:semicolon]
    target = right.strip()
    if not target:
        raise RouterTableError(lineNo, "empty right side")

    regex, hasWildcard = _compilePattern(pattern, lineNo)
    _checkTarget(target, domainLevel, hasWildcard, lineNo)
    isApplication = _APPLICATION.fullmatch(target) is not None
    return Record(
        relay=relay,
        kinds=kinds if kinds is not None else _ALL_KINDS,
        pattern=pattern,
        domainLevel=domainLevel,
        target=target,
        line=lineNo,
        regex=regex,
        hasWildcard=hasWildcard,
        isApplication=isApplication,
        isNull=target.lower() == "null",
    )


def parseTable(text):
    """
    Parse a Router Table text (C{router.md} section 2).

    Lines are separated by C{"\\n"} (C{"\\r\\n"} is accepted); blank lines
    and lines starting with C{;} are comments.  Everything is validated so
    that a table is either accepted whole or refused naming its first bad
    line.

    @param text: the table (C{str}).
    @return: a C{list} of L{Record}s in table order.
    @raise RouterTableError: on the first malformed line.
    """
    records = []
    for index, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        records.append(_parseLine(line, index))
    return records
