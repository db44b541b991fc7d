//! Upgrades: `101 Switching Protocols` hands the connection to the
//! handler, with the bytes the client already sent; the WebSocket example
//! echoes over it with a real client (tokio-tungstenite), and an idle
//! upgraded socket learns of the client's FIN or RST at once.

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use hangup::http::StatusCode;
use hangup::{Request, ResponseWriter};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::support::*;

#[allow(dead_code)]
#[path = "../../examples/websocket.rs"]
mod websocket;

/// The example's server, telling the test how each socket ended.
async fn websocket_server() -> (TestServer, mpsc::UnboundedReceiver<String>) {
    let (ended_tx, ended_rx) = mpsc::unbounded_channel();
    let on_end: websocket::OnEnd = Arc::new(move |line| {
        let _ = ended_tx.send(line);
    });
    let server = spawn_default(move |request: Request, response: ResponseWriter| {
        websocket::route(request, response, on_end.clone())
    })
    .await;
    (server, ended_rx)
}

/// A real WebSocket client: handshake, echo, and the server learns at
/// once when the client goes away without a close frame, whether with a
/// FIN or an RST, while its socket sits idle.
#[tokio::test]
async fn a_websocket_echoes_and_learns_at_once_that_its_idle_client_left() {
    let (server, mut ended) = websocket_server().await;
    for how in ["fin", "rst"] {
        let stream = connect(server.addr).await;
        let url = format!("ws://{}/ws", server.addr);
        let (mut socket, response) = tokio_tungstenite::client_async(url, stream)
            .await
            .expect("the handshake");
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        socket.send(Message::text("hello")).await.unwrap();
        let echoed = tokio::time::timeout(LIMIT, socket.next())
            .await
            .expect("an echo in time")
            .unwrap()
            .unwrap();
        assert_eq!(echoed, Message::text("hello"));
        // The server now waits, idle, in a read. Dropped, the client
        // closes its socket without a close frame; SO_LINGER 0 makes
        // that an RST.
        if how == "rst" {
            socket2::SockRef::from(socket.get_ref())
                .set_linger(Some(std::time::Duration::ZERO))
                .unwrap();
        }
        drop(socket);
        let line = tokio::time::timeout(LIMIT, ended.recv())
            .await
            .expect("the server learned that the client left")
            .unwrap();
        assert!(line.contains("left"), "{how}: {line}");
    }
}

/// Bytes the client sent right behind its upgrade request reach the new
/// protocol first; the 101 head says `connection: upgrade`, nothing of
/// HTTP follows it, and the outcome is a complete 101.
#[tokio::test]
async fn bytes_sent_behind_the_upgrade_request_reach_the_new_protocol() {
    let outcomes = Outcomes::default();
    let server = spawn(
        outcomes.builder().build().unwrap(),
        |request: Request, mut response: ResponseWriter| async move {
            response.set_status(StatusCode::SWITCHING_PROTOCOLS)?;
            response.insert_header(
                hangup::http::header::UPGRADE,
                hangup::http::HeaderValue::from_static("echo"),
            )?;
            let mut upgraded = response.upgrade(request).await?;
            let mut buf = [0u8; 5];
            upgraded.read_exact(&mut buf).await?;
            upgraded.write_all(&buf).await?;
            upgraded.shutdown().await?;
            Ok(())
        },
    )
    .await;
    let mut stream = connect(server.addr).await;
    let mut request =
        b"GET /x HTTP/1.1\r\nHost: t\r\nUpgrade: echo\r\nConnection: upgrade\r\n\r\n".to_vec();
    request.extend_from_slice(b"early");
    send(&mut stream, &request).await;
    let (bytes, _) = read_until_end(&mut stream).await;
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{text}"
    );
    assert!(text.contains("\r\nupgrade: echo\r\n"), "{text}");
    assert!(text.contains("\r\nconnection: upgrade\r\n"), "{text}");
    assert!(!text.contains("content-length"), "{text}");
    assert!(text.ends_with("\r\n\r\nearly"), "{text:?}");
    let outcome = &outcomes.wait_for(1).await[0];
    assert_eq!(outcome.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert!(outcome.is_complete(), "{outcome:?}");
}

