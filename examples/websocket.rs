//! A WebSocket echo server on hangup's upgrade: `GET /ws` answers the
//! handshake with `101 Switching Protocols`, takes the connection with
//! `ResponseWriter::upgrade`, and echoes every message with
//! `tokio-tungstenite`.
//!
//! An idle socket still learns at once that its client left: the server
//! waits in a read, which returns as soon as the client's FIN (or RST)
//! arrives; it prints how the connection ended and when.
//!
//! ```text
//! cargo run --example websocket [ADDR]     # ADDR or $HANGUP_ADDR, default 127.0.0.1:3000
//! ```
//!
//! (axum's own `WebSocketUpgrade` needs hyper's upgrade machinery, which
//! hangup does not have: answer the handshake like this instead.)

use std::sync::Arc;
use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use hangup::http::header::{CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE};
use hangup::http::{HeaderValue, Method, StatusCode};
use hangup::{Config, Request, ResponseWriter, Server, Upgraded};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

/// The handshake: a WebSocket upgrade request on `/ws` gets its `101`,
/// and its connection is echoed on a task of its own; anything else a
/// short text. `on_end` hears how each socket ended. (Public so that the
/// integration tests serve this very handler.)
pub async fn route(
    request: Request,
    mut response: ResponseWriter,
    on_end: OnEnd,
) -> hangup::Result<()> {
    let is_upgrade = |name| {
        request
            .headers()
            .get(name)
            .is_some_and(|value: &HeaderValue| {
                value.as_bytes().split(|&b| b == b',').any(|token| {
                    token.trim_ascii().eq_ignore_ascii_case(b"websocket")
                        || token.trim_ascii().eq_ignore_ascii_case(b"upgrade")
                })
            })
    };
    let key = request.headers().get(SEC_WEBSOCKET_KEY).cloned();
    match (request.method(), request.path(), key) {
        (&Method::GET, "/ws", Some(key)) if is_upgrade(UPGRADE) && is_upgrade(CONNECTION) => {
            let accept = derive_accept_key(key.as_bytes());
            response.set_status(StatusCode::SWITCHING_PROTOCOLS)?;
            response.insert_header(UPGRADE, HeaderValue::from_static("websocket"))?;
            let accept = HeaderValue::from_str(&accept)
                .map_err(|err| hangup::Error::Io(std::io::Error::other(err)))?;
            response.insert_header(SEC_WEBSOCKET_ACCEPT, accept)?;
            let upgraded = response.upgrade(request).await?;
            tokio::spawn(echo(upgraded, on_end));
            Ok(())
        }
        (&Method::GET | &Method::HEAD, "/ws", _) => {
            response.set_status(StatusCode::BAD_REQUEST)?;
            response.write_all(b"a WebSocket handshake, please\n").await
        }
        _ => {
            response.set_status(StatusCode::NOT_FOUND)?;
            response
                .write_all(b"try /ws with a WebSocket client\n")
                .await
        }
    }
}

/// Echoes messages until the client leaves; then tells `on_end` how.
async fn echo(upgraded: Upgraded, on_end: OnEnd) {
    let remote = upgraded.remote_addr();
    let mut socket = WebSocketStream::from_raw_socket(upgraded, Role::Server, None).await;
    let mut last = Instant::now();
    let ended = loop {
        match socket.next().await {
            Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => {
                last = Instant::now();
                if let Err(err) = socket.send(message).await {
                    break format!("send failed: {err}");
                }
            }
            Some(Ok(Message::Close(_))) => break "closed with a close frame".to_owned(),
            Some(Ok(_)) => {}
            Some(Err(err)) => break format!("left: {err}"),
            None => break "left (FIN)".to_owned(),
        }
    };
    on_end(format!(
        "{remote} {ended}, {:?} after its last message",
        last.elapsed()
    ));
}

/// Where a socket's end is told.
pub type OnEnd = Arc<dyn Fn(String) + Send + Sync>;

#[allow(dead_code)]
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("HANGUP_ADDR").ok())
        .unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    let print: OnEnd = Arc::new(|line| println!("{line}"));
    let server = Server::bind(&addr, Config::default(), move |request, response| {
        route(request, response, print.clone())
    })
    .await?;
    eprintln!("websocket echo: ws://{}/ws", server.local_addr()?);
    server.run().await?;
    Ok(())
}
