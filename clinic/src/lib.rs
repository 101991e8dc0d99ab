//! `consultroom-clinic`: the companion HTTP service for clinics — organisations, staff, clients
//! (patients), appointments and their invitations — plus the join tokens the signalling server
//! accepts.
//!
//! Invariants: every handler scopes data to the caller's organisation (another organisation's data
//! is a 404); time comes from the injected [`Clock`]; secrets and patient data never reach logs.
//! The composing binary builds a [`Clinic`] and merges [`Clinic::router`] into its own router.

pub mod announcements;
pub mod appointments;
pub mod auth;
pub mod chat;
pub mod client_ip;
pub mod clients;
pub mod clock;
pub mod communications;
pub mod config;
pub mod consultation_files;
pub mod demo;
pub mod directory;
pub mod error;
pub mod events;
pub mod external_participants;
pub mod forgot_password;
pub mod guests;
pub mod ice;
pub mod ids;
pub mod images;
mod invitees;
pub mod jobs;
mod json_int;
pub mod links;
pub mod mail;
pub mod openapi;
pub mod org_settings;
mod org_settings_http;
pub mod organisation_profile;
pub mod password_links;
pub mod profile;
pub mod recalls;
pub mod records;
pub mod secrets;
pub mod setup;
pub mod staff;
pub mod staff_admin;
pub mod store;
pub mod templates;
pub mod tokens;
pub mod waiting_room;
pub mod walkin;
pub mod widgets;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::routing::MethodRouter;
use axum_extra::extract::cookie::Key;
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use tower_http::set_header::SetResponseHeaderLayer;

pub use announcements::{ActiveAnnouncement, Announcement};
pub use appointments::{Appointment, AppointmentStatus};
pub use clients::Client;
pub use clock::{Clock, MockClock, SystemClock};
pub use config::{ClinicConfig, TurnConfig, TurnConfigError};
pub use error::ApiError;
pub use events::{ClinicEvent, EventSubscriber};
pub use ids::{AppointmentId, ClientId, DepartmentId, OrganisationId, StaffId, WidgetId};
pub use org_settings::{
    ChatAfterConsultation, JoinPermissions, OrganisationKind, OrganisationSettings,
};
pub use staff::{Role, Staff};
pub use store::Store;
pub use tokens::{
    ChatClaims, Grant, GuestJoin, JoinClaims, JoinTokenError, PatientJoin, StaffJoin, WalkInJoin,
};
pub use waiting_room::{WaitingRoomKind, WaitingRoomRef};

/// Prefix of every clinic route.
pub const API_PREFIX: &str = "/api/v1";
/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The clinic service: storage, configuration and clock. Cheap to clone.
#[derive(Clone)]
pub struct Clinic {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: ClinicConfig,
    clock: Arc<dyn Clock>,
    join_keys: tokens::JoinKeys,
    events: events::Subscriber,
    walkin: widgets::WalkInState,
    login_throttle: auth::LoginThrottle,
    password_pool: auth::PasswordPool,
    /// Wakes this process's job worker at once after an enqueue (`jobs`).
    jobs_wake: Arc<tokio::sync::Notify>,
    /// `POST /auth/forgot-password`'s limits and background count.
    forgot_password: forgot_password::ForgotPassword,
    /// `POST /mail/test` per staff member.
    test_mail_limit: auth::KeyedLimit<StaffId>,
    /// Work handed off after answering (a forgot-password request): waited for at shutdown.
    background: tokio_util::task::TaskTracker,
}

impl Clinic {
    /// Builds the service. The store should already be migrated ([`Store::migrate`]).
    pub fn new(store: Store, config: ClinicConfig, clock: Arc<dyn Clock>) -> Self {
        let join_keys = tokens::JoinKeys::new(config.jwt_secret.expose_secret());
        Self {
            inner: Arc::new(Inner {
                store,
                config,
                clock,
                join_keys,
                events: Default::default(),
                walkin: widgets::WalkInState::default(),
                login_throttle: Default::default(),
                password_pool: Default::default(),
                jobs_wake: Default::default(),
                forgot_password: Default::default(),
                test_mail_limit: auth::KeyedLimit::new(
                    mail::http::TEST_MAIL_BURST,
                    mail::http::TEST_MAIL_PERIOD,
                ),
                background: tokio_util::task::TaskTracker::new(),
            }),
        }
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The configuration.
    pub fn config(&self) -> &ClinicConfig {
        &self.inner.config
    }

    /// The current time according to the injected clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    pub(crate) fn join_keys(&self) -> &tokens::JoinKeys {
        &self.inner.join_keys
    }

    pub(crate) fn walkin_state(&self) -> &widgets::WalkInState {
        &self.inner.walkin
    }

