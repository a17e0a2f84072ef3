//! Signed cookie values: one HMAC-SHA256 key per purpose, derived from the whole secret.
//!
//! A signed value is `<value>.<tag>`, the tag being the unpadded base64url HMAC-SHA256 of
//! `<name>=<value>` under the purpose's key: binding the name means a device cookie's
//! value can never be replayed as a session cookie, and the per-purpose key means a
//! signature made for one purpose verifies for no other. Each purpose's key is HKDF-SHA256
//! of the entire `SECRET_KEY` with the purpose as `info`, so that changing any byte of the
//! secret changes every key (the `cookie` crate's layout signed with the first 32 bytes
//! only).
//!
//! The keyed HMAC state is computed once per key, so signing or verifying costs the two
//! compressions of the message, not the four of keying it again.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use auth_domain::{
    digest::{DigestKeys, KEY_BYTES},
    seal::Seal,
    tokens::TokenKey,
};

use crate::config::{HttpConfig, SessionKey};

/// What a key signs. Each has its own derived key; add one per new kind of signed token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// The session cookie.
    SessionCookie,
    /// The device cookie of login throttling (a keyed digest of the user and their
    /// password, made by the domain).
    DeviceCookie,
    /// The keyed digests that name accounts and addresses in the throttle's counts.
    ThrottleKeys,
    /// The keyed digests of mailed one-time tokens, as stored.
    MailTokens,
    /// The encryption of mail bodies waiting in the outbox.
    MailSeal,
    /// The encryption of users' TOTP secrets.
    TotpSeal,
}

impl Purpose {
    /// The HKDF `info` of the purpose; versioned so that a format change can move on.
    fn info(self) -> &'static [u8] {
        match self {
            Self::SessionCookie => b"auth-service/v1/session-cookie",
            Self::DeviceCookie => b"auth-service/v1/device-cookie",
            Self::ThrottleKeys => b"auth-service/v1/throttle-keys",
            Self::MailTokens => b"auth-service/v1/mail-tokens",
            Self::MailSeal => b"auth-service/v1/mail-seal",
            Self::TotpSeal => b"auth-service/v1/totp-seal",
        }
    }
}

/// The bytes of an HMAC-SHA256 tag.
const TAG_BYTES: usize = 32;
/// Their length in unpadded base64.
const TAG_CHARS: usize = 43;

/// Signs with the current secret's key for one purpose, and verifies with it and then
/// with each fallback secret's.
#[derive(Clone)]
pub(crate) struct Signer {
    /// Signs, and verifies first.
    current: Hmac<Sha256>,
    /// Verify only, in order (`SECRET_KEY_FALLBACKS`).
    fallbacks: Vec<Hmac<Sha256>>,
}

/// How a value verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verified {
    /// By the current key.
    Current,
    /// By a fallback key only: whatever carries it should be re-issued under the current one.
    Fallback,
}

impl Signer {
    /// The signer of `purpose` for the current secret and the fallbacks.
    pub(crate) fn new(purpose: Purpose, current: &SessionKey, fallbacks: &[SessionKey]) -> Self {
        Self {
            current: keyed(purpose, current),
            fallbacks: fallbacks.iter().map(|key| keyed(purpose, key)).collect(),
        }
    }

    /// `value` signed for the cookie `name`: `<value>.<tag>`.
    pub(crate) fn sign(&self, name: &str, value: &str) -> String {
        let tag = tag_of(self.current.clone(), name.as_bytes(), value.as_bytes()).finalize();
        let mut signed = String::with_capacity(value.len() + 1 + TAG_CHARS);
        signed.push_str(value);
        signed.push('.');
        URL_SAFE_NO_PAD.encode_string(tag.into_bytes(), &mut signed);
        signed
    }

