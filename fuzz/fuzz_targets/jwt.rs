//! The server's JWT parser and verifier: arbitrary tokens, and arbitrary payloads under a
//! valid signature (so the claims parser is reached, which random bytes never are).
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use holdfast_protocol::{Claims, TokenType};
use holdfast_server_kit::tokens::{TokenKeys, TokenManager, TokenPolicy};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const SECRET: &str = "fuzzing-secret-of-at-least-thirty-two-bytes!";

fn manager() -> &'static TokenManager {
    static MANAGER: OnceLock<TokenManager> = OnceLock::new();
    MANAGER.get_or_init(|| {
        let config = holdfast_server_kit::ServerConfig::new(vec![SECRET.to_owned()]);
        TokenManager::new(
            TokenKeys::new(&[SECRET]).expect("keys"),
            TokenPolicy::from_config(&config),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let manager = manager();
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = manager.keys().verify(text);
        let _ = Claims::decode_unverified(text);
        for expected in [TokenType::Access, TokenType::Refresh] {
            let _ = manager.verify(text, expected, 1_700_000_000);
        }
    }
    // The same bytes as the payload of a correctly signed token.
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let signing_input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(data));
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
    let tag = ring::hmac::sign(&key, signing_input.as_bytes());
    let token = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
    let _ = manager.keys().verify(&token);
    for expected in [TokenType::Access, TokenType::Refresh] {
        for now in [i64::MIN, 0, 1_700_000_000, i64::MAX] {
            let _ = manager.verify(&token, expected, now);
        }
    }
});
