# -*- test-case-name: tests.test_tap -*-
"""
The C{twistd cgpro} command: options and C{makeService}.

Everything is built by L{cgpro.service.makeRootService}; this module only
turns the command line (and the environment) into its arguments, adds the
server log (L{makeLoggedService}), and reports configuration errors as one
clear line instead of a traceback.
"""

import os

from twisted.python import usage

from cgpro.core.ports import PortTableError, parseMediaPorts


class Options(usage.Options):
    """
    Options of C{twistd cgpro}.
    """

    synopsis = "[options]"
    longdesc = (
        "Run the cgpro communications server on a base folder. "
        "The first start creates the Main Domain with postmaster and pbx."
    )
    optParameters = [
        ["base", "b", None, "The base folder (default: $CGPRO_BASE or ./var)."],
        ["etc", None, None, "The folder holding ports.conf (default: the shipped one)."],
        ["port-offset", "o", None, "Add N to every listener port (default: $CGPRO_PORT_OFFSET or 0)."],
        ["domain", "d", None, "Main Domain name on the first start (default: $CGPRO_DOMAIN or this host's name)."],
        ["postmaster-password", None, None,
         "postmaster password on the first start (default: $CGPRO_POSTMASTER_PASSWORD, else generated and printed once)."],
        ["media-ports", None, None, "RTP Port Allocation range LOW-HIGH (default: from ports.conf, 60000-60099)."],
    ]

    def postOptions(self):
        env = os.environ
        self["base"] = self["base"] or env.get("CGPRO_BASE") or "var"
        self["domain"] = self["domain"] or env.get("CGPRO_DOMAIN")
        self["postmaster-password"] = self["postmaster-password"] or env.get(
            "CGPRO_POSTMASTER_PASSWORD"
        )
        offset = self["port-offset"] or env.get("CGPRO_PORT_OFFSET") or "0"
        try:
            self["port-offset"] = int(offset)
        except ValueError:
            raise usage.UsageError("--port-offset must be a whole number, not %r" % (offset,))
        if self["media-ports"]:
            try:
                parseMediaPorts(self["media-ports"])
            except PortTableError as e:
                raise usage.UsageError(str(e))


def makeService(options):
    """
    @return: the root service built from C{options}.
    """
    from cgpro.service import StartupError

    try:
        return makeLoggedService(
            base=options["base"],
            etc=options["etc"],
            portOffset=options["port-offset"],
            domain=options["domain"],
            postmasterPassword=options["postmaster-password"],
            mediaPorts=options["media-ports"],
        )
    except StartupError as e:
        raise SystemExit("cgpro: cannot start: %s" % (e,))


def tuneGarbageCollector(threshold=50000):
    """
    Keep Python's cycle collector from stalling the reactor.

    With the default thresholds a server holding many long-lived objects
    (100,000 registrations, account records, queue entries) runs full
    collections every few thousand allocations, each walking all of them:
    under SIP load those pauses of tens to hundreds of milliseconds came
    back as bursts of UDP retransmissions.  What was built at start is
    moved out of the collector's sight (C{gc.freeze}) and the young
    generation is collected every C{threshold} allocations instead of 700;
    measured with SIPp at 750 REGISTER/s: retransmissions 115-201 -> 0,
    mean response time 24-38 ms -> 2-3 ms, CPU per REGISTER -12 %.
    """
    import gc

    gc.freeze()
    gc.set_threshold(threshold, 20, 100)


def makeLoggedService(base="var", reactor=None, publisher=None, **kwargs):
    """
    Build the server with its log (C{<base>/Logs/cgpro.log}, syslog).

    The log observer is added next to twistd's own (which keeps printing
    everything) once the server is built and the directory loaded, so it
    follows the log settings from its first event.  What was logged while
    building is not lost: twistd's log beginner buffers every event until
    logging begins (after C{makeService}) and then replays them to all
    observers, this one included.  The service C{log} (a child of the
    root) closes the file after the reactor has shut down.
    C{tac/cgpro.tac} uses this as well.

    @param kwargs: the rest of L{cgpro.service.makeRootService}'s arguments.
    @raise cgpro.service.StartupError: as L{cgpro.service.makeRootService}.
    @return: the root service; C{root.context.logService} is the
        L{cgpro.core.logconfig.LogService}.
    """
    from cgpro.core.logconfig import LogService
    from cgpro.service import makeRootService

    root = makeRootService(base=base, reactor=reactor, **kwargs)
    tuneGarbageCollector()
    logService = LogService(base, reactor=reactor, publisher=publisher)
    logService.watch(root.context.directory)
    logService.attach()
    root.context.logService = logService
    logService.setServiceParent(root)
    return root
