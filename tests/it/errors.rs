//! Error responses: a handler's error or panic before its response is
//! committed becomes a 500 that closes the connection (a HEAD gets the
//! head only), the server keeps serving, and the close after an error
//! response does not reset it away.

use hangup::{Error, Request, ResponseWriter};

use crate::support::*;

#[tokio::test]
async fn handler_error_before_commit_gets_500_and_close() {
    let server = spawn_default(|_req: Request, mut res: ResponseWriter| async move {
        res.write_all(b"partial, never sent").await?;
        Err(Error::Io(std::io::Error::other("database unreachable")))
    })
    .await;
    let mut stream = connect(server.addr).await;
    send(&mut stream, &get("/")).await;
    let (bytes, end) = read_until_end(&mut stream).await;
    assert_clean_eof(&end, "handler error");
    let responses = parse_responses(&bytes, &[false]);
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].status, 500);
    assert_eq!(responses[0].header("connection"), Some("close"));
    assert!(responses[0].header("content-length").is_some());
    assert!(
        !responses[0].text().contains("database") && !responses[0].text().contains("partial"),
        "internal details or discarded body leaked: {:?}",
        responses[0].text()
    );
}

#[tokio::test]
async fn handler_error_on_a_head_request_sends_the_error_head_without_its_body() {
    let server = spawn_default(|_req: Request, _res: ResponseWriter| async move {
        Err(Error::Io(std::io::Error::other("database unreachable")))
    })
    .await;
    let get_bytes = raw_exchange(server.addr, &get("/")).await;
    let for_get = parse_responses(&get_bytes, &[false]);
    assert_eq!(for_get[0].status, 500);
    assert!(!for_get[0].body.is_empty());

    let mut stream = connect(server.addr).await;
    send(&mut stream, b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n").await;
    let (bytes, end) = read_until_end(&mut stream).await;
    assert_clean_eof(&end, "handler error on HEAD");
    assert!(
        bytes.ends_with(b"\r\n\r\n"),
        "bytes after the HEAD response's head: {:?}",
        String::from_utf8_lossy(&bytes)
    );
    let responses = parse_responses(&bytes, &[true]);
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].status, 500);
    let get_length = for_get[0].body.len().to_string();
    assert_eq!(
        responses[0].header("content-length"),
        Some(get_length.as_str()),
        "HEAD reports the length the GET's error body has"
    );
}

#[tokio::test]
async fn handler_panic_gets_500_and_the_server_keeps_serving() {
    let server = spawn_default(|req: Request, mut res: ResponseWriter| async move {
        if req.uri().path() == "/panic" {
            panic!("handler panicked on purpose");
        }
        res.write_all(b"alive").await
    })
    .await;
    let mut stream = connect(server.addr).await;
    send(&mut stream, &get("/panic")).await;
    let (bytes, end) = read_until_end(&mut stream).await;
    assert_clean_eof(&end, "handler panic");
    let responses = parse_responses(&bytes, &[false]);
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].status, 500);
    assert_eq!(responses[0].header("connection"), Some("close"));

    for _ in 0..2 {
        let mut stream = connect(server.addr).await;
        send(&mut stream, &get("/")).await;
        let response = read_response(&mut stream, false).await;
        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"alive");
    }
}

/// A handler whose request extension panics when dropped, as `into_body`
/// empties the head for recycling: the handler has panicked (500), and
/// the body's state still goes back to the connection (it would hang
/// otherwise, waiting for it).
#[tokio::test]
async fn a_panic_while_into_body_recycles_the_head_is_answered_500_not_left_hanging() {
    #[derive(Clone)]
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            if !std::thread::panicking() {
                panic!("bomb");
            }
        }
    }
    let server = spawn_default(|mut req: Request, mut res: ResponseWriter| async move {
        req.extensions_mut().insert(Bomb);
        let _body = req.into_body();
        res.write_all(b"unreachable").await
    })
    .await;
    let mut stream = connect(server.addr).await;
    send(&mut stream, &get("/x")).await;
    assert_eq!(read_response(&mut stream, false).await.status, 500);
}

/// A malformed request and 256 KiB of junk in one burst: the server's
/// lingering close must not reset the 400 away.
#[tokio::test]
async fn lingering_close_delivers_the_error_response_despite_junk() {
    let server = spawn_default(path_handler).await;
    let mut stream = connect(server.addr).await;
    let mut burst = b"GET / HTTP/1.1\r\nHost : t\r\n\r\n".to_vec();
    burst.extend_from_slice(&vec![b'j'; 256 * 1024]);
    let (mut reader, mut writer) = stream.split();
    let (_, (bytes, end)) = tokio::join!(
        async {
            // The server may stop reading: a failed write is not the point.
            let _ = tokio::time::timeout(
                LIMIT,
                tokio::io::AsyncWriteExt::write_all(&mut writer, &burst),
            )
            .await;
        },
        read_until_end(&mut reader)
    );
    let text = String::from_utf8_lossy(&bytes);
    let (response, used) =
        parse_one(&bytes, false).unwrap_or_else(|| panic!("incomplete 400 ({end:?}): {text:?}"));
    assert_eq!(response.status, 400, "{text:?}");
    assert_eq!(response.header("connection"), Some("close"));
    assert_eq!(used, bytes.len(), "{text:?}");
    assert_clean_eof(&end, "lingering close");
}
