//! The outcome ledger of one connection: how an exchange ended
//! ([`end_of`], a pure function of what the connection saw), and the queue
//! of outcomes waiting for the client's TCP to acknowledge their response
//! before they are emitted (to the metrics, the hook and the access log).
//!
//! Each queued outcome owns bytes `origin..end` of the connection's stream
//! of response bytes. It is emitted once the socket's acknowledged total
//! reaches `end`, once its `ack_wait` deadline passes (marked `in_flight`),
//! or when the connection ends. If the connection ends because the client
//! reset it, an outcome whose bytes were not all acknowledged is a hang-up
//! after all: the client did not get the whole response.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::exchange::acked_between;
use crate::exchange::hangup::{Detection, Hangup, HangupCause, Phase};

use super::{Cutoff, End, Metrics, Outcome, OutcomeHook, log};

/// How the handler's part of an exchange ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Handled {
    /// It returned `Ok`.
    Returned,
    /// It returned an error; `Some` when that error was the client leaving.
    Failed(Option<Hangup>),
    /// It panicked.
    Panicked,
    /// It was dropped under [`OnHangup::Cancel`](crate::OnHangup::Cancel)
    /// after its client left.
    Cancelled,
    /// It was dropped because the server's shutdown grace ran out.
    ShutDown,
}

/// What the connection knows when an exchange ends, for [`end_of`].
#[derive(Debug, Clone)]
pub(crate) struct Facts {
    pub handled: Handled,
    /// Every byte of the response was written, or queued behind a
    /// pipelined response.
    pub complete: bool,
    /// The client's hang-up that made it gone, if it is.
    pub gone: Option<Hangup>,
    /// The handler called `abort()`.
    pub aborted: bool,
    /// A write failed with an error that is not the client leaving.
    pub write_error: bool,
    /// The body ended before the `Content-Length` the handler set.
    pub shorter_than_declared: bool,
}

/// How the exchange ended, from what the connection saw. In order: a
/// complete response is complete (a FIN the client sent meanwhile is a
/// separate fact); a client that is gone, or whose leaving made the handler
/// give up, is a hang-up; otherwise the server cut it short, and says why.
pub(crate) fn end_of(facts: Facts) -> End {
    if facts.complete && !facts.shorter_than_declared && !facts.aborted {
        return End::Complete;
    }
    if let Some(hangup) = facts.gone {
        return End::ClientGone(hangup);
    }
    if let Handled::Failed(Some(hangup)) = facts.handled {
        return End::ClientGone(hangup);
    }
    let cutoff = if facts.aborted {
        Cutoff::Aborted
    } else if facts.write_error {
        Cutoff::WriteError
    } else if facts.shorter_than_declared {
        // Whatever the handler then returned: a file it sent ended early.
        Cutoff::ShorterThanDeclared
    } else {
        match facts.handled {
            Handled::Panicked => Cutoff::HandlerPanicked,
            Handled::ShutDown => Cutoff::ServerShutdown,
            Handled::Failed(_) => Cutoff::HandlerFailed,
            // Returned or cancelled, yet incomplete: the declared length
            // is the only reason left (cancelling needs a gone client).
            Handled::Returned | Handled::Cancelled => Cutoff::ShorterThanDeclared,
        }
    };
    End::CutShort(cutoff)
}

/// Why a connection ended, as far as its queued outcomes care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Closing {
    /// An orderly close: every queued byte was written.
    Orderly,
    /// The client reset the connection (`errno`).
    Reset(Option<i32>),
    /// Writing failed: this is how responses that never reached the kernel
    /// whole end (a held-back pipelined response, say).
    Failed(End),
    /// The server's shutdown grace ran out.
    ShutDown,
}

/// Where outcomes go once final.
pub(crate) struct Sink<'a> {
    pub metrics: &'a Metrics,
    pub hook: Option<&'a OutcomeHook>,
}

impl Sink<'_> {
    fn emit(&self, outcome: &Outcome) {
        self.metrics.record(outcome);
        if log::is_access_log_enabled() {
            log::outcome(outcome);
        }
        if let Some(hook) = self.hook {
            (hook.0)(outcome);
        }
    }
}

/// An outcome waiting for its response's acknowledgements.
#[derive(Debug)]
struct Settling {
    outcome: Outcome,
    started: Instant,
    /// This response's bytes are `origin..end` of the connection's stream.
    origin: u64,
    end: u64,
    deadline: Instant,
}

/// The outcomes of one connection that are not final yet.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    queue: VecDeque<Settling>,
}

impl Ledger {
    /// True when no outcome waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Queues `outcome`, whose response is bytes `origin..end` of the
    /// connection's stream; it is final at the latest after `ack_wait`.
    pub(crate) fn push(
        &mut self,
        outcome: Outcome,
        started: Instant,
        origin: u64,
        end: u64,
        ack_wait: Duration,
    ) {
        self.queue.push_back(Settling {
            outcome,
            started,
            origin,
            end,
            deadline: Instant::now() + ack_wait,
        });
    }

    /// The client's FIN arrived now, after these exchanges' handlers were
    /// done: a fact for their outcomes (when it was not seen during them).
    pub(crate) fn peer_closed(&mut self) {
        for settling in &mut self.queue {
            let outcome = &mut settling.outcome;
            outcome
                .peer_closed_after
                .get_or_insert_with(|| settling.started.elapsed());
        }
    }

