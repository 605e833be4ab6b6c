//! Percent-encoding (RFC 3986) of the values the kit writes into links and URIs: mail links'
//! tokens, and the labels and parameters of `otpauth://` URIs.

/// Appends `text` with every byte but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _
/// ~`) as `%XX`, upper-case hex: safe in a path segment and in a query value alike.
pub(crate) fn encode_into(text: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in text.as_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xF)]));
        }
    }
}
