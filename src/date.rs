//! The `Date` header value, formatted at most once per second per thread.
//!
//! Formatting an HTTP date costs about as much as the rest of a small
//! response's head; a thread-local cache keyed by the Unix second makes it a
//! read of the kernel's coarse clock (see [`crate::sys::unix_seconds_coarse`])
//! and a 29-byte copy.

use std::cell::RefCell;
use std::time::{Duration, UNIX_EPOCH};

/// `Sun, 06 Nov 1994 08:49:37 GMT` is always 29 bytes (RFC 9110 §5.6.7).
const DATE_LEN: usize = 29;

struct Cache {
    second: u64,
    value: [u8; DATE_LEN],
}

thread_local! {
    static CACHE: RefCell<Cache> = const { RefCell::new(Cache { second: u64::MAX, value: [0; DATE_LEN] }) };
}

/// Appends the current date in IMF-fixdate form to `out`.
pub(crate) fn append_now(out: &mut Vec<u8>) {
    let second = crate::sys::unix_seconds_coarse();
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.second != second {
            let formatted = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(second));
            if formatted.len() == DATE_LEN {
                cache.value.copy_from_slice(formatted.as_bytes());
                cache.second = second;
            } else {
                // Years past 9999 format longer; never cache those.
                out.extend_from_slice(formatted.as_bytes());
                return;
            }
        }
        out.extend_from_slice(&cache.value);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_an_imf_fixdate() {
        let mut out = Vec::new();
        append_now(&mut out);
        let text = std::str::from_utf8(&out).unwrap();
        assert_eq!(text.len(), DATE_LEN);
        assert!(text.ends_with(" GMT"), "{text}");
        assert!(httpdate::parse_http_date(text).is_ok());
    }

    #[test]
    fn the_coarse_clock_agrees_with_the_system_clock() {
        let mut out = Vec::new();
        let before = std::time::SystemTime::now();
        append_now(&mut out);
        let after = std::time::SystemTime::now();
        let date = httpdate::parse_http_date(std::str::from_utf8(&out).unwrap()).unwrap();
        // Whole seconds, lagging by at most one tick (≤ 10 ms): within
        // [before - 2 s, after].
        assert!(date <= after, "{date:?} is after {after:?}");
        assert!(
            date + Duration::from_secs(2) >= before,
            "{date:?} is before {before:?}"
        );
    }
}
