//! A request's header fields as received: located and checked by the head
//! parser, and turned into an [`http::HeaderMap`] only for handlers that
//! look at them.
//!
//! Building a `HeaderMap` (hashing every name, growing its tables, a
//! reference count per value) was a quarter of parsing a small head, and
//! many handlers on a hot path never look at the fields. So the parser
//! records where each field's name and value lie in the head's bytes, and
//! builds the map as [`Demand`] says: while parsing, into the previous
//! map's tables (no table allocation, no `OnceLock`), on a connection whose
//! handlers ask for it; else on first access (a `OnceLock` initialisation
//! and a fresh map).
//!
//! The parser refuses (400) any field [`is_admissible`] refuses: the rules
//! `http`'s constructors apply, checked here rather than left to
//! httparse's own checks, so building the map later cannot fail whatever
//! the crates' versions. A test checks the agreement byte by byte.

use std::ops::Range;
use std::sync::OnceLock;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};

use super::demand::Demand;
use super::syntax::usize_range;

/// The longest field name `http` accepts.
const MAX_NAME_LEN: usize = u16::MAX as usize;

/// Whether a field is one `http` takes as is: a name of 1 to 65,535
/// token bytes (RFC 9110 §5.6.2), a value without control bytes other than
/// HTAB (obs-text, bytes 0x80 to 0xFF, is allowed, RFC 9110 §5.5).
pub(crate) fn is_admissible(name: &[u8], value: &[u8]) -> bool {
    // Folds without early exits: a field is almost always admissible, and
    // a branch-free loop over a table is the cheapest check per byte.
    (1..=MAX_NAME_LEN).contains(&name.len())
        && name.iter().fold(true, |ok, &b| ok & TOKEN[usize::from(b)])
        && value.iter().fold(true, |ok, &b| ok & VALUE[usize::from(b)])
}

/// The bytes of a field value: anything but control bytes, except HTAB.
static VALUE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = b == 0x09 || (b >= 0x20 && b != 0x7f);
        b += 1;
    }
    table
};

/// RFC 9110's `tchar`: the bytes of a token.
static TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        b += 1;
    }
    table
};

/// The fields of one request head, as places in the head's bytes (which
/// the caller keeps, and passes in to build the map). Reused from request
/// to request on a connection: [`clear`](Self::clear) keeps the span list's
/// and the map's allocations.
#[derive(Debug, Default)]
pub(crate) struct Fields {
    /// Where each field's name and value are, in the order received.
    spans: Vec<(Range<u32>, Range<u32>)>,
    /// Whether the connection's handlers ask for the map.
    demand: Demand,
    /// The map built while parsing (when eager); otherwise empty, its
    /// tables kept for when the connection turns eager.
    built: HeaderMap,
    /// The map built on first access, when not eager.
    lazy: OnceLock<HeaderMap>,
}

impl Fields {
    /// Records one field, as httparse found it: where its name and its
    /// value are in the head.
    pub(crate) fn push(&mut self, name: Range<u32>, value: Range<u32>) {
        self.spans.push((name, value));
    }

    /// Forgets the fields pushed since the last [`clear`](Self::clear), for
    /// a parse abandoned before [`finish`](Self::finish) (the head will be
    /// parsed again, from its start).
    pub(crate) fn discard_pushed(&mut self) {
        self.spans.clear();
    }

    /// Called by the parser once every field is pushed: builds the map now
    /// if the connection's handlers ask for it.
    pub(crate) fn finish(&mut self, head: &Bytes) {
        if self.demand.is_eager() {
            append_all(&self.spans, &mut self.built, head);
        }
    }

