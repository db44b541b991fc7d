//! [`Server`]: bind, accept, one task per connection, graceful shutdown.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;

use crate::config::Config;
#[cfg(feature = "tls")]
use crate::conn::handshakes::Handshakes;
use crate::conn::{Admitted, Conn, HeadBudget, ServerParts};
use crate::error::Result;
use crate::handler::Handler;
use crate::outcome::Metrics;
use crate::park::ParkingLot;
use crate::shutdown::Shutdown;

/// Pause after an accept error such as `EMFILE`, so a full fd table does
/// not turn the accept loop into a busy loop; 100 ms is what hyper and
/// mini-redis use.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// An HTTP/1.1 server: a listener, a [`Config`] and a [`Handler`].
///
/// ```no_run
/// # async fn run() -> hangup::Result<()> {
/// let server = hangup::Server::bind("127.0.0.1:3000", hangup::Config::default(), |_req, mut res: hangup::ResponseWriter| async move {
///     res.write_all(b"Hello, World!").await
/// })
/// .await?;
/// server.run().await
/// # }
/// ```
#[derive(Debug)]
pub struct Server<H> {
    listener: TcpListener,
    config: Arc<Config>,
    handler: Arc<H>,
    shutdown: ShutdownHandle,
    metrics: Metrics,
}

/// Stops a running [`Server`]; cheap to clone and send anywhere.
#[derive(Debug, Clone, Default)]
pub struct ShutdownHandle {
    signals: Shutdown,
    grace_ms: Arc<AtomicU64>,
}

impl ShutdownHandle {
    /// Starts a graceful shutdown: the server stops accepting, idle
    /// keep-alive connections close at once, and in-flight requests may
    /// finish their response (their connections then close) until `grace`
    /// has passed; the rest are then closed (a FIN), their handlers dropped,
    /// and their outcomes recorded as cut short by the server
    /// ([`Cutoff::ServerShutdown`](crate::Cutoff::ServerShutdown), with the
    /// status they were sending: not a 499, the client did not leave).
    /// [`Server::run`] returns once every connection is gone, upgraded
    /// ones excepted: a socket a handler took over with
    /// [`ResponseWriter::upgrade`](crate::ResponseWriter::upgrade) and moved
    /// to a task of its own stays open (and counted) until that task drops
    /// it.
    pub fn shutdown(&self, grace: Duration) {
        let millis = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
        self.grace_ms.store(millis, Ordering::Release);
        self.signals.start_graceful();
    }

    /// True once [`shutdown`](Self::shutdown) was called.
    pub fn is_shutting_down(&self) -> bool {
        self.signals.is_draining()
    }
}

impl<H: Handler> Server<H> {
    /// Binds a listener to `addr`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) if the address cannot be bound.
    pub async fn bind(addr: impl ToSocketAddrs, config: Config, handler: H) -> Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Self::from_listener(listener, config, handler))
    }

    /// Serves on a listener bound elsewhere.
    pub fn from_listener(listener: TcpListener, config: Config, handler: H) -> Self {
        Server {
            listener,
            config: Arc::new(config),
            handler: Arc::new(handler),
            shutdown: ShutdownHandle::default(),
            metrics: Metrics::default(),
        }
    }

    /// The bound address (useful after binding port 0).
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) if the socket cannot tell.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// The server's live counters: open connections, requests, hang-ups by
    /// cause, bytes written and acknowledged.
    pub fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    /// A handle that shuts this server down.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// Accepts and serves connections until shut down, then waits for every
    /// connection to finish (see [`ShutdownHandle::shutdown`]).
    ///
    /// # Errors
    ///
    /// None today: accept errors (such as running out of file descriptors)
    /// are logged and retried after a short pause.
    pub async fn run(self) -> Result<()> {
        let Server {
            listener,
            config,
            handler,
            shutdown,
            metrics,
        } = self;
        let tracker = TaskTracker::new();
        let signals = shutdown.signals.clone();
        let parking = match ParkingLot::new() {
            Ok(lot) => Some(Arc::new(lot)),
            Err(err) => {
                tracing::warn!(%err, "no parking lot: idle connections keep their tasks");
                None
            }
        };
        let head_budget = Arc::new(HeadBudget::new(config.head_memory_budget));
        #[cfg(feature = "tls")]
        let handshakes = config
            .tls
            .as_ref()
            .map(|_| Handshakes::new(config.max_tls_handshakes));
        #[cfg(not(feature = "tls"))]
        let handshakes = None;
        let server = ServerParts {
            handler,
            config,
            shutdown: signals.clone(),
            metrics,
            tracker: tracker.clone(),
            parking,
            head_budget,
            handshakes,
        };
        let capacity = Capacity::new(&server.config);
        loop {
            // A connection slot first: with none free, new connections
            // wait in the kernel's backlog rather than being accepted and
            // dropped.
            let connection = tokio::select! {
                connection = capacity.connection(&server.metrics) => connection,
                () = signals.draining_started() => break,
            };
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = signals.draining_started() => break,
            };
            match accepted {
                Ok((stream, remote_addr)) => {
                    let admitted = Admitted { connection };
                    tracker.spawn(Conn::serve(stream, remote_addr, server.clone(), admitted));
                }
                Err(err) if is_transient_accept_error(&err) => {}
                Err(err) => {
                    tracing::warn!(%err, "accept failed; pausing");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                }
            }
        }
        drop(listener);
        tracker.close();
        let grace = Duration::from_millis(shutdown.grace_ms.load(Ordering::Acquire));
        if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
            signals.force();
            tracker.wait().await;
        }
        Ok(())
    }
}

/// How many connections the server takes on at once: a slot per open
/// connection (`max_connections`), waited for. (TLS handshakes in progress
/// are capped where they run, without waiting: see `conn::handshakes`.)
struct Capacity {
    connections: Arc<Semaphore>,
}

impl Capacity {
    fn new(config: &Config) -> Self {
        Capacity {
            connections: Arc::new(Semaphore::new(config.max_connections)),
        }
    }

    /// The next connection's slot, waited for when all are taken (a wait
    /// counted in the metrics' `accept_pauses`).
    async fn connection(&self, metrics: &Metrics) -> OwnedSemaphorePermit {
        match self.connections.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                metrics.accept_paused();
                acquire(&self.connections).await
            }
        }
    }
}

/// Waits for a slot. The semaphores are never closed.
async fn acquire(slots: &Arc<Semaphore>) -> OwnedSemaphorePermit {
    match slots.clone().acquire_owned().await {
        Ok(slot) => slot,
        Err(_closed) => unreachable!("the server's semaphores are never closed"),
    }
}

/// Errors about one connection that died in the backlog: not our problem.
fn is_transient_accept_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
    )
}
