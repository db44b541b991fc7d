//! Property tests for the two parsers that take bytes straight from the
//! client: the request-head parser and the chunked body decoder, through
//! the `hangup::__private` entry points (default limits, strict line
//! endings).
//!
//! What they pin down:
//! - the head parser never panics, on arbitrary bytes or on mutated valid
//!   requests, and never reports more bytes than it was given;
//! - a complete head is consumed up to its blank line and not one byte
//!   further, whatever follows it;
//! - every proper prefix of a small valid head is "incomplete", never an
//!   error;
//! - a chunked body (random chunk sizes, size spellings and extensions)
//!   decodes to exactly its data and consumes exactly up to the end of the
//!   last chunk, whatever follows it.

use hangup::__private::{decode_chunked, parse_head};
use proptest::prelude::*;
use proptest::sample::Index;

// ---------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT2",
        ])
        .prop_map(str::to_owned),
        "[A-Z]{1,12}",
    ]
}

/// An origin-form target: absolute path plus optional query.
fn target() -> impl Strategy<Value = String> {
    (
        "(/[a-zA-Z0-9._~!$&'()*+,;=:@-]{0,16}){1,4}",
        proptest::option::of("[a-zA-Z0-9._~!$&'()*+,;=:@/?-]{0,24}"),
    )
        .prop_map(|(path, query)| match query {
            Some(query) => format!("{path}?{query}"),
            None => path,
        })
}

/// A field value: visible ASCII with inner spaces, no leading or trailing
/// whitespace (RFC 9110 §5.5), possibly empty.
fn field_value() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[!-~]([ !-~]{0,30}[!-~])?"]
}

/// A field that does not change the head's framing or `Host` rules, so
/// every generated head is valid.
fn plain_field() -> impl Strategy<Value = (String, String)> {
    // The name is 1 to 20 `tchar`s (RFC 9110 §5.6.2).
    ("[a-zA-Z0-9!#$%&'*+.^_`|~-]{1,20}", field_value()).prop_filter(
        "framing and Host fields are generated separately",
        |(name, _)| {
            let name = name.to_ascii_lowercase();
            name != "host" && name != "content-length" && name != "transfer-encoding"
        },
    )
}

/// A complete, valid request head (CRLF line endings, ending in its blank
/// line), small enough that no default limit applies.
fn valid_head() -> impl Strategy<Value = Vec<u8>> {
    (
        0..3usize,
        method(),
        target(),
        any::<bool>(),
        "[a-z0-9.-]{1,20}(:[0-9]{1,5})?",
        proptest::collection::vec(plain_field(), 0..8),
        proptest::option::of(0..1_000_000u64),
        any::<Index>(),
        prop::sample::select(vec!["", " ", "\t", "  "]),
    )
        .prop_map(
            |(empty_lines, method, target, http11, host, fields, length, host_at, ows)| {
                let mut head = "\r\n".repeat(empty_lines);
                let version = if http11 { "1.1" } else { "1.0" };
                head.push_str(&format!("{method} {target} HTTP/{version}\r\n"));
                let host_at = host_at.index(fields.len() + 1);
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i == host_at {
                        head.push_str(&format!("Host:{ows}{host}\r\n"));
                    }
                    head.push_str(&format!("{name}:{ows}{value}{ows}\r\n"));
                }
                if host_at == fields.len() {
                    head.push_str(&format!("Host:{ows}{host}\r\n"));
                }
                if let Some(length) = length {
                    head.push_str(&format!("Content-Length: {length}\r\n"));
                }
                head.push_str("\r\n");
                head.into_bytes()
            },
        )
}

/// One edit to a byte string; bytes that matter to HTTP framing are
/// inserted more often than chance would.
#[derive(Debug, Clone)]
enum Mutation {
    Overwrite(Index, u8),
    Insert(Index, Vec<u8>),
    Delete(Index, usize),
    Duplicate(Index, usize),
}

