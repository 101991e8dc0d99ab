//! The appointment mails (F69, F70, F73): the invitation on booking, the update on reschedule,
//! the cancellation on cancel and the reminder, one message per participant with an address —
//! the client (with their invitation link) and each guest whose record has an address (with
//! their own guest link) — in the client's language.
//!
//! [`compose`] is read-only and runs **before** the transaction that makes the change; the store
//! functions then record the composed mails in the outbox in that same transaction
//! (`db.rs`: `book_appointment`, `reschedule_appointment`, `cancel_appointment`; the reminder job
//! in `reminders.rs`). A mail that could not be sent (an address lettre refuses) is refused here,
//! before anything is written.

use chrono::{DateTime, Utc};

use super::links::{GUEST_LABEL, guest_link};
use crate::Clinic;
use crate::error::{ApiError, ApiResult};
use crate::ids::{
    AppointmentId, ClientId, DepartmentId, ExternalParticipantId, GuestInvitationId,
    OrganisationId, StaffId,
};
use crate::mail::OutgoingMail;
use crate::secrets::{digest_eq, sha256};
use crate::store::{Store, dispatch};
use crate::templates::{AppointmentMail, AppointmentMailKind, ComposeContext, Language};

/// What every mail about one appointment shares.
pub(crate) struct Occasion<'a> {
    pub(crate) kind: AppointmentMailKind,
    pub(crate) appointment_id: AppointmentId,
    pub(crate) organisation_id: OrganisationId,
    pub(crate) department_id: Option<DepartmentId>,
    pub(crate) practitioner_name: &'a str,
    pub(crate) client_id: ClientId,
    pub(crate) starts_at: DateTime<Utc>,
    pub(crate) duration_minutes: i32,
    pub(crate) personal_message: &'a str,
    /// The calendar `SEQUENCE` the change will have (0 for a booking).
    pub(crate) sequence: i32,
    pub(crate) created_by: Option<StaffId>,
    /// The client's name, address and language when they are not stored yet (a booking that
    /// creates its client); `None`: read from the register.
    pub(crate) new_client: Option<ClientContact>,
}

/// A guest who may get the mails: their link's id, name and (from their record) address.
pub(crate) struct GuestAddressee {
    pub(crate) id: GuestInvitationId,
    pub(crate) name: String,
    pub(crate) email: Option<String>,
}

impl GuestAddressee {
    /// Guest `id` named `name`, with the address of their record `record` of organisation `org`
    /// if it has one (a blank address is none). Used by the booking and by a guest added later.
    pub(crate) async fn of(
        store: &Store,
        org: OrganisationId,
        id: GuestInvitationId,
        name: &str,
        record: Option<ExternalParticipantId>,
    ) -> ApiResult<Self> {
        let email = match record {
            Some(pid) => store
                .external_participant(org, pid)
                .await?
                .and_then(|p| p.email)
                .map(|e| e.trim().to_owned())
                .filter(|e| !e.is_empty()),
            None => None,
        };
        Ok(Self {
            id,
            name: name.to_owned(),
            email,
        })
    }
}

#[derive(sqlx::FromRow)]
struct OrganisationContact {
    name: String,
    contact_email: String,
    contact_phone: String,
    contact_website: String,
}

impl OrganisationContact {
    /// The contact line of the mails: phone, e-mail and website, those that are set.
    fn line(&self) -> String {
        [
            &self.contact_phone,
            &self.contact_email,
            &self.contact_website,
        ]
        .into_iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" · ")
    }
}

/// Whom the client's mails go to, in which language.
#[derive(Clone, sqlx::FromRow)]
pub(crate) struct ClientContact {
    pub(crate) name: String,
    pub(crate) email: Option<String>,
    #[sqlx(try_from = "String")]
    pub(crate) language: Language,
}

#[derive(sqlx::FromRow)]
struct GuestRow {
    guest_invitation_id: GuestInvitationId,
    display_name: String,
    token_hash: Vec<u8>,
    email: Option<String>,
}

impl Store {
    async fn organisation_contact(
        &self,
        org: OrganisationId,
    ) -> Result<Option<OrganisationContact>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, OrganisationContact>(
                "select name, contact_email, contact_phone, contact_website from organisation \
                 where organisation_id = $1",
            )
            .bind(org)
            .fetch_optional(pool)
            .await
        })
    }

    async fn department_name(&self, id: DepartmentId) -> Result<Option<String>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_scalar("select name from department where department_id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await
        })
    }

    async fn client_contact(&self, id: ClientId) -> Result<Option<ClientContact>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, ClientContact>(
                "select name, email, language from client where client_id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await
        })
    }

    async fn guest_rows(&self, id: AppointmentId) -> Result<Vec<GuestRow>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, GuestRow>(
                "select g.guest_invitation_id, g.display_name, g.token_hash, e.email \
                 from guest_invitation g \
                 left join external_participant e \
                   on e.external_participant_id = g.external_participant_id \
                 where g.appointment_id = $1 and g.revoked_at is null \
                 order by g.created_at, g.guest_invitation_id",
            )
            .bind(id)
            .fetch_all(pool)
            .await
        })
    }
}

