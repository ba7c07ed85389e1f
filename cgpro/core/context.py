# -*- test-case-name: tests.test_service -*-
"""
The server context handed to every protocol module's factory builder.

One object instead of a growing argument list: a module's
C{build(spec, context)} takes what it needs (the directory, the Router, the
reactor) and a test builds a context from fakes.
"""

import time

from zope.interface import implementer

from cgpro import __version__
from cgpro.core.interfaces import IServerContext
from cgpro.core.stats import Catalog


@implementer(IServerContext)
class ServerContext:
    """
    @ivar startTime: when the server started (epoch seconds).
    @ivar mediaPorts: the RTP Port Allocation range C{(low, high)}.
    @ivar portOffset: the offset added to every listener port.
    @ivar tls: the L{cgpro.core.tls.ServerTLS} (certificate, options).
    @ivar queue: the L{IMessageQueue} (C{None} until the queue is built).
    @ivar mailStore: the L{IMailStore}.
    @ivar stats: the L{cgpro.core.stats.Catalog} every module reports to.
    @ivar media: the L{IMediaRelay} (C{None} until it is built).
    @ivar signal: the SIP stack (C{None} until it is built).
    @ivar writer: the server's L{cgpro.core.files.DurableWriter}; every
        module's durable writes join its group commit.
    """

    def __init__(self, directory, router, reactor, base, listeners=None,
                 mediaPorts=(60000, 60099), portOffset=0, tls=None, queue=None,
                 mailStore=None, writer=None):
        self.directory = directory
        self.router = router
        self.reactor = reactor
        self.base = base
        self.listeners = listeners
        self.mediaPorts = mediaPorts
        self.portOffset = portOffset
        self.tls = tls
        self.queue = queue
        self.mailStore = mailStore
        self.writer = writer
        self.signal = None
        self.media = None
        self.stats = Catalog()
        self.version = __version__
        self.startTime = time.time()
