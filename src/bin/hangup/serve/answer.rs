//! Short answers that are not files: errors, redirects and the results of
//! uploads, each a status and one line of plain text that says why.
//!
//! None of them may be stored by a cache (`Cache-Control: no-store`): an
//! error or an upload's result describes one moment (the file may exist a
//! second later), and a 404 or 405 would otherwise be cached by heuristic
//! (RFC 9111 §4.2.2).

use hangup::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use hangup::http::{HeaderValue, StatusCode};
use hangup::{ResponseWriter, Result};

/// `Cache-Control` of every answer here.
pub const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");

/// Answers `status` with a one-line plain-text body: the status, its
/// reason and `why`.
///
/// # Errors
///
/// The writer's errors (the client gone, mostly).
pub async fn error(mut res: ResponseWriter, status: StatusCode, why: &str) -> Result<()> {
    let reason = status.canonical_reason().unwrap_or("");
    let body = format!("{} {reason}: {why}\n", status.as_u16());
    text(&mut res, status, &body).await
}

/// Answers `status` with `body` as plain UTF-8 text, not to be stored.
///
/// # Errors
///
/// The writer's errors.
pub async fn text(res: &mut ResponseWriter, status: StatusCode, body: &str) -> Result<()> {
    res.set_status(status)?;
    res.insert_header(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    )?;
    res.insert_header(CACHE_CONTROL, NO_STORE)?;
    res.write_all(body.as_bytes()).await
}

/// Answers `status` (a 3xx) to `location`, a path built from decoded,
/// re-encoded names (never the request's own text). Not stored either: a
/// directory may become a file, and a redirect has no validator to
/// revalidate with.
///
/// # Errors
///
/// The writer's errors; [`hangup::Error::Io`] if `location` is not a
/// valid field value (it always is, being percent-encoded).
pub async fn redirect(mut res: ResponseWriter, status: StatusCode, location: &str) -> Result<()> {
    let value = HeaderValue::from_str(location).map_err(std::io::Error::other)?;
    res.set_status(status)?;
    res.insert_header(LOCATION, value)?;
    res.insert_header(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    )?;
    res.insert_header(CACHE_CONTROL, NO_STORE)?;
    let reason = status.canonical_reason().unwrap_or("");
    let body = format!("{} {reason}: see {location}\n", status.as_u16());
    res.write_all(body.as_bytes()).await
}
