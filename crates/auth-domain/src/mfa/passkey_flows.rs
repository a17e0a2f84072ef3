//! The passkey use cases: registering one, listing, renaming and deleting them, signing in
//! with one and no username, and proving one as a second factor.
//!
//! Every ceremony's state waits server-side ([`ChallengeStore`]) under the digest of its
//! challenge, which the answer carries in its `clientDataJSON`: the answer alone finds its
//! ceremony, no cookie is needed before a sign-in, and the store hands each ceremony out
//! once, so an answer cannot be replayed, not even against a second instance.

use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{recovery::RecoveryCode, Method, MfaError};
use crate::{
    accounts::{Accounts, Context},
    audit::EventKind,
    factors::{Ceremony, ChallengeStore, FactorStore, StoredPasskey},
    passkeys::{self, CeremonyState, PasskeyError, RelyingParty, CEREMONY_TIMEOUT},
    stores::Stores,
    timestamp,
    work::{Change, CommitError, Work},
    Email, FieldError, User, UserId, ValidationErrors,
};

/// The longest name of a passkey, in characters.
pub const MAX_PASSKEY_NAME_CHARS: usize = 64;

const NAME_EMPTY: FieldError = FieldError::new("blank", "The name must not be blank.");
const NAME_TOO_LONG: FieldError =
    FieldError::new("too_long", "The name must be at most 64 characters.");

/// A passkey's name as given: trimmed, not blank, at most [`MAX_PASSKEY_NAME_CHARS`]
/// characters, no control characters.
///
/// # Errors
///
/// The field error, under `name`.
pub fn passkey_name(given: &str) -> Result<String, ValidationErrors> {
    let name: String = given
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut errors = ValidationErrors::default();
    if name.is_empty() {
        errors.add("name", NAME_EMPTY);
    } else if name.chars().count() > MAX_PASSKEY_NAME_CHARS {
        errors.add("name", NAME_TOO_LONG);
    }
    if errors.is_empty() {
        Ok(name)
    } else {
        Err(errors)
    }
}

impl<B: Stores> Accounts<B> {
    /// The relying party, or why there is none.
    fn relying_party(&self) -> Result<&RelyingParty, MfaError> {
        self.mfa_settings()
            .relying_party
            .as_ref()
            .ok_or(MfaError::PasskeysUnavailable)
    }

    /// Stores `state` until the ceremony's timeout.
    async fn wait_for_answer(&self, state: CeremonyState) -> Result<(), MfaError> {
        let expires_at = timestamp::truncate_to_micros(
            self.clock().now() + time::Duration::try_from(CEREMONY_TIMEOUT).unwrap_or_default(),
        );
        self.stores()
            .challenges()
            .put(state.into_pending(expires_at))
            .await?;
        Ok(())
    }

    /// The ceremony of `ceremony` that `credential` answers, taken out of the store: at
    /// most once, and only while it lives.
    async fn answered(
        &self,
        credential: &Value,
        ceremony: Ceremony,
    ) -> Result<CeremonyState, MfaError> {
        let digest = passkeys::challenge_digest_of(credential).ok_or(MfaError::InvalidPasskey)?;
        let pending = self
            .stores()
            .challenges()
            .take(&digest, ceremony, self.clock().now())
            .await?
            .ok_or(MfaError::InvalidPasskey)?;
        CeremonyState::from_pending(&pending).map_err(refused)
    }

    /// The creation options for a new passkey of `user` (`{"publicKey": {...}}`); their
    /// passkeys are excluded, so that one authenticator is not registered twice.
    ///
    /// # Errors
    ///
    /// [`MfaError::PasskeysUnavailable`] without a relying party.
    pub async fn passkey_registration_options(
        &self,
        user: UserId,
        account: &Email,
        username: &str,
    ) -> Result<Value, MfaError> {
        let relying_party = self.relying_party()?;
        let exclude: Vec<_> = self
            .stores()
            .factors()
            .passkeys(user)
            .await?
            .into_iter()
            .map(|passkey| passkey.credential_id)
            .collect();
        let (options, state) = relying_party
            .start_registration(user, account.as_str(), username, &exclude)
            .map_err(refused)?;
        self.wait_for_answer(state).await?;
        Ok(options)
    }

