//! Waiting rooms and consultations as a plain state machine: no IO, no clock, no locks.
//!
//! Every operation takes the current time as an argument and returns [`Effects`]: the frames to
//! send to which connection and the media-plane operations to perform. The WebSocket layer
//! ([`crate::ws`]) applies them. Invariants kept here:
//! - a patient is in at most one place: one waiting room or one consultation;
//! - a waiting patient receives no consultation events and is never joined to the SFU;
//! - admission is atomic: the entry leaves the waiting room in the same step that creates the
//!   consultation, so two staff connections admitting at once cannot both get the patient;
//! - a patient who joins again with the same appointment replaces their old connection, so
//!   nobody appears twice.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, SecondsFormat, Utc};
use consultroom_sfu::{ParticipantId, RoomId};

use crate::Identity;
use crate::protocol::{
    EndReason, ErrorCode, ParticipantInfo, Punctuality, Role, ServerMessage, WaitingEntry,
};

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
    /// Appointments whose consultation ended normally.
    pub completed_appointments: Vec<String>,
    /// Connections to close (replaced by a newer connection of the same patient).
    pub close: Vec<ConnId>,
}

impl Effects {
    fn send(&mut self, to: ConnId, msg: ServerMessage) {
        self.sends.push((to, msg));
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

#[derive(Debug)]
enum Place {
    /// Staff not in a consultation.
    Idle,
    /// Patient in the waiting room of this practitioner.
    Waiting { practitioner_id: String },
    /// In this consultation.
    InConsultation { consultation: u64 },
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
            Identity::Patient { .. } => Role::Patient,
        }
    }

