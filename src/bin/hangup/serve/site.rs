//! [`Site`], the handler: one request in, a file, a listing, a redirect,
//! an upload's result or an error out.
//!
//! The order of decisions, each answering at once when it applies:
//!
//! 1. the method: unknown (501), or a CORS preflight under `--cors`;
//! 2. `--auth`: credentials missing or wrong (401);
//! 3. the method again: `OPTIONS` (`Allow`), known but not served (405);
//! 4. the path: malformed (400), climbing out (403), hidden (404);
//! 5. what it names: a file ([`files`]), a directory (redirect, index or
//!    listing), an upload ([`upload`]), or nothing (404, or `index.html`
//!    under `--spa`).
//!
//! Each read makes one trip to the blocking pool ([`lookup`]) that
//! resolves the path, chooses the representation and opens it, or reads
//! the directory, so the connection tasks never wait on the disk.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hangup::http::header::{
    ALLOW, CACHE_CONTROL, CONTENT_TYPE, ETAG, LAST_MODIFIED, RANGE, VARY, WWW_AUTHENTICATE,
    X_CONTENT_TYPE_OPTIONS,
};
use hangup::http::{HeaderValue, StatusCode};
use hangup::{Escaped, Handler, Request, ResponseWriter, Result};

use super::answer;
use super::auth::Credentials;
use super::conditional::{Precondition, Validators, evaluate};
use super::cors;
use super::encoding::Accepted;
use super::files::{self, Negotiation, Representation, header_value};
use super::listing::{self, Listing, View, is_hidden};
use super::logfmt::Requests;
use super::methods::{self, Action};
use super::path::{ResolveError, SitePath, classify, resolve};
use super::upload::{self, Uploads, is_upload_in_progress};

/// The file served for a directory when present, and for unknown paths
/// under `--spa`.
const INDEX: &str = "index.html";

/// The one hidden name served without `--hidden`: RFC 8615's
/// well-known URIs (ACME challenges, `security.txt`).
const WELL_KNOWN: &[u8] = b".well-known";

/// A page sent with 404 (`--404 FILE`), read once at start.
#[derive(Debug, Clone)]
pub struct Page {
    /// The page's bytes.
    pub body: Vec<u8>,
    /// Its `Content-Type`, by its extension.
    pub content_type: &'static str,
}

/// What `hangup serve` was asked to do: every option, validated.
#[derive(Debug)]
pub struct Settings {
    /// The served directory, canonical (every symlink resolved), which
    /// every served path must start with.
    pub root: PathBuf,
    /// `Cache-Control` of files and listings (`--cache-control`).
    pub cache_control: HeaderValue,
    /// Compress text on the fly (`--compress`).
    pub compress: bool,
    /// Show and serve names starting with `.` (`--hidden`).
    pub hidden: bool,
    /// `PUT` and form uploads (`--upload`), and their rules.
    pub uploads: Option<Uploads>,
    /// The one account allowed in (`--auth`).
    pub auth: Option<Credentials>,
    /// Cross-origin reads (`--cors`).
    pub cors: bool,
    /// `index.html` for unknown paths (`--spa`).
    pub spa: bool,
    /// The page of a 404 (`--404`).
    pub not_found: Option<Page>,
    /// Request fields kept for the access log (`--log-format combined`
    /// or `json`).
    pub requests: Option<Arc<Requests>>,
}

/// Serves the files below one directory: see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Site {
    settings: Arc<Settings>,
}

impl Site {
    /// Serves as `settings` say; `settings.root` must be canonical
    /// ([`std::fs::canonicalize`]).
    pub fn new(settings: Settings) -> Site {
        Site {
            settings: Arc::new(settings),
        }
    }

