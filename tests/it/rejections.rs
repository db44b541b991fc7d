//! Bad input: every rejection is a complete response (status line,
//! `connection: close`, a `content-length`'d body) followed by a clean close
//! (EOF, not a hang and not a reset that eats the response).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hangup::{Config, Request, ResponseWriter};

use crate::support::*;

/// Checks that `bytes` (everything read until the stream ended with `end`)
/// is exactly one complete rejection with `status`, then a clean close.
fn assert_complete_rejection(bytes: &[u8], end: &End, status: u16, case: &str) {
    let text = String::from_utf8_lossy(bytes);
    assert!(
        matches!(end, End::Eof),
        "{case}: connection ended with {end:?} instead of a clean close; got {text:?}"
    );
    assert!(
        bytes.starts_with(b"HTTP/1.1 "),
        "{case}: no status line: {text:?}"
    );
    let (response, used) =
        parse_one(bytes, false).unwrap_or_else(|| panic!("{case}: incomplete response: {text:?}"));
    assert_eq!(response.status, status, "{case}: wrong status: {text:?}");
    assert_eq!(
        response.header("connection"),
        Some("close"),
        "{case}: no `connection: close`: {text:?}"
    );
    let length: usize = response
        .header("content-length")
        .unwrap_or_else(|| panic!("{case}: no content-length: {text:?}"))
        .parse()
        .unwrap_or_else(|_| panic!("{case}: bad content-length: {text:?}"));
    assert_eq!(response.body.len(), length, "{case}: short body: {text:?}");
    assert!(length > 0, "{case}: empty error body: {text:?}");
    assert_eq!(
        used,
        bytes.len(),
        "{case}: bytes after the response: {text:?}"
    );
}

/// Sends `request` on a new connection and checks the rejection.
async fn check_rejected(addr: SocketAddr, request: &[u8], status: u16, case: &str) {
    let mut stream = connect(addr).await;
    send(&mut stream, request).await;
    let (bytes, end) = read_until_end(&mut stream).await;
    assert_complete_rejection(&bytes, &end, status, case);
}

fn post(fields: &str, body: &str) -> Vec<u8> {
    format!("POST /echo HTTP/1.1\r\nHost: t\r\n{fields}\r\n{body}").into_bytes()
}

async fn ok_handler(_req: Request, mut res: ResponseWriter) -> hangup::Result<()> {
    res.write_all(b"ok").await
}

#[tokio::test]
async fn content_length_and_transfer_encoding_framing_errors_are_rejected() {
    let server = spawn_default(echo).await;
    let cases: &[(&str, Vec<u8>, u16)] = &[
        (
            "content-length with transfer-encoding",
            post(
                "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
                "3\r\nabc\r\n0\r\n\r\n",
            ),
            400,
        ),
        (
            "content-length abc",
            post("Content-Length: abc\r\n", "abc"),
            400,
        ),
        (
            "content-length -1",
            post("Content-Length: -1\r\n", "abc"),
            400,
        ),
        (
            "content-length overflow",
            post("Content-Length: 18446744073709551616\r\n", "abc"),
            400,
        ),
        (
            "conflicting content-length",
            post("Content-Length: 3\r\nContent-Length: 4\r\n", "abcd"),
            400,
        ),
        (
            "conflicting content-length in one list",
            post("Content-Length: 3, 4\r\n", "abcd"),
            400,
        ),
        (
            "transfer-encoding gzip (final coding not chunked)",
            post("Transfer-Encoding: gzip\r\n", "abc"),
            400,
        ),
        (
            "transfer-encoding gzip, chunked (unsupported coding)",
            post(
                "Transfer-Encoding: gzip, chunked\r\n",
                "3\r\nabc\r\n0\r\n\r\n",
            ),
            501,
        ),
        (
            "transfer-encoding in HTTP/1.0",
            b"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
                .to_vec(),
            400,
        ),
    ];
    for (case, request, status) in cases {
        check_rejected(server.addr, request, *status, case).await;
    }
}

