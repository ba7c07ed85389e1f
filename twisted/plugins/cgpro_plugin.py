"""
twistd plugin: C{twistd -n cgpro --base DIR}.  A pointer only; the work is
in L{cgpro.tap}, imported when the plugin is used, so C{twistd --help} stays
light.
"""

from twisted.application.service import ServiceMaker

cgpro = ServiceMaker(
    "cgpro",
    "cgpro.tap",
    "cgpro: mail, VoIP, IM and CLI/API communications server",
    "cgpro",
)
