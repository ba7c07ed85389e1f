# -*- test-case-name: tests.sip.test_registrar -*-
"""
The registrar (RFC 3261 section 10.3): REGISTER policy over the location
service, in the manner of Kamailio's C{registrar} module over C{usrloc}.

The registrar decides (who may bind what, for how long, with which
extensions: Path, RFC 3327; outbound, RFC 5626); L{LocationService}
keeps the bindings.  The 200 OK is sent only once the change is durable.

Wrong passwords are throttled per source address with the server's
L{cgpro.core.throttle.LoginThrottle}: past the limit, REGISTERs from that
address get 403 without a password check, so a guessing phone farm
costs one dictionary look-up per request.
"""

import email.utils
import math

from twisted.logger import Logger

from cgpro.core.throttle import LoginThrottle
from cgpro.sip.headers import splitQuoted
from cgpro.sip.location import LocationError
from cgpro.sip.responses import makeResponse, newTag
from cgpro.sip.uri import SIPParseError, SIPURI

log = Logger()

#: The option tags a REGISTER may require of us.
SUPPORTED = frozenset(("path", "outbound"))


class _Refusal(Exception):
    """
    Answer the REGISTER with C{code} and stop (internal control flow).
    """

    def __init__(self, code, reason=None, headers=()):
        Exception.__init__(self, code, reason)
        self.code = code
        self.reason = reason
        self.headers = list(headers)


def _optionTags(request, name):
    """
    @return: the lower-case option tags of every C{name} header
        (Supported, Require).
    """
    tags = set()
    for value in request.getHeaders(name):
        tags.update(t.strip().lower() for t in value.split(",") if t.strip())
    return tags


def _unquote(value):
    if value and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


