//! Connection caps of one listener: a global cap (from the file-descriptor limit) and a cap per
//! source. At accept time only the peer address is known, so the source is the peer address
//! (IPv6 by /64, which one subscriber usually holds whole); a trusted reverse proxy carries
//! many clients and is held to the global cap only.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use prometheus::IntGauge;

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The listener holds its maximum number of connections.
    Global,
    /// This source holds its maximum number of connections.
    PerSource,
}

impl Refused {
    /// Metric label.
    pub fn label(self) -> &'static str {
        match self {
            Refused::Global => "global",
            Refused::PerSource => "per_source",
        }
    }
}

/// A connection's source: `consultroom_clinic::client_ip::source_key` (IPv6 by /64, IPv4-mapped
/// as IPv4), the same grouping as the login and stream limits.
type Source = IpAddr;

#[derive(Default)]
struct Counts {
    total: usize,
    per_source: HashMap<Source, usize>,
}

/// The caps and what is open now.
pub struct Limiter {
    max_total: usize,
    max_per_source: usize,
    trusted: Vec<ipnet::IpNet>,
    open: IntGauge,
    counts: Mutex<Counts>,
}

impl Limiter {
    pub fn new(
        max_total: usize,
        max_per_source: usize,
        trusted: Vec<ipnet::IpNet>,
        open: IntGauge,
    ) -> Arc<Limiter> {
        Arc::new(Limiter {
            max_total,
            max_per_source,
            trusted,
            open,
            counts: Mutex::new(Counts::default()),
        })
    }

    /// Take a slot for a connection from `peer`, or say why not.
    pub fn acquire(self: &Arc<Self>, peer: IpAddr) -> Result<Slot, Refused> {
        let key = consultroom_clinic::client_ip::source_key(peer);
        let unlimited = self.trusted.iter().any(|n| n.contains(&peer));
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if c.total >= self.max_total {
            return Err(Refused::Global);
        }
        let n = c.per_source.entry(key).or_insert(0);
        if !unlimited && *n >= self.max_per_source {
            return Err(Refused::PerSource);
        }
        *n += 1;
        c.total += 1;
        drop(c);
        self.open.inc();
        Ok(Slot {
            limiter: self.clone(),
            key,
        })
    }
}

/// One open connection's place in the counts; given back on drop.
pub struct Slot {
    limiter: Arc<Limiter>,
    key: Source,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self
            .limiter
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        c.total -= 1;
        if let Some(n) = c.per_source.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                c.per_source.remove(&self.key);
            }
        }
        drop(c);
        self.limiter.open.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gauge() -> IntGauge {
        IntGauge::new("open", "open").unwrap()
    }

    #[test]
    fn per_source_and_global_caps_and_slots_come_back() {
        let l = Limiter::new(5, 2, vec!["10.0.0.0/8".parse().unwrap()], gauge());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let s1 = l.acquire(a).unwrap();
        let _s2 = l.acquire(a).unwrap();
        assert_eq!(l.acquire(a).err(), Some(Refused::PerSource));
        let _s3 = l.acquire(b).unwrap();
        drop(s1);
        let _s4 = l.acquire(a).unwrap();
        // A trusted proxy is held to the global cap only.
        let p: IpAddr = "10.1.2.3".parse().unwrap();
        let _p1 = l.acquire(p).unwrap();
        let _p2 = l.acquire(p).unwrap();
        assert_eq!(l.acquire(p).err(), Some(Refused::Global));
        assert_eq!(l.open.get(), 5);
    }

    #[test]
    fn ipv6_counts_by_64_and_mapped_ipv4_as_ipv4() {
        let l = Limiter::new(100, 1, vec![], gauge());
        let _a = l.acquire("2001:db8:1:2::1".parse().unwrap()).unwrap();
        assert_eq!(
            l.acquire("2001:db8:1:2::ffff".parse().unwrap()).err(),
            Some(Refused::PerSource)
        );
        assert!(l.acquire("2001:db8:1:3::1".parse().unwrap()).is_ok());
        let _v4 = l.acquire("192.0.2.9".parse().unwrap()).unwrap();
        assert_eq!(
            l.acquire("::ffff:192.0.2.9".parse().unwrap()).err(),
            Some(Refused::PerSource)
        );
    }
}
