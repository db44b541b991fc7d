#!/usr/bin/env python3
"""Every kind of response `hangup serve` sends, linted by httplint.

Starts `hangup serve` (three configurations) on 127.0.0.1 with a scratch
directory, sends one request per response kind over a raw socket, and
runs httplint (https://pypi.org/project/httplint/) on each raw response,
with the request it answers. A response kind passes when its status is
the expected one and httplint has no WARN or BAD note about it.

    python3 tests/httplint_check.py            # the debug build (built if missing)
    HANGUP_BIN=target/release/hangup python3 tests/httplint_check.py

Exits 0 when every kind lints clean, 1 otherwise, and 0 with a message
when httplint is not installed (`pip install httplint`). Every server it
starts is stopped by its PID; every wait is bounded.
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    from httplint import HttpRequestLinter, HttpResponseLinter
except ImportError:
    print("httplint_check.py: skipped: httplint is not installed (pip install httplint)")
    sys.exit(0)

REPO = Path(__file__).resolve().parent.parent
LIMIT_S = 10.0


def binary():
    """The hangup binary: $HANGUP_BIN, or the debug build (built if missing)."""
    given = os.environ.get("HANGUP_BIN")
    if given:
        return Path(given)
    path = REPO / "target" / "debug" / "hangup"
    if not path.exists():
        subprocess.run(["cargo", "build", "--quiet", "--bin", "hangup"], cwd=REPO, check=True)
    return path


class Server:
    """`hangup serve ROOT --addr 127.0.0.1:0 OPTIONS`, stopped by PID."""

    def __init__(self, exe, root, options):
        self.proc = subprocess.Popen(
            [str(exe), "serve", str(root), "--addr", "127.0.0.1:0", "--quiet", *options],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.port = None
        deadline = time.monotonic() + LIMIT_S
        while self.port is None:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise SystemExit(f"httplint_check.py: hangup serve {options} did not start")
            line = self.proc.stderr.readline().decode("utf-8", "replace")
            found = re.search(r" on http://127\.0\.0\.1:(\d+)/", line)
            if found:
                self.port = int(found.group(1))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=LIMIT_S)


def exchange(port, method, target, headers, body):
    """Sends one request (Connection: close) and returns the raw response."""
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")
    with socket.create_connection(("127.0.0.1", port), timeout=LIMIT_S) as sock:
        sock.sendall(raw)
        data = b""
        while True:
            piece = sock.recv(65536)
            if not piece:
                return raw, data
            data += piece


def parse(data, is_head):
    """(version, status, phrase, fields, content) of a raw response."""
    head, _, rest = data.partition(b"\r\n\r\n")
    top, *field_lines = head.split(b"\r\n")
    version, status, phrase = (top.split(b" ", 2) + [b""])[:3]
    version = version.split(b"/")[1]
    fields = []
    for line in field_lines:
        name, _, value = line.partition(b":")
        fields.append((name, value.strip()))
    names = {n.lower(): v for n, v in fields}
    if is_head or status in (b"204", b"304"):
        return version, status, phrase, fields, b""
    if names.get(b"transfer-encoding", b"").lower() == b"chunked":
        content = b""
        while True:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            content += rest[:size]
            rest = rest[size + 2 :]
        return version, status, phrase, fields, content
    if b"content-length" in names:
        return version, status, phrase, fields, rest[: int(names[b"content-length"])]
    return version, status, phrase, fields, rest


def lint(request_raw, data, method):
    """httplint's WARN and BAD notes on `data`, the answer to `request_raw`."""
    now = time.time()
    request = HttpRequestLinter(start_time=now)
    head = request_raw.split(b"\r\n\r\n")[0].split(b"\r\n")
    req_method, target, req_version = head[0].split(b" ")
    request.process_request_topline(req_method, target, req_version.split(b"/")[1])
    request.process_headers([tuple(x.strip() for x in l.split(b":", 1)) for l in head[1:]])
    request.finish_content(True, [])
    is_head = method == "HEAD"
    version, status, phrase, fields, content = parse(data, is_head)
    response = HttpResponseLinter(start_time=now)
    response.request = request
    response.is_head_response = is_head
    response.process_response_topline(version, status, phrase)
    response.process_headers(fields)
    response.feed_content(content)
    response.finish_content(True, [])
    problems = []
    for note in response.notes:
        if note.level.name in ("WARN", "BAD"):
            problems.append(f"[{note.level.name}] {note.summary}")
        for sub in note.subnotes:
            if sub.level.name in ("WARN", "BAD"):
                problems.append(f"[{sub.level.name}] {sub.summary}")
    return int(status), problems


