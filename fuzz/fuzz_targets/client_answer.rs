//! The client reading an answer: status, `Date` and `Retry-After` headers, the capped body,
//! the envelope of every answer type, and the token checks before anything is stored.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // First two bytes: the status; then the Date header up to a newline, then the body.
    if data.len() < 2 {
        return;
    }
    let status = 100 + u16::from_le_bytes([data[0], data[1]]) % 500;
    let rest = &data[2..];
    let (date, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    holdfast_core::fuzzing::answer(status, date, body);
});
