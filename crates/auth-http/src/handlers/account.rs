//! What a user does to their own account: change the password, delete it.

use auth_domain::{ChangePasswordError, DeleteAccountError, Password};
use axum::{extract::State, http::StatusCode, Json};

use super::MessageBody;
use crate::{
    client::Caller,
    error::{ApiError, ErrorBody},
    extract::{FromJsonObject, JsonBody, JsonObject},
    login::FreshUser,
    openapi::{BodyRejections, Sensitive, Throttled, Unavailable},
    state::{AppState, Stores},
};

/// What `POST /v1/auth/password` takes.
#[derive(utoipa::ToSchema)]
pub(crate) struct PasswordChangeRequest {
    #[schema(value_type = String)]
    current_password: Password,
    /// The password policy of registration applies.
    #[schema(value_type = String, min_length = 8, max_length = 128)]
    new_password: Password,
}

impl FromJsonObject for PasswordChangeRequest {
    fn from_object(object: &mut JsonObject) -> Option<Self> {
        let current = object.required_string("current_password");
        let new = object.required_string("new_password");
        Some(Self {
            current_password: Password::new(current?),
            new_password: Password::new(new?),
        })
    }
}

/// What `DELETE /v1/auth/account` takes.
#[derive(utoipa::ToSchema)]
pub(crate) struct AccountDeletionRequest {
    /// The current password, as proof.
    #[schema(value_type = String)]
    password: Password,
}

impl FromJsonObject for AccountDeletionRequest {
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
            `errors`); a breached new password is 422 `password_breached`, with `errors`",
            body = ErrorBody),
        Sensitive,
        BodyRejections,
        Throttled,
        Unavailable,
    ),
)]
pub(crate) async fn change_password<B: Stores>(
    State(state): State<AppState<B>>,
    Caller(context): Caller,
    FreshUser(user): FreshUser,
    JsonBody(change): JsonBody<PasswordChangeRequest>,
) -> Result<Json<MessageBody>, ApiError> {
    // The other sessions end before this one's id changes, while its handle is the one
    // to keep.
    let keep = user.session.handle();
    let updated = match state
        .accounts
        .change_password(
            user.owner.id,
            &user.owner.email(),
            &change.current_password,
            &change.new_password,
            keep.as_ref(),
            &context,
        )
        .await
    {
        Ok(updated) => updated,
        Err(ChangePasswordError::Invalid(errors)) => return Err(ApiError::Validation(errors)),
        Err(ChangePasswordError::Breached(errors)) => return Err(ApiError::Breached(errors)),
        Err(ChangePasswordError::Throttled(throttled)) => {
            return Err(ApiError::throttled(throttled))
        }
        Err(ChangePasswordError::UnknownUser) => {
            user.session.log_out().await?;
            return Err(ApiError::AccessDenied);
        }
        Err(ChangePasswordError::Unexpected(source)) => return Err(ApiError::internal(source)),
    };
    user.session
        .log_in(
            &updated,
            user.login.persistent,
            user.login.device.clone(),
            state.accounts.service(),
        )
        .await?;
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
        Sensitive,
        BodyRejections,
        Throttled,
        Unavailable,
    ),
)]
pub(crate) async fn delete_account<B: Stores>(
    State(state): State<AppState<B>>,
    Caller(context): Caller,
    FreshUser(user): FreshUser,
    JsonBody(deletion): JsonBody<AccountDeletionRequest>,
) -> Result<StatusCode, ApiError> {
    match state
        .accounts
        .delete_account(
            user.owner.id,
            &user.owner.email(),
            &deletion.password,
            &context,
        )
        .await
    {
        Ok(()) | Err(DeleteAccountError::UnknownUser) => {}
        Err(DeleteAccountError::Invalid(errors)) => return Err(ApiError::Validation(errors)),
        Err(DeleteAccountError::Throttled(throttled)) => {
            return Err(ApiError::throttled(throttled))
        }
        Err(DeleteAccountError::Unexpected(source)) => return Err(ApiError::internal(source)),
    }
    user.session.log_out().await?;
    Ok(StatusCode::NO_CONTENT)
}
