//! The lab's tables and findings, written from the measured results only:
//! every number in a sentence comes from a cell or an exchange of this run.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::cell::{Behaviour, CellResult, Close, Plan};
use super::go::{CONN_BUFFER_BYTES, RESPONSE_BUFFER_BYTES};
use super::puzzle::{Probe, Puzzle, QUESTION_BYTES};

/// What one cell shows in a table.
fn code(result: &CellResult) -> String {
    match (&result.first_failed_write, &result.finish) {
        (Some(failed), _) => format!("err@{}", failed.at_bytes),
        (None, Some(Err(_))) => "end-err".to_owned(),
        (None, Some(Ok(()))) if result.acked == Some(0) && result.written > 0 => "lost".to_owned(),
        // The Go-shaped server does not read TCP_INFO: no error, and what
        // the client's TCP acknowledged is not measured.
        (None, Some(Ok(()))) if result.acked.is_none() => "no-err".to_owned(),
        (None, Some(Ok(()))) => "ok".to_owned(),
        (None, None) => "?".to_owned(),
    }
}

/// A socket error by name, as in the question's "broken pipe".
fn errno_name(errno: Option<i32>) -> String {
    match errno {
        Some(libc::EPIPE) => "EPIPE".to_owned(),
        Some(libc::ECONNRESET) => "ECONNRESET".to_owned(),
        Some(errno) => format!("errno {errno}"),
        None => "error".to_owned(),
    }
}

fn kib(bytes: usize) -> String {
    if bytes % 1024 == 0 {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} B")
    }
}

/// Renders the summary tables, the findings and, with `detail`, one line
/// per cell.
pub fn render(
    results: &[CellResult],
    puzzle: &Puzzle,
    plan: Plan,
    buffers: &[usize],
    sizes: &[usize],
    detail: bool,
) -> String {
    let mut out = String::new();
    if !puzzle.thresholds.is_empty() {
        out.push_str(&threshold_table(puzzle));
        out.push('\n');
    }
    let pieces = if plan.piece == 0 {
        "one write".to_owned()
    } else {
        format!("{}-byte writes", plan.piece)
    };
    let _ = writeln!(
        out,
        "The sweep: the client sends GET and leaves after {} ms; the handler wakes at {} ms and writes the response in {pieces}{}.",
        plan.client_leaves_after.as_millis(),
        plan.handler_waits.as_millis(),
        if plan.content_length {
            ", having set Content-Length"
        } else {
            ""
        },
    );
    if results.iter().any(|r| r.cell.behaviour == Behaviour::Go) {
        let _ = writeln!(
            out,
            "On the Go-shaped server the client leaves once the handler started, the handler writes once the server saw it leave,\n\
             and the buffer is the connection's (Go's is {}, after its {RESPONSE_BUFFER_BYTES}-byte response buffer).",
            kib(CONN_BUFFER_BYTES)
        );
    }
    let _ = writeln!(
        out,
        "\nEach cell: the first handler write that failed (err@N: the write that would have taken the body to N bytes),\n\
         or end-err (every write succeeded; ending the response after the handler returned failed),\n\
         or lost (everything succeeded, and the client's TCP acknowledged none of it),\n\
         or no-err (nothing failed; the Go-shaped server does not measure what the client's TCP acknowledged).\n"
    );
    for (close, behaviour) in groups(results) {
        let group: Vec<&CellResult> = results
            .iter()
            .filter(|r| r.cell.close == close && r.cell.behaviour == behaviour)
            .collect();
        let title = format!(
            "client {} · {}",
            match close {
                Close::Fin => "FIN",
                Close::Rst => "RST",
            },
            behaviour.label()
        );
        let codes: BTreeSet<String> = group.iter().map(|r| code(r)).collect();
        if codes.len() == 1 && group.len() > 1 {
            let only = codes.iter().next().cloned().unwrap_or_default();
            let causes: BTreeSet<String> = group.iter().filter_map(|r| failure_cause(r)).collect();
            let _ = writeln!(
                out,
                "{title}\n  every cell ({}): {only}{}\n",
                group.len(),
                if causes.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", cause {}",
                        causes.into_iter().collect::<Vec<_>>().join("/")
                    )
                }
            );
            continue;
        }
        let _ = writeln!(out, "{title}");
        let _ = write!(out, "  {:>12}", "size \\ buffer");
        for &buffer in buffers {
            let _ = write!(out, " {:>10}", kib(buffer));
        }
        out.push('\n');
        for &size in sizes {
            let _ = write!(out, "  {size:>12}");
            for &buffer in buffers {
                let cell = group
                    .iter()
                    .find(|r| r.cell.size == size && r.cell.buffer == buffer);
                let _ = write!(out, " {:>10}", cell.map(|r| code(r)).unwrap_or_default());
            }
            out.push('\n');
        }
        out.push('\n');
    }
    out.push_str("What this run found\n");
    for finding in findings(results, puzzle, plan) {
        let _ = writeln!(out, "- {finding}");
    }
    if detail {
        out.push_str("\nEvery cell\n");
        let _ = writeln!(
            out,
            "  {:>6} {:>7} {:>5} {:>13} {:>6} {:>7} {:>10} {:>8} {:>8} {:>6} {:>4}  finish / error",
            "size",
            "buffer",
            "close",
            "behaviour",
            "told",
            "writes",
            "first err",
            "written",
            "buffered",
            "acked",
            "log"
        );
        for r in results {
            let _ = writeln!(
                out,
                "  {:>6} {:>7} {:>5} {:>13} {:>6} {:>7} {:>10} {:>8} {:>8} {:>6} {:>4}  {}",
                r.cell.size,
                kib(r.cell.buffer),
                format!("{:?}", r.cell.close).to_lowercase(),
                format!("{:?}", r.cell.behaviour).to_lowercase(),
                r.told_after_ms
                    .map_or("-".to_owned(), |ms| format!("{ms:.1}ms")),
                r.writes,
                r.first_failed_write
                    .as_ref()
                    .map_or("-".to_owned(), |f| f.at_bytes.to_string()),
                r.written,
                r.buffered,
                r.acked.map_or("?".to_owned(), |a| a.to_string()),
                r.outcome_status.map_or("-".to_owned(), |s| s.to_string()),
                match (&r.first_failed_write, &r.finish) {
                    (Some(f), _) => f.error.clone(),
                    (None, Some(Ok(()))) => "finish ok".to_owned(),
                    (None, Some(Err(e))) => format!("finish: {e}"),
                    (None, None) => String::new(),
                }
            );
        }
    }
    out
}

