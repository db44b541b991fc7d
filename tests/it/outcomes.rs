//! How exchanges and connections end, as the outcome (and the access log)
//! tells it: a complete response is complete even when the client
//! half-closed; a client that left is a hang-up (499); a response the
//! server cut short (a forced shutdown too) says why, with the status it
//! sent; a client that left before its head was complete leaves a
//! departure record; and an outcome's duration counts a pipelined
//! request's wait.

use std::time::{Duration, Instant};

use hangup::http::HeaderValue;
use hangup::http::StatusCode;
use hangup::http::header::CONTENT_LENGTH;
use hangup::{Config, Cutoff, End, HangupCause, Request, ResponseWriter};
use tokio::io::AsyncWriteExt;

use crate::support::*;

/// A response larger than one socket buffer's worth of a fast ACK, so the
/// outcome must wait for the client's acknowledgements to read whole.
const LARGE: usize = 256 * 1024;

async fn large(_request: Request, mut response: ResponseWriter) -> hangup::Result<()> {
    response.write_all(&vec![b'x'; LARGE]).await
}

/// 1. The client sends its request and shuts down its write side (FIN),
///    as `nc -N` and HTTP/1.0-style clients do.
/// 2. It reads the whole response.
/// 3. The outcome is complete, 200, every byte acknowledged, no hang-up:
///    the FIN is a fact of its own (`peer_closed_after`), not a cause.
#[tokio::test]
async fn a_half_closing_client_that_reads_everything_is_complete() {
    let outcomes = Outcomes::default();
    let server = spawn(outcomes.builder().build().unwrap(), large).await;
    let mut stream = connect(server.addr).await;
    send(&mut stream, &get("/large")).await;
    stream.shutdown().await.unwrap();
    let (bytes, end) = read_until_end(&mut stream).await;
    assert!(matches!(end, crate::support::End::Eof), "{end:?}");
    let response = &parse_responses(&bytes, &[false])[0];
    assert_eq!((response.status, response.body.len()), (200, LARGE));

    let outcome = &outcomes.wait_for(1).await[0];
    assert_eq!(outcome.end, End::Complete, "{outcome:?}");
    assert_eq!(outcome.status(), StatusCode::OK);
    assert_eq!(outcome.counters.written, bytes.len() as u64, "{outcome:?}");
    assert_eq!(
        outcome.counters.acked,
        Some(outcome.counters.written),
        "{outcome:?}"
    );
    assert!(!outcome.in_flight, "{outcome:?}");
    assert!(outcome.peer_closed_after.is_some(), "{outcome:?}");
    assert_eq!(outcome.cause(), None);
    assert_eq!(
        server
            .metrics
            .snapshot()
            .hangups_of(HangupCause::PeerClosed),
        0
    );
}

/// Every way the server can cut a response short is named, and none is a
/// 499: the client did not leave.
#[tokio::test]
async fn a_response_the_server_cuts_short_says_why_with_the_status_it_sent() {
    let outcomes = Outcomes::default();
    let server = spawn(
        outcomes.builder().build().unwrap(),
        |request: Request, mut response: ResponseWriter| async move {
            response.set_status(StatusCode::ACCEPTED)?;
            match request.path() {
                "/panic" => {
                    response.write_all(b"partial").await?;
                    response.flush().await?;
                    panic!("after the head");
                }
                "/short" => {
                    response.insert_header(CONTENT_LENGTH, HeaderValue::from_static("10"))?;
                    response.write_all(b"five!").await
                }
                "/abort" => {
                    response.write_all(b"partial").await?;
                    response.flush().await?;
                    response.abort();
                    Ok(())
                }
                _ => {
                    response.write_all(b"partial").await?;
                    response.flush().await?;
                    Err(hangup::Error::Io(std::io::Error::other("disk went away")))
                }
            }
        },
    )
    .await;
    let cases = [
        ("/panic", Cutoff::HandlerPanicked),
        ("/short", Cutoff::ShorterThanDeclared),
        ("/abort", Cutoff::Aborted),
        ("/error", Cutoff::HandlerFailed),
    ];
    for (n, (path, cutoff)) in cases.into_iter().enumerate() {
        let mut stream = connect(server.addr).await;
        send(&mut stream, &get(path)).await;
        let (bytes, _end) = read_until_end(&mut stream).await;
        assert!(bytes.starts_with(b"HTTP/1.1 202 "), "{path}: {bytes:?}");
        let all = outcomes.wait_for(n + 1).await;
        let outcome = all.iter().find(|o| o.uri == path).expect("its outcome");
        assert_eq!(outcome.end, End::CutShort(cutoff), "{path}: {outcome:?}");
        assert_eq!(outcome.status(), StatusCode::ACCEPTED, "{path}");
        assert_eq!(outcome.cause(), Some(cutoff.as_str()));
        assert!(outcome.counters.written > 0, "{path}: {outcome:?}");
    }
    let metrics = server.metrics.snapshot();
    for (_, cutoff) in cases {
        assert_eq!(metrics.cutoffs_of(cutoff), 1, "{metrics:?}");
    }
    assert!(metrics.hangups.iter().all(|(_, n)| *n == 0), "{metrics:?}");
}

