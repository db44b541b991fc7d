//! TLS certificates (`hangup::tls`, the `tls` feature): every key form
//! loads, every broken file is refused with an error naming it, expired
//! certificates load with a warning, reloads change the certificate of new
//! handshakes only, and self-signed certificates verify. Handshakes are
//! real: a rustls client over loopback TCP.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hangup::tls::rustls::pki_types::pem::PemObject;
use hangup::tls::rustls::pki_types::{CertificateDer, ServerName};
use hangup::tls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use hangup::tls::{
    CertWarning, FileRole, LoadedTls, TlsConfigError, TlsFiles, fingerprint_sha256,
    load_tls_config, self_signed, with_default_alpn,
};
use rcgen::{CertificateParams, IsCa, Issuer, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector, client::TlsStream};

/// Test-only keys, made with OpenSSL 3.0 for these tests and used nowhere
/// else (rcgen on ring cannot make RSA keys or write PKCS#1 and SEC1).
/// The same RSA key as PKCS#1 and as PKCS#8.
const RSA_PKCS1: &str = "-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEA7Fl+7N/MsWkRpAmVO9ub0mZNr8Z5X4keUpDYcb/q6UwL7cGw
wSYcDdHb2eINeJyVne+ScuXw//Xp0Wd16uEqLVpfkn2bc3sR1837qlMdkryDdmCh
6MV1UrfZCH9edtmqfIsBCMttlFqSTQ05nzmSy+t/VWlYen4nk3dHa4alm+YppUlp
B5YGR2VH99n+g6FobpcH8iyyfXP5RCsgQA/kFoYsCRBz/VWJGzU4yrU3EfaeQ+FS
WRlhuvuspDqj8TPZMKnuvRG6rLXsrPYavwqyzIzXBaGQ/HfXiiL4cWKDc2Dcspqq
QS1daxQ0+h80var6XPy1MxeM2EJDWr2pue+ptwIDAQABAoIBAA6/u47QCsVy3jeF
yG0mr8RaCEcLz6qbs1lJZBz5qP6U4ydk1ApVBw6TbyekexPemseXvoj730o1OTmN
PiKKvf58QUTW/BPYNRsgwUH/LvQeXlOEPDrorm7AK3FRc76Dg15e1SNn7nKmbWmn
PHsDx5qA9xnRYtb0UrUQji9Eu8aoYClfHX1hhD5kYoXHwUxKJHO5tbqJmMcLG28N
n85Z6GGdjRPSQQ1dkqMPtPaXMyfxnzCqBpHstCN6LZ5R0IgBccCertG19eNSgkGB
Hw8YkfAoqz+ytYoW4CLnT8lCz7/6X6p27kec8vbS9k+7YWe0LkLhd/FaSC+kIqpv
L3W2V4ECgYEA+bfhPaWuwKSNTgjc0i6q590mURoeHtTxLAClQeJLsPW2r6IQH8Rn
gB/07ppjWJB3LWUPzEqMhT2gKIi0IcciIp3xNvljFElrOAsh/URy5neiy2tDJj1/
llPIKSzdcaxmisEYEf492dDNfjfuSD16tVETFFMiN6bqlSCAuLlT5KcCgYEA8kuG
bg+W1S771NAMk2p1nX7razZi/8i/Bm5Fu/5euvk8cvsOVOPZd7gJhpD+YcLDfgiO
d/eGSy8Xs1z7lNRHQcPOLb4EhWZg/5FXmmgx7zJgenboA9wPVGFrasGVyCskQ4wo
FoKwU9RH0r2Bug1OVf0DhwQWybc01w7gkvsF5HECgYBvTclka+PfU7jz7jlWqZxd
qpG4lnaUcX9piIQgQJhSMMMTt52OO0GStyu56jCbuhCUuDX5bcUCYnxvdLctUw/g
9Bse0LubwDm9CiFFPOwl029JUe7lLYYf4AoYaDnvv9MYx4ZOBs9UtZ/SQWXA5z45
cQCbD47x1UE75Pfa3igJgwKBgDIx9UqNzjiiACfpZgGQN4eGSK0wWjgVVYW2iJnW
q7dedOh5HFH31hCYPtjy5tBH8goFKcaur9KZkfZll/UQOSblsqwFRpiASi4H5Tcm
yNl9/UDBq3VJPJ/FguRd8HLEhUG9InzvXCoxuyNsgRiTMxxbS0TIUxQ88SRwf5PT
jzfxAoGBANf6kyW1qNy9oBf7Hdxb9TnNBWh0JM2Z2L9EV/cvETv1ThpdmzfpinrJ
6oFdJXAfQzCCH1ftnb/z682sDSRk9Jx4hhC2hi2cgeqfr8u6KjI8VozdgLNu6gqN
yJrVsiaLSBy6aDUrwzTXQB3MK+fU3ojc8VcTml2bV0F2iPCxfjfH
-----END RSA PRIVATE KEY-----
";

