# -*- test-case-name: tests.media.test_channel -*-
"""
RTP on the wire for the media server: packet parsing, the RFC 4733
event codes, the address helpers and the Twisted datagram protocols.

Why a module of its own: these are the media server's network edge, with
no state of a channel or of the ticker, so L{cgpro.media.channel} (the
channels and the server) stays readable and under the project's file size
limit; they are also what a test or a tool needs to build or read packets
without a server.  Nothing here imports L{cgpro.media.channel}.
"""

import ipaddress
import socket
import struct

from twisted.internet.protocol import DatagramProtocol

from cgpro.media.relay import bindUDPPair

__all__ = ["parseRTP", "primaryAddress", "DIGITS"]

#: RFC 4733 event codes 0-15, in order
DIGITS = "0123456789*#ABCD"

#: the RFC 4733 volume we send (-10 dBm0)
_EVENT_VOLUME = 10


def parseRTP(data):
    """
    Validate and split one RTP packet (RFC 3550 section 5.1): version 2,
    a 12-byte header, CSRCs, a header extension and padding skipped.

    @return: C{(payloadType, marker, seq, timestamp, ssrc, payload)}, or
        C{None} when C{data} is not a valid RTP packet.
    """
    if len(data) < 12 or data[0] >> 6 != 2:
        return None
    first, second, seq, timestamp, ssrc = struct.unpack_from("!BBHII", data)
    start = 12 + 4 * (first & 0x0F)
    if first & 0x10:
        if len(data) < start + 4:
            return None
        start += 4 + 4 * struct.unpack_from("!H", data, start + 2)[0]
    end = len(data)
    if first & 0x20:
        end -= data[-1]
    if end < start:
        return None
    return second & 0x7F, second >> 7, seq, timestamp, ssrc, data[start:end]


def primaryAddress(family=4):
    """
    The address this host's packets to the outside come from, found by
    "connecting" a UDP socket (nothing is sent) to a documentation
    address: what an SDP must advertise when we are bound to all
    addresses.

    @return: the address (C{str}); the loopback one if there is no route.
    """
    af, target, fallback = ((socket.AF_INET6, "2001:db8::1", "::1") if family == 6
                            else (socket.AF_INET, "192.0.2.1", "127.0.0.1"))
    try:
        with socket.socket(af, socket.SOCK_DGRAM) as probe:
            probe.connect((target, 9))
            return probe.getsockname()[0]
    except OSError:
        return fallback


def _parseHost(host):
    """
    @return: C{(address, family)} of an IP address as an SDP gives it
        (an IPv6 one possibly in brackets).
    @raise ValueError: if C{host} is not an IP address.
    """
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    address = ipaddress.ip_address(host)
    return str(address), address.version


def _listenPair(reactor, host, port, rtpProtocol, rtcpProtocol):
    """
    Bind RTP C{port} and RTCP C{port + 1} on C{host} (IPv6 sockets
    C{IPV6_V6ONLY}, as the relay's, so both families have the whole
    range) and hand them to the reactor.

    @return: the two listening ports.
    @raise OSError: if either port cannot be bound.
    """
    sockets = bindUDPPair(host, port)
    family = sockets[0].family
    try:
        return tuple(reactor.adoptDatagramPort(sock.fileno(), family, protocol)
                     for sock, protocol in zip(sockets, (rtpProtocol, rtcpProtocol)))
    finally:
        # the reactor works on duplicates of the descriptors
        for sock in sockets:
            sock.close()


class _RTPProtocol(DatagramProtocol):
    """
    Hands every datagram of a channel's RTP port to the channel.  Not
    noisy: a busy PBX opens and closes thousands of ports a minute.
    """

    noisy = False

    def __init__(self, channel):
        self.channel = channel

    def datagramReceived(self, data, addr):
        self.channel.rtpReceived(data, addr[:2])


class _RTCPProtocol(DatagramProtocol):
    """
    Holds the RTCP port (RFC 3550 wants it kept) and ignores what comes:
    the media server needs no reception reports.
    """

    noisy = False

    def datagramReceived(self, data, addr):
        pass