/// 1. The client pipelines `/a` and `/abort`.
/// 2. `/a`'s response is complete, held back for the batch.
/// 3. `/abort`'s handler resets the connection.
/// 4. `/a`'s response still arrives whole before the reset, and its
///    outcome says so: the reset is `/abort`'s, not `/a`'s.
#[tokio::test]
async fn an_abort_keeps_the_responses_held_back_for_earlier_requests() {
    let outcomes = Outcomes::default();
    let server = spawn(
        outcomes.builder().build().unwrap(),
        |request: Request, mut response: ResponseWriter| async move {
            if request.path() == "/abort" {
                response.abort();
                return Ok(());
            }
            response.write_all(b"earlier").await
        },
    )
    .await;
    let mut stream = connect(server.addr).await;
    let mut two = get("/a");
    two.extend_from_slice(&get("/abort"));
    send(&mut stream, &two).await;
    let (bytes, _end) = read_until_end(&mut stream).await;
    let responses = parse_responses(&bytes, &[false]);
    assert_eq!(responses.len(), 1, "{:?}", String::from_utf8_lossy(&bytes));
    assert_eq!(
        (responses[0].status, responses[0].text().as_str()),
        (200, "earlier")
    );

    let all = outcomes.wait_for(2).await;
    let a = all.iter().find(|o| o.uri == "/a").expect("/a's outcome");
    assert_eq!(a.end, End::Complete, "{a:?}");
    assert_eq!(a.counters.written, bytes.len() as u64, "{a:?}");
    let aborted = all.iter().find(|o| o.uri == "/abort").expect("its outcome");
    assert_eq!(aborted.end, End::CutShort(Cutoff::Aborted), "{aborted:?}");
}

/// How a client left before its head was complete.
#[derive(Debug, Clone, Copy)]
enum Leave {
    /// Connects, sends nothing, closes.
    Silent,
    /// Sends part of a head, closes (FIN).
    MidHead,
    /// Sends part of a head, resets.
    MidHeadReset,
    /// Sends part of a head and stops: `header_read_timeout` runs out.
    Stalled,
}

/// Each client that leaves before its head is complete gets one record: a
/// metric by cause and one access-log line naming its address, the phase,
/// the cause and the bytes it sent. A keep-alive client closing between
/// requests gets none: that is how connections end.
#[tokio::test]
async fn a_client_that_leaves_before_its_head_is_complete_leaves_one_record() {
    let (capture, _guard) = Capture::install();
    // Real time, a short timeout: the server counts `header_read_timeout`
    // on `std::time::Instant`, which a paused clock does not move.
    let config = Config::builder()
        .header_read_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let server = spawn(config, |_r: Request, mut w: ResponseWriter| async move {
        w.write_all(b"ok").await
    })
    .await;

    // A keep-alive client that was served, then closes: no record.
    let mut stream = connect(server.addr).await;
    send(&mut stream, &get("/")).await;
    read_response(&mut stream, false).await;
    drop(stream);

    let partial = b"GET /slow HT";
    let cases = [
        (Leave::Silent, HangupCause::PeerClosed, 0),
        (Leave::MidHead, HangupCause::PeerClosed, partial.len()),
        (Leave::MidHeadReset, HangupCause::Reset, partial.len()),
        (Leave::Stalled, HangupCause::ReadTimeout, partial.len()),
    ];
    for (n, (how, cause, received)) in cases.into_iter().enumerate() {
        let mut stream = connect(server.addr).await;
        let client = stream.local_addr().unwrap();
        if !matches!(how, Leave::Silent) {
            send(&mut stream, partial).await;
        }
        // Kept open until its record is in: a stalled client must not
        // leave before its timeout.
        let mut kept = None;
        match how {
            Leave::Silent | Leave::MidHead => stream.shutdown().await.unwrap(),
            Leave::MidHeadReset => {
                // Ordered: the server reads the partial head before the
                // RST, so the record counts the bytes it received.
                until_server_read(&stream).await;
                reset(stream);
            }
            Leave::Stalled => kept = Some(stream),
        }
        let lines = capture.wait_for_departures(n + 1).await;
        assert_eq!(lines.len(), n + 1, "{how:?}: {lines:#?}");
        let line = &lines[n].fields;
        assert_eq!(line["remote_addr"], client.to_string(), "{how:?}");
        assert_eq!(line["phase"], "reading_head", "{how:?}");
        assert_eq!(line["cause"], cause.as_str(), "{how:?}");
        assert_eq!(line["received"], received.to_string(), "{how:?}");
        drop(kept);
    }
    let metrics = server.metrics.snapshot();
    assert_eq!(
        metrics.departures_of(HangupCause::PeerClosed),
        2,
        "{metrics:?}"
    );
    assert_eq!(metrics.departures_of(HangupCause::Reset), 1, "{metrics:?}");
    assert_eq!(
        metrics.departures_of(HangupCause::ReadTimeout),
        1,
        "{metrics:?}"
    );
    assert_eq!((metrics.requests, metrics.outcomes), (1, 1), "{metrics:?}");
    assert!(
        capture
            .0
            .lock()
            .unwrap()
            .iter()
            .all(|e| e.level > tracing::Level::WARN),
        "departures are normal traffic"
    );
}

