//! Whether a connection stays open after a response: kept alive by
//! default in HTTP/1.1, closed by default in HTTP/1.0 unless the client
//! asks, and closed after `Connection: close` from either side.

use hangup::http::{HeaderValue, header};
use hangup::{Request, ResponseWriter};

use crate::support::*;

#[tokio::test]
async fn several_requests_are_served_on_one_keep_alive_connection() {
    let server = spawn_default(path_handler).await;
    let mut stream = connect(server.addr).await;
    for i in 0..5 {
        let path = format!("/r{i}");
        send(&mut stream, &get(&path)).await;
        let response = read_response(&mut stream, false).await;
        assert_eq!(response.status, 200);
        assert_eq!(response.body, path.as_bytes());
        assert_eq!(response.header("connection"), None, "request {i}");
    }
}

#[tokio::test]
async fn http10_closes_by_default() {
    let server = spawn_default(path_handler).await;
    let mut stream = connect(server.addr).await;
    send(&mut stream, b"GET /old HTTP/1.0\r\n\r\n").await;
    let (bytes, end) = read_until_end(&mut stream).await;
    assert_clean_eof(&end, "HTTP/1.0");
    let responses = parse_responses(&bytes, &[false]);
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].body, b"/old");
    assert_eq!(responses[0].header("connection"), Some("close"));
}

#[tokio::test]
async fn http10_with_keep_alive_stays_open() {
    let server = spawn_default(path_handler).await;
    let mut stream = connect(server.addr).await;
    for path in ["/one", "/two"] {
        let request = format!("GET {path} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        send(&mut stream, request.as_bytes()).await;
        let response = read_response(&mut stream, false).await;
        assert_eq!(response.body, path.as_bytes());
        assert_eq!(response.header("connection"), Some("keep-alive"));
        assert_eq!(
            response.header("content-length"),
            Some(path.len().to_string().as_str())
        );
    }
}

#[tokio::test]
async fn client_connection_close_closes_after_the_response() {
    let server = spawn_default(path_handler).await;
    let mut stream = connect(server.addr).await;
    send(
        &mut stream,
        b"GET /bye HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    let (bytes, end) = read_until_end(&mut stream).await;
    assert_clean_eof(&end, "Connection: close");
    let responses = parse_responses(&bytes, &[false]);
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].body, b"/bye");
    assert_eq!(responses[0].header("connection"), Some("close"));
}

#[tokio::test]
async fn handler_connection_close_closes_the_connection() {
    let server = spawn_default(|_req: Request, mut res: ResponseWriter| async move {
        res.insert_header(header::CONNECTION, HeaderValue::from_static("close"))?;
        res.write_all(b"done").await
    })
    .await;
    let mut stream = connect(server.addr).await;
    send(&mut stream, &get("/")).await;
    let (bytes, end) = read_until_end(&mut stream).await;
    assert_clean_eof(&end, "handler Connection: close");
    let responses = parse_responses(&bytes, &[false]);
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].body, b"done");
    assert_eq!(responses[0].header("connection"), Some("close"));
}
