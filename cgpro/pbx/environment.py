# -*- test-case-name: tests.pbx.test_environment -*-
"""
The file environments of Real-Time applications (pbx-apps.md section 1).

A running application asks for a file by name (a program, a prompt, a
billing plan) and gets the most specific copy::

    <base>/Domains/<domain>/PBXApps/   a Domain's custom environment
    <base>/PBXApps/                    the server-wide custom environment
    <etc>/pbx/                         the stock environment shipped with cgpro

so an administrator overrides a stock prompt by uploading a file of the same
name, and deleting it falls back to the stock one.  Each environment may
hold language folders (C{french/}, C{russian/}); a task that selected a
language looks in C{<env>/<language>/} before C{<env>/}, environment by
environment (a Domain's English prompt still beats the stock French one:
the Domain administrator chose it).  Language folders hold files only.

File names are checked here, once, for every caller: one optional language
prefix (C{french/prompt.wav}, cli.md 6.7), no C{..}, no hidden files, at
most 128 characters per part.  Programs (C{.py} files) are code that runs
inside the server, so only the server's Master administrator may install
them, and only in the server-wide environment: a Domain administrator can
change prompts and plans, never what the server executes.

Changes go through the server's L{cgpro.core.files.DurableWriter} when one
is given (temporary file, flush, rename), else through
L{cgpro.core.files.writeFileAtomically}; a store is acknowledged only once
durable either way.
"""

import datetime
import os

from twisted.internet.defer import succeed

from cgpro.core import dataformat
from cgpro.core.errors import AccessDenied, BadName, CLIError, UnknownObject
from cgpro.core.files import fsyncFolder, writeFileAtomically

DOMAIN = "domain"
SERVER = "server"
STOCK = "stock"
SCOPES = (DOMAIN, SERVER, STOCK)

MAX_NAME = 128
CODE_SUFFIX = ".py"
OBJDATA_SUFFIX = ".objdata"


class FileNotFound(UnknownObject):
    """An environment file that does not exist."""


class MalformedData(CLIError):
    """A C{.objdata} file whose content is not one data-format dictionary."""


def defaultStockFolder():
    """
    Find the stock environment: C{etc/pbx} of the installed package, or of
    the source checkout, the same search as
    L{cgpro.core.ports.defaultEtcDir}.
    """
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    candidates = (os.path.join(package, "etc", "pbx"),
                  os.path.join(os.path.dirname(package), "etc", "pbx"))
    for candidate in candidates:
        if os.path.isdir(candidate):
            return candidate
    return candidates[-1]


def checkPart(part, what="file name"):
    """
    Refuse a name component that could leave its folder or hide a file.

    @raise BadName: with the reason.
    """
    if not isinstance(part, str) or not part:
        raise BadName("%s must not be empty" % (what,))
    if len(part) > MAX_NAME:
        raise BadName("%s is longer than %d characters" % (what, MAX_NAME))
    if part.startswith("."):
        raise BadName("%s must not start with '.'" % (what,))
    if "/" in part or "\\" in part or "\x00" in part or ".." in part:
        raise BadName("%s must not contain '/', '\\' or '..'" % (what,))
    if any(ord(c) < 32 for c in part):
        raise BadName("%s must not contain control characters" % (what,))
    return part


def splitName(name):
    """
    Check a file name with its optional language prefix.

    @return: C{(language or None, fileName)}.
    @raise BadName: for anything else (deeper paths included).
    """
    if not isinstance(name, str):
        raise BadName("file name must be a string")
    parts = name.split("/")
    if len(parts) > 2:
        raise BadName("a file name may have one language folder only: %s" % (name,))
    if len(parts) == 2:
        return checkPart(parts[0], "language name"), checkPart(parts[1])
    return None, checkPart(parts[0])


