//! `hangup lab`, run as a built binary with a small sweep: the measured
//! facts it must report, and its JSON and SVG outputs.

use std::process::Command;

fn lab(args: &[&str]) -> std::process::Output {
    let output = Command::new(env!("CARGO_BIN_EXE_hangup"))
        .arg("lab")
        .args(["--quiet", "--buffers", "4k", "--sizes", "1k,12k"])
        .args(args)
        .output()
        .expect("run hangup lab");
    assert!(
        output.status.success(),
        "hangup lab failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn cells(json: &serde_json::Value) -> &Vec<serde_json::Value> {
    json["cells"].as_array().expect("cells")
}

#[test]
fn lab_json_reports_the_threshold_and_the_watch() {
    let output = lab(&["--json"]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
    let cells = cells(&json);
    // 2 sizes × 1 buffer × 2 closes × 4 behaviours.
    assert_eq!(cells.len(), 16, "{json:#}");
    for field in [
        "size",
        "first_failed_write",
        "buffer",
        "close",
        "behaviour",
        "writes",
        "written",
        "buffered",
        "acked",
        "outcome_status",
    ] {
        assert!(
            cells.iter().all(|c| c.get(field).is_some()),
            "every cell has {field}"
        );
    }
    let find = |size: u64, close: &str, behaviour: &str| {
        cells
            .iter()
            .find(|c| c["size"] == size && c["close"] == close && c["behaviour"] == behaviour)
            .unwrap_or_else(|| panic!("no cell {size} {close} {behaviour}"))
    };
    // Watch on + Abort: the first write fails, for every size and close.
    for size in [1024, 12288] {
        for close in ["fin", "rst"] {
            let cell = find(size, close, "abort");
            assert_eq!(cell["first_failed_write"]["index"], 1, "{cell:#}");
            assert_eq!(cell["written"], 0, "no syscall: {cell:#}");
        }
    }
    // Watch off, FIN: a threshold exists. A small response sees no write
    // error; a large one fails at a later write, after the kernel took some.
    let small = find(1024, "fin", "conventional");
    assert!(small["first_failed_write"].is_null(), "{small:#}");
    let large = find(12288, "fin", "conventional");
    let failed = &large["first_failed_write"];
    assert!(failed["index"].as_u64().unwrap() > 1, "{large:#}");
    assert!(large["written"].as_u64().unwrap() > 0, "{large:#}");
    assert_eq!(large["acked"], 0);
    // Notify: the handler was told before writing.
    assert!(find(1024, "fin", "notify")["told_before_writing"].is_string());
    // The Go-shaped server: after a FIN, a 12 KiB response's Writes fail
    // with EPIPE; 1 KiB waits in Go's response buffer until the handler
    // returned, so none of its Writes can fail.
    let go = find(12288, "fin", "go");
    assert_eq!(go["first_failed_write"]["errno"], libc::EPIPE, "{go:#}");
    assert!(find(1024, "fin", "go")["first_failed_write"].is_null());
}

fn usize_of(value: &serde_json::Value) -> usize {
    value
        .as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or_else(|| panic!("not a size: {value}"))
}

/// Head, chunk framing and body of one probe of the threshold search.
fn total_bytes(probe: &serde_json::Value) -> usize {
    usize_of(&probe["head_bytes"])
        + usize_of(&probe["chunk_framing_bytes"])
        + usize_of(&probe["size"])
}

/// The question, to the byte, on whatever kernel runs the test: after a FIN
/// the first failing single Write is the one whose head, chunk framing and
/// body pass two 4 KiB buffers (the first socket write is accepted, the
/// second fails), and one byte less fits; after an RST, one buffer.
#[test]
fn lab_json_finds_the_go_threshold_at_two_buffers_after_fin_one_after_rst() {
    let output = lab(&["--json", "--behaviour", "go"]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
    let thresholds = json["puzzle"]["thresholds"].as_array().expect("thresholds");
    for (close, limit, accepted_before) in [("fin", 8192, vec![4096]), ("rst", 4096, vec![])] {
        for content_length in [false, true] {
            let t = thresholds
                .iter()
                .find(|t| {
                    t["close"] == close
                        && t["content_length"] == content_length
                        && t["conn_buffer"] == 4096
                })
                .unwrap_or_else(|| panic!("no threshold {close} {content_length}: {json:#}"));
            let first = &t["first_failing"];
            let last = &t["last_passing"];
            assert_eq!(
                usize_of(&last["size"]) + 1,
                usize_of(&first["size"]),
                "{t:#}"
            );
            assert!(
                total_bytes(first) > limit && total_bytes(last) <= limit,
                "{close}, Content-Length {content_length}: {} and {} bytes around {limit}: {t:#}",
                total_bytes(last),
                total_bytes(first)
            );
            assert_eq!(
                first["chunk_framing_bytes"] == 0,
                content_length,
                "chunk framing only without Content-Length: {t:#}"
            );
            // The failing Write's socket writes: full buffers accepted, then
            // one failure.
            let writes: Vec<&serde_json::Value> = first["socket_writes"]
                .as_array()
                .expect("socket writes")
                .iter()
                .filter(|w| w["stage"] == "handler")
                .collect();
            let (failed, ok) = writes.split_last().expect("a socket write");
            assert!(failed["errno"].is_i64(), "{t:#}");
            let ok: Vec<usize> = ok.iter().map(|w| usize_of(&w["accepted"])).collect();
            assert_eq!(ok, accepted_before, "{t:#}");
            // One byte less: the Write succeeds, and only the flush after
            // the handler returned fails.
            assert!(last["failed_write"].is_null(), "{t:#}");
            assert!(last["finish"]["Err"].is_string(), "{t:#}");
        }
    }
}

#[test]
fn lab_tables_state_findings_and_svg_is_written() {
    let svg = std::env::temp_dir().join(format!("hangup-lab-{}.svg", std::process::id()));
    let output = lab(&["--svg", svg.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("What this run found"), "{text}");
    assert!(
        text.contains("client FIN · conventional server (watch off)"),
        "{text}"
    );
    assert!(text.contains("the first failing write came at"), "{text}");
    // The question's table comes first, and the first finding answers it
    // with the table's own numbers.
    assert!(
        text.starts_with("The question, to the byte: one Write of N bytes"),
        "{text}"
    );
    let row = text
        .lines()
        .find(|l| l.trim_start().starts_with("FIN    chunked           4 KiB"))
        .unwrap_or_else(|| panic!("no FIN chunked row: {text}"));
    let n = row.split_whitespace().nth(4).expect("first failing N");
    let findings = text
        .split("What this run found\n")
        .nth(1)
        .expect("findings");
    let answer = findings.lines().next().expect("a first finding");
    assert!(
        answer.starts_with("- The question, answered from this run: after the client's FIN")
            && answer.contains(&format!("failed from N = {n},")),
        "{answer}\n{row}"
    );
    for part in [
        "socket writes",
        "chunking does not matter",
        "after an RST",
        "hangup's socket watch makes the first write fail at any size",
    ] {
        assert!(answer.contains(part), "{part}: {answer}");
    }
    let drawn = std::fs::read_to_string(&svg).expect("the SVG file");
    let _ = std::fs::remove_file(&svg);
    assert!(drawn.starts_with("<svg") && drawn.trim_end().ends_with("</svg>"));
    assert!(drawn.contains("<circle"), "points are drawn");
}

#[test]
fn lab_rejects_bad_arguments_with_a_hint() {
    let output = Command::new(env!("CARGO_BIN_EXE_hangup"))
        .args(["lab", "--sizes", "12q"])
        .output()
        .expect("run hangup lab");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("e.g. 8061, 4k"), "{stderr}");
}
