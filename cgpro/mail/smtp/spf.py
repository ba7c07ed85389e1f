# -*- test-case-name: tests.mail.smtp.test_spf -*-
"""
A compact SPF evaluator (RFC 7208) for the MAIL FROM identity.

L{SPFChecker.check} implements C{check_host()}: the record is fetched
(exactly one C{v=spf1} TXT record), its mechanisms (C{all}, C{include},
C{a}, C{mx}, C{ptr}, C{ip4}, C{ip6}, C{exists}) are evaluated in order,
then C{redirect=}; macros (section 7) are expanded.  The limits of
section 4.6.4 apply: at most 10 mechanisms or modifiers that query DNS,
at most 10 names per C{mx}/C{ptr}, at most 2 void lookups, so a hostile
record costs a bounded number of queries.  C{exp=} is not fetched: the
explanation is our own text.

DNS goes through L{cgpro.mail.smtp.dnsquery.lookup}, with an injectable
resolver and a deadline per query; a failed query is C{temperror}.
"""

import ipaddress
import re
import time

from twisted.internet import defer

from cgpro.mail.smtp.dnsquery import DNSTemporaryError, lookup

#: Results (section 2.6).
NONE, NEUTRAL, PASS, FAIL, SOFTFAIL, TEMPERROR, PERMERROR = (
    "none", "neutral", "pass", "fail", "softfail", "temperror", "permerror")

_QUALIFIERS = {"+": PASS, "-": FAIL, "~": SOFTFAIL, "?": NEUTRAL}
_MECHANISMS = ("all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists")
_DNS_TERMS = ("include", "a", "mx", "ptr", "exists", "redirect")
_VERSION = re.compile(r"v=spf1(?: |$)", re.IGNORECASE)
_MODIFIER = re.compile(r"([A-Za-z][A-Za-z0-9_.\-]*)=(.*)", re.DOTALL)
_MACRO = re.compile(r"%(?:\{([slodiphcrtvSLODIPHCRTV])([0-9]*)(r?)([.\-+,/_=]*)\}|(.))")
_CIDR = re.compile(r"^(.*?)(?:/([0-9]{1,2}))?(?://([0-9]{1,3}))?$", re.DOTALL)
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_\-]*[A-Za-z0-9_])?")

MAX_DNS_TERMS = 10
MAX_VOID = 2
MAX_NAMES = 10


class _PermError(Exception):
    pass


class _TempError(Exception):
    pass


class SPFResult:
    """
    @ivar result: one of the result names (C{"pass"}, C{"fail"}, ...).
    @ivar domain: the domain whose policy gave it.
    @ivar reason: a short text for logs and the Received-SPF comment.
    """

    def __init__(self, result, domain, reason=""):
        self.result = result
        self.domain = domain
        self.reason = reason

    def __repr__(self):
        return "<SPFResult %s %s %r>" % (self.result, self.domain, self.reason)


class _State:
    """
    The counters one C{check_host()} evaluation and its includes share.
    """

    def __init__(self, ip, sender, helo):
        self.ip = ip
        self.sender = sender
        self.helo = helo
        self.dnsTerms = 0
        self.voids = 0


def isValidDomain(domain):
    """
    Section 4.3: a domain must be a multi-label FQDN of DNS labels.
    """
    domain = domain.rstrip(".")
    labels = domain.split(".")
    return (0 < len(domain) <= 253 and len(labels) > 1
            and all(len(label) <= 63 and _LABEL.fullmatch(label) for label in labels))


