# -*- test-case-name: tests.cli.test_client -*-
"""
A small synchronous client for the CLI/API protocol (TCP port 106).

The server side is Twisted, but the people who drive it are scripts,
benchmarks, tests and an administrator at a shell: they want one call, one
answer, and no reactor.  This module therefore uses nothing but the standard
library C{socket} module, and blocks.

Every value that travels in a command or a response is written and read with
L{cgpro.core.dataformat}, so the client and the server can never disagree on
quoting: L{CLIClient.command} serializes each argument with C{dumps}, and
data responses are parsed with C{loads}.

It also provides the C{cgpro-cli} console command (L{main}).
"""

import argparse
import getpass
import hashlib
import os
import re
import socket
import sys

from cgpro.core.dataformat import DataFormatError, dumps, loads

__all__ = [
    "CLIClient",
    "CLIError",
    "CLIProtocolError",
    "Keyword",
    "apopDigest",
    "formatCommand",
    "main",
]

DEFAULT_PORT = 106

# The APOP timestamp in the greeting, e.g. <753.1213987978@cgate.mobimail.com.br>.
# The reference Python client insists on the "@", so do we.
_TOKEN = re.compile(r"<[^<>\s]*@[^<>\s]*>")

# The Perl client parses response lines with ^(\d+)\s(.*)$; a bare code is
# tolerated as well so that an empty text does not look like a broken server.
_RESPONSE = re.compile(r"(\d+)(?:\s(.*))?\Z", re.S)

_OPENERS = "({"
_CLOSERS = ")}"


class CLIError(Exception):
    """
    The server refused a command (any answer other than 200/201, or other
    than 300 after C{USER}).

    The text is meant for humans: the protocol promises nothing about it, so
    callers should branch on success or failure, not on the wording.

    @ivar code: the numeric response code (C{0} for failures detected by
        the client itself, see L{CLIProtocolError}).
    @type code: C{int}
    @ivar text: the rest of the response line.
    @type text: C{str}
    """

    def __init__(self, code, text):
        Exception.__init__(self, code, text)
        self.code = code
        self.text = text

    def __str__(self):
        return "%d %s" % (self.code, self.text)


class CLIProtocolError(CLIError):
    """
    The server's answer could not be understood (an unparsable status line
    or data object, or a greeting without an APOP token when secure login
    was asked for).

    It is a L{CLIError} with code C{0} so that a script that only wants to
    know "did it work" needs a single C{except} clause.
    """

    def __init__(self, text):
        CLIError.__init__(self, 0, text)


class Keyword(str):
    """
    A command word that L{CLIClient.command} must send bare, not serialized.

    Sub-keywords such as C{INTO}, C{PASSWORD} or C{TO} are syntax, not
    values: run through C{dumps} they would still come out as atoms, but a
    keyword that is not a valid atom (or a value that merely looks like a
    keyword) would then be quoted or left alone by accident.  Marking them
    with a type makes the intent explicit.
    """

    __slots__ = ()

    def __repr__(self):
        return "Keyword(%s)" % (str.__repr__(self),)


def apopDigest(token, password):
    """
    Compute the APOP login digest.

    @param token: the greeting's timestamp, angle brackets included.
    @type token: C{str}
    @param password: the plain-text password.
    @type password: C{str}
    @return: the lowercase hexadecimal MD5 of C{token + password}.
    @rtype: C{str}
    """
    return hashlib.md5((token + password).encode("utf-8")).hexdigest()


def formatCommand(*words):
    """
    Build one command line (without its line end) from words.

    The first word (the command name) and every L{Keyword} are sent as they
    are; every other word is an object argument and goes through C{dumps},
    so a dictionary becomes C{{k=v;}}, a string with a space is quoted, and
    a string that happens to equal a keyword cannot be mistaken for one.

    @param words: the command name, then keywords and values.
    @return: the command line.
    @rtype: C{str}
    @raise ValueError: if no word is given.
    @raise TypeError: if the command name or a keyword is not a C{str}.
    """
    if not words:
        raise ValueError("a command needs at least its name")
    parts = []
    for index, word in enumerate(words):
        if index == 0 or isinstance(word, Keyword):
            if not isinstance(word, str):
                raise TypeError("command names must be str, not %r" % (word,))
            parts.append(str(word))
        else:
            parts.append(dumps(word))
    return " ".join(parts)


