//! The question's own numbers, measured: on the Go-shaped server, the
//! smallest N whose one `Write` of N bytes fails after the client left, by
//! how the client left, by framing and by connection buffer, found by
//! bisection over single exchanges.
//!
//! Each exchange takes a millisecond or two on loopback (the client leaves
//! as soon as the handler starts, and the handler writes as soon as the
//! server saw it leave), so the whole search fits in the default run.

use serde::Serialize;
use tokio::task::JoinSet;

use super::cell::Close;
use super::go::{self, CONN_BUFFER_BYTES, Exchange, RESPONSE_BUFFER_BYTES, Stage, Trace};

/// The response size in the question.
pub const QUESTION_BYTES: usize = 8061;

/// What one search varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Search {
    pub close: Close,
    /// The handler set `Content-Length` (else the body is chunked).
    pub content_length: bool,
    pub conn_buffer: usize,
}

/// One exchange: a single `Write` of `size` bytes.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    pub size: usize,
    #[serde(flatten)]
    pub trace: Trace,
}

impl Probe {
    /// The handler's `Write` failed.
    pub fn failed(&self) -> bool {
        self.trace.failed_write.is_some()
    }

    /// Head, chunk framing and body: the bytes the handler's `Write` had
    /// queued for the connection when it returned.
    pub fn total_bytes(&self) -> usize {
        self.trace.head_bytes + self.trace.chunk_framing_bytes + self.size
    }

    /// Socket writes made inside the handler's `Write`: (accepted sizes,
    /// the failed one as (bytes, errno)).
    pub fn handler_socket_writes(&self) -> (Vec<usize>, Option<(usize, Option<i32>)>) {
        let mut accepted = Vec::new();
        let mut failed = None;
        for w in self.trace.socket_writes.iter() {
            if w.stage != Stage::Handler {
                continue;
            }
            match w.errno {
                Some(errno) => failed = Some((w.bytes, Some(errno))),
                None if w.accepted < w.bytes => failed = Some((w.bytes, None)),
                None => accepted.push(w.accepted),
            }
        }
        (accepted, failed)
    }
}

/// The result of one search.
#[derive(Debug, Clone, Serialize)]
pub struct Threshold {
    #[serde(flatten)]
    pub search: Search,
    /// The largest size tried.
    pub searched_up_to: usize,
    /// Exchanges made.
    pub probes: usize,
    /// The smallest size whose `Write` failed (`None`: none up to
    /// `searched_up_to`).
    pub first_failing: Option<Probe>,
    /// The size just below it, whose `Write` succeeded.
    pub last_passing: Option<Probe>,
}

/// Every search of this run, and the question's own size.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Puzzle {
    pub thresholds: Vec<Threshold>,
    /// One `Write` of [`QUESTION_BYTES`] after a FIN, chunked, Go's buffer.
    pub question: Option<Probe>,
}

impl Puzzle {
    /// The threshold measured for this combination, if it was searched.
    pub fn find(
        &self,
        close: Close,
        content_length: bool,
        conn_buffer: usize,
    ) -> Option<&Threshold> {
        self.thresholds.iter().find(|t| {
            t.search
                == Search {
                    close,
                    content_length,
                    conn_buffer,
                }
        })
    }
}

/// The searches for these closes and buffers: Go's own buffer with and
/// without `Content-Length` for every close; and, after a FIN, chunked,
/// every other buffer, to show what moves the threshold.
pub fn searches(closes: &[Close], buffers: &[usize]) -> Vec<Search> {
    let mut out = Vec::new();
    for &close in closes {
        for content_length in [false, true] {
            out.push(Search {
                close,
                content_length,
                conn_buffer: CONN_BUFFER_BYTES,
            });
        }
    }
    if closes.contains(&Close::Fin) {
        let mut others: Vec<usize> = buffers
            .iter()
            .copied()
            .filter(|&b| b != CONN_BUFFER_BYTES)
            .collect();
        others.sort_unstable();
        others.dedup();
        for conn_buffer in others {
            out.push(Search {
                close: Close::Fin,
                content_length: false,
                conn_buffer,
            });
        }
    }
    out
}

