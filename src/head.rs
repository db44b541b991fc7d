//! Request head parsing: bytes → [`Parts`] (method, version, and where the
//! target and the fields lie) plus the framing facts the connection needs,
//! with RFC 9112's strict rules.
//!
//! httparse does the tokenising; this module adds what it leaves to the
//! caller: CRLF-only line endings (bare LF only in lenient mode, bare CR
//! never), the request-line and head size limits, `Host` rules, and the
//! `Content-Length` / `Transfer-Encoding` checks of RFC 9112 §6. The parsed
//! head keeps the read buffer's bytes and where the target and the fields
//! lie in them; the `Uri` and the `HeaderMap` built from them share those
//! bytes (a field's value is a slice, not a copy; names other than the
//! standard ones are copied by `http`), and are built only for handlers
//! that ask ([`Target`], [`Fields`]).

use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use std::fmt;
use std::ops::Range;

use http::{HeaderMap, Method, Uri, Version};

use crate::error::BadRequest;
use crate::fields::{Fields, is_admissible};
use crate::target::Target;

/// Limits and leniency for [`parse`]: the subset of `Config` it reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_request_line_bytes: usize,
    pub max_head_bytes: usize,
    pub max_headers: usize,
    pub lenient_line_endings: bool,
}

/// How the request body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyFraming {
    /// No body: neither `Content-Length` nor `Transfer-Encoding`, or a
    /// `Content-Length` of zero.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A request's head, parsed: what [`Request`](crate::Request) reads.
/// The target and the fields are places in `head`, turned into `http`
/// types when first asked for.
#[derive(Default)]
pub(crate) struct Parts {
    pub method: Method,
    pub version: Version,
    /// The head's bytes, shared with the read buffer.
    head: Bytes,
    target: Target,
    fields: Fields,
    /// Typed data added by middleware (empty from the parser).
    pub extensions: http::Extensions,
}

impl Parts {
    /// The target as a `Uri` (built on the first call).
    pub(crate) fn uri(&self) -> &Uri {
        self.target.uri(&self.head)
    }

    /// A copy of the target's `Uri` for the server's own use (the access
    /// log): unlike [`uri`](Self::uri), not taken as the handler asking.
    pub(crate) fn uri_copy(&self) -> Uri {
        self.target.uri_copy(&self.head)
    }

    /// The target's path, without building a `Uri` when it can.
    pub(crate) fn path(&self) -> &str {
        self.target.path(&self.head)
    }

    /// The fields as a map (built on the first call).
    pub(crate) fn headers(&self) -> &HeaderMap {
        self.fields.map(&self.head)
    }

    /// The same head as `http`'s type (target and map built if they were
    /// not).
    pub(crate) fn into_http(self) -> http::request::Parts {
        // `http::request::Parts` has no public constructor: start from an
        // empty request's.
        let (mut parts, ()) = http::Request::new(()).into_parts();
        parts.method = self.method;
        parts.uri = self.target.into_uri(&self.head);
        parts.version = self.version;
        parts.headers = self.fields.into_map(&self.head);
        parts.extensions = self.extensions;
        parts
    }
}

impl fmt::Debug for Parts {
    /// The head as received (target and fields as text), without building
    /// `http` types for it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lossy = |bytes| String::from_utf8_lossy(bytes);
        let fields: Vec<_> = self
            .fields
            .as_received(&self.head)
            .map(|(name, value)| (lossy(name), lossy(value)))
            .collect();
        f.debug_struct("Parts")
            .field("method", &self.method)
            .field("target", &self.target.as_received(&self.head))
            .field("version", &self.version)
            .field("fields", &fields)
            .field("extensions", &self.extensions)
            .finish()
    }
}

/// Where `part`, a slice of `head`, lies in it. A place is two `u32`s: a
/// head is at most 16 MiB (`Config` refuses more), so it always fits.
pub(crate) fn place(head: &[u8], part: &[u8]) -> Result<Range<u32>, BadRequest> {
    let start = part.as_ptr().addr().wrapping_sub(head.as_ptr().addr());
    debug_assert!(
        start
            .checked_add(part.len())
            .is_some_and(|end| end <= head.len()),
        "not a slice of the head"
    );
    let start = u32::try_from(start).map_err(|_| BadRequest::HeadTooLarge)?;
    let len = u32::try_from(part.len()).map_err(|_| BadRequest::HeadTooLarge)?;
    let end = start.checked_add(len).ok_or(BadRequest::HeadTooLarge)?;
    Ok(start..end)
}

/// A place as indices into the head.
pub(crate) fn usize_range(place: &Range<u32>) -> Range<usize> {
    place.start as usize..place.end as usize
}

/// A parsed request head and what it says about the connection.
#[derive(Debug)]
pub(crate) struct Head {
    /// Boxed: the head moves from the parser through the connection into
    /// the handler's future; a pointer moves for free, a few hundred bytes
    /// do not.
    pub parts: Box<Parts>,
    pub framing: BodyFraming,
    /// The client allows another request on this connection afterwards.
    pub keep_alive: bool,
    /// `Expect: 100-continue` on an HTTP/1.1 request.
    pub expect_continue: bool,
}

