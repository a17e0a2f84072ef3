//! The HTTP/1 server in front of the router, with what `axum::serve` lacks against slow
//! and hostile clients: a deadline on request headers (which also ends idle kept-alive
//! connections) and on each write of an answer, limits on the size and number of headers
//! (431), a cap on open connections and a share of it per client address, a listen
//! backlog of our choosing, and a graceful shutdown that refuses new connections at once
//! and waits a bounded time for requests in flight.
//!
//! When `MAX_CONNECTIONS` connections are open, the loop stops accepting: new connections
//! wait in the kernel's listen queue (the backlog, bounded by `somaxconn`) and are served
//! as soon as one closes, and clients beyond the backlog are refused by the kernel (or
//! retry their SYN). Waiting costs the process no descriptor and no memory, and a normal
//! client is only delayed until the header timeout closes a stalled connection; accepting
//! and closing at once would instead turn every burst into errors.

use std::{
    future::Future,
    io,
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use axum::{extract::ConnectInfo, Router};
use hyper::{body::Incoming, server::conn::http1, Request};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore},
};
use tower::ServiceExt as _;

mod per_address;
mod write_deadline;

pub(crate) use per_address::PerAddress;
use write_deadline::WriteDeadline;

/// The most header fields a request may carry; more are answered 431. Browsers send about
/// twenty; hyper's default, kept.
const MAX_HEADERS: usize = 100;

/// The most bytes a connection buffers while reading a request head (request line and
/// headers); more are answered 431. Just above the longest URI hyper accepts (64 KiB),
/// so a path that long is still a 414, and small enough that 10,000 connections holding a
/// full buffer each stay under a GiB (hyper's default is about 400 KiB).
const MAX_HEAD_BYTES: usize = 80 * 1024;

/// Descriptors kept for everything but client connections, besides the database pool:
/// the listeners, stdio, log files, SQLite's database and journal files, DNS lookups.
const RESERVED_DESCRIPTORS: u64 = 128;

/// How the transport treats clients.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Deadline for a request's headers, and for the next request on an idle connection
    /// (`HEADER_READ_TIMEOUT`).
    pub(crate) header_read_timeout: Duration,
    /// The most connections open at once (`MAX_CONNECTIONS`, after [`connection_cap`]).
    pub(crate) max_connections: usize,
    /// How long requests in flight may take once shutdown starts (`SHUTDOWN_TIMEOUT`).
    pub(crate) shutdown_timeout: Duration,
    /// How long one write of an answer may wait for the client to read (`WRITE_TIMEOUT`).
    pub(crate) write_timeout: Duration,
}

/// Binds `host:port` with a listen queue of `backlog` connections (the kernel caps it at
/// `net.core.somaxconn`). tokio's `TcpListener::bind` asks for 1024 on Linux but the
/// standard library's for 128: ours is explicit, so that a burst of new connections waits
/// in the queue instead of costing clients a one-second SYN retry.
pub(crate) async fn bind(host: &str, port: u16, backlog: u32) -> io::Result<TcpListener> {
    let mut last_error = None;
    for addr in tokio::net::lookup_host((host, port)).await? {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        // As std's bind: a restart may listen again while old connections linger.
        socket.set_reuseaddr(true)?;
        match socket.bind(addr).and_then(|()| socket.listen(backlog)) {
            Ok(listener) => return Ok(listener),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        io::Error::new(io::ErrorKind::AddrNotAvailable, "the host names no address")
    }))
}

/// Raises the soft limit on open descriptors to the hard limit, so that the connection cap,
/// not the kernel, decides when clients wait. Returns the limit now in force, `None` when
/// it cannot be read (the cap then applies as configured).
pub(crate) fn raise_descriptor_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(e) => {
            tracing::warn!("cannot raise the open-file limit: {e}");
            rlimit::Resource::NOFILE.get().ok().map(|(soft, _)| soft)
        }
    }
}

/// `configured` connections, or fewer when the descriptor limit would run out first: each
/// connection is one descriptor, and the database pool and the process need theirs.
pub(crate) fn connection_cap(configured: usize, descriptors: Option<u64>, pool: u32) -> usize {
    let Some(descriptors) = descriptors else {
        return configured;
    };
    let available = descriptors.saturating_sub(RESERVED_DESCRIPTORS + u64::from(pool));
    let available = usize::try_from(available).unwrap_or(usize::MAX).max(1);
    if available < configured {
        tracing::warn!(
            "MAX_CONNECTIONS lowered from {configured} to {available}: the open-file limit is \
             {descriptors} (raise it with `ulimit -n` or LimitNOFILE=)"
        );
    }
    configured.min(available)
}

