#!/usr/bin/env python3
"""
What monitoring costs under SIP load: cgpro under SIPp REGISTER load
(the shared run_sipp_bench.sh, as bench_sip.py runs it), once without and
once with a scraper that, every --interval seconds, fetches /metrics and
walks the whole cgpro MIB over SNMP (snmpbulkwalk), which is far more often
than Prometheus (15 s) or an NMS (60 s) would.

Two figures:

  - CPU per REGISTER at a fixed rate the server sustains (--rate), with
    and without the scraper, alternating runs: the share of the server's
    capacity (its throughput is bounded by its one reactor thread's CPU)
    that the scrapes take;
  - the server CPU one scrape plus one walk costs, measured on the idle
    server, and what that is at the scrape interval.

The issue's bound: under 2 % of the throughput.  (Offering more than the
server can take is no way to measure this: SIPp's retransmissions then
dominate and the runs scatter by tens of percent.)

Usage (from the checkout):
  python scripts/bench/bench_monitoring.py [--rate 600] [--overload 1500]
         [--duration 20] [--interval 1] [--repeats 2]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKOUT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, CHECKOUT)
sys.path.insert(0, HERE)

import bench_sip  # noqa: E402
from tests.support.server import ServerProcess  # noqa: E402

USERS = 1000


class Scraper(threading.Thread):
    """Scrapes /metrics and walks the MIB every C{interval} seconds."""

    def __init__(self, server, interval):
        threading.Thread.__init__(self, daemon=True)
        self.server = server
        self.interval = interval
        self.stop = threading.Event()
        self.scrapes = self.walks = self.varbinds = 0
        self.bytes = 0

    def run(self):
        metrics = "http://127.0.0.1:%d/metrics" % (9106 + self.server.offset,)
        snmp = "127.0.0.1:%d" % (161 + self.server.offset,)
        walk = shutil.which("snmpbulkwalk")
        while not self.stop.wait(self.interval):
            with urllib.request.urlopen(metrics, timeout=10) as response:
                self.bytes += len(response.read())
            self.scrapes += 1
            if walk:
                out = subprocess.run([walk, "-v2c", "-c", "public", "-On", snmp,
                                      "1.3.6.1.3.7106"], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, timeout=30)
                self.varbinds += out.stdout.count(b"\n")
                self.walks += 1


def measure(server, rate, duration, interval):
    """
    @return: C{(result, scraper)} of one SIPp run, with a scraper when
        C{interval} is set.
    """
    scraper = None
    if interval:
        scraper = Scraper(server, interval)
        scraper.start()
    try:
        result = bench_sip.runPoint("reg_noauth", rate, 5060 + server.offset, server.pid,
                                    tempfile.mkdtemp(prefix="cgpro-monbench-"), duration,
                                    USERS)
    finally:
        if scraper is not None:
            scraper.stop.set()
            scraper.join()
    return result, scraper


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=int, default=600, help="a REGISTER rate the server sustains")
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    server = ServerProcess(extraArgs=[], env={})
    server.start()
    try:
        bench_sip.provision(server, USERS)
        bench_sip.configure(server, False)
        before = server.cpuSeconds()
        for _ in range(20):
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % (9106 + server.offset,),
                                        timeout=10) as response:
                response.read()
            if shutil.which("snmpbulkwalk"):
                subprocess.run(["snmpbulkwalk", "-v2c", "-c", "public", "-On",
                                "127.0.0.1:%d" % (161 + server.offset,), "1.3.6.1.3.7106"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        perScrape = (server.cpuSeconds() - before) / 20
        rows = []
        for _ in range(args.repeats):
            for interval in (0, args.interval):
                result, scraper = measure(server, args.rate, args.duration, interval)
                if result is not None:
                    rows.append((interval, result, scraper))
        print()
        print("REGISTER (no auth) at %d/s under SIPp; scrapes every %.0f s: GET /metrics and "
              "snmpbulkwalk of the cgpro MIB" % (args.rate, args.interval))
        print("%-8s %10s %10s %8s %8s %8s" % ("monitor", "ok/s", "us/REG", "retrans",
                                             "scrapes", "walks"))
        cpu = {False: [], True: []}
        for interval, r, scraper in rows:
            print("%-8s %10s %10s %8s %8s %8s" % (
                "yes" if interval else "no", r["steady_ok_per_s_median"], r["server_us_per_op"],
                r["retrans"], scraper.scrapes if scraper else "-",
                scraper.walks if scraper else "-"))
            if r["server_us_per_op"]:
                cpu[bool(interval)].append(r["server_us_per_op"])
        print()
        print("one scrape + one MIB walk on the idle server: %.1f ms of server CPU "
              "(%.2f %% of a core at one every %.0f s; %.3f %% at Prometheus' 15 s)"
              % (perScrape * 1000, 100 * perScrape / args.interval, args.interval,
                 100 * perScrape / 15))
        if cpu[False] and cpu[True]:
            without = sum(cpu[False]) / len(cpu[False])
            withMon = sum(cpu[True]) / len(cpu[True])
            print("CPU per REGISTER: %.0f us without, %.0f us with: %+.1f %% of the throughput "
                  "(bound: 2 %%; runs scatter by about +-5 %%)"
                  % (without, withMon, 100.0 * (withMon / without - 1)))
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
