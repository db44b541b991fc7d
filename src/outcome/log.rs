//! The access log: one `tracing` line (target `hangup::access`, level
//! INFO) per outcome, per departure and per rejected request. Clients
//! leaving is normal traffic: never a warning or an error. Every value the
//! client chose goes through [`Escaped`].

use std::net::SocketAddr;
use std::time::Duration;

use http::StatusCode;

use crate::escape::Escaped;

use super::{Departure, DepartureCause, Outcome};
use crate::exchange::hangup::Phase;

/// True when outcomes are wanted as log lines: a subscriber listens on
/// `hangup::access`. Without it (and without a hook) the server skips the
/// `TCP_INFO` reads that outcomes need.
pub(crate) fn is_access_log_enabled() -> bool {
    tracing::enabled!(target: "hangup::access", tracing::Level::INFO)
}

/// Writes the line for `outcome`.
pub(crate) fn outcome(outcome: &Outcome) {
    let hangup = outcome.hangup();
    tracing::info!(
        target: "hangup::access",
        remote_addr = %outcome.remote_addr,
        method = %Escaped::display(&outcome.method),
        target = %Escaped::display(&outcome.uri),
        status = outcome.status().as_u16(),
        intended_status = outcome.intended_status.as_u16(),
        complete = outcome.is_complete(),
        written = outcome.counters.written,
        acked = outcome.counters.acked,
        in_flight = outcome.in_flight,
        duration_us = micros(outcome.duration),
        cause = outcome.cause(),
        phase = hangup.map(|h| h.phase().as_str()),
        peer_closed_us = outcome.peer_closed_after.map(micros),
    );
}

/// Writes the line for a client that left before its head was complete
/// (or before its TLS handshake was).
pub(crate) fn departure(departure: &Departure) {
    // rustls's or the PROXY parser's words, never the client's bytes.
    let detail = match &departure.cause {
        DepartureCause::TlsHandshake(detail) => Some(detail.as_str()),
        DepartureCause::ProxyHeaderRefused(reason) => Some(*reason),
        _ => None,
    };
    // The one departure that was answered.
    let status = (departure.cause == DepartureCause::PlainHttpOnTls).then_some(400u16);
    macro_rules! line {
        ($message:literal) => {
            tracing::info!(
                target: "hangup::access",
                remote_addr = %departure.remote_addr,
                phase = departure.phase.as_str(),
                cause = departure.cause.as_str(),
                detail,
                status,
                received = departure.received,
                duration_us = micros(departure.duration),
                $message
            )
        };
    }
    match departure.phase {
        Phase::ProxyHeader => line!("PROXY protocol header not received"),
        Phase::Handshake => line!("TLS handshake not completed"),
        _ => line!("client left before its request head was complete"),
    }
}

/// Writes the line for a request rejected before any handler saw it.
pub(crate) fn rejection(remote_addr: SocketAddr, status: StatusCode, reason: &'static str) {
    tracing::info!(
        target: "hangup::access",
        remote_addr = %remote_addr,
        status = status.as_u16(),
        reason,
        "request rejected"
    );
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}