    /// Emits the outcomes whose bytes the client acknowledged or whose
    /// deadline passed. `total_written` is every byte the kernel accepted
    /// on the connection, `total_acked` every byte the client's TCP
    /// acknowledged (`None` where the platform cannot tell).
    pub(crate) fn settle(&mut self, total_written: u64, total_acked: Option<u64>, sink: &Sink<'_>) {
        let now = Instant::now();
        while let Some(front) = self.queue.front() {
            let acked_all = total_acked.is_none_or(|acked| acked >= front.end);
            if !acked_all && now < front.deadline {
                break;
            }
            if let Some(settling) = self.queue.pop_front() {
                sink.emit(&finalize(settling, total_written, total_acked, None));
            }
        }
    }

    /// Emits every outcome: the connection is over, for `closing`.
    pub(crate) fn close(
        &mut self,
        total_written: u64,
        total_acked: Option<u64>,
        closing: Closing,
        sink: &Sink<'_>,
    ) {
        for settling in self.queue.drain(..) {
            sink.emit(&finalize(
                settling,
                total_written,
                total_acked,
                Some(closing.clone()),
            ));
        }
    }
}

/// The outcome with its final counters: how much of `origin..end` the
/// kernel took and the client acknowledged. A response whose bytes did not
/// all reach the kernel (a held-back pipelined one, on a connection that
/// then failed) is cut short by that failure; one the client reset before
/// acknowledging all of it is a hang-up.
fn finalize(
    settling: Settling,
    total_written: u64,
    total_acked: Option<u64>,
    closing: Option<Closing>,
) -> Outcome {
    let Settling {
        mut outcome,
        started,
        origin,
        end,
        ..
    } = settling;
    let written = total_written.min(end).saturating_sub(origin);
    let acked = total_acked.map(|total| acked_between(total, origin, written));
    outcome.counters.written = written;
    outcome.counters.acked = acked;
    outcome.in_flight = acked.is_some_and(|acked| acked < written);
    let all_written = written == end - origin;
    let all_acked = acked.is_none_or(|acked| acked == written);
    let elapsed = started.elapsed();
    outcome.duration = elapsed;
    if outcome.end != End::Complete {
        return outcome;
    }
    let hangup_like = |of: &Hangup| Hangup {
        elapsed,
        counters: outcome.counters,
        phase: Phase::Sending,
        ..of.clone()
    };
    outcome.end = match closing {
        Some(Closing::Reset(errno)) if !(all_written && all_acked) => End::ClientGone(Hangup {
            cause: HangupCause::Reset,
            phase: Phase::Sending,
            detection: Detection::Read,
            elapsed,
            counters: outcome.counters,
            errno,
            tls_close: None,
        }),
        Some(Closing::Failed(failure)) if !all_written => match failure {
            End::ClientGone(hangup) => End::ClientGone(hangup_like(&hangup)),
            other => other,
        },
        Some(Closing::ShutDown) if !all_written => End::CutShort(Cutoff::ServerShutdown),
        _ => End::Complete,
    };
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::hangup::Counters;

    fn fin() -> Hangup {
        Hangup {
            cause: HangupCause::PeerClosed,
            phase: Phase::Handling,
            detection: Detection::SocketWatch,
            elapsed: Duration::ZERO,
            counters: Counters::default(),
            errno: None,
            tls_close: None,
        }
    }

    fn reset() -> Hangup {
        Hangup {
            cause: HangupCause::Reset,
            ..fin()
        }
    }

    fn facts(handled: Handled, complete: bool) -> Facts {
        Facts {
            handled,
            complete,
            gone: None,
            aborted: false,
            write_error: false,
            shorter_than_declared: false,
        }
    }

    /// Every way an exchange can end, and how it is recorded.
    #[test]
    fn every_incomplete_end_says_why() {
        use Cutoff::*;
        use Handled::*;
        let gone = |mut f: Facts| {
            f.gone = Some(reset());
            f
        };
        let aborted = |mut f: Facts| {
            f.aborted = true;
            f
        };
        let broken = |mut f: Facts| {
            f.write_error = true;
            f
        };
        let short = |mut f: Facts| {
            f.shorter_than_declared = true;
            f
        };
        let cases = [
            (facts(Returned, true), End::Complete),
            // A half-closing client that got everything: complete.
            (facts(Failed(Some(fin())), true), End::Complete),
            (gone(facts(Returned, true)), End::Complete),
            (gone(facts(Returned, false)), End::ClientGone(reset())),
            (gone(facts(Cancelled, false)), End::ClientGone(reset())),
            (gone(facts(Panicked, false)), End::ClientGone(reset())),
            // The handler gave up because its client closed.
            (facts(Failed(Some(fin())), false), End::ClientGone(fin())),
            (facts(Failed(None), false), End::CutShort(HandlerFailed)),
            (facts(Panicked, false), End::CutShort(HandlerPanicked)),
            (facts(ShutDown, false), End::CutShort(ServerShutdown)),
            (aborted(facts(Returned, false)), End::CutShort(Aborted)),
            (aborted(facts(Returned, true)), End::CutShort(Aborted)),
            (
                broken(facts(Failed(None), false)),
                End::CutShort(WriteError),
            ),
            (
                short(facts(Returned, true)),
                End::CutShort(ShorterThanDeclared),
            ),
            // A file that ended early: the handler returns its error, but
            // the body's shortness is why.
            (
                short(facts(Failed(None), false)),
                End::CutShort(ShorterThanDeclared),
            ),
        ];
        for (facts, end) in cases {
            assert_eq!(end_of(facts.clone()), end, "{facts:?}");
        }
    }
}
