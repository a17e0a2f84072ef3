use crate::ValidationErrors;

/// An error from beneath the domain, kept opaque: callers log it, they do not match on it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The storage failed in a way the caller cannot fix (connection lost, bad row, ...).
#[derive(Debug, thiserror::Error)]
#[error("storage failure")]
pub struct RepositoryError(#[source] pub BoxError);

impl RepositoryError {
    /// Wraps a driver error.
    pub fn new(source: impl Into<BoxError>) -> Self {
        Self(source.into())
    }
}

/// Why a user could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum InsertUserError {
    /// Another user holds this email address (a unique-index violation, never a pre-check).
    #[error("email address already taken")]
    EmailTaken,
    /// Another user holds this username.
    #[error("username already taken")]
    UsernameTaken,
    /// Anything else.
    #[error(transparent)]
    Unexpected(#[from] RepositoryError),
}

/// Why a registration was refused.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// One or more fields are invalid.
    #[error("invalid registration")]
    Invalid(ValidationErrors),
    /// The email address belongs to another user.
    #[error("email address already taken")]
    EmailTaken,
    /// The username belongs to another user.
    #[error("username already taken")]
    UsernameTaken,
    /// Storage or hashing failed.
    #[error("registration failed")]
    Unexpected(#[source] BoxError),
}

/// Why a login was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthenticateError {
    /// Unknown user or wrong password: deliberately one answer for both.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Storage or hashing failed.
    #[error("authentication failed")]
    Unexpected(#[source] BoxError),
}
