//! A probe for measuring hang-ups behind a proxy (`bench/proxies.py`):
//! three routes that each take a while, and one JSON line on stdout for
//! every event a measurement needs.
//!
//! ```text
//! cargo run --release --example proxy_probe [ADDR]   # ADDR or $HANGUP_ADDR, default 127.0.0.1:3000
//! curl -N 'http://127.0.0.1:3000/stream?id=a'        # Ctrl-C it, read the lines printed
//! ```
//!
//! Routes (`id` tags the request's lines; `ms` bounds its duration,
//! default and maximum 5000):
//!
//! - `GET /sleep?id=ID&ms=MS` sleeps up to `MS`, then answers `slept`.
//!   With `&keep=1` a half-close (FIN) is reported but does not stop it:
//!   it stops early only once the client is gone for good (an RST, or a
//!   failed write), so a client that half-closed and still reads gets
//!   its answer.
//! - `GET /stream?id=ID&ms=MS` streams a 16-byte chunk every 10 ms for up
//!   to `MS` (chunked on HTTP/1.1, close-delimited on HTTP/1.0).
//! - `GET /big?id=ID` writes 64 MiB with a `Content-Length`, in one write.
//!
//! Any route takes `&fin=abort`: this request runs under `OnFin::Abort`
//! (a FIN makes the client gone: writes fail at once) instead of the
//! server's `Notify`.
//!
//! Each handler races its work against [`Request::hung_up`]: told, it
//! stops and returns `Ok(())`, as README's and `stream.rs`'s handlers do,
//! or, with `&told=error`, returns the hang-up as its error
//! (`Error::ClientGone`), as `?` on a failed write would: the outcome
//! then says the handler gave up because its client left. The lines (times are Unix nanoseconds, the clock a
//! client on this machine reads too):
//!
//! ```text
//! {"ev":"start","id":..,"route":..,"t_ns":..}
//! {"ev":"told","id":..,"t_ns":..,"via":"signal"|"write",
//!  "cause":..,"phase":..,"detection":..,"written":..,"acked":..}   the handler learned the client left
//! {"ev":"done","id":..,"t_ns":..}                                  the handler finished its work untold
//! {"ev":"outcome","id":..,"t_ns":..,"status":..,"intended_status":..,"end":..,
//!  "cause":..,"phase":..,"written":..,"acked":..,"in_flight":..,
//!  "duration_us":..,"peer_closed_us":..}                           from the server's outcome hook
//! ```
//!
//! `via` says how the handler learned: the hang-up signal resolving
//! (`signal`; `gone` for `HangupSignal::gone` after a half-close under
//! `keep=1`), or a write returning `Error::ClientGone` (`write`). The
//! server runs with `Config::default()` otherwise (`on_fin = Notify`).

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hangup::http::{HeaderValue, StatusCode, header};
use hangup::{Config, End, Hangup, OnFin, Outcome, Request, ResponseWriter, Server};
use serde_json::{Value, json};

/// The `/big` body: 64 MiB, large enough that a proxy cannot hold it in
/// memory buffers (nginx's default `proxy_buffers` are 8 × 4 KiB or 8 KiB).
const BIG_BYTES: usize = 64 << 20;

/// The longest a `/sleep` or `/stream` request runs, in milliseconds.
const MAX_MS: u64 = 5000;

/// Between two `/stream` chunks.
const STREAM_INTERVAL: Duration = Duration::from_millis(10);

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// One event line on stdout (Rust's stdout is line-buffered: each line
/// reaches the pipe as it is printed).
fn emit(mut line: Value) {
    line["t_ns"] = json!(now_ns().to_string());
    println!("{line}");
}

/// The value of `key` in a query string, if present.
fn query_param<'a>(query: Option<&'a str>, key: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

fn told(id: &str, via: &str, hangup: &Hangup) {
    let counters = hangup.counters();
    emit(json!({
        "ev": "told",
        "id": id,
        "via": via,
        "cause": hangup.cause().as_str(),
        "phase": hangup.phase().as_str(),
        "detection": hangup.detection().as_str(),
        "written": counters.written,
        "acked": counters.acked,
    }));
}

fn zeroes() -> &'static [u8] {
    static ZEROES: OnceLock<Vec<u8>> = OnceLock::new();
    ZEROES.get_or_init(|| vec![b'0'; BIG_BYTES])
}

/// How a handler told of a hang-up ends: `Ok(())` (what README's and
/// `stream.rs`'s handlers do), or with the hang-up as its error, as `?`
/// on a failed write would (`&told=error`).
fn stop(pass_on: bool, hangup: Hangup) -> hangup::Result<()> {
    if pass_on {
        Err(hangup::Error::ClientGone(hangup))
    } else {
        Ok(())
    }
}