class Environments:
    """
    The three environments of one server.

    @ivar base: the server's base folder.
    @ivar stockFolder: the stock environment (read-only).
    @ivar writer: the L{DurableWriter} used for changes, or C{None} to
        write synchronously.
    """

    def __init__(self, base, stockFolder=None, writer=None):
        self.base = os.path.abspath(base)
        self.stockFolder = stockFolder or defaultStockFolder()
        self.writer = writer

    @property
    def stock(self):
        """
        The stock folder (another name of L{stockFolder}, used by the PBX
        host to tell shipped programs from installed ones).
        """
        return self.stockFolder

    # -- folders ----------------------------------------------------------

    def folder(self, scope, domain=None):
        """
        @return: the root folder of one environment (it may not exist).
        """
        if scope == DOMAIN:
            if not domain:
                raise CLIError("a Domain environment needs a domain name")
            return os.path.join(self.base, "Domains", checkPart(domain, "domain name"),
                                "PBXApps")
        if scope == SERVER:
            return os.path.join(self.base, "PBXApps")
        if scope == STOCK:
            return self.stockFolder
        raise ValueError("unknown environment scope %r" % (scope,))

    def exists(self, scope, domain=None):
        """
        @return: whether the environment has been created.
        """
        return os.path.isdir(self.folder(scope, domain))

    def _existing(self, scope, domain, language=None):
        """
        @return: the (language) folder of a created environment.
        @raise UnknownObject: naming what is missing.
        """
        root = self.folder(scope, domain)
        if not os.path.isdir(root):
            raise UnknownObject(_missingText(scope, domain))
        if language is None:
            return root
        folder = os.path.join(root, checkPart(language, "language name"))
        if not os.path.isdir(folder):
            raise UnknownObject("unknown language: %s" % (language,))
        return folder

    # -- lookup -----------------------------------------------------------

    def search(self, domain=None):
        """
        @return: the environment roots in lookup order (Domain, server,
            stock), existing or not.
        """
        roots = []
        if domain:
            roots.append(self.folder(DOMAIN, domain))
        roots.append(self.folder(SERVER))
        roots.append(self.stockFolder)
        return roots

    def find(self, domain, name, language=None):
        """
        The file a task of C{domain} gets for C{name}.

        @param domain: the task's domain, or C{None} for server and stock only.
        @param language: the task's language, or C{None}.
        @return: the path, or C{None} if no environment has it.
        """
        prefix, fileName = splitName(name)
        if prefix is not None:
            language = prefix
        elif language is not None:
            checkPart(language, "language name")
        for root in self.search(domain):
            candidates = [os.path.join(root, fileName)]
            if language:
                candidates.insert(0, os.path.join(root, language, fileName))
            for path in candidates:
                if os.path.isfile(path):
                    return path
        return None

    def listFiles(self, scope, domain=None, language=None):
        """
        The files of one environment (or of one of its language folders).

        @return: C{{name: {"Size": bytes, "Modified": datetime (UTC)}}};
            language folders are not listed as files.
        @raise UnknownObject: if the environment or language folder is
            missing.
        """
        folder = self._existing(scope, domain, language)
        result = {}
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith(".") or entry.name.endswith(".tmp"):
                    continue
                if not entry.is_file(follow_symlinks=False):
                    continue
                info = entry.stat(follow_symlinks=False)
                result[entry.name] = {
                    "Size": info.st_size,
                    "Modified": datetime.datetime.fromtimestamp(
                        int(info.st_mtime), datetime.timezone.utc).replace(tzinfo=None),
                }
        return result

    def languages(self, scope, domain=None):
        """
        @return: the sorted language folder names of an environment.
        """
        folder = self._existing(scope, domain)
        with os.scandir(folder) as entries:
            return sorted(e.name for e in entries
                          if e.is_dir(follow_symlinks=False) and not e.name.startswith("."))

    def _path(self, scope, name, domain):
        language, fileName = splitName(name)
        return os.path.join(self._existing(scope, domain, language), fileName)

    def read(self, scope, name, domain=None):
        """
        Read a file of exactly this environment (no fall-back: the
        administrator asked for this environment's copy).

        @return: C{bytes}.
        @raise FileNotFound: if it is not there.
        """
        path = self._path(scope, name, domain)
        data = None if os.path.isdir(path) else self._readPath(path)
        if data is None:
            raise FileNotFound("file not found: %s" % (name,))
        return data

    def _readPath(self, path):
        """
        Read through the writer, which answers for writes still in flight.
        """
        if self.writer is not None:
            return self.writer.read(path)
        return _readFile(path)

    # -- changes ----------------------------------------------------------

    def create(self, scope, domain=None, language=None):
        """
        Create a custom environment, or a language folder in one (the
        environment itself is created with it).

        @return: L{Deferred} firing once the folder is durable.
        """
        if scope == STOCK:
            raise AccessDenied("the stock environment cannot be changed")
        folder = self.folder(scope, domain)
        if language is not None:
            folder = os.path.join(folder, checkPart(language, "language name"))
        if self.writer is not None:
            return self.writer.mkdir(folder)
        os.makedirs(folder, exist_ok=True)
        fsyncFolder(os.path.dirname(folder))
        return succeed(None)

    def checkStore(self, scope, name, mayInstallCode=False):
        """
        Refuse a store the caller may not make, before anything changes.

        @param mayInstallCode: whether the caller is the server's Master
            administrator.
        @raise AccessDenied: for code outside the server environment or
            from anybody else.
        """
        if scope == STOCK:
            raise AccessDenied("the stock environment cannot be changed")
        _, fileName = splitName(name)
        if fileName.lower().endswith(CODE_SUFFIX):
            if scope != SERVER:
                raise AccessDenied("programs can be installed only in the server environment")
            if not mayInstallCode:
                raise AccessDenied("only the server administrator may install programs")

    def store(self, scope, name, data, domain=None, mayInstallCode=False):
        """
        Store (create or replace) a file atomically.

        @param data: C{bytes}.
        @return: L{Deferred} firing once the file is durable.
        """
        self.checkStore(scope, name, mayInstallCode)
        if not isinstance(data, bytes):
            raise CLIError("file data must be a datablock")
        path = self._path(scope, name, domain)
        if os.path.isdir(path):
            raise CLIError("%s is a language folder" % (name,))
        if self.writer is not None:
            return self.writer.write(path, data)
        writeFileAtomically(path, data)
        return succeed(None)

    def delete(self, scope, name, domain=None, mayInstallCode=False):
        """
        Delete a custom file, so that lookups fall back to the next
        environment.  Removing a program is changing code: the same rule
        as L{store} applies.

        @return: L{Deferred} firing once the removal is durable.
        @raise FileNotFound: if the file is not there.
        """
        self.checkStore(scope, name, mayInstallCode)
        path = self._path(scope, name, domain)
        if not os.path.isfile(path):
            raise FileNotFound("file not found: %s" % (name,))
        if self.writer is not None:
            return self.writer.unlink(path)
        os.unlink(path)
        fsyncFolder(os.path.dirname(path))
        return succeed(None)

    # -- data files -------------------------------------------------------

    def loadObjData(self, domain, name, language=None):
        """
        Read a C{.objdata} file (a billing plan, C{pbx-apps.md} 5.3) found
        by the normal lookup.

        @param name: with or without the C{.objdata} suffix.
        @return: the parsed object.
        @raise FileNotFound: if no environment has it (callers reject the
            call: a named plan that is missing must not mean "free").
        @raise MalformedData: if it does not parse.
        """
        if not name.endswith(OBJDATA_SUFFIX):
            name += OBJDATA_SUFFIX
        path = self.find(domain, name, language)
        if path is None:
            raise FileNotFound("file not found: %s" % (name,))
        data = self._readPath(path)
        if data is None:
            raise FileNotFound("file not found: %s" % (name,))
        try:
            return dataformat.loads(data)
        except dataformat.DataFormatError as e:
            raise MalformedData("%s is malformed: %s" % (name, e))


def _readFile(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def _missingText(scope, domain):
    if scope == DOMAIN:
        return "Domain %s has no custom PBX environment" % (domain,)
    if scope == SERVER:
        return "the server has no custom PBX environment"
    return "the stock PBX environment is missing"