class SPFChecker:
    """
    @ivar resolver: the resolver (see L{cgpro.mail.smtp.dnsquery}).
    @ivar timeout: seconds per DNS query.
    @ivar receiver: our host name, for C{%{r}}.
    """

    def __init__(self, resolver, clock, timeout=10, receiver="localhost"):
        self.resolver = resolver
        self.clock = clock
        self.timeout = timeout
        self.receiver = receiver

    def check(self, ip, sender, helo):
        """
        Evaluate the SPF policy of the MAIL FROM identity.

        @param ip: the client address (C{str}).
        @param sender: the MAIL FROM address, C{""} for the null sender
            (then C{postmaster@helo} is checked, section 2.4).
        @param helo: the HELO/EHLO name.
        @return: L{Deferred} firing with an L{SPFResult} (never failing).
        """
        if not sender:
            sender = "postmaster@" + helo
        local, _, domain = sender.rpartition("@")
        if not local:
            local = "postmaster"
        sender = local + "@" + domain
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return defer.succeed(SPFResult(NONE, domain, "no usable client address"))
        if address.version == 6 and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if not isValidDomain(domain):
            return defer.succeed(SPFResult(NONE, domain, "no valid domain to check"))
        state = _State(address, sender, helo)
        d = self._checkHost(state, domain)

        def unexpected(failure):
            return SPFResult(TEMPERROR, domain, failure.getErrorMessage())

        return d.addErrback(unexpected)

    # -- check_host() --------------------------------------------------

    @defer.inlineCallbacks
    def _checkHost(self, state, domain):
        try:
            terms = yield self._record(state, domain)
            if terms is None:
                return SPFResult(NONE, domain, "no SPF record")
            result = yield self._evaluate(state, domain, terms)
        except _PermError as e:
            return SPFResult(PERMERROR, domain, str(e))
        except (_TempError, DNSTemporaryError) as e:
            return SPFResult(TEMPERROR, domain, str(e))
        return result

    def _query(self, kind, name):
        return lookup(self.resolver, kind, name, self.timeout, self.clock)

    @defer.inlineCallbacks
    def _record(self, state, domain):
        """
        @return: the terms of the one SPF record of C{domain}, or C{None}.
        """
        texts = yield self._query("TXT", domain)
        records = [t for t in texts if _VERSION.match(t)]
        if not records:
            return None
        if len(records) > 1:
            raise _PermError("more than one SPF record for %s" % (domain,))
        return records[0].split()[1:]

    @defer.inlineCallbacks
    def _evaluate(self, state, domain, terms):
        redirect = None
        seen = set()
        directives = []
        for term in terms:
            modifier = _MODIFIER.fullmatch(term)
            if modifier and modifier.group(1).lower() not in _MECHANISMS:
                name = modifier.group(1).lower()
                if name in ("redirect", "exp"):
                    if name in seen:
                        raise _PermError("%s= given twice" % (name,))
                    seen.add(name)
                    if name == "redirect":
                        redirect = modifier.group(2)
                continue
            qualifier = PASS
            if term[:1] in _QUALIFIERS:
                qualifier = _QUALIFIERS[term[0]]
                term = term[1:]
            name, sep, argument = _splitMechanism(term)
            if name not in _MECHANISMS:
                raise _PermError("unknown mechanism %r" % (term,))
            directives.append((qualifier, name, sep, argument, term))
        for qualifier, name, sep, argument, term in directives:
            if name in _DNS_TERMS:
                self._countTerm(state)
            matched = yield self._mechanism(state, domain, name, sep, argument)
            if matched:
                return SPFResult(qualifier, domain, "matched %s" % (term,))
        if redirect is not None:
            self._countTerm(state)
            target = self._expand(state, domain, redirect)
            if not isValidDomain(target):
                raise _PermError("invalid redirect target %r" % (target,))
            result = yield self._checkHost(state, target)
            if result.result == NONE:
                return SPFResult(PERMERROR, target, "redirect to a domain without SPF record")
            return result
        return SPFResult(NEUTRAL, domain, "no mechanism matched")

    def _countTerm(self, state):
        state.dnsTerms += 1
        if state.dnsTerms > MAX_DNS_TERMS:
            raise _PermError("more than %d DNS-querying terms" % (MAX_DNS_TERMS,))

    def _void(self, state, answers):
        if not answers:
            state.voids += 1
            if state.voids > MAX_VOID:
                raise _PermError("more than %d void lookups" % (MAX_VOID,))
        return answers

    @defer.inlineCallbacks
    def _mechanism(self, state, domain, name, sep, argument):
        ip = state.ip
        if name == "all":
            if sep:
                raise _PermError("all takes no argument")
            return True
        if name in ("ip4", "ip6"):
            if sep != ":":
                raise _PermError("%s needs a network" % (name,))
            try:
                network = ipaddress.ip_network(argument, strict=False)
            except ValueError:
                raise _PermError("invalid %s network %r" % (name, argument))
            if network.version != (4 if name == "ip4" else 6):
                raise _PermError("invalid %s network %r" % (name, argument))
            return ip.version == network.version and ip in network
        if name == "include":
            if sep != ":":
                raise _PermError("include needs a domain")
            target = self._expand(state, domain, argument)
            if not isValidDomain(target):
                raise _PermError("invalid include target %r" % (target,))
            result = yield self._checkHost(state, target)
            if result.result == PASS:
                return True
            if result.result == TEMPERROR:
                raise _TempError(result.reason)
            if result.result in (PERMERROR, NONE):
                raise _PermError("include:%s gave %s" % (target, result.result))
            return False
        if sep == ":":
            spec, cidr4, cidr6 = _splitCidr(argument)
        else:
            spec, cidr4, cidr6 = _splitCidr(sep + argument)
        target = self._expand(state, domain, spec) if spec else domain
        if name in ("a", "mx", "exists") and not isValidDomain(target):
            raise _PermError("invalid domain %r" % (target,))
        if name == "exists":
            if sep != ":" or cidr4 is not None or cidr6 is not None:
                raise _PermError("exists needs a domain")
            answers = self._void(state, (yield self._query("A", target)))
            return bool(answers)
        prefix = cidr4 if ip.version == 4 else cidr6
        if prefix is None:
            prefix = 32 if ip.version == 4 else 128
        if name == "a":
            return (yield self._addressMatches(state, target, prefix, countVoid=True))
        if name == "mx":
            exchanges = self._void(state, (yield self._query("MX", target)))
            if len(exchanges) > MAX_NAMES:
                raise _PermError("more than %d MX names" % (MAX_NAMES,))
            for _, host in sorted(exchanges):
                if (yield self._addressMatches(state, host, prefix, countVoid=False)):
                    return True
            return False
        # ptr (deprecated, section 5.5): validated names ending in target.
        names = yield self._query("PTR", _reverse(ip))
        for host in names[:MAX_NAMES]:
            if host.lower() == target.lower() or host.lower().endswith("." + target.lower()):
                if (yield self._addressMatches(state, host, None, countVoid=False)):
                    return True
        return False

    @defer.inlineCallbacks
    def _addressMatches(self, state, host, prefix, countVoid):
        ip = state.ip
        addresses = yield self._query("A" if ip.version == 4 else "AAAA", host)
        if countVoid:
            self._void(state, addresses)
        for text in addresses:
            try:
                if prefix is None:
                    if ipaddress.ip_address(text) == ip:
                        return True
                elif ip in ipaddress.ip_network("%s/%d" % (text, prefix), strict=False):
                    return True
            except ValueError:
                continue
        return False

    # -- macros (section 7) --------------------------------------------

    def _expand(self, state, domain, spec):
        """
        Expand the macros of a domain-spec.

        @raise _PermError: for a malformed macro.
        """
        ip = state.ip
        local, _, senderDomain = state.sender.rpartition("@")
        values = {
            "s": state.sender,
            "l": local,
            "o": senderDomain,
            "d": domain,
            "h": state.helo,
            "v": "in-addr" if ip.version == 4 else "ip6",
            "p": "unknown",
            "r": self.receiver,
            "c": str(ip),
            "t": str(int(time.time())),
        }
        if ip.version == 4:
            values["i"] = str(ip)
        else:
            values["i"] = ".".join(ip.exploded.replace(":", ""))

        def replace(match):
            letter, digits, reverse, delimiters, escape = match.groups()
            if escape is not None:
                if escape == "%":
                    return "%"
                if escape == "_":
                    return " "
                if escape == "-":
                    return "%20"
                raise _PermError("invalid macro %%%s" % (escape,))
            value = values[letter.lower()]
            parts = re.split("[" + re.escape(delimiters or ".") + "]", value)
            if reverse:
                parts.reverse()
            if digits:
                count = int(digits)
                if count == 0:
                    raise _PermError("macro with zero labels")
                parts = parts[-count:]
            return ".".join(parts)

        if "%" in _MACRO.sub("", spec):
            raise _PermError("invalid macro in %r" % (spec,))
        expanded = _MACRO.sub(replace, spec)
        while len(expanded) > 253 and "." in expanded:
            expanded = expanded.split(".", 1)[1]
        return expanded


