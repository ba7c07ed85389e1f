# -*- test-case-name: tests.queue.test_rules -*-
"""
Conditions of the mail (Queue) Rules: operations and condition keys
(C{rules.md} sections 3 and 4.1).

A condition arrives as rule data, C{(key, operation [, parameter])}, and is
compiled once per evaluation into a test C{test(message, notes) -> bool}.
Compiling is where bad rule data is found: an unknown key or operation, or
a parameter that cannot mean anything (C{Message Size greater than
"lots"}), raises L{RuleError}, so the engine can drop that rule and report
why instead of failing a delivery.  Tests only look at a
L{cgpro.queue.rules.RuleMessage} (duck-typed here so this module does not
import the engine).

Decisions where the spec is silent ([D] in C{rules.md}):

  - Keys, operations and action names are compared case-insensitively,
    with runs of white space collapsed and quote characters ignored, so
    C{"'From' Name"}, C{"From Name"} and C{"\u2019From\u2019 name"} are one
    key.  Users type these by hand over the CLI.
  - A picture (C{is}, C{in}) matches the whole tested string; only C{*} is
    special.  A list element (or an C{is} parameter) that starts with C{#}
    and has no C{*} names an address list, answered by the message's
    C{inList}.
  - Headers with several addresses (C{To: a, b}) and repeated headers are
    one multi-valued field: C{is}/C{in} hold when any value matches,
    C{is not}/C{not in} when none does (so an absent field makes them
    true).  C{Any To or Cc} / C{Any Recipient} apply the operation to each
    value and hold when it holds for one; C{Each To or Cc} / C{Each
    Recipient} when it holds for all (and the field is not empty, for the
    positive operations).
  - C{greater than} / C{less than} on a text field compare numbers (both
    sides must read as numbers, with an optional C{K}/C{M}/C{G} suffix), so
    C{Header Field greater than "X-Spam-Score: 5"} works.
  - Dates and times (C{Current Date}, C{Current Day}, C{Time Of Day}) are
    the message's local time (L{RuleMessage.localNow}: the server's zone
    unless the caller passes another), the way an administrator writes
    them.  A C{Current Date} parameter given as a data-format timestamp
    (C{#T...}, UTC) is compared with the UTC time instead.
"""

import datetime
import re

#: Operation names after L{normalizeName}.
IS = "is"
IS_NOT = "is not"
IN = "in"
NOT_IN = "not in"
GREATER = "greater than"
LESS = "less than"
NO_OP = "---"

OPERATIONS = (IS, IS_NOT, IN, NOT_IN, GREATER, LESS, NO_OP)
_POSITIVE = (IS, IN)
_TEXT_OPS = (IS, IS_NOT, IN, NOT_IN, GREATER, LESS)

#: How a multi-valued field is tested: see the module docstring.
PLAIN, ANY, EACH = "plain", "any", "each"

_QUOTES = str.maketrans({"'": None, '"': None, "\u2018": None, "\u2019": None,
                         "\u201c": None, "\u201d": None, "`": None})

_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun",
           "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_DAY_NAMES = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
_FULL_DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday",
              "saturday", "sunday"]

_NUMBER = re.compile(r"\s*([+-]?[0-9]+(?:\.[0-9]*)?)\s*([kmg]?)b?\s*", re.I)
_NUMBER_UNITS = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}
_DATE = re.compile(
    r"\s*([0-9]{1,2})[ -]([A-Za-z]{3})[A-Za-z]*[ -]([0-9]{4})"
    r"(?:\s+([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?)?\s*")
_ISO_DATE = re.compile(
    r"\s*([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:[ T]([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?)?\s*")
_TIME = re.compile(r"\s*([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?\s*")


class RuleError(ValueError):
    """
    Rule data that cannot be applied.  Never escapes the engine: it becomes
    a line of C{Outcome.errors} (and of L{cgpro.queue.rules.checkRules}).
    """


def normalizeName(value):
    """
    Canonical form of a condition key, operation or action name.

    @param value: the name as stored (C{str}; other types are refused).
    @return: lower-case text with quotes dropped and white space collapsed.
    @raise RuleError: if C{value} is not a string.
    """
    if not isinstance(value, str):
        raise RuleError("expected a name, got %r" % (value,))
    return " ".join(value.translate(_QUOTES).split()).casefold()


def matchPicture(picture, value):
    """
    Match a CommuniGate "picture": C{*} stands for any run of characters,
    everything else is literal, case does not matter.

    Written as a left-to-right scan rather than a regular expression: rules
    are user data, and a picture like C{*a*a*a*a*b} must not backtrack
    exponentially on a long header.

    @return: C{bool}.
    """
    p = picture.casefold()
    v = value.casefold()
    parts = p.split("*")
    if len(parts) == 1:
        return p == v
    first, last = parts[0], parts[-1]
    if len(first) + len(last) > len(v) or not v.startswith(first) or not v.endswith(last):
        return False
    pos, end = len(first), len(v) - len(last)
    for middle in parts[1:-1]:
        if middle:
            found = v.find(middle, pos, end)
            if found < 0:
                return False
            pos = found + len(middle)
    return True


