//! Idle connections park: past `idle_release_after` a connection frees its
//! buffers and hands its socket to the server's parking lot (no task of
//! its own), wakes when its client sends or leaves, is served as before,
//! and still closes at its own idle deadline.
//!
//! The idle-deadline tests run in real time with short timeouts: the
//! server computes idle deadlines from `std::time::Instant`, which a
//! paused tokio clock does not move, and their last event is a socket
//! close that a jumping clock could outrun.

use std::time::{Duration, Instant};

use hangup::{Config, Request, ResponseWriter};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

/// Past `idle_release_after` an idle connection parks (its task ends, its
/// socket waits in the server's parking lot); the next request on it is
/// served as usual, with its outcome and byte counters.
#[tokio::test]
async fn an_idle_connection_parks_and_serves_its_next_request() {
    let outcomes = Outcomes::default();
    let config = outcomes
        .builder()
        .idle_release_after(Duration::from_millis(30))
        .build()
        .unwrap();
    let server = spawn(config, path_handler).await;
    let mut stream = connect(server.addr).await;
    send(&mut stream, &get("/first")).await;
    assert_eq!(read_response(&mut stream, false).await.text(), "/first");
    assert!(
        metrics_reach(&server.metrics, |m| m.parked_connections == 1).await,
        "the idle connection did not park: {:?}",
        server.metrics.snapshot()
    );
    assert_eq!(server.metrics.snapshot().open_connections, 1);

    send(&mut stream, &get("/second")).await;
    let response = read_response(&mut stream, false).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "/second");
    assert!(
        metrics_reach(&server.metrics, |m| m.outcomes == 2).await,
        "{:?}",
        server.metrics.snapshot()
    );
    let outcomes = outcomes.wait_for(2).await;
    let second = &outcomes[1];
    assert_eq!(second.uri, "/second");
    assert!(second.is_complete(), "{second:?}");
    assert!(second.counters.written > 0, "{second:?}");
    assert_eq!(
        second.counters.acked,
        Some(second.counters.written),
        "{second:?}"
    );
    assert_eq!(server.metrics.snapshot().open_connections, 1);
}

