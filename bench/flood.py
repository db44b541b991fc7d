#!/usr/bin/env python3
"""Head flood: what N connections that each send an unfinished request head
cost a server in memory, whether it gives the memory back after they close,
and how slow normal requests get meanwhile.

    bench/flood.py [options] [NAME=COMMAND ...]

With no NAME=COMMAND, the server is `target/release/examples/echo` (relative
to the repository). COMMAND is split like a shell line (no shell runs it; use
`env VAR=value cmd` for environment variables); `{addr}` and `{port}` in it
are replaced by the address and port, and when neither appears,
`127.0.0.1:PORT` is appended (what `examples/echo`, `hello` and
`bench_server` take). `HANGUP_ADDR` is set to the same address. Several
servers take turns within each round (A B C, A B C, ...), each run with a
freshly started server, pinned with `taskset -c 0` (the PID read is the
server's own: taskset and env exec).

One run:

 1. start the server, wait until it answers `GET /` (at most 10 s), wait
    0.5 s, read its baseline RSS (VmRSS in /proc/PID/status);
 2. start the latency client (this script, `taskset -c 1`): sequential
    `GET /` requests, each on a fresh connection (connect, send, read the
    whole response, close with a reset), one every `--interval` (2 ms) at
    most;
 3. open `--conns` connections (default 3,000) and send on each `--bytes`
    bytes (default 60,000) of a request head that never ends
    (`GET / HTTP/1.1\\r\\nHost: x\\r\\nX-Pad: aaaa...`, no blank line), then
    send nothing more on it. Non-blocking, at most `--window` (100)
    connections in progress at a time: when the server's accept queue is
    full the kernel drops a SYN and the client retries 1 s later, which
    with one connection at a time stalled the whole flood for a second
    each time (a flood of 7 s where 1.5 s would do, past the server's
    header timeout on a busy machine). The flood runs on CPU 1 too, at
    nice 10, so the latency client (nice 0) is not kept waiting by it;
 4. once all are sent: hold until the latency client has done `--requests`
    (200) requests more, and at least `--hold` (1 s); RSS is sampled every
    20 ms throughout; "peak" is the kernel's VmHWM (the high-water mark of
    RSS, which a sample can miss);
 5. count the flood connections the server has already closed (what it
    sent, a 431 or a TLS ServerHello, is read and dropped; end of stream or
    reset: closed; "alive" is the rest), close them all with a reset
    (SO_LINGER 0: no TIME_WAIT left to eat the next run's ports), and read
    RSS 1 s and 5 s later (`--after 1,5,15` for other readings, at most
    30 s). The normal requests stop at the close, so the server is idle
    then: an allocator that returns memory only when it is called again
    (jemalloc without its background thread, mimalloc) shows its worst
    case; with `--traffic-after` they go on (one every `--interval`) until
    the last reading;
 6. stop the server (SIGTERM, then SIGKILL after 2 s) by its PID.

Columns: "flood s" is how long sending the flood took; "srv CPU s" the
server's CPU time (utime + stime, all threads) from the flood's start to the
close, which reads it all and answers the normal requests of steps 2 and 4:
on a shared machine a steadier measure of what the flood costs the server
than the latency of the few dozen requests made while it is sent. "others %"
is the CPU the rest of the machine used meanwhile, in % of one core (the
latency figures mean little when it is high).

The server's `header_read_timeout` (hangup: 10 s from accept) ends stalled
heads on its own: steps 3 and 4 must fit in it or "alive" drops below
`--conns` (it says so). The latency figures are split in two phases:
"sending" (while the flood is being sent: the server is reading 180 MB) and
"held" (all heads sent and stalled: what an attack costs a normal request
once it sits there).

Output: one markdown table row per run, and with `--rounds` > 1 a table of
the medians per server. `--json FILE` appends one JSON object per run.

Bounded: every run has a time limit on each step (start 10 s, flood
`--open-timeout` 20 s, hold 15 s, after-close the last `--after` reading, 5 s by default), a default run takes
about 10-15 s plus at most `--quiet-wait` (10 s) waiting for the machine to
be quiet, all sockets have 5 s timeouts, only 127.0.0.1 is used (ports
`--port`, 3960, upwards: one per server), and only the processes this script
started are stopped, by their PIDs. RLIMIT_NOFILE is raised (soft to hard)
for this script, which the server inherits.

Examples:

    bench/flood.py                                       # examples/echo, one run
    bench/flood.py --rounds 3 glibc=target/release/examples/echo \\
        "trim=env MALLOC_TRIM_THRESHOLD_=131072 target/release/examples/echo"
    bench/flood.py --conns 1000 --bytes 8000 --rounds 3  # a smaller flood
"""

