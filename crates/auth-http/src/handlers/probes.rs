//! The probes of a load balancer or an orchestrator: liveness and readiness. They sit
//! outside the session layer (no session is ever loaded or created for them) and their
//! access lines are logged at debug, not info.

use std::time::Duration;

use auth_domain::{breached::BreachedPasswords, readiness::Readiness};
use axum::{
    extract::State,
    response::{IntoResponse, Response},
    Json,
};
use http::{
    header::{CACHE_CONTROL, RETRY_AFTER},
    HeaderValue, StatusCode,
};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;

use crate::documented::documented;

/// Liveness: answers while the process serves, touching nothing else.
pub(crate) const HEALTHZ: &str = "/healthz";
/// Readiness: answers 200 only while the database does.
pub(crate) const READYZ: &str = "/readyz";
/// Both probes' routes.
pub(crate) const PATHS: [&str; 2] = [HEALTHZ, READYZ];

/// How long readiness waits for the database's answer.
const READY_WITHIN: Duration = Duration::from_secs(1);

/// When to ask again after a 503, in seconds: about a probe period.
const RETRY_AFTER_SECONDS: u32 = 5;

/// The probes' routes and their documentation, over the store whose database decides
/// readiness, telling the breached-password filter loaded, if any.
pub(crate) fn routes<P: Readiness>(
    store: P,
    breached: Option<&BreachedPasswords>,
) -> OpenApiRouter {
    let state = Probed {
        store,
        breached: breached.map(|filter| FilterStatus {
            loaded: true,
            count: filter.count(),
        }),
    };
    OpenApiRouter::new()
        .routes(documented!(healthz))
        .routes(documented!(readyz::<P>))
        .with_state(state)
}

/// What readiness asks and tells.
#[derive(Clone)]
pub(crate) struct Probed<P> {
    store: P,
    breached: Option<FilterStatus>,
}

/// A probe's answer.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ProbeStatus {
    /// `ok`, or `unavailable` (readiness only).
    #[schema(value_type = String)]
    status: &'static str,
    /// The breached-password filter (readiness only, when `BREACHED_PASSWORDS` is set).
    #[serde(skip_serializing_if = "Option::is_none")]
    breached_passwords: Option<FilterStatus>,
}

/// The breached-password filter, as loaded at start-up (start-up fails without it).
#[derive(Clone, Copy, Serialize, utoipa::ToSchema)]
pub(crate) struct FilterStatus {
    /// Always `true`: a filter that is configured is loaded, or the service did not start.
    loaded: bool,
    /// How many distinct hashes it holds.
    count: u64,
}

/// `GET /healthz`: 200 `{"status":"ok"}`.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "service",
    responses((status = 200, description = "The process serves", body = ProbeStatus)),
)]
pub(crate) async fn healthz() -> Response {
    answer(StatusCode::OK, "ok", None)
}

/// `GET /readyz`: 200 `{"status":"ok"}` when the database answers a trivial query within
/// a second, with `"breached_passwords": {"loaded": true, "count": N}` when a filter is
/// configured; otherwise 503 `{"status":"unavailable"}` with `Retry-After`.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "service",
    responses(
        (status = 200, description = "The database answers", body = ProbeStatus),
        (status = 503, description = "The database does not answer within a second",
            body = ProbeStatus,
            headers(("Retry-After" = u32, description = "Seconds until the next try"))),
    ),
)]
pub(crate) async fn readyz<P: Readiness>(State(probed): State<Probed<P>>) -> Response {
    match tokio::time::timeout(READY_WITHIN, probed.store.ping()).await {
        Ok(Ok(())) => answer(StatusCode::OK, "ok", probed.breached),
        // Debug, not warn: a probe asks every few seconds, and the database's failure is
        // logged by whatever else fails on it.
        Ok(Err(error)) => {
            tracing::debug!(%error, "not ready: the database failed");
            unavailable()
        }
        Err(_) => {
            tracing::debug!("not ready: the database did not answer within {READY_WITHIN:?}");
            unavailable()
        }
    }
}

fn unavailable() -> Response {
    let mut response = answer(StatusCode::SERVICE_UNAVAILABLE, "unavailable", None);
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    response
}

/// `{"status": status}`, with the filter's when given, never cached: a cached probe
/// answer would hide a change.
fn answer(
    code: StatusCode,
    status: &'static str,
    breached_passwords: Option<FilterStatus>,
) -> Response {
    let body = ProbeStatus {
        status,
        breached_passwords,
    };
    let mut response = (code, Json(body)).into_response();
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
