# -*- test-case-name: tests.sip.test_mediaproxy -*-
"""
Anchoring a call's media in the relay when the parties cannot reach each
other directly (seed 002, "Impostazione media proxy").

The proxy asks L{MediaProxy.wanted} for each new INVITE with an SDP offer:
with the C{MediaProxy} setting C{NAT} (the default) the media is relayed
when the caller's SDP or Contact shows a private address its packets do
not come from, or when a device called is reached through the flow it
registered over (it is behind NAT), or when the two sides use different
address families; C{Always} relays every call, C{Never} none.

A relayed call holds one relay session (C{context.media}, an
L{cgpro.core.interfaces.IMediaRelay}) with two legs per media stream:
leg C{2i} faces the caller, leg C{2i+1} the callee, and the relay forwards
each to the other.  The offer going to the callee is rewritten to the
callee-facing ports, the answer going back to the caller to the
caller-facing ones; the addresses the SDPs named are given to the relay as
first guesses (symmetric RTP latching corrects them for NATed devices).
A re-INVITE in either direction is rewritten the same way and moves the
latch; the session is released on BYE, on a failed or cancelled call, and
by the relay itself after a silence.
"""

import ipaddress

from twisted.logger import Logger

from cgpro.core.interfaces import MediaExhausted
from cgpro.core.iplists import serverList
from cgpro.sip.sdp import SDPError, SessionDescription, behindNAT, isSDP
from cgpro.sip.targets import isPrivate

log = Logger()

NEVER, NAT, ALWAYS = "Never", "NAT", "Always"


class Anchor:
    """
    The relay session of one call (one Call-ID).

    @ivar callerTag: the From tag of the call's first INVITE: a request
        with this From tag comes from the caller's side.
    """

    __slots__ = ("session", "callId", "callerTag", "streams")

    def __init__(self, session, callId, callerTag, streams):
        self.session = session
        self.callId = callId
        self.callerTag = callerTag
        self.streams = streams

    def ports(self, side):
        """@return: the C{(rtp, rtcp)} pairs facing C{side} (0 caller, 1 callee)."""
        return [self.session.ports[2 * i + side] for i in range(self.streams)]


class MediaProxy:
    """
    @ivar anchors: the live L{Anchor}s by Call-ID.
    """

    def __init__(self, stack):
        self.stack = stack
        self.anchors = {}
        self.relayed = 0
        self.refused = 0

    @property
    def relay(self):
        return getattr(self.stack.context, "media", None)

    def mode(self):
        return self.stack.settings.mediaProxy

    # -- decisions -------------------------------------------------------

    def wanted(self, request, source, natTargets):
        """
        @param natTargets: whether a target is a device behind NAT.
        @return: whether this INVITE's media should go through the relay.
        """
        if self.relay is None or request.method != "INVITE" or not isSDP(request):
            return False
        mode = self.mode()
        if mode == NEVER:
            return False
        if mode == ALWAYS or natTargets:
            return True
        try:
            sdp = SessionDescription(request.body)
        except SDPError:
            return False
        if behindNAT(sdp, source):
            return True
        try:
            contact = request.contact
        except Exception:
            contact = []
        if contact and not contact[0].wildcard:
            host = getattr(contact[0].uri, "host", None)
            if host and isPrivate(host) and host.strip("[]") != source.host:
                return True
        return False

    def addressFacing(self, peer, anchor=None, leg=None):
        """
        The relay address to put in an SDP going to C{peer}: the LAN
        address for a peer on the LAN, the WAN address for one outside (when
        set: the server is behind a 1:1 NAT), else the relay's own address,
        else the local address that routes to the peer.
        """
        main = self.stack.directory.getServerDict("Main")
        try:
            ip = ipaddress.ip_address(peer.host)
            local = ip.is_private or ip.is_loopback or peer.host in serverList(
                self.stack.directory, "LANIPs")
        except ValueError:
            local = False
        key = "LANAddress" if local else ("WANIPv6Address" if ":" in peer.host
                                          else "WANAddress")
        configured = str(main.get(key, "") or "").strip()
        if configured:
            return configured
        own = None
        if anchor is not None and leg is not None:
            own = anchor.session.addressOf(leg)
        if own and own not in ("0.0.0.0", "::"):
            return own
        return self.stack.transport.localAddress(peer)[0]

    # -- the offer/answer ------------------------------------------------

    def anchor(self, request, calleeFamily=4):
        """
        Allocate the relay session for a new call.

        @param calleeFamily: 4 or 6, the address family of the device or
            gateway called (the caller's comes from its SDP): a session's
            two sides may differ, the relay bridges IPv4 and IPv6.

        @return: the L{Anchor}, or L{None} when the body cannot be relayed.
        @raise MediaExhausted: the relay is full (the call fails with 503).
        """
        callId = request.callId
        anchor = self.anchors.get(callId)
        if anchor is not None:
            return anchor
        try:
            sdp = SessionDescription(request.body)
        except SDPError as e:
            log.info("SIP: not relaying {callId}: {error}", callId=callId, error=e)
            return None
        streams = max(1, len(sdp.streams))
        callerFamily = 4
        for stream in sdp.streams:
            if stream.address and ":" in stream.address:
                callerFamily = 6
        try:
            session = self.relay.allocate(callId, legs=2 * streams,
                                          families=[callerFamily, calleeFamily] * streams)
        except MediaExhausted:
            self.refused += 1
            raise
        anchor = Anchor(session, callId, request.fromAddr.tag, streams)
        self.anchors[callId] = anchor
        self.relayed += 1
        session.whenReleased().addBoth(self._released, anchor)
        return anchor

    def _released(self, reason, anchor):
        if self.anchors.get(anchor.callId) is anchor:
            del self.anchors[anchor.callId]
        return None

    def rewrite(self, anchor, message, fromSide, toPeer):
        """
        Rewrite the SDP of C{message}, sent by side C{fromSide} (0 caller, 1
        callee), for its receiver C{toPeer}: record where the sender wants
        media and point the receiver at the relay ports facing it.
        """
        if not isSDP(message):
            return
        try:
            sdp = SessionDescription(message.body)
        except SDPError as e:
            log.info("SIP: SDP of {callId} left as it is: {error}", callId=anchor.callId,
                     error=e)
            return
        session = anchor.session
        if session.released:
            return
        for i, stream in enumerate(sdp.streams[:anchor.streams]):
            if stream.port and stream.address:
                try:
                    session.setRemote(2 * i + fromSide, stream.address, stream.port,
                                      stream.rtcpPort)
                except (ValueError, IndexError):
                    pass
        toSide = 1 - fromSide
        ports = anchor.ports(toSide)
        message.body = sdp.rewrite(self.addressFacing(toPeer, anchor, toSide), ports)

    def sideOf(self, anchor, request):
        """@return: 0 if C{request} comes from the caller's side, else 1."""
        return 0 if request.fromAddr.tag == anchor.callerTag else 1

    def release(self, callId):
        """End the relay session of a call (BYE, failure, CANCEL)."""
        anchor = self.anchors.pop(callId, None)
        if anchor is not None:
            anchor.session.release()

    def stop(self):
        for callId in list(self.anchors):
            self.release(callId)
