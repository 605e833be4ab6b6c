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

use unicode_normalization::UnicodeNormalization;

fn js_len(text: &str) -> usize {
    text.encode_utf16().count()
}

/// Checks an email address and returns the form accounts are stored and looked up under:
/// NFKC-normalized, then lower-cased (and NFKC again, which lower-casing can undo), so
/// full-width letters, ligatures and decomposed accents name the same account as their
/// plain forms. Refused: whitespace, control characters, invisible and bidirectional format
/// characters (general category Cf, such as U+200B ZERO WIDTH SPACE and U+202E RIGHT-TO-LEFT
/// OVERRIDE, and the other default-ignorable code points), private-use, surrogate and
/// unassigned code points, and a local part or domain label that mixes Latin, Greek and
/// Cyrillic letters (`pаypal` with a Cyrillic `а`): those are the look-alikes NFKC does not
/// fold. An address wholly in one of those scripts is accepted.
pub fn normalize_email(email: &str) -> Result<String, &'static str> {
    const MESSAGE: &str = "Invalid email address. Provide an address like user@domain.com.";
    const INVISIBLE: &str = "Email address contains invisible or formatting characters (such as a zero-width space or a direction override).";
    const MIXED: &str =
        "Email address mixes look-alike scripts (Latin, Greek or Cyrillic letters) in one part.";
    if email.is_empty() || js_len(email) > MAX_EMAIL_LEN || email.contains(char::is_whitespace) {
        return Err(MESSAGE);
    }
    if email.chars().any(char::is_control) {
        return Err(MESSAGE);
    }
    if email.chars().any(is_invisible) {
        return Err(INVISIBLE);
    }
    let folded: String = email.nfkc().collect::<String>().to_lowercase().nfkc().collect();
    // NFKC can produce what the raw checks refuse (U+2003 EM SPACE is whitespace already,
    // but e.g. U+FE6B SMALL COMMERCIAL AT becomes '@'), so the shape is checked after it.
    if folded.is_empty()
        || js_len(&folded) > MAX_EMAIL_LEN
        || folded.contains(char::is_whitespace)
        || folded.chars().any(|c| c.is_control() || is_invisible(c))
    {
        return Err(MESSAGE);
    }
    let (local, domain) = folded.split_once('@').ok_or(MESSAGE)?;
    if local.is_empty()
        || domain.contains('@')
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
    {
        return Err(MESSAGE);
    }
    if mixes_confusable_scripts(local) || domain.split('.').any(mixes_confusable_scripts) {
        return Err(MIXED);
    }
    Ok(folded)
}

/// Invisible, formatting and otherwise unfit code points: general categories Cf, Co, Cs, Cn,
/// Zl, Zp, and the default-ignorable code points of other categories (variation selectors,
/// Hangul fillers, the combining grapheme joiner, Mongolian free variation selectors).
fn is_invisible(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    matches!(
        c.general_category(),
        GeneralCategory::Format
            | GeneralCategory::PrivateUse
            | GeneralCategory::Surrogate
            | GeneralCategory::Unassigned
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    ) || matches!(
        c,
        '\u{034F}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FFA0}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Confusable {
    Latin,
    Greek,
    Cyrillic,
}

fn confusable_script(c: char) -> Option<Confusable> {
    match c {
        'a'..='z' | 'A'..='Z' | '\u{00C0}'..='\u{024F}' | '\u{1E00}'..='\u{1EFF}' => Some(Confusable::Latin),
        '\u{0370}'..='\u{03FF}' | '\u{1F00}'..='\u{1FFF}' => Some(Confusable::Greek),
        '\u{0400}'..='\u{052F}'
        | '\u{1C80}'..='\u{1C8F}'
        | '\u{2DE0}'..='\u{2DFF}'
        | '\u{A640}'..='\u{A69F}' => Some(Confusable::Cyrillic),
        _ => None,
    }
}

/// Whether `part` has letters of two of Latin, Greek and Cyrillic.
fn mixes_confusable_scripts(part: &str) -> bool {
    let mut seen = None;
    for script in part.chars().filter_map(confusable_script) {
        match seen {
            None => seen = Some(script),
            Some(first) if first != script => return true,
            Some(_) => {}
        }
    }
    false
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

/// Most bytes of a user's metadata, as compact JSON.
pub const MAX_METADATA_BYTES: usize = 4096;

/// Checks a user's metadata: a JSON object of at most [`MAX_METADATA_BYTES`] (compact).
pub fn check_metadata(metadata: &serde_json::Value) -> Result<(), &'static str> {
    if !metadata.is_object() {
        return Err("Metadata must be a JSON object.");
    }
    let size = serde_json::to_vec(metadata)
        .map(|json| json.len())
        .unwrap_or(usize::MAX);
    if size > MAX_METADATA_BYTES {
        return Err("Metadata must be at most 4096 bytes of JSON.");
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
    fn look_alike_emails_are_one_account_or_refused() {
        // Full-width letters, ligatures and decomposed accents fold onto the plain form.
        for same in [
            "\u{FF41}lice@example.com",
            "ALICE@EXAMPLE.COM",
            "alice@\u{FF45}xample.com",
        ] {
            assert_eq!(normalize_email(same).unwrap(), "alice@example.com", "{same:?}");
        }
        assert_eq!(normalize_email("\u{FB01}@example.com").unwrap(), "fi@example.com");
        assert_eq!(
            normalize_email("jose\u{0301}@example.com").unwrap(),
            normalize_email("jos\u{00E9}@example.com").unwrap()
        );
        assert_eq!(
            normalize_email("JOS\u{00C9}@example.com").unwrap(),
            "jos\u{00E9}@example.com"
        );
        // Invisible and bidirectional format characters are refused.
        for invisible in [
            "ali\u{200B}ce@example.com",
            "alice\u{202E}@example.com",
            "alice@exam\u{200D}ple.com",
            "\u{FEFF}alice@example.com",
            "ali\u{00AD}ce@example.com",
            "alice\u{FE0F}@example.com",
            "alice\u{E0041}@example.com",
        ] {
            let error = normalize_email(invisible).unwrap_err();
            assert!(error.contains("invisible"), "{invisible:?}: {error}");
        }
        // Line separators are whitespace, refused as such.
        assert!(normalize_email("alice\u{2028}@example.com").is_err());
        // Cyrillic and Greek look-alikes mixed with Latin letters are refused; an address in
        // one script is accepted.
        for mixed in [
            "p\u{0430}ypal@example.com",
            "alice@\u{0435}xample.com",
            "\u{03BF}bama@example.com",
        ] {
            let error = normalize_email(mixed).unwrap_err();
            assert!(error.contains("scripts"), "{mixed:?}: {error}");
        }
        assert!(normalize_email("\u{043F}\u{043E}\u{0447}\u{0442}\u{0430}@\u{043F}\u{0440}\u{0438}\u{043C}\u{0435}\u{0440}.\u{0440}\u{0444}").is_ok());
        assert!(normalize_email("alice@\u{043F}\u{0440}\u{0438}\u{043C}\u{0435}\u{0440}.com").is_ok());
        assert!(normalize_email("\u{7530}\u{4E2D}taro@example.jp").is_ok());
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