const RSA_PKCS8: &str = "-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDsWX7s38yxaRGk
CZU725vSZk2vxnlfiR5SkNhxv+rpTAvtwbDBJhwN0dvZ4g14nJWd75Jy5fD/9enR
Z3Xq4SotWl+SfZtzexHXzfuqUx2SvIN2YKHoxXVSt9kIf1522ap8iwEIy22UWpJN
DTmfOZLL639VaVh6fieTd0drhqWb5imlSWkHlgZHZUf32f6DoWhulwfyLLJ9c/lE
KyBAD+QWhiwJEHP9VYkbNTjKtTcR9p5D4VJZGWG6+6ykOqPxM9kwqe69Ebqsteys
9hq/CrLMjNcFoZD8d9eKIvhxYoNzYNyymqpBLV1rFDT6HzS9qvpc/LUzF4zYQkNa
vam576m3AgMBAAECggEADr+7jtAKxXLeN4XIbSavxFoIRwvPqpuzWUlkHPmo/pTj
J2TUClUHDpNvJ6R7E96ax5e+iPvfSjU5OY0+Ioq9/nxBRNb8E9g1GyDBQf8u9B5e
U4Q8OuiubsArcVFzvoODXl7VI2fucqZtaac8ewPHmoD3GdFi1vRStRCOL0S7xqhg
KV8dfWGEPmRihcfBTEokc7m1uomYxwsbbw2fzlnoYZ2NE9JBDV2Sow+09pczJ/Gf
MKoGkey0I3otnlHQiAFxwJ6u0bX141KCQYEfDxiR8CirP7K1ihbgIudPyULPv/pf
qnbuR5zy9tL2T7thZ7QuQuF38VpIL6Qiqm8vdbZXgQKBgQD5t+E9pa7ApI1OCNzS
Lqrn3SZRGh4e1PEsAKVB4kuw9bavohAfxGeAH/TummNYkHctZQ/MSoyFPaAoiLQh
xyIinfE2+WMUSWs4CyH9RHLmd6LLa0MmPX+WU8gpLN1xrGaKwRgR/j3Z0M1+N+5I
PXq1URMUUyI3puqVIIC4uVPkpwKBgQDyS4ZuD5bVLvvU0AyTanWdfutrNmL/yL8G
bkW7/l66+Txy+w5U49l3uAmGkP5hwsN+CI5394ZLLxezXPuU1EdBw84tvgSFZmD/
kVeaaDHvMmB6dugD3A9UYWtqwZXIKyRDjCgWgrBT1EfSvYG6DU5V/QOHBBbJtzTX
DuCS+wXkcQKBgG9NyWRr499TuPPuOVapnF2qkbiWdpRxf2mIhCBAmFIwwxO3nY47
QZK3K7nqMJu6EJS4NfltxQJifG90ty1TD+D0Gx7Qu5vAOb0KIUU87CXTb0lR7uUt
hh/gChhoOe+/0xjHhk4Gz1S1n9JBZcDnPjlxAJsPjvHVQTvk99reKAmDAoGAMjH1
So3OOKIAJ+lmAZA3h4ZIrTBaOBVVhbaImdart1506HkcUffWEJg+2PLm0EfyCgUp
xq6v0pmR9mWX9RA5JuWyrAVGmIBKLgflNybI2X39QMGrdUk8n8WC5F3wcsSFQb0i
fO9cKjG7I2yBGJMzHFtLRMhTFDzxJHB/k9OPN/ECgYEA1/qTJbWo3L2gF/sd3Fv1
Oc0FaHQkzZnYv0RX9y8RO/VOGl2bN+mKesnqgV0lcB9DMIIfV+2dv/PrzawNJGT0
nHiGELaGLZyB6p+vy7oqMjxWjN2As27qCo3ImtWyJotIHLpoNSvDNNdAHcwr59Te
iNzxVxOaXZtXQXaI8LF+N8c=
-----END PRIVATE KEY-----
";

/// The same ECDSA P-256 key as SEC1 and as PKCS#8.
const EC_SEC1: &str = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIK0+/gKAhupkCIe3se3XKKyEMWE14YKzQCG35O37bqiPoAoGCCqGSM49
AwEHoUQDQgAE2VM4qZ1FscHJJ8hzF+25olXD5HxjItyin8zOObp+TY6OjWXVHfnc
uWgJPf4ukPMDhYzSHyPcAsMum2cQ+wFttA==
-----END EC PRIVATE KEY-----
";

const EC_PKCS8: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgrT7+AoCG6mQIh7ex
7dcorIQxYTXhgrNAIbfk7ftuqI+hRANCAATZUzipnUWxwcknyHMX7bmiVcPkfGMi
3KKfzM45un5Njo6NZdUd+dy5aAk9/i6Q8wOFjNIfI9wCwy6bZxD7AW20
-----END PRIVATE KEY-----
";

/// An ECDSA P-521 key: valid, but ring cannot sign with it.
const EC_P521_PKCS8: &str = "-----BEGIN PRIVATE KEY-----
MIHuAgEAMBAGByqGSM49AgEGBSuBBAAjBIHWMIHTAgEBBEIA+lrFgWGhVB2qEPw8
EWdq/O+mXdsncMkHCdvioV84CuYr2+4Vp3/AT0C0mv7PtonfCZRGfrAypBjiuwoO
bB1qRmehgYkDgYYABABXdzvHkZv5J+yg6GBbjtO07veAunn+pqB3q6S20afwcN0e
VbvDXxJx/Sq3CYQMU7nEPXVpqoV+2dVBO+PHO2ZXJwFRJyTEPsK8WJNyAHk/Sp6v
XXZevc9tvTPlt/MhzCGQr3sfJbebgBlPEAj8LhfpO7oZkd1YIO52PFWLBgyhO+G0
Lg==
-----END PRIVATE KEY-----
";

