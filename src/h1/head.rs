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

use super::fields::{Fields, is_admissible};
use super::syntax::{parse_decimal, place, trim_ows};
use super::target::Target;
use crate::error::BadRequest;

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

    /// The head as `http`'s type, taken out (target and map built if they
    /// were not, which counts as the handler asking for them). The map and
    /// the `Uri` leave with their allocations; what stays (the box, the
    /// field list, the demand) is what [`recycle`] keeps for the
    /// connection's next request, as when a request is dropped.
    pub(crate) fn take_http(&mut self) -> http::request::Parts {
        // `http::request::Parts` has no public constructor: start from an
        // empty request's.
        let (mut parts, ()) = http::Request::new(()).into_parts();
        parts.method = std::mem::take(&mut self.method);
        parts.uri = self.target.take_uri(&self.head);
        parts.version = self.version;
        parts.headers = self.fields.take_map(&self.head);
        parts.extensions = std::mem::take(&mut self.extensions);
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
/// `max_headers` above it costs one allocation per tokenizing (two for a
/// head the in-place path hands to the general one).
const STACK_HEADERS: usize = 128;

/// How far the search for the end of the current head has got. The
/// connection keeps one across reads, so a head that arrives in many small
/// pieces is scanned once in total, not once per piece (which a client
/// could otherwise make quadratic). A head that arrives whole is not
/// searched at all (see `parse_in_place`): only a scan that has not begun
/// lets it try.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Scan {
    /// Bytes already searched without finding the end.
    scanned: usize,
    /// Where the request line's LF is, once seen.
    request_line_end: Option<usize>,
    /// Where the head ends, once found (a second call then returns at once).
    end: Option<usize>,
}

impl Scan {
    /// Nothing of the current head was searched yet.
    fn is_untouched(&self) -> bool {
        self.scanned == 0 && self.request_line_end.is_none() && self.end.is_none()
    }
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
    if scan.is_untouched() {
        if let Some(parsed) = parse_in_place(buf, limits, spare) {
            return parsed.map(Some);
        }
    }
    let Some(head_len) = find_end(buf, limits, scan)? else {
        return Ok(None);
    };
    *scan = Scan::default();
    let bytes = buf.split_to(head_len).freeze();
    let mut parts = spare.take().unwrap_or_default();
    let Some(tokens) = tokenize(&bytes, limits.max_headers, &mut parts)? else {
        // The blank line is in `bytes`, so a partial parse means httparse
        // disagreed about where a line ended: a malformed field.
        return Err(BadRequest::InvalidHeader);
    };
    assemble(bytes, parts, tokens).map(Some)
}

/// The common case, without searching for the head's end first: a head
/// that arrived whole, within the limits, every line ending in CRLF, is
/// tokenized where it lies in `buf` (httparse finds its end) and split off.
/// Returns `None` for anything else, leaving `buf` and `spare` for the
/// general path to decide from scratch (a head arriving in pieces is tried
/// here once, on its first bytes: the general path's scan then takes over).
///
/// The general path would find the same end: the CRLF check proves that
/// the head's only LFs are the ends of its lines (see [`Tokens`]), so its
/// first blank line is the one httparse stopped at.
// This and the functions it calls are inlined into `parse`: as separate
// functions, moving `Tokens` and `Head` between them cost more than the
// search for the end that this path saves (callgrind, bench/RESULTS.md).
#[inline(always)]
fn parse_in_place(
    buf: &mut BytesMut,
    limits: &Limits,
    spare: &mut Option<Box<Parts>>,
) -> Option<Result<Head, BadRequest>> {
    // Empty lines before the request line are the general path's to skip.
    if matches!(buf.first(), None | Some(b'\r' | b'\n')) {
        return None;
    }
    let mut parts = spare.take().unwrap_or_default();
    match tokenize(buf, limits.max_headers, &mut parts) {
        Ok(Some(tokens))
            if tokens.crlf_only
                && tokens.len <= limits.max_head_bytes
                && tokens.request_line_lf <= limits.max_request_line_bytes =>
        {
            let bytes = buf.split_to(tokens.len).freeze();
            debug_assert!(check_line_endings(&bytes, false).is_ok());
            Some(assemble(bytes, parts, tokens))
        }
        _ => {
            parts.fields.discard_pushed();
            *spare = Some(parts);
            None
        }
    }
}

