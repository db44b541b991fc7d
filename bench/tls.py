#!/usr/bin/env python3
"""HTTPS: hangup's benchmark server (rustls, ring provider) against Debian's
nginx (OpenSSL), same certificate, same TLS 1.3 suite and key exchange:
1 MiB responses (GiB/s, server CPU per MiB) and full handshakes (per
second, server CPU per handshake).

    python3 bench/tls.py                  # ROUNDS=3 DURATION=5: about 3 minutes on a quiet machine
    ROUNDS=5 DURATION=10 python3 bench/tls.py
    SCENARIOS=handshake python3 bench/tls.py

At start it makes one ECDSA P-256 certificate and key (`openssl req
-x509`, CN and subjectAltName localhost / 127.0.0.1) under
bench/out/tls-<stamp>/; both servers load the same files.

Servers:
  hangup  `examples/bench_server` with HANGUP_TLS_CERT / HANGUP_TLS_KEY:
          `hangup::tls::TlsFiles::load`, as `hangup serve --tls-cert`
          configures it (rustls 0.23, ring provider, TLS 1.3 and 1.2, its
          session cache of 256 and TLS 1.3 tickets). rustls is not pinned:
          it picks the client's first suite it supports. HANGUP_BIN, default
          target/release/examples/bench_server (built with `cargo build
          --release --example bench_server` if missing: the `tls` feature
          comes with the default `cli` feature); the run uses a copy taken at
          start (out/tls-<stamp>/bin/, its hash in the report header).
  nginx   Debian's nginx, config generated per run: 1 worker, access_log
          off, `listen ... ssl`, `ssl_protocols TLSv1.3`, `ssl_conf_command
          Ciphersuites SUITE`, `ssl_ecdh_curve X25519`, `sendfile on`,
          `return 200 "Hello, World!"` for /plaintext and a static file of
          1 MiB of '0' for /bytes/1048576 (as bench/harness.py generates
          them). Under TLS nginx's `sendfile on` does not send the file
          from the page cache: without kTLS (not enabled here; it needs
          `ssl_conf_command Options KTLS` and kernel and OpenSSL support) it
          reads the file into its buffer and encrypts it through SSL_write
          (16 KiB records, `ssl_buffer_size`), a copy like hangup's.
SUITE is TLS_AES_256_GCM_SHA384, what rustls picks for an OpenSSL client
(OpenSSL offers it first); the report header prints what `openssl
s_client -tls1_3` negotiated with each server (protocol, suite, key
exchange group, signature), and the run stops if they differ.

Scenarios (SCENARIOS, default "bytes1m handshake"):
  bytes1m    `wrk -t1 -cCONNECTIONS(8) -dDURATION` GET /bytes/1048576 over
             https (keep-alive: 8 handshakes per run, then bulk records),
             after an unmeasured 1 s wrk on the same server process. GiB/s =
             bytes wrk read / duration (wrk's Transfer/sec), CPU us/MiB =
             server CPU / MiB read.
  handshake  HS_CLIENTS (4) `openssl s_time -new -tls1_3 -ciphersuites
             SUITE -www /plaintext -time DURATION` processes at once: each
             makes a TCP connection, a full handshake, one HTTP/1.0 GET
             /plaintext, reads to the server's close, again and again. The
             figures are per connection: TCP accept, full handshake
             (X25519, ECDSA P-256 signature, the server's session tickets),
             one request, close. Rate = connections of all processes / wall
             time; CPU us/hs = server CPU / connections.
             Why not wrk with `Connection: close`: wrk 4.1 reuses one SSL
             object per connection slot (ssl_close is SSL_shutdown then
             SSL_clear, which keeps a cleanly closed session), so every
             reconnection offers the last session ticket and resumes:
             checked against this nginx with `$ssl_session_reused` in its
             access log, 827 of 829 connections of a 1 s wrk run were
             resumed. s_time -new makes a new SSL object without a session
             for every connection, and prints one character per connection,
             'r' for a resumed one: the script counts them and fails the
             run on any 'r' (also checked with nginx's log: 1108 of 1108
             full). s_time is blocking, one connection at a time per
             process, hence several processes; all on CLIENT_CPU. The
             client does more public-key work per handshake than the server
             (an ECDSA verify against a sign), so the rate may be capped by
             the client ("clnt CPU" near 100 %): then server CPU per
             handshake is the comparison, as in bench/README.md.

Method (as bench/serve_files.py): every measurement starts the server
afresh pinned to SERVER_CPU (taskset; nginx's master and worker), the
client on CLIENT_CPU, rounds interleave the servers (round 1: hangup
nginx, round 2: ...), medians with (min-max), and the ratios to nginx of
the runs paired in the same round. Server CPU = utime + stime of its
processes (/proc/PID/stat) over the run; clnt CPU = the clients' rusage
(clnt us/MiB, clnt us/hs: the clients' CPU per MiB read, per connection).
Before each measurement it waits (at most QUIET_WAIT s) until other
processes have used less than 10 % of a core for 3 seconds in a row;
"others" is CPU the rest of the machine used during the run, in % of one
core (the largest over the rounds). Each measurement (quiet wait included)
holds an exclusive flock(2) on LOCK (/tmp/hangup-bench.lock, the lock
`flock /tmp/hangup-bench.lock CMD` takes) so that benchmarks of other
people on this machine do not overlap with it; LOCK= (empty) skips it.

Environment: ROUNDS (3), DURATION (5 s), CONNECTIONS (8), HS_CLIENTS (4),
SCENARIOS, SUITE, SERVER_CPU (0), CLIENT_CPU (1), PORT (3300), QUIET_WAIT
(60 s), LOCK, HANGUP_BIN. Only 127.0.0.1 is used; everything started is
stopped by its PID; every wait is bounded. Raw output goes to
bench/out/tls-<stamp>/ (gitignored).
"""

