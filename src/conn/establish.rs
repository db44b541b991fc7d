//! A new connection's transport, in the order its bytes come: the PROXY
//! protocol header (when the listener expects one), then the TLS
//! handshake (on a TLS listener), then the stream is ready for requests.
//! Each step is bounded in time (`header_read_timeout` for the header,
//! `tls_handshake_timeout` for the handshake) and ends early if the server
//! starts shutting down; a connection that fails or abandons one is a
//! [`Departure`] in phase `proxy_header` or `handshake`, counted and logged
//! like a client that left before its head.

use std::net::SocketAddr;

use tokio::net::TcpStream;

use crate::transport::Transport;

use std::time::Instant;

use crate::exchange::hangup::{Detection, HangupCause, Phase, classify};
use crate::outcome::{Departure, DepartureCause};
use crate::proxy;
#[cfg(feature = "tls")]
use crate::transport::tls::HandshakeError;

use super::ServerParts;
#[cfg(feature = "tls")]
use super::handshakes::Handshakes;

/// The transport for an accepted connection, or `None` when there is none
/// to serve (the client left or failed its handshake: recorded here).
pub(super) async fn transport<H>(
    stream: TcpStream,
    remote_addr: SocketAddr,
    server: &ServerParts<H>,
) -> Option<Transport> {
    #[cfg_attr(not(feature = "tls"), allow(unused_mut))]
    let mut transport = match Transport::new(stream, remote_addr) {
        Ok(transport) => transport,
        Err(err) => {
            tracing::debug!(%remote_addr, %err, "connection dropped before setup");
            return None;
        }
    };
    // The PROXY header and the TLS handshake are boxed: their futures
    // (568 and 4,688 bytes) would otherwise be part of every connection
    // task's state for its whole life (6,912 bytes instead of 3,456
    // under -Zprint-type-sizes, examples/echo),
    // for one allocation per connection that uses them.
    if server.config.proxy_protocol && !Box::pin(relayed(&mut transport, server)).await {
        return None;
    }
    #[cfg(feature = "tls")]
    if let Some(tls) = &server.config.tls {
        return Box::pin(handshake(transport, tls.clone(), server)).await;
    }
    Some(transport)
}

/// Reads the PROXY protocol header off the front of the connection and
/// takes the client's addresses from it. False when the connection is
/// refused (its departure recorded) or the server is shutting down.
async fn relayed<H>(transport: &mut Transport, server: &ServerParts<H>) -> bool {
    let started = Instant::now();
    let limits = proxy::Limits::default();
    let mut seen = 0;
    let header = transport.take_prefix(limits.max_header_bytes(), |bytes| {
        seen = bytes.len();
        match proxy::parse(bytes, &limits) {
            Ok(None) => None,
            Ok(Some((header, used))) => Some((Ok(header), used)),
            Err(refused) => Some((Err(refused), 0)),
        }
    });
    let read = tokio::select! {
        read = tokio::time::timeout(server.config.header_read_timeout, header) => read,
        () = server.shutdown.draining_started() => return false,
    };
    let cause = match read {
        Ok(Ok(Ok(header))) => {
            if let Some(addresses) = header.addresses {
                transport.relayed_for(addresses.source, addresses.destination);
            }
            return true;
        }
        Ok(Ok(Err(refused))) => DepartureCause::ProxyHeaderRefused(refused.reason()),
        Ok(Err(err)) => match classify(&err, Detection::Read) {
            Some(cause) => DepartureCause::Left(cause),
            None => {
                tracing::debug!(remote_addr = %transport.remote_addr(), %err, "PROXY header read failed");
                return false;
            }
        },
        Err(_elapsed) => DepartureCause::Left(HangupCause::ReadTimeout),
    };
    Departure {
        remote_addr: transport.remote_addr(),
        cause,
        phase: Phase::ProxyHeader,
        received: seen as u64,
        duration: started.elapsed(),
    }
    .record(&server.metrics);
    false
}

/// Runs the TLS handshake on `transport`, bounded in time, by the
/// server's shutdown and by newer handshakes past `max_tls_handshakes`
/// (its place is taken now, not at the accept: a PROXY header read first
/// is no handshake; see [`super::handshakes`]); records the departure of a
/// client that does not complete it.
#[cfg(feature = "tls")]
async fn handshake<H>(
    mut transport: Transport,
    tls: std::sync::Arc<rustls::ServerConfig>,
    server: &ServerParts<H>,
) -> Option<Transport> {
    let slot = server.handshakes.as_ref().map(Handshakes::enter);
    let started = Instant::now();
    let remote_addr = transport.remote_addr();
    let handshake = tokio::time::timeout(
        server.config.tls_handshake_timeout,
        transport.start_tls(tls),
    );
    let evicted = async {
        match &slot {
            Some(slot) => slot.evicted().await,
            None => std::future::pending().await,
        }
    };
    let result = tokio::select! {
        // A handshake done in the same poll as its eviction is kept.
        biased;
        result = handshake => Some(result),
        // No request was started: like an idle connection, it closes.
        () = server.shutdown.draining_started() => return None,
        () = evicted => None,
    };
    drop(slot);
    let cause = match result {
        None => DepartureCause::HandshakeEvicted,
        Some(Ok(Ok(()))) => return Some(transport),
        Some(Err(_elapsed)) => DepartureCause::Left(HangupCause::ReadTimeout),
        Some(Ok(Err(HandshakeError::Io(err)))) => match classify(&err, Detection::Read) {
            Some(cause) => DepartureCause::Left(cause),
            None => {
                tracing::debug!(%remote_addr, %err, "TLS handshake failed on a socket error");
                return None;
            }
        },
        Some(Ok(Err(HandshakeError::Tls(err)))) => DepartureCause::TlsHandshake(err.to_string()),
        Some(Ok(Err(HandshakeError::PlainHttp))) => {
            answer_plain_http(&transport, server).await;
            DepartureCause::PlainHttpOnTls
        }
    };
    Departure {
        remote_addr,
        cause,
        phase: Phase::Handshake,
        received: 0,
        duration: started.elapsed(),
    }
    .record(&server.metrics);
    None
}

/// Tells a client that spoke plain HTTP to a TLS port so, in plain HTTP
/// (as nginx and Go do), then closes without losing the answer: our FIN,
/// then reading what it sent until it closes too (bounded by
/// `linger_bytes` and `linger_timeout`).
#[cfg(feature = "tls")]
async fn answer_plain_http<H>(transport: &Transport, server: &ServerParts<H>) {
    const BODY: &str = "This port speaks HTTPS: use an https:// URL.\n";
    let response = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let config = &server.config;
    let send = async {
        let mut sent = 0;
        while sent < response.len() {
            let bufs = [std::io::IoSlice::new(&response.as_bytes()[sent..])];
            match std::future::poll_fn(|cx| transport.poll_write_vectored(cx, &bufs)).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => sent += n,
            }
        }
        true
    };
    if !matches!(
        tokio::time::timeout(config.write_timeout, send).await,
        Ok(true)
    ) {
        return;
    }
    transport.shutdown_write();
    let linger = async {
        let mut budget = config.linger_bytes;
        let mut scratch = bytes::BytesMut::new();
        while budget > 0 {
            scratch.clear();
            match transport
                .read(&mut scratch, crate::h1::input::READ_RESERVE_BYTES)
                .await
            {
                Ok(0) | Err(_) => return,
                Ok(n) => budget = budget.saturating_sub(n as u64),
            }
        }
    };
    let _ = tokio::time::timeout(config.linger_timeout, linger).await;
}
