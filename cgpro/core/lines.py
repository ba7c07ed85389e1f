# -*- test-case-name: tests.core.test_lines -*-
"""
Line framing shared by the line-based protocols (SMTP, LMTP, POP3).

Each server keeps its own receive buffer (its DATA or literal phase reads
the same buffer), and asks L{takeLine} for the next command line.  A line
longer than the limit is never kept whole: once the buffer holds more than
the limit without a line end, the rest of that line is skipped as it
arrives and reported once as L{TOO_LONG}, so a client cannot make the
server buffer an endless line, and the session stays in step.
"""

#: Marker returned for a line over the limit.
TOO_LONG = object()


def takeLine(buffer, pos, limit, discarding):
    """
    Take the next line from C{buffer} starting at C{pos}.

    @param buffer: a C{bytearray} (or C{bytes}) of received data.
    @param limit: the longest line accepted, without its line end.
    @param discarding: whether the previous call started skipping an
        over-long line.
    @return: C{(line, pos, discarding)}: the line (C{bytes} without CRLF or
        LF), L{TOO_LONG}, or C{None} when no complete line is there; the new
        position; the new discarding state.
    """
    end = buffer.find(b"\n", pos)
    if end < 0:
        if len(buffer) - pos > limit + 2:
            return None, len(buffer), True
        return None, pos, discarding
    line = bytes(buffer[pos:end])
    pos = end + 1
    if discarding:
        return TOO_LONG, pos, False
    if line[-1:] == b"\r":
        line = line[:-1]
    if len(line) > limit:
        return TOO_LONG, pos, False
    return line, pos, False
