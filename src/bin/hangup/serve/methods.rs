//! Request methods: which this server answers, and how it declines the
//! rest (RFC 9110 §9, §15.5.6, §15.6.2).
//!
//! A method this server implements but not for this resource or setup
//! (`DELETE`; `PUT` without `--upload`) is `405 Method Not Allowed` with
//! `Allow`, listing what would work. A method no registry or common
//! extension knows is `501 Not Implemented`: the server cannot tell what
//! it means, so it does not claim the resource refuses it. `OPTIONS`
//! answers with `Allow` and nothing else. The set in `Allow` is the same
//! for every path, so `OPTIONS` reveals nothing about what exists.

use hangup::http::{HeaderValue, Method};

/// What a request's method asks of this server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `GET` or `HEAD`: read a file or a listing.
    Read,
    /// `OPTIONS`: which methods are allowed (or a CORS preflight).
    Options,
    /// `PUT`: store the body at the path (`--upload`).
    Put,
    /// `POST`: a form upload to a directory (`--upload`).
    Post,
    /// A method this server knows and does not implement (`DELETE`,
    /// `PATCH`, `TRACE`, `CONNECT`, WebDAV's): 405.
    NotAllowed,
    /// A method this server does not know: 501.
    Unknown,
}

/// Methods known but not implemented: RFC 9110's, `PATCH` (RFC 5789),
/// and WebDAV's (RFC 4918), which file-sharing clients send.
const KNOWN: &[&str] = &[
    "DELETE",
    "CONNECT",
    "TRACE",
    "PATCH",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
    "QUERY",
];

/// Sorts `method`; `upload` says whether `PUT` and `POST` are enabled.
pub fn classify(method: &Method, upload: bool) -> Action {
    match method.as_str() {
        "GET" | "HEAD" => Action::Read,
        "OPTIONS" => Action::Options,
        "PUT" if upload => Action::Put,
        "POST" if upload => Action::Post,
        "PUT" | "POST" => Action::NotAllowed,
        other if KNOWN.contains(&other) => Action::NotAllowed,
        _ => Action::Unknown,
    }
}

/// The `Allow` value: what this server answers, given `upload`.
pub fn allow(upload: bool) -> HeaderValue {
    if upload {
        HeaderValue::from_static("GET, HEAD, OPTIONS, PUT, POST")
    } else {
        HeaderValue::from_static("GET, HEAD, OPTIONS")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn method(name: &str) -> Method {
        Method::from_bytes(name.as_bytes()).unwrap()
    }

    #[test]
    fn each_method_gets_its_answer() {
        for (name, upload, action) in [
            ("GET", false, Action::Read),
            ("HEAD", false, Action::Read),
            ("OPTIONS", false, Action::Options),
            ("PUT", false, Action::NotAllowed),
            ("PUT", true, Action::Put),
            ("POST", false, Action::NotAllowed),
            ("POST", true, Action::Post),
            ("DELETE", true, Action::NotAllowed),
            ("PROPFIND", false, Action::NotAllowed),
            ("BREW", false, Action::Unknown),
            ("get", false, Action::Unknown),
        ] {
            assert_eq!(classify(&method(name), upload), action, "{name} {upload}");
        }
        assert_eq!(allow(false), "GET, HEAD, OPTIONS");
        assert_eq!(allow(true), "GET, HEAD, OPTIONS, PUT, POST");
    }
}
