# -*- test-case-name: tests.queue.test_rules -*-
"""
Tests for L{cgpro.queue.rules}, L{cgpro.queue.ruleconditions} and
L{cgpro.queue.ruleactions}: the mail Rules engine of C{rules.md}.
"""

import datetime
import time

from hypothesis import given, settings, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from cgpro.core.dataformat import loads
from cgpro.core.envelope import Envelope, Recipient
from cgpro.queue.ruleactions import parseAddresses, parseFlags, parseHeaderLines
from cgpro.queue.ruleconditions import (
    RuleError, matchPicture, parseDate, parseNumber, parseTime, splitList,
)
from cgpro.queue.rules import (
    Outcome, RuleMessage, applyHeaderEdits, applyMailRules, applyServerRules,
    buildReply, checkRules, expandMacros, mergeRuleSets, parseReplyText,
)

UTC = datetime.timezone.utc
#: A Friday.
NOW = datetime.datetime(2015, 3, 6, 12, 30, 15)

HEADERS = (
    b"Return-Path: <s@x.com>\r\n"
    b"From: Sam Sender <s@x.com>\r\n"
    b"Sender: list-bounces@lists.x.com\r\n"
    b"Reply-To: replies@x.com\r\n"
    b"To: Me <me@example.com>, other@y.com\r\n"
    b"Cc: c1@z.com\r\n"
    b"Subject: =?utf-8?q?Caf=C3=A9?= meeting\r\n"
    b"Message-ID: <id1@x.com>\r\n"
    b"Date: Fri, 06 Mar 2015 12:00:00 +0000\r\n"
    b"X-Spam-Score: 7.5\r\n"
    b"X-Folded: first\r\n second\r\n"
)
BODY = b"\r\nHello\r\n" + b"x" * 2000 + b"\r\n"


def envelope(sender="s@x.com", protocol="ESMTP", clientAddress="192.0.2.7",
             authUser=None, trusted=False, recipients=("me@example.com",)):
    env = Envelope(sender=sender, protocol=protocol, clientAddress=clientAddress,
                   authUser=authUser, trusted=trusted)
    for address in recipients:
        env.addRecipient(address)
    return env


def message(headers=HEADERS, body=BODY, env=None, recipient="me@example.com",
            now=NOW, inList=None, **kw):
    return RuleMessage.fromBytes(headers + body, env or envelope(), recipient,
                                 account="me@example.com", now=now, inList=inList,
                                 timeZone=kw.pop("timeZone", UTC), **kw)


def rule(conditions, actions=(("Store in", "Hit"),), priority=5, name="r"):
    return [priority, name, [list(c) for c in conditions], [list(a) for a in actions]]


def stored(outcome):
    return [box for box, _ in outcome.store]


class PictureTests(SynchronousTestCase):
    """
    Pictures, lists, numbers, dates and times as rule parameters.
    """

    def test_pictures(self):
        """C{*} matches any run, case is ignored, the whole string must match."""
        for picture, value in [("*@thatdomain*", "a@thatdomain.com"), ("ABC", "abc"),
                               ("*", ""), ("a*b*c", "aXbYc"), ("a**", "a"),
                               ("*x*", "x"), ("ab*ab", "abab")]:
            self.assertTrue(matchPicture(picture, value), (picture, value))
        for picture, value in [("abc", "abcd"), ("a*b", "ab c"), ("ab*ab", "aba"),
                               ("*@x", "a@y"), ("", "a")]:
            self.assertFalse(matchPicture(picture, value), (picture, value))

    def test_picturesDoNotBacktrack(self):
        """A hostile picture against a long value returns at once."""
        start = time.monotonic()
        self.assertFalse(matchPicture("*a" * 30 + "*b", "a" * 50000))
        self.assertLess(time.monotonic() - start, 1.0)

    def test_lists(self):
        """Lists are comma-separated text or arrays; blanks are dropped."""
        self.assertEqual(splitList(" a , b,,c "), ["a", "b", "c"])
        self.assertEqual(splitList(["a ", 5]), ["a", "5"])

    def test_numbers(self):
        """Sizes take K/M/G suffixes (powers of 1024) and data-format numbers."""
        self.assertEqual(parseNumber("100"), 100)
        self.assertEqual(parseNumber("2k"), 2048)
        self.assertEqual(parseNumber("1M"), 1048576)
        self.assertEqual(parseNumber("3MB"), 3 * 1048576)
        self.assertEqual(parseNumber("1.5K"), 1536)
        self.assertEqual(parseNumber(7), 7)
        self.assertRaises(RuleError, parseNumber, "lots")

    def test_dates(self):
        """Dates are DD Mon YYYY [HH:MM[:SS]] or ISO."""
        self.assertEqual(parseDate("05 Mar 2015 10:00:00"), datetime.datetime(2015, 3, 5, 10))
        self.assertEqual(parseDate("5 March 2015"), datetime.datetime(2015, 3, 5))
        self.assertEqual(parseDate("2015-03-05 10:30"), datetime.datetime(2015, 3, 5, 10, 30))
        for bad in ["32 Mar 2015", "05 Foo 2015", "yesterday", "2015-13-01"]:
            self.assertRaises(RuleError, parseDate, bad)

    def test_times(self):
        """Times of day are HH:MM[:SS]."""
        self.assertEqual(parseTime("09:30"), 9 * 3600 + 30 * 60)
        self.assertEqual(parseTime("24:00"), 86400)
        for bad in ["25:00", "9", "09:60", "noon"]:
            self.assertRaises(RuleError, parseTime, bad)