#[tokio::test]
async fn a_forced_shutdown_mid_handler_still_yields_exactly_one_outcome() {
    // Regression: with an outcome consumer, dropping a connection task
    // mid-exchange read the lent-out writer state and panicked.
    let outcomes = Outcomes::default();
    let config = outcomes.builder().build().unwrap();
    let flushed = Signal::new();
    let handler_flushed = flushed.clone();
    let server = spawn(
        config,
        move |_request: Request, mut response: ResponseWriter| {
            let flushed = handler_flushed.clone();
            async move {
                response.set_status(StatusCode::ACCEPTED)?;
                response.write_all(b"partial").await?;
                response.flush().await?;
                flushed.fire();
                // Still running when the grace runs out.
                tokio::time::sleep(HANDLER_WAIT).await;
                Ok(())
            }
        },
    )
    .await;
    let mut stream = connect(server.addr).await;
    stream.write_all(&get("/")).await.unwrap();
    flushed.wait("the handler flushed its head").await;
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

/// The server cut exchanges short before any byte of their heads went
/// out (a forced shutdown, an abort): the client got no answer, so the
/// status reported is 444 (nginx's "closed without a response"), not the
/// 200 that was never sent; a `100 Continue` sent before does not count
/// as an answer.
#[tokio::test]
async fn an_exchange_cut_short_before_its_head_reports_444() {
    let outcomes = Outcomes::default();
    let started = Signal::new();
    let handler_started = started.clone();
    let server = spawn(
        outcomes.builder().build().unwrap(),
        move |mut request: Request, response: ResponseWriter| {
            let started = handler_started.clone();
            async move {
                if request.path() == "/abort" {
                    response.abort();
                    return Ok(());
                }
                // Reading the body sends the `100 Continue`.
                let body = request.body_mut();
                let _ = body.chunk().await?;
                started.fire();
                tokio::time::sleep(HANDLER_WAIT).await;
                Ok(())
            }
        },
    )
    .await;
    let _ = raw_exchange(server.addr, &get("/abort")).await;
    let aborted = outcomes.wait_for(1).await;
    assert_eq!(
        aborted[0].end,
        End::CutShort(Cutoff::Aborted),
        "{aborted:?}"
    );
    assert_eq!(aborted[0].status().as_u16(), 444, "{aborted:?}");

    let mut stream = connect(server.addr).await;
    stream
        .write_all(
            b"PUT /slow HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n",
        )
        .await
        .unwrap();
    let interim = read_exact_bytes(&mut stream, 25).await;
    assert_eq!(&interim[..], b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"12345").await.unwrap();
    started.wait("the handler read part of the body").await;
    server.stop(Duration::from_millis(100)).await;
    let all = outcomes.wait_for(2).await;
    let cut = all.iter().find(|o| o.uri == "/slow").expect("its outcome");
    assert_eq!(cut.end, End::CutShort(Cutoff::ServerShutdown), "{cut:?}");
    assert_eq!(cut.counters.written, 25, "the 100 Continue only: {cut:?}");
    assert_eq!(cut.status().as_u16(), 444, "{cut:?}");
}

/// Writes the request path as the body, after 300 ms for `/slow`.
async fn slow_path_handler(req: Request, mut res: ResponseWriter) -> hangup::Result<()> {
    if req.uri().path() == "/slow" {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    res.write_all(req.uri().path().as_bytes()).await
}

/// `Outcome::duration` counts from the socket read that completed the
/// request's head: a pipelined request that waited behind a slow one
/// counts its wait.
#[tokio::test]
async fn a_pipelined_request_s_duration_includes_its_wait_behind_earlier_ones() {
    let outcomes = Outcomes::default();
    let server = spawn(outcomes.builder().build().unwrap(), slow_path_handler).await;
    let mut stream = connect(server.addr).await;
    let mut batch = get("/slow");
    batch.extend_from_slice(b"GET /next HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    send(&mut stream, &batch).await;
    let raw = read_to_close(&mut stream).await;
    assert_eq!(parse_responses(&raw, &[false; 2]).len(), 2);
    assert!(metrics_reach(&server.metrics, |m| m.outcomes == 2).await);
    let outcomes = outcomes.wait_for(2).await;
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
