//! Reading a PEM certificate chain and private key, and checking them
//! before rustls sees them: every certificate parses, there is exactly one
//! key, rustls' provider can sign with it, it is the first certificate's
//! key, and the dates (which only warn).

use std::fmt::Write as _;
use std::fs::File;
use std::io::Read;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{PemObject, SectionKind};
use rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer,
};
use rustls::sign::CertifiedKey;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use super::TlsFiles;
use super::error::{CertWarning, FileRole, TlsConfigError};

/// The largest certificate or key file read, in bytes: 1 MiB.
///
/// A chain of a dozen certificates is about 20 KiB; a path that names a log
/// file or `/dev/zero` by mistake fails at once instead of being read whole.
pub const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// What was learned about the server's certificate (the first of the chain)
/// when it was loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CertInfo {
    /// The subject's distinguished name, as `CN=example.com` (OpenSSL's
    /// one-line form).
    pub subject: String,
    /// The subject alternative names a client checks: DNS names, and IP
    /// addresses in their usual text form.
    pub names: Vec<String>,
    /// The start of the validity period.
    pub not_before: SystemTime,
    /// The end of the validity period.
    pub not_after: SystemTime,
    /// The SHA-256 fingerprint of the DER certificate, as `openssl x509
    /// -fingerprint -sha256` prints it: uppercase hex pairs joined by `:`.
    pub fingerprint_sha256: String,
    /// How many certificates the chain holds (the server's own included).
    pub chain_len: usize,
}

/// A chain and key that passed every check.
pub(crate) struct Loaded {
    pub(crate) key: Arc<CertifiedKey>,
    pub(crate) info: Arc<CertInfo>,
    pub(crate) warnings: Vec<CertWarning>,
}

/// Reads, parses and checks `files`; `now` is the time the dates are
/// checked against.
pub(crate) fn load(
    files: &TlsFiles,
    provider: &CryptoProvider,
    now: SystemTime,
) -> Result<Loaded, TlsConfigError> {
    let cert_path = files.cert_chain_path();
    let key_path = files.key_path();

    let cert_pem = read_pem(FileRole::CertChain, cert_path)?;
    let chain = certificates(cert_path, &cert_pem)?;
    // One file may hold both (HAProxy's combined form): read it once.
    let key_der = if key_path == cert_path {
        private_key(key_path, &cert_pem)?
    } else {
        private_key(key_path, &read_pem(FileRole::PrivateKey, key_path)?)?
    };

    let mut parsed = Vec::with_capacity(chain.len());
    for (index, der) in chain.iter().enumerate() {
        match x509_parser::parse_x509_certificate(der) {
            Ok((_, cert)) => parsed.push(cert),
            Err(err) => {
                return Err(TlsConfigError::InvalidCertificate {
                    path: cert_path.to_owned(),
                    position: index + 1,
                    detail: err.to_string(),
                });
            }
        }
    }

    let signing_key = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|err| {
            // `General` displays as "unexpected error: …"; the key is simply
            // one the provider does not take.
            let mut detail = match err {
                rustls::Error::General(reason) => reason,
                other => other.to_string(),
            };
            // When the certificate's own key is of a type the provider
            // cannot sign with, no key file will do: say so.
            if let Some(kind) = unsupported_key_kind(&parsed[0]) {
                let _ = write!(detail, "; the certificate's key is {kind}");
            }
            TlsConfigError::UnsupportedKey {
                path: key_path.to_owned(),
                detail,
            }
        })?;
    let certified = CertifiedKey::new(chain.clone(), signing_key);
    match certified.keys_match() {
        // `Unknown`: the provider cannot tell the key's public half. ring
        // always can; another provider is taken at its word, as rustls'
        // own `CertifiedKey::from_der` does.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(_)) => {
            let key_spki = certified.key.public_key();
            let matches_position = key_spki.and_then(|spki| {
                parsed
                    .iter()
                    .position(|cert| cert.public_key().raw == spki.as_ref())
                    .map(|index| index + 1)
            });
            return Err(TlsConfigError::KeyMismatch {
                cert_chain: cert_path.to_owned(),
                key: key_path.to_owned(),
                matches_position,
            });
        }
        // webpki could not parse the certificate x509-parser accepted (an
        // X.509 v1 certificate, say): clients using webpki would refuse it.
        Err(err) => {
            return Err(TlsConfigError::InvalidCertificate {
                path: cert_path.to_owned(),
                position: 1,
                detail: err.to_string(),
            });
        }
    }

    let warnings = parsed
        .iter()
        .enumerate()
        .filter_map(|(index, cert)| validity_warning(cert_path, index + 1, cert, now))
        .collect();
    let info = cert_info(&parsed[0], &chain[0], chain.len());
    Ok(Loaded {
        key: Arc::new(certified),
        info: Arc::new(info),
        warnings,
    })
}

