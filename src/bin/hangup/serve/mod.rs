//! `hangup serve [DIR]`: a static file server whose access log tells the
//! truth about every download and upload.
//!
//! The command parses its arguments into [`Args`], turns them once into
//! validated [`Settings`](site::Settings), sets up the access log, and
//! runs a [`hangup::Server`] with a [`Site`](site::Site) handler until
//! Ctrl-C. The modules, one concept each:
//!
//! - [`site`]: the handler; method, credentials, path, then what it names;
//! - [`methods`]: which methods are served, `Allow`, 405 and 501;
//! - [`auth`]: HTTP Basic credentials (`--auth`);
//! - [`cors`]: cross-origin reads (`--cors`);
//! - [`path`]: request path to file path, and why it never leaves the root;
//! - [`files`]: one file: its representation, validators, range and body;
//! - [`encoding`]: content codings and `Accept-Encoding`;
//! - [`compress`]: compression on the fly (`--compress`);
//! - [`conditional`]: `ETag`, `Last-Modified` and the `If-*` headers;
//! - [`ranges`]: the `Range` header;
//! - [`listing`]: the directory page, HTML or JSON;
//! - [`upload`]: `PUT` and form uploads that never leave half a file;
//! - [`answer`]: errors, redirects and other one-line answers;
//! - [`logfmt`]: the access log's formats (`--log-format`);
//! - [`clock`]: dates for listings and logs;
//! - [`mime`]: `Content-Type` by extension.

mod answer;
mod auth;
mod clock;
mod compress;
mod conditional;
mod cors;
mod encoding;
mod files;
mod listing;
mod logfmt;
mod methods;
mod mime;
mod path;
mod ranges;
mod site;
mod upload;

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hangup::http::HeaderValue;
use hangup::{Config, Server, ShutdownHandle};

use auth::Credentials;
use logfmt::LogFormat;
use site::{Page, Settings};
use tracing::Level;
use upload::Uploads;

/// How long in-flight downloads may run on after Ctrl-C before their
/// connections are closed: enough for a page and its assets, short enough
/// that nobody reaches for `kill -9`.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The largest `--404` page: it is held in memory and sent whole.
const MAX_PAGE_BYTES: u64 = 1 << 20;

/// Text shown after the options by `hangup serve --help`.
const AFTER_HELP: &str = "\
What it serves:
  GET and HEAD for the files below DIR. A directory shows its index.html,
  or else a listing (sortable by name, size or date; JSON for
  Accept: application/json). Content-Type comes from the file extension.
  ETag and Last-Modified let browsers revalidate (304); If-Match and
  If-Unmodified-Since that do not hold get 412; a single Range gives 206
  (or 416 when it is past the end). Large files are streamed from disk.
  Paths never leave DIR: '..', encoded slashes, NUL bytes and symlinks
  that point outside DIR are refused. Names starting with '.' are hidden
  and not served (but .well-known), unless --hidden.

Caching:
  Every file and listing says Cache-Control: no-cache by default. That
  does not mean \"do not cache\": browsers keep the file and ask before
  each use whether it is still current, which costs one small request
  answered 304 (thanks to the ETag) instead of the whole file, and never
  shows a stale page after you edit a file. For files that never change
  (names with a hash in them), --cache-control \"public, max-age=31536000,
  immutable\" spares even that request.

Compression:
  A precompressed sibling (app.js.br, app.js.zst, app.js.gz next to
  app.js, and not older than it) is sent when the client's
  Accept-Encoding prefers it, with Vary: Accept-Encoding, an ETag of its
  own, and ranges of its bytes.
  With --compress, text of 1 KiB or more without a sibling is compressed
  while it is sent (Brotli, zstd or gzip): such a response has no
  Content-Length and offers no ranges (Accept-Ranges: none); a request
  with a Range gets the file itself.

