//! The Go-shaped server: a model of Go 1.19 `net/http`'s response path on
//! raw tokio TCP, so the lab can reproduce the question to the byte.
//!
//! In Go, a handler's `Write` passes through two buffers before the socket
//! ("The Life Of A Write", `net/http/server.go`):
//!
//! 1. the response's `bufio.Writer` of `bufferBeforeChunkingSize` (2048)
//!    bytes;
//! 2. `chunkWriter`, which commits the head the first time bytes reach it
//!    (`Content-Type` sniffed from those bytes; `Content-Length` if the
//!    handler set one, or if the handler had returned with the whole body
//!    in buffer 1; else `Transfer-Encoding: chunked`) and frames every
//!    chunk (`%x\r\n`, the bytes, `\r\n`);
//! 3. the connection's `bufio.Writer` of 4096 bytes (`conn.bufw`);
//! 4. `net.Conn.Write`, which repeats `write(2)` until every byte is taken
//!    or one fails.
//!
//! Both buffers follow `bufio.Writer.Write` exactly: bytes that fit are
//! copied; a write larger than the free space goes straight to the layer
//! below when the buffer is empty, and otherwise fills the buffer, flushes
//! it, and goes on with the rest. A failed write is sticky: every later
//! write or flush returns it without a syscall. So after a client's FIN,
//! the first socket write is accepted (and the client's kernel answers it
//! with an RST) and the second fails; after an RST, the first fails.
//!
//! One exchange is one connection: the client sends a GET; the server
//! reads the head and starts the handler; the client leaves (FIN or RST);
//! the handler writes once the server's read has seen it leave (the moment
//! Go cancels the request's context), stops at its first failing `Write`,
//! and returns. Then, as Go's `finishRequest` does, the server flushes
//! both buffers: an error there is what Go discards.
//!
//! Left out, because the lab's exchange never needs them: HEAD, 1xx, 204
//! and 304 responses, trailers, HTTP/1.0, keep-alive, `Flush`, hijacking,
//! and content sniffing beyond text versus binary. `bench/go-puzzle/run`
//! checks the model against real Go (Debian's golang-go 1.19).

use std::io;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use super::cell::{Behaviour, Cell, CellResult, Close, FailedWrite, Plan};

/// Go's response buffer, filled before anything is committed or chunked
/// (`bufferBeforeChunkingSize` in `net/http/server.go`).
pub const RESPONSE_BUFFER_BYTES: usize = 2048;

/// Go's per-connection write buffer
/// (`newBufioWriterSize(checkConnErrorWriter{c}, 4<<10)`): fixed in
/// `net/http`, a handler cannot change it.
pub const CONN_BUFFER_BYTES: usize = 4096;

/// The longest the lab waits for any step of an exchange (connect, the
/// request, the client leaving, every socket write): far above the
/// milliseconds they take on loopback, so only a stuck exchange hits it.
const STEP_LIMIT: Duration = Duration::from_secs(10);

/// The request head the lab's client sends, and the most the server reads
/// while looking for its end.
const REQUEST: &[u8] = b"GET /lab HTTP/1.1\r\nHost: lab\r\nUser-Agent: hangup-lab\r\n\r\n";
const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// One exchange with the Go-shaped server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exchange {
    /// Body bytes the handler writes.
    pub size: usize,
    /// Bytes per handler `Write`; 0 means one `Write` of the whole body.
    pub piece: usize,
    /// The connection buffer (Go: 4096).
    pub conn_buffer: usize,
    /// How the client leaves.
    pub close: Close,
    /// The handler sets `Content-Length: size` before writing.
    pub content_length: bool,
}

/// When a socket write happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Inside one of the handler's `Write` calls.
    Handler,
    /// After the handler returned (Go's `finishRequest`).
    Finish,
}

/// One `net.Conn.Write`: the bytes handed to the socket at once, in one or
/// more `write(2)` calls.
#[derive(Debug, Clone, Serialize)]
pub struct SocketWrite {
    pub stage: Stage,
    /// Bytes asked for.
    pub bytes: usize,
    /// Bytes the kernel took before the write ended.
    pub accepted: usize,
    /// The error's raw errno, if the write failed.
    pub errno: Option<i32>,
}

