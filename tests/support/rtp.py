"""
A phone's audio side for the PBX tests: a UDP socket that receives the
server's RTP, tells which stock prompts it heard (by comparing payloads
with the prompt files' G.711 frames), and sends RFC 4733 digits and
speech-like audio.

The signalling is SIPp's (or L{tests.support.sip.UDPAgent}'s); the SDP they
send names this endpoint's port.
"""

import math
import os
import random
import socket
import struct
import threading
import time

from cgpro.media import g711
from cgpro.media.audiofile import readAudio

ETC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                   "etc", "pbx")
EVENTS = {d: i for i, d in enumerate("0123456789*#ABCD")}


def promptFrames(name, codec="PCMU"):
    """The 160-byte frames the server sends for stock prompt C{name}."""
    with open(os.path.join(ETC, name + ".wav"), "rb") as f:
        samples = readAudio(f.read())
    encoded = g711.encode(samples, codec)
    frames = [encoded[i:i + 160] for i in range(0, len(encoded), 160)]
    if frames and len(frames[-1]) < 160:
        frames[-1] = frames[-1] + (b"\xff" if codec == "PCMU" else b"\xd5") * (
            160 - len(frames[-1]))
    return frames


class RTPEndpoint:
    """
    @ivar received: C{[(payloadType, payload, source)]} in arrival order.
    """

    def __init__(self, host="127.0.0.1"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.received = []
        self.remote = None
        self.seq = random.randint(0, 1000)
        self.timestamp = random.randint(0, 100000)
        self.ssrc = random.randint(1, 2 ** 31)
        self._stop = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def close(self):
        self._stop = True
        self._thread.join(2)
        self.sock.close()

    def _read(self):
        while not self._stop:
            try:
                data, source = self.sock.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(data) < 12 or data[0] >> 6 != 2:
                continue
            with self._lock:
                self.received.append((data[1] & 0x7F, data[12:], source))
                if self.remote is None:
                    self.remote = source

    def payloads(self, payloadType=None):
        with self._lock:
            return [p for pt, p, _ in self.received if payloadType is None or pt == payloadType]

    def heard(self, name, codec="PCMU", fraction=0.8):
        """Whether most frames of prompt C{name} arrived (in any order)."""
        frames = promptFrames(name, codec)
        got = set(self.payloads(0 if codec == "PCMU" else 8))
        have = sum(1 for f in frames if f in got)
        return have >= fraction * len(frames)

    def waitHeard(self, name, timeout=15, codec="PCMU"):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.heard(name, codec):
                return True
            time.sleep(0.1)
        return False

    def waitPackets(self, count=1, timeout=5):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if len(self.received) >= count:
                return True
            time.sleep(0.05)
        return False

    def _send(self, payloadType, payload, marker=False, timestamp=None, advance=True):
        if self.remote is None:
            raise AssertionError("no RTP received yet: nowhere to send")
        self.seq = (self.seq + 1) & 0xFFFF
        header = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | payloadType, self.seq,
                             self.timestamp if timestamp is None else timestamp, self.ssrc)
        self.sock.sendto(header + payload, self.remote)
        if advance:
            self.timestamp = (self.timestamp + 160) & 0xFFFFFFFF

    def sendDigits(self, digits, payloadType=101, gap=0.25):
        """Send each digit as an RFC 4733 event (3 updates, 3 end packets)."""
        for digit in digits:
            start = self.timestamp
            event = EVENTS[digit]
            for i in range(3):
                self._send(payloadType, struct.pack("!BBH", event, 10, 160 * (i + 1)),
                           marker=(i == 0), timestamp=start, advance=False)
                time.sleep(0.02)
            for _ in range(3):
                self._send(payloadType, struct.pack("!BBH", event, 0x80 | 10, 480),
                           timestamp=start, advance=False)
            self.timestamp = (self.timestamp + 640) & 0xFFFFFFFF
            time.sleep(gap)

    def speak(self, seconds, codec="PCMU", frequency=440.0, amplitude=8000):
        """Send a tone (something a recording keeps) in real time."""
        payloadType = 0 if codec == "PCMU" else 8
        frames = int(seconds * 50)
        start = time.time()
        for n in range(frames):
            samples = [int(amplitude * math.sin(2 * math.pi * frequency * (n * 160 + i) / 8000))
                       for i in range(160)]
            linear = struct.pack("<160h", *samples)
            self._send(payloadType, g711.encode(linear, codec), marker=(n == 0))
            delay = start + (n + 1) * 0.02 - time.time()
            if delay > 0:
                time.sleep(delay)


def sdp(port, codecs=("PCMU",), events=True, host="127.0.0.1"):
    """An SDP offer for an endpoint at C{port}."""
    numbers = [0 if c == "PCMU" else 8 for c in codecs]
    formats = " ".join(str(n) for n in numbers + ([101] if events else []))
    lines = ["v=0", "o=test 1 1 IN IP4 %s" % host, "s=-", "c=IN IP4 %s" % host, "t=0 0",
             "m=audio %d RTP/AVP %s" % (port, formats)]
    for codec, number in zip(codecs, numbers):
        lines.append("a=rtpmap:%d %s/8000" % (number, codec))
    if events:
        lines += ["a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15"]
    return ("\r\n".join(lines) + "\r\n").encode()


