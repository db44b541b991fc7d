//! Bytes on the wire for a response: the status line and fields, and chunk
//! framing (RFC 9112 §4, §7.1). Pure functions, no I/O.

use http::header::{CONNECTION, CONTENT_LENGTH, DATE, TRANSFER_ENCODING};
use http::{HeaderName, HeaderValue, StatusCode};

/// How the response body is delimited, decided when the head is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked` (HTTP/1.1 only).
    Chunked,
    /// The body ends when the connection closes (HTTP/1.0 without a length).
    CloseDelimited,
    /// No body and no length field: 1xx, 204, 304.
    None,
}

/// How the connection continues after this response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Persistence {
    /// HTTP/1.1 default: nothing to say.
    KeepAlive,
    /// An HTTP/1.0 client asked to keep the connection: confirm it.
    KeepAliveHttp10,
    /// The connection closes after this response: `Connection: close`.
    Close,
    /// `101 Switching Protocols`: the connection changes protocol after
    /// this head, `Connection: upgrade`.
    Upgrade,
}

/// What the handler's own fields say about framing and persistence,
/// learned while writing them, so that no field is looked up by hash.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct HandlerFields {
    /// A valid `Content-Length` the handler set (an invalid one is ignored:
    /// automatic framing applies).
    pub content_length: Option<u64>,
    /// `Connection: close` among the handler's fields.
    pub close: bool,
    /// The handler set its own `Date`.
    pub date: bool,
}

/// Appends the status line and the handler's fields, except the ones the
/// server manages (`Content-Length`, `Transfer-Encoding`, `Connection`),
/// in one pass; returns what those said. [`end_head`] completes the head.
pub(crate) fn start_head<'f>(
    out: &mut Vec<u8>,
    status: StatusCode,
    headers: impl Iterator<Item = (&'f HeaderName, &'f HeaderValue)>,
) -> HandlerFields {
    status_line(out, status);
    let mut fields = HandlerFields::default();
    for (name, value) in headers {
        if name == CONTENT_LENGTH {
            fields.content_length = parse_content_length(value.as_bytes());
            continue;
        }
        if name == TRANSFER_ENCODING {
            continue;
        }
        if name == CONNECTION {
            fields.close |= has_close_token(value.as_bytes());
            continue;
        }
        fields.date |= name == DATE;
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    fields
}

/// Appends `Date` (unless the handler set one), the framing field,
/// `Connection` and the blank line that ends the head.
pub(crate) fn end_head(
    out: &mut Vec<u8>,
    fields: &HandlerFields,
    framing: Framing,
    persistence: Persistence,
) {
    if !fields.date {
        out.extend_from_slice(b"date: ");
        crate::date::append_now(out);
        out.extend_from_slice(b"\r\n");
    }
    match framing {
        Framing::Length(n) => {
            out.extend_from_slice(b"content-length: ");
            append_decimal(out, n);
            out.extend_from_slice(b"\r\n");
        }
        Framing::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        Framing::CloseDelimited | Framing::None => {}
    }
    match persistence {
        Persistence::KeepAlive => {}
        Persistence::KeepAliveHttp10 => out.extend_from_slice(b"connection: keep-alive\r\n"),
        Persistence::Close => out.extend_from_slice(b"connection: close\r\n"),
        Persistence::Upgrade => out.extend_from_slice(b"connection: upgrade\r\n"),
    }
    out.extend_from_slice(b"\r\n");
}

/// A `Content-Length` value a handler set: decimal digits, optional
/// surrounding whitespace, no overflow (the request parser's rule).
pub(crate) fn parse_content_length(value: &[u8]) -> Option<u64> {
    super::syntax::parse_decimal(super::syntax::trim_ows(value))
}

/// A `Connection` value lists `close`.
fn has_close_token(value: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|token| super::syntax::trim_ows(token).eq_ignore_ascii_case(b"close"))
}

/// `HTTP/1.1 <code> <reason>\r\n`. We answer HTTP/1.0 requests with
/// HTTP/1.1 too, as RFC 9110 §6.2 asks, and frame for 1.0 clients.
fn status_line(out: &mut Vec<u8>, status: StatusCode) {
    if status == StatusCode::OK {
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        return;
    }
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends `n` in decimal without going through `fmt`.
pub(crate) fn append_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

/// A chunk-size line, `<hex>\r\n`, built on the stack.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChunkPrefix {
    bytes: [u8; 18],
    len: u8,
}

