//! Validators (`ETag`, `Last-Modified`) and the conditional request
//! headers that use them: `If-Match`, `If-Unmodified-Since`,
//! `If-None-Match`, `If-Modified-Since` (RFC 9110 §13.1.1-§13.1.4),
//! evaluated in §13.2.2's order by [`evaluate`], and `If-Range`
//! (§13.1.5).

use std::fs::Metadata;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hangup::http::HeaderMap;
use hangup::http::header::{
    IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, IF_UNMODIFIED_SINCE,
};

/// What the preconditions of a request say to do (RFC 9110 §13.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// Every precondition holds (or none was sent): perform the method.
    Proceed,
    /// A GET or HEAD whose client has the current version: `304`.
    NotModified,
    /// A precondition failed: `412 Precondition Failed`.
    Failed,
}

/// Evaluates the request's preconditions against `current` (the
/// validators of the selected representation, `None` when the target has
/// none, as a `PUT` to a new name) for a method that is safe (GET, HEAD)
/// or not, in RFC 9110 §13.2.2's order:
///
/// 1. `If-Match` present: false (no current representation, or no tag
///    matching under strong comparison) is 412.
/// 2. Else `If-Unmodified-Since`, a valid date, and a modification time
///    known: modified after it is 412.
/// 3. `If-None-Match` present: a match under weak comparison (or `*` with
///    a current representation) is 304 for GET and HEAD, 412 otherwise.
/// 4. Else, for GET and HEAD, `If-Modified-Since`, a valid date, and a
///    modification time known: not modified since is 304.
///
/// `If-Range` (step 5) is [`Validators::range_allowed`]'s.
pub fn evaluate(current: Option<&Validators>, headers: &HeaderMap, safe: bool) -> Precondition {
    if headers.contains_key(IF_MATCH) {
        let holds = current.is_some_and(|v| {
            headers
                .get_all(IF_MATCH)
                .iter()
                .any(|value| matches_list(value.as_bytes(), &v.etag, Comparison::Strong))
        });
        if !holds {
            return Precondition::Failed;
        }
    } else if let (Some(since), Some(modified)) = (
        date(headers, IF_UNMODIFIED_SINCE),
        current.and_then(|v| v.last_modified),
    ) {
        if modified > since {
            return Precondition::Failed;
        }
    }
    if headers.contains_key(IF_NONE_MATCH) {
        let matched = current.is_some_and(|v| {
            headers
                .get_all(IF_NONE_MATCH)
                .iter()
                .any(|value| matches_list(value.as_bytes(), &v.etag, Comparison::Weak))
        });
        return match (matched, safe) {
            (false, _) => Precondition::Proceed,
            (true, true) => Precondition::NotModified,
            (true, false) => Precondition::Failed,
        };
    }
    let since = date(headers, IF_MODIFIED_SINCE);
    match (safe, since, current.and_then(|v| v.last_modified)) {
        (true, Some(since), Some(modified)) if modified <= since => Precondition::NotModified,
        _ => Precondition::Proceed,
    }
}

/// The HTTP date in the field `name`, if there is one that parses (an
/// invalid date is ignored, as §13.1.3 and §13.1.4 require).
fn date(headers: &HeaderMap, name: hangup::http::HeaderName) -> Option<SystemTime> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v.trim()).ok())
}

/// The validators of one file version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validators {
    /// A strong entity tag, quotes included: modification time (to the
    /// nanosecond) and length, as nginx derives its tags, then the file's
    /// identity (`identity`: device, inode and change time). Without the
    /// identity, two files of the same length and modification time
    /// (copies made with `cp -p` or `rsync -t`, a reproducible build's
    /// fixed timestamps) share a tag, so a file replaced by such a twin
    /// would be confirmed as current (304) to caches holding the old one.
    /// Content hashing would cost a read of the whole file per request.
    ///
    /// A weak tag (`W/"..."`) marks a representation whose bytes may
    /// differ for the same file (one compressed on the fly): it matches
    /// `If-None-Match` but never `If-Match` or `If-Range`.
    pub etag: String,
    /// The modification time, truncated to the second that HTTP dates
    /// carry; `None` where the platform cannot tell.
    pub last_modified: Option<SystemTime>,
}

