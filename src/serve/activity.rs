//! What one HTTP connection is doing, and the watchdog that closes it when a client is too slow.
//!
//! `Activity` is shared by the socket wrapper (`TrackedIo`: bytes read while idle, stalled
//! writes), the request body wrapper (`MinRateBody`: a minimum rate once its grace time is over)
//! and the response body wrapper (`InFlight`: a request counts until its response body is gone).
//! `watchdog` resolves with the reason when a deadline passes; the connection task then drops
//! the connection, which closes the socket. After a WebSocket upgrade the connection task is
//! gone, so none of this applies any more: the hub's own pings and timeouts govern the socket.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

/// The timeouts of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// A request's header must be complete this long after its first byte (for the first
    /// request of a connection: after the connection was accepted).
    pub header: Duration,
    /// A connection with no request in flight and no bytes arriving is closed after this long;
    /// so is one whose writes have made no progress for this long.
    pub idle: Duration,
    /// A request body may take this long before `body_min_rate` applies.
    pub body_grace: Duration,
    /// Bytes per second a request body must keep up, on average, once its grace time is over.
    pub body_min_rate: u64,
}

/// Why the server closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// The request header did not arrive in time.
    Header,
    /// No request and no bytes for the idle timeout.
    Idle,
    /// A request body arrived slower than the minimum rate.
    Body,
    /// The client did not read what we wrote.
    Write,
}

impl Closed {
    /// Metric label.
    pub fn label(self) -> &'static str {
        match self {
            Closed::Header => "header",
            Closed::Idle => "idle",
            Closed::Body => "body",
            Closed::Write => "write",
        }
    }

    fn code(self) -> u8 {
        match self {
            Closed::Header => 1,
            Closed::Idle => 2,
            Closed::Body => 3,
            Closed::Write => 4,
        }
    }

    fn from_code(c: u8) -> Option<Closed> {
        Some(match c {
            1 => Closed::Header,
            2 => Closed::Idle,
            3 => Closed::Body,
            4 => Closed::Write,
            _ => return None,
        })
    }
}

/// Shared state of one connection. Times are milliseconds since `epoch`, stored + 1 so that 0
/// means "not set".
pub struct Activity {
    epoch: Instant,
    in_flight: AtomicUsize,
    /// Requests seen so far (the first one gets the header timeout from the accept on).
    served: AtomicU64,
    idle_since: AtomicU64,
    header_started: AtomicU64,
    write_stalled: AtomicU64,
    aborted: AtomicU8,
    notify: Notify,
}

impl Activity {
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            epoch: Instant::now(),
            in_flight: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            idle_since: AtomicU64::new(1),
            header_started: AtomicU64::new(0),
            write_stalled: AtomicU64::new(0),
            aborted: AtomicU8::new(0),
            notify: Notify::new(),
        })
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    fn at(&self, stamp: u64, plus: Duration) -> Instant {
        self.epoch + Duration::from_millis(stamp - 1) + plus
    }

    /// A request's header is complete and it enters the router.
    pub fn request_started(self: &Arc<Self>) -> InFlightGuard {
        self.served.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlightGuard(self.clone())
    }

    /// Close the connection now (a request body was too slow).
    fn abort(&self, why: Closed) {
        let _ = self
            .aborted
            .compare_exchange(0, why.code(), Ordering::SeqCst, Ordering::SeqCst);
        self.notify.notify_one();
    }

    fn on_read(&self, n: usize) {
        if n > 0
            && self.in_flight.load(Ordering::SeqCst) == 0
            && self.header_started.load(Ordering::Relaxed) == 0
            && self.served.load(Ordering::Relaxed) > 0
        {
            // The next request's header has begun: its timeout runs from now.
            self.header_started.store(self.now(), Ordering::Relaxed);
            self.notify.notify_one();
        }
    }

    fn on_write<T>(&self, r: &Poll<std::io::Result<T>>) {
        match r {
            Poll::Pending => {
                if self.write_stalled.load(Ordering::Relaxed) == 0 {
                    self.write_stalled.store(self.now(), Ordering::Relaxed);
                    self.notify.notify_one();
                }
            }
            Poll::Ready(_) => {
                if self.write_stalled.load(Ordering::Relaxed) != 0 {
                    self.write_stalled.store(0, Ordering::Relaxed);
                }
            }
        }
    }

    /// The earliest deadline that applies now, and what passing it means.
    fn deadline(&self, t: &Timeouts) -> Option<(Instant, Closed)> {
        let mut best: Option<(Instant, Closed)> = None;
        let mut consider = |at: Instant, why: Closed| {
            if best.is_none_or(|(b, _)| at < b) {
                best = Some((at, why));
            }
        };
        let stalled = self.write_stalled.load(Ordering::Relaxed);
        if stalled != 0 {
            consider(self.at(stalled, t.idle), Closed::Write);
        }
        if self.in_flight.load(Ordering::SeqCst) == 0 {
            let idle_since = self.idle_since.load(Ordering::SeqCst);
            let header = self.header_started.load(Ordering::Relaxed);
            if self.served.load(Ordering::Relaxed) == 0 {
                consider(self.at(idle_since, t.header), Closed::Header);
            } else if header != 0 {
                consider(self.at(header, t.header), Closed::Header);
            } else {
                consider(self.at(idle_since, t.idle), Closed::Idle);
            }
        }
        best
    }
}

