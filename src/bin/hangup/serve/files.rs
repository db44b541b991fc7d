//! Sending one regular file: validators, `304`, one byte range (`206`,
//! `416`), and the body streamed from disk in pieces.
//!
//! The body is never loaded whole. It is read in [`PIECE_BYTES`] pieces on
//! tokio's blocking pool (the crate's tokio has no `fs` feature, and a
//! disk read must not stall the connection tasks), with the next piece
//! read while the current one is written. The response carries an
//! explicit `Content-Length`, so it is never chunked; each piece is larger
//! than the writer's buffer, so it goes to the socket without a copy.
//! Once the client is gone, the next write fails at once and the download
//! stops: the access log then shows 499 with what was written and acked.

use std::fs::{File, Metadata};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;

use hangup::http::header::{
    ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, LAST_MODIFIED, RANGE,
};
use hangup::http::{HeaderMap, HeaderValue, StatusCode};
use hangup::{ResponseWriter, Result};
use tokio::task::JoinHandle;

use super::conditional::Validators;
use super::mime::content_type;
use super::ranges::RangeRequest;

/// Bytes read from disk per step: big enough that a step's syscalls and
/// blocking-pool hop are cheap next to its copy, small enough that a
/// thousand concurrent downloads hold 128 MiB at most (two pieces each).
pub const PIECE_BYTES: usize = 64 * 1024;

/// A file opened for sending, with the metadata of the open handle.
#[derive(Debug)]
pub struct OpenFile {
    /// The open file.
    pub file: File,
    /// Its metadata, from the handle (not the path, which may change).
    pub metadata: Metadata,
    /// Its canonical path, for the content type.
    pub path: PathBuf,
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
        Ok(OpenFile {
            file,
            metadata,
            path,
        })
    }
}

/// Answers a GET (`is_get`) or HEAD for `open` with the request's
/// `headers`: 304 when the client's copy is current, 206 or 416 for a
/// `Range`, else 200.
///
/// # Errors
///
/// [`hangup::Error::ClientGone`] when the client leaves mid-download;
/// [`hangup::Error::Io`] when reading the file fails (or it shrinks)
/// while it streams.
pub async fn send(
    headers: &HeaderMap,
    is_get: bool,
    mut res: ResponseWriter,
    open: OpenFile,
) -> Result<()> {
    let OpenFile {
        file,
        metadata,
        path,
    } = open;
    let len = metadata.len();
    let validators = Validators::of(&metadata);
    res.insert_header(ETAG, header_value(&validators.etag))?;
    if let Some(date) = validators.last_modified_header() {
        res.insert_header(LAST_MODIFIED, header_value(&date))?;
    }
    if validators.is_not_modified(headers) {
        // RFC 9110 §15.4.5: validators only, no body or content fields.
        res.set_status(StatusCode::NOT_MODIFIED)?;
        return Ok(());
    }
    res.insert_header(ACCEPT_RANGES, HeaderValue::from_static("bytes"))?;
    res.insert_header(CONTENT_TYPE, HeaderValue::from_static(content_type(&path)))?;
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
            return res.write_all(unsatisfiable_message(len).as_bytes()).await;
        }
    };
    res.insert_header(CONTENT_LENGTH, HeaderValue::from(count))?;
    if res.is_head() || count == 0 {
        return Ok(());
    }
    stream(file, start, count, &mut res).await
}

/// Writes bytes `start..start + count` of `file`, reading the next piece
/// while the current one is written.
async fn stream(file: File, start: u64, count: u64, res: &mut ResponseWriter) -> Result<()> {
    let piece = |remaining: u64| remaining.min(PIECE_BYTES as u64) as usize;
    let mut spare = vec![0u8; piece(count)];
    let mut reading = Some(read_piece(
        file,
        vec![0u8; piece(count)],
        piece(count),
        Some(start),
    ));
    let mut remaining = count;
    while let Some(read) = reading.take() {
        let (file, buf, n) = read.await.map_err(io::Error::other)??;
        if n == 0 {
            // The file shrank: the client will see a short body and a
            // closed connection, which is the truth.
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while it was being sent",
            )
            .into());
        }
        remaining -= n as u64;
        if remaining > 0 {
            let next = std::mem::take(&mut spare);
            reading = Some(read_piece(file, next, piece(remaining), None));
        }
        res.write_all(&buf[..n]).await?;
        spare = buf;
    }
    Ok(())
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
fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}
