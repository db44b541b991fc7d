//! `hangup serve --upload`: uploads that never leave a half-written file.
//! A complete upload arrives byte for byte; a client that resets halfway
//! leaves no file and no temporary file, and a 499 line with the bytes
//! received; uploads racing to one name end with one whole file; the
//! rules (limit, overwrite, preconditions, containment, hidden names)
//! answer before anything is kept. Run as the built binary over raw
//! sockets.

use std::path::Path;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use crate::cli_serve::{Served, field, number, request, site};
use crate::support::*;

/// The byte at `i` of upload number `seed`: not periodic at any power of
/// two, and different per seed, so a mix of two uploads shows.
fn upload_byte(seed: u8, i: usize) -> u8 {
    ((i % 251) as u8) ^ ((i / 65_521) as u8) ^ seed.wrapping_mul(37)
}

fn upload_body(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| upload_byte(seed, i)).collect()
}

/// A PUT of `body` to `target` with `extra` header lines.
fn put(target: &str, body: &[u8], extra: &[(&str, &str)]) -> Vec<u8> {
    let length = body.len().to_string();
    let mut fields = vec![("Content-Length", length.as_str())];
    fields.extend_from_slice(extra);
    let mut bytes = request("PUT", target, &fields);
    bytes.extend_from_slice(body);
    bytes
}

/// Names in `dir` that belong to uploads in progress.
fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".hangup-upload-"))
        .collect()
}

/// The length of the one temporary upload file in `dir`, if there is one.
fn temporary_len(dir: &Path) -> Option<u64> {
    let names = temporaries(dir);
    let name = names.first()?;
    std::fs::metadata(dir.join(name)).ok().map(|m| m.len())
}