/// Resolves when the connection must be closed, with the reason.
pub async fn watchdog(a: &Activity, t: &Timeouts) -> Closed {
    loop {
        if let Some(why) = Closed::from_code(a.aborted.load(Ordering::SeqCst)) {
            return why;
        }
        match a.deadline(t) {
            Some((at, why)) if at <= Instant::now() => return why,
            Some((at, _)) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    () = a.notify.notified() => {}
                }
            }
            None => a.notify.notified().await,
        }
    }
}

/// Held while a request is in flight: from its header to the end of its response body.
pub struct InFlightGuard(Arc<Activity>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let a = &self.0;
        a.header_started.store(0, Ordering::Relaxed);
        a.idle_since.store(a.now(), Ordering::SeqCst);
        if a.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            // Idle now: the idle deadline starts.
            a.notify.notify_one();
        }
    }
}

/// The socket, reporting reads and stalled writes to the connection's `Activity`.
pub struct TrackedIo<T, G> {
    inner: T,
    activity: Arc<Activity>,
    /// The connection's slot in the listener's caps, released when the socket closes (also
    /// after a WebSocket upgrade, which takes this wrapper along).
    _slot: G,
}

impl<T, G> TrackedIo<T, G> {
    pub fn new(inner: T, activity: Arc<Activity>, slot: G) -> Self {
        TrackedIo {
            inner,
            activity,
            _slot: slot,
        }
    }
}

impl<T: AsyncRead + Unpin, G: Unpin> AsyncRead for TrackedIo<T, G> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            self.activity.on_read(buf.filled().len() - before);
        }
        r
    }
}

