# -*- test-case-name: tests.core.test_iplists -*-
"""
Address lists: Client IPs, LAN IPs, blacklisted IPs, ...

CommuniGate keeps each list as one text (lines separated by C{\\e} over the
CLI): an address, a C{network/prefix} or a C{first-last} range per line,
with an optional C{; comment}.  The text is stored as given (so GET returns
what SET received); L{IPList} is its compiled form, which the protocol
modules ask "is this client in the list?".
"""

import ipaddress

from twisted.logger import Logger

log = Logger()

from cgpro.core.errors import CLIError

#: CLI suffix -> key in the server's Main settings.
IP_LISTS = {
    "LANIPS": "LANIPs",
    "CLIENTIPS": "ClientIPs",
    "BLACKLISTEDIPS": "BlacklistedIPs",
    "WHITEHOLEIPS": "WhiteHoleIPs",
    "NATEDIPS": "NATedIPs",
    "DEBUGIPS": "DebugIPs",
    "DENIEDIPS": "DeniedIPs",
}


def parseAddressList(text):
    """
    Check and compile an address list.

    @return: a list of C{ip_network} objects (ranges become networks).
    @raise CLIError: naming the bad line.
    """
    networks = []
    for number, line in enumerate(str(text).replace("\r", "\n").split("\n"), 1):
        entry = line.split(";", 1)[0].strip()
        if not entry:
            continue
        try:
            if "-" in entry:
                first, last = (ipaddress.ip_address(p.strip()) for p in entry.split("-", 1))
                networks.extend(ipaddress.summarize_address_range(first, last))
            else:
                networks.append(ipaddress.ip_network(entry, strict=False))
        except (ValueError, TypeError) as e:
            raise CLIError("address list line %d: %s" % (number, e))
    return networks


class IPList:
    """
    A compiled address list.
    """

    def __init__(self, text=""):
        self.text = text or ""
        self.networks = parseAddressList(self.text)

    def __contains__(self, address):
        """
        @param address: an IPv4 or IPv6 address string (an IPv4-mapped IPv6
            address matches IPv4 entries).
        """
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in net for net in self.networks if net.version == ip.version)


#: Compiled lists by their text: a list is parsed once, not per connection
#: or per SIP request (a handful of texts are ever stored at once).
_compiled = {}


def serverList(directory, key):
    """
    @param key: a value of L{IP_LISTS} (C{"ClientIPs"}, ...).
    @return: the L{IPList} currently stored in the server settings.
    """
    text = directory.getServerDict("Main").get(key, "") or ""
    compiled = _compiled.get(text)
    if compiled is None:
        if len(_compiled) >= 64:
            _compiled.clear()
        compiled = _compiled[text] = IPList(text)
    return compiled


def isClient(directory, ip):
    """
    Whether C{ip} is trusted to relay (seed 000's "Relay to Non-Clients"):
    it is in the Client IPs or the LAN IPs list.  One answer for every
    module (SMTP, SIP).
    """
    try:
        return ip in serverList(directory, "ClientIPs") or ip in serverList(directory, "LANIPs")
    except Exception:
        log.failure("cannot read the Client IPs / LAN IPs lists")
        return False