class RuleMessageTests(SynchronousTestCase):
    """
    What L{RuleMessage.fromBytes} keeps from a message.
    """

    def test_headersAndSize(self):
        """Headers are decoded and unfolded; the size counts the whole message."""
        m = message()
        self.assertEqual(m.size, len(HEADERS + BODY))
        self.assertEqual(m.subject(), "Caf\u00e9 meeting")
        self.assertEqual(m.headerValues("x-folded"), ["first second"])
        self.assertEqual(m.messageId(), "<id1@x.com>")
        self.assertEqual(m.addresses("To"), [("Me", "me@example.com"), ("", "other@y.com")])
        self.assertIsNone(m.headerValues("Keywords"))
        self.assertEqual(m.sender, "s@x.com")
        self.assertEqual(m.recipients, ["me@example.com"])
        self.assertEqual(m.account, "me@example.com")

    def test_bodyNotParsed(self):
        """Header-like body lines are not headers."""
        m = message(body=b"\r\nX-Body: 1\r\n")
        self.assertIsNone(m.headerValues("X-Body"))

    def test_bareLineFeeds(self):
        """Messages with LF line ends parse the same."""
        m = message(headers=b"Subject: hi\nFrom: a@b\n", body=b"\nX-Body: 1\n")
        self.assertEqual(m.subject(), "hi")
        self.assertIsNone(m.headerValues("X-Body"))

    def test_junkHeaders(self):
        """Junk in the header block neither raises nor hides good headers."""
        junk = (b"Subject: ok\r\nthis is not a header\r\nFrom: <<<@@@>>>\r\n"
                b"To: \xff\xfe@bad\r\nX-Nul: a\x00b\r\n")
        m = message(headers=junk)
        self.assertEqual(m.subject(), "ok")
        m.addresses("From")
        m.addresses("To")
        m.headerValues("X-Nul")
        self.assertIsInstance(applyMailRules([("account", [rule([("From", "is", "*")])])], m),
                              Outcome)

    def test_noHeaders(self):
        """A message that starts with an empty line has no headers."""
        m = message(headers=b"", body=b"\r\nSubject: no\r\n")
        self.assertIsNone(m.subject())

    def test_recipientObject(self):
        """The recipient may be an envelope L{Recipient}."""
        m = RuleMessage.fromBytes(HEADERS + BODY, envelope(), Recipient(0, "me@example.com"),
                                  now=NOW)
        self.assertEqual(m.recipient, "me@example.com")

    def test_serverRecipients(self):
        """Without a recipient (Server rules) every envelope recipient is seen."""
        env = envelope(recipients=["a@x", "b@y"])
        m = RuleMessage.fromBytes(HEADERS + BODY, env, None, now=NOW)
        self.assertEqual(m.recipients, ["a@x", "b@y"])

    def test_now(self):
        """C{now} is naive UTC: aware values are converted, the default is now."""
        aware = datetime.datetime(2015, 3, 6, 14, 30, tzinfo=datetime.timezone(
            datetime.timedelta(hours=2)))
        self.assertEqual(message(now=aware).now, datetime.datetime(2015, 3, 6, 12, 30))
        m = RuleMessage.fromBytes(HEADERS, envelope(), "me@example.com")
        utcNow = datetime.datetime.now(UTC).replace(tzinfo=None)
        self.assertLess(abs((m.now - utcNow).total_seconds()), 60)

    def test_timeZone(self):
        """Local time conditions use the given zone."""
        tz = datetime.timezone(datetime.timedelta(hours=-5))
        self.assertEqual(message(timeZone=tz).localNow,
                         datetime.datetime(2015, 3, 6, 7, 30, 15))

    def test_sourceValues(self):
        """Source, Submit Address and Security values follow the envelope."""
        m = message(env=envelope(protocol="ESMTPSA", authUser="me@example.com", trusted=True))
        self.assertEqual(m.sourceTags(),
                         ["trusted", "authenticated", "remote", "SMTP", "ESMTPSA"])
        self.assertEqual(m.submitAddresses(), ["SMTP [192.0.2.7]", "192.0.2.7"])
        self.assertEqual(m.security(), "SSL/TLS")
        local = message(env=envelope(protocol="LOCAL", clientAddress=""))
        self.assertEqual(local.sourceTags(), ["local", "LOCAL"])
        self.assertEqual(local.submitAddresses(), ["LOCAL [0.0.0.0]", "0.0.0.0"])
        self.assertEqual(local.security(), "none")
        lmtp = message(env=envelope(protocol="LMTP"))
        self.assertEqual(lmtp.sourceTags(), ["remote", "LMTP"])


class ConditionTestsMixin:
    """
    Helpers: does one condition hold for a message?
    """

    def holds(self, condition, m=None, **kw):
        outcome = applyMailRules([("account", [rule([condition])])], m or message(**kw))
        self.assertEqual(outcome.errors, [], condition)
        return stored(outcome) == ["Hit"]

    def assertHolds(self, condition, m=None, **kw):
        self.assertTrue(self.holds(condition, m, **kw), condition)

    def assertNotHolds(self, condition, m=None, **kw):
        self.assertFalse(self.holds(condition, m, **kw), condition)


class AddressConditionTests(ConditionTestsMixin, SynchronousTestCase):
    """
    From, Sender, Reply-To, To, Cc, Return-Path, the To-or-Cc conditions and
    'From' Name.
    """

    def test_from(self):
        """From tests the From address with every text operation."""
        self.assertHolds(("From", "is", "*@x.com"))
        self.assertHolds(("From", "is", "S@X.COM"))
        self.assertNotHolds(("From", "is", "Sam*"))
        self.assertHolds(("From", "is not", "*@y.com"))
        self.assertNotHolds(("From", "is not", "s@x.com"))
        self.assertHolds(("From", "in", "a@b, *@x.com"))
        self.assertNotHolds(("From", "in", "a@b,c@d"))
        self.assertHolds(("From", "not in", "a@b,c@d"))
        self.assertNotHolds(("From", "not in", "a@b, s@x.com"))
        self.assertHolds(("From", "in", ["a@b", "s@x.com"]))

    def test_absentHeader(self):
        """Without the header only the negative operations hold."""
        m = message(headers=b"Subject: x\r\n")
        for key in ["From", "Sender", "Reply-To", "To", "Cc", "'From' Name", "Subject"]:
            if key == "Subject":
                m = message(headers=b"From: a@b\r\n")
            self.assertNotHolds((key, "is", "*"), m)
            self.assertNotHolds((key, "in", "*"), m)
            self.assertHolds((key, "is not", "*"), m)
            self.assertHolds((key, "not in", "*"), m)

    def test_otherAddressHeaders(self):
        """Sender, Reply-To, To and Cc test their own headers."""
        self.assertHolds(("Sender", "is", "*@lists.x.com"))
        self.assertHolds(("Reply-To", "is", "replies@x.com"))
        self.assertHolds(("To", "is", "other@y.com"))
        self.assertHolds(("To", "is", "me@*"))
        self.assertNotHolds(("To", "is not", "other@y.com"))
        self.assertHolds(("Cc", "is", "c1@z.com"))
        self.assertNotHolds(("Cc", "is", "me@example.com"))

    def test_repeatedHeaders(self):
        """Repeated headers and groups are one field."""
        m = message(headers=b"To: a@x\r\nTo: team: b@y, c@z;\r\n")
        self.assertHolds(("To", "is", "c@z"), m)
        self.assertNotHolds(("To", "not in", "b@y"), m)

    def test_returnPath(self):
        """Return-Path is the envelope sender; the null sender is the empty string."""
        self.assertHolds(("Return-Path", "is", "s@x.com"))
        bounce = message(env=envelope(sender=""))
        self.assertHolds(("Return-Path", "is", ""), bounce)
        self.assertNotHolds(("Return-Path", "is", "?*"), bounce)

    def test_anyToOrCc(self):
        """Any To or Cc holds when the operation holds for one address."""
        self.assertHolds(("Any To or Cc", "is", "c1@z.com"))
        self.assertHolds(("Any To or Cc", "is not", "me@example.com"))
        self.assertNotHolds(("Any To or Cc", "is", "nobody@z.com"))
        only = message(headers=b"To: me@example.com\r\n")
        self.assertNotHolds(("Any To or Cc", "is not", "me@example.com"), only)
        self.assertHolds(("Any To or Cc", "is not", "x"), message(headers=b"Subject: x\r\n"))

    def test_eachToOrCc(self):
        """Each To or Cc holds when the operation holds for every address."""
        self.assertHolds(("Each To or Cc", "is", "*.com"))
        self.assertNotHolds(("Each To or Cc", "is", "*@example.com"))
        self.assertHolds(("Each To or Cc", "is not", "*@nowhere"))
        self.assertNotHolds(("Each To or Cc", "not in", "c1@z.com"))
        self.assertHolds(("Each To or Cc", "in", "*@example.com,*@y.com,*@z.com"))
        empty = message(headers=b"Subject: x\r\n")
        self.assertNotHolds(("Each To or Cc", "is", "*"), empty)
        self.assertHolds(("Each To or Cc", "is not", "*"), empty)

    def test_recipients(self):
        """Any/Each Recipient test envelope recipients."""
        env = envelope(recipients=["a@x.com", "b@y.com"])
        m = RuleMessage.fromBytes(HEADERS, env, None, now=NOW)
        self.assertTrue(applyServerRules([rule([("Any Recipient", "is", "b@*")],
                                               [("Discard",)])], m).discard)
        self.assertFalse(applyServerRules([rule([("Each Recipient", "is", "b@*")],
                                                [("Discard",)])], m).discard)
        self.assertHolds(("Each Recipient", "is", "me@example.com"))

    def test_fromName(self):
        """'From' Name tests the display name; no name is the empty string."""
        self.assertHolds(("'From' Name", "is", "sam*"))
        self.assertHolds(("From Name", "is not", "*@*"))
        self.assertHolds(("'From' Name", "is", ""), message(headers=b"From: a@b\r\n"))


