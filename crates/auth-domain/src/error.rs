use crate::{throttle::Throttled, UserId, ValidationErrors};

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

    /// Wraps a driver error that says the storage is out of reach rather than broken: see
    /// [`Unavailable`].
    pub fn unavailable(source: impl Into<BoxError>) -> Self {
        Self(Box::new(Unavailable(source.into())))
    }

    /// Whether this failure is the storage being out of reach (see [`is_unavailable`]).
    pub fn is_unavailable(&self) -> bool {
        is_unavailable(self)
    }
}

/// The storage is out of reach: it cannot be connected to, did not answer within the
/// database timeout, or refuses writes (disk full, read-only). A fault of the environment,
/// not a bug: the request may succeed later, unchanged, so callers answer "unavailable,
/// retry" instead of "internal error". Store adapters decide which driver errors these
/// are; everyone else finds it with [`is_unavailable`], wherever it sits in an error's
/// chain of sources.
#[derive(Debug, thiserror::Error)]
#[error("{UNAVAILABLE}")]
pub struct Unavailable(#[source] pub BoxError);

/// How long one storage operation may take unless configured otherwise
/// (`DATABASE_TIMEOUT`): past it, the storage counts as [`Unavailable`].
pub const DEFAULT_STORAGE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// How an [`Unavailable`] describes itself, and how [`unavailable_message`] marks an
/// error that can travel only as text.
const UNAVAILABLE: &str = "storage unavailable";

/// The text of an error that says the storage is out of reach, for interfaces whose errors
/// are strings only (tower-sessions' `session_store::Error::Backend`):
/// [`is_unavailable`] recognises it at the other end.
pub fn unavailable_message(description: impl std::fmt::Display) -> String {
    format!("{UNAVAILABLE}: {description}")
}

/// Whether `error`, or any error in its chain of sources, says the storage is out of
/// reach: an [`Unavailable`], or an error whose text [`unavailable_message`] made.
pub fn is_unavailable(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error.is::<Unavailable>() || error.to_string().starts_with(UNAVAILABLE) {
            return true;
        }
        current = error.source();
    }
    false
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
    /// Every field is valid but the password is a breached one (`password`): see
    /// [`crate::BREACHED`].
    #[error("breached password")]
    Breached(ValidationErrors),
    /// The email address belongs to another user.
    #[error("email address already taken")]
    EmailTaken,
    /// The username belongs to another user.
    #[error("username already taken")]
    UsernameTaken,
    /// Too many registrations from this address.
    #[error("too many registrations")]
    Throttled(Throttled),
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
    /// The current password is right and the new one passes every rule but one: it is a
    /// breached password (on the field named, see [`crate::BREACHED`]).
    #[error("breached password")]
    Breached(ValidationErrors),
    /// The user is gone (deleted since the session was loaded).
    #[error("no such user")]
    UnknownUser,
    /// Too many wrong passwords from this client.
    #[error("too many failed attempts")]
    Throttled(Throttled),
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
    /// Too many wrong passwords from this client.
    #[error("too many failed attempts")]
    Throttled(Throttled),
    /// Storage or hashing failed.
    #[error("account deletion failed")]
    Unexpected(#[source] BoxError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unavailable_storage_is_found_through_every_wrapper() {
        let cause = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let error = RepositoryError::unavailable(cause);
        assert!(error.is_unavailable());
        let inserted = InsertUserError::Unexpected(error);
        assert!(is_unavailable(&inserted));
        let registered = RegisterError::Unexpected(Box::new(inserted));
        assert!(is_unavailable(&registered));
    }

    #[test]
    fn an_unavailable_storage_is_found_in_a_message_that_went_through_a_string() {
        let text = unavailable_message("load session failed: i/o error");
        let error: BoxError = text.into();
        assert!(is_unavailable(error.as_ref()));
    }

    #[test]
    fn any_other_failure_is_not_unavailability() {
        let error = RepositoryError::new("a stored value could not be decoded");
        assert!(!error.is_unavailable());
        let error: BoxError = "storage failure".into();
        assert!(!is_unavailable(error.as_ref()));
    }
}
