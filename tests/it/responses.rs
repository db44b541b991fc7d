//! What the response writer sends: the head is fixed once committed, a
//! large write arrives intact, every response has a `Date`, and a writer
//! kept by a task past its handler still finishes its response.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hangup::http::{HeaderName, HeaderValue, StatusCode};
use hangup::{Error, Request, ResponseWriter};

use crate::support::*;

#[tokio::test]
async fn changing_status_or_headers_after_commit_is_head_committed() {
    let server = spawn_default(|_req: Request, mut res: ResponseWriter| async move {
        res.write_all(b"a;").await?;
        res.flush().await?;
        let status = match res.set_status(StatusCode::NOT_FOUND) {
            Err(Error::HeadCommitted) => "HeadCommitted".to_owned(),
            other => format!("{other:?}"),
        };
        let header = match res.insert_header(
            HeaderName::from_static("x-late"),
            HeaderValue::from_static("1"),
        ) {
            Err(Error::HeadCommitted) => "HeadCommitted".to_owned(),
            other => format!("{other:?}"),
        };
        let status_now = res.status().as_u16();
        res.write_all(format!("status={status};header={header};now={status_now}").as_bytes())
            .await
    })
    .await;
    let mut stream = connect(server.addr).await;
    send(&mut stream, &get("/")).await;
    let response = read_response(&mut stream, false).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-late"), None);
    assert!(response.complete);
    assert_eq!(
        response.text(),
        "a;status=HeadCommitted;header=HeadCommitted;now=200"
    );
}

#[tokio::test]
async fn a_single_one_mib_write_arrives_intact() {
    let body: Arc<Vec<u8>> = Arc::new((0..1 << 20).map(|i: u32| (i % 251) as u8).collect());
    let sent = body.clone();
    let server = spawn_default(move |_req: Request, mut res: ResponseWriter| {
        let body = sent.clone();
        async move { res.write_all(&body).await }
    })
    .await;
    let mut stream = connect(server.addr).await;
    send(&mut stream, &get("/big")).await;
    let response = read_response(&mut stream, false).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("transfer-encoding"), Some("chunked"));
    assert!(response.complete, "no last chunk");
    assert_eq!(response.body.len(), body.len());
    assert!(response.body == *body, "body bytes differ");
}

#[tokio::test]
async fn date_header_is_present_and_parseable() {
    let server = spawn_default(path_handler).await;
    let mut stream = connect(server.addr).await;
    send(&mut stream, &get("/")).await;
    let response = read_response(&mut stream, false).await;
    let date = response.header("date").expect("no date header");
    assert!(date.ends_with(" GMT") && date.len() == 29, "{date:?}");
    let parsed = httpdate::parse_http_date(date).expect("unparseable date");
    let now = SystemTime::now();
    let skew = now.duration_since(parsed).unwrap_or_else(|e| e.duration());
    assert!(skew < Duration::from_secs(5), "date {date} is {skew:?} off");
}

/// A handler that returns while a task it spawned still holds the response
/// writer: the connection waits for the writer to come back, then finishes
/// the response, and serves the next request.
#[tokio::test]
async fn a_response_finished_by_a_spawned_task_after_the_handler_returned() {
    let server = spawn_default(|req: Request, mut res: ResponseWriter| async move {
        let path = req.path().to_owned();
        tokio::spawn(async move {
            // The scenario: the handler has returned, and the connection
            // waits for the writer, before this task writes.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = res.write_all(path.as_bytes()).await;
        });
        Ok(())
    })
    .await;
    let mut stream = connect(server.addr).await;
    for path in ["/late", "/later"] {
        send(&mut stream, &get(path)).await;
        let response = read_response(&mut stream, false).await;
        assert_eq!(
            (response.status, response.body.as_slice()),
            (200, path.as_bytes())
        );
    }
}
