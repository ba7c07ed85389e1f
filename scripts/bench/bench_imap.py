#!/usr/bin/env python3
"""
IMAP/POP3 benchmark: cgpro next to Dovecot, one run.

Both servers get the same load from the peer's own tools
(``../shared/bench/mail/{smtp_load,imap_warmup,imap_load,pop3_load}.py``):

1. fill: N messages of ~4 KB over SMTP (20 sessions x 5 messages) to a
   random one of user0..user99@example.test, waiting until all are in the
   mailboxes (~200 messages per mailbox with the defaults);
2. warm-up: every mailbox opened once (``imap_warmup.py``);
3. IMAP: ``imap_load.py``, C clients for S seconds (LOGIN, SELECT INBOX,
   10 x FETCH n (BODY[]), STORE, LOGOUT);
4. POP3: ``pop3_load.py``, C clients for S seconds (USER/PASS, STAT,
   5 x RETR, QUIT).

Figures per server and protocol: sessions/s, FETCH/s (RETR/s), server CPU
per session (cgpro: the twistd process's CPU time delta / sessions; the
peer: its cpuacct cgroup ``mailbench_srv`` when there is one), the servers'
peak RSS during the run, the load tool's CPU and the machine's CPU used by
anything else during the run (a check for a contended box).

The load tools log in as ``user%d`` / ``pass%d`` (a bare name), so cgpro is
started with ``example.test`` as its Main Domain; as the peer runs with
``disable_plaintext_auth = no``, cgpro gets ``AllowCleartextAuth=YES`` for
IMAP and POP (plain LOGIN / USER+PASS without TLS).  The peer is started
with ``peer_ctl.sh`` (Postfix -> LMTP -> Dovecot, Maildir); it needs the
Debian packages postfix, dovecot-imapd, dovecot-pop3d, dovecot-lmtpd
(``--no-peer`` runs cgpro alone).  A benchmark, not a test: it prints a
report and writes JSON with ``--json``; it never fails on a missed goal.

    python scripts/bench/bench_imap.py [--messages 20000] [--secs 30] [--clients 10] [--json out.json]
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)
from procstat import PEER_CGROUP, peerPids, processCPU, rssMB  # noqa: E402

from tests.support.server import ServerProcess  # noqa: E402

SHARED = os.environ.get("CGPRO_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))
MAILBENCH = os.path.join(SHARED, "bench", "mail")
#: RESULTS.md (medians of 3 uncontended runs, 10 clients, 30 s)
PEER = {
    "imap": {"sessions_per_s": 125.3, "ops_per_s": 1253, "cpu_ms_per_session": 13.0},
    "pop3": {"sessions_per_s": 143.2, "ops_per_s": 716, "cpu_ms_per_session": 11.3},
}



def machineBusy():
    """
    @return: CPU seconds the whole machine spent not idle (all cores).
    """
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def childrenCPU():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def peerCgroupCPU():
    try:
        with open(PEER_CGROUP) as f:
            return int(f.read()) / 1e9
    except (OSError, ValueError):
        return None


class RSSSampler(threading.Thread):
    """
    Sample the servers' total RSS every 0.5 s; keep the peak.
    """

    def __init__(self, pidsFn):
        threading.Thread.__init__(self, daemon=True)
        self.pidsFn = pidsFn
        self.peak = 0.0
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            self.peak = max(self.peak, rssMB(self.pidsFn()))
            self.done.wait(0.5)

    def stop(self):
        self.done.set()
        self.join()
        return self.peak


def fill(hostport, countCmd, args):
    """
    Deliver the messages with the peer's smtp_load.py and wait for delivery.
    """
    cmd = [
        sys.executable, os.path.join(MAILBENCH, "smtp_load.py"), hostport,
        "-n", str(args.messages), "-c", "20", "-k", "5", "-s", "4096",
        "--users", str(args.users), "--domain", "example.test",
        "--count-cmd", countCmd, "--time-limit", str(args.fill_limit),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.fill_limit + 60)
    if out.returncode != 0:
        raise SystemExit("smtp_load failed: %s" % (out.stderr[-2000:],))
    sys.stderr.write(out.stderr)
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    keep = ("accepted", "accept_rate", "delivered", "deliver_rate", "deliver_secs",
            "send_complete", "deliver_complete")
    return {k: figures[k] for k in keep if k in figures}


def settle(countCmd, limit=120.0):
    """
    Wait until the number of delivered messages stops growing (e.g. mail
    left in a queue by an earlier run); return it.
    """
    count = lambda: int(subprocess.run(countCmd, shell=True, capture_output=True,  # noqa: E731
                                       text=True).stdout.strip() or 0)
    last, deadline = count(), time.monotonic() + limit
    while time.monotonic() < deadline:
        time.sleep(2)
        now = count()
        if now == last:
            break
        last = now
    return last


def warmup(hostport, args):
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, os.path.join(MAILBENCH, "imap_warmup.py"), hostport,
                          str(args.users)], capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise SystemExit("imap_warmup failed: %s" % (out.stderr[-2000:],))
    sys.stderr.write(out.stderr)
    return {"secs": round(time.monotonic() - t0, 2), "summary": out.stderr.strip()}


def runLoad(tool, hostport, args, serverCPU, serverPids):
    """
    Run imap_load.py or pop3_load.py; return its figures plus CPU and RSS.

    @param serverCPU: returns the server's CPU seconds so far, or C{None}.
    @param serverPids: returns the server's process ids (for RSS).
    """
    cmd = [sys.executable, os.path.join(MAILBENCH, tool), hostport,
           "-c", str(args.clients), "-d", str(args.secs), "--users", str(args.users)]
    sampler = RSSSampler(serverPids)
    sampler.start()
    cpu0, tool0, busy0, t0 = serverCPU(), childrenCPU(), machineBusy(), time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.secs + 120)
    cpu1, tool1, busy1, t1 = serverCPU(), childrenCPU(), machineBusy(), time.monotonic()
    peak = sampler.stop()
    if out.returncode != 0:
        raise SystemExit("%s failed: %s" % (tool, out.stderr[-2000:]))
    sys.stderr.write(out.stderr)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    sessions = max(1, r["sessions"])
    r["ops_per_s"] = r.get("fetches_per_s", r.get("retrs_per_s"))
    r["server_rss_mb_peak"] = round(peak, 1)
    r["server_rss_mb_after"] = round(rssMB(serverPids()), 1)
    wall = t1 - t0
    server = (cpu1 - cpu0) if cpu0 is not None and cpu1 is not None else None
    toolCPU = tool1 - tool0
    busy = busy1 - busy0
    cores = os.cpu_count() or 1
    if server is not None:
        r["server_cpu_s"] = round(server, 2)
        r["server_cpu_ms_per_session"] = round(1000.0 * server / sessions, 2)
        r["server_cpu_pct_of_machine"] = round(100.0 * server / (wall * cores), 1)
        r["other_cpu_pct_of_machine"] = round(100.0 * (busy - server - toolCPU) / (wall * cores), 1)
    r["load_tool_cpu_pct_of_machine"] = round(100.0 * toolCPU / (wall * cores), 1)
    r["machine_busy_pct"] = round(100.0 * busy / (wall * cores), 1)
    return r


def measure(hostport_smtp, hostport_imap, hostport_pop, countCmd, args, serverCPU, serverPids):
    res = {}
    res["fill"] = fill(hostport_smtp, countCmd, args)
    res["mailbox_messages"] = settle(countCmd)
    res["warmup"] = warmup(hostport_imap, args)
    time.sleep(2)
    res["imap"] = runLoad("imap_load.py", hostport_imap, args, serverCPU, serverPids)
    time.sleep(2)
    res["pop3"] = runLoad("pop3_load.py", hostport_pop, args, serverCPU, serverPids)
    return res


def benchCgpro(args):
    """
    Start cgpro with example.test as its Main Domain, provision, fill, load.
    """
    server = ServerProcess(base=os.path.join(args.base_dir, "cgpro-bench-base") if args.base_dir else None,
                           domain="example.test")
    server.start()
    try:
        with server.client() as cli:
            # the peer has disable_plaintext_auth = no: the same here
            cli.command("UPDATEMODULE", "IMAP", {"AllowCleartextAuth": "YES"})
            cli.command("UPDATEMODULE", "POP", {"AllowCleartextAuth": "YES"})
            for i in range(args.users):
                cli.command("CREATEACCOUNT", "user%d@example.test" % i,
                            {"Password": "pass%d" % i})
        accounts = os.path.join(server.base, "Domains", "example.test", "Accounts")
        countCmd = "%s %s" % (os.path.join(MAILBENCH, "count_maildir.sh"), accounts)
        pids = lambda: [server.pid]  # noqa: E731
        res = measure("127.0.0.1:%d" % (server.offset + 25), "127.0.0.1:%d" % (server.offset + 143),
                      "127.0.0.1:%d" % (server.offset + 110), countCmd, args,
                      lambda: processCPU(pids()), pids)
        res["settings"] = "Main Domain example.test; IMAP and POP AllowCleartextAuth=YES"
        return res
    finally:
        server.stop()


def benchPeer(args):
    """
    Start Postfix+Dovecot with the shared configuration, fill, load.
    """
    ctl = os.path.join(MAILBENCH, "peer_ctl.sh")
    # the daemons inherit stdout: never capture it, or we wait for them forever
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    subprocess.run([ctl, "start"], check=True, **quiet)
    try:
        subprocess.run([ctl, "reset"], **quiet)
        time.sleep(1)
        countCmd = "%s /tmp/mailbench/maildir" % (os.path.join(MAILBENCH, "count_maildir.sh"),)
        res = measure("127.0.0.1:2525", "127.0.0.1:2543", "127.0.0.1:2510", countCmd, args,
                      peerCgroupCPU, peerPids)
        res["cpu_source"] = PEER_CGROUP if peerCgroupCPU() is not None else None
        return res
    finally:
        subprocess.run([ctl, "stop"], **quiet)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--secs", type=float, default=30.0)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--fill-limit", type=float, default=600.0,
                    help="cap on the SMTP fill incl. waiting for delivery (s)")
    ap.add_argument("--no-peer", action="store_true", help="measure cgpro only")
    ap.add_argument("--base-dir", default=None, help="where cgpro's base folder goes")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    results = {"cgpro": benchCgpro(args)}
    sys.stderr.write("cgpro: %s\n" % (json.dumps(results["cgpro"]),))
    if not args.no_peer:
        results["peer"] = benchPeer(args)
        sys.stderr.write("peer: %s\n" % (json.dumps(results["peer"]),))
    results["peer_published"] = PEER
    results["args"] = vars(args)
    results["machine"] = "%s, %d CPUs, Python %s" % (platform.platform(), os.cpu_count(),
                                                      platform.python_version())

    print()
    print("IMAP/POP3: %d messages over %d mailboxes, %d clients x %g s"
          % (args.messages, args.users, args.clients, args.secs))
    print("%-6s %-26s %10s %10s %8s %12s %8s %8s %8s"
          % ("", "", "sessions/s", "FETCH|RETR/s", "errors", "CPU ms/sess", "RSS MB", "other%", "busy%"))
    for proto in ("imap", "pop3"):
        for name in ("cgpro", "peer"):
            res = results.get(name)
            if res is None:
                continue
            r = res[proto]
            print("%-6s %-26s %10.1f %12.1f %8d %12s %8.1f %8s %8.1f" % (
                proto.upper(), "cgpro" if name == "cgpro" else "Dovecot (same run)",
                r["sessions_per_s"], r["ops_per_s"], r["errors"],
                "%.2f" % r["server_cpu_ms_per_session"] if "server_cpu_ms_per_session" in r else "-",
                r["server_rss_mb_peak"],
                "%.1f" % r["other_cpu_pct_of_machine"] if "other_cpu_pct_of_machine" in r else "-",
                r["machine_busy_pct"]))
        p = PEER[proto]
        print("%-6s %-26s %10.1f %12.1f %8s %12.2f" % (proto.upper(), "Dovecot, RESULTS.md",
                                                      p["sessions_per_s"], p["ops_per_s"], "",
                                                      p["cpu_ms_per_session"]))
    for proto in ("imap", "pop3"):
        c = results["cgpro"][proto]
        line = "ratio cgpro/peer %-5s sessions/s: vs RESULTS.md %.2f" % (
            proto.upper(), c["sessions_per_s"] / PEER[proto]["sessions_per_s"])
        if "peer" in results and results["peer"][proto]["sessions_per_s"]:
            line += ", vs same run %.2f" % (c["sessions_per_s"] / results["peer"][proto]["sessions_per_s"])
        line += "; CPU/session vs RESULTS.md %.2f" % (
            c.get("server_cpu_ms_per_session", 0) / PEER[proto]["cpu_ms_per_session"])
        print(line)
    print(results["machine"])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