    /// Registers the passkey `credential` answers a registration ceremony of `user`
    /// with, named `name` ("Passkey" by default). The account's first second factor
    /// comes with recovery codes, returned here and never again.
    ///
    /// # Errors
    ///
    /// [`MfaError::InvalidPasskey`] for an answer that does not verify (or to another
    /// user's ceremony, or a spent one), [`MfaError::PasskeyRegistered`] for an
    /// authenticator registered already, [`MfaError::InvalidName`].
    pub async fn register_passkey(
        &self,
        user: UserId,
        account: &Email,
        credential: &Value,
        name: Option<&str>,
        context: &Context,
    ) -> Result<(StoredPasskey, Option<Vec<RecoveryCode>>), MfaError> {
        let relying_party = self.relying_party()?;
        let name = passkey_name(name.unwrap_or("Passkey")).map_err(MfaError::InvalidName)?;
        let state = self.answered(credential, Ceremony::Registration).await?;
        if state.user() != Some(user) {
            return Err(MfaError::InvalidPasskey);
        }
        let new = relying_party
            .finish_registration(&state, credential)
            .map_err(refused)?;
        let now = self.clock().now();
        let passkey = StoredPasskey {
            id: Uuid::now_v7(),
            user_id: user,
            credential_id: new.credential_id,
            name,
            key: new.key,
            created_at: timestamp::truncate_to_micros(now),
            last_used_at: None,
        };
        let first = !self.factors(user).await?.has_second_factor();
        let mut work = Work::new().then(Change::InsertPasskey(passkey.clone()));
        let codes = first.then(|| self.new_recovery_codes(user, now, &mut work));
        work.push(self.event(EventKind::PasskeyAdded, user, context));
        work.push(Change::Enqueue(
            self.mail_settings().templates.security_notice(
                account,
                &format!("a passkey was added (\"{}\")", passkey.name),
                now,
            ),
        ));
        match self.commit(work).await {
            Ok(()) => Ok((passkey, codes)),
            Err(CommitError::Refused(_)) => Err(MfaError::PasskeyRegistered),
            Err(CommitError::Storage(e)) => Err(e.into()),
        }
    }

    /// `user`'s passkeys, oldest first.
    ///
    /// # Errors
    ///
    /// Storage failed.
    pub async fn passkeys(&self, user: UserId) -> Result<Vec<StoredPasskey>, MfaError> {
        Ok(self.stores().factors().passkeys(user).await?)
    }

    /// Renames `user`'s passkey `id`.
    ///
    /// # Errors
    ///
    /// [`MfaError::NotFound`] when it is not theirs, [`MfaError::InvalidName`].
    pub async fn rename_passkey(
        &self,
        user: UserId,
        id: Uuid,
        name: &str,
        context: &Context,
    ) -> Result<StoredPasskey, MfaError> {
        let name = passkey_name(name).map_err(MfaError::InvalidName)?;
        let factors = self.stores().factors();
        if !factors.rename_passkey(user, id, name).await? {
            return Err(MfaError::NotFound);
        }
        self.record_event(EventKind::PasskeyRenamed, Some(user), context)
            .await;
        factors
            .passkeys(user)
            .await?
            .into_iter()
            .find(|passkey| passkey.id == id)
            .ok_or(MfaError::NotFound)
    }

    /// Deletes `user`'s passkey `id`; it signs no one in from now on. Recovery codes go
    /// with the last factor.
    ///
    /// # Errors
    ///
    /// [`MfaError::NotFound`] when it is not theirs.
    pub async fn delete_passkey(
        &self,
        user: UserId,
        account: &Email,
        id: Uuid,
        context: &Context,
    ) -> Result<(), MfaError> {
        let now = self.clock().now();
        let factors = self.factors(user).await?;
        let mut work = Work::new().then(Change::DeletePasskey { user, id });
        if !factors.totp && factors.passkeys <= 1 {
            work.push(Change::ReplaceRecoveryCodes {
                user,
                digests: Vec::new(),
                at: now,
            });
        }
        work.push(self.event(EventKind::PasskeyRemoved, user, context));
        work.push(Change::Enqueue(
            self.mail_settings()
                .templates
                .security_notice(account, "a passkey was removed", now),
        ));
        match self.commit(work).await {
            Ok(()) => Ok(()),
            Err(CommitError::Refused(_)) => Err(MfaError::NotFound),
            Err(CommitError::Storage(e)) => Err(e.into()),
        }
    }

