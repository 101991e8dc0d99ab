//! Test harness: a clinic server on 127.0.0.1:0 over a fresh database (a temp SQLite file, or a
//! new PostgreSQL database when `TEST_PG_URL` is set: `consultroom_testkit::TestDatabase`), plus
//! fixtures and HTTP helpers.

use std::sync::{Arc, Mutex, OnceLock};

use axum_extra::extract::cookie::Key;
use chrono::{DateTime, Utc};
use consultroom_clinic::auth::hash_password;
use consultroom_clinic::clients::NewClient;
use consultroom_clinic::staff::NewStaff;
use consultroom_clinic::{
    ClientId, Clinic, ClinicConfig, DepartmentId, MockClock, OrganisationId, Role, StaffId, Store,
};
use consultroom_testkit::TestDatabase;
use serde_json::{Value, json};

/// Password of every fixture staff user.
pub const PASSWORD: &str = "correct horse battery staple";
/// HMAC secret of the test clinics (tests forge tokens with it).
pub const JWT_SECRET: &[u8] = b"test-secret-test-secret-test-secret!";

pub use consultroom_testkit::Backend;

/// The instant the mock clock starts at.
pub fn t0() -> DateTime<Utc> {
    "2030-03-04T09:00:00Z".parse().expect("t0")
}

/// A running clinic server and its fresh database; dropped → server stopped, database removed.
pub struct TestApp {
    pub base: String,
    pub clinic: Clinic,
    pub clock: Arc<MockClock>,
    server: tokio::task::JoinHandle<()>,
    /// Dropped after `Drop::drop` has aborted the server: the database goes with the app.
    _database: TestDatabase,
}

/// Options for [`spawn_app_with`].
pub struct Options {
    pub public_url: &'static str,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            public_url: "http://consultroom.test",
        }
    }
}

pub async fn spawn_app(backend: &Backend) -> TestApp {
    spawn_app_with(backend, Options::default()).await
}

pub async fn spawn_app_with(backend: &Backend, options: Options) -> TestApp {
    spawn_app_configured(backend, options, |_| {}).await
}

/// Like [`spawn_app_with`], with a last say over the clinic configuration (e.g. TURN).
pub async fn spawn_app_configured(
    backend: &Backend,
    options: Options,
    configure: impl FnOnce(&mut ClinicConfig),
) -> TestApp {
    init_logging();
    let database = TestDatabase::create(*backend).await;
    let store = Store::connect(database.url()).await.expect("connect store");
    store.migrate().await.expect("migrate");
    let clock = Arc::new(MockClock::new(t0()));
    let mut config = ClinicConfig::new(options.public_url, JWT_SECRET.to_vec(), Key::generate());
    configure(&mut config);
    let clinic = Clinic::new(store, config, clock.clone());
    let (base, server) = consultroom_testkit::serve(clinic.router()).await;
    TestApp {
        base,
        clinic,
        clock,
        server,
        _database: database,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Everything any test logged so far (a process-wide subscriber, so no callsite-interest races).
static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn init_logging() {
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = LogWriter(buffer.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buffer
    });
}

/// The logs captured so far, from all tests of this binary.
pub fn captured_logs() -> String {
    let buffer = LOGS.get().expect("logging initialised by spawn_app");
    String::from_utf8_lossy(&buffer.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
}

/// A PHC hash of [`PASSWORD`], computed once per test binary (Argon2 is slow in debug builds).
pub fn password_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| hash_password(PASSWORD).expect("hash"))
}

/// Two organisations: A (departments cardio and derma; org admin, cardio admin, practitioners in
/// each department; client Jan) and B (admin, practitioner; client Piet).
#[allow(dead_code)]
pub struct World {
    pub org_a: OrganisationId,
    pub cardio: DepartmentId,
    pub derma: DepartmentId,
    pub admin_a: StaffId,
    pub cardio_admin: StaffId,
    pub doc_cardio: StaffId,
    pub doc_derma: StaffId,
    pub client_a: ClientId,
    pub org_b: OrganisationId,
    pub admin_b: StaffId,
    pub doc_b: StaffId,
    pub client_b: ClientId,
}