import argparse
import errno
import json
import os
import resource
import select
import selectors
import re
import shlex
import signal
import socket
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_COMMAND = "target/release/examples/echo"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
RESET = struct.pack("ii", 1, 0)


# ------------------------------------------------------------ measurements

def status_kib(pid, field):
    """A `kB` field of /proc/PID/status (VmRSS, VmHWM), or None once gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except OSError:
        return 0


def minor_faults(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[7])
    except OSError:
        return 0


def busy_ticks():
    """Busy ticks of the whole machine: all but idle and iowait."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = v
    return user + nice + system + irq + softirq + steal


def own_seconds():
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def wait_quiet(limit, log):
    """Wait (at most `limit` s) until the machine used < 10 % of a core for
    2 s in a row. Returns the seconds waited."""
    quiet, start = 0, time.monotonic()
    while time.monotonic() - start < limit:
        b0 = busy_ticks()
        time.sleep(0.5)
        if (busy_ticks() - b0) * 100 <= 10 * CLK_TCK * 0.5:
            quiet += 1
            if quiet >= 4:
                break
        else:
            quiet = 0
    waited = time.monotonic() - start
    if quiet < 4 and limit > 0:
        log(f"machine still busy after {limit:.0f}s; measuring anyway (see 'others')")
    return waited


