//! Demo data for `consultroom serve --demo` and manual testing: one organisation with a
//! practitioner, an admin, two clients, and a fresh appointment starting now.
//!
//! Invariant: idempotent for the fixed records (looked up by name/e-mail and updated); each run adds
//! new appointments so there is always one whose invitation is open.

use chrono::{DateTime, Duration, NaiveTime, SubsecRound, Timelike, Utc};

use crate::appointments::NewAppointment;
use crate::auth::hash_password;
use crate::clients::NewClient;
use crate::ids::{ClientId, DepartmentId, OrganisationId, StaffId};
use crate::secrets::{random_token, sha256};
use crate::staff::{NewStaff, Role};
use crate::store::Store;

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
const CLIENTS: [&str; 2] = ["Jan Jansen", "Sanne Bakker"];

/// What the seed produced, for printing at start-up.
#[derive(Clone, Debug)]
pub struct DemoInfo {
    /// Practitioner login e-mail.
    pub email: String,
    /// Practitioner password (as given).
    pub password: String,
    /// Patient link for the appointment starting now.
    pub invitation_url: String,
}

/// Upserts the demo organisation, department, practitioner (password set to `password` on every
/// run), admin and two clients, then books a new appointment starting at `now` and one later today.
pub async fn seed(
    store: &Store,
    now: DateTime<Utc>,
    password: &str,
    public_url: &str,
) -> anyhow::Result<DemoInfo> {
    let pw = password.to_owned();
    let password_hash = tokio::task::spawn_blocking(move || hash_password(&pw)).await??;

    let org = match store.find_organisation_by_name(ORGANISATION).await? {
        Some(id) => id,
        None => store.insert_organisation(ORGANISATION, now).await?,
    };
    let dept = match store.find_department_by_name(org, DEPARTMENT).await? {
        Some(id) => id,
        None => store.insert_department(org, DEPARTMENT, now).await?,
    };
    let practitioner = upsert_staff(
        store,
        org,
        Some(dept),
        PRACTITIONER_NAME,
        PRACTITIONER_EMAIL,
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
        ADMIN_EMAIL,
        Role::OrganisationAdmin,
        &password_hash,
        now,
    )
    .await?;
    let mut clients: Vec<ClientId> = Vec::new();
    for name in CLIENTS {
        let id = match store.find_client_by_name(org, name).await? {
            Some(id) => id,
            None => {
                let new = NewClient {
                    name: name.to_owned(),
                    email: None,
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
    book(
        store,
        org,
        practitioner,
        dept,
        clients[0],
        soon,
        &token,
        now,
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
        clients[1],
        later,
        &random_token(),
        now,
    )
    .await?;

    // A walk-in widget for the department, frameable from any local port (tests/e2e/walkin).
    crate::widgets::seed_demo_widget(store, org, dept, now).await?;

    Ok(DemoInfo {
        email: PRACTITIONER_EMAIL.to_owned(),
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

#[allow(clippy::too_many_arguments)]
async fn book(
    store: &Store,
    organisation_id: OrganisationId,
    practitioner_id: StaffId,
    department_id: DepartmentId,
    client_id: ClientId,
    starts_at: DateTime<Utc>,
    token: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let new = NewAppointment {
        organisation_id,
        practitioner_id,
        client_id,
        department_id: Some(department_id),
        waiting_room: crate::waiting_room::WaitingRoomKind::Practitioner,
        starts_at,
        duration_minutes: 20,
    };
    store.insert_appointment(&new, &sha256(token), now).await?;
    Ok(())
}
