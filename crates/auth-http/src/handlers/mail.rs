//! The routes that go through the user's mailbox: a forgotten password and its reset,
//! verifying the address, changing it. Each link mailed carries its token in the URL's
//! fragment; only these POSTs spend one.

use auth_domain::{
    account_mail::{ChangeEmailError, ResendError, ResetPasswordError, VerifyEmailError},
    Password,
};
use axum::{extract::State, http::StatusCode, Json};

use super::MessageBody;
use crate::{
    client::Caller,
    error::{ApiError, ErrorBody},
    extract::{FromJsonObject, JsonBody, JsonObject},
    login::{AnyCurrentUser, FreshUser},
    openapi::{BodyRejections, CrossOrigin, Sensitive, Throttled, Unauthenticated, Unavailable},
    state::{AppState, Stores},
};

/// What `POST /v1/auth/password/forgot` takes.
#[derive(utoipa::ToSchema)]
#[schema(example = json!({"email": "ada@example.com"}))]
pub(crate) struct ForgotPasswordRequest {
    /// The address of the account.
    email: String,
}

impl FromJsonObject for ForgotPasswordRequest {
    fn from_object(object: &mut JsonObject) -> Option<Self> {
        Some(Self {
            email: object.required_string("email")?,
        })
    }
}

/// What `POST /v1/auth/password/reset` takes.
#[derive(utoipa::ToSchema)]
pub(crate) struct ResetPasswordRequest {
    /// The token of the mailed link (after `#token=`).
    #[schema(min_length = 43, max_length = 43, pattern = "^[A-Za-z0-9_-]{43}$")]
    token: String,
    /// The password policy of registration applies.
    #[schema(value_type = String, min_length = 8, max_length = 128)]
    new_password: Password,
}

impl FromJsonObject for ResetPasswordRequest {
    fn from_object(object: &mut JsonObject) -> Option<Self> {
        let token = object.required_string("token");
        let new = object.required_string("new_password");
        Some(Self {
            token: token?,
            new_password: Password::new(new?),
        })
    }
}

/// What `POST /v1/auth/email/verify` takes.
#[derive(utoipa::ToSchema)]
pub(crate) struct VerifyEmailRequest {
    /// The token of the mailed link (after `#token=`).
    #[schema(min_length = 43, max_length = 43, pattern = "^[A-Za-z0-9_-]{43}$")]
    token: String,
}

impl FromJsonObject for VerifyEmailRequest {
    fn from_object(object: &mut JsonObject) -> Option<Self> {
        Some(Self {
            token: object.required_string("token")?,
        })
    }
}

/// What `POST /v1/auth/email` takes.
#[derive(utoipa::ToSchema)]
#[schema(example = json!({"new_email": "ada@new.example", "password": "correct horse battery staple"}))]
pub(crate) struct ChangeEmailRequest {
    /// The address to move to.
    new_email: String,
    /// The current password, as proof.
    #[schema(value_type = String)]
    password: Password,
}

impl FromJsonObject for ChangeEmailRequest {
    fn from_object(object: &mut JsonObject) -> Option<Self> {
        let new_email = object.required_string("new_email");
        let password = object.required_string("password");
        Some(Self {
            new_email: new_email?,
            password: Password::new(password?),
        })
    }
}

/// `POST /v1/auth/password/forgot`: mails a link to reset the password to the account
/// with this address, if there is one. The answer is the same either way, and as fast:
/// the request is handled after it is answered. At most 3 mails per address and 20
/// requests per client an hour; past that the answer is still the same, and no mail goes.
#[utoipa::path(
    post,
    path = "/v1/auth/password/forgot",
    tag = "account recovery",
    request_body = ForgotPasswordRequest,
    responses(
        (status = 202, description = "Accepted, whether or not an account has the \
            address", body = MessageBody),
        (status = 400, description = "Malformed JSON (`malformed_json`) or not an email \
            address (`validation_failed`)", body = ErrorBody),
        BodyRejections,
        CrossOrigin,
    ),
)]
pub(crate) async fn forgot_password<B: Stores>(
    State(state): State<AppState<B>>,
    Caller(context): Caller,
    JsonBody(request): JsonBody<ForgotPasswordRequest>,
) -> Result<(StatusCode, Json<MessageBody>), ApiError> {
    state
        .accounts
        .forgot_password(&request.email, &context)
        .map_err(ApiError::Validation)?;
    Ok((
        StatusCode::ACCEPTED,
        MessageBody::new(
            "If an account has this address, a link to reset its password is on its way.",
        ),
    ))
}

/// `POST /v1/auth/password/reset`: sets a new password with the token of a reset link.
/// The token works once; every session of the user ends, their device cookies stop
/// working, and a notice is mailed. Nobody is logged in: log in with the new password.
#[utoipa::path(
    post,
    path = "/v1/auth/password/reset",
    tag = "account recovery",
    request_body = ResetPasswordRequest,
    responses(
        (status = 200, description = "The password is reset and every session of the \
            user ended", body = MessageBody),
        (status = 400, description = "Malformed JSON (`malformed_json`), a token that is \
            malformed, unknown, expired or used (`invalid_token`), or a new password the \
            policy refuses (`validation_failed`, with `errors`); a breached new password is \
            422 `password_breached`, with `errors`", body = ErrorBody),
        BodyRejections,
        CrossOrigin,
        Unavailable,
    ),
)]
pub(crate) async fn reset_password<B: Stores>(
    State(state): State<AppState<B>>,
    Caller(context): Caller,
    JsonBody(request): JsonBody<ResetPasswordRequest>,
) -> Result<Json<MessageBody>, ApiError> {
    match state
        .accounts
        .reset_password(&request.token, &request.new_password, &context)
        .await
    {
        Ok(_) => Ok(MessageBody::new(
            "Password reset. Every session ended: log in with the new password.",
        )),
        Err(ResetPasswordError::InvalidToken) => Err(ApiError::InvalidToken),
        Err(ResetPasswordError::Invalid(errors)) => Err(ApiError::Validation(errors)),
        Err(ResetPasswordError::Breached(errors)) => Err(ApiError::Breached(errors)),
        Err(ResetPasswordError::Unexpected(source)) => Err(ApiError::internal(source)),
    }
}

