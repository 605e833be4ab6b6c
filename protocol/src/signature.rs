//! ECDSA P-256 signatures in IEEE P1363 form (`r ‖ s`, 64 bytes), as base64url
//! (PROTOCOL section 4). DER is refused; padded or standard base64 is accepted on input.

/// Length of a P1363 P-256 signature in bytes.
pub const SIGNATURE_LEN: usize = 64;

/// Why a signature string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureFormatError {
    /// Not base64 in any accepted form.
    #[error("signature must be base64url")]
    Encoding,
    /// Looks like an ASN.1 DER signature.
    #[error("signature must be IEEE P1363 (r||s, 64 bytes), not DER")]
    Der,
    /// Decodes to a length other than 64 bytes.
    #[error("signature must be 64 bytes (IEEE P1363 r||s)")]
    Length,
}

/// Decodes a signature string into its 64 raw bytes.
pub fn decode_signature(text: &str) -> Result<[u8; SIGNATURE_LEN], SignatureFormatError> {
    let bytes = crate::b64::decode_lenient(text.trim()).map_err(|_| SignatureFormatError::Encoding)?;
    // 64 bytes are always read as r || s: one P1363 signature in 2^24 starts with the bytes
    // of a 64-byte DER sequence (30 3e 02), and refusing it would fail that proof at random.
    // Only a signature of another length is worth naming as DER.
    bytes.try_into().map_err(|bytes: Vec<u8>| {
        if looks_like_der(&bytes) {
            SignatureFormatError::Der
        } else {
            SignatureFormatError::Length
        }
    })
}

/// Encodes 64 raw signature bytes as base64url without padding (86 characters).
pub fn encode_signature(bytes: &[u8; SIGNATURE_LEN]) -> String {
    crate::b64::encode(bytes)
}

/// A DER ECDSA signature is `SEQUENCE { INTEGER r, INTEGER s }`: 0x30, the remaining length,
/// then 0x02. A P1363 signature can start with 0x30 by chance, so all three are checked.
fn looks_like_der(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[0] == 0x30 && usize::from(bytes[1]) == bytes.len() - 2 && bytes[2] == 0x02
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_lenient_forms() {
        let raw = [0xfbu8; 64];
        let text = encode_signature(&raw);
        assert_eq!(text.len(), 86);
        assert_eq!(decode_signature(&text).unwrap(), raw);
        let standard = text.replace('-', "+").replace('_', "/") + "==";
        assert_eq!(decode_signature(&standard).unwrap(), raw);
    }

    #[test]
    fn der_and_wrong_lengths_are_refused() {
        let mut der = vec![0x30, 68, 0x02, 32];
        der.extend([1u8; 32]);
        der.extend([0x02, 32]);
        der.extend([2u8; 32]);
        assert_eq!(
            decode_signature(&crate::b64::encode(&der)),
            Err(SignatureFormatError::Der)
        );
        assert_eq!(
            decode_signature(&crate::b64::encode(&[1u8; 63])),
            Err(SignatureFormatError::Length)
        );
        assert_eq!(decode_signature("!!!"), Err(SignatureFormatError::Encoding));
    }
}
