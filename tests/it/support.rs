//! Test support: a server on 127.0.0.1:0 and raw-socket clients.
//!
//! Everything here talks raw bytes over real sockets; nothing is mocked.
//! Every wait is bounded by [`LIMIT`] so a broken server fails a test
//! instead of hanging it.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hangup::{Config, Handler, Outcome, Request, ResponseWriter, Server, ShutdownHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::Context;

/// Upper bound on any single wait in a test.
pub const LIMIT: Duration = Duration::from_secs(10);

/// A running server; shut down (with no grace) when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub metrics: hangup::Metrics,
    pub shutdown: ShutdownHandle,
    pub task: Option<JoinHandle<hangup::Result<()>>>,
}

impl TestServer {
    /// Shuts down with `grace` and waits for `run` to return.
    pub async fn stop(mut self, grace: Duration) {
        self.shutdown.shutdown(grace);
        if let Some(task) = self.task.take() {
            tokio::time::timeout(LIMIT, task)
                .await
                .expect("server did not stop in time")
                .expect("server task panicked")
                .expect("server returned an error");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.shutdown(Duration::ZERO);
    }
}

/// Starts `handler` on 127.0.0.1 with `config`.
pub async fn spawn<H: Handler>(config: Config, handler: H) -> TestServer {
    quiet_global_subscriber();
    let server = Server::bind("127.0.0.1:0", config, handler)
        .await
        .expect("bind");
    let addr = server.local_addr().expect("local_addr");
    let shutdown = server.shutdown_handle();
    let metrics = server.metrics();
    let task = tokio::spawn(server.run());
    TestServer {
        addr,
        metrics,
        shutdown,
        task: Some(task),
    }
}

/// Starts `handler` with the default config.
pub async fn spawn_default<H: Handler>(handler: H) -> TestServer {
    spawn(Config::default(), handler).await
}

/// Connects to `addr`.
pub async fn connect(addr: SocketAddr) -> TcpStream {
    quiet_global_subscriber();
    tokio::time::timeout(LIMIT, TcpStream::connect(addr))
        .await
        .expect("connect timed out")
        .expect("connect")
}

/// Closes the client's socket with an RST instead of a FIN.
pub fn reset(stream: TcpStream) {
    let std = stream.into_std().expect("into_std");
    socket2::SockRef::from(&std)
        .set_linger(Some(Duration::ZERO))
        .expect("linger 0");
    drop(std);
}

/// A slow reader: a client with a `recv_buffer`-byte receive buffer that
/// sends `request` and then reads nothing, so the server's writes stall.
pub async fn slow_reader(addr: SocketAddr, recv_buffer: u32, request: &[u8]) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(recv_buffer).expect("SO_RCVBUF");
    let mut stream = tokio::time::timeout(LIMIT, socket.connect(addr))
        .await
        .expect("connect timed out")
        .expect("connect");
    send(&mut stream, request).await;
    stream
}

/// Reads one response exactly (Content-Length framed), leaving what follows.
pub async fn read_response_prefix(stream: &mut TcpStream) -> String {
    let mut bytes = Vec::new();
    let mut byte = [0u8; 1];
    while !bytes.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte))
            .await
            .expect("response head in time")
            .unwrap();
        assert_eq!(
            n,
            1,
            "closed mid-head: {:?}",
            String::from_utf8_lossy(&bytes)
        );
        bytes.push(byte[0]);
    }
    let head = String::from_utf8(bytes).unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(|v| v.trim().parse().unwrap())
        })
        .expect("content-length");
    let mut body = vec![0u8; len];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut body))
        .await
        .expect("body in time")
        .unwrap();
    String::from_utf8(body).unwrap()
}

/// Reads once (what has arrived, at least a byte, or nothing at EOF);
/// panics after [`LIMIT`].
pub async fn read_some(stream: &mut TcpStream) -> Vec<u8> {
    let mut buf = vec![0u8; 16 * 1024];
    let n = tokio::time::timeout(LIMIT, stream.read(&mut buf))
        .await
        .expect("bytes in time")
        .unwrap_or(0);
    buf.truncate(n);
    buf
}

/// Sends `request` and reads until the server closes the connection.
pub async fn raw_exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = connect(addr).await;
    stream.write_all(request).await.expect("write request");
    read_to_close(&mut stream).await
}

