//! Registering, logging in and out.

use auth_domain::{
    accounts::{Credentials, LoginError},
    Password, Registration, User,
};
use axum::{
    extract::State,
    http::{header::SET_COOKIE, HeaderMap, StatusCode},
    response::{AppendHeaders, IntoResponse, Response},
    Json,
};

use super::{user_body::UserBody, MessageBody};
use crate::{
    client::Caller,
    device_cookie,
    error::{ApiError, ErrorBody},
    extract::{FromJsonObject, JsonBody, JsonObject},
    login::{LoginSession, SessionUser},
    openapi::{BodyRejections, CrossOrigin, Throttled, Unauthenticated, Unavailable},
    plain_http::{self, PlainHttp},
    state::{AppState, Stores},
    trace,
};

/// What `POST /v1/auth/register` takes.
#[derive(utoipa::ToSchema)]
#[schema(example = json!({
    "email": "ada@example.com",
    "password": "correct horse battery staple",
    "username": "ada",
}))]
pub(crate) struct RegisterRequest {
    /// An email address; stored trimmed and in lower case.
    email: String,
    /// At least 8 characters (`PASSWORD_MIN_LENGTH`), at most 128, not a commonly used
    /// password, not the email address or username.
    #[schema(value_type = String, min_length = 8, max_length = 128)]
    password: Password,
    /// Defaults to the email address.
    username: Option<String>,
}

impl FromJsonObject for RegisterRequest {
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

/// What `POST /v1/auth/login` takes.
#[derive(utoipa::ToSchema)]
#[schema(example = json!({
    "email_or_username": "ada@example.com",
    "password": "correct horse battery staple",
}))]
pub(crate) struct LoginRequest {
    /// An email address or a username.
    email_or_username: String,
    #[schema(value_type = String)]
    password: Password,
    /// Whether the cookie outlives the browser; absent or null means yes.
    remember: Option<bool>,
}

impl FromJsonObject for LoginRequest {
    fn from_object(object: &mut JsonObject) -> Option<Self> {
        let login = object.required_string("email_or_username");
        let password = object.required_string("password");
        let remember = object.optional_bool("remember");
        Some(Self {
            email_or_username: login?,
            password: Password::new(password?),
            remember: remember?,
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
            (`validation_failed`, with `errors`); a password otherwise valid but found in the \
            breached-password filter (`BREACHED_PASSWORDS`) is 422 `password_breached`, with \
            `errors`", body = ErrorBody),
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
    Caller(context): Caller,
    JsonBody(request): JsonBody<RegisterRequest>,
) -> Result<(StatusCode, Json<UserBody>), ApiError> {
    let registration = Registration {
        email: request.email,
        password: request.password,
        username: request.username,
    };
    let user = state.accounts.register(registration, &context).await?;
    trace::note_user(user.id);
    Ok((StatusCode::CREATED, Json(UserBody::from(&user))))
}

/// What a login with a second factor owed answers.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct SecondStepBody {
    /// Always `true`.
    mfa_required: bool,
    /// The factors that complete the login, any one of them.
    #[schema(value_type = Vec<String>, example = json!(["webauthn", "totp", "recovery_code"]))]
    methods: Vec<&'static str>,
}

impl SecondStepBody {
    pub(crate) fn new(methods: &[auth_domain::mfa::Method]) -> Self {
        Self {
            mfa_required: true,
            methods: methods.iter().map(|method| method.as_str()).collect(),
        }
    }
}

/// What a login answers: the user, or the second step owed.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // Only a schema: the handler answers either body itself.
pub(crate) enum LoginBody {
    /// The login is whole.
    User(UserBody),
    /// A second factor is owed.
    SecondStep(SecondStepBody),
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
        (status = 200, description = "The user, now logged in on a fresh session; or, for a \
            user with a second factor, `{\"mfa_required\": true, \"methods\": [...]}` and a \
            half-authenticated session that lives 5 minutes and can only complete the \
            second step (`POST /v1/auth/mfa/verify`) or log out", body = LoginBody,
            headers(("Set-Cookie" = String, description = "The session cookie (`session`), \
                and, once the login is whole, a device cookie that spares this browser the \
                per-account limit"))),
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
    Caller(context): Caller,
    PlainHttp(plain_http): PlainHttp,
    headers: HeaderMap,
    JsonBody(request): JsonBody<LoginRequest>,
) -> Result<Response, ApiError> {
    let remember = request.remember.unwrap_or(true);
    let credentials = Credentials {
        device_tokens: device_cookie::presented(&headers),
        login: request.email_or_username,
        password: request.password,
    };
    let device = context.device.clone();
    let accounts = &state.accounts;
    let logged_in = accounts
        .log_in(&credentials, &context, |user, owed| async move {
            if owed.is_empty() {
                session
                    .log_in(&user, remember, device, accounts.service())
                    .await
            } else {
                session
                    .await_second_factor(&user, remember, device, accounts.service())
                    .await
            }
        })
        .await
        .map_err(|error| match error {
            LoginError::Throttled(throttled) => ApiError::throttled(throttled),
            LoginError::InvalidCredentials => ApiError::InvalidCredentials,
            LoginError::Session(error) => error,
            LoginError::Unexpected(source) => ApiError::internal(source),
        })?;
    let user = logged_in.user;
    trace::note_user(user.id);
    if state.secure_cookie && plain_http {
        plain_http::secure_cookie_over_plain_http();
    }
    if !logged_in.second_factors.is_empty() {
        // No device cookie yet: it is earned by the whole login.
        return Ok(Json(SecondStepBody::new(&logged_in.second_factors)).into_response());
    }
    Ok(whole_login(&state, &user))
}

/// The answer of a whole login (a password alone, the second step, a passkey): the user,
/// and the device cookie that spares this browser the per-account limit from now on.
pub(crate) fn whole_login<B: Stores>(state: &AppState<B>, user: &User) -> Response {
    let token = state.accounts.device_token(user);
    let device_cookie = device_cookie::issue(&token, state.secure_cookie);
    (
        AppendHeaders(device_cookie.map(|cookie| (SET_COOKIE, cookie))),
        Json(UserBody::from(user)),
    )
        .into_response()
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
    Caller(context): Caller,
    SessionUser(user): SessionUser,
) -> Result<Json<MessageBody>, ApiError> {
    state
        .accounts
        .log_out(user.owner.id, &context, user.session.log_out())
        .await?;
    Ok(MessageBody::new("Logged out."))
}
