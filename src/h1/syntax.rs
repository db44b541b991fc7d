//! Small pieces of HTTP/1 syntax that the head parser, the field and
//! target records, the `Host` check and the response encoder share: where
//! a part lies in a head, decimal numbers, optional whitespace, RFC 3986's
//! byte classes.

use std::ops::Range;

use crate::error::BadRequest;

/// Where `part`, a slice of `head`, lies in it. A place is two `u32`s: a
/// head is at most 16 MiB (`Config` refuses more), so it always fits.
pub(crate) fn place(head: &[u8], part: &[u8]) -> Result<Range<u32>, BadRequest> {
    let start = part.as_ptr().addr().wrapping_sub(head.as_ptr().addr());
    debug_assert!(
        start
            .checked_add(part.len())
            .is_some_and(|end| end <= head.len()),
        "not a slice of the head"
    );
    let start = u32::try_from(start).map_err(|_| BadRequest::HeadTooLarge)?;
    let len = u32::try_from(part.len()).map_err(|_| BadRequest::HeadTooLarge)?;
    let end = start.checked_add(len).ok_or(BadRequest::HeadTooLarge)?;
    Ok(start..end)
}

/// A place as indices into the head.
pub(crate) fn usize_range(place: &Range<u32>) -> Range<usize> {
    place.start as usize..place.end as usize
}

/// A non-empty run of decimal digits that fits in 64 bits.
pub(crate) fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        if !d.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// Strips optional whitespace (SP / HTAB) from both ends.
pub(crate) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// RFC 3986's unreserved characters and sub-delimiters (§2.2, §2.3): the
/// bytes a reg-name and a path segment both take as is. `const`, for the
/// byte tables built from it.
pub(crate) const fn is_unreserved_or_sub_delim(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c, b'-' | b'.' | b'_' | b'~')
        || matches!(
            c,
            b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
        )
}
