//! [`Config`] and its [`ConfigBuilder`]: limits, buffer sizes, timeouts and
//! hang-up policies. `Config::default()` is a working server.
//!
//! | setting | default | why |
//! |---|---|---|
//! | [`write_buffer_bytes`](ConfigBuilder::write_buffer_bytes) | 8 KiB | head + small bodies in one syscall; the automatic `Content-Length` threshold |
//! | [`max_request_line_bytes`](ConfigBuilder::max_request_line_bytes) | 8 KiB | nginx's default for one header buffer; longer targets get 414 |
//! | [`max_head_bytes`](ConfigBuilder::max_head_bytes) | 64 KiB | larger than any browser sends; bounded memory per connection |
//! | [`max_headers`](ConfigBuilder::max_headers) | 100 | browsers send about 20; bounds parsing work |
//! | [`header_read_timeout`](ConfigBuilder::header_read_timeout) | 10 s | slow-loris: a client must finish its head in time |
//! | [`body_read_timeout`](ConfigBuilder::body_read_timeout) | 30 s of no progress | a client that stopped sending its body |
//! | [`idle_timeout`](ConfigBuilder::idle_timeout) | 60 s | keep-alive connections with no request |
//! | [`idle_release_after`](ConfigBuilder::idle_release_after) | 100 ms | an idle connection parks: only its socket and a table slot (≈ 0.13 KiB measured); a busy one keeps everything (no allocation per request) |
//! | [`write_timeout`](ConfigBuilder::write_timeout) | 30 s of no progress | a reader that stopped reading |
//! | [`max_drain_bytes`](ConfigBuilder::max_drain_bytes) | 256 KiB | unread body read and discarded to keep the connection (Go's figure) |
//! | [`linger_bytes`](ConfigBuilder::linger_bytes) / [`linger_timeout`](ConfigBuilder::linger_timeout) | 256 KiB / 2 s | a response already written is not reset away |
//! | [`lenient_line_endings`](ConfigBuilder::lenient_line_endings) | off | RFC 9112 allows bare LF; strict is safer behind proxies |
//! | [`on_fin`](ConfigBuilder::on_fin) | [`OnFin::Notify`] | the client may still read; the handler is told at once and decides |
//! | [`on_hangup`](ConfigBuilder::on_hangup) | [`OnHangup::Notify`] | handlers decide; cancelling is one setting away |
//! | [`socket_watch`](ConfigBuilder::socket_watch) | on | off makes a conventional server that only sees write errors |
//! | [`ack_wait`](ConfigBuilder::ack_wait) | 250 ms | an outcome waits this long for the client's TCP to acknowledge the response |
//! | [`on_outcome`](ConfigBuilder::on_outcome) | none | a hook for every [`Outcome`] (tests, metrics, the lab) |
//! | [`max_connections`](ConfigBuilder::max_connections) | 20,000 | past it, new connections wait in the kernel's backlog instead of taking memory and descriptors |
//! | [`head_memory_budget`](ConfigBuilder::head_memory_budget) | 32 MiB | a flood of large unfinished heads holds bounded memory whatever `max_head_bytes` |
//! | [`proxy_protocol`](ConfigBuilder::proxy_protocol) | off | a header is expected only where a trusted proxy sends it |
//! | `tls` (`tls` feature) | none | plain TCP unless given a `rustls::ServerConfig` |
//! | `tls_handshake_timeout` (`tls` feature) | 10 s | slow-loris works on handshakes too |
//! | `max_tls_handshakes` (`tls` feature) | 128 | handshakes in progress hold memory: past it, the oldest is closed to make room for the new one |

use std::time::Duration;

use crate::error::{ConfigError, Error};
use crate::exchange::{OnFin, OnHangup};
use crate::outcome::{Outcome, OutcomeHook};

const KIB: usize = 1024;

