//! `--svg`: the first failing write against response size, one line per
//! buffer size, for the server whose writes go on after the FIN (the
//! conventional server, or else `Notify`). Hand-written SVG, no crate.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::cell::{Behaviour, CellResult, Close, Plan};

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 420.0;
const MARGIN: f64 = 60.0;
const COLOURS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
];

/// Renders the chart. Cells with no failing write sit on the x axis as
/// hollow circles: the handler never learned that its bytes went nowhere.
pub fn chart(results: &[CellResult], plan: Plan) -> String {
    let behaviour = [Behaviour::Conventional, Behaviour::Notify]
        .into_iter()
        .find(|b| {
            results
                .iter()
                .any(|r| r.cell.behaviour == *b && r.cell.close == Close::Fin)
        });
    let cells: Vec<&CellResult> = results
        .iter()
        .filter(|r| Some(r.cell.behaviour) == behaviour && r.cell.close == Close::Fin)
        .collect();
    let max_size = cells.iter().map(|r| r.cell.size).max().unwrap_or(1).max(1) as f64;
    let max_at = cells
        .iter()
        .filter_map(|r| r.first_failed_write.as_ref().map(|f| f.at_bytes))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let max_y = max_at.max(max_size);
    let x = |size: f64| MARGIN + size / max_size * (WIDTH - 2.0 * MARGIN);
    let y = |bytes: f64| HEIGHT - MARGIN - bytes / max_y * (HEIGHT - 2.0 * MARGIN);

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let title = match behaviour {
        Some(b) => format!(
            "First failing handler write after a client FIN: {}",
            b.label()
        ),
        None => "No FIN cells without the abort policy in this run".to_owned(),
    };
    let _ = writeln!(
        svg,
        r#"<text x="{MARGIN}" y="24" font-size="14">{}</text>"#,
        escape(&title)
    );
    let _ = writeln!(
        svg,
        r#"<text x="{MARGIN}" y="40" fill="gray">{}-byte writes; hollow circles: no write failed (the bytes went nowhere)</text>"#,
        plan.piece
    );
    // Axes.
    let (x0, y0) = (MARGIN, HEIGHT - MARGIN);
    let _ = writeln!(
        svg,
        r#"<line x1="{x0}" y1="{y0}" x2="{}" y2="{y0}" stroke="black"/>"#,
        WIDTH - MARGIN
    );
    let _ = writeln!(
        svg,
        r#"<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{MARGIN}" stroke="black"/>"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">response size (bytes)</text>"#,
        WIDTH / 2.0,
        HEIGHT - 20.0
    );
    let _ = writeln!(
        svg,
        r#"<text x="16" y="{}" transform="rotate(-90 16 {})" text-anchor="middle">body bytes at the first failing write</text>"#,
        HEIGHT / 2.0,
        HEIGHT / 2.0
    );
    for i in 0..=4 {
        let size = max_size * f64::from(i) / 4.0;
        let bytes = max_y * f64::from(i) / 4.0;
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{size:.0}</text>"#,
            x(size),
            y0 + 16.0
        );
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{bytes:.0}</text>"#,
            x0 - 6.0,
            y(bytes) + 4.0
        );
    }
    let buffers: BTreeSet<usize> = cells.iter().map(|r| r.cell.buffer).collect();
    for (i, buffer) in buffers.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let mut points: Vec<&CellResult> = cells
            .iter()
            .copied()
            .filter(|r| r.cell.buffer == *buffer)
            .collect();
        points.sort_by_key(|r| r.cell.size);
        let failing: Vec<String> = points
            .iter()
            .filter_map(|r| {
                r.first_failed_write
                    .as_ref()
                    .map(|f| format!("{:.1},{:.1}", x(r.cell.size as f64), y(f.at_bytes as f64)))
            })
            .collect();
        if failing.len() > 1 {
            let _ = writeln!(
                svg,
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
                failing.join(" ")
            );
        }
        for r in &points {
            let (cx, cy, fill) = match &r.first_failed_write {
                Some(f) => (x(r.cell.size as f64), y(f.at_bytes as f64), colour),
                None => (x(r.cell.size as f64), y0, "white"),
            };
            let _ = writeln!(
                svg,
                r#"<circle cx="{cx:.1}" cy="{cy:.1}" r="4" fill="{fill}" stroke="{colour}" stroke-width="2"/>"#
            );
        }
        let ly = MARGIN + 16.0 * i as f64;
        let _ = writeln!(
            svg,
            r#"<rect x="{}" y="{}" width="10" height="10" fill="{colour}"/><text x="{}" y="{}">buffer {} B</text>"#,
            WIDTH - MARGIN - 110.0,
            ly - 9.0,
            WIDTH - MARGIN - 95.0,
            ly,
            buffer
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