    fn display_name(&self) -> &str {
        match &self.identity {
            Identity::Staff { display_name, .. } | Identity::Patient { display_name, .. } => {
                display_name
            }
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
}

#[derive(Debug)]
struct Consultation {
    public_id: String,
    members: Vec<ConnId>,
    appointment_id: Option<String>,
}

/// All waiting rooms and consultations of this node.
#[derive(Debug, Default)]
pub struct HubState {
    conns: HashMap<ConnId, Conn>,
    /// Staff connections per staff id (one practitioner may have several tabs or devices).
    staff_conns: HashMap<String, Vec<ConnId>>,
    /// Waiting patients per practitioner, in arrival order.
    waiting: HashMap<String, Vec<(ConnId, WaitingEntry)>>,
    consultations: BTreeMap<u64, Consultation>,
    next_consultation: u64,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl HubState {
    /// Number of open connections that have joined.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Number of patients waiting across all waiting rooms.
    pub fn waiting_patients(&self) -> usize {
        self.waiting.values().map(Vec::len).sum()
    }

    /// Number of running consultations.
    pub fn consultations(&self) -> usize {
        self.consultations.len()
    }

    /// A connection authenticated as `identity`; `participant_id` is its public id.
    pub fn join(
        &mut self,
        conn: ConnId,
        identity: Identity,
        participant_id: String,
        now: DateTime<Utc>,
    ) -> Effects {
        let mut fx = Effects::default();
        let role;
        let display_name = match &identity {
            Identity::Staff { display_name, .. } | Identity::Patient { display_name, .. } => {
                display_name.clone()
            }
        };
        let place = match &identity {
            Identity::Staff { staff_id, .. } => {
                role = Role::Staff;
                self.staff_conns
                    .entry(staff_id.clone())
                    .or_default()
                    .push(conn);
                Place::Idle
            }
            Identity::Patient {
                appointment_id,
                practitioner_id,
                ..
            } => {
                role = Role::Patient;
                // The same appointment joining again replaces the old connection.
                let old: Vec<ConnId> = self
                    .conns
                    .iter()
                    .filter(|(_, c)| matches!(&c.identity, Identity::Patient { appointment_id: a, .. } if a == appointment_id))
                    .map(|(id, _)| *id)
                    .collect();
                for old_conn in old {
                    fx.close.push(old_conn);
                    let more = self.leave(old_conn, now);
                    merge(&mut fx, more);
                }
                Place::Waiting {
                    practitioner_id: practitioner_id.clone(),
                }
            }
        };
        fx.send(
            conn,
            ServerMessage::Joined {
                protocol: crate::protocol::PROTOCOL_VERSION,
                participant_id: participant_id.clone(),
                role,
                display_name: display_name.clone(),
            },
        );
        match (&identity, &place) {
            (Identity::Staff { staff_id, .. }, _) => {
                let entries = self
                    .waiting
                    .get(staff_id)
                    .map(|w| w.iter().map(|(_, e)| e.clone()).collect())
                    .unwrap_or_default();
                fx.send(conn, ServerMessage::WaitingSnapshot { entries });
            }
            (
                Identity::Patient {
                    appointment_id,
                    appointment_starts_at,
                    ..
                },
                Place::Waiting { practitioner_id },
            ) => {
                let punctuality = if now <= *appointment_starts_at {
                    Punctuality::OnTime
                } else {
                    Punctuality::Late
                };
                let entry = WaitingEntry {
                    participant_id: participant_id.clone(),
                    display_name,
                    appointment_id: Some(appointment_id.clone()),
                    appointment_starts_at: Some(rfc3339(*appointment_starts_at)),
                    arrived_at: rfc3339(now),
                    punctuality,
                };
                fx.send(
                    conn,
                    ServerMessage::Waiting {
                        appointment_starts_at: entry.appointment_starts_at.clone(),
                        punctuality,
                    },
                );
                for staff in self.staff_conns.get(practitioner_id).into_iter().flatten() {
                    fx.send(
                        *staff,
                        ServerMessage::WaitingArrived {
                            entry: entry.clone(),
                        },
                    );
                }
                self.waiting
                    .entry(practitioner_id.clone())
                    .or_default()
                    .push((conn, entry));
            }
            (Identity::Patient { .. }, _) => {}
        }
        self.conns.insert(
            conn,
            Conn {
                identity,
                participant_id,
                place,
                audio: true,
                video: true,
            },
        );
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
        let caller = self
            .conns
            .get(&conn)
            .ok_or_else(|| refuse(ErrorCode::NotJoined, "join first"))?;
        let Identity::Staff { staff_id, .. } = &caller.identity else {
            return Err(refuse(ErrorCode::Forbidden, "only staff can admit"));
        };
        if !matches!(caller.place, Place::Idle) {
            return Err(refuse(
                ErrorCode::InvalidState,
                "you are already in a consultation",
            ));
        }
        let staff_id = staff_id.clone();
        let queue = self.waiting.get_mut(&staff_id);
        let Some(queue) = queue else {
            return Err(refuse(ErrorCode::NotFound, "no such waiting patient"));
        };
        let Some(pos) = queue
            .iter()
            .position(|(_, e)| e.participant_id == participant_id)
        else {
            return Err(refuse(ErrorCode::NotFound, "no such waiting patient"));
        };
        let (patient_conn, _) = queue.remove(pos);
        if queue.is_empty() {
            self.waiting.remove(&staff_id);
        }

        let mut fx = Effects::default();
        for staff in self.staff_conns.get(&staff_id).into_iter().flatten() {
            fx.send(
                *staff,
                ServerMessage::WaitingLeft {
                    participant_id: participant_id.to_owned(),
                },
            );
        }

        self.next_consultation += 1;
        let id = self.next_consultation;
        let room = RoomId(id);
        let appointment_id = match self.conns.get(&patient_conn).map(|c| &c.identity) {
            Some(Identity::Patient { appointment_id, .. }) => Some(appointment_id.clone()),
            _ => None,
        };
        let members = vec![conn, patient_conn];
        for m in &members {
            if let Some(c) = self.conns.get_mut(m) {
                c.place = Place::InConsultation { consultation: id };
            }
            fx.sfu_join.push((room, *m));
        }
        let consultation = Consultation {
            public_id: uuid::Uuid::new_v4().to_string(),
            members,
            appointment_id,
        };
        let participants: Vec<ParticipantInfo> = consultation
            .members
            .iter()
            .filter_map(|m| self.conns.get(m).map(Conn::info))
            .collect();
        for m in &consultation.members {
            fx.send(
                *m,
                ServerMessage::ConsultationStarted {
                    consultation_id: consultation.public_id.clone(),
                    started_at: rfc3339(now),
                    participants: participants.clone(),
                },
            );
        }
        self.consultations.insert(id, consultation);
        Ok(fx)
    }

    /// Whether `conn` is in a consultation (and so may exchange media).
    pub fn in_consultation(&self, conn: ConnId) -> bool {
        matches!(
            self.conns.get(&conn).map(|c| &c.place),
            Some(Place::InConsultation { .. })
        )
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
        if let Place::InConsultation { consultation } = c.place
            && let Some(cons) = self.consultations.get(&consultation)
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
    pub fn end(&mut self, conn: ConnId) -> Result<Effects, Refusal> {
        let c = self
            .conns
            .get(&conn)
            .ok_or_else(|| refuse(ErrorCode::NotJoined, "join first"))?;
        if c.role() != Role::Staff {
            return Err(refuse(
                ErrorCode::Forbidden,
                "only staff can end a consultation",
            ));
        }
        let Place::InConsultation { consultation } = c.place else {
            return Err(refuse(ErrorCode::InvalidState, "not in a consultation"));
        };
        Ok(self.close_consultation(consultation, EndReason::Ended))
    }

    fn close_consultation(&mut self, id: u64, reason: EndReason) -> Effects {
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
            && let Some(a) = cons.appointment_id
        {
            fx.completed_appointments.push(a);
        }
        fx
    }

    /// The connection is gone (closed, failed or replaced).
    pub fn leave(&mut self, conn: ConnId, _now: DateTime<Utc>) -> Effects {
        let mut fx = Effects::default();
        let Some(c) = self.conns.remove(&conn) else {
            return fx;
        };
        if let Identity::Staff { staff_id, .. } = &c.identity
            && let Some(list) = self.staff_conns.get_mut(staff_id)
        {
            list.retain(|x| *x != conn);
            if list.is_empty() {
                self.staff_conns.remove(staff_id);
            }
        }
        match c.place {
            Place::Waiting { practitioner_id } => {
                if let Some(queue) = self.waiting.get_mut(&practitioner_id) {
                    queue.retain(|(x, _)| *x != conn);
                    if queue.is_empty() {
                        self.waiting.remove(&practitioner_id);
                    }
                }
                for staff in self.staff_conns.get(&practitioner_id).into_iter().flatten() {
                    fx.send(
                        *staff,
                        ServerMessage::WaitingLeft {
                            participant_id: c.participant_id.clone(),
                        },
                    );
                }
            }
            Place::InConsultation { consultation } => {
                fx.sfu_leave.push(conn);
                let mut empty = false;
                if let Some(cons) = self.consultations.get_mut(&consultation) {
                    cons.members.retain(|m| *m != conn);
                    for m in &cons.members {
                        fx.send(
                            *m,
                            ServerMessage::ParticipantLeft {
                                participant_id: c.participant_id.clone(),
                            },
                        );
                    }
                    empty = cons.members.is_empty();
                }
                if empty {
                    self.consultations.remove(&consultation);
                }
            }
            Place::Idle | Place::Done => {}
        }
        fx
    }
}

fn merge(into: &mut Effects, from: Effects) {
    into.sends.extend(from.sends);
    into.sfu_join.extend(from.sfu_join);
    into.sfu_leave.extend(from.sfu_leave);
    into.completed_appointments
        .extend(from.completed_appointments);
    into.close.extend(from.close);
}

#[cfg(test)]
mod tests;
