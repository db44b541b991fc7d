//! Connection lifecycle: keep-alive, pipelining, request bodies (echo,
//! chunked trailers, `Expect: 100-continue`, draining), lingering close,
//! handler failures, large writes, `date`, graceful shutdown.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use hangup::http::{HeaderName, HeaderValue, StatusCode, header};
use hangup::{Config, Error, Request, ResponseWriter};
use tokio::io::AsyncReadExt;
use tokio::sync::Notify;

use crate::support::*;

/// Writes the request path as the body.
async fn path_handler(req: Request, mut res: ResponseWriter) -> hangup::Result<()> {
    res.write_all(req.uri().path().as_bytes()).await
}

fn assert_clean_eof(end: &End, what: &str) {
    assert!(
        matches!(end, End::Eof),
        "{what}: connection ended with {end:?}, not a clean close"
    );
}

// ---------------------------------------------------------------- keep-alive

#[tokio::test]
async fn several_requests_are_served_on_one_keep_alive_connection() {
    let server = spawn_default(path_handler).await;
    let mut stream = connect(server.addr).await;
    for i in 0..5 {
        let path = format!("/r{i}");
        send(&mut stream, &get(&path)).await;
        let response = read_response(&mut stream, false).await;
        assert_eq!(response.status, 200);
        assert_eq!(response.body, path.as_bytes());
        assert_eq!(response.header("connection"), None, "request {i}");
    }
}

#[tokio::test]
async fn http10_closes_by_default() {
    let server = spawn_default(path_handler).await;
    let mut stream = connect(server.addr).await;
    send(&mut stream, b"GET /old HTTP/1.0\r\n\r\n").await;
    let (bytes, end) = read_until_end(&mut stream).await;
    assert_clean_eof(&end, "HTTP/1.0");
    let responses = parse_responses(&bytes, &[false]);
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].body, b"/old");
    assert_eq!(responses[0].header("connection"), Some("close"));
}

#[tokio::test]
async fn http10_with_keep_alive_stays_open() {
    let server = spawn_default(path_handler).await;
    let mut stream = connect(server.addr).await;
    for path in ["/one", "/two"] {
        let request = format!("GET {path} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        send(&mut stream, request.as_bytes()).await;
        let response = read_response(&mut stream, false).await;
        assert_eq!(response.body, path.as_bytes());
        assert_eq!(response.header("connection"), Some("keep-alive"));
        assert_eq!(
            response.header("content-length"),
            Some(path.len().to_string().as_str())
        );
    }
}

#[tokio::test]
async fn client_connection_close_closes_after_the_response() {
    let server = spawn_default(path_handler).await;
    let mut stream = connect(server.addr).await;
    send(
        &mut stream,
        b"GET /bye HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    let (bytes, end) = read_until_end(&mut stream).await;
    assert_clean_eof(&end, "Connection: close");
    let responses = parse_responses(&bytes, &[false]);
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].body, b"/bye");
    assert_eq!(responses[0].header("connection"), Some("close"));
}

#[tokio::test]
async fn handler_connection_close_closes_the_connection() {
    let server = spawn_default(|_req: Request, mut res: ResponseWriter| async move {
        res.insert_header(header::CONNECTION, HeaderValue::from_static("close"))?;
        res.write_all(b"done").await
    })
    .await;
    let mut stream = connect(server.addr).await;
    send(&mut stream, &get("/")).await;
    let (bytes, end) = read_until_end(&mut stream).await;
    assert_clean_eof(&end, "handler Connection: close");
    let responses = parse_responses(&bytes, &[false]);
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].body, b"done");
    assert_eq!(responses[0].header("connection"), Some("close"));
}

// ---------------------------------------------------------------- pipelining

/// Three requests in one write: three responses, in order, written together
/// (one server write arrives as one read on loopback).
#[tokio::test]
async fn pipelined_requests_are_answered_in_order_in_one_write() {
    let server = spawn_default(path_handler).await;
    let mut stream = connect(server.addr).await;
    let mut batch = get("/1");
    batch.extend_from_slice(&get("/2"));
    batch.extend_from_slice(&get("/3"));
    send(&mut stream, &batch).await;
    let mut buf = vec![0u8; 64 * 1024];
    let n = tokio::time::timeout(LIMIT, stream.read(&mut buf))
        .await
        .expect("no response in time")
        .expect("read");
    let first_read = &buf[..n];
    let responses = parse_responses(first_read, &[false; 3]);
    let bodies: Vec<&[u8]> = responses.iter().map(|r| r.body.as_slice()).collect();
    assert_eq!(
        bodies,
        [&b"/1"[..], b"/2", b"/3"],
        "the first read should hold all three responses in order: {:?}",
        String::from_utf8_lossy(first_read)
    );
    // Still open and in sync.
    send(&mut stream, &get("/4")).await;
    assert_eq!(read_response(&mut stream, false).await.body, b"/4");
}

/// A handler that returns while a task it spawned still holds the response
/// writer: the connection waits for the writer to come back, then finishes
/// the response, and serves the next request.
#[tokio::test]
async fn a_response_finished_by_a_spawned_task_after_the_handler_returned() {
    let server = spawn_default(|req: Request, mut res: ResponseWriter| async move {
        let path = req.path().to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = res.write_all(path.as_bytes()).await;
        });
        Ok(())
    })
    .await;
    let mut stream = connect(server.addr).await;
    for path in ["/late", "/later"] {
        send(&mut stream, &get(path)).await;
        let response = read_response(&mut stream, false).await;
        assert_eq!(
            (response.status, response.body.as_slice()),
            (200, path.as_bytes())
        );
    }
}

