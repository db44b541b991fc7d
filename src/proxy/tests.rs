//! Tests of [`parse`] across both versions: every split point, what is
//! left for the caller, early refusal, and property tests.

use std::net::{Ipv6Addr, SocketAddr};

use proptest::prelude::*;

use super::v2::tests::{inet, inet6, tlv, v2};
use super::*;

fn parsed(input: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    parse(input, &Limits::default())
}

/// Valid headers of both versions, with what they parse to.
fn valid_headers() -> Vec<(Vec<u8>, ProxyHeader)> {
    let v1 = |line: &str, addresses| {
        let header = ProxyHeader {
            version: ProxyVersion::V1,
            command: Command::Proxy,
            addresses,
        };
        (line.as_bytes().to_vec(), header)
    };
    let v2_proxy = |bytes: Vec<u8>, addresses| {
        let header = ProxyHeader {
            version: ProxyVersion::V2,
            command: Command::Proxy,
            addresses,
        };
        (bytes, header)
    };
    let pair = |source: &str, destination: &str| {
        Some(Addresses {
            source: source.parse().unwrap(),
            destination: destination.parse().unwrap(),
        })
    };
    let local = ProxyHeader {
        version: ProxyVersion::V2,
        command: Command::Local,
        addresses: None,
    };
    let v4 = inet([203, 0, 113, 9], [10, 1, 2, 3], [40000, 8080]);
    let v6 = inet6(Ipv6Addr::LOCALHOST, Ipv6Addr::UNSPECIFIED, [0, 80]);
    vec![
        v1(
            "PROXY TCP4 203.0.113.9 10.1.2.3 40000 8080\r\n",
            pair("203.0.113.9:40000", "10.1.2.3:8080"),
        ),
        v1(
            "PROXY TCP6 2001:db8::cafe ::1 443 8443\r\n",
            pair("[2001:db8::cafe]:443", "[::1]:8443"),
        ),
        v1("PROXY UNKNOWN\r\n", None),
        v1("PROXY UNKNOWN ::1 ::2 3 4\r\n", None),
        v2_proxy(
            v2(0x21, 0x11, &v4),
            pair("203.0.113.9:40000", "10.1.2.3:8080"),
        ),
        v2_proxy(v2(0x21, 0x21, &v6), pair("[::1]:0", "[::]:80")),
        v2_proxy(
            v2(
                0x21,
                0x11,
                &[&v4[..], &tlv(0x02, b"example.com"), &tlv(0x20, &[1; 40])].concat(),
            ),
            pair("203.0.113.9:40000", "10.1.2.3:8080"),
        ),
        v2_proxy(v2(0x21, 0x00, &[]), None),
        v2_proxy(v2(0x21, 0x31, &[0; 216]), None),
        (v2(0x20, 0x00, &[]), local),
        (v2(0x20, 0x11, &v4), local),
    ]
}

/// Invalid headers of both versions, with their error.
fn invalid_headers() -> Vec<(Vec<u8>, ProxyError)> {
    use ProxyError::*;
    let v4 = inet([203, 0, 113, 9], [10, 1, 2, 3], [40000, 8080]);
    let line = |line: &str, error| (line.as_bytes().to_vec(), error);
    vec![
        line("GET / HTTP/1.1\r\nHost: x\r\n\r\n", NotProxyProtocol),
        line("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", V1Malformed),
        line("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", V1Malformed),
        line("PROXY TCP4 1.2.3.4 ::1 1 2\r\n", V1BadAddress),
        line("PROXY TCP6 1.2.3.4 ::1 1 2\r\n", V1BadAddress),
        line("PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n", V1BadPort),
        line("PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", V1BadPort),
        line("PROXY SCTP 1.2.3.4 5.6.7.8 1 2\r\n", UnsupportedFamily),
        (
            [&b"PROXY UNKNOWN "[..], &[b'x'; 100]].concat(),
            V1LineTooLong,
        ),
        (v2(0x12, 0x11, &v4), UnsupportedVersion),
        (v2(0x25, 0x11, &v4), UnsupportedCommand),
        (v2(0x21, 0x61, &v4), UnsupportedFamily),
        (v2(0x21, 0x21, &v4), LengthMismatch),
        (v2(0x21, 0x11, &[&v4[..], &[0, 0, 9]].concat()), BadTlv),
        (v2(0x21, 0x11, &[0; 5000]), HeaderTooLarge),
    ]
}

