//! Patient data never reaches the logs: every test in this binary logs (at debug level) into a
//! shared buffer, and this test runs a whole consultation flow and then searches everything
//! logged so far for the fixtures' names, e-mail addresses, passwords and tokens.

use std::io::Write;
use std::sync::{Mutex, OnceLock};

use serde_json::json;

use crate::support::{PASSWORD, WsClient, spawn_app};

static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Install the capturing subscriber (once per test binary).
pub fn init_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("debug,str0m=info,webrtc=warn,rtc=warn,sqlx=debug,hyper=info,reqwest=info,tungstenite=info,tokio_tungstenite=info")
            .with_writer(|| Capture)
            .with_ansi(false)
            .try_init();
    });
}

#[tokio::test]
async fn a_whole_consultation_logs_no_patient_data() {
    let app = spawn_app().await;
    let staff_token = app.staff_token().await;
    let patient_token = app.patient_token().await;
    let (mut staff, _) = WsClient::join(&app, &staff_token).await;
    staff.recv_type("waiting_snapshot").await;
    let (mut patient, _) = WsClient::join(&app, &patient_token).await;
    let pid = staff.recv_type("waiting_arrived").await["entry"]["participant_id"]
        .as_str()
        .unwrap()
        .to_owned();
    staff
        .request(json!({"type":"admit","participant_id":pid}))
        .await;
    patient.recv_type("consultation_started").await;
    // A failed login with the real e-mail must not log it either.
    reqwest::Client::new()
        .post(format!("{}/api/v1/auth/login", app.base))
        .json(&json!({"email": app.demo_email, "password": "wrong password"}))
        .send()
        .await
        .unwrap();
    staff.request(json!({"type":"end_consultation"})).await;
    patient.recv_type("consultation_ended").await;
    let invitation = app.invitation_token();
    app.stop().await;

    let logs =
        String::from_utf8_lossy(&LOGS.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
    assert!(
        logs.len() > 1000,
        "logs were captured ({} bytes)",
        logs.len()
    );
    for secret in [
        "Jan Jansen",
        "Sanne Bakker",
        "Anna de Vries",
        "demo@consultroom.test",
        "admin@consultroom.test",
        PASSWORD,
        "wrong password",
        invitation.as_str(),
        staff_token.as_str(),
        patient_token.as_str(),
    ] {
        assert!(
            !logs.contains(secret),
            "logs contain patient data or a secret: {secret}"
        );
    }
}
