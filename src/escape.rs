//! [`Escaped`]: client-controlled text made safe for one log line.
//!
//! A request target, a path, a method or a header value comes from the
//! client. Printed raw, a CR or LF in it starts a new log line the client
//! wrote (log forging), an ESC drives the operator's terminal, and a space
//! or a quote shifts the fields of a `key=value` line. Every such string
//! goes to a log through [`Escaped`], which keeps printable ASCII other
//! than space, `"` and `\` as is and writes every other byte as `\xNN`
//! (nginx's access-log escaping, plus space, since hangup's lines are not
//! quoted). The result is one token of visible ASCII.

use std::fmt::{self, Write};

/// Text that came from a client, displayed escaped: see the module docs.
///
/// ```
/// use hangup::Escaped;
///
/// let forged = b"/a\n2026-12-06T00:00:00Z  INFO hangup::access: remote_addr=6.6.6.6";
/// let shown = Escaped::bytes(forged).to_string();
/// assert_eq!(&shown[..10], r"/a\x0a2026");
/// assert!(shown.bytes().all(|b| b.is_ascii_graphic()));
/// assert_eq!(Escaped::display(&"caf\u{e9} \x1b[31m").to_string(), r"caf\xc3\xa9\x20\x1b[31m");
/// ```
#[derive(Clone, Copy)]
pub struct Escaped<'a>(Source<'a>);

#[derive(Clone, Copy)]
enum Source<'a> {
    Bytes(&'a [u8]),
    Display(&'a (dyn fmt::Display + Sync)),
}

impl<'a> Escaped<'a> {
    /// Raw bytes, valid UTF-8 or not (a target, a header value).
    pub fn bytes(bytes: &'a [u8]) -> Self {
        Escaped(Source::Bytes(bytes))
    }

    /// Anything displayable whose text the client chose (a `Uri`, a
    /// `Method`, a decoded path): escaped as it is formatted, without an
    /// intermediate `String`.
    pub fn display(value: &'a (dyn fmt::Display + Sync)) -> Self {
        Escaped(Source::Display(value))
    }
}

/// Whether `byte` is written as is.
fn is_plain(byte: u8) -> bool {
    byte.is_ascii_graphic() && byte != b'"' && byte != b'\\'
}

/// Writes `bytes` to `out`, escaped.
fn write_escaped(out: &mut dyn Write, bytes: &[u8]) -> fmt::Result {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut rest = bytes;
    while !rest.is_empty() {
        let plain = rest
            .iter()
            .position(|&b| !is_plain(b))
            .unwrap_or(rest.len());
        let (run, tail) = rest.split_at(plain);
        // Plain bytes are ASCII: valid UTF-8.
        out.write_str(std::str::from_utf8(run).map_err(|_| fmt::Error)?)?;
        rest = tail;
        if let Some((&byte, tail)) = rest.split_first() {
            let escape = [
                b'\\',
                b'x',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ];
            out.write_str(std::str::from_utf8(&escape).map_err(|_| fmt::Error)?)?;
            rest = tail;
        }
    }
    Ok(())
}

/// A `fmt::Write` that escapes what is written through it.
struct Escaping<'f, 'g>(&'f mut fmt::Formatter<'g>);

impl Write for Escaping<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_escaped(self.0, s.as_bytes())
    }
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Source::Bytes(bytes) => write_escaped(f, bytes),
            Source::Display(value) => write!(Escaping(f), "{value}"),
        }
    }
}

impl fmt::Debug for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

// Handlers keep one across an `.await` in futures that must be `Send`.
const _: () = {
    const fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<Escaped<'static>>();
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_is_plain_or_escaped() {
        let all: Vec<u8> = (0..=255).collect();
        let shown = Escaped::bytes(&all).to_string();
        assert!(shown.bytes().all(|b| b.is_ascii_graphic()), "{shown}");
        for byte in 0..=255u8 {
            let one = Escaped::bytes(&[byte]).to_string();
            if is_plain(byte) {
                assert_eq!(one.as_bytes(), [byte]);
            } else {
                assert_eq!(one, format!("\\x{byte:02x}"));
            }
        }
    }

    #[test]
    fn displayed_values_are_escaped_as_bytes_are() {
        let text = "a b\"c\\d\r\n\u{1b}é";
        assert_eq!(
            Escaped::display(&text).to_string(),
            Escaped::bytes(text.as_bytes()).to_string()
        );
        assert_eq!(
            Escaped::bytes(text.as_bytes()).to_string(),
            r"a\x20b\x22c\x5cd\x0d\x0a\x1b\xc3\xa9"
        );
    }
}