pub const ADMIN_A: &str = "admin@a.test";
pub const CARDIO_ADMIN: &str = "cardio-admin@a.test";
pub const DOC_CARDIO: &str = "doc-cardio@a.test";
pub const DOC_DERMA: &str = "doc-derma@a.test";
pub const ADMIN_B: &str = "admin@b.test";
pub const DOC_B: &str = "doc@b.test";
/// Fixture patient names, checked to be absent from refusals.
pub const CLIENT_A_NAME: &str = "Jan Patientname";
pub const CLIENT_B_NAME: &str = "Piet Otherclinic";
pub const DOC_CARDIO_NAME: &str = "Dr. Cardio Practitioner";

impl TestApp {
    pub async fn world(&self) -> World {
        let store = self.clinic.store();
        let now = self.clock_now();
        let org_a = store.insert_organisation("Clinic A", now).await.unwrap();
        let cardio = store.insert_department(org_a, "Cardio", now).await.unwrap();
        let derma = store.insert_department(org_a, "Derma", now).await.unwrap();
        let org_b = store.insert_organisation("Clinic B", now).await.unwrap();
        let staff = |org, dept, name, email, role| async move {
            let new = NewStaff {
                organisation_id: org,
                department_id: dept,
                name,
                email,
                role,
                password_hash: password_hash(),
            };
            store.insert_staff(&new, now).await.unwrap()
        };
        let admin_a = staff(org_a, None, "Admin A", ADMIN_A, Role::OrganisationAdmin).await;
        let cardio_admin = staff(
            org_a,
            Some(cardio),
            "Cardio Admin",
            CARDIO_ADMIN,
            Role::DepartmentAdmin,
        )
        .await;
        let doc_cardio = staff(
            org_a,
            Some(cardio),
            DOC_CARDIO_NAME,
            DOC_CARDIO,
            Role::Practitioner,
        )
        .await;
        let doc_derma = staff(
            org_a,
            Some(derma),
            "Dr. Derma",
            DOC_DERMA,
            Role::Practitioner,
        )
        .await;
        let admin_b = staff(org_b, None, "Admin B", ADMIN_B, Role::OrganisationAdmin).await;
        let doc_b = staff(org_b, None, "Dr. B", DOC_B, Role::Practitioner).await;
        let client = |org, name: &str| {
            let new = NewClient {
                name: name.to_owned(),
                email: Some("patient@example.nl".to_owned()),
                phone: None,
                date_of_birth: None,
            };
            async move { store.insert_client(org, &new, now).await.unwrap().id }
        };
        let client_a = client(org_a, CLIENT_A_NAME).await;
        let client_b = client(org_b, CLIENT_B_NAME).await;
        World {
            org_a,
            cardio,
            derma,
            admin_a,
            cardio_admin,
            doc_cardio,
            doc_derma,
            client_a,
            org_b,
            admin_b,
            doc_b,
            client_b,
        }
    }

    pub fn clock_now(&self) -> DateTime<Utc> {
        use consultroom_clinic::Clock;
        self.clock.now()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    /// A client that keeps cookies.
    pub fn http(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .expect("client")
    }

    /// Logs `email` in with [`PASSWORD`]; returns a cookie-keeping client.
    pub async fn login(&self, email: &str) -> reqwest::Client {
        let http = self.http();
        let res = http
            .post(self.url("/auth/login"))
            .json(&json!({ "email": email, "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "login of {email}");
        http
    }

    /// Books through the API; returns (status, body).
    pub async fn book(&self, http: &reqwest::Client, body: Value) -> (u16, Value) {
        let res = http
            .post(self.url("/appointments"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Resolves an invitation token; returns (status, body).
    pub async fn resolve(&self, token: &str) -> (u16, Value) {
        let res = reqwest::Client::new()
            .post(self.url("/invitations/resolve"))
            .json(&json!({ "token": token }))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap())
    }
}

/// GET `url` with `http`; returns (status, JSON body or Null).
pub async fn get(http: &reqwest::Client, url: &str) -> (u16, Value) {
    let res = http.get(url).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// POST an empty body.
pub async fn post_empty(http: &reqwest::Client, url: &str) -> (u16, Value) {
    let res = http.post(url).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// The token part of an invitation URL.
pub fn token_of(invitation_url: &str) -> String {
    invitation_url
        .split_once("/join#")
        .expect("invitation url shape")
        .1
        .to_owned()
}
