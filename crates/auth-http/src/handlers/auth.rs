use super::user_body::UserBody;
use crate::{
    client::ClientDevice,
    error::ApiError,
    extract::{FromJsonObject, JsonBody, JsonObject},
    login::{Credentials, CurrentUser, LoginSession},
};
use auth_domain::{AuthService, AuthenticateError, Password, Registration, UserRepository};
use axum::{extract::State, http::StatusCode, Json};
use serde_json::{json, Value};

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

/// `POST /v1/auth/register`: creates a user; does not log them in.
pub(crate) async fn register<R: UserRepository>(
    State(service): State<AuthService<R>>,
    JsonBody(registration): JsonBody<Registration>,
) -> Result<(StatusCode, Json<UserBody>), ApiError> {
    let user = service.register(registration).await?;
    tracing::info!(user.id = %user.id, "user registered");
    Ok((StatusCode::CREATED, Json(UserBody::from(&user))))
}

/// `POST /v1/auth/login`: checks the credentials and logs the user in on a fresh session,
/// recording the device it comes from for the user's list of sessions.
pub(crate) async fn login<R: UserRepository>(
    State(service): State<AuthService<R>>,
    session: LoginSession,
    ClientDevice(device): ClientDevice,
    JsonBody(credentials): JsonBody<Credentials>,
) -> Result<Json<UserBody>, ApiError> {
    let user = service
        .authenticate(&credentials.login, &credentials.password)
        .await
        .map_err(|error| match error {
            AuthenticateError::InvalidCredentials { .. } => ApiError::InvalidCredentials,
            AuthenticateError::Unexpected(source) => ApiError::internal(source),
        })?;
    session.log_in(&user, credentials.remember, device).await?;
    tracing::info!(user.id = %user.id, "user logged in");
    Ok(Json(UserBody::from(&user)))
}

/// `POST /v1/auth/logout`: deletes the stored session; the cookie is then expired.
pub(crate) async fn logout(user: CurrentUser) -> Result<Json<Value>, ApiError> {
    user.session.log_out().await?;
    tracing::info!(user.id = %user.owner.id, "user logged out");
    Ok(Json(json!({"message": "Logged out."})))
}