/// Serves `router` on `listener` until `shutdown` completes; then stops accepting (new
/// connections are refused), and waits at most `limits.shutdown_timeout` for the requests
/// in flight.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    per_address: PerAddress,
    shutdown: impl Future<Output = ()>,
) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(MAX_HEADERS)
        .max_header_size(MAX_HEAD_BYTES)
        .max_buf_size(MAX_HEAD_BYTES)
        .keep_alive(true);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = connection_permit(&permits, limits.max_connections) => permit,
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(&e).await;
                    continue;
                }
            },
        };
        let Some(slot) = per_address.admit(peer.ip()) else {
            refused_per_address(peer);
            continue;
        };
        // Small JSON answers: no reason to let Nagle hold them back.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
        let stream = WriteDeadline::new(stream, limits.write_timeout);
        serve_connection(&http, &graceful, &router, stream, peer, (permit, slot));
    }
    // Closing the listener now: from here on, a new connection is refused by the kernel
    // instead of waiting in a queue nobody reads.
    drop(listener);
    let open = graceful.count();
    tracing::info!(
        "stopped accepting; waiting up to {:?} for {open} open connection(s)",
        limits.shutdown_timeout
    );
    if tokio::time::timeout(limits.shutdown_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "connections still open after SHUTDOWN_TIMEOUT ({:?}): closing them",
            limits.shutdown_timeout
        );
    }
}

/// A permit for one more connection: at once when below the cap, else once a connection
/// closes (saying so once per episode).
async fn connection_permit(permits: &Arc<Semaphore>, cap: usize) -> OwnedSemaphorePermit {
    if let Ok(permit) = Arc::clone(permits).try_acquire_owned() {
        return permit;
    }
    if let Some(suppressed) = AT_CAPACITY_LOG.admit() {
        tracing::warn!(
            max_connections = cap,
            suppressed,
            "MAX_CONNECTIONS reached: new connections wait in the listen queue"
        );
    }
    // Never closed: the semaphore lives as long as the loop.
    Arc::clone(permits)
        .acquire_owned()
        .await
        .unwrap_or_else(|_| unreachable!("the connection semaphore is never closed"))
}

/// An accept that failed: a connection reset before it was accepted is the client's
/// business; anything else (out of descriptors, out of memory) is waited out for a moment
/// instead of spinning.
async fn accept_failed(error: &io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!("cannot accept a connection: {error}");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// A connection from an address that holds `MAX_CONNECTIONS_PER_ADDRESS` already: closed
/// at once (dropped), counted, and logged at most a line a second.
fn refused_per_address(peer: SocketAddr) {
    metrics::counter!(REFUSED_PER_ADDRESS_METRIC).increment(1);
    if let Some(suppressed) = PER_ADDRESS_LOG.admit() {
        tracing::warn!(
            %peer,
            suppressed,
            "MAX_CONNECTIONS_PER_ADDRESS reached: closed a new connection from this address"
        );
    }
}

/// Serves one connection on its own task, holding `permit` until it closes.
fn serve_connection(
    http: &http1::Builder,
    graceful: &GracefulShutdown,
    router: &Router,
    stream: WriteDeadline<TcpStream>,
    peer: SocketAddr,
    permit: (OwnedSemaphorePermit, per_address::Slot),
) {
    let answered = Arc::new(AtomicBool::new(false));
    let service = {
        let router = router.clone();
        let answered = Arc::clone(&answered);
        hyper::service::service_fn(move |mut request: Request<Incoming>| {
            answered.store(true, Ordering::Relaxed);
            // What axum's `ConnectInfo` extractor reads: a login records the peer.
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request)
        })
    };
    let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
    tokio::spawn(async move {
        let _permit = permit;
        if let Err(e) = connection.await {
            connection_failed(&e, peer, answered.load(Ordering::Relaxed));
        }
    });
}

/// A connection ended in error. A header timeout on a connection that never sent a whole
/// request is a slow (or hostile) client: counted and logged, at most a line a second.
/// On a connection that was answered, it is only an idle keep-alive ending.
fn connection_failed(error: &hyper::Error, peer: SocketAddr, answered: bool) {
    if error.is_timeout() && !answered {
        metrics::counter!(SLOW_CLIENTS_METRIC).increment(1);
        if let Some(suppressed) = SLOW_CLIENT_LOG.admit() {
            tracing::warn!(
                %peer,
                suppressed,
                "closed a connection that did not send its headers within HEADER_READ_TIMEOUT"
            );
        }
    } else {
        tracing::debug!(%peer, "connection ended: {error}");
    }
}

/// `http_slow_clients_total`: connections closed for not sending their headers in time.
const SLOW_CLIENTS_METRIC: &str = "http_slow_clients_total";

/// `http_connections_refused_per_address_total`: connections closed at once because their
/// address held `MAX_CONNECTIONS_PER_ADDRESS`.
pub(crate) const REFUSED_PER_ADDRESS_METRIC: &str = "http_connections_refused_per_address_total";

static PER_ADDRESS_LOG: auth_http::LogLimiter = auth_http::LogLimiter::new();
static SLOW_CLIENT_LOG: auth_http::LogLimiter = auth_http::LogLimiter::new();
static AT_CAPACITY_LOG: auth_http::LogLimiter = auth_http::LogLimiter::new();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_room_for_the_pool_and_the_process() {
        assert_eq!(connection_cap(10_000, Some(1_048_576), 10), 10_000);
        assert_eq!(connection_cap(10_000, Some(1024), 10), 1024 - 128 - 10);
        assert_eq!(connection_cap(10_000, None, 10), 10_000);
        assert_eq!(connection_cap(10_000, Some(16), 10), 1, "never zero");
    }
}
