//! Passkeys (WebAuthn), over `webauthn-rs`: the relying party's ceremonies, with the
//! JSON that goes to and comes from the browser, and the states kept in between.
//!
//! Three ceremonies, one kind of key (the library's `Passkey`, stored as its JSON in
//! [`StoredPasskey::key`]):
//! - registration ([`RelyingParty::start_registration`]): a discoverable credential is
//!   asked for, user verification required, attestation `none`;
//! - usernameless sign-in ([`RelyingParty::start_sign_in`]): empty `allowCredentials`;
//!   the answer names its user ([`identify`]), whose key the caller looks up;
//! - a known user's second factor or step-up ([`RelyingParty::start_second_factor`]):
//!   `allowCredentials` lists their passkeys.
//!
//! Every ceremony requires user verification, so a passkey is a whole second factor on
//! its own and a passwordless sign-in is still two factors. A [`CeremonyState`] waits in
//! the store under its [`CeremonyState::challenge_digest`]; the answer finds it by
//! [`challenge_digest_of`], and the store gives it out once.
//!
//! ```
//! use auth_domain::passkeys::RelyingParty;
//!
//! let url = url::Url::parse("http://localhost:8080").unwrap();
//! let rp = RelyingParty::from_public_url(&url).unwrap();
//! let (options, state) = rp.start_sign_in().unwrap();
//! assert_eq!(options["publicKey"]["allowCredentials"], serde_json::json!([]));
//! assert_eq!(state.challenge_digest().len(), 64);
//! assert!(RelyingParty::from_public_url(&"http://127.0.0.1:8080".parse().unwrap()).is_err());
//! ```

mod error;
mod state;

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use url::{Host, Url};
use webauthn_rs::prelude::{
    Passkey, PublicKeyCredential, RegisterPublicKeyCredential, Uuid, Webauthn, WebauthnBuilder,
};

pub use error::{PasskeyError, PasskeysUnavailable};
pub use state::{challenge_digest_of, CeremonyState, MIN_CHALLENGE_BYTES};

use crate::{
    factors::{CredentialId, StoredPasskey},
    UserId,
};
use state::Inner;

/// How long the browser is given to answer, and so how long a ceremony lives in the
/// store (the issue's 5 minutes, also WebAuthn's recommended default).
pub const CEREMONY_TIMEOUT: Duration = Duration::from_secs(300);

/// This service as a WebAuthn relying party: its id (the host of `PUBLIC_URL`) and the one
/// origin its ceremonies are accepted from. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RelyingParty {
    webauthn: Webauthn,
    id: String,
    origin: Url,
}

/// A passkey just registered, to be stored as [`StoredPasskey`].
#[derive(Clone, PartialEq, Eq)]
pub struct NewPasskey {
    /// The authenticator's id for it (unique: the store refuses a second one).
    pub credential_id: CredentialId,
    /// The public key and its counters, as [`StoredPasskey::key`].
    pub key: String,
}

impl std::fmt::Debug for NewPasskey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewPasskey")
            .field("credential_id", &self.credential_id)
            .finish_non_exhaustive()
    }
}

/// A verified assertion: who signed in with which passkey.
#[derive(Clone, PartialEq, Eq)]
pub struct Assertion {
    /// Whose passkey it is.
    pub user_id: UserId,
    /// Which passkey.
    pub credential_id: CredentialId,
    /// The key to store back ([`crate::factors::FactorStore::passkey_used`]): the
    /// library advances its signature counter (a counter that goes backwards later
    /// betrays a cloned authenticator). The stored key itself when nothing changed.
    pub key: String,
    /// Whether [`key`](Self::key) differs from the stored one.
    pub key_changed: bool,
}

impl std::fmt::Debug for Assertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Assertion")
            .field("user_id", &self.user_id)
            .field("credential_id", &self.credential_id)
            .field("key_changed", &self.key_changed)
            .finish_non_exhaustive()
    }
}

