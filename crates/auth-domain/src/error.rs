use crate::{UserId, ValidationErrors};

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
    InvalidCredentials {
        /// The user the login named, when it named one: for the audit trail, never for
        /// the answer.
        user: Option<UserId>,
    },
    /// Storage or hashing failed.
    #[error("authentication failed")]
    Unexpected(#[source] BoxError),
}

/// Why a password change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChangePasswordError {
    /// The current password is wrong (`current_password`), or the new one breaks the
    /// policy (`new_password`).
    #[error("invalid password change")]
    Invalid(ValidationErrors),
    /// The user is gone (deleted since the session was loaded).
    #[error("no such user")]
    UnknownUser,
    /// Storage or hashing failed.
    #[error("password change failed")]
    Unexpected(#[source] BoxError),
}

/// Why an account was not deleted.
#[derive(Debug, thiserror::Error)]
pub enum DeleteAccountError {
    /// The password is wrong (`password`).
    #[error("wrong password")]
    Invalid(ValidationErrors),
    /// The user is gone already.
    #[error("no such user")]
    UnknownUser,
    /// Storage or hashing failed.
    #[error("account deletion failed")]
    Unexpected(#[source] BoxError),
}
