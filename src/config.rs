//! Command line and environment configuration (`CONSULTROOM_*` variables mirror every flag).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Consultroom: self-hosted video consultations for clinics.
#[derive(Debug, Parser)]
#[command(name = "consultroom", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options for `serve` when no subcommand is given.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// What to run.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate(ServeArgs),
    /// Run the server with a demo clinic: prints a practitioner login and a patient link.
    Demo(DemoArgs),
    /// Seed one more organisation shaped like the demo clinic into an existing (migrated)
    /// database, e.g. a running demo server's, print its logins and a patient link, and exit.
    DemoOrganisation(DemoOrganisationArgs),
    /// First-run setup and account recovery on the database of `serve` (`--data-dir`,
    /// `--database-url`); each prints a one-time set-password link.
    #[command(subcommand)]
    Admin(AdminCommand),
}

/// `consultroom admin …`: each prints a one-time, time-limited set-password link built from
/// `--public-url` (default http:// + `--http`).
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an organisation and its first organisation admin.
    CreateOrganisation(CreateOrganisationArgs),
    /// Invite a staff member into an organisation.
    InviteStaff(InviteStaffArgs),
    /// Make a new set-password link for a staff member (their other sessions end once it is used).
    ResetPassword(ResetPasswordArgs),
}

/// `admin create-organisation` options.
#[derive(Debug, Clone, Args)]
pub struct CreateOrganisationArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// The organisation's name.
    #[arg(long)]
    pub name: String,
    /// The first organisation admin's login e-mail.
    #[arg(long)]
    pub admin_email: String,
    /// The admin's display name (default: the e-mail's local part).
    #[arg(long)]
    pub admin_name: Option<String>,
}

/// `admin invite-staff` options.
#[derive(Debug, Clone, Args)]
pub struct InviteStaffArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// The organisation's id or exact name.
    #[arg(long)]
    pub organisation: String,
    /// The staff member's login e-mail.
    #[arg(long)]
    pub email: String,
    /// `organisation_admin`, `department_admin` or `practitioner`.
    #[arg(long)]
    pub role: String,
    /// The department's id or exact name.
    #[arg(long)]
    pub department: Option<String>,
    /// Display name (default: the e-mail's local part).
    #[arg(long)]
    pub name: Option<String>,
}

/// `admin reset-password` options.
#[derive(Debug, Clone, Args)]
pub struct ResetPasswordArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// The staff member's login e-mail.
    #[arg(long)]
    pub email: String,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

