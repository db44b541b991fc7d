//! HTTP Basic authentication (RFC 7617) for `--auth user:password`, or
//! `--auth-file FILE` with that line in a file (a command line is
//! readable by every user of the machine; a file can be private).
//!
//! One account. The credentials a request carries are compared with it in
//! time that does not depend on how many of their bytes are right (with
//! `subtle`), so timing a server does not reveal a password byte by byte.
//! Basic sends the password readable to anyone on the path: on anything
//! but loopback or a trusted network, put TLS in front.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hangup::http::header::AUTHORIZATION;
use hangup::http::{HeaderMap, HeaderValue};
use subtle::{Choice, ConstantTimeEq};

/// The realm browsers show in their login prompt; `charset` says the
/// password is UTF-8 (RFC 7617 §2.1).
pub const CHALLENGE: &str = "Basic realm=\"hangup serve\", charset=\"UTF-8\"";

/// The one account `--auth` allows.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    user: String,
    password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password, not even in a debug print.
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Parses `user:password` (the user cannot hold a `:`; the password
    /// can).
    ///
    /// # Errors
    ///
    /// A message for `--auth` when there is no `:` or the user is empty.
    pub fn parse(text: &str) -> Result<Credentials, String> {
        match text.split_once(':') {
            Some((user, password)) if !user.is_empty() => Ok(Credentials {
                user: user.to_owned(),
                password: password.to_owned(),
            }),
            _ => Err("expected USER:PASSWORD, e.g. --auth alice:s3cret".to_owned()),
        }
    }

    /// Reads `user:password` from the first line of the file at `path`
    /// (`--auth-file`); the line break that ends it is not part of the
    /// password.
    ///
    /// # Errors
    ///
    /// A message for `--auth-file` when the file cannot be read, is larger
    /// than 4 KiB, or its first line is not `USER:PASSWORD`. It names the
    /// file, never its contents.
    pub fn read_file(path: &str) -> Result<Credentials, String> {
        /// Far more than one line of credentials: a larger file is the
        /// wrong file.
        const MAX_BYTES: u64 = 4096;
        let fail = |what: &str| format!("{path}: {what}");
        let file = std::fs::File::open(path).map_err(|err| fail(&err.to_string()))?;
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::Read::take(file, MAX_BYTES + 1), &mut text)
            .map_err(|err| fail(&err.to_string()))?;
        if text.len() as u64 > MAX_BYTES {
            return Err(fail("larger than 4 KiB: not a USER:PASSWORD line"));
        }
        let line = text.lines().next().unwrap_or("");
        Credentials::parse(line)
            .map_err(|_| fail("the first line is not USER:PASSWORD (e.g. alice:s3cret)"))
    }

    /// The user name, for the access log of an authenticated request.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// True when `headers` carry `Authorization: Basic` with this
    /// account's user and password.
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(given) = headers.get(AUTHORIZATION).and_then(basic_token) else {
            return false;
        };
        let Some((user, password)) = split(&given) else {
            return false;
        };
        bool::from(same(self.user.as_bytes(), user) & same(self.password.as_bytes(), password))
    }

    /// The `WWW-Authenticate` value of a 401.
    pub fn challenge() -> HeaderValue {
        HeaderValue::from_static(CHALLENGE)
    }
}

/// The decoded token of `Basic <token>` (scheme case-insensitive).
fn basic_token(value: &HeaderValue) -> Option<Vec<u8>> {
    let text = value.to_str().ok()?.trim();
    let (scheme, token) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    STANDARD.decode(token.trim()).ok()
}

/// `user:password` at the first `:`.
fn split(decoded: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some((&decoded[..colon], &decoded[colon + 1..]))
}

/// `expected == given`, in time that depends on the lengths only, never
/// on where the first difference is.
fn same(expected: &[u8], given: &[u8]) -> Choice {
    let mut equal = (expected.len() as u64).ct_eq(&(given.len() as u64));
    for (i, byte) in expected.iter().enumerate() {
        // Past the end of `given`, compare with 0: the lengths already
        // differ, and the loop still runs over every expected byte.
        let other = given.get(i).copied().unwrap_or(0);
        equal &= byte.ct_eq(&other);
    }
    equal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(authorization: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(authorization).unwrap());
        headers
    }

    fn basic(pair: &str) -> HeaderMap {
        headers(&format!("Basic {}", STANDARD.encode(pair)))
    }

    #[test]
    fn only_the_exact_account_is_admitted() {
        let account = Credentials::parse("alice:pa:ss").unwrap();
        assert!(account.admits(&basic("alice:pa:ss")));
        assert!(account.admits(&headers(&format!(
            "basic  {}",
            STANDARD.encode("alice:pa:ss")
        ))));
        for wrong in [
            "alice:pa:s",
            "alice:pa:sss",
            "alic:pa:ss",
            "alice:",
            ":pa:ss",
            "alice",
        ] {
            assert!(!account.admits(&basic(wrong)), "{wrong}");
        }
        assert!(!account.admits(&headers("Bearer abc")));
        assert!(!account.admits(&headers("Basic !!!")));
        assert!(!account.admits(&HeaderMap::new()));
    }

    #[test]
    fn parse_needs_a_user_and_a_colon() {
        assert!(Credentials::parse("alice").is_err());
        assert!(Credentials::parse(":secret").is_err());
        assert_eq!(Credentials::parse("bob:").unwrap().user(), "bob");
        assert!(!format!("{:?}", Credentials::parse("bob:hunter2").unwrap()).contains("hunter2"));
    }

    #[test]
    fn a_file_gives_its_first_line_and_never_shows_it_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
        std::fs::write(path("crlf"), "carol:pa ss\r\nignored\n").unwrap();
        let account = Credentials::read_file(&path("crlf")).unwrap();
        assert!(account.admits(&basic("carol:pa ss")));
        std::fs::write(path("bare"), "dave:x").unwrap();
        assert_eq!(
            Credentials::read_file(&path("bare")).unwrap().user(),
            "dave"
        );
        std::fs::write(path("no-colon"), "hunter2\n").unwrap();
        std::fs::write(path("large"), "a:".to_owned() + &"b".repeat(5000)).unwrap();
        for name in ["no-colon", "large", "missing"] {
            let err = Credentials::read_file(&path(name)).unwrap_err();
            assert!(err.starts_with(&path(name)), "{err}");
            assert!(!err.contains("hunter2") && !err.contains("bbb"), "{err}");
        }
    }

    #[test]
    fn comparison_is_by_value() {
        assert!(bool::from(same(b"abc", b"abc")));
        assert!(!bool::from(same(b"abc", b"abd")));
        assert!(!bool::from(same(b"abc", b"ab")));
        assert!(!bool::from(same(b"abc", b"abc\0")));
        assert!(bool::from(same(b"", b"")));
    }
}
