//! Keyed digests: what the service stores or hands out about an account or an address
//! (throttle keys, device tokens) is an HMAC-SHA256 under a key derived from
//! `SECRET_KEY`, never a plain hash that a list of emails or the IPv4 space could be
//! matched against.
//!
//! The keys come from the HTTP layer's per-purpose derivation (HKDF of the whole
//! secret, one key per purpose), as raw bytes. Rotating `SECRET_KEY` starts the throttle
//! counts afresh (their keys change); device tokens made under a key now listed in
//! `SECRET_KEY_FALLBACKS` still prove their device, and the next login re-issues them
//! under the current key.

use std::{fmt, sync::Arc};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{session::Credential, UserId};

/// The length of every derived key.
pub const KEY_BYTES: usize = 32;

/// The keys of the keyed digests. Cheap to clone.
#[derive(Clone)]
pub struct DigestKeys {
    throttle: Hmac<Sha256>,
    /// The current key first, then the fallbacks, which only verify.
    devices: Arc<[Hmac<Sha256>]>,
}

impl DigestKeys {
    /// Keys from derived bytes: one for throttle keys, and the device-token keys, the
    /// current one first.
    ///
    /// # Panics
    ///
    /// When `devices` is empty: there must be a current key.
    pub fn new(throttle: &[u8; KEY_BYTES], devices: &[[u8; KEY_BYTES]]) -> Self {
        assert!(!devices.is_empty(), "a current device-token key");
        Self {
            throttle: keyed(throttle),
            devices: devices.iter().map(keyed).collect(),
        }
    }

    /// The digest of `parts` under `scope`, as 64 hexadecimal digits. The parts are
    /// length-prefixed, so no two different lists give the same digest.
    pub(crate) fn throttle_digest(&self, scope: &str, parts: &[&str]) -> String {
        let mut mac = self.throttle.clone();
        for part in std::iter::once(scope).chain(parts.iter().copied()) {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        hex::encode(mac.finalize().into_bytes())
    }

    /// The device token of `user` while their password is the one of `credential`: it
    /// names the user, not an email address or a username that a later account could take,
    /// and dies with the password.
    pub(crate) fn device_token(&self, user: UserId, credential: &Credential) -> String {
        hex::encode(
            device_mac(&self.devices[0], user, credential)
                .finalize()
                .into_bytes(),
        )
    }

    /// Whether `token` is the device token of `user` and `credential` under any key.
    pub(crate) fn proves_device(&self, token: &str, user: UserId, credential: &Credential) -> bool {
        let Ok(tag) = hex::decode(token) else {
            return false;
        };
        self.devices
            .iter()
            .any(|key| device_mac(key, user, credential).verify_slice(&tag).is_ok())
    }
}

impl fmt::Debug for DigestKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestKeys")
            .field("device_keys", &self.devices.len())
            .finish_non_exhaustive()
    }
}

fn keyed(key: &[u8; KEY_BYTES]) -> Hmac<Sha256> {
    Hmac::new_from_slice(key).expect("HMAC takes a key of any length")
}

fn device_mac(key: &Hmac<Sha256>, user: UserId, credential: &Credential) -> Hmac<Sha256> {
    let mut mac = key.clone();
    mac.update(user.as_uuid().as_bytes());
    mac.update(credential.as_str().as_bytes());
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(device: u8, fallbacks: &[u8]) -> DigestKeys {
        let devices: Vec<[u8; KEY_BYTES]> = std::iter::once(device)
            .chain(fallbacks.iter().copied())
            .map(|byte| [byte; KEY_BYTES])
            .collect();
        DigestKeys::new(&[9; KEY_BYTES], &devices)
    }

    #[test]
    fn throttle_digests_are_keyed_and_tell_scopes_and_parts_apart() {
        let digest = keys(1, &[]).throttle_digest("login-client", &["ada@example.com", "10.0.0.1"]);
        assert_eq!(digest.len(), 64);
        assert_eq!(
            digest,
            keys(2, &[]).throttle_digest("login-client", &["ada@example.com", "10.0.0.1"]),
            "the device keys play no part"
        );
        let other_key = DigestKeys::new(&[8; KEY_BYTES], &[[1; KEY_BYTES]]);
        assert_ne!(
            digest,
            other_key.throttle_digest("login-client", &["ada@example.com", "10.0.0.1"])
        );
        let k = keys(1, &[]);
        assert_ne!(
            k.throttle_digest("s", &["ab", "c"]),
            k.throttle_digest("s", &["a", "bc"])
        );
        assert_ne!(
            k.throttle_digest("s", &["a"]),
            k.throttle_digest("t", &["a"])
        );
    }

    #[test]
    fn a_device_token_proves_its_user_and_password_only_under_a_known_key() {
        let (ada, bob) = (UserId::generate(), UserId::generate());
        let (old, new) = (
            Credential::from_trusted("aa".repeat(32)),
            Credential::from_trusted("bb".repeat(32)),
        );
        let issued = keys(1, &[]).device_token(ada, &old);
        assert!(keys(1, &[]).proves_device(&issued, ada, &old));
        assert!(
            !keys(1, &[]).proves_device(&issued, bob, &old),
            "another user"
        );
        assert!(
            !keys(1, &[]).proves_device(&issued, ada, &new),
            "a new password"
        );
        assert!(
            !keys(2, &[]).proves_device(&issued, ada, &old),
            "another key"
        );
        assert!(
            keys(2, &[1]).proves_device(&issued, ada, &old),
            "a fallback key"
        );
        assert!(!keys(1, &[]).proves_device("not hex", ada, &old));
        assert!(!keys(1, &[]).proves_device("", ada, &old));
    }
}