/// Server options.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// HTTP listener (web client, API, WebSocket). Port 0 picks a free port.
    #[arg(long, env = "CONSULTROOM_HTTP", default_value = "127.0.0.1:8080")]
    pub http: SocketAddr,
    /// Admin listener (/healthz, /readyz, /metrics); keep it private.
    #[arg(long, env = "CONSULTROOM_ADMIN", default_value = "127.0.0.1:9090")]
    pub admin: SocketAddr,
    /// UDP address of the media plane (one port for all peers).
    #[arg(long, env = "CONSULTROOM_MEDIA_BIND", default_value = "0.0.0.0:50000")]
    pub media_bind: SocketAddr,
    /// Addresses announced to browsers as ICE candidates (comma separated); by default the bound
    /// address, or every non-loopback interface address when bound to 0.0.0.0.
    #[arg(long, env = "CONSULTROOM_MEDIA_ANNOUNCE", value_delimiter = ',')]
    pub media_announce: Vec<IpAddr>,
    /// Media loops (one OS thread each, rooms placed whole on one loop); 0 = one per CPU core.
    /// Loop `i` uses UDP port `media-bind port + i` (or a free port each when that is 0).
    #[arg(long, env = "CONSULTROOM_MEDIA_LOOPS", default_value_t = 0)]
    pub media_loops: usize,
    /// Accept ICE over TCP (RFC 4571) here, for networks that block UDP; loop `i` listens on
    /// port + i. Off by default.
    #[arg(long, env = "CONSULTROOM_MEDIA_TCP_BIND")]
    pub media_tcp_bind: Option<SocketAddr>,
    /// Directory for the SQLite database and the generated secret key.
    #[arg(long, env = "CONSULTROOM_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// Database URL: `sqlite://...` or `postgres://...`. Default: SQLite in the data directory.
    #[arg(long, env = "CONSULTROOM_DATABASE_URL")]
    pub database_url: Option<String>,
    /// The URL patients and staff use to reach this server (used in invitation links).
    /// Default: http:// + the HTTP listener address.
    #[arg(long, env = "CONSULTROOM_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Log format.
    #[arg(
        long,
        env = "CONSULTROOM_LOG_FORMAT",
        value_enum,
        default_value = "human"
    )]
    pub log_format: LogFormat,
    /// Seconds a graceful shutdown may take, after the drain window, before remaining
    /// connections are cut.
    #[arg(long, env = "CONSULTROOM_SHUTDOWN_DEADLINE", default_value_t = 20)]
    pub shutdown_deadline_secs: u64,
    /// Seconds between the shutdown signal and the drain: `/readyz` answers 503 "draining" so
    /// that load balancers stop sending new work, while everything still serves.
    #[arg(long, env = "CONSULTROOM_DRAIN_WINDOW_SECS", default_value_t = 5)]
    pub drain_window_secs: u64,
    /// Seconds a client has to send a request's header (from its first byte; for a new
    /// connection, from the connection). Slower connections are closed.
    #[arg(long, env = "CONSULTROOM_HTTP_HEADER_TIMEOUT_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub http_header_timeout_secs: u64,
    /// Seconds a keep-alive connection may stay idle (no request, no bytes) before it is closed;
    /// also how long a response may wait for the client to read it.
    #[arg(long, env = "CONSULTROOM_HTTP_IDLE_TIMEOUT_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub http_idle_timeout_secs: u64,
    /// Seconds a request body may take before it must keep arriving at 1 KiB/s on average;
    /// slower uploads are cut. (A 64 KiB API body is due in this time plus 64 s.)
    #[arg(long, env = "CONSULTROOM_HTTP_BODY_TIMEOUT_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub http_body_timeout_secs: u64,
    /// Most HTTP connections (WebSockets included) open at once; beyond it new ones are closed
    /// at once. 0: the open-file limit (raised to its hard limit at start-up) less 256.
    #[arg(long, env = "CONSULTROOM_HTTP_MAX_CONNECTIONS", default_value_t = 0)]
    pub http_max_connections: usize,
    /// Most HTTP connections open at once from one address (IPv6: one /64). `--trusted-proxy`
    /// addresses are held to `--http-max-connections` only.
    #[arg(long, env = "CONSULTROOM_HTTP_MAX_CONNECTIONS_PER_SOURCE", default_value_t = 256,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub http_max_connections_per_source: usize,
    /// Minutes before an appointment's start when its invitation link opens.
    #[arg(
        long,
        env = "CONSULTROOM_INVITATION_OPENS_MINUTES",
        default_value_t = 60
    )]
    pub invitation_opens_minutes: i64,
    /// Minutes after an appointment's start when its invitation link expires.
    #[arg(
        long,
        env = "CONSULTROOM_INVITATION_CLOSES_MINUTES",
        default_value_t = 60
    )]
    pub invitation_closes_minutes: i64,
    /// TURN server URLs handed to browsers (repeat the flag or separate with commas), e.g.
    /// `turn:turn.example.org:3478?transport=udp,turns:turn.example.org:443?transport=tcp`.
    /// Needs the shared secret (`--turn-secret-file` or `CONSULTROOM_TURN_SECRET`). Off by
    /// default: browsers then use the SFU's own candidates only.
    #[arg(long, env = "CONSULTROOM_TURN_URL", value_delimiter = ',')]
    pub turn_url: Vec<String>,
    /// File holding the TURN shared secret: coturn's `static-auth-secret` (with `use-auth-secret`).
    /// Surrounding whitespace is ignored.
    #[arg(long, env = "CONSULTROOM_TURN_SECRET_FILE")]
    pub turn_secret_file: Option<PathBuf>,
    /// The TURN shared secret itself. Prefer `--turn-secret-file` or the environment variable: a
    /// value on the command line is visible to other users in `ps`. Never logged.
    #[arg(long, env = "CONSULTROOM_TURN_SECRET", hide_env_values = true)]
    pub turn_secret: Option<Redacted>,
    /// Lifetime of the TURN credentials the server issues, in minutes (1 to 1440).
    #[arg(
        long,
        env = "CONSULTROOM_TURN_TTL_MINUTES",
        default_value_t = 60,
        value_parser = clap::value_parser!(i64).range(1..=consultroom_clinic::ice::MAX_TTL_MINUTES)
    )]
    pub turn_ttl_minutes: i64,
    /// Reverse proxies (CIDR ranges, comma-separated or repeated) whose `X-Forwarded-For` is
    /// believed for per-address rate limits (walk-in entries, staff login). Without one, the
    /// direct peer address counts; never list ranges that clients can connect from.
    #[arg(long = "trusted-proxy", env = "CONSULTROOM_TRUSTED_PROXIES", value_delimiter = ',',
          value_parser = parse_proxy)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Largest file a participant may share in a consultation, in bytes (default 75 MiB). An
    /// upload declaring more is refused before its body is read.
    #[arg(long, env = "CONSULTROOM_FILE_MAX_BYTES", default_value_t = 75 * 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub file_max_bytes: u64,
    /// Largest total of the files shared in one consultation, in bytes (default 256 MiB; at
    /// least `--file-max-bytes`). Files are deleted when the consultation ends.
    #[arg(long, env = "CONSULTROOM_CONSULTATION_FILES_MAX_BYTES", default_value_t = 256 * 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub consultation_files_max_bytes: u64,
    /// How SQLite syncs commits. `full` (default): every commit is on disk before it is
    /// acknowledged (a chat message's `chat_ack`, an appointment's 201), so it survives power
    /// loss. `normal`: survives a crash of the process but may lose the last commits on power
    /// loss; only for storage with a battery-backed write cache. PostgreSQL ignores it.
    #[arg(
        long,
        env = "CONSULTROOM_SQLITE_SYNCHRONOUS",
        value_enum,
        default_value = "full"
    )]
    pub sqlite_synchronous: SqliteSynchronousArg,
    /// Mail server for the outbox: `smtp://user:pass@host:587` (STARTTLS, required),
    /// `smtps://user:pass@host:465` (implicit TLS) or `smtp://host:25?tls=none` (a local relay).
    /// User and password are percent-encoded. Without it (the default) mail stays in the outbox
    /// ("not sent: no mail server configured") and is shown on the staff app's "Sent mail" page.
    /// Prefer the environment variable: a password on the command line is visible in `ps`.
    #[arg(long, env = "CONSULTROOM_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<Redacted>,
    /// `From` of every mail, e.g. `"Clinic <noreply@clinic.example>"`. Default:
    /// `Consultroom <noreply@HOST>` with the public URL's host.
    #[arg(long, env = "CONSULTROOM_MAIL_FROM")]
    pub mail_from: Option<String>,
    /// How long a claimed job (sending one mail) is its worker's before another worker may take
    /// it over, in seconds: after a crash, an unfinished mail is sent again this long after the
    /// claim. Hidden: the default suits every installation; the crash tests shorten it.
    #[arg(long, env = "CONSULTROOM_JOB_LEASE_SECS", default_value_t = 120, hide = true,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub job_lease_secs: u64,
    /// Jobs (sending one mail, composing one reminder) the worker runs at once, and the SMTP
    /// connections it may hold open. Sending is bound by waiting (the mail server's replies,
    /// database commits), not by CPU, so this sets the outbox's throughput.
    #[arg(long, env = "CONSULTROOM_JOB_CONCURRENCY", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub job_concurrency: u32,
}

