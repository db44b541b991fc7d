//! The PROXY protocol (`ConfigBuilder::proxy_protocol`): the client's
//! address from a v1 or v2 header, for the request, the outcome and the
//! access log; connections without a valid header refused without a
//! response and without harm to the others.

use std::net::SocketAddr;
use std::time::Duration;

use hangup::{Config, HangupCause, Request, ResponseWriter};
use tokio::io::AsyncWriteExt;

use crate::support::{
    Capture, Outcomes, connect, metrics_reach, parse_responses, read_until_end, send, spawn,
};

/// Answers with the addresses the request carries.
async fn addresses(req: Request, mut res: ResponseWriter) -> hangup::Result<()> {
    let text = format!("{} {}", req.remote_addr(), req.local_addr());
    res.write_all(text.as_bytes()).await
}

fn proxied(outcomes: &Outcomes) -> Config {
    let mut builder = outcomes.builder();
    builder.proxy_protocol(true);
    builder.build().unwrap()
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

/// A v2 header: PROXY over TCP (INET or INET6) from `source` to
/// `destination`, with `tlvs` after the addresses.
fn v2(source: SocketAddr, destination: SocketAddr, tlvs: &[u8]) -> Vec<u8> {
    let mut header = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    header.push(0x21); // version 2, PROXY
    let mut addresses = Vec::new();
    match (source, destination) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            header.push(0x11); // INET, STREAM
            addresses.extend_from_slice(&s.ip().octets());
            addresses.extend_from_slice(&d.ip().octets());
        }
        (SocketAddr::V6(s), SocketAddr::V6(d)) => {
            header.push(0x21); // INET6, STREAM
            addresses.extend_from_slice(&s.ip().octets());
            addresses.extend_from_slice(&d.ip().octets());
        }
        _ => panic!("one family"),
    }
    addresses.extend_from_slice(&source.port().to_be_bytes());
    addresses.extend_from_slice(&destination.port().to_be_bytes());
    addresses.extend_from_slice(tlvs);
    header.extend_from_slice(&(addresses.len() as u16).to_be_bytes());
    header.extend_from_slice(&addresses);
    header
}

/// A v2 `LOCAL` header (the proxy's own health check).
fn v2_local() -> Vec<u8> {
    let mut header = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    header.extend_from_slice(&[0x20, 0x00, 0x00, 0x00]);
    header
}

/// Sends `bytes` (in writes split at `splits`: the server may see them
/// apart or together) on a new connection, reads to the end; the
/// response's bytes and the client's own address.
async fn exchange(addr: SocketAddr, bytes: &[u8], splits: &[usize]) -> (Vec<u8>, SocketAddr) {
    let mut stream = connect(addr).await;
    let own = stream.local_addr().unwrap();
    let mut start = 0;
    for &split in splits.iter().chain([bytes.len()].iter()) {
        send(&mut stream, &bytes[start..split]).await;
        start = split;
    }
    let (response, _) = read_until_end(&mut stream).await;
    (response, own)
}

#[tokio::test]
async fn a_v1_header_gives_the_request_outcome_and_log_the_clients_address() {
    let (capture, _guard) = Capture::install();
    let outcomes = Outcomes::default();
    let server = spawn(proxied(&outcomes), addresses).await;
    let mut bytes = b"PROXY TCP4 203.0.113.9 198.51.100.7 40000 443\r\n".to_vec();
    bytes.extend_from_slice(GET);
    // The header in two writes, the request right behind it.
    let (response, _) = exchange(server.addr, &bytes, &[10]).await;
    let response = &parse_responses(&response, &[false])[0];
    assert_eq!(response.text(), "203.0.113.9:40000 198.51.100.7:443");
    let outcome = outcomes.wait_for(1).await.remove(0);
    assert_eq!(outcome.remote_addr.to_string(), "203.0.113.9:40000");
    let lines = capture.wait_for_access_lines(1).await;
    assert_eq!(lines[0].fields["remote_addr"], "203.0.113.9:40000");
}

#[tokio::test]
async fn a_v2_header_with_tlvs_relays_an_ipv6_client() {
    let outcomes = Outcomes::default();
    let server = spawn(proxied(&outcomes), addresses).await;
    let source: SocketAddr = "[2001:db8::1]:51000".parse().unwrap();
    let destination: SocketAddr = "[2001:db8::2]:8443".parse().unwrap();
    // An authority TLV (type 0x02), as HAProxy sends with SNI.
    let mut bytes = v2(
        source,
        destination,
        &[0x02, 0x00, 0x04, b'h', b'o', b's', b't'],
    );
    bytes.extend_from_slice(GET);
    let (response, _) = exchange(server.addr, &bytes, &[]).await;
    let response = &parse_responses(&response, &[false])[0];
    assert_eq!(response.text(), format!("{source} {destination}"));
}

#[tokio::test]
async fn a_v2_local_header_keeps_the_proxys_own_address() {
    let outcomes = Outcomes::default();
    let server = spawn(proxied(&outcomes), addresses).await;
    let mut bytes = v2_local();
    bytes.extend_from_slice(GET);
    let (response, own) = exchange(server.addr, &bytes, &[]).await;
    let response = &parse_responses(&response, &[false])[0];
    assert_eq!(response.text(), format!("{own} {}", server.addr));
}