/// Runs every search at once, and the question's own size after a FIN.
///
/// # Errors
///
/// The first exchange that could not be run.
pub async fn measure(searches: Vec<Search>) -> Result<Puzzle, String> {
    let question = searches.iter().any(|s| s.close == Close::Fin);
    let mut running = JoinSet::new();
    for (index, s) in searches.iter().copied().enumerate() {
        running.spawn(async move { (index, search(s).await) });
    }
    let mut thresholds: Vec<Option<Threshold>> = vec![None; searches.len()];
    // Bounded: one pass per spawned search.
    while let Some(joined) = running.join_next().await {
        let (index, threshold) = joined.map_err(|e| format!("a threshold search crashed: {e}"))?;
        thresholds[index] = Some(threshold?);
    }
    let question = if question {
        Some(
            probe(
                Search {
                    close: Close::Fin,
                    content_length: false,
                    conn_buffer: CONN_BUFFER_BYTES,
                },
                QUESTION_BYTES,
            )
            .await?,
        )
    } else {
        None
    };
    Ok(Puzzle {
        thresholds: thresholds.into_iter().flatten().collect(),
        question,
    })
}

async fn probe(s: Search, size: usize) -> Result<Probe, String> {
    let trace = go::run(Exchange {
        size,
        piece: 0,
        conn_buffer: s.conn_buffer,
        close: s.close,
        content_length: s.content_length,
    })
    .await
    .map_err(|e| {
        format!(
            "Go-shaped server, {} bytes, client {:?}, buffer {}: {e}",
            size, s.close, s.conn_buffer
        )
    })?;
    Ok(Probe { size, trace })
}

/// Bisects for the smallest failing size in 1..=top, assuming a larger
/// write fails whenever a smaller one does (more bytes, more socket
/// writes). `top`: four buffers and the response buffer, twice what the
/// FIN case needs on Linux, so another kernel's later failure still shows.
async fn search(s: Search) -> Result<Threshold, String> {
    let top = 4 * s.conn_buffer.max(1) + RESPONSE_BUFFER_BYTES;
    let mut probes = 0;
    let high = probe(s, top).await?;
    probes += 1;
    if !high.failed() {
        return Ok(Threshold {
            search: s,
            searched_up_to: top,
            probes,
            first_failing: None,
            last_passing: Some(high),
        });
    }
    let low = probe(s, 1).await?;
    probes += 1;
    if low.failed() {
        return Ok(Threshold {
            search: s,
            searched_up_to: top,
            probes,
            first_failing: Some(low),
            last_passing: None,
        });
    }
    let (mut low, mut high) = (low, high);
    // Bounded: the interval halves each pass, about log2(top) passes.
    while high.size - low.size > 1 {
        let middle = probe(s, low.size + (high.size - low.size) / 2).await?;
        probes += 1;
        if middle.failed() {
            high = middle;
        } else {
            low = middle;
        }
    }
    Ok(Threshold {
        search: s,
        searched_up_to: top,
        probes,
        first_failing: Some(high),
        last_passing: Some(low),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn searches_cover_go_buffer_both_framings_and_other_buffers_after_fin() {
        let all = searches(&[Close::Fin, Close::Rst], &[2048, 4096, 8192]);
        let fin_chunked: Vec<usize> = all
            .iter()
            .filter(|s| s.close == Close::Fin && !s.content_length)
            .map(|s| s.conn_buffer)
            .collect();
        assert_eq!(fin_chunked, vec![4096, 2048, 8192]);
        assert_eq!(all.len(), 6);
        assert!(
            searches(&[Close::Rst], &[8192])
                .iter()
                .all(|s| s.conn_buffer == 4096)
        );
    }
}
