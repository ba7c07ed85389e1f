# -*- test-case-name: tests.mail.smtp.test_auth -*-
"""
SMTP AUTH (RFC 4954): the SASL mechanisms PLAIN, LOGIN and CRAM-MD5 and
the check of what they collect against the directory.

A mechanism is a small state machine fed the client's decoded responses;
it answers with the next challenge or, when it has everything, with
credentials.  Checking the credentials is a separate step
(L{checkCredentials}), so the mechanisms can be tested without a
directory and the session decides about throttling and replies.

CRAM-MD5 needs the password itself; it is advertised always (a client
cannot know how an account keeps its password) and fails like a wrong
password when the account keeps only a one-way hash.
"""

import base64
import binascii
import hashlib
import hmac
import os

from twisted.internet import defer

from cgpro.mail.smtp.wire import SMTPError, printable

#: Mechanism names in the order EHLO advertises them.
MECHANISMS = ("PLAIN", "LOGIN", "CRAM-MD5")


class SASLError(Exception):
    """
    The exchange cannot go on; carries the reply code, enhanced code and
    text.
    """

    def __init__(self, code, enhanced, text):
        Exception.__init__(self, code, enhanced, text)
        self.code = code
        self.enhanced = enhanced
        self.text = text


class Credentials:
    """
    What a mechanism collected.

    @ivar mechanism: the mechanism name.
    @ivar user: the login name as given.
    @ivar password: the plain password (PLAIN, LOGIN), or C{None}.
    @ivar challenge: the CRAM-MD5 challenge (C{bytes}), or C{None}.
    @ivar digest: the CRAM-MD5 hex digest the client sent, or C{None}.
    """

    def __init__(self, mechanism, user, password=None, challenge=None, digest=None):
        self.mechanism = mechanism
        self.user = user
        self.password = password
        self.challenge = challenge
        self.digest = digest


def decode(line):
    """
    Decode one client response line (base64; C{=} is an empty response).

    @raise SASLError: 501 for C{*} (cancelled) and for bad base64.
    """
    line = line.strip()
    if line == b"*":
        raise SASLError(501, "5.0.0", "authentication cancelled")
    if line == b"=":
        return b""
    try:
        return base64.b64decode(line, validate=True)
    except (binascii.Error, ValueError):
        raise SASLError(501, "5.5.2", "cannot decode the response (base64)")


def _text(data):
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SASLError(501, "5.5.2", "credentials are not UTF-8")


class Plain:
    """
    RFC 4616: C{authzid NUL authcid NUL password} in one response.
    """

    name = "PLAIN"

    def __init__(self, hostname):
        pass

    def start(self):
        """
        @return: the first challenge, when the client gave no initial
            response.
        """
        return b""

    def respond(self, data):
        """
        @return: C{(challenge, None)} to go on or C{(None, Credentials)}.
        @raise SASLError: for malformed data.
        """
        parts = data.split(b"\0")
        if len(parts) != 3 or not parts[1]:
            raise SASLError(501, "5.5.2", "malformed PLAIN response")
        authzid, user, password = (_text(p) for p in parts)
        if authzid and authzid.lower() != user.lower():
            # No impersonation over SMTP: an authorization identity other
            # than the login itself is refused like bad credentials.
            raise SASLError(535, "5.7.8", "authentication credentials invalid")
        return None, Credentials(self.name, user, password)


class Login:
    """
    The LOGIN mechanism: C{Username:} then C{Password:} challenges.
    """

    name = "LOGIN"

    def __init__(self, hostname):
        self._user = None

    def start(self):
        return b"Username:"

    def respond(self, data):
        if self._user is None:
            self._user = _text(data)
            if not self._user:
                raise SASLError(501, "5.5.2", "empty user name")
            return b"Password:", None
        return None, Credentials(self.name, self._user, _text(data))


class CramMD5:
    """
    RFC 2195: the server sends C{<random.time@host>}, the client answers
    C{user hex(hmac-md5(password, challenge))}.
    """

    name = "CRAM-MD5"

    def __init__(self, hostname):
        self.challenge = ("<%s@%s>" % (os.urandom(12).hex(), hostname)).encode("ascii", "replace")

    def start(self):
        return self.challenge

    def respond(self, data):
        user, _, digest = _text(data).rpartition(" ")
        if not user or len(digest) != 32:
            raise SASLError(501, "5.5.2", "malformed CRAM-MD5 response")
        return None, Credentials(self.name, user, challenge=self.challenge, digest=digest.lower())


_BY_NAME = {m.name: m for m in (Plain, Login, CramMD5)}


def mechanism(name, hostname):
    """
    @return: a new mechanism instance, or C{None} if C{name} is unknown.
    """
    factory = _BY_NAME.get(name.upper())
    return None if factory is None else factory(hostname)


