# -*- test-case-name: tests.sip.test_digestclient -*-
"""
Tests for L{cgpro.sip.digestclient}: the published RFC 2617 example, and
round trips through the server side (L{cgpro.sip.digest}), which was
itself checked against formulas computed independently.
"""

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from cgpro.sip.digest import DigestAuthenticator, parseCredentials
from cgpro.sip.digestclient import (
    Challenge, authorize, challengesOf, credentials, parseChallenge)
from cgpro.sip.message import Request, Response, parseMessage
from cgpro.sip.uri import parseURI
from tests.support.directory import makeDirectory

#: RFC 2617 section 3.5.
RFC_CHALLENGE = ('Digest realm="testrealm@host.com", qop="auth,auth-int", '
                 'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
                 'opaque="5ccc069c403ebaf9f0171e9517f40e41"')


def register(uri="sip:main.dom"):
    data = ("REGISTER %s SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 198.51.100.7:5062;branch=z9hG4bKreg1\r\n"
            "Max-Forwards: 70\r\n"
            "From: <sip:alice@main.dom>;tag=r1\r\n"
            "To: <sip:alice@main.dom>\r\n"
            "Call-ID: reg1\r\n"
            "CSeq: 1 REGISTER\r\n"
            "Content-Length: 0\r\n\r\n" % (uri,)).encode()
    return parseMessage(data)


def challengeResponse(headers, code=401):
    response = Response(code, "Unauthorized")
    for name, value in headers:
        response.addHeader(name, value)
    return response


class RFCExampleTests(SynchronousTestCase):
    """
    The worked example of RFC 2617 section 3.5.
    """

    def test_parseChallenge(self):
        """
        Realm, nonce, opaque and the qop list are read from the header.
        """
        challenge = parseChallenge(RFC_CHALLENGE)
        self.assertEqual(challenge.realm, "testrealm@host.com")
        self.assertEqual(challenge.nonce, "dcd98b7102dd2f0e8b11d0f600bfb0c093")
        self.assertEqual(challenge.opaque, "5ccc069c403ebaf9f0171e9517f40e41")
        self.assertEqual(challenge.qop, ["auth", "auth-int"])
        self.assertEqual(challenge.algorithm, "MD5")
        self.assertFalse(challenge.stale)

    def test_response(self):
        """
        With the RFC's cnonce, the response is the RFC's
        C{6629fae49393a05397450978507c4ef1}, with C{nc=00000001} and the
        opaque value returned.
        """
        value = credentials(parseChallenge(RFC_CHALLENGE), "GET", "/dir/index.html",
                            "Mufasa", "Circle Of Life", cnonce="0a4f113b")
        params = parseCredentials(value)
        self.assertEqual(params["response"], "6629fae49393a05397450978507c4ef1")
        self.assertEqual(params["nc"], "00000001")
        self.assertEqual(params["qop"], "auth")
        self.assertEqual(params["cnonce"], "0a4f113b")
        self.assertEqual(params["opaque"], "5ccc069c403ebaf9f0171e9517f40e41")
        self.assertEqual(params["uri"], "/dir/index.html")
        self.assertEqual(params["username"], "Mufasa")

    def test_notDigest(self):
        """
        A Basic challenge, or one without a nonce, is not answered.
        """
        self.assertIsNone(parseChallenge('Basic realm="x"'))
        self.assertIsNone(parseChallenge('Digest realm="x"'))

    def test_authIntOnly(self):
        """
        A challenge offering only C{auth-int} is not usable (we answer
        C{auth} only).
        """
        response = challengeResponse([("WWW-Authenticate",
                                       'Digest realm="r", nonce="n", qop="auth-int"')])
        self.assertEqual(challengesOf(response), [])

    def test_noChallenge(self):
        """
        A response that is not a 401/407, or has no usable challenge,
        leaves the request alone.
        """
        request = register()
        self.assertFalse(authorize(request, Response(403, "Forbidden"), "alice", "pw"))
        self.assertFalse(authorize(request, challengeResponse([]), "alice", "pw"))
        self.assertIsNone(request.getHeader("Authorization"))


class RoundTripTests(SynchronousTestCase):
    """
    Credentials made here are accepted by the server's own authenticator.
    """

    def setUp(self):
        self.directory = makeDirectory(self)
        result = self.directory.createAccount("alice@main.dom", settings={"Password": "pw"})
        if hasattr(result, "addCallback"):
            self.successResultOf(result)
        self.clock = Clock()
        self.clock.advance(1795000000)
        self.authenticator = DigestAuthenticator(self.directory, self.clock)

    def check(self, headers, code=401, password="pw", proxy=False):
        request = register()
        self.assertTrue(authorize(request, challengeResponse(headers, code), "alice",
                                  password))
        return self.authenticator.verify(request, "main.dom", proxy=proxy)

    def test_md5(self):
        """
        The MD5 challenge of a 401 is answered in C{Authorization}.
        """
        headers = [h for h in self.authenticator.challenge("main.dom")
                   if "MD5" in h[1]]
        result = self.check(headers)
        self.assertEqual((result.status, result.account), ("ok", "alice@main.dom"))

    def test_sha256Preferred(self):
        """
        Offered MD5 and SHA-256, the client answers SHA-256 (RFC 8760).
        """
        request = register()
        authorize(request, challengeResponse(self.authenticator.challenge("main.dom")),
                  "alice", "pw")
        params = parseCredentials(request.getHeader("Authorization"))
        self.assertEqual(params["algorithm"], "SHA-256")
        self.assertEqual(self.authenticator.verify(request, "main.dom").status, "ok")

    def test_md5Sess(self):
        """
        MD5-sess folds the nonce and cnonce into HA1; the server agrees.
        """
        name, value = self.authenticator.challenge("main.dom")[0]
        value = value.replace("algorithm=MD5", "algorithm=MD5-sess")
        self.assertEqual(self.check([(name, value)]).status, "ok")

    def test_proxy(self):
        """
        A 407's C{Proxy-Authenticate} is answered in
        C{Proxy-Authorization}.
        """
        result = self.check(self.authenticator.challenge("main.dom", proxy=True), code=407,
                            proxy=True)
        self.assertEqual(result.status, "ok")

    def test_noQop(self):
        """
        An RFC 2069 challenge (no qop) gets an RFC 2069 response, without
        nc and cnonce.
        """
        nonce = self.authenticator.makeNonce("main.dom")
        request = register()
        authorize(request, challengeResponse(
            [("WWW-Authenticate", 'Digest realm="main.dom", nonce="%s"' % nonce)]),
            "alice", "pw")
        params = parseCredentials(request.getHeader("Authorization"))
        self.assertNotIn("qop", params)
        self.assertNotIn("nc", params)
        self.assertEqual(self.authenticator.verify(request, "main.dom").status, "ok")

    def test_wrongPassword(self):
        """
        A wrong password is refused by the server.
        """
        self.assertEqual(self.check(self.authenticator.challenge("main.dom"),
                                    password="nope").status, "failed")

    def test_uriIsRequestURI(self):
        """
        The C{uri} parameter is the Request-URI of the request answered.
        """
        request = Request("INVITE", parseURI("sip:bob@main.dom;user=phone"))
        request.addHeader("CSeq", "1 INVITE")
        challenge = Challenge("main.dom", "abc", qop=["auth"])
        value = credentials(challenge, request.method, str(request.requestURI), "alice", "pw")
        self.assertEqual(parseCredentials(value)["uri"], "sip:bob@main.dom;user=phone")
