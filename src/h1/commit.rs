//! The framing decision, made once per response when its head is
//! committed: how the body is delimited and whether the connection stays
//! open. A pure function of the response and request facts, so that every
//! rule is in one place and one table test.
//!
//! In order (DESIGN.md "Response writing"):
//! 1. 1xx, 204 and 304 carry no body and no length field.
//! 2. A valid `Content-Length` the handler set is honoured (a HEAD response
//!    keeps it: it is the length a GET would get). Body bytes already
//!    buffered past it are an error: nothing is sent.
//! 3. A HEAD response whose GET length nobody counted (a tower service's:
//!    its body is not polled for HEAD) carries no length field, as hyper
//!    sends it: a `Content-Length: 0` would be false.
//! 4. A response finished before its head was committed (the whole body is
//!    buffered) gets `Content-Length` of what it has.
//! 5. Otherwise `chunked` on HTTP/1.1, close-delimited on HTTP/1.0.
//!
//! The connection closes after a close-delimited body, when the handler
//! set `Connection: close`, or when it was going to anyway (the client
//! asked, the server is shutting down, an unread body could not be
//! drained).

use http::{StatusCode, Version};

use crate::error::Error;

use super::encode::{Framing, Persistence};

/// What the decision depends on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Commit {
    pub status: StatusCode,
    pub version: Version,
    pub is_head: bool,
    /// A valid `Content-Length` among the handler's fields.
    pub declared: Option<u64>,
    /// `Connection: close` among the handler's fields.
    pub handler_close: bool,
    /// The handler has finished: the buffered body is the whole body.
    pub at_finish: bool,
    /// Body bytes accepted from the handler (for HEAD, counted only).
    pub buffered: u64,
    /// For HEAD: `buffered` is not what a GET would send, and no length
    /// is known (rule 3).
    pub head_length_unknown: bool,
    /// The connection closes after this response whatever the head says.
    pub closing: bool,
    /// The head answers an upgrade (`ResponseWriter::upgrade`).
    pub upgrade: bool,
}

/// The head's framing and persistence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decision {
    pub framing: Framing,
    pub persistence: Persistence,
}

/// 1xx, 204 and 304 responses never carry a body (RFC 9110 §6.4.1).
pub(crate) fn status_allows_body(status: StatusCode) -> bool {
    !(status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED)
}