    /// Answers one request: see the [module docs](self) for the order.
    async fn handle(&self, request: Request, mut res: ResponseWriter) -> Result<()> {
        let s = &*self.settings;
        let captured = s.requests.as_ref().map(|r| r.record(&request));
        // Every body here has a declared type; browsers must not guess
        // (a `.txt` holding HTML stays text).
        res.insert_header(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"))?;
        if s.cors {
            cors::allow_reads(&mut res)?;
        }
        let action = methods::classify(request.method(), s.uploads.is_some());
        if action == Action::Unknown {
            res.insert_header(ALLOW, methods::allow(s.uploads.is_some()))?;
            return answer::error(
                res,
                StatusCode::NOT_IMPLEMENTED,
                "this server does not know that method",
            )
            .await;
        }
        if action == Action::Options && s.cors && cors::is_preflight(request.headers()) {
            // Preflights carry no credentials: answered before --auth.
            cors::answer_preflight(&mut res)?;
            return no_content(res).await;
        }
        if let Some(account) = &s.auth {
            if !account.admits(request.headers()) {
                res.insert_header(WWW_AUTHENTICATE, Credentials::challenge())?;
                return answer::error(
                    res,
                    StatusCode::UNAUTHORIZED,
                    "this server needs a user name and password",
                )
                .await;
            }
            if let Some(captured) = &captured {
                captured.set_user(account.user());
            }
        }
        match action {
            Action::Options => {
                res.insert_header(ALLOW, methods::allow(s.uploads.is_some()))?;
                return no_content(res).await;
            }
            Action::NotAllowed => {
                res.insert_header(ALLOW, methods::allow(s.uploads.is_some()))?;
                let why = if s.uploads.is_some() {
                    "this server reads files, and stores them with PUT or a form POST"
                } else {
                    "this server only reads files: use GET or HEAD (uploads need --upload)"
                };
                return answer::error(res, StatusCode::METHOD_NOT_ALLOWED, why).await;
            }
            _ => {}
        }
        let site = match SitePath::parse(request.path()) {
            Ok(site) => site,
            Err(err) => return answer::error(res, err.status(), err.reason()).await,
        };
        if self.is_hidden(&site, action == Action::Put) {
            return self.not_found(res).await;
        }
        let progress = captured.as_ref().map(|c| c.received()).unwrap_or_default();
        match (action, s.uploads) {
            (Action::Put, Some(rules)) => {
                upload::put(request, res, &s.root, &site, rules, progress).await
            }
            (Action::Post, Some(rules)) => {
                upload::form(request, res, &s.root, &site, rules, progress).await
            }
            _ => self.read(request, res, site).await,
        }
    }

    /// True when `site` goes through a name hidden from this request: one
    /// starting with `.` (but `.well-known`) without `--hidden`, or an
    /// upload in progress. A `PUT`'s last name is left to the upload's
    /// own rules (`skip_last`), which answer 403 with a reason.
    fn is_hidden(&self, site: &SitePath, skip_last: bool) -> bool {
        let count = site.segments().count();
        let checked = if skip_last {
            count.saturating_sub(1)
        } else {
            count
        };
        site.segments().take(checked).any(|name| {
            is_upload_in_progress(name)
                || (!self.settings.hidden && is_hidden(name) && name != WELL_KNOWN)
        })
    }

    /// Answers a GET or HEAD for `site`.
    async fn read(&self, request: Request, res: ResponseWriter, site: SitePath) -> Result<()> {
        let s = &*self.settings;
        let headers = request.headers();
        let how = Negotiation {
            accepted: Accepted::from_headers(headers),
            compress: s.compress,
            range: headers.contains_key(RANGE),
        };
        let root = s.root.clone();
        let target = site.clone();
        let (hidden, spa) = (s.hidden, s.spa);
        let found = tokio::task::spawn_blocking(move || lookup(&root, &target, &how, hidden, spa))
            .await
            .map_err(io::Error::other)?;
        let is_get = request.method() == hangup::http::Method::GET;
        match found {
            Ok(Found::File(representation)) => {
                files::send(headers, is_get, &s.cache_control, res, representation).await
            }
            Ok(Found::Directory) => {
                let mut location = site.href(true);
                if let Some(query) = request.uri().query() {
                    location.push('?');
                    location.push_str(query);
                }
                answer::redirect(res, StatusCode::MOVED_PERMANENTLY, &location).await
            }
            Ok(Found::Listing(listing)) => self.listing(&request, res, &site, listing).await,
            Err(ResolveError::NotFound) => self.not_found(res).await,
            Err(ResolveError::Forbidden) => {
                answer::error(
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
                let path = site.display_bytes(false);
                tracing::warn!(
                    target: "hangup::serve",
                    path = %Escaped::bytes(&path),
                    %err,
                    "cannot read"
                );
                answer::error(
                    res,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the file could not be read",
                )
                .await
            }
        }
    }

    /// Answers with the listing of the directory at `site`: HTML, or JSON
    /// when preferred; sorted by the query; validators from its content,
    /// so a browser revalidates it cheaply.
    async fn listing(
        &self,
        request: &Request,
        mut res: ResponseWriter,
        site: &SitePath,
        listing: Listing,
    ) -> Result<()> {
        let s = &*self.settings;
        let headers = request.headers();
        let view = View::from_query(request.uri().query());
        let json = listing::wants_json(headers);
        let last_modified = listing.last_modified();
        let mut entries = listing.entries;
        view.sort(&mut entries);
        let (page, content_type) = if json {
            (listing::render_json(site, &entries), "application/json")
        } else {
            let page = listing::render_html(site, &entries, view, s.uploads.is_some());
            (page, "text/html; charset=utf-8")
        };
        let validators = Validators::of_content(page.as_bytes(), last_modified);
        res.insert_header(ETAG, header_value(&validators.etag))?;
        if let Some(date) = validators.last_modified_header() {
            res.insert_header(LAST_MODIFIED, header_value(&date))?;
        }
        res.insert_header(CACHE_CONTROL, s.cache_control.clone())?;
        res.insert_header(VARY, HeaderValue::from_static("accept"))?;
        match evaluate(Some(&validators), headers, true) {
            Precondition::Proceed => {}
            Precondition::NotModified => {
                res.set_status(StatusCode::NOT_MODIFIED)?;
                return Ok(());
            }
            Precondition::Failed => return files::precondition_failed(res).await,
        }
        res.insert_header(CONTENT_TYPE, HeaderValue::from_static(content_type))?;
        res.write_all(page.as_bytes()).await
    }

    /// Answers 404: the `--404` page when there is one, else a line.
    async fn not_found(&self, mut res: ResponseWriter) -> Result<()> {
        match &self.settings.not_found {
            Some(page) => {
                res.set_status(StatusCode::NOT_FOUND)?;
                res.insert_header(CONTENT_TYPE, HeaderValue::from_static(page.content_type))?;
                res.insert_header(CACHE_CONTROL, answer::NO_STORE)?;
                res.write_all(&page.body).await
            }
            None => answer::error(res, StatusCode::NOT_FOUND, "no such file or directory").await,
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

/// Answers `204 No Content` (OPTIONS), not to be stored.
async fn no_content(mut res: ResponseWriter) -> Result<()> {
    res.set_status(StatusCode::NO_CONTENT)?;
    res.insert_header(CACHE_CONTROL, answer::NO_STORE)?;
    Ok(())
}

/// What a request path leads to.
#[derive(Debug)]
enum Found {
    /// A regular file, opened in the representation chosen for the
    /// request (or a directory's `index.html`, or `--spa`'s).
    File(Representation),
    /// A directory asked for without the trailing `/`: redirect, so that
    /// relative links in its page resolve below it.
    Directory,
    /// A directory without `index.html`: its entries.
    Listing(Listing),
}

/// Resolves `site` below `root` and opens what it names, in the
/// representation `how` allows; under `spa`, a name that leads nowhere
/// gets the root's `index.html`. Blocking.
fn lookup(
    root: &Path,
    site: &SitePath,
    how: &Negotiation,
    hidden: bool,
    spa: bool,
) -> std::result::Result<Found, ResolveError> {
    let found = match resolve(root, site) {
        Ok(found) => found,
        Err(ResolveError::NotFound) if spa => {
            let index = resolve(root, &SitePath::root().child(INDEX))?;
            if !index.metadata.is_file() {
                return Err(ResolveError::NotFound);
            }
            return open(root, index.path, how);
        }
        Err(err) => return Err(err),
    };
    if found.metadata.is_file() {
        return open(root, found.path, how);
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
        Ok(index) if index.metadata.is_file() => return open(root, index.path, how),
        Ok(_) | Err(ResolveError::NotFound) => {}
        Err(err) => return Err(err),
    }
    listing::read(root, &found.path, hidden)
        .map(Found::Listing)
        .map_err(classify)
}

/// Opens the regular file at `path` (canonical, inside the root) in the
/// representation `how` allows.
fn open(root: &Path, path: PathBuf, how: &Negotiation) -> std::result::Result<Found, ResolveError> {
    files::select(root, path, how)
        .map(Found::File)
        .map_err(classify)
}
