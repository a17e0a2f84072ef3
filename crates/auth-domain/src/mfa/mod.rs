//! The second factor's use cases: enrolling and removing TOTP, recovery codes, proving a
//! factor (the second step of a login, a step-up), and the operator's reset.
//!
//! What a use case changes it writes as one [`Work`]: a TOTP confirmed with its first
//! recovery codes, its audit event and its notice mail, together or not at all. What must
//! hold across instances is the store's to decide in one write: a TOTP step accepted once
//! ([`crate::factors::FactorStore::accept_totp_step`]), a recovery code spent once
//! ([`Change::ConsumeRecoveryCode`]).

pub mod passkey_flows;
pub mod recovery;
pub mod totp;

use std::fmt;

use time::OffsetDateTime;
use uuid::Uuid;

use self::{
    recovery::RecoveryCode,
    totp::{TotpSecret, DEFAULT_SKEW},
};
use crate::{
    accounts::{Accounts, Context, PasswordCheck},
    audit::EventKind,
    factors::{FactorStore, FactorSummary, TotpCredential},
    seal::Seal,
    stores::Stores,
    throttle::{Reservation, Throttled},
    timestamp,
    work::{Change, CommitError, Refusal, Work},
    BoxError, Email, RepositoryError, UserId,
};

/// A second factor, as the API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// A code from an authenticator app.
    Totp,
    /// A passkey.
    Webauthn,
    /// One of the recovery codes.
    RecoveryCode,
}

impl Method {
    /// The name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::Webauthn => "webauthn",
            Self::RecoveryCode => "recovery_code",
        }
    }

    /// The methods a user with `factors` can complete a login with, in the order a client
    /// should offer them.
    pub fn available(factors: &FactorSummary) -> Vec<Self> {
        let mut methods = Vec::with_capacity(3);
        if factors.passkeys > 0 {
            methods.push(Self::Webauthn);
        }
        if factors.totp {
            methods.push(Self::Totp);
        }
        if factors.recovery_codes > 0 {
            methods.push(Self::RecoveryCode);
        }
        methods
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the second factor's use cases are configured with.
#[derive(Clone)]
pub struct MfaSettings {
    /// What TOTP secrets are sealed with: a key derived from `SECRET_KEY`, the fallbacks'
    /// opening what was sealed before a rotation.
    pub seal: Seal,
    /// Steps accepted either side of now (`TOTP_SKEW`).
    pub skew: u8,
    /// The issuer an authenticator app shows beside the account.
    pub issuer: String,
    /// This service as a WebAuthn relying party; `None` turns passkeys off (a
    /// `PUBLIC_URL` on an IP address).
    pub relying_party: Option<crate::passkeys::RelyingParty>,
}

impl MfaSettings {
    /// Defaults, with TOTP secrets sealed under a random key only this process knows: set
    /// [`seal`](Self::seal) to keys every instance has (the app derives them from
    /// `SECRET_KEY`).
    pub fn new(issuer: &str) -> Self {
        let mut key = [0_u8; crate::digest::KEY_BYTES];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
        Self {
            seal: Seal::new(&key, &[]),
            skew: DEFAULT_SKEW,
            issuer: issuer.to_owned(),
            relying_party: None,
        }
    }
}

impl Default for MfaSettings {
    fn default() -> Self {
        Self::new("auth-service")
    }
}

impl fmt::Debug for MfaSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MfaSettings")
            .field("skew", &self.skew)
            .field("issuer", &self.issuer)
            .field(
                "relying_party",
                &self.relying_party.as_ref().map(|rp| rp.id()),
            )
            .finish_non_exhaustive()
    }
}

/// A TOTP enrolment started: what the user's app needs, shown once.
#[derive(Clone)]
pub struct TotpEnrolment {
    /// The secret, base32, for typing in.
    pub secret: String,
    /// The `otpauth://` URI, for a QR code.
    pub otpauth_uri: String,
}

impl fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpEnrolment(..)")
    }
}

