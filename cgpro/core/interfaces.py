# -*- test-case-name: tests.directory.test_directory -*-
"""
The seams of cgpro.

Protocol packages (CLI, SMTP, SIP, ...) and the core meet only through the
interfaces declared here, so that a protocol never imports another protocol
and a storage or directory backend can be replaced (a cluster backend, an
LDAP directory) without touching the protocols.

Objects crossing these interfaces are plain values of the CommuniGate data
format (L{cgpro.core.dataformat}): C{str}, C{int}, C{bytes}, C{None},
C{list}, C{dict}, C{datetime}, L{cgpro.core.dataformat.IPAddress}.
"""

from zope.interface import Attribute, Interface


class IDirectoryStorage(Interface):
    """
    Durable storage of the directory: server settings, domains and accounts.

    Every write returns a L{Deferred} that fires only once the change is on
    stable storage (temp file, fsync, rename, fsync of the folder), so a
    caller acknowledges a change to its client only after it is durable.
    Reads are synchronous: they are done at start-up or on a cache miss.
    """

    def loadServerSettings(name):
        """
        Read one server-wide settings dictionary.

        @param name: C{"Main"}, C{"DomainDefaults"}, C{"AccountDefaults"},
            C{"Listeners"}, ... (a file name in the Settings folder).
        @return: a C{dict}, empty when nothing was stored.
        """

    def saveServerSettings(name, settings):
        """
        Replace one server-wide settings dictionary.

        @return: a L{Deferred} firing with C{None} once durable.
        """

    def loadText(name):
        """
        Read a server-wide text file (the Router table).

        @return: C{str}, empty when nothing was stored.
        """

    def saveText(name, text):
        """
        Replace a server-wide text file.

        @return: a L{Deferred} firing once durable.
        """

    def listDomains():
        """
        @return: the names of all stored domains (C{list} of C{str}).
        """

    def loadDomain(domain):
        """
        @return: the stored record of C{domain}: a C{dict} with the domain's
            settings and its name tables (aliases, forwarders, groups).
        """

    def createDomain(domain, record):
        """
        Create a domain folder holding C{record}.

        @return: a L{Deferred} firing once durable.
        """

    def saveDomain(domain, record):
        """
        Replace the record of an existing domain.

        @return: a L{Deferred} firing once durable.
        """

    def renameDomain(old, new):
        """
        Rename a domain folder with everything in it.

        @return: a L{Deferred} firing once durable.
        """

    def deleteDomain(domain):
        """
        Remove a domain folder with everything in it.

        @return: a L{Deferred} firing once durable.
        """

    def listAccounts(domain):
        """
        @return: the names of the accounts stored in C{domain}; cheap enough
            to call for 100,000 accounts at start-up (no account file is
            read).
        """

    def loadAccount(domain, name):
        """
        @return: the stored record (C{dict}) of one account, or C{None}.
        """

    def createAccount(domain, name, record):
        """
        Create an account folder holding C{record}.

        @return: a L{Deferred} firing once durable.
        """

    def saveAccount(domain, name, record):
        """
        Replace the record of an existing account.

        @return: a L{Deferred} firing once durable.
        """

    def renameAccount(domain, old, new):
        """
        Rename an account folder with everything in it (mailboxes too).

        @return: a L{Deferred} firing once durable.
        """

    def deleteAccount(domain, name):
        """
        Remove an account folder with everything in it.

        @return: a L{Deferred} firing once durable.
        """

    def accountPath(domain, name):
        """
        @return: the filesystem path of the account's folder, for stores
            that keep mailboxes and files inside it.
        """


