//! Fixtures shared by the state machine's table tests (`tests.rs`, `guest_tests.rs`,
//! `probe_tests.rs`): a fixed day, identities of one organisation ("org"), and reading effects.

use super::*;
use chrono::TimeZone;

/// `h:m:s` UTC on the fixed test day (2026-11-23).
pub(super) fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, h, m, s).unwrap()
}

/// Practitioner `id` ("Dr `id`") of no department, logged in with session `session-<id>`.
pub(super) fn staff(id: &str) -> Identity {
    staff_in(id, &[])
}

/// Practitioner `id` of `departments`.
pub(super) fn staff_in(id: &str, departments: &[&str]) -> Identity {
    Identity::Staff {
        staff_id: id.into(),
        organisation_id: "org".into(),
        display_name: format!("Dr {id}"),
        department_ids: departments.iter().map(|d| d.to_string()).collect(),
        permissions: Default::default(),
        session: format!("session-{id}"),
    }
}

/// The patient of appointment `appointment` (20 minutes from `starts`) in `practitioner`'s room.
pub(super) fn patient(appointment: &str, practitioner: &str, starts: DateTime<Utc>) -> Identity {
    patient_q(
        appointment,
        QueueKey::Practitioner(practitioner.into()),
        starts,
        20,
    )
}

/// The patient of appointment `appointment` at 10:00 in doc1's room.
pub(super) fn doc1_patient(appointment: &str) -> Identity {
    patient(appointment, "doc1", t(10, 0, 0))
}

/// The patient of appointment `appointment` (`minutes` long from `starts`) in room `queue`.
pub(super) fn patient_q(
    appointment: &str,
    queue: QueueKey,
    starts: DateTime<Utc>,
    minutes: u32,
) -> Identity {
    Identity::Patient(PatientIdentity {
        organisation_id: "org".into(),
        display_name: format!("Patient {appointment}"),
        visit: Visit::Appointment {
            appointment_id: appointment.into(),
            starts_at: starts,
            duration_minutes: minutes,
        },
        queue,
        permissions: Default::default(),
    })
}

/// The frames of `fx` addressed to `c`, in order.
pub(super) fn sent_to(fx: &Effects, c: ConnId) -> Vec<&ServerMessage> {
    fx.sends
        .iter()
        .filter(|(to, _)| *to == c)
        .map(|(_, m)| m)
        .collect()
}
