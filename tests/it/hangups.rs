//! Hang-ups: the client closes (FIN) or resets (RST) at each point of the
//! exchange (inside the head, mid body, while the handler waits, mid
//! response); the handler learns of it while it waits, and writes fail at
//! once with a typed cause.

use std::time::{Duration, Instant};

use hangup::{Detection, Error, HangupCause, Phase, Request, ResponseWriter};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::support::*;

#[derive(Debug, Clone, Copy)]
enum Leave {
    Fin,
    Rst,
}

async fn leave(mut stream: TcpStream, how: Leave) {
    match how {
        Leave::Fin => {
            stream.shutdown().await.expect("shutdown");
            // Keep reading so our side is a half-closed reader, not gone.
            let _ =
                tokio::time::timeout(Duration::from_millis(200), read_to_close(&mut stream)).await;
        }
        Leave::Rst => reset(stream),
    }
}

/// The handler is waiting; the client leaves; the handler must hear of it
/// long before its wait ends, with the right cause, and writes must then
/// behave per the policy.
async fn assert_detected_while_waiting(request: &[u8], how: Leave) {
    let (handler, mut waiting) = waiting_handler();
    let server = spawn_default(handler).await;
    let mut stream = connect(server.addr).await;
    stream.write_all(request).await.unwrap();
    waiting.started.wait("the handler started").await;
    let left = Instant::now();
    let leaving = tokio::spawn(leave(stream, how));
    let seen = waiting.next_seen().await;
    let hangup = seen.hangup.expect("the handler was told of the hang-up");
    assert!(
        seen.waited < Duration::from_secs(2),
        "detected after {:?}",
        seen.waited
    );
    assert!(left.elapsed() < Duration::from_secs(2));
    assert_eq!(hangup.detection(), Detection::SocketWatch);
    assert_eq!(hangup.phase(), Phase::Handling);
    assert_eq!(hangup.counters().written, 0);
    match how {
        Leave::Fin => {
            assert_eq!(hangup.cause(), HangupCause::PeerClosed);
            // Notify (the default): writes still proceed.
            assert_eq!(seen.write_after, Some(Ok(())));
        }
        Leave::Rst => {
            assert_eq!(hangup.cause(), HangupCause::Reset);
            let err = seen.write_after.unwrap().unwrap_err();
            assert!(err.contains("ClientGone") && err.contains("Reset"), "{err}");
        }
    }
    leaving.await.unwrap();
}

#[tokio::test]
async fn fin_during_handler_wait_is_detected() {
    assert_detected_while_waiting(&get("/"), Leave::Fin).await;
}

#[tokio::test]
async fn rst_during_handler_wait_is_detected_and_writes_fail() {
    assert_detected_while_waiting(&get("/"), Leave::Rst).await;
}

#[tokio::test]
async fn fin_and_rst_are_detected_with_an_unread_body() {
    let mut request = b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 140\r\n\r\n".to_vec();
    request.extend_from_slice(&[b'b'; 140]);
    assert_detected_while_waiting(&request, Leave::Fin).await;
    assert_detected_while_waiting(&request, Leave::Rst).await;
}

#[tokio::test]
async fn fin_and_rst_are_detected_with_a_pipelined_request_waiting() {
    let mut request = get("/first");
    request.extend_from_slice(&get("/second"));
    assert_detected_while_waiting(&request, Leave::Fin).await;
    assert_detected_while_waiting(&request, Leave::Rst).await;
}

#[tokio::test]
async fn client_leaving_inside_the_head_reaches_no_handler() {
    let outcomes = Outcomes::default();
    let server = spawn(
        outcomes.builder().build().unwrap(),
        |_r: Request, _w: ResponseWriter| async { panic!("no complete head was sent") },
    )
    .await;
    let open = |n: u64| move |m: &hangup::MetricsSnapshot| m.open_connections == n;
    for how in [Leave::Fin, Leave::Rst] {
        let mut stream = connect(server.addr).await;
        stream.write_all(b"GET / HTTP/1.1\r\nHo").await.unwrap();
        // Accepted before the client leaves, and finished with after: an
        // outcome, if there were one, would be in by then.
        assert!(metrics_reach(&server.metrics, open(1)).await, "{how:?}");
        leave(stream, how).await;
        assert!(metrics_reach(&server.metrics, open(0)).await, "{how:?}");
    }
    assert!(outcomes.all().is_empty());
}