impl<T: AsyncWrite + Unpin, G: Unpin> AsyncWrite for TrackedIo<T, G> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.activity.on_write(&r);
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.activity.on_write(&r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request body that must keep a minimum average rate once its grace time is over: by time
/// `t` after the header, at least `rate × (t − grace)` bytes. This bounds a half-sent body (the
/// grace time) and a trickle, yet lets a large upload over a slow uplink take as long as it
/// needs. The clock only runs out while the handler waits for the body; a handler busy
/// elsewhere is not the client's fault.
pub struct MinRateBody<B> {
    inner: B,
    activity: Arc<Activity>,
    start: Instant,
    received: u64,
    grace: Duration,
    rate: u64,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<B> MinRateBody<B> {
    pub fn new(inner: B, activity: Arc<Activity>, t: &Timeouts) -> Self {
        MinRateBody {
            inner,
            activity,
            start: Instant::now(),
            received: 0,
            grace: t.body_grace,
            rate: t.body_min_rate.max(1),
            sleep: None,
        }
    }

    fn deadline(&self) -> Instant {
        self.start + self.grace + Duration::from_secs_f64(self.received as f64 / self.rate as f64)
    }
}

/// The request body arrived slower than the minimum rate.
#[derive(Debug, thiserror::Error)]
#[error("request body arrived too slowly")]
pub struct BodyTooSlow;

impl<B> HttpBody for MinRateBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.received += data.len() as u64;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let deadline = self.deadline();
                let sleep = self
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if sleep.deadline() != deadline {
                    sleep.as_mut().reset(deadline);
                }
                ready!(sleep.as_mut().poll(cx));
                // The connection goes too: a half-read body leaves it unusable anyway.
                self.activity.abort(Closed::Body);
                Poll::Ready(Some(Err(BodyTooSlow.into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that keeps its request in flight until it is sent (or dropped).
pub struct InFlight<B> {
    inner: B,
    guard: Option<InFlightGuard>,
}

impl<B> InFlight<B> {
    pub fn new(inner: B, guard: InFlightGuard) -> Self {
        InFlight {
            inner,
            guard: Some(guard),
        }
    }
}

impl<B> HttpBody for InFlight<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let r = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if r.is_none() {
            self.guard = None;
        }
        Poll::Ready(r)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real time, scaled down (the crate's tokio has no test-util clock).
    const HEADER: Duration = Duration::from_millis(200);
    const IDLE: Duration = Duration::from_millis(500);

    fn timeouts() -> Timeouts {
        Timeouts {
            header: HEADER,
            idle: IDLE,
            body_grace: HEADER,
            body_min_rate: 1024,
        }
    }

    /// `d` is at least `expected` and not much more.
    fn about(d: Duration, expected: Duration) {
        assert!(
            d >= expected - Duration::from_millis(5) && d < expected + Duration::from_millis(150),
            "{d:?}, expected {expected:?}"
        );
    }

    #[tokio::test]
    async fn a_silent_connection_gets_the_header_timeout_from_the_accept() {
        let a = Activity::new();
        assert_eq!(watchdog(&a, &timeouts()).await, Closed::Header);
        about(a.epoch.elapsed(), HEADER);
    }

    #[tokio::test]
    async fn after_a_request_the_idle_timeout_applies_until_the_next_header_begins() {
        let a = Activity::new();
        drop(a.request_started());
        let t0 = Instant::now();
        assert_eq!(watchdog(&a, &timeouts()).await, Closed::Idle);
        about(t0.elapsed(), IDLE);

        let a = Activity::new();
        drop(a.request_started());
        let t0 = Instant::now();
        let watch = tokio::spawn({
            let a = a.clone();
            async move { watchdog(&a, &timeouts()).await }
        });
        tokio::task::yield_now().await;
        // The next request's first bytes: its header is due within the header timeout.
        a.on_read(5);
        assert_eq!(watch.await.unwrap(), Closed::Header);
        about(t0.elapsed(), HEADER);
    }

    #[tokio::test]
    async fn a_request_in_flight_has_no_deadline_unless_its_writes_stall() {
        let a = Activity::new();
        let guard = a.request_started();
        let t = timeouts();
        tokio::select! {
            _ = watchdog(&a, &t) => panic!("no deadline while a request is in flight"),
            () = tokio::time::sleep(2 * IDLE) => {}
        }
        a.on_write::<usize>(&Poll::Pending);
        let t0 = Instant::now();
        assert_eq!(watchdog(&a, &t).await, Closed::Write);
        about(t0.elapsed(), IDLE);
        drop(guard);
    }

    #[tokio::test]
    async fn a_slow_body_aborts_the_connection_after_its_grace_time() {
        let a = Activity::new();
        let _guard = a.request_started();
        // A body that sends 512 bytes, then nothing: due by grace + 0.5 s at 1 KiB/s.
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BoxError>>(1);
        tx.send(Ok(Frame::data(Bytes::from(vec![0u8; 512]))))
            .await
            .unwrap();
        let mut body = MinRateBody::new(StreamBody(rx), a.clone(), &timeouts());
        let t0 = Instant::now();
        let first = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        assert!(matches!(first, Some(Ok(_))));
        let r = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        assert!(matches!(r, Some(Err(_))));
        about(t0.elapsed(), HEADER + Duration::from_millis(500));
        assert_eq!(watchdog(&a, &timeouts()).await, Closed::Body);
        drop(tx);
    }

    struct StreamBody(tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, BoxError>>);

    impl HttpBody for StreamBody {
        type Data = Bytes;
        type Error = BoxError;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            self.0.poll_recv(cx)
        }
    }
}
