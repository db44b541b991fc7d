//! Version 2 of the PROXY protocol: 16 fixed bytes (signature, version
//! and command, family and transport, length), then as many bytes as the
//! length says: the addresses, then TLVs.
//!
//! Each fixed byte is checked as it arrives; the addresses and TLVs once
//! the whole header is in (the spec: "the receiver must not start to parse
//! an address before the whole address block is received").

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{Addresses, Command, Limits, ProxyError, ProxyHeader, ProxyVersion};

/// How a v2 header starts (spec §2.2): a CR LF CR LF NUL CR LF, `QUIT`,
/// LF; chosen to make HTTP, TLS, SMTP and FTP servers fail on it at once.
pub(super) const SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// The signature, the version and command byte, the family and transport
/// byte, and the 16-bit length of the rest.
const FIXED_BYTES: usize = 16;

/// Addresses and ports of an `INET` (IPv4) header: 4 + 4 + 2 + 2.
const INET_BYTES: usize = 12;

/// Addresses and ports of an `INET6` header: 16 + 16 + 2 + 2.
const INET6_BYTES: usize = 36;

/// The two paths of a `UNIX` header: 108 bytes each.
const UNIX_BYTES: usize = 216;

/// The largest header without TLVs (`UNIX`): a `max_v2_bytes` smaller than
/// this refuses headers the spec allows even without TLVs.
#[cfg(test)]
pub(crate) const SMALLEST_LIMIT_BYTES: usize = FIXED_BYTES + UNIX_BYTES;

/// What the bytes after the fixed part hold, by the family and transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    /// TCP over IPv4: addresses to use, then TLVs.
    TcpV4,
    /// TCP over IPv6: addresses to use, then TLVs.
    TcpV6,
    /// Addresses of this many bytes that the server has no use for (UDP,
    /// `UNIX` sockets), then TLVs.
    Unused(usize),
    /// Nothing known: a `LOCAL` header, or an `UNSPEC` family or
    /// transport. Skipped whole.
    Opaque,
}

impl Block {
    /// Classifies a `PROXY` header's family and transport byte.
    fn of(family_transport: u8) -> Result<Block, ProxyError> {
        let family = family_transport >> 4;
        let transport = family_transport & 0x0F;
        // Values past these are "unspecified and must be rejected".
        if family > 3 || transport > 2 {
            return Err(ProxyError::UnsupportedFamily);
        }
        Ok(match (family, transport) {
            (0, _) | (_, 0) => Block::Opaque,
            (1, 1) => Block::TcpV4,
            (2, 1) => Block::TcpV6,
            // The spec: a receiver falls back to UNSPEC for the valid
            // combinations it does not support.
            (1, _) => Block::Unused(INET_BYTES),
            (2, _) => Block::Unused(INET6_BYTES),
            _ => Block::Unused(UNIX_BYTES),
        })
    }

    /// How many bytes the addresses take.
    fn address_bytes(self) -> usize {
        match self {
            Block::TcpV4 => INET_BYTES,
            Block::TcpV6 => INET6_BYTES,
            Block::Unused(bytes) => bytes,
            Block::Opaque => 0,
        }
    }
}

/// Parses a v2 header from the front of `buf`, which starts with a CR.
/// See [`super::parse`] for the contract.
pub(super) fn parse(
    buf: &[u8],
    limits: &Limits,
) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    let seen = buf.len().min(SIGNATURE.len());
    if buf[..seen] != SIGNATURE[..seen] {
        return Err(ProxyError::NotProxyProtocol);
    }
    let Some(&version_command) = buf.get(12) else {
        return Ok(None);
    };
    if version_command >> 4 != 2 {
        return Err(ProxyError::UnsupportedVersion);
    }
    let command = match version_command & 0x0F {
        0 => Command::Local,
        1 => Command::Proxy,
        _ => return Err(ProxyError::UnsupportedCommand),
    };
    let Some(&family_transport) = buf.get(13) else {
        return Ok(None);
    };
    let block = match command {
        // The spec: the receiver "must use the real connection endpoints
        // and discard the protocol block including the family".
        Command::Local => Block::Opaque,
        Command::Proxy => Block::of(family_transport)?,
    };
    let Some(&[high, low]) = buf.get(14..FIXED_BYTES) else {
        return Ok(None);
    };
    let length = usize::from(u16::from_be_bytes([high, low]));
    let total = FIXED_BYTES + length;
    if total > limits.max_v2_bytes {
        return Err(ProxyError::HeaderTooLarge);
    }
    if length < block.address_bytes() {
        return Err(ProxyError::LengthMismatch);
    }
    let Some(rest) = buf.get(FIXED_BYTES..total) else {
        return Ok(None);
    };
    let addresses = match block {
        Block::Opaque => None,
        Block::Unused(bytes) => {
            check_tlvs(&rest[bytes..])?;
            None
        }
        Block::TcpV4 | Block::TcpV6 => {
            let (addresses, tlvs) = decode_addresses(rest, block)?;
            check_tlvs(tlvs)?;
            Some(addresses)
        }
    };
    let header = ProxyHeader {
        version: ProxyVersion::V2,
        command,
        addresses,
    };
    Ok(Some((header, total)))
}

