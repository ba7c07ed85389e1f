# -*- test-case-name: tests.integration.test_snmp_server -*-
"""
End-to-end tests of the SNMP agent (the monitoring issue, "Proof"): the
real server (C{twistd} in a child process, L{tests.support.server}) is
walked by net-snmp's own tools (Debian package C{snmp}) with
C{etc/CGPRO-MIB.txt} loaded, over SNMPv2c and SNMPv3 (authPriv), after
real SIP and CLI traffic; C{snmptranslate} and C{smilint} (package
C{smitools}) must accept the MIB.

net-snmp and libsmi need the IETF base modules the MIB imports
(SNMPv2-SMI, SNMPv2-TC, SNMPv2-CONF; SNMPv2-MIB for the system group),
which Debian ships only in non-free: they are looked for in
C{$CGPRO_TEST_MIBDIR}, C{~/.snmp/mibs} and the usual folders, and the
tests that need names are skipped without them.
"""

import os
import shutil
import socket
import subprocess
import time

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from cgpro.core.stats import CATALOG
from cgpro.monitor import mib
from tests.support.server import CHECKOUT, startServer

#: The snmp row of C{etc/ports.conf} (before the offset).
SNMP_PORT = 161
#: The sip-udp row.
SIP_PORT = 5060
ETC = os.path.join(CHECKOUT, "etc")
MIB_FOLDERS = ("~/.snmp/mibs", "/usr/share/snmp/mibs/ietf", "/usr/share/snmp/mibs",
               "/usr/share/mibs/ietf", "/var/lib/mibs/ietf")
USER = {"AuthPassword": "auth-Secret1", "PrivPassword": "priv-Secret1"}


def baseMIBFolder():
    """
    @return: a folder holding SNMPv2-SMI (any extension), or C{None}.
    """
    folders = [os.environ.get("CGPRO_TEST_MIBDIR", "")] + [os.path.expanduser(f)
                                                          for f in MIB_FOLDERS]
    for folder in folders:
        if folder and os.path.isdir(folder) and any(
                name.split(".")[0] == "SNMPv2-SMI" for name in os.listdir(folder)):
            return folder
    return None


def requireTool(name):
    """
    @return: the path of the program C{name}.
    @raise SkipTest: when it is not installed.
    """
    path = shutil.which(name)
    if path is None:
        raise SkipTest("%s is not installed (Debian package snmp / smitools)" % (name,))
    return path


def mibOptions():
    """
    @return: the net-snmp options loading CGPRO-MIB (and SNMPv2-MIB) from
        the checkout's etc/ and the base modules' folder.
    @raise SkipTest: without the base modules.
    """
    folder = baseMIBFolder()
    if folder is None:
        raise SkipTest("the IETF base MIBs (SNMPv2-SMI...) are not installed")
    return ["-M", "%s:%s" % (folder, ETC), "-m", "CGPRO-MIB:SNMPv2-MIB"]


def run(*argv, check=True, timeout=60):
    """
    @return: the standard output of a net-snmp tool.
    """
    requireTool(argv[0])
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s\n%s"
                             % (" ".join(argv), done.returncode, done.stdout, done.stderr))
    return done.stdout


def lines(text):
    """
    @return: C{{name: value}} of C{snmpwalk} output lines C{name = value}.
    """
    out = {}
    for line in text.splitlines():
        if " = " in line:
            name, value = line.split(" = ", 1)
            out[name] = value
    return out


class MIBFileTests(SynchronousTestCase):
    """
    The shipped MIB against net-snmp's and libsmi's parsers.
    """

    def test_snmptranslate(self):
        """snmptranslate resolves the MIB's objects to the agent's OIDs."""
        options = mibOptions()
        out = run("snmptranslate", *options, "-On", "CGPRO-MIB::cgproSipRequestsTotalValue")
        self.assertEqual(out.strip(), "." + ".".join(map(str, mib.OBJECTS + (30, 1, 2))))
        out = run("snmptranslate", *options, "-Tp", "-IR", "cgproMIB")
        for name, kind, doc, labels, column in CATALOG:
            self.assertIn(mib.descriptor(name), out)
        self.assertIn("Counter64 cgproMailBouncedTotal(12)", out)

    def test_smilint(self):
        """smilint -l 6 finds nothing to say about CGPRO-MIB."""
        requireTool("smilint")
        folder = baseMIBFolder()
        if folder is None:
            raise SkipTest("the IETF base MIBs (SNMPv2-SMI...) are not installed")
        done = subprocess.run(["smilint", "-l", "6", os.path.join(ETC, "CGPRO-MIB.txt")],
                              capture_output=True, text=True, timeout=60,
                              env=dict(os.environ, SMIPATH=folder))
        self.assertEqual((done.returncode, done.stdout + done.stderr), (0, ""))


