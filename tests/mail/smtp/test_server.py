# -*- test-case-name: tests.mail.smtp.test_server -*-
"""
Unit tests for L{cgpro.mail.smtp.server}: the session state machine over a
L{StringTransport} with a L{Clock}, a real directory and Router, and a fake
queue.
"""

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from cgpro.core.interfaces import IIncomingMessage, IMessageQueue
from tests.mail.smtp.fakes import (
    CLIENT_IP,
    FakeQueue,
    Session,
    makeContext,
    makeFactory,
    setMain,
)


class FakesTests(SynchronousTestCase):
    """
    The fakes provide the interfaces they stand for.
    """

    def test_fakeQueue(self):
        """FakeQueue and FakeIncoming pass verifyObject."""
        queue = FakeQueue()
        self.assertTrue(verifyObject(IMessageQueue, queue))
        self.assertTrue(verifyObject(IIncomingMessage, queue.receive()))


class SessionTests(SynchronousTestCase):
    """
    Greeting, EHLO/HELO and the simple commands.
    """

    def setUp(self):
        self.context = makeContext(self)
        self.factory = makeFactory(self.context)
        self.session = Session(self.factory)

    def test_greeting(self):
        """The greeting names the Main Domain and the protocol."""
        self.assertEqual(len(self.session.greeting), 1)
        self.assertRegex(self.session.greeting[0],
                         r"^220 main\.dom ESMTP CommuniGate Pro \S+ ready$")

    def test_ehlo(self):
        """EHLO lists the extensions; no AUTH before TLS, STARTTLS offered."""
        reply = self.session.ehlo()
        self.assertEqual(reply[0], "250-main.dom hello [%s]" % (CLIENT_IP,))
        keywords = [line[4:] for line in reply[1:]]
        self.assertEqual(keywords, ["PIPELINING", "SIZE 52428800", "8BITMIME", "SMTPUTF8",
                                    "ENHANCEDSTATUSCODES", "DSN", "STARTTLS", "HELP"])
        self.assertTrue(reply[-1].startswith("250 "))

    def test_ehloNeedsArgument(self):
        """EHLO and HELO without a name are syntax errors."""
        self.assertEqual(self.session.cmd("EHLO"),
                         ["501 5.5.4 EHLO requires a domain or address literal"])
        self.assertEqual(self.session.cmd("HELO"),
                         ["501 5.5.4 HELO requires a domain or address literal"])

    def test_helo(self):
        """HELO answers one line; ESMTP parameters are refused after it."""
        self.assertEqual(self.session.cmd("HELO client.example"),
                         ["250 main.dom hello [%s]" % (CLIENT_IP,)])
        self.assertEqual(self.session.cmd("MAIL FROM:<a@example.com> BODY=8BITMIME"),
                         ["555 5.5.4 MAIL parameters need EHLO"])
        self.assertEqual(self.session.cmd("MAIL FROM:<a@example.com>")[0][:3], "250")

    def test_heloProtocol(self):
        """A HELO session's envelope says SMTP."""
        self.session.cmd("HELO client.example")
        self.session.mail()
        self.assertEqual(self.context.queue.committed[0].envelope.protocol, "SMTP")

    def test_simpleCommands(self):
        """NOOP, RSET, VRFY, EXPN and HELP answer as documented."""
        self.assertEqual(self.session.cmd("NOOP"), ["250 2.0.0 OK"])
        self.assertEqual(self.session.cmd("RSET"), ["250 2.0.0 OK"])
        self.assertEqual(self.session.cmd("VRFY user"),
                         ["252 2.5.2 cannot VRFY the user; send RCPT to attempt delivery"])
        self.assertEqual(self.session.cmd("VRFY"), ["501 5.5.4 VRFY needs an address"])
        self.assertEqual(self.session.cmd("EXPN list"), ["502 5.5.1 EXPN not available"])
        self.assertTrue(self.session.cmd("HELP")[0].startswith("214 2.0.0 commands: EHLO"))

    def test_quit(self):
        """QUIT answers 221 and closes."""
        self.assertEqual(self.session.cmd("QUIT"), ["221 2.0.0 main.dom closing connection"])
        self.assertTrue(self.session.closed)

    def test_unknownCommand(self):
        """An unknown verb is 500 5.5.1; the session goes on."""
        self.assertEqual(self.session.cmd("XYZZY"), ["500 5.5.1 command not recognized: XYZZY"])
        self.assertEqual(self.session.cmd("NOOP"), ["250 2.0.0 OK"])

    def test_caseInsensitive(self):
        """Verbs and keywords are case-insensitive."""
        self.session.cmd("ehlo client.example")
        self.assertEqual(self.session.cmd("mail from:<a@example.com>")[0][:3], "250")
        self.assertEqual(self.session.cmd("rcpt to:<user@main.dom>")[0][:3], "250")

    def test_lfOnlyCommands(self):
        """Commands ending in LF alone are understood."""
        self.assertEqual(self.session.send(b"NOOP\n"), ["250 2.0.0 OK"])

    def test_httpRequest(self):
        """An HTTP request (a proxy abused to reach us) is answered 421 and closed."""
        self.assertEqual(self.session.cmd("GET / HTTP/1.0"),
                         ["421 4.7.0 this is an SMTP server, closing connection"])
        self.assertTrue(self.session.closed)

    def test_nulInCommand(self):
        """A NUL byte in a command line is refused."""
        self.assertEqual(self.session.send(b"NO\0OP\r\n"),
                         ["500 5.5.2 NUL character in command"])


