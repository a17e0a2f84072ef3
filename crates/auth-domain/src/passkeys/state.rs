//! A ceremony between its options and its answer, as the server keeps it, and the
//! challenge digest that finds it again from the answer alone.

use std::fmt;

use base64::{
    alphabet,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
    Engine,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, PasskeyAuthentication, PasskeyRegistration,
};

use super::PasskeyError;
use crate::{
    factors::{Ceremony, PendingChallenge},
    UserId,
};

/// The fewest random bytes a challenge may have (the floor; webauthn-rs draws 32).
pub const MIN_CHALLENGE_BYTES: usize = 32;

/// Base64url as browsers write it (no padding), read whether padded or not, as
/// webauthn-rs reads it: the digest must be of the bytes the library compares.
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A WebAuthn ceremony in flight: the library's state, whose it is, and the digest of its
/// challenge. The server keeps it (see [`into_pending`](Self::into_pending)) and takes it
/// back by [`challenge_digest_of`] the answer: no cookie is needed, and a challenge is
/// answered at most once because the store gives it out once.
#[derive(Clone)]
pub struct CeremonyState {
    pub(super) inner: Inner,
    user: Option<UserId>,
    digest: String,
    /// The stored form, made when the ceremony started: serialising can then never fail
    /// later, when the state is put away.
    stored: String,
}

/// The library's state, one type per ceremony.
#[derive(Clone)]
pub(super) enum Inner {
    Registration(PasskeyRegistration),
    SignIn(DiscoverableAuthentication),
    SecondFactor(PasskeyAuthentication),
}

/// The stored form: versioned, so that a later layout can still read this one, and
/// naming its ceremony, since two of the library's states have the same shape.
#[derive(Serialize, Deserialize)]
struct Stored<S> {
    v: u8,
    ceremony: String,
    user: Option<Uuid>,
    digest: String,
    state: S,
}

const STORED_VERSION: u8 = 1;

impl CeremonyState {
    /// A ceremony just started with `challenge`.
    pub(super) fn start(
        inner: Inner,
        user: Option<UserId>,
        challenge: &[u8],
    ) -> Result<Self, PasskeyError> {
        if challenge.len() < MIN_CHALLENGE_BYTES {
            return Err(PasskeyError::unexpected(format!(
                "a challenge of {} bytes, under {MIN_CHALLENGE_BYTES}",
                challenge.len()
            )));
        }
        let digest = digest_of(challenge);
        let mut state = Self {
            inner,
            user,
            digest,
            stored: String::new(),
        };
        state.stored = match &state.inner {
            Inner::Registration(inner) => state.to_json(inner),
            Inner::SignIn(inner) => state.to_json(inner),
            Inner::SecondFactor(inner) => state.to_json(inner),
        }
        .map_err(PasskeyError::unexpected)?;
        Ok(state)
    }

    /// What this ceremony is for.
    pub fn ceremony(&self) -> Ceremony {
        match self.inner {
            Inner::Registration(_) => Ceremony::Registration,
            Inner::SignIn(_) => Ceremony::SignIn,
            Inner::SecondFactor(_) => Ceremony::SecondFactor,
        }
    }

    /// Whose ceremony this is; `None` for a usernameless sign-in, whose user is whoever
    /// the passkey names.
    pub fn user(&self) -> Option<UserId> {
        self.user
    }

    /// The hex SHA-256 of the challenge's bytes: what [`challenge_digest_of`] gives for
    /// an answer to this ceremony.
    pub fn challenge_digest(&self) -> &str {
        &self.digest
    }

    /// The state as the store keeps it ([`PendingChallenge::state`]).
    pub fn to_stored(&self) -> String {
        self.stored.clone()
    }

