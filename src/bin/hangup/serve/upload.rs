//! Uploads (`--upload`) that never leave a half-written file: `PUT` of a
//! path, and the listing page's form (`POST` of `multipart/form-data` to a
//! directory).
//!
//! Every upload streams into a temporary file in the target directory,
//! named [`TEMP_PREFIX`]`…` (never listed, never served), while the body
//! arrives. Only once the whole body is there is the file synced to disk
//! (`fsync`), renamed into place in one step (`rename(2)`, or
//! `renameat2(RENAME_NOREPLACE)` when nothing may be replaced), and its
//! directory synced. A reader therefore sees the old file or the new one,
//! never a part. A client that leaves mid-upload (reset, close, or a body
//! that stops for `body_read_timeout`) leaves nothing: the temporary file
//! is removed before the handler returns (and by its `Drop` in any case),
//! and the access log says 499 with the bytes received.
//!
//! Rules: the same root containment as reads (the target's directory is
//! resolved like any request path; the name is one plain name); names
//! starting with `.` only with `--hidden`; at most `--upload-limit` bytes
//! (413); an existing file is replaced only with `--overwrite` (else 409),
//! and `If-None-Match: *` or a failing `If-Match` is 412 whatever the
//! setting (RFC 9110 §13.1). Of two uploads racing to one new name
//! without `--overwrite`, one wins and the other gets 409; with it, each
//! replaces the file whole, the last rename last.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures_util::{FutureExt as _, StreamExt as _};
use hangup::http::header::{CONTENT_TYPE, ETAG, HOST, IF_NONE_MATCH, LOCATION, ORIGIN};
use hangup::http::{HeaderMap, HeaderValue, StatusCode};
use hangup::{Body, Escaped, Request, ResponseWriter, Result};
use tempfile::NamedTempFile;

use super::answer;
use super::conditional::{Precondition, Validators, evaluate};
use super::encoding::Encoding;
use super::files::header_value;
use super::listing::is_hidden;
use super::path::{ResolveError, SitePath, classify, name_os, readable, resolve};

/// The start of every temporary upload file's name: hidden by its dot,
/// and recognised by listings and reads, which skip it.
pub const TEMP_PREFIX: &str = ".hangup-upload-";

/// True for the name of an upload in progress.
pub fn is_upload_in_progress(name: &[u8]) -> bool {
    name.starts_with(TEMP_PREFIX.as_bytes())
}

/// How uploads are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uploads {
    /// The largest body accepted, in bytes (`--upload-limit`).
    pub limit_bytes: u64,
    /// An existing file may be replaced (`--overwrite`).
    pub overwrite: bool,
    /// Names starting with `.` may be written (`--hidden`).
    pub hidden: bool,
}

/// Where an upload lands.
#[derive(Debug)]
struct Target {
    /// The directory, canonical, inside the root.
    dir: PathBuf,
    /// The final path: `dir` and the name.
    path: PathBuf,
    /// The validators of what is there now, if anything is.
    existing: Option<Existing>,
}

/// What a target's name holds before the upload.
#[derive(Debug)]
enum Existing {
    /// A file (or a symlink to one), with its validators.
    File(Validators),
    /// A directory, or anything else that is not a file.
    Other,
}

/// Why receiving a body stopped short.
enum Failure {
    /// The client left, or its body was malformed: the library's error.
    Client(hangup::Error),
    /// More than `--upload-limit` bytes.
    TooLarge,
    /// The disk said no (full, read-only): the server's trouble.
    Disk(io::Error),
    /// A form whose multipart framing does not parse (400).
    Malformed,
}