/// Validated server settings. Build one with [`Config::builder`].
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) write_buffer_bytes: usize,
    pub(crate) max_request_line_bytes: usize,
    pub(crate) max_head_bytes: usize,
    pub(crate) max_headers: usize,
    pub(crate) header_read_timeout: Duration,
    pub(crate) body_read_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) idle_release_after: Duration,
    pub(crate) write_timeout: Duration,
    pub(crate) max_drain_bytes: u64,
    pub(crate) linger_bytes: u64,
    pub(crate) linger_timeout: Duration,
    pub(crate) lenient_line_endings: bool,
    pub(crate) on_fin: OnFin,
    pub(crate) on_hangup: OnHangup,
    pub(crate) socket_watch: bool,
    pub(crate) ack_wait: Duration,
    pub(crate) outcome_hook: Option<OutcomeHook>,
    pub(crate) max_connections: usize,
    pub(crate) head_memory_budget: usize,
    pub(crate) proxy_protocol: bool,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    #[cfg(feature = "tls")]
    pub(crate) tls_handshake_timeout: Duration,
    #[cfg(feature = "tls")]
    pub(crate) max_tls_handshakes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            write_buffer_bytes: 8 * KIB,
            max_request_line_bytes: 8 * KIB,
            max_head_bytes: 64 * KIB,
            max_headers: 100,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            idle_release_after: Duration::from_millis(100),
            write_timeout: Duration::from_secs(30),
            max_drain_bytes: 256 * KIB as u64,
            linger_bytes: 256 * KIB as u64,
            linger_timeout: Duration::from_secs(2),
            lenient_line_endings: false,
            on_fin: OnFin::Notify,
            on_hangup: OnHangup::Notify,
            socket_watch: true,
            ack_wait: Duration::from_millis(250),
            outcome_hook: None,
            max_connections: 20_000,
            head_memory_budget: 32 << 20,
            proxy_protocol: false,
            #[cfg(feature = "tls")]
            tls: None,
            #[cfg(feature = "tls")]
            tls_handshake_timeout: Duration::from_secs(10),
            #[cfg(feature = "tls")]
            max_tls_handshakes: 128,
        }
    }
}

impl Config {
    /// A builder starting from the defaults.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder {
            config: Config::default(),
        }
    }

    /// The response output buffer size in bytes.
    pub fn write_buffer_bytes(&self) -> usize {
        self.write_buffer_bytes
    }

    /// The policy for a client's FIN.
    pub fn on_fin(&self) -> OnFin {
        self.on_fin
    }

    /// The policy for a handler whose client is gone.
    pub fn on_hangup(&self) -> OnHangup {
        self.on_hangup
    }

    /// Whether the socket watch runs while handlers run.
    pub fn socket_watch(&self) -> bool {
        self.socket_watch
    }
}

/// Builds a [`Config`]. Setters never fail; [`build`](Self::build) checks
/// every value and names the first one out of range.
#[derive(Debug, Clone)]
pub struct ConfigBuilder {
    config: Config,
}

impl ConfigBuilder {
    /// Size of the per-connection response output buffer, in bytes.
    /// Default: 8 KiB. Range: 1 byte to 16 MiB.
    ///
    /// A response whose body fits (the handler returns with at most this many
    /// bytes written and no explicit flush) is sent with an automatic
    /// `Content-Length`, head and body in one write. A write that does not fit
    /// commits the head and sends the buffer and the new bytes together
    /// without copying them.
    pub fn write_buffer_bytes(&mut self, bytes: usize) -> &mut Self {
        self.config.write_buffer_bytes = bytes;
        self
    }

    /// Longest accepted request line (method, target, version), in bytes.
    /// Default: 8 KiB. Longer lines are answered `414 URI Too Long`.
    /// Must not exceed [`max_head_bytes`](Self::max_head_bytes).
    pub fn max_request_line_bytes(&mut self, bytes: usize) -> &mut Self {
        self.config.max_request_line_bytes = bytes;
        self
    }

    /// Largest accepted request head (request line, fields, blank line), in
    /// bytes. Default: 64 KiB. Range: 64 bytes to 16 MiB. Larger heads are
    /// answered `431 Request Header Fields Too Large`. Also bounds a chunked
    /// body's trailer section.
    pub fn max_head_bytes(&mut self, bytes: usize) -> &mut Self {
        self.config.max_head_bytes = bytes;
        self
    }

    /// Most header fields accepted in one head. Default: 100. Range: 1 to
    /// 10,000. More are answered `431 Request Header Fields Too Large`.
    pub fn max_headers(&mut self, count: usize) -> &mut Self {
        self.config.max_headers = count;
        self
    }

