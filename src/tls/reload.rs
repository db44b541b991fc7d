//! [`CertReloader`]: the certificate resolver a loaded [`ServerConfig`]
//! uses, and the way to swap its certificate while the server runs.

use std::fmt;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::task::JoinHandle;

use super::certs::{self, CertInfo, Loaded};
use super::error::{CertWarning, TlsConfigError};
use super::{HTTP_1_1, TlsFiles};

/// How often [`CertReloader::watch_files`] looks at the files when the
/// caller has no better figure: 5 seconds.
///
/// A certificate renewed days before it expires can wait that long, and an
/// operator who just copied new files sees them taken within seconds; two
/// `stat` calls every 5 s cost nothing.
pub const DEFAULT_WATCH_INTERVAL: Duration = Duration::from_secs(5);

/// The certificate a server presents, swappable while it runs.
///
/// It is the [`ResolvesServerCert`] of the [`ServerConfig`] that
/// [`TlsFiles::load`] returns: rustls asks it for the certificate once per
/// full handshake. A reload reads and checks the files as a first load does,
/// then replaces the certificate in one step, so:
///
/// - handshakes that start after a reload returned get the new certificate;
///   a handshake in progress has its certificate already;
/// - connections established before keep their session and keys; nothing
///   is closed, and nothing is asked of their tasks;
/// - a session resumed from rustls' session cache carries no certificate
///   and resumes as before;
/// - a reload that fails (a missing or half-written file, a key that does
///   not match) changes nothing: the old certificate stays, and the error
///   is returned (or logged at `warn` by the watchers);
/// - reloads are serialised; a handshake never waits for a reload's file
///   reads (only for the swap of one pointer).
///
/// One certificate serves every name: the SNI a client sends is not used
/// to choose.
pub struct CertReloader {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: RwLock<Current>,
    /// Held for a whole reload; holds the files' stamps as the last reload
    /// attempt (or the first load) saw them before reading.
    reloading: Mutex<Stamps>,
}

#[derive(Clone)]
struct Current {
    key: Arc<CertifiedKey>,
    info: Arc<CertInfo>,
}

/// The outcome of a successful [`CertReloader::reload`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Reloaded {
    /// The certificate served before the reload.
    pub previous: Arc<CertInfo>,
    /// The certificate served from now on (the same, if the files had not
    /// changed).
    pub current: Arc<CertInfo>,
    /// What is wrong with the new certificate but did not stop it (dates).
    pub warnings: Vec<CertWarning>,
}

impl Reloaded {
    /// True when the new certificate differs from the previous one (by
    /// fingerprint).
    pub fn is_changed(&self) -> bool {
        self.previous.fingerprint_sha256 != self.current.fingerprint_sha256
    }
}

impl CertReloader {
    /// Loads `files` and makes a reloader serving them.
    pub(crate) fn load(
        files: TlsFiles,
        provider: Arc<CryptoProvider>,
    ) -> Result<(Arc<CertReloader>, Vec<CertWarning>), TlsConfigError> {
        let stamps = Stamps::of(&files);
        let Loaded {
            key,
            info,
            warnings,
        } = certs::load(&files, &provider, SystemTime::now())?;
        let reloader = Arc::new(CertReloader {
            files,
            provider,
            current: RwLock::new(Current { key, info }),
            reloading: Mutex::new(stamps),
        });
        Ok((reloader, warnings))
    }

