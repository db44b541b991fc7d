//! Hang-ups: the client closes (FIN) or resets (RST) at each point of the
//! exchange; the handler learns of it while it waits, writes fail at once
//! with a typed cause, and the outcome reports the counters.

use std::time::{Duration, Instant};

use hangup::{
    Config, Cutoff, Detection, End, Error, HangupCause, OnFin, OnHangup, Phase, Request,
    ResponseWriter,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::support::*;

/// How long a test handler waits for the hang-up before giving up: far
/// longer than detection should take, so a pass means "detected while
/// waiting".
const HANDLER_WAIT: Duration = Duration::from_secs(10);

/// What a waiting handler saw.
#[derive(Debug)]
struct Seen {
    hangup: Option<hangup::Hangup>,
    waited: Duration,
    write_after: Option<Result<(), String>>,
}

/// A handler that waits for the hang-up (at most [`HANDLER_WAIT`]), then
/// tries a 1-byte write, and reports both.
fn waiting_handler(report: mpsc::UnboundedSender<Seen>) -> impl hangup::Handler {
    move |request: Request, mut response: ResponseWriter| {
        let report = report.clone();
        async move {
            let start = Instant::now();
            let hangup = tokio::time::timeout(HANDLER_WAIT, request.hung_up())
                .await
                .ok();
            let waited = start.elapsed();
            let write_after = response.write_all(b"x").await;
            let write_after = Some(
                write_after
                    .as_ref()
                    .map(|_| ())
                    .map_err(|e| format!("{e:?}")),
            );
            let _ = report.send(Seen {
                hangup,
                waited,
                write_after,
            });
            Ok(())
        }
    }
}

async fn next_seen(rx: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
    tokio::time::timeout(LIMIT, rx.recv())
        .await
        .expect("handler report in time")
        .expect("handler report")
}

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
    let (tx, mut rx) = mpsc::unbounded_channel();
    let server = spawn_default(waiting_handler(tx)).await;
    let mut stream = connect(server.addr).await;
    stream.write_all(request).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let left = Instant::now();
    let leaving = tokio::spawn(leave(stream, how));
    let seen = next_seen(&mut rx).await;
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
async fn pipelined_bytes_survive_a_half_close_and_are_served() {
    // 1. Two pipelined requests, then the client half-closes and reads.
    // 2. The first handler hears the FIN while waiting (Notify: writes go on).
    // 3. The second request, already in the read buffer, is still served.
    let server = spawn_default(
        |request: Request, mut response: ResponseWriter| async move {
            if request.uri().path() == "/first" {
                let _ = tokio::time::timeout(HANDLER_WAIT, request.hung_up()).await;
            }
            response.write_all(request.uri().path().as_bytes()).await
        },
    )
    .await;
    let mut stream = connect(server.addr).await;
    let mut request = get("/first");
    request.extend_from_slice(&get("/second"));
    stream.write_all(&request).await.unwrap();
    stream.shutdown().await.unwrap();
    let raw = read_to_close(&mut stream).await;
    let responses = parse_responses(&raw, &[false, false]);
    let bodies: Vec<String> = responses.iter().map(|r| r.text()).collect();
    assert_eq!(bodies, ["/first", "/second"]);
}

#[tokio::test]
async fn half_closing_client_gets_its_full_response_under_notify() {
    let server = spawn_default(
        |request: Request, mut response: ResponseWriter| async move {
            let hangup = tokio::time::timeout(HANDLER_WAIT, request.hung_up()).await;
            assert!(hangup.is_ok(), "the FIN is reported");
            response.write_all(&vec![b'z'; 100_000]).await
        },
    )
    .await;
    let mut stream = connect(server.addr).await;
    stream.write_all(&get("/")).await.unwrap();
    stream.shutdown().await.unwrap();
    let raw = read_to_close(&mut stream).await;
    let response = &parse_responses(&raw, &[false])[0];
    assert_eq!(response.status, 200);
    assert!(response.complete);
    assert_eq!(response.body.len(), 100_000);
}

#[tokio::test]
async fn under_abort_the_first_write_of_one_byte_fails_after_a_fin() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let config = Config::builder().on_fin(OnFin::Abort).build().unwrap();
    let server = spawn(config, waiting_handler(tx)).await;
    let mut stream = connect(server.addr).await;
    stream.write_all(&get("/")).await.unwrap();
    stream.shutdown().await.unwrap();
    let seen = next_seen(&mut rx).await;
    assert_eq!(seen.hangup.unwrap().cause(), HangupCause::PeerClosed);
    let err = seen.write_after.unwrap().unwrap_err();
    assert!(
        err.contains("ClientGone") && err.contains("PeerClosed"),
        "{err}"
    );
    assert!(
        read_to_close(&mut stream).await.is_empty(),
        "nothing is sent after an aborting FIN"
    );
}