fn interesting_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any::<u8>().prop_map(|b| vec![b]),
        prop::sample::select(vec![
            &b"\r"[..],
            b"\n",
            b"\r\n",
            b"\r\n\r\n",
            b"\n\n",
            b" ",
            b"\t",
            b":",
            b"\0",
            b"\x7f",
            b"\xff",
            b"%",
            b"HTTP/",
            b"HTTP/2.0",
            b"Host: y\r\n",
            b"Content-Length: 5\r\n",
            b"Content-Length: 18446744073709551616\r\n",
            b"Transfer-Encoding: chunked\r\n",
            b"Transfer-Encoding: gzip, chunked\r\n",
            b" x\r\n",
        ])
        .prop_map(<[u8]>::to_vec),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), any::<u8>()).prop_map(|(at, b)| Mutation::Overwrite(at, b)),
        (any::<Index>(), interesting_bytes()).prop_map(|(at, b)| Mutation::Insert(at, b)),
        (any::<Index>(), 1..8usize).prop_map(|(at, n)| Mutation::Delete(at, n)),
        (any::<Index>(), 1..64usize).prop_map(|(at, n)| Mutation::Duplicate(at, n)),
    ]
}

fn mutate(mut input: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for mutation in mutations {
        match mutation {
            Mutation::Overwrite(at, b) => {
                if !input.is_empty() {
                    let at = at.index(input.len());
                    input[at] = *b;
                }
            }
            Mutation::Insert(at, bytes) => {
                let at = at.index(input.len() + 1);
                input.splice(at..at, bytes.iter().copied());
            }
            Mutation::Delete(at, n) => {
                if !input.is_empty() {
                    let at = at.index(input.len());
                    let end = (at + n).min(input.len());
                    input.drain(at..end);
                }
            }
            Mutation::Duplicate(at, n) => {
                if !input.is_empty() {
                    let at = at.index(input.len());
                    let end = (at + n).min(input.len());
                    let copy = input[at..end].to_vec();
                    input.splice(end..end, copy);
                }
            }
        }
    }
    input
}

/// Bytes drawn mostly from the alphabet of request heads, so arbitrary
/// input gets past the request line more often than uniform bytes do.
fn head_alphabet_bytes() -> impl Strategy<Value = Vec<u8>> {
    let alphabet: Vec<u8> = b"GETPOSThost:content-length transfer-encoding chunked/?=&.0123456789 \t\r\n\r\nHTTP/1.1\x00\x7f\xff"
        .to_vec();
    proptest::collection::vec(
        prop_oneof![4 => prop::sample::select(alphabet), 1 => any::<u8>()],
        0..512,
    )
}

/// Checks what holds for the head parser's answer on any input, and
/// returns it.
fn parse_head_checked(input: &[u8]) -> Result<Option<usize>, hangup::BadRequest> {
    let result = parse_head(input);
    if let Ok(Some(consumed)) = result {
        assert!(
            consumed <= input.len(),
            "consumed {consumed} of {} bytes",
            input.len()
        );
        // The answer depends only on the bytes up to the head's end.
        assert_eq!(
            parse_head(&input[..consumed]),
            Ok(Some(consumed)),
            "head alone parses differently from head plus rest"
        );
    }
    result
}

// ---------------------------------------------------------------------------
// Chunked bodies
// ---------------------------------------------------------------------------

/// How one chunk's size line is spelled.
#[derive(Debug, Clone)]
struct Chunk {
    data: Vec<u8>,
    leading_zeros: usize,
    uppercase: bool,
    /// Whitespace between the size and `;` (BWS, RFC 9112 §7.1.1).
    bws: &'static str,
    /// Extensions, each written as `;` plus the string.
    extensions: Vec<String>,
}

