"""
The RTP/RTCP media relay: the proxy and the B2BUA anchor a call's media here.

L{cgpro.media.relay.MediaRelay} is the service (port allocation, sessions,
latching, silence timeouts, limits, statistics).  It forwards packets with
the Cython loop L{cgpro.media._relay} when it was built, otherwise with the
pure-Python L{cgpro.media._fallback}; both behave the same.
"""
