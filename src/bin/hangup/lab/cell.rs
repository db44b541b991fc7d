//! One cell of the lab: one server, one client that gives up, one
//! response of a given size, and a record of everything the handler and
//! the server saw.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hangup::{Config, OnFin, Outcome, Request, ResponseWriter, Server};
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// How the client leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Close {
    /// `close()` with nothing unread: a FIN, as when curl is cancelled.
    Fin,
    /// `SO_LINGER` 0, then `close()`: an RST.
    Rst,
}

/// What kind of server handles the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Behaviour {
    /// Socket watch off: hang-ups are seen only when a write fails, as in
    /// Go's `net/http`, hyper or nginx.
    Conventional,
    /// hangup's default: the watch reports the FIN; writes proceed.
    Notify,
    /// The watch treats the FIN as the client leaving: writes fail at once.
    Abort,
    /// Not hangup: a model of Go 1.19 `net/http`'s buffers and framing on
    /// raw TCP (`go.rs`), the server of the question.
    Go,
}

impl Behaviour {
    pub fn label(self) -> &'static str {
        match self {
            Behaviour::Conventional => "conventional server (watch off)",
            Behaviour::Notify => "hangup, on_fin = Notify",
            Behaviour::Abort => "hangup, on_fin = Abort",
            Behaviour::Go => "Go-shaped server (model of Go 1.19 net/http)",
        }
    }
}

/// The parameters of one cell.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Cell {
    pub size: usize,
    pub buffer: usize,
    pub close: Close,
    pub behaviour: Behaviour,
}

/// Timing and write pattern shared by every cell.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Plan {
    /// Bytes per handler write; 0 means one write of the whole response.
    pub piece: usize,
    /// The client leaves this long after sending its request.
    #[serde(serialize_with = "millis")]
    pub client_leaves_after: Duration,
    /// The handler waits this long before writing.
    #[serde(serialize_with = "millis")]
    pub handler_waits: Duration,
    /// The handler sets `Content-Length` to the response size before
    /// writing.
    pub content_length: bool,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

/// The first handler write that failed.
#[derive(Debug, Clone, Serialize)]
pub struct FailedWrite {
    /// 1-based index of the write.
    pub index: usize,
    /// The response length this write would have reached.
    pub at_bytes: usize,
    /// The error as displayed.
    pub error: String,
    pub cause: Option<String>,
    pub errno: Option<i32>,
}

/// What happened in one cell.
#[derive(Debug, Clone, Serialize)]
pub struct CellResult {
    #[serde(flatten)]
    pub cell: Cell,
    /// Writes the handler made (all succeeded, up to the failing one).
    pub writes: usize,
    /// The hang-up the handler had been told of before its first write.
    pub told_before_writing: Option<String>,
    /// Milliseconds from the request to the moment the server learned of
    /// the hang-up, as reported to the handler before writing.
    pub told_after_ms: Option<f64>,
    pub first_failed_write: Option<FailedWrite>,
    /// The result of ending the response (final flush and, if chunked, the
    /// last chunk) when no write had failed.
    pub finish: Option<Result<(), String>>,
    /// From the outcome record.
    pub buffered: u64,
    pub written: u64,
    pub acked: Option<u64>,
    /// The status in hangup's outcome record (499 when the client left);
    /// `None` on the Go-shaped server, which keeps no such record.
    pub outcome_status: Option<u16>,
    pub outcome_cause: Option<String>,
}

/// What the handler reports back.
#[derive(Debug, Default)]
struct HandlerReport {
    writes: usize,
    told: Option<hangup::Hangup>,
    failed: Option<FailedWrite>,
    finish: Option<Result<(), String>>,
}

