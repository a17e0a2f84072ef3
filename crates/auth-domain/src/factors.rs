//! Second factors as stored: a user's TOTP credential, their recovery codes, their
//! passkeys, and the WebAuthn ceremonies in flight.
//!
//! What a use case writes together (enrolling a first factor with its recovery codes, a
//! recovery code spent with its notice mail) goes through [`crate::work::Change`]s; what
//! must be decided by the store alone, atomically, across instances, is a method here:
//! a TOTP time step accepted at most once ([`FactorStore::accept_totp_step`]) and a
//! ceremony's challenge taken at most once ([`ChallengeStore::take`]).

use std::{fmt, future::Future};

use time::OffsetDateTime;
use uuid::Uuid;

use crate::{RepositoryError, UserId};

/// A user's TOTP credential. A user has at most one: an enrolment started and not yet
/// confirmed is replaced by the next one; a confirmed one stays until it is removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpCredential {
    /// This enrolment: what a confirmation names, so that it cannot confirm a newer one.
    pub id: Uuid,
    /// Whose.
    pub user_id: UserId,
    /// The secret, sealed ([`crate::seal::Seal`]): a database dump gives no code.
    pub sealed_secret: String,
    /// Whether a first code confirmed it; only a confirmed credential is a factor.
    pub confirmed: bool,
    /// The last time step a code was accepted for (the setup code's included), or `None`:
    /// a code for this step or an older one is refused (RFC 6238 §5.2).
    pub last_step: Option<i64>,
    /// When the enrolment started, at the stored precision.
    pub created_at: OffsetDateTime,
}

/// The keyed digest of a recovery code, as stored: 64 hexadecimal digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CodeDigest(String);

impl CodeDigest {
    /// A digest as computed or read back from storage.
    pub fn from_stored(hex: String) -> Self {
        Self(hex)
    }

    /// The digest as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A WebAuthn credential id, base64url without padding: how an authenticator names a
/// passkey, unique across all users.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CredentialId(String);

impl CredentialId {
    /// An id as computed or read back from storage.
    pub fn from_stored(text: String) -> Self {
        Self(text)
    }

    /// The id as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A registered passkey.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredPasskey {
    /// Our id for it, as the API names it.
    pub id: Uuid,
    /// Whose.
    pub user_id: UserId,
    /// The authenticator's id for it; unique.
    pub credential_id: CredentialId,
    /// What the user calls it.
    pub name: String,
    /// The public key and its counters, as the WebAuthn library serialises them (JSON).
    pub key: String,
    /// When it was registered, at the stored precision.
    pub created_at: OffsetDateTime,
    /// When it last signed someone in, at the stored precision.
    pub last_used_at: Option<OffsetDateTime>,
}

impl fmt::Debug for StoredPasskey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredPasskey")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

/// Which factors a user has, as a login decides whether to ask for a second step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FactorSummary {
    /// A confirmed TOTP credential.
    pub totp: bool,
    /// How many passkeys.
    pub passkeys: u64,
    /// How many unspent recovery codes.
    pub recovery_codes: u64,
}

impl FactorSummary {
    /// Whether a password alone no longer signs this user in. Recovery codes alone are
    /// not a factor: they are the way back when the others are lost.
    pub fn has_second_factor(&self) -> bool {
        self.totp || self.passkeys > 0
    }
}

