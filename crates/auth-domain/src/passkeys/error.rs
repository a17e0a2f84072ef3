//! What a passkey ceremony can fail with.

use webauthn_rs::prelude::WebauthnError;

use crate::BoxError;

/// Why this service offers no passkeys: the relying-party id comes from `PUBLIC_URL`, and
/// browsers (and webauthn-rs) accept only a domain name there, on https or on
/// `http://localhost`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("passkeys are unavailable: {reason}")]
pub struct PasskeysUnavailable {
    reason: &'static str,
}

impl PasskeysUnavailable {
    pub(super) fn because(reason: &'static str) -> Self {
        Self { reason }
    }

    /// Why, in a sentence fit for the start-up warning.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

/// Why a ceremony was refused or could not run. Every variant but
/// [`Unexpected`](Self::Unexpected) and [`Corrupt`](Self::Corrupt) is the client's doing
/// (a 4xx); those two are ours (a 5xx, logged).
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// The credential is not the JSON this ceremony expects: wrong shape or types,
    /// bad base64, undecodable authenticator data, an answer of another ceremony kind.
    #[error("the credential is malformed")]
    MalformedCredential,
    /// The state given is of another ceremony than the function finishing it.
    #[error("the ceremony state is of another ceremony")]
    WrongCeremony,
    /// The answer signs another challenge than this ceremony's: a replay, or an answer
    /// to another ceremony.
    #[error("the credential answers another challenge")]
    ChallengeMismatch,
    /// The answer was made for another origin or relying-party id.
    #[error("the credential was made for another origin")]
    WrongOrigin,
    /// The authenticator did not verify the user (no PIN, biometric...): a passkey must.
    #[error("the authenticator did not verify the user")]
    UserVerificationMissing,
    /// The credential is not the passkey given, not one the ceremony allowed, or not the
    /// user's the ceremony is for.
    #[error("the credential is not a known passkey of this user")]
    UnknownKey,
    /// The authenticator already holds one of the user's passkeys.
    #[error("this authenticator is already registered")]
    AlreadyRegistered,
    /// Any other failed check: a bad signature, a signature counter that went backwards
    /// (a cloned authenticator), an unsupported algorithm.
    #[error("the credential was rejected")]
    Rejected(#[source] BoxError),
    /// A stored key or ceremony state that does not read back.
    #[error("a stored passkey or ceremony is corrupt: {0}")]
    Corrupt(&'static str),
    /// The library failed to start a ceremony.
    #[error("passkey ceremony failed unexpectedly")]
    Unexpected(#[source] BoxError),
}

impl PasskeyError {
    /// How a finishing ceremony's failure reads: the variants a client can act on, the
    /// rest rejected with the library's reason kept as the source, for the log.
    pub(super) fn from_verification(error: WebauthnError) -> Self {
        use WebauthnError as E;
        match error {
            E::MismatchedChallenge | E::ChallengeNotFound => Self::ChallengeMismatch,
            E::InvalidRPOrigin | E::InvalidRPIDHash | E::CredentialCrossOrigin => Self::WrongOrigin,
            E::UserNotVerified => Self::UserVerificationMissing,
            E::CredentialNotFound => Self::UnknownKey,
            E::CredentialExcludedFromRequest | E::CredentialAlreadyExists => {
                Self::AlreadyRegistered
            }
            E::InvalidClientDataType
            | E::ParseBase64Failure(_)
            | E::ParseCBORFailure(_)
            | E::ParseJSONFailure(_)
            | E::ParseNOMFailure
            | E::ParseInsufficientBytesAvailable
            | E::MissingAttestationCredentialData
            | E::AttestationStatementMapInvalid => Self::MalformedCredential,
            other => Self::Rejected(Box::new(other)),
        }
    }

    /// A ceremony that could not start.
    pub(super) fn unexpected(error: impl Into<BoxError>) -> Self {
        Self::Unexpected(error.into())
    }
}