/// The (close, behaviour) pairs present, in sweep order.
fn groups(results: &[CellResult]) -> Vec<(Close, Behaviour)> {
    let mut seen = Vec::new();
    for r in results {
        let key = (r.cell.close, r.cell.behaviour);
        if !seen.contains(&key) {
            seen.push(key);
        }
    }
    seen
}

fn failure_cause(r: &CellResult) -> Option<String> {
    r.first_failed_write
        .as_ref()
        .and_then(|f| f.cause.clone())
        .or_else(|| match &r.finish {
            Some(Err(_)) => r.outcome_cause.clone(),
            _ => None,
        })
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    Some(values[values.len() / 2])
}

/// Sentences stating what was measured.
fn findings(results: &[CellResult], puzzle: &Puzzle, plan: Plan) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(answer) = answer(puzzle, results) {
        out.push(answer);
    }
    if let Some(puzzle) = puzzle_sentence(results) {
        out.push(puzzle);
    }
    for (close, behaviour) in groups(results) {
        let group: Vec<&CellResult> = results
            .iter()
            .filter(|r| r.cell.close == close && r.cell.behaviour == behaviour)
            .collect();
        let who = format!("{}, client {}", behaviour.label(), close_name(close));
        let told: Vec<f64> = group.iter().filter_map(|r| r.told_after_ms).collect();
        let told_part = match median(told.clone()) {
            Some(ms) => format!(
                "the handler was told before writing in {}/{} cells (median {ms:.1} ms after the request; the client left at {} ms); ",
                told.len(),
                group.len(),
                plan.client_leaves_after.as_millis()
            ),
            None => String::new(),
        };
        let at_once = group
            .iter()
            .filter(|r| {
                r.first_failed_write.as_ref().is_some_and(|f| f.index == 1) && r.written == 0
            })
            .count();
        if at_once == group.len() {
            let causes: BTreeSet<String> = group.iter().filter_map(|r| failure_cause(r)).collect();
            let first_piece: BTreeSet<usize> = group
                .iter()
                .filter_map(|r| r.first_failed_write.as_ref().map(|f| f.at_bytes))
                .collect();
            out.push(format!(
                "{who}: {told_part}the first write ({} bytes) failed in every cell, without a syscall (0 bytes written), cause {}, whatever the response or buffer size.",
                join(first_piece.iter().map(|n| n.to_string())),
                join(causes.into_iter())
            ));
            continue;
        }
        // Only hangup's watch can leave writes as they were: the Go-shaped
        // server is compared through its own thresholds.
        if matches!(behaviour, Behaviour::Notify | Behaviour::Abort) {
            let (same, compared) = same_as_conventional(results, &group);
            if compared > 0 && same == compared {
                out.push(format!(
                    "{who}: {told_part}its writes then behaved exactly as on the conventional server ({same}/{compared} cells identical), so a client that only half-closed could still read its response."
                ));
                continue;
            }
        }
        out.push(format!("{who}: {told_part}{}", thresholds(&group)));
    }
    // Only hangup's cells read TCP_INFO.
    let measured: Vec<&CellResult> = results.iter().filter(|r| r.acked.is_some()).collect();
    let acked: BTreeSet<u64> = measured.iter().filter_map(|r| r.acked).collect();
    let written_max = measured.iter().map(|r| r.written).max().unwrap_or(0);
    if !measured.is_empty() {
        out.push(format!(
            "The client's TCP acknowledged {} response bytes across all of hangup's cells, while the kernel accepted up to {written_max} from the server: \"written\" is not \"received\".",
            join(acked.iter().map(|n| n.to_string()))
        ));
    }
    out
}

