//! `hangup serve` over HTTPS, with the clients people use: curl, Python's
//! `ssl`, and a rustls client for what they cannot do (a reset mid-way).
//! Certificates from files (and the errors and warnings about them), and
//! `--tls-self-signed`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tokio::io::AsyncReadExt;

use crate::cli_serve::{Served, big_byte, field, number, site};
use crate::support::{LIMIT, read_until_end, send};
use crate::tls::{client_trusting, reset_tls, tls_connect};

/// The certificate path `--tls-self-signed` announced.
async fn self_signed_cert(served: &Served) -> PathBuf {
    let line = served
        .stderr
        .wait_for("the self-signed certificate's path", |l| {
            l.contains("self-signed certificate for")
        })
        .await;
    let path = line
        .split_once(" in ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no path in {line}"));
    PathBuf::from(path)
}

/// Whether `program` runs (it answers `--version`).
pub(crate) fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

#[tokio::test]
async fn curl_downloads_20_mb_over_https_byte_for_byte_with_alpn_http_1_1() {
    if !have("curl") {
        eprintln!("skipped: no curl (CI installs it)");
        return;
    }
    const SIZE: usize = 20 << 20;
    let (scratch, root) = site("tls-curl");
    let data: Vec<u8> = (0..SIZE).map(big_byte).collect();
    std::fs::write(root.join("big.bin"), &data).unwrap();
    let served = Served::start_with(&root, "info", &["--tls-self-signed"]);
    let cert = self_signed_cert(&served).await;
    let fingerprint = served
        .stderr
        .wait_for("the fingerprint", |l| l.contains("SHA-256 fingerprint"))
        .await;
    if have("openssl") {
        let openssl = Command::new("openssl")
            .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
            .arg(&cert)
            .output()
            .unwrap();
        let printed = String::from_utf8_lossy(&openssl.stdout);
        let value = printed.trim().rsplit('=').next().unwrap().to_owned();
        assert!(fingerprint.ends_with(&value), "{fingerprint} vs {printed}");
    }

    let out = scratch.path.join("downloaded.bin");
    let url = format!("https://localhost:{}/big.bin", served.addr.port());
    let curl = tokio::process::Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "60", "--cacert"])
        .arg(&cert)
        .arg("--output")
        .arg(&out)
        .args([
            "--write-out",
            "%{http_code} %{http_version} %{size_download}",
        ])
        .arg(&url)
        .output()
        .await
        .unwrap();
    let report = String::from_utf8_lossy(&curl.stdout).into_owned();
    assert!(
        curl.status.success(),
        "curl failed: {report} {}",
        String::from_utf8_lossy(&curl.stderr)
    );
    assert_eq!(report, format!("200 1.1 {SIZE}"));
    assert!(std::fs::read(&out).unwrap() == data, "the file differs");

    let line = served
        .stderr
        .wait_for("the download's line", |l| {
            l.contains(" target=/big.bin ") && l.contains(" status=200 ")
        })
        .await;
    // Plaintext: the head and the file, not TLS's records.
    let written = number(&line, "written");
    assert!(
        written > SIZE as u64 && written < SIZE as u64 + 1024,
        "{line}"
    );
    assert_eq!(number(&line, "acked"), written, "{line}");
}