class TextConditionTests(ConditionTestsMixin, SynchronousTestCase):
    """
    Subject, Header Field, Message Size, Human Generated and #Lists.
    """

    def test_subject(self):
        """Subject is decoded before matching."""
        self.assertHolds(("Subject", "is", "caf\u00e9*"))
        self.assertHolds(("Subject", "in", "*urgent*,*meeting*"))
        self.assertHolds(("Subject", "not in", "*urgent*"))

    def test_headerField(self):
        """Header Field takes 'Name: picture'; a bare name tests presence."""
        self.assertHolds(("Header Field", "is", "X-Spam-Score: 7*"))
        self.assertHolds(("Header Field", "is", "x-spam-score:*"))
        self.assertHolds(("Header Field", "is", "X-Spam-Score"))
        self.assertHolds(("Header Field", "is not", "X-Absent"))
        self.assertHolds(("Header Field", "in", "X-Spam-Score: 1,7.5"))
        self.assertNotHolds(("Header Field", "not in", "X-Spam-Score: 1,7.5"))
        self.assertHolds(("Header Field", "is", "X-Folded: first second"))

    def test_headerFieldNumbers(self):
        """greater than / less than compare header values as numbers."""
        self.assertHolds(("Header Field", "greater than", "X-Spam-Score: 5"))
        self.assertNotHolds(("Header Field", "less than", "X-Spam-Score: 5"))
        self.assertNotHolds(("Header Field", "greater than", "Subject: 5"))
        self.assertNotHolds(("Header Field", "greater than", "X-Absent: 5"))

    def test_messageSize(self):
        """Message Size compares with K/M suffixes."""
        size = len(HEADERS + BODY)
        self.assertHolds(("Message Size", "greater than", "1K"))
        self.assertNotHolds(("Message Size", "greater than", "1M"))
        self.assertHolds(("Message Size", "less than", "1M"))
        self.assertHolds(("Message Size", "less than", str(size + 1)))
        self.assertNotHolds(("Message Size", "less than", size))

    def test_humanGenerated(self):
        """Bounces, auto-replies, bulk and list mail are not human generated."""
        self.assertHolds(("Human Generated", "---"))
        self.assertNotHolds(("Human Generated", "---"), env=envelope(sender=""))
        for header in [b"Auto-Submitted: auto-replied\r\n", b"Precedence: bulk\r\n",
                       b"Precedence: LIST\r\n", b"Precedence: junk\r\n",
                       b"List-Id: <l.x.com>\r\n", b"X-Autoreply: yes\r\n"]:
            self.assertNotHolds(("Human Generated", "---"), message(headers=HEADERS + header))
        self.assertHolds(("Human Generated", "---"),
                         message(headers=HEADERS + b"Auto-Submitted: no\r\n"))
        for sender in ["MAILER-DAEMON@x.com", "owner-list@x.com", "list-request@x.com"]:
            self.assertNotHolds(("Human Generated", "---"), env=envelope(sender=sender))

    def test_lists(self):
        """#Name elements ask inList with the lower-cased address."""
        asked = []

        def inList(name, address):
            asked.append((name, address))
            return name == "Friends" and address == "s@x.com"
        m = message(inList=inList, headers=HEADERS.replace(b"s@x.com", b"S@X.com"))
        self.assertHolds(("From", "in", "nobody@x, #Friends"), m)
        self.assertHolds(("From", "is", "#Friends"), m)
        self.assertHolds(("From", "not in", "#Enemies"), m)
        self.assertIn(("Friends", "s@x.com"), asked)

    def test_listUnavailable(self):
        """Without inList, or when it fails, #Lists are empty and it is reported."""
        for inList in [None, lambda name, address: 1 / 0]:
            m = message(inList=inList)
            rules = [rule([("From", "not in", "#Friends")])]
            outcome = applyMailRules([("account", rules)], m)
            self.assertEqual(stored(outcome), ["Hit"])
            self.assertEqual(len(outcome.errors), 1)
            self.assertIn("Friends", outcome.errors[0])

    def test_textNumbers(self):
        """greater than / less than on text fields need a numeric parameter."""
        outcome = applyMailRules([("account", [rule([("Subject", "greater than", "abc")])])],
                                 message())
        self.assertEqual(stored(outcome), ["INBOX"])
        self.assertEqual(len(outcome.errors), 1)


class TimeConditionTests(ConditionTestsMixin, SynchronousTestCase):
    """
    Current Date, Current Day and Time Of Day (NOW is Friday 12:30:15 UTC).
    """

    def test_currentDate(self):
        """Current Date compares with dates and matches pictures."""
        self.assertHolds(("Current Date", "greater than", "05 Mar 2015 10:00:00"))
        self.assertNotHolds(("Current Date", "greater than", "06 Mar 2015 12:30:16"))
        self.assertHolds(("Current Date", "less than", "07 Mar 2015"))
        self.assertHolds(("Current Date", "is", "06 Mar 2015*"))
        self.assertHolds(("Current Date", "not in", "07 Mar 2015*,08 Mar*"))
        self.assertHolds(("Current Date", "greater than", datetime.datetime(2015, 3, 6, 12)))

    def test_currentDateZone(self):
        """Current Date uses local time; data-format timestamps are UTC."""
        tz = datetime.timezone(datetime.timedelta(hours=-5))
        self.assertNotHolds(("Current Date", "greater than", "06 Mar 2015 10:00:00"),
                            timeZone=tz)
        self.assertHolds(("Current Date", "greater than", datetime.datetime(2015, 3, 6, 10)),
                         timeZone=tz)

    def test_currentDay(self):
        """Current Day takes day names, full names, ranges and pictures."""
        self.assertHolds(("Current Day", "in", "Mon,Tue,Fri"))
        self.assertNotHolds(("Current Day", "in", "Mon,Tue"))
        self.assertHolds(("Current Day", "is", "friday"))
        self.assertHolds(("Current Day", "is not", "Sat"))
        self.assertHolds(("Current Day", "in", "Mon-Fri"))
        self.assertHolds(("Current Day", "in", "Thu-Mon"))
        self.assertNotHolds(("Current Day", "in", "Sat-Thu"))
        self.assertHolds(("Current Day", "is", "F*"))

    def test_timeOfDay(self):
        """Time Of Day takes ranges, also across midnight, and comparisons."""
        self.assertHolds(("Time Of Day", "in", "09:00-18:00"))
        self.assertNotHolds(("Time Of Day", "in", "13:00-18:00, 08:00-12:30"))
        self.assertHolds(("Time Of Day", "not in", "18:00-09:00"))
        self.assertHolds(("Time Of Day", "in", "12:00-01:00"))
        self.assertHolds(("Time Of Day", "is", "12:30"))
        self.assertHolds(("Time Of Day", "is", "12:*"))
        self.assertHolds(("Time Of Day", "greater than", "12:00"))
        self.assertHolds(("Time Of Day", "less than", "12:31"))
        night = message(now=datetime.datetime(2015, 3, 6, 23, 0))
        self.assertHolds(("Time Of Day", "in", "22:00-06:00"), night)
        self.assertNotHolds(("Time Of Day", "in", "09:00-18:00"), night)
        self.assertHolds(("Time Of Day", "in", "00:00-00:00"), night)