Uploads (--upload):
  PUT /path/name stores the request body; the listing page gets a form.
  The body goes to a temporary file in the target directory, is synced
  to disk, and only then renamed into place: a client that leaves halfway
  leaves nothing behind (logged 499 with the bytes received). Existing
  files are replaced only with --overwrite (else 409; If-None-Match: *
  gets 412), and so is what clients get for one: a precompressed copy
  (name.gz next to name) is refused without it. At most --upload-limit
  bytes per request (else 413).

Sharing:
  --auth USER:PASSWORD asks every request for HTTP Basic credentials
  (401 otherwise). Basic sends the password readable: use it on loopback
  or a trusted network, or behind TLS. On the command line it shows in
  the process list: --auth-file FILE reads USER:PASSWORD from a file.
  --cors lets pages on other origins read (not upload), without
  credentials: with --auth, a page on another origin cannot read. --spa serves
  index.html for paths that name nothing (single-page applications).
  --404 FILE is the page sent with every 404.

What it logs (stderr, one line per request, target hangup::access):
  status      what the client got; 499 if it hung up before the end,
              444 if the server closed before answering (a shutdown)
  written     response bytes the kernel accepted
  acked       bytes the client's TCP acknowledged (Linux); an aborted
              download shows how far it really got
  cause/phase why and when a client left (reset, peer-closed, ...)
  --log-format combined writes Apache/nginx combined lines (with the
  fields above appended; the size is `written`, head included, as nginx's
  $bytes_sent), json one object per line; both add User-Agent, Referer,
  the user and the body bytes received.
  Text the client chose (target, method, path, header values) is escaped:
  any byte but printable ASCII, and space, '\"' and '\\', shows as \\xNN
  (spaces stay spaces in combined's quoted fields and in JSON strings).
  Set RUST_LOG to change the level, e.g. RUST_LOG=debug; --quiet keeps
  only warnings and the address.

Examples:
  hangup serve                              this directory, on 127.0.0.1:8080
  hangup serve ./public -p 8000             port 8000
  hangup serve ./public --addr 0.0.0.0:8000 every interface, port 8000
  hangup serve site --addr 0                any free port (printed at start)
  hangup serve dist --spa --compress        a single-page app, compressed
  hangup serve inbox --upload --auth me:pw  a drop box with a password
  hangup serve site --tls-self-signed       HTTPS on this machine
  hangup serve site --proxy-protocol        behind HAProxy's send-proxy-v2

HTTPS:
  --tls-cert FILE --tls-key FILE serve HTTPS (TLS 1.3 and 1.2, ALPN
  http/1.1) with a PEM chain and key, e.g. Let's Encrypt's fullchain.pem
  and privkey.pem. An expired certificate is served with a warning. New
  files are picked up on SIGHUP and within 5 s of changing, without
  dropping a connection. --tls-self-signed makes a certificate for
  localhost at start and prints where it is, so that
  curl --cacert PATH https://localhost:8080/ trusts it. Plain HTTP sent
  to the HTTPS port is answered 400. written and acked count the
  response's bytes, not TLS's.

Behind a proxy:
  --proxy-protocol reads the PROXY protocol header (v1 or v2) that HAProxy
  (send-proxy, send-proxy-v2) or nginx's stream module (proxy_protocol
  on) put before each connection, and logs the client's address from it.
  Connections without a valid header are closed unanswered and logged.
  Use it only where nothing but the proxy can connect.

Ctrl-C stops accepting and gives downloads 5 s to finish; a second Ctrl-C
quits at once.";

