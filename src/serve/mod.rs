//! Our own accept loop (instead of `axum::serve`), so that slow or idle clients cannot hold the
//! server's sockets: per-connection header, idle, body-rate and stalled-write timeouts
//! (`activity`), a global and a per-source connection cap (`limiter`), a back-off when accept
//! fails for want of file descriptors, and a graceful drain with a deadline after which what is
//! left is cut. The admin listener runs the same loop on its own thread and runtime
//! (`spawn_admin`), so a saturated main runtime cannot starve `/healthz`.

mod activity;
pub mod fdlimit;
mod limiter;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};
use tokio::net::TcpListener;
use tower::ServiceExt;

use activity::{Activity, InFlight, MinRateBody, TrackedIo};
pub use activity::{Closed, Timeouts};
pub use limiter::Refused;
use limiter::{Limiter, Slot};

use crate::config::ServeArgs;

/// The limits of one listener.
#[derive(Debug, Clone)]
pub struct Limits {
    pub timeouts: Timeouts,
    /// Connections open at once on this listener.
    pub max_connections: usize,
    /// Connections open at once from one source (peer address; IPv6 by /64).
    pub max_per_source: usize,
    /// Peers held to the global cap only (trusted reverse proxies).
    pub unlimited_sources: Vec<ipnet::IpNet>,
}

/// Bytes per second a request body must keep up after its grace time (a slow mobile uplink
/// manages ten times this).
pub const BODY_MIN_BYTES_PER_SEC: u64 = 1024;

impl Limits {
    /// The public listener's limits from the flags; the global cap defaults to the open-file
    /// limit less `fdlimit::HEADROOM`.
    pub fn public(args: &ServeArgs) -> Limits {
        Limits {
            timeouts: Timeouts {
                header: Duration::from_secs(args.http_header_timeout_secs),
                idle: Duration::from_secs(args.http_idle_timeout_secs),
                body_grace: Duration::from_secs(args.http_body_timeout_secs),
                body_min_rate: BODY_MIN_BYTES_PER_SEC,
            },
            max_connections: match args.http_max_connections {
                0 => fdlimit::connection_cap(fdlimit::soft()),
                n => n,
            },
            max_per_source: args.http_max_connections_per_source,
            unlimited_sources: args.trusted_proxies.clone(),
        }
    }

    /// The admin listener's: few connections (monitoring and a scraper), short timeouts.
    pub fn admin() -> Limits {
        Limits {
            timeouts: Timeouts {
                header: Duration::from_secs(5),
                idle: Duration::from_secs(30),
                body_grace: Duration::from_secs(5),
                body_min_rate: BODY_MIN_BYTES_PER_SEC,
            },
            max_connections: 64,
            max_per_source: 64,
            unlimited_sources: Vec::new(),
        }
    }
}

/// The connection metrics of every listener (`listener` label: `public`, `admin`).
#[derive(Clone)]
pub struct Metrics {
    open: IntGaugeVec,
    refused: IntCounterVec,
    closed: IntCounterVec,
    accept_errors: IntCounterVec,
}

impl Metrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Metrics> {
        let m = Metrics {
            open: IntGaugeVec::new(
                Opts::new(
                    "consultroom_http_connections_open",
                    "HTTP connections open now (WebSockets included)",
                ),
                &["listener"],
            )?,
            refused: IntCounterVec::new(
                Opts::new(
                    "consultroom_http_connections_refused_total",
                    "HTTP connections closed at accept because a connection cap was reached",
                ),
                &["listener", "reason"],
            )?,
            closed: IntCounterVec::new(
                Opts::new(
                    "consultroom_http_connections_timed_out_total",
                    "HTTP connections closed by the server because the client was too slow",
                ),
                &["listener", "reason"],
            )?,
            accept_errors: IntCounterVec::new(
                Opts::new(
                    "consultroom_http_accept_errors_total",
                    "Failed accepts (e.g. no file descriptor left)",
                ),
                &["listener"],
            )?,
        };
        registry.register(Box::new(m.open.clone()))?;
        registry.register(Box::new(m.refused.clone()))?;
        registry.register(Box::new(m.closed.clone()))?;
        registry.register(Box::new(m.accept_errors.clone()))?;
        Ok(m)
    }
}

