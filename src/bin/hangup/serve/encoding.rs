//! Content codings (RFC 9110 §8.4.1): the ones this server sends, and
//! which of them a request's `Accept-Encoding` (§12.5.3) prefers.
//!
//! The server has at most two kinds of candidates for a file: the file
//! itself (`identity`), and compressed forms, either a precompressed
//! sibling on disk (`app.js.br` next to `app.js`) or one made on the fly
//! (`--compress`). [`Accepted::choose`] picks among what exists by the
//! client's q-values; on a tie the smaller form wins (Brotli, then
//! Zstandard, then gzip, then the file itself).

use hangup::http::HeaderMap;
use hangup::http::header::ACCEPT_ENCODING;

/// A content coding this server can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// Brotli (`br`, RFC 7932): the smallest for text.
    Brotli,
    /// Zstandard (`zstd`, RFC 8878): nearly as small, much faster.
    Zstd,
    /// gzip (`gzip`, RFC 1952): understood by every client.
    Gzip,
}

impl Encoding {
    /// Every coding, most preferred first (the tie-break order).
    pub const ALL: [Encoding; 3] = [Encoding::Brotli, Encoding::Zstd, Encoding::Gzip];

    /// The `Content-Encoding` token.
    pub fn token(self) -> &'static str {
        match self {
            Encoding::Brotli => "br",
            Encoding::Zstd => "zstd",
            Encoding::Gzip => "gzip",
        }
    }

    /// The file-name suffix of a precompressed sibling (`.br`, `.zst`,
    /// `.gz`, as `brotli`, `zstd` and `gzip` name their output).
    pub fn suffix(self) -> &'static str {
        match self {
            Encoding::Brotli => ".br",
            Encoding::Zstd => ".zst",
            Encoding::Gzip => ".gz",
        }
    }
}

/// A q-value in thousandths (`q=0.5` is 500): exact, and ordered.
type Quality = u16;

/// What a request's `Accept-Encoding` accepts: a q-value per coding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// Brotli, Zstandard and gzip, in [`Encoding::ALL`]'s order.
    codings: [Quality; 3],
    /// `identity`: the file as it is.
    identity: Quality,
}

impl Accepted {
    /// Reads every `Accept-Encoding` field of `headers`.
    ///
    /// No field means only `identity` is wanted: RFC 9110 §12.5.3 allows
    /// any coding then, but clients that send none (scripts, old tools)
    /// expect the bytes as they are. A coding not named takes the q-value
    /// of `*`, or 0; `identity` not named takes the q-value of `*`, or is
    /// acceptable and least preferred. Elements that do not parse are
    /// skipped.
    pub fn from_headers(headers: &HeaderMap) -> Accepted {
        let mut named: [Option<Quality>; 3] = [None; 3];
        let mut identity = None;
        let mut star = None;
        let mut any_field = false;
        for value in headers.get_all(ACCEPT_ENCODING) {
            any_field = true;
            let Ok(text) = value.to_str() else { continue };
            for element in text.split(',') {
                let mut parts = element.split(';');
                let coding = parts.next().unwrap_or("").trim();
                if coding.is_empty() {
                    continue;
                }
                let Some(q) = quality(parts) else { continue };
                let slot = match coding.to_ascii_lowercase().as_str() {
                    "br" => &mut named[0],
                    "zstd" => &mut named[1],
                    "gzip" | "x-gzip" => &mut named[2],
                    "identity" => &mut identity,
                    "*" => &mut star,
                    _ => continue,
                };
                // Repeated: the highest counts (a client listing a coding
                // twice meant it).
                *slot = Some(slot.map_or(q, |old: Quality| old.max(q)));
            }
        }
        if !any_field {
            return Accepted::identity_only();
        }
        let codings = named.map(|q| q.or(star).unwrap_or(0));
        // Not named: acceptable (RFC 9110 §12.5.3), and least wanted: a
        // client that lists `gzip;q=0.5` and no `identity` still
        // prefers gzip to nothing.
        let identity = identity.or(star).unwrap_or(1);
        Accepted { codings, identity }
    }

    /// A request without `Accept-Encoding`.
    pub fn identity_only() -> Accepted {
        Accepted {
            codings: [0; 3],
            identity: 1000,
        }
    }

    fn q(&self, encoding: Encoding) -> Quality {
        let index = Encoding::ALL
            .iter()
            .position(|&e| e == encoding)
            .unwrap_or(0);
        self.codings[index]
    }

