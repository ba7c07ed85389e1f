# -*- test-case-name: tests.mail.pop3.test_message -*-
"""
Sending a stored message as a POP3 multi-line response (RETR and TOP).

A message is read from its file in chunks and never held whole in memory:
L{MessageReader} turns the file into wire chunks (bare LF made CRLF, lines
starting with a dot stuffed, a final CRLF if the message lacks one, the
terminating C{.} line), and L{MessageSender} is the pull producer that
writes them as fast as the transport drains, so a 50 MB RETR costs one
chunk of memory and a slow client only slows itself.
"""

from twisted.internet import defer, interfaces
from twisted.python.failure import Failure
from zope.interface import implementer

#: Bytes read from a message file per step.
CHUNK = 65536


class MessageReader:
    """
    The wire form of one message, chunk by chunk.

    @ivar done: whether the last chunk (with the terminator) was returned.
    """

    def __init__(self, file, bodyLines=None, chunkSize=CHUNK):
        """
        @param file: the message, opened for binary reading; closed when
            done.
        @param bodyLines: C{None} for the whole message (RETR), or the
            number of body lines to send after the header (TOP).
        """
        self.file = file
        self.bodyLines = bodyLines
        self.chunkSize = chunkSize
        self.done = False
        self._carry = b""
        self._lineStart = True
        self._inBody = False
        self._nonBlank = False

    def _encode(self, data):
        """
        Line ends to CRLF and dot-stuffing; C{data} never ends inside a
        CRLF pair (a trailing CR is carried to the next piece).
        """
        data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        if self._lineStart and data[:1] == b".":
            data = b"." + data
        data = data.replace(b"\n.", b"\n..")
        if data:
            self._lineStart = data.endswith(b"\n")
        return data

    def _hold(self, data):
        """
        Split off a trailing CR that may begin a CRLF pair.
        """
        if data.endswith(b"\r"):
            self._carry = b"\r"
            return data[:-1]
        self._carry = b""
        return data

    def _finish(self):
        rest = self._encode(self._carry) if self._carry else b""
        self._carry = b""
        if not self._lineStart:
            rest += b"\r\n"
        self.close()
        return rest + b".\r\n"

    def close(self):
        """
        Stop: close the file (the next L{read} returns nothing).
        """
        self.done = True
        try:
            self.file.close()
        except Exception:
            pass

    def read(self):
        """
        @return: the next chunk of the response body (C{bytes}); the last
            one ends with the terminating C{.} line; C{b""} once done.
        """
        if self.done:
            return b""
        if self.bodyLines is None:
            return self._readChunk()
        return self._readLines()

    def readAll(self):
        """
        @return: the whole response body (for small messages).
        """
        parts = []
        while not self.done:
            parts.append(self.read())
        return b"".join(parts)

    def _readChunk(self):
        while True:
            data = self.file.read(self.chunkSize)
            if not data:
                return self._finish()
            data = self._hold(self._carry + data)
            if data:
                return self._encode(data)

    def _readLines(self):
        out = []
        size = 0
        while size < self.chunkSize:
            if self._inBody and self.bodyLines <= 0 and self._lineStart and not self._carry:
                out.append(self._finish())
                break
            piece = self.file.readline(self.chunkSize)
            if not piece:
                out.append(self._finish())
                break
            complete = piece.endswith(b"\n")
            content = piece[:-1] if complete else piece
            self._nonBlank = self._nonBlank or bool(content.replace(b"\r", b""))
            if complete:
                if self._inBody:
                    self.bodyLines -= 1
                elif not self._nonBlank:
                    self._inBody = True
                self._nonBlank = False
                piece = self._carry + piece
                self._carry = b""
            else:
                piece = self._hold(self._carry + piece)
            encoded = self._encode(piece)
            out.append(encoded)
            size += len(encoded)
        return b"".join(out)


@implementer(interfaces.IPullProducer)
class MessageSender:
    """
    Writes a L{MessageReader}'s chunks to a consumer as it asks for them.

    @ivar deferred: fires with C{True} once everything was written, with
        C{False} if the transport stopped the transfer (the client left),
        or fails if the file could not be read.
    """

    def __init__(self, reader, consumer):
        self.reader = reader
        self.consumer = consumer
        self.deferred = defer.Deferred()
        self._finished = False

    def start(self):
        """
        @return: L{deferred}.
        """
        self.consumer.registerProducer(self, False)
        return self.deferred

    def resumeProducing(self):
        if self._finished:
            return
        try:
            chunk = self.reader.read()
        except Exception:
            self._finish(Failure())
            return
        if chunk:
            self.consumer.write(chunk)
        if self.reader.done:
            self._finish(True)

    def stopProducing(self):
        self.reader.close()
        self._finish(False, unregister=False)

    def _finish(self, result, unregister=True):
        if self._finished:
            return
        self._finished = True
        self.reader.close()
        if unregister:
            self.consumer.unregisterProducer()
        if isinstance(result, Failure):
            self.deferred.errback(result)
        else:
            self.deferred.callback(result)