fn chunk() -> impl Strategy<Value = Chunk> {
    let extension = prop_oneof![
        "[a-z]{1,8}",
        "[a-z]{1,8}=[a-zA-Z0-9]{1,8}",
        "[a-z]{1,8}=\"[ a-zA-Z0-9;=]{0,12}\"",
        " ?[a-z]{1,4} ?= ?[a-z]{1,4}",
    ];
    (
        prop_oneof![
            3 => proptest::collection::vec(any::<u8>(), 1..64),
            1 => proptest::collection::vec(any::<u8>(), 64..1500),
        ],
        0..4usize,
        any::<bool>(),
        prop::sample::select(vec!["", " ", "\t", " \t "]),
        proptest::collection::vec(extension, 0..3),
    )
        .prop_map(|(data, leading_zeros, uppercase, bws, extensions)| Chunk {
            data,
            leading_zeros,
            uppercase,
            bws,
            extensions,
        })
}

fn encode_chunk(chunk: &Chunk, out: &mut Vec<u8>) {
    out.extend(std::iter::repeat_n(b'0', chunk.leading_zeros));
    let size = if chunk.uppercase {
        format!("{:X}", chunk.data.len())
    } else {
        format!("{:x}", chunk.data.len())
    };
    out.extend_from_slice(size.as_bytes());
    if !chunk.extensions.is_empty() {
        out.extend_from_slice(chunk.bws.as_bytes());
    }
    for extension in &chunk.extensions {
        out.push(b';');
        out.extend_from_slice(extension.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&chunk.data);
    out.extend_from_slice(b"\r\n");
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

proptest! {
    #[test]
    fn head_parser_never_panics_on_arbitrary_bytes(
        input in proptest::collection::vec(any::<u8>(), 0..1024),
    ) {
        parse_head_checked(&input).ok();
    }

    #[test]
    fn head_parser_never_panics_on_head_like_bytes(input in head_alphabet_bytes()) {
        parse_head_checked(&input).ok();
    }

    #[test]
    fn head_parser_never_panics_on_mutated_valid_heads(
        head in valid_head(),
        body in proptest::collection::vec(any::<u8>(), 0..32),
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        let mut input = head;
        input.extend_from_slice(&body);
        let input = mutate(input, &mutations);
        parse_head_checked(&input).ok();
    }

    #[test]
    fn valid_head_is_consumed_up_to_its_blank_line_and_no_further(
        head in valid_head(),
        rest in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..256),
            head_alphabet_bytes(),
            valid_head(),
        ],
    ) {
        prop_assert_eq!(
            parse_head(&head),
            Ok(Some(head.len())),
            "head {:?}",
            String::from_utf8_lossy(&head)
        );
        let mut input = head.clone();
        input.extend_from_slice(&rest);
        prop_assert_eq!(
            parse_head(&input),
            Ok(Some(head.len())),
            "head {:?} then {:?}",
            String::from_utf8_lossy(&head),
            String::from_utf8_lossy(&rest)
        );
    }

    #[test]
    fn every_proper_prefix_of_a_valid_head_is_incomplete(head in valid_head()) {
        // Small heads under default limits: no prefix may trip a limit, so
        // every one must ask for more bytes rather than fail.
        for len in 0..head.len() {
            prop_assert_eq!(
                parse_head(&head[..len]),
                Ok(None),
                "prefix {:?}",
                String::from_utf8_lossy(&head[..len])
            );
        }
    }

    #[test]
    fn chunked_body_decodes_to_its_data_and_stops_after_the_last_chunk(
        chunks in proptest::collection::vec(chunk(), 0..10),
        rest in proptest::collection::vec(any::<u8>(), 0..64),
        prefixes in proptest::collection::vec(any::<Index>(), 8),
    ) {
        let mut wire = Vec::new();
        for chunk in &chunks {
            encode_chunk(chunk, &mut wire);
        }
        wire.extend_from_slice(b"0\r\n\r\n");
        let body_len = wire.len();
        let data: Vec<u8> = chunks.iter().flat_map(|c| c.data.iter().copied()).collect();

        wire.extend_from_slice(&rest);
        let (decoded, consumed) = decode_chunked(&wire)
            .map_err(|e| TestCaseError::fail(format!("{e:?}")))?
            .ok_or_else(|| TestCaseError::fail("complete body reported incomplete"))?;
        prop_assert_eq!(decoded, data);
        prop_assert_eq!(consumed, body_len);

        // Any proper prefix of the body is incomplete, never an error.
        for prefix in prefixes {
            let len = prefix.index(body_len);
            prop_assert_eq!(decode_chunked(&wire[..len]), Ok(None), "prefix of {} bytes", len);
        }
    }

    #[test]
    fn chunked_decoder_bounds_hold_on_arbitrary_bytes(
        input in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..512),
            proptest::collection::vec(
                prop::sample::select(b"0123456789abcdefABCDEF;= \t\r\n\r\nx:".to_vec()),
                0..512,
            ),
        ],
    ) {
        if let Ok(Some((data, consumed))) = decode_chunked(&input) {
            prop_assert!(consumed <= input.len());
            prop_assert!(data.len() <= consumed);
        }
    }
}

