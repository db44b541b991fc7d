//! Request path to file path: the one place that decides whether a request
//! may touch a file, and the reason `serve` never leaves its root.
//!
//! Two steps, each with its own guarantee:
//!
//! 1. [`SitePath::parse`] is pure. It splits the request path on `/`
//!    *before* percent-decoding, decodes each segment, and keeps only plain
//!    names: empty and `.` segments are dropped, and a segment that decodes
//!    to `..`, or that contains a `/` (`%2f`) or a NUL (`%00`), is refused.
//!    Names are bytes, as Unix file names are: a name that is not UTF-8
//!    (`%FF`) can be listed and served; elsewhere it is refused.
//!    The result is relative by construction: it cannot hold a root, a
//!    drive prefix or a parent step, so `//etc/passwd` becomes
//!    `etc/passwd` under the root.
//! 2. [`resolve`] joins those names to the (canonical) root, canonicalizes
//!    the result (which follows every symlink) and requires it to start
//!    with the root. A symlink pointing outside is refused here, whatever
//!    the request looked like.
//!
//! Step 2 alone would be enough for safety; step 1 makes the answers clear
//! (400 for malformed paths, 403 for attempts to climb out) and keeps the
//! file system from ever seeing a `..`.

use std::fmt::Write as _;
use std::fs::Metadata;
use std::io;
use std::path::{Component, Path, PathBuf};

use hangup::http::StatusCode;

/// A request path reduced to plain names below the served root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SitePath {
    /// Decoded names, each a single normal path component: bytes, as
    /// Unix file names are (UTF-8 only elsewhere).
    segments: Vec<Vec<u8>>,
    /// The request path ended in `/` (a directory was asked for).
    trailing_slash: bool,
}

/// Why a request path was refused before touching the file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// Not an origin-form path, a bad `%` escape, invalid UTF-8, or a NUL
    /// byte: no file can have this name (400).
    Malformed(&'static str),
    /// A `..` segment (plain or encoded) or an encoded separator: an
    /// attempt to climb out of the root (403).
    Forbidden(&'static str),
}

impl PathError {
    /// The status to answer with.
    pub fn status(self) -> StatusCode {
        match self {
            PathError::Malformed(_) => StatusCode::BAD_REQUEST,
            PathError::Forbidden(_) => StatusCode::FORBIDDEN,
        }
    }

    /// A short explanation for the response body.
    pub fn reason(self) -> &'static str {
        match self {
            PathError::Malformed(reason) | PathError::Forbidden(reason) => reason,
        }
    }
}

impl SitePath {
    /// Parses the path part of a request target (`Uri::path`, no query).
    ///
    /// # Errors
    ///
    /// [`PathError::Malformed`] for a path that does not start with `/`, a
    /// `%` not followed by two hex digits, a NUL, or (outside Unix, where
    /// file names are not bytes) bytes that are not UTF-8 once decoded;
    /// [`PathError::Forbidden`] for a segment that decodes to `..` or
    /// contains a `/` or (where it is a separator) `\`.
    pub fn parse(path: &str) -> Result<SitePath, PathError> {
        let Some(rest) = path.strip_prefix('/') else {
            return Err(PathError::Malformed("the path must start with /"));
        };
        let mut segments = Vec::new();
        // Split first, decode second: `%2f` must never become a separator.
        for raw in rest.split('/') {
            let segment = decode_segment(raw)?;
            match segment.as_slice() {
                b"" | b"." => continue,
                b".." => return Err(PathError::Forbidden("the path climbs out with ..")),
                _ => {}
            }
            if segment.contains(&0) {
                return Err(PathError::Malformed("the path contains a NUL byte"));
            }
            if segment.contains(&b'/') || !is_single_name(&segment) {
                return Err(PathError::Forbidden(
                    "the path hides a separator inside a name (%2f)",
                ));
            }
            segments.push(segment);
        }
        Ok(SitePath {
            segments,
            trailing_slash: path.ends_with('/'),
        })
    }

    /// The root, `/`.
    pub fn root() -> SitePath {
        SitePath {
            segments: Vec::new(),
            trailing_slash: true,
        }
    }