fn close_name(close: Close) -> &'static str {
    match close {
        Close::Fin => "FIN",
        Close::Rst => "RST",
    }
}

/// How many of `group`'s cells show the same result as the conventional
/// server's cell with the same size, buffer and close.
fn same_as_conventional(results: &[CellResult], group: &[&CellResult]) -> (usize, usize) {
    let mut same = 0;
    let mut compared = 0;
    for r in group {
        let twin = results.iter().find(|c| {
            c.cell.behaviour == Behaviour::Conventional
                && c.cell.close == r.cell.close
                && c.cell.size == r.cell.size
                && c.cell.buffer == r.cell.buffer
        });
        if let Some(twin) = twin {
            compared += 1;
            if code(twin) == code(r) {
                same += 1;
            }
        }
    }
    (same, compared)
}

/// The failure thresholds of a group whose writes go on after the client
/// left, per buffer, with the mechanism as measured in one cell.
fn thresholds(group: &[&CellResult]) -> String {
    let buffers: BTreeSet<usize> = group.iter().map(|r| r.cell.buffer).collect();
    let mut per_buffer = Vec::new();
    let mut example: Option<&CellResult> = None;
    for &buffer in &buffers {
        let first = group
            .iter()
            .filter(|r| r.cell.buffer == buffer && r.first_failed_write.is_some())
            .min_by_key(|r| r.cell.size);
        match first.and_then(|r| r.first_failed_write.as_ref().map(|f| (r, f))) {
            Some((r, f)) => {
                per_buffer.push(format!(
                    "{} B ({:.2}× a {})",
                    f.at_bytes,
                    f.at_bytes as f64 / buffer as f64,
                    kib(buffer)
                ));
                if example.is_none() || buffer == 4096 {
                    example = Some(r);
                }
            }
            None => per_buffer.push(format!("none up to the largest size (a {})", kib(buffer))),
        }
    }
    let silent: Vec<&&CellResult> = group
        .iter()
        .filter(|r| r.first_failed_write.is_none())
        .collect();
    let end_errors = silent
        .iter()
        .filter(|r| matches!(r.finish, Some(Err(_))))
        .count();
    let mechanism = match example {
        Some(r) => {
            let f = r
                .first_failed_write
                .as_ref()
                .map(|f| (f.index, f.cause.clone(), f.errno));
            let (index, cause, errno) = f.unwrap_or((0, None, None));
            let why = if r.written > 0 {
                format!(
                    "the kernel had accepted an earlier socket write of {} bytes without complaint, which drew the client's RST; the next socket write failed",
                    r.written
                )
            } else {
                "it made the first socket write, which failed at once".to_owned()
            };
            format!(
                " With a {} buffer and a {}-byte response, write #{index} failed because {why} ({}{}).",
                kib(r.cell.buffer),
                r.cell.size,
                cause.unwrap_or_else(|| errno_name(errno)),
                errno.map_or(String::new(), |e| format!(", errno {e}")),
            )
        }
        None => String::new(),
    };
    let below = match (end_errors, silent.len()) {
        (_, 0) => String::new(),
        (0, n) => format!(
            " Below those sizes no handler write failed, and in all {n} such cells the bytes went nowhere without an error."
        ),
        (e, n) if e == n => format!(
            " Below those sizes no handler write failed: in all {n} such cells only ending the response failed, after the handler had returned."
        ),
        (e, n) => format!(
            " Below those sizes no handler write failed: in {e} of {n} such cells only ending the response failed (after the handler had returned), and in the other {} the bytes went nowhere without an error.",
            n - e
        ),
    };
    if example.is_none() {
        let n = silent.len();
        return format!(
            "no handler write failed at any size; in {end_errors} of {n} cells only ending the response failed (after the handler had returned), and in the other {} the bytes went nowhere without an error.",
            n - end_errors
        );
    }
    format!(
        "the first failing write came at {}.{mechanism}{below}",
        per_buffer.join(", ")
    )
}