/// How the Go-shaped server framed the body, decided when the head is
/// committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Framing {
    /// `Transfer-Encoding: chunked`: the handler wrote past the response
    /// buffer before returning.
    Chunked,
    /// The handler set `Content-Length`.
    ContentLength,
    /// The handler returned with the whole body in the response buffer, and
    /// Go set `Content-Length` itself.
    AutoContentLength,
}

/// How the client's leaving looked from the server's read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SawClose {
    /// The read returned end of file: a FIN.
    Eof,
    /// The read failed (ECONNRESET for an RST).
    Error,
}

/// Everything one exchange showed.
#[derive(Debug, Clone, Serialize)]
pub struct Trace {
    /// Bytes of the response head as committed (0 if never committed).
    pub head_bytes: usize,
    /// How the body was framed; `None` if the head was never committed.
    pub framing: Option<Framing>,
    /// Chunk framing of the body chunks (size lines and the CRLF after
    /// each chunk), without the last chunk (`0\r\n\r\n`), which is only
    /// written after the handler returned.
    pub chunk_framing_bytes: usize,
    /// Handler `Write` calls made, up to the failing one.
    pub handler_writes: usize,
    /// Body bytes the handler's `Write` calls reported as written.
    pub handler_accepted: usize,
    /// The handler's first failing `Write`.
    pub failed_write: Option<FailedWrite>,
    /// Go's `finishRequest` (flush both buffers, end the chunked body), when
    /// no handler `Write` failed: Go discards this error.
    pub finish: Option<Result<(), String>>,
    /// Every socket write, in order.
    pub socket_writes: Vec<SocketWrite>,
    /// What the server's read saw when the client left.
    pub saw_close: SawClose,
}

/// A write error as Go's writers pass it on: sticky, so it is cloned.
#[derive(Debug, Clone)]
struct GoError {
    message: String,
    errno: Option<i32>,
}

impl From<io::Error> for GoError {
    fn from(err: io::Error) -> Self {
        GoError {
            errno: err.raw_os_error(),
            message: err.to_string(),
        }
    }
}

impl GoError {
    fn new(message: &str) -> Self {
        GoError {
            message: message.to_owned(),
            errno: None,
        }
    }
}

/// `io.Writer` as Go's writers see the layer below: `(n, err)`, where
/// `n < p.len()` comes with an error.
trait GoWrite {
    async fn go_write(&mut self, p: &[u8]) -> (usize, Option<GoError>);

    /// `rwc.Close()` after a failed write: later writes fail at once.
    fn close(&mut self) {}

    /// The handler returned: later writes belong to `finishRequest`.
    fn handler_returned(&mut self) {}
}

/// `net.Conn` for writing: the socket, and a log of every write.
struct NetConn<'a> {
    socket: &'a mut TcpStream,
    stage: Stage,
    closed: bool,
    writes: Vec<SocketWrite>,
}

impl GoWrite for NetConn<'_> {
    /// `netFD.Write`: `write(2)` until all of `p` is taken or one fails.
    async fn go_write(&mut self, p: &[u8]) -> (usize, Option<GoError>) {
        if self.closed {
            // chunkWriter closed the connection after an earlier error.
            return (0, Some(GoError::new("use of closed network connection")));
        }
        let mut accepted = 0;
        let mut error = None;
        // Bounded: every pass takes at least one byte or ends the loop.
        while accepted < p.len() {
            match tokio::time::timeout(STEP_LIMIT, self.socket.write(&p[accepted..])).await {
                Ok(Ok(0)) => {
                    error = Some(GoError::from(io::Error::from(io::ErrorKind::WriteZero)));
                    break;
                }
                Ok(Ok(n)) => accepted += n,
                Ok(Err(err)) => {
                    error = Some(GoError::from(err));
                    break;
                }
                Err(_) => {
                    error = Some(GoError::new("the lab's socket write timed out"));
                    break;
                }
            }
        }
        self.writes.push(SocketWrite {
            stage: self.stage,
            bytes: p.len(),
            accepted,
            errno: error.as_ref().and_then(|e| e.errno),
        });
        (accepted, error)
    }

    fn close(&mut self) {
        self.closed = true;
    }

    fn handler_returned(&mut self) {
        self.stage = Stage::Finish;
    }
}