#[tokio::test]
async fn identical_repeated_content_length_is_accepted() {
    let server = spawn_default(echo).await;
    for (case, fields) in [
        ("two fields", "Content-Length: 3\r\nContent-Length: 3\r\n"),
        ("one list", "Content-Length: 3, 3\r\n"),
    ] {
        let mut stream = connect(server.addr).await;
        send(&mut stream, &post(fields, "abc")).await;
        let response = read_response(&mut stream, false).await;
        assert_eq!(response.status, 200, "{case}");
        assert_eq!(response.body, b"abc", "{case}");
    }
}

#[tokio::test]
async fn malformed_heads_are_rejected() {
    let server = spawn_default(ok_handler).await;
    let cases: &[(&str, &[u8], u16)] = &[
        (
            "bare CR in a header value",
            b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\rb\r\n\r\n",
            400,
        ),
        (
            "bare CR ending a line",
            b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\r\r\n\r\n",
            400,
        ),
        ("bare LF line endings", b"GET / HTTP/1.1\nHost: t\n\n", 400),
        (
            "one bare LF among CRLFs",
            b"GET / HTTP/1.1\r\nHost: t\nX-A: a\r\n\r\n",
            400,
        ),
        (
            "obs-fold",
            b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\r\n  b\r\n\r\n",
            400,
        ),
        (
            "whitespace before the colon",
            b"GET / HTTP/1.1\r\nHost : t\r\n\r\n",
            400,
        ),
        ("missing Host on HTTP/1.1", b"GET / HTTP/1.1\r\n\r\n", 400),
        (
            "two Host fields (same value)",
            b"GET / HTTP/1.1\r\nHost: t\r\nHost: t\r\n\r\n",
            400,
        ),
        (
            "two Host fields (different values)",
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            400,
        ),
        ("HTTP/2.0", b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505),
        ("HTTP/1.2", b"GET / HTTP/1.2\r\nHost: t\r\n\r\n", 505),
    ];
    for (case, request, status) in cases {
        check_rejected(server.addr, request, *status, case).await;
    }
}

/// RFC 9112 §3.2: a `Host` value outside `uri-host [ ":" port ]` is a
/// 400, like a missing or repeated one; values inside the grammar,
/// however odd, are served.
#[tokio::test]
async fn invalid_host_values_are_rejected_and_valid_ones_served() {
    let server = spawn_default(ok_handler).await;
    for host in [
        "a b",
        "a/b",
        "example.com:x1",
        "a?b",
        "a#b",
        "user@example.com",
        "[::1",
        "[::1]x",
        "example.com:80:81",
        "a%zz",
    ] {
        let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
        check_rejected(server.addr, request.as_bytes(), 400, host).await;
    }
    for host in [
        "",
        "example.com:",
        "127.0.0.1:8080",
        "[::1]:80",
        "a%20b",
        ":",
    ] {
        let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let bytes = raw_exchange(server.addr, request.as_bytes()).await;
        let (response, _) = parse_one(&bytes, false).expect("a response");
        assert_eq!(
            response.status,
            200,
            "{host:?}: {:?}",
            String::from_utf8_lossy(&bytes)
        );
    }
}

#[tokio::test]
async fn bare_lf_line_endings_are_accepted_when_lenient() {
    let config = Config::builder()
        .lenient_line_endings(true)
        .build()
        .unwrap();
    let server = spawn(config, ok_handler).await;
    let mut stream = connect(server.addr).await;
    send(&mut stream, b"GET / HTTP/1.1\nHost: t\n\n").await;
    let response = read_response(&mut stream, false).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"ok");
    // A bare CR stays an error in lenient mode.
    check_rejected(
        server.addr,
        b"GET / HTTP/1.1\nHost: t\nX-A: a\rb\n\n",
        400,
        "bare CR, lenient",
    )
    .await;
}

fn small_limits() -> Config {
    Config::builder()
        .max_request_line_bytes(256)
        .max_head_bytes(1024)
        .max_headers(8)
        .build()
        .unwrap()
}

#[tokio::test]
async fn request_line_over_the_limit_gets_414_when_complete() {
    let server = spawn(small_limits(), ok_handler).await;
    let request = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(300));
    check_rejected(server.addr, request.as_bytes(), 414, "complete long line").await;
}

#[tokio::test]
async fn request_line_over_the_limit_gets_414_while_still_arriving() {
    let server = spawn(small_limits(), ok_handler).await;
    // No line ending yet: the client is still sending its request line.
    let partial = format!("GET /{}", "a".repeat(400));
    check_rejected(server.addr, partial.as_bytes(), 414, "partial long line").await;
}