/// Answers `PUT site` with the request's body: 201 (created) or 204
/// (replaced); 409, 412, 413, 403 (a name refused, a directory the server
/// may not write into) or 404 when it may not be stored.
/// `progress` counts the body bytes received, for the access log.
///
/// # Errors
///
/// [`hangup::Error::ClientGone`] when the client leaves mid-body (nothing
/// is kept); the writer's errors.
pub async fn put(
    mut request: Request,
    res: ResponseWriter,
    root: &Path,
    site: &SitePath,
    rules: Uploads,
    progress: Arc<AtomicU64>,
) -> Result<()> {
    let Some(name) = site.file_name().filter(|_| !site.has_trailing_slash()) else {
        return answer::error(
            res,
            StatusCode::CONFLICT,
            "PUT needs a file name; a directory cannot be uploaded",
        )
        .await;
    };
    if let Some((status, refusal)) = refuse_name(name, rules) {
        return answer::error(res, status, refusal).await;
    }
    if request
        .body_mut()
        .remaining_hint()
        .is_some_and(|n| n > rules.limit_bytes)
    {
        return too_large(res, rules.limit_bytes).await;
    }
    let target = match locate(root, site) {
        Ok(target) => target,
        Err(answer) => return answer.send(res).await,
    };
    let current = match &target.existing {
        Some(Existing::Other) => {
            return answer::error(res, StatusCode::CONFLICT, "that name is a directory").await;
        }
        Some(Existing::File(validators)) => Some(validators),
        None => None,
    };
    if evaluate(current, request.headers(), false) == Precondition::Failed {
        return super::files::precondition_failed(res).await;
    }
    if current.is_some() && !rules.overwrite {
        return answer::error(
            res,
            StatusCode::CONFLICT,
            "a file by that name exists; the server replaces files only with --overwrite",
        )
        .await;
    }
    if let Some(why) = shadows_a_file(&target.dir, name, rules) {
        return answer::error(res, StatusCode::CONFLICT, &why).await;
    }
    // `If-None-Match: *` asks for "only if nothing is there": kept at the
    // rename too, where a racing upload may have got there first.
    let replace = rules.overwrite && !request.headers().contains_key(IF_NONE_MATCH);
    let shown = site.display_bytes(false);
    let temp = match create_temp(&target.dir) {
        Ok(temp) => temp,
        Err(err) => return fail(res, Failure::Disk(err), &shown, &progress, rules).await,
    };
    let body = counted(request.into_body(), rules.limit_bytes, progress.clone());
    let temp = match receive(body, temp, Failure::from).await {
        Ok(temp) => temp,
        Err(failure) => return fail(res, failure, &shown, &progress, rules).await,
    };
    let path = target.path.clone();
    let stored = tokio::task::spawn_blocking(move || store(temp, &path, replace))
        .await
        .map_err(io::Error::other)?;
    match stored {
        Ok(validators) => {
            let received = progress.load(Ordering::Relaxed);
            tracing::info!(
                target: "hangup::serve",
                path = %Escaped::bytes(&shown),
                bytes = received,
                replaced = current.is_some(),
                "upload stored"
            );
            let mut res = res;
            res.insert_header(ETAG, header_value(&validators.etag))?;
            if current.is_some() {
                res.set_status(StatusCode::NO_CONTENT)?;
                return Ok(());
            }
            let location = site.href(false);
            res.insert_header(LOCATION, header_value(&location))?;
            let body = format!("201 Created: {location} ({received} bytes)\n");
            answer::text(&mut res, StatusCode::CREATED, &body).await
        }
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
            let (status, why) = if rules.overwrite {
                (
                    StatusCode::PRECONDITION_FAILED,
                    "If-None-Match: * but another upload created the file first",
                )
            } else {
                (
                    StatusCode::CONFLICT,
                    "another upload created a file by that name first",
                )
            };
            answer::error(res, status, why).await
        }
        Err(err) => fail(res, Failure::Disk(err), &shown, &progress, rules).await,
    }
}

