//! Bundled m-lines with port 0, as str0m should read them.
//!
//! RFC 8843: an offer made under the `max-bundle` policy marks every m-line but the first
//! `a=bundle-only` with port 0 (Firefox does; Chromium writes port 9 everywhere), and an answer
//! gives every bundled m-line but the tagged one port 0. Either way the m-line is in the
//! `a=group:BUNDLE` list and is not rejected. str0m 0.25 knows that when it applies the SDP
//! (`update_media`: "in max-bundle, port=0 with the MID in BUNDLE group is NOT rejected"), but
//! creates a new m-line from port 0 as `Inactive` first (`Media::from_remote_media_line`), and
//! the step from `Inactive` to the real direction is reported as `Event::MediaChanged` once
//! the session connects. The SFU took that as "the publisher changed its m-line" and published
//! the camera again, without its simulcast layers (only a guard for known tracks made it
//! harmless). So before str0m parses an offer or answer, a port-0 m-line whose mid is in a
//! BUNDLE group gets port 9, the placeholder port of a bundled m-line: the same meaning in
//! str0m's own terms. A port-0 m-line outside every BUNDLE group (rejected or stopped) is left
//! as it is.
//!
//! Invariant: only the port of such `m=` lines changes; every other byte is kept, so the size
//! and line caps checked before still hold. Never panics on hostile input.

use std::borrow::Cow;
use std::collections::HashSet;

/// `sdp` with the port of every bundled port-0 m-line set to 9 (see the module docs).
pub(crate) fn bundled_ports(sdp: &str) -> Cow<'_, str> {
    let lines: Vec<&str> = sdp.split_inclusive('\n').collect();
    let text = |line: &str| line.trim_end_matches(['\r', '\n']).to_string();
    let bundled: HashSet<String> = lines
        .iter()
        .filter_map(|&l| text(l).strip_prefix("a=group:BUNDLE").map(str::to_string))
        .flat_map(|mids| {
            mids.split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    if bundled.is_empty() {
        return Cow::Borrowed(sdp);
    }
    // Indices of m-lines with port 0 whose section's mid is bundled.
    let mut fix = Vec::new();
    let mut section: Option<(usize, bool)> = None; // (m-line index, port 0)
    for (i, &line) in lines.iter().enumerate() {
        let line = text(line);
        if let Some(rest) = line.strip_prefix("m=") {
            let port = rest.split(' ').nth(1).unwrap_or("");
            section = Some((i, port == "0"));
        } else if let (Some((m, true)), Some(mid)) = (section, line.strip_prefix("a=mid:"))
            && bundled.contains(mid.trim())
        {
            fix.push(m);
        }
    }
    if fix.is_empty() {
        return Cow::Borrowed(sdp);
    }
    let mut out = String::with_capacity(sdp.len());
    for (i, &line) in lines.iter().enumerate() {
        if fix.contains(&i) {
            // "m=<kind> 0 <rest>" → "m=<kind> 9 <rest>".
            match line.split_once(' ') {
                Some((kind, rest)) if rest.starts_with("0 ") => {
                    out.push_str(kind);
                    out.push_str(" 9");
                    out.push_str(&rest[1..]);
                }
                _ => out.push_str(line),
            }
        } else {
            out.push_str(line);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIREFOX_OFFER: &str = "v=0\r\n\
        o=mozilla...THIS_IS_SDPARTA-99.0 1 0 IN IP4 0.0.0.0\r\n\
        s=-\r\n\
        t=0 0\r\n\
        a=group:BUNDLE 0 1\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 109\r\n\
        a=mid:0\r\n\
        a=sendonly\r\n\
        m=video 0 UDP/TLS/RTP/SAVPF 120\r\n\
        a=bundle-only\r\n\
        a=mid:1\r\n\
        a=sendonly\r\n\
        m=video 0 UDP/TLS/RTP/SAVPF 120\r\n\
        a=mid:2\r\n\
        a=inactive\r\n";

    #[test]
    fn bundled_port_zero_lines_get_port_nine_and_nothing_else_changes() {
        let out = bundled_ports(FIREFOX_OFFER);
        let want = FIREFOX_OFFER.replacen(
            "m=video 0 UDP/TLS/RTP/SAVPF 120\r\na=bundle-only",
            "m=video 9 UDP/TLS/RTP/SAVPF 120\r\na=bundle-only",
            1,
        );
        assert_eq!(out, want);
        // Mid 2 is not bundled: rejected, left at port 0.
        assert!(out.contains("m=video 0 UDP/TLS/RTP/SAVPF 120\r\na=mid:2"));
        assert_eq!(out.len(), FIREFOX_OFFER.len());
        // Bare \n line ends too.
        let lf = FIREFOX_OFFER.replace("\r\n", "\n");
        assert_eq!(bundled_ports(&lf), want.replace("\r\n", "\n"));
    }

    #[test]
    fn sdp_without_bundled_port_zero_is_borrowed() {
        let chromium = FIREFOX_OFFER.replace("m=video 0", "m=video 9");
        assert!(matches!(bundled_ports(&chromium), Cow::Borrowed(_)));
        let no_bundle = FIREFOX_OFFER.replace("a=group:BUNDLE 0 1\r\n", "");
        assert!(matches!(bundled_ports(&no_bundle), Cow::Borrowed(_)));
    }

    #[test]
    fn hostile_input_does_not_panic() {
        for sdp in [
            "",
            "a=group:BUNDLE\r\nm=\r\na=mid:",
            "a=group:BUNDLE x\nm=video 0\na=mid:x\n",
            "a=group:BUNDLE x\nm=video 0 \na=mid:x\n",
            "a=group:BUNDLE x\na=mid:x\nm=0 0 0\n",
            "a=group:BUNDLE é\nm=vidé 0 é\na=mid:é\n",
        ] {
            let _ = bundled_ports(sdp);
        }
        assert_eq!(
            bundled_ports("a=group:BUNDLE x\nm=video 0 P 1\na=mid:x\n"),
            "a=group:BUNDLE x\nm=video 9 P 1\na=mid:x\n"
        );
    }
}
