//! Widget images (logo, background): content-type allow-list, size limit and magic-byte sniffing.
//!
//! Invariant: an image is stored only when the declared type is on the allow-list (PNG, JPEG,
//! WebP) *and* the bytes start with that format's signature, so an HTML or SVG file renamed to
//! `.png` is refused. Images are served back with their stored type and `nosniff`.

/// Largest accepted image, in bytes.
pub const MAX_IMAGE_BYTES: usize = 256 * 1024;

/// Which image of a widget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageKind {
    /// Shown above the title.
    Logo,
    /// Behind the widget.
    Background,
}

impl ImageKind {
    /// Parses the path segment (`logo` or `background`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "logo" => Some(Self::Logo),
            "background" => Some(Self::Background),
            _ => None,
        }
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Logo => "logo",
            Self::Background => "background",
        }
    }
}

/// The allowed content type matching the bytes' signature, if any.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// Normalises a declared `Content-Type` (parameters dropped, lower case) if it is allowed.
pub fn allowed_type(declared: &str) -> Option<&'static str> {
    let base = declared.split(';').next()?.trim().to_ascii_lowercase();
    match base.as_str() {
        "image/png" => Some("image/png"),
        "image/jpeg" | "image/jpg" => Some("image/jpeg"),
        "image/webp" => Some("image/webp"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some("image/png"));
        assert_eq!(
            sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10]),
            Some("image/jpeg")
        );
        assert_eq!(sniff(b"RIFF\x24\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff(b"<!doctype html><script>alert(1)</script>"), None);
        assert_eq!(sniff(b"<svg xmlns='http://www.w3.org/2000/svg'/>"), None);
        assert_eq!(sniff(b"GIF89a"), None);
        assert_eq!(sniff(b""), None);
        assert_eq!(allowed_type("image/PNG; charset=x"), Some("image/png"));
        assert_eq!(allowed_type("image/svg+xml"), None);
        assert_eq!(allowed_type("text/html"), None);
    }
}