/// Go's `bufio.Writer` (1.19): `size` bytes in front of `inner`.
struct BufWriter<W> {
    buf: Vec<u8>,
    size: usize,
    err: Option<GoError>,
    inner: W,
}

impl<W: GoWrite> BufWriter<W> {
    fn new(size: usize, inner: W) -> Self {
        BufWriter {
            buf: Vec::with_capacity(size),
            size,
            err: None,
            inner,
        }
    }

    fn available(&self) -> usize {
        self.size - self.buf.len()
    }

    /// `bufio.Writer.Flush`.
    async fn flush(&mut self) -> Result<(), GoError> {
        if let Some(err) = &self.err {
            return Err(err.clone());
        }
        if self.buf.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.buf);
        let (n, err) = self.inner.go_write(&pending).await;
        let err = match err {
            None if n < pending.len() => Some(GoError::new("short write")),
            err => err,
        };
        match err {
            Some(err) => {
                // Go keeps the bytes not written, and the error for good.
                self.buf = pending[n..].to_vec();
                self.err = Some(err.clone());
                Err(err)
            }
            None => {
                self.buf = pending;
                self.buf.clear();
                Ok(())
            }
        }
    }

    /// `bufio.Writer.Write`: copy what fits; past the free space, write
    /// straight through when the buffer is empty, else fill, flush, go on.
    async fn write(&mut self, mut p: &[u8]) -> (usize, Option<GoError>) {
        let mut nn = 0;
        // Bounded: every pass consumes bytes of `p`, or empties the buffer
        // (so the next pass writes through), or sets the sticky error.
        while p.len() > self.available() && self.err.is_none() {
            let n = if self.buf.is_empty() {
                let (n, err) = self.inner.go_write(p).await;
                // A writer that takes nothing without an error breaks
                // io.Writer's contract; Go would spin, the model stops.
                self.err = match err {
                    None if n == 0 => Some(GoError::new("short write")),
                    err => err,
                };
                n
            } else {
                let n = self.available();
                self.buf.extend_from_slice(&p[..n]);
                // Its error is sticky and ends the loop.
                let _ = self.flush().await;
                n
            };
            nn += n;
            p = &p[n..];
        }
        if let Some(err) = &self.err {
            return (nn, Some(err.clone()));
        }
        self.buf.extend_from_slice(p);
        (nn + p.len(), None)
    }

    /// `bufio.Writer.WriteString` over a writer that is no
    /// `io.StringWriter` (Go's `checkConnErrorWriter`): never writes
    /// through, always fills and flushes.
    async fn write_string(&mut self, mut s: &[u8]) -> (usize, Option<GoError>) {
        let mut nn = 0;
        // Bounded as in `write`.
        while s.len() > self.available() && self.err.is_none() {
            let n = self.available();
            self.buf.extend_from_slice(&s[..n]);
            let _ = self.flush().await;
            nn += n;
            s = &s[n..];
        }
        if let Some(err) = &self.err {
            return (nn, Some(err.clone()));
        }
        self.buf.extend_from_slice(s);
        (nn + s.len(), None)
    }

    /// `bufio.Writer.WriteByte`.
    async fn write_byte(&mut self, byte: u8) -> Option<GoError> {
        if let Some(err) = &self.err {
            return Some(err.clone());
        }
        if self.available() == 0 && self.flush().await.is_err() {
            return self.err.clone();
        }
        self.buf.push(byte);
        None
    }
}

/// How Go hands one piece of the head to the connection buffer.
#[derive(Debug, Clone, Copy)]
enum Piece {
    /// `bufio.Writer.Write`.
    Bytes,
    /// `bufio.Writer.WriteString`.
    String,
    /// `bufio.Writer.WriteByte`.
    Byte,
}

