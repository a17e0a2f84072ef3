//! The audit trail: what happened to accounts, when, and from where.

use std::{fmt, future::Future, net::IpAddr};

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{timestamp, RepositoryError, UserId};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A user registered.
    Registered,
    /// A login succeeded.
    LoginSucceeded,
    /// A login was refused: wrong password or unknown account.
    LoginFailed,
    /// A login was refused unchecked: too many failures.
    LoginThrottled,
    /// A user logged out.
    LoggedOut,
    /// A user ended one of their sessions.
    SessionRevoked,
    /// A user ended all their other sessions.
    OtherSessionsRevoked,
    /// A user changed their password.
    PasswordChanged,
    /// A user deleted their account.
    AccountDeleted,
}

impl EventKind {
    /// Every kind, for stores that check what they read back.
    pub const ALL: [Self; 9] = [
        Self::Registered,
        Self::LoginSucceeded,
        Self::LoginFailed,
        Self::LoginThrottled,
        Self::LoggedOut,
        Self::SessionRevoked,
        Self::OtherSessionsRevoked,
        Self::PasswordChanged,
        Self::AccountDeleted,
    ];

    /// The stored and shown name (`login_succeeded`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registered => "registered",
            Self::LoginSucceeded => "login_succeeded",
            Self::LoginFailed => "login_failed",
            Self::LoginThrottled => "login_throttled",
            Self::LoggedOut => "logged_out",
            Self::SessionRevoked => "session_revoked",
            Self::OtherSessionsRevoked => "other_sessions_revoked",
            Self::PasswordChanged => "password_changed",
            Self::AccountDeleted => "account_deleted",
        }
    }

    /// The kind stored as `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of the audit trail. A failed login for an identifier that matches no account
/// carries no user and no identifier: nothing personal about strangers is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthEvent {
    /// Its id (a UUIDv7: ordered by time).
    pub id: Uuid,
    /// When, at the stored precision.
    pub at: OffsetDateTime,
    /// What.
    pub kind: EventKind,
    /// Whose account, when known.
    pub user_id: Option<UserId>,
    /// The client's address.
    pub ip: Option<IpAddr>,
    /// The client's User-Agent, cleaned and cut like a session's.
    pub user_agent: Option<String>,
}

impl AuthEvent {
    /// An event of `kind` happening now.
    pub fn now(
        kind: EventKind,
        user_id: Option<UserId>,
        ip: Option<IpAddr>,
        user_agent: Option<String>,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            at: timestamp::now(),
            kind,
            user_id,
            ip,
            user_agent,
        }
    }
}

/// Where events are kept. One adapter per backend.
///
/// # Errors
///
/// Every adapter MUST find a user's events by an indexed user id and time, and wrap every
/// driver error in [`RepositoryError`].
pub trait AuditLog: Clone + Send + Sync + 'static {
    /// Stores `event`.
    fn record(&self, event: &AuthEvent)
        -> impl Future<Output = Result<(), RepositoryError>> + Send;

    /// The `limit` most recent events of `user`, newest first.
    fn recent_for_user(
        &self,
        user: UserId,
        limit: u64,
    ) -> impl Future<Output = Result<Vec<AuthEvent>, RepositoryError>> + Send;

    /// Deletes the events older than `before`, at most `batch` per statement, until none
    /// is left; returns how many.
    fn purge_before(
        &self,
        before: OffsetDateTime,
        batch: u64,
    ) -> impl Future<Output = Result<u64, RepositoryError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_name() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::json!(kind.as_str())
            );
        }
        assert_eq!(EventKind::parse("nope"), None);
    }
}
