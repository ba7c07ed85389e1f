"""
The seams of the real-time (PBX) layer.

The PBX applications (L{cgpro.pbx}) act as a back-to-back user agent: they
answer calls, play and record audio, and call out.  They reach the SIP
stack only through L{IUserAgent} and the dialogs it makes (L{IDialog}),
and the media server only through L{IMediaServer} and its channels
(L{IMediaChannel}); the SIP stack hands calls routed to an application
(Router target C{app{params}#account}) to the L{IApplicationHost}.  Each
package implements its side; none imports another's modules.

Who implements what:

  - L{IUserAgent}, L{IDialog}: C{cgpro.sip.ua} (C{context.signal.ua});
  - L{IMediaServer}, L{IMediaChannel}, L{IConference}:
    C{cgpro.media.channel} (C{context.mediaServer});
  - L{IApplicationHost}: C{cgpro.pbx.host} (C{context.pbx});
  - L{IDialogOwner}: the PBX's tasks.
"""

from zope.interface import Attribute, Interface


class IDialogOwner(Interface):
    """
    What a dialog tells the one who owns it (a PBX task).  Every method is
    optional: the dialog calls only those the owner has, and answers with
    a sensible default otherwise (e.g. 488 for an offer, 403 for a REFER).
    """

    def dialogProgress(dialog, code, sdp):
        """
        An outgoing call got a provisional response.

        @param sdp: the body (C{bytes}) if it was SDP, else C{None}.
        """

    def dialogAnswered(dialog, sdp):
        """
        An outgoing call was answered (2xx; the ACK is sent by the dialog),
        or an incoming call we accepted got its ACK (C{sdp} then is the
        ACK's body or C{None}).
        """

    def dialogFailed(dialog, code, reason):
        """
        An outgoing call failed (final non-2xx, timeout: 408, transport
        error: 503), or an incoming call was cancelled before we answered
        (code 487).
        """

    def dialogEnded(dialog, reason):
        """
        An established dialog ended: C{'bye'} (the peer hung up),
        C{'timeout'} (no ACK for our 2xx, or the peer stopped answering),
        C{'local'} (we sent BYE).
        """

    def offerReceived(dialog, sdp):
        """
        A re-INVITE or UPDATE with an SDP offer.

        @return: the answer SDP (C{bytes}), or a L{Deferred} firing with it;
            C{None} rejects the offer (488).
        """

    def infoReceived(dialog, contentType, body):
        """
        An INFO request (e.g. C{application/dtmf-relay} with C{Signal=5}).
        Answered 200 by the dialog.
        """

    def referReceived(dialog, referTo, referredBy):
        """
        A REFER (blind transfer): C{referTo} is the target URI text.

        @return: C{True} to accept it (202; the dialog then sends the
            C{refer} NOTIFYs the owner asks for with L{IDialog.notifyRefer}),
            C{False} to refuse it (603).
        """

    def messageReceived(dialog, contentType, body):
        """
        A MESSAGE inside the dialog (instant message).  Answered 200.
        """


class IDialog(Interface):
    """
    One SIP dialog (or early dialog) of the server's user agent: the
    incoming leg the PBX answered, or an outgoing leg it placed.
    """

    callId = Attribute("C{str}")
    localURI = Attribute("C{str}: our address (From of an outgoing call, To of an incoming).")
    remoteURI = Attribute("C{str}: the peer's address.")
    remoteName = Attribute("C{str}: the peer's display name, or C{''}.")
    request = Attribute("The initial INVITE (L{cgpro.sip.message.Request}).")
    remoteSDP = Attribute("C{bytes} or C{None}: the peer's last SDP.")
    state = Attribute("C{'early'}, C{'confirmed'} or C{'terminated'}.")
    incoming = Attribute("C{True} for a call we received.")
    owner = Attribute("The L{IDialogOwner}; may be replaced.")
    authenticated = Attribute(
        "For an incoming call: the C{account@domain} the caller proved to be "
        "(digest), or C{None}.  See L{IUserAgent.authenticate}.")

    # Incoming calls
    def ring(code=180, sdp=None, reason=None):
        """Send a provisional response (180 Ringing, 183 with early media)."""

    def accept(sdp, headers=()):
        """
        Answer 200 with C{sdp}; resent (RFC 3261 section 13.3.1.4) until the
        ACK arrives, then L{IDialogOwner.dialogAnswered}; no ACK within
        64*T1: BYE and L{IDialogOwner.dialogEnded} C{'timeout'}.
        """

    def reject(code, reason=None, headers=()):
        """Answer with a final error response."""

    def redirect(contacts, code=302):
        """Answer 3xx with the Contact URIs C{contacts} (C{str} each)."""

    # Both
    def bye():
        """
        End the dialog: BYE when confirmed; for an outgoing early dialog
        CANCEL; for an incoming one not yet answered, 480.
        """

    def reinvite(sdp):
        """
        Send a re-INVITE with C{sdp} as an offer.

        @return: L{Deferred} firing with the answer SDP, failing with
            L{DialogError} when refused.
        """

    def sendInfo(contentType, body):
        """@return: L{Deferred} firing with the response code."""

    def sendMessage(contentType, body):
        """@return: L{Deferred} firing with the response code."""

    def notifyRefer(code, reason):
        """Send the C{refer} NOTIFY with C{message/sipfrag} C{SIP/2.0 code reason}."""


