//! The listing of a directory that has no `index.html`: which entries it
//! shows, in which order, and the page (HTML for browsers, JSON for
//! `Accept: application/json`).
//!
//! Shown: files and directories, symlinks to either that stay inside the
//! root. Left out: symlinks leading outside the root or nowhere, sockets,
//! FIFOs and devices, uploads still in progress, and names starting with
//! `.` unless `--hidden`. A name that is not UTF-8 is shown with its odd
//! bytes as `\xNN` and linked by its exact bytes (`%FF`), so it can be
//! fetched like any other.
//!
//! Order: directories first, then by name, size or date (`?sort=name`,
//! `size`, `date`; `&order=desc` reverses), names in natural order
//! (`file2` before `file10`, case ignored first). Every name is escaped
//! twice over: percent-encoded in the `href` (so `a:b` is never read as a
//! URL scheme and `"` never ends the attribute) and HTML-escaped in the
//! text.

use std::cmp::Ordering;
use std::fmt::Write as _;
use std::io;
use std::path::Path;
use std::time::SystemTime;

use hangup::http::HeaderMap;
use hangup::http::header::ACCEPT;
use serde::Serialize;

use super::clock::Civil;
use super::path::{SitePath, os_bytes, push_encoded, readable, stays_inside};
use super::upload::is_upload_in_progress;

/// One row of the listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The file name, as bytes.
    pub name: Vec<u8>,
    /// A directory (listed first, with a trailing `/`).
    pub is_dir: bool,
    /// Length in bytes (files only).
    pub len: u64,
    /// Last modification, if known.
    pub modified: Option<SystemTime>,
}

/// A directory's entries and its own modification time.
#[derive(Debug, Clone)]
pub struct Listing {
    /// The entries shown, unsorted.
    pub entries: Vec<Entry>,
    /// When the directory itself last changed (an entry added, removed or
    /// renamed).
    pub modified: Option<SystemTime>,
}

impl Listing {
    /// The newest modification time the page shows, the directory's
    /// included: its `Last-Modified`.
    pub fn last_modified(&self) -> Option<SystemTime> {
        self.entries
            .iter()
            .filter_map(|e| e.modified)
            .chain(self.modified)
            .max()
    }
}

/// True for names hidden unless `--hidden`: those starting with `.`
/// (`.git`, `.env`), by Unix convention.
pub fn is_hidden(name: &[u8]) -> bool {
    name.first() == Some(&b'.')
}

/// Reads the entries of `dir` (canonical, inside the canonical `root`),
/// hidden ones only when `hidden`. Blocking: call it off the runtime.
///
/// # Errors
///
/// The error of reading the directory itself; entries that fail to stat
/// are skipped.
pub fn read(root: &Path, dir: &Path, hidden: bool) -> io::Result<Listing> {
    let modified = std::fs::metadata(dir)?.modified().ok();
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        let name = os_bytes(&entry.file_name());
        if is_upload_in_progress(&name) || (!hidden && is_hidden(&name)) {
            continue;
        }
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
    Ok(Listing { entries, modified })
}

/// What the listing is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// Natural order of names (the default).
    Name,
    /// File length, then name.
    Size,
    /// Modification time, then name.
    Date,
}

/// The order of a listing: a key and a direction, from the query string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    /// The key.
    pub key: SortKey,
    /// Descending instead of ascending.
    pub descending: bool,
}

impl Default for View {
    fn default() -> View {
        View {
            key: SortKey::Name,
            descending: false,
        }
    }
}

impl View {
    /// Reads `sort=name|size|date` and `order=asc|desc` from a query
    /// string; anything else is ignored.
    pub fn from_query(query: Option<&str>) -> View {
        let mut view = View::default();
        for pair in query.unwrap_or("").split('&') {
            match pair.split_once('=') {
                Some(("sort", "name")) => view.key = SortKey::Name,
                Some(("sort", "size")) => view.key = SortKey::Size,
                Some(("sort", "date")) => view.key = SortKey::Date,
                Some(("order", "asc")) => view.descending = false,
                Some(("order", "desc")) => view.descending = true,
                _ => {}
            }
        }
        view
    }

