//! Waiting rooms: a practitioner's own room, or the shared room of a department (F7, F75).
//!
//! An appointment names a responsible practitioner either way; its [`WaitingRoomKind`] says
//! whether the patient waits in that practitioner's room or in the department's room, where any
//! practitioner of the department can admit them. [`WaitingRoomRef`] names one concrete room; it
//! is the `scope` of announcements and the `waiting_room` of patient join tokens.
//!
//! Who may manage a room (post and delete its announcements), [`may_manage`]: everyone their own
//! practitioner room; practitioners also their department's room; department admins their
//! department's room and the rooms of its practitioners; organisation admins every room of their
//! organisation.

use serde::{Deserialize, Serialize};

use crate::ids::{DepartmentId, StaffId};
use crate::staff::{Role, Staff};

/// Where the patient of an appointment waits (`appointment.waiting_room`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitingRoomKind {
    /// The responsible practitioner's own waiting room (the default).
    #[default]
    Practitioner,
    /// The shared waiting room of the appointment's department.
    Department,
}

impl WaitingRoomKind {
    /// The stored and serialised name.
    pub fn as_str(self) -> &'static str {
        match self {
            WaitingRoomKind::Practitioner => "practitioner",
            WaitingRoomKind::Department => "department",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        match s {
            "practitioner" => Ok(WaitingRoomKind::Practitioner),
            "department" => Ok(WaitingRoomKind::Department),
            other => anyhow::bail!("unknown waiting room kind {other:?}"),
        }
    }
}

/// One concrete waiting room, serialised as `{"kind":"practitioner"|"department","id":"<uuid>"}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum WaitingRoomRef {
    /// A practitioner's own waiting room.
    Practitioner(StaffId),
    /// A department's shared waiting room.
    Department(DepartmentId),
}

impl WaitingRoomRef {
    /// The room a patient of an appointment waits in: the department's room when the appointment
    /// asks for it and still has a department, otherwise the practitioner's.
    pub fn for_appointment(
        kind: WaitingRoomKind,
        practitioner_id: StaffId,
        department_id: Option<DepartmentId>,
    ) -> Self {
        match (kind, department_id) {
            (WaitingRoomKind::Department, Some(d)) => WaitingRoomRef::Department(d),
            _ => WaitingRoomRef::Practitioner(practitioner_id),
        }
    }

    /// The kind of room.
    pub fn kind(&self) -> WaitingRoomKind {
        match self {
            WaitingRoomRef::Practitioner(_) => WaitingRoomKind::Practitioner,
            WaitingRoomRef::Department(_) => WaitingRoomKind::Department,
        }
    }

    /// The id of the practitioner or department, as stored (`scope_id`).
    pub fn id_string(&self) -> String {
        match self {
            WaitingRoomRef::Practitioner(id) => id.to_string(),
            WaitingRoomRef::Department(id) => id.to_string(),
        }
    }

    /// Rebuilds a room from its stored kind and id.
    pub fn parse(kind: &str, id: &str) -> anyhow::Result<Self> {
        Ok(match WaitingRoomKind::parse(kind)? {
            WaitingRoomKind::Practitioner => WaitingRoomRef::Practitioner(id.parse()?),
            WaitingRoomKind::Department => WaitingRoomRef::Department(id.parse()?),
        })
    }
}