#[tokio::test]
async fn under_ignore_a_fin_is_not_reported() {
    let config = Config::builder().on_fin(OnFin::Ignore).build().unwrap();
    let server = spawn(
        config,
        |request: Request, mut response: ResponseWriter| async move {
            let told = tokio::time::timeout(Duration::from_millis(300), request.hung_up()).await;
            response
                .write_all(if told.is_ok() { b"told" } else { b"quiet" })
                .await
        },
    )
    .await;
    let mut stream = connect(server.addr).await;
    stream.write_all(&get("/")).await.unwrap();
    stream.shutdown().await.unwrap();
    let raw = read_to_close(&mut stream).await;
    assert_eq!(parse_responses(&raw, &[false])[0].text(), "quiet");
}

#[tokio::test]
async fn under_cancel_the_handler_is_dropped_and_its_destructor_runs() {
    struct Guard(mpsc::UnboundedSender<&'static str>);
    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = self.0.send("dropped");
        }
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let outcomes = Outcomes::default();
    let config = outcomes
        .builder()
        .on_hangup(OnHangup::Cancel)
        .build()
        .unwrap();
    let server = spawn(
        config,
        move |_request: Request, _response: ResponseWriter| {
            let guard = Guard(tx.clone());
            async move {
                let _guard = guard;
                tokio::time::sleep(HANDLER_WAIT).await;
                Ok(())
            }
        },
    )
    .await;
    let mut stream = connect(server.addr).await;
    stream.write_all(&get("/")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let start = Instant::now();
    reset(stream);
    let dropped = tokio::time::timeout(LIMIT, rx.recv()).await.unwrap();
    assert_eq!(dropped, Some("dropped"));
    assert!(start.elapsed() < Duration::from_secs(2));
    let outcome = &outcomes.wait_for(1).await[0];
    assert_eq!(outcome.hangup().unwrap().cause(), HangupCause::Reset);
    assert_eq!(outcome.status().as_u16(), 499);
}

#[tokio::test]
async fn client_leaving_inside_the_head_reaches_no_handler() {
    let outcomes = Outcomes::default();
    let server = spawn(
        outcomes.builder().build().unwrap(),
        |_r: Request, _w: ResponseWriter| async { panic!("no complete head was sent") },
    )
    .await;
    for how in [Leave::Fin, Leave::Rst] {
        let mut stream = connect(server.addr).await;
        stream.write_all(b"GET / HTTP/1.1\r\nHo").await.unwrap();
        leave(stream, how).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(outcomes.all().is_empty());
}

#[tokio::test]
async fn client_leaving_mid_body_fails_the_body_read_with_its_cause() {
    for (how, cause) in [
        (Leave::Fin, HangupCause::PeerClosed),
        (Leave::Rst, HangupCause::Reset),
    ] {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let server = spawn_default(move |mut request: Request, _response: ResponseWriter| {
            let tx = tx.clone();
            async move {
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
        tokio::time::sleep(Duration::from_millis(50)).await;
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
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    let mut stream = socket.connect(server.addr).await.unwrap();
    stream.write_all(&get("/")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
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
    // tiny window cannot acknowledge it all.
    let (server, mut rx) = confirming_server(150_000, Duration::from_millis(300)).await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(8 * 1024).unwrap();
    let mut stream = socket.connect(server.addr).await.unwrap();
    stream.write_all(&get("/")).await.unwrap();
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

#[tokio::test]
async fn a_handler_can_choose_abort_for_its_own_request() {
    // The server notifies (default); `/strict` wants FIN to mean gone, and
    // sets it either before the FIN arrives or after it was reported.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let server = spawn_default(move |request: Request, mut response: ResponseWriter| {
        let tx = tx.clone();
        async move {
            let early = request.uri().path() == "/strict-early";
            if early {
                request.set_on_fin(OnFin::Abort);
            }
            let hangup = tokio::time::timeout(HANDLER_WAIT, request.hung_up())
                .await
                .ok();
            if !early {
                // The FIN was reported under Notify; switching now makes
                // the client gone at once.
                request.set_on_fin(OnFin::Abort);
            }
            let write = response.write_all(b"x").await;
            let _ = tx.send((
                hangup.map(|h| h.cause()),
                write.map_err(|e| e.hangup().map(|h| h.cause())),
            ));
            Ok(())
        }
    })
    .await;
    for path in ["/strict-early", "/strict-late"] {
        let mut stream = connect(server.addr).await;
        stream.write_all(&get(path)).await.unwrap();
        stream.shutdown().await.unwrap();
        let (told, write) = tokio::time::timeout(LIMIT, rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(told, Some(HangupCause::PeerClosed), "{path}");
        assert_eq!(
            write,
            Err(Some(HangupCause::PeerClosed)),
            "{path}: the write must fail at once"
        );
    }
}

#[tokio::test]
async fn a_handler_can_choose_cancel_for_its_own_request() {
    struct Guard(mpsc::UnboundedSender<&'static str>);
    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = self.0.send("dropped");
        }
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let server = spawn_default(move |request: Request, _response: ResponseWriter| {
        let guard = Guard(tx.clone());
        async move {
            let _guard = guard;
            request.set_on_hangup(OnHangup::Cancel);
            tokio::time::sleep(HANDLER_WAIT).await;
            Ok(())
        }
    })
    .await;
    let mut stream = connect(server.addr).await;
    stream.write_all(&get("/")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let start = Instant::now();
    reset(stream);
    assert_eq!(
        tokio::time::timeout(LIMIT, rx.recv()).await.unwrap(),
        Some("dropped")
    );
    assert!(start.elapsed() < Duration::from_secs(2));
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
    tokio::time::sleep(Duration::from_millis(50)).await;
    reset(stream);
    let start = Instant::now();
    let snapshot = loop {
        let snapshot = server.metrics.snapshot();
        if snapshot.outcomes == 4 && snapshot.open_connections == 0 {
            break snapshot;
        }
        assert!(start.elapsed() < LIMIT, "{snapshot:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(snapshot.requests, 4);
    assert_eq!(snapshot.hangups_of(HangupCause::Reset), 1, "{snapshot:?}");
    // The reset client got nothing: every byte written is one received.
    assert_eq!(snapshot.bytes_written, received, "{snapshot:?}");
}

#[tokio::test]
async fn a_forced_shutdown_mid_handler_still_yields_exactly_one_outcome() {
    // Regression: with an outcome consumer, dropping a connection task
    // mid-exchange read the lent-out writer state and panicked.
    let outcomes = Outcomes::default();
    let config = outcomes.builder().build().unwrap();
    let server = spawn(
        config,
        |_request: Request, mut response: ResponseWriter| async move {
            response.set_status(hangup::http::StatusCode::ACCEPTED)?;
            response.write_all(b"partial").await?;
            response.flush().await?;
            tokio::time::sleep(HANDLER_WAIT).await;
            Ok(())
        },
    )
    .await;
    let mut stream = connect(server.addr).await;
    stream.write_all(&get("/")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let start = Instant::now();
    server.stop(Duration::from_millis(100)).await;
    assert!(start.elapsed() < Duration::from_secs(2));
    let all = outcomes.wait_for(1).await;
    assert_eq!(all.len(), 1, "{all:?}");
    // The server cut it short, not the client: what was sent, incomplete,
    // with the server's cause; never a 499.
    assert_eq!(all[0].end, End::CutShort(Cutoff::ServerShutdown), "{all:?}");
    assert!(all[0].counters.written > 0);
    assert_eq!(all[0].status().as_u16(), 202, "the status that was sent");
    assert_eq!(all[0].cause(), Some("server_shutdown"));
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
async fn a_client_that_stops_reading_is_a_write_stall_after_write_timeout() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let config = Config::builder()
        .write_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let server = spawn(
        config,
        move |_request: Request, mut response: ResponseWriter| {
            let tx = tx.clone();
            async move {
                let start = Instant::now();
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
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    let mut stream = socket.connect(server.addr).await.unwrap();
    stream.write_all(&get("/")).await.unwrap();
    // Never read.
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
    let config = Config::builder()
        .body_read_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let server = spawn(
        config,
        move |mut request: Request, _response: ResponseWriter| {
            let tx = tx.clone();
            async move {
                let start = Instant::now();
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
