//! Version 1 of the PROXY protocol: one line of ASCII text,
//! `PROXY SP protocol SP source SP destination SP source-port SP
//! destination-port CRLF`, or `PROXY SP UNKNOWN` and anything up to the
//! CRLF.
//!
//! The line is checked field by field as it arrives: a complete field
//! (followed by a space or the CR) fully, the last, partial one for what
//! it can still become (its characters and length). Fields are checked in
//! order, so the error reported is the first one in the line, whatever
//! arrives after it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{Addresses, Command, ProxyError, ProxyHeader, ProxyVersion};

/// How a v1 line starts, its space included.
pub(super) const SIGNATURE: &[u8] = b"PROXY ";

/// The longest v1 line, CRLF included: `PROXY UNKNOWN` with two full IPv6
/// addresses and ports (spec §2.1). The CR is at index 105 at the latest.
pub(crate) const MAX_LINE_BYTES: usize = 107;

/// The longest IPv4 address in text: `255.255.255.255`.
const MAX_IPV4_TEXT_BYTES: usize = 15;

/// The longest IPv6 address in text that `std` parses:
/// `ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255` (`INET6_ADDRSTRLEN` − 1).
const MAX_IPV6_TEXT_BYTES: usize = 45;

/// The longest port in text: `65535`.
const MAX_PORT_TEXT_BYTES: usize = 5;

/// The header of a v1 line whose protocol is `UNKNOWN`.
const UNKNOWN: ProxyHeader = ProxyHeader {
    version: ProxyVersion::V1,
    command: Command::Proxy,
    addresses: None,
};

/// The transport and family a v1 line announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// `TCP4`: TCP over IPv4.
    Tcp4,
    /// `TCP6`: TCP over IPv6.
    Tcp6,
    /// `UNKNOWN`: the proxy cannot say; the rest of the line is ignored.
    Unknown,
}

/// Parses a v1 line from the front of `buf`, which starts with `P`. See
/// [`super::parse`] for the contract.
pub(super) fn parse(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    let seen = buf.len().min(SIGNATURE.len());
    if buf[..seen] != SIGNATURE[..seen] {
        return Err(ProxyError::NotProxyProtocol);
    }
    if seen < SIGNATURE.len() {
        return Ok(None);
    }
    // The CR may be at index `MAX_LINE_BYTES - 2` at the latest: the line
    // is searched no further.
    let window = &buf[SIGNATURE.len()..buf.len().min(MAX_LINE_BYTES - 1)];
    let Some(end) = memchr::memchr2(b'\r', b'\n', window) else {
        check(window, false)?;
        if SIGNATURE.len() + window.len() == MAX_LINE_BYTES - 1 {
            return Err(ProxyError::V1LineTooLong);
        }
        return Ok(None);
    };
    let text = &window[..end];
    let ending = &buf[SIGNATURE.len() + end..];
    if ending[0] == b'\n' {
        // A bare LF: the text before it is checked first (it came first).
        check(text, false)?;
        return Err(ProxyError::V1Malformed);
    }
    let header = check(text, true)?;
    match (ending.get(1), header) {
        (None, _) => Ok(None),
        // `check` returns a header for every complete line it accepts.
        (Some(b'\n'), Some(header)) => Ok(Some((header, SIGNATURE.len() + end + 2))),
        (Some(_), _) => Err(ProxyError::V1Malformed),
    }
}

/// Checks the line's text after `PROXY ` (without the CRLF); `complete`
/// says the CR follows it. Returns the header once the line is complete.
fn check(text: &[u8], complete: bool) -> Result<Option<ProxyHeader>, ProxyError> {
    let mut fields = Fields {
        rest: Some(text),
        complete,
    };
    let Some(protocol) = protocol(fields.next())? else {
        return Ok(None);
    };
    if protocol == Protocol::Unknown {
        // The spec: "the receiver must ignore anything presented before
        // the CRLF is found".
        return Ok(complete.then_some(UNKNOWN));
    }
    let source = address(fields.next(), protocol)?;
    let destination = address(fields.next(), protocol)?;
    let source_port = port(fields.next())?;
    let destination_port = port(fields.next())?;
    if let Field::Whole(_) | Field::Partial(_) = fields.next() {
        // A space after the destination port.
        return Err(ProxyError::V1Malformed);
    }
    let (Some(source), Some(destination), Some(source_port), Some(destination_port)) =
        (source, destination, source_port, destination_port)
    else {
        return Ok(None);
    };
    Ok(Some(ProxyHeader {
        version: ProxyVersion::V1,
        command: Command::Proxy,
        addresses: Some(Addresses {
            source: SocketAddr::new(source, source_port),
            destination: SocketAddr::new(destination, destination_port),
        }),
    }))
}

