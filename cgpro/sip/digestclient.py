# -*- test-case-name: tests.sip.test_digestclient -*-
"""
The client side of SIP Digest authentication (RFC 2617, RFC 7616, RFC
8760): answer the C{WWW-Authenticate} of a 401 or the
C{Proxy-Authenticate} of a 407 with an C{Authorization} or
C{Proxy-Authorization} header.

The server's own user agent (L{cgpro.sip.ua}) needs it when it calls out
through a provider or registers there (RSIP); the server side
(L{cgpro.sip.digest}) is a separate module because it knows nonces and
the directory, and this one knows only one password at a time.

Only C{qop=auth} (or no qop, RFC 2069) is answered: C{auth-int} would
tie the credentials to a body that a retried request may not keep, and
no server we talk to demands it alone.
"""

import hashlib
import os
import binascii

from cgpro.sip.digest import parseCredentials

_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}
#: The algorithms we answer, strongest first: when a server offers
#: several (one header each, RFC 8760 section 2.4), the first of these
#: offered is used.
_PREFERENCE = ("SHA-256", "SHA-256-SESS", "MD5", "MD5-SESS")


class Challenge:
    """
    One parsed Digest challenge.

    @ivar realm: the protection space.
    @ivar nonce: the server's nonce.
    @ivar opaque: to be returned unchanged, or L{None}.
    @ivar qop: the C{list} of qop options offered (lower case), empty for
        an RFC 2069 challenge.
    @ivar algorithm: upper case, C{MD5} when absent.
    @ivar stale: whether the server said C{stale=true}.
    @ivar proxy: whether it came from a C{Proxy-Authenticate} (407).
    """

    __slots__ = ("realm", "nonce", "opaque", "qop", "algorithm", "stale", "proxy")

    def __init__(self, realm, nonce, opaque=None, qop=(), algorithm="MD5",
                 stale=False, proxy=False):
        self.realm = realm
        self.nonce = nonce
        self.opaque = opaque
        self.qop = list(qop)
        self.algorithm = algorithm
        self.stale = stale
        self.proxy = proxy

    def __repr__(self):
        return "Challenge(%r, %r, algorithm=%r)" % (self.realm, self.nonce,
                                                    self.algorithm)


def parseChallenge(value, proxy=False):
    """
    Parse one C{WWW-Authenticate}/C{Proxy-Authenticate} value.

    The grammar of challenges and credentials is the same list of
    C{name=value} pairs, so the server-side parser is reused.

    @return: a L{Challenge}, or L{None} when the value is not a Digest
        challenge with a realm and a nonce.
    """
    params = parseCredentials(value)
    if params is None or "realm" not in params or "nonce" not in params:
        return None
    qop = [q.strip().lower() for q in params.get("qop", "").split(",") if q.strip()]
    return Challenge(params["realm"], params["nonce"], params.get("opaque"), qop,
                     params.get("algorithm", "MD5").upper(),
                     params.get("stale", "").lower() == "true", proxy)


def challengesOf(response):
    """
    @return: the usable L{Challenge}s of a 401 or 407 response, the
        preferred one first (see L{_PREFERENCE}); empty for another
        response or when no challenge has an algorithm we support.
    """
    if response.code == 401:
        name, proxy = "WWW-Authenticate", False
    elif response.code == 407:
        name, proxy = "Proxy-Authenticate", True
    else:
        return []
    found = []
    for value in response.getHeaders(name):
        challenge = parseChallenge(value, proxy)
        if challenge is None or challenge.algorithm not in _PREFERENCE:
            continue
        if challenge.qop and "auth" not in challenge.qop:
            continue  # auth-int only: see the module docstring
        found.append(challenge)
    found.sort(key=lambda c: _PREFERENCE.index(c.algorithm))
    return found


def _quote(text):
    return '"%s"' % (text.replace("\\", "\\\\").replace('"', '\\"'),)


def credentials(challenge, method, uri, username, password, cnonce=None, nc=1):
    """
    Compute the credentials answering C{challenge} (RFC 7616 section 3.4).

    @param uri: the Request-URI text (the C{uri} parameter; the server
        hashes what we put there).
    @param cnonce: the client nonce; random by default (tests pass one).
    @param nc: the nonce count; 1 for a fresh challenge.
    @return: the header value, C{Digest username=..., response=...}.
    """
    algorithm = challenge.algorithm
    sess = algorithm.endswith("-SESS")
    h = _HASHES[algorithm[:-5] if sess else algorithm]

    def H(text):
        return h(text.encode("utf-8", "surrogateescape")).hexdigest()

    qop = "auth" if challenge.qop else None
    if cnonce is None:
        cnonce = binascii.hexlify(os.urandom(8)).decode("ascii")
    ncText = "%08x" % (nc,)
    nonce = challenge.nonce
    ha1 = H("%s:%s:%s" % (username, challenge.realm, password))
    if sess:
        ha1 = H("%s:%s:%s" % (ha1, nonce, cnonce))
    ha2 = H("%s:%s" % (method, uri))
    if qop is None:
        response = H("%s:%s:%s" % (ha1, nonce, ha2))
    else:
        response = H("%s:%s:%s:%s:%s:%s" % (ha1, nonce, ncText, cnonce, qop, ha2))
    parts = ["username=" + _quote(username), "realm=" + _quote(challenge.realm),
             "nonce=" + _quote(nonce), "uri=" + _quote(uri),
             "response=" + _quote(response), "algorithm=" + algorithm]
    if qop is not None:
        parts += ["qop=auth", "nc=" + ncText, "cnonce=" + _quote(cnonce)]
    if challenge.opaque is not None:
        parts.append("opaque=" + _quote(challenge.opaque))
    return "Digest " + ", ".join(parts)


def authorize(request, response, username, password, cnonce=None):
    """
    Add to C{request} the credentials answering the challenge of
    C{response} (a 401 or 407 to an earlier copy of it), replacing
    credentials it carried for the same kind of challenge.

    @param request: the L{cgpro.sip.message.Request} about to be sent
        again (its Request-URI is the C{uri} parameter).
    @return: whether a challenge could be answered.
    """
    found = challengesOf(response)
    if not found:
        return False
    challenge = found[0]
    name = "Proxy-Authorization" if challenge.proxy else "Authorization"
    request.setHeader(name, credentials(challenge, request.method,
                                        str(request.requestURI), username, password,
                                        cnonce=cnonce))
    return True