def make_tree(root):
    (root / "sub").mkdir(parents=True)
    (root / "hello.txt").write_text("Hello, hangup!\n")
    (root / "page.html").write_text("<!DOCTYPE html><html lang=en><title>t</title><p>hi</p></html>\n")
    text = "".join(f"line {i}: hangup serve knows when the client left\n" for i in range(400))
    (root / "big.txt").write_text(text)
    (root / "app.js").write_text("console.log('identity');\n" * 40)
    import gzip

    (root / "app.js.gz").write_bytes(gzip.compress((root / "app.js").read_bytes()))
    (root / "sub" / "a.txt").write_text("a\n")
    (root / "taken.txt").write_text("taken\n")


def main():
    exe = binary()
    scratch = Path(tempfile.mkdtemp(prefix="hangup-httplint-"))
    servers = []
    try:
        root = scratch / "root"
        make_tree(root)
        plain = Server(exe, root, [])
        servers.append(plain)
        full = Server(exe, root, ["--upload", "--compress", "--cors", "--upload-limit", "1K"])
        servers.append(full)
        locked = Server(exe, root, ["--auth", "user:pw"])
        servers.append(locked)

        etag = None
        for line in exchange(plain.port, "GET", "/hello.txt", [], None)[1].split(b"\r\n"):
            if line.lower().startswith(b"etag:"):
                etag = line.split(b":", 1)[1].strip().decode()
        form_body = (
            b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"form.txt\"\r\n"
            b"Content-Type: text/plain\r\n\r\nfrom a form\r\n--B--\r\n"
        )
        cases = [
            ("file", plain, "GET", "/hello.txt", [], None, 200),
            ("file, HEAD", plain, "HEAD", "/hello.txt", [], None, 200),
            ("html file", plain, "GET", "/page.html", [], None, 200),
            ("range", plain, "GET", "/hello.txt", [("Range", "bytes=0-4")], None, 206),
            ("range past the end", plain, "GET", "/hello.txt", [("Range", "bytes=99-")], None, 416),
            ("not modified", plain, "GET", "/hello.txt", [("If-None-Match", etag)], None, 304),
            ("precondition failed", plain, "GET", "/hello.txt", [("If-Match", '"old"')], None, 412),
            ("listing", plain, "GET", "/", [], None, 200),
            ("listing, sorted", plain, "GET", "/?sort=size&order=desc", [], None, 200),
            ("listing, JSON", plain, "GET", "/", [("Accept", "application/json")], None, 200),
            ("directory redirect", plain, "GET", "/sub", [], None, 301),
            ("not found", plain, "GET", "/missing", [], None, 404),
            ("method not allowed", plain, "DELETE", "/hello.txt", [], None, 405),
            ("not implemented", plain, "BREW", "/hello.txt", [], None, 501),
            ("options", plain, "OPTIONS", "/hello.txt", [], None, 204),
            ("precompressed", plain, "GET", "/app.js", [("Accept-Encoding", "gzip")], None, 200),
            ("compressed on the fly", full, "GET", "/big.txt", [("Accept-Encoding", "gzip")], None, 200),
            ("cors preflight", full, "OPTIONS", "/hello.txt",
             [("Origin", "http://a.example"), ("Access-Control-Request-Method", "GET")], None, 204),
            ("cors read", full, "GET", "/hello.txt", [("Origin", "http://a.example")], None, 200),
            ("upload created", full, "PUT", "/new.txt", [("Content-Type", "text/plain")], b"new\n", 201),
            ("upload conflict", full, "PUT", "/taken.txt", [("Content-Type", "text/plain")], b"x\n", 409),
            ("upload precondition", full, "PUT", "/taken.txt", [("If-None-Match", "*")], b"x\n", 412),
            ("upload too large", full, "PUT", "/large.bin", [], b"x" * 2048, 413),
            ("form upload", full, "POST", "/sub/",
             [("Content-Type", "multipart/form-data; boundary=B")], form_body, 303),
            ("unauthorized", locked, "GET", "/hello.txt", [], None, 401),
        ]
        failed = 0
        for name, server, method, target, headers, body, expected in cases:
            raw, data = exchange(server.port, method, target, headers, body)
            status, problems = lint(raw, data, method)
            ok = status == expected and not problems
            failed += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {name}: {method} {target} -> {status}")
            if status != expected:
                print(f"       expected {expected}")
            for problem in problems:
                print(f"       {problem}")
        print(f"{len(cases) - failed} passed, {failed} failed")
        return 1 if failed else 0
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