/// A proof of a second factor, as submitted.
#[derive(Clone)]
pub enum Proof {
    /// A TOTP code.
    Totp(String),
    /// A recovery code.
    RecoveryCode(String),
}

impl fmt::Debug for Proof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Totp(_) => f.write_str("Proof::Totp(..)"),
            Self::RecoveryCode(_) => f.write_str("Proof::RecoveryCode(..)"),
        }
    }
}

/// Why a second-factor use case refused.
#[derive(Debug, thiserror::Error)]
pub enum MfaError {
    /// A wrong, replayed or spent code (one answer for all), or a factor the user does not
    /// have.
    #[error("invalid code")]
    InvalidCode,
    /// Too many wrong codes: refused unchecked.
    #[error("too many wrong codes")]
    Throttled(Throttled),
    /// TOTP is on already: remove it first.
    #[error("TOTP is enabled already")]
    AlreadyEnabled,
    /// No TOTP enrolment is waiting for its first code.
    #[error("no TOTP enrolment in progress")]
    NotEnrolling,
    /// The factor to remove is not there.
    #[error("not enabled")]
    NotEnabled,
    /// A step-up's password is wrong.
    #[error("wrong password")]
    WrongPassword,
    /// `PUBLIC_URL` names no relying party passkeys accept.
    #[error("passkeys are unavailable")]
    PasskeysUnavailable,
    /// A passkey's answer that does not verify, or answers no live ceremony of this user.
    #[error("invalid passkey")]
    InvalidPasskey,
    /// No such passkey of this user.
    #[error("no such passkey")]
    NotFound,
    /// The passkey is registered already (its authenticator ignored `excludeCredentials`).
    #[error("the passkey is registered already")]
    PasskeyRegistered,
    /// Removing the password needs a passkey to sign in with.
    #[error("a passkey is required")]
    PasskeyRequired,
    /// A passkey's name the rules refuse.
    #[error("invalid name")]
    InvalidName(crate::ValidationErrors),
    /// Storage failed.
    #[error("second factor failed")]
    Unexpected(#[source] BoxError),
}

impl From<RepositoryError> for MfaError {
    fn from(error: RepositoryError) -> Self {
        Self::Unexpected(error.into())
    }
}

impl<B: Stores> Accounts<B> {
    /// Which factors `user` has.
    pub async fn factors(&self, user: UserId) -> Result<FactorSummary, RepositoryError> {
        self.stores().factors().summary(user).await
    }

    /// Starts (or restarts) a TOTP enrolment: a fresh secret, sealed and stored unconfirmed
    /// until [`Self::confirm_totp`] sees a first code from it.
    ///
    /// # Errors
    ///
    /// [`MfaError::AlreadyEnabled`] when the user has TOTP on.
    pub async fn begin_totp(
        &self,
        user: UserId,
        account: &Email,
    ) -> Result<TotpEnrolment, MfaError> {
        let secret = TotpSecret::generate();
        let settings = self.mfa_settings();
        let credential = TotpCredential {
            id: Uuid::now_v7(),
            user_id: user,
            sealed_secret: settings.seal.seal(&secret.to_base32()),
            confirmed: false,
            last_step: None,
            created_at: timestamp::truncate_to_micros(self.clock().now()),
        };
        if !self.stores().factors().begin_totp(credential).await? {
            return Err(MfaError::AlreadyEnabled);
        }
        Ok(TotpEnrolment {
            otpauth_uri: secret.otpauth_uri(&settings.issuer, account.as_str()),
            secret: secret.to_base32(),
        })
    }

