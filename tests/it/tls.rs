//! TLS: the same server, native and tower handlers, over rustls; a real
//! TLS client (tokio-rustls) over real sockets. The counters count
//! plaintext; a FIN, an RST and a `close_notify` keep their meaning;
//! handshakes are bounded, capped and reported.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hangup::http;
use hangup::{Config, End, HangupCause, Phase, Request, ResponseWriter, TlsClose};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::support::{
    Capture, LIMIT, Outcomes, Signal, connect, metrics_reach, parse_responses, read_until_end,
    send, spawn, stays_silent,
};

/// A certificate for `localhost` and 127.0.0.1, with its server and
/// client configurations.
pub(crate) struct Pki {
    pub(crate) server: Arc<ServerConfig>,
    pub(crate) client: Arc<ClientConfig>,
}

pub(crate) fn pki() -> Pki {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let certified = rcgen::generate_simple_self_signed(names).expect("certificate");
    let cert = CertificateDer::from(certified.cert.der().to_vec());
    let key = PrivateKeyDer::try_from(certified.signing_key.serialize_der()).expect("key");
    let server = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .expect("server config");
    let mut roots = RootCertStore::empty();
    roots.add(cert).expect("root");
    let mut client = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![b"http/1.1".to_vec()];
    Pki {
        server: Arc::new(server),
        client: Arc::new(client),
    }
}

/// A client configuration that trusts the certificate in PEM file `path`.
pub(crate) fn client_trusting(path: &std::path::Path) -> Arc<ClientConfig> {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).expect("PEM file") {
        roots.add(cert.expect("certificate")).expect("root");
    }
    let mut client = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(client)
}

/// A client configuration that trusts nothing (a browser meeting a
/// self-signed certificate).
fn untrusting_client() -> Arc<ClientConfig> {
    Arc::new(
        ClientConfig::builder()
            .with_root_certificates(RootCertStore::empty())
            .with_no_client_auth(),
    )
}

pub(crate) async fn tls_connect(
    addr: SocketAddr,
    client: &Arc<ClientConfig>,
) -> TlsStream<TcpStream> {
    let tcp = connect(addr).await;
    let connector = tokio_rustls::TlsConnector::from(client.clone());
    let name = ServerName::try_from("localhost").expect("name");
    tokio::time::timeout(LIMIT, connector.connect(name, tcp))
        .await
        .expect("handshake timed out")
        .expect("handshake")
}

/// Closes the TCP socket under a TLS stream with an RST.
pub(crate) fn reset_tls(stream: TlsStream<TcpStream>) {
    let (tcp, _) = stream.into_inner();
    crate::support::reset(tcp);
}

fn tls_config(pki: &Pki, outcomes: Option<&Outcomes>) -> hangup::ConfigBuilder {
    let mut builder = match outcomes {
        Some(outcomes) => outcomes.builder(),
        None => Config::builder(),
    };
    builder.tls(pki.server.clone());
    builder
}

async fn hello(_req: Request, mut res: ResponseWriter) -> hangup::Result<()> {
    res.write_all(b"hello over tls").await
}

/// A handler that announces it runs, then waits for its client to leave
/// and records the hang-up it was told.
fn waits_for_hangup(
    started: Signal,
    told: Arc<std::sync::Mutex<Option<hangup::Hangup>>>,
) -> impl hangup::Handler {
    move |req: Request, _res: ResponseWriter| {
        let started = started.clone();
        let told = told.clone();
        async move {
            started.fire();
            let hangup = req.hung_up().await;
            *told.lock().unwrap() = Some(hangup);
            Ok(())
        }
    }
}