/// Where second factors live. Written through [`crate::work::Work`] where a use case
/// writes several things together; read, and written alone, here.
///
/// # Errors
///
/// Every adapter MUST wrap driver errors in [`RepositoryError`], keep a credential id
/// unique across users, and make [`accept_totp_step`](Self::accept_totp_step) a single
/// conditional write: two instances accepting the same step for the same user give one
/// `true`.
pub trait FactorStore: Clone + Send + Sync + 'static {
    /// Which factors `user` has.
    fn summary(
        &self,
        user: UserId,
    ) -> impl Future<Output = Result<FactorSummary, RepositoryError>> + Send;

    /// `user`'s TOTP credential, confirmed or not.
    fn totp(
        &self,
        user: UserId,
    ) -> impl Future<Output = Result<Option<TotpCredential>, RepositoryError>> + Send;

    /// Stores `credential` (unconfirmed) as `user`'s enrolment in progress, replacing any
    /// other unconfirmed one; `false`, and nothing written, when the user already has a
    /// confirmed one.
    fn begin_totp(
        &self,
        credential: TotpCredential,
    ) -> impl Future<Output = Result<bool, RepositoryError>> + Send;

    /// Records `step` as the last one accepted for the confirmed credential `id` of
    /// `user`, if it is newer than the last one: `true` when it was, `false` (nothing
    /// written) when a code of this step or a later one was accepted already, or the
    /// credential is gone.
    fn accept_totp_step(
        &self,
        user: UserId,
        id: Uuid,
        step: i64,
    ) -> impl Future<Output = Result<bool, RepositoryError>> + Send;

    /// `user`'s passkeys, oldest first.
    fn passkeys(
        &self,
        user: UserId,
    ) -> impl Future<Output = Result<Vec<StoredPasskey>, RepositoryError>> + Send;

    /// The passkey with this credential id, whoever's.
    fn passkey_by_credential(
        &self,
        credential_id: &CredentialId,
    ) -> impl Future<Output = Result<Option<StoredPasskey>, RepositoryError>> + Send;

    /// Records a use of `user`'s passkey `id` at `at`, with its key as the library
    /// updated it (the signature counter); `false` when it is gone.
    fn passkey_used(
        &self,
        user: UserId,
        id: Uuid,
        key: String,
        at: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, RepositoryError>> + Send;

    /// Renames `user`'s passkey `id`; `false` when it is not theirs or gone.
    fn rename_passkey(
        &self,
        user: UserId,
        id: Uuid,
        name: String,
    ) -> impl Future<Output = Result<bool, RepositoryError>> + Send;
}

/// What a WebAuthn ceremony is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ceremony {
    /// Registering a passkey (the user is known).
    Registration,
    /// Signing in with no username (the user is whoever the passkey names).
    SignIn,
    /// A known user proving a passkey: the second step of a login, or a step-up.
    SecondFactor,
}

impl Ceremony {
    /// Every ceremony, for stores that check what they read back.
    pub const ALL: [Self; 3] = [Self::Registration, Self::SignIn, Self::SecondFactor];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registration => "registration",
            Self::SignIn => "sign_in",
            Self::SecondFactor => "second_factor",
        }
    }

    /// The ceremony stored as `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|ceremony| ceremony.as_str() == name)
    }
}

/// A WebAuthn ceremony in flight, kept server-side between its options and its answer.
#[derive(Clone, PartialEq, Eq)]
pub struct PendingChallenge {
    /// The hex SHA-256 of the challenge the client signs: what the answer is matched by
    /// (its `clientDataJSON` carries the challenge). Unique.
    pub digest: String,
    /// What for.
    pub ceremony: Ceremony,
    /// Whose, when the user is known.
    pub user_id: Option<UserId>,
    /// The library's state of the ceremony (JSON).
    pub state: String,
    /// When it stops being answerable, at the stored precision.
    pub expires_at: OffsetDateTime,
}

impl fmt::Debug for PendingChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingChallenge")
            .field("ceremony", &self.ceremony)
            .field("user_id", &self.user_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Where WebAuthn ceremonies wait for their answer.
///
/// # Errors
///
/// Every adapter MUST wrap driver errors in [`RepositoryError`] and make
/// [`take`](Self::take) single-use across instances: of two concurrent takes of one
/// challenge, one gets it.
pub trait ChallengeStore: Clone + Send + Sync + 'static {
    /// Stores a ceremony.
    fn put(
        &self,
        challenge: PendingChallenge,
    ) -> impl Future<Output = Result<(), RepositoryError>> + Send;

    /// Deletes the ceremony with this digest for `ceremony` and returns it, if it is
    /// still live at `now`; `None` when it is unknown, of another ceremony, expired, or
    /// taken already.
    fn take(
        &self,
        digest: &str,
        ceremony: Ceremony,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Option<PendingChallenge>, RepositoryError>> + Send;

    /// Deletes at most `batch` ceremonies expired before `now`; returns how many.
    fn purge_expired(
        &self,
        now: OffsetDateTime,
        batch: u64,
    ) -> impl Future<Output = Result<u64, RepositoryError>> + Send;
}
