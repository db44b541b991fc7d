//! `hangup serve` shared with others: `--auth`, `--cors`, `--spa`,
//! `--404`; logs operators can ingest (`--log-format combined` and
//! `json`, `--quiet`); and the ergonomics of starting it (`-p`, the URLs
//! printed at start). Run as the built binary over raw sockets.

use base64::Engine as _;

use crate::cli_serve::{Served, request, site};
use crate::support::*;

fn basic(pair: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

#[tokio::test]
async fn auth_asks_for_the_one_account_and_lets_it_in() {
    let (_scratch, root) = site("auth");
    let served = Served::start_with(&root, "info", &["--auth", "alice:s3:cret", "--cors"]);
    for extra in [
        vec![],
        vec![("Authorization", basic("alice:wrong"))],
        vec![("Authorization", basic("alice:s3:cre"))],
        vec![("Authorization", basic("bob:s3:cret"))],
        vec![("Authorization", "Bearer s3:cret".to_owned())],
    ] {
        let extra: Vec<(&str, &str)> = extra.iter().map(|(n, v)| (*n, v.as_str())).collect();
        for target in ["/hello.txt", "/", "/missing"] {
            let response = served.get(target, &extra).await;
            assert_eq!(response.status, 401, "{target} {extra:?}");
            assert_eq!(
                response.header("www-authenticate"),
                Some("Basic realm=\"hangup serve\", charset=\"UTF-8\"")
            );
            assert!(!response.text().contains("Hello"), "{target}");
        }
    }
    let good = basic("alice:s3:cret");
    let response = served.get("/hello.txt", &[("Authorization", &good)]).await;
    assert_eq!(
        (response.status, response.text().as_str()),
        (200, "Hello, hangup!\n")
    );
    // A CORS preflight carries no credentials and reveals nothing.
    let preflight = served
        .exchange(&request(
            "OPTIONS",
            "/hello.txt",
            &[
                ("Origin", "http://app.example"),
                ("Access-Control-Request-Method", "GET"),
            ],
        ))
        .await;
    assert_eq!(preflight.status, 204);
    // Other OPTIONS requests need the password like the rest.
    let options = served.exchange(&request("OPTIONS", "/", &[])).await;
    assert_eq!(options.status, 401);
}

/// `--auth-file` reads the account from a file (a command line shows in
/// the process list); `--auth` and `--auth-file` together are refused.
#[tokio::test]
async fn auth_file_reads_the_account_from_its_first_line() {
    let (scratch, root) = site("auth-file");
    let secret = scratch.path.join("account");
    std::fs::write(&secret, "alice:s3:cret\n").unwrap();
    let secret = secret.to_str().unwrap();
    let served = Served::start_with(&root, "info", &["--auth-file", secret]);
    assert_eq!(served.get("/hello.txt", &[]).await.status, 401);
    let wrong = basic("alice:s3:cret\n");
    assert_eq!(
        served
            .get("/hello.txt", &[("Authorization", &wrong)])
            .await
            .status,
        401,
        "the line break is not part of the password"
    );
    let good = basic("alice:s3:cret");
    let response = served.get("/hello.txt", &[("Authorization", &good)]).await;
    assert_eq!(response.status, 200);

    let both = std::process::Command::new(env!("CARGO_BIN_EXE_hangup"))
        .args(["serve", "--auth", "a:b", "--auth-file", secret])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run hangup serve");
    assert!(!both.status.success());
    let message = String::from_utf8_lossy(&both.stderr);
    assert!(message.contains("cannot be used with"), "{message}");
}

#[tokio::test]
async fn cors_lets_other_origins_read_and_answers_preflights() {
    let (_scratch, root) = site("cors");
    let served = Served::start_with(&root, "info", &["--cors"]);
    let response = served
        .get("/hello.txt", &[("Origin", "http://app.example")])
        .await;
    assert_eq!(response.header("access-control-allow-origin"), Some("*"));
    let exposed = response.header("access-control-expose-headers").unwrap();
    assert!(
        exposed.contains("Content-Range") && exposed.contains("ETag"),
        "{exposed}"
    );
    let preflight = served
        .exchange(&request(
            "OPTIONS",
            "/hello.txt",
            &[
                ("Origin", "http://app.example"),
                ("Access-Control-Request-Method", "GET"),
                ("Access-Control-Request-Headers", "range"),
            ],
        ))
        .await;
    assert_eq!(preflight.status, 204);
    assert_eq!(preflight.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        preflight.header("access-control-allow-methods"),
        Some("GET, HEAD, OPTIONS")
    );
    assert!(
        preflight
            .header("access-control-allow-headers")
            .unwrap()
            .contains("Range")
    );
    assert_eq!(preflight.header("access-control-max-age"), Some("600"));
    drop(served);
    let served = Served::start(&root);
    let response = served
        .get("/hello.txt", &[("Origin", "http://app.example")])
        .await;
    assert_eq!(response.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn spa_serves_index_html_for_unknown_paths_and_404_pages_are_custom() {
    let (_scratch, root) = site("spa");
    std::fs::write(root.join("index.html"), "<h1>app</h1>\n").unwrap();
    let page = root.parent().unwrap().join("gone.html");
    std::fs::write(&page, "<h1>nothing here</h1>\n").unwrap();
    let served = Served::start_with(&root, "info", &["--spa"]);
    for target in ["/some/route", "/users/42", "/missing.js"] {
        let response = served.get(target, &[]).await;
        assert_eq!(
            (response.status, response.text().as_str()),
            (200, "<h1>app</h1>\n"),
            "{target}"
        );
        assert_eq!(
            response.header("content-type"),
            Some("text/html; charset=utf-8")
        );
    }
    // Real files and directories are themselves.
    assert_eq!(
        served.get("/hello.txt", &[]).await.text(),
        "Hello, hangup!\n"
    );
    assert_eq!(
        served.get("/docs/", &[]).await.text(),
        "<h1>the docs</h1>\n"
    );
    drop(served);

    let page_arg = page.to_str().unwrap();
    let served = Served::start_with(&root, "info", &["--404", page_arg]);
    let missing = served.get("/no/such/file", &[]).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.text(), "<h1>nothing here</h1>\n");
    assert_eq!(
        missing.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let head = served
        .exchange(&request("HEAD", "/no/such/file", &[]))
        .await;
    assert_eq!(head.status, 404);
    assert_eq!(head.header("content-length"), Some("22"));
}

/// The combined format starts as Apache's and nginx's does, with the
/// client-chosen `User-Agent` and `Referer` escaped, then hangup's
/// fields; JSON lines parse and name every field.
#[tokio::test]
async fn combined_and_json_logs_carry_user_agent_referer_and_hangups_fields() {
    let (_scratch, root) = site("log-formats");
    let served = Served::start_with(
        &root,
        "info",
        &["--log-format", "combined", "--auth", "alice:pw"],
    );
    let auth = basic("alice:pw");
    let response = served
        .get(
            "/hello.txt",
            &[
                ("User-Agent", "Mozilla/5.0 (X11) \"quoted\""),
                ("Referer", "http://a.example/x y"),
                ("Authorization", &auth),
            ],
        )
        .await;
    assert_eq!(response.status, 200);
    let line = served
        .stderr
        .wait_for("the combined line", |l| {
            l.contains("\"GET /hello.txt HTTP/1.1\"")
        })
        .await;
    assert!(line.starts_with("127.0.0.1 - alice ["), "{line}");
    assert!(
        line.contains(" +0000] \"GET /hello.txt HTTP/1.1\" 200 "),
        "{line}"
    );
    assert!(
        line.contains("\"http://a.example/x y\" \"Mozilla/5.0 (X11) \\x22quoted\\x22\""),
        "{line}"
    );
    assert!(line.contains(" complete=true "), "{line}");
    assert!(line.contains(" intended_status=200 "), "{line}");
    assert!(line.contains(" acked="), "{line}");
    assert!(!line.contains("hangup::access"), "{line}");
    drop(served);

    let served = Served::start_with(&root, "info", &["--log-format", "json"]);
    served
        .get("/missing", &[("User-Agent", "caf\u{e9} \"x\"")])
        .await;
    let _ = served.get("/hello.txt", &[("User-Agent", "ok")]).await;
    served
        .stderr
        .wait_for("two JSON lines", |_| {
            served
                .stderr
                .lines()
                .iter()
                .filter(|l| l.starts_with('{'))
                .count()
                >= 2
        })
        .await;
    // Every line is one JSON object, the server's own notes included.
    let lines: Vec<serde_json::Value> = served
        .stderr
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    let serving = lines
        .iter()
        .find(|v| v["target"] == "hangup::serve")
        .expect("the address line");
    assert!(
        serving["message"].as_str().unwrap().starts_with("serving "),
        "{serving}"
    );
    let missing = lines
        .iter()
        .find(|v| v["target"] == "/missing")
        .expect("the /missing line");
    assert_eq!(missing["event"], "request");
    assert_eq!(missing["status"], 404);
    assert_eq!(missing["method"], "GET");
    assert_eq!(missing["protocol"], "HTTP/1.1");
    assert_eq!(missing["complete"], true);
    assert!(missing["written"].as_u64().unwrap() > 0);
    assert!(missing["duration_us"].is_u64());
    assert!(missing["time"].as_str().unwrap().ends_with('Z'));
    // Escaped as in every other log: no raw quote or non-ASCII; spaces
    // stay spaces in a JSON string.
    assert_eq!(missing["user_agent"], r"caf\xc3\xa9 \x22x\x22");
    let hello = lines
        .iter()
        .find(|v| v["target"] == "/hello.txt")
        .expect("the /hello.txt line");
    assert_eq!(hello["user_agent"], "ok");
    assert_eq!(hello["referer"], serde_json::Value::Null);
}

/// With `--log-format json`, the error that stops the server at start (a
/// port in use) is a JSON object too: every line parses.
#[test]
fn a_fatal_error_is_a_json_line_under_log_format_json() {
    let (_scratch, root) = site("json-fatal");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hangup"))
        .arg("serve")
        .arg(&root)
        .args(["--addr", &addr, "--log-format", "json"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run hangup serve");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    let last = lines.last().expect("an error line");
    assert_eq!(last["level"], "ERROR", "{last}");
    assert!(
        last["message"].as_str().unwrap().contains("cannot listen"),
        "{last}"
    );
}

#[tokio::test]
async fn quiet_keeps_only_the_address_and_p_picks_the_port() {
    let (_scratch, root) = site("quiet");
    // `-p 0` replaces the port of --addr (1, which this test never binds).
    let served = Served::start_with(
        &root,
        "info",
        &["--quiet", "--addr", "127.0.0.1:1", "-p", "0"],
    );
    assert_ne!(served.addr.port(), 1);
    assert_eq!(served.get("/hello.txt", &[]).await.status, 200);
    assert_eq!(served.get("/missing", &[]).await.status, 404);
    let mut stream = connect(served.addr).await;
    send(&mut stream, &get("/hello.txt")).await;
    assert_eq!(read_response(&mut stream, false).await.status, 200);
    drop(stream);
    // Stopping the server is the signal: its last line comes after every
    // request's line would have.
    let pid = served.child.id().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("run kill");
    assert!(kill.success());
    served
        .stderr
        .wait_for("the stopped notice", |l| l == "hangup serve: stopped")
        .await;
    let lines = served.stderr.lines();
    assert!(
        lines.iter().all(|l| l.starts_with("hangup serve: ")),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn listening_on_every_interface_prints_the_urls_to_open() {
    let (_scratch, root) = site("urls");
    let served = Served::start_with(&root, "info", &["--addr", "0.0.0.0:0"]);
    let port = served.addr.port();
    let loopback = format!("http://127.0.0.1:{port}/");
    served
        .stderr
        .wait_for("the loopback URL", |l| {
            l.starts_with("hangup serve:") && l.contains(&loopback)
        })
        .await;
    // Only loopback traffic: the server is reached on 127.0.0.1.
    let mut stream = connect(std::net::SocketAddr::from(([127, 0, 0, 1], port))).await;
    send(&mut stream, &get("/hello.txt")).await;
    assert_eq!(read_response(&mut stream, false).await.status, 200);
}
