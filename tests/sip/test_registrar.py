# -*- test-case-name: tests.sip.test_registrar -*-
"""
Tests for L{cgpro.sip.registrar}: REGISTER processing per RFC 3261
section 10.3 with Digest authentication, Path (RFC 3327) and outbound
(RFC 5626), over a real directory and location service on a clock.
"""

import os
import re
import shutil
import tempfile

from zope.interface import implementer
from zope.interface.verify import verifyObject

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from cgpro.core.files import DurableWriter
from cgpro.sip.address import Peer
from cgpro.sip.digest import DigestAuthenticator
from cgpro.sip.interfaces import IServerTransaction
from cgpro.sip.location import LocationService
from cgpro.sip.message import parseMessage
from cgpro.sip.registrar import Registrar
from tests.sip.test_digest import authorization, makeAccounts, nonceOf
from tests.sip.test_location import HeldWriter

PHONE = Peer("UDP", "198.51.100.7", 5060)


@implementer(IServerTransaction)
class FakeTransaction:
    """
    A server transaction that records the responses sent through it.
    """

    method = "REGISTER"
    state = "trying"
    lastResponse = None

    def __init__(self, request, source=PHONE, toTag=None):
        self.request = request
        self.source = source
        self.responses = []
        if toTag is not None:
            self.toTag = toTag

    def respond(self, response):
        """
        Record C{response}.
        """
        self.responses.append(response)
        self.lastResponse = response

    def isFinal(self):
        """
        @return: whether a final response was recorded.
        """
        return any(r.code >= 200 for r in self.responses)


