//! Criterion benchmarks for the request path, through the
//! `hangup::__private` entry points: head parsing, chunked body decoding,
//! response-head encoding, and the two together ("parse → respond": the
//! CPU work of one keep-alive `GET /plaintext` outside the socket calls).
//!
//! Each `__private` call copies its input into a fresh `BytesMut` (one
//! allocation plus a memcpy of the input) before parsing, as the
//! connection's read buffer would already hold it; that copy is part of
//! every number here, so the numbers are an upper bound on the parser's
//! own cost.
//!
//! Run: `cargo bench --bench parse_respond` (add `-- --quick` for a short,
//! rougher run).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hangup::__private::{decode_chunked, encode_response_head, parse_head};
use hangup::http::{HeaderMap, HeaderValue, header};

/// What wrk sends: the shortest realistic head, the hot path of every
/// plaintext benchmark.
const WRK_GET: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";

/// What wrk sends for the plaintext scenarios of `bench/run`.
const WRK_PLAINTEXT: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:3100\r\n\r\n";

/// The body of the hello response (`examples/bench_server`, `/plaintext`).
const HELLO: &[u8] = b"Hello, World!";

/// The fields `examples/bench_server` sets for `/plaintext`.
fn hello_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    headers
}

/// A browser's navigation request: request line plus 10 fields, 538
/// bytes, close to what Firefox and Chrome send for a page load.
const BROWSER_GET: &[u8] =
    b"GET /articles/2024/hangup-explained?utm_source=feed&ref=home HTTP/1.1\r\n\
Host: www.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Referer: https://www.example.com/\r\n\
Connection: keep-alive\r\n\
Cookie: session=3f9a1c0e7b2d4a6f8e1c3b5d7f9a2c4e; theme=dark; consent=1\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Sec-Fetch-Dest: document\r\n\
\r\n";

/// 16 chunks of 1 KiB each, then the last chunk: a streamed upload.
fn chunked_16_x_1kib() -> (Vec<u8>, usize) {
    let chunk = [b'x'; 1024];
    let mut wire = Vec::new();
    for _ in 0..16 {
        wire.extend_from_slice(b"400\r\n");
        wire.extend_from_slice(&chunk);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"0\r\n\r\n");
    (wire, 16 * chunk.len())
}

fn parse_heads(c: &mut Criterion) {
    // `parse_head` parses and then builds the `Uri` and the header map on
    // first access, in fresh parts: a handler asking for both on a new
    // connection, the dearest case (on a kept connection the parser builds
    // them into reused tables, or not at all if handlers do not ask). Since
    // 7f93aa5; earlier figures built both while parsing, also in fresh
    // parts.
    let mut group = c.benchmark_group("parse_head");
    for (name, head) in [("wrk_get", WRK_GET), ("browser_get", BROWSER_GET)] {
        // A benchmark of a head the parser rejects would measure nothing.
        assert_eq!(parse_head(head), Ok(Some(head.len())), "{name}");
        group.throughput(Throughput::Bytes(head.len() as u64));
        group.bench_function(name, |b| b.iter(|| parse_head(black_box(head))));
    }
    // What every `parse_head` call does besides parsing (a default `Config`
    // for the limits, the copy into a fresh `BytesMut`): subtract it from the
    // figures above to get the parser's own cost.
    group.throughput(Throughput::Bytes(WRK_GET.len() as u64));
    group.bench_function("wrapper_only", |b| {
        b.iter(|| {
            let config = hangup::Config::default();
            let buf = bytes::BytesMut::from(black_box(WRK_GET));
            (black_box(config).write_buffer_bytes(), buf.len())
        })
    });
    group.finish();
}

fn decode_chunked_bodies(c: &mut Criterion) {
    let (wire, data_len) = chunked_16_x_1kib();
    let decoded = decode_chunked(&wire).unwrap().unwrap();
    assert_eq!((decoded.0.len(), decoded.1), (data_len, wire.len()));

    let mut group = c.benchmark_group("decode_chunked");
    group.throughput(Throughput::Bytes(wire.len() as u64));
    group.bench_function("16_x_1kib", |b| b.iter(|| decode_chunked(black_box(&wire))));
    group.finish();
}

fn encode_heads(c: &mut Criterion) {
    let headers = hello_headers();
    let mut out = Vec::with_capacity(256);
    encode_response_head(&headers, HELLO.len() as u64, &mut out);
    assert!(
        out.starts_with(b"HTTP/1.1 200 OK\r\n") && out.ends_with(b"content-length: 13\r\n\r\n")
    );

    let mut group = c.benchmark_group("encode_response_head");
    group.throughput(Throughput::Bytes(out.len() as u64));
    // The output buffer is reused, as the connection's write buffer is.
    group.bench_function("hello", |b| {
        b.iter(|| {
            encode_response_head(black_box(&headers), black_box(HELLO.len() as u64), &mut out);
            black_box(out.len())
        })
    });
    group.finish();
}

/// One keep-alive `GET /plaintext` as the server handles it, minus the
/// socket: parse the head wrk sends, then encode the hello response's head.
/// A regression in head parsing or head encoding shows here (the socket
/// path and the handler are measured by `bench/run`).
fn parse_respond(c: &mut Criterion) {
    let headers = hello_headers();
    let mut out = Vec::with_capacity(256);
    assert_eq!(parse_head(WRK_PLAINTEXT), Ok(Some(WRK_PLAINTEXT.len())));

    let mut group = c.benchmark_group("parse_respond");
    group.throughput(Throughput::Elements(1));
    group.bench_function("wrk_plaintext", |b| {
        b.iter(|| {
            let used = parse_head(black_box(WRK_PLAINTEXT));
            encode_response_head(black_box(&headers), HELLO.len() as u64, &mut out);
            (used, out.len())
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    parse_heads,
    decode_chunked_bodies,
    encode_heads,
    parse_respond
);
criterion_main!(benches);
