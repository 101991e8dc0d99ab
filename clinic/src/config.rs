//! Configuration of the clinic service; secrets live in redacting wrappers.

use std::fmt;

use axum_extra::extract::cookie::Key;
use chrono::Duration;
use rand::RngExt;
use secrecy::SecretBox;

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
    /// The outbox's `From` and mail server. Default: no server (mail stays in the outbox).
    pub mail: crate::mail::MailConfig,
}

impl ClinicConfig {
    /// A config with the given public URL and secrets and default timings.
    pub fn new(public_url: impl Into<String>, jwt_secret: Vec<u8>, cookie_key: Key) -> Self {
        let public_url = public_url.into().trim_end_matches('/').to_owned();
        Self {
            mail: crate::mail::MailConfig::unconfigured(&public_url),
            public_url,
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

/// Longest allowed credential lifetime: one day.
pub const MAX_TTL_MINUTES: i64 = 24 * 60;

/// Why a TURN configuration was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TurnConfigError {
    /// No `turn:`/`turns:` URL given.
    #[error("at least one TURN URL is needed")]
    NoUrls,
    /// A URL that is not `turn:` or `turns:` with a host.
    #[error("not a turn: or turns: URL: {0:?}")]
    BadUrl(String),
    /// An empty shared secret.
    #[error("the TURN shared secret is empty")]
    EmptySecret,
    /// Lifetime outside 1 minute ..= 1 day.
    #[error("TURN credential lifetime must be 1..={MAX_TTL_MINUTES} minutes, got {0}")]
    BadTtl(i64),
}

/// TURN servers sharing one coturn `static-auth-secret` (credentials are minted in
/// [`crate::ice`]).
pub struct TurnConfig {
    urls: Vec<String>,
    pub(crate) secret: SecretBox<[u8]>,
    pub(crate) ttl: Duration,
}

impl TurnConfig {
    /// Validates and builds a TURN configuration: `urls` are `turn:` or `turns:` URLs (e.g.
    /// `turn:turn.example.org:3478?transport=udp`, `turns:turn.example.org:443?transport=tcp`),
    /// `secret` is coturn's `static-auth-secret`, `ttl_minutes` the credential lifetime.
    pub fn new(
        urls: Vec<String>,
        secret: Vec<u8>,
        ttl_minutes: i64,
    ) -> Result<Self, TurnConfigError> {
        if urls.is_empty() {
            return Err(TurnConfigError::NoUrls);
        }
        for url in &urls {
            let rest = url
                .strip_prefix("turns:")
                .or_else(|| url.strip_prefix("turn:"));
            let host_ok = rest.is_some_and(|r| {
                let host = r.split(['?', ':']).next().unwrap_or("");
                let host = if r.starts_with('[') {
                    r.split(']').next().unwrap_or("")
                } else {
                    host
                };
                !host.is_empty()
            });
            if !host_ok || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(TurnConfigError::BadUrl(url.clone()));
            }
        }
        if secret.is_empty() {
            return Err(TurnConfigError::EmptySecret);
        }
        if !(1..=MAX_TTL_MINUTES).contains(&ttl_minutes) {
            return Err(TurnConfigError::BadTtl(ttl_minutes));
        }
        Ok(Self {
            urls,
            secret: SecretBox::new(secret.into_boxed_slice()),
            ttl: Duration::minutes(ttl_minutes),
        })
    }

    /// The TURN URLs, as given.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// The credential lifetime.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}

impl fmt::Debug for TurnConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TurnConfig")
            .field("urls", &self.urls)
            .field("secret", &"[redacted]")
            .field("ttl", &self.ttl)
            .finish()
    }
}
