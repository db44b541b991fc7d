#!/usr/bin/env python3
"""File downloads from `hangup serve` against nginx (sendfile on) and
miniserve: GiB/s and server CPU per MiB, same files, same pinning.

    python3 bench/serve_files.py                 # ROUNDS=3 DURATION=5: about 3 minutes
    ROUNDS=5 DURATION=10 python3 bench/serve_files.py
    SIZES="1M" SERVERS="hangup nginx" python3 bench/serve_files.py

Each server serves one directory holding `1M.bin` and `64M.bin` (random
bytes, the same files for all). Each measurement starts the server afresh
pinned to SERVER_CPU (taskset; every thread and process of it), warms it
with one download, then runs `wrk -t1 -cCONNECTIONS -dDURATION` pinned to
CLIENT_CPU against one file. Server CPU is utime + stime of its
processes (/proc/PID/stat) over the run; the report also gives the busy
time of the server's whole CPU per MiB (/proc/stat: it includes the TCP
and loopback softirq work the kernel did there while the server slept,
which the processes' own time misses) and the busy share of wrk's CPU
(at 100 % the client, not the server, caps GiB/s); GiB/s counts body bytes
(requests x file size) over the run. Rounds interleave the servers
(round 1: A B C, round 2: A B C, ...); the report gives medians with the
spread (min-max) and ratios to nginx.

Servers (SERVERS, default "hangup hangup-log nginx miniserve"):
  hangup      `hangup serve --quiet` (HANGUP_BIN, default
              target/release/hangup, built if missing)
  hangup-log  the same with its default access log, to /dev/null
  nginx       Debian's nginx: 1 worker, sendfile on, tcp_nopush on,
              access_log off (installed with apt-get if missing)
  miniserve   MINISERVE_BIN, default bench/out/miniserve/bin/miniserve,
              built with `cargo install miniserve --root bench/out/miniserve`
              if missing (its code is never committed)

Before each measurement it waits (at most QUIET_WAIT seconds) until other
processes have used less than 10 % of a core for 3 seconds in a row, as
bench/run does; "others" in the report is the CPU everything but the
server and wrk used during the run, in % of one core (the largest over the
rounds), so a disturbed figure shows.

Environment: ROUNDS (3), DURATION (5 s), CONNECTIONS (4), SIZES ("1M 64M"),
SERVER_CPU (0), CLIENT_CPU (1), PORT (3200), QUIET_WAIT (60 s). Only 127.0.0.1 is used;
everything started is stopped by its PID; every wait is bounded. Raw
output goes to bench/out/serve-<stamp>/ (gitignored).
"""

import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from procstat import CLK_TCK, busy_seconds, cpu_seconds, spread, tree_pids, wait_quiet

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
ROUNDS = int(os.environ.get("ROUNDS", "3"))
DURATION = int(os.environ.get("DURATION", "5"))
CONNECTIONS = int(os.environ.get("CONNECTIONS", "4"))
SIZES = os.environ.get("SIZES", "1M 64M").split()
SERVERS = os.environ.get("SERVERS", "hangup hangup-log nginx miniserve").split()
SERVER_CPU = os.environ.get("SERVER_CPU", "0")
CLIENT_CPU = os.environ.get("CLIENT_CPU", "1")
PORT = int(os.environ.get("PORT", "3200"))
QUIET_WAIT = int(os.environ.get("QUIET_WAIT", "60"))
OTHER_MAX = 10   # % of one core used by others above which the machine is busy
QUIET_SECS = 3
START_WAIT_S = 10.0
MIB = 1 << 20
STAMP = time.strftime("%Y%m%d-%H%M%S")
OUT = BENCH / "out" / f"serve-{STAMP}"
RUNNING = []


def log(message):
    print(f"[serve-bench] {message}", file=sys.stderr, flush=True)


