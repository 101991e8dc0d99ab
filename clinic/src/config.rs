//! Configuration of the clinic service; secrets live in redacting wrappers.

use std::fmt;

use axum_extra::extract::cookie::Key;
use chrono::Duration;
use rand::RngExt;
use secrecy::SecretBox;

use crate::ice::TurnConfig;

/// Settings the composing binary hands to [`Clinic::new`](crate::Clinic::new).
pub struct ClinicConfig {
    /// Public base URL of the server (no trailing slash), e.g. `https://video.example-clinic.nl`.
    /// Used to build invitation links; an `https` URL also marks the session cookie `Secure`.
    pub public_url: String,
    /// HMAC key for the signalling join tokens (HS256). At least 32 bytes.
    pub jwt_secret: SecretBox<[u8]>,
    /// How long before the appointment start an invitation opens. Default 60 min.
    pub invitation_before: Duration,
    /// How long after the appointment start an invitation stays valid. Default 60 min.
    pub invitation_after: Duration,
    /// Sliding idle timeout of staff sessions. Default 30 min.
    pub session_idle: Duration,
    /// Absolute lifetime of a staff session, however active. Default 12 h.
    pub session_absolute: Duration,
    /// Key that encrypts and authenticates the session cookie (64 bytes of key material).
    pub cookie_key: Key,
    /// Lifetime of signalling join tokens. Default 120 s.
    pub join_token_ttl: Duration,
    /// TURN servers and their shared secret; `None` (the default) serves an empty ICE server
    /// list, so browsers use the SFU's host candidates only.
    pub turn: Option<TurnConfig>,
    /// Reverse proxies whose `X-Forwarded-For` is believed for per-address rate limits (walk-in
    /// entries, staff login). Empty (the default): the direct peer address counts.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl ClinicConfig {
    /// A config with the given public URL and secrets and default timings.
    pub fn new(public_url: impl Into<String>, jwt_secret: Vec<u8>, cookie_key: Key) -> Self {
        Self {
            public_url: public_url.into().trim_end_matches('/').to_owned(),
            jwt_secret: SecretBox::new(jwt_secret.into_boxed_slice()),
            invitation_before: Duration::minutes(60),
            invitation_after: Duration::minutes(60),
            session_idle: Duration::minutes(30),
            session_absolute: Duration::hours(12),
            cookie_key,
            join_token_ttl: Duration::seconds(120),
            turn: None,
            trusted_proxies: Vec::new(),
        }
    }

    /// A development config for `public_url` with freshly generated random secrets (sessions and
    /// tokens do not survive a restart).
    pub fn dev(public_url: impl Into<String>) -> Self {
        let mut secret = vec![0u8; 32];
        rand::rng().fill(&mut secret[..]);
        Self::new(public_url, secret, Key::generate())
    }

    /// Whether the public URL is https (the session cookie is then `Secure`).
    pub fn is_https(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

impl Default for ClinicConfig {
    fn default() -> Self {
        Self::dev("http://127.0.0.1:8080")
    }
}

impl fmt::Debug for ClinicConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClinicConfig")
            .field("public_url", &self.public_url)
            .field("jwt_secret", &"[redacted]")
            .field("invitation_before", &self.invitation_before)
            .field("invitation_after", &self.invitation_after)
            .field("session_idle", &self.session_idle)
            .field("session_absolute", &self.session_absolute)
            .field("cookie_key", &"[redacted]")
            .field("join_token_ttl", &self.join_token_ttl)
            .field("turn", &self.turn)
            .finish()
    }
}
