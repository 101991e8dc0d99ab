//! Waiting rooms and consultations as a plain state machine: no IO, no clock, no locks.
//!
//! Every operation takes the current time as an argument and returns [`Effects`]: the frames to
//! send to which connection and the media-plane operations to perform. The
//! WebSocket layer ([`crate::ws`]) applies them. Invariants kept here:
//! - a patient (one visit: an appointment or a walk-in) is in at most one place: one waiting
//!   room or one consultation, and appears at most once, whatever their connections do;
//! - a waiting patient receives no consultation events and is never joined to the SFU;
//! - admission is atomic: the entry leaves the waiting room in the same step that creates the
//!   consultation, so two staff connections admitting at once cannot both get the patient;
//! - a waiting patient whose connection drops keeps their place for [`GRACE`] (shown as
//!   `reconnecting`), and gets it back when they reconnect with the same visit;
//! - a patient sees only their own queue's position and announcements, never other patients.
//! - a participant whose connection drops in a consultation keeps their seat for [`GRACE`]
//!   (the others see `participant_reconnecting`; the SFU participant stays): a new connection
//!   of the same identity that asks to resume that consultation takes the seat over with the
//!   same participant id and SFU participant (`participant_resumed`, never a second
//!   `participant_joined`); after the grace period the seat is released as a leave.

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod guest_tests;
mod probe;
#[cfg(test)]
mod probe_tests;
mod queue;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use consultroom_sfu::{ParticipantId, RoomId};

use crate::protocol::{
    AnnouncementInfo, CheckLevel, EndReason, ErrorCode, MediaHealth, ParticipantInfo,
    ProbeEndReason, Punctuality, QueueKind, QueueRef, Role, ServerMessage, WaitingEntry,
    WaitingReason,
};
use crate::{Identity, PatientIdentity, QueueKey, Visit};

pub use probe::{MAX_PROBES_PER_CONNECTION, MAX_PROBES_RUNNING, PROBE_DURATION, PROBE_ID_BASE};
pub use queue::Announcement;
use queue::Waiter;

/// How long a waiting patient keeps their place, and a participant their consultation seat,
/// after their connection drops.
pub const GRACE: Duration = Duration::seconds(30);

/// Expected length of a consultation without an appointment duration (walk-ins).
pub const DEFAULT_CONSULTATION: Duration = Duration::minutes(15);

/// Identifies one WebSocket connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl ConnId {
    /// The media-plane id a connection gets when it enters a consultation afresh. A connection
    /// that resumes a seat keeps the seat's SFU participant instead (see [`HubState::media`]).
    pub fn participant(self) -> ParticipantId {
        ParticipantId(self.0)
    }
}

/// What the caller must do after a state change.
#[derive(Debug, Default, PartialEq)]
pub struct Effects {
    /// Frames to send, in order.
    pub sends: Vec<(ConnId, ServerMessage)>,
    /// Participants to register in an SFU room (before their `consultation_started` is sent).
    pub sfu_join: Vec<(RoomId, ConnId)>,
    /// Participants to remove from the SFU.
    pub sfu_leave: Vec<ParticipantId>,
    /// SFU participants whose events go to a new connection from now on (a resumed seat).
    pub sfu_rebind: Vec<(ParticipantId, ConnId)>,
    /// Visits (appointments and walk-ins) whose consultation ended normally.
    pub completed: Vec<Visit>,
    /// Connections to close (replaced by a newer connection of the same patient).
    pub close: Vec<ConnId>,
    /// Consultations (public ids) that are over, however they ended: their files are deleted.
    pub ended: Vec<String>,
    /// Connections to close because their invitation was withdrawn (a revoked guest link).
    pub revoked: Vec<ConnId>,
    /// Connections to close because the staff login session they joined with ended (logout).
    pub session_ended: Vec<ConnId>,
    /// Connectivity probes to start: `(room, participant, connection)` for
    /// `Sfu::join_loopback_queued`, with the connection's probe events (see `state::probe`).
    pub probe_join: Vec<(RoomId, ParticipantId, ConnId)>,
}

impl Effects {
    fn send(&mut self, to: ConnId, msg: ServerMessage) {
        self.sends.push((to, msg));
    }

    pub(crate) fn merge(&mut self, from: Effects) {
        self.sends.extend(from.sends);
        self.sfu_join.extend(from.sfu_join);
        self.sfu_leave.extend(from.sfu_leave);
        self.sfu_rebind.extend(from.sfu_rebind);
        self.completed.extend(from.completed);
        self.close.extend(from.close);
        self.ended.extend(from.ended);
        self.revoked.extend(from.revoked);
        self.session_ended.extend(from.session_ended);
        self.probe_join.extend(from.probe_join);
    }
}

/// A participant of a running consultation, as the file-sharing module sees them (ids only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The consultation's public id.
    pub consultation_id: String,
    pub participant_id: String,
    pub role: Role,
    /// The staff id, or the patient's appointment / walk-in visit id.
    pub subject_id: String,
}

/// A refused operation: a stable code and a human message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: &'static str,
}

fn refuse(code: ErrorCode, message: &'static str) -> Refusal {
    Refusal { code, message }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    /// Staff not in a consultation.
    Idle,
    /// Patient in this waiting room.
    Waiting(QueueKey),
    /// In this consultation.
    InConsultation(u64),
    /// Patient whose consultation is over.
    Done,
    /// Guest waiting for the appointment's client to be in the consultation (not in any
    /// waiting list; gets no queue status or announcements).
    GuestLobby,
}

#[derive(Debug)]
struct Conn {
    identity: Identity,
    participant_id: String,
    /// The media (SFU) participant; remote tracks carry its number in their msid stream id
    /// (`participant-<n>`, `participant-<n>-screen`). Carried over when a seat is resumed.
    media: ParticipantId,
    place: Place,
    audio: bool,
    video: bool,
    /// Its media connection in the current consultation as the client last reported it
    /// (`media_state`); `None` until it reports, and again on entering a consultation.
    media_health: Option<MediaHealth>,
    /// Set when the connection dropped in a consultation: the seat is held until
    /// `detached_at + GRACE` for a resuming connection. A detached record has no connection.
    detached_at: Option<DateTime<Utc>>,
}

impl Conn {
    fn role(&self) -> Role {
        match self.identity {
            Identity::Staff { .. } => Role::Staff,
            Identity::Patient(_) => Role::Patient,
        }
    }

    fn display_name(&self) -> &str {
        match &self.identity {
            Identity::Staff { display_name, .. } => display_name,
            Identity::Patient(p) => &p.display_name,
        }
    }

    fn organisation(&self) -> &str {
        match &self.identity {
            Identity::Staff {
                organisation_id, ..
            } => organisation_id,
            Identity::Patient(p) => &p.organisation_id,
        }
    }

    fn info(&self) -> ParticipantInfo {
        ParticipantInfo {
            participant_id: self.participant_id.clone(),
            stream_id: format!("participant-{}", self.media.0),
            display_name: self.display_name().to_owned(),
            role: self.role(),
            audio: self.audio,
            video: self.video,
            reconnecting: self.detached_at.is_some(),
            guest: self.guest_of().is_some(),
            media: self.media_health,
        }
    }

