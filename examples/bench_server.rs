//! The benchmark server: the routes every peer in `bench/` implements.
//!
//! - `GET /plaintext` (and `GET /`) → `Hello, World!`
//! - `GET /bytes/N` → N bytes (at most 64 MiB) in one write, sent without
//!   copying (one vectored write of head and body)
//! - `POST /echo` → the request body, streamed back
//!
//! `HEAD` is answered wherever `GET` is: the same head, no body.
//!
//! ```text
//! cargo run --release --example bench_server [ADDR]   # default 127.0.0.1:3000
//! HANGUP_SOCKET_WATCH=off ...                          # measure the watch's cost
//! HANGUP_IDLE_RELEASE_MS=0 ...                         # free buffers at every wait
//! HANGUP_TLS_CERT=cert.pem HANGUP_TLS_KEY=key.pem ...  # HTTPS (`--features tls`)
//! ```
//!
//! With `HANGUP_TLS_CERT` and `HANGUP_TLS_KEY` (both PEM; they may name the
//! same file) it serves HTTPS with the configuration `hangup::tls::TlsFiles`
//! loads, as `hangup serve --tls-cert` does: rustls on the ring provider,
//! TLS 1.3 and 1.2, ALPN `http/1.1` (`bench/tls.py`). Built without the
//! `tls` feature (it is part of the default `cli` feature), it refuses them.
//!
//! One thread (current-thread runtime): the harness pins it to one core.

use std::sync::OnceLock;

use hangup::http::{HeaderValue, Method, StatusCode, header};
use hangup::{Config, Request, ResponseWriter, Server};

/// The largest `/bytes/N` body, in bytes.
const MAX_BYTES: usize = 64 << 20;

/// Zeroes shared by every `/bytes/N` response, allocated once.
fn zeroes() -> &'static [u8] {
    static ZEROES: OnceLock<Vec<u8>> = OnceLock::new();
    ZEROES.get_or_init(|| vec![b'0'; MAX_BYTES])
}

/// Answers one request: see the module docs. (Public so that the
/// integration tests serve this very route.)
pub async fn route(mut request: Request, mut response: ResponseWriter) -> hangup::Result<()> {
    let path = request.path();
    match (request.method(), path) {
        // HEAD wherever GET: the writer counts the body for the head's
        // `Content-Length` and sends none of it.
        (&Method::GET | &Method::HEAD, "/plaintext" | "/") => {
            response.insert_header(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"))?;
            response.write_all(b"Hello, World!").await
        }
        (&Method::GET | &Method::HEAD, _) if path.starts_with("/bytes/") => {
            match path["/bytes/".len()..].parse::<usize>() {
                Ok(n) if n <= MAX_BYTES => {
                    response.insert_header(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/octet-stream"),
                    )?;
                    response.insert_header(header::CONTENT_LENGTH, HeaderValue::from(n))?;
                    response.write_all(&zeroes()[..n]).await
                }
                _ => {
                    response.set_status(StatusCode::BAD_REQUEST)?;
                    response
                        .write_all(b"N must be a byte count up to 64 MiB\n")
                        .await
                }
            }
        }
        (&Method::POST, "/echo") => {
            while let Some(chunk) = request.body_mut().chunk().await? {
                response.write_all(&chunk).await?;
            }
            Ok(())
        }
        _ => {
            response.set_status(StatusCode::NOT_FOUND)?;
            response.write_all(b"not found\n").await
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("HANGUP_ADDR").ok())
        .unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    let watch = std::env::var("HANGUP_SOCKET_WATCH").map_or(true, |v| v != "off");
    let mut builder = Config::builder();
    builder.socket_watch(watch);
    if let Some(ms) = std::env::var("HANGUP_IDLE_RELEASE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        builder.idle_release_after(std::time::Duration::from_millis(ms));
    }
    let scheme = tls(&mut builder)?;
    let config = builder.build()?;
    let server = Server::bind(&addr, config, route).await?;
    eprintln!(
        "bench_server: listening on {scheme}://{} (socket watch {})",
        server.local_addr()?,
        if watch { "on" } else { "off" }
    );
    server.run().await?;
    Ok(())
}

/// HTTPS when `HANGUP_TLS_CERT` and `HANGUP_TLS_KEY` are set: the
/// configuration `TlsFiles::load` builds (no reload: the files do not
/// change during a benchmark). Returns the URL scheme.
#[cfg(feature = "tls")]
fn tls(builder: &mut hangup::ConfigBuilder) -> Result<&'static str, Box<dyn std::error::Error>> {
    match tls_files()? {
        None => Ok("http"),
        Some((cert, key)) => {
            let loaded = hangup::tls::TlsFiles::new(cert, key).load()?;
            for warning in &loaded.warnings {
                eprintln!("bench_server: warning: {warning}");
            }
            builder.tls(loaded.config);
            Ok("https")
        }
    }
}

#[cfg(not(feature = "tls"))]
fn tls(_: &mut hangup::ConfigBuilder) -> Result<&'static str, Box<dyn std::error::Error>> {
    match tls_files()? {
        None => Ok("http"),
        Some(_) => Err(
            "HANGUP_TLS_CERT is set, but bench_server was built without the `tls` feature".into(),
        ),
    }
}

/// `HANGUP_TLS_CERT` and `HANGUP_TLS_KEY`: both or neither.
fn tls_files() -> Result<Option<(String, String)>, Box<dyn std::error::Error>> {
    match (
        std::env::var("HANGUP_TLS_CERT").ok(),
        std::env::var("HANGUP_TLS_KEY").ok(),
    ) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => Ok(Some((cert, key))),
        _ => Err("set both HANGUP_TLS_CERT and HANGUP_TLS_KEY, or neither".into()),
    }
}