    /// Turns TOTP on with a first code from the enrolment's secret; the code's step is
    /// recorded, so that the setup code cannot sign anyone in. The first factor of an
    /// account comes with recovery codes, returned here and never again.
    ///
    /// # Errors
    ///
    /// [`MfaError::NotEnrolling`] without an enrolment, [`MfaError::InvalidCode`] for a
    /// wrong code, [`MfaError::Throttled`] past the limit of wrong codes.
    pub async fn confirm_totp(
        &self,
        user: UserId,
        account: &Email,
        code: &str,
        context: &Context,
    ) -> Result<Option<Vec<RecoveryCode>>, MfaError> {
        let factors = self.stores().factors();
        let pending = factors
            .totp(user)
            .await?
            .filter(|totp| !totp.confirmed)
            .ok_or(MfaError::NotEnrolling)?;
        let reservation = self.reserve_code(user).await?;
        let now = self.clock().now();
        let step = self
            .open_totp(&pending)
            .and_then(|secret| secret.matching_step(code, now, self.mfa_settings().skew));
        let Some(step) = step else {
            self.settle_code(reservation, false).await;
            return Err(MfaError::InvalidCode);
        };
        self.settle_code(reservation, true).await;
        let first = !factors.summary(user).await?.has_second_factor();
        let mut work = Work::new().then(Change::ConfirmTotp {
            user,
            id: pending.id,
            step,
        });
        let codes = first.then(|| self.new_recovery_codes(user, now, &mut work));
        work.push(self.event(EventKind::TotpEnabled, user, context));
        work.push(Change::Enqueue(
            self.mail_settings().templates.security_notice(
                account,
                "an authenticator app (TOTP) was turned on",
                now,
            ),
        ));
        match self.commit(work).await {
            Ok(()) => Ok(codes),
            Err(CommitError::Refused(_)) => Err(MfaError::NotEnrolling),
            Err(CommitError::Storage(e)) => Err(e.into()),
        }
    }

    /// Turns TOTP off. Recovery codes go with the last factor.
    ///
    /// # Errors
    ///
    /// [`MfaError::NotEnabled`] when TOTP is not on.
    pub async fn remove_totp(
        &self,
        user: UserId,
        account: &Email,
        context: &Context,
    ) -> Result<(), MfaError> {
        let now = self.clock().now();
        let summary = self.factors(user).await?;
        let mut work = Work::new().then(Change::RemoveTotp { user });
        if summary.passkeys == 0 {
            work.push(Change::ReplaceRecoveryCodes {
                user,
                digests: Vec::new(),
                at: now,
            });
        }
        work.push(self.event(EventKind::TotpRemoved, user, context));
        work.push(Change::Enqueue(
            self.mail_settings().templates.security_notice(
                account,
                "the authenticator app (TOTP) was turned off",
                now,
            ),
        ));
        match self.commit(work).await {
            Ok(()) => Ok(()),
            Err(CommitError::Refused(_)) => Err(MfaError::NotEnabled),
            Err(CommitError::Storage(e)) => Err(e.into()),
        }
    }

    /// A new set of recovery codes, voiding the old one. Only for a user with a second
    /// factor: the codes are the way back to it.
    ///
    /// # Errors
    ///
    /// [`MfaError::NotEnabled`] for a user without a second factor.
    pub async fn regenerate_recovery_codes(
        &self,
        user: UserId,
        account: &Email,
        context: &Context,
    ) -> Result<Vec<RecoveryCode>, MfaError> {
        if !self.factors(user).await?.has_second_factor() {
            return Err(MfaError::NotEnabled);
        }
        let now = self.clock().now();
        let mut work = Work::new();
        let codes = self.new_recovery_codes(user, now, &mut work);
        work.push(self.event(EventKind::RecoveryCodesGenerated, user, context));
        work.push(Change::Enqueue(
            self.mail_settings().templates.security_notice(
                account,
                "new recovery codes were made, and the old ones no longer work",
                now,
            ),
        ));
        self.commit(work)
            .await
            .map_err(|e| MfaError::Unexpected(e.into()))?;
        Ok(codes)
    }

