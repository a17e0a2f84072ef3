//! One-time tokens: what a mailed link carries to reset a password, verify an address or
//! confirm a new one.
//!
//! A token is 32 random bytes, base64url without padding, handed out once in a mail and
//! never stored: the store keeps its keyed digest ([`TokenDigest`]) with its purpose, its
//! user, the address it was sent to and its expiry. Redeeming one deletes it in the same
//! transaction as what it allows ([`crate::work::Change::ConsumeToken`]), so two
//! concurrent submissions give one success, and a token bound to an address dies once the
//! user's address is no longer that one.

use std::{fmt, future::Future};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use time::OffsetDateTime;

use crate::{timestamp, Email, RepositoryError, UserId};

/// The random bytes of a token.
pub const TOKEN_BYTES: usize = 32;

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// Setting a new password without the current one.
    PasswordReset,
    /// Marking the address it was sent to as the user's, verified.
    EmailVerification,
    /// Making the (new) address it was sent to the user's address.
    EmailChange,
}

impl Purpose {
    /// Every purpose, for stores that check what they read back.
    pub const ALL: [Self; 3] = [
        Self::PasswordReset,
        Self::EmailVerification,
        Self::EmailChange,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PasswordReset => "password_reset",
            Self::EmailVerification => "email_verification",
            Self::EmailChange => "email_change",
        }
    }

    /// The purpose stored as `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|purpose| purpose.as_str() == name)
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A token as handed out: the only copy of its secret. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSecret(String);

impl TokenSecret {
    /// A fresh token from the operating system's generator.
    pub fn generate() -> Self {
        let mut bytes = [0_u8; TOKEN_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// A token as a client submitted it, if it has a token's shape (43 base64url
    /// characters); anything else matches no token and is not looked up.
    pub fn parse(text: &str) -> Option<Self> {
        let decoded = URL_SAFE_NO_PAD.decode(text).ok()?;
        (decoded.len() == TOKEN_BYTES).then(|| Self(text.to_owned()))
    }

    /// The text, for the mail that hands it out.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret(..)")
    }
}

/// The keyed digest of a token, as stored and looked up: 64 hexadecimal digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenDigest(String);

impl TokenDigest {
    /// A digest read back from storage.
    pub fn from_stored(hex: String) -> Self {
        Self(hex)
    }

    /// The digest as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The keys tokens are digested under (derived from `SECRET_KEY`, and from each of
/// `SECRET_KEY_FALLBACKS`): a database dump alone gives no token, and no digest can be
/// computed without a key. New tokens are digested under the current key; a link mailed
/// before a rotation still works under the key it was made with, now a fallback, until it
/// expires.
#[derive(Clone)]
pub struct TokenKey(std::sync::Arc<[Hmac<Sha256>]>);

impl TokenKey {
    /// One key, with no fallbacks.
    pub fn new(key: &[u8; crate::digest::KEY_BYTES]) -> Self {
        Self::with_fallbacks(key, &[])
    }

    /// The current key, and the older ones that only look tokens up.
    pub fn with_fallbacks(
        current: &[u8; crate::digest::KEY_BYTES],
        fallbacks: &[[u8; crate::digest::KEY_BYTES]],
    ) -> Self {
        let keyed = |key: &[u8]| {
            Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length")
        };
        Self(
            std::iter::once(keyed(current))
                .chain(fallbacks.iter().map(|key| keyed(key)))
                .collect(),
        )
    }

    /// The digest of `secret` for `purpose` under the current key, as stored: a token of
    /// one purpose never matches another.
    pub fn digest(&self, purpose: Purpose, secret: &TokenSecret) -> TokenDigest {
        digest_under(&self.0[0], purpose, secret)
    }

