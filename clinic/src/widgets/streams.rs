//! Slots for widget availability streams (SSE): at most [`MAX_STREAMS`] open on the server and
//! [`MAX_STREAMS_PER_SOURCE`] per source (the [`ClientIp`](crate::client_ip::ClientIp), IPv6 by
//! /64), so one client cannot take every slot and give every widget of every organisation 429.
//!
//! Invariant: a slot is given back when its stream ends or is dropped (the [`StreamSlot`] guard),
//! and a source's entry disappears with its last slot, so the map holds only open streams.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::client_ip::source_key;

/// Most availability streams open at once (over the whole server).
pub(crate) const MAX_STREAMS: usize = 2000;
/// Most availability streams one source may hold open (a widget page holds one; a household or
/// a small office behind one address holds a few).
pub(crate) const MAX_STREAMS_PER_SOURCE: usize = 20;

/// Open streams per source key.
type Counts = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// Why no slot was given.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Full {
    /// This source holds its maximum.
    Source,
    /// The server holds its maximum.
    Server,
}

/// The stream slots of one server.
pub(crate) struct StreamSlots {
    global: Arc<Semaphore>,
    per_source: Counts,
    per_source_max: usize,
}

impl Default for StreamSlots {
    fn default() -> Self {
        Self::new(MAX_STREAMS, MAX_STREAMS_PER_SOURCE)
    }
}

/// One open stream's slot; dropping it gives the slot back.
pub(crate) struct StreamSlot {
    _global: OwnedSemaphorePermit,
    source: Option<(Counts, IpAddr)>,
}

impl StreamSlots {
    pub(crate) fn new(global: usize, per_source: usize) -> Self {
        Self {
            global: Arc::new(Semaphore::new(global)),
            per_source: Arc::default(),
            per_source_max: per_source,
        }
    }

    /// A slot for a stream from `source` (`None`: no peer address, only the global cap applies).
    pub(crate) fn try_acquire(&self, source: Option<IpAddr>) -> Result<StreamSlot, Full> {
        let source = match source.map(source_key) {
            None => None,
            Some(key) => {
                let mut map = self
                    .per_source
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                let n = map.entry(key).or_insert(0);
                if *n >= self.per_source_max {
                    return Err(Full::Source);
                }
                *n += 1;
                Some((self.per_source.clone(), key))
            }
        };
        // Built before the global check, so a refusal below gives the source's count back.
        let counted = SourceCount(source);
        let permit = self
            .global
            .clone()
            .try_acquire_owned()
            .map_err(|_| Full::Server)?;
        Ok(StreamSlot {
            _global: permit,
            source: counted.take(),
        })
    }

    #[cfg(test)]
    fn sources(&self) -> usize {
        self.per_source
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// A source's count taken but not yet handed to a [`StreamSlot`].
struct SourceCount(Option<(Counts, IpAddr)>);

impl SourceCount {
    fn take(mut self) -> Option<(Counts, IpAddr)> {
        self.0.take()
    }
}

impl Drop for SourceCount {
    fn drop(&mut self) {
        if let Some((map, key)) = self.0.take() {
            release(&map, key);
        }
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        if let Some((map, key)) = self.source.take() {
            release(&map, key);
        }
    }
}

fn release(map: &Mutex<HashMap<IpAddr, usize>>, key: IpAddr) {
    let mut map = map.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(n) = map.get_mut(&key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn per_source_then_global() {
        let slots = StreamSlots::new(5, 2);
        let a1 = slots.try_acquire(ip("192.0.2.1")).unwrap();
        let _a2 = slots.try_acquire(ip("192.0.2.1")).unwrap();
        assert_eq!(slots.try_acquire(ip("192.0.2.1")).err(), Some(Full::Source));
        // The same /64 is the same source.
        let _b1 = slots.try_acquire(ip("2001:db8::1")).unwrap();
        let _b2 = slots.try_acquire(ip("2001:db8::ffff")).unwrap();
        assert_eq!(
            slots.try_acquire(ip("2001:db8::2")).err(),
            Some(Full::Source)
        );
        // Another source still gets one; then the server is full.
        let _c = slots.try_acquire(ip("192.0.2.3")).unwrap();
        assert_eq!(slots.try_acquire(ip("192.0.2.4")).err(), Some(Full::Server));
        assert_eq!(slots.try_acquire(None).err(), Some(Full::Server));
        // A refusal by the global cap took nothing from the source's count.
        drop(a1);
        let _a3 = slots.try_acquire(ip("192.0.2.1")).unwrap();
        assert_eq!(slots.try_acquire(ip("192.0.2.1")).err(), Some(Full::Source));
    }

    #[test]
    fn entries_go_with_their_last_slot() {
        let slots = StreamSlots::new(10, 3);
        let held: Vec<_> = (0..3)
            .map(|_| slots.try_acquire(ip("192.0.2.1")).unwrap())
            .collect();
        // Refused by the global cap: the new source's entry is not left behind.
        let full = StreamSlots::new(0, 3);
        assert_eq!(full.try_acquire(ip("192.0.2.9")).err(), Some(Full::Server));
        assert_eq!(full.sources(), 0);
        assert_eq!(slots.sources(), 1);
        drop(held);
        assert_eq!(slots.sources(), 0);
        assert!(slots.try_acquire(None).is_ok());
        assert_eq!(slots.sources(), 0);
    }
}