    /// The appointment this connection is a guest of, if it is a guest.
    fn guest_of(&self) -> Option<&str> {
        match &self.identity {
            Identity::Patient(p) => p.guest_of(),
            Identity::Staff { .. } => None,
        }
    }

    /// Whether this is the client (patient) of appointment `appointment_id`.
    fn is_client_of(&self, appointment_id: &str) -> bool {
        matches!(&self.identity, Identity::Patient(PatientIdentity {
            visit: Visit::Appointment { appointment_id: a, .. }, ..
        }) if a == appointment_id)
    }

    fn is_staff(&self, id: &str) -> bool {
        matches!(&self.identity, Identity::Staff { staff_id, .. } if staff_id == id)
    }

    /// The waiting rooms a staff connection watches: their own and their departments'.
    /// A detached seat (no connection) watches nothing.
    fn watches(&self, key: &QueueKey) -> bool {
        if self.detached_at.is_some() {
            return false;
        }
        match (&self.identity, key) {
            (Identity::Staff { staff_id, .. }, QueueKey::Practitioner(p)) => staff_id == p,
            (Identity::Staff { department_ids, .. }, QueueKey::Department(d)) => {
                department_ids.contains(d)
            }
            (Identity::Patient(_), _) => false,
        }
    }
}

#[derive(Debug)]
struct Consultation {
    public_id: String,
    started_at: DateTime<Utc>,
    members: Vec<ConnId>,
    /// The appointment (or walk-in visit) being served, once a patient is in.
    visit: Option<PatientIdentity>,
    /// Force-started: the appointment whose patient goes straight in on arrival.
    expecting: Option<String>,
}

/// All waiting rooms and consultations of this node.
#[derive(Debug, Default)]
pub struct HubState {
    conns: HashMap<ConnId, Conn>,
    queues: BTreeMap<QueueKey, Vec<Waiter>>,
    consultations: BTreeMap<u64, Consultation>,
    next_consultation: u64,
    announcements: Vec<Announcement>,
    /// The last `tick`, to notice announcements that expired since.
    last_tick: Option<DateTime<Utc>>,
    /// Connectivity probes and check-only connections.
    probes: probe::Probes,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn queue_ref(key: &QueueKey) -> QueueRef {
    match key {
        QueueKey::Practitioner(id) => QueueRef {
            kind: QueueKind::Practitioner,
            id: id.clone(),
        },
        QueueKey::Department(id) => QueueRef {
            kind: QueueKind::Department,
            id: id.clone(),
        },
    }
}

fn queue_key(r: &QueueRef) -> QueueKey {
    match r.kind {
        QueueKind::Practitioner => QueueKey::Practitioner(r.id.clone()),
        QueueKind::Department => QueueKey::Department(r.id.clone()),
    }
}

impl HubState {
    /// Number of open connections that have joined (held seats without one not counted).
    pub fn connections(&self) -> usize {
        self.conns
            .values()
            .filter(|c| c.detached_at.is_none())
            .count()
    }

    /// Number of consultation seats held for a participant whose connection dropped.
    pub fn reconnecting_participants(&self) -> usize {
        self.conns
            .values()
            .filter(|c| c.detached_at.is_some())
            .count()
    }

    /// The SFU participant of connection `conn` (its own id, or a resumed seat's).
    pub fn media(&self, conn: ConnId) -> Option<ParticipantId> {
        self.conns.get(&conn).map(|c| c.media)
    }

    /// The public participant id of the SFU participant `media`.
    pub fn public_id_of_media(&self, media: ParticipantId) -> Option<String> {
        self.conns
            .values()
            .find(|c| c.media == media)
            .map(|c| c.participant_id.clone())
    }

    /// Number of patients waiting (including those reconnecting) across all waiting rooms.
    pub fn waiting_patients(&self) -> usize {
        self.queues.values().map(Vec::len).sum()
    }

    /// Number of running consultations.
    pub fn consultations(&self) -> usize {
        self.consultations.len()
    }

    /// The public participant id of connection `conn`.
    pub fn public_id(&self, conn: ConnId) -> Option<String> {
        self.conns.get(&conn).map(|c| c.participant_id.clone())
    }

    /// Whether `conn` is in a consultation (and so may exchange media).
    pub fn in_consultation(&self, conn: ConnId) -> bool {
        matches!(
            self.conns.get(&conn).map(|c| &c.place),
            Some(Place::InConsultation(_))
        )
    }

    /// The consultation `conn` is in, if any.
    pub fn consultation_member(&self, conn: ConnId) -> Option<Member> {
        let c = self.conns.get(&conn)?;
        let Place::InConsultation(id) = c.place else {
            return None;
        };
        let subject_id = match &c.identity {
            Identity::Staff { staff_id, .. } => staff_id.clone(),
            Identity::Patient(p) => p.visit_key().to_owned(),
        };
        Some(Member {
            consultation_id: self.consultations.get(&id)?.public_id.clone(),
            participant_id: c.participant_id.clone(),
            role: c.role(),
            subject_id,
        })
    }

    /// The connections in the running consultation with public id `consultation_id`.
    pub fn consultation_members(&self, consultation_id: &str) -> Option<Vec<ConnId>> {
        self.consultations
            .values()
            .find(|c| c.public_id == consultation_id)
            .map(|c| c.members.clone())
    }

    /// The public id of the consultation whose SFU room is `room`.
    pub fn consultation_public_id(&self, room: u64) -> Option<String> {
        self.consultations.get(&room).map(|c| c.public_id.clone())
    }

    /// The members of `cons` other than `except` that have a connection.
    fn live_members(&self, cons: &Consultation, except: ConnId) -> Vec<ConnId> {
        cons.members
            .iter()
            .copied()
            .filter(|m| *m != except)
            .filter(|m| self.conns.get(m).is_some_and(|c| c.detached_at.is_none()))
            .collect()
    }

    /// Staff connections watching `key`.
    fn watchers(&self, key: &QueueKey) -> Vec<ConnId> {
        let mut v: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.watches(key))
            .map(|(id, _)| *id)
            .collect();
        v.sort();
        v
    }

    fn tell_watchers(&self, fx: &mut Effects, key: &QueueKey, msg: &ServerMessage) {
        for w in self.watchers(key) {
            fx.send(w, msg.clone());
        }
    }

    /// A connection authenticated as `identity`; `participant_id` is its public id (a patient
    /// reconnecting within the grace period gets their old one back).
    pub fn join(
        &mut self,
        conn: ConnId,
        identity: Identity,
        participant_id: String,
        now: DateTime<Utc>,
    ) -> Effects {
        self.join_resuming(conn, identity, participant_id, None, now)
    }

