//! Percent-encoding (RFC 3986) of what goes into a URL: a path segment of a route, a token
//! in a mail link, the label and parameters of an `otpauth://` URI.

/// Appends `text` with every byte but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _
/// ~`) as `%XX`, upper-case hex: safe in a path segment and in a query value alike.
///
/// ```
/// let mut out = String::from("/device/");
/// holdfast_protocol::percent::encode_into("a/b é", &mut out);
/// assert_eq!(out, "/device/a%2Fb%20%C3%A9");
/// ```
pub fn encode_into(text: &str, out: &mut String) {
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
