//! Cross-origin reads (`--cors`): pages on other origins may fetch these
//! files with `fetch()` (the Fetch standard's CORS protocol).
//!
//! Every response says `Access-Control-Allow-Origin: *` and exposes the
//! fields a downloader needs. A preflight (`OPTIONS` with `Origin` and
//! `Access-Control-Request-Method`) is answered for reads only: a page on
//! another origin may read, never upload. With `*`, browsers send no
//! credentials: a server behind `--auth` stays closed to other origins'
//! scripts, as it should.

use hangup::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN,
};
use hangup::http::{HeaderMap, HeaderValue};
use hangup::{ResponseWriter, Result};

/// Request fields a cross-origin reader may send beyond the safelisted
/// ones: ranges and revalidation.
const ALLOWED_HEADERS: &str = "Range, If-None-Match, If-Modified-Since, If-Match, \
                               If-Unmodified-Since, If-Range";

/// Response fields a cross-origin reader may see beyond the safelisted
/// ones.
const EXPOSED_HEADERS: &str = "Content-Length, Content-Range, Content-Encoding, Accept-Ranges, \
                               ETag, Last-Modified";

/// How long a browser may reuse a preflight's answer, in seconds: ten
/// minutes, Chromium's own cap (Firefox allows a day).
const MAX_AGE_SECONDS: u32 = 600;

/// True for a CORS preflight: `OPTIONS` (checked by the caller) with
/// `Origin` and `Access-Control-Request-Method`.
pub fn is_preflight(headers: &HeaderMap) -> bool {
    headers.contains_key(ORIGIN) && headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD)
}

/// Adds the fields every response carries under `--cors`.
///
/// # Errors
///
/// [`hangup::Error::HeadCommitted`] if the head is already out.
pub fn allow_reads(res: &mut ResponseWriter) -> Result<()> {
    res.insert_header(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"))?;
    res.insert_header(
        ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSED_HEADERS),
    )
}

/// Adds the fields of a preflight's answer (the caller sends it as 204).
///
/// # Errors
///
/// [`hangup::Error::HeadCommitted`] if the head is already out.
pub fn answer_preflight(res: &mut ResponseWriter) -> Result<()> {
    res.insert_header(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, HEAD, OPTIONS"),
    )?;
    res.insert_header(
        ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(ALLOWED_HEADERS),
    )?;
    res.insert_header(ACCESS_CONTROL_MAX_AGE, HeaderValue::from(MAX_AGE_SECONDS))
}
