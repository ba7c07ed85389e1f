# -*- test-case-name: tests.integration.test_sip_softphone -*-
"""
Drive a real softphone, baresip (Debian C{baresip-core}), for end-to-end
SIP tests.

L{Baresip} writes a configuration folder for one SIP account (no sound
card: the microphone is the C{ausine} tone generator, the speaker and the
ring tones go to an C{aubridge} device nobody listens to; no STUN, TURN or
ICE), starts C{baresip -f <folder>} in a child process, and drives it over
its C{ctrl_tcp} module: netstring-framed JSON commands (C{dial}, C{accept},
C{hangup}, ...) go in, responses and events (C{REGISTER_OK},
C{CALL_INCOMING}, C{CALL_ESTABLISHED}, C{CALL_CLOSED}, ...) come out.

The account is not in the C{accounts} file: it is added with the
C{uanew} command once the test is connected to C{ctrl_tcp}, so that no
registration event is emitted before anyone listens.

Everything baresip prints (with C{-v} and the SIP trace of C{-s}) goes to
a file that L{Baresip.output} returns, so a failing test can show what the
phone said.

Typical use in a test::

    phone = startBaresip(self, "alice", "main.dom", "pw", sipPort(server))
    phone.waitEvent("REGISTER_OK")
    phone.dial("sip:bob@main.dom")
    phone.waitEvent("CALL_ESTABLISHED")
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

__all__ = [
    "BARESIP",
    "Baresip",
    "BaresipError",
    "baresipVersion",
    "freeSIPPort",
    "haveBaresip",
    "startBaresip",
]

#: The baresip executable, or C{None} if it is not installed.
BARESIP = shutil.which("baresip")

#: Where Debian puts baresip's modules.
MODULE_PATH = "/usr/lib/baresip/modules"

#: The colour escapes in baresip's output.
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

#: The modules a test phone loads: each must exist in L{MODULE_PATH}.
MODULES = ("g711", "ausine", "aubridge", "account", "menu", "ctrl_tcp")


def haveBaresip():
    """
    @return: whether baresip and the modules L{Baresip} loads are installed.
    """
    return BARESIP is not None and all(
        os.path.exists(os.path.join(MODULE_PATH, name + ".so")) for name in MODULES)


def baresipVersion():
    """
    @return: the first line of C{baresip -h} (e.g. C{"baresip v1.0.0 ..."}),
        or C{None} if baresip is missing.
    """
    if BARESIP is None:
        return None
    result = subprocess.run([BARESIP, "-h"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, timeout=10)
    lines = result.stdout.decode("utf-8", "replace").splitlines()
    return lines[0] if lines else None


def freePort(kinds=(socket.SOCK_STREAM,), host="127.0.0.1", attempts=50):
    """
    @param kinds: the socket types the port must be free for (baresip's
        C{sip_listen} opens the port for UDP and TCP alike).
    @return: a port the kernel just had free for every type in C{kinds}.
    """
    for _ in range(attempts):
        sock = socket.socket(socket.AF_INET, kinds[0])
        try:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
        finally:
            sock.close()
        if all(_portIsFree(port, kind, host) for kind in kinds[1:]):
            return port
    raise BaresipError("no free port for %r" % (kinds,))


def freeSIPPort(host="127.0.0.1", attempts=50):
    """
    @return: a port C{P} for baresip's C{sip_listen}: it binds C{P} for UDP
        and TCP, and C{P + 1} for SIP over TLS.
    """
    for _ in range(attempts):
        port = freePort((socket.SOCK_DGRAM, socket.SOCK_STREAM), host)
        if port < 65535 and _portIsFree(port + 1, socket.SOCK_STREAM, host):
            return port
    raise BaresipError("no free port pair for sip_listen")


def _portIsFree(port, kind, host):
    """
    @return: whether a socket of type C{kind} can be bound to C{host:port}.
    """
    sock = socket.socket(socket.AF_INET, kind)
    try:
        sock.bind((host, port))
    except OSError:
        return False
    finally:
        sock.close()
    return True


def netstring(data):
    """
    @param data: the payload.
    @type data: L{bytes}
    @return: C{data} framed as a netstring (C{b"<length>:<data>,"}).
    """
    return b"%d:%s," % (len(data), data)


def parseNetstrings(buffer):
    """
    Split complete netstrings off the front of C{buffer}.

    @type buffer: L{bytes}
    @return: C{(payloads, rest)}: the complete payloads, and the bytes of an
        incomplete netstring still to be completed.
    @raise BaresipError: if C{buffer} is not netstring framing.
    """
    payloads = []
    while buffer:
        colon = buffer.find(b":")
        if colon < 0:
            if not buffer.isdigit() or len(buffer) > 9:
                raise BaresipError("bad netstring framing: %r" % (buffer[:80],))
            break
        length = buffer[:colon]
        if not length.isdigit():
            raise BaresipError("bad netstring length: %r" % (buffer[:80],))
        end = colon + 1 + int(length)
        if len(buffer) < end + 1:
            break
        if buffer[end:end + 1] != b",":
            raise BaresipError("netstring without its comma: %r" % (buffer[:80],))
        payloads.append(buffer[colon + 1:end])
        buffer = buffer[end + 1:]
    return payloads, buffer


class BaresipError(Exception):
    """
    baresip did not start, answer or report an event as expected; the
    message ends with what it printed.
    """


class _PortTaken(Exception):
    """
    baresip could not bind a port chosen for it.
    """


class Baresip:
    """
    One baresip softphone, registered (or trying to) with one account.

    @ivar user: the account's user part (C{alice}).
    @ivar domain: the account's domain (C{main.dom}).
    @ivar password: the password baresip answers digest challenges with.
    @ivar proxyPort: the SIP port of the server on 127.0.0.1, used as the
        account's outbound proxy.
    @ivar transport: C{"udp"} or C{"tcp"}.
    @ivar regint: the registration interval asked for, in seconds.
    @ivar tone: the frequency of the C{ausine} "microphone", in Hz.
    @ivar sipPort: the port baresip listens on (C{sip_listen}; SIP over TLS
        takes the next one).
    @ivar ctrlPort: the port of its C{ctrl_tcp} module.
    @ivar folder: the temporary folder holding the configuration and the
        output file.
    @ivar events: every event received so far, in order (decoded JSON
        objects).
    @ivar process: the L{subprocess.Popen} while running, else C{None}.
    """

    def __init__(self, user, domain, password, proxyPort, transport="udp", regint=3600,
                 tone=440, startTimeout=10.0, keep=None):
        self.user = user
        self.domain = domain
        self.password = password
        self.proxyPort = proxyPort
        self.transport = transport
        self.regint = regint
        self.tone = tone
        self.startTimeout = startTimeout
        self.keep = bool(os.environ.get("CGPRO_KEEP_TEST_BASE")) if keep is None else keep
        self.folder = tempfile.mkdtemp(prefix="cgpro-baresip-%s-" % (user,))
        self.configDir = os.path.join(self.folder, "config")
        self.outputPath = os.path.join(self.folder, "baresip.log")
        self.sipPort = None
        self.ctrlPort = None
        self.events = []
        self.process = None
        self._sock = None
        self._buffer = b""
        self._responses = []
        self._seen = 0
        self._token = 0
        self._outputFile = None

    # -- configuration ----------------------------------------------------------

    @property
    def aor(self):
        """
        The account's address of record, as baresip spells it
        (C{sip:alice@main.dom}).
        """
        return "sip:%s@%s" % (self.user, self.domain)

    def accountLine(self):
        """
        @return: the line of baresip's C{accounts} file for this phone.
        """
        uri = self.aor
        if self.transport != "udp":
            uri += ";transport=%s" % (self.transport,)
        return ('<%s>;auth_pass=%s;outbound="sip:127.0.0.1:%d;transport=%s";regint=%d;'
                "answermode=manual;audio_codecs=pcmu,pcma"
                % (uri, self.password, self.proxyPort, self.transport, self.regint))

    def configText(self):
        """
        @return: baresip's C{config} file: loopback only, no sound card, no
            NAT helpers, C{ctrl_tcp} on L{ctrlPort}.
        """
        bridge = "cgpro-%s-%d" % (self.user, self.sipPort)
        lines = [
            "poll_method epoll",
            "sip_listen 127.0.0.1:%d" % (self.sipPort,),
            "call_local_timeout 20",
            "call_max_calls 4",
            # ausine only makes 48 kHz stereo; baresip resamples for G.711.
            "audio_source ausine,%d" % (self.tone,),
            "ausrc_srate 48000",
            "ausrc_channels 2",
            "audio_player aubridge,%s" % (bridge,),
            "audio_alert aubridge,%s-alert" % (bridge,),
            "audio_level no",
            "rtcp_mux no",
            "jitter_buffer_delay 5-10",
            "rtp_stats no",
            "module_path %s" % (MODULE_PATH,),
            "module g711.so",
            "module ausine.so",
            "module aubridge.so",
            "module_tmp account.so",
            "module_app menu.so",
            "module_app ctrl_tcp.so",
            "ctrl_tcp_listen 127.0.0.1:%d" % (self.ctrlPort,),
            "",
        ]
        return "\n".join(lines)

    def writeConfig(self):
        """
        Pick free ports and write C{config} and C{accounts} to L{configDir}.
        """
        os.makedirs(self.configDir, exist_ok=True)
        self.sipPort = freeSIPPort()
        self.ctrlPort = freePort()
        with open(os.path.join(self.configDir, "config"), "w") as f:
            f.write(self.configText())
        with open(os.path.join(self.configDir, "accounts"), "w") as f:
            # empty: the account is added by L{start} once ctrl_tcp is
            # connected, so that no registration event is missed
            f.write("# added with uanew: %s\n" % (self.accountLine(),))
        with open(os.path.join(self.configDir, "contacts"), "w") as f:
            f.write("")

    # -- life cycle -------------------------------------------------------------

    def start(self):
        """
        Write the configuration, start baresip, connect to its C{ctrl_tcp}
        port and add the account (C{uanew}), which starts registering.

        @return: C{self}.
        @raise BaresipError: if it exits or does not listen within
            C{startTimeout} seconds.
        """
        if BARESIP is None:
            raise BaresipError("baresip is not installed")
        for _ in range(3):
            try:
                self._startOnce()
                break
            except _PortTaken:
                # another process took a port between our check and
                # baresip's bind: try again on fresh ports
                self._outputFile.close()
                self._outputFile = None
        else:
            raise BaresipError("baresip found its ports taken three times\n"
                               + self.outputTail())
        self.command("uanew", self.accountLine())
        return self

    def _startOnce(self):
        """
        Start baresip once on freshly chosen ports and connect to ctrl_tcp.

        @raise _PortTaken: if baresip could not bind one of its ports.
        """
        self.writeConfig()
        self._outputFile = open(self.outputPath, "ab")
        self._outputFile.write(b"--- baresip -f %s (sip_listen %d, ctrl_tcp %d)\n"
                               % (self.configDir.encode(), self.sipPort, self.ctrlPort))
        self._outputFile.flush()
        self.process = subprocess.Popen(
            [BARESIP, "-v", "-s", "-f", self.configDir],
            stdin=subprocess.DEVNULL, stdout=self._outputFile, stderr=subprocess.STDOUT,
            cwd=self.folder, start_new_session=True)
        deadline = time.monotonic() + self.startTimeout
        while True:
            if self.process.poll() is not None:
                if "Address already in use" in self.output().rsplit("--- baresip -f", 1)[-1]:
                    raise _PortTaken()
                raise BaresipError("baresip exited with status %s while starting\n%s"
                                   % (self.process.returncode, self.outputTail()))
            try:
                self._sock = socket.create_connection(("127.0.0.1", self.ctrlPort), timeout=1)
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise BaresipError("ctrl_tcp port %d did not answer within %.0f s\n%s"
                                       % (self.ctrlPort, self.startTimeout, self.outputTail()))
                time.sleep(0.05)

    @property
    def running(self):
        """
        Whether the baresip process is alive.
        """
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout=5.0):
        """
        Ask baresip to quit (C{quit} over C{ctrl_tcp}), then SIGTERM, then
        SIGKILL if it lingers.  Never raises.

        @return: its exit status, or C{None} if it was not started.
        """
        if self.process is None:
            return None
        if self.process.poll() is None and self._sock is not None:
            try:
                self._send("quit", None)
            except (OSError, BaresipError):
                pass
            self._wait(timeout / 2)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if self.process.poll() is not None:
                break
            try:
                self.process.send_signal(sig)
            except ProcessLookupError:
                break
            self._wait(timeout / 2)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._outputFile is not None:
            self._outputFile.close()
            self._outputFile = None
        return self.process.returncode

    def _wait(self, timeout):
        """
        Wait up to C{timeout} seconds for baresip to exit.
        """
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass

    def cleanup(self):
        """
        Stop baresip and remove its folder (unless C{keep}).  Never raises:
        it runs from C{addCleanup}.
        """
        try:
            self.stop()
        finally:
            if self.process is not None and self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            if not self.keep:
                shutil.rmtree(self.folder, ignore_errors=True)

    # -- output -------------------------------------------------------------------

    def output(self):
        """
        @return: everything baresip printed so far, without colour escapes.
        """
        try:
            with open(self.outputPath, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""
        return _ANSI.sub("", text)

    def outputTail(self, limit=6000):
        """
        @return: the end of L{output}, with a heading naming this phone,
            for assertion messages.
        """
        text = self.output()
        if len(text) > limit:
            text = "[...]\n" + text[-limit:]
        return "--- baresip %s (%s) output ---\n%s" % (self.aor, self.outputPath, text)

    def responses(self, method):
        """
        Read baresip's SIP trace (C{-s}) for the responses it received or
        sent to requests of C{method}.

        @param method: e.g. C{"BYE"}.
        @return: their status lines, in order (C{"SIP/2.0 200 OK"}).
        """
        found = []
        for block in re.split(r"\n(?=(?:UDP|TCP|TLS) \S+ -> \S+\n)", self.output()):
            lines = block.splitlines()
            if len(lines) < 2 or not lines[1].startswith("SIP/2.0 "):
                continue
            for line in lines[2:]:
                if not line.strip():
                    break
                name, _, value = line.partition(":")
                if name.strip().lower() == "cseq" and value.split()[-1:] == [method]:
                    found.append(lines[1].strip())
                    break
        return found

    def waitResponse(self, method, timeout=5.0):
        """
        Wait until baresip's SIP trace shows a final response to a request
        of C{method}.

        @return: L{responses} of C{method} then (the last one is final), or
            what there was at C{timeout}.
        """
        deadline = time.monotonic() + timeout
        while True:
            found = self.responses(method)
            if (found and not found[-1].startswith("SIP/2.0 1")) or (
                    time.monotonic() > deadline):
                return found
            time.sleep(0.05)

    # -- ctrl_tcp -----------------------------------------------------------------

    def _send(self, command, params):
        """
        Send one ctrl_tcp command.

        @return: its token, which its response carries back.
        """
        self._token += 1
        message = {"command": command, "token": str(self._token)}
        if params is not None:
            message["params"] = params
        self._sock.sendall(netstring(json.dumps(message).encode("utf-8")))
        return str(self._token)

    def _receive(self, deadline):
        """
        Read what ctrl_tcp sent until C{deadline} (or one chunk), sorting
        events into L{events} and responses into C{_responses}.

        @return: whether something was read.
        """
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self._sock.settimeout(remaining)
        try:
            chunk = self._sock.recv(65536)
        except socket.timeout:
            return False
        if not chunk:
            raise BaresipError("baresip closed its ctrl_tcp connection\n" + self.outputTail())
        payloads, self._buffer = parseNetstrings(self._buffer + chunk)
        for payload in payloads:
            message = json.loads(payload.decode("utf-8", "replace"))
            if message.get("event"):
                self.events.append(message)
            else:
                self._responses.append(message)
        return True

    def command(self, command, params=None, timeout=5.0):
        """
        Run one baresip command (a long command of the C{menu} module) and
        wait for its response.

        @param command: e.g. C{"dial"}, C{"accept"}, C{"hangup"}, C{"reginfo"}.
        @param params: its parameter string, if any.
        @return: the response, a L{dict} with C{ok} and C{data}.
        @raise BaresipError: if no response comes within C{timeout} seconds,
            or it is not C{ok}.
        """
        token = self._send(command, params)
        deadline = time.monotonic() + timeout
        while True:
            for response in self._responses:
                if response.get("token") == token:
                    self._responses.remove(response)
                    if not response.get("ok"):
                        raise BaresipError("baresip refused %s %r: %r\n%s"
                                           % (command, params, response, self.outputTail()))
                    return response
            if time.monotonic() > deadline:
                raise BaresipError("no response to %s %r within %.0f s\n%s"
                                   % (command, params, timeout, self.outputTail()))
            self._receive(deadline)

    def waitEvent(self, *types, timeout=10.0):
        """
        Wait for the next event (after those already returned) whose type is
        one of C{types}; events of other types are skipped but kept in
        L{events}.

        @param types: event types, e.g. C{"REGISTER_OK"}, C{"REGISTER_FAIL"}.
        @return: the event (a L{dict} with C{type}, C{class}, C{param}, ...).
        @raise BaresipError: on timeout, naming every event seen.
        """
        deadline = time.monotonic() + timeout
        while True:
            while self._seen < len(self.events):
                event = self.events[self._seen]
                self._seen += 1
                if event.get("type") in types:
                    return event
            if time.monotonic() > deadline:
                raise BaresipError(
                    "%s saw no %s within %.0f s; events: %s\n%s"
                    % (self.aor, "/".join(types), timeout,
                       [(e.get("type"), e.get("param")) for e in self.events],
                       self.outputTail()))
            if not self.running:
                raise BaresipError("baresip %s exited with status %s; events: %s\n%s"
                                   % (self.aor, self.process.returncode,
                                      [e.get("type") for e in self.events],
                                      self.outputTail()))
            self._receive(min(deadline, time.monotonic() + 0.5))

    def waitSeen(self, eventType, timeout=10.0):
        """
        Wait until an event of C{eventType} has been received, whenever it
        came (even before events L{waitEvent} already returned); it is not
        consumed.

        @return: the first such event.
        @raise BaresipError: on timeout.
        """
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if event.get("type") == eventType:
                    return event
            if time.monotonic() > deadline:
                raise BaresipError("%s saw no %s within %.0f s; events: %s\n%s"
                                   % (self.aor, eventType, timeout, self.eventTypes(),
                                      self.outputTail()))
            self._receive(min(deadline, time.monotonic() + 0.5))

    def eventTypes(self):
        """
        @return: the types of all events received so far, in order.
        """
        return [event.get("type") for event in self.events]

    # -- phone actions ------------------------------------------------------------

    def dial(self, uri):
        """
        Call C{uri} (C{dial} command).
        """
        return self.command("dial", uri)

    def accept(self):
        """
        Answer the incoming call (C{accept} command).
        """
        return self.command("accept")

    def hangup(self):
        """
        Hang up the current call (C{hangup} command).
        """
        return self.command("hangup")


def startBaresip(testCase, user, domain, password, proxyPort, **kwargs):
    """
    Start a L{Baresip} for one test; C{addCleanup} stops it and removes its
    folder even if the test fails.

    @param kwargs: passed to L{Baresip}.
    @return: the started phone.
    """
    phone = Baresip(user, domain, password, proxyPort, **kwargs)
    testCase.addCleanup(phone.cleanup)
    phone.start()
    return phone
