//! Heap allocations on the request path, counted on the server's thread.
//!
//! A separate test binary: `allocation-counter` installs the global
//! allocator of the binary that uses it, and counts per thread. The server
//! runs on a current-thread runtime of its own thread, so the count is the
//! server's alone; the client is a blocking socket on the test's thread.
//!
//! The promise: once a keep-alive connection has served a request, the next
//! ones allocate nothing beyond what their handler asks for (the request
//! head's allocations are recycled, the buffers are reused).

use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use hangup::{Config, Handler, Request, ResponseWriter, Server};

const REQUEST: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n\r\n";
const BODY: &[u8] = b"Hello, World!";

/// Requests served before counting: the connection's buffers and the
/// recycled head reach their steady size.
const WARM_UP: usize = 10;
/// Requests served while counting.
const COUNTED: usize = 200;
/// Allowed while counting, for what happens per second rather than per
/// request: the `Date` value is formatted once per second (one `String`).
const PER_SECOND_ALLOWANCE: u64 = 3;

/// Serves `WARM_UP` then `COUNTED` requests on one keep-alive connection
/// with `handler`; returns the allocations the server's thread made while
/// serving the counted ones.
fn allocations_while_serving(handler: impl Handler) -> u64 {
    let (addr_tx, addr_rx) = mpsc::channel();
    let (warmed_tx, warmed_rx) = tokio::sync::oneshot::channel::<()>();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let server_thread = thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let mut config = Config::builder();
        // No buffer release while the client is between requests, however
        // slow the machine: released buffers are allocated again.
        config
            .idle_timeout(Duration::from_secs(60))
            .idle_release_after(Duration::from_secs(60));
        let server = runtime
            .block_on(Server::bind(
                "127.0.0.1:0",
                config.build().expect("config"),
                handler,
            ))
            .expect("bind");
        addr_tx
            .send(server.local_addr().expect("local_addr"))
            .unwrap();
        let shutdown = server.shutdown_handle();
        let task = runtime.spawn(server.run());
        // The server's tasks run only inside `block_on`, on this thread:
        // first until the warm-up is over, then, counted, until the rest is.
        let _ = runtime.block_on(warmed_rx);
        let counted = allocation_counter::measure(|| {
            let _ = runtime.block_on(done_rx);
        });
        shutdown.shutdown(Duration::ZERO);
        runtime
            .block_on(task)
            .expect("server task")
            .expect("server run");
        counted.count_total
    });

    let addr = addr_rx.recv().expect("the server's address");
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 4096];
    let mut exchange = |stream: &mut TcpStream| {
        stream.write_all(REQUEST).expect("write the request");
        let mut len = 0;
        // One response: its head, then a body of BODY's length.
        loop {
            let n = stream.read(&mut buf[len..]).expect("read the response");
            assert!(n > 0, "the server closed the connection");
            len += n;
            let text = &buf[..len];
            if let Some(end) = text.windows(4).position(|w| w == b"\r\n\r\n") {
                if len >= end + 4 + BODY.len() {
                    assert!(text.starts_with(b"HTTP/1.1 200 OK\r\n"));
                    assert_eq!(&text[end + 4..], BODY, "one response, whole");
                    return;
                }
            }
        }
    };
    for _ in 0..WARM_UP {
        exchange(&mut stream);
    }
    warmed_tx.send(()).unwrap();
    for _ in 0..COUNTED {
        exchange(&mut stream);
    }
    done_tx.send(()).unwrap();
    drop(stream);
    server_thread.join().expect("the server's thread")
}

async fn hello(request: Request, mut response: ResponseWriter) -> hangup::Result<()> {
    assert_eq!(request.path(), "/plaintext");
    response.write_all(BODY).await
}

#[test]
fn a_warm_keep_alive_connection_serves_requests_without_allocating() {
    let allocations = allocations_while_serving(hello);
    assert!(
        allocations <= PER_SECOND_ALLOWANCE,
        "{allocations} allocations for {COUNTED} requests"
    );
}

/// `into_body` gives the head's allocations back too.
#[test]
fn a_request_split_into_its_body_leaves_its_head_to_the_next_request() {
    let allocations = allocations_while_serving(
        |request: Request, mut response: ResponseWriter| async move {
            assert_eq!(request.path(), "/plaintext");
            let mut body = request.into_body();
            assert!(body.chunk().await?.is_none(), "a GET without a body");
            response.write_all(BODY).await
        },
    );
    assert!(
        allocations <= PER_SECOND_ALLOWANCE,
        "{allocations} allocations for {COUNTED} requests"
    );
}

/// Allocations per request of a tower service that adds three extensions
/// and answers with one field: hangup's are the request's header map (its
/// indices and entries), the extensions' map and table, its three entries
/// (`HangupSignal`, `CancellationToken`, `ConnectionAddrs`) and the
/// token's shared state; the service's are its three entries and its
/// response's header map (two).
const TOWER_PER_REQUEST: u64 = 13;

/// A tower request's extensions: hangup's three and three that a router
/// adds (axum's `OriginalUri`, `MatchedPath` and path parameters) go into
/// one table, allocated once: `http`'s map starts with room for three and
/// would otherwise be allocated again, its entries moved, at the fourth.
#[test]
fn a_tower_request_gets_one_extensions_table_with_room_for_a_routers_entries() {
    #[derive(Clone)]
    struct Added(#[allow(dead_code)] u64);
    #[derive(Clone)]
    struct AlsoAdded(#[allow(dead_code)] u64);
    let service = tower::service_fn(|mut request: http::Request<hangup::Body>| async move {
        assert_eq!(request.uri().path(), "/plaintext");
        let extensions = request.extensions_mut();
        assert_eq!(extensions.len(), 3, "hangup's own");
        extensions.insert(Added(1));
        extensions.insert(AlsoAdded(2));
        extensions.insert(3u64);
        let mut response = http::Response::new(http_body_util::Full::new(Bytes::from_static(BODY)));
        response.headers_mut().insert(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from_static("13"),
        );
        Ok::<_, Infallible>(response)
    });
    let allocations = allocations_while_serving(hangup::service(service));
    assert!(
        allocations <= TOWER_PER_REQUEST * COUNTED as u64 + PER_SECOND_ALLOWANCE,
        "{allocations} allocations for {COUNTED} requests"
    );
}
