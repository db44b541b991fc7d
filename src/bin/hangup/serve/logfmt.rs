//! The access log's formats (`--log-format`): the library's `key=value`
//! line (`kv`, the default), Apache/nginx `combined` with hangup's fields
//! appended, and one JSON object per line (`json`).
//!
//! The library writes one `tracing` event per request outcome, per client
//! that left before its head was complete (a departure), and per request
//! rejected before any handler saw it, all on target `hangup::access`.
//! For `kv`, `tracing-subscriber`'s formatter prints them as they are.
//! For the other two, [`AccessLayer`] takes those events and writes its
//! own line from their fields.
//!
//! `combined` and `json` also show what the library's outcome does not
//! carry: `User-Agent`, `Referer`, the authenticated user, the protocol
//! version and the request body bytes received. The handler records
//! them at the start of each request in [`Requests`], keyed by the
//! client's address (one connection), and the layer takes them back when
//! the outcome's line is written, matching method and target: requests on
//! a connection end in order, so the first match is the right one. Every
//! client-chosen string is escaped with [`hangup::Escaped`] (the library
//! escapes method and target the same way).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use hangup::http::header::{REFERER, USER_AGENT};
use hangup::http::{HeaderMap, Version};
use hangup::{Escaped, Request};
use serde_json::{Map, Value as Json};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;

use super::clock::Civil;

/// The target of the library's access-log events.
const ACCESS: &str = "hangup::access";

/// Requests remembered per connection, at most: a pipelining client may
/// have this many outcomes pending (16 is a typical pipelining depth;
/// the rest is margin). Older ones are forgotten, and their lines show
/// `-` for what was captured.
const MAX_PER_CONNECTION: usize = 64;

/// Connections remembered at most. An entry leaves when its outcome is
/// logged; this bounds memory if outcomes ever failed to come (the table
/// is then cleared, which costs some lines their captured fields).
const MAX_CONNECTIONS: usize = 65_536;

/// How the access log is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// The library's `key=value` line (`tracing` format).
    Kv,
    /// Apache/nginx "combined", then hangup's fields as `key=value`.
    Combined,
    /// One JSON object per line, every field named.
    Json,
}

/// Sets up logging on stderr: `RUST_LOG` (default `info`) filters;
/// `quiet` turns the access log and upload lines off (warnings stay).
/// Returns the table the handler records requests in, for the formats
/// that show request fields.
pub fn init(format: LogFormat, quiet: bool) -> Option<Arc<Requests>> {
    let _ = NOTE_FORMAT.set(format);
    let mut filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.is_empty() => EnvFilter::try_new(&spec).unwrap_or_else(|err| {
            note(
                tracing::Level::WARN,
                &format!("ignoring RUST_LOG={spec:?} ({err}); logging at info"),
            );
            EnvFilter::new("info")
        }),
        _ => EnvFilter::new("info"),
    };
    if quiet {
        for directive in ["hangup::access=off", "hangup::serve=warn"] {
            if let Ok(directive) = directive.parse() {
                filter = filter.add_directive(directive);
            }
        }
    }
    let ansi = io::stderr().is_terminal();
    let requests = (format != LogFormat::Kv && !quiet).then(|| Arc::new(Requests::default()));
    // Each fails only if a subscriber is already set, which is then kept.
    match format {
        LogFormat::Kv => {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(io::stderr)
                .with_ansi(ansi)
                .try_init();
        }
        LogFormat::Combined => {
            let others = tracing_subscriber::fmt::layer()
                .with_writer(io::stderr)
                .with_ansi(ansi)
                .with_filter(filter_fn(|meta| meta.target() != ACCESS));
            let _ = tracing_subscriber::registry()
                .with(filter)
                .with(others)
                .with(AccessLayer {
                    format,
                    requests: requests.clone(),
                })
                .try_init();
        }
        LogFormat::Json => {
            let _ = tracing_subscriber::registry()
                .with(filter)
                .with(AccessLayer {
                    format,
                    requests: requests.clone(),
                })
                .try_init();
        }
    }
    requests
}

