# -*- test-case-name: tests.mail.smtp.test_relay -*-
"""
The C{SMTP} delivery channel: mail for other servers leaves here.

The queue hands L{SMTPRelayChannel.deliver} one message for the
recipients of one logical queue (a destination domain, or C{[ip]}); the
channel finds where that destination's mail goes (L{cgpro.mail.smtp.mx}),
talks SMTP to the first candidate that answers
(L{cgpro.mail.smtp.client}) and reports one
L{cgpro.core.envelope.RecipientResult} per recipient: 2xx is
C{DELIVERED}, 5xx C{FAILED}, everything else (4xx, no server reachable,
a connection lost mid-way, a DNS timeout) C{DEFERRED}, with the remote
host and its reply text for the DSN.  Retries, expiry and DSNs are the
queue's business; this channel never retries by itself, it only moves on
to the next MX candidate when one does not answer.

Why a connection pool: a queue draining a backlog to one big provider
would otherwise pay a TCP, TLS and EHLO round for every message.  Idle
connections are kept per destination for C{IdleTimeout} (and at most
C{MaxIdleConnections} in all), checked with RSET before reuse, and handed
straight to a delivery waiting for the destination; at most
C{MaxConnectionsPerDomain} connections (busy or idle) are open to one
destination, so a burst to one domain does not look like an attack to
its servers.

Settings come from the C{SMTP} module dictionary
(C{directory.getServerDict("Modules")["SMTP"]}, C{UPDATEMODULE SMTP
{...}} over the CLI), merged over L{DEFAULTS} at every delivery, so a
change applies without a restart:

  - C{RelayPort}: the port of remote servers (25);
  - C{SmartHost}: C{host[:port]}, C{[host]} or C{[ip]}: when set, all
    outbound mail goes there (a bare C{host} is looked up as a mail
    domain, MX first; C{[host]} or C{host:port} skips the MX lookup);
  - C{UseSTARTTLS}: C{YES} (opportunistic, certificates not verified, a
    failed handshake is retried in plain text), C{REQUIRE} (servers
    without STARTTLS are skipped, so the mail is deferred), C{NO};
  - C{HeloName}: the EHLO name (default the Main Domain);
  - C{MaxConnectionsPerDomain} (5), C{MaxIdleConnections} (100),
    C{MaxMessagesPerConnection} (100), C{MaxRecipientsPerMessage} (100:
    more recipients go in further transactions on the same connection),
    C{ConnectTimeout} (30s), C{IdleTimeout} (30s).
"""

import collections
import os

from twisted.internet import defer, error as netError
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint, connectProtocol
from twisted.logger import Logger
from zope.interface import implementer

from cgpro.core.dataformat import parseDuration
from cgpro.core.envelope import DEFERRED, DELIVERED, FAILED, RecipientResult
from cgpro.core.interfaces import IDeliveryChannel
from cgpro.mail.smtp.client import (
    ESMTPClient,
    OutboundMessage,
    OutboundRecipient,
    SMTPClientError,
    StaleConnection,
    TLS_NO,
    TLS_REQUIRE,
    TLS_YES,
    TLSNegotiationFailed,
)
from cgpro.mail.smtp.mx import DNSFailure, MXResolver

__all__ = ["DEFAULTS", "SMTPRelayChannel", "relaySettings"]

_log = Logger()

#: The built-in values of the C{SMTP} module settings this channel reads.
DEFAULTS = {
    "RelayPort": "25",
    "SmartHost": "",
    "UseSTARTTLS": "YES",
    "HeloName": "",
    "MaxConnectionsPerDomain": "5",
    "MaxIdleConnections": "100",
    "MaxMessagesPerConnection": "100",
    "MaxRecipientsPerMessage": "100",
    "ConnectTimeout": "30s",
    "IdleTimeout": "30s",
}


def _integer(value, default, low=0):
    try:
        return max(low, int(str(value).strip()))
    except (TypeError, ValueError):
        return default


def _seconds(value, default):
    try:
        seconds = parseDuration(value)
    except ValueError:
        return default
    return default if seconds is None else seconds


def _tlsMode(value):
    text = str(value or "").strip().upper()
    if text.startswith("REQ"):
        return TLS_REQUIRE
    if text in ("NO", "NEVER", "OFF", "DISABLED"):
        return TLS_NO
    return TLS_YES


