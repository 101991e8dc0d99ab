//! Connectivity probes (issue #4, F33/F37): before entering the waiting room (or while
//! waiting), a client asks the SFU for a short private media session in which its own tracks
//! come back to it (`Sfu::join_loopback_queued`), and measures ICE, round-trip time and loss.
//!
//! Invariants:
//! - a probe belongs to one connection and is never part of a consultation: its SFU room and
//!   participant ids live in their own number space ([`PROBE_ID_BASE`] and up, never reused),
//!   so a consultation never meets a probe, and no frame about it goes to anyone but its
//!   connection;
//! - a connection runs at most one probe at a time, at most [`MAX_PROBES_PER_CONNECTION`] in
//!   all, none while in a consultation, and each for at most [`PROBE_DURATION`] (ended by
//!   `tick`); the node runs at most [`MAX_PROBES_RUNNING`] at once;
//! - a probe is removed from the SFU when it is stopped, expires, or its connection leaves or
//!   enters a consultation.
//!
//! A *check-only* connection (`join` with `check: true`) is registered here and nowhere else:
//! it has no place in any waiting room, so staff never see it.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use consultroom_sfu::{ParticipantId, RoomId};

use super::{ConnId, Effects, HubState, Place, Refusal, refuse};
use crate::protocol::{ErrorCode, ProbeEndReason, ServerMessage};

/// How long a probe may run.
pub const PROBE_DURATION: Duration = Duration::seconds(20);

/// Probes one connection may start over its life (a check with a relay-only leg and a retry
/// or two; each costs the SFU a session for up to [`PROBE_DURATION`]).
pub const MAX_PROBES_PER_CONNECTION: u32 = 6;

/// Probes running at once on this node; beyond it `probe_offer` is refused (`rate_limited`),
/// so probes can never crowd out consultations on the media plane.
pub const MAX_PROBES_RUNNING: usize = 200;

/// First SFU room / participant number of probes. Connection and consultation numbers count
/// up from 1 and never get near it.
pub const PROBE_ID_BASE: u64 = 1 << 62;

/// One running probe.
#[derive(Debug)]
struct Probe {
    media: ParticipantId,
    expires_at: DateTime<Utc>,
    connected: bool,
}

/// Probe bookkeeping of the hub.
#[derive(Debug, Default)]
pub(super) struct Probes {
    running: HashMap<ConnId, Probe>,
    /// Probes started per connection (for the per-connection limit).
    started: HashMap<ConnId, u32>,
    /// Check-only connections.
    check_only: HashSet<ConnId>,
    next: u64,
}

impl HubState {
    /// Registers `conn` as a check-only connection: it may run probes and nothing else, and
    /// it is in no waiting room (nobody is told of it).
    pub fn join_check(&mut self, conn: ConnId) {
        self.probes.check_only.insert(conn);
    }

    /// Starts a probe for `conn`. Returns the effects (the SFU loopback join in `probe_join`)
    /// and the probe's SFU participant, to which the caller gives the client's offer.
    ///
    /// Refused: `forbidden` for a connection that may not probe (chat-only), `invalid_state`
    /// in a consultation or while a probe runs, `rate_limited` after
    /// [`MAX_PROBES_PER_CONNECTION`] or with [`MAX_PROBES_RUNNING`] running on the node.
    pub fn probe_start(
        &mut self,
        conn: ConnId,
        now: DateTime<Utc>,
    ) -> Result<(Effects, ParticipantId), Refusal> {
        if !self.probes.check_only.contains(&conn) {
            let c = self
                .conns
                .get(&conn)
                .filter(|c| c.detached_at.is_none())
                .ok_or_else(|| refuse(ErrorCode::Forbidden, "this connection cannot probe"))?;
            if matches!(c.place, Place::InConsultation(_)) {
                return Err(refuse(
                    ErrorCode::InvalidState,
                    "no probe during a consultation",
                ));
            }
        }
        if self.probes.running.contains_key(&conn) {
            return Err(refuse(
                ErrorCode::InvalidState,
                "a probe is already running",
            ));
        }
        if self.probes.running.len() >= MAX_PROBES_RUNNING {
            return Err(refuse(
                ErrorCode::RateLimited,
                "too many connection tests right now; try again in a minute",
            ));
        }
        let started = self.probes.started.entry(conn).or_insert(0);
        if *started >= MAX_PROBES_PER_CONNECTION {
            return Err(refuse(
                ErrorCode::RateLimited,
                "too many probes on this connection",
            ));
        }
        *started += 1;
        let n = PROBE_ID_BASE + self.probes.next;
        self.probes.next += 1;
        let media = ParticipantId(n);
        self.probes.running.insert(
            conn,
            Probe {
                media,
                expires_at: now + PROBE_DURATION,
                connected: false,
            },
        );
        let mut fx = Effects::default();
        fx.probe_join.push((RoomId(n), media, conn));
        Ok((fx, media))
    }

    /// The SFU participant of `conn`'s running probe.
    pub fn probe_media(&self, conn: ConnId) -> Option<ParticipantId> {
        self.probes.running.get(&conn).map(|p| p.media)
    }

    /// The client ended its probe (`probe_stop`). `invalid_state` when none runs.
    pub fn probe_stop(&mut self, conn: ConnId) -> Result<Effects, Refusal> {
        if !self.probes.running.contains_key(&conn) {
            return Err(refuse(ErrorCode::InvalidState, "no probe is running"));
        }
        Ok(self.end_probe(conn, None))
    }

    /// The SFU lost `conn`'s probe session (consent expired, DTLS closed).
    pub fn probe_lost(&mut self, conn: ConnId) -> Effects {
        self.end_probe(conn, Some(ProbeEndReason::ConnectionLost))
    }

    /// `conn`'s probe connected (ICE + DTLS up). Returns true the first time, for the metrics.
    pub fn probe_connected(&mut self, conn: ConnId) -> bool {
        match self.probes.running.get_mut(&conn) {
            Some(p) if !p.connected => {
                p.connected = true;
                true
            }
            _ => false,
        }
    }

    /// Number of probes running.
    pub fn probes_running(&self) -> usize {
        self.probes.running.len()
    }

    /// Ends `conn`'s probe, if any: the SFU participant goes, and the connection is told why
    /// (`None`: it asked, or it is gone).
    pub(super) fn end_probe(&mut self, conn: ConnId, reason: Option<ProbeEndReason>) -> Effects {
        let mut fx = Effects::default();
        if let Some(p) = self.probes.running.remove(&conn) {
            fx.sfu_leave.push(p.media);
            if let Some(reason) = reason {
                fx.send(conn, ServerMessage::ProbeEnded { reason });
            }
        }
        fx
    }

    /// The connection is gone: its probe ends and its records go.
    pub(super) fn forget_probes(&mut self, conn: ConnId) -> Effects {
        self.probes.check_only.remove(&conn);
        self.probes.started.remove(&conn);
        self.end_probe(conn, None)
    }

    /// Probes whose time is up end (`probe_ended` `expired`).
    pub(super) fn expire_probes(&mut self, now: DateTime<Utc>) -> Effects {
        let mut due: Vec<ConnId> = self
            .probes
            .running
            .iter()
            .filter(|(_, p)| p.expires_at <= now)
            .map(|(c, _)| *c)
            .collect();
        due.sort();
        let mut fx = Effects::default();
        for conn in due {
            fx.merge(self.end_probe(conn, Some(ProbeEndReason::Expired)));
        }
        fx
    }
}