/// Reads until EOF (or a reset); panics after [`LIMIT`].
pub async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match tokio::time::timeout(LIMIT, stream.read(&mut buf)).await {
            Err(_) => panic!(
                "server did not close the connection; got so far: {:?}",
                String::from_utf8_lossy(&out)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => return out,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// True when the server closes the connection (EOF or reset) within
/// `within`, with no further bytes.
pub async fn closes_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    matches!(
        tokio::time::timeout(within, stream.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

/// One parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// `chunked` bodies: true when the terminating chunk arrived.
    pub complete: bool,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Parses every response in `bytes` (a keep-alive or pipelined stream that
/// has ended). `head_request[i]` says whether response i answers a HEAD.
pub fn parse_responses(mut bytes: &[u8], head_request: &[bool]) -> Vec<Response> {
    let mut responses = Vec::new();
    while !bytes.is_empty() {
        let is_head = head_request.get(responses.len()).copied().unwrap_or(false);
        let (response, used) = parse_one(bytes, is_head).unwrap_or_else(|| {
            panic!(
                "incomplete response in {:?}",
                String::from_utf8_lossy(bytes)
            );
        });
        responses.push(response);
        bytes = &bytes[used..];
    }
    responses
}

/// Parses one response from the front of `bytes`; `None` if incomplete.
/// A body without length runs to the end of `bytes`.
pub fn parse_one(bytes: &[u8], is_head: bool) -> Option<(Response, usize)> {
    let mut fields = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Response::new(&mut fields);
    let head_len = match parsed.parse(bytes).expect("malformed response head") {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return None,
    };
    let status = parsed.code.expect("status");
    let headers: Vec<(String, String)> = parsed
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let mut response = Response {
        status,
        headers,
        body: Vec::new(),
        complete: true,
    };
    let rest = &bytes[head_len..];
    if is_head || status == 204 || status == 304 || (100..200).contains(&status) {
        return Some((response, head_len));
    }
    if let Some(length) = response.header("content-length") {
        let length: usize = length.parse().expect("content-length");
        if rest.len() < length {
            return None;
        }
        response.body = rest[..length].to_vec();
        return Some((response, head_len + length));
    }
    if response
        .header("transfer-encoding")
        .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
    {
        let mut at = 0;
        loop {
            let Some(line_end) = find(&rest[at..], b"\r\n") else {
                response.complete = false;
                return Some((response, bytes.len()));
            };
            let size_text = std::str::from_utf8(&rest[at..at + line_end]).expect("chunk size");
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .expect("hex chunk size");
            at += line_end + 2;
            if size == 0 {
                // Trailer section: up to the blank line.
                let end = find(&rest[at..], b"\r\n")?;
                let mut trailer_at = at;
                let mut line = end;
                while line != 0 {
                    trailer_at += line + 2;
                    line = find(&rest[trailer_at..], b"\r\n")?;
                }
                return Some((response, head_len + trailer_at + 2));
            }
            if rest.len() < at + size + 2 {
                response
                    .body
                    .extend_from_slice(&rest[at..rest.len().min(at + size)]);
                response.complete = false;
                return Some((response, bytes.len()));
            }
            response.body.extend_from_slice(&rest[at..at + size]);
            at += size + 2;
        }
    }
    response.body = rest.to_vec();
    Some((response, bytes.len()))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads exactly one response from a keep-alive stream (which stays open).
pub async fn read_response(stream: &mut TcpStream, is_head: bool) -> Response {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Some((response, used)) = parse_one(&bytes, is_head) {
            // A body with no length ends only at close: only complete if so.
            let delimited = is_head
                || response.header("content-length").is_some()
                || response.header("transfer-encoding").is_some()
                || [204, 304].contains(&response.status);
            if delimited && response.complete {
                assert_eq!(used, bytes.len(), "unexpected bytes after the response");
                return response;
            }
        }
        match tokio::time::timeout(LIMIT, stream.read(&mut buf)).await {
            Err(_) => panic!(
                "no complete response in time; got {:?}",
                String::from_utf8_lossy(&bytes)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => {
                return parse_one(&bytes, is_head)
                    .unwrap_or_else(|| {
                        panic!(
                            "connection closed mid-response: {:?}",
                            String::from_utf8_lossy(&bytes)
                        )
                    })
                    .0;
            }
            Ok(Ok(n)) => bytes.extend_from_slice(&buf[..n]),
        }
    }
}

/// A `GET` for `path` with a Host field.
pub fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").into_bytes()
}

/// How a stream read to its end finished.
#[derive(Debug)]
pub enum End {
    /// The server closed cleanly (FIN).
    Eof,
    /// The read failed, normally a reset (RST) from the server.
    Reset(std::io::Error),
}

/// Reads until EOF or an error, reporting which; panics after [`LIMIT`].
pub async fn read_until_end<R: tokio::io::AsyncRead + Unpin>(stream: &mut R) -> (Vec<u8>, End) {
    read_until_end_within(stream, LIMIT).await
}

/// Reads until EOF or an error, reporting which; panics if the connection
/// is still open after `within`.
pub async fn read_until_end_within<R: tokio::io::AsyncRead + Unpin>(
    stream: &mut R,
    within: Duration,
) -> (Vec<u8>, End) {
    let deadline = tokio::time::Instant::now() + within;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => panic!(
                "server did not close the connection within {within:?}; got so far: {:?}",
                String::from_utf8_lossy(&out)
            ),
            Ok(Ok(0)) => return (out, End::Eof),
            Ok(Err(err)) => return (out, End::Reset(err)),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads exactly `n` bytes; panics after [`LIMIT`] or at EOF.
pub async fn read_exact_bytes<R: tokio::io::AsyncRead + Unpin>(
    stream: &mut R,
    n: usize,
) -> Vec<u8> {
    let mut out = vec![0u8; n];
    tokio::time::timeout(LIMIT, stream.read_exact(&mut out))
        .await
        .expect("no bytes in time")
        .expect("connection ended early");
    out
}

/// Writes all of `bytes`, bounded by [`LIMIT`].
pub async fn send<W: tokio::io::AsyncWrite + Unpin>(stream: &mut W, bytes: &[u8]) {
    tokio::time::timeout(LIMIT, stream.write_all(bytes))
        .await
        .expect("write timed out")
        .expect("write");
}

/// True when nothing at all (no byte, no EOF) arrives within `quiet`.
pub async fn stays_silent(stream: &mut TcpStream, quiet: Duration) -> bool {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(quiet, stream.read(&mut buf))
        .await
        .is_err()
}

/// A handler that reads the whole body (up to 1 MiB) and writes it back.
pub async fn echo(
    mut request: hangup::Request,
    mut response: hangup::ResponseWriter,
) -> hangup::Result<()> {
    let body = request.body_mut().read_all(1 << 20).await?;
    response.write_all(&body).await
}

/// Collects every outcome the server produces.
#[derive(Clone, Default)]
pub struct Outcomes(Arc<Mutex<Vec<Outcome>>>);

impl Outcomes {
    pub fn builder(&self) -> hangup::ConfigBuilder {
        let seen = self.0.clone();
        let mut builder = Config::builder();
        builder.on_outcome(move |outcome| seen.lock().unwrap().push(outcome.clone()));
        builder
    }

    pub fn all(&self) -> Vec<Outcome> {
        self.0.lock().unwrap().clone()
    }

    /// Waits until `n` outcomes arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Outcome> {
        let start = Instant::now();
        loop {
            let all = self.all();
            if all.len() >= n {
                return all;
            }
            assert!(
                start.elapsed() < LIMIT,
                "only {} of {n} outcomes arrived: {all:?}",
                all.len()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

// ------------------------------------------------------------------
// Events a test waits for instead of sleeping.
// ------------------------------------------------------------------

/// One side tells the other that something happened ("the handler
/// started", "go on"): `fire` counts one event, `wait` takes one, bounded
/// by [`LIMIT`]. An event fired before anyone waits is kept.
#[derive(Clone)]
pub struct Signal(Arc<Semaphore>);

impl Signal {
    pub fn new() -> Signal {
        Signal(Arc::new(Semaphore::new(0)))
    }

    pub fn fire(&self) {
        self.0.add_permits(1);
    }

    /// Waits for the next event; `what` names it in the failure message.
    pub async fn wait(&self, what: &str) {
        tokio::time::timeout(LIMIT, self.0.acquire())
            .await
            .unwrap_or_else(|_| panic!("{what}: not within {LIMIT:?}"))
            .expect("the semaphore is never closed")
            .forget();
    }
}

/// Waits until a slow reader's response has stalled: the client holds
/// part of it (so its TCP acknowledged some bytes), and since
/// `written_before` the server wrote at least four times what the
/// client's receive buffer holds (so some of it cannot be acknowledged).
pub async fn until_stalled(metrics: &hangup::Metrics, stream: &TcpStream, written_before: u64) {
    let window = socket2::SockRef::from(stream)
        .recv_buffer_size()
        .expect("SO_RCVBUF") as u64;
    let ahead = |m: &hangup::MetricsSnapshot| m.bytes_written >= written_before + 4 * window;
    assert!(
        metrics_reach(metrics, ahead).await,
        "the server did not write past the client's window: {:?}",
        metrics.snapshot()
    );
    tokio::time::timeout(LIMIT, stream.peek(&mut [0u8; 1]))
        .await
        .expect("no response bytes reached the client")
        .expect("peek");
}

/// Waits until the server has read every byte this client sent: the
/// server acknowledged them, and its socket has none left to read.
/// Linux only (`/proc/net/tcp` lists each socket's send and receive
/// queues); both ends are on 127.0.0.1.
pub async fn until_server_read(stream: &TcpStream) {
    let entry = |addr: SocketAddr| {
        let SocketAddr::V4(v4) = addr else {
            panic!("not IPv4: {addr}")
        };
        format!(
            "{:08X}:{:04X}",
            u32::from_le_bytes(v4.ip().octets()),
            v4.port()
        )
    };
    let client = entry(stream.local_addr().expect("local_addr"));
    let server = entry(stream.peer_addr().expect("peer_addr"));
    // The (send, receive) queue of the socket `local` -> `remote`.
    let queues = |table: &str, local: &str, remote: &str| {
        table.lines().find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.get(1) != Some(&local) || fields.get(2) != Some(&remote) {
                return None;
            }
            let (tx, rx) = fields.get(4)?.split_once(':')?;
            Some((
                u64::from_str_radix(tx, 16).ok()?,
                u64::from_str_radix(rx, 16).ok()?,
            ))
        })
    };
    let start = Instant::now();
    loop {
        let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
        let unacked = queues(&table, &client, &server).map(|(tx, _)| tx);
        let unread = queues(&table, &server, &client).map(|(_, rx)| rx);
        if unacked == Some(0) && unread == Some(0) {
            return;
        }
        assert!(
            start.elapsed() < LIMIT,
            "the server did not read what was sent: unacked {unacked:?}, unread {unread:?}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

// ------------------------------------------------------------------
// Handlers and waits shared by several modules.
// ------------------------------------------------------------------

/// Writes the request path as the body.
pub async fn path_handler(req: Request, mut res: ResponseWriter) -> hangup::Result<()> {
    res.write_all(req.uri().path().as_bytes()).await
}

/// Asserts that the server closed the connection with a FIN, not an RST.
pub fn assert_clean_eof(end: &End, what: &str) {
    assert!(
        matches!(end, End::Eof),
        "{what}: connection ended with {end:?}, not a clean close"
    );
}

/// How many complete responses `bytes` starts with.
pub fn parse_responses_prefix(mut bytes: &[u8]) -> usize {
    let mut count = 0;
    while let Some((response, used)) = parse_one(bytes, false) {
        if response.header("content-length").is_none() {
            break;
        }
        count += 1;
        bytes = &bytes[used..];
    }
    count
}

/// Polls the server's metrics until `done` holds, for at most 3 s.
pub async fn metrics_reach(
    metrics: &hangup::Metrics,
    done: impl Fn(&hangup::MetricsSnapshot) -> bool,
) -> bool {
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if done(&metrics.snapshot()) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    false
}

/// A connection that served one `GET /` and then parked.
pub async fn parked_connection(server: &TestServer) -> tokio::net::TcpStream {
    let mut stream = connect(server.addr).await;
    send(&mut stream, &get("/")).await;
    assert_eq!(read_response(&mut stream, false).await.status, 200);
    assert!(
        metrics_reach(&server.metrics, |m| m.parked_connections == 1).await,
        "the idle connection did not park: {:?}",
        server.metrics.snapshot()
    );
    stream
}

/// A config whose idle connections park after `release`.
pub fn parking_after(release: Duration) -> Config {
    Config::builder()
        .idle_release_after(release)
        .build()
        .unwrap()
}

/// How long a test handler waits for the hang-up before giving up: far
/// longer than detection should take, so a pass means "detected while
/// waiting".
pub const HANDLER_WAIT: Duration = Duration::from_secs(10);

/// What a waiting handler saw.
#[derive(Debug)]
pub struct Seen {
    pub hangup: Option<hangup::Hangup>,
    pub waited: Duration,
    pub write_after: Option<Result<(), String>>,
}

/// What a test learns from a [`waiting_handler`]: when each handler
/// started, and what it saw.
pub struct Waiting {
    /// Fired as each handler starts, before it waits.
    pub started: Signal,
    seen: mpsc::UnboundedReceiver<Seen>,
}

impl Waiting {
    /// The next handler's report, bounded by [`LIMIT`].
    pub async fn next_seen(&mut self) -> Seen {
        tokio::time::timeout(LIMIT, self.seen.recv())
            .await
            .expect("handler report in time")
            .expect("handler report")
    }
}

/// A handler that says it started, waits for the hang-up (at most
/// [`HANDLER_WAIT`]), then tries a 1-byte write, and reports both.
pub fn waiting_handler() -> (impl hangup::Handler, Waiting) {
    let started = Signal::new();
    let (report, seen) = mpsc::unbounded_channel();
    let waiting = Waiting {
        started: started.clone(),
        seen,
    };
    let handler = move |request: Request, mut response: ResponseWriter| {
        let report = report.clone();
        let started = started.clone();
        async move {
            started.fire();
            let start = Instant::now();
            let hangup = tokio::time::timeout(HANDLER_WAIT, request.hung_up())
                .await
                .ok();
            let waited = start.elapsed();
            let write_after = response.write_all(b"x").await;
            let write_after = Some(
                write_after
                    .as_ref()
                    .map(|_| ())
                    .map_err(|e| format!("{e:?}")),
            );
            let _ = report.send(Seen {
                hangup,
                waited,
                write_after,
            });
            Ok(())
        }
    };
    (handler, waiting)
}

// ------------------------------------------------------------------
// What the server reports: outcomes (through the hook) and log events
// (through a `tracing` layer on the test's thread).
// ------------------------------------------------------------------

/// One captured event: level, target, fields as text.
#[derive(Debug, Clone)]
pub struct Event {
    pub level: tracing::Level,
    pub target: String,
    pub fields: HashMap<String, String>,
}

#[derive(Clone, Default)]
pub struct Capture(pub Arc<Mutex<Vec<Event>>>);

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = HashMap::new();
        event.record(&mut Fields(&mut fields));
        self.0.lock().unwrap().push(Event {
            level: *event.metadata().level(),
            target: event.metadata().target().to_owned(),
            fields,
        });
    }
}

/// The process's global subscriber in tests: it records nothing, but
/// tells every callsite "sometimes", so that no callsite caches "never".
/// Without it, a callsite first hit by a test thread with no subscriber,
/// while another thread installs a [`Capture`], could cache "never" and
/// drop that capture's events (a race in the interest cache: seen as lost
/// access lines, more often with TLS tests running alongside).
struct Quiet;

impl tracing::Subscriber for Quiet {
    fn register_callsite(
        &self,
        _: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::sometimes()
    }
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        false
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Installs [`Quiet`] once, before the first server or capture.
pub fn quiet_global_subscriber() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = tracing::subscriber::set_global_default(Quiet);
    });
}

impl Capture {
    /// A capture installed as this thread's subscriber until the guard
    /// drops (`#[tokio::test]` runs the server's tasks on this thread).
    /// See [`Quiet`] for why the global subscriber is set first, and the
    /// callsites' cached interest rebuilt after.
    pub fn install() -> (Capture, tracing::subscriber::DefaultGuard) {
        use tracing_subscriber::layer::SubscriberExt;
        quiet_global_subscriber();
        let capture = Capture::default();
        let guard =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));
        tracing::callsite::rebuild_interest_cache();
        (capture, guard)
    }

    /// Waits (at most [`LIMIT`]) until `n` access lines were captured.
    pub async fn wait_for_access_lines(&self, n: usize) -> Vec<Event> {
        let start = std::time::Instant::now();
        loop {
            let lines = self.access_lines();
            if lines.len() >= n {
                return lines;
            }
            assert!(
                start.elapsed() < LIMIT,
                "only {} of {n} access lines within {LIMIT:?}: {lines:#?}",
                lines.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits (at most [`LIMIT`]) until `n` departure lines (clients that
    /// left before their head was complete) were captured.
    pub async fn wait_for_departures(&self, n: usize) -> Vec<Event> {
        self.wait_for_departures_in("reading_head", n).await
    }

    /// Waits (at most [`LIMIT`]) until `n` departure lines in `phase`
    /// (`reading_head`, `handshake`) were captured.
    pub async fn wait_for_departures_in(&self, phase: &str, n: usize) -> Vec<Event> {
        let start = std::time::Instant::now();
        loop {
            let lines: Vec<Event> = self
                .access_lines()
                .into_iter()
                .filter(|e| e.fields.get("phase").map(String::as_str) == Some(phase))
                .collect();
            if lines.len() >= n {
                return lines;
            }
            assert!(
                start.elapsed() < LIMIT,
                "only {} of {n} departure lines in {phase} within {LIMIT:?}: {lines:#?}",
                lines.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn access_lines(&self) -> Vec<Event> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.target == "hangup::access")
            .cloned()
            .collect()
    }
}
