# -*- test-case-name: tests.sip.test_stack -*-
"""
The C{build(spec, context)} entry point of module C{sip} named in
L{cgpro.core.ports.PROTOCOLS}: every SIP row of the port table (C{sip-udp},
C{sip-tcp}, C{sips}) is served by the one L{SIPStack} of the server, so a
device registered over TCP can be called from a phone on UDP.
"""

from cgpro.sip.stack import SIPStack


def stackFor(context):
    """
    @return: the server's L{SIPStack} (C{context.signal}), made on first
        use when the server was assembled without one (tests, tools).
    """
    stack = getattr(context, "signal", None)
    if stack is None:
        stack = context.signal = SIPStack(context)
        stack.startService()
    return stack


def build(spec, context):
    """
    @param spec: the L{cgpro.core.ports.ListenerSpec} of a C{sip} row.
    @param context: the L{cgpro.core.interfaces.IServerContext}.
    @return: a DatagramProtocol for a UDP row, a server factory for a TCP
        row (an implicit-TLS row is wrapped by the listener manager).
    """
    return stackFor(context).protocolFor(spec)
