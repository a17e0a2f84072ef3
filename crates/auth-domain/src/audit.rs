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
    /// A password reset link was mailed to the user.
    PasswordResetRequested,
    /// The user set a new password with a reset link.
    PasswordReset,
    /// A verification link was mailed to the user's address.
    EmailVerificationSent,
    /// The user verified their address.
    EmailVerified,
    /// The user asked to change their address; a link went to the new one.
    EmailChangeRequested,
    /// The user's new address was confirmed and is now theirs.
    EmailChanged,
    /// A correct password asked for the second step; the session waits for it.
    MfaChallenged,
    /// The second step of a login succeeded: the session is whole.
    MfaSucceeded,
    /// A second factor was refused: a wrong, replayed or spent code, or a passkey that did not verify.
    MfaFailed,
    /// The user enrolled TOTP (a first code confirmed it).
    TotpEnabled,
    /// The user removed TOTP.
    TotpRemoved,
    /// A new set of recovery codes replaced the old one.
    RecoveryCodesGenerated,
    /// A recovery code was spent.
    RecoveryCodeUsed,
    /// The user registered a passkey.
    PasskeyAdded,
    /// The user deleted a passkey.
    PasskeyRemoved,
    /// The user renamed a passkey.
    PasskeyRenamed,
    /// The user proved themselves again for a sensitive action (step-up).
    Reauthenticated,
    /// An operator removed every second factor of the user.
    FactorsReset,
    /// The user removed their password: they sign in with passkeys only.
    PasswordRemoved,
}

impl EventKind {
    /// Every kind, for stores that check what they read back.
    pub const ALL: [Self; 29] = [
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
        Self::PasswordResetRequested,
        Self::PasswordReset,
        Self::EmailVerificationSent,
        Self::EmailVerified,
        Self::EmailChangeRequested,
        Self::EmailChanged,
        Self::MfaChallenged,
        Self::MfaSucceeded,
        Self::MfaFailed,
        Self::TotpEnabled,
        Self::TotpRemoved,
        Self::RecoveryCodesGenerated,
        Self::RecoveryCodeUsed,
        Self::PasskeyAdded,
        Self::PasskeyRemoved,
        Self::PasskeyRenamed,
        Self::Reauthenticated,
        Self::FactorsReset,
        Self::PasswordRemoved,
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
            Self::PasswordResetRequested => "password_reset_requested",
            Self::PasswordReset => "password_reset",
            Self::EmailVerificationSent => "email_verification_sent",
            Self::EmailVerified => "email_verified",
            Self::EmailChangeRequested => "email_change_requested",
            Self::EmailChanged => "email_changed",
            Self::MfaChallenged => "mfa_challenged",
            Self::MfaSucceeded => "mfa_succeeded",
            Self::MfaFailed => "mfa_failed",
            Self::TotpEnabled => "totp_enabled",
            Self::TotpRemoved => "totp_removed",
            Self::RecoveryCodesGenerated => "recovery_codes_generated",
            Self::RecoveryCodeUsed => "recovery_code_used",
            Self::PasskeyAdded => "passkey_added",
            Self::PasskeyRemoved => "passkey_removed",
            Self::PasskeyRenamed => "passkey_renamed",
            Self::Reauthenticated => "reauthenticated",
            Self::FactorsReset => "factors_reset",
            Self::PasswordRemoved => "password_removed",
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
    /// How many attempts it stands for: 1, but for repeated throttled logins of one
    /// account from one client, recorded as one event per window.
    pub count: u32,
}

/// Which of a user's events to list, newest first: at most `limit`, of some kinds, older
/// than a cursor. Paging with the cursor of the last event listed reaches every event,
/// however many were recorded since, so no number of junk events can hide one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPage {
    /// Only events listed after this one: strictly older, or as old with a smaller id.
    pub before: Option<EventCursor>,
    /// Only events of these kinds; every kind when empty.
    pub kinds: Vec<EventKind>,
    /// At most this many.
    pub limit: u64,
}

impl EventPage {
    /// The `limit` newest events, of every kind.
    pub fn newest(limit: u64) -> Self {
        Self {
            before: None,
            kinds: Vec::new(),
            limit,
        }
    }

    /// Whether `event` is on this page's side of the cursor and of a kind asked for (the
    /// limit aside): what a store without a query language filters by.
    pub fn admits(&self, event: &AuthEvent) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&event.kind))
            && self
                .before
                .is_none_or(|cursor| (event.at, event.id) < (cursor.at, cursor.id))
    }
}

/// Where a page of events ends: the instant and id of its last event. Its text form
/// (`<unix microseconds>.<id>`) is what `GET /v1/auth/events` hands out as `next`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventCursor {
    /// The event's instant.
    pub at: OffsetDateTime,
    /// The event's id.
    pub id: Uuid,
}

impl EventCursor {
    /// The cursor after `event`.
    pub fn after(event: &AuthEvent) -> Self {
        Self {
            at: event.at,
            id: event.id,
        }
    }

    /// The text form.
    pub fn encode(&self) -> String {
        format!(
            "{}.{}",
            self.at.unix_timestamp_nanos() / 1_000,
            self.id.simple()
        )
    }

    /// A cursor from its text form; `None` when it is not one.
    pub fn parse(text: &str) -> Option<Self> {
        let (micros, id) = text.split_once('.')?;
        if micros.is_empty() || micros.len() > 20 || id.len() != 32 {
            return None;
        }
        let micros: i64 = micros.parse().ok()?;
        let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000).ok()?;
        let id = Uuid::try_parse(id).ok()?;
        Some(Self { at, id })
    }
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
            count: 1,
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

    /// The events of `user` that `page` picks, newest first (by instant, then id).
    fn recent_for_user(
        &self,
        user: UserId,
        page: &EventPage,
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
    fn a_cursor_round_trips_through_its_text_and_nothing_else_parses() {
        let cursor = EventCursor {
            at: OffsetDateTime::from_unix_timestamp_nanos(1_765_000_000_123_456_000).unwrap(),
            id: Uuid::now_v7(),
        };
        assert_eq!(EventCursor::parse(&cursor.encode()), Some(cursor));
        for bad in [
            "",
            ".",
            "12",
            "x.y",
            "1.abc",
            "-99999999999999999999.0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(EventCursor::parse(bad), None, "{bad}");
        }
    }

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
