use std::fmt;

use garde::Validate;

use crate::validation::{has_unsafe_chars, FieldError};

/// Longest address SMTP can carry (RFC 5321, forward-path minus the angle brackets).
const MAX_EMAIL_CHARS: usize = 254;

/// A syntactically valid email address in its normalised form: trimmed and lower-cased,
/// so that storing and comparing it is case-insensitive on every backend.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

#[derive(Validate)]
#[garde(transparent)]
struct EmailSyntax<'a>(#[garde(email)] &'a str);

impl Email {
    /// Normalises and checks an address as typed by a user.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let normalised = raw.trim().to_lowercase();
        if normalised.is_empty() {
            return Err(FieldError::new("required", "Email address is required."));
        }
        if normalised.chars().count() > MAX_EMAIL_CHARS {
            return Err(FieldError::new("too_long", "Email address is too long."));
        }
        if has_unsafe_chars(&normalised) || EmailSyntax(&normalised).validate().is_err() {
            return Err(FieldError::new("invalid", "Email address is invalid."));
        }
        Ok(Self(normalised))
    }

    /// Rebuilds an address read back from storage, where it was stored normalised.
    pub fn from_trusted(stored: String) -> Self {
        Self(stored)
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Email").field(&self.0).finish()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_with_a_format_character_is_refused() {
        for raw in ["ada\u{202E}@example.com", "ada@exa\u{200D}mple.com"] {
            assert!(Email::parse(raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn an_address_is_trimmed_and_lower_cased() {
        let email = Email::parse("  Ada.Lovelace@Example.COM\t").expect("valid");
        assert_eq!(email.as_str(), "ada.lovelace@example.com");
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for raw in [
            "",
            "   ",
            "plain",
            "@example.com",
            "ada@",
            "a b@example.com",
            "ada@@example.com",
        ] {
            assert!(Email::parse(raw).is_err(), "{raw:?} was accepted");
        }
    }

    #[test]
    fn control_characters_and_nul_are_refused() {
        assert!(Email::parse("ada\0@example.com").is_err());
        assert!(Email::parse("ada\u{7}@example.com").is_err());
        assert!(Email::parse("ada@exa\nmple.com").is_err());
    }

    #[test]
    fn an_address_longer_than_254_characters_is_refused() {
        let long = format!("{}@{}.com", "a".repeat(64), "b".repeat(190));
        assert!(long.chars().count() > MAX_EMAIL_CHARS);
        assert_eq!(Email::parse(&long).unwrap_err().code, "too_long");
    }
}
