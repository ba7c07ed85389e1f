# -*- test-case-name: tests.sip.test_sdp -*-
"""
Just enough SDP (RFC 4566) for a media proxy: find where each media stream
of an offer or answer wants its RTP, and rewrite those addresses and ports
to the relay's.

The body is kept as lines and only the C{c=} lines, the C{m=} ports, the
C{a=rtcp:} attributes (RFC 3605) and the C{o=} version are touched, so
codecs, attributes and anything this module does not know pass through
byte for byte (a rewritten offer still negotiates what the phones wanted).
"""

import ipaddress


class SDPError(ValueError):
    """A body that is not SDP this module can rewrite."""


class MediaStream:
    """
    One C{m=} section.

    @ivar kind: C{audio}, C{video}, ...
    @ivar address: the connection address that applies (media or session
        level C{c=}), or L{None}.
    @ivar port: the RTP port (0: the stream is refused).
    @ivar rtcpPort: the RTCP port (C{a=rtcp:} or RTP port + 1).
    @ivar index: the stream's position.
    """

    __slots__ = ("kind", "address", "port", "rtcpPort", "index", "protocol")

    def __init__(self, kind, address, port, rtcpPort, index, protocol):
        self.kind = kind
        self.address = address
        self.port = port
        self.rtcpPort = rtcpPort
        self.index = index
        self.protocol = protocol


class SessionDescription:
    """
    A parsed SDP body.

    @ivar lines: the body's lines, without line ends.
    @ivar streams: the L{MediaStream}s in order.
    """

    def __init__(self, body):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise SDPError("SDP is not UTF-8")
        self.lineEnd = "\r\n" if "\r\n" in text else "\n"
        self.lines = [line for line in text.replace("\r\n", "\n").split("\n")]
        while self.lines and self.lines[-1] == "":
            self.lines.pop()
        if not self.lines or not self.lines[0].startswith("v="):
            raise SDPError("SDP does not start with v=")
        self.streams = []
        self._parse()

    def _parse(self):
        session = None
        current = None
        for line in self.lines:
            if line.startswith("c="):
                address = _connectionAddress(line)
                if current is None:
                    session = address
                else:
                    current.address = address
            elif line.startswith("m="):
                parts = line[2:].split()
                if len(parts) < 3:
                    raise SDPError("bad m= line %r" % (line,))
                try:
                    port = int(parts[1].split("/")[0])
                except ValueError:
                    raise SDPError("bad port in %r" % (line,))
                current = MediaStream(parts[0], session, port, port + 1,
                                      len(self.streams), parts[2])
                self.streams.append(current)
            elif line.startswith("a=rtcp:") and current is not None:
                try:
                    current.rtcpPort = int(line[7:].split()[0])
                except (ValueError, IndexError):
                    raise SDPError("bad a=rtcp in %r" % (line,))

    def rewrite(self, address, ports):
        """
        Point every stream at the relay.

        @param address: the relay's IP address for this side.
        @param ports: one C{(rtpPort, rtcpPort)} per stream (L{None} keeps
            a stream as it is: refused streams keep port 0).
        @return: the new body (L{bytes}).
        """
        family = "IP6" if ":" in address else "IP4"
        out = []
        index = -1
        for line in self.lines:
            if line.startswith("c="):
                line = "c=IN %s %s" % (family, address)
            elif line.startswith("o="):
                parts = line.split()
                if len(parts) >= 6:
                    try:
                        parts[2] = str(int(parts[2]) + 1)
                    except ValueError:
                        pass
                    parts[4], parts[5] = family, address
                    line = " ".join(parts)
            elif line.startswith("m="):
                index += 1
                stream = self.streams[index]
                pair = ports[index] if index < len(ports) else None
                if pair is not None and stream.port != 0:
                    parts = line.split(" ")
                    rest = parts[1].split("/", 1)
                    rest[0] = str(pair[0])
                    parts[1] = "/".join(rest)
                    line = " ".join(parts)
            elif line.startswith("a=rtcp:") and index >= 0:
                pair = ports[index] if index < len(ports) else None
                if pair is not None:
                    tail = line[7:].split(" ", 1)
                    line = "a=rtcp:%d" % (pair[1],)
                    if len(tail) > 1:
                        line += " IN %s %s" % (family, address)
            out.append(line)
        return (self.lineEnd.join(out) + self.lineEnd).encode("utf-8")


def _connectionAddress(line):
    parts = line[2:].split()
    if len(parts) < 3:
        raise SDPError("bad c= line %r" % (line,))
    return parts[2].split("/")[0]


def isSDP(message):
    """@return: whether C{message} carries an SDP body."""
    contentType = (message.getHeader("Content-Type") or "").lower()
    return bool(message.body) and contentType.split(";")[0].strip() == "application/sdp"


def behindNAT(description, source):
    """
    @return: whether the media addresses of C{description} cannot be what
        the packets of C{source} (a L{cgpro.sip.address.Peer}) come from:
        a private address other than the source's, or an address of another
        family than the source (IPv4/IPv6 bridging).
    """
    for stream in description.streams:
        if stream.port == 0 or not stream.address:
            continue
        try:
            media = ipaddress.ip_address(stream.address)
            peer = ipaddress.ip_address(source.host)
        except ValueError:
            continue
        if media.version != peer.version:
            return True
        if media != peer and media.is_private and not media.is_loopback:
            # a private media address the signalling does not come from
            return True
    return False