import fcntl
import hashlib
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

from procstat import busy_seconds, cpu_seconds, spread, tree_pids, wait_quiet

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
ROUNDS = int(os.environ.get("ROUNDS", "3"))
DURATION = int(os.environ.get("DURATION", "5"))
CONNECTIONS = int(os.environ.get("CONNECTIONS", "8"))
HS_CLIENTS = int(os.environ.get("HS_CLIENTS", "4"))
SCENARIOS = os.environ.get("SCENARIOS", "bytes1m handshake").split()
SUITE = os.environ.get("SUITE", "TLS_AES_256_GCM_SHA384")
SERVERS = ["hangup", "nginx"]
SERVER_CPU = os.environ.get("SERVER_CPU", "0")
CLIENT_CPU = os.environ.get("CLIENT_CPU", "1")
PORT = int(os.environ.get("PORT", "3300"))
QUIET_WAIT = int(os.environ.get("QUIET_WAIT", "60"))
LOCK = os.environ.get("LOCK", "/tmp/hangup-bench.lock")
OTHER_MAX = 10   # % of one core used by others above which the machine is busy
QUIET_SECS = 3
START_WAIT_S = 10.0
BYTES = 1 << 20
MIB = 1 << 20
STAMP = time.strftime("%Y%m%d-%H%M%S")
OUT = BENCH / "out" / f"tls-{STAMP}"
RUNNING = []


def log(message):
    print(f"[tls-bench] {message}", file=sys.stderr, flush=True)


def ensure_tools():
    missing = [tool for tool in ("wrk", "taskset", "openssl", "curl") if not shutil.which(tool)]
    if not shutil.which("nginx") and not Path("/usr/sbin/nginx").exists():
        missing.append("nginx")
    if missing:
        log(f"installing {' '.join(missing)} (apt)")
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:12]


