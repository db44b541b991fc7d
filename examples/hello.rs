//! `GET /` → `Hello, World!`: the smallest hangup server, used by the
//! benchmarks. Every request, whatever its method and path, gets this
//! answer; a HEAD gets the same head and no body (the writer drops body
//! bytes for HEAD and keeps their count for `Content-Length`).
//!
//! ```text
//! cargo run --release --example hello [ADDR]    # ADDR or $HANGUP_ADDR, default 127.0.0.1:3000
//! curl http://127.0.0.1:3000/
//! ```
//!
//! `HANGUP_SOCKET_WATCH=off` turns the socket watch off, so benchmarks can
//! measure what it costs.

use hangup::{Config, Request, ResponseWriter, Server};

/// Answers every request with `Hello, World!`. (Public so that the
/// integration tests serve this very handler.)
pub async fn hello(_request: Request, mut response: ResponseWriter) -> hangup::Result<()> {
    response.insert_header(
        hangup::http::header::CONTENT_TYPE,
        hangup::http::HeaderValue::from_static("text/plain"),
    )?;
    response.write_all(b"Hello, World!").await
}

/// One thread: the benchmarks pin the server to one core.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("HANGUP_ADDR").ok())
        .unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    let watch = std::env::var("HANGUP_SOCKET_WATCH").map_or(true, |v| v != "off");
    let config = Config::builder().socket_watch(watch).build()?;
    let server = Server::bind(&addr, config, hello).await?;
    eprintln!(
        "hello: listening on http://{} (socket watch {})",
        server.local_addr()?,
        if watch { "on" } else { "off" }
    );
    server.run().await?;
    Ok(())
}