/// What a write error means here: the client left (report it, stop), or
/// something else (pass it on).
fn on_write_error(id: &str, err: hangup::Error, pass_on: bool) -> hangup::Result<()> {
    match err.hangup() {
        Some(hangup) => {
            told(id, "write", hangup);
            if pass_on { Err(err) } else { Ok(()) }
        }
        None => Err(err),
    }
}

async fn probe(request: Request, mut response: ResponseWriter) -> hangup::Result<()> {
    let query = request.uri().query();
    let id = query_param(query, "id").unwrap_or("-").to_owned();
    let ms = query_param(query, "ms")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(MAX_MS)
        .min(MAX_MS);
    let keep = query_param(query, "keep") == Some("1");
    let pass_on = query_param(query, "told") == Some("error");
    if query_param(query, "fin") == Some("abort") {
        request.set_on_fin(OnFin::Abort);
    }
    let route = request.path().to_owned();
    emit(json!({"ev": "start", "id": id, "route": route}));
    let hung_up = request.hung_up();
    tokio::pin!(hung_up);
    match route.as_str() {
        "/sleep" => {
            let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
            tokio::select! {
                hangup = &mut hung_up => {
                    told(&id, "signal", &hangup);
                    if !(keep && hangup.is_half_close()) {
                        return stop(pass_on, hangup);
                    }
                    // A half-close: the client may still read. Go on
                    // sleeping, and stop only if it is gone for good.
                    let signal = request.hangup_signal();
                    tokio::select! {
                        hangup = signal.gone() => {
                            told(&id, "gone", &hangup);
                            return stop(pass_on, hangup);
                        }
                        _ = tokio::time::sleep_until(deadline) => {}
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {}
            }
            emit(json!({"ev": "done", "id": id}));
            match response.write_all(b"slept\n").await {
                Ok(()) => Ok(()),
                Err(err) => on_write_error(&id, err, pass_on),
            }
        }
        "/stream" => {
            let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
            let mut ticks = tokio::time::interval(STREAM_INTERVAL);
            loop {
                tokio::select! {
                    hangup = &mut hung_up => {
                        told(&id, "signal", &hangup);
                        return stop(pass_on, hangup);
                    }
                    _ = tokio::time::sleep_until(deadline) => {
                        emit(json!({"ev": "done", "id": id}));
                        return Ok(());
                    }
                    _ = ticks.tick() => {
                        let written = async {
                            response.write_all(b"0123456789abcde\n").await?;
                            response.flush().await
                        };
                        if let Err(err) = written.await {
                            return on_write_error(&id, err, pass_on);
                        }
                    }
                }
            }
        }
        "/big" => {
            response.insert_header(header::CONTENT_LENGTH, HeaderValue::from(BIG_BYTES))?;
            tokio::select! {
                hangup = &mut hung_up => {
                    told(&id, "signal", &hangup);
                    stop(pass_on, hangup)
                }
                result = response.write_all(zeroes()) => match result {
                    Ok(()) => {
                        emit(json!({"ev": "done", "id": id}));
                        Ok(())
                    }
                    Err(err) => on_write_error(&id, err, pass_on),
                },
            }
        }
        _ => {
            response.set_status(StatusCode::NOT_FOUND)?;
            response.write_all(b"routes: /sleep /stream /big\n").await
        }
    }
}

/// The outcome hook: one line per finished exchange.
fn outcome_line(outcome: &Outcome) {
    let query = outcome.uri.query();
    let id = query_param(query, "id").unwrap_or("-");
    let (end, phase) = match &outcome.end {
        End::Complete => ("complete", None),
        End::ClientGone(hangup) => ("client_gone", Some(hangup.phase().as_str())),
        End::CutShort(_) => ("cut_short", None),
        _ => ("other", None),
    };
    emit(json!({
        "ev": "outcome",
        "id": id,
        "status": outcome.status().as_u16(),
        "intended_status": outcome.intended_status.as_u16(),
        "end": end,
        "cause": outcome.cause(),
        "phase": phase,
        "written": outcome.counters.written,
        "acked": outcome.counters.acked,
        "in_flight": outcome.in_flight,
        "duration_us": outcome.duration.as_micros() as u64,
        "peer_closed_us": outcome.peer_closed_after.map(|d| d.as_micros() as u64),
    }));
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("HANGUP_ADDR").ok())
        .unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    zeroes();
    let config = Config::builder().on_outcome(outcome_line).build()?;
    let server = Server::bind(&addr, config, probe).await?;
    eprintln!("proxy_probe: listening on http://{}", server.local_addr()?);
    server.run().await?;
    Ok(())
}
