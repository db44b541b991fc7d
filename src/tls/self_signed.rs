//! [`self_signed`]: a development certificate for this machine, made with
//! rcgen, written as PEM files and loaded like any other.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcgen::{CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair};

use super::error::TlsConfigError;
use super::{LoadedTls, TlsFiles};

/// The names a self-signed certificate is valid for: what a browser or
/// `curl` on this machine uses to reach a local server.
pub const SELF_SIGNED_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// How long a self-signed certificate is valid, from one hour before it
/// was made (clock skew between processes): 90 days.
///
/// A development server is rarely up that long without a restart, which
/// makes a fresh one; 90 days is also within every client's limit for a
/// locally trusted certificate (Apple's is 825 days).
pub const SELF_SIGNED_VALIDITY: std::time::Duration = std::time::Duration::from_secs(90 * 86_400);

/// A self-signed certificate made by [`self_signed`]: where it was
/// written, and the configuration that serves it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SelfSigned {
    /// The certificate, `DIR/cert.pem`: what a client trusts
    /// (`curl --cacert DIR/cert.pem https://localhost:PORT/`).
    pub cert_path: PathBuf,
    /// The private key, `DIR/key.pem`, readable by its owner only (0600).
    pub key_path: PathBuf,
    /// The SHA-256 fingerprint of the certificate, as `openssl x509
    /// -fingerprint -sha256` prints it: to compare with what a browser
    /// shows.
    pub fingerprint_sha256: String,
    /// The loaded files (configuration, reloader, certificate details).
    pub loaded: LoadedTls,
}

/// Makes a new self-signed certificate for [`SELF_SIGNED_NAMES`] (ECDSA
/// P-256, valid for [`SELF_SIGNED_VALIDITY`]), writes it to `dir/cert.pem`
/// and its key to `dir/key.pem` (created with mode 0600), and loads them.
///
/// `dir` is created if missing. Files already there are replaced: each call
/// makes a new key. Each file is written under a temporary name and renamed
/// into place, so a reader never sees half a file.
///
/// # Errors
///
/// [`TlsConfigError::Write`] if `dir` or a file cannot be written;
/// [`TlsConfigError::SelfSigned`] if rcgen fails; any loading error (none is
/// expected).
pub fn self_signed(dir: &Path) -> Result<SelfSigned, TlsConfigError> {
    let rcgen_error = |err: rcgen::Error| TlsConfigError::SelfSigned {
        detail: err.to_string(),
    };
    let key_pair = KeyPair::generate().map_err(rcgen_error)?;
    let mut params = CertificateParams::new(SELF_SIGNED_NAMES.map(str::to_owned).to_vec())
        .map_err(rcgen_error)?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "localhost");
    name.push(DnType::OrganizationName, "hangup self-signed");
    params.distinguished_name = name;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::HOUR;
    params.not_after = now + SELF_SIGNED_VALIDITY;
    // No key usage extension: with one, OpenSSL would want `keyCertSign`
    // before trusting the certificate as its own issuer (`curl --cacert`).
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.self_signed(&key_pair).map_err(rcgen_error)?;

    fs::create_dir_all(dir).map_err(|source| TlsConfigError::Write {
        path: dir.to_owned(),
        source,
    })?;
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    write_replacing(&key_path, key_pair.serialize_pem().as_bytes(), 0o600)?;
    write_replacing(&cert_path, cert.pem().as_bytes(), 0o644)?;

    let loaded = TlsFiles::new(&cert_path, &key_path).load()?;
    Ok(SelfSigned {
        cert_path,
        key_path,
        fingerprint_sha256: loaded.certificate.fingerprint_sha256.clone(),
        loaded,
    })
}

/// Writes `bytes` to `path.tmp` (created with `mode`, replacing a stale
/// one), then renames it to `path`.
fn write_replacing(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsConfigError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let write_error = |path: &Path| {
        let path = path.to_owned();
        move |source| TlsConfigError::Write { path, source }
    };
    // A stale temporary file may have another mode: `mode` applies only to
    // a file this call creates.
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(write_error(&tmp)(err)),
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(write_error(&tmp))?;
    file.write_all(bytes).map_err(write_error(&tmp))?;
    file.sync_all().map_err(write_error(&tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(write_error(path))
}
