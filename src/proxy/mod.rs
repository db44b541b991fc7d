//! The PROXY protocol (HAProxy's, versions 1 and 2): the header a load
//! balancer or TCP proxy sends before a connection's first byte, saying
//! whom it relays the connection for.
//!
//! # The protocol
//!
//! A proxy that relays TCP opens its own connection to the server, so the
//! socket's peer is the proxy, not the client. A proxy that speaks the
//! PROXY protocol starts each such connection with a header that carries
//! the client's address and the address the client connected to; the
//! client's bytes (here: the first HTTP request) follow right after it.
//! The header comes in two formats, told apart by their first byte:
//!
//! - **Version 1** is one line of ASCII text, at most 107 bytes with its
//!   CRLF: `PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n` (`TCP6` with
//!   IPv6 addresses), or `PROXY UNKNOWN` followed by anything up to the
//!   CRLF when the proxy cannot tell.
//! - **Version 2** is binary: a 12-byte signature
//!   (`\r\n\r\n\0\r\nQUIT\n`), a byte whose high nibble is the version (2)
//!   and low nibble the command (0 `LOCAL`, 1 `PROXY`), a byte whose high
//!   nibble is the address family (0 `UNSPEC`, 1 `INET`, 2 `INET6`,
//!   3 `UNIX`) and low nibble the transport (0 `UNSPEC`, 1 `STREAM`,
//!   2 `DGRAM`), and the big-endian 16-bit length of the rest. The rest
//!   holds the addresses (source, destination, then the source and
//!   destination ports: 12 bytes for `INET`, 36 for `INET6`; two 108-byte
//!   paths for `UNIX`), then optional TLVs (a type byte, a 16-bit length,
//!   the value): TLS details, the authority, a connection ID.
//!
//! What a complete header means for the connection ([`ProxyHeader`]):
//!
//! | header | [`ProxyHeader::addresses`] | the connection's addresses |
//! |---|---|---|
//! | v1 `TCP4`/`TCP6`; v2 `PROXY` over `INET`/`INET6` `STREAM` | `Some` | the client is `source`, the local address `destination` |
//! | v1 `UNKNOWN`; v2 `PROXY` with `UNSPEC`, `UNIX` or `DGRAM` | `None` | the socket's own |
//! | v2 `LOCAL` (the proxy's own health check) | `None` | the socket's own |
//!
//! A v2 `DGRAM` (UDP) or `UNIX` header is valid, just not one an HTTP
//! server over TCP has a use for; the spec asks a receiver to treat
//! combinations it does not support as `UNSPEC`, and so does this parser.
//!
//! # How strict, and how early
//!
//! [`parse`] is incremental and pure, like the request-head parser: call
//! it with everything received so far. It decides as soon as the bytes
//! allow: a first byte that is neither `P` (v1) nor CR (v2) is refused at
//! once, so a plain HTTP or TLS client on a PROXY-protocol port is refused
//! after its first read, not after a timeout; each signature byte, v1
//! field and v2 fixed byte is checked as it arrives.
//!
//! Version 1 follows the spec's grammar to the letter: fields separated by
//! exactly one space, addresses of the announced family as `std` parses
//! them (IPv4 without leading zeros), decimal ports 0–65535 without sign
//! or leading zeros, and CRLF (a bare CR or LF is refused). Version 2
//! requires version 2, a `LOCAL` or `PROXY` command, family and transport
//! values the spec defines, a length that holds the addresses, and TLVs
//! that tile the rest exactly; their contents are skipped (a CRC32C TLV is
//! not verified). A `LOCAL` header's family and contents are ignored, as
//! the spec says.
//!
//! # Limits, and why
//!
//! - A v1 line is at most 107 bytes ([`V1_MAX_BYTES`], fixed by the spec):
//!   a line with no CRLF by then is refused.
//! - A v2 header's length field allows up to 65,551 bytes. Real proxies
//!   send a few hundred at most (216 bytes of `UNIX` paths is the largest
//!   address block; TLVs add an authority, an ALPN, a unique ID of up to
//!   128 bytes, TLS details, a cloud endpoint ID), so [`Limits`] caps the
//!   whole header at `max_v2_bytes` (default 4 KiB). The cap is checked as
//!   soon as the 16 fixed bytes are in: a header announcing more is
//!   refused before its bytes are read, so a connection never buffers more
//!   than [`Limits::max_header_bytes`] waiting for one.
//!
//! # What the caller does
//!
//! 1. Expect a header only on a listener configured for it, reachable only
//!    by the trusted proxies: anyone who can connect to it can claim any
//!    address. Never guess whether a header is present (spec §5).
//! 2. Before parsing any HTTP, read into the connection's buffer under a
//!    deadline (the spec suggests at least 3 s, to cover a TCP retransmit)
//!    and call [`parse`] on the whole buffer after each read. Each call
//!    costs at most [`Limits::max_header_bytes`] of work, and within that
//!    many bytes the answer is never `Ok(None)`.
//! 3. `Ok(None)`: read again. EOF or the deadline here refuses the
//!    connection.
//! 4. `Ok(Some((header, consumed)))`: split `consumed` bytes off the
//!    buffer; the rest is the start of the first HTTP request (maybe all
//!    of it: try to parse it before reading). Take the addresses from the
//!    table above.
//! 5. `Err(error)`: close without a response (the peer is not speaking
//!    HTTP yet), at once so the proxy notices; log the socket's peer
//!    address, the phase and `error`, and count it.

