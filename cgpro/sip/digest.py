# -*- test-case-name: tests.sip.test_digest -*-
"""
HTTP Digest authentication as SIP uses it (RFC 3261 section 22, RFC 7616,
RFC 8760 for SHA-256).

Nonces are stateless: a nonce is its issue time, a random part and an
HMAC over both and the realm, so any nonce this server issued verifies
without a table, survives a flood of unanswered challenges, and is still
recognized by every process sharing the secret.  Only replay protection
needs state: with C{qop=auth} the highest C{nc} seen is kept per nonce,
and only for nonces whose credentials verified and that are still within
their lifetime (the table is capped; see L{DigestAuthenticator}).

The response is checked before the nonce, so that a right password with
an expired, replayed or foreign nonce (one issued before a restart with a
different secret) gives C{stale}: the phone then retries with the new
nonce instead of prompting its user for a password (RFC 7616 section
3.3).
"""

import binascii
import hashlib
import hmac
import ipaddress
import os
import re
from collections import OrderedDict

from twisted.logger import Logger

from cgpro.core.passwords import digestHA1
from cgpro.sip.uri import SIPParseError, SIPURI, parseURI

log = Logger()

_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}

_paramRe = re.compile(
    r'\s*([A-Za-z0-9_*-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,"]*)\s*(?:,|\Z)', re.S)
_schemeRe = re.compile(r"\s*Digest\s+", re.I)

_TS_LEN = 8      # hex digits of the issue time (good until 2106)
_RAND_LEN = 8    # hex digits of randomness: no two clients share a nonce
_MAC_LEN = 32    # hex digits of HMAC-SHA256 kept (128 bits)
_NONCE_LEN = _TS_LEN + _RAND_LEN + _MAC_LEN


class AuthResult:
    """
    The outcome of L{DigestAuthenticator.verify}.

    @ivar status: C{"ok"}; C{"missing"} (no usable credentials for the
        realm: challenge); C{"stale"} (right password, nonce expired,
        replayed or not ours: challenge with C{stale=true}); C{"failed"}
        (wrong password, unknown user, malformed credentials).
    @ivar account: the canonical C{name@domain} when C{status} is
        C{"ok"}, else L{None}.
    @ivar username: the C{username} parameter as the client gave it, or
        L{None} when there were no credentials.
    """

    __slots__ = ("status", "account", "username")

    def __init__(self, status, account=None, username=None):
        self.status = status
        self.account = account
        self.username = username

    def __repr__(self):
        return "AuthResult(%r, %r, %r)" % (self.status, self.account,
                                           self.username)


def parseCredentials(value):
    """
    Parse one C{Authorization}/C{Proxy-Authorization} value of the Digest
    scheme.

    @return: a L{dict} of lower-case parameter names to unquoted values,
        or L{None} if the scheme is not Digest or the value is malformed.
    """
    m = _schemeRe.match(value)
    if not m:
        return None
    params = {}
    pos, end = m.end(), len(value)
    while pos < end:
        p = _paramRe.match(value, pos)
        if not p or p.end() == pos:
            return None
        raw = p.group(2)
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        params[p.group(1).lower()] = raw
        pos = p.end()
    return params


def _isAddress(host):
    """
    @return: whether C{host} is an IPv4 or IPv6 address literal.
    """
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _quote(text):
    return '"%s"' % (text.replace("\\", "\\\\").replace('"', '\\"'),)