def hangup_bin():
    """A copy of bench_server taken now: a rebuild in the tree halfway
    through does not change what is measured."""
    path = Path(os.environ.get("HANGUP_BIN", REPO / "target" / "release" / "examples" / "bench_server"))
    if not path.exists():
        log("building bench_server (release)")
        subprocess.run(["cargo", "build", "--release", "--example", "bench_server"], cwd=REPO, check=True)
    copy = OUT / "bin" / "bench_server"
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(path, copy)
    return copy


def nginx_path():
    return shutil.which("nginx") or "/usr/sbin/nginx"


def make_cert():
    """One ECDSA P-256 key and self-signed certificate for both servers."""
    cert, key = OUT / "cert.pem", OUT / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "7",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


def nginx_conf(cert, key):
    prefix = OUT / "nginx"
    html = prefix / "html"
    (html / "bytes").mkdir(parents=True, exist_ok=True)
    (prefix / "tmp").mkdir(parents=True, exist_ok=True)
    (html / "bytes" / str(BYTES)).write_bytes(b"0" * BYTES)
    user = "user root root;\n" if os.geteuid() == 0 else ""
    conf = prefix / "nginx.conf"
    conf.write_text(f"""# Generated by bench/tls.py for one run.
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
        listen 127.0.0.1:{PORT} ssl backlog=1024;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.3;
        ssl_conf_command Ciphersuites {SUITE};
        ssl_ecdh_curve X25519;
        location = /plaintext {{ default_type text/plain; return 200 "Hello, World!"; }}
        location /bytes/ {{ root {html}; default_type application/octet-stream; }}
    }}
}}
""")
    return prefix, conf


def command(server, ctx):
    if server == "hangup":
        return [str(ctx["hangup"]), f"127.0.0.1:{PORT}"], {
            "HANGUP_TLS_CERT": str(ctx["cert"]), "HANGUP_TLS_KEY": str(ctx["key"])}
    prefix, conf = ctx["nginx"]
    return [nginx_path(), "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")], {}


def children_cpu():
    t = os.times()
    return t.children_user + t.children_system


class BenchLock:
    """flock(2) on LOCK, shared with `flock /tmp/hangup-bench.lock CMD`.
    Waits without a bound: the holder is another benchmark, itself bounded."""

    def __enter__(self):
        self.fd = None
        if LOCK:
            self.fd = os.open(LOCK, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log(f"waiting for {LOCK} (another benchmark is measuring)")
                fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            os.close(self.fd)   # releases the lock


def port_open():
    try:
        with socket.create_connection(("127.0.0.1", PORT), timeout=0.5):
            return True
    except OSError:
        return False


def start(server, ctx, log_file):
    if port_open():
        raise SystemExit(f"port {PORT} is already in use; set PORT")
    cmd, extra = command(server, ctx)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANGUP_")}
    env.update(extra)
    # taskset execs the server: the Popen pid is the server's own.
    proc = subprocess.Popen(["taskset", "-c", SERVER_CPU, *cmd], env=env,
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


def check_answers():
    """The right answers over https before measuring."""
    for path, expect in (("/plaintext", "200 13"), (f"/bytes/{BYTES}", f"200 {BYTES}")):
        out = subprocess.run(["curl", "-sSk", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                              f"https://127.0.0.1:{PORT}{path}"], capture_output=True, text=True,
                             timeout=30).stdout
        if out != expect:
            raise SystemExit(f"GET {path} over https gave {out!r}, expected {expect}")


def negotiated():
    """What `openssl s_client -tls1_3` (OpenSSL's default offer, as wrk's)
    negotiates: protocol, suite, group, signature."""
    out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{PORT}", "-tls1_3",
                          "-servername", "localhost"], input="", capture_output=True, text=True,
                         timeout=30).stdout
    fields = {
        "protocol": re.search(r"^New, (TLSv[\d.]+), Cipher is (\S+)", out, re.M),
        "group": re.search(r"^Server Temp Key: (\w+)", out, re.M),
        "signature": re.search(r"^Peer signature type: (\S+)", out, re.M),
        "alpn": re.search(r"^ALPN protocol: (\S+)", out, re.M),
    }
    if not fields["protocol"]:
        raise SystemExit(f"openssl s_client got no TLS 1.3 session:\n{out}")
    return (f"{fields['protocol'].group(1)} {fields['protocol'].group(2)} "
            f"{fields['group'].group(1) if fields['group'] else '?'} "
            f"{fields['signature'].group(1) if fields['signature'] else '?'}")