    /// Sorts `entries`: directories first, then by this view.
    pub fn sort(self, entries: &mut [Entry]) {
        entries.sort_by(|a, b| {
            let by_key = match self.key {
                SortKey::Name => Ordering::Equal,
                SortKey::Size => a.len.cmp(&b.len),
                SortKey::Date => a.modified.cmp(&b.modified),
            }
            .then_with(|| natural_cmp(&a.name, &b.name));
            let by_key = if self.descending {
                by_key.reverse()
            } else {
                by_key
            };
            b.is_dir.cmp(&a.is_dir).then(by_key)
        });
    }

    /// The query selecting `key`: the other direction when `key` is this
    /// view's, else ascending (name, date) or descending (size: the
    /// largest first is what one looks for).
    fn link(self, key: SortKey) -> (&'static str, &'static str) {
        let name = match key {
            SortKey::Name => "name",
            SortKey::Size => "size",
            SortKey::Date => "date",
        };
        let descending = if key == self.key {
            !self.descending
        } else {
            key == SortKey::Size
        };
        (name, if descending { "desc" } else { "asc" })
    }
}

/// Natural order: runs of digits compare as numbers (`file2` < `file10`),
/// other bytes ASCII case-insensitively; ties are broken by the plain
/// bytes, so the order is total and deterministic.
pub fn natural_cmp(a: &[u8], b: &[u8]) -> Ordering {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let (start_a, start_b) = (i, j);
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let number_a = trim_zeros(&a[start_a..i]);
            let number_b = trim_zeros(&b[start_b..j]);
            let by_value = number_a
                .len()
                .cmp(&number_b.len())
                .then_with(|| number_a.cmp(number_b));
            if by_value != Ordering::Equal {
                return by_value;
            }
        } else {
            let (x, y) = (a[i].to_ascii_lowercase(), b[j].to_ascii_lowercase());
            if x != y {
                return x.cmp(&y);
            }
            i += 1;
            j += 1;
        }
    }
    (a.len() - i).cmp(&(b.len() - j)).then_with(|| a.cmp(b))
}

/// `digits` without leading zeros (`007` is 7; `0` stays one digit).
fn trim_zeros(digits: &[u8]) -> &[u8] {
    let first = digits
        .iter()
        .position(|&d| d != b'0')
        .unwrap_or(digits.len().saturating_sub(1));
    &digits[first..]
}

/// A length for people: `512 B`, `1.5 KiB`, `23 MiB` (binary units, one
/// decimal below 10).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if value < 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

/// True when the request prefers JSON to HTML: its `Accept` gives
/// `application/json` a higher q-value than `text/html` (by default, and
/// for `*/*`, the page is HTML).
pub fn wants_json(headers: &HeaderMap) -> bool {
    let (mut json, mut html) = (0u16, 0u16);
    for value in headers.get_all(ACCEPT) {
        let Ok(text) = value.to_str() else { continue };
        for element in text.split(',') {
            let mut parts = element.split(';');
            let range = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.split_once('='))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
                .map_or(Some(1000), |(_, value)| parse_q(value.trim()))
                .unwrap_or(0);
            match range.as_str() {
                "application/json" => json = json.max(q),
                "text/html" => html = html.max(q),
                _ => {}
            }
        }
    }
    json > html
}

/// A q-value in thousandths, `None` when malformed.
fn parse_q(text: &str) -> Option<u16> {
    let value: f64 = text.parse().ok()?;
    (0.0..=1.0)
        .contains(&value)
        .then(|| (value * 1000.0).round() as u16)
}

