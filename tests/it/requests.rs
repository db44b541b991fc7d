//! What a handler sees of its request: the method, target and fields its
//! own client sent (built lazily or not), nothing of the request before
//! it on the connection, and a request kept or split past its handler
//! that still works.

use std::time::Duration;

use hangup::{Request, ResponseWriter};

use crate::support::*;

/// The connection reuses a finished request's head for the next one: the
/// next handler sees its own fields only, and no extension left behind.
#[tokio::test]
async fn a_request_sees_nothing_of_the_previous_request_s_head() {
    #[derive(Clone)]
    struct Marker;
    let server = spawn_default(|mut req: Request, mut res: ResponseWriter| async move {
        let leftover = req.extensions_mut().get::<Marker>().is_some();
        req.extensions_mut().insert(Marker);
        let mut names: Vec<&str> = req.headers().keys().map(|name| name.as_str()).collect();
        names.sort_unstable();
        let text = format!(
            "{} {} {} leftover={leftover}",
            req.method(),
            req.uri(),
            names.join(",")
        );
        res.write_all(text.as_bytes()).await
    })
    .await;
    let mut stream = connect(server.addr).await;
    let mut many = String::from("PUT /first?q=1 HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n");
    for i in 0..40 {
        many.push_str(&format!("X-Field-{i}: {i}\r\n"));
    }
    many.push_str("\r\n");
    let requests: [&[u8]; 4] = [
        b"GET /a HTTP/1.1\r\nHost: t\r\nX-One: 1\r\nX-Two: 2\r\n\r\n",
        b"DELETE /b HTTP/1.1\r\nHost: t\r\n\r\n",
        many.as_bytes(),
        b"GET /c HTTP/1.1\r\nHost: t\r\nX-Three: 3\r\n\r\n",
    ];
    let mut texts = Vec::new();
    for request in requests {
        send(&mut stream, request).await;
        texts.push(read_response(&mut stream, false).await.text());
    }
    assert_eq!(texts[0], "GET /a host,x-one,x-two leftover=false");
    assert_eq!(texts[1], "DELETE /b host leftover=false");
    assert!(
        texts[2].starts_with("PUT /first?q=1 content-length,host,x-field-0,")
            && texts[2].ends_with(" leftover=false"),
        "{}",
        texts[2]
    );
    assert_eq!(texts[3], "GET /c host,x-three leftover=false");
}

