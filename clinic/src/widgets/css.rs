//! The custom-CSS sanitiser of widgets (wizard step 4).
//!
//! Invariants: custom CSS is refused (never silently rewritten) when it could load or run
//! anything: `@import`, `url(` other than an inline `data:image/{png,jpeg,gif,webp}` image,
//! `image-set(`, `src(`, `expression`, `javascript:`, `behavior`, `-moz-binding`, `</style` or any
//! `<`, backslash escapes (which could spell any of these), and control characters. The check
//! runs on a lower-cased copy with comments removed, so neither case nor comments hide a keyword.
//! The widget's CSP (`img-src 'self' data:`, `style-src 'self'`) is the second line of defence.

/// Largest custom stylesheet, in bytes.
pub const MAX_CSS_BYTES: usize = 16 * 1024;

/// Why custom CSS was refused; the message names the offending construct.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("custom_css: {0}")]
pub struct CssRefused(pub &'static str);

/// Accepts `css` unchanged or says why not.
pub fn check(css: &str) -> Result<(), CssRefused> {
    if css.len() > MAX_CSS_BYTES {
        return Err(CssRefused("must be at most 16 KiB"));
    }
    if css
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err(CssRefused("control characters are not allowed"));
    }
    if css.contains('\\') {
        return Err(CssRefused("backslash escapes are not allowed"));
    }
    if css.contains('<') {
        return Err(CssRefused("\"<\" (such as </style>) is not allowed"));
    }
    let text = strip_comments(&css.to_ascii_lowercase());
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    for (needle, why) in [
        ("@import", "@import is not allowed"),
        ("expression", "expression() is not allowed"),
        ("javascript:", "javascript: is not allowed"),
        ("vbscript:", "vbscript: is not allowed"),
        ("behavior", "behavior is not allowed"),
        ("-moz-binding", "-moz-binding is not allowed"),
        ("image-set(", "image-set() is not allowed"),
        ("src(", "src() is not allowed"),
        ("@font-face", "@font-face is not allowed"),
    ] {
        if compact.contains(needle) {
            return Err(CssRefused(why));
        }
    }
    let mut rest = compact.as_str();
    while let Some(i) = rest.find("url(") {
        rest = &rest[i + 4..];
        let arg = rest.trim_start_matches(['"', '\'']);
        let allowed = [
            "data:image/png;base64,",
            "data:image/jpeg;base64,",
            "data:image/gif;base64,",
            "data:image/webp;base64,",
        ];
        let Some(prefix) = allowed.iter().find(|p| arg.starts_with(*p)) else {
            return Err(CssRefused(
                "url() may only hold an inline data:image/png, jpeg, gif or webp (base64) image",
            ));
        };
        let payload = &arg[prefix.len()..];
        let end = payload.find(['"', '\'', ')']).unwrap_or(payload.len());
        if !payload[..end]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '=')
        {
            return Err(CssRefused("a data: image in url() must be plain base64"));
        }
    }
    Ok(())
}

fn strip_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("/*") {
        out.push_str(&rest[..i]);
        // An unterminated comment runs to the end, as in CSS.
        rest = match rest[i + 2..].find("*/") {
            Some(j) => &rest[i + 2 + j + 2..],
            None => "",
        };
        out.push(' ');
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: &[(&str, bool)] = &[
            (
                ".cr-widget h1 { font-family: Georgia, serif; color: #123; }",
                true,
            ),
            (
                "body { background: url(data:image/png;base64,iVBORw0KGgo=) }",
                true,
            ),
            (
                "body { background: url('data:image/webp;base64,UklGRg==') }",
                true,
            ),
            ("a { color: red } /* a comment */", true),
            ("@import url(https://evil.example/x.css);", false),
            ("@IMPORT 'x.css';", false),
            ("@im/**/port 'x.css';", false),
            (
                "body { background: url(https://evil.example/track.png) }",
                false,
            ),
            ("body { background: URL( //evil.example/t.png ) }", false),
            (
                "body { background: url(data:text/html;base64,PHNjcmlwdD4=) }",
                false,
            ),
            ("body { background: url(data:image/svg+xml,<svg/>) }", false),
            (
                "body { background: url(\"data:image/png;base64,AAA\" ) url(x) }",
                false,
            ),
            ("div { width: expression(alert(1)) }", false),
            ("div { width: EXPRESSION (alert(1)) }", false),
            ("a { background: javascript:alert(1) }", false),
            ("</style><script>alert(1)</script>", false),
            ("div { behavior: url(x.htc) }", false),
            ("div { -moz-binding: url(x.xml#y) }", false),
            ("div { background: image-set('x.png' 1x) }", false),
            ("div { background: \\75 rl(x) }", false),
            ("@font-face { font-family: x; src: local(x) }", false),
            ("div { color: red }\u{0}", false),
        ];
        for (css, ok) in cases {
            assert_eq!(check(css).is_ok(), *ok, "{css}");
        }
        assert!(check(&"a{}".repeat(6000)).is_err());
    }
}
