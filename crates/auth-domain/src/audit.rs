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
    /// A user deleted their account, or an admin deleted it.
    AccountDeleted,
    /// Every session of a user was ended at once (by an admin).
    SessionsRevoked,
}

impl EventKind {
    /// Every kind, for stores that check what they read back.
    pub const ALL: [Self; 10] = [
        Self::Registered,
        Self::LoginSucceeded,
        Self::LoginFailed,
        Self::LoginThrottled,
        Self::LoggedOut,
        Self::SessionRevoked,
        Self::OtherSessionsRevoked,
        Self::PasswordChanged,
        Self::AccountDeleted,
        Self::SessionsRevoked,
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
            Self::SessionsRevoked => "sessions_revoked",
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

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    /// A client of the API: the user themselves, or whoever tried to be them (a failed
    /// login).
    User,
    /// An operator, through the admin command line.
    Admin,
    /// The service itself.
    System,
}

impl Actor {
    /// Every actor, for stores that check what they read back.
    pub const ALL: [Self; 3] = [Self::User, Self::Admin, Self::System];

    /// The stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Admin => "admin",
            Self::System => "system",
        }
    }

    /// The actor stored as `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|actor| actor.as_str() == name)
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The longest request id an event keeps; a longer one is cut (the HTTP layer accepts
/// no longer ones anyway).
pub const MAX_REQUEST_ID_CHARS: usize = 64;

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
    /// Who acted.
    pub actor: Actor,
    /// The id of the HTTP request that caused it, when one did.
    pub request_id: Option<String>,
    /// The client's address.
    pub ip: Option<IpAddr>,
    /// The client's User-Agent, cleaned and cut like a session's.
    pub user_agent: Option<String>,
}

impl AuthEvent {
    /// An event of `kind` about `user_id`, caused by `context`, happening `at`.
    pub fn new(
        kind: EventKind,
        user_id: Option<UserId>,
        context: &crate::accounts::Context,
        at: OffsetDateTime,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            at: timestamp::truncate_to_micros(at),
            kind,
            user_id,
            actor: context.actor,
            request_id: context
                .request_id
                .as_deref()
                .map(|id| id.chars().take(MAX_REQUEST_ID_CHARS).collect()),
            ip: context.device.ip,
            user_agent: context.device.user_agent.clone(),
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
        for actor in Actor::ALL {
            assert_eq!(Actor::parse(actor.as_str()), Some(actor));
            assert_eq!(
                serde_json::to_value(actor).unwrap(),
                serde_json::json!(actor.as_str())
            );
        }
    }
}
