//! [`TlsConfigError`], what can go wrong while loading certificates, and
//! [`CertWarning`], what is wrong but still served.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rustls::pki_types::pem::Error as PemError;

use super::certs::fmt_utc;

/// Which of the two files an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileRole {
    /// The PEM certificate chain (the server's certificate first).
    CertChain,
    /// The PEM private key.
    PrivateKey,
}

impl fmt::Display for FileRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileRole::CertChain => "certificate file",
            FileRole::PrivateKey => "private key file",
        })
    }
}

/// Why a certificate chain and key could not be loaded (or a self-signed
/// certificate made).
///
/// Every variant names the file it is about; `Display` says what is wrong
/// in one lowercase line, fit for a start-up error message.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// The file could not be opened or read: missing, unreadable, a
    /// directory.
    Read {
        /// Which file.
        role: FileRole,
        /// The path as given.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The file is larger than a PEM chain or key can be (see
    /// [`MAX_PEM_BYTES`](super::MAX_PEM_BYTES)); it was not read further.
    TooLarge {
        /// Which file.
        role: FileRole,
        /// The path as given.
        path: PathBuf,
        /// The limit, in bytes.
        limit_bytes: u64,
    },
    /// The file has a malformed PEM section (bad base64, a missing `END`
    /// line).
    Pem {
        /// Which file.
        role: FileRole,
        /// The path as given.
        path: PathBuf,
        /// What the PEM parser said.
        source: rustls::pki_types::pem::Error,
    },
    /// The certificate file holds no `CERTIFICATE` section.
    NoCertificate {
        /// The certificate file.
        path: PathBuf,
        /// The PEM labels that were found instead (empty if none).
        found: Vec<String>,
    },
    /// A certificate in the chain is not valid X.509 DER.
    InvalidCertificate {
        /// The certificate file.
        path: PathBuf,
        /// Its place in the chain, from 1 (the server's own certificate).
        position: usize,
        /// What the parser said.
        detail: String,
    },
    /// The key file holds no private key section (`PRIVATE KEY`,
    /// `RSA PRIVATE KEY` or `EC PRIVATE KEY`).
    NoPrivateKey {
        /// The key file.
        path: PathBuf,
        /// The PEM labels that were found instead (empty if none).
        found: Vec<String>,
    },
    /// The key file holds more than one private key: which one is meant is
    /// not guessed.
    MultiplePrivateKeys {
        /// The key file.
        path: PathBuf,
        /// How many private keys it holds.
        count: usize,
    },
    /// The private key is of a type or form the crypto provider cannot sign
    /// with (supported: RSA of 2048 to 8192 bits, ECDSA on P-256 and P-384,
    /// Ed25519; unencrypted), or its DER is corrupt.
    UnsupportedKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// The private key is not the key of the first certificate in the chain.
    KeyMismatch {
        /// The certificate file.
        cert_chain: PathBuf,
        /// The key file.
        key: PathBuf,
        /// The place (from 1) of a later certificate in the chain that the
        /// key does match, if any: the chain is out of order.
        matches_position: Option<usize>,
    },
    /// rcgen could not make a self-signed certificate.
    SelfSigned {
        /// What rcgen said.
        detail: String,
    },
    /// A file of a self-signed certificate could not be written.
    Write {
        /// The file (or directory) that could not be written.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// rustls refused to build a server configuration.
    Rustls(rustls::Error),
}

impl TlsConfigError {
    /// The file the error is about, if it is about one file. A
    /// [`KeyMismatch`](Self::KeyMismatch) gives the key file.
    pub fn path(&self) -> Option<&Path> {
        match self {
            TlsConfigError::Read { path, .. }
            | TlsConfigError::TooLarge { path, .. }
            | TlsConfigError::Pem { path, .. }
            | TlsConfigError::NoCertificate { path, .. }
            | TlsConfigError::InvalidCertificate { path, .. }
            | TlsConfigError::NoPrivateKey { path, .. }
            | TlsConfigError::MultiplePrivateKeys { path, .. }
            | TlsConfigError::UnsupportedKey { path, .. }
            | TlsConfigError::Write { path, .. } => Some(path),
            TlsConfigError::KeyMismatch { key, .. } => Some(key),
            TlsConfigError::SelfSigned { .. } | TlsConfigError::Rustls(_) => None,
        }
    }
}

/// `found: A, B` or `no PEM sections found`, after a missing certificate
/// or key.
struct Found<'a>(&'a [String]);

impl fmt::Display for Found<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("no PEM sections found")
        } else {
            write!(f, "found: {}", self.0.join(", "))
        }
    }
}