    /// True for the root itself.
    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }

    /// True when the request path ended in `/`.
    pub fn has_trailing_slash(&self) -> bool {
        self.trailing_slash
    }

    /// This path with one more name, a plain file name such as
    /// `index.html` (no separators, not `..`).
    pub fn child(&self, name: &str) -> SitePath {
        debug_assert!(is_single_name(name.as_bytes()) && name != "..");
        let mut segments = self.segments.clone();
        segments.push(name.as_bytes().to_vec());
        SitePath {
            segments,
            trailing_slash: false,
        }
    }

    /// The decoded names, in order.
    pub fn segments(&self) -> impl Iterator<Item = &[u8]> {
        self.segments.iter().map(Vec::as_slice)
    }

    /// The last name, if any (none for the root).
    pub fn file_name(&self) -> Option<&[u8]> {
        self.segments.last().map(Vec::as_slice)
    }

    /// This path without its last name (the root stays the root), as a
    /// directory.
    pub fn parent(&self) -> SitePath {
        let mut segments = self.segments.clone();
        segments.pop();
        SitePath {
            segments,
            trailing_slash: true,
        }
    }

    /// The names as a relative path: only [`Component::Normal`] parts.
    pub fn to_relative(&self) -> PathBuf {
        self.segments.iter().map(|s| name_os(s)).collect()
    }

    /// The decoded path as bytes, `/` first, `/` last for a directory
    /// (`dir`): for logs, through `hangup::Escaped`.
    pub fn display_bytes(&self, dir: bool) -> Vec<u8> {
        let mut out = vec![b'/'];
        for segment in &self.segments {
            out.extend_from_slice(segment);
            out.push(b'/');
        }
        if !dir && !self.segments.is_empty() {
            out.pop();
        }
        out
    }

    /// The decoded path as people read it ([`display_bytes`](Self::display_bytes)
    /// with bytes that are not UTF-8 shown as `\xNN`): for page titles.
    /// Needs HTML escaping.
    pub fn display(&self, dir: bool) -> String {
        readable(&self.display_bytes(dir))
    }

    /// The canonical URL path (every name percent-encoded, `/` first, and
    /// `/` last for a directory when `dir`): for redirects. Built from the
    /// decoded names, never from the request, so `//evil.example` cannot
    /// turn into a protocol-relative `Location`.
    pub fn href(&self, dir: bool) -> String {
        let mut out = String::from("/");
        for (i, segment) in self.segments.iter().enumerate() {
            if i > 0 {
                out.push('/');
            }
            push_encoded(&mut out, segment);
        }
        if dir && !self.segments.is_empty() {
            out.push('/');
        }
        out
    }
}

/// Percent-decodes one segment into bytes (UTF-8 only where file names
/// are not bytes).
fn decode_segment(raw: &str) -> Result<Vec<u8>, PathError> {
    if !raw.contains('%') {
        return Ok(raw.as_bytes().to_vec());
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| {
                let h = std::str::from_utf8(h).ok()?;
                if h.bytes().all(|b| b.is_ascii_hexdigit()) {
                    u8::from_str_radix(h, 16).ok()
                } else {
                    None
                }
            });
            let Some(byte) = hex else {
                return Err(PathError::Malformed(
                    "the path has a % not followed by two hex digits",
                ));
            };
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    if cfg!(not(unix)) && std::str::from_utf8(&out).is_err() {
        return Err(PathError::Malformed("the path is not UTF-8 once decoded"));
    }
    Ok(out)
}

/// A name as the platform's file names are: the bytes themselves on Unix;
/// elsewhere UTF-8 (which [`decode_segment`] made sure of).
pub fn name_os(name: &[u8]) -> std::ffi::OsString {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt;
        std::ffi::OsString::from_vec(name.to_vec())
    }
    #[cfg(not(unix))]
    {
        String::from_utf8_lossy(name).into_owned().into()
    }
}

