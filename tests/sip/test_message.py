# -*- test-case-name: tests.sip.test_message -*-
"""
Tests for L{cgpro.sip.message}: RFC 4475 valid and invalid messages
(reduced to what can be typed exactly), compact forms, folding, URIs,
stream framing and a parse/serialize round-trip property.
"""

from hypothesis import given, settings, strategies as st
from twisted.trial.unittest import TestCase

from cgpro.sip.headers import CSeq, parseCSeq, parseScalar
from cgpro.sip.message import (
    AbsoluteURI, NameAddr, Request, Response, SIPParseError, SIPURI,
    StreamFramer, canonicalName, parseMessage, parseNameAddr, parseURI,
    parseVia, splitQuoted)


def msg(*lines, body=b""):
    """
    Join header lines with CRLF and append the body.
    """
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


BASIC = (
    "INVITE sip:bob@biloxi.example.com SIP/2.0",
    "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds",
    "Max-Forwards: 70",
    "To: Bob <sip:bob@biloxi.example.com>",
    "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774",
    "Call-ID: a84b4c76e66710@pc33.atlanta.example.com",
    "CSeq: 314159 INVITE",
    "Contact: <sip:alice@pc33.atlanta.example.com>",
    "Content-Type: application/sdp",
    "Content-Length: 4",
)


class BasicParseTests(TestCase):
    """
    Tests for the basic request and response structure.
    """

    def test_request(self):
        """
        A plain INVITE exposes its request line and typed headers.
        """
        m = parseMessage(msg(*BASIC, body=b"v=0\n"))
        self.assertIsInstance(m, Request)
        self.assertEqual(m.method, "INVITE")
        self.assertEqual(m.version, "SIP/2.0")
        self.assertEqual(m.requestURI, SIPURI("sip", "bob",
                                              "biloxi.example.com"))
        self.assertEqual(m.via[0].branch, "z9hG4bK776asdhds")
        self.assertEqual(m.via[0].transport, "UDP")
        self.assertEqual(m.via[0].host, "pc33.atlanta.example.com")
        self.assertIsNone(m.via[0].port)
        self.assertEqual(m.maxForwards, 70)
        self.assertEqual(m.toAddr.displayName, "Bob")
        self.assertIsNone(m.toAddr.tag)
        self.assertEqual(m.fromAddr.tag, "1928301774")
        self.assertEqual(m.fromAddr.uri.user, "alice")
        self.assertEqual(m.callId, "a84b4c76e66710@pc33.atlanta.example.com")
        self.assertEqual((m.cseq.number, m.cseq.method), (314159, "INVITE"))
        self.assertEqual(m.contact[0].uri.host, "pc33.atlanta.example.com")
        self.assertEqual(m.contentType, "application/sdp")
        self.assertEqual(m.contentLength, 4)
        self.assertEqual(m.body, b"v=0\n")
        m.validate()

    def test_response(self):
        """
        A status line gives code, reason and version.
        """
        lines = ("SIP/2.0 180 Ringing",) + BASIC[1:2] + BASIC[3:8]
        m = parseMessage(msg(*lines))
        self.assertIsInstance(m, Response)
        self.assertEqual((m.code, m.reason), (180, "Ringing"))
        self.assertIsNone(m.contentLength)
        m.validate()

    def test_emptyReason(self):
        """
        An empty reason phrase is allowed.
        """
        lines = ("SIP/2.0 200 ",) + BASIC[1:2] + BASIC[3:8]
        self.assertEqual(parseMessage(msg(*lines)).reason, "")

    def test_lazyHeaders(self):
        """
        A malformed optional header does not fail the parse, only its
        accessor.
        """
        m = parseMessage(msg(*BASIC[:-2] + ("Expires: soon",)))
        self.assertEqual(m.cseq.number, 314159)
        self.assertRaises(SIPParseError, lambda: m.expires)

    def test_headerOrderKept(self):
        """
        Headers are kept in order with canonical names and raw values.
        """
        m = parseMessage(msg(*BASIC, body=b"v=0\n"))
        self.assertEqual([n for n, _ in m.headers][:3],
                         ["Via", "Max-Forwards", "To"])
        self.assertEqual(m.getHeader("call-id"),
                         "a84b4c76e66710@pc33.atlanta.example.com")


