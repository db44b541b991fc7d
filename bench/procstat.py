"""What the benchmark scripts read from /proc, shared by `ab.py`,
`harness.py`, `serve_files.py` and `tls.py`: a process tree's CPU time,
the whole machine's busy time, and waiting for a quiet machine; plus the
median (min-max) they print."""

import os
import statistics
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def tree_pids(pid):
    """`pid` and all its descendants (threads' children included)."""
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError):
            pass
    return pids


def cpu_seconds(pids):
    """User + system CPU time of `pids` (those still alive), in seconds."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def user_system_seconds(pid):
    """The (user, system) CPU seconds of process `pid` so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def busy_seconds():
    """Busy CPU time of the whole machine: all but idle and iowait."""
    with open("/proc/stat") as f:
        user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in f.readline().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def wait_quiet(limit_s, log, other_max=10, quiet_secs=3):
    """Waits (at most `limit_s` seconds) until the machine used less than
    `other_max` % of a core for `quiet_secs` seconds in a row; says so
    through `log` when it gives up."""
    quiet = 0
    for _ in range(limit_s):
        before = busy_seconds()
        time.sleep(1)
        if (busy_seconds() - before) * 100 <= other_max:
            quiet += 1
            if quiet >= quiet_secs:
                return
        else:
            quiet = 0
    log(f"machine still busy after {limit_s}s; measuring anyway (see 'others')")


def spread(values, fmt):
    """`median (min-max)` of `values`, each formatted with `fmt`."""
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"