/// A self-signed certificate for `EC_P521_PKCS8` (made by OpenSSL: rcgen
/// on ring cannot sign with P-521), valid until 2126.
const EC_P521_CERT: &str = "-----BEGIN CERTIFICATE-----
MIICHDCCAX6gAwIBAgIUdzzk0RPN1tfcC6imPBBnCyDZ8TUwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTIwNjEzMjEyN1oYDzIxMjYxMTEy
MTMyMTI3WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwgZswEAYHKoZIzj0CAQYFK4EE
ACMDgYYABABXdzvHkZv5J+yg6GBbjtO07veAunn+pqB3q6S20afwcN0eVbvDXxJx
/Sq3CYQMU7nEPXVpqoV+2dVBO+PHO2ZXJwFRJyTEPsK8WJNyAHk/Sp6vXXZevc9t
vTPlt/MhzCGQr3sfJbebgBlPEAj8LhfpO7oZkd1YIO52PFWLBgyhO+G0LqNpMGcw
HQYDVR0OBBYEFBDT1F06HWzOX+Nl2TEV3ePxXYWJMB8GA1UdIwQYMBaAFBDT1F06
HWzOX+Nl2TEV3ePxXYWJMA8GA1UdEwEB/wQFMAMBAf8wFAYDVR0RBA0wC4IJbG9j
YWxob3N0MAoGCCqGSM49BAMCA4GLADCBhwJCANMLk8pLYw6LkOQ3iCZBiW6nab3b
X3euH5I0ifdyh9VU59TO7/CPZDx6SpqU1J3wVvlxyN2FDDSbwjyeH1ChgffWAkEV
JFIleNV+FjMp54NSm1RT2Of5jpstB3jbiSXVE/+P4TmaL1MHC0ZlalHaghhDge5z
x2PptY2hqmsk4HUIcxWNTw==
-----END CERTIFICATE-----
";

/// How long any one network step of these tests may take.
const STEP: Duration = Duration::from_secs(10);

/// A scratch directory under the system temp dir, removed on drop.
struct Scratch {
    path: PathBuf,
}

impl Scratch {
    fn new(test: &str) -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "hangup-tls-{}-{test}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create scratch dir");
        Scratch { path }
    }

    /// Writes `contents` to `name` in the directory (replacing it by rename,
    /// as a certificate renewal does) and returns its path.
    fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path.join(name);
        let tmp = self.path.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, contents).expect("write scratch file");
        std::fs::rename(&tmp, &path).expect("rename scratch file");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A certificate for `localhost` and 127.0.0.1 made with rcgen, and its key.
struct TestCert {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

impl TestCert {
    fn fingerprint(&self) -> String {
        fingerprint_sha256(&self.der)
    }
}

fn localhost_params() -> CertificateParams {
    CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("rcgen params")
}

/// A self-signed certificate for `key` (PKCS#8 PEM for rcgen).
fn cert_for(params: CertificateParams, key: &KeyPair) -> TestCert {
    let cert = params.self_signed(key).expect("rcgen self-signed");
    TestCert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().clone(),
    }
}

fn new_cert() -> TestCert {
    cert_for(localhost_params(), &KeyPair::generate().expect("rcgen key"))
}

fn key_from_pem(pem: &str) -> KeyPair {
    KeyPair::from_pem(pem).expect("rcgen reads the test key")
}

fn load(cert: &Path, key: &Path) -> Result<LoadedTls, TlsConfigError> {
    TlsFiles::new(cert, key).load()
}

fn load_err(cert: &Path, key: &Path) -> TlsConfigError {
    match load(cert, key) {
        Ok(_) => panic!(
            "{} and {} loaded, expected an error",
            cert.display(),
            key.display()
        ),
        Err(err) => err,
    }
}

