//! The publish policy check: before an offer is applied, refuse it when it publishes a screen
//! share the participant may not send.
//!
//! Invariant: this reads the SDP text only (m-line kind, `a=mid`, direction) and never
//! panics on hostile input; an offer it refuses is not applied at all, so a refused offer
//! leaves the session exactly as it was.

use crate::{OfferError, PublishPolicy, TrackSource};

/// One m-section as far as the policy cares.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Section<'a> {
    kind: &'a str,
    mid: Option<&'a str>,
    /// The client sends on it (`sendrecv`, the default, or `sendonly`).
    sends: bool,
}

fn sections(sdp: &str) -> Vec<Section<'_>> {
    let mut out: Vec<Section<'_>> = Vec::new();
    for line in sdp.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(rest) = line.strip_prefix("m=") {
            out.push(Section {
                kind: rest.split(' ').next().unwrap_or(""),
                mid: None,
                sends: true,
            });
        } else if let Some(section) = out.last_mut() {
            if let Some(mid) = line.strip_prefix("a=mid:") {
                section.mid = Some(mid.trim());
            } else if line == "a=recvonly" || line == "a=inactive" {
                section.sends = false;
            }
        }
    }
    out
}

/// Refuses `sdp` when it sends on an m-line the policy declares [`TrackSource::Screen`] and
/// screen share is not allowed.
pub(crate) fn check(sdp: &str, policy: &PublishPolicy) -> Result<(), OfferError> {
    if policy.allow_screen {
        return Ok(());
    }
    for section in sections(sdp) {
        let Some(mid) = section.mid else {
            continue;
        };
        if section.sends
            && section.kind != "application"
            && policy.source_of(mid) == Some(TrackSource::Screen)
        {
            return Err(OfferError::Forbidden(format!(
                "screen share is not allowed (m-line {mid})"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDP: &str = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendrecv\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=sendonly\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:2\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:3\r\na=recvonly\r\n";

    fn policy(sources: &[(&str, TrackSource)], allow_screen: bool) -> PublishPolicy {
        PublishPolicy {
            sources: sources.iter().map(|(m, s)| (m.to_string(), *s)).collect(),
            allow_screen,
        }
    }

    #[test]
    fn screen_is_refused_only_when_sent_and_not_allowed() {
        use TrackSource::*;
        let cases = [
            (policy(&[("2", Screen)], false), false),
            (policy(&[("1", Screen)], false), false),
            (policy(&[("2", Screen)], true), true),
            // Declared but only received (or absent): nothing is published.
            (policy(&[("3", Screen)], false), true),
            (policy(&[("9", Screen)], false), true),
            (policy(&[("1", Camera), ("0", Microphone)], false), true),
            (policy(&[], false), true),
        ];
        for (i, (p, ok)) in cases.iter().enumerate() {
            assert_eq!(check(SDP, p).is_ok(), *ok, "case {i}");
        }
        assert!(matches!(
            check(SDP, &policy(&[("2", Screen)], false)),
            Err(OfferError::Forbidden(_))
        ));
    }

    #[test]
    fn hostile_text_never_panics() {
        let p = policy(&[("x", TrackSource::Screen)], false);
        for s in [
            "",
            "m=",
            "a=mid:x",
            "m=video\na=mid:x\n",
            "m=\u{1F600}\na=mid:x",
        ] {
            let _ = check(s, &p);
        }
        assert!(check("m=video\na=mid:x\n", &p).is_err());
        for n in 0..SDP.len() {
            if SDP.is_char_boundary(n) {
                let _ = check(&SDP[..n], &p);
            }
        }
    }
}