/// Header fields parsed without heap allocation up to this many; a
/// `max_headers` above it costs one allocation per request.
const STACK_HEADERS: usize = 128;

/// How far the search for the end of the current head has got. The
/// connection keeps one across reads, so a head that arrives in many small
/// pieces is scanned once in total, not once per piece (which a client
/// could otherwise make quadratic), and a head found early (to decide on
/// pipelining) is not searched for again.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Scan {
    /// Bytes already searched without finding the end.
    scanned: usize,
    /// Where the request line's LF is, once seen.
    request_line_end: Option<usize>,
    /// Where the head ends, once found.
    end: Option<usize>,
}

/// Parses one request head from the front of `buf`, continuing the search
/// recorded in `scan` (which is reset when a head is returned).
///
/// Returns `Ok(None)` while the head is incomplete and within its limits,
/// leaving `buf` untouched (except that empty lines before the request
/// line are discarded, as RFC 9112 §2.2 allows). On success the head's bytes
/// are split off `buf`, which then starts at the body or the next request.
///
/// # Errors
///
/// The [`BadRequest`] kind the request is answered with. `buf` is left in an
/// unspecified state: the connection is closing.
pub(crate) fn parse(
    buf: &mut BytesMut,
    limits: &Limits,
    scan: &mut Scan,
    spare: &mut Option<Box<Parts>>,
) -> Result<Option<Head>, BadRequest> {
    let Some(head_len) = find_end(buf, limits, scan)? else {
        return Ok(None);
    };
    *scan = Scan::default();
    let bytes = buf.split_to(head_len).freeze();
    if limits.max_headers <= STACK_HEADERS {
        let mut headers = [MaybeUninit::<httparse::Header<'_>>::uninit(); STACK_HEADERS];
        parse_complete(&bytes, &mut headers[..limits.max_headers], spare.take())
    } else {
        let mut headers = vec![MaybeUninit::<httparse::Header<'_>>::uninit(); limits.max_headers];
        parse_complete(&bytes, &mut headers, spare.take())
    }
    .map(Some)
}

/// Finds the end of the head at the front of `buf`: the length including
/// its blank line, or `None` while it has not arrived. One pass over the
/// LFs also enforces what can be judged early: every LF follows a CR
/// (unless lenient; RFC 9112 §2.2), and the request line and the head stay
/// within their limits, so an endless line is answered at the limit, not
/// at the timeout. A bare CR is left to httparse, which rejects it (a CR
/// must be followed by LF in every part of a head).
pub(crate) fn find_end(
    buf: &mut BytesMut,
    limits: &Limits,
    scan: &mut Scan,
) -> Result<Option<usize>, BadRequest> {
    if let Some(end) = scan.end {
        return Ok(Some(end));
    }
    let lenient = limits.lenient_line_endings;
    if scan.request_line_end.is_none() && skip_leading_empty_lines(buf, lenient) {
        // What was scanned has moved: start over (it was only empty lines
        // and the start of the request line).
        scan.scanned = 0;
    }
    // Step back two bytes: an LF there may now be followed by the rest of
    // a blank line.
    let from = scan.scanned.saturating_sub(2);
    for lf in memchr::memchr_iter(b'\n', &buf[from..]).map(|at| from + at) {
        if !lenient && (lf == 0 || buf[lf - 1] != b'\r') {
            return Err(BadRequest::BareLineFeed);
        }
        if *scan.request_line_end.get_or_insert(lf) > limits.max_request_line_bytes {
            return Err(BadRequest::RequestLineTooLong);
        }
        let end = match buf.get(lf + 1..) {
            Some([b'\n', ..]) if lenient => lf + 2,
            Some([b'\n', ..]) => return Err(BadRequest::BareLineFeed),
            Some([b'\r', b'\n', ..]) => lf + 3,
            _ => continue,
        };
        if end > limits.max_head_bytes {
            return Err(BadRequest::HeadTooLarge);
        }
        scan.end = Some(end);
        return Ok(Some(end));
    }
    scan.scanned = buf.len();
    if scan.request_line_end.is_none() && buf.len() > limits.max_request_line_bytes {
        return Err(BadRequest::RequestLineTooLong);
    }
    if buf.len() >= limits.max_head_bytes {
        return Err(BadRequest::HeadTooLarge);
    }
    Ok(None)
}

/// Drops the CRLFs (or, leniently, LFs) a client may send before a request
/// line, e.g. after a body it miscounted (RFC 9112 §2.2).
/// Returns whether anything was dropped.
fn skip_leading_empty_lines(buf: &mut BytesMut, lenient: bool) -> bool {
    let mut skip = 0;
    loop {
        match &buf[skip..] {
            [b'\r', b'\n', ..] => skip += 2,
            [b'\n', ..] if lenient => skip += 1,
            _ => break,
        }
    }
    if skip > 0 {
        let _ = buf.split_to(skip);
    }
    skip > 0
}

/// Every LF must follow a CR (unless lenient) and every CR must precede an
/// LF (always): RFC 9112 §2.2. A bare CR could otherwise be read as a line
/// break by one peer and as data by another (request smuggling).
pub(crate) fn check_line_endings(head: &[u8], lenient: bool) -> Result<(), BadRequest> {
    for i in memchr::memchr2_iter(b'\r', b'\n', head) {
        if head[i] == b'\r' {
            if head.get(i + 1) != Some(&b'\n') {
                return Err(BadRequest::BareCarriageReturn);
            }
        } else if !lenient && (i == 0 || head[i - 1] != b'\r') {
            return Err(BadRequest::BareLineFeed);
        }
    }
    Ok(())
}

/// Parses a complete head into `spare` (an earlier request's parts,
/// emptied by [`recycle`]) or, without one, into new parts.
fn parse_complete<'b>(
    bytes: &'b Bytes,
    headers: &mut [MaybeUninit<httparse::Header<'b>>],
    spare: Option<Box<Parts>>,
) -> Result<Head, BadRequest> {
    let mut req = httparse::Request::new(&mut []);
    match req.parse_with_uninit_headers(bytes, headers) {
        Ok(httparse::Status::Complete(_)) => {}
        // The blank line is in `bytes`, so a partial parse means httparse
        // disagreed about where a line ended: a malformed field.
        Ok(httparse::Status::Partial) => return Err(BadRequest::InvalidHeader),
        Err(_) if has_bare_cr(bytes) => return Err(BadRequest::BareCarriageReturn),
        Err(err) => return Err(classify_httparse_error(err, bytes)),
    }
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(BadRequest::InvalidRequestLine);
    };
    let method =
        Method::from_bytes(method.as_bytes()).map_err(|_| BadRequest::InvalidRequestLine)?;
    let version = if minor == 1 {
        Version::HTTP_11
    } else {
        Version::HTTP_10
    };

    // Recycled parts were emptied by `recycle`.
    let mut parts = spare.unwrap_or_default();
    parts
        .target
        .parse(bytes, place(bytes, target.as_bytes())?)
        .map_err(|_| match target.len() {
            // Within `max_request_line_bytes` (it may exceed 64 KiB), but
            // longer than a `Uri` can be: 414 all the same.
            len if len > crate::target::MAX_LEN => BadRequest::RequestLineTooLong,
            _ => BadRequest::InvalidTarget,
        })?;
    let mut facts = FieldFacts::default();
    for field in req.headers.iter() {
        // What `http` asks of a field, checked now: the map may be built
        // later, when refusing is no longer possible (see `fields`).
        let name = field.name.as_bytes();
        if !is_admissible(name, field.value) {
            return Err(BadRequest::InvalidHeader);
        }
        facts.observe(name, field.value);
        parts
            .fields
            .push(place(bytes, name)?, place(bytes, field.value)?);
    }
    parts.fields.finish(bytes);

    let framing = facts.body_framing(version)?;
    facts.check_host(version)?;
    let keep_alive = facts.keep_alive(version);
    let expect_continue = version == Version::HTTP_11 && facts.expect_continue;

    parts.method = method;
    parts.version = version;
    parts.head = bytes.clone();
    Ok(Head {
        parts,
        framing,
        keep_alive,
        expect_continue,
    })
}

/// Header fields a recycled request head keeps room for: more than most
/// clients send (browsers send 10 to 20), so a head with many does not pin
/// its memory to the connection.
const RECYCLE_MAX_FIELDS: usize = 32;

/// Empties a finished request's head for the next request on the
/// connection, keeping its allocations (the box, the field list and the
/// header map's tables): `None` when its field list grew too large to
/// keep. What its handler asked for (see `demand`) carries over. Nothing of the old
/// request stays referenced (its fields share the read buffer's memory).
pub(crate) fn recycle(mut parts: Box<Parts>) -> Option<Box<Parts>> {
    if parts.fields.capacity() > RECYCLE_MAX_FIELDS {
        return None;
    }
    parts.fields.clear();
    parts.extensions.clear();
    parts.target.clear();
    parts.head = Bytes::new();
    parts.method = Method::GET;
    Some(parts)
}

/// A CR not followed by LF: what made httparse fail, named precisely.
/// Only called on the error path.
fn has_bare_cr(head: &[u8]) -> bool {
    memchr::memchr_iter(b'\r', head).any(|cr| head.get(cr + 1) != Some(&b'\n'))
}

/// httparse says which token was wrong; the request line's version decides
/// between "malformed" (400) and "a version we do not speak" (505).
fn classify_httparse_error(err: httparse::Error, head: &[u8]) -> BadRequest {
    match err {
        httparse::Error::Version if has_http_version_syntax(head) => BadRequest::UnsupportedVersion,
        httparse::Error::Version | httparse::Error::Token | httparse::Error::Status => {
            BadRequest::InvalidRequestLine
        }
        httparse::Error::TooManyHeaders => BadRequest::TooManyHeaders,
        httparse::Error::NewLine => BadRequest::InvalidRequestLine,
        _ => BadRequest::InvalidHeader,
    }
}

/// True when the request line ends in `HTTP/<digits>[.<digits>]`: a real
/// version, just not 1.0 or 1.1 (so 505, not 400).
fn has_http_version_syntax(head: &[u8]) -> bool {
    let line_end = memchr::memchr(b'\n', head).unwrap_or(head.len());
    let line = head[..line_end]
        .strip_suffix(b"\r")
        .unwrap_or(&head[..line_end]);
    let Some(space) = memchr::memrchr(b' ', line) else {
        return false;
    };
    let Some(number) = line[space + 1..].strip_prefix(b"HTTP/") else {
        return false;
    };
    let (major, minor) = match memchr::memchr(b'.', number) {
        Some(dot) => (&number[..dot], Some(&number[dot + 1..])),
        None => (number, None),
    };
    let all_digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    all_digits(major) && minor.is_none_or(all_digits)
}

/// What the fields that shape framing and persistence said, gathered in
/// the parser's one pass over the fields (no `HeaderMap` is built for
/// them). Field order does not matter; repeated fields combine as
/// RFC 9110's list rules say.
#[derive(Debug, Default)]
struct FieldFacts {
    hosts: u32,
    content_length: Option<u64>,
    /// The first `Content-Length` problem seen (invalid beats conflicting
    /// only by arriving first; both are 400).
    content_length_error: Option<BadRequest>,
    has_transfer_encoding: bool,
    /// `chunked` was the last coding seen so far.
    last_coding_chunked: bool,
    /// A coding followed `chunked`.
    coding_after_chunked: bool,
    /// A coding other than `chunked` appeared.
    other_coding: bool,
    close: bool,
    keep_alive: bool,
    expect_continue: bool,
}

impl FieldFacts {
    /// Takes note of one field (`name` as received, any case).
    fn observe(&mut self, name: &[u8], value: &[u8]) {
        // Compares lengths first: most fields are none of these five.
        let is = |known: &[u8]| name.eq_ignore_ascii_case(known);
        if is(b"host") {
            self.hosts += 1;
        } else if is(b"content-length") {
            self.observe_content_length(value);
        } else if is(b"transfer-encoding") {
            self.has_transfer_encoding = true;
            for coding in value
                .split(|&b| b == b',')
                .map(trim_ows)
                .filter(|c| !c.is_empty())
            {
                if self.last_coding_chunked {
                    self.coding_after_chunked = true;
                }
                self.last_coding_chunked = coding.eq_ignore_ascii_case(b"chunked");
                self.other_coding |= !self.last_coding_chunked;
            }
        } else if is(b"connection") {
            for option in value.split(|&b| b == b',').map(trim_ows) {
                self.close |= option.eq_ignore_ascii_case(b"close");
                self.keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if is(b"expect") {
            self.expect_continue |= value.eq_ignore_ascii_case(b"100-continue");
        }
    }

    /// All `Content-Length` values, comma lists included, must be the same
    /// decimal number (RFC 9110 §8.6 lets a recipient accept identical
    /// repeats).
    fn observe_content_length(&mut self, value: &[u8]) {
        for element in value.split(|&b| b == b',') {
            let Some(n) = parse_decimal(trim_ows(element)) else {
                self.content_length_error
                    .get_or_insert(BadRequest::InvalidContentLength);
                continue;
            };
            match self.content_length {
                Some(previous) if previous != n => {
                    self.content_length_error
                        .get_or_insert(BadRequest::ConflictingContentLength);
                }
                _ => self.content_length = Some(n),
            }
        }
    }

    /// RFC 9112 §6.3, in the order it gives. The codings must end in exactly
    /// one `chunked` (else 400), and `chunked` must be the only coding: we
    /// do not decode gzip or deflate transfer codings (501, RFC 9112 §6.1).
    fn body_framing(&self, version: Version) -> Result<BodyFraming, BadRequest> {
        if let Some(error) = self.content_length_error {
            return Err(error);
        }
        if self.has_transfer_encoding {
            if self.content_length.is_some() {
                return Err(BadRequest::ContentLengthWithTransferEncoding);
            }
            if version == Version::HTTP_10 {
                return Err(BadRequest::TransferEncodingInHttp10);
            }
            if self.coding_after_chunked || !self.last_coding_chunked {
                return Err(BadRequest::ChunkedNotFinal);
            }
            if self.other_coding {
                return Err(BadRequest::UnsupportedTransferCoding);
            }
            return Ok(BodyFraming::Chunked);
        }
        Ok(match self.content_length {
            None | Some(0) => BodyFraming::Empty,
            Some(n) => BodyFraming::Length(n),
        })
    }

    /// RFC 9112 §3.2: an HTTP/1.1 request has exactly one `Host`; an
    /// HTTP/1.0 request at most one.
    fn check_host(&self, version: Version) -> Result<(), BadRequest> {
        match self.hosts {
            0 if version == Version::HTTP_11 => Err(BadRequest::MissingHost),
            0 | 1 => Ok(()),
            _ => Err(BadRequest::DuplicateHost),
        }
    }

    /// HTTP/1.1 keeps the connection unless `Connection: close`; HTTP/1.0
    /// closes it unless `Connection: keep-alive` (RFC 9112 §9.3).
    fn keep_alive(&self, version: Version) -> bool {
        !self.close && (version == Version::HTTP_11 || self.keep_alive)
    }
}

/// A non-empty run of decimal digits that fits in 64 bits.
pub(crate) fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        if !d.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// Strips optional whitespace (SP / HTAB) from both ends.
pub(crate) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_request_line_bytes: 8 * 1024,
        max_head_bytes: 64 * 1024,
        max_headers: 100,
        lenient_line_endings: false,
    };

    fn parse_all(input: &[u8]) -> Result<Option<Head>, BadRequest> {
        parse(
            &mut BytesMut::from(input),
            &LIMITS,
            &mut Scan::default(),
            &mut None,
        )
    }

    fn rejected(input: &[u8]) -> BadRequest {
        match parse_all(input) {
            Err(bad) => bad,
            Ok(head) => panic!("accepted {:?}: {head:?}", String::from_utf8_lossy(input)),
        }
    }

    #[test]
    fn a_recycled_head_is_emptied_and_reused_unless_it_grew_large() {
        let small = parse_all(b"GET /a HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\r\n")
            .unwrap()
            .unwrap();
        let mut spare = recycle(small.parts);
        let kept = spare.as_ref().expect("a small head is kept");
        assert!(kept.fields.capacity() >= 2);
        assert!(kept.head.is_empty(), "the old head is not kept alive");
        let mut buf =
            BytesMut::from(&b"POST /b HTTP/1.1\r\nHost: y\r\nContent-Length: 0\r\n\r\n"[..]);
        let next = parse(&mut buf, &LIMITS, &mut Scan::default(), &mut spare)
            .unwrap()
            .unwrap();
        assert!(spare.is_none(), "the spare head was used");
        assert_eq!(
            (&next.parts.method, next.parts.uri()),
            (&Method::POST, &"/b".parse::<Uri>().unwrap())
        );
        let names: Vec<_> = next.parts.headers().keys().map(|n| n.as_str()).collect();
        assert_eq!(names, ["host", "content-length"]);

        let mut large = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
        for i in 0..40 {
            large.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
        }
        large.extend_from_slice(b"\r\n");
        let large = parse_all(&large).unwrap().unwrap();
        assert!(
            recycle(large.parts).is_none(),
            "a head with 41 fields is not kept"
        );
    }

    /// Parses `input` into `spare` (recycled parts, or none).
    fn parse_into(input: &[u8], spare: &mut Option<Box<Parts>>) -> Head {
        parse(
            &mut BytesMut::from(input),
            &LIMITS,
            &mut Scan::default(),
            spare,
        )
        .unwrap()
        .unwrap()
    }

    #[test]
    fn a_recycled_head_builds_what_its_last_handler_asked_for_while_parsing() {
        let first = parse_into(b"GET /a?1 HTTP/1.1\r\nHost: x\r\n\r\n", &mut None);
        assert!(!first.parts.target.is_built() && !first.parts.fields.is_built());
        let _ = (first.parts.uri(), first.parts.headers());
        let mut spare = recycle(first.parts);
        let second = parse_into(b"GET /b?2 HTTP/1.1\r\nHost: y\r\n\r\n", &mut spare);
        assert!(second.parts.target.is_built() && second.parts.fields.is_built());
        assert_eq!(
            (
                second.parts.uri(),
                second.parts.path(),
                second.parts.headers()["host"].as_bytes()
            ),
            (&"/b?2".parse::<Uri>().unwrap(), "/b", &b"y"[..])
        );
        // A head whose handler asked for the path alone: the `Uri` stays
        // built while parsing for a while, and so does the map.
        let mut spare = recycle(second.parts);
        let third = parse_into(b"GET /c HTTP/1.1\r\nHost: z\r\n\r\n", &mut spare);
        assert!(third.parts.target.is_built() && third.parts.fields.is_built());
        assert_eq!(
            (third.parts.path(), third.parts.headers()["host"].as_bytes()),
            ("/c", &b"z"[..])
        );
    }

    #[test]
    fn parses_a_simple_get_and_leaves_the_rest() {
        let mut buf = BytesMut::from(&b"GET /a?b HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\r\nNEXT"[..]);
        let head = parse(&mut buf, &LIMITS, &mut Scan::default(), &mut None)
            .unwrap()
            .unwrap();
        let shown = format!("{:?}", head.parts);
        assert!(
            shown.contains(r#"target: "/a?b""#) && shown.contains(r#"("X-A", "1")"#),
            "{shown}"
        );
        assert_eq!(head.parts.method, Method::GET);
        assert_eq!(*head.parts.uri(), "/a?b");
        assert_eq!(head.parts.version, Version::HTTP_11);
        assert_eq!(head.parts.headers()["x-a"], "1");
        assert_eq!(head.framing, BodyFraming::Empty);
        assert!(head.keep_alive);
        assert_eq!(&buf[..], b"NEXT");
    }

    #[test]
    fn every_split_point_is_incomplete_then_complete() {
        let input = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc";
        let head_len = input.len() - 3;
        for split in 0..head_len {
            let mut buf = BytesMut::from(&input[..split]);
            assert!(
                parse(&mut buf, &LIMITS, &mut Scan::default(), &mut None)
                    .unwrap()
                    .is_none(),
                "split {split}"
            );
            buf.extend_from_slice(&input[split..]);
            let head = parse(&mut buf, &LIMITS, &mut Scan::default(), &mut None)
                .unwrap()
                .unwrap();
            assert_eq!(head.framing, BodyFraming::Length(3), "split {split}");
            assert_eq!(&buf[..], b"abc", "split {split}");
        }
    }

    #[test]
    fn a_scan_kept_across_reads_matches_a_fresh_parse() {
        let input = b"\r\nPOST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc";
        let mut buf = BytesMut::new();
        let mut scan = Scan::default();
        let mut parsed = None;
        for &byte in input.iter() {
            buf.extend_from_slice(&[byte]);
            if parsed.is_none() {
                parsed = parse(&mut buf, &LIMITS, &mut scan, &mut None).unwrap();
            }
        }
        let head = parsed.expect("the head completes");
        assert_eq!(head.framing, BodyFraming::Length(3));
        assert_eq!(&buf[..], b"abc");
    }

    #[test]
    fn a_kept_scan_does_not_rescan_what_it_has_seen() {
        // One byte at a time: each call looks at the new byte (and two
        // before it), so the whole line costs linear work and is answered
        // at the limit.
        let mut buf = BytesMut::from(&b"GET /"[..]);
        let mut scan = Scan::default();
        let mut calls = 0;
        let err = loop {
            calls += 1;
            match parse(&mut buf, &LIMITS, &mut scan, &mut None) {
                Ok(None) => buf.extend_from_slice(b"a"),
                Ok(Some(_)) => panic!("no head was sent"),
                Err(err) => break err,
            }
        };
        assert_eq!(err, BadRequest::RequestLineTooLong);
        assert_eq!(scan.scanned, LIMITS.max_request_line_bytes + 1);
        assert!(calls > LIMITS.max_request_line_bytes - 10);
    }

    #[test]
    fn obs_text_field_values_are_kept_byte_for_byte() {
        let head = parse_all(
            b"GET / HTTP/1.1\r\nHost: x\r\nX-Latin: \xff\xfe\r\nX-Utf8: caf\xc3\xa9\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(head.parts.headers()["x-latin"].as_bytes(), b"\xff\xfe");
        assert_eq!(head.parts.headers()["x-utf8"].as_bytes(), "café".as_bytes());
    }

    #[test]
    fn a_lone_cr_before_the_request_line_does_not_shorten_the_line_limit() {
        // Regression: `\r` in one read, then `\n` and a long request line:
        // the empty line was taken as the request line, so the long line
        // escaped the 414 limit.
        let small = Limits {
            max_request_line_bytes: 32,
            ..LIMITS
        };
        let mut buf = BytesMut::from(&b"\r"[..]);
        let mut scan = Scan::default();
        assert!(
            parse(&mut buf, &small, &mut scan, &mut None)
                .unwrap()
                .is_none()
        );
        buf.extend_from_slice(
            format!("\nGET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(64)).as_bytes(),
        );
        assert_eq!(
            parse(&mut buf, &small, &mut scan, &mut None).unwrap_err(),
            BadRequest::RequestLineTooLong
        );
    }

    #[test]
    fn leading_empty_lines_are_skipped() {
        let head = parse_all(b"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(*head.parts.uri(), "/");
    }

    #[test]
    fn line_endings_are_strict_unless_lenient() {
        assert_eq!(
            rejected(b"GET / HTTP/1.1\nHost: x\n\n"),
            BadRequest::BareLineFeed
        );
        assert_eq!(
            rejected(b"GET / HTTP/1.1\r\nHost: x\n\r\n"),
            BadRequest::BareLineFeed
        );
        assert_eq!(
            rejected(b"GET / HTTP/1.1\r\nHost: x\ry\r\n\r\n"),
            BadRequest::BareCarriageReturn
        );
        let lenient = Limits {
            lenient_line_endings: true,
            ..LIMITS
        };
        let head = parse(
            &mut BytesMut::from(&b"GET / HTTP/1.1\nHost: x\n\n"[..]),
            &lenient,
            &mut Scan::default(),
            &mut None,
        );
        assert!(head.unwrap().is_some());
        let bare_cr = parse(
            &mut BytesMut::from(&b"GET / HTTP/1.1\r\nHost: x\ry\n\n"[..]),
            &lenient,
            &mut Scan::default(),
            &mut None,
        );
        assert_eq!(bare_cr.unwrap_err(), BadRequest::BareCarriageReturn);
    }

    #[test]
    fn malformed_fields_are_rejected() {
        assert_eq!(
            rejected(b"GET / HTTP/1.1\r\nHost : x\r\n\r\n"),
            BadRequest::InvalidHeader
        );
        assert_eq!(
            rejected(b"GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n c\r\n\r\n"),
            BadRequest::InvalidHeader
        );
        assert_eq!(
            rejected(b"GET / HTTP/1.1\r\nHost: x\r\n: b\r\n\r\n"),
            BadRequest::InvalidHeader
        );
        assert_eq!(
            rejected(b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n"),
            BadRequest::InvalidRequestLine
        );
        assert_eq!(
            rejected(b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n"),
            BadRequest::InvalidRequestLine
        );
    }

    #[test]
    fn versions_other_than_1_0_and_1_1() {
        assert_eq!(
            rejected(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n"),
            BadRequest::UnsupportedVersion
        );
        assert_eq!(
            rejected(b"GET / HTTP/1.2\r\nHost: x\r\n\r\n"),
            BadRequest::UnsupportedVersion
        );
        assert_eq!(
            rejected(b"GET / HTTP/3\r\nHost: x\r\n\r\n"),
            BadRequest::UnsupportedVersion
        );
        assert_eq!(
            rejected(b"GET / HTTX/1.1\r\nHost: x\r\n\r\n"),
            BadRequest::InvalidRequestLine
        );
        let head = parse_all(b"GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert_eq!(head.parts.version, Version::HTTP_10);
        assert!(!head.keep_alive);
    }

    #[test]
    fn host_rules() {
        assert_eq!(rejected(b"GET / HTTP/1.1\r\n\r\n"), BadRequest::MissingHost);
        assert_eq!(
            rejected(b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"),
            BadRequest::DuplicateHost
        );
        assert_eq!(
            rejected(b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"),
            BadRequest::DuplicateHost
        );
    }

    #[test]
    fn content_length_rules() {
        let ok = |h: &[u8]| {
            let mut req = b"POST / HTTP/1.1\r\nHost: x\r\n".to_vec();
            req.extend_from_slice(h);
            req.extend_from_slice(b"\r\n");
            parse_all(&req)
        };
        assert_eq!(
            ok(b"Content-Length: 5\r\n").unwrap().unwrap().framing,
            BodyFraming::Length(5)
        );
        assert_eq!(
            ok(b"Content-Length: 5\r\nContent-Length: 5\r\n")
                .unwrap()
                .unwrap()
                .framing,
            BodyFraming::Length(5)
        );
        assert_eq!(
            ok(b"Content-Length: 5, 5\r\n").unwrap().unwrap().framing,
            BodyFraming::Length(5)
        );
        assert_eq!(
            ok(b"Content-Length: 0\r\n").unwrap().unwrap().framing,
            BodyFraming::Empty
        );
        assert_eq!(
            ok(b"Content-Length: 5\r\nContent-Length: 6\r\n").unwrap_err(),
            BadRequest::ConflictingContentLength
        );
        for bad in [
            &b"-1"[..],
            b"+5",
            b"0x5",
            b"",
            b"5 5",
            b"18446744073709551616",
        ] {
            let mut field = b"Content-Length: ".to_vec();
            field.extend_from_slice(bad);
            field.extend_from_slice(b"\r\n");
            assert_eq!(
                ok(&field).unwrap_err(),
                BadRequest::InvalidContentLength,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn transfer_encoding_rules() {
        let te = |version: &str, fields: &str| {
            parse_all(format!("POST / {version}\r\nHost: x\r\n{fields}\r\n").as_bytes())
        };
        assert_eq!(
            te("HTTP/1.1", "Transfer-Encoding: chunked\r\n")
                .unwrap()
                .unwrap()
                .framing,
            BodyFraming::Chunked
        );
        assert_eq!(
            te("HTTP/1.1", "Transfer-Encoding: CHUNKED\r\n")
                .unwrap()
                .unwrap()
                .framing,
            BodyFraming::Chunked
        );
        assert_eq!(
            te("HTTP/1.1", "Transfer-Encoding: gzip\r\n").unwrap_err(),
            BadRequest::ChunkedNotFinal
        );
        assert_eq!(
            te("HTTP/1.1", "Transfer-Encoding: chunked, gzip\r\n").unwrap_err(),
            BadRequest::ChunkedNotFinal
        );
        assert_eq!(
            te(
                "HTTP/1.1",
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"
            )
            .unwrap_err(),
            BadRequest::ChunkedNotFinal
        );
        assert_eq!(
            te("HTTP/1.1", "Transfer-Encoding: gzip, chunked\r\n").unwrap_err(),
            BadRequest::UnsupportedTransferCoding
        );
        assert_eq!(
            te(
                "HTTP/1.1",
                "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n"
            )
            .unwrap_err(),
            BadRequest::ContentLengthWithTransferEncoding
        );
        assert_eq!(
            te("HTTP/1.0", "Transfer-Encoding: chunked\r\n").unwrap_err(),
            BadRequest::TransferEncodingInHttp10
        );
    }

    #[test]
    fn connection_and_expect() {
        let head = parse_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: foo, Close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!head.keep_alive);
        let head = parse_all(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(head.keep_alive);
        let head = parse_all(
            b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert!(head.expect_continue);
    }

    #[test]
    fn framing_fields_are_recognised_in_any_case() {
        let head = parse_all(
            b"POST / HTTP/1.1\r\nhost: x\r\nCONTENT-LENGTH: 5\r\nCONNECTION: CLOSE\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(head.framing, BodyFraming::Length(5));
        assert!(!head.keep_alive);
        let head = parse_all(
            b"POST / HTTP/1.1\r\nHOST: x\r\ntRaNsFeR-eNcOdInG: chunked\r\nexpect: 100-continue\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(head.framing, BodyFraming::Chunked);
        assert!(head.expect_continue);
        assert_eq!(
            rejected(b"POST / HTTP/1.1\r\nhost: x\r\ntRaNsFeR-eNcOdInG: chunked\r\ncontent-length: 1\r\n\r\n"),
            BadRequest::ContentLengthWithTransferEncoding
        );
        assert_eq!(
            rejected(b"GET / HTTP/1.1\r\nhost: x\r\nHOST: y\r\n\r\n"),
            BadRequest::DuplicateHost
        );
    }

    #[test]
    fn a_target_longer_than_a_uri_can_be_is_too_long_whatever_the_limit() {
        let limits = Limits {
            max_request_line_bytes: 128 * 1024,
            max_head_bytes: 256 * 1024,
            ..LIMITS
        };
        let head = |target_len: usize| {
            let target = format!("/{}", "a".repeat(target_len - 1));
            BytesMut::from(format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        };
        let longest = parse(&mut head(65_534), &limits, &mut Scan::default(), &mut None)
            .unwrap()
            .unwrap();
        assert_eq!(longest.parts.uri().path().len(), 65_534);
        assert_eq!(
            parse(&mut head(65_535), &limits, &mut Scan::default(), &mut None).unwrap_err(),
            BadRequest::RequestLineTooLong
        );
    }

    #[test]
    fn a_field_name_longer_than_http_allows_is_refused() {
        let limits = Limits {
            max_head_bytes: 256 * 1024,
            ..LIMITS
        };
        let head = |name_len: usize| {
            let mut head = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
            head.resize(head.len() + name_len, b'n');
            head.extend_from_slice(b": v\r\n\r\n");
            BytesMut::from(&head[..])
        };
        let longest = parse(
            &mut head(u16::MAX as usize),
            &limits,
            &mut Scan::default(),
            &mut None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(longest.parts.headers().len(), 2, "the longest name is kept");
        assert_eq!(
            parse(
                &mut head(u16::MAX as usize + 1),
                &limits,
                &mut Scan::default(),
                &mut None
            )
            .unwrap_err(),
            BadRequest::InvalidHeader
        );
    }

    #[test]
    fn limits_are_enforced_before_and_after_the_head_completes() {
        let small = Limits {
            max_request_line_bytes: 32,
            max_head_bytes: 128,
            max_headers: 2,
            lenient_line_endings: false,
        };
        let long_line = format!("GET /{} HTTP/1.1", "a".repeat(40));
        assert_eq!(
            parse(
                &mut BytesMut::from(long_line.as_bytes()),
                &small,
                &mut Scan::default(),
                &mut None,
            )
            .unwrap_err(),
            BadRequest::RequestLineTooLong
        );
        let complete = format!("{long_line}\r\nHost: x\r\n\r\n");
        assert_eq!(
            parse(
                &mut BytesMut::from(complete.as_bytes()),
                &small,
                &mut Scan::default(),
                &mut None,
            )
            .unwrap_err(),
            BadRequest::RequestLineTooLong
        );
        let big = format!("GET / HTTP/1.1\r\nHost: x\r\nA: {}", "b".repeat(200));
        assert_eq!(
            parse(
                &mut BytesMut::from(big.as_bytes()),
                &small,
                &mut Scan::default(),
                &mut None,
            )
            .unwrap_err(),
            BadRequest::HeadTooLarge
        );
        let many = b"GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\n\r\n";
        assert_eq!(
            parse(
                &mut BytesMut::from(&many[..]),
                &small,
                &mut Scan::default(),
                &mut None
            )
            .unwrap_err(),
            BadRequest::TooManyHeaders
        );
    }

    #[test]
    fn more_headers_than_the_stack_array_use_the_heap() {
        let limits = Limits {
            max_headers: 300,
            ..LIMITS
        };
        let mut req = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
        for i in 0..200 {
            req.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
        }
        req.extend_from_slice(b"\r\n");
        let head = parse(
            &mut BytesMut::from(&req[..]),
            &limits,
            &mut Scan::default(),
            &mut None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(head.parts.headers().len(), 201);
    }
}