/// Go's `chunkWriter`: commits the head, frames chunks, writes into the
/// connection buffer.
struct ChunkWriter<W> {
    conn: BufWriter<W>,
    /// The handler set `Content-Length` to this.
    content_length: Option<usize>,
    /// The handler returned (`w.handlerDone`).
    handler_done: bool,
    wrote_header: bool,
    chunking: bool,
    framing: Option<Framing>,
    head_bytes: usize,
    chunk_framing_bytes: usize,
}

impl<W: GoWrite> ChunkWriter<W> {
    /// `chunkWriter.writeHeader(p)` for a GET on HTTP/1.1 answered 200:
    /// the head goes into the connection buffer, piece by piece as Go
    /// writes it (`Write`, `WriteString` or `WriteByte`: they differ when a
    /// piece does not fit). Write errors here are sticky in the buffer and
    /// show at the next write, as in Go.
    async fn write_header(&mut self, p: &[u8]) {
        if self.wrote_header {
            return;
        }
        self.wrote_header = true;
        // The handler is done and set no length: Go computes it, even 0.
        let auto_length = (self.handler_done && self.content_length.is_none()).then_some(p.len());
        self.chunking = self.content_length.is_none() && auto_length.is_none();
        self.framing = Some(match (self.content_length, auto_length) {
            (Some(_), _) => Framing::ContentLength,
            (None, Some(_)) => Framing::AutoContentLength,
            (None, None) => Framing::Chunked,
        });
        let mut parts: Vec<(Piece, Vec<u8>)> = Vec::new();
        let mut add = |how: Piece, bytes: &[u8]| parts.push((how, bytes.to_vec()));
        // writeStatusLine.
        add(Piece::String, b"HTTP/1.1 ");
        add(Piece::Bytes, b"200");
        add(Piece::Byte, b" ");
        add(Piece::String, b"OK");
        add(Piece::String, b"\r\n");
        // cw.header.WriteSubset: the handler's own fields, sorted; the lab's
        // handler sets at most Content-Length.
        if let Some(length) = self.content_length {
            add(Piece::String, b"Content-Length");
            add(Piece::String, b": ");
            add(Piece::String, length.to_string().as_bytes());
            add(Piece::String, b"\r\n");
        }
        // extraHeader.Write: Date, Content-Length, then Content-Type,
        // Connection (none here), Transfer-Encoding.
        add(Piece::Bytes, b"Date: ");
        add(
            Piece::Bytes,
            httpdate::fmt_http_date(SystemTime::now()).as_bytes(),
        );
        add(Piece::Bytes, b"\r\n");
        if let Some(length) = auto_length {
            add(Piece::Bytes, b"Content-Length: ");
            add(Piece::Bytes, length.to_string().as_bytes());
            add(Piece::Bytes, b"\r\n");
        }
        // DetectContentType runs only on a non-empty first chunk.
        if !p.is_empty() {
            add(Piece::Bytes, b"Content-Type");
            add(Piece::Bytes, b": ");
            add(Piece::String, sniff(p).as_bytes());
            add(Piece::Bytes, b"\r\n");
        }
        if self.chunking {
            add(Piece::Bytes, b"Transfer-Encoding");
            add(Piece::Bytes, b": ");
            add(Piece::String, b"chunked");
            add(Piece::Bytes, b"\r\n");
        }
        add(Piece::Bytes, b"\r\n");
        self.head_bytes = parts.iter().map(|(_, bytes)| bytes.len()).sum();
        for (how, bytes) in parts {
            match how {
                Piece::Bytes => {
                    self.conn.write(&bytes).await;
                }
                Piece::String => {
                    self.conn.write_string(&bytes).await;
                }
                Piece::Byte => {
                    for &byte in &bytes {
                        self.conn.write_byte(byte).await;
                    }
                }
            }
        }
    }

    /// `chunkWriter.close`: the last chunk, once the handler returned.
    async fn close(&mut self) {
        if !self.wrote_header {
            self.write_header(&[]).await;
        }
        if self.chunking {
            // Errors stay in the buffer; the final flush returns them.
            let _ = self.conn.write_string(b"0\r\n").await;
            let _ = self.conn.write_string(b"\r\n").await;
        }
    }
}