/// One space-separated field of the line, as far as it arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field<'a> {
    /// Followed by a space or the CR: all of it is here.
    Whole(&'a [u8]),
    /// The last bytes received, which more bytes may extend.
    Partial(&'a [u8]),
    /// Not arrived yet.
    Pending,
    /// The line ended before it.
    Missing,
}

/// The fields of the line's text, in order.
struct Fields<'a> {
    /// The text after the fields already taken; `None` once the last one
    /// was.
    rest: Option<&'a [u8]>,
    /// The CR follows the text.
    complete: bool,
}

impl<'a> Fields<'a> {
    /// The next field, or whether the line may still bring it.
    fn next(&mut self) -> Field<'a> {
        let Some(rest) = self.rest else {
            return if self.complete {
                Field::Missing
            } else {
                Field::Pending
            };
        };
        match memchr::memchr(b' ', rest) {
            Some(space) => {
                self.rest = Some(&rest[space + 1..]);
                Field::Whole(&rest[..space])
            }
            None => {
                self.rest = None;
                if self.complete {
                    Field::Whole(rest)
                } else {
                    Field::Partial(rest)
                }
            }
        }
    }
}

/// The protocol field: `TCP4`, `TCP6` or `UNKNOWN`; `None` until whole.
fn protocol(field: Field<'_>) -> Result<Option<Protocol>, ProxyError> {
    const NAMES: [(&[u8], Protocol); 3] = [
        (b"TCP4", Protocol::Tcp4),
        (b"TCP6", Protocol::Tcp6),
        (b"UNKNOWN", Protocol::Unknown),
    ];
    match field {
        Field::Whole(name) => match NAMES.iter().find(|(known, _)| *known == name) {
            Some(&(_, protocol)) => Ok(Some(protocol)),
            None if name.is_empty() => Err(ProxyError::V1Malformed),
            None => Err(ProxyError::UnsupportedFamily),
        },
        Field::Partial(start) => match NAMES.iter().any(|(known, _)| known.starts_with(start)) {
            true => Ok(None),
            false => Err(ProxyError::UnsupportedFamily),
        },
        Field::Pending => Ok(None),
        Field::Missing => Err(ProxyError::V1Malformed),
    }
}

/// An address field of the family `protocol` announced (`TCP4` or
/// `TCP6`); `None` until whole.
fn address(field: Field<'_>, protocol: Protocol) -> Result<Option<IpAddr>, ProxyError> {
    let text = match field {
        Field::Whole([]) | Field::Missing => return Err(ProxyError::V1Malformed),
        Field::Pending => return Ok(None),
        Field::Whole(text) | Field::Partial(text) => text,
    };
    let plausible = if protocol == Protocol::Tcp4 {
        text.len() <= MAX_IPV4_TEXT_BYTES && text.iter().all(|&b| b.is_ascii_digit() || b == b'.')
    } else {
        text.len() <= MAX_IPV6_TEXT_BYTES
            && text
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    };
    if !plausible {
        return Err(ProxyError::V1BadAddress);
    }
    let Field::Whole(_) = field else {
        return Ok(None);
    };
    // Only ASCII digits, hex digits, dots and colons: valid UTF-8.
    let text = std::str::from_utf8(text).map_err(|_| ProxyError::V1BadAddress)?;
    let address = if protocol == Protocol::Tcp4 {
        text.parse::<Ipv4Addr>().map(IpAddr::V4)
    } else {
        text.parse::<Ipv6Addr>().map(IpAddr::V6)
    };
    address.map(Some).map_err(|_| ProxyError::V1BadAddress)
}