// ---------------------------------------------------------------------------
// Limits: the boundary cases the small generated heads never reach
// ---------------------------------------------------------------------------

/// Default `max_request_line_bytes` and `max_head_bytes` (see `Config`).
const MAX_REQUEST_LINE_BYTES: usize = 8 * 1024;
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// A valid head whose request line (up to, not including, its LF) is
/// `line_bytes` long and whose total length is `head_bytes`.
fn head_of_size(line_bytes: usize, head_bytes: usize) -> Vec<u8> {
    let start = b"GET /";
    let end = b" HTTP/1.1\r";
    let mut head = start.to_vec();
    head.resize(line_bytes - end.len(), b'a');
    head.extend_from_slice(end);
    head.extend_from_slice(b"\nHost: x\r\nX-Pad: ");
    let pad = head_bytes - head.len() - b"\r\n\r\n".len();
    head.resize(head.len() + pad, b'p');
    head.extend_from_slice(b"\r\n\r\n");
    assert_eq!(head.len(), head_bytes);
    head
}

/// Prefix lengths to try on a large head: a stride through it plus the
/// last 64, where the limits bite (every prefix would be slow in debug).
fn sampled_prefix_lengths(len: usize) -> impl Iterator<Item = usize> {
    (0..len).step_by(509).chain(len.saturating_sub(64)..len)
}

#[test]
fn head_exactly_at_the_limits_is_accepted_and_its_prefixes_are_incomplete() {
    let head = head_of_size(MAX_REQUEST_LINE_BYTES, MAX_HEAD_BYTES);
    assert_eq!(parse_head(&head), Ok(Some(head.len())));
    for len in sampled_prefix_lengths(head.len()) {
        assert_eq!(parse_head(&head[..len]), Ok(None), "prefix of {len} bytes");
    }
}

#[test]
fn head_one_byte_over_a_limit_is_rejected_and_its_prefixes_agree() {
    for (head, limit) in [
        (
            head_of_size(MAX_REQUEST_LINE_BYTES + 1, 2 * MAX_REQUEST_LINE_BYTES),
            hangup::BadRequest::RequestLineTooLong,
        ),
        (
            head_of_size(64, MAX_HEAD_BYTES + 1),
            hangup::BadRequest::HeadTooLarge,
        ),
    ] {
        assert_eq!(parse_head(&head), Err(limit));
        // A prefix is incomplete until it holds enough to trip the limit,
        // and from then on fails with the same answer as the whole head.
        for len in sampled_prefix_lengths(head.len()) {
            match parse_head(&head[..len]) {
                Ok(None) => {}
                answer => assert_eq!(answer, Err(limit), "prefix of {len} bytes"),
            }
        }
    }
}
