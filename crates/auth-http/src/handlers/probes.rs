//! The probes of a load balancer or an orchestrator: liveness and readiness. They sit
//! outside the session layer (no session is ever loaded or created for them) and their
//! access lines are logged at debug, not info.

use std::time::Duration;

use auth_domain::readiness::Readiness;
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
/// readiness.
pub(crate) fn routes<P: Readiness>(store: P) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(documented!(healthz))
        .routes(documented!(readyz::<P>))
        .with_state(store)
}

/// A probe's answer.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ProbeStatus {
    /// `ok`, or `unavailable` (readiness only).
    #[schema(value_type = String)]
    status: &'static str,
}

/// `GET /healthz`: 200 `{"status":"ok"}`.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "service",
    responses((status = 200, description = "The process serves", body = ProbeStatus)),
)]
pub(crate) async fn healthz() -> Response {
    answer(StatusCode::OK, "ok")
}

/// `GET /readyz`: 200 `{"status":"ok"}` when the database answers a trivial query within
/// a second; otherwise 503 `{"status":"unavailable"}` with `Retry-After`.
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
pub(crate) async fn readyz<P: Readiness>(State(store): State<P>) -> Response {
    match tokio::time::timeout(READY_WITHIN, store.ping()).await {
        Ok(Ok(())) => answer(StatusCode::OK, "ok"),
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
    let mut response = answer(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    response
}

/// `{"status": status}`, never cached: a cached probe answer would hide a change.
fn answer(code: StatusCode, status: &'static str) -> Response {
    let mut response = (code, Json(ProbeStatus { status })).into_response();
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
