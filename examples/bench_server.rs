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
//! ```
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
    let config = builder.build()?;
    let server = Server::bind(&addr, config, route).await?;
    eprintln!(
        "bench_server: listening on http://{} (socket watch {})",
        server.local_addr()?,
        if watch { "on" } else { "off" }
    );
    server.run().await?;
    Ok(())
}
