//! Floods of unfinished heads: the server-wide head memory budget
//! (`head_memory_budget`) refuses the head that would pass it, serves
//! small heads meanwhile, and gives the memory back when a flooding
//! connection goes.

use hangup::{Config, Request, ResponseWriter};
use tokio::io::AsyncWriteExt;

use crate::support::{
    Capture, connect, metrics_reach, parse_responses, read_until_end, send, spawn,
    until_server_read,
};

/// `size` bytes of a head: a request line, a Host, and one long field,
/// finished with the blank line when `finished`.
fn head(size: usize, finished: bool) -> Vec<u8> {
    let mut head = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: ".to_vec();
    let end: &[u8] = if finished { b"\r\n\r\n" } else { b"" };
    head.resize(size - end.len(), b'a');
    head.extend_from_slice(end);
    head
}

async fn ok(_req: Request, mut res: ResponseWriter) -> hangup::Result<()> {
    res.write_all(b"ok").await
}

#[tokio::test]
async fn past_the_head_budget_large_heads_get_431_and_small_ones_are_served() {
    let (capture, _guard) = Capture::install();
    let mut builder = Config::builder();
    // The smallest budget: room for one head of 60 KB (its read buffer,
    // doubling as the head arrives, reaches 128 KiB), not for two.
    builder.head_memory_budget(128 * 1024);
    let server = spawn(builder.build().unwrap(), ok).await;

    // One flooding connection: 60 KB of a head, then silence.
    let mut first = connect(server.addr).await;
    send(&mut first, &head(60_000, false)).await;
    until_server_read(&first).await;

    // A second one finds the budget spent: 431, and a clean close.
    let mut second = connect(server.addr).await;
    let _ = second.write_all(&head(60_000, false)).await;
    let (bytes, _) = read_until_end(&mut second).await;
    let refused = &parse_responses(&bytes, &[false])[0];
    assert_eq!(refused.status, 431, "{}", String::from_utf8_lossy(&bytes));
    let lines = capture.wait_for_access_lines(1).await;
    assert_eq!(
        lines[0].fields["reason"], "the server's memory for request heads is in use",
        "{lines:?}"
    );

    // A small head is served meanwhile.
    let mut small = connect(server.addr).await;
    send(&mut small, &head(500, true)).await;
    let (bytes, _) = read_until_end(&mut small).await;
    assert_eq!(parse_responses(&bytes, &[false])[0].status, 200);

    // The first leaves: its claim comes back, and a large head fits again.
    drop(first);
    assert!(
        metrics_reach(&server.metrics, |m| m
            .departures
            .iter()
            .any(|(_, n)| *n == 1))
        .await
    );
    let mut large = connect(server.addr).await;
    send(&mut large, &head(60_000, true)).await;
    let (bytes, _) = read_until_end(&mut large).await;
    assert_eq!(parse_responses(&bytes, &[false])[0].status, 200);
    assert_eq!(server.metrics.snapshot().rejected, 1);
}

/// A refused head's memory, and its claim on the budget, go when the
/// refusal is sent, not after the lingering close: a flood of refused
/// heads must not hold them for `linger_timeout`.
#[tokio::test]
async fn a_refused_head_gives_its_claim_back_while_the_connection_lingers() {
    let mut builder = Config::builder();
    // Room for one head near 64 KiB (its buffer doubles to 128 KiB), not two.
    builder
        .head_memory_budget(128 * 1024)
        .linger_timeout(std::time::Duration::from_secs(30));
    let server = spawn(builder.build().unwrap(), ok).await;

    // A head past `max_head_bytes` (64 KiB): 431 once the server has read
    // 64 KiB of it. The client reads the answer and keeps its side open,
    // so the server lingers.
    let mut refused = connect(server.addr).await;
    let _ = refused.write_all(&head(100_000, false)).await;
    let response = crate::support::read_response(&mut refused, false).await;
    assert_eq!(response.status, 431);

    // Meanwhile a head of nearly 64 KiB needs nearly all the budget.
    let mut large = connect(server.addr).await;
    send(&mut large, &head(65_000, true)).await;
    let (bytes, _) = read_until_end(&mut large).await;
    assert_eq!(
        parse_responses(&bytes, &[false])[0].status,
        200,
        "the lingering connection still holds its head's claim"
    );
    drop(refused);
}

#[test]
fn the_budget_must_hold_one_head_of_the_largest_size() {
    let mut builder = Config::builder();
    builder
        .max_head_bytes(64 * 1024)
        .head_memory_budget(100 * 1024);
    match builder.build() {
        Err(hangup::Error::Config(err)) => assert_eq!(err.setting(), "head_memory_budget"),
        other => panic!("accepted, or another error: {other:?}"),
    }
}

/// `max_connections`: past it the server stops accepting; the next client
/// waits in the kernel's backlog (not accepted and dropped) and is served
/// once a connection closes, even one that was parked.
#[tokio::test]
async fn past_max_connections_new_clients_wait_in_the_backlog() {
    let mut builder = Config::builder();
    builder
        .max_connections(1)
        .idle_release_after(std::time::Duration::ZERO);
    let server = spawn(builder.build().unwrap(), ok).await;
    let keep_alive = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

    // The one slot: a keep-alive connection, served, then parked.
    let mut first = connect(server.addr).await;
    send(&mut first, keep_alive).await;
    let response = crate::support::read_response(&mut first, false).await;
    assert_eq!(response.status, 200);
    assert!(
        metrics_reach(&server.metrics, |m| m.parked_connections == 1
            && m.accept_pauses == 1)
        .await,
        "{:?}",
        server.metrics.snapshot()
    );

    // The next client connects (the kernel completes its handshake) and
    // asks; nobody accepts it while the first is open.
    let mut second = connect(server.addr).await;
    send(&mut second, &head(100, true)).await;
    assert!(
        crate::support::stays_silent(&mut second, std::time::Duration::from_millis(200)).await,
        "a connection past max_connections was answered or dropped"
    );
    assert_eq!(server.metrics.snapshot().open_connections, 1);

    drop(first);
    let (bytes, _) = read_until_end(&mut second).await;
    assert_eq!(parse_responses(&bytes, &[false])[0].status, 200);
}
