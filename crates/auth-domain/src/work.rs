//! A unit of work: the writes of one use case, applied together.
//!
//! A use case that changes several things (a reset: spend the token, set the password,
//! end the sessions, queue the notice, record the event) states them as one [`Work`], and
//! the backend applies it with [`crate::Stores::commit`]: in one transaction on SQL, so
//! that either all of it happens or none does, and the mail it queues exists exactly when
//! the action does. A store without multi-document transactions (MongoDB as we use it)
//! applies the changes in order and stops at the first refusal; the use cases put their
//! guard (the token spent, the address still the user's) first, so a refused work changes
//! nothing there either.
//!
//! Some changes are guards ([`Change::ConsumeToken`], [`Change::SetEmail`],
//! [`Change::MarkEmailVerified`], [`Change::SetPassword`], [`Change::ReplacePassword`],
//! [`Change::DeleteUser`], [`Change::EndSession`], [`Change::InsertUser`],
//! [`Change::ConfirmTotp`], [`Change::RemoveTotp`], [`Change::ConsumeRecoveryCode`],
//! [`Change::InsertPasskey`], [`Change::DeletePasskey`]): when
//! they find nothing to change, or a unique index refuses them, the whole work is refused
//! with the [`Refusal`] and nothing of it stays.

use std::fmt;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    audit::AuthEvent,
    factors::{CodeDigest, StoredPasskey},
    mail::Mail,
    session::SessionHandle,
    tokens::{OneTimeToken, Purpose, TokenDigest},
    Email, NewUser, PasswordHash, RepositoryError, UserId,
};

/// One write of a [`Work`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Stores a new user. Refused with [`Refusal::EmailTaken`] or
    /// [`Refusal::UsernameTaken`] by the unique indexes.
    InsertUser(NewUser),
    /// Deletes the live token `digest` of `purpose` (`expires_at > now`). Refused with
    /// [`Refusal::TokenSpent`] when there is none: unknown, expired, or spent by a
    /// concurrent submission.
    ConsumeToken {
        /// The token's digest.
        digest: TokenDigest,
        /// Its purpose.
        purpose: Purpose,
        /// The instant it must still be live at.
        now: OffsetDateTime,
    },
    /// Replaces the password hash of `user` (and the credential digest with it) whatever
    /// it was. Refused with [`Refusal::Stale`] when there is no such user.
    SetPassword {
        /// Whose.
        user: UserId,
        /// The new hash.
        hash: PasswordHash,
    },
    /// Replaces the password hash of `user` with `new`, but only if it is still `current`
    /// (a change made meanwhile wins). Refused with [`Refusal::Stale`] otherwise, or when
    /// there is no such user.
    ReplacePassword {
        /// Whose.
        user: UserId,
        /// The hash it must still have.
        current: PasswordHash,
        /// The new hash.
        new: PasswordHash,
    },
    /// Deletes `user` (as [`crate::UserRepository::delete`] does: a store that keeps
    /// copies of the user ends those sessions with them). Refused with
    /// [`Refusal::Stale`] when there is no such user.
    DeleteUser {
        /// Whom.
        user: UserId,
    },
    /// Deletes the session `handle` of `user`. Refused with [`Refusal::Stale`] when it is
    /// not one of theirs, or not live.
    EndSession {
        /// Whose.
        user: UserId,
        /// Which.
        handle: SessionHandle,
    },
    /// Replaces `user`'s address `from` with `to`, verified (its link was followed); a
    /// username that was the old address (the default) becomes the new one. Refused with [`Refusal::Stale`] when `user`'s address is no longer `from`, and
    /// with [`Refusal::EmailTaken`] when `to` belongs to another account now.
    SetEmail {
        /// Whose.
        user: UserId,
        /// The address it must still have.
        from: Email,
        /// The new, confirmed address.
        to: Email,
    },
    /// Marks `user`'s address verified, if it is still `email`; refused with
    /// [`Refusal::Stale`] otherwise.
    MarkEmailVerified {
        /// Whose.
        user: UserId,
        /// The address the link was sent to.
        email: Email,
    },
    /// Deletes every session of `user`.
    EndSessions {
        /// Whose.
        user: UserId,
    },
    /// Deletes every token of `user` for `purpose`, or of every purpose with `None`.
    VoidTokens {
        /// Whose.
        user: UserId,
        /// Which.
        purpose: Option<Purpose>,
    },
    /// Stores a token.
    InsertToken(OneTimeToken),
    /// Puts a mail in the outbox, pending, due at once.
    Enqueue(Mail),
    /// Records an audit event.
    Record(AuthEvent),
    /// Confirms `user`'s TOTP enrolment `id`, recording `step` (the setup code's) as the
    /// last one accepted. Refused with [`Refusal::Stale`] when that enrolment is no longer
    /// the user's unconfirmed one (replaced by a newer one, confirmed already, removed).
    ConfirmTotp {
        /// Whose.
        user: UserId,
        /// Which enrolment.
        id: Uuid,
        /// The time step of the code that confirmed it.
        step: i64,
    },
    /// Deletes `user`'s TOTP credential, confirmed or not. Refused with
    /// [`Refusal::Stale`] when they have no confirmed one.
    RemoveTotp {
        /// Whose.
        user: UserId,
    },
    /// Replaces every recovery code of `user` with these.
    ReplaceRecoveryCodes {
        /// Whose.
        user: UserId,
        /// The new codes' digests.
        digests: Vec<CodeDigest>,
        /// When they were made, at the stored precision.
        at: OffsetDateTime,
    },
    /// Deletes `user`'s recovery code `digest`. Refused with [`Refusal::TokenSpent`] when
    /// they have no such code (never theirs, or spent by a concurrent submission).
    ConsumeRecoveryCode {
        /// Whose.
        user: UserId,
        /// The code's digest.
        digest: CodeDigest,
    },
    /// Stores a passkey. Refused with [`Refusal::CredentialTaken`] when its credential id
    /// is registered already.
    InsertPasskey(StoredPasskey),
    /// Deletes `user`'s passkey `id`. Refused with [`Refusal::Stale`] when it is not
    /// theirs, or gone.
    DeletePasskey {
        /// Whose.
        user: UserId,
        /// Which.
        id: Uuid,
    },
    /// Deletes every second factor of `user`: TOTP, recovery codes, passkeys.
    RemoveFactors {
        /// Whose.
        user: UserId,
    },
}

