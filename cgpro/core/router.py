# -*- test-case-name: tests.core.test_router -*-
"""
The Router: where every address the server handles goes.

Envelope recipients, Signal targets and login names all pass through
L{Router.route}, so that Aliases, Forwarders and Router Table records work
alike for mail, calls and logins.  The result is a L{Route}: the module
that takes the item (C{LOCAL}, C{PBX}, C{LIST}, C{SMTP}, C{SIP}, C{PIPE},
C{ERROR}, C{NULL}), its queue and the address to use there.

The Router Table (C{router.md} section 2) is parsed once by L{parseTable}
into L{Record}s whose patterns are compiled to anchored regular
expressions at parse time, so routing an address is a scan over
pre-compiled matchers with no regular expression compilation.

Parsing the table (L{parseTable}, L{Record}, L{RouterTableError}) is the
job of L{cgpro.core.routertable}; this module evaluates the parsed records
and re-exports those names.

This module is in layer 0: it imports only the standard library, Twisted,
zope.interface and L{cgpro.core.interfaces}.
"""

import re

from twisted.logger import Logger

from cgpro.core.interfaces import IRoutingDirectory
from cgpro.core.routertable import (
    KINDS,
    Record,
    RouterTableError,
    _ALL_KINDS,
    _APPLICATION,
    parseTable,
)

__all__ = [
    "KINDS",
    "MAX_PASSES",
    "RouterTableError",
    "Record",
    "Route",
    "Router",
    "parseTable",
]

_log = Logger()

#: At most this many Router Table passes per L{Router.route} call, then
#: the result is C{ERROR "routing loop"} (C{router.md} 3.4).
MAX_PASSES = 16

_SEVEN_NN = re.compile(r"7[0-9][0-9]")

_IPV4 = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")

_VIA_SUFFIXES = ("._via", ".via", ".smtp")


class Route:
    """
    The result of routing one address.

    C{(module, queue, address)} is the triple of C{router.md} section 3,
    which the CLI C{ROUTE} command returns; the other attributes save the
    consumers (queue, SIP, login) from parsing it again.

    @ivar module: C{"LOCAL"}, C{"PBX"}, C{"LIST"}, C{"SMTP"}, C{"SIP"},
        C{"PIPE"}, C{"ERROR"}, or C{"NULL"} (discard: a C{null} Forwarder
        or Router target; queue and address are empty).
    @ivar queue: the queue: canonical C{account@domain} for C{LOCAL} /
        C{PBX} / C{LIST}, the destination domain or host for C{SMTP} /
        C{SIP}, C{""} for C{ERROR} and C{NULL}.
    @ivar address: the address to use in that module (for C{ERROR}, the
        error text).
    @ivar relayAllowed: whether an applied Router record (C{Relay:} /
        C{RelayAll:}), a Forwarder or a Domain reroute setting allows
        relaying this address whatever the sender.
    @ivar app: the application name for C{PBX}, else C{None}.
    @ivar params: the application parameters (C{list} of C{str}).
    @ivar account: the canonical C{name@domain} for C{LOCAL}, C{PBX} and
        C{LIST}, else C{None}.
    @ivar original: the address given to L{Router.route}.
    @ivar rewritten: the last address the Router Table was applied to, or
        the application target a record produced.
    """

    __slots__ = ("module", "queue", "address", "relayAllowed", "app",
                 "params", "account", "original", "rewritten")

    def __init__(self, module, queue, address, relayAllowed=False, app=None,
                 params=None, account=None, original="", rewritten=""):
        self.module = module
        self.queue = queue
        self.address = address
        self.relayAllowed = relayAllowed
        self.app = app
        self.params = list(params) if params else []
        self.account = account
        self.original = original
        self.rewritten = rewritten

    def asTriple(self):
        """
        @return: C{(module, queue, address)}, as the CLI C{ROUTE} shows it.
        """
        return (self.module, self.queue, self.address)

    def __eq__(self, other):
        if not isinstance(other, Route):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name)
                   for name in self.__slots__)

    def __repr__(self):
        extra = ""
        if self.app is not None:
            extra += f" app={self.app!r} params={self.params!r}"
        if self.relayAllowed:
            extra += " relayAllowed"
        return (f"<Route {self.module}({self.queue}){self.address}"
                f"{extra} original={self.original!r}"
                f" rewritten={self.rewritten!r}>")


