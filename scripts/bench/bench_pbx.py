#!/usr/bin/env python3
"""
PBX benchmark: how many concurrent calls cgpro holds on this machine.

- attendant: SIPp callers reach the auto-attendant (``200``) and listen for
  ``--hold`` seconds; cgpro answers each with a media server channel and
  plays ``receptionprompt.wav`` (50 packets/s per call while it speaks).
  The callers' audio goes to an RTP sink process that counts packets and
  measures their pacing (the gap between consecutive packets of a call:
  a late packet is one more than 40 ms after the previous one, while the
  prompt plays).
- gatewaycaller: authenticated SIPp callers call ``<n>@pstn``; the Router
  sends them to ``gatewaycaller``, which calls SIPp's UAS (the gateway)
  and answers the caller with the gateway's SDP (a B2BUA, media end to
  end): two SIP dialogs per call held by cgpro.

For each the calls are placed at ``--rate`` up to ``--calls`` concurrent
and held; the figures are those of the steady state (all calls up):
calls established and failed, cgpro's CPU (% of one core), its RSS, the
live PBX tasks, and for the attendant the sink's packet rate and late
fraction.  cgpro runs on core 0, SIPp and the sink on core 1.  The goal of
the issue is 1,500 concurrent calls (the figure seed 002 gives for a
quad-core server); no peer runs this workload in ../shared/bench, so there
is no side-by-side figure.

    python scripts/bench/bench_pbx.py [--calls 1500] [--rate 100] [--hold 40]
"""

import argparse
import json
import os
import resource
import select
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)
from procstat import processCPU, rssMB  # noqa: E402

from tests.support.server import ServerProcess  # noqa: E402

SERVER_CORE = "0"
LOAD_CORE = "1"
SINK_PORTS = 16


class PinnedServer(ServerProcess):
    def command(self):
        argv, env = ServerProcess.command(self)
        return ["taskset", "-c", SERVER_CORE] + argv, env


def log(text):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), text), flush=True)


# -- the RTP sink (a separate process on the load core) -------------------------

def sink(args):
    """Count RTP packets per source and their pacing; print JSON at the end."""
    socks = []
    for i in range(args.sink_ports):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.bind(("127.0.0.1", args.sink_base + i))
        s.setblocking(False)
        socks.append(s)
    poller = select.epoll()
    for s in socks:
        poller.register(s.fileno(), select.EPOLLIN)
    byFd = {s.fileno(): s for s in socks}
    last = {}
    packets = 0
    late = 0
    gaps = 0
    windowStart = time.time() + args.warmup
    end = windowStart + args.window
    while time.time() < end:
        for fd, _ in poller.poll(0.2):
            sock = byFd[fd]
            while True:
                try:
                    data, source = sock.recvfrom(2048)
                except BlockingIOError:
                    break
                now = time.time()
                if now < windowStart:
                    last[source] = now
                    continue
                packets += 1
                previous = last.get(source)
                last[source] = now
                if previous is not None:
                    gap = now - previous
                    if gap < 0.5:  # not a pause between prompts
                        gaps += 1
                        if gap > 0.040:
                            late += 1
    print(json.dumps({"packets": packets, "seconds": args.window, "gaps": gaps, "late": late,
                      "sources": len(last)}), flush=True)


# -- the server ----------------------------------------------------------------------

def metric(server, name):
    """The first sample of C{name} (C{name{label="x"}} picks a labelled one)."""
    port = 9106 + server.offset
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % (port,), timeout=5) as f:
        for line in f.read().decode().splitlines():
            if line.startswith(name + " ") or ("{" not in name and line.startswith(name + "{")):
                return float(line.rsplit(" ", 1)[1])
    return None


def ticks(server):
    """@return: the media server's (on time, late) 20 ms ticks so far."""
    return (metric(server, 'cgpro_media_ticks_total{timing="ontime"}') or 0,
            metric(server, 'cgpro_media_ticks_total{timing="late"}') or 0)