/// Arguments of `hangup serve`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = AFTER_HELP, args_override_self = true)]
pub struct Args {
    /// The directory to serve; nothing outside it is ever sent.
    #[arg(default_value = ".", value_name = "DIR")]
    pub dir: PathBuf,
    /// Where to listen: HOST:PORT (127.0.0.1:8080 is this machine only,
    /// 0.0.0.0:8080 every interface), or just a PORT on 127.0.0.1; port 0
    /// picks a free one.
    #[arg(
        long,
        default_value = "127.0.0.1:8080",
        value_name = "HOST:PORT",
        value_parser = parse_addr
    )]
    pub addr: SocketAddr,
    /// The port to listen on (replaces the port of --addr).
    #[arg(short, long, value_name = "PORT")]
    pub port: Option<u16>,
    /// Cache-Control of files and listings. The default, no-cache, makes
    /// browsers revalidate before each use: a cheap 304 with the ETag, and
    /// never a stale file (see the end of --help).
    #[arg(
        long,
        default_value = "no-cache",
        value_name = "VALUE",
        value_parser = parse_cache_control
    )]
    pub cache_control: HeaderValue,
    /// Compress text of 1 KiB or more on the fly (Brotli, zstd, gzip) for
    /// clients that accept it. Precompressed siblings are used without it.
    #[arg(long)]
    pub compress: bool,
    /// Show and serve names starting with '.' (hidden by default, but
    /// .well-known).
    #[arg(long)]
    pub hidden: bool,
    /// Accept uploads: PUT of a path, and a form on the listing page.
    #[arg(long)]
    pub upload: bool,
    /// The largest upload, in bytes, or with a unit: 500M, 2G (KiB, MiB,
    /// GiB: powers of 1024).
    #[arg(
        long,
        default_value = "1G",
        value_name = "SIZE",
        value_parser = parse_size,
        requires = "upload"
    )]
    pub upload_limit: u64,
    /// Let uploads replace existing files (else 409).
    #[arg(long, requires = "upload")]
    pub overwrite: bool,
    /// Ask every request for this user and password (HTTP Basic).
    #[arg(long, value_name = "USER:PASSWORD", value_parser = Credentials::parse)]
    pub auth: Option<Credentials>,
    /// As --auth, with USER:PASSWORD read from the file's first line (a
    /// command line shows in the process list; a file can be private).
    #[arg(long, value_name = "FILE", value_parser = Credentials::read_file, conflicts_with = "auth")]
    pub auth_file: Option<Credentials>,
    /// Let web pages on other origins read these files (CORS).
    #[arg(long)]
    pub cors: bool,
    /// Serve the root's index.html for paths that name nothing
    /// (single-page applications that route in the browser).
    #[arg(long)]
    pub spa: bool,
    /// The page to send with every 404 (read once, at start).
    #[arg(long = "404", value_name = "FILE")]
    pub not_found_page: Option<PathBuf>,
    /// The access log's format: kv (hangup's key=value line), combined
    /// (Apache/nginx, hangup's fields appended) or json.
    #[arg(long, value_enum, default_value_t = LogFormat::Kv, value_name = "FORMAT")]
    pub log_format: LogFormat,
    /// No access log: only the address, warnings and errors.
    #[arg(short, long)]
    pub quiet: bool,
    /// Serve HTTPS with this PEM certificate chain (the server's own
    /// certificate first, then its intermediates); needs --tls-key.
    /// Reloaded on SIGHUP and when the files change.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve HTTPS with a certificate for localhost, 127.0.0.1 and ::1
    /// made at start, for local use: where it was written and its SHA-256
    /// fingerprint are printed (curl --cacert FILE trusts it).
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    pub tls_self_signed: bool,
    /// Expect a PROXY protocol header (v1 or v2) at the start of every
    /// connection, and log the client's address from it. Only behind a
    /// proxy that sends one (HAProxy's send-proxy, nginx's stream
    /// proxy_protocol on): connections without it are refused.
    #[arg(long)]
    pub proxy_protocol: bool,
}

/// Where HTTPS certificates come from, if anywhere.
#[derive(Debug)]
enum Tls {
    /// Plain HTTP.
    Off,
    /// `--tls-cert` and `--tls-key`.
    Files { cert: PathBuf, key: PathBuf },
    /// `--tls-self-signed`.
    SelfSigned,
}

impl Tls {
    fn of(args: &Args) -> Tls {
        match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Tls::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            _ if args.tls_self_signed => Tls::SelfSigned,
            _ => Tls::Off,
        }
    }
}

/// Prints the error [`run`] returned, in the log format it was given (see
/// `logfmt::fatal`).
pub fn report_fatal(err: &dyn std::fmt::Display) {
    logfmt::fatal(err);
}