/// A request followed in the same write by the start of the next head:
/// the first response is held back only until the server finds that head
/// incomplete, so it arrives while the client still holds the rest. Then
/// the rest completes the second request; or, when the piece already
/// breaks the rules (a bare LF), the first response is followed by a 400.
#[tokio::test]
async fn a_response_is_not_held_behind_an_incomplete_pipelined_head() {
    let server = spawn_default(path_handler).await;
    let mut stream = connect(server.addr).await;
    let mut batch = get("/1");
    batch.extend_from_slice(b"GET /2 HTTP/1.1\r\nHo");
    send(&mut stream, &batch).await;
    assert_eq!(read_response(&mut stream, false).await.body, b"/1");
    send(&mut stream, b"st: t\r\n\r\n").await;
    assert_eq!(read_response(&mut stream, false).await.body, b"/2");

    let mut stream = connect(server.addr).await;
    let mut batch = get("/3");
    batch.extend_from_slice(b"GET /4 HTTP/1.1\nHo");
    send(&mut stream, &batch).await;
    let (bytes, end) = read_until_end(&mut stream).await;
    assert_clean_eof(&end, "after the 400");
    let responses = parse_responses(&bytes, &[false, false]);
    assert_eq!(
        (responses[0].body.as_slice(), responses[1].status),
        (&b"/3"[..], 400)
    );
    assert_eq!(responses[1].header("connection"), Some("close"));
}

// ---------------------------------------------------------------- bodies

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
    let server = spawn_default(|req: Request, res: ResponseWriter| async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        echo(req, res).await
    })
    .await;
    let mut stream = connect(server.addr).await;
    send(
        &mut stream,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    )
    .await;
    assert!(
        stays_silent(&mut stream, Duration::from_millis(100)).await,
        "something arrived before the handler read the body"
    );
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

/// A malformed request and 256 KiB of junk in one burst: the server's
/// lingering close must not reset the 400 away.
#[tokio::test]
async fn lingering_close_delivers_the_error_response_despite_junk() {
    let server = spawn_default(path_handler).await;
    let mut stream = connect(server.addr).await;
    let mut burst = b"GET / HTTP/1.1\r\nHost : t\r\n\r\n".to_vec();
    burst.extend_from_slice(&vec![b'j'; 256 * 1024]);
    let (mut reader, mut writer) = stream.split();
    let (_, (bytes, end)) = tokio::join!(
        async {
            // The server may stop reading: a failed write is not the point.
            let _ = tokio::time::timeout(
                LIMIT,
                tokio::io::AsyncWriteExt::write_all(&mut writer, &burst),
            )
            .await;
        },
        read_until_end(&mut reader)
    );
    let text = String::from_utf8_lossy(&bytes);
    let (response, used) =
        parse_one(&bytes, false).unwrap_or_else(|| panic!("incomplete 400 ({end:?}): {text:?}"));
    assert_eq!(response.status, 400, "{text:?}");
    assert_eq!(response.header("connection"), Some("close"));
    assert_eq!(used, bytes.len(), "{text:?}");
    assert_clean_eof(&end, "lingering close");
}

// ---------------------------------------------------------------- handler failures

#[tokio::test]
async fn handler_error_before_commit_gets_500_and_close() {
    let server = spawn_default(|_req: Request, mut res: ResponseWriter| async move {
        res.write_all(b"partial, never sent").await?;
        Err(Error::Io(std::io::Error::other("database unreachable")))
    })
    .await;
    let mut stream = connect(server.addr).await;
    send(&mut stream, &get("/")).await;
    let (bytes, end) = read_until_end(&mut stream).await;
    assert_clean_eof(&end, "handler error");
    let responses = parse_responses(&bytes, &[false]);
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].status, 500);
    assert_eq!(responses[0].header("connection"), Some("close"));
    assert!(responses[0].header("content-length").is_some());
    assert!(
        !responses[0].text().contains("database") && !responses[0].text().contains("partial"),
        "internal details or discarded body leaked: {:?}",
        responses[0].text()
    );
}

#[tokio::test]
async fn handler_error_on_a_head_request_sends_the_error_head_without_its_body() {
    let server = spawn_default(|_req: Request, _res: ResponseWriter| async move {
        Err(Error::Io(std::io::Error::other("database unreachable")))
    })
    .await;
    let get_bytes = raw_exchange(server.addr, &get("/")).await;
    let for_get = parse_responses(&get_bytes, &[false]);
    assert_eq!(for_get[0].status, 500);
    assert!(!for_get[0].body.is_empty());

    let mut stream = connect(server.addr).await;
    send(&mut stream, b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n").await;
    let (bytes, end) = read_until_end(&mut stream).await;
    assert_clean_eof(&end, "handler error on HEAD");
    assert!(
        bytes.ends_with(b"\r\n\r\n"),
        "bytes after the HEAD response's head: {:?}",
        String::from_utf8_lossy(&bytes)
    );
    let responses = parse_responses(&bytes, &[true]);
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].status, 500);
    let get_length = for_get[0].body.len().to_string();
    assert_eq!(
        responses[0].header("content-length"),
        Some(get_length.as_str()),
        "HEAD reports the length the GET's error body has"
    );
}

#[tokio::test]
async fn handler_panic_gets_500_and_the_server_keeps_serving() {
    let server = spawn_default(|req: Request, mut res: ResponseWriter| async move {
        if req.uri().path() == "/panic" {
            panic!("handler panicked on purpose");
        }
        res.write_all(b"alive").await
    })
    .await;
    let mut stream = connect(server.addr).await;
    send(&mut stream, &get("/panic")).await;
    let (bytes, end) = read_until_end(&mut stream).await;
    assert_clean_eof(&end, "handler panic");
    let responses = parse_responses(&bytes, &[false]);
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].status, 500);
    assert_eq!(responses[0].header("connection"), Some("close"));

    for _ in 0..2 {
        let mut stream = connect(server.addr).await;
        send(&mut stream, &get("/")).await;
        let response = read_response(&mut stream, false).await;
        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"alive");
    }
}