    /// A server configuration that presents this reloader's certificate:
    /// rustls' safe default protocol versions (TLS 1.3 and 1.2), no client
    /// authentication, ALPN `http/1.1`.
    ///
    /// # Errors
    ///
    /// [`TlsConfigError::Rustls`] if the crypto provider supports neither
    /// protocol version (never with the default provider).
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<ServerConfig>, TlsConfigError> {
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsConfigError::Rustls)?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![HTTP_1_1.to_vec()];
        Ok(Arc::new(config))
    }

    /// The files this reloader reads.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// The certificate new handshakes get now.
    pub fn certificate(&self) -> Arc<CertInfo> {
        self.read_current().info
    }

    /// The certificate chain and signing key new handshakes get now.
    pub fn certified_key(&self) -> Arc<CertifiedKey> {
        self.read_current().key
    }

    /// Reads and checks the files again and, if they pass, serves them to
    /// every handshake from now on.
    ///
    /// Blocks on file reads (two small files) and key parsing: from async
    /// code, call it inside `tokio::task::spawn_blocking`, as the watchers
    /// do.
    ///
    /// # Errors
    ///
    /// Any [`TlsConfigError`] a first load can give. The certificate served
    /// before stays in place.
    pub fn reload(&self) -> Result<Reloaded, TlsConfigError> {
        let mut stamps = self
            .reloading
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.reload_locked(&mut stamps)
    }

    /// Reloads if either file changed (size, modification time, or inode:
    /// a renewal that renames or re-links files counts) since the last
    /// reload attempt or the first load; `Ok(None)` if neither did.
    ///
    /// A failed attempt is not retried until a file changes again: a
    /// certificate written before its key fails once (a mismatch), and the
    /// key's arrival triggers the next attempt.
    ///
    /// # Errors
    ///
    /// As [`reload`](Self::reload).
    pub fn reload_if_changed(&self) -> Result<Option<Reloaded>, TlsConfigError> {
        let mut stamps = self
            .reloading
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *stamps == Stamps::of(&self.files) {
            return Ok(None);
        }
        self.reload_locked(&mut stamps).map(Some)
    }

    fn reload_locked(&self, stamps: &mut Stamps) -> Result<Reloaded, TlsConfigError> {
        // Stamped before reading: a file that changes while it is read is
        // seen as changed by the next look.
        *stamps = Stamps::of(&self.files);
        let Loaded {
            key,
            info,
            warnings,
        } = certs::load(&self.files, &self.provider, SystemTime::now())?;
        let previous = {
            let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
            std::mem::replace(
                &mut *current,
                Current {
                    key,
                    info: info.clone(),
                },
            )
            .info
        };
        Ok(Reloaded {
            previous,
            current: info,
            warnings,
        })
    }

    fn read_current(&self) -> Current {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Spawns a task that calls [`reload_if_changed`](Self::reload_if_changed)
    /// every `every` ([`DEFAULT_WATCH_INTERVAL`] is a good figure), off the
    /// async threads, and logs the outcome: a new certificate at `info`, a
    /// failure or a date warning at `warn`.
    ///
    /// The files are polled (their metadata, following symbolic links such
    /// as Let's Encrypt's `live/` ones) rather than watched through inotify:
    /// it works the same on every file system, for files replaced by rename
    /// or symlink swap, at the cost of noticing up to `every` late. The task
    /// ends when the reloader is dropped (it holds it weakly), or when the
    /// returned handle is aborted.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime, or if `every` is zero.
    pub fn watch_files(self: &Arc<Self>, every: Duration) -> JoinHandle<()> {
        let reloader = Arc::downgrade(self);
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::spawn(async move {
            // The first tick is immediate; the load that made the reloader
            // has just looked.
            ticks.tick().await;
            loop {
                ticks.tick().await;
                if !reload_off_thread(&reloader, Trigger::FileChange).await {
                    return;
                }
            }
        })
    }

    /// Spawns a task that reloads whenever the process receives `SIGHUP`
    /// (the convention of nginx, HAProxy and most daemons: `kill -HUP PID`,
    /// or `systemctl reload` with `ExecReload=kill -HUP $MAINPID`), and logs
    /// the outcome as [`watch_files`](Self::watch_files) does.
    ///
    /// From this call on, `SIGHUP` no longer ends the process (Tokio keeps
    /// its handler installed for the process's lifetime). The task ends
    /// when the reloader is dropped or the handle aborted.
    ///
    /// # Errors
    ///
    /// The error of installing the signal handler.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime with I/O enabled.
    pub fn reload_on_sighup(self: &Arc<Self>) -> io::Result<JoinHandle<()>> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = signal(SignalKind::hangup())?;
        let reloader = Arc::downgrade(self);
        Ok(tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                if !reload_off_thread(&reloader, Trigger::Sighup).await {
                    return;
                }
            }
        }))
    }
}

#[derive(Clone, Copy)]
enum Trigger {
    FileChange,
    Sighup,
}

/// One reload (`Sighup`) or look (`FileChange`) on a blocking thread, its
/// outcome logged. False once the reloader is gone.
async fn reload_off_thread(reloader: &Weak<CertReloader>, trigger: Trigger) -> bool {
    let Some(reloader) = reloader.upgrade() else {
        return false;
    };
    let outcome = tokio::task::spawn_blocking(move || {
        let outcome = match trigger {
            Trigger::FileChange => reloader.reload_if_changed(),
            Trigger::Sighup => reloader.reload().map(Some),
        };
        (reloader, outcome)
    })
    .await;
    let (reloader, outcome) = match outcome {
        Ok(done) => done,
        // The reload panicked (a bug) or the runtime is shutting down.
        Err(err) => {
            tracing::warn!(error = %err, "tls certificate reload did not complete");
            return true;
        }
    };
    let cause = match trigger {
        Trigger::FileChange => "files changed",
        Trigger::Sighup => "SIGHUP",
    };
    let files = reloader.files();
    match outcome {
        Ok(None) => {}
        Ok(Some(reloaded)) => {
            tracing::info!(
                cause,
                cert = %files.cert_chain_path().display(),
                previous = %reloaded.previous.fingerprint_sha256,
                current = %reloaded.current.fingerprint_sha256,
                changed = reloaded.is_changed(),
                names = ?reloaded.current.names,
                "tls certificate reloaded"
            );
            for warning in &reloaded.warnings {
                tracing::warn!(cause, "{warning}");
            }
        }
        Err(err) => tracing::warn!(
            cause,
            error = %err,
            keeping = %reloader.certificate().fingerprint_sha256,
            "tls certificate reload failed; the previous certificate stays"
        ),
    }
    true
}

impl ResolvesServerCert for CertReloader {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.read_current().key)
    }
}

impl fmt::Debug for CertReloader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self.read_current();
        f.debug_struct("CertReloader")
            .field("files", &self.files)
            .field("fingerprint_sha256", &current.info.fingerprint_sha256)
            .field("names", &current.info.names)
            .finish_non_exhaustive()
    }
}

/// What a file looked like, to notice it changed without reading it.
#[derive(Debug, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    device: u64,
    inode: u64,
}

impl Stamp {
    /// `None` for a file that cannot be looked at (missing in the middle of
    /// a rename): when it comes back, it has changed.
    fn of(path: &Path) -> Option<Stamp> {
        let meta = std::fs::metadata(path).ok()?;
        Some(Stamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            device: meta.dev(),
            inode: meta.ino(),
        })
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Stamps {
    cert_chain: Option<Stamp>,
    key: Option<Stamp>,
}

impl Stamps {
    fn of(files: &TlsFiles) -> Stamps {
        Stamps {
            cert_chain: Stamp::of(files.cert_chain_path()),
            key: Stamp::of(files.key_path()),
        }
    }
}
