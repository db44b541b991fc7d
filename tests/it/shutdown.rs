//! Graceful shutdown: idle and parked connections close at once, a request
//! in flight finishes within the grace period and is cut off after it,
//! and `run` returns once every connection is gone.

use std::time::{Duration, Instant};

use hangup::{Request, ResponseWriter};

use crate::support::*;

#[tokio::test]
async fn shutdown_closes_an_idle_keep_alive_connection_at_once() {
    let mut server = spawn_default(path_handler).await;
    let mut stream = connect(server.addr).await;
    send(&mut stream, &get("/")).await;
    assert_eq!(read_response(&mut stream, false).await.status, 200);

    let started = Instant::now();
    server.shutdown.shutdown(Duration::from_secs(5));
    let (bytes, _end) = read_until_end_within(&mut stream, Duration::from_secs(1)).await;
    assert!(bytes.is_empty(), "{:?}", String::from_utf8_lossy(&bytes));
    let task = server.task.take().unwrap();
    tokio::time::timeout(Duration::from_secs(1), task)
        .await
        .expect("run did not return promptly with only idle connections")
        .unwrap()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
}

/// A server whose handler, once started, waits `delay` (it is still
/// running when the test shuts the server down) and then writes `body`;
/// returned with a connection whose request is in that handler.
async fn in_flight(delay: Duration, body: &'static [u8]) -> (TestServer, tokio::net::TcpStream) {
    let started = Signal::new();
    let handler_started = started.clone();
    let server = spawn_default(move |_req: Request, mut res: ResponseWriter| {
        let started = handler_started.clone();
        async move {
            started.fire();
            tokio::time::sleep(delay).await;
            res.write_all(body).await
        }
    })
    .await;
    let mut stream = connect(server.addr).await;
    send(&mut stream, &get("/in-flight")).await;
    started.wait("the handler started").await;
    (server, stream)
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish() {
    let (mut server, mut stream) = in_flight(Duration::from_millis(300), b"finished").await;
    server.shutdown.shutdown(Duration::from_secs(5));
    let task = server.task.take().unwrap();

    let (bytes, end) = read_until_end(&mut stream).await;
    assert_clean_eof(&end, "in-flight at shutdown");
    let responses = parse_responses(&bytes, &[false]);
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].status, 200);
    assert_eq!(responses[0].body, b"finished");
    // Committed after the shutdown began: the head says the connection
    // closes, so a client does not send its next request into it.
    assert_eq!(responses[0].header("connection"), Some("close"));
    // The client keeps its socket open: the shutdown does not wait for it
    // (a lingering close would, for `linger_timeout`, 2 s).
    tokio::time::timeout(Duration::from_secs(1), task)
        .await
        .expect("run did not return after the last request finished")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn shutdown_cuts_off_a_handler_when_the_grace_runs_out() {
    let (mut server, mut stream) = in_flight(Duration::from_secs(10), b"too late").await;
    // Real time, a short grace: the cut-off ends in socket closes, and a
    // paused clock could jump past the test's bounds before they are read.
    let started = Instant::now();
    server.shutdown.shutdown(Duration::from_millis(200));
    let task = server.task.take().unwrap();
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("run did not return within 2 s of a 200 ms grace")
        .unwrap()
        .unwrap();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(150),
        "run returned after {elapsed:?}, before the grace ran out"
    );
    let (bytes, _end) = read_until_end_within(&mut stream, Duration::from_secs(1)).await;
    assert!(
        !bytes.windows(8).any(|w| w == b"too late"),
        "{:?}",
        String::from_utf8_lossy(&bytes)
    );
}

#[tokio::test]
async fn shutdown_closes_a_parked_connection_at_once() {
    let mut server = spawn(parking_after(Duration::from_millis(20)), path_handler).await;
    let mut stream = parked_connection(&server).await;

    server.shutdown.shutdown(Duration::from_secs(5));
    let (bytes, end) = read_until_end_within(&mut stream, Duration::from_secs(1)).await;
    assert!(bytes.is_empty(), "{:?}", String::from_utf8_lossy(&bytes));
    assert_clean_eof(&end, "parked at shutdown");
    let task = server.task.take().unwrap();
    tokio::time::timeout(Duration::from_secs(1), task)
        .await
        .expect("run did not return promptly with only a parked connection")
        .unwrap()
        .unwrap();
    let after = server.metrics.snapshot();
    assert_eq!((after.open_connections, after.parked_connections), (0, 0));
}

/// Connections parking just as the server starts draining all close at
/// once, and `run` returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connections_parking_as_the_drain_starts_all_close() {
    for round in 0..10u64 {
        let server = spawn(parking_after(Duration::from_millis(10)), path_handler).await;
        let metrics = server.metrics.clone();
        let mut streams = Vec::new();
        for i in 0..24 {
            let mut stream = connect(server.addr).await;
            send(&mut stream, &get(&format!("/{i}"))).await;
            assert_eq!(read_response(&mut stream, false).await.status, 200);
            streams.push(stream);
        }
        // Around the release timer: some have parked, some are parking.
        tokio::time::sleep(Duration::from_micros(8_000 + round * 400)).await;
        server.stop(Duration::from_secs(5)).await;
        for stream in &mut streams {
            assert!(
                closes_within(stream, Duration::from_secs(1)).await,
                "round {round}: a connection was left open"
            );
        }
        let after = metrics.snapshot();
        assert_eq!(
            (after.open_connections, after.parked_connections),
            (0, 0),
            "round {round}"
        );
    }
}
