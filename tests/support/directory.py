"""
A real L{Directory} over a temporary base folder, made deterministic for
unit tests: the durable writer runs synchronously and password hashing runs
in the calling thread with few PBKDF2 rounds.
"""

import os
import tempfile

from twisted.internet.defer import maybeDeferred
from twisted.internet.task import Clock

from cgpro.core.files import DurableWriter
from cgpro.core.passwords import PasswordVault
from cgpro.directory.local import Directory, initialize
from cgpro.storage.files import FileDirectoryStorage


def makeDirectory(testCase, mainDomain="main.dom", password="secret", base=None):
    """
    Build an initialized directory in a fresh folder removed after the test.

    @return: the L{Directory}; its base folder is C{directory.storage.base}.
    """
    if base is None:
        base = tempfile.mkdtemp(prefix="cgpro-test-")
        testCase.addCleanup(_rmtree, base)
    clock = Clock()
    clock.advance(1795000000)
    writer = DurableWriter(base, synchronous=True)
    storage = FileDirectoryStorage(base, writer=writer)
    vault = PasswordVault(os.path.join(storage.settingsDir, "Server.key"), rounds=1000)
    directory = Directory(storage, vault=vault, clock=clock)
    directory.runHash = maybeDeferred
    if mainDomain:
        testCase.successResultOf(initialize(directory, mainDomain, password))
    return directory


def reopen(testCase, directory):
    """
    Load a second directory from the same base folder, as a restart would.
    """
    return makeDirectory(testCase, mainDomain=None, base=directory.storage.base)


def _rmtree(path):
    import shutil

    shutil.rmtree(path, ignore_errors=True)