impl RelyingParty {
    /// The relying party of a service served at `url` (`PUBLIC_URL`): its id is the host,
    /// its origin the URL's origin (scheme, host and port; the path is not part of it).
    ///
    /// # Errors
    ///
    /// [`PasskeysUnavailable`] for a URL whose host is not a domain name (an IP
    /// literal, or none: browsers refuse an IP address as a relying-party id), or that
    /// is neither https nor `http://localhost` (browsers offer WebAuthn only in a secure
    /// context). The service then runs without passkeys.
    pub fn from_public_url(url: &Url) -> Result<Self, PasskeysUnavailable> {
        let domain = match url.host() {
            Some(Host::Domain(domain)) => domain,
            Some(Host::Ipv4(_) | Host::Ipv6(_)) => {
                return Err(PasskeysUnavailable::because(
                    "PUBLIC_URL's host is an IP address, which browsers refuse as a relying-party id; use a domain name (http://localhost:PORT in development)",
                ))
            }
            None => {
                return Err(PasskeysUnavailable::because(
                    "PUBLIC_URL has no host to be the relying-party id",
                ))
            }
        };
        let local = domain == "localhost" || domain.ends_with(".localhost");
        match url.scheme() {
            "https" => {}
            "http" if local => {}
            _ => {
                return Err(PasskeysUnavailable::because(
                    "browsers offer passkeys only to https origins (or http://localhost)",
                ))
            }
        }
        let origin = Url::parse(&url.origin().ascii_serialization()).map_err(|_| {
            PasskeysUnavailable::because("PUBLIC_URL has no origin a browser would send")
        })?;
        let webauthn = WebauthnBuilder::new(domain, &origin)
            .and_then(|builder| builder.timeout(CEREMONY_TIMEOUT).build())
            .map_err(|_| {
                PasskeysUnavailable::because("webauthn-rs refuses PUBLIC_URL as a relying party")
            })?;
        Ok(Self {
            webauthn,
            id: domain.to_owned(),
            origin,
        })
    }

    /// The relying-party id: what every passkey is bound to. Changing `PUBLIC_URL`'s host
    /// orphans every registered passkey.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The one origin answers are accepted from.
    pub fn origin(&self) -> &Url {
        &self.origin
    }

