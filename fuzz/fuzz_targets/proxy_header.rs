//! Fuzzes the PROXY protocol header parser (both versions, default
//! limits).
//!
//! Invariants, beyond "does not panic":
//! - a complete header never occupies more bytes than were given;
//! - the answer depends only on the header's bytes: parsing just those
//!   gives the same length;
//! - a proper prefix of a complete header is incomplete, never complete
//!   nor an error (the parser only refuses what cannot become valid);
//! - one byte less than an incomplete input is incomplete too, and one
//!   byte less than a refused input is incomplete or the same error (more
//!   bytes never change an answer once given);
//! - the parser decides within 4 KiB (the default `max_v2_bytes`), so an
//!   input that long is never incomplete.

#![no_main]

use hangup::__private::parse_proxy_header;
use libfuzzer_sys::fuzz_target;

/// The default `max_v2_bytes`, beyond which the parser always decides.
const DECIDED_WITHIN_BYTES: usize = 4096;

fuzz_target!(|input: &[u8]| {
    let result = parse_proxy_header(input);
    let shorter = input
        .split_last()
        .map(|(_, shorter)| parse_proxy_header(shorter));
    match result {
        Ok(Some(consumed)) => {
            assert!(
                consumed <= input.len(),
                "consumed {consumed} of {} bytes",
                input.len()
            );
            assert_eq!(
                parse_proxy_header(&input[..consumed]),
                Ok(Some(consumed)),
                "the header alone parses differently from the header plus what follows"
            );
            if consumed > 0 {
                assert_eq!(
                    parse_proxy_header(&input[..consumed - 1]),
                    Ok(None),
                    "one byte short of a complete header is not incomplete"
                );
            }
        }
        Ok(None) => {
            assert!(
                input.len() < DECIDED_WITHIN_BYTES,
                "{} bytes and still undecided",
                input.len()
            );
            if let Some(shorter) = shorter {
                assert_eq!(shorter, Ok(None), "an incomplete input was refused shorter");
            }
        }
        Err(reason) => {
            if let Some(shorter) = shorter {
                assert!(
                    matches!(shorter, Ok(None)) || shorter == Err(reason),
                    "refused for {reason:?}, but one byte shorter: {shorter:?}"
                );
            }
        }
    }
});
