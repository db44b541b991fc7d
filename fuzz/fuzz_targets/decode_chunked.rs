//! Fuzzes the chunked body decoder.
//!
//! Invariants, beyond "does not panic":
//! - it consumes no more bytes than it was given;
//! - the data it returns is no longer than what it consumed (chunk framing
//!   only ever removes bytes);
//! - the answer depends only on the bytes up to the body's end: decoding
//!   just those bytes gives the same data and length.

#![no_main]

use hangup::__private::decode_chunked;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Ok(Some((data, consumed))) = decode_chunked(input) else {
        return;
    };
    assert!(
        consumed <= input.len(),
        "consumed {consumed} of {} bytes",
        input.len()
    );
    assert!(
        data.len() <= consumed,
        "{} bytes of data from {consumed} bytes of body",
        data.len()
    );
    assert_eq!(
        decode_chunked(&input[..consumed]),
        Ok(Some((data, consumed))),
        "the body alone decodes differently from the body plus what follows"
    );
});
