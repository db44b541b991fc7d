//! The end of a connection: answering a rejected head, and closing so
//! that nothing written is lost and every outcome is settled.
//!
//! Closing with unread bytes in our receive queue makes the kernel send an
//! RST, which can erase a response the client has not read yet. So a
//! connection closes by sending held-back responses, then our FIN, then
//! reading and discarding until the client closes too (a *lingering
//! close*, bounded by `linger_bytes` and `linger_timeout`); outcomes
//! waiting for acknowledgements settle meanwhile, and the connection stays
//! until they are final (at most `ack_wait`). A client that reset is not
//! lingered for.

use std::time::Instant;

use bytes::BytesMut;
use http::Version;

use crate::error::BadRequest;
use crate::h1::input::READ_RESERVE_BYTES;
use crate::h1::output::{RequestFacts, Writing};
use crate::handler::Handler;
use crate::outcome::ledger::Closing;
use crate::outcome::log;

use super::Conn;
use super::wait::{ACK_POLL, ack_poll};

impl<H: Handler> Conn<H> {
    /// Answers a rejected head, then closes. Responses held back for
    /// earlier pipelined requests go out first.
    pub(super) async fn reject(&mut self, bad: BadRequest) {
        // Nothing more is read as a request: the refused head's bytes, and
        // their claim on the server's head budget, go now rather than after
        // the lingering close (a flood of refused heads would hold them for
        // `linger_timeout`).
        self.head_claim = None;
        self.input.buf = BytesMut::new();
        let link = &*self.link;
        let remote_addr = link.transport.remote_addr();
        log::rejection(remote_addr, bad.status(), bad.reason());
        link.metrics.request_rejected();
        let origin = self.backlog.next_origin();
        let config = &link.config;
        let now = link.exchange.stamp(Instant::now());
        link.exchange
            .begin(now, origin, config.on_fin, config.on_hangup);
        self.output.begin(RequestFacts {
            version: Version::HTTP_11,
            is_head: false,
            keep_alive: false,
        });
        self.output
            .set_error_response(link, bad.status(), bad.reason());
        let sent = self
            .output
            .finish(link, Some(&mut self.backlog), false)
            .await;
        self.backlog.add_written(link.exchange.written());
        if sent.is_ok() {
            // The refusal is out: its buffers are not needed while the
            // connection lingers either.
            self.output.release_buffers();
        }
        self.close().await;
    }

    /// Closes gracefully; see the module docs. Not after an abort, a
    /// failed write or a reset: the connection is dead already.
    pub(super) async fn close(&mut self) {
        let dead = self.link.exchange.is_gone()
            || matches!(
                self.output_writing(),
                Some(Writing::Aborted | Writing::Broken)
            )
            || matches!(self.closing, Closing::Reset(_) | Closing::Failed(_));
        if dead {
            return;
        }
        if let Err(err) = self.backlog.flush(&self.link).await {
            self.closing = Closing::Failed(super::dispatch::failure_end(&err));
            return;
        }
        self.link.transport.shutdown_write();
        let mut budget = self.link.config.linger_bytes;
        let linger_until = tokio::time::Instant::now() + self.link.config.linger_timeout;
        // The read buffer may be lent to a body a task kept: linger with a
        // scratch buffer of its own (a connection closes once).
        let mut scratch = BytesMut::new();
        if self.server.shutdown.is_draining() && self.ledger.is_empty() {
            // The server is going away, and nothing waits for an
            // acknowledgement. A client that sent nothing more is not
            // lingered for (it may keep its socket open, and the shutdown
            // would wait `linger_timeout` for it), as an idle connection
            // is not when the shutdown starts; one whose bytes are here
            // already is, so that they do not turn our close into a reset.
            let read = self.link.transport.read(&mut scratch, READ_RESERVE_BYTES);
            match tokio::time::timeout(std::time::Duration::ZERO, read).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
        }
        let mut client_closed = false;
        while !client_closed && budget > 0 {
            /// What one turn of the lingering read saw.
            enum Turn {
                Read(std::io::Result<usize>),
                Settle,
                Over,
            }
            scratch.clear();
            let read = self.link.transport.read(&mut scratch, READ_RESERVE_BYTES);
            let settling = !self.ledger.is_empty();
            let turn = tokio::select! {
                biased;
                result = read => Turn::Read(result),
                // Outcomes settle while the client takes its time to
                // close, not after.
                () = ack_poll(), if settling => Turn::Settle,
                () = tokio::time::sleep_until(linger_until) => Turn::Over,
            };
            match turn {
                Turn::Read(Ok(0)) => {
                    self.ledger.peer_closed();
                    client_closed = true;
                }
                Turn::Read(Ok(n)) => budget = budget.saturating_sub(n as u64),
                Turn::Read(Err(err)) => {
                    self.closing = Closing::Reset(err.raw_os_error());
                    return;
                }
                Turn::Settle => self.settle(),
                Turn::Over => break,
            }
        }
        self.await_acknowledgements().await;
    }

    /// Waits until every queued outcome is final: its bytes acknowledged,
    /// or its `ack_wait` over. A reset meanwhile ends the wait (the ledger
    /// then tells which responses did not arrive whole).
    async fn await_acknowledgements(&mut self) {
        while !self.ledger.is_empty() {
            tokio::time::sleep(ACK_POLL).await;
            if let Some(errno) = self.link.transport.take_reset() {
                self.closing = Closing::Reset(errno);
                return;
            }
            self.settle();
        }
    }

    /// Where the response state stands, if it is home.
    fn output_writing(&self) -> Option<Writing> {
        self.output.is_home().then(|| self.output.writing())
    }
}
