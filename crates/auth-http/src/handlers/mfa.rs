//! The second factor: completing a login with it, enrolling and removing TOTP, recovery
//! codes, and the step-up that sensitive routes ask for.

use auth_domain::{
    mfa::{recovery::RecoveryCode, Method, MfaError, Proof},
    FieldError, Password, ValidationErrors,
};
use axum::{extract::State, response::Response, Json};
use serde::Serialize;
use serde_json::Value;

use super::{user_body::UserBody, MessageBody};
use crate::{
    client::Caller,
    error::{ApiError, ErrorBody},
    extract::{FromJsonObject, JsonBody, JsonObject},
    login::{CurrentUser, FreshUser, PendingUser},
    openapi::{BodyRejections, Gated, Sensitive, Throttled, Unavailable},
    state::{AppState, Stores},
};

const UNKNOWN_METHOD: FieldError = FieldError::new(
    "unknown_method",
    "The method must be \"totp\", \"recovery_code\" or \"webauthn\".",
);

/// A second factor's proof as submitted: `{"method": "totp" | "recovery_code", "code"}`
/// or `{"method": "webauthn", "credential": {...}}`; `None` for a method we do not know,
/// which [`proof`](Self::proof) refuses.
pub(crate) struct SecondFactorRequest(Option<SubmittedProof>);

/// A code: `{"method": "totp" | "recovery_code", "code"}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct CodeProof {
    /// `totp` or `recovery_code`.
    #[schema(pattern = "^(totp|recovery_code)$", example = "totp")]
    method: String,
    /// Six digits from the authenticator app, or a recovery code (case, spaces and
    /// dashes do not matter).
    #[schema(example = "123456")]
    code: String,
}

/// A passkey's answer: `{"method": "webauthn", "credential": {...}}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct PasskeyProof {
    /// `webauthn`.
    #[schema(pattern = "^webauthn$", example = "webauthn")]
    method: String,
    /// The browser's `PublicKeyCredential` as JSON, answering
    /// `POST /v1/auth/mfa/webauthn/options`.
    #[schema(value_type = Object)]
    credential: Value,
}

/// A second factor's proof.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // Only a schema: the body is read field by field.
pub(crate) enum SecondFactorProof {
    Code(CodeProof),
    Passkey(PasskeyProof),
}

/// The password, as a step-up's proof.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct PasswordProof {
    /// The account's password.
    password: String,
}

/// What `POST /v1/auth/reauthenticate` takes: the password, or a second factor's proof.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // Only a schema: the body is read field by field.
pub(crate) enum ReauthenticationProof {
    Password(PasswordProof),
    Code(CodeProof),
    Passkey(PasskeyProof),
}

/// A submitted proof, parsed.
pub(crate) enum SubmittedProof {
    Code(Proof),
    Passkey(Value),
}

impl FromJsonObject for SecondFactorRequest {
    fn from_object(object: &mut JsonObject) -> Option<Self> {
        let method = object.required_string("method")?;
        let proof = match method.as_str() {
            "totp" => Some(SubmittedProof::Code(Proof::Totp(
                object.required_string("code")?,
            ))),
            "recovery_code" => Some(SubmittedProof::Code(Proof::RecoveryCode(
                object.required_string("code")?,
            ))),
            "webauthn" => Some(SubmittedProof::Passkey(
                object.required_object("credential")?,
            )),
            _ => None,
        };
        Some(Self(proof))
    }
}

impl SecondFactorRequest {
    /// The proof, or 400 `validation_failed` naming the method.
    fn proof(self) -> Result<SubmittedProof, ApiError> {
        self.0.ok_or_else(|| {
            let mut errors = ValidationErrors::default();
            errors.add("method", UNKNOWN_METHOD);
            ApiError::Validation(errors)
        })
    }
}

