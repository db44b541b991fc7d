//! The request target: checked by the head parser, and turned into an
//! [`http::Uri`] only for handlers that ask for one.
//!
//! Nearly every target is origin-form (`/path?query`, RFC 9112 §3.2.1)
//! made of a few plain bytes, and routing needs only its path. So the
//! parser checks such a target against [`PLAIN`], a byte class narrower
//! than what `http` accepts in a path and a query, and keeps only where it
//! lies in the head: [`path`](Target::path) reads it from there. The `Uri`
//! cannot fail to build later (a test below checks that agreement, byte
//! by byte), and is built when [`Demand`] says, as the header map is: while
//! parsing on a connection whose handlers ask for it, else on first access.
//!
//! Any other target (absolute-form, authority-form, `*`, a fragment, bytes
//! outside the class, or longer than `http` allows) is parsed into a `Uri`
//! at once, and a target `http` refuses is answered with 400.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::OnceLock;

use bytes::Bytes;
use http::Uri;

use super::demand::Demand;
use super::syntax::{is_unreserved_or_sub_delim, usize_range};

/// The longest target `http` takes as a `Uri`.
pub(crate) const MAX_LEN: usize = u16::MAX as usize - 1;

/// The longest target kept unparsed: all `http` takes.
const MAX_PLAIN_LEN: usize = MAX_LEN;

/// Where the target lies in its head, and its `Uri` once built. Reused
/// from request to request on a connection ([`clear`](Self::clear)).
#[derive(Debug, Default)]
pub(crate) struct Target {
    /// Where the target is in the head.
    place: Range<u32>,
    /// Where a plain target's path ends: at the `?`, or at the end.
    path_end: u32,
    /// The `Uri` built while parsing: every target that is not plain, and
    /// plain ones when the connection's handlers ask for a `Uri`.
    parsed: Option<Uri>,
    /// Whether the connection's handlers ask for the `Uri`.
    demand: Demand,
    /// A plain target's `Uri`, built on first access when not eager.
    lazy: OnceLock<Uri>,
}

/// A target `http` refuses.
#[derive(Debug)]
pub(crate) struct InvalidTarget;

impl Target {
    /// Checks the target at `place` in `head` and records it (into a new
    /// or [cleared](Self::clear) `Target`). A plain origin-form target is
    /// only located, unless the connection's handlers ask for a `Uri`; any
    /// other is parsed now.
    pub(crate) fn parse(&mut self, head: &Bytes, place: Range<u32>) -> Result<(), InvalidTarget> {
        self.place = place;
        let target = &head[usize_range(&self.place)];
        let Some(path_len) = plain_path_len(target) else {
            let uri = Uri::from_maybe_shared(head.slice(usize_range(&self.place)))
                .map_err(|_| InvalidTarget)?;
            self.parsed = Some(uri);
            return Ok(());
        };
        // At most `MAX_PLAIN_LEN`: fits.
        self.path_end = self.place.start + path_len as u32;
        if self.demand.is_eager() {
            self.parsed = Some(self.build(head));
        }
        Ok(())
    }

    /// A plain target's `Uri`, which `http` accepts (module docs).
    fn build(&self, head: &Bytes) -> Uri {
        Uri::from_maybe_shared(head.slice(usize_range(&self.place))).unwrap_or_else(|_| {
            debug_assert!(false, "http refused a plain target");
            Uri::default()
        })
    }

    /// The target as a `Uri`, built now if the parser did not. `head` must
    /// be the head given to [`parse`](Self::parse).
    pub(crate) fn uri(&self, head: &Bytes) -> &Uri {
        self.demand.note_ask();
        match &self.parsed {
            Some(uri) => uri,
            None => self.lazy.get_or_init(|| self.build(head)),
        }
    }

    /// The target's path, without building a `Uri` for a plain target.
    pub(crate) fn path<'a>(&'a self, head: &'a Bytes) -> &'a str {
        if let Some(uri) = &self.parsed {
            return uri.path();
        }
        // Plain targets are ASCII: the conversion cannot fail.
        crate::sys::ascii_str(&head[self.place.start as usize..self.path_end as usize])
            .unwrap_or("/")
    }

    /// Whether the `Uri` was built (while parsing or since).
    #[cfg(test)]
    pub(crate) fn is_built(&self) -> bool {
        self.parsed.is_some() || self.lazy.get().is_some()
    }

