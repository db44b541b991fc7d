//! Request body framing: a [`Decoder`] for `Content-Length` and `chunked`
//! bodies (RFC 9112 §6 and §7.1), as a pure state machine over the read
//! buffer. It never reads a socket; [`crate::Body`] (through [`super::input`]) feeds it.
//!
//! Data is handed out as `Bytes` split off the read buffer, without copying.
//! A decoder never consumes a byte past the end of its body, so a pipelined
//! request after it stays in the buffer.

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};

use super::head::BodyFraming;
use crate::error::BadRequest;

/// Longest chunk extension accepted, in bytes. Extensions are ignored, so
/// this only bounds the work a client can make us do per chunk: 4 KiB is far
/// beyond any real use.
const MAX_CHUNK_EXTENSION_BYTES: u32 = 4096;

/// Most hex digits in a chunk size: 16 fill a `u64`. Leading zeros are legal,
/// so more digits are allowed as long as the value fits.
const MAX_CHUNK_SIZE_DIGITS: u32 = 64;

/// What one decoding step produced.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// Body bytes, split off the front of the buffer.
    Data(Bytes),
    /// The buffer holds no complete next step; read more and call again.
    NeedMore,
    /// The body is complete (trailers, if any, are parsed).
    End,
}

/// Decodes one request body.
#[derive(Debug)]
pub(crate) struct Decoder {
    state: State,
    lenient_line_endings: bool,
    max_trailer_bytes: usize,
    trailers: Option<HeaderMap>,
    /// Bytes of the trailer section already searched for its end.
    trailer_scanned: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// `Content-Length` body with this many bytes still to come.
    Length {
        remaining: u64,
    },
    /// Reading a chunk size's hex digits.
    ChunkSize {
        size: u64,
        digits: u32,
    },
    /// Whitespace after the size (BWS before `;`, RFC 9112 §7.1.1).
    ChunkSizeSpace {
        size: u64,
    },
    /// Inside a chunk extension, which is ignored.
    ChunkExtension {
        size: u64,
        len: u32,
    },
    /// Saw the CR ending the size line; expecting LF.
    ChunkSizeLf {
        size: u64,
    },
    /// Inside a chunk's data.
    ChunkData {
        remaining: u64,
    },
    /// After a chunk's data: expecting CR LF (or a lone LF when lenient).
    ChunkDataCr,
    ChunkDataLf,
    /// After the last chunk: the trailer section up to its blank line.
    Trailers,
    /// The body is complete.
    Done,
}

impl Decoder {
    /// A decoder for a body framed as `framing`.
    pub(crate) fn new(
        framing: BodyFraming,
        lenient_line_endings: bool,
        max_trailer_bytes: usize,
    ) -> Self {
        let state = match framing {
            BodyFraming::Empty => State::Done,
            BodyFraming::Length(n) => State::Length { remaining: n },
            BodyFraming::Chunked => State::ChunkSize { size: 0, digits: 0 },
        };
        Decoder {
            state,
            lenient_line_endings,
            max_trailer_bytes,
            trailers: None,
            trailer_scanned: 0,
        }
    }

