#!/usr/bin/env python3
"""How a client's hang-up reaches hangup behind nginx or HAProxy (issue 17).

    python3 bench/proxies.py                  # builds examples/proxy_probe, runs everything (< 3 min)
    python3 bench/proxies.py --rounds 9       # more rounds per cell (default 5)
    python3 bench/proxies.py --only nginx-default,haproxy-abortonclose
    python3 bench/proxies.py --skip-missing   # run without nginx or haproxy instead of failing
    python3 bench/proxies.py --raw rounds.json  # every round's events too

Needs Debian's nginx and haproxy (`apt-get install -y nginx haproxy`); it
exits 2 if either is missing, unless --skip-missing. Standard library only.

One probe server (`target/release/examples/proxy_probe`, built with
`cargo build --release --example proxy_probe` unless --no-build; a copy is
run) serves every configuration. Each proxy configuration gets its own
nginx or haproxy, started in the foreground from a config file written to
a temporary directory (pid file, logs and temp files there too), on free
127.0.0.1 ports, and stopped by its PID. Nothing else is touched.

For every configuration, scenario and way of leaving, N rounds: a client
connects through the proxy, sends a request, and leaves at a known moment:

- sleep:  GET /sleep (the handler sleeps 1 s, silent); the client leaves
          100 ms after the handler started.
- stream: GET /stream (a chunk every 10 ms for 1 s); the client reads for
          100 ms after the handler started, then leaves.
- big:    GET /big (64 MiB, Content-Length); the client reads 1 MiB as
          fast as it arrives, then leaves.
- big-slow: the same, read 64 KiB every 32 ms (1 MiB in about 0.5 s): time
          for a buffering proxy to take the whole response first.
- queued (HAProxy only, where `option abortonclose` is documented to act):
          another client's GET /sleep (400 ms) holds the server's one
          connection slot (`maxconn 1`); the measured GET /sleep (300 ms)
          waits in HAProxy's queue, and its client leaves 100 ms after
          sending it. Does the request still reach hangup?
- half-close: GET /sleep?keep=1 (300 ms), then shutdown(SHUT_WR), then the
          client reads the response to the end: what does it get?

Configurations (the exact lines are in nginx_conf, haproxy_conf and
CONFIGS below): direct (no proxy), nginx-default, nginx-keepalive,
nginx-nobuffering, nginx-ignore-abort, haproxy-default,
haproxy-abortonclose (the option in `defaults`) and
haproxy-abortonclose-backend (the option in the backend section only).
Told of a hang-up, the probe's handlers return it as their error; two more
configurations show nginx-default with handlers that return Ok(()) instead
(nginx-default+ok), also under OnFin::Abort (nginx-default+abort+ok).

Ways of leaving: `close` (close(2); after draining what had arrived, so
the kernel sends a FIN, except for big, where unread bytes make Linux send
an RST anyway) and `rst` (SO_LINGER 0, then close: an RST).

About 100 s with 5 rounds; --time-limit (170 s) stops starting rounds,
and a watchdog ends everything 30 s after it. Per cell the table gives: how many rounds told the handler of the hang-up
(the probe's `told` line: its hang-up signal resolved, or a write failed
with ClientGone), the median time from the client's close(2) to that
moment (min-max in brackets), the hang-up as the handler was told it
(cause / phase), the outcome the server logged (status, cause / phase),
its written / acked bytes (medians), and what the proxy logged (nginx:
`$status`; HAProxy: status and termination state). Clocks: the client and
the probe both read CLOCK_REALTIME on this machine.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from datetime import datetime, timezone

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROBE = os.path.join(REPO, "target", "release", "examples", "proxy_probe")

SLEEP_MS = 1000        # /sleep and /stream run this long when nobody tells them
HALF_CLOSE_MS = 300    # /sleep in the half-close scenario
QUEUED_MS = 300        # /sleep in the queued scenario
BLOCKER_MS = 400       # queued: the request that holds the server's one slot
LEAVE_AFTER_S = 0.100  # sleep and stream: leave this long after the handler started
BIG_READ = 1 << 20     # big: leave after reading this many bytes
START_WAIT_S = 3.0     # a handler that has not started by then: the round failed
OUTCOME_WAIT_S = 3.0   # after the handler's own end, for its outcome line
DEFAULT_TIME_LIMIT_S = 170.0

# ---------------------------------------------------------------------------
# Proxy configurations


def nginx_conf(tmp, port, upstream, location_extra="", upstream_extra=""):
    """An nginx config of our own: one worker, in the foreground, every path in tmp."""
    return f"""
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 256; }}
http {{
    log_format probe '$status $upstream_status $bytes_sent "$request"';
    access_log {tmp}/access.log probe;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy_temp;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    upstream app {{
        server {upstream};
        {upstream_extra}
    }}
    server {{
        listen {port};
        location / {{
            proxy_pass http://app;
            {location_extra}
        }}
    }}
}}
"""


def haproxy_conf(port, upstream, defaults_extra="", backend_extra=""):
    """A HAProxy config of our own (mode http, HAProxy's built-in defaults otherwise),
    logging one line per request to stdout."""
    return f"""
global
    log stdout format raw local0
    maxconn 256
defaults
    mode http
    log global
    log-format "%ST %tsc %B %{{+Q}}r"
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    {defaults_extra}
frontend fe
    bind {port}
    default_backend be
backend be
    {backend_extra}
    server app {upstream} maxconn 1
"""


KEEPALIVE_LOCATION = 'proxy_http_version 1.1;\n            proxy_set_header Connection "";'

ALL = ("sleep", "stream", "big", "big-slow")

# Told of a hang-up, the probe's handlers return it as their error
# (Error::ClientGone), as `?` on a failed write would: the outcome then
# says the handler gave up because its client left. The "+ok" configurations
# return Ok(()) instead, as README's and examples/stream.rs's handlers do.
TOLD_ERROR = "&told=error"


class Config:
    """One proxy configuration: how the proxy is set up, and what runs through it."""

    def __init__(self, name, proxy, summary, options=None, query=TOLD_ERROR, scenarios=ALL):
        self.name = name
        self.proxy = proxy          # None (the client talks to hangup), "nginx" or "haproxy"
        self.summary = summary      # what it adds to the proxy's defaults
        self.options = options or {}  # keyword arguments of nginx_conf / haproxy_conf
        self.query = query          # appended to every request's query for the probe
        self.scenarios = scenarios


CONFIGS = [
    Config("direct", None, "no proxy: the client talks to hangup",
           scenarios=ALL + ("half-close",)),
    Config("nginx-default", "nginx", "`proxy_pass` only (HTTP/1.0 upstream, `proxy_buffering on`)",
           scenarios=ALL + ("half-close",)),
    Config("nginx-default+ok", "nginx",
           "nginx-default; handlers told of the hang-up return `Ok(())`",
           query="", scenarios=("sleep", "stream")),
    Config("nginx-default+abort+ok", "nginx",
           "nginx-default; requests under `OnFin::Abort`, handlers return `Ok(())`",
           query="&fin=abort", scenarios=("sleep", "stream")),
    Config("nginx-keepalive", "nginx",
           '`proxy_http_version 1.1; proxy_set_header Connection "";`, `keepalive 8;` in the upstream',
           {"location_extra": KEEPALIVE_LOCATION, "upstream_extra": "keepalive 8;"}),
    Config("nginx-nobuffering", "nginx", "`proxy_buffering off;`",
           {"location_extra": "proxy_buffering off;"}),
    Config("nginx-ignore-abort", "nginx", "`proxy_ignore_client_abort on;`",
           {"location_extra": "proxy_ignore_client_abort on;"}, scenarios=ALL + ("half-close",)),
    Config("haproxy-default", "haproxy",
           "`mode http`, no options (`maxconn 1` on the server, for the queued scenario)",
           scenarios=ALL + ("queued", "half-close")),
    Config("haproxy-abortonclose", "haproxy",
           "`option abortonclose` in `defaults` (`maxconn 1` on the server)",
           {"defaults_extra": "option abortonclose"}, scenarios=ALL + ("queued", "half-close")),
    Config("haproxy-abortonclose-backend", "haproxy",
           "`option abortonclose` in the `backend` section only (`maxconn 1` on the server)",
           {"backend_extra": "option abortonclose"},
           scenarios=("sleep", "queued", "half-close")),
]

# scenario -> the ways its client leaves (big: close(2) with unread bytes is an RST anyway)
SCENARIOS = {
    "sleep": ("close", "rst"),
    "stream": ("close", "rst"),
    "big": ("close", "rst"),
    "big-slow": ("close",),
    "queued": ("close", "rst"),
    "half-close": ("half-close",),
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, proc, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False


def stop(proc, name):
    """Ends one process we started, by its PID: SIGTERM, then SIGKILL after 3 s."""
    if proc is None or proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=3)
    except subprocess.TimeoutExpired:
        print(f"{name} (pid {proc.pid}) ignored SIGTERM: SIGKILL", file=sys.stderr)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=3)


class Lines:
    """Collects a child's stdout lines in a thread, for waiting on them."""

    def __init__(self, stream, parse_json):
        self.lines = []
        self.cond = threading.Condition()
        self.parse_json = parse_json
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream):
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if self.parse_json:
                try:
                    line = json.loads(line)
                except ValueError:
                    continue
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()

    def wait_for(self, predicate, timeout):
        """The first line that satisfies predicate, or None after timeout."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines:
                    if predicate(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def matching(self, predicate):
        with self.cond:
            return [line for line in self.lines if predicate(line)]


class Proxy:
    """One nginx or haproxy of ours, for one configuration."""

    def __init__(self, kind, tmp_root, name, upstream_port, options):
        self.kind = kind
        self.tmp = os.path.join(tmp_root, name)
        os.makedirs(self.tmp)
        self.port = free_port()
        listen = f"127.0.0.1:{self.port}"
        upstream = f"127.0.0.1:{upstream_port}"
        self.log = None
        if kind == "nginx":
            conf = os.path.join(self.tmp, "nginx.conf")
            with open(conf, "w") as f:
                f.write(nginx_conf(self.tmp, listen, upstream, **options))
            # -e: the error log before the config is read (not /var/log)
            argv = ["nginx", "-p", self.tmp, "-c", conf, "-e", os.path.join(self.tmp, "error.log")]
            self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        else:
            conf = os.path.join(self.tmp, "haproxy.cfg")
            with open(conf, "w") as f:
                f.write(haproxy_conf(listen, upstream, **options))
            argv = ["haproxy", "-db", "-f", conf, "-p", os.path.join(self.tmp, "haproxy.pid")]
            self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            self.log = Lines(self.proc.stdout, parse_json=False)
        if not wait_listening(self.port, self.proc):
            stop(self.proc, kind)
            raise RuntimeError(f"{kind} did not start ({conf})")

    def logged(self, request_id, timeout=0.5):
        """What the proxy logged for this request: nginx's $status / $upstream_status, or
        HAProxy's %ST and termination state."""
        tag = f"id={request_id}&"
        if self.kind == "nginx":
            path = os.path.join(self.tmp, "access.log")
            deadline = time.monotonic() + timeout
            while True:
                with open(path) as f:
                    for line in f:
                        if tag in line:
                            status, upstream = line.split()[:2]
                            return f"{status} (upstream {upstream})"
                if time.monotonic() > deadline:
                    return "no line"
                time.sleep(0.02)
        line = self.log.wait_for(lambda l: tag in l, timeout)
        if line is None:
            return "no line"
        status, term = line.split()[:2]
        return f"{status} {term}"

    def stop(self):
        stop(self.proc, self.kind)