def splitList(param):
    """
    The elements of an C{in} / C{not in} parameter.

    @param param: a comma-separated C{str}, or a data-format array.
    @return: C{list} of stripped, non-empty C{str}.
    """
    if isinstance(param, list):
        items = [_text(x) for x in param]
    else:
        items = _text(param).split(",")
    return [item.strip() for item in items if item.strip()]


def parseNumber(value):
    """
    Read a number with an optional C{K}/C{M}/C{G} suffix (powers of 1024,
    an optional trailing C{B}), as sizes are written (C{100K}, C{2MB}).

    @return: C{int} or C{float}.
    @raise RuleError: if C{value} is not such a number.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    m = _NUMBER.fullmatch(_text(value))
    if m is None:
        raise RuleError("not a number: %r" % (value,))
    number = float(m.group(1)) if "." in m.group(1) else int(m.group(1))
    return number * _NUMBER_UNITS[m.group(2).lower()]


def parseDate(value):
    """
    Read a C{Current Date} parameter: C{DD Mon YYYY [HH:MM[:SS]]} (the
    cPanel form, month names in English whatever the locale), or
    C{YYYY-MM-DD [HH:MM[:SS]]}.

    @return: a naive C{datetime}.
    @raise RuleError: for anything else.
    """
    if isinstance(value, datetime.datetime):
        return value
    text = _text(value)
    m = _DATE.fullmatch(text)
    try:
        if m is not None:
            month = m.group(2).lower()
            if month not in _MONTHS:
                raise RuleError("unknown month in date %r" % (text,))
            parts = (int(m.group(3)), _MONTHS.index(month) + 1, int(m.group(1)))
        else:
            m = _ISO_DATE.fullmatch(text)
            if m is None:
                raise RuleError("not a date (DD Mon YYYY HH:MM:SS): %r" % (text,))
            parts = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
        return datetime.datetime(*parts, *(int(g or 0) for g in m.group(4, 5, 6)))
    except ValueError:
        raise RuleError("not a valid date: %r" % (text,)) from None


def formatDate(when):
    """
    @return: C{when} as C{DD Mon YYYY HH:MM:SS}, the form C{Current Date}
        pictures are matched against.
    """
    return "%02d %s %04d %02d:%02d:%02d" % (
        when.day, _MONTHS[when.month - 1].capitalize(), when.year,
        when.hour, when.minute, when.second)


def parseTime(value):
    """
    @return: seconds since midnight for C{HH:MM[:SS]}.
    @raise RuleError: for anything else.
    """
    m = _TIME.fullmatch(_text(value))
    if m is None:
        raise RuleError("not a time of day (HH:MM): %r" % (value,))
    h, mi, s = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    if h > 24 or mi > 59 or s > 59 or (h == 24 and (mi or s)):
        raise RuleError("not a time of day (HH:MM): %r" % (value,))
    return h * 3600 + mi * 60 + s


def _text(value):
    """
    A parameter as text: data-format numbers arrive as C{int}.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise RuleError("expected a string parameter, got %r" % (value,))


def _requireParam(op, param):
    if param is None:
        raise RuleError("operation %r needs a parameter" % (op,))
    return param


# -- generic text tests ------------------------------------------------------------------


def _elementTest(picture):
    """
    One picture or C{#List} element: C{test(value, message, notes) -> bool}.
    """
    if picture.startswith("#") and len(picture) > 1 and "*" not in picture:
        name = picture[1:]
        return lambda value, message, notes: message.lookupList(name, value, notes)
    return lambda value, message, notes: matchPicture(picture, value)


def compileTextTest(op, param, mode=PLAIN):
    """
    Compile a text operation for a (possibly multi-valued) field.

    @param mode: L{PLAIN}, L{ANY} or L{EACH} (module docstring).
    @return: C{test(values, message, notes) -> bool}; C{values} is a
        C{list} of C{str}, empty or C{None} when the field is absent.
    @raise RuleError: for an operation text fields do not have or a bad
        parameter.
    """
    if op in (GREATER, LESS):
        limit = parseNumber(_requireParam(op, param))
        compare = (lambda n: n > limit) if op == GREATER else (lambda n: n < limit)

        def numeric(value):
            try:
                return compare(parseNumber(value))
            except RuleError:
                return False

        def testNumber(values, message, notes):
            if not values:
                return False
            if mode == EACH:
                return all(numeric(v) for v in values)
            return any(numeric(v) for v in values)
        return testNumber

    if op in (IS, IS_NOT):
        elements = [_elementTest(_text(_requireParam(op, param)))]
    elif op in (IN, NOT_IN):
        pictures = splitList(_requireParam(op, param))
        if not pictures:
            raise RuleError("operation %r needs a non-empty list" % (op,))
        elements = [_elementTest(p) for p in pictures]
    else:
        raise RuleError("operation %r is not valid here" % (op,))
    positive = op in _POSITIVE

    def matches(value, message, notes):
        return any(element(value, message, notes) for element in elements)

    def test(values, message, notes):
        if not values:
            return not positive
        if mode == PLAIN:
            return any(matches(v, message, notes) for v in values) == positive
        results = (matches(v, message, notes) == positive for v in values)
        return any(results) if mode == ANY else all(results)
    return test


