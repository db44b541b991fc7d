//! `hangup lab`: the broken-pipe puzzle, reproduced on this machine and
//! explained from what was measured.
//!
//! First the question itself, to the byte: on a model of Go's `net/http`
//! (`go.rs`), the smallest response whose one `Write` fails after the client
//! left, by FIN or RST, chunked or with `Content-Length`, and by buffer
//! size (`puzzle.rs`).
//!
//! Then the sweep. Each *cell* runs a fresh in-process server on 127.0.0.1
//! and one client that sends a GET and gives up (FIN or RST) while the
//! handler sleeps; the handler then writes the response in pieces and
//! records what every write returned. The sweep crosses response size ×
//! output buffer size × how the client leaves × server behaviour (hangup
//! with and without its socket watch, and the Go-shaped server). Cells run
//! a few at a time, so the default run takes seconds.

mod cell;
mod go;
mod puzzle;
mod report;
mod svg;

use std::time::Duration;

use cell::{Behaviour, Cell, CellResult, Close, Plan};
use indicatif::{ProgressBar, ProgressStyle};

/// Arguments of `hangup lab`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Each cell: a client sends GET and closes after --client-leaves-after; the
handler sleeps --handler-waits, then writes SIZE bytes in --piece pieces
and stops at the first error, as a conventional handler would. On the
Go-shaped server (--behaviour go) the client leaves once the handler has
started and the handler writes once the server saw it leave; its table of
thresholds (one Write of N bytes) comes first.

Examples:
  hangup lab                                  the default sweep
  hangup lab --sizes 8061 --buffers 4k        the puzzle's one cell, all behaviours
  hangup lab --piece 0                        one big write per response
  hangup lab --behaviour go --json            the Go model's thresholds and cells
  hangup lab --json > lab.json --svg lab.svg  raw results and a chart")]
pub struct Args {
    /// Response sizes in bytes (suffixes k/K/KiB = 1024). Default: 1×, 2× and
    /// 3× each buffer size, ±512 around 2×, plus the puzzle's 8061.
    #[arg(long, value_delimiter = ',', value_parser = parse_size)]
    sizes: Vec<usize>,
    /// Output buffer sizes (`write_buffer_bytes`) to sweep.
    #[arg(long, value_delimiter = ',', value_parser = parse_size, default_value = "2k,4k,8k,16k")]
    buffers: Vec<usize>,
    /// Bytes per handler write (0: one write of the whole response).
    #[arg(long, value_parser = parse_size, default_value = "512")]
    piece: usize,
    /// How the client leaves: fin, rst, or both.
    #[arg(long, value_delimiter = ',', default_value = "fin,rst")]
    close: Vec<CloseArg>,
    /// Server behaviours: go (a model of Go 1.19 net/http, with the
    /// question's thresholds), conventional (hangup, socket watch off),
    /// notify, abort.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "go,conventional,notify,abort"
    )]
    behaviour: Vec<BehaviourArg>,
    /// The handler sets Content-Length to the response size before writing
    /// (the sweep's cells; the Go thresholds are measured both ways).
    #[arg(long)]
    content_length: bool,
    /// Milliseconds between the client's request and its leaving.
    #[arg(long, default_value_t = 20)]
    client_leaves_after: u64,
    /// Milliseconds the handler sleeps before writing (longer than
    /// --client-leaves-after, so the client is gone when it writes).
    #[arg(long, default_value_t = 80)]
    handler_waits: u64,
    /// Cells run at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Print every cell's detail, not just the summary tables.
    #[arg(long)]
    detail: bool,
    /// Print the raw results as JSON on stdout instead of tables.
    #[arg(long)]
    json: bool,
    /// Write an SVG chart of the first failing write against response size.
    #[arg(long, value_name = "FILE")]
    svg: Option<std::path::PathBuf>,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum CloseArg {
    Fin,
    Rst,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum BehaviourArg {
    Go,
    Conventional,
    Notify,
    Abort,
}

/// `8061`, `4k`, `4K`, `4KiB`, `1m`.
fn parse_size(text: &str) -> Result<usize, String> {
    let lower = text.trim().to_ascii_lowercase();
    let (digits, unit) = match lower.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => lower.split_at(at),
        None => (lower.as_str(), ""),
    };
    let multiplier = match unit {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        _ => {
            return Err(format!(
                "{text:?}: use bytes, or a k / m suffix (e.g. 8061, 4k)"
            ));
        }
    };
    let n: usize = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size (e.g. 8061, 4k)"))?;
    Ok(n * multiplier)
}

