//! A request's header fields as received: located and validated by the
//! head parser, turned into an [`http::HeaderMap`] only when asked for.
//!
//! Building a `HeaderMap` (hashing every name, growing its tables, a
//! reference count per value) is a third of parsing a small head, and many
//! handlers on a hot path never look at the fields. So the parser records
//! where each field's name and value lie in the head's bytes and the map is
//! built on first access, its values sharing those bytes as before.
//!
//! The parser (httparse) admits only what the map's constructors accept: a
//! name is a non-empty token (RFC 9110 §5.6.2), a value holds no control
//! byte other than HTAB (obs-text is allowed, as in `http`). The tests below
//! check that agreement byte by byte, so building the map cannot fail.

use std::sync::OnceLock;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};

/// The fields of one request head. Reused from request to request on a
/// connection ([`clear`](Self::clear) keeps the span list's allocation).
#[derive(Debug, Default)]
pub(crate) struct Fields {
    /// The head's bytes: every span points into them.
    head: Bytes,
    /// Where each field is, in the order received.
    spans: Vec<Span>,
    /// The map, once built.
    map: OnceLock<HeaderMap>,
}

/// One field: its name's and its value's place in the head, as byte
/// offsets (a head is at most 16 MiB: `Config` refuses more).
#[derive(Debug, Clone, Copy)]
struct Span {
    name_start: u32,
    name_end: u32,
    value_start: u32,
    value_end: u32,
}

/// A field whose place in the head does not fit a [`Span`]: only possible
/// if a head exceeded 4 GiB.
#[derive(Debug)]
pub(crate) struct HeadTooLarge;

impl Fields {
    /// Starts over for a new head, keeping the span list's allocation.
    pub(crate) fn reset(&mut self, head: Bytes) {
        self.clear();
        self.head = head;
    }

    /// Records one field, given as httparse found it: `name` and `value`
    /// must be slices of the head passed to [`reset`](Self::reset).
    pub(crate) fn push(&mut self, name: &[u8], value: &[u8]) -> Result<(), HeadTooLarge> {
        let (name_start, name_end) = self.offsets(name)?;
        let (value_start, value_end) = self.offsets(value)?;
        self.spans.push(Span {
            name_start,
            name_end,
            value_start,
            value_end,
        });
        Ok(())
    }

    /// Where `part` (a slice of the head) starts and ends in it.
    fn offsets(&self, part: &[u8]) -> Result<(u32, u32), HeadTooLarge> {
        let start = part.as_ptr().addr().wrapping_sub(self.head.as_ptr().addr());
        debug_assert!(
            start + part.len() <= self.head.len(),
            "not a slice of the head"
        );
        let start = u32::try_from(start).map_err(|_| HeadTooLarge)?;
        let len = u32::try_from(part.len()).map_err(|_| HeadTooLarge)?;
        Ok((start, start.checked_add(len).ok_or(HeadTooLarge)?))
    }

    /// How many fields the span list has room for without growing.
    pub(crate) fn capacity(&self) -> usize {
        self.spans.capacity()
    }

    /// The fields as a map, built on the first call (names lowercased,
    /// values sharing the head's bytes).
    pub(crate) fn map(&self) -> &HeaderMap {
        self.map.get_or_init(|| self.build())
    }

    /// The map, built if it was not yet.
    pub(crate) fn into_map(mut self) -> HeaderMap {
        match self.map.take() {
            Some(map) => map,
            None => self.build(),
        }
    }

    fn build(&self) -> HeaderMap {
        let mut map = HeaderMap::with_capacity(self.spans.len());
        for span in &self.spans {
            let name = &self.head[span.name_start as usize..span.name_end as usize];
            let value = self
                .head
                .slice(span.value_start as usize..span.value_end as usize);
            // The parser admitted only what these accept (module docs).
            match (
                HeaderName::from_bytes(name),
                HeaderValue::from_maybe_shared(value),
            ) {
                (Ok(name), Ok(value)) => {
                    map.append(name, value);
                }
                _ => debug_assert!(false, "the parser admitted a field http refuses"),
            }
        }
        map
    }

