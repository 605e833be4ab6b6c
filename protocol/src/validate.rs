//! Input rules (PROTOCOL section 2), shared so a client can refuse bad input before it
//! reaches the network and a server applies exactly the same rules.
//!
//! Lengths are counted in UTF-16 code units, as Kora's JavaScript counts them, so a
//! password Kora accepts is accepted here and the reverse.

/// Longest accepted email address.
pub const MAX_EMAIL_LEN: usize = 254;
/// Shortest accepted password.
pub const MIN_PASSWORD_LEN: usize = 8;
/// Longest accepted password (bounds the cost of hashing).
pub const MAX_PASSWORD_LEN: usize = 128;
/// Longest display or device name kept after sanitizing.
pub const MAX_NAME_LEN: usize = 200;
/// Longest accepted device id.
pub const MAX_DEVICE_ID_LEN: usize = 128;

fn js_len(text: &str) -> usize {
    text.encode_utf16().count()
}

/// Checks an email address and returns its lower-cased form.
pub fn normalize_email(email: &str) -> Result<String, &'static str> {
    const MESSAGE: &str = "Invalid email address. Provide an address like user@domain.com.";
    if email.is_empty() || js_len(email) > MAX_EMAIL_LEN || email.contains(char::is_whitespace) {
        return Err(MESSAGE);
    }
    let (local, domain) = email.split_once('@').ok_or(MESSAGE)?;
    if local.is_empty()
        || domain.contains('@')
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
    {
        return Err(MESSAGE);
    }
    if email.chars().any(char::is_control) {
        return Err(MESSAGE);
    }
    Ok(email.to_lowercase())
}

/// Checks a password's length (the server's policy may demand more).
pub fn check_password_length(password: &str) -> Result<(), &'static str> {
    let len = js_len(password);
    if len < MIN_PASSWORD_LEN {
        return Err("Password must be at least 8 characters long.");
    }
    if len > MAX_PASSWORD_LEN {
        return Err("Password must be at most 128 characters long.");
    }
    Ok(())
}

/// Removes control characters, trims, and caps the length of a display or device name.
pub fn sanitize_name(name: &str) -> String {
    let cleaned: String = name.chars().filter(|c| !c.is_control()).collect();
    let trimmed = cleaned.trim();
    let mut out = String::with_capacity(trimmed.len());
    let mut units = 0;
    for c in trimmed.chars() {
        units += c.len_utf16();
        if units > MAX_NAME_LEN {
            break;
        }
        out.push(c);
    }
    out.trim_end().to_owned()
}

/// Checks a client-chosen device id: 1 to 128 printable ASCII characters, no spaces.
pub fn check_device_id(device_id: &str) -> Result<(), &'static str> {
    if device_id.is_empty()
        || device_id.len() > MAX_DEVICE_ID_LEN
        || !device_id.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err("deviceId must be 1 to 128 printable ASCII characters without spaces.");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(normalize_email("Alice@Example.COM").unwrap(), "alice@example.com");
        for bad in [
            "",
            "alice",
            "@example.com",
            "a@b",
            "a@@b.com",
            "a@b@c.com",
            "a b@c.com",
            "a@.com",
            "a@com.",
            "a\u{7}@b.com",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(normalize_email(&long).is_err());
    }

    #[test]
    fn passwords_count_utf16_units() {
        assert!(check_password_length("1234567").is_err());
        assert!(check_password_length("12345678").is_ok());
        assert!(check_password_length(&"x".repeat(129)).is_err());
        // Four emoji are eight UTF-16 units, as JavaScript counts them.
        assert!(check_password_length("😀😀😀😀").is_ok());
    }

    #[test]
    fn names() {
        assert_eq!(sanitize_name("  Ali\u{0}ce\n "), "Alice");
        assert_eq!(js_len(&sanitize_name(&"é".repeat(300))), 200);
        assert_eq!(sanitize_name("\u{1}\u{2}"), "");
    }

    #[test]
    fn device_ids() {
        assert!(check_device_id("dev-0f3a").is_ok());
        assert!(check_device_id("").is_err());
        assert!(check_device_id("a b").is_err());
        assert!(check_device_id(&"a".repeat(129)).is_err());
        assert!(check_device_id("é").is_err());
    }
}
