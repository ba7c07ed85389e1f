"""
Shared steps of the PBX integration tests: a server with accounts, phones
cleaned up after the test, waiting, and reading the PBX figures off
C{/metrics}.
"""

import re
import time
import urllib.request

from tests.support.rtp import Phone
from tests.support.server import startServer
from tests.support.sip import sipPort

PASSWORD = "pw-Secret1"
METRICS_PORT = 9106
#: what a call leaves behind until it is over
LIVE_FIGURES = ("cgpro_pbx_tasks", "cgpro_media_channels", "cgpro_pbx_conferences")


def pbxServer(testCase, accounts=("alice", "bob", "carol")):
    """
    @return: C{(server, cli, port)}: a server whose Main Domain has
        C{accounts} (password L{PASSWORD}) and its SIP port.
    """
    server = startServer(testCase)
    cli = server.client()
    for name in accounts:
        cli.createAccount("%s@%s" % (name, server.domain), {"Password": PASSWORD})
    return server, cli, sipPort(server)


def phone(testCase, port, user="alice"):
    """A L{Phone} closed when the test ends."""
    p = Phone(port, user=user)
    testCase.addCleanup(p.close)
    return p


def waitFor(predicate, timeout=10.0, step=0.1):
    """@return: the first true value of C{predicate()}, or its last value."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


def metric(server, name):
    """@return: the value of an unlabelled sample on C{/metrics}, or C{None}."""
    url = "http://127.0.0.1:%d/metrics" % (METRICS_PORT + server.offset,)
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    m = re.search(r"^%s(?:\{\})? (\S+)$" % (re.escape(name),), text, re.M)
    return float(m.group(1)) if m else None


def assertIdle(testCase, server, timeout=8.0):
    """No PBX task, media channel or conference is left."""
    ok = waitFor(lambda: all(metric(server, n) == 0 for n in LIVE_FIGURES), timeout=timeout)
    testCase.assertTrue(ok, {n: metric(server, n) for n in LIVE_FIGURES})
