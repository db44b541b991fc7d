//! Response framing: automatic Content-Length, chunked, close-delimited,
//! explicit Content-Length, bodiless responses.

use hangup::http::{HeaderValue, StatusCode, header};
use hangup::{Config, Error, Request, ResponseWriter};

use crate::support::*;

fn config_with_buffer(bytes: usize) -> Config {
    Config::builder().write_buffer_bytes(bytes).build().unwrap()
}

/// Writes `n` bytes of `x` in pieces of `piece` bytes.
async fn write_n(response: &mut ResponseWriter, n: usize, piece: usize) -> hangup::Result<()> {
    let data = vec![b'x'; piece];
    let mut left = n;
    while left > 0 {
        let take = left.min(piece);
        response.write_all(&data[..take]).await?;
        left -= take;
    }
    Ok(())
}

#[tokio::test]
async fn body_that_fits_the_buffer_gets_content_length() {
    let server = spawn(
        config_with_buffer(1024),
        |_req: Request, mut res: ResponseWriter| async move { write_n(&mut res, 1024, 100).await },
    )
    .await;
    let mut stream = connect(server.addr).await;
    stream_write(&mut stream, &get("/")).await;
    let response = read_response(&mut stream, false).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-length"), Some("1024"));
    assert_eq!(response.header("transfer-encoding"), None);
    assert_eq!(response.body.len(), 1024);
}

#[tokio::test]
async fn body_past_the_buffer_goes_chunked_on_http11_and_close_delimited_on_http10() {
    let handler =
        |_req: Request, mut res: ResponseWriter| async move { write_n(&mut res, 1025, 100).await };
    let server = spawn(config_with_buffer(1024), handler).await;

    let mut stream = connect(server.addr).await;
    stream_write(&mut stream, &get("/")).await;
    let response = read_response(&mut stream, false).await;
    assert_eq!(response.header("transfer-encoding"), Some("chunked"));
    assert_eq!(response.header("content-length"), None);
    assert!(response.complete);
    assert_eq!(response.body, vec![b'x'; 1025]);

    let raw = raw_exchange(server.addr, b"GET / HTTP/1.0\r\n\r\n").await;
    let responses = parse_responses(&raw, &[false]);
    assert_eq!(responses[0].header("connection"), Some("close"));
    assert_eq!(responses[0].header("transfer-encoding"), None);
    assert_eq!(responses[0].body, vec![b'x'; 1025]);
}

#[tokio::test]
async fn explicit_content_length_is_honoured_and_overrun_is_an_error() {
    let server = spawn_default(|_req: Request, mut res: ResponseWriter| async move {
        res.insert_header(header::CONTENT_LENGTH, HeaderValue::from_static("5"))?;
        res.write_all(b"abc").await?;
        match res.write_all(b"def").await {
            Err(Error::ContentLengthExceeded {
                declared: 5,
                attempted: 6,
            }) => {}
            other => panic!("expected ContentLengthExceeded, got {other:?}"),
        }
        res.write_all(b"de").await
    })
    .await;
    let mut stream = connect(server.addr).await;
    stream_write(&mut stream, &get("/")).await;
    let response = read_response(&mut stream, false).await;
    assert_eq!(response.header("content-length"), Some("5"));
    assert_eq!(response.body, b"abcde");
}

