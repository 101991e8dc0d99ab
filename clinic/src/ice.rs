//! ICE servers for the browsers: time-limited TURN credentials in coturn's REST / `use-auth-secret`
//! scheme, served at `GET /api/v1/ice-servers`.
//!
//! The scheme (coturn `use-auth-secret` with `static-auth-secret`): username
//! `<unix expiry>:<opaque id>`, credential `base64(HMAC-SHA1(secret, username))`. coturn recomputes
//! the HMAC with the same shared secret and refuses a username whose expiry has passed, so the
//! server needs no database of TURN users.
//!
//! Invariants: the username never carries a name, e-mail or database id (the id part is random);
//! the secret never reaches logs (`Debug` redacts it); the lifetime is minutes, at most a day.
//! Callable by a staff session (cookie) or by anyone holding a valid join token (`Bearer`), so a
//! patient can fetch credentials right before creating the peer connection.

use aws_lc_rs::hmac;
use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use rand::RngExt;
use secrecy::ExposeSecret;
use serde::Serialize;

pub use crate::config::{MAX_TTL_MINUTES, TurnConfig, TurnConfigError};

use crate::auth::CurrentStaff;
use crate::error::{ApiError, ApiResult};
use crate::{Clinic, Route};

impl TurnConfig {
    /// Fresh credentials valid from `now` for the configured lifetime, with a random id.
    pub fn credentials(&self, now: DateTime<Utc>) -> TurnCredentials {
        let mut id = [0u8; 12];
        rand::rng().fill(&mut id[..]);
        let expires_at = now + self.ttl;
        let username = format!("{}:{}", expires_at.timestamp(), URL_SAFE_NO_PAD.encode(id));
        let credential = turn_credential(self.secret.expose_secret(), &username);
        TurnCredentials {
            username,
            credential,
            expires_at,
        }
    }
}

/// One set of TURN credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TurnCredentials {
    /// `<unix expiry>:<random id>`.
    pub username: String,
    /// `base64(HMAC-SHA1(secret, username))`.
    pub credential: String,
    /// When coturn stops accepting them.
    pub expires_at: DateTime<Utc>,
}

/// coturn's REST credential: standard base64 (with padding) of HMAC-SHA1 keyed with the shared
/// secret over the username. SHA-1 is what coturn (and the TURN REST API draft) uses here; as an
/// HMAC it is not weakened by SHA-1's collision attacks.
pub fn turn_credential(secret: &[u8], username: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    STANDARD.encode(hmac::sign(&key, username.as_bytes()).as_ref())
}

/// Routes of this module (relative to `/api/v1`).
pub(crate) fn routes() -> Vec<Route> {
    vec![Route::new("GET", "/ice-servers", get(ice_servers))]
}

/// Who may ask for ICE servers: a staff session, or the holder of a valid join token.
struct IceCaller;

impl FromRequestParts<Clinic> for IceCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, clinic: &Clinic) -> Result<Self, ApiError> {
        if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
            // A bearer token decides alone; a bad one is not rescued by a cookie.
            let token = value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim)
                .ok_or(ApiError::Unauthenticated)?;
            clinic
                .verify_join_token_live(token)
                .await
                .map_err(|_| ApiError::Unauthenticated)?;
            return Ok(IceCaller);
        }
        CurrentStaff::from_request_parts(parts, clinic).await?;
        Ok(IceCaller)
    }
}

#[derive(Serialize)]
struct IceServer {
    urls: Vec<String>,
    username: String,
    credential: String,
}

#[derive(Serialize)]
struct IceServers {
    ice_servers: Vec<IceServer>,
    ttl_seconds: i64,
}