class HeaderFormTests(TestCase):
    """
    Tests for compact forms, case, folding and repeated headers.
    """

    def test_compactForms(self):
        """
        Every compact form maps to its full header name.
        """
        expected = {
            "i": "Call-ID", "m": "Contact", "e": "Content-Encoding",
            "l": "Content-Length", "f": "From", "t": "To", "v": "Via",
            "k": "Supported", "c": "Content-Type", "s": "Subject",
            "o": "Event", "u": "Allow-Events", "r": "Refer-To",
            "b": "Referred-By", "x": "Session-Expires", "y": "Identity"}
        for short, full in expected.items():
            self.assertEqual(canonicalName(short), full)
            self.assertEqual(canonicalName(short.upper()), full)

    def test_compactMessage(self):
        """
        A message written entirely in compact forms parses (RFC 4475
        section 3.1.1.1 uses them).
        """
        m = parseMessage(msg(
            "OPTIONS sip:user@example.com SIP/2.0",
            "v: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw",
            "t: <sip:user@example.com>",
            "f: <sip:caller@example.net>;tag=98asjd8",
            "i: 0ha0isndaksdj@192.0.2.1",
            "CSeq: 8 OPTIONS",
            "Max-Forwards: 70",
            "m: <sip:caller@host.example.com>",
            "c: text/plain",
            "l: 2", body=b"hi"))
        self.assertEqual(m.callId, "0ha0isndaksdj@192.0.2.1")
        self.assertEqual(m.fromAddr.tag, "98asjd8")
        self.assertEqual(m.body, b"hi")
        self.assertIn(b"\r\nCall-ID: 0ha0isndaksdj@192.0.2.1\r\n",
                      m.serialize())

    def test_caseInsensitiveNames(self):
        """
        Header names match in any case and get their canonical spelling.
        """
        self.assertEqual(canonicalName("CALL-ID"), "Call-ID")
        self.assertEqual(canonicalName("cseq"), "CSeq")
        self.assertEqual(canonicalName("www-authenticate"),
                         "WWW-Authenticate")
        self.assertEqual(canonicalName("x-custom-header"), "X-Custom-Header")

    def test_folding(self):
        """
        Continuation lines are unfolded into a single space.
        """
        m = parseMessage(msg(*BASIC[:-2] + (
            "Subject: I know you're there,",
            "   pick up the phone",
            "\tand talk to me!",)))
        self.assertEqual(m.getHeader("s"),
                         "I know you're there, pick up the phone "
                         "and talk to me!")

    def test_multipleViaInOneAndSeveral(self):
        """
        Via elements come in order whether comma-separated or repeated.
        """
        m = parseMessage(msg(
            "REGISTER sip:example.com SIP/2.0",
            "Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1, "
            "SIP/2.0/TCP b.example.com:5070;branch=z9hG4bK2",
            "v: SIP/2.0/TLS [2001:db8::9:1]:5061;branch=z9hG4bK3;rport=5060;"
            "received=192.0.2.7",
            "Via: SIP/2.0/UDP c.example.com;rport;branch=z9hG4bK4",
            "To: <sip:u@example.com>",
            "From: <sip:u@example.com>;tag=x",
            "Call-ID: reg1", "CSeq: 1 REGISTER", "Max-Forwards: 70"))
        vias = m.via
        self.assertEqual([v.branch for v in vias],
                         ["z9hG4bK1", "z9hG4bK2", "z9hG4bK3", "z9hG4bK4"])
        self.assertEqual(vias[1].port, 5070)
        self.assertEqual(vias[2].host, "[2001:db8::9:1]")
        self.assertEqual(vias[2].rport, 5060)
        self.assertEqual(vias[2].received, "192.0.2.7")
        self.assertTrue(vias[3].hasRport)
        self.assertIsNone(vias[3].rport)
        self.assertFalse(vias[0].hasRport)

    def test_unusualWhitespace(self):
        """
        The LWS of RFC 4475's wsinv (around colons, slashes, parameters,
        folded lines) is tolerated.
        """
        m = parseMessage(msg(
            "INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0",
            "TO :",
            " sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n",
            "from   : \"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>",
            "  ;",
            "  tag = 98asjd8",
            "MaX-fOrWaRdS: 0068",
            "Call-ID: wsinv.ndaksdj@192.0.2.1",
            "Content-Length   : 0",
            "cseq: 0009",
            "  INVITE",
            "Via  : SIP  /   2.0",
            " /UDP",
            "    192.0.2.2;branch=390skdjuw",
            "s :",
            "NewFangledHeader:   newfangled value",
            " continued newfangled value",
            "UnknownHeaderWithUnusualValue: ;;,,;;,;",
            "Route:",
            " <sip:services.example.com;lr;unknownwith=value;unknown-no-value>",
            "v:  SIP  / 2.0  / TCP     spindle.example.com   ;",
            "  branch  =   z9hG4bK9ikj8  ,",
            " SIP  /    2.0   / UDP  192.168.255.111   ; branch=",
            " z9hG4bK30239",
            "m:\"Quoted string \\\"\\\"\" <sip:jdrosen@example.com> ; "
            "newparam =",
            "      newvalue ;",
            "  secondparam ; q = 0.33"))
        m.validate()
        self.assertEqual(m.toAddr.tag, "1918181833n")
        self.assertEqual(m.fromAddr.displayName, 'J Rosenberg \\"')
        self.assertEqual(m.fromAddr.tag, "98asjd8")
        self.assertEqual(m.maxForwards, 68)
        self.assertEqual((m.cseq.number, m.cseq.method), (9, "INVITE"))
        self.assertEqual([(v.transport, v.host, v.branch) for v in m.via],
                         [("UDP", "192.0.2.2", "390skdjuw"),
                          ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
                          ("UDP", "192.168.255.111", "z9hG4bK30239")])
        self.assertEqual(m.getHeader("Subject"), "")
        self.assertEqual(m.getHeader("newfangledheader"),
                         "newfangled value continued newfangled value")
        self.assertTrue(m.route[0].uri.hasParam("lr"))
        contact = m.contact[0]
        self.assertEqual(contact.displayName, 'Quoted string ""')
        self.assertEqual(contact.params, [("newparam", "newvalue"),
                                          ("secondparam", None),
                                          ("q", "0.33")])
        self.assertTrue(m.requestURI.hasParam("unknownparam"))

    def test_contactStar(self):
        """
        C{Contact: *} is a wildcard, and cannot be mixed with addresses.
        """
        m = parseMessage(msg(*BASIC[:7] + ("Contact: *", "Expires: 0")))
        self.assertTrue(m.contact[0].wildcard)
        self.assertEqual(m.expires, 0)
        m = parseMessage(msg(*BASIC[:7] + ("Contact: *, <sip:a@b>",)))
        self.assertRaises(SIPParseError, lambda: m.contact)

    def test_commaInQuotes(self):
        """
        A comma inside a quoted display name does not split a Contact.
        """
        m = parseMessage(msg(*BASIC[:7] + (
            'Contact: "Doe, John" <sip:j@a.example>;q=0.5, sip:k@b.example',)))
        self.assertEqual([c.displayName for c in m.contact],
                         ["Doe, John", None])
        self.assertEqual(m.contact[1].uri.user, "k")

    def test_setHeaderInvalidatesCache(self):
        """
        Changing a header drops the cached typed value.
        """
        m = parseMessage(msg(*BASIC, body=b"v=0\n"))
        self.assertEqual(m.maxForwards, 70)
        m.setHeader("Max-Forwards", "69")
        self.assertEqual(m.maxForwards, 69)
        m.removeHeader("Contact")
        self.assertEqual(m.contact, [])