/// A file name's bytes: the bytes themselves on Unix; elsewhere its UTF-8
/// (lossy for names that are not).
pub fn os_bytes(name: &std::ffi::OsStr) -> Vec<u8> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        name.as_bytes().to_vec()
    }
    #[cfg(not(unix))]
    {
        name.to_string_lossy().into_owned().into_bytes()
    }
}

/// `bytes` as text for people: UTF-8 as is, every byte of an invalid
/// sequence as `\xNN`, so two different names never look the same (a
/// `\` in a name is shown as is; `\xNN` is then ambiguous only with a
/// name that spells it out, which the link still tells apart).
pub fn readable(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for byte in chunk.invalid() {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\x{byte:02X}");
        }
    }
    out
}

/// True when `name` is one normal component on this platform: no root, no
/// prefix (`C:` on Windows), no separator (`\` on Windows).
fn is_single_name(name: &[u8]) -> bool {
    let os = name_os(name);
    let mut components = Path::new(&os).components();
    matches!(
        (components.next(), components.next()),
        (Some(Component::Normal(part)), None) if part == os
    )
}

/// Appends `name` percent-encoded: every byte but RFC 3986's unreserved
/// characters, so the result is safe in a path, an `href` and a
/// `Location` (a `:` can never be read as a URL scheme).
pub fn push_encoded(out: &mut String, name: &[u8]) {
    for &byte in name {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{byte:02X}");
        }
    }
}

/// What a request path names, once found inside the root.
#[derive(Debug)]
pub struct Resolved {
    /// The canonical path: inside the root, every symlink followed.
    pub path: PathBuf,
    /// Its metadata (of the symlink's target, not the link).
    pub metadata: Metadata,
}

/// Why a [`SitePath`] names nothing that may be served; [`classify`]
/// sorts file-system errors into these.
#[derive(Debug)]
pub enum ResolveError {
    /// No file by that name (404): nothing there, a name below a file, a
    /// name too long for the file system, or a symlink cycle.
    NotFound,
    /// It exists but leads outside the root (a symlink), or may not be
    /// read (403).
    Forbidden,
    /// Any other failure of the file system (500): the server's trouble,
    /// not the client's mistake.
    Io(io::Error),
}

/// Finds `path` below `root`, which must be canonical
/// ([`std::fs::canonicalize`]). Blocking: call it off the runtime.
///
/// # Errors
///
/// [`ResolveError::Forbidden`] when the canonical path is not inside
/// `root`; [`ResolveError::NotFound`] when a file is asked for with a
/// trailing `/`; a file-system error as [`classify`] sorts it.
pub fn resolve(root: &Path, path: &SitePath) -> Result<Resolved, ResolveError> {
    let joined = root.join(path.to_relative());
    let canonical = std::fs::canonicalize(&joined).map_err(classify)?;
    if !canonical.starts_with(root) {
        return Err(ResolveError::Forbidden);
    }
    let metadata = std::fs::metadata(&canonical).map_err(classify)?;
    if path.trailing_slash && !metadata.is_dir() {
        // `file.txt/` names a directory that is not there, as in POSIX.
        return Err(ResolveError::NotFound);
    }
    Ok(Resolved {
        path: canonical,
        metadata,
    })
}

/// True when `path` (a directory entry below `root`, possibly a symlink)
/// leads to something inside `root`. For listings, which hide the rest.
pub fn stays_inside(root: &Path, path: &Path) -> bool {
    std::fs::canonicalize(path).is_ok_and(|canonical| canonical.starts_with(root))
}