/// The HTML page for the directory at `site` (a path ending in `/`), its
/// entries already sorted by `view`; with an upload form when `upload`.
pub fn render_html(site: &SitePath, entries: &[Entry], view: View, upload: bool) -> String {
    let title = escape(&site.display(true));
    let mut page = String::with_capacity(1024 + entries.len() * 200);
    // Writing to a String cannot fail; the results are ignored below.
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width\">\n\
         <title>Index of {title}</title>\n\
         <style>body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}\
         table{{border-collapse:collapse}}\
         th,td{{padding:.15em 2em .15em 0;text-align:left;white-space:nowrap}}\
         .size{{text-align:right;font-variant-numeric:tabular-nums}}\
         .date{{font-variant-numeric:tabular-nums;color:#555}}\
         th a{{color:inherit}}tbody tr:hover{{background:#f3f3f3}}\
         form{{margin-top:1.5em}}</style>\n\
         </head>\n<body>\n<h1>Index of {title}</h1>\n<table>\n<thead><tr>"
    );
    for (key, label, class) in [
        (SortKey::Name, "Name", ""),
        (SortKey::Size, "Size", " class=\"size\""),
        (SortKey::Date, "Modified (UTC)", " class=\"date\""),
    ] {
        let (sort, order) = view.link(key);
        let mark = match (view.key == key, view.descending) {
            (true, false) => " \u{25b2}",
            (true, true) => " \u{25bc}",
            (false, _) => "",
        };
        let _ = write!(
            page,
            "<th{class}><a href=\"?sort={sort}&amp;order={order}\">{label}{mark}</a></th>"
        );
    }
    page.push_str("</tr></thead>\n<tbody>\n");
    if !site.is_root() {
        page.push_str(
            "<tr><td><a href=\"../\">../</a></td><td class=\"size\"></td><td class=\"date\"></td></tr>\n",
        );
    }
    for entry in entries {
        let mut href = String::new();
        push_encoded(&mut href, &entry.name);
        let slash = if entry.is_dir { "/" } else { "" };
        let size = if entry.is_dir {
            "<td class=\"size\">-</td>".to_owned()
        } else {
            format!(
                "<td class=\"size\" title=\"{} bytes\">{}</td>",
                entry.len,
                human_size(entry.len)
            )
        };
        let modified = entry
            .modified
            .map(|t| Civil::of(t).minutes())
            .unwrap_or_default();
        let _ = writeln!(
            page,
            "<tr><td><a href=\"{href}{slash}\">{name}{slash}</a></td>{size}\
             <td class=\"date\">{modified}</td></tr>",
            name = escape(&readable(&entry.name)),
        );
    }
    page.push_str("</tbody>\n</table>\n");
    if upload {
        page.push_str(
            "<form method=\"post\" enctype=\"multipart/form-data\">\n\
             <input type=\"file\" name=\"file\" multiple required>\n\
             <button type=\"submit\">Upload</button>\n</form>\n",
        );
    }
    page.push_str("</body>\n</html>\n");
    page
}

