//! `hangup serve`'s stderr belongs to the operator: no request can write
//! a line of its own there, color it, or break it. Every string the client
//! chose (target, decoded path, method, header values) reaches a log
//! through `hangup::Escaped`: printable ASCII as is, every other byte,
//! space, `"` and `\` as `\xNN`.
//!
//! Run as the built binary over real sockets, with every `hangup` log
//! line on (`RUST_LOG=hangup=debug`); the checks read the raw bytes of
//! its stderr.

use hangup::Escaped;

use crate::cli_serve::{Served, field, request, site};
use crate::support::*;

/// The start of the line the issue's request forged: a timestamp, a level
/// and the access log's target, as a real access line begins.
const FORGED_START: &str = "2026-12-06T00:00:00Z  INFO hangup::access:";

/// A word every hostile string carries right after a CR, an LF or a
/// space: escaped, it follows `\x0a`, `\x0d` or `\x20`; raw, it starts a
/// line or a field of its own.
const MARK: &str = "FORGED";

/// Percent-encodes every byte of `name` but RFC 3986's unreserved ones.
fn encoded(name: &[u8]) -> String {
    name.iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A request: `head` (request line and fields, each ending in CRLF) with
/// `Host`, `Connection: close` and the blank line added.
fn raw(head: &[u8]) -> Vec<u8> {
    let mut bytes = head.to_vec();
    bytes.extend_from_slice(b"Host: test\r\nConnection: close\r\n\r\n");
    bytes
}

/// Requests carrying CR, LF, ESC, DEL and bytes that are not UTF-8 in
/// every place a client controls: percent-encoded in the path (decoded,
/// they reach the file system and the handler), raw in the target, the
/// method and header values (most are refused by the parser: the
/// rejection is logged too). No header is logged today; these make sure
/// none ever is raw.
fn hostile_requests() -> Vec<Vec<u8>> {
    let issue = format!(
        "GET /{}%0A{} HTTP/1.1\r\n",
        "a".repeat(256),
        encoded(b"2026-12-06T00:00:00Z  INFO hangup::access: remote_addr=6.6.6.6"),
    );
    let in_path = format!(
        "GET /x{} HTTP/1.1\r\n",
        encoded(b"\r\nFORGED \x1b[31mred\x1b[0m \x7f")
    );
    let not_utf8 = format!("GET /x%0AFORGED%FF{} HTTP/1.1\r\n", encoded(b"\x1b[2J"));
    let mut requests: Vec<Vec<u8>> = vec![
        issue.into_bytes(),
        in_path.into_bytes(),
        not_utf8.into_bytes(),
        b"GET /x%0AFORGED?q=%0D%0AFORGED%1B HTTP/1.1\r\n".to_vec(),
        b"GET /raw\x1b[31mFORGED\xff\xfe HTTP/1.1\r\n".to_vec(),
        b"GET /raw\x7fFORGED HTTP/1.1\r\n".to_vec(),
        b"G\x1bET /hello.txt HTTP/1.1\r\n".to_vec(),
        b"GET /hello.txt HTTP/1.1\r\nUser-Agent: \xff\xfe FORGED\r\nReferer: /\xc3\x28\r\n"
            .to_vec(),
        b"GET /hello.txt HTTP/1.1\r\nUser-Agent: \x1b[31mFORGED\r\n".to_vec(),
        b"GET /hello.txt HTTP/1.1\r\nUser-Agent: a\rFORGED\r\n".to_vec(),
        b"GET /hello.txt HTTP/1.1\r\nUser-Agent: a\n2026-12-06T00:00:00Z  INFO hangup::access: FORGED\r\n"
            .to_vec(),
        b"GET /hello.txt HTTP/1.1\r\nUser-Agent: a\r\n FORGED folded\r\n".to_vec(),
    ];
    for request in &mut requests {
        *request = raw(request);
    }
    requests
}

/// Checks every line the server wrote to stderr: visible ASCII only (no
/// CR, ESC or byte above 0x7e, so no terminal control and no line of the
/// client's), and each line one the server wrote: its own notices, or a
/// `tracing` line with a real timestamp, a level and a `hangup` target.
fn assert_stderr_is_the_servers_own(served: &Served) {
    let lines = served.stderr.raw_lines();
    for line in &lines {
        let shown = String::from_utf8_lossy(line);
        assert!(
            line.iter().all(|b| (0x20..0x7f).contains(b)),
            "a raw control or non-ASCII byte reached stderr: {shown:?}"
        );
        assert!(!shown.starts_with(FORGED_START), "a forged line: {shown}");
        assert_ne!(
            field(&shown, "remote_addr"),
            Some("6.6.6.6"),
            "a forged field: {shown}"
        );
        for (at, _) in shown.match_indices(MARK) {
            let before = shown[..at].chars().next_back();
            assert!(
                before.is_some_and(|c| c.is_ascii_hexdigit()),
                "{MARK} is not behind an escape: {shown}"
            );
        }
        if shown.starts_with("hangup serve: ") {
            continue;
        }
        let mut words = shown.split_whitespace();
        let (Some(time), Some(level), Some(target)) = (words.next(), words.next(), words.next())
        else {
            panic!("not a log line: {shown}");
        };
        // Real timestamps carry a fraction of a second; the forged one
        // does not.
        assert!(
            time.contains('.') && time.ends_with('Z'),
            "not a timestamp: {shown}"
        );
        assert!(
            ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&level),
            "not a level: {shown}"
        );
        assert!(target.starts_with("hangup"), "not a target: {shown}");
    }
}

