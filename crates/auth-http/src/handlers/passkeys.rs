//! Passkeys (WebAuthn): registering them, listing, renaming and deleting them, signing in
//! with one and no username, and the options of a passkey proof (the second step of a
//! login, a step-up). Options are `{"publicKey": {...}}` in WebAuthn's JSON form, binary
//! fields base64url; answers are the browser's `PublicKeyCredential` as JSON.

use auth_domain::{accounts::Context, factors::StoredPasskey, mfa::recovery::RecoveryCode, UserId};
use axum::{
    extract::{rejection::PathRejection, Path, State},
    http::StatusCode,
    response::Response,
    Json,
};
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{mfa::refused, user_body::UserBody, MessageBody};
use crate::{
    client::Caller,
    error::{ApiError, ErrorBody},
    extract::{FromJsonObject, JsonBody, JsonObject},
    login::{CurrentUser, FreshUser, LoginSession, SessionUser},
    openapi::{BodyRejections, CrossOrigin, Gated, Sensitive, Throttled, Unavailable},
    plain_http::{self, PlainHttp},
    state::{AppState, Stores},
    trace,
};

/// Verifies `credential` as `user`'s passkey answering a proof ceremony.
pub(crate) async fn prove<B: Stores>(
    state: &AppState<B>,
    user: UserId,
    credential: &Value,
    context: &Context,
) -> Result<(), ApiError> {
    state
        .accounts
        .prove_passkey(user, credential, context)
        .await
        .map(drop)
        .map_err(refused)
}

/// A passkey as the API shows it: never its key.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PasskeyBody {
    /// Our id for it, as the routes name it.
    id: Uuid,
    /// What the user calls it.
    name: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: OffsetDateTime,
    /// When it last signed someone in.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    last_used_at: Option<OffsetDateTime>,
}

impl From<&StoredPasskey> for PasskeyBody {
    fn from(passkey: &StoredPasskey) -> Self {
        Self {
            id: passkey.id,
            name: passkey.name.clone(),
            created_at: passkey.created_at,
            last_used_at: passkey.last_used_at,
        }
    }
}

/// A WebAuthn ceremony's options, as `navigator.credentials` takes them once decoded.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Only a schema: the options are the library's JSON.
pub(crate) struct OptionsBody {
    /// `PublicKeyCredentialCreationOptions` or `PublicKeyCredentialRequestOptions`,
    /// binary fields base64url.
    #[schema(rename = "publicKey", value_type = Object)]
    public_key: Value,
}

/// What a passkey's answer comes in.
#[derive(utoipa::ToSchema)]
pub(crate) struct CredentialRequest {
    /// The browser's `PublicKeyCredential`, as JSON (binary fields base64url).
    #[schema(value_type = Object)]
    credential: Value,
    /// A name for a new passkey (registration only); "Passkey" when absent.
    #[schema(value_type = Option<String>, max_length = 64)]
    name: Option<String>,
}

impl FromJsonObject for CredentialRequest {
    fn from_object(object: &mut JsonObject) -> Option<Self> {
        let credential = object.required_object("credential");
        let name = object.optional_string("name");
        Some(Self {
            credential: credential?,
            name: name?,
        })
    }
}

/// What renaming takes.
#[derive(utoipa::ToSchema)]
pub(crate) struct RenameRequest {
    /// The new name: not blank, at most 64 characters.
    #[schema(max_length = 64)]
    name: String,
}

impl FromJsonObject for RenameRequest {
    fn from_object(object: &mut JsonObject) -> Option<Self> {
        object.required_string("name").map(|name| Self { name })
    }
}

/// A passkey registered.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct RegisteredBody {
    passkey: PasskeyBody,
    /// With the account's first second factor: its recovery codes, shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    recovery_codes: Option<Vec<String>>,
}

/// The user's passkeys.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct PasskeyList {
    /// Oldest first.
    passkeys: Vec<PasskeyBody>,
}

/// `POST /v1/auth/passkeys/register/options`: the creation options of a new passkey of
/// the logged-in user (discoverable, user verification required, attestation `none`).
#[utoipa::path(
    post,
    path = "/v1/auth/passkeys/register/options",
    tag = "passkeys",
    security(("session_cookie" = [])),
    responses(
        (status = 200, description = "The creation options; the ceremony lives 5 minutes",
            body = OptionsBody),
        (status = 503, description = "`PUBLIC_URL` is on an IP address \
            (`passkeys_unavailable`), or the database does not answer (`unavailable`)",
            body = ErrorBody),
        Sensitive,
    ),
)]
pub(crate) async fn registration_options<B: Stores>(
    State(state): State<AppState<B>>,
    FreshUser(user): FreshUser,
) -> Result<Json<Value>, ApiError> {
    let options = state
        .accounts
        .passkey_registration_options(
            user.owner.id,
            &user.owner.email(),
            user.owner.username().as_str(),
        )
        .await
        .map_err(refused)?;
    Ok(Json(options))
}