#[tokio::test]
async fn get_over_tls_counts_plaintext_bytes_written_and_acknowledged() {
    let pki = pki();
    let outcomes = Outcomes::default();
    let server = spawn(tls_config(&pki, Some(&outcomes)).build().unwrap(), hello).await;

    let mut stream = tls_connect(server.addr, &pki.client).await;
    let (_, session) = stream.get_ref();
    assert_eq!(session.alpn_protocol(), Some(&b"http/1.1"[..]), "ALPN");
    send(
        &mut stream,
        b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    let (bytes, end) = read_until_end(&mut stream).await;
    crate::support::assert_clean_eof(&end, "a TLS response with Connection: close");
    let responses = parse_responses(&bytes, &[false]);
    assert_eq!(responses[0].status, 200);
    assert_eq!(responses[0].text(), "hello over tls");

    let outcome = outcomes.wait_for(1).await.remove(0);
    assert!(outcome.is_complete(), "{outcome:?}");
    // Plaintext, not ciphertext: exactly the bytes the client decrypted.
    assert_eq!(outcome.counters.written, bytes.len() as u64, "{outcome:?}");
    assert_eq!(
        outcome.counters.acked,
        Some(bytes.len() as u64),
        "{outcome:?}"
    );
    assert_eq!(server.metrics.snapshot().bytes_written, bytes.len() as u64);
}

/// Over TLS a file is copied through user space: one shorter than the
/// bytes asked for is answered 500 when nothing was sent yet (the handler
/// fails, as on plain TCP before its head), and cut short of its length
/// once the head is out.
#[tokio::test]
async fn a_short_file_over_tls_is_a_500_before_the_head_and_cut_short_after() {
    let pki = pki();
    let outcomes = Outcomes::default();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ten");
    std::fs::write(&path, b"0123456789").unwrap();
    let server = spawn(
        tls_config(&pki, Some(&outcomes)).build().unwrap(),
        move |request: Request, mut response: ResponseWriter| {
            let path = path.clone();
            async move {
                let file = std::fs::File::open(&path)?;
                response
                    .insert_header(http::header::CONTENT_LENGTH, http::HeaderValue::from(20u64))?;
                if request.path() == "/after-head" {
                    response.flush().await?;
                }
                response.send_file(&file, 0, 20).await
            }
        },
    )
    .await;
    for (path, status, complete) in [("/before-head", 500, true), ("/after-head", 200, false)] {
        let mut stream = tls_connect(server.addr, &pki.client).await;
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        send(&mut stream, request.as_bytes()).await;
        let (bytes, _end) = read_until_end(&mut stream).await;
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            text.starts_with(&format!("HTTP/1.1 {status} ")),
            "{path}: {text:?}"
        );
        let outcome = outcomes
            .wait_for(if complete { 1 } else { 2 })
            .await
            .into_iter()
            .find(|o| o.uri == path)
            .expect("its outcome");
        assert_eq!(outcome.is_complete(), complete, "{path}: {outcome:?}");
        if !complete {
            assert_eq!(
                outcome.cause(),
                Some("shorter_than_declared"),
                "{outcome:?}"
            );
        }
    }
}