/// Runs `hangup serve` until Ctrl-C (or SIGTERM).
///
/// # Errors
///
/// When the directory cannot be served, the `--404` page cannot be read,
/// or the address cannot be bound; each message says what to do about it.
pub fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let requests = logfmt::init(args.log_format, args.quiet);
    let tls = Tls::of(&args);
    let proxy_protocol = args.proxy_protocol;
    let root = open_root(&args.dir)?;
    let not_found = args.not_found_page.as_deref().map(read_page).transpose()?;
    let mut addr = args.addr;
    if let Some(port) = args.port {
        addr.set_port(port);
    }
    let settings = Settings {
        root,
        cache_control: args.cache_control,
        compress: args.compress,
        hidden: args.hidden,
        uploads: args.upload.then_some(Uploads {
            limit_bytes: args.upload_limit,
            overwrite: args.overwrite,
            hidden: args.hidden,
        }),
        auth: args.auth.or(args.auth_file),
        cors: args.cors,
        spa: args.spa,
        not_found,
        requests,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(settings, addr, tls, proxy_protocol))
}

/// The loaded certificate and what keeps it current, for as long as the
/// server runs.
struct Https {
    config: std::sync::Arc<hangup::tls::rustls::ServerConfig>,
    /// Reloads on SIGHUP and when the files change (`--tls-cert`).
    _reloads: Vec<tokio::task::JoinHandle<()>>,
    /// The self-signed certificate's directory, removed at exit.
    _self_signed_dir: Option<tempfile::TempDir>,
}

/// Loads (or makes) the certificate, and prints what a user needs to know
/// about it: warnings, or where a self-signed one is and its fingerprint.
fn https(tls: Tls) -> Result<Option<Https>, Box<dyn std::error::Error>> {
    match tls {
        Tls::Off => Ok(None),
        Tls::Files { cert, key } => {
            let loaded = hangup::tls::TlsFiles::new(&cert, &key)
                .load()
                .map_err(|err| format!("cannot serve HTTPS: {err}"))?;
            for warning in &loaded.warnings {
                logfmt::note(Level::WARN, &format!("warning: {warning}"));
            }
            let reloads = vec![
                loaded.reloader.reload_on_sighup()?,
                loaded
                    .reloader
                    .watch_files(hangup::tls::DEFAULT_WATCH_INTERVAL),
            ];
            Ok(Some(Https {
                config: loaded.config,
                _reloads: reloads,
                _self_signed_dir: None,
            }))
        }
        Tls::SelfSigned => {
            let dir = tempfile::Builder::new()
                .prefix("hangup-self-signed-")
                .tempdir()
                .map_err(|err| format!("cannot make a directory for the certificate: {err}"))?;
            let made = hangup::tls::self_signed(dir.path())
                .map_err(|err| format!("cannot make a self-signed certificate: {err}"))?;
            // Loaded, the key is needed no more (a self-signed certificate
            // is never reloaded): off the disk at once, so that not even
            // a killed process leaves a private key behind. The
            // certificate stays, for clients to trust (`curl --cacert`).
            std::fs::remove_file(&made.key_path)
                .map_err(|err| format!("cannot remove the self-signed key: {err}"))?;
            logfmt::note(
                Level::INFO,
                &format!(
                    "self-signed certificate for {} in {} (removed at exit)",
                    hangup::tls::SELF_SIGNED_NAMES.join(", "),
                    made.cert_path.display()
                ),
            );
            logfmt::note(
                Level::INFO,
                &format!("  SHA-256 fingerprint {}", made.fingerprint_sha256),
            );
            Ok(Some(Https {
                config: made.loaded.config,
                _reloads: Vec::new(),
                _self_signed_dir: Some(dir),
            }))
        }
    }
}

