//! `hangup serve` speaking HTTP well: `Cache-Control`, the 412
//! preconditions and their order, `OPTIONS`, 405 and 501, precompressed
//! siblings and compression on the fly. Run as the built binary over raw
//! sockets, as `cli_serve` does.

use std::time::{Duration, UNIX_EPOCH};

use tokio::io::AsyncReadExt;

use crate::cli_serve::{Served, request, site};

/// A text of `len` bytes that compresses well, but not to nothing.
fn text_of(len: usize) -> Vec<u8> {
    let words = [
        "hangup ", "serve ", "knows ", "when ", "the ", "client ", "left. ",
    ];
    let mut out = Vec::with_capacity(len + 8);
    let mut i = 0usize;
    while out.len() < len {
        out.extend_from_slice(words[(i * 7 + i / 3) % words.len()].as_bytes());
        out.extend_from_slice(i.to_string().as_bytes());
        i += 1;
    }
    out.truncate(len);
    out
}

/// Decodes `body` sent with `Content-Encoding: coding`.
async fn decode(coding: &str, body: &[u8]) -> Vec<u8> {
    use async_compression::tokio::bufread::{BrotliDecoder, GzipDecoder, ZstdDecoder};
    let mut out = Vec::new();
    let result = match coding {
        "gzip" => GzipDecoder::new(body).read_to_end(&mut out).await,
        "br" => BrotliDecoder::new(body).read_to_end(&mut out).await,
        "zstd" => ZstdDecoder::new(body).read_to_end(&mut out).await,
        other => panic!("unexpected coding {other}"),
    };
    result.unwrap_or_else(|err| panic!("{coding} body does not decode: {err}"));
    out
}

#[tokio::test]
async fn files_and_listings_say_no_cache_by_default_and_what_they_are_told_otherwise() {
    let (_scratch, root) = site("cache-control");
    let served = Served::start(&root);
    let file = served.get("/hello.txt", &[]).await;
    assert_eq!(file.header("cache-control"), Some("no-cache"));
    let etag = file.header("etag").unwrap().to_owned();
    let revalidated = served.get("/hello.txt", &[("If-None-Match", &etag)]).await;
    assert_eq!(revalidated.status, 304);
    assert_eq!(revalidated.header("cache-control"), Some("no-cache"));
    let listing = served.get("/listing/", &[]).await;
    assert_eq!(listing.header("cache-control"), Some("no-cache"));
    // Errors are never stored.
    let missing = served.get("/nope", &[]).await;
    assert_eq!(missing.header("cache-control"), Some("no-store"));
    drop(served);

    let served = Served::start_with(&root, "info", &["--cache-control", "public, max-age=3600"]);
    let file = served.get("/hello.txt", &[]).await;
    assert_eq!(file.header("cache-control"), Some("public, max-age=3600"));
    let listing = served.get("/listing/", &[]).await;
    assert_eq!(
        listing.header("cache-control"),
        Some("public, max-age=3600")
    );
}

/// RFC 9110 §13.1.1, §13.1.4 and §13.2.2: `If-Match` (strong comparison)
/// and `If-Unmodified-Since` answer 412 when they do not hold; a
/// matching `If-Match` makes `If-Unmodified-Since` irrelevant; a failing
/// `If-Match` wins over a matching `If-None-Match`.
#[tokio::test]
async fn if_match_and_if_unmodified_since_answer_412_in_the_rfcs_order() {
    let (_scratch, root) = site("preconditions");
    let stamp = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    std::fs::File::options()
        .write(true)
        .open(root.join("hello.txt"))
        .unwrap()
        .set_modified(stamp)
        .unwrap();
    let served = Served::start(&root);
    let etag = served
        .get("/hello.txt", &[])
        .await
        .header("etag")
        .unwrap()
        .to_owned();
    let weak = format!("W/{etag}");
    let before = "Tue, 14 Nov 2023 22:13:19 GMT";
    let at = httpdate::fmt_http_date(stamp);
    let cases: Vec<(Vec<(&str, &str)>, u16)> = vec![
        (vec![("If-Match", etag.as_str())], 200),
        (vec![("If-Match", "*")], 200),
        (vec![("If-Match", "\"other\", \"x\"")], 412),
        (vec![("If-Match", weak.as_str())], 412),
        (vec![("If-Unmodified-Since", before)], 412),
        (vec![("If-Unmodified-Since", at.as_str())], 200),
        (vec![("If-Unmodified-Since", "not a date")], 200),
        (
            vec![("If-Match", etag.as_str()), ("If-Unmodified-Since", before)],
            200,
        ),
        (
            vec![("If-Match", "\"other\""), ("If-None-Match", etag.as_str())],
            412,
        ),
        (
            vec![
                ("If-Match", etag.as_str()),
                ("If-None-Match", etag.as_str()),
            ],
            304,
        ),
    ];
    for (extra, status) in cases {
        let response = served.get("/hello.txt", &extra).await;
        assert_eq!(response.status, status, "{extra:?}: {}", response.text());
        if status == 412 {
            assert!(response.text().starts_with("412 Precondition Failed"));
            assert_eq!(
                response.header("content-type"),
                Some("text/plain; charset=utf-8")
            );
        }
    }
    // A listing has validators too, and the same rules.
    let listing = served.get("/listing/", &[]).await;
    let tag = listing.header("etag").expect("a listing ETag").to_owned();
    assert!(listing.header("last-modified").is_some());
    assert_eq!(
        served
            .get("/listing/", &[("If-None-Match", &tag)])
            .await
            .status,
        304
    );
    assert_eq!(
        served
            .get("/listing/", &[("If-Match", "\"old\"")])
            .await
            .status,
        412
    );
    std::fs::write(root.join("listing/new.txt"), "new\n").unwrap();
    let changed = served.get("/listing/", &[("If-None-Match", &tag)]).await;
    assert_eq!(changed.status, 200, "a stale listing was confirmed");
    assert!(changed.text().contains("new.txt"));
}

