# -*- test-case-name: tests.integration.test_monitoring_server -*-
"""
End-to-end tests of monitoring (the monitoring issue, "Proof"): the real
server (C{twistd} in a child process, L{tests.support.server}) carries
SMTP and CLI traffic from real clients (C{smtplib}, the CLI client), and
the figures must move by exactly the right amounts, the same on
C{GET /metrics} (the Prometheus exporter, port 9106 + offset) and over
the CLI (C{GETSTATELEMENT}); C{promtool check metrics} (Debian package
C{prometheus}) must accept the exposition when it is installed.
"""

import shutil
import smtplib
import subprocess
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families
from twisted.trial.unittest import SynchronousTestCase

from cgpro.cli.client import CLIClient, CLIError
from tests.support.mail import SMTP_PORT, port, waitFor, waitForMessages
from tests.support.server import freePort, startServer

PASSWORD = "pw-Secret1"

#: The metrics row of C{etc/ports.conf} (before the offset).
METRICS_PORT = 9106


def scrape(server, path="/metrics"):
    """
    @return: C{(status, content type, text)} of one GET on the exporter.
    """
    url = "http://127.0.0.1:%d%s" % (port(server, METRICS_PORT), path)
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read().decode()


def samples(text):
    """
    @return: C{{(sample name, ((label, value), ...)): value}} of an
        exposition.
    """
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def figure(table, name, **labels):
    """
    @return: one sample of L{samples}' table, 0 when it is absent.
    """
    return table.get((name, tuple(sorted(labels.items()))), 0)


def element(cli, objectID):
    """
    @return: the value of one element over the CLI (C{GETSTATELEMENT}).
    """
    return cli.command("GETSTATELEMENT", objectID)