class TransactionTests(SynchronousTestCase):
    """
    MAIL, RCPT, DATA into the queue.
    """

    def setUp(self):
        self.context = makeContext(self)
        self.queue = self.context.queue
        self.factory = makeFactory(self.context)
        self.session = Session(self.factory)
        self.session.ehlo()

    def test_accepted(self):
        """A message to a local account is committed, then acknowledged with its id."""
        reply = self.session.mail()
        self.assertEqual(reply, ["250 2.0.0 90001 message accepted for delivery"])
        [message] = self.queue.committed
        envelope = message.envelope
        self.assertEqual(envelope.sender, "someone@example.com")
        self.assertEqual([r.address for r in envelope.recipients], ["user@main.dom"])
        self.assertEqual(envelope.id, "90001")
        self.assertEqual(envelope.protocol, "ESMTP")
        self.assertEqual(envelope.clientAddress, CLIENT_IP)
        self.assertEqual(envelope.clientName, "client.example")
        self.assertIsNone(envelope.authUser)
        self.assertFalse(envelope.trusted)
        self.assertEqual(envelope.size, len(message.data))
        self.assertIsNotNone(envelope.received)
        self.assertTrue(message.data.endswith(b"Subject: test\r\n\r\nhello\r\n"))

    def test_replies(self):
        """MAIL and RCPT answer with enhanced codes; DATA with 354."""
        self.assertEqual(self.session.cmd("MAIL FROM:<a@example.com>"),
                         ["250 2.1.0 sender <a@example.com> OK"])
        self.assertEqual(self.session.cmd("RCPT TO:<user@main.dom>"),
                         ["250 2.1.5 <user@main.dom> OK"])
        self.assertEqual(self.session.cmd("DATA"),
                         ["354 enter message, end with <CRLF>.<CRLF>"])

    def test_receivedHeader(self):
        """The message starts with our Received field naming the client, id and recipient."""
        self.session.mail()
        data = self.queue.committed[0].data.decode()
        header = data.split("Subject:")[0]
        self.assertTrue(header.startswith(
            "Received: from client.example ([203.0.113.5])\r\n"
            "\tby main.dom (CommuniGate Pro SMTP "))
        self.assertIn("\twith ESMTP id 90001\r\n", header)
        self.assertRegex(header, r"\tfor <user@main\.dom>; \w{3}, \d\d \w{3} \d{4} "
                                 r"\d\d:\d\d:\d\d \+0000\r\n$")

    def test_receivedSeveralRecipients(self):
        """With several recipients the Received field names none (Bcc privacy)."""
        self.session.mail(rcpts=("user@main.dom", "other@main.dom"))
        header = self.queue.committed[0].data.decode().split("Subject:")[0]
        self.assertNotIn("for <", header)
        self.assertIn("with ESMTP id 90001;\r\n", header)

    def test_nullSender(self):
        """The null reverse path is accepted (bounces)."""
        self.assertEqual(self.session.cmd("MAIL FROM:<>"), ["250 2.1.0 sender <> OK"])
        self.session.cmd("RCPT TO:<user@main.dom>")
        self.session.cmd("DATA")
        self.session.send("x\r\n.\r\n")
        self.assertEqual(self.queue.committed[0].envelope.sender, "")

    def test_postmaster(self):
        """RCPT TO:<Postmaster> without a domain is accepted (RFC 5321 4.5.1)."""
        self.session.cmd("MAIL FROM:<a@example.com>")
        self.assertEqual(self.session.cmd("RCPT TO:<Postmaster>"),
                         ["250 2.1.5 <Postmaster> OK"])

    def test_twoMessages(self):
        """A session can send several messages; each gets its own id."""
        self.assertEqual(self.session.mail(), ["250 2.0.0 90001 message accepted for delivery"])
        self.assertEqual(self.session.mail(), ["250 2.0.0 90002 message accepted for delivery"])
        self.assertEqual(len(self.queue.committed), 2)

    def test_duplicateRecipient(self):
        """A repeated recipient is accepted and stored once."""
        self.session.mail(rcpts=("user@main.dom", "USER@main.dom"))
        self.assertEqual(len(self.queue.committed[0].envelope.recipients), 1)

    def test_dotUnstuffing(self):
        """Leading dots are removed once; the end line is not stored."""
        self.session.mail(body="a\r\n..b\r\n...\r\n")
        self.assertTrue(self.queue.committed[0].data.endswith(b"\r\na\r\n.b\r\n..\r\n"))

    def test_splitData(self):
        """Data split at any byte, even inside the end line, gives the same message."""
        for size in (1, 2, 3, 7):
            session = Session(self.factory)
            session.ehlo()
            session.cmd("MAIL FROM:<a@example.com>")
            session.cmd("RCPT TO:<user@main.dom>")
            session.cmd("DATA")
            body = b"Subject: x\r\n\r\nline one\r\n..dot\r\n.\r\n"
            replies = []
            for i in range(0, len(body), size):
                replies += session.send(body[i:i + size])
            self.assertEqual(len(replies), 1)
            self.assertTrue(self.queue.committed[-1].data.endswith(
                b"Subject: x\r\n\r\nline one\r\n.dot\r\n"))

    def test_dsnParameters(self):
        """RET, ENVID, NOTIFY and ORCPT go into the envelope, xtext decoded."""
        self.assertEqual(self.session.cmd(
            "MAIL FROM:<a@example.com> RET=HDRS ENVID=QQ+2B1 SIZE=100")[0][:3], "250")
        self.assertEqual(self.session.cmd(
            "RCPT TO:<user@main.dom> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;u+2Bx@main.dom")[0][:3],
            "250")
        self.session.cmd("RCPT TO:<other@main.dom> NOTIFY=NEVER")
        self.session.cmd("DATA")
        self.session.send("x\r\n.\r\n")
        envelope = self.queue.committed[0].envelope
        self.assertEqual((envelope.ret, envelope.envid), ("HDRS", "QQ+1"))
        first, second = envelope.recipients
        self.assertEqual((first.notify, first.orcpt), (("SUCCESS", "DELAY"), "rfc822;u+x@main.dom"))
        self.assertEqual((second.notify, second.orcpt), (("NEVER",), None))

    def test_badDSNParameters(self):
        """Malformed DSN parameters are syntax errors."""
        self.session.cmd("MAIL FROM:<a@example.com>")
        self.assertEqual(self.session.cmd("RCPT TO:<user@main.dom> NOTIFY=NEVER,DELAY")[0][:10],
                         "501 5.5.4 ")
        self.assertEqual(self.session.cmd("RCPT TO:<user@main.dom> ORCPT=nosemicolon")[0][:10],
                         "501 5.5.4 ")
        self.session.cmd("RSET")
        self.assertEqual(self.session.cmd("MAIL FROM:<a@example.com> RET=ALL")[0][:10],
                         "501 5.5.4 ")

    def test_bodyAndSMTPUTF8(self):
        """BODY=8BITMIME and SMTPUTF8 are recorded; a UTF-8 address needs SMTPUTF8."""
        self.assertEqual(self.session.cmd("MAIL FROM:<jös@example.com>"),
                         ["553 5.6.7 non-ASCII address requires SMTPUTF8"])
        self.assertEqual(self.session.cmd(
            "MAIL FROM:<jös@exämple.com> BODY=8BITMIME SMTPUTF8")[0][:3], "250")
        self.session.cmd("RCPT TO:<user@main.dom>")
        self.session.cmd("DATA")
        self.session.send("Subject: \u00e9\r\n\r\n\u00e9t\u00e9\r\n.\r\n")
        envelope = self.queue.committed[0].envelope
        self.assertEqual((envelope.bodyType, envelope.smtputf8), ("8BITMIME", True))
        self.assertEqual(envelope.sender, "jös@exämple.com")

    def test_unknownParameter(self):
        """An unknown MAIL or RCPT parameter is 555."""
        self.assertEqual(self.session.cmd("MAIL FROM:<a@example.com> XFOO=1"),
                         ["555 5.5.4 unsupported parameter XFOO"])
        self.session.cmd("MAIL FROM:<a@example.com>")
        self.assertEqual(self.session.cmd("RCPT TO:<user@main.dom> BAR"),
                         ["555 5.5.4 unsupported parameter BAR"])

    def test_rset(self):
        """RSET ends the transaction; nothing is queued."""
        self.session.cmd("MAIL FROM:<a@example.com>")
        self.session.cmd("RCPT TO:<user@main.dom>")
        self.session.cmd("RSET")
        self.assertEqual(self.session.cmd("DATA"), ["503 5.5.1 need MAIL command"])
        self.assertEqual(self.queue.received, [])

    def test_ehloResets(self):
        """EHLO in the middle of a transaction ends it."""
        self.session.cmd("MAIL FROM:<a@example.com>")
        self.session.ehlo()
        self.assertEqual(self.session.cmd("RCPT TO:<user@main.dom>"),
                         ["503 5.5.1 need MAIL before RCPT"])


