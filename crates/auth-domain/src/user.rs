use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Email, PasswordHash, Username};

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
    /// When the user registered (UTC, second precision or better).
    pub created_at: OffsetDateTime,
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
    /// Registration time, truncated to whole microseconds so that every backend returns
    /// exactly what it was given.
    pub created_at: OffsetDateTime,
}

impl NewUser {
    /// Assembles a user from parsed parts, stamped with a fresh id and the current time.
    pub fn new(email: Email, username: Username, password_hash: PasswordHash) -> Self {
        let now = OffsetDateTime::now_utc();
        let created_at = now
            .replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
            .unwrap_or(now);
        Self {
            id: UserId::generate(),
            email,
            username,
            password_hash,
            created_at,
        }
    }

    /// The user this becomes once stored.
    pub fn into_user(self) -> User {
        User {
            id: self.id,
            email: self.email,
            username: self.username,
            password_hash: self.password_hash,
            created_at: self.created_at,
        }
    }
}