    /// [`HubState::join`], asking to resume the consultation with public id `resume`: if this
    /// identity holds a seat there (a patient: same visit; staff: same staff id, and only the
    /// connection that was in it), this connection takes it over and gets
    /// `consultation_started` with `resumed: true`. If not (grace period over, consultation
    /// ended), it gets `consultation_ended` (`connection_lost`) for it and joins as usual.
    pub fn join_resuming(
        &mut self,
        conn: ConnId,
        identity: Identity,
        participant_id: String,
        resume: Option<&str>,
        now: DateTime<Utc>,
    ) -> Effects {
        let seat = resume.and_then(|r| self.find_seat(&identity, r));
        let mut fx = match (seat, identity) {
            (Some(old), identity) => return self.resume_seat(conn, old, identity, now),
            (None, identity @ Identity::Staff { .. }) => {
                self.join_staff(conn, identity, participant_id, now)
            }
            (None, Identity::Patient(p)) if p.guest_of().is_some() => {
                self.join_guest(conn, p, participant_id, now)
            }
            (None, Identity::Patient(p)) => self.join_patient(conn, p, participant_id, now),
        };
        if let Some(id) = resume {
            // Right after `joined`: the room the client still shows is gone.
            let at = fx
                .sends
                .iter()
                .position(|(to, _)| *to == conn)
                .map_or(0, |i| i + 1);
            fx.sends.insert(
                at,
                (
                    conn,
                    ServerMessage::ConsultationEnded {
                        consultation_id: id.to_owned(),
                        reason: EndReason::ConnectionLost,
                    },
                ),
            );
        }
        fx
    }

    /// The seat (live or detached connection) that `identity` may resume in the consultation
    /// with public id `consultation_id`.
    fn find_seat(&self, identity: &Identity, consultation_id: &str) -> Option<ConnId> {
        let (&id, cons) = self
            .consultations
            .iter()
            .find(|(_, c)| c.public_id == consultation_id)?;
        cons.members.iter().copied().find(|m| {
            self.conns.get(m).is_some_and(|c| {
                c.place == Place::InConsultation(id)
                    && c.organisation() == organisation_of(identity)
                    && match (identity, &c.identity) {
                        (Identity::Staff { staff_id, .. }, _) => c.is_staff(staff_id),
                        (Identity::Patient(p), Identity::Patient(q)) => {
                            p.visit_key() == q.visit_key()
                        }
                        (Identity::Patient(_), Identity::Staff { .. }) => false,
                    }
            })
        })
    }

    /// New connection `conn` takes over seat `old` (same participant id, same SFU participant).
    fn resume_seat(
        &mut self,
        conn: ConnId,
        old: ConnId,
        identity: Identity,
        now: DateTime<Utc>,
    ) -> Effects {
        let mut fx = Effects::default();
        let Some(seat) = self.conns.remove(&old) else {
            return fx;
        };
        let Place::InConsultation(id) = seat.place else {
            return fx;
        };
        if seat.detached_at.is_none() {
            // The server had not noticed the old connection's loss yet (or it is a stale tab).
            fx.close.push(old);
        }
        let c = Conn {
            identity,
            participant_id: seat.participant_id.clone(),
            media: seat.media,
            place: Place::InConsultation(id),
            audio: seat.audio,
            video: seat.video,
            media_health: None,
            detached_at: None,
        };
        let staff = c.role() == Role::Staff;
        fx.send(
            conn,
            ServerMessage::Joined {
                protocol: crate::protocol::PROTOCOL_VERSION,
                participant_id: c.participant_id.clone(),
                role: c.role(),
                display_name: c.display_name().to_owned(),
            },
        );
        if staff {
            let mut entries: Vec<WaitingEntry> = self
                .queues
                .iter()
                .filter(|(k, _)| c.watches(k))
                .flat_map(|(_, q)| q.iter().map(|w| w.entry.clone()))
                .collect();
            entries.sort_by(|a, b| a.arrived_at.cmp(&b.arrived_at));
            fx.send(conn, ServerMessage::WaitingSnapshot { entries });
        }
        let participant_id = c.participant_id.clone();
        self.conns.insert(conn, c);
        fx.sfu_rebind.push((seat.media, conn));
        let Some(cons) = self.consultations.get_mut(&id) else {
            return fx;
        };
        for m in cons.members.iter_mut() {
            if *m == old {
                *m = conn;
            }
        }
        let cons = &self.consultations[&id];
        let participants: Vec<ParticipantInfo> = cons
            .members
            .iter()
            .filter_map(|m| self.conns.get(m).map(Conn::info))
            .collect();
        fx.send(
            conn,
            ServerMessage::ConsultationStarted {
                consultation_id: cons.public_id.clone(),
                started_at: rfc3339(cons.started_at),
                participants,
                resumed: true,
            },
        );
        for m in self.live_members(cons, conn) {
            fx.send(
                m,
                ServerMessage::ParticipantResumed {
                    participant_id: participant_id.clone(),
                },
            );
        }
        // A client back from a dropped connection: guests who came meanwhile enter now.
        let client_of = match &self.conns[&conn].identity {
            Identity::Patient(PatientIdentity {
                visit: Visit::Appointment { appointment_id, .. },
                organisation_id,
                ..
            }) => Some((appointment_id.clone(), organisation_id.clone())),
            _ => None,
        };
        if let Some((appointment_id, org)) = client_of {
            fx.merge(self.admit_guests(id, &appointment_id, &org, now));
        }
        fx
    }

    fn join_staff(
        &mut self,
        conn: ConnId,
        identity: Identity,
        participant_id: String,
        now: DateTime<Utc>,
    ) -> Effects {
        let mut fx = Effects::default();
        let c = Conn {
            identity,
            participant_id: participant_id.clone(),
            media: conn.participant(),
            place: Place::Idle,
            audio: true,
            video: true,
            media_health: None,
            detached_at: None,
        };
        fx.send(
            conn,
            ServerMessage::Joined {
                protocol: crate::protocol::PROTOCOL_VERSION,
                participant_id,
                role: Role::Staff,
                display_name: c.display_name().to_owned(),
            },
        );
        let mut entries: Vec<WaitingEntry> = self
            .queues
            .iter()
            .filter(|(k, _)| c.watches(k))
            .flat_map(|(_, q)| q.iter().map(|w| w.entry.clone()))
            .collect();
        entries.sort_by(|a, b| a.arrived_at.cmp(&b.arrived_at));
        fx.send(conn, ServerMessage::WaitingSnapshot { entries });
        let watched: Vec<QueueKey> = self
            .queues
            .keys()
            .filter(|k| c.watches(k))
            .cloned()
            .collect();
        self.conns.insert(conn, c);
        // A practitioner coming online makes an estimate possible for their patients.
        for key in watched {
            self.refresh_queue_status(&mut fx, &key, now);
        }
        fx
    }

