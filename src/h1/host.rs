//! The `Host` field's grammar (RFC 9112 §3.2, RFC 3986 §3.2.2 and §3.2.3):
//! a server must answer 400 to a request whose `Host` value is invalid, not
//! only to a missing or repeated one.
//!
//! ```text
//! Host        = uri-host [ ":" port ]
//! uri-host    = IP-literal / IPv4address / reg-name
//! IP-literal  = "[" ( IPv6address / IPvFuture ) "]"
//! IPvFuture   = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )
//! reg-name    = *( unreserved / pct-encoded / sub-delims )
//! port        = *DIGIT
//! ```
//!
//! An `IPv4address` is also a `reg-name` (digits and dots), so it needs no
//! rule of its own. `reg-name` may be empty: a request whose target has no
//! authority sends an empty `Host` (RFC 9112 §3.2), and `port` may be
//! empty too (`example.com:`). Whitespace, `/`, `?`, `#`, `@` (no userinfo
//! in `Host`), a `%` not followed by two hex digits, a non-digit port and
//! unbalanced brackets are all outside the grammar.

use std::net::Ipv6Addr;

use super::syntax::is_unreserved_or_sub_delim;

/// Whether `value` (a `Host` field value, optional whitespace around it
/// already removed) matches the grammar in the module docs.
pub(crate) fn is_valid_host(value: &[u8]) -> bool {
    // Nearly every `Host` is a name or an IPv4 address, then perhaps a
    // port: one table-driven pass decides those (about 115 instructions for
    // `127.0.0.1:3940`, measured with bench/callgrind.py; a first version
    // that split at `:` with `memchr` cost 270, and two branch-free
    // variants cost more than this one).
    let name_len = value
        .iter()
        .position(|&b| !REG_NAME[usize::from(b)])
        .unwrap_or(value.len());
    match &value[name_len..] {
        [] => true,
        [b':', port @ ..] if port.iter().all(u8::is_ascii_digit) => true,
        _ => is_valid_host_in_general(value),
    }
}

/// [`is_valid_host`] for what its fast pass does not decide: a
/// percent-encoded name, an IP literal, or something invalid.
fn is_valid_host_in_general(value: &[u8]) -> bool {
    let (host, port) = match value.first() {
        Some(b'[') => {
            let Some(close) = memchr::memchr(b']', value) else {
                return false;
            };
            if !is_ip_literal_inner(&value[1..close]) {
                return false;
            }
            (&value[..=close], &value[close + 1..])
        }
        _ => match memchr::memchr(b':', value) {
            Some(colon) => value.split_at(colon),
            None => (value, &[][..]),
        },
    };
    let port_ok = match port {
        [] => true,
        [b':', digits @ ..] => digits.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    port_ok && (host.first() == Some(&b'[') || is_reg_name(host))
}

/// `*( unreserved / pct-encoded / sub-delims )`.
fn is_reg_name(name: &[u8]) -> bool {
    let mut rest = name;
    while let Some((&byte, tail)) = rest.split_first() {
        rest = if byte == b'%' {
            match tail {
                [hi, lo, tail @ ..] if hi.is_ascii_hexdigit() && lo.is_ascii_hexdigit() => tail,
                _ => return false,
            }
        } else if REG_NAME[usize::from(byte)] {
            tail
        } else {
            return false;
        };
    }
    true
}

/// What lies between an IP-literal's brackets: an IPv6 address or an
/// `IPvFuture`.
fn is_ip_literal_inner(inner: &[u8]) -> bool {
    if let [b'v' | b'V', rest @ ..] = inner {
        let Some(dot) = memchr::memchr(b'.', rest) else {
            return false;
        };
        let (version, tail) = (&rest[..dot], &rest[dot + 1..]);
        return !version.is_empty()
            && version.iter().all(u8::is_ascii_hexdigit)
            && !tail.is_empty()
            && tail
                .iter()
                .all(|&b| b == b':' || (b != b'%' && REG_NAME[usize::from(b)]));
    }
    // RFC 3986's IPv6address is what `Ipv6Addr` parses (both take the
    // embedded IPv4 form, neither a zone identifier).
    std::str::from_utf8(inner).is_ok_and(|text| text.parse::<Ipv6Addr>().is_ok())
}

/// unreserved and sub-delims (RFC 3986 §2.2, §2.3); `%` is handled apart.
static REG_NAME: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = is_unreserved_or_sub_delim(c);
        b += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn valid_and_invalid_hosts() {
        let valid = [
            "",
            "example.com",
            "example.com:8080",
            "example.com:",
            "127.0.0.1",
            "127.0.0.1:80",
            "localhost:0",
            "[::1]",
            "[::1]:8080",
            "[2001:db8::7]:",
            "[::ffff:192.0.2.1]",
            "[v1.fe80::a+en1]",
            "xn--caf-dma.example",
            "a%20b",
            "sub_domain.example",
            "!$&'()*+,;=",
            "~-._",
            "example.com:99999",
            // Empty reg-name, empty port: odd, but inside the grammar.
            ":",
        ];
        let invalid = [
            "a b",
            "a/b",
            "a?b",
            "a#b",
            "user@example.com",
            "user:pass@example.com",
            "example.com:x1",
            "example.com:80:81",
            "example.com:8 0",
            "[::1",
            "::1]",
            "[::1]x",
            "[::1]:x",
            "[]",
            "[::g]",
            "[192.0.2.1]",
            "[v.x]",
            "[v1.]",
            "[vz.x]",
            "[fe80::1%25en0]",
            "a%2",
            "a%zz",
            "caf\u{e9}.example",
            "a\tb",
            "a\"b",
            "a[b",
            "a]b",
            "a<b",
            "a\\b",
        ];
        for host in valid {
            assert!(is_valid_host(host.as_bytes()), "refused {host:?}");
        }
        for host in invalid {
            assert!(!is_valid_host(host.as_bytes()), "accepted {host:?}");
        }
    }

    /// A `reg-name` (or IPv4 address) from the grammar's own alphabet.
    fn reg_name() -> impl Strategy<Value = String> {
        "([a-zA-Z0-9._~!$&'()*+,;=-]|%[0-9a-fA-F]{2}){0,20}"
    }

    fn port() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            "[0-9]{0,6}".prop_map(|p| format!(":{p}"))
        ]
    }

    fn ipv6() -> impl Strategy<Value = String> {
        any::<[u16; 8]>().prop_map(|segments| Ipv6Addr::from(segments).to_string())
    }

    proptest! {
        #[test]
        fn hosts_from_the_grammar_are_accepted(
            host in prop_oneof![reg_name(), ipv6().prop_map(|a| format!("[{a}]"))],
            port in port(),
        ) {
            let value = format!("{host}{port}");
            prop_assert!(is_valid_host(value.as_bytes()), "{value:?}");
        }

        #[test]
        fn a_byte_outside_the_grammar_is_refused(
            host in reg_name(),
            port in port(),
            at in any::<prop::sample::Index>(),
            bad in prop::sample::select(&b" \t/?#@\"<>\\^`{|}\x00\x7f\x80\xff"[..]),
        ) {
            let mut value = format!("{host}{port}").into_bytes();
            let at = at.index(value.len() + 1);
            value.insert(at, bad);
            prop_assert!(!is_valid_host(&value), "{:?}", String::from_utf8_lossy(&value));
        }

        #[test]
        fn never_panics(value in prop::collection::vec(any::<u8>(), 0..40)) {
            let _ = is_valid_host(&value);
        }
    }
}
