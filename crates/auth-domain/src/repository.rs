use std::future::Future;

use crate::{
    Email, InsertUserError, NewUser, PasswordHash, RepositoryError, User, UserId, Username,
};

/// Where users live. One adapter per backend; the [`crate::AuthService`] is its only caller.
///
/// # Errors
///
/// Every adapter MUST:
/// - enforce uniqueness of the email and of the username in the database itself (unique
///   indexes) and report a violation as [`InsertUserError::EmailTaken`] or
///   [`InsertUserError::UsernameTaken`], never by looking first and inserting after;
/// - answer a lookup that finds nothing with `Ok(None)`, keeping `Err` for failures;
/// - wrap every driver error in [`RepositoryError`]; no driver type crosses this trait.
pub trait UserRepository: Clone + Send + Sync + 'static {
    /// Stores a new user and returns it as stored.
    fn insert(&self, user: NewUser) -> impl Future<Output = Result<User, InsertUserError>> + Send;

    /// The user with this id.
    fn find_by_id(
        &self,
        id: UserId,
    ) -> impl Future<Output = Result<Option<User>, RepositoryError>> + Send;

    /// The user with this (normalised) email address.
    fn find_by_email(
        &self,
        email: &Email,
    ) -> impl Future<Output = Result<Option<User>, RepositoryError>> + Send;

    /// The user with this (normalised) username.
    fn find_by_username(
        &self,
        username: &Username,
    ) -> impl Future<Output = Result<Option<User>, RepositoryError>> + Send;

    /// Replaces the password hash of `id`, but only if it is still `current`: a rehash at
    /// login must never overwrite a password changed in the meantime. Returns whether the
    /// hash was replaced.
    fn replace_password_hash(
        &self,
        id: UserId,
        current: &PasswordHash,
        new: &PasswordHash,
    ) -> impl Future<Output = Result<bool, RepositoryError>> + Send;
}

/// What the service needs of a session store beyond loading and saving sessions (which
/// the session layer does): ending every session of a user, on every instance at once.
///
/// # Errors
///
/// Every adapter MUST find a user's sessions by an indexed user id (never by scanning
/// session data), delete only that user's sessions, and wrap every driver error in
/// [`RepositoryError`].
pub trait UserSessions: Clone + Send + Sync + 'static {
    /// Deletes every session of `user` (logs them out everywhere); returns how many.
    fn delete_user_sessions(
        &self,
        user: UserId,
    ) -> impl Future<Output = Result<u64, RepositoryError>> + Send;
}