class DialogError(Exception):
    """
    A request of a dialog failed.

    @ivar code: the SIP response code (408 timeout, 503 transport).
    """

    def __init__(self, code, reason=""):
        Exception.__init__(self, code, reason)
        self.code = code
        self.reason = reason


class IUserAgent(Interface):
    """
    The server's own user agent (the B2BUA's two sides).
    """

    def answerable(transaction, request):
        """
        Take an incoming INVITE (whose server transaction has not been
        answered) as an incoming dialog.

        @return: an L{IDialog} (state C{'early'}); nothing is sent yet.
        """

    def authenticate(dialog, realm):
        """
        Check the credentials of an incoming call's INVITE (digest, as a
        proxy: 407).  With none or stale ones, the dialog is answered 407
        with a challenge and C{None} returned (the caller's new INVITE with
        credentials comes to the application again); with wrong ones 403.

        @return: C{account@domain}, or C{None} when answered.
        """

    def call(target, fromURI, sdp, owner, fromName=None, toURI=None, via=None,
             credentials=None, headers=()):
        """
        Place an outgoing call (a new dialog, with us as UAC).

        @param target: the Request-URI (C{str}).
        @param fromURI: our From (C{str}); a fresh tag is added.
        @param sdp: the offer (C{bytes}) or C{None}.
        @param owner: the L{IDialogOwner}.
        @param toURI: the To (default: C{target}).
        @param via: C{'host[:port]'} of a proxy to send through instead of
            resolving C{target} (a gateway's C{PSTNGatewayVia}).
        @param credentials: C{(authName, password)} for a 401/407 challenge
            (answered once).
        @param headers: extra C{(name, value)} headers.
        @return: the L{IDialog} (state C{'early'}).
        """

    def request(method, target, fromURI, toURI=None, headers=(), body=b"",
                contentType=None, via=None, credentials=None, callId=None, cseq=1):
        """
        Send a request outside any dialog (REGISTER, NOTIFY, MESSAGE,
        OPTIONS) statefully, answering one digest challenge with
        C{credentials}.  C{callId} and C{cseq}: a registration's refreshes
        keep one Call-ID with growing CSeq numbers.

        @return: L{Deferred} firing with the final
            L{cgpro.sip.message.Response} (a 408 made up for a timeout, 503
            for a transport error).
        """

    def localDomain(host):
        """
        @return: the local Domain a URI host names (the Main Domain for this
            server's own addresses), or C{None} for a foreign host.
        """

    def respond(transaction, code, reason=None):
        """
        Answer an incoming request the application host will not take
        (an unknown application, an instant message) outside any dialog.
        """

    def destinationFor(uri, via=None):
        """
        Where a request for C{uri} (or through the proxy C{via},
        C{'host[:port]'}) would be sent.

        @return: L{Deferred} firing with the peer (for L{contactFor}).
        """

    def contactFor(user, peer=None):
        """
        @return: a Contact URI (C{str}) at which this server receives
            requests for C{user} (RSIP registrations).
        """