/// Answers a form upload (`POST` of `multipart/form-data`) to the
/// directory `site`: every file field is stored in it under its own file
/// name, each as [`put`] stores a body, once the whole request has
/// arrived. 303 back to the listing when all are stored; 409 naming those
/// that were not (names taken, without `--overwrite`); 400 for a form
/// without files; 415 for a body that is not a form.
///
/// A request carrying an `Origin` other than this server's own is 403:
/// a page elsewhere must not make a visitor's browser upload here.
///
/// # Errors
///
/// As [`put`].
pub async fn form(
    request: Request,
    res: ResponseWriter,
    root: &Path,
    site: &SitePath,
    rules: Uploads,
    progress: Arc<AtomicU64>,
) -> Result<()> {
    let headers = request.headers();
    if !is_same_origin(headers) {
        return answer::error(
            res,
            StatusCode::FORBIDDEN,
            "a form on another site may not upload here",
        )
        .await;
    }
    let boundary = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| multer::parse_boundary(v).ok());
    let Some(boundary) = boundary else {
        return answer::error(
            res,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "POST takes a multipart/form-data form (the listing's upload form); use PUT for a raw body",
        )
        .await;
    };
    let dir = match locate_dir(root, site) {
        Ok(dir) => dir,
        Err(answer) => return answer.send(res).await,
    };
    let body = request.into_body();
    if body.remaining_hint().is_some_and(|n| n > rules.limit_bytes) {
        return too_large(res, rules.limit_bytes).await;
    }
    let shown = site.display_bytes(true);
    let stream = counted(body, rules.limit_bytes, progress.clone());
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut received: Vec<(Vec<u8>, NamedTempFile)> = Vec::new();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(err) => return fail(res, form_failure(err), &shown, &progress, rules).await,
        };
        let Some(name) = field.file_name().map(base_name) else {
            // A text field: not a file, nothing to store.
            continue;
        };
        if name.is_empty() {
            // A file input left empty: browsers send no name and no bytes.
            continue;
        }
        if let Some((status, refusal)) = refuse_name(&name, rules) {
            let why = format!("{}: {refusal}", readable(&name));
            return answer::error(res, status, &why).await;
        }
        if let Some(why) = shadows_a_file(&dir, &name, rules) {
            return answer::error(res, StatusCode::CONFLICT, &why).await;
        }
        let temp = match create_temp(&dir) {
            Ok(temp) => temp,
            Err(err) => return fail(res, Failure::Disk(err), &shown, &progress, rules).await,
        };
        match receive(field, temp, form_failure).await {
            Ok(temp) => received.push((name, temp)),
            Err(failure) => return fail(res, failure, &shown, &progress, rules).await,
        }
    }
    if received.is_empty() {
        return answer::error(res, StatusCode::BAD_REQUEST, "the form holds no file").await;
    }
    let dir_for_store = dir.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        received
            .into_iter()
            .map(|(name, temp)| {
                let path = dir_for_store.join(name_os(&name));
                (name, store(temp, &path, rules.overwrite))
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(io::Error::other)?;
    let (mut stored, mut refused) = (Vec::new(), Vec::new());
    for (name, result) in outcome {
        match result {
            Ok(_) => stored.push(readable(&name)),
            Err(err) => refused.push(format!("{} ({err})", readable(&name))),
        }
    }
    tracing::info!(
        target: "hangup::serve",
        path = %Escaped::bytes(&shown),
        bytes = progress.load(Ordering::Relaxed),
        stored = stored.len(),
        refused = refused.len(),
        "form upload"
    );
    if !refused.is_empty() {
        let why = format!(
            "not stored: {}; stored: {}",
            refused.join(", "),
            if stored.is_empty() {
                "none".to_owned()
            } else {
                stored.join(", ")
            }
        );
        return answer::error(res, StatusCode::CONFLICT, &why).await;
    }
    let location = site.href(true);
    let mut res = res;
    res.insert_header(LOCATION, header_value(&location))?;
    let body = format!(
        "303 See Other: stored {}; see {location}\n",
        stored.join(", ")
    );
    answer::text(&mut res, StatusCode::SEE_OTHER, &body).await
}

/// The longest file name the server writes, in bytes: what Linux's
/// filesystems take (`NAME_MAX`).
const MAX_NAME_BYTES: usize = 255;

/// Why a name may not be written, if it may not, with the status that
/// says so.
fn refuse_name(name: &[u8], rules: Uploads) -> Option<(StatusCode, &'static str)> {
    if name.len() > MAX_NAME_BYTES {
        Some((
            StatusCode::BAD_REQUEST,
            "a file name is at most 255 bytes long",
        ))
    } else if is_upload_in_progress(name) {
        Some((
            StatusCode::FORBIDDEN,
            "that name is reserved for uploads in progress",
        ))
    } else if is_hidden(name) && !rules.hidden {
        Some((
            StatusCode::FORBIDDEN,
            "names starting with . are hidden; the server writes them only with --hidden",
        ))
    } else {
        None
    }
}

/// Why storing `name` in `dir` would replace what clients get for another
/// file, if it would: `app.js.gz` next to an existing `app.js` is its
/// precompressed copy, sent instead of it to clients that accept gzip
/// (see `files::select`). Without `--overwrite` that is a replacement the
/// uploader may not make. In place.
fn shadows_a_file(dir: &Path, name: &[u8], rules: Uploads) -> Option<String> {
    if rules.overwrite {
        return None;
    }
    let original = Encoding::ALL
        .iter()
        .find_map(|encoding| name.strip_suffix(encoding.suffix().as_bytes()))
        .filter(|original| !original.is_empty())?;
    let exists = tokio::task::block_in_place(|| {
        std::fs::metadata(dir.join(name_os(original))).is_ok_and(|m| m.is_file())
    });
    exists.then(|| {
        format!(
            "{} would be sent instead of {} to clients that accept its coding (a precompressed \
             copy); the server replaces what a file's clients get only with --overwrite",
            readable(name),
            readable(original)
        )
    })
}

/// The last path segment of a form's file name (browsers send the base
/// name; older ones sent a full Windows path), as bytes. `.` and `..`
/// become empty (refused as no name).
fn base_name(file_name: &str) -> Vec<u8> {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or("");
    match base {
        "." | ".." => Vec::new(),
        _ if base.contains('\0') => Vec::new(),
        _ => base.as_bytes().to_vec(),
    }
}

/// True unless the request carries an `Origin` that is not this server's
/// own `http://` plus its `Host` (browsers send `Origin` with every form
/// POST).
fn is_same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(ORIGIN) else {
        return true;
    };
    let host = headers.get(HOST).map(HeaderValue::as_bytes).unwrap_or(b"");
    let origin = origin.as_bytes();
    origin
        .strip_prefix(b"http://")
        .or_else(|| origin.strip_prefix(b"https://"))
        .is_some_and(|rest| rest.eq_ignore_ascii_case(host))
}