/// Decodes the addresses at the front of `rest` (at least
/// `block.address_bytes()` long) and returns them with the bytes after.
fn decode_addresses(mut rest: &[u8], block: Block) -> Result<(Addresses, &[u8]), ProxyError> {
    let (source, destination) = if block == Block::TcpV4 {
        let source = Ipv4Addr::from(take::<4>(&mut rest)?);
        let destination = Ipv4Addr::from(take::<4>(&mut rest)?);
        (IpAddr::V4(source), IpAddr::V4(destination))
    } else {
        let source = Ipv6Addr::from(take::<16>(&mut rest)?);
        let destination = Ipv6Addr::from(take::<16>(&mut rest)?);
        (IpAddr::V6(source), IpAddr::V6(destination))
    };
    let source_port = u16::from_be_bytes(take::<2>(&mut rest)?);
    let destination_port = u16::from_be_bytes(take::<2>(&mut rest)?);
    let addresses = Addresses {
        source: SocketAddr::new(source, source_port),
        destination: SocketAddr::new(destination, destination_port),
    };
    Ok((addresses, rest))
}

/// Takes `N` bytes off the front of `rest`. The length was checked
/// against the family before, so the error is for a bug, not for input.
fn take<const N: usize>(rest: &mut &[u8]) -> Result<[u8; N], ProxyError> {
    let (taken, after) = rest
        .split_first_chunk::<N>()
        .ok_or(ProxyError::LengthMismatch)?;
    *rest = after;
    Ok(*taken)
}

