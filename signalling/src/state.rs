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

mod queue;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use consultroom_sfu::{ParticipantId, RoomId};

use crate::protocol::{
    AnnouncementInfo, EndReason, ErrorCode, ParticipantInfo, Punctuality, QueueKind, QueueRef,
    Role, ServerMessage, WaitingEntry,
};
use crate::{Identity, PatientIdentity, QueueKey, Visit};

pub use queue::Announcement;
use queue::Waiter;

/// How long a waiting patient keeps their place after their connection drops.
pub const GRACE: Duration = Duration::seconds(30);

/// Expected length of a consultation without an appointment duration (walk-ins).
pub const DEFAULT_CONSULTATION: Duration = Duration::minutes(15);

/// Identifies one WebSocket connection. Also used as the SFU participant id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl ConnId {
    /// The media-plane id of this connection.
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
    pub sfu_leave: Vec<ConnId>,
    /// Visits (appointments and walk-ins) whose consultation ended normally.
    pub completed: Vec<Visit>,
    /// Connections to close (replaced by a newer connection of the same patient).
    pub close: Vec<ConnId>,
}

impl Effects {
    fn send(&mut self, to: ConnId, msg: ServerMessage) {
        self.sends.push((to, msg));
    }

    fn merge(&mut self, from: Effects) {
        self.sends.extend(from.sends);
        self.sfu_join.extend(from.sfu_join);
        self.sfu_leave.extend(from.sfu_leave);
        self.completed.extend(from.completed);
        self.close.extend(from.close);
    }
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
}

