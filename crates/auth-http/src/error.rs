//! The one error type of the HTTP layer and the JSON body every error response carries:
//! `{"message": "...", "code": "..."}`, plus `"errors": {"field": ["..."]}` when fields
//! were refused.

use auth_domain::{throttle::Throttled, BoxError, RegisterError, ValidationErrors};
use axum::{
    response::{IntoResponse, Response},
    Json,
};
use http::StatusCode;
use serde::Serialize;

/// Everything a request can end in other than success.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// No such route, or a route without this method.
    #[error("not found")]
    NotFound,
    /// The route needs a logged-in user and there is none.
    #[error("access denied")]
    AccessDenied,
    /// Unknown user or wrong password (one answer for both).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The session's password was right but its second factor is still owed: only
    /// `POST /v1/auth/mfa/verify` (and logging out) are open to it.
    #[error("second factor required")]
    MfaRequired,
    /// A sensitive action without a proof from the last five minutes: step up first.
    #[error("reauthentication required")]
    ReauthenticationRequired,
    /// A wrong, replayed or spent second-factor code (one answer for all).
    #[error("invalid code")]
    InvalidCode,
    /// A passkey's answer that did not verify: a stale or unknown challenge, a signature
    /// that fails, no user verification, a deleted passkey.
    #[error("invalid passkey")]
    InvalidPasskey,
    /// TOTP is on already.
    #[error("TOTP already enabled")]
    TotpAlreadyEnabled,
    /// No TOTP enrolment waits for a code.
    #[error("no TOTP enrolment")]
    TotpNotEnrolling,
    /// The factor is not on.
    #[error("factor not enabled")]
    FactorNotEnabled,
    /// Removing the password needs a passkey to sign in with.
    #[error("passkey required")]
    PasskeyRequired,
    /// The authenticator's passkey is registered already.
    #[error("passkey registered")]
    PasskeyRegistered,
    /// `PUBLIC_URL` cannot be a WebAuthn relying party (an IP address).
    #[error("passkeys unavailable")]
    PasskeysUnavailable,
    /// `EMAIL_VERIFICATION=required` and the user's address is not verified yet.
    #[error("email unverified")]
    EmailUnverified,
    /// A mailed token that is malformed, unknown, expired or spent (one answer for all).
    #[error("invalid token")]
    InvalidToken,
    /// A verification asked for an address that is verified already.
    #[error("already verified")]
    AlreadyVerified,
    /// A verification asked for while `EMAIL_VERIFICATION=off`.
    #[error("verification off")]
    VerificationOff,
    /// The body parsed but the domain refused some fields.
    #[error("invalid fields")]
    Validation(ValidationErrors),
    /// The new password is a breached one, and nothing else was refused: a 422 of its
    /// own, naming the field.
    #[error("breached password")]
    Breached(ValidationErrors),
    /// The email address belongs to another user.
    #[error("email address taken")]
    EmailTaken,
    /// The username belongs to another user.
    #[error("username taken")]
    UsernameTaken,
    /// The body is not declared as JSON.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// The body is not JSON at all (syntax error, empty, trailing garbage).
    #[error("malformed JSON")]
    MalformedJson,
    /// The body is JSON but not an object.
    #[error("body is not a JSON object")]
    NotAnObject,
    /// The body is JSON with an object that names a key twice: which value would count
    /// depends on the parser, so neither does.
    #[error("duplicate key")]
    DuplicateKey,
    /// Too many failed attempts: refused without checking; retry after this many seconds.
    #[error("too many attempts")]
    Throttled {
        /// Seconds until the count drops below the limit again.
        retry_after: u64,
    },
    /// A state-changing request from another site.
    #[error("cross-origin request refused")]
    CrossOrigin,
    /// The body is an object with missing, null or mistyped fields.
    #[error("unprocessable fields")]
    Unprocessable(ValidationErrors),
    /// The body is longer than the limit.
    #[error("payload too large")]
    PayloadTooLarge,
    /// The body could not be read (the client went away, a broken chunked encoding).
    #[error("unreadable body")]
    UnreadableBody,
    /// Anything the client cannot fix. Logged when turned into a response, never shown.
    #[error("internal error")]
    Internal(#[source] BoxError),
    /// The database is out of reach (see `auth_domain::Unavailable`): a 503 the client may
    /// retry. Logged when turned into a response, never shown.
    #[error("service unavailable")]
    Unavailable(#[source] BoxError),
    /// Too many logins wait for the password hasher (`auth_domain::Overloaded`): a 503
    /// the client may retry shortly.
    #[error("overloaded")]
    Overloaded,
    /// The body did not arrive in time (`BODY_READ_TIMEOUT`): a 408, and the connection
    /// is closed.
    #[error("request body timed out")]
    BodyTimeout,
    /// The request took longer than `REQUEST_TIMEOUT` to answer: a 503 to retry.
    #[error("request timed out")]
    RequestTimeout,
}

impl ApiError {
    /// Wraps a failure the client cannot fix: [`ApiError::Unavailable`] when the
    /// database is out of reach, wherever that sits in the error's sources.
    pub(crate) fn internal(error: impl Into<BoxError>) -> Self {
        let error = error.into();
        if auth_domain::is_overloaded(error.as_ref()) {
            Self::Overloaded
        } else if auth_domain::is_unavailable(error.as_ref()) {
            Self::Unavailable(error)
        } else {
            Self::Internal(error)
        }
    }

    /// A 429 for a refusal of the throttle, its wait rounded up to whole seconds.
    pub(crate) fn throttled(throttled: Throttled) -> Self {
        let wait = throttled.retry_after;
        let seconds = wait.whole_seconds() + i64::from(wait.subsec_nanoseconds() > 0);
        Self::Throttled {
            retry_after: u64::try_from(seconds).unwrap_or(1).max(1),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::AccessDenied
            | Self::InvalidCredentials
            | Self::MfaRequired
            | Self::InvalidCode
            | Self::InvalidPasskey => StatusCode::UNAUTHORIZED,
            Self::ReauthenticationRequired => StatusCode::FORBIDDEN,
            Self::TotpAlreadyEnabled
            | Self::TotpNotEnrolling
            | Self::FactorNotEnabled
            | Self::PasskeyRequired
            | Self::PasskeyRegistered => StatusCode::CONFLICT,
            Self::PasskeysUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::EmailUnverified => StatusCode::FORBIDDEN,
            Self::InvalidToken => StatusCode::BAD_REQUEST,
            Self::AlreadyVerified | Self::VerificationOff => StatusCode::CONFLICT,
            Self::Validation(_) | Self::MalformedJson | Self::UnreadableBody => {
                StatusCode::BAD_REQUEST
            }
            Self::EmailTaken | Self::UsernameTaken => StatusCode::CONFLICT,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::NotAnObject | Self::Unprocessable(_) | Self::DuplicateKey | Self::Breached(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::CrossOrigin => StatusCode::FORBIDDEN,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable(_) | Self::Overloaded | Self::RequestTimeout => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::AccessDenied => "access_denied",
            Self::InvalidCredentials => "invalid_credentials",
            Self::EmailUnverified => "email_unverified",
            Self::MfaRequired => "mfa_required",
            Self::ReauthenticationRequired => "reauthentication_required",
            Self::InvalidCode => "invalid_code",
            Self::InvalidPasskey => "invalid_passkey",
            Self::TotpAlreadyEnabled => "totp_already_enabled",
            Self::TotpNotEnrolling => "totp_not_enrolling",
            Self::FactorNotEnabled => "factor_not_enabled",
            Self::PasskeyRequired => "passkey_required",
            Self::PasskeyRegistered => "passkey_already_registered",
            Self::PasskeysUnavailable => "passkeys_unavailable",
            Self::InvalidToken => "invalid_token",
            Self::AlreadyVerified => "already_verified",
            Self::VerificationOff => "verification_off",
            Self::Validation(_) => "validation_failed",
            Self::Breached(_) => "password_breached",
            Self::EmailTaken => "email_taken",
            Self::UsernameTaken => "username_taken",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::MalformedJson => "malformed_json",
            Self::NotAnObject => "not_an_object",
            Self::Unprocessable(_) => "unprocessable_fields",
            Self::DuplicateKey => "duplicate_key",
            Self::Throttled { .. } => "too_many_attempts",
            Self::CrossOrigin => "cross_origin",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnreadableBody => "unreadable_body",
            Self::Internal(_) => "internal_error",
            Self::Unavailable(_) => "unavailable",
            Self::Overloaded => "overloaded",
            Self::BodyTimeout => "body_timeout",
            Self::RequestTimeout => "request_timeout",
        }
    }

    fn message(&self) -> &'static str {
        match self {
            Self::NotFound => "Not found",
            Self::AccessDenied => "Access denied!",
            Self::InvalidCredentials => "Invalid credentials!",
            Self::MfaRequired => {
                "Complete the second step of the login first (POST /v1/auth/mfa/verify), \
                 or log out."
            }
            Self::ReauthenticationRequired => {
                "Confirm it is you first (POST /v1/auth/reauthenticate): this needs a proof \
                 from the last 5 minutes."
            }
            Self::InvalidCode => "The code is wrong, used already, or expired.",
            Self::InvalidPasskey => "The passkey could not be verified.",
            Self::TotpAlreadyEnabled => "An authenticator app is set up already: remove it first.",
            Self::TotpNotEnrolling => {
                "No authenticator app setup is in progress: start one (POST /v1/auth/mfa/totp)."
            }
            Self::FactorNotEnabled => "That second factor is not set up.",
            Self::PasskeyRegistered => "This passkey is registered already.",
            Self::PasskeyRequired => {
                "Register a passkey first: without a password, it is how you sign in."
            }
            Self::PasskeysUnavailable => {
                "Passkeys are unavailable: PUBLIC_URL must name the service by a domain \
                 name, not an IP address."
            }
            Self::EmailUnverified => {
                "Verify your email address first: follow the link mailed to it, or ask for \
                 a new one (POST /v1/auth/email/verify/resend)."
            }
            Self::InvalidToken => "The link is invalid, expired or used already.",
            Self::AlreadyVerified => "Your email address is verified already.",
            Self::VerificationOff => "Email verification is off on this service.",
            Self::Validation(errors) => errors.first_message().unwrap_or("Invalid input."),
            Self::Breached(errors) => errors
                .first_message()
                .unwrap_or(auth_domain::BREACHED.message),
            Self::EmailTaken => "Email address already occupied!",
            Self::UsernameTaken => "Username already occupied!",
            Self::UnsupportedMediaType => {
                "Request body must be JSON (Content-Type: application/json)."
            }
            Self::MalformedJson => "Request body is not valid JSON.",
            Self::NotAnObject => "Request body must be a JSON object.",
            Self::Unprocessable(_) => "Some fields are missing or have the wrong type.",
            Self::DuplicateKey => "Request body names a key twice in one object.",
            Self::Throttled { .. } => "Too many attempts. Try again later.",
            Self::CrossOrigin => "Cross-origin request refused",
            Self::PayloadTooLarge => "Request body is too large.",
            Self::UnreadableBody => "Request body could not be read.",
            Self::Internal(_) => INTERNAL_MESSAGE,
            Self::Unavailable(_) => UNAVAILABLE_MESSAGE,
            Self::Overloaded => "Too busy to check passwords right now. Try again shortly.",
            Self::BodyTimeout => "Request body did not arrive in time.",
            Self::RequestTimeout => "Request took too long. Try again later.",
        }
    }
}

/// The only thing a client learns about a server-side failure.
pub(crate) const INTERNAL_MESSAGE: &str = "Internal server error";

/// The only thing a client learns about a database that is out of reach.
pub(crate) const UNAVAILABLE_MESSAGE: &str = "Service unavailable";

/// Seconds a client is asked to wait before retrying after a 503 `unavailable`: long
/// enough for a restarted database or a failed-over connection, short enough for a user.
pub(crate) const UNAVAILABLE_RETRY_AFTER_SECS: u32 = 5;

/// Seconds a client is asked to wait after a 503 `overloaded`: the hasher's queue is
/// bounded to about a second of work.
pub(crate) const OVERLOADED_RETRY_AFTER_SECS: u32 = 1;

impl From<RegisterError> for ApiError {
    fn from(error: RegisterError) -> Self {
        match error {
            RegisterError::Invalid(errors) => Self::Validation(errors),
            RegisterError::Breached(errors) => Self::Breached(errors),
            RegisterError::EmailTaken => Self::EmailTaken,
            RegisterError::UsernameTaken => Self::UsernameTaken,
            RegisterError::Throttled(throttled) => Self::throttled(throttled),
            RegisterError::Unexpected(source) => Self::internal(source),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let Self::Internal(source) = &self {
            // Logged here, inside the request's span, and nowhere else. Driver and
            // domain errors carry no secrets; the request itself is not logged.
            tracing::error!(error = %error_chain(source.as_ref()), "request failed");
            crate::metrics::database_error("unexpected");
        }
        if let Self::Unavailable(source) = &self {
            crate::metrics::database_error("unavailable");
            // A fault of the environment, not a bug: a warning, and during an outage
            // one line a second at most, counting the ones left out.
            if let Some(suppressed) = UNAVAILABLE_LOG.admit() {
                tracing::warn!(
                    error = %error_chain(source.as_ref()),
                    suppressed,
                    "database unavailable, answered 503"
                );
            }
        }
        let body = ErrorBody {
            message: self.message(),
            code: self.code(),
            errors: match &self {
                Self::Validation(errors) | Self::Unprocessable(errors) | Self::Breached(errors) => {
                    Some(errors)
                }
                _ => None,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let Self::Throttled { retry_after } = self {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, retry_after.max(1).into());
        }
        if let Self::Unavailable(_) = self {
            response.headers_mut().insert(
                http::header::RETRY_AFTER,
                UNAVAILABLE_RETRY_AFTER_SECS.into(),
            );
        }
        match self {
            // A queue that is full now drains within about a second.
            Self::Overloaded => {
                response.headers_mut().insert(
                    http::header::RETRY_AFTER,
                    OVERLOADED_RETRY_AFTER_SECS.into(),
                );
            }
            Self::RequestTimeout => {
                response.headers_mut().insert(
                    http::header::RETRY_AFTER,
                    UNAVAILABLE_RETRY_AFTER_SECS.into(),
                );
            }
            // The rest of the body may still trickle in: this connection is done.
            Self::BodyTimeout => {
                response.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
            }
            _ => {}
        }
        response
    }
}

/// A JSON error response for a status that arrived without a body of ours.
pub(crate) fn bare_status_response(status: StatusCode) -> Response {
    let known = match status {
        StatusCode::NOT_FOUND => Some(ApiError::NotFound),
        StatusCode::UNAUTHORIZED => Some(ApiError::AccessDenied),
        StatusCode::PAYLOAD_TOO_LARGE => Some(ApiError::PayloadTooLarge),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Some(ApiError::UnsupportedMediaType),
        _ => None,
    };
    if let Some(error) = known {
        return error.into_response();
    }
    let (message, code) = if status.is_server_error() {
        (INTERNAL_MESSAGE, "internal_error")
    } else {
        (status.canonical_reason().unwrap_or("Error"), "error")
    };
    let body = ErrorBody {
        message,
        code,
        errors: None,
    };
    (status, Json(body)).into_response()
}

/// Lets one "database unavailable" line a second through, counting the others.
static UNAVAILABLE_LOG: crate::LogLimiter = crate::LogLimiter::new();

/// An error with its causes, `outer: inner: innermost`, for one log line.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}

/// The body of every error response (`Error` in the OpenAPI document).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub(crate) struct ErrorBody<'a> {
    /// What went wrong, for people.
    #[schema(value_type = String, example = "Access denied!")]
    message: &'a str,
    /// What went wrong, for programs: stable, snake_case.
    #[schema(value_type = String, example = "access_denied")]
    code: &'static str,
    /// The refused fields, each with its reasons: only when fields were refused (400
    /// `validation_failed`, 422 `unprocessable_fields` or `password_breached`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<std::collections::BTreeMap<String, Vec<String>>>)]
    errors: Option<&'a ValidationErrors>,
}

#[cfg(test)]
mod tests {
    use auth_domain::FieldError;
    use http_body_util::BodyExt;
    use serde_json::{json, Value};

    use super::*;

    async fn parts(error: ApiError) -> (StatusCode, Value) {
        let response = error.into_response();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn each_error_has_its_status_and_contract_message() {
        let cases = [
            (ApiError::NotFound, 404, "Not found", "not_found"),
            (
                ApiError::AccessDenied,
                401,
                "Access denied!",
                "access_denied",
            ),
            (
                ApiError::InvalidCredentials,
                401,
                "Invalid credentials!",
                "invalid_credentials",
            ),
            (
                ApiError::EmailTaken,
                409,
                "Email address already occupied!",
                "email_taken",
            ),
            (
                ApiError::UsernameTaken,
                409,
                "Username already occupied!",
                "username_taken",
            ),
            (
                ApiError::UnsupportedMediaType,
                415,
                "",
                "unsupported_media_type",
            ),
            (ApiError::MalformedJson, 400, "", "malformed_json"),
            (ApiError::NotAnObject, 422, "", "not_an_object"),
            (ApiError::PayloadTooLarge, 413, "", "payload_too_large"),
            (ApiError::UnreadableBody, 400, "", "unreadable_body"),
            (ApiError::MfaRequired, 401, "", "mfa_required"),
            (
                ApiError::ReauthenticationRequired,
                403,
                "",
                "reauthentication_required",
            ),
            (ApiError::InvalidCode, 401, "", "invalid_code"),
            (ApiError::InvalidPasskey, 401, "", "invalid_passkey"),
            (
                ApiError::TotpAlreadyEnabled,
                409,
                "",
                "totp_already_enabled",
            ),
            (ApiError::TotpNotEnrolling, 409, "", "totp_not_enrolling"),
            (ApiError::FactorNotEnabled, 409, "", "factor_not_enabled"),
            (ApiError::PasskeyRequired, 409, "", "passkey_required"),
            (
                ApiError::PasskeyRegistered,
                409,
                "",
                "passkey_already_registered",
            ),
            (
                ApiError::PasskeysUnavailable,
                503,
                "",
                "passkeys_unavailable",
            ),
        ];
        for (error, status, message, code) in cases {
            let (actual_status, body) = parts(error).await;
            assert_eq!(actual_status.as_u16(), status, "{body}");
            assert_eq!(body["code"], code);
            if !message.is_empty() {
                assert_eq!(body["message"], message);
            }
            assert!(body.get("errors").is_none());
        }
    }

    #[tokio::test]
    async fn a_domain_validation_failure_is_a_400_listing_every_field() {
        let mut errors = ValidationErrors::default();
        let email_error = auth_domain::Email::parse("not an address").unwrap_err();
        errors.add("email", email_error);
        let (status, body) = parts(RegisterError::Invalid(errors).into()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["code"], "validation_failed");
        assert_eq!(body["message"], email_error.message);
        assert_eq!(body["errors"], json!({"email": [email_error.message]}));
    }

    #[tokio::test]
    async fn registration_conflicts_are_409s() {
        let (status, body) = parts(RegisterError::EmailTaken.into()).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["message"], "Email address already occupied!");
        let (status, body) = parts(RegisterError::UsernameTaken.into()).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["message"], "Username already occupied!");
    }

    #[tokio::test]
    async fn an_internal_error_hides_its_cause_from_the_client() {
        let cause = std::io::Error::other("connection to db.internal:5432 refused");
        let (status, body) = parts(ApiError::internal(cause)).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            body,
            json!({"message": "Internal server error", "code": "internal_error"})
        );
    }

    #[tokio::test]
    async fn an_unavailable_database_is_a_503_to_retry_that_hides_its_cause() {
        let cause = auth_domain::RepositoryError::unavailable(std::io::Error::other(
            "connection to db.internal:5432 refused",
        ));
        let error = ApiError::internal(RegisterError::Unexpected(Box::new(cause)));
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[http::header::RETRY_AFTER], "5");
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            body,
            json!({"message": "Service unavailable", "code": "unavailable"})
        );
    }

    #[tokio::test]
    async fn unprocessable_fields_are_listed_by_name() {
        let mut problems = ValidationErrors::default();
        problems.add(
            "password",
            FieldError::new("required", "This field is required."),
        );
        let (status, body) = parts(ApiError::Unprocessable(problems)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            body["errors"],
            json!({"password": ["This field is required."]})
        );
    }

    #[tokio::test]
    async fn a_bare_status_gets_the_same_body_as_our_own_errors() {
        let response = bare_status_response(StatusCode::PAYLOAD_TOO_LARGE);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["code"], "payload_too_large");

        let response = bare_status_response(StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["message"], "Internal server error");
    }

    #[test]
    fn the_error_chain_names_every_cause() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let error = Outer(std::io::Error::other("inner"));
        assert_eq!(error_chain(&error), "outer: inner");
    }
}