/// The active guests of a booked appointment whose links can be rebuilt, with their addresses.
pub(crate) async fn guests_of(
    clinic: &Clinic,
    id: AppointmentId,
) -> ApiResult<Vec<GuestAddressee>> {
    Ok(clinic
        .store()
        .guest_rows(id)
        .await?
        .into_iter()
        .filter(|g| {
            let token = clinic.link_token(GUEST_LABEL, &g.guest_invitation_id.to_string());
            digest_eq(&sha256(&token), &g.token_hash)
        })
        .map(|g| GuestAddressee {
            id: g.guest_invitation_id,
            name: g.display_name,
            email: g.email,
        })
        .collect())
}

/// The address the client's mails go to, if they have one.
pub(crate) async fn client_address(clinic: &Clinic, id: ClientId) -> ApiResult<Option<String>> {
    Ok(clinic
        .store()
        .client_contact(id)
        .await?
        .and_then(|c| c.email)
        .map(|e| e.trim().to_owned())
        .filter(|e| !e.is_empty()))
}

/// The invitation mails of guests added to booked appointment `a` by `by` (those with an
/// address): `METHOD:REQUEST` with the appointment's UID and current `SEQUENCE`, each guest
/// their own link; the client gets nothing new.
pub(crate) async fn guest_invitation_mails(
    clinic: &Clinic,
    a: &super::Appointment,
    guests: &[GuestAddressee],
    by: StaffId,
) -> ApiResult<Vec<OutgoingMail>> {
    if guests.iter().all(|g| g.email.is_none()) {
        return Ok(Vec::new());
    }
    let occasion = Occasion {
        kind: AppointmentMailKind::Invitation,
        appointment_id: a.id,
        organisation_id: a.organisation_id,
        department_id: a.department_id,
        practitioner_name: &a.practitioner.name,
        client_id: a.client.id,
        starts_at: a.starts_at,
        duration_minutes: a.duration_minutes,
        personal_message: &a.personal_message,
        sequence: a.sequence,
        created_by: Some(by),
        new_client: None,
    };
    compose(clinic, &occasion, None, guests).await
}

/// Composes the mails of `occasion`: one for the client (when they have an address and a
/// link) and one per guest with an address. Read-only; refuses an address the outbox would
/// refuse, naming whose it is, so the caller changes nothing.
pub(crate) async fn compose(
    clinic: &Clinic,
    occasion: &Occasion<'_>,
    client_link: Option<String>,
    guests: &[GuestAddressee],
) -> ApiResult<Vec<OutgoingMail>> {
    let store = clinic.store();
    let org = store
        .organisation_contact(occasion.organisation_id)
        .await?
        .ok_or(ApiError::NotFound("organisation"))?;
    let client = match &occasion.new_client {
        Some(c) => c.clone(),
        None => store
            .client_contact(occasion.client_id)
            .await?
            .ok_or(ApiError::NotFound("client"))?,
    };
    let department_name = match occasion.department_id {
        Some(d) => store.department_name(d).await?.unwrap_or_default(),
        None => String::new(),
    };
    let settings = clinic
        .organisation_settings(occasion.organisation_id)
        .await?;
    let template = store
        .effective_template(
            occasion.organisation_id,
            occasion.department_id,
            occasion.kind.template_kind(),
            client.language,
        )
        .await?;
    let ctx = ComposeContext::of(clinic);
    let organiser_email = Some(org.contact_email.trim().to_owned()).filter(|e| !e.is_empty());

    let mut people: Vec<(String, String, String, Option<ClientId>, &'static str)> = Vec::new();
    if let (Some(email), Some(link)) = (client.email.as_deref(), client_link) {
        let email = email.trim();
        if !email.is_empty() {
            people.push((
                client.name.clone(),
                email.to_owned(),
                link,
                Some(occasion.client_id),
                "client_id",
            ));
        }
    }
    for g in guests {
        if let Some(email) = g.email.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
            people.push((
                g.name.clone(),
                email.to_owned(),
                guest_link(clinic, g.id),
                Some(occasion.client_id),
                "guests",
            ));
        }
    }
    let mut mails = Vec::with_capacity(people.len());
    for (name, email, link, client_id, field) in people {
        let input = AppointmentMail {
            kind: occasion.kind,
            organisation_id: occasion.organisation_id,
            organisation_name: org.name.clone(),
            organisation_contact: org.line(),
            organiser_email: organiser_email.clone(),
            department_id: occasion.department_id,
            department_name: department_name.clone(),
            practitioner_name: occasion.practitioner_name.to_owned(),
            client_id,
            recipient_name: name,
            recipient_email: email,
            language: client.language,
            starts_at: occasion.starts_at,
            time_zone: settings.time_zone.clone(),
            duration_minutes: u32::try_from(occasion.duration_minutes).unwrap_or(0),
            personal_message: occasion.personal_message.to_owned(),
            link,
            appointment_id: occasion.appointment_id,
            sequence: u32::try_from(occasion.sequence).unwrap_or(0),
            created_by: occasion.created_by,
        };
        let mail = crate::templates::compose_appointment(&input, &template, &ctx)?;
        if let Err(e) = mail.validate() {
            if !matches!(e, crate::mail::MailError::InvalidAddress) {
                return Err(e.into());
            }
            return Err(ApiError::InvalidField {
                field,
                message: if field == "client_id" {
                    "the client's e-mail address cannot be used for sending; correct it in the \
                     client register"
                        .to_owned()
                } else {
                    "a guest's e-mail address cannot be used for sending; correct their record"
                        .to_owned()
                },
            });
        }
        mails.push(mail);
    }
    Ok(mails)
}
