//! Demo data for `consultroom demo` and manual testing: one organisation with a practitioner, an
//! admin, two clients, a walk-in widget, and a fresh appointment starting now, whose invitation
//! mail is recorded in the outbox (shown under "Sent mail" when no mail server is configured). `consultroom
//! demo-organisation` seeds one more organisation of the same shape under another name and other
//! logins ([`DemoOrganisation::named`]; the browser tests give each test file its own).
//!
//! Invariant: idempotent for the fixed records (looked up by name/e-mail and updated); each run adds
//! new appointments so there is always one whose invitation is open.

use chrono::{DateTime, Duration, NaiveTime, SubsecRound, Timelike, Utc};

use crate::appointments::NewAppointment;
use crate::auth::hash_password;
use crate::clients::NewClient;
use crate::ids::{ClientId, DepartmentId, OrganisationId, StaffId};
use crate::mail::MailStamp;
use crate::secrets::{random_token, sha256};
use crate::staff::{NewStaff, Role};
use crate::store::{Store, dispatch};
use crate::templates::{
    AppointmentMail, AppointmentMailKind, ComposeContext, Language, TemplateKind,
    compose_appointment,
};

/// Demo organisation name.
pub const ORGANISATION: &str = "Demo Clinic";
/// Demo department name.
pub const DEPARTMENT: &str = "General practice";
/// Demo practitioner's login.
pub const PRACTITIONER_EMAIL: &str = "demo@consultroom.test";
/// Demo practitioner's name.
pub const PRACTITIONER_NAME: &str = "Dr. Anna de Vries";
/// Demo organisation admin's login (same password as the practitioner).
pub const ADMIN_EMAIL: &str = "admin@consultroom.test";
const ADMIN_NAME: &str = "Demo Admin";
/// The demo organisation's time zone.
pub const DEMO_TIME_ZONE: &str = "Europe/Amsterdam";
/// The demo clients and their addresses (`.test`: never delivered by a real mail server).
const CLIENTS: [(&str, &str); 2] = [
    ("Jan Jansen", "jan.jansen@patients.consultroom.test"),
    ("Sanne Bakker", "sanne.bakker@patients.consultroom.test"),
];

/// Which organisation to seed: its name and its two logins (the rest, department, names, clients,
/// widget, is the same for every demo organisation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoOrganisation {
    /// Organisation name (looked up by it: seeding the same name again updates it).
    pub name: String,
    /// The practitioner's login.
    pub practitioner_email: String,
    /// The organisation admin's login.
    pub admin_email: String,
}

impl Default for DemoOrganisation {
    /// The demo clinic of `consultroom demo`.
    fn default() -> Self {
        Self {
            name: ORGANISATION.to_owned(),
            practitioner_email: PRACTITIONER_EMAIL.to_owned(),
            admin_email: ADMIN_EMAIL.to_owned(),
        }
    }
}

impl DemoOrganisation {
    /// An organisation called `name`, with logins `demo@<slug>.test` and `admin@<slug>.test`
    /// (`<slug>`: `name` lower-cased, every run of other characters than a–z and 0–9 made one `-`).
    /// `None` when `name` is blank, longer than 100 characters, or has nothing for a slug.
    pub fn named(name: &str) -> Option<Self> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return None;
        }
        let mut slug = String::new();
        for c in name.chars().flat_map(char::to_lowercase) {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                slug.push(c);
            } else if !slug.is_empty() && !slug.ends_with('-') {
                slug.push('-');
            }
        }
        let slug = slug.trim_end_matches('-');
        if slug.is_empty() {
            return None;
        }
        Some(Self {
            name: name.to_owned(),
            practitioner_email: format!("demo@{slug}.test"),
            admin_email: format!("admin@{slug}.test"),
        })
    }
}

/// What the seed produced, for printing at start-up.
#[derive(Clone, Debug)]
pub struct DemoInfo {
    /// Organisation name.
    pub organisation: String,
    /// Department name.
    pub department: String,
    /// Practitioner login e-mail.
    pub email: String,
    /// Practitioner name.
    pub practitioner_name: String,
    /// Organisation admin login e-mail (same password).
    pub admin_email: String,
    /// Practitioner password (as given).
    pub password: String,
    /// Patient link for the appointment starting now.
    pub invitation_url: String,
}