class _Field:
    """
    A condition on values the message provides through C{getter}.
    """

    def __init__(self, getter, mode=PLAIN, ops=_TEXT_OPS):
        self.getter = getter
        self.mode = mode
        self.ops = ops

    def compile(self, op, param):
        if op not in self.ops:
            raise RuleError("operation %r is not valid here" % (op,))
        test = compileTextTest(op, param, self.mode)
        getter = self.getter
        return lambda message, notes: test(getter(message), message, notes)


class _HeaderField:
    """
    C{Header Field}: the parameter is C{Name: picture} (C{Name: p1,p2} for
    C{in}); a bare C{Name} means C{Name: *}, i.e. "the header is present".
    """

    def compile(self, op, param):
        text = _text(_requireParam(op, param))
        name, colon, rest = text.partition(":")
        name = name.strip()
        if not name or " " in name:
            raise RuleError("Header Field needs 'Name: value', got %r" % (text,))
        rest = rest.strip() if colon else "*"
        test = compileTextTest(op, rest, PLAIN)
        return lambda message, notes: test(message.headerValues(name), message, notes)


class _Size:
    """
    C{Message Size greater than / less than N[K|M|G]}.
    """

    def compile(self, op, param):
        if op not in (GREATER, LESS):
            raise RuleError("Message Size takes 'greater than' or 'less than', not %r" % (op,))
        limit = parseNumber(_requireParam(op, param))
        if op == GREATER:
            return lambda message, notes: message.size > limit
        return lambda message, notes: message.size < limit


class _NoParameter:
    """
    A parameter-less test (C{Human Generated}), written with the C{---}
    operation.
    """

    def __init__(self, predicate):
        self.predicate = predicate

    def compile(self, op, param):
        if op != NO_OP:
            raise RuleError("this condition takes the '---' operation, not %r" % (op,))
        predicate = self.predicate
        return lambda message, notes: predicate(message)


class _CurrentDate:
    """
    C{Current Date}: C{greater than} / C{less than} a date, or pictures
    against C{DD Mon YYYY HH:MM:SS}.
    """

    def compile(self, op, param):
        if op in (GREATER, LESS):
            param = _requireParam(op, param)
            limit = parseDate(param)
            utc = isinstance(param, datetime.datetime)

            def test(message, notes):
                now = message.now if utc else message.localNow
                return now > limit if op == GREATER else now < limit
            return test
        textTest = compileTextTest(op, param)
        return lambda message, notes: textTest([formatDate(message.localNow)], message, notes)


class _CurrentDay:
    """
    C{Current Day}: day names (C{Mon} or C{Monday}), ranges (C{Mon-Fri},
    wrapping C{Fri-Mon}) or pictures, with C{is}/C{is not}/C{in}/C{not in}.
    """

    def compile(self, op, param):
        if op in (IS, IS_NOT):
            elements = [_text(_requireParam(op, param)).strip()]
        elif op in (IN, NOT_IN):
            elements = splitList(_requireParam(op, param))
        else:
            raise RuleError("Current Day takes is/is not/in/not in, not %r" % (op,))
        days = set()
        pictures = []
        for element in elements:
            first, dash, last = element.partition("-")
            if dash:
                a, b = _dayIndex(first), _dayIndex(last)
                days.update((a + i) % 7 for i in range((b - a) % 7 + 1))
            elif "*" in element:
                pictures.append(element)
            else:
                days.add(_dayIndex(element))
        if not days and not pictures:
            raise RuleError("Current Day needs day names")
        positive = op in _POSITIVE

        def test(message, notes):
            weekday = message.localNow.weekday()
            hit = weekday in days or any(
                matchPicture(p, _DAY_NAMES[weekday]) or matchPicture(p, _FULL_DAYS[weekday])
                for p in pictures)
            return hit == positive
        return test


def _dayIndex(name):
    key = name.strip().lower()
    if key[:3] in _DAYS and (len(key) == 3 or key in _FULL_DAYS):
        return _DAYS.index(key[:3])
    raise RuleError("not a day name: %r" % (name,))