/// A refusal decided while locating the target.
struct Refusal(StatusCode, &'static str);

impl Refusal {
    async fn send(self, res: ResponseWriter) -> Result<()> {
        answer::error(res, self.0, self.1).await
    }

    fn of(err: ResolveError) -> Refusal {
        match err {
            ResolveError::NotFound => Refusal(
                StatusCode::CONFLICT,
                "the directory to upload into does not exist",
            ),
            ResolveError::Forbidden => Refusal(
                StatusCode::FORBIDDEN,
                "not writable, or it leads outside the served directory",
            ),
            ResolveError::Io(_) => Refusal(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the directory could not be read",
            ),
        }
    }
}

/// Finds the directory of `site` and what its name holds now. Its
/// directory is resolved as reads resolve paths, so it is inside the
/// root; the name is a plain name, so the target is too. In place, like
/// every disk access of an upload (see [`Sink`]).
fn locate(root: &Path, site: &SitePath) -> std::result::Result<Target, Refusal> {
    let dir = locate_dir(root, &site.parent())?;
    let name = name_os(site.file_name().unwrap_or_default());
    tokio::task::block_in_place(|| {
        let path = dir.join(name);
        let existing = match std::fs::symlink_metadata(&path) {
            Ok(_) => match std::fs::metadata(&path) {
                Ok(metadata) if metadata.is_file() => {
                    Some(Existing::File(Validators::of(&metadata)))
                }
                // A directory, a device, or a symlink to nothing.
                _ => Some(Existing::Other),
            },
            Err(err) if err.kind() == io::ErrorKind::NotFound => None,
            Err(err) => return Err(Refusal::of(classify(err))),
        };
        Ok(Target {
            dir,
            path,
            existing,
        })
    })
}

/// The canonical directory `site` names inside `root`.
fn locate_dir(root: &Path, site: &SitePath) -> std::result::Result<PathBuf, Refusal> {
    tokio::task::block_in_place(|| match resolve(root, site) {
        Ok(found) if found.metadata.is_dir() => Ok(found.path),
        Ok(_) => Err(Refusal(
            StatusCode::CONFLICT,
            "uploads go into a directory, and that is a file",
        )),
        Err(err) => Err(Refusal::of(err)),
    })
}

/// Creates an empty temporary file in `dir`, readable by all (as files
/// copied into a served directory usually are) once it is renamed.
fn create_temp(dir: &Path) -> io::Result<NamedTempFile> {
    tokio::task::block_in_place(|| {
        let temp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .suffix(".part")
            .tempfile_in(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            temp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644))?;
        }
        Ok(temp)
    })
}

