# -*- test-case-name: tests.integration.test_mail_server -*-
"""
Helpers for the end-to-end mail tests: the ports of the mail listeners, a
raw SMTP connection that keeps a transcript, reading the accounts'
Maildir++ folders and the queue folder as an administrator would, the
swaks command line, and a load client for the crash tests.

Everything here speaks to a L{tests.support.server.ServerProcess} from the
outside: sockets and files, never the server's objects.
"""

import email
import email.policy
import os
import random
import shutil
import smtplib
import socket
import ssl
import subprocess
import threading
import time
import uuid

from twisted.trial.unittest import SkipTest

__all__ = [
    "LMTP_PORT",
    "SMTPS_PORT",
    "SMTP_PORT",
    "SUBMISSION_PORT",
    "MailLoad",
    "SMTPWire",
    "loadMessage",
    "mailboxFiles",
    "maildirPath",
    "messages",
    "port",
    "queueFiles",
    "runSwaks",
    "unverifiedContext",
    "waitFor",
    "waitForMessages",
]

#: Port-table ports of the mail listeners (before the server's offset).
SMTP_PORT = 25
SUBMISSION_PORT = 587
SMTPS_PORT = 465
LMTP_PORT = 24


def port(server, base=SMTP_PORT):
    """
    @return: the real port of the listener whose port-table port is C{base}.
    """
    return base + server.offset


def unverifiedContext():
    """
    @return: a client TLS context that accepts the server's self-signed
        certificate (as swaks does by default).
    """
    return ssl._create_unverified_context()


# -- waiting ---------------------------------------------------------------------------