#[tokio::test]
async fn options_answers_allow_unknown_methods_501_and_known_ones_405() {
    let (_scratch, root) = site("methods");
    let served = Served::start(&root);
    for target in ["/hello.txt", "*"] {
        let options = served.exchange(&request("OPTIONS", target, &[])).await;
        assert_eq!(options.status, 204, "{target}");
        assert_eq!(options.header("allow"), Some("GET, HEAD, OPTIONS"));
        assert!(options.body.is_empty());
    }
    for method in ["DELETE", "PUT", "POST", "PATCH", "PROPFIND", "TRACE"] {
        let response = served
            .exchange(&request(method, "/hello.txt", &[("Content-Length", "0")]))
            .await;
        assert_eq!(response.status, 405, "{method}");
        assert_eq!(
            response.header("allow"),
            Some("GET, HEAD, OPTIONS"),
            "{method}"
        );
    }
    for method in ["BREW", "FOO"] {
        let response = served
            .exchange(&request(method, "/hello.txt", &[("Content-Length", "0")]))
            .await;
        assert_eq!(response.status, 501, "{method}");
    }
    drop(served);
    let served = Served::start_with(&root, "info", &["--upload"]);
    let options = served.exchange(&request("OPTIONS", "/", &[])).await;
    assert_eq!(
        options.header("allow"),
        Some("GET, HEAD, OPTIONS, PUT, POST")
    );
    let delete = served.exchange(&request("DELETE", "/hello.txt", &[])).await;
    assert_eq!(delete.status, 405);
    assert_eq!(
        delete.header("allow"),
        Some("GET, HEAD, OPTIONS, PUT, POST")
    );
}

/// `app.js` with `app.js.br` and `app.js.gz` beside it: the client's
/// q-values pick one (ties to the smaller), every answer says `Vary:
/// Accept-Encoding`, each representation has its own ETag, and a range
/// is a range of the bytes sent.
#[tokio::test]
async fn precompressed_siblings_are_chosen_by_q_value_with_their_own_tags_and_ranges() {
    let (_scratch, root) = site("siblings");
    std::fs::write(root.join("app.js"), b"console.log('identity');\n").unwrap();
    // The siblings' bytes are served as stored: any bytes will do.
    std::fs::write(root.join("app.js.br"), b"BROTLI-BYTES-0123456789").unwrap();
    std::fs::write(root.join("app.js.gz"), b"GZIP-BYTES-0123456789").unwrap();
    let served = Served::start(&root);

    let mut tags = Vec::new();
    for (accept, coding, body) in [
        (None, None, &b"console.log('identity');\n"[..]),
        (
            Some("gzip, deflate, br, zstd"),
            Some("br"),
            b"BROTLI-BYTES-0123456789",
        ),
        (Some("gzip"), Some("gzip"), b"GZIP-BYTES-0123456789"),
        (
            Some("br;q=0.1, gzip"),
            Some("gzip"),
            b"GZIP-BYTES-0123456789",
        ),
        (Some("zstd"), None, b"console.log('identity');\n"),
        (
            Some("br;q=0, gzip;q=0"),
            None,
            b"console.log('identity');\n",
        ),
    ] {
        let extra: Vec<(&str, &str)> = accept.map(|a| ("Accept-Encoding", a)).into_iter().collect();
        let response = served.get("/app.js", &extra).await;
        assert_eq!(response.status, 200, "{accept:?}");
        assert_eq!(response.header("content-encoding"), coding, "{accept:?}");
        assert_eq!(response.body, body, "{accept:?}");
        assert_eq!(
            response.header("vary"),
            Some("accept-encoding"),
            "{accept:?}"
        );
        assert_eq!(
            response.header("content-type"),
            Some("text/javascript; charset=utf-8"),
            "{accept:?}"
        );
        assert_eq!(
            response.header("content-length"),
            Some(body.len().to_string().as_str())
        );
        tags.push((coding, response.header("etag").unwrap().to_owned()));
    }
    let identity = &tags[0].1;
    let br = &tags[1].1;
    let gz = &tags[2].1;
    assert!(identity != br && br != gz && identity != gz, "{tags:?}");

    // Revalidation compares with the representation chosen now.
    let current = served
        .get(
            "/app.js",
            &[("Accept-Encoding", "br"), ("If-None-Match", br)],
        )
        .await;
    assert_eq!(current.status, 304);
    assert_eq!(current.header("vary"), Some("accept-encoding"));
    let other = served
        .get(
            "/app.js",
            &[("Accept-Encoding", "gzip"), ("If-None-Match", br)],
        )
        .await;
    assert_eq!(other.status, 200);

    // A range of the Brotli bytes.
    let range = served
        .get(
            "/app.js",
            &[("Accept-Encoding", "br"), ("Range", "bytes=7-11")],
        )
        .await;
    assert_eq!(range.status, 206);
    assert_eq!(range.header("content-encoding"), Some("br"));
    assert_eq!(range.header("content-range"), Some("bytes 7-11/23"));
    assert_eq!(range.body, b"BYTES");

    // A file without siblings does not vary.
    let plain = served.get("/hello.txt", &[("Accept-Encoding", "br")]).await;
    assert_eq!(plain.header("vary"), None);
    assert_eq!(plain.header("content-encoding"), None);
}