def sipp(scenarioPath, port, calls, rate, extra=(), inject=None):
    argv = ["taskset", "-c", LOAD_CORE, "sipp", "127.0.0.1:%d" % (port,), "-sf", scenarioPath,
            "-i", "127.0.0.1", "-p", "0", "-l", str(calls), "-m", str(calls), "-r", str(rate),
            "-max_socket", "4096", "-bg", "-trace_stat", "-fd", "1", "-nostdin"]
    if inject:
        argv += ["-inf", inject]
    argv += list(extra)
    return argv


def scenario(name, hold):
    with open(os.path.join(HERE, "sipp", name)) as f:
        text = f.read().replace("@HOLD@", str(int(hold * 1000)))
    fd, path = tempfile.mkstemp(suffix=".xml")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def runSipp(argv, cwd, duration):
    """Run SIPp in the foreground for its calls; @return: (successful, failed)."""
    argv = [a for a in argv if a != "-bg"]
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc


def statCounts(cwd):
    """The last line of SIPp's -trace_stat file: (successful, failed)."""
    for name in os.listdir(cwd):
        if name.endswith("_.csv"):
            with open(os.path.join(cwd, name)) as f:
                lines = f.read().strip().splitlines()
            header = lines[0].split(";")
            row = lines[-1].split(";")
            values = dict(zip(header, row))
            return int(values.get("SuccessfulCall(C)", 0)), int(values.get("FailedCall(C)", 0))
    return 0, 0


def steady(server, pid, seconds):
    """CPU % of one core and RSS over C{seconds} of steady state."""
    cpu0 = processCPU([pid])
    t0 = time.time()
    tasks = []
    while time.time() - t0 < seconds:
        time.sleep(1)
        try:
            tasks.append(metric(server, "cgpro_pbx_tasks"))
        except Exception:
            pass
    cpu = (processCPU([pid]) - cpu0) / (time.time() - t0) * 100
    return cpu, rssMB([pid]), max([t for t in tasks if t is not None] or [0])


def benchAttendant(args, server):
    port = 5060 + server.offset
    cwd = tempfile.mkdtemp(prefix="bench-pbx-")
    inject = os.path.join(cwd, "sinks.csv")
    with open(inject, "w") as f:
        f.write("SEQUENTIAL\n")
        for i in range(args.calls):
            f.write("%d\n" % (args.sink_base + i % SINK_PORTS,))
    rampUp = args.calls / args.rate
    window = max(5, args.hold - rampUp - 5)
    sinkProc = subprocess.Popen(
        ["taskset", "-c", LOAD_CORE, sys.executable, __file__, "--sink",
         "--sink-base", str(args.sink_base), "--sink-ports", str(SINK_PORTS),
         "--warmup", str(rampUp + 1), "--window", str(window)],
        stdout=subprocess.PIPE)
    path = scenario("pbx_attendant.xml", args.hold)
    log("attendant: %d calls at %d/s, held %d s" % (args.calls, args.rate, args.hold))
    total0 = processCPU([server.pid])
    proc = runSipp(sipp(path, port, args.calls, args.rate, inject=inject), cwd, args.hold)
    time.sleep(rampUp + 1)
    ticks0 = ticks(server)
    cpu, rss, tasks = steady(server, server.pid, window)
    ticks1 = ticks(server)
    out, _ = sinkProc.communicate(timeout=args.hold + 60)
    proc.wait(timeout=args.hold + 120)
    whole = processCPU([server.pid]) - total0
    ok, failed = statCounts(cwd)
    result = json.loads(out.decode().strip().splitlines()[-1])
    pps = result["packets"] / result["seconds"]
    lateFraction = result["late"] / max(result["gaps"], 1)
    return {"test": "attendant", "calls": args.calls, "ok": ok, "failed": failed,
            "tasks": tasks, "cpu": cpu, "rss": rss, "pps": pps, "late": lateFraction,
            "sources": result["sources"], "cpuTotal": whole,
            "lateTicks": (ticks1[1] - ticks0[1]) / max(
                (ticks1[0] - ticks0[0]) + (ticks1[1] - ticks0[1]), 1)}


