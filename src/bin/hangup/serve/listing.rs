//! The HTML page listing a directory that has no `index.html`.
//!
//! Every name is escaped twice over: percent-encoded in the `href` (so
//! `a:b` is never read as a URL scheme and `"` never ends the attribute)
//! and HTML-escaped in the text. Entries that cannot be served are left
//! out: symlinks leading outside the root or nowhere, names that are not
//! UTF-8 (requests are decoded as UTF-8), and anything but files and
//! directories.

use std::fmt::Write as _;
use std::io;
use std::path::Path;
use std::time::SystemTime;

use super::path::{SitePath, push_encoded, stays_inside};

/// One row of the listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The file name, decoded.
    pub name: String,
    /// A directory (listed first, with a trailing `/`).
    pub is_dir: bool,
    /// Length in bytes (files only).
    pub len: u64,
    /// Last modification, if known.
    pub modified: Option<SystemTime>,
}

/// Reads the entries of `dir` (canonical, inside the canonical `root`),
/// sorted directories first, then by name. Blocking: call it off the
/// runtime.
///
/// # Errors
///
/// The error of reading the directory itself; entries that fail to stat
/// are skipped.
pub fn read_entries(root: &Path, dir: &Path) -> io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        if file_type.is_symlink() && !stays_inside(root, &path) {
            continue;
        }
        // Follows symlinks: a link is listed as what it points to.
        let Ok(metadata) = std::fs::metadata(&path) else {
            continue;
        };
        if !(metadata.is_dir() || metadata.is_file()) {
            continue;
        }
        entries.push(Entry {
            name,
            is_dir: metadata.is_dir(),
            len: metadata.len(),
            modified: metadata.modified().ok(),
        });
    }
    entries.sort_by(|a, b| b.is_dir.cmp(&a.is_dir).then_with(|| a.name.cmp(&b.name)));
    Ok(entries)
}

/// The listing page for the directory at `site` (a path ending in `/`).
pub fn render(site: &SitePath, entries: &[Entry]) -> String {
    let title = escape(&site.display(true));
    let mut page = String::with_capacity(512 + entries.len() * 160);
    // Writing to a String cannot fail; the results are ignored below.
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width\">\n\
         <title>Index of {title}</title>\n\
         <style>body{{font-family:system-ui,sans-serif;margin:2em}}\
         td{{padding:0 1.5em 0 0}}td.n{{text-align:right}}</style>\n\
         </head>\n<body>\n<h1>Index of {title}</h1>\n<table>\n\
         <tr><th align=\"left\">Name</th><th align=\"right\">Size</th>\
         <th align=\"left\">Modified</th></tr>\n"
    );
    if !site.is_root() {
        page.push_str("<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n");
    }
    for entry in entries {
        let mut href = String::new();
        push_encoded(&mut href, &entry.name);
        let slash = if entry.is_dir { "/" } else { "" };
        let size = if entry.is_dir {
            String::new()
        } else {
            entry.len.to_string()
        };
        let modified = entry
            .modified
            .map(httpdate::fmt_http_date)
            .unwrap_or_default();
        let _ = writeln!(
            page,
            "<tr><td><a href=\"{href}{slash}\">{name}{slash}</a></td>\
             <td class=\"n\">{size}</td><td>{modified}</td></tr>",
            name = escape(&entry.name),
        );
    }
    page.push_str("</table>\n</body>\n</html>\n");
    page
}

/// Escapes text for HTML content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, is_dir: bool) -> Entry {
        Entry {
            name: name.to_owned(),
            is_dir,
            len: 12,
            modified: None,
        }
    }

    #[test]
    fn names_are_escaped_in_text_and_encoded_in_links() {
        let site = SitePath::parse("/d%3Cir%3E/").unwrap();
        let page = render(&site, &[entry("a<b>&\"c.txt", false), entry("x:y", true)]);
        assert!(page.contains("<title>Index of /d&lt;ir&gt;/</title>"));
        assert!(page.contains("<a href=\"a%3Cb%3E%26%22c.txt\">a&lt;b&gt;&amp;&quot;c.txt</a>"));
        assert!(page.contains("<a href=\"x%3Ay/\">x:y/</a>"));
        assert!(page.contains("href=\"../\""));
        assert!(!page.contains("a<b>"));
    }

    #[test]
    fn the_root_has_no_parent_link() {
        let page = render(&SitePath::parse("/").unwrap(), &[]);
        assert!(!page.contains("../"));
    }

    #[test]
    fn escape_covers_the_five_characters() {
        assert_eq!(
            escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }
}