#[tokio::test]
async fn a_reset_after_a_megabyte_over_https_is_logged_499_with_acked_bytes() {
    const SIZE: usize = 20 << 20;
    let (_scratch, root) = site("tls-reset");
    let data: Vec<u8> = (0..SIZE).map(big_byte).collect();
    std::fs::write(root.join("big.bin"), &data).unwrap();
    let served = Served::start_with(&root, "info", &["--tls-self-signed"]);
    let cert = self_signed_cert(&served).await;
    // The key is off the disk once loaded: even a killed server leaves
    // no private key behind, only the certificate clients may trust.
    assert!(cert.exists());
    assert!(!cert.with_file_name("key.pem").exists());
    let client = client_trusting(&cert);
    let mut stream = tls_connect(served.addr, &client).await;
    send(
        &mut stream,
        b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await;
    let mut read = 0;
    let mut buf = vec![0u8; 64 * 1024];
    while read < 1 << 20 {
        let n = tokio::time::timeout(LIMIT, stream.read(&mut buf))
            .await
            .expect("read timed out")
            .expect("read");
        assert!(n > 0, "the download ended early");
        read += n;
    }
    reset_tls(stream);
    let line = served
        .stderr
        .wait_for("a 499 line", |l| {
            l.contains(" target=/big.bin ") && l.contains(" status=499 ")
        })
        .await;
    let written = number(&line, "written");
    let acked = number(&line, "acked");
    // What the client read it had received, but its kernel may not have
    // acknowledged the last segments yet when it reset (a delayed ACK, up
    // to two segments of 64 KiB on loopback), and acknowledged bytes count
    // in whole TLS records (16 KiB): so within that much of the read.
    let slack = 2 * 64 * 1024 + 16 * 1024;
    assert!(acked + slack >= read as u64, "read {read}: {line}");
    assert!(acked > 0, "{line}");
    assert!(acked <= written && written < SIZE as u64, "{line}");
    assert!(field(&line, "cause").is_some(), "{line}");
}

#[tokio::test]
async fn python_ssl_gets_a_file_and_a_clean_close_notify() {
    let (_scratch, root) = site("tls-python");
    let served = Served::start_with(&root, "info", &["--tls-self-signed"]);
    let cert = self_signed_cert(&served).await;
    let script = r#"
import socket, ssl, sys
context = ssl.create_default_context(cafile=sys.argv[1])
context.set_alpn_protocols(["http/1.1"])
with socket.create_connection(("127.0.0.1", int(sys.argv[2]))) as raw:
    with context.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = tls.recv(65536)  # raises SSLEOFError on a truncation
            if not chunk:
                break
            data += chunk
        print(tls.version(), tls.selected_alpn_protocol())
        sys.stdout.write(data.decode())
"#;
    let python = tokio::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&cert)
        .arg(served.addr.port().to_string())
        .output()
        .await
        .expect("python3");
    let stdout = String::from_utf8_lossy(&python.stdout);
    assert!(
        python.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&python.stderr)
    );
    assert!(stdout.starts_with("TLSv1.3 http/1.1\n"), "{stdout}");
    assert!(stdout.contains("HTTP/1.1 200 OK"), "{stdout}");
    assert!(stdout.ends_with("Hello, hangup!\n"), "{stdout}");
}

#[tokio::test]
async fn plain_http_to_the_https_port_gets_a_400_that_says_why() {
    let (_scratch, root) = site("tls-plain");
    let served = Served::start_with(&root, "info", &["--tls-self-signed"]);
    let mut plain = crate::support::connect(served.addr).await;
    send(&mut plain, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let (bytes, _) = read_until_end(&mut plain).await;
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.starts_with("HTTP/1.1 400 "), "{text}");
    assert!(text.contains("https://"), "{text}");
    served
        .stderr
        .wait_for("the departure line", |l| {
            l.contains("cause=\"plain_http_on_tls\"") || l.contains("cause=plain_http_on_tls")
        })
        .await;
}

/// A certificate and key for `localhost`, valid `from` `until`.
fn certificate(not_before: (i32, u8, u8), not_after: (i32, u8, u8)) -> (String, String) {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
    params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// `hangup serve` with these options, expected to refuse to start: its
/// stderr.
fn refused(root: &Path, options: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_hangup"))
        .arg("serve")
        .arg(root)
        .args(["--addr", "127.0.0.1:0"])
        .args(options)
        .stdin(Stdio::null())
        .output()
        .expect("run hangup serve");
    assert!(!output.status.success(), "it started: {output:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn bad_certificate_files_are_refused_at_start_with_a_clear_error() {
    let (scratch, root) = site("tls-refused");
    let dir = &scratch.path;
    let (cert, key) = certificate((2025, 1, 1), (2035, 1, 1));
    let (_, other_key) = certificate((2025, 1, 1), (2035, 1, 1));
    let cert = write(dir, "cert.pem", &cert);
    let key = write(dir, "key.pem", &key);
    let other_key = write(dir, "other.pem", &other_key);
    let missing = dir.join("missing.pem");
    let missing = missing.to_str().unwrap();

    let stderr = refused(&root, &["--tls-cert", missing, "--tls-key", &key]);
    assert!(stderr.contains("missing.pem"), "{stderr}");
    let stderr = refused(&root, &["--tls-cert", &cert, "--tls-key", &other_key]);
    assert!(stderr.contains("does not match"), "{stderr}");
    let stderr = refused(&root, &["--tls-cert", &cert]);
    assert!(stderr.contains("--tls-key"), "{stderr}");
}

#[tokio::test]
async fn an_expired_certificate_starts_with_a_warning() {
    let (scratch, root) = site("tls-expired");
    let (cert, key) = certificate((2020, 1, 1), (2021, 1, 1));
    let cert = write(&scratch.path, "cert.pem", &cert);
    let key = write(&scratch.path, "key.pem", &key);
    let served = Served::start_with(&root, "info", &["--tls-cert", &cert, "--tls-key", &key]);
    let warning = served
        .stderr
        .wait_for("the warning", |l| l.contains("warning"))
        .await;
    assert!(warning.contains("expired"), "{warning}");
    assert!(warning.contains("cert.pem"), "{warning}");
}