class SequenceTests(SynchronousTestCase):
    """
    Commands out of order and malformed addresses.
    """

    def setUp(self):
        self.context = makeContext(self)
        self.session = Session(makeFactory(self.context))

    def test_mailBeforeHello(self):
        """MAIL before EHLO/HELO is 503."""
        self.assertEqual(self.session.cmd("MAIL FROM:<a@example.com>"),
                         ["503 5.5.1 send EHLO or HELO first"])

    def test_outOfOrder(self):
        """RCPT before MAIL, DATA before MAIL, nested MAIL, DATA without recipients: 503/554."""
        self.session.ehlo()
        self.assertEqual(self.session.cmd("RCPT TO:<user@main.dom>"),
                         ["503 5.5.1 need MAIL before RCPT"])
        self.assertEqual(self.session.cmd("DATA"), ["503 5.5.1 need MAIL command"])
        self.session.cmd("MAIL FROM:<a@example.com>")
        self.assertEqual(self.session.cmd("MAIL FROM:<a@example.com>"),
                         ["503 5.5.1 nested MAIL command"])
        self.assertEqual(self.session.cmd("DATA"), ["554 5.5.1 no valid recipients"])
        self.assertEqual(self.context.queue.received, [])

    def test_malformedAddresses(self):
        """Bad paths get 501 (grammar) or 553 (address syntax)."""
        self.session.ehlo()
        cases = [
            ("MAIL FROM:a@example.com>", "553 5.1.3"),
            ("MAIL FROM <a@example.com>", "501 5.5.4"),
            ("MAIL FROM:<a@example.com", "501 5.5.4"),
            ("MAIL FROM:<a b@example.com>", "553 5.1.3"),
            ("MAIL FROM:<a@@example.com>", "553 5.1.3"),
            ("MAIL FROM:<a.@example.com>", "553 5.1.3"),
            ("MAIL FROM:<noat>", "553 5.1.3"),
            ("MAIL FROM:<a@[999.1.1.1]>", "553 5.1.3"),
            ("MAIL FROM:<a@example.com>junk", "501 5.5.4"),
            ("MAIL FROM:", "501 5.5.4"),
        ]
        for line, expected in cases:
            self.assertEqual(self.session.cmd(line)[0][:9], expected, line)
        self.session.cmd("MAIL FROM:<a@example.com>")
        for line, expected in [("RCPT TO:<>", "553 5.1.3"), ("RCPT TO:<user>", "553 5.1.3"),
                               ("RCPT TO:<us(er@main.dom>", "553 5.1.3"),
                               ("RCPT TO:<user@-main.dom>", "553 5.1.3"),
                               ("RCPT TO:user@main.dom", "250 2.1.5")]:
            self.assertEqual(self.session.cmd(line)[0][:9], expected, line)

    def test_lenientPaths(self):
        """Quoted local parts, source routes, address literals and a space after the colon pass."""
        self.session.ehlo()
        self.assertEqual(self.session.cmd('MAIL FROM: <"a b>"@example.com>'),
                         ['250 2.1.0 sender <"a b>"@example.com> OK'])
        self.assertEqual(self.session.cmd("RCPT TO:<@relay.example:user@main.dom>"),
                         ["250 2.1.5 <user@main.dom> OK"])
        self.session.cmd("RSET")
        self.assertEqual(self.session.cmd("MAIL FROM:<a@[192.0.2.1]>")[0][:3], "250")
        self.session.cmd("RSET")
        self.assertEqual(self.session.cmd("MAIL FROM:<a@[IPv6:2001:db8::1]>")[0][:3], "250")