/// What happened to the puzzle's own response: 8061 bytes, a 4 KiB buffer,
/// a client that left with a FIN.
fn puzzle_sentence(results: &[CellResult]) -> Option<String> {
    let find = |behaviour| {
        results.iter().find(|r| {
            r.cell.size == 8061
                && r.cell.buffer == 4096
                && r.cell.close == Close::Fin
                && r.cell.behaviour == behaviour
        })
    };
    let describe = |r: &CellResult| match (&r.first_failed_write, &r.finish) {
        (Some(f), _) => format!(
            "write #{} failed ({}{}) after the kernel had accepted {} bytes",
            f.index,
            f.cause.as_deref().unwrap_or("?"),
            f.errno.map_or(String::new(), |e| format!(", errno {e}")),
            r.written
        ),
        (None, Some(Err(_))) => format!(
            "every handler write succeeded, and only ending the response after the handler returned failed ({}, after the kernel had accepted {} bytes): Go's net/http discards that error",
            r.outcome_cause.as_deref().unwrap_or("?"),
            r.written
        ),
        (None, _) => format!(
            "every write succeeded; the kernel accepted {} bytes and the client acknowledged {}",
            r.written,
            r.acked
                .map_or("an unknown number".to_owned(), |a| a.to_string())
        ),
    };
    let mut parts = Vec::new();
    if let Some(r) = find(Behaviour::Conventional) {
        parts.push(format!("on a conventional server {}", describe(r)));
    }
    if let Some(r) = find(Behaviour::Notify) {
        if let Some(ms) = r.told_after_ms {
            parts.push(format!(
                "hangup (Notify) told the handler {ms:.1} ms after the request, before it wrote"
            ));
        }
    }
    if let Some(r) = find(Behaviour::Abort) {
        parts.push(format!("with on_fin = Abort {}", describe(r)));
    }
    (!parts.is_empty()).then(|| {
        format!(
            "The puzzle (8061 bytes, 4 KiB buffer, client FIN): {}.",
            parts.join("; ")
        )
    })
}

fn join(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

fn framing_name(content_length: bool) -> &'static str {
    if content_length {
        "Content-Length"
    } else {
        "chunked"
    }
}

/// The socket writes inside a probe's `Write`: `4096 ok, 4096 EPIPE`.
fn socket_writes(probe: &Probe) -> String {
    let (accepted, failed) = probe.handler_socket_writes();
    let mut parts: Vec<String> = accepted.iter().map(|n| format!("{n} ok")).collect();
    if let Some((bytes, errno)) = failed {
        parts.push(format!("{bytes} {}", errno_name(errno)));
    }
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(", ")
    }
}