/// Sends `bytes` and expects the connection closed with no response byte.
async fn refused_without_a_response(addr: SocketAddr, bytes: &[u8]) {
    let mut stream = connect(addr).await;
    // The server may close (and reset, for unread bytes) while we write.
    let _ = stream.write_all(bytes).await;
    let (response, _) = read_until_end(&mut stream).await;
    assert!(response.is_empty(), "a response: {response:?}");
}

#[tokio::test]
async fn connections_without_a_valid_header_are_refused_and_logged() {
    let (capture, _guard) = Capture::install();
    let outcomes = Outcomes::default();
    let server = spawn(proxied(&outcomes), addresses).await;
    let oversized = {
        let mut header = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
        header.extend_from_slice(&[0x21, 0x11, 0x13, 0x88]); // 5,000 bytes
        header
    };
    let cases: [(&[u8], &str); 4] = [
        (GET, "not a proxy protocol header"),
        (
            b"PROXY TCP4 203.0.113.9  198.51.100.7 1 2\r\n",
            "malformed proxy protocol v1 line",
        ),
        (
            b"PROXY TCP4 203.0.113.999 198.51.100.7 1 2\r\n",
            "invalid address in proxy protocol v1 line",
        ),
        (&oversized, "proxy protocol v2 header too large"),
    ];
    for (bytes, _) in &cases {
        refused_without_a_response(server.addr, bytes).await;
    }
    let lines = capture
        .wait_for_departures_in("proxy_header", cases.len())
        .await;
    let mut details: Vec<&str> = lines.iter().map(|l| l.fields["detail"].as_str()).collect();
    let mut expected: Vec<&str> = cases.iter().map(|(_, reason)| *reason).collect();
    details.sort_unstable();
    expected.sort_unstable();
    assert_eq!(details, expected, "{lines:#?}");
    assert!(
        lines
            .iter()
            .all(|l| l.fields["cause"] == "proxy_header_refused")
    );
    assert_eq!(
        server.metrics.snapshot().proxy_header_refusals,
        cases.len() as u64
    );
    // A proxy's connection is served as ever.
    let mut bytes = b"PROXY TCP4 203.0.113.9 198.51.100.7 40000 443\r\n".to_vec();
    bytes.extend_from_slice(GET);
    let (response, _) = exchange(server.addr, &bytes, &[]).await;
    assert_eq!(parse_responses(&response, &[false])[0].status, 200);
    assert_eq!(outcomes.wait_for(1).await.len(), 1);
}

#[tokio::test]
async fn a_header_that_never_completes_times_out() {
    let (capture, _guard) = Capture::install();
    let mut builder = Config::builder();
    builder
        .proxy_protocol(true)
        .header_read_timeout(Duration::from_millis(300));
    let server = spawn(builder.build().unwrap(), addresses).await;
    let mut stream = connect(server.addr).await;
    send(&mut stream, b"PROXY TCP4 203.0").await;
    let (response, _) = read_until_end(&mut stream).await;
    assert!(response.is_empty());
    let lines = capture.wait_for_departures_in("proxy_header", 1).await;
    assert_eq!(lines[0].fields["cause"], "read_timeout");
    assert_eq!(lines[0].fields["received"], "16");
    assert!(
        metrics_reach(&server.metrics, |m| m
            .departures_of(HangupCause::ReadTimeout)
            == 1)
        .await
    );
}

#[tokio::test]
async fn a_hangup_behind_a_relayed_header_names_the_client() {
    let outcomes = Outcomes::default();
    let started = crate::support::Signal::new();
    let server = spawn(proxied(&outcomes), {
        let started = started.clone();
        move |req: Request, _res: ResponseWriter| {
            let started = started.clone();
            async move {
                started.fire();
                Err(hangup::Error::ClientGone(req.hung_up().await))
            }
        }
    })
    .await;
    let mut stream = connect(server.addr).await;
    let mut bytes = b"PROXY TCP4 203.0.113.9 198.51.100.7 40000 443\r\n".to_vec();
    bytes.extend_from_slice(GET);
    send(&mut stream, &bytes).await;
    started.wait("the handler started").await;
    crate::support::reset(stream);
    let outcome = outcomes.wait_for(1).await.remove(0);
    assert_eq!(outcome.status().as_u16(), 499);
    assert_eq!(outcome.remote_addr.to_string(), "203.0.113.9:40000");
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn the_header_comes_before_the_tls_handshake() {
    use tokio::io::AsyncReadExt;
    let pki = crate::tls::pki();
    let mut builder = Config::builder();
    builder.proxy_protocol(true).tls(pki.server.clone());
    let server = spawn(builder.build().unwrap(), addresses).await;
    let mut tcp = connect(server.addr).await;
    send(
        &mut tcp,
        b"PROXY TCP4 203.0.113.9 198.51.100.7 40000 443\r\n",
    )
    .await;
    let connector = tokio_rustls::TlsConnector::from(pki.client.clone());
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.expect("handshake");
    send(&mut tls, GET).await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(crate::support::LIMIT, tls.read_to_end(&mut response)).await;
    let response = &parse_responses(&response, &[false])[0];
    assert!(
        response.text().starts_with("203.0.113.9:40000 "),
        "{}",
        response.text()
    );
}