#[tokio::test]
async fn changing_status_or_headers_after_commit_is_head_committed() {
    let server = spawn_default(|_req: Request, mut res: ResponseWriter| async move {
        res.write_all(b"a;").await?;
        res.flush().await?;
        let status = match res.set_status(StatusCode::NOT_FOUND) {
            Err(Error::HeadCommitted) => "HeadCommitted".to_owned(),
            other => format!("{other:?}"),
        };
        let header = match res.insert_header(
            HeaderName::from_static("x-late"),
            HeaderValue::from_static("1"),
        ) {
            Err(Error::HeadCommitted) => "HeadCommitted".to_owned(),
            other => format!("{other:?}"),
        };
        let status_now = res.status().as_u16();
        res.write_all(format!("status={status};header={header};now={status_now}").as_bytes())
            .await
    })
    .await;
    let mut stream = connect(server.addr).await;
    send(&mut stream, &get("/")).await;
    let response = read_response(&mut stream, false).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-late"), None);
    assert!(response.complete);
    assert_eq!(
        response.text(),
        "a;status=HeadCommitted;header=HeadCommitted;now=200"
    );
}

// ---------------------------------------------------------------- large writes, date

#[tokio::test]
async fn a_single_one_mib_write_arrives_intact() {
    let body: Arc<Vec<u8>> = Arc::new((0..1 << 20).map(|i: u32| (i % 251) as u8).collect());
    let sent = body.clone();
    let server = spawn_default(move |_req: Request, mut res: ResponseWriter| {
        let body = sent.clone();
        async move { res.write_all(&body).await }
    })
    .await;
    let mut stream = connect(server.addr).await;
    send(&mut stream, &get("/big")).await;
    let response = read_response(&mut stream, false).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("transfer-encoding"), Some("chunked"));
    assert!(response.complete, "no last chunk");
    assert_eq!(response.body.len(), body.len());
    assert!(response.body == *body, "body bytes differ");
}

#[tokio::test]
async fn date_header_is_present_and_parseable() {
    let server = spawn_default(path_handler).await;
    let mut stream = connect(server.addr).await;
    send(&mut stream, &get("/")).await;
    let response = read_response(&mut stream, false).await;
    let date = response.header("date").expect("no date header");
    assert!(date.ends_with(" GMT") && date.len() == 29, "{date:?}");
    let parsed = httpdate::parse_http_date(date).expect("unparseable date");
    let now = SystemTime::now();
    let skew = now.duration_since(parsed).unwrap_or_else(|e| e.duration());
    assert!(skew < Duration::from_secs(5), "date {date} is {skew:?} off");
}

// ---------------------------------------------------------------- shutdown

#[tokio::test]
async fn shutdown_closes_an_idle_keep_alive_connection_at_once() {
    let mut server = spawn_default(path_handler).await;
    let mut stream = connect(server.addr).await;
    send(&mut stream, &get("/")).await;
    assert_eq!(read_response(&mut stream, false).await.status, 200);

    let started = Instant::now();
    server.shutdown.shutdown(Duration::from_secs(5));
    let (bytes, _end) = read_until_end_within(&mut stream, Duration::from_secs(1)).await;
    assert!(bytes.is_empty(), "{:?}", String::from_utf8_lossy(&bytes));
    let task = server.task.take().unwrap();
    tokio::time::timeout(Duration::from_secs(1), task)
        .await
        .expect("run did not return promptly with only idle connections")
        .unwrap()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
}

/// A server whose handler, once started, waits `delay` and then writes
/// `body`; returned with a connection whose request is in that handler.
async fn in_flight(delay: Duration, body: &'static [u8]) -> (TestServer, tokio::net::TcpStream) {
    let started_handling = Arc::new(Notify::new());
    let notify = started_handling.clone();
    let server = spawn_default(move |_req: Request, mut res: ResponseWriter| {
        let notify = notify.clone();
        async move {
            notify.notify_one();
            tokio::time::sleep(delay).await;
            res.write_all(body).await
        }
    })
    .await;
    let mut stream = connect(server.addr).await;
    send(&mut stream, &get("/in-flight")).await;
    tokio::time::timeout(LIMIT, started_handling.notified())
        .await
        .expect("handler did not start");
    (server, stream)
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish() {
    let (mut server, mut stream) = in_flight(Duration::from_millis(300), b"finished").await;
    server.shutdown.shutdown(Duration::from_secs(5));
    let task = server.task.take().unwrap();

    let (bytes, end) = read_until_end(&mut stream).await;
    assert_clean_eof(&end, "in-flight at shutdown");
    let responses = parse_responses(&bytes, &[false]);
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].status, 200);
    assert_eq!(responses[0].body, b"finished");
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("run did not return after the last request finished")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn shutdown_cuts_off_a_handler_when_the_grace_runs_out() {
    let (mut server, mut stream) = in_flight(Duration::from_secs(10), b"too late").await;
    let started = Instant::now();
    server.shutdown.shutdown(Duration::from_millis(200));
    let task = server.task.take().unwrap();
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("run did not return within 2 s of a 200 ms grace")
        .unwrap()
        .unwrap();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(150),
        "run returned after {elapsed:?}, before the grace ran out"
    );
    let (bytes, _end) = read_until_end_within(&mut stream, Duration::from_secs(1)).await;
    assert!(
        !bytes.windows(8).any(|w| w == b"too late"),
        "{:?}",
        String::from_utf8_lossy(&bytes)
    );
}

