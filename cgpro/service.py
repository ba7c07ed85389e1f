# -*- test-case-name: tests.test_service -*-
"""
Assembles the whole server: the only module that imports every package.

C{makeRootService} builds the root L{MultiService} named C{cgpro} with the
children::

    storage     the durable writer thread (started first, stopped last)
    queue       the mail queue with its delivery channels (LOCAL, SMTP)
    media       the RTP relay (Port Allocation range) calls are anchored in
    signal      the SIP stack: registrations, transactions, the proxy
    listeners   one MultiService per module, one child per listener

On the first start (no Main Domain in the base folder) it creates the Main
Domain with C{postmaster} and C{pbx}; the postmaster password comes from the
caller or is generated and printed once.  Everything else (the Router table,
listener overrides, settings) is read from the base folder.
"""

import os
import secrets
import socket
import sys

from twisted.application import service
from twisted.internet.defer import maybeDeferred
from twisted.logger import Logger

from cgpro.core import names
from cgpro.core.context import ServerContext
from cgpro.core.errors import CLIError
from cgpro.core.files import DurableWriter
from cgpro.core.passwords import PasswordVault
from cgpro.core.ports import PortTable, PortTableError, defaultEtcDir, parseMediaPorts
from cgpro.core.router import Router, RouterTableError
from cgpro.core.tls import ServerTLS
from cgpro.directory.local import Directory, initialize
from cgpro.listeners import ListenerManager
from cgpro.mail.smtp.relay import SMTPRelayChannel
from cgpro.queue.local import LocalChannel
from cgpro.queue.mailinglists import ListChannel
from cgpro.queue.queue import MessageQueue
from cgpro.store.maildir import MailStore
from cgpro.storage.files import FileDirectoryStorage

log = Logger()


class StartupError(Exception):
    """A configuration the server cannot start with; the text says why."""


class WriterService(service.Service):
    """
    Runs the L{DurableWriter} thread for the life of the server, and on
    shutdown finishes every queued change before the process exits.
    """

    name = "storage"

    def __init__(self, writer):
        self.writer = writer

    def startService(self):
        service.Service.startService(self)
        self.writer.synchronous = False
        self.writer.start()

    def stopService(self):
        service.Service.stopService(self)
        return self.writer.stop()


def defaultDomainName():
    """
    The Main Domain of a first start without C{--domain}: this host's fully
    qualified name when it has one, else C{cgpro.local}.
    """
    fqdn = socket.getfqdn().lower()
    try:
        fqdn = names.domainName(fqdn)
    except CLIError:
        return "cgpro.local"
    if "." not in fqdn or fqdn.startswith("localhost"):
        return "cgpro.local"
    return fqdn


def makeRootService(base="var", etc=None, portOffset=0, domain=None,
                    postmasterPassword=None, mediaPorts=None, reactor=None, out=None):
    """
    Build the server.

    @param base: the base folder.
    @param etc: the folder of C{ports.conf} (default: the shipped one).
    @param portOffset: added to every listener port.
    @param domain: the Main Domain name used on the first start.
    @param postmasterPassword: the postmaster password used on the first
        start; generated and printed to C{out} when C{None}.
    @param mediaPorts: C{"LOW-HIGH"}, the RTP Port Allocation range; else
        the server setting C{MediaPorts}, else C{ports.conf}.
    @raise StartupError: for a configuration that cannot run.
    @return: the root L{service.MultiService}.
    """
    if reactor is None:
        from twisted.internet import reactor
    out = out or sys.stdout
    base = os.path.abspath(base)
    writer = DurableWriter(base, reactor=reactor, synchronous=True)
    storage = FileDirectoryStorage(base, writer=writer)
    vault = PasswordVault(os.path.join(storage.settingsDir, "Server.key"))
    directory = Directory(storage, vault=vault, clock=reactor)
    server = directory.effectiveServerSettings()
    vault.rounds = int(server.get("PasswordHashRounds", vault.rounds))

    if not directory.mainDomain or directory.mainDomain not in directory.domains:
        generated = postmasterPassword is None
        if generated:
            postmasterPassword = secrets.token_urlsafe(12)
        directory.runHash = maybeDeferred
        try:
            result = []
            initialize(directory, domain or defaultDomainName(), postmasterPassword).addBoth(
                result.append
            )
            if result and hasattr(result[0], "raiseException"):
                result[0].raiseException()
        except CLIError as e:
            raise StartupError("cannot initialize the base folder: %s" % (e,))
        finally:
            del directory.runHash
        if generated:
            out.write(
                "cgpro: first start in %s; Main Domain %s; postmaster password: %s\n"
                % (base, directory.mainDomain, postmasterPassword)
            )
            out.flush()

    try:
        router = Router(directory, storage.loadText("Router.table"))
    except RouterTableError as e:
        raise StartupError("Settings/Router.table: %s" % (e,))

    etc = etc or defaultEtcDir()
    try:
        table = PortTable.fromFile(
            os.path.join(etc, "ports.conf"), directory.getServerDict("Listeners")
        )
        mediaPorts = mediaPorts or directory.getServerDict("Main").get("MediaPorts")
        media = parseMediaPorts(mediaPorts) if mediaPorts else table.mediaPorts
    except PortTableError as e:
        raise StartupError(str(e))

    tls = ServerTLS(base, directory.mainDomain)
    context = ServerContext(directory, router, reactor, base, mediaPorts=media,
                            portOffset=portOffset, tls=tls, writer=writer)
    queue = buildMail(context, storage)
    # before the listeners: their builders take the relay and the stack
    # from the context
    media = buildMedia(context)
    mediaServer = buildMediaServer(context)
    signal = buildSignal(context)
    pbx = buildPBX(context)
    try:
        listeners = ListenerManager(
            table,
            context,
            offset=portOffset,
            reactor=reactor,
            saveOverrides=lambda overrides: directory.setServerDict("Listeners", overrides),
        )
    except PortTableError as e:
        raise StartupError(str(e))
    context.listeners = listeners

    # Children start in this order and stop in the reverse one: the writer
    # outlives the queue, the queue outlives the listeners feeding it.
    root = service.MultiService()
    root.setName("cgpro")
    root.context = context
    WriterService(writer).setServiceParent(root)
    queue.setServiceParent(root)
    media.setServiceParent(root)
    mediaServer.setServiceParent(root)
    signal.setServiceParent(root)
    pbx.setServiceParent(root)
    listeners.setServiceParent(root)
    return root


