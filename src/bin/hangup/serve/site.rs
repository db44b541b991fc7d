//! [`Site`], the handler: one request in, a file, a listing, a redirect or
//! an error out.
//!
//! Each request makes one trip to the blocking pool ([`lookup`]) that
//! resolves the path, opens the file or reads the directory, so the
//! connection tasks never wait on the disk.

use std::io;
use std::path::{Path, PathBuf};

use hangup::http::header::{ALLOW, CONTENT_TYPE, LOCATION, X_CONTENT_TYPE_OPTIONS};
use hangup::http::{HeaderValue, Method, StatusCode};
use hangup::{Escaped, Handler, Request, ResponseWriter, Result};

use super::files::{self, OpenFile};
use super::listing::{self, Entry};
use super::path::{ResolveError, SitePath, classify, resolve};

/// The file served for a directory when present.
const INDEX: &str = "index.html";

/// Serves the files below one directory: see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Site {
    /// The served directory, canonical (every symlink resolved), which
    /// every served path must start with.
    root: PathBuf,
}

impl Site {
    /// Serves `root`, which must be canonical ([`std::fs::canonicalize`]).
    pub fn new(root: PathBuf) -> Site {
        Site { root }
    }

    /// Answers one request: 405 for other methods, then by what the path
    /// names.
    async fn handle(&self, request: Request, mut res: ResponseWriter) -> Result<()> {
        // Every body here has a declared type; browsers must not guess
        // (a `.txt` holding HTML stays text).
        res.insert_header(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"))?;
        let method = request.method();
        if method != Method::GET && method != Method::HEAD {
            res.insert_header(ALLOW, HeaderValue::from_static("GET, HEAD"))?;
            return error(
                res,
                StatusCode::METHOD_NOT_ALLOWED,
                "this server only reads files: use GET or HEAD",
            )
            .await;
        }
        let site = match SitePath::parse(request.path()) {
            Ok(site) => site,
            Err(err) => return error(res, err.status(), err.reason()).await,
        };
        let root = self.root.clone();
        let target = site.clone();
        let found = tokio::task::spawn_blocking(move || lookup(&root, &target))
            .await
            .map_err(io::Error::other)?;
        match found {
            Ok(Found::File(open)) => {
                files::send(request.headers(), method == Method::GET, res, open).await
            }
            Ok(Found::Directory) => {
                let mut location = site.href(true);
                if let Some(query) = request.uri().query() {
                    location.push('?');
                    location.push_str(query);
                }
                redirect(res, &location).await
            }
            Ok(Found::Listing(entries)) => {
                let page = listing::render(&site, &entries);
                res.insert_header(
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                )?;
                res.write_all(page.as_bytes()).await
            }
            Err(ResolveError::NotFound) => {
                error(res, StatusCode::NOT_FOUND, "no such file or directory").await
            }
            Err(ResolveError::Forbidden) => {
                error(
                    res,
                    StatusCode::FORBIDDEN,
                    "not readable, or it leads outside the served directory",
                )
                .await
            }
            Err(ResolveError::Io(err)) => {
                // Our problem, not the client's: worth a warning. The path
                // is the client's text, decoded: escaped, so that an LF in
                // it cannot start a log line of the client's making.
                let path = site.display(false);
                tracing::warn!(
                    target: "hangup::serve",
                    path = %Escaped::bytes(path.as_bytes()),
                    %err,
                    "cannot read"
                );
                error(
                    res,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the file could not be read",
                )
                .await
            }
        }
    }
}

impl Handler for Site {
    fn call(
        &self,
        request: Request,
        response: ResponseWriter,
    ) -> impl Future<Output = Result<()>> + Send {
        self.handle(request, response)
    }
}

/// What a request path leads to.
#[derive(Debug)]
enum Found {
    /// A regular file, opened (or a directory's `index.html`).
    File(OpenFile),
    /// A directory asked for without the trailing `/`: redirect, so that
    /// relative links in its page resolve below it.
    Directory,
    /// A directory without `index.html`: its entries.
    Listing(Vec<Entry>),
}

/// Resolves `site` below `root` and opens what it names. Blocking.
fn lookup(root: &Path, site: &SitePath) -> std::result::Result<Found, ResolveError> {
    let found = resolve(root, site)?;
    if found.metadata.is_file() {
        return open(found.path);
    }
    if !found.metadata.is_dir() {
        // A socket, FIFO or device: opening a FIFO would block forever.
        return Err(ResolveError::NotFound);
    }
    if !site.has_trailing_slash() && !site.is_root() {
        return Ok(Found::Directory);
    }
    // `index.html` may itself be a symlink, so it is resolved like any
    // request path, not joined.
    match resolve(root, &site.child(INDEX)) {
        Ok(index) if index.metadata.is_file() => return open(index.path),
        Ok(_) | Err(ResolveError::NotFound) => {}
        Err(err) => return Err(err),
    }
    listing::read_entries(root, &found.path)
        .map(Found::Listing)
        .map_err(classify)
}

/// Opens the regular file at `path` (canonical, inside the root).
fn open(path: PathBuf) -> std::result::Result<Found, ResolveError> {
    OpenFile::open(path).map(Found::File).map_err(classify)
}

/// Answers `status` with a one-line plain-text body that says why.
async fn error(mut res: ResponseWriter, status: StatusCode, why: &str) -> Result<()> {
    res.set_status(status)?;
    res.insert_header(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    )?;
    let reason = status.canonical_reason().unwrap_or("");
    let body = format!("{} {reason}: {why}\n", status.as_u16());
    res.write_all(body.as_bytes()).await
}

/// Answers `301 Moved Permanently` to `location` (a path this module
/// built from decoded, re-encoded names).
async fn redirect(mut res: ResponseWriter, location: &str) -> Result<()> {
    let value = HeaderValue::from_str(location).map_err(io::Error::other)?;
    res.set_status(StatusCode::MOVED_PERMANENTLY)?;
    res.insert_header(LOCATION, value)?;
    res.insert_header(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    )?;
    res.write_all(format!("301 Moved Permanently: see {location}\n").as_bytes())
        .await
}
