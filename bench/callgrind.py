#!/usr/bin/env python3
"""User-space instructions, and locked instructions, per request (callgrind).

    bench/callgrind.py [--mode pipelined|keepalive] [--keep FILE] COMMAND...

Runs COMMAND (a server binary and its arguments; `127.0.0.1:PORT` is
appended) under `valgrind --tool=callgrind --dump-instr=yes`, loads it for
6 s with wrk (8 connections; `pipelined`: `bench/pipeline.lua`'s 16 GETs per
write, the default; `keepalive`: one request at a time per connection),
stops it with SIGINT and prints:

- `Ir/request`: every instruction the process executed (start-up included,
  a few hundred thousand, well under 1 % at this load) divided by the
  requests wrk counted;
- `locked/request`: of those, the ones with a `lock` prefix or an `xchg`
  with memory (implicitly locked), by function. Each is a full barrier;
  on this machine one costs 2.4-3.5 ns (bench/RESULTS.md).

Instruction counts do not move with machine noise the way CPU time does,
which makes them the steadier guide to what a change did; they are not
cycles (cache misses and barriers are not in them).

Example (hangup against hyper with pipeline_flush):

    bench/callgrind.py target/release/examples/bench_server
    bench/callgrind.py bench/peers/target/release/hyper-hello --pipeline-flush

Needs valgrind, wrk, curl and objdump (binutils). Bounded: 6 s of load, the
server is stopped by its PID. Loopback only.
"""

import argparse
import collections
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

PORT = 3940
HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "pipeline.lua")
# objdump's AT&T syntax: a `lock` prefix (possibly after `xacquire` or
# `xrelease`), or an `xchg` unless both operands are registers (a memory
# operand makes it locked without a prefix).
LOCKED = re.compile(r"\s*([0-9a-f]+):\s+((?:xacquire |xrelease )?lock\b|xchg\s+(?!\s)(?!%\w+,%\w+\s*$))")


def load(mode, url):
    """Runs wrk against `url`; returns the requests it counted."""
    args = ["wrk", "-t1", "-c8", "-d6s"]
    if mode == "pipelined":
        args += ["-s", SCRIPT]
    out = subprocess.run(args + [url], capture_output=True, text=True, timeout=60).stdout
    match = re.search(r"(\d+) requests in", out)
    if not match:
        sys.exit(f"wrk printed no request count:\n{out}")
    return int(match.group(1))


def answers(url):
    return subprocess.run(["curl", "-s", "-o", "/dev/null", url]).returncode == 0


def wait_until_serving(url, server):
    for _ in range(100):
        if server.poll() is not None:
            sys.exit("the server exited before serving (run it alone to see why)")
        if answers(url):
            return
        time.sleep(0.2)
    sys.exit("the server did not answer within 20 s")


class Profile:
    """Per-instruction counts from a callgrind output file.

    The format (valgrind docs, "Callgrind Format Specification"): `ob=`
    and `fn=` name the object and function of the cost lines that follow,
    with `(id) name` defined once and `(id)` reused; with
    `positions: instr line`, a cost line is `ADDRESS LINE Ir`, where an
    address may be absolute (`0x...`), relative to the previous one
    (`+N`, `-N`) or the same (`*`). The line after `calls=` is the call's
    inclusive cost, already counted in the callee: skipped.
    """

    def __init__(self, path):
        self.costs = collections.defaultdict(collections.Counter)  # object -> address -> Ir
        self.function = {}  # (object, address) -> function name
        self.total = 0
        names = {"ob": {}, "fn": {}}
        obj = fn = None
        address = 0
        skip_next = False
        for line in open(path):
            key, _, rest = line.rstrip("\n").partition("=")
            if key in ("ob", "fn", "cob", "cfn"):
                name = self.name(names[key[-2:]], rest)
                if key == "ob":
                    obj = name
                elif key == "fn":
                    fn = name
                continue
            if key == "calls":
                skip_next = True
                continue
            if line.startswith("positions:") and line.split()[1:] != ["instr", "line"]:
                sys.exit(f"expected 'positions: instr line' in {path}, found {line.strip()!r}")
            if line.startswith("summary:"):
                self.total = int(line.split()[1])
                continue
            if not line or line[0] not in "0123456789+-*":
                continue
            fields = line.split()
            if skip_next:
                # callgrind does not move its last position for this line.
                skip_next = False
                continue
            address = self.position(fields[0], address)
            if len(fields) >= 3:
                self.costs[obj][address] += int(fields[2])
                self.function[(obj, address)] = fn

    @staticmethod
    def name(table, text):
        match = re.match(r"\((\d+)\)(?: (.*))?$", text)
        if not match:
            return text
        if match.group(2) is not None:
            table[match.group(1)] = match.group(2)
        return table.get(match.group(1), "?")

    @staticmethod
    def position(field, previous):
        if field.startswith("0x"):
            return int(field, 16)
        if field == "*":
            return previous
        if field[0] in "+-":
            step = int(field[1:], 16) if field[1:].startswith("0x") else int(field[1:])
            return previous + step if field[0] == "+" else previous - step
        return int(field)

    def locked(self):
        """Executed locked instructions, by function."""
        by_function = collections.Counter()
        for obj, counts in self.costs.items():
            if not obj or not os.path.exists(obj):
                continue
            listing = subprocess.run(
                ["objdump", "-d", "--no-show-raw-insn", obj], capture_output=True, text=True
            ).stdout
            addresses = {int(m.group(1), 16) for m in map(LOCKED.match, listing.splitlines()) if m}
            for address, count in counts.items():
                if address in addresses:
                    by_function[self.function[(obj, address)]] += count
        return by_function


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["pipelined", "keepalive"], default="pipelined")
    parser.add_argument("--keep", help="keep the callgrind output in this file")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if not args.command:
        parser.error("give the server command")
    if args.keep:
        out = args.keep
    else:
        handle, out = tempfile.mkstemp(prefix="callgrind.", suffix=".out")
        os.close(handle)
    url = f"http://127.0.0.1:{PORT}/plaintext"
    if answers(url):
        sys.exit(f"something already answers on port {PORT}: stop it first")
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--dump-instr=yes", f"--callgrind-out-file={out}"]
        + args.command
        + [f"127.0.0.1:{PORT}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_serving(url, server)
        requests = load(args.mode, url) + 1  # and the readiness probe
        if server.poll() is not None:
            sys.exit("the server exited during the load: the figures would not be its own")
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    if server.returncode == -signal.SIGKILL:
        sys.exit("the server did not stop within 10 s of SIGINT: callgrind wrote no profile")
    profile = Profile(out)
    if not args.keep:
        os.unlink(out)
    if profile.total == 0:
        sys.exit(f"no instructions in callgrind's output ({out})")
    locked = profile.locked()
    print(f"{' '.join(args.command)} ({args.mode}): {requests} requests")
    print(f"Ir/request:     {profile.total / requests:8.0f}")
    print(f"locked/request: {sum(locked.values()) / requests:8.2f}")
    for function, count in locked.most_common():
        if count / requests >= 0.05:
            print(f"  {count / requests:6.2f}  {function}")


if __name__ == "__main__":
    main()
