//! Join-token refresh (issue #11): while a connection is joined, the hub pushes a fresh join
//! token for its identity (`token_refresh`) about half-way through the current token's life, so
//! a participant who drops can resume with a valid token — also when their link no longer
//! yields one (a consultation that runs past the invitation window).
//!
//! The hub keeps, per joined connection, the token it joined with or was last given, and asks
//! the [`TokenRefresher`](crate::TokenRefresher) for its successor; tokens stay opaque here.
//! Invariants: check-only and chat-only connections hold nothing; a refresher that says the
//! seat is gone (`None`) ends that connection's refreshes; no lock is held across a refresh; a
//! connection that ended is forgotten (its late refresh is dropped, never sent).

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

use super::Hub;
use crate::outbox::lock;
use crate::protocol::ServerMessage;
use crate::state::ConnId;

struct Held {
    token: String,
    refresh_at: DateTime<Utc>,
}

/// The tokens held for joined connections.
#[derive(Default)]
pub(super) struct HeldTokens(std::sync::Mutex<HashMap<ConnId, Held>>);

/// When to refresh a token that expires at `expires_at`: half-way through what is left of it.
fn refresh_at(now: DateTime<Utc>, expires_at: DateTime<Utc>) -> DateTime<Utc> {
    now + (expires_at - now).max(chrono::Duration::zero()) / 2
}

impl HeldTokens {
    /// Hold `token` (valid until `expires_at`) for `conn`, replacing what it held.
    pub(super) fn hold(
        &self,
        conn: ConnId,
        token: String,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) {
        lock(&self.0).insert(
            conn,
            Held {
                token,
                refresh_at: refresh_at(now, expires_at),
            },
        );
    }

    /// Forget `conn` (it ended, or its seat is gone).
    pub(super) fn release(&self, conn: ConnId) {
        lock(&self.0).remove(&conn);
    }

    fn due(&self, now: DateTime<Utc>) -> Vec<(ConnId, String)> {
        lock(&self.0)
            .iter()
            .filter(|(_, h)| h.refresh_at <= now)
            .map(|(c, h)| (*c, h.token.clone()))
            .collect()
    }

    /// Replace `conn`'s token with its successor; false when `conn` is no longer held.
    fn renew(
        &self,
        conn: ConnId,
        token: String,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> bool {
        match lock(&self.0).get_mut(&conn) {
            Some(h) => {
                h.token = token;
                h.refresh_at = refresh_at(now, expires_at);
                true
            }
            None => false,
        }
    }
}

impl Hub {
    /// Refreshes the held tokens that are due, every `period`, until the hub drains. Does
    /// nothing without a configured refresher.
    pub(super) fn spawn_token_refresh(&self, period: Duration) {
        let Some(refresher) = self.inner.config.token_refresher.clone() else {
            return;
        };
        self.spawn_every(period, move |hub| {
            let refresher = refresher.clone();
            async move {
                for (conn, held) in hub.inner.held_tokens.due(hub.now()) {
                    match refresher.refresh(&held).await {
                        Some((token, expires_at)) => {
                            let now = hub.now();
                            if hub
                                .inner
                                .held_tokens
                                .renew(conn, token.clone(), expires_at, now)
                            {
                                hub.inner.outbox.push(
                                    conn,
                                    None,
                                    ServerMessage::TokenRefresh {
                                        token,
                                        expires_at: expires_at
                                            .to_rfc3339_opts(SecondsFormat::Secs, true),
                                    },
                                );
                            }
                        }
                        None => hub.inner.held_tokens.release(conn),
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn due_half_way_and_renewed_only_while_held() {
        let t0 = Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap();
        let held = HeldTokens::default();
        held.hold(
            ConnId(1),
            "a".into(),
            t0 + chrono::Duration::seconds(120),
            t0,
        );
        assert!(held.due(t0 + chrono::Duration::seconds(59)).is_empty());
        let t1 = t0 + chrono::Duration::seconds(60);
        assert_eq!(held.due(t1), vec![(ConnId(1), "a".to_owned())]);
        assert!(held.renew(
            ConnId(1),
            "b".into(),
            t1 + chrono::Duration::seconds(120),
            t1
        ));
        assert!(held.due(t1).is_empty());
        // A token that already expired is due at once.
        held.hold(ConnId(2), "c".into(), t0, t1);
        assert_eq!(held.due(t1), vec![(ConnId(2), "c".to_owned())]);
        held.release(ConnId(1));
        assert!(
            !held.renew(ConnId(1), "d".into(), t1, t1),
            "a released connection is not renewed"
        );
    }
}