    /// The best of `available` codings for this client, or `None` for the
    /// file itself: the highest q-value, ties going to the coding (in
    /// [`Encoding::ALL`]'s order) rather than `identity`. When the client
    /// refuses `identity` too (`identity;q=0`) and accepts nothing
    /// available, the file itself is sent all the same: RFC 9110 §12.5.3
    /// allows that rather than a 415.
    pub fn choose(&self, available: impl IntoIterator<Item = Encoding>) -> Option<Encoding> {
        let mut best: Option<(Encoding, Quality)> = None;
        for encoding in available {
            let q = self.q(encoding);
            let rank = |e: Encoding| Encoding::ALL.iter().position(|&x| x == e);
            let better = match best {
                None => q > 0,
                Some((current, best_q)) => {
                    q > best_q || (q == best_q && rank(encoding) < rank(current))
                }
            };
            if better {
                best = Some((encoding, q));
            }
        }
        best.filter(|&(_, q)| q >= self.identity || self.identity == 0)
            .map(|(encoding, _)| encoding)
    }
}

/// The q-value among an element's parameters (`q=0.8`), 1000 when absent,
/// `None` when malformed (more than three decimals, above 1).
fn quality<'a>(params: impl Iterator<Item = &'a str>) -> Option<Quality> {
    for param in params {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("q") {
            continue;
        }
        return parse_q(value.trim());
    }
    Some(1000)
}

/// RFC 9110 §12.4.2's `qvalue`: `0`, `0.xyz`, `1` or `1.000`.
fn parse_q(text: &str) -> Option<Quality> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0u16, |n, b| n * 10 + u16::from(b - b'0'));
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Encoding::{Brotli, Gzip, Zstd};
    use hangup::http::HeaderValue;

    fn accepted(value: &str) -> Accepted {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT_ENCODING, HeaderValue::from_str(value).unwrap());
        Accepted::from_headers(&headers)
    }

    #[test]
    fn q_values_decide_and_ties_go_to_the_smaller_form() {
        let all = Encoding::ALL;
        assert_eq!(
            accepted("gzip, deflate, br, zstd").choose(all),
            Some(Brotli)
        );
        assert_eq!(accepted("gzip, br;q=0.5").choose(all), Some(Gzip));
        assert_eq!(
            accepted("gzip;q=0.2, zstd;q=0.9, br;q=0.8").choose(all),
            Some(Zstd)
        );
        assert_eq!(accepted("br").choose([Gzip, Zstd]), None);
        assert_eq!(accepted("*").choose([Gzip]), Some(Gzip));
        assert_eq!(
            accepted("*;q=0.5, gzip;q=0").choose([Gzip, Zstd]),
            Some(Zstd)
        );
        assert_eq!(accepted("br;q=0").choose(all), None);
        assert_eq!(accepted("GZIP").choose(all), Some(Gzip));
        assert_eq!(accepted("x-gzip").choose(all), Some(Gzip));
    }

    #[test]
    fn identity_wins_when_the_client_prefers_it() {
        assert_eq!(accepted("gzip;q=0.5, identity").choose([Gzip]), None);
        assert_eq!(
            accepted("gzip;q=0.5, identity;q=0.5").choose([Gzip]),
            Some(Gzip)
        );
        assert_eq!(
            accepted("identity;q=0, gzip;q=0.1").choose([Gzip]),
            Some(Gzip)
        );
        assert_eq!(accepted("identity").choose(Encoding::ALL), None);
    }

    #[test]
    fn no_field_means_the_file_as_it_is() {
        let none = Accepted::from_headers(&HeaderMap::new());
        assert_eq!(none, Accepted::identity_only());
        assert_eq!(none.choose(Encoding::ALL), None);
    }

    #[test]
    fn malformed_q_values_skip_their_element() {
        assert_eq!(accepted("br;q=2, gzip").choose(Encoding::ALL), Some(Gzip));
        assert_eq!(
            accepted("br;q=0.0001, gzip;q=0.1").choose(Encoding::ALL),
            Some(Gzip)
        );
        assert_eq!(accepted("br;q=abc").choose(Encoding::ALL), None);
        assert_eq!(parse_q("0.5"), Some(500));
        assert_eq!(parse_q("1.000"), Some(1000));
        assert_eq!(parse_q("1.001"), None);
        assert_eq!(parse_q("0"), Some(0));
        assert_eq!(parse_q(""), None);
    }
}
