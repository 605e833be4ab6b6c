//! Base64 helpers. The protocol always emits base64url without padding; some inputs
//! (signatures) are also accepted in standard or padded form, as PROTOCOL section 4 asks.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

/// Encodes bytes as base64url without padding.
pub fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes strict base64url without padding (the form every token segment uses).
pub fn decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    URL_SAFE_NO_PAD.decode(text)
}

/// Decodes base64url or standard base64, padded or not.
pub fn decode_lenient(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    let url_alphabet = text.contains(['-', '_']);
    let padded = text.ends_with('=');
    match (url_alphabet, padded) {
        (true, false) => URL_SAFE_NO_PAD.decode(text),
        (true, true) => URL_SAFE.decode(text),
        (false, false) => STANDARD_NO_PAD.decode(text),
        (false, true) => STANDARD.decode(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_accepts_every_alphabet_and_padding() {
        let bytes = [0xfb_u8, 0xff, 0xfe, 0x01];
        for text in ["-__-AQ", "-__-AQ==", "+//+AQ", "+//+AQ=="] {
            assert_eq!(decode_lenient(text).unwrap(), bytes, "{text}");
        }
        assert_eq!(encode(&bytes), "-__-AQ");
        assert!(decode("-__-AQ==").is_err(), "strict decoding refuses padding");
    }
}