/// Waits until `count` access-log lines (outcomes and rejections) are
/// there: one per request sent.
async fn wait_for_access_lines(served: &Served, count: usize) {
    served
        .stderr
        .wait_for(&format!("{count} access lines"), |_| {
            let lines = served.stderr.lines();
            lines
                .iter()
                .filter(|l| l.contains("hangup::access"))
                .count()
                >= count
        })
        .await;
}

/// 1. A client sends CR, LF, ESC, DEL and bytes that are not UTF-8 in its
///    path (percent-encoded and raw), method and header values, among
///    them the request from issue 14, which used to make the server warn
///    with the decoded path raw (a 256-byte name, ENAMETOOLONG).
/// 2. Every request gets its access line (or its rejection line).
/// 3. Not one raw control byte reaches stderr, and no line or field is
///    the client's.
#[tokio::test]
async fn no_request_writes_a_raw_byte_or_a_line_of_its_own_to_stderr() {
    let (_scratch, root) = site("log-forging");
    let served = Served::start_logging(&root, "hangup=debug");
    let requests = hostile_requests();
    for request in &requests {
        let answer = raw_exchange(served.addr, request).await;
        assert!(
            answer.starts_with(b"HTTP/1.1 "),
            "no answer to {:?}",
            String::from_utf8_lossy(request)
        );
    }
    wait_for_access_lines(&served, requests.len()).await;
    assert_stderr_is_the_servers_own(&served);
    // The targets that reached the handler are logged, escaped.
    let issue_target = format!(
        "/{}%0A{}",
        "a".repeat(256),
        encoded(b"2026-12-06T00:00:00Z  INFO hangup::access: remote_addr=6.6.6.6")
    );
    assert_eq!(served.stderr.access_lines(&issue_target).len(), 1);
    let raw_target: &[u8] = b"/x%0AFORGED?q=%0D%0AFORGED%1B";
    let shown = Escaped::bytes(raw_target).to_string();
    assert_eq!(served.stderr.access_lines(&shown).len(), 1);
}

/// The lowest descriptor number process `pid` has free: the next one it
/// opens.
#[cfg(target_os = "linux")]
fn lowest_free_descriptor(pid: u32) -> u64 {
    let open: std::collections::BTreeSet<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("list the server's descriptors")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    (0..).find(|fd| !open.contains(fd)).unwrap_or(0)
}

/// The soft limit on open files of process `pid`.
#[cfg(target_os = "linux")]
fn soft_open_files_limit(pid: u32) -> u64 {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("read limits");
    limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .expect("a soft limit on open files")
}