/// Binds, announces, serves until a stop signal, and waits for the
/// connections to finish.
async fn serve(
    settings: Settings,
    addr: SocketAddr,
    tls: Tls,
    proxy_protocol: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = settings.root.clone();
    let mut summary = summary(&settings);
    if proxy_protocol {
        summary.push("expecting a PROXY protocol header on every connection".to_owned());
    }
    let https = https(tls)?;
    let mut config = Config::builder();
    config.proxy_protocol(proxy_protocol);
    if let Some(https) = &https {
        config.tls(https.config.clone());
    }
    let config = config.build()?;
    let scheme = if https.is_some() { "https" } else { "http" };
    let server = Server::bind(addr, config, site::Site::new(settings))
        .await
        .map_err(|err| bind_error(addr, err))?;
    let local = server.local_addr()?;
    // Not log events: the address must show whatever RUST_LOG says.
    logfmt::note(
        Level::INFO,
        &format!(
            "serving {} on {scheme}://{local}/ (Ctrl-C to stop)",
            root.display()
        ),
    );
    for url in other_urls(local, scheme) {
        logfmt::note(Level::INFO, &format!("  {url}"));
    }
    if !summary.is_empty() {
        logfmt::note(Level::INFO, &summary.join("; "));
    }
    let self_signed_dir = https
        .as_ref()
        .and_then(|https| https._self_signed_dir.as_ref())
        .map(|dir| dir.path().to_owned());
    tokio::spawn(stop_on_signal(server.shutdown_handle(), self_signed_dir));
    server.run().await?;
    drop(https);
    logfmt::note(Level::INFO, "stopped");
    Ok(())
}

/// When listening on every interface (`0.0.0.0`, `::`), the URLs of this
/// machine's addresses of that family, loopback first: what to open, or
/// to give to someone on the network.
fn other_urls(local: SocketAddr, scheme: &str) -> Vec<String> {
    if !local.ip().is_unspecified() {
        return Vec::new();
    }
    let Ok(interfaces) = if_addrs::get_if_addrs() else {
        return Vec::new();
    };
    let mut ips: Vec<IpAddr> = interfaces
        .iter()
        .map(if_addrs::Interface::ip)
        .filter(|ip| ip.is_ipv4() == local.is_ipv4())
        .filter(|ip| !matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local()))
        .collect();
    ips.sort_by_key(|ip| (!ip.is_loopback(), *ip));
    ips.dedup();
    ips.into_iter()
        .map(|ip| format!("{scheme}://{}/", SocketAddr::new(ip, local.port())))
        .collect()
}

/// One phrase per option that changes what the server does, for the
/// start-up notice.
fn summary(settings: &Settings) -> Vec<String> {
    let mut parts = Vec::new();
    if let Some(rules) = settings.uploads {
        parts.push(format!(
            "uploads on (at most {}, {})",
            listing::human_size(rules.limit_bytes),
            if rules.overwrite {
                "may replace files"
            } else {
                "never replacing a file"
            }
        ));
    }
    if let Some(account) = &settings.auth {
        parts.push(format!("password required (user {})", account.user()));
    }
    if settings.compress {
        parts.push("compressing text".to_owned());
    }
    if settings.cors {
        parts.push("readable from other origins".to_owned());
    }
    if settings.spa {
        parts.push("index.html for unknown paths".to_owned());
    }
    if settings.hidden {
        parts.push("showing hidden files".to_owned());
    }
    parts
}

/// Reads the `--404` page.
fn read_page(path: &Path) -> Result<Page, String> {
    let shown = path.display();
    let metadata = std::fs::metadata(path)
        .map_err(|err| format!("cannot read the --404 page {shown}: {err}"))?;
    if !metadata.is_file() || metadata.len() > MAX_PAGE_BYTES {
        return Err(format!(
            "cannot use {shown} as the --404 page: pass a file of at most 1 MiB"
        ));
    }
    let body =
        std::fs::read(path).map_err(|err| format!("cannot read the --404 page {shown}: {err}"))?;
    Ok(Page {
        body,
        content_type: mime::content_type(path),
    })
}

