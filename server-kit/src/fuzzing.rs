//! What the fuzz targets in `fuzz/` reach that is not public API.

/// Parses one sync message as the WebSocket endpoint does.
pub fn sync_message(text: &str) {
    let _ = crate::sync::fuzz_parse(text);
}