class ValidTortureTests(TestCase):
    """
    Further RFC 4475 valid messages, reduced to their point.
    """

    def request(self, first, *extra, **kw):
        """
        Parse a request with C{first} as request line, the basic
        mandatory headers (CSeq method taken from C{first}) and C{extra}.
        """
        method = first.split(" ")[0]
        lines = (first,) + BASIC[1:6] + ("CSeq: 1 " + method,) + extra
        m = parseMessage(msg(*lines), **kw)
        m.validate()
        return m

    def test_semicolonInUser(self):
        """
        A user part may hold C{;} and escaped C{@} (semiuri).
        """
        m = self.request("OPTIONS sip:user;par=u%40example.net@example.com "
                         "SIP/2.0")
        self.assertEqual(m.requestURI.user, "user;par=u@example.net")
        self.assertEqual(m.requestURI.host, "example.com")
        self.assertEqual(m.requestURI.params, [])

    def test_unusualMethod(self):
        """
        Any token is a method, matched against CSeq (intmeth).
        """
        method = "!interesting-Method0123456789_*+`.%indeed'~"
        m = self.request("%s sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy"
                         "?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
                         "@example.com SIP/2.0" % (method,))
        self.assertEqual(m.method, method)
        self.assertEqual(m.requestURI.user, "1_unusual.URI~(to-be!sure)&"
                         "isn't+it$/crazy?,/;;*")
        self.assertEqual(m.requestURI.password,
                         "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")

    def test_displayNameWithoutSpace(self):
        """
        A token display name may touch the C{<} (lwsdisp).
        """
        m = self.request("OPTIONS sip:user@example.com SIP/2.0",
                         "Contact: caller<sip:caller@example.com>;q=0.5")
        self.assertEqual(m.contact[0].displayName, "caller")
        self.assertEqual(m.contact[0].getParam("q"), "0.5")

    def test_escapedHeaderInContact(self):
        """
        A Contact URI may carry escaped headers (regescrt).
        """
        m = self.request("REGISTER sip:example.com SIP/2.0",
                         "Contact: <sip:user@example.com"
                         "?Route=%3Csip:sip.example.com%3E>")
        self.assertEqual(m.contact[0].uri.headers,
                         [("Route", "<sip:sip.example.com>")])

    def test_zeroMaxForwards(self):
        """
        Max-Forwards 0 parses; refusing it is the proxy's job (zeromf).
        """
        lines = list(BASIC[:-2])
        lines[2] = "Max-Forwards: 0"
        self.assertEqual(parseMessage(msg(*lines)).maxForwards, 0)

    def test_rfc2543Style(self):
        """
        A Via without branch and an unknown transport parse (inv2543,
        transports).
        """
        m = self.request("INVITE sip:UserB@example.com SIP/2.0",
                         "Via: SIP/2.0/UNKNOWN t.example.com:5060")
        self.assertEqual(m.via[1].transport, "UNKNOWN")
        self.assertIsNone(m.via[1].branch)

    def test_utf8Reason(self):
        """
        A UTF-8 reason phrase is kept and written back unchanged
        (unreason).
        """
        reason = "= 2**3 * 5**2 \u043d\u043e \u0441\u0442\u043e"
        lines = ("SIP/2.0 200 " + reason,) + BASIC[1:2] + BASIC[3:7]
        m = parseMessage(msg(*lines))
        self.assertEqual(m.reason, reason)
        self.assertTrue(m.serialize().startswith(
            ("SIP/2.0 200 " + reason + "\r\n").encode("utf-8")))

    def test_nonUTF8Survives(self):
        """
        Bytes that are not UTF-8 survive a round trip.
        """
        data = msg(*BASIC[:-2] + ("Subject: caf\xe9",)).replace(
            "caf\xe9".encode("utf-8"), b"caf\xe9")
        self.assertIn(b"Subject: caf\xe9\r\n",
                      parseMessage(data).serialize())