    /// The value that `signed` carries for the cookie `name`, and which key verified it;
    /// `None` when it is not `<value>.<tag>` or no key verifies it. Works on bytes: the
    /// value is returned only once verified, and then it is what we signed, ASCII.
    pub(crate) fn verify<'a>(&self, name: &str, signed: &'a [u8]) -> Option<(&'a str, Verified)> {
        let dot = signed.iter().rposition(|&byte| byte == b'.')?;
        let (value, encoded_tag) = (&signed[..dot], &signed[dot + 1..]);
        if encoded_tag.len() != TAG_CHARS {
            return None;
        }
        let mut tag = [0_u8; TAG_BYTES + 1];
        let decoded = URL_SAFE_NO_PAD.decode_slice(encoded_tag, &mut tag).ok()?;
        let tag = tag.get(..decoded).filter(|tag| tag.len() == TAG_BYTES)?;
        let verifies = |key: &Hmac<Sha256>| {
            tag_of(key.clone(), name.as_bytes(), value)
                .verify_slice(tag)
                .is_ok()
        };
        let verified = if verifies(&self.current) {
            Verified::Current
        } else if self.fallbacks.iter().any(verifies) {
            Verified::Fallback
        } else {
            return None;
        };
        // Only ever reached for a value we signed, which is ASCII.
        std::str::from_utf8(value)
            .ok()
            .map(|value| (value, verified))
    }
}

/// The keyed HMAC state of `purpose` for `secret`.
fn keyed(purpose: Purpose, secret: &SessionKey) -> Hmac<Sha256> {
    Hmac::new_from_slice(&derive(purpose, secret)).expect("HMAC takes a key of any length")
}

/// The key of `purpose` for `secret`: HKDF-SHA256 of the whole secret.
pub(crate) fn derive(purpose: Purpose, secret: &SessionKey) -> [u8; KEY_BYTES] {
    let mut key = [0_u8; KEY_BYTES];
    Hkdf::<Sha256>::new(None, secret.expose())
        .expand(purpose.info(), &mut key)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    key
}

/// The keys of the domain's keyed digests (throttle keys, device tokens), derived from
/// `SECRET_KEY` per purpose as the cookie signers' are; the fallback secrets' device keys
/// still verify a device token.
pub fn digest_keys(config: &HttpConfig) -> DigestKeys {
    let devices: Vec<[u8; KEY_BYTES]> = std::iter::once(&config.session_key)
        .chain(&config.fallback_keys)
        .map(|secret| derive(Purpose::DeviceCookie, secret))
        .collect();
    DigestKeys::new(
        &derive(Purpose::ThrottleKeys, &config.session_key),
        &devices,
    )
}

/// The keys mailed tokens are digested under: `SECRET_KEY`'s for new tokens, and each of
/// `SECRET_KEY_FALLBACKS`' to find a token mailed before a rotation (dropping a fallback
/// voids its links, as it should after a leak).
pub fn token_key(config: &HttpConfig) -> TokenKey {
    let fallbacks: Vec<[u8; KEY_BYTES]> = config
        .fallback_keys
        .iter()
        .map(|secret| derive(Purpose::MailTokens, secret))
        .collect();
    TokenKey::with_fallbacks(
        &derive(Purpose::MailTokens, &config.session_key),
        &fallbacks,
    )
}

/// The keys mail bodies wait in the outbox under: `SECRET_KEY`'s seals, each of
/// `SECRET_KEY_FALLBACKS`' also opens (mail written before a rotation still goes out).
pub fn mail_seal(config: &HttpConfig) -> Seal {
    let fallbacks: Vec<[u8; KEY_BYTES]> = config
        .fallback_keys
        .iter()
        .map(|secret| derive(Purpose::MailSeal, secret))
        .collect();
    Seal::new(&derive(Purpose::MailSeal, &config.session_key), &fallbacks)
}

/// The keys users' TOTP secrets are stored under: `SECRET_KEY`'s seals, each of
/// `SECRET_KEY_FALLBACKS`' also opens, so a rotation keeps every enrolment working while
/// the old key stays a fallback.
pub fn totp_seal(config: &HttpConfig) -> Seal {
    let fallbacks: Vec<[u8; KEY_BYTES]> = config
        .fallback_keys
        .iter()
        .map(|secret| derive(Purpose::TotpSeal, secret))
        .collect();
    Seal::new(&derive(Purpose::TotpSeal, &config.session_key), &fallbacks)
}