class DigestAuthenticator:
    """
    Issue Digest challenges and verify credentials against an
    L{cgpro.core.interfaces.IDirectory}.

    @ivar failures: number of verifications that ended C{"failed"} (for
        monitoring).
    @ivar nonceLifetime: seconds a nonce is accepted after it was issued.
    @ivar algorithms: the algorithms challenged with, one header each, in
        this order; C{-sess} variants of these are accepted too.  MD5
        comes first by default although RFC 8760 prefers the strongest
        first: SIPp and many deployed phones answer the first challenge
        whatever its algorithm and give up on SHA-256.  Pass
        C{("SHA-256", "MD5")} where every client copes.
    @ivar maxTracked: the most nonces whose C{nc} is remembered at once.
    @ivar strictURI: whether the C{uri} parameter must be the
        Request-URI (see L{_uriMatches}).
    """

    def __init__(self, directory, reactor, secret=None, nonceLifetime=300,
                 algorithms=("MD5", "SHA-256"), maxTracked=100000,
                 strictURI=False):
        """
        @param directory: provides C{resolveLogin}, C{digestHA1} and
            optionally C{getPassword}.
        @param reactor: an L{twisted.internet.interfaces.IReactorTime}.
        @param secret: the HMAC key (L{bytes} or L{str}); random by
            default, so nonces of a previous run come back C{stale}.
        """
        for algorithm in algorithms:
            if algorithm not in _HASHES:
                raise ValueError("unsupported digest algorithm %r" % (algorithm,))
        self.directory = directory
        self.reactor = reactor
        if secret is None:
            secret = os.urandom(32)
        elif isinstance(secret, str):
            secret = secret.encode("utf-8")
        self._secret = secret
        self.nonceLifetime = nonceLifetime
        self.algorithms = tuple(algorithms)
        self.maxTracked = maxTracked
        self.strictURI = strictURI
        self.failures = 0
        # nonce -> [issue time, highest nc], oldest first use first.
        self._counts = OrderedDict()
        # Issue time of the newest nonce evicted to keep the table small:
        # an untracked nonce issued no later may have been used already.
        self._evictedUpTo = -1

    # -- nonces ----------------------------------------------------------

    def _mac(self, stamp, realm):
        digest = hmac.new(self._secret, (stamp + ":" + realm).encode("utf-8"),
                          hashlib.sha256).hexdigest()
        return digest[:_MAC_LEN]

    def makeNonce(self, realm):
        """
        @return: a fresh nonce for C{realm}, bound to the current time.
        """
        now = int(self.reactor.seconds())
        stamp = "%08x%s" % (now & 0xFFFFFFFF,
                            binascii.hexlify(os.urandom(_RAND_LEN // 2)).decode("ascii"))
        return stamp + self._mac(stamp, realm)

    def _nonceTime(self, nonce, realm):
        """
        @return: the issue time of a nonce we issued for C{realm}, or
            L{None} if it is not one of ours.
        """
        if len(nonce) != _NONCE_LEN:
            return None
        stamp = nonce[:_TS_LEN + _RAND_LEN]
        if not hmac.compare_digest(nonce[_TS_LEN + _RAND_LEN:].encode("ascii", "replace"),
                                   self._mac(stamp, realm).encode("ascii")):
            return None
        try:
            return int(stamp[:_TS_LEN], 16)
        except ValueError:
            return None

    # -- challenges ------------------------------------------------------

    def challenge(self, realm, proxy=False, stale=False):
        """
        Build the challenge headers for a 401 (or 407 when C{proxy}).

        One header per algorithm, all with the same nonce, in the order of
        L{algorithms}, each with C{qop="auth"}.

        @return: a L{list} of C{(header name, value)}.
        """
        name = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
        nonce = self.makeNonce(realm)
        tail = ", stale=true" if stale else ""
        return [(name, 'Digest realm=%s, nonce="%s", algorithm=%s, qop="auth"%s'
                 % (_quote(realm), nonce, algorithm, tail))
                for algorithm in self.algorithms]

    # -- verification ----------------------------------------------------

    def _fail(self, username, why):
        self.failures += 1
        log.debug("SIP digest failure for {username!r}: {why}",
                  username=username, why=why)
        return AuthResult("failed", None, username)

    def _credentials(self, request, realm, proxy):
        """
        @return: the parsed credentials for C{realm} with an algorithm we
            accept, or L{None}.
        """
        name = "Proxy-Authorization" if proxy else "Authorization"
        for value in request.getHeaders(name):
            params = parseCredentials(value)
            if params is None or params.get("realm") != realm:
                continue
            algorithm = params.get("algorithm", "MD5").upper()
            base = algorithm[:-5] if algorithm.endswith("-SESS") else algorithm
            if base in self.algorithms:
                params["algorithm"] = algorithm
                return params
        return None

    def _uriMatches(self, given, requestURI):
        """
        Loose check of the C{uri} parameter against the Request-URI (RFC
        7616 section 3.4.6): the same text, the same URI once parsed, or
        -- unless L{strictURI} -- a SIP URI of the same host or of an IP
        address.  The last is what SIPp (and phones sending through an
        outbound proxy) put there: the address they sent the request to.
        The response is computed over the C{uri} given, so this only
        limits where credentials made for another server can be used.
        """
        if given == str(requestURI):
            return True
        try:
            uri = parseURI(given)
        except SIPParseError:
            return False
        if uri == requestURI:
            return True
        if self.strictURI or not isinstance(uri, SIPURI) or not uri.host:
            return False
        host = uri.host.lower()
        if host == (getattr(requestURI, "host", None) or "").lower():
            return True
        return _isAddress(host.strip("[]"))

    def _ha1s(self, username, address, realm, algorithm):
        """
        The candidate HA1 values: the directory's (computed for the
        account name as it keeps it), plus one for the username exactly as
        given when that differs (C{alice@dom} or C{Alice}) and the
        password can be recovered.
        """
        candidates = []
        ha1 = self.directory.digestHA1(address, realm, algorithm)
        if ha1:
            candidates.append(ha1.lower())
        if username != address.split("@")[0].lower():
            getPassword = getattr(self.directory, "getPassword", None)
            password = getPassword(address) if getPassword is not None else None
            if password is not None:
                candidates.append(digestHA1(username, realm, password, algorithm))
        return candidates

    def verify(self, request, realm, proxy=False):
        """
        Check the request's credentials for C{realm}.

        @param request: a L{cgpro.sip.message.Request}.
        @param proxy: read C{Proxy-Authorization} instead of
            C{Authorization}.
        @rtype: L{AuthResult}
        """
        params = self._credentials(request, realm, proxy)
        if params is None:
            return AuthResult("missing")
        username = params.get("username")
        nonce = params.get("nonce")
        uri = params.get("uri")
        response = params.get("response")
        if not username or not nonce or uri is None or not response:
            return self._fail(username, "incomplete credentials")
        qop = params.get("qop")
        nc = cnonce = None
        if qop is not None:
            qop = qop.lower()
            nc, cnonce = params.get("nc"), params.get("cnonce")
            if qop not in ("auth", "auth-int") or not nc or cnonce is None:
                return self._fail(username, "bad qop/nc/cnonce")
            try:
                count = int(nc, 16)
            except ValueError:
                return self._fail(username, "bad nc")
        if not self._uriMatches(uri, request.requestURI):
            return self._fail(username, "uri does not match the Request-URI")
        address = username if "@" in username else username + "@" + realm
        account = self.directory.resolveLogin(address)
        if account is None:
            return self._fail(username, "unknown user")
        algorithm = params["algorithm"]
        sess = algorithm.endswith("-SESS")
        base = algorithm[:-5] if sess else algorithm
        h = _HASHES[base]

        def H(text):
            return h(text.encode("utf-8", "surrogateescape")).hexdigest()

        if qop == "auth-int":
            ha2 = H("%s:%s:%s" % (request.method, uri,
                                  h(request.body).hexdigest()))
        else:
            ha2 = H("%s:%s" % (request.method, uri))
        matched = False
        for ha1 in self._ha1s(username, address, realm, base):
            if sess:
                ha1 = H("%s:%s:%s" % (ha1, nonce, cnonce or ""))
            if qop is None:
                expected = H("%s:%s:%s" % (ha1, nonce, ha2))
            else:
                expected = H("%s:%s:%s:%s:%s:%s" % (ha1, nonce, nc, cnonce, qop, ha2))
            if hmac.compare_digest(expected.encode("ascii"),
                                   response.lower().encode("ascii", "replace")):
                matched = True
        if not matched:
            return self._fail(username, "wrong response")
        issued = self._nonceTime(nonce, realm)
        now = self.reactor.seconds()
        if issued is None or now - issued > self.nonceLifetime or issued > now + 1:
            return AuthResult("stale", None, username)
        if qop is not None and not self._countIncreases(nonce, issued, count, now):
            return AuthResult("stale", None, username)
        return AuthResult("ok", account, username)

    def _countIncreases(self, nonce, issued, count, now):
        """
        Record C{count} for C{nonce}; refuse it unless it is higher than
        any seen before (RFC 7616 section 3.4: replay protection).

        The table keeps only nonces within their lifetime and at most
        L{maxTracked} of them; when one must be evicted early, every
        untracked nonce issued no later is refused from then on (the
        client just gets a new one with C{stale=true}).
        """
        counts = self._counts
        horizon = now - self.nonceLifetime
        while counts:
            oldest = next(iter(counts.values()))
            if oldest[0] >= horizon:
                break
            counts.popitem(last=False)
        entry = counts.get(nonce)
        if entry is None:
            if issued <= self._evictedUpTo:
                return False
            counts[nonce] = [issued, count]
            while len(counts) > self.maxTracked:
                _, (evicted, _) = counts.popitem(last=False)
                if evicted > self._evictedUpTo:
                    self._evictedUpTo = evicted
            return True
        if count <= entry[1]:
            return False
        entry[1] = count
        return True

    @property
    def tracked(self):
        """The number of nonces whose C{nc} is remembered (for tests)."""
        return len(self._counts)