class URITests(TestCase):
    """
    Tests for L{parseURI} and L{SIPURI} serialization.
    """

    def test_full(self):
        """
        Every part of a sips URI is parsed.
        """
        u = parseURI("sips:alice:secret@atlanta.example.com:5061;"
                     "transport=tcp;lr?subject=project%20x&priority=urgent")
        self.assertEqual((u.scheme, u.user, u.password, u.host, u.port),
                         ("sips", "alice", "secret", "atlanta.example.com",
                          5061))
        self.assertEqual(u.params, [("transport", "tcp"), ("lr", None)])
        self.assertEqual(u.headers, [("subject", "project x"),
                                     ("priority", "urgent")])
        self.assertEqual(parseURI(str(u)), u)

    def test_hosts(self):
        """
        IPv4, IPv6 references and domains are accepted as hosts.
        """
        self.assertEqual(parseURI("sip:192.0.2.4:5060").port, 5060)
        self.assertEqual(parseURI("sip:[2001:db8::10]:5070").host,
                         "[2001:db8::10]")
        self.assertEqual(parseURI("sip:user@[::1]").host, "[::1]")

    def test_escapedUser(self):
        """
        Escapes in the user part are decoded (RFC 4475 esc01, escnull).
        """
        u = parseURI("sip:sips%3Auser%40example.com@example.net")
        self.assertEqual(u.user, "sips:user@example.com")
        self.assertEqual(u.host, "example.net")
        self.assertEqual(str(u), "sip:sips%3Auser%40example.com@example.net")
        self.assertEqual(parseURI("sip:null-%00-null@example.com").user,
                         "null-\x00-null")
        self.assertEqual(parseURI("sip:%61lice@atlanta.com").user, "alice")

    def test_tel(self):
        """
        tel URIs keep the number and parameters.
        """
        u = parseURI("tel:+1-201-555-0123;phone-context=example.com")
        self.assertEqual(u.user, "+1-201-555-0123")
        self.assertEqual(u.getParam("phone-context"), "example.com")
        self.assertEqual(str(u), "tel:+1-201-555-0123;phone-context=example.com")

    def test_unknownScheme(self):
        """
        Unknown schemes are kept opaque (RFC 4475 unksm).
        """
        u = parseURI("nosuchscheme:pQ2B@example.com")
        self.assertEqual(u, AbsoluteURI("nosuchscheme", "pQ2B@example.com"))

    def test_bad(self):
        """
        Malformed URIs raise L{SIPParseError}.
        """
        for bad in ["sip:", "sip:user@", "sip:a@b:99999", "sip:a@b c",
                    "noscheme", "sip:a%zz@b", "sip:@host", "sip:host;=x"]:
            self.assertRaises(SIPParseError, parseURI, bad)

    def test_addrSpecParams(self):
        """
        In an addr-spec, parameters after C{;} belong to the header.
        """
        a = parseNameAddr("sip:bob@example.com;tag=abc")
        self.assertEqual(a.tag, "abc")
        self.assertEqual(a.uri.params, [])
        a = parseNameAddr("<sip:bob@example.com;transport=tcp>;tag=abc")
        self.assertEqual(a.uri.params, [("transport", "tcp")])
        self.assertEqual(a.tag, "abc")
        self.assertEqual(str(a), "<sip:bob@example.com;transport=tcp>;tag=abc")

    def test_via(self):
        """
        L{parseVia} serializes back to an equivalent element.
        """
        v = parseVia("SIP / 2.0 / udp 10.0.0.1 : 5060 ; branch = z9hG4bKx")
        self.assertEqual((v.transport, v.host, v.port, v.branch),
                         ("UDP", "10.0.0.1", 5060, "z9hG4bKx"))
        self.assertEqual(str(v), "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKx")


