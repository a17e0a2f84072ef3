//! What the router needs to know from the application's configuration.

use std::{fmt, sync::Arc};

use auth_domain::settings::{DefaultValue, Setting};
use ipnet::IpNet;

use crate::RequestTimeouts;

/// The secret that signs cookies (`SECRET_KEY`), whole: each purpose signs with a key
/// derived from all of its bytes (see `signing`). At least 64 bytes.
#[derive(Clone)]
pub struct SessionKey(Arc<[u8]>);

/// The shortest secret accepted: the cookie signing key is 512 bits.
pub const MIN_SECRET_BYTES: usize = 64;

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
    pub timeouts: RequestTimeouts,
}

/// The seconds in a day, for the lifetimes below.
const DAY_SECS: u64 = 24 * 60 * 60;

impl HttpConfig {
    /// The default `PERMANENT_SESSION_LIFETIME`: 31 days, as in Flask.
    pub const DEFAULT_SESSION_LIFETIME_SECS: u64 = 31 * DAY_SECS;

    /// The default cap on a session's whole life, unless `PERMANENT_SESSION_LIFETIME` is
    /// longer: 90 days. Without a cap, a session that is used at least once per idle
    /// lifetime (31 days by default) never ends, so a stolen cookie kept warm by its thief,
    /// or a device left logged in, stays valid for ever. Three idle lifetimes still let a
    /// rolling session earn its keep (a user who comes back monthly logs in again about
    /// once a quarter), while bounding any one cookie to a quarter of a year.
    pub const DEFAULT_ABSOLUTE_LIFETIME_SECS: u64 = 90 * DAY_SECS;

    /// The longest session lifetime accepted: browsers keep a cookie at most 400 days.
    pub const MAX_SESSION_LIFETIME_SECS: u64 = 400 * DAY_SECS;

    /// The settings of the router: cookie keys, session lifetimes, who the client is, who
    /// may call from a browser, and request deadlines. Throttling is the domain's
    /// (`auth_domain::throttle::ThrottleLimits::SETTINGS`).
    pub const SETTINGS: &'static [Setting] = &[
        Setting::new(
            "SECRET_KEY",
            DefaultValue::Unset,
            "signs the session cookie; at least 64 bytes; required unless DEBUG",
        ),
        Setting::new(
            "SECRET_KEY_FALLBACKS",
            DefaultValue::Unset,
            "older keys that still verify cookies but never sign one",
        ),
        Setting::new(
            "PERMANENT_SESSION_LIFETIME",
            DefaultValue::Number(Self::DEFAULT_SESSION_LIFETIME_SECS),
            "seconds a session lives without use; rolling",
        ),
        Setting::new(
            "SESSION_ABSOLUTE_LIFETIME",
            DefaultValue::Computed(
                "`7776000` (90 days), or `PERMANENT_SESSION_LIFETIME` if longer",
            ),
            "seconds a session lives from its login, however often it is used",
        ),
        Setting::new(
            "SESSION_COOKIE_SECURE",
            DefaultValue::Computed("`!DEBUG`"),
            "whether the session cookie is marked Secure (sent over HTTPS only)",
        ),
        Setting::new(
            "TRUSTED_PROXIES",
            DefaultValue::Unset,
            "reverse proxies whose X-Forwarded-For is believed: addresses or networks",
        ),
        Setting::new(
            "ALLOWED_ORIGINS",
            DefaultValue::Unset,
            "browser origins allowed to call the API from another site, with cookies",
        ),
        Setting::new(
            "BODY_READ_TIMEOUT",
            DefaultValue::Number(RequestTimeouts::DEFAULT_BODY.as_secs()),
            "seconds a request's body has to arrive once the headers are in",
        ),
        Setting::new(
            "REQUEST_TIMEOUT",
            DefaultValue::Number(RequestTimeouts::DEFAULT_REQUEST.as_secs()),
            "seconds a request may take to be answered",
        ),
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_absolute_lifetime_default_said_in_words_is_the_constant() {
        let absolute = HttpConfig::SETTINGS
            .iter()
            .find(|setting| setting.key == "SESSION_ABSOLUTE_LIFETIME")
            .expect("listed");
        let DefaultValue::Computed(words) = absolute.default else {
            panic!("it depends on PERMANENT_SESSION_LIFETIME");
        };
        let secs = HttpConfig::DEFAULT_ABSOLUTE_LIFETIME_SECS;
        assert!(words.starts_with(&format!("`{secs}` ({} days)", secs / DAY_SECS)));
    }

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