#[derive(Debug)]
struct Conn {
    identity: Identity,
    participant_id: String,
    place: Place,
    audio: bool,
    video: bool,
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
            display_name: self.display_name().to_owned(),
            role: self.role(),
            audio: self.audio,
            video: self.video,
        }
    }

    /// The waiting rooms a staff connection watches: their own and their departments'.
    fn watches(&self, key: &QueueKey) -> bool {
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
    /// Number of open connections that have joined.
    pub fn connections(&self) -> usize {
        self.conns.len()
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
        match identity {
            Identity::Staff { .. } => self.join_staff(conn, identity, participant_id, now),
            Identity::Patient(p) => self.join_patient(conn, p, participant_id, now),
        }
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
            place: Place::Idle,
            audio: true,
            video: true,
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
            self.refresh_queue_status(&mut fx, &key, now, false);
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
            fx.close.push(old_conn);
            if let Some(c) = self.conns.remove(&old_conn) {
                match c.place {
                    // Keep the waiter; the new connection takes it over below.
                    Place::Waiting(_) => participant_id = c.participant_id,
                    Place::InConsultation(id) => {
                        let more = self.leave_consultation(old_conn, &c, id);
                        fx.merge(more);
                    }
                    Place::Idle | Place::Done => {}
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
                    place: Place::Done,
                    audio: true,
                    video: true,
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
            Visit::WalkIn { .. } => Punctuality::WalkIn,
        };
        let key = patient.queue.clone();
        let display_name = patient.display_name.clone();
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
                place: Place::Waiting(key.clone()),
                audio: true,
                video: true,
            },
        );
        self.refresh_queue_status(&mut fx, &key, now, true);
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
        let mut fx = Effects::default();
        self.take_waiter(&mut fx, &key, idx, now);
        let id = self.new_consultation(now, None);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.place = Place::InConsultation(id);
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
        let mut fx = Effects::default();
        if let Some(c) = self.conns.get_mut(&conn) {
            c.place = Place::InConsultation(id);
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
                    c.participant_id == participant_id && c.role() == Role::Patient
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
        // No patient left: the consultation is over for the staff too, but the appointment is
        // not completed (the patient is still to be seen by someone else).
        let patients_left = self.consultations.get(&id).is_some_and(|cons| {
            cons.members
                .iter()
                .any(|m| self.conns.get(m).is_some_and(|c| c.role() == Role::Patient))
        });
        if !patients_left {
            let more = self.close_consultation(id, EndReason::Transferred, now);
            fx.merge(more);
        }
        let Identity::Patient(patient) = c.identity.clone() else {
            return Err(refuse(ErrorCode::NotFound, "no such patient"));
        };
        let punctuality = match patient.visit {
            Visit::Appointment { .. } => Punctuality::OnTime,
            Visit::WalkIn { .. } => Punctuality::WalkIn,
        };
        let entry = waiting_entry(&patient, &c.participant_id, to.clone(), punctuality, now);
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
            },
        );
        fx.send(
            patient_conn,
            ServerMessage::Announcements {
                items: self.announcements_for(&patient, now),
            },
        );
        let w = Waiter {
            conn: Some(patient_conn),
            visit_key: patient.visit_key().to_owned(),
            entry,
            identity: patient,
            disconnected_at: None,
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

    /// Staff `conn` ends its consultation for everyone.
    pub fn end(&mut self, conn: ConnId, now: DateTime<Utc>) -> Result<Effects, Refusal> {
        let c = self.staff(conn)?;
        let Place::InConsultation(id) = c.place else {
            return Err(refuse(ErrorCode::InvalidState, "not in a consultation"));
        };
        Ok(self.close_consultation(id, EndReason::Ended, now))
    }

    /// The connection is gone (closed or failed).
    pub fn leave(&mut self, conn: ConnId, now: DateTime<Utc>) -> Effects {
        let mut fx = Effects::default();
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
            Place::Idle | Place::Done => {}
        }
        fx
    }

    /// Time passed: drop waiting patients whose grace period is over, and refresh the
    /// announcements of patients whose announcements expired.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Effects {
        let mut fx = Effects::default();
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
        self.refresh_queue_status(fx, key, now, false);
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
        self.refresh_queue_status(fx, &key, now, false);
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
        let mut fx = Effects::default();
        let Some(c) = self.conns.get_mut(&conn) else {
            return fx;
        };
        c.place = Place::InConsultation(id);
        let visit = match &c.identity {
            Identity::Patient(p) => Some(p.clone()),
            Identity::Staff { .. } => None,
        };
        let info = c.info();
        let Some(cons) = self.consultations.get_mut(&id) else {
            return fx;
        };
        cons.expecting = None;
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
            },
        );
        // The practitioner is busy now: estimates of those still waiting move.
        let keys: Vec<QueueKey> = self.queues.keys().cloned().collect();
        for k in keys {
            self.refresh_queue_status(&mut fx, &k, now, false);
        }
        fx
    }

    /// Remove `conn` (already removed from `conns`, passed as `c`) from consultation `id`.
    fn leave_consultation(&mut self, conn: ConnId, c: &Conn, id: u64) -> Effects {
        let mut fx = Effects::default();
        fx.sfu_leave.push(conn);
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
        if cons.members.is_empty() {
            self.consultations.remove(&id);
        }
        fx
    }

    fn close_consultation(&mut self, id: u64, reason: EndReason, now: DateTime<Utc>) -> Effects {
        let mut fx = Effects::default();
        let Some(cons) = self.consultations.remove(&id) else {
            return fx;
        };
        for m in &cons.members {
            fx.send(
                *m,
                ServerMessage::ConsultationEnded {
                    consultation_id: cons.public_id.clone(),
                    reason,
                },
            );
            fx.sfu_leave.push(*m);
            if let Some(c) = self.conns.get_mut(m) {
                c.place = match c.role() {
                    Role::Staff => Place::Idle,
                    Role::Patient => Place::Done,
                };
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
            self.refresh_queue_status(&mut fx, &k, now, false);
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
        Visit::WalkIn { .. } => (None, None),
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

fn queue_org(q: &[Waiter]) -> Option<&str> {
    q.first().map(|w| w.identity.organisation_id.as_str())
}
