//! Pipelined requests: responses are batched while handlers complete at
//! once, and never wait behind a handler that waits; a request body kept
//! by a task holds neither the response nor the connection for ever.

use std::time::Duration;

use hangup::{Config, Request, ResponseWriter};
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