    /// Forgets the fields (and the head's bytes), keeping the span list's
    /// allocation.
    pub(crate) fn clear(&mut self) {
        self.spans.clear();
        self.map = OnceLock::new();
        self.head = Bytes::new();
    }
}

#[cfg(test)]
mod tests {
    use std::mem::MaybeUninit;

    use proptest::prelude::*;

    use super::*;

    /// Parses `head` with httparse, as the head parser does, and records
    /// its fields.
    fn fields_of(head: impl Into<Bytes>) -> Result<Fields, httparse::Error> {
        let head = head.into();
        let mut slots = [MaybeUninit::<httparse::Header<'_>>::uninit(); 8];
        let mut request = httparse::Request::new(&mut []);
        request.parse_with_uninit_headers(&head, &mut slots)?;
        let mut fields = Fields::default();
        fields.reset(head.clone());
        for field in request.headers.iter() {
            fields.push(field.name.as_bytes(), field.value).unwrap();
        }
        Ok(fields)
    }

    #[test]
    fn the_map_keeps_order_repeats_and_bytes() {
        let fields = fields_of(
            &b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nx-a: 2\r\nX-Latin: \xff\r\n\r\n"[..],
        )
        .unwrap();
        assert_eq!(fields.spans.len(), 4);
        let map = fields.map();
        let a: Vec<_> = map.get_all("x-a").iter().collect();
        assert_eq!(a, ["1", "2"]);
        assert_eq!(map["x-latin"].as_bytes(), b"\xff");
        let names: Vec<_> = map.keys().map(|n| n.as_str()).collect();
        assert_eq!(names, ["host", "x-a", "x-latin"]);
        assert!(std::ptr::eq(map, fields.map()), "built once");
    }

    #[test]
    fn clearing_forgets_the_fields_and_keeps_the_room() {
        let mut fields = fields_of(&b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\r\n"[..]).unwrap();
        let _ = fields.map();
        fields.clear();
        assert_eq!(fields.spans.len(), 0);
        assert!(fields.capacity() >= 2);
        assert!(fields.map().is_empty());
        assert!(fields.head.is_empty(), "the old head is not kept alive");
    }

    #[test]
    fn into_map_builds_or_hands_over() {
        let fields = fields_of(&b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..]).unwrap();
        assert_eq!(fields.into_map()["host"], "x");
        let fields = fields_of(&b"GET / HTTP/1.1\r\nHost: y\r\n\r\n"[..]).unwrap();
        let _ = fields.map();
        assert_eq!(fields.into_map()["host"], "y");
    }

    proptest! {
        /// Whatever name and value bytes httparse accepts, `http` accepts
        /// too: the lazily built map never drops a field.
        #[test]
        fn httparse_admits_only_what_http_accepts(
            name in proptest::collection::vec(any::<u8>(), 1..12),
            value in proptest::collection::vec(any::<u8>(), 0..12),
        ) {
            let mut head = b"GET / HTTP/1.1\r\n".to_vec();
            head.extend_from_slice(&name);
            head.extend_from_slice(b": ");
            head.extend_from_slice(&value);
            head.extend_from_slice(b"\r\n\r\n");
            if let Ok(fields) = fields_of(head) {
                for span in &fields.spans {
                    let name = &fields.head[span.name_start as usize..span.name_end as usize];
                    let value = &fields.head[span.value_start as usize..span.value_end as usize];
                    prop_assert!(HeaderName::from_bytes(name).is_ok(), "name {name:?}");
                    prop_assert!(HeaderValue::from_bytes(value).is_ok(), "value {value:?}");
                }
                prop_assert_eq!(fields.map().len(), fields.spans.len());
            }
        }
    }
}
