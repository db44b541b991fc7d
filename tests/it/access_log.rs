//! The access log: one INFO line per request on target `hangup::access`,
//! 499 for a client gone before the response completed, and never a
//! warning or error for a client that hung up.

use std::time::Duration;

use hangup::{Request, ResponseWriter};
use tokio::io::AsyncWriteExt;

use crate::support::*;

/// `#[tokio::test]` runs every task of the test on this thread, so a
/// thread-local subscriber sees the server's events too.
#[tokio::test]
async fn aborted_download_is_one_info_line_with_499_and_acked_bytes() {
    let (capture, _guard) = Capture::install();
    let server = spawn_default(|_r: Request, mut w: ResponseWriter| async move {
        for _ in 0..64 {
            w.write_all(&vec![b'd'; 1 << 20]).await?;
        }
        Ok(())
    })
    .await;

    // A complete exchange first: status 200, acked == written.
    let raw = raw_exchange(
        server.addr,
        b"HEAD / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    // Its line is in before the next exchange starts, so the lines come in
    // this order.
    capture.wait_for_access_lines(1).await;
    // Then a download the client resets once it stalled, never reading.
    let written_before = server.metrics.snapshot().bytes_written;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    let mut stream = socket.connect(server.addr).await.unwrap();
    stream.write_all(&get("/download")).await.unwrap();
    until_stalled(&server.metrics, &stream, written_before).await;
    let std = stream.into_std().unwrap();
    socket2::SockRef::from(&std)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(std);

    let lines = capture.wait_for_access_lines(2).await;
    assert_eq!(lines.len(), 2, "{lines:#?}");
    let complete = &lines[0];
    assert_eq!(complete.level, tracing::Level::INFO);
    assert_eq!(complete.fields["status"], "200");
    assert_eq!(complete.fields["complete"], "true");
    assert_eq!(complete.fields["written"], raw.len().to_string());
    assert_eq!(complete.fields["acked"], raw.len().to_string());
    assert!(
        !complete.fields.contains_key("cause"),
        "no hang-up: {complete:#?}"
    );

    let aborted = &lines[1];
    assert_eq!(aborted.level, tracing::Level::INFO);
    assert_eq!(aborted.fields["status"], "499");
    assert_eq!(aborted.fields["intended_status"], "200");
    assert_eq!(aborted.fields["complete"], "false");
    assert_eq!(aborted.fields["target"], "/download");
    // The watch sees the RST while the handler is blocked in a write, or
    // the write fails first: either way the phase is "sending".
    assert!(
        ["reset", "write_failed"].contains(&aborted.fields["cause"].as_str()),
        "{aborted:#?}"
    );
    assert_eq!(aborted.fields["phase"], "sending");
    let written: u64 = aborted.fields["written"].parse().unwrap();
    let acked: u64 = aborted.fields["acked"].parse().unwrap();
    assert!(
        0 < acked && acked < written,
        "acked {acked} written {written}"
    );

    let events = capture.0.lock().unwrap();
    let loud: Vec<&Event> = events
        .iter()
        .filter(|e| e.target.starts_with("hangup") && e.level <= tracing::Level::WARN)
        .collect();
    assert!(
        loud.is_empty(),
        "client hang-ups logged as warnings or errors: {loud:#?}"
    );
}

#[tokio::test]
async fn response_cut_short_by_the_handler_is_logged_incomplete_with_the_server_s_cause() {
    // 1. The handler commits a chunked response, then fails.
    // 2. The client is still there and sees a body without its last chunk.
    // 3. The access line says complete=false, the status sent (not 499),
    //    and why: the handler failed. No phase: it is not a hang-up.
    let (capture, _guard) = Capture::install();
    let server = spawn_default(|_r: Request, mut w: ResponseWriter| async move {
        w.write_all(b"partial").await?;
        w.flush().await?;
        Err(hangup::Error::Io(std::io::Error::other("disk went away")))
    })
    .await;
    let raw = raw_exchange(server.addr, &get("/")).await;
    let response = &parse_responses(&raw, &[false])[0];
    assert_eq!(response.body, b"partial");
    assert!(!response.complete, "the last chunk must be missing");
    let lines = capture.wait_for_access_lines(1).await;
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert_eq!(lines[0].fields["complete"], "false");
    assert_eq!(lines[0].fields["status"], "200", "{lines:#?}");
    assert_eq!(lines[0].fields["cause"], "handler_failed", "{lines:#?}");
    assert!(!lines[0].fields.contains_key("phase"), "{lines:#?}");
}

/// A handler's panic: the client gets a 500, and the error line names the
/// request (method, target) and the panic's message, escaped (a message
/// may quote what the client sent).
#[tokio::test]
async fn a_panic_is_logged_with_its_request_and_its_message_escaped() {
    let (capture, _guard) = Capture::install();
    let server = spawn_default(|request: Request, _w: ResponseWriter| async move {
        panic!("no route for {}\nsecond line", request.path());
    })
    .await;
    let raw = raw_exchange(server.addr, &get("/missing?q=1")).await;
    assert!(raw.starts_with(b"HTTP/1.1 500 "), "{raw:?}");
    capture.wait_for_access_lines(1).await;
    let events = capture.0.lock().unwrap().clone();
    let panics: Vec<_> = events
        .iter()
        .filter(|e| {
            e.fields
                .get("message")
                .is_some_and(|m| m == "handler panicked")
        })
        .collect();
    assert_eq!(panics.len(), 1, "{events:#?}");
    let line = &panics[0];
    assert_eq!(line.level, tracing::Level::ERROR);
    assert_eq!(line.fields["method"], "GET");
    assert_eq!(line.fields["target"], "/missing?q=1");
    // Escaped as every logged value is: spaces too (see `hangup::Escaped`).
    assert_eq!(
        line.fields["panic"],
        "no\\x20route\\x20for\\x20/missing\\x0asecond\\x20line"
    );
}
