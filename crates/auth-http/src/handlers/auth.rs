use auth_domain::{session::USER_DATA_KEY, AuthService, Password, Registration, UserRepository};
use axum::{extract::State, http::StatusCode, Json};
use serde_json::{json, Value};
use time::OffsetDateTime;
use tower_sessions::Session;

use super::user_body::UserBody;
use crate::{
    error::ApiError,
    extract::{FromJsonObject, JsonBody, JsonObject},
    login::{AuthSession, Credentials},
    rolling,
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
        Some(Self {
            login: login?,
            password: Password::new(password?),
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

/// `POST /v1/auth/login`: checks the credentials and logs the user in on a fresh session.
pub(crate) async fn login<R: UserRepository>(
    mut auth: AuthSession<R>,
    JsonBody(credentials): JsonBody<Credentials>,
) -> Result<Json<UserBody>, ApiError> {
    let user = auth
        .authenticate(credentials)
        .await
        .map_err(ApiError::internal)?
        .ok_or(ApiError::InvalidCredentials)?;
    // axum-login only issues a new session id when nobody is logged in on the session;
    // we want one at every login, so that no id outlives a change of user.
    if holds_login(&auth.session).await? {
        auth.session.cycle_id().await.map_err(ApiError::internal)?;
    }
    auth.login(&user).await.map_err(ApiError::internal)?;
    rolling::stamp(&auth.session, OffsetDateTime::now_utc())
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(user.id = %user.user().id, "user logged in");
    Ok(Json(UserBody::from(user.user())))
}

/// Whether the session carries login data, the case in which axum-login keeps the id.
async fn holds_login(session: &Session) -> Result<bool, ApiError> {
    let data = session
        .get_value(USER_DATA_KEY)
        .await
        .map_err(ApiError::internal)?;
    Ok(data.is_some_and(|data| !data["auth_hash"].is_null()))
}

/// `POST /v1/auth/logout`: deletes the stored session; the cookie is then expired.
pub(crate) async fn logout<R: UserRepository>(
    mut auth: AuthSession<R>,
) -> Result<Json<Value>, ApiError> {
    if auth.user.is_none() {
        return Err(ApiError::AccessDenied);
    }
    if let Some(user) = auth.logout().await.map_err(ApiError::internal)? {
        tracing::info!(user.id = %user.user().id, "user logged out");
    }
    Ok(Json(json!({"message": "Logged out."})))
}