/// What the handler records of one request for its log line.
#[derive(Debug)]
pub struct Captured {
    /// The method, escaped as the library escapes it.
    method: String,
    /// The target, escaped as the library escapes it.
    target: String,
    /// `HTTP/1.1` or `HTTP/1.0`.
    protocol: &'static str,
    /// `User-Agent`, escaped.
    user_agent: Option<String>,
    /// `Referer`, escaped.
    referer: Option<String>,
    /// The user `--auth` admitted, escaped.
    user: Mutex<Option<String>>,
    /// Request body bytes the handler received (uploads).
    received: Arc<AtomicU64>,
}

impl Captured {
    /// The counter of body bytes received, for the upload to advance.
    pub fn received(&self) -> Arc<AtomicU64> {
        self.received.clone()
    }

    /// Records the user `--auth` admitted.
    pub fn set_user(&self, user: &str) {
        if let Ok(mut slot) = self.user.lock() {
            *slot = Some(Escaped::bytes(user.as_bytes()).to_string());
        }
    }
}

/// The requests whose lines are not written yet, by connection.
#[derive(Debug, Default)]
pub struct Requests {
    pending: Mutex<HashMap<SocketAddr, VecDeque<Arc<Captured>>>>,
}

impl Requests {
    /// Records `request`'s fields; returns them, to add to as it runs.
    pub fn record(&self, request: &Request) -> Arc<Captured> {
        let headers = request.headers();
        let captured = Arc::new(Captured {
            method: Escaped::display(request.method()).to_string(),
            target: Escaped::display(request.uri()).to_string(),
            protocol: match request.version() {
                Version::HTTP_10 => "HTTP/1.0",
                _ => "HTTP/1.1",
            },
            user_agent: escaped_field(headers, USER_AGENT),
            referer: escaped_field(headers, REFERER),
            user: Mutex::new(None),
            received: Arc::new(AtomicU64::new(0)),
        });
        if let Ok(mut pending) = self.pending.lock() {
            if pending.len() >= MAX_CONNECTIONS {
                pending.clear();
            }
            let queue = pending.entry(request.remote_addr()).or_default();
            if queue.len() >= MAX_PER_CONNECTION {
                queue.pop_front();
            }
            queue.push_back(captured.clone());
        }
        captured
    }

    /// Takes back the first request of `remote` with this method and
    /// target (escaped, as the outcome's event shows them).
    fn take(&self, remote: SocketAddr, method: &str, target: &str) -> Option<Arc<Captured>> {
        let mut pending = self.pending.lock().ok()?;
        let queue = pending.get_mut(&remote)?;
        let at = queue
            .iter()
            .position(|c| c.method == method && c.target == target)?;
        let captured = queue.remove(at);
        if queue.is_empty() {
            pending.remove(&remote);
        }
        captured
    }
}

/// The value of field `name`, escaped, if present.
fn escaped_field(headers: &HeaderMap, name: hangup::http::HeaderName) -> Option<String> {
    headers
        .get(name)
        .map(|v| Escaped::bytes(v.as_bytes()).to_string())
}

/// Writes `hangup::access` events as `combined` or `json` lines (and, for
/// `json`, every other event as a JSON object too).
struct AccessLayer {
    format: LogFormat,
    requests: Option<Arc<Requests>>,
}

/// A field's value, as `tracing` recorded it.
#[derive(Debug, Clone)]
enum Value {
    U64(u64),
    I64(i64),
    Bool(bool),
    Text(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::U64(n) => write!(f, "{n}"),
            Value::I64(n) => write!(f, "{n}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Text(s) => f.write_str(s),
        }
    }
}

impl Value {
    fn to_json(&self) -> Json {
        match self {
            Value::U64(n) => Json::from(*n),
            Value::I64(n) => Json::from(*n),
            Value::Bool(b) => Json::from(*b),
            Value::Text(s) => Json::from(s.as_str()),
        }
    }
}

/// An event's fields in order, its message apart.
#[derive(Debug, Default)]
struct Fields {
    message: Option<String>,
    values: Vec<(&'static str, Value)>,
}

impl Fields {
    fn get(&self, name: &str) -> Option<&Value> {
        self.values.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    fn text(&self, name: &str) -> Option<String> {
        self.get(name).map(Value::to_string)
    }

    fn u64(&self, name: &str) -> Option<u64> {
        match self.get(name) {
            Some(Value::U64(n)) => Some(*n),
            Some(Value::I64(n)) => u64::try_from(*n).ok(),
            _ => None,
        }
    }
}

impl Visit for Fields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.values.push((field.name(), Value::U64(value)));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.values.push((field.name(), Value::I64(value)));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.values.push((field.name(), Value::Bool(value)));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_owned());
        } else {
            self.values
                .push((field.name(), Value::Text(value.to_owned())));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = Some(text);
        } else {
            self.values.push((field.name(), Value::Text(text)));
        }
    }
}