class SourceConditionTests(ConditionTestsMixin, SynchronousTestCase):
    """
    Source, Submit Address and Security.
    """

    def test_source(self):
        """Source matches trusted/authenticated/local/remote and the module."""
        authed = envelope(protocol="ESMTPSA", authUser="u@example.com", trusted=True)
        self.assertHolds(("Source", "is", "authenticated"), env=authed)
        self.assertHolds(("Source", "in", "trusted"), env=authed)
        self.assertHolds(("Source", "not in", "trusted,local"))
        self.assertHolds(("Source", "is", "SMTP"))
        self.assertHolds(("Source", "is", "local"),
                         env=envelope(protocol="LOCAL", clientAddress=""))
        self.assertHolds(("Source", "is", "trusted"), env=envelope(trusted=True))

    def test_submitAddress(self):
        """Submit Address matches 'SMTP [ip]' or the bare address."""
        self.assertHolds(("Submit Address", "is", "SMTP [192.0.2.*]"))
        self.assertHolds(("Submit Address", "in", "10.*, 192.0.2.*"))
        self.assertHolds(("Submit Address", "is not", "10.*"))
        self.assertHolds(("Submit Address", "is", "LOCAL [0.0.0.0]*"),
                         env=envelope(protocol="LOCAL", clientAddress=""))

    def test_security(self):
        """Security is SSL/TLS for TLS protocols, else none."""
        self.assertHolds(("Security", "is", "none"))
        self.assertHolds(("Security", "is", "SSL/TLS"), env=envelope(protocol="ESMTPS"))
        self.assertHolds(("Security", "is", "ssl/tls"), env=envelope(protocol="LMTPSA"))
        env = envelope()
        env.tls = True
        self.assertHolds(("Security", "is not", "none"), env=env)


class BadConditionTests(SynchronousTestCase):
    """
    A condition that cannot be applied stops its rule only, with an error.
    """

    def test_unknown(self):
        """Unknown keys and operations, bad shapes and parameters are reported."""
        bad = [("Phase Of Moon", "is", "full"), ("From", "resembles", "x"), ("From",),
               "From", ("From", "is", "a", "b"), ("Message Size", "is", "1K"),
               ("Message Size", "greater than", "big"), ("Current Date", "less than", "soon"),
               ("Current Day", "in", "Funday"), ("Time Of Day", "in", "9-5"),
               ("Human Generated", "is"), ("Header Field", "is", ": x"),
               ("From", "is"), ("From", "in", ""), (5, "is", "x"), ("From", None, "x"),
               ("Security", "greater than", "1"), ("Subject", "---")]
        for condition in bad:
            rules = [rule([condition], name="bad"),
                     rule([], [("Store in", "Next")], 1, "good")]
            outcome = applyMailRules([("account", rules)], message())
            self.assertEqual(stored(outcome), ["Next"], condition)
            self.assertEqual(outcome.applied, ["good"])
            self.assertEqual(len(outcome.errors), 1, condition)
            self.assertIn("'bad' not applied", outcome.errors[0])

    def test_caseAndQuotes(self):
        """Keys and operations ignore case, extra blanks and quotes."""
        conditions = [("  FROM ", "IS  NOT", "a@b"), ("\u2019from\u2019  name", "Is", "Sam*")]
        outcome = applyMailRules([("account", [rule(conditions)])], message())
        self.assertEqual((stored(outcome), outcome.errors), (["Hit"], []))


