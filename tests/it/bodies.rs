//! Request bodies: `Content-Length` and chunked (extensions, trailers),
//! `Expect: 100-continue` answered only when the handler reads, an unread
//! body drained to keep the connection (or the connection closed past
//! `max_drain_bytes`), and reads that never miss or invent an end.

use std::time::Duration;

use hangup::http::{HeaderName, HeaderValue, StatusCode};
use hangup::{Config, Request, ResponseWriter};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

#[tokio::test]
async fn content_length_body_is_echoed() {
    let server = spawn_default(echo).await;
    let mut stream = connect(server.addr).await;
    let body = "x".repeat(3000);
    let request = format!(
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    send(&mut stream, request.as_bytes()).await;
    let response = read_response(&mut stream, false).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body, body.as_bytes());
}

#[tokio::test]
async fn chunked_body_with_extension_and_trailer_is_echoed_and_trailer_seen() {
    let server = spawn_default(|mut req: Request, mut res: ResponseWriter| async move {
        let body = req.body_mut().read_all(1 << 20).await?;
        let checksum = req
            .body_mut()
            .trailers()
            .and_then(|t| t.get("x-checksum"))
            .cloned()
            .unwrap_or(HeaderValue::from_static("none"));
        res.insert_header(HeaderName::from_static("x-seen-trailer"), checksum)?;
        res.write_all(&body).await
    })
    .await;
    let mut stream = connect(server.addr).await;
    send(
        &mut stream,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
          4;name=value\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Checksum: abc123\r\n\r\n",
    )
    .await;
    let response = read_response(&mut stream, false).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "Wikipedia in\r\n\r\nchunks.");
    assert_eq!(response.header("x-seen-trailer"), Some("abc123"));
    // The connection is in sync after the trailer section.
    send(&mut stream, &get("/")).await;
    assert_eq!(read_response(&mut stream, false).await.status, 200);
}

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

#[tokio::test]
async fn expect_continue_is_answered_when_the_handler_first_reads() {
    let (started, read) = (Signal::new(), Signal::new());
    let (handler_started, handler_may_read) = (started.clone(), read.clone());
    let server = spawn_default(move |req: Request, res: ResponseWriter| {
        let (started, may_read) = (handler_started.clone(), handler_may_read.clone());
        async move {
            started.fire();
            may_read.wait("the test's go-ahead").await;
            echo(req, res).await
        }
    })
    .await;
    let mut stream = connect(server.addr).await;
    send(
        &mut stream,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    )
    .await;
    started.wait("the handler started").await;
    assert!(
        stays_silent(&mut stream, Duration::from_millis(100)).await,
        "something arrived before the handler read the body"
    );
    read.fire();
    let interim = read_exact_bytes(&mut stream, CONTINUE.len()).await;
    assert_eq!(
        String::from_utf8_lossy(&interim),
        String::from_utf8_lossy(CONTINUE)
    );
    send(&mut stream, b"hello").await;
    let response = read_response(&mut stream, false).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"hello");
}

#[tokio::test]
async fn expect_continue_unread_body_sends_no_100_and_closes() {
    let server = spawn_default(|_req: Request, mut res: ResponseWriter| async move {
        res.set_status(StatusCode::FORBIDDEN)?;
        res.write_all(b"no thanks").await
    })
    .await;
    let mut stream = connect(server.addr).await;
    send(
        &mut stream,
        b"POST /up HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    )
    .await;
    // The client never sends the body; the server must not wait for it.
    let (bytes, end) = read_until_end_within(&mut stream, Duration::from_secs(2)).await;
    assert_clean_eof(&end, "expect without read");
    assert!(
        !bytes.starts_with(b"HTTP/1.1 100"),
        "a 100 Continue was sent: {:?}",
        String::from_utf8_lossy(&bytes)
    );
    let responses = parse_responses(&bytes, &[false]);
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].status, 403);
    assert_eq!(responses[0].body, b"no thanks");
}

#[tokio::test]
async fn unread_body_is_drained_and_the_connection_reused() {
    let server = spawn_default(path_handler).await;
    let mut stream = connect(server.addr).await;
    let mut request = b"POST /ignored HTTP/1.1\r\nHost: t\r\nContent-Length: 1024\r\n\r\n".to_vec();
    request.extend_from_slice(&[b'z'; 1024]);
    send(&mut stream, &request).await;
    let first = read_response(&mut stream, false).await;
    assert_eq!(first.body, b"/ignored");
    assert_eq!(first.header("connection"), None);
    send(&mut stream, &get("/next")).await;
    let second = read_response(&mut stream, false).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.body, b"/next");
}

#[tokio::test]
async fn body_over_max_drain_bytes_closes_after_a_complete_response() {
    let config = Config::builder().max_drain_bytes(1024).build().unwrap();
    let server = spawn(config, path_handler).await;
    let mut stream = connect(server.addr).await;
    let mut request = b"POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: 65536\r\n\r\n".to_vec();
    request.extend_from_slice(&vec![b'z'; 65536]);
    let (mut reader, mut writer) = stream.split();
    let ((), (bytes, end)) = tokio::join!(send(&mut writer, &request), read_until_end(&mut reader));
    assert_clean_eof(&end, "over max_drain_bytes");
    let responses = parse_responses(&bytes, &[false]);
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].status, 200);
    assert_eq!(responses[0].body, b"/big");
}

/// Regression: a short read once cleared tokio's readiness with a sample
/// taken after the `recv`. On a multi-thread runtime:
/// 1. the connection reads a complete head (a short read);
/// 2. the body arrives, and the reactor on another worker marks the socket
///    readable;
/// 3. the clear erased that mark;
/// 4. the handler waited for the body until `body_read_timeout`.
/// Many heads and bodies in separate writes make the window likely; every
/// request must be answered quickly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_arriving_right_after_its_head_is_never_missed() {
    let config = Config::builder()
        .body_read_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let server = spawn(
        config,
        |mut request: Request, mut response: ResponseWriter| async move {
            let body = request.body_mut().read_all(1 << 16).await?;
            response.write_all(&body).await
        },
    )
    .await;
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..8 {
        let addr = server.addr;
        clients.spawn(async move {
            let mut stream = connect(addr).await;
            stream.set_nodelay(true).unwrap();
            for i in 0..150 {
                let body = format!("{c}-{i}");
                let head = format!(
                    "POST /r HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                stream.write_all(head.as_bytes()).await.unwrap();
                tokio::task::yield_now().await;
                stream.write_all(body.as_bytes()).await.unwrap();
                let response =
                    tokio::time::timeout(Duration::from_secs(2), read_response(&mut stream, false))
                        .await
                        .unwrap_or_else(|_| panic!("request {c}-{i} stalled: a wake-up was lost"));
                assert_eq!(response.text(), body);
            }
        });
    }
    while let Some(result) = clients.join_next().await {
        result.unwrap();
    }
}

#[tokio::test]
async fn async_read_into_an_empty_buffer_consumes_nothing() {
    // Regression: a zero-length read took a chunk and reported 0 bytes,
    // which callers read as the end of the body.
    let server = spawn_default(
        |mut request: Request, mut response: ResponseWriter| async move {
            let body = request.body_mut();
            assert_eq!(body.read(&mut []).await?, 0);
            let mut all = Vec::new();
            body.read_to_end(&mut all).await?;
            response.write_all(&all).await
        },
    )
    .await;
    let raw = raw_exchange(
        server.addr,
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    )
    .await;
    assert_eq!(parse_responses(&raw, &[false])[0].text(), "hello");
}
