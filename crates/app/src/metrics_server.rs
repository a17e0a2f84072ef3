//! The Prometheus endpoint, `GET /metrics`, on its own listener (`METRICS_ADDR`), apart
//! from the API so that it is never public by accident.
//!
//! The recorder is process-wide (the `metrics` facade has one global recorder): it is
//! installed by the first server that asks for it, and every later one in the process
//! (tests start many) renders the same figures. Until then nothing is recorded.

use std::{
    net::SocketAddr,
    sync::{Mutex, PoisonError},
    time::Duration,
};

use crate::{transport, AbortOnDrop};
use anyhow::Context as _;
use auth_http::metrics::{
    AUTH_LOGINS, AUTH_REGISTRATIONS, DATABASE_ERRORS, FORWARDED_FOR_IGNORED, HTTP_REQUESTS,
    HTTP_REQUEST_DURATION, SECURE_COOKIE_OVER_HTTP,
};
use auth_store_sql::SESSIONS_PURGED_METRIC as SESSIONS_PURGED;
use axum::{
    http::{header::CONTENT_TYPE, StatusCode},
    response::IntoResponse,
    routing::get,
    Router,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

// The hasher's two are private to `auth_domain`; named again here to be described.
/// Recorded by the password hasher (`auth_domain`): how long a hash waited for a slot.
const PASSWORD_HASH_WAIT: &str = "password_hash_wait_seconds";
/// Recorded by the password hasher: hashes running now.
const PASSWORD_HASH_IN_FLIGHT: &str = "password_hash_in_flight";

/// Upper bounds of the latency buckets, in seconds: from a cached read to a slow hash
/// under load.
const SECONDS_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// How often histograms are drained when nobody scrapes, so that memory stays bounded.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The Prometheus exposition content type (text format 0.0.4).
const EXPOSITION: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The running metrics endpoint; it stops when dropped.
pub(crate) struct MetricsServer {
    _serve: AbortOnDrop<()>,
    _upkeep: AbortOnDrop<()>,
}

/// Connections the metrics endpoint serves at once: scrapers, not the public.
const METRICS_CONNECTIONS: usize = 16;
/// Its listen queue.
const METRICS_BACKLOG: u32 = 64;

/// Listens on `addr` and serves `GET /metrics` there until the result is dropped, through
/// the same transport as the API: the header deadline and write timeout of `limits`, and
/// a small connection cap of its own, so that a client that connects and says nothing
/// cannot hold the endpoint.
pub(crate) async fn start(
    addr: SocketAddr,
    limits: transport::Limits,
) -> anyhow::Result<MetricsServer> {
    let listener = transport::bind(&addr.ip().to_string(), addr.port(), METRICS_BACKLOG)
        .await
        .with_context(|| format!("cannot listen on {addr} (METRICS_ADDR)"))?;
    let handle = recorder()?;
    let bound = listener.local_addr().unwrap_or(addr);
    let routes = Router::new().route(
        "/metrics",
        get({
            let handle = handle.clone();
            move || async move { ([(CONTENT_TYPE, EXPOSITION)], handle.render()) }
        }),
    );
    let app = routes.fallback(|| async { StatusCode::NOT_FOUND.into_response() });
    let limits = transport::Limits {
        max_connections: METRICS_CONNECTIONS,
        shutdown_timeout: Duration::ZERO,
        ..limits
    };
    let per_address = transport::PerAddress::new(0, 128, Vec::new());
    let serve = tokio::spawn(transport::serve(
        listener,
        app,
        limits,
        per_address,
        std::future::pending(),
    ));
    let upkeep = tokio::spawn(async move {
        let mut ticks = tokio::time::interval(UPKEEP_EVERY);
        loop {
            ticks.tick().await;
            handle.run_upkeep();
        }
    });
    tracing::info!("metrics on http://{bound}/metrics");
    Ok(MetricsServer {
        _serve: AbortOnDrop(serve),
        _upkeep: AbortOnDrop(upkeep),
    })
}

/// The process's recorder, installed (with its buckets and descriptions) on first use.
fn recorder() -> anyhow::Result<PrometheusHandle> {
    static HANDLE: Mutex<Option<PrometheusHandle>> = Mutex::new(None);
    let mut installed = HANDLE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(handle) = installed.as_ref() {
        return Ok(handle.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &SECONDS_BUCKETS)
        .context("histogram buckets")?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)
        .context("another metrics recorder is installed in this process")?;
    describe();
    *installed = Some(handle.clone());
    Ok(handle)
}

/// The `# HELP` line of each metric.
fn describe() {
    metrics::describe_counter!(HTTP_REQUESTS, "HTTP requests answered, by route template");
    metrics::describe_histogram!(
        HTTP_REQUEST_DURATION,
        metrics::Unit::Seconds,
        "Time to the response head, by route template"
    );
    metrics::describe_counter!(
        AUTH_LOGINS,
        "Logins by outcome: succeeded, failed, throttled, rejected, error"
    );
    metrics::describe_counter!(
        AUTH_REGISTRATIONS,
        "Registrations by outcome: succeeded, invalid, taken, throttled, rejected, error"
    );
    metrics::describe_counter!(
        DATABASE_ERRORS,
        "Requests that failed on the database: unavailable (503) or unexpected (500)"
    );
    metrics::describe_counter!(SESSIONS_PURGED, "Expired sessions deleted by the purge");
    metrics::describe_counter!(
        crate::transport::REFUSED_PER_ADDRESS_METRIC,
        "Connections closed at once: their address held MAX_CONNECTIONS_PER_ADDRESS"
    );
    metrics::describe_counter!(
        auth_domain::throttled_events::AUDIT_EVENTS_DROPPED,
        "Audit events not written: the queue of throttled logins was full, or the write failed"
    );
    metrics::describe_counter!(
        FORWARDED_FOR_IGNORED,
        "Requests from a loopback peer with X-Forwarded-For while TRUSTED_PROXIES is empty"
    );
    metrics::describe_counter!(
        SECURE_COOKIE_OVER_HTTP,
        "Logins that set a Secure session cookie over plain http, which browsers drop"
    );
    metrics::describe_histogram!(
        PASSWORD_HASH_WAIT,
        metrics::Unit::Seconds,
        "Time a password hash waited for a hashing slot"
    );
    metrics::describe_gauge!(PASSWORD_HASH_IN_FLIGHT, "Password hashes running now");
    metrics::describe_counter!(
        crate::mail::SENT_METRIC,
        "Mails handed to the SMTP server (or written to MAIL_DIR), by kind"
    );
    metrics::describe_counter!(
        crate::mail::RETRIED_METRIC,
        "Failed sends of mail that will be retried after a backoff, by kind"
    );
    metrics::describe_counter!(
        crate::mail::FAILED_METRIC,
        "Mails given up on after their last attempt, by kind"
    );
    metrics::describe_gauge!(
        crate::mail::DEPTH_METRIC,
        "Mails pending in the outbox, as the worker last counted them"
    );
}