class MonitoringTests(SynchronousTestCase):
    """
    One server, SMTP and CLI traffic, and the figures on both front ends.
    """

    def setUp(self):
        self.server = startServer(self)
        self.cli = self.server.client()
        for name in ("alice", "bob"):
            self.cli.createAccount("%s@main.dom" % (name,), {"Password": PASSWORD})
        # bob refuses everything: a message to him fails and its sender
        # gets a DSN (a bounce)
        self.cli.command("SETACCOUNTMAILRULES", "bob@main.dom",
                         [[5, "refuse", [], [["Reject with", "not accepting mail"]]]])
        # relaying from here goes to a port where nobody listens: the
        # message waits in its logical queue
        self.cli.command("SETCLIENTIPS", "127.0.0.1")
        self.cli.command("UPDATEMODULE", "SMTP",
                         {"SmartHost": "127.0.0.1:%d" % (freePort(),),
                          "AllowCleartextAuth": "YES", "AuthFailureDelay": "0"})

    def test_listening(self):
        """
        The exporter answers C{/metrics} with the exposition's content
        type, every other path with a 404, and its row is listening.
        """
        status, contentType, text = scrape(self.server)
        self.assertEqual(status, 200)
        self.assertTrue(contentType.startswith("text/plain; version="), contentType)
        self.assertIn("# TYPE cgpro_connections_total counter", text)
        self.assertEqual(scrape(self.server, "/")[0], 404)
        self.assertEqual(scrape(self.server, "/metrics/x")[0], 404)
        rows = self.cli.command("LISTLISTENERS")
        self.assertEqual(rows["metrics"]["State"], "listening")

    def test_smtpTraffic(self):
        """
        Three messages accepted over SMTP (two for alice, one for bob that
        his rule refuses, one relayed to a dead smart host), a bad command
        and a failed AUTH: connections, errors, failed logins, accepted,
        delivered by channel, bounces and the queue move by exactly that,
        on C{/metrics} and over the CLI alike.
        """
        before = samples(scrape(self.server)[2])
        client = smtplib.SMTP("127.0.0.1", port(self.server, SMTP_PORT), timeout=30)
        client.ehlo("client.test")
        for number in (1, 2):
            client.sendmail("sender@ext.test", ["alice@main.dom"],
                            "Subject: %d\r\n\r\nHello.\r\n" % (number,))
        client.sendmail("alice@main.dom", ["bob@main.dom"], "Subject: to bob\r\n\r\nHi.\r\n")
        client.sendmail("alice@main.dom", ["someone@remote.example"],
                        "Subject: away\r\n\r\nHi.\r\n")
        self.assertEqual(client.docmd("XYZZY")[0], 500)
        client.quit()
        client = smtplib.SMTP("127.0.0.1", port(self.server, SMTP_PORT), timeout=30)
        client.ehlo("client.test")
        self.assertEqual(client.docmd("AUTH", "PLAIN AGFsaWNlQG1haW4uZG9tAHdyb25n")[0], 535)
        client.quit()
        # alice: her two messages and the DSN about bob's refusal
        waitForMessages(self.server, "alice@main.dom", 3)

        def settled():
            now = samples(scrape(self.server)[2])
            done = (figure(now, "cgpro_mail_delivered_total", channel="LOCAL")
                    - figure(before, "cgpro_mail_delivered_total", channel="LOCAL") >= 3
                    and figure(now, "cgpro_sessions_active", module="smtp") == 0
                    and figure(now, "cgpro_mail_bounced_total") >= 1)
            return now if done else None

        after = waitFor(settled, what="the deliveries and the sessions' ends to be counted")

        def moved(name, **labels):
            return figure(after, name, **labels) - figure(before, name, **labels)

        self.assertEqual(moved("cgpro_connections_total", module="smtp"), 2)
        self.assertEqual(figure(after, "cgpro_sessions_active", module="smtp"), 0)
        self.assertEqual(moved("cgpro_mail_accepted_total", module="smtp"), 4)
        self.assertEqual(moved("cgpro_mail_delivered_total", channel="LOCAL"), 3)
        self.assertEqual(moved("cgpro_mail_delivered_total", channel="SMTP"), 0)
        self.assertEqual(moved("cgpro_mail_bounced_total"), 1)
        self.assertEqual(moved("cgpro_auth_failures_total", module="smtp"), 1)
        # XYZZY (500) and the refused AUTH (535) are protocol errors
        self.assertEqual(moved("cgpro_errors_total", module="smtp", kind="protocol"), 2)
        queues = {labels: value for (name, labels), value in after.items()
                  if name == "cgpro_queue_messages"}
        self.assertEqual(sum(queues.values()), 1, queues)
        [(label, queue)] = list(queues)[0]
        self.assertEqual(label, "queue")
        self.assertTrue(queue.startswith("SMTP("), queue)
        # the CLI reads the same catalog
        self.assertEqual(element(self.cli, "cgpro_mail_delivered_total/LOCAL"),
                         figure(after, "cgpro_mail_delivered_total", channel="LOCAL"))
        self.assertEqual(element(self.cli, "cgpro_mail_accepted_total/smtp"),
                         figure(after, "cgpro_mail_accepted_total", module="smtp"))
        self.assertEqual(element(self.cli, "cgpro_mail_bounced_total"), 1)
        self.assertEqual(element(self.cli, "cgpro_queue_messages"), 1)
        self.assertEqual(element(self.cli, "cgpro_queue_messages/" + queue), 1)
        self.assertEqual(element(self.cli, "cgpro_errors_total/smtp/protocol"), 2)
        self.assertEqual(self.cli.command("LISTSTATELEMENTS")["cgpro_auth_failures_total/smtp"],
                         1)

    def test_cliTraffic(self):
        """
        CLI commands count by result, and CLI connections and failed
        logins count under module C{cli}, on C{/metrics} and over the CLI.
        """
        before = samples(scrape(self.server)[2])
        okBefore = element(self.cli, "cgpro_cli_commands_total/ok")
        errorBefore = element(self.cli, "cgpro_cli_commands_total/error")
        self.cli.command("LISTDOMAINS")
        self.cli.command("GETACCOUNTSETTINGS", "alice@main.dom")
        self.assertRaises(CLIError, self.cli.command, "GETACCOUNTSETTINGS", "nobody@main.dom")
        self.assertRaises(CLIError, self.cli.command, "NOSUCHCOMMAND")
        refused = CLIClient("127.0.0.1", self.server.cliPort, timeout=30)
        refused.connect()
        self.assertRaises(CLIError, refused.login, "postmaster", "wrong")
        refused.close()
        # two GETSTATELEMENTs and two commands succeeded, two failed
        self.assertEqual(element(self.cli, "cgpro_cli_commands_total/ok"), okBefore + 4)
        self.assertEqual(element(self.cli, "cgpro_cli_commands_total/error"), errorBefore + 2)
        self.assertEqual(element(self.cli, "cgpro_auth_failures_total/cli"), 1)

        def settled():
            now = samples(scrape(self.server)[2])
            return now if figure(now, "cgpro_sessions_active", module="cli") == 1 else None

        after = waitFor(settled, what="the refused CLI session to end")

        def moved(name, **labels):
            return figure(after, name, **labels) - figure(before, name, **labels)

        # okBefore, errorBefore, the four commands, the three readings above
        self.assertEqual(moved("cgpro_cli_commands_total", result="ok"), 2 + 2 + 3)
        self.assertEqual(moved("cgpro_cli_commands_total", result="error"), 2)
        self.assertEqual(moved("cgpro_connections_total", module="cli"), 1)
        self.assertEqual(moved("cgpro_auth_failures_total", module="cli"), 1)

    def test_promtool(self):
        """
        C{promtool check metrics} accepts the exposition, after traffic
        has given the labelled figures samples.
        """
        promtool = shutil.which("promtool")
        if promtool is None:
            raise self.skipTest("promtool is not installed (apt-get install prometheus)")
        client = smtplib.SMTP("127.0.0.1", port(self.server, SMTP_PORT), timeout=30)
        client.sendmail("sender@ext.test", ["alice@main.dom"], "Subject: x\r\n\r\nHello.\r\n")
        client.docmd("XYZZY")
        client.quit()
        waitForMessages(self.server, "alice@main.dom", 1)
        text = scrape(self.server)[2]
        result = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                                capture_output=True, timeout=60)
        self.assertEqual((result.returncode, result.stdout, result.stderr), (0, b"", b""),
                         text)

    def test_sipTraffic(self):
        """
        SIP traffic (an OPTIONS, a REGISTER challenged then accepted, a
        MESSAGE to an account without devices) moves the SIP figures by
        exactly that on C{/metrics}, over the CLI and over SNMP alike.
        """
        from tests.support.sip import UDPAgent, sipPort

        before = samples(scrape(self.server)[2])
        agent = UDPAgent(sipPort(self.server), "alice")
        self.addCleanup(agent.close)
        agent.request("OPTIONS", "sip:127.0.0.1")
        self.assertEqual(agent.receive().code, 200)
        self.assertEqual(agent.register(PASSWORD).code, 200)
        agent.request("MESSAGE", "sip:bob@main.dom", ["Content-Type: text/plain"], b"hi",
                      toUser="bob")
        self.assertEqual(agent.receive().code, 480)
        after = samples(scrape(self.server)[2])

        def moved(name, **labels):
            return figure(after, name, **labels) - figure(before, name, **labels)

        self.assertEqual(moved("cgpro_sip_requests_total", method="OPTIONS"), 1)
        self.assertEqual(moved("cgpro_sip_requests_total", method="REGISTER"), 2)
        self.assertEqual(moved("cgpro_sip_requests_total", method="MESSAGE"), 1)
        self.assertEqual(moved("cgpro_sip_responses_total", **{"class": "2xx"}), 2)
        self.assertEqual(moved("cgpro_sip_responses_total", **{"class": "4xx"}), 2)
        self.assertEqual(figure(after, "cgpro_sip_registrations"), 1)
        self.assertEqual(element(self.cli, "cgpro_sip_requests_total/REGISTER"), 2)
        self.assertEqual(element(self.cli, "cgpro_sip_registrations"), 1)
        if shutil.which("snmpget"):
            snmpPort = port(self.server, 161)
            out = subprocess.run(
                ["snmpget", "-v2c", "-c", "public", "-On", "-Oqv", "127.0.0.1:%d" % snmpPort,
                 "1.3.6.1.3.7106.1.33.0"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
            self.assertEqual(out.stdout.decode().strip(), "1", out.stdout)
