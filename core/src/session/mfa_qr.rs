//! What enrolling a second factor gives the user ([`MfaEnrollment`]): the `otpauth://` URI
//! an authenticator app scans, as a QR code in SVG or PNG, the secret to type in by hand,
//! and the recovery codes. All of it is secret: it is never in `Debug`, logs or errors, and
//! the strings are wiped from memory when dropped.

use std::fmt;

use qrcode::render::svg;
use qrcode::{Color, EcLevel, QrCode};
use zeroize::Zeroizing;

use crate::error::AuthError;

/// Modules of white around the code, as the QR standard asks.
const QUIET_ZONE: usize = 4;
/// Pixels per module of the PNG: 8 px makes a 41-module code 392 px wide.
const PNG_SCALE: usize = 8;

/// A second factor being set up ([`AuthClient::enroll_mfa`](super::AuthClient::enroll_mfa)),
/// shown to the user once: scan [`MfaEnrollment::qr_svg`] (or [`MfaEnrollment::qr_png`])
/// with an authenticator app, or type [`MfaEnrollment::secret`] in; keep the
/// [`MfaEnrollment::recovery_codes`] somewhere safe; then confirm with a code from the app
/// ([`AuthClient::confirm_mfa`](super::AuthClient::confirm_mfa)). Nothing here is stored
/// by the client or readable again from the server.
///
/// Its `Debug` shows none of it.
#[derive(Clone, PartialEq, Eq)]
pub struct MfaEnrollment {
    uri: Zeroizing<String>,
    secret: Zeroizing<String>,
    recovery_codes: Vec<Zeroizing<String>>,
}

impl fmt::Debug for MfaEnrollment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MfaEnrollment")
            .field("uri", &"<redacted>")
            .field("secret", &"<redacted>")
            .field(
                "recovery_codes",
                &format_args!("<{} redacted>", self.recovery_codes.len()),
            )
            .finish()
    }
}

impl MfaEnrollment {
    /// The enrolment the server answered.
    pub(super) fn from_wire(wire: holdfast_protocol::wire::MfaEnrollment) -> MfaEnrollment {
        MfaEnrollment {
            uri: Zeroizing::new(wire.uri),
            secret: Zeroizing::new(wire.secret),
            recovery_codes: wire.recovery_codes.into_iter().map(Zeroizing::new).collect(),
        }
    }

    /// The `otpauth://totp/…` URI (Key Uri Format) an authenticator app reads from the QR
    /// code. Secret: it carries the shared secret.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The shared secret, base32 (RFC 4648, no padding), for typing into an authenticator
    /// app by hand. Secret.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The single-use recovery codes, shown once: each can finish a sign-in or confirm a
    /// sensitive action instead of a code from the app. Secret.
    pub fn recovery_codes(&self) -> Vec<String> {
        self.recovery_codes.iter().map(|code| code.to_string()).collect()
    }

    /// The URI as a QR code, an SVG document (black on white, a quiet zone around it,
    /// scalable). Secret, like the URI.
    pub fn qr_svg(&self) -> Result<String, AuthError> {
        let code = self.qr()?;
        Ok(code
            .render::<svg::Color<'_>>()
            .min_dimensions(256, 256)
            .quiet_zone(true)
            .build())
    }

    /// The URI as a QR code, a PNG image (8-bit grayscale, 8 pixels per module, a quiet
    /// zone around it). Secret, like the URI.
    pub fn qr_png(&self) -> Result<Vec<u8>, AuthError> {
        let code = self.qr()?;
        let modules = code.width();
        let colors = code.to_colors();
        let side = (modules + 2 * QUIET_ZONE) * PNG_SCALE;
        let mut pixels = vec![0xFF_u8; side * side];
        for (index, color) in colors.iter().enumerate() {
            if *color != Color::Dark {
                continue;
            }
            let (x, y) = (index % modules + QUIET_ZONE, index / modules + QUIET_ZONE);
            for row in y * PNG_SCALE..(y + 1) * PNG_SCALE {
                let start = row * side + x * PNG_SCALE;
                pixels[start..start + PNG_SCALE].fill(0);
            }
        }
        let side = u32::try_from(side).map_err(|_| qr_error())?;
        let mut png = Vec::new();
        let mut encoder = png::Encoder::new(&mut png, side, side);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|_| qr_error())?;
        writer.write_image_data(&pixels).map_err(|_| qr_error())?;
        writer.finish().map_err(|_| qr_error())?;
        Ok(png)
    }

    /// The QR code of the URI (error correction M, what authenticator apps expect).
    fn qr(&self) -> Result<QrCode, AuthError> {
        QrCode::with_error_correction_level(self.uri.as_bytes(), EcLevel::M).map_err(|_| qr_error())
    }
}

/// The URI could not be drawn (far too long for a QR code: the server's never is). Says
/// nothing of the URI.
fn qr_error() -> AuthError {
    AuthError::Protocol {
        message: "the enrolment URI cannot be drawn as a QR code".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enrollment() -> MfaEnrollment {
        MfaEnrollment::from_wire(holdfast_protocol::wire::MfaEnrollment {
            uri: "otpauth://totp/Holdfast:ada%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=Holdfast"
                .to_owned(),
            secret: "JBSWY3DPEHPK3PXP".to_owned(),
            recovery_codes: vec!["abcd-efgh".to_owned(), "ijkl-mnop".to_owned()],
        })
    }

    #[test]
    fn debug_shows_no_secret() {
        let shown = format!("{:?}", enrollment());
        for secret in ["JBSWY3DPEHPK3PXP", "otpauth", "abcd-efgh", "ijkl-mnop"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("<2 redacted>"), "{shown}");
    }

    #[test]
    fn the_qr_code_is_svg_and_png() {
        let enrollment = enrollment();
        let svg = enrollment.qr_svg().unwrap();
        assert!(svg.starts_with("<?xml") || svg.starts_with("<svg"), "{svg:.40}");
        assert!(svg.contains("</svg>"));
        let png = enrollment.qr_png().unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let reader = decoder.read_info().unwrap();
        let info = reader.info();
        assert_eq!(info.width, info.height);
        assert_eq!(info.width as usize % PNG_SCALE, 0);
    }
}