def relaySettings(directory):
    """
    The effective relay settings: the stored C{SMTP} module dictionary
    over L{DEFAULTS}, parsed.

    @param directory: the L{IDirectory} (or C{None}: defaults only).
    @return: C{dict} with the keys of L{DEFAULTS}; numbers as C{int},
        durations in seconds, C{UseSTARTTLS} one of C{YES}/C{REQUIRE}/C{NO},
        C{HeloName} filled in.
    """
    stored = {}
    mainDomain = ""
    if directory is not None:
        stored = directory.getServerDict("Modules").get("SMTP", {}) or {}
        mainDomain = getattr(directory, "mainDomain", "") or ""
    merged = dict(DEFAULTS)
    merged.update({k: v for k, v in stored.items() if k in DEFAULTS})
    return {
        "RelayPort": _integer(merged["RelayPort"], 25, 1),
        "SmartHost": str(merged["SmartHost"] or "").strip(),
        "UseSTARTTLS": _tlsMode(merged["UseSTARTTLS"]),
        "HeloName": str(merged["HeloName"] or "").strip() or mainDomain or "localhost",
        "MaxConnectionsPerDomain": _integer(merged["MaxConnectionsPerDomain"], 5, 1),
        "MaxIdleConnections": _integer(merged["MaxIdleConnections"], 100),
        "MaxMessagesPerConnection": _integer(merged["MaxMessagesPerConnection"], 100, 1),
        "MaxRecipientsPerMessage": _integer(merged["MaxRecipientsPerMessage"], 100, 1),
        "ConnectTimeout": _seconds(merged["ConnectTimeout"], 30),
        "IdleTimeout": _seconds(merged["IdleTimeout"], 30),
    }


def _status(code):
    if 200 <= code < 300:
        return DELIVERED
    if 500 <= code < 600:
        return FAILED
    return DEFERRED


class _NoConnection(SMTPClientError):
    """
    No candidate of a destination took a session.
    """