class ActionTests(SynchronousTestCase):
    """
    Every mail action and what it puts in the L{Outcome}.
    """

    def apply(self, actions, m=None, allowed="Any"):
        return applyMailRules([("account", [rule([], actions)])], m or message(), allowed)

    def test_default(self):
        """Without rules the message goes to INBOX."""
        outcome = applyMailRules([], message())
        self.assertEqual(outcome.store, [("INBOX", ())])
        self.assertTrue(outcome.keep)
        self.assertEqual(outcome.errors, [])

    def test_storeIn(self):
        """Store in replaces the INBOX copy; several make several copies."""
        self.assertEqual(self.apply([("Store in", "Trash")]).store, [("Trash", ())])
        outcome = self.apply([("Store in", "A"), ("Store in", "INBOX"), ("Store in", "A")])
        self.assertEqual(stored(outcome), ["A", "INBOX"])

    def test_mark(self):
        """Mark sets IMAP flags on every stored copy, whatever the order."""
        outcome = self.apply([("Mark", "Seen"), ("Store in", "A"), ("Mark", "flagged,Junk"),
                              ("Mark", "deleted, Answered, Draft, $Work")])
        flags = ("\\Seen", "\\Flagged", "$Junk", "\\Deleted", "\\Answered", "\\Draft", "$Work")
        self.assertEqual(outcome.store, [("A", flags)])
        self.assertEqual(outcome.flags, list(flags))
        self.assertEqual(self.apply([("Mark", "Seen")]).store, [("INBOX", ("\\Seen",))])

    def test_addHeader(self):
        """Add Header records checked header lines."""
        outcome = self.apply([("Add Header", "X-Rule: yes"), ("Add Header", "X-A: 1\nX-B: 2")])
        self.assertEqual(outcome.addHeaders, ["X-Rule: yes", "X-A: 1", "X-B: 2"])
        self.assertEqual(outcome.headerEdits, [("add", h) for h in outcome.addHeaders])

    def test_tagSubject(self):
        """Tag Subject is a header edit."""
        outcome = self.apply([("Tag Subject", "[SPAM]")])
        self.assertEqual(outcome.headerEdits, [("tagSubject", "[SPAM]")])
        self.assertEqual(outcome.addHeaders, [])

    def test_redirect(self):
        """Redirect to replaces local delivery and stops processing."""
        outcome = applyMailRules([("account", [
            rule([], [("Redirect to", "a@x.com, Boss <b@y.com>,boss"), ("Store in", "No")], 5),
            rule([], [("Store in", "Never")], 4)])], message())
        self.assertEqual(outcome.redirect, ["a@x.com", "b@y.com", "boss"])
        self.assertEqual(outcome.store, [])
        self.assertFalse(outcome.keep)
        self.assertTrue(outcome.stopped)

    def test_forward(self):
        """Forward to replaces the INBOX copy but processing goes on."""
        outcome = applyMailRules([("account", [
            rule([], [("Forward to", ["a@x.com", "c@z.com"])], 5),
            rule([], [("Store in", "Copy")], 4)])], message())
        self.assertEqual(outcome.forward, ["a@x.com", "c@z.com"])
        self.assertEqual(stored(outcome), ["Copy"])
        self.assertFalse(outcome.stopped)
        self.assertEqual(self.apply([("Forward to", "a@x.com")]).store, [])

    def test_mirror(self):
        """Mirror to sends copies and keeps local delivery (rules.md section 7, test 2)."""
        data = loads('(1, "#Redirect", (), (("Mirror to", "a@x.com,b@y.com")))')
        outcome = applyMailRules([("account", [data])], message())
        self.assertEqual(outcome.mirror, ["a@x.com", "b@y.com"])
        self.assertEqual(outcome.store, [("INBOX", ())])
        self.assertEqual(outcome.errors, [])

    def test_replyWith(self):
        """Reply with answers Reply-To (else From) with macros expanded."""
        text = "+Subject: Re: ^S\nIn-Reply-To: ^I\n\nGot ^F ^X"
        outcome = self.apply([("Reply with", text)])
        self.assertEqual(outcome.replies, [
            ("replies@x.com", "+Subject: Re: Caf\u00e9 meeting\nIn-Reply-To: <id1@x.com>\n\n"
                              "Got s@x.com ^X")])
        noReplyTo = message(headers=b"From: a@b.c\r\n")
        self.assertEqual(self.apply([("Reply with", "hi")], noReplyTo).replies,
                         [("a@b.c", "hi")])
        bare = message(headers=b"Subject: x\r\n")
        self.assertEqual(self.apply([("Reply with", "hi")], bare).replies, [("s@x.com", "hi")])

    def test_replyToAll(self):
        """Reply to All with also answers To and Cc, except the account itself."""
        outcome = self.apply([("Reply to All with", "noted")])
        self.assertEqual([to for to, _ in outcome.replies],
                         ["replies@x.com", "other@y.com", "c1@z.com"])

    def test_noReplyToAutomaticMail(self):
        """No reply to the null sender or to Auto-Submitted mail."""
        for m in [message(env=envelope(sender="")),
                  message(headers=HEADERS + b"Auto-Submitted: auto-generated\r\n")]:
            outcome = self.apply([("Reply with", "hi")], m)
            self.assertEqual(outcome.replies, [])
            self.assertEqual(outcome.errors, [])
            self.assertEqual(len(outcome.trace), 1)

    def test_remember(self):
        """Remember 'From' in records the lower-cased From address."""
        m = message(headers=HEADERS.replace(b"s@x.com", b"S@X.com"))
        outcome = self.apply([("Remember 'From' in", "#RepliedAddresses")], m)
        self.assertEqual(outcome.remember, [("RepliedAddresses", "s@x.com")])

    def test_reject(self):
        """Reject with fails the recipient with one line of text and stops."""
        outcome = self.apply([("Store in", "A"), ("Reject with", "Go\r\naway"),
                              ("Mark", "Seen")])
        self.assertEqual(outcome.reject, "Go away")
        self.assertEqual((outcome.store, outcome.flags, outcome.stopped), ([], [], True))
        self.assertEqual(self.apply([("Reject with",)]).reject, "rejected by a rule")

    def test_discard(self):
        """Discard drops every local copy and stops."""
        outcome = self.apply([("Store in", "A"), ("Discard",), ("Store in", "B")])
        self.assertEqual((outcome.discard, outcome.store, outcome.stopped), (True, [], True))

    def test_execute(self):
        """Execute records the command line verbatim."""
        outcome = self.apply([("Execute", "/usr/bin/notify --user me")])
        self.assertEqual(outcome.execute, ["/usr/bin/notify --user me"])

    def test_stopProcessing(self):
        """Stop Processing ends the rules, also across Domain and Account sets."""
        outcome = applyMailRules([
            ("domain", [rule([], [("Add Header", "X-D: 1"), ("Stop Processing",),
                                  ("Add Header", "X-No: 1")], 7, "d")]),
            ("account", [rule([], [("Store in", "A")], 9, "a")])], message())
        self.assertEqual((outcome.addHeaders, outcome.applied), (["X-D: 1"], ["d"]))
        self.assertEqual(outcome.store, [("INBOX", ())])
        self.assertTrue(outcome.stopped)

    def test_badActions(self):
        """Unknown or malformed actions are reported and skipped, the others run."""
        bad = [("Teleport to", "Mars"), ("Store in",), ("Store in", ""), ("Mark", "Shiny"),
               ("Add Header", "no colon"), ("Add Header", "Bad Name: x"), ("Redirect to", ""),
               ("Forward to", "a b@c"), ("Mirror to", [5]), ("Execute", "  "), ("Reply with",),
               ("Tag Subject", ""), ("Remember 'From' in", "two words"), (), "Discard",
               ("Discard", None, 1)]
        for action in bad:
            outcome = self.apply([action, ("Store in", "Good")])
            self.assertEqual(stored(outcome), ["Good"], action)
            self.assertEqual(len(outcome.errors), 1, action)


class PermissionTests(SynchronousTestCase):
    """
    RulesAllowed: None < Filter Only < No Mirror < Any (rules.md section 5.3).
    """

    ACTIONS = [("Store in", "A"), ("Mark", "Seen"), ("Add Header", "X: 1"),
               ("Tag Subject", "T"), ("Reply with", "hi"), ("Remember 'From' in", "L"),
               ("Execute", "cmd"), ("Mirror to", "m@x"), ("Forward to", "f@x"),
               ("Redirect to", "r@x")]

    def apply(self, allowed, kind="account"):
        return applyMailRules([(kind, [rule([], self.ACTIONS)])], message(), allowed)

    def test_any(self):
        """Any allows everything."""
        outcome = self.apply("Any")
        self.assertEqual((outcome.errors, outcome.redirect), ([], ["r@x"]))

    def test_noMirror(self):
        """No Mirror allows all but Mirror, Forward and Redirect."""
        outcome = self.apply("No Mirror")
        self.assertEqual((outcome.mirror, outcome.forward, outcome.redirect), ([], [], []))
        self.assertEqual((len(outcome.replies), outcome.execute), (1, ["cmd"]))
        self.assertEqual(stored(outcome), ["A"])
        self.assertEqual(len(outcome.errors), 3)
        self.assertIn("not allowed", outcome.errors[0])

    def test_filterOnly(self):
        """Filter Only allows only filing actions."""
        outcome = self.apply("filter only")
        self.assertEqual(outcome.store, [("A", ("\\Seen",))])
        self.assertEqual((outcome.addHeaders, outcome.headerEdits[1:]),
                         (["X: 1"], [("tagSubject", "T")]))
        self.assertEqual((outcome.replies, outcome.remember, outcome.execute), ([], [], []))
        self.assertEqual(len(outcome.errors), 6)

    def test_none(self):
        """None allows no action at all."""
        outcome = self.apply("None")
        self.assertEqual(outcome.store, [("INBOX", ())])
        self.assertEqual(len(outcome.errors), len(self.ACTIONS))

    def test_unknownAndUnset(self):
        """An unknown value allows nothing; Python None is the default Any."""
        outcome = self.apply("Everything")
        self.assertEqual(outcome.store, [("INBOX", ())])
        self.assertIn("unknown RulesAllowed value", outcome.errors[0])
        self.assertEqual(self.apply(None).errors, [])

    def test_domainRulesUnlimited(self):
        """The account's limit does not apply to Domain rules."""
        outcome = self.apply("None", kind="domain")
        self.assertEqual((outcome.errors, outcome.redirect), ([], ["r@x"]))


