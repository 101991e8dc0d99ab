//! Waiting-room entries, announcements, and the queue position / estimated start time each
//! waiting patient is shown.
//!
//! The estimate is a small simulation, redone on every change of the queue or of the
//! practitioners' consultations: the practitioners online for the waiting room are servers,
//! each free at the expected end of their current consultation (its start plus the appointment
//! duration, or [`super::DEFAULT_CONSULTATION`]); waiting patients are taken in arrival order
//! by the first free server, never before their appointment time. When no practitioner of the
//! room is online, there is no honest estimate and none is sent. A department practitioner's
//! own queue is not counted against the department queue (documented limitation).

use std::collections::BTreeSet;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

use super::{Conn, Effects, HubState, Place, rfc3339};
use crate::protocol::{ServerMessage, WaitingEntry};
use crate::{Identity, PatientIdentity, QueueKey, Visit};

/// One patient in a waiting room.
#[derive(Debug)]
pub(super) struct Waiter {
    /// The live connection; `None` while reconnecting (within the grace period).
    pub conn: Option<super::ConnId>,
    /// Appointment id or walk-in visit id: the same visit across connections.
    pub visit_key: String,
    pub entry: WaitingEntry,
    pub identity: PatientIdentity,
    pub disconnected_at: Option<DateTime<Utc>>,
    /// The last `queue_status` sent (position, estimate), to send only changes.
    pub last_status: Option<(u32, Option<String>)>,
}

/// A service announcement as the hub keeps it (loaded from the clinic's store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    pub id: String,
    pub organisation_id: String,
    /// The waiting room whose patients see it.
    pub scope: QueueKey,
    pub text: String,
    pub expires_at: Option<DateTime<Utc>>,
}

fn expected_duration(p: &PatientIdentity) -> TimeDelta {
    match p.visit {
        Visit::Appointment {
            duration_minutes, ..
        } if duration_minutes > 0 => TimeDelta::minutes(i64::from(duration_minutes)),
        _ => super::DEFAULT_CONSULTATION,
    }
}

impl HubState {
    /// When each practitioner online for `key` is expected to be free.
    fn servers(&self, key: &QueueKey, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut seen = BTreeSet::new();
        let mut free = Vec::new();
        let mut staff: Vec<&Conn> = self.conns.values().filter(|c| c.watches(key)).collect();
        // A practitioner with a tab in a consultation is busy, whatever their other tabs do.
        staff.sort_by_key(|c| !matches!(c.place, Place::InConsultation(_)));
        for c in staff {
            let Identity::Staff { staff_id, .. } = &c.identity else {
                continue;
            };
            if !seen.insert(staff_id.clone()) {
                continue;
            }
            let t = match c.place {
                Place::InConsultation(id) => self
                    .consultations
                    .get(&id)
                    .map(|cons| {
                        let d = cons
                            .visit
                            .as_ref()
                            .map(expected_duration)
                            .unwrap_or(super::DEFAULT_CONSULTATION);
                        (cons.started_at + d).max(now)
                    })
                    .unwrap_or(now),
                _ => now,
            };
            free.push(t);
        }
        free
    }

    /// Recompute positions and estimates of `key`'s patients and send each connection what
    /// changed since the last status it was sent (a new connection has `last_status: None`, so
    /// it gets its first one; everybody else hears only of a change, as docs/protocol.md says).
    pub(super) fn refresh_queue_status(
        &mut self,
        fx: &mut Effects,
        key: &QueueKey,
        now: DateTime<Utc>,
    ) {
        let mut servers = self.servers(key, now);
        let Some(queue) = self.queues.get_mut(key) else {
            return;
        };
        for (i, w) in queue.iter_mut().enumerate() {
            let estimate = if servers.is_empty() {
                None
            } else {
                let (slot, free_at) = servers
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, t)| **t)
                    .map(|(s, t)| (s, *t))
                    .expect("servers is not empty");
                let not_before = match w.identity.visit {
                    Visit::Appointment { starts_at, .. } => starts_at,
                    Visit::WalkIn { .. } | Visit::Guest { .. } => now,
                };
                let start = free_at.max(not_before);
                servers[slot] = start + expected_duration(&w.identity);
                // Whole minutes: the estimate is not more precise than that, and rounding
                // keeps it from changing with every second that passes.
                let rounded = start.duration_round(TimeDelta::minutes(1)).unwrap_or(start);
                Some(rfc3339(rounded))
            };
            let position = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let status = (position, estimate);
            if w.last_status.as_ref() != Some(&status)
                && let Some(conn) = w.conn
            {
                fx.send(
                    conn,
                    ServerMessage::QueueStatus {
                        position: status.0,
                        estimated_start_at: status.1.clone(),
                    },
                );
                w.last_status = Some(status);
            }
        }
    }
}