class FastPathTests(TestCase):
    """
    The parsers take a shortcut for the forms clients write (SIPp, phones:
    C{SIP/2.0/UDP host:port;params}, C{<uri>;params}, C{1 REGISTER}); the
    result must be the same as through the general path, and the same
    inputs must still be refused.
    """

    REGISTER = msg(
        "REGISTER sip:127.0.0.1 SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:16010;branch=z9hG4bK-1-2-0;rport",
        "Max-Forwards: 70",
        "From: <sip:user0001@127.0.0.1>;tag=1SIPpTag002",
        "To: <sip:user0001@127.0.0.1>",
        "Call-ID: 2-1@127.0.0.1",
        "CSeq: 1 REGISTER",
        "Contact: <sip:user0001@127.0.0.1:16010;transport=UDP>",
        "Expires: 3600",
        "Content-Length: 0",
    )

    def test_sippRegister(self):
        """
        A SIPp REGISTER parses into the expected typed values.
        """
        m = parseMessage(self.REGISTER)
        m.validate()
        self.assertEqual(m.version, "SIP/2.0")
        self.assertEqual(str(m.requestURI), "sip:127.0.0.1")
        via = m.via[0]
        self.assertEqual((via.protocol, via.version, via.transport, via.host, via.port),
                         ("SIP", "2.0", "UDP", "127.0.0.1", 16010))
        self.assertEqual(via.params, [("branch", "z9hG4bK-1-2-0"), ("rport", None)])
        self.assertTrue(via.hasRport)
        self.assertIsNone(via.rport)
        self.assertEqual(m.fromAddr.tag, "1SIPpTag002")
        self.assertIsNone(m.fromAddr.displayName)
        self.assertEqual(m.toAddr, NameAddr(SIPURI("sip", "user0001", "127.0.0.1")))
        self.assertEqual(m.cseq, CSeq(1, "REGISTER"))
        self.assertEqual(m.expires, 3600)
        self.assertEqual(m.contentLength, 0)
        self.assertEqual([str(c) for c in m.contact],
                         ["<sip:user0001@127.0.0.1:16010;transport=UDP>"])
        self.assertEqual(parseMessage(m.serialize()).serialize(), m.serialize())

    def test_cachedAccessorsSeeChanges(self):
        """
        The accessors answer from the cache, and a change made through
        setHeader (which clears it) is seen.
        """
        m = parseMessage(self.REGISTER)
        self.assertIs(m.cseq, m.cseq)
        self.assertIs(m.via, m.via)
        m.setHeader("CSeq", "2 REGISTER")
        self.assertEqual(m.cseq.number, 2)
        m.setHeader("Via", "SIP/2.0/TCP 10.0.0.1;branch=z9hG4bKnew")
        self.assertEqual(m.via[0].transport, "TCP")

    def test_viaSameAsGeneralPath(self):
        """
        A Via in the common form equals the one the general path parses
        from the same element written with extra whitespace.
        """
        for fast, general in [
                ("SIP/2.0/UDP 127.0.0.1:16010;branch=z9hG4bKa;rport",
                 "SIP / 2.0 / UDP 127.0.0.1 : 16010 ; branch = z9hG4bKa ; rport"),
                ("SIP/2.0/udp host.example.com;branch=z9hG4bKb",
                 "SIP/2.0/UDP  host.example.com ;branch=z9hG4bKb"),
                ("SIP/2.0/TLS [2001:db8::1]:5061;rport=5;received=10.0.0.1",
                 "SIP/2.0/TLS [2001:db8::1]:5061 ;rport=5;received=10.0.0.1"),
                ("SIP/2.0/TCP h", "SIP/2.0/TCP\th")]:
            a, b = parseVia(fast), parseVia(general)
            self.assertEqual(a, b)
            self.assertEqual((a.transport, a.host, a.port, a.params),
                             (b.transport, b.host, b.port, b.params))

    def test_viaStillStrict(self):
        """
        The shortcut refuses what the general path refuses.
        """
        for bad in ["SIP/2.0/UDP 127.0.0.1:99999;branch=x",
                    "SIP/2.0/UDP 127.0.0.1;rport=abc",
                    "SIP/2.0/UDP 127.0.0.1;rport=\u0663",
                    "SIP/2.0/UDP host/x;branch=x",
                    "SIP/2.0/UDP ;branch=x",
                    "SIP/2.0/ 127.0.0.1",
                    "SIP/2.0/UDP 127.0.0.1;=x",
                    "SIP/2.0/UDP 127.0.0.1;branch="]:
            self.assertRaises(SIPParseError, parseVia, bad)

    def test_cseq(self):
        """
        CSeq: known methods take the shortcut, other tokens the regex,
        and the range and digits are checked either way.
        """
        self.assertEqual(parseCSeq("1 REGISTER"), CSeq(1, "REGISTER"))
        self.assertEqual(parseCSeq("  7\tINVITE "), CSeq(7, "INVITE"))
        self.assertEqual(parseCSeq("3 NEWMETHOD"), CSeq(3, "NEWMETHOD"))
        self.assertEqual(parseCSeq("2147483647 BYE").number, 2 ** 31 - 1)
        for bad in ["2147483648 INVITE", "-1 INVITE", "\u0661 INVITE",
                    "1 INV ITE", "1", "x INVITE", "1 INVITE;"]:
            self.assertRaises(SIPParseError, parseCSeq, bad)

    def test_scalarsAreASCIIDigits(self):
        """
        Max-Forwards, Expires and Content-Length take ASCII digits only.
        """
        self.assertEqual(parseScalar("Expires", " 3600 ", 2 ** 32 - 1), 3600)
        for bad in ["\u0663", "\u00b2", "+1", "1.0", ""]:
            self.assertRaises(SIPParseError, parseScalar, "Expires", bad, 100)

    def test_nameAddr(self):
        """
        C{<uri>;params} (the shortcut) and the general forms give equal
        values; junk and unclosed brackets are refused.
        """
        self.assertEqual(parseNameAddr("<sip:a@b>;tag=1"),
                         parseNameAddr('"" <sip:a@b> ;tag=1'.replace('"" ', "")))
        a = parseNameAddr("<sip:a@b;lr> ; tag = 1 ;x")
        self.assertEqual(a.params, [("tag", "1"), ("x", None)])
        self.assertEqual(a.uri.params, [("lr", None)])
        self.assertIsNone(a.displayName)
        self.assertFalse(a.wildcard)
        self.assertEqual(str(parseNameAddr("<sip:a@b>")), "<sip:a@b>")
        for bad in ["<sip:a@b>junk", "<sip:a@b", "<sip:a@b>;", "<sip:a@b>;=x",
                    "<sip:a b@c>"]:
            self.assertRaises(SIPParseError, parseNameAddr, bad)

    def test_splitQuotedWithoutSeparator(self):
        """
        With no separator in the text, unclosed quotes and brackets are
        still errors.
        """
        self.assertEqual(splitQuoted('"a" <sip:x@y>', ","), ['"a" <sip:x@y>'])
        self.assertEqual(splitQuoted('"a\\"b" <sip:x@y>', ","), ['"a\\"b" <sip:x@y>'])
        for bad in ['"abc <sip:x@y>', "<sip:x@y", '"a\\"']:
            self.assertRaises(SIPParseError, splitQuoted, bad, ",")

    def test_canonicalName(self):
        """
        Canonical spellings come back unchanged; others are mapped.
        """
        for name, canonical in [("Call-ID", "Call-ID"), ("call-id", "Call-ID"),
                                ("CSEQ", "CSeq"), ("Cseq", "CSeq"), ("v", "Via"),
                                ("Via", "Via"), ("x-my-header", "X-My-Header"),
                                ("X-My-Header", "X-My-Header"),
                                ("www-authenticate", "WWW-Authenticate")]:
            self.assertEqual(canonicalName(name), canonical)

    def test_requestLine(self):
        """
        The request line shortcut keeps the old rules: any token method,
        the version upper-cased, other versions kept for the 505.
        """
        lines = list(BASIC)
        lines[0] = "NEWMETHOD sip:bob@biloxi.example.com sip/2.0"
        lines[6] = "CSeq: 1 NEWMETHOD"
        m = parseMessage(msg(*lines, body=b"v=0\n"))
        self.assertEqual((m.method, m.version), ("NEWMETHOD", "SIP/2.0"))
        lines[0] = "NEWMETHOD sip:bob@biloxi.example.com SIP/7.0"
        self.assertEqual(parseMessage(msg(*lines, body=b"v=0\n")).version, "SIP/7.0")
        for bad in ["INV@TE sip:a@b SIP/2.0", "INVITE sip:a@b HTTP/1.1"]:
            lines[0] = bad
            self.assertRaises(SIPParseError, parseMessage, msg(*lines, body=b"v=0\n"))

    def test_noContentLengthOnDatagram(self):
        """
        Without Content-Length a datagram's body is everything after the
        headers.
        """
        lines = [l for l in BASIC if not l.startswith("Content-Length")]
        m = parseMessage(msg(*lines, body=b"v=0\r\n"))
        self.assertIsNone(m.contentLength)
        self.assertEqual(m.body, b"v=0\r\n")


