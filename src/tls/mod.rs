//! TLS certificates for a rustls server (the `tls` feature): loading a PEM
//! chain and key with clear errors, reloading them without dropping
//! connections, and self-signed certificates for local use.
//!
//! ```no_run
//! # fn main() -> Result<(), hangup::tls::TlsConfigError> {
//! use hangup::tls::TlsFiles;
//!
//! let loaded = TlsFiles::new("/etc/hangup/fullchain.pem", "/etc/hangup/privkey.pem").load()?;
//! for warning in &loaded.warnings {
//!     eprintln!("warning: {warning}");
//! }
//! let mut config = hangup::Config::builder();
//! config.tls(loaded.config);
//! # Ok(())
//! # }
//! ```
//!
//! # What is checked at load
//!
//! - Each file can be read and is at most [`MAX_PEM_BYTES`]; its PEM
//!   sections are well formed. One file may hold both chain and key.
//! - The certificate file holds at least one `CERTIFICATE`, each a valid
//!   X.509 certificate; the first is the server's own, the others its
//!   intermediates (their order is not otherwise checked).
//! - The key file holds exactly one unencrypted private key, in PKCS#8
//!   (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`)
//!   form, of a type the crypto provider signs with: RSA of 2048 to 8192
//!   bits, ECDSA on P-256 or P-384, Ed25519.
//! - The key is the first certificate's (their public keys are compared);
//!   when it is a later certificate's, the error says the chain is out of
//!   order.
//! - Every certificate's validity dates against the clock: one expired or
//!   not yet valid **loads**, with a [`CertWarning`] to print at start.
//!
//! Not checked: that the chain leads to a root clients trust, the names
//! clients will ask for, revocation. Errors are [`TlsConfigError`]s that
//! name the file and say what is wrong.
//!
//! # What a reload guarantees
//!
//! The configuration's certificate resolver is a [`CertReloader`]. A
//! reload ([`CertReloader::reload`], on `SIGHUP` with
//! [`reload_on_sighup`](CertReloader::reload_on_sighup), or when the files
//! change with [`watch_files`](CertReloader::watch_files)) checks the new
//! files as a first load does and swaps the certificate in one step: new
//! handshakes get the new one, established connections keep their session
//! untouched, and a reload that fails keeps the old certificate and says
//! why. See [`CertReloader`] for the details.
//!
//! # Defaults
//!
//! | setting | default | why |
//! |---|---|---|
//! | crypto provider | [ring](crypto_provider) | builds fast and surely on a fresh machine (see `Cargo.toml`) |
//! | protocol versions | TLS 1.3 and 1.2 | rustls' safe defaults; 1.2 for older clients |
//! | ALPN | `http/1.1` | hangup speaks HTTP/1.1; a client offering only `h2` is refused during the handshake (RFC 7301) rather than misunderstood after it |
//! | client certificates | not requested | |
//! | SNI | not used to choose | one certificate serves every name |
//! | session resumption | rustls' defaults | an in-memory cache of 256 sessions, no stateless tickets |
//! | 0-RTT early data | off | replayable requests |
//! | file watch interval | [`DEFAULT_WATCH_INTERVAL`], 5 s | renewals are taken within seconds, for two `stat` calls |
//! | largest PEM file | [`MAX_PEM_BYTES`], 1 MiB | a wrong path fails fast |
//! | self-signed | ECDSA P-256, [`SELF_SIGNED_NAMES`], [`SELF_SIGNED_VALIDITY`] 90 days | what a browser or `curl` on this machine asks for |
//!
//! `SIGHUP` handling uses Tokio's `signal` feature, which `tls` enables.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;

mod certs;
mod error;
mod reload;
mod self_signed;

pub use certs::{CertInfo, MAX_PEM_BYTES, fingerprint_sha256};
pub use error::{CertWarning, FileRole, TlsConfigError};
pub use reload::{CertReloader, DEFAULT_WATCH_INTERVAL, Reloaded};
/// The rustls crate these types come from, to build configurations and
/// clients with the same version.
pub use rustls;
pub use self_signed::{SELF_SIGNED_NAMES, SELF_SIGNED_VALIDITY, SelfSigned, self_signed};