/// Syncs `temp` to disk and renames it to `path` (replacing what is
/// there only when `replace`), then syncs the directory so the rename
/// itself survives a crash. Blocking. Returns the stored file's
/// validators.
///
/// # Errors
///
/// `AlreadyExists` when `path` exists and `replace` is false; the disk's
/// errors. On any error the temporary file is removed.
fn store(temp: NamedTempFile, path: &Path, replace: bool) -> io::Result<Validators> {
    temp.as_file().sync_all()?;
    let file: File = if replace {
        temp.persist(path).map_err(|err| err.error)?
    } else {
        temp.persist_noclobber(path).map_err(|err| err.error)?
    };
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    // After the rename: the change time moved, and the tag follows it.
    Ok(Validators::of(&file.metadata()?))
}

/// Answers an upload that stopped short, after removing its temporary
/// file (the caller dropped it, or `receive` did): 499 for the log when
/// the client left, 413 past the limit, 500 when the disk failed.
async fn fail(
    res: ResponseWriter,
    failure: Failure,
    shown: &[u8],
    progress: &AtomicU64,
    rules: Uploads,
) -> Result<()> {
    let received = progress.load(Ordering::Relaxed);
    match failure {
        Failure::Client(err) => {
            if let Some(hangup) = err.hangup() {
                tracing::info!(
                    target: "hangup::serve",
                    path = %Escaped::bytes(shown),
                    status = 499,
                    received,
                    cause = hangup.cause().as_str(),
                    "upload abandoned by the client; nothing kept"
                );
            }
            Err(err)
        }
        Failure::TooLarge => {
            tracing::info!(
                target: "hangup::serve",
                path = %Escaped::bytes(shown),
                received,
                limit = rules.limit_bytes,
                "upload refused: over --upload-limit; nothing kept"
            );
            too_large(res, rules.limit_bytes).await
        }
        Failure::Malformed => {
            answer::error(
                res,
                StatusCode::BAD_REQUEST,
                "the multipart/form-data body does not parse",
            )
            .await
        }
        Failure::Disk(err) => {
            tracing::warn!(
                target: "hangup::serve",
                path = %Escaped::bytes(shown),
                %err,
                "cannot store upload; nothing kept"
            );
            let (status, why) = disk_refusal(&err);
            answer::error(res, status, why).await
        }
    }
}

/// The answer to a disk error while storing an upload: the operating
/// system's refusal (permissions, a read-only mount) is the server's rule
/// for that directory, 403; anything else is the server's trouble, 500.
fn disk_refusal(err: &io::Error) -> (StatusCode, &'static str) {
    match err.kind() {
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => (
            StatusCode::FORBIDDEN,
            "the server may not write into that directory",
        ),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the upload could not be stored",
        ),
    }
}

