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
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::user_body::UserBody;
use crate::{
    client::ClientDevice,
    device_cookie,
    error::ApiError,
    extract::{FromJsonObject, JsonBody, JsonObject},
    login::{Credentials, CurrentUser, LoginSession},
    state::{AppState, Stores},
};

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
pub(crate) async fn login<B: Stores>(
    State(state): State<AppState<B>>,
    session: LoginSession,
    ClientDevice(device): ClientDevice,
    headers: HeaderMap,
    JsonBody(credentials): JsonBody<Credentials>,
) -> Result<Response, ApiError> {
    let proven = device_cookie::proves(&headers, &state.keys, &credentials.login);
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
        .log_in(&user, credentials.remember, device.clone())
        .await?;
    tracing::info!(user.id = %user.id, "user logged in");
    state
        .audit
        .record(EventKind::LoginSucceeded, Some(user.id), &device)
        .await;
    let device_cookie = device_cookie::issue(
        &state.keys,
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
pub(crate) async fn logout<B: Stores>(
    State(state): State<AppState<B>>,
    ClientDevice(device): ClientDevice,
    user: CurrentUser,
) -> Result<Json<Value>, ApiError> {
    user.session.log_out().await?;
    tracing::info!(user.id = %user.owner.id, "user logged out");
    state
        .audit
        .record(EventKind::LoggedOut, Some(user.owner.id), &device)
        .await;
    Ok(Json(json!({"message": "Logged out."})))
}
