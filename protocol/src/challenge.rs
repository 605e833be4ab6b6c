//! Device challenges: 32 random bytes as 64 lowercase hex characters, signed as the UTF-8
//! bytes of that string (PROTOCOL section 4).

/// Length of a challenge string in characters.
pub const CHALLENGE_LEN: usize = 64;

/// Lifetime of a challenge in seconds.
pub const CHALLENGE_TTL_SECS: u64 = 60;

/// Whether `text` has the shape of a challenge (64 lowercase hex characters).
pub fn is_well_formed(text: &str) -> bool {
    text.len() == CHALLENGE_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Formats 32 random bytes as a challenge string.
pub fn format_challenge(random: &[u8; 32]) -> String {
    let mut out = String::with_capacity(CHALLENGE_LEN);
    for byte in random {
        out.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
        out.push(char::from_digit(u32::from(byte & 0x0f), 16).unwrap_or('0'));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape() {
        let c = format_challenge(&[0xa3; 32]);
        assert_eq!(c.len(), 64);
        assert!(is_well_formed(&c));
        assert!(!is_well_formed(&c.to_uppercase()));
        assert!(!is_well_formed(&c[..63]));
        assert!(!is_well_formed(&format!("{}g", &c[..63])));
    }
}