/// The JSON listing: `{"path": "/dir/", "entries": [{"name", "href",
/// "type", "size", "modified"}]}`, entries in `entries`' order. `name` is
/// for people (odd bytes as `\xNN`); `href` is exact.
pub fn render_json(site: &SitePath, entries: &[Entry]) -> String {
    #[derive(Serialize)]
    struct Page<'a> {
        path: String,
        entries: Vec<Row<'a>>,
    }
    #[derive(Serialize)]
    struct Row<'a> {
        name: String,
        href: String,
        #[serde(rename = "type")]
        kind: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        size: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        modified: Option<String>,
    }
    let page = Page {
        path: site.display(true),
        entries: entries
            .iter()
            .map(|entry| {
                let mut href = String::new();
                push_encoded(&mut href, &entry.name);
                if entry.is_dir {
                    href.push('/');
                }
                Row {
                    name: readable(&entry.name),
                    href,
                    kind: if entry.is_dir { "directory" } else { "file" },
                    size: (!entry.is_dir).then_some(entry.len),
                    modified: entry.modified.map(|t| Civil::of(t).rfc3339()),
                }
            })
            .collect(),
    };
    let mut text = serde_json::to_string_pretty(&page).unwrap_or_else(|_| "{}".to_owned());
    text.push('\n');
    text
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
    use std::time::{Duration, UNIX_EPOCH};

    fn entry(name: &str, is_dir: bool) -> Entry {
        Entry {
            name: name.as_bytes().to_vec(),
            is_dir,
            len: 12,
            modified: None,
        }
    }

    fn names(entries: &[Entry]) -> Vec<String> {
        entries.iter().map(|e| readable(&e.name)).collect()
    }

    #[test]
    fn names_are_escaped_in_text_and_encoded_in_links() {
        let site = SitePath::parse("/d%3Cir%3E/").unwrap();
        let page = render_html(
            &site,
            &[entry("a<b>&\"c.txt", false), entry("x:y", true)],
            View::default(),
            false,
        );
        assert!(page.contains("<title>Index of /d&lt;ir&gt;/</title>"));
        assert!(page.contains("<a href=\"a%3Cb%3E%26%22c.txt\">a&lt;b&gt;&amp;&quot;c.txt</a>"));
        assert!(page.contains("<a href=\"x%3Ay/\">x:y/</a>"));
        assert!(page.contains("href=\"../\""));
        assert!(!page.contains("a<b>"));
        assert!(!page.contains("<form"));
    }

    #[test]
    fn names_that_are_not_utf8_are_shown_escaped_and_linked_exactly() {
        let odd = Entry {
            name: b"caf\xe9.txt".to_vec(),
            ..entry("", false)
        };
        let site = SitePath::parse("/").unwrap();
        let page = render_html(&site, std::slice::from_ref(&odd), View::default(), true);
        assert!(
            page.contains("<a href=\"caf%E9.txt\">caf\\xE9.txt</a>"),
            "{page}"
        );
        assert!(page.contains("<form method=\"post\""));
        let json: serde_json::Value = serde_json::from_str(&render_json(&site, &[odd])).unwrap();
        assert_eq!(json["entries"][0]["name"], "caf\\xE9.txt");
        assert_eq!(json["entries"][0]["href"], "caf%E9.txt");
        assert_eq!(json["entries"][0]["type"], "file");
        assert_eq!(json["entries"][0]["size"], 12);
    }

    #[test]
    fn the_root_has_no_parent_link() {
        let page = render_html(&SitePath::parse("/").unwrap(), &[], View::default(), false);
        assert!(!page.contains("../"));
    }

    #[test]
    fn natural_order_compares_numbers_as_numbers() {
        let mut list: Vec<Entry> = [
            "file10", "File2", "file1", "b", "a", "file02", "dir9", "dir10",
        ]
        .iter()
        .map(|n| entry(n, n.starts_with("dir")))
        .collect();
        View::default().sort(&mut list);
        assert_eq!(
            names(&list),
            [
                "dir9", "dir10", "a", "b", "file1", "File2", "file02", "file10"
            ]
        );
        assert_eq!(natural_cmp(b"x", b"x"), Ordering::Equal);
        assert_eq!(natural_cmp(b"a0", b"a00"), Ordering::Less);
        assert_eq!(natural_cmp(b"v1.10", b"v1.9"), Ordering::Greater);
    }

    #[test]
    fn size_and_date_sort_with_directories_first_either_way() {
        let at = |secs| Some(UNIX_EPOCH + Duration::from_secs(secs));
        let mut list = vec![
            Entry {
                len: 5,
                modified: at(3),
                ..entry("small", false)
            },
            Entry {
                len: 500,
                modified: at(1),
                ..entry("big", false)
            },
            Entry {
                len: 50,
                modified: at(2),
                ..entry("mid", false)
            },
            entry("sub", true),
        ];
        View {
            key: SortKey::Size,
            descending: true,
        }
        .sort(&mut list);
        assert_eq!(names(&list), ["sub", "big", "mid", "small"]);
        View {
            key: SortKey::Date,
            descending: false,
        }
        .sort(&mut list);
        assert_eq!(names(&list), ["sub", "big", "mid", "small"]);
        View {
            key: SortKey::Date,
            descending: true,
        }
        .sort(&mut list);
        assert_eq!(names(&list), ["sub", "small", "mid", "big"]);
    }

    #[test]
    fn the_query_chooses_the_view_and_links_flip_the_current_one() {
        let view = View::from_query(Some("sort=size&order=desc"));
        assert_eq!(
            view,
            View {
                key: SortKey::Size,
                descending: true
            }
        );
        assert_eq!(
            View::from_query(Some("sort=evil&order=up")),
            View::default()
        );
        assert_eq!(View::from_query(None), View::default());
        assert_eq!(view.link(SortKey::Size), ("size", "asc"));
        assert_eq!(view.link(SortKey::Name), ("name", "asc"));
        assert_eq!(View::default().link(SortKey::Name), ("name", "desc"));
        assert_eq!(View::default().link(SortKey::Size), ("size", "desc"));
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(20 * 1024 * 1024), "20 MiB");
        assert_eq!(human_size(u64::MAX), "16384 PiB");
    }

    #[test]
    fn json_only_when_preferred() {
        let accept = |value: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(ACCEPT, hangup::http::HeaderValue::from_static(value));
            wants_json(&h)
        };
        assert!(accept("application/json"));
        assert!(accept("application/json, text/html;q=0.5"));
        assert!(!accept("text/html,application/xhtml+xml,*/*;q=0.8"));
        assert!(!accept("*/*"));
        assert!(!accept("application/json;q=0.5, text/html"));
        assert!(!wants_json(&HeaderMap::new()));
    }

    #[test]
    fn escape_covers_the_five_characters() {
        assert_eq!(
            escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }
}
