# -*- test-case-name: tests.test_tap -*-
"""
The C{twistd cgpro} command: options and C{makeService}.

Everything is built by L{cgpro.service.makeRootService}; this module only
turns the command line (and the environment) into its arguments and
reports configuration errors as one clear line instead of a traceback.
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
    from cgpro.service import StartupError, makeRootService

    try:
        return makeRootService(
            base=options["base"],
            etc=options["etc"],
            portOffset=options["port-offset"],
            domain=options["domain"],
            postmasterPassword=options["postmaster-password"],
            mediaPorts=options["media-ports"],
        )
    except StartupError as e:
        raise SystemExit("cgpro: cannot start: %s" % (e,))
