//! The `Range` request header (RFC 9110 §14.2): one byte range, or the
//! whole file.
//!
//! Only a single range is served. A header this server does not use (an
//! other unit, several ranges, a syntax error, `5-2`) is ignored and the
//! whole file is sent with 200, which RFC 9110 §14.2 allows ("a server
//! MAY ignore the Range header field"). Multipart `byteranges` responses
//! are rare enough in practice not to be worth their weight here.
//!
//! An empty file has no byte for a range to start at, so `0-0`, `0-` and
//! `-0` are unsatisfiable (416, `Content-Range: bytes */0`), as RFC 9110
//! §14.1.2 defines it. A suffix range with a non-zero length (`-5`) is
//! satisfiable by the same definition, and selects the whole file, which
//! is empty; a `206` cannot say so (`Content-Range` needs a first byte at
//! or before the last one, §14.4), so that range is ignored: 200 with the
//! empty file, the same bytes a 206 would have carried.

/// What to send for a `Range` header, given the file's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// The whole file (no header, or one that is ignored): 200.
    Full,
    /// Bytes `start..=end` of the file: 206.
    Partial {
        /// The first byte.
        start: u64,
        /// The last byte, inclusive (as in `Content-Range`).
        end: u64,
    },
    /// A syntactically valid range no byte of the file satisfies: 416
    /// with `Content-Range: bytes */len`.
    Unsatisfiable,
}

impl RangeRequest {
    /// Interprets `header` (the `Range` value, if any) for a file of `len`
    /// bytes.
    pub fn parse(header: Option<&[u8]>, len: u64) -> RangeRequest {
        let Some(value) = header.and_then(|h| std::str::from_utf8(h).ok()) else {
            return RangeRequest::Full;
        };
        let value = value.trim();
        let Some((unit, set)) = value.split_once('=') else {
            return RangeRequest::Full;
        };
        if !unit.eq_ignore_ascii_case("bytes") {
            return RangeRequest::Full;
        }
        // `1#range-spec`: list syntax allows empty elements and OWS.
        let mut specs = set.split(',').map(str::trim).filter(|s| !s.is_empty());
        let (Some(spec), None) = (specs.next(), specs.next()) else {
            return RangeRequest::Full;
        };
        let Some((first, last)) = spec.split_once('-') else {
            return RangeRequest::Full;
        };
        match (digits(first), digits(last)) {
            // `-N`: the last N bytes.
            (None, Some(suffix)) if first.is_empty() => {
                if suffix == 0 {
                    // §14.1.2: only a non-zero suffix-length is satisfiable.
                    RangeRequest::Unsatisfiable
                } else if len == 0 {
                    // Satisfiable, but the whole file is no bytes, which
                    // no `Content-Range` can describe: see the module docs.
                    RangeRequest::Full
                } else {
                    RangeRequest::Partial {
                        start: len.saturating_sub(suffix),
                        end: len - 1,
                    }
                }
            }
            // `N-`: from N to the end.
            (Some(start), None) if last.is_empty() => from(start, len.saturating_sub(1), len),
            // `N-M`, M clamped to the last byte.
            (Some(start), Some(end)) if end >= start => from(start, end, len),
            _ => RangeRequest::Full,
        }
    }
}

/// Bytes `start..=end`, clamped to the file, or unsatisfiable when `start`
/// is past its end.
fn from(start: u64, end: u64, len: u64) -> RangeRequest {
    if start >= len {
        RangeRequest::Unsatisfiable
    } else {
        RangeRequest::Partial {
            start,
            end: end.min(len - 1),
        }
    }
}

/// A non-empty run of ASCII digits, saturating at `u64::MAX` (a position
/// that large is past any file's end, which is what it means).
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0u64, |n, b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

#[cfg(test)]
mod tests {
    use super::RangeRequest::{self, Full, Partial, Unsatisfiable};

    fn parse(header: &str, len: u64) -> RangeRequest {
        RangeRequest::parse(Some(header.as_bytes()), len)
    }

    #[test]
    fn single_ranges() {
        assert_eq!(parse("bytes=0-9", 100), Partial { start: 0, end: 9 });
        assert_eq!(parse("bytes=10-", 100), Partial { start: 10, end: 99 });
        assert_eq!(parse("bytes=-5", 100), Partial { start: 95, end: 99 });
        assert_eq!(parse("bytes=90-1000", 100), Partial { start: 90, end: 99 });
        assert_eq!(parse("bytes=-1000", 100), Partial { start: 0, end: 99 });
        assert_eq!(parse("BYTES=1-1", 100), Partial { start: 1, end: 1 });
        assert_eq!(parse(" bytes=1-2, ", 100), Partial { start: 1, end: 2 });
        assert_eq!(
            parse("bytes=0-99999999999999999999999", 100),
            Partial { start: 0, end: 99 }
        );
    }

    #[test]
    fn unsatisfiable_ranges() {
        assert_eq!(parse("bytes=100-", 100), Unsatisfiable);
        assert_eq!(parse("bytes=100-200", 100), Unsatisfiable);
        assert_eq!(parse("bytes=-0", 100), Unsatisfiable);
        assert_eq!(parse("bytes=0-", 0), Unsatisfiable);
        assert_eq!(parse("bytes=0-0", 0), Unsatisfiable);
        assert_eq!(parse("bytes=-0", 0), Unsatisfiable);
        assert_eq!(parse("bytes=99999999999999999999999-", 100), Unsatisfiable);
    }

    #[test]
    fn a_suffix_range_of_an_empty_file_is_the_whole_empty_file() {
        assert_eq!(parse("bytes=-5", 0), Full);
        assert_eq!(parse("bytes=-1", 0), Full);
    }

    #[test]
    fn ignored_headers_mean_the_whole_file() {
        assert_eq!(RangeRequest::parse(None, 100), Full);
        for header in [
            "",
            "bytes",
            "bytes=",
            "items=0-9",
            "bytes=0-1,5-6",
            "bytes=5-2",
            "bytes=a-b",
            "bytes=-",
            "bytes=+1-2",
            "bytes=1--2",
            "bytes = 0-9",
        ] {
            assert_eq!(parse(header, 100), Full, "{header:?}");
        }
    }

    proptest::proptest! {
        /// A partial range always lies inside the file.
        #[test]
        fn partial_ranges_are_inside_the_file(
            header in "bytes=[0-9]{0,3}-[0-9]{0,3}",
            len in 0u64..2000,
        ) {
            if let Partial { start, end } = parse(&header, len) {
                proptest::prop_assert!(start <= end && end < len);
            }
        }
    }
}
