# -*- test-case-name: tests.core.test_lines -*-
"""
Tests for L{cgpro.core.lines.takeLine}.
"""

from twisted.trial.unittest import SynchronousTestCase

from cgpro.core.lines import TOO_LONG, takeLine


class TakeLineTests(SynchronousTestCase):
    """
    Lines, line ends, incomplete lines and over-long lines.
    """

    def test_lines(self):
        """CRLF and bare LF end a line; the position moves past it."""
        buffer = bytearray(b"ONE\r\nTWO\nTH")
        line, pos, discarding = takeLine(buffer, 0, 10, False)
        self.assertEqual((line, pos, discarding), (b"ONE", 5, False))
        line, pos, discarding = takeLine(buffer, pos, 10, discarding)
        self.assertEqual((line, pos), (b"TWO", 9))
        self.assertEqual(takeLine(buffer, pos, 10, discarding), (None, 9, False))

    def test_tooLong(self):
        """A complete line over the limit is TOO_LONG."""
        self.assertIs(takeLine(bytearray(b"x" * 11 + b"\r\n"), 0, 10, False)[0], TOO_LONG)

    def test_endlessLineSkipped(self):
        """An unterminated line past the limit is skipped, then reported once."""
        buffer = bytearray(b"x" * 50)
        line, pos, discarding = takeLine(buffer, 0, 10, False)
        self.assertEqual((line, pos, discarding), (None, 50, True))
        buffer += b"yyy\r\nNEXT\r\n"
        line, pos, discarding = takeLine(buffer, pos, 10, discarding)
        self.assertIs(line, TOO_LONG)
        self.assertEqual(takeLine(buffer, pos, 10, discarding)[0], b"NEXT")