/// Echoes what each TLS connection sends, until it closes.
async fn serve(config: Arc<ServerConfig>) -> SocketAddr {
    serve_on(config, IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .expect("bind 127.0.0.1")
}

async fn serve_on(config: Arc<ServerConfig>, ip: IpAddr) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind((ip, 0)).await?;
    let addr = listener.local_addr()?;
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = [0u8; 1024];
                loop {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if tls.write_all(&buf[..n]).await.is_err() || tls.flush().await.is_err()
                            {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    Ok(addr)
}

fn client_config(trusted: &[&CertificateDer<'static>]) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    for cert in trusted {
        roots
            .add((*cert).clone())
            .expect("trust the test certificate");
    }
    let mut config = ClientConfig::builder_with_provider(hangup::tls::crypto_provider())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config
}

/// A TLS connection to `addr` for `name`, from a client that trusts only
/// `trusted`.
async fn connect(
    addr: SocketAddr,
    name: &str,
    trusted: &[&CertificateDer<'static>],
) -> std::io::Result<TlsStream<TcpStream>> {
    let connector = TlsConnector::from(Arc::new(client_config(trusted)));
    let name = ServerName::try_from(name.to_owned()).expect("server name");
    let tcp = TcpStream::connect(addr).await?;
    tokio::time::timeout(STEP, connector.connect(name, tcp))
        .await
        .expect("handshake within its step")
}

/// The fingerprint of the certificate the server presented.
fn peer_fingerprint(tls: &TlsStream<TcpStream>) -> String {
    let (_, session) = tls.get_ref();
    let chain = session.peer_certificates().expect("server certificate");
    fingerprint_sha256(&chain[0])
}

/// Sends `message` and reads it back.
async fn echo(tls: &mut TlsStream<TcpStream>, message: &[u8]) {
    tls.write_all(message).await.expect("write");
    tls.flush().await.expect("flush");
    let mut back = vec![0u8; message.len()];
    tokio::time::timeout(STEP, tls.read_exact(&mut back))
        .await
        .expect("echo within its step")
        .expect("read echo");
    assert_eq!(back, message);
}

/// Polls `done` every 20 ms until it holds, for at most `STEP`.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < STEP, "{what}: not within {STEP:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn every_key_form_loads_and_handshakes() {
    let dir = Scratch::new("key-forms");
    let rsa = cert_for(localhost_params(), &key_from_pem(RSA_PKCS8));
    let ec = cert_for(localhost_params(), &key_from_pem(EC_PKCS8));
    let p384 = cert_for(
        localhost_params(),
        &KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).expect("P-384 key"),
    );
    let ed25519 = cert_for(
        localhost_params(),
        &KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("Ed25519 key"),
    );
    let forms: [(&str, &TestCert, &str); 6] = [
        ("rsa-pkcs8", &rsa, RSA_PKCS8),
        ("rsa-pkcs1", &rsa, RSA_PKCS1),
        ("ec-pkcs8", &ec, EC_PKCS8),
        ("ec-sec1", &ec, EC_SEC1),
        ("p384-pkcs8", &p384, &p384.key_pem),
        ("ed25519-pkcs8", &ed25519, &ed25519.key_pem),
    ];
    for (form, cert, key_pem) in forms {
        let cert_path = dir.write(&format!("{form}.crt"), &cert.cert_pem);
        let key_path = dir.write(&format!("{form}.key"), key_pem);
        let loaded = load(&cert_path, &key_path).unwrap_or_else(|err| panic!("{form}: {err}"));
        assert!(loaded.warnings.is_empty(), "{form}: {:?}", loaded.warnings);
        assert_eq!(loaded.certificate.fingerprint_sha256, cert.fingerprint());
        assert_eq!(loaded.certificate.names, ["localhost", "127.0.0.1"]);
        assert_eq!(loaded.certificate.chain_len, 1);

        let addr = serve(loaded.config.clone()).await;
        let mut tls = connect(addr, "localhost", &[&cert.der])
            .await
            .unwrap_or_else(|err| panic!("{form}: handshake: {err}"));
        assert_eq!(peer_fingerprint(&tls), cert.fingerprint(), "{form}");
        assert_eq!(
            tls.get_ref().1.alpn_protocol(),
            Some(&b"http/1.1"[..]),
            "{form}: ALPN"
        );
        echo(&mut tls, form.as_bytes()).await;
    }
}

#[test]
fn chain_and_key_may_share_one_file() {
    let dir = Scratch::new("combined");
    let cert = new_cert();
    let both = dir.write("both.pem", format!("{}{}", cert.key_pem, cert.cert_pem));
    let loaded = load_tls_config(&both, &both).expect("combined file loads");
    assert_eq!(loaded.certificate.fingerprint_sha256, cert.fingerprint());
}

#[test]
fn a_chain_loads_with_every_certificate() {
    let dir = Scratch::new("chain");
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("ca cert");
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf = localhost_params()
        .signed_by(&leaf_key, &issuer)
        .expect("leaf cert");

    let key = dir.write("key.pem", leaf_key.serialize_pem());
    let chain = dir.write("chain.pem", format!("{}{}", leaf.pem(), ca.pem()));
    let loaded = load(&chain, &key).expect("leaf then CA loads");
    assert_eq!(loaded.certificate.chain_len, 2);
    assert_eq!(
        loaded.certificate.fingerprint_sha256,
        fingerprint_sha256(leaf.der())
    );
    assert_eq!(loaded.reloader.certified_key().cert.len(), 2);

    // The same chain the wrong way round: the key matches certificate 2.
    let reversed = dir.write("reversed.pem", format!("{}{}", ca.pem(), leaf.pem()));
    let err = load_err(&reversed, &key);
    assert!(
        matches!(
            err,
            TlsConfigError::KeyMismatch {
                matches_position: Some(2),
                ..
            }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("it matches certificate 2"), "{message}");
    assert!(
        message.contains(&reversed.display().to_string()),
        "{message}"
    );
}

#[test]
fn missing_and_unreadable_files_are_named() {
    let dir = Scratch::new("missing");
    let cert = new_cert();
    let cert_path = dir.write("cert.pem", &cert.cert_pem);
    let key_path = dir.write("key.pem", &cert.key_pem);
    let nowhere = dir.path.join("nowhere.pem");

    let err = load_err(&nowhere, &key_path);
    assert!(
        matches!(&err, TlsConfigError::Read { role: FileRole::CertChain, path, source }
            if *path == nowhere && source.kind() == std::io::ErrorKind::NotFound),
        "{err:?}"
    );
    assert_eq!(err.path(), Some(nowhere.as_path()));
    assert!(
        err.to_string().starts_with(&format!(
            "cannot read certificate file {}",
            nowhere.display()
        )),
        "{err}"
    );

    let err = load_err(&cert_path, &nowhere);
    assert!(
        matches!(&err, TlsConfigError::Read { role: FileRole::PrivateKey, path, .. } if *path == nowhere),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with(&format!(
            "cannot read private key file {}",
            nowhere.display()
        )),
        "{err}"
    );
    assert!(std::error::Error::source(&err).is_some());

    // A directory opens but cannot be read.
    let err = load_err(&dir.path, &key_path);
    assert!(
        matches!(&err, TlsConfigError::Read { path, .. } if *path == dir.path),
        "{err:?}"
    );
}

#[test]
fn a_file_without_a_certificate_is_refused() {
    let dir = Scratch::new("no-cert");
    let cert = new_cert();
    let key_path = dir.write("key.pem", &cert.key_pem);

    // The key given as the certificate: a classic swap.
    let err = load_err(&key_path, &key_path);
    assert!(
        matches!(&err, TlsConfigError::NoCertificate { path, found }
            if *path == key_path && found == &["PRIVATE KEY"]),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("no certificate in {}", key_path.display())),
        "{message}"
    );
    assert!(message.contains("found: PRIVATE KEY"), "{message}");

    let empty = dir.write("empty.pem", "");
    let err = load_err(&empty, &key_path);
    assert!(
        matches!(&err, TlsConfigError::NoCertificate { found, .. } if found.is_empty()),
        "{err:?}"
    );
    assert!(err.to_string().contains("no PEM sections found"), "{err}");

    // DER instead of PEM.
    let der = dir.write("cert.der", &cert.der);
    let err = load_err(&der, &key_path);
    assert!(
        matches!(&err, TlsConfigError::NoCertificate { path, .. } if *path == der),
        "{err:?}"
    );
}

#[test]
fn a_file_without_a_key_is_refused() {
    let dir = Scratch::new("no-key");
    let cert = new_cert();
    let cert_path = dir.write("cert.pem", &cert.cert_pem);
    let err = load_err(&cert_path, &cert_path);
    assert!(
        matches!(&err, TlsConfigError::NoPrivateKey { path, found }
            if *path == cert_path && found == &["CERTIFICATE"]),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with(&format!("no private key in {}", cert_path.display())),
        "{err}"
    );
}

#[test]
fn more_than_one_key_is_refused() {
    let dir = Scratch::new("two-keys");
    let cert = new_cert();
    let cert_path = dir.write("cert.pem", &cert.cert_pem);
    let other = KeyPair::generate().expect("key");
    let keys = dir.write(
        "keys.pem",
        format!("{}{}", cert.key_pem, other.serialize_pem()),
    );
    let err = load_err(&cert_path, &keys);
    assert!(
        matches!(&err, TlsConfigError::MultiplePrivateKeys { path, count: 2 } if *path == keys),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with(&format!("2 private keys in {}", keys.display())),
        "{err}"
    );
}

#[test]
fn a_key_that_does_not_match_is_refused() {
    let dir = Scratch::new("mismatch");
    let cert = new_cert();
    let other = new_cert();
    let cert_path = dir.write("cert.pem", &cert.cert_pem);
    let key_path = dir.write("other-key.pem", &other.key_pem);
    let err = load_err(&cert_path, &key_path);
    assert!(
        matches!(&err, TlsConfigError::KeyMismatch { cert_chain, key, matches_position: None }
            if *cert_chain == cert_path && *key == key_path),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "the private key in {} does not match the first certificate in {}",
            key_path.display(),
            cert_path.display()
        )
    );

    // A key of another type (RSA for an ECDSA certificate) too.
    let rsa_key = dir.write("rsa.pem", RSA_PKCS1);
    let err = load_err(&cert_path, &rsa_key);
    assert!(
        matches!(&err, TlsConfigError::KeyMismatch { .. }),
        "{err:?}"
    );
}

