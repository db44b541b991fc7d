//! Sending one regular file: which representation (the file, a
//! precompressed sibling, or the file compressed on the fly), its
//! validators and preconditions (`304`, `412`), one byte range (`206`,
//! `416`), and the body streamed from disk in pieces.
//!
//! The body is never loaded whole. It is read in [`PIECE_BYTES`] pieces on
//! tokio's blocking pool (the crate's tokio has no `fs` feature, and a
//! disk read must not stall the connection tasks), with the next piece
//! read while the current one is written ([`Pieces`]). A response sent as
//! stored carries an explicit `Content-Length`, so it is never chunked;
//! each piece is larger than the writer's buffer, so it goes to the
//! socket without a copy. Once the client is gone, the next write fails
//! at once and the download stops: the access log then shows 499 with
//! what was written and acked.

use std::ffi::OsString;
use std::fs::{File, Metadata};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use hangup::http::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE,
    ETAG, LAST_MODIFIED, RANGE, VARY,
};
use hangup::http::{HeaderMap, HeaderValue, StatusCode};
use hangup::{ResponseWriter, Result};
use tokio::task::JoinHandle;

use super::compress;
use super::conditional::{Precondition, Validators, evaluate};
use super::encoding::{Accepted, Encoding};
use super::mime::{content_type, is_compressible};
use super::ranges::RangeRequest;

/// Bytes read from disk per step: big enough that a step's syscalls and
/// blocking-pool hop are cheap next to its copy, small enough that a
/// thousand concurrent downloads hold 128 MiB at most (two pieces each).
pub const PIECE_BYTES: usize = 64 * 1024;

/// The smallest file compressed on the fly: below about a kilobyte the
/// saving is a few hundred bytes, less than one packet, and the coding's
/// own header and the chunked framing eat into it (nginx's
/// `gzip_min_length` is 20 bytes by default; most CDNs use 1 KiB or more).
pub const COMPRESS_MIN_BYTES: u64 = 1024;

/// A file opened for sending, with the metadata of the open handle.
#[derive(Debug)]
pub struct OpenFile {
    /// The open file.
    pub file: File,
    /// Its metadata, from the handle (not the path, which may change).
    pub metadata: Metadata,
}

impl OpenFile {
    /// Opens `path` for reading. Blocking: call it off the runtime.
    ///
    /// # Errors
    ///
    /// The error of opening or stating it; `NotFound` when it is no longer
    /// a regular file (replaced after it was resolved).
    pub fn open(path: PathBuf) -> io::Result<OpenFile> {
        let file = File::open(&path)?;
        let metadata = file.metadata()?;
        if !metadata.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "no longer a regular file",
            ));
        }
        Ok(OpenFile { file, metadata })
    }
}

/// How the bytes of a representation relate to the file asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// The file as it is.
    Identity,
    /// A precompressed sibling (`app.js.br`), sent as stored: ranges,
    /// `Content-Length` and a strong tag of its own.
    Stored(Encoding),
    /// The file compressed while it is sent (`--compress`): chunked, no
    /// ranges, and a weak tag (another compressor version may make other
    /// bytes from the same file).
    OnTheFly(Encoding),
}

/// What the request allows in choosing a representation.
#[derive(Debug, Clone, Copy)]
pub struct Negotiation {
    /// The request's `Accept-Encoding`.
    pub accepted: Accepted,
    /// `--compress`: text may be compressed on the fly.
    pub compress: bool,
    /// The request has a `Range` header: the file is then never
    /// compressed on the fly, so that the range applies to bytes that
    /// exist (resumed downloads keep working).
    pub range: bool,
}

/// One representation of a file, opened: see [`select`].
#[derive(Debug)]
pub struct Representation {
    /// The bytes to send: the file, or its sibling.
    pub open: OpenFile,
    /// The type of the file asked for (a sibling's type is its original's).
    pub content_type: &'static str,
    /// How the bytes are coded.
    pub coding: Coding,
    /// Another request to the same URL might get another coding: the
    /// response says `Vary: Accept-Encoding`, whatever it sends.
    pub varies: bool,
}

