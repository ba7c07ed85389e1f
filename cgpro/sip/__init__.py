"""
cgpro.sip: the SIP stack (RFC 3261).

Layered after Kamailio's core: L{cgpro.sip.message} is the message layer
(parser, serializer, stream framing) and knows nothing of transports,
transactions or routing, so it can be tested and fuzzed on its own.
"""