#[test]
fn unsupported_keys_are_refused() {
    let dir = Scratch::new("unsupported");
    let cert = new_cert();
    let cert_path = dir.write("cert.pem", &cert.cert_pem);

    // A P-521 certificate and its key: valid, but ring cannot sign with it.
    let p521_cert_path = dir.write("p521-cert.pem", EC_P521_CERT);
    let p521 = dir.write("p521.pem", EC_P521_PKCS8);
    let err = load_err(&p521_cert_path, &p521);
    assert!(
        matches!(&err, TlsConfigError::UnsupportedKey { path, .. } if *path == p521),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("unsupported private key in {}", p521.display())),
        "{message}"
    );
    assert!(
        message.contains("the certificate's key is ECDSA P-521"),
        "{message}"
    );
    assert!(message.contains("ECDSA P-256 and P-384"), "{message}");
    // The same key beside a P-256 certificate: the key file is the problem.
    let err = load_err(&cert_path, &p521);
    assert!(
        matches!(&err, TlsConfigError::UnsupportedKey { .. }),
        "{err:?}"
    );
    assert!(!err.to_string().contains("the certificate's key"), "{err}");

    // An encrypted key is skipped by the PEM reader: say what it is.
    let encrypted = dir.write(
        "encrypted.pem",
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
    );
    let err = load_err(&cert_path, &encrypted);
    assert!(
        matches!(&err, TlsConfigError::UnsupportedKey { path, .. } if *path == encrypted),
        "{err:?}"
    );
    assert!(err.to_string().contains("the key is encrypted"), "{err}");

    // A key section whose DER is not a key.
    let junk = dir.write(
        "junk.pem",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    );
    let err = load_err(&cert_path, &junk);
    assert!(
        matches!(&err, TlsConfigError::UnsupportedKey { path, .. } if *path == junk),
        "{err:?}"
    );
}