# ---------------------------------------------------------------------------
# One round


def request_bytes(path):
    return f"GET {path} HTTP/1.1\r\nHost: probe\r\nUser-Agent: proxies.py\r\n\r\n".encode()


def drain(sock):
    """Reads whatever has arrived, without waiting: closing with unread bytes
    would make Linux send an RST instead of a FIN."""
    sock.setblocking(False)
    got = 0
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += len(chunk)
    except (BlockingIOError, InterruptedError):
        pass
    except OSError:
        pass
    return got


def leave(sock, how):
    """Closes the client's socket (FIN, or RST with SO_LINGER 0); returns the time in ns."""
    if how == "rst":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    else:
        drain(sock)
    t = time.time_ns()
    sock.close()
    return t


def read_for(sock, seconds):
    """Reads everything that arrives for this long."""
    sock.settimeout(0.01)
    deadline = time.monotonic() + seconds
    got = 0
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            break
        if not chunk:
            break
        got += len(chunk)
    return got


def read_until(sock, total, timeout):
    sock.settimeout(timeout)
    got = 0
    try:
        while got < total:
            chunk = sock.recv(min(65536, total - got))
            if not chunk:
                break
            got += len(chunk)
    except OSError:
        pass
    return got


def read_response(sock, timeout):
    """Reads one response: its head, then its Content-Length of body, or up to EOF
    (the connection may stay open after a response: reading to EOF would wait for
    the idle timeout)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep:
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length" and \
                            len(body) >= int(value.strip()):
                        return data
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
    except OSError as err:
        return data + f"[{type(err).__name__}]".encode()


def read_slowly(sock, total, piece=64 << 10, pause=0.032, timeout=5):
    """Reads `piece` bytes every `pause` seconds until `total`: a client slower than the proxy."""
    sock.settimeout(timeout)
    got = 0
    try:
        while got < total:
            want = min(piece, total - got)
            while want:
                chunk = sock.recv(want)
                if not chunk:
                    return got
                got += len(chunk)
                want -= len(chunk)
            time.sleep(pause)
    except OSError:
        pass
    return got


def path_for(scenario, request_id, query):
    # The id is followed by "&" so that "id=r1&" never matches r10 in a proxy's log.
    if scenario == "half-close":
        return f"/sleep?id={request_id}&ms={HALF_CLOSE_MS}&keep=1{query}"
    if scenario == "queued":
        return f"/sleep?id={request_id}&ms={QUEUED_MS}{query}"
    if scenario in ("big", "big-slow"):
        return f"/big?id={request_id}&{query}"
    return f"/{scenario}?id={request_id}&ms={SLEEP_MS}{query}"


def one_round(probe, proxy, port, config, scenario, how, request_id):
    """Runs one exchange and returns what the client, the probe and the proxy saw."""
    def is_id(ev):
        return ev.get("id") == request_id

    def started(timeout):
        return probe.wait_for(lambda ev: is_id(ev) and ev["ev"] == "start", timeout)

    record = {"config": config.name, "id": request_id, "scenario": scenario, "how": how}
    blocker = None
    if scenario == "queued":
        # Another client's request takes the server's one slot first.
        blocker = socket.create_connection(("127.0.0.1", port), timeout=5)
        blocker.sendall(request_bytes(f"/sleep?id={request_id}b&ms={BLOCKER_MS}"))
        if probe.wait_for(lambda ev: ev.get("id") == f"{request_id}b", START_WAIT_S) is None:
            blocker.close()
            record["error"] = "the blocking request never started"
            return record
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        sock.sendall(request_bytes(path_for(scenario, request_id, config.query)))
        if scenario == "half-close":
            t_leave = time.time_ns()
            sock.shutdown(socket.SHUT_WR)
            response = read_response(sock, timeout=HALF_CLOSE_MS / 1000 + 3)
            head, _, body = response.partition(b"\r\n\r\n")
            first_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            record["client_got"] = first_line or f"nothing ({len(response)} bytes)"
            record["client_body"] = body[:40].decode("latin-1")
            sock.close()
        elif scenario == "big":
            record["client_read"] = read_until(sock, BIG_READ, timeout=5)
            t_leave = leave(sock, how)
        elif scenario == "big-slow":
            record["client_read"] = read_slowly(sock, BIG_READ)
            t_leave = leave(sock, how)
        elif scenario == "queued":
            time.sleep(LEAVE_AFTER_S)
            t_leave = leave(sock, how)
            read_response(blocker, timeout=BLOCKER_MS / 1000 + 2)
            blocker.close()
        else:
            # Leave at a known moment: this long after the handler started.
            if started(START_WAIT_S) is None:
                sock.close()
                record["error"] = "the handler never started"
                return record
            if scenario == "stream":
                record["client_read"] = read_for(sock, LEAVE_AFTER_S)
            else:
                time.sleep(LEAVE_AFTER_S)
            t_leave = leave(sock, how)
    except OSError as err:
        sock.close()
        if blocker is not None:
            blocker.close()
        record["error"] = f"client: {err}"
        return record
    record["t_leave_ns"] = t_leave
    record["reached"] = started(0.5 if blocker is None else 1.0) is not None
    if not record["reached"]:
        record["told"] = False
        if proxy is not None:
            record["proxy_logged"] = proxy.logged(request_id)
        return record
    wait = (HALF_CLOSE_MS if scenario == "half-close" else SLEEP_MS) / 1000 + OUTCOME_WAIT_S
    outcome = probe.wait_for(lambda ev: is_id(ev) and ev["ev"] == "outcome", wait)
    events = probe.matching(is_id)
    record["events"] = events
    told = [ev for ev in events if ev["ev"] == "told"]
    record["told"] = bool(told)
    if told:
        record["told_ms"] = (int(told[0]["t_ns"]) - t_leave) / 1e6
        record["told_as"] = f"{told[0]['cause']} / {told[0]['phase']}"
        record["via"] = told[0]["via"]
    if outcome is None:
        record["error"] = "no outcome line"
    else:
        record["outcome"] = outcome
    if proxy is not None:
        record["proxy_logged"] = proxy.logged(request_id)
    return record


# ---------------------------------------------------------------------------
# The table


def most_common(values):
    counts = Counter(v for v in values if v is not None)
    if not counts:
        return "-"
    ranked = counts.most_common()
    text = ranked[0][0]
    if len(ranked) > 1:
        text += " (" + ", ".join(f"{v} ×{n}" for v, n in ranked[1:]) + ")"
    return text


def median_text(values):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    return f"{statistics.median(values):,.0f}"


def summarize(rounds):
    """One table cell's figures from its rounds."""
    n = len(rounds)
    ok = [r for r in rounds if "error" not in r]
    errors = Counter(r["error"] for r in rounds if "error" in r)
    unreached = sum(1 for r in ok if not r["reached"])
    told = [r for r in ok if r["told"]]
    cell = {"told": f"{len(told)}/{n}"}
    if told and rounds[0]["scenario"] != "half-close":
        ms = [r["told_ms"] for r in told]
        cell["after"] = f"{statistics.median(ms):.2f} [{min(ms):.2f}–{max(ms):.2f}]"
    else:
        cell["after"] = "-"
    cell["told_as"] = most_common(f"{r['told_as']} ({r['via']})" for r in told)
    outcomes = [r["outcome"] for r in ok if "outcome" in r]
    cell["outcome"] = most_common(
        f"{o['status']} {o['cause'] or 'complete'}" + (f" / {o['phase']}" if o["phase"] else "")
        for o in outcomes)
    if unreached:
        cell["outcome"] = f"none: the request never reached hangup ×{unreached}" + (
            f"; {cell['outcome']}" if outcomes else "")
    cell["bytes"] = (median_text(o["written"] for o in outcomes) + " / "
                     + median_text(o["acked"] for o in outcomes))
    cell["proxy"] = most_common(r.get("proxy_logged") for r in ok)
    if rounds[0]["scenario"] == "half-close":
        cell["client"] = most_common(f"{r['client_got']} {r['client_body']!r}" for r in ok)
    if errors:
        cell["errors"] = ", ".join(f"{e} ×{k}" for e, k in errors.items())
    return cell


