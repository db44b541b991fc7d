//! The request target: checked by the head parser, and turned into an
//! [`http::Uri`] only for handlers that ask for one.
//!
//! Nearly every target is origin-form (`/path?query`, RFC 9112 §3.2.1)
//! made of a few plain bytes, and routing needs only its path. So the
//! parser checks such a target against [`PLAIN`], a byte class narrower
//! than what `http` accepts in a path and a query, and keeps only where it
//! lies in the head: [`path`](Target::path) reads it from there. The `Uri`
//! cannot fail to build later (a test below checks that agreement), and is
//! built as the header map is (see `fields`): while parsing on a
//! connection whose last handler asked for one, else on first access.
//!
//! Any other target (absolute-form, authority-form, `*`, a fragment, bytes
//! outside the class, or longer than `http` allows) is parsed into a `Uri`
//! at once, and a target `http` refuses is answered with 400.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http::Uri;

use crate::head::usize_range;

/// The longest target kept unparsed: `http`'s own limit for a `Uri`.
const MAX_PLAIN_LEN: usize = u16::MAX as usize - 1;

/// Where the target lies in its head, and its `Uri` once built. Reused
/// from request to request on a connection ([`clear`](Self::clear)).
#[derive(Debug, Default)]
pub(crate) struct Target {
    /// Where a plain target is in the head.
    place: Range<u32>,
    /// Where its path ends: at the `?`, or at the end.
    path_end: u32,
    /// The `Uri` built while parsing: every target that is not plain, and
    /// plain ones when the previous handler asked for a `Uri`.
    parsed: Option<Uri>,
    /// Build the `Uri` of a plain target while parsing.
    eager: bool,
    /// A plain target's `Uri`, built on first access when not `eager`.
    lazy: OnceLock<Uri>,
    /// The handler asked for the `Uri`.
    asked: AtomicBool,
}

/// A target `http` refuses.
#[derive(Debug)]
pub(crate) struct InvalidTarget;

impl Target {
    /// Checks the target at `place` in `head` and records it (into a new
    /// or [cleared](Self::clear) `Target`). A plain origin-form target is
    /// only located, unless the connection's last handler asked for a
    /// `Uri`; any other is parsed now.
    pub(crate) fn parse(&mut self, head: &Bytes, place: Range<u32>) -> Result<(), InvalidTarget> {
        let target = &head[usize_range(&place)];
        let Some(path_len) = plain_path_len(target) else {
            let uri = Uri::from_maybe_shared(head.slice(usize_range(&place)))
                .map_err(|_| InvalidTarget)?;
            self.parsed = Some(uri);
            return Ok(());
        };
        // At most `MAX_PLAIN_LEN`: fits.
        self.path_end = place.start + path_len as u32;
        self.place = place;
        if self.eager {
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
        self.asked.store(true, Ordering::Relaxed);
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

    /// The target as text, without building a `Uri` (for `Debug`).
    pub(crate) fn as_received<'a>(&'a self, head: &'a [u8]) -> Cow<'a, str> {
        match &self.parsed {
            Some(uri) => Cow::Owned(uri.to_string()),
            None => String::from_utf8_lossy(&head[usize_range(&self.place)]),
        }
    }

    /// Takes the `Uri` out, building it if it was not.
    pub(crate) fn into_uri(mut self, head: &Bytes) -> Uri {
        if let Some(uri) = self.parsed.take().or_else(|| self.lazy.take()) {
            return uri;
        }
        self.build(head)
    }

    /// Forgets the target (and any `Uri`, which shares the head's bytes),
    /// and decides whether the next plain target's `Uri` is built while
    /// parsing: only if this one's was asked for.
    pub(crate) fn clear(&mut self) {
        self.eager = std::mem::take(self.asked.get_mut());
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
    if target.first() != Some(&b'/')
        || target.len() > MAX_PLAIN_LEN
        || !target.iter().all(|&b| PLAIN[usize::from(b)])
    {
        return None;
    }
    // A linear search: targets are short, and memchr's set-up costs more
    // than it saves on them.
    Some(
        target
            .iter()
            .position(|&b| b == b'?')
            .unwrap_or(target.len()),
    )
}

/// The bytes that may appear as is in a plain path or query: RFC 3986's
/// unreserved characters, sub-delimiters, `:`, `@`, `%` (percent-encoding
/// is not decoded here), `/` and `?`. `http` accepts every one of them in
/// a path and in a query (where `?` is data).
static PLAIN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(c, b'-' | b'.' | b'_' | b'~')
            || matches!(
                c,
                b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
            )
            || matches!(c, b':' | b'@' | b'%' | b'/' | b'?');
        b += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

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
    fn into_uri_builds_or_hands_over() {
        let (head, parsed) = parse("/a?b").unwrap();
        assert_eq!(parsed.into_uri(&head), "/a?b");
        let (head, parsed) = parse("http://h/x").unwrap();
        assert_eq!(parsed.into_uri(&head), "http://h/x");
    }

    #[test]
    fn a_uri_asked_for_makes_the_next_one_eager_and_one_not_asked_for_lazy() {
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

        target.clear();
        let head = parse_into(&mut target, "/three?3").unwrap();
        assert_eq!(target.path(&head), "/three", "asked for the path only");
        target.clear();
        let head = parse_into(&mut target, "/four?4").unwrap();
        assert!(
            target.parsed.is_none() && target.lazy.get().is_none(),
            "lazy again"
        );
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

    proptest! {
        /// Every plain target is a `Uri` to `http`, with the same path and
        /// query as ours.
        #[test]
        fn http_accepts_every_plain_target(
            target in "/[A-Za-z0-9._~!$&'()*+,;=:@%/-]{0,24}(\\?[A-Za-z0-9._~!$&'()*+,;=:@%/?-]{0,24})?"
        ) {
            let (head, parsed) = parse(&target).unwrap();
            prop_assert!(parsed.parsed.is_none());
            let ours = parsed.path(&head).to_owned();
            let uri = Uri::try_from(target.as_str()).unwrap();
            prop_assert_eq!(&ours, uri.path());
            prop_assert_eq!(parsed.uri(&head), &uri);
        }
    }
}
