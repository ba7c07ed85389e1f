# -*- test-case-name: tests.integration.test_cli_server -*-
"""
Run the real server, as an administrator would, for end-to-end tests and
benchmarks.

L{ServerProcess} starts C{twistd -n cgpro} (or C{twistd -n -y
tac/cgpro.tac}) as a child process of the current Python interpreter, on a
temporary base folder and a free port offset, and waits until the CLI
listener answers.  Everything the server prints goes to a log file that
L{ServerProcess.log} returns, so a failing test can show what the server
said.

The harness works whether cgpro is installed (C{pip install .}: twistd finds
the plugin in site-packages) or only checked out: C{PYTHONPATH} always
starts with the checkout root, which holds both C{cgpro} and the
C{twisted/plugins} drop-in.

Typical use in a test::

    server = startServer(self)          # stopped by addCleanup
    client = server.client()            # logged in as postmaster (APOP)
    client.createAccount("u")

or, outside tests::

    with ServerProcess() as server:
        print(server.cliPort)
"""

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from cgpro.cli.client import CLIClient

__all__ = [
    "CHECKOUT",
    "CLI_PORT",
    "ServerError",
    "ServerProcess",
    "freeOffset",
    "portIsFree",
    "startServer",
    "twistdCommand",
    "serverEnvironment",
]

#: The checkout root: the folder holding C{cgpro/}, C{tac/} and C{twisted/plugins/}.
CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: The CLI row of C{etc/ports.conf}; the listener is on C{CLI_PORT + offset}.
CLI_PORT = 106

#: Every port the implemented modules listen on (before the offset): an
#: offset is used only if all of them are free.
LISTENING_PORTS = (24, 25, 106, 110, 143, 465, 587, 993, 995, 5060, 5061, 9106)

#: The UDP rows (SIP): also checked before an offset is used.
LISTENING_UDP_PORTS = (161, 514, 5060)

#: Offsets are drawn from this range (so every shipped row stays below 65536
#: except a handful of high ones, which are not implemented yet).
OFFSET_RANGE = (20000, 40000)

_TWISTD = "import sys; sys.argv[0] = 'twistd'; from twisted.scripts.twistd import run; run()"


class ServerError(Exception):
    """
    The server did not start (or stop) as expected; the message ends with
    its log output.
    """


def portIsFree(port, host="127.0.0.1"):
    """
    @return: whether a TCP socket can be bound to C{host:port} right now.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        return False
    finally:
        sock.close()
    return True


def udpPortIsFree(port, host="127.0.0.1"):
    """
    @return: whether a UDP socket can be bound to C{host:port} right now.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
    except OSError:
        return False
    finally:
        sock.close()
    return True


def freeOffset(rng=random, attempts=200):
    """
    Pick a random port offset whose CLI port (106 + offset) is free.

    @raise ServerError: if none is found.
    """
    low, high = OFFSET_RANGE
    for _ in range(attempts):
        offset = rng.randint(low, high)
        if all(portIsFree(port + offset) for port in LISTENING_PORTS) and all(
                udpPortIsFree(port + offset) for port in LISTENING_UDP_PORTS):
            return offset
    raise ServerError("no free port offset found in %d..%d" % (low, high))