/// Chooses and opens the representation of the regular file at `path`
/// (canonical, inside the canonical `root`) for a request. Blocking.
///
/// A sibling `path.br`, `path.zst` or `path.gz` counts when it is a
/// regular file inside `root` (a symlink may point elsewhere inside, not
/// outside) modified no earlier than the file: a copy older than its
/// file (the file was replaced since, by an upload say) would send
/// yesterday's content to the clients that accept its coding. Among the siblings the client accepts, its q-values choose
/// ([`Accepted::choose`]); else, with `--compress`, a compressible file of
/// at least [`COMPRESS_MIN_BYTES`] is compressed on the fly unless the
/// request asks for a range; else the file itself.
///
/// # Errors
///
/// The error of opening the file itself.
pub fn select(root: &Path, path: PathBuf, how: &Negotiation) -> io::Result<Representation> {
    let content_type = content_type(&path);
    let mut siblings: Vec<(Encoding, PathBuf, Option<SystemTime>)> = Encoding::ALL
        .iter()
        .filter_map(|&encoding| sibling(root, &path, encoding).map(|(p, t)| (encoding, p, t)))
        .collect();
    if !siblings.is_empty() {
        // Unknown times (a filesystem without them) do not rule one out.
        let file_modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        siblings.retain(|(encoding, _, modified)| match (modified, file_modified) {
            (Some(copy), Some(file)) if *copy < file => {
                // Not an error (a deploy may copy files in any order), but
                // why a precompressed copy is not used.
                tracing::debug!(
                    target: "hangup::serve",
                    suffix = encoding.suffix(),
                    "precompressed copy older than its file: not served"
                );
                false
            }
            _ => true,
        });
    }
    if let Some(encoding) = how.accepted.choose(siblings.iter().map(|(e, _, _)| *e)) {
        let chosen = siblings.iter().find(|(e, _, _)| *e == encoding);
        // A sibling removed since it was found: fall back to the file.
        if let Some(Ok(open)) = chosen.map(|(_, p, _)| OpenFile::open(p.clone())) {
            return Ok(Representation {
                open,
                content_type,
                coding: Coding::Stored(encoding),
                varies: true,
            });
        }
    }
    let open = OpenFile::open(path)?;
    let compressible =
        how.compress && is_compressible(content_type) && open.metadata.len() >= COMPRESS_MIN_BYTES;
    let coding = match how.accepted.choose(Encoding::ALL) {
        Some(encoding) if compressible && !how.range => Coding::OnTheFly(encoding),
        _ => Coding::Identity,
    };
    Ok(Representation {
        open,
        content_type,
        coding,
        varies: compressible || !siblings.is_empty(),
    })
}

/// The precompressed sibling of `path` for `encoding`, if it is a regular
/// file inside `root`, with when it was modified. Blocking.
fn sibling(root: &Path, path: &Path, encoding: Encoding) -> Option<(PathBuf, Option<SystemTime>)> {
    let mut name = OsString::from(path.as_os_str());
    name.push(encoding.suffix());
    let candidate = PathBuf::from(name);
    let link = std::fs::symlink_metadata(&candidate).ok()?;
    if link.file_type().is_symlink() {
        let target = std::fs::canonicalize(&candidate).ok()?;
        let metadata = std::fs::metadata(&target).ok()?;
        let inside = target.starts_with(root) && metadata.is_file();
        return inside.then(|| (target, metadata.modified().ok()));
    }
    link.is_file().then(|| (candidate, link.modified().ok()))
}