#[tokio::test]
async fn client_leaving_mid_body_fails_the_body_read_with_its_cause() {
    for (how, cause) in [
        (Leave::Fin, HangupCause::PeerClosed),
        (Leave::Rst, HangupCause::Reset),
    ] {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let started = Signal::new();
        let handler_started = started.clone();
        let server = spawn_default(move |mut request: Request, _response: ResponseWriter| {
            let tx = tx.clone();
            let started = handler_started.clone();
            async move {
                started.fire();
                let result = request.body_mut().read_all(1 << 20).await;
                let _ = tx.send(result.map(|b| b.len()));
                Ok(())
            }
        })
        .await;
        let mut stream = connect(server.addr).await;
        stream
            .write_all(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n")
            .await
            .unwrap();
        stream.write_all(&[b'a'; 100]).await.unwrap();
        started.wait("the handler started").await;
        leave(stream, how).await;
        let result = tokio::time::timeout(LIMIT, rx.recv())
            .await
            .unwrap()
            .unwrap();
        match result {
            Err(Error::ClientGone(hangup)) => {
                assert_eq!(hangup.cause(), cause, "{how:?}");
                assert_eq!(hangup.phase(), Phase::ReadingBody, "{how:?}");
            }
            other => panic!("{how:?}: expected ClientGone, got {other:?}"),
        }
    }
}

/// The handler sends the head and `offset` body bytes (0: right after the
/// head), flushes, and waits;
/// the client reads exactly those bytes and leaves. The handler must learn
/// of it while waiting, and a later write must fail at once for an RST.
async fn leave_mid_response(offset: usize, how: Leave) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let server = spawn_default(move |request: Request, mut response: ResponseWriter| {
        let tx = tx.clone();
        async move {
            response.insert_header(
                hangup::http::header::CONTENT_LENGTH,
                (offset + 1_000_000).into(),
            )?;
            response.write_all(&vec![b'r'; offset]).await?;
            response.flush().await?;
            let start = Instant::now();
            let hangup = tokio::time::timeout(HANDLER_WAIT, request.hung_up())
                .await
                .ok();
            let waited = start.elapsed();
            // Once an RST is known, this fails without a syscall, whatever the size.
            let write_after = response.write_all(&vec![b'r'; 100_000]).await;
            let _ = tx.send((hangup, waited, write_after.map_err(|e| e.hangup().cloned())));
            Ok(())
        }
    })
    .await;
    let mut stream = connect(server.addr).await;
    stream.write_all(&get("/")).await.unwrap();
    let mut received = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let head_len = loop {
        let n = tokio::time::timeout(LIMIT, stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "server closed early");
        received.extend_from_slice(&buf[..n]);
        if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            if received.len() - (end + 4) >= offset {
                break end + 4;
            }
        }
    };
    assert_eq!(
        received.len(),
        head_len + offset,
        "offset {offset}: the server sent more than it flushed"
    );
    leave(stream, how).await;
    let (hangup, waited, write_after) = tokio::time::timeout(LIMIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    let hangup =
        hangup.unwrap_or_else(|| panic!("offset {offset} {how:?}: not detected while waiting"));
    assert!(
        waited < Duration::from_secs(2),
        "offset {offset}: detected after {waited:?}"
    );
    assert_eq!(hangup.phase(), Phase::Sending, "offset {offset}");
    assert_eq!(
        hangup.counters().written,
        (head_len + offset) as u64,
        "offset {offset}"
    );
    assert_eq!(hangup.counters().buffered, offset as u64, "offset {offset}");
    match how {
        Leave::Fin => assert_eq!(hangup.cause(), HangupCause::PeerClosed),
        Leave::Rst => {
            assert_eq!(hangup.cause(), HangupCause::Reset);
            let gone = write_after
                .expect_err("write after an RST fails")
                .expect("as ClientGone");
            assert_eq!(gone.cause(), HangupCause::Reset);
            // No syscall was made: the counters did not move.
            assert_eq!(gone.counters().written, (head_len + offset) as u64);
        }
    }
}

#[tokio::test]
async fn leaving_mid_response_at_each_offset_is_detected() {
    for offset in [0, 1, 4095, 4096, 4097, 8192, 1 << 20] {
        leave_mid_response(offset, Leave::Fin).await;
        leave_mid_response(offset, Leave::Rst).await;
    }
}