class URIFastPathTests(TestCase):
    """
    L{parseURI} and L{SIPURI.__str__} shortcuts.
    """

    def test_schemes(self):
        """
        The scheme is case-insensitive and checked.
        """
        self.assertEqual(parseURI("SIP:a@b").scheme, "sip")
        self.assertEqual(parseURI("Sips:a@b").scheme, "sips")
        self.assertIsInstance(parseURI("urn:service:sos"), AbsoluteURI)
        for bad in ["1sip:a@b", "si p:a@b", ":a@b", "sip", "sip:a@b\t",
                    "sip:a@b\r\n"]:
            self.assertRaises(SIPParseError, parseURI, bad)

    def test_strEscapes(self):
        """
        The common-form serialization escapes the user like the general
        one, and URIs with a password or headers still serialize fully.
        """
        u = SIPURI("sip", "a b%c", "example.com", 5060, [("lr", None), ("x", "1")])
        self.assertEqual(str(u), "sip:a%20b%25c@example.com:5060;lr;x=1")
        self.assertEqual(parseURI(str(u)), u)
        self.assertEqual(str(SIPURI("sip", None, "h")), "sip:h")
        self.assertEqual(str(SIPURI("sips", "\u00e9", "h")), "sips:%C3%A9@h")
        u = SIPURI("sip", "u", "h", None, [], [("subject", "a b")], password="p w")
        self.assertEqual(str(u), "sip:u:p%20w@h?subject=a%20b")
        self.assertEqual(parseURI(str(u)), u)

    def test_paramsAndHeaders(self):
        """
        Parameters and headers are parsed whatever their order of checks.
        """
        u = parseURI("sip:u@h:5;a=1;B;c=x?h1=v1&h2=")
        self.assertEqual(u.params, [("a", "1"), ("b", None), ("c", "x")])
        self.assertEqual(u.headers, [("h1", "v1"), ("h2", "")])
        self.assertEqual(u.port, 5)
        u = parseURI("sip:h")
        self.assertEqual((u.user, u.port, u.params, u.headers), (None, None, [], []))
        u.params.append(("lr", None))
        self.assertEqual(parseURI("sip:h").params, [])


