//! Composition: one process running the clinic API, the signalling hub, the SFU, the embedded
//! web client and the admin listener. Built on port 0 in tests (`App::build` then `run`).

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use consultroom_clinic::TurnConfig;
use consultroom_clinic::WaitingRoomRef;
use consultroom_clinic::ids::AppointmentId;
use consultroom_clinic::secrets::derive_key;
use consultroom_clinic::{
    Clinic, ClinicConfig, ClinicEvent, Clock, Grant, JoinClaims, JoinPermissions, JoinTokenError,
    Store,
};
use consultroom_sfu::{Sfu, SfuConfig};
use consultroom_signalling::files::{BoxFuture, DownloadLog, DownloadRecord, FilesConfig};
use consultroom_signalling::protocol::Role as ParticipantRole;
use consultroom_signalling::state::Announcement;
use consultroom_signalling::{
    Hub, HubConfig, Identity, PatientIdentity, Permissions, QueueKey, TokenError, TokenRefresher,
    TokenVerifier, Verified, Visit,
};
use tokio::net::TcpListener;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::config::ServeArgs;
use crate::{csrf, datadir, ops, serve, web, widget};

/// A built, bound, not yet running server.
pub struct App {
    http: TcpListener,
    admin: TcpListener,
    router: Router,
    registry: prometheus::Registry,
    hub: Hub,
    sfu: Sfu,
    draining: Arc<AtomicBool>,
    /// The public listener's timeouts and connection caps.
    limits: serve::Limits,
    drain_window: Duration,
    shutdown_deadline: Duration,
    /// The job queue's worker (sends the outbox's mails), started by `run`.
    jobs: consultroom_clinic::jobs::worker::WorkerConfig,
    /// The clinic service (tests and `demo` use it directly).
    pub clinic: Clinic,
    /// The database.
    pub store: Store,
}

/// Verifies tokens with the clinic's key (and a staff token's session against the database)
/// once, and maps them onto signalling identities: a join token's seat, or a chat-only token's
/// appointment chat. Also mints the successors of held join tokens (`token_refresh`).
struct ClinicTokens(Clinic);

impl TokenVerifier for ClinicTokens {
    fn verify<'a>(
        &'a self,
        token: &'a str,
    ) -> futures_util::future::BoxFuture<'a, Result<Verified, TokenError>> {
        Box::pin(async move {
            match self.0.verify_token_live(token).await {
                Ok((Grant::Join(claims), expires_at)) => Ok(Verified::Consultation {
                    identity: identity(claims),
                    expires_at,
                }),
                Ok((Grant::Chat(c), _)) => Ok(Verified::ChatOnly(
                    consultroom_signalling::chat::ChatPrincipal::Appointment {
                        organisation_id: c.organisation_id.to_string(),
                        appointment_id: c.appointment_id.to_string(),
                    },
                )),
                Err(JoinTokenError::Expired) => Err(TokenError::Expired),
                Err(JoinTokenError::Invalid) => Err(TokenError::Invalid),
            }
        })
    }
}

impl TokenRefresher for ClinicTokens {
    fn refresh<'a>(
        &'a self,
        held: &'a str,
    ) -> futures_util::future::BoxFuture<'a, Option<(String, chrono::DateTime<chrono::Utc>)>> {
        Box::pin(async move {
            match self.0.refresh_join_token(held).await {
                Ok(fresh) => fresh,
                Err(e) => {
                    tracing::warn!(error = %e, "refreshing a join token failed");
                    None
                }
            }
        })
    }
}

