//! The address a request comes from, for per-source rate limits (walk-in entries, staff login).
//!
//! Behind a reverse proxy every request comes from the proxy, so per-IP limits would throttle all
//! users together. With `trusted_proxies` configured (CIDR ranges), `X-Forwarded-For` is read
//! from the right, skipping addresses of trusted proxies; the first untrusted address is the
//! client. The header is ignored unless the direct peer is itself a trusted proxy, so a client
//! cannot choose its own key by sending the header.
//!
//! Invariant: addresses are used as in-memory limiter keys only, never logged.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;

use crate::Clinic;

/// Longest `X-Forwarded-For` value considered (longer ones are ignored: the peer is used).
const MAX_FORWARDED_LEN: usize = 1024;

/// The client's address, or `None` when the server runs without peer addresses (tests that
/// serve the router directly).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<Clinic> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        clinic: &Clinic,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        Ok(ClientIp(peer.map(|peer| {
            client_ip(peer, &parts.headers, &clinic.config().trusted_proxies)
        })))
    }
}

/// The client address for a request from `peer` with `headers`.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    // Every X-Forwarded-For header, in order, as one list.
    let mut hops: Vec<IpAddr> = Vec::new();
    let mut total = 0;
    for value in headers.get_all("x-forwarded-for") {
        let Ok(text) = value.to_str() else {
            return peer;
        };
        total += text.len();
        if total > MAX_FORWARDED_LEN {
            return peer;
        }
        for part in text.split(',') {
            match parse_hop(part.trim()) {
                Some(ip) => hops.push(ip),
                // A malformed list cannot be trusted past this point.
                None => return peer,
            }
        }
    }
    hops.into_iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .unwrap_or(peer)
}

/// The key under which `ip` is counted by per-source limits: an IPv4 address (IPv4-mapped IPv6
/// included) as itself, an IPv6 address by its /64 (one subscriber usually holds a whole /64, so
/// counting single addresses would let one client take as many keys as it likes).
pub fn source_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & (u128::MAX << 64);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

/// One hop: an IP address, optionally `[v6]:port` or `v4:port`.
fn parse_hop(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    s.parse::<SocketAddr>().ok().map(|a| canonical(a.ip()))
}

/// IPv4-mapped IPv6 addresses count as their IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_proxy() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let h = headers(&["203.0.113.7"]);
        // A direct client cannot pick its key.
        assert_eq!(
            client_ip(ip("198.51.100.1"), &h, &trusted),
            ip("198.51.100.1")
        );
        assert_eq!(client_ip(ip("198.51.100.1"), &h, &[]), ip("198.51.100.1"));
        // Through the proxy: the forwarded client.
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &trusted), ip("203.0.113.7"));
    }

    #[test]
    fn rightmost_untrusted_hop_wins() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        // The client spoofed a first entry; the proxies appended the real one and themselves.
        let h = headers(&["1.2.3.4, 203.0.113.7", "10.1.1.1"]);
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &trusted), ip("203.0.113.7"));
        let h = headers(&["[2001:db8::5]:4711, 10.9.9.9"]);
        assert_eq!(client_ip(ip("::1"), &h, &trusted), ip("2001:db8::5"));
        let h = headers(&["::ffff:203.0.113.9"]);
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &trusted), ip("203.0.113.9"));
        // Only trusted hops: the peer.
        let h = headers(&["10.3.3.3"]);
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &trusted), ip("10.0.0.2"));
    }

    #[test]
    fn source_keys_group_ipv6_by_64() {
        assert_eq!(source_key(ip("203.0.113.7")), ip("203.0.113.7"));
        assert_eq!(source_key(ip("::ffff:203.0.113.7")), ip("203.0.113.7"));
        assert_eq!(source_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(
            source_key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")),
            source_key(ip("2001:db8:1:2::5"))
        );
        assert_ne!(
            source_key(ip("2001:db8:1:3::1")),
            source_key(ip("2001:db8:1:2::1"))
        );
    }

    #[test]
    fn malformed_or_oversized_headers_fall_back_to_the_peer() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        for bad in [
            "not-an-ip",
            "203.0.113.7,, 1.2.3.4",
            "203.0.113.7; drop",
            "",
        ] {
            assert_eq!(
                client_ip(ip("10.0.0.2"), &headers(&[bad]), &trusted),
                ip("10.0.0.2"),
                "{bad:?}"
            );
        }
        let long = vec!["203.0.113.7"; 200].join(", ");
        assert_eq!(
            client_ip(ip("10.0.0.2"), &headers(&[&long]), &trusted),
            ip("10.0.0.2")
        );
        assert_eq!(
            client_ip(ip("10.0.0.2"), &HeaderMap::new(), &trusted),
            ip("10.0.0.2")
        );
    }
}