class RecipientTests(SynchronousTestCase):
    """
    Local recipients and relaying.
    """

    def setUp(self):
        self.context = makeContext(self)
        self.factory = makeFactory(self.context)

    def session(self, ip=CLIENT_IP):
        session = Session(self.factory, ip)
        session.ehlo()
        session.cmd("MAIL FROM:<a@example.com>")
        return session

    def test_unknownUser(self):
        """An unknown local recipient is 550 5.1.1 at RCPT time."""
        self.assertEqual(self.session().cmd("RCPT TO:<nobody@main.dom>"),
                         ["550 5.1.1 unknown user account"])

    def test_relayDenied(self):
        """A remote recipient from an untrusted client is 550 5.7.1."""
        self.assertEqual(self.session().cmd("RCPT TO:<x@remote.example>"),
                         ["550 5.7.1 relaying prohibited"])

    def test_relayClientIPs(self):
        """A client in Client IPs may relay, and its envelope is trusted."""
        setMain(self, self.context, {"ClientIPs": "203.0.113.0/24"})
        session = self.session()
        self.assertEqual(session.cmd("RCPT TO:<x@remote.example>"),
                         ["250 2.1.5 <x@remote.example> OK"])
        session.cmd("DATA")
        session.send("x\r\n.\r\n")
        self.assertTrue(self.context.queue.committed[0].envelope.trusted)

    def test_relayLANIPs(self):
        """A client in LAN IPs may relay too."""
        setMain(self, self.context, {"LANIPs": "10.0.0.0/8"})
        self.assertEqual(self.session("10.1.2.3").cmd("RCPT TO:<x@remote.example>")[0][:3],
                         "250")
        self.assertEqual(self.session().cmd("RCPT TO:<x@remote.example>")[0][:3], "550")

    def test_relayGrantedByRouter(self):
        """A Relay: Router record lets anybody reach its target."""
        self.context.router.setTable("Relay:<info@partner.example> = info@partner.example\n")
        session = self.session()
        self.assertEqual(session.cmd("RCPT TO:<info@partner.example>")[0][:3], "250")
        self.assertEqual(session.cmd("RCPT TO:<sales@partner.example>")[0][:3], "550")

    def test_forwarder(self):
        """A local Forwarder to a remote address is accepted from anybody."""
        self.successResultOf(self.context.directory.createForwarder(
            "fwd@main.dom", "someone@remote.example"))
        self.assertEqual(self.session().cmd("RCPT TO:<fwd@main.dom>")[0][:3], "250")

    def test_forceSMTPAUTH(self):
        """A domain with ForceSMTPAUTH refuses its own addresses as senders without AUTH."""
        self.successResultOf(self.context.directory.setDomainPart(
            "main.dom", "Settings", {"ForceSMTPAUTH": "YES"}, update=True))
        session = Session(self.factory)
        session.ehlo()
        self.assertEqual(session.cmd("MAIL FROM:<user@main.dom>"),
                         ["530 5.7.0 authentication required to send as main.dom"])
        self.assertEqual(session.cmd("MAIL FROM:<user@example.com>")[0][:3], "250")