impl<W: GoWrite> GoWrite for ChunkWriter<W> {
    /// `chunkWriter.Write`: commit the head, frame the chunk, and close the
    /// connection on an error.
    async fn go_write(&mut self, p: &[u8]) -> (usize, Option<GoError>) {
        if !self.wrote_header {
            self.write_header(p).await;
        }
        if self.chunking {
            // fmt.Fprintf(bufw, "%x\r\n", len(p)): one Write of the line.
            let line = format!("{:x}\r\n", p.len());
            self.chunk_framing_bytes += line.len();
            if let (_, Some(err)) = self.conn.write(line.as_bytes()).await {
                self.conn.inner.close();
                return (0, Some(err));
            }
        }
        let (n, mut err) = self.conn.write(p).await;
        if self.chunking && err.is_none() {
            self.chunk_framing_bytes += 2;
            err = self.conn.write(b"\r\n").await.1;
        }
        if err.is_some() {
            self.conn.inner.close();
        }
        (n, err)
    }
}

/// `http.DetectContentType` for the lab's bodies: text without binary
/// bytes is `text/plain; charset=utf-8` (the lab writes `x`s, which match
/// none of Go's earlier signatures); anything else is
/// `application/octet-stream`.
fn sniff(p: &[u8]) -> &'static str {
    let sniffed = &p[..p.len().min(512)];
    let binary = |b: &u8| matches!(b, 0x00..=0x08 | 0x0B | 0x0E..=0x1A | 0x1C..=0x1F);
    if sniffed.iter().any(binary) {
        "application/octet-stream"
    } else {
        "text/plain; charset=utf-8"
    }
}

/// Runs one exchange: a fresh Go-shaped server on 127.0.0.1 and a client
/// that sends a GET and leaves once the handler has started.
///
/// # Errors
///
/// A message when a step fails or takes longer than [`STEP_LIMIT`]
/// (binding, connecting, the request, the client's leaving).
pub async fn run(exchange: Exchange) -> Result<Trace, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (started_tx, started_rx) = oneshot::channel::<()>();

    let server = async {
        let (mut socket, _) = listener
            .accept()
            .await
            .map_err(|e| format!("accept: {e}"))?;
        serve(&mut socket, exchange, started_tx).await
    };
    let client = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        stream
            .write_all(REQUEST)
            .await
            .map_err(|e| format!("send the request: {e}"))?;
        started_rx
            .await
            .map_err(|_| "the server ended before its handler started".to_owned())?;
        if exchange.close == Close::Rst {
            // SO_LINGER 0: close() sends an RST.
            socket2::SockRef::from(&stream)
                .set_linger(Some(Duration::ZERO))
                .map_err(|e| e.to_string())?;
        }
        drop(stream);
        Ok::<(), String>(())
    };
    let joined = async { tokio::join!(server, client) };
    let (trace, client) = tokio::time::timeout(STEP_LIMIT * 3, joined)
        .await
        .map_err(|_| "the Go-shaped exchange did not finish in time".to_owned())?;
    client?;
    trace
}

/// The server side: read the head, start the handler, wait for the client
/// to leave, write as Go would.
async fn serve(
    socket: &mut TcpStream,
    exchange: Exchange,
    started: oneshot::Sender<()>,
) -> Result<Trace, String> {
    // Go turns Nagle off on every TCP connection.
    socket.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    // Bounded by MAX_REQUEST_BYTES.
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > MAX_REQUEST_BYTES {
            return Err("the request head is too long".to_owned());
        }
        let n = tokio::time::timeout(STEP_LIMIT, socket.read(&mut chunk))
            .await
            .map_err(|_| "no request in time".to_owned())?
            .map_err(|e| format!("read the request: {e}"))?;
        if n == 0 {
            return Err("the client left before its request was complete".to_owned());
        }
        head.extend_from_slice(&chunk[..n]);
    }
    // The handler starts; the client may now leave.
    let _ = started.send(());
    // Go's background read (connReader.backgroundRead): its end cancels the
    // request's context. The handler writes after it, as a handler that
    // slept past the client's leaving does.
    let mut byte = [0u8; 1];
    let saw_close = match tokio::time::timeout(STEP_LIMIT, socket.read(&mut byte)).await {
        Err(_) => return Err("the client did not leave in time".to_owned()),
        Ok(Ok(0)) => SawClose::Eof,
        Ok(Ok(_)) => return Err("the client sent more than its request".to_owned()),
        Ok(Err(_)) => SawClose::Error,
    };

    let written = respond(
        NetConn {
            socket,
            stage: Stage::Handler,
            closed: false,
            writes: Vec::new(),
        },
        exchange,
    )
    .await;
    let chunk_writer = written.chunk_writer;
    Ok(Trace {
        head_bytes: chunk_writer.head_bytes,
        framing: chunk_writer.framing,
        chunk_framing_bytes: chunk_writer.chunk_framing_bytes,
        handler_writes: written.handler_writes,
        handler_accepted: written.handler_accepted,
        failed_write: written.failed_write,
        finish: written.finish,
        socket_writes: chunk_writer.conn.inner.writes,
        saw_close,
    })
}

