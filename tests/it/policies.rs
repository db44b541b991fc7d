//! Hang-up policies: what a FIN means (`on_fin`: notify, abort, ignore),
//! whether a hang-up cancels the handler (`on_hangup`), and a handler
//! choosing either for its own request. Under notify a half-closing
//! client still gets its whole response.

use std::time::{Duration, Instant};

use hangup::{Config, HangupCause, OnFin, OnHangup, Request, ResponseWriter};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use crate::support::*;

/// Reports "dropped" when the handler future holding it is dropped.
struct Guard(mpsc::UnboundedSender<&'static str>);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.send("dropped");
    }
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
    let (handler, mut waiting) = waiting_handler();
    let config = Config::builder().on_fin(OnFin::Abort).build().unwrap();
    let server = spawn(config, handler).await;
    let mut stream = connect(server.addr).await;
    stream.write_all(&get("/")).await.unwrap();
    stream.shutdown().await.unwrap();
    let seen = waiting.next_seen().await;
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
    let (tx, mut rx) = mpsc::unbounded_channel();
    let outcomes = Outcomes::default();
    let config = outcomes
        .builder()
        .on_hangup(OnHangup::Cancel)
        .build()
        .unwrap();
    let started = Signal::new();
    let handler_started = started.clone();
    let server = spawn(
        config,
        move |_request: Request, _response: ResponseWriter| {
            let guard = Guard(tx.clone());
            let started = handler_started.clone();
            async move {
                let _guard = guard;
                started.fire();
                // Still running when the client leaves: only the
                // cancellation ends it in time.
                tokio::time::sleep(HANDLER_WAIT).await;
                Ok(())
            }
        },
    )
    .await;
    let mut stream = connect(server.addr).await;
    stream.write_all(&get("/")).await.unwrap();
    started.wait("the handler started").await;
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
    let (tx, mut rx) = mpsc::unbounded_channel();
    let chosen = Signal::new();
    let handler_chose = chosen.clone();
    let server = spawn_default(move |request: Request, _response: ResponseWriter| {
        let guard = Guard(tx.clone());
        let chosen = handler_chose.clone();
        async move {
            let _guard = guard;
            request.set_on_hangup(OnHangup::Cancel);
            chosen.fire();
            // Still running when the client leaves: only the
            // cancellation ends it in time.
            tokio::time::sleep(HANDLER_WAIT).await;
            Ok(())
        }
    })
    .await;
    let mut stream = connect(server.addr).await;
    stream.write_all(&get("/")).await.unwrap();
    chosen.wait("the handler chose Cancel").await;
    let start = Instant::now();
    reset(stream);
    assert_eq!(
        tokio::time::timeout(LIMIT, rx.recv()).await.unwrap(),
        Some("dropped")
    );
    assert!(start.elapsed() < Duration::from_secs(2));
}