class IDirectory(Interface):
    """
    The directory of domains and accounts, as every protocol sees it.

    Names are compared case-insensitively and returned in their canonical
    (lower-case) form.  An address is C{name@domain}; a bare name means the
    Main Domain.  Methods that change the directory return a L{Deferred}
    that fires once the change is durable, and raise
    L{cgpro.core.errors.CLIError} subclasses for refusals (unknown object,
    name taken, bad name) before anything is changed.
    """

    mainDomain = Attribute("The name of the Main Domain (C{str}).")

    def domainFor(name):
        """
        Resolve a domain name or domain alias.

        @return: the canonical local domain name, or C{None} if C{name} is
            not a local domain.
        """

    def findObject(address):
        """
        Find what a local address names.

        @param address: C{name@domain} (C{domain} may be an alias).
        @return: C{None}, or a tuple C{(kind, canonical, value)} where
            C{kind} is C{"account"}, C{"forwarder"}, C{"group"} or C{"list"}
            (also for C{<list>-bounces}, where its DSNs come back);
            C{canonical} is C{name@domain}; C{value} is C{None} for an
            account, the target address for a forwarder, the group's or
            list's settings for a group or list.  Account aliases resolve to the account.
        """

    def findTelnum(number):
        """
        @return: the C{name@domain} of the account a telephone number is
            assigned to, or C{None}.
        """

    def effectiveDomainSettings(domain):
        """
        @return: the domain's settings merged over the server-wide domain
            defaults and the built-in defaults.
        """

    def effectiveAccountSettings(address):
        """
        @return: the account's settings merged over its service class,
            the domain's and the server's account defaults and the built-in
            defaults.
        """

    def checkPassword(address, password):
        """
        Verify a plain-text password (for USER/PASS, AUTH PLAIN/LOGIN).

        @return: a L{Deferred} firing with the canonical C{name@domain} on
            success and C{None} on failure (hashing runs off the reactor).
        """

    def getPassword(address):
        """
        Recover a password for challenge-response logins (APOP, CRAM-MD5).

        @return: the password (C{str}), or C{None} when the account keeps
            only one-way hashes.
        """

    def digestHA1(address, realm, algorithm):
        """
        @param algorithm: C{"MD5"} or C{"SHA-256"}.
        @return: the hex HA1 of RFC 7616 for the account in C{realm}, or
            C{None} when it cannot be computed.
        """

    def rightsOf(address):
        """
        @return: the C{set} of access right names the account holds
            (C{"Master"}, C{"Domain"}, C{"CanCreateAccounts"}, ...).
        """


class IRoutingDirectory(Interface):
    """
    What the Router needs to know about local objects: a narrow view of
    L{IDirectory}, so the Router can be tested with a dictionary.
    """

    mainDomain = Attribute("The name of the Main Domain (C{str}).")

    def domainFor(name):
        """See L{IDirectory.domainFor}."""

    def findObject(address):
        """See L{IDirectory.findObject}."""

    def findTelnum(number):
        """See L{IDirectory.findTelnum}."""

    def effectiveDomainSettings(domain):
        """See L{IDirectory.effectiveDomainSettings}."""


class ICommandContext(Interface):
    """
    What an administrative command runs with: who asks, and the server's
    shared objects.  The CLI on port 106 (and later the web admin and
    XIMSS) build one per session.
    """

    user = Attribute("Canonical C{name@domain} of the authenticated account.")
    rights = Attribute("C{set} of the user's access rights.")
    directory = Attribute("The L{IDirectory}.")
    server = Attribute("The root server object (settings, listeners, router).")


class IListenerManager(Interface):
    """
    The running listeners, built from the port table; lets the CLI change
    them without a restart.
    """

    def listListeners():
        """
        @return: C{dict} name -> row C{dict} (as configured, before the
            port offset) with an added C{State} key: C{listening},
            C{disabled}, C{unavailable} (module not built) or
            C{failed: <reason>}, and C{Port} (the port actually used).
        """

    def updateListener(name, changes):
        """
        Change (or with a new name, add) one row and restart only that
        listener.  If the new listener cannot start, the old row is put
        back and the failure propagates.

        @return: L{Deferred} firing once the change is stored and applied.
        """

    def deleteListener(name):
        """
        Stop a listener and remove its row (a row of C{etc/ports.conf} is
        masked, not deleted from the file).

        @return: L{Deferred}.
        """


class IServerContext(Interface):
    """
    What every protocol module is built with: the server's shared objects.
    A module's C{build(spec, context)} keeps what it needs from here.
    """

    directory = Attribute("The L{IDirectory}.")
    router = Attribute("The L{cgpro.core.router.Router}.")
    listeners = Attribute("The L{IListenerManager}.")
    reactor = Attribute("The reactor everything runs on.")
    base = Attribute("The base folder (C{str}).")
    version = Attribute("The server version (C{str}).")
    tls = Attribute("The L{cgpro.core.tls.ServerTLS}: C{options} for STARTTLS.")
    queue = Attribute("The L{IMessageQueue}.")
    mailStore = Attribute("The L{IMailStore}.")
    writer = Attribute("The L{cgpro.core.files.DurableWriter} of the base folder.")
    signal = Attribute("The SIP stack shared by every SIP listener, or C{None}.")
    media = Attribute("The L{IMediaRelay} calls are anchored in, or C{None}.")
    stats = Attribute("The L{cgpro.core.stats.Catalog} of the server's figures.")


# -- mail ---------------------------------------------------------------------