def run_bytes(server):
    """wrk over https: 1 s unmeasured, then DURATION measured."""
    url = f"https://127.0.0.1:{PORT}/bytes/{BYTES}"
    wrk = ["taskset", "-c", CLIENT_CPU, "wrk", "-t1", f"-c{CONNECTIONS}", "--timeout", "30s"]
    subprocess.run([*wrk, "-d1s", url], capture_output=True, timeout=60)
    return [*wrk, f"-d{DURATION}s", url]


def parse_wrk(out, server):
    found = re.search(r"(\d+) requests in ([\d.]+)(\w+), ([\d.]+)(\w+) read", out)
    if not found or "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"wrk failed against {server}:\n{out}")
    requests = int(found.group(1))
    seconds = float(found.group(2)) * {"s": 1, "ms": 1e-3, "m": 60}[found.group(3)]
    unit = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}[found.group(5)]
    return requests, seconds, float(found.group(4)) * unit


def measure(server, scenario, ctx):
    with BenchLock():
        wait_quiet(QUIET_WAIT, log, OTHER_MAX, QUIET_SECS)
        n = len(list(OUT.glob(f"{server}-{scenario}-*.log")))
        with open(OUT / f"{server}-{scenario}-{n}.log", "w") as lf:
            proc = start(server, ctx, lf)
            try:
                check_answers()
                if scenario == "bytes1m":
                    cmd = run_bytes(server)
                pids = tree_pids(proc.pid)
                cpu_before, busy_before, clnt_before = cpu_seconds(pids), busy_seconds(), children_cpu()
                t0 = time.monotonic()
                if scenario == "bytes1m":
                    res = subprocess.run(cmd, capture_output=True, text=True, timeout=DURATION + 60)
                    outs = [res.stdout + res.stderr]
                    codes = [res.returncode]
                else:
                    clients = [subprocess.Popen(
                        ["taskset", "-c", CLIENT_CPU, "openssl", "s_time", "-connect", f"127.0.0.1:{PORT}",
                         "-new", "-tls1_3", "-ciphersuites", SUITE, "-www", "/plaintext",
                         "-time", str(DURATION)],
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                        for _ in range(HS_CLIENTS)]
                    outs, codes = [], []
                    for c in clients:
                        try:
                            outs.append(c.communicate(timeout=DURATION + 60)[0])
                        except subprocess.TimeoutExpired:
                            c.kill()
                            outs.append(c.communicate()[0])
                        codes.append(c.returncode)
                elapsed = time.monotonic() - t0
                cpu = cpu_seconds(tree_pids(proc.pid)) - cpu_before
                clnt = children_cpu() - clnt_before
                others = max(0.0, 100 * (busy_seconds() - busy_before - cpu - clnt) / elapsed)
                alive = proc.poll() is None
            finally:
                stop(proc)
            lf.write("\n".join(outs))
    if not alive:
        raise SystemExit(f"{server} died during the run (see {lf.name})")
    if any(codes):
        raise SystemExit(f"a client failed against {server} (exit {codes}):\n" + "\n".join(outs))
    r = {"cpu_share": cpu / elapsed, "clnt_share": clnt / elapsed, "others": others}
    if scenario == "bytes1m":
        requests, seconds, read = parse_wrk(outs[0], server)
        r.update(gib_s=read / seconds / (1 << 30), cpu_us_per_mib=cpu / (read / MIB) * 1e6,
                 req_s=requests / seconds, clnt_us=clnt / (read / MIB) * 1e6)
    else:
        conns = full = resumed = 0
        for out in outs:
            found = re.search(r"^(\d+) connections in [\d.]+s;", out, re.M)
            if not found:
                raise SystemExit(f"s_time printed no count against {server}:\n{out}")
            conns += int(found.group(1))
            progress = "".join(line for line in out.splitlines() if re.fullmatch(r"[*r.t3]+", line))
            full += progress.count("*")
            resumed += progress.count("r")
        if resumed or full != conns:
            raise SystemExit(f"{server}: {resumed} resumed and {full} full of {conns} connections; "
                             "every handshake must be full")
        r.update(hs_s=conns / elapsed, cpu_us_per_hs=cpu / conns * 1e6, conns=conns,
                 clnt_us=clnt / conns * 1e6)
    return r


def paired(runs, base, key):
    ratios = [r[key] / b[key] for r, b in zip(runs, base)]
    return f"x{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"


COLUMNS = {
    "bytes1m": [("gib_s", "GiB/s", "{:.2f}", True), ("cpu_us_per_mib", "CPU us/MiB", "{:.0f}", False)],
    "handshake": [("hs_s", "handshakes/s", "{:.0f}", True), ("cpu_us_per_hs", "CPU us/hs", "{:.0f}", False)],
}
CLIENT_UNIT = {"bytes1m": "us/MiB", "handshake": "us/hs"}
TITLES = {
    "bytes1m": lambda: (f"1 MiB responses over TLS: wrk -t1 -c{CONNECTIONS} -d{DURATION}s "
                        f"GET /bytes/{BYTES} (https, keep-alive)"),
    "handshake": lambda: (f"full handshakes: {HS_CLIENTS} x openssl s_time -new -tls1_3 -www /plaintext "
                          f"-time {DURATION} (a new connection, a full handshake and one GET each)"),
}


def table(scenario, results):
    (k1, n1, _, _), (k2, n2, _, _) = COLUMNS[scenario]
    lines = [TITLES[scenario](),
             f"  {'server':<7} {n1:<20} {n2:<18} {'clnt ' + CLIENT_UNIT[scenario]:<13} {'srv CPU':>7} "
             f"{'clnt CPU':>8} {'others':>6}  vs nginx: ratio of medians, paired per round (min-max)"]
    base = results[("nginx", scenario)]
    for server in SERVERS:
        runs = results[(server, scenario)]
        cols = [spread([r[k] for r in runs], fmt) for k, _, fmt, _ in COLUMNS[scenario]]
        clnt_per = f"{statistics.median(r['clnt_us'] for r in runs):.0f}"
        srv = f"{statistics.median(r['cpu_share'] for r in runs):.0%}"
        clnt = f"{statistics.median(r['clnt_share'] for r in runs):.0%}"
        others = f"{max(r['others'] for r in runs):.0f}%"
        ratio = ""
        if server != "nginx":
            ratio = "; ".join(
                f"{name} x{statistics.median(r[k] for r in runs) / statistics.median(b[k] for b in base):.2f}"
                f", paired {paired(runs, base, k)}" for k, name, _, _ in COLUMNS[scenario])
        lines.append(f"  {server:<7} {cols[0]:<20} {cols[1]:<18} {clnt_per:<13} {srv:>7} {clnt:>8} "
                     f"{others:>6}  {ratio}")
    for k, name, _, higher in COLUMNS[scenario]:
        if scenario == "handshake" and not higher:
            continue   # no target for CPU per handshake: reported, not judged
        h = statistics.median(r[k] for r in results[("hangup", scenario)])
        n = statistics.median(r[k] for r in base)
        ok = h >= n if higher else h <= n
        want = "at least" if higher else "at most"
        miss = "" if ok else f" (MISSED by {abs(h / n - 1):.0%})"
        lines.append(f"  target: hangup {name} {want} nginx's: {'met' if ok else 'MISSED'}: "
                     f"x{h / n:.2f}{miss}")
    if scenario == "handshake":
        clnt = statistics.median(r["clnt_share"] for s in SERVERS for r in results[(s, scenario)])
        srv = max(statistics.median(r["cpu_share"] for r in results[(s, scenario)]) for s in SERVERS)
        if clnt >= 0.9 and srv < 0.9:
            lines.append(f"  client-bound: the clients used {clnt:.0%} of their core, no server more than "
                         f"{srv:.0%} of its own: handshakes/s is then about 1 s of client CPU / the clients' "
                         "cost per connection (clnt us/hs), not a server's capacity")
        lines.append("  derived, not measured: a server's capacity on one core = 1 s / its CPU us/hs: " + ", ".join(
            f"{s} {1e6 / statistics.median(r['cpu_us_per_hs'] for r in results[(s, scenario)]):.0f}/s"
            for s in SERVERS))
    return lines


def main():
    ensure_tools()
    OUT.mkdir(parents=True, exist_ok=True)
    cert, key = make_cert()
    ctx = {"cert": cert, "key": key, "hangup": hangup_bin(), "nginx": nginx_conf(cert, key)}
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO,
                            capture_output=True, text=True).stdout.strip()
    tools = {
        "nginx": subprocess.run([nginx_path(), "-v"], capture_output=True, text=True).stderr.strip(),
        "openssl": subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip(),
        "wrk": subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "wrk"], capture_output=True,
                              text=True).stdout.strip() or "?",
    }
    log(f"out: {OUT}; commit {commit}; rounds {ROUNDS} x {DURATION} s; scenarios {' '.join(SCENARIOS)}")
    seen = {}
    for server in SERVERS:
        with open(OUT / f"{server}-check.log", "w") as lf:
            proc = start(server, ctx, lf)
            try:
                check_answers()
                seen[server] = negotiated()
            finally:
                stop(proc)
        log(f"{server}: {seen[server]}")
    if len(set(seen.values())) != 1:
        raise SystemExit(f"the servers negotiate differently: {seen}")
    results = {}
    for round_no in range(1, ROUNDS + 1):
        for scenario in SCENARIOS:
            for server in SERVERS:
                r = measure(server, scenario, ctx)
                results.setdefault((server, scenario), []).append(r)
                head = ", ".join(f"{name} {fmt.format(r[k])}" for k, name, fmt, _ in COLUMNS[scenario])
                log(f"round {round_no} {scenario} {server}: {head} (srv {r['cpu_share']:.0%}, "
                    f"clnt {r['clnt_share']:.0%}, others {r['others']:.0f}%)")
    lines = [f"hangup vs nginx over TLS, commit {commit}, {time.strftime('%Y-%m-%d %H:%M %Z')}",
             f"machine: {os.cpu_count()} CPUs, kernel {os.uname().release}; {tools['nginx']}; "
             f"{tools['openssl']}; wrk {tools['wrk']}; bench_server {sha256(ctx['hangup'])}",
             "certificate: ECDSA P-256, self-signed, the same files for both; negotiated "
             "(openssl s_client -tls1_3: protocol suite group signature):",
             *(f"  {server:<7} {seen[server]}" for server in SERVERS),
             f"{ROUNDS} rounds interleaved, {DURATION} s each, server on CPU {SERVER_CPU}, clients on CPU "
             f"{CLIENT_CPU}; median (min-max); 'paired' = median (min-max) of the per-round ratios to nginx",
             ""]
    for scenario in SCENARIOS:
        lines += table(scenario, results)
        lines.append("")
    report = "\n".join(lines)
    (OUT / "report.txt").write_text(report + "\n")
    print(report)


if __name__ == "__main__":
    # SIGTERM (timeout, kill PID) unwinds too: the servers are stopped below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        main()
    finally:
        for p in list(RUNNING):
            stop(p)