/// `--compress`: text of 1 KiB or more, compressed with the coding the
/// client prefers, chunked, a weak ETag of its own, no ranges; a request
/// with a Range gets the file itself; small files, images and clients
/// that accept no coding get the file as it is.
#[tokio::test]
async fn compress_on_the_fly_sends_text_compressed_and_ranges_of_the_file_itself() {
    let (_scratch, root) = site("compress");
    let text = text_of(300_000);
    std::fs::write(root.join("big.txt"), &text).unwrap();
    std::fs::write(root.join("small.txt"), &text[..500]).unwrap();
    std::fs::write(root.join("photo.png"), &text[..5000]).unwrap();
    let served = Served::start_with(&root, "info", &["--compress"]);

    for (accept, coding) in [
        ("gzip", "gzip"),
        ("br", "br"),
        ("zstd", "zstd"),
        ("gzip, br, zstd", "br"),
        ("gzip;q=1, br;q=0.5", "gzip"),
    ] {
        let response = served.get("/big.txt", &[("Accept-Encoding", accept)]).await;
        assert_eq!(response.status, 200, "{accept}");
        assert_eq!(
            response.header("content-encoding"),
            Some(coding),
            "{accept}"
        );
        assert_eq!(response.header("content-length"), None, "{accept}");
        assert_eq!(response.header("transfer-encoding"), Some("chunked"));
        assert!(response.complete, "{accept}: the last chunk is missing");
        assert_eq!(response.header("accept-ranges"), Some("none"));
        assert_eq!(response.header("vary"), Some("accept-encoding"));
        let etag = response.header("etag").unwrap();
        assert!(etag.starts_with("W/\""), "{etag}");
        assert!(
            response.body.len() < text.len() / 2,
            "{accept}: {} bytes",
            response.body.len()
        );
        assert!(
            decode(coding, &response.body).await == text,
            "{accept}: wrong bytes"
        );
        let again = served
            .get(
                "/big.txt",
                &[("Accept-Encoding", accept), ("If-None-Match", etag)],
            )
            .await;
        assert_eq!(again.status, 304, "{accept}");
    }

    let range = served
        .get(
            "/big.txt",
            &[("Accept-Encoding", "gzip"), ("Range", "bytes=100-199")],
        )
        .await;
    assert_eq!(range.status, 206);
    assert_eq!(range.header("content-encoding"), None);
    assert_eq!(range.body, &text[100..200]);

    for (target, accept) in [
        ("/small.txt", "gzip"),
        ("/photo.png", "gzip"),
        ("/big.txt", "identity"),
    ] {
        let response = served.get(target, &[("Accept-Encoding", accept)]).await;
        assert_eq!(
            response.header("content-encoding"),
            None,
            "{target} {accept}"
        );
        assert!(response.header("content-length").is_some(), "{target}");
    }
    let identity = served.get("/big.txt", &[]).await;
    assert!(identity.body == text);
    assert_eq!(identity.header("vary"), Some("accept-encoding"));
    drop(served);

    // Without --compress, nothing is compressed on the fly.
    let served = Served::start(&root);
    let response = served.get("/big.txt", &[("Accept-Encoding", "gzip")]).await;
    assert_eq!(response.header("content-encoding"), None);
    assert_eq!(response.header("vary"), None);
}