/// The ALPN protocol name of HTTP/1.1.
const HTTP_1_1: &[u8] = b"http/1.1";

/// The crypto provider hangup's configurations use: rustls' `ring`
/// provider (see `Cargo.toml` for why).
///
/// Build your own [`ServerConfig`] with it
/// (`ServerConfig::builder_with_provider(crypto_provider())`): rustls'
/// plain `ServerConfig::builder()` panics when the process has no default
/// provider, or more than one was compiled in.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    // Deprecated in rustls 0.23.48 for want of post-quantum key exchange
    // (X25519MLKEM768, aws-lc-rs only): clients fall back to X25519. Chosen
    // for a build that is three times faster and never needs cmake.
    #[allow(deprecated)]
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate chain file and a private key file, both PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    cert_chain: PathBuf,
    key: PathBuf,
}

impl TlsFiles {
    /// The chain (the server's certificate first, then its intermediates,
    /// as Let's Encrypt's `fullchain.pem`) and the key (`privkey.pem`). They
    /// may be the same file.
    pub fn new(cert_chain: impl Into<PathBuf>, key: impl Into<PathBuf>) -> TlsFiles {
        TlsFiles {
            cert_chain: cert_chain.into(),
            key: key.into(),
        }
    }

    /// The certificate chain file.
    pub fn cert_chain_path(&self) -> &Path {
        &self.cert_chain
    }

    /// The private key file.
    pub fn key_path(&self) -> &Path {
        &self.key
    }

    /// Reads and checks both files (see the [module docs](self)) and builds
    /// a server configuration that presents them through a
    /// [`CertReloader`].
    ///
    /// # Errors
    ///
    /// A [`TlsConfigError`] naming the file and the problem. Dates outside
    /// the validity period are not errors: they are in
    /// [`LoadedTls::warnings`].
    pub fn load(&self) -> Result<LoadedTls, TlsConfigError> {
        let (reloader, warnings) = CertReloader::load(self.clone(), crypto_provider())?;
        let config = reloader.server_config()?;
        Ok(LoadedTls {
            config,
            certificate: reloader.certificate(),
            reloader,
            warnings,
        })
    }
}

/// A loaded certificate chain and key, ready to serve.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LoadedTls {
    /// The configuration to serve with
    /// ([`ConfigBuilder::tls`](crate::ConfigBuilder::tls)): TLS 1.3 and
    /// 1.2, ALPN `http/1.1`, the certificate from
    /// [`reloader`](Self::reloader).
    pub config: Arc<ServerConfig>,
    /// The certificate resolver inside `config`: reload through it.
    pub reloader: Arc<CertReloader>,
    /// The server's certificate as loaded.
    pub certificate: Arc<CertInfo>,
    /// What is wrong with the certificates but did not stop them: print
    /// these at start.
    pub warnings: Vec<CertWarning>,
}

/// Loads a PEM certificate chain and private key:
/// `TlsFiles::new(cert_chain_pem, key_pem).load()`.
///
/// # Errors
///
/// As [`TlsFiles::load`].
pub fn load_tls_config(cert_chain_pem: &Path, key_pem: &Path) -> Result<LoadedTls, TlsConfigError> {
    TlsFiles::new(cert_chain_pem, key_pem).load()
}

/// `config` with ALPN set to `http/1.1` if the caller set no protocol;
/// unchanged otherwise. For a [`ServerConfig`] built by hand.
///
/// Selecting `http/1.1` confirms to the client what it will speak, and
/// refuses at the handshake a client whose ALPN offer lacks it (an
/// HTTP/2-only client) instead of letting it send HTTP/2 to an HTTP/1.1
/// server.
pub fn with_default_alpn(config: Arc<ServerConfig>) -> Arc<ServerConfig> {
    if !config.alpn_protocols.is_empty() {
        return config;
    }
    let mut config = Arc::unwrap_or_clone(config);
    config.alpn_protocols = vec![HTTP_1_1.to_vec()];
    Arc::new(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_and_errors_cross_threads() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<TlsConfigError>();
        send_sync::<CertWarning>();
        send_sync::<LoadedTls>();
        send_sync::<CertReloader>();
        send_sync::<SelfSigned>();
    }
}