    fn join_patient(
        &mut self,
        conn: ConnId,
        patient: PatientIdentity,
        participant_id: String,
        now: DateTime<Utc>,
    ) -> Effects {
        let mut fx = Effects::default();
        let visit_key = patient.visit_key().to_owned();

        // Another live connection of the same visit: it is replaced by this one.
        let old: Vec<ConnId> = self
            .conns
            .iter()
            .filter(
                |(_, c)| matches!(&c.identity, Identity::Patient(p) if p.visit_key() == visit_key),
            )
            .map(|(id, _)| *id)
            .collect();
        let mut participant_id = participant_id;
        for old_conn in old {
            if let Some(c) = self.conns.remove(&old_conn) {
                if c.detached_at.is_none() {
                    fx.close.push(old_conn);
                }
                match c.place {
                    // Keep the waiter; the new connection takes it over below.
                    Place::Waiting(_) => participant_id = c.participant_id,
                    Place::InConsultation(id) => {
                        let more = self.leave_consultation(old_conn, &c, id);
                        fx.merge(more);
                    }
                    Place::Idle | Place::Done | Place::GuestLobby => {}
                }
            }
        }

        // A force-started consultation waiting for this appointment: straight in.
        if let Visit::Appointment { appointment_id, .. } = &patient.visit
            && let Some((&id, _)) = self.consultations.iter().find(|(_, cons)| {
                cons.expecting.as_deref() == Some(appointment_id.as_str())
                    && cons.members.iter().any(|m| {
                        self.conns.get(m).is_some_and(|c| {
                            c.watches(&patient.queue) && c.organisation() == patient.organisation_id
                        })
                    })
            })
        {
            // If they were waiting (second tab), their entry goes.
            if let Some(more) = self.remove_waiter(&visit_key, now) {
                fx.merge(more);
            }
            let display_name = patient.display_name.clone();
            self.conns.insert(
                conn,
                Conn {
                    identity: Identity::Patient(patient),
                    participant_id: participant_id.clone(),
                    media: conn.participant(),
                    place: Place::Done,
                    audio: true,
                    video: true,
                    media_health: None,
                    detached_at: None,
                },
            );
            fx.send(conn, joined_patient(&participant_id, &display_name));
            let more = self.enter_consultation(id, conn, now);
            fx.merge(more);
            return fx;
        }

        let punctuality = match &patient.visit {
            Visit::Appointment { starts_at, .. } if now <= *starts_at => Punctuality::OnTime,
            Visit::Appointment { .. } => Punctuality::Late,
            Visit::WalkIn { .. } | Visit::Guest { .. } => Punctuality::WalkIn,
        };
        let key = patient.queue.clone();
        let display_name = patient.display_name.clone();
        // Coming back to a place held as `reconnecting`: the same participant id.
        if let Some(w) = self
            .queues
            .values()
            .flatten()
            .find(|w| w.visit_key == visit_key)
        {
            participant_id = w.entry.participant_id.clone();
        }
        fx.send(conn, joined_patient(&participant_id, &display_name));

        let existing = self
            .queues
            .values_mut()
            .flat_map(|q| q.iter_mut())
            .find(|w| w.visit_key == visit_key);
        let (key, entry) = if let Some(w) = existing {
            // Reconnect (or second tab): same place in the queue, same participant id.
            w.conn = Some(conn);
            w.disconnected_at = None;
            w.entry.reconnecting = false;
            // The new connection has seen no status yet.
            w.last_status = None;
            participant_id = w.entry.participant_id.clone();
            let key = queue_key(&w.entry.queue);
            let entry = w.entry.clone();
            self.tell_watchers(
                &mut fx,
                &key,
                &ServerMessage::WaitingUpdated {
                    entry: entry.clone(),
                },
            );
            (key, entry)
        } else {
            let entry = waiting_entry(&patient, &participant_id, queue_ref(&key), punctuality, now);
            self.tell_watchers(
                &mut fx,
                &key,
                &ServerMessage::WaitingArrived {
                    entry: entry.clone(),
                },
            );
            self.queues.entry(key.clone()).or_default().push(Waiter {
                conn: Some(conn),
                visit_key,
                entry: entry.clone(),
                identity: patient.clone(),
                disconnected_at: None,
                last_status: None,
            });
            (key, entry)
        };
        fx.send(
            conn,
            ServerMessage::Waiting {
                appointment_starts_at: entry.appointment_starts_at.clone(),
                punctuality: entry.punctuality,
                reason: None,
            },
        );
        fx.send(
            conn,
            ServerMessage::Announcements {
                items: self.announcements_for(&patient, now),
            },
        );
        self.conns.insert(
            conn,
            Conn {
                identity: Identity::Patient(patient),
                participant_id,
                media: conn.participant(),
                place: Place::Waiting(key.clone()),
                audio: true,
                video: true,
                media_health: None,
                detached_at: None,
            },
        );
        self.refresh_queue_status(&mut fx, &key, now);
        fx
    }

    /// Staff connection `conn` admits the waiting patient `participant_id` into a new
    /// consultation with itself.
    pub fn admit(
        &mut self,
        conn: ConnId,
        participant_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Effects, Refusal> {
        let caller = self.staff(conn)?;
        if caller.place != Place::Idle {
            return Err(refuse(
                ErrorCode::InvalidState,
                "you are already in a consultation",
            ));
        }
        let (key, idx) = self
            .find_waiter(participant_id, caller)
            .ok_or_else(|| refuse(ErrorCode::NotFound, "no such waiting patient"))?;
        let Some(patient_conn) = self.queues[&key][idx].conn else {
            return Err(refuse(
                ErrorCode::InvalidState,
                "the patient is reconnecting; try again in a moment",
            ));
        };
        let mut fx = self.end_probe(conn, Some(ProbeEndReason::ConsultationStarted));
        self.take_waiter(&mut fx, &key, idx, now);
        let id = self.new_consultation(now, None);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.place = Place::InConsultation(id);
            c.media = conn.participant();
        }
        if let Some(cons) = self.consultations.get_mut(&id) {
            cons.members.push(conn);
        }
        fx.sfu_join.push((RoomId(id), conn));
        let more = self.enter_consultation(id, patient_conn, now);
        fx.merge(more);
        Ok(fx)
    }