#[tokio::test]
async fn a_connection_that_released_its_buffers_serves_the_next_requests() {
    for release_after in [Duration::ZERO, Duration::from_millis(50)] {
        let config = Config::builder()
            .idle_release_after(release_after)
            .build()
            .unwrap();
        let server = spawn(
            config,
            |mut request: Request, mut response: ResponseWriter| async move {
                let body = request.body_mut().read_all(1 << 20).await?;
                response.write_all(request.uri().path().as_bytes()).await?;
                response.write_all(&body).await
            },
        )
        .await;
        let mut stream = connect(server.addr).await;
        for round in 0..3 {
            // Idle past the release (a fresh connection has nothing to
            // release), then a pipelined pair with a body.
            if round > 0 {
                assert!(
                    metrics_reach(&server.metrics, |m| m.parked_connections == 1).await,
                    "{release_after:?}: did not release and park after round {}",
                    round - 1
                );
            }
            let mut two =
                format!("POST /a{round} HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nxyz")
                    .into_bytes();
            two.extend_from_slice(&get(&format!("/b{round}")));
            stream.write_all(&two).await.unwrap();
            let mut bytes = Vec::new();
            let mut buf = [0u8; 4096];
            while parse_responses_prefix(&bytes) < 2 {
                let n = tokio::time::timeout(LIMIT, stream.read(&mut buf))
                    .await
                    .expect("responses in time")
                    .unwrap();
                assert!(n > 0, "closed early");
                bytes.extend_from_slice(&buf[..n]);
            }
            let bodies: Vec<String> = parse_responses(&bytes, &[])
                .iter()
                .map(|r| r.text())
                .collect();
            assert_eq!(
                bodies,
                [format!("/a{round}xyz"), format!("/b{round}")],
                "{release_after:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_parked_connection_is_closed_after_idle_timeout() {
    let config = Config::builder()
        .idle_release_after(Duration::from_millis(20))
        .idle_timeout(Duration::from_millis(400))
        .build()
        .unwrap();
    let server = spawn(config, path_handler).await;
    let mut stream = connect(server.addr).await;
    send(&mut stream, &get("/")).await;
    assert_eq!(read_response(&mut stream, false).await.status, 200);
    let idle_since = Instant::now();
    assert!(metrics_reach(&server.metrics, |m| m.parked_connections == 1).await);
    assert!(
        closes_within(&mut stream, Duration::from_secs(3)).await,
        "a parked connection outlived idle_timeout"
    );
    let waited = idle_since.elapsed();
    assert!(
        waited >= Duration::from_millis(350),
        "closed after {waited:?}: the idle timeout restarted or shrank when it parked"
    );
    assert!(
        metrics_reach(&server.metrics, |m| m.open_connections == 0
            && m.parked_connections == 0)
        .await
    );
}

/// A client that leaves while its connection is parked, by closing it
/// (`rst` false) or resetting it, frees it at once: the parking lot sees
/// the close as it would see a request.
async fn assert_leaving_a_parked_connection_frees_it(rst: bool) {
    let server = spawn(parking_after(Duration::from_millis(20)), path_handler).await;
    let stream = parked_connection(&server).await;
    if rst {
        reset(stream);
    } else {
        drop(stream);
    }
    assert!(
        metrics_reach(&server.metrics, |m| m.open_connections == 0
            && m.parked_connections == 0)
        .await,
        "reset {rst}: {:?}",
        server.metrics.snapshot()
    );
}

#[tokio::test]
async fn a_client_closing_a_parked_connection_frees_it() {
    assert_leaving_a_parked_connection_frees_it(false).await;
}

#[tokio::test]
async fn a_client_resetting_a_parked_connection_frees_it() {
    assert_leaving_a_parked_connection_frees_it(true).await;
}

/// With `idle_release_after` zero a connection parks at every wait, and
/// keeps serving: pipelined and sequential requests alike.
#[tokio::test]
async fn parking_at_every_wait_still_serves_every_request() {
    let server = spawn(parking_after(Duration::ZERO), path_handler).await;
    let mut stream = connect(server.addr).await;
    for i in 0..20 {
        let path = format!("/{i}");
        send(&mut stream, &get(&path)).await;
        assert_eq!(read_response(&mut stream, false).await.text(), path);
    }
    let mut batch = Vec::new();
    for i in 0..4 {
        batch.extend_from_slice(&get(&format!("/p{i}")));
    }
    batch.extend_from_slice(b"GET /p4 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    send(&mut stream, &batch).await;
    let raw = read_to_close(&mut stream).await;
    let texts: Vec<String> = parse_responses(&raw, &[false; 5])
        .iter()
        .map(|response| response.text())
        .collect();
    assert_eq!(texts, ["/p0", "/p1", "/p2", "/p3", "/p4"]);
    assert_eq!(server.metrics.snapshot().requests, 25);
}

/// A request that arrives while the previous handler runs is seen by the
/// socket watch, not read: the connection must not park on top of it
/// and wait for the idle timeout.
#[tokio::test]
async fn a_request_sent_during_the_previous_handler_is_served_with_parking_at_every_wait() {
    let config = Config::builder()
        .idle_release_after(Duration::ZERO)
        .idle_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let started = Signal::new();
    let handler_started = started.clone();
    let server = spawn(config, move |req: Request, mut res: ResponseWriter| {
        let started = handler_started.clone();
        async move {
            if req.path() == "/slow" {
                started.fire();
                // Still running when `/next` arrives, long enough for the
                // socket watch to see it.
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            res.write_all(req.path().as_bytes()).await
        }
    })
    .await;
    let mut stream = connect(server.addr).await;
    send(&mut stream, &get("/slow")).await;
    started.wait("the /slow handler started").await;
    send(
        &mut stream,
        b"GET /next HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    let raw = tokio::time::timeout(Duration::from_secs(5), read_to_close(&mut stream))
        .await
        .expect("the second request waited for the idle timeout");
    let texts: Vec<String> = parse_responses(&raw, &[false; 2])
        .iter()
        .map(|response| response.text())
        .collect();
    assert_eq!(texts, ["/slow", "/next"]);
}

/// A resumed connection is no longer counted as parked while it serves.
#[tokio::test]
async fn a_resumed_connection_is_not_counted_as_parked() {
    let (started, finish) = (Signal::new(), Signal::new());
    let (handler_started, handler_may_finish) = (started.clone(), finish.clone());
    let server = spawn(
        parking_after(Duration::from_millis(20)),
        move |req: Request, mut res: ResponseWriter| {
            let (started, may_finish) = (handler_started.clone(), handler_may_finish.clone());
            async move {
                if req.path() == "/slow" {
                    started.fire();
                    may_finish.wait("the test's go-ahead").await;
                }
                res.write_all(req.path().as_bytes()).await
            }
        },
    )
    .await;
    let mut stream = parked_connection(&server).await;
    send(&mut stream, &get("/slow")).await;
    started
        .wait("the resumed connection's handler started")
        .await;
    let during = server.metrics.snapshot();
    assert_eq!(
        (during.open_connections, during.parked_connections),
        (1, 0),
        "while the resumed connection runs its handler"
    );
    finish.fire();
    assert_eq!(read_response(&mut stream, false).await.text(), "/slow");
}

/// Parked connections hold no task of their own (one attendant watches
/// them all), wake one by one as their clients send, and park again.
#[tokio::test]
async fn parked_connections_hold_no_task_and_serve_again() {
    const CONNECTIONS: usize = 40;
    let server = spawn(parking_after(Duration::from_millis(20)), path_handler).await;
    let tasks_before = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    let mut streams = Vec::new();
    for i in 0..CONNECTIONS {
        let mut stream = connect(server.addr).await;
        send(&mut stream, &get(&format!("/{i}"))).await;
        assert_eq!(read_response(&mut stream, false).await.status, 200);
        streams.push(stream);
    }
    let all_parked = |m: &hangup::MetricsSnapshot| m.parked_connections == CONNECTIONS as u64;
    assert!(
        metrics_reach(&server.metrics, all_parked).await,
        "{:?}",
        server.metrics.snapshot()
    );
    let tasks_parked = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    assert!(
        tasks_parked <= tasks_before + 1,
        "{tasks_parked} tasks with {CONNECTIONS} connections parked ({tasks_before} before any)"
    );
    // Every other one wakes, is served, and parks again.
    for (i, stream) in streams.iter_mut().enumerate().step_by(2) {
        let path = format!("/again/{i}");
        send(stream, &get(&path)).await;
        assert_eq!(read_response(stream, false).await.text(), path);
    }
    assert!(
        metrics_reach(&server.metrics, all_parked).await,
        "{:?}",
        server.metrics.snapshot()
    );
    assert_eq!(
        server.metrics.snapshot().requests,
        CONNECTIONS as u64 * 3 / 2
    );
}

/// Each parked connection closes at its own idle deadline, counted from
/// its own idle start, whatever else is parked.
#[tokio::test]
async fn parked_connections_close_at_their_own_idle_deadlines() {
    const IDLE: Duration = Duration::from_millis(600);
    let config = Config::builder()
        .idle_release_after(Duration::from_millis(20))
        .idle_timeout(IDLE)
        .build()
        .unwrap();
    let server = spawn(config, path_handler).await;
    let mut first = connect(server.addr).await;
    send(&mut first, &get("/")).await;
    assert_eq!(read_response(&mut first, false).await.status, 200);
    let first_idle = Instant::now();
    // The scenario: the second goes idle well after the first.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut second = connect(server.addr).await;
    send(&mut second, &get("/")).await;
    assert_eq!(read_response(&mut second, false).await.status, 200);
    let second_idle = Instant::now();
    assert!(metrics_reach(&server.metrics, |m| m.parked_connections == 2).await);

    assert!(closes_within(&mut first, Duration::from_secs(5)).await);
    let first_waited = first_idle.elapsed();
    assert!(
        first_waited >= IDLE - Duration::from_millis(50),
        "the first closed after {first_waited:?} idle"
    );
    // The second must outlive the first's deadline: check as long as its
    // own is still ahead (a loaded machine may have closed the first late).
    let second_left = IDLE.saturating_sub(second_idle.elapsed());
    if second_left > Duration::from_millis(100) {
        assert!(
            !closes_within(&mut second, second_left - Duration::from_millis(50)).await,
            "the second closed with the first, {:?} into its idle",
            second_idle.elapsed()
        );
    }
    assert!(closes_within(&mut second, Duration::from_secs(5)).await);
    let second_waited = second_idle.elapsed();
    assert!(
        second_waited >= IDLE - Duration::from_millis(50),
        "the second closed after {second_waited:?} idle"
    );
}

/// Connections that park at every wait, on several workers, with clients
/// pausing at random: every request is answered at once (a lost wake-up
/// would leave one waiting for the idle timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parking_and_resuming_under_churn_loses_no_request() {
    let server = spawn(parking_after(Duration::ZERO), path_handler).await;
    let mut clients = Vec::new();
    for client in 0..32u64 {
        let addr = server.addr;
        clients.push(tokio::spawn(async move {
            let mut stream = connect(addr).await;
            for i in 0..100u64 {
                let path = format!("/{client}/{i}");
                send(&mut stream, &get(&path)).await;
                let response =
                    tokio::time::timeout(Duration::from_secs(5), read_response(&mut stream, false))
                        .await
                        .unwrap_or_else(|_| panic!("{path}: no response in 5 s"));
                assert_eq!(response.text(), path);
                if (client + i) % 3 == 0 {
                    let pause = (client * 37 + i * 11) % 1500;
                    tokio::time::sleep(Duration::from_micros(pause)).await;
                }
            }
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
    assert_eq!(server.metrics.snapshot().requests, 3200);
    server.stop(Duration::from_secs(1)).await;
}
