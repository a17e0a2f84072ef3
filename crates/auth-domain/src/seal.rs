//! Sealing what the outbox keeps: a pending mail's body holds a live token (a reset link
//! is an account for an hour), and the outbox is a table anyone with a database dump can
//! read. So the body is stored encrypted (XChaCha20-Poly1305, a random 192-bit nonce per
//! mail) under a key derived from `SECRET_KEY`, opened only by the worker that sends it,
//! and forgotten once sent. A body sealed before a rotation opens while its key is among
//! `SECRET_KEY_FALLBACKS`.

use std::{fmt, sync::Arc};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use chacha20poly1305::{aead::Aead, Key, KeyInit, XChaCha20Poly1305, XNonce};
use rand::RngCore;

use crate::digest::KEY_BYTES;

/// What a sealed text starts with: its format, so that a later one can be told apart.
const PREFIX: &str = "sealed.v1.";
/// The nonce's length.
const NONCE_BYTES: usize = 24;

/// The keys mail bodies are sealed with: the current one seals, every one opens.
#[derive(Clone)]
pub struct Seal(Arc<[XChaCha20Poly1305]>);

/// A sealed text that no key opens: sealed under a key no longer configured, or altered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the mail is sealed under a key that is not configured, or was altered")]
pub struct Unopenable;

impl Seal {
    /// The current key, and older ones that only open.
    pub fn new(current: &[u8; KEY_BYTES], fallbacks: &[[u8; KEY_BYTES]]) -> Self {
        let cipher = |key: &[u8; KEY_BYTES]| XChaCha20Poly1305::new(Key::from_slice(key));
        Self(
            std::iter::once(cipher(current))
                .chain(fallbacks.iter().map(cipher))
                .collect(),
        )
    }

    /// `text` sealed under the current key, as text to store.
    pub fn seal(&self, text: &str) -> String {
        let mut nonce = [0_u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self.0[0]
            .encrypt(XNonce::from_slice(&nonce), text.as_bytes())
            .expect("XChaCha20-Poly1305 seals any text a mail holds");
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The text `stored` holds: opened if sealed, as it is if not (nothing else is
    /// stored unsealed, but an emptied body of a sent mail is "").
    ///
    /// # Errors
    ///
    /// No key opens it.
    pub fn open(&self, stored: &str) -> Result<String, Unopenable> {
        let Some(encoded) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_owned());
        };
        let bytes = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| Unopenable)?;
        if bytes.len() < NONCE_BYTES {
            return Err(Unopenable);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        self.0
            .iter()
            .find_map(|key| key.decrypt(XNonce::from_slice(nonce), sealed).ok())
            .and_then(|plain| String::from_utf8(plain).ok())
            .ok_or(Unopenable)
    }
}

impl fmt::Debug for Seal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Seal({} keys)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_body_hides_its_text_and_opens_under_its_key_or_a_fallback_only() {
        let text = "open https://auth.example.com/reset-password#token=abc";
        let seal = Seal::new(&[1; KEY_BYTES], &[]);
        let sealed = seal.seal(text);
        assert!(sealed.starts_with(PREFIX));
        assert!(!sealed.contains("token=abc"));
        assert_ne!(sealed, seal.seal(text), "a fresh nonce each time");
        assert_eq!(seal.open(&sealed).as_deref(), Ok(text));
        let rotated = Seal::new(&[2; KEY_BYTES], &[[1; KEY_BYTES]]);
        assert_eq!(rotated.open(&sealed).as_deref(), Ok(text));
        assert_eq!(
            Seal::new(&[2; KEY_BYTES], &[]).open(&sealed),
            Err(Unopenable)
        );
        let mut altered = sealed.clone();
        altered.pop();
        altered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(seal.open(&altered), Err(Unopenable));
        assert_eq!(
            seal.open("").as_deref(),
            Ok(""),
            "a sent mail's emptied body"
        );
        assert_eq!(seal.open("sealed.v1.!!"), Err(Unopenable));
    }
}