    /// Staff `conn` starts the consultation of `appointment_id` alone; the patient goes
    /// straight in when they arrive (or now, if they are already waiting).
    pub fn force_start(
        &mut self,
        conn: ConnId,
        appointment_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Effects, Refusal> {
        let caller = self.staff(conn)?;
        if caller.place != Place::Idle {
            return Err(refuse(
                ErrorCode::InvalidState,
                "you are already in a consultation",
            ));
        }
        // Already waiting in one of the caller's rooms: that is an ordinary admission.
        let waiting = self.queues.iter().find_map(|(k, q)| {
            q.iter()
                .find(|w| w.entry.appointment_id.as_deref() == Some(appointment_id))
                .filter(|_| caller.watches(k))
                .map(|w| w.entry.participant_id.clone())
        });
        if let Some(pid) = waiting {
            return self.admit(conn, &pid, now);
        }
        let id = self.new_consultation(now, Some(appointment_id.to_owned()));
        let mut fx = self.end_probe(conn, Some(ProbeEndReason::ConsultationStarted));
        if let Some(c) = self.conns.get_mut(&conn) {
            c.place = Place::InConsultation(id);
            c.media = conn.participant();
        }
        let info = self.conns.get(&conn).map(Conn::info);
        if let Some(cons) = self.consultations.get_mut(&id) {
            cons.members.push(conn);
            fx.sfu_join.push((RoomId(id), conn));
            fx.send(
                conn,
                ServerMessage::ConsultationStarted {
                    consultation_id: cons.public_id.clone(),
                    started_at: rfc3339(now),
                    participants: info.into_iter().collect(),
                    resumed: false,
                },
            );
        }
        Ok(fx)
    }

    /// Staff `conn` moves a patient (waiting in one of the caller's rooms, or in the caller's
    /// consultation) to the waiting room `to` of the same organisation.
    pub fn transfer(
        &mut self,
        conn: ConnId,
        participant_id: &str,
        to: &QueueRef,
        now: DateTime<Utc>,
    ) -> Result<Effects, Refusal> {
        let caller = self.staff(conn)?;
        let target = queue_key(to);
        let org = caller.organisation().to_owned();
        // The target must be a waiting room someone of this organisation watches right now
        // (signalling has no directory; an unknown target would strand the patient).
        let target_known = self
            .conns
            .values()
            .any(|c| c.role() == Role::Staff && c.organisation() == org && c.watches(&target));
        if !target_known {
            return Err(refuse(
                ErrorCode::NotFound,
                "no one of your organisation is online for that waiting room",
            ));
        }
        let mut fx = Effects::default();
        if let Some((key, idx)) = self.find_waiter(participant_id, caller) {
            if key == target {
                return Ok(fx);
            }
            let mut w = self.take_waiter(&mut fx, &key, idx, now);
            w.entry.queue = to.clone();
            if let Some(c) = w.conn.and_then(|c| self.conns.get_mut(&c)) {
                c.place = Place::Waiting(target.clone());
            }
            self.put_waiter(&mut fx, w, now);
            return Ok(fx);
        }
        // In the caller's consultation?
        let Place::InConsultation(id) = caller.place else {
            return Err(refuse(ErrorCode::NotFound, "no such patient"));
        };
        let patient_conn = self.consultations.get(&id).and_then(|cons| {
            cons.members.iter().copied().find(|m| {
                self.conns.get(m).is_some_and(|c| {
                    c.participant_id == participant_id
                        && c.role() == Role::Patient
                        && c.guest_of().is_none()
                })
            })
        });
        let Some(patient_conn) = patient_conn else {
            return Err(refuse(ErrorCode::NotFound, "no such patient"));
        };
        let Some(c) = self.conns.remove(&patient_conn) else {
            return Err(refuse(ErrorCode::NotFound, "no such patient"));
        };
        let more = self.leave_consultation(patient_conn, &c, id);
        fx.merge(more);
        // No patient left: the consultation is over for the staff (and guests) too, but the
        // appointment is not completed (the patient is still to be seen by someone else).
        let patients_left = self.consultations.get(&id).is_some_and(|cons| {
            cons.members.iter().any(|m| {
                self.conns
                    .get(m)
                    .is_some_and(|c| c.role() == Role::Patient && c.guest_of().is_none())
            })
        });
        if !patients_left {
            let more = self.close_consultation(id, EndReason::Transferred, now);
            fx.merge(more);
        }
        let Identity::Patient(patient) = c.identity.clone() else {
            return Err(refuse(ErrorCode::NotFound, "no such patient"));
        };
        let punctuality = match patient.visit {
            Visit::Appointment { .. } | Visit::Guest { .. } => Punctuality::OnTime,
            Visit::WalkIn { .. } => Punctuality::WalkIn,
        };
        let mut entry = waiting_entry(&patient, &c.participant_id, to.clone(), punctuality, now);
        // A patient whose connection has dropped waits as `reconnecting` for the rest of
        // their grace period; a new connection of the same visit finds the place.
        let detached_at = c.detached_at;
        entry.reconnecting = detached_at.is_some();
        let live = detached_at.is_none().then_some(patient_conn);
        if let Some(patient_conn) = live {
            self.conns.insert(
                patient_conn,
                Conn {
                    place: Place::Waiting(target.clone()),
                    ..c
                },
            );
            fx.send(
                patient_conn,
                ServerMessage::Waiting {
                    appointment_starts_at: entry.appointment_starts_at.clone(),
                    punctuality: entry.punctuality,
                    reason: None,
                },
            );
            fx.send(
                patient_conn,
                ServerMessage::Announcements {
                    items: self.announcements_for(&patient, now),
                },
            );
        }
        let w = Waiter {
            conn: live,
            visit_key: patient.visit_key().to_owned(),
            entry,
            identity: patient,
            disconnected_at: detached_at,
            last_status: None,
        };
        self.put_waiter(&mut fx, w, now);
        Ok(fx)
    }

    /// `conn` changed its own microphone/camera state.
    pub fn mute(&mut self, conn: ConnId, audio: bool, video: bool) -> Result<Effects, Refusal> {
        let c = self
            .conns
            .get_mut(&conn)
            .ok_or_else(|| refuse(ErrorCode::NotJoined, "join first"))?;
        c.audio = audio;
        c.video = video;
        let participant_id = c.participant_id.clone();
        let mut fx = Effects::default();
        if let Place::InConsultation(id) = c.place
            && let Some(cons) = self.consultations.get(&id)
        {
            for m in cons.members.iter().filter(|m| **m != conn) {
                fx.send(
                    *m,
                    ServerMessage::ParticipantMuted {
                        participant_id: participant_id.clone(),
                        audio,
                        video,
                    },
                );
            }
        }
        Ok(fx)
    }

    /// `conn` reports its own media connection in its consultation (`media_state`): stored for
    /// `participants[].media` and relayed to the others as `participant_media`. Outside a
    /// consultation (a report that raced with its end) it changes nothing.
    pub fn media_state(&mut self, conn: ConnId, state: MediaHealth) -> Result<Effects, Refusal> {
        let c = self
            .conns
            .get_mut(&conn)
            .ok_or_else(|| refuse(ErrorCode::NotJoined, "join first"))?;
        let mut fx = Effects::default();
        let Place::InConsultation(id) = c.place else {
            return Ok(fx);
        };
        if c.media_health == Some(state) {
            return Ok(fx);
        }
        c.media_health = Some(state);
        let participant_id = c.participant_id.clone();
        if let Some(cons) = self.consultations.get(&id) {
            for m in cons.members.iter().filter(|m| **m != conn) {
                fx.send(
                    *m,
                    ServerMessage::ParticipantMedia {
                        participant_id: participant_id.clone(),
                        state,
                    },
                );
            }
        }
        Ok(fx)
    }

    /// A waiting patient `conn` reports its connection check verdict: stored on its waiting-list
    /// entry (kept across a reconnect) and shown to the staff who watch the queue
    /// (`waiting_updated`). Staff are refused; a patient no longer waiting (admitted meanwhile)
    /// changes nothing.
    pub fn connection_check(
        &mut self,
        conn: ConnId,
        level: CheckLevel,
    ) -> Result<Effects, Refusal> {
        let c = self
            .conns
            .get(&conn)
            .ok_or_else(|| refuse(ErrorCode::NotJoined, "join first"))?;
        if c.role() == Role::Staff {
            return Err(refuse(
                ErrorCode::Forbidden,
                "only a waiting patient reports a connection check",
            ));
        }
        let mut fx = Effects::default();
        let Place::Waiting(key) = c.place.clone() else {
            return Ok(fx);
        };
        if let Some(w) = self
            .queues
            .get_mut(&key)
            .and_then(|q| q.iter_mut().find(|w| w.conn == Some(conn)))
            && w.entry.connection_check != Some(level)
        {
            w.entry.connection_check = Some(level);
            let entry = w.entry.clone();
            self.tell_watchers(&mut fx, &key, &ServerMessage::WaitingUpdated { entry });
        }
        Ok(fx)
    }

    /// Staff `conn` ends its consultation for everyone.
    pub fn end(&mut self, conn: ConnId, now: DateTime<Utc>) -> Result<Effects, Refusal> {
        let c = self.staff(conn)?;
        let Place::InConsultation(id) = c.place else {
            return Err(refuse(ErrorCode::InvalidState, "not in a consultation"));
        };
        Ok(self.close_consultation(id, EndReason::Ended, now))
    }

    /// The connection is gone (closed or failed). In a consultation, the seat is held for
    /// [`GRACE`]: the others get `participant_reconnecting`, the SFU participant stays.
    pub fn leave(&mut self, conn: ConnId, now: DateTime<Utc>) -> Effects {
        let mut fx = self.forget_probes(conn);
        if let Some(c) = self.conns.get_mut(&conn)
            && c.detached_at.is_none()
            && let Place::InConsultation(id) = c.place
            && let Some(cons) = self.consultations.get(&id)
        {
            c.detached_at = Some(now);
            let participant_id = c.participant_id.clone();
            for m in self.live_members(cons, conn) {
                fx.send(
                    m,
                    ServerMessage::ParticipantReconnecting {
                        participant_id: participant_id.clone(),
                    },
                );
            }
            return fx;
        }
        let Some(c) = self.conns.remove(&conn) else {
            return fx;
        };
        match &c.place {
            Place::Waiting(key) => {
                // Keep the place for the grace period; the list shows "reconnecting".
                if let Some(w) = self
                    .queues
                    .get_mut(key)
                    .and_then(|q| q.iter_mut().find(|w| w.conn == Some(conn)))
                {
                    w.conn = None;
                    w.disconnected_at = Some(now);
                    w.entry.reconnecting = true;
                    let entry = w.entry.clone();
                    self.tell_watchers(&mut fx, key, &ServerMessage::WaitingUpdated { entry });
                }
            }
            Place::InConsultation(id) => {
                let more = self.leave_consultation(conn, &c, *id);
                fx.merge(more);
            }
            Place::Idle | Place::Done | Place::GuestLobby => {}
        }
        fx
    }

    /// The guest link `guest_id` of organisation `org` was revoked: every connection (or held
    /// seat) of that guest leaves at once — out of the consultation (the others get
    /// `participant_left`) or out of the guest lobby — and is closed with `revoked`.
    pub fn revoke_guest(&mut self, org: &str, guest_id: &str) -> Effects {
        let mut fx = Effects::default();
        let gone: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.organisation() == org
                    && matches!(&c.identity, Identity::Patient(PatientIdentity {
                        visit: Visit::Guest { guest_id: g, .. }, ..
                    }) if g == guest_id)
            })
            .map(|(id, _)| *id)
            .collect();
        for conn in gone {
            let Some(c) = self.conns.remove(&conn) else {
                continue;
            };
            if let Place::InConsultation(id) = c.place {
                fx.merge(self.leave_consultation(conn, &c, id));
            }
            if c.detached_at.is_none() {
                fx.revoked.push(conn);
            }
        }
        fx
    }

    /// Staff login session `session` ended (logout; later deactivation or a password change):
    /// every connection (or held seat) joined with it leaves at once, as with
    /// `leave_consultation` — out of its consultation without a held seat (the others get
    /// `participant_left`; a consultation left empty is over), and out of the watchers of its
    /// waiting rooms. Live connections are listed in `session_ended` to be closed. Other
    /// sessions of the same staff member are not touched.
    pub fn end_staff_session(&mut self, session: &str) -> Effects {
        let mut fx = Effects::default();
        let mut gone: Vec<ConnId> = self
            .conns
            .iter()
            .filter(
                |(_, c)| matches!(&c.identity, Identity::Staff { session: s, .. } if s == session),
            )
            .map(|(id, _)| *id)
            .collect();
        gone.sort();
        for conn in gone {
            fx.merge(self.forget_probes(conn));
            let Some(c) = self.conns.remove(&conn) else {
                continue;
            };
            if let Place::InConsultation(id) = c.place {
                fx.merge(self.leave_consultation(conn, &c, id));
            }
            if c.detached_at.is_none() {
                fx.session_ended.push(conn);
            }
        }
        fx
    }

    /// `conn` leaves its consultation on purpose (no grace period): the others get
    /// `participant_left`; the caller gets `consultation_ended` (`left`). A patient's visit is
    /// then over on this connection; staff are free again.
    pub fn leave_consultation_now(&mut self, conn: ConnId) -> Result<Effects, Refusal> {
        let c = self
            .conns
            .get(&conn)
            .ok_or_else(|| refuse(ErrorCode::NotJoined, "join first"))?;
        let Place::InConsultation(id) = c.place else {
            return Err(refuse(ErrorCode::InvalidState, "not in a consultation"));
        };
        Ok(self.drop_seat(conn, id, EndReason::Left))
    }

    /// The SFU removed `media` on its own (ICE consent expired, DTLS closed): its seat is
    /// released as a leave, and its connection, if any, gets `consultation_ended`
    /// (`connection_lost`).
    pub fn media_lost(&mut self, media: ParticipantId) -> Effects {
        let seat = self.conns.iter().find_map(|(id, c)| match c.place {
            Place::InConsultation(cons) if c.media == media => Some((*id, cons)),
            _ => None,
        });
        match seat {
            Some((conn, id)) => self.drop_seat(conn, id, EndReason::ConnectionLost),
            None => Effects::default(),
        }
    }

    /// Take `conn` out of consultation `id` now: a detached seat disappears, a live connection
    /// is told why and stays joined (staff idle, patient done).
    fn drop_seat(&mut self, conn: ConnId, id: u64, reason: EndReason) -> Effects {
        let mut fx = Effects::default();
        let Some(c) = self.conns.remove(&conn) else {
            return fx;
        };
        let public_id = self
            .consultations
            .get(&id)
            .map(|cons| cons.public_id.clone());
        fx.merge(self.leave_consultation(conn, &c, id));
        if c.detached_at.is_none() {
            if let Some(consultation_id) = public_id {
                fx.send(
                    conn,
                    ServerMessage::ConsultationEnded {
                        consultation_id,
                        reason,
                    },
                );
            }
            let place = match c.role() {
                Role::Staff => Place::Idle,
                Role::Patient => Place::Done,
            };
            self.conns.insert(conn, Conn { place, ..c });
        }
        fx
    }

    /// Time passed: drop waiting patients whose grace period is over, release consultation
    /// seats held too long for a dropped connection, and refresh the announcements of
    /// patients whose announcements expired.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Effects {
        let mut fx = self.expire_probes(now);
        let mut seats: Vec<(ConnId, u64)> = self
            .conns
            .iter()
            .filter(|(_, c)| c.detached_at.is_some_and(|t| t + GRACE <= now))
            .filter_map(|(id, c)| match c.place {
                Place::InConsultation(cons) => Some((*id, cons)),
                _ => None,
            })
            .collect();
        seats.sort();
        for (conn, id) in seats {
            fx.merge(self.drop_seat(conn, id, EndReason::ConnectionLost));
        }
        let expired: Vec<String> = self
            .queues
            .values()
            .flatten()
            .filter(|w| w.disconnected_at.is_some_and(|t| t + GRACE <= now))
            .map(|w| w.visit_key.clone())
            .collect();
        for visit in expired {
            if let Some(more) = self.remove_waiter(&visit, now) {
                fx.merge(more);
            }
        }
        let last = self.last_tick.replace(now);
        let expired_since = self.announcements.iter().any(|a| {
            a.expires_at
                .is_some_and(|t| t <= now && last.is_none_or(|l| t > l))
        });
        if expired_since {
            fx.merge(self.push_announcements(now));
        }
        fx
    }

    /// Replace the node's service announcements (all organisations); every waiting patient
    /// whose list changed gets the new one.
    pub fn set_announcements(&mut self, items: Vec<Announcement>, now: DateTime<Utc>) -> Effects {
        self.announcements = items;
        self.push_announcements(now)
    }

    fn announcements_for(&self, p: &PatientIdentity, now: DateTime<Utc>) -> Vec<AnnouncementInfo> {
        self.announcements
            .iter()
            .filter(|a| a.organisation_id == p.organisation_id && a.scope == p.queue)
            .filter(|a| a.expires_at.is_none_or(|t| t > now))
            .map(|a| AnnouncementInfo {
                id: a.id.clone(),
                text: a.text.clone(),
                expires_at: a.expires_at.map(rfc3339),
            })
            .collect()
    }

    /// Send the current announcements to every connected waiting patient.
    fn push_announcements(&self, now: DateTime<Utc>) -> Effects {
        let mut fx = Effects::default();
        for w in self.queues.values().flatten() {
            if let Some(conn) = w.conn {
                fx.send(
                    conn,
                    ServerMessage::Announcements {
                        items: self.announcements_for(&w.identity, now),
                    },
                );
            }
        }
        fx
    }

    // --- helpers -------------------------------------------------------------------------

    fn staff(&self, conn: ConnId) -> Result<&Conn, Refusal> {
        let c = self
            .conns
            .get(&conn)
            .ok_or_else(|| refuse(ErrorCode::NotJoined, "join first"))?;
        if c.role() != Role::Staff {
            return Err(refuse(ErrorCode::Forbidden, "only staff can do this"));
        }
        Ok(c)
    }

    /// The queue and index of waiting patient `participant_id` in a room `caller` watches.
    fn find_waiter(&self, participant_id: &str, caller: &Conn) -> Option<(QueueKey, usize)> {
        self.queues.iter().find_map(|(k, q)| {
            if !caller.watches(k) || queue_org(q) != Some(caller.organisation()) {
                return None;
            }
            q.iter()
                .position(|w| w.entry.participant_id == participant_id)
                .map(|i| (k.clone(), i))
        })
    }

    /// Remove the waiter at `idx` of `key`, telling watchers and the rest of the queue.
    fn take_waiter(
        &mut self,
        fx: &mut Effects,
        key: &QueueKey,
        idx: usize,
        now: DateTime<Utc>,
    ) -> Waiter {
        let q = self.queues.get_mut(key).expect("caller found the queue");
        let w = q.remove(idx);
        if q.is_empty() {
            self.queues.remove(key);
        }
        self.tell_watchers(
            fx,
            key,
            &ServerMessage::WaitingLeft {
                participant_id: w.entry.participant_id.clone(),
            },
        );
        self.refresh_queue_status(fx, key, now);
        w
    }

    fn put_waiter(&mut self, fx: &mut Effects, w: Waiter, now: DateTime<Utc>) {
        let key = queue_key(&w.entry.queue);
        self.tell_watchers(
            fx,
            &key,
            &ServerMessage::WaitingArrived {
                entry: w.entry.clone(),
            },
        );
        let q = self.queues.entry(key.clone()).or_default();
        // Keep arrival order: a transferred patient does not lose the time they waited.
        let pos = q
            .iter()
            .position(|o| o.entry.arrived_at > w.entry.arrived_at)
            .unwrap_or(q.len());
        q.insert(pos, w);
        self.refresh_queue_status(fx, &key, now);
    }

    fn remove_waiter(&mut self, visit_key: &str, now: DateTime<Utc>) -> Option<Effects> {
        let (key, idx) = self.queues.iter().find_map(|(k, q)| {
            q.iter()
                .position(|w| w.visit_key == visit_key)
                .map(|i| (k.clone(), i))
        })?;
        let mut fx = Effects::default();
        self.take_waiter(&mut fx, &key, idx, now);
        Some(fx)
    }

    fn new_consultation(&mut self, now: DateTime<Utc>, expecting: Option<String>) -> u64 {
        self.next_consultation += 1;
        let id = self.next_consultation;
        self.consultations.insert(
            id,
            Consultation {
                public_id: uuid::Uuid::new_v4().to_string(),
                started_at: now,
                members: Vec::new(),
                visit: None,
                expecting,
            },
        );
        id
    }

    /// Put patient `conn` into consultation `id`: SFU join, `consultation_started` to them,
    /// `participant_joined` to those already in.
    fn enter_consultation(&mut self, id: u64, conn: ConnId, now: DateTime<Utc>) -> Effects {
        let mut fx = self.end_probe(conn, Some(ProbeEndReason::ConsultationStarted));
        let Some(c) = self.conns.get_mut(&conn) else {
            return fx;
        };
        c.place = Place::InConsultation(id);
        c.media = conn.participant();
        c.media_health = None;
        // A guest is not the visit being served, nor the patient a force-start expects.
        let visit = match &c.identity {
            Identity::Patient(p) if p.guest_of().is_none() => Some(p.clone()),
            Identity::Patient(_) | Identity::Staff { .. } => None,
        };
        let client_of = match &visit {
            Some(PatientIdentity {
                visit: Visit::Appointment { appointment_id, .. },
                organisation_id,
                ..
            }) => Some((appointment_id.clone(), organisation_id.clone())),
            _ => None,
        };
        let info = c.info();
        let Some(cons) = self.consultations.get_mut(&id) else {
            return fx;
        };
        if visit.is_some() {
            cons.expecting = None;
        }
        if cons.visit.is_none() {
            cons.visit = visit;
        }
        let existing = cons.members.clone();
        cons.members.push(conn);
        let participants: Vec<ParticipantInfo> = cons
            .members
            .iter()
            .filter_map(|m| self.conns.get(m).map(Conn::info))
            .collect();
        let cons = &self.consultations[&id];
        fx.sfu_join.push((RoomId(id), conn));
        // Those already in learn of the newcomer; a staff member who has just admitted gets
        // the full `consultation_started` (it is their first frame of this consultation).
        for m in &existing {
            let fresh = cons.started_at == now && existing.len() == 1;
            if fresh {
                fx.send(
                    *m,
                    ServerMessage::ConsultationStarted {
                        consultation_id: cons.public_id.clone(),
                        started_at: rfc3339(cons.started_at),
                        participants: participants.clone(),
                        resumed: false,
                    },
                );
            } else {
                fx.send(
                    *m,
                    ServerMessage::ParticipantJoined {
                        participant: info.clone(),
                    },
                );
            }
        }
        fx.send(
            conn,
            ServerMessage::ConsultationStarted {
                consultation_id: cons.public_id.clone(),
                started_at: rfc3339(cons.started_at),
                participants,
                resumed: false,
            },
        );
        // The practitioner is busy now: estimates of those still waiting move.
        let keys: Vec<QueueKey> = self.queues.keys().cloned().collect();
        for k in keys {
            self.refresh_queue_status(&mut fx, &k, now);
        }
        // The client is in: their guests waiting for them follow.
        if let Some((appointment_id, org)) = client_of {
            fx.merge(self.admit_guests(id, &appointment_id, &org, now));
        }
        fx
    }

    /// Guests of `appointment_id` (organisation `org`) waiting for the client enter
    /// consultation `id`, in the order they connected.
    fn admit_guests(
        &mut self,
        id: u64,
        appointment_id: &str,
        org: &str,
        now: DateTime<Utc>,
    ) -> Effects {
        let mut fx = Effects::default();
        let mut guests: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.place == Place::GuestLobby
                    && c.guest_of() == Some(appointment_id)
                    && c.organisation() == org
            })
            .map(|(id, _)| *id)
            .collect();
        guests.sort();
        for g in guests {
            fx.merge(self.enter_consultation(id, g, now));
        }
        fx
    }

    /// The running consultation in which the client of `appointment_id` (organisation `org`)
    /// is present with a live connection.
    fn client_consultation(&self, appointment_id: &str, org: &str) -> Option<u64> {
        self.consultations.iter().find_map(|(&id, cons)| {
            cons.members
                .iter()
                .any(|m| {
                    self.conns.get(m).is_some_and(|c| {
                        c.place == Place::InConsultation(id)
                            && c.detached_at.is_none()
                            && c.organisation() == org
                            && c.is_client_of(appointment_id)
                    })
                })
                .then_some(id)
        })
    }

    /// A guest of an appointment joins: straight into the consultation when the appointment's
    /// client is in it, otherwise into the guest lobby (`waiting` with `waiting_for_client`)
    /// until the client enters. A newer connection of the same guest replaces an older one.
    fn join_guest(
        &mut self,
        conn: ConnId,
        guest: PatientIdentity,
        participant_id: String,
        now: DateTime<Utc>,
    ) -> Effects {
        let mut fx = Effects::default();
        let visit_key = guest.visit_key().to_owned();
        let appointment_id = guest.guest_of().unwrap_or_default().to_owned();
        let old: Vec<ConnId> = self
            .conns
            .iter()
            .filter(
                |(_, c)| matches!(&c.identity, Identity::Patient(p) if p.visit_key() == visit_key),
            )
            .map(|(id, _)| *id)
            .collect();
        for old_conn in old {
            if let Some(c) = self.conns.remove(&old_conn) {
                if c.detached_at.is_none() {
                    fx.close.push(old_conn);
                }
                if let Place::InConsultation(id) = c.place {
                    fx.merge(self.leave_consultation(old_conn, &c, id));
                }
            }
        }
        let org = guest.organisation_id.clone();
        let display_name = guest.display_name.clone();
        self.conns.insert(
            conn,
            Conn {
                identity: Identity::Patient(guest),
                participant_id: participant_id.clone(),
                media: conn.participant(),
                place: Place::GuestLobby,
                audio: true,
                video: true,
                media_health: None,
                detached_at: None,
            },
        );
        fx.send(conn, joined_patient(&participant_id, &display_name));
        match self.client_consultation(&appointment_id, &org) {
            Some(id) => fx.merge(self.enter_consultation(id, conn, now)),
            None => fx.send(
                conn,
                ServerMessage::Waiting {
                    appointment_starts_at: None,
                    punctuality: Punctuality::OnTime,
                    reason: Some(WaitingReason::WaitingForClient),
                },
            ),
        }
        fx
    }

    /// Remove `conn` (already removed from `conns`, passed as `c`) from consultation `id`.
    fn leave_consultation(&mut self, conn: ConnId, c: &Conn, id: u64) -> Effects {
        let mut fx = Effects::default();
        fx.sfu_leave.push(c.media);
        let Some(cons) = self.consultations.get_mut(&id) else {
            return fx;
        };
        cons.members.retain(|m| *m != conn);
        for m in &cons.members {
            fx.send(
                *m,
                ServerMessage::ParticipantLeft {
                    participant_id: c.participant_id.clone(),
                },
            );
        }
        if cons.members.is_empty()
            && let Some(cons) = self.consultations.remove(&id)
        {
            fx.ended.push(cons.public_id);
        }
        fx
    }

    fn close_consultation(&mut self, id: u64, reason: EndReason, now: DateTime<Utc>) -> Effects {
        let mut fx = Effects::default();
        let Some(cons) = self.consultations.remove(&id) else {
            return fx;
        };
        fx.ended.push(cons.public_id.clone());
        for m in &cons.members {
            fx.send(
                *m,
                ServerMessage::ConsultationEnded {
                    consultation_id: cons.public_id.clone(),
                    reason,
                },
            );
            if self.conns.get(m).is_some_and(|c| c.detached_at.is_some()) {
                // A held seat: nobody to come back to it.
                if let Some(c) = self.conns.remove(m) {
                    fx.sfu_leave.push(c.media);
                }
            } else if let Some(c) = self.conns.get_mut(m) {
                fx.sfu_leave.push(c.media);
                c.place = match c.role() {
                    Role::Staff => Place::Idle,
                    Role::Patient => Place::Done,
                };
            }
        }
        // Guests still waiting for the client of an appointment that is now over: it ended.
        if reason == EndReason::Ended
            && let Some(PatientIdentity {
                visit: Visit::Appointment { appointment_id, .. },
                organisation_id,
                ..
            }) = &cons.visit
        {
            let mut lobby: Vec<ConnId> = self
                .conns
                .iter()
                .filter(|(_, c)| {
                    c.place == Place::GuestLobby
                        && c.guest_of() == Some(appointment_id.as_str())
                        && c.organisation() == organisation_id
                })
                .map(|(id, _)| *id)
                .collect();
            lobby.sort();
            for g in lobby {
                fx.send(
                    g,
                    ServerMessage::ConsultationEnded {
                        consultation_id: cons.public_id.clone(),
                        reason,
                    },
                );
                if let Some(c) = self.conns.get_mut(&g) {
                    c.place = Place::Done;
                }
            }
        }
        if reason == EndReason::Ended
            && let Some(p) = cons.visit
        {
            fx.completed.push(p.visit);
        }
        // The practitioner is free: estimates move.
        let keys: Vec<QueueKey> = self.queues.keys().cloned().collect();
        for k in keys {
            self.refresh_queue_status(&mut fx, &k, now);
        }
        fx
    }
}

