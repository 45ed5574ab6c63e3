//! The accept loop: HTTP/1 connections served by hyper with the bounds a public endpoint needs.
//!
//! Owns, per connection: a header-read timeout (a request's headers must arrive within
//! `limits.header_read_timeout_s` of its first byte), an idle timeout (a keep-alive connection with no new
//! request for `limits.idle_timeout_s` is closed), and a cap on connections open at once
//! (`limits.max_connections`): one more is answered `503` with a SCIM error and closed, rather than left to
//! fail `accept` once the process runs out of descriptors. An `accept` that fails (descriptors exhausted)
//! waits a moment and goes on. Shutdown stops accepting, lets every connection finish its request in flight,
//! and gives up after the grace period.
//!
//! hyper's only timer on a server connection is the header-read timeout, started when it waits for the next
//! request's head, that is, from the moment a keep-alive connection falls idle. [`ConnTimer`] gives that one
//! timer both meanings: until a byte of the next request arrives it is the idle timeout; from the first
//! byte, the header-read timeout. Knows nothing of SCIM: it serves whatever router it is given, except that
//! a list body a response hands off ([`super::list_body::Handoff`]) is sent as runs of borrowed pieces,
//! vectored, with the socket corked while one answer takes several writes.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use http_body::{Body, Frame, SizeHint};
use hyper::rt::{Sleep, Timer};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::list_body::{Handoff, ListBody, Run};
use crate::scim::error::ScimError;

/// Connection bounds (`limits.*`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConnLimits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    /// How long in-flight requests may take to finish once shutdown starts.
    pub shutdown_grace: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            max_connections: 1024,
            shutdown_grace: Duration::from_secs(8),
        }
    }
}

/// The address a request came from, in its extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub std::net::SocketAddr);

/// Connections open now, shared with `/metrics` and the tests.
#[derive(Debug, Default)]
pub struct ConnCounter(AtomicUsize);

