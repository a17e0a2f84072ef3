//! A user's own sessions: list them, end one, end all the others.

use auth_domain::{
    session::{SessionHandle, SessionInfo},
    UserSessions,
};
use axum::{
    extract::{rejection::PathRejection, Path, State},
    http::StatusCode,
    Json,
};
use serde::Serialize;
use time::OffsetDateTime;

use crate::{
    client::Caller,
    error::{ApiError, ErrorBody},
    login::CurrentUser,
    openapi::{Gated, Unavailable},
    state::{AppState, Stores},
};

/// What `GET /v1/auth/sessions` answers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = SessionList)]
pub(crate) struct SessionList {
    /// Most recently used first.
    sessions: Vec<SessionBody>,
}

/// What `DELETE /v1/auth/sessions` answers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Revoked)]
pub(crate) struct Revoked {
    /// How many sessions ended.
    revoked: u64,
}

/// One session as its owner sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Session)]
pub(crate) struct SessionBody {
    /// The handle: the stored key, which no one can turn into a cookie.
    #[schema(value_type = String)]
    id: SessionHandle,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: OffsetDateTime,
    /// Approximate: it moves when the session is renewed, not at every request.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    last_seen_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    expires_at: OffsetDateTime,
    user_agent: Option<String>,
    ip: Option<String>,
    /// Whether this is the session the request came with.
    current: bool,
}

impl SessionBody {
    fn new(info: SessionInfo, current: Option<&SessionHandle>) -> Self {
        Self {
            current: current == Some(&info.handle),
            id: info.handle,
            created_at: info.created_at,
            last_seen_at: info.last_seen_at,
            expires_at: info.expires_at,
            user_agent: info.device.user_agent,
            ip: info.device.ip.map(|ip| ip.to_string()),
        }
    }
}

/// `GET /v1/auth/sessions`: the user's live sessions, most recently used first.
#[utoipa::path(
    get,
    path = "/v1/auth/sessions",
    operation_id = "list_sessions",
    tag = "sessions",
    security(("session_cookie" = [])),
    responses(
        (status = 200, description = "The user's live sessions", body = SessionList,
            links(("revoke" = (
                operation_id = "revoke_session",
                parameters(("id" = "$response.body#/sessions/0/id")),
                description = "End the first session listed",
            )))),
        Gated,
        Unavailable,
    ),
)]
pub(crate) async fn list<B: Stores>(
    State(state): State<AppState<B>>,
    user: CurrentUser,
) -> Result<Json<SessionList>, ApiError> {
    let current = user.session.handle();
    let sessions: Vec<SessionBody> = state
        .accounts
        .stores()
        .sessions()
        .list_user_sessions(user.owner.id)
        .await
        .map_err(ApiError::internal)?
        .into_iter()
        .map(|info| SessionBody::new(info, current.as_ref()))
        .collect();
    Ok(Json(SessionList { sessions }))
}

#[utoipa::path(
    delete,
    path = "/v1/auth/sessions/{id}",
    operation_id = "revoke_session",
    tag = "sessions",
    security(("session_cookie" = [])),
    params(("id" = String, Path, description = "A session's `id`, as `GET /v1/auth/sessions` lists it")),
    responses(
        (status = 204, description = "The session ended (the current one: logged out)"),
        (status = 404, description = "No such session of this user (`not_found`)", body = ErrorBody),
        Gated,
        Unavailable,
    ),
)]
pub(crate) async fn revoke<B: Stores>(
    State(state): State<AppState<B>>,
    Caller(context): Caller,
    user: CurrentUser,
    handle: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let handle: SessionHandle = handle
        .ok()
        .and_then(|Path(raw)| raw.parse().ok())
        .ok_or(ApiError::NotFound)?;
    let revoked = state
        .accounts
        .revoke_session(user.owner.id, &handle, &context)
        .await
        .map_err(ApiError::internal)?;
    if !revoked {
        return Err(ApiError::NotFound);
    }
    // The current one: logged out, so that its cookie goes too.
    if user.session.handle().as_ref() == Some(&handle) {
        user.session.log_out().await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    delete,
    path = "/v1/auth/sessions",
    operation_id = "revoke_other_sessions",
    tag = "sessions",
    security(("session_cookie" = [])),
    responses(
        (status = 200, description = "Every other session of the user ended", body = Revoked),
        Gated,
        Unavailable,
    ),
)]
pub(crate) async fn revoke_others<B: Stores>(
    State(state): State<AppState<B>>,
    Caller(context): Caller,
    user: CurrentUser,
) -> Result<Json<Revoked>, ApiError> {
    let current = user
        .session
        .handle()
        .ok_or_else(|| ApiError::internal("a loaded session has an id"))?;
    let revoked = state
        .accounts
        .revoke_other_sessions(user.owner.id, &current, &context)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(Revoked { revoked }))
}