#[test]
fn malformed_files_are_refused() {
    let dir = Scratch::new("malformed");
    let cert = new_cert();
    let key_path = dir.write("key.pem", &cert.key_pem);

    let bad_base64 = dir.write(
        "bad-base64.pem",
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    );
    let err = load_err(&bad_base64, &key_path);
    assert!(
        matches!(&err, TlsConfigError::Pem { role: FileRole::CertChain, path, .. } if *path == bad_base64),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with(&format!(
            "certificate file {} is not valid PEM",
            bad_base64.display()
        )),
        "{err}"
    );

    // Cut off in the middle, as a copy in progress leaves it.
    let half = &cert.cert_pem[..cert.cert_pem.len() / 2];
    let truncated = dir.write("truncated.pem", half);
    let err = load_err(&truncated, &key_path);
    assert!(
        matches!(&err, TlsConfigError::Pem { path, .. } if *path == truncated),
        "{err:?}"
    );

    // Well-formed PEM around bytes that are no certificate.
    let not_x509 = dir.write(
        "not-x509.pem",
        format!(
            "{}-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            cert.cert_pem
        ),
    );
    let err = load_err(&not_x509, &key_path);
    assert!(
        matches!(&err, TlsConfigError::InvalidCertificate { path, position: 2, .. } if *path == not_x509),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with(&format!(
            "certificate 2 in {} is not a valid X.509 certificate",
            not_x509.display()
        )),
        "{err}"
    );

    // Anything past 1 MiB is not read.
    let huge = dir.path.join("huge.pem");
    std::fs::File::create(&huge)
        .and_then(|file| file.set_len(hangup::tls::MAX_PEM_BYTES + 1))
        .expect("sparse file");
    let err = load_err(&huge, &key_path);
    assert!(
        matches!(&err, TlsConfigError::TooLarge { role: FileRole::CertChain, path, limit_bytes }
            if *path == huge && *limit_bytes == hangup::tls::MAX_PEM_BYTES),
        "{err:?}"
    );
}

#[test]
fn an_expired_certificate_loads_with_a_warning() {
    let dir = Scratch::new("expired");
    let key = KeyPair::generate().expect("key");
    let mut params = localhost_params();
    params.not_before = rcgen::date_time_ymd(2000, 1, 1);
    params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    let expired = cert_for(params, &key);
    let cert_path = dir.write("cert.pem", &expired.cert_pem);
    let key_path = dir.write("key.pem", &expired.key_pem);

    let loaded = load(&cert_path, &key_path).expect("an expired certificate loads");
    assert!(
        matches!(&loaded.warnings[..], [CertWarning::Expired { path, position: 1, .. }] if *path == cert_path),
        "{:?}",
        loaded.warnings
    );
    assert_eq!(
        loaded.warnings[0].to_string(),
        format!(
            "the certificate in {} is expired: valid from 2000-01-01 00:00:00 UTC until \
             2001-01-01 00:00:00 UTC; clients that check dates will refuse it",
            cert_path.display()
        )
    );

    let mut params = localhost_params();
    params.not_before = rcgen::date_time_ymd(2090, 1, 1);
    params.not_after = rcgen::date_time_ymd(2091, 1, 1);
    let future = cert_for(params, &key);
    let cert_path = dir.write("future.pem", &future.cert_pem);
    let loaded = load(&cert_path, &key_path).expect("a future certificate loads");
    assert!(
        matches!(&loaded.warnings[..], [CertWarning::NotYetValid { .. }]),
        "{:?}",
        loaded.warnings
    );
    assert!(
        loaded.warnings[0]
            .to_string()
            .contains("is not yet valid: valid from 2090-01-01 00:00:00 UTC"),
        "{}",
        loaded.warnings[0]
    );
}

/// 1. A client connects and completes a handshake with certificate A.
/// 2. The files are replaced with certificate B and reloaded.
/// 3. A new client gets B; the first connection still works, on A.
#[tokio::test]
async fn reload_changes_new_handshakes_and_keeps_old_connections() {
    let dir = Scratch::new("reload");
    let (a, b) = (new_cert(), new_cert());
    let cert_path = dir.write("cert.pem", &a.cert_pem);
    let key_path = dir.write("key.pem", &a.key_pem);
    let loaded = load(&cert_path, &key_path).expect("load A");
    let addr = serve(loaded.config.clone()).await;
    let trusted = [&a.der, &b.der];

    let mut before = connect(addr, "localhost", &trusted).await.expect("A");
    assert_eq!(peer_fingerprint(&before), a.fingerprint());
    echo(&mut before, b"before the reload").await;

    // Unchanged files: nothing to do.
    assert!(matches!(loaded.reloader.reload_if_changed(), Ok(None)));

    dir.write("cert.pem", &b.cert_pem);
    dir.write("key.pem", &b.key_pem);
    let reloaded = loaded.reloader.reload().expect("reload B");
    assert!(reloaded.is_changed());
    assert_eq!(reloaded.previous.fingerprint_sha256, a.fingerprint());
    assert_eq!(reloaded.current.fingerprint_sha256, b.fingerprint());
    assert_eq!(
        loaded.reloader.certificate().fingerprint_sha256,
        b.fingerprint()
    );

    let mut after = connect(addr, "localhost", &trusted).await.expect("B");
    assert_eq!(peer_fingerprint(&after), b.fingerprint());
    echo(&mut after, b"after the reload").await;

    // The connection from before carries on with its session.
    echo(&mut before, b"still here after the reload").await;
    assert_eq!(peer_fingerprint(&before), a.fingerprint());

    // A client that trusts only A can no longer connect.
    let err = connect(addr, "localhost", &[&a.der]).await;
    assert!(
        err.is_err(),
        "a client trusting only A connected after the reload"
    );
}