#[tokio::test]
async fn head_and_bodiless_statuses_carry_no_body() {
    let server = spawn_default(|req: Request, mut res: ResponseWriter| async move {
        if req.uri().path() == "/204" {
            res.set_status(StatusCode::NO_CONTENT)?;
            assert!(matches!(
                res.write_all(b"x").await,
                Err(Error::BodyNotAllowed(_))
            ));
            return Ok(());
        }
        res.write_all(b"hello").await
    })
    .await;
    let mut stream = connect(server.addr).await;
    stream_write(&mut stream, b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n").await;
    let head = read_response(&mut stream, true).await;
    assert_eq!(
        head.header("content-length"),
        Some("5"),
        "HEAD reports the GET length"
    );
    stream_write(&mut stream, &get("/204")).await;
    let no_content = read_response(&mut stream, false).await;
    assert_eq!(no_content.status, 204);
    assert_eq!(no_content.header("content-length"), None);
    // The connection is still usable and in sync.
    stream_write(&mut stream, &get("/")).await;
    assert_eq!(read_response(&mut stream, false).await.body, b"hello");
}

async fn stream_write(stream: &mut tokio::net::TcpStream, bytes: &[u8]) {
    use tokio::io::AsyncWriteExt;
    stream.write_all(bytes).await.expect("write");
}

#[tokio::test]
async fn a_head_response_past_the_buffer_has_no_chunk_framing() {
    // Regression: HEAD + a body larger than the buffer committed as
    // chunked, and finishing wrote `0\r\n\r\n` after the head, which the
    // client read as the start of the next response.
    let server =
        spawn(
            config_with_buffer(1024),
            |_req: Request, mut res: ResponseWriter| async move {
                write_n(&mut res, 16 * 1024, 1000).await
            },
        )
        .await;
    let mut two = b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n".to_vec();
    two.extend_from_slice(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let raw = raw_exchange(server.addr, &two).await;
    // Any byte after the HEAD response's blank line that is not the GET's
    // status line makes the second parse fail.
    let responses = parse_responses(&raw, &[true, false]);
    assert_eq!(responses.len(), 2);
    assert_eq!(
        responses[0].header("transfer-encoding"),
        Some("chunked"),
        "HEAD mirrors the GET's framing"
    );
    assert_eq!(responses[1].status, 200, "the connection stayed in sync");
    assert_eq!(responses[1].body.len(), 16 * 1024);
}

#[tokio::test]
async fn a_content_length_below_the_written_body_never_reaches_the_wire() {
    let server = spawn_default(|req: Request, mut res: ResponseWriter| async move {
        res.write_all(&[b'a'; 100]).await?;
        if req.uri().path() == "/insert" {
            let err = res
                .insert_header(header::CONTENT_LENGTH, HeaderValue::from_static("10"))
                .unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::ContentLengthExceeded {
                        declared: 10,
                        attempted: 100
                    }
                ),
                "{err:?}"
            );
            return Ok(());
        }
        // Set behind the writer's back: caught when the head is committed.
        res.headers_mut()?
            .insert(header::CONTENT_LENGTH, HeaderValue::from_static("10"));
        Ok(())
    })
    .await;
    let raw = raw_exchange(
        server.addr,
        b"GET /insert HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    let responses = parse_responses(&raw, &[false]);
    assert_eq!(
        responses[0].header("content-length"),
        Some("100"),
        "the rejected header was not applied"
    );

    let raw = raw_exchange(server.addr, b"GET /mut HTTP/1.1\r\nHost: t\r\n\r\n").await;
    let responses = parse_responses(&raw, &[false]);
    assert_eq!(
        responses.len(),
        1,
        "no stray body bytes after the response: {:?}",
        String::from_utf8_lossy(&raw)
    );
    assert_eq!(responses[0].status, 500);
    assert_eq!(responses[0].text(), "internal server error\n");
}

#[tokio::test]
async fn a_bodiless_status_is_refused_after_body_bytes_were_written() {
    let server = spawn_default(|_req: Request, mut res: ResponseWriter| async move {
        res.write_all(b"abc").await?;
        let err = res.set_status(StatusCode::NOT_MODIFIED).unwrap_err();
        assert!(
            matches!(err, Error::BodyNotAllowed(s) if s == StatusCode::NOT_MODIFIED),
            "{err:?}"
        );
        Ok(())
    })
    .await;
    let mut stream = connect(server.addr).await;
    stream_write(&mut stream, &get("/")).await;
    let response = read_response(&mut stream, false).await;
    assert_eq!(
        (response.status, response.body.as_slice()),
        (200, &b"abc"[..])
    );
}

/// Fields set one by one, read back, then changed through the map: the
/// response carries what a `HeaderMap` given the same calls would hold, in
/// its order; each next response on the connection starts with none.
#[tokio::test]
async fn response_fields_set_one_by_one_and_through_the_map_are_sent_in_order() {
    let server = spawn_default(|req: Request, mut res: ResponseWriter| async move {
        let x_a = header::HeaderName::from_static("x-a");
        match req.path() {
            "/second" => {
                res.insert_header(x_a, HeaderValue::from_static("only"))?;
                return res.write_all(b"2").await;
            }
            "/third" => return res.write_all(b"3").await,
            _ => {}
        }
        res.insert_header(header::CONTENT_TYPE, HeaderValue::from_static("text/html"))?;
        res.insert_header(x_a.clone(), HeaderValue::from_static("1"))?;
        assert_eq!(res.headers()[&header::CONTENT_TYPE], "text/html");
        res.insert_header(x_a.clone(), HeaderValue::from_static("2"))?;
        assert_eq!(res.headers()[&x_a], "2", "a read sees the latest value");
        res.insert_header(x_a.clone(), HeaderValue::from_static("3"))?;
        assert_eq!(res.header(&x_a).map(HeaderValue::as_bytes), Some(&b"3"[..]));
        res.insert_header(x_a.clone(), HeaderValue::from_static("2"))?;
        let map = res.headers_mut()?;
        map.append(header::SET_COOKIE, HeaderValue::from_static("a=1"));
        map.append(header::SET_COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(res.header(&header::SET_COOKIE).unwrap(), "a=1");
        assert_eq!(res.header(&x_a).unwrap(), "2");
        res.insert_header(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))?;
        res.write_all(b"1").await
    })
    .await;
    let mut stream = connect(server.addr).await;
    send(&mut stream, &get("/first")).await;
    let first = read_response(&mut stream, false).await;
    let handler_fields: Vec<(&str, &str)> = first
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .filter(|(n, _)| !["date", "content-length"].contains(n))
        .collect();
    assert_eq!(
        handler_fields,
        [
            ("content-type", "text/html"),
            ("x-a", "2"),
            ("set-cookie", "a=1"),
            ("set-cookie", "b=2"),
            ("cache-control", "no-store"),
        ]
    );
    send(&mut stream, &get("/second")).await;
    let second = read_response(&mut stream, false).await;
    let names: Vec<&str> = second.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["x-a", "date", "content-length"]);
    assert_eq!(second.header("x-a"), Some("only"));
    send(&mut stream, &get("/third")).await;
    let third = read_response(&mut stream, false).await;
    let names: Vec<&str> = third.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["date", "content-length"]);
}