def _objectDepth(line, depth, inQuote, inBlock):
    """
    Advance a bracket counter over one line of a (possibly multi-line) data
    object, ignoring brackets inside quoted strings, datablocks and C{//}
    comments, which would otherwise end the object early or never.

    @return: C{(depth, inQuote, inBlock)} after the line.
    """
    index = 0
    length = len(line)
    while index < length:
        char = line[index]
        if inQuote:
            if char == "\\":
                index += 1
            elif char == '"':
                inQuote = False
        elif inBlock:
            if char == "]":
                inBlock = False
        elif char == '"':
            inQuote = True
        elif char == "[":
            inBlock = True
        elif char in _OPENERS:
            depth += 1
        elif char in _CLOSERS:
            depth -= 1
        elif char == "/" and line.startswith("//", index):
            break
        index += 1
    return depth, inQuote, inBlock


class CLIClient:
    """
    One blocking CLI session.

    Typical use::

        with CLIClient(port=10106) as client:
            client.login("postmaster", "secret")
            client.createAccount("u@d.dom", {"Password": "x"})
            print(client.getAccountSettings("u@d.dom"))

    A L{CLIError} leaves the session usable (the server answered; it just
    said no).  A socket error or timeout closes it, because the position in
    the response stream is then unknown.

    @ivar host: the server address.
    @ivar port: the server port.
    @ivar timeout: seconds to wait for the connection and for each read.
    @ivar greeting: the greeting line (code and text), once connected.
    @ivar token: the C{<...@...>} APOP timestamp from the greeting, or
        C{None} if it had none.
    @ivar user: the name given to a successful L{login}, else C{None}.
    @ivar inline: C{True} once C{INLINE} mode has been switched on.
    """

    def __init__(self, host="127.0.0.1", port=DEFAULT_PORT, timeout=30.0):
        self.host = host
        self.port = port
        self.timeout = timeout
        self.greeting = None
        self.token = None
        self.user = None
        self.inline = False
        self._socket = None
        self._reader = None

    # -- connection -------------------------------------------------------

    @property
    def connected(self):
        """
        C{True} while a connection is open.
        """
        return self._socket is not None

    def connect(self):
        """
        Open the connection and read the greeting.

        @return: the greeting line.
        @rtype: C{str}
        @raise OSError: if the server cannot be reached.
        @raise CLIError: if the greeting is not a C{200} line (the server is
            refusing connections); the connection is then closed.
        """
        if self._socket is not None:
            raise RuntimeError("already connected")
        self._socket = socket.create_connection(
            (self.host, self.port), timeout=self.timeout
        )
        self._reader = self._socket.makefile("rb")
        line = self._readLine()
        code, text = self._parseStatus(line)
        if code != 200:
            self.close()
            raise CLIError(code, text)
        self.greeting = line
        match = _TOKEN.search(line)
        self.token = match.group(0) if match else None
        return line

    def login(self, user, password, secure=True, inline=True):
        """
        Authenticate, then (like the reference Perl and Python clients)
        switch the session to C{INLINE} mode, where data comes back on the
        response line itself.

        Connects first if L{connect} has not been called.

        @param user: C{name} or C{name@domain}.
        @param password: the plain-text password.
        @param secure: send C{APOP <user> <digest>} so that the password
            never crosses the network; C{False} sends C{USER} and C{PASS}.
        @param inline: send C{INLINE} after logging in.
        @raise CLIError: if the server refuses the login.
        @raise CLIProtocolError: if C{secure} is set but the greeting
            carries no C{<...@...>} token (the password is then not sent in
            the clear behind the caller's back).
        """
        if self._socket is None:
            self.connect()
        if secure:
            if self.token is None:
                raise CLIProtocolError(
                    "the greeting has no <...@...> token for APOP;"
                    " use an insecure (USER/PASS) login"
                )
            code, text = self._exchange(
                "APOP %s %s" % (user, apopDigest(self.token, password))
            )
        else:
            code, text = self._exchange("USER " + user)
            if code != 300:
                raise CLIError(code, text)
            code, text = self._exchange("PASS " + password)
        if code not in (200, 201):
            raise CLIError(code, text)
        self.user = user
        if inline:
            self.command("INLINE")
            self.inline = True

    def quit(self):
        """
        End the session politely (C{QUIT}) and close the connection.

        Errors are ignored: the connection is going away either way.
        Does nothing when not connected.
        """
        if self._socket is None:
            return
        try:
            self._exchange("QUIT")
        except (OSError, CLIError):
            pass
        finally:
            self.close()

    def close(self):
        """
        Close the connection without C{QUIT}.  Safe to call repeatedly.
        """
        reader, sock = self._reader, self._socket
        self._reader = self._socket = None
        self.user = None
        self.inline = False
        if reader is not None:
            try:
                reader.close()
            except OSError:
                pass
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    def __enter__(self):
        """
        Connect (unless already connected) for a C{with} block.
        """
        if self._socket is None:
            self.connect()
        return self

    def __exit__(self, excType, excValue, traceback):
        """
        Quit and close at the end of a C{with} block; exceptions propagate.
        """
        self.quit()
        return False

    # -- commands ---------------------------------------------------------

    def command(self, *words):
        """
        Send one command built by L{formatCommand} and return its result.

        @param words: the command name, then L{Keyword}s and values.
        @return: the parsed data object of a C{201} or C{200 data follow}
            response, or C{None} for a plain C{200}.
        @raise CLIError: for any other response code.
        """
        return self.raw(formatCommand(*words))

    def raw(self, line):
        """
        Send a ready-made command line as is and return its result.

        @param line: the command, without its line end.
        @type line: C{str}
        @return: see L{command}.
        @raise ValueError: if C{line} contains a CR or LF, which would make
            the server see two commands and answer twice.
        @raise CLIError: for any response other than C{200}/C{201}.
        """
        code, text = self._exchange(line)
        if code == 201:
            return self._parseObject(text)
        if code == 200:
            if text.strip().lower() == "data follow":
                return self._parseObject(self._readDataObject())
            return None
        raise CLIError(code, text)

    # -- convenience one-liners ------------------------------------------

    def createDomain(self, name, settings=None):
        """
        C{CREATEDOMAIN <name> [<settings>]}.
        """
        if settings is None:
            return self.command("CREATEDOMAIN", name)
        return self.command("CREATEDOMAIN", name, settings)

    def createAccount(self, name, settings=None, type=None):
        """
        C{CREATEACCOUNT <name> [<type>] [<settings>]}.

        @param type: a storage type keyword such as C{MultiMailbox} or
            C{TextMailbox}; the server default (MultiMailbox) if C{None}.
        """
        words = ["CREATEACCOUNT", name]
        if type is not None:
            words.append(Keyword(type))
        if settings is not None:
            words.append(settings)
        return self.command(*words)

    def deleteAccount(self, name):
        """
        C{DELETEACCOUNT <name>}.
        """
        return self.command("DELETEACCOUNT", name)

    def renameAccount(self, oldName, newName):
        """
        C{RENAMEACCOUNT <oldName> INTO <newName>}.
        """
        return self.command("RENAMEACCOUNT", oldName, Keyword("INTO"), newName)

    def listDomains(self):
        """
        C{LISTDOMAINS}.

        @return: the list of domain names.
        """
        return self.command("LISTDOMAINS")

    def listAccounts(self, domain=None):
        """
        C{LISTACCOUNTS [<domain>]}.

        @return: a dictionary keyed by account name (the value is the
            account type tag, e.g. C{macnt}).
        """
        if domain is None:
            return self.command("LISTACCOUNTS")
        return self.command("LISTACCOUNTS", domain)

    def getAccountSettings(self, name):
        """
        C{GETACCOUNTSETTINGS <name>}.

        @return: the explicitly stored settings dictionary.
        """
        return self.command("GETACCOUNTSETTINGS", name)

    def updateAccountSettings(self, name, settings):
        """
        C{UPDATEACCOUNTSETTINGS <name> <settings>}: merge; a value of
        C{"default"} removes the key.
        """
        return self.command("UPDATEACCOUNTSETTINGS", name, settings)

    def getAccountEffectiveSettings(self, name):
        """
        C{GETACCOUNTEFFECTIVESETTINGS <name>}.

        @return: the settings dictionary with inherited defaults merged in.
        """
        return self.command("GETACCOUNTEFFECTIVESETTINGS", name)

    def setAccountPassword(self, name, password, check=False):
        """
        C{SETACCOUNTPASSWORD <name> PASSWORD <password> [CHECK]}.

        @param check: ask the server to apply the restrictions of a user
            changing his own password.
        """
        words = ["SETACCOUNTPASSWORD", name, Keyword("PASSWORD"), password]
        if check:
            words.append(Keyword("CHECK"))
        return self.command(*words)

    def verifyAccountPassword(self, name, password):
        """
        C{VERIFYACCOUNTPASSWORD <name> PASSWORD <password>}.

        The server answers a mismatch with the same kind of error as, say,
        an unknown account, so there is no honest C{False} to return: a
        match returns C{None}, anything else raises.

        @raise CLIError: if the password does not match (or the check could
            not be made).
        """
        return self.command(
            "VERIFYACCOUNTPASSWORD", name, Keyword("PASSWORD"), password
        )

    def setAccountAliases(self, name, aliases):
        """
        C{SETACCOUNTALIASES <name> <aliases>}: replace the alias list.

        @param aliases: a list of alias names.
        """
        return self.command("SETACCOUNTALIASES", name, list(aliases))

    def getRouterTable(self):
        """
        C{GETROUTERTABLE}.

        @return: the whole table as one string.
        """
        return self.command("GETROUTERTABLE")

    def setRouterTable(self, table):
        """
        C{SETROUTERTABLE <table>}: replace the Router table.

        @param table: the whole table as one string (lines separated by
            line breaks, which C{dumps} escapes for the single-line command).
        """
        return self.command("SETROUTERTABLE", table)

    def route(self, address, mode=None):
        """
        C{ROUTE <address> [MAIL | ACCESS | SIGNAL]}.

        @param mode: C{"MAIL"}, C{"ACCESS"} or C{"SIGNAL"}, or C{None} for
            the server default.
        @return: C{[module, queue, address]}.
        """
        if mode is None:
            return self.command("ROUTE", address)
        return self.command("ROUTE", address, Keyword(mode))

    # -- wire -------------------------------------------------------------

    def _send(self, line):
        """
        Write one command line, CRLF-terminated.
        """
        if "\r" in line or "\n" in line:
            raise ValueError("a command line cannot contain CR or LF")
        if self._socket is None:
            raise ConnectionError("not connected")
        data = (line + "\r\n").encode("utf-8", "surrogateescape")
        try:
            self._socket.sendall(data)
        except OSError:
            self.close()
            raise

    def _readLine(self):
        """
        Read one response line, accepting LF or CRLF.

        @raise ConnectionError: if the server closed the connection.
        """
        if self._reader is None:
            raise ConnectionError("not connected")
        try:
            data = self._reader.readline()
        except OSError:
            self.close()
            raise
        if not data:
            self.close()
            raise ConnectionError("connection closed by the server")
        return data.rstrip(b"\r\n").decode("utf-8", "surrogateescape")

    def _parseStatus(self, line):
        """
        Split a status line into its code and text.

        @raise CLIProtocolError: if the line does not start with a code.
        """
        match = _RESPONSE.match(line)
        if match is None:
            self.close()
            raise CLIProtocolError("unparsable response line: %r" % (line,))
        return int(match.group(1)), match.group(2) or ""

    def _exchange(self, line):
        """
        Send one line and read the status line that answers it.

        @return: C{(code, text)}.
        """
        self._send(line)
        return self._parseStatus(self._readLine())

    def _readDataObject(self):
        """
        Read the object that follows C{200 data follow}.

        Our server always writes it on one line, but the protocol allows
        several: like the Perl client, keep reading while an array or
        dictionary opened on the first line is not closed yet.  A scalar
        is always one line.
        """
        line = self._readLine()
        if line.lstrip()[:1] not in tuple(_OPENERS):
            return line
        lines = [line]
        depth, inQuote, inBlock = _objectDepth(line, 0, False, False)
        while depth > 0:
            line = self._readLine()
            lines.append(line)
            depth, inQuote, inBlock = _objectDepth(line, depth, inQuote, inBlock)
        return "\n".join(lines)

    def _parseObject(self, text):
        """
        Parse a data object from a response.

        @raise CLIProtocolError: if it is not valid data format text.
        """
        try:
            return loads(text, multiline=True)
        except DataFormatError as e:
            raise CLIProtocolError(
                "unparsable data in response: %s (%r)" % (e, text[:200])
            ) from e