    /// The fields' names and values as received, without building the map.
    /// `head` must be the head the fields were found in.
    pub(crate) fn as_received<'h>(
        &'h self,
        head: &'h [u8],
    ) -> impl Iterator<Item = (&'h [u8], &'h [u8])> + 'h {
        self.spans
            .iter()
            .map(|(name, value)| (&head[usize_range(name)], &head[usize_range(value)]))
    }

    /// Whether the map was built (while parsing or since).
    #[cfg(test)]
    pub(crate) fn is_built(&self) -> bool {
        self.demand.is_eager() || self.lazy.get().is_some()
    }

    /// How many fields the span list has room for without growing.
    pub(crate) fn capacity(&self) -> usize {
        self.spans.capacity()
    }

    /// The fields as a map (names lowercased, values sharing `head`'s
    /// bytes), built now if the parser did not. `head` must be the head
    /// the fields were found in.
    pub(crate) fn map(&self, head: &Bytes) -> &HeaderMap {
        self.demand.note_ask();
        if self.demand.is_eager() {
            return &self.built;
        }
        self.lazy.get_or_init(|| self.new_map(head))
    }

    /// The map, taken out (built if it was not yet): the handler asked for
    /// it. The span list stays for [`clear`](Self::clear).
    pub(crate) fn take_map(&mut self, head: &Bytes) -> HeaderMap {
        self.demand.note_ask();
        if self.demand.is_eager() {
            return std::mem::take(&mut self.built);
        }
        self.lazy.take().unwrap_or_else(|| self.new_map(head))
    }

    /// The map in new tables (the lazy way).
    fn new_map(&self, head: &Bytes) -> HeaderMap {
        let mut map = HeaderMap::new();
        append_all(&self.spans, &mut map, head);
        map
    }

    /// Forgets the fields, keeping the allocations, and lets [`Demand`]
    /// decide whether the next head's map is built while parsing.
    pub(crate) fn clear(&mut self) {
        self.spans.clear();
        self.demand.next_request();
        if let Some(map) = self.lazy.take() {
            // Keep the larger tables.
            if map.capacity() > self.built.capacity() {
                self.built = map;
            }
        }
        if !self.built.is_empty() {
            self.built.clear();
        }
    }
}