def pct(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


# ------------------------------------------------------------ HTTP client

def tls_context(cafile):
    """A client context trusting only `cafile` (the server's self-signed
    certificate), checking that it names 127.0.0.1."""
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def client_hello():
    """The bytes of a TLS ClientHello (what Python's ssl sends first), made
    without a network: a flood connection sends them and stops."""
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def one_get(port, path, timeout=5.0, tls=None):
    """One GET on a fresh connection (over TLS with `tls`, an SSLContext),
    response read whole; closed with a reset. Returns the status code
    (raises on a broken response)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
            sock = tls.wrap_socket(sock, server_hostname="127.0.0.1")
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed before the response head")
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = None
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        if length is None:
            raise ValueError("no Content-Length in the response")
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed inside the body")
            rest += chunk
        return status
    finally:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
        except OSError:
            pass
        sock.close()


def latency_client(args):
    """The latency client (a child process): GETs back to back until 'stop'
    on stdin, --max-seconds or --max-requests, one every --interval ms at
    most. One line per request:
    `S start_monotonic seconds status` (status 0: failed)."""
    end = time.monotonic() + args.max_seconds
    tls = tls_context(args.cafile) if args.cafile else None
    done, next_start = 0, time.monotonic()
    while time.monotonic() < end and done < args.max_requests:
        if select.select([sys.stdin], [], [], max(0.0, next_start - time.monotonic()))[0]:
            break
        t0 = time.monotonic()
        next_start = t0 + args.interval / 1e3
        try:
            status = one_get(args.port, args.path, tls=tls)
        except (OSError, ValueError, IndexError) as e:  # ssl.SSLError is an OSError
            status = 0
            print(f"E {type(e).__name__}: {e}", flush=True)
        print(f"S {t0:.6f} {time.monotonic() - t0:.6f} {status}", flush=True)
        done += 1


# ------------------------------------------------------------ one run

class Sampler(threading.Thread):
    """Samples the server's VmRSS every 20 ms: (monotonic, KiB)."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.samples, self.stop = pid, [], threading.Event()

    def run(self):
        while not self.stop.is_set():
            rss = status_kib(self.pid, "VmRSS")
            if rss is None:
                return
            self.samples.append((time.monotonic(), rss))
            self.stop.wait(0.02)


class LatencyReader(threading.Thread):
    def __init__(self, proc):
        super().__init__(daemon=True)
        self.proc, self.samples, self.errors = proc, [], []
        self.lock = threading.Lock()

    def run(self):
        for line in self.proc.stdout:
            parts = line.split()
            if parts and parts[0] == "S":
                with self.lock:
                    self.samples.append((float(parts[1]), float(parts[2]), int(parts[3])))
            elif parts and parts[0] == "E":
                self.errors.append(line[2:].strip())

    def count_since(self, t):
        with self.lock:
            return sum(1 for s in self.samples if s[0] >= t)


def self_signed_cert(errlog):
    """The certificate `hangup serve --tls-self-signed` says it wrote, from
    its output so far, or None."""
    errlog.flush()
    errlog.seek(0)
    found = re.search(r" in (\S+) \(removed at exit\)", errlog.read())
    errlog.seek(0, 2)
    return found.group(1) if found else None


def build_command(command, port):
    addr = f"127.0.0.1:{port}"
    words = shlex.split(command)
    if any("{addr}" in w or "{port}" in w for w in words):
        words = [w.replace("{addr}", addr).replace("{port}", str(port)) for w in words]
    else:
        words.append(addr)
    if not os.path.isabs(words[0]) and not os.path.exists(words[0]) and os.path.exists(os.path.join(REPO, words[0])):
        words[0] = os.path.join(REPO, words[0])
    return words


def server_closed(sock):
    """Whether the server closed (or reset) this flood connection: what it
    sent is read and dropped (a 431, a TLS ServerHello) until the end of
    the stream, or until nothing more is there (still open)."""
    sock.setblocking(False)
    for _ in range(64):
        try:
            if not sock.recv(65536):
                return True
        except BlockingIOError:
            return False
        except OSError:
            return True
    return False


def stop_latency(latency):
    try:
        latency.stdin.write("stop\n")
        latency.stdin.flush()
    except (OSError, ValueError):
        pass


def stop_process(proc, grace=2.0):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait(5)


class AcceptQueue:
    """The length of the server's accept queue (connections the kernel has
    completed and the server has not yet accepted) and its limit, from a
    sock_diag netlink dump of the listening TCP sockets (what `ss -lt`
    shows as Recv-Q and Send-Q). `None` where netlink is not available."""

    SOCK_DIAG_BY_FAMILY, NLMSG_DONE, NLMSG_ERROR = 20, 3, 2
    TCP_LISTEN = 10

    def __init__(self, port):
        self.port = port
        try:
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 4)  # NETLINK_SOCK_DIAG
        except (OSError, AttributeError):
            self.sock = None

    def read(self):
        """(queued, limit) for 127.0.0.1:port, or None."""
        if self.sock is None:
            return None
        # inet_diag_req_v2: family, protocol, ext, pad, states, then an
        # inet_diag_sockid (48 bytes, unused by a dump without a filter).
        req = struct.pack("=BBBxI48x", socket.AF_INET, socket.IPPROTO_TCP, 0, 1 << self.TCP_LISTEN)
        hdr = struct.pack("=IHHII", 16 + len(req), self.SOCK_DIAG_BY_FAMILY, 0x1 | 0x300, 1, 0)
        try:
            self.sock.send(hdr + req)
            found = None
            while True:
                data = self.sock.recv(65536)
                pos = 0
                while pos + 16 <= len(data):
                    length, kind = struct.unpack_from("=IH", data, pos)
                    if kind in (self.NLMSG_DONE, self.NLMSG_ERROR):
                        return found
                    # inet_diag_msg: family, state, timer, retrans, then the
                    # sockid (sport first, big-endian), expires, rqueue, wqueue.
                    sport = struct.unpack_from("!H", data, pos + 16 + 4)[0]
                    rqueue, wqueue = struct.unpack_from("=II", data, pos + 16 + 4 + 48 + 4)
                    if sport == self.port:
                        found = (rqueue, wqueue)
                    pos += (length + 3) & ~3
                if not data:
                    return found
        except OSError:
            self.sock = None
            return None


