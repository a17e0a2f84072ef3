//! A user's recent security activity.

use auth_domain::audit::{Actor, AuditLog, AuthEvent, EventKind};
use axum::{extract::State, Json};
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    error::ApiError,
    login::CurrentUser,
    openapi::{actor_schema, event_kind_schema, Unauthenticated, Unavailable},
    state::{AppState, Stores},
};

/// How many events `GET /v1/auth/events` shows.
const RECENT_EVENTS: u64 = 50;

/// What `GET /v1/auth/events` answers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = EventList)]
pub(crate) struct EventList {
    /// Newest first.
    events: Vec<EventBody>,
}

/// One event as its user sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Event)]
pub(crate) struct EventBody {
    id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    at: OffsetDateTime,
    #[schema(schema_with = event_kind_schema)]
    kind: EventKind,
    /// Who acted: the user (through the API), an admin (on the command line) or the
    /// service itself.
    #[schema(schema_with = actor_schema)]
    actor: Actor,
    /// The id of the request that caused it (its `X-Request-Id`), when one did.
    request_id: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
}

impl From<AuthEvent> for EventBody {
    fn from(event: AuthEvent) -> Self {
        Self {
            id: event.id,
            at: event.at,
            kind: event.kind,
            actor: event.actor,
            request_id: event.request_id,
            ip: event.ip.map(|ip| ip.to_string()),
            user_agent: event.user_agent,
        }
    }
}

/// `GET /v1/auth/events`: the user's most recent events, newest first.
#[utoipa::path(
    get,
    path = "/v1/auth/events",
    operation_id = "list_events",
    tag = "audit",
    security(("session_cookie" = [])),
    responses(
        (status = 200, description = "The user's 50 most recent events", body = EventList),
        Unauthenticated,
        Unavailable,
    ),
)]
pub(crate) async fn recent<B: Stores>(
    State(state): State<AppState<B>>,
    user: CurrentUser,
) -> Result<Json<EventList>, ApiError> {
    let events: Vec<EventBody> = state
        .accounts
        .stores()
        .audit()
        .recent_for_user(user.owner.id, RECENT_EVENTS)
        .await
        .map_err(ApiError::internal)?
        .into_iter()
        .map(EventBody::from)
        .collect();
    Ok(Json(EventList { events }))
}