/// The answer of a refused second-factor use case.
pub(crate) fn refused(error: MfaError) -> ApiError {
    match error {
        MfaError::InvalidCode => ApiError::InvalidCode,
        MfaError::Throttled(throttled) => ApiError::throttled(throttled),
        MfaError::AlreadyEnabled => ApiError::TotpAlreadyEnabled,
        MfaError::NotEnrolling => ApiError::TotpNotEnrolling,
        MfaError::NotEnabled => ApiError::FactorNotEnabled,
        MfaError::WrongPassword => ApiError::InvalidCredentials,
        MfaError::PasskeysUnavailable => ApiError::PasskeysUnavailable,
        MfaError::InvalidPasskey => ApiError::InvalidPasskey,
        MfaError::NotFound => ApiError::NotFound,
        MfaError::PasskeyRequired => ApiError::PasskeyRequired,
        MfaError::PasskeyRegistered => ApiError::PasskeyRegistered,
        MfaError::InvalidName(errors) => ApiError::Validation(errors),
        MfaError::Unexpected(source) => ApiError::internal(source),
    }
}

/// `POST /v1/auth/mfa/verify`: the second step of a login. A right proof makes the
/// half-authenticated session whole, under a new id, and answers the user as a login does.
#[utoipa::path(
    post,
    path = "/v1/auth/mfa/verify",
    tag = "second factor",
    security(("session_cookie" = [])),
    request_body = SecondFactorProof,
    responses(
        (status = 200, description = "The user, now logged in on a whole session", body = UserBody,
            headers(("Set-Cookie" = String, description = "The session cookie under a new \
                id, and a device cookie"))),
        (status = 400, description = "Malformed JSON (`malformed_json`) or an unknown \
            method (`validation_failed`)", body = ErrorBody),
        (status = 401, description = "No half-authenticated session (`access_denied`), a \
            wrong, replayed or spent code (`invalid_code`), or a passkey that did not verify \
            (`invalid_passkey`)", body = ErrorBody),
        (status = 503, description = "Passkeys are unavailable (`passkeys_unavailable`), \
            or the database does not answer (`unavailable`)", body = ErrorBody),
        BodyRejections,
        Throttled,
    ),
)]
pub(crate) async fn verify<B: Stores>(
    State(state): State<AppState<B>>,
    Caller(context): Caller,
    PendingUser(user): PendingUser,
    JsonBody(request): JsonBody<SecondFactorRequest>,
) -> Result<Response, ApiError> {
    let accounts = &state.accounts;
    let account = user.owner.email();
    let method = match request.proof()? {
        SubmittedProof::Code(proof) => accounts
            .prove_code(user.owner.id, &account, &proof, &context)
            .await
            .map_err(refused)?,
        SubmittedProof::Passkey(credential) => {
            super::passkeys::prove(&state, user.owner.id, &credential, &context).await?;
            Method::Webauthn
        }
    };
    let stored = accounts
        .service()
        .get_user(user.owner.id)
        .await
        .map_err(ApiError::internal)?
        .ok_or(ApiError::AccessDenied)?;
    user.session
        .log_in(
            &stored,
            user.login.persistent,
            user.login.device.clone(),
            accounts.service(),
        )
        .await?;
    accounts
        .second_step_completed(stored.id, method, &context)
        .await;
    Ok(super::auth::whole_login(&state, &stored))
}

/// Which second factors the user has.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct FactorsBody {
    /// Whether an authenticator app (TOTP) is on.
    totp: bool,
    /// How many passkeys.
    passkeys: u64,
    /// How many unused recovery codes.
    recovery_codes: u64,
}

/// `GET /v1/auth/mfa`: which second factors the user has.
#[utoipa::path(
    get,
    path = "/v1/auth/mfa",
    tag = "second factor",
    security(("session_cookie" = [])),
    responses(
        (status = 200, description = "The user's second factors", body = FactorsBody),
        Gated,
        Unavailable,
    ),
)]
pub(crate) async fn factors<B: Stores>(
    State(state): State<AppState<B>>,
    user: CurrentUser,
) -> Result<Json<FactorsBody>, ApiError> {
    let factors = state
        .accounts
        .factors(user.owner.id)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(FactorsBody {
        totp: factors.totp,
        passkeys: factors.passkeys,
        recovery_codes: factors.recovery_codes,
    }))
}

/// A TOTP enrolment, shown once.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct TotpEnrolmentBody {
    /// The secret, base32, for typing into an authenticator app.
    #[schema(example = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")]
    secret: String,
    /// The same as an `otpauth://` URI, for a QR code.
    otpauth_uri: String,
}