#[tokio::test]
async fn held_back_pipelined_responses_are_bounded_by_the_buffer() {
    // 1. A client pipelines 40 requests in one write.
    // 2. Each finished response is held back while the next request waits,
    //    but only up to `write_buffer_bytes` (1 KiB here) of them.
    // 3. Request 30's handler blocks until the client has received a
    //    response: with unbounded holding, nothing would ever arrive.
    use tokio::io::AsyncReadExt;
    let (tx, rx) = tokio::sync::watch::channel(false);
    let config = hangup::Config::builder()
        .write_buffer_bytes(1024)
        .build()
        .unwrap();
    let server = spawn(
        config,
        move |request: hangup::Request, mut response: hangup::ResponseWriter| {
            let mut rx = rx.clone();
            async move {
                if request.uri().path() == "/30" {
                    let _ = rx.wait_for(|received| *received).await;
                }
                response.write_all(request.uri().path().as_bytes()).await
            }
        },
    )
    .await;
    let mut stream = connect(server.addr).await;
    let mut batch = Vec::new();
    for i in 0..40 {
        batch.extend_from_slice(&get(&format!("/{i}")));
    }
    tokio::io::AsyncWriteExt::write_all(&mut stream, &batch)
        .await
        .unwrap();
    let mut first = vec![0u8; 64 * 1024];
    let n = tokio::time::timeout(LIMIT, stream.read(&mut first))
        .await
        .expect("early responses arrive while a later handler still runs")
        .unwrap();
    assert!(n > 0);
    tx.send(true).unwrap();
    let mut all = first[..n].to_vec();
    while parse_responses_prefix(&all) < 40 {
        let n = tokio::time::timeout(LIMIT, stream.read(&mut first))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed early");
        all.extend_from_slice(&first[..n]);
    }
    let bodies: Vec<String> = parse_responses(&all, &[])
        .iter()
        .map(|r| r.text())
        .collect();
    let expected: Vec<String> = (0..40).map(|i| format!("/{i}")).collect();
    assert_eq!(bodies, expected);
}

/// How many complete responses `bytes` starts with.
fn parse_responses_prefix(mut bytes: &[u8]) -> usize {
    let mut count = 0;
    while let Some((response, used)) = parse_one(bytes, false) {
        if response.header("content-length").is_none() {
            break;
        }
        count += 1;
        bytes = &bytes[used..];
    }
    count
}