    /// Removes `user`'s password: they sign in with a passkey alone from now on, and a
    /// recovery code or an emailed reset (which sets a password again) is the way back.
    /// Only for an account with a passkey. Every session but `keep` ends (the password is
    /// the credential they are bound to); the caller logs the kept one in again.
    ///
    /// # Errors
    ///
    /// [`MfaError::PasskeyRequired`] without a passkey.
    pub async fn remove_password(
        &self,
        user: UserId,
        account: &Email,
        keep: Option<&crate::session::SessionHandle>,
        context: &Context,
    ) -> Result<User, MfaError> {
        if self.factors(user).await?.passkeys == 0 {
            return Err(MfaError::PasskeyRequired);
        }
        let stored = self
            .service()
            .get_user(user)
            .await?
            .ok_or(MfaError::NotFound)?;
        let now = self.clock().now();
        let none = crate::PasswordHash::no_password();
        let mut work = Work::new().then(Change::ReplacePassword {
            user,
            current: stored.password_hash.clone(),
            new: none.clone(),
        });
        if keep.is_none() {
            work.push(Change::EndSessions { user });
        }
        work.push(self.event(EventKind::PasswordRemoved, user, context));
        work.push(Change::Enqueue(
            self.mail_settings().templates.security_notice(
                account,
                "the password was removed: the account signs in with its passkeys",
                now,
            ),
        ));
        match self.commit(work).await {
            Ok(()) => {}
            Err(CommitError::Refused(_)) => return Err(MfaError::NotFound),
            Err(CommitError::Storage(e)) => return Err(e.into()),
        }
        if let Some(keep) = keep {
            self.free_other_sessions(user, keep).await;
        }
        Ok(User {
            password_hash: none,
            ..stored
        })
    }

    /// The request options of a sign-in with no username (`{"publicKey": {...}}`, an
    /// empty `allowCredentials`), for a client within its address's limit of ceremonies.
    ///
    /// # Errors
    ///
    /// [`MfaError::PasskeysUnavailable`] without a relying party, [`MfaError::Throttled`]
    /// past the limit.
    pub async fn passkey_sign_in_options(&self, context: &Context) -> Result<Value, MfaError> {
        let relying_party = self.relying_party()?;
        self.throttle()
            .admit_sign_in_ceremony(context.device.ip, self.clock().now())
            .await
            .map_err(|e| MfaError::Unexpected(crate::accounts::uncounted(e)))?
            .map_err(MfaError::Throttled)?;
        let (options, state) = relying_party.start_sign_in().map_err(refused)?;
        self.wait_for_answer(state).await?;
        Ok(options)
    }

    /// Signs in with the passkey `credential` names, with no username and no password:
    /// the passkey with user verification is both factors. Returns its owner; the caller
    /// starts the session. A refused answer is recorded as a failed login.
    ///
    /// # Errors
    ///
    /// [`MfaError::InvalidPasskey`] for an answer that does not verify: a spent or
    /// unknown ceremony, a deleted passkey, no user verification, another origin.
    pub async fn passkey_sign_in(
        &self,
        credential: &Value,
        context: &Context,
    ) -> Result<User, MfaError> {
        let relying_party = self.relying_party()?;
        let state = self.answered(credential, Ceremony::SignIn).await?;
        let (user, credential_id) = passkeys::identify(credential).map_err(refused)?;
        let verified = match self
            .stores()
            .factors()
            .passkey_by_credential(&credential_id)
            .await?
        {
            Some(passkey) if passkey.user_id == user => relying_party
                .finish_sign_in(&state, credential, &passkey)
                .map(|assertion| (passkey, assertion))
                .map_err(refused),
            _ => Err(MfaError::InvalidPasskey),
        };
        let (passkey, assertion) = match verified {
            Ok(verified) => verified,
            Err(error) => {
                self.record_event(EventKind::LoginFailed, Some(user), context)
                    .await;
                return Err(error);
            }
        };
        self.used(&passkey, assertion.key, self.clock().now())
            .await?;
        let user = self
            .service()
            .get_user(passkey.user_id)
            .await?
            .ok_or(MfaError::InvalidPasskey)?;
        tracing::info!(user.id = %user.id, "user signed in with a passkey");
        self.record_event(EventKind::LoginSucceeded, Some(user.id), context)
            .await;
        Ok(user)
    }