/// Upserts the demo organisation of `consultroom demo` ([`DemoOrganisation::default`]); see
/// [`seed_organisation`].
pub async fn seed(
    store: &Store,
    now: DateTime<Utc>,
    password: &str,
    public_url: &str,
) -> anyhow::Result<DemoInfo> {
    seed_organisation(
        store,
        &DemoOrganisation::default(),
        now,
        password,
        public_url,
    )
    .await
}

/// Upserts organisation `demo`, its department, practitioner (password set to `password` on every
/// run), admin, two clients and walk-in widget, then books a new appointment starting at `now` and
/// one later today.
pub async fn seed_organisation(
    store: &Store,
    demo: &DemoOrganisation,
    now: DateTime<Utc>,
    password: &str,
    public_url: &str,
) -> anyhow::Result<DemoInfo> {
    let pw = password.to_owned();
    let password_hash = tokio::task::spawn_blocking(move || hash_password(&pw)).await??;

    let org = match store.find_organisation_by_name(&demo.name).await? {
        Some(id) => id,
        None => store.insert_organisation(&demo.name, now).await?,
    };
    let dept = match store.find_department_by_name(org, DEPARTMENT).await? {
        Some(id) => id,
        None => store.insert_department(org, DEPARTMENT, now).await?,
    };
    // The demo clinic is Dutch: its local times are Amsterdam's (a clinic's own choice, once
    // saved, is left alone).
    if store.organisation_settings_json(org).await?.is_none() {
        let settings = crate::org_settings::OrganisationSettings {
            time_zone: DEMO_TIME_ZONE.to_owned(),
            ..Default::default()
        };
        store
            .insert_organisation_settings(org, &serde_json::to_string(&settings)?, now)
            .await?;
    }
    let practitioner = upsert_staff(
        store,
        org,
        Some(dept),
        PRACTITIONER_NAME,
        &demo.practitioner_email,
        Role::Practitioner,
        &password_hash,
        now,
    )
    .await?;
    upsert_staff(
        store,
        org,
        None,
        ADMIN_NAME,
        &demo.admin_email,
        Role::OrganisationAdmin,
        &password_hash,
        now,
    )
    .await?;
    let mut clients: Vec<ClientId> = Vec::new();
    for (name, email) in CLIENTS {
        let id = match store.find_client_by_name(org, name).await? {
            Some(id) => id,
            None => {
                let new = NewClient {
                    name: name.to_owned(),
                    email: Some(email.to_owned()),
                    phone: None,
                    date_of_birth: None,
                };
                store.insert_client(org, &new, now).await?.id
            }
        };
        clients.push(id);
    }

    let now_s = now.trunc_subsecs(0);
    // "Starts now": at the next whole minute at least two minutes ahead, so a patient who
    // follows the link straight away is on time (green) rather than a few seconds late.
    let soon = now_s + Duration::minutes(2);
    let soon = soon - Duration::seconds(i64::from(soon.second()));
    let token = random_token();
    let invite = Invite {
        organisation: &demo.name,
        public_url,
        now,
    };
    book(
        store,
        org,
        practitioner,
        dept,
        (clients[0], CLIENTS[0]),
        soon,
        &token,
        &invite,
    )
    .await?;
    // "Later today": two hours on, but not past 23:00 UTC, and at least 15 minutes ahead.
    let end_of_day = now_s.date_naive().and_time(NaiveTime::MIN).and_utc() + Duration::hours(23);
    let later = (now_s + Duration::hours(2))
        .min(end_of_day)
        .max(now_s + Duration::minutes(15));
    book(
        store,
        org,
        practitioner,
        dept,
        (clients[1], CLIENTS[1]),
        later,
        &random_token(),
        &invite,
    )
    .await?;

    // A walk-in widget for the department, frameable from any local port (tests/e2e/walkin).
    crate::widgets::seed_demo_widget(store, org, dept, now).await?;

    Ok(DemoInfo {
        organisation: demo.name.clone(),
        department: DEPARTMENT.to_owned(),
        email: demo.practitioner_email.clone(),
        practitioner_name: PRACTITIONER_NAME.to_owned(),
        admin_email: demo.admin_email.clone(),
        password: password.to_owned(),
        invitation_url: format!("{}/join#{token}", public_url.trim_end_matches('/')),
    })
}