#[tokio::test]
async fn a_connection_that_released_its_buffers_serves_the_next_requests() {
    use std::time::Duration;
    for release_after in [Duration::ZERO, Duration::from_millis(50)] {
        let config = hangup::Config::builder()
            .idle_release_after(release_after)
            .build()
            .unwrap();
        let server = spawn(
            config,
            |mut request: hangup::Request, mut response: hangup::ResponseWriter| async move {
                let body = request.body_mut().read_all(1 << 20).await?;
                response.write_all(request.uri().path().as_bytes()).await?;
                response.write_all(&body).await
            },
        )
        .await;
        let mut stream = connect(server.addr).await;
        for round in 0..3 {
            // Idle past the release, then a pipelined pair with a body.
            tokio::time::sleep(Duration::from_millis(120)).await;
            let mut two =
                format!("POST /a{round} HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nxyz")
                    .into_bytes();
            two.extend_from_slice(&get(&format!("/b{round}")));
            tokio::io::AsyncWriteExt::write_all(&mut stream, &two)
                .await
                .unwrap();
            let mut bytes = Vec::new();
            let mut buf = [0u8; 4096];
            while parse_responses_prefix(&bytes) < 2 {
                let n = tokio::time::timeout(
                    LIMIT,
                    tokio::io::AsyncReadExt::read(&mut stream, &mut buf),
                )
                .await
                .expect("responses in time")
                .unwrap();
                assert!(n > 0, "closed early");
                bytes.extend_from_slice(&buf[..n]);
            }
            let bodies: Vec<String> = parse_responses(&bytes, &[])
                .iter()
                .map(|r| r.text())
                .collect();
            assert_eq!(
                bodies,
                [format!("/a{round}xyz"), format!("/b{round}")],
                "{release_after:?}"
            );
        }
    }
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
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    let config = hangup::Config::builder()
        .body_read_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let server = spawn(
        config,
        |mut request: hangup::Request, mut response: hangup::ResponseWriter| async move {
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
    use tokio::io::AsyncReadExt;
    let server = spawn_default(
        |mut request: hangup::Request, mut response: hangup::ResponseWriter| async move {
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

/// The connection reuses a finished request's head for the next one: the
/// next handler sees its own fields only, and no extension left behind.
#[tokio::test]
async fn a_request_sees_nothing_of_the_previous_request_s_head() {
    #[derive(Clone)]
    struct Marker;
    let server = spawn_default(|mut req: Request, mut res: ResponseWriter| async move {
        let leftover = req.extensions_mut().get::<Marker>().is_some();
        req.extensions_mut().insert(Marker);
        let mut names: Vec<&str> = req.headers().keys().map(|name| name.as_str()).collect();
        names.sort_unstable();
        let text = format!(
            "{} {} {} leftover={leftover}",
            req.method(),
            req.uri(),
            names.join(",")
        );
        res.write_all(text.as_bytes()).await
    })
    .await;
    let mut stream = connect(server.addr).await;
    let mut many = String::from("PUT /first?q=1 HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n");
    for i in 0..40 {
        many.push_str(&format!("X-Field-{i}: {i}\r\n"));
    }
    many.push_str("\r\n");
    let requests: [&[u8]; 4] = [
        b"GET /a HTTP/1.1\r\nHost: t\r\nX-One: 1\r\nX-Two: 2\r\n\r\n",
        b"DELETE /b HTTP/1.1\r\nHost: t\r\n\r\n",
        many.as_bytes(),
        b"GET /c HTTP/1.1\r\nHost: t\r\nX-Three: 3\r\n\r\n",
    ];
    let mut texts = Vec::new();
    for request in requests {
        send(&mut stream, request).await;
        texts.push(read_response(&mut stream, false).await.text());
    }
    assert_eq!(texts[0], "GET /a host,x-one,x-two leftover=false");
    assert_eq!(texts[1], "DELETE /b host leftover=false");
    assert!(
        texts[2].starts_with("PUT /first?q=1 content-length,host,x-field-0,")
            && texts[2].ends_with(" leftover=false"),
        "{}",
        texts[2]
    );
    assert_eq!(texts[3], "GET /c host,x-three leftover=false");
}

/// The target and the fields are only located while parsing, and built
/// into `http` types while parsing or on first access depending on what
/// the connection's handlers asked for before. On one connection, through
/// both modes and the switches between them, in every target form, a
/// handler sees what its own client sent.
#[tokio::test]
async fn path_uri_and_fields_read_lazily_are_the_ones_sent() {
    // The path says what the handler reads (reading the path is not
    // reading the `Uri`).
    let server = spawn_default(|req: Request, mut res: ResponseWriter| async move {
        let path = req.path().to_owned();
        let text = if path.starts_with("/path") {
            path
        } else if path.starts_with("/uri") {
            format!("{} {:?}", req.uri(), req.uri().query())
        } else if path.starts_with("/fields") {
            let values: Vec<_> = req.headers().get_all("x-a").iter().collect();
            format!("{values:?}")
        } else if path.starts_with("/parts") || path == "*" {
            let (parts, _body) = req.into_parts();
            format!("{path} {} {}", parts.uri, parts.headers.len())
        } else {
            format!(
                "{path} {} {:?} {}",
                req.uri(),
                req.uri().query(),
                req.headers().get_all("x-a").iter().count()
            )
        };
        res.write_all(text.as_bytes()).await
    })
    .await;
    let mut stream = connect(server.addr).await;
    let mut cases: Vec<(String, String)> = vec![
        // Nothing asked before on this connection: both built on access.
        (
            "GET /all/a?c=d&e HTTP/1.1\r\nHost: t\r\nX-A: 1\r\nx-a: 2\r\n".into(),
            r#"/all/a /all/a?c=d&e Some("c=d&e") 2"#.into(),
        ),
        // Asked before: both built while parsing.
        (
            "GET /path/p%20q?x?y HTTP/1.1\r\nHost: t\r\n".into(),
            "/path/p%20q".into(),
        ),
        (
            "GET /fields/f HTTP/1.1\r\nHost: t\r\nX-A: 3\r\nX-A: 4\r\n".into(),
            r#"["3", "4"]"#.into(),
        ),
        (
            "GET /uri/u?k=v HTTP/1.1\r\nHost: t\r\n".into(),
            r#"/uri/u?k=v Some("k=v")"#.into(),
        ),
    ];
    // Enough requests that ask for neither for the connection to go back
    // to building on access.
    for i in 0..12 {
        cases.push((
            format!("GET /path/{i}?q={i} HTTP/1.1\r\nHost: t\r\nX-A: {i}\r\n"),
            format!("/path/{i}"),
        ));
    }
    cases.extend([
        (
            "GET /fields/g HTTP/1.1\r\nHost: t\r\nX-A: 5\r\n".into(),
            r#"["5"]"#.into(),
        ),
        (
            "GET /uri/v?w HTTP/1.1\r\nHost: t\r\n".into(),
            r#"/uri/v?w Some("w")"#.into(),
        ),
        (
            "GET http://t/all/abs?q HTTP/1.1\r\nHost: t\r\n".into(),
            r#"/all/abs http://t/all/abs?q Some("q") 0"#.into(),
        ),
        (
            "GET /all/caf\u{e9}?q HTTP/1.1\r\nHost: t\r\nX-A: 6\r\n".into(),
            "/all/caf\u{e9} /all/caf\u{e9}?q Some(\"q\") 1".into(),
        ),
        (
            "OPTIONS * HTTP/1.1\r\nHost: t\r\nX-B: 1\r\n".into(),
            "* * 2".into(),
        ),
        (
            "GET /parts/s?t HTTP/1.1\r\nHost: t\r\nX-A: 7\r\n".into(),
            "/parts/s /parts/s?t 2".into(),
        ),
    ]);
    for (head, expected) in &cases {
        send(&mut stream, format!("{head}\r\n").as_bytes()).await;
        let response = read_response(&mut stream, false).await;
        assert_eq!(
            (response.status, response.text().as_str()),
            (200, expected.as_str()),
            "{head:?}"
        );
    }
    // A target `http` refuses is answered with 400 and the connection
    // closes.
    send(&mut stream, b"GET /a<b HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(read_response(&mut stream, false).await.status, 400);
    assert!(closes_within(&mut stream, Duration::from_secs(5)).await);
}

// ---------------------------------------------------------------- parking

/// Polls the server's metrics until `done` holds, for at most 3 s.
async fn metrics_reach(
    metrics: &hangup::Metrics,
    done: impl Fn(&hangup::MetricsSnapshot) -> bool,
) -> bool {
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if done(&metrics.snapshot()) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    false
}

/// A connection that served one `GET /` and then parked.
async fn parked_connection(server: &TestServer) -> tokio::net::TcpStream {
    let mut stream = connect(server.addr).await;
    send(&mut stream, &get("/")).await;
    assert_eq!(read_response(&mut stream, false).await.status, 200);
    assert!(
        metrics_reach(&server.metrics, |m| m.parked_connections == 1).await,
        "the idle connection did not park: {:?}",
        server.metrics.snapshot()
    );
    stream
}

fn parking_after(release: Duration) -> Config {
    Config::builder()
        .idle_release_after(release)
        .build()
        .unwrap()
}

/// Past `idle_release_after` an idle connection parks (its task ends, its
/// socket waits in the server's parking lot); the next request on it is
/// served as usual, with its outcome and byte counters.
#[tokio::test]
async fn an_idle_connection_parks_and_serves_its_next_request() {
    let outcomes = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = outcomes.clone();
    let config = Config::builder()
        .idle_release_after(Duration::from_millis(30))
        .on_outcome(move |outcome| seen.lock().unwrap().push(outcome.clone()))
        .build()
        .unwrap();
    let server = spawn(config, path_handler).await;
    let mut stream = connect(server.addr).await;
    send(&mut stream, &get("/first")).await;
    assert_eq!(read_response(&mut stream, false).await.text(), "/first");
    assert!(
        metrics_reach(&server.metrics, |m| m.parked_connections == 1).await,
        "the idle connection did not park: {:?}",
        server.metrics.snapshot()
    );
    assert_eq!(server.metrics.snapshot().open_connections, 1);

    send(&mut stream, &get("/second")).await;
    let response = read_response(&mut stream, false).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "/second");
    assert!(
        metrics_reach(&server.metrics, |m| m.outcomes == 2).await,
        "{:?}",
        server.metrics.snapshot()
    );
    let outcomes = outcomes.lock().unwrap().clone();
    let second = &outcomes[1];
    assert_eq!(second.uri, "/second");
    assert!(second.is_complete(), "{second:?}");
    assert!(second.counters.written > 0, "{second:?}");
    assert_eq!(
        second.counters.acked,
        Some(second.counters.written),
        "{second:?}"
    );
    assert_eq!(server.metrics.snapshot().open_connections, 1);
}

#[tokio::test]
async fn shutdown_closes_a_parked_connection_at_once() {
    let mut server = spawn(parking_after(Duration::from_millis(20)), path_handler).await;
    let mut stream = parked_connection(&server).await;

    server.shutdown.shutdown(Duration::from_secs(5));
    let (bytes, end) = read_until_end_within(&mut stream, Duration::from_secs(1)).await;
    assert!(bytes.is_empty(), "{:?}", String::from_utf8_lossy(&bytes));
    assert_clean_eof(&end, "parked at shutdown");
    let task = server.task.take().unwrap();
    tokio::time::timeout(Duration::from_secs(1), task)
        .await
        .expect("run did not return promptly with only a parked connection")
        .unwrap()
        .unwrap();
    let after = server.metrics.snapshot();
    assert_eq!((after.open_connections, after.parked_connections), (0, 0));
}

#[tokio::test]
async fn a_parked_connection_is_closed_after_idle_timeout() {
    let config = Config::builder()
        .idle_release_after(Duration::from_millis(20))
        .idle_timeout(Duration::from_millis(400))
        .build()
        .unwrap();
    let server = spawn(config, path_handler).await;
    let mut stream = connect(server.addr).await;
    send(&mut stream, &get("/")).await;
    assert_eq!(read_response(&mut stream, false).await.status, 200);
    let idle_since = Instant::now();
    assert!(metrics_reach(&server.metrics, |m| m.parked_connections == 1).await);
    assert!(
        closes_within(&mut stream, Duration::from_secs(3)).await,
        "a parked connection outlived idle_timeout"
    );
    let waited = idle_since.elapsed();
    assert!(
        waited >= Duration::from_millis(350),
        "closed after {waited:?}: the idle timeout restarted or shrank when it parked"
    );
    assert!(
        metrics_reach(&server.metrics, |m| m.open_connections == 0
            && m.parked_connections == 0)
        .await
    );
}

/// A client that leaves while its connection is parked, by closing it
/// (`reset` false) or resetting it, frees it at once: the parking lot sees
/// the close as it would see a request.
async fn assert_leaving_a_parked_connection_frees_it(reset: bool) {
    let server = spawn(parking_after(Duration::from_millis(20)), path_handler).await;
    let stream = parked_connection(&server).await;
    if reset {
        socket2::SockRef::from(&stream)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
    }
    drop(stream);
    assert!(
        metrics_reach(&server.metrics, |m| m.open_connections == 0
            && m.parked_connections == 0)
        .await,
        "reset {reset}: {:?}",
        server.metrics.snapshot()
    );
}

#[tokio::test]
async fn a_client_closing_a_parked_connection_frees_it() {
    assert_leaving_a_parked_connection_frees_it(false).await;
}

#[tokio::test]
async fn a_client_resetting_a_parked_connection_frees_it() {
    assert_leaving_a_parked_connection_frees_it(true).await;
}

/// With `idle_release_after` zero a connection parks at every wait, and
/// keeps serving: pipelined and sequential requests alike.
#[tokio::test]
async fn parking_at_every_wait_still_serves_every_request() {
    let server = spawn(parking_after(Duration::ZERO), path_handler).await;
    let mut stream = connect(server.addr).await;
    for i in 0..20 {
        let path = format!("/{i}");
        send(&mut stream, &get(&path)).await;
        assert_eq!(read_response(&mut stream, false).await.text(), path);
    }
    let mut batch = Vec::new();
    for i in 0..4 {
        batch.extend_from_slice(&get(&format!("/p{i}")));
    }
    batch.extend_from_slice(b"GET /p4 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    send(&mut stream, &batch).await;
    let raw = read_to_close(&mut stream).await;
    let texts: Vec<String> = parse_responses(&raw, &[false; 5])
        .iter()
        .map(|response| response.text())
        .collect();
    assert_eq!(texts, ["/p0", "/p1", "/p2", "/p3", "/p4"]);
    assert_eq!(server.metrics.snapshot().requests, 25);
}

async fn slow_path_handler(req: Request, mut res: ResponseWriter) -> hangup::Result<()> {
    if req.uri().path() == "/slow" {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    res.write_all(req.uri().path().as_bytes()).await
}

/// A request that arrives while the previous handler runs is seen by the
/// socket watch, not read: the connection must not park on top of it
/// and wait for the idle timeout.
#[tokio::test]
async fn a_request_sent_during_the_previous_handler_is_served_with_parking_at_every_wait() {
    let config = Config::builder()
        .idle_release_after(Duration::ZERO)
        .idle_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let server = spawn(config, slow_path_handler).await;
    let mut stream = connect(server.addr).await;
    send(&mut stream, &get("/slow")).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    send(
        &mut stream,
        b"GET /next HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    let raw = tokio::time::timeout(Duration::from_secs(5), read_to_close(&mut stream))
        .await
        .expect("the second request waited for the idle timeout");
    let texts: Vec<String> = parse_responses(&raw, &[false; 2])
        .iter()
        .map(|response| response.text())
        .collect();
    assert_eq!(texts, ["/slow", "/next"]);
}

/// A resumed connection is no longer counted as parked while it serves.
#[tokio::test]
async fn a_resumed_connection_is_not_counted_as_parked() {
    let server = spawn(parking_after(Duration::from_millis(20)), slow_path_handler).await;
    let mut stream = parked_connection(&server).await;
    send(&mut stream, &get("/slow")).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let during = server.metrics.snapshot();
    assert_eq!(
        (during.open_connections, during.parked_connections),
        (1, 0),
        "while the resumed connection runs its handler"
    );
    assert_eq!(read_response(&mut stream, false).await.text(), "/slow");
}

/// Parked connections hold no task of their own (one attendant watches
/// them all), wake one by one as their clients send, and park again.
#[tokio::test]
async fn parked_connections_hold_no_task_and_serve_again() {
    const CONNECTIONS: usize = 40;
    let server = spawn(parking_after(Duration::from_millis(20)), path_handler).await;
    let tasks_before = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    let mut streams = Vec::new();
    for i in 0..CONNECTIONS {
        let mut stream = connect(server.addr).await;
        send(&mut stream, &get(&format!("/{i}"))).await;
        assert_eq!(read_response(&mut stream, false).await.status, 200);
        streams.push(stream);
    }
    let all_parked = |m: &hangup::MetricsSnapshot| m.parked_connections == CONNECTIONS as u64;
    assert!(
        metrics_reach(&server.metrics, all_parked).await,
        "{:?}",
        server.metrics.snapshot()
    );
    let tasks_parked = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    assert!(
        tasks_parked <= tasks_before + 1,
        "{tasks_parked} tasks with {CONNECTIONS} connections parked ({tasks_before} before any)"
    );
    // Every other one wakes, is served, and parks again.
    for (i, stream) in streams.iter_mut().enumerate().step_by(2) {
        let path = format!("/again/{i}");
        send(stream, &get(&path)).await;
        assert_eq!(read_response(stream, false).await.text(), path);
    }
    assert!(
        metrics_reach(&server.metrics, all_parked).await,
        "{:?}",
        server.metrics.snapshot()
    );
    assert_eq!(
        server.metrics.snapshot().requests,
        CONNECTIONS as u64 * 3 / 2
    );
}

/// Each parked connection closes at its own idle deadline, counted from
/// its own idle start, whatever else is parked.
#[tokio::test]
async fn parked_connections_close_at_their_own_idle_deadlines() {
    const IDLE: Duration = Duration::from_millis(600);
    let config = Config::builder()
        .idle_release_after(Duration::from_millis(20))
        .idle_timeout(IDLE)
        .build()
        .unwrap();
    let server = spawn(config, path_handler).await;
    let mut first = connect(server.addr).await;
    send(&mut first, &get("/")).await;
    assert_eq!(read_response(&mut first, false).await.status, 200);
    let first_idle = Instant::now();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut second = connect(server.addr).await;
    send(&mut second, &get("/")).await;
    assert_eq!(read_response(&mut second, false).await.status, 200);
    let second_idle = Instant::now();
    assert!(metrics_reach(&server.metrics, |m| m.parked_connections == 2).await);

    assert!(closes_within(&mut first, Duration::from_secs(5)).await);
    let first_waited = first_idle.elapsed();
    assert!(
        first_waited >= IDLE - Duration::from_millis(50),
        "the first closed after {first_waited:?} idle"
    );
    // The second must outlive the first's deadline: check as long as its
    // own is still ahead (a loaded machine may have closed the first late).
    let second_left = IDLE.saturating_sub(second_idle.elapsed());
    if second_left > Duration::from_millis(100) {
        assert!(
            !closes_within(&mut second, second_left - Duration::from_millis(50)).await,
            "the second closed with the first, {:?} into its idle",
            second_idle.elapsed()
        );
    }
    assert!(closes_within(&mut second, Duration::from_secs(5)).await);
    let second_waited = second_idle.elapsed();
    assert!(
        second_waited >= IDLE - Duration::from_millis(50),
        "the second closed after {second_waited:?} idle"
    );
}

/// Connections that park at every wait, on several workers, with clients
/// pausing at random: every request is answered at once (a lost wake-up
/// would leave one waiting for the idle timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parking_and_resuming_under_churn_loses_no_request() {
    let server = spawn(parking_after(Duration::ZERO), path_handler).await;
    let mut clients = Vec::new();
    for client in 0..32u64 {
        let addr = server.addr;
        clients.push(tokio::spawn(async move {
            let mut stream = connect(addr).await;
            for i in 0..100u64 {
                let path = format!("/{client}/{i}");
                send(&mut stream, &get(&path)).await;
                let response =
                    tokio::time::timeout(Duration::from_secs(5), read_response(&mut stream, false))
                        .await
                        .unwrap_or_else(|_| panic!("{path}: no response in 5 s"));
                assert_eq!(response.text(), path);
                if (client + i) % 3 == 0 {
                    let pause = (client * 37 + i * 11) % 1500;
                    tokio::time::sleep(Duration::from_micros(pause)).await;
                }
            }
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
    assert_eq!(server.metrics.snapshot().requests, 3200);
    server.stop(Duration::from_secs(1)).await;
}

/// Connections parking just as the server starts draining all close at
/// once, and `run` returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connections_parking_as_the_drain_starts_all_close() {
    for round in 0..10u64 {
        let server = spawn(parking_after(Duration::from_millis(10)), path_handler).await;
        let metrics = server.metrics.clone();
        let mut streams = Vec::new();
        for i in 0..24 {
            let mut stream = connect(server.addr).await;
            send(&mut stream, &get(&format!("/{i}"))).await;
            assert_eq!(read_response(&mut stream, false).await.status, 200);
            streams.push(stream);
        }
        // Around the release timer: some have parked, some are parking.
        tokio::time::sleep(Duration::from_micros(8_000 + round * 400)).await;
        server.stop(Duration::from_secs(5)).await;
        for stream in &mut streams {
            assert!(
                closes_within(stream, Duration::from_secs(1)).await,
                "round {round}: a connection was left open"
            );
        }
        let after = metrics.snapshot();
        assert_eq!(
            (after.open_connections, after.parked_connections),
            (0, 0),
            "round {round}"
        );
    }
}

/// `Outcome::duration` counts from the socket read that completed the
/// request's head: a pipelined request that waited behind a slow one
/// counts its wait.
#[tokio::test]
async fn a_pipelined_request_s_duration_includes_its_wait_behind_earlier_ones() {
    let outcomes = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = outcomes.clone();
    let config = Config::builder()
        .on_outcome(move |outcome| seen.lock().unwrap().push(outcome.clone()))
        .build()
        .unwrap();
    let server = spawn(config, slow_path_handler).await;
    let mut stream = connect(server.addr).await;
    let mut batch = get("/slow");
    batch.extend_from_slice(b"GET /next HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    send(&mut stream, &batch).await;
    let raw = read_to_close(&mut stream).await;
    assert_eq!(parse_responses(&raw, &[false; 2]).len(), 2);
    assert!(metrics_reach(&server.metrics, |m| m.outcomes == 2).await);
    let outcomes = outcomes.lock().unwrap().clone();
    assert_eq!(outcomes[1].uri, "/next");
    for outcome in &outcomes {
        assert!(
            outcome.duration >= Duration::from_millis(290),
            "{} took {:?}; the slow handler alone sleeps 300 ms",
            outcome.uri,
            outcome.duration
        );
    }
}

/// A request, its body (`into_body`) or its parts (`into_parts`) moved to a
/// task that outlives the handler: the connection waits for the body to
/// come back before parsing the next (pipelined) head, every kept piece still
/// answers (head, body, addresses, hang-up state), and the request after them
/// sees only its own head, not a recycled one's fields.
#[tokio::test]
async fn a_request_kept_or_split_past_its_handler_still_works() {
    let server = spawn_default(|req: Request, mut res: ResponseWriter| async move {
        let path = req.path().to_owned();
        let x = |h: &hangup::http::HeaderMap| format!("{:?}", h.get("x-n"));
        match path.as_str() {
            "/kept" => {
                tokio::spawn(async move {
                    let mut req = req;
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    let body = req.body_mut().read_all(64).await.unwrap();
                    let text = format!(
                        "kept {} {} {} {} gone={} local={}",
                        req.method(),
                        req.path(),
                        x(req.headers()),
                        String::from_utf8_lossy(&body),
                        req.hangup().is_some(),
                        req.local_addr().ip(),
                    );
                    res.write_all(text.as_bytes()).await.unwrap();
                    drop(req);
                });
            }
            "/body" => {
                let n = x(req.headers());
                let mut body = req.into_body();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    let body = body.read_all(64).await.unwrap();
                    let text = format!("body {n} {}", String::from_utf8_lossy(&body));
                    res.write_all(text.as_bytes()).await.unwrap();
                });
            }
            "/parts" => {
                let (parts, mut body) = req.into_parts();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    let body = body.read_all(64).await.unwrap();
                    let text = format!(
                        "parts {} {} {} {}",
                        parts.method,
                        parts.uri,
                        x(&parts.headers),
                        String::from_utf8_lossy(&body)
                    );
                    res.write_all(text.as_bytes()).await.unwrap();
                });
            }
            _ => {
                let text = format!("plain {path} {} {}", x(req.headers()), req.headers().len());
                res.write_all(text.as_bytes()).await?;
            }
        }
        Ok(())
    })
    .await;
    let post = |path: &str, n: u32, body: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\nX-N: {n}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let expected = [
        "kept POST /kept Some(\"1\") one gone=false local=127.0.0.1",
        "plain /after-kept None 1",
        "body Some(\"2\") two",
        "plain /after-body None 1",
        "parts POST /parts Some(\"3\") three",
        "plain /after-parts None 1",
    ];
    let all = [
        post("/kept", 1, "one"),
        String::from_utf8(get("/after-kept")).unwrap(),
        post("/body", 2, "two"),
        String::from_utf8(get("/after-body")).unwrap(),
        post("/parts", 3, "three"),
        String::from_utf8(get("/after-parts")).unwrap(),
    ];
    // One at a time, then all pipelined in one write.
    let mut stream = connect(server.addr).await;
    for (request, want) in all.iter().zip(expected) {
        send(&mut stream, request.as_bytes()).await;
        assert_eq!(read_response(&mut stream, false).await.text(), want);
    }
    send(&mut stream, all.concat().as_bytes()).await;
    for want in expected {
        assert_eq!(read_response_prefix(&mut stream).await, want);
    }
}

/// A handler whose request extension panics when dropped, as `into_body`
/// empties the head for recycling: the handler has panicked (500), and
/// the body's state still goes back to the connection (it would hang
/// otherwise, waiting for it).
#[tokio::test]
async fn a_panic_while_into_body_recycles_the_head_is_answered_500_not_left_hanging() {
    #[derive(Clone)]
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            if !std::thread::panicking() {
                panic!("bomb");
            }
        }
    }
    let server = spawn_default(|mut req: Request, mut res: ResponseWriter| async move {
        req.extensions_mut().insert(Bomb);
        let _body = req.into_body();
        res.write_all(b"unreachable").await
    })
    .await;
    let mut stream = connect(server.addr).await;
    send(&mut stream, &get("/x")).await;
    assert_eq!(read_response(&mut stream, false).await.status, 500);
}