    pub(crate) fn login_throttle(&self) -> &auth::LoginThrottle {
        &self.inner.login_throttle
    }

    /// The injected clock.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.inner.clock.clone()
    }

    /// Runs `task` after the answer has gone (a forgot-password request); [`Clinic::finish_background`]
    /// waits for it at shutdown.
    pub(crate) fn spawn_background<F>(&self, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.inner.background.spawn(task);
    }

    /// At shutdown, after HTTP has drained: waits up to `within` for the work handed off after
    /// answering (so a forgot-password request that was answered still records its mail before
    /// the job worker stops); true when all of it finished.
    pub async fn finish_background(&self, within: std::time::Duration) -> bool {
        self.inner.background.close();
        tokio::time::timeout(within, self.inner.background.wait())
            .await
            .is_ok()
    }

    /// The signal this process's job worker waits on besides its poll interval.
    pub fn jobs_wake(&self) -> Arc<tokio::sync::Notify> {
        self.inner.jobs_wake.clone()
    }

    pub(crate) fn password_pool(&self) -> &auth::PasswordPool {
        &self.inner.password_pool
    }

    /// Counters of the password-check pool (Argon2 runs, refusals while busy), for metrics.
    pub fn password_check_stats(&self) -> auth::PasswordCheckStats {
        self.inner.password_pool.stats()
    }

    /// Hashes a new staff password through the bounded password-check pool (for request paths).
    /// `Err(ApiError::RateLimited)` when every slot is taken.
    pub async fn hash_password(&self, password: String) -> Result<String, ApiError> {
        match self.inner.password_pool.hash(password).await {
            Ok(hash) => Ok(hash?),
            Err(_busy) => Err(ApiError::RateLimited {
                retry_after_secs: 1,
            }),
        }
    }

    /// Every `(method, path)` the router serves, with the `/api/v1` prefix.
    pub fn routes() -> Vec<(Method, String)> {
        all_routes()
            .into_iter()
            .map(|r| (r.method, format!("{API_PREFIX}{}", r.path)))
            .collect()
    }

    /// The HTTP API, with every route under `/api/v1`; merge it into the server's router.
    ///
    /// Bodies are capped at [`MAX_BODY_BYTES`]; responses carry `Cache-Control: no-store` (they
    /// hold patient data) and `Referrer-Policy: no-referrer`; unknown API paths get a JSON 404 and
    /// unserved methods a JSON 405.
    pub fn router(&self) -> Router {
        let mut api: Router<Clinic> = Router::new();
        for route in all_routes() {
            api = api.route(route.path, route.handler);
        }
        let api = api
            .method_not_allowed_fallback(error::method_not_allowed_fallback)
            .fallback(error::not_found_fallback)
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .layer(SetResponseHeaderLayer::overriding(
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-store"),
            ))
            .layer(SetResponseHeaderLayer::overriding(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ))
            .layer(SetResponseHeaderLayer::overriding(
                HeaderName::from_static("x-content-type-options"),
                HeaderValue::from_static("nosniff"),
            ))
            .with_state(self.clone());
        Router::new().nest(API_PREFIX, api)
    }
}

impl FromRef<Clinic> for Key {
    fn from_ref(clinic: &Clinic) -> Key {
        clinic.config().cookie_key.clone()
    }
}

/// One route: method, path relative to `/api/v1`, and handler. The router and the OpenAPI
/// coverage test are both built from the same list.
pub(crate) struct Route {
    method: Method,
    path: &'static str,
    handler: MethodRouter<Clinic>,
}

impl Route {
    pub(crate) fn new(
        method: &'static str,
        path: &'static str,
        handler: MethodRouter<Clinic>,
    ) -> Self {
        let method = Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET);
        Self {
            method,
            path,
            handler,
        }
    }
}

fn all_routes() -> Vec<Route> {
    let mut routes = Vec::new();
    routes.extend(auth::routes());
    routes.extend(clients::routes());
    routes.extend(communications::routes());
    routes.extend(records::routes());
    routes.extend(recalls::routes());
    routes.extend(directory::routes());
    routes.extend(appointments::routes());
    routes.extend(guests::routes());
    routes.extend(external_participants::routes());
    routes.extend(announcements::routes());
    routes.extend(chat::http::routes());
    routes.extend(links::http::routes());
    routes.extend(ice::routes());
    routes.extend(walkin::routes());
    routes.extend(widgets::routes());
    routes.extend(org_settings_http::routes());
    routes.extend(mail::http::routes());
    routes.extend(password_links::routes());
    routes.extend(forgot_password::routes());
    routes.extend(staff_admin::routes());
    routes.extend(organisation_profile::routes());
    routes.extend(profile::routes());
    routes.extend(setup::routes());
    routes.extend(templates::http::routes());
    routes.extend(openapi::routes());
    routes
}
