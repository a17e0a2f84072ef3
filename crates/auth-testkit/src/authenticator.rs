//! A software passkey authenticator, for tests that play the browser: it answers the
//! options JSON the server sends with the credential JSON a browser would post.
//!
//! It wraps `webauthn-authenticator-rs`' `SoftPasskey`, which signs like a platform
//! authenticator but (in 0.6.2) stores no resident keys and finds a credential only
//! through `allowCredentials`. What a discoverable credential adds is kept here: the user
//! handle beside each credential id, per relying party. A usernameless sign-in (empty
//! `allowCredentials`) uses the newest passkey of that relying party, and the assertion
//! carries its user handle. The user handle is not signed in WebAuthn, so the server
//! checks exactly what it checks for a real authenticator.
//!
//! ```no_run
//! # fn demo(options: serde_json::Value, origin: url::Url) {
//! let mut authenticator = auth_testkit::authenticator::SoftAuthenticator::new();
//! let credential = authenticator.register(&options, &origin); // POST it back
//! # }
//! ```

use std::fmt;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde_json::{json, Value};
use url::Url;
use webauthn_authenticator_rs::{
    prelude::{CreationChallengeResponse, RequestChallengeResponse, WebauthnAuthenticator},
    softpasskey::SoftPasskey,
};

/// A passkey authenticator in memory that remembers its passkeys across calls. It
/// verifies the user (as a PIN or a fingerprint would) unless told not to.
pub struct SoftAuthenticator {
    /// Always built claiming user verification; it is withheld by asking the backend
    /// for none (see [`set_user_verification`](Self::set_user_verification)).
    backend: SoftPasskey,
    verifies_user: bool,
    /// Oldest first.
    passkeys: Vec<Resident>,
}

/// What a resident credential keeps beside its private key (which the backend holds).
#[derive(Debug, Clone)]
struct Resident {
    rp_id: String,
    credential_id: Vec<u8>,
    user_handle: Vec<u8>,
}

impl SoftAuthenticator {
    /// An authenticator with no passkeys, that verifies the user.
    pub fn new() -> Self {
        Self {
            backend: SoftPasskey::new(true),
            verifies_user: true,
            passkeys: Vec::new(),
        }
    }

    /// Whether later ceremonies verify the user. With `false`, the authenticator data's
    /// UV flag is left unset whatever the options ask: what a server requiring user
    /// verification must refuse.
    pub fn set_user_verification(&mut self, verifies_user: bool) {
        self.verifies_user = verifies_user;
    }

    /// The credential ids (base64url) of the passkeys it holds, oldest first.
    pub fn credential_ids(&self) -> Vec<String> {
        self.passkeys
            .iter()
            .map(|passkey| URL_SAFE_NO_PAD.encode(&passkey.credential_id))
            .collect()
    }

    /// Creates a passkey as `options` (`{"publicKey": {...}}` creation options) ask, in a
    /// page at `origin`, and answers with the `PublicKeyCredential` JSON a browser posts.
    ///
    /// # Panics
    ///
    /// When the options are not creation options, or the authenticator refuses them
    /// (an origin that is not of the relying party): a test's mistake.
    pub fn register(&mut self, options: &Value, origin: &Url) -> Value {
        let mut options = options.clone();
        if let Some(selection) = options
            .pointer_mut("/publicKey/authenticatorSelection")
            .and_then(Value::as_object_mut)
        {
            // The backend refuses to be asked for a resident key; residency is ours.
            selection.insert("requireResidentKey".into(), false.into());
            if !self.verifies_user {
                selection.insert("userVerification".into(), "discouraged".into());
            }
        }
        let options: CreationChallengeResponse =
            serde_json::from_value(options).expect("creation options");
        let rp_id = options.public_key.rp.id.clone();
        let user_handle = options.public_key.user.id.clone();
        let credential = self
            .backend
            .do_registration(origin.clone(), options)
            .expect("the soft authenticator registers");
        self.passkeys.push(Resident {
            rp_id,
            credential_id: credential.raw_id.clone(),
            user_handle,
        });
        serde_json::to_value(&credential).expect("a credential serialises")
    }

    /// Signs `options` (`{"publicKey": {...}}` request options) in a page at `origin`,
    /// and answers with the `PublicKeyCredential` JSON a browser posts: with the newest
    /// passkey of the relying party when `allowCredentials` is empty, else with the
    /// first listed one it holds. The user handle is always given, as a discoverable
    /// credential gives it.
    ///
    /// # Panics
    ///
    /// When the options are not request options, it holds no passkey they allow, or
    /// the authenticator refuses them: a test's mistake.
    pub fn sign_in(&mut self, options: &Value, origin: &Url) -> Value {
        let mut options = options.clone();
        let rp_id = options
            .pointer("/publicKey/rpId")
            .and_then(Value::as_str)
            .expect("request options name the relying party")
            .to_owned();
        let allowed: Vec<Vec<u8>> = options
            .pointer("/publicKey/allowCredentials")
            .and_then(Value::as_array)
            .map(|allowed| {
                allowed
                    .iter()
                    .filter_map(|descriptor| descriptor.get("id")?.as_str())
                    .filter_map(|id| URL_SAFE_NO_PAD.decode(id.trim_end_matches('=')).ok())
                    .collect()
            })
            .unwrap_or_default();
        let passkey = if allowed.is_empty() {
            self.passkeys
                .iter()
                .rev()
                .find(|passkey| passkey.rp_id == rp_id)
        } else {
            allowed.iter().find_map(|id| {
                self.passkeys
                    .iter()
                    .find(|passkey| passkey.rp_id == rp_id && &passkey.credential_id == id)
            })
        }
        .expect("a passkey for these options")
        .clone();
        let public_key = options
            .get_mut("publicKey")
            .and_then(Value::as_object_mut)
            .expect("request options");
        // The backend answers only to `allowCredentials`: name the chosen passkey.
        public_key.insert(
            "allowCredentials".into(),
            json!([{ "type": "public-key", "id": URL_SAFE_NO_PAD.encode(&passkey.credential_id) }]),
        );
        if !self.verifies_user {
            public_key.insert("userVerification".into(), "discouraged".into());
        }
        let options: RequestChallengeResponse =
            serde_json::from_value(options).expect("request options");
        let mut credential = self
            .backend
            .do_authentication(origin.clone(), options)
            .expect("the soft authenticator signs");
        credential.response.user_handle = Some(passkey.user_handle);
        serde_json::to_value(&credential).expect("a credential serialises")
    }
}

impl Default for SoftAuthenticator {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for SoftAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftAuthenticator")
            .field("verifies_user", &self.verifies_user)
            .field("passkeys", &self.passkeys.len())
            .finish_non_exhaustive()
    }
}
