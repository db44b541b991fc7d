//! `hangup serve`, run as the built binary on a scratch directory and
//! checked over raw sockets: files, HEAD, index and listing, validators,
//! ranges, path safety, a large download, an aborted one (499 and the
//! acknowledged bytes in the access log), and Ctrl-C.
//!
//! Each test starts its own server with `--addr 127.0.0.1:0` and reads the
//! address it announces on stderr: no port is guessed, so nothing races
//! with other tests for one. The child is killed by its PID when the test
//! ends, pass or fail.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream as StdTcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::io::AsyncReadExt;

use crate::support::*;

/// The contents of `hello.txt`: 15 bytes.
const HELLO: &[u8] = b"Hello, hangup!\n";

/// The size of `big.bin`: far above every buffer on the way, so a client
/// that stops reading leaves most of it unsent.
const BIG_BYTES: usize = 8 << 20;

/// A marker that only exists outside the served root.
const SECRET: &str = "TOP-SECRET-OUTSIDE-THE-ROOT";

/// A scratch directory under the system temp dir, removed on drop.
pub(crate) struct Scratch {
    pub(crate) path: PathBuf,
}

impl Scratch {
    /// A fresh, empty directory named after `test`, unique per process
    /// and call.
    pub(crate) fn new(test: &str) -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "hangup-cli-serve-{}-{test}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create scratch dir");
        Scratch { path }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The served tree, in `scratch/root`, next to `scratch/outside`:
///
/// ```text
/// outside/secret.txt         SECRET
/// root/hello.txt             HELLO
/// root/docs/index.html
/// root/listing/a<b>&"c.txt
/// root/listing/sub/
/// root/inside-link   -> hello.txt            (stays inside: served)
/// root/escape        -> ../outside           (leads outside: refused)
/// root/secret-link   -> ../outside/secret.txt
/// root/abs           -> /etc
/// ```
pub(crate) fn site(test: &str) -> (Scratch, PathBuf) {
    let scratch = Scratch::new(test);
    let root = scratch.path.join("root");
    let outside = scratch.path.join("outside");
    for dir in [
        &root,
        &outside,
        &root.join("docs"),
        &root.join("listing/sub"),
    ] {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(outside.join("secret.txt"), SECRET).unwrap();
    std::fs::write(root.join("hello.txt"), HELLO).unwrap();
    std::fs::write(root.join("docs/index.html"), "<h1>the docs</h1>\n").unwrap();
    std::fs::write(root.join("listing/a<b>&\"c.txt"), "odd name\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::symlink;
        symlink("hello.txt", root.join("inside-link")).unwrap();
        symlink("../outside", root.join("escape")).unwrap();
        symlink("../outside/secret.txt", root.join("secret-link")).unwrap();
        symlink("/etc", root.join("abs")).unwrap();
    }
    (scratch, root)
}

/// The byte at `i` of `big.bin`: not periodic at any power of two, so a
/// piece sent twice, dropped or misplaced shows.
pub(crate) fn big_byte(i: usize) -> u8 {
    ((i % 251) ^ (i / 65_521)) as u8
}

/// Writes `root/big.bin` ([`BIG_BYTES`] of [`big_byte`]) and returns it.
fn write_big(root: &Path) -> Vec<u8> {
    let data: Vec<u8> = (0..BIG_BYTES).map(big_byte).collect();
    std::fs::write(root.join("big.bin"), &data).unwrap();
    data
}

/// The server's stderr, line by line, filled by a reader thread. Lines
/// are kept as the bytes the server wrote (without the `\n`), so a byte
/// that is not UTF-8 neither stops the reader nor hides.
#[derive(Clone, Default)]
pub(crate) struct Stderr(Arc<Mutex<Vec<Vec<u8>>>>);

impl Stderr {
    /// Every line so far, as written.
    pub(crate) fn raw_lines(&self) -> Vec<Vec<u8>> {
        self.0.lock().unwrap().clone()
    }

    /// Every line so far, as text (bytes that are not UTF-8 replaced).
    pub(crate) fn lines(&self) -> Vec<String> {
        self.raw_lines()
            .iter()
            .map(|line| String::from_utf8_lossy(line).into_owned())
            .collect()
    }

    /// Every line so far, as one text (for failure messages).
    pub(crate) fn text(&self) -> String {
        self.lines().join("\n")
    }

    /// Waits (bounded by [`LIMIT`]) for a line that satisfies `wanted`.
    pub(crate) async fn wait_for(&self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(line) = self.lines().into_iter().find(|l| wanted(l)) {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "no stderr line with {what} within {LIMIT:?}; stderr:\n{}",
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The access-log lines for `target` (the request target as sent).
    pub(crate) fn access_lines(&self, target: &str) -> Vec<String> {
        let field = format!(" target={target} ");
        self.lines()
            .into_iter()
            .filter(|l| l.contains("hangup::access") && l.contains(&field))
            .collect()
    }
}

/// A running `hangup serve`; killed by its PID when dropped.
pub(crate) struct Served {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
    pub(crate) stderr: Stderr,
}

impl Served {
    /// Starts `hangup serve ROOT --addr 127.0.0.1:0` logging at INFO (every
    /// access line) and waits until it announces the address it listens on.
    pub(crate) fn start(root: &Path) -> Served {
        Served::start_logging(root, "info")
    }

    /// [`start`](Self::start) with `RUST_LOG` set to `log`.
    pub(crate) fn start_logging(root: &Path, log: &str) -> Served {
        Served::start_with(root, log, &[])
    }

    /// [`start_logging`](Self::start_logging) with more options after
    /// `--addr 127.0.0.1:0` (a later `--addr` or `-p` wins).
    pub(crate) fn start_with(root: &Path, log: &str, options: &[&str]) -> Served {
        Served::start_through(&[], root, log, options)
    }

    /// [`start_with`](Self::start_with), the binary run through `runner`
    /// (a program and its arguments, such as `setpriv` to drop
    /// privileges) when it is not empty.
    pub(crate) fn start_through(
        runner: &[&str],
        root: &Path,
        log: &str,
        options: &[&str],
    ) -> Served {
        let binary = env!("CARGO_BIN_EXE_hangup");
        let mut command = match runner.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(binary);
                command
            }
            None => Command::new(binary),
        };
        let mut child = command
            .arg("serve")
            .arg(root)
            .args(["--addr", "127.0.0.1:0"])
            .args(options)
            .env("RUST_LOG", log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start hangup serve");
        let stderr = Stderr::default();
        let pipe = child.stderr.take().expect("stderr pipe");
        let lines = stderr.clone();
        std::thread::spawn(move || {
            let mut pipe = BufReader::new(pipe);
            loop {
                let mut line = Vec::new();
                match pipe.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if line.last() == Some(&b'\n') {
                            line.pop();
                        }
                        lines.0.lock().unwrap().push(line);
                    }
                }
            }
        });
        let mut served = Served {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr,
        };
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(addr) = served.stderr.lines().iter().find_map(|l| announced(l)) {
                served.addr = addr;
                return served;
            }
            if let Ok(Some(status)) = served.child.try_wait() {
                panic!(
                    "hangup serve exited with {status}: {}",
                    served.stderr.text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "hangup serve did not announce its address: {}",
                served.stderr.text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends `request` on a fresh connection and parses the one response.
    pub(crate) async fn exchange(&self, request: &[u8]) -> Response {
        let is_head = request.starts_with(b"HEAD ");
        let raw = raw_exchange(self.addr, request).await;
        let mut responses = parse_responses(&raw, &[is_head]);
        assert_eq!(responses.len(), 1, "{:?}", String::from_utf8_lossy(&raw));
        responses.remove(0)
    }

    /// `GET target` with extra header lines, on its own connection.
    pub(crate) async fn get(&self, target: &str, extra: &[(&str, &str)]) -> Response {
        self.exchange(&request("GET", target, extra)).await
    }

    /// Waits for the process to exit, bounded by [`LIMIT`].
    pub(crate) async fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "hangup serve still running: {}",
                self.stderr.text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        // By PID, and reaped; a process that already exited is fine.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address in the startup line: `... on http://127.0.0.1:PORT/ ...`
/// (or `https://`).
fn announced(line: &str) -> Option<SocketAddr> {
    let rest = line
        .split_once(" on http://")
        .or_else(|| line.split_once(" on https://"))?
        .1;
    rest.split('/').next()?.parse().ok()
}

/// A request closing the connection after the response.
pub(crate) fn request(method: &str, target: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut text = format!("{method} {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (name, value) in extra {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.into_bytes()
}

/// The value of `name=` in an access-log line.
pub(crate) fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=");
    let start = line.find(&key)? + key.len();
    line[start..].split_whitespace().next()
}

/// The numeric value of `name=` in an access-log line; panics if absent.
pub(crate) fn number(line: &str, name: &str) -> u64 {
    field(line, name)
        .unwrap_or_else(|| panic!("no {name} in {line}"))
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a number in {line}"))
}

#[test]
fn serve_help_teaches_and_errors_say_what_to_do() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_hangup"))
            .args(args)
            .output()
            .expect("run hangup")
    };
    let help = run(&["serve", "--help"]);
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for needle in [
        "Serve a directory",
        "--addr",
        "499",
        "acked",
        "Range",
        "Examples:",
        "Ctrl-C",
    ] {
        assert!(text.contains(needle), "--help lacks {needle:?}:\n{text}");
    }

    let missing = run(&["serve", "/nonexistent/hangup-cli-serve-test"]);
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("pass an existing directory"), "{err}");

    let (_scratch, root) = site("errors");
    let file = run(&["serve", root.join("hello.txt").to_str().unwrap()]);
    assert!(!file.status.success());
    let err = String::from_utf8_lossy(&file.stderr);
    assert!(err.contains("not a directory"), "{err}");

    let bad_addr = run(&["serve", "--addr", "not-an-address"]);
    assert!(!bad_addr.status.success());
    let err = String::from_utf8_lossy(&bad_addr.stderr);
    assert!(err.contains("HOST:PORT"), "{err}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let in_use = run(&["serve", root.to_str().unwrap(), "--addr", &addr]);
    assert!(!in_use.status.success());
    let err = String::from_utf8_lossy(&in_use.stderr);
    assert!(err.contains("pick another port"), "{err}");
}

#[tokio::test]
async fn get_and_head_a_file_with_type_length_and_validators() {
    let (_scratch, root) = site("get");
    let served = Served::start(&root);

    let get = served.get("/hello.txt", &[]).await;
    assert_eq!(get.status, 200);
    assert_eq!(get.body, HELLO);
    assert_eq!(
        get.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(get.header("content-length"), Some("15"));
    assert_eq!(get.header("accept-ranges"), Some("bytes"));
    assert_eq!(get.header("x-content-type-options"), Some("nosniff"));
    let etag = get.header("etag").expect("etag");
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2,
        "{etag}"
    );
    let modified = httpdate::parse_http_date(get.header("last-modified").expect("last-modified"))
        .expect("an HTTP date");
    let on_disk = std::fs::metadata(root.join("hello.txt"))
        .unwrap()
        .modified()
        .unwrap();
    let skew = on_disk.duration_since(modified).unwrap_or_default();
    assert!(
        skew < Duration::from_secs(1),
        "last-modified {modified:?} vs {on_disk:?}"
    );

    let raw = raw_exchange(served.addr, &request("HEAD", "/hello.txt", &[])).await;
    assert!(
        raw.ends_with(b"\r\n\r\n"),
        "HEAD sent a body: {:?}",
        String::from_utf8_lossy(&raw)
    );
    let head = &parse_responses(&raw, &[true])[0];
    assert_eq!(head.status, 200);
    for name in ["content-type", "content-length", "etag", "last-modified"] {
        assert_eq!(head.header(name), get.header(name), "{name}");
    }

    // A symlink that stays inside the root is followed.
    let linked = served.get("/inside-link", &[]).await;
    assert_eq!((linked.status, linked.body.as_slice()), (200, HELLO));

    let missing = served.get("/missing.txt", &[]).await;
    assert_eq!(missing.status, 404);
    let post = served
        .exchange(&request("POST", "/hello.txt", &[("Content-Length", "0")]))
        .await;
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD, OPTIONS"));

    // One access-log line per request, once it is final (the last one
    // is the POST's; then no more may follow).
    served
        .stderr
        .wait_for("the POST line", |l| {
            l.contains("method=POST") && l.contains(" target=/hello.txt ")
        })
        .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let lines = served.stderr.access_lines("/hello.txt");
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(lines.iter().all(|l| l.contains(" status=")), "{lines:#?}");
}

#[tokio::test]
async fn directories_get_index_html_a_redirect_or_an_escaped_listing() {
    let (_scratch, root) = site("dirs");
    let served = Served::start(&root);

    let redirect = served.get("/docs?x=1", &[]).await;
    assert_eq!(redirect.status, 301);
    assert_eq!(redirect.header("location"), Some("/docs/?x=1"));
    let index = served.get("/docs/", &[]).await;
    assert_eq!(index.status, 200);
    assert_eq!(index.text(), "<h1>the docs</h1>\n");
    assert_eq!(
        index.header("content-type"),
        Some("text/html; charset=utf-8")
    );

    let listing = served.get("/listing/", &[]).await;
    assert_eq!(listing.status, 200);
    assert_eq!(
        listing.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let page = listing.text();
    assert!(page.contains("a&lt;b&gt;&amp;&quot;c.txt"), "{page}");
    assert!(!page.contains("a<b>"), "unescaped name in {page}");
    assert!(page.contains("href=\"a%3Cb%3E%26%22c.txt\""), "{page}");
    assert!(page.contains("href=\"sub/\""), "{page}");
    assert!(page.contains("href=\"../\""), "{page}");
    // The link works.
    let odd = served.get("/listing/a%3Cb%3E%26%22c.txt", &[]).await;
    assert_eq!((odd.status, odd.text().as_str()), (200, "odd name\n"));

    // The root lists its entries but hides symlinks that lead outside.
    let top = served.get("/", &[]).await.text();
    assert!(
        top.contains("hello.txt") && top.contains("inside-link"),
        "{top}"
    );
    for hidden in ["escape", "secret-link", "abs"] {
        assert!(!top.contains(hidden), "{hidden} listed: {top}");
    }
}

#[tokio::test]
async fn traversal_attempts_never_leave_the_root() {
    let (_scratch, root) = site("traversal");
    let served = Served::start(&root);
    let targets: &[&[u8]] = &[
        b"/../outside/secret.txt",
        b"/docs/../../outside/secret.txt",
        b"/%2e%2e/outside/secret.txt",
        b"/%2E%2E/outside/secret.txt",
        b"/.%2e/outside/secret.txt",
        b"/..%2foutside%2fsecret.txt",
        b"/%2e%2e%2foutside%2fsecret.txt",
        b"/..\\outside\\secret.txt",
        b"/hello.txt%00.html",
        b"/%00",
        b"/hello.txt\x00",
        b"//etc/passwd",
        b"/abs/passwd",
        b"/escape/secret.txt",
        b"/escape/",
        b"/secret-link",
        b"http://test/../outside/secret.txt",
        b"/%c0%ae%c0%ae/outside/secret.txt",
        b"/%zz",
    ];
    for target in targets {
        let mut raw = b"GET ".to_vec();
        raw.extend_from_slice(target);
        raw.extend_from_slice(b" HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        let bytes = raw_exchange(served.addr, &raw).await;
        let text = String::from_utf8_lossy(&bytes);
        let shown = String::from_utf8_lossy(target);
        assert!(!text.contains(SECRET), "{shown} leaked the secret: {text}");
        assert!(
            !text.contains("root:"),
            "{shown} leaked /etc/passwd: {text}"
        );
        let response = &parse_responses(&bytes, &[false])[0];
        assert!(
            [400, 403, 404].contains(&response.status),
            "{shown}: {}",
            response.status
        );
    }
    // The clearer statuses for the clearer cases.
    assert_eq!(
        served.get("/%2e%2e/outside/secret.txt", &[]).await.status,
        403
    );
    assert_eq!(served.get("/secret-link", &[]).await.status, 403);
    assert_eq!(served.get("/hello.txt%00.html", &[]).await.status, 400);
    assert_eq!(served.get("//etc/passwd", &[]).await.status, 404);
}

/// Names that cannot lead to a file are "not found", as nginx answers, not
/// a server error: a name over the file system's 255-byte limit
/// (ENAMETOOLONG, which answered 500), a path over `PATH_MAX`, a name
/// below a file (ENOTDIR) and a symlink cycle (ELOOP). The client's
/// mistake, so no warning is logged either.
#[tokio::test]
async fn names_no_file_can_have_are_not_found() {
    let (_scratch, root) = site("no-such-name");
    #[cfg(unix)]
    std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
    let served = Served::start(&root);
    let long_name = "a".repeat(256);
    // 17 names of 250 bytes: 4267 bytes, over Linux's 4096-byte PATH_MAX.
    let long_path = format!("/{}", vec!["b".repeat(250); 17].join("/"));
    let targets = [
        format!("/{long_name}"),
        format!("/docs/{long_name}/index.html"),
        format!("/{long_name}/"),
        long_path,
        "/hello.txt/x".to_owned(),
        "/loop".to_owned(),
        "/loop/x".to_owned(),
    ];
    for target in &targets {
        let response = served.get(target, &[]).await;
        let shown = &target[..target.len().min(40)];
        assert_eq!(response.status, 404, "{shown}...: {}", response.text());
    }
    // The access line comes after the response, and a warning would come
    // before it: once the last line is here, any warning is too.
    let last = targets.last().unwrap();
    served
        .stderr
        .wait_for("the last access line", |l| {
            l.contains(&format!(" target={last} "))
        })
        .await;
    let text = served.stderr.text();
    assert!(!text.contains("WARN"), "{text}");
}

#[tokio::test]
async fn validators_answer_304_to_current_copies() {
    let (_scratch, root) = site("conditional");
    let served = Served::start(&root);
    let first = served.get("/hello.txt", &[]).await;
    let etag = first.header("etag").unwrap().to_owned();
    let modified = first.header("last-modified").unwrap().to_owned();
    let weak = format!("W/{etag}");
    let listed = format!("\"other\", {etag}");

    for (name, value) in [
        ("If-None-Match", etag.as_str()),
        ("If-None-Match", weak.as_str()),
        ("If-None-Match", listed.as_str()),
        ("If-None-Match", "*"),
        ("If-Modified-Since", modified.as_str()),
        ("If-Modified-Since", "Fri, 01 Jan 2100 00:00:00 GMT"),
    ] {
        let response = served.get("/hello.txt", &[(name, value)]).await;
        assert_eq!(response.status, 304, "{name}: {value}");
        assert!(response.body.is_empty());
        assert_eq!(response.header("etag"), Some(etag.as_str()));
        let head = served
            .exchange(&request("HEAD", "/hello.txt", &[(name, value)]))
            .await;
        assert_eq!(head.status, 304, "HEAD {name}: {value}");
    }
    for extra in [
        vec![("If-None-Match", "\"other\"")],
        vec![("If-Modified-Since", "Thu, 01 Jan 1970 00:00:00 GMT")],
        vec![("If-Modified-Since", "not a date")],
        // If-None-Match decides; the matching date is ignored.
        vec![
            ("If-None-Match", "\"other\""),
            ("If-Modified-Since", modified.as_str()),
        ],
    ] {
        let response = served.get("/hello.txt", &extra).await;
        assert_eq!(
            (response.status, response.body.as_slice()),
            (200, HELLO),
            "{extra:?}"
        );
    }
}

/// Two files with the same length and modification time (copies made
/// with `cp -p` or `rsync -t`, a reproducible build's fixed timestamps)
/// get different ETags. So a file replaced by such a twin (renamed over
/// it, as atomic deploys do) is a new version: the old tag no longer
/// matches, and a cache gets the new bytes instead of a 304.
#[tokio::test]
async fn etags_tell_apart_files_with_the_same_size_and_mtime() {
    let (_scratch, root) = site("etags");
    let stamp = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    for (name, body) in [("one.txt", "version 1\n"), ("two.txt", "version 2\n")] {
        let mut file = std::fs::File::create(root.join(name)).unwrap();
        file.write_all(body.as_bytes()).unwrap();
        file.set_modified(stamp).unwrap();
    }
    let served = Served::start(&root);

    let one = served.get("/one.txt", &[]).await;
    let two = served.get("/two.txt", &[]).await;
    // The premise: nothing but the file itself tells them apart.
    for name in ["content-length", "last-modified"] {
        assert_eq!(one.header(name), two.header(name), "{name}");
    }
    let old_tag = one.header("etag").expect("etag");
    assert_ne!(Some(old_tag), two.header("etag"));

    std::fs::rename(root.join("two.txt"), root.join("one.txt")).unwrap();
    let after = served.get("/one.txt", &[("If-None-Match", old_tag)]).await;
    assert_eq!(
        (after.status, after.text().as_str()),
        (200, "version 2\n"),
        "a stale copy was confirmed"
    );
    assert_ne!(after.header("etag"), Some(old_tag));
}

#[tokio::test]
async fn single_byte_ranges_get_206_and_impossible_ones_416() {
    let (_scratch, root) = site("ranges");
    let big = write_big(&root);
    let served = Served::start(&root);
    let etag = served
        .get("/hello.txt", &[])
        .await
        .header("etag")
        .unwrap()
        .to_owned();

    for (range, content_range, body) in [
        ("bytes=0-9", "bytes 0-9/15", &HELLO[..10]),
        ("bytes=-5", "bytes 10-14/15", &HELLO[10..]),
        ("bytes=10-", "bytes 10-14/15", &HELLO[10..]),
        ("bytes=3-3", "bytes 3-3/15", &HELLO[3..4]),
        ("bytes=5-1000", "bytes 5-14/15", &HELLO[5..]),
    ] {
        let response = served.get("/hello.txt", &[("Range", range)]).await;
        assert_eq!(response.status, 206, "{range}");
        assert_eq!(
            response.header("content-range"),
            Some(content_range),
            "{range}"
        );
        assert_eq!(response.body, body, "{range}");
        assert_eq!(
            response.header("content-length"),
            Some(body.len().to_string().as_str())
        );
    }

    for range in ["bytes=15-", "bytes=100-200", "bytes=-0"] {
        let response = served.get("/hello.txt", &[("Range", range)]).await;
        assert_eq!(response.status, 416, "{range}");
        assert_eq!(
            response.header("content-range"),
            Some("bytes */15"),
            "{range}"
        );
    }

    // Ignored: several ranges, another unit, nonsense, a stale If-Range.
    for extra in [
        vec![("Range", "bytes=0-1,5-6")],
        vec![("Range", "lines=1-2")],
        vec![("Range", "bytes=9-2")],
        vec![("Range", "bytes=0-4"), ("If-Range", "\"stale\"")],
    ] {
        let response = served.get("/hello.txt", &extra).await;
        assert_eq!(
            (response.status, response.body.as_slice()),
            (200, HELLO),
            "{extra:?}"
        );
    }
    let current = served
        .get("/hello.txt", &[("Range", "bytes=0-4"), ("If-Range", &etag)])
        .await;
    assert_eq!(
        (current.status, current.body.as_slice()),
        (206, &HELLO[..5])
    );

    // A range deep inside a large file (a seek, then pieces).
    let start = 5_000_000;
    let end = start + 200_000 - 1;
    let range = format!("bytes={start}-{end}");
    let response = served.get("/big.bin", &[("Range", &range)]).await;
    assert_eq!(response.status, 206);
    let expected = format!("bytes {start}-{end}/{BIG_BYTES}");
    assert_eq!(response.header("content-range"), Some(expected.as_str()));
    assert!(
        response.body == big[start..=end],
        "wrong bytes in the range"
    );
}

/// An empty file has no byte for a range to start at (RFC 9110 §14.1.2):
/// `bytes=0-0`, `bytes=0-` and `bytes=-0` are unsatisfiable, so 416 with
/// `Content-Range: bytes */0` and a body that suggests no range (it used
/// to suggest `bytes=0-0`, itself unsatisfiable). A suffix range such as
/// `bytes=-5` is satisfiable and selects the whole, empty, file, which no
/// `Content-Range` can describe: 200 with the empty file, as a server
/// that ignores `Range` answers (§14.2).
#[tokio::test]
async fn ranges_of_an_empty_file_get_a_truthful_416_or_the_empty_file() {
    let (_scratch, root) = site("empty-ranges");
    std::fs::write(root.join("empty.txt"), b"").unwrap();
    let served = Served::start(&root);

    for range in ["bytes=0-0", "bytes=0-", "bytes=-0", "bytes=5-9"] {
        let response = served.get("/empty.txt", &[("Range", range)]).await;
        assert_eq!(response.status, 416, "{range}");
        assert_eq!(
            response.header("content-range"),
            Some("bytes */0"),
            "{range}"
        );
        let text = response.text();
        assert!(
            !text.contains("bytes="),
            "{range}: suggests a range: {text}"
        );
        assert!(text.contains("empty"), "{range}: {text}");
    }
    for range in ["bytes=-5", "bytes=-1"] {
        let response = served.get("/empty.txt", &[("Range", range)]).await;
        assert_eq!(response.status, 200, "{range}: {}", response.text());
        assert_eq!(response.header("content-range"), None, "{range}");
        assert_eq!(response.header("content-length"), Some("0"), "{range}");
        assert!(response.body.is_empty(), "{range}");
    }
    let plain = served.get("/empty.txt", &[]).await;
    assert_eq!(plain.status, 200);
    assert_eq!(plain.header("content-length"), Some("0"));
    assert!(plain.body.is_empty());
}

#[tokio::test]
async fn a_large_file_streams_intact_with_a_content_length() {
    let (_scratch, root) = site("large");
    let big = write_big(&root);
    let served = Served::start(&root);

    let response = served.get("/big.bin", &[]).await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-length"),
        Some(BIG_BYTES.to_string().as_str())
    );
    assert_eq!(response.header("transfer-encoding"), None);
    assert_eq!(
        response.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(response.body.len(), BIG_BYTES);
    assert!(response.body == big, "the body differs from the file");

    // A completed download: 200, and (where TCP_INFO tells) every written
    // byte acknowledged.
    let line = served
        .stderr
        .wait_for("the access line", |l| l.contains(" target=/big.bin "))
        .await;
    assert_eq!(field(&line, "status"), Some("200"), "{line}");
    let written = number(&line, "written");
    assert!(written > BIG_BYTES as u64, "{line}");
    if cfg!(target_os = "linux") {
        assert_eq!(number(&line, "acked"), written, "{line}");
    }
}

/// The file is never loaded whole: a 128 MiB download leaves the server's
/// peak resident memory far below the file's size.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_huge_file_streams_in_bounded_memory() {
    const HUGE_BYTES: u64 = 128 << 20;
    let (_scratch, root) = site("huge");
    // Sparse: no disk space, and it reads as zeros.
    std::fs::File::create(root.join("huge.bin"))
        .unwrap()
        .set_len(HUGE_BYTES)
        .unwrap();
    let served = Served::start(&root);

    let mut stream = connect(served.addr).await;
    send(&mut stream, &request("GET", "/huge.bin", &[])).await;
    let mut total = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = tokio::time::timeout(LIMIT, stream.read(&mut buf))
            .await
            .expect("download stalled")
            .expect("read");
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    assert!(total > HUGE_BYTES, "got {total} bytes");

    let status = std::fs::read_to_string(format!("/proc/{}/status", served.child.id())).unwrap();
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    assert!(
        peak_kib < 48 * 1024,
        "peak RSS {peak_kib} KiB for a {HUGE_BYTES}-byte file"
    );
}

/// A client with a small receive buffer reads a little, then resets. The
/// access log says 499, what the kernel took (`written`) and what the
/// client's TCP acknowledged (`acked`), both far below the file size.
#[tokio::test]
async fn an_aborted_download_is_logged_as_499_with_acked_below_the_size() {
    let (_scratch, root) = site("aborted");
    write_big(&root);
    let served = Served::start(&root);

    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
    // Set before connecting, so the window the client advertises is small.
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&served.addr.into()).unwrap();
    let mut client: StdTcpStream = socket.into();
    client.set_read_timeout(Some(LIMIT)).unwrap();
    client.write_all(&request("GET", "/big.bin", &[])).unwrap();
    let mut got = 0;
    let mut buf = [0u8; 4096];
    while got < 64 * 1024 {
        let n = client.read(&mut buf).expect("read");
        assert!(n > 0, "server closed early");
        got += n;
    }
    // SO_LINGER 0: close sends an RST, as a cancelled download does.
    SockRef::from(&client)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(client);

    let line = served
        .stderr
        .wait_for("a 499 line for /big.bin", |l| {
            l.contains(" target=/big.bin ") && l.contains(" status=499 ")
        })
        .await;
    assert_eq!(field(&line, "intended_status"), Some("200"), "{line}");
    let written = number(&line, "written");
    assert!(written < BIG_BYTES as u64, "{line}");
    if cfg!(target_os = "linux") {
        let acked = number(&line, "acked");
        assert!(acked < BIG_BYTES as u64, "{line}");
        assert!(acked <= written, "{line}");
        assert!(acked > 0, "the client read {got} bytes: {line}");
    }
    assert!(field(&line, "cause").is_some(), "{line}");
    // Normal traffic, not an error.
    let text = served.stderr.text();
    assert!(!text.contains("ERROR") && !text.contains("WARN"), "{text}");
}

/// A client that half-closes after its request (`nc -N`, HTTP/1.0-style
/// clients, health checks) and reads the whole file got all of it: the
/// line says 200, complete, every written byte acknowledged, no cause.
#[tokio::test]
async fn a_half_closing_client_downloading_a_file_is_logged_200_with_every_byte_acked() {
    let (_scratch, root) = site("half-close");
    let data: Vec<u8> = (0..1 << 20).map(big_byte).collect();
    std::fs::write(root.join("mib.bin"), &data).unwrap();
    let served = Served::start(&root);
    let mut stream = connect(served.addr).await;
    send(&mut stream, &request("GET", "/mib.bin", &[])).await;
    tokio::io::AsyncWriteExt::shutdown(&mut stream)
        .await
        .unwrap();
    let (bytes, _end) = read_until_end(&mut stream).await;
    let response = &parse_responses(&bytes, &[false])[0];
    assert!(
        response.status == 200 && response.body == data,
        "not the file"
    );

    let line = served
        .stderr
        .wait_for("the line for /mib.bin", |l| l.contains(" target=/mib.bin "))
        .await;
    assert_eq!(field(&line, "status"), Some("200"), "{line}");
    assert_eq!(field(&line, "complete"), Some("true"), "{line}");
    assert_eq!(number(&line, "written"), bytes.len() as u64, "{line}");
    if cfg!(target_os = "linux") {
        assert_eq!(number(&line, "acked"), bytes.len() as u64, "{line}");
    }
    assert_eq!(field(&line, "cause"), None, "{line}");
    assert!(field(&line, "peer_closed_us").is_some(), "{line}");
}

/// A client that sends part of a head and leaves gets a line of its own,
/// naming its address: what operators hunting slow clients and scanners
/// look for.
#[tokio::test]
async fn a_client_that_leaves_mid_head_leaves_a_line_naming_its_address() {
    let (_scratch, root) = site("mid-head");
    let served = Served::start(&root);
    let mut stream = connect(served.addr).await;
    let client = stream.local_addr().unwrap();
    send(&mut stream, b"GET /index.html HTTP/1.1\r\nHost: te").await;
    tokio::io::AsyncWriteExt::shutdown(&mut stream)
        .await
        .unwrap();
    let remote = format!(" remote_addr={client} ");
    let line = served
        .stderr
        .wait_for("a departure line for the client", |l| {
            l.contains("hangup::access") && l.contains(&remote)
        })
        .await;
    assert_eq!(field(&line, "phase"), Some("\"reading_head\""), "{line}");
    assert_eq!(field(&line, "cause"), Some("\"peer_closed\""), "{line}");
    assert_eq!(number(&line, "received"), 34, "{line}");
}

/// Ctrl-C stops accepting, lets a download in flight finish, and exits 0.
#[cfg(unix)]
#[tokio::test]
async fn ctrl_c_lets_a_download_finish_then_exits() {
    let (_scratch, root) = site("ctrl-c");
    let big = write_big(&root);
    let mut served = Served::start(&root);

    let mut stream = connect(served.addr).await;
    send(&mut stream, &get("/big.bin")).await;
    let first = read_exact_bytes(&mut stream, 1024).await;
    assert!(first.starts_with(b"HTTP/1.1 200 OK\r\n"));

    let pid = served.child.id().to_string();
    let kill = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("run kill");
    assert!(kill.success());
    served
        .stderr
        .wait_for("the shutdown notice", |l| l.contains("shutting down"))
        .await;

    // The download completes; then the server closes the connection.
    let (rest, end) = read_until_end(&mut stream).await;
    assert!(matches!(end, End::Eof), "{end:?}");
    let mut raw = first;
    raw.extend_from_slice(&rest);
    let response = &parse_responses(&raw, &[false])[0];
    assert_eq!(response.status, 200);
    assert!(response.body == big, "the download was cut short");

    let status = served.wait_exit().await;
    assert!(status.success(), "{status}: {}", served.stderr.text());
    // The reader thread may see the last line after the exit.
    served
        .stderr
        .wait_for("the stop notice", |l| l.contains("stopped"))
        .await;
}
