//! The open-file limit: raised to the hard limit at start-up (the usual soft limit of 1,024 is
//! reached by a thousand idle sockets), and the connection cap derived from it.

/// File descriptors kept free of HTTP connections: the database pool, the media plane's
/// sockets, the admin listener and its connections, consultation files, logs.
pub const HEADROOM: u64 = 256;

/// Raise the soft `RLIMIT_NOFILE` to the hard limit; returns the soft limit now in force (or
/// `None` where it cannot be read).
#[cfg(unix)]
pub fn raise() -> Option<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return Some(hard);
    }
    Some(soft)
}

#[cfg(not(unix))]
pub fn raise() -> Option<u64> {
    None
}

/// The soft `RLIMIT_NOFILE` now in force.
#[cfg(unix)]
pub fn soft() -> Option<u64> {
    use nix::sys::resource::{Resource, getrlimit};
    getrlimit(Resource::RLIMIT_NOFILE).ok().map(|(s, _)| s)
}

#[cfg(not(unix))]
pub fn soft() -> Option<u64> {
    None
}

/// The public listener's connection cap for a soft limit: the limit less `HEADROOM` (at least
/// 64; without a known limit, or with an unlimited one, 1,000,000).
pub fn connection_cap(soft: Option<u64>) -> usize {
    match soft {
        Some(s) if s < 1_000_000 + HEADROOM => s.saturating_sub(HEADROOM).max(64) as usize,
        _ => 1_000_000,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_headroom() {
        assert_eq!(connection_cap(Some(1024)), 768);
        assert_eq!(connection_cap(Some(100)), 64);
        assert_eq!(connection_cap(Some(u64::MAX)), 1_000_000);
        assert_eq!(connection_cap(None), 1_000_000);
    }

    #[test]
    fn raising_keeps_the_soft_limit_at_or_above_what_it_was() {
        let before = soft();
        let after = raise();
        assert!(after >= before);
        assert_eq!(soft(), after);
    }
}
