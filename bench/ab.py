#!/usr/bin/env python3
"""Paired comparison of server binaries (pipelined or keep-alive): CPU time per request.

    bench/ab.py ROUNDS NAME=COMMAND [NAME=COMMAND ...]

Each COMMAND is started with `127.0.0.1:PORT` appended (one port per
server, from 3950), pinned to CPU 0; wrk (pinned to CPU 1) sends
`bench/pipeline.lua`'s 16 pipelined `GET /plaintext` per write on 64
connections (with `MODE=keepalive` in the environment: one request at a
time per connection instead; with `MODE=close`, one request per
connection, `Connection: close`, so connection set-up and teardown count;
`URL_PATH=/` for another path, such as examples/echo's, which answers only
`/`): 1 s of warm-up, then 3 s measured. The server's CPU time
(utime + stime from /proc/PID/stat) over the measured part, divided by the
requests wrk counted, is the figure; its user-space part is printed too
(the rest is the kernel's). Servers take turns within each round (A B C,
A B C, ...), so machine noise hits them alike; the report gives each
server's median and, against the last server, the median of the per-round
ratios (steadier on a noisy machine than a ratio of medians).

Example (hangup before and after a change, against hyper-pf):

    bench/ab.py 7 before=/tmp/bench_server.old after=target/release/examples/bench_server \\
        "hyper-pf=bench/peers/target/release/hyper-hello --pipeline-flush"

Bounded: every run lasts 4 s of load; every server is killed by its PID.
Needs wrk and taskset. Loopback only.
"""
import os
import re
import signal
import statistics
import subprocess
import sys
import time

from procstat import CLK_TCK, user_system_seconds

BASE_PORT = 3950
HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "pipeline.lua")


MODE = os.environ.get("MODE", "pipelined")
if MODE not in ("pipelined", "keepalive", "close"):
    sys.exit(f"MODE must be pipelined, keepalive or close, not {MODE!r}")
PIPELINED = MODE == "pipelined"
URL_PATH = os.environ.get("URL_PATH", "/plaintext")


def wrk(port, seconds):
    script = ["-s", SCRIPT] if PIPELINED else []
    if MODE == "close":
        script = ["-H", "Connection: close"]
    out = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", "-c64", f"-d{seconds}s"] + script
        + [f"http://127.0.0.1:{port}{URL_PATH}"],
        capture_output=True, text=True, timeout=seconds + 30,
    ).stdout
    match = re.search(r"(\d+) requests in", out)
    return int(match.group(1)) if match else 0


def measure(command, port):
    server = subprocess.Popen(["taskset", "-c", "0"] + command.split() + [f"127.0.0.1:{port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.4)
        wrk(port, 1)
        before = user_system_seconds(server.pid)
        requests = wrk(port, 3)
        after = user_system_seconds(server.pid)
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()
    if requests == 0:
        sys.exit(f"no requests served by {command!r}")
    user = (after[0] - before[0]) * 1e6 / requests
    return user + (after[1] - before[1]) * 1e6 / requests, user


def main():
    if len(sys.argv) < 3 or not sys.argv[1].isdigit():
        sys.exit(__doc__)
    rounds = int(sys.argv[1])
    servers = [arg.split("=", 1) for arg in sys.argv[2:]]
    results = {name: [] for name, _ in servers}
    user = {name: [] for name, _ in servers}
    for round_ in range(rounds):
        for i, (name, command) in enumerate(servers):
            total, in_user = measure(command, BASE_PORT + i)
            results[name].append(total)
            user[name].append(in_user)
        print(f"round {round_ + 1}: " + "  ".join(
            f"{name} {values[-1]:.3f}" for name, values in results.items()), flush=True)
    reference = servers[-1][0]
    mode = {"pipelined": "pipelined (16)", "keepalive": "keep-alive", "close": "a connection per request"}[MODE]
    print(f"{mode}: CPU us/request, median of {rounds} rounds; ratio = median of per-round ratios to {reference};"
          f" user = the user-space part's median (the rest is the kernel's; /proc counts in {1e6 / CLK_TCK:.0f} us ticks)")
    for name, values in results.items():
        ratios = [v / r for v, r in zip(values, results[reference])]
        print(f"  {name:12s} {statistics.median(values):.3f}  x{statistics.median(ratios):.2f}"
              f"  (ratios {min(ratios):.2f} to {max(ratios):.2f})  user {statistics.median(user[name]):.3f}")


if __name__ == "__main__":
    main()
