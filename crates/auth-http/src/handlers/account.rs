//! What a user does to their own account: change the password, delete it.

use auth_domain::{
    audit::EventKind, session::Device, throttle::LoginAttempt, ChangePasswordError,
    DeleteAccountError, Password, UserSessions, ValidationErrors,
};
use axum::{extract::State, http::StatusCode, Json};
use time::OffsetDateTime;

use super::MessageBody;
use crate::{
    client::ClientDevice,
    error::{ApiError, ErrorBody},
    extract::{FromJsonObject, JsonBody, JsonObject},
    login::CurrentUser,
    openapi::{BodyRejections, CrossOrigin, Throttled, Unauthenticated, Unavailable},
    state::{AppState, Stores},
};

// The request bodies as the OpenAPI document shows them. They are read field by field
// (`FromJsonObject`), never deserialized into these types, which exist for the document.

/// What `POST /v1/auth/password` takes.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Documentation only: see above.
pub(crate) struct PasswordChangeRequest {
    current_password: String,
    /// The password policy of registration applies.
    #[schema(min_length = 8, max_length = 128)]
    new_password: String,
}

/// What `DELETE /v1/auth/account` takes.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Documentation only: see above.
pub(crate) struct AccountDeletionRequest {
    /// The current password, as proof.
    password: String,
}

/// What `POST /v1/auth/password` submits.
pub(crate) struct PasswordChange {
    current: Password,
    new: Password,
}

impl FromJsonObject for PasswordChange {
    fn from_object(object: &mut JsonObject) -> Option<Self> {
        let current = object.required_string("current_password");
        let new = object.required_string("new_password");
        Some(Self {
            current: Password::new(current?),
            new: Password::new(new?),
        })
    }
}

/// What `DELETE /v1/auth/account` submits.
pub(crate) struct AccountDeletion {
    password: Password,
}

impl FromJsonObject for AccountDeletion {
    fn from_object(object: &mut JsonObject) -> Option<Self> {
        let password = object.required_string("password")?;
        Some(Self {
            password: Password::new(password),
        })
    }
}

/// `POST /v1/auth/password`: replaces the password. Every other session of the user ends;
/// this one goes on under a new id (and so a new cookie), bound to the new password. A
/// wrong current password counts as a failed login of the account.
#[utoipa::path(
    post,
    path = "/v1/auth/password",
    tag = "account",
    security(("session_cookie" = [])),
    request_body = PasswordChangeRequest,
    responses(
        (status = 200, description = "Changed: every other session of the user ended, this \
            one goes on under a new cookie", body = MessageBody,
            headers(("Set-Cookie" = String, description = "The session cookie, re-issued"))),
        (status = 400, description = "Malformed JSON (`malformed_json`), a wrong current \
            password, or a new password the policy refuses (`validation_failed`, with \
            `errors`)", body = ErrorBody),
        Unauthenticated,
        BodyRejections,
        CrossOrigin,
        Throttled,
        Unavailable,
    ),
)]
pub(crate) async fn change_password<B: Stores>(
    State(state): State<AppState<B>>,
    ClientDevice(device): ClientDevice,
    user: CurrentUser,
    JsonBody(change): JsonBody<PasswordChange>,
) -> Result<Json<MessageBody>, ApiError> {
    let attempt = guard(&state, &user, &device).await?;
    let updated = match state
        .service
        .change_password(user.owner.id, &change.current, &change.new)
        .await
    {
        Ok(updated) => updated,
        Err(ChangePasswordError::Invalid(errors)) => {
            count_wrong_password(&state, &attempt, &errors, "current_password").await;
            return Err(ApiError::Validation(errors));
        }
        Err(ChangePasswordError::UnknownUser) => {
            user.session.log_out().await?;
            return Err(ApiError::AccessDenied);
        }
        Err(ChangePasswordError::Unexpected(source)) => return Err(ApiError::internal(source)),
    };
    // The new hash already ends the other sessions at their next request; deleting them
    // frees their rows now. Done before the id changes, while this session's handle is
    // the one to keep.
    if let Some(current) = user.session.handle() {
        let ended = state
            .sessions
            .delete_other_user_sessions(updated.id, &current)
            .await;
        if let Err(error) = ended {
            tracing::warn!(user.id = %updated.id, %error, "could not delete the other sessions after a password change; they end at their next request");
        }
    }
    user.session
        .log_in(
            &updated,
            user.login.persistent,
            user.login.device.clone(),
            &state.service,
        )
        .await?;
    tracing::info!(user.id = %updated.id, "user changed their password");
    state
        .audit
        .record(EventKind::PasswordChanged, Some(updated.id), &device)
        .await;
    Ok(MessageBody::new("Password changed."))
}

/// `DELETE /v1/auth/account`: deletes the user and every session of theirs. A wrong
/// password counts as a failed login of the account.
#[utoipa::path(
    delete,
    path = "/v1/auth/account",
    tag = "account",
    security(("session_cookie" = [])),
    request_body = AccountDeletionRequest,
    responses(
        (status = 204, description = "Deleted, with every session of the user; the cookie \
            is expired"),
        (status = 400, description = "Malformed JSON (`malformed_json`) or a wrong password \
            (`validation_failed`, with `errors`)", body = ErrorBody),
        Unauthenticated,
        BodyRejections,
        CrossOrigin,
        Throttled,
        Unavailable,
    ),
)]
pub(crate) async fn delete_account<B: Stores>(
    State(state): State<AppState<B>>,
    ClientDevice(device): ClientDevice,
    user: CurrentUser,
    JsonBody(deletion): JsonBody<AccountDeletion>,
) -> Result<StatusCode, ApiError> {
    let attempt = guard(&state, &user, &device).await?;
    match state
        .service
        .delete_account(user.owner.id, &deletion.password)
        .await
    {
        Ok(()) | Err(DeleteAccountError::UnknownUser) => {}
        Err(DeleteAccountError::Invalid(errors)) => {
            count_wrong_password(&state, &attempt, &errors, "password").await;
            return Err(ApiError::Validation(errors));
        }
        Err(DeleteAccountError::Unexpected(source)) => return Err(ApiError::internal(source)),
    }
    // The store of users ends the sessions with the user where it must (see
    // `UserRepository::delete`); this makes it so on every store.
    state
        .sessions
        .delete_user_sessions(user.owner.id)
        .await
        .map_err(ApiError::internal)?;
    user.session.log_out().await?;
    tracing::info!(user.id = %user.owner.id, "user deleted their account");
    state
        .audit
        .record(EventKind::AccountDeleted, Some(user.owner.id), &device)
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Refuses a password check on the user's account from this client once it is throttled
/// like a login would be; otherwise the attempt to count a failure against.
async fn guard<B: Stores>(
    state: &AppState<B>,
    user: &CurrentUser,
    device: &Device,
) -> Result<LoginAttempt, ApiError> {
    // The session proves the device: the per-account limit does not apply.
    let attempt = LoginAttempt::new(user.owner.email().as_str(), device.ip, true);
    state
        .throttle
        .check_login(&attempt, OffsetDateTime::now_utc())
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::throttled)?;
    Ok(attempt)
}

/// Counts a failure when `field` (the password to check) was refused.
async fn count_wrong_password<B: Stores>(
    state: &AppState<B>,
    attempt: &LoginAttempt,
    errors: &ValidationErrors,
    field: &str,
) {
    if errors.field(field).is_empty() {
        return;
    }
    let counted = state
        .throttle
        .login_failed(attempt, OffsetDateTime::now_utc())
        .await;
    if let Err(error) = counted {
        tracing::error!(%error, "could not count a wrong password");
    }
}
