#!/usr/bin/env python3
"""
SIP benchmark: cgpro next to Kamailio 5.6, one after the other in one run.

Both servers get the same load from the shared SIPp driver
(``../shared/bench/sip/run_sipp_bench.sh``), pinned like RESULTS.md there:
the server under test on core 0, every sipp on core 1, loopback UDP.

- reg_noauth: REGISTER -> 200 (10,000 users, cycling)
- reg_auth:   REGISTER -> 401 -> REGISTER with digest -> 200
- call:       INVITE -> 100/180/200 -> ACK -> 1 s hold -> BYE -> 200,
              uac -> server -> uas (the callee ``uas`` registered first)

For each test the best passing rate is searched with a short ramp (or
taken from ``--rates``) and confirmed by a full-length run, with the pass
criterion of RESULTS.md (the very ``verdict`` of ``ramp_kamailio.py``):
< 0.1 % failed, >= 97 % of the offered rate, no sustained or growing
retransmissions.  Figures per test: rate of both servers, the ratio,
server CPU per operation (process CPU / steady successes), cgpro's RSS,
and the foreign CPU load seen during the run.  Then a memory figure:
cgpro's RSS holding 100,000 registered contacts.

A benchmark, not a test: it prints a table and writes JSON lines
(``--json``); it never fails on a missed goal.

    python scripts/bench/bench_sip.py [--quick] [--json sip.jsonl]
"""

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)
from procstat import rssMB  # noqa: E402

from tests.support.server import ServerProcess  # noqa: E402