impl ConnCounter {
    pub fn open(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// Decrements the count when a connection ends, however it ends.
struct Slot(Arc<ConnCounter>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serve `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    counter: Arc<ConnCounter>,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut refused_logged = tokio::time::Instant::now() - Duration::from_secs(60);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE / ENFILE and friends: the connection waits in the backlog; try again shortly.
                if refused_logged.elapsed() > Duration::from_secs(10) {
                    tracing::warn!(error = %e, "accepting a connection failed; retrying");
                    refused_logged = tokio::time::Instant::now();
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let open = counter.0.fetch_add(1, Ordering::Relaxed) + 1;
        let slot = Slot(counter.clone());
        if open > limits.max_connections {
            tokio::spawn(async move {
                refuse(stream).await;
                drop(slot);
            });
            continue;
        }
        tokio::spawn(serve_connection(
            stream,
            peer,
            router.clone(),
            limits,
            stop_rx.clone(),
            slot,
        ));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection finishes its request in flight, within the grace period.
    let deadline = tokio::time::Instant::now() + limits.shutdown_grace;
    while counter.open() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if counter.open() > 0 {
        tracing::warn!(
            open = counter.open(),
            "in-flight requests did not finish within {:?}; stopping anyway",
            limits.shutdown_grace
        );
    }
    Ok(())
}

/// One accepted connection: HTTP/1.1 with keep-alive, the header-read and idle timeouts, the peer's
/// address on every request, and a graceful end once `stop` turns true. `slot` counts it open until it ends.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: ConnLimits,
    mut stop: watch::Receiver<bool>,
    slot: Slot,
) {
    let activity = Arc::new(AtomicU64::new(0));
    let io = TokioIo::new(Counted {
        inner: stream,
        bytes: activity.clone(),
        corked: false,
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(ConnTimer {
            bytes: activity,
            header: limits.header_read_timeout,
            idle: limits.idle_timeout,
        })
        .header_read_timeout(limits.header_read_timeout)
        // Vectored: a ListResponse's runs (`Served::List`) go to the kernel as they lie, each resource's
        // stored bytes an iovec, with no copy into hyper's buffer first. Measured in `examples/load` at
        // 100,000 users by profile samples per request against the ceiling's: pages 1.24-1.35x vectored
        // against 1.31-1.52x flattened (the copy read every resource from memory once more); a single
        // resource 1.19x against 1.14x.
        .writev(true)
        .keep_alive(true);
    let service = tower::ServiceBuilder::new()
        .map_request(move |mut req: axum::http::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(PeerAddr(peer));
            req
        })
        .map_response(Served::of)
        .service(router);
    let conn = builder.serve_connection(io, TowerToHyperService::new(service));
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        }
        _ = async { let _ = stop.wait_for(|s| *s).await; } => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
    drop(slot);
}

/// The answer to a connection over the cap: a SCIM 503 with `Retry-After`, then close.
async fn refuse(mut stream: TcpStream) {
    let body = ScimError::new(
        503,
        None,
        "this service has as many connections open as it takes (limits.max_connections); retry shortly",
    )
    .to_json()
    .to_string();
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: {}\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n",
        crate::scim::SCIM_CONTENT_TYPE,
        body.len()
    );
    let write = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}

/// A response's body as this loop sends it: the router's, or a list handed off to be sent in runs of
/// pieces ([`Handoff`]).
enum Served {
    Router(axum::body::Body),
    List(ListBody),
}

impl Served {
    fn of(resp: axum::response::Response) -> axum::http::Response<Served> {
        let (mut parts, body) = resp.into_parts();
        match parts.extensions.remove::<Handoff>().and_then(|h| h.take()) {
            Some(list) => axum::http::Response::from_parts(parts, Served::List(list)),
            None => axum::http::Response::from_parts(parts, Served::Router(body)),
        }
    }
}

impl Body for Served {
    /// A frame of the router's bytes is a run of one piece.
    type Data = Run;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Run>, axum::Error>>> {
        match self.get_mut() {
            Served::Router(b) => Pin::new(b)
                .poll_frame(cx)
                .map(|f| f.map(|f| f.map(|f| f.map_data(Run::from)))),
            Served::List(l) => Poll::Ready(l.next_run().map(|r| Ok(Frame::data(r)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Served::Router(b) => b.is_end_stream(),
            Served::List(l) => l.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Served::Router(b) => b.size_hint(),
            Served::List(l) => l.size_hint(),
        }
    }
}

/// A connection's stream, counting the bytes read from it. A write hyper fills with as many buffers as it
/// gives one call ([`WRITEV_BUFFERS`]) has more behind it: the socket is corked until hyper flushes, so that
/// an answer written in several calls leaves in full segments rather than one push per call.
struct Counted {
    inner: TcpStream,
    bytes: Arc<AtomicU64>,
    corked: bool,
}

/// Buffers hyper passes to one vectored write at most.
const WRITEV_BUFFERS: usize = 64;

impl Counted {
    fn cork(&mut self, on: bool) {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let value: libc::c_int = on.into();
            // SAFETY: the descriptor is this stream's, open for as long as `self`; the option value is a
            // `c_int` passed with its size.
            unsafe {
                libc::setsockopt(
                    self.inner.as_raw_fd(),
                    libc::IPPROTO_TCP,
                    libc::TCP_CORK,
                    std::ptr::from_ref(&value).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
        self.corked = on;
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        }
        r
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.corked {
            self.cork(false);
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if bufs.len() >= WRITEV_BUFFERS && !self.corked {
            self.cork(true);
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The timer of one connection: its header-read timeout is the idle timeout until the next request's first
/// byte arrives, and the header-read timeout from then on (see the module docs).
#[derive(Clone)]
struct ConnTimer {
    bytes: Arc<AtomicU64>,
    header: Duration,
    idle: Duration,
}

#[allow(
    clippy::disallowed_types,
    reason = "hyper's Timer trait is written in std's Instant; it is converted to tokio's at once"
)]
impl Timer for ConnTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        Box::pin(tokio::time::sleep(duration).into_sleep())
    }

    fn sleep_until(&self, deadline: std::time::Instant) -> Pin<Box<dyn Sleep>> {
        // hyper asks for `now + header_read_timeout`: the wait for a request head starts now.
        let started = self.started(deadline);
        Box::pin(HeadWait {
            bytes: self.bytes.clone(),
            at_start: self.bytes.load(Ordering::Relaxed),
            started,
            first_byte: None,
            header: self.header,
            idle: self.idle,
            sleep: Box::pin(tokio::time::sleep_until(
                started + self.header.min(self.idle),
            )),
        })
    }

    /// hyper resets its one timer twice a request (to the head's wait as the request starts, then far ahead
    /// once the head is read): the wait is started again in place rather than built anew.
    fn reset(&self, sleep: &mut Pin<Box<dyn Sleep>>, new_deadline: std::time::Instant) {
        match sleep.as_mut().downcast_mut_pin::<HeadWait>() {
            Some(wait) => {
                let wait = wait.get_mut();
                wait.at_start = self.bytes.load(Ordering::Relaxed);
                wait.started = self.started(new_deadline);
                wait.first_byte = None;
                let first = wait.started + self.header.min(self.idle);
                wait.sleep.as_mut().reset(first);
            }
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

#[allow(
    clippy::disallowed_types,
    reason = "hyper's Timer trait is written in std's Instant; it is converted to tokio's at once"
)]
impl ConnTimer {
    /// When a wait hyper asks to end at `deadline` (`now + header_read_timeout`) started.
    fn started(&self, deadline: std::time::Instant) -> tokio::time::Instant {
        let deadline = tokio::time::Instant::from_std(deadline);
        deadline.checked_sub(self.header).unwrap_or(deadline)
    }
}

/// Adapts tokio's `Sleep` to hyper's.
trait IntoSleep {
    fn into_sleep(self) -> TokioSleep;
}

impl IntoSleep for tokio::time::Sleep {
    fn into_sleep(self) -> TokioSleep {
        TokioSleep(Box::pin(self))
    }
}

struct TokioSleep(Pin<Box<tokio::time::Sleep>>);

impl Future for TokioSleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

impl Sleep for TokioSleep {}

/// One wait for a request head.
struct HeadWait {
    bytes: Arc<AtomicU64>,
    at_start: u64,
    started: tokio::time::Instant,
    /// When a byte of the request was first seen (to within one check).
    first_byte: Option<tokio::time::Instant>,
    header: Duration,
    idle: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Future for HeadWait {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            let now = tokio::time::Instant::now();
            if self.first_byte.is_none() && self.bytes.load(Ordering::Relaxed) > self.at_start {
                self.first_byte = Some(now);
            }
            let due = match self.first_byte {
                Some(t) => t + self.header,
                None => self.started + self.idle,
            };
            if now >= due {
                return Poll::Ready(());
            }
            // Until the first byte, look again every header-read period, so a request that starts arriving
            // gets its header-read timeout counted from about then.
            let next = match self.first_byte {
                Some(_) => due,
                None => due.min(now + self.header),
            };
            // The timer moves only when its deadline does (a reset takes the timer wheel's lock).
            if self.sleep.deadline() != next {
                self.sleep.as_mut().reset(next);
            }
            if self.sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

impl Sleep for HeadWait {}
