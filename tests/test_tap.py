# -*- test-case-name: tests.test_tap -*-
"""
Tests for L{cgpro.tap}: the server C{twistd cgpro} builds carries its log.
"""

import io
import os
import shutil
import tempfile

from twisted.internet.testing import MemoryReactorClock
from twisted.logger import Logger, LogPublisher
from twisted.trial.unittest import SynchronousTestCase

from cgpro.tap import makeLoggedService


class UDPMemoryReactor(MemoryReactorClock):
    """
    L{MemoryReactorClock} with a C{listenUDP} that opens nothing.
    """

    def listenUDP(self, port, protocol, interface="", maxPacketSize=8192):
        return self.listenTCP(port, None, interface=interface)


class LoggedServiceTests(SynchronousTestCase):
    """
    L{makeLoggedService} adds the log service and observer to the server.
    """

    def test_log(self):
        """
        The root has a C{log} child following the directory's settings;
        events reach C{<base>/Logs/cgpro.log}; the shutdown closes it.
        """
        base = tempfile.mkdtemp(prefix="cgpro-tap-")
        self.addCleanup(shutil.rmtree, base, True)
        reactor = UDPMemoryReactor()
        publisher = LogPublisher()
        root = makeLoggedService(base=base, reactor=reactor, publisher=publisher,
                                 domain="main.dom", postmasterPassword="pw", out=io.StringIO())
        logService = root.getServiceNamed("log")
        self.assertIs(root.context.logService, logService)
        self.assertIs(logService.directory, root.context.directory)
        self.successResultOf(root.context.directory.setServerDict(
            "Main", {"LogLevels": {"cgpro.test": "debug"}}, update=True))
        Logger(namespace="cgpro.test", observer=publisher).debug("visible")
        with open(os.path.join(base, "Logs", "cgpro.log")) as f:
            self.assertIn("debug [cgpro.test] visible", f.read())
        logService.startService()
        for function, args, kwargs in reactor.triggers["after"]["shutdown"]:
            function(*args, **kwargs)
        self.assertFalse(logService.attached)
