#!/usr/bin/env python3
"""
RTP relay benchmark: cgpro's media relay, the C relay (udpfwd) and
rtpengine side by side in one run, measured with the shared load tool in
../shared/bench/rtp (see its RESULTS.md for the method and the anchor
figures).

It reuses that folder's tools instead of re-implementing them: rtpblast.c
(the load generator, compiled here with gcc into a temporary folder),
bench.py (the searches and the pass criterion: loss <= 0.1 %, p99 one-way
latency <= 20 ms, >= 97 % of the offered rate sent), mkpairs.py (the C
relay's port pairs) and ngclient.py (rtpengine's calls).  Each relay runs
the way run_rtp_bench.sh starts the reference ones: its own session with
autogroup nice -20, nice -20, pinned to core 0; the load tool on core 1.

cgpro's relay runs in a standalone process (this script with C{serve}):
a L{cgpro.media.relay.MediaRelay} with N sessions created through its
Python API on 127.0.0.1..127.0.0.NIPS, ports 30100-30999 on each (the
range the shared harness uses), endpoints latched from the tool's priming
packets, as the other relays do.

Tests (--tests, comma-separated):
  maxpps      max forwarded packets/s over 100 bidirectional streams
  maxstreams  max concurrent calls at 50 pps each direction
  recovery    overload (--overload-pps offered, 5 s), then a light trial
              right after: must pass (no collapse, rtpengine 10.5's failure)
  smoke       10 calls for 3 s (does the setup work at all)
  fixed       250 calls x 3 (CPU per packet at the same load)

Usage (from the checkout):
  python setup.py build_ext --inplace     # or pip install .
  python scripts/bench/bench_rtp.py                       # all relays, maxpps,maxstreams,recovery
  python scripts/bench/bench_rtp.py --relays cgpro --tests smoke
  python scripts/bench/bench_rtp.py --quick --json out.json
rtpengine is measured when the C{rtpengine} command exists
(apt-get install -y --no-install-recommends rtpengine-daemon).
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKOUT = os.path.dirname(os.path.dirname(HERE))
DEFAULT_TOOLS = os.path.normpath(os.path.join(CHECKOUT, "..", "shared", "bench", "rtp"))

#: the reference harness's layout (run_rtp_bench.sh)
RELAY_PORTS = (30100, 30999)
NG = "127.0.0.1:30099"

#: the anchor figures of RESULTS.md (used for goals when a peer is not run)
ANCHOR = {"rtpengine": {"maxpps": 279000, "maxstreams": 1625},
          "udpfwd": {"maxpps": 385000, "maxstreams": 2987}}


# -- the cgpro relay process ------------------------------------------------

def serve(args):
    """
    Run cgpro's relay with C{args.sessions} sessions until SIGTERM; write
    the pairs file (A sends to leg 0's RTP port, B to leg 1's) once ready.
    """
    sys.path.insert(0, CHECKOUT)
    from twisted.internet import epollreactor
    epollreactor.install()
    from twisted.internet import reactor
    from twisted.logger import (FilteringLogObserver, LogLevel, LogLevelFilterPredicate,
                                globalLogBeginner, textFileLogObserver)

    from cgpro.media.relay import MediaRelay

    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    globalLogBeginner.beginLoggingTo([FilteringLogObserver(
        textFileLogObserver(sys.stderr), [LogLevelFilterPredicate(LogLevel.info)])])
    hosts = ["127.0.0.%d" % i for i in range(1, args.nips + 1)]
    relay = MediaRelay(reactor, portRange=RELAY_PORTS, bindAddress=hosts,
                       maxSessions=args.sessions, silenceTimeout=3600,
                       useExtension={"c": True, "py": False}[args.impl],
                       threaded=not args.reactor_thread)
    relay.startService()
    sessions = [relay.allocate("bench-%d" % i) for i in range(args.sessions)]
    tmp = args.pairs_out + ".tmp"
    with open(tmp, "w") as f:
        for s in sessions:
            host = s.localAddress
            f.write("%s:%d %s:%d\n" % (host, s.ports[0][0], host, s.ports[1][0]))
    os.rename(tmp, args.pairs_out)

    def report():
        stats = relay.stats()
        print("cgpro relay: " + json.dumps({k: stats[k] for k in (
            "implementation", "sessions", "packets", "forwarded", "dropped")}),
            file=sys.stderr, flush=True)

    reactor.addSystemEventTrigger("before", "shutdown", report)
    reactor.addSystemEventTrigger("before", "shutdown", relay.stopService)
    print("cgpro relay: %d sessions on %s, %s loop" % (len(sessions), ",".join(hosts),
                                                         relay.implementation),
          file=sys.stderr, flush=True)
    reactor.run()


# -- harness ----------------------------------------------------------------

def ownSession():
    """
    preexec_fn: top scheduler weight for the new session's autogroup, as
    run_rtp_bench.sh does (other tenants' processes otherwise dominate).
    """
    try:
        with open("/proc/self/autogroup", "w") as f:
            f.write("-20")
    except OSError:
        pass


class Harness:
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="cgpro-rtpbench-")
        self.summary = os.path.join(self.tmp, "summary.jsonl")
        self.trials = os.path.join(self.tmp, "trials.jsonl")
        self.relay = None
        self.results = {}

    def tool(self, name):
        return os.path.join(self.args.tool_dir, name)

    def build(self):
        for name in ("rtpblast", "udpfwd"):
            subprocess.run(["gcc", "-O2", "-Wall", "-o", os.path.join(self.tmp, name),
                            self.tool(name + ".c"), "-lm"], check=True)

    def popen(self, cmd, log):
        prio = self.args.prio
        prefix = ["nice", "-n", "-20"] if prio else []
        return subprocess.Popen(prefix + ["taskset", "-c", str(self.args.relay_cpu)] + cmd,
                                stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True,
                                preexec_fn=ownSession if prio else None)

    def start(self, name):
        """
        Start relay C{name}.

        @return: C{(pairs file, reset command or None)}, or C{None} if it
            cannot run here.
        """
        a = self.args
        pairs = os.path.join(self.tmp, "pairs_%s.txt" % name)
        log = open(os.path.join(self.tmp, "relay_%s.log" % name), "w")
        reset = None
        if name == "cgpro":
            cmd = [sys.executable, os.path.abspath(__file__), "serve", "--sessions",
                   str(a.sessions), "--nips", str(a.nips), "--pairs-out", pairs, "--impl", a.impl]
            if a.reactor_thread:
                cmd.append("--reactor-thread")
            self.relay = self.popen(cmd, log)
            deadline = time.monotonic() + 120
            while not os.path.exists(pairs):
                if self.relay.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("cgpro relay failed to start:\n" + open(log.name).read())
                time.sleep(0.2)
        elif name == "udpfwd":
            hosts = ",".join("127.0.0.%d" % i for i in range(1, a.nips + 1))
            with open(pairs, "w") as f:
                subprocess.run([sys.executable, self.tool("mkpairs.py"), "--n",
                                str(450 * a.nips), "--hosts", hosts], stdout=f, check=True)
            self.relay = self.popen([os.path.join(self.tmp, "udpfwd"), "--pairs", pairs], log)
            time.sleep(1)
        elif name == "rtpengine":
            if not shutil.which("rtpengine"):
                print("rtpengine: not installed, skipped (apt-get install -y "
                      "--no-install-recommends rtpengine-daemon)", flush=True)
                return None
            nips = min(a.nips, 10)
            ifaces = ["--interface=i%d/127.0.0.%d" % (i - 1, i) for i in range(1, nips + 1)]
            self.relay = self.popen(
                ["rtpengine", "--config-file=none", "--foreground", "--log-stderr",
                 "--log-level=4", "--table=-1"] + ifaces +
                ["--listen-ng=" + NG, "--port-min=30100", "--port-max=30999",
                 "--num-threads=1", "--timeout=3600", "--silent-timeout=3600",
                 "--offer-timeout=3600", "--delete-delay=0"], log)
            time.sleep(1)
            subprocess.run([sys.executable, self.tool("ngclient.py"), "--ng", NG, "ping"],
                           check=True, stdout=subprocess.DEVNULL)
            # as run_rtp_bench.sh: re-create the calls after a lossy trial
            # (rtpengine 10.5 can stop reading overflowed sockets for good)
            reset = ("%s %s --ng %s recreate --calls %d --ifaces %d --calls-per-iface 220 "
                     "--tag rtpb%d --tag-file %s --out %s" % (
                         sys.executable, self.tool("ngclient.py"), NG, 220 * nips, nips,
                         os.getpid(), os.path.join(self.tmp, "rtpe_tag"), pairs))
            subprocess.run(reset, shell=True, check=True, stdout=subprocess.DEVNULL)
        else:
            raise SystemExit("unknown relay %r" % (name,))
        if self.relay.poll() is not None:
            raise SystemExit("%s exited:\n%s" % (name, open(log.name).read()))
        return pairs, reset

    def stop(self):
        if self.relay is not None:
            self.relay.send_signal(signal.SIGTERM)
            try:
                self.relay.wait(30)
            except subprocess.TimeoutExpired:
                self.relay.kill()
                self.relay.wait()
            self.relay = None

    def bench(self, name, pairs, reset, test, extra=()):
        """
        Run ../shared/bench/rtp/bench.py once.

        @return: its SUMMARY (C{dict}) or C{None}.
        """
        a = self.args
        cmd = [sys.executable, self.tool("bench.py"),
               "--rtpblast", os.path.join(self.tmp, "rtpblast"),
               "--pairs", pairs, "--relay-pid", str(self.relay.pid), "--name", name,
               "--blaster-cpu", str(a.blaster_cpu), "--log", self.trials,
               "--summary", self.summary, "--nice", "-20" if a.prio else "0"]
        if reset:
            cmd += ["--reset-cmd", reset]
        if a.quick:
            cmd += ["--dur", "3", "--confirm-dur", "5", "--repeats", "1"]
        cmd += a.bench_args.split()
        if test == "maxpps":
            cmd += ["maxpps", "--streams", "100", "--start", str(a.pps_start)]
        elif test == "maxstreams":
            cmd += ["maxstreams", "--start", str(a.streams_start)]
        elif test == "smoke":
            cmd += ["--confirm-dur", "3", "--repeats", "1", "run", "--mode", "real",
                    "--streams", "10"]
        elif test == "fixed":
            cmd += ["run", "--mode", "real", "--streams", str(a.fixed_streams)]
        else:
            cmd += list(extra)
        print("== %s %s" % (name, test), flush=True)
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, bufsize=1,
                             start_new_session=True, preexec_fn=ownSession if a.prio else None)
        summary = None
        for line in p.stdout:
            line = line.rstrip("\n")
            print("  " + line if not line.startswith("  ") else line, flush=True)
            if line.startswith("SUMMARY "):
                summary = json.loads(line[len("SUMMARY "):])
        p.wait()
        return summary

    def recovery(self, name, pairs, reset):
        """
        Overload, then a light trial at once: it must pass.
        """
        a = self.args
        over = self.bench(name, pairs, None, "overload",
                          ["--confirm-dur", "5", "--repeats", "1", "--no-retry", "run",
                           "--mode", "rate", "--rate", str(a.overload_pps), "--streams", "100"])
        # no reset hook here: the light trial must pass on the same state
        light = self.bench(name, pairs, None, "after-overload",
                           ["--confirm-dur", "5", "--repeats", "1", "run", "--mode", "rate",
                            "--rate", str(a.light_pps), "--streams", "100"])
        if reset:
            subprocess.run(reset, shell=True, check=False, stdout=subprocess.DEVNULL)
        if not over or not light:
            return None
        return {"overload_offered": a.overload_pps, "overload_recv_pps": over["recv_pps_med"],
                "overload_loss_pct": over["loss_pct_med"], "light_pps": a.light_pps,
                "light_loss_pct": light["loss_pct_med"], "light_p99_us": light["p99_us_med"],
                "recovered": light["loss_pct_med"] <= 0.1 and light["p99_us_med"] <= 20000}

    def run(self):
        a = self.args
        self.build()
        relays = a.relays.split(",")
        tests = a.tests.split(",")
        for name in relays:
            started = self.start(name)
            if started is None:
                continue
            pairs, reset = started
            label = "cgpro-%s" % a.impl if name == "cgpro" else name
            try:
                for test in tests:
                    if test == "recovery":
                        result = self.recovery(label, pairs, reset)
                    else:
                        result = self.bench(label, pairs, reset, test)
                    self.results.setdefault(name, {})[test] = result
            finally:
                self.stop()
        self.report()

    def report(self):
        """
        Print one table: a row per test, a column per relay, then
        cgpro's ratio to each peer and the goals.
        """
        a = self.args
        res = self.results
        names = [n for n in ("cgpro", "udpfwd", "rtpengine") if n in res]
        peers = [n for n in names if n != "cgpro"]
        print()
        print("RTP relay benchmark, %s UTC, load average %s at the end (relay on core %s, "
              "load tool on core %s)" % (time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
                                         open("/proc/loadavg").read().split()[0],
                                         a.relay_cpu, a.blaster_cpu))
        print("%-26s" % "" + "".join("%-32s" % ("cgpro (%s loop)" % a.impl if n == "cgpro" else n)
                                     for n in names)
              + "".join("%-16s" % ("cgpro/" + p) for p in peers))
        for test in a.tests.split(","):
            row = "%-26s" % TEST_LABELS.get(test, test)
            row += "".join("%-32s" % cell(test, res[n].get(test)) for n in names)
            row += "".join("%-16s" % ratio(test, res.get("cgpro", {}).get(test), res[p].get(test))
                           for p in peers)
            print(row)
            if test in ("maxpps", "maxstreams") and (res.get("cgpro") or {}).get(test):
                print("%-26s%s" % ("", goal(test, {n: res[n][test]["point"] for n in names
                                                   if res[n].get(test)})))
        print("ratios: maxpps/maxstreams cgpro's figure / the peer's; fixed/smoke the peer's "
              "CPU us per packet / cgpro's (above 1: cgpro does better)")
        print("trials: %s" % self.trials)
        if a.json:
            with open(a.json, "w") as f:
                json.dump(res, f, indent=2)


TEST_LABELS = {"maxpps": "max pps (100 streams)", "maxstreams": "max calls (50 pps)",
               "smoke": "smoke (10 calls)", "fixed": "fixed load",
               "recovery": "recovers after overload"}


def cell(test, s):
    """
    @return: one relay's result for one test, as text.
    """
    if not s:
        return "-"
    if test == "recovery":
        return "%s (loss %.2f%%)" % ("yes" if s["recovered"] else "NO", s["light_loss_pct"])
    figure = ("{:,}".format(int(s["point"])) if test in ("maxpps", "maxstreams")
              else "%.0f pps" % s["recv_pps_med"])
    cost = s.get("relay_us_per_pkt_med")
    return "%s p99 %.1fms%s" % (figure, s["p99_us_med"] / 1000.0,
                                " %.2fus/pkt" % cost if cost else "")


def ratio(test, ours, theirs):
    """
    @return: cgpro's ratio to a peer for one test, as text.
    """
    if not ours or not theirs or test == "recovery":
        return "-"
    if test in ("maxpps", "maxstreams"):
        return "%.2f" % (ours["point"] / theirs["point"])
    if ours.get("relay_us_per_pkt_med") and theirs.get("relay_us_per_pkt_med"):
        return "%.2f" % (theirs["relay_us_per_pkt_med"] / ours["relay_us_per_pkt_med"])
    return "-"


def goal(test, points):
    """
    The issue's goals: at least rtpengine's figure and 0.8 x the C relay's,
    both from this run when measured.  A missing rtpengine figure is the
    RESULTS.md anchor scaled by this run's udpfwd over its anchor (the
    box's speed varies with the other tenants).

    @return: the goal line for one test.
    """
    note = []
    if "udpfwd" in points:
        scale = points["udpfwd"] / ANCHOR["udpfwd"][test]
        c = 0.8 * points["udpfwd"]
    else:
        scale = 1.0
        c = 0.8 * ANCHOR["udpfwd"][test]
        note.append("C relay from RESULTS.md")
    if "rtpengine" in points:
        rtpe = points["rtpengine"]
    else:
        rtpe = ANCHOR["rtpengine"][test] * scale
        note.append("rtpengine = RESULTS.md x %.2f" % scale)
    target = max(rtpe, c)
    return "goal >= %s (rtpengine %s, 0.8 x C relay %s%s): %s" % (
        "{:,}".format(int(target)), "{:,}".format(int(rtpe)), "{:,}".format(int(c)),
        "; " + ", ".join(note) if note else "",
        "MET" if points["cgpro"] >= target else "not met")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd")
    s = sub.add_parser("serve", help="(internal) run cgpro's relay")
    s.add_argument("--sessions", type=int, required=True)
    s.add_argument("--nips", type=int, default=12)
    s.add_argument("--pairs-out", required=True)
    s.add_argument("--impl", choices=["c", "py"], default="c")
    s.add_argument("--reactor-thread", action="store_true")
    ap.add_argument("--relays", default="cgpro,udpfwd,rtpengine",
                    help="comma-separated, measured in this order (rtpengine only if installed)")
    ap.add_argument("--tests", default="maxpps,maxstreams,recovery",
                    help="comma-separated: maxpps, maxstreams, recovery, smoke, fixed")
    ap.add_argument("--impl", choices=["c", "py"], default="c",
                    help="cgpro's loop: c (the extension) or py (the fallback)")
    ap.add_argument("--reactor-thread", action="store_true",
                    help="run cgpro's C loop in the reactor thread instead of its own")
    ap.add_argument("--nips", type=int, default=12,
                    help="loopback addresses 127.0.0.1..N, ports 30100-30999 on each "
                         "(12: 2,700 cgpro calls with RTCP ports; rtpengine uses at most 10)")
    ap.add_argument("--sessions", type=int, default=0, help="cgpro sessions (default: 225 x nips)")
    ap.add_argument("--tool-dir", default=DEFAULT_TOOLS)
    ap.add_argument("--relay-cpu", default="0")
    ap.add_argument("--blaster-cpu", default="1")
    ap.add_argument("--no-prio", dest="prio", action="store_false",
                    help="do not take autogroup/nice -20 (kinder to other tenants, noisier)")
    ap.add_argument("--quick", action="store_true", help="3 s trials, 1 confirmation of 5 s")
    ap.add_argument("--pps-start", type=int, default=20000)
    ap.add_argument("--streams-start", type=int, default=100)
    ap.add_argument("--fixed-streams", type=int, default=250)
    ap.add_argument("--overload-pps", type=int, default=800000)
    ap.add_argument("--light-pps", type=int, default=20000)
    ap.add_argument("--bench-args", default="", help="extra bench.py arguments")
    ap.add_argument("--json", help="write the summaries here")
    args = ap.parse_args()
    if args.cmd == "serve":
        return serve(args)
    if not args.sessions:
        args.sessions = 225 * args.nips
    Harness(args).run()


if __name__ == "__main__":
    main()
