//! Newtype ids for every clinic resource.
//!
//! Ids are UUID v7 (time-ordered, tidy B-tree indexes). They are stored as hyphenated TEXT on both
//! backends, so the same Rust code and SQL bind them on SQLite and PostgreSQL.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Encode, Type};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh, time-ordered (v7) id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl<DB: Database> Type<DB> for $name
        where
            String: Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <String as Type<DB>>::type_info()
            }
            fn compatible(ty: &DB::TypeInfo) -> bool {
                <String as Type<DB>>::compatible(ty)
            }
        }

        impl<'q, DB: Database> Encode<'q, DB> for $name
        where
            String: Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as Database>::ArgumentBuffer,
            ) -> Result<IsNull, BoxDynError> {
                <String as Encode<'q, DB>>::encode(self.to_string(), buf)
            }
        }

        impl<'r, DB: Database> Decode<'r, DB> for $name
        where
            &'r str: Decode<'r, DB>,
        {
            fn decode(value: <DB as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
                let text = <&'r str as Decode<'r, DB>>::decode(value)?;
                Ok(Self(Uuid::parse_str(text)?))
            }
        }
    };
}

id_type!(
    /// Id of an organisation (a clinic, the tenant boundary).
    OrganisationId
);
id_type!(
    /// Id of a department inside an organisation.
    DepartmentId
);
id_type!(
    /// Id of a staff user.
    StaffId
);
id_type!(
    /// Id of a client (patient).
    ClientId
);
id_type!(
    /// Id of an appointment.
    AppointmentId
);
id_type!(
    /// Id of an invitation (one per appointment).
    InvitationId
);
id_type!(
    /// Id of a guest invitation (an extra participant of one appointment).
    GuestInvitationId
);
id_type!(
    /// Id of an external participant record (F17).
    ExternalParticipantId
);
id_type!(
    /// Id of a group of external participants (F16).
    ParticipantGroupId
);
id_type!(
    /// Id of a staff session row.
    SessionId
);
id_type!(
    /// Id of a walk-in widget.
    WidgetId
);
id_type!(
    /// Id of a walk-in visit (a visitor who came in through a widget).
    WalkInVisitId
);
id_type!(
    /// Id of one scheduled availability range of a practitioner.
    AvailabilityRangeId
);
id_type!(
    /// Id of a chat channel (one practitioner and one client).
    ChatChannelId
);
id_type!(
    /// Id of a job of the durable queue (`jobs`).
    JobId
);
id_type!(
    /// Id of one outgoing e-mail in the outbox (`mail`).
    MailId
);
id_type!(
    /// A one-time set-password link (staff invitation or password reset).
    SetPasswordLinkId
);
id_type!(
    /// Id of a named e-mail template set (F171).
    MailTemplateSetId
);
id_type!(
    /// Id of a patient: an animal a client owns, or the client's own patient (whose id is the
    /// client's id, `records`).
    PatientId
);
id_type!(
    /// Id of a service of an organisation's catalogue (e.g. "Rabies vaccination").
    ServiceId
);
id_type!(
    /// Id of a service record: a service performed on a patient on a date.
    ServiceRecordId
);
id_type!(
    /// Id of a note on a client or a patient (F189).
    NoteId
);
id_type!(
    /// Id of a recall rule (F203–F205): recording a service plans the next recall.
    RecallRuleId
);
id_type!(
    /// Id of a recall: a care reminder that a patient is due for a service (F197–F206).
    RecallId
);
id_type!(
    /// Id of one sending of a recall on one channel.
    RecallStepId
);
