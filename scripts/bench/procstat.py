"""
Process figures the mail benchmarks share: CPU time and RSS from /proc,
and the peer's processes (the cgroup peer_ctl.sh puts Postfix and Dovecot
in, so unrelated processes are never counted).
"""

import os
import subprocess

PEER_CGROUP = "/sys/fs/cgroup/cpuacct/mailbench_srv/cpuacct.usage"


def processCPU(pids):
    """
    @return: user+system CPU seconds of the given processes.
    """
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


def rssMB(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024.0


def peerPids():
    # the processes peer_ctl.sh put in its cgroup (Postfix, Dovecot and their children)
    try:
        with open(os.path.join(os.path.dirname(PEER_CGROUP), "cgroup.procs")) as f:
            pids = [int(p) for p in f.read().split()]
        if pids:
            return pids
    except (OSError, ValueError):
        pass
    out = subprocess.run(["pgrep", "-f", "postfix|dovecot|master|smtpd|lmtp|cleanup|qmgr"],
                         capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]
