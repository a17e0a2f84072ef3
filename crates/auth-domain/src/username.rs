use std::{fmt, sync::LazyLock};

use crate::{
    validation::{has_unsafe_chars, FieldError},
    Email,
};

const MIN_USERNAME_CHARS: usize = 3;
const MAX_USERNAME_CHARS: usize = 254;

// Built once from the limits they state: a `FieldError` holds `'static` text.
static TOO_SHORT: LazyLock<String> =
    LazyLock::new(|| format!("Username must be at least {MIN_USERNAME_CHARS} characters long."));
static TOO_LONG: LazyLock<String> =
    LazyLock::new(|| format!("Username must be at most {MAX_USERNAME_CHARS} characters long."));

/// A public handle, unique among users. Trimmed and lower-cased like [`Email`], so that
/// `Ada` and `ada` cannot be two people.
///
/// A chosen username holds letters, digits and `._-+`; an `@` is only ever found in the
/// default username, which is the user's own email address. That keeps usernames and
/// addresses from colliding at login, where either may be given.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    /// Normalises and checks a username chosen by a user.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let normalised = raw.trim().to_lowercase();
        let chars = normalised.chars().count();
        if chars < MIN_USERNAME_CHARS {
            return Err(FieldError::new("too_short", TOO_SHORT.as_str()));
        }
        if chars > MAX_USERNAME_CHARS {
            return Err(FieldError::new("too_long", TOO_LONG.as_str()));
        }
        if has_unsafe_chars(&normalised) {
            return Err(FieldError::new(
                "invalid",
                "Username contains invalid characters.",
            ));
        }
        if !normalised
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '+'))
        {
            return Err(FieldError::new(
                "invalid",
                "Username may only contain letters, digits and . _ - +",
            ));
        }
        Ok(Self(normalised))
    }

    /// The default username: the user's own (normalised) email address.
    pub fn from_email(email: &Email) -> Self {
        Self(email.as_str().to_owned())
    }

    /// Rebuilds a username read back from storage, where it was stored normalised.
    pub fn from_trusted(stored: String) -> Self {
        Self(stored)
    }

    /// The normalised username.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Username").field(&self.0).finish()
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_username_with_a_format_character_is_refused() {
        for raw in ["ada\u{202E}lovelace", "ada\u{200B}", "\u{2066}ada"] {
            let error = Username::parse(raw).expect_err("a format character");
            assert_eq!(error.code, "invalid", "{raw:?}");
        }
    }

    #[test]
    fn a_username_is_trimmed_and_lower_cased() {
        assert_eq!(
            Username::parse("  Ada_L ").expect("valid").as_str(),
            "ada_l"
        );
    }

    #[test]
    fn short_long_and_odd_usernames_are_refused() {
        assert_eq!(Username::parse("ab").unwrap_err().code, "too_short");
        assert_eq!(
            Username::parse(&"a".repeat(MAX_USERNAME_CHARS + 1))
                .unwrap_err()
                .code,
            "too_long"
        );
        for raw in [
            "ada lovelace",
            "ada@example.com",
            "ada\0x",
            "ada\u{1b}[31m",
            "a/b",
        ] {
            assert!(Username::parse(raw).is_err(), "{raw:?} was accepted");
        }
    }

    #[test]
    fn the_length_messages_state_the_limits() {
        assert_eq!(
            Username::parse("ab").unwrap_err().message,
            "Username must be at least 3 characters long."
        );
        assert_eq!(
            Username::parse(&"a".repeat(MAX_USERNAME_CHARS + 1))
                .unwrap_err()
                .message,
            "Username must be at most 254 characters long."
        );
    }

    #[test]
    fn the_default_username_is_the_email() {
        let email = Email::parse("Ada@Example.com").expect("valid");
        assert_eq!(Username::from_email(&email).as_str(), "ada@example.com");
    }
}
