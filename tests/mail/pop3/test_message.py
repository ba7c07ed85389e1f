# -*- test-case-name: tests.mail.pop3.test_message -*-
"""
Tests for L{cgpro.mail.pop3.message}: the wire form of RETR and TOP.
"""

import io

from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from cgpro.mail.pop3.message import MessageReader, MessageSender


def wire(data, bodyLines=None, chunkSize=65536):
    return MessageReader(io.BytesIO(data), bodyLines, chunkSize).readAll()


class MessageReaderTests(SynchronousTestCase):
    """
    L{MessageReader} line ends, dot-stuffing and TOP.
    """

    def test_plain(self):
        """A CRLF message is sent as is, then the terminator."""
        self.assertEqual(wire(b"A: b\r\n\r\nbody\r\n"), b"A: b\r\n\r\nbody\r\n.\r\n")

    def test_dotStuffing(self):
        """Lines starting with a dot get another one, the first line too."""
        self.assertEqual(wire(b".x\r\n\r\n.\r\n..y\r\nz.\r\n"),
                         b"..x\r\n\r\n..\r\n...y\r\nz.\r\n.\r\n")

    def test_bareLF(self):
        """Bare LF line ends are sent as CRLF."""
        self.assertEqual(wire(b"A: b\n\nbody\n.\n"), b"A: b\r\n\r\nbody\r\n..\r\n.\r\n")

    def test_noFinalLineEnd(self):
        """A message not ending in a line end gets one before the terminator."""
        self.assertEqual(wire(b"A: b\r\n\r\nbody"), b"A: b\r\n\r\nbody\r\n.\r\n")

    def test_empty(self):
        """An empty message is just the terminator."""
        self.assertEqual(wire(b""), b".\r\n")

    def test_smallChunks(self):
        """Any chunk size gives the same bytes (CR LF and dots across chunk boundaries)."""
        data = b"A: b\r\n\r\n" + b"".join(b".%d\r\nline\r\n\r\n" % i for i in range(50)) + b".."
        expected = wire(data)
        for size in (1, 2, 3, 5, 7, 64):
            self.assertEqual(wire(data, chunkSize=size), expected, size)
            self.assertEqual(wire(data, 10, chunkSize=size), wire(data, 10), size)

    def test_top(self):
        """TOP sends the header, the blank line and N body lines."""
        data = b"A: b\r\nC: d\r\n\r\n1\r\n.2\r\n3\r\n"
        self.assertEqual(wire(data, 0), b"A: b\r\nC: d\r\n\r\n.\r\n")
        self.assertEqual(wire(data, 2), b"A: b\r\nC: d\r\n\r\n1\r\n..2\r\n.\r\n")
        self.assertEqual(wire(data, 99), wire(data))

    def test_topNoBody(self):
        """TOP of a message without a body sends the header."""
        self.assertEqual(wire(b"A: b\r\nC: d", 3), b"A: b\r\nC: d\r\n.\r\n")

    def test_longLines(self):
        """Lines longer than a chunk are sent whole."""
        data = b"A: b\r\n\r\n" + b"x" * 1000 + b"\r\n.y\r\n"
        self.assertEqual(wire(data, chunkSize=64), data.replace(b"\n.y", b"\n..y") + b".\r\n")
        self.assertEqual(wire(data, 1, chunkSize=64), b"A: b\r\n\r\n" + b"x" * 1000 + b"\r\n.\r\n")


class MessageSenderTests(SynchronousTestCase):
    """
    L{MessageSender} as a pull producer.
    """

    def test_pulls(self):
        """Each resumeProducing writes one chunk; the end unregisters and fires."""
        transport = StringTransport()
        data = b"x" * 100 + b"\r\n"
        sender = MessageSender(MessageReader(io.BytesIO(data), None, 40), transport)
        d = sender.start()
        self.assertIs(transport.producer, sender)
        self.assertFalse(transport.streaming)
        while transport.producer is not None:
            transport.producer.resumeProducing()
        self.assertEqual(transport.value(), data + b".\r\n")
        self.assertIs(self.successResultOf(d), True)

    def test_stopped(self):
        """stopProducing closes the file and fires with False."""
        transport = StringTransport()
        file = io.BytesIO(b"x" * 100)
        sender = MessageSender(MessageReader(file, None, 40), transport)
        d = sender.start()
        sender.stopProducing()
        self.assertIs(self.successResultOf(d), False)
        self.assertTrue(file.closed)