/// The contents of `path`, at most [`MAX_PEM_BYTES`].
fn read_pem(role: FileRole, path: &Path) -> Result<Vec<u8>, TlsConfigError> {
    let read_error = |source| TlsConfigError::Read {
        role,
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(TlsConfigError::TooLarge {
            role,
            path: path.to_owned(),
            limit_bytes: MAX_PEM_BYTES,
        });
    }
    Ok(bytes)
}

/// The PEM sections of `pem` that rustls knows, in order (others, such as
/// `ENCRYPTED PRIVATE KEY`, are skipped: [`labels`] sees them).
fn sections(
    role: FileRole,
    path: &Path,
    pem: &[u8],
) -> Result<Vec<(SectionKind, Vec<u8>)>, TlsConfigError> {
    <(SectionKind, Vec<u8>)>::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsConfigError::Pem {
            role,
            path: path.to_owned(),
            source,
        })
}

/// The labels of every `-----BEGIN LABEL-----` line, each once, in order:
/// what to tell someone whose file lacks the section it needs.
pub(crate) fn labels(pem: &[u8]) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for line in pem.split(|&byte| byte == b'\n' || byte == b'\r') {
        let label = line
            .trim_ascii()
            .strip_prefix(b"-----BEGIN ")
            .and_then(|rest| rest.strip_suffix(b"-----"));
        if let Some(label) = label {
            let label = String::from_utf8_lossy(label).into_owned();
            if !found.contains(&label) {
                found.push(label);
            }
        }
    }
    found
}

/// The certificates of the chain file, in order.
fn certificates(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let chain: Vec<CertificateDer<'static>> = sections(FileRole::CertChain, path, pem)?
        .into_iter()
        .filter(|(kind, _)| *kind == SectionKind::Certificate)
        .map(|(_, der)| CertificateDer::from(der))
        .collect();
    if chain.is_empty() {
        return Err(TlsConfigError::NoCertificate {
            path: path.to_owned(),
            found: labels(pem),
        });
    }
    Ok(chain)
}

/// The one private key of the key file.
fn private_key(path: &Path, pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    let mut keys: Vec<PrivateKeyDer<'static>> = sections(FileRole::PrivateKey, path, pem)?
        .into_iter()
        .filter_map(|(kind, der)| match kind {
            SectionKind::PrivateKey => Some(PrivatePkcs8KeyDer::from(der).into()),
            SectionKind::RsaPrivateKey => Some(PrivatePkcs1KeyDer::from(der).into()),
            SectionKind::EcPrivateKey => Some(PrivateSec1KeyDer::from(der).into()),
            _ => None,
        })
        .collect();
    let found = labels(pem);
    // A key rustls' PEM reader skips: say what it is rather than "none".
    let unusable = found.iter().find(|label| {
        label.ends_with("PRIVATE KEY")
            && !matches!(
                label.as_str(),
                "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY"
            )
    });
    match (keys.len(), unusable) {
        (1, None) => Ok(keys.remove(0)),
        (0, None) => Err(TlsConfigError::NoPrivateKey {
            path: path.to_owned(),
            found,
        }),
        (0, Some(label)) if label == "ENCRYPTED PRIVATE KEY" => {
            Err(TlsConfigError::UnsupportedKey {
                path: path.to_owned(),
                detail: "the key is encrypted; decrypt it with \
                         `openssl pkey -in KEY -out KEY.plain` and keep that file private"
                    .to_owned(),
            })
        }
        (0, Some(label)) => Err(TlsConfigError::UnsupportedKey {
            path: path.to_owned(),
            detail: format!("a \"{label}\" section is not a form rustls reads"),
        }),
        (count, unusable) => Err(TlsConfigError::MultiplePrivateKeys {
            path: path.to_owned(),
            count: count + usize::from(unusable.is_some()),
        }),
    }
}

/// A warning when `now` is outside the certificate's validity period.
fn validity_warning(
    path: &Path,
    position: usize,
    cert: &X509Certificate<'_>,
    now: SystemTime,
) -> Option<CertWarning> {
    let validity = cert.validity();
    let not_before = system_time(validity.not_before.timestamp());
    let not_after = system_time(validity.not_after.timestamp());
    if now > not_after {
        Some(CertWarning::Expired {
            path: path.to_owned(),
            position,
            not_before,
            not_after,
        })
    } else if now < not_before {
        Some(CertWarning::NotYetValid {
            path: path.to_owned(),
            position,
            not_before,
            not_after,
        })
    } else {
        None
    }
}

fn cert_info(cert: &X509Certificate<'_>, der: &CertificateDer<'_>, chain_len: usize) -> CertInfo {
    // Names are for people to read: a malformed extension leaves them out
    // rather than failing a load that clients may well accept.
    let names = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                GeneralName::DNSName(dns) => Some((*dns).to_owned()),
                GeneralName::IPAddress(ip) => ip_text(ip),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let validity = cert.validity();
    CertInfo {
        subject: cert.subject().to_string(),
        names,
        not_before: system_time(validity.not_before.timestamp()),
        not_after: system_time(validity.not_after.timestamp()),
        fingerprint_sha256: fingerprint_sha256(der),
        chain_len,
    }
}