/// Finds the end of the head at the front of `buf`: the length including
/// its blank line, or `None` while it has not arrived. One pass over the
/// LFs also enforces what can be judged early: every LF follows a CR
/// (unless lenient; RFC 9112 §2.2), and the request line and the head stay
/// within their limits, so an endless line is answered at the limit, not
/// at the timeout. A bare CR is left to httparse, which rejects it (a CR
/// must be followed by LF in every part of a head).
fn find_end(
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

/// What httparse found in a complete head at the front of its input: the
/// head's length and request line, what its fields say, and where its
/// target lies (the fields' places are pushed into the parts).
struct Tokens {
    /// The head's length, its blank line included.
    len: usize,
    /// The request line's method and version.
    method: Method,
    version: Version,
    /// Where the target lies (from the input's first byte).
    target: Range<u32>,
    /// What the fields say about framing and persistence, still to judge.
    facts: FieldFacts,
    /// Where the request line's LF is (meaningful when `crlf_only`).
    request_line_lf: usize,
    /// The head is laid out as RFC 9112 asks, with nothing between its
    /// parts: `method SP target SP HTTP/1.x CRLF`, then each field line as
    /// `name ":" OWS value OWS CRLF`, then `CRLF`. Method, target, names
    /// and values hold no CR or LF (httparse's tokens, checked again by
    /// `http`'s rules), so every LF in the head ends a line and follows a
    /// CR. httparse accepts more (bare LFs), which the general path judges.
    crlf_only: bool,
}

/// Tokenizes the head at the front of `input` with httparse, pushing its
/// fields' places into `parts` and checking each field against `http`'s
/// rules. `Ok(None)` when httparse finds no blank line.
#[inline(always)]
fn tokenize(
    input: &[u8],
    max_headers: usize,
    parts: &mut Parts,
) -> Result<Option<Tokens>, BadRequest> {
    if max_headers <= STACK_HEADERS {
        let mut headers = [MaybeUninit::<httparse::Header<'_>>::uninit(); STACK_HEADERS];
        tokenize_with(input, &mut headers[..max_headers], parts)
    } else {
        let mut headers = vec![MaybeUninit::<httparse::Header<'_>>::uninit(); max_headers];
        tokenize_with(input, &mut headers, parts)
    }
}

/// [`tokenize`] with room for this many fields.
#[inline(always)]
fn tokenize_with<'b>(
    input: &'b [u8],
    headers: &mut [MaybeUninit<httparse::Header<'b>>],
    parts: &mut Parts,
) -> Result<Option<Tokens>, BadRequest> {
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(input, headers) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) if has_bare_cr(input) => return Err(BadRequest::BareCarriageReturn),
        Err(err) => return Err(classify_httparse_error(err, input)),
    };
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(BadRequest::InvalidRequestLine);
    };
    let method_place = place(input, method.as_bytes())?;
    let method = match method.as_bytes() {
        // The common case, without `from_bytes`'s general match.
        b"GET" => Method::GET,
        other => Method::from_bytes(other).map_err(|_| BadRequest::InvalidRequestLine)?,
    };
    let version = if minor == 1 {
        Version::HTTP_11
    } else {
        Version::HTTP_10
    };
    let target = place(input, target.as_bytes())?;
    let line_end = target.end as usize + b" HTTP/1.1\r\n".len();
    let mut crlf_only = method_place.start == 0
        && method_place.end + 1 == target.start
        && input.get(method_place.end as usize) == Some(&b' ')
        && matches!(
            input.get(target.end as usize..line_end),
            Some(b" HTTP/1.1\r\n" | b" HTTP/1.0\r\n")
        );
    let mut line_start = line_end;
    let mut facts = FieldFacts::default();
    for field in req.headers.iter() {
        // What `http` asks of a field, checked now: the map may be built
        // later, when refusing is no longer possible (see `fields`).
        let name = field.name.as_bytes();
        if !is_admissible(name, field.value) {
            return Err(BadRequest::InvalidHeader);
        }
        facts.observe(name, field.value);
        let (name, value) = (place(input, name)?, place(input, field.value)?);
        let separator = input.get(name.end as usize..value.start as usize);
        crlf_only &= name.start as usize == line_start && separator.is_some_and(is_name_separator);
        match after_crlf(input, value.end as usize) {
            Some(next) => line_start = next,
            None => crlf_only = false,
        }
        parts.fields.push(name, value);
    }
    crlf_only &= line_start + 2 == len && input.get(line_start..len) == Some(b"\r\n");
    Ok(Some(Tokens {
        len,
        method,
        version,
        target,
        facts,
        request_line_lf: line_end - 1,
        crlf_only,
    }))
}