/// `POST /v1/auth/passkeys/register`: stores the passkey that answers the registration
/// ceremony. It then serves both ways: to sign in with no password, and as the second step
/// after one. The account's first second factor answers its recovery codes.
#[utoipa::path(
    post,
    path = "/v1/auth/passkeys/register",
    tag = "passkeys",
    security(("session_cookie" = [])),
    request_body = CredentialRequest,
    responses(
        (status = 201, description = "Registered", body = RegisteredBody),
        (status = 400, description = "Malformed JSON (`malformed_json`), or a blank or too \
            long name (`validation_failed`)", body = ErrorBody),
        (status = 401, description = "No session (`access_denied`), or an answer that does \
            not verify: a spent or expired ceremony, another origin, no user verification \
            (`invalid_passkey`)", body = ErrorBody),
        (status = 409, description = "The passkey is registered already \
            (`passkey_already_registered`)", body = ErrorBody),
        (status = 503, description = "Passkeys are unavailable (`passkeys_unavailable`) or \
            the database does not answer (`unavailable`)", body = ErrorBody),
        Sensitive,
        BodyRejections,
    ),
)]
pub(crate) async fn register<B: Stores>(
    State(state): State<AppState<B>>,
    Caller(context): Caller,
    FreshUser(user): FreshUser,
    JsonBody(request): JsonBody<CredentialRequest>,
) -> Result<(StatusCode, Json<RegisteredBody>), ApiError> {
    let (passkey, codes) = state
        .accounts
        .register_passkey(
            user.owner.id,
            &user.owner.email(),
            &request.credential,
            request.name.as_deref(),
            &context,
        )
        .await
        .map_err(refused)?;
    Ok((
        StatusCode::CREATED,
        Json(RegisteredBody {
            passkey: PasskeyBody::from(&passkey),
            recovery_codes: codes.map(|codes| codes.iter().map(RecoveryCode::grouped).collect()),
        }),
    ))
}

/// `GET /v1/auth/passkeys`: the user's passkeys.
#[utoipa::path(
    get,
    path = "/v1/auth/passkeys",
    tag = "passkeys",
    security(("session_cookie" = [])),
    responses(
        (status = 200, description = "The user's passkeys, oldest first", body = PasskeyList),
        Gated,
        Unavailable,
    ),
)]
pub(crate) async fn list<B: Stores>(
    State(state): State<AppState<B>>,
    user: CurrentUser,
) -> Result<Json<PasskeyList>, ApiError> {
    let passkeys = state
        .accounts
        .passkeys(user.owner.id)
        .await
        .map_err(refused)?;
    Ok(Json(PasskeyList {
        passkeys: passkeys.iter().map(PasskeyBody::from).collect(),
    }))
}

/// The passkey id of a path; anything else names no passkey (404).
fn passkey_id(id: Result<Path<String>, PathRejection>) -> Result<Uuid, ApiError> {
    id.ok()
        .and_then(|Path(raw)| raw.parse().ok())
        .ok_or(ApiError::NotFound)
}

/// `PATCH /v1/auth/passkeys/{id}`: renames one of the user's passkeys.
#[utoipa::path(
    patch,
    path = "/v1/auth/passkeys/{id}",
    tag = "passkeys",
    security(("session_cookie" = [])),
    params(("id" = String, Path, description = "A passkey's `id`, as `GET /v1/auth/passkeys` lists it")),
    request_body = RenameRequest,
    responses(
        (status = 200, description = "Renamed", body = PasskeyBody),
        (status = 400, description = "Malformed JSON (`malformed_json`), or a blank or too \
            long name (`validation_failed`)", body = ErrorBody),
        (status = 404, description = "No such passkey of this user (`not_found`)", body = ErrorBody),
        Gated,
        BodyRejections,
        Unavailable,
    ),
)]
pub(crate) async fn rename<B: Stores>(
    State(state): State<AppState<B>>,
    Caller(context): Caller,
    user: CurrentUser,
    id: Result<Path<String>, PathRejection>,
    JsonBody(request): JsonBody<RenameRequest>,
) -> Result<Json<PasskeyBody>, ApiError> {
    let id = passkey_id(id)?;
    let passkey = state
        .accounts
        .rename_passkey(user.owner.id, id, &request.name, &context)
        .await
        .map_err(refused)?;
    Ok(Json(PasskeyBody::from(&passkey)))
}