/// Which access event a set of fields is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A request's outcome (it has `intended_status`).
    Request,
    /// A client that left before its head was complete.
    Departure,
    /// A request rejected before any handler saw it.
    Rejection,
}

impl Kind {
    fn of(fields: &Fields) -> Kind {
        if fields.get("intended_status").is_some() {
            Kind::Request
        } else if fields.get("reason").is_some() {
            Kind::Rejection
        } else {
            Kind::Departure
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Kind::Request => "request",
            Kind::Departure => "departure",
            Kind::Rejection => "rejection",
        }
    }
}

impl<S: Subscriber> Layer<S> for AccessLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let line = if meta.target() == ACCESS {
            let kind = Kind::of(&fields);
            let captured = match (kind, &self.requests) {
                (Kind::Request, Some(requests)) => {
                    let remote = fields.text("remote_addr").and_then(|a| a.parse().ok());
                    let method = fields.text("method").unwrap_or_default();
                    let target = fields.text("target").unwrap_or_default();
                    remote.and_then(|remote| requests.take(remote, &method, &target))
                }
                _ => None,
            };
            let line = Line {
                kind,
                fields: &fields,
                captured: captured.as_deref(),
                now: SystemTime::now(),
            };
            match self.format {
                LogFormat::Json => line.json(),
                _ => line.combined(),
            }
        } else if self.format == LogFormat::Json {
            other_json(meta.level().as_str(), meta.target(), &fields)
        } else {
            return;
        };
        let mut stderr = io::stderr().lock();
        let _ = stderr.write_all(format!("{line}\n").as_bytes());
    }
}

/// One access line being formatted.
struct Line<'a> {
    kind: Kind,
    fields: &'a Fields,
    captured: Option<&'a Captured>,
    now: SystemTime,
}

impl Line<'_> {
    /// When the exchange started: now, less its duration.
    fn started(&self) -> SystemTime {
        let duration = Duration::from_micros(self.fields.u64("duration_us").unwrap_or(0));
        self.now.checked_sub(duration).unwrap_or(self.now)
    }

    fn user(&self) -> Option<String> {
        self.captured
            .and_then(|c| c.user.lock().ok().and_then(|u| u.clone()))
    }

    /// `%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"`, then
    /// the rest of the event's fields as `key=value`. `%b` is `written`
    /// (response bytes the kernel accepted, head included: nginx's
    /// `$bytes_sent`).
    fn combined(&self) -> String {
        let f = self.fields;
        let remote = f.text("remote_addr").unwrap_or_default();
        let host = remote
            .parse::<SocketAddr>()
            .map(|a| a.ip().to_string())
            .unwrap_or_else(|_| "-".to_owned());
        let request = match (self.kind, f.text("method"), f.text("target")) {
            (Kind::Request, Some(method), Some(target)) => {
                let protocol = self.captured.map_or("HTTP/1.1", |c| c.protocol);
                format!("{method} {target} {protocol}")
            }
            _ => "-".to_owned(),
        };
        let status = match self.kind {
            // A departure was not answered, but for plain HTTP on a TLS
            // port (its own `status`). The number says who ended it, as
            // nginx's would: the client (499), or the server refusing a
            // malformed PROXY header (400) or making room for another
            // TLS handshake (503).
            Kind::Departure => f.text("status").unwrap_or_else(|| {
                match f.text("cause").as_deref() {
                    Some("proxy_header_refused") => "400",
                    Some("handshake_evicted") => "503",
                    _ => "499",
                }
                .to_owned()
            }),
            _ => f.text("status").unwrap_or_else(|| "-".to_owned()),
        };
        let quoted = |value: Option<&String>| value.map_or("-".to_owned(), |v| spaced(v));
        let mut line = format!(
            "{host} - {user} [{time}] \"{request}\" {status} {bytes} \"{referer}\" \"{agent}\"",
            user = self.user().unwrap_or_else(|| "-".to_owned()),
            time = Civil::of(self.started()).common_log(),
            bytes = f.u64("written").unwrap_or(0),
            referer = quoted(self.captured.and_then(|c| c.referer.as_ref())),
            agent = quoted(self.captured.and_then(|c| c.user_agent.as_ref())),
        );
        line.push_str(&format!(" event={}", self.kind.as_str()));
        for (name, value) in &f.values {
            if matches!(*name, "method" | "target" | "status") {
                continue;
            }
            match value {
                // Library strings with spaces (a rejection's reason).
                Value::Text(text) if text.contains(' ') => {
                    line.push_str(&format!(" {name}={text:?}"));
                }
                _ => line.push_str(&format!(" {name}={value}")),
            }
        }
        if let Some(captured) = self.captured {
            line.push_str(&format!(
                " received={}",
                captured.received.load(Ordering::Relaxed)
            ));
        }
        line
    }

    /// One JSON object: `time` (the exchange's start), `event`, every
    /// field of the event, then the captured ones.
    fn json(&self) -> String {
        let mut object = Map::new();
        object.insert(
            "time".into(),
            Json::from(Civil::of(self.started()).rfc3339_millis()),
        );
        object.insert("event".into(), Json::from(self.kind.as_str()));
        for (name, value) in &self.fields.values {
            object.insert((*name).into(), value.to_json());
        }
        if let Some(message) = &self.fields.message {
            object.insert("message".into(), Json::from(message.as_str()));
        }
        if let Some(captured) = self.captured {
            object.insert("protocol".into(), Json::from(captured.protocol));
            let optional = |v: &Option<String>| v.as_deref().map_or(Json::Null, Json::from);
            let spaced =
                |v: &Option<String>| v.as_deref().map_or(Json::Null, |v| Json::from(spaced(v)));
            object.insert("user_agent".into(), spaced(&captured.user_agent));
            object.insert("referer".into(), spaced(&captured.referer));
            object.insert("user".into(), optional(&self.user()));
            object.insert(
                "received".into(),
                Json::from(captured.received.load(Ordering::Relaxed)),
            );
        }
        Json::Object(object).to_string()
    }
}

