//! Pipelined requests: answered in order, responses batched while
//! handlers complete at once (up to `write_buffer_bytes`), and never held
//! behind a handler that waits or an incomplete next head; a request body
//! kept by a task holds neither the response nor the connection for ever.

use std::time::Duration;

use hangup::{Config, Request, ResponseWriter};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use crate::support::*;

/// 1. The client pipelines `GET /` and the head of `POST /echo`, and
///    withholds the POST's body.
/// 2. The GET's response is finished at once, and held back: the POST's
///    head is already here.
/// 3. The POST's handler waits for its body: the GET's response goes out
///    then, so the client reads it before it sends the body (before the
///    fix it waited for the POST's handler to write, that is for ever).
/// 4. The body follows; the POST is answered too.
#[tokio::test]
async fn a_response_is_not_held_behind_a_handler_waiting_for_its_body() {
    let server = spawn_default(echo).await;
    let mut stream = connect(server.addr).await;
    let mut batch = get("/");
    batch.extend_from_slice(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n");
    send(&mut stream, &batch).await;
    let first = read_response(&mut stream, false).await;
    assert_eq!(first.status, 200);
    send(&mut stream, b"hello").await;
    let second = read_response(&mut stream, false).await;
    assert_eq!(
        (second.status, second.body.as_slice()),
        (200, &b"hello"[..])
    );
}

/// The same with a handler that waits for a timer rather than the
/// socket, and a batch of three: each response goes out when the handler
/// after it yields, in order.
#[tokio::test]
async fn held_back_responses_go_out_in_order_as_soon_as_a_handler_waits() {
    let (release_tx, release_rx) = mpsc::unbounded_channel::<()>();
    let release_rx = std::sync::Arc::new(tokio::sync::Mutex::new(release_rx));
    let server = spawn_default(move |request: Request, mut response: ResponseWriter| {
        let release_rx = release_rx.clone();
        async move {
            if request.path() == "/wait" {
                release_rx.lock().await.recv().await;
            }
            response.write_all(request.path().as_bytes()).await
        }
    })
    .await;
    let mut stream = connect(server.addr).await;
    let mut batch = get("/a");
    batch.extend_from_slice(&get("/b"));
    batch.extend_from_slice(&get("/wait"));
    send(&mut stream, &batch).await;
    assert_eq!(read_response_prefix(&mut stream).await, "/a");
    assert_eq!(read_response_prefix(&mut stream).await, "/b");
    release_tx.send(()).unwrap();
    assert_eq!(read_response_prefix(&mut stream).await, "/wait");
}

/// 1. The handler hands the request body to a task that keeps it without
///    reading, and answers.
/// 2. The response arrives at once (before the fix the connection waited
///    for the body to come back before finishing the response).
/// 3. The connection then waits for the body at most `body_read_timeout`,
///    and closes.
/// 4. The kept body, read afterwards, fails with an error that says why.
#[tokio::test]
async fn a_body_kept_by_a_task_holds_neither_the_response_nor_the_connection() {
    // The handler's task: reads the kept body when told, and reports.
    type Kept = (oneshot::Sender<()>, oneshot::Receiver<String>);
    let (kept_tx, mut kept_rx) = mpsc::unbounded_channel::<Kept>();
    // Real time, a short timeout: the timer's effect is a socket close,
    // and a paused clock could jump past LIMIT before the FIN is read.
    let config = Config::builder()
        .body_read_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let server = spawn(
        config,
        move |request: Request, mut response: ResponseWriter| {
            let kept_tx = kept_tx.clone();
            async move {
                let mut body = request.into_body();
                let (go_tx, go_rx) = oneshot::channel::<()>();
                let (result_tx, result_rx) = oneshot::channel::<String>();
                tokio::spawn(async move {
                    let _ = go_rx.await;
                    let result = body.read_all(64).await;
                    let _ = result_tx.send(format!("{result:?}"));
                });
                kept_tx.send((go_tx, result_rx)).unwrap();
                response.write_all(b"answered").await
            }
        },
    )
    .await;
    let mut stream = connect(server.addr).await;
    send(
        &mut stream,
        b"POST /keep HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n",
    )
    .await;
    let response = read_response(&mut stream, false).await;
    assert_eq!(response.text(), "answered");
    assert_eq!(
        response.header("connection"),
        Some("close"),
        "the body was not done: {response:?}"
    );
    let (_rest, end) = read_until_end(&mut stream).await;
    assert!(matches!(end, crate::support::End::Eof), "{end:?}");
    let (go, result) = kept_rx.recv().await.expect("the handler's task");
    go.send(()).unwrap();
    let result = tokio::time::timeout(LIMIT, result).await.unwrap().unwrap();
    assert!(result.contains("body_read_timeout"), "{result}");
}

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

#[tokio::test]
async fn held_back_pipelined_responses_are_bounded_by_the_buffer() {
    // 1. A client pipelines 40 requests in one write.
    // 2. Each finished response is held back while the next request waits,
    //    but only up to `write_buffer_bytes` (1 KiB here) of them.
    // 3. Request 30's handler blocks until the client has received a
    //    response: with unbounded holding, nothing would ever arrive.
    let (tx, rx) = tokio::sync::watch::channel(false);
    let config = Config::builder().write_buffer_bytes(1024).build().unwrap();
    let server = spawn(
        config,
        move |request: Request, mut response: ResponseWriter| {
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
    stream.write_all(&batch).await.unwrap();
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

#[tokio::test]
async fn a_response_held_back_for_a_waiting_handler_goes_out_when_it_waits() {
    // 1. The client pipelines /a and /b.
    // 2. /a finishes at once; its response is held back, since /b's head
    //    is already here.
    // 3. /b's handler waits (for the client to leave): /a's response goes
    //    out then, not after /b.
    // 4. The client reads /a, then resets: /a is complete, every byte
    //    acknowledged; /b is a 499.
    let outcomes = Outcomes::default();
    let config = outcomes.builder().build().unwrap();
    let server = spawn(
        config,
        |request: Request, mut response: ResponseWriter| async move {
            if request.uri().path() == "/b" {
                let _ = tokio::time::timeout(HANDLER_WAIT, request.hung_up()).await;
            }
            response.write_all(b"done").await
        },
    )
    .await;
    let mut stream = connect(server.addr).await;
    let mut two = get("/a");
    two.extend_from_slice(&get("/b"));
    stream.write_all(&two).await.unwrap();
    let first = read_response(&mut stream, false).await;
    assert_eq!((first.status, first.text().as_str()), (200, "done"));
    reset(stream);
    let all = outcomes.wait_for(2).await;
    let a = all
        .iter()
        .find(|o| o.uri == "/a")
        .expect("an outcome for /a");
    let b = all
        .iter()
        .find(|o| o.uri == "/b")
        .expect("an outcome for /b");
    assert_eq!(b.status().as_u16(), 499, "{b:?}");
    assert!(a.is_complete(), "{a:?}");
    assert_eq!(a.status().as_u16(), 200, "{a:?}");
    assert_eq!(a.counters.acked, Some(a.counters.written), "{a:?}");
}