#[test]
fn every_split_point_is_incomplete_then_the_same_header() {
    for (header, expected) in valid_headers() {
        for split in 0..header.len() {
            assert_eq!(
                parsed(&header[..split]),
                Ok(None),
                "{header:02x?} cut at {split}"
            );
        }
        assert_eq!(
            parsed(&header),
            Ok(Some((expected, header.len()))),
            "{header:02x?}"
        );
    }
}

#[test]
fn a_header_fed_byte_by_byte_ends_as_one_given_whole() {
    for (header, expected) in valid_headers() {
        let mut buf = Vec::new();
        let mut result = Ok(None);
        for &byte in &header {
            assert_eq!(result, Ok(None), "{header:02x?}");
            buf.push(byte);
            result = parsed(&buf);
        }
        assert_eq!(result, Ok(Some((expected, header.len()))));
    }
}

#[test]
fn an_invalid_header_is_incomplete_until_its_fault_then_the_same_error() {
    for (header, error) in invalid_headers() {
        assert_eq!(parsed(&header), Err(error), "{header:02x?}");
        let mut refused = false;
        for split in 0..header.len() {
            match parsed(&header[..split]) {
                Ok(None) => assert!(!refused, "{header:02x?}: refused, then not at {split}"),
                Err(early) => {
                    assert_eq!(early, error, "{header:02x?} cut at {split}");
                    refused = true;
                }
                Ok(Some(header)) => panic!("complete at {split}: {header:?}"),
            }
        }
    }
}

#[test]
fn the_bytes_after_the_header_are_left_for_the_caller() {
    let request = b"GET /pipelined HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\n";
    for (header, expected) in valid_headers() {
        for tail in [
            &request[..],
            &request[..1],
            b"\r\n\r\n\0\r\nQUIT\n",
            b"PROXY ",
        ] {
            let input = [&header[..], tail].concat();
            assert_eq!(
                parsed(&input),
                Ok(Some((expected, header.len()))),
                "{header:02x?} + {tail:02x?}"
            );
            assert_eq!(&input[header.len()..], tail);
        }
    }
}

#[test]
fn a_plain_http_request_is_refused_within_its_first_8_bytes() {
    for request in [
        &b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"[..],
        b"POST /upload HTTP/1.1\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"PUT /x HTTP/1.1\r\n",
        b"\r\nGET / HTTP/1.1\r\n",
        // A TLS ClientHello: handshake record, TLS 1.0 record version.
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    ] {
        assert_eq!(
            parsed(&request[..8]),
            Err(ProxyError::NotProxyProtocol),
            "{request:02x?}"
        );
    }
    // A request whose first byte cannot start a header: refused at once.
    assert_eq!(parsed(b"G"), Err(ProxyError::NotProxyProtocol));
}

#[test]
fn the_limits_default_to_4_kib_and_bound_what_the_parser_waits_for() {
    let limits = Limits::default();
    assert_eq!(limits.max_v2_bytes, 4096);
    assert_eq!(limits.max_header_bytes(), 4096);
    assert_eq!(Limits { max_v2_bytes: 16 }.max_header_bytes(), V1_MAX_BYTES);
    assert_eq!(V2_SMALLEST_LIMIT_BYTES, 232);
}

