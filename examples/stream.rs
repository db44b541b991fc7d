//! A server-sent-events stream that ticks until the client leaves, then
//! prints the hang-up report: the pattern for SSE and token streaming.
//!
//! ```text
//! cargo run --example stream [ADDR]     # ADDR or $HANGUP_ADDR, default 127.0.0.1:3000
//! curl -N http://127.0.0.1:3000/        # Ctrl-C it after a few ticks
//! ```
//!
//! The loop never has to fail a write to notice: the socket watch fires
//! `hung_up()` when the client's FIN or RST arrives, so the stream stops
//! at once, even between ticks.
//!
//! `HEAD` gets the stream's head (chunked, as the GET's) and no events.

use std::time::Duration;

use hangup::http::{HeaderValue, header};
use hangup::{Config, Request, ResponseWriter, Server};

/// Streams ticks until the client leaves. (Public so that the
/// integration tests serve this very handler.)
pub async fn events(request: Request, mut response: ResponseWriter) -> hangup::Result<()> {
    response.insert_header(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    )?;
    response.insert_header(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"))?;
    if response.is_head() {
        // A HEAD gets the GET's head and no body, and ticking would only
        // hold the connection until the client left. Flushing now frames
        // the head as the GET's (chunked: its length is unknown); returning
        // without it would announce `content-length: 0`, which is false.
        return response.flush().await;
    }
    let mut ticks = tokio::time::interval(Duration::from_millis(500));
    let hung_up = request.hung_up();
    tokio::pin!(hung_up);
    for n in 0u64.. {
        tokio::select! {
            hangup = &mut hung_up => {
                println!("{} left after {n} ticks: {hangup}", request.remote_addr());
                return Ok(());
            }
            _ = ticks.tick() => {
                let event = format!("data: tick {n}\n\n");
                if let Err(err) = async {
                    response.write_all(event.as_bytes()).await?;
                    response.flush().await
                }
                .await
                {
                    println!("{} left after {n} ticks (seen by a write): {err}", request.remote_addr());
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("HANGUP_ADDR").ok())
        .unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    let server = Server::bind(&addr, Config::default(), events).await?;
    eprintln!("stream: listening on http://{}", server.local_addr()?);
    server.run().await?;
    Ok(())
}
