#!/usr/bin/env python3
"""A headless browser (Debian's chromium) loads a page and a listing over
HTTPS from `hangup serve --tls-self-signed`.

Starts `hangup serve ROOT --tls-self-signed --addr 127.0.0.1:0` on a
scratch directory holding `index.html` (with a stylesheet and an image)
and `files/` (a few files), then has chromium:

- render `https://localhost:PORT/` to a PNG screenshot (checked: a PNG of
  the window's size, not blank), and dump its DOM (the page's heading);
- dump the DOM of `https://localhost:PORT/files/` (the listing: every
  file's name).

Chromium is told to trust the server's certificate by its SHA-256 public
key hash (`--ignore-certificate-errors-spki-list`), computed with openssl
from the certificate the server printed: no certificate error is
ignored wholesale. The server's access log must then show the requests
(the page, its stylesheet and image, the listing) as complete 200s.

    python3 tests/browser_check.py        # the debug build (built if missing)
    HANGUP_BIN=target/release/hangup python3 tests/browser_check.py

Exits 0 when everything holds, 1 otherwise, and 0 with a message when
chromium is not installed (`apt-get install -y chromium`; CI installs it).
Every process it starts is stopped by its PID; every wait is bounded.
"""

import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LIMIT_S = 20.0
WINDOW = (800, 600)


def binary():
    """The hangup binary: $HANGUP_BIN, or the debug build (built if missing)."""
    given = os.environ.get("HANGUP_BIN")
    if given:
        return Path(given)
    path = REPO / "target" / "debug" / "hangup"
    if not path.exists():
        subprocess.run(["cargo", "build", "--quiet", "--bin", "hangup"], cwd=REPO, check=True)
    return path


def site(root):
    (root / "files").mkdir()
    (root / "index.html").write_text(
        "<!doctype html><html><head><title>hangup over TLS</title>"
        '<link rel="stylesheet" href="style.css"></head>'
        '<body><h1 id="greeting">Served over HTTPS by hangup</h1>'
        '<img src="dot.svg" width="64" height="64" alt="a dot"></body></html>\n'
    )
    (root / "style.css").write_text("body { background: #ffd54f; font: 32px sans-serif; }\n")
    (root / "dot.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
        '<circle cx="32" cy="32" r="30" fill="#1565c0"/></svg>\n'
    )
    for name in ["alpha.txt", "beta.bin", "gamma notes.md"]:
        (root / "files" / name).write_text(f"{name}\n")


class Server:
    """`hangup serve ROOT --tls-self-signed`, stopped by PID; stderr kept."""

    def __init__(self, exe, root):
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [str(exe), "serve", str(root), "--addr", "127.0.0.1:0", "--tls-self-signed"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            env={**os.environ, "RUST_LOG": "info"},
        )
        self.port = None
        self.cert = None
        deadline = time.monotonic() + LIMIT_S
        while time.monotonic() < deadline and self.port is None:
            text = self.stderr()
            cert = re.search(r"self-signed certificate for .* in (\S+)", text)
            port = re.search(r" on https://127\.0\.0\.1:(\d+)/", text)
            if cert and port:
                self.cert, self.port = cert.group(1), int(port.group(1))
            elif self.proc.poll() is not None:
                break
            else:
                time.sleep(0.05)
        if self.port is None:
            self.stop()
            raise SystemExit(f"hangup serve did not start:\n{self.stderr()}")

    def stderr(self):
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=LIMIT_S)


def spki_hash(cert):
    """base64(SHA-256(SubjectPublicKeyInfo)), what chromium's SPKI list takes."""
    pubkey = subprocess.run(
        ["openssl", "x509", "-in", cert, "-pubkey", "-noout"],
        capture_output=True, check=True,
    ).stdout
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "der"],
        input=pubkey, capture_output=True, check=True,
    ).stdout
    digest = subprocess.run(
        ["openssl", "dgst", "-sha256", "-binary"], input=der, capture_output=True, check=True
    ).stdout
    return subprocess.run(
        ["openssl", "enc", "-base64"], input=digest, capture_output=True, check=True
    ).stdout.decode().strip()


def chromium(browser, profile, spki, *args):
    """One headless chromium run, bounded in time; its stdout."""
    command = [
        browser,
        "--headless=new",
        "--no-sandbox",  # root in CI
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={profile}",
        f"--ignore-certificate-errors-spki-list={spki}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        *args,
    ]
    done = subprocess.run(command, capture_output=True, timeout=LIMIT_S * 3)
    if done.returncode != 0:
        raise SystemExit(f"chromium failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
    return done.stdout.decode("utf-8", "replace")


def png_size(path):
    data = Path(path).read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise SystemExit(f"{path} is not a PNG")
    width, height = struct.unpack(">II", data[16:24])
    return width, height, len(data)


def main():
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("browser_check.py: skipped: chromium is not installed (apt-get install -y chromium)")
        return 0
    exe = binary()
    failures = []
    with tempfile.TemporaryDirectory(prefix="hangup-browser-") as scratch:
        scratch = Path(scratch)
        root = scratch / "root"
        root.mkdir()
        site(root)
        server = Server(exe, root)
        try:
            spki = spki_hash(server.cert)
            base = f"https://localhost:{server.port}"
            shot = scratch / "page.png"
            chromium(browser, scratch / "p1", spki, f"--screenshot={shot}", f"{base}/")
            width, height, size = png_size(shot)
            if os.environ.get("KEEP_SCREENSHOT"):
                shutil.copy(shot, os.environ["KEEP_SCREENSHOT"])
            if (width, height) != WINDOW or size < 2000:
                failures.append(f"screenshot {width}x{height}, {size} bytes")
            page = chromium(browser, scratch / "p2", spki, "--dump-dom", f"{base}/")
            if "Served over HTTPS by hangup" not in page:
                failures.append(f"the page's DOM lacks its heading: {page[:500]}")
            listing = chromium(browser, scratch / "p3", spki, "--dump-dom", f"{base}/files/")
            for name in ["alpha.txt", "beta.bin", "gamma notes.md"]:
                if name not in listing:
                    failures.append(f"the listing lacks {name}: {listing[:800]}")
            # Give the access lines (written once acknowledged) a moment.
            deadline = time.monotonic() + LIMIT_S
            wanted = ["target=/ ", "target=/style.css ", "target=/dot.svg ", "target=/files/ "]
            while time.monotonic() < deadline:
                log = server.stderr()
                lines = [l for l in log.splitlines() if "hangup::access" in l and "status=200" in l]
                if all(any(w in l for l in lines) for w in wanted):
                    break
                time.sleep(0.1)
            else:
                failures.append(f"access log lacks 200s for {wanted}:\n{server.stderr()}")
            print(f"browser_check.py: screenshot {width}x{height} ({size} bytes) of {base}/")
        finally:
            server.stop()
    for failure in failures:
        print(f"browser_check.py: FAIL: {failure}")
    if not failures:
        print("browser_check.py: chromium loaded the page and the listing over HTTPS")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