class IMailStore(Interface):
    """
    The accounts' mailboxes.  Local delivery appends through this; the IMAP
    and POP modules read and change mailboxes through the richer API of the
    store package.  Accounts are canonical C{name@domain}; mailbox names
    use C{/} as the hierarchy separator, C{INBOX} is always there.
    """

    def deliver(account, mailbox, data, flags=(), internalDate=None, deliveryId=None):
        """
        Append one message durably (O(1) in the mailbox size).

        @param data: the message (C{bytes}, CRLF line ends as received).
        @param flags: IMAP flags to set (C{"\\\\Seen"}, ...).
        @param internalDate: a naive UTC C{datetime}; default now.
        @param deliveryId: a unique id of this delivery (queue id and
            recipient); a delivery whose id is already in the mailbox is not
            appended again (exactly-once after a crash).
        @return: L{Deferred} firing with the message's UID once durable.
        """

    def hasDelivery(account, mailbox, deliveryId):
        """
        @return: whether a message with this delivery id is in the mailbox.
        """

    def mailboxExists(account, mailbox):
        """
        @return: C{bool}.
        """

    def createMailbox(account, mailbox):
        """
        @return: L{Deferred} firing once the mailbox exists durably.
        """


class IDeliveryChannel(Interface):
    """
    A target module of the queue (LOCAL, SMTP, PIPE, LIST): takes messages
    from one logical queue and reports per-recipient outcomes.  Modules
    register their channel with the queue at start-up, so the queue never
    imports a protocol.
    """

    name = Attribute("The Router module name this channel serves (C{str}).")

    def deliver(job):
        """
        Deliver one message to the recipients of one logical queue.

        @param job: a L{cgpro.core.envelope.DeliveryJob}.
        @return: L{Deferred} firing with a C{list} of
            L{cgpro.core.envelope.RecipientResult}, one per recipient of the
            job, in any order.
        """


class IMessageQueue(Interface):
    """
    The durable message queue.  Receiving modules (SMTP, LMTP, submission,
    generated messages) put messages in; it routes them, runs the rules and
    hands them to the delivery channels.
    """

    def receive():
        """
        Start receiving one message into the queue folder.

        @return: an L{IIncomingMessage}.
        """

    def submit(envelope, data):
        """
        Queue a complete message (notifications, replies, forwards).

        @return: L{Deferred} firing with the queue id once durable.
        """

    def whenDone(messageId):
        """
        @return: L{Deferred} firing with a C{list} of
            L{cgpro.core.envelope.RecipientResult} once every recipient has
            a final outcome or has failed its first attempt (LMTP's
            per-recipient replies).
        """

    def registerChannel(channel):
        """
        Add an L{IDeliveryChannel}.
        """


class IIncomingMessage(Interface):
    """
    A message being received: the bytes go to C{Queue/<id>.tmp}; L{commit}
    makes it durable as C{Queue/<id>.msg}; only then may the receiver
    acknowledge it.
    """

    id = Attribute("The queue id (C{str}).")
    size = Attribute("Bytes written so far.")

    def write(data):
        """
        Add message bytes (CRLF line ends, dot-unstuffed).
        """

    def commit(envelope):
        """
        @param envelope: the L{cgpro.core.envelope.Envelope}.
        @return: L{Deferred} firing with the queue id once durable.
        """

    def abort():
        """
        Drop the partial message (client vanished, size exceeded, ...).
        """


# -- media --------------------------------------------------------------------
#
# The relay is cgpro.media's; its seams are here so that the SIP proxy and
# the PBX (other protocol packages) use it through the server context
# (context.media) without importing it.

class MediaExhausted(Exception):
    """
    The relay cannot take one more session: the session limit is reached or
    the Port Allocation range has no free port pair left.  The message says
    which, and what to change.
    """


