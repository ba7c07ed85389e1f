"""
Real SIP clients for the end-to-end tests of the SIP issue: SIPp (Debian
package sip-tester) driven by the scenarios in C{tests/integration/sipp},
and L{UDPAgent}, a small user agent on a plain UDP socket for the checks
that need to look at one response exactly (a 401 challenge, a 482, the
Via of a 400).

Every helper takes the server's SIP port (C{5060 + offset}) and talks to
127.0.0.1.
"""

import hashlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid

from cgpro.sip.message import parseMessage

SCENARIOS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         "integration", "sipp")

SIP_PORT = 5060
SIPS_PORT = 5061


def sipPort(server):
    """@return: the server's SIP UDP/TCP port."""
    return SIP_PORT + server.offset


def haveSipp():
    return shutil.which("sipp") is not None


def freeUDPPort():
    """@return: a UDP port on 127.0.0.1 the kernel just had free."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
    finally:
        sock.close()


def scenario(name, **substitutions):
    """
    @return: the path of scenario C{name}, or of a copy with C{@KEY@}
        replaced by each substitution.
    """
    path = os.path.join(SCENARIOS, name)
    if not substitutions:
        return path
    with open(path) as f:
        text = f.read()
    for key, value in substitutions.items():
        text = text.replace("@%s@" % (key,), str(value))
    fd, copy = tempfile.mkstemp(suffix=".xml", prefix="cgpro-sipp-")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return copy


def _injection(rows):
    fd, path = tempfile.mkstemp(suffix=".csv", prefix="cgpro-sipp-")
    with os.fdopen(fd, "w") as f:
        f.write("SEQUENTIAL\n")
        for row in rows:
            f.write(";".join(row) + ";\n")
    return path


def sippCommand(scenarioPath, serverPort, localPort, user="alice", domain="main.dom",
                service=None, password=None, transport="u1", calls=1, extra=()):
    """
    @return: the argv of one SIPp run against 127.0.0.1:serverPort.
    """
    auth = ""
    if password is not None:
        auth = "[authentication username=%s password=%s]" % (user, password)
    rows = [(user, domain, auth)]
    argv = ["sipp", "127.0.0.1:%d" % (serverPort,), "-sf", scenarioPath,
            "-i", "127.0.0.1", "-p", str(localPort), "-m", str(calls),
            "-inf", _injection(rows), "-t", transport, "-nostdin",
            "-timeout", "30s", "-timeout_error", "-max_recv_loops", "100",
            "-recv_timeout", "20000", "-trace_err",
            "-error_file", os.path.join(tempfile.gettempdir(),
                                        "cgpro-sipp-%s.err" % (uuid.uuid4().hex[:8],))]
    if service is not None:
        argv += ["-s", service]
    return argv + list(extra)


def runSipp(*args, timeout=60, **kwargs):
    """
    Run SIPp to the end.

    @return: the L{subprocess.CompletedProcess} (returncode 0 = every call
        succeeded); C{.errors} holds SIPp's error file.
    """
    argv = sippCommand(*args, **kwargs)
    result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            timeout=timeout)
    errorFile = argv[argv.index("-error_file") + 1]
    result.errors = ""
    if os.path.exists(errorFile):
        with open(errorFile, errors="replace") as f:
            result.errors = f.read()[-4000:]
        os.unlink(errorFile)
    return result


class BackgroundSipp:
    """
    A SIPp UAS (a registered device) running while the test places calls.
    """

    def __init__(self, *args, **kwargs):
        self.argv = sippCommand(*args, **kwargs)
        self.errorFile = self.argv[self.argv.index("-error_file") + 1]
        self.process = subprocess.Popen(self.argv, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT)
        time.sleep(0.3)

    def wait(self, timeout=40):
        """
        @return: SIPp's exit code (0: its scenario ran to the end).
        """
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return self.process.returncode

    def errors(self):
        if os.path.exists(self.errorFile):
            with open(self.errorFile, errors="replace") as f:
                return f.read()[-4000:]
        return ""

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if os.path.exists(self.errorFile):
            os.unlink(self.errorFile)


def digestResponse(challenge, method, uri, user, password, nc=1, cnonce="0a4f113b"):
    """
    The Authorization value answering a WWW/Proxy-Authenticate C{challenge}
    (RFC 7616, computed here independently of the server's code).
    """
    params = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge.split(" ", 1)[1]))
    algorithm = params.get("algorithm", "MD5")
    h = (lambda s: hashlib.sha256(s.encode()).hexdigest()) if algorithm == "SHA-256" \
        else (lambda s: hashlib.md5(s.encode()).hexdigest())
    realm, nonce = params["realm"], params["nonce"]
    ha1 = h("%s:%s:%s" % (user, realm, password))
    ha2 = h("%s:%s" % (method, uri))
    out = 'Digest username="%s", realm="%s", nonce="%s", uri="%s", algorithm=%s' % (
        user, realm, nonce, uri, algorithm)
    if "qop" in params:
        ncText = "%08x" % (nc,)
        response = h("%s:%s:%s:%s:auth:%s" % (ha1, nonce, ncText, cnonce, ha2))
        out += ', qop=auth, nc=%s, cnonce="%s"' % (ncText, cnonce)
    else:
        response = h("%s:%s:%s" % (ha1, nonce, ha2))
    out += ', response="%s"' % (response,)
    if "opaque" in params:
        out += ', opaque="%s"' % (params["opaque"],)
    return out


class UDPAgent:
    """
    A user agent on one UDP socket: builds requests, reads responses.
    """

    def __init__(self, serverPort, user="alice", domain="main.dom"):
        self.serverPort = serverPort
        self.user = user
        self.domain = domain
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(5)
        self.port = self.sock.getsockname()[1]
        self.cseq = 0
        self.callId = uuid.uuid4().hex

    def close(self):
        self.sock.close()

    def request(self, method, uri, headers=(), body=b"", toUser=None, branch=None,
                contact=True, callId=None, maxForwards=70):
        """
        @return: the request bytes (also sent).
        """
        self.cseq += 1
        branch = branch or "z9hG4bK" + uuid.uuid4().hex[:12]
        lines = [
            "%s %s SIP/2.0" % (method, uri),
            "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=%s;rport" % (self.port, branch),
            "Max-Forwards: %d" % (maxForwards,),
            "From: <sip:%s@%s>;tag=t%d" % (self.user, self.domain, self.port),
            "To: <sip:%s@%s>" % (toUser or self.user, self.domain),
            "Call-ID: %s" % (callId or self.callId,),
            "CSeq: %d %s" % (self.cseq, method),
        ]
        if contact:
            lines.append("Contact: <sip:%s@127.0.0.1:%d>" % (self.user, self.port))
        lines += list(headers)
        lines.append("Content-Length: %d" % (len(body),))
        data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        self.send(data)
        return data

    def send(self, data):
        self.sock.sendto(data, ("127.0.0.1", self.serverPort))

    def receive(self, timeout=5, skipProvisional=True):
        """
        @return: the next message parsed (a final response by default).
        """
        deadline = time.time() + timeout
        while True:
            self.sock.settimeout(max(0.01, deadline - time.time()))
            data, _ = self.sock.recvfrom(65535)
            message = parseMessage(data)
            if skipProvisional and getattr(message, "code", 200) < 200:
                continue
            return message

    def register(self, password, expires=3600, algorithm=None):
        """
        REGISTER with digest authentication.

        @return: the final response.
        """
        uri = "sip:%s" % (self.domain,)
        self.request("REGISTER", uri, ["Expires: %d" % (expires,)])
        response = self.receive()
        if response.code != 401:
            return response
        challenges = response.getHeaders("WWW-Authenticate")
        if algorithm:
            challenges = [c for c in challenges if "algorithm=%s" % algorithm in c]
        self.request("REGISTER", uri, [
            "Expires: %d" % (expires,),
            "Authorization: " + digestResponse(challenges[0], "REGISTER", uri,
                                               self.user, password)])
        return self.receive()