SHARED = os.environ.get("CGPRO_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))
SIPBENCH = os.path.join(SHARED, "bench", "sip")
KAMAILIO = os.path.join(SIPBENCH, "kamailio")
SCENARIOS = os.path.join(SIPBENCH, "scenarios")
sys.path.insert(0, KAMAILIO)
from ramp_kamailio import verdict  # noqa: E402  (the RESULTS.md pass criterion)

TESTS = ("reg_noauth", "reg_auth", "call")
#: Kamailio's best points and CPU per op from RESULTS.md (1 core, idle box).
KAMAILIO_PUBLISHED = {"reg_noauth": (27000, 27), "reg_auth": (18000, 44), "call": (2200, 390)}
PASSWORD = "secret"
SERVER_CORE = "0"
SIPP_CORE = "1"


class PinnedServer(ServerProcess):
    """
    A L{ServerProcess} whose twistd (every thread) runs on one core, like
    Kamailio in RESULTS.md.
    """

    def command(self):
        argv, env = ServerProcess.command(self)
        return ["taskset", "-c", SERVER_CORE] + argv, env


def log(text):
    sys.stderr.write("%s %s\n" % (time.strftime("%H:%M:%S"), text))
    sys.stderr.flush()


# -- one measurement -----------------------------------------------------------

def runPoint(test, rate, port, serverPid, outDir, duration, users, env=None):
    """
    Run one C{run_sipp_bench.sh} measurement and judge it.

    @return: the summary dict of benchutil.py plus C{pass} and the
        verdict's figures, or C{None} if the driver produced nothing.
    """
    rates = {"reg_noauth": (rate, 1, 1), "reg_auth": (1, rate, 1), "call": (1, 1, rate)}[test]
    out = os.path.join(outDir, "%s-%d-%s" % (test, rate, time.strftime("%H%M%S")))
    os.makedirs(out, exist_ok=True)
    runEnv = dict(os.environ, TESTS=test, OUT=out, DURATION=str(duration), SIPP_CPU=SIPP_CORE,
                  SERVER_PID=str(serverPid), PASSWORD=PASSWORD, NUSERS=str(users))
    runEnv.update(env or {})
    p = subprocess.run([os.path.join(SIPBENCH, "run_sipp_bench.sh"), "127.0.0.1", str(port)]
                       + [str(r) for r in rates], env=runEnv, capture_output=True, text=True,
                       timeout=duration + 120)
    try:
        with open(os.path.join(out, "summary.jsonl")) as f:
            r = json.loads(f.read().strip().splitlines()[-1])
    except (OSError, IndexError, ValueError):
        log("%s at %d/s: no result\n%s\n%s" % (test, rate, p.stdout[-2000:], p.stderr[-2000:]))
        return None
    r["pass"] = verdict(r)
    r["dir"] = out
    cpu = r.get("cpu") or {}
    r["server_cpu_pct"] = (cpu.get("labels") or {}).get("server")
    r["other_pct"] = cpu.get("other_pct")
    r["server_us_per_op"] = cpu.get("server_us_per_call")
    log("  %s %6d/s %s ok/s=%s failed=%s retrans=%s (periods %s%%) server=%s%% us/op=%s other=%s%%"
        % (test, rate, "PASS" if r["pass"] else "FAIL", r["steady_ok_per_s_median"],
           r["failed"], r["retrans"], r.get("retrans_periods_pct"), r["server_cpu_pct"],
           r["server_us_per_op"], r["other_pct"]))
    return r


def findBest(test, measure, start, confirmDuration, rampDuration, fixed=None, maxSteps=8):
    """
    Find the best passing rate: geometric ramp (x1.5) with short runs from
    C{start} until a run fails, one bisection between the last pass and the
    first failure, then a confirming full-length run at the best rate
    (stepping down by 15 % while it fails, at most twice).

    @param measure: C{measure(rate, duration)} -> result dict or None.
    @param fixed: a rate to run at full length instead of searching
        (with the same step-down when it fails).
    @return: C{(best result or None, every result)}.
    """
    runs = []

    def one(rate, duration):
        r = measure(rate, duration)
        if r is not None:
            r["phase"] = "confirm" if duration == confirmDuration else "ramp"
            runs.append(r)
        return r

    if fixed is not None:
        candidates = [fixed, int(fixed * 0.85), int(fixed * 0.72)]
    else:
        good, bad, rate = None, None, start
        for _ in range(maxSteps):
            r = one(rate, rampDuration)
            if r is not None and r["pass"]:
                good = rate
                rate = int(rate * 1.5)
            else:
                bad = rate
                break
        if good is None and (r is None or (r.get("fail_pct") or 0) > 50):
            # most calls failed at a low rate: broken, not overloaded
            log("  %s: %s%% failed at %d/s, not searching further"
                % (test, None if r is None else r.get("fail_pct"), start))
            return None, runs
        if good is None:
            # even the start rate failed: go down instead
            rate = start
            for _ in range(4):
                rate = max(10, int(rate / 2))
                r = one(rate, rampDuration)
                if r is not None and r["pass"]:
                    good = rate
                    break
            if good is None:
                return None, runs
        elif bad is not None:
            mid = int((good + bad) / 2)
            if mid > good * 1.05:
                r = one(mid, rampDuration)
                if r is not None and r["pass"]:
                    good = mid
        candidates = [good, int(good * 0.85), int(good * 0.72)]
    for rate in candidates:
        r = one(rate, confirmDuration)
        if r is not None and r["pass"]:
            return r, runs
    return None, runs


# -- cgpro ---------------------------------------------------------------------

def provision(server, users, workers=8):
    """
    Create user0000.. (C{users} accounts) and uas with the password
    PASSWORD over C{workers} CLI connections.
    """
    names = ["user%04d" % i for i in range(users)] + ["uas"]
    errors = []

    def work(part):
        try:
            with server.client() as cli:
                for name in part:
                    cli.createAccount(name, {"Password": PASSWORD})
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(names[i::workers],)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit("provisioning failed: %r" % (errors[0],))
    return len(names)


def configure(server, requireAuth):
    """
    Set the SIP module's RequireRegisterAuth and restart (the stack reads
    its settings at start).
    """
    with server.client() as cli:
        cli.command("UPDATEMODULE", "SIP",
                    {"RequireRegisterAuth": "YES" if requireAuth else "NO"})
    server.restart()


def fillContacts(server, rate, total, users, outDir):
    """
    Register C{total} distinct contacts: the C{users} users from sipp on
    C{total / users} different local ports (Contact
    C{sip:userNNNN@127.0.0.1:PORT}), so each account holds that many
    bindings (10 for 100,000 contacts over 10,000 users: the default
    MaxContactsPerAccount).

    @return: the number of successful registrations.
    """
    csv = os.path.join(outDir, "fill-users.csv")
    with open(csv, "w") as f:
        subprocess.run([os.path.join(SCENARIOS, "gen_users.sh"), str(users), "127.0.0.1"],
                       stdout=f, check=True)
    ok = 0
    for i in range(total // users):
        port = 17000 + i
        stat = os.path.join(outDir, "fill-%d.csv" % port)
        cmd = ["taskset", "-c", SIPP_CORE, "sipp", "127.0.0.1:%d" % server.sipPort,
               "-sf", os.path.join(SCENARIOS, "register_noauth.xml"), "-inf", csv,
               "-p", str(port), "-i", "127.0.0.1", "-r", str(rate), "-m", str(users),
               "-l", "5000", "-nostdin", "-recv_timeout", "10000", "-buff_size", "1048576",
               "-timeout", "%ds" % (users // max(1, rate) + 60), "-trace_stat", "-fd", "5",
               "-stf", stat]
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=users // max(1, rate) + 90)
        try:
            with open(stat) as f:
                lines = [l.split(";") for l in f.read().splitlines() if l.strip()]
            row = dict(zip(lines[0], lines[-1]))
            ok += int(row.get("SuccessfulCall(C)", 0))
        except (OSError, IndexError, ValueError):
            pass
        log("  fill port %d: %d registrations ok so far, RSS %.1f MB"
            % (port, ok, rssMB([server.pid])))
    return ok


def _bindingsLoaded(server):
    """
    @return: C{(bindings, AORs)} the location service loaded at the last
        start, from the server's log line, or C{(None, None)}.
    """
    loaded = re.findall(r"location: (\d+) bindings loaded for (\d+) AORs", server.log())
    return tuple(map(int, loaded[-1])) if loaded else (None, None)


def benchCgpro(args, outDir):
    results = {}
    server = PinnedServer(domain="sipbench.test", startTimeout=120)
    server.sipPort = None
    server.start()
    try:
        server.sipPort = 5060 + server.offset
        with server.client() as cli:
            # PBKDF2 rounds are read at start: 1,000 rounds make 10,001
            # {Password} creations take seconds instead of minutes.  The SIP
            # digest check uses the stored HA1 and never PBKDF2, so this
            # does not change what REGISTER costs.
            cli.command("UPDATESERVERSETTINGS", {"PasswordHashRounds": str(args.hash_rounds)})
            # Kamailio has alias=127.0.0.1:5060: sip:userNNNN@127.0.0.1 is
            # local there; here the To of a REGISTER must name a local
            # domain, so 127.0.0.1 becomes an alias of the Main Domain.
            cli.command("SETDOMAINALIASES", server.domain, ["127.0.0.1"])
            settings = {"RequireRegisterAuth": "NO"}
            # the fill puts contacts/users bindings in every account, next
            # to the one the reg_noauth runs left (sipp's port 16010)
            perAccount = -(-args.contacts // args.users)
            settings["MaxContactsPerAccount"] = str(max(10, perAccount + 1))
            cli.command("UPDATEMODULE", "SIP", settings)
        server.restart()
        t0 = time.monotonic()
        count = provision(server, args.users)
        results["provision"] = {"accounts": count, "seconds": round(time.monotonic() - t0, 1),
                                "hash_rounds": args.hash_rounds}
        log("cgpro: %d accounts in %.1f s (PasswordHashRounds=%d), SIP on udp %d, pid %d"
            % (count, time.monotonic() - t0, args.hash_rounds, server.sipPort, server.pid))

        def measureWith(test):
            def measure(rate, duration):
                server.restart()  # fresh transaction state, like FRESH=1 for Kamailio
                time.sleep(1)
                r = runPoint(test, rate, server.sipPort, server.pid,
                             os.path.join(outDir, "cgpro"), duration, args.users)
                if r is not None:
                    r["server_rss_mb"] = round(rssMB([server.pid]), 1)
                return r
            return measure

        for test in ("reg_noauth", "call", "reg_auth"):
            if test not in args.tests:
                continue
            if test == "reg_auth":
                configure(server, True)
            log("cgpro %s" % (test,))
            best, runs = findBest(test, measureWith(test), args.start[test], args.duration,
                                  args.ramp_duration, fixed=args.rates.get(test))
            results[test] = {"best": best, "runs": runs}
        if args.contacts:
            configure(server, False)
            time.sleep(1)
            rss0 = rssMB([server.pid])
            before = _bindingsLoaded(server)
            rate = args.fill_rate or max(200, int(0.8 * ((results.get("reg_noauth") or {}).get("best") or {}).get("rate", 500)))
            log("cgpro: registering %d contacts at %d/s" % (args.contacts, rate))
            t0 = time.monotonic()
            # the reg_noauth runs left one binding per user (port 16010)
            missing = max(0, args.contacts - (before[0] or 0))
            ok = fillContacts(server, rate, -(-missing // args.users) * args.users,
                              args.users, outDir)
            mem = results["memory"] = {
                "contacts_registered": ok, "fill_rate": rate,
                "seconds": round(time.monotonic() - t0, 1), "rss_before_mb": round(rss0, 1),
                "rss_mb": round(rssMB([server.pid]), 1)}
            # completed non-INVITE server transactions live 32 s (Timer J)
            time.sleep(args.settle)
            mem["rss_settled_mb"] = round(rssMB([server.pid]), 1)
            t0 = time.monotonic()
            server.restart()
            mem["restart_s"] = round(time.monotonic() - t0, 1)
            time.sleep(1)
            mem["rss_after_restart_mb"] = round(rssMB([server.pid]), 1)
            mem["bindings_before"] = before[0]
            mem["bindings_loaded"], mem["aors_loaded"] = _bindingsLoaded(server)
    finally:
        if args.keep:
            log("cgpro base folder kept: %s" % (server.base,))
        server.keep = args.keep
        server.cleanup()
    return results


# -- Kamailio ------------------------------------------------------------------

def kamailioPid():
    try:
        with open(os.path.join(KAMAILIO, "run", "kamailio.pid")) as f:
            pid = int(f.read().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def stopKamailio():
    pid = kamailioPid()
    if pid is None:
        return
    os.kill(pid, 15)
    for _ in range(20):
        if kamailioPid() is None:
            break
        time.sleep(0.5)
    try:
        os.unlink(os.path.join(KAMAILIO, "run", "kamailio.pid"))
    except OSError:
        pass


def startKamailio(mode):
    stopKamailio()
    subprocess.run([os.path.join(KAMAILIO, "start_kamailio.sh"), mode, SERVER_CORE],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
    pid = kamailioPid()
    if pid is None:
        raise SystemExit("kamailio did not start (see %s/run/)" % (KAMAILIO,))
    return pid


def benchKamailio(args, outDir):
    if kamailioPid() is not None:
        log("a Kamailio from someone else is running (%s): not measuring the peer"
            % (os.path.join(KAMAILIO, "run", "kamailio.pid"),))
        return None
    results = {}
    try:
        for test in ("reg_noauth", "call", "reg_auth"):
            if test not in args.tests:
                continue
            mode = "auth" if test == "reg_auth" else "noauth"

            def measure(rate, duration, test=test, mode=mode):
                pid = startKamailio(mode)  # fresh per run (bench_kamailio.sh FRESH=1)
                return runPoint(test, rate, 15060, pid, os.path.join(outDir, "kamailio"), duration,
                                args.users)

            log("Kamailio %s" % (test,))
            rate = args.kamailio_rates.get(test, KAMAILIO_PUBLISHED[test][0])
            best, runs = findBest(test, measure, rate, args.duration, args.ramp_duration,
                                  fixed=rate)
            results[test] = {"best": best, "runs": runs}
    finally:
        stopKamailio()
    return results


# -- report --------------------------------------------------------------------

def fmt(value, spec="%.0f"):
    return "-" if value is None else spec % value


def report(args, results):
    cg, ka = results.get("cgpro") or {}, results.get("kamailio") or {}
    print()
    print("SIP over loopback UDP, server on core 0, sipp on core 1; best passing rate "
          "(< 0.1 %% failed, >= 97 %% of offered, no sustained retransmissions), %d s runs"
          % (args.duration,))
    hdr = ("test", "cgpro /s", "Kamailio /s", "ratio", "cgpro us/op", "Kam. us/op",
           "cgpro RSS", "other% cg/ka")
    print("%-11s %9s %11s %7s %11s %10s %9s %13s" % hdr)
    rows = []
    for test in TESTS:
        if test not in args.tests:
            continue
        c = (cg.get(test) or {}).get("best") or {}
        k = (ka.get(test) or {}).get("best") or {}
        cr, kr = c.get("steady_ok_per_s_median"), k.get("steady_ok_per_s_median")
        ratio = cr / kr if cr and kr else None
        row = {"record": "sip_test", "test": test,
               "cgpro_rate": c.get("rate"), "cgpro_ok_per_s": cr,
               "cgpro_us_per_op": c.get("server_us_per_op"), "cgpro_cpu_pct": c.get("server_cpu_pct"),
               "cgpro_rss_mb": c.get("server_rss_mb"), "cgpro_other_pct": c.get("other_pct"),
               "kamailio_rate": k.get("rate"), "kamailio_ok_per_s": kr,
               "kamailio_us_per_op": k.get("server_us_per_op"),
               "kamailio_cpu_pct": k.get("server_cpu_pct"), "kamailio_other_pct": k.get("other_pct"),
               "ratio": round(ratio, 4) if ratio else None,
               "kamailio_published": KAMAILIO_PUBLISHED[test]}
        rows.append(row)
        print("%-11s %9s %11s %7s %11s %10s %9s %13s" % (
            test, fmt(cr), fmt(kr), fmt(ratio, "%.3f"), fmt(row["cgpro_us_per_op"]),
            fmt(row["kamailio_us_per_op"]), fmt(row["cgpro_rss_mb"], "%.0f MB"),
            "%s/%s" % (fmt(row["cgpro_other_pct"]), fmt(row["kamailio_other_pct"]))))
    for test in TESTS:
        if test in args.tests:
            rate, us = KAMAILIO_PUBLISHED[test]
            print("  Kamailio RESULTS.md %-10s %6d/s, %d us/op" % (test, rate, us))
    mem = cg.get("memory")
    if mem:
        bindings = mem.get("bindings_loaded")
        per = None
        if bindings and bindings > (mem.get("bindings_before") or 0):
            per = (1024.0 * 1024 * (mem["rss_after_restart_mb"] - mem["rss_before_mb"])
                   / (bindings - (mem.get("bindings_before") or 0)))
        mem["bytes_per_binding"] = round(per) if per is not None else None
        print("cgpro memory: %d fill REGISTERs ok at %d/s (%d users x %d sipp ports); "
              "%s bindings for %s AORs after it (%s before)" % (
                  mem["contacts_registered"], mem["fill_rate"], args.users,
                  mem["contacts_registered"] // args.users, fmt(bindings), fmt(mem.get("aors_loaded")),
                  fmt(mem.get("bindings_before"))))
        print("  RSS %.1f MB before the fill, %.1f MB right after it, %.1f MB %.0f s later, "
              "%.1f MB after a restart that reloaded them in %.1f s (~%s bytes per binding)" % (
                  mem["rss_before_mb"], mem["rss_mb"], mem["rss_settled_mb"], args.settle,
                  mem["rss_after_restart_mb"], mem["restart_s"], fmt(per)))
    print(results["machine"])
    if args.json:
        with open(args.json, "a") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
            if mem:
                f.write(json.dumps(dict(mem, record="sip_memory")) + "\n")
            for server in ("cgpro", "kamailio"):
                for test in TESTS:
                    for r in ((results.get(server) or {}).get(test) or {}).get("runs", []):
                        keep = {k: r.get(k) for k in (
                            "test", "rate", "phase", "pass", "steady_ok_per_s_median", "failed",
                            "fail_pct", "retrans", "retrans_periods_pct", "server_cpu_pct",
                            "server_us_per_op", "other_pct", "server_rss_mb", "rtd_avg_ms",
                            "rtd_p99_bucket", "dir")}
                        f.write(json.dumps(dict(keep, record="sip_run", server=server)) + "\n")


def parseRates(text):
    rates = {}
    for item in (text or "").split(","):
        if item.strip():
            name, _, value = item.partition("=")
            if name.strip() not in TESTS:
                raise SystemExit("unknown test %r in rates" % (name,))
            rates[name.strip()] = int(value)
    return rates


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 1,000 users, fixed low rates, 8 s runs, 10,000 contacts")
    ap.add_argument("--tests", default=",".join(TESTS), help="comma-separated subset")
    ap.add_argument("--rates", default="",
                    help="cgpro rates instead of a ramp, e.g. reg_noauth=800,reg_auth=400,call=100")
    ap.add_argument("--start", default="reg_noauth=300,reg_auth=150,call=50",
                    help="first rate of cgpro's ramp per test")
    ap.add_argument("--kamailio-rates", default="",
                    help="Kamailio rates (default: the RESULTS.md best points)")
    ap.add_argument("--duration", type=int, default=20, help="seconds per confirming run")
    ap.add_argument("--ramp-duration", type=int, default=10, help="seconds per ramp run")
    ap.add_argument("--contacts", type=int, default=100000,
                    help="registered contacts for the memory figure (0: skip)")
    ap.add_argument("--settle", type=float, default=40.0,
                    help="seconds between the fill and the settled RSS reading")
    ap.add_argument("--fill-rate", type=int, default=0, help="REGISTER/s of the fill")
    ap.add_argument("--users", type=int, default=10000,
                    help="accounts user0000.. the sipp users cycle through (as RESULTS.md)")
    ap.add_argument("--hash-rounds", type=int, default=1000,
                    help="PasswordHashRounds of the benchmark server (provisioning speed)")
    ap.add_argument("--no-peer", action="store_true", help="measure cgpro only")
    ap.add_argument("--no-cgpro", action="store_true", help="measure Kamailio only")
    ap.add_argument("--keep", action="store_true", help="keep cgpro's base folder and sipp output")
    ap.add_argument("--json", default=None, help="append the results as JSON lines")
    args = ap.parse_args()
    args.tests = [t.strip() for t in args.tests.split(",") if t.strip()]
    args.rates = parseRates(args.rates)
    args.start = parseRates(args.start)
    args.kamailio_rates = parseRates(args.kamailio_rates)
    if args.quick:
        args.duration = args.ramp_duration = 8
        for test, rate in (("reg_noauth", 300), ("reg_auth", 150), ("call", 30)):
            args.rates.setdefault(test, rate)
            args.kamailio_rates.setdefault(test, rate)
        args.contacts = min(args.contacts, 10000)
        args.users = min(args.users, 1000)
    for tool in ("sipp", "kamailio", "taskset"):
        if shutil.which(tool) is None and not (tool == "kamailio" and args.no_peer):
            raise SystemExit("%s is not installed (apt-get install sip-tester kamailio)" % (tool,))

    outDir = tempfile.mkdtemp(prefix="cgpro-sipbench-")
    results = {"machine": "%s, %d CPUs, Python %s" % (platform.platform(), os.cpu_count(),
                                                      platform.python_version())}
    try:
        if not args.no_cgpro:
            results["cgpro"] = benchCgpro(args, outDir)
        if not args.no_peer:
            results["kamailio"] = benchKamailio(args, outDir)
        report(args, results)
    finally:
        if args.keep:
            log("sipp output kept in %s" % (outDir,))
        else:
            shutil.rmtree(outDir, ignore_errors=True)


if __name__ == "__main__":
    main()