/// Runs one cell: a server of the cell's behaviour and buffer size, and a
/// client that sends a GET and leaves before the handler writes.
pub async fn run(cell: Cell, plan: Plan) -> Result<CellResult, String> {
    let (outcome_tx, outcome_rx) = oneshot::channel::<Outcome>();
    let outcome_tx = Arc::new(Mutex::new(Some(outcome_tx)));
    let mut builder = Config::builder();
    builder
        .write_buffer_bytes(cell.buffer)
        .socket_watch(cell.behaviour != Behaviour::Conventional)
        .on_fin(if cell.behaviour == Behaviour::Abort {
            OnFin::Abort
        } else {
            OnFin::Notify
        })
        .on_outcome(move |outcome| {
            if let Some(tx) = outcome_tx.lock().ok().and_then(|mut tx| tx.take()) {
                let _ = tx.send(outcome.clone());
            }
        });
    let config = builder.build().map_err(|e| e.to_string())?;

    let (report_tx, report_rx) = oneshot::channel::<HandlerReport>();
    let report_tx = Arc::new(Mutex::new(Some(report_tx)));
    let handler = move |request: Request, response: ResponseWriter| {
        let report_tx = report_tx.clone();
        async move {
            let report = respond(request, response, cell, plan).await;
            if let Some(tx) = report_tx.lock().ok().and_then(|mut tx| tx.take()) {
                let _ = tx.send(report);
            }
            Ok(())
        }
    };
    let server = Server::bind("127.0.0.1:0", config, handler)
        .await
        .map_err(|e| e.to_string())?;
    let addr = server.local_addr().map_err(|e| e.to_string())?;
    let shutdown = server.shutdown_handle();
    let serving = tokio::spawn(server.run());

    let client = async {
        let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        stream
            .write_all(b"GET /lab HTTP/1.1\r\nHost: lab\r\nUser-Agent: hangup-lab\r\n\r\n")
            .await
            .map_err(|e| e.to_string())?;
        tokio::time::sleep(plan.client_leaves_after).await;
        if cell.close == Close::Rst {
            let std = stream.into_std().map_err(|e| e.to_string())?;
            socket2::SockRef::from(&std)
                .set_linger(Some(Duration::ZERO))
                .map_err(|e| e.to_string())?;
            drop(std);
        } else {
            drop(stream);
        }
        Ok::<(), String>(())
    };
    client.await?;

    let limit = plan.handler_waits + Duration::from_secs(10);
    let report = tokio::time::timeout(limit, report_rx)
        .await
        .map_err(|_| "the handler did not finish in time".to_owned())?
        .map_err(|_| "the handler did not report".to_owned())?;
    let outcome = tokio::time::timeout(limit, outcome_rx)
        .await
        .map_err(|_| "no outcome in time".to_owned())?
        .map_err(|_| "no outcome".to_owned())?;
    shutdown.shutdown(Duration::ZERO);
    let _ = serving.await;

    Ok(CellResult {
        cell,
        writes: report.writes,
        told_before_writing: report.told.as_ref().map(|h| h.cause().to_string()),
        told_after_ms: report
            .told
            .as_ref()
            .map(|h| h.elapsed().as_secs_f64() * 1000.0),
        first_failed_write: report.failed,
        finish: report.finish,
        buffered: outcome.counters.buffered,
        written: outcome.counters.written,
        acked: outcome.counters.acked,
        outcome_status: Some(outcome.status().as_u16()),
        outcome_cause: outcome.cause().map(str::to_owned),
    })
}

/// The handler of every cell: wait, then write the response in pieces,
/// stopping at the first error as a conventional handler would.
async fn respond(
    request: Request,
    mut response: ResponseWriter,
    cell: Cell,
    plan: Plan,
) -> HandlerReport {
    let started = Instant::now();
    tokio::time::sleep(plan.handler_waits.saturating_sub(started.elapsed())).await;
    let mut report = HandlerReport {
        told: request.hangup(),
        ..HandlerReport::default()
    };
    if plan.content_length {
        let length = hangup::http::HeaderValue::from(cell.size);
        if let Err(err) = response.insert_header(hangup::http::header::CONTENT_LENGTH, length) {
            report.finish = Some(Err(format!("set Content-Length: {err}")));
            return report;
        }
    }
    let piece = if plan.piece == 0 {
        cell.size
    } else {
        plan.piece
    };
    let data = vec![b'x'; piece.max(1)];
    let mut sent = 0;
    while sent < cell.size {
        let n = piece.min(cell.size - sent);
        report.writes += 1;
        if let Err(err) = response.write_all(&data[..n]).await {
            let hangup = err.hangup();
            report.failed = Some(FailedWrite {
                index: report.writes,
                at_bytes: sent + n,
                error: err.to_string(),
                cause: hangup.map(|h| h.cause().to_string()),
                errno: hangup.and_then(|h| h.errno()),
            });
            return report;
        }
        sent += n;
    }
    report.finish = Some(response.finish().await.map_err(|e| e.to_string()));
    report
}