/// Sorts a file-system error into what the client is told: the one place
/// where an errno becomes a status, for resolving, opening and listing
/// alike.
///
/// | errno | answer | why |
/// |---|---|---|
/// | `ENOENT`, `ENOTDIR` | 404 [`NotFound`](ResolveError::NotFound) | no such name, or a name below a file |
/// | `ENAMETOOLONG` | 404 `NotFound` | a name over the file system's limit (`NAME_MAX`, 255 bytes on most) or a path over `PATH_MAX` cannot name a file; nginx answers 404 too |
/// | `ELOOP` | 404 `NotFound` | a symlink cycle, or a chain longer than the kernel follows (40 links on Linux): it leads to no file (nginx's 403 for `ELOOP` is its `disable_symlinks` refusing a link; here links are followed and those leading out are refused by the root check) |
/// | `EACCES`, `EPERM` | 403 [`Forbidden`](ResolveError::Forbidden) | it is there, but this process may not read it |
/// | any other (`EMFILE`, `EIO`, `ENOMEM`, ...) | 500 [`Io`](ResolveError::Io) | the server's own trouble, worth a warning |
///
/// An error without an errno (one this program made, such as a file that
/// stopped being a regular file after it was resolved) is sorted by its
/// [`io::ErrorKind`] the same way: `NotFound` and `NotADirectory` are 404,
/// `PermissionDenied` is 403, the rest 500.
pub fn classify(err: io::Error) -> ResolveError {
    #[cfg(unix)]
    if let Some(errno) = err.raw_os_error() {
        return match errno {
            libc::ENOENT | libc::ENOTDIR | libc::ENAMETOOLONG | libc::ELOOP => {
                ResolveError::NotFound
            }
            libc::EACCES | libc::EPERM => ResolveError::Forbidden,
            _ => ResolveError::Io(err),
        };
    }
    match err.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => ResolveError::NotFound,
        io::ErrorKind::PermissionDenied => ResolveError::Forbidden,
        _ => ResolveError::Io(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(path: &str) -> Result<SitePath, PathError> {
        SitePath::parse(path)
    }

    fn names(path: &str) -> Vec<String> {
        parse(path)
            .expect("accepted")
            .segments
            .into_iter()
            .map(|s| String::from_utf8(s).expect("UTF-8"))
            .collect()
    }

    #[test]
    fn plain_paths_become_names() {
        assert_eq!(names("/"), Vec::<String>::new());
        assert_eq!(names("/a/b.txt"), ["a", "b.txt"]);
        assert_eq!(names("/a%20b/%C3%A9"), ["a b", "é"]);
        assert!(parse("/dir/").unwrap().has_trailing_slash());
        assert!(!parse("/dir").unwrap().has_trailing_slash());
    }

    #[test]
    fn empty_and_dot_segments_vanish_so_absolute_paths_stay_below_the_root() {
        assert_eq!(names("//etc/passwd"), ["etc", "passwd"]);
        assert_eq!(names("/./a/.//b"), ["a", "b"]);
        assert_eq!(names("/%2e/a"), ["a"]);
    }

    #[test]
    fn parent_segments_are_forbidden_in_every_spelling() {
        for path in [
            "/..",
            "/../etc/passwd",
            "/a/../../b",
            "/%2e%2e/x",
            "/%2E%2E/x",
            "/.%2e/x",
            "/%2e./x",
            "/a/..",
        ] {
            assert!(
                matches!(parse(path), Err(PathError::Forbidden(_))),
                "{path} was {:?}",
                parse(path)
            );
        }
    }

    #[test]
    fn encoded_separators_are_forbidden() {
        for path in ["/..%2fetc", "/a%2f..%2f..%2fetc", "/%2F", "/a%2Fb"] {
            assert!(
                matches!(parse(path), Err(PathError::Forbidden(_))),
                "{path}"
            );
        }
    }

    #[test]
    fn malformed_paths_are_bad_requests() {
        for path in ["", "*", "a/b", "/%", "/%4", "/%zz", "/%00", "/a%00.html"] {
            assert!(
                matches!(parse(path), Err(PathError::Malformed(_))),
                "{path:?}"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn names_that_are_not_utf8_are_bytes_shown_escaped() {
        let site = parse("/a%FF%FEb/").unwrap();
        assert_eq!(site.segments, [b"a\xff\xfeb".to_vec()]);
        assert_eq!(site.display(true), "/a\\xFF\\xFEb/");
        assert_eq!(site.href(true), "/a%FF%FEb/");
        assert_eq!(readable(b"caf\xc3\xa9\xff"), "caf\u{e9}\\xFF");
    }

    #[test]
    fn href_encodes_every_name_and_never_starts_with_two_slashes() {
        let path = parse("//evil.example/a%20b").unwrap();
        assert_eq!(path.href(false), "/evil.example/a%20b");
        assert_eq!(path.href(true), "/evil.example/a%20b/");
        assert_eq!(parse("/").unwrap().href(true), "/");
        let mut out = String::new();
        push_encoded(&mut out, b"a<b>&\"c:d.txt");
        assert_eq!(out, "a%3Cb%3E%26%22c%3Ad.txt");
    }

    #[test]
    fn display_is_decoded() {
        assert_eq!(parse("/a%20b/c").unwrap().display(true), "/a b/c/");
        assert_eq!(parse("/a%20b/c").unwrap().display(false), "/a b/c");
        assert_eq!(parse("/").unwrap().display(true), "/");
    }

    /// A scratch directory tree, removed on drop:
    ///
    /// ```text
    /// base/outside/secret.txt
    /// base/root/a.txt
    /// base/root/sub/b.txt
    /// base/root/sub/up      -> ../..            (escapes)
    /// base/root/sub/in      -> ../a.txt         (stays inside)
    /// base/root/out         -> ../outside       (escapes)
    /// base/root/outfile     -> ../outside/secret.txt
    /// base/root/abs         -> /etc             (escapes)
    /// base/root/loop        -> loop             (a cycle)
    /// ```
    struct Tree {
        base: PathBuf,
        root: PathBuf,
    }

    impl Tree {
        fn new(name: &str) -> Tree {
            let base = std::env::temp_dir()
                .join(format!("hangup-serve-path-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&base);
            std::fs::create_dir_all(base.join("outside")).unwrap();
            std::fs::create_dir_all(base.join("root/sub")).unwrap();
            std::fs::write(base.join("outside/secret.txt"), "secret").unwrap();
            std::fs::write(base.join("root/a.txt"), "a").unwrap();
            std::fs::write(base.join("root/sub/b.txt"), "b").unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::symlink;
                symlink("../..", base.join("root/sub/up")).unwrap();
                symlink("../a.txt", base.join("root/sub/in")).unwrap();
                symlink("../outside", base.join("root/out")).unwrap();
                symlink("../outside/secret.txt", base.join("root/outfile")).unwrap();
                symlink("/etc", base.join("root/abs")).unwrap();
                symlink("loop", base.join("root/loop")).unwrap();
            }
            let root = std::fs::canonicalize(base.join("root")).unwrap();
            Tree { base, root }
        }

        fn resolve(&self, path: &str) -> Option<Result<Resolved, ResolveError>> {
            let site = SitePath::parse(path).ok()?;
            Some(resolve(&self.root, &site))
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.base);
        }
    }

    #[test]
    fn resolve_finds_files_and_follows_symlinks_that_stay_inside() {
        let tree = Tree::new("inside");
        let found = tree.resolve("/sub/b.txt").unwrap().unwrap();
        assert_eq!(found.path, tree.root.join("sub/b.txt"));
        assert!(found.metadata.is_file());
        assert!(tree.resolve("/").unwrap().unwrap().metadata.is_dir());
        #[cfg(unix)]
        assert_eq!(
            tree.resolve("/sub/in").unwrap().unwrap().path,
            tree.root.join("a.txt")
        );
    }

    #[cfg(unix)]
    #[test]
    fn resolve_refuses_symlinks_that_lead_outside() {
        let tree = Tree::new("outside");
        for path in [
            "/out/secret.txt",
            "/outfile",
            "/sub/up/outside/secret.txt",
            "/abs/passwd",
            "/out/",
        ] {
            assert!(
                matches!(tree.resolve(path), Some(Err(ResolveError::Forbidden))),
                "{path}: {:?}",
                tree.resolve(path)
            );
        }
    }

    #[test]
    fn resolve_reports_missing_names_and_names_below_files() {
        let tree = Tree::new("missing");
        for path in ["/nope", "/a.txt/x", "/a.txt/", "/sub/nope/b.txt", "/loop"] {
            assert!(
                matches!(tree.resolve(path), Some(Err(ResolveError::NotFound))),
                "{path}: {:?}",
                tree.resolve(path)
            );
        }
    }

    #[test]
    fn errors_are_sorted_into_404_403_and_500() {
        let sorted = |err: io::Error| match classify(err) {
            ResolveError::NotFound => 404,
            ResolveError::Forbidden => 403,
            ResolveError::Io(_) => 500,
        };
        #[cfg(unix)]
        for (errno, status) in [
            (libc::ENOENT, 404),
            (libc::ENOTDIR, 404),
            (libc::ENAMETOOLONG, 404),
            (libc::ELOOP, 404),
            (libc::EACCES, 403),
            (libc::EPERM, 403),
            (libc::EMFILE, 500),
            (libc::EIO, 500),
            (libc::ENOMEM, 500),
        ] {
            let err = io::Error::from_raw_os_error(errno);
            assert_eq!(sorted(err), status, "errno {errno}");
        }
        assert_eq!(sorted(io::Error::new(io::ErrorKind::NotFound, "gone")), 404);
        assert_eq!(sorted(io::ErrorKind::NotADirectory.into()), 404);
        assert_eq!(sorted(io::ErrorKind::PermissionDenied.into()), 403);
        assert_eq!(sorted(io::Error::other("odd")), 500);
    }

    #[test]
    fn resolve_reports_names_too_long_as_not_found() {
        let tree = Tree::new("long");
        let long_name = format!("/{}", "a".repeat(256));
        let long_path = format!("/{}", vec!["b".repeat(250); 17].join("/"));
        for path in [long_name.as_str(), long_path.as_str()] {
            assert!(
                matches!(tree.resolve(path), Some(Err(ResolveError::NotFound))),
                "{}: {:?}",
                &path[..20],
                tree.resolve(path)
            );
        }
    }

    /// Request paths built from pieces that matter for escaping.
    fn hostile_path() -> impl Strategy<Value = String> {
        const PIECES: &[&str] = &[
            "",
            ".",
            "..",
            "%2e%2e",
            "%2E.",
            ".%2e",
            "%2f",
            "..%2f",
            "%5c",
            "..\\..",
            "%00",
            "sub",
            "up",
            "in",
            "out",
            "outfile",
            "abs",
            "loop",
            "outside",
            "secret.txt",
            "a.txt",
            "etc",
            "passwd",
            "/",
        ];
        let piece = prop_oneof![
            3 => proptest::sample::select(PIECES).prop_map(str::to_owned),
            1 => "[a-z./%]{0,4}",
        ];
        (proptest::collection::vec(piece, 0..8), any::<bool>()).prop_map(|(pieces, slash)| {
            let mut path = String::from("/");
            for (i, piece) in pieces.iter().enumerate() {
                if i > 0 && slash {
                    path.push('/');
                }
                path.push_str(piece);
            }
            path
        })
    }

    proptest! {
        /// For any request path, the parsed path is relative and plain.
        #[test]
        fn parsed_paths_are_relative_names(path in any::<String>()) {
            if let Ok(site) = SitePath::parse(&format!("/{path}")) {
                let relative = site.to_relative();
                prop_assert!(relative.is_relative());
                prop_assert!(relative.components().all(|c| matches!(c, Component::Normal(_))));
                let root = Path::new("/srv/root");
                prop_assert!(root.join(&relative).starts_with(root));
            }
        }
    }

    /// For any request path, the resolved path, if any, is inside the root:
    /// symlinks that escape included. One tree serves every case (building
    /// it per case is slow); it is removed when the test ends.
    #[test]
    fn resolved_paths_never_escape_the_root() {
        let tree = Tree::new("proptest");
        let outside = std::fs::canonicalize(tree.base.join("outside")).unwrap();
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(2048));
        runner
            .run(&hostile_path(), |path| {
                if let Some(Ok(found)) = tree.resolve(&path) {
                    prop_assert!(
                        found.path.starts_with(&tree.root),
                        "{} -> {}",
                        path,
                        found.path.display()
                    );
                    prop_assert!(!found.path.starts_with(&outside));
                }
                Ok(())
            })
            .unwrap();
    }
}
