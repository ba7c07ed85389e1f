# -*- test-case-name: tests.pbx.test_sdp -*-
"""
SDP offer/answer (RFC 3264) for the PBX's own media: a media server
channel speaks G.711 only, so negotiating means picking PCMU or PCMA from
the peer's audio stream (in the peer's order of preference) and finding
its RFC 4733 telephone-event payload type.

This is not the proxy's SDP module (L{cgpro.sip.sdp} rewrites addresses
in other people's descriptions and keeps every byte of them); here we
read the peer's description and write our own.
"""

import itertools
import time

#: Static payload types of the codecs a channel speaks.
STATIC = {0: "PCMU", 8: "PCMA"}
CODEC_PAYLOAD = {"PCMU": 0, "PCMA": 8}
#: The telephone-event payload type we offer.
EVENT_PAYLOAD = 101

_versions = itertools.count(1)


class SDPError(ValueError):
    """The peer's SDP offers nothing a media server channel can speak."""


class Remote:
    """
    What the peer's SDP says about its audio.

    @ivar host: where it receives RTP.
    @ivar port: its RTP port (0: audio refused or on hold with no port).
    @ivar codec: C{'PCMU'} or C{'PCMA'}, the first of the two it lists.
    @ivar payload: that codec's payload type in its SDP.
    @ivar eventPayload: its telephone-event payload type, or C{None}.
    @ivar hold: whether it asked us not to send (C{sendonly}/C{inactive}
        or the RFC 2543 C{0.0.0.0}).
    """

    def __init__(self, host, port, codec, payload, eventPayload, hold=False):
        self.host = host
        self.port = port
        self.codec = codec
        self.payload = payload
        self.eventPayload = eventPayload
        self.hold = hold

    def __repr__(self):
        return "<Remote %s:%s %s/%s te=%s%s>" % (self.host, self.port, self.codec,
                                                 self.payload, self.eventPayload,
                                                 " hold" if self.hold else "")


def _lines(body):
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    return [line.strip() for line in body.replace("\r\n", "\n").split("\n") if line.strip()]


def parse(body, prefer=None):
    """
    Read the first audio stream of an SDP body.

    @param prefer: a codec to choose when the peer lists it at all (the
        codec already in use, so a re-INVITE does not switch needlessly).
    @return: a L{Remote}.
    @raise SDPError: no audio stream with PCMU or PCMA.
    """
    session = None
    media = None
    formats = []
    rtpmap = {}
    direction = None
    for line in _lines(body or b""):
        kind, _, value = line.partition("=")
        if kind == "c":
            parts = value.split()
            address = parts[2].split("/")[0] if len(parts) >= 3 else None
            if media is None:
                session = address
            elif media.get("audio"):
                media["address"] = address
        elif kind == "m":
            if media is not None and media.get("audio"):
                break
            parts = value.split()
            if len(parts) < 4:
                raise SDPError("malformed m= line: %s" % (value,))
            media = {"audio": parts[0] == "audio", "port": parts[1], "address": None}
            formats = parts[3:] if media["audio"] else []
            rtpmap = {}
            direction = None
        elif media is not None and media.get("audio") and kind == "a":
            name, _, rest = value.partition(":")
            if name == "rtpmap":
                number, _, encoding = rest.partition(" ")
                rtpmap[number.strip()] = encoding.strip()
            elif name in ("sendonly", "inactive", "recvonly", "sendrecv"):
                direction = name
    if media is None or not media.get("audio"):
        raise SDPError("no audio stream")
    try:
        port = int(media["port"].split("/")[0])
    except ValueError:
        raise SDPError("bad audio port %r" % (media["port"],))
    host = media["address"] or session
    if not host:
        raise SDPError("no connection address")
    choices = []
    eventPayload = None
    for fmt in formats:
        if not fmt.isdigit():
            continue
        number = int(fmt)
        encoding = rtpmap.get(fmt, STATIC.get(number, "")).upper()
        name = encoding.split("/")[0]
        if name in ("PCMU", "PCMA"):
            choices.append((name, number))
        elif name == "TELEPHONE-EVENT" and eventPayload is None:
            eventPayload = number
    if not choices:
        raise SDPError("neither PCMU nor PCMA offered")
    codec, payload = choices[0]
    for name, number in choices:
        if name == prefer:
            codec, payload = name, number
            break
    hold = direction in ("sendonly", "inactive") or host == "0.0.0.0"
    return Remote(host, port, codec, payload, eventPayload, hold)


def describe(host, port, codecs=("PCMU", "PCMA"), eventPayload=EVENT_PAYLOAD, payloads=None,
             sessionId=None, direction="sendrecv"):
    """
    Write our SDP: one audio stream at C{host:port} with C{codecs}.

    @param payloads: C{{codec: payload type}} to answer with the peer's
        numbers (RFC 3264 section 6.1); the static ones by default.
    @param eventPayload: the telephone-event type, or C{None}.
    @return: C{bytes}.
    """
    payloads = payloads or {}
    numbers = [payloads.get(c, CODEC_PAYLOAD[c]) for c in codecs]
    ip = "IP6" if ":" in host else "IP4"
    sessionId = sessionId or int(time.time())
    lines = ["v=0",
             "o=cgpro %d %d IN %s %s" % (sessionId, next(_versions), ip, host),
             "s=cgpro",
             "c=IN %s %s" % (ip, host),
             "t=0 0",
             "m=audio %d RTP/AVP %s" % (port, " ".join(str(n) for n in numbers + (
                 [eventPayload] if eventPayload is not None else [])))]
    for codec, number in zip(codecs, numbers):
        lines.append("a=rtpmap:%d %s/8000" % (number, codec))
    if eventPayload is not None:
        lines.append("a=rtpmap:%d telephone-event/8000" % (eventPayload,))
        lines.append("a=fmtp:%d 0-15" % (eventPayload,))
    lines.append("a=ptime:20")
    lines.append("a=" + direction)
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def answer(remote, host, port):
    """
    @return: our answer (C{bytes}) to the offer L{parse} read into
        C{remote}: its chosen codec with its payload numbers.
    """
    return describe(host, port, codecs=(remote.codec,), payloads={remote.codec: remote.payload},
                    eventPayload=remote.eventPayload)