#[tokio::test]
async fn a_failed_reload_keeps_the_old_certificate() {
    let dir = Scratch::new("bad-reload");
    let (a, b) = (new_cert(), new_cert());
    let cert_path = dir.write("cert.pem", &a.cert_pem);
    let key_path = dir.write("key.pem", &a.key_pem);
    let loaded = load(&cert_path, &key_path).expect("load A");
    let addr = serve(loaded.config.clone()).await;

    // B's certificate with A's key still in place: renewal half done.
    dir.write("cert.pem", &b.cert_pem);
    let err = loaded.reloader.reload().expect_err("mismatched reload");
    assert!(matches!(err, TlsConfigError::KeyMismatch { .. }), "{err:?}");
    // Half a file.
    dir.write("cert.pem", &b.cert_pem[..b.cert_pem.len() / 2]);
    let err = loaded
        .reloader
        .reload_if_changed()
        .expect_err("truncated reload");
    assert!(matches!(err, TlsConfigError::Pem { .. }), "{err:?}");
    // No file at all.
    std::fs::remove_file(&cert_path).expect("remove cert");
    let err = loaded.reloader.reload().expect_err("missing file");
    assert!(matches!(err, TlsConfigError::Read { .. }), "{err:?}");

    assert_eq!(
        loaded.reloader.certificate().fingerprint_sha256,
        a.fingerprint()
    );
    let mut tls = connect(addr, "localhost", &[&a.der])
        .await
        .expect("A still served");
    assert_eq!(peer_fingerprint(&tls), a.fingerprint());
    echo(&mut tls, b"still A").await;
}

/// 1. The watcher polls every 50 ms.
/// 2. The certificate is renewed before its key: one look may see a
///    mismatch, which keeps A.
/// 3. Once the key is there too, the next look loads B.
#[tokio::test]
async fn changed_files_are_reloaded_by_the_watcher() {
    let dir = Scratch::new("watch");
    let (a, b) = (new_cert(), new_cert());
    let cert_path = dir.write("cert.pem", &a.cert_pem);
    let key_path = dir.write("key.pem", &a.key_pem);
    let loaded = load(&cert_path, &key_path).expect("load A");
    let addr = serve(loaded.config.clone()).await;
    let watcher = loaded.reloader.watch_files(Duration::from_millis(50));

    dir.write("cert.pem", &b.cert_pem);
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(
        loaded.reloader.certificate().fingerprint_sha256,
        a.fingerprint(),
        "a certificate without its key was served"
    );
    dir.write("key.pem", &b.key_pem);
    let reloader = loaded.reloader.clone();
    eventually("the watcher loads B", || {
        reloader.certificate().fingerprint_sha256 == b.fingerprint()
    })
    .await;
    let tls = connect(addr, "localhost", &[&b.der]).await.expect("B");
    assert_eq!(peer_fingerprint(&tls), b.fingerprint());

    watcher.abort();
}

#[tokio::test]
async fn the_watcher_ends_with_its_reloader() {
    let dir = Scratch::new("watch-ends");
    let a = new_cert();
    let cert_path = dir.write("cert.pem", &a.cert_pem);
    let key_path = dir.write("key.pem", &a.key_pem);
    let loaded = load(&cert_path, &key_path).expect("load A");
    let watcher = loaded.reloader.watch_files(Duration::from_millis(10));
    drop(loaded);
    tokio::time::timeout(STEP, watcher)
        .await
        .expect("the watcher ended once the configuration was dropped")
        .expect("the watcher did not panic");
}

#[tokio::test]
async fn sighup_reloads() {
    let Some(kill) = which("kill") else {
        eprintln!("skipped: no `kill` command");
        return;
    };
    let dir = Scratch::new("sighup");
    let (a, b) = (new_cert(), new_cert());
    let cert_path = dir.write("cert.pem", &a.cert_pem);
    let key_path = dir.write("key.pem", &a.key_pem);
    let loaded = load(&cert_path, &key_path).expect("load A");
    let listener = loaded
        .reloader
        .reload_on_sighup()
        .expect("install the SIGHUP handler");

    dir.write("cert.pem", &b.cert_pem);
    dir.write("key.pem", &b.key_pem);
    let status = std::process::Command::new(kill)
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let reloader = loaded.reloader.clone();
    eventually("SIGHUP loads B", || {
        reloader.certificate().fingerprint_sha256 == b.fingerprint()
    })
    .await;
    listener.abort();
}