#[tokio::test]
async fn head_over_max_head_bytes_gets_431() {
    let server = spawn(small_limits(), ok_handler).await;
    let complete = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "b".repeat(2000)
    );
    check_rejected(server.addr, complete.as_bytes(), 431, "complete large head").await;
    let partial = format!("GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}", "b".repeat(2000));
    check_rejected(server.addr, partial.as_bytes(), 431, "partial large head").await;
}

#[tokio::test]
async fn more_fields_than_max_headers_gets_431() {
    let server = spawn(small_limits(), ok_handler).await;
    let mut request = String::from("GET / HTTP/1.1\r\nHost: t\r\n");
    for i in 0..12 {
        request.push_str(&format!("X-{i}: {i}\r\n"));
    }
    request.push_str("\r\n");
    check_rejected(server.addr, request.as_bytes(), 431, "too many fields").await;
}

#[tokio::test]
async fn stalled_head_is_closed_after_header_read_timeout() {
    let config = Config::builder()
        .header_read_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let server = spawn(config, ok_handler).await;
    let mut stream = connect(server.addr).await;
    let started = Instant::now();
    send(&mut stream, b"GET / HTTP/1.1\r\nHost: t\r\n").await;
    assert!(
        stays_silent(&mut stream, Duration::from_millis(100)).await,
        "connection closed or answered within 100 ms of a half head"
    );
    let (bytes, _end) = read_until_end_within(&mut stream, Duration::from_secs(2)).await;
    let elapsed = started.elapsed();
    assert!(
        bytes.is_empty(),
        "expected a close without a response, got {:?}",
        String::from_utf8_lossy(&bytes)
    );
    assert!(
        elapsed >= Duration::from_millis(250),
        "closed after {elapsed:?}, before the 300 ms timeout"
    );
}

/// `header_read_timeout` is documented as counted from the accept for the
/// first request: a client that connects, waits, then sends half a head
/// does not get a fresh timeout at its first byte.
#[tokio::test]
async fn first_head_deadline_counts_from_accept() {
    let config = Config::builder()
        .header_read_timeout(Duration::from_millis(400))
        .build()
        .unwrap();
    let server = spawn(config, ok_handler).await;
    let mut stream = connect(server.addr).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let wrote = Instant::now();
    send(&mut stream, b"GET / HTTP/1.1\r\nHost: t\r\n").await;
    // Deadline: accept + 400 ms, about 100 ms after this write.
    let (bytes, _end) = read_until_end_within(&mut stream, Duration::from_secs(2)).await;
    let after_write = wrote.elapsed();
    assert!(bytes.is_empty(), "{:?}", String::from_utf8_lossy(&bytes));
    assert!(
        after_write < Duration::from_millis(250),
        "closed {after_write:?} after the first byte: the deadline restarted at the first byte \
         instead of counting from the accept"
    );
}

/// A later request on a kept-alive connection gets its own
/// `header_read_timeout`, counted from its first bytes: a half head is
/// closed after that timeout, not after the (much longer) idle timeout.
#[tokio::test]
async fn stalled_second_head_is_closed_after_header_read_timeout() {
    let config = Config::builder()
        .header_read_timeout(Duration::from_millis(300))
        .idle_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let server = spawn(config, ok_handler).await;
    let mut stream = connect(server.addr).await;
    send(&mut stream, &get("/")).await;
    assert_eq!(read_response(&mut stream, false).await.status, 200);
    // Idle for a while, longer than the header timeout, which must not
    // count yet.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let wrote = Instant::now();
    send(&mut stream, b"GET / HTTP/1.1\r\nHost: t\r\n").await;
    assert!(
        stays_silent(&mut stream, Duration::from_millis(150)).await,
        "closed or answered within 150 ms of a half head: the header timeout counted the idle time"
    );
    let (bytes, _end) = read_until_end_within(&mut stream, Duration::from_secs(5)).await;
    let after_write = wrote.elapsed();
    assert!(bytes.is_empty(), "{:?}", String::from_utf8_lossy(&bytes));
    assert!(
        (Duration::from_millis(250)..Duration::from_secs(3)).contains(&after_write),
        "closed {after_write:?} after the half head; the header timeout is 300 ms"
    );
}