/// `POST /v1/auth/email/verify`: follows a verification link, or the confirmation link
/// of an email change (which then becomes the account's address). Works once, with or
/// without a session.
#[utoipa::path(
    post,
    path = "/v1/auth/email/verify",
    tag = "email",
    request_body = VerifyEmailRequest,
    responses(
        (status = 200, description = "The address is verified (and, for an email change, \
            now the account's)", body = MessageBody),
        (status = 400, description = "Malformed JSON (`malformed_json`), or a token that \
            is malformed, unknown, expired or used (`invalid_token`)", body = ErrorBody),
        (status = 409, description = "The new address of an email change was taken by \
            another account meanwhile (`email_taken`)", body = ErrorBody),
        BodyRejections,
        CrossOrigin,
        Unavailable,
    ),
)]
pub(crate) async fn verify_email<B: Stores>(
    State(state): State<AppState<B>>,
    Caller(context): Caller,
    JsonBody(request): JsonBody<VerifyEmailRequest>,
) -> Result<Json<MessageBody>, ApiError> {
    match state.accounts.verify_email(&request.token, &context).await {
        Ok(verified) if verified.changed => Ok(MessageBody::new("Email address changed.")),
        Ok(_) => Ok(MessageBody::new("Email address verified.")),
        Err(VerifyEmailError::InvalidToken) => Err(ApiError::InvalidToken),
        Err(VerifyEmailError::EmailTaken) => Err(ApiError::EmailTaken),
        Err(VerifyEmailError::Unexpected(source)) => Err(ApiError::internal(source)),
    }
}

/// `POST /v1/auth/email/verify/resend`: mails the logged-in user a new verification link
/// (the older ones stop working), at most once a minute. Open to an unverified account
/// when `EMAIL_VERIFICATION=required`.
#[utoipa::path(
    post,
    path = "/v1/auth/email/verify/resend",
    tag = "email",
    security(("session_cookie" = [])),
    responses(
        (status = 202, description = "A new link is on its way", body = MessageBody),
        (status = 409, description = "The address is verified already \
            (`already_verified`), or verification is off (`verification_off`)",
            body = ErrorBody),
        Unauthenticated,
        CrossOrigin,
        Throttled,
        Unavailable,
    ),
)]
pub(crate) async fn resend_verification<B: Stores>(
    State(state): State<AppState<B>>,
    Caller(context): Caller,
    AnyCurrentUser(user): AnyCurrentUser,
) -> Result<(StatusCode, Json<MessageBody>), ApiError> {
    match state
        .accounts
        .resend_verification(user.owner.id, &context)
        .await
    {
        Ok(()) => Ok((
            StatusCode::ACCEPTED,
            MessageBody::new("A new verification link is on its way."),
        )),
        Err(ResendError::AlreadyVerified) => Err(ApiError::AlreadyVerified),
        Err(ResendError::Off) => Err(ApiError::VerificationOff),
        Err(ResendError::Throttled(throttled)) => Err(ApiError::throttled(throttled)),
        Err(ResendError::UnknownUser) => {
            user.session.log_out().await?;
            Err(ApiError::AccessDenied)
        }
        Err(ResendError::Unexpected(source)) => Err(ApiError::internal(source)),
    }
}

/// `POST /v1/auth/email`: starts moving the account to a new address, proven by the
/// password (a wrong one counts as a failed login of the account). The new address gets
/// a link, which makes the change once followed; the current one gets a notice at once.
/// An address that is another account's is answered the same, and its owner is told.
#[utoipa::path(
    post,
    path = "/v1/auth/email",
    tag = "email",
    security(("session_cookie" = [])),
    request_body = ChangeEmailRequest,
    responses(
        (status = 202, description = "A confirmation link is on its way to the new \
            address", body = MessageBody),
        (status = 400, description = "Malformed JSON (`malformed_json`), a wrong password, \
            or a new address that is not one or is the current one (`validation_failed`, \
            with `errors`)", body = ErrorBody),
        Sensitive,
        BodyRejections,
        Throttled,
        Unavailable,
    ),
)]
pub(crate) async fn change_email<B: Stores>(
    State(state): State<AppState<B>>,
    Caller(context): Caller,
    FreshUser(user): FreshUser,
    JsonBody(request): JsonBody<ChangeEmailRequest>,
) -> Result<(StatusCode, Json<MessageBody>), ApiError> {
    match state
        .accounts
        .request_email_change(
            user.owner.id,
            &request.new_email,
            &request.password,
            &context,
        )
        .await
    {
        Ok(()) => Ok((
            StatusCode::ACCEPTED,
            MessageBody::new("A confirmation link is on its way to the new address."),
        )),
        Err(ChangeEmailError::Invalid(errors)) => Err(ApiError::Validation(errors)),
        Err(ChangeEmailError::Throttled(throttled)) => Err(ApiError::throttled(throttled)),
        Err(ChangeEmailError::UnknownUser) => {
            user.session.log_out().await?;
            Err(ApiError::AccessDenied)
        }
        Err(ChangeEmailError::Unexpected(source)) => Err(ApiError::internal(source)),
    }
}