def freePort(host="127.0.0.1"):
    """
    @return: a TCP port the kernel just had free (bind to port 0).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((host, 0))
        return sock.getsockname()[1]
    finally:
        sock.close()


def serverEnvironment(extra=None):
    """
    The environment of a server child: this one, plus the checkout root in
    front of C{PYTHONPATH}, minus any C{CGPRO_*} variable that would
    silently change the server's configuration, plus C{extra}.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("CGPRO_")}
    paths = [CHECKOUT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def twistdCommand(*args):
    """
    @return: the argv running C{twistd args...} with this interpreter.
    """
    return [sys.executable, "-c", _TWISTD] + list(args)


class ServerProcess:
    """
    One cgpro server in a child process.

    @ivar base: the base folder (a fresh temporary folder unless given).
    @ivar offset: the port offset (a free random one unless given).
    @ivar cliPort: C{106 + offset}.
    @ivar domain: the Main Domain created on the first start.
    @ivar password: the postmaster password set on the first start.
    @ivar tac: start with C{twistd -y tac/cgpro.tac} and environment
        variables instead of the C{cgpro} plugin and options.
    @ivar process: the L{subprocess.Popen} while running, else C{None}.
    @ivar startupTime: seconds from process start until the CLI answered,
        for the last start.
    @ivar starts: how many times the server was started.
    """

    def __init__(self, base=None, offset=None, domain="main.dom", password="secret",
                 tac=False, extraArgs=(), env=None, startTimeout=20.0, stopTimeout=30.0,
                 keep=None):
        self._tempdir = tempfile.mkdtemp(prefix="cgpro-it-")
        self.base = os.path.abspath(base) if base else os.path.join(self._tempdir, "base")
        self._fixedOffset = offset is not None
        self.offset = offset
        self.domain = domain
        self.password = password
        self.tac = tac
        self.extraArgs = list(extraArgs)
        self.extraEnv = dict(env or {})
        self.startTimeout = startTimeout
        self.stopTimeout = stopTimeout
        self.keep = bool(os.environ.get("CGPRO_KEEP_TEST_BASE")) if keep is None else keep
        self.logPath = os.path.join(self._tempdir, "server.log")
        self.process = None
        self.startupTime = None
        self.starts = 0
        self._clients = []
        self._logFile = None

    # -- properties ---------------------------------------------------------

    @property
    def cliPort(self):
        """
        The CLI listener's port (C{106 + offset}).
        """
        if self.offset is None:
            raise ServerError("the server has not been started yet")
        return CLI_PORT + self.offset

    @property
    def pid(self):
        """
        The twistd process id, or C{None} when not running.
        """
        return self.process.pid if self.process is not None else None

    @property
    def running(self):
        """
        Whether the child process is alive.
        """
        return self.process is not None and self.process.poll() is None

    # -- life cycle -----------------------------------------------------------

    def command(self):
        """
        @return: C{(argv, env)} starting this server.
        """
        if self.tac:
            tac = os.path.join(CHECKOUT, "tac", "cgpro.tac")
            argv = twistdCommand("-n", "--pidfile=", "-y", tac)
            env = serverEnvironment({
                "CGPRO_BASE": self.base,
                "CGPRO_PORT_OFFSET": str(self.offset),
                "CGPRO_DOMAIN": self.domain,
                "CGPRO_POSTMASTER_PASSWORD": self.password,
            })
        else:
            argv = twistdCommand(
                "-n", "--pidfile=", "cgpro",
                "--base", self.base,
                "--port-offset", str(self.offset),
                "--domain", self.domain,
                "--postmaster-password", self.password,
            )
            env = serverEnvironment()
        argv.extend(self.extraArgs)
        env.update(self.extraEnv)
        return argv, env

    def start(self):
        """
        Start the server and wait until its CLI port answers with a greeting.

        With a random offset, a port taken by someone else between the
        check and the bind is retried on another offset.

        @return: C{self}.
        @raise ServerError: if the server dies or does not answer within
            C{startTimeout} seconds (the message carries its log).
        """
        if self.running:
            raise ServerError("the server is already running")
        for attempt in range(5):
            if self.offset is None or (not self._fixedOffset and attempt):
                self.offset = freeOffset()
            try:
                self._startOnce()
                return self
            except _PortTaken:
                self._terminate(signal.SIGKILL)
                self._reap()
                if self._fixedOffset:
                    raise ServerError(
                        "the CLI port %d is taken\n%s" % (self.cliPort, self._logTail())
                    )
        raise ServerError("could not find a free port offset\n" + self._logTail())

    def _startOnce(self):
        argv, env = self.command()
        self._logFile = open(self.logPath, "ab")
        self._logFile.write(("--- start %d: %s\n" % (self.starts + 1, " ".join(argv[3:]))).encode())
        self._logFile.flush()
        began = time.monotonic()
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._logFile,
            stderr=subprocess.STDOUT,
            cwd=self._tempdir,
            env=env,
        )
        self.starts += 1
        deadline = began + self.startTimeout
        while True:
            code = self.process.poll()
            if code is not None:
                self._reap()
                raise ServerError(
                    "the server exited with status %s while starting\n%s" % (code, self._logTail())
                )
            text = self.log().rsplit("--- start", 1)[-1]
            if ("listener cli (cli) cannot listen" in text
                    or "Couldn't listen on 127.0.0.1:%d:" % (self.cliPort,) in text):
                raise _PortTaken()
            if self._greets():
                self.startupTime = time.monotonic() - began
                return
            if time.monotonic() > deadline:
                self._terminate(signal.SIGKILL)
                raise ServerError(
                    "the CLI port %d did not answer within %.0f s\n%s"
                    % (self.cliPort, self.startTimeout, self._logTail())
                )
            time.sleep(0.02)

    def _greets(self):
        try:
            sock = socket.create_connection(("127.0.0.1", self.cliPort), timeout=1)
        except OSError:
            return False
        try:
            sock.settimeout(1)
            data = b""
            while b"\n" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    return False
                data += chunk
            return data.startswith(b"200 ")
        except OSError:
            return False
        finally:
            sock.close()

    def stop(self, timeout=None):
        """
        Stop the server with SIGTERM and wait for it to exit (SIGKILL after
        C{timeout} seconds).

        @return: the exit status, or C{None} if it was not running.
        @raise ServerError: if it had to be killed.
        """
        self._closeClients()
        if self.process is None:
            return None
        if self.process.poll() is not None:
            return self._reap()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout or self.stopTimeout)
        except subprocess.TimeoutExpired:
            self._terminate(signal.SIGKILL)
            raise ServerError("the server ignored SIGTERM; killed\n" + self._logTail())
        return self._reap()

    def kill(self):
        """
        Kill the server with SIGKILL (no chance to finish anything).

        @return: the exit status, or C{None} if it was not running.
        """
        if self.process is None:
            self._closeClients()
            return None
        self._terminate(signal.SIGKILL)
        self._closeClients()
        return self._reap()

    def restart(self, hard=False):
        """
        Stop (SIGTERM, or SIGKILL with C{hard}) if running, then start again
        on the same base folder and offset.

        @return: C{self}.
        """
        if hard:
            self.kill()
        else:
            self.stop()
        self._fixedOffset = True
        return self.start()

    def cleanup(self):
        """
        Stop the server whatever its state, then remove the temporary folder
        (unless C{keep}).  Never raises: it runs from C{addCleanup} and
        C{__exit__}.
        """
        try:
            if self.running:
                try:
                    self.stop(timeout=10)
                except ServerError:
                    pass
            self.kill()
        finally:
            if self._logFile is not None:
                self._logFile.close()
                self._logFile = None
            if not self.keep:
                shutil.rmtree(self._tempdir, ignore_errors=True)

    def _terminate(self, sig):
        if self.process is not None and self.process.poll() is None:
            try:
                self.process.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                pass

    def _reap(self):
        process, self.process = self.process, None
        if process is None:
            return None
        try:
            code = process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        if self._logFile is not None:
            self._logFile.close()
            self._logFile = None
        return code

    def __enter__(self):
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc):
        self.cleanup()
        return False

    # -- clients and output -----------------------------------------------------

    def client(self, user="postmaster", password=None, secure=True, inline=True,
               login=True, timeout=30.0):
        """
        Open a CLI session, logged in unless C{login} is false.

        The session is closed by L{stop}, L{kill} and L{cleanup}.

        @param password: defaults to the postmaster password.
        @param secure: APOP (default) or USER/PASS.
        @return: a connected L{CLIClient}.
        """
        client = CLIClient("127.0.0.1", self.cliPort, timeout=timeout)
        client.connect()
        self._clients.append(client)
        if login:
            client.login(user, self.password if password is None else password,
                         secure=secure, inline=inline)
        return client

    def connect(self, timeout=30.0):
        """
        @return: a raw socket connected to the CLI port (greeting unread),
            closed by L{stop}, L{kill} and L{cleanup}.
        """
        sock = socket.create_connection(("127.0.0.1", self.cliPort), timeout=timeout)
        self._clients.append(sock)
        return sock

    def _closeClients(self):
        clients, self._clients = self._clients, []
        for client in clients:
            try:
                client.close()
            except OSError:
                pass

    def log(self):
        """
        @return: everything the server printed so far (all starts).
        """
        try:
            with open(self.logPath, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def _logTail(self, limit=20000):
        text = self.log()
        if len(text) > limit:
            text = "[...]\n" + text[-limit:]
        return "--- server log (%s) ---\n%s" % (self.logPath, text)

    def rss(self):
        """
        @return: the resident set size of the server process in bytes
            (Linux C{/proc/PID/status} VmRSS).
        """
        with open("/proc/%d/status" % (self.pid,)) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise ServerError("no VmRSS for process %s" % (self.pid,))

    def cpuSeconds(self):
        """
        @return: user + system CPU seconds used by the server process so far
            (Linux C{/proc/PID/stat}).
        """
        with open("/proc/%d/stat" % (self.pid,)) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks


class _PortTaken(Exception):
    """The chosen CLI port was taken before the server could bind it."""


def startServer(testCase, **kwargs):
    """
    Start a L{ServerProcess} for one test; C{addCleanup} stops it and removes
    its folder even if the test fails.

    @param kwargs: passed to L{ServerProcess}.
    @return: the started server.
    """
    server = ServerProcess(**kwargs)
    testCase.addCleanup(server.cleanup)
    server.start()
    return server
