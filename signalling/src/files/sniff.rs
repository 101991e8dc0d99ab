//! Content sniffing against the allow-list: the type of a shared file is decided by its first
//! bytes, never by its name or the type the browser declared, and the name's extension must agree
//! with it (an HTML page named `.png` is refused, not served as an image).
//!
//! Allowed: PDF, PNG, JPEG, GIF, WebP, plain UTF-8 text, and the office formats DOCX, XLSX, ODT
//! and ODS. Everything else (HTML, SVG, scripts, archives, executables, ...) is refused.

/// How many leading bytes are sniffed (or the whole file when smaller). OOXML documents name
/// their `word/` or `xl/` parts within the first few KiB.
pub const SNIFF_LEN: usize = 64 * 1024;

/// An allowed type: its MIME type and the extensions a file of that type may carry (the first
/// is appended when the name has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileType {
    pub mime: &'static str,
    pub extensions: &'static [&'static str],
}

pub const PDF: FileType = FileType {
    mime: "application/pdf",
    extensions: &["pdf"],
};
pub const PNG: FileType = FileType {
    mime: "image/png",
    extensions: &["png"],
};
pub const JPEG: FileType = FileType {
    mime: "image/jpeg",
    extensions: &["jpg", "jpeg"],
};
pub const GIF: FileType = FileType {
    mime: "image/gif",
    extensions: &["gif"],
};
pub const WEBP: FileType = FileType {
    mime: "image/webp",
    extensions: &["webp"],
};
pub const TEXT: FileType = FileType {
    mime: "text/plain",
    extensions: &["txt", "csv", "log", "md"],
};
pub const DOCX: FileType = FileType {
    mime: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    extensions: &["docx"],
};
pub const XLSX: FileType = FileType {
    mime: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    extensions: &["xlsx"],
};
pub const ODT: FileType = FileType {
    mime: "application/vnd.oasis.opendocument.text",
    extensions: &["odt"],
};
pub const ODS: FileType = FileType {
    mime: "application/vnd.oasis.opendocument.spreadsheet",
    extensions: &["ods"],
};

/// Every allowed type.
pub const ALLOWED: &[FileType] = &[PDF, PNG, JPEG, GIF, WEBP, TEXT, DOCX, XLSX, ODT, ODS];

/// Why content was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SniffError {
    /// The content is not of an allowed type.
    NotAllowed,
    /// The content is allowed, but the name's extension says another type (a disguise).
    ExtensionMismatch,
}

/// The lower-case extension of `name`, if it has one.
pub fn extension(name: &str) -> Option<String> {
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then(|| ext.to_ascii_lowercase())
}

/// Whether a name's extension (if any) belongs to an allowed type: lets an offer be refused
/// before anything is uploaded.
pub fn extension_allowed(name: &str) -> bool {
    extension(name).is_none_or(|e| ALLOWED.iter().any(|t| t.extensions.contains(&e.as_str())))
}

/// The allowed type of `head` (the first [`SNIFF_LEN`] bytes, or the whole file), or `None`.
pub fn detect(head: &[u8]) -> Option<FileType> {
    if head.starts_with(b"%PDF-") {
        return Some(PDF);
    }
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some(PNG);
    }
    if head.starts_with(b"\xff\xd8\xff") {
        return Some(JPEG);
    }
    if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        return Some(GIF);
    }
    if head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        return Some(WEBP);
    }
    if head.starts_with(b"PK\x03\x04") {
        return detect_zip(head);
    }
    is_plain_text(head).then_some(TEXT)
}

/// OpenDocument puts an uncompressed `mimetype` member first; OOXML names its parts `word/...`
/// or `xl/...` after `[Content_Types].xml`. Any other archive is refused.
fn detect_zip(head: &[u8]) -> Option<FileType> {
    if head.len() > 38 && &head[30..38] == b"mimetype" {
        let rest = &head[38..];
        if rest.starts_with(ODT.mime.as_bytes()) {
            return Some(ODT);
        }
        if rest.starts_with(ODS.mime.as_bytes()) {
            return Some(ODS);
        }
        return None;
    }
    if !contains(head, b"[Content_Types].xml") {
        return None;
    }
    if contains(head, b"word/") {
        Some(DOCX)
    } else if contains(head, b"xl/") {
        Some(XLSX)
    } else {
        None
    }
}

