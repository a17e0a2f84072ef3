use std::future::Future;

use crate::{
    session::{OwnedSession, SessionHandle, SessionInfo},
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

    /// Deletes the user; returns whether they existed. A store that keeps copies of the
    /// user elsewhere (a snapshot in session documents) ends those sessions too, so that
    /// none outlives its user.
    fn delete(&self, id: UserId) -> impl Future<Output = Result<bool, RepositoryError>> + Send;
}

/// What a user does with their own sessions, beyond loading and saving one (which the
/// session layer does): list them, and end one, all but one, or all of them, on every
/// instance at once.
///
/// # Errors
///
/// Every adapter MUST find a user's sessions by an indexed user id (never by scanning
/// session data), only ever list or delete that user's sessions, never list an expired
/// one (purged yet or not), and wrap every driver error in [`RepositoryError`].
pub trait UserSessions: Clone + Send + Sync + 'static {
    /// The live sessions of `user`, most recently used first
    /// ([`sort_for_listing`](crate::session::sort_for_listing)).
    fn list_user_sessions(
        &self,
        user: UserId,
    ) -> impl Future<Output = Result<Vec<SessionInfo>, RepositoryError>> + Send;

    /// Deletes the session `handle` if it is one of `user`'s; returns whether it was.
    fn delete_user_session(
        &self,
        user: UserId,
        handle: &SessionHandle,
    ) -> impl Future<Output = Result<bool, RepositoryError>> + Send;

    /// Deletes every session of `user` but `keep` ("log out my other devices"); returns
    /// how many.
    fn delete_other_user_sessions(
        &self,
        user: UserId,
        keep: &SessionHandle,
    ) -> impl Future<Output = Result<u64, RepositoryError>> + Send;

    /// Deletes every session of `user` (logs them out everywhere); returns how many.
    fn delete_user_sessions(
        &self,
        user: UserId,
    ) -> impl Future<Output = Result<u64, RepositoryError>> + Send;
}

/// Loading a session for a request, with its owner, in one round trip: the read behind
/// every authenticated request. The session layer calls it; tower-sessions'
/// `SessionStore` (which a store also implements) does the writes.
///
/// # Errors
///
/// Every adapter MUST answer an unknown or expired session (purged yet or not) with
/// `Ok(None)`, read the owner as stored now (never what the session was written with, save
/// a snapshot that the user repository keeps current), give no owner for a session whose
/// user is gone, and wrap every driver error in [`RepositoryError`] ([`unavailable`] when
/// the storage is out of reach).
///
/// [`unavailable`]: RepositoryError::unavailable
pub trait OwnedSessions: Send + Sync + 'static {
    /// The live session `session_id` (the id its cookie carries), with its owner.
    fn load_owned(
        &self,
        session_id: &str,
    ) -> impl Future<Output = Result<Option<OwnedSession>, RepositoryError>> + Send;
}