class Registrar:
    """
    Answer REGISTER requests for local domains.

    @ivar requireAuth: whether REGISTER must carry valid Digest
        credentials; off for trusted networks and for benchmarks like
        Kamailio's unauthenticated REGISTER test.
    @ivar throttle: the L{LoginThrottle} of wrong passwords per source IP.
    @ivar registered: count of successful binding updates (monitoring).
    """

    def __init__(self, directory, location, authenticator, reactor,
                 minExpires=60, maxExpires=3600, defaultExpires=3600,
                 requireAuth=True, failureLimit=10, failurePeriod=60.0,
                 throttle=None):
        """
        @param directory: provides C{resolveLogin} (and C{findTelnum}).
        @param location: the L{cgpro.sip.location.LocationService}.
        @param authenticator: the L{cgpro.sip.digest.DigestAuthenticator}.
        @param failureLimit: wrong passwords allowed per source IP within
            C{failurePeriod} seconds before REGISTERs from it are refused.
        """
        self.directory = directory
        self.location = location
        self.authenticator = authenticator
        self.reactor = reactor
        self.minExpires = minExpires
        self.maxExpires = maxExpires
        self.defaultExpires = defaultExpires
        self.requireAuth = requireAuth
        if throttle is None:
            throttle = LoginThrottle(reactor, limit=failureLimit,
                                     period=failurePeriod)
        self.throttle = throttle
        self.registered = 0
        #: callable(host) -> the local domain a host names, or None; set by
        #: the stack so that C{To: <sip:bob@192.0.2.10>} is bob of the Main
        #: Domain, as the Request-URI is.
        self.localDomain = None
        self._date = (None, None)

    # -- entry point -----------------------------------------------------

    def handleRegister(self, transaction, request, domain):
        """
        Process one REGISTER and answer through C{transaction}, perhaps
        later (after the durable write).

        @param transaction: the L{cgpro.sip.interfaces.IServerTransaction}.
        @param request: the REGISTER L{cgpro.sip.message.Request}.
        @param domain: the local domain the Request-URI names (the caller
            has checked it is ours); it is also the Digest realm.
        """
        try:
            self._register(transaction, request, domain)
        except _Refusal as refusal:
            self._respond(transaction, request, refusal.code, refusal.reason,
                          refusal.headers)
        except SIPParseError as e:
            self._respond(transaction, request, 400, str(e)[:100])
        except Exception:
            log.failure("REGISTER failed")
            self._respond(transaction, request, 500)

    def _respond(self, transaction, request, code, reason=None, headers=()):
        """
        Answer with the transaction's To tag when it has one, so that a
        retransmitted REGISTER meets the same tag.
        """
        toTag = getattr(transaction, "toTag", None) or newTag()
        transaction.respond(makeResponse(request, code, reason, toTag, headers))

    def _register(self, transaction, request, domain):
        """
        RFC 3261 section 10.3 steps 2-8, in the order that reveals least
        to an unauthenticated sender: throttle, authenticate, Require,
        the To AOR (404), authorization (403), then the contacts.
        """
        source = transaction.source
        address = source.host if source is not None else None
        account = None
        if self.requireAuth:
            if address is not None and self.throttle.blocked(address):
                raise _Refusal(403, "Too many failed authentications")
            account = self._authenticate(request, domain, address)
        unsupported = _optionTags(request, "Require") - SUPPORTED
        if unsupported:
            # RFC 3261 section 10.3 step 2 (after authentication, so the
            # answer tells strangers nothing)
            raise _Refusal(420, None,
                           [("Unsupported", ", ".join(sorted(unsupported)))])
        aor = self._resolveTo(request)
        if account is not None and account != aor:
            raise _Refusal(403, "Not allowed to register this address")
        contacts = request.contact
        if not contacts:
            self._reply(transaction, request, self.location.lookup(aor), set())
            return
        if contacts[0].wildcard:
            if request.expires != 0:
                raise _Refusal(400, "Contact * requires Expires: 0")
            d = self.location.removeAll(aor, request.callId, request.cseq.number)
            extensions = set()
        else:
            changes, extensions = self._changes(request, source)
            d = self.location.update(aor, changes, request.callId,
                                     request.cseq.number)
        d.addCallbacks(self._updated, self._updateFailed,
                       callbackArgs=(transaction, request, extensions),
                       errbackArgs=(transaction, request))

    def _authenticate(self, request, realm, address):
        """
        @return: the authenticated account.
        @raise _Refusal: 401 with challenges, or 403 once the address has
            failed too often.
        """
        result = self.authenticator.verify(request, realm)
        if result.status == "ok":
            return result.account
        stale = result.status == "stale"
        if result.status == "failed" and address is not None:
            self.throttle.failed(address)
            if self.throttle.blocked(address):
                log.warn("SIP REGISTER from {address} throttled after failed "
                         "authentications (last user {user!r})",
                         address=address, user=result.username)
        raise _Refusal(401, None, self.authenticator.challenge(realm, stale=stale))

    def _resolveTo(self, request):
        """
        @return: the canonical C{name@domain} of the account the To AOR
            names (account name, alias or telephone number).
        @raise _Refusal: 404 when it names no local account.
        """
        uri = request.toAddr.uri
        if not isinstance(uri, SIPURI) or not uri.user:
            raise _Refusal(404, "Not a local address")
        if uri.scheme == "tel":
            account = None
        else:
            host = uri.host
            if self.localDomain is not None:
                # the server's own addresses stand for its Main Domain
                host = self.localDomain(host) or host
            account = self.directory.resolveLogin("%s@%s" % (uri.user, host))
        if account is None:
            findTelnum = getattr(self.directory, "findTelnum", None)
            if findTelnum is not None:
                account = findTelnum(uri.user)
        if account is None:
            raise _Refusal(404, "Not a local address")
        return account

    def _changes(self, request, source):
        """
        Turn the Contact headers into L{LocationService.update} changes.

        @return: C{(changes, extensions)}, C{extensions} the option tags
            to put in the 200 (C{"path"}, C{"outbound"}).
        @raise _Refusal: 400 for a malformed Contact or Expires, 423 for
            an expiry below the minimum, 439 for outbound through a proxy
            that does not support it.
        """
        headerExpires = request.expires
        supported = _optionTags(request, "Supported")
        path = []
        for value in request.getHeaders("Path"):
            path.extend(p.strip() for p in splitQuoted(value, ",") if p.strip())
        extensions = set()
        if path and "path" in supported:
            extensions.add("path")
        userAgent = request.getHeader("User-Agent")
        changes = []
        for contact in request.contact:
            if contact.wildcard:
                raise _Refusal(400, "Contact * mixed with other contacts")
            expires = contact.getParam("expires")
            if expires is not None:
                try:
                    expires = int(expires)
                except ValueError:
                    raise _Refusal(400, "Bad Contact expires")
                if expires < 0:
                    raise _Refusal(400, "Bad Contact expires")
            elif headerExpires is not None:
                expires = headerExpires
            else:
                expires = self.defaultExpires
            if 0 < expires < self.minExpires:
                raise _Refusal(423, None,
                               [("Min-Expires", str(self.minExpires))])
            expires = min(expires, self.maxExpires)
            q = contact.getParam("q")
            if q is None:
                q = 1.0
            else:
                try:
                    q = float(q)
                except ValueError:
                    raise _Refusal(400, "Bad q value")
                if not 0.0 <= q <= 1.0 or math.isnan(q):
                    raise _Refusal(400, "Bad q value")
            instance = _unquote(contact.getParam("+sip.instance"))
            regId = contact.getParam("reg-id")
            if regId is not None:
                try:
                    regId = int(regId)
                except ValueError:
                    raise _Refusal(400, "Bad reg-id")
                if not instance:
                    regId = None   # RFC 5626 section 6: ignored alone
                elif expires:
                    if len(request.via) > 1 and not self._firstHopOutbound(path):
                        raise _Refusal(439, "First Hop Lacks Outbound Support")
                    extensions.add("outbound")
            changes.append((str(contact.uri), expires, q, source, path,
                            instance, regId, userAgent))
        return changes, extensions

    @staticmethod
    def _firstHopOutbound(path):
        """
        RFC 5626 section 6: through a proxy, outbound needs that proxy's
        Path URI to carry C{ob}.
        """
        if not path:
            return False
        return ";ob" in path[0].lower().replace(" ", "")

    def _updated(self, bindings, transaction, request, extensions):
        """
        The change is durable: say 200.
        """
        self.registered += 1
        self._reply(transaction, request, bindings, extensions)

    def _updateFailed(self, reason, transaction, request):
        """
        The location service refused (its code) or could not write (500).
        """
        if reason.check(LocationError):
            error = reason.value
            self._respond(transaction, request, error.code, error.reason)
            return None
        log.failure("binding update failed", reason)
        self._respond(transaction, request, 500)
        return None

    def _reply(self, transaction, request, bindings, extensions):
        """
        Send the 200 OK listing every current binding (RFC 3261 section
        10.3 step 8) with its remaining time.
        """
        now = self.reactor.seconds()
        headers = []
        for b in bindings:
            contact = "<%s>;expires=%d" % (
                b.contact, max(0, int(math.ceil(b.expires - now - 1e-6))))
            if b.q != 1.0:
                contact += ";q=%s" % (("%.3f" % b.q).rstrip("0").rstrip("."),)
            if b.instance:
                contact += ';+sip.instance="%s"' % (b.instance,)
                if b.regId is not None:
                    contact += ";reg-id=%d" % (b.regId,)
            headers.append(("Contact", contact))
        if "path" in extensions:
            for value in request.getHeaders("Path"):
                headers.append(("Path", value))
        if "outbound" in extensions:
            headers.append(("Require", "outbound"))
            headers.append(("Supported", "outbound"))
        second = int(now)
        if self._date[0] != second:
            self._date = (second, email.utils.formatdate(second, usegmt=True))
        headers.append(("Date", self._date[1]))
        self._respond(transaction, request, 200, None, headers)
