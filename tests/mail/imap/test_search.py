# -*- test-case-name: tests.mail.imap.test_search -*-
"""
Tests for SEARCH and UID SEARCH (L{cgpro.mail.imap.commands.search}).
"""

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from tests.mail.imap.support import USER, Session, makeContext, message

#: 2026-11-17 00:00 UTC.
DAY = 1794873600


class SearchTests(SynchronousTestCase):
    """
    SEARCH keys over four messages.
    """

    def setUp(self):
        clock = Clock()
        clock.advance(DAY + 3600)
        self.context = makeContext(self, clock)
        store = self.context.mailStore
        self.successResultOf(store.deliver(USER, "INBOX", message("alpha", "the first body")))
        self.successResultOf(store.deliver(USER, "INBOX", message(
            "=?utf-8?q?caf=C3=A9?=", "second", sender="Bob <bob@example.org>"),
            flags=["\\Seen"]))
        self.successResultOf(store.deliver(USER, "INBOX", message("gamma", "x" * 2000),
                                           internalDate=DAY - 86400 * 3))
        self.successResultOf(store.deliver(USER, "INBOX", message(
            "delta", "UGF5bG9hZCB3b3Jk", extra="Content-Transfer-Encoding: base64\r\n"),
            flags=["\\Flagged", "$Work"]))
        self.session = Session(self, self.context)
        self.session.login(self)
        self.session.ok(self, "SELECT INBOX")

    def search(self, criteria):
        out = self.session.ok(self, "SEARCH " + criteria)
        line = [l for l in out.split("\r\n") if l.startswith("* SEARCH")][0]
        return [int(n) for n in line.split()[2:]]

    def test_flags(self):
        """Flag keys, keywords, NEW/OLD/RECENT."""
        self.assertEqual(self.search("SEEN"), [2])
        self.assertEqual(self.search("UNSEEN"), [1, 3, 4])
        self.assertEqual(self.search("FLAGGED KEYWORD $work"), [4])
        self.assertEqual(self.search("UNKEYWORD $Work"), [1, 2, 3])
        self.assertEqual(self.search("NEW"), [1, 3, 4])
        self.assertEqual(self.search("OLD"), [])
        self.assertEqual(self.search("ALL"), [1, 2, 3, 4])

    def test_logic(self):
        """NOT, OR, parenthesized lists and sets."""
        self.assertEqual(self.search("NOT SEEN"), [1, 3, 4])
        self.assertEqual(self.search("OR SEEN FLAGGED"), [2, 4])
        self.assertEqual(self.search("(OR 1 4) UNSEEN"), [1, 4])
        self.assertEqual(self.search("2:*"), [2, 3, 4])
        self.assertEqual(self.search("UID 3:*"), [3, 4])

    def test_datesAndSizes(self):
        """Internal dates, sent dates and sizes."""
        self.assertEqual(self.search("BEFORE 17-Nov-2026"), [3])
        self.assertEqual(self.search("SINCE 17-Nov-2026"), [1, 2, 4])
        self.assertEqual(self.search("ON 14-Nov-2026"), [3])
        self.assertEqual(self.search("SENTON 16-Nov-2026"), [1, 2, 3, 4])
        self.assertEqual(self.search("SENTBEFORE 16-Nov-2026"), [])
        self.assertEqual(self.search("LARGER 1000"), [3])
        self.assertEqual(self.search("SMALLER 1000"), [1, 2, 4])

    def test_text(self):
        """Header, body and text searches decode encoded words and transfer encodings."""
        self.assertEqual(self.search("SUBJECT alpha"), [1])
        self.assertEqual(self.search('CHARSET UTF-8 SUBJECT "caf\u00e9"'), [2])
        self.assertEqual(self.search("FROM bob"), [2])
        self.assertEqual(self.search('HEADER Message-ID "gamma@"'), [3])
        self.assertEqual(self.search("BODY first"), [1])
        self.assertEqual(self.search("BODY payload"), [4])
        self.assertEqual(self.search("TEXT bob@example.org"), [2])
        self.assertEqual(self.search('HEADER X-Missing ""'), [])

    def test_uidSearch(self):
        """UID SEARCH answers with UIDs."""
        self.session.ok(self, "STORE 1 +FLAGS.SILENT (\\Deleted)")
        self.session.ok(self, "EXPUNGE")
        out = self.session.ok(self, "UID SEARCH UNSEEN")
        self.assertIn("* SEARCH 3 4\r\n", out)
        self.assertEqual(self.search("UNSEEN"), [2, 3])
