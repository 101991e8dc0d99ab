//! Which addresses the SFU announces as ICE host candidates, and which of them a datagram was
//! sent to.
//!
//! Invariant: every candidate carries the bound port; a datagram's local address is always one
//! of the candidates, because str0m only answers STUN that arrived on a known local candidate.

use std::net::{IpAddr, SocketAddr};

use crate::SfuConfig;

/// The host candidate addresses for a socket bound to `bound`.
///
/// `config.announce` wins when set. Otherwise a specific bound address is announced as is, and
/// a wildcard bind announces `interfaces` (the machine's non-loopback addresses of the bound
/// family; IPv4 for 0.0.0.0).
pub(crate) fn candidate_addrs(
    config: &SfuConfig,
    bound: SocketAddr,
    interfaces: impl FnOnce() -> Vec<IpAddr>,
) -> Vec<SocketAddr> {
    let port = bound.port();
    let ips: Vec<IpAddr> = if !config.announce.is_empty() {
        config.announce.clone()
    } else if !bound.ip().is_unspecified() {
        vec![bound.ip()]
    } else {
        interfaces()
            .into_iter()
            .filter(|ip| !ip.is_loopback() && ip.is_ipv4() == bound.is_ipv4())
            .collect()
    };
    let mut out: Vec<SocketAddr> = Vec::new();
    for ip in ips {
        let addr = SocketAddr::new(ip, port);
        if !ip.is_unspecified() && !out.contains(&addr) {
            out.push(addr);
        }
    }
    out
}

/// The machine's interface addresses (empty if they cannot be read).
pub(crate) fn interface_ips() -> Vec<IpAddr> {
    match if_addrs::get_if_addrs() {
        Ok(list) => list
            .into_iter()
            .filter(|i| !i.is_loopback() && !i.is_link_local())
            .map(|i| i.ip())
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot list network interfaces");
            Vec::new()
        }
    }
}

/// The local candidate a datagram from `source` is taken to have arrived on.
///
/// One socket without `IP_PKTINFO` does not tell the destination address, so: the bound address
/// when it is itself a candidate, else the first candidate of the source's address family.
/// Exact on single-address hosts and with 1:1 NAT announcements; a multi-homed wildcard bind
/// would need `IP_PKTINFO` (left for later).
pub(crate) fn local_for(
    candidates: &[SocketAddr],
    bound: SocketAddr,
    source: SocketAddr,
) -> SocketAddr {
    if candidates.contains(&bound) {
        return bound;
    }
    candidates
        .iter()
        .find(|c| c.is_ipv4() == source.is_ipv4())
        .or_else(|| candidates.first())
        .copied()
        .unwrap_or(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(bind: &str, announce: &[&str]) -> SfuConfig {
        SfuConfig {
            loops: 1,
            tcp_bind: None,
            bind: bind.parse().unwrap(),
            announce: announce.iter().map(|a| a.parse().unwrap()).collect(),
        }
    }

    fn no_interfaces() -> Vec<IpAddr> {
        panic!("interfaces must not be listed here")
    }

    #[test]
    fn announce_list_wins_with_bound_port() {
        let c = config("0.0.0.0:0", &["203.0.113.7", "203.0.113.7", "0.0.0.0"]);
        let bound: SocketAddr = "0.0.0.0:40000".parse().unwrap();
        assert_eq!(
            candidate_addrs(&c, bound, no_interfaces),
            vec!["203.0.113.7:40000".parse::<SocketAddr>().unwrap()]
        );
    }

    #[test]
    fn specific_bind_is_announced() {
        let c = config("127.0.0.1:0", &[]);
        let bound: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        assert_eq!(candidate_addrs(&c, bound, no_interfaces), vec![bound]);
    }

    #[test]
    fn wildcard_bind_announces_non_loopback_ipv4_interfaces() {
        let c = config("0.0.0.0:0", &[]);
        let bound: SocketAddr = "0.0.0.0:6000".parse().unwrap();
        let got = candidate_addrs(&c, bound, || {
            vec![
                "127.0.0.1".parse().unwrap(),
                "192.168.1.5".parse().unwrap(),
                "fd00::1".parse().unwrap(),
                "10.0.0.2".parse().unwrap(),
            ]
        });
        let want: Vec<SocketAddr> = vec![
            "192.168.1.5:6000".parse().unwrap(),
            "10.0.0.2:6000".parse().unwrap(),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn local_for_prefers_bound_then_family() {
        let bound: SocketAddr = "0.0.0.0:7000".parse().unwrap();
        let cands: Vec<SocketAddr> = vec![
            "[2001:db8::1]:7000".parse().unwrap(),
            "198.51.100.1:7000".parse().unwrap(),
        ];
        let v4: SocketAddr = "192.0.2.9:1234".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::9]:1234".parse().unwrap();
        assert_eq!(local_for(&cands, bound, v4), cands[1]);
        assert_eq!(local_for(&cands, bound, v6), cands[0]);
        let lo: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        assert_eq!(local_for(&[lo], lo, v4), lo);
        assert_eq!(local_for(&[], bound, v4), bound);
    }
}
