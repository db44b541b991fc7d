//! An axum `Router` on hangup, unchanged but for the line that serves it:
//!
//! - `GET /` and `GET /plaintext` → `Hello, World!`;
//! - `POST /echo` → the request body, streamed back as it arrives;
//! - `GET /events` → server-sent events, one every 100 ms, that stop the
//!   moment the client leaves (hangup stops polling the stream and drops
//!   it: its `Drop` prints the report). The route takes a client's FIN as
//!   leaving (`OnFin::Abort`, through the `HangupPolicy` layer): under the
//!   server's default, `OnFin::Notify`, a FIN may be a half-close, and the
//!   stream would stop only at the write the client's reset refuses;
//! - `GET /slow` → answers after 5 s, unless the client leaves first: the
//!   handler waits on the request's `HangupSignal` (an `Extension`; with
//!   hangup's `axum` feature it is an extractor of its own).
//!
//! ```text
//! cargo run --example axum [ADDR]     # ADDR or $HANGUP_ADDR, default 127.0.0.1:3000
//! curl -N http://127.0.0.1:3000/events    # Ctrl-C it: the server prints when it noticed
//! ```

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Extension;
use axum::response::sse::{Event, Sse};
use axum::routing::{get, post};
use futures_util::Stream;
use hangup::{HangupPolicy, HangupSignal, OnFin};

/// The app, as one would write it for `axum::serve`. (Public so that the
/// integration tests serve this very router.)
pub fn app() -> Router {
    Router::new()
        .route("/", get(hello))
        .route("/plaintext", get(hello))
        .route("/echo", post(echo))
        .route(
            "/events",
            get(events).layer(HangupPolicy::new().on_fin(OnFin::Abort)),
        )
        .route("/slow", get(slow))
}

async fn hello() -> &'static str {
    "Hello, World!"
}

/// The request body is the response body: frames pass through as they
/// come, whatever the size, in flat memory.
async fn echo(body: Body) -> Body {
    body
}

/// Ticks until the client leaves; hangup drops the stream then, without
/// waiting for its next tick.
async fn events(
    Extension(signal): Extension<HangupSignal>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let ticks = Ticks {
        n: 0,
        interval: tokio::time::interval(Duration::from_millis(100)),
        signal,
    };
    Sse::new(futures_util::stream::unfold(
        ticks,
        |mut ticks| async move {
            ticks.interval.tick().await;
            ticks.n += 1;
            let event = Event::default().data(format!("tick {}", ticks.n));
            Some((Ok(event), ticks))
        },
    ))
}

/// The events' state; dropped when hangup drops the stream.
struct Ticks {
    n: u64,
    interval: tokio::time::Interval,
    signal: HangupSignal,
}

impl Drop for Ticks {
    fn drop(&mut self) {
        match self.signal.hangup() {
            Some(hangup) => println!("events stopped after {} ticks: {hangup}", self.n),
            None => println!("events stopped after {} ticks", self.n),
        }
    }
}

/// Slow work that stops as soon as nobody waits for it.
async fn slow(Extension(signal): Extension<HangupSignal>) -> String {
    tokio::select! {
        () = tokio::time::sleep(Duration::from_secs(5)) => "done after 5 s\n".to_owned(),
        hangup = signal.hung_up() => {
            println!("/slow: the client left, work stopped: {hangup}");
            format!("the client left: {hangup}\n")
        }
    }
}

#[allow(dead_code)]
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("HANGUP_ADDR").ok())
        .unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!(
        "axum on hangup: listening on http://{}",
        listener.local_addr()?
    );
    // With axum::serve, this line would read: axum::serve(listener, app()).await?
    hangup::serve(listener, hangup::Config::default(), app()).await?;
    Ok(())
}