/// `POST /v1/auth/mfa/totp`: starts a TOTP enrolment (or restarts one not yet confirmed).
/// TOTP is on once `POST /v1/auth/mfa/totp/confirm` sees a first code.
#[utoipa::path(
    post,
    path = "/v1/auth/mfa/totp",
    tag = "second factor",
    security(("session_cookie" = [])),
    responses(
        (status = 200, description = "The secret, to enter into an authenticator app",
            body = TotpEnrolmentBody),
        (status = 409, description = "TOTP is on already (`totp_already_enabled`)",
            body = ErrorBody),
        Sensitive,
        Unavailable,
    ),
)]
pub(crate) async fn begin_totp<B: Stores>(
    State(state): State<AppState<B>>,
    FreshUser(user): FreshUser,
) -> Result<Json<TotpEnrolmentBody>, ApiError> {
    let enrolment = state
        .accounts
        .begin_totp(user.owner.id, &user.owner.email())
        .await
        .map_err(refused)?;
    Ok(Json(TotpEnrolmentBody {
        secret: enrolment.secret,
        otpauth_uri: enrolment.otpauth_uri,
    }))
}

/// What `POST /v1/auth/mfa/totp/confirm` takes.
#[derive(utoipa::ToSchema)]
pub(crate) struct CodeRequest {
    /// A code from the authenticator app.
    #[schema(example = "123456")]
    code: String,
}

impl FromJsonObject for CodeRequest {
    fn from_object(object: &mut JsonObject) -> Option<Self> {
        object.required_string("code").map(|code| Self { code })
    }
}

/// TOTP turned on.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct TotpEnabledBody {
    /// Always `true`.
    enabled: bool,
    /// With the account's first second factor: its recovery codes, shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    recovery_codes: Option<Vec<String>>,
}

/// `POST /v1/auth/mfa/totp/confirm`: turns TOTP on with a first code. That code's time
/// step is spent: it cannot also sign anyone in. The account's first second factor
/// answers its recovery codes.
#[utoipa::path(
    post,
    path = "/v1/auth/mfa/totp/confirm",
    tag = "second factor",
    security(("session_cookie" = [])),
    request_body = CodeRequest,
    responses(
        (status = 200, description = "TOTP is on; with the first second factor, the \
            recovery codes", body = TotpEnabledBody),
        (status = 400, description = "Malformed JSON (`malformed_json`)", body = ErrorBody),
        (status = 401, description = "No session (`access_denied`) or a wrong code \
            (`invalid_code`)", body = ErrorBody),
        (status = 409, description = "No enrolment waits for a code \
            (`totp_not_enrolling`)", body = ErrorBody),
        Sensitive,
        BodyRejections,
        Throttled,
        Unavailable,
    ),
)]
pub(crate) async fn confirm_totp<B: Stores>(
    State(state): State<AppState<B>>,
    Caller(context): Caller,
    FreshUser(user): FreshUser,
    JsonBody(request): JsonBody<CodeRequest>,
) -> Result<Json<TotpEnabledBody>, ApiError> {
    let codes = state
        .accounts
        .confirm_totp(user.owner.id, &user.owner.email(), &request.code, &context)
        .await
        .map_err(refused)?;
    Ok(Json(TotpEnabledBody {
        enabled: true,
        recovery_codes: codes.map(|codes| shown(&codes)),
    }))
}

/// `DELETE /v1/auth/mfa/totp`: turns TOTP off.
#[utoipa::path(
    delete,
    path = "/v1/auth/mfa/totp",
    tag = "second factor",
    security(("session_cookie" = [])),
    responses(
        (status = 200, description = "TOTP is off", body = MessageBody),
        (status = 409, description = "TOTP is not on (`factor_not_enabled`)", body = ErrorBody),
        Sensitive,
        Unavailable,
    ),
)]
pub(crate) async fn remove_totp<B: Stores>(
    State(state): State<AppState<B>>,
    Caller(context): Caller,
    FreshUser(user): FreshUser,
) -> Result<Json<MessageBody>, ApiError> {
    state
        .accounts
        .remove_totp(user.owner.id, &user.owner.email(), &context)
        .await
        .map_err(refused)?;
    Ok(MessageBody::new("The authenticator app (TOTP) is off."))
}

