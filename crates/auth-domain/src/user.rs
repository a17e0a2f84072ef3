use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{timestamp, Email, PasswordHash, Username};

/// A user's identifier: a UUIDv7, made by the application so that every backend stores
/// the same value, ordered by creation time, and not guessable from a neighbour's.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(Uuid);

impl UserId {
    /// A fresh identifier.
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    /// Wraps an identifier read back from storage.
    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    /// The identifier as a UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserId({})", self.0)
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for UserId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// A registered user, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Stable identifier.
    pub id: UserId,
    /// Normalised, unique address.
    pub email: Email,
    /// Normalised, unique handle (the email unless one was chosen).
    pub username: Username,
    /// The argon2id PHC string of the password.
    pub password_hash: PasswordHash,
    /// When the user registered, at the stored precision ([`crate::timestamp`]).
    pub created_at: OffsetDateTime,
    /// Whether the user followed a link mailed to `email` (a verification, or the
    /// confirmation of a change to it).
    pub email_verified: bool,
}

/// A user about to be stored. Only built from parsed parts and a hash, so a repository
/// never sees an unchecked value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// Identifier chosen by the application.
    pub id: UserId,
    /// Normalised address.
    pub email: Email,
    /// Normalised handle.
    pub username: Username,
    /// The argon2id PHC string of the password.
    pub password_hash: PasswordHash,
    /// Registration time; cut to the stored precision ([`crate::timestamp`]) by
    /// [`NewUser::into_user`], so that every backend returns exactly what it stored.
    pub created_at: OffsetDateTime,
}

impl NewUser {
    /// Assembles a user from parsed parts, stamped with a fresh id, registered `at`.
    pub fn new(
        email: Email,
        username: Username,
        password_hash: PasswordHash,
        at: OffsetDateTime,
    ) -> Self {
        Self {
            id: UserId::generate(),
            email,
            username,
            password_hash,
            created_at: timestamp::truncate_to_micros(at),
        }
    }

    /// The user this becomes once stored, its time cut to the stored precision: what a
    /// repository writes and returns.
    pub fn into_user(self) -> User {
        User {
            id: self.id,
            email: self.email,
            username: self.username,
            password_hash: self.password_hash,
            created_at: timestamp::truncate_to_micros(self.created_at),
            email_verified: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn new_user() -> NewUser {
        let email = Email::parse("ada@example.com").expect("valid");
        let username = Username::from_email(&email);
        NewUser::new(
            email,
            username,
            PasswordHash::from_trusted("$argon2id$x".into()),
            crate::clock::Clock::system().now(),
        )
    }

    #[test]
    fn a_new_user_is_stamped_at_the_stored_precision() {
        let user = new_user();
        assert_eq!(
            user.created_at,
            timestamp::truncate_to_micros(user.created_at)
        );
    }

    #[test]
    fn a_finer_time_is_cut_when_the_user_is_stored() {
        let user = NewUser {
            created_at: datetime!(2040-02-29 23:59:59.999_999_999 +02:00),
            ..new_user()
        };
        assert_eq!(
            user.into_user().created_at,
            datetime!(2040-02-29 21:59:59.999_999 UTC)
        );
    }
}