mod v1;
mod v2;

use std::fmt;
use std::net::SocketAddr;

/// The longest v1 line, CRLF included: 107 bytes (fixed by the spec).
pub(crate) const V1_MAX_BYTES: usize = v1::MAX_LINE_BYTES;

/// The largest v2 header without TLVs (232 bytes: `UNIX` paths), the
/// smallest sensible [`Limits::max_v2_bytes`] (should the limit ever be
/// configurable; the server uses the default).
#[cfg(test)]
pub(crate) const V2_SMALLEST_LIMIT_BYTES: usize = v2::SMALLEST_LIMIT_BYTES;

/// Limits for [`parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// The largest v2 header accepted, in bytes: the 16 fixed bytes plus
    /// the addresses and TLVs. Default: 4 KiB. A value below 232 bytes
    /// (a v2 header with `UNIX` paths and no TLVs) refuses some headers
    /// that carry no TLVs at all; a configuration should not allow it.
    pub max_v2_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // Ten times the largest header seen from real proxies, and
            // small enough to hold for every connection that is waiting.
            max_v2_bytes: 4 * 1024,
        }
    }
}

impl Limits {
    /// The most bytes [`parse`] needs to decide: given this many, it never
    /// answers `Ok(None)`. A caller's read buffer need not grow past it
    /// before the header is decided.
    pub(crate) fn max_header_bytes(&self) -> usize {
        self.max_v2_bytes.max(V1_MAX_BYTES)
    }
}

/// Which format a header came in (for logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProxyVersion {
    /// The text line (`PROXY TCP4 ...`).
    V1,
    /// The binary format.
    V2,
}

/// What the proxy says the connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Command {
    /// The proxy opened the connection for itself (a health check): there
    /// is no client behind it, and the connection keeps its own addresses.
    /// Only version 2 has it.
    Local,
    /// The proxy relays a client's connection. Every v1 header is one.
    Proxy,
}

/// The addresses of a relayed connection, as the proxy saw them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Addresses {
    /// The client's address: what the connection's remote address would
    /// be without the proxy.
    pub source: SocketAddr,
    /// The address the client connected to (the proxy's listener): what
    /// the connection's local address would be without the proxy.
    pub destination: SocketAddr,
}

/// A complete, valid PROXY protocol header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProxyHeader {
    /// The format it came in.
    pub version: ProxyVersion,
    /// Whether it relays a client or is the proxy's own connection.
    pub command: Command,
    /// The client's and destination's addresses; `None` when the header
    /// gives none the server can use (`LOCAL`, v1 `UNKNOWN`, v2 `UNSPEC`,
    /// `UNIX` or `DGRAM`): the connection keeps the socket's own.
    pub addresses: Option<Addresses>,
}