def benchGateway(args, server, cli):
    port = 5060 + server.offset
    cwd = tempfile.mkdtemp(prefix="bench-pbx-gw-")
    gwPort = args.sink_base + 100
    uas = subprocess.Popen(["taskset", "-c", LOAD_CORE, "sipp", "-sn", "uas", "-i", "127.0.0.1",
                            "-p", str(gwPort), "-max_socket", "4096", "-nostdin", "-bg"],
                           cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cli.updateAccountSettings("bench@main.dom", {"PSTNGatewayName": "127.0.0.1:%d" % (gwPort,)})
    rampUp = args.calls / args.rate
    window = max(5, args.hold - rampUp - 5)
    path = scenario("pbx_gatewaycaller.xml", args.hold)
    log("gatewaycaller: %d calls at %d/s, held %d s" % (args.calls, args.rate, args.hold))
    total0 = processCPU([server.pid])
    proc = runSipp(sipp(path, port, args.calls, args.rate), cwd, args.hold)
    time.sleep(rampUp + 1)
    cpu, rss, tasks = steady(server, server.pid, window)
    proc.wait(timeout=args.hold + 120)
    whole = processCPU([server.pid]) - total0
    subprocess.call(["pkill", "-f", "sipp -sn uas -i 127.0.0.1 -p %d" % (gwPort,)])
    uas.wait(timeout=10)
    ok, failed = statCounts(cwd)
    return {"test": "gatewaycaller", "calls": args.calls, "ok": ok, "failed": failed,
            "tasks": tasks, "cpu": cpu, "rss": rss, "cpuTotal": whole}


def report(results):
    print()
    print("%-14s %7s %7s %7s %7s %8s %10s %8s %10s %7s" % (
        "test", "calls", "ok", "failed", "tasks", "cpu%", "ms/call", "rss MB", "rtp pps",
        "late"))
    for r in results:
        print("%-14s %7d %7d %7d %7d %8.0f %10.2f %8.0f %10s %7s" % (
            r["test"], r["calls"], r["ok"], r["failed"], r["tasks"], r["cpu"],
            1000.0 * r["cpuTotal"] / max(r["ok"], 1), r["rss"],
            "%.0f" % r["pps"] if "pps" in r else "-",
            "%.2f%%" % (100 * r["late"]) if "late" in r else "-"))
    print("cpu%: cgpro's CPU (one core = 100) with every call up; ms/call: its CPU over the"
          " whole run (set-up, hold, tear-down) per call")
    for r in results:
        if "lateTicks" in r:
            print("%s: %.2f%% of the media server's 20 ms ticks ran a frame time late"
                  " (server side); late packets at the sink: %.2f%%"
                  % (r["test"], 100 * r["lateTicks"], 100 * r["late"]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1500)
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--hold", type=float, default=40)
    parser.add_argument("--only", choices=("attendant", "gatewaycaller"))
    parser.add_argument("--json")
    parser.add_argument("--sink", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sink-base", type=int, default=31000)
    parser.add_argument("--sink-ports", type=int, default=SINK_PORTS, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=float, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--window", type=float, default=10, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        sink(args)
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    server = PinnedServer(extraArgs=["--media-ports", "20000-29999"], startTimeout=60)
    server.start()
    results = []
    try:
        cli = server.client()
        cli.createAccount("bench@main.dom", {"Password": "secret"})
        cli.setRouterTable("<*@pstn> = gatewaycaller{*}#pbx\n")
        if args.only in (None, "attendant"):
            results.append(benchAttendant(args, server))
            time.sleep(5)
        if args.only in (None, "gatewaycaller"):
            results.append(benchGateway(args, server, cli))
    finally:
        server.stop()
        server.cleanup()
    report(results)
    if args.json:
        with open(args.json, "a") as f:
            for r in results:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