#[test]
fn errors_display_as_lowercase_reasons() {
    use ProxyError::*;
    for error in [
        NotProxyProtocol,
        V1Malformed,
        V1LineTooLong,
        V1BadAddress,
        V1BadPort,
        UnsupportedVersion,
        UnsupportedCommand,
        UnsupportedFamily,
        HeaderTooLarge,
        LengthMismatch,
        BadTlv,
    ] {
        let shown = error.to_string();
        assert_eq!(shown, error.reason());
        assert_eq!(shown, shown.to_lowercase(), "{error:?}");
        assert!(!shown.ends_with('.'), "{error:?}");
    }
    assert_eq!(
        ProxyError::HeaderTooLarge.to_string(),
        "proxy protocol v2 header too large"
    );
}

#[test]
fn relayed_headers_carry_both_addresses_and_local_ones_none() {
    let (_, header) = &valid_headers()[0];
    let source: SocketAddr = "203.0.113.9:40000".parse().unwrap();
    let destination: SocketAddr = "10.1.2.3:8080".parse().unwrap();
    assert_eq!(
        header.addresses,
        Some(Addresses {
            source,
            destination
        })
    );
    let (_, local) = valid_headers().pop().unwrap();
    assert_eq!(local.addresses, None);
}

#[test]
fn the_fuzzing_entry_reports_lengths_and_reasons() {
    let header = b"PROXY UNKNOWN\r\nGET";
    assert_eq!(parse_for_fuzzing(header), Ok(Some(15)));
    assert_eq!(parse_for_fuzzing(&header[..3]), Ok(None));
    assert_eq!(
        parse_for_fuzzing(b"GET"),
        Err("not a proxy protocol header")
    );
}

// ---------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------

/// A valid header of either version (random addresses, ports, TLVs,
/// commands and families) and what it parses to.
fn header() -> impl Strategy<Value = (Vec<u8>, ProxyHeader)> {
    let address = prop_oneof![
        any::<[u8; 4]>().prop_map(std::net::IpAddr::from),
        any::<[u8; 16]>().prop_map(std::net::IpAddr::from),
    ];
    let pair = (address, any::<u16>(), any::<bool>(), any::<u16>()).prop_map(
        |(source, source_port, same_family_destination, destination_port)| {
            let destination = match (source, same_family_destination) {
                (std::net::IpAddr::V4(ip), true) => std::net::IpAddr::V4(!ip),
                (std::net::IpAddr::V4(_), false) => std::net::IpAddr::V4([127, 0, 0, 1].into()),
                (std::net::IpAddr::V6(ip), true) => std::net::IpAddr::V6(!ip),
                (std::net::IpAddr::V6(_), false) => std::net::IpAddr::V6(Ipv6Addr::LOCALHOST),
            };
            Addresses {
                source: SocketAddr::new(source, source_port),
                destination: SocketAddr::new(destination, destination_port),
            }
        },
    );
    let tlvs = prop::collection::vec(
        (any::<u8>(), prop::collection::vec(any::<u8>(), 0..64)),
        0..6,
    )
    .prop_map(|tlvs| {
        tlvs.iter()
            .flat_map(|(kind, value)| tlv(*kind, value))
            .collect::<Vec<u8>>()
    });
    let v1 = pair.clone().prop_map(|addresses| {
        let protocol = if addresses.source.is_ipv4() {
            "TCP4"
        } else {
            "TCP6"
        };
        let line = format!(
            "PROXY {protocol} {} {} {} {}\r\n",
            addresses.source.ip(),
            addresses.destination.ip(),
            addresses.source.port(),
            addresses.destination.port()
        );
        let header = ProxyHeader {
            version: ProxyVersion::V1,
            command: Command::Proxy,
            addresses: Some(addresses),
        };
        (line.into_bytes(), header)
    });
    let v1_unknown = "[ -~]{0,91}".prop_map(|rest| {
        let line = format!("PROXY UNKNOWN {rest}\r\n");
        let header = ProxyHeader {
            version: ProxyVersion::V1,
            command: Command::Proxy,
            addresses: None,
        };
        (line.into_bytes(), header)
    });
    let v2_proxy = (pair, tlvs.clone()).prop_map(|(addresses, tlvs)| {
        let (family, block) = match (addresses.source, addresses.destination) {
            (SocketAddr::V4(source), SocketAddr::V4(destination)) => (
                0x11,
                inet(
                    source.ip().octets(),
                    destination.ip().octets(),
                    [source.port(), destination.port()],
                ),
            ),
            (SocketAddr::V6(source), SocketAddr::V6(destination)) => (
                0x21,
                inet6(
                    *source.ip(),
                    *destination.ip(),
                    [source.port(), destination.port()],
                ),
            ),
            _ => unreachable!("the generator keeps one family"),
        };
        let header = ProxyHeader {
            version: ProxyVersion::V2,
            command: Command::Proxy,
            addresses: Some(addresses),
        };
        (v2(0x21, family, &[&block[..], &tlvs].concat()), header)
    });
    let v2_local =
        (any::<u8>(), prop::collection::vec(any::<u8>(), 0..300)).prop_map(|(family, rest)| {
            let header = ProxyHeader {
                version: ProxyVersion::V2,
                command: Command::Local,
                addresses: None,
            };
            (v2(0x20, family, &rest), header)
        });
    prop_oneof![v1, v1_unknown, v2_proxy, v2_local]
}

