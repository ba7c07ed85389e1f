"""
The seams between the SIP layers (RFC 3261 section 5).

Transport, transaction, and transaction users (registrar, proxy,
OPTIONS/MESSAGE handling) meet only through these interfaces, so each is
tested on its own with fakes and the proxy never learns how bytes move.

Flow of an incoming message::

    ISIPTransport --messageReceived(msg, source)--> TransactionLayer
    TransactionLayer --requestReceived(st, request)--> ITransactionUser
    ITransactionUser --st.respond(response)--> IServerTransaction
    IServerTransaction --sendResponse(response, source)--> ISIPTransport

Flow of an outgoing request::

    proxy --layer.request(request, destination, IClientTransactionUser)-->
    IClientTransaction --sendRequest(request, destination)--> ISIPTransport
    transport/transaction --responseReceived / timedOut / transportFailed-->
    IClientTransactionUser
"""

from zope.interface import Attribute, Interface


class ISIPTransport(Interface):
    """
    What the transaction layer needs of the transport layer (RFC 3261
    section 18).  Implemented by L{cgpro.sip.transport.TransportLayer};
    tests use a fake that records what was sent.
    """

    def sendRequest(request, destination):
        """
        Send a request to C{destination} (a L{cgpro.sip.address.Peer}),
        reusing an open TCP/TLS connection to it or opening one.

        The caller (the transaction layer) has already put our Via on top,
        with C{branch}, C{rport} and the sent-by from L{localAddress}.

        @return: L{None}; a failure to send is reported later through
            the callback the transaction layer registered with
            L{setErrorHandler}.
        """

    def sendResponse(response, source):
        """
        Send a response back along its top Via (RFC 3261 section 18.2.2,
        RFC 3581 section 4): on the connection the request arrived on while
        it is open, else to C{received}/C{rport} or the sent-by address.

        @param source: the L{Peer} the request came from.
        """

    def isReliable(destination):
        """@return: whether C{destination}'s transport is TCP or TLS."""

    def localAddress(destination):
        """
        @return: C{(host, port)} that our Via sent-by, Record-Route and
            Contact carry for traffic to or from C{destination} over its
            transport (the advertised address, or the local address that
            routes to it; the bound port of that transport's listener).
        """

    def setErrorHandler(handler):
        """
        Register C{handler(destination, reason)}, called when a message to
        C{destination} could not be sent (connection refused, TLS failure,
        ICMP unreachable where known).
        """


class ITransactionUser(Interface):
    """
    The core above the transaction layer: the SIP stack's dispatcher, which
    hands requests to the registrar, the proxy and the local handlers.
    """

    def requestReceived(transaction, request):
        """
        A new request (not a retransmission, not an ACK, not a CANCEL that
        matched a transaction) arrived.

        @param transaction: the L{IServerTransaction} to answer through.
        """

    def ackReceived(request, source):
        """
        An ACK that matched no server transaction: the ACK for a 2xx,
        which a proxy forwards statelessly (RFC 3261 section 16.6 / 17).
        """

    def cancelReceived(transaction, cancel):
        """
        A CANCEL matched the INVITE server transaction C{transaction}; the
        layer has already answered the CANCEL with 200.  The user should
        cancel its client branches and answer the INVITE with 487.
        """

    def strayResponse(response, source):
        """
        A response that matched no client transaction (e.g. a
        retransmitted 2xx to an INVITE, RFC 3261 section 16.7 step 1 / 17):
        a proxy forwards it statelessly by Via.
        """


class IServerTransaction(Interface):
    """
    One server transaction (RFC 3261 section 17.2).
    """

    request = Attribute("The request that created the transaction.")
    source = Attribute("The L{Peer} the request came from.")
    method = Attribute("The request method.")
    state = Attribute(
        "'trying', 'proceeding', 'completed', 'confirmed', 'accepted' (after "
        "a 2xx to an INVITE, RFC 6026) or 'terminated'.")
    lastResponse = Attribute("The last response sent, or None.")

    def respond(response):
        """
        Send a response; the transaction moves through its states and
        retransmits (Timer G) / absorbs retransmitted requests as RFC 3261
        requires.  Responses after a final one are ignored.
        """

    def isFinal():
        """@return: whether a final response was sent."""


class IClientTransactionUser(Interface):
    """
    The owner of a client transaction (a proxy branch, a registrar
    client, a B2BUA leg).
    """

    def responseReceived(transaction, response):
        """
        A response (provisional or final; 2xx to an INVITE may come more
        than once from forked UASes) arrived for the transaction.
        """

    def timedOut(transaction):
        """Timer B or F fired without a final response (act as 408)."""

    def transportFailed(transaction, reason):
        """The request could not be sent (act as 503)."""


class IClientTransaction(Interface):
    """
    One client transaction (RFC 3261 section 17.1).
    """

    request = Attribute("The request as sent (our Via on top).")
    destination = Attribute("The L{Peer} it was sent to.")
    branch = Attribute("The branch of our Via.")
    state = Attribute(
        "'calling', 'trying', 'proceeding', 'completed', 'accepted' (after a "
        "2xx to an INVITE: later 2xx from other forks still reach the user) "
        "or 'terminated'.")

    def cancel():
        """
        For an INVITE client transaction: send a CANCEL (its own non-INVITE
        client transaction, same branch) once a provisional response has
        arrived, at once if one already has (RFC 3261 section 9.1).  No
        effect after a final response.
        """

    def terminate():
        """Stop all timers and forget the transaction (the user is done)."""


# Transaction states (the values of C{state} above).  Module constants so
# that a typo is a NameError, not a silent mismatch.
CALLING = "calling"
TRYING = "trying"
PROCEEDING = "proceeding"
COMPLETED = "completed"
CONFIRMED = "confirmed"
ACCEPTED = "accepted"
TERMINATED = "terminated"

#: Timer D for unreliable transports (RFC 3261 section 17.1.1.2: at least
#: 32 s, to absorb every retransmitted final response).
TIMER_D = 32.0

_WAITING = (CALLING, TRYING, PROCEEDING)
