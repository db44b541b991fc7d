//! The examples answer HEAD wherever they answer GET, as Go's `ServeMux`
//! and axum's router do: the GET's status and head fields (its
//! `Content-Length`, or its framing when the length is unknown), and no
//! body.
//!
//! Each example's handler is compiled in here from the example's own file
//! and served on 127.0.0.1:0, so the tests check the code people run with
//! `cargo run --example`, not a copy.

use std::net::SocketAddr;

use crate::support::*;

// Each example's `main` is for `cargo run`, never called here.
#[allow(dead_code)]
#[path = "../../examples/bench_server.rs"]
mod bench_server;
#[allow(dead_code)]
#[path = "../../examples/echo.rs"]
mod echo;
#[allow(dead_code)]
#[path = "../../examples/hello.rs"]
mod hello;
#[allow(dead_code)]
#[path = "../../examples/seed.rs"]
mod seed;
#[allow(dead_code)]
#[path = "../../examples/stream.rs"]
mod stream;

/// `HEAD target` on a keep-alive connection.
fn head(target: &str) -> Vec<u8> {
    format!("HEAD {target} HTTP/1.1\r\nHost: test\r\n\r\n").into_bytes()
}

/// The head fields of `response`, but `Date`, which moves between
/// responses.
fn fields(response: &Response) -> Vec<(String, String)> {
    response
        .headers
        .iter()
        .filter(|(name, _)| name != "date")
        .cloned()
        .collect()
}

/// HEAD `target`, then GET it, on one keep-alive connection, and checks
/// that HEAD got the GET's status and every field but `Date`, and no body
/// (body bytes after the HEAD's head would show as garbage before the
/// GET's response). Returns the GET's response.
async fn assert_head_answers_as_get(addr: SocketAddr, target: &str) -> Response {
    let mut stream = connect(addr).await;
    send(&mut stream, &head(target)).await;
    let head = read_response(&mut stream, true).await;
    send(&mut stream, &get(target)).await;
    let get = read_response(&mut stream, false).await;
    assert_eq!(head.status, get.status, "HEAD {target}");
    assert_eq!(fields(&head), fields(&get), "HEAD {target}");
    assert!(head.body.is_empty(), "HEAD {target}");
    get
}

#[tokio::test]
async fn echo_answers_head_wherever_it_answers_get() {
    let server = spawn_default(echo::route).await;
    let get = assert_head_answers_as_get(server.addr, "/").await;
    assert_eq!(get.status, 200);
    assert_eq!(get.body, b"Hello, World!");
    assert_eq!(get.header("content-length"), Some("13"));
}

#[tokio::test]
async fn hello_answers_head_wherever_it_answers_get() {
    let server = spawn_default(hello::hello).await;
    let get = assert_head_answers_as_get(server.addr, "/").await;
    assert_eq!(get.status, 200);
    assert_eq!(get.body, b"Hello, World!");
    assert_eq!(get.header("content-length"), Some("13"));
}

#[tokio::test]
async fn bench_server_answers_head_wherever_it_answers_get() {
    let server = spawn_default(bench_server::route).await;
    for target in ["/", "/plaintext"] {
        let get = assert_head_answers_as_get(server.addr, target).await;
        assert_eq!(get.status, 200, "{target}");
        assert_eq!(get.body, b"Hello, World!", "{target}");
        assert_eq!(get.header("content-length"), Some("13"), "{target}");
    }
    let get = assert_head_answers_as_get(server.addr, "/bytes/5").await;
    assert_eq!(get.status, 200);
    assert_eq!(get.body, b"00000");
    assert_eq!(get.header("content-length"), Some("5"));
}

/// One second per request: the puzzle's server sleeps before it writes.
#[tokio::test]
async fn seed_answers_head_wherever_it_answers_get() {
    let server =
        spawn_default(|request, response| seed::respond(seed::DEFAULT_SIZE, request, response))
            .await;
    let get = assert_head_answers_as_get(server.addr, "/").await;
    assert_eq!(get.status, 200);
    assert_eq!(get.body.len(), seed::DEFAULT_SIZE);
    let length = seed::DEFAULT_SIZE.to_string();
    assert_eq!(get.header("content-length"), Some(length.as_str()));
}

/// The event stream never ends, so its GET has no length: HEAD gets the
/// same chunked head, no events, and at once (the handler returns: the
/// connection serves a second HEAD, which a handler still ticking for the
/// first would block until the client left).
#[tokio::test]
async fn stream_answers_head_with_the_streams_head_and_returns() {
    let server = spawn_default(stream::events).await;

    let mut streaming = connect(server.addr).await;
    send(&mut streaming, &get("/")).await;
    let mut bytes = Vec::new();
    while !bytes.windows(6).any(|w| w == b"tick 0") {
        let more = read_exact_bytes(&mut streaming, 1).await;
        bytes.extend_from_slice(&more);
    }
    let (get, _) = parse_one(&bytes, false).expect("the GET's head");
    assert_eq!(get.status, 200);
    assert_eq!(get.header("transfer-encoding"), Some("chunked"));
    drop(streaming);

    let mut stream = connect(server.addr).await;
    for _ in 0..2 {
        send(&mut stream, &head("/")).await;
        let head = read_response(&mut stream, true).await;
        assert_eq!(head.status, get.status);
        assert_eq!(fields(&head), fields(&get));
    }
}
