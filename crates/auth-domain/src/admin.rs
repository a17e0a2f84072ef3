//! What an operator does across all users, beyond what a user does with their own account
//! ([`crate::UserRepository`], [`crate::UserSessions`], [`crate::audit::AuditLog`]): list
//! everyone, revoke any session by its handle, purge expired sessions now, read the latest
//! events of everyone. The admin CLI is its only caller.

use std::future::Future;

use crate::{
    audit::AuthEvent,
    session::{SessionHandle, SessionInfo},
    RepositoryError, User, UserId,
};

/// A live session, with the user logged in on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSession {
    /// Whose session it is.
    pub user_id: UserId,
    /// The session, as its owner sees it listed.
    pub session: SessionInfo,
}

/// The operator's view of a store: every user, every session, every event.
///
/// # Errors
///
/// Every adapter MUST:
/// - list users newest first by id (a UUIDv7 orders by creation), using the primary key;
/// - list only live sessions that a user is logged in on (never an anonymous or an expired
///   one, purged yet or not), ordered as [`crate::session::sort_for_listing`] orders them;
/// - revoke a session by its handle only while it is live and logged in, whoever's it is,
///   answer whose it was, and report an unknown or expired handle as `Ok(None)`;
/// - purge every expired session when asked, whatever a background purge or a TTL index
///   would do later, and leave every live session alone;
/// - list events of every user (and of none) newest first, the id ordering events of the
///   same instant, as [`crate::audit::AuditLog::recent_for_user`] does for one user;
/// - answer a limit of 0 with an empty list, and wrap every driver error in
///   [`RepositoryError`].
pub trait Administration: Clone + Send + Sync + 'static {
    /// The `limit` newest users.
    fn list_users(
        &self,
        limit: u64,
    ) -> impl Future<Output = Result<Vec<User>, RepositoryError>> + Send;

    /// The `limit` most recently used live sessions of all users.
    fn list_sessions(
        &self,
        limit: u64,
    ) -> impl Future<Output = Result<Vec<UserSession>, RepositoryError>> + Send;

    /// Deletes the live session `handle`, whoever's it is; returns whose it was, or
    /// `None` when there was none.
    fn revoke_session(
        &self,
        handle: &SessionHandle,
    ) -> impl Future<Output = Result<Option<UserId>, RepositoryError>> + Send;

    /// Deletes every expired session now; returns how many.
    fn purge_expired_sessions(&self) -> impl Future<Output = Result<u64, RepositoryError>> + Send;

    /// The `limit` most recent events of all users, newest first.
    fn recent_events(
        &self,
        limit: u64,
    ) -> impl Future<Output = Result<Vec<AuthEvent>, RepositoryError>> + Send;
}
