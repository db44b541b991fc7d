//! Hang-up detection latency: from the client closing its socket (FIN) or
//! resetting it (RST) to the handler's `hung_up()` resolving, over 1,000
//! aborts each. Prints the median and p99.
//!
//! ```text
//! cargo bench --bench hangup_detection            # 1,000 aborts each
//! ABORTS=200 cargo bench --bench hangup_detection
//! ```
//!
//! The server runs on its own thread (a current-thread runtime), the client
//! on another; both read the same monotonic clock. Pin the process with
//! `taskset -c 0,1` to keep the two threads on separate cores.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use hangup::{Config, Request, ResponseWriter, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Clone, Copy, Debug)]
enum Leave {
    Fin,
    Rst,
}

fn main() {
    let aborts: usize = std::env::var("ABORTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let (notified_tx, notified_rx) = mpsc::channel::<Instant>();
    let (addr_tx, addr_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let handler = move |request: Request, mut response: ResponseWriter| {
                let notified_tx = notified_tx.clone();
                async move {
                    // Tell the client the handler runs, then wait for the hang-up.
                    response.write_all(b"!").await?;
                    response.flush().await?;
                    let _ = request.hung_up().await;
                    let _ = notified_tx.send(Instant::now());
                    Ok(())
                }
            };
            let server = Server::bind("127.0.0.1:0", Config::default(), handler)
                .await
                .expect("bind");
            addr_tx
                .send(server.local_addr().expect("addr"))
                .expect("send addr");
            server.run().await.expect("run");
        });
    });
    let addr = addr_rx.recv().expect("server address");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for leave in [Leave::Fin, Leave::Rst] {
        let mut latencies = Vec::with_capacity(aborts);
        for _ in 0..aborts {
            let closed_at = runtime.block_on(async {
                let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
                stream
                    .write_all(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
                    .await
                    .expect("request");
                // Wait for the handler's first byte: it is running.
                let mut buf = [0u8; 1024];
                let mut seen = Vec::new();
                while !seen.ends_with(b"1\r\n!\r\n") {
                    let n = stream.read(&mut buf).await.expect("read");
                    assert!(n > 0, "server closed early");
                    seen.extend_from_slice(&buf[..n]);
                }
                let std = stream.into_std().expect("into_std");
                if let Leave::Rst = leave {
                    socket2::SockRef::from(&std)
                        .set_linger(Some(Duration::ZERO))
                        .expect("linger");
                }
                let closed_at = Instant::now();
                drop(std);
                closed_at
            });
            let notified = notified_rx
                .recv_timeout(Duration::from_secs(5))
                .expect("the handler was notified");
            latencies.push(notified.saturating_duration_since(closed_at));
        }
        latencies.sort();
        let pick = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
        println!(
            "hang-up detection, client {:?}: n={} median={:.1}µs p99={:.1}µs max={:.1}µs",
            leave,
            latencies.len(),
            pick(0.5).as_secs_f64() * 1e6,
            pick(0.99).as_secs_f64() * 1e6,
            latencies[latencies.len() - 1].as_secs_f64() * 1e6,
        );
    }
}