/// A captured header value as a quoted `combined` field or a JSON string
/// shows it: escaped, but with its spaces back (`Mozilla/5.0 (X11; ...)`,
/// which log analysers parse), since a space cannot shift a quoted or a
/// JSON field. `\x20` in an escaped value can only be a space: a
/// backslash the client sent is itself escaped (`\x5c`).
fn spaced(escaped: &str) -> String {
    escaped.replace(r"\x20", " ")
}

/// The format of the server's own notes: set by [`init`].
static NOTE_FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// Prints one of the server's own notes on stderr (its address, a
/// certificate's, its shutdown): `hangup serve: {text}`, or with
/// `--log-format json` a JSON object like every other line (time, level,
/// target `hangup::serve`, message), so that every line parses. Not a
/// log event: the address must show whatever `RUST_LOG` or `--quiet` say.
pub fn note(level: tracing::Level, text: &str) {
    let line = match NOTE_FORMAT.get() {
        Some(LogFormat::Json) => {
            let fields = Fields {
                message: Some(text.to_owned()),
                values: Vec::new(),
            };
            other_json(level.as_str(), "hangup::serve", &fields)
        }
        _ => format!("hangup serve: {text}"),
    };
    let mut stderr = io::stderr().lock();
    let _ = stderr.write_all(format!("{line}\n").as_bytes());
}

/// Prints the error that ends `hangup serve`: `hangup: {err}`, or with
/// `--log-format json` a JSON object (level ERROR), so that even the last
/// line parses.
pub fn fatal(err: &dyn fmt::Display) {
    match NOTE_FORMAT.get() {
        Some(LogFormat::Json) => note(tracing::Level::ERROR, &err.to_string()),
        _ => eprintln!("hangup: {err}"),
    }
}