fn identity(claims: JoinClaims) -> Identity {
    match claims {
        JoinClaims::Staff(s) => Identity::Staff {
            staff_id: s.staff_id.to_string(),
            organisation_id: s.organisation_id.to_string(),
            display_name: s.display_name,
            department_ids: s.department_ids.iter().map(|d| d.to_string()).collect(),
            permissions: permissions(s.permissions),
            // The hub's key for "the connections of this login session".
            session: s.session_id.to_string(),
        },
        JoinClaims::Patient(p) => Identity::Patient(PatientIdentity {
            organisation_id: p.organisation_id.to_string(),
            display_name: p.display_name,
            visit: Visit::Appointment {
                appointment_id: p.appointment_id.to_string(),
                starts_at: p.appointment_starts_at,
                duration_minutes: p.duration_minutes,
            },
            queue: queue_key(&p.waiting_room),
            permissions: permissions(p.permissions),
        }),
        JoinClaims::WalkIn(w) => Identity::Patient(PatientIdentity {
            organisation_id: w.organisation_id.to_string(),
            display_name: w.display_name,
            visit: Visit::WalkIn {
                visit_id: w.visit_id.to_string(),
            },
            queue: QueueKey::Practitioner(w.practitioner_id.to_string()),
            permissions: permissions(w.permissions),
        }),
        // A guest waits in the practitioner's room key only nominally: the hub keeps
        // guests out of every waiting list (they wait for the client, issue #4).
        JoinClaims::Guest(g) => Identity::Patient(PatientIdentity {
            organisation_id: g.organisation_id.to_string(),
            display_name: g.display_name,
            visit: Visit::Guest {
                appointment_id: g.appointment_id.to_string(),
                guest_id: g.guest_id.to_string(),
            },
            queue: QueueKey::Practitioner(g.practitioner_id.to_string()),
            permissions: permissions(g.permissions),
        }),
    }
}

/// Records consultation file downloads in the clinic database (issue #5).
struct ClinicDownloadLog(Clinic);

