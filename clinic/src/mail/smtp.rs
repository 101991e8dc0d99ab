//! Sending: the [`Mailer`] trait and its SMTP adapter on lettre (rustls with aws-lc-rs).
//!
//! `--smtp-url` forms ([`SmtpMailer::from_url`]):
//! - `smtp://user:pass@host:587` — STARTTLS, required (default port 587);
//! - `smtps://user:pass@host:465` — implicit TLS (default port 465);
//! - `smtp://host:25?tls=none` — no TLS, for a local relay or the tests;
//! - `smtp://host?tls=opportunistic` — STARTTLS when offered.
//!
//! User and password are percent-decoded. The URL (it holds the password) is never logged.

use std::time::Duration;

use futures_util::future::BoxFuture;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// Why a send failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth retrying: a 4xx reply, a refused or broken connection, a timeout.
    #[error("{0}")]
    Transient(String),
    /// Not worth retrying: a 5xx reply (e.g. an unknown recipient).
    #[error("{0}")]
    Permanent(String),
}

/// Something that delivers a built message to its `To` recipient.
pub trait Mailer: Send + Sync + 'static {
    /// Sends `message`; `Ok` once the server accepted it.
    fn send(&self, message: Message) -> BoxFuture<'_, Result<(), SendError>>;
}

/// lettre's pooled async SMTP transport.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

/// How long one SMTP command may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

impl SmtpMailer {
    /// Builds the transport from an `smtp://` or `smtps://` URL (see the module docs). Nothing is
    /// connected until the first send.
    pub fn from_url(url: &str) -> Result<Self, String> {
        Self::with_connections(url, 10)
    }

    /// [`SmtpMailer::from_url`] with a pool of at most `connections` open SMTP connections (the
    /// job worker's concurrency: each running send holds one). lettre does not set
    /// `TCP_NODELAY`, and it writes a message's end (`\r\n.\r\n`) as a write of its own, so
    /// Nagle's algorithm holds that end until the server acknowledges the body — a delayed ACK,
    /// about 40 ms on Linux — before the server can answer: every message takes ~40 ms however
    /// fast the server is (seen with strace in the reminders benchmark). Parallel connections
    /// are what keeps throughput up.
    pub fn with_connections(url: &str, connections: u32) -> Result<Self, String> {
        let url = lettre_url(url)?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&url)
            .map_err(|e| format!("invalid --smtp-url: {e}"))?
            .timeout(Some(SMTP_TIMEOUT))
            .pool_config(PoolConfig::new().max_size(connections.max(1)))
            .build();
        Ok(Self { transport })
    }
}

/// Rewrites our URL conventions into lettre's: `smtp://` without `tls=` means STARTTLS required;
/// `tls=none` means plain.
fn lettre_url(url: &str) -> Result<String, String> {
    let url = url.trim();
    let (scheme, _) = url
        .split_once("://")
        .ok_or("--smtp-url must start with smtp:// or smtps://")?;
    if scheme != "smtp" && scheme != "smtps" {
        return Err("--smtp-url must start with smtp:// or smtps://".to_owned());
    }
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, q),
        None => (url, ""),
    };
    let mut params: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
    let tls = params
        .iter()
        .find_map(|p| p.strip_prefix("tls="))
        .map(str::to_owned);
    match (scheme, tls.as_deref()) {
        ("smtp", None) => params.push("tls=required"),
        ("smtp", Some("none")) => params.retain(|p| !p.starts_with("tls=")),
        ("smtp", Some("required" | "opportunistic")) | ("smtps", None) => {}
        (_, Some(other)) => {
            return Err(format!(
                "--smtp-url: unknown tls={other} (use none, opportunistic or required; smtps:// \
                 is always TLS)"
            ));
        }
        _ => {}
    }
    Ok(if params.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", params.join("&"))
    })
}

impl Mailer for SmtpMailer {
    fn send(&self, message: Message) -> BoxFuture<'_, Result<(), SendError>> {
        Box::pin(async move {
            match self.transport.send(message).await {
                Ok(_) => Ok(()),
                Err(e) if e.is_permanent() => Err(SendError::Permanent(describe(&e))),
                Err(e) => Err(SendError::Transient(describe(&e))),
            }
        })
    }
}

/// The error with its cause chain (the server's reply text, a connection error).
fn describe(e: &lettre::transport::smtp::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text.chars().take(500).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_map_onto_lettre() {
        assert_eq!(
            lettre_url("smtp://u:p@h:587").unwrap(),
            "smtp://u:p@h:587?tls=required"
        );
        assert_eq!(lettre_url("smtp://h:25?tls=none").unwrap(), "smtp://h:25");
        assert_eq!(
            lettre_url("smtp://h?tls=opportunistic").unwrap(),
            "smtp://h?tls=opportunistic"
        );
        assert_eq!(lettre_url("smtps://u:p@h").unwrap(), "smtps://u:p@h");
        assert!(lettre_url("http://h").is_err());
        assert!(lettre_url("smtp://h?tls=maybe").is_err());
        assert!(lettre_url("smtps://h?tls=none").is_err());
    }

    /// lettre's pool starts a task: the transport is built inside the runtime.
    #[tokio::test]
    async fn transports_build_from_each_url_form() {
        for url in [
            "smtps://u:p%40x@mail.example.org",
            "smtp://mail.example.org:587",
            "smtp://127.0.0.1:25?tls=none",
        ] {
            assert!(SmtpMailer::from_url(url).is_ok(), "{url}");
        }
        assert!(SmtpMailer::from_url("smtp://").is_err());
    }
}