def registerMessage(to="alice", contacts=("<sip:alice@192.0.2.10:5060>",),
                    expires=None, callId="reg-1@192.0.2.10", cseq=1,
                    extra=(), auth=None, vias=1):
    """
    @return: a parsed REGISTER to C{sip:main.dom}.
    """
    lines = ["REGISTER sip:main.dom SIP/2.0"]
    for i in range(vias - 1):
        lines.append("Via: SIP/2.0/UDP proxy%d.example;branch=z9hG4bKp%d" % (i, i))
    lines += [
        "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK%d" % (cseq,),
        "Max-Forwards: 70",
        "To: <sip:%s@main.dom>" % (to,),
        "From: <sip:%s@main.dom>;tag=f1" % (to,),
        "Call-ID: %s" % (callId,),
        "CSeq: %d REGISTER" % (cseq,),
        "User-Agent: TestPhone/2.0",
    ]
    lines += ["Contact: %s" % (c,) for c in contacts]
    if expires is not None:
        lines.append("Expires: %d" % (expires,))
    lines += list(extra)
    if auth is not None:
        lines.append("Authorization: %s" % (auth,))
    lines.append("Content-Length: 0")
    return parseMessage(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"))


class RegistrarTestsMixin:
    """
    A directory with alice and bob, a clock, a location service, an
    authenticator and a registrar.
    """

    requireAuth = True

    def setUp(self):
        self.directory = makeAccounts(self)
        self.clock = Clock()
        self.clock.advance(1700000000)
        self.base = tempfile.mkdtemp(prefix="cgpro-registrar-")
        self.addCleanup(shutil.rmtree, self.base, True)
        self.writer = DurableWriter(self.base, synchronous=True)
        self.location = self.makeLocation(self.writer)
        self.auth = DigestAuthenticator(self.directory, self.clock,
                                        secret=b"k")
        self.registrar = Registrar(self.directory, self.location, self.auth,
                                   self.clock, requireAuth=self.requireAuth)

    def makeLocation(self, writer):
        """
        @return: a loaded L{LocationService} writing through C{writer}.
        """
        location = LocationService(self.clock, writer,
                                   os.path.join(self.base, "SIP"))
        location.load()
        self.addCleanup(location.stop)
        return location

    def send(self, source=PHONE, **kw):
        """
        Hand one REGISTER to the registrar.

        @return: the only response.
        """
        transaction = FakeTransaction(registerMessage(**kw), source)
        self.registrar.handleRegister(transaction, transaction.request,
                                      "main.dom")
        self.assertEqual(len(transaction.responses), 1)
        return transaction.responses[0]

    def sendAuthenticated(self, user="alice", password="pw", to=None,
                          algorithm="MD5", qop="auth", nc="00000001",
                          source=PHONE, **kw):
        """
        Do the 401 round trip a phone does, then send with credentials.

        @return: the final response.
        """
        challenge = self.send(to=to or user, source=source, **kw)
        self.assertEqual(challenge.code, 401)
        nonce = nonceOf([("WWW-Authenticate",
                          challenge.getHeader("WWW-Authenticate"))])
        value = authorization(user, "main.dom", password, nonce,
                              "sip:main.dom", algorithm=algorithm, qop=qop,
                              nc=nc)
        kw["cseq"] = kw.get("cseq", 1) + 1
        return self.send(to=to or user, auth=value, source=source, **kw)

    def contactsOf(self, response):
        """
        @return: the Contact values of a response.
        """
        return response.getHeaders("Contact")


class AuthenticationTests(RegistrarTestsMixin, SynchronousTestCase):
    """
    Digest authentication and authorization of REGISTER.
    """

    def test_fakeTransaction(self):
        """
        The test's transaction provides the interface the registrar uses.
        """
        verifyObject(IServerTransaction,
                     FakeTransaction(registerMessage()))

    def test_challenge(self):
        """
        A REGISTER without credentials gets 401 with MD5 and SHA-256
        challenges and a To tag.
        """
        response = self.send()
        self.assertEqual(response.code, 401)
        challenges = response.getHeaders("WWW-Authenticate")
        self.assertEqual(len(challenges), 2)
        self.assertIn("algorithm=MD5", challenges[0])
        self.assertIn("algorithm=SHA-256", challenges[1])
        self.assertIn('realm="main.dom"', challenges[0])
        self.assertIsNotNone(response.toAddr.tag)
        self.assertEqual(self.location.count(), 0)

    def test_transactionToTag(self):
        """
        The transaction's own To tag is used when it has one.
        """
        transaction = FakeTransaction(registerMessage(), toTag="fixedtag")
        self.registrar.handleRegister(transaction, transaction.request,
                                      "main.dom")
        self.assertEqual(transaction.responses[0].toAddr.tag, "fixedtag")

    def test_registerMD5(self):
        """
        With MD5 credentials the binding is made and listed in the 200
        with its expires, and a Date header.
        """
        response = self.sendAuthenticated()
        self.assertEqual(response.code, 200)
        self.assertEqual(self.contactsOf(response),
                         ["<sip:alice@192.0.2.10:5060>;expires=3600"])
        self.assertIsNotNone(response.getHeader("Date"))
        self.assertIsNotNone(response.toAddr.tag)
        [binding] = self.location.lookup("alice@main.dom")
        self.assertEqual(binding.source, PHONE)
        self.assertEqual(binding.userAgent, "TestPhone/2.0")
        self.assertEqual(self.registrar.registered, 1)

    def test_registerSHA256WithoutQop(self):
        """
        SHA-256 in the RFC 2069 form (no qop) registers too.
        """
        response = self.sendAuthenticated(algorithm="SHA-256", qop=None)
        self.assertEqual(response.code, 200)

    def test_wrongPassword(self):
        """
        A wrong password is challenged again, without stale.
        """
        response = self.sendAuthenticated(password="bad")
        self.assertEqual(response.code, 401)
        self.assertNotIn("stale", response.getHeader("WWW-Authenticate"))
        self.assertEqual(self.location.count(), 0)

    def test_staleNonce(self):
        """
        An expired nonce with the right password is challenged with
        stale=true.
        """
        challenge = self.send()
        nonce = nonceOf([("WWW-Authenticate",
                          challenge.getHeader("WWW-Authenticate"))])
        self.clock.advance(400)
        value = authorization("alice", "main.dom", "pw", nonce, "sip:main.dom")
        response = self.send(auth=value, cseq=2)
        self.assertEqual(response.code, 401)
        self.assertIn("stale=true", response.getHeader("WWW-Authenticate"))

    def test_aliasInTo(self):
        """
        The To AOR may be an alias or telephone number of the
        authenticated account: the binding goes to the account.
        """
        self.assertEqual(self.sendAuthenticated(user="alice", to="al").code, 200)
        self.assertEqual(self.sendAuthenticated(
            user="alice", to="1001", callId="other").code, 200)
        self.assertEqual(len(self.location.lookup("alice@main.dom")), 1)

    def test_aliasAsUsername(self):
        """
        Authenticating with an alias as username registers the account.
        """
        response = self.sendAuthenticated(user="al", to="alice")
        self.assertEqual(response.code, 200)

    def test_otherAOR(self):
        """
        Alice may not register bob's address: 403.
        """
        response = self.sendAuthenticated(user="alice", to="bob")
        self.assertEqual(response.code, 403)
        self.assertEqual(self.location.count(), 0)

    def test_unknownAOR(self):
        """
        A To naming no local account gets 404, after authentication.
        """
        response = self.sendAuthenticated(user="alice", to="nobody")
        self.assertEqual(response.code, 404)

    def test_throttle(self):
        """
        After ten wrong passwords in a minute from one address, that
        address gets 403 without a check, even with the right password;
        other addresses are unaffected; the block ends with the window.
        """
        for i in range(10):
            self.assertEqual(self.sendAuthenticated(
                password="bad%d" % i, cseq=10 * i + 1).code, 401)
        response = self.send(cseq=200)
        self.assertEqual(response.code, 403)
        failures = self.auth.failures
        # a right answer from the blocked address is not even checked
        other = Peer("UDP", "198.51.100.8", 5060)
        challenge = self.send(cseq=201, source=other)
        nonce = nonceOf([("WWW-Authenticate",
                          challenge.getHeader("WWW-Authenticate"))])
        value = authorization("alice", "main.dom", "pw", nonce, "sip:main.dom")
        self.assertEqual(self.send(auth=value, cseq=202).code, 403)
        self.assertEqual(self.auth.failures, failures)
        self.assertEqual(self.sendAuthenticated(source=other, cseq=300).code,
                         200)
        self.clock.advance(61)
        self.assertEqual(self.sendAuthenticated(cseq=400).code, 200)

    def test_throttleBounded(self):
        """
        The failure table keeps at most C{maxAddresses} entries.
        """
        self.registrar.throttle.maxAddresses = 5
        for i in range(20):
            self.sendAuthenticated(password="bad",
                                   source=Peer("UDP", "192.0.2.%d" % i, 5060))
        self.assertEqual(len(self.registrar.throttle._failures), 5)


class BindingTests(RegistrarTestsMixin, SynchronousTestCase):
    """
    Contact handling, without authentication (as on a trusted network).
    """

    requireAuth = False

    def test_noAuthNeeded(self):
        """
        With C{requireAuth} off a REGISTER binds at once.
        """
        response = self.send()
        self.assertEqual(response.code, 200)
        self.assertEqual(self.location.count(), 1)

    def test_unknownAOR(self):
        """
        Without authentication an unknown To still gets 404.
        """
        self.assertEqual(self.send(to="nobody").code, 404)

    def test_intervalTooBrief(self):
        """
        0 < expires < minExpires gets 423 with Min-Expires.
        """
        response = self.send(contacts=["<sip:a@192.0.2.1>;expires=30"])
        self.assertEqual(response.code, 423)
        self.assertEqual(response.getHeader("Min-Expires"), "60")
        response = self.send(expires=10)
        self.assertEqual(response.code, 423)
        self.assertEqual(self.location.count(), 0)

    def test_expiresSources(self):
        """
        The Contact's expires wins over the Expires header, which wins
        over the default; more than maxExpires is cut to it.
        """
        response = self.send(contacts=["<sip:a@192.0.2.1>;expires=120",
                                       "<sip:b@192.0.2.2>",
                                       "<sip:c@192.0.2.3>;expires=99999"],
                             expires=300)
        self.assertEqual(sorted(self.contactsOf(response)),
                         ["<sip:a@192.0.2.1>;expires=120",
                          "<sip:b@192.0.2.2>;expires=300",
                          "<sip:c@192.0.2.3>;expires=3600"])
        response = self.send(contacts=["<sip:d@192.0.2.4>"], cseq=2,
                             callId="x")
        self.assertIn("<sip:d@192.0.2.4>;expires=3600",
                      self.contactsOf(response))

    def test_qOrdering(self):
        """
        The 200 lists bindings by q, and shows q when it is not 1.
        """
        response = self.send(contacts=["<sip:a@192.0.2.1>;q=0.2",
                                       "<sip:b@192.0.2.2>;q=0.9",
                                       "<sip:c@192.0.2.3>"])
        self.assertEqual(self.contactsOf(response),
                         ["<sip:c@192.0.2.3>;expires=3600",
                          "<sip:b@192.0.2.2>;expires=3600;q=0.9",
                          "<sip:a@192.0.2.1>;expires=3600;q=0.2"])

    def test_badQ(self):
        """
        A q outside 0..1 is a 400.
        """
        self.assertEqual(self.send(contacts=["<sip:a@192.0.2.1>;q=2"]).code,
                         400)

    def test_query(self):
        """
        A REGISTER without Contact lists the current bindings.
        """
        self.send(contacts=["<sip:a@192.0.2.1>"])
        self.clock.advance(100)
        response = self.send(contacts=[], cseq=2)
        self.assertEqual(response.code, 200)
        self.assertEqual(self.contactsOf(response),
                         ["<sip:a@192.0.2.1>;expires=3500"])

    def test_remove(self):
        """
        Expires 0 on one contact removes it and lists the others.
        """
        self.send(contacts=["<sip:a@192.0.2.1>", "<sip:b@192.0.2.2>"])
        response = self.send(contacts=["<sip:a@192.0.2.1>;expires=0"], cseq=2)
        self.assertEqual(response.code, 200)
        self.assertEqual(self.contactsOf(response),
                         ["<sip:b@192.0.2.2>;expires=3600"])

    def test_wildcard(self):
        """
        Contact * with Expires 0 removes every binding.
        """
        self.send(contacts=["<sip:a@192.0.2.1>", "<sip:b@192.0.2.2>"])
        response = self.send(contacts=["*"], expires=0, cseq=2)
        self.assertEqual(response.code, 200)
        self.assertEqual(self.contactsOf(response), [])
        self.assertEqual(self.location.count(), 0)

    def test_wildcardInvalid(self):
        """
        Contact * without Expires 0, or with other contacts, is a 400.
        """
        self.send(contacts=["<sip:a@192.0.2.1>"])
        self.assertEqual(self.send(contacts=["*"], cseq=2).code, 400)
        self.assertEqual(self.send(contacts=["*"], expires=60, cseq=3).code,
                         400)
        self.assertEqual(self.send(contacts=["*", "<sip:b@192.0.2.2>"],
                                   expires=0, cseq=4).code, 400)
        self.assertEqual(self.location.count(), 1)

    def test_cseqNotHigher(self):
        """
        A REGISTER replaying an old CSeq in the same Call-ID gets 500.
        """
        self.send(cseq=5)
        self.assertEqual(self.send(cseq=5).code, 500)
        self.assertEqual(self.send(cseq=6).code, 200)

    def test_tooManyContacts(self):
        """
        More than maxPerAOR contacts gets 503.
        """
        contacts = ["<sip:a%d@192.0.2.1>" % i for i in range(11)]
        self.assertEqual(self.send(contacts=contacts).code, 503)

    def test_expiryOnClock(self):
        """
        A binding not refreshed is gone after its time.
        """
        self.send(expires=60)
        self.clock.pump([1] * 61)
        self.assertEqual(self.location.lookup("alice@main.dom"), [])
        self.assertEqual(self.location.count(), 0)

    def test_pathEchoed(self):
        """
        Path is stored and echoed when the UA supports it (RFC 3327).
        """
        response = self.send(extra=["Path: <sip:edge1.example;lr>",
                                    "Path: <sip:edge2.example;lr>",
                                    "Supported: path"], vias=2)
        self.assertEqual(response.code, 200)
        self.assertEqual(response.getHeaders("Path"),
                         ["<sip:edge1.example;lr>", "<sip:edge2.example;lr>"])
        [binding] = self.location.lookup("alice@main.dom")
        self.assertEqual(binding.path, ("<sip:edge1.example;lr>",
                                        "<sip:edge2.example;lr>"))

    def test_pathNotEchoedUnsupported(self):
        """
        Without Supported: path the Path is stored but not echoed.
        """
        response = self.send(extra=["Path: <sip:edge1.example;lr>"], vias=2)
        self.assertEqual(response.getHeaders("Path"), [])
        [binding] = self.location.lookup("alice@main.dom")
        self.assertEqual(binding.path, ("<sip:edge1.example;lr>",))

    def test_outbound(self):
        """
        +sip.instance with reg-id binds the flow and the 200 requires
        outbound and echoes the instance (RFC 5626).
        """
        contact = ('<sip:alice@192.0.2.10;ob>;reg-id=1;'
                   '+sip.instance="<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>"')
        response = self.send(contacts=[contact],
                             extra=["Supported: path, outbound"])
        self.assertEqual(response.code, 200)
        self.assertEqual(response.getHeader("Require"), "outbound")
        [value] = self.contactsOf(response)
        self.assertIn('+sip.instance="<urn:uuid:00000000-0000-1000-8000-'
                      'AABBCCDDEEFF>"', value)
        self.assertIn(";reg-id=1", value)
        [binding] = self.location.lookup("alice@main.dom")
        self.assertEqual((binding.regId, binding.instance),
                         (1, "<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>"))

    def test_outboundFirstHop(self):
        """
        Outbound through a proxy whose Path lacks C{ob} gets 439; with
        C{ob} it is accepted.
        """
        contact = '<sip:a@192.0.2.10>;reg-id=1;+sip.instance="<urn:uuid:1>"'
        self.assertEqual(self.send(contacts=[contact], vias=2,
                                   extra=["Path: <sip:edge.example;lr>"]).code,
                         439)
        self.assertEqual(self.send(contacts=[contact], vias=2, cseq=2,
                                   extra=["Path: <sip:edge.example;lr;ob>",
                                          "Supported: path, outbound"]).code,
                         200)

    def test_unsupportedExtension(self):
        """
        Requiring an extension we do not have gets 420 with Unsupported;
        path and outbound may be required.
        """
        response = self.send(extra=["Require: path, gruu"])
        self.assertEqual(response.code, 420)
        self.assertEqual(response.getHeader("Unsupported"), "gruu")
        self.assertEqual(self.send(extra=["Require: path"]).code, 200)

    def test_malformedContact(self):
        """
        A Contact that does not parse is a 400.
        """
        self.assertEqual(self.send(contacts=["<sip:a@>"]).code, 400)

    def test_answerWaitsForDisk(self):
        """
        The 200 is sent only once the binding is durable.
        """
        writer = HeldWriter(self.base)
        self.registrar.location = self.makeLocation(writer)
        transaction = FakeTransaction(registerMessage())
        self.registrar.handleRegister(transaction, transaction.request,
                                      "main.dom")
        self.assertEqual(transaction.responses, [])
        writer.flush()
        self.assertEqual([r.code for r in transaction.responses], [200])

    def test_dateHeader(self):
        """
        The Date header is the reactor's time in RFC 1123 form.
        """
        response = self.send()
        self.assertTrue(re.match(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT\Z",
                                 response.getHeader("Date")))
