//! A user's recent security activity.

use auth_domain::audit::{AuditLog, AuthEvent, EventKind};
use axum::{extract::State, Json};
use serde::Serialize;
use serde_json::{json, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    error::ApiError,
    login::CurrentUser,
    state::{AppState, Stores},
};

/// How many events `GET /v1/auth/events` shows.
const RECENT_EVENTS: u64 = 50;

/// One event as its user sees it.
#[derive(Debug, Serialize)]
struct EventBody {
    id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    kind: EventKind,
    ip: Option<String>,
    user_agent: Option<String>,
}

impl From<AuthEvent> for EventBody {
    fn from(event: AuthEvent) -> Self {
        Self {
            id: event.id,
            at: event.at,
            kind: event.kind,
            ip: event.ip.map(|ip| ip.to_string()),
            user_agent: event.user_agent,
        }
    }
}

/// `GET /v1/auth/events`: the user's most recent events, newest first.
pub(crate) async fn recent<B: Stores>(
    State(state): State<AppState<B>>,
    user: CurrentUser,
) -> Result<Json<Value>, ApiError> {
    let events: Vec<EventBody> = state
        .audit
        .log()
        .recent_for_user(user.owner.id, RECENT_EVENTS)
        .await
        .map_err(ApiError::internal)?
        .into_iter()
        .map(EventBody::from)
        .collect();
    Ok(Json(json!({ "events": events })))
}