/// Parses `--cache-control`: any valid, non-empty field value.
fn parse_cache_control(text: &str) -> Result<HeaderValue, String> {
    HeaderValue::from_str(text.trim())
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            "expected a Cache-Control value such as no-cache or \"public, max-age=3600\"".to_owned()
        })
}

/// Parses `--upload-limit`: a number of bytes, or one with `K`, `M`, `G`
/// or `T` (powers of 1024; `KiB`, `KB` and `k` read the same).
fn parse_size(text: &str) -> Result<u64, String> {
    let hint = "expected a size such as 1048576, 500M or 2G";
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.parse().map_err(|_| hint.to_owned())?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(hint.to_owned()),
    };
    number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("{text} is too large"))
}

/// The canonical form of `dir`, which every served path must start with.
fn open_root(dir: &Path) -> Result<PathBuf, String> {
    let shown = dir.display();
    let root = std::fs::canonicalize(dir).map_err(|err| match err.kind() {
        io::ErrorKind::NotFound => {
            format!(
                "cannot serve {shown}: no such directory; \
                 pass an existing directory, e.g. `hangup serve ./public`"
            )
        }
        io::ErrorKind::PermissionDenied => {
            format!("cannot serve {shown}: permission denied; pass a directory you can read")
        }
        _ => format!("cannot serve {shown}: {err}"),
    })?;
    if !root.is_dir() {
        return Err(format!(
            "cannot serve {shown}: it is a file, not a directory; pass the directory that holds it"
        ));
    }
    Ok(root)
}

/// Parses `--addr`: `HOST:PORT` (names are resolved once, here) or a bare
/// port on 127.0.0.1.
fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    let hint = "expected HOST:PORT such as 127.0.0.1:8080 or 0.0.0.0:8080, or a bare port";
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    match text.to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("{text} resolves to no address; {hint}")),
        Err(err) => Err(format!("{err}; {hint}")),
    }
}

/// Explains a bind failure and what to try instead.
fn bind_error(addr: SocketAddr, err: hangup::Error) -> String {
    let io_err = match &err {
        hangup::Error::Io(io_err) => io_err,
        _ => return format!("cannot listen on {addr}: {err}"),
    };
    let advice = match io_err.kind() {
        io::ErrorKind::AddrInUse => {
            "another program uses this port; stop it, \
             or pick another port with --addr (port 0 picks a free one)"
        }
        io::ErrorKind::PermissionDenied => {
            "ports below 1024 need privileges; use a higher port, e.g. --addr 127.0.0.1:8080"
        }
        io::ErrorKind::AddrNotAvailable => {
            "this machine has no such address; use 127.0.0.1 (local) or 0.0.0.0 (every interface)"
        }
        _ => "check the address given with --addr",
    };
    format!("cannot listen on {addr}: {io_err}; {advice}")
}

/// Waits for Ctrl-C (or SIGTERM), then shuts down gracefully; a second
/// signal exits at once, removing `self_signed_dir` first (an exit runs no
/// destructor).
async fn stop_on_signal(shutdown: ShutdownHandle, self_signed_dir: Option<PathBuf>) {
    stop_signal().await;
    logfmt::note(
        Level::INFO,
        &format!(
            "shutting down; in-flight requests have {} s to finish (Ctrl-C again to quit now)",
            SHUTDOWN_GRACE.as_secs()
        ),
    );
    shutdown.shutdown(SHUTDOWN_GRACE);
    stop_signal().await;
    logfmt::note(Level::INFO, "quitting now");
    if let Some(dir) = self_signed_dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    // 130: the conventional exit status after SIGINT.
    std::process::exit(130);
}

/// Resolves on Ctrl-C (SIGINT) or, on Unix, SIGTERM (what service
/// managers and `kill` send).
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    // Without a handler, Ctrl-C would kill the process outright: better
    // to wait forever than to treat a failed registration as a signal.
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("500M"), Ok(500 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert_eq!(parse_size("1 KiB"), Ok(1024));
        assert!(parse_size("1.5G").is_err());
        assert!(parse_size("G").is_err());
        assert!(parse_size("99999999999T").is_err());
    }
}
