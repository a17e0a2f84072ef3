use std::{collections::HashSet, fmt, sync::LazyLock};

use secrecy::{ExposeSecret, SecretString};

use crate::{
    breached::BreachedPasswords,
    settings::{DefaultValue, Setting},
    validation::FieldError,
    Email, Username,
};

/// NIST SP 800-63B: at least 8 characters may be required, at least 64 must be allowed.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password accepted at registration (Unicode code points).
pub const MAX_PASSWORD_CHARS: usize = 128;

/// The 30,000 most common passwords of the Xato corpus, lower-cased, as ranked by
/// zxcvbn's frequency lists (MIT). Matched case-insensitively.
// Built once from the limit it states: a `FieldError` holds `'static` text.
static TOO_LONG: LazyLock<String> =
    LazyLock::new(|| format!("Password must be at most {MAX_PASSWORD_CHARS} characters long."));

static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| include_str!("common-passwords.txt").lines().collect());

/// A password as typed. It is a secret: `Debug` prints `[redacted]` and it is never
/// serialised. It is never trimmed or truncated either: every character counts.
#[derive(Clone)]
pub struct Password(SecretString);

impl Password {
    /// Wraps what a user typed; judging it is the [`PasswordPolicy`]'s job.
    pub fn new(raw: impl Into<String>) -> Self {
        Self(SecretString::from(raw.into()))
    }

    pub(crate) fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

impl From<String> for Password {
    fn from(raw: String) -> Self {
        Self::new(raw)
    }
}

impl From<&str> for Password {
    fn from(raw: &str) -> Self {
        Self::new(raw)
    }
}

/// A minimum length outside `MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS`.
#[derive(Debug, thiserror::Error)]
#[error("the minimum password length must be between {MIN_PASSWORD_CHARS} and {MAX_PASSWORD_CHARS} characters, not {0}")]
pub struct PasswordPolicyError(pub usize);

/// The refusal of a password found in the breached-password filter: a refusal of its
/// own (422 `password_breached` over HTTP), see [`PasswordPolicy::check`].
pub const BREACHED: FieldError = FieldError::new(
    "breached",
    "This password appeared in a data breach; choose another.",
);

/// What a new password must satisfy (NIST SP 800-63B): a length in code points, not in
/// the list of common passwords, not the user's own email or username, and, when a filter
/// is loaded, not among the breached passwords. No composition rules: they make
/// passwords harder to remember without making them harder to guess.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordPolicy {
    min_chars: usize,
    breached: Option<BreachedPasswords>,
}

impl PasswordPolicy {
    /// The settings of the password policy.
    pub const SETTINGS: &'static [Setting] = &[
        Setting::new(
            "PASSWORD_MIN_LENGTH",
            DefaultValue::Number(MIN_PASSWORD_CHARS as u64),
            "the shortest password accepted, in characters, 8 to 128",
        ),
        Setting::new(
            "BREACHED_PASSWORDS",
            DefaultValue::Unset,
            "the breached-password filter `app passwords import` built; unset: no such check",
        ),
    ];
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_chars: MIN_PASSWORD_CHARS,
            breached: None,
        }
    }
}

impl PasswordPolicy {
    /// A policy with a stricter minimum length.
    pub fn with_min_chars(min_chars: usize) -> Result<Self, PasswordPolicyError> {
        if (MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&min_chars) {
            Ok(Self {
                min_chars,
                breached: None,
            })
        } else {
            Err(PasswordPolicyError(min_chars))
        }
    }

    /// The same policy, refusing the passwords of `breached` too.
    #[must_use]
    pub fn with_breached(self, breached: BreachedPasswords) -> Self {
        Self {
            breached: Some(breached),
            ..self
        }
    }

    /// The minimum length, in code points.
    pub fn min_chars(&self) -> usize {
        self.min_chars
    }

    /// The breached-password filter, when one is loaded.
    pub fn breached(&self) -> Option<&BreachedPasswords> {
        self.breached.as_ref()
    }