impl fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsConfigError::Read { role, path, source } => {
                write!(f, "cannot read {role} {}: {source}", path.display())
            }
            TlsConfigError::TooLarge {
                role,
                path,
                limit_bytes,
            } => write!(
                f,
                "{role} {} is larger than {limit_bytes} bytes: not a PEM certificate or key",
                path.display()
            ),
            TlsConfigError::Pem { role, path, source } => {
                write!(f, "{role} {} is not valid PEM: ", path.display())?;
                match source {
                    // rustls-pki-types prints these labels as byte lists.
                    PemError::MissingSectionEnd { end_marker } => write!(
                        f,
                        "no \"-----END {}-----\" line (a truncated file?)",
                        String::from_utf8_lossy(end_marker)
                    ),
                    PemError::IllegalSectionStart { line } => write!(
                        f,
                        "malformed line \"{}\"",
                        String::from_utf8_lossy(line).trim_end()
                    ),
                    other => write!(f, "{other}"),
                }
            }
            TlsConfigError::NoCertificate { path, found } => write!(
                f,
                "no certificate in {} ({}); expected PEM \"-----BEGIN CERTIFICATE-----\" sections",
                path.display(),
                Found(found)
            ),
            TlsConfigError::InvalidCertificate {
                path,
                position,
                detail,
            } => write!(
                f,
                "certificate {position} in {} is not a valid X.509 certificate: {detail}",
                path.display()
            ),
            TlsConfigError::NoPrivateKey { path, found } => write!(
                f,
                "no private key in {} ({}); expected an unencrypted PEM \"PRIVATE KEY\", \
                 \"RSA PRIVATE KEY\" or \"EC PRIVATE KEY\" section",
                path.display(),
                Found(found)
            ),
            TlsConfigError::MultiplePrivateKeys { path, count } => write!(
                f,
                "{count} private keys in {}: keep only the certificate's own",
                path.display()
            ),
            TlsConfigError::UnsupportedKey { path, detail } => write!(
                f,
                "unsupported private key in {}: {detail} (supported: RSA 2048 to 8192 bits, \
                 ECDSA P-256 and P-384, Ed25519)",
                path.display()
            ),
            TlsConfigError::KeyMismatch {
                cert_chain,
                key,
                matches_position,
            } => {
                write!(
                    f,
                    "the private key in {} does not match the first certificate in {}",
                    key.display(),
                    cert_chain.display()
                )?;
                match matches_position {
                    Some(position) => write!(
                        f,
                        " (it matches certificate {position}: put the server's own \
                         certificate first, then its intermediates)"
                    ),
                    None => Ok(()),
                }
            }
            TlsConfigError::SelfSigned { detail } => {
                write!(f, "cannot make a self-signed certificate: {detail}")
            }
            TlsConfigError::Write { path, source } => {
                write!(f, "cannot write {}: {source}", path.display())
            }
            TlsConfigError::Rustls(err) => write!(f, "rustls refused the configuration: {err}"),
        }
    }
}

impl std::error::Error for TlsConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsConfigError::Read { source, .. } | TlsConfigError::Write { source, .. } => {
                Some(source)
            }
            TlsConfigError::Pem { source, .. } => Some(source),
            TlsConfigError::Rustls(err) => Some(err),
            _ => None,
        }
    }
}

/// Something wrong with a certificate that still loads: print it at start
/// (and it is logged at `warn` on a reload).
///
/// A server that refused to start over an expired certificate would be
/// down until someone fixed it; one that starts and says so can be fixed
/// with a reload, and serves clients that do not check dates meanwhile.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertWarning {
    /// The certificate's `notAfter` date has passed: clients that check
    /// dates refuse it.
    Expired {
        /// The certificate file.
        path: PathBuf,
        /// The certificate's place in the chain, from 1 (the server's own).
        position: usize,
        /// Its `notBefore` date.
        not_before: SystemTime,
        /// Its `notAfter` date, in the past.
        not_after: SystemTime,
    },
    /// The certificate's `notBefore` date has not come yet (a clock that
    /// is behind, or a certificate issued for later).
    NotYetValid {
        /// The certificate file.
        path: PathBuf,
        /// The certificate's place in the chain, from 1 (the server's own).
        position: usize,
        /// Its `notBefore` date, in the future.
        not_before: SystemTime,
        /// Its `notAfter` date.
        not_after: SystemTime,
    },
}

impl fmt::Display for CertWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (path, position, not_before, not_after, what) = match self {
            CertWarning::Expired {
                path,
                position,
                not_before,
                not_after,
            } => (path, *position, not_before, not_after, "expired"),
            CertWarning::NotYetValid {
                path,
                position,
                not_before,
                not_after,
            } => (path, *position, not_before, not_after, "not yet valid"),
        };
        if position == 1 {
            write!(f, "the certificate in {} is {what}", path.display())?;
        } else {
            write!(f, "certificate {position} in {} is {what}", path.display())?;
        }
        write!(
            f,
            ": valid from {} until {}; clients that check dates will refuse it",
            fmt_utc(*not_before),
            fmt_utc(*not_after)
        )
    }
}