impl DownloadLog for ClinicDownloadLog {
    fn record(&self, d: DownloadRecord) -> BoxFuture<Result<(), String>> {
        let clinic = self.0.clone();
        Box::pin(async move {
            let row = consultroom_clinic::consultation_files::FileDownload {
                file_id: d.file_id,
                consultation_id: d.consultation_id,
                participant_id: d.participant_id,
                role: match d.role {
                    ParticipantRole::Staff => "staff",
                    ParticipantRole::Patient => "patient",
                },
                subject_id: d.subject_id,
                at: d.at,
            };
            clinic
                .record_file_download(&row)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// File sharing from `--file-max-bytes` and `--consultation-files-max-bytes`; files live in
/// `<data-dir>/consultation-files` while their consultation runs.
fn files_config(args: &ServeArgs, clinic: &Clinic) -> anyhow::Result<FilesConfig> {
    anyhow::ensure!(
        args.consultation_files_max_bytes >= args.file_max_bytes,
        "--consultation-files-max-bytes must be at least --file-max-bytes"
    );
    Ok(FilesConfig {
        dir: Some(args.data_dir.join("consultation-files")),
        max_file_bytes: args.file_max_bytes,
        max_consultation_bytes: args.consultation_files_max_bytes,
        download_log: Some(Arc::new(ClinicDownloadLog(clinic.clone()))),
        ..FilesConfig::default()
    })
}

fn permissions(p: JoinPermissions) -> Permissions {
    Permissions {
        screen_share: p.screen_share,
        file_sharing: p.file_sharing,
        chat_in_waiting_room: p.chat_in_waiting_room,
    }
}

fn queue_key(room: &WaitingRoomRef) -> QueueKey {
    match room {
        WaitingRoomRef::Practitioner(id) => QueueKey::Practitioner(id.to_string()),
        WaitingRoomRef::Department(id) => QueueKey::Department(id.to_string()),
    }
}

/// Load the active service announcements from the clinic into the hub.
async fn sync_announcements(clinic: &Clinic, hub: &Hub) {
    match clinic.active_announcements().await {
        Ok(items) => {
            let items = items
                .into_iter()
                .map(|a| Announcement {
                    id: a.id,
                    organisation_id: a.organisation_id,
                    scope: queue_key(&a.scope),
                    text: a.text,
                    expires_at: a.expires_at,
                })
                .collect();
            hub.set_announcements(items).await;
        }
        Err(e) => tracing::error!(error = %e, "loading announcements failed"),
    }
}

/// Applies one clinic event to the hub.
async fn apply_clinic_event(clinic: &Clinic, hub: &Hub, event: ClinicEvent) {
    match event {
        ClinicEvent::AnnouncementsChanged => sync_announcements(clinic, hub).await,
        ClinicEvent::GuestRevoked {
            organisation_id,
            guest_id,
        } => {
            hub.revoke_guest(&organisation_id.to_string(), &guest_id.to_string())
                .await
        }
        ClinicEvent::ChatCleared {
            channel_id,
            through_seq,
        } => hub.chat_cleared(&channel_id.to_string(), through_seq).await,
        ClinicEvent::ChatClosedBetweenVisits { channel_id } => {
            hub.chat_closed_between_visits(&channel_id.to_string())
                .await
        }
        ClinicEvent::StaffSessionEnded { session_id } => {
            hub.end_staff_session(&session_id.to_string()).await
        }
    }
}

/// Read the server secret from `data_dir/secret.key`, creating it (mode 0600) on first start.
fn load_or_create_secret(data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    use rand::RngExt;
    let path = data_dir.join("secret.key");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let bytes = hex::decode(text.trim()).context("secret.key is not hex")?;
        anyhow::ensure!(bytes.len() >= 64, "secret.key must hold at least 64 bytes");
        return Ok(bytes);
    }
    let mut bytes = vec![0u8; 64];
    rand::rng().fill(&mut bytes[..]);
    write_private(&path, hex::encode(&bytes).as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(bytes)
}

fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

/// The TURN configuration from `--turn-url`, `--turn-secret-file` / `CONSULTROOM_TURN_SECRET` and
/// `--turn-ttl-minutes`; `None` when no TURN URL and no secret is given. Half a configuration is
/// refused rather than silently ignored.
pub fn turn_config(args: &ServeArgs) -> anyhow::Result<Option<TurnConfig>> {
    let secret = match (&args.turn_secret_file, &args.turn_secret) {
        (Some(_), Some(_)) => {
            anyhow::bail!("give the TURN secret either as a file or as a value, not both")
        }
        (Some(path), None) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading the TURN secret file {}", path.display()))?
                .trim()
                .to_owned(),
        ),
        (None, Some(value)) => Some(value.0.trim().to_owned()),
        (None, None) => None,
    };
    match (args.turn_url.is_empty(), secret) {
        (true, None) => Ok(None),
        (true, Some(_)) => anyhow::bail!("a TURN secret was given without --turn-url"),
        (false, None) => anyhow::bail!(
            "--turn-url needs the shared secret (--turn-secret-file or CONSULTROOM_TURN_SECRET)"
        ),
        (false, Some(secret)) => {
            let turn = TurnConfig::new(
                args.turn_url.clone(),
                secret.into_bytes(),
                args.turn_ttl_minutes,
            )
            .context("invalid TURN configuration")?;
            tracing::info!(urls = ?turn.urls(), ttl_minutes = args.turn_ttl_minutes, "TURN credentials enabled");
            Ok(Some(turn))
        }
    }
}

/// The outbox's `From` and SMTP transport from `--mail-from` and `--smtp-url`.
pub fn mail_config(
    args: &ServeArgs,
    public_url: &str,
) -> anyhow::Result<consultroom_clinic::mail::MailConfig> {
    let mut mail = consultroom_clinic::mail::MailConfig::unconfigured(public_url);
    if let Some(from) = &args.mail_from {
        mail.from = from
            .parse()
            .map_err(|e| anyhow::anyhow!("--mail-from {from:?} is not a mailbox: {e}"))?;
    }
    if let Some(url) = &args.smtp_url {
        let mailer =
            consultroom_clinic::mail::SmtpMailer::with_connections(&url.0, args.job_concurrency)
                .map_err(|e| anyhow::anyhow!(e))?;
        mail.mailer = Some(Arc::new(mailer));
        tracing::info!(from = %mail.from.email, "sending e-mail through the configured SMTP server");
    } else {
        tracing::info!(
            "no mail server configured (--smtp-url): mail stays in the outbox, see \"Sent mail\" in the staff app"
        );
    }
    Ok(mail)
}

impl App {
    /// Connect the database, run migrations, bind every listener and socket.
    pub async fn build(args: &ServeArgs, clock: Arc<dyn Clock>) -> anyhow::Result<App> {
        let turn = turn_config(args)?;
        datadir::prepare(&args.data_dir)?;
        let secret = load_or_create_secret(&args.data_dir)?;

        datadir::prepare_sqlite(&args.database_url())?;
        let store = Store::connect_with(&args.database_url(), args.sqlite_synchronous.into())
            .await
            .context("connecting to the database")?;
        datadir::tighten_sqlite(&args.database_url())?;
        store.migrate().await.context("running migrations")?;

        let http = TcpListener::bind(args.http)
            .await
            .with_context(|| format!("binding HTTP listener {}", args.http))?;
        let admin = TcpListener::bind(args.admin)
            .await
            .with_context(|| format!("binding admin listener {}", args.admin))?;
        let http_addr = http.local_addr()?;
        let public_url = args
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{http_addr}"));

        let mut clinic_config = ClinicConfig::new(
            public_url,
            derive_key(&secret, "jwt"),
            axum_extra::extract::cookie::Key::from(&derive_key(&secret, "cookie")),
        );
        clinic_config.invitation_before = chrono::Duration::minutes(args.invitation_opens_minutes);
        clinic_config.invitation_after = chrono::Duration::minutes(args.invitation_closes_minutes);
        clinic_config.turn = turn;
        clinic_config.trusted_proxies = args.trusted_proxies.clone();
        clinic_config.mail = mail_config(args, &clinic_config.public_url)?;
        let clinic = Clinic::new(store.clone(), clinic_config, clock.clone());

        let registry = prometheus::Registry::new();
        crate::clinic_metrics::register(&registry, &clinic);
        let sfu = Sfu::start(
            SfuConfig {
                bind: args.media_bind,
                announce: args.media_announce.clone(),
                loops: args.media_loops,
                tcp_bind: args.media_tcp_bind,
            },
            &registry,
        )
        .await
        .map_err(|e| match e {
            consultroom_sfu::SfuError::NoAnnounceAddress => anyhow::anyhow!(
                "this machine has no network address to offer browsers for media (only loopback?): \
                 pass --media-announce <IP>, the address browsers reach this server at \
                 (--media-announce 127.0.0.1 lets only browsers on this machine join)"
            ),
            e => anyhow::Error::new(e).context(format!(
                "starting the media plane on --media-bind {} (is the port free?)",
                args.media_bind
            )),
        })?;

        let files = files_config(args, &clinic)?;
        let completing = clinic.clone();
        let hub_config = HubConfig {
            now: Arc::new(move || clock.now()),
            on_completed: Some(Arc::new(move |visit: Visit| {
                let clinic = completing.clone();
                tokio::spawn(async move {
                    let done = match &visit {
                        Visit::Appointment { appointment_id, .. } => {
                            match uuid::Uuid::parse_str(appointment_id) {
                                Ok(id) => clinic.complete_appointment(AppointmentId(id)).await,
                                Err(_) => Ok(false),
                            }
                        }
                        // The visitor's link stops working once they have been seen.
                        Visit::WalkIn { visit_id } => clinic.complete_walk_in(visit_id).await,
                        // Guests are never the visit being served.
                        Visit::Guest { .. } => Ok(false),
                    };
                    if let Err(e) = done {
                        tracing::warn!(error = %e, "marking the visit completed failed");
                    }
                });
            })),
            files,
            chat: Some(Arc::new(crate::chat::ClinicChat(clinic.clone()))),
            token_refresher: Some(Arc::new(ClinicTokens(clinic.clone()))),
            ..HubConfig::default()
        };
        let hub = Hub::new(
            Arc::new(ClinicTokens(clinic.clone())),
            sfu.clone(),
            hub_config,
            &registry,
        );

        // Announcements live in the clinic's database; the hub keeps the active ones and pushes
        // them to waiting patients: loaded once now, and again on every `AnnouncementsChanged`.
        sync_announcements(&clinic, &hub).await;
        // What the clinic changed and the hub must act on (announcements, a revoked guest link,
        // a deleted or closed chat, an ended staff session) comes as one stream of events in the
        // order the changes were committed. The subscriber runs on the request's task, so it only
        // queues the event (never blocks); one task applies them to the hub in that order.
        let (events, mut queued) = tokio::sync::mpsc::unbounded_channel::<ClinicEvent>();
        clinic.subscribe(Arc::new(move |event| {
            // Fails only once the task below has ended with the runtime.
            let _ = events.send(event);
        }));
        {
            let (clinic, hub) = (clinic.clone(), hub.clone());
            tokio::spawn(async move {
                while let Some(event) = queued.recv().await {
                    // Its own task, awaited: a panic in one event's handling is logged and the
                    // next events still apply, in order.
                    let (clinic, hub) = (clinic.clone(), hub.clone());
                    let applied =
                        tokio::spawn(async move { apply_clinic_event(&clinic, &hub, event).await });
                    if let Err(e) = applied.await {
                        tracing::error!(error = %e, "applying a clinic event to the hub failed");
                    }
                }
            });
        }

        let mut router = Router::new()
            .merge(clinic.router())
            .merge(hub.router())
            // Streams its bodies; the 64 KiB cap below applies only to buffering extractors.
            .merge(hub.files_router())
            .merge(web::router())
            .layer(DefaultBodyLimit::max(64 * 1024))
            .layer(TraceLayer::new_for_http());
        for (name, value) in web::security_headers(&clinic.config().public_url) {
            router = router.layer(SetResponseHeaderLayer::if_not_present(name, value));
        }
        // After the header layers: the widget page sets its own frame-ancestors (see widget.rs).
        // Outermost: a cross-origin state-changing request is refused before anything else runs.
        let router = router.merge(widget::router(clinic.clone())).layer(
            axum::middleware::from_fn_with_state(
                Arc::new(csrf::CrossOriginProtection::new(
                    &clinic.config().public_url,
                )),
                csrf::protect,
            ),
        );

        Ok(App {
            http,
            admin,
            router,
            registry,
            hub,
            sfu,
            draining: Arc::new(AtomicBool::new(false)),
            limits: serve::Limits::public(args),
            drain_window: Duration::from_secs(args.drain_window_secs),
            shutdown_deadline: Duration::from_secs(args.shutdown_deadline_secs),
            jobs: consultroom_clinic::jobs::worker::WorkerConfig {
                lease: Duration::from_secs(args.job_lease_secs),
                concurrency: args.job_concurrency as usize,
                ..consultroom_clinic::jobs::worker::WorkerConfig::default()
            },
            clinic,
            store,
        })
    }

    /// Address of the public HTTP listener.
    pub fn http_addr(&self) -> SocketAddr {
        self.http
            .local_addr()
            .expect("bound listener has an address")
    }

    /// Address of the admin listener.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
            .local_addr()
            .expect("bound listener has an address")
    }

    /// Address of the media UDP socket.
    pub fn media_addr(&self) -> SocketAddr {
        self.sfu.local_addr()
    }

    /// Serve until `shutdown` resolves, then drain: readiness turns false for the drain window
    /// while everything still serves, then WebSockets are told to go away, the public listener
    /// stops accepting, in-flight requests finish, and whatever is left after the deadline is
    /// cut. The admin listener answers (readiness 503) until the very end.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let metrics =
            serve::Metrics::register(&self.registry).context("registering HTTP metrics")?;
        let admin_router = ops::router(ops::OpsState {
            registry: self.registry.clone(),
            store: self.store.clone(),
            draining: self.draining.clone(),
            db_runtime: tokio::runtime::Handle::current(),
        });
        let (admin_stop, admin_stop_rx) = tokio::sync::oneshot::channel();
        let admin_done =
            serve::spawn_admin(self.admin, admin_router, metrics.clone(), admin_stop_rx)
                .context("starting the admin listener")?;

        let ticker = self.hub.spawn_ticker(Duration::from_secs(1));
        // The job worker (the outbox's sending): stopped after HTTP has drained, so a mail
        // recorded by a last request is still picked up; what it cannot finish in its grace
        // period runs again when its lease expires (on this or another node).
        // Handlers: sending the outbox's mails, and turning due appointment reminders and care
        // reminders (recalls) into mails.
        let mut handlers = consultroom_clinic::mail::sender::MailSender::handlers(&self.clinic);
        handlers.extend(consultroom_clinic::appointments::ReminderSender::handlers(
            &self.clinic,
        ));
        handlers.extend(consultroom_clinic::recalls::RecallSender::handlers(
            &self.clinic,
        ));
        let jobs = consultroom_clinic::jobs::worker::Worker::spawn(
            &self.clinic,
            handlers,
            self.jobs.clone(),
        );
        let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
        let draining = self.draining.clone();
        let hub = self.hub.clone();
        let window = self.drain_window;
        let signal = tokio::spawn(async move {
            shutdown.await;
            tracing::info!(
                window_secs = window.as_secs(),
                "shutting down: /readyz reports draining"
            );
            draining.store(true, Ordering::SeqCst);
            tokio::time::sleep(window).await;
            tracing::info!("draining connections");
            hub.drain();
            let _ = stop_tx.send(true);
        });

        serve::serve(
            self.http,
            "public",
            self.router,
            self.limits,
            metrics,
            async move {
                // A dropped sender (the signal task gone) stops too.
                let _ = stop_rx.wait_for(|v| *v).await;
            },
            self.shutdown_deadline,
        )
        .await;
        signal.abort();
        ticker.abort();
        // Answered requests whose work runs after the answer (forgot password) record their
        // mails before the worker stops.
        if !self.clinic.finish_background(Duration::from_secs(10)).await {
            tracing::warn!("background work still running at shutdown was cut off");
        }
        jobs.shutdown().await;
        self.sfu.shutdown().await;
        self.store.close().await;
        let _ = admin_stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(2), admin_done).await;
        Ok(())
    }
}