    /// Time a client has to send a complete request head, counted from the
    /// connection's accept (first request) or from the first byte of the head
    /// (later requests). Default: 10 s. Must be non-zero. On expiry the
    /// connection is closed without a response.
    pub fn header_read_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.config.header_read_timeout = timeout;
        self
    }

    /// Longest a request body read may make no progress. Default: 30 s.
    /// Must be non-zero. On expiry the read fails with
    /// [`Error::ClientGone`] (cause [`ReadTimeout`](crate::HangupCause::ReadTimeout)).
    pub fn body_read_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.config.body_read_timeout = timeout;
        self
    }

    /// Longest a keep-alive connection may wait for the next request's
    /// first byte. Default: 60 s. Must be non-zero.
    pub fn idle_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.config.idle_timeout = timeout;
        self
    }

    /// How long a keep-alive connection waits for its next request before
    /// it *parks*: its connection task, buffers and exchange state are
    /// freed, and its socket waits in the server's parking lot (one table
    /// slot and one epoll set for all: about 0.13 KiB per connection
    /// instead of about 6.5) until the client sends again, closes, the idle
    /// timeout passes or the server shuts down. Default: 100 ms. A busy
    /// client's next request comes well within 100 ms, so busy connections
    /// keep everything (no allocation per request); parking and resuming
    /// cost four `epoll_ctl` calls, a peek, a `getsockname` and a task
    /// spawn.
    ///
    /// A connection parks only when nothing is pending on it: not before
    /// its first request, not while outcomes wait for acknowledgements, and
    /// not while a handler still holds its `Request` or `ResponseWriter`;
    /// it then only frees its buffers and waits as it is. Zero parks (or
    /// frees) at every wait: the least memory, at the price of a park and
    /// resume per keep-alive request.
    pub fn idle_release_after(&mut self, after: Duration) -> &mut Self {
        self.config.idle_release_after = after;
        self
    }

    /// Longest a response write may make no progress (the client stopped
    /// reading and both socket buffers are full). Default: 30 s. Must be
    /// non-zero. On expiry the write fails with [`Error::ClientGone`] (cause
    /// [`WriteStalled`](crate::HangupCause::WriteStalled)).
    pub fn write_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.config.write_timeout = timeout;
        self
    }

    /// Most bytes of an unread request body the server reads and discards
    /// after the response, to keep the connection open for the next request.
    /// Default: 256 KiB. A longer remainder closes the connection instead.
    pub fn max_drain_bytes(&mut self, bytes: u64) -> &mut Self {
        self.config.max_drain_bytes = bytes;
        self
    }

    /// Lingering close: after an error response, or with request bytes left
    /// unread, the server half-closes and then reads and discards at most this
    /// many bytes before closing, so the client's kernel does not receive an
    /// RST that would erase the response. Default: 256 KiB.
    pub fn linger_bytes(&mut self, bytes: u64) -> &mut Self {
        self.config.linger_bytes = bytes;
        self
    }

    /// Longest the lingering close waits for the client to close. Default:
    /// 2 s. Zero closes at once (and risks resetting the response away).
    pub fn linger_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.config.linger_timeout = timeout;
        self
    }

    /// Accept a bare LF as a line ending in request heads and chunk lines
    /// (RFC 9112 §2.2 allows it). Default: off, so bare LF gets a 400: a
    /// proxy in front may read such a request differently. A bare CR is
    /// rejected either way, and so is anything else outside the grammar:
    /// this setting is about line endings only (whitespace after a chunk
    /// size without an extension, `5 \r\n`, is a 400 in both modes).
    pub fn lenient_line_endings(&mut self, lenient: bool) -> &mut Self {
        self.config.lenient_line_endings = lenient;
        self
    }

    /// What a client's FIN means. Default: [`OnFin::Notify`]. A handler can
    /// override it for its own request (per route):
    /// [`Request::set_on_fin`](crate::Request::set_on_fin).
    pub fn on_fin(&mut self, policy: OnFin) -> &mut Self {
        self.config.on_fin = policy;
        self
    }

    /// What happens to a handler whose client is gone. Default:
    /// [`OnHangup::Notify`]. A handler can override it for its own request
    /// (per route): [`Request::set_on_hangup`](crate::Request::set_on_hangup).
    pub fn on_hangup(&mut self, policy: OnHangup) -> &mut Self {
        self.config.on_hangup = policy;
        self
    }

    /// Watch the socket for the client's FIN or RST while a handler runs.
    /// Default: on. Off makes a conventional server: hang-ups are seen only
    /// when a read or write fails. The lab compares the two.
    pub fn socket_watch(&mut self, watch: bool) -> &mut Self {
        self.config.socket_watch = watch;
        self
    }

    /// Longest an [`Outcome`] (and its access-log line) waits, after the
    /// response's last byte reached the kernel, for the client's TCP to
    /// acknowledge everything. Default: 250 ms: on a LAN or loopback the
    /// acknowledgement takes microseconds, a delayed ACK up to 40 ms. An
    /// outcome that is final before then is marked
    /// [`in_flight`](Outcome::in_flight). Zero logs at once.
    pub fn ack_wait(&mut self, wait: Duration) -> &mut Self {
        self.config.ack_wait = wait;
        self
    }

    /// Calls `hook` with every [`Outcome`], once it is final: exactly once
    /// per request that reached a handler. Runs on the connection's task:
    /// keep it short. Default: none.
    pub fn on_outcome(&mut self, hook: impl Fn(&Outcome) + Send + Sync + 'static) -> &mut Self {
        self.config.outcome_hook = Some(OutcomeHook(std::sync::Arc::new(hook)));
        self
    }

    /// Most connections open at once (parked and upgraded ones included). Default:
    /// 20,000. Range: 1 to 10,000,000. Past it the server stops accepting
    /// until one closes: new connections wait in the kernel's listen
    /// backlog (where they cost neither a task nor a descriptor of ours)
    /// rather than being accepted and dropped. `Server::metrics` shows
    /// the open count.
    pub fn max_connections(&mut self, connections: usize) -> &mut Self {
        self.config.max_connections = connections;
        self
    }

    /// Memory, server-wide, that request heads still arriving may hold
    /// beyond the first 1 KiB each. Default: 32 MiB. Range: twice
    /// `max_head_bytes` (a buffer grows by doubling, and one head of
    /// `max_head_bytes` must always fit) to 1 TiB.
    ///
    /// A connection whose head does not fit 1 KiB claims the room its read
    /// buffer grows by from this budget before reading more; when the
    /// budget is spent it is answered `431 Request Header Fields Too
    /// Large` and closed (a rejection line, reason "the server's memory
    /// for request heads is in use"). So connections that each send most
    /// of a large head and stop hold at most `max_connections` × 1 KiB +
    /// this in read buffers, whatever `max_head_bytes` (each connection's
    /// own state comes on top: ≈ 7.6 KiB while its head arrives, measured
    /// in bench/RESULTS.md); heads of up to 1 KiB (nearly all)
    /// are served meanwhile. A claim is given back when the connection
    /// frees its buffers (idle, closed, or refused: a refused head's
    /// buffer goes with the refusal, before the lingering close).
    pub fn head_memory_budget(&mut self, bytes: usize) -> &mut Self {
        self.config.head_memory_budget = bytes;
        self
    }

    /// Expects every connection to start with a PROXY protocol header
    /// (version 1 or 2, as HAProxy, nginx's `stream` module and cloud load
    /// balancers send it) and takes the client's address from it: for
    /// [`Request::remote_addr`](crate::Request::remote_addr), outcomes,
    /// departures and the access log. Default: off.
    ///
    /// Turn it on only for a listener that nothing but the proxy can
    /// reach: whoever connects can claim any address. The header must
    /// arrive within `header_read_timeout` (and before a TLS handshake);
    /// a connection without a valid one is closed without a response,
    /// with a departure record (phase `proxy_header`, cause
    /// `proxy_header_refused` and the rule it broke; counted in
    /// `proxy_header_refusals`). A v2 header can be at most 4 KiB. A
    /// header without usable addresses (v2 `LOCAL`, the proxy's own
    /// health check; v1 `UNKNOWN`) keeps the socket's own. Relayed
    /// connections do not park when idle (the proxy holds few of them).
    pub fn proxy_protocol(&mut self, enabled: bool) -> &mut Self {
        self.config.proxy_protocol = enabled;
        self
    }

    /// Serves TLS with this rustls configuration (its certificates, its
    /// protocol versions): one from [`tls::TlsFiles`](crate::tls::TlsFiles)
    /// or [`tls::self_signed`](crate::tls::self_signed), or your own. ALPN: `http/1.1` is offered when the
    /// configuration names no protocol. Every handler, native or tower,
    /// runs unchanged over it; the counters count plaintext (see the
    /// crate docs on TLS). Default: none (plain TCP).
    #[cfg(feature = "tls")]
    pub fn tls(&mut self, config: std::sync::Arc<rustls::ServerConfig>) -> &mut Self {
        self.config.tls = Some(crate::tls::with_default_alpn(config));
        self
    }

    /// Longest a client may take to complete its TLS handshake, from the
    /// accept. Default: 10 s. Must be non-zero. Past it the connection
    /// closes, with a departure record (phase `handshake`).
    #[cfg(feature = "tls")]
    pub fn tls_handshake_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.config.tls_handshake_timeout = timeout;
        self
    }

    /// Most TLS handshakes in progress at once. Default: 128. Range: 1 to
    /// 100,000. Past the cap a new connection is still accepted and the
    /// *oldest* handshake in progress is closed to make room (a
    /// [`HandshakeEvicted`](crate::DepartureCause::HandshakeEvicted)
    /// departure): a client that opens connections and stalls their
    /// handshakes holds bounded memory and cannot lock other clients out,
    /// as it would if new connections waited for a place. A client
    /// completing its handshake is evicted only by a flood that opens this
    /// many connections within its round trips.
    #[cfg(feature = "tls")]
    pub fn max_tls_handshakes(&mut self, handshakes: usize) -> &mut Self {
        self.config.max_tls_handshakes = handshakes;
        self
    }

    /// Checks every setting and returns the finished [`Config`].
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the first setting out of range.
    pub fn build(&self) -> Result<Config, Error> {
        let c = &self.config;
        let invalid = |setting, requirement| {
            Err(Error::Config(ConfigError {
                setting,
                requirement,
            }))
        };
        const MAX_BUFFER: usize = 16 * KIB * KIB;
        if !(1..=MAX_BUFFER).contains(&c.write_buffer_bytes) {
            return invalid("write_buffer_bytes", "must be between 1 byte and 16 MiB");
        }
        if !(64..=MAX_BUFFER).contains(&c.max_head_bytes) {
            return invalid("max_head_bytes", "must be between 64 bytes and 16 MiB");
        }
        if c.max_request_line_bytes < 16 || c.max_request_line_bytes > c.max_head_bytes {
            return invalid(
                "max_request_line_bytes",
                "must be at least 16 bytes and at most max_head_bytes",
            );
        }
        if !(1..=10_000).contains(&c.max_headers) {
            return invalid("max_headers", "must be between 1 and 10000");
        }
        if c.head_memory_budget < 2 * c.max_head_bytes || c.head_memory_budget > 1 << 40 {
            return invalid(
                "head_memory_budget",
                "must be between twice max_head_bytes and 1 TiB",
            );
        }
        if !(1..=10_000_000).contains(&c.max_connections) {
            return invalid("max_connections", "must be between 1 and 10000000");
        }
        #[cfg(feature = "tls")]
        {
            if c.tls_handshake_timeout.is_zero() {
                return invalid("tls_handshake_timeout", "must be greater than zero");
            }
            if !(1..=100_000).contains(&c.max_tls_handshakes) {
                return invalid("max_tls_handshakes", "must be between 1 and 100000");
            }
        }
        for (setting, timeout) in [
            ("header_read_timeout", c.header_read_timeout),
            ("body_read_timeout", c.body_read_timeout),
            ("idle_timeout", c.idle_timeout),
            ("write_timeout", c.write_timeout),
        ] {
            if timeout.is_zero() {
                return invalid(setting, "must be greater than zero");
            }
        }
        Ok(c.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_build() {
        let config = Config::builder().build().unwrap();
        assert_eq!(config.write_buffer_bytes(), 8 * 1024);
        assert_eq!(config.on_fin(), OnFin::Notify);
        assert!(config.socket_watch());
    }

    #[test]
    fn out_of_range_values_name_their_setting() {
        type Setter = fn(&mut ConfigBuilder);
        let cases: [(&str, Setter); 5] = [
            ("write_buffer_bytes", |b| {
                b.write_buffer_bytes(0);
            }),
            ("max_head_bytes", |b| {
                b.max_head_bytes(10);
            }),
            ("max_request_line_bytes", |b| {
                b.max_head_bytes(1024).max_request_line_bytes(2048);
            }),
            ("max_headers", |b| {
                b.max_headers(0);
            }),
            ("write_timeout", |b| {
                b.write_timeout(Duration::ZERO);
            }),
        ];
        for (setting, set) in cases {
            let mut builder = Config::builder();
            set(&mut builder);
            match builder.build() {
                Err(Error::Config(err)) => assert_eq!(err.setting(), setting),
                other => panic!("{setting}: expected a config error, got {other:?}"),
            }
        }
    }
}
