# -*- test-case-name: tests.core.test_names -*-
"""
Object and domain names: one place for the rules every module applies.

CommuniGate names are case-insensitive, so every name is folded to lower case
once, when it enters the server, and kept in that canonical form on disk and
in memory.  Object names (accounts, aliases, forwarders, groups) use Latin
letters, digits, C{_}, C{-} and C{.}, never start or end with C{.}, and are at
most 128 characters long; domain names are the same plus the dot-separated
label rules of DNS.
"""

import re

from cgpro.core.errors import BadName

_OBJECT = re.compile(r"^[a-z0-9_-](?:[a-z0-9_.-]{0,126}[a-z0-9_-])?$")
_DOMAIN = re.compile(
    r"^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
    r"(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$"
)


def objectName(name):
    """
    Check and fold an object name.

    @return: the canonical (lower-case) name.
    @raise BadName: if the name breaks the rules.
    """
    if not isinstance(name, str):
        raise BadName("name must be a string")
    canonical = name.lower()
    if not _OBJECT.match(canonical) or ".." in canonical:
        raise BadName("illegal object name: %s" % (name,))
    return canonical


def domainName(name):
    """
    Check and fold a domain name.

    @return: the canonical (lower-case) domain name.
    @raise BadName: if the name is not a valid domain name.
    """
    if not isinstance(name, str):
        raise BadName("domain name must be a string")
    canonical = name.lower().rstrip(".")
    if not _DOMAIN.match(canonical):
        raise BadName("illegal domain name: %s" % (name,))
    return canonical


def splitAddress(address, defaultDomain):
    """
    Split C{name} or C{name@domain} into folded parts.

    @return: C{(name, domain)}; C{domain} is C{defaultDomain} when absent.
    @raise BadName: if either part is malformed.
    """
    if not isinstance(address, str):
        raise BadName("address must be a string")
    if "@" in address:
        name, _, domain = address.rpartition("@")
        return objectName(name), domainName(domain)
    return objectName(address), defaultDomain