impl ChunkPrefix {
    /// The size line for a chunk of `size` bytes.
    pub(crate) fn new(size: u64) -> Self {
        let mut bytes = [0u8; 18];
        let digits = ((64 - size.leading_zeros()).div_ceil(4)).max(1) as usize;
        for (i, byte) in bytes[..digits].iter_mut().enumerate() {
            let nibble = (size >> (4 * (digits - 1 - i))) & 0xf;
            *byte = b"0123456789abcdef"[nibble as usize];
        }
        bytes[digits] = b'\r';
        bytes[digits + 1] = b'\n';
        ChunkPrefix {
            bytes,
            len: (digits + 2) as u8,
        }
    }

    /// The bytes to send.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// Ends a chunk's data.
pub(crate) const CHUNK_END: &[u8] = b"\r\n";
/// The last chunk with an empty trailer section.
pub(crate) const LAST_CHUNK: &[u8] = b"0\r\n\r\n";
/// Ends the current chunk and the body at once.
pub(crate) const CHUNK_END_AND_LAST_CHUNK: &[u8] = b"\r\n0\r\n\r\n";

/// The last chunk with a trailer section (RFC 9112 §7.1.2), after the
/// CRLF that ends a chunk's data when `after_data`. Fields that frame or
/// route a message are left out (RFC 9110 §6.5.1).
pub(crate) fn last_chunk_with_trailers(after_data: bool, trailers: &http::HeaderMap) -> Vec<u8> {
    use http::header::{HOST, TE, TRAILER};
    let mut out = Vec::with_capacity(64);
    if after_data {
        out.extend_from_slice(CHUNK_END);
    }
    out.extend_from_slice(b"0\r\n");
    for (name, value) in trailers {
        let forbidden = [
            CONTENT_LENGTH,
            TRANSFER_ENCODING,
            CONNECTION,
            TE,
            TRAILER,
            HOST,
        ];
        if forbidden.contains(name) {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn chunk_prefixes_are_lowercase_hex() {
        for (size, text) in [
            (0, "0\r\n"),
            (1, "1\r\n"),
            (15, "f\r\n"),
            (16, "10\r\n"),
            (8192, "2000\r\n"),
            (u64::MAX, "ffffffffffffffff\r\n"),
        ] {
            assert_eq!(ChunkPrefix::new(size).as_bytes(), text.as_bytes());
        }
    }

    #[test]
    fn decimal() {
        for n in [0, 7, 10, 8061, u64::MAX] {
            let mut out = Vec::new();
            append_decimal(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }

    #[test]
    fn trailers_follow_the_last_chunk_without_framing_fields() {
        let mut trailers = http::HeaderMap::new();
        trailers.insert("x-checksum", HeaderValue::from_static("abc"));
        trailers.insert("content-length", HeaderValue::from_static("9"));
        assert_eq!(
            last_chunk_with_trailers(true, &trailers),
            b"\r\n0\r\nx-checksum: abc\r\n\r\n"
        );
        assert_eq!(
            last_chunk_with_trailers(false, &http::HeaderMap::new()),
            LAST_CHUNK
        );
    }

    #[test]
    fn head_replaces_server_managed_fields() {
        let mut headers = http::HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("text/plain"));
        headers.insert("transfer-encoding", HeaderValue::from_static("gzip"));
        headers.insert("date", HeaderValue::from_static("x"));
        headers.insert("connection", HeaderValue::from_static("upgrade, Close"));
        headers.insert("content-length", HeaderValue::from_static(" 17 "));
        let mut out = Vec::new();
        let fields = start_head(&mut out, StatusCode::NOT_FOUND, headers.iter());
        assert_eq!(fields.content_length, Some(17));
        assert!(fields.close && fields.date);
        end_head(&mut out, &fields, Framing::Length(3), Persistence::Close);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"), "{text}");
        assert!(text.contains("content-type: text/plain\r\n"));
        assert!(text.contains("date: x\r\n"));
        assert!(!text.contains("gzip"));
        assert!(!text.contains("upgrade") && !text.contains("17"));
        assert!(
            text.ends_with("content-length: 3\r\nconnection: close\r\n\r\n"),
            "{text}"
        );
    }
}