def flood_send(port, payload, args, flood):
    """Opens args.conns connections and sends `payload` on each, at most
    args.window at a time in progress (non-blocking), and, with args.pace,
    no more than fill half the server's accept queue: a SYN that meets a
    full queue is dropped and retried 1 s later (then 3 s), which made the
    flood's length (and the latency measured while it is sent) a matter of
    luck. Completed sockets are appended to `flood` (and stay open).
    Returns (opened, errors, first error)."""
    sel = selectors.DefaultSelector()
    started = errors = 0
    first_error = ""
    deadline = time.monotonic() + args.open_timeout
    queue = AcceptQueue(port)
    try:
        while len(flood) + errors < args.conns and time.monotonic() < deadline and errors < 100:
            room = args.window - len(sel.get_map())
            backlog = queue.read() if room > 0 and args.pace else None
            if backlog is not None:
                queued, limit = backlog
                room = min(room, max(0, limit // 2 - queued - len(sel.get_map())))
            for _ in range(room if started < args.conns else 0):
                if started >= args.conns:
                    break
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setblocking(False)
                err = sock.connect_ex(("127.0.0.1", port))
                started += 1
                if err not in (0, errno.EINPROGRESS):
                    errors += 1
                    first_error = first_error or f"connect: {os.strerror(err)}"
                    sock.close()
                    continue
                sel.register(sock, selectors.EVENT_WRITE, [0, False])
            for key, _ in sel.select(timeout=0.05 if sel.get_map() else 0.005):
                sock, state = key.fileobj, key.data
                try:
                    if not state[1]:
                        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                        if err:
                            raise OSError(err, os.strerror(err))
                        state[1] = True
                    state[0] += sock.send(payload[state[0]:])
                except BlockingIOError:
                    continue
                except OSError as e:
                    errors += 1
                    first_error = first_error or f"{type(e).__name__}: {e}"
                    sel.unregister(sock)
                    sock.close()
                    continue
                if state[0] >= len(payload):
                    sel.unregister(sock)
                    flood.append(sock)
    finally:
        for key in list(sel.get_map().values()):
            key.fileobj.close()
        sel.close()
    return len(flood), errors, first_error


def run_once(name, command, port, args, log):
    waited = wait_quiet(args.quiet_wait, log) if args.quiet_wait > 0 else 0.0
    probe = socket.socket()
    try:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise RuntimeError(f"{name}: something already listens on 127.0.0.1:{port}; "
                               "it would be measured instead (--port for another)")
    finally:
        probe.close()
    words = build_command(command, port)
    env = dict(os.environ, HANGUP_ADDR=f"127.0.0.1:{port}")
    errlog = tempfile.TemporaryFile(mode="w+")
    server = subprocess.Popen(["taskset", "-c", str(args.server_cpu)] + words, env=env,
                              stdin=subprocess.DEVNULL, stdout=errlog, stderr=errlog)
    latency = None
    flood = []
    result = {"name": name, "command": command, "conns": args.conns, "bytes": args.bytes,
              "traffic_after": args.traffic_after}
    try:
        # 1. up and answering, then the baseline.
        deadline = time.monotonic() + 10
        tls = None
        while True:
            if server.poll() is not None:
                errlog.seek(0)
                raise RuntimeError(f"{name}: server exited ({server.returncode}): {errlog.read()[-500:]}")
            if args.tls and tls is None:
                cafile = args.cafile or self_signed_cert(errlog)
                if cafile is None:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{name}: no certificate path in its output within 10 s")
                    time.sleep(0.05)
                    continue
                tls = tls_context(cafile)
                result["cafile"] = cafile
            try:
                one_get(port, args.path, timeout=1, tls=tls)
                break
            except (OSError, ValueError, IndexError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name}: no answer on port {port} within 10 s")
                time.sleep(0.05)
        time.sleep(0.5)
        result["base_kib"] = status_kib(server.pid, "VmRSS")
        sampler = Sampler(server.pid)
        sampler.start()
        t_run, busy0, srv0, own0 = time.monotonic(), busy_ticks(), cpu_ticks(server.pid), own_seconds()

        # 2. the latency client.
        latency = subprocess.Popen(
            ["taskset", "-c", str(args.client_cpu), sys.executable, os.path.abspath(__file__),
             "--latency-client", "--port", str(port), "--path", args.path,
             "--interval", str(args.interval), "--max-seconds", "60", "--max-requests", "20000"]
            + (["--cafile", result["cafile"]] if tls is not None else []),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        reader = LatencyReader(latency)
        reader.start()
        time.sleep(0.2)  # a few requests before the flood starts

        # 3. the flood.
        if args.flood == "head":
            head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: "
            payload = head + b"a" * max(0, args.bytes - len(head))
            payload = payload[:args.bytes]
        elif args.flood == "tls-hello":
            payload = client_hello()
        else:
            payload = b""
        t_flood, srv_flood, flt_flood = time.monotonic(), cpu_ticks(server.pid), minor_faults(server.pid)
        opened, open_errors, first_error = flood_send(port, payload, args, flood)
        if opened < args.conns:
            first_error = first_error or "open timeout"
        t_held = time.monotonic()
        result["flood_s"] = t_held - t_flood
        result["opened"] = opened
        result["open_errors"] = open_errors
        if first_error:
            log(f"{name}: flood: {open_errors} errors, first: {first_error}")

        # 4. hold: --requests more normal requests, and at least --hold s.
        hold_end = time.monotonic() + max(15, args.hold + 1)
        while time.monotonic() < hold_end:
            if reader.count_since(t_held) >= args.requests and time.monotonic() - t_held >= args.hold:
                break
            if latency.poll() is not None:
                break
            time.sleep(0.01)
        t_close = time.monotonic()
        result["flood_cpu_s"] = (cpu_ticks(server.pid) - srv_flood) / CLK_TCK
        result["flood_minflt"] = minor_faults(server.pid) - flt_flood
        if not args.traffic_after:
            stop_latency(latency)
        result["held_kib"] = status_kib(server.pid, "VmRSS")
        result["peak_kib"] = status_kib(server.pid, "VmHWM")

        # 5. which flood connections the server already closed; close all.
        result["alive"] = sum(1 for sock in flood if not server_closed(sock))
        for sock in flood:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
            except OSError:
                pass
            sock.close()
        flood = []
        t_closed = time.monotonic()
        for after in args.after:
            time.sleep(max(0.0, t_closed + after - time.monotonic()))
            result[f"after{after:g}_kib"] = status_kib(server.pid, "VmRSS")
        stop_latency(latency)
        sampler.stop.set()
        sampler.join(1)
        latency.wait(10)
        reader.join(2)
        srv1 = cpu_ticks(server.pid)
        result["server_alive"] = server.poll() is None
        wall = time.monotonic() - t_run
        busy = (busy_ticks() - busy0) / CLK_TCK
        result["others_pct"] = max(0.0, busy - (srv1 - srv0) / CLK_TCK - (own_seconds() - own0)) / wall * 100
        result["quiet_wait_s"] = waited

        samples = reader.samples
        send = [s[1] * 1e3 for s in samples if t_flood <= s[0] < t_held]
        held = [s[1] * 1e3 for s in samples if t_held <= s[0] < t_close][:args.requests]
        result["lat_send_n"], result["lat_held_n"] = len(send), len(held)
        result["lat_send_p50_ms"], result["lat_send_p99_ms"] = pct(send, 50), pct(send, 99)
        result["lat_held_p50_ms"], result["lat_held_p99_ms"] = pct(held, 50), pct(held, 99)
        result["lat_send_max_ms"] = max(send) if send else float("nan")
        result["lat_held_max_ms"] = max(held) if held else float("nan")
        result["lat_samples"] = [(round(t - t_run, 3), round(sec * 1e3, 2), status) for t, sec, status in samples]
        result["lat_failed"] = sum(1 for s in samples if s[2] == 0)
        result["lat_non200"] = sum(1 for s in samples if s[2] not in (0, 200))
        if reader.errors:
            log(f"{name}: latency client: {len(reader.errors)} errors, first: {reader.errors[0]}")
        result["rss_samples"] = [(round(t - t_run, 3), kib) for t, kib in sampler.samples]
        result["t_flood"], result["t_held"], result["t_close"] = (
            round(t_flood - t_run, 3), round(t_held - t_run, 3), round(t_close - t_run, 3))
    finally:
        for sock in flood:
            sock.close()
        if latency is not None and latency.poll() is None:
            latency.kill()
            latency.wait(5)
        stop_process(server)
        errlog.close()
    return result


# ------------------------------------------------------------ report

COLUMNS = [
    ("server", "{name}"),
    ("alive", "{alive}/{opened}"),
    ("base MiB", "{base:.1f}"),
    ("peak MiB", "{peak:.1f}"),
    ("KiB/conn", "{per_conn:.1f}"),
    ("GET p50/p99 ms, sending", "{lat_send_p50_ms:.2f} / {lat_send_p99_ms:.2f} (n={lat_send_n})"),
    ("GET p50/p99/max ms, held", "{lat_held_p50_ms:.2f} / {lat_held_p99_ms:.2f} / {lat_held_max_ms:.0f} (n={lat_held_n})"),
    ("GET failed", "{lat_failed}"),
    ("flood s", "{flood_s:.2f}"),
    ("srv CPU s", "{flood_cpu_s:.2f}"),
    ("others %", "{others_pct:.0f}"),
]


def columns(afters):
    """COLUMNS with one "after N s" column per reading after the close."""
    cols = list(COLUMNS)
    at = [c[0] for c in cols].index("KiB/conn") + 1
    cols[at:at] = [(f"after {a:g} s MiB", f"{{after{a:g}:.1f}}") for a in afters]
    return cols


def derived(r):
    mib = lambda k: (k or 0) / 1024
    d = dict(r)
    d.update(base=mib(r["base_kib"]), peak=mib(r["peak_kib"]),
             per_conn=((r["peak_kib"] or 0) - (r["base_kib"] or 0)) / max(1, r["opened"]))
    for key in r:
        if key.startswith("after") and key.endswith("_kib"):
            d[key[:-4]] = mib(r[key])
    return d


def header(cols):
    names = [c[0] for c in cols]
    return "| " + " | ".join(names) + " |\n|" + "|".join(" --- " for _ in names) + "|"


def row(r, cols):
    d = derived(r)
    return "| " + " | ".join(fmt.format(**d) for _, fmt in cols) + " |"


def median_row(name, runs, cols):
    ds = [derived(r) for r in runs]
    med = {}
    for key in ds[0]:
        values = [d[key] for d in ds]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            med[key] = statistics.median(values)
        else:
            med[key] = values[0]
    med["name"] = name
    for key in ("alive", "opened", "lat_send_n", "lat_held_n", "lat_failed"):
        med[key] = int(med[key])
    return "| " + " | ".join(fmt.format(**med) for _, fmt in cols) + " |"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("servers", nargs="*", metavar="NAME=COMMAND")
    ap.add_argument("--conns", type=int, default=3000, help="flood connections (3000)")
    ap.add_argument("--bytes", type=int, default=60000, help="bytes of unfinished head per connection (60000)")
    ap.add_argument("--flood", choices=["head", "tls-hello", "tls-silent"], default="head",
                    help="what each flood connection sends before it stalls: an unfinished "
                         "request head of --bytes (head, the default), a TLS ClientHello "
                         "(tls-hello), or nothing (tls-silent); the tls-* floods imply --tls")
    ap.add_argument("--tls", action="store_true",
                    help="the server speaks TLS: the normal requests (and the start-up check) "
                         "use Python's ssl, trusting --cafile or the certificate `hangup serve "
                         "--tls-self-signed` prints")
    ap.add_argument("--cafile", help="the server's certificate (PEM), for --tls")
    ap.add_argument("--requests", type=int, default=200, help="normal GETs measured while the flood is held (200)")
    ap.add_argument("--hold", type=float, default=1.0, help="least seconds the flood is held (1; at most 30)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--port", type=int, default=3960, help="first port (3960); one per server")
    ap.add_argument("--path", default="/", help="the normal request's path (/)")
    ap.add_argument("--interval", type=float, default=2.0,
                    help="least ms between the starts of two normal requests (2): the latency "
                         "client shares its CPU with the flood and must not starve it")
    ap.add_argument("--open-timeout", type=float, default=20.0)
    ap.add_argument("--window", type=int, default=100,
                    help="flood connections in progress (connecting or sending) at a time (100)")
    ap.add_argument("--no-pace", dest="pace", action="store_false",
                    help="do not hold the flood back when the server's accept queue is half full")
    ap.add_argument("--quiet-wait", type=float, default=10.0,
                    help="at most this many seconds waiting for a quiet machine before each run (10)")
    ap.add_argument("--traffic-after", action="store_true",
                    help="keep the normal requests going after the flood closed (default: none, "
                         "the server is idle while its RSS is read after it)")
    ap.add_argument("--after", default="1,5", metavar="S,S,...",
                    help="read RSS this many seconds after the close (1,5; at most 30)")
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--client-cpu", type=int, default=1)
    ap.add_argument("--json", metavar="FILE", help="append one JSON object per run")
    ap.add_argument("--no-header", action="store_true", help="rows only")
    # The latency client's own options (internal).
    ap.add_argument("--latency-client", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--max-seconds", type=float, default=40, help=argparse.SUPPRESS)
    ap.add_argument("--max-requests", type=int, default=20000, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.latency_client:
        return latency_client(args)

    args.tls = args.tls or args.flood != "head"
    if not 0 <= args.hold <= 30:
        sys.exit("--hold: 0 to 30 s")
    if not (1 <= args.conns <= 15000) or not (64 <= args.bytes <= 16 << 20) or not (1 <= args.rounds <= 20):
        sys.exit("--conns 1..15000, --bytes 64..16 MiB, --rounds 1..20")
    try:
        args.after = sorted({float(a) for a in args.after.split(",") if a.strip()})
    except ValueError:
        sys.exit("--after: seconds, comma-separated")
    if not args.after or not all(0 <= a <= 30 for a in args.after):
        sys.exit("--after: 0 to 30 s")
    cols = columns(args.after)
    servers = []
    for spec in args.servers or [f"echo={DEFAULT_COMMAND}"]:
        if "=" not in spec.split()[0]:
            spec = f"{os.path.basename(shlex.split(spec)[0])}={spec}"
        name, command = spec.split("=", 1)
        servers.append((name, command))

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.conns + 256
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, hard), max(want, hard)))
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < want:
            sys.exit(f"RLIMIT_NOFILE {hard} is below the {want} needed")
    # The flood runs beside the latency client on its CPU, at lower priority.
    os.sched_setaffinity(0, {args.client_cpu})
    os.nice(10)

    log = lambda msg: print(f"# {msg}", file=sys.stderr, flush=True)
    results = {name: [] for name, _ in servers}
    what = {"head": f"{args.bytes} bytes of unfinished head", "tls-hello": "a TLS ClientHello, then nothing",
            "tls-silent": "nothing (TLS server)"}[args.flood]
    print(f"flood: {args.conns} connections x {what}; normal GETs over {'TLS' if args.tls else 'plain TCP'}; "
          f"{args.requests} normal GETs held; server on CPU {args.server_cpu}; after the close: "
          f"{'a GET every %g ms' % args.interval if args.traffic_after else 'no requests'}", flush=True)
    if not args.no_header:
        print(header(cols), flush=True)
    for _ in range(args.rounds):
        for i, (name, command) in enumerate(servers):
            r = run_once(name, command, args.port + i, args, log)
            results[name].append(r)
            if args.json:
                with open(args.json, "a") as f:
                    f.write(json.dumps(r) + "\n")
            print(row(r, cols), flush=True)
            if r["alive"] < r["opened"]:
                log(f"{name}: the server closed {r['opened'] - r['alive']} flood connections before the end")
            if not r["server_alive"]:
                log(f"{name}: the server died during the run")
            if r["lat_failed"]:
                log(f"{name}: {r['lat_failed']} normal requests failed")
    if args.rounds > 1:
        print(f"\nmedians of {args.rounds} rounds:", flush=True)
        print(header(cols))
        for name, runs in results.items():
            print(median_row(name, runs, cols), flush=True)


if __name__ == "__main__":
    sys.exit(main())