#[tokio::test]
async fn head_and_pipelined_requests_over_tls() {
    let pki = pki();
    let server = spawn(
        tls_config(&pki, None).build().unwrap(),
        crate::support::path_handler,
    )
    .await;
    let mut stream = tls_connect(server.addr, &pki.client).await;
    // Three requests in one write, the last a HEAD that closes.
    send(
        &mut stream,
        b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /two HTTP/1.1\r\nHost: x\r\n\r\n\
          HEAD /three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let (bytes, end) = read_until_end(&mut stream).await;
    crate::support::assert_clean_eof(&end, "pipelined requests over TLS");
    let responses = parse_responses(&bytes, &[false, false, true]);
    let bodies: Vec<String> = responses.iter().map(|r| r.text()).collect();
    assert_eq!(bodies, ["/one", "/two", ""]);
    assert_eq!(responses[2].header("content-length"), Some("6"));
}

#[tokio::test]
async fn a_large_response_over_tls_arrives_byte_for_byte() {
    const SIZE: usize = 3 * 1024 * 1024 + 17;
    let pki = pki();
    let outcomes = Outcomes::default();
    let server = spawn(
        tls_config(&pki, Some(&outcomes)).build().unwrap(),
        |_req: Request, mut res: ResponseWriter| async move {
            let body: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
            res.insert_header(http::header::CONTENT_LENGTH, SIZE.into())?;
            res.write_all(&body).await
        },
    )
    .await;
    let mut stream = tls_connect(server.addr, &pki.client).await;
    send(
        &mut stream,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let (bytes, _) = read_until_end(&mut stream).await;
    let response = &parse_responses(&bytes, &[false])[0];
    assert_eq!(response.body.len(), SIZE);
    assert!(
        response
            .body
            .iter()
            .enumerate()
            .all(|(i, &b)| b == (i % 251) as u8)
    );
    let outcome = outcomes.wait_for(1).await.remove(0);
    assert_eq!(outcome.counters.written, bytes.len() as u64);
    assert_eq!(outcome.counters.acked, Some(bytes.len() as u64));
}

/// How a client leaves while its handler waits.
#[derive(Debug, Clone, Copy)]
enum Leave {
    /// `close_notify`, then the FIN (what tokio-rustls's shutdown sends).
    CloseNotify,
    /// A FIN on the TCP socket, no `close_notify`.
    Truncate,
    /// An RST.
    Reset,
}

async fn leave(stream: TlsStream<TcpStream>, how: Leave) -> Option<TlsStream<TcpStream>> {
    let mut stream = stream;
    match how {
        Leave::CloseNotify => {
            stream.shutdown().await.expect("close_notify and FIN");
            Some(stream)
        }
        Leave::Truncate => {
            stream.get_mut().0.shutdown().await.expect("FIN");
            Some(stream)
        }
        Leave::Reset => {
            reset_tls(stream);
            None
        }
    }
}

async fn leave_while_handler_waits(how: Leave, request: &[u8]) -> hangup::Hangup {
    let pki = pki();
    let started = Signal::new();
    let told = Arc::new(std::sync::Mutex::new(None));
    let server = spawn(
        tls_config(&pki, None).build().unwrap(),
        waits_for_hangup(started.clone(), told.clone()),
    )
    .await;
    let mut stream = tls_connect(server.addr, &pki.client).await;
    send(&mut stream, request).await;
    started.wait("the handler started").await;
    let _kept = leave(stream, how).await;
    assert!(
        metrics_reach(&server.metrics, |m| m.outcomes == 1).await,
        "no outcome after the client left ({how:?})"
    );
    let hangup = told.lock().unwrap().clone();
    hangup.unwrap_or_else(|| panic!("the handler was not told ({how:?})"))
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
/// A request whose body (1,000 bytes announced, 10 sent) nobody reads.
const UNREAD_BODY: &[u8] = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789";

#[tokio::test]
async fn close_notify_while_the_handler_waits_is_a_clean_peer_close() {
    for request in [GET, UNREAD_BODY] {
        let hangup = leave_while_handler_waits(Leave::CloseNotify, request).await;
        assert_eq!(hangup.cause(), HangupCause::PeerClosed, "{hangup}");
        assert_eq!(hangup.tls_close(), Some(TlsClose::CloseNotify), "{hangup}");
        assert!(
            matches!(hangup.phase(), Phase::Handling | Phase::ReadingBody),
            "{hangup}"
        );
    }
}

#[tokio::test]
async fn a_fin_without_close_notify_is_a_truncation() {
    for request in [GET, UNREAD_BODY] {
        let hangup = leave_while_handler_waits(Leave::Truncate, request).await;
        assert_eq!(hangup.cause(), HangupCause::PeerClosed, "{hangup}");
        assert_eq!(hangup.tls_close(), Some(TlsClose::Truncated), "{hangup}");
    }
}

#[tokio::test]
async fn a_reset_while_the_handler_waits_is_a_reset() {
    for request in [GET, UNREAD_BODY] {
        let hangup = leave_while_handler_waits(Leave::Reset, request).await;
        assert_eq!(hangup.cause(), HangupCause::Reset, "{hangup}");
        assert_eq!(hangup.tls_close(), None, "{hangup}");
    }
}

#[tokio::test]
async fn a_reset_mid_download_counts_only_whole_records_as_acknowledged() {
    const SIZE: usize = 32 * 1024 * 1024;
    let pki = pki();
    let outcomes = Outcomes::default();
    let server = spawn(
        tls_config(&pki, Some(&outcomes)).build().unwrap(),
        |_req: Request, mut res: ResponseWriter| async move {
            res.insert_header(http::header::CONTENT_LENGTH, SIZE.into())?;
            let chunk = vec![b'x'; 64 * 1024];
            for _ in 0..SIZE / chunk.len() {
                res.write_all(&chunk).await?;
            }
            Ok(())
        },
    )
    .await;
    let mut stream = tls_connect(server.addr, &pki.client).await;
    send(&mut stream, GET).await;
    // Read a megabyte of plaintext, then stop reading and reset.
    let mut read = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    while read < 1024 * 1024 {
        let n = tokio::time::timeout(LIMIT, stream.read(&mut buf))
            .await
            .expect("read timed out")
            .expect("read");
        assert!(n > 0, "the response ended early");
        read += n;
    }
    reset_tls(stream);
    let outcome = outcomes.wait_for(1).await.remove(0);
    let End::ClientGone(hangup) = &outcome.end else {
        panic!("not a hang-up: {outcome:?}")
    };
    assert_eq!(outcome.status().as_u16(), 499);
    assert!(
        matches!(
            hangup.cause(),
            HangupCause::Reset | HangupCause::WriteFailed
        ),
        "{hangup}"
    );
    let written = outcome.counters.written;
    let acked = outcome.counters.acked.expect("TCP_INFO on Linux");
    // What the client decrypted was acknowledged; ciphertext would count
    // more than the plaintext written.
    assert!(acked >= read as u64, "acked {acked} < read {read}");
    assert!(acked <= written, "acked {acked} > written {written}");
    assert!(written < SIZE as u64, "written {written}: the whole body?");
}

#[tokio::test]
async fn a_stalled_handshake_is_closed_after_its_timeout_and_reported() {
    let (capture, _guard) = Capture::install();
    let pki = pki();
    let mut builder = tls_config(&pki, None);
    builder.tls_handshake_timeout(Duration::from_millis(300));
    let server = spawn(builder.build().unwrap(), hello).await;

    // A TCP connection that never says hello.
    let mut silent = connect(server.addr).await;
    let (_, end) = read_until_end(&mut silent).await;
    crate::support::assert_clean_eof(&end, "a stalled handshake");
    let lines = capture.wait_for_departures_in("handshake", 1).await;
    assert_eq!(lines[0].fields["cause"], "read_timeout", "{lines:?}");
    assert_eq!(lines[0].level, tracing::Level::INFO);
    assert_eq!(
        server
            .metrics
            .snapshot()
            .departures_of(HangupCause::ReadTimeout),
        1
    );
}

#[tokio::test]
async fn clients_that_leave_mid_handshake_are_departures() {
    let pki = pki();
    let (capture, _guard) = Capture::install();
    let server = spawn(tls_config(&pki, None).build().unwrap(), hello).await;
    // Half a ClientHello's record header, then a FIN; then one that resets.
    let mut fin = connect(server.addr).await;
    send(&mut fin, &[0x16, 0x03, 0x01]).await;
    fin.shutdown().await.unwrap();
    let mut rst = connect(server.addr).await;
    send(&mut rst, &[0x16, 0x03, 0x01]).await;
    crate::support::until_server_read(&rst).await;
    crate::support::reset(rst);
    let lines = capture.wait_for_departures_in("handshake", 2).await;
    let mut causes: Vec<&str> = lines.iter().map(|l| l.fields["cause"].as_str()).collect();
    causes.sort_unstable();
    assert_eq!(causes, ["peer_closed", "reset"], "{lines:?}");
    let metrics = server.metrics.snapshot();
    assert_eq!(metrics.departures_of(HangupCause::PeerClosed), 1);
    assert_eq!(metrics.departures_of(HangupCause::Reset), 1);
    assert_eq!(metrics.tls_handshake_failures, 0);
}

#[tokio::test]
async fn a_client_that_distrusts_the_certificate_is_a_failed_handshake() {
    let (capture, _guard) = Capture::install();
    let pki = pki();
    let server = spawn(tls_config(&pki, None).build().unwrap(), hello).await;
    let tcp = connect(server.addr).await;
    let connector = tokio_rustls::TlsConnector::from(untrusting_client());
    let name = ServerName::try_from("localhost").unwrap();
    let refused = tokio::time::timeout(LIMIT, connector.connect(name, tcp))
        .await
        .expect("handshake timed out");
    assert!(refused.is_err(), "an untrusted certificate was accepted");
    let lines = capture.wait_for_departures_in("handshake", 1).await;
    assert_eq!(
        lines[0].fields["cause"], "tls_handshake_failed",
        "{lines:?}"
    );
    // rustls's words for the client's alert.
    let detail = &lines[0].fields["detail"];
    assert!(detail.contains("alert"), "{detail}");
    assert_eq!(lines[0].level, tracing::Level::INFO);
    assert!(metrics_reach(&server.metrics, |m| m.tls_handshake_failures == 1).await);
    // The server serves the next client as ever.
    let mut ok = tls_connect(server.addr, &pki.client).await;
    send(
        &mut ok,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let (bytes, _) = read_until_end(&mut ok).await;
    assert_eq!(parse_responses(&bytes, &[false])[0].status, 200);
}

#[tokio::test]
async fn plain_http_on_the_tls_port_is_told_so_in_plain_http() {
    let (capture, _guard) = Capture::install();
    let pki = pki();
    let server = spawn(tls_config(&pki, None).build().unwrap(), hello).await;
    let mut plain = connect(server.addr).await;
    send(&mut plain, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let (bytes, end) = read_until_end(&mut plain).await;
    crate::support::assert_clean_eof(&end, "the answer to plain HTTP");
    let response = &parse_responses(&bytes, &[false])[0];
    assert_eq!(response.status, 400);
    assert!(response.text().contains("https://"), "{}", response.text());
    let lines = capture.wait_for_departures_in("handshake", 1).await;
    assert_eq!(lines[0].fields["cause"], "plain_http_on_tls");
    assert_eq!(lines[0].fields["status"], "400");
    assert_eq!(server.metrics.snapshot().tls_handshake_failures, 1);
}

/// Past `max_tls_handshakes`, a new client is still accepted and the
/// oldest handshake in progress makes room: clients that stall their
/// handshakes cannot lock others out (they did when new connections
/// waited in the backlog for a place: 13 stalled connections a second
/// kept every client out).
#[tokio::test]
async fn past_the_handshake_cap_the_oldest_stalled_handshake_makes_room() {
    let (capture, _guard) = Capture::install();
    let pki = pki();
    let mut builder = tls_config(&pki, None);
    builder
        .max_tls_handshakes(2)
        .tls_handshake_timeout(Duration::from_secs(60));
    let server = spawn(builder.build().unwrap(), hello).await;
    // Two connections hold both places, one silent, one after half a
    // record header.
    let mut silent = connect(server.addr).await;
    assert!(metrics_reach(&server.metrics, |m| m.open_connections == 1).await);
    let mut stalled = connect(server.addr).await;
    send(&mut stalled, &[0x16, 0x03]).await;
    crate::support::until_server_read(&stalled).await;

    // A real client completes its handshake and is served at once.
    let mut client = tls_connect(server.addr, &pki.client).await;
    send(
        &mut client,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let (bytes, _) = read_until_end(&mut client).await;
    assert_eq!(parse_responses(&bytes, &[false])[0].status, 200);

    // The oldest, the silent one, made room: closed, and reported.
    let (_, end) = read_until_end(&mut silent).await;
    crate::support::assert_clean_eof(&end, "an evicted handshake");
    let lines = capture.wait_for_departures_in("handshake", 1).await;
    assert_eq!(lines[0].fields["cause"], "handshake_evicted", "{lines:?}");
    let metrics = server.metrics.snapshot();
    assert_eq!(metrics.tls_handshakes_evicted, 1, "{metrics:?}");
    assert_eq!(metrics.accept_pauses, 0, "{metrics:?}");
    // The other is still in its handshake.
    assert!(stays_silent(&mut stalled, Duration::from_millis(100)).await);
}

/// Behind a PROXY-protocol proxy, a connection whose header has not come
/// yet is not in a handshake: it takes no place under
/// `max_tls_handshakes`, and is not evicted by the handshakes meanwhile.
#[tokio::test]
async fn a_connection_still_awaiting_its_proxy_header_is_not_an_evictable_handshake() {
    let pki = pki();
    let mut builder = tls_config(&pki, None);
    builder.max_tls_handshakes(1).proxy_protocol(true);
    let server = spawn(builder.build().unwrap(), hello).await;
    const HEADER: &[u8] = b"PROXY TCP4 192.0.2.7 192.0.2.1 4567 443\r\n";

    // The first connection's proxy is slow to send its header.
    let mut waiting = connect(server.addr).await;
    assert!(metrics_reach(&server.metrics, |m| m.open_connections == 1).await);

    // Another connection's header and handshake, served meanwhile.
    let connector = tokio_rustls::TlsConnector::from(pki.client.clone());
    let name = ServerName::try_from("localhost").unwrap();
    let mut other = connect(server.addr).await;
    send(&mut other, HEADER).await;
    let mut other = connector
        .connect(name.clone(), other)
        .await
        .expect("handshake");
    send(
        &mut other,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let (bytes, _) = read_until_end(&mut other).await;
    assert_eq!(parse_responses(&bytes, &[false])[0].status, 200);

    // The first one's header comes now; its handshake was not evicted.
    send(&mut waiting, HEADER).await;
    let mut waiting = tokio::time::timeout(LIMIT, connector.connect(name, waiting))
        .await
        .expect("handshake timed out")
        .expect("the connection was evicted while it waited for its header");
    send(
        &mut waiting,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let (bytes, _) = read_until_end(&mut waiting).await;
    assert_eq!(parse_responses(&bytes, &[false])[0].status, 200);
    assert_eq!(server.metrics.snapshot().tls_handshakes_evicted, 0);
}

#[tokio::test]
async fn a_tower_service_runs_unchanged_over_tls() {
    let pki = pki();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "axum over tls" }));
    let config = tls_config(&pki, None).build().unwrap();
    let server = tokio::spawn(hangup::serve(listener, config, app));
    let mut stream = tls_connect(addr, &pki.client).await;
    send(
        &mut stream,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let (bytes, _) = read_until_end(&mut stream).await;
    assert_eq!(parse_responses(&bytes, &[false])[0].text(), "axum over tls");
    server.abort();
}

#[tokio::test]
async fn a_reload_reaches_new_handshakes_while_open_connections_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let write_pair = || {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        std::fs::write(&cert_path, made.cert.pem()).unwrap();
        std::fs::write(&key_path, made.signing_key.serialize_pem()).unwrap();
        made.cert.der().to_vec()
    };
    let first = write_pair();
    let loaded = hangup::tls::TlsFiles::new(&cert_path, &key_path)
        .load()
        .expect("load");
    let mut builder = Config::builder();
    builder.tls(loaded.config.clone());
    let server = spawn(builder.build().unwrap(), hello).await;

    let trusting = |der: &[u8]| {
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from(der.to_vec())).unwrap();
        Arc::new(
            ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    };
    let get = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut before = tls_connect(server.addr, &trusting(&first)).await;
    send(&mut before, get).await;
    let mut buf = vec![0u8; 4096];
    let n = before.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));

    let second = write_pair();
    assert!(loaded.reloader.reload().expect("reload").is_changed());

    // A new handshake gets the new certificate (a client that trusts only
    // the first one is refused) ...
    let _ = tls_connect(server.addr, &trusting(&second)).await;
    let refused = tokio_rustls::TlsConnector::from(trusting(&first))
        .connect(
            ServerName::try_from("localhost").unwrap(),
            connect(server.addr).await,
        )
        .await;
    assert!(refused.is_err(), "the old certificate was still offered");
    // ... and the connection from before carries on with its session.
    send(
        &mut before,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let (bytes, _) = read_until_end(&mut before).await;
    assert_eq!(
        parse_responses(&bytes, &[false])[0].text(),
        "hello over tls"
    );
}