    /// Judges a new password for the user with this email and username. Either may be
    /// unknown (it did not parse): the password is still judged on everything else, so
    /// that a registration hears about every invalid field at once. The breached-password
    /// filter is asked last, so [`BREACHED`] means the password passed every other rule.
    pub fn check(
        &self,
        password: &Password,
        email: Option<&Email>,
        username: Option<&Username>,
    ) -> Result<(), FieldError> {
        let raw = password.expose();
        let chars = raw.chars().count();
        if chars < self.min_chars {
            return Err(FieldError::new("too_short", "Password is too short."));
        }
        if chars > MAX_PASSWORD_CHARS {
            return Err(FieldError::new("too_long", TOO_LONG.as_str()));
        }
        let lowered = raw.to_lowercase();
        if COMMON_PASSWORDS.contains(lowered.as_str()) {
            return Err(FieldError::new(
                "common",
                "Password is too common; choose another.",
            ));
        }
        let is_identity = email.is_some_and(|email| lowered == email.as_str())
            || username.is_some_and(|username| lowered == username.as_str());
        if is_identity {
            return Err(FieldError::new(
                "same_as_identity",
                "Password must not be your email or username.",
            ));
        }
        if self
            .breached
            .as_ref()
            .is_some_and(|breached| breached.contains(password))
        {
            return Err(BREACHED);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> (Email, Username) {
        let email = Email::parse("ada@example.com").expect("valid");
        let username = Username::parse("ada_l").expect("valid");
        (email, username)
    }

    fn check(policy: &PasswordPolicy, raw: &str) -> Result<(), &'static str> {
        let (email, username) = identity();
        policy
            .check(&Password::new(raw), Some(&email), Some(&username))
            .map_err(|e| e.code)
    }

    #[test]
    fn a_long_uncommon_password_is_accepted() {
        assert_eq!(
            check(&PasswordPolicy::default(), "velvet-otter-harbour"),
            Ok(())
        );
    }

    #[test]
    fn length_is_counted_in_code_points_not_bytes() {
        // Seven characters, but 21 bytes in UTF-8.
        assert_eq!(
            check(&PasswordPolicy::default(), "ありがとう日本"),
            Err("too_short")
        );
        assert_eq!(
            check(&PasswordPolicy::default(), "ありがとう日本語"),
            Ok(())
        );
        assert_eq!(check(&PasswordPolicy::default(), &"é".repeat(128)), Ok(()));
        assert_eq!(
            check(&PasswordPolicy::default(), &"é".repeat(129)),
            Err("too_long")
        );
    }

    #[test]
    fn the_too_long_message_states_the_limit() {
        let (email, username) = identity();
        let refused = PasswordPolicy::default()
            .check(
                &Password::new("x".repeat(129)),
                Some(&email),
                Some(&username),
            )
            .unwrap_err();
        assert_eq!(
            refused.message,
            "Password must be at most 128 characters long."
        );
    }

    #[test]
    fn common_passwords_are_refused_whatever_their_case() {
        assert_eq!(check(&PasswordPolicy::default(), "password"), Err("common"));
        assert_eq!(
            check(&PasswordPolicy::default(), "PassWord1"),
            Err("common")
        );
        assert_eq!(
            check(&PasswordPolicy::default(), "qwertyuiop"),
            Err("common")
        );
    }

    #[test]
    fn the_shipped_list_holds_at_least_ten_thousand_passwords() {
        assert!(COMMON_PASSWORDS.len() >= 10_000);
    }

    #[test]
    fn a_password_equal_to_the_email_or_username_is_refused() {
        assert_eq!(
            check(&PasswordPolicy::default(), "ADA@example.com"),
            Err("same_as_identity")
        );
        let (email, _) = identity();
        let username = Username::parse("zebra-crossing-42").expect("valid");
        let result = PasswordPolicy::default().check(
            &Password::new("Zebra-Crossing-42"),
            Some(&email),
            Some(&username),
        );
        assert_eq!(result.map_err(|e| e.code), Err("same_as_identity"));
    }

    #[test]
    fn the_minimum_is_configurable_but_never_below_eight() {
        let strict = PasswordPolicy::with_min_chars(15).expect("valid minimum");
        assert_eq!(check(&strict, "velvet-otter"), Err("too_short"));
        assert!(PasswordPolicy::with_min_chars(6).is_err());
        assert!(PasswordPolicy::with_min_chars(129).is_err());
    }

    #[test]
    fn a_breached_password_is_refused_after_every_other_rule() {
        let listed = ["velvet-otter-harbour", "password", "ada@example.com"].map(Password::new);
        let policy =
            PasswordPolicy::default().with_breached(BreachedPasswords::of_passwords(&listed));
        assert_eq!(check(&policy, "velvet-otter-harbour"), Err("breached"));
        // The common list is the floor, and says so first.
        assert_eq!(check(&policy, "password"), Err("common"));
        assert_eq!(check(&policy, "ada@example.com"), Err("same_as_identity"));
        // Exactly as typed: HaveIBeenPwned hashes passwords, not their lower case.
        assert_eq!(check(&policy, "Velvet-Otter-Harbour"), Ok(()));
        assert_eq!(check(&policy, "marble-finch-lantern"), Ok(()));
    }

    #[test]
    fn whitespace_is_kept_not_trimmed() {
        assert_eq!(check(&PasswordPolicy::default(), "  a b c  "), Ok(()));
        assert_eq!(check(&PasswordPolicy::default(), " abcdef "), Ok(()));
    }

    #[test]
    fn debug_never_shows_the_password() {
        let shown = format!("{:?}", Password::new("velvet-otter-harbour"));
        assert!(!shown.contains("velvet"));
        assert!(shown.contains("redacted"));
    }
}
