# -*- test-case-name: tests.mail.imap.test_server -*-
"""
Session commands: CAPABILITY, NOOP, LOGOUT, STARTTLS, LOGIN,
AUTHENTICATE PLAIN (with SASL-IR), ID, ENABLE and NAMESPACE.

Passwords are only taken under TLS unless the IMAP module's
C{AllowCleartextAuth} is C{YES} (then LOGINDISABLED is not advertised).
Failed logins count in the server's shared L{LoginThrottle}: an address
over its limit is refused without a password check.
"""

import base64
import binascii

from twisted.internet import defer
from twisted.logger import Logger

from cgpro.mail.imap import parser
from cgpro.mail.imap.errors import IMAPError
from cgpro.mail.imap.parser import ParseError, astring, expectArgs

log = Logger()


def imapAllowed(directory, account):
    """
    Whether the account's C{AccessModes} include IMAP.
    """
    try:
        modes = directory.effectiveAccountSettings(account).get("AccessModes", "All")
    except Exception:
        return False
    if isinstance(modes, str):
        return modes.strip().lower() in ("all", "imap")
    return any(str(mode).lower() == "imap" for mode in modes)


class AuthCommands:
    """
    Mixed into L{cgpro.mail.imap.server.IMAPServer}.
    """

    def cmd_CAPABILITY(self, tag, args):
        expectArgs(args, 0, "CAPABILITY")
        self.untagged("CAPABILITY " + " ".join(self.capabilities()))

    def cmd_NOOP(self, tag, args):
        expectArgs(args, 0, "NOOP")

    def cmd_CHECK(self, tag, args):
        expectArgs(args, 0, "CHECK")

    def cmd_LOGOUT(self, tag, args):
        expectArgs(args, 0, "LOGOUT")
        self.untagged("BYE CommuniGate Pro IMAP server closing the connection")
        self.closeMailbox()
        self.state = "logout"

    def cmd_ID(self, tag, args):
        expectArgs(args, 1, "ID (params) | ID NIL")
        if not isinstance(args[0], list) and parser.nstring(args[0]) is not None:
            raise ParseError("ID takes a list or NIL")
        self.untagged(b'ID ("name" "CommuniGate Pro" "version" ' +
                      parser.quote(self.context.version) + b")")

    def cmd_STARTTLS(self, tag, args):
        expectArgs(args, 0, "STARTTLS")
        if self.secure:
            raise IMAPError("BAD", "TLS is already active")
        if self.factory.tlsOptions is None:
            raise IMAPError("NO", "TLS not available")
        self.tagged(tag, "OK", "begin TLS negotiation now")
        # Commands sent in the clear after STARTTLS are dropped, so none
        # can be injected into the protected session.
        self.framer = parser.Framer(self._literalLimit, maxLine=self.settings.maxLine)
        self.transport.startTLS(self.factory.tlsOptions)
        self.secure = True
        self._busy = False
        return defer.Deferred()  # the tagged reply is already sent

    def cmd_LOGIN(self, tag, args):
        expectArgs(args, 2, "LOGIN user password")
        user, password = astring(args[0], "user name"), astring(args[1], "password")
        if not self.cleartextAllowed():
            raise IMAPError("NO", "[PRIVACYREQUIRED] use STARTTLS before LOGIN")
        return self._login(user, password)

    def cmd_AUTHENTICATE(self, tag, args):
        if not args or len(args) > 2:
            raise ParseError("usage: AUTHENTICATE mechanism [initial-response]")
        mechanism = parser.atom(args[0], "mechanism").upper()
        if mechanism != "PLAIN":
            raise IMAPError("NO", "unsupported authentication mechanism")
        if not self.cleartextAllowed():
            raise IMAPError("NO", "[PRIVACYREQUIRED] use STARTTLS first")
        if len(args) == 2:
            return self._plain(parser.astring(args[1]).encode("ascii", "replace"))
        d = defer.Deferred()
        self.continuation("")

        def line(value):
            if value is None:
                d.errback(IMAPError("BAD", "response too long"))
            elif value.strip() == b"*":
                d.errback(IMAPError("BAD", "authentication canceled"))
            else:
                self._plain(value.strip()).chainDeferred(d)

        self.waitLine(line)
        return d

    def _plain(self, response):
        try:
            raw = b"" if response == b"=" else base64.b64decode(response, validate=True)
            authz, user, password = raw.decode("utf-8").split("\0")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            return defer.fail(IMAPError("BAD", "malformed PLAIN response"))
        if authz and authz.lower() != user.lower():
            return defer.fail(IMAPError("NO", "[AUTHORIZATIONFAILED] cannot act as another user"))
        return self._login(user, password)

    def _login(self, user, password):
        throttle = self.factory.throttle
        if throttle.blocked(self.clientAddress):
            raise IMAPError("NO", "[UNAVAILABLE] too many failed logins, try later")
        d = defer.maybeDeferred(self.context.directory.checkPassword, user, password)

        def checked(account):
            if not account:
                throttle.failed(self.clientAddress)
                self.factory.authFailures += 1
                log.info("IMAP {client}: login failed for {user}", client=self.clientAddress,
                         user=user[:100])
                raise IMAPError("NO", "[AUTHENTICATIONFAILED] invalid credentials")
            if not imapAllowed(self.context.directory, account):
                raise IMAPError("NO", "[AUTHORIZATIONFAILED] IMAP access is not enabled")
            throttle.succeeded(self.clientAddress)
            log.info("IMAP {client}: {account} logged in", client=self.clientAddress,
                     account=account)
            self.user = account
            self.state = "auth"
            self.setTimeout(self.settings.idleTimeout or None)
            return "[CAPABILITY %s] logged in" % (" ".join(self.capabilities()),)

        return d.addCallback(checked)

    def cmd_ENABLE(self, tag, args):
        if not args:
            raise ParseError("usage: ENABLE capability...")
        done = []
        for token in args:
            name = parser.atom(token, "capability").upper()
            if name in self.enableable and name not in self.enabled:
                self.enabled.add(name)
                done.append(name)
                if name == "QRESYNC":
                    self.enabled.add("CONDSTORE")
        self.untagged("ENABLED" + "".join(" " + n for n in done))

    #: What ENABLE can turn on.
    enableable = frozenset(["CONDSTORE", "QRESYNC"])

    def cmd_NAMESPACE(self, tag, args):
        expectArgs(args, 0, "NAMESPACE")
        self.untagged('NAMESPACE (("" "/")) (("~" "/")) NIL')