    /// True once the whole body, trailers included, has been consumed.
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Body bytes still expected, when the framing says so (`Content-Length`
    /// bodies, and the rest of the current chunk).
    pub(crate) fn known_remaining(&self) -> Option<u64> {
        match self.state {
            State::Length { remaining } => Some(remaining),
            State::Done => Some(0),
            _ => None,
        }
    }

    /// The trailer fields of a chunked body, once it is complete.
    pub(crate) fn trailers(&self) -> Option<&HeaderMap> {
        self.trailers.as_ref()
    }

    /// Takes the next piece of body from the front of `buf`: at most `max`
    /// bytes of data, or the end.
    ///
    /// # Errors
    ///
    /// A [`BadRequest`] for malformed chunk framing. The decoder is then
    /// stuck; the connection must close.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut, max: usize) -> Result<Decoded, BadRequest> {
        loop {
            match self.state {
                State::Done => return Ok(Decoded::End),
                State::Length { remaining } => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    let n = take_len(remaining, buf.len(), max);
                    self.state = match remaining - n as u64 {
                        0 => State::Done,
                        remaining => State::Length { remaining },
                    };
                    return Ok(Decoded::Data(buf.split_to(n).freeze()));
                }
                State::ChunkData { remaining } => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    let n = take_len(remaining, buf.len(), max);
                    self.state = match remaining - n as u64 {
                        0 => State::ChunkDataCr,
                        remaining => State::ChunkData { remaining },
                    };
                    return Ok(Decoded::Data(buf.split_to(n).freeze()));
                }
                State::Trailers => {
                    if self.decode_trailers(buf)? {
                        self.state = State::Done;
                        return Ok(Decoded::End);
                    }
                    return Ok(Decoded::NeedMore);
                }
                _ => {
                    let Some(&byte) = buf.first() else {
                        return Ok(Decoded::NeedMore);
                    };
                    self.state = self.chunk_line_step(byte)?;
                    let _ = buf.split_to(1);
                }
            }
        }
    }

    /// One byte of a chunk-size line or of the CRLF after chunk data.
    fn chunk_line_step(&self, byte: u8) -> Result<State, BadRequest> {
        let lenient_lf = self.lenient_line_endings && byte == b'\n';
        let after_size_line = |size: u64| {
            if size == 0 {
                State::Trailers
            } else {
                State::ChunkData { remaining: size }
            }
        };
        Ok(match self.state {
            State::ChunkSize { size, digits } => match hex_value(byte) {
                Some(d) => {
                    if digits >= MAX_CHUNK_SIZE_DIGITS || size > u64::MAX >> 4 {
                        return Err(BadRequest::InvalidChunkSize);
                    }
                    State::ChunkSize {
                        size: size << 4 | u64::from(d),
                        digits: digits + 1,
                    }
                }
                None if digits == 0 => return Err(BadRequest::InvalidChunkSize),
                None => match byte {
                    b'\r' => State::ChunkSizeLf { size },
                    b';' => State::ChunkExtension { size, len: 0 },
                    b' ' | b'\t' => State::ChunkSizeSpace { size },
                    _ if lenient_lf => after_size_line(size),
                    _ => return Err(BadRequest::InvalidChunkSize),
                },
            },
            // RFC 9112 §7.1.1 allows whitespace after the size only as BWS
            // before a `;`: `5 \r\n` is outside the grammar, and a peer
            // that reads it differently could be fooled about where the
            // body ends. Refused in lenient mode too: that mode is about
            // line endings (a bare LF), not about whitespace.
            State::ChunkSizeSpace { size } => match byte {
                b' ' | b'\t' => State::ChunkSizeSpace { size },
                b';' => State::ChunkExtension { size, len: 0 },
                _ => return Err(BadRequest::InvalidChunkFraming),
            },
            State::ChunkExtension { size, len } => match byte {
                b'\r' => State::ChunkSizeLf { size },
                _ if lenient_lf => after_size_line(size),
                // Field-value bytes only: no controls, so no bare LF.
                b'\t' | 0x20..=0x7e | 0x80..=0xff if len < MAX_CHUNK_EXTENSION_BYTES => {
                    State::ChunkExtension { size, len: len + 1 }
                }
                _ => return Err(BadRequest::InvalidChunkFraming),
            },
            State::ChunkSizeLf { size } => match byte {
                b'\n' => after_size_line(size),
                _ => return Err(BadRequest::InvalidChunkFraming),
            },
            State::ChunkDataCr => match byte {
                b'\r' => State::ChunkDataLf,
                _ if lenient_lf => State::ChunkSize { size: 0, digits: 0 },
                _ => return Err(BadRequest::InvalidChunkFraming),
            },
            State::ChunkDataLf => match byte {
                b'\n' => State::ChunkSize { size: 0, digits: 0 },
                _ => return Err(BadRequest::InvalidChunkFraming),
            },
            // Other states are handled by `decode` itself.
            state => state,
        })
    }

    /// Consumes the trailer section once its blank line is in `buf`. Returns
    /// false while it is incomplete.
    fn decode_trailers(&mut self, buf: &mut BytesMut) -> Result<bool, BadRequest> {
        let lenient = self.lenient_line_endings;
        let end = match &buf[..] {
            [] | [b'\r'] => return Ok(false),
            [b'\r', b'\n', ..] => Some(2),
            [b'\n', ..] if lenient => Some(1),
            [b'\n', ..] | [b'\r', _, ..] => return Err(BadRequest::InvalidChunkFraming),
            // Resume where the last search stopped (two bytes back: an LF
            // there may now be followed by the rest of a blank line), so a
            // trailer section trickled in byte by byte is searched once.
            _ => {
                let from = self.trailer_scanned.saturating_sub(2);
                let end = find_blank_line(&buf[from..]).map(|end| from + end);
                self.trailer_scanned = buf.len();
                end
            }
        };
        let Some(end) = end else {
            if buf.len() > self.max_trailer_bytes {
                return Err(BadRequest::InvalidTrailers);
            }
            return Ok(false);
        };
        if end > self.max_trailer_bytes {
            return Err(BadRequest::InvalidTrailers);
        }
        let section = buf.split_to(end).freeze();
        if end > 2 {
            super::head::check_line_endings(&section, lenient)
                .map_err(|_| BadRequest::InvalidTrailers)?;
            self.trailers = Some(parse_trailers(&section)?);
        }
        Ok(true)
    }
}