def buildMedia(context):
    """
    The RTP/RTCP relay the SIP proxy (and later the B2BUA) anchor calls in
    (C{context.media}), over the Port Allocation range, bound to the
    server settings C{MediaAddress} (default all IPv4 addresses) and
    C{MediaIPv6Address} (default all IPv6 addresses when the host has
    IPv6: the relay bridges IPv4 and IPv6 parties); a session
    without media for C{MediaIdleTimeout} (60s) is released.

    @return: the relay (a service: stopping it releases every session).
    """
    from cgpro.core import dataformat
    from cgpro.media.relay import MediaRelay, hostHasIPv6

    main = context.directory.getServerDict("Main")
    silence = dataformat.parseDuration(main.get("MediaIdleTimeout", "60s")) or 60
    address6 = str(main.get("MediaIPv6Address", "::" if hostHasIPv6() else "") or "").strip()
    relay = context.media = MediaRelay(context.reactor, portRange=context.mediaPorts,
                                       bindAddress=str(main.get("MediaAddress", "0.0.0.0")),
                                       bindAddress6=address6 or None,
                                       silenceTimeout=silence,
                                       checkInterval=min(5, max(1, silence / 4)))
    catalog = context.stats

    def total(key):
        # "<key>Total": the sessions open now and those already released
        return lambda: relay.stats()[key + "Total"]

    catalog.callback("cgpro_media_sessions", lambda: relay.stats()["sessions"])
    catalog.callback("cgpro_media_packets_total", total("packets"))
    catalog.callback("cgpro_media_bytes_total", total("bytes"))
    catalog.callback("cgpro_media_dropped_total", total("dropped"))
    catalog.callback("cgpro_media_lost_total", total("lost"))
    return relay


def buildMediaServer(context):
    """
    The media server the PBX applications answer calls with
    (C{context.mediaServer}): RTP channels that play prompts, record,
    hear DTMF and mix conferences.  It takes its ports from the relay's
    Port Allocation range, so the two never collide.
    """
    from cgpro.media.channel import MediaServer

    relay = context.media
    index6 = relay.index6
    context.mediaServer = MediaServer(
        context.reactor, portRange=context.mediaPorts, bindAddress=relay.bindAddress,
        allocator=relay.allocators[0], ipv6Address=relay.bindAddress6,
        allocator6=relay.allocators[index6] if index6 is not None else None,
        idleTimeout=relay.silenceTimeout)
    server = context.mediaServer
    catalog = context.stats
    catalog.callback("cgpro_media_channels", lambda: len(server.channels()))
    catalog.callback("cgpro_media_ticks_total", lambda: {
        ("ontime",): server.ticks - server.lateTicks, ("late",): server.lateTicks})
    return server


def buildPBX(context):
    """
    The Real-Time Application module (C{context.pbx}): the stock
    applications, the environments, CDRs, Chronos and RSIP.

    @return: the host (a service started after the SIP stack: RSIP
        registrations need the transport).
    """
    from cgpro.pbx.host import ApplicationHost

    context.pbx = ApplicationHost(context)
    return context.pbx


def buildSignal(context):
    """
    The SIP stack every C{sip} listener feeds (C{context.signal}).

    @return: the stack (a service to start before the listeners, so the
        registrations are loaded before the first request).
    """
    from cgpro.sip.stack import SIPStack

    context.signal = SIPStack(context)
    return context.signal


def buildMail(context, storage):
    """
    The mail pipeline: the mailbox store, the queue, and its delivery
    channels (LOCAL into the store, SMTP out through the relay).

    @return: the queue (a service to start before the listeners).
    """
    store = MailStore(storage, context.writer, clock=context.reactor)
    queue = MessageQueue(context.base, context.writer, context.router, context.directory,
                         clock=context.reactor)
    context.mailStore = store
    context.queue = queue

    def folderMoving(domain, name):
        accounts = store.openAccounts() if name is None else ["%s@%s" % (name, domain)]
        for account in accounts:
            if account.endswith("@" + domain):
                store.forgetAccount(account)

    context.directory.folderObservers.append(folderMoving)
    queue.registerChannel(LocalChannel(store, context.directory, queue, clock=context.reactor))
    queue.registerChannel(SMTPRelayChannel(context))
    queue.registerChannel(ListChannel(context.directory, queue, clock=context.reactor))
    queue.reportTo(context.stats)
    return queue
