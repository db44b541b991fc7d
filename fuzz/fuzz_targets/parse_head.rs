//! Fuzzes the request-head parser (default limits, strict line endings).
//!
//! Invariants, beyond "does not panic":
//! - a complete head never occupies more bytes than were given;
//! - the answer depends only on the bytes up to the head's end: parsing
//!   just those bytes gives the same length;
//! - a proper prefix of a complete head is never itself complete (the head
//!   ends at the first blank line); it may be an error only if it trips a
//!   limit, which the bytes already seen would trip anyway.

#![no_main]

use hangup::__private::parse_head;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Ok(Some(consumed)) = parse_head(input) else {
        return;
    };
    assert!(
        consumed <= input.len(),
        "consumed {consumed} of {} bytes",
        input.len()
    );
    assert_eq!(
        parse_head(&input[..consumed]),
        Ok(Some(consumed)),
        "the head alone parses differently from the head plus what follows"
    );
    if consumed > 0 {
        assert!(
            !matches!(parse_head(&input[..consumed - 1]), Ok(Some(_))),
            "a head is complete one byte before its end"
        );
    }
});