# -- the cgpro-cli console command -----------------------------------------


def _makeParser():
    """
    Build the C{cgpro-cli} argument parser.  Environment defaults are read
    here, at call time, so that they follow the caller's environment.
    """
    parser = argparse.ArgumentParser(
        prog="cgpro-cli",
        description=(
            "Run CommuniGate Pro-compatible CLI commands against a cgpro "
            "server.  With no COMMAND, command lines are read from standard "
            "input (blank lines and lines starting with # are skipped)."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="server address")
    parser.add_argument(
        "--port",
        type=int,
        default=os.environ.get("CGPRO_CLI_PORT", DEFAULT_PORT),
        help="CLI port (default: $CGPRO_CLI_PORT or 106)",
    )
    parser.add_argument("--user", default="postmaster", help="login name")
    parser.add_argument(
        "--password",
        default=os.environ.get("CGPRO_PASSWORD"),
        help="password (default: $CGPRO_PASSWORD, else asked for)",
    )
    parser.add_argument(
        "--insecure-login",
        action="store_true",
        help="log in with USER/PASS (password in the clear) instead of APOP",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds to wait for the server (default: 30)",
    )
    parser.add_argument(
        "command",
        nargs="*",
        help="one command line, sent as is (words are joined with spaces)",
    )
    return parser


def _stdinCommands(stream):
    """
    Yield the command lines of a script, lazily so that an interactive
    user sees each answer before typing the next command.
    """
    for line in stream:
        line = line.strip()
        if line and not line.startswith("#"):
            yield line


def _reportError(error, stream):
    """
    Print a failure in the C{ERROR <code> <text>} form.
    """
    print("ERROR %d %s" % (error.code, error.text), file=stream)


def main(argv=None):
    """
    The C{cgpro-cli} console command.

    @param argv: the arguments (without the program name); C{sys.argv[1:]}
        if C{None}.
    @return: the exit status: C{0} if every command succeeded, C{1} if any
        failed (later commands still run), C{2} if the connection or the
        login failed.
    @rtype: C{int}
    """
    options = _makeParser().parse_args(argv)
    stdout, stderr = sys.stdout, sys.stderr
    password = options.password
    if password is None:
        password = getpass.getpass("Password for %s: " % (options.user,))

    client = CLIClient(options.host, options.port, options.timeout)
    try:
        client.connect()
        client.login(options.user, password, secure=not options.insecure_login)
    except CLIError as e:
        client.close()
        _reportError(e, stderr)
        return 2
    except OSError as e:
        client.close()
        print(
            "ERROR cannot connect to %s:%s: %s" % (options.host, options.port, e),
            file=stderr,
        )
        return 2

    if options.command:
        lines = [" ".join(options.command)]
    else:
        lines = _stdinCommands(sys.stdin)

    failed = False
    try:
        for line in lines:
            words = line.split(None, 1)
            if not words:
                continue
            if words[0].upper() == "QUIT":
                break
            try:
                result = client.raw(line)
            except CLIError as e:
                _reportError(e, stderr)
                failed = True
                continue
            except ValueError as e:
                print("ERROR 0 %s" % (e,), file=stderr)
                failed = True
                continue
            if result is not None:
                print(dumps(result), file=stdout)
                stdout.flush()
    except OSError as e:
        client.close()
        print("ERROR connection lost: %s" % (e,), file=stderr)
        return 2
    client.quit()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