@implementer(IDeliveryChannel)
class SMTPRelayChannel:
    """
    Deliver to remote servers over SMTP.

    @ivar directory: where the C{SMTP} module settings are read.
    @ivar reactor: what connections are made with.
    @ivar clock: timeouts, idle timers (default the reactor).
    @ivar resolver: the L{MXResolver}.
    @ivar timeouts: overrides of L{cgpro.mail.smtp.client.TIMEOUTS}.
    """

    name = "SMTP"

    def __init__(self, context=None, resolver=None, clock=None, directory=None, reactor=None,
                 tls=None, timeouts=None, tlsOptions=None):
        """
        @param context: the L{IServerContext}; or give C{directory},
            C{reactor} (and C{tls}) one by one.
        @param resolver: an L{MXResolver}, or a L{twisted.names} resolver
            to build one on; default C{twisted.names.client.createResolver()}.
        @param tls: the server's L{cgpro.core.tls.ServerTLS}; kept for a
            later client certificate, not used now (the relay presents no
            certificate).
        @param tlsOptions: client TLS options; default no verification.
        """
        if context is not None:
            directory = directory if directory is not None else context.directory
            reactor = reactor if reactor is not None else context.reactor
            tls = tls if tls is not None else getattr(context, "tls", None)
        if reactor is None:
            from twisted.internet import reactor
        self.directory = directory
        self.reactor = reactor
        self.clock = clock if clock is not None else reactor
        self.tls = tls
        if isinstance(resolver, MXResolver):
            self.resolver = resolver
        else:
            self.resolver = MXResolver(resolver, self.clock)
        self.timeouts = dict(timeouts or {})
        self._tlsOptions = tlsOptions
        self._open = collections.Counter()
        self._idle = collections.defaultdict(list)
        self._idleTimers = {}
        self._idleOrder = collections.OrderedDict()
        self._waiters = collections.defaultdict(collections.deque)
        self._closing = False

    def settings(self):
        """
        @return: the effective settings (L{relaySettings}).
        """
        return relaySettings(self.directory)

    @property
    def tlsOptions(self):
        if self._tlsOptions is None:
            from twisted.internet.ssl import CertificateOptions

            self._tlsOptions = CertificateOptions()
        return self._tlsOptions

    # -- IDeliveryChannel ---------------------------------------------------

    def deliver(self, job):
        """
        See L{IDeliveryChannel.deliver}.  Never fails: an unexpected error
        defers every recipient.
        """
        d = self._deliver(job)

        def crashed(failure):
            _log.failure("SMTP relay of {id} to {queue} crashed", failure,
                         id=job.messageId, queue=job.queue)
            return [RecipientResult(r.index, DEFERRED, 451, "4.3.0 local error in the SMTP relay")
                    for r, _route in job.recipients]

        d.addErrback(crashed)
        return d

    def close(self):
        """
        Say QUIT on every idle connection and keep no more (server stop).

        @return: L{Deferred} firing once they are closed.
        """
        self._closing = True
        quits = []
        for client, key in list(self._idleOrder.items()):
            self._unpark(key, client)
            quits.append(client.quit())
            self._freeSlot(key)
        return defer.DeferredList(quits)

    # -- one delivery -------------------------------------------------------

    @defer.inlineCallbacks
    def _deliver(self, job):
        settings = self.settings()
        destination = settings["SmartHost"] or job.queue
        port = settings["RelayPort"]
        key = (destination.lower(), port)
        recipients = []
        for recipient, route in job.recipients:
            address = getattr(route, "address", None) or recipient.address
            recipients.append(OutboundRecipient(recipient.index, address, recipient.notify, recipient.orcpt))
        if not recipients:
            return []
        message = self._message(job, recipients)

        reused = yield self._acquire(key, settings)
        client = None
        try:
            try:
                client = yield self._session(key, reused, destination, port, settings)
            except DNSFailure as e:
                status = FAILED if e.permanent else DEFERRED
                return [RecipientResult(r.index, status, e.code, e.text) for r in recipients]
            except SMTPClientError as e:
                return [RecipientResult(r.index, DEFERRED, e.reply.code, e.reply.text)
                        for r in recipients]
            results = yield self._send(client, message, settings)
            return results
        finally:
            self._release(key, client, settings)

    def _message(self, job, recipients):
        envelope = job.envelope
        fields = dict(
            bodyType=envelope.bodyType,
            smtputf8=envelope.smtputf8,
            ret=envelope.ret,
            envid=envelope.envid,
        )
        # The queue's first attempt may still hold the bytes it committed;
        # later attempts stream the queue file instead of loading it.
        data = getattr(job, "data", None)
        if data is None and job.path and os.path.exists(job.path):
            return OutboundMessage(envelope.sender, recipients, path=job.path, offset=job.offset,
                                   size=job.size or None, **fields)
        if data is None:
            data = job.readMessage()
        return OutboundMessage(envelope.sender, recipients, data=data, **fields)

    @defer.inlineCallbacks
    def _send(self, client, message, settings):
        """
        Send to every recipient over C{client}, C{MaxRecipientsPerMessage}
        at a time; recipients refused with 452 (too many recipients) go in
        the next transaction as long as each one makes progress.
        """
        batchSize = settings["MaxRecipientsPerMessage"]
        pending = list(message.recipients)
        results = {}
        while pending:
            batch, pending = pending[:batchSize], pending[batchSize:]
            replies = yield client.sendMessage(message.withRecipients(batch))
            progress = any(reply.positive for _r, reply in replies)
            retry = []
            for recipient, reply in replies:
                if reply.code == 452 and progress and client.usable:
                    retry.append(recipient)
                else:
                    results[recipient.index] = RecipientResult(
                        recipient.index, _status(reply.code), reply.code, reply.text, client.host
                    )
            pending = retry + pending
            if pending and not client.usable:
                for recipient in pending:
                    results[recipient.index] = RecipientResult(
                        recipient.index, DEFERRED, 421,
                        "4.4.2 connection with %s lost" % (client.host,), client.host,
                    )
                break
        return [results[r.index] for r in message.recipients]

    # -- sessions -----------------------------------------------------------

    @defer.inlineCallbacks
    def _session(self, key, reused, destination, port, settings):
        """
        @return: a ready L{ESMTPClient}: C{reused} if its RSET works, else a
            new connection to the first candidate that takes a session.
        @raise DNSFailure: the destination does not resolve.
        @raise _NoConnection: no candidate took a session.
        """
        if reused is not None:
            try:
                yield reused.reset()
                return reused
            except StaleConnection:
                reused.abort()
        candidates = yield self.resolver.resolve(destination, port)
        mode = settings["UseSTARTTLS"]
        last = None
        for candidate in candidates:
            try:
                client = yield self._connect(key, candidate, settings, mode)
                return client
            except TLSNegotiationFailed as e:
                last = (candidate, e)
                if mode != TLS_YES:
                    continue
                try:
                    client = yield self._connect(key, candidate, settings, TLS_NO)
                    return client
                except Exception as e2:
                    last = (candidate, e2)
            except Exception as e:
                last = (candidate, e)
            _log.info("SMTP relay: {host} [{address}]:{port} for {destination}: {why}",
                      host=last[0].host, address=last[0].address, port=last[0].port,
                      destination=destination, why=self._why(last[1]))
        if last is None:
            raise _NoConnection(451, "4.4.1 no address to connect to for %s" % (destination,))
        candidate, error = last
        code = error.reply.code if isinstance(error, SMTPClientError) else 451
        if not 400 <= code < 500:
            code = 451
        raise _NoConnection(code, "4.4.1 no server for %s took the message; last: %s [%s]: %s"
                            % (destination, candidate.host, candidate.address, self._why(error)))

    @staticmethod
    def _why(error):
        if isinstance(error, SMTPClientError):
            return "%d %s" % (error.reply.code, error.reply.text)
        if isinstance(error, (defer.TimeoutError, netError.TimeoutError,
                              netError.ConnectingCancelledError)):
            return "connection timed out"
        if isinstance(error, netError.ConnectionRefusedError):
            return "connection refused"
        return str(error) or error.__class__.__name__

    @defer.inlineCallbacks
    def _connect(self, key, candidate, settings, mode):
        client = ESMTPClient(
            settings["HeloName"], mode, tlsOptions=self.tlsOptions if mode != TLS_NO else None,
            clock=self.clock, timeouts=self.timeouts, host=candidate.host,
        )
        if ":" in candidate.address:
            endpoint = TCP6ClientEndpoint(self.reactor, candidate.address, candidate.port,
                                          timeout=settings["ConnectTimeout"])
        else:
            endpoint = TCP4ClientEndpoint(self.reactor, candidate.address, candidate.port,
                                          timeout=settings["ConnectTimeout"])
        d = connectProtocol(endpoint, client)
        d.addTimeout(settings["ConnectTimeout"], self.clock)
        yield d
        client.onLost = lambda c: self._clientLost(key, c)
        yield client.ready
        return client

    # -- the pool -----------------------------------------------------------

    def _acquire(self, key, settings):
        """
        Get the right to use a connection to C{key}.

        @return: L{Deferred} firing with an idle L{ESMTPClient} to reuse, or
            with C{None}: open a new one.  Either way one slot of
            C{MaxConnectionsPerDomain} is held until L{_release}.
        """
        idle = self._idle.get(key)
        if idle:
            client = idle[-1]
            self._unpark(key, client)
            return defer.succeed(client)
        if self._open[key] < settings["MaxConnectionsPerDomain"]:
            self._open[key] += 1
            return defer.succeed(None)
        d = defer.Deferred()
        self._waiters[key].append(d)
        return d

    def _release(self, key, client, settings):
        """
        Give back a slot: hand a still usable connection to the next waiting
        delivery or keep it idle; otherwise close it and free the slot.
        """
        if (client is not None and client.usable and not self._closing
                and client.messagesSent < settings["MaxMessagesPerConnection"]):
            waiters = self._waiters.get(key)
            if waiters:
                waiter = waiters.popleft()
                if not waiters:
                    del self._waiters[key]
                waiter.callback(client)
                return
            if settings["IdleTimeout"] > 0 and settings["MaxIdleConnections"] > 0:
                self._park(key, client, settings)
                return
        if client is not None and client.connected:
            client.quit()
        self._freeSlot(key)

    def _freeSlot(self, key):
        waiters = self._waiters.get(key)
        if waiters:
            waiter = waiters.popleft()
            if not waiters:
                del self._waiters[key]
            waiter.callback(None)
            return
        self._open[key] -= 1
        if self._open[key] <= 0:
            del self._open[key]

    def _park(self, key, client, settings):
        self._idle[key].append(client)
        self._idleOrder[client] = key
        self._idleTimers[client] = self.clock.callLater(
            settings["IdleTimeout"], self._idleExpired, key, client
        )
        while len(self._idleOrder) > settings["MaxIdleConnections"]:
            oldest, oldestKey = next(iter(self._idleOrder.items()))
            self._unpark(oldestKey, oldest)
            oldest.quit()
            self._freeSlot(oldestKey)

    def _unpark(self, key, client):
        self._idle[key].remove(client)
        if not self._idle[key]:
            del self._idle[key]
        del self._idleOrder[client]
        timer = self._idleTimers.pop(client)
        if timer.active():
            timer.cancel()

    def _idleExpired(self, key, client):
        if client in self._idleOrder:
            self._unpark(key, client)
            client.quit()
            self._freeSlot(key)

    def _clientLost(self, key, client):
        """
        A connection closed; if it was idle (the server timed it out), its
        slot is free now.  A busy one is released by its delivery.
        """
        if client in self._idleOrder:
            self._unpark(key, client)
            self._freeSlot(key)

    def idleConnections(self, destination=None):
        """
        @return: how many idle connections are kept (to C{destination}, a
            C{(destination, port)} key, when given).
        """
        if destination is None:
            return len(self._idleOrder)
        return len(self._idle.get(destination, ()))
