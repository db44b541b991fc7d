//! `hangup serve`'s directory listing: sizes for people, columns that
//! sort by name, size or date (links and query), natural order, hidden
//! names, names that are not UTF-8, and JSON. Run as the built binary
//! over raw sockets.

use std::time::{Duration, UNIX_EPOCH};

use crate::cli_serve::{Scratch, Served};

/// A directory to list:
///
/// ```text
/// file1.txt     10 B     2001
/// file2.txt   1536 B     2003
/// file10.txt  3 MiB      2002
/// sub/
/// .env                   (hidden)
/// .well-known/acme       (hidden from the listing, served)
/// caf\xE9.txt            (not UTF-8)
/// ```
fn tree(test: &str) -> (Scratch, std::path::PathBuf) {
    let scratch = Scratch::new(test);
    let root = scratch.path.join("root");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::create_dir_all(root.join(".well-known")).unwrap();
    std::fs::write(root.join(".well-known/acme"), "token\n").unwrap();
    std::fs::write(root.join(".env"), "SECRET=1\n").unwrap();
    for (name, len, year_secs) in [
        ("file1.txt", 10usize, 978_307_200u64),
        ("file2.txt", 1536, 1_041_379_200),
        ("file10.txt", 3 << 20, 1_009_843_200),
    ] {
        let file = std::fs::File::create(root.join(name)).unwrap();
        file.set_len(len as u64).unwrap();
        file.set_modified(UNIX_EPOCH + Duration::from_secs(year_secs))
            .unwrap();
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let odd = std::ffi::OsStr::from_bytes(b"caf\xe9.txt");
        std::fs::write(root.join(odd), "latin-1 name\n").unwrap();
    }
    (scratch, root)
}

/// The names linked in a listing page, in page order.
fn linked(page: &str) -> Vec<String> {
    page.split("<a href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|href| !href.starts_with('?'))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_listing_reads_well_and_sorts_by_name_size_and_date() {
    let (_scratch, root) = tree("listing-sort");
    let served = Served::start(&root);
    let page = served.get("/", &[]).await;
    assert_eq!(page.status, 200);
    let text = page.text();
    // Natural order, directories first; hidden names left out.
    let mut expected = vec!["sub/", "caf%E9.txt", "file1.txt", "file2.txt", "file10.txt"];
    if cfg!(not(unix)) {
        expected.remove(1);
    }
    assert_eq!(linked(&text), expected, "{text}");
    assert!(
        !text.contains(".env") && !text.contains(".well-known"),
        "{text}"
    );
    // Sizes for people, exact bytes on hover, dates in UTC.
    assert!(text.contains("title=\"1536 bytes\">1.5 KiB<"), "{text}");
    assert!(text.contains(">3.0 MiB<"), "{text}");
    assert!(text.contains(">10 B<"), "{text}");
    assert!(text.contains("2003-01-01 00:00"), "{text}");
    // Column links that sort.
    assert!(
        text.contains("href=\"?sort=size&amp;order=desc\""),
        "{text}"
    );
    assert!(text.contains("href=\"?sort=date&amp;order=asc\""), "{text}");
    assert!(
        text.contains("href=\"?sort=name&amp;order=desc\""),
        "{text}"
    );

    let by_size = served.get("/?sort=size&order=desc", &[]).await.text();
    let files: Vec<String> = linked(&by_size)
        .into_iter()
        .filter(|h| h.starts_with("file"))
        .collect();
    assert_eq!(files, ["file10.txt", "file2.txt", "file1.txt"]);
    assert!(
        by_size.contains("href=\"?sort=size&amp;order=asc\""),
        "{by_size}"
    );
    let by_date = served.get("/?sort=date", &[]).await.text();
    let files: Vec<String> = linked(&by_date)
        .into_iter()
        .filter(|h| h.starts_with("file"))
        .collect();
    assert_eq!(files, ["file1.txt", "file10.txt", "file2.txt"]);
    let reversed = served.get("/?sort=name&order=desc", &[]).await.text();
    let files: Vec<String> = linked(&reversed)
        .into_iter()
        .filter(|h| h.starts_with("file"))
        .collect();
    assert_eq!(files, ["file10.txt", "file2.txt", "file1.txt"]);
}

#[cfg(unix)]
#[tokio::test]
async fn a_name_that_is_not_utf8_is_listed_escaped_and_served_by_its_link() {
    let (_scratch, root) = tree("listing-bytes");
    let served = Served::start(&root);
    let text = served.get("/", &[]).await.text();
    assert!(
        text.contains("<a href=\"caf%E9.txt\">caf\\xE9.txt</a>"),
        "{text}"
    );
    let file = served.get("/caf%E9.txt", &[]).await;
    assert_eq!((file.status, file.text().as_str()), (200, "latin-1 name\n"));
}

#[tokio::test]
async fn hidden_names_are_neither_listed_nor_served_unless_hidden() {
    let (_scratch, root) = tree("listing-hidden");
    let served = Served::start(&root);
    assert_eq!(served.get("/.env", &[]).await.status, 404);
    assert_eq!(served.get("/%2eenv", &[]).await.status, 404);
    let acme = served.get("/.well-known/acme", &[]).await;
    assert_eq!((acme.status, acme.text().as_str()), (200, "token\n"));
    drop(served);

    let served = Served::start_with(&root, "info", &["--hidden"]);
    let text = served.get("/", &[]).await.text();
    assert!(linked(&text).contains(&".env".to_owned()), "{text}");
    assert!(linked(&text).contains(&".well-known/".to_owned()), "{text}");
    let env = served.get("/.env", &[]).await;
    assert_eq!((env.status, env.text().as_str()), (200, "SECRET=1\n"));
}

#[tokio::test]
async fn accept_json_gets_the_listing_as_json_with_its_own_validators() {
    let (_scratch, root) = tree("listing-json");
    let served = Served::start(&root);
    let json = served
        .get("/?sort=size&order=desc", &[("Accept", "application/json")])
        .await;
    assert_eq!(json.status, 200);
    assert_eq!(json.header("content-type"), Some("application/json"));
    assert_eq!(json.header("vary"), Some("accept"));
    let value: serde_json::Value = serde_json::from_slice(&json.body).expect("JSON");
    assert_eq!(value["path"], "/");
    let entries = value["entries"].as_array().unwrap();
    assert_eq!(entries[0]["name"], "sub");
    assert_eq!(entries[0]["type"], "directory");
    assert_eq!(entries[0]["href"], "sub/");
    assert_eq!(entries[1]["name"], "file10.txt");
    assert_eq!(entries[1]["size"], 3 << 20);
    assert_eq!(entries[1]["type"], "file");
    assert_eq!(entries[1]["modified"], "2002-01-01T00:00:00Z");
    if cfg!(unix) {
        assert!(
            entries
                .iter()
                .any(|e| e["name"] == "caf\\xE9.txt" && e["href"] == "caf%E9.txt"),
            "{value}"
        );
    }
    let html = served.get("/?sort=size&order=desc", &[]).await;
    assert_eq!(
        html.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_ne!(html.header("etag"), json.header("etag"));
    let tag = json.header("etag").unwrap();
    let again = served
        .get(
            "/?sort=size&order=desc",
            &[("Accept", "application/json"), ("If-None-Match", tag)],
        )
        .await;
    assert_eq!(again.status, 304);
}