#[tokio::test]
async fn self_signed_verifies_for_localhost_and_loopback_addresses() {
    let dir = Scratch::new("self-signed");
    let out = dir.path.join("tls");
    let made = self_signed(&out).expect("self-signed certificate");
    assert_eq!(made.cert_path, out.join("cert.pem"));
    assert_eq!(made.key_path, out.join("key.pem"));
    assert!(
        made.loaded.warnings.is_empty(),
        "{:?}",
        made.loaded.warnings
    );
    assert_eq!(
        made.loaded.certificate.names,
        ["localhost", "127.0.0.1", "::1"]
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&made.key_path)
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "key.pem mode {mode:o}");
    }

    let der = CertificateDer::from_pem_file(&made.cert_path).expect("cert.pem is PEM");
    assert_eq!(fingerprint_sha256(&der), made.fingerprint_sha256);
    assert_eq!(made.fingerprint_sha256.len(), 32 * 3 - 1);

    let addr = serve(made.loaded.config.clone()).await;
    for name in ["localhost", "127.0.0.1"] {
        let mut tls = connect(addr, name, &[&der])
            .await
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(peer_fingerprint(&tls), made.fingerprint_sha256);
        echo(&mut tls, name.as_bytes()).await;
    }
    let err = connect(addr, "example.com", &[&der]).await;
    assert!(err.is_err(), "the certificate verified for example.com");

    // ::1, where this machine has IPv6 loopback.
    match serve_on(made.loaded.config.clone(), IpAddr::V6(Ipv6Addr::LOCALHOST)).await {
        Ok(addr6) => {
            let mut tls = connect(addr6, "::1", &[&der]).await.expect("::1");
            echo(&mut tls, b"::1").await;
        }
        Err(err) => eprintln!("skipped ::1: {err}"),
    }

    // A second call makes a new certificate in the same place.
    let again = self_signed(&out).expect("second self-signed certificate");
    assert_ne!(again.fingerprint_sha256, made.fingerprint_sha256);
}

#[test]
fn self_signed_fingerprint_matches_openssl() {
    let Some(openssl) = which("openssl") else {
        eprintln!("skipped: no `openssl` command");
        return;
    };
    let dir = Scratch::new("openssl");
    let made = self_signed(&dir.path).expect("self-signed certificate");
    let cert = made.cert_path.to_str().expect("utf-8 path");
    let output = std::process::Command::new(&openssl)
        .args(["x509", "-fingerprint", "-sha256", "-noout", "-in", cert])
        .output()
        .expect("run openssl x509");
    assert!(output.status.success(), "{output:?}");
    // "sha256 Fingerprint=AB:CD:..." (OpenSSL 3) or "SHA256 Fingerprint=...".
    let stdout = String::from_utf8_lossy(&output.stdout);
    let printed = stdout
        .trim()
        .split_once('=')
        .map(|(_, fingerprint)| fingerprint)
        .unwrap_or_else(|| panic!("unexpected openssl output: {stdout}"));
    assert_eq!(printed, made.fingerprint_sha256);

    // OpenSSL (curl --cacert) trusts it as its own issuer, for both names.
    for check in [
        ["-verify_hostname", "localhost"],
        ["-verify_ip", "127.0.0.1"],
    ] {
        let output = std::process::Command::new(&openssl)
            .args(["verify", "-CAfile", cert])
            .args(check)
            .arg(cert)
            .output()
            .expect("run openssl verify");
        assert!(output.status.success(), "{check:?}: {output:?}");
    }
}

#[test]
fn default_alpn_is_added_only_when_none_is_set() {
    let dir = Scratch::new("alpn");
    let cert = new_cert();
    let cert_path = dir.write("cert.pem", &cert.cert_pem);
    let key_path = dir.write("key.pem", &cert.key_pem);
    let loaded = load(&cert_path, &key_path).expect("load");
    assert_eq!(loaded.config.alpn_protocols, [b"http/1.1".to_vec()]);

    let mut config = ServerConfig::builder_with_provider(hangup::tls::crypto_provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_cert_resolver(loaded.reloader.clone());
    let bare = with_default_alpn(Arc::new(config.clone()));
    assert_eq!(bare.alpn_protocols, [b"http/1.1".to_vec()]);

    config.alpn_protocols = vec![b"h2".to_vec()];
    let chosen = with_default_alpn(Arc::new(config));
    assert_eq!(chosen.alpn_protocols, [b"h2".to_vec()]);
}

/// The path of `program` on `PATH`.
fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|path| path.is_file())
    })
}

/// rustls' client refuses what the library warned about: an expired
/// certificate loads and is served, but a client that checks dates fails.
#[tokio::test]
async fn an_expired_certificate_is_served_and_refused_by_clients() {
    let dir = Scratch::new("expired-served");
    let key = KeyPair::generate().expect("key");
    let mut params = localhost_params();
    params.not_before = rcgen::date_time_ymd(2000, 1, 1);
    params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    let expired = cert_for(params, &key);
    let cert_path = dir.write("cert.pem", &expired.cert_pem);
    let key_path = dir.write("key.pem", &expired.key_pem);
    let loaded = load(&cert_path, &key_path).expect("load");
    let addr = serve(loaded.config.clone()).await;
    let err = connect(addr, "localhost", &[&expired.der])
        .await
        .expect_err("a client accepted an expired certificate");
    let cause = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    assert!(
        matches!(
            cause,
            Some(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Expired | rustls::CertificateError::ExpiredContext { .. }
            ))
        ),
        "{err:?}"
    );
}