/// Answers a GET (`is_get`) or HEAD for `representation` with the
/// request's `headers`: 304 when the client's copy is current, 412 when a
/// precondition fails, 206 or 416 for a `Range`, else 200. Every answer
/// carries the representation's validators, `cache_control`, and `Vary:
/// Accept-Encoding` when another request might get another coding.
///
/// # Errors
///
/// [`hangup::Error::ClientGone`] when the client leaves mid-download;
/// [`hangup::Error::Io`] when reading the file fails (or it shrinks)
/// while it streams.
pub async fn send(
    headers: &HeaderMap,
    is_get: bool,
    cache_control: &HeaderValue,
    mut res: ResponseWriter,
    representation: Representation,
) -> Result<()> {
    let Representation {
        open,
        content_type,
        coding,
        varies,
    } = representation;
    let OpenFile { file, metadata, .. } = open;
    let len = metadata.len();
    let validators = match coding {
        Coding::Identity => Validators::of(&metadata),
        Coding::Stored(encoding) => Validators::of(&metadata).variant(encoding.token(), false),
        Coding::OnTheFly(encoding) => Validators::of(&metadata).variant(encoding.token(), true),
    };
    res.insert_header(ETAG, header_value(&validators.etag))?;
    if let Some(date) = validators.last_modified_header() {
        res.insert_header(LAST_MODIFIED, header_value(&date))?;
    }
    res.insert_header(CACHE_CONTROL, cache_control.clone())?;
    if varies {
        res.insert_header(VARY, HeaderValue::from_static("accept-encoding"))?;
    }
    match evaluate(Some(&validators), headers, true) {
        Precondition::Proceed => {}
        Precondition::NotModified => {
            // RFC 9110 §15.4.5: validators only, no body or content fields.
            res.set_status(StatusCode::NOT_MODIFIED)?;
            return Ok(());
        }
        Precondition::Failed => return precondition_failed(res).await,
    }
    res.insert_header(CONTENT_TYPE, HeaderValue::from_static(content_type))?;
    match coding {
        Coding::OnTheFly(encoding) => {
            // Ranges of bytes that are made afresh for each response would
            // not line up across requests: none are offered (a request
            // with a Range gets the file itself; see `Negotiation`).
            res.insert_header(ACCEPT_RANGES, HeaderValue::from_static("none"))?;
            res.insert_header(CONTENT_ENCODING, HeaderValue::from_static(encoding.token()))?;
            return compress::send(file, len, encoding, &mut res).await;
        }
        Coding::Stored(_) | Coding::Identity => {}
    }
    res.insert_header(ACCEPT_RANGES, HeaderValue::from_static("bytes"))?;
    // RFC 9110 §14.2: range handling is defined for GET only.
    let range = if is_get && validators.range_allowed(headers) {
        RangeRequest::parse(headers.get(RANGE).map(HeaderValue::as_bytes), len)
    } else {
        RangeRequest::Full
    };
    let (start, count) = match range {
        RangeRequest::Full => (0, len),
        RangeRequest::Partial { start, end } => {
            res.set_status(StatusCode::PARTIAL_CONTENT)?;
            let content_range = format!("bytes {start}-{end}/{len}");
            res.insert_header(CONTENT_RANGE, header_value(&content_range))?;
            (start, end - start + 1)
        }
        RangeRequest::Unsatisfiable => {
            res.set_status(StatusCode::RANGE_NOT_SATISFIABLE)?;
            res.insert_header(CONTENT_RANGE, header_value(&format!("bytes */{len}")))?;
            res.insert_header(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            )?;
            // The 416 body is a message, not the representation: no
            // Content-Encoding.
            return res.write_all(unsatisfiable_message(len).as_bytes()).await;
        }
    };
    if let Coding::Stored(encoding) = coding {
        res.insert_header(CONTENT_ENCODING, HeaderValue::from_static(encoding.token()))?;
    }
    res.insert_header(CONTENT_LENGTH, HeaderValue::from(count))?;
    if res.is_head() || count == 0 {
        return Ok(());
    }
    send_range(&mut res, file, start, count).await
}