impl Change {
    /// A short name, for errors and traces.
    pub fn name(&self) -> &'static str {
        match self {
            Self::InsertUser(_) => "insert user",
            Self::ConsumeToken { .. } => "consume token",
            Self::SetPassword { .. } => "set password",
            Self::SetEmail { .. } => "set email",
            Self::ReplacePassword { .. } => "replace password",
            Self::DeleteUser { .. } => "delete user",
            Self::EndSession { .. } => "end session",
            Self::MarkEmailVerified { .. } => "mark email verified",
            Self::EndSessions { .. } => "end sessions",
            Self::VoidTokens { .. } => "void tokens",
            Self::InsertToken(_) => "insert token",
            Self::Enqueue(_) => "enqueue mail",
            Self::Record(_) => "record event",
            Self::ConfirmTotp { .. } => "confirm totp",
            Self::RemoveTotp { .. } => "remove totp",
            Self::ReplaceRecoveryCodes { .. } => "replace recovery codes",
            Self::ConsumeRecoveryCode { .. } => "consume recovery code",
            Self::InsertPasskey(_) => "insert passkey",
            Self::DeletePasskey { .. } => "delete passkey",
            Self::RemoveFactors { .. } => "remove factors",
        }
    }
}

/// The writes of one use case, in the order they are applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Work {
    changes: Vec<Change>,
}

impl Work {
    /// No writes yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `change` after the others.
    #[must_use]
    pub fn then(mut self, change: Change) -> Self {
        self.changes.push(change);
        self
    }

    /// Adds `change` after the others.
    pub fn push(&mut self, change: Change) {
        self.changes.push(change);
    }

    /// The changes, in order.
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    /// The changes, to apply.
    pub fn into_changes(self) -> Vec<Change> {
        self.changes
    }
}

/// Why a guard refused a [`Work`]: nothing of it was applied (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The token (or recovery code) is unknown, expired or already spent.
    #[error("the token is unknown, expired or spent")]
    TokenSpent,
    /// The user is gone, or their address is no longer the one the work was made for.
    #[error("the account changed since")]
    Stale,
    /// Another account has the address.
    #[error("the email is taken")]
    EmailTaken,
    /// Another account has the username.
    #[error("the username is taken")]
    UsernameTaken,
    /// The passkey's credential id is registered already.
    #[error("the passkey is registered already")]
    CredentialTaken,
}

/// Why a [`Work`] was not applied.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// A guard refused it.
    #[error(transparent)]
    Refused(Refusal),
    /// The storage failed; on SQL nothing was applied, elsewhere the changes before the
    /// failing one may have been.
    #[error(transparent)]
    Storage(#[from] RepositoryError),
}

impl CommitError {
    /// The refusal, if a guard refused.
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            Self::Refused(refusal) => Some(*refusal),
            Self::Storage(_) => None,
        }
    }
}

impl fmt::Display for Work {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.changes.iter().map(Change::name).collect();
        write!(f, "[{}]", names.join(", "))
    }
}
