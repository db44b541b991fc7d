//! The puzzle's server: sleep one second, then write N bytes in one call
//! (N from the first argument, default 8061), and print what that write and
//! the response's end returned. Try it with a client that gives up early:
//!
//! ```text
//! cargo run --example seed -- 8061
//! curl -m 0.5 http://127.0.0.1:3000/      # gives up during the sleep
//! ```
//!
//! With hangup's socket watch the handler learns of the FIN during the
//! sleep (printed as the hang-up), whatever N is.

use std::time::Duration;

use hangup::{Config, Request, ResponseWriter, Server};

/// The puzzle's response size, in bytes.
pub const DEFAULT_SIZE: usize = 8061;

/// Sleeps one second, writes `size` bytes in one call and prints what the
/// write saw. Any method: a HEAD gets the same head (`Content-Length`
/// included) and no body. (Public so that the integration tests serve this
/// very handler.)
pub async fn respond(
    size: usize,
    request: Request,
    mut response: ResponseWriter,
) -> hangup::Result<()> {
    tokio::time::sleep(Duration::from_secs(1)).await;
    let body = vec![b'x'; size];
    let result = response.write(&body).await;
    match (&result, request.hangup()) {
        (Ok(n), None) => {
            println!("write of {size} bytes: ok ({n} accepted), client still here")
        }
        (Ok(n), Some(hangup)) => {
            println!("write of {size} bytes: ok ({n} accepted), but the client hung up: {hangup}")
        }
        (Err(err), _) => println!("write of {size} bytes: {err}"),
    }
    result.map(drop)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let size: usize = match std::env::args().nth(1) {
        Some(arg) => arg
            .parse()
            .map_err(|_| format!("size must be a number of bytes, got {arg:?}"))?,
        None => DEFAULT_SIZE,
    };
    let addr = std::env::var("HANGUP_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let handler =
        move |request: Request, response: ResponseWriter| respond(size, request, response);
    let server = Server::bind(&addr, Config::default(), handler).await?;
    eprintln!(
        "seed: listening on http://{}, writing {size} bytes after 1 s",
        server.local_addr()?
    );
    server.run().await?;
    Ok(())
}