/// What the handler and `finishRequest` did.
struct Written<W> {
    chunk_writer: ChunkWriter<W>,
    handler_writes: usize,
    handler_accepted: usize,
    failed_write: Option<FailedWrite>,
    finish: Option<Result<(), String>>,
}

/// The handler's writes and Go's `finishRequest`, through both buffers
/// into `conn`.
async fn respond<W: GoWrite>(conn: W, exchange: Exchange) -> Written<W> {
    let mut response = BufWriter::new(
        RESPONSE_BUFFER_BYTES,
        ChunkWriter {
            conn: BufWriter::new(exchange.conn_buffer.max(1), conn),
            content_length: exchange.content_length.then_some(exchange.size),
            handler_done: false,
            wrote_header: false,
            chunking: false,
            framing: None,
            head_bytes: 0,
            chunk_framing_bytes: 0,
        },
    );

    // The handler: Write in pieces, stop at the first error.
    let piece = if exchange.piece == 0 {
        exchange.size
    } else {
        exchange.piece
    };
    let data = vec![b'x'; piece.max(1)];
    let mut handler_writes = 0;
    let mut handler_accepted = 0;
    let mut failed_write = None;
    let mut sent = 0;
    // Bounded: `sent` grows by at least one byte per pass.
    while sent < exchange.size {
        let n = piece.min(exchange.size - sent);
        handler_writes += 1;
        // response.write: the lab's body never passes a Content-Length the
        // handler set, so only the buffered write remains.
        let (accepted, err) = response.write(&data[..n]).await;
        handler_accepted += accepted;
        if let Some(err) = err {
            failed_write = Some(FailedWrite {
                index: handler_writes,
                at_bytes: sent + n,
                error: err.message,
                cause: None,
                errno: err.errno,
            });
            break;
        }
        sent += n;
    }

    // finishRequest: flush the response buffer, end the chunked body, flush
    // the connection buffer. Go discards what this returns.
    response.inner.conn.inner.handler_returned();
    response.inner.handler_done = true;
    let _ = response.flush().await;
    response.inner.close().await;
    let finished = response.inner.conn.flush().await;
    let finish = failed_write
        .is_none()
        .then(|| finished.map_err(|e| e.message));
    Written {
        chunk_writer: response.inner,
        handler_writes,
        handler_accepted,
        failed_write,
        finish,
    }
}