async fn ice_servers(
    State(clinic): State<Clinic>,
    _caller: IceCaller,
) -> ApiResult<Json<IceServers>> {
    // `Cache-Control: no-store` comes from the API router's layer.
    let Some(turn) = clinic.config().turn.as_ref() else {
        return Ok(Json(IceServers {
            ice_servers: Vec::new(),
            ttl_seconds: 0,
        }));
    };
    let creds = turn.credentials(clinic.now());
    Ok(Json(IceServers {
        ice_servers: vec![IceServer {
            urls: turn.urls().to_vec(),
            username: creds.username,
            credential: creds.credential,
        }],
        ttl_seconds: turn.ttl().num_seconds(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn credential_matches_known_vectors() {
        // RFC 2202 test case 2 (HMAC-SHA1, key "Jefe"), re-encoded in base64.
        assert_eq!(
            turn_credential(b"Jefe", "what do ya want for nothing?"),
            "7/zfauXrL6LSdBbV8YTfnCWafHk="
        );
        // A username of our shape with the secret from coturn's sample turnserver.conf
        // ("static-auth-secret=north"); expected value from Python's hmac/hashlib/base64.
        assert_eq!(
            turn_credential(b"north", "1433895918506:my_user_name"),
            "+8A4l7VX6yTmEzUg7ltAn+0+I8E="
        );
    }

    #[test]
    fn credentials_expire_after_ttl_and_carry_no_identity() {
        let turn = TurnConfig::new(
            vec!["turn:127.0.0.1:3478?transport=udp".into()],
            b"s3cret".to_vec(),
            60,
        )
        .unwrap();
        let now: DateTime<Utc> = "2030-03-04T09:00:00Z".parse().unwrap();
        let a = turn.credentials(now);
        let b = turn.credentials(now);
        let (expiry, id) = a.username.split_once(':').unwrap();
        assert_eq!(expiry.parse::<i64>().unwrap(), now.timestamp() + 3600);
        assert_eq!(a.expires_at, now + Duration::minutes(60));
        assert_eq!(id.len(), 16, "12 random bytes, base64url");
        assert_ne!(a.username, b.username, "a fresh id per request");
        assert_eq!(a.credential, turn_credential(b"s3cret", &a.username));
    }

    #[test]
    fn config_is_validated() {
        let ok = |urls: &[&str]| {
            TurnConfig::new(
                urls.iter().map(|u| u.to_string()).collect(),
                b"x".to_vec(),
                60,
            )
        };
        assert!(
            ok(&[
                "turn:127.0.0.1:3478?transport=udp",
                "turns:turn.example.org:443?transport=tcp"
            ])
            .is_ok()
        );
        assert!(ok(&["turn:[::1]:3478"]).is_ok());
        assert_eq!(ok(&[]).unwrap_err(), TurnConfigError::NoUrls);
        for bad in [
            "stun:127.0.0.1",
            "http://x",
            "turn:",
            "turn::3478",
            "turn:a b",
        ] {
            assert!(
                matches!(ok(&[bad]), Err(TurnConfigError::BadUrl(_))),
                "{bad}"
            );
        }
        let urls = vec!["turn:x".to_string()];
        assert_eq!(
            TurnConfig::new(urls.clone(), Vec::new(), 60).unwrap_err(),
            TurnConfigError::EmptySecret
        );
        assert_eq!(
            TurnConfig::new(urls.clone(), b"x".to_vec(), 0).unwrap_err(),
            TurnConfigError::BadTtl(0)
        );
        assert_eq!(
            TurnConfig::new(urls.clone(), b"x".to_vec(), MAX_TTL_MINUTES + 1).unwrap_err(),
            TurnConfigError::BadTtl(MAX_TTL_MINUTES + 1)
        );
        assert!(TurnConfig::new(urls, b"x".to_vec(), MAX_TTL_MINUTES).is_ok());
    }

    #[test]
    fn debug_redacts_the_secret() {
        let turn = TurnConfig::new(vec!["turn:x".into()], b"topsecret".to_vec(), 5).unwrap();
        let shown = format!("{turn:?}");
        assert!(!shown.contains("topsecret"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }
}