class AgentTests(SynchronousTestCase):
    """
    The agent of a running server, asked by net-snmp.
    """

    def setUp(self):
        requireTool("snmpwalk")
        self.server = startServer(self)
        self.target = "127.0.0.1:%d" % (SNMP_PORT + self.server.offset,)

    def snmp(self, tool, *oids, options=(), community="public", check=True):
        """
        @return: the output of net-snmp's C{tool} asking the server's
            agent for C{oids} over SNMPv2c.
        """
        return run(tool, "-v2c", "-c", community, "-t", "2", "-r", "1", *options, self.target,
                   *oids, check=check)

    def test_walkNumeric(self):
        """
        snmpwalk and snmpbulkwalk walk the whole tree (no MIB needed) to the
        same end, in increasing order, system group included.
        """
        walk = self.snmp("snmpwalk", ".1", options=["-On"])
        bulk = self.snmp("snmpbulkwalk", ".1", options=["-On", "-Cr25"])
        names = list(lines(walk))
        self.assertEqual(names[0], ".1.3.6.1.2.1.1.1.0")
        root = "." + ".".join(map(str, mib.OBJECTS))
        self.assertIn(root + ".12.0", names)
        self.assertEqual(list(lines(bulk)), names)

    def test_walkWithMIB(self):
        """
        With CGPRO-MIB loaded every figure has its name; a SIP request
        shows up in its table row.
        """
        options = mibOptions()
        self.sipOptions()
        walked = lines(self.snmp("snmpwalk", "CGPRO-MIB::cgproMIB", options=options))
        for name, kind, doc, labels, column in CATALOG:
            if not labels:
                syntax = "Counter64" if kind == "counter" else "Gauge32"
                self.assertIn("CGPRO-MIB::%s.0" % (mib.descriptor(name),), walked)
                self.assertTrue(walked["CGPRO-MIB::%s.0" % (mib.descriptor(name),)]
                                .startswith(syntax + ": "))
        self.assertEqual(walked['CGPRO-MIB::cgproSipRequestsTotalValue."OPTIONS"'],
                         "Counter64: 1")
        system = lines(self.snmp("snmpwalk", "system", options=options))
        self.assertEqual(system["SNMPv2-MIB::sysName.0"], "STRING: main.dom")
        self.assertEqual(system["SNMPv2-MIB::sysObjectID.0"], "OID: CGPRO-MIB::cgproMIB")
        self.assertTrue(system["SNMPv2-MIB::sysDescr.0"].startswith("STRING: cgpro "))
        bulk = lines(self.snmp("snmpbulkwalk", "CGPRO-MIB::cgproMIB", options=options))
        self.assertEqual(set(bulk) - {"CGPRO-MIB::cgproSipRequestsTotalValue.\"OPTIONS\""},
                         set(walked) - {"CGPRO-MIB::cgproSipRequestsTotalValue.\"OPTIONS\""})

    def sipOptions(self):
        """
        Send one SIP OPTIONS over UDP and wait for its answer.
        """
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(10)
        here = sock.getsockname()[1]
        request = (
            "OPTIONS sip:main.dom SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-snmp-1\r\n"
            "Max-Forwards: 70\r\n"
            "From: <sip:probe@127.0.0.1>;tag=snmp1\r\n"
            "To: <sip:main.dom>\r\n"
            "Call-ID: snmp-probe-1@127.0.0.1\r\n"
            "CSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n" % (here,)
        ).encode()
        sock.sendto(request, ("127.0.0.1", SIP_PORT + self.server.offset))
        reply, _ = sock.recvfrom(65535)
        self.assertTrue(reply.startswith(b"SIP/2.0 "))

    def test_figureAfterCLITraffic(self):
        """
        snmpget of the CLI's connection counter moves with CLI sessions.
        """
        options = mibOptions()
        name = 'CGPRO-MIB::cgproConnectionsTotalValue."cli"'

        def connections():
            out = lines(self.snmp("snmpget", name, options=options))
            value = out[name]
            return int(value.split(": ")[1]) if value.startswith("Counter64") else 0

        before = connections()
        for _ in range(3):
            client = self.server.client()
            client.command("LISTDOMAINS")
            client.close()
        deadline = time.monotonic() + 10
        while connections() < before + 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(connections(), before + 3)

    def test_badInput(self):
        """
        Malformed datagrams and a wrong community get no answer and are
        counted; an oversized GETBULK is answered within the size limit;
        SET is refused; the agent keeps answering.
        """
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        sock.settimeout(0.5)
        address = ("127.0.0.1", SNMP_PORT + self.server.offset)
        for junk in (b"", b"\x30\x80\x00\x00", b"\x30\x03\x02\x01\x01garbage", os.urandom(600)):
            sock.sendto(junk, address)
        with self.assertRaises(socket.timeout):
            sock.recvfrom(65535)
        out = run("snmpget", "-v2c", "-c", "wrong", "-t", "0.5", "-r", "0", self.target,
                  ".1.3.6.1.2.1.1.5.0", check=False)
        self.assertEqual(out, "")
        bulk = self.snmp("snmpbulkget", ".1", options=["-On", "-Cn0", "-Cr100000"])
        self.assertGreater(len(lines(bulk)), 10)
        self.assertLessEqual(len(lines(bulk)), 100)
        done = subprocess.run(["snmpset", "-v2c", "-c", "public", self.target,
                               ".1.3.6.1.2.1.1.5.0", "s", "x"], capture_output=True, text=True,
                              timeout=30)
        self.assertIn("notWritable", done.stdout + done.stderr)
        counters = lines(self.snmp("snmpwalk", ".1.3.6.1.2.1.11", options=["-On"]))
        self.assertEqual(counters[".1.3.6.1.2.1.11.4.0"], "Counter32: 1")
        self.assertEqual(counters[".1.3.6.1.2.1.11.6.0"], "Counter32: 4")
        self.assertIn("main.dom", self.snmp("snmpget", ".1.3.6.1.2.1.1.5.0"))