/// Runs one lab cell on the Go-shaped server: the cell's buffer is the
/// connection buffer; the plan's piece size and `Content-Length` apply,
/// its timing does not (the client leaves once the handler started, and
/// the handler writes once the server saw it leave). The trace's details
/// (head, socket writes) stay out of the cell: the threshold searches
/// report them.
pub async fn run_cell(cell: Cell, plan: Plan) -> Result<CellResult, String> {
    let trace = run(Exchange {
        size: cell.size,
        piece: plan.piece,
        conn_buffer: cell.buffer,
        close: cell.close,
        content_length: plan.content_length,
    })
    .await?;
    debug_assert_eq!(cell.behaviour, Behaviour::Go);
    Ok(CellResult {
        cell,
        writes: trace.handler_writes,
        told_before_writing: None,
        told_after_ms: None,
        first_failed_write: trace.failed_write,
        finish: trace.finish,
        buffered: trace.handler_accepted as u64,
        written: trace.socket_writes.iter().map(|w| w.accepted as u64).sum(),
        acked: None,
        outcome_status: None,
        outcome_cause: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection that keeps what it is given, and fails every write from
    /// the `fail_from`-th on (0-based), as a socket does once the client's
    /// RST has arrived.
    struct Recorder {
        bytes: Vec<u8>,
        /// (bytes asked for, accepted).
        calls: Vec<(usize, bool)>,
        fail_from: usize,
    }

    impl Recorder {
        fn failing_from(fail_from: usize) -> Self {
            Recorder {
                bytes: Vec::new(),
                calls: Vec::new(),
                fail_from,
            }
        }
    }

    impl GoWrite for Recorder {
        async fn go_write(&mut self, p: &[u8]) -> (usize, Option<GoError>) {
            if self.calls.len() >= self.fail_from {
                self.calls.push((p.len(), false));
                return (
                    0,
                    Some(GoError {
                        message: "broken pipe".to_owned(),
                        errno: Some(libc::EPIPE),
                    }),
                );
            }
            self.calls.push((p.len(), true));
            self.bytes.extend_from_slice(p);
            (p.len(), None)
        }
    }

    fn exchange(size: usize, content_length: bool) -> Exchange {
        Exchange {
            size,
            piece: 0,
            conn_buffer: CONN_BUFFER_BYTES,
            close: Close::Fin,
            content_length,
        }
    }

    fn accepted(calls: &[(usize, bool)]) -> Vec<usize> {
        calls.iter().map(|&(n, _)| n).collect()
    }

    #[tokio::test]
    async fn bufio_writes_through_when_empty_and_fills_first_when_not() {
        let mut w = BufWriter::new(10, Recorder::failing_from(usize::MAX));
        // Too big for the empty buffer: straight through, no copy.
        assert_eq!(w.write(&[b'a'; 25]).await.0, 25);
        assert_eq!(accepted(&w.inner.calls), [25]);
        // Fits: buffered.
        assert_eq!(w.write(&[b'b'; 3]).await.0, 3);
        assert_eq!(accepted(&w.inner.calls), [25]);
        // Too big for the rest: fill (7), flush 10, then the other 18 go
        // straight through from an empty buffer.
        assert_eq!(w.write(&[b'c'; 25]).await.0, 25);
        assert_eq!(accepted(&w.inner.calls), [25, 10, 18]);
        // WriteString never writes through.
        assert_eq!(w.write_string(&[b'd'; 25]).await.0, 25);
        assert_eq!(accepted(&w.inner.calls), [25, 10, 18, 10, 10]);
        assert!(w.flush().await.is_ok());
        assert_eq!(accepted(&w.inner.calls), [25, 10, 18, 10, 10, 5]);
    }

    #[tokio::test]
    async fn bufio_errors_are_sticky_and_keep_the_unwritten_bytes() {
        let mut w = BufWriter::new(10, Recorder::failing_from(0));
        assert!(w.write(b"abc").await.1.is_none());
        assert!(w.flush().await.is_err());
        assert_eq!(w.buf, b"abc");
        // No further call reaches the connection.
        assert!(w.write(b"d").await.1.is_some());
        assert!(w.flush().await.is_err());
        assert_eq!(w.inner.calls.len(), 1);
    }

    /// Date is 29 bytes ("Sun, 06 Dec 2026 11:28:52 GMT"), at a fixed place.
    fn date_of(wire: &str, at: usize) -> &str {
        let date = &wire[at..at + 29];
        assert!(date.ends_with(" GMT"), "{wire:?}");
        date
    }

    /// The bytes Go 1.19 sent for one Write of 8060 bytes, read from Debian's
    /// golang-go by bench/go-puzzle/run: a 125-byte head, `1f7c\r\n`.
    #[tokio::test]
    async fn chunked_head_and_framing_are_go_1_19s() {
        let written = respond(Recorder::failing_from(usize::MAX), exchange(8060, false)).await;
        let w = &written.chunk_writer;
        let wire = String::from_utf8(w.conn.inner.bytes.clone()).expect("ASCII");
        let date = date_of(&wire, 23);
        let head = format!(
            "HTTP/1.1 200 OK\r\nDate: {date}\r\nContent-Type: text/plain; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        assert_eq!(head.len(), 125);
        assert_eq!(w.head_bytes, 125);
        assert!(wire.starts_with(&format!("{head}1f7c\r\nxxx")), "{wire:?}");
        assert!(wire.ends_with("xxx\r\n0\r\n\r\n"));
        assert_eq!(w.chunk_framing_bytes, 8);
        assert_eq!(wire.len(), 125 + 8 + 8060 + 5);
        // Head and chunk line (131), then the Write: fill to 4096 and flush;
        // the rest (4095) and one byte of the CRLF fill the buffer again;
        // the final flush carries the last byte and the last chunk.
        assert_eq!(accepted(&w.conn.inner.calls), [4096, 4096, 6]);
        assert_eq!(w.framing, Some(Framing::Chunked));
        assert_eq!(written.finish, Some(Ok(())));
    }

    /// With the handler's Content-Length, Go's head is 119 bytes for 8074.
    #[tokio::test]
    async fn content_length_head_is_go_1_19s() {
        let written = respond(Recorder::failing_from(usize::MAX), exchange(8074, true)).await;
        let w = &written.chunk_writer;
        let wire = String::from_utf8(w.conn.inner.bytes.clone()).expect("ASCII");
        let date = date_of(&wire, 45);
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: 8074\r\nDate: {date}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        );
        assert_eq!((head.len(), w.head_bytes), (119, 119));
        assert_eq!(wire.len(), 119 + 8074);
        assert!(wire.starts_with(&head));
        assert_eq!(w.framing, Some(Framing::ContentLength));
    }

    /// A body that fits the response buffer stays there until the handler
    /// returns; then Go sets Content-Length itself and sends one write.
    #[tokio::test]
    async fn small_body_waits_for_the_handler_and_gets_a_length() {
        let written = respond(Recorder::failing_from(usize::MAX), exchange(100, false)).await;
        let w = &written.chunk_writer;
        let wire = String::from_utf8(w.conn.inner.bytes.clone()).expect("ASCII");
        let date = date_of(&wire, 23);
        assert!(wire.starts_with(&format!(
            "HTTP/1.1 200 OK\r\nDate: {date}\r\nContent-Length: 100\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nxxx"
        )));
        assert_eq!(w.framing, Some(Framing::AutoContentLength));
        assert_eq!(accepted(&w.conn.inner.calls), [wire.len()]);
        assert!(w.conn.inner.calls.iter().all(|&(_, ok)| ok));
    }

    /// The smallest size whose one Write fails when the connection fails
    /// from its `fail_from`-th write on.
    async fn first_failing(fail_from: usize, content_length: bool) -> (usize, usize) {
        for size in 1..=4 * CONN_BUFFER_BYTES {
            let written = respond(
                Recorder::failing_from(fail_from),
                exchange(size, content_length),
            )
            .await;
            if written.failed_write.is_some() {
                let w = &written.chunk_writer;
                return (size, w.head_bytes + w.chunk_framing_bytes + size);
            }
        }
        panic!("no Write failed");
    }

    /// The question, without a kernel: a first socket write that succeeds
    /// (FIN) puts the limit past two buffers of head, framing and body; a
    /// first one that fails (RST), past one. Real Go on this machine: 8060,
    /// 8074, 3965, 3978.
    #[tokio::test]
    async fn the_writes_fail_past_two_buffers_after_a_fin_and_one_after_an_rst() {
        assert_eq!(first_failing(1, false).await, (8060, 8193));
        assert_eq!(first_failing(1, true).await, (8074, 8193));
        assert_eq!(first_failing(0, false).await, (3965, 4097));
        assert_eq!(first_failing(0, true).await, (3978, 4097));
    }

    #[test]
    fn sniffs_text_and_binary() {
        assert_eq!(sniff(b"xxxx"), "text/plain; charset=utf-8");
        assert_eq!(sniff(b"x\0x"), "application/octet-stream");
    }
}