def print_tables(configs, results, skipped):
    print("| configuration | proxy setup |")
    print("|---|---|")
    for config in configs:
        print(f"| {config.name} | {config.summary} |")
    print()
    print("| configuration | scenario | client leaves by | handler told | told after the client "
          "left, ms: median [min–max] | told as: cause / phase (how) | outcome logged: status "
          "cause / phase | written / acked, bytes (median) | proxy logged |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (name, scenario, how), rounds in results.items():
        if scenario == "half-close":
            continue
        cell = summarize(rounds)
        errors = f" (errors: {cell['errors']})" if "errors" in cell else ""
        print(f"| {name} | {scenario} | {how} | {cell['told']}{errors} | {cell['after']} "
              f"| {cell['told_as']} | {cell['outcome']} | {cell['bytes']} | {cell['proxy']} |")
    half = [(key[0], summarize(rounds)) for key, rounds in results.items()
            if key[1] == "half-close"]
    if half:
        print()
        print("A half-closing client: the request, shutdown(SHUT_WR), then it reads to the end "
              f"(/sleep?keep=1, {HALF_CLOSE_MS} ms: a FIN is reported to the handler but does "
              "not stop it).")
        print()
        print("| configuration | client received | handler told: cause / phase (how) "
              "| outcome logged | proxy logged |")
        print("|---|---|---|---|---|")
        for name, cell in half:
            errors = f" (errors: {cell['errors']})" if "errors" in cell else ""
            print(f"| {name} | {cell['client']} | {cell['told']}: {cell['told_as']}{errors} "
                  f"| {cell['outcome']} | {cell['proxy']} |")
    for name, why in skipped:
        print(f"\n{name}: not run ({why})")


# ---------------------------------------------------------------------------


def version(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=5)
        return (out.stdout + out.stderr).strip().splitlines()[0]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds per cell (default 5)")
    parser.add_argument("--only", help="comma-separated configuration names")
    parser.add_argument("--skip-missing", action="store_true",
                        help="leave out configurations whose proxy is not installed")
    parser.add_argument("--no-build", action="store_true", help="use the probe as built")
    parser.add_argument("--probe", default=PROBE, help="the proxy_probe binary")
    parser.add_argument("--time-limit", type=float, default=DEFAULT_TIME_LIMIT_S,
                        help=f"seconds for all rounds (default {DEFAULT_TIME_LIMIT_S:.0f})")
    parser.add_argument("--raw", help="write every round as JSON to this file")
    args = parser.parse_args()
    if not 1 <= args.rounds <= 50:
        parser.error("--rounds: 1 to 50")

    versions = {"nginx": version(["nginx", "-v"]), "haproxy": version(["haproxy", "-v"])}
    missing = [k for k in ("nginx", "haproxy") if shutil.which(k) is None or versions[k] is None]
    if missing and not args.skip_missing:
        print(f"missing: {', '.join(missing)} (apt-get install -y nginx haproxy), "
              "or run with --skip-missing", file=sys.stderr)
        return 2
    configs = [c for c in CONFIGS if args.only is None or c.name in args.only.split(",")]
    if not configs:
        parser.error(f"--only: none of {', '.join(c.name for c in CONFIGS)}")
    skipped = [(c.name, f"{c.proxy} not installed") for c in configs if c.proxy in missing]
    configs = [c for c in configs if c.proxy not in missing]

    if not args.no_build and args.probe == PROBE:
        print("building examples/proxy_probe (cargo build --release)", file=sys.stderr)
        subprocess.run(["cargo", "build", "--release", "--example", "proxy_probe"],
                       cwd=REPO, check=True)

    tmp_root = tempfile.mkdtemp(prefix="hangup-proxies-")
    # nginx's worker runs as nobody when started by root: it must reach its temp dirs.
    os.chmod(tmp_root, 0o755)
    probe_bin = os.path.join(tmp_root, "proxy_probe")
    shutil.copy2(args.probe, probe_bin)  # a rebuild halfway must not change what runs
    probe_port = free_port()
    probe_proc = subprocess.Popen([probe_bin, f"127.0.0.1:{probe_port}"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    children = [probe_proc]

    def watchdog():
        # The hard limit: past it, whatever hangs, our children end and so do we.
        print("hard time limit reached: stopping", file=sys.stderr)
        for proc in children:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
        os._exit(3)

    timer = threading.Timer(args.time_limit + 30, watchdog)
    timer.daemon = True
    timer.start()

    started = time.monotonic()
    results = defaultdict(list)
    raw = []
    ran_out = False
    try:
        probe = Lines(probe_proc.stdout, parse_json=True)
        if not wait_listening(probe_port, probe_proc):
            print("proxy_probe did not start", file=sys.stderr)
            return 1
        counter = 0
        for config in configs:
            proxy = None
            if config.proxy is not None:
                proxy = Proxy(config.proxy, tmp_root, config.name, probe_port, config.options)
                children.append(proxy.proc)
            port = proxy.port if proxy else probe_port
            print(f"{config.name}: ", end="", file=sys.stderr, flush=True)
            try:
                for scenario in config.scenarios:
                    for how in SCENARIOS[scenario]:
                        for _ in range(args.rounds):
                            if time.monotonic() - started > args.time_limit:
                                ran_out = True
                                break
                            counter += 1
                            record = one_round(probe, proxy, port, config, scenario, how,
                                               f"r{counter}")
                            results[(config.name, scenario, how)].append(record)
                            raw.append(record)
                            print("." if "error" not in record else "x", end="",
                                  file=sys.stderr, flush=True)
            finally:
                if proxy:
                    proxy.stop()
            print(file=sys.stderr)
    finally:
        stop(probe_proc, "proxy_probe")
        timer.cancel()
        shutil.rmtree(tmp_root, ignore_errors=True)

    elapsed = time.monotonic() - started
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                            capture_output=True, text=True).stdout.strip() or "unknown"
    print(f"`python3 bench/proxies.py {' '.join(sys.argv[1:])}` at {commit}, "
          f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {elapsed:.0f} s, "
          f"{args.rounds} rounds per cell; {versions['nginx'] or 'nginx: none'}; "
          f"{versions['haproxy'] or 'haproxy: none'}; Linux {os.uname().release}.")
    print()
    print_tables(configs, results, skipped)
    if args.raw:
        with open(args.raw, "w") as f:
            json.dump(raw, f, indent=1)
    if ran_out:
        print(f"\ntime limit ({args.time_limit:.0f} s) reached: some cells have fewer rounds",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