/// Serve `router` on `listener` until `stop` resolves; then stop accepting, let the
/// connections finish what they are doing (idle ones close at once), and after `deadline` cut
/// whatever is left. Upgraded connections (WebSockets) are not waited for: the hub drains them.
pub async fn serve(
    listener: TcpListener,
    name: &'static str,
    router: Router,
    limits: Limits,
    metrics: Metrics,
    stop: impl Future<Output = ()>,
    deadline: Duration,
) {
    let limiter = Limiter::new(
        limits.max_connections,
        limits.max_per_source,
        limits.unlimited_sources.clone(),
        metrics.open.with_label_values(&[name]),
    );
    let timeouts = Arc::new(limits.timeouts);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Our watchdog times headers (hyper's header_read_timeout would also cut idle keep-alive
    // connections after the header timeout, and does not cover the HTTP/2 preface sniffing).
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .max_buf_size(64 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(64)
        // CONNECT protocol for WebSockets over HTTP/2, as axum::serve had it.
        .enable_connect_protocol();
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let (cut_tx, cut_rx) = tokio::sync::watch::channel(false);
    let mut errors = AcceptErrors::default();
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut stop => break,
            r = listener.accept() => r,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                if !is_connection_error(&e) {
                    metrics.accept_errors.with_label_values(&[name]).inc();
                    errors.note(name, &e);
                    // Out of file descriptors, most likely: retrying at once would spin.
                    tokio::select! {
                        () = &mut stop => break,
                        () = tokio::time::sleep(Duration::from_millis(50)) => {}
                    }
                }
                continue;
            }
        };
        let slot = match limiter.acquire(peer.ip()) {
            Ok(s) => s,
            Err(why) => {
                // Accept and close at once, so the backlog does not fill up behind it.
                metrics
                    .refused
                    .with_label_values(&[name, why.label()])
                    .inc();
                drop(stream);
                continue;
            }
        };
        // Small frames (signalling, chat) must leave at once: without TCP_NODELAY, Nagle's
        // algorithm holds a frame until the previous one is acknowledged, and the peer's
        // delayed ACK makes that ~40 ms (measured: chat delivery p99 45 ms → docs/benchmarks.md).
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(
            stream,
            peer,
            slot,
            router.clone(),
            builder.clone(),
            timeouts.clone(),
            graceful.watcher(),
            cut_rx.clone(),
            metrics.closed.clone(),
            name,
        ));
    }
    drop(listener);
    if tokio::time::timeout(deadline, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            listener = name,
            "shutdown deadline reached; closing remaining connections"
        );
    }
    let _ = cut_tx.send(true);
}

#[allow(clippy::too_many_arguments)]
async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    slot: Slot,
    router: Router,
    builder: Arc<auto::Builder<TokioExecutor>>,
    timeouts: Arc<Timeouts>,
    watcher: hyper_util::server::graceful::Watcher,
    mut cut: tokio::sync::watch::Receiver<bool>,
    closed: IntCounterVec,
    name: &'static str,
) {
    let activity = Activity::new();
    let io = TokioIo::new(TrackedIo::new(stream, activity.clone(), slot));
    let service = ConnService {
        router,
        peer,
        activity: activity.clone(),
        timeouts: timeouts.clone(),
    };
    let conn = builder
        .serve_connection_with_upgrades(io, service)
        .into_owned();
    let conn = watcher.watch(conn);
    tokio::select! {
        r = conn => {
            if let Err(e) = r {
                tracing::trace!(error = %e, "connection ended with an error");
            }
        }
        why = activity::watchdog(&activity, &timeouts) => {
            // Dropping the connection closes the socket.
            closed.with_label_values(&[name, why.label()]).inc();
            tracing::debug!(listener = name, reason = why.label(), "closed a slow connection");
        }
        _ = cut.wait_for(|c| *c) => {}
    }
}

/// The router for one connection: the peer address as `ConnectInfo` (the walk-in and login
/// limits key on it), request bodies held to the minimum rate, requests tracked in flight.
#[derive(Clone)]
struct ConnService {
    router: Router,
    peer: SocketAddr,
    activity: Arc<Activity>,
    timeouts: Arc<Timeouts>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl hyper::service::Service<hyper::Request<Incoming>> for ConnService {
    type Response = hyper::Response<InFlight<Body>>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn call(&self, req: hyper::Request<Incoming>) -> Self::Future {
        let guard = self.activity.request_started();
        let mut req = req.map(|b| {
            if http_body::Body::is_end_stream(&b) {
                Body::new(b)
            } else {
                Body::new(MinRateBody::new(b, self.activity.clone(), &self.timeouts))
            }
        });
        req.extensions_mut().insert(ConnectInfo(self.peer));
        let router = self.router.clone();
        Box::pin(async move {
            let res = router.oneshot(req).await?;
            Ok(res.map(|b| InFlight::new(b, guard)))
        })
    }
}

/// Errors of one connection that accept reports (it was reset before we took it): retry at once.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    )
}

/// Logs failed accepts at most once per 10 s, with how many there were.
#[derive(Default)]
struct AcceptErrors {
    last: Option<Instant>,
    suppressed: u64,
}

impl AcceptErrors {
    fn note(&mut self, name: &str, e: &std::io::Error) {
        if self
            .last
            .is_some_and(|t| t.elapsed() < Duration::from_secs(10))
        {
            self.suppressed += 1;
            return;
        }
        tracing::error!(
            listener = name,
            error = %e,
            similar_since_last_report = self.suppressed,
            "accepting a connection failed; backing off"
        );
        self.last = Some(Instant::now());
        self.suppressed = 0;
    }
}

/// Run the admin listener on its own OS thread with its own current-thread runtime, so that a
/// main runtime busy with (or starved by) public traffic cannot starve health checks. It serves
/// until `stop` resolves or is dropped; the returned receiver resolves when it has finished.
pub fn spawn_admin(
    listener: TcpListener,
    router: Router,
    metrics: Metrics,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> std::io::Result<tokio::sync::oneshot::Receiver<()>> {
    // Leave the main runtime's reactor: the admin runtime polls this socket itself.
    let listener = listener.into_std()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("consultroom-admin".into())
        .spawn(move || {
            runtime.block_on(async move {
                match TcpListener::from_std(listener) {
                    Ok(listener) => {
                        serve(
                            listener,
                            "admin",
                            router,
                            Limits::admin(),
                            metrics,
                            async move {
                                let _ = stop.await;
                            },
                            Duration::from_secs(1),
                        )
                        .await
                    }
                    Err(e) => tracing::error!(error = %e, "admin listener failed"),
                }
            });
            drop(runtime);
            let _ = done_tx.send(());
        })?;
    Ok(done_rx)
}