/// Checks that `tlvs` is a sequence of whole TLVs: a type byte, a 16-bit
/// big-endian length, that many bytes. Their contents are not read.
fn check_tlvs(mut tlvs: &[u8]) -> Result<(), ProxyError> {
    // At most one turn per 3 bytes of a header the limit bounds.
    while let Some((&[_type, high, low], after)) = tlvs.split_first_chunk::<3>() {
        let length = usize::from(u16::from_be_bytes([high, low]));
        tlvs = after.get(length..).ok_or(ProxyError::BadTlv)?;
    }
    match tlvs {
        [] => Ok(()),
        // One or two bytes: less than a TLV's type and length.
        _ => Err(ProxyError::BadTlv),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A v2 header: the signature, `version_command`, `family_transport`,
    /// the length of `rest`, and `rest`.
    pub(in crate::proxy) fn v2(version_command: u8, family_transport: u8, rest: &[u8]) -> Vec<u8> {
        let length = u16::try_from(rest.len()).unwrap();
        v2_declaring(version_command, family_transport, length, rest)
    }

    /// A v2 header whose length field says `length`, whatever `rest` is.
    pub(in crate::proxy) fn v2_declaring(
        version_command: u8,
        family_transport: u8,
        length: u16,
        rest: &[u8],
    ) -> Vec<u8> {
        let mut header = SIGNATURE.to_vec();
        header.extend_from_slice(&[version_command, family_transport]);
        header.extend_from_slice(&length.to_be_bytes());
        header.extend_from_slice(rest);
        header
    }

    /// The address block of TCP over IPv4.
    pub(in crate::proxy) fn inet(
        source: [u8; 4],
        destination: [u8; 4],
        ports: [u16; 2],
    ) -> Vec<u8> {
        let mut block = [source, destination].concat();
        block.extend_from_slice(&ports[0].to_be_bytes());
        block.extend_from_slice(&ports[1].to_be_bytes());
        block
    }

    /// The address block of TCP over IPv6.
    pub(in crate::proxy) fn inet6(
        source: Ipv6Addr,
        destination: Ipv6Addr,
        ports: [u16; 2],
    ) -> Vec<u8> {
        let mut block = [source.octets(), destination.octets()].concat();
        block.extend_from_slice(&ports[0].to_be_bytes());
        block.extend_from_slice(&ports[1].to_be_bytes());
        block
    }

    /// One TLV.
    pub(in crate::proxy) fn tlv(kind: u8, value: &[u8]) -> Vec<u8> {
        let mut tlv = vec![kind];
        tlv.extend_from_slice(&u16::try_from(value.len()).unwrap().to_be_bytes());
        tlv.extend_from_slice(value);
        tlv
    }

    fn parsed(header: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
        parse(header, &Limits::default())
    }

    fn proxied(source: &str, destination: &str) -> ProxyHeader {
        ProxyHeader {
            version: ProxyVersion::V2,
            command: Command::Proxy,
            addresses: Some(Addresses {
                source: source.parse().unwrap(),
                destination: destination.parse().unwrap(),
            }),
        }
    }

    const LOCAL: ProxyHeader = ProxyHeader {
        version: ProxyVersion::V2,
        command: Command::Local,
        addresses: None,
    };

    const UNUSED: ProxyHeader = ProxyHeader {
        version: ProxyVersion::V2,
        command: Command::Proxy,
        addresses: None,
    };

    #[test]
    fn valid_headers_give_their_addresses_and_length() {
        let v4 = inet([192, 0, 2, 1], [198, 51, 100, 7], [56324, 443]);
        let v6 = inet6(
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
            [1, 65535],
        );
        let tlvs = [
            tlv(0x01, b"h2"),
            tlv(0x02, b"example.com"),
            tlv(0x04, &[]),
            tlv(0x05, &[7; 128]),
            tlv(0xE0, &[0; 300]),
        ]
        .concat();
        let cases = [
            (
                v2(0x21, 0x11, &v4),
                proxied("192.0.2.1:56324", "198.51.100.7:443"),
            ),
            (
                v2(0x21, 0x21, &v6),
                proxied("[2001:db8::1]:1", "[2001:db8::2]:65535"),
            ),
            (
                v2(0x21, 0x11, &[&v4[..], &tlvs].concat()),
                proxied("192.0.2.1:56324", "198.51.100.7:443"),
            ),
            (
                v2(0x21, 0x21, &[&v6[..], &tlv(0x03, &[0; 4])].concat()),
                proxied("[2001:db8::1]:1", "[2001:db8::2]:65535"),
            ),
            // LOCAL: no addresses, whatever the family and the bytes say.
            (v2(0x20, 0x00, &[]), LOCAL),
            (v2(0x20, 0x11, &v4), LOCAL),
            (v2(0x20, 0xFF, &[1, 2]), LOCAL),
            // PROXY with families and transports there is no use for.
            (v2(0x21, 0x00, &[]), UNUSED),
            (v2(0x21, 0x00, &[9; 40]), UNUSED),
            (v2(0x21, 0x10, &[9; 5]), UNUSED),
            (v2(0x21, 0x01, &[9; 5]), UNUSED),
            (v2(0x21, 0x12, &v4), UNUSED),
            (v2(0x21, 0x22, &[&v6[..], &tlvs].concat()), UNUSED),
            (v2(0x21, 0x31, &[b'/'; UNIX_BYTES]), UNUSED),
            (
                v2(0x21, 0x32, &[&[0; UNIX_BYTES][..], &tlv(1, b"x")].concat()),
                UNUSED,
            ),
        ];
        for (header, expected) in cases {
            assert_eq!(
                parsed(&header),
                Ok(Some((expected, header.len()))),
                "{header:02x?}"
            );
        }
    }

    #[test]
    fn invalid_headers_are_refused() {
        use ProxyError::*;
        let v4 = inet([10, 0, 0, 1], [10, 0, 0, 2], [1, 2]);
        let mut bad_signature = v2(0x21, 0x11, &v4);
        bad_signature[11] = b'\r';
        let cases = [
            (bad_signature, NotProxyProtocol),
            (v2(0x11, 0x11, &v4), UnsupportedVersion),
            (v2(0x31, 0x11, &v4), UnsupportedVersion),
            (v2(0x01, 0x11, &v4), UnsupportedVersion),
            (v2(0x22, 0x11, &v4), UnsupportedCommand),
            (v2(0x2F, 0x11, &v4), UnsupportedCommand),
            (v2(0x21, 0x41, &v4), UnsupportedFamily),
            (v2(0x21, 0xF1, &v4), UnsupportedFamily),
            (v2(0x21, 0x13, &v4), UnsupportedFamily),
            (v2(0x21, 0x11, &v4[..11]), LengthMismatch),
            (v2(0x21, 0x11, &[]), LengthMismatch),
            (v2(0x21, 0x21, &[0; 35]), LengthMismatch),
            (v2(0x21, 0x12, &[0; 11]), LengthMismatch),
            (v2(0x21, 0x31, &[0; UNIX_BYTES - 1]), LengthMismatch),
            (v2(0x21, 0x11, &[&v4[..], &[1]].concat()), BadTlv),
            (v2(0x21, 0x11, &[&v4[..], &[1, 0]].concat()), BadTlv),
            (v2(0x21, 0x11, &[&v4[..], &[1, 0, 1]].concat()), BadTlv),
            (
                v2(
                    0x21,
                    0x11,
                    &[&v4[..], &tlv(1, b"ok"), &[2, 0, 5, 1]].concat(),
                ),
                BadTlv,
            ),
            (
                v2(0x21, 0x31, &[&[0; UNIX_BYTES][..], &[4]].concat()),
                BadTlv,
            ),
            (v2(0x21, 0x11, &[0; 4096 - FIXED_BYTES + 1]), HeaderTooLarge),
            (v2_declaring(0x21, 0x11, u16::MAX, &v4), HeaderTooLarge),
            (v2_declaring(0x20, 0x00, u16::MAX, &[]), HeaderTooLarge),
        ];
        for (header, error) in cases {
            assert_eq!(parsed(&header), Err(error), "{header:02x?}");
        }
    }

    #[test]
    fn the_limit_counts_the_whole_header_and_is_checked_from_the_length_alone() {
        let limits = Limits { max_v2_bytes: 100 };
        let v4 = inet([10, 0, 0, 1], [10, 0, 0, 2], [1, 2]);
        let fits = v2(
            0x21,
            0x11,
            &[&v4[..], &tlv(4, &[0; 100 - 16 - 12 - 3])].concat(),
        );
        assert_eq!(fits.len(), 100);
        assert!(matches!(parse(&fits, &limits), Ok(Some((_, 100)))));
        let over = v2(
            0x21,
            0x11,
            &[&v4[..], &tlv(4, &[0; 100 - 16 - 12 - 2])].concat(),
        );
        assert_eq!(
            parse(&over[..FIXED_BYTES], &limits),
            Err(ProxyError::HeaderTooLarge)
        );
        assert_eq!(
            parse(&over[..FIXED_BYTES - 1], &limits),
            Ok(None),
            "the length is not known yet"
        );
    }

    #[test]
    fn each_fixed_byte_is_checked_as_it_arrives() {
        use ProxyError::*;
        let cases: &[(&[u8], Option<ProxyError>)] = &[
            (b"\r", None),
            (b"\r\n\r\n\0\r\nQUI", None),
            (b"\r\n\r\n\0\r\nQUIT\n", None),
            (b"\r\r", Some(NotProxyProtocol)),
            (b"\r\n\r\n\0\r\nQUIX", Some(NotProxyProtocol)),
            (b"\r\n\r\n\0\r\nQUIT\n\x11", Some(UnsupportedVersion)),
            (b"\r\n\r\n\0\r\nQUIT\n\x23", Some(UnsupportedCommand)),
            (b"\r\n\r\n\0\r\nQUIT\n\x21", None),
            (b"\r\n\r\n\0\r\nQUIT\n\x21\x51", Some(UnsupportedFamily)),
            (b"\r\n\r\n\0\r\nQUIT\n\x20\x51", None),
            (b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00", None),
            (
                b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0B",
                Some(LengthMismatch),
            ),
            (b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0C", None),
            (
                b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x10\x00",
                Some(HeaderTooLarge),
            ),
        ];
        for &(start, error) in cases {
            match error {
                None => assert_eq!(parsed(start), Ok(None), "{start:02x?}"),
                Some(error) => assert_eq!(parsed(start), Err(error), "{start:02x?}"),
            }
        }
    }
}