#[tokio::test]
async fn read_all_over_its_limit_gets_413() {
    let server = spawn_default(|mut req: Request, mut res: ResponseWriter| async move {
        let body = req.body_mut().read_all(16).await?;
        res.write_all(&body).await
    })
    .await;
    // Refused from the Content-Length, before reading.
    check_rejected(
        server.addr,
        &post("Content-Length: 100\r\n", &"x".repeat(100)),
        413,
        "content-length over the limit",
    )
    .await;
    // Chunked: found while reading.
    let chunked = format!(
        "10\r\n{}\r\n10\r\n{}\r\n0\r\n\r\n",
        "x".repeat(16),
        "y".repeat(16)
    );
    check_rejected(
        server.addr,
        &post("Transfer-Encoding: chunked\r\n", &chunked),
        413,
        "chunked body over the limit",
    )
    .await;
}

#[tokio::test]
async fn bad_chunk_framing_read_by_the_handler_gets_400() {
    let server = spawn_default(echo).await;
    let cases: &[(&str, &str)] = &[
        ("non-hex chunk size", "zz\r\nabc\r\n0\r\n\r\n"),
        (
            "chunk size overflow",
            "10000000000000000\r\nabc\r\n0\r\n\r\n",
        ),
        ("missing CRLF after chunk data", "3\r\nabcX\r\n0\r\n\r\n"),
        ("empty chunk size", "\r\nabc\r\n0\r\n\r\n"),
        ("whitespace after the size", "3 \r\nabc\r\n0\r\n\r\n"),
        (
            "whitespace after the last chunk's size",
            "3\r\nabc\r\n0 \r\n\r\n",
        ),
    ];
    for (case, body) in cases {
        check_rejected(
            server.addr,
            &post("Transfer-Encoding: chunked\r\n", body),
            400,
            case,
        )
        .await;
    }
}

/// A valid request followed, in the same write, by a bad one: the first is
/// answered in full, then the rejection, then a clean close.
#[tokio::test]
async fn rejection_after_a_valid_pipelined_request_keeps_the_first_response() {
    let server = spawn_default(|mut req: Request, mut res: ResponseWriter| async move {
        let limit = if req.uri().path() == "/small" {
            4
        } else {
            1 << 20
        };
        let body = req.body_mut().read_all(limit).await?;
        res.write_all(req.uri().path().as_bytes()).await?;
        res.write_all(&body).await
    })
    .await;
    let cases: &[(&str, &str, u16)] = &[
        (
            "head framing error",
            "POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            400,
        ),
        (
            "chunk framing error",
            "POST /b HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
            400,
        ),
        (
            "body over the handler's limit",
            "POST /small HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n0123456789",
            413,
        ),
    ];
    for (case, second, status) in cases {
        let mut request = b"POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi".to_vec();
        request.extend_from_slice(second.as_bytes());
        let mut stream = connect(server.addr).await;
        send(&mut stream, &request).await;
        let (bytes, end) = read_until_end(&mut stream).await;
        let (first, used) = parse_one(&bytes, false).unwrap_or_else(|| {
            panic!(
                "{case}: no first response: {:?}",
                String::from_utf8_lossy(&bytes)
            )
        });
        assert_eq!(first.status, 200, "{case}");
        assert_eq!(first.body, b"/ahi", "{case}");
        assert_complete_rejection(&bytes[used..], &end, *status, case);
    }
}

/// The request arrives in two TCP segments, split at every byte offset.
#[tokio::test]
async fn request_split_at_every_offset_is_served() {
    let server = spawn_default(echo).await;
    let requests: [&[u8]; 2] = [
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\nhe\r\n3\r\nllo\r\n0\r\nT: v\r\n\r\n",
    ];
    for request in requests {
        for split in 1..request.len() {
            let mut stream = connect(server.addr).await;
            stream.set_nodelay(true).unwrap();
            send(&mut stream, &request[..split]).await;
            tokio::time::sleep(Duration::from_millis(1)).await;
            send(&mut stream, &request[split..]).await;
            let response = read_response(&mut stream, false).await;
            assert_eq!(
                (response.status, response.body.as_slice()),
                (200, &b"hello"[..]),
                "split at {split} of {:?}",
                String::from_utf8_lossy(request)
            );
        }
    }
}