/// UTF-8 without NUL or other binary control characters, and without markup a browser would
/// render as a page (HTML, SVG, XML).
fn is_plain_text(head: &[u8]) -> bool {
    if head.is_empty() {
        return false;
    }
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        // The sniffed prefix may end inside a multi-byte character.
        Err(e) if e.error_len().is_none() && head.len() - e.valid_up_to() < 4 => {
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return false,
    };
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\x0c'))
    {
        return false;
    }
    let lower = text.to_ascii_lowercase();
    const MARKUP: &[&str] = &[
        "<!doctype",
        "<html",
        "<head",
        "<body",
        "<script",
        "<svg",
        "<?xml",
        "<iframe",
        "<object",
        "<embed",
        "<meta",
        "<img",
        "<style",
        "<a ",
        "<div",
        "<form",
    ];
    !MARKUP.iter().any(|m| lower.contains(m))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Sniff `head` and reconcile it with the display `name`: returns the type and the name to show
/// (with the type's extension appended when the name had none).
pub fn check(head: &[u8], name: &str) -> Result<(FileType, String), SniffError> {
    let ty = detect(head).ok_or(SniffError::NotAllowed)?;
    match extension(name) {
        None => Ok((ty, format!("{name}.{}", ty.extensions[0]))),
        Some(e) if ty.extensions.contains(&e.as_str()) => Ok((ty, name.to_owned())),
        Some(_) => Err(SniffError::ExtensionMismatch),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_types_are_recognised() {
        assert_eq!(detect(b"%PDF-1.7\n..."), Some(PDF));
        assert_eq!(detect(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some(PNG));
        assert_eq!(detect(b"\xff\xd8\xff\xe0\0\x10JFIF"), Some(JPEG));
        assert_eq!(detect(b"GIF89a\x01\0"), Some(GIF));
        assert_eq!(detect(b"RIFF\x24\0\0\0WEBPVP8 "), Some(WEBP));
        assert_eq!(
            detect("Blood pressure 120/80\nnext: 3 mo — ok\n".as_bytes()),
            Some(TEXT)
        );
        let mut odt = b"PK\x03\x04".to_vec();
        odt.resize(30, 0);
        odt.extend_from_slice(b"mimetypeapplication/vnd.oasis.opendocument.text");
        assert_eq!(detect(&odt), Some(ODT));
        let docx = b"PK\x03\x04....[Content_Types].xml....PK\x03\x04..word/document.xml";
        assert_eq!(detect(docx), Some(DOCX));
        let xlsx = b"PK\x03\x04....[Content_Types].xml....PK\x03\x04..xl/workbook.xml";
        assert_eq!(detect(xlsx), Some(XLSX));
    }

    #[test]
    fn dangerous_or_unknown_content_is_refused() {
        for bad in [
            &b"<!DOCTYPE html><script>alert(1)</script>"[..],
            b"  <html><body>hi</body></html>",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>",
            b"<?xml version=\"1.0\"?><x/>",
            b"MZ\x90\0\x03\0\0\0",
            b"\x7fELF\x02\x01\x01",
            b"PK\x03\x04plain zip archive",
            b"text with a \0 NUL",
            b"",
        ] {
            assert_eq!(detect(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn the_name_must_agree_with_the_content() {
        let html = b"<html><script>alert(1)</script></html>";
        assert_eq!(check(html, "scan.png"), Err(SniffError::NotAllowed));
        assert_eq!(
            check(b"%PDF-1.4", "photo.png"),
            Err(SniffError::ExtensionMismatch)
        );
        assert_eq!(check(b"%PDF-1.4", "Report.PDF").unwrap().1, "Report.PDF");
        assert_eq!(check(b"%PDF-1.4", "report").unwrap().1, "report.pdf");
        assert_eq!(check(b"\xff\xd8\xff\xdb", "x.jpeg").unwrap().0, JPEG);
        assert!(extension_allowed("a.pdf") && extension_allowed("notes"));
        assert!(!extension_allowed("page.html") && !extension_allowed("run.exe"));
    }

    #[test]
    fn a_prefix_cut_inside_a_character_is_still_text() {
        let mut t = "é".repeat(10).into_bytes();
        t.pop();
        assert_eq!(detect(&t), Some(TEXT));
    }
}
