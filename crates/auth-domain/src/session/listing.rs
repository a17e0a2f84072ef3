//! A user's view of their own sessions: which exist, made where, and how to name one to
//! revoke it.

use std::{fmt, str::FromStr};

use serde::Serialize;
use time::OffsetDateTime;

use super::{storage_key, Data, Device, Login};

/// How a user names one of their sessions: the key it is stored under, the SHA-256 of its
/// id. It identifies the session to its owner, and nothing can turn it back into the id or
/// into a cookie.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct SessionHandle(String);

impl SessionHandle {
    /// The handle of the session with this id (the value the session cookie carries
    /// before signing).
    pub fn of_session_id(session_id: &str) -> Self {
        Self(storage_key(session_id))
    }

    /// A handle as a store keeps it (the session's primary key).
    pub fn from_trusted(key: String) -> Self {
        Self(key)
    }

    /// The stored key, to find the session by.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A string that is not a session handle (64 lowercase hexadecimal digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a session handle")]
pub struct NotAHandle;

impl FromStr for SessionHandle {
    type Err = NotAHandle;

    fn from_str(s: &str) -> Result<Self, NotAHandle> {
        let well_formed = s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        well_formed.then(|| Self(s.to_owned())).ok_or(NotAHandle)
    }
}

/// One live session of a user, as listed to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// How to name it to revoke it.
    pub handle: SessionHandle,
    /// When it was made (the login).
    pub created_at: OffsetDateTime,
    /// When it was last written: it moves when the session is renewed, not at every
    /// request, so it is approximate by up to half the idle lifetime.
    pub last_seen_at: OffsetDateTime,
    /// When it ends unless renewed.
    pub expires_at: OffsetDateTime,
    /// The device it was made on.
    pub device: Device,
}

impl SessionInfo {
    /// A session as a store found it: its key, its times, and its data, from which the
    /// device is read.
    pub fn from_stored(
        handle: SessionHandle,
        created_at: OffsetDateTime,
        last_seen_at: OffsetDateTime,
        expires_at: OffsetDateTime,
        data: &Data,
    ) -> Self {
        Self {
            handle,
            created_at,
            last_seen_at,
            expires_at,
            device: Login::read(data)
                .map(|login| login.device)
                .unwrap_or_default(),
        }
    }
}

/// Orders sessions as they are listed: most recently used first, then newest first, then
/// by handle so that the order is total.
pub fn sort_for_listing(sessions: &mut [SessionInfo]) {
    sessions.sort_by(|a, b| {
        b.last_seen_at
            .cmp(&a.last_seen_at)
            .then(b.created_at.cmp(&a.created_at))
            .then(a.handle.0.cmp(&b.handle.0))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handle_is_the_storage_key_and_parses_back() {
        let handle = SessionHandle::of_session_id("some-session-id");
        assert_eq!(handle.as_str(), storage_key("some-session-id"));
        assert_eq!(handle.as_str().parse::<SessionHandle>(), Ok(handle.clone()));
        assert!(!handle.as_str().contains("some-session-id"));
    }

    #[test]
    fn anything_but_64_lowercase_hex_digits_is_no_handle() {
        let good = "a".repeat(64);
        assert!(good.parse::<SessionHandle>().is_ok());
        for bad in [
            String::new(),
            "a".repeat(63),
            "a".repeat(65),
            "A".repeat(64),
            "g".repeat(64),
            format!("{}/", "a".repeat(63)),
        ] {
            assert_eq!(bad.parse::<SessionHandle>(), Err(NotAHandle), "{bad}");
        }
    }
}