fn take_len(remaining: u64, available: usize, max: usize) -> usize {
    // `remaining` may exceed usize on 32-bit targets; the minimum never does.
    available
        .min(max)
        .min(usize::try_from(remaining).unwrap_or(usize::MAX))
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// End of a field section: an LF followed by LF or CRLF.
fn find_blank_line(buf: &[u8]) -> Option<usize> {
    memchr::memchr_iter(b'\n', buf).find_map(|lf| match buf.get(lf + 1..) {
        Some([b'\n', ..]) => Some(lf + 2),
        Some([b'\r', b'\n', ..]) => Some(lf + 3),
        _ => None,
    })
}

/// Trailer fields; at most 100 of them (the default `max_headers`), which
/// keeps the parse array on the stack.
fn parse_trailers(section: &Bytes) -> Result<HeaderMap, BadRequest> {
    let mut fields = [httparse::EMPTY_HEADER; 100];
    let parsed = match httparse::parse_headers(section, &mut fields) {
        Ok(httparse::Status::Complete((_, parsed))) => parsed,
        _ => return Err(BadRequest::InvalidTrailers),
    };
    let mut map = HeaderMap::with_capacity(parsed.len());
    for field in parsed {
        let name = HeaderName::from_bytes(field.name.as_bytes())
            .map_err(|_| BadRequest::InvalidTrailers)?;
        let value = HeaderValue::from_maybe_shared(section.slice_ref(field.value))
            .map_err(|_| BadRequest::InvalidTrailers)?;
        map.append(name, value);
    }
    Ok(map)
}

/// Encodes `data` as one chunk (RFC 9112 §7.1): the inverse of the decoder,
/// used by tests and property tests.
#[cfg(test)]
pub(crate) fn encode_chunk(data: &[u8], out: &mut Vec<u8>) {
    if !data.is_empty() {
        out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Body, bytes left after it, trailers.
    type Decoded3 = (Vec<u8>, Vec<u8>, Option<HeaderMap>);

    /// Feeds `input` in pieces split at `split`, collecting data until the
    /// end; returns the body and what is left in the buffer.
    fn decode_split(
        framing: BodyFraming,
        input: &[u8],
        split: usize,
        lenient: bool,
    ) -> Result<Decoded3, BadRequest> {
        let mut decoder = Decoder::new(framing, lenient, 1024);
        let mut buf = BytesMut::from(&input[..split]);
        let mut rest = &input[split..];
        let mut body = Vec::new();
        loop {
            match decoder.decode(&mut buf, usize::MAX)? {
                Decoded::Data(data) => body.extend_from_slice(&data),
                Decoded::End => {
                    let mut left = buf.to_vec();
                    left.extend_from_slice(rest);
                    return Ok((body, left, decoder.trailers.take()));
                }
                Decoded::NeedMore => {
                    assert!(!rest.is_empty(), "decoder wants more than the whole input");
                    buf.extend_from_slice(rest);
                    rest = &[];
                }
            }
        }
    }

    fn at_every_split(framing: BodyFraming, input: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let whole = decode_split(framing, input, input.len(), false).unwrap();
        for split in 0..input.len() {
            let parts = decode_split(framing, input, split, false).unwrap();
            assert_eq!(
                (&parts.0, &parts.1),
                (&whole.0, &whole.1),
                "split at {split}"
            );
        }
        (whole.0, whole.1)
    }

    #[test]
    fn content_length_stops_at_its_end() {
        let (body, rest) = at_every_split(BodyFraming::Length(5), b"helloGET /");
        assert_eq!(body, b"hello");
        assert_eq!(rest, b"GET /");
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let input = b"5;name=val\r\nhello\r\n1 ; x\r\n!\r\n0\r\nX-Sum: 6\r\n\r\nNEXT";
        let (body, rest) = at_every_split(BodyFraming::Chunked, input);
        assert_eq!(body, b"hello!");
        assert_eq!(rest, b"NEXT");
        let (_, _, trailers) =
            decode_split(BodyFraming::Chunked, input, input.len(), false).unwrap();
        assert_eq!(trailers.unwrap()["x-sum"], "6");
    }

    #[test]
    fn trailers_trickled_one_byte_at_a_time_are_found() {
        let input = b"1\r\nx\r\n0\r\nX-A: 1\r\nX-B: 2\r\n\r\nNEXT";
        let mut decoder = Decoder::new(BodyFraming::Chunked, false, 1024);
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        let mut fed = 0;
        loop {
            match decoder.decode(&mut buf, usize::MAX).unwrap() {
                Decoded::Data(data) => body.extend_from_slice(&data),
                Decoded::End => break,
                Decoded::NeedMore => {
                    buf.extend_from_slice(&input[fed..fed + 1]);
                    fed += 1;
                }
            }
        }
        assert_eq!(body, b"x");
        assert_eq!(decoder.trailers().unwrap()["x-b"], "2");
        assert_eq!(&input[fed - buf.len()..fed], &buf[..]);
        assert_eq!(fed, input.len() - 4, "nothing of NEXT was needed");
    }

    #[test]
    fn chunk_sizes_are_hex_with_leading_zeros_and_no_overflow() {
        let (body, _) = at_every_split(BodyFraming::Chunked, b"00000A\r\n0123456789\r\n0\r\n\r\n");
        assert_eq!(body, b"0123456789");
        for bad in [
            &b"g\r\n"[..],
            b"\r\n",
            b"-1\r\n",
            b"10000000000000000\r\n",
            b"0x5\r\n",
        ] {
            let mut input = bad.to_vec();
            input.extend_from_slice(b"xxxxx\r\n0\r\n\r\n");
            let err = decode_split(BodyFraming::Chunked, &input, input.len(), false).unwrap_err();
            assert_eq!(
                err,
                BadRequest::InvalidChunkSize,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn chunk_lines_must_end_in_crlf() {
        for bad in [
            &b"5\nhello\r\n0\r\n\r\n"[..],
            b"5\r\nhelloX\r\n0\r\n\r\n",
            b"5\r\nhello\n0\r\n\r\n",
            b"5\rhello",
        ] {
            assert!(
                decode_split(BodyFraming::Chunked, bad, bad.len(), false).is_err(),
                "{bad:?}"
            );
        }
        // Whitespace after the size is BWS before a `;` only.
        for bad in [
            &b"5 \r\nhello\r\n0\r\n\r\n"[..],
            b"5\t\r\nhello\r\n0\r\n\r\n",
        ] {
            for lenient in [false, true] {
                assert!(
                    decode_split(BodyFraming::Chunked, bad, bad.len(), lenient).is_err(),
                    "{bad:?} lenient={lenient}"
                );
            }
        }
        let spaced = b"5 ;a=b\r\nhello\r\n0 \t;x\r\n\r\n";
        let (body, _, _) = decode_split(BodyFraming::Chunked, spaced, spaced.len(), false).unwrap();
        assert_eq!(body, b"hello");
        let lenient = b"5\nhello\n0\n\n";
        let (body, _, _) =
            decode_split(BodyFraming::Chunked, lenient, lenient.len(), true).unwrap();
        assert_eq!(body, b"hello");
    }

    #[test]
    fn oversized_extensions_and_trailers_are_rejected() {
        let mut input = b"1;".to_vec();
        input.extend(std::iter::repeat_n(
            b'a',
            MAX_CHUNK_EXTENSION_BYTES as usize + 1,
        ));
        input.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
        assert_eq!(
            decode_split(BodyFraming::Chunked, &input, input.len(), false).unwrap_err(),
            BadRequest::InvalidChunkFraming
        );
        let mut input = b"0\r\nX: ".to_vec();
        input.extend(std::iter::repeat_n(b'a', 2000));
        input.extend_from_slice(b"\r\n\r\n");
        assert_eq!(
            decode_split(BodyFraming::Chunked, &input, input.len(), false).unwrap_err(),
            BadRequest::InvalidTrailers
        );
    }

    #[test]
    fn data_is_capped_by_max() {
        let mut decoder = Decoder::new(BodyFraming::Length(10), false, 0);
        let mut buf = BytesMut::from(&b"0123456789"[..]);
        assert_eq!(
            decoder.decode(&mut buf, 4).unwrap(),
            Decoded::Data(Bytes::from_static(b"0123"))
        );
        assert_eq!(decoder.known_remaining(), Some(6));
    }

    mod roundtrip {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn chunked_encode_then_decode_roundtrips(
                chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8),
                split in any::<proptest::sample::Index>(),
            ) {
                let mut wire = Vec::new();
                for chunk in &chunks {
                    encode_chunk(chunk, &mut wire);
                }
                wire.extend_from_slice(b"0\r\n\r\nNEXT");
                let split = split.index(wire.len() + 1);
                let (body, rest, _) = decode_split(BodyFraming::Chunked, &wire, split, false).unwrap();
                prop_assert_eq!(body, chunks.concat());
                prop_assert_eq!(rest, b"NEXT".to_vec());
            }

            #[test]
            fn decoder_never_panics_on_arbitrary_input(input in proptest::collection::vec(any::<u8>(), 0..512)) {
                let mut decoder = Decoder::new(BodyFraming::Chunked, false, 256);
                let mut buf = BytesMut::from(&input[..]);
                for _ in 0..input.len() + 2 {
                    match decoder.decode(&mut buf, 64) {
                        Ok(Decoded::Data(_)) => {}
                        _ => break,
                    }
                }
            }
        }
    }
}
