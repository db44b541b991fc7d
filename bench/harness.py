#!/usr/bin/env python3
"""hangup's performance harness: hangup against hyper, actix-web, Go net/http
and nginx, and an axum router on hangup against the same router on
axum::serve (hyper), on this machine, in one run. Started by `bench/run` (read
bench/README.md first); every knob is an environment variable, listed in
`bench/run` and README.md.

Method (kept from run-hello.sh): for every measurement the server is started
fresh, pinned to SERVER_CPU; the client (wrk, or the scenario's own) to
CLIENT_CPU. Before every run the harness waits (bounded) for the machine to be
quiet, a run that other processes disturbed is measured again, servers are
interleaved (A B C ... A B C ...), every (scenario, server) pair is repeated
and the report gives medians. The headline figure is the server's CPU time
per request: utime + stime of the server's processes (/proc/PID/stat) over
the measured run, divided by the requests served.

Everything this script starts it stops again, by PID, with bounded waits.
"""

import datetime
import hashlib
import http.client
import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

from procstat import tree_pids  # pid and its descendants (nginx: master and worker)

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)
PEERS = os.path.join(BENCH_DIR, "peers")


def env_int(name, default):
    v = os.environ.get(name, "")
    if v == "":
        return default
    if not re.fullmatch(r"[0-9]+", v):
        sys.exit(f"[bench] error: {name} must be a non-negative integer, not {v!r}")
    return int(v)


def env_float(name, default):
    v = os.environ.get(name, "")
    try:
        return float(v) if v else default
    except ValueError:
        sys.exit(f"[bench] error: {name} must be a number, not {v!r}")


QUICK = os.environ.get("QUICK", "") == "1"
RUNS = env_int("RUNS", 1 if QUICK else 3)
DURATION = env_int("DURATION", 2 if QUICK else 5)
WARMUP = env_int("WARMUP", 1)
WATCH_RUNS = env_int("WATCH_RUNS", 2 if QUICK else 2 * RUNS)
CONNECTIONS = env_int("CONNECTIONS", 64)
PIPELINE_DEPTH = env_int("PIPELINE_DEPTH", 16)
BYTES_CONNECTIONS = env_int("BYTES_CONNECTIONS", 8)
BYTES_SIZE = env_int("BYTES_SIZE", 1 << 20)
IDLE_CONNS = env_int("IDLE_CONNS", 10000)
IDLE_SETTLE = env_float("IDLE_SETTLE", 1.0)
ABORTS = env_int("ABORTS", 300 if QUICK else 1000)
ALL_SCENARIOS = ["keepalive", "pipelined", "bytes1m", "watch", "idle", "detection"]
SCENARIOS = os.environ.get("SCENARIOS", " ".join(ALL_SCENARIOS)).split()
ALL_SERVERS = ["hangup", "hyper", "actix", "go", "nginx", "axum"]
SERVERS = os.environ.get("SERVERS", " ".join(ALL_SERVERS)).split()
SERVER_CPU = os.environ.get("SERVER_CPU", "0")
CLIENT_CPU = os.environ.get("CLIENT_CPU", os.environ.get("WRK_CPU", "1"))
BASE_PORT = env_int("BASE_PORT", 3100)
QUIET_WAIT = env_int("QUIET_WAIT", 120)
RETRIES = env_int("RETRIES", 2)
NO_BUILD = os.environ.get("NO_BUILD", "") == "1"
OTHER_MAX = 10   # % of one core used by others above which a run is disturbed
QUIET_SECS = 3   # consecutive quiet seconds wanted before a run
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# Targets of the issue (ratios on this machine, same run).
T_KEEPALIVE = 0.83   # hangup CPU/req <= 0.83 x hyper
T_PIPELINED = 0.83   # hangup CPU/req <= 0.83 x hyper with pipeline_flush
T_IDLE_KIB = 1.0     # KiB of RSS per idle connection
T_WATCH = 1.03       # watch on / off CPU per request < 1.03
T_DETECT_US = 1000   # hang-up detection p99 < 1 ms
T_AXUM = 0.9         # axum-hangup CPU/req <= 0.9 x axum-hyper (keep-alive and pipelined)

WRK_SCENARIOS = {
    # name: (wrk script, path, connections, title)
    "keepalive": ("report.lua", "/plaintext", CONNECTIONS,
                  f"keep-alive plaintext: wrk -t1 -c{CONNECTIONS} GET /plaintext"),
    "pipelined": ("pipeline.lua", "/plaintext", CONNECTIONS,
                  f"pipelined plaintext: wrk -t1 -c{CONNECTIONS}, {PIPELINE_DEPTH} GET /plaintext per write"),
    "bytes1m": ("report.lua", f"/bytes/{BYTES_SIZE}", BYTES_CONNECTIONS,
                f"{BYTES_SIZE}-byte responses: wrk -t1 -c{BYTES_CONNECTIONS} GET /bytes/{BYTES_SIZE}"),
    "watch": ("report.lua", "/plaintext", CONNECTIONS,
              f"socket watch on vs off: hangup, keep-alive plaintext, wrk -t1 -c{CONNECTIONS}"),
}