class OrderTests(SynchronousTestCase):
    """
    Priorities and the merge order of rules.md section 2.3.
    """

    def test_priorities(self):
        """Priorities 9, 5, 1 apply in that order and 0 never (rules.md section 7, test 1)."""
        rules = [rule([], [("Add Header", "X-P: %d" % p)], p, "p%d" % p) for p in (1, 0, 9, 5)]
        outcome = applyMailRules([("account", rules)], message())
        self.assertEqual(outcome.applied, ["p9", "p5", "p1"])
        self.assertEqual(outcome.addHeaders, ["X-P: 9", "X-P: 5", "X-P: 1"])

    def test_stringPriorities(self):
        """Priorities may be numeric strings, as the cPanel adaptor writes them."""
        rules = [rule([], [], "2", "two"), rule([], [], 3, "three"),
                 rule([], [], " 10 ", "ten"), rule([], [], "0", "off")]
        self.assertEqual(applyMailRules([("account", rules)], message()).applied,
                         ["ten", "three", "two"])

    def test_equalPriorities(self):
        """Equal priorities keep array order."""
        rules = [rule([], [], 5, name) for name in "cab"]
        self.assertEqual(applyMailRules([("account", rules)], message()).applied, list("cab"))

    def test_mergeOrder(self):
        """Domain > 5, then all Account rules, then Domain <= 5."""
        domain = [rule([], [], p, "D%d" % p) for p in (2, 6, 5, 9)]
        account = [rule([], [], p, "A%d" % p) for p in (1, 9, 6)]
        outcome = applyMailRules([("account", account), ("domain", domain)], message())
        self.assertEqual(outcome.applied, ["D9", "D6", "A9", "A6", "A1", "D5", "D2"])

    def test_mergeServer(self):
        """Server/Cluster rules wrap the others, as for Signal rules."""
        order = mergeRuleSets([("Server", [[7, "S7", [], []], [1, "S1", [], []]]),
                               ("domain", [[6, "D6", [], []], [2, "D2", [], []]]),
                               ("account", [[9, "A9", [], []]])])
        self.assertEqual([r[1] for _, r in order], ["S7", "D6", "A9", "D2", "S1"])

    def test_badSets(self):
        """Bad rule sets and rules are reported; the rest apply."""
        outcome = applyMailRules([("planet", []), "junk", ("domain", "notalist"),
                                  ("account", None),
                                  ("account", [["x", "badprio", [], []], [-1, "neg", [], []],
                                               "rule", [], rule([], [], 1, "ok")])],
                                 message())
        self.assertEqual(outcome.applied, ["ok"])
        self.assertEqual(len(outcome.errors), 7)


class VacationTests(SynchronousTestCase):
    """
    The cPanel #Vacation rule: one reply per sender (rules.md section 7, test 3).
    """

    VACATION = """(2, "#Vacation",
       (("Human Generated", "---"),
        (From, "not in", "#RepliedAddresses"),
        ("Current Date", "greater than", "05 Mar 2015 10:00:00")),
       (("Reply with",
         "+Subject: Away\\eIn-Reply-To: ^I\\eFrom: Me <me@x.com>\\e\\eI am away."),
        ("Remember 'From' in", RepliedAddresses)))"""

    def test_oncePerSender(self):
        """The first message is answered and remembered, the second is not answered."""
        lists = {}

        def inList(name, address):
            return address in lists.get(name, ())
        rules = [loads(self.VACATION)]
        first = applyMailRules([("account", rules)], message(inList=inList))
        self.assertEqual(first.errors, [])
        self.assertEqual(first.replies, [(
            "replies@x.com",
            "+Subject: Away\nIn-Reply-To: <id1@x.com>\nFrom: Me <me@x.com>\n\nI am away.")])
        self.assertEqual(first.remember, [("RepliedAddresses", "s@x.com")])
        self.assertEqual(first.store, [("INBOX", ())])
        for name, address in first.remember:
            lists.setdefault(name, set()).add(address)
        second = applyMailRules([("account", rules)], message(inList=inList))
        self.assertEqual((second.replies, second.remember, second.applied), ([], [], []))
        other = message(inList=inList, headers=b"From: t@y.com\r\n")
        self.assertEqual(applyMailRules([("account", rules)], other).replies,
                         [("t@y.com", first.replies[0][1].replace("<id1@x.com>", ""))])

    def test_disabled(self):
        """The adaptor disables the rule with priority 0."""
        data = loads(self.VACATION)
        data[0] = "0"
        self.assertEqual(applyMailRules([("account", [data])], message()).replies, [])

    def test_beforeStart(self):
        """Before the start date no reply is made."""
        early = message(now=datetime.datetime(2015, 3, 5, 9, 0))
        outcome = applyMailRules([("account", [loads(self.VACATION)])], early)
        self.assertEqual(outcome.replies, [])


class DataFormatExampleTests(SynchronousTestCase):
    """
    The cPanel-built examples of rules.md section 2, read with the data
    format parser.
    """

    def test_examples(self):
        """Every example passes checkRules; the signal one names unknown mail conditions."""
        redirect = loads('(1, "#Redirect", (), (("Mirror to", "a@x.com,b@y.com")))')
        self.assertEqual(checkRules([redirect]), [])
        self.assertEqual(checkRules([loads(VacationTests.VACATION)]), [])
        signal = loads('("100005", "323@example.com", ((To, is, "323@example.com"), '
                       '(Method, is, INVITE)), (("Redirect to", "john@example.com")))')
        problems = checkRules([signal])
        self.assertEqual(len(problems), 1)
        self.assertIn("Method", problems[0])

    def test_rulesFromFile(self):
        """A multi-line rule set as stored in a settings file applies."""
        text = """(
          (9, "Spam", (("Header Field", "is", "X-Spam-Score: 7*")),
              (("Store in", Junk), (Mark, "Seen,Junk"), ("Stop Processing"))),
          (5, "Boss", ((From, in, "boss@x.com, *@x.com")), (("Mark", Flagged))),
          (0, "Off", (), ((Discard))),
          ("1", "Size", (("Message Size", "greater than", 1K)), (("Add Header", "X-Big: yes")),
              "a comment")
        )"""
        rules = loads(text)
        self.assertEqual(checkRules(rules), [])
        outcome = applyMailRules([("account", rules)], message())
        self.assertEqual(outcome.store, [("Junk", ("\\Seen", "$Junk"))])
        self.assertEqual(outcome.applied, ["Spam"])


