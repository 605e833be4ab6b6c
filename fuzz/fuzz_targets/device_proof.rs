//! Device proofs: parsing (header, embedded key, claims, P1363 signature) and the server's
//! whole check, with arbitrary proofs and with arbitrary claims under a valid signature.
#![no_main]

use holdfast_protocol::proof::ParsedProof;
use holdfast_server_kit::proofs::{ProofCheck, check_proof};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(parsed) = ParsedProof::parse(text) {
        let _ = parsed.jwk.thumbprint();
    }
    for now_secs in [0, 1_700_000_000, i64::MIN, i64::MAX] {
        let _ = check_proof(&ProofCheck {
            proof: text,
            method: "POST",
            url: "https://auth.example/auth/refresh",
            access_token: "",
            expected_jkt: "",
            now_secs,
        });
    }
});