    /// The request options of a passkey proof by `user` (the second step of a login, or
    /// a step-up): their passkeys in `allowCredentials`.
    ///
    /// # Errors
    ///
    /// [`MfaError::NotEnabled`] for a user without passkeys,
    /// [`MfaError::PasskeysUnavailable`] without a relying party.
    pub async fn passkey_proof_options(&self, user: UserId) -> Result<Value, MfaError> {
        let relying_party = self.relying_party()?;
        let passkeys = self.stores().factors().passkeys(user).await?;
        if passkeys.is_empty() {
            return Err(MfaError::NotEnabled);
        }
        let (options, state) = relying_party
            .start_second_factor(user, &passkeys)
            .map_err(refused)?;
        self.wait_for_answer(state).await?;
        Ok(options)
    }

    /// Checks `credential` as a proof of `user`'s passkey. A refused one is recorded.
    ///
    /// # Errors
    ///
    /// [`MfaError::InvalidPasskey`] for an answer that does not verify, or that answers
    /// another user's ceremony.
    pub async fn prove_passkey(
        &self,
        user: UserId,
        credential: &Value,
        context: &Context,
    ) -> Result<Method, MfaError> {
        let proven = self.check_passkey(user, credential).await;
        if matches!(proven, Err(MfaError::InvalidPasskey)) {
            self.record_event(EventKind::MfaFailed, Some(user), context)
                .await;
        }
        proven.map(|()| Method::Webauthn)
    }

    async fn check_passkey(&self, user: UserId, credential: &Value) -> Result<(), MfaError> {
        let relying_party = self.relying_party()?;
        let state = self.answered(credential, Ceremony::SecondFactor).await?;
        if state.user() != Some(user) {
            return Err(MfaError::InvalidPasskey);
        }
        let credential_id = passkeys::credential_id_of(credential).map_err(refused)?;
        let passkey = self
            .stores()
            .factors()
            .passkey_by_credential(&credential_id)
            .await?
            .filter(|passkey| passkey.user_id == user)
            .ok_or(MfaError::InvalidPasskey)?;
        let assertion = relying_party
            .finish_second_factor(&state, credential, &passkey)
            .map_err(refused)?;
        self.used(&passkey, assertion.key, self.clock().now()).await
    }

    /// Records a use of `passkey`, with its key as the library updated it.
    async fn used(
        &self,
        passkey: &StoredPasskey,
        key: String,
        at: OffsetDateTime,
    ) -> Result<(), MfaError> {
        // A passkey deleted between the check and here signed this request in; the next
        // one it cannot.
        self.stores()
            .factors()
            .passkey_used(passkey.user_id, passkey.id, key, at)
            .await?;
        Ok(())
    }
}

/// A ceremony's failure: the client's doing is an invalid passkey; ours is unexpected.
fn refused(error: PasskeyError) -> MfaError {
    match error {
        PasskeyError::Corrupt(_) | PasskeyError::Unexpected(_) => {
            MfaError::Unexpected(Box::new(error))
        }
        PasskeyError::AlreadyRegistered => MfaError::PasskeyRegistered,
        PasskeyError::Rejected(ref source) => {
            tracing::info!(error = %source, "a passkey was rejected");
            MfaError::InvalidPasskey
        }
        _ => MfaError::InvalidPasskey,
    }
}
