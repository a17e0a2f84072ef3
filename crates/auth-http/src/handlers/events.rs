//! A user's recent security activity.

use auth_domain::{
    audit::{Actor, AuditLog, AuthEvent, EventCursor, EventKind, EventPage},
    FieldError, ValidationErrors,
};
use axum::{
    extract::{RawQuery, State},
    Json,
};
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    error::{ApiError, ErrorBody},
    login::CurrentUser,
    openapi::{actor_schema, event_kind_schema, Gated, Unavailable},
    state::{AppState, Stores},
};

/// How many events a page of `GET /v1/auth/events` shows unless `limit` says otherwise.
const PAGE_EVENTS: u64 = 50;
/// The most a page shows.
const MAX_PAGE_EVENTS: u64 = 200;

/// What `GET /v1/auth/events` answers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = EventList)]
pub(crate) struct EventList {
    /// Newest first.
    events: Vec<EventBody>,
    /// The `before` of the next page, when this one is full (there may be more); `null`
    /// once every event was listed.
    next: Option<String>,
}

/// The page a query asks for; every parameter refused is a field error. Read by hand, so
/// that an unknown or repeated parameter is a 400 in our shape.
fn page(query: Option<&str>) -> Result<EventPage, ValidationErrors> {
    const INVALID_CURSOR: FieldError =
        FieldError::new("invalid_cursor", "Not a cursor this service gave out.");
    const INVALID_KIND: FieldError = FieldError::new("invalid_kind", "Not an event kind.");
    const INVALID_LIMIT: FieldError =
        FieldError::new("invalid_limit", "A whole number from 1 to 200.");
    const UNKNOWN: FieldError = FieldError::new(
        "unknown_parameter",
        "Unknown or repeated parameter: before, kind and limit are known, once each.",
    );
    let mut page = EventPage::newest(PAGE_EVENTS);
    let mut errors = ValidationErrors::default();
    let mut seen = Vec::new();
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if seen.contains(&name) {
            errors.add("query", UNKNOWN);
            continue;
        }
        seen.push(name.clone());
        match &*name {
            "before" => match EventCursor::parse(&value) {
                Some(cursor) => page.before = Some(cursor),
                None => errors.add("before", INVALID_CURSOR),
            },
            "kind" => {
                for kind in value.split(',') {
                    match EventKind::parse(kind.trim()) {
                        Some(kind) if !page.kinds.contains(&kind) => page.kinds.push(kind),
                        Some(_) => {}
                        None => errors.add("kind", INVALID_KIND),
                    }
                }
            }
            "limit" => match value.parse::<u64>() {
                Ok(limit) if (1..=MAX_PAGE_EVENTS).contains(&limit) => page.limit = limit,
                _ => errors.add("limit", INVALID_LIMIT),
            },
            _ => errors.add("query", UNKNOWN),
        }
    }
    if errors.is_empty() {
        Ok(page)
    } else {
        Err(errors)
    }
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
    /// How many attempts it stands for: 1, but for repeated throttled logins of one
    /// account from one client, recorded as one event per minute with their count.
    count: u32,
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
            count: event.count,
        }
    }
}

/// `GET /v1/auth/events`: the user's events, newest first, a page at a time: follow
/// `next` (as `before`) to reach every one, however many were recorded since.
#[utoipa::path(
    get,
    path = "/v1/auth/events",
    operation_id = "list_events",
    tag = "audit",
    security(("session_cookie" = [])),
    params(
        ("before" = Option<String>, Query, pattern = r"^[0-9]{1,16}\.[0-9a-f]{32}$",
            description = "The `next` of the previous page: only events listed after it"),
        ("kind" = Option<String>, Query,
            pattern = "^(registered|login_succeeded|login_failed|login_throttled|logged_out|session_revoked|other_sessions_revoked|password_changed|account_deleted|sessions_revoked|password_reset_requested|password_reset|email_verification_sent|email_verified|email_change_requested|email_changed|mfa_challenged|mfa_succeeded|mfa_failed|totp_enabled|totp_removed|recovery_codes_generated|recovery_code_used|passkey_added|passkey_removed|passkey_renamed|reauthenticated|factors_reset|password_removed)(,(registered|login_succeeded|login_failed|login_throttled|logged_out|session_revoked|other_sessions_revoked|password_changed|account_deleted|sessions_revoked|password_reset_requested|password_reset|email_verification_sent|email_verified|email_change_requested|email_changed|mfa_challenged|mfa_succeeded|mfa_failed|totp_enabled|totp_removed|recovery_codes_generated|recovery_code_used|passkey_added|passkey_removed|passkey_renamed|reauthenticated|factors_reset|password_removed))*$",
            description = "Only events of these kinds, comma-separated \
                (`login_succeeded,login_failed`)"),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 200,
            description = "How many events at most, 1 to 200 (50)"),
    ),
    responses(
        (status = 200, description = "A page of the user's events, newest first (50 unless \
            `limit` says otherwise)", body = EventList),
        (status = 400, description = "A parameter that is not a cursor, an event kind or a \
            limit from 1 to 200, or an unknown or repeated one (`validation_failed`)",
            body = ErrorBody),
        Gated,
        Unavailable,
    ),
)]
pub(crate) async fn recent<B: Stores>(
    State(state): State<AppState<B>>,
    user: CurrentUser,
    RawQuery(query): RawQuery,
) -> Result<Json<EventList>, ApiError> {
    let page = page(query.as_deref()).map_err(ApiError::Validation)?;
    let events = state
        .accounts
        .stores()
        .audit()
        .recent_for_user(user.owner.id, &page)
        .await
        .map_err(ApiError::internal)?;
    let full = events.len() as u64 == page.limit;
    let next = events
        .last()
        .filter(|_| full)
        .map(|last| EventCursor::after(last).encode());
    let events = events.into_iter().map(EventBody::from).collect();
    Ok(Json(EventList { events, next }))
}