/// A set of recovery codes, shown once.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct RecoveryCodesBody {
    /// Ten codes, each good once.
    #[schema(example = json!(["abcdef-ghijkl-mnopqr-stuvwx"]))]
    recovery_codes: Vec<String>,
}

/// `POST /v1/auth/mfa/recovery-codes`: a new set of recovery codes; the old set stops
/// working.
#[utoipa::path(
    post,
    path = "/v1/auth/mfa/recovery-codes",
    tag = "second factor",
    security(("session_cookie" = [])),
    responses(
        (status = 200, description = "The new codes, shown this once", body = RecoveryCodesBody),
        (status = 409, description = "The account has no second factor \
            (`factor_not_enabled`)", body = ErrorBody),
        Sensitive,
        Unavailable,
    ),
)]
pub(crate) async fn regenerate_recovery_codes<B: Stores>(
    State(state): State<AppState<B>>,
    Caller(context): Caller,
    FreshUser(user): FreshUser,
) -> Result<Json<RecoveryCodesBody>, ApiError> {
    let codes = state
        .accounts
        .regenerate_recovery_codes(user.owner.id, &user.owner.email(), &context)
        .await
        .map_err(refused)?;
    Ok(Json(RecoveryCodesBody {
        recovery_codes: shown(&codes),
    }))
}

/// What `POST /v1/auth/reauthenticate` takes: `{"password"}`, or a second factor's
/// proof as `POST /v1/auth/mfa/verify` takes it.
pub(crate) enum ReauthenticationRequest {
    Password(Password),
    Factor(SecondFactorRequest),
}

impl FromJsonObject for ReauthenticationRequest {
    fn from_object(object: &mut JsonObject) -> Option<Self> {
        match object.optional_string("password")? {
            Some(password) => Some(Self::Password(Password::new(password))),
            None => SecondFactorRequest::from_object(object).map(Self::Factor),
        }
    }
}

/// `POST /v1/auth/reauthenticate`: a fresh proof (the password, a TOTP code or a
/// passkey), which lets sensitive actions through for the next 5 minutes.
#[utoipa::path(
    post,
    path = "/v1/auth/reauthenticate",
    tag = "second factor",
    security(("session_cookie" = [])),
    request_body = ReauthenticationProof,
    responses(
        (status = 200, description = "Proven: sensitive actions pass for 5 minutes",
            body = MessageBody),
        (status = 400, description = "Malformed JSON (`malformed_json`) or an unknown \
            method (`validation_failed`)", body = ErrorBody),
        (status = 401, description = "No session (`access_denied`), a wrong password \
            (`invalid_credentials`), a wrong or replayed code (`invalid_code`), or a passkey \
            that did not verify (`invalid_passkey`)", body = ErrorBody),
        (status = 403, description = "The account's address is unverified and must be \
            (`email_unverified`), or a cross-site request (`cross_origin`)", body = ErrorBody),
        BodyRejections,
        Throttled,
        Unavailable,
    ),
)]
pub(crate) async fn reauthenticate<B: Stores>(
    State(state): State<AppState<B>>,
    Caller(context): Caller,
    user: CurrentUser,
    JsonBody(request): JsonBody<ReauthenticationRequest>,
) -> Result<Json<MessageBody>, ApiError> {
    let accounts = &state.accounts;
    let account = user.owner.email();
    match request {
        ReauthenticationRequest::Password(password) => accounts
            .reauthenticate_with_password(user.owner.id, &account, &password, &context)
            .await
            .map_err(refused)?,
        ReauthenticationRequest::Factor(factor) => match factor.proof()? {
            SubmittedProof::Code(proof) => accounts
                .reauthenticate_with_code(user.owner.id, &account, &proof, &context)
                .await
                .map_err(refused)?,
            SubmittedProof::Passkey(credential) => {
                super::passkeys::prove(&state, user.owner.id, &credential, &context).await?;
                accounts
                    .reauthenticated_with_passkey(user.owner.id, &context)
                    .await;
            }
        },
    }
    user.session.reauthenticated(&user.login).await?;
    Ok(MessageBody::new(
        "Confirmed: sensitive actions are open for 5 minutes.",
    ))
}

/// Codes as shown: grouped for reading.
fn shown(codes: &[RecoveryCode]) -> Vec<String> {
    codes.iter().map(RecoveryCode::grouped).collect()
}