    /// A copy of the `Uri`, built apart if it was not: for the server's
    /// own use (an access log), which must not count as the handler asking.
    pub(crate) fn uri_copy(&self, head: &Bytes) -> Uri {
        match self.parsed.as_ref().or_else(|| self.lazy.get()) {
            Some(uri) => uri.clone(),
            None => self.build(head),
        }
    }

    /// The target as received, as text (for `Debug`).
    pub(crate) fn as_received<'a>(&self, head: &'a [u8]) -> Cow<'a, str> {
        String::from_utf8_lossy(&head[usize_range(&self.place)])
    }

    /// The `Uri`, taken out (built if it was not): the handler asked for
    /// it. The target is left for [`clear`](Self::clear).
    pub(crate) fn take_uri(&mut self, head: &Bytes) -> Uri {
        self.demand.note_ask();
        match self.parsed.take().or_else(|| self.lazy.take()) {
            Some(uri) => uri,
            None => self.build(head),
        }
    }

    /// Forgets the target (and any `Uri`, which shares the head's bytes),
    /// and lets [`Demand`] decide whether the next plain target's `Uri` is
    /// built while parsing.
    pub(crate) fn clear(&mut self) {
        self.demand.next_request();
        self.parsed = None;
        self.lazy = OnceLock::new();
        self.place = 0..0;
        self.path_end = 0;
    }
}

/// The length of a plain origin-form target's path (up to its first `?`),
/// or `None` if `target` is not plain: `/`, then only [`PLAIN`] bytes, at
/// most [`MAX_PLAIN_LEN`] in all.
fn plain_path_len(target: &[u8]) -> Option<usize> {
    if target.first() != Some(&b'/') || target.len() > MAX_PLAIN_LEN {
        return None;
    }
    // One pass up to the first byte that is not plain in a path: the end
    // (no query), or a `?`, or a byte that makes the target not plain.
    let path_len = target
        .iter()
        .position(|&b| !PLAIN_IN_PATH[usize::from(b)])
        .unwrap_or(target.len());
    // `path_len` is at most the length: the slice is never out of range.
    let query_is_plain = match &target[path_len..] {
        [b'?', query @ ..] => query.iter().all(|&b| PLAIN[usize::from(b)]),
        rest => rest.is_empty(),
    };
    query_is_plain.then_some(path_len)
}

/// [`PLAIN`] without `?`, which ends a path.
static PLAIN_IN_PATH: [bool; 256] = {
    let mut table = PLAIN;
    table[b'?' as usize] = false;
    table
};

