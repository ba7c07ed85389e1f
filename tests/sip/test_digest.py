# -*- test-case-name: tests.sip.test_digest -*-
"""
Tests for L{cgpro.sip.digest}: the client side is computed here from the
RFC 2617/7616 formulas (and checked against their published examples), so
the authenticator is never tested against itself.
"""

import hashlib
import re

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from cgpro.sip.digest import AuthResult, DigestAuthenticator, parseCredentials
from cgpro.sip.message import parseMessage
from tests.support.directory import makeDirectory

_H = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


def digestResponse(username, realm, password, method, uri, nonce,
                   algorithm="MD5", qop=None, nc=None, cnonce=None):
    """
    The client's C{response} by RFC 7616 section 3.4.1 (RFC 2069 form
    when C{qop} is L{None}).
    """
    sess = algorithm.upper().endswith("-SESS")
    h = _H[algorithm[:-5] if sess else algorithm]

    def H(text):
        return h(text.encode("utf-8")).hexdigest()

    ha1 = H("%s:%s:%s" % (username, realm, password))
    if sess:
        ha1 = H("%s:%s:%s" % (ha1, nonce, cnonce))
    ha2 = H("%s:%s" % (method, uri))
    if qop is None:
        return H("%s:%s:%s" % (ha1, nonce, ha2))
    return H("%s:%s:%s:%s:%s:%s" % (ha1, nonce, nc, cnonce, qop, ha2))


def authorization(username, realm, password, nonce, uri, method="REGISTER",
                  algorithm="MD5", qop="auth", nc="00000001",
                  cnonce="0a4f113b", response=None):
    """
    @return: a Digest C{Authorization} value as a phone would send it.
    """
    if response is None:
        response = digestResponse(username, realm, password, method, uri,
                                  nonce, algorithm, qop, nc, cnonce)
    value = ('Digest username="%s", realm="%s", nonce="%s", uri="%s", '
             'response="%s", algorithm=%s' % (username, realm, nonce, uri,
                                              response, algorithm))
    if qop is not None:
        value += ', qop=%s, nc=%s, cnonce="%s"' % (qop, nc, cnonce)
    return value


def nonceOf(challenges):
    """
    @return: the nonce of the first challenge header.
    """
    return re.search(r'nonce="([^"]+)"', challenges[0][1]).group(1)


