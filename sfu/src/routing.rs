//! Datagram routing: which participant's `Rtc` gets an incoming UDP datagram.
//!
//! Invariant: the hot path is one hash lookup by remote 4-tuple (our socket is fixed, so the
//! source address is the key). Only a miss falls back to the STUN USERNAME: its first half is
//! our local ufrag, which maps to exactly one participant; that participant's `Rtc` then checks
//! the message integrity before the 4-tuple is learnt. There is never a scan over all peers.

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::ParticipantId;

/// How many remote addresses one participant may have learnt at once (ICE may validate several
/// candidate pairs; the oldest is forgotten first).
const MAX_ADDRS_PER_PARTICIPANT: usize = 8;

/// Maps remote addresses and local ICE ufrags to participants.
#[derive(Debug, Default)]
pub(crate) struct RoutingTable {
    by_addr: HashMap<SocketAddr, ParticipantId>,
    by_ufrag: HashMap<String, ParticipantId>,
    learnt: HashMap<ParticipantId, Vec<SocketAddr>>,
}

impl RoutingTable {
    /// Registers the local ufrag the participant's `Rtc` answers STUN with.
    pub(crate) fn add_ufrag(&mut self, ufrag: String, p: ParticipantId) {
        self.by_ufrag.insert(ufrag, p);
    }

    /// Hot path: the participant a remote address was learnt for.
    pub(crate) fn by_addr(&self, addr: &SocketAddr) -> Option<ParticipantId> {
        self.by_addr.get(addr).copied()
    }

    /// Fallback: the participant owning a local ufrag.
    pub(crate) fn by_ufrag(&self, ufrag: &str) -> Option<ParticipantId> {
        self.by_ufrag.get(ufrag).copied()
    }

    /// Records that datagrams from `addr` belong to `p` (after `p`'s `Rtc` accepted one).
    pub(crate) fn learn(&mut self, addr: SocketAddr, p: ParticipantId) {
        if let Some(previous) = self.by_addr.insert(addr, p)
            && previous != p
            && let Some(list) = self.learnt.get_mut(&previous)
        {
            list.retain(|a| *a != addr);
        }
        let list = self.learnt.entry(p).or_default();
        if !list.contains(&addr) {
            list.push(addr);
        }
        if list.len() > MAX_ADDRS_PER_PARTICIPANT {
            let oldest = list.remove(0);
            self.by_addr.remove(&oldest);
        }
    }

    /// Forgets everything about `p`.
    pub(crate) fn remove(&mut self, p: ParticipantId) {
        if let Some(list) = self.learnt.remove(&p) {
            for addr in list {
                if self.by_addr.get(&addr) == Some(&p) {
                    self.by_addr.remove(&addr);
                }
            }
        }
        self.by_ufrag.retain(|_, owner| *owner != p);
    }

    /// Number of learnt addresses (for tests and debugging).
    #[cfg(test)]
    fn addr_count(&self) -> usize {
        self.by_addr.len()
    }
}

const STUN_HEADER_LEN: usize = 20;
const STUN_MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const STUN_ATTR_USERNAME: u16 = 0x0006;