/// Answers 413 for a body over `limit` bytes.
async fn too_large(res: ResponseWriter, limit: u64) -> Result<()> {
    let why = format!("this server takes uploads of at most {limit} bytes (--upload-limit)");
    answer::error(res, StatusCode::PAYLOAD_TOO_LARGE, &why).await
}

/// Bytes gathered from the body before they are written, at most: one
/// write per quarter MiB keeps syscalls few next to the copy.
const BATCH_BYTES: usize = 256 * 1024;

/// An upload's temporary file and the bytes not yet written to it.
///
/// Writes happen on this worker thread (`block_in_place`, the runtime
/// moving its other tasks elsewhere meanwhile), not on the blocking pool
/// while the next bytes are read: the handler then waits on nothing but
/// its body, the one thing it must wait on, and needs no second buffer.
/// Gathered bytes are written when they reach [`BATCH_BYTES`], and
/// whenever the body has no more bytes ready: what has arrived is on its
/// way to disk before the handler waits for more.
struct Sink {
    temp: NamedTempFile,
    batch: Vec<u8>,
}

impl Sink {
    fn new(temp: NamedTempFile) -> Sink {
        Sink {
            temp,
            batch: Vec::with_capacity(BATCH_BYTES),
        }
    }

    /// Takes `data`; writes the batch once it is full.
    fn push(&mut self, data: &[u8]) -> io::Result<()> {
        self.batch.extend_from_slice(data);
        if self.batch.len() >= BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the gathered bytes.
    fn flush(&mut self) -> io::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let Sink { temp, batch } = self;
        tokio::task::block_in_place(|| temp.write_all(batch))?;
        batch.clear();
        Ok(())
    }

    /// Writes the rest and returns the file.
    fn finish(mut self) -> io::Result<NamedTempFile> {
        self.flush()?;
        Ok(self.temp)
    }

    /// Removes the file now: nothing of the upload stays. (A failure
    /// leaves it to `NamedTempFile`'s drop, which tries again.)
    fn discard(self) {
        let temp = self.temp;
        let _ = tokio::task::block_in_place(|| temp.close());
    }
}

/// Receives `chunks` (a counted body, or one form field) into `temp`;
/// `failure` names a stream error. Whatever is ready is written at once;
/// the file is flushed before waiting for more. On any failure the
/// temporary file is removed before this returns.
async fn receive<E>(
    chunks: impl futures_util::Stream<Item = std::result::Result<Bytes, E>>,
    temp: NamedTempFile,
    failure: impl Fn(E) -> Failure,
) -> std::result::Result<NamedTempFile, Failure> {
    let mut chunks = std::pin::pin!(chunks);
    let mut sink = Sink::new(temp);
    let failed = loop {
        let chunk = if let Some(ready) = chunks.next().now_or_never() {
            ready
        } else {
            if let Err(err) = sink.flush() {
                break Failure::Disk(err);
            }
            chunks.next().await
        };
        match chunk {
            Some(Ok(bytes)) => {
                if let Err(err) = sink.push(&bytes) {
                    break Failure::Disk(err);
                }
            }
            None => return sink.finish().map_err(Failure::Disk),
            Some(Err(err)) => break failure(err),
        }
    };
    sink.discard();
    Err(failed)
}

/// An error of [`counted`]'s stream: a `Failure` as it is (a `PUT`), or
/// carried through `multer` and recovered by [`form_failure`].
#[derive(Debug)]
enum StreamError {
    /// The library's error reading the body.
    Body(hangup::Error),
    /// Past `--upload-limit`.
    TooLarge,
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamError::Body(err) => write!(f, "{err}"),
            StreamError::TooLarge => f.write_str("body over --upload-limit"),
        }
    }
}

impl std::error::Error for StreamError {}