/// An upgraded connection keeps its slot under `max_connections` and its
/// place among the open connections while the handler holds its socket
/// (in a task of its own, as a WebSocket server does): with room for one
/// connection, a second client waits until the upgraded one is dropped.
#[tokio::test]
async fn an_upgraded_connection_keeps_its_slot_until_its_socket_is_dropped() {
    let holding = Signal::new();
    let release = Signal::new();
    let (server_holding, server_release) = (holding.clone(), release.clone());
    let mut config = hangup::Config::builder();
    config.max_connections(1);
    let server = spawn(
        config.build().unwrap(),
        move |request: Request, mut response: ResponseWriter| {
            let (holding, release) = (server_holding.clone(), server_release.clone());
            async move {
                if request.path() == "/" {
                    return response.write_all(b"served").await;
                }
                response.set_status(StatusCode::SWITCHING_PROTOCOLS)?;
                response.insert_header(
                    hangup::http::header::UPGRADE,
                    hangup::http::HeaderValue::from_static("echo"),
                )?;
                let upgraded = response.upgrade(request).await?;
                tokio::spawn(async move {
                    holding.fire();
                    release.wait("the test's release").await;
                    drop(upgraded);
                });
                Ok(())
            }
        },
    )
    .await;
    let mut upgraded = connect(server.addr).await;
    send(
        &mut upgraded,
        b"GET /up HTTP/1.1\r\nHost: t\r\nUpgrade: echo\r\nConnection: upgrade\r\n\r\n",
    )
    .await;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(LIMIT, upgraded.read(&mut byte))
            .await
            .expect("the 101 head in time");
        assert_eq!(read.unwrap(), 1, "closed mid-head");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101 "),
        "{:?}",
        String::from_utf8_lossy(&head)
    );
    holding
        .wait("the handler's task holds the upgraded socket")
        .await;

    let mut second = connect(server.addr).await;
    send(&mut second, &get("/")).await;
    // An absence, so a bounded wait: before the fix the second client was
    // served within milliseconds of the upgrade.
    let early = tokio::time::timeout(
        std::time::Duration::from_millis(300),
        read_response(&mut second, false),
    )
    .await;
    assert!(
        early.is_err(),
        "served while the upgraded connection held the only slot"
    );
    assert_eq!(server.metrics.snapshot().open_connections, 1);

    release.fire();
    let response = read_response(&mut second, false).await;
    assert_eq!((response.status, &response.body[..]), (200, &b"served"[..]));
    assert_eq!(
        server.metrics.snapshot().open_connections,
        1,
        "the second alone"
    );
}

/// A 101 is an upgrade or nothing: set as a plain status, it is refused
/// (500), and an upgrade without 101 is an error.
#[tokio::test]
async fn a_101_without_an_upgrade_is_refused() {
    let server = spawn_default(
        |request: Request, mut response: ResponseWriter| async move {
            if request.path() == "/plain" {
                response.set_status(StatusCode::SWITCHING_PROTOCOLS)?;
                return Ok(());
            }
            match response.upgrade(request).await {
                Err(err) => Err(err),
                Ok(_) => Ok(()),
            }
        },
    )
    .await;
    for path in ["/plain", "/no-status"] {
        let bytes = raw_exchange(server.addr, &get(path)).await;
        assert!(
            bytes.starts_with(b"HTTP/1.1 500 "),
            "{path}: {:?}",
            String::from_utf8_lossy(&bytes)
        );
    }
}

/// The same WebSocket, over TLS (wss): the upgraded stream is the
/// session's plaintext, both ways.
#[cfg(feature = "tls")]
#[tokio::test]
async fn a_websocket_echoes_over_tls() {
    let pki = crate::tls::pki();
    let mut config = hangup::Config::builder();
    config.tls(pki.server.clone());
    let (ended_tx, _ended_rx) = mpsc::unbounded_channel();
    let on_end: websocket::OnEnd = Arc::new(move |line| {
        let _ = ended_tx.send(line);
    });
    let server = spawn(
        config.build().unwrap(),
        move |request: Request, response: ResponseWriter| {
            websocket::route(request, response, on_end.clone())
        },
    )
    .await;
    let stream = crate::tls::tls_connect(server.addr, &pki.client).await;
    let url = format!("wss://localhost:{}/ws", server.addr.port());
    let (mut socket, response) = tokio_tungstenite::client_async(url, stream)
        .await
        .expect("the handshake");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    for text in ["hello", "over tls"] {
        socket.send(Message::text(text)).await.unwrap();
        let echoed = tokio::time::timeout(LIMIT, socket.next())
            .await
            .expect("an echo in time")
            .unwrap()
            .unwrap();
        assert_eq!(echoed, Message::text(text));
    }
}
