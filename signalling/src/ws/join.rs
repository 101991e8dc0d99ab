//! `join`: a chat-only token, a check-only connection, or a place in a waiting room or a
//! resumed seat.
//!
//! Invariant: the token is verified before the state lock is taken; everything after —
//! refusing a session that ended meanwhile, tagging the connection with its staff session,
//! entering the state machine — happens under the state lock, where `end_staff_session` also
//! works, so a join and a session's end are ordered. The reply to `join` is the connection's
//! first frame.

use super::session::Session;
use crate::outbox::{CLOSE_POLICY, lock};
use crate::protocol::{ErrorCode, ServerMessage};
use crate::{Identity, TokenError, Verified};

impl Session {
    /// Handles `join`. Returns false when the connection must end (bad token).
    pub(super) async fn join(
        &mut self,
        id: Option<String>,
        token: String,
        resume: Option<String>,
        check: bool,
    ) -> bool {
        let hub = self.hub.clone();
        if self.joined {
            self.error(id, ErrorCode::NotJoined, "already joined");
            return true;
        }
        let verified = hub.inner.verifier.verify(&token).await;
        // A chat-only token (the invitation link outside its window, F146): chat and
        // nothing else; it never enters a waiting room. Refused when chat is off.
        if let Ok(Verified::ChatOnly(principal)) = &verified
            && hub.inner.chat.enabled()
        {
            self.joined = true;
            hub.inner
                .chat
                .register_chat_only(self.conn, principal.clone());
            self.send(
                id,
                ServerMessage::Joined {
                    protocol: crate::protocol::PROTOCOL_VERSION,
                    participant_id: uuid::Uuid::new_v4().to_string(),
                    role: crate::protocol::Role::Patient,
                    display_name: String::new(),
                },
            );
            return true;
        }
        let (identity, expires_at) = match verified {
            Ok(Verified::Consultation {
                identity,
                expires_at,
            }) => (identity, expires_at),
            e => {
                let message = match e {
                    Err(TokenError::Expired) => "token expired",
                    _ => "token invalid",
                };
                self.error(id, ErrorCode::InvalidToken, message);
                self.close(CLOSE_POLICY, "invalid token");
                return false;
            }
        };
        // Under the state lock, where `end_staff_session` also works: a session that
        // ended while its token was being verified is refused here, and one that ends
        // after this finds the connection by its tag.
        let mut state = hub.inner.state.lock().await;
        if let Identity::Staff { session, .. } = &identity {
            if hub.session_ended(session) {
                drop(state);
                self.error(id, ErrorCode::InvalidToken, "token invalid");
                self.close(CLOSE_POLICY, "invalid token");
                return false;
            }
            if let Some(h) = lock(&hub.inner.conns).get_mut(&self.conn) {
                h.staff_session = Some(session.clone());
            }
        }
        self.joined = true;
        if check {
            // In no waiting room and told to nobody: it only runs probes.
            self.check_only = true;
            state.join_check(self.conn);
            drop(state);
            let role = match identity {
                Identity::Staff { .. } => crate::protocol::Role::Staff,
                Identity::Patient(_) => crate::protocol::Role::Patient,
            };
            self.send(
                id,
                ServerMessage::Joined {
                    protocol: crate::protocol::PROTOCOL_VERSION,
                    participant_id: uuid::Uuid::new_v4().to_string(),
                    role,
                    display_name: String::new(),
                },
            );
            return true;
        }
        self.permissions = identity.permissions();
        hub.inner.chat.register(self.conn, &identity);
        // Refreshed before it expires while the connection lasts (`ws/refresh.rs`).
        hub.inner
            .held_tokens
            .hold(self.conn, token, expires_at, hub.now());
        let mut fx = state.join_resuming(
            self.conn,
            identity,
            uuid::Uuid::new_v4().to_string(),
            resume.as_deref(),
            hub.now(),
        );
        // The reply to `join` is the first frame for this connection.
        if let Some((_, first)) = fx
            .sends
            .iter()
            .position(|(to, _)| *to == self.conn)
            .map(|i| fx.sends.remove(i))
        {
            self.send(id, first);
        }
        let replies = hub.apply(&state, fx);
        drop(state);
        replies.finish().await;
        true
    }
}