/// The target and the fields are only located while parsing, and built
/// into `http` types while parsing or on first access depending on what
/// the connection's handlers asked for before. On one connection, through
/// both modes and the switches between them, in every target form, a
/// handler sees what its own client sent.
#[tokio::test]
async fn path_uri_and_fields_read_lazily_are_the_ones_sent() {
    // The path says what the handler reads (reading the path is not
    // reading the `Uri`).
    let server = spawn_default(|req: Request, mut res: ResponseWriter| async move {
        let path = req.path().to_owned();
        let text = if path.starts_with("/path") {
            path
        } else if path.starts_with("/uri") {
            format!("{} {:?}", req.uri(), req.uri().query())
        } else if path.starts_with("/fields") {
            let values: Vec<_> = req.headers().get_all("x-a").iter().collect();
            format!("{values:?}")
        } else if path.starts_with("/parts") || path == "*" {
            let (parts, _body) = req.into_parts();
            format!("{path} {} {}", parts.uri, parts.headers.len())
        } else {
            format!(
                "{path} {} {:?} {}",
                req.uri(),
                req.uri().query(),
                req.headers().get_all("x-a").iter().count()
            )
        };
        res.write_all(text.as_bytes()).await
    })
    .await;
    let mut stream = connect(server.addr).await;
    let mut cases: Vec<(String, String)> = vec![
        // Nothing asked before on this connection: both built on access.
        (
            "GET /all/a?c=d&e HTTP/1.1\r\nHost: t\r\nX-A: 1\r\nx-a: 2\r\n".into(),
            r#"/all/a /all/a?c=d&e Some("c=d&e") 2"#.into(),
        ),
        // Asked before: both built while parsing.
        (
            "GET /path/p%20q?x?y HTTP/1.1\r\nHost: t\r\n".into(),
            "/path/p%20q".into(),
        ),
        (
            "GET /fields/f HTTP/1.1\r\nHost: t\r\nX-A: 3\r\nX-A: 4\r\n".into(),
            r#"["3", "4"]"#.into(),
        ),
        (
            "GET /uri/u?k=v HTTP/1.1\r\nHost: t\r\n".into(),
            r#"/uri/u?k=v Some("k=v")"#.into(),
        ),
    ];
    // Enough requests that ask for neither for the connection to go back
    // to building on access.
    for i in 0..12 {
        cases.push((
            format!("GET /path/{i}?q={i} HTTP/1.1\r\nHost: t\r\nX-A: {i}\r\n"),
            format!("/path/{i}"),
        ));
    }
    cases.extend([
        (
            "GET /fields/g HTTP/1.1\r\nHost: t\r\nX-A: 5\r\n".into(),
            r#"["5"]"#.into(),
        ),
        (
            "GET /uri/v?w HTTP/1.1\r\nHost: t\r\n".into(),
            r#"/uri/v?w Some("w")"#.into(),
        ),
        (
            "GET http://t/all/abs?q HTTP/1.1\r\nHost: t\r\n".into(),
            r#"/all/abs http://t/all/abs?q Some("q") 0"#.into(),
        ),
        (
            "GET /all/caf\u{e9}?q HTTP/1.1\r\nHost: t\r\nX-A: 6\r\n".into(),
            "/all/caf\u{e9} /all/caf\u{e9}?q Some(\"q\") 1".into(),
        ),
        (
            "OPTIONS * HTTP/1.1\r\nHost: t\r\nX-B: 1\r\n".into(),
            "* * 2".into(),
        ),
        (
            "GET /parts/s?t HTTP/1.1\r\nHost: t\r\nX-A: 7\r\n".into(),
            "/parts/s /parts/s?t 2".into(),
        ),
    ]);
    for (head, expected) in &cases {
        send(&mut stream, format!("{head}\r\n").as_bytes()).await;
        let response = read_response(&mut stream, false).await;
        assert_eq!(
            (response.status, response.text().as_str()),
            (200, expected.as_str()),
            "{head:?}"
        );
    }
    // A target `http` refuses is answered with 400 and the connection
    // closes.
    send(&mut stream, b"GET /a<b HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(read_response(&mut stream, false).await.status, 400);
    assert!(closes_within(&mut stream, Duration::from_secs(5)).await);
}

/// A request, its body (`into_body`) or its parts (`into_parts`) moved to a
/// task that outlives the handler: the connection waits for the body to
/// come back before parsing the next (pipelined) head, every kept piece still
/// answers (head, body, addresses, hang-up state), and the request after them
/// sees only its own head, not a recycled one's fields.
#[tokio::test]
async fn a_request_kept_or_split_past_its_handler_still_works() {
    // The scenario: each task holds its piece this long after its handler
    // returned, so the connection is waiting for the body to come back.
    const HELD: Duration = Duration::from_millis(30);
    let server = spawn_default(|req: Request, mut res: ResponseWriter| async move {
        let path = req.path().to_owned();
        let x = |h: &hangup::http::HeaderMap| format!("{:?}", h.get("x-n"));
        match path.as_str() {
            "/kept" => {
                tokio::spawn(async move {
                    let mut req = req;
                    tokio::time::sleep(HELD).await;
                    let body = req.body_mut().read_all(64).await.unwrap();
                    let text = format!(
                        "kept {} {} {} {} gone={} local={}",
                        req.method(),
                        req.path(),
                        x(req.headers()),
                        String::from_utf8_lossy(&body),
                        req.hangup().is_some(),
                        req.local_addr().ip(),
                    );
                    res.write_all(text.as_bytes()).await.unwrap();
                    drop(req);
                });
            }
            "/body" => {
                let n = x(req.headers());
                let mut body = req.into_body();
                tokio::spawn(async move {
                    tokio::time::sleep(HELD).await;
                    let body = body.read_all(64).await.unwrap();
                    let text = format!("body {n} {}", String::from_utf8_lossy(&body));
                    res.write_all(text.as_bytes()).await.unwrap();
                });
            }
            "/parts" => {
                let (parts, mut body) = req.into_parts();
                tokio::spawn(async move {
                    tokio::time::sleep(HELD).await;
                    let body = body.read_all(64).await.unwrap();
                    let text = format!(
                        "parts {} {} {} {}",
                        parts.method,
                        parts.uri,
                        x(&parts.headers),
                        String::from_utf8_lossy(&body)
                    );
                    res.write_all(text.as_bytes()).await.unwrap();
                });
            }
            _ => {
                let text = format!("plain {path} {} {}", x(req.headers()), req.headers().len());
                res.write_all(text.as_bytes()).await?;
            }
        }
        Ok(())
    })
    .await;
    let post = |path: &str, n: u32, body: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\nX-N: {n}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let expected = [
        "kept POST /kept Some(\"1\") one gone=false local=127.0.0.1",
        "plain /after-kept None 1",
        "body Some(\"2\") two",
        "plain /after-body None 1",
        "parts POST /parts Some(\"3\") three",
        "plain /after-parts None 1",
    ];
    let all = [
        post("/kept", 1, "one"),
        String::from_utf8(get("/after-kept")).unwrap(),
        post("/body", 2, "two"),
        String::from_utf8(get("/after-body")).unwrap(),
        post("/parts", 3, "three"),
        String::from_utf8(get("/after-parts")).unwrap(),
    ];
    // One at a time, then all pipelined in one write.
    let mut stream = connect(server.addr).await;
    for (request, want) in all.iter().zip(expected) {
        send(&mut stream, request.as_bytes()).await;
        assert_eq!(read_response(&mut stream, false).await.text(), want);
    }
    send(&mut stream, all.concat().as_bytes()).await;
    for want in expected {
        assert_eq!(read_response_prefix(&mut stream).await, want);
    }
}
