//! `GET /` → `Hello, World!` (and `HEAD /` → its head); `POST /echo` →
//! the request body, whatever its framing (`Content-Length` or chunked);
//! anything else → 404.
//!
//! ```text
//! cargo run --example echo [ADDR]    # ADDR or $HANGUP_ADDR, default 127.0.0.1:3000
//! curl --data-binary @Cargo.toml http://127.0.0.1:3000/echo
//! ```

use hangup::http::{Method, StatusCode};
use hangup::{Config, Request, ResponseWriter, Server};

/// Answers one request: see the module docs. (Public so that the
/// integration tests serve this very route.)
pub async fn route(mut request: Request, mut response: ResponseWriter) -> hangup::Result<()> {
    match (request.method(), request.path()) {
        // HEAD wherever GET, as Go's ServeMux and axum's router do: the
        // writer sends the head GET would get, `Content-Length` included,
        // and drops the body.
        (&Method::GET | &Method::HEAD, "/") => response.write_all(b"Hello, World!").await,
        (&Method::POST, "/echo") => {
            // Stream it back chunk by chunk: memory stays flat for any size.
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
    let server = Server::bind(&addr, Config::default(), route).await?;
    eprintln!("echo: listening on http://{}", server.local_addr()?);
    server.run().await?;
    Ok(())
}