/// Answers `412 Precondition Failed`, with a line that says which kind of
/// header to look at.
pub async fn precondition_failed(mut res: ResponseWriter) -> Result<()> {
    res.set_status(StatusCode::PRECONDITION_FAILED)?;
    res.insert_header(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    )?;
    res.insert_header(CACHE_CONTROL, HeaderValue::from_static("no-store"))?;
    res.write_all(
        b"412 Precondition Failed: If-Match, If-Unmodified-Since or If-None-Match \
          does not hold for the current version\n",
    )
    .await
}

/// Sends bytes `start..start + count` of `file` as the body: the one
/// place a stored file's bytes go to the socket. The library sends them
/// with `sendfile(2)` on plain TCP (the kernel copies from the page cache;
/// nothing passes through this process), with the same counters, write
/// timeout and hang-up behaviour as written bytes.
async fn send_range(res: &mut ResponseWriter, file: File, start: u64, count: u64) -> Result<()> {
    res.send_file(&file, start, count).await
}

/// Reads bytes `start..start + count` of a file in [`PIECE_BYTES`] pieces
/// on the blocking pool, one piece ahead of the caller.
#[derive(Debug)]
pub struct Pieces {
    /// The read in progress, if any bytes are left to read.
    reading: Option<PieceRead>,
    /// The piece handed out last (its buffer is reused after the next).
    current: Vec<u8>,
    /// Bytes not yet handed out.
    remaining: u64,
}

impl Pieces {
    /// Starts reading at `start`; [`next`](Self::next) yields `count`
    /// bytes in all.
    pub fn new(file: File, start: u64, count: u64) -> Pieces {
        let first = piece_len(count);
        Pieces {
            reading: (count > 0).then(|| read_piece(file, vec![0; first], first, Some(start))),
            current: Vec::new(),
            remaining: count,
        }
    }

    /// The next piece, `None` after the last.
    ///
    /// # Errors
    ///
    /// The read's error, and `UnexpectedEof` when the file ends early (it
    /// shrank while it was sent: the client then sees a short body and a
    /// closed connection, which is the truth).
    pub async fn next(&mut self) -> Result<Option<&[u8]>> {
        let Some(reading) = self.reading.take() else {
            return Ok(None);
        };
        let (file, buf, n) = reading.await.map_err(io::Error::other)??;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while it was being sent",
            )
            .into());
        }
        self.remaining -= n as u64;
        let spare = std::mem::replace(&mut self.current, buf);
        if self.remaining > 0 {
            let want = piece_len(self.remaining);
            self.reading = Some(read_piece(file, spare, want, None));
        }
        Ok(Some(&self.current[..n]))
    }
}

/// The length of the next piece with `remaining` bytes to go.
fn piece_len(remaining: u64) -> usize {
    remaining.min(PIECE_BYTES as u64) as usize
}

/// A piece being read: the file and buffer come back with the count.
type PieceRead = JoinHandle<io::Result<(File, Vec<u8>, usize)>>;

/// Starts reading up to `want` bytes (fewer only at the end of the file)
/// into `buf` on the blocking pool, after seeking to `seek` if given. The
/// read starts now, not when the handle is awaited.
fn read_piece(mut file: File, mut buf: Vec<u8>, want: usize, seek: Option<u64>) -> PieceRead {
    tokio::task::spawn_blocking(move || {
        if let Some(offset) = seek {
            file.seek(SeekFrom::Start(offset))?;
        }
        buf.resize(want.max(buf.len()), 0);
        let mut filled = 0;
        while filled < want {
            match file.read(&mut buf[filled..want]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        Ok((file, buf, filled))
    })
}

/// The body of a 416 for a file of `len` bytes: what it holds, and a
/// range that would be satisfied, if any (an empty file has none).
fn unsatisfiable_message(len: u64) -> String {
    match len.checked_sub(1) {
        Some(last) => {
            format!("416 Range Not Satisfiable: the file has {len} bytes; ask for bytes=0-{last}\n")
        }
        None => "416 Range Not Satisfiable: the file is empty, so no range of it exists; \
                 ask without a Range header\n"
            .to_owned(),
    }
}

/// A header value from text this module formatted (digits, quotes, an
/// HTTP date), which is always valid.
pub fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}