/// What happened at the size below the threshold: its total and how the
/// response ended after the handler returned.
fn below(probe: &Probe) -> String {
    let ending = match &probe.trace.finish {
        Some(Err(_)) => "end-err",
        Some(Ok(())) => "no-err",
        None => "?",
    };
    format!("{} B, {ending}", probe.total_bytes())
}

/// The question's table: one row per threshold search.
fn threshold_table(puzzle: &Puzzle) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "The question, to the byte: one Write of N bytes after the client left, on a Go-shaped server\n\
         (a model of Go 1.19 net/http: a {RESPONSE_BUFFER_BYTES}-byte response buffer, then the connection's buffer, {} in Go)",
        kib(CONN_BUFFER_BYTES)
    );
    let _ = writeln!(
        out,
        "  {:<6} {:<15} {:>7} {:>16}  {:<26} {:<27} at N - 1 (total, end)",
        "client",
        "framing",
        "buffer",
        "first failing N",
        "head + framing + N",
        "socket writes in that Write",
    );
    for t in &puzzle.thresholds {
        let (first, sum, writes) = match &t.first_failing {
            Some(p) => (
                p.size.to_string(),
                format!(
                    "{} + {} + {} = {}",
                    p.trace.head_bytes,
                    p.trace.chunk_framing_bytes,
                    p.size,
                    p.total_bytes()
                ),
                socket_writes(p),
            ),
            None => (
                format!("none ≤ {}", t.searched_up_to),
                String::new(),
                String::new(),
            ),
        };
        let _ = writeln!(
            out,
            "  {:<6} {:<15} {:>7} {:>16}  {:<26} {:<27} {}",
            close_name(t.search.close),
            framing_name(t.search.content_length),
            kib(t.search.conn_buffer),
            first,
            sum,
            writes,
            t.last_passing.as_ref().map(below).unwrap_or_default()
        );
    }
    out.push_str(
        "  (end-err: the Write succeeded and the flush after the handler returned failed, an error Go discards)\n",
    );
    out
}