impl Validators {
    /// The validators of a file with this metadata.
    pub fn of(metadata: &Metadata) -> Validators {
        let modified = metadata.modified().ok();
        let since_epoch = modified
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .unwrap_or_default();
        Validators {
            etag: format!(
                "\"{:x}-{:x}-{:x}-{:x}\"",
                since_epoch.as_secs(),
                since_epoch.subsec_nanos(),
                metadata.len(),
                identity(metadata)
            ),
            last_modified: modified
                .map(|_| UNIX_EPOCH + Duration::from_secs(since_epoch.as_secs())),
        }
    }

    /// Validators for a representation made from a file with these
    /// validators: the tag gains `-suffix` (so each representation has
    /// its own), and is weak when `weak`.
    pub fn variant(&self, suffix: &str, weak: bool) -> Validators {
        let opaque = opaque(&self.etag);
        let prefix = if weak { "W/" } else { "" };
        Validators {
            etag: format!("{prefix}\"{opaque}-{suffix}\""),
            last_modified: self.last_modified,
        }
    }

    /// Validators of generated content (a listing): a strong tag from the
    /// content's own bytes, and the newest modification time it shows.
    pub fn of_content(content: &[u8], last_modified: Option<SystemTime>) -> Validators {
        let secs = last_modified
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs());
        Validators {
            etag: format!(
                "\"{:x}-{:x}\"",
                fnv1a(content.iter().copied()),
                content.len()
            ),
            last_modified: secs.map(|s| UNIX_EPOCH + Duration::from_secs(s)),
        }
    }

    /// `Last-Modified` as an HTTP date.
    pub fn last_modified_header(&self) -> Option<String> {
        self.last_modified.map(httpdate::fmt_http_date)
    }

    /// True when a GET or HEAD may be answered `304 Not Modified`.
    ///
    /// `If-None-Match` decides when present (weak comparison, `*` matches
    /// any); `If-Modified-Since` is then ignored, as RFC 9110 §13.1.3
    /// requires. Otherwise an `If-Modified-Since` date not older than the
    /// file's modification time means "not modified"; an invalid date is
    /// ignored.
    #[cfg(test)]
    pub fn is_not_modified(&self, headers: &HeaderMap) -> bool {
        evaluate(Some(self), headers, true) == Precondition::NotModified
    }

    /// True when a `Range` header may be honoured: no `If-Range`, or one
    /// that names this version exactly (strong comparison for an entity
    /// tag, the same date for a date). Otherwise the whole file is sent.
    pub fn range_allowed(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers.get(IF_RANGE) else {
            return true;
        };
        let Ok(value) = value.to_str() else {
            return false;
        };
        let value = value.trim();
        if value.starts_with('"') || value.starts_with("W/") {
            // A weak tag never matches strongly.
            return !is_weak(&self.etag) && value == self.etag;
        }
        match (httpdate::parse_http_date(value), self.last_modified) {
            (Ok(date), Some(modified)) => date == modified,
            _ => false,
        }
    }
}

/// Which file this is, and which of its lives: the device and inode
/// numbers, which tell apart two files that exist at once (and a file
/// from the one renamed over it), and the inode's change time, which
/// moves on every write and cannot be set back the way the modification
/// time can (`touch -d`), so an in-place rewrite that restores the
/// modification time and length changes the tag too. Hashed (FNV-1a,
/// 64 bits) to keep the tag short; not meant to hide anything.
///
/// The cost: a tag also changes when nothing in the bytes did (a copy
/// restored from backup, a `chmod`, a new hard link), which costs a cache
/// one full download, never a stale copy. `0` where the platform has no
/// inodes.
fn identity(metadata: &Metadata) -> u64 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let fields = [
            metadata.dev(),
            metadata.ino(),
            metadata.ctime() as u64,
            metadata.ctime_nsec() as u64,
        ];
        fnv1a(fields.iter().flat_map(|field| field.to_le_bytes()))
    }
    #[cfg(not(unix))]
    {
        let _ = metadata;
        0
    }
}

/// The 64-bit FNV-1a hash of `bytes`: tiny and stable across builds and
/// releases, so a restart keeps every tag (std's `DefaultHasher` promises
/// neither).
fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    bytes.into_iter().fold(OFFSET_BASIS, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    })
}

