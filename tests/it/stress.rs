//! A bounded stress test: 5,000 requests, each abandoned by its client at
//! a random point (inside the head, during the handler, mid body, mid
//! response; by FIN or RST). Afterwards nothing is left behind: file
//! descriptors, open connections and tasks are back where they started,
//! every request produced exactly one outcome, and fresh clients are
//! served normally.
//!
//! Open file descriptors are counted per process, and other tests in this
//! binary open sockets in parallel, so the test runs its body in a child
//! process of this same binary where it is the only test.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hangup::{Config, Request, ResponseWriter};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

const REQUESTS: u64 = 5_000;
/// Clients in flight at once.
const CONCURRENCY: usize = 64;
/// The whole run must end within this, or the test fails.
const RUN_LIMIT: Duration = Duration::from_secs(120);
const CHILD_ENV: &str = "HANGUP_STRESS_CHILD";

#[test]
fn five_thousand_aborted_requests_leave_nothing_behind() {
    let exe = std::env::current_exe().expect("test binary path");
    let output = std::process::Command::new(exe)
        .args([
            "--exact",
            "stress::stress_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .expect("run the child test");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("1 passed"),
        "the child test did not run:\n{stdout}"
    );
    assert!(
        stderr.contains("stress: done"),
        "the child did not report:\n{stderr}"
    );
}

/// The body of [`five_thousand_aborted_requests_leave_nothing_behind`];
/// does nothing unless run as its child.
#[test]
fn stress_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        tokio::time::timeout(RUN_LIMIT, run_stress())
            .await
            .expect("the stress run finished in time");
    });
}

/// xorshift64*: reproducible randomness without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

async fn handler(mut request: Request, mut response: ResponseWriter) -> hangup::Result<()> {
    match request.uri().path() {
        "/wait" => {
            let _ = tokio::time::timeout(Duration::from_secs(5), request.hung_up()).await;
            response.write_all(b"late").await
        }
        "/big" => {
            let piece = vec![b'b'; 16 * 1024];
            for _ in 0..64 {
                response.write_all(&piece).await?;
            }
            Ok(())
        }
        "/body" => {
            let body = request.body_mut().read_all(1 << 20).await?;
            response.write_all(&body).await
        }
        _ => response.write_all(b"ok").await,
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|dir| dir.count())
        .unwrap_or(0)
}

async fn run_stress() {
    let outcomes = Arc::new(AtomicU64::new(0));
    let counted = outcomes.clone();
    let config = Config::builder()
        .on_outcome(move |_| {
            counted.fetch_add(1, Ordering::Relaxed);
        })
        .header_read_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let server = spawn(config, handler).await;
    let metrics_handle = server.metrics.clone();
    let runtime = tokio::runtime::Handle::current();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let fds_before = open_fds();
    let tasks_before = runtime.metrics().num_alive_tasks();

    let seed = 0x5eed_1e55_u64;
    eprintln!("stress: seed {seed:#x}, {REQUESTS} requests, {CONCURRENCY} at once");
    let started = Instant::now();
    let mut rng = Rng(seed);
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..REQUESTS {
        if clients.len() >= CONCURRENCY {
            clients
                .join_next()
                .await
                .expect("a client")
                .expect("client task");
        }
        let plan = (rng.below(6), rng.below(2) == 0, rng.next());
        clients.spawn(abandon(server.addr, plan));
    }
    while let Some(result) = clients.join_next().await {
        result.expect("client task");
    }
    eprintln!("stress: clients done in {:?}", started.elapsed());

    // Everything settles: connections close, outcomes are final, tasks end
    // (a task finishes a moment after its connection's guard drops).
    let settle_start = Instant::now();
    loop {
        let snapshot = metrics_handle.snapshot();
        let settled = snapshot.open_connections == 0
            && snapshot.outcomes == snapshot.requests
            && outcomes.load(Ordering::Relaxed) == snapshot.requests
            && open_fds() <= fds_before
            && runtime.metrics().num_alive_tasks() <= tasks_before;
        if settled {
            break;
        }
        assert!(
            settle_start.elapsed() < Duration::from_secs(20),
            "did not settle: {snapshot:?}, hook saw {}, fds {} (before {fds_before}), tasks {} (before {tasks_before})",
            outcomes.load(Ordering::Relaxed),
            open_fds(),
            runtime.metrics().num_alive_tasks(),
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let snapshot = metrics_handle.snapshot();
    assert!(
        snapshot.requests > REQUESTS / 2,
        "most requests reached a handler: {snapshot:?}"
    );
    assert_eq!(
        outcomes.load(Ordering::Relaxed),
        snapshot.requests,
        "one outcome per request"
    );
    assert_eq!(open_fds(), fds_before, "file descriptors leaked");
    assert_eq!(
        runtime.metrics().num_alive_tasks(),
        tasks_before,
        "tasks leaked"
    );
    let hangups: u64 = snapshot.hangups.iter().map(|(_, n)| n).sum();
    assert!(hangups > 0, "hang-ups were counted: {snapshot:?}");

    // Fresh clients are served normally.
    for _ in 0..20 {
        let raw = raw_exchange(
            server.addr,
            b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert_eq!(parse_responses(&raw, &[false])[0].text(), "ok");
    }
    eprintln!("stress: done in {:?}: {snapshot:?}", started.elapsed());
}

/// One client that leaves at a random point.
async fn abandon(addr: std::net::SocketAddr, (point, rst, noise): (u64, bool, u64)) {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return;
    };
    let _ = stream.set_nodelay(true);
    let result: std::io::Result<()> = async {
        match point {
            // Inside the head.
            0 => {
                let head = b"GET /wait HTTP/1.1\r\nHost: t\r\n\r\n";
                stream
                    .write_all(&head[..(noise as usize % (head.len() - 1)) + 1])
                    .await?;
            }
            // While the handler waits.
            1 => {
                stream.write_all(&get("/wait")).await?;
                tokio::time::sleep(Duration::from_micros(noise % 2000)).await;
            }
            // Mid request body.
            2 => {
                stream
                    .write_all(b"POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 10000\r\n\r\n")
                    .await?;
                stream
                    .write_all(&vec![b'p'; (noise % 9999) as usize])
                    .await?;
            }
            // Mid response, after reading a random amount.
            3 | 4 => {
                stream.write_all(&get("/big")).await?;
                let want = (noise % (1 << 20)) as usize;
                let mut got = 0;
                let mut buf = vec![0u8; 64 * 1024];
                while got < want {
                    let n = stream.read(&mut buf).await?;
                    if n == 0 {
                        break;
                    }
                    got += n;
                }
            }
            // Pipelined, leaving during the second response.
            _ => {
                let mut two = get("/big");
                two.extend_from_slice(&get("/wait"));
                stream.write_all(&two).await?;
                let mut buf = vec![0u8; 64 * 1024];
                let _ = stream.read(&mut buf).await?;
            }
        }
        Ok(())
    }
    .await;
    let _ = result;
    if rst {
        let std = match stream.into_std() {
            Ok(std) => std,
            Err(_) => return,
        };
        let _ = socket2::SockRef::from(&std).set_linger(Some(Duration::ZERO));
        drop(std);
    } else {
        drop(stream);
    }
}