class InvalidMessageTests(TestCase):
    """
    Tests for the RFC 4475 invalid messages and other malformed input.
    """

    def assertParseError(self, data, fragment, **kw):
        """
        Parsing C{data} (and validating it) fails with C{fragment} in the
        reason.
        """
        def parse():
            parseMessage(data, **kw).validate()
        err = self.assertRaises(SIPParseError, parse)
        self.assertIn(fragment, str(err))

    def test_missingHeaders(self):
        """
        Each mandatory header is required.
        """
        for i, name in [(1, "Via"), (2, "Max-Forwards"), (3, "To"),
                        (4, "From"), (5, "Call-ID"), (6, "CSeq")]:
            lines = BASIC[:i] + BASIC[i + 1:-1]
            self.assertParseError(msg(*lines), "missing " + name)

    def test_responseNeedsNoMaxForwards(self):
        """
        Responses do not require Max-Forwards.
        """
        lines = ("SIP/2.0 200 OK", BASIC[1]) + BASIC[3:7]
        parseMessage(msg(*lines)).validate()

    def test_badContentLength(self):
        """
        A Content-Length larger than the body, negative or not a number is
        rejected (RFC 4475 clerr, ncl).
        """
        self.assertParseError(msg(*BASIC[:-1] + ("Content-Length: 9999",),
                                  body=b"v=0\n"), "exceeds body")
        self.assertParseError(msg(*BASIC[:-1] + ("Content-Length: -999",),
                                  body=b"v=0\n"), "Content-Length")
        self.assertParseError(msg(*BASIC[:-1] + ("Content-Length: x",)),
                              "Content-Length")

    def test_extraBodyDiscardedOnUDP(self):
        """
        Bytes beyond Content-Length are dropped on a datagram.
        """
        m = parseMessage(msg(*BASIC, body=b"v=0\nJUNK"))
        self.assertEqual(m.body, b"v=0\n")

    def test_negativeCSeq(self):
        """
        A negative or overlarge CSeq is rejected (RFC 4475 ncl, scalar02).
        """
        self.assertParseError(msg(*BASIC[:6] + ("CSeq: -999 INVITE",)),
                              "CSeq")
        self.assertParseError(
            msg(*BASIC[:6] + ("CSeq: 36893488147419103232 INVITE",)), "CSeq")

    def test_overlargeScalars(self):
        """
        Max-Forwards over 255 is rejected (RFC 4475 scalar02).
        """
        lines = list(BASIC[:-2])
        lines[2] = "Max-Forwards: 300"
        self.assertParseError(msg(*lines), "Max-Forwards")

    def test_cseqMethodMismatch(self):
        """
        The CSeq method must match the request method (RFC 4475
        mismatch01).
        """
        self.assertParseError(msg(*BASIC[:6] + ("CSeq: 1 OPTIONS",)),
                              "does not match")

    def test_badRequestLine(self):
        """
        Extra spaces or LWS in the request line are errors (RFC 4475
        lwsstart, lwsruri, badaspec), as are missing parts.
        """
        for line in ["INVITE  sip:bob@example.com SIP/2.0",
                     "INVITE sip:bob@example.com; lr SIP/2.0",
                     "INVITE sip:bob@example.com",
                     "INVITE sip:bob@example.com SIP/2.0 ",
                     "INV@TE sip:bob@example.com SIP/2.0",
                     "INVITE sip:bob@example.com XIP/2.0"]:
            self.assertRaises(SIPParseError, parseMessage,
                              msg(*(line,) + BASIC[1:-2]))

    def test_badStatusLine(self):
        """
        A status code must be three digits from 100 to 699.
        """
        for line in ["SIP/2.0 99 Odd", "SIP/2.0 700 Odd", "SIP/2.0 OK"]:
            self.assertRaises(SIPParseError, parseMessage,
                              msg(*(line,) + BASIC[1:-2]))

    def test_badHeaderLine(self):
        """
        A header line without a colon is rejected.
        """
        self.assertParseError(msg(*BASIC[:-2] + ("NoColonHere",)),
                              "bad header line")

    def test_unterminatedQuote(self):
        """
        An unclosed quoted display name is rejected (RFC 4475 quotbal).
        """
        lines = list(BASIC[:-2])
        lines[3] = 'To: "Mr. J. User <sip:j.user@example.com>'
        self.assertParseError(msg(*lines), "unterminated")

    def test_duplicateSingleHeader(self):
        """
        Two CSeq headers are an error (RFC 4475 multi01).
        """
        self.assertParseError(msg(*BASIC[:-2] + ("CSeq: 2 INVITE",)),
                              "more than one CSeq")

    def test_oversized(self):
        """
        Messages over the size limit are refused before parsing.
        """
        self.assertParseError(msg(*BASIC, body=b"v=0\n"), "too large",
                              maxSize=100)

    def test_streamNeedsContentLength(self):
        """
        On a stream Content-Length is mandatory.
        """
        self.assertParseError(msg(*BASIC[:-2]), "Content-Length",
                              stream=True)

    def test_headersInRequestURI(self):
        """
        URI headers are not allowed in a Request-URI (RFC 4475 escruri).
        """
        self.assertParseError(
            msg("INVITE sip:user@example.com?Route=%3Csip:example.com%3E "
                "SIP/2.0", *BASIC[1:-2]), "headers in Request-URI")

    def test_angleBracketsInRequestURI(self):
        """
        A Request-URI in angle brackets is rejected (RFC 4475 ltgtruri).
        """
        self.assertRaises(SIPParseError, parseMessage, msg(
            "INVITE <sip:user@example.com> SIP/2.0", *BASIC[1:-2]))

    def test_garbage(self):
        """
        Garbage raises L{SIPParseError}, never another exception.
        """
        for junk in [b"", b"\x00\xff\xfe", b"hello", b"SIP/2.0",
                     b"\r\n\r\n", b"INVITE x SIP/2.0\r\n:\r\n\r\n"]:
            self.assertRaises(SIPParseError, parseMessage, junk)


