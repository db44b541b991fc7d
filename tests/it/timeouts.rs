//! The server's timers: a client that stops reading is cut off after
//! `write_timeout`, a body that stops arriving after `body_read_timeout`,
//! and an idle keep-alive connection is closed after `idle_timeout`,
//! counted from its last request.
//!
//! The write and body timers are tokio timers started when a write or
//! read stalls, so those tests pause tokio's clock once the handler runs:
//! the clock jumps to the timer as soon as nothing else can happen, and
//! the handler, which reports through a channel, measures virtual time.
//! The idle tests keep real time: the server computes idle deadlines from
//! `std::time::Instant`, which a paused clock does not move, and their
//! last event is a socket close that a jumping clock could outrun.

use std::time::{Duration, Instant};

use hangup::{Config, HangupCause, Phase, Request, ResponseWriter};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::support::*;

#[tokio::test]
async fn a_client_that_stops_reading_is_a_write_stall_after_write_timeout() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let started = Signal::new();
    let handler_started = started.clone();
    let config = Config::builder()
        .write_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let server = spawn(
        config,
        move |_request: Request, mut response: ResponseWriter| {
            let tx = tx.clone();
            let started = handler_started.clone();
            async move {
                started.fire();
                let start = tokio::time::Instant::now();
                let mut result = Ok(());
                // Far more than both socket buffers hold: the writes stall.
                for _ in 0..64 {
                    result = response.write_all(&vec![b's'; 1 << 20]).await;
                    if result.is_err() {
                        break;
                    }
                }
                let _ = tx.send((
                    result.map_err(|e| e.hangup().map(|h| h.cause())),
                    start.elapsed(),
                ));
                Ok(())
            }
        },
    )
    .await;
    let stream = slow_reader(server.addr, 16 * 1024, &get("/")).await;
    started.wait("the handler started").await;
    tokio::time::pause();
    let (result, waited) = tokio::time::timeout(LIMIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result, Err(Some(HangupCause::WriteStalled)));
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    drop(stream);
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_a_read_timeout_after_body_read_timeout() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let started = Signal::new();
    let handler_started = started.clone();
    let config = Config::builder()
        .body_read_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let server = spawn(
        config,
        move |mut request: Request, _response: ResponseWriter| {
            let tx = tx.clone();
            let started = handler_started.clone();
            async move {
                started.fire();
                let start = tokio::time::Instant::now();
                let result = request.body_mut().read_all(1024).await;
                let _ = tx.send((
                    result
                        .map(|b| b.len())
                        .map_err(|e| e.hangup().map(|h| (h.cause(), h.phase()))),
                    start.elapsed(),
                ));
                Ok(())
            }
        },
    )
    .await;
    let mut stream = connect(server.addr).await;
    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nab")
        .await
        .unwrap();
    started.wait("the handler started").await;
    tokio::time::pause();
    let (result, waited) = tokio::time::timeout(LIMIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        result,
        Err(Some((HangupCause::ReadTimeout, Phase::ReadingBody)))
    );
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
}

/// A server answering "ok" to everything, and a connection that has had
/// one exchange with it.
async fn one_ok_exchange(config: Config) -> (TestServer, TcpStream) {
    let server =
        spawn(
            config,
            |_request: Request, mut response: ResponseWriter| async move {
                response.write_all(b"ok").await
            },
        )
        .await;
    let mut stream = connect(server.addr).await;
    stream.write_all(&get("/")).await.unwrap();
    assert_eq!(read_response(&mut stream, false).await.text(), "ok");
    (server, stream)
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_idle_timeout() {
    let config = Config::builder()
        .idle_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let (_server, mut stream) = one_ok_exchange(config).await;
    let start = Instant::now();
    assert!(
        !closes_within(&mut stream, Duration::from_millis(150)).await,
        "closed before idle_timeout"
    );
    assert!(
        closes_within(&mut stream, Duration::from_secs(3)).await,
        "not closed after idle_timeout"
    );
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(290), "{waited:?}");
}

/// The idle timeout counts from the last request, not the first: a
/// connection's timer armed for an earlier wait (and left armed, not
/// re-registered per request) must not close it early.
#[tokio::test]
async fn the_idle_timeout_counts_from_the_last_request_on_a_connection() {
    const IDLE: Duration = Duration::from_millis(400);
    let config = Config::builder()
        .idle_timeout(IDLE)
        // No buffer release (and no parking) before the timeout: the
        // connection's own timer is the idle deadline.
        .idle_release_after(Duration::from_secs(10))
        .build()
        .unwrap();
    let (_server, mut stream) = one_ok_exchange(config).await;
    // The scenario: the second request comes 150 ms into the first wait.
    tokio::time::sleep(Duration::from_millis(150)).await;
    // The server arms the second wait after this, so it may close no
    // earlier than IDLE from here; the first wait's deadline comes sooner.
    let second = Instant::now();
    stream.write_all(&get("/")).await.unwrap();
    assert_eq!(read_response(&mut stream, false).await.text(), "ok");
    assert!(
        closes_within(&mut stream, Duration::from_secs(5)).await,
        "not closed after idle_timeout"
    );
    let waited = second.elapsed();
    assert!(
        waited >= IDLE - Duration::from_millis(5),
        "closed {waited:?} after the second request: by the first one's deadline?"
    );
}