def checkCredentials(directory, credentials):
    """
    Verify credentials against the directory.

    @return: L{Deferred} firing with C{(account, reason)}: the canonical
        C{name@domain} and C{None} on success, C{None} and why not (for the
        log only; the client learns nothing) on failure.
    """
    if credentials.mechanism == "CRAM-MD5":
        full = directory.resolveLogin(credentials.user)
        password = directory.getPassword(full) if full else None
        if password is None:
            return defer.succeed(
                (None, "unknown user" if full is None else "password not recoverable for CRAM-MD5")
            )
        expected = hmac.new(password.encode("utf-8"), credentials.challenge,
                            hashlib.md5).hexdigest()
        if not hmac.compare_digest(expected, credentials.digest):
            return defer.succeed((None, "wrong CRAM-MD5 digest"))
        return defer.succeed((full, None))
    d = defer.maybeDeferred(directory.checkPassword, credentials.user, credentials.password)
    d.addCallback(lambda full: (full, None) if full else (None, "wrong password or unknown user"))
    return d


def smtpAllowed(directory, account):
    """
    Whether the account may use SMTP AUTH (CommuniGate's C{Relay} access
    mode).

    @return: C{bool}.
    """
    modes = directory.effectiveAccountSettings(account).get("AccessModes", "All")
    if isinstance(modes, str):
        return modes.strip().lower() == "all"
    return any(str(mode).lower() == "relay" for mode in modes)


class AuthCommands:
    """
    The C{AUTH} command of an SMTP session (mixed into
    L{cgpro.mail.smtp.server.SMTPServer}, which supplies the session
    state, C{reply}, C{_log} and the factory's throttle).
    """

    def do_AUTH(self, argument):
        """
        C{AUTH mechanism [initial-response]}: only after EHLO, outside a
        transaction, once, and under TLS unless C{AllowCleartextAuth}.
        """
        if not self.factory.authEnabled:
            raise SMTPError(502, "5.5.1", "AUTH not available")
        if not self._authOffered():
            raise SMTPError(538, "5.7.11",
                            "encryption required for requested authentication mechanism")
        if not self.esmtp:
            raise SMTPError(503, "5.5.1", "send EHLO first")
        if self.authUser is not None:
            raise SMTPError(503, "5.5.1", "already authenticated")
        if self.txn is not None:
            raise SMTPError(503, "5.5.1", "AUTH not allowed during a mail transaction")
        name, _, initial = argument.partition(" ")
        sasl = mechanism(name, self.hostname) if name else None
        if sasl is None:
            raise SMTPError(504, "5.5.4", "unrecognized authentication type")
        if self.factory.throttle.blocked(self.clientAddress):
            raise SMTPError(454, "4.7.0", "too many failed authentications, try later")
        self._sasl = sasl
        initial = initial.strip()
        if initial:
            if sasl.name == "CRAM-MD5":
                self._sasl = None
                raise SMTPError(501, "5.5.2", "CRAM-MD5 takes no initial response")
            return self._saslResponse(initial.encode("ascii", "replace"))
        self._challenge(sasl.start())
        return None

    def _challenge(self, data):
        """
        Send a SASL challenge (334 and base64).
        """
        self.reply(334, None, base64.b64encode(data).decode("ascii"))

    def _saslResponse(self, line):
        """
        Feed one client response (a line while C{_sasl} is set) to the
        mechanism; when it has credentials, check them.
        """
        sasl = self._sasl
        try:
            challenge, credentials = sasl.respond(decode(line))
        except SASLError as e:
            self._sasl = None
            if e.code == 535:
                return self._authFailed(sasl.name, "?", e.text)
            raise SMTPError(e.code, e.enhanced, e.text)
        if challenge is not None:
            self._challenge(challenge)
            return None
        self._sasl = None
        d = checkCredentials(self.context.directory, credentials)
        d.addCallback(self._authChecked, credentials)
        return d

    def _authChecked(self, outcome, credentials):
        account, reason = outcome
        if account is not None and not smtpAllowed(self.context.directory, account):
            account, reason = None, "SMTP relaying (access mode Relay) not enabled"
        if account is None:
            return self._authFailed(credentials.mechanism, credentials.user, reason)
        self.factory.throttle.succeeded(self.clientAddress)
        self.authUser = account
        self._log("{user} authenticated ({mechanism})", user=account,
                  mechanism=credentials.mechanism)
        self.reply(235, "2.7.0", "authentication successful")
        return None

    def _authFailed(self, mechanism, user, reason):
        """
        Record a failed AUTH and answer 535 only after the failure delay,
        so guessing is slow even below the throttle limit.
        """
        self.factory.throttle.failed(self.clientAddress)
        self.factory.authFailures += 1
        self.factory.figures.authFailures.inc()
        self._log("AUTH {mechanism} failed for {user}: {reason}", mechanism=mechanism,
                  user=printable(user), reason=reason)
        error = SMTPError(535, "5.7.8", "authentication credentials invalid", quiet=True)
        delay = self.settings.authFailureDelay
        if not delay:
            raise error
        d = defer.Deferred()
        call = self.clock.callLater(delay, d.errback, error)
        d.addBoth(_cancelling(call))
        return d


def _cancelling(call):
    def cancel(result):
        if call.active():
            call.cancel()
        return result

    return cancel
