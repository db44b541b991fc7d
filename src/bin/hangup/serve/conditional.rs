//! Validators (`ETag`, `Last-Modified`) and the conditional request
//! headers that use them: `If-None-Match`, `If-Modified-Since` (RFC 9110
//! §13.1.2, §13.1.3) and `If-Range` (§13.1.5).

use std::fs::Metadata;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hangup::http::HeaderMap;
use hangup::http::header::{IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE};

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
    pub fn is_not_modified(&self, headers: &HeaderMap) -> bool {
        if headers.contains_key(IF_NONE_MATCH) {
            return headers
                .get_all(IF_NONE_MATCH)
                .iter()
                .any(|value| matches_any(value.as_bytes(), &self.etag));
        }
        let since = headers
            .get(IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v.trim()).ok());
        match (since, self.last_modified) {
            (Some(since), Some(modified)) => modified <= since,
            _ => false,
        }
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
            return value == self.etag;
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

/// True when the `If-None-Match` list `value` holds `*` or a tag that
/// matches `etag` under weak comparison (the `W/` prefix is ignored).
fn matches_any(value: &[u8], etag: &str) -> bool {
    let ours = etag.as_bytes();
    let ours = &ours[1..ours.len() - 1];
    let mut rest = value;
    loop {
        // Skip list separators and whitespace.
        while let [b' ' | b'\t' | b',', tail @ ..] = rest {
            rest = tail;
        }
        match rest {
            [] => return false,
            [b'*', ..] => return true,
            [b'W', b'/', tail @ ..] => rest = tail,
            _ => {}
        }
        // An entity tag is `"` opaque `"`; its opaque part may hold commas.
        let [b'"', tail @ ..] = rest else {
            return false;
        };
        let Some(close) = tail.iter().position(|&b| b == b'"') else {
            return false;
        };
        if &tail[..close] == ours {
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
