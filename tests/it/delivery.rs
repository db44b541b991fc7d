//! What the server knows reached the client: bytes written and bytes the
//! client's TCP acknowledged (in outcomes and in the metrics), a
//! `100 Continue` counted on the wire, and `finish_and_confirm` waiting
//! for the acknowledgement.

use std::time::{Duration, Instant};

use hangup::{Error, HangupCause, Request, ResponseWriter};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::support::*;

#[tokio::test]
async fn acked_equals_everything_when_the_client_read_it_all() {
    let outcomes = Outcomes::default();
    let server = spawn(
        outcomes.builder().build().unwrap(),
        |_r: Request, mut w: ResponseWriter| async move { w.write_all(&vec![b'a'; 300_000]).await },
    )
    .await;
    let raw = raw_exchange(
        server.addr,
        b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    let outcome = &outcomes.wait_for(1).await[0];
    assert_eq!(outcome.counters.written, raw.len() as u64);
    assert_eq!(outcome.counters.acked, Some(raw.len() as u64));
    assert!(!outcome.in_flight);
    assert!(outcome.is_complete());
    assert_eq!(outcome.status().as_u16(), 200);
}

#[tokio::test]
async fn acked_is_below_written_when_a_client_that_never_read_resets() {
    let outcomes = Outcomes::default();
    let config = outcomes.builder().build().unwrap();
    let server = spawn(config, |_r: Request, mut w: ResponseWriter| async move {
        // Bigger than both sockets' buffers: the handler blocks until the RST.
        for _ in 0..64 {
            w.write_all(&vec![b'd'; 1 << 20]).await?;
        }
        Ok(())
    })
    .await;
    let stream = slow_reader(server.addr, 16 * 1024, &get("/")).await;
    until_stalled(&server.metrics, &stream, 0).await;
    reset(stream);
    let outcome = &outcomes.wait_for(1).await[0];
    let written = outcome.counters.written;
    let acked = outcome.counters.acked.expect("linux reports acked bytes");
    assert!(
        0 < acked && acked < written,
        "acked {acked}, written {written}"
    );
    assert!(
        outcome.in_flight,
        "final before everything written was acknowledged"
    );
    assert_eq!(outcome.status().as_u16(), 499);
    assert_eq!(outcome.intended_status.as_u16(), 200);
    assert!(!outcome.is_complete());
}

#[tokio::test]
async fn a_100_continue_counts_as_part_of_the_response_on_the_wire() {
    // The interim `100 Continue` is written by the body reader, outside the
    // writer; written and acked must still equal what the client received.
    let outcomes = Outcomes::default();
    let server = spawn(
        outcomes.builder().build().unwrap(),
        |mut request: Request, mut response: ResponseWriter| async move {
            let body = request.body_mut().read_all(1024).await?;
            response.write_all(&body).await
        },
    )
    .await;
    let mut stream = connect(server.addr).await;
    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut interim = vec![0u8; 25];
    tokio::time::timeout(LIMIT, stream.read_exact(&mut interim))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"hello").await.unwrap();
    let rest = read_to_close(&mut stream).await;
    assert_eq!(parse_responses(&rest, &[false])[0].text(), "hello");
    let received = (interim.len() + rest.len()) as u64;
    // The client still holds its side open, so the server is lingering
    // (up to 2 s): the outcome must not wait for that.
    let start = Instant::now();
    let outcome = &outcomes.wait_for(1).await[0];
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "outcome settled only after {:?}",
        start.elapsed()
    );
    assert_eq!(outcome.counters.written, received, "{outcome:?}");
    assert_eq!(outcome.counters.acked, Some(received), "{outcome:?}");
}

#[tokio::test]
async fn metrics_count_every_exchange_without_a_hook_or_access_log() {
    // No hook, no subscriber: the server skips building outcome records,
    // but the metrics still count each exchange and its hang-up.
    let server = spawn_default(
        |request: Request, mut response: ResponseWriter| async move {
            if request.uri().path() == "/wait" {
                let _ = tokio::time::timeout(HANDLER_WAIT, request.hung_up()).await;
            }
            response.write_all(b"ok").await
        },
    )
    .await;
    let mut received = 0;
    for _ in 0..3 {
        let raw = raw_exchange(
            server.addr,
            b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert_eq!(parse_responses(&raw, &[false])[0].text(), "ok");
        received += raw.len() as u64;
    }
    let mut stream = connect(server.addr).await;
    stream.write_all(&get("/wait")).await.unwrap();
    // Its handler has it: the reset is a hang-up, not a departure.
    assert!(metrics_reach(&server.metrics, |m| m.requests == 4).await);
    reset(stream);
    assert!(
        metrics_reach(&server.metrics, |m| m.outcomes == 4
            && m.open_connections == 0)
        .await,
        "{:?}",
        server.metrics.snapshot()
    );
    let snapshot = server.metrics.snapshot();
    assert_eq!(snapshot.requests, 4);
    assert_eq!(snapshot.hangups_of(HangupCause::Reset), 1, "{snapshot:?}");
    // The reset client got nothing: every byte written is one received.
    assert_eq!(snapshot.bytes_written, received, "{snapshot:?}");
}

/// A server whose handler writes `len` bytes, then sends what
/// `finish_and_confirm(wait)` returned.
async fn confirming_server(
    len: usize,
    wait: Duration,
) -> (
    TestServer,
    mpsc::UnboundedReceiver<hangup::Result<hangup::Counters>>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let server = spawn_default(move |_r: Request, mut w: ResponseWriter| {
        let tx = tx.clone();
        async move {
            w.write_all(&vec![b'c'; len]).await?;
            let _ = tx.send(w.finish_and_confirm(wait).await);
            Ok(())
        }
    })
    .await;
    (server, rx)
}

#[tokio::test]
async fn finish_and_confirm_waits_for_the_clients_acknowledgement() {
    let (server, mut rx) = confirming_server(200_000, Duration::from_secs(5)).await;
    let raw = raw_exchange(
        server.addr,
        b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    let counters = tokio::time::timeout(LIMIT, rx.recv())
        .await
        .unwrap()
        .unwrap()
        .expect("confirmed");
    assert_eq!(counters.written, raw.len() as u64);
    assert_eq!(counters.acked, Some(raw.len() as u64));
}

#[tokio::test]
async fn finish_and_confirm_times_out_on_a_client_that_does_not_read() {
    // Fits in the socket buffers, so `finish` succeeds, but a client with a
    // tiny window cannot acknowledge it all. Real time: `finish_and_confirm`
    // times its wait with `std::time::Instant`, which a paused clock does
    // not move.
    let (server, mut rx) = confirming_server(150_000, Duration::from_millis(300)).await;
    let stream = slow_reader(server.addr, 8 * 1024, &get("/")).await;
    let result = tokio::time::timeout(LIMIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    match result {
        Err(Error::Unconfirmed(counters)) => {
            let acked = counters.acked.unwrap();
            assert!(acked < counters.written, "{counters:?}");
        }
        // The write itself may stall past the socket buffers and fail
        // differently; anything that claims delivery is wrong.
        other => assert!(other.is_err(), "claimed delivery: {other:?}"),
    }
    drop(stream);
}