def _splitMechanism(term):
    """
    @return: C{(name, separator, argument)} with C{separator} C{":"},
        C{"/"} or C{""}.
    """
    for index, char in enumerate(term):
        if char in ":/":
            return term[:index].lower(), char, term[index + 1:]
    return term.lower(), "", ""


def _splitCidr(text):
    """
    Split C{domain-spec/cidr4//cidr6}.

    @return: C{(spec, cidr4 or None, cidr6 or None)}.
    @raise _PermError: for prefix lengths out of range.
    """
    match = _CIDR.match(text)
    spec, cidr4, cidr6 = match.groups()
    if cidr4 is not None:
        cidr4 = int(cidr4)
        if cidr4 > 32:
            raise _PermError("ip4 prefix %d > 32" % (cidr4,))
    if cidr6 is not None:
        cidr6 = int(cidr6)
        if cidr6 > 128:
            raise _PermError("ip6 prefix %d > 128" % (cidr6,))
    return spec, cidr4, cidr6


def _reverse(ip):
    if ip.version == 4:
        return ".".join(reversed(str(ip).split("."))) + ".in-addr.arpa"
    return ".".join(reversed(ip.exploded.replace(":", ""))) + ".ip6.arpa"


def receivedSPF(result, ip, sender, helo, receiver):
    """
    The C{Received-SPF:} header field of RFC 7208 section 9.1.

    @return: the field with its CRLF, as C{bytes}.
    """
    identity = sender or "postmaster@" + helo
    comments = {
        PASS: "domain of %s designates %s as permitted sender",
        FAIL: "domain of %s does not designate %s as permitted sender",
        SOFTFAIL: "domain of transitioning %s does not designate %s as permitted sender",
        NEUTRAL: "%s is neither permitted nor denied by domain of %s",
        NONE: "domain of %s does not provide an SPF record (client %s)",
    }
    template = comments.get(result.result)
    if template is None:
        comment = "error in processing during lookup of %s: %s" % (identity, result.reason)
    elif result.result == NEUTRAL:
        comment = template % (ip, identity)
    else:
        comment = template % (identity, ip)
    value = "%s (%s: %s) client-ip=%s; envelope-from=%s; helo=%s;" % (
        result.result, receiver, _clean(comment), ip, _quote(sender), _quote(helo))
    return ("Received-SPF: " + value + "\r\n").encode("utf-8", "replace")


def _clean(text):
    return "".join(c if c.isprintable() and c not in "()\\" else "?" for c in text)


def _quote(text):
    if re.fullmatch(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.@]+", text or ""):
        return text
    return '"' + "".join(c if c.isprintable() and c not in '"\\' else "?" for c in text) + '"'
