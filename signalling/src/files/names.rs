//! Display names of shared files: sanitised (no path, no control or bidi characters, bounded)
//! before anyone sees them, and encoded safely into `Content-Disposition`.

/// Longest display name kept, in characters (the extension is kept when shortening).
pub const MAX_NAME_CHARS: usize = 120;

/// A display name safe to show and to put in a download header: only the last path component
/// (`/` and `\`), without control characters, bidi overrides or characters that Windows refuses
/// in file names, without leading dots or surrounding spaces, at most [`MAX_NAME_CHARS`]
/// characters; `"file"` when nothing is left.
pub fn sanitise(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control() && !is_bidi_or_invisible(*c))
        .map(|c| match c {
            '<' | '>' | ':' | '"' | '|' | '?' | '*' => '_',
            c => c,
        })
        .collect();
    let trimmed = cleaned.trim().trim_start_matches('.').trim();
    let name = if trimmed.chars().count() > MAX_NAME_CHARS {
        shorten(trimmed)
    } else {
        trimmed.to_owned()
    };
    if name.is_empty() || name.chars().all(|c| c == '.') {
        "file".to_owned()
    } else {
        name
    }
}

fn shorten(name: &str) -> String {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e)
        .filter(|e| !e.is_empty() && e.chars().count() <= 10);
    match ext {
        Some(ext) => {
            let keep = MAX_NAME_CHARS - ext.chars().count() - 1;
            let stem: String = name.chars().take(keep).collect();
            format!("{}.{ext}", stem.trim_end())
        }
        None => name.chars().take(MAX_NAME_CHARS).collect(),
    }
}

fn is_bidi_or_invisible(c: char) -> bool {
    matches!(c,
        '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// `attachment; filename="<ASCII fallback>"; filename*=UTF-8''<percent-encoded>` (RFC 6266,
/// RFC 8187). The name is expected to be [`sanitise`]d already.
pub fn content_disposition(name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::with_capacity(name.len() * 3);
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_like_and_hostile_names_are_sanitised() {
        assert_eq!(sanitise("../../etc/passwd"), "passwd");
        assert_eq!(sanitise("..\\..\\windows\\win.ini"), "win.ini");
        assert_eq!(sanitise("a\r\nb.pdf"), "ab.pdf");
        assert_eq!(sanitise("report\u{202e}fdp.exe"), "reportfdp.exe");
        assert_eq!(sanitise("..."), "file");
        assert_eq!(sanitise(""), "file");
        assert_eq!(sanitise("/"), "file");
        assert_eq!(sanitise(".hidden.txt"), "hidden.txt");
        assert_eq!(sanitise("what?<x>.txt"), "what__x_.txt");
        let long = format!("{}.pdf", "a".repeat(5000));
        let s = sanitise(&long);
        assert_eq!(s.chars().count(), MAX_NAME_CHARS);
        assert!(s.ends_with(".pdf"));
    }

    #[test]
    fn content_disposition_is_ascii_and_quoted_safely() {
        let h = content_disposition("Uitslag \"bloed\" é.pdf");
        assert_eq!(
            h,
            "attachment; filename=\"Uitslag _bloed_ _.pdf\"; filename*=UTF-8''Uitslag%20%22bloed%22%20%C3%A9.pdf"
        );
        assert!(h.is_ascii());
    }
}
