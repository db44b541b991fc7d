//! A new connection's transport: plain TCP at once, or TLS once its
//! handshake is done. A handshake is bounded by `tls_handshake_timeout`
//! and ends early if the server starts shutting down; one that fails or is
//! abandoned is a [`Departure`] in phase `handshake`, counted and logged
//! like a client that left before its head.

use std::net::SocketAddr;

use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

use crate::transport::Transport;

#[cfg(feature = "tls")]
use {
    crate::exchange::hangup::{Detection, HangupCause, Phase, classify},
    crate::outcome::{Departure, DepartureCause},
    crate::transport::tls::HandshakeError,
    std::time::Instant,
};

use super::ServerParts;

/// The transport for an accepted connection, or `None` when there is none
/// to serve (the client left or failed its handshake: recorded here).
/// `handshake_slot` is the connection's place under `max_tls_handshakes`
/// (TLS only), released when the handshake ends.
pub(super) async fn transport<H>(
    stream: TcpStream,
    remote_addr: SocketAddr,
    #[cfg_attr(not(feature = "tls"), allow(unused_variables))] server: &ServerParts<H>,
    handshake_slot: Option<OwnedSemaphorePermit>,
) -> Option<Transport> {
    let transport = match Transport::new(stream, remote_addr) {
        Ok(transport) => transport,
        Err(err) => {
            tracing::debug!(%remote_addr, %err, "connection dropped before setup");
            return None;
        }
    };
    #[cfg(feature = "tls")]
    if let Some(tls) = &server.config.tls {
        return handshake(transport, tls.clone(), server, handshake_slot).await;
    }
    drop(handshake_slot);
    Some(transport)
}

/// Runs the TLS handshake on `transport`, bounded in time and by the
/// server's shutdown; records the departure of a client that does not
/// complete it.
#[cfg(feature = "tls")]
async fn handshake<H>(
    mut transport: Transport,
    tls: std::sync::Arc<rustls::ServerConfig>,
    server: &ServerParts<H>,
    slot: Option<OwnedSemaphorePermit>,
) -> Option<Transport> {
    let accepted = Instant::now();
    let remote_addr = transport.remote_addr();
    let handshake = tokio::time::timeout(
        server.config.tls_handshake_timeout,
        transport.start_tls(tls),
    );
    let result = tokio::select! {
        result = handshake => result,
        // No request was started: like an idle connection, it closes.
        () = server.shutdown.draining_started() => return None,
    };
    drop(slot);
    let cause = match result {
        Ok(Ok(())) => return Some(transport),
        Err(_elapsed) => DepartureCause::Left(HangupCause::ReadTimeout),
        Ok(Err(HandshakeError::Io(err))) => match classify(&err, Detection::Read) {
            Some(cause) => DepartureCause::Left(cause),
            None => {
                tracing::debug!(%remote_addr, %err, "TLS handshake failed on a socket error");
                return None;
            }
        },
        Ok(Err(HandshakeError::Tls(err))) => DepartureCause::TlsHandshake(err.to_string()),
        Ok(Err(HandshakeError::PlainHttp)) => {
            answer_plain_http(&transport, server).await;
            DepartureCause::PlainHttpOnTls
        }
    };
    Departure {
        remote_addr,
        cause,
        phase: Phase::Handshake,
        received: 0,
        duration: accepted.elapsed(),
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