/// `body` as a stream of chunks (for `multer`, and for a `PUT`), counted in `progress` and
/// cut off past `limit`.
fn counted(
    body: Body,
    limit: u64,
    progress: Arc<AtomicU64>,
) -> impl futures_util::Stream<Item = std::result::Result<Bytes, StreamError>> + Send {
    futures_util::stream::unfold(Some(body), move |body| {
        let progress = progress.clone();
        async move {
            let mut body = body?;
            match body.chunk().await {
                Ok(Some(bytes)) => {
                    let total = progress.fetch_add(bytes.len() as u64, Ordering::Relaxed)
                        + bytes.len() as u64;
                    if total > limit {
                        return Some((Err(StreamError::TooLarge), None));
                    }
                    Some((Ok(bytes), Some(body)))
                }
                Ok(None) => None,
                Err(err) => Some((Err(StreamError::Body(err)), None)),
            }
        }
    })
}

/// Sorts a `multer` error: the body's own failures come back as they
/// were; anything else is a malformed form (400).
fn form_failure(err: multer::Error) -> Failure {
    if let multer::Error::StreamReadFailed(inner) = err {
        return match inner.downcast::<StreamError>() {
            Ok(stream) => Failure::from(*stream),
            Err(other) => Failure::Disk(io::Error::other(other.to_string())),
        };
    }
    Failure::Malformed
}

impl From<StreamError> for Failure {
    fn from(err: StreamError) -> Self {
        match err {
            StreamError::Body(err) => Failure::Client(err),
            StreamError::TooLarge => Failure::TooLarge,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_the_server_may_not_write_is_403_other_disk_errors_500() {
        use io::ErrorKind::*;
        for (kind, status) in [
            (PermissionDenied, StatusCode::FORBIDDEN),
            (ReadOnlyFilesystem, StatusCode::FORBIDDEN),
            (StorageFull, StatusCode::INTERNAL_SERVER_ERROR),
            (Other, StatusCode::INTERNAL_SERVER_ERROR),
        ] {
            assert_eq!(disk_refusal(&io::Error::from(kind)).0, status, "{kind:?}");
        }
    }

    #[test]
    fn form_file_names_become_one_plain_name() {
        assert_eq!(base_name("report.pdf"), b"report.pdf");
        assert_eq!(base_name("C:\\Users\\me\\report.pdf"), b"report.pdf");
        assert_eq!(base_name("../../etc/passwd"), b"passwd");
        assert_eq!(base_name(".."), b"");
        assert_eq!(base_name("a/.."), b"");
        assert_eq!(base_name("dir/"), b"");
        assert_eq!(base_name("a\0b"), b"");
    }

    #[test]
    fn names_are_refused_by_the_rules() {
        let rules = Uploads {
            limit_bytes: 10,
            overwrite: false,
            hidden: false,
        };
        assert!(refuse_name(b"a.txt", rules).is_none());
        assert!(refuse_name(b".env", rules).is_some());
        assert!(refuse_name(&[b'n'; 255], rules).is_none());
        assert_eq!(
            refuse_name(&[b'n'; 256], rules).map(|(status, _)| status),
            Some(StatusCode::BAD_REQUEST),
            "a name no filesystem takes"
        );
        assert!(
            refuse_name(
                b".env",
                Uploads {
                    hidden: true,
                    ..rules
                }
            )
            .is_none()
        );
        assert!(
            refuse_name(
                b".hangup-upload-x.part",
                Uploads {
                    hidden: true,
                    ..rules
                }
            )
            .is_some()
        );
    }

    #[test]
    fn forms_from_other_origins_are_refused() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, HeaderValue::from_static(value));
            }
            map
        };
        assert!(is_same_origin(&headers(&[("host", "127.0.0.1:8080")])));
        assert!(is_same_origin(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080")
        ])));
        assert!(!is_same_origin(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "https://evil.example")
        ])));
        assert!(!is_same_origin(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "null")
        ])));
    }
}