/// A waiting-list entry for `patient`, arriving `now` in `queue`.
fn waiting_entry(
    patient: &PatientIdentity,
    participant_id: &str,
    queue: QueueRef,
    punctuality: Punctuality,
    now: DateTime<Utc>,
) -> WaitingEntry {
    let (appointment_id, appointment_starts_at) = match &patient.visit {
        Visit::Appointment {
            appointment_id,
            starts_at,
            ..
        } => (Some(appointment_id.clone()), Some(rfc3339(*starts_at))),
        Visit::WalkIn { .. } | Visit::Guest { .. } => (None, None),
    };
    WaitingEntry {
        participant_id: participant_id.to_owned(),
        display_name: patient.display_name.clone(),
        appointment_id,
        appointment_starts_at,
        arrived_at: rfc3339(now),
        punctuality,
        queue,
        reconnecting: false,
        connection_check: None,
    }
}

fn joined_patient(participant_id: &str, display_name: &str) -> ServerMessage {
    ServerMessage::Joined {
        protocol: crate::protocol::PROTOCOL_VERSION,
        participant_id: participant_id.to_owned(),
        role: Role::Patient,
        display_name: display_name.to_owned(),
    }
}

fn organisation_of(identity: &Identity) -> &str {
    match identity {
        Identity::Staff {
            organisation_id, ..
        } => organisation_id,
        Identity::Patient(p) => &p.organisation_id,
    }
}

fn queue_org(q: &[Waiter]) -> Option<&str> {
    q.first().map(|w| w.identity.organisation_id.as_str())
}