/// The local (receiver's) ufrag from the USERNAME of a STUN message, `None` for anything else.
///
/// USERNAME is `<receiver ufrag>:<sender ufrag>` (RFC 8445 §7.2.2), so the part before the colon
/// names our `Rtc`. Parsing is bounds-checked throughout: any datagram is safe to pass.
pub(crate) fn stun_local_ufrag(buf: &[u8]) -> Option<&str> {
    let header = buf.get(..STUN_HEADER_LEN)?;
    // STUN: top two bits zero and the magic cookie in place.
    if header[0] & 0xC0 != 0 || header[4..8] != STUN_MAGIC_COOKIE {
        return None;
    }
    let body_len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let body = buf.get(STUN_HEADER_LEN..STUN_HEADER_LEN.checked_add(body_len)?)?;
    let mut rest = body;
    while rest.len() >= 4 {
        let kind = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let value = rest.get(4..4 + len)?;
        if kind == STUN_ATTR_USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            let (local, _remote) = username.split_once(':')?;
            return (!local.is_empty()).then_some(local);
        }
        // Attributes are padded to a multiple of four bytes.
        let padded = (4 + len).checked_next_multiple_of(4)?;
        rest = rest.get(padded..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stun_with_username(username: &str) -> Vec<u8> {
        let mut attr = Vec::new();
        attr.extend_from_slice(&STUN_ATTR_USERNAME.to_be_bytes());
        attr.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attr.extend_from_slice(username.as_bytes());
        while attr.len() % 4 != 0 {
            attr.push(0);
        }
        // A PRIORITY attribute after it, to check skipping.
        let mut msg = vec![0x00, 0x01];
        msg.extend_from_slice(&((attr.len() + 8) as u16).to_be_bytes());
        msg.extend_from_slice(&STUN_MAGIC_COOKIE);
        msg.extend_from_slice(&[7; 12]);
        msg.extend_from_slice(&attr);
        msg.extend_from_slice(&[0x00, 0x24, 0x00, 0x04, 1, 2, 3, 4]);
        msg
    }

    #[test]
    fn parses_local_ufrag() {
        let msg = stun_with_username("srvufrag:cli");
        assert_eq!(stun_local_ufrag(&msg), Some("srvufrag"));
        // Odd lengths are padded.
        let msg = stun_with_username("abcde:xyz");
        assert_eq!(stun_local_ufrag(&msg), Some("abcde"));
    }

    #[test]
    fn garbage_is_not_stun() {
        assert_eq!(stun_local_ufrag(&[]), None);
        assert_eq!(stun_local_ufrag(&[0u8; 19]), None);
        assert_eq!(stun_local_ufrag(&[0xFFu8; 64]), None);
        let mut msg = stun_with_username("a:b");
        // Claimed length past the end.
        msg[3] = 0xFF;
        assert_eq!(stun_local_ufrag(&msg), None);
        // Truncated attribute.
        let msg = stun_with_username("abcdefgh:ijkl");
        assert_eq!(stun_local_ufrag(&msg[..26]), None);
        // No colon.
        assert_eq!(stun_local_ufrag(&stun_with_username("nocolon")), None);
        // Every prefix of a valid message is handled without panicking.
        let msg = stun_with_username("srv:cli");
        for n in 0..msg.len() {
            let _ = stun_local_ufrag(&msg[..n]);
        }
    }

    #[test]
    fn learns_and_forgets_addresses() {
        let mut table = RoutingTable::default();
        let a: SocketAddr = "127.0.0.1:1000".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2000".parse().unwrap();
        table.add_ufrag("u1".into(), ParticipantId(1));
        table.add_ufrag("u2".into(), ParticipantId(2));
        assert_eq!(table.by_addr(&a), None);
        assert_eq!(table.by_ufrag("u1"), Some(ParticipantId(1)));
        table.learn(a, ParticipantId(1));
        table.learn(b, ParticipantId(2));
        assert_eq!(table.by_addr(&a), Some(ParticipantId(1)));
        // An address moving to another participant leaves the first one's list.
        table.learn(a, ParticipantId(2));
        assert_eq!(table.by_addr(&a), Some(ParticipantId(2)));
        table.remove(ParticipantId(1));
        assert_eq!(table.by_addr(&a), Some(ParticipantId(2)));
        table.remove(ParticipantId(2));
        assert_eq!(table.by_addr(&a), None);
        assert_eq!(table.by_addr(&b), None);
        assert_eq!(table.by_ufrag("u2"), None);
    }

    #[test]
    fn learnt_addresses_are_bounded() {
        let mut table = RoutingTable::default();
        for port in 0..100u16 {
            let addr = SocketAddr::from(([127, 0, 0, 1], 1000 + port));
            table.learn(addr, ParticipantId(1));
        }
        assert_eq!(table.addr_count(), MAX_ADDRS_PER_PARTICIPANT);
    }
}