#[tokio::test]
async fn a_complete_upload_arrives_byte_for_byte_and_reads_back() {
    let (_scratch, root) = site("upload-complete");
    let served = Served::start_with(&root, "info", &["--upload"]);
    let body = upload_body(1, 3 << 20);
    let response = served
        .exchange(&put("/listing/sub/data.bin", &body, &[]))
        .await;
    assert_eq!(response.status, 201, "{}", response.text());
    assert_eq!(response.header("location"), Some("/listing/sub/data.bin"));
    let etag = response
        .header("etag")
        .expect("the stored file's tag")
        .to_owned();
    let stored = std::fs::read(root.join("listing/sub/data.bin")).unwrap();
    assert!(stored == body, "the stored file differs from the body");
    assert!(temporaries(&root.join("listing/sub")).is_empty());
    let back = served.get("/listing/sub/data.bin", &[]).await;
    assert!(back.body == body);
    assert_eq!(back.header("etag"), Some(etag.as_str()));

    // A chunked body too, and an empty one.
    let mut chunked = request("PUT", "/chunked.txt", &[("Transfer-Encoding", "chunked")]);
    chunked.extend_from_slice(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    assert_eq!(served.exchange(&chunked).await.status, 201);
    assert_eq!(
        std::fs::read(root.join("chunked.txt")).unwrap(),
        b"hello world"
    );
    assert_eq!(
        served.exchange(&put("/empty.txt", b"", &[])).await.status,
        201
    );
    assert_eq!(std::fs::read(root.join("empty.txt")).unwrap(), b"");

    let line = served
        .stderr
        .wait_for("the stored line", |l| {
            l.contains("upload stored") && l.contains("data.bin")
        })
        .await;
    assert_eq!(number(&line, "bytes"), body.len() as u64, "{line}");
}

/// 1. A client sends the head of a 4 MiB PUT and the first 2 MiB.
/// 2. It waits until the server has written those 2 MiB to the
///    temporary file (the file on disk is the signal), then resets.
/// 3. The server logs 499 (access line) and the bytes it received
///    (upload line); neither the file nor any temporary file is left.
#[tokio::test]
async fn an_upload_reset_halfway_leaves_nothing_and_logs_499_with_the_bytes_received() {
    const TOTAL: usize = 4 << 20;
    let (_scratch, root) = site("upload-reset");
    let served = Served::start_with(&root, "info", &["--upload"]);
    let body = upload_body(2, TOTAL);
    let mut stream = connect(served.addr).await;
    let head = request(
        "PUT",
        "/half.bin",
        &[("Content-Length", &TOTAL.to_string())],
    );
    send(&mut stream, &head).await;
    send(&mut stream, &body[..TOTAL / 2]).await;
    stream.flush().await.unwrap();
    let deadline = Instant::now() + LIMIT;
    while temporary_len(&root) != Some((TOTAL / 2) as u64) {
        assert!(
            Instant::now() < deadline,
            "the first half never reached the temporary file ({:?} bytes): {}",
            temporary_len(&root),
            served.stderr.text()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // SO_LINGER 0: the close sends an RST, as a cancelled upload does.
    reset(stream);

    let access = served
        .stderr
        .wait_for("the 499 access line", |l| {
            l.contains("hangup::access") && l.contains(" target=/half.bin ")
        })
        .await;
    assert_eq!(field(&access, "status"), Some("499"), "{access}");
    assert_eq!(
        field(&access, "phase"),
        Some("\"reading_body\""),
        "{access}"
    );
    let upload = served
        .stderr
        .wait_for("the abandoned upload line", |l| {
            l.contains("upload abandoned")
        })
        .await;
    assert_eq!(field(&upload, "status"), Some("499"), "{upload}");
    assert_eq!(number(&upload, "received"), (TOTAL / 2) as u64, "{upload}");
    assert!(
        !root.join("half.bin").exists(),
        "a half-written file was kept"
    );
    assert!(temporaries(&root).is_empty(), "{:?}", temporaries(&root));
    let text = served.stderr.text();
    assert!(!text.contains("WARN") && !text.contains("ERROR"), "{text}");
}

#[tokio::test]
async fn existing_files_are_replaced_only_with_overwrite_and_preconditions_hold() {
    let (_scratch, root) = site("upload-overwrite");
    let served = Served::start_with(&root, "info", &["--upload"]);
    let conflict = served.exchange(&put("/hello.txt", b"new", &[])).await;
    assert_eq!(conflict.status, 409, "{}", conflict.text());
    let only_new = served
        .exchange(&put("/hello.txt", b"new", &[("If-None-Match", "*")]))
        .await;
    assert_eq!(only_new.status, 412);
    assert_eq!(
        std::fs::read(root.join("hello.txt")).unwrap(),
        b"Hello, hangup!\n"
    );
    drop(served);

    let served = Served::start_with(&root, "info", &["--upload", "--overwrite"]);
    let etag = served
        .get("/hello.txt", &[])
        .await
        .header("etag")
        .unwrap()
        .to_owned();
    let stale = served
        .exchange(&put("/hello.txt", b"new", &[("If-Match", "\"stale\"")]))
        .await;
    assert_eq!(stale.status, 412);
    let replaced = served
        .exchange(&put("/hello.txt", b"replaced\n", &[("If-Match", &etag)]))
        .await;
    assert_eq!(replaced.status, 204, "{}", replaced.text());
    assert_eq!(
        std::fs::read(root.join("hello.txt")).unwrap(),
        b"replaced\n"
    );
    let new_tag = replaced.header("etag").unwrap();
    assert_ne!(new_tag, etag);
    assert_eq!(
        served.get("/hello.txt", &[]).await.header("etag"),
        Some(new_tag)
    );
    assert_eq!(
        served
            .exchange(&put("/hello.txt", b"x", &[("If-None-Match", "*")]))
            .await
            .status,
        412
    );
    // A directory is never replaced.
    assert_eq!(served.exchange(&put("/docs", b"x", &[])).await.status, 409);
    assert!(root.join("docs/index.html").exists());
    assert!(temporaries(&root).is_empty());
}

/// A precompressed copy is what clients that accept its coding get for
/// its file: uploading `hello.txt.gz` next to `hello.txt` replaces what
/// they read, so it needs `--overwrite` like any replacement (PUT and
/// form alike); and a copy older than its file (the file was replaced
/// since) is not served, lest it send the old content.
#[tokio::test]
async fn precompressed_copies_need_overwrite_and_a_stale_one_is_not_served() {
    let (_scratch, root) = site("upload-sibling");
    let served = Served::start_with(&root, "info", &["--upload"]);
    let put_copy = served.exchange(&put("/hello.txt.gz", b"EVIL", &[])).await;
    assert_eq!(put_copy.status, 409, "{}", put_copy.text());
    assert!(
        put_copy.text().contains("--overwrite"),
        "{}",
        put_copy.text()
    );
    let form_copy = served
        .exchange(&post_form(
            "/",
            &form("XyZ", &[("hello.txt.br", b"EVIL")]),
            &[],
        ))
        .await;
    assert_eq!(form_copy.status, 409, "{}", form_copy.text());
    assert!(!root.join("hello.txt.gz").exists() && !root.join("hello.txt.br").exists());
    // A copy of a file that does not exist is a file like any other.
    assert_eq!(
        served.exchange(&put("/new.txt.gz", b"x", &[])).await.status,
        201
    );
    drop(served);

    let served = Served::start_with(
        &root,
        "info,hangup::serve=debug",
        &["--upload", "--overwrite"],
    );
    let gzip = [("Accept-Encoding", "gzip")];
    assert_eq!(
        served
            .exchange(&put("/hello.txt.gz", b"COPY", &[]))
            .await
            .status,
        201
    );
    let copy = served.get("/hello.txt", &gzip).await;
    assert_eq!(copy.header("content-encoding"), Some("gzip"));
    assert_eq!(copy.body, b"COPY");
    // The file replaced after its copy: the copy is stale, not served.
    // (Its time set back, as a clock of coarse ticks could give both the
    // same.)
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(root.join("hello.txt.gz"))
        .unwrap()
        .set_modified(hour_ago)
        .unwrap();
    assert_eq!(
        served
            .exchange(&put("/hello.txt", b"fresh\n", &[]))
            .await
            .status,
        204
    );
    let fresh = served.get("/hello.txt", &gzip).await;
    assert_eq!(fresh.header("content-encoding"), None);
    assert_eq!(fresh.body, b"fresh\n");
    served
        .stderr
        .wait_for("why the copy was not used", |l| {
            l.contains("precompressed copy older than its file")
        })
        .await;
    assert!(temporaries(&root).is_empty());
}

/// A directory the server's user may not write into: 403 with the reason,
/// and a warning in the log (it was a bare 500 with no reason anywhere).
/// Needs root, to run the server as `nobody` (CI runs as root).
#[tokio::test]
async fn a_directory_the_server_may_not_write_into_gets_403_and_a_warning() {
    let uid = std::process::Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" || !crate::cli_serve_tls::have("setpriv")
    {
        eprintln!("skipped: needs root and setpriv to run hangup serve as nobody (CI has both)");
        return;
    }
    let (scratch, root) = site("upload-unwritable");
    // `nobody` may read and enter the scratch tree, not write into it.
    for dir in [&scratch.path, &root] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    let served = Served::start_through(&nobody, &root, "info", &["--upload"]);
    let response = served.exchange(&put("/new.txt", b"x", &[])).await;
    assert_eq!(response.status, 403, "{}", response.text());
    assert!(
        response.text().contains("may not write"),
        "{}",
        response.text()
    );
    assert!(!root.join("new.txt").exists());
    let form_response = served
        .exchange(&post_form("/", &form("XyZ", &[("f.txt", b"x")]), &[]))
        .await;
    assert_eq!(form_response.status, 403, "{}", form_response.text());
    served
        .stderr
        .wait_for("the warning", |l| l.contains("cannot store upload"))
        .await;
}

#[tokio::test]
async fn uploads_over_the_limit_get_413_and_leave_nothing() {
    let (_scratch, root) = site("upload-limit");
    let served = Served::start_with(&root, "info", &["--upload", "--upload-limit", "64K"]);
    // Declared too large: refused before the body is read.
    let declared = served
        .exchange(&request("PUT", "/big.bin", &[("Content-Length", "70000")]))
        .await;
    assert_eq!(declared.status, 413);
    // Chunked, found too large while it arrives.
    let mut chunked = request("PUT", "/big.bin", &[("Transfer-Encoding", "chunked")]);
    for _ in 0..5 {
        chunked.extend_from_slice(format!("{:x}\r\n", 20_000).as_bytes());
        chunked.extend_from_slice(&vec![b'x'; 20_000]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let found = served.exchange(&chunked).await;
    assert_eq!(found.status, 413, "{}", found.text());
    assert!(!root.join("big.bin").exists());
    assert!(temporaries(&root).is_empty());
    let fits = served
        .exchange(&put("/fits.bin", &vec![b'y'; 65_536], &[]))
        .await;
    assert_eq!(fits.status, 201);
}

#[tokio::test]
async fn uploads_stay_inside_the_root_and_out_of_hidden_names() {
    let (_scratch, root) = site("upload-containment");
    let served = Served::start_with(&root, "info", &["--upload"]);
    for (target, status) in [
        ("/../outside/x.txt", 403),
        ("/%2e%2e/outside/x.txt", 403),
        ("/escape/x.txt", 403),
        ("/abs/x.txt", 403),
        ("/missing-dir/x.txt", 409),
        ("/hello.txt/x.txt", 409),
        ("/.env", 403),
        ("/.git/config", 404),
        ("/.hangup-upload-x.part", 403),
        ("/listing/", 409),
    ] {
        let response = served.exchange(&put(target, b"intruder", &[])).await;
        assert_eq!(response.status, status, "{target}: {}", response.text());
    }
    let outside = root.parent().unwrap().join("outside");
    assert!(!outside.join("x.txt").exists());
    assert!(!root.join(".env").exists());
}

/// Four clients upload different bodies to one new name at once. Without
/// `--overwrite`, one gets 201 and the others 409, and the file is the
/// winner's body whole. With it, every upload succeeds and the file is
/// one of the bodies whole, never a mix.
#[tokio::test]
async fn concurrent_uploads_to_one_name_leave_one_whole_body() {
    const LEN: usize = 1 << 20;
    for overwrite in [false, true] {
        let (_scratch, root) = site("upload-race");
        let mut options = vec!["--upload"];
        if overwrite {
            options.push("--overwrite");
        }
        let served = Served::start_with(&root, "info", &options);
        let bodies: Vec<Vec<u8>> = (10..14).map(|seed| upload_body(seed, LEN)).collect();
        let tasks: Vec<_> = bodies
            .iter()
            .map(|body| {
                let bytes = put("/race.bin", body, &[]);
                let addr = served.addr;
                tokio::spawn(async move { raw_exchange(addr, &bytes).await })
            })
            .collect();
        let mut statuses = Vec::new();
        for task in tasks {
            let raw = task.await.unwrap();
            statuses.push(parse_responses(&raw, &[false])[0].status);
        }
        let stored = std::fs::read(root.join("race.bin")).unwrap();
        let winner = bodies.iter().position(|b| *b == stored);
        assert!(
            winner.is_some(),
            "the file is no body whole (overwrite {overwrite})"
        );
        if overwrite {
            assert!(
                statuses.iter().all(|s| [201, 204].contains(s)),
                "{statuses:?}"
            );
        } else {
            let mut sorted = statuses.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, [201, 409, 409, 409], "{statuses:?}");
            assert_eq!(statuses[winner.unwrap()], 201, "{statuses:?}");
        }
        assert!(temporaries(&root).is_empty(), "{:?}", temporaries(&root));
    }
}

/// A multipart form body with the given file fields and one text field.
fn form(boundary: &str, files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n")
            .as_bytes(),
    );
    for (name, data) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
                 filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

fn post_form(target: &str, body: &[u8], extra: &[(&str, &str)]) -> Vec<u8> {
    let length = body.len().to_string();
    let mut fields = vec![
        ("Content-Type", "multipart/form-data; boundary=XyZ"),
        ("Content-Length", length.as_str()),
    ];
    fields.extend_from_slice(extra);
    let mut bytes = request("POST", target, &fields);
    bytes.extend_from_slice(body);
    bytes
}

#[tokio::test]
async fn the_listing_form_uploads_files_into_its_directory() {
    let (_scratch, root) = site("upload-form");
    let served = Served::start_with(&root, "info", &["--upload"]);
    let page = served.get("/listing/", &[]).await.text();
    assert!(page.contains("enctype=\"multipart/form-data\""), "{page}");
    let big = upload_body(3, 700_000);
    let body = form(
        "XyZ",
        &[("a.txt", b"first\n"), ("C:\\Users\\me\\b.bin", &big)],
    );
    let response = served
        .exchange(&post_form("/listing/", &body, &[("Origin", "http://test")]))
        .await;
    assert_eq!(response.status, 303, "{}", response.text());
    assert_eq!(response.header("location"), Some("/listing/"));
    assert_eq!(
        std::fs::read(root.join("listing/a.txt")).unwrap(),
        b"first\n"
    );
    assert!(std::fs::read(root.join("listing/b.bin")).unwrap() == big);
    assert!(temporaries(&root.join("listing")).is_empty());

    // Again: the names are taken.
    let again = served.exchange(&post_form("/listing/", &body, &[])).await;
    assert_eq!(again.status, 409, "{}", again.text());
    // From another site's page: refused.
    let foreign = served
        .exchange(&post_form(
            "/listing/",
            &body,
            &[("Origin", "http://evil.example")],
        ))
        .await;
    assert_eq!(foreign.status, 403);
    // Not a form.
    let mut raw = request("POST", "/listing/", &[("Content-Length", "2")]);
    raw.extend_from_slice(b"hi");
    assert_eq!(served.exchange(&raw).await.status, 415);
    // A form without a file, and one with a hidden name.
    let empty = form("XyZ", &[]);
    assert_eq!(
        served
            .exchange(&post_form("/listing/", &empty, &[]))
            .await
            .status,
        400
    );
    let hidden = form("XyZ", &[(".htaccess", b"x")]);
    assert_eq!(
        served
            .exchange(&post_form("/listing/", &hidden, &[]))
            .await
            .status,
        403
    );
    assert!(!root.join("listing/.htaccess").exists());
    assert!(temporaries(&root.join("listing")).is_empty());
}