/// `DELETE /v1/auth/passkeys/{id}`: deletes one of the user's passkeys; it signs no one
/// in from now on.
#[utoipa::path(
    delete,
    path = "/v1/auth/passkeys/{id}",
    tag = "passkeys",
    security(("session_cookie" = [])),
    params(("id" = String, Path, description = "A passkey's `id`, as `GET /v1/auth/passkeys` lists it")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such passkey of this user (`not_found`)", body = ErrorBody),
        Sensitive,
        Unavailable,
    ),
)]
pub(crate) async fn delete<B: Stores>(
    State(state): State<AppState<B>>,
    Caller(context): Caller,
    FreshUser(user): FreshUser,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let id = passkey_id(id)?;
    state
        .accounts
        .delete_passkey(user.owner.id, &user.owner.email(), id, &context)
        .await
        .map_err(refused)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v1/auth/password`: removes the password of an account with a passkey: it
/// signs in with its passkeys alone from now on; an emailed reset sets a password again.
/// Every other session ends; this one goes on under a new id.
#[utoipa::path(
    delete,
    path = "/v1/auth/password",
    tag = "passkeys",
    security(("session_cookie" = [])),
    responses(
        (status = 200, description = "Removed: every other session of the user ended, this \
            one goes on under a new cookie", body = MessageBody,
            headers(("Set-Cookie" = String, description = "The session cookie, re-issued"))),
        (status = 409, description = "The account has no passkey to sign in with \
            (`passkey_required`)", body = ErrorBody),
        Sensitive,
        Unavailable,
    ),
)]
pub(crate) async fn remove_password<B: Stores>(
    State(state): State<AppState<B>>,
    Caller(context): Caller,
    FreshUser(user): FreshUser,
) -> Result<Json<MessageBody>, ApiError> {
    let keep = user.session.handle();
    let updated = state
        .accounts
        .remove_password(user.owner.id, &user.owner.email(), keep.as_ref(), &context)
        .await
        .map_err(refused)?;
    user.session
        .log_in(
            &updated,
            user.login.persistent,
            user.login.device.clone(),
            state.accounts.service(),
        )
        .await?;
    Ok(MessageBody::new(
        "Password removed: sign in with a passkey from now on.",
    ))
}

/// `POST /v1/auth/passkeys/login/options`: the request options of a sign-in with no
/// username: an empty `allowCredentials`, user verification required.
#[utoipa::path(
    post,
    path = "/v1/auth/passkeys/login/options",
    tag = "passkeys",
    responses(
        (status = 200, description = "The request options; the ceremony lives 5 minutes",
            body = OptionsBody),
        (status = 503, description = "Passkeys are unavailable (`passkeys_unavailable`) or \
            the database does not answer (`unavailable`)", body = ErrorBody),
        CrossOrigin,
        Throttled,
    ),
)]
pub(crate) async fn sign_in_options<B: Stores>(
    State(state): State<AppState<B>>,
    Caller(context): Caller,
) -> Result<Json<Value>, ApiError> {
    let options = state
        .accounts
        .passkey_sign_in_options(&context)
        .await
        .map_err(refused)?;
    Ok(Json(options))
}

/// `POST /v1/auth/passkeys/login`: signs in with the passkey that answers a sign-in
/// ceremony, with no username and no password, on a fresh session.
#[utoipa::path(
    post,
    path = "/v1/auth/passkeys/login",
    tag = "passkeys",
    request_body = CredentialRequest,
    responses(
        (status = 200, description = "The user, now logged in on a fresh session", body = UserBody,
            headers(("Set-Cookie" = String, description = "The session cookie, and a device \
                cookie"))),
        (status = 400, description = "Malformed JSON (`malformed_json`)", body = ErrorBody),
        (status = 401, description = "An answer that does not verify: a spent or expired \
            ceremony, an unknown or deleted passkey, no user verification, another origin \
            (`invalid_passkey`)", body = ErrorBody),
        (status = 503, description = "Passkeys are unavailable (`passkeys_unavailable`) or \
            the database does not answer (`unavailable`)", body = ErrorBody),
        BodyRejections,
        CrossOrigin,
    ),
)]
pub(crate) async fn sign_in<B: Stores>(
    State(state): State<AppState<B>>,
    session: LoginSession,
    Caller(context): Caller,
    PlainHttp(plain_http): PlainHttp,
    JsonBody(request): JsonBody<CredentialRequest>,
) -> Result<Response, ApiError> {
    let accounts = &state.accounts;
    let user = accounts
        .passkey_sign_in(&request.credential, &context)
        .await
        .map_err(refused)?;
    session
        .log_in(&user, true, context.device.clone(), accounts.service())
        .await?;
    trace::note_user(user.id);
    if state.secure_cookie && plain_http {
        plain_http::secure_cookie_over_plain_http();
    }
    Ok(super::auth::whole_login(&state, &user))
}

/// `POST /v1/auth/mfa/webauthn/options`: the request options of a passkey proof by the
/// session's user, for the second step of a login or a step-up: their passkeys in
/// `allowCredentials`.
#[utoipa::path(
    post,
    path = "/v1/auth/mfa/webauthn/options",
    tag = "second factor",
    security(("session_cookie" = [])),
    responses(
        (status = 200, description = "The request options; the ceremony lives 5 minutes",
            body = OptionsBody),
        (status = 401, description = "No session (`access_denied`)", body = ErrorBody),
        (status = 409, description = "The user has no passkey (`factor_not_enabled`)",
            body = ErrorBody),
        (status = 503, description = "Passkeys are unavailable (`passkeys_unavailable`) or \
            the database does not answer (`unavailable`)", body = ErrorBody),
        CrossOrigin,
    ),
)]
pub(crate) async fn proof_options<B: Stores>(
    State(state): State<AppState<B>>,
    SessionUser(user): SessionUser,
) -> Result<Json<Value>, ApiError> {
    let options = state
        .accounts
        .passkey_proof_options(user.owner.id)
        .await
        .map_err(refused)?;
    Ok(Json(options))
}