class _TimeOfDay:
    """
    C{Time Of Day}: ranges C{HH:MM-HH:MM} (start included, end excluded; a
    start after the end crosses midnight, equal ends mean the whole day),
    single times (to the minute) or pictures with C{is}/C{in}; C{greater
    than} / C{less than} C{HH:MM}.
    """

    def compile(self, op, param):
        if op in (GREATER, LESS):
            limit = parseTime(_requireParam(op, param))

            def compare(message, notes):
                now = _secondsOfDay(message.localNow)
                return now > limit if op == GREATER else now < limit
            return compare
        if op in (IS, IS_NOT):
            elements = [_text(_requireParam(op, param)).strip()]
        elif op in (IN, NOT_IN):
            elements = splitList(_requireParam(op, param))
        else:
            raise RuleError("Time Of Day takes is/in/greater than/less than, not %r" % (op,))
        tests = [_timeElement(e) for e in elements]
        if not tests:
            raise RuleError("Time Of Day needs a time range")
        positive = op in _POSITIVE

        def test(message, notes):
            now = message.localNow
            return any(t(now) for t in tests) == positive
        return test


def _secondsOfDay(when):
    return when.hour * 3600 + when.minute * 60 + when.second


def _timeElement(element):
    if "*" in element:
        return lambda now: matchPicture(element, "%02d:%02d:%02d" % (
            now.hour, now.minute, now.second)) or matchPicture(
                element, "%02d:%02d" % (now.hour, now.minute))
    first, dash, last = element.partition("-")
    if not dash:
        minute = parseTime(element) // 60
        return lambda now: _secondsOfDay(now) // 60 == minute
    start, end = parseTime(first), parseTime(last)
    if start == end:
        return lambda now: True
    if start < end:
        return lambda now: start <= _secondsOfDay(now) < end
    return lambda now: _secondsOfDay(now) >= start or _secondsOfDay(now) < end


# -- the condition table -----------------------------------------------------------------


def _addressesOf(*names):
    def getter(message):
        values = []
        present = False
        for name in names:
            found = message.addresses(name)
            if found is not None:
                present = True
                values.extend(address for _, address in found)
        return values if present else None
    return getter


def _fromName(message):
    found = message.addresses("From")
    if not found:
        return None
    return [found[0][0]]


def _headerText(name):
    return lambda message: message.headerValues(name)


CONDITIONS = {
    "from": _Field(_addressesOf("From")),
    "sender": _Field(_addressesOf("Sender")),
    "reply-to": _Field(_addressesOf("Reply-To")),
    "to": _Field(_addressesOf("To")),
    "cc": _Field(_addressesOf("Cc")),
    "return-path": _Field(lambda m: [m.sender]),
    "any to or cc": _Field(_addressesOf("To", "Cc"), ANY),
    "each to or cc": _Field(_addressesOf("To", "Cc"), EACH),
    "any recipient": _Field(lambda m: list(m.recipients), ANY),
    "each recipient": _Field(lambda m: list(m.recipients), EACH),
    "from name": _Field(_fromName),
    "subject": _Field(_headerText("Subject")),
    "message-id": _Field(_headerText("Message-ID")),
    "message size": _Size(),
    "header field": _HeaderField(),
    "human generated": _NoParameter(lambda m: m.humanGenerated()),
    "current date": _CurrentDate(),
    "current day": _CurrentDay(),
    "time of day": _TimeOfDay(),
    "source": _Field(lambda m: m.sourceTags()),
    "submit address": _Field(lambda m: m.submitAddresses()),
    "security": _Field(lambda m: [m.security()], ops=(IS, IS_NOT, IN, NOT_IN)),
}


def compileCondition(condition):
    """
    Compile one condition of rule data.

    @param condition: C{[key, operation]} or C{[key, operation, parameter]}.
    @return: C{test(message, notes) -> bool}; C{notes} is a C{list} the
        test appends run-time problems to (an address list that could not
        be read).
    @raise RuleError: for a malformed condition, an unknown key or
        operation, or a bad parameter.
    """
    if not isinstance(condition, (list, tuple)) or not 2 <= len(condition) <= 3:
        raise RuleError(
            "a condition must be (key, operation [, parameter]): %r" % (condition,))
    key = normalizeName(condition[0])
    op = normalizeName(condition[1])
    param = condition[2] if len(condition) == 3 else None
    kind = CONDITIONS.get(key)
    if kind is None:
        raise RuleError("unknown condition %r" % (condition[0],))
    if op not in OPERATIONS:
        raise RuleError("unknown operation %r" % (condition[1],))
    try:
        return kind.compile(op, param)
    except RuleError as e:
        raise RuleError("condition %r: %s" % (condition[0], e)) from None
