//! A user's own sessions: list them, end one, end all the others.

use auth_domain::{
    audit::EventKind,
    session::{SessionHandle, SessionInfo},
    UserSessions,
};
use axum::{
    extract::{rejection::PathRejection, Path, State},
    http::StatusCode,
    Json,
};
use serde::Serialize;
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::{
    client::ClientDevice,
    error::ApiError,
    login::CurrentUser,
    state::{AppState, Stores},
};

/// One session as its owner sees it.
#[derive(Debug, Serialize)]
struct SessionBody {
    /// The handle: the stored key, which no one can turn into a cookie.
    id: SessionHandle,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    /// Approximate: it moves when the session is renewed, not at every request.
    #[serde(with = "time::serde::rfc3339")]
    last_seen_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
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
pub(crate) async fn list<B: Stores>(
    State(state): State<AppState<B>>,
    user: CurrentUser,
) -> Result<Json<Value>, ApiError> {
    let current = user.session.handle();
    let sessions: Vec<SessionBody> = state
        .sessions
        .list_user_sessions(user.owner.id)
        .await
        .map_err(ApiError::internal)?
        .into_iter()
        .map(|info| SessionBody::new(info, current.as_ref()))
        .collect();
    Ok(Json(json!({ "sessions": sessions })))
}

/// `DELETE /v1/auth/sessions/{id}`: ends one of the user's sessions; ending the current
/// one logs out. Someone else's session and an unknown one get the same 404.
pub(crate) async fn revoke<B: Stores>(
    State(state): State<AppState<B>>,
    ClientDevice(device): ClientDevice,
    user: CurrentUser,
    handle: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let handle: SessionHandle = handle
        .ok()
        .and_then(|Path(raw)| raw.parse().ok())
        .ok_or(ApiError::NotFound)?;
    if user.session.handle().as_ref() == Some(&handle) {
        user.session.log_out().await?;
        tracing::info!(user.id = %user.owner.id, "user ended the current session");
    } else {
        let deleted = state
            .sessions
            .delete_user_session(user.owner.id, &handle)
            .await
            .map_err(ApiError::internal)?;
        if !deleted {
            return Err(ApiError::NotFound);
        }
        tracing::info!(user.id = %user.owner.id, "user ended one of their sessions");
    }
    state
        .audit
        .record(EventKind::SessionRevoked, Some(user.owner.id), &device)
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v1/auth/sessions`: ends every session of the user but this one.
pub(crate) async fn revoke_others<B: Stores>(
    State(state): State<AppState<B>>,
    ClientDevice(device): ClientDevice,
    user: CurrentUser,
) -> Result<Json<Value>, ApiError> {
    let current = user
        .session
        .handle()
        .ok_or_else(|| ApiError::internal("a loaded session has an id"))?;
    let revoked = state
        .sessions
        .delete_other_user_sessions(user.owner.id, &current)
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(user.id = %user.owner.id, revoked, "user ended their other sessions");
    state
        .audit
        .record(
            EventKind::OtherSessionsRevoked,
            Some(user.owner.id),
            &device,
        )
        .await;
    Ok(Json(json!({ "revoked": revoked })))
}