/// Whether `staff` may manage `room`. For a practitioner room, `room_department` is that
/// practitioner's department. The caller has already checked that the room exists in the
/// staff member's organisation.
pub fn may_manage(
    staff: &Staff,
    room: &WaitingRoomRef,
    room_department: Option<DepartmentId>,
) -> bool {
    let own_department = |d: Option<DepartmentId>| d.is_some() && d == staff.department_id;
    match (staff.role, room) {
        (Role::OrganisationAdmin, _) => true,
        (_, WaitingRoomRef::Practitioner(p)) if *p == staff.id => true,
        (Role::DepartmentAdmin, WaitingRoomRef::Practitioner(_)) => own_department(room_department),
        (_, WaitingRoomRef::Department(d)) => own_department(Some(*d)),
        (Role::Practitioner, WaitingRoomRef::Practitioner(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::OrganisationId;

    fn staff(role: Role, department_id: Option<DepartmentId>) -> Staff {
        Staff {
            id: StaffId::new(),
            name: "n".into(),
            email: "e@x.test".into(),
            role,
            organisation_id: OrganisationId::new(),
            department_id,
        }
    }

    #[test]
    fn room_rules_by_role() {
        let (d1, d2) = (DepartmentId::new(), DepartmentId::new());
        let other = WaitingRoomRef::Practitioner(StaffId::new());
        let doc = staff(Role::Practitioner, Some(d1));
        let own = WaitingRoomRef::Practitioner(doc.id);
        assert!(may_manage(&doc, &own, Some(d1)));
        assert!(may_manage(&doc, &WaitingRoomRef::Department(d1), None));
        assert!(!may_manage(&doc, &WaitingRoomRef::Department(d2), None));
        assert!(!may_manage(&doc, &other, Some(d1)), "a colleague's room");

        let dept_admin = staff(Role::DepartmentAdmin, Some(d1));
        assert!(may_manage(&dept_admin, &other, Some(d1)));
        assert!(!may_manage(&dept_admin, &other, Some(d2)));
        assert!(!may_manage(&dept_admin, &other, None));
        assert!(may_manage(
            &dept_admin,
            &WaitingRoomRef::Department(d1),
            None
        ));
        assert!(!may_manage(
            &dept_admin,
            &WaitingRoomRef::Department(d2),
            None
        ));

        let lone = staff(Role::DepartmentAdmin, None);
        assert!(
            !may_manage(&lone, &other, None),
            "no department matches none"
        );

        let admin = staff(Role::OrganisationAdmin, None);
        assert!(may_manage(&admin, &other, Some(d2)));
        assert!(may_manage(&admin, &WaitingRoomRef::Department(d2), None));
    }

    #[test]
    fn serde_shape_and_appointment_fallback() {
        let d = DepartmentId::new();
        let room = WaitingRoomRef::Department(d);
        let json = serde_json::to_value(room).unwrap();
        assert_eq!(
            json,
            serde_json::json!({ "kind": "department", "id": d.to_string() })
        );
        assert_eq!(
            serde_json::from_value::<WaitingRoomRef>(json).unwrap(),
            room
        );
        let p = StaffId::new();
        assert_eq!(
            WaitingRoomRef::for_appointment(WaitingRoomKind::Department, p, None),
            WaitingRoomRef::Practitioner(p)
        );
        assert_eq!(
            WaitingRoomRef::for_appointment(WaitingRoomKind::Practitioner, p, Some(d)),
            WaitingRoomRef::Practitioner(p)
        );
        assert_eq!(
            WaitingRoomRef::parse("department", &d.to_string()).unwrap(),
            room
        );
        assert!(WaitingRoomRef::parse("lobby", &d.to_string()).is_err());
    }

    #[test]
    fn join_claims_without_the_new_fields_still_parse() {
        use crate::tokens::JoinClaims;
        let p = StaffId::new();
        let old_patient = serde_json::json!({
            "kind": "patient",
            "appointment_id": uuid::Uuid::now_v7(),
            "organisation_id": uuid::Uuid::now_v7(),
            "practitioner_id": p,
            "display_name": "Sam",
            "appointment_starts_at": "2030-03-04T09:00:00Z",
        });
        match serde_json::from_value::<JoinClaims>(old_patient).unwrap() {
            JoinClaims::Patient(j) => {
                assert_eq!(j.waiting_room, WaitingRoomRef::Practitioner(p));
                assert_eq!(j.duration_minutes, 0);
            }
            other => panic!("{other:?}"),
        }
        let mut old_staff = serde_json::json!({
            "kind": "staff",
            "staff_id": p,
            "organisation_id": uuid::Uuid::now_v7(),
            "display_name": "Dr. A",
        });
        // A staff token without its session (`sid`, issue #10) is refused on purpose: it could
        // outlive a logout. Tokens live 120 s, so an upgrade costs at most one reconnect.
        assert!(serde_json::from_value::<JoinClaims>(old_staff.clone()).is_err());
        old_staff["sid"] = serde_json::json!(uuid::Uuid::now_v7());
        match serde_json::from_value::<JoinClaims>(old_staff).unwrap() {
            JoinClaims::Staff(s) => assert!(s.department_ids.is_empty()),
            other => panic!("{other:?}"),
        }
        // And the new form round-trips.
        let d = DepartmentId::new();
        let new = serde_json::json!({
            "kind": "patient",
            "appointment_id": uuid::Uuid::now_v7(),
            "organisation_id": uuid::Uuid::now_v7(),
            "practitioner_id": p,
            "display_name": "Sam",
            "appointment_starts_at": "2030-03-04T09:00:00Z",
            "duration_minutes": 20,
            "waiting_room": { "kind": "department", "id": d },
            "permissions": { "screen_share": false, "file_sharing": true, "chat_in_waiting_room": true },
        });
        let claims = serde_json::from_value::<JoinClaims>(new.clone()).unwrap();
        assert_eq!(serde_json::to_value(&claims).unwrap(), new);
        match claims {
            JoinClaims::Patient(j) => assert_eq!(j.waiting_room, WaitingRoomRef::Department(d)),
            other => panic!("{other:?}"),
        }
    }
}
