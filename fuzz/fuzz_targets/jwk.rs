//! JWK parsing (the wire string and SEC1 bytes) and RFC 7638 thumbprints.
#![no_main]

use holdfast_protocol::PublicJwk;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(jwk) = PublicJwk::parse(text)
    {
        // A parsed key round-trips through every form it has.
        let again = PublicJwk::parse(&jwk.to_wire_string()).expect("a parsed key re-parses");
        assert_eq!(again.thumbprint(), jwk.thumbprint());
        let sec1 = PublicJwk::from_sec1_uncompressed(&jwk.sec1_uncompressed()).expect("SEC1 round trip");
        assert_eq!(sec1.thumbprint(), jwk.thumbprint());
    }
    if let Ok(jwk) = PublicJwk::from_sec1_uncompressed(data) {
        let _ = jwk.thumbprint();
    }
});