class MalformedRuleTests(SynchronousTestCase):
    """
    Garbage rule data never raises at delivery time.
    """

    GARBAGE = [None, 5, "x", [], [None], [1], [1, "n"], [1, "n", [], []], [1, 2, 3, 4],
               [1, "n", "c", []], [1, "n", [], "a"], [1, "n", [[]], [[]]],
               [1, "n", [[None, None, None]], [[None, None]]], [1, "n", [[[], [], []]], []],
               [1, "n", [["From", "is", {"a": 1}]], [["Store in", {"b": 2}]]],
               [1, "n", [["From", "is", [[["deep"]]]]], [["Mirror to", [[1]]]]],
               [1.5, "n", [], []], [True, "n", [], []], [1, "n", [], [], 5, 6],
               [1, "n", [["Time Of Day", "in", [None]]], [["Mark", []]]],
               [1, "n", [["Current Date", "greater than", b"bytes"]], [["Reject with", b"x"]]]]

    def test_garbage(self):
        """Each piece of garbage gives an Outcome with errors, and INBOX delivery."""
        for data in self.GARBAGE:
            for allowed in ("Any", "Filter Only"):
                outcome = applyMailRules([("domain", [data]), ("account", [data])],
                                         message(), allowed)
                self.assertIsInstance(outcome, Outcome)
            server = applyServerRules([data], message(recipient=None))
            self.assertIsInstance(server, Outcome)
            self.assertIsInstance(checkRules([data]), list)

    def test_notLists(self):
        """Rule sets that are not lists are reported."""
        self.assertIsInstance(applyMailRules(None, message()), Outcome)
        self.assertEqual(len(applyMailRules(5, message()).errors), 1)
        self.assertIsInstance(applyServerRules("junk", message()), Outcome)
        self.assertEqual(len(applyServerRules({"a": 1}, message()).errors), 1)
        self.assertEqual(checkRules("junk"), ["rules must be an array of rules"])


_WORDS = st.sampled_from([
    "From", "To", "Any To or Cc", "Each To or Cc", "'From' Name", "Subject", "Message Size",
    "Header Field", "Human Generated", "Current Date", "Current Day", "Time Of Day", "Source",
    "Submit Address", "Security", "Return-Path", "is", "is not", "in", "not in",
    "greater than", "less than", "---", "Store in", "Mark", "Add Header", "Tag Subject",
    "Redirect to", "Forward to", "Mirror to", "Reply with", "Reply to All with",
    "Remember 'From' in", "Reject with", "Discard", "Execute", "Stop Processing", "#L",
    "*", "1K", "09:00-18:00", "Mon-Fri", "05 Mar 2015", "X-A: *", "a@b,c@d", "Seen",
    "+X: ^S\n\n^I"])
_ATOMS = st.one_of(_WORDS, st.text(max_size=12), st.integers(-3, 20), st.none(),
                   st.booleans(), st.binary(max_size=4), st.datetimes())
_DATA = st.recursive(_ATOMS, lambda inner: st.lists(inner, max_size=5), max_leaves=30)


class FuzzTests(SynchronousTestCase):
    """
    Random rule data and random headers never make the engine raise.
    """

    @settings(max_examples=300, deadline=None)
    @given(_DATA, st.sampled_from(["Any", "No Mirror", "Filter Only", "None", "bogus", None]))
    def test_randomRules(self, rules, allowed):
        """Any data as rules gives an Outcome."""
        m = message(inList=lambda name, address: address.startswith("s"))
        self.assertIsInstance(applyMailRules([("domain", rules), ("account", rules)], m,
                                             allowed), Outcome)
        self.assertIsInstance(applyServerRules(rules, m), Outcome)
        self.assertIsInstance(checkRules(rules), list)

    @settings(max_examples=200, deadline=None)
    @given(st.binary(max_size=300))
    def test_randomHeaders(self, head):
        """Any bytes as a message give an Outcome, and can be edited."""
        rules = [rule([(key, "is not", "x")], [("Reply with", "^S ^I ^F ^T ^D"),
                                               ("Tag Subject", "[t]")])
                 for key in ("From", "Any To or Cc", "'From' Name", "Subject")]
        rules.append(rule([("Human Generated", "---")], [("Remember 'From' in", "L")]))
        m = RuleMessage.fromBytes(head, envelope(), "me@example.com", now=NOW)
        outcome = applyMailRules([("account", rules)], m)
        self.assertIsInstance(outcome, Outcome)
        self.assertIsInstance(applyHeaderEdits(head, outcome.headerEdits), bytes)
        for to, text in outcome.replies:
            self.assertIsInstance(buildReply(m, to, text), bytes)


class ServerRuleTests(SynchronousTestCase):
    """
    Server rules, run before enqueue.
    """

    def server(self, actions, conditions=()):
        m = RuleMessage.fromBytes(HEADERS + BODY, envelope(recipients=["a@x", "b@y"]), None,
                                  now=NOW)
        return applyServerRules([rule(conditions, actions)], m)

    def test_keep(self):
        """Without rules the message goes on."""
        self.assertTrue(applyServerRules([], message(recipient=None)).keep)
        self.assertTrue(applyServerRules(None, message(recipient=None)).keep)

    def test_actions(self):
        """Routing and header actions are recorded; Discard stops delivery."""
        outcome = self.server([("Add Header", "X-Scanned: yes"), ("Mirror to", "archive@x"),
                               ("Execute", "log"), ("Tag Subject", "[ext]")],
                              [("Source", "not in", "trusted")])
        self.assertEqual((outcome.addHeaders, outcome.mirror, outcome.execute),
                         (["X-Scanned: yes"], ["archive@x"], ["log"]))
        self.assertTrue(outcome.keep)
        self.assertFalse(self.server([("Discard",)]).keep)
        self.assertFalse(self.server([("Redirect to", "r@x")]).keep)
        self.assertEqual(self.server([("Reject with", "no")]).reject, "no")

    def test_accountActions(self):
        """Store in, Mark and Remember are reported and skipped in Server rules."""
        outcome = self.server([("Store in", "A"), ("Mark", "Seen"),
                               ("Remember 'From' in", "L"), ("Add Header", "X: 1")])
        self.assertEqual(len(outcome.errors), 3)
        self.assertEqual((outcome.flags, outcome.remember, outcome.addHeaders),
                         ([], [], ["X: 1"]))


class CheckRulesTests(SynchronousTestCase):
    """
    L{checkRules}, the validation helper for the CLI.
    """

    def test_problems(self):
        """Every problem is listed with the rule it is in."""
        problems = checkRules([
            rule([("Frm", "is", "x"), ("Subject", "matches", "y")],
                 [("Mark", "Shiny")], 1, "a"),
            rule([], [], "high", "b"),
            rule([], [], 1, "A"),
            [1, "c", [], [], 5],
        ])
        self.assertEqual(len(problems), 6)
        self.assertTrue(problems[0].startswith("rule 1 ('a'): "))
        self.assertIn("Frm", problems[0])
        self.assertIn("matches", problems[1])
        self.assertIn("Shiny", problems[2])
        self.assertIn("priority", problems[3])
        self.assertIn("duplicate", problems[4])
        self.assertIn("comment", problems[5])

    def test_good(self):
        """Good rules, including inactive ones, have no problems."""
        self.assertEqual(checkRules([rule([("From", "is", "*")], [("Discard",)], 0)]), [])