def size_bytes(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(text[:-1]) * units[text[-1].upper()] if text[-1].isalpha() else int(text)


def ensure_tools():
    missing = [tool for tool in ("wrk", "taskset") if not shutil.which(tool)]
    if "nginx" in SERVERS and not shutil.which("nginx") and not Path("/usr/sbin/nginx").exists():
        missing.append("nginx")
    if missing:
        log(f"installing {' '.join(missing)} (apt)")
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def hangup_bin():
    path = Path(os.environ.get("HANGUP_BIN", REPO / "target" / "release" / "hangup"))
    if not path.exists():
        log("building hangup (release)")
        subprocess.run(["cargo", "build", "--release", "--bin", "hangup"], cwd=REPO, check=True)
    return path


def miniserve_bin():
    path = Path(os.environ.get("MINISERVE_BIN", BENCH / "out" / "miniserve" / "bin" / "miniserve"))
    if not path.exists():
        root = path.parent.parent
        log(f"building miniserve from crates.io into {root} (several minutes)")
        subprocess.run(["cargo", "install", "miniserve", "--root", str(root)], check=True)
    return path


def nginx_conf(files):
    prefix = OUT / "nginx"
    (prefix / "tmp").mkdir(parents=True, exist_ok=True)
    user = "user root root;\n" if os.geteuid() == 0 else ""
    conf = prefix / "nginx.conf"
    conf.write_text(f"""# Generated by bench/serve_files.py for one run.
{user}worker_processes 1;
daemon off;
master_process on;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; use epoll; }}
http {{
    access_log off;
    server_tokens off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 1000000000;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    server {{
        listen 127.0.0.1:{PORT};
        location / {{ root {files}; default_type application/octet-stream; }}
    }}
}}
""")
    return conf


def command(server, files, bins):
    if server == "hangup":
        return [str(bins["hangup"]), "serve", str(files), "--addr", f"127.0.0.1:{PORT}", "--quiet"]
    if server == "hangup-log":
        return [str(bins["hangup"]), "serve", str(files), "--addr", f"127.0.0.1:{PORT}"]
    if server == "nginx":
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        return [nginx, "-c", str(bins["nginx_conf"])]
    if server == "miniserve":
        return [str(bins["miniserve"]), "--interfaces", "127.0.0.1", "--port", str(PORT), str(files)]
    raise SystemExit(f"unknown server {server}")


def cpu_busy(cpu):
    """Busy time (all but idle and iowait) of one CPU, in seconds: on the
    server's CPU this includes the softirq work (TCP, loopback delivery)
    done there while the server slept, which its own utime + stime miss."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{cpu} "):
                user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in line.split()[1:9])
                return (user + nice + system + irq + softirq + steal) / CLK_TCK
    raise SystemExit(f"no cpu{cpu} in /proc/stat")


def port_open():
    try:
        with socket.create_connection(("127.0.0.1", PORT), timeout=0.5):
            return True
    except OSError:
        return False


def start(server, files, bins, log_file):
    proc = subprocess.Popen(["taskset", "-c", SERVER_CPU, *command(server, files, bins)],
                            stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT)
    RUNNING.append(proc)
    deadline = time.monotonic() + START_WAIT_S
    while not port_open():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            raise SystemExit(f"{server} did not start (see {log_file.name})")
        time.sleep(0.05)
    return proc


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    if proc in RUNNING:
        RUNNING.remove(proc)


def download(name, expect):
    """One download with curl: the warm-up, and a check of the bytes."""
    out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                          f"http://127.0.0.1:{PORT}/{name}"], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    if out != f"200 {expect}":
        raise SystemExit(f"download of {name} gave {out!r}, expected 200 {expect}")


def measure(server, size, files, bins):
    name = f"{size}.bin"
    nbytes = size_bytes(size)
    wait_quiet(QUIET_WAIT, log, OTHER_MAX, QUIET_SECS)
    with open(OUT / f"{server}-{size}-{len(list(OUT.glob(f'{server}-{size}-*')))}.log", "w") as lf:
        proc = start(server, files, bins, lf)
        try:
            download(name, nbytes)
            pids = tree_pids(proc.pid)
            cpu_before = cpu_seconds(pids)
            busy_before = busy_seconds()
            srv_cpu_before, cli_cpu_before = cpu_busy(SERVER_CPU), cpu_busy(CLIENT_CPU)
            wrk_before = os.times().children_user + os.times().children_system
            t0 = time.monotonic()
            wrk = subprocess.run(["taskset", "-c", CLIENT_CPU, "wrk", "-t1", f"-c{CONNECTIONS}",
                                  f"-d{DURATION}s", "--timeout", "30s",
                                  f"http://127.0.0.1:{PORT}/{name}"],
                                 capture_output=True, text=True, timeout=DURATION + 60)
            elapsed = time.monotonic() - t0
            srv_cpu = cpu_busy(SERVER_CPU) - srv_cpu_before
            cli_cpu = cpu_busy(CLIENT_CPU) - cli_cpu_before
            cpu = cpu_seconds(tree_pids(proc.pid)) - cpu_before
            wrk_cpu = os.times().children_user + os.times().children_system - wrk_before
            others = max(0.0, 100 * (busy_seconds() - busy_before - cpu - wrk_cpu) / elapsed)
        finally:
            stop(proc)
        lf.write(wrk.stdout + wrk.stderr)
    found = re.search(r"(\d+) requests in ([\d.]+)(\w+),", wrk.stdout)
    if wrk.returncode != 0 or not found or "Non-2xx" in wrk.stdout or "errors" in wrk.stdout:
        raise SystemExit(f"wrk failed against {server}: {wrk.stdout}{wrk.stderr}")
    requests = int(found.group(1))
    seconds = float(found.group(2)) * {"s": 1, "ms": 1e-3, "m": 60}.get(found.group(3), 1)
    body = requests * nbytes
    return {
        "gib_s": body / seconds / (1 << 30),
        "cpu_us_per_mib": cpu / (body / MIB) * 1e6,
        "cpu_share": cpu / elapsed,
        "requests": requests,
        "others": others,
        "cpu0_us_per_mib": srv_cpu / (body / MIB) * 1e6,
        "client_cpu": cli_cpu / elapsed,
    }


def main():
    ensure_tools()
    OUT.mkdir(parents=True, exist_ok=True)
    files = OUT / "files"
    files.mkdir()
    for size in SIZES:
        with open(files / f"{size}.bin", "wb") as f:
            remaining = size_bytes(size)
            while remaining:
                piece = os.urandom(min(remaining, MIB))
                f.write(piece)
                remaining -= len(piece)
    bins = {}
    if any(s.startswith("hangup") for s in SERVERS):
        bins["hangup"] = hangup_bin()
    if "miniserve" in SERVERS:
        bins["miniserve"] = miniserve_bin()
    if "nginx" in SERVERS:
        bins["nginx_conf"] = nginx_conf(files)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                            capture_output=True, text=True).stdout.strip()
    log(f"out: {OUT}; commit {commit}; rounds {ROUNDS} x {DURATION} s, {CONNECTIONS} connections")
    results = {}
    for round_no in range(1, ROUNDS + 1):
        for size in SIZES:
            for server in SERVERS:
                r = measure(server, size, files, bins)
                results.setdefault((size, server), []).append(r)
                log(f"round {round_no} {size} {server}: {r['gib_s']:.2f} GiB/s, "
                    f"{r['cpu_us_per_mib']:.0f} us CPU/MiB ({r['cpu_share']:.0%} of a core; "
                    f"server's CPU busy {r['cpu0_us_per_mib']:.0f} us/MiB; wrk's CPU busy "
                    f"{r['client_cpu']:.0%}; others {r['others']:.0f}%)")
    lines = [f"hangup serve vs nginx vs miniserve, commit {commit}, {time.strftime('%Y-%m-%d')}",
             f"wrk -t1 -c{CONNECTIONS} -d{DURATION}s, {ROUNDS} rounds interleaved, server on CPU "
             f"{SERVER_CPU}, wrk on CPU {CLIENT_CPU}; median (min-max); 'paired' = median (min-max) of "
             "the per-round ratios to nginx; CPU us/MiB = the server's processes (utime + stime); "
             f"cpu{SERVER_CPU} us/MiB = all busy time of the server's CPU (with the TCP softirq work "
             f"done there while the server slept); cpu{CLIENT_CPU} = busy share of wrk's CPU", ""]
    for size in SIZES:
        lines.append(f"{size} file")
        lines.append(f"  {'server':<11} {'GiB/s':<22} {'CPU us/MiB':<22} {'cpu' + SERVER_CPU + ' us/MiB':<22} "
                     f"{'cpu' + CLIENT_CPU:<6} {'others':<7} {'vs nginx (GiB/s, CPU/MiB)'}")
        base = results.get((size, "nginx"))
        for server in SERVERS:
            runs = results[(size, server)]
            gib = [r["gib_s"] for r in runs]
            cpu = [r["cpu_us_per_mib"] for r in runs]
            ratio = ""
            if base and server != "nginx":
                ratio = (f"x{statistics.median(gib) / statistics.median([r['gib_s'] for r in base]):.2f}, "
                         f"x{statistics.median(cpu) / statistics.median([r['cpu_us_per_mib'] for r in base]):.2f}")
                # The same ratios round by round (the runs of a round are
                # minutes apart at most): medians of those.
                pg = [r["gib_s"] / b["gib_s"] for r, b in zip(runs, base)]
                pc = [r["cpu_us_per_mib"] / b["cpu_us_per_mib"] for r, b in zip(runs, base)]
                ratio += (f"; paired x{statistics.median(pg):.2f} ({min(pg):.2f}-{max(pg):.2f}), "
                          f"x{statistics.median(pc):.2f} ({min(pc):.2f}-{max(pc):.2f})")
            others = f"{max(r['others'] for r in runs):.0f}%"
            cpu0 = [r["cpu0_us_per_mib"] for r in runs]
            client = f"{statistics.median(r['client_cpu'] for r in runs):.0%}"
            lines.append(f"  {server:<11} {spread(gib, '{:.2f}'):<22} {spread(cpu, '{:.0f}'):<22} "
                         f"{spread(cpu0, '{:.0f}'):<22} {client:<6} {others:<7} {ratio}")
        lines.append("")
    report = "\n".join(lines)
    (OUT / "report.txt").write_text(report + "\n")
    print(report)


if __name__ == "__main__":
    try:
        main()
    finally:
        for p in list(RUNNING):
            stop(p)