class _Context:
    """
    The state of one L{Router.route} call, shared by its re-routings
    (Forwarders, Telnums, reroute settings) so they all count against one
    pass budget and one relay flag.
    """

    __slots__ = ("kind", "trusted", "passes", "relay", "rerouted",
                 "rewritten", "original", "unprefixedRemote")

    def __init__(self, kind, trusted, original):
        self.kind = kind
        self.trusted = trusted
        self.original = original
        self.passes = 0
        self.relay = False
        self.rerouted = False
        self.rewritten = original
        self.unprefixedRemote = []


class _Loop(Exception):
    """
    Raised inside the Router when the pass budget is exhausted.
    """


class Router:
    """
    Routes addresses with a Router Table and a directory.

    @ivar directory: the L{IRoutingDirectory} local objects are looked up
        in.
    @ivar tableText: the Router Table text as last set.
    @ivar records: the parsed table (C{tuple} of L{Record}).
    """

    def __init__(self, directory, table=""):
        """
        @param directory: a provider of L{IRoutingDirectory} (an object
            that only has its attributes, such as an
            L{cgpro.core.interfaces.IDirectory} provider, is accepted too).
        @param table: the initial Router Table text.
        @raise TypeError: if C{directory} lacks part of
            L{IRoutingDirectory}.
        @raise RouterTableError: if C{table} is malformed.
        """
        if not IRoutingDirectory.providedBy(directory):
            missing = [name for name in IRoutingDirectory.names()
                       if not hasattr(directory, name)]
            if missing:
                raise TypeError(
                    f"{directory!r} is no routing directory: lacks "
                    + ", ".join(sorted(missing)))
        self.directory = directory
        self.tableText = ""
        self.records = ()
        self._byKind = {kind: () for kind in KINDS}
        self._warned = set()
        self.setTable(table)

    def setTable(self, text):
        """
        Replace the Router Table.

        The text is parsed before anything changes, so a malformed table
        leaves the old one in force.

        @param text: the new table text.
        @raise RouterTableError: if C{text} is malformed.
        """
        records = tuple(parseTable(text))
        byKind = {
            kind: tuple(record for record in records if kind in record.kinds)
            for kind in KINDS
        }
        self.records = records
        self._byKind = byKind
        self._warned = set()
        self.tableText = text

    def route(self, address, kind="MAIL", trusted=True):
        """
        Route one address (C{router.md} section 3).

        @param address: the address as received (C{local@domain}, a bare
            name meaning the Main Domain, or a path form).
        @param kind: C{"MAIL"}, C{"ACCESS"} or C{"SIGNAL"}, any case.
        @param trusted: whether the sender may relay anyway (a Client IP
            address or an authenticated user).  An untrusted item routed
            to a remote host without a relay grant is refused
            (C{"relaying prohibited"}), and an untrusted address cannot
            name an application (C{app#account}); only targets can.
        @return: a L{Route}.
        @raise ValueError: for an unknown C{kind}.
        """
        kindName = str(kind).upper()
        if kindName not in _ALL_KINDS:
            raise ValueError(f"unknown routing kind {kind!r}")
        ctx = _Context(kindName, trusted, address)
        text = address.strip()
        if text.startswith("<") and text.endswith(">"):
            text = text[1:-1].strip()
        try:
            result = self._resolve(text, ctx, None,
                                   self._inputApplication(text, trusted),
                                   False)
        except _Loop:
            result = self._error(ctx, "routing loop")
        if result.module in ("SMTP", "SIP"):
            if ctx.unprefixedRemote:
                self._warnUnprefixed(ctx)
            if not trusted and not result.relayAllowed:
                result = self._error(ctx, "relaying prohibited")
        return result

    # -- internals -----------------------------------------------------

    def _warnUnprefixed(self, ctx):
        """
        Log, once per record, that a record without relay prefix routed to
        a remote host: such records are treated as C{NoRelay:}, which the
        administrator may not expect (C{router.md} 2.1).
        """
        for record in ctx.unprefixedRemote:
            if record.line not in self._warned:
                self._warned.add(record.line)
                _log.warn(
                    "router table line {line}: record without relay prefix"
                    " routes to a remote host; treated as NoRelay",
                    line=record.line)

    def _inputApplication(self, text, trusted):
        """
        Decide whether an address that did not come from a target may be
        read as an application address.

        An outside sender must not start applications on behalf of
        arbitrary accounts by naming them, so for him C{app#name} is just a
        name.  A trusted sender may name applications, but only in a local
        domain (or none): C{a#b@remote.example} is an ordinary remote
        mailbox whose name contains C{#}.
        """
        if not trusted:
            return False
        match = _APPLICATION.fullmatch(text)
        if match is None:
            return True
        domain = match.group("domain")
        return (domain is None or domain.lower() == "localhost"
                or self.directory.domainFor(domain) is not None)

    def _make(self, ctx, module, queue, address, **kw):
        return Route(module, queue, address, relayAllowed=ctx.relay,
                     original=ctx.original, rewritten=ctx.rewritten, **kw)

    def _error(self, ctx, text):
        return Route("ERROR", "", text, relayAllowed=ctx.relay,
                     original=ctx.original, rewritten=ctx.rewritten)

    def _normalize(self, text, relativeTo):
        """
        Bring an address to C{local@domain} form.

        Path forms become the percent form C{xxxx%yyyyy@zzzz}, whose
        domain part is the next hop (C{router.md} 1): C{@zzzz:xxxx@yyyyy}
        (C{@a,@b:x@y} gives C{x%y%b@a}) and C{zzzz!yyyyy!xxxx}.  A bare name
        means C{relativeTo}, or the Main Domain.

        @return: C{(address, local, domain)}, or C{None} if malformed.
        """
        if text.startswith("@"):
            colon = text.find(":")
            if colon == -1:
                return None
            hops = [hop.strip().lstrip("@")
                    for hop in text[:colon].split(",")]
            final = text[colon + 1:]
            if not all(hops) or "@" not in final:
                return None
            local = final + "".join("%" + hop for hop in reversed(hops[1:]))
            local = local.replace("@", "%")
            domain = hops[0]
        elif "@" not in text:
            if "!" in text:
                parts = text.split("!")
                if not all(parts):
                    return None
                hosts = parts[:-1]
                local = parts[-1] + "".join(
                    "%" + host for host in reversed(hosts[1:]))
                domain = hosts[0]
            else:
                local = text
                domain = relativeTo or self.directory.mainDomain
        else:
            local, domain = text.rsplit("@", 1)
        if not local or not domain:
            return None
        return local + "@" + domain, local, domain

    def _application(self, ctx, match):
        """
        Resolve an application target C{app[{p1,p2}]#account[@domain]}:
        terminal, only the account is looked up, in the Main Domain when
        the domain is omitted or C{localhost} (C{router.md} 2.5, 3.4).
        """
        domain = match.group("domain")
        if domain is None or domain.lower() == "localhost":
            domain = self.directory.mainDomain
        local = self.directory.domainFor(domain)
        if local is None:
            return self._error(ctx, "unknown user")
        found = self.directory.findObject(match.group("account") + "@" + local)
        if found is None or found[0] != "account":
            return self._error(ctx, "unknown user")
        canonical = found[1]
        params = match.group("params")
        paramList = params.split(",") if params else []
        text = match.group("app")
        if params is not None:
            text += "{" + params + "}"
        return self._make(ctx, "PBX", canonical, text, app=match.group("app"),
                          params=paramList, account=canonical)

    def _resolve(self, text, ctx, relativeTo, allowApplication, allowNull):
        """
        Route C{text} from the top of the table, then by default
        processing.

        @param relativeTo: the domain a bare name means (for Forwarder
            targets and reroute settings), or C{None} for the Main Domain.
        @param allowApplication: whether C{text} may be an application
            address: true for administrator-written targets and trusted
            input, false for text an outside sender controls.
        @param allowNull: whether C{null} means "discard" (targets only).
        @raise _Loop: when the pass budget is exhausted.
        """
        table = self._byKind[ctx.kind]
        while True:
            if allowNull and text.lower() == "null":
                return Route("NULL", "", "", relayAllowed=ctx.relay,
                             original=ctx.original, rewritten=ctx.rewritten)
            if allowApplication:
                application = _APPLICATION.fullmatch(text)
                if application is not None:
                    ctx.rewritten = text
                    return self._application(ctx, application)
            normal = self._normalize(text, relativeTo)
            relativeTo = None
            if normal is None:
                ctx.rewritten = text
                return self._error(ctx, "invalid address")
            address, local, domain = normal
            ctx.rewritten = address
            ctx.passes += 1
            if ctx.passes > MAX_PASSES:
                raise _Loop()
            if domain.lower() == "telnum":
                owner = self.directory.findTelnum(local)
                if owner is not None:
                    text = owner
                    allowApplication = allowNull = False
                    continue
            lowered = address.lower()
            for record in table:
                output = record.rewrite(address, local, domain)
                if output is None:
                    continue
                if record.grantsRelay:
                    ctx.relay = True
                elif record.relay is None:
                    ctx.unprefixedRemote.append(record)
                if output.lower() == lowered:
                    # Fixed point (router.md 3.4): the pass ends here.
                    return self._default(ctx, address, local, domain)
                text = output
                allowApplication = record.isApplication
                allowNull = record.isNull
                break
            else:
                return self._default(ctx, address, local, domain)

    def _default(self, ctx, address, local, domain):
        """
        Default processing after the table (C{router.md} 3.6).
        """
        lowered = domain.lower()
        if lowered == "telnum":
            return self._error(ctx, "unknown telnum")
        if lowered == "localhost":
            localDomain = self.directory.domainFor(self.directory.mainDomain)
        else:
            localDomain = self.directory.domainFor(domain)
        if localDomain is None:
            return self._remote(ctx, address, local, domain)
        if "%" in local:
            # Percent hack addressed to us: strip our hop, route the rest.
            head, _, tail = local.rpartition("%")
            stripped = head + "@" + tail
            return self._resolve(
                stripped, ctx, None,
                self._inputApplication(stripped, ctx.trusted), False)
        return self._local(ctx, local, localDomain)

    def _remote(self, ctx, address, local, domain):
        """
        Route to another system: SMTP for mail, SIP for signals; a login
        name in a remote domain is unknown.
        """
        if ctx.kind == "ACCESS":
            return self._error(ctx, "unknown user")
        lowered = domain.lower()
        for suffix in _VIA_SUFFIXES:
            if lowered.endswith(suffix) and "%" in local \
                    and len(lowered) > len(suffix):
                # name%dom@host._via: relay to host, deliver to name@dom.
                host = lowered[:-len(suffix)]
                head, _, tail = local.rpartition("%")
                address = head + "@" + tail
                lowered = host
                break
        if ctx.kind == "SIGNAL":
            if lowered.startswith("[") and lowered.endswith("]") \
                    and _IPV4.fullmatch(lowered[1:-1]):
                lowered = lowered[1:-1]
            return self._make(ctx, "SIP", lowered, address)
        if _IPV4.fullmatch(lowered):
            lowered = "[" + lowered + "]"
        return self._make(ctx, "SMTP", lowered, address)

    def _local(self, ctx, local, domain):
        """
        Look a name up in a local Domain: Account (Aliases resolve to it),
        Forwarder, Group; the C{7nn} Signal rule; then the Domain's
        C{...ToUnknown} setting.
        """
        found = self.directory.findObject(local + "@" + domain)
        if found is not None:
            objectKind, canonical, value = found
            if objectKind == "account":
                name = canonical.split("@", 1)[0]
                return self._make(ctx, "LOCAL", canonical, name,
                                  account=canonical)
            if objectKind == "forwarder":
                ctx.relay = True
                return self._resolve(str(value).strip(), ctx, domain, True,
                                     True)
            if objectKind in ("group", "list"):
                disabled = {"MAIL": "EmailDisabled",
                            "SIGNAL": "SignalDisabled"}.get(ctx.kind)
                settings = value if isinstance(value, dict) else {}
                if ctx.kind == "ACCESS" or (
                        str(settings.get(disabled, "")).upper() == "YES"):
                    return self._error(ctx, "unknown user")
                return self._make(ctx, "LIST", canonical, "*",
                                  account=canonical)
        if ctx.kind == "SIGNAL" and _SEVEN_NN.fullmatch(local):
            pbx = self.directory.findObject("pbx@" + domain)
            if pbx is not None and pbx[0] == "account":
                return self._make(ctx, "LOCAL", pbx[1],
                                  pbx[1].split("@", 1)[0], account=pbx[1])
        return self._unknown(ctx, domain)

    def _unknown(self, ctx, domain):
        """
        Apply the Domain's C{MailToUnknown} / C{SignalToUnknown} /
        C{AccessToUnknown} setting: C{Rejected} (the default), or
        C{Rerouted} / C{Accepted} to the matching C{...RerouteAddress}
        (a bare name meaning that Domain).  A reroute target that is
        itself unknown is rejected rather than rerouted again.
        """
        prefix = {"MAIL": "Mail", "SIGNAL": "Signal",
                  "ACCESS": "Access"}[ctx.kind]
        settings = self.directory.effectiveDomainSettings(domain) or {}
        mode = str(settings.get(prefix + "ToUnknown", "Rejected")).lower()
        if mode not in ("rerouted", "accepted") or ctx.rerouted:
            return self._error(ctx, "unknown user")
        target = str(settings.get(prefix + "RerouteAddress", "")).strip()
        if not target:
            return self._error(ctx, "unknown user")
        ctx.rerouted = True
        ctx.relay = True
        return self._resolve(target, ctx, domain, True, True)