class StreamFramerTests(TestCase):
    """
    Tests for L{StreamFramer}.
    """

    def setUp(self):
        self.messages = []
        self.pings = []
        self.framer = StreamFramer(self.messages.append,
                                   lambda: self.pings.append(1))

    def test_splitAndReassemble(self):
        """
        Messages are delivered whole whatever the segmentation.
        """
        one = msg(*BASIC, body=b"v=0\n")
        data = b"\r\n\r\n" + one + one + b"\r\n" + one
        for i in range(0, len(data), 7):
            self.framer.dataReceived(data[i:i + 7])
        self.assertEqual(len(self.messages), 3)
        self.assertEqual([m.body for m in self.messages], [b"v=0\n"] * 3)
        self.assertEqual(self.pings, [1])

    def test_keepAliveOnly(self):
        """
        CRLF keep-alives alone produce no message.
        """
        self.framer.dataReceived(b"\r\n\r\n")
        self.framer.dataReceived(b"\r\n")
        self.assertEqual(self.messages, [])
        self.assertEqual(self.pings, [1])

    def test_missingContentLength(self):
        """
        A stream message without Content-Length is an error.
        """
        self.assertRaises(SIPParseError, self.framer.dataReceived,
                          msg(*BASIC[:-2]))

    def test_tooLarge(self):
        """
        Huge Content-Length or an endless header section is refused.
        """
        framer = StreamFramer(self.messages.append, maxSize=200)
        self.assertRaises(SIPParseError, framer.dataReceived,
                          b"x" * 201)
        framer = StreamFramer(self.messages.append, maxSize=2000)
        self.assertRaises(SIPParseError, framer.dataReceived,
                          msg(*BASIC[:-1] + ("l: 99999",)))


_token = st.text("abcdefghijklmnopqrstuvwxyz0123456789-.", min_size=1,
                 max_size=12)
_host = st.one_of(
    st.lists(st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1,
                     max_size=8), min_size=1, max_size=3).map(".".join),
    st.tuples(*[st.integers(0, 255)] * 4).map(
        lambda t: "%d.%d.%d.%d" % t),
    st.just("[2001:db8::1]"))
_user = st.text(st.characters(min_codepoint=32, max_codepoint=0x3ff,
                              exclude_characters="\x7f"),
                min_size=1, max_size=10)
_port = st.one_of(st.none(), st.integers(1, 65535))
_params = st.lists(st.tuples(_token, st.one_of(st.none(), _token)),
                   max_size=3)
_uri = st.builds(SIPURI, st.sampled_from(["sip", "sips"]), _user, _host,
                 _port, _params)
_display = st.one_of(st.none(), st.text(
    st.characters(min_codepoint=32, max_codepoint=0x3ff,
                  exclude_characters="\x7f"), max_size=10))


def _spell(name, data):
    """
    Draw a random spelling of a header name: compact, upper or lower.
    """
    compact = {"Via": "v", "To": "t", "From": "f", "Call-ID": "i",
               "Contact": "m"}
    choices = [name, name.upper(), name.lower()]
    if name in compact:
        choices.append(compact[name])
    return data.draw(st.sampled_from(choices))


class RoundTripTests(TestCase):
    """
    serialize(parse(x)) parses to the same values.
    """

    @settings(max_examples=200, deadline=None)
    @given(data=st.data(), ruri=_uri, fromUri=_uri, toUri=_uri,
           display=_display, tag=_token, callId=_token, branch=_token,
           viaHost=_host, viaPort=_port, number=st.integers(0, 2 ** 31 - 1),
           method=st.sampled_from(["INVITE", "REGISTER", "OPTIONS", "FOO"]),
           body=st.binary(max_size=40), contacts=st.lists(_uri, max_size=3))
    def test_roundTrip(self, data, ruri, fromUri, toUri, display, tag, callId,
                       branch, viaHost, viaPort, number, method, body,
                       contacts):
        """
        A generated request survives parse and serialize with equal
        typed values.
        """
        ws = lambda: data.draw(st.sampled_from(["", " ", "  ", "\t"]))
        fromAddr = NameAddr(fromUri, display, [("tag", tag)])
        port = "" if viaPort is None else ":%d" % viaPort
        lines = [
            "%s %s SIP/2.0" % (method, ruri),
            "%s%s: SIP/2.0/UDP %s%s;branch=z9hG4bK%s" % (
                _spell("Via", data), ws(), viaHost, port, branch),
            "%s:%s%s" % (_spell("From", data), ws(), fromAddr),
            "%s:%s<%s>" % (_spell("To", data), ws(), toUri),
            "%s:%s%s" % (_spell("Call-ID", data), ws(), callId),
            "CSeq: %d %s" % (number, method),
            "Max-Forwards:%s70" % (ws(),),
        ]
        if contacts:
            lines.append("%s: %s" % (_spell("Contact", data), ", ".join(
                "<%s>" % c for c in contacts)))
        lines.append("Content-Length: %d" % (len(body),))
        first = parseMessage(msg(*lines, body=body))
        second = parseMessage(first.serialize())
        for m in (first, second):
            m.validate()
            self.assertEqual(m.requestURI, ruri)
            self.assertEqual(m.fromAddr, fromAddr)
            self.assertEqual(m.toAddr.uri, toUri)
            self.assertEqual(m.callId, callId)
            self.assertEqual(m.via[0].branch, "z9hG4bK" + branch)
            self.assertEqual(m.via[0].port, viaPort)
            self.assertEqual([c.uri for c in m.contact], contacts)
            self.assertEqual(m.body, body)
        self.assertEqual(second.serialize(), first.serialize())