    /// Starts registering a passkey for `user`: the creation options for the browser
    /// (`{"publicKey": {...}}`, binary fields base64url) and the state to keep.
    ///
    /// The WebAuthn user handle is the user's UUID (16 bytes), which the authenticator
    /// gives back at a usernameless sign-in. `exclude` lists the user's passkeys, so
    /// that an authenticator holding one of them does not register twice.
    ///
    /// # Errors
    ///
    /// [`PasskeyError::Corrupt`] when a stored credential id is not base64url;
    /// [`PasskeyError::Unexpected`] when the library fails.
    pub fn start_registration(
        &self,
        user: UserId,
        user_name: &str,
        display_name: &str,
        exclude: &[CredentialId],
    ) -> Result<(Value, CeremonyState), PasskeyError> {
        let exclude = exclude
            .iter()
            .map(|id| {
                state::from_base64url(id.as_str())
                    .ok_or(PasskeyError::Corrupt("a stored credential id"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (options, registration) = self
            .webauthn
            .start_passkey_registration(
                user.as_uuid(),
                user_name,
                display_name,
                Some(exclude).filter(|exclude| !exclude.is_empty()),
            )
            .map_err(PasskeyError::unexpected)?;
        let state = CeremonyState::start(
            Inner::Registration(registration),
            Some(user),
            &options.public_key.challenge,
        )?;
        let mut options = serde_json::to_value(&options).map_err(PasskeyError::unexpected)?;
        // webauthn-rs' passkeys discourage a resident key (security keys have little room
        // for them), and offer no switch; a usernameless sign-in needs one. Asked for
        // here only: the library's state does not check residency, and a passkey that
        // is not discoverable still serves as a second factor.
        if let Some(selection) = options
            .pointer_mut("/publicKey/authenticatorSelection")
            .and_then(Value::as_object_mut)
        {
            selection.insert("residentKey".into(), "required".into());
            selection.insert("requireResidentKey".into(), true.into());
        }
        Ok((options, state))
    }

    /// Finishes a registration: the passkey to store, when `credential` (the browser's
    /// `PublicKeyCredential` as JSON) answers this ceremony's challenge, from this
    /// origin, with the user verified.
    ///
    /// # Errors
    ///
    /// [`PasskeyError::WrongCeremony`] for another ceremony's state, and what the
    /// verification refuses: [`PasskeyError::MalformedCredential`],
    /// [`PasskeyError::ChallengeMismatch`], [`PasskeyError::WrongOrigin`],
    /// [`PasskeyError::UserVerificationMissing`], [`PasskeyError::AlreadyRegistered`],
    /// [`PasskeyError::Rejected`].
    pub fn finish_registration(
        &self,
        state: &CeremonyState,
        credential: &Value,
    ) -> Result<NewPasskey, PasskeyError> {
        let Inner::Registration(registration) = &state.inner else {
            return Err(PasskeyError::WrongCeremony);
        };
        let credential = RegisterPublicKeyCredential::deserialize(credential)
            .map_err(|_| PasskeyError::MalformedCredential)?;
        let passkey = self
            .webauthn
            .finish_passkey_registration(&credential, registration)
            .map_err(PasskeyError::from_verification)?;
        Ok(NewPasskey {
            credential_id: CredentialId::from_stored(state::base64url(passkey.cred_id())),
            key: serde_json::to_string(&passkey).map_err(PasskeyError::unexpected)?,
        })
    }

    /// Starts a usernameless sign-in: request options with an empty `allowCredentials`
    /// (the authenticator offers whichever passkeys it holds for this relying party),
    /// user verification required.
    ///
    /// The library marks these options for conditional mediation (autofill); that mark
    /// is left out, so that a "sign in with a passkey" button works: a page that wants
    /// autofill asks for it itself.
    ///
    /// # Errors
    ///
    /// [`PasskeyError::Unexpected`] when the library fails.
    pub fn start_sign_in(&self) -> Result<(Value, CeremonyState), PasskeyError> {
        let (mut options, authentication) = self
            .webauthn
            .start_discoverable_authentication()
            .map_err(PasskeyError::unexpected)?;
        options.mediation = None;
        let state = CeremonyState::start(
            Inner::SignIn(authentication),
            None,
            &options.public_key.challenge,
        )?;
        let options = serde_json::to_value(&options).map_err(PasskeyError::unexpected)?;
        Ok((options, state))
    }

    /// Finishes a usernameless sign-in with `passkey`, the stored passkey whose
    /// credential id [`identify`] read from `credential`: the assertion must be that
    /// passkey's, name its owner as the user, answer this ceremony's challenge from this
    /// origin, and carry user verification.
    ///
    /// # Errors
    ///
    /// [`PasskeyError::UnknownKey`] when the credential is not `passkey` or names
    /// another user; [`PasskeyError::UserVerificationMissing`]; the others of
    /// [`finish_registration`](Self::finish_registration); [`PasskeyError::Corrupt`] when
    /// the stored key does not read back.
    pub fn finish_sign_in(
        &self,
        state: &CeremonyState,
        credential: &Value,
        passkey: &StoredPasskey,
    ) -> Result<Assertion, PasskeyError> {
        let Inner::SignIn(authentication) = &state.inner else {
            return Err(PasskeyError::WrongCeremony);
        };
        let (credential, user, credential_id) = parse_assertion(credential)?;
        // WebAuthn §7.2 step 6: the user handle must name the passkey's owner, or one
        // user's passkey could sign in as another.
        if user != Some(passkey.user_id) || credential_id != passkey.credential_id {
            return Err(PasskeyError::UnknownKey);
        }
        let mut key = read_key(passkey)?;
        let result = self
            .webauthn
            .finish_discoverable_authentication_v2(&credential, authentication.clone(), &key)
            .map_err(PasskeyError::from_verification)?;
        assertion(passkey, &mut key, &result)
    }

    /// Starts a known user's passkey proof (the second step of a login, or a step-up):
    /// request options listing `passkeys` (the user's own) in `allowCredentials`, user
    /// verification required.
    ///
    /// # Errors
    ///
    /// [`PasskeyError::UnknownKey`] when `passkeys` is empty or holds another user's;
    /// [`PasskeyError::Corrupt`] when a stored key does not read back;
    /// [`PasskeyError::Unexpected`] when the library fails.
    pub fn start_second_factor(
        &self,
        user: UserId,
        passkeys: &[StoredPasskey],
    ) -> Result<(Value, CeremonyState), PasskeyError> {
        if passkeys.is_empty() || passkeys.iter().any(|passkey| passkey.user_id != user) {
            return Err(PasskeyError::UnknownKey);
        }
        let keys = passkeys
            .iter()
            .map(read_key)
            .collect::<Result<Vec<_>, _>>()?;
        let (options, authentication) = self
            .webauthn
            .start_passkey_authentication(&keys)
            .map_err(PasskeyError::unexpected)?;
        let state = CeremonyState::start(
            Inner::SecondFactor(authentication),
            Some(user),
            &options.public_key.challenge,
        )?;
        let options = serde_json::to_value(&options).map_err(PasskeyError::unexpected)?;
        Ok((options, state))
    }

    /// Finishes a known user's passkey proof with `passkey`, the stored passkey whose
    /// credential id [`credential_id_of`] read from `credential`, as stored now: a
    /// passkey deleted since the options were given has no stored form to pass, and
    /// one of another user is refused.
    ///
    /// # Errors
    ///
    /// Those of [`finish_sign_in`](Self::finish_sign_in).
    pub fn finish_second_factor(
        &self,
        state: &CeremonyState,
        credential: &Value,
        passkey: &StoredPasskey,
    ) -> Result<Assertion, PasskeyError> {
        let Inner::SecondFactor(authentication) = &state.inner else {
            return Err(PasskeyError::WrongCeremony);
        };
        let (credential, user, credential_id) = parse_assertion(credential)?;
        // The user handle is optional here (a passkey that is not discoverable has
        // none), but when present it must not name someone else.
        if state.user() != Some(passkey.user_id)
            || user.is_some_and(|user| user != passkey.user_id)
            || credential_id != passkey.credential_id
        {
            return Err(PasskeyError::UnknownKey);
        }
        let mut key = read_key(passkey)?;
        // Verified against the key as it was when the options were given (the library
        // keeps it in its state); the counter update goes to the key as stored now.
        let result = self
            .webauthn
            .finish_passkey_authentication(&credential, authentication)
            .map_err(PasskeyError::from_verification)?;
        assertion(passkey, &mut key, &result)
    }
}

/// Who a usernameless sign-in's `credential` names: the user (its user handle) and the
/// passkey (its credential id), to look the stored passkey up before
/// [`RelyingParty::finish_sign_in`]. Nothing is verified yet.
///
/// # Errors
///
/// [`PasskeyError::MalformedCredential`] when it is not an assertion, or carries no
/// user handle that is one of our user ids.
pub fn identify(credential: &Value) -> Result<(UserId, CredentialId), PasskeyError> {
    let (_, user, credential_id) = parse_assertion(credential)?;
    let user = user.ok_or(PasskeyError::MalformedCredential)?;
    Ok((user, credential_id))
}

/// Which passkey an assertion (`credential`) was made with, to look the stored passkey
/// up before [`RelyingParty::finish_second_factor`]. Nothing is verified yet.
///
/// # Errors
///
/// [`PasskeyError::MalformedCredential`] when it is not an assertion.
pub fn credential_id_of(credential: &Value) -> Result<CredentialId, PasskeyError> {
    parse_assertion(credential).map(|(_, _, credential_id)| credential_id)
}

/// An assertion as the library reads it, its user handle as one of our user ids (`None`
/// when absent) and its credential id as stored.
fn parse_assertion(
    credential: &Value,
) -> Result<(PublicKeyCredential, Option<UserId>, CredentialId), PasskeyError> {
    let credential = PublicKeyCredential::deserialize(credential)
        .map_err(|_| PasskeyError::MalformedCredential)?;
    let user = match credential.get_user_unique_id() {
        None => None,
        Some(handle) => Some(UserId::from_uuid(
            Uuid::from_slice(handle).map_err(|_| PasskeyError::MalformedCredential)?,
        )),
    };
    let credential_id = CredentialId::from_stored(state::base64url(credential.get_credential_id()));
    Ok((credential, user, credential_id))
}

fn read_key(passkey: &StoredPasskey) -> Result<Passkey, PasskeyError> {
    serde_json::from_str(&passkey.key).map_err(|_| PasskeyError::Corrupt("a stored passkey"))
}

fn assertion(
    passkey: &StoredPasskey,
    key: &mut Passkey,
    result: &webauthn_rs::prelude::AuthenticationResult,
) -> Result<Assertion, PasskeyError> {
    // `None`: the result is of another credential, which the checks above rule out.
    let key_changed = key
        .update_credential(result)
        .ok_or(PasskeyError::UnknownKey)?;
    let key = if key_changed {
        serde_json::to_string(key).map_err(PasskeyError::unexpected)?
    } else {
        passkey.key.clone()
    };
    Ok(Assertion {
        user_id: passkey.user_id,
        credential_id: passkey.credential_id.clone(),
        key,
        key_changed,
    })
}