#[allow(clippy::too_many_arguments)]
async fn upsert_staff(
    store: &Store,
    organisation_id: OrganisationId,
    department_id: Option<DepartmentId>,
    name: &str,
    email: &str,
    role: Role,
    password_hash: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<StaffId> {
    let new = NewStaff {
        organisation_id,
        department_id,
        name,
        email,
        role,
        password_hash,
    };
    match store.staff_by_email(email).await? {
        Some(row) => {
            anyhow::ensure!(
                row.organisation_id == organisation_id,
                "demo e-mail {email} belongs to another organisation"
            );
            store.update_staff(row.staff_id, &new, now).await?;
            Ok(row.staff_id)
        }
        None => Ok(store.insert_staff(&new, now).await?),
    }
}

/// What the demo's invitation mails need besides the appointment.
struct Invite<'a> {
    organisation: &'a str,
    public_url: &'a str,
    now: DateTime<Utc>,
}

/// Books a demo appointment and records its invitation mail in the outbox (with no mail server,
/// `consultroom demo` shows it under "Sent mail", as the patient would get it).
#[allow(clippy::too_many_arguments)]
async fn book(
    store: &Store,
    organisation_id: OrganisationId,
    practitioner_id: StaffId,
    department_id: DepartmentId,
    (client_id, client): (ClientId, (&str, &str)),
    starts_at: DateTime<Utc>,
    token: &str,
    invite: &Invite<'_>,
) -> anyhow::Result<()> {
    let new = NewAppointment {
        organisation_id,
        practitioner_id,
        client_id,
        department_id: Some(department_id),
        waiting_room: crate::waiting_room::WaitingRoomKind::Practitioner,
        starts_at,
        duration_minutes: 20,
        personal_message: String::new(),
    };
    let now = invite.now;
    let appointment_id = store.insert_appointment(&new, &sha256(token), now).await?;
    let (name, email) = client;
    let domain = crate::mail::message_id_domain(invite.public_url);
    let template = store
        .effective_template(
            organisation_id,
            Some(department_id),
            TemplateKind::AppointmentInvitation,
            Language::En,
        )
        .await?;
    let mail = compose_appointment(
        &AppointmentMail {
            kind: AppointmentMailKind::Invitation,
            organisation_id,
            organisation_name: invite.organisation.to_owned(),
            organisation_contact: String::new(),
            organiser_email: None,
            department_id: Some(department_id),
            department_name: DEPARTMENT.to_owned(),
            practitioner_name: PRACTITIONER_NAME.to_owned(),
            client_id: Some(client_id),
            recipient_name: name.to_owned(),
            recipient_email: email.to_owned(),
            language: Language::En,
            starts_at,
            time_zone: DEMO_TIME_ZONE.to_owned(),
            duration_minutes: 20,
            personal_message: String::new(),
            link: format!("{}/join#{token}", invite.public_url.trim_end_matches('/')),
            appointment_id,
            sequence: 0,
            created_by: None,
        },
        &template,
        &ComposeContext {
            now,
            domain: domain.clone(),
        },
    )?;
    let stamp = MailStamp {
        now,
        domain,
        due: now,
    };
    dispatch!(store, pool => {
        let mut tx = pool.begin().await?;
        crate::mail::enqueue(&mut *tx, &mail, &stamp).await?;
        tx.commit().await?;
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::DemoOrganisation;

    #[test]
    fn named_organisations_get_logins_from_a_slug_of_the_name() {
        let o = DemoOrganisation::named("  E2E Waiting-room 1f2e3d4c ").unwrap();
        assert_eq!(o.name, "E2E Waiting-room 1f2e3d4c");
        assert_eq!(o.practitioner_email, "demo@e2e-waiting-room-1f2e3d4c.test");
        assert_eq!(o.admin_email, "admin@e2e-waiting-room-1f2e3d4c.test");
        assert_eq!(
            DemoOrganisation::named("Ünïcode & Co!")
                .unwrap()
                .admin_email,
            "admin@n-code-co.test"
        );
        for bad in ["", "   ", "--", "éé", &"x".repeat(101)] {
            assert_eq!(DemoOrganisation::named(bad), None, "{bad:?}");
        }
        assert_eq!(
            DemoOrganisation::default().practitioner_email,
            super::PRACTITIONER_EMAIL
        );
    }
}