/// `--sqlite-synchronous` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SqliteSynchronousArg {
    Full,
    Normal,
}

impl From<SqliteSynchronousArg> for consultroom_clinic::store::SqliteDurability {
    fn from(a: SqliteSynchronousArg) -> Self {
        match a {
            SqliteSynchronousArg::Full => Self::Full,
            SqliteSynchronousArg::Normal => Self::Normal,
        }
    }
}

/// A secret string whose `Debug` shows nothing.
#[derive(Clone)]
pub struct Redacted(pub String);

impl std::str::FromStr for Redacted {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Redacted(s.to_owned()))
    }
}

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Default for ServeArgs {
    fn default() -> Self {
        // Parsing an empty command line yields the documented defaults.
        Cli::parse_from(["consultroom"]).serve
    }
}

impl ServeArgs {
    /// The database URL, defaulting to SQLite inside the data directory.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(u) => u.clone(),
            None => format!(
                "sqlite://{}",
                self.data_dir.join("consultroom.db").to_string_lossy()
            ),
        }
    }
}

/// `demo` options.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Password for the demo practitioner (random when not given).
    #[arg(long, env = "CONSULTROOM_DEMO_PASSWORD")]
    pub demo_password: Option<String>,
}

/// `demo-organisation` options: the database is found as for `serve` (`--data-dir`,
/// `--database-url`); `--public-url` is the running server's address, for the invitation link.
#[derive(Debug, Clone, Args)]
pub struct DemoOrganisationArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Organisation name; its logins are demo@<name as slug>.test and admin@<name as slug>.test.
    #[arg(long)]
    pub name: String,
    /// Password for both logins (random when not given).
    #[arg(long, env = "CONSULTROOM_DEMO_PASSWORD")]
    pub demo_password: Option<String>,
    /// Print one JSON object instead of `demo key=value` lines.
    #[arg(long)]
    pub json: bool,
}

/// A trusted proxy: a CIDR range, or one address (`/32`, `/128`).
fn parse_proxy(s: &str) -> Result<ipnet::IpNet, String> {
    let s = s.trim();
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{s:?} is not an IP address or CIDR range"))
}