/// Decides; see the module docs.
///
/// # Errors
///
/// [`Error::ContentLengthExceeded`] when the declared length is below the
/// body already buffered (not for HEAD, whose body is never sent).
pub(crate) fn decide(c: Commit) -> Result<Decision, Error> {
    // 101 switches the connection to another protocol: only through an
    // upgrade, which takes the connection; never as a mere status.
    match (c.status == StatusCode::SWITCHING_PROTOCOLS, c.upgrade) {
        (true, true) => {
            return Ok(Decision {
                framing: Framing::None,
                persistence: Persistence::Upgrade,
            });
        }
        (true, false) | (false, true) => {
            return Err(Error::Io(std::io::Error::other(
                "101 Switching Protocols is answered only by ResponseWriter::upgrade",
            )));
        }
        (false, false) => {}
    }
    let body_allowed = status_allows_body(c.status);
    if let Some(declared) = c.declared {
        if body_allowed && !c.is_head && c.buffered > declared {
            return Err(Error::ContentLengthExceeded {
                declared,
                attempted: c.buffered,
            });
        }
    }
    let http11 = c.version == Version::HTTP_11;
    let framing = if !body_allowed {
        Framing::None
    } else if let Some(n) = c.declared {
        Framing::Length(n)
    } else if c.is_head && c.head_length_unknown {
        Framing::None
    } else if c.at_finish {
        Framing::Length(c.buffered)
    } else if http11 {
        Framing::Chunked
    } else {
        Framing::CloseDelimited
    };
    let close = c.closing || c.handler_close || framing == Framing::CloseDelimited;
    let persistence = if close {
        Persistence::Close
    } else if http11 {
        Persistence::KeepAlive
    } else {
        Persistence::KeepAliveHttp10
    };
    Ok(Decision {
        framing,
        persistence,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Framing::{Chunked, CloseDelimited, Length};
    use Persistence::*;

    const BASE: Commit = Commit {
        status: StatusCode::OK,
        version: Version::HTTP_11,
        is_head: false,
        declared: None,
        handler_close: false,
        at_finish: false,
        buffered: 0,
        head_length_unknown: false,
        closing: false,
        upgrade: false,
    };

    #[test]
    fn every_framing_rule() {
        let http10 = Commit {
            version: Version::HTTP_10,
            ..BASE
        };
        let cases: [(&str, Commit, Framing, Persistence); 15] = [
            ("streaming on 1.1", BASE, Chunked, KeepAlive),
            ("streaming on 1.0", http10, CloseDelimited, Close),
            (
                "finished, whole body buffered",
                Commit {
                    at_finish: true,
                    buffered: 13,
                    ..BASE
                },
                Length(13),
                KeepAlive,
            ),
            (
                "finished on 1.0 with keep-alive",
                Commit {
                    at_finish: true,
                    buffered: 2,
                    ..http10
                },
                Length(2),
                KeepAliveHttp10,
            ),
            (
                "declared length while streaming",
                Commit {
                    declared: Some(100),
                    buffered: 10,
                    ..BASE
                },
                Length(100),
                KeepAlive,
            ),
            (
                "declared length wins at finish",
                Commit {
                    declared: Some(5),
                    at_finish: true,
                    buffered: 5,
                    ..BASE
                },
                Length(5),
                KeepAlive,
            ),
            (
                "HEAD keeps the GET's declared length",
                Commit {
                    is_head: true,
                    declared: Some(1 << 20),
                    buffered: 7,
                    ..BASE
                },
                Length(1 << 20),
                KeepAlive,
            ),
            (
                "HEAD counts what a GET would send",
                Commit {
                    is_head: true,
                    at_finish: true,
                    buffered: 70,
                    ..BASE
                },
                Length(70),
                KeepAlive,
            ),
            (
                "HEAD with an uncounted, undeclared length has no length field",
                Commit {
                    is_head: true,
                    at_finish: true,
                    head_length_unknown: true,
                    ..BASE
                },
                Framing::None,
                KeepAlive,
            ),
            (
                "HEAD with an uncounted body keeps a declared length",
                Commit {
                    is_head: true,
                    at_finish: true,
                    head_length_unknown: true,
                    declared: Some(5),
                    ..BASE
                },
                Length(5),
                KeepAlive,
            ),
            (
                "204 has no body",
                Commit {
                    status: StatusCode::NO_CONTENT,
                    at_finish: true,
                    ..BASE
                },
                Framing::None,
                KeepAlive,
            ),
            (
                "304 ignores a declared length",
                Commit {
                    status: StatusCode::NOT_MODIFIED,
                    declared: Some(9),
                    ..BASE
                },
                Framing::None,
                KeepAlive,
            ),
            (
                "101 answers an upgrade, and switches",
                Commit {
                    status: StatusCode::SWITCHING_PROTOCOLS,
                    upgrade: true,
                    ..BASE
                },
                Framing::None,
                Upgrade,
            ),
            (
                "handler's Connection: close",
                Commit {
                    handler_close: true,
                    at_finish: true,
                    ..BASE
                },
                Length(0),
                Close,
            ),
            (
                "closing anyway (shutdown, undrainable body)",
                Commit {
                    closing: true,
                    ..BASE
                },
                Chunked,
                Close,
            ),
        ];
        for (case, commit, framing, persistence) in cases {
            assert_eq!(
                decide(commit).ok(),
                Some(Decision {
                    framing,
                    persistence
                }),
                "{case}"
            );
        }
    }

    #[test]
    fn a_101_is_only_an_upgrade_and_an_upgrade_only_a_101() {
        let plain_101 = Commit {
            status: StatusCode::SWITCHING_PROTOCOLS,
            ..BASE
        };
        assert!(decide(plain_101).is_err());
        let upgrade_200 = Commit {
            upgrade: true,
            ..BASE
        };
        assert!(decide(upgrade_200).is_err());
    }

    #[test]
    fn a_declared_length_below_the_buffered_body_is_refused_except_for_head() {
        let short = Commit {
            declared: Some(3),
            buffered: 4,
            ..BASE
        };
        assert!(matches!(
            decide(short),
            Err(Error::ContentLengthExceeded {
                declared: 3,
                attempted: 4
            })
        ));
        let head = Commit {
            is_head: true,
            ..short
        };
        assert!(decide(head).is_ok());
        let no_body = Commit {
            status: StatusCode::NOT_MODIFIED,
            ..short
        };
        assert!(decide(no_body).is_ok());
    }
}