/// Appends the fields at `spans` in `head` to `map` (empty, perhaps with
/// room).
fn append_all(spans: &[(Range<u32>, Range<u32>)], map: &mut HeaderMap, head: &Bytes) {
    map.reserve(spans.len());
    for (name, value) in spans {
        // The parser admitted only fields `is_admissible` accepts, which
        // these accept (module docs).
        match (
            HeaderName::from_bytes(&head[usize_range(name)]),
            HeaderValue::from_maybe_shared(head.slice(usize_range(value))),
        ) {
            (Ok(name), Ok(value)) => {
                map.append(name, value);
            }
            _ => debug_assert!(false, "the parser admitted a field http refuses"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::mem::MaybeUninit;

    use super::*;
    use crate::h1::syntax::place;

    /// Parses `head` with httparse, as the head parser does, and records
    /// its fields into `fields` (empty or cleared).
    fn record(fields: &mut Fields, head: impl Into<Bytes>) -> Result<Bytes, httparse::Error> {
        let head = head.into();
        let mut slots = [MaybeUninit::<httparse::Header<'_>>::uninit(); 8];
        let mut request = httparse::Request::new(&mut []);
        request.parse_with_uninit_headers(&head, &mut slots)?;
        for field in request.headers.iter() {
            let name = place(&head, field.name.as_bytes()).unwrap();
            fields.push(name, place(&head, field.value).unwrap());
        }
        fields.finish(&head);
        Ok(head.clone())
    }

    /// The fields of `head`, in new `Fields`.
    fn fields_of(head: impl Into<Bytes>) -> Result<(Bytes, Fields), httparse::Error> {
        let mut fields = Fields::default();
        let head = record(&mut fields, head)?;
        Ok((head, fields))
    }

    /// The names and values in `map`, as text.
    fn pairs(map: &HeaderMap) -> Vec<(String, String)> {
        map.iter()
            .map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
            .collect()
    }

    #[test]
    fn the_map_keeps_order_repeats_and_bytes() {
        let (head, fields) = fields_of(
            &b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nx-a: 2\r\nX-Latin: \xff\r\n\r\n"[..],
        )
        .unwrap();
        assert_eq!(fields.spans.len(), 4);
        let map = fields.map(&head);
        let a: Vec<_> = map.get_all("x-a").iter().collect();
        assert_eq!(a, ["1", "2"]);
        assert_eq!(map["x-latin"].as_bytes(), b"\xff");
        let names: Vec<_> = map.keys().map(|n| n.as_str()).collect();
        assert_eq!(names, ["host", "x-a", "x-latin"]);
        assert!(std::ptr::eq(map, fields.map(&head)), "built once");
    }

    #[test]
    fn a_map_asked_for_is_built_while_parsing_until_handlers_stop_asking() {
        let mut fields = Fields::default();
        let head = record(
            &mut fields,
            &b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\r\n"[..],
        )
        .unwrap();
        assert!(
            fields.built.is_empty(),
            "new fields: nothing built while parsing"
        );
        assert_eq!(
            pairs(fields.map(&head)),
            [("host".into(), "a".into()), ("x-a".into(), "1".into())]
        );
        assert!(fields.lazy.get().is_some(), "built on first access");

        fields.clear();
        assert!(fields.demand.is_eager());
        assert!(fields.built.is_empty() && fields.built.capacity() >= 2);
        let head = record(&mut fields, &b"GET / HTTP/1.1\r\nHost: b\r\n\r\n"[..]).unwrap();
        assert_eq!(
            pairs(&fields.built),
            [("host".into(), "b".into())],
            "built while parsing"
        );
        assert!(std::ptr::eq(fields.map(&head), &fields.built));
        assert!(fields.lazy.get().is_none());

        // Handlers stop asking: the map is still built while parsing for a
        // few requests (see `Demand`), then on first access again; the kept
        // tables hold nothing of earlier heads.
        let mut without_ask = 0;
        loop {
            fields.clear();
            if !fields.demand.is_eager() {
                break;
            }
            record(&mut fields, &b"GET / HTTP/1.1\r\nHost: c\r\n\r\n"[..]).unwrap();
            assert_eq!(pairs(&fields.built), [("host".into(), "c".into())]);
            without_ask += 1;
        }
        assert_eq!(without_ask, 8);
        assert!(fields.built.is_empty() && fields.built.capacity() >= 2);
        let head = record(
            &mut fields,
            &b"GET / HTTP/1.1\r\nHost: d\r\nX-D: 4\r\n\r\n"[..],
        )
        .unwrap();
        assert!(fields.built.is_empty());
        assert_eq!(
            pairs(fields.map(&head)),
            [("host".into(), "d".into()), ("x-d".into(), "4".into())]
        );
        assert!(fields.capacity() >= 2, "the span list kept its room");
    }

    #[test]
    fn take_map_builds_or_hands_over() {
        let (head, mut fields) = fields_of(&b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..]).unwrap();
        assert_eq!(fields.take_map(&head)["host"], "x");
        let (head, mut fields) = fields_of(&b"GET / HTTP/1.1\r\nHost: y\r\n\r\n"[..]).unwrap();
        let _ = fields.map(&head);
        assert_eq!(fields.take_map(&Bytes::new())["host"], "y", "the built map");
        let mut fields = Fields::default();
        let head = record(&mut fields, &b"GET / HTTP/1.1\r\nHost: z\r\n\r\n"[..]).unwrap();
        let _ = fields.take_map(&head);
        fields.clear();
        assert!(
            fields.is_built() && fields.capacity() >= 1,
            "taking is asking; the span list stays"
        );
        record(&mut fields, &b"GET / HTTP/1.1\r\nHost: w\r\n\r\n"[..]).unwrap();
        assert_eq!(
            fields.take_map(&Bytes::new())["host"],
            "w",
            "the map built while parsing"
        );
    }

    /// Every byte, at the start, the middle and the end of names and values
    /// short and long (`http` treats names over 64 bytes apart): a field
    /// `is_admissible` accepts is one `http` accepts, and the other way
    /// round.
    #[test]
    fn admissible_fields_are_exactly_those_http_accepts() {
        for len in [1, 48, 100] {
            for at in [0, len / 2, len - 1] {
                for byte in 0..=u8::MAX {
                    let mut name = vec![b'n'; len];
                    name[at] = byte;
                    assert_eq!(
                        is_admissible(&name, b"v"),
                        HeaderName::from_bytes(&name).is_ok(),
                        "name byte {byte:#04x} at {at} of {len}"
                    );
                    let mut value = vec![b'v'; len];
                    value[at] = byte;
                    assert_eq!(
                        is_admissible(b"n", &value),
                        HeaderValue::from_bytes(&value).is_ok(),
                        "value byte {byte:#04x} at {at} of {len}"
                    );
                }
            }
        }
        assert!(!is_admissible(b"", b"v"), "an empty name");
        assert!(is_admissible(b"n", b""), "an empty value");
        let longest = vec![b'n'; MAX_NAME_LEN];
        assert!(is_admissible(&longest, b"v") && HeaderName::from_bytes(&longest).is_ok());
        let longer = vec![b'n'; MAX_NAME_LEN + 1];
        assert!(!is_admissible(&longer, b"v") && HeaderName::from_bytes(&longer).is_err());
    }
}
