//! `ResponseWriter::send_file`: a file's bytes as the body, sent by the
//! kernel (`sendfile(2)`), with the same framing, counters and hang-up
//! rules as written bytes.

use std::io::Write;

use hangup::http::HeaderValue;
use hangup::http::header::CONTENT_LENGTH;
use hangup::{Cutoff, End, Request, ResponseWriter};

use crate::support::*;

/// A file of `len` bytes that are not periodic, so a piece sent twice or
/// misplaced shows.
fn file_of(len: usize) -> (tempfile::NamedTempFile, Vec<u8>) {
    let data: Vec<u8> = (0..len).map(|i| ((i % 251) ^ (i / 65_521)) as u8).collect();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(&data).unwrap();
    file.flush().unwrap();
    (file, data)
}

/// Serves `path` (a file) by range: `/all`, `/range` (bytes 1000..1000+N),
/// `/chunked` (no length set), each after writing a few bytes of a prefix
/// when the query says `?prefix`.
fn file_server(
    path: std::path::PathBuf,
) -> impl Fn(
    Request,
    ResponseWriter,
) -> std::pin::Pin<Box<dyn Future<Output = hangup::Result<()>> + Send>>
+ Send
+ Sync
+ 'static {
    move |request: Request, mut response: ResponseWriter| {
        let path = path.clone();
        Box::pin(async move {
            let file = std::fs::File::open(&path)?;
            let len = file.metadata()?.len();
            let (offset, count) = match request.path() {
                "/range" => (1000, 5000),
                _ => (0, len),
            };
            let prefix = request.uri().query() == Some("prefix");
            if request.path() != "/chunked" {
                let total = count + if prefix { 6 } else { 0 };
                response.insert_header(CONTENT_LENGTH, HeaderValue::from(total))?;
            }
            if prefix {
                response.write_all(b"prefix").await?;
            }
            response.send_file(&file, offset, count).await
        })
    }
}

#[tokio::test]
async fn a_file_is_sent_whole_by_range_and_chunked_with_exact_counters() {
    let (file, data) = file_of(2 << 20);
    let outcomes = Outcomes::default();
    let server = spawn(
        outcomes.builder().build().unwrap(),
        file_server(file.path().to_owned()),
    )
    .await;
    let cases: [(&str, Vec<u8>); 4] = [
        ("/all", data.clone()),
        ("/range", data[1000..6000].to_vec()),
        ("/chunked", data.clone()),
        ("/all?prefix", [&b"prefix"[..], &data].concat()),
    ];
    for (n, (target, expected)) in cases.iter().enumerate() {
        let raw = raw_exchange(server.addr, &get_closing(target)).await;
        let response = &parse_responses(&raw, &[false])[0];
        assert_eq!(response.status, 200, "{target}");
        assert!(response.body == *expected, "{target}: wrong bytes");
        if *target == "/chunked" {
            assert_eq!(response.header("transfer-encoding"), Some("chunked"));
            assert!(response.complete, "{target}: no last chunk");
        } else {
            assert_eq!(
                response.header("content-length"),
                Some(expected.len().to_string().as_str())
            );
        }
        let outcome = outcomes
            .wait_for(n + 1)
            .await
            .into_iter()
            .find(|o| o.uri == *target)
            .expect("its outcome");
        assert_eq!(outcome.end, End::Complete, "{target}: {outcome:?}");
        assert_eq!(outcome.counters.written, raw.len() as u64, "{target}");
        assert_eq!(outcome.counters.buffered, expected.len() as u64, "{target}");
        assert_eq!(
            outcome.counters.acked,
            Some(outcome.counters.written),
            "{target}"
        );
    }
}

