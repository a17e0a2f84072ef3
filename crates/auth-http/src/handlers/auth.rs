//! Registering, logging in and out.

use auth_domain::{
    audit::EventKind, throttle::LoginAttempt, AuthenticateError, Password, Registration,
};
use axum::{
    extract::State,
    http::{header::SET_COOKIE, HeaderMap, StatusCode},
    response::{AppendHeaders, IntoResponse, Response},
    Json,
};
use time::OffsetDateTime;

use super::{user_body::UserBody, MessageBody};
use crate::{
    client::ClientDevice,
    device_cookie,
    error::{ApiError, ErrorBody},
    extract::{FromJsonObject, JsonBody, JsonObject},
    login::{Credentials, CurrentUser, LoginSession},
    openapi::{BodyRejections, CrossOrigin, Throttled, Unauthenticated, Unavailable},
    plain_http::{self, PlainHttp},
    state::{AppState, Stores},
};

// The request bodies as the OpenAPI document shows them. They are read field by field
// (`FromJsonObject`), never deserialized into these types, which exist for the document.

/// What `POST /v1/auth/register` takes.
#[derive(utoipa::ToSchema)]
#[schema(example = json!({
    "email": "ada@example.com",
    "password": "correct horse battery staple",
    "username": "ada",
}))]
#[allow(dead_code)] // Documentation only: see above.
pub(crate) struct RegisterRequest {
    /// An email address; stored trimmed and in lower case.
    email: String,
    /// At least 8 characters (`PASSWORD_MIN_LENGTH`), at most 128, not a commonly used
    /// password, not the email address or username.
    #[schema(min_length = 8, max_length = 128)]
    password: String,
    /// Defaults to the email address.
    username: Option<String>,
}

/// What `POST /v1/auth/login` takes.
#[derive(utoipa::ToSchema)]
#[schema(example = json!({
    "email_or_username": "ada@example.com",
    "password": "correct horse battery staple",
}))]
#[allow(dead_code)] // Documentation only: see above.
pub(crate) struct LoginRequest {
    /// An email address or a username.
    email_or_username: String,
    password: String,
    /// Whether the cookie outlives the browser; absent or null means yes.
    remember: Option<bool>,
}

impl FromJsonObject for Registration {
    fn from_object(object: &mut JsonObject) -> Option<Self> {
        let email = object.required_string("email");
        let password = object.required_string("password");
        let username = object.optional_string("username");
        Some(Self {
            email: email?,
            password: Password::new(password?),
            username: username?,
        })
    }
}

impl FromJsonObject for Credentials {
    fn from_object(object: &mut JsonObject) -> Option<Self> {
        let login = object.required_string("email_or_username");
        let password = object.required_string("password");
        let remember = object.optional_bool("remember");
        Some(Self {
            login: login?,
            password: Password::new(password?),
            remember: remember?.unwrap_or(true),
        })
    }
}

/// `POST /v1/auth/register`: creates a user; does not log them in. Registrations per
/// address are limited.
#[utoipa::path(
    post,
    path = "/v1/auth/register",
    tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "The new user; nobody is logged in", body = UserBody,
            links(("login" = (
                operation_id = "login",
                request_body = json!({
                    "email_or_username": "$request.body#/email",
                    "password": "$request.body#/password",
                }),
                description = "Log the new user in",
            )))),
        (status = 400, description = "Malformed JSON (`malformed_json`), or a field the \
            domain refuses: an invalid email address or username, a password too short, too \
            long, too common or equal to the email address or username \
            (`validation_failed`, with `errors`)", body = ErrorBody),
        (status = 409, description = "The email address (`email_taken`) or the username \
            (`username_taken`) belongs to another user", body = ErrorBody),
        BodyRejections,
        CrossOrigin,
        Throttled,
        Unavailable,
    ),
)]
pub(crate) async fn register<B: Stores>(
    State(state): State<AppState<B>>,
    ClientDevice(device): ClientDevice,
    JsonBody(registration): JsonBody<Registration>,
) -> Result<(StatusCode, Json<UserBody>), ApiError> {
    state
        .throttle
        .admit_registration(device.ip, OffsetDateTime::now_utc())
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::throttled)?;
    let user = state.service.register(registration).await?;
    tracing::info!(user.id = %user.id, "user registered");
    state
        .audit
        .record(EventKind::Registered, Some(user.id), &device)
        .await;
    Ok((StatusCode::CREATED, Json(UserBody::from(&user))))
}

