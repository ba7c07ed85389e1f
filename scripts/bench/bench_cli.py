#!/usr/bin/env python
"""
Benchmark the CLI foundation: account creations per second, and start-up
time and memory with a large domain.

Runs the real server (C{twistd cgpro}, through L{tests.support.server}) on a
temporary base folder and a free port offset, and measures:

  (a) CREATEACCOUNT rate over the CLI with 1 and with 8 concurrent
      connections (no password), then with 8 connections and
      C{{Password=...}} (PBKDF2 hashing), each with the server's CPU time per
      creation;
  (b) the time to populate one domain with N accounts (8 connections), then
      after a restart: start-up time (process start until the CLI port
      greets) and the server's RSS (VmRSS) after a few commands.

Usage::

    python scripts/bench/bench_cli.py --quick            # N = 5,000
    python scripts/bench/bench_cli.py                    # N = 100,000
    python scripts/bench/bench_cli.py --json result.json

See README.md beside this file.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time

CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if CHECKOUT not in sys.path:
    sys.path.insert(0, CHECKOUT)

from cgpro.cli.client import CLIClient  # noqa: E402
from tests.support.server import ServerProcess  # noqa: E402

GOALS = {
    "creations_per_second": 2000.0,
    "startup_seconds": 3.0,
    "rss_megabytes": 300.0,
}


def createAccounts(server, domain, count, connections, password=None, prefix="u"):
    """
    Create C{count} accounts C{prefix<i>@domain} over C{connections}
    concurrent CLI sessions (each its own thread), as fast as they answer.

    @return: a result dictionary (count, seconds, rate, CPU per creation).
    """
    clients = []
    for _ in range(connections):
        client = CLIClient("127.0.0.1", server.cliPort, timeout=120)
        client.login("postmaster", server.password)
        clients.append(client)
    errors = []
    barrier = threading.Barrier(connections + 1)

    def work(client, index):
        barrier.wait()
        try:
            for i in range(index, count, connections):
                name = "%s%d@%s" % (prefix, i, domain)
                if password is None:
                    client.createAccount(name)
                else:
                    client.createAccount(name, {"Password": password})
        except Exception as e:  # reported by the caller
            errors.append(e)

    threads = [threading.Thread(target=work, args=(c, i)) for i, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    cpuBefore = server.cpuSeconds()
    clientBefore = time.process_time()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    cpu = server.cpuSeconds() - cpuBefore
    clientCpu = time.process_time() - clientBefore
    for client in clients:
        client.quit()
    if errors:
        raise RuntimeError("account creation failed: %r" % (errors[0],))
    return {
        "count": count,
        "connections": connections,
        "password": password is not None,
        "seconds": round(elapsed, 3),
        "per_second": round(count / elapsed, 1),
        "server_cpu_ms_per_creation": round(1000.0 * cpu / count, 3),
        "client_cpu_ms_per_creation": round(1000.0 * clientCpu / count, 3),
    }


def measureStart(server, domain, restarts):
    """
    Restart the server C{restarts} times (SIGTERM), recording each start-up
    time, then run a few commands and read the RSS.
    """
    startups = []
    for _ in range(restarts):
        server.restart()
        startups.append(server.startupTime)
    client = server.client()
    client.listDomains()
    began = time.perf_counter()
    accounts = client.listAccounts(domain)
    listSeconds = time.perf_counter() - began
    names = sorted(accounts)
    for name in names[:: max(1, len(names) // 20)]:
        client.getAccountSettings("%s@%s" % (name, domain))
    client.route("%s@%s" % (names[-1], domain))
    rss = server.rss()
    client.quit()
    return {
        "accounts_listed": len(accounts),
        "startup_seconds": [round(s, 3) for s in startups],
        "startup_seconds_median": round(statistics.median(startups), 3),
        "listaccounts_seconds": round(listSeconds, 3),
        "rss_megabytes": round(rss / 2**20, 1),
    }


def verdict(value, goal, lower=False):
    ok = value <= goal if lower else value >= goal
    return "ok" if ok else "MISSED"


def report(results, out=sys.stdout):
    """
    Print the results with the goals beside them.
    """
    w = out.write
    w("\ncgpro CLI benchmark (%s accounts in the big domain)\n" % (results["accounts"],))
    w("=" * 100 + "\n")
    goal = GOALS["creations_per_second"]
    w("%-31s %7s %11s %14s %14s\n" % (
        "account creations", "count", "per second", "server CPU/op", "client CPU/op"))
    for key, label in (("create_1", "1 connection"), ("create_8", "8 connections"),
                       ("create_8_password", "8 connections, {Password}"),
                       ("populate", "populate big domain (8 conn.)")):
        r = results[key]
        mark = ""
        if not r["password"]:
            mark = "  goal >= %.0f/s: %s" % (goal, verdict(r["per_second"], goal))
        w("%-31s %7d %11.1f %11.3f ms %11.3f ms%s\n" % (
            label, r["count"], r["per_second"], r["server_cpu_ms_per_creation"],
            r["client_cpu_ms_per_creation"], mark))
    s = results["restart"]
    w("\nafter restart with %d accounts in one domain\n" % (s["accounts_listed"],))
    w("  start-up (process start -> CLI greets): median %.3f s of %s   goal < %.0f s: %s\n" % (
        s["startup_seconds_median"], s["startup_seconds"], GOALS["startup_seconds"],
        verdict(s["startup_seconds_median"], GOALS["startup_seconds"], lower=True)))
    w("  RSS after a few commands:               %.1f MB              goal < %.0f MB: %s\n" % (
        s["rss_megabytes"], GOALS["rss_megabytes"],
        verdict(s["rss_megabytes"], GOALS["rss_megabytes"], lower=True)))
    w("  LISTACCOUNTS of the big domain:         %.3f s\n" % (s["listaccounts_seconds"],))
    w("  RSS before restart (after populating):  %.1f MB\n" % (results["rss_megabytes_populated"],))
    w("\nmachine: %s, %d CPUs, Python %s; base folder on %s\n" % (
        results["machine"]["platform"], results["machine"]["cpus"],
        results["machine"]["python"], results["machine"]["base_parent"]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=100000,
                        help="accounts in the big domain (default 100000)")
    parser.add_argument("--quick", action="store_true",
                        help="small run: 5000 accounts, shorter rate runs")
    parser.add_argument("--rate-count", type=int, default=None,
                        help="accounts per rate run (default 10000, quick 2000)")
    parser.add_argument("--password-count", type=int, default=None,
                        help="accounts in the {Password} run (default 1000, quick 200)")
    parser.add_argument("--restarts", type=int, default=3,
                        help="restarts to time (median reported, default 3)")
    parser.add_argument("--base-dir", default=None,
                        help="parent folder of the temporary base folder (default: $TMPDIR)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the base folder and log")
    options = parser.parse_args(argv)
    if options.quick:
        options.accounts = 5000
    rateCount = options.rate_count or (2000 if options.quick else 10000)
    passwordCount = options.password_count or (200 if options.quick else 1000)

    parent = tempfile.mkdtemp(prefix="cgpro-bench-", dir=options.base_dir)
    base = os.path.join(parent, "base")
    server = ServerProcess(base=base, keep=options.keep)
    results = {
        "accounts": options.accounts,
        "goals": GOALS,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "base_parent": os.path.dirname(parent) or parent,
        },
    }
    try:
        server.start()
        results["first_startup_seconds"] = round(server.startupTime, 3)
        admin = server.client()
        for domain in ("rate1.dom", "rate8.dom", "ratepw.dom", "big.dom"):
            admin.createDomain(domain)
        admin.quit()

        step = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
        step("creating %d accounts over 1 connection..." % (rateCount,))
        results["create_1"] = createAccounts(server, "rate1.dom", rateCount, 1)
        step("creating %d accounts over 8 connections..." % (rateCount,))
        results["create_8"] = createAccounts(server, "rate8.dom", rateCount, 8)
        step("creating %d accounts with passwords over 8 connections..." % (passwordCount,))
        results["create_8_password"] = createAccounts(
            server, "ratepw.dom", passwordCount, 8, password="Bench-pw1")
        step("populating big.dom with %d accounts over 8 connections..." % (options.accounts,))
        results["populate"] = createAccounts(server, "big.dom", options.accounts, 8)
        results["rss_megabytes_populated"] = round(server.rss() / 2**20, 1)
        step("restarting %d times..." % (options.restarts,))
        results["restart"] = measureStart(server, "big.dom", options.restarts)
        server.stop()
    except BaseException:
        print(server.log()[-5000:], file=sys.stderr)
        raise
    finally:
        server.cleanup()
        if not options.keep:
            shutil.rmtree(parent, ignore_errors=True)
        else:
            print("kept %s and %s" % (parent, server.logPath), file=sys.stderr)

    results["goals_met"] = {
        "creations_per_second": results["create_8"]["per_second"] >= GOALS["creations_per_second"],
        "startup_seconds": results["restart"]["startup_seconds_median"] < GOALS["startup_seconds"],
        "rss_megabytes": results["restart"]["rss_megabytes"] < GOALS["rss_megabytes"],
    }
    report(results)
    if options.json:
        with open(options.json, "w") as f:
            json.dump(results, f, indent=2, sort_keys=True)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
