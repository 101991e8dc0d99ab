//! Reading the few SDP facts tests need (m-line kinds, mids, msids, extension ids).

/// One m-section of an SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MLine {
    pub kind: String,
    pub mid: String,
    /// `a=msid:<stream> <track>`, if any.
    pub msid: Option<(String, String)>,
    /// `a=sendrecv` / `a=sendonly` / `a=recvonly` / `a=inactive`.
    pub direction: String,
    /// `(id, uri)` of every `a=extmap`.
    pub extmaps: Vec<(u8, String)>,
}

/// The m-sections of `sdp`, in order.
pub fn m_lines(sdp: &str) -> Vec<MLine> {
    let mut out: Vec<MLine> = Vec::new();
    for line in sdp.lines() {
        let line = line.trim_end();
        if let Some(rest) = line.strip_prefix("m=") {
            out.push(MLine {
                kind: rest.split(' ').next().unwrap_or_default().to_string(),
                mid: String::new(),
                msid: None,
                direction: "sendrecv".into(),
                extmaps: Vec::new(),
            });
            continue;
        }
        let Some(m) = out.last_mut() else {
            continue;
        };
        if let Some(mid) = line.strip_prefix("a=mid:") {
            m.mid = mid.to_string();
        } else if let Some(msid) = line.strip_prefix("a=msid:") {
            let mut parts = msid.split(' ');
            let stream = parts.next().unwrap_or_default().to_string();
            let track = parts.next().unwrap_or_default().to_string();
            m.msid = Some((stream, track));
        } else if let Some(ext) = line.strip_prefix("a=extmap:") {
            let mut parts = ext.split(' ');
            let id = parts.next().unwrap_or_default();
            let id = id
                .split('/')
                .next()
                .unwrap_or_default()
                .parse()
                .unwrap_or(0);
            m.extmaps
                .push((id, parts.next().unwrap_or_default().to_string()));
        } else if let Some(dir) = ["sendrecv", "sendonly", "recvonly", "inactive"]
            .iter()
            .find(|d| line == format!("a={d}"))
        {
            m.direction = dir.to_string();
        }
    }
    out
}

impl MLine {
    /// The id negotiated for extension `uri` in this section.
    pub fn extmap(&self, uri: &str) -> Option<u8> {
        self.extmaps
            .iter()
            .find(|(_, u)| u == uri)
            .map(|(id, _)| *id)
    }
}

/// `sdp` with its bundled m-lines written as Firefox writes them under the `max-bundle` policy
/// (RFC 8843): every m-line but the first gets port 0, and in an offer `a=bundle-only` (before
/// its `a=mid`, after any `c=` line, as SDP orders them).
pub fn firefox_bundle(sdp: &str, offer: bool) -> String {
    let mut out = String::with_capacity(sdp.len() + 64);
    let mut seen = 0;
    for line in sdp.split_inclusive('\n') {
        if let Some(rest) = line.strip_prefix("m=") {
            seen += 1;
            if seen > 1 {
                let mut parts = rest.splitn(3, ' ');
                let (kind, _port, tail) = (
                    parts.next().unwrap_or_default(),
                    parts.next().unwrap_or_default(),
                    parts.next().unwrap_or_default(),
                );
                out.push_str(&format!("m={kind} 0 {tail}"));
                continue;
            }
        } else if offer && seen > 1 && line.starts_with("a=mid:") {
            out.push_str("a=bundle-only\r\n");
        }
        out.push_str(line);
    }
    out
}
