//! axum routers and tower services on hangup, with real clients (reqwest,
//! raw sockets): extractors, state and tower-http layers work unchanged;
//! bodies stream both ways; framing, HEAD, trailers, pipelining and
//! `Expect: 100-continue` behave as on the native path; hang-ups reach the
//! service through its request's extensions, stop a streaming body at once,
//! and end in exactly one outcome.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body as AxumBody;
use axum::extract::{ConnectInfo, Extension, Json, Path, Query, State};
use axum::response::IntoResponse;
use axum::response::sse::{Event, Sse};
use axum::routing::{self, post};
use bytes::Bytes;
use hangup::http::{HeaderMap, StatusCode};
use hangup::{
    CancellationToken, Config, ConnectionAddrs, Cutoff, End, HangupCause, HangupPolicy,
    HangupSignal, OnFin, OnHangup, Phase,
};
use http_body_util::BodyExt;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};

use crate::support::*;

#[allow(dead_code)]
#[path = "../../examples/axum.rs"]
mod example;

#[derive(Clone)]
struct AppState {
    greeting: &'static str,
    hits: Arc<AtomicUsize>,
}

#[derive(serde::Deserialize, serde::Serialize)]
struct Item {
    name: String,
    count: u32,
}

/// A router that uses the extractors and layers an application would.
fn app() -> Router {
    let state = AppState {
        greeting: "hello",
        hits: Arc::default(),
    };
    Router::new()
        .route("/greet/{name}", routing::get(greet))
        .route("/items", post(create_item))
        .route("/addrs", routing::get(addrs))
        .route("/token", routing::get(token_is_there))
        .route(
            "/long",
            routing::get(|| async { "long enough to compress ".repeat(40) }),
        )
        .fallback(|| async { (StatusCode::NOT_FOUND, "nothing here") })
        .with_state(state)
        .merge(example::app())
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .layer(tower_http::compression::CompressionLayer::new())
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(5),
        ))
        .layer(tower_http::cors::CorsLayer::permissive())
}

#[derive(serde::Deserialize)]
struct Greeting {
    punct: Option<String>,
}

async fn greet(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<Greeting>,
) -> String {
    let hits = state.hits.fetch_add(1, Ordering::Relaxed) + 1;
    let punct = query.punct.unwrap_or_default();
    format!("{} {name}{punct} #{hits}", state.greeting)
}

async fn create_item(Json(item): Json<Item>) -> impl IntoResponse {
    let item = Item {
        name: item.name.to_uppercase(),
        count: item.count + 1,
    };
    (StatusCode::CREATED, Json(item))
}

async fn addrs(Extension(addrs): Extension<ConnectionAddrs>) -> String {
    format!("{} {}", addrs.remote, addrs.local)
}

async fn token_is_there(Extension(token): Extension<CancellationToken>) -> String {
    format!("cancelled={}", token.is_cancelled())
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(LIMIT)
        .build()
        .expect("a client")
}

