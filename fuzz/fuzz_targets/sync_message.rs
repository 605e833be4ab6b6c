//! The sync WebSocket's client messages (`auth`, `put`, `reauth`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        holdfast_server_kit::fuzzing::sync_message(text);
    }
});