# Server variants: name -> (server, binary, extra args, extra env, label)
VARIANTS = {
    "hangup": ("hangup", "hangup", [], {}, "hangup (examples/bench_server, socket watch on)"),
    "hangup-nowatch": ("hangup", "hangup", [], {"HANGUP_SOCKET_WATCH": "off"},
                       "hangup with HANGUP_SOCKET_WATCH=off"),
    "hangup-rel0": ("hangup", "hangup", [], {"HANGUP_IDLE_RELEASE_MS": "0"},
                    "hangup with HANGUP_IDLE_RELEASE_MS=0 (buffers freed at every wait)"),
    "hyper": ("hyper", "hyper", [], {}, "hyper 1.x, tokio current-thread (bench/peers hyper-hello)"),
    "hyper-pf": ("hyper", "hyper", ["--pipeline-flush"], {}, "hyper-hello --pipeline-flush"),
    "actix": ("actix", "actix", [], {}, "actix-web 4, workers(1) (bench/peers actix-bench)"),
    "go": ("go", "go", [], {"GOMAXPROCS": "1"}, "Go net/http, GOMAXPROCS=1 (bench/peers/go)"),
    "nginx": ("nginx", "nginx", [], {}, "nginx (Debian), 1 worker, static files for /bytes/N"),
    "axum-hangup": ("axum", "axum", [], {}, "axum 0.8 Router on hangup::serve (examples/axum_bench)"),
    "axum-hyper": ("axum", "axum", ["--hyper"], {}, "the same Router on axum::serve (hyper; axum_bench --hyper)"),
}
# Routes each server answers (the preflight checks these; the axum router
# has /plaintext and / only).
ROUTES = {"nginx": ("plaintext", "bytes"), "axum": ("plaintext",)}
ALL_ROUTES = ("plaintext", "bytes", "echo")
PORTS = {name: BASE_PORT + i for i, name in enumerate(VARIANTS)}

SCENARIO_VARIANTS = {
    "keepalive": ["hangup", "hyper", "actix", "go", "nginx", "axum-hangup", "axum-hyper"],
    "pipelined": ["hangup", "hyper-pf", "hyper", "actix", "go", "nginx", "axum-hangup", "axum-hyper"],
    "bytes1m": ["hangup", "hyper", "actix", "go", "nginx"],
    "watch": ["hangup", "hangup-nowatch"],
    "idle": ["hangup", "hangup-rel0", "hyper", "actix", "go", "nginx"],
    "detection": [],
}
# Reference row of the ratios, per scenario.
REFERENCE = {"keepalive": "hyper", "pipelined": "hyper-pf", "bytes1m": "hyper",
             "watch": "hangup-nowatch", "idle": "hyper"}

OUT_DIR = os.path.join(BENCH_DIR, "out", time.strftime("%Y%m%d-%H%M%S"))
BIN_DIR = os.path.join(OUT_DIR, "bin")
BINS = {}             # server -> path of the snapshot that is run
DETECT_BIN = None
CURRENT = []          # processes running right now (servers, clients): stopped on exit


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def die(msg):
    log(f"error: {msg}")
    sys.exit(1)


# ---------------------------------------------------------------- processes

def kill_pid(pid, grace=5.0):
    """SIGTERM one process we started, SIGKILL after `grace` seconds."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    end = time.monotonic() + grace
    while time.monotonic() < end:
        if not pid_alive(pid):
            return
        time.sleep(0.05)
    log(f"process {pid} ignored SIGTERM; sending SIGKILL")
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def cleanup():
    for proc in list(CURRENT):
        stop_proc(proc)


def stop_proc(proc):
    if proc.poll() is None:
        children = [p for p in tree_pids(proc.pid) if p != proc.pid]
        kill_pid(proc.pid)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for child in children:       # nginx's worker, if the master left it behind
            if pid_alive(child):
                kill_pid(child, 2.0)
    else:
        proc.wait()
    if proc in CURRENT:
        CURRENT.remove(proc)


def on_signal(signum, _frame):
    raise SystemExit(128 + signum)


# ---------------------------------------------------------------- /proc

def cpu_ticks(pids):
    """(utime, stime) summed over processes, in clock ticks (fields 14, 15)."""
    u = s = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        u += int(fields[11])
        s += int(fields[12])
    return u, s


def rss_bytes(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def busy_ticks():
    """Busy ticks of the whole machine: all but idle and iowait (steal counts)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = v
    return user + nice + system + irq + softirq + steal


