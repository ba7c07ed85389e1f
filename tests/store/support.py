# -*- test-case-name: tests.store.test_maildir -*-
"""
Fixtures for the store tests: a temporary base folder, a fake directory
storage mapping accounts into it, and stores over a synchronous or threaded
L{DurableWriter}.
"""

import os
import shutil
import tempfile

from twisted.internet.task import Clock

from cgpro.core.files import DurableWriter
from cgpro.store.maildir import MailStore

#: The fake clock's start: 2026-11-17.
START = 1795000000

ACCOUNT = "joe@example.com"
OTHER = "ann@example.com"


class FakeStorage:
    """
    Just C{accountPath}, as L{cgpro.core.interfaces.IDirectoryStorage} has it.
    """

    def __init__(self, base):
        self.base = base

    def accountPath(self, domain, name):
        return os.path.join(self.base, "Domains", domain, name + ".macnt")

    def addAccount(self, address):
        name, _, domain = address.partition("@")
        path = self.accountPath(domain, name)
        os.makedirs(path, exist_ok=True)
        return path


def tempFolder(case):
    """
    @return: a fresh folder removed after the test.
    """
    path = tempfile.mkdtemp(prefix="cgpro-store-")
    case.addCleanup(shutil.rmtree, path, True)
    return path


class StoreFixture:
    """
    A base folder with two accounts and a way to build stores over it
    (a new store over the same folder stands for a restarted server).
    """

    def __init__(self, case, synchronous=True):
        self.case = case
        self.base = tempFolder(case)
        self.storage = FakeStorage(self.base)
        self.storage.addAccount(ACCOUNT)
        self.storage.addAccount(OTHER)
        self.clock = Clock()
        self.clock.advance(START)
        self.synchronous = synchronous
        self.writer = self.makeWriter()

    def makeWriter(self):
        writer = DurableWriter(self.base, synchronous=self.synchronous)
        if not self.synchronous:
            writer.start()
            self.case.addCleanup(writer.stop)
        return writer

    def store(self, **kwargs):
        """
        @return: a new L{MailStore} over the base folder.
        """
        return MailStore(self.storage, self.writer, clock=self.clock, **kwargs)

    def root(self, account=ACCOUNT):
        name, _, domain = account.partition("@")
        return os.path.join(self.storage.accountPath(domain, name), "Maildir")

    def folder(self, sub="", account=ACCOUNT):
        return os.path.join(self.root(account), sub)

    def files(self, sub="", account=ACCOUNT):
        """
        @return: sorted C{new/...} and C{cur/...} names in a mailbox folder.
        """
        out = []
        for d in ("new", "cur"):
            path = os.path.join(self.root(account), sub, d)
            if os.path.isdir(path):
                out.extend(d + "/" + n for n in os.listdir(path))
        return sorted(out)

    def journal(self, sub="", account=ACCOUNT):
        with open(os.path.join(self.root(account), sub, "cgpro.journal")) as f:
            return f.read()


def message(subject="hello", body="body", sender="ann@example.com"):
    """
    @return: a small RFC 5322 message with CRLF line ends.
    """
    return ("From: %s\r\nTo: joe@example.com\r\nSubject: %s\r\n"
            "Message-ID: <%s@example.com>\r\n\r\n%s\r\n" % (sender, subject, subject, body)
            ).encode("utf-8")