/// Any other event as a JSON object (`json` format): time, level,
/// target, message and fields.
fn other_json(level: &str, target: &str, fields: &Fields) -> String {
    let mut object = Map::new();
    object.insert(
        "time".into(),
        Json::from(Civil::of(SystemTime::now()).rfc3339_millis()),
    );
    object.insert("level".into(), Json::from(level));
    object.insert("target".into(), Json::from(target));
    if let Some(message) = &fields.message {
        object.insert("message".into(), Json::from(message.as_str()));
    }
    for (name, value) in &fields.values {
        object.insert((*name).into(), value.to_json());
    }
    Json::Object(object).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(values: Vec<(&'static str, Value)>) -> Fields {
        Fields {
            message: None,
            values,
        }
    }

    fn captured() -> Captured {
        Captured {
            method: "GET".into(),
            target: "/a".into(),
            protocol: "HTTP/1.1",
            user_agent: Some(r"curl/8\x20\x22x\x22".into()),
            referer: None,
            user: Mutex::new(Some("alice".into())),
            received: Arc::new(AtomicU64::new(7)),
        }
    }

    fn outcome() -> Fields {
        fields(vec![
            ("remote_addr", Value::Text("127.0.0.1:4000".into())),
            ("method", Value::Text("GET".into())),
            ("target", Value::Text("/a".into())),
            ("status", Value::U64(200)),
            ("intended_status", Value::U64(200)),
            ("complete", Value::Bool(true)),
            ("written", Value::U64(1234)),
            ("acked", Value::U64(1234)),
            ("duration_us", Value::U64(1_000_000)),
        ])
    }

    #[test]
    fn combined_lines_start_as_apache_writes_them() {
        let f = outcome();
        let c = captured();
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_001);
        let line = Line {
            kind: Kind::Request,
            fields: &f,
            captured: Some(&c),
            now,
        }
        .combined();
        assert_eq!(
            line,
            "127.0.0.1 - alice [14/Nov/2023:22:13:20 +0000] \"GET /a HTTP/1.1\" 200 1234 \"-\" \
             \"curl/8 \\x22x\\x22\" event=request remote_addr=127.0.0.1:4000 \
             intended_status=200 complete=true written=1234 acked=1234 duration_us=1000000 \
             received=7"
        );
    }

    #[test]
    fn json_lines_name_every_field() {
        let f = outcome();
        let c = captured();
        let line = Line {
            kind: Kind::Request,
            fields: &f,
            captured: Some(&c),
            now: SystemTime::now(),
        }
        .json();
        let value: Json = serde_json::from_str(&line).unwrap();
        assert_eq!(value["event"], "request");
        assert_eq!(value["status"], 200);
        assert_eq!(value["complete"], true);
        assert_eq!(value["user_agent"], r"curl/8 \x22x\x22");
        assert_eq!(value["referer"], Json::Null);
        assert_eq!(value["received"], 7);
    }

    #[test]
    fn departures_and_rejections_have_no_request_line() {
        let departure = fields(vec![
            ("remote_addr", Value::Text("[::1]:5000".into())),
            ("phase", Value::Text("reading_head".into())),
            ("cause", Value::Text("peer_closed".into())),
            ("received", Value::U64(34)),
        ]);
        assert_eq!(Kind::of(&departure), Kind::Departure);
        let line = Line {
            kind: Kind::Departure,
            fields: &departure,
            captured: None,
            now: SystemTime::now(),
        }
        .combined();
        assert!(line.starts_with("::1 - - ["), "{line}");
        assert!(
            line.contains("] \"-\" 499 0 \"-\" \"-\" event=departure"),
            "{line}"
        );
        for (cause, status) in [
            ("proxy_header_refused", "400"),
            ("handshake_evicted", "503"),
            ("tls_handshake_failed", "499"),
        ] {
            let refused = fields(vec![
                ("remote_addr", Value::Text("127.0.0.1:1".into())),
                ("cause", Value::Text(cause.into())),
            ]);
            let line = Line {
                kind: Kind::Departure,
                fields: &refused,
                captured: None,
                now: SystemTime::now(),
            }
            .combined();
            assert!(
                line.contains(&format!("\"-\" {status} 0 ")),
                "{cause}: {line}"
            );
        }
        let rejection = fields(vec![
            ("remote_addr", Value::Text("127.0.0.1:1".into())),
            ("status", Value::U64(400)),
            ("reason", Value::Text("invalid request line".into())),
        ]);
        assert_eq!(Kind::of(&rejection), Kind::Rejection);
        let line = Line {
            kind: Kind::Rejection,
            fields: &rejection,
            captured: None,
            now: SystemTime::now(),
        }
        .combined();
        assert!(line.contains("\"-\" 400 0"), "{line}");
        assert!(line.ends_with("reason=\"invalid request line\""), "{line}");
    }
}
