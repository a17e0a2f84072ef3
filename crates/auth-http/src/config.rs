//! What the router needs to know from the application's configuration.

use std::{fmt, sync::Arc};

use ipnet::IpNet;

/// The secret that signs cookies (`SECRET_KEY`), whole: each purpose signs with a key
/// derived from all of its bytes (see `signing`). At least 64 bytes.
#[derive(Clone)]
pub struct SessionKey(Arc<[u8]>);

/// The shortest secret accepted.
const MIN_SECRET_BYTES: usize = 64;

impl SessionKey {
    /// Wraps the raw secret (`SECRET_KEY`); refuses one shorter than 64 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyTooShort> {
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(KeyTooShort);
        }
        Ok(Self(bytes.into()))
    }

    /// The secret's bytes, for key derivation only.
    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey([redacted])")
    }
}

/// The secret is too short to sign cookies safely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("SECRET_KEY must be at least 64 bytes")]
pub struct KeyTooShort;

/// How the router signs, scopes and expires session cookies.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Signs the session cookie (`SECRET_KEY`).
    pub session_key: SessionKey,
    /// Older keys, still accepted to verify a cookie but never used to sign one
    /// (`SECRET_KEY_FALLBACKS`): a cookie they verify is re-issued under `session_key`.
    pub fallback_keys: Vec<SessionKey>,
    /// How long a session lives without activity (`PERMANENT_SESSION_LIFETIME`).
    pub session_lifetime: time::Duration,
    /// How long a session lives from its login, however active
    /// (`SESSION_ABSOLUTE_LIFETIME`); at least `session_lifetime`.
    pub absolute_lifetime: time::Duration,
    /// Whether the cookie is only sent over HTTPS.
    pub secure_cookie: bool,
    /// The proxies whose `X-Forwarded-For` names the client (`TRUSTED_PROXIES`).
    pub trusted_proxies: Vec<IpNet>,
    /// The origins (`scheme://host[:port]`) that may call the API from a browser: they
    /// pass the cross-origin refusal and get CORS headers (`ALLOWED_ORIGINS`).
    pub allowed_origins: Vec<String>,
    /// How long a request's body and answer may take (`BODY_READ_TIMEOUT`,
    /// `REQUEST_TIMEOUT`).
    pub timeouts: crate::RequestTimeouts,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_of_64_bytes_is_accepted() {
        assert!(SessionKey::from_bytes(&[7; 64]).is_ok());
    }

    #[test]
    fn a_key_shorter_than_64_bytes_is_refused_with_a_message_naming_the_setting() {
        let error = SessionKey::from_bytes(&[7; 63]).unwrap_err();
        assert_eq!(error.to_string(), "SECRET_KEY must be at least 64 bytes");
    }

    #[test]
    fn the_key_never_shows_in_debug_output() {
        let key = SessionKey::from_bytes(
            b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        )
        .unwrap();
        let printed = format!("{key:?}");
        assert_eq!(printed, "SessionKey([redacted])");
    }
}
