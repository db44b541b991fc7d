//! On-the-fly compression (`--compress`): a file's pieces through an
//! `async-compression` encoder, and the encoder's output to the client as
//! it comes.
//!
//! The length of the result is not known before the end, so the response
//! is chunked (close-delimited on HTTP/1.0), and it offers no ranges: the
//! bytes are made afresh for each response (a request with a `Range` gets
//! the file itself; see `files::Negotiation`). Memory stays bounded: one
//! piece of the file and the encoder's output for it, handed to the
//! socket and cleared before the next piece.
//!
//! Levels are chosen for speed, because the work happens per request on
//! the connection's task: Brotli 4 and gzip 6 compress text about as well
//! as gzip's default at a fraction of Brotli's maximum cost, zstd 3 is
//! its own default. Precompressed siblings (`app.js.br`, made once at
//! build time at the highest levels) are the way to the smallest files.

use std::fs::File;

use async_compression::Level;
use async_compression::tokio::write::{BrotliEncoder, GzipEncoder, ZstdEncoder};
use hangup::{ResponseWriter, Result};
use tokio::io::AsyncWriteExt;

use super::encoding::Encoding;
use super::files::Pieces;

/// Brotli's quality on the fly (0-11): see the module docs.
const BROTLI_LEVEL: i32 = 4;
/// gzip's level on the fly (1-9).
const GZIP_LEVEL: i32 = 6;
/// zstd's level on the fly (1-22): its default.
const ZSTD_LEVEL: i32 = 3;

/// One of the three encoders, writing into memory. Brotli's state is
/// large (5.6 KiB), so it lives on the heap like the others' does.
enum Encoder {
    Brotli(Box<BrotliEncoder<Vec<u8>>>),
    Zstd(ZstdEncoder<Vec<u8>>),
    Gzip(GzipEncoder<Vec<u8>>),
}

impl Encoder {
    fn new(encoding: Encoding) -> Encoder {
        let out = Vec::new();
        match encoding {
            Encoding::Brotli => Encoder::Brotli(Box::new(BrotliEncoder::with_quality(
                out,
                Level::Precise(BROTLI_LEVEL),
            ))),
            Encoding::Zstd => {
                Encoder::Zstd(ZstdEncoder::with_quality(out, Level::Precise(ZSTD_LEVEL)))
            }
            Encoding::Gzip => {
                Encoder::Gzip(GzipEncoder::with_quality(out, Level::Precise(GZIP_LEVEL)))
            }
        }
    }

    /// Compresses `input`. Writing into a `Vec` never waits.
    async fn write_all(&mut self, input: &[u8]) -> std::io::Result<()> {
        match self {
            Encoder::Brotli(e) => e.write_all(input).await,
            Encoder::Zstd(e) => e.write_all(input).await,
            Encoder::Gzip(e) => e.write_all(input).await,
        }
    }

    /// Ends the stream: the coding's last block and trailer.
    async fn shutdown(&mut self) -> std::io::Result<()> {
        match self {
            Encoder::Brotli(e) => e.shutdown().await,
            Encoder::Zstd(e) => e.shutdown().await,
            Encoder::Gzip(e) => e.shutdown().await,
        }
    }

    /// The compressed bytes produced so far and not yet taken.
    fn output(&mut self) -> &mut Vec<u8> {
        match self {
            Encoder::Brotli(e) => e.get_mut(),
            Encoder::Zstd(e) => e.get_mut(),
            Encoder::Gzip(e) => e.get_mut(),
        }
    }
}

/// Sends the `len` bytes of `file` compressed with `encoding` as the body
/// (status and headers already set, no `Content-Length`). A HEAD request
/// compresses too, so that its head says what a GET's would (the writer
/// counts the bytes and sends none).
///
/// # Errors
///
/// [`hangup::Error::ClientGone`] when the client leaves; the file's read
/// errors (and a file that shrinks while it is sent), as
/// [`hangup::Error::Io`].
pub async fn send(
    file: File,
    len: u64,
    encoding: Encoding,
    res: &mut ResponseWriter,
) -> Result<()> {
    let mut encoder = Encoder::new(encoding);
    let mut pieces = Pieces::new(file, 0, len);
    while let Some(piece) = pieces.next().await? {
        encoder.write_all(piece).await?;
        let out = encoder.output();
        if !out.is_empty() {
            res.write_all(out).await?;
            out.clear();
        }
    }
    encoder.shutdown().await?;
    let out = encoder.output();
    res.write_all(out).await
}