/// Extractors, state, a fallback, JSON, and tower-http's trace,
/// compression, timeout and CORS layers: the app runs unchanged.
#[tokio::test]
async fn an_axum_router_with_extractors_state_and_layers_runs_unchanged() {
    let server = spawn_default(hangup::service(app())).await;
    let base = format!("http://{}", server.addr);
    let client = client();

    let text = client
        .get(format!("{base}/greet/ada?punct=!"))
        .send()
        .await
        .unwrap();
    assert_eq!(text.status(), 200);
    assert_eq!(text.text().await.unwrap(), "hello ada! #1");

    let created = client
        .post(format!("{base}/items"))
        .header("content-type", "application/json")
        .body(r#"{"name":"pen","count":2}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(created.text().await.unwrap(), r#"{"name":"PEN","count":3}"#);

    let missing = client.get(format!("{base}/nowhere")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.text().await.unwrap(), "nothing here");

    let cors = client
        .request(reqwest::Method::OPTIONS, format!("{base}/greet/x"))
        .header("origin", "http://example.test")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert!(cors.headers().contains_key("access-control-allow-origin"));

    let compressed = client
        .get(format!("{base}/long"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(compressed.headers()["content-encoding"], "gzip");
    let gz = compressed.bytes().await.unwrap();
    assert_eq!(&gz[..2], b"\x1f\x8b", "a gzip stream");

    let token = client.get(format!("{base}/token")).send().await.unwrap();
    assert_eq!(token.text().await.unwrap(), "cancelled=false");

    let stream = connect(server.addr).await;
    let client_addr = stream.local_addr().unwrap();
    drop(stream);
    let addrs = client.get(format!("{base}/addrs")).send().await.unwrap();
    let text = addrs.text().await.unwrap();
    assert!(text.ends_with(&format!(" {}", server.addr)), "{text}");
    assert!(text.starts_with("127.0.0.1:") && text != client_addr.to_string());
}

/// axum's own `ConnectInfo<SocketAddr>`, through
/// `into_make_service_with_connect_info`: with `serve_with_connect_info`,
/// and with `service_with_connect_info` on a server built by hand.
#[tokio::test]
async fn connect_info_works_through_into_make_service_with_connect_info() {
    let router: Router = Router::new().route(
        "/",
        routing::get(|ConnectInfo(addr): ConnectInfo<SocketAddr>| async move { addr.to_string() }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(hangup::serve_with_connect_info(
        listener,
        Config::default(),
        router
            .clone()
            .into_make_service_with_connect_info::<SocketAddr>(),
    ));
    let mut stream = connect(addr).await;
    let client = stream.local_addr().unwrap();
    send(&mut stream, &get("/")).await;
    let response = read_response(&mut stream, false).await;
    assert_eq!(response.text(), client.to_string());
    task.abort();

    // The same make-service as a handler of a server built by hand, which
    // gives a handle to its metrics and its shutdown.
    let server = spawn(
        Config::default(),
        hangup::service_with_connect_info(
            router.into_make_service_with_connect_info::<SocketAddr>(),
        ),
    )
    .await;
    let mut stream = connect(server.addr).await;
    let client = stream.local_addr().unwrap();
    send(&mut stream, &get("/")).await;
    let response = read_response(&mut stream, false).await;
    assert_eq!(response.text(), client.to_string());
    assert_eq!(server.metrics.snapshot().open_connections, 1);
    server.stop(Duration::from_secs(1)).await;
}

/// Several MiB each way, streamed: the echo's memory stays flat and every
/// byte comes back in order; the response is chunked (its length was
/// unknown), a fixed body gets a `Content-Length`.
#[tokio::test]
async fn bodies_of_several_mib_stream_both_ways() {
    let server = spawn_default(hangup::service(app())).await;
    let data: Vec<u8> = (0..8 << 20).map(|i: u32| (i % 251) as u8).collect();
    let pieces: Vec<Result<Bytes, Infallible>> = data
        .chunks(100_000)
        .map(|piece| Ok(Bytes::copy_from_slice(piece)))
        .collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(pieces));
    let response = client()
        .post(format!("http://{}/echo", server.addr))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["transfer-encoding"], "chunked");
    let echoed = response.bytes().await.unwrap();
    assert!(echoed == data, "{} bytes back, not the same", echoed.len());

    let fixed = client()
        .get(format!("http://{}/plaintext", server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(fixed.headers()["content-length"], "13");
}

/// HEAD keeps the length (none when the GET's is unknown) and sends no
/// body; requests pipelined in one
/// write are answered in order; `Expect: 100-continue` gets its `100`
/// when the body is read.
#[tokio::test]
async fn head_pipelining_and_expect_continue_behave_as_on_the_native_path() {
    let server = spawn_default(hangup::service(app())).await;

    let mut stream = connect(server.addr).await;
    send(&mut stream, b"HEAD /plaintext HTTP/1.1\r\nHost: t\r\n\r\n").await;
    let head = read_response(&mut stream, true).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("13"));
    assert!(head.body.is_empty());
    // Compressed, the GET's length is unknown (the layer drops it, and
    // axum empties HEAD bodies): the HEAD says none, not a false 0.
    send(
        &mut stream,
        b"HEAD /long HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n",
    )
    .await;
    let head = read_response(&mut stream, true).await;
    assert_eq!(head.header("content-encoding"), Some("gzip"));
    assert_eq!(head.header("content-length"), None, "{:?}", head.headers);
    assert_eq!(head.header("transfer-encoding"), None, "{:?}", head.headers);

    let mut batch = get("/");
    batch.extend_from_slice(&get("/greet/bo"));
    batch.extend_from_slice(&get("/plaintext"));
    send(&mut stream, &batch).await;
    assert_eq!(read_response_prefix(&mut stream).await, "Hello, World!");
    let second = read_response_prefix(&mut stream).await;
    assert!(second.starts_with("hello bo #"), "{second}");
    assert_eq!(read_response_prefix(&mut stream).await, "Hello, World!");

    let mut stream = connect(server.addr).await;
    send(
        &mut stream,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    )
    .await;
    let interim = read_exact_bytes(&mut stream, 25).await;
    assert_eq!(&interim[..], b"HTTP/1.1 100 Continue\r\n\r\n");
    send(&mut stream, b"hello").await;
    let response = read_response(&mut stream, false).await;
    assert_eq!(response.body, b"hello");
}

/// Request trailers reach the service as the body's last frame; trailers
/// of its response body follow the last chunk.
#[tokio::test]
async fn trailers_arrive_in_the_request_body_and_leave_after_the_last_chunk() {
    let router = Router::new().route(
        "/sum",
        post(|body: AxumBody| async move {
            let collected = body.collect().await.unwrap();
            let trailers = collected.trailers().cloned().unwrap_or_default();
            let data = collected.to_bytes();
            let sum: u64 = data.iter().map(|&b| u64::from(b)).sum();
            let mut out = HeaderMap::new();
            out.insert("x-sum", sum.to_string().parse().unwrap());
            out.insert(
                "x-seen",
                trailers
                    .get("x-client")
                    .cloned()
                    .unwrap_or_else(|| "none".parse().unwrap()),
            );
            let frames = vec![
                Ok::<_, Infallible>(http_body::Frame::data(data)),
                Ok(http_body::Frame::trailers(out)),
            ];
            AxumBody::new(http_body_util::StreamBody::new(futures_util::stream::iter(
                frames,
            )))
        }),
    );
    let server = spawn_default(hangup::service(router)).await;
    let mut stream = connect(server.addr).await;
    send(
        &mut stream,
        b"POST /sum HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
          3\r\n\x01\x02\x03\r\n0\r\nX-Client: seen\r\n\r\n",
    )
    .await;
    let (bytes, _) = read_until_end(&mut stream).await;
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("transfer-encoding: chunked\r\n"), "{text}");
    assert!(
        text.ends_with("0\r\nx-sum: 6\r\nx-seen: seen\r\n\r\n"),
        "{text:?}"
    );
}

/// The tower path is as strict as the native one: the same parser
/// answers before any service runs.
#[tokio::test]
async fn bad_requests_are_refused_before_the_service_runs() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let router = Router::new().route(
        "/",
        routing::get(move || {
            counted.fetch_add(1, Ordering::Relaxed);
            async { "ok" }
        }),
    );
    let server = spawn_default(hangup::service(router)).await;
    for (request, status) in [
        (&b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n"[..], 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\nHost: t\n\n", 400),
        (
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            400,
        ),
        (b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505),
    ] {
        let bytes = raw_exchange(server.addr, request).await;
        let (response, _) = parse_one(&bytes, false).expect("a response");
        assert_eq!(response.status, status, "{:?}", String::from_utf8_lossy(request));
    }
    assert_eq!(calls.load(Ordering::Relaxed), 0);
}

/// Tells the test when it is dropped.
struct DropSignal(Option<oneshot::Sender<()>>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

/// How the client leaves in the hang-up tests.
#[derive(Debug, Clone, Copy)]
enum Leave {
    Fin,
    Rst,
}

async fn leave(mut stream: tokio::net::TcpStream, how: Leave) {
    match how {
        Leave::Fin => stream.shutdown().await.unwrap(),
        Leave::Rst => reset(stream),
    }
}

/// A service that waits for its client to leave, through the
/// `HangupSignal` in its extensions, with a request body it never read:
/// told of a FIN or an RST at once, cause and phase right, one outcome.
#[tokio::test]
async fn a_pending_service_with_an_unread_body_learns_of_a_fin_or_rst() {
    for how in [Leave::Fin, Leave::Rst] {
        let (started_tx, mut started_rx) = mpsc::unbounded_channel::<()>();
        let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
        let router = Router::new().route(
            "/wait",
            post(
                move |Extension(signal): Extension<HangupSignal>, _body: AxumBody| {
                    let (started_tx, seen_tx) = (started_tx.clone(), seen_tx.clone());
                    async move {
                        let _ = started_tx.send(());
                        let hangup = signal.hung_up().await;
                        let _ = seen_tx.send(hangup);
                        "told"
                    }
                },
            ),
        );
        let outcomes = Outcomes::default();
        let server = spawn(outcomes.builder().build().unwrap(), hangup::service(router)).await;
        let mut stream = connect(server.addr).await;
        send(
            &mut stream,
            b"POST /wait HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nunread",
        )
        .await;
        tokio::time::timeout(LIMIT, started_rx.recv())
            .await
            .unwrap();
        leave(stream, how).await;
        let hangup = tokio::time::timeout(LIMIT, seen_rx.recv())
            .await
            .unwrap()
            .unwrap();
        let cause = match how {
            Leave::Fin => HangupCause::PeerClosed,
            Leave::Rst => HangupCause::Reset,
        };
        assert_eq!(
            (hangup.cause(), hangup.phase()),
            (cause, Phase::Handling),
            "{how:?}"
        );
        let all = outcomes.wait_for(1).await;
        assert_eq!(all.len(), 1, "{how:?}: {all:?}");
        match how {
            // Under Notify the service answered a half-closed client.
            Leave::Fin => assert!(all[0].peer_closed_after.is_some(), "{all:?}"),
            Leave::Rst => assert_eq!(all[0].status().as_u16(), 499, "{all:?}"),
        }
    }
}

/// Under `OnHangup::Cancel` (set per route with the `HangupPolicy` layer),
/// the service's future is dropped as soon as its client is gone: an RST,
/// or a FIN under `OnFin::Abort`. One outcome, 499, with the cause.
#[tokio::test]
async fn under_cancel_the_service_future_is_dropped_when_the_client_leaves() {
    for how in [Leave::Fin, Leave::Rst] {
        let (started_tx, mut started_rx) = mpsc::unbounded_channel::<()>();
        let (dropped_tx, dropped_rx) = oneshot::channel();
        let dropped = Arc::new(std::sync::Mutex::new(Some(dropped_tx)));
        let router = Router::new()
            .route(
                "/forever",
                routing::get(move || {
                    let started_tx = started_tx.clone();
                    let guard = DropSignal(dropped.lock().unwrap().take());
                    async move {
                        let _guard = guard;
                        let _ = started_tx.send(());
                        std::future::pending::<()>().await;
                        "never"
                    }
                }),
            )
            .layer(
                HangupPolicy::new()
                    .on_fin(OnFin::Abort)
                    .on_hangup(OnHangup::Cancel),
            );
        let outcomes = Outcomes::default();
        let server = spawn(outcomes.builder().build().unwrap(), hangup::service(router)).await;
        let mut stream = connect(server.addr).await;
        send(&mut stream, &get("/forever")).await;
        tokio::time::timeout(LIMIT, started_rx.recv())
            .await
            .unwrap();
        leave(stream, how).await;
        tokio::time::timeout(LIMIT, dropped_rx)
            .await
            .expect("the service's future was dropped")
            .unwrap();
        let all = outcomes.wait_for(1).await;
        assert_eq!(all[0].status().as_u16(), 499, "{how:?}: {all:?}");
        let cause = match how {
            Leave::Fin => HangupCause::PeerClosed,
            Leave::Rst => HangupCause::Reset,
        };
        assert_eq!(all[0].hangup().map(|h| h.cause()), Some(cause), "{how:?}");
    }
}

/// A server-sent-events body waiting for its next event is dropped the
/// moment its client is gone, not at its next event: here the stream
/// would wait for ever.
#[tokio::test]
async fn a_pending_sse_body_is_dropped_when_its_client_leaves() {
    for how in [Leave::Fin, Leave::Rst] {
        let (dropped_tx, dropped_rx) = oneshot::channel();
        let dropped = Arc::new(std::sync::Mutex::new(Some(dropped_tx)));
        let router = Router::new()
            .route(
                "/events",
                routing::get(move || {
                    let guard = DropSignal(dropped.lock().unwrap().take());
                    async move {
                        let first = futures_util::stream::once(async {
                            Ok::<_, Infallible>(Event::default().data("first"))
                        });
                        let never = futures_util::stream::pending();
                        let stream = futures_util::StreamExt::chain(first, never);
                        let stream = futures_util::StreamExt::map(stream, move |event| {
                            let _keep = &guard;
                            event
                        });
                        Sse::new(stream)
                    }
                }),
            )
            .layer(HangupPolicy::new().on_fin(OnFin::Abort));
        let outcomes = Outcomes::default();
        let server = spawn(outcomes.builder().build().unwrap(), hangup::service(router)).await;
        let mut stream = connect(server.addr).await;
        send(&mut stream, &get("/events")).await;
        // The first event arrives: the head and it went out at once.
        let mut seen = Vec::new();
        while !String::from_utf8_lossy(&seen).contains("data: first") {
            let more = read_some(&mut stream).await;
            assert!(!more.is_empty(), "closed before the first event");
            seen.extend_from_slice(&more);
        }
        leave(stream, how).await;
        tokio::time::timeout(LIMIT, dropped_rx)
            .await
            .expect("the SSE body was dropped")
            .unwrap();
        let all = outcomes.wait_for(1).await;
        assert_eq!(all[0].status().as_u16(), 499, "{how:?}: {all:?}");
        assert_eq!(all[0].hangup().map(|h| h.phase()), Some(Phase::Sending));
    }
}

/// A service that fails, panics or whose body fails ends in one outcome
/// each: 500 when nothing was sent, cut short after the head.
#[tokio::test]
async fn failing_services_and_bodies_end_in_one_outcome_each() {
    // The body's failure comes when the test says: after the client has
    // read its first piece (so the head went out first).
    let (fail_tx, fail_rx) = oneshot::channel::<()>();
    let fail_rx = Arc::new(std::sync::Mutex::new(Some(fail_rx)));
    let router = Router::new()
        .route(
            "/panic",
            routing::get(|| async {
                if true {
                    panic!("in the service");
                }
                "never"
            }),
        )
        .route(
            "/broken-body",
            routing::get(move || {
                let fail_rx = fail_rx.lock().unwrap().take();
                async move {
                    let first = futures_util::stream::once(async {
                        Ok(http_body::Frame::data(Bytes::from_static(b"partial")))
                    });
                    let failure = futures_util::stream::once(async move {
                        if let Some(fail) = fail_rx {
                            let _ = fail.await;
                        }
                        Err(std::io::Error::other("disk went away"))
                    });
                    let frames = futures_util::StreamExt::chain(first, failure);
                    AxumBody::new(http_body_util::StreamBody::new(frames))
                }
            }),
        );
    let outcomes = Outcomes::default();
    let server = spawn(outcomes.builder().build().unwrap(), hangup::service(router)).await;
    let panicked = raw_exchange(server.addr, &get("/panic")).await;
    assert!(panicked.starts_with(b"HTTP/1.1 500 "), "{panicked:?}");

    let mut stream = connect(server.addr).await;
    send(&mut stream, &get("/broken-body")).await;
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("partial") {
        let more = read_some(&mut stream).await;
        assert!(!more.is_empty(), "closed before the first piece");
        seen.extend_from_slice(&more);
    }
    fail_tx.send(()).unwrap();
    let (rest, _) = read_until_end(&mut stream).await;
    seen.extend_from_slice(&rest);
    let responses = parse_responses(&seen, &[false]);
    assert_eq!(responses[0].status, 200);
    assert!(!responses[0].complete, "the last chunk must be missing");

    let all = outcomes.wait_for(2).await;
    assert_eq!(all.len(), 2, "{all:?}");
    let panic = all.iter().find(|o| o.uri == "/panic").unwrap();
    assert_eq!(
        (panic.end.clone(), panic.status().as_u16()),
        (End::Complete, 500)
    );
    let body = all.iter().find(|o| o.uri == "/broken-body").unwrap();
    assert_eq!(body.end, End::CutShort(Cutoff::HandlerFailed), "{body:?}");
    assert_eq!(body.status().as_u16(), 200, "{body:?}");
}

/// With the `axum` feature, the hang-up signal is an extractor of its own
/// (`cargo test --features axum`, as CI runs it).
#[cfg(feature = "axum")]
#[tokio::test]
async fn the_hangup_signal_is_an_axum_extractor_with_the_axum_feature() {
    let router = Router::new().route(
        "/",
        routing::get(|signal: HangupSignal| async move { format!("{:?}", signal.hangup()) }),
    );
    let server = spawn_default(hangup::service(router)).await;
    let bytes = raw_exchange(server.addr, &get_closing("/")).await;
    let (response, _) = parse_one(&bytes, false).expect("a response");
    assert_eq!((response.status, response.text().as_str()), (200, "None"));
}

#[cfg(feature = "axum")]
fn get_closing(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").into_bytes()
}