    /// The digests `secret` may be stored under for `purpose`: the current key's first,
    /// then each fallback's.
    pub fn digests(&self, purpose: Purpose, secret: &TokenSecret) -> Vec<TokenDigest> {
        self.0
            .iter()
            .map(|key| digest_under(key, purpose, secret))
            .collect()
    }
}

impl TokenKey {
    /// The hex digests of `user`'s recovery code `code` under each key, current first: a
    /// code is a token of its own kind, bound to its user.
    pub(crate) fn code_digests(&self, user: UserId, code: &str) -> Vec<String> {
        self.0
            .iter()
            .map(|key| {
                let mut mac = key.clone();
                mac.update(b"recovery_code\0");
                mac.update(user.as_uuid().as_bytes());
                mac.update(code.as_bytes());
                hex::encode(mac.finalize().into_bytes())
            })
            .collect()
    }
}

fn digest_under(key: &Hmac<Sha256>, purpose: Purpose, secret: &TokenSecret) -> TokenDigest {
    let mut mac = key.clone();
    mac.update(purpose.as_str().as_bytes());
    mac.update(&[0]);
    mac.update(secret.0.as_bytes());
    TokenDigest(hex::encode(mac.finalize().into_bytes()))
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenKey({} keys)", self.0.len())
    }
}

/// A token as stored: everything but its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneTimeToken {
    /// The keyed digest of its secret; unique.
    pub digest: TokenDigest,
    /// What it allows.
    pub purpose: Purpose,
    /// Whose account.
    pub user_id: UserId,
    /// The address it was sent to: the user's for a reset or a verification (the token
    /// dies once the user's address is another), the new one for an email change.
    pub email: Email,
    /// When it was issued, at the stored precision.
    pub created_at: OffsetDateTime,
    /// When it stops working, at the stored precision.
    pub expires_at: OffsetDateTime,
}

impl OneTimeToken {
    /// A token for `purpose`, issued `at` and living `lifetime`.
    pub fn issue(
        digest: TokenDigest,
        purpose: Purpose,
        user_id: UserId,
        email: Email,
        at: OffsetDateTime,
        lifetime: time::Duration,
    ) -> Self {
        let at = timestamp::truncate_to_micros(at);
        Self {
            digest,
            purpose,
            user_id,
            email,
            created_at: at,
            expires_at: timestamp::truncate_to_micros(at + lifetime),
        }
    }

    /// Whether it still works at `now`.
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        now < self.expires_at
    }
}

/// Where tokens live. Written only through [`crate::work::Work`]; read here.
///
/// # Errors
///
/// Every adapter MUST keep the digest unique, answer an unknown digest with `Ok(None)`
/// (an expired one it may still return: the caller checks [`OneTimeToken::is_live`]), and
/// wrap every driver error in [`RepositoryError`].
pub trait TokenStore: Clone + Send + Sync + 'static {
    /// The token with this digest.
    fn find(
        &self,
        digest: &TokenDigest,
    ) -> impl Future<Output = Result<Option<OneTimeToken>, RepositoryError>> + Send;

    /// When the newest token of `user` for `purpose` was issued, if any is stored: what a
    /// resend's cooldown is measured from.
    fn latest_issued(
        &self,
        user: UserId,
        purpose: Purpose,
    ) -> impl Future<Output = Result<Option<OffsetDateTime>, RepositoryError>> + Send;

    /// Deletes at most `batch` tokens expired before `now`; returns how many.
    fn purge_expired(
        &self,
        now: OffsetDateTime,
        batch: u64,
    ) -> impl Future<Output = Result<u64, RepositoryError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_32_random_bytes_and_only_its_shape_parses() {
        let token = TokenSecret::generate();
        assert_eq!(token.expose().len(), 43);
        assert_ne!(token, TokenSecret::generate());
        assert_eq!(TokenSecret::parse(token.expose()), Some(token.clone()));
        assert_eq!(TokenSecret::parse("short"), None);
        assert_eq!(TokenSecret::parse(&format!("{}A", token.expose())), None);
        assert_eq!(TokenSecret::parse(&"+".repeat(43)), None);
        assert!(!format!("{token:?}").contains(token.expose()));
    }

    #[test]
    fn digests_are_keyed_and_tell_purposes_apart() {
        let token = TokenSecret::generate();
        let key = TokenKey::new(&[1; 32]);
        let digest = key.digest(Purpose::PasswordReset, &token);
        assert_eq!(digest.as_str().len(), 64);
        assert_eq!(digest, key.digest(Purpose::PasswordReset, &token));
        assert_ne!(digest, key.digest(Purpose::EmailChange, &token));
        assert_ne!(
            digest,
            TokenKey::new(&[2; 32]).digest(Purpose::PasswordReset, &token)
        );
        let rotated = TokenKey::with_fallbacks(&[2; 32], &[[1; 32]]);
        assert_ne!(rotated.digest(Purpose::PasswordReset, &token), digest);
        assert_eq!(
            rotated.digests(Purpose::PasswordReset, &token)[1],
            digest,
            "a fallback still finds a token made before the rotation"
        );
    }
}