/// `POST /v1/auth/login`: checks the credentials and logs the user in on a fresh session,
/// recording the device it comes from for the user's list of sessions. Past the failure
/// limits it answers 429 without checking anything (no hash is computed).
#[utoipa::path(
    post,
    path = "/v1/auth/login",
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "The user, now logged in on a fresh session", body = UserBody,
            headers(("Set-Cookie" = String, description = "The session cookie (`session`), \
                and a device cookie that spares this browser the per-account limit"))),
        (status = 400, description = "Malformed JSON (`malformed_json`)", body = ErrorBody),
        (status = 401, description = "Unknown user or wrong password, one answer for both \
            (`invalid_credentials`, \"Invalid credentials!\")", body = ErrorBody),
        BodyRejections,
        CrossOrigin,
        Throttled,
        Unavailable,
    ),
)]
pub(crate) async fn login<B: Stores>(
    State(state): State<AppState<B>>,
    session: LoginSession,
    ClientDevice(device): ClientDevice,
    PlainHttp(plain_http): PlainHttp,
    headers: HeaderMap,
    JsonBody(credentials): JsonBody<Credentials>,
) -> Result<Response, ApiError> {
    let proven = device_cookie::proves(&headers, &state.device_signer, &credentials.login);
    let attempt = LoginAttempt::new(&credentials.login, device.ip, proven);
    let now = OffsetDateTime::now_utc();
    let verdict = state
        .throttle
        .check_login(&attempt, now)
        .await
        .map_err(ApiError::internal)?;
    if let Err(throttled) = verdict {
        state
            .audit
            .record_throttled_login(&state.service, &credentials.login, &device);
        return Err(ApiError::throttled(throttled));
    }
    let user = match state
        .service
        .authenticate(&credentials.login, &credentials.password)
        .await
    {
        Ok(user) => user,
        Err(AuthenticateError::InvalidCredentials { user }) => {
            if let Err(error) = state.throttle.login_failed(&attempt, now).await {
                tracing::error!(%error, "could not count a failed login");
            }
            state
                .audit
                .record(EventKind::LoginFailed, user, &device)
                .await;
            return Err(ApiError::InvalidCredentials);
        }
        Err(AuthenticateError::Unexpected(source)) => return Err(ApiError::internal(source)),
    };
    if let Err(error) = state.throttle.login_succeeded(&attempt).await {
        tracing::warn!(%error, "could not reset the failed logins of a client");
    }
    session
        .log_in(&user, credentials.remember, device.clone(), &state.service)
        .await?;
    tracing::info!(user.id = %user.id, "user logged in");
    if state.secure_cookie && plain_http {
        plain_http::secure_cookie_over_plain_http();
    }
    state
        .audit
        .record(EventKind::LoginSucceeded, Some(user.id), &device)
        .await;
    let device_cookie = device_cookie::issue(
        &state.device_signer,
        &[user.email.as_str(), user.username.as_str()],
        state.secure_cookie,
    );
    Ok((
        AppendHeaders(device_cookie.map(|cookie| (SET_COOKIE, cookie))),
        Json(UserBody::from(&user)),
    )
        .into_response())
}

/// `POST /v1/auth/logout`: deletes the stored session; the cookie is then expired.
#[utoipa::path(
    post,
    path = "/v1/auth/logout",
    tag = "auth",
    security(("session_cookie" = [])),
    responses(
        (status = 200, description = "Logged out: the session is deleted and the cookie \
            expired", body = MessageBody),
        Unauthenticated,
        CrossOrigin,
        Unavailable,
    ),
)]
pub(crate) async fn logout<B: Stores>(
    State(state): State<AppState<B>>,
    ClientDevice(device): ClientDevice,
    user: CurrentUser,
) -> Result<Json<MessageBody>, ApiError> {
    user.session.log_out().await?;
    tracing::info!(user.id = %user.owner.id, "user logged out");
    state
        .audit
        .record(EventKind::LoggedOut, Some(user.owner.id), &device)
        .await;
    Ok(MessageBody::new("Logged out."))
}