    /// Checks a TOTP or recovery code of `user`: the second step of a login, or a step-up.
    /// A TOTP step is accepted once, across instances; a recovery code is spent, with a
    /// notice mail. A wrong code is recorded and counted against the per-account limit.
    ///
    /// # Errors
    ///
    /// [`MfaError::InvalidCode`] for a wrong, replayed or spent code, or a method the user
    /// does not have; [`MfaError::Throttled`] past the limit.
    pub async fn prove_code(
        &self,
        user: UserId,
        account: &Email,
        proof: &Proof,
        context: &Context,
    ) -> Result<Method, MfaError> {
        let reservation = self.reserve_code(user).await?;
        let proven = match proof {
            Proof::Totp(code) => self
                .check_totp(user, code)
                .await
                .map(|ok| ok.then_some(Method::Totp)),
            Proof::RecoveryCode(code) => self
                .spend_recovery_code(user, account, code, context)
                .await
                .map(|ok| ok.then_some(Method::RecoveryCode)),
        };
        match proven {
            Ok(Some(method)) => {
                self.settle_code(reservation, true).await;
                Ok(method)
            }
            Ok(None) => {
                self.settle_code(reservation, false).await;
                self.record_event(EventKind::MfaFailed, Some(user), context)
                    .await;
                Err(MfaError::InvalidCode)
            }
            Err(error) => {
                self.settle_code(reservation, true).await;
                Err(error)
            }
        }
    }

    /// A step-up with the password: checked and counted as a login's would be (a stolen
    /// cookie must not give unlimited guesses), recorded when right. The caller marks the
    /// session proven.
    ///
    /// # Errors
    ///
    /// [`MfaError::WrongPassword`], or [`MfaError::Throttled`] past the login limits.
    pub async fn reauthenticate_with_password(
        &self,
        user: UserId,
        account: &Email,
        password: &crate::Password,
        context: &Context,
    ) -> Result<(), MfaError> {
        let checked = self
            .check_own_password(user, account, password, context)
            .await
            .map_err(|e| e.map_or_else(MfaError::Unexpected, MfaError::Throttled))?;
        if checked == PasswordCheck::Right {
            self.record_event(EventKind::Reauthenticated, Some(user), context)
                .await;
            Ok(())
        } else {
            self.record_event(EventKind::LoginFailed, Some(user), context)
                .await;
            Err(MfaError::WrongPassword)
        }
    }

    /// A step-up with a second factor's code, as [`Self::prove_code`], recorded when right.
    ///
    /// # Errors
    ///
    /// As [`Self::prove_code`].
    pub async fn reauthenticate_with_code(
        &self,
        user: UserId,
        account: &Email,
        proof: &Proof,
        context: &Context,
    ) -> Result<(), MfaError> {
        self.prove_code(user, account, proof, context).await?;
        self.record_event(EventKind::Reauthenticated, Some(user), context)
            .await;
        Ok(())
    }

    /// Records the second step of `user`'s login as done with `method`: the session is
    /// whole.
    pub async fn second_step_completed(&self, user: UserId, method: Method, context: &Context) {
        tracing::info!(user.id = %user, %method, "second step completed");
        self.record_event(EventKind::MfaSucceeded, Some(user), context)
            .await;
    }

    /// Records a step-up of `user` with a passkey.
    pub async fn reauthenticated_with_passkey(&self, user: UserId, context: &Context) {
        self.record_event(EventKind::Reauthenticated, Some(user), context)
            .await;
    }

    /// The operator's removal of every second factor of `user` (a lost phone and lost
    /// codes): audited as the admin's, and the user is told.
    ///
    /// # Errors
    ///
    /// Storage failed.
    pub async fn reset_factors(
        &self,
        user: UserId,
        account: &Email,
        context: &Context,
    ) -> Result<FactorSummary, MfaError> {
        let before = self.factors(user).await?;
        let now = self.clock().now();
        let work = Work::new()
            .then(Change::RemoveFactors { user })
            .then(self.event(EventKind::FactorsReset, user, context))
            .then(Change::Enqueue(
                self.mail_settings().templates.security_notice(
                    account,
                    "an administrator removed every second factor (TOTP, passkeys, recovery codes)",
                    now,
                ),
            ));
        self.commit(work)
            .await
            .map_err(|e| MfaError::Unexpected(e.into()))?;
        tracing::info!(user.id = %user, actor = %context.actor, "second factors reset");
        Ok(before)
    }