/// A port field; `None` until whole.
fn port(field: Field<'_>) -> Result<Option<u16>, ProxyError> {
    let digits = match field {
        Field::Whole([]) | Field::Missing => return Err(ProxyError::V1Malformed),
        Field::Pending => return Ok(None),
        Field::Whole(digits) | Field::Partial(digits) => digits,
    };
    let leading_zero = digits.len() > 1 && digits[0] == b'0';
    if digits.len() > MAX_PORT_TEXT_BYTES || leading_zero {
        return Err(ProxyError::V1BadPort);
    }
    // At most five digits: no overflow in a u32.
    let value = digits.iter().try_fold(0u32, |value, &digit| {
        digit
            .is_ascii_digit()
            .then(|| value * 10 + u32::from(digit - b'0'))
    });
    // Checked on a partial field too: more digits only make it larger.
    let port = value
        .and_then(|value| u16::try_from(value).ok())
        .ok_or(ProxyError::V1BadPort)?;
    Ok(matches!(field, Field::Whole(_)).then_some(port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1(line: &str) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
        parse(line.as_bytes())
    }

    fn addresses(source: &str, destination: &str) -> Option<Addresses> {
        Some(Addresses {
            source: source.parse().unwrap(),
            destination: destination.parse().unwrap(),
        })
    }

    #[test]
    fn valid_lines_give_their_addresses_and_length() {
        let cases = [
            (
                "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",
                addresses("192.168.0.1:56324", "192.168.0.11:443"),
            ),
            (
                "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n",
                addresses("255.255.255.255:65535", "255.255.255.255:65535"),
            ),
            (
                "PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n",
                addresses("0.0.0.0:0", "0.0.0.0:0"),
            ),
            (
                "PROXY TCP6 2001:db8::1 2001:DB8::2 1 8080\r\n",
                addresses("[2001:db8::1]:1", "[2001:db8::2]:8080"),
            ),
            (
                "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff \
                 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
                addresses(
                    "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
                    "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
                ),
            ),
            (
                "PROXY TCP6 ::ffff:192.0.2.1 :: 443 443\r\n",
                addresses("[::ffff:192.0.2.1]:443", "[::]:443"),
            ),
            ("PROXY UNKNOWN\r\n", None),
            ("PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n", None),
            ("PROXY UNKNOWN anything  at all\tgoes\r\n", None),
        ];
        for (line, addresses) in cases {
            let expected = ProxyHeader {
                version: ProxyVersion::V1,
                command: Command::Proxy,
                addresses,
            };
            assert_eq!(v1(line), Ok(Some((expected, line.len()))), "{line:?}");
        }
    }

    #[test]
    fn the_longest_line_the_spec_allows_is_accepted_and_one_more_byte_is_not() {
        let six = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
        let longest = format!("PROXY UNKNOWN {six} {six} 65535 65535\r\n");
        assert_eq!(longest.len(), MAX_LINE_BYTES);
        assert_eq!(v1(&longest), Ok(Some((UNKNOWN, MAX_LINE_BYTES))));

        let longer = format!("PROXY UNKNOWN {six} {six} 65535 655350\r\n");
        assert_eq!(v1(&longer), Err(ProxyError::V1LineTooLong));
        // Decided at the byte where the CR would have to be.
        assert_eq!(v1(&longer[..MAX_LINE_BYTES - 2]), Ok(None));
        assert_eq!(
            v1(&longer[..MAX_LINE_BYTES - 1]),
            Err(ProxyError::V1LineTooLong)
        );
        // A CR one byte too late.
        let late = format!("PROXY UNKNOWN {six} {six} 65535 655350\r");
        assert_eq!(v1(&late), Err(ProxyError::V1LineTooLong));
    }

    #[test]
    fn invalid_lines_are_refused_with_their_first_fault() {
        use ProxyError::*;
        let cases: &[(&str, ProxyError)] = &[
            ("PROXY\r\n", NotProxyProtocol),
            ("PROXy TCP4", NotProxyProtocol),
            ("PROXY \r\n", V1Malformed),
            ("PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", V1Malformed),
            ("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", UnsupportedFamily),
            ("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", UnsupportedFamily),
            ("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", UnsupportedFamily),
            ("PROXY UNKNOWNX\r\n", UnsupportedFamily),
            ("PROXY TCP4\r\n", V1Malformed),
            ("PROXY TCP4 1.2.3.4\r\n", V1Malformed),
            ("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", V1Malformed),
            ("PROXY TCP4 1.2.3.4 5.6.7.8 1 \r\n", V1Malformed),
            ("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", V1Malformed),
            ("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", V1Malformed),
            ("PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", V1Malformed),
            ("PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n", V1BadAddress),
            ("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", V1Malformed),
            ("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", V1Malformed),
            ("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n", V1Malformed),
            ("PROXY UNKNOWN\n", V1Malformed),
            ("PROXY UNKNOWN \n", V1Malformed),
            ("PROXY UNKNOWN\rX", V1Malformed),
            ("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", V1BadAddress),
            ("PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", V1BadAddress),
            ("PROXY TCP4 256.2.3.4 5.6.7.8 1 2\r\n", V1BadAddress),
            ("PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n", V1BadAddress),
            ("PROXY TCP4 ::1 ::1 1 2\r\n", V1BadAddress),
            ("PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n", V1BadAddress),
            ("PROXY TCP6 ::1 fe80::1%eth0 1 2\r\n", V1BadAddress),
            ("PROXY TCP6 ::1 1::2::3 1 2\r\n", V1BadAddress),
            ("PROXY TCP6 ::1 00000::3 1 2\r\n", V1BadAddress),
            ("PROXY TCP6 [::1] ::1 1 2\r\n", V1BadAddress),
            ("PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", V1BadPort),
            ("PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", V1BadPort),
            ("PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", V1BadPort),
            ("PROXY TCP4 1.2.3.4 5.6.7.8 00 2\r\n", V1BadPort),
            ("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", V1BadPort),
            ("PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n", V1BadPort),
            ("PROXY TCP4 1.2.3.4 5.6.7.8 1 100000\r\n", V1BadPort),
            ("PROXY TCP4 1.2.3.4 5.6.7.8 1 0x50\r\n", V1BadPort),
            ("PROXY TCP4 1.2.3.4 5.6.7.8 1 2a\r\n", V1BadPort),
            // The first fault in the line wins.
            ("PROXY TCP4 1.2.3.x 5.6.7.8 1 99999\n", V1BadAddress),
            ("PROXY TCP4 1.2.3.4 5.6.7.8 99999 x\n", V1BadPort),
        ];
        for &(line, error) in cases {
            assert_eq!(v1(line), Err(error), "{line:?}");
        }
    }

    #[test]
    fn a_field_is_refused_as_soon_as_it_cannot_become_valid() {
        use ProxyError::*;
        // `None`: the start is still valid, more bytes may complete it.
        let cases: &[(&str, Option<ProxyError>)] = &[
            ("P", None),
            ("PROXY", None),
            ("PROXY T", None),
            ("PROXY X", Some(UnsupportedFamily)),
            ("PROXY TCP4 1.2.3.4", None),
            ("PROXY TCP4 1.2.3.4x", Some(V1BadAddress)),
            ("PROXY TCP4 1111.1111.1111.1", Some(V1BadAddress)),
            ("PROXY TCP6 ::1", None),
            ("PROXY TCP6 ::g", Some(V1BadAddress)),
            ("PROXY TCP4 1.2.3.4 5.6.7.8 0", None),
            ("PROXY TCP4 1.2.3.4 5.6.7.8 01", Some(V1BadPort)),
            ("PROXY TCP4 1.2.3.4 5.6.7.8 6553", None),
            ("PROXY TCP4 1.2.3.4 5.6.7.8 65536", Some(V1BadPort)),
            ("PROXY TCP4 1.2.3.4 5.6.7.8 1 2", None),
            ("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 ", Some(V1Malformed)),
            ("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r", None),
            ("PROXY UNKNOWN whatever", None),
        ];
        for &(start, error) in cases {
            match error {
                None => assert_eq!(v1(start), Ok(None), "{start:?}"),
                Some(error) => assert_eq!(v1(start), Err(error), "{start:?}"),
            }
        }
    }
}