class ParameterTests(SynchronousTestCase):
    """
    Parameter readers of the actions.
    """

    def test_addresses(self):
        """Address lists split on commas and semicolons, drop duplicates."""
        self.assertEqual(parseAddresses("a@x; B <b@y>, A@X"), ["a@x", "b@y"])
        self.assertRaises(RuleError, parseAddresses, " , ")

    def test_flags(self):
        """Flag names map to IMAP flags; keywords start with $."""
        self.assertEqual(parseFlags("Read, Label2, NotJunk"),
                         ["\\Seen", "$Label2", "$NotJunk"])
        self.assertRaises(RuleError, parseFlags, "Seen, \\Recent")

    def test_headerLines(self):
        """Header lines must be Name: value."""
        self.assertEqual(parseHeaderLines("X-A:1\r\n\r\nX-B:  2 "), ["X-A: 1", "X-B: 2"])
        self.assertRaises(RuleError, parseHeaderLines, "X-A: 1\n body")


class ReplyTests(SynchronousTestCase):
    """
    Reply texts, macros and the reply message.
    """

    def test_parseText(self):
        """A leading + starts header lines up to the first empty line."""
        self.assertEqual(parseReplyText("+Subject: Away\nX-A: 1\n  more\n\nBody\n\nend"),
                         ([("Subject", "Away"), ("X-A", "1 more")], "Body\n\nend"))
        self.assertEqual(parseReplyText("Subject: no\n\nx"), ([], "Subject: no\n\nx"))
        self.assertEqual(parseReplyText("+Subject: only"), ([("Subject", "only")], ""))
        self.assertEqual(parseReplyText("+junk line\nX: 1\n\nb"), ([("X", "1")], "b"))

    def test_macros(self):
        """^I, ^S, ^F, ^T and ^D expand on one line; others stay."""
        text = expandMacros("^I|^S|^F|^T|^D|^Q|^^", message())
        self.assertEqual(text, "<id1@x.com>|Caf\u00e9 meeting|s@x.com|"
                               "Me <me@example.com>, other@y.com|"
                               "Fri, 06 Mar 2015 12:00:00 +0000|^Q|^^")
        self.assertEqual(expandMacros("[^S][^I]", message(headers=b"From: a@b\r\n")), "[][]")

    def test_buildReply(self):
        """The reply is a complete auto-replied message in answer to the original."""
        data = buildReply(message(), "replies@x.com", "+Subject: Away\n\nI am away.",
                          messageId="<r1@example.com>")
        self.assertIn(b"\r\n\r\nI am away.\r\n", data)
        from email import message_from_bytes
        from email.policy import default
        reply = message_from_bytes(data, policy=default)
        self.assertEqual(reply["Subject"], "Away")
        self.assertEqual(reply["To"], "replies@x.com")
        self.assertEqual(reply["From"], "me@example.com")
        self.assertEqual(reply["In-Reply-To"], "<id1@x.com>")
        self.assertEqual(reply["References"], "<id1@x.com>")
        self.assertEqual(reply["Auto-Submitted"], "auto-replied")
        self.assertEqual(reply["Message-ID"], "<r1@example.com>")
        self.assertEqual(reply["Date"].datetime.replace(tzinfo=None), NOW.replace(second=15))

    def test_buildReplyDefaults(self):
        """Without headers in the text the subject is Re: the original one."""
        from email import message_from_bytes
        from email.policy import default
        data = buildReply(message(), "a@b", "Thanks \u2603", fromAddress="Me <me@example.com>")
        reply = message_from_bytes(data, policy=default)
        self.assertEqual(reply["Subject"], "Re: Caf\u00e9 meeting")
        self.assertEqual(reply["From"], "Me <me@example.com>")
        self.assertTrue(reply["Message-ID"].endswith("@example.com>"))
        self.assertEqual(reply.get_content().rstrip("\r\n"), "Thanks \u2603")


    def test_undecodableText(self):
        """Raw 8-bit headers and undecodable rule text still make a reply."""
        m = message(headers=b"Subject: caf\xe9\r\nFrom: a@b\r\nMessage-ID: <\xe9@x>\r\n")
        outcome = applyMailRules([("account", [rule([], [("Reply with", "^S \udce9")])])], m)
        data = buildReply(m, *outcome.replies[0])
        self.assertIn(b"\r\n\r\n", data)


class HeaderEditTests(SynchronousTestCase):
    """
    L{applyHeaderEdits}, what the channel does with C{headerEdits}.
    """

    def test_add(self):
        """Added headers go on top, in order; the body is untouched."""
        data = b"Subject: hi\r\nFrom: a@b\r\n\r\nbody\r\n"
        out = applyHeaderEdits(data, [("add", "X-A: 1"), ("add", "X-B: caf\u00e9")])
        self.assertEqual(out, b"X-A: 1\r\nX-B: =?utf-8?q?caf=C3=A9?=\r\n" + data)
        self.assertIs(applyHeaderEdits(data, []), data)

    def test_tagSubject(self):
        """The tag goes in front of the subject, once."""
        data = b"From: a@b\r\nSubject: hi\r\n there\r\nTo: c@d\r\n\r\nSubject: body\r\n"
        out = applyHeaderEdits(data, [("tagSubject", "[SPAM]")])
        self.assertEqual(out, b"From: a@b\r\nSubject: [SPAM] hi there\r\nTo: c@d\r\n\r\n"
                              b"Subject: body\r\n")
        self.assertEqual(applyHeaderEdits(out, [("tagSubject", "[spam]")]), out)

    def test_tagMissingSubject(self):
        """Without a subject, the tag becomes the subject."""
        self.assertEqual(applyHeaderEdits(b"From: a@b\n\nx\n", [("tagSubject", "T")]),
                         b"From: a@b\nSubject: T\n\nx\n")

    def test_oddMessages(self):
        """Messages without a body or without headers are edited sensibly."""
        self.assertEqual(applyHeaderEdits(b"From: a@b\r\n", [("add", "X: 1")]),
                         b"X: 1\r\nFrom: a@b\r\n")
        self.assertEqual(applyHeaderEdits(b"\r\nbody", [("add", "X: 1")]), b"X: 1\r\n\r\nbody")

    def test_fromOutcome(self):
        """The edits of an Outcome apply in rule order."""
        outcome = applyMailRules([("account", [rule([], [
            ("Tag Subject", "[ext]"), ("Add Header", "X-Ext: yes")])])], message())
        out = applyHeaderEdits(b"Subject: =?utf-8?q?Caf=C3=A9?=\r\n\r\nx", outcome.headerEdits)
        self.assertEqual(out, b"X-Ext: yes\r\nSubject: [ext] =?utf-8?q?Caf=C3=A9?=\r\n\r\nx")