class IMediaSession(Interface):
    """
    One relayed call: one RTP/RTCP port pair per leg on the relay.  A packet
    received on leg I{i}'s ports from leg I{i}'s endpoint leaves from the
    other leg's ports towards the other leg's endpoint.

    Each leg is IPv4 or IPv6 (see L{IMediaRelay.allocate}), and its ports
    are bound on the relay's address of that family: the two legs of a pair
    may be of different families, and the relay then bridges an IPv6
    network and an IPv4 one.
    """

    id = Attribute("C{int}, unique for the lifetime of the relay.")
    callId = Attribute("C{str}, the Call-ID given to L{IMediaRelay.allocate}.")
    localAddress = Attribute("C{str}, the IPv4 address the relay's IPv4 legs are bound to "
                             "(for a session without IPv4 leg, the IPv6 address); "
                             "L{addressOf} gives any leg's.")
    families = Attribute("C{list} of C{4} or C{6}, one per leg, in leg order.")
    ports = Attribute("C{list} of C{(rtpPort, rtcpPort)}, one per leg, in leg order (an "
                      "IPv4 and an IPv6 leg may have the same numbers: different sockets).")
    released = Attribute("C{None} while active, then why it ended: C{'bye'}, "
                         "C{'silence'} or C{'stop'}.")

    def setRemote(leg, host, port, rtcpPort=None):
        """
        Tell the relay where leg C{leg}'s endpoint said (in its SDP) it
        receives media; used until its first packet arrives.

        Symmetric RTP: the first valid packet received on a leg's port
        I{latches} its source address, which from then on is the only one
        accepted on that port and where the other leg's packets are sent,
        whatever the SDP said (the endpoint may be behind a NAT).  Calling
        this again (a re-INVITE) forgets the latch, so the endpoint may move.

        @param leg: the leg index, C{0 <= leg < len(ports)}.
        @param host: an address (C{str}) of the leg's family: IPv4, or
            IPv6 (brackets allowed; not scoped, not IPv4-mapped).
        @param port: the RTP port (C{int}).
        @param rtcpPort: the RTCP port; default C{port + 1}.
        @raise IndexError: for an unknown leg.
        @raise ValueError: for a session already released, a bad port, or
            a host that is not an address of the leg's family.
        """

    def addressOf(leg):
        """
        @param leg: the leg index.
        @return: the relay address (C{str}) leg C{leg}'s ports are bound
            to: its IPv4 address for an IPv4 leg, its IPv6 address
            (unbracketed) for an IPv6 leg.  This is what that leg's SDP
            gets as its connection address.
        @raise IndexError: for an unknown leg.
        """

    def release():
        """
        End the session (BYE): close its ports and give them back.
        Releasing twice is harmless.
        """

    def whenReleased():
        """
        @return: a L{Deferred} firing with the reason (see C{released}) when
            the session ends, for whatever reason (the silence timeout, for
            one, ends it without the signalling asking).
        """

    def stats():
        """
        Counters per leg, for monitoring.

        @return: a C{list} (one per leg) of C{dict}: C{family} (C{4} or
            C{6}), C{rtpPort}, C{rtcpPort}, C{remote} and C{rtcpRemote}
            (latched C{(host, port)} or C{None}; an IPv6 host is
            unbracketed), C{packets}/C{bytes} (valid packets received from
            the leg's endpoint on its RTP port, multiplexed RTCP included),
            C{rtcpPackets}/C{rtcpBytes} (on its RTCP port), C{forwarded}
            (RTP and RTCP sent on to the other leg), C{ssrc}, C{lost}
            (expected minus received, from the RTP sequence numbers, RFC
            3550 A.3), C{jitter} (interarrival jitter, RFC 3550 A.8, in
            timestamp units) and C{jitterMs}, C{dropped} (the sum of
            C{droppedForeign}: from a third address; C{droppedMalformed}:
            not RTP/RTCP; C{droppedNoRoute}: the other leg's address is
            not known yet; C{droppedSendError}).
        """


class IMediaRelay(Interface):
    """
    The relay as the proxy and the B2BUA use it.
    """

    implementation = Attribute("C{'c'} (the Cython loop) or C{'py'} (the fallback).")

    def allocate(callId, legs=2, clockRate=8000, families=None):
        """
        Open a session with one RTP/RTCP port pair per leg.

        @param callId: the call's Call-ID (for logs and monitoring).
        @param legs: the number of legs (2 for a call).
        @param clockRate: the RTP clock rate used for the jitter (8000 for
            the G.711 family).
        @param families: C{None} (every leg IPv4), or a C{list} giving
            C{4} or C{6} for each leg: e.g. C{[6, 4]} for an IPv6 caller
            and an IPv4 callee.  An IPv6 leg is bound on the relay's IPv6
            address (server setting C{MediaIPv6Address}); the IPv4 and the
            IPv6 address each have the whole Port Allocation range.
        @return: an L{IMediaSession}.
        @raise MediaExhausted: the session limit is reached, the Port
            Allocation range has too few free pairs (on the IPv4 or the
            IPv6 address), or a leg is IPv6 and the relay has no IPv6
            address.
        @raise ValueError: for an odd C{legs}, or C{families} not giving
            4 or 6 for each leg.
        """

    def sessions():
        """
        @return: the active L{IMediaSession}s (C{list}).
        """

    def stats():
        """
        @return: a C{dict} for monitoring: C{implementation}, C{sessions},
            C{maxSessions}, C{portPairs} (the range's capacity),
            C{portPairsInUse}, C{allocated}, C{exhausted} (refused
            allocations), C{releasedBye}, C{releasedSilence}, and the sums
            over active sessions of C{packets}, C{bytes}, C{forwarded}, C{lost},
            C{dropped}, plus the same totals of sessions already released
            (C{packetsTotal}, ...).
        """

    def stop():
        """
        Release every session and stop forwarding.

        @return: a L{Deferred} firing once every relay socket is closed.
        """