def register(uri="sip:main.dom", auth=None, header="Authorization",
             user="alice"):
    """
    @return: a parsed REGISTER, with C{auth} as its credentials.
    """
    lines = [
        "REGISTER %s SIP/2.0" % (uri,),
        "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK1",
        "Max-Forwards: 70",
        "To: <sip:%s@main.dom>" % (user,),
        "From: <sip:%s@main.dom>;tag=1" % (user,),
        "Call-ID: c1@192.0.2.10",
        "CSeq: 1 REGISTER",
        "Contact: <sip:%s@192.0.2.10:5060>" % (user,),
    ]
    if auth is not None:
        lines.append("%s: %s" % (header, auth))
    lines.append("Content-Length: 0")
    return parseMessage(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"))


def makeAccounts(testCase):
    """
    @return: a directory with C{alice@main.dom} (password C{pw}, alias
        C{al}, telnum C{1001}) and C{bob@main.dom} (password C{bpw}).
    """
    directory = makeDirectory(testCase)
    testCase.successResultOf(directory.createAccount(
        "alice@main.dom", settings={"Password": "pw"}))
    testCase.successResultOf(directory.setAccountAliases("alice@main.dom", ["al"]))
    testCase.successResultOf(directory.setAccountTelnums("alice@main.dom", ["1001"]))
    testCase.successResultOf(directory.createAccount(
        "bob@main.dom", settings={"Password": "bpw"}))
    return directory


class DigestTestsMixin:
    """
    Set-up shared by the digest tests: a directory, a clock, an
    authenticator.
    """

    def setUp(self):
        self.directory = makeAccounts(self)
        self.clock = Clock()
        self.clock.advance(1000000)
        self.auth = DigestAuthenticator(self.directory, self.clock,
                                        secret=b"s3cret", nonceLifetime=300)

    def verifyWith(self, password="pw", username="alice", algorithm="MD5",
                   qop="auth", nc="00000001", nonce=None, uri="sip:main.dom",
                   requestURI="sip:main.dom", realm="main.dom", proxy=False):
        """
        Challenge, answer as a phone would, verify.
        """
        if nonce is None:
            nonce = nonceOf(self.auth.challenge(realm))
        value = authorization(username, realm, password, nonce, uri,
                              algorithm=algorithm, qop=qop, nc=nc)
        header = "Proxy-Authorization" if proxy else "Authorization"
        return self.auth.verify(register(requestURI, value, header), realm,
                                proxy=proxy)


class ClientFormulaTests(SynchronousTestCase):
    """
    The test's own client computation matches the RFCs' examples.
    """

    def test_rfc2617Example(self):
        """
        RFC 2617 section 3.5: MD5 with qop=auth.
        """
        self.assertEqual(
            digestResponse("Mufasa", "testrealm@host.com", "Circle Of Life",
                           "GET", "/dir/index.html",
                           "dcd98b7102dd2f0e8b11d0f600bfb0c093", "MD5",
                           "auth", "00000001", "0a4f113b"),
            "6629fae49393a05397450978507c4ef1")

    def test_rfc7616Examples(self):
        """
        RFC 7616 section 3.9.1: the same request with MD5 and SHA-256.
        """
        args = ("Mufasa", "http-auth@example.org", "Circle of Life", "GET",
                "/dir/index.html", "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v")
        cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
        self.assertEqual(digestResponse(*args, algorithm="MD5", qop="auth",
                                        nc="00000001", cnonce=cnonce),
                         "8ca523f5e9506fed4657c9700eebdbec")
        self.assertEqual(
            digestResponse(*args, algorithm="SHA-256", qop="auth",
                           nc="00000001", cnonce=cnonce),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1")


class ParseCredentialsTests(SynchronousTestCase):
    """
    Tests for L{parseCredentials}.
    """

    def test_quotedAndTokens(self):
        """
        Quoted values lose their quotes and escapes; commas inside quotes
        do not split; names are folded to lower case.
        """
        params = parseCredentials(
            'Digest USERNAME="a\\"b", realm="x, y", nc=00000001 ,qop=auth')
        self.assertEqual(params, {"username": 'a"b', "realm": "x, y",
                                  "nc": "00000001", "qop": "auth"})

    def test_otherScheme(self):
        """
        Basic credentials or garbage give L{None}.
        """
        self.assertIsNone(parseCredentials("Basic QWxhZGRpbjpvcGVu"))
        self.assertIsNone(parseCredentials('Digest username="unterminated'))


class ChallengeTests(DigestTestsMixin, SynchronousTestCase):
    """
    Tests for L{DigestAuthenticator.challenge}.
    """

    def test_oneHeaderPerAlgorithm(self):
        """
        MD5 and SHA-256 are offered (MD5 first by default, for clients
        that take the first challenge), each with qop="auth", the realm
        and the same nonce.
        """
        challenges = self.auth.challenge("main.dom")
        self.assertEqual([name for name, _ in challenges],
                         ["WWW-Authenticate", "WWW-Authenticate"])
        self.assertIn("algorithm=MD5", challenges[0][1])
        self.assertIn("algorithm=SHA-256", challenges[1][1])
        for _, value in challenges:
            self.assertTrue(value.startswith('Digest realm="main.dom", nonce="'))
            self.assertIn('qop="auth"', value)
            self.assertNotIn("stale", value)
        self.assertEqual(nonceOf(challenges), nonceOf(challenges[1:]))

    def test_preferenceOrder(self):
        """
        C{algorithms} sets the order of the challenges (RFC 8760: put
        SHA-256 first where every client copes).
        """
        auth = DigestAuthenticator(self.directory, self.clock,
                                   algorithms=("SHA-256", "MD5"))
        challenges = auth.challenge("main.dom")
        self.assertIn("algorithm=SHA-256", challenges[0][1])
        self.assertIn("algorithm=MD5", challenges[1][1])

    def test_proxyAndStale(self):
        """
        C{proxy} names the header Proxy-Authenticate; C{stale} adds
        C{stale=true}.
        """
        challenges = self.auth.challenge("main.dom", proxy=True, stale=True)
        self.assertEqual(challenges[0][0], "Proxy-Authenticate")
        self.assertIn("stale=true", challenges[0][1])

    def test_noncesAreUnique(self):
        """
        Two challenges in the same second get different nonces, so two
        phones never share an nc sequence.
        """
        self.assertNotEqual(nonceOf(self.auth.challenge("main.dom")),
                            nonceOf(self.auth.challenge("main.dom")))

    def test_unknownAlgorithm(self):
        """
        Configuring an algorithm we cannot compute is an error at once.
        """
        self.assertRaises(ValueError, DigestAuthenticator, self.directory,
                          self.clock, algorithms=("SHA-512-256",))


class VerifyTests(DigestTestsMixin, SynchronousTestCase):
    """
    Tests for L{DigestAuthenticator.verify}.
    """

    def assertResult(self, result, status, account=None):
        """
        Assert the status and account of an L{AuthResult}.
        """
        self.assertIsInstance(result, AuthResult)
        self.assertEqual((result.status, result.account), (status, account))

    def test_md5Qop(self):
        """
        MD5 with qop=auth verifies and names the canonical account.
        """
        result = self.verifyWith(algorithm="MD5")
        self.assertResult(result, "ok", "alice@main.dom")
        self.assertEqual(result.username, "alice")

    def test_sha256Qop(self):
        """
        SHA-256 with qop=auth verifies (RFC 8760).
        """
        self.assertResult(self.verifyWith(algorithm="SHA-256"), "ok",
                          "alice@main.dom")

    def test_md5WithoutQop(self):
        """
        The RFC 2069 form (no qop, no nc), as SIPp and old phones send it,
        verifies.
        """
        self.assertResult(self.verifyWith(qop=None), "ok", "alice@main.dom")

    def test_sha256WithoutQop(self):
        """
        SHA-256 without qop verifies too.
        """
        self.assertResult(self.verifyWith(algorithm="SHA-256", qop=None),
                          "ok", "alice@main.dom")

    def test_sessVariants(self):
        """
        MD5-sess and SHA-256-sess are accepted when their base algorithm
        is.
        """
        self.assertResult(self.verifyWith(algorithm="MD5-sess"), "ok",
                          "alice@main.dom")
        self.assertResult(self.verifyWith(algorithm="SHA-256-sess"), "ok",
                          "alice@main.dom")

    def test_proxyAuthorization(self):
        """
        With C{proxy}, Proxy-Authorization is read.
        """
        self.assertResult(self.verifyWith(proxy=True), "ok", "alice@main.dom")

    def test_wrongPassword(self):
        """
        A wrong password fails and is counted.
        """
        self.assertResult(self.verifyWith(password="nope"), "failed")
        self.assertResult(self.verifyWith(password="nope", qop=None), "failed")
        self.assertEqual(self.auth.failures, 2)

    def test_unknownUser(self):
        """
        A user the directory does not know fails.
        """
        self.assertResult(self.verifyWith(username="nobody"), "failed")
        self.assertEqual(self.auth.failures, 1)

    def test_aliasUsername(self):
        """
        An alias as username authenticates as its account (its HA1 is
        made with the alias, as the phone makes it).
        """
        result = self.verifyWith(username="al")
        self.assertResult(result, "ok", "alice@main.dom")
        self.assertEqual(result.username, "al")

    def test_usernameWithDomain(self):
        """
        A username C{name@domain} (some phones send the whole AOR) is
        resolved as given and hashed as given.
        """
        self.assertResult(self.verifyWith(username="alice@main.dom"), "ok",
                          "alice@main.dom")

    def test_missing(self):
        """
        No credentials, or credentials for an algorithm we did not offer,
        give C{missing}: challenge, do not count.
        """
        self.assertResult(self.auth.verify(register(), "main.dom"), "missing")
        nonce = nonceOf(self.auth.challenge("main.dom"))
        value = authorization("alice", "main.dom", "pw", nonce, "sip:main.dom",
                              algorithm="MD5").replace("algorithm=MD5",
                                                       "algorithm=SHA-512-256")
        self.assertResult(self.auth.verify(register(auth=value), "main.dom"),
                          "missing")
        self.assertEqual(self.auth.failures, 0)

    def test_realmMismatch(self):
        """
        Credentials made for the realm the request names are checked
        against that realm only.
        """
        nonce = nonceOf(self.auth.challenge("main.dom"))
        value = authorization("alice", "main.dom", "pw", nonce, "sip:main.dom")
        self.assertResult(self.auth.verify(register(auth=value), "else.dom"),
                          "missing")

    def test_uriMismatch(self):
        """
        A C{uri} naming another domain, or not a URI, fails.
        """
        self.assertResult(self.verifyWith(uri="sip:other.dom"), "failed")
        self.assertResult(self.verifyWith(uri="nonsense"), "failed")

    def test_uriServerAddress(self):
        """
        A C{uri} with the server's address instead of its domain, as SIPp
        sends, is accepted unless C{strictURI}; so is the same host with
        a port.
        """
        self.assertResult(self.verifyWith(uri="sip:127.0.0.1:5060"), "ok",
                          "alice@main.dom")
        self.assertResult(self.verifyWith(uri="sip:[2001:db8::1]"), "ok",
                          "alice@main.dom")
        self.assertResult(self.verifyWith(uri="sip:main.dom:5060"), "ok",
                          "alice@main.dom")
        self.auth.strictURI = True
        self.assertResult(self.verifyWith(uri="sip:127.0.0.1:5060"), "failed")
        self.assertResult(self.verifyWith(uri="sip:main.dom"), "ok",
                          "alice@main.dom")

    def test_uriLooseMatch(self):
        """
        A C{uri} that parses to the same URI (host case) is accepted.
        """
        self.assertResult(self.verifyWith(uri="sip:MAIN.dom",
                                          requestURI="sip:main.dom"),
                          "ok", "alice@main.dom")

    def test_staleNonce(self):
        """
        Past its lifetime a nonce is stale, with or without qop; the
        failure is not counted (the password was right).
        """
        nonce = nonceOf(self.auth.challenge("main.dom"))
        self.clock.advance(301)
        self.assertResult(self.verifyWith(nonce=nonce), "stale")
        self.assertResult(self.verifyWith(nonce=nonce, qop=None), "stale")
        self.assertEqual(self.auth.failures, 0)

    def test_staleWrongPassword(self):
        """
        A wrong password with an expired nonce is a failure, not stale.
        """
        nonce = nonceOf(self.auth.challenge("main.dom"))
        self.clock.advance(301)
        self.assertResult(self.verifyWith(nonce=nonce, password="x"), "failed")

    def test_foreignNonce(self):
        """
        A nonce from another secret (a previous run) with the right
        password is stale, so the phone retries without prompting.
        """
        other = DigestAuthenticator(self.directory, self.clock, secret=b"old")
        nonce = nonceOf(other.challenge("main.dom"))
        self.assertResult(self.verifyWith(nonce=nonce), "stale")
        self.assertResult(self.verifyWith(nonce="abc"), "stale")

    def test_nonceBoundToRealm(self):
        """
        A nonce issued for one realm is stale in another.
        """
        nonce = nonceOf(self.auth.challenge("other.dom"))
        self.assertResult(self.verifyWith(nonce=nonce), "stale")

    def test_ncReplay(self):
        """
        With qop=auth, nc must grow for each nonce: a replayed nc is
        stale, a higher one accepted.
        """
        nonce = nonceOf(self.auth.challenge("main.dom"))
        self.assertResult(self.verifyWith(nonce=nonce, nc="00000001"), "ok",
                          "alice@main.dom")
        self.assertResult(self.verifyWith(nonce=nonce, nc="00000001"), "stale")
        self.assertResult(self.verifyWith(nonce=nonce, nc="00000002"), "ok",
                          "alice@main.dom")
        self.assertResult(self.verifyWith(nonce=nonce, nc="00000002"), "stale")

    def test_withoutQopReusableWithinLifetime(self):
        """
        Without qop there is no nc: the nonce is accepted until it
        expires (what RFC 2069 clients need).
        """
        nonce = nonceOf(self.auth.challenge("main.dom"))
        self.assertResult(self.verifyWith(nonce=nonce, qop=None), "ok",
                          "alice@main.dom")
        self.clock.advance(200)
        self.assertResult(self.verifyWith(nonce=nonce, qop=None), "ok",
                          "alice@main.dom")

    def test_ncTableForgetsExpired(self):
        """
        A tracked nonce is forgotten once past its lifetime.
        """
        self.verifyWith()
        self.assertEqual(self.auth.tracked, 1)
        self.clock.advance(301)
        self.verifyWith()
        self.assertEqual(self.auth.tracked, 1)

    def test_ncTableCapped(self):
        """
        The table holds at most C{maxTracked} nonces; an evicted nonce
        cannot be replayed from nc 1 again (it is stale).
        """
        self.auth.maxTracked = 2
        first = nonceOf(self.auth.challenge("main.dom"))
        self.assertResult(self.verifyWith(nonce=first), "ok", "alice@main.dom")
        self.clock.advance(1)
        for _ in range(2):
            self.assertResult(self.verifyWith(), "ok", "alice@main.dom")
        self.assertEqual(self.auth.tracked, 2)
        self.assertResult(self.verifyWith(nonce=first), "stale")

    def test_badNc(self):
        """
        qop without nc or with a non-hex nc fails.
        """
        self.assertResult(self.verifyWith(nc="zz"), "failed")
        self.assertResult(self.verifyWith(nc=""), "failed")