/// The type of a certificate's public key, as people name it
/// (`ECDSA P-521`, `RSA 1024 bits`), if ring cannot sign with such a key.
fn unsupported_key_kind(cert: &X509Certificate<'_>) -> Option<String> {
    use x509_parser::oid_registry::{
        OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_NIST_EC_P521,
        OID_PKCS1_RSAENCRYPTION, OID_SIG_ED448, OID_SIG_ED25519,
    };
    let spki = cert.public_key();
    let algorithm = &spki.algorithm.algorithm;
    if *algorithm == OID_PKCS1_RSAENCRYPTION {
        let bits = spki.parsed().ok()?.key_size();
        (!(2048..=8192).contains(&bits)).then(|| format!("RSA {bits} bits"))
    } else if *algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki.algorithm.parameters.as_ref()?.as_oid().ok()?;
        if curve == OID_EC_P256 || curve == OID_NIST_EC_P384 {
            None
        } else if curve == OID_NIST_EC_P521 {
            Some("ECDSA P-521".to_owned())
        } else {
            Some(format!("ECDSA on the curve {}", curve.to_id_string()))
        }
    } else if *algorithm == OID_SIG_ED25519 {
        None
    } else if *algorithm == OID_SIG_ED448 {
        Some("Ed448".to_owned())
    } else {
        Some(format!("of algorithm {}", algorithm.to_id_string()))
    }
}

fn ip_text(octets: &[u8]) -> Option<String> {
    if let Ok(v4) = <[u8; 4]>::try_from(octets) {
        Some(Ipv4Addr::from(v4).to_string())
    } else if let Ok(v6) = <[u8; 16]>::try_from(octets) {
        Some(Ipv6Addr::from(v6).to_string())
    } else {
        None
    }
}

/// The SHA-256 fingerprint of a DER certificate, as `openssl x509
/// -fingerprint -sha256` prints it (`AB:CD:…`, 95 characters).
pub fn fingerprint_sha256(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let mut text = String::with_capacity(digest.as_ref().len() * 3);
    for (index, byte) in digest.as_ref().iter().enumerate() {
        if index > 0 {
            text.push(':');
        }
        let _ = write!(text, "{byte:02X}");
    }
    text
}

/// Seconds since the Unix epoch (negative before it) as a `SystemTime`.
fn system_time(unix_seconds: i64) -> SystemTime {
    let magnitude = Duration::from_secs(unix_seconds.unsigned_abs());
    let time = if unix_seconds >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(magnitude)
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(magnitude)
    };
    // X.509 dates lie within years 0 to 9999, which Linux's 64-bit
    // `SystemTime` holds; the epoch stands in for anything else.
    time.unwrap_or(SystemTime::UNIX_EPOCH)
}

/// `2001-01-01 00:00:00 UTC`.
pub(crate) fn fmt_utc(time: SystemTime) -> String {
    let unix_seconds = match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    };
    match time::OffsetDateTime::from_unix_timestamp(unix_seconds) {
        Ok(utc) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            utc.year(),
            u8::from(utc.month()),
            utc.day(),
            utc.hour(),
            utc.minute(),
            utc.second()
        ),
        Err(_) => format!("{unix_seconds} s after 1970-01-01 UTC"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_uppercase_hex_pairs_joined_by_colons() {
        // SHA-256 of the empty input.
        assert_eq!(
            fingerprint_sha256(b""),
            "E3:B0:C4:42:98:FC:1C:14:9A:FB:F4:C8:99:6F:B9:24:\
             27:AE:41:E4:64:9B:93:4C:A4:95:99:1B:78:52:B8:55"
        );
    }

    #[test]
    fn dates_print_in_utc() {
        assert_eq!(fmt_utc(system_time(0)), "1970-01-01 00:00:00 UTC");
        assert_eq!(fmt_utc(system_time(978_307_200)), "2001-01-01 00:00:00 UTC");
        assert_eq!(fmt_utc(system_time(-86_400)), "1969-12-31 00:00:00 UTC");
        // The latest date X.509 can say ("no well-defined expiration").
        assert_eq!(
            fmt_utc(system_time(253_402_300_799)),
            "9999-12-31 23:59:59 UTC"
        );
    }

    #[test]
    fn labels_are_listed_once_in_order() {
        let pem = b"junk\r\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n\
                    -----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n\
                    -----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert_eq!(labels(pem), ["CERTIFICATE", "ENCRYPTED PRIVATE KEY"]);
        assert!(labels(b"\x30\x82\x01\x0a binary DER").is_empty());
    }

    #[test]
    fn ip_names_print_as_addresses() {
        assert_eq!(ip_text(&[127, 0, 0, 1]).as_deref(), Some("127.0.0.1"));
        let mut v6 = [0u8; 16];
        v6[15] = 1;
        assert_eq!(ip_text(&v6).as_deref(), Some("::1"));
        assert_eq!(ip_text(&[1, 2, 3]), None);
    }
}