/// Bytes that start like a header of either version, to reach past the
/// signature checks.
fn header_like() -> impl Strategy<Value = Vec<u8>> {
    let start = prop::sample::select(vec![
        &b""[..],
        b"PROXY ",
        b"PROXY TCP4 ",
        b"PROXY TCP6 ",
        b"PROXY UNKNOWN",
        b"\r\n\r\n\0\r\nQUIT\n",
        b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00",
        b"\r\n\r\n\0\r\nQUIT\n\x21\x21\x00",
        b"\r\n\r\n\0\r\nQUIT\n\x20",
    ]);
    let rest = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        "[0-9a-fA-F.: \r\n]{0,120}".prop_map(String::into_bytes),
    ];
    (start, rest).prop_map(|(start, rest)| [start, &rest[..]].concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// A valid header followed by anything parses to itself, consuming
    /// exactly its own bytes; every proper prefix of it is incomplete.
    #[test]
    fn a_valid_header_is_consumed_exactly(
        (header, expected) in header(),
        tail in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let input = [&header[..], &tail].concat();
        prop_assert_eq!(parsed(&input), Ok(Some((expected, header.len()))));
        for split in 0..header.len() {
            prop_assert_eq!(parsed(&input[..split]), Ok(None), "cut at {}", split);
        }
    }

    /// On any bytes: no panic, never more consumed than given, the same
    /// answer from the header's bytes alone, an answer within
    /// `max_header_bytes`, and more bytes never change an error.
    #[test]
    fn never_panics_nor_consumes_past_the_header(
        input in prop_oneof![prop::collection::vec(any::<u8>(), 0..300), header_like()],
        max_v2_bytes in prop::sample::select(vec![0, 16, 28, 232, 4096]),
    ) {
        let limits = Limits { max_v2_bytes };
        let result = parse(&input, &limits);
        match result {
            Ok(Some((header, consumed))) => {
                prop_assert!(consumed <= input.len());
                prop_assert_eq!(
                    parse(&input[..consumed], &limits),
                    Ok(Some((header, consumed)))
                );
                if header.command == Command::Local {
                    prop_assert_eq!(header.addresses, None);
                }
            }
            Ok(None) => prop_assert!(input.len() < limits.max_header_bytes()),
            Err(_) => {}
        }
        // The answer for each prefix leads to this one: incomplete, then
        // (if at all) one error for good.
        let mut refused = None;
        for split in 0..input.len() {
            match parse(&input[..split], &limits) {
                Ok(None) => prop_assert_eq!(refused, None, "cut at {}", split),
                Ok(Some((_, consumed))) => {
                    prop_assert_eq!(&result, &parse(&input[..consumed], &limits));
                    break;
                }
                Err(error) => {
                    prop_assert!(refused.is_none_or(|first| first == error));
                    prop_assert_eq!(result, Err(error), "cut at {}", split);
                    refused = Some(error);
                }
            }
        }
    }
}