    /// Whether `code` is a TOTP code of `user` for a step newer than the last accepted,
    /// and that step is now recorded as theirs (one instance wins a race for it).
    async fn check_totp(&self, user: UserId, code: &str) -> Result<bool, MfaError> {
        let factors = self.stores().factors();
        let Some(totp) = factors.totp(user).await?.filter(|totp| totp.confirmed) else {
            return Ok(false);
        };
        let now = self.clock().now();
        let Some(step) = self
            .open_totp(&totp)
            .and_then(|secret| secret.matching_step(code, now, self.mfa_settings().skew))
        else {
            return Ok(false);
        };
        if totp.last_step.is_some_and(|last| step <= last) {
            return Ok(false);
        }
        Ok(factors.accept_totp_step(user, totp.id, step).await?)
    }

    /// Spends `user`'s recovery code `typed`, if it is one, with its event and its notice.
    async fn spend_recovery_code(
        &self,
        user: UserId,
        account: &Email,
        typed: &str,
        context: &Context,
    ) -> Result<bool, MfaError> {
        let Some(code) = RecoveryCode::parse(typed) else {
            return Ok(false);
        };
        let left = self.factors(user).await?.recovery_codes.saturating_sub(1);
        let now = self.clock().now();
        for digest in code.digests(&self.mail_settings().token_key, user) {
            let work = Work::new()
                .then(Change::ConsumeRecoveryCode { user, digest })
                .then(self.event(EventKind::RecoveryCodeUsed, user, context))
                .then(Change::Enqueue(
                    self.mail_settings()
                        .templates
                        .recovery_code_used(account, left, now),
                ));
            match self.commit(work).await {
                Ok(()) => return Ok(true),
                Err(CommitError::Refused(Refusal::TokenSpent)) => {}
                Err(CommitError::Refused(_)) => return Ok(false),
                Err(CommitError::Storage(e)) => return Err(e.into()),
            }
        }
        Ok(false)
    }

    /// A fresh set of codes for `user`, their replacement of the old set added to `work`.
    fn new_recovery_codes(
        &self,
        user: UserId,
        now: OffsetDateTime,
        work: &mut Work,
    ) -> Vec<RecoveryCode> {
        let codes = RecoveryCode::generate_set();
        let key = &self.mail_settings().token_key;
        work.push(Change::ReplaceRecoveryCodes {
            user,
            digests: codes.iter().map(|code| code.digest(key, user)).collect(),
            at: timestamp::truncate_to_micros(now),
        });
        codes
    }

    /// The secret of a stored credential; `None` when no configured key opens it (sealed
    /// under a key since dropped from the fallbacks), which is logged: the user cannot
    /// pass TOTP until an operator resets their factors.
    fn open_totp(&self, totp: &TotpCredential) -> Option<TotpSecret> {
        let opened = self
            .mfa_settings()
            .seal
            .open(&totp.sealed_secret)
            .ok()
            .and_then(|text| TotpSecret::from_base32(&text));
        if opened.is_none() {
            tracing::error!(user.id = %totp.user_id, "a TOTP secret opens under no configured key");
        }
        opened
    }

    /// Reserves a code check of `user` against the per-account limit of wrong codes.
    async fn reserve_code(&self, user: UserId) -> Result<Reservation, MfaError> {
        self.throttle()
            .reserve_second_factor(user, self.clock().now())
            .await
            .map_err(|e| MfaError::Unexpected(crate::accounts::uncounted(e)))?
            .map_err(MfaError::Throttled)
    }

    /// A right code is withdrawn from the count; a wrong one stays.
    async fn settle_code(&self, reservation: Reservation, right: bool) {
        self.settle_password(reservation, !right).await;
    }
}