class V3Tests(SynchronousTestCase):
    """
    SNMPv3 (USM, authPriv with SHA and AES) against a running server,
    users set over the CLI.
    """

    def test_walkAuthPriv(self):
        """
        After UPDATEMODULE SNMP {Users = ...}, snmpwalk -v3 -l authPriv
        walks the MIB; a wrong password gets nothing.
        """
        requireTool("snmpwalk")
        server = startServer(self)
        client = server.client()
        client.command("UPDATEMODULE", "SNMP", {"Users": {"monitor": USER}})
        target = "127.0.0.1:%d" % (SNMP_PORT + server.offset,)
        common = ["-v3", "-l", "authPriv", "-u", "monitor", "-a", "SHA", "-x", "AES",
                  "-t", "2", "-r", "1"]
        out = run("snmpwalk", *common, "-A", USER["AuthPassword"], "-X", USER["PrivPassword"],
                  "-On", target, "." + ".".join(map(str, mib.ROOT)))
        walked = lines(out)
        self.assertIn("." + ".".join(map(str, mib.OBJECTS + (12, 0))), walked)
        done = subprocess.run(["snmpget", *common, "-A", "wrong-Password", "-X", "wrong-Password",
                               target, ".1.3.6.1.2.1.1.5.0"],
                              capture_output=True, text=True, timeout=30)
        self.assertNotEqual(done.returncode, 0)
        self.assertIn("Authentication failure", done.stderr)
        if baseMIBFolder() is not None:
            named = lines(run("snmpwalk", *common, "-A", USER["AuthPassword"],
                              "-X", USER["PrivPassword"], *mibOptions(), target, "cgproMIB"))
            self.assertEqual(named["CGPRO-MIB::cgproMailBouncedTotal.0"], "Counter64: 0")