/// The HMAC of `name=value` on the keyed state `mac`.
fn tag_of(mut mac: Hmac<Sha256>, name: &[u8], value: &[u8]) -> Hmac<Sha256> {
    mac.update(name);
    mac.update(b"=");
    mac.update(value);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(byte: u8) -> SessionKey {
        SessionKey::from_bytes(&[byte; 64]).expect("64 bytes")
    }

    fn signer(current: u8, fallbacks: &[u8]) -> Signer {
        let fallbacks: Vec<_> = fallbacks.iter().map(|&byte| secret(byte)).collect();
        Signer::new(Purpose::SessionCookie, &secret(current), &fallbacks)
    }

    #[test]
    fn a_signed_value_verifies_with_its_key_and_carries_the_value() {
        let signer = signer(1, &[]);
        let signed = signer.sign("session", "abc");
        assert!(signed.starts_with("abc."), "{signed}");
        assert_eq!(signed.len(), "abc.".len() + TAG_CHARS);
        assert_eq!(
            signer.verify("session", signed.as_bytes()),
            Some(("abc", Verified::Current))
        );
    }

    #[test]
    fn a_fallback_key_verifies_and_says_so_but_never_signs() {
        let old = signer(2, &[]);
        let rotated = signer(1, &[3, 2]);
        let signed = old.sign("session", "abc");
        assert_eq!(
            rotated.verify("session", signed.as_bytes()),
            Some(("abc", Verified::Fallback))
        );
        assert_ne!(rotated.sign("session", "abc"), signed);
        assert_eq!(signer(1, &[]).verify("session", signed.as_bytes()), None);
    }

    #[test]
    fn changing_any_byte_of_the_secret_ends_what_it_signed() {
        let base = [7_u8; 80];
        let signed = Signer::new(
            Purpose::SessionCookie,
            &SessionKey::from_bytes(&base).unwrap(),
            &[],
        )
        .sign("session", "abc");
        for at in 0..base.len() {
            let mut changed = base;
            changed[at] ^= 1;
            let other = Signer::new(
                Purpose::SessionCookie,
                &SessionKey::from_bytes(&changed).unwrap(),
                &[],
            );
            assert_eq!(
                other.verify("session", signed.as_bytes()),
                None,
                "byte {at}"
            );
        }
    }

    #[test]
    fn a_signature_holds_for_its_purpose_and_cookie_name_only() {
        let session = Signer::new(Purpose::SessionCookie, &secret(1), &[]);
        let device = Signer::new(Purpose::DeviceCookie, &secret(1), &[]);
        let signed = session.sign("session", "abc");
        assert_eq!(device.verify("session", signed.as_bytes()), None);
        assert_eq!(session.verify("device", signed.as_bytes()), None);
    }

    #[test]
    fn anything_but_an_intact_signed_value_verifies_nothing() {
        let signer = signer(1, &[]);
        let signed = signer.sign("session", "abc");
        let tag = &signed["abc.".len()..];
        let mut flipped_tag = signed.clone().into_bytes();
        let last = flipped_tag.len() - 1;
        flipped_tag[last] = if flipped_tag[last] == b'A' {
            b'B'
        } else {
            b'A'
        };
        let cases: Vec<Vec<u8>> = vec![
            b"abc".to_vec(),
            b"".to_vec(),
            b".".to_vec(),
            tag.as_bytes().to_vec(),
            format!("abd.{tag}").into_bytes(),
            format!("abc.{tag}{tag}").into_bytes(),
            format!("abc.{}", &tag[..TAG_CHARS - 1]).into_bytes(),
            format!("abc.{tag}=").into_bytes(),
            format!("\"{signed}\"").into_bytes(),
            signed.replace('.', "%2E").into_bytes(),
            format!("ab\u{e9}.{tag}").into_bytes(),
            [b"abc\xff.", tag.as_bytes()].concat(),
            flipped_tag,
        ];
        for case in cases {
            assert_eq!(
                signer.verify("session", &case),
                None,
                "{:?}",
                String::from_utf8_lossy(&case)
            );
        }
    }
}