/// Bodies of every size around the points where the writer joins the body
/// to the head for one `send(2)` (4 KiB, the head buffer's spare room) or
/// keeps them apart (`writev(2)`), with and without `flush` between pieces
/// (chunked), one request at a time and pipelined: each response arrives
/// whole, in order, byte for byte.
#[tokio::test]
async fn bodies_joined_to_the_head_or_sent_beside_it_arrive_byte_for_byte() {
    fn pattern(len: usize, seed: usize) -> Vec<u8> {
        (0..len).map(|i| ((i * 7 + seed) % 251) as u8).collect()
    }
    // Path: /LEN/PIECE/FLUSH (FLUSH 1: flush after every piece).
    let handler = |request: Request, mut response: ResponseWriter| async move {
        let spec: Vec<usize> = request.path()[1..]
            .split('/')
            .map(|n| n.parse().unwrap())
            .collect();
        let (len, piece, flush) = (spec[0], spec[1], spec[2] == 1);
        let body = pattern(len, len);
        for piece in body.chunks(piece) {
            response.write_all(piece).await?;
            if flush {
                response.flush().await?;
            }
        }
        Ok(())
    };
    let server = spawn(config_with_buffer(8192), handler).await;
    let cases: Vec<(usize, usize, usize)> = [0, 1, 13, 1000, 4095, 4096, 4097, 5000, 8192]
        .into_iter()
        .flat_map(|len| [(len, 4096, 0), (len, 700, 1)])
        .chain([(8193, 8192, 0), (20_000, 3000, 0), (20_000, 500, 1)])
        .collect();
    let paths: Vec<String> = cases
        .iter()
        .map(|(len, piece, flush)| format!("/{len}/{piece}/{flush}"))
        .collect();

    // One at a time on one connection.
    let mut stream = connect(server.addr).await;
    for (path, (len, _, _)) in paths.iter().zip(&cases) {
        stream_write(&mut stream, &get(path)).await;
        let response = read_response(&mut stream, false).await;
        assert_eq!(response.status, 200, "{path}");
        assert!(response.complete, "{path}");
        assert_eq!(response.body, pattern(*len, *len), "{path}");
    }

    // All pipelined in one write; the last asks to close.
    let mut requests = Vec::new();
    for path in &paths {
        requests.extend_from_slice(&get(path));
    }
    requests.extend_from_slice(b"GET /0/1/0 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let raw = raw_exchange(server.addr, &requests).await;
    let responses = parse_responses(&raw, &[]);
    assert_eq!(responses.len(), cases.len() + 1);
    for ((response, path), (len, _, _)) in responses.iter().zip(&paths).zip(&cases) {
        assert_eq!(response.status, 200, "{path}");
        assert!(response.complete, "{path}");
        assert_eq!(response.body, pattern(*len, *len), "{path}");
    }
}