class IMediaChannel(Interface):
    """
    One RTP endpoint of the server's media server: the audio leg of a call
    a PBX application answered or placed.  G.711 only (PCMU and PCMA, 8 kHz,
    20 ms frames), RFC 4733 telephone-events in and out.
    """

    localHost = Attribute("C{str}: the address to put in our SDP.")
    localPort = Attribute("C{int}: the RTP port (RTCP is the next one).")
    codec = Attribute("C{'PCMU'} or C{'PCMA'}: what we send.")
    digitReceived = Attribute(
        "C{callable(digit)} or C{None}: told of each DTMF digit received "
        "(C{'0'}-C{'9'}, C{'*'}, C{'#'}, C{'A'}-C{'D'}) once per event.")
    closed = Attribute("C{bool}")

    def setRemote(host, port, codec="PCMU", eventPayload=101, payload=None):
        """
        Where to send (from the peer's SDP) and what: C{codec}, its payload
        type C{payload} (default the static one), the RFC 4733 payload type
        (C{None} when the peer offered none).  Symmetric RTP: the first
        packet received latches the source as the remote address.
        """

    def play(prompt, loop=False):
        """
        Send C{prompt} (an L{IPrompt}), interrupting what was playing.

        @return: L{Deferred} firing with C{True} when it played to its end,
            C{False} when stopped (L{stopPlaying}, another L{play}, close).
        """

    def stopPlaying():
        """Stop sending audio (silence: no packets)."""

    def record(maxSeconds, silence=None):
        """
        Record what the peer sends, decoded to 16-bit linear PCM.

        @param silence: stop after this many seconds of silence (or no
            packets); C{None}: only C{maxSeconds} or L{stopRecording}.
        @return: L{Deferred} firing with the samples (C{bytes}, 16-bit
            little-endian mono 8 kHz), also when stopped or closed.
        """

    def stopRecording():
        """End the recording under way (its L{Deferred} fires)."""

    def sendDigit(digit, duration=0.1):
        """Send one RFC 4733 event (with end packets)."""

    def connect(other):
        """
        Relay audio both ways between this channel and C{other} (the media
        server channel of seed 003's C{#} gateways), transcoding between
        PCMU and PCMA when their codecs differ; stops playing on both.
        """

    def disconnect():
        """Undo L{connect}."""

    def stats():
        """@return: C{dict} with C{packetsIn}, C{packetsOut}, C{bytesIn}, C{bytesOut}, C{lost}."""

    def close():
        """Release the ports; pending L{play} and L{record} fire."""


class IPrompt(Interface):
    """
    Audio decoded once from a WAV or AU file and kept (with its G.711
    encodings, made on first use) for every channel that plays it.
    """

    name = Attribute("C{str}")
    duration = Attribute("C{float} seconds")

    def frames(codec):
        """@return: C{list} of 160-byte payloads of C{codec} (C{'PCMU'}, C{'PCMA'})."""


class IConference(Interface):
    """
    Several channels whose audio is mixed: each hears the sum of the
    others (16-bit linear, clipped), in its own codec.
    """

    def add(channel):
        """Join C{channel} (it stops playing)."""

    def remove(channel):
        """Leave."""

    def play(prompt):
        """Mix C{prompt} into what every member hears (join/leave tones)."""

    def members():
        """@return: C{list} of the channels."""


class IMediaServer(Interface):
    """
    The media server: channels, prompts, conferences.
    """

    def openChannel(family=4):
        """
        @return: a new L{IMediaChannel} on a free port pair of the Port
            Allocation range.
        @raise cgpro.core.interfaces.MediaExhausted: none free.
        """

    def loadPrompt(path):
        """
        @return: the L{IPrompt} of the WAV/AU file at C{path} (cached by
            path and modification time).
        @raise cgpro.media.audiofile.AudioFormatError: not a supported file.
        @raise OSError: it cannot be read.
        """

    def promptFromSamples(name, samples):
        """@return: an L{IPrompt} of 16-bit linear 8 kHz samples (C{bytes})."""

    def openConference():
        """@return: a new, empty L{IConference}."""

    def channels():
        """@return: the open channels (monitoring)."""


class IApplicationHost(Interface):
    """
    Runs the PBX applications the Router sends calls to.
    """

    def startApplication(transaction, request, route):
        """
        Start C{route.app} with C{route.params} on behalf of
        C{route.account} for the incoming request (an INVITE or MESSAGE
        outside a dialog) whose server transaction is C{transaction}.  The
        host answers the transaction (also with an error: 404 for an
        unknown application).
        """