/// The first finding: the question answered in this run's numbers, from
/// the threshold searches and hangup's Abort cells.
fn answer(puzzle: &Puzzle, results: &[CellResult]) -> Option<String> {
    let fin = puzzle.find(Close::Fin, false, CONN_BUFFER_BYTES)?;
    let buffer = kib(CONN_BUFFER_BYTES);
    let mut parts = Vec::new();
    let fin_total = fin.first_failing.as_ref().map(Probe::total_bytes);
    match (&fin.first_failing, fin.last_passing.as_ref()) {
        (Some(first), last) => {
            let (accepted, failed) = first.handler_socket_writes();
            let limit = last.map_or(String::new(), |l| {
                format!(" first passed {} B", l.total_bytes())
            });
            let question = puzzle.question.as_ref().map_or(String::new(), |q| {
                format!(
                    " (the question's {QUESTION_BYTES} bytes: {} B, {})",
                    q.total_bytes(),
                    if q.failed() { "failed" } else { "did not fail" }
                )
            });
            let writes = match (accepted.as_slice(), failed) {
                ([], Some((bytes, errno))) => format!(
                    "that Write's first socket write ({bytes} B) failed with {}",
                    errno_name(errno)
                ),
                (ok, Some((bytes, errno))) => format!(
                    "that Write made {} socket writes, {} accepted by the kernel and answered by the client's kernel with an RST, then one of {bytes} B failing with {}; so the limit is {} writes of the {buffer} connection buffer",
                    ok.len() + 1,
                    join(ok.iter().map(|n| format!("{n} B"))),
                    errno_name(errno),
                    ok.len() + 1,
                ),
                (_, None) => "its socket writes were all accepted".to_owned(),
            };
            let after = match last.and_then(|l| l.trace.finish.as_ref()) {
                Some(Err(_)) => ", and one byte less the Write succeeds and only the flush after the handler returned fails, an error Go discards",
                Some(Ok(())) => ", and one byte less nothing fails at all",
                None => "",
            };
            parts.push(format!(
                "The question, answered from this run: after the client's FIN, one Write of N bytes to the Go-shaped server failed from N = {}, when head ({} B) + chunk framing ({} B) + N{limit}{question}: {writes}{after}",
                first.size, first.trace.head_bytes, first.trace.chunk_framing_bytes
            ));
        }
        (None, _) => parts.push(format!(
            "The question, answered from this run: after the client's FIN, no single Write of up to {} bytes to the Go-shaped server failed",
            fin.searched_up_to
        )),
    }
    if let Some(first) = puzzle
        .find(Close::Fin, true, CONN_BUFFER_BYTES)
        .and_then(|t| t.first_failing.as_ref())
    {
        // Said only when measured: the same total with and without chunks.
        let (lead, same) = if Some(first.total_bytes()) == fin_total {
            ("chunking does not matter: ", "the same ")
        } else {
            ("", "")
        };
        parts.push(format!(
            "{lead}with Content-Length set by the handler (head {} B, no framing) it failed from N = {}, {same}{} B in total",
            first.trace.head_bytes,
            first.size,
            first.total_bytes()
        ));
    }
    if let Some(rst) = puzzle.find(Close::Rst, false, CONN_BUFFER_BYTES) {
        let rst_cl = puzzle
            .find(Close::Rst, true, CONN_BUFFER_BYTES)
            .and_then(|t| t.first_failing.as_ref())
            .map_or(String::new(), |p| {
                format!(", {} with Content-Length", p.size)
            });
        match &rst.first_failing {
            Some(first) => {
                let (accepted, failed) = first.handler_socket_writes();
                let how = match (accepted.is_empty(), failed) {
                    (true, Some((bytes, errno))) => format!(
                        "the very first socket write ({bytes} B) failed ({})",
                        errno_name(errno)
                    ),
                    _ => format!("the Write made socket writes {}", socket_writes(first)),
                };
                // Said only when measured: FIN and RST differ.
                let lead = if Some(first.total_bytes()) == fin_total {
                    "after an RST too"
                } else {
                    "what matters about the client is only how it leaves: after an RST"
                };
                parts.push(format!(
                    "{lead} {how}, from N = {} ({} B in total{rst_cl})",
                    first.size,
                    first.total_bytes()
                ));
            }
            None => parts.push(format!(
                "after an RST no single Write of up to {} bytes failed",
                rst.searched_up_to
            )),
        }
    }
    let others: Vec<String> = puzzle
        .thresholds
        .iter()
        .filter(|t| {
            t.search.close == Close::Fin
                && !t.search.content_length
                && t.search.conn_buffer != CONN_BUFFER_BYTES
        })
        .map(|t| match &t.first_failing {
            Some(p) => format!(
                "with {} from N = {} ({} B)",
                kib(t.search.conn_buffer),
                p.size,
                p.total_bytes()
            ),
            None => format!(
                "with {}: none up to {}",
                kib(t.search.conn_buffer),
                t.searched_up_to
            ),
        })
        .collect();
    if !others.is_empty() {
        parts.push(format!(
            "the connection buffer moves it (after a FIN, chunked: {}; Go's is fixed at {buffer} in net/http)",
            others.join(", ")
        ));
    }
    let abort: Vec<&CellResult> = results
        .iter()
        .filter(|r| r.cell.behaviour == Behaviour::Abort)
        .collect();
    if !abort.is_empty() {
        let at_once = abort
            .iter()
            .filter(|r| {
                r.first_failed_write.as_ref().is_some_and(|f| f.index == 1) && r.written == 0
            })
            .count();
        let smallest = abort.iter().map(|r| r.cell.size).min().unwrap_or(0);
        let largest = abort.iter().map(|r| r.cell.size).max().unwrap_or(0);
        let sizes = if smallest == largest {
            format!("{smallest} B")
        } else {
            format!("{smallest} to {largest} B")
        };
        parts.push(format!(
            "and hangup's socket watch makes the first write fail at any size: with on_fin = Abort, write #1 failed before any byte reached the kernel in {at_once} of {} cells ({sizes})",
            abort.len()
        ));
    }
    Some(format!("{}.", parts.join("; ")))
}
