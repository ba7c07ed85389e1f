# twistd -n -y tac/cgpro.tac
#
# The same server as `twistd -n cgpro`, configured from the environment:
#   CGPRO_BASE                 base folder (default ./var)
#   CGPRO_PORT_OFFSET          added to every listener port (default 0)
#   CGPRO_DOMAIN               Main Domain name on the first start
#   CGPRO_POSTMASTER_PASSWORD  postmaster password on the first start
#   CGPRO_MEDIA_PORTS          RTP Port Allocation range LOW-HIGH
import os

from twisted.application import service

from cgpro.service import StartupError
from cgpro.tap import makeLoggedService

try:
    root = makeLoggedService(
        base=os.environ.get("CGPRO_BASE", "var"),
        portOffset=int(os.environ.get("CGPRO_PORT_OFFSET", "0")),
        domain=os.environ.get("CGPRO_DOMAIN"),
        postmasterPassword=os.environ.get("CGPRO_POSTMASTER_PASSWORD"),
        mediaPorts=os.environ.get("CGPRO_MEDIA_PORTS"),
    )
except StartupError as e:
    raise SystemExit("cgpro: cannot start: %s" % (e,))

application = service.Application("cgpro")
root.setServiceParent(application)