    /// The state stored for a `ceremony`, read back.
    ///
    /// # Errors
    ///
    /// [`PasskeyError::Corrupt`] when it does not read back as that ceremony's state.
    pub fn from_stored(ceremony: Ceremony, stored: &str) -> Result<Self, PasskeyError> {
        let (inner, user, digest) = match ceremony {
            Ceremony::Registration => {
                let s = from_json::<PasskeyRegistration>(ceremony, stored)?;
                (Inner::Registration(s.state), s.user, s.digest)
            }
            Ceremony::SignIn => {
                let s = from_json::<DiscoverableAuthentication>(ceremony, stored)?;
                (Inner::SignIn(s.state), s.user, s.digest)
            }
            Ceremony::SecondFactor => {
                let s = from_json::<PasskeyAuthentication>(ceremony, stored)?;
                (Inner::SecondFactor(s.state), s.user, s.digest)
            }
        };
        Ok(Self {
            inner,
            user: user.map(UserId::from_uuid),
            digest,
            stored: stored.to_owned(),
        })
    }

    /// The ceremony as the [`crate::factors::ChallengeStore`] keeps it, answerable until
    /// `expires_at` (the options' timeout from now: [`super::CEREMONY_TIMEOUT`]).
    pub fn into_pending(self, expires_at: OffsetDateTime) -> PendingChallenge {
        PendingChallenge {
            ceremony: self.ceremony(),
            user_id: self.user,
            digest: self.digest,
            state: self.stored,
            expires_at,
        }
    }

    /// A ceremony taken back from the store.
    ///
    /// # Errors
    ///
    /// [`PasskeyError::Corrupt`] when its state does not read back, or is not for the
    /// user or the challenge the store holds it under.
    pub fn from_pending(pending: &PendingChallenge) -> Result<Self, PasskeyError> {
        let state = Self::from_stored(pending.ceremony, &pending.state)?;
        if state.user != pending.user_id || state.digest != pending.digest {
            return Err(PasskeyError::Corrupt("a ceremony stored under another key"));
        }
        Ok(state)
    }

    fn to_json<S: Serialize>(&self, state: &S) -> serde_json::Result<String> {
        serde_json::to_string(&Stored {
            v: STORED_VERSION,
            ceremony: self.ceremony().as_str().to_owned(),
            user: self.user.map(|user| user.as_uuid()),
            digest: self.digest.clone(),
            state,
        })
    }
}

/// A stored state of `ceremony`, of this layout.
fn from_json<S: for<'de> Deserialize<'de>>(
    ceremony: Ceremony,
    stored: &str,
) -> Result<Stored<S>, PasskeyError> {
    let stored: Stored<S> =
        serde_json::from_str(stored).map_err(|_| PasskeyError::Corrupt("a ceremony state"))?;
    if stored.v != STORED_VERSION || stored.ceremony != ceremony.as_str() {
        return Err(PasskeyError::Corrupt("a ceremony state of another kind"));
    }
    Ok(stored)
}

impl fmt::Debug for CeremonyState {
    /// The ceremony and its user only: the state holds the user's public keys, of no use
    /// in a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CeremonyState")
            .field("ceremony", &self.ceremony())
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// The digest of the challenge a credential answers (its `response.clientDataJSON`'s
/// `challenge`), as [`CeremonyState::challenge_digest`] gives it for the ceremony that
/// issued it; `None` when the credential carries no readable challenge. The credential
/// is not verified here: a forged challenge only finds another ceremony, whose own
/// verification then refuses it.
pub fn challenge_digest_of(credential: &Value) -> Option<String> {
    let client_data = credential
        .get("response")?
        .get("clientDataJSON")?
        .as_str()?;
    let client_data = BASE64URL.decode(client_data).ok()?;
    let client_data: Value = serde_json::from_slice(&client_data).ok()?;
    let challenge = BASE64URL
        .decode(client_data.get("challenge")?.as_str()?)
        .ok()?;
    Some(digest_of(&challenge))
}

/// The base64url form (no padding) of binary WebAuthn fields: credential ids as stored.
pub(super) fn base64url(bytes: &[u8]) -> String {
    BASE64URL.encode(bytes)
}

/// The bytes of a base64url field, padded or not.
pub(super) fn from_base64url(text: &str) -> Option<Vec<u8>> {
    BASE64URL.decode(text).ok()
}

fn digest_of(challenge: &[u8]) -> String {
    hex::encode(Sha256::digest(challenge))
}