class Phone:
    """
    A caller for the PBX tests: SIP on a L{tests.support.sip.UDPAgent},
    audio on an L{RTPEndpoint}; answers the server's in-dialog requests
    (BYE, re-INVITE, NOTIFY) by itself as they come.
    """

    def __init__(self, serverPort, user="alice", domain="main.dom", codecs=("PCMU",)):
        from tests.support.sip import UDPAgent

        self.agent = UDPAgent(serverPort, user=user, domain=domain)
        self.rtp = RTPEndpoint()
        self.codecs = codecs
        self.response = None
        self.toTag = None
        self.routes = []
        self.byeReceived = False
        self.requests = []

    def close(self):
        self.agent.close()
        self.rtp.close()

    def call(self, target, headers=(), password=None, timeout=10):
        """INVITE C{target} (C{user@domain}); @return: the final response."""
        agent = self.agent
        uri = "sip:" + target
        body = sdp(self.rtp.port, self.codecs)
        hdrs = ["Content-Type: application/sdp"] + list(headers)
        agent.request("INVITE", uri, hdrs, body=body, toUser=target.split("@")[0])
        response = self._final(timeout)
        if response.code == 407 and password is not None:
            from tests.support.sip import digestResponse

            self.ack(response, uri)
            challenge = response.getHeader("Proxy-Authenticate")
            auth = digestResponse(challenge, "INVITE", uri, agent.user, password)
            agent.request("INVITE", uri, hdrs + ["Proxy-Authorization: " + auth], body=body,
                          toUser=target.split("@")[0])
            response = self._final(timeout)
        self.response = response
        self.uri = uri
        if 200 <= response.code < 300:
            self.toTag = response.toAddr.tag
            self.routes = [str(r) for r in reversed(response.getHeaders("Record-Route"))]
            self.ack(response, uri)
        elif response.code >= 300:
            self.ack(response, uri)
        return response

    def _final(self, timeout):
        deadline = time.time() + timeout
        while True:
            message = self.agent.receive(max(0.1, deadline - time.time()), skipProvisional=True)
            if hasattr(message, "code"):
                return message
            self._answer(message)

    def ack(self, response, uri):
        agent = self.agent
        lines = ["ACK %s SIP/2.0" % (uri if response.code >= 300 else self._target(response),),
                 "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKack%d;rport" % (agent.port,
                                                                                agent.cseq),
                 "Max-Forwards: 70",
                 "From: %s" % (response.getHeader("From"),),
                 "To: %s" % (response.getHeader("To"),),
                 "Call-ID: %s" % (response.callId,),
                 "CSeq: %d ACK" % (response.cseq.number,)]
        if response.code < 300:
            lines += ["Route: %s" % (r,) for r in self.routes]
        lines.append("Content-Length: 0")
        agent.send(("\r\n".join(lines) + "\r\n\r\n").encode())

    def _target(self, response):
        contact = response.contact
        return str(contact[0].uri) if contact else self.uri

    def _answer(self, request):
        """Answer a request the server sent us (200, with our SDP for an INVITE)."""
        self.requests.append(request)
        if request.method == "ACK":
            return
        if request.method == "BYE":
            self.byeReceived = True
        body = b""
        extra = []
        if request.method == "INVITE":
            body = sdp(self.rtp.port, self.codecs)
            extra = ["Content-Type: application/sdp",
                     "Contact: <sip:%s@127.0.0.1:%d>" % (self.agent.user, self.agent.port)]
        lines = ["SIP/2.0 200 OK"]
        lines += ["Via: %s" % (v,) for v in request.getHeaders("Via")]
        lines += ["From: %s" % (request.getHeader("From"),),
                  "To: %s" % (request.getHeader("To"),),
                  "Call-ID: %s" % (request.callId,),
                  "CSeq: %s" % (request.getHeader("CSeq"),)] + extra
        lines.append("Content-Length: %d" % (len(body),))
        self.agent.send(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    def serve(self, seconds):
        """Answer what the server sends for C{seconds}."""
        deadline = time.time() + seconds
        while time.time() < deadline:
            try:
                message = self.agent.receive(max(0.05, deadline - time.time()),
                                             skipProvisional=False)
            except (socket.timeout, OSError):
                continue
            if not hasattr(message, "code"):
                self._answer(message)

    def info(self, digit):
        """Send a DTMF digit as SIP INFO (application/dtmf-relay)."""
        self._inDialog("INFO", ["Content-Type: application/dtmf-relay"],
                       ("Signal=%s\r\nDuration=160\r\n" % (digit,)).encode())

    def bye(self):
        self._inDialog("BYE")

    def _inDialog(self, method, headers=(), body=b""):
        agent = self.agent
        response = self.response
        agent.cseq += 1
        lines = ["%s %s SIP/2.0" % (method, self._target(response)),
                 "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK%s%d;rport" % (
                     agent.port, method.lower(), agent.cseq),
                 "Max-Forwards: 70",
                 "From: %s" % (response.getHeader("From"),),
                 "To: %s" % (response.getHeader("To"),),
                 "Call-ID: %s" % (response.callId,),
                 "CSeq: %d %s" % (agent.cseq, method)]
        lines += ["Route: %s" % (r,) for r in self.routes]
        lines += list(headers)
        lines.append("Content-Length: %d" % (len(body),))
        agent.send(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