/// The bytes that may appear as is in a plain path or query: RFC 3986's
/// unreserved characters, sub-delimiters, `:`, `@`, `%` (percent-encoding
/// is not decoded here), `/` and `?`. `http` accepts every one of them in
/// a path and in a query (where `?` is data).
static PLAIN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = is_unreserved_or_sub_delim(c) || matches!(c, b':' | b'@' | b'%' | b'/' | b'?');
        b += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `target` as the head parser does: as a slice of a head.
    fn parse(target: &str) -> Result<(Bytes, Target), InvalidTarget> {
        let mut parsed = Target::default();
        let head = parse_into(&mut parsed, target)?;
        Ok((head, parsed))
    }

    /// Parses `target` into `parsed` (new or cleared); returns the head.
    fn parse_into(parsed: &mut Target, target: &str) -> Result<Bytes, InvalidTarget> {
        let head = Bytes::from(format!("GET {target} HTTP/1.1\r\n\r\n"));
        parsed.parse(&head, 4..4 + target.len() as u32)?;
        Ok(head)
    }

    #[test]
    fn plain_targets_are_only_located() {
        for (target, path) in [
            ("/", "/"),
            ("/plaintext", "/plaintext"),
            ("/a/b?c=d&e=%20f", "/a/b"),
            ("/?", "/"),
            ("/x?y?z/", "/x"),
        ] {
            let (head, parsed) = parse(target).unwrap();
            assert!(parsed.parsed.is_none(), "{target} was parsed");
            assert_eq!(parsed.path(&head), path);
            let uri = parsed.uri(&head);
            assert_eq!((uri.path(), uri.to_string()), (path, target.to_owned()));
        }
    }

    #[test]
    fn other_targets_are_parsed_at_once() {
        for (target, path) in [
            ("http://example.com/a?b", "/a"),
            ("http://example.com", "/"),
            ("example.com:443", ""),
            ("*", "*"),
            ("/a#frag", "/a"),
            ("/caf\u{e9}", "/caf\u{e9}"),
            ("/a\"b", "/a\"b"),
        ] {
            let (head, parsed) = parse(target).unwrap();
            assert!(parsed.parsed.is_some(), "{target} was not parsed");
            assert_eq!(parsed.path(&head), path, "{target}");
        }
        assert!(parse("/a<b").is_err());
        assert!(parse("a/b c").is_err());
    }

    #[test]
    fn take_uri_builds_or_hands_over() {
        let (head, mut parsed) = parse("/a?b").unwrap();
        assert_eq!(parsed.take_uri(&head), "/a?b");
        let (head, mut parsed) = parse("http://h/x").unwrap();
        assert_eq!(parsed.take_uri(&head), "http://h/x");
    }

    #[test]
    fn a_uri_asked_for_is_built_while_parsing_until_handlers_stop_asking() {
        let mut target = Target::default();
        let head = parse_into(&mut target, "/one?1").unwrap();
        assert!(target.parsed.is_none());
        assert_eq!(target.uri(&head), "/one?1");
        assert!(target.lazy.get().is_some(), "built on first access");

        target.clear();
        let head = parse_into(&mut target, "/two").unwrap();
        assert_eq!(
            target.parsed.as_ref().unwrap(),
            "/two",
            "built while parsing"
        );
        assert_eq!(
            (target.path(&head), target.uri(&head).path()),
            ("/two", "/two")
        );

        // Handlers stop asking (the path is not the `Uri`): a few more
        // targets are parsed eagerly (see `Demand`), then lazily again.
        let mut without_ask = 0;
        let head = loop {
            target.clear();
            let head = parse_into(&mut target, "/four?4").unwrap();
            assert_eq!(target.path(&head), "/four");
            if target.parsed.is_none() {
                break head;
            }
            without_ask += 1;
        };
        assert_eq!(without_ask, 8);
        assert!(target.lazy.get().is_none(), "lazy again");
        assert_eq!(
            (target.path(&head), target.uri(&head).query()),
            ("/four", Some("4"))
        );
        target.clear();
        let head = parse_into(&mut target, "*").unwrap();
        assert_eq!(
            (target.path(&head), target.uri(&head)),
            ("*", &Uri::from_static("*"))
        );
    }

    /// Every byte in a path and in a query, and targets at `http`'s length
    /// limit: a target `plain_path_len` takes is one `http` accepts, with
    /// the same path; any other is parsed at once (and refused if `http`
    /// refuses it).
    #[test]
    fn plain_targets_are_exactly_what_plain_admits_and_http_accepts() {
        for byte in 0..=u8::MAX {
            for (before, after) in [("/a", "b"), ("/a?", "b"), ("/a?b", "")] {
                let mut target = before.as_bytes().to_vec();
                target.push(byte);
                target.extend_from_slice(after.as_bytes());
                let plain = plain_path_len(&target).is_some();
                assert_eq!(plain, PLAIN[usize::from(byte)], "{target:?}");
                let head = Bytes::from([b"GET ", &target[..], b" HTTP/1.1\r\n\r\n"].concat());
                let place = 4..4 + target.len() as u32;
                let mut parsed = Target::default();
                let http = Uri::from_maybe_shared(head.slice(usize_range(&place)));
                match parsed.parse(&head, place) {
                    Ok(()) if plain => {
                        assert!(parsed.parsed.is_none(), "{target:?}");
                        let http = http.expect("http accepts a plain target");
                        assert_eq!(parsed.path(&head), http.path(), "{target:?}");
                        assert_eq!(parsed.uri(&head), &http);
                    }
                    Ok(()) => assert_eq!(parsed.parsed.as_ref(), http.as_ref().ok()),
                    Err(InvalidTarget) => assert!(!plain && http.is_err(), "{target:?}"),
                }
            }
        }
        let longest = format!("/{}", "a".repeat(MAX_PLAIN_LEN - 1));
        let (head, parsed) = parse(&longest).unwrap();
        assert!(parsed.parsed.is_none());
        assert_eq!(parsed.uri(&head).path().len(), MAX_PLAIN_LEN);
        let longer = format!("/{}", "a".repeat(MAX_PLAIN_LEN));
        assert!(parse(&longer).is_err(), "longer than http takes: 400");
    }
}