/// HEAD counts the file's bytes and sends none: the GET's length, no body.
#[tokio::test]
async fn head_sends_the_length_of_the_file_and_none_of_it() {
    let (file, data) = file_of(100_000);
    let server = spawn_default(file_server(file.path().to_owned())).await;
    let raw = raw_exchange(
        server.addr,
        b"HEAD /all HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    let response = &parse_responses(&raw, &[true])[0];
    assert_eq!(
        response.header("content-length"),
        Some(data.len().to_string().as_str())
    );
    assert!(response.body.is_empty());
}

/// A client that stops reading and resets mid-file: the outcome is a 499
/// with what the client's TCP acknowledged, below what was written.
#[tokio::test]
async fn a_client_that_resets_mid_file_is_a_499_with_acked_below_written() {
    let (file, _) = file_of(32 << 20);
    let outcomes = Outcomes::default();
    let server = spawn(
        outcomes.builder().build().unwrap(),
        file_server(file.path().to_owned()),
    )
    .await;
    let stream = slow_reader(server.addr, 16 * 1024, &get("/all")).await;
    until_stalled(&server.metrics, &stream, 0).await;
    reset(stream);
    let outcome = &outcomes.wait_for(1).await[0];
    assert_eq!(outcome.status().as_u16(), 499, "{outcome:?}");
    let acked = outcome.counters.acked.expect("Linux reports acked bytes");
    assert!(acked < outcome.counters.written, "{outcome:?}");
}

/// A file that is shorter than the bytes asked for: the response is cut
/// short (the client sees the connection close before the length it was
/// promised), and the outcome says why: shorter than declared.
#[tokio::test]
async fn a_file_shorter_than_asked_cuts_the_response_short() {
    let (file, _) = file_of(10_000);
    let path = file.path().to_owned();
    let outcomes = Outcomes::default();
    let server = spawn(
        outcomes.builder().build().unwrap(),
        move |_request: Request, mut response: ResponseWriter| {
            let path = path.clone();
            async move {
                let file = std::fs::File::open(&path)?;
                response.insert_header(CONTENT_LENGTH, HeaderValue::from(20_000u64))?;
                response.send_file(&file, 0, 20_000).await
            }
        },
    )
    .await;
    let raw = raw_exchange(server.addr, &get("/")).await;
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(raw.len() - end, 10_000, "the bytes the file had");
    let outcome = &outcomes.wait_for(1).await[0];
    // No write failed: the body ended short of its length.
    assert_eq!(
        outcome.end,
        End::CutShort(Cutoff::ShorterThanDeclared),
        "{outcome:?}"
    );
    assert_eq!(outcome.cause(), Some("shorter_than_declared"));
}

/// On a keep-alive connection each file response arrives whole before the
/// next request is sent: the head, written with "more follows" for the
/// file behind it, is never left waiting for bytes that do not come, even
/// for a file of one byte.
#[tokio::test]
async fn keep_alive_file_responses_arrive_whole_one_at_a_time() {
    let (file, data) = file_of(6000);
    let (tiny, tiny_data) = file_of(1);
    let server = spawn_default(file_server(file.path().to_owned())).await;
    let tiny_server = spawn_default(file_server(tiny.path().to_owned())).await;
    let mut stream = connect(server.addr).await;
    let cases: [(&str, Vec<u8>); 4] = [
        ("/all", data.clone()),
        ("/range", data[1000..6000].to_vec()),
        ("/chunked", data.clone()),
        ("/all?prefix", [&b"prefix"[..], &data].concat()),
    ];
    for _round in 0..2 {
        for (target, expected) in &cases {
            send(&mut stream, &get(target)).await;
            let response = read_response(&mut stream, false).await;
            assert_eq!(response.status, 200, "{target}");
            assert!(response.body == *expected, "{target}: wrong bytes");
        }
    }
    let mut stream = connect(tiny_server.addr).await;
    for target in ["/all", "/chunked", "/all"] {
        send(&mut stream, &get(target)).await;
        let response = read_response(&mut stream, false).await;
        assert_eq!(response.status, 200, "{target}");
        assert_eq!(response.body, tiny_data, "{target}");
    }
}

/// A file that has no byte left at the offset asked for: the head (held
/// back for the file's bytes) still reaches the client, then the
/// connection closes with none of the promised body.
#[tokio::test]
async fn a_file_empty_at_the_offset_still_sends_the_head_then_closes() {
    let (file, _) = file_of(0);
    let path = file.path().to_owned();
    let server = spawn_default(move |_request: Request, mut response: ResponseWriter| {
        let path = path.clone();
        async move {
            let file = std::fs::File::open(&path)?;
            response.insert_header(CONTENT_LENGTH, HeaderValue::from(100u64))?;
            response.send_file(&file, 0, 100).await
        }
    })
    .await;
    let raw = raw_exchange(server.addr, &get("/")).await;
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text:?}");
    assert!(text.ends_with("\r\n\r\n"), "the head only: {text:?}");
    assert!(text.contains("content-length: 100\r\n"), "{text:?}");
}

fn get_closing(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").into_bytes()
}
