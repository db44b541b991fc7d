//! A request's header fields as received: located and validated by the
//! head parser, and turned into an [`http::HeaderMap`] only for handlers
//! that look at them.
//!
//! Building a `HeaderMap` (hashing every name, growing its tables, a
//! reference count per value) was a quarter of parsing a small head, and
//! many handlers on a hot path never look at the fields. So the parser
//! records where each field's name and value lie in the head's bytes, and:
//!
//! - on a connection whose last handler asked for the fields, the parser
//!   builds the map at once, into the previous map's tables (no allocation,
//!   no synchronisation: the cost of an eager parser);
//! - otherwise the map is built on first access (one `OnceLock`
//!   initialisation and a fresh map), and the connection switches to
//!   building it at once.
//!
//! The parser (httparse) admits only what the map's constructors accept: a
//! name is a non-empty token (RFC 9110 §5.6.2) of at most 64 KiB (checked
//! by the parser), a value holds no control byte other than HTAB
//! (obs-text is allowed, as in `http`). The tests below check that
//! agreement byte by byte, so building the map cannot fail.

use std::ops::Range;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::head::usize_range;

/// The fields of one request head, as places in the head's bytes (which
/// the caller keeps, and passes in to build the map). Reused from request
/// to request on a connection: [`clear`](Self::clear) keeps the span list's
/// and the map's allocations.
#[derive(Debug, Default)]
pub(crate) struct Fields {
    /// Where each field's name and value are, in the order received.
    spans: Vec<(Range<u32>, Range<u32>)>,
    /// Build the map while parsing: the previous handler asked for it.
    eager: bool,
    /// The map built while parsing (when `eager`); otherwise empty, its
    /// tables kept for when the connection switches to eager.
    built: HeaderMap,
    /// The map built on first access, when not `eager`.
    lazy: OnceLock<HeaderMap>,
    /// The handler asked for the map (either one).
    asked: AtomicBool,
}

impl Fields {
    /// Records one field, as httparse found it: where its name and its
    /// value are in the head.
    pub(crate) fn push(&mut self, name: Range<u32>, value: Range<u32>) {
        self.spans.push((name, value));
    }

    /// Called by the parser once every field is pushed: builds the map now
    /// if the connection's last handler asked for one.
    pub(crate) fn finish(&mut self, head: &Bytes) {
        if self.eager {
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

    /// How many fields the span list has room for without growing.
    pub(crate) fn capacity(&self) -> usize {
        self.spans.capacity()
    }

    /// The fields as a map (names lowercased, values sharing `head`'s
    /// bytes), built now if the parser did not. `head` must be the head
    /// the fields were found in.
    pub(crate) fn map(&self, head: &Bytes) -> &HeaderMap {
        self.asked.store(true, Ordering::Relaxed);
        if self.eager {
            return &self.built;
        }
        self.lazy.get_or_init(|| {
            let mut map = HeaderMap::new();
            append_all(&self.spans, &mut map, head);
            map
        })
    }

    /// The map, built if it was not yet.
    pub(crate) fn into_map(mut self, head: &Bytes) -> HeaderMap {
        if self.eager {
            return self.built;
        }
        self.lazy.take().unwrap_or_else(|| {
            let mut map = HeaderMap::new();
            append_all(&self.spans, &mut map, head);
            map
        })
    }

    /// Forgets the fields, keeping the allocations, and decides whether
    /// the next head's map is built while parsing: only if this one's was
    /// asked for.
    pub(crate) fn clear(&mut self) {
        self.spans.clear();
        self.eager = std::mem::take(self.asked.get_mut());
        if let Some(map) = self.lazy.take() {
            self.built = map;
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
        // The parser admitted only what these accept (module docs).
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
    use crate::head::place;

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
    fn a_map_asked_for_makes_the_next_one_eager_and_one_not_asked_for_lazy() {
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
        assert!(fields.eager && fields.built.is_empty() && fields.built.capacity() >= 2);
        let head = record(&mut fields, &b"GET / HTTP/1.1\r\nHost: b\r\n\r\n"[..]).unwrap();
        assert_eq!(
            pairs(&fields.built),
            [("host".into(), "b".into())],
            "built while parsing"
        );
        assert!(std::ptr::eq(fields.map(&head), &fields.built));
        assert!(fields.lazy.get().is_none());

        // This time the handler does not ask: the next head is lazy again,
        // and nothing of this one is left in the kept tables.
        fields.clear();
        record(&mut fields, &b"GET / HTTP/1.1\r\nHost: c\r\n\r\n"[..]).unwrap();
        fields.clear();
        assert!(!fields.eager && fields.built.is_empty());
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
    fn into_map_builds_or_hands_over() {
        let (head, fields) = fields_of(&b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..]).unwrap();
        assert_eq!(fields.into_map(&head)["host"], "x");
        let (head, fields) = fields_of(&b"GET / HTTP/1.1\r\nHost: y\r\n\r\n"[..]).unwrap();
        let _ = fields.map(&head);
        assert_eq!(fields.into_map(&Bytes::new())["host"], "y", "the built map");
        let mut fields = Fields::default();
        let head = record(&mut fields, &b"GET / HTTP/1.1\r\nHost: z\r\n\r\n"[..]).unwrap();
        let _ = fields.map(&head);
        fields.clear();
        record(&mut fields, &b"GET / HTTP/1.1\r\nHost: w\r\n\r\n"[..]).unwrap();
        assert_eq!(
            fields.into_map(&Bytes::new())["host"],
            "w",
            "the map built while parsing"
        );
    }

    /// Every byte, at places httparse checks one at a time and in its
    /// 8-, 16- and 32-byte blocks, in a name and in a value: whatever
    /// httparse accepts, `http` accepts too, so the lazily built map never
    /// drops a field.
    #[test]
    fn httparse_admits_only_what_http_accepts() {
        let mut accepted = 0;
        for byte in 0..=u8::MAX {
            for at in [0, 7, 15, 31, 40, 47] {
                let mut name = vec![b'n'; 48];
                name[at] = byte;
                let mut value = vec![b'v'; 48];
                value[at] = byte;
                for (name, value) in [(&name, &vec![b'v'; 48]), (&vec![b'n'; 48], &value)] {
                    let mut head = b"GET / HTTP/1.1\r\n".to_vec();
                    head.extend_from_slice(name);
                    head.extend_from_slice(b": ");
                    head.extend_from_slice(value);
                    head.extend_from_slice(b"\r\n\r\n");
                    let Ok((head, fields)) = fields_of(head) else {
                        continue;
                    };
                    accepted += 1;
                    for (name, value) in &fields.spans {
                        let name = &head[usize_range(name)];
                        let value = &head[usize_range(value)];
                        assert!(HeaderName::from_bytes(name).is_ok(), "name {name:?}");
                        assert!(HeaderValue::from_bytes(value).is_ok(), "value {value:?}");
                    }
                    assert_eq!(fields.map(&head).len(), fields.spans.len());
                }
            }
        }
        // Tokens in names (77 bytes), everything but controls in values
        // (and at the value's edges, whitespace is trimmed): the test saw
        // both kinds accepted.
        assert!(accepted > 6 * (77 + 200), "{accepted}");
    }
}