def waitFor(predicate, timeout=10.0, interval=0.05, what="the condition"):
    """
    Poll C{predicate} until it returns something true.

    @return: what C{predicate} returned.
    @raise AssertionError: after C{timeout} seconds, naming C{what}.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(interval)


# -- the store ---------------------------------------------------------------------------

def maildirPath(server, account, mailbox=None):
    """
    The Maildir++ folder of an account's mailbox, as documented in the
    store: C{<base>/Domains/<domain>/Accounts/<name>.macnt/Maildir} for
    INBOX, its C{.<Name>} subfolder (hierarchy separator C{.}) for others.

    @param account: C{name@domain}, or a bare name in the Main Domain.
    """
    name, _, domain = account.partition("@")
    path = os.path.join(server.base, "Domains", domain or server.domain, "Accounts",
                        name + ".macnt", "Maildir")
    if mailbox and mailbox.upper() != "INBOX":
        path = os.path.join(path, "." + mailbox.replace("/", "."))
    return path


def mailboxFiles(server, account, mailbox=None):
    """
    The message files of a mailbox: C{new/} and C{cur/}, read as bytes.

    @return: a list of C{(subfolder/filename, bytes)}, sorted by name;
        empty when the mailbox has no folder yet (nothing was delivered).
    """
    root = maildirPath(server, account, mailbox)
    found = []
    for sub in ("new", "cur"):
        folder = os.path.join(root, sub)
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            continue
        for name in names:
            try:
                with open(os.path.join(folder, name), "rb") as f:
                    found.append((sub + "/" + name, f.read()))
            except FileNotFoundError:
                pass    # moved from new/ to cur/ while we looked
    found.sort()
    return found


def messages(server, account, mailbox=None):
    """
    @return: the parsed messages of a mailbox (L{email.message.EmailMessage},
        policy C{default}), in file name order.
    """
    return [email.message_from_bytes(data, policy=email.policy.default)
            for _name, data in mailboxFiles(server, account, mailbox)]


def waitForMessages(server, account, count, mailbox=None, timeout=10.0):
    """
    Wait until a mailbox holds at least C{count} messages.

    @return: its parsed messages.
    """
    waitFor(lambda: len(mailboxFiles(server, account, mailbox)) >= count, timeout,
            what="%d message(s) in %s %s" % (count, account, mailbox or "INBOX"))
    return messages(server, account, mailbox)


def queueFiles(server):
    """
    @return: the sorted names in the queue folder, but C{LastId}.
    """
    try:
        return sorted(n for n in os.listdir(os.path.join(server.base, "Queue")) if n != "LastId")
    except FileNotFoundError:
        return []


# -- raw SMTP ----------------------------------------------------------------------------

class SMTPWire:
    """
    A raw SMTP connection: bytes out, whole replies in, every reply line
    kept in L{transcript} so a test can check that none leaks a traceback.

    @ivar transcript: every line received, in order (C{bytes}).
    """

    def __init__(self, portNumber, timeout=30.0, greeting=True):
        self.sock = socket.create_connection(("127.0.0.1", portNumber), timeout=timeout)
        self.reader = self.sock.makefile("rb")
        self.transcript = []
        self.greeting = self.reply() if greeting else None

    def send(self, data):
        """
        Send C{data} (C{str} is UTF-8 encoded) as it is.
        """
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def reply(self):
        """
        Read one (possibly multi-line) reply.

        @return: C{(code, lines)}: the C{int} code and the decoded texts
            after the code; code C{None} and no lines when the server
            closed the connection.
        @raise AssertionError: for a line that is not a reply line.
        """
        code = None
        lines = []
        while True:
            raw = self.reader.readline()
            if not raw:
                return None if code is None else code, lines
            self.transcript.append(raw)
            if not raw.endswith(b"\r\n") or len(raw) < 5 or not raw[:3].isdigit() \
                    or raw[3:4] not in (b" ", b"-"):
                raise AssertionError("not an SMTP reply line: %r" % (raw,))
            code = int(raw[:3])
            lines.append(raw[4:-2].decode("utf-8", "replace"))
            if raw[3:4] == b" ":
                return code, lines

    def command(self, line):
        """
        Send one command line (CRLF added) and read its reply.

        @return: see L{reply}.
        """
        self.send(line + "\r\n" if isinstance(line, str) else line + b"\r\n")
        return self.reply()

    def ehlo(self, name="client.test"):
        code, lines = self.command("EHLO " + name)
        if code != 250:
            raise AssertionError("EHLO refused: %s %s" % (code, lines))
        return lines

    def closed(self):
        """
        @return: whether the server closed the connection (reads to EOF).
        """
        try:
            return self.reader.read() == b""
        except OSError:
            return True

    def close(self):
        for thing in (self.reader, self.sock):
            try:
                thing.close()
            except OSError:
                pass


# -- swaks -------------------------------------------------------------------------------

def runSwaks(*args, timeout=60):
    """
    Run swaks with C{args}.

    @return: the L{subprocess.CompletedProcess} (text output, stderr merged
        into stdout).
    @raise SkipTest: when swaks is not installed.
    """
    swaks = shutil.which("swaks")
    if swaks is None:
        raise SkipTest("swaks is not installed")
    return subprocess.run([swaks, "--hide-informational"] + [str(a) for a in args],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)


# -- load --------------------------------------------------------------------------------

#: The last line of every load message body; a stored message without it
#: (for its own Message-ID) is partial.
TRAILER = "-- end of message %s --"


def loadMessage(messageId, sender, recipients, size=2048):
    """
    A test message of about C{size} bytes whose body ends with
    C{TRAILER % messageId}.
    """
    line = "The quick brown fox jumps over the lazy dog %s.\r\n" % (messageId,)
    body = line * max(1, size // len(line))
    text = ("From: <%s>\r\nTo: %s\r\nSubject: load %s\r\nMessage-ID: <%s>\r\n\r\n%s"
            % (sender, ", ".join("<%s>" % r for r in recipients), messageId, messageId, body))
    return (text + TRAILER % (messageId,) + "\r\n").encode("ascii")


class MailLoad:
    """
    Several SMTP sessions sending load messages as fast as the server takes
    them, each to one or more random accounts, each with a unique
    Message-ID; they record which messages got their 250.

    Sessions end when the server goes away (or L{stop}); a message whose
    DATA was sent but whose reply never came is recorded as in doubt.

    @ivar acked: Message-ID -> list of recipients, for every message the
        server acknowledged with 250.
    @ivar doubtful: Message-ID -> recipients, messages in flight when their
        session ended.
    @ivar unexpected: replies or errors that are neither success nor a
        server gone away.
    """

    def __init__(self, portNumber, accounts, tag, sessions=4, maxRecipients=1, size=2048):
        self.port = portNumber
        self.accounts = list(accounts)
        self.tag = tag
        self.sessions = sessions
        self.maxRecipients = maxRecipients
        self.size = size
        self.acked = {}
        self.doubtful = {}
        self.unexpected = []
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._threads = []

    def start(self):
        for number in range(self.sessions):
            thread = threading.Thread(target=self._run, args=(number,), daemon=True,
                                      name="mail-load-%s-%d" % (self.tag, number))
            self._threads.append(thread)
            thread.start()
        return self

    def stop(self):
        self._stopping.set()
        self.join()

    def join(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.1, deadline - time.monotonic()))

    @property
    def count(self):
        with self._lock:
            return len(self.acked)

    def _run(self, number):
        rng = random.Random()
        try:
            client = smtplib.SMTP("127.0.0.1", self.port, timeout=30)
            client.ehlo("load%d.test" % (number,))
        except (OSError, smtplib.SMTPException) as e:
            with self._lock:
                self.unexpected.append(("connect", repr(e)))
            return
        sequence = 0
        try:
            while not self._stopping.is_set():
                sequence += 1
                messageId = "%s.%d.%d.%s@load.test" % (self.tag, number, sequence,
                                                      uuid.uuid4().hex[:8])
                count = rng.randint(1, self.maxRecipients)
                recipients = rng.sample(self.accounts, count)
                data = loadMessage(messageId, "load@load.test", recipients, self.size)
                with self._lock:
                    self.doubtful[messageId] = recipients
                try:
                    refused = client.sendmail("load@load.test", recipients, data)
                except (smtplib.SMTPServerDisconnected, ConnectionError, OSError):
                    return
                except smtplib.SMTPException as e:
                    with self._lock:
                        del self.doubtful[messageId]
                        self.unexpected.append((messageId, repr(e)))
                    return
                with self._lock:
                    del self.doubtful[messageId]
                    if refused:
                        self.unexpected.append((messageId, refused))
                    else:
                        self.acked[messageId] = recipients
        finally:
            try:
                client.close()
            except OSError:
                pass