/// How two entity tags are compared (RFC 9110 §8.8.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    /// Both strong and the same opaque part (`If-Match`).
    Strong,
    /// The same opaque part, `W/` ignored (`If-None-Match`).
    Weak,
}

/// True for a weak tag (`W/"..."`).
fn is_weak(etag: &str) -> bool {
    etag.starts_with("W/")
}

/// The opaque part of a tag this module made: without `W/` and quotes.
fn opaque(etag: &str) -> &str {
    let tag = etag.strip_prefix("W/").unwrap_or(etag);
    tag.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(tag)
}

/// True when the list `value` (of `If-Match` or `If-None-Match`) holds
/// `*` or a tag that matches `etag` under `comparison`.
fn matches_list(value: &[u8], etag: &str, comparison: Comparison) -> bool {
    if comparison == Comparison::Strong && is_weak(etag) {
        return false;
    }
    let ours = opaque(etag).as_bytes();
    let mut rest = value;
    loop {
        // Skip list separators and whitespace.
        while let [b' ' | b'\t' | b',', tail @ ..] = rest {
            rest = tail;
        }
        let mut weak = false;
        match rest {
            [] => return false,
            [b'*', ..] => return true,
            [b'W', b'/', tail @ ..] => {
                weak = true;
                rest = tail;
            }
            _ => {}
        }
        // An entity tag is `"` opaque `"`; its opaque part may hold commas.
        let [b'"', tail @ ..] = rest else {
            return false;
        };
        let Some(close) = tail.iter().position(|&b| b == b'"') else {
            return false;
        };
        if &tail[..close] == ours && !(weak && comparison == Comparison::Strong) {
            return true;
        }
        rest = &tail[close + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hangup::http::HeaderValue;

    fn validators() -> Validators {
        Validators {
            etag: "\"abc-1-2\"".to_owned(),
            last_modified: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn fnv1a_matches_the_reference_values() {
        // From the FNV reference test vectors.
        assert_eq!(fnv1a(*b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(*b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(*b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn if_none_match_uses_weak_comparison_over_a_list() {
        let v = validators();
        for value in [
            "\"abc-1-2\"",
            "W/\"abc-1-2\"",
            "\"x\", \"abc-1-2\"",
            "\"a,b\",W/\"abc-1-2\"",
            "*",
        ] {
            assert!(
                v.is_not_modified(&headers(&[("if-none-match", value)])),
                "{value}"
            );
        }
        for value in ["\"abc-1-3\"", "abc-1-2", "\"abc-1-2", ""] {
            assert!(
                !v.is_not_modified(&headers(&[("if-none-match", value)])),
                "{value}"
            );
        }
    }

    #[test]
    fn if_modified_since_compares_seconds_and_yields_to_if_none_match() {
        let v = validators();
        let same = httpdate::fmt_http_date(v.last_modified.unwrap());
        let same: &'static str = same.leak();
        assert!(v.is_not_modified(&headers(&[("if-modified-since", same)])));
        assert!(v.is_not_modified(&headers(&[(
            "if-modified-since",
            "Thu, 01 Jan 2099 00:00:00 GMT"
        )])));
        assert!(!v.is_not_modified(&headers(&[(
            "if-modified-since",
            "Thu, 01 Jan 1970 00:00:00 GMT"
        )])));
        assert!(!v.is_not_modified(&headers(&[("if-modified-since", "yesterday")])));
        // A mismatching If-None-Match wins over a matching date.
        assert!(!v.is_not_modified(&headers(&[
            ("if-none-match", "\"other\""),
            ("if-modified-since", same)
        ])));
    }

    #[test]
    fn if_match_and_if_unmodified_since_fail_with_412_in_rfc_order() {
        let v = validators();
        let eval = |pairs: &[(&'static str, &'static str)], safe| {
            evaluate(Some(&v), &headers(pairs), safe)
        };
        use Precondition::{Failed, NotModified, Proceed};
        assert_eq!(eval(&[("if-match", "\"abc-1-2\"")], false), Proceed);
        assert_eq!(eval(&[("if-match", "\"x\", \"abc-1-2\"")], true), Proceed);
        assert_eq!(eval(&[("if-match", "*")], false), Proceed);
        assert_eq!(eval(&[("if-match", "W/\"abc-1-2\"")], false), Failed);
        assert_eq!(eval(&[("if-match", "\"other\"")], true), Failed);
        let old = "Thu, 01 Jan 1970 00:00:00 GMT";
        let new = "Thu, 01 Jan 2099 00:00:00 GMT";
        assert_eq!(eval(&[("if-unmodified-since", old)], true), Failed);
        assert_eq!(eval(&[("if-unmodified-since", new)], true), Proceed);
        assert_eq!(eval(&[("if-unmodified-since", "garbage")], true), Proceed);
        // §13.2.2: If-Match decides; If-Unmodified-Since is then ignored.
        assert_eq!(
            eval(
                &[("if-match", "\"abc-1-2\""), ("if-unmodified-since", old)],
                true
            ),
            Proceed
        );
        // Step 3 after steps 1-2: a matching If-None-Match is 304 for GET,
        // 412 for other methods.
        assert_eq!(eval(&[("if-none-match", "*")], true), NotModified);
        assert_eq!(eval(&[("if-none-match", "*")], false), Failed);
        assert_eq!(
            eval(&[("if-match", "\"other\""), ("if-none-match", "*")], true),
            Failed
        );
        // If-Modified-Since is for GET and HEAD only.
        assert_eq!(eval(&[("if-modified-since", new)], false), Proceed);
    }

    #[test]
    fn without_a_current_representation_if_match_fails_and_if_none_match_holds() {
        let none = |pairs: &[(&'static str, &'static str)]| evaluate(None, &headers(pairs), false);
        assert_eq!(none(&[("if-match", "*")]), Precondition::Failed);
        assert_eq!(none(&[("if-none-match", "*")]), Precondition::Proceed);
        assert_eq!(
            none(&[("if-unmodified-since", "Thu, 01 Jan 1970 00:00:00 GMT")]),
            Precondition::Proceed
        );
    }

    #[test]
    fn variants_have_their_own_tags_and_weak_ones_match_only_weakly() {
        let v = validators();
        let br = v.variant("br", false);
        assert_eq!(br.etag, "\"abc-1-2-br\"");
        let gz = v.variant("gzip", true);
        assert_eq!(gz.etag, "W/\"abc-1-2-gzip\"");
        let h = |value: &'static str| headers(&[("if-none-match", value)]);
        assert!(gz.is_not_modified(&h("W/\"abc-1-2-gzip\"")));
        assert!(gz.is_not_modified(&h("\"abc-1-2-gzip\"")));
        assert!(!gz.is_not_modified(&h("\"abc-1-2\"")));
        let m = headers(&[("if-match", "W/\"abc-1-2-gzip\"")]);
        assert_eq!(evaluate(Some(&gz), &m, true), Precondition::Failed);
        assert!(!gz.range_allowed(&headers(&[("if-range", "W/\"abc-1-2-gzip\"")])));
    }

    #[test]
    fn content_tags_follow_the_bytes() {
        let a = Validators::of_content(b"page one", None);
        let b = Validators::of_content(b"page two", None);
        assert_ne!(a.etag, b.etag);
        assert_eq!(a, Validators::of_content(b"page one", None));
        assert!(a.etag.starts_with('"') && a.etag.ends_with('"'));
    }

    #[test]
    fn if_range_needs_an_exact_strong_match() {
        let v = validators();
        assert!(v.range_allowed(&HeaderMap::new()));
        assert!(v.range_allowed(&headers(&[("if-range", "\"abc-1-2\"")])));
        assert!(!v.range_allowed(&headers(&[("if-range", "W/\"abc-1-2\"")])));
        assert!(!v.range_allowed(&headers(&[("if-range", "\"other\"")])));
        let same: &'static str = httpdate::fmt_http_date(v.last_modified.unwrap()).leak();
        assert!(v.range_allowed(&headers(&[("if-range", same)])));
        assert!(!v.range_allowed(&headers(&[("if-range", "Thu, 01 Jan 1970 00:00:00 GMT")])));
    }
}