/// The default sizes: for each buffer B, B, 2B - 512, 2B, 2B + 512, 3B;
/// and 8061, the puzzle's size.
fn default_sizes(buffers: &[usize]) -> Vec<usize> {
    let mut sizes: Vec<usize> = buffers
        .iter()
        .flat_map(|&b| [b, (2 * b).saturating_sub(512), 2 * b, 2 * b + 512, 3 * b])
        .chain([8061])
        .filter(|&s| s > 0)
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    sizes
}

pub fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if args.buffers.contains(&0) {
        return Err("--buffers: a buffer must be at least 1 byte".into());
    }
    if args.handler_waits <= args.client_leaves_after {
        return Err("--handler-waits must be longer than --client-leaves-after, or the client is still there".into());
    }
    let sizes = if args.sizes.is_empty() {
        default_sizes(&args.buffers)
    } else {
        args.sizes.clone()
    };
    let plan = Plan {
        piece: args.piece,
        client_leaves_after: Duration::from_millis(args.client_leaves_after),
        handler_waits: Duration::from_millis(args.handler_waits),
        content_length: args.content_length,
    };
    let closes: Vec<Close> = dedup(args.close.iter().map(|c| match c {
        CloseArg::Fin => Close::Fin,
        CloseArg::Rst => Close::Rst,
    }));
    let behaviours: Vec<Behaviour> = dedup(args.behaviour.iter().map(|b| match b {
        BehaviourArg::Conventional => Behaviour::Conventional,
        BehaviourArg::Notify => Behaviour::Notify,
        BehaviourArg::Abort => Behaviour::Abort,
        BehaviourArg::Go => Behaviour::Go,
    }));
    let mut cells = Vec::new();
    for &behaviour in &behaviours {
        for &close in &closes {
            for &buffer in &args.buffers {
                for &size in &sizes {
                    cells.push(Cell {
                        size,
                        buffer,
                        close,
                        behaviour,
                    });
                }
            }
        }
    }

    let progress = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(cells.len() as u64).with_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} cells, {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        )
    };
    progress.set_prefix("lab");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let puzzle = if behaviours.contains(&Behaviour::Go) {
        runtime.block_on(puzzle::measure(puzzle::searches(&closes, &args.buffers)))?
    } else {
        puzzle::Puzzle::default()
    };
    let results = runtime.block_on(run_cells(cells, plan, args.concurrency.max(1), &progress))?;
    progress.finish_and_clear();

    if let Some(path) = &args.svg {
        std::fs::write(path, svg::chart(&results, plan))
            .map_err(|e| format!("cannot write the SVG to {}: {e}", path.display()))?;
    }
    if args.json {
        let json = serde_json::json!({ "plan": plan, "puzzle": puzzle, "cells": results });
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        print!(
            "{}",
            report::render(&results, &puzzle, plan, &args.buffers, &sizes, args.detail)
        );
    }
    Ok(())
}

fn dedup<T: PartialEq>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut out = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// Runs every cell, `concurrency` at a time, in the order given.
async fn run_cells(
    cells: Vec<Cell>,
    plan: Plan,
    concurrency: usize,
    progress: &ProgressBar,
) -> Result<Vec<CellResult>, String> {
    let mut results: Vec<Option<CellResult>> = vec![None; cells.len()];
    let mut running = tokio::task::JoinSet::new();
    let mut next = 0;
    while next < cells.len() || !running.is_empty() {
        while next < cells.len() && running.len() < concurrency {
            let cell = cells[next];
            let index = next;
            running.spawn(async move {
                let result = match cell.behaviour {
                    Behaviour::Go => go::run_cell(cell, plan).await,
                    _ => cell::run(cell, plan).await,
                };
                (index, result)
            });
            next += 1;
        }
        if let Some(joined) = running.join_next().await {
            let (index, result) = joined.map_err(|e| format!("a lab cell crashed: {e}"))?;
            let cell = &cells[index];
            let result = result.map_err(|e| {
                format!(
                    "cell size={} buffer={} close={:?} behaviour={:?} failed: {e}",
                    cell.size, cell.buffer, cell.close, cell.behaviour
                )
            })?;
            results[index] = Some(result);
            progress.inc(1);
        }
    }
    Ok(results.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_suffixes() {
        assert_eq!(parse_size("8061"), Ok(8061));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("16KiB"), Ok(16384));
        assert_eq!(parse_size("1m"), Ok(1 << 20));
        assert!(parse_size("4x").is_err());
        assert!(parse_size("k").is_err());
    }

    #[test]
    fn default_sizes_bracket_each_buffer() {
        let sizes = default_sizes(&[4096]);
        assert_eq!(sizes, vec![4096, 7680, 8061, 8192, 8704, 12288]);
    }
}
