//! The socket watch looks at readiness without consuming bytes; the bytes
//! it saw arrive must still reach the reader, however many there are.

use hangup::{Request, ResponseWriter};
use tokio::sync::{mpsc, oneshot};

use crate::support::*;

/// 1. The client sends a head and a body far larger than one read (256
///    KiB), all in one write, while the handler waits for something else.
/// 2. The watch sees the bytes arrive and clears the readable flag (it
///    must not spin on bytes nobody reads yet), telling the next read to
///    ask the kernel directly.
/// 3. The handler then reads the body piece by piece, doing other work in
///    between (the watch runs and clears the flag again): a direct read
///    fills its buffer, more bytes are waiting, and no readiness event will
///    announce them. Before the fix the next read waited for one for ever
///    (found by `hangup serve --upload`, which stalled after about 1 MB).
#[tokio::test]
async fn a_body_that_arrived_while_the_handler_waited_is_read_whole() {
    const LEN: usize = 256 * 1024;
    let (sent_tx, sent_rx) = mpsc::unbounded_channel::<oneshot::Receiver<()>>();
    let sent_rx = std::sync::Arc::new(tokio::sync::Mutex::new(sent_rx));
    let server = spawn_default(move |mut request: Request, mut response: ResponseWriter| {
        let sent_rx = sent_rx.clone();
        async move {
            // The handler's other work: here, waiting until the client has
            // sent everything (the watch runs meanwhile).
            if let Some(sent) = sent_rx.lock().await.recv().await {
                let _ = sent.await;
            }
            // Reads piece by piece, doing other work between pieces (as an
            // upload's disk writes do): the watch runs between reads.
            let mut total = 0;
            while let Some(chunk) = request.body_mut().chunk().await? {
                total += chunk.len();
                tokio::task::yield_now().await;
            }
            response.write_all(total.to_string().as_bytes()).await
        }
    })
    .await;
    let (done_tx, done_rx) = oneshot::channel();
    sent_tx.send(done_rx).unwrap();
    let mut stream = connect(server.addr).await;
    let mut request =
        format!("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: {LEN}\r\n\r\n").into_bytes();
    request.extend(std::iter::repeat_n(b'u', LEN));
    send(&mut stream, &request).await;
    // Give the watch a moment to see the bytes before the handler reads:
    // the readiness event is what the bug needed.
    tokio::task::yield_now().await;
    done_tx.send(()).unwrap();
    let response = read_response(&mut stream, false).await;
    assert_eq!((response.status, response.text()), (200, LEN.to_string()));
}
