//! `Content-Type` by file extension: a small table of the types a static
//! site serves, instead of a crate with thousands.

use std::path::Path;

/// For unknown extensions: browsers download rather than guess (and
/// `X-Content-Type-Options: nosniff` keeps them from sniffing).
const UNKNOWN: &str = "application/octet-stream";

/// Extension (lowercase) to media type. Text types say UTF-8, which is
/// what sites are written in today; a Latin-1 file will look wrong, not
/// be unsafe.
const TYPES: &[(&str, &str)] = &[
    ("html", "text/html; charset=utf-8"),
    ("htm", "text/html; charset=utf-8"),
    ("css", "text/css; charset=utf-8"),
    ("js", "text/javascript; charset=utf-8"),
    ("mjs", "text/javascript; charset=utf-8"),
    ("json", "application/json"),
    ("map", "application/json"),
    ("webmanifest", "application/manifest+json"),
    ("txt", "text/plain; charset=utf-8"),
    ("md", "text/markdown; charset=utf-8"),
    ("csv", "text/csv; charset=utf-8"),
    ("xml", "application/xml"),
    ("svg", "image/svg+xml"),
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("gif", "image/gif"),
    ("webp", "image/webp"),
    ("avif", "image/avif"),
    ("ico", "image/x-icon"),
    ("woff", "font/woff"),
    ("woff2", "font/woff2"),
    ("ttf", "font/ttf"),
    ("otf", "font/otf"),
    ("wasm", "application/wasm"),
    ("pdf", "application/pdf"),
    ("zip", "application/zip"),
    ("gz", "application/gzip"),
    ("tar", "application/x-tar"),
    ("mp3", "audio/mpeg"),
    ("ogg", "audio/ogg"),
    ("wav", "audio/wav"),
    ("mp4", "video/mp4"),
    ("webm", "video/webm"),
];

/// The `Content-Type` for `path`, by its extension (case-insensitive).
pub fn content_type(path: &Path) -> &'static str {
    let Some(ext) = path.extension().and_then(|e| e.to_str()) else {
        return UNKNOWN;
    };
    TYPES
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(ext))
        .map_or(UNKNOWN, |(_, media)| media)
}

/// True for media types worth compressing: text, and the structured text
/// formats served as `application/*` or `image/svg+xml`. Images, audio,
/// video, fonts (WOFF2 is compressed already) and archives are not: a
/// second compression costs CPU and saves nothing.
pub fn is_compressible(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("text/")
        || matches!(
            essence.as_str(),
            "application/json"
                | "application/manifest+json"
                | "application/xml"
                | "application/wasm"
                | "image/svg+xml"
                | "image/x-icon"
                | "font/ttf"
                | "font/otf"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_unknown_and_uppercase_extensions() {
        assert_eq!(
            content_type(Path::new("a/index.html")),
            "text/html; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("PHOTO.JPG")), "image/jpeg");
        assert_eq!(content_type(Path::new("data.bin")), UNKNOWN);
        assert_eq!(content_type(Path::new("Makefile")), UNKNOWN);
        assert_eq!(content_type(Path::new(".bashrc")), UNKNOWN);
    }

    #[test]
    fn text_is_compressible_and_compressed_formats_are_not() {
        for name in [
            "a.html", "a.css", "a.js", "a.json", "a.svg", "a.txt", "a.wasm",
        ] {
            assert!(is_compressible(content_type(Path::new(name))), "{name}");
        }
        for name in [
            "a.png", "a.jpg", "a.woff2", "a.gz", "a.zip", "a.mp4", "a.bin",
        ] {
            assert!(!is_compressible(content_type(Path::new(name))), "{name}");
        }
    }
}