def children_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def wait_quiet():
    """Wait (at most QUIET_WAIT s) until others used < OTHER_MAX % of a core
    for QUIET_SECS seconds in a row."""
    quiet = 0
    for waited in range(QUIET_WAIT):
        b0 = busy_ticks()
        time.sleep(1)
        b1 = busy_ticks()
        if (b1 - b0) * 100 <= OTHER_MAX * CLK_TCK:
            quiet += 1
            if quiet >= QUIET_SECS:
                if waited >= QUIET_SECS:
                    log(f"machine quiet again after {waited}s")
                return
        else:
            quiet = 0
            if waited % 20 == 0:
                log(f"other processes are using the CPU; waiting (at most {QUIET_WAIT}s)")
    log(f"machine still busy after {QUIET_WAIT}s; measuring anyway (the run will be flagged)")


# ---------------------------------------------------------------- setup

def run_cmd(cmd, **kw):
    log("$ " + " ".join(cmd))
    return subprocess.run(cmd, check=True, **kw)


def ensure_tools():
    need = []
    if not shutil.which("wrk"):
        need.append("wrk")
    if "go" in SERVERS and not shutil.which("go"):
        need.append("golang-go")
    if "nginx" in SERVERS and not (shutil.which("nginx") or os.path.exists("/usr/sbin/nginx")):
        need.append("nginx")
    if not need:
        return
    log(f"installing {' '.join(need)} (apt)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run_cmd(["apt-get", "update", "-qq"], env=env)
    run_cmd(["apt-get", "install", "-y", "-qq", *need], env=env, stdout=subprocess.DEVNULL)
    # Debian's nginx package may start the system nginx (port 80): leave it,
    # ours runs from its own config on its own port.


def nginx_path():
    return shutil.which("nginx") or "/usr/sbin/nginx"


def hangup_needed():
    return "hangup" in SERVERS and any(s != "detection" for s in SCENARIOS)


def build():
    """Builds, one after the other (2 cores, shared machine)."""
    global DETECT_BIN
    examples = []
    if hangup_needed():
        examples += ["--example", "bench_server"]
    if "axum" in SERVERS and any(s in ("keepalive", "pipelined") for s in SCENARIOS):
        examples += ["--example", "axum_bench"]
    if examples and not NO_BUILD:
        log("building hangup's " + " and ".join(examples[1::2]) + " example" + ("s" if len(examples) > 2 else ""))
        run_cmd(["cargo", "build", "--release", *examples], cwd=ROOT)
    if "detection" in SCENARIOS and "hangup" in SERVERS:
        if NO_BUILD:
            cands = [os.path.join(ROOT, "target/release/deps", f)
                     for f in os.listdir(os.path.join(ROOT, "target/release/deps"))
                     if re.fullmatch(r"hangup_detection-[0-9a-f]+", f)]
            if not cands:
                die("NO_BUILD=1 but no hangup_detection bench binary in target/release/deps")
            DETECT_BIN = max(cands, key=os.path.getmtime)
        else:
            log("building hangup's hangup_detection benchmark")
            out = subprocess.run(
                ["cargo", "bench", "--bench", "hangup_detection", "--no-run",
                 "--message-format=json-render-diagnostics"],
                cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True).stdout
            for line in out.splitlines():
                try:
                    m = json.loads(line)
                except ValueError:
                    continue
                if (m.get("reason") == "compiler-artifact" and m["target"]["name"] == "hangup_detection"
                        and m.get("executable")):
                    DETECT_BIN = m["executable"]
            if not DETECT_BIN:
                die("cargo did not report the hangup_detection executable")
    if {"hyper", "actix"} & set(SERVERS) and not NO_BUILD:
        log("building the Rust peers (bench/peers: hyper-hello, actix-bench)")
        run_cmd(["cargo", "build", "--release", "--manifest-path", os.path.join(PEERS, "Cargo.toml")])
    if "go" in SERVERS and not NO_BUILD:
        log("building the Go peer (bench/peers/go)")
        os.makedirs(os.path.join(PEERS, "target"), exist_ok=True)
        run_cmd(["go", "build", "-trimpath", "-o", os.path.join(PEERS, "target", "go-bench"), "."],
                cwd=os.path.join(PEERS, "go"), env=dict(os.environ, GOFLAGS="-mod=mod"))


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def snapshot_binaries():
    """Run copies, not build outputs: someone working in this tree may rebuild
    target/release/examples/bench_server in the middle of a benchmark."""
    global DETECT_BIN
    os.makedirs(BIN_DIR, exist_ok=True)
    src = {
        "hangup": os.environ.get("HANGUP_BIN", os.path.join(ROOT, "target/release/examples/bench_server")),
        "hyper": os.environ.get("HYPER_BIN", os.path.join(PEERS, "target/release/hyper-hello")),
        "actix": os.environ.get("ACTIX_BIN", os.path.join(PEERS, "target/release/actix-bench")),
        "go": os.environ.get("GO_BIN", os.path.join(PEERS, "target/go-bench")),
        "axum": os.environ.get("AXUM_BIN", os.path.join(ROOT, "target/release/examples/axum_bench")),
    }
    sums = []
    for name in SERVERS:
        if name == "nginx":
            BINS["nginx"] = nginx_path()   # the system's, recorded by hash only
            sums.append((sha256(BINS["nginx"]), "nginx"))
            continue
        if name == "hangup" and not hangup_needed():
            continue
        if name == "axum" and not any(s in ("keepalive", "pipelined") for s in SCENARIOS):
            continue
        if name not in src:
            die(f"unknown server {name} (known: {' '.join(ALL_SERVERS)})")
        if not os.access(src[name], os.X_OK):
            die(f"missing {src[name]}")
        dst = os.path.join(BIN_DIR, name)
        shutil.copy2(src[name], dst)
        BINS[name] = dst
        sums.append((sha256(dst), name))
    if DETECT_BIN:
        dst = os.path.join(BIN_DIR, "hangup_detection")
        shutil.copy2(DETECT_BIN, dst)
        DETECT_BIN = dst
        sums.append((sha256(dst), "hangup_detection"))
    with open(os.path.join(OUT_DIR, "SHA256SUMS"), "w") as f:
        for h, name in sums:
            f.write(f"{h}  {name}\n")
    return sums


def nofile_limit():
    """Raise our RLIMIT_NOFILE (inherited by servers and clients) for the
    idle-connections scenario: soft = hard, hard raised if root may."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = IDLE_CONNS + 1024
    if hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return want
        except (ValueError, OSError):
            pass
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def write_nginx_conf(nofile):
    """nginx: one worker, no access log, keep-alive without a request cap,
    `return 200` for /plaintext, static files for /bytes/N."""
    prefix = os.path.join(OUT_DIR, "nginx")
    html = os.path.join(prefix, "html")
    os.makedirs(os.path.join(html, "bytes"), exist_ok=True)
    os.makedirs(os.path.join(prefix, "tmp"), exist_ok=True)
    for size in sorted({BYTES_SIZE, 13}):
        with open(os.path.join(html, "bytes", str(size)), "wb") as f:
            f.write(b"0" * size)
    user = "user root root;\n" if os.geteuid() == 0 else ""
    conf = f"""# Generated by bench/harness.py for one benchmark run.
{user}worker_processes 1;
daemon off;
master_process on;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
worker_rlimit_nofile {nofile};
events {{
    worker_connections {min(nofile - 64, 65535)};
    use epoll;
}}
http {{
    access_log off;
    server_tokens off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 60s;
    keepalive_requests 1000000000;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    server {{
        listen 127.0.0.1:{PORTS['nginx']} backlog=1024;
        location = /plaintext {{ default_type text/plain; return 200 "Hello, World!"; }}
        location = / {{ default_type text/plain; return 200 "Hello, World!"; }}
        location /bytes/ {{ root {html}; default_type application/octet-stream; }}
        # POST /echo: nginx has no such handler (N/A in the report).
    }}
}}
"""
    path = os.path.join(prefix, "nginx.conf")
    with open(path, "w") as f:
        f.write(conf)
    return prefix, path


NGINX = None   # (prefix, conf)


# ---------------------------------------------------------------- servers

def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Server:
    def __init__(self, variant):
        self.variant = variant
        self.server, self.binary, self.args, self.env, _ = VARIANTS[variant]
        self.port = PORTS[variant]
        self.proc = None
        self.log_path = os.path.join(OUT_DIR, f"{variant}.server.log")

    def start(self):
        if port_open(self.port):
            die(f"port {self.port} is already in use; set BASE_PORT")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("HANGUP_") and k not in ("GOMAXPROCS", "PIPELINE_FLUSH")}
        env.update(self.env)
        addr = f"127.0.0.1:{self.port}"
        if self.server == "nginx":
            prefix, conf = NGINX
            cmd = [BINS["nginx"], "-p", prefix, "-c", conf, "-e", os.path.join(prefix, "error.log")]
        else:
            cmd = [BINS[self.binary], addr, *self.args]
        logf = open(self.log_path, "ab")
        # taskset execs the server: the Popen pid is the server's own.
        self.proc = subprocess.Popen(["taskset", "-c", SERVER_CPU, *cmd], env=env,
                                     stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        logf.close()
        CURRENT.append(self.proc)
        for _ in range(100):                     # up to 10 s to start listening
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.variant} exited at start-up (see {self.log_path})")
            if port_open(self.port):
                return self
            time.sleep(0.1)
        raise RuntimeError(f"{self.variant} did not accept on port {self.port} within 10 s")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def pids(self):
        return tree_pids(self.proc.pid)

    def cpu(self):
        return cpu_ticks(self.pids())

    def rss(self):
        return rss_bytes(self.pids())

    def stop(self):
        if self.proc is not None:
            stop_proc(self.proc)


def http_request(port, method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def check_plaintext(port):
    status, _, body = http_request(port, "GET", "/plaintext")
    if status != 200 or body != b"Hello, World!":
        raise RuntimeError(f"GET /plaintext answered {status} {body[:60]!r}, not 200 'Hello, World!'")


def check_bytes(port):
    status, headers, body = http_request(port, "GET", f"/bytes/{BYTES_SIZE}")
    if status != 200 or len(body) != BYTES_SIZE or body.count(b"0") != BYTES_SIZE:
        raise RuntimeError(f"GET /bytes/{BYTES_SIZE} answered {status} with {len(body)} bytes")
    if headers.get("content-length") != str(BYTES_SIZE):
        raise RuntimeError(f"GET /bytes/{BYTES_SIZE}: no Content-Length: {BYTES_SIZE} ({headers})")


def check_echo(port):
    payload = os.urandom(100_000)
    status, _, body = http_request(port, "POST", "/echo", body=payload)
    if status != 200 or body != payload:
        raise RuntimeError(f"POST /echo (100 kB) answered {status} with {len(body)} bytes, not the body")


def preflight(variants):
    """Every route of every server, once: a wrong answer is never benchmarked."""
    failed = {}
    for v in variants:
        srv = Server(v)
        routes = ROUTES.get(VARIANTS[v][0], ALL_ROUTES)
        try:
            srv.start()
            check_plaintext(srv.port)
            if "bytes" in routes:
                check_bytes(srv.port)
            if "echo" in routes:
                check_echo(srv.port)
            if not srv.alive():
                raise RuntimeError("died during the checks")
            names = {"plaintext": "/plaintext", "bytes": f"/bytes/{BYTES_SIZE}", "echo": "POST /echo"}
            log(f"preflight {v}: " + ", ".join(names[r] for r in routes) + " ok"
                + (f" (not served: {', '.join(names[r] for r in ALL_ROUTES if r not in routes)})"
                   if len(routes) < len(ALL_ROUTES) else ""))
        except (RuntimeError, OSError, http.client.HTTPException) as e:
            failed[v] = str(e)
            log(f"preflight {v}: FAILED: {e} -- it is left out of the measurements")
        finally:
            srv.stop()
    return failed


# ---------------------------------------------------------------- wrk

def run_client(cmd, logfile, timeout, env=None):
    with open(logfile, "wb") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL)
        CURRENT.append(proc)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_proc(proc)
            raise RuntimeError(f"{cmd[3] if len(cmd) > 3 else cmd[0]} did not finish in {timeout}s (see {logfile})")
        CURRENT.remove(proc)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[3:5])} failed with status {proc.returncode} (see {logfile})")


def run_wrk(scenario, port, seconds, logfile):
    script, path, conns, _ = WRK_SCENARIOS[scenario]
    env = dict(os.environ, WRK_CONNECTIONS=str(conns), PIPELINE_DEPTH=str(PIPELINE_DEPTH))
    cmd = ["taskset", "-c", CLIENT_CPU, "wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency",
           "-s", os.path.join(BENCH_DIR, script), f"http://127.0.0.1:{port}{path}"]
    run_client(cmd, logfile, seconds + 30, env)


def parse_bench_line(logfile):
    with open(logfile, errors="replace") as f:
        for line in f:
            if line.startswith("BENCH "):
                return dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
    raise RuntimeError(f"no BENCH line in {logfile}")


def num(v):
    try:
        x = float(v)
        return None if x != x else x
    except (TypeError, ValueError):
        return None


def measure_wrk(scenario, variant, run):
    """One server process, one measured wrk run. Returns a record."""
    wait_quiet()
    srv = Server(variant)
    logfile = os.path.join(OUT_DIR, f"{scenario}.{variant}.{run}.wrk.txt")
    try:
        srv.start()
        check_plaintext(srv.port)
        if scenario == "bytes1m":
            check_bytes(srv.port)
        if WARMUP > 0:
            run_wrk(scenario, srv.port, WARMUP, logfile + ".warmup")
        busy0, (u0, s0), c0 = busy_ticks(), srv.cpu(), children_cpu()
        run_wrk(scenario, srv.port, DURATION, logfile)
        c1, (u1, s1), busy1 = children_cpu(), srv.cpu(), busy_ticks()
        if not srv.alive():
            raise RuntimeError(f"{variant} died during the run (see {srv.log_path})")
    finally:
        srv.stop()
    b = parse_bench_line(logfile)
    requests = int(b["requests"])
    secs = int(b["duration_us"]) / 1e6
    if requests <= 0:
        raise RuntimeError(f"{variant} completed no request (see {logfile})")
    cpu_s = (u1 + s1 - u0 - s0) / CLK_TCK
    user_s = (u1 - u0) / CLK_TCK
    wrk_s = c1 - c0
    nbytes = int(b["bytes"])
    others = max(0.0, 100 * ((busy1 - busy0) / CLK_TCK - cpu_s - wrk_s) / secs)
    rec = {
        "scenario": scenario, "variant": variant, "run": run, "requests": requests, "secs": secs,
        "bytes": nbytes, "rps": requests / secs, "p50_us": num(b.get("p50_us")),
        "p99_us": num(b.get("p99_us")), "max_us": num(b.get("max_us")),
        "cpu_us_req": cpu_s / requests * 1e6, "user_us_req": user_s / requests * 1e6,
        "gib_s": nbytes / secs / 2**30, "cpu_us_mib": cpu_s / (nbytes / 2**20) * 1e6,
        "srv_cpu": 100 * cpu_s / secs, "wrk_cpu": 100 * wrk_s / secs, "others": others,
        "sock_err": sum(int(b[k]) for k in ("connect", "read", "write", "timeout")),
        "non2xx": int(b["status"]),
    }
    log(f"{scenario:9} {variant:14} run {run}: {rec['rps']:9.0f} req/s  p99 {b.get('p99_us')} us  "
        f"{rec['cpu_us_req']:.3f} CPU us/req (user {rec['user_us_req']:.3f})"
        + (f"  {rec['gib_s']:.3f} GiB/s {rec['cpu_us_mib']:.1f} CPU us/MiB" if scenario == "bytes1m" else "")
        + f"  server CPU {rec['srv_cpu']:.0f}%  client CPU {rec['wrk_cpu']:.0f}%  others {others:.0f}%"
        f"  socket errors {rec['sock_err']}  non-2xx {rec['non2xx']}")
    return rec


# ---------------------------------------------------------------- idle

def read_line(stream, timeout):
    ready, _, _ = select.select([stream], [], [], timeout)
    if not ready:
        raise RuntimeError(f"no answer from the idle client in {timeout}s")
    line = stream.readline().decode(errors="replace").strip()
    if not line:
        raise RuntimeError("the idle client ended without answering")
    return dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)


def measure_idle(variant, run):
    """IDLE_CONNS keep-alive connections, one request each, held open:
    server RSS growth per connection."""
    wait_quiet()
    srv = Server(variant)
    logfile = os.path.join(OUT_DIR, f"idle.{variant}.{run}.client.txt")
    client = None
    try:
        srv.start()
        check_plaintext(srv.port)
        time.sleep(0.5)
        rss0, (u0, s0) = srv.rss(), srv.cpu()
        with open(logfile, "wb") as errf:
            client = subprocess.Popen(
                ["taskset", "-c", CLIENT_CPU, sys.executable, os.path.join(BENCH_DIR, "idle_client.py"),
                 "--port", str(srv.port), "--conns", str(IDLE_CONNS), "--open-timeout", "120",
                 "--hold", "60"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errf)
        CURRENT.append(client)
        ready = read_line(client.stdout, 150)
        rss_open, (u1, s1) = srv.rss(), srv.cpu()
        time.sleep(IDLE_SETTLE)
        rss_idle = srv.rss()
        alive_srv = srv.alive()
        client.stdin.write(b"sampled\n")
        client.stdin.flush()
        alive = read_line(client.stdout, 30)
        client.wait(timeout=60)
        CURRENT.remove(client)
        if not alive_srv or not srv.alive():
            raise RuntimeError(f"{variant} died during the run (see {srv.log_path})")
    finally:
        if client is not None and client in CURRENT:
            stop_proc(client)
        srv.stop()
    opened = int(ready["opened"])
    if opened == 0:
        raise RuntimeError(f"{variant}: no idle connection could be opened ({ready.get('first_error')})")
    rec = {
        "scenario": "idle", "variant": variant, "run": run, "conns": IDLE_CONNS, "opened": opened,
        "errors": int(ready["errors"]), "first_error": ready.get("first_error", "-"),
        "alive": int(alive["alive"]), "open_secs": float(ready["secs"]),
        "rss0_mib": rss0 / 2**20, "rss_open_mib": rss_open / 2**20, "rss_idle_mib": rss_idle / 2**20,
        "kib_open": (rss_open - rss0) / opened / 1024, "kib_idle": (rss_idle - rss0) / opened / 1024,
        "cpu_us_conn": (u1 + s1 - u0 - s0) / CLK_TCK / opened * 1e6, "others": 0.0,
    }
    log(f"idle      {variant:14} run {run}: {opened} open ({rec['errors']} errors, {rec['alive']} alive at the end) "
        f"in {rec['open_secs']:.1f}s; RSS {rec['rss0_mib']:.1f} -> {rec['rss_open_mib']:.1f} -> "
        f"{rec['rss_idle_mib']:.1f} MiB after {IDLE_SETTLE}s idle: {rec['kib_idle']:.2f} KiB/conn "
        f"(at open {rec['kib_open']:.2f}); {rec['cpu_us_conn']:.1f} CPU us per connection set-up")
    return rec


# ---------------------------------------------------------------- detection

DETECT_RE = re.compile(r"hang-up detection, client (\w+): n=(\d+) median=([\d.]+)µs p99=([\d.]+)µs max=([\d.]+)µs")


def measure_detection(run):
    wait_quiet()
    logfile = os.path.join(OUT_DIR, f"detection.{run}.txt")
    busy0, c0, t0 = busy_ticks(), children_cpu(), time.monotonic()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANGUP_")}
    env["ABORTS"] = str(ABORTS)
    run_client(["taskset", "-c", f"{SERVER_CPU},{CLIENT_CPU}", DETECT_BIN], logfile,
               60 + ABORTS * 0.2, env)
    c1, busy1, t1 = children_cpu(), busy_ticks(), time.monotonic()
    with open(logfile, errors="replace") as f:
        text = f.read()
    rec = {"scenario": "detection", "variant": "hangup", "run": run,
           "output": [l for l in text.splitlines() if l.startswith("hang-up detection")],
           "others": max(0.0, 100 * ((busy1 - busy0) / CLK_TCK - (c1 - c0)) / (t1 - t0))}
    for m in DETECT_RE.finditer(text):
        leave = m.group(1).upper()
        rec[leave] = {"n": int(m.group(2)), "median": float(m.group(3)), "p99": float(m.group(4)),
                      "max": float(m.group(5))}
    if "FIN" not in rec or "RST" not in rec:
        raise RuntimeError(f"hangup_detection printed no FIN/RST line (see {logfile})")
    log(f"detection run {run}: " + "; ".join(rec["output"]) + f"  (others {rec['others']:.0f}%)")
    return rec


# ---------------------------------------------------------------- driver

ATTEMPTS = os.path.join(OUT_DIR, "attempts.jsonl")
RESULTS = os.path.join(OUT_DIR, "results.jsonl")


def append(path, rec):
    with open(path, "a") as f:
        f.write(json.dumps(rec) + "\n")


def measure_clean(fn, *args):
    """Measure; measure again (at most RETRIES times) while other processes
    disturbed the run or the run failed. Keeps the last attempt."""
    rec = None
    for attempt in range(RETRIES + 1):
        try:
            rec = fn(*args)
        except (RuntimeError, OSError, http.client.HTTPException, KeyError, ValueError) as e:
            rec = {"scenario": args[0] if fn is measure_wrk else ("idle" if fn is measure_idle else "detection"),
                   "variant": args[-2] if fn is not measure_detection else "hangup", "run": args[-1],
                   "failed": str(e), "others": 0.0}
            log(f"FAILED: {rec['scenario']} {rec['variant']} run {rec['run']}: {e}")
            append(ATTEMPTS, rec)
            if attempt < RETRIES:
                log("measuring it again")
            continue
        rec["attempt"] = attempt + 1
        append(ATTEMPTS, rec)
        if rec["others"] <= OTHER_MAX:
            break
        if attempt < RETRIES:
            log(f"others used {rec['others']:.0f}% of a core during that run: measuring it again")
    append(RESULTS, rec)
    return rec


def machine_info():
    def sh(cmd):
        try:
            return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  timeout=20).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return "?"
    model = "?"
    mhz = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name") and model == "?":
                model = line.split(":", 1)[1].strip()
            if line.startswith("cpu MHz") and mhz == "?":
                mhz = line.split(":", 1)[1].strip()
    lock = {}
    try:
        with open(os.path.join(PEERS, "Cargo.lock")) as f:
            for name, ver in re.findall(r'name = "([^"]+)"\nversion = "([^"]+)"', f.read()):
                lock[name] = ver
    except OSError:
        pass
    head = sh(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    dirty = sh(["git", "--no-optional-locks", "-C", ROOT, "status", "--porcelain", "--untracked-files=no",
                "--", "src", "examples", "benches", "Cargo.toml", "Cargo.lock"])
    return {
        "nproc": os.cpu_count(), "model": model, "mhz": mhz, "kernel": os.uname().release,
        "wrk": " ".join(sh(["wrk", "-v"]).split()[:2]) if shutil.which("wrk") else "?",
        "go": sh(["go", "version"]) if "go" in SERVERS else "-",
        "nginx": sh([nginx_path(), "-v"]) if "nginx" in SERVERS else "-",
        "rustc": sh(["rustc", "-V"]), "python": sys.version.split()[0],
        "peers": ", ".join(f"{k} {lock[k]}" for k in ("hyper", "hyper-util", "actix-web", "actix-http", "tokio")
                           if k in lock),
        "axum": axum_versions() if "axum" in SERVERS else "-",
        "head": head, "dirty": [l.strip() for l in dirty.splitlines() if l.strip()],
    }


def axum_versions():
    """axum, hyper, hyper-util and tokio as hangup's Cargo.lock has them
    (examples/axum_bench is built in hangup's tree)."""
    lock = {}
    try:
        with open(os.path.join(ROOT, "Cargo.lock")) as f:
            for name, ver in re.findall(r'name = "([^"]+)"\nversion = "([^"]+)"', f.read()):
                lock.setdefault(name, ver)
    except OSError:
        pass
    return ", ".join(f"{k} {lock[k]}" for k in ("axum", "hyper", "hyper-util", "tokio") if k in lock)


def main():
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    global NGINX, SERVERS
    bad = [s for s in SCENARIOS if s not in ALL_SCENARIOS]
    if bad:
        die(f"unknown scenario(s) {bad} (known: {' '.join(ALL_SCENARIOS)})")
    bad = [s for s in SERVERS if s not in ALL_SERVERS]
    if bad:
        die(f"unknown server(s) {bad} (known: {' '.join(ALL_SERVERS)})")
    if RUNS < 1 or DURATION < 1:
        die("RUNS and DURATION must be at least 1")
    os.makedirs(OUT_DIR, exist_ok=True)
    try:
        ensure_tools()
        build()
        sums = snapshot_binaries()
        nofile = nofile_limit()
        if "nginx" in SERVERS:
            NGINX = write_nginx_conf(nofile)
        info = machine_info()
        info["sums"] = sums
        info["nofile"] = nofile
        info["started"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        info["settings"] = (f"RUNS={RUNS} DURATION={DURATION}s WARMUP={WARMUP}s WATCH_RUNS={WATCH_RUNS} "
                            f"CONNECTIONS={CONNECTIONS} PIPELINE_DEPTH={PIPELINE_DEPTH} "
                            f"BYTES_CONNECTIONS={BYTES_CONNECTIONS} BYTES_SIZE={BYTES_SIZE} "
                            f"IDLE_CONNS={IDLE_CONNS} IDLE_SETTLE={IDLE_SETTLE}s ABORTS={ABORTS}"
                            + (" QUICK=1" if QUICK else ""))
        info["scenarios"] = SCENARIOS
        with open(os.path.join(OUT_DIR, "info.json"), "w") as f:
            json.dump(info, f, indent=1)

        plan = {s: [v for v in SCENARIO_VARIANTS[s] if VARIANTS[v][0] in SERVERS] for s in SCENARIOS}
        used = [v for v in VARIANTS if any(v in vs for vs in plan.values())]
        log(f"load average: {open('/proc/loadavg').read().split()[:3]} (should be near 0)")
        log(info["settings"])
        log(f"raw output in {OUT_DIR}")
        failed = preflight(used)
        info["preflight_failed"] = failed
        with open(os.path.join(OUT_DIR, "info.json"), "w") as f:
            json.dump(info, f, indent=1)
        plan = {s: [v for v in vs if v not in failed] for s, vs in plan.items()}

        n_wrk = sum(len(plan[s]) * (WATCH_RUNS if s == "watch" else RUNS) for s in WRK_SCENARIOS if s in plan)
        n_idle = len(plan.get("idle", [])) * RUNS
        n_det = RUNS if "detection" in plan and DETECT_BIN else 0
        est = n_wrk * (QUIET_SECS + WARMUP + DURATION + 1.5) + n_idle * (QUIET_SECS + 6 + IDLE_SETTLE) + n_det * 20
        log(f"{n_wrk} wrk runs, {n_idle} idle runs, {n_det} detection runs: about {est / 60:.0f} minutes "
            "on a quiet machine")

        rounds = max([RUNS] + ([WATCH_RUNS] if "watch" in plan else []))
        for run in range(1, rounds + 1):
            for scenario in SCENARIOS:
                if run > (WATCH_RUNS if scenario == "watch" else RUNS):
                    continue
                if scenario in WRK_SCENARIOS:
                    for v in plan[scenario]:
                        measure_clean(measure_wrk, scenario, v, run)
                elif scenario == "idle":
                    for v in plan[scenario]:
                        measure_clean(measure_idle, v, run)
                elif scenario == "detection" and DETECT_BIN:
                    measure_clean(measure_detection, run)
    finally:
        cleanup()

    import tables  # bench/tables.py
    text = tables.render(OUT_DIR)
    with open(os.path.join(OUT_DIR, "table.txt"), "w") as f:
        f.write(text)
    print()
    print(text, end="")


if __name__ == "__main__":
    sys.dont_write_bytecode = True   # no __pycache__ in bench/
    sys.path.insert(0, BENCH_DIR)
    try:
        main()
    finally:
        cleanup()