/// Sets the soft limit on open files of process `pid` (with `prlimit`
/// from util-linux; the hard limit stays, so the soft one can go back).
#[cfg(target_os = "linux")]
fn set_soft_open_files_limit(pid: u32, limit: u64) {
    let status = std::process::Command::new("prlimit")
        .args(["--pid", &pid.to_string(), &format!("--nofile={limit}:")])
        .status()
        .expect("run prlimit (util-linux)");
    assert!(status.success(), "prlimit failed: {status}");
}

/// The one warning a client can cause, "cannot read" (a 500), shows the
/// request's decoded path escaped.
///
/// 1. The served directory holds a file whose name carries an LF, then
///    the start of an access line, ESC sequences and a CR.
/// 2. The server's open-file limit is lowered to exactly the descriptor
///    its next connection takes, so opening the file fails with EMFILE:
///    the server's own trouble, a 500 and a warning naming the path.
/// 3. The warning shows the name as `\x0a`, `\x1b` and `\x0d`: one line,
///    nothing the client wrote; the path was printed raw before.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_warning_shows_the_clients_path_escaped() {
    let (_scratch, root) = site("log-warning");
    let name = "x\n2026-12-06T00:00:00Z  INFO hangup::access: remote_addr=6.6.6.6 \
                FORGED \x1b[31mred\x1b[0m\r";
    std::fs::write(root.join(name), "unreadable today\n").unwrap();
    let served = Served::start_logging(&root, "hangup=debug");
    let target = format!("/{}", encoded(name.as_bytes()));

    // While the limit is low, the accept after the connection fails too
    // (Linux checks for a free descriptor before the queue): the server
    // warns "accept failed", which says nothing the client wrote.
    //
    // A keep-alive connection that stays open: the server is accepting
    // (its setup is done), and no connection is closing (which would free
    // a lower descriptor) while the limit is low.
    let mut warm = connect(served.addr).await;
    send(&mut warm, &get("/hello.txt")).await;
    assert_eq!(read_response(&mut warm, false).await.status, 200);
    // Its line is written once the handler is gone, and with it the file
    // it sent: that descriptor must not come free after the limit is set
    // (the read above can beat the close).
    wait_for_access_lines(&served, 1).await;

    let pid = served.child.id();
    let soft = soft_open_files_limit(pid);
    set_soft_open_files_limit(pid, lowest_free_descriptor(pid) + 1);
    let response = served.exchange(&request("GET", &target, &[])).await;
    set_soft_open_files_limit(pid, soft);
    assert_eq!(response.status, 500, "{}", response.text());

    let warning = served
        .stderr
        .wait_for("the warning", |l| l.contains(" WARN hangup::serve: "))
        .await;
    let path = format!("path={}", Escaped::bytes(format!("/{name}").as_bytes()));
    assert!(warning.contains(&path), "{warning}\nlacks {path}");
    drop(warm);
    wait_for_access_lines(&served, 2).await;
    assert_stderr_is_the_servers_own(&served);
}

/// `--proxy-protocol`: the access line names the client the header
/// relays; a connection without a header is refused, unanswered, with a
/// line of its own.
#[tokio::test]
async fn behind_a_proxy_the_log_names_the_relayed_client() {
    let (_scratch, root) = site("proxy-protocol");
    let served = Served::start_with(&root, "info", &["--proxy-protocol"]);
    let mut request = b"PROXY TCP4 203.0.113.9 198.51.100.7 40000 443\r\n".to_vec();
    request.extend_from_slice(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let response = raw_exchange(served.addr, &request).await;
    assert!(response.starts_with(b"HTTP/1.1 200 OK"), "{response:?}");
    let line = served
        .stderr
        .wait_for("the relayed request's line", |l| {
            l.contains(" target=/hello.txt ")
        })
        .await;
    assert!(line.contains(" remote_addr=203.0.113.9:40000 "), "{line}");

    let bare = raw_exchange(served.addr, b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(bare.is_empty(), "{bare:?}");
    let refused = served
        .stderr
        .wait_for("the refusal", |l| l.contains("proxy_header_refused"))
        .await;
    assert!(refused.contains("not a proxy protocol header"), "{refused}");
}
