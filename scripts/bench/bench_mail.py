#!/usr/bin/env python3
"""
Mail transfer benchmark: cgpro next to Postfix -> LMTP -> Dovecot, one run.

Both servers get the same load from the peer's own tool
(``../shared/bench/mail/smtp_load.py``): N messages of ~4 KB over C
concurrent sessions, K messages per session, each to a random one of
user0..user99@example.test, fsync on in both.  Figures per server:

- accepted/s: messages that got their 250 after DATA / time to the last 250
- delivered/s: messages in the recipients' Maildirs / time until all landed
- server CPU per message (process CPU time delta / messages) and RSS

The peer is started with ``peer_ctl.sh`` (Postfix on 127.0.0.1:2525
delivering over LMTP into Dovecot's Maildirs); it needs the Debian packages
postfix, dovecot-imapd, dovecot-pop3d, dovecot-lmtpd (``--no-peer`` runs
cgpro alone).  A benchmark, not a test: it prints a report and writes JSON
with ``--json``; it never fails on a missed goal.

    python scripts/bench/bench_mail.py [--messages 20000] [--json out.json]
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)
from procstat import peerPids, processCPU, rssMB  # noqa: E402

from tests.support.server import ServerProcess  # noqa: E402

SHARED = os.environ.get("CGPRO_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))
MAILBENCH = os.path.join(SHARED, "bench", "mail")
PEER = {"accepted": 744, "delivered": 371}


def runLoad(hostport, countCmd, args):
    """
    Run the peer's load tool; return its JSON figures.
    """
    cmd = [
        sys.executable, os.path.join(MAILBENCH, "smtp_load.py"), hostport,
        "-n", str(args.messages), "-c", str(args.concurrency), "-k", str(args.per_session),
        "-s", str(args.size), "--domain", "example.test", "--count-cmd", countCmd,
        "--time-limit", str(args.time_limit),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.time_limit + 60)
    if out.returncode != 0:
        raise SystemExit("smtp_load failed: %s" % (out.stderr[-2000:],))
    sys.stderr.write(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def benchCgpro(args):
    """
    Start cgpro, provision user0..99@example.test, load it, measure.
    """
    server = ServerProcess(base=os.path.join(args.base_dir, "cgpro-bench-base") if args.base_dir else None)
    server.start()
    try:
        with server.client() as cli:
            cli.command("CREATEDOMAIN", "example.test")
            for i in range(args.users):
                cli.command("CREATEACCOUNT", "user%d@example.test" % i,
                            {"Password": "pass%d" % i})
        smtpPort = server.offset + 25
        accounts = os.path.join(server.base, "Domains", "example.test", "Accounts")
        countCmd = "%s %s" % (os.path.join(MAILBENCH, "count_maildir.sh"), accounts)
        pids = [server.pid]
        cpu0 = processCPU(pids)
        figures = runLoad("127.0.0.1:%d" % smtpPort, countCmd, args)
        cpu = processCPU(pids) - cpu0
        figures["server_cpu_ms_per_msg"] = 1000.0 * cpu / max(1, figures.get("accepted", 1))
        figures["server_rss_mb"] = rssMB(pids)
        return figures
    finally:
        server.stop()


def benchPeer(args):
    """
    Start Postfix+Dovecot with the shared configuration, load, measure.
    """
    ctl = os.path.join(MAILBENCH, "peer_ctl.sh")
    # the daemons inherit stdout: never capture it, or we wait for them forever
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    subprocess.run([ctl, "start"], check=True, **quiet)
    try:
        subprocess.run([ctl, "reset"], **quiet)
        time.sleep(1)
        countCmd = "%s /tmp/mailbench/maildir" % (os.path.join(MAILBENCH, "count_maildir.sh"),)
        figures = runLoad("127.0.0.1:2525", countCmd, args)
        figures["server_rss_mb"] = rssMB(peerPids())
        return figures
    finally:
        subprocess.run([ctl, "stop"], **quiet)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--concurrency", type=int, default=20)
    ap.add_argument("--per-session", type=int, default=5)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--no-peer", action="store_true", help="measure cgpro only")
    ap.add_argument("--base-dir", default=None, help="where cgpro's base folder goes")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    results = {"cgpro": benchCgpro(args)}
    sys.stderr.write("cgpro: %s\n" % (json.dumps(results["cgpro"]),))
    if not args.no_peer:
        results["peer"] = benchPeer(args)
    results["machine"] = "%s, %d CPUs, Python %s" % (platform.platform(), os.cpu_count(),
                                                      platform.python_version())

    print()
    print("mail transfer: %d messages of ~%d bytes, %d sessions x %d messages, fsync on"
          % (args.messages, args.size, args.concurrency, args.per_session))
    print("%-28s %12s %12s %14s %10s" % ("", "accepted/s", "delivered/s", "CPU ms/msg", "RSS MB"))
    for name in ("cgpro", "peer"):
        r = results.get(name)
        if r is None:
            continue
        print("%-28s %12.1f %12.1f %14s %10.1f" % (
            "cgpro" if name == "cgpro" else "Postfix+Dovecot (same run)",
            r.get("accept_rate", 0.0), r.get("deliver_rate", 0.0),
            "%.2f" % r["server_cpu_ms_per_msg"] if "server_cpu_ms_per_msg" in r else "-",
            r.get("server_rss_mb", 0.0)))
    print("%-28s %12.1f %12.1f" % ("peer, RESULTS.md", PEER["accepted"], PEER["delivered"]))
    if "peer" in results:
        for key in ("accept_rate", "deliver_rate"):
            peer = results["peer"].get(key) or 0
            if peer:
                print("ratio cgpro/peer %-12s %.2f" % (key, results["cgpro"].get(key, 0) / peer))
    print(results["machine"])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
