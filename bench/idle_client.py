#!/usr/bin/env python3
"""Idle-connections client for bench/run.

Opens CONNS keep-alive connections to 127.0.0.1:PORT one after the other,
sends one `GET /plaintext` on each, reads the whole response (and checks it
is `200 Hello, World!`), and keeps every connection open. Then:

  stdout: READY opened=N errors=E secs=S first_error=...
  (waits for one line on stdin, at most --hold seconds: the harness samples
   the server's memory in the meantime)
  stdout: ALIVE alive=A dead=D       (connections the server has not closed)

and closes every connection with a reset (SO_LINGER 0), so that no socket is
left in TIME_WAIT to eat the next run's ephemeral ports.

Bounded: connecting stops after --open-timeout seconds, every socket
operation has a 5 s timeout, the hold is bounded by --hold.
"""

import argparse
import resource
import select
import socket
import struct
import sys
import time

REQUEST = b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
BODY = b"Hello, World!"


def read_response(sock):
    """Reads one response; raises unless it is 200 with body Hello, World!."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed before the response head")
        buf += chunk
        if len(buf) > 65536:
            raise ValueError("response head too long")
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = lines[0].split(b" ", 2)
    if len(status) < 2 or status[1] != b"200":
        raise ValueError(f"status line {lines[0]!r}")
    length, chunked = None, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while not rest.endswith(b"0\r\n\r\n"):
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed inside a chunked body")
            rest += chunk
        # Reassemble the chunks.
        body, pos = b"", 0
        while True:
            end = rest.index(b"\r\n", pos)
            size = int(rest[pos:end].split(b";")[0], 16)
            if size == 0:
                break
            body += rest[end + 2 : end + 2 + size]
            pos = end + 2 + size + 2
    elif length is not None:
        while len(rest) < length:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed inside the body")
            rest += chunk
        body = rest[:length]
    else:
        raise ValueError("neither Content-Length nor chunked: not keep-alive")
    if body != BODY:
        raise ValueError(f"body {body[:40]!r}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--open-timeout", type=float, default=120.0)
    ap.add_argument("--hold", type=float, default=120.0)
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.conns + 64
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, hard), max(want, hard)))
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    socks, errors, first_error = [], 0, ""
    start = time.monotonic()
    for _ in range(args.conns):
        if time.monotonic() - start > args.open_timeout:
            errors += 1
            first_error = first_error or "open timeout"
            break
        sock = None
        try:
            sock = socket.create_connection(("127.0.0.1", args.port), timeout=5)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(REQUEST)
            read_response(sock)
            socks.append(sock)
        except (OSError, ValueError) as e:
            errors += 1
            first_error = first_error or f"{type(e).__name__}: {e}".replace(" ", "_")
            if sock is not None:
                sock.close()
            if errors >= 100:  # the server is not keeping up; stop early
                break
    secs = time.monotonic() - start
    print(f"READY opened={len(socks)} errors={errors} secs={secs:.3f} first_error={first_error or '-'}",
          flush=True)

    # Hold the connections until the harness has sampled (bounded).
    ready, _, _ = select.select([sys.stdin], [], [], args.hold)
    if ready:
        sys.stdin.readline()

    # A connection the server closed (or reset) is readable now.
    poller = select.poll()
    for sock in socks:
        poller.register(sock, select.POLLIN | select.POLLHUP | select.POLLERR)
    dead = len(poller.poll(0))
    print(f"ALIVE alive={len(socks) - dead} dead={dead}", flush=True)

    linger = struct.pack("ii", 1, 0)
    for sock in socks:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        except OSError:
            pass
        sock.close()


if __name__ == "__main__":
    main()