/// Why a PROXY protocol header was refused. The connection is closed
/// without a response.
///
/// Cheap: no allocation or formatting until it is displayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProxyError {
    /// The first bytes start neither signature (`PROXY ` nor the v2
    /// binary one): the peer does not speak the PROXY protocol, as a plain
    /// HTTP or TLS client would not.
    NotProxyProtocol,
    /// The v1 line does not follow the grammar: a field missing or extra,
    /// not exactly one space between fields, a bare CR or LF.
    V1Malformed,
    /// No CRLF within the first 107 bytes of a v1 line.
    V1LineTooLong,
    /// A v1 address that is not a valid address of the announced family
    /// (`TCP4`: IPv4, `TCP6`: IPv6).
    V1BadAddress,
    /// A v1 port that is not a decimal number from 0 to 65535 without sign
    /// or leading zeros.
    V1BadPort,
    /// A v2 header whose version is not 2.
    UnsupportedVersion,
    /// A v2 command other than `LOCAL` and `PROXY`.
    UnsupportedCommand,
    /// A v1 protocol other than `TCP4`, `TCP6` and `UNKNOWN`, or a v2
    /// family or transport value the spec does not define.
    UnsupportedFamily,
    /// A v2 header longer than [`Limits::max_v2_bytes`].
    HeaderTooLarge,
    /// A v2 length too short to hold the addresses of the announced family.
    LengthMismatch,
    /// The v2 bytes after the addresses are not a sequence of whole TLVs.
    BadTlv,
}

impl ProxyError {
    /// A short, lowercase reason, for logs and counters.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            ProxyError::NotProxyProtocol => "not a proxy protocol header",
            ProxyError::V1Malformed => "malformed proxy protocol v1 line",
            ProxyError::V1LineTooLong => "proxy protocol v1 line longer than 107 bytes",
            ProxyError::V1BadAddress => "invalid address in proxy protocol v1 line",
            ProxyError::V1BadPort => "invalid port in proxy protocol v1 line",
            ProxyError::UnsupportedVersion => "unsupported proxy protocol version",
            ProxyError::UnsupportedCommand => "unsupported proxy protocol v2 command",
            ProxyError::UnsupportedFamily => "unsupported proxy protocol address family",
            ProxyError::HeaderTooLarge => "proxy protocol v2 header too large",
            ProxyError::LengthMismatch => "proxy protocol v2 length too short for its addresses",
            ProxyError::BadTlv => "malformed proxy protocol v2 tlv",
        }
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for ProxyError {}

/// Parses a PROXY protocol header (either version) from the front of
/// `buf`, everything received on the connection so far.
///
/// Returns `Ok(None)` while the bytes are a valid start of a header but
/// not a whole one, and `Ok(Some((header, consumed)))` once complete:
/// `consumed` is the header's length, and the bytes after it belong to
/// the client (the first HTTP request). Pure: the caller keeps the buffer
/// and calls again with more bytes; see the module docs for the rest of
/// its duties.
///
/// # Errors
///
/// The first thing wrong with the bytes seen, as soon as they show it
/// (more bytes never turn an error into a header, nor into another
/// error). The connection is to be closed without a response.
pub(crate) fn parse(
    buf: &[u8],
    limits: &Limits,
) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    match buf.first() {
        None => Ok(None),
        Some(&first) if first == v1::SIGNATURE[0] => v1::parse(buf),
        Some(&first) if first == v2::SIGNATURE[0] => v2::parse(buf, limits),
        Some(_) => Err(ProxyError::NotProxyProtocol),
    }
}

/// Parses with the default limits: the fuzz target's entry point (through
/// `hangup::__private`), not API. Returns the header's length, or the
/// error's reason.
#[doc(hidden)]
pub fn parse_for_fuzzing(input: &[u8]) -> Result<Option<usize>, &'static str> {
    match parse(input, &Limits::default()) {
        Ok(header) => Ok(header.map(|(_, consumed)| consumed)),
        Err(error) => Err(error.reason()),
    }
}

#[cfg(test)]
mod tests;