/// `":" OWS`: what may lie between a field's name and its value.
fn is_name_separator(between: &[u8]) -> bool {
    matches!(between, [b':', rest @ ..] if rest.iter().all(|&b| b == b' ' || b == b'\t'))
}

/// Where the next line starts when, from `at`, only OWS and a CRLF remain
/// of this one.
fn after_crlf(input: &[u8], mut at: usize) -> Option<usize> {
    while let Some(b' ' | b'\t') = input.get(at) {
        at += 1;
    }
    (input.get(at..at + 2)? == b"\r\n").then_some(at + 2)
}

/// Completes a tokenized head, now split off the read buffer as `bytes`:
/// checks its target and framing, and builds the views its connection's
/// handlers ask for (see `demand`).
#[inline(always)]
fn assemble(bytes: Bytes, mut parts: Box<Parts>, tokens: Tokens) -> Result<Head, BadRequest> {
    let Tokens {
        method,
        version,
        target,
        facts,
        ..
    } = tokens;
    let target_len = target.len();
    parts.target.parse(&bytes, target).map_err(|_| {
        if target_len > super::target::MAX_LEN {
            // Within `max_request_line_bytes` (it may exceed 64 KiB), but
            // longer than a `Uri` can be: 414 all the same.
            BadRequest::RequestLineTooLong
        } else {
            BadRequest::InvalidTarget
        }
    })?;
    parts.fields.finish(&bytes);

    let framing = facts.body_framing(version)?;
    facts.check_host(version)?;
    let keep_alive = facts.keep_alive(version);
    let expect_continue = version == Version::HTTP_11 && facts.expect_continue;

    parts.method = method;
    parts.version = version;
    parts.head = bytes;
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

/// True when the request line is `method SP target SP HTTP/<digits>[.<digits>]`:
/// a real version, just not 1.0 or 1.1 (so 505, not 400). A line of
/// another shape (two spaces in a row, say) is malformed, whatever its end.
fn has_http_version_syntax(head: &[u8]) -> bool {
    let line_end = memchr::memchr(b'\n', head).unwrap_or(head.len());
    let line = head[..line_end]
        .strip_suffix(b"\r")
        .unwrap_or(&head[..line_end]);
    let mut parts = line.split(|&b| b == b' ');
    if parts.clone().count() != 3 || parts.any(<[u8]>::is_empty) {
        return false;
    }
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
    /// A `Host` value outside its grammar was seen (see `super::host`).
    invalid_host: bool,
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
        // One length check rules out most fields: none of these five has
        // another's length.
        let is = |known: &[u8]| name.eq_ignore_ascii_case(known);
        match name.len() {
            4 | 6 | 10 | 14 | 17 => {}
            _ => return,
        }
        if is(b"host") {
            self.hosts += 1;
            // httparse trims the value's whitespace already.
            self.invalid_host |= !super::host::is_valid_host(value);
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
    /// HTTP/1.0 request at most one; and its value must be valid.
    fn check_host(&self, version: Version) -> Result<(), BadRequest> {
        match self.hosts {
            0 if version == Version::HTTP_11 => Err(BadRequest::MissingHost),
            0 | 1 if self.invalid_host => Err(BadRequest::InvalidHost),
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
        // Malformed before its version: 400, not 505.
        assert_eq!(
            rejected(b"GET /x  HTTP/1.1\r\nHost: x\r\n\r\n"),
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
        for host in ["a b", "a/b", "example.com:x1", "u@h", "[::1"] {
            let head = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
            assert_eq!(rejected(head.as_bytes()), BadRequest::InvalidHost, "{host}");
        }
        let head = parse_all(b"GET / HTTP/1.0\r\nHost:\r\n\r\n");
        assert!(matches!(head, Ok(Some(_))), "an empty Host is valid");
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

    #[test]
    fn whole_crlf_heads_within_the_limits_are_parsed_in_place() {
        let in_place = |input: &[u8], limits: &Limits| {
            let mut buf = BytesMut::from(input);
            let mut spare = None;
            let parsed = parse_in_place(&mut buf, limits, &mut spare);
            if parsed.is_none() {
                assert_eq!(&buf[..], input, "left as it was");
                assert!(
                    spare.as_ref().is_none_or(|parts| parts
                        .fields
                        .as_received(input)
                        .next()
                        .is_none()),
                    "parts are kept without the abandoned fields"
                );
            }
            parsed.is_some()
        };
        let good = b"GET /a?b HTTP/1.1\r\nHost: x\r\nX-A:\t 1 \t\r\nX-B:\r\n\r\nGET /next";
        assert!(in_place(good, &LIMITS));
        assert!(in_place(b"OPTIONS * HTTP/1.0\r\n\r\n", &LIMITS));
        let not_in_place: &[(&str, &[u8], Limits)] = &[
            ("incomplete", b"GET / HTTP/1.1\r\nHost: x\r\n", LIMITS),
            (
                "leading CRLF",
                b"\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
                LIMITS,
            ),
            (
                "bare LF after the request line",
                b"GET / HTTP/1.1\nHost: x\r\n\r\n",
                LIMITS,
            ),
            (
                "bare LF after a field",
                b"GET / HTTP/1.1\r\nHost: x\n\r\n",
                LIMITS,
            ),
            (
                "bare LF ending the head",
                b"GET / HTTP/1.1\r\nHost: x\r\n\n",
                LIMITS,
            ),
            (
                "lenient, but a bare LF",
                b"GET / HTTP/1.1\nHost: x\n\n",
                Limits {
                    lenient_line_endings: true,
                    ..LIMITS
                },
            ),
            (
                "request line over the limit",
                b"GET /abcdef HTTP/1.1\r\nHost: x\r\n\r\n",
                Limits {
                    max_request_line_bytes: 20,
                    ..LIMITS
                },
            ),
            (
                "head over the limit",
                b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                Limits {
                    max_head_bytes: 26,
                    ..LIMITS
                },
            ),
            (
                "too many fields",
                b"GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\n\r\n",
                Limits {
                    max_headers: 1,
                    ..LIMITS
                },
            ),
            (
                "a bad field",
                b"GET / HTTP/1.1\r\nHost: x\r\nA B: 1\r\n\r\n",
                LIMITS,
            ),
        ];
        for (case, input, limits) in not_in_place {
            assert!(!in_place(input, limits), "{case}");
        }
    }

    mod in_place_and_general_paths {
        use super::*;
        use proptest::prelude::*;
        use proptest::sample::select;

        /// Heads assembled from pieces that are mostly valid, with the
        /// mistakes the parser must tell apart: bare LFs and CRs, extra
        /// spaces, folded lines, bad names, conflicting framing fields.
        fn head() -> impl Strategy<Value = Vec<u8>> {
            let eol = || select(vec!["\r\n", "\r\n", "\r\n", "\n", "\r", " \r\n"]);
            let field = (
                select(vec![
                    "Host",
                    "host",
                    "Content-Length",
                    "Transfer-Encoding",
                    "Connection",
                    "X-A",
                    "A B",
                    "",
                ]),
                select(vec![":", ": ", ":\t", " :", ":  "]),
                select(vec![
                    "x",
                    "5",
                    "chunked",
                    "close",
                    "",
                    "a b",
                    "v\u{1}",
                    " folded",
                    "caf\u{e9}",
                ]),
                select(vec!["", " ", "\t"]),
                eol(),
            );
            (
                select(vec!["", "\r\n", "\n"]),
                select(vec!["GET", "POST", "G(T", ""]),
                select(vec![" ", "  "]),
                select(vec![
                    "/a",
                    "/a?b=c",
                    "http://h/x",
                    "*",
                    "/a<b",
                    "/caf\u{e9}",
                ]),
                select(vec![
                    " HTTP/1.1",
                    " HTTP/1.0",
                    " HTTP/2.0",
                    " HTTP/1.1 ",
                    "HTTP/1.1",
                ]),
                eol(),
                proptest::collection::vec(field, 0..5),
                select(vec!["\r\n", "\r\n", "\n", "", "\r"]),
                select(vec!["", "NEXT", "GET / HTTP/1.1\r\nHost: y\r\n\r\n"]),
            )
                .prop_map(
                    |(lead, method, sp, target, version, line_end, fields, end, rest)| {
                        let mut head = format!("{lead}{method}{sp}{target}{version}{line_end}");
                        for (name, separator, value, trailing, eol) in fields {
                            head.push_str(&format!("{name}{separator}{value}{trailing}{eol}"));
                        }
                        head.push_str(end);
                        head.push_str(rest);
                        head.into_bytes()
                    },
                )
        }

        fn limits() -> impl Strategy<Value = Limits> {
            (
                select(vec![16, 8 * 1024]),
                select(vec![40, 64 * 1024]),
                select(vec![2, 100]),
                any::<bool>(),
            )
                .prop_map(|(line, head, fields, lenient)| Limits {
                    max_request_line_bytes: line,
                    max_head_bytes: head,
                    max_headers: fields,
                    lenient_line_endings: lenient,
                })
        }

        /// A parse's result and, when it did not fail, what it left.
        fn outcome(result: Result<Option<Head>, BadRequest>, buf: &BytesMut) -> String {
            match result {
                Ok(head) => format!("{head:?}, left {:?}", &buf[..]),
                Err(bad) => format!("{bad:?}"),
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(4000))]

            /// Whatever the input and limits, parsing in place (a fresh
            /// scan) ends as the general path does (a scan already begun).
            #[test]
            fn both_paths_reach_the_same_outcome(input in head(), limits in limits()) {
                let mut buf = BytesMut::from(&input[..]);
                let first_try = parse(&mut buf, &limits, &mut Scan::default(), &mut None);
                let first_try = outcome(first_try, &buf);

                let mut buf = BytesMut::from(&input[..]);
                let mut scan = Scan::default();
                let general = match find_end(&mut buf, &limits, &mut scan) {
                    Err(bad) => Err(bad),
                    Ok(_) => {
                        prop_assert!(!scan.is_untouched() || buf.is_empty());
                        parse(&mut buf, &limits, &mut scan, &mut None)
                    }
                };
                let general = outcome(general, &buf);
                prop_assert_eq!(&first_try, &general, "{:?}", String::from_utf8_lossy(&input));

                // The same into a previous request's recycled parts (whose
                // map and `Uri` are built while parsing).
                let mut spare = recycled();
                let mut buf = BytesMut::from(&input[..]);
                let reused = parse(&mut buf, &limits, &mut Scan::default(), &mut spare);
                prop_assert_eq!(outcome(reused, &buf), general);
            }
        }

        /// Parts left by a request whose handler read the fields and `Uri`.
        fn recycled() -> Option<Box<Parts>> {
            let head = parse_all(b"GET /old?q HTTP/1.1\r\nHost: a\r\nX-Old: 1\r\n\r\n")
                .unwrap()
                .unwrap();
            let _ = (head.parts.headers(), head.parts.uri());
            recycle(head.parts)
        }
    }
}
